//! Tests of the store's family bookkeeping: type conflicts, reserved
//! names, concurrent updates and removal of emptied families.

use std::sync::Arc;

use super::*;

fn store() -> SeriesStore {
    SeriesStore::new(Arc::new(Telemetry::new()), vec!["reserved_name"])
}

fn meta(name: &str, kind: FamilyKind) -> FamilyMeta<'_> {
    FamilyMeta {
        name,
        kind,
        help: "",
        unit: "",
    }
}

fn labels(pairs: &[(&str, &str)]) -> LabelSet {
    let mut set = LabelSet::new();
    for (k, v) in pairs {
        set.push_str(k, v, LabelSource::Attribute);
    }
    set.finish();
    set
}

fn put(
    store: &SeriesStore,
    name: &str,
    kind: FamilyKind,
    l: &LabelSet,
    v: f64,
) -> Result<bool, StoreError> {
    let now = store.now_tick();
    store.with_family(meta(name, kind), |f| {
        f.series
            .lock()
            .upsert(
                l,
                SeriesState::new(SeriesValue::Number(v), 0, 0),
                Temporality::Cumulative,
                now,
            )
            .1
    })
}

#[test]
fn same_name_other_type_is_a_conflict() {
    let s = store();
    let l = labels(&[("a", "1")]);
    assert_eq!(put(&s, "m", FamilyKind::Gauge, &l, 1.0), Ok(true));
    assert_eq!(put(&s, "m", FamilyKind::Gauge, &l, 2.0), Ok(false));
    let err = put(&s, "m", FamilyKind::Counter, &l, 1.0).unwrap_err();
    assert!(matches!(
        err,
        StoreError::TypeConflict {
            existing: "gauge",
            incoming: "counter",
            ..
        }
    ));
    assert!(matches!(
        put(&s, "reserved_name", FamilyKind::Gauge, &l, 1.0),
        Err(StoreError::Reserved { .. })
    ));
    assert_eq!(s.series_count(), 1);
}

#[test]
fn concurrent_writers_lose_nothing() {
    let s = Arc::new(store());
    let threads: Vec<_> = (0..4)
        .map(|t| {
            let s = s.clone();
            std::thread::spawn(move || {
                for i in 0..500 {
                    let l = labels(&[("thread", &t.to_string()), ("i", &i.to_string())]);
                    put(&s, "shared", FamilyKind::Gauge, &l, i as f64).unwrap();
                }
            })
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    assert_eq!(s.series_count(), 2000);
    assert_eq!(
        s.telemetry().active_series(),
        0,
        "store callers account series, not the store"
    );
}

#[test]
fn expiry_drops_empty_families() {
    let s = store();
    put(&s, "gone", FamilyKind::Gauge, &labels(&[]), 1.0).unwrap();
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(s.expire(0), 1);
    assert!(s.families_sorted().is_empty());
}

#[test]
fn openmetrics_family_names_do_not_collide() {
    let s = store();
    let l = labels(&[]);
    put(&s, "dup_total", FamilyKind::Counter, &l, 1.0).unwrap();
    // `dup` would be the counter's OpenMetrics family name.
    assert!(matches!(
        put(&s, "dup", FamilyKind::Gauge, &l, 1.0),
        Err(StoreError::TypeConflict {
            existing: "counter",
            ..
        })
    ));
    put(&s, "other", FamilyKind::Gauge, &l, 1.0).unwrap();
    assert!(matches!(
        put(&s, "other_total", FamilyKind::Counter, &l, 1.0),
        Err(StoreError::TypeConflict {
            existing: "gauge",
            ..
        })
    ));
    // Reserved: the OpenMetrics name of a reserved counter.
    let r = SeriesStore::new(Arc::new(Telemetry::new()), vec!["own_items_total"]);
    assert!(matches!(
        put(&r, "own_items", FamilyKind::Gauge, &l, 1.0),
        Err(StoreError::Reserved { .. })
    ));
    assert!(matches!(
        put(&r, "own_items_total", FamilyKind::Counter, &l, 1.0),
        Err(StoreError::Reserved { .. })
    ));
}
