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
        f.shard_for(l)
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
        Err(StoreError::NameClash {
            existing: "counter",
            ..
        })
    ));
    put(&s, "other", FamilyKind::Gauge, &l, 1.0).unwrap();
    assert!(matches!(
        put(&s, "other_total", FamilyKind::Counter, &l, 1.0),
        Err(StoreError::NameClash {
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

/// A family whose lines would carry another family's sample names is
/// refused, whichever comes first; names that only look alike are not.
#[test]
fn families_whose_samples_share_a_name_are_refused() {
    let l = labels(&[]);
    let clash = |first: (&str, FamilyKind), second: (&str, FamilyKind)| {
        let s = store();
        put(&s, first.0, first.1, &l, 1.0).unwrap();
        put(&s, second.0, second.1, &l, 1.0)
    };
    use FamilyKind::{Counter, Gauge, Histogram, Summary};
    for (first, second) in [
        (("coll", Histogram), ("coll_count", Gauge)),
        (("coll", Histogram), ("coll_bucket", Gauge)),
        (("coll_sum", Gauge), ("coll", Histogram)),
        (("ctr_total", Counter), ("ctr_created", Gauge)),
        (("ctr_created", Gauge), ("ctr_total", Counter)),
        (("lat", Summary), ("lat_count", Counter)),
        (("h", Histogram), ("h_count", Summary)),
        (("req_total", Counter), ("req", Histogram)),
        // Both are family `coll` in OpenMetrics.
        (("coll", Histogram), ("coll_total", Counter)),
    ] {
        let err = clash(first, second).expect_err(&format!("{first:?} then {second:?}"));
        assert!(
            matches!(&err, StoreError::NameClash { other, .. } if other == first.0),
            "{first:?} then {second:?}: {err}"
        );
        assert!(err.to_string().contains("rename one"), "{err}");
    }
    for (first, second) in [
        (("coll", Gauge), ("coll_count", Gauge)),
        (("a_bucket", Gauge), ("a_count", Gauge)),
        (("x_total", Counter), ("x_total_count", Gauge)),
    ] {
        clash(first, second).unwrap_or_else(|e| panic!("{first:?} then {second:?}: {e}"));
    }
}

mod watching {
    use super::*;
    use crate::pipeline::query::HistoryPoint;

    fn value_point(v: f64) -> HistoryPoint {
        HistoryPoint {
            time_unix_nano: 1,
            value: Some(v),
            count: None,
            sum: None,
        }
    }

    fn values(w: &Watched) -> Vec<f64> {
        w.points.iter().map(|p| p.value.unwrap()).collect()
    }

    #[test]
    fn ring_keeps_the_last_capacity_points() {
        let mut w = Watch::new(1, "a=\"1\"".into(), 3, value_point(0.0));
        assert!(w.is(1, "a=\"1\"") && !w.is(1, "a=\"2\"") && !w.is(2, "a=\"1\""));
        for v in 1..=4 {
            w.push(value_point(v as f64));
        }
        let kept: Vec<f64> = w.points().iter().map(|p| p.value.unwrap()).collect();
        assert_eq!(kept, [2.0, 3.0, 4.0]);
        assert_eq!(w.capacity(), 3);
    }

    #[test]
    fn lru_evicts_the_least_recently_touched() {
        let mut lru = Lru::new(2);
        assert_eq!(lru.touch("a"), None);
        assert_eq!(lru.touch("b"), None);
        assert_eq!(lru.touch("a"), None); // a is now the newest
        assert_eq!(lru.touch("c"), Some("b"));
        assert!(lru.contains(&"a") && lru.contains(&"c") && !lru.contains(&"b"));
        assert_eq!(lru.len(), 2);
        assert_eq!(lru.set_max(1), vec!["a"]);
        assert_eq!(lru.touch("c"), None);
        assert_eq!(lru.touch("d"), Some("c"));
    }

    #[test]
    fn a_watched_series_records_every_update_and_others_nothing() {
        let s = store();
        let watched = labels(&[("a", "1")]);
        let other = labels(&[("a", "2")]);
        put(&s, "m", FamilyKind::Gauge, &watched, 1.0).unwrap();
        put(&s, "m", FamilyKind::Gauge, &other, 10.0).unwrap();
        assert_eq!(s.watch("m", &labels(&[("a", "3")])), None);
        assert_eq!(s.watch("nope", &watched), None);
        assert_eq!(s.watched_count(), 0);
        // The first request starts the ring with the current value.
        let first = s.watch("m", &watched).unwrap();
        assert_eq!(values(&first), [1.0]);
        assert_eq!((first.kind, first.capacity), (FamilyKind::Gauge, 256));
        put(&s, "m", FamilyKind::Gauge, &watched, 2.0).unwrap();
        put(&s, "m", FamilyKind::Gauge, &other, 11.0).unwrap();
        put(&s, "m", FamilyKind::Gauge, &watched, 3.0).unwrap();
        assert_eq!(values(&s.watch("m", &watched).unwrap()), [1.0, 2.0, 3.0]);
        // Asking again does not add a point.
        assert_eq!(values(&s.watch("m", &watched).unwrap()), [1.0, 2.0, 3.0]);
        let family = s.family("m").unwrap();
        assert_eq!(watched_in(&family), 1);
        assert_eq!(s.watched_count(), 1);
    }

    #[test]
    fn watching_past_the_limit_drops_the_least_recently_asked() {
        let s = store();
        s.set_watch_limits(WatchLimits {
            max_series: 2,
            points: 2,
        });
        let series: Vec<LabelSet> = (0..3).map(|i| labels(&[("i", &i.to_string())])).collect();
        for l in &series {
            put(&s, "m", FamilyKind::Gauge, l, 0.0).unwrap();
        }
        s.watch("m", &series[0]).unwrap();
        s.watch("m", &series[1]).unwrap();
        s.watch("m", &series[0]).unwrap(); // 1 is now the oldest
        s.watch("m", &series[2]).unwrap(); // evicts 1
        assert_eq!(s.watched_count(), 2);
        assert_eq!(watched_in(&s.family("m").unwrap()), 2);
        for l in &series {
            put(&s, "m", FamilyKind::Gauge, l, 1.0).unwrap();
            put(&s, "m", FamilyKind::Gauge, l, 2.0).unwrap();
        }
        // Rings hold `points` = 2; series 1 starts afresh from its current value.
        assert_eq!(values(&s.watch("m", &series[0]).unwrap()), [1.0, 2.0]);
        assert_eq!(values(&s.watch("m", &series[1]).unwrap()), [2.0]);
        // Lowering the limit drops the oldest rings at once.
        s.set_watch_limits(WatchLimits {
            max_series: 1,
            points: 2,
        });
        assert_eq!(s.watched_count(), 1);
        assert_eq!(watched_in(&s.family("m").unwrap()), 1);
    }

    #[test]
    fn a_watch_survives_its_family_expiring_and_coming_back() {
        let s = store();
        let l = labels(&[("a", "1")]);
        put(&s, "m", FamilyKind::Gauge, &l, 1.0).unwrap();
        s.watch("m", &l).unwrap();
        std::thread::sleep(std::time::Duration::from_millis(1100));
        assert_eq!(s.expire(0), 1);
        assert!(s.family("m").is_none());
        assert_eq!(s.watch("m", &l), None);
        put(&s, "m", FamilyKind::Gauge, &l, 5.0).unwrap();
        // The stale entry is reused, not counted twice.
        assert_eq!(values(&s.watch("m", &l).unwrap()), [5.0]);
        assert_eq!(s.watched_count(), 1);
    }
}

/// Every active series pays for one table slot: keep it small (memory per
/// series is an issue 7 target).
#[test]
fn a_series_slot_stays_small() {
    assert!(std::mem::size_of::<super::StoredSeries>() <= 80);
    assert!(std::mem::size_of::<super::SeriesState>() <= 40);
}

/// Labels of one scope's series: `a` from the point, the rest derived.
fn scoped(a: &str, job: &str) -> LabelSet {
    let mut set = LabelSet::new();
    set.push_str("a", a, LabelSource::Attribute);
    set.push_str("instance", "host-1:9000", LabelSource::Derived);
    set.push_str("job", job, LabelSource::Derived);
    set.push_str("otel_scope_name", "io.example.lib", LabelSource::Derived);
    set.push_str("zone", "eu", LabelSource::Attribute);
    set.finish();
    set
}

#[test]
fn series_of_a_scope_keep_their_derived_labels_once() {
    assert!(
        size_of::<StoredSeries>() <= 80,
        "{}",
        size_of::<StoredSeries>()
    );
    let s = store();
    for i in 0..100 {
        let l = scoped(&i.to_string(), "shop");
        assert_eq!(put(&s, "m", FamilyKind::Gauge, &l, i as f64), Ok(true));
    }
    let other = scoped("0", "billing");
    assert_eq!(put(&s, "m", FamilyKind::Gauge, &other, -1.0), Ok(true));
    let family = s.family("m").unwrap();
    let runs = |family: &Family| -> usize { family.shards().map(|t| t.lock().shared_runs()).sum() };
    assert_eq!(family.series_count(), 101);
    assert_eq!(runs(&family), 2, "one run per (instance, job, scope)");

    // Every series reads back whole, in canonical order.
    let mut blocks: Vec<String> = family
        .shards()
        .flat_map(|t| {
            t.lock()
                .iter()
                .map(|v| v.labels().to_string())
                .collect::<Vec<_>>()
        })
        .collect();
    blocks.sort();
    assert_eq!(blocks.len(), 101);
    assert!(blocks.contains(&scoped("7", "shop").text().to_string()));
    assert!(blocks.contains(&other.text().to_string()));
    // Found by the same labels whatever their source.
    let plain = labels(&[
        ("a", "7"),
        ("instance", "host-1:9000"),
        ("job", "shop"),
        ("otel_scope_name", "io.example.lib"),
        ("zone", "eu"),
    ]);
    assert!(plain.shared_span().is_empty());
    assert_eq!(plain.route(), scoped("7", "shop").route());
    let table = family.shard_for(&plain).lock();
    let found = table.get(&plain).expect("found by plain labels");
    assert_eq!(found.state.value, SeriesValue::Number(7.0));
    assert!(table.get(&scoped("7", "billing")).is_none());
    drop(table);

    // The last user of a run releases it.
    assert!(family.shard_for(&other).lock().remove(&other));
    assert_eq!(runs(&family), 1);
    assert_eq!(family.series_count(), 100);
    let (removed, left) = family.expire_older_than(u32::MAX);
    assert_eq!((removed, left), (100, 0));
    assert_eq!(runs(&family), 0);
}

/// Watched rings over every shard of a family.
fn watched_in(family: &Family) -> usize {
    family.shards().map(|t| t.lock().watched_count()).sum()
}

/// A series keeps the latest exemplar of each slot that had one, and
/// only those take room; a point with another bucket layout starts them
/// over, and a slot outside the layout is ignored.
#[test]
fn exemplars_are_kept_for_the_slots_that_had_one() {
    use super::value::StoredExemplar;
    let exemplar = |value: f64, time_ns: u64| StoredExemplar {
        trace_id: [1; 16],
        span_id: [2; 8],
        value,
        time_ns,
        labels: None,
    };
    let mut state = SeriesState::new(SeriesValue::Number(0.0), 0, 0);
    assert_eq!(state.exemplar(0), None);
    state.record_exemplar(5, 17, exemplar(0.04, 1));
    state.record_exemplar(2, 17, exemplar(0.005, 2));
    state.record_exemplar(5, 17, exemplar(0.03, 3));
    state.record_exemplar(17, 17, exemplar(99.0, 4));
    let kept = state.exemplars.as_ref().map_or(0, |e| e.len());
    assert_eq!(kept, 2, "slots 2 and 5, the one outside ignored");
    assert_eq!(
        state.exemplar(5).map(|e| (e.value, e.time_ns)),
        Some((0.03, 3))
    );
    assert_eq!(state.exemplar(2).map(|e| e.value), Some(0.005));
    assert_eq!(state.exemplar(3), None);
    assert_eq!(state.exemplar(17), None);
    // Other bounds: what was kept belonged to other buckets.
    state.record_exemplar(1, 4, exemplar(1.0, 5));
    assert_eq!(state.exemplar(5), None);
    assert_eq!(state.exemplar(1).map(|e| e.time_ns), Some(5));
    assert_eq!(state.exemplars.as_ref().map_or(0, |e| e.len()), 1);
}

/// Each side's first bucket has its lower edge as a bound, so
/// `histogram_quantile` interpolates inside it: [-4, -2) and [-2, -1)
/// below zero, the zero bucket, then (2, 4] and (4, 8] above.
#[test]
fn classic_buckets_bound_each_sides_first_bucket_below() {
    use super::value::{Buckets, ExponentialHistogram};
    let h = ExponentialHistogram {
        scale: 0,
        zero_threshold: 0.0,
        zero_count: 1,
        positive: Buckets {
            offset: 1,
            counts: vec![2, 3],
        },
        negative: Buckets {
            offset: 0,
            counts: vec![4, 5],
        },
        count: 15,
        sum: None,
    };
    assert_eq!(
        h.classic_buckets(),
        vec![
            (-4.0, 0),
            (-2.0, 5),
            (-1.0, 9),
            (0.0, 10),
            (2.0, 10),
            (4.0, 12),
            (8.0, 15)
        ]
    );
}
