//! The store's durable state: the series of families that add up delta
//! points (delta sums and histograms, whose totals exist nowhere but
//! here), with their label blocks, values and start times. Restored at
//! start, so a counter fed by a delta sender continues across a restart
//! instead of falling to the next delta (which Prometheus would read as a
//! reset). Series of cumulative senders are not kept: the sender's next
//! point carries the total.
//!
//! Payload (postcard): the number of families; each as its name, kind,
//! help, unit and number of series; each series as its label block and
//! state (value, start and last time; exemplars are not kept).

use serde::{Deserialize, Serialize};

use super::SeriesStore;
use super::family::{FamilyKind, FamilyMeta};
use super::labels::{LabelSet, LabelSource, parse_label_block};
use super::value::{ClassicHistogram, ExponentialHistogram, SeriesState, SeriesValue, Temporality};
use crate::pipeline::durable::{DurableError, append as put};

#[derive(Serialize, Deserialize)]
struct SavedFamily {
    name: String,
    kind: u8,
    help: String,
    unit: String,
    series: u64,
}

#[derive(Serialize, Deserialize)]
enum SavedValue {
    Number(f64),
    Histogram {
        bounds: Vec<f64>,
        counts: Vec<u64>,
        count: u64,
        sum: Option<f64>,
    },
    Exponential(ExponentialHistogram),
}

#[derive(Serialize, Deserialize)]
struct SavedSeries {
    labels: String,
    value: SavedValue,
    start_ns: u64,
    time_ns: u64,
}

fn kind_code(kind: FamilyKind) -> u8 {
    match kind {
        FamilyKind::Gauge => 0,
        FamilyKind::Counter => 1,
        FamilyKind::Histogram => 2,
        FamilyKind::Summary => 3,
        FamilyKind::Unknown => 4,
    }
}

fn kind_of(code: u8) -> Option<FamilyKind> {
    match code {
        1 => Some(FamilyKind::Counter),
        2 => Some(FamilyKind::Histogram),
        0 => Some(FamilyKind::Gauge),
        4 => Some(FamilyKind::Unknown),
        _ => None,
    }
}

fn saved_value(value: &SeriesValue) -> Option<SavedValue> {
    Some(match value {
        SeriesValue::Number(v) => SavedValue::Number(*v),
        SeriesValue::Histogram(h) => SavedValue::Histogram {
            bounds: h.bounds.to_vec(),
            counts: h.counts.clone(),
            count: h.count,
            sum: h.sum,
        },
        SeriesValue::Exponential(h) => SavedValue::Exponential((**h).clone()),
        SeriesValue::Summary(_) => return None,
    })
}

fn series_value(saved: SavedValue) -> SeriesValue {
    match saved {
        SavedValue::Number(v) => SeriesValue::Number(v),
        SavedValue::Histogram {
            bounds,
            counts,
            count,
            sum,
        } => SeriesValue::Histogram(Box::new(ClassicHistogram {
            bounds: bounds.into(),
            counts,
            count,
            sum,
        })),
        SavedValue::Exponential(h) => SeriesValue::Exponential(Box::new(h)),
    }
}

/// Reads a label block back into a label set (`job`, `instance` and
/// `otel_scope_*` as derived labels, so their runs are shared again).
fn parse_labels(text: &str, out: &mut LabelSet) {
    out.clear();
    for (name, value) in parse_label_block(text) {
        let source =
            if matches!(name.as_str(), "job" | "instance") || name.starts_with("otel_scope_") {
                LabelSource::Derived
            } else {
                LabelSource::Attribute
            };
        out.push_str(&name, &value, source);
    }
    out.finish();
}

impl SeriesStore {
    /// Appends the series of every accumulating family to `out`.
    pub fn save_accumulated(&self, out: &mut Vec<u8>) -> Result<(), DurableError> {
        let families: Vec<_> = self
            .families_sorted()
            .into_iter()
            .filter(|f| f.accumulates() && f.kind() != FamilyKind::Summary)
            .collect();
        put(&(families.len() as u64), out)?;
        let mut text = String::new();
        for family in families {
            // Every shard at once, so the count written is the series written.
            let shards = family.lock_all();
            let meta = family.text();
            put(
                &SavedFamily {
                    name: family.name().to_string(),
                    kind: kind_code(family.kind()),
                    help: meta.help,
                    unit: meta.unit,
                    series: shards.iter().map(|s| s.len() as u64).sum(),
                },
                out,
            )?;
            for view in shards.iter().flat_map(|s| s.iter()) {
                text.clear();
                view.labels().push_to(&mut text);
                let value = saved_value(&view.state.value).unwrap_or(SavedValue::Number(f64::NAN));
                put(
                    &SavedSeries {
                        labels: text.clone(),
                        value,
                        start_ns: view.state.start_ns,
                        time_ns: view.state.time_ns,
                    },
                    out,
                )?;
            }
        }
        Ok(())
    }

    /// Takes back what [`SeriesStore::save_accumulated`] wrote; returns
    /// (series restored, series discarded).
    pub fn restore_accumulated(&self, bytes: &[u8]) -> Result<(u64, u64), DurableError> {
        let (families, mut rest): (u64, _) =
            postcard::take_from_bytes(bytes).map_err(DurableError::decode)?;
        // Everything is read before anything is stored: a snapshot that
        // fails half-way leaves no series behind.
        let mut read = Vec::new();
        for _ in 0..families {
            let (family, tail): (SavedFamily, _) =
                postcard::take_from_bytes(rest).map_err(DurableError::decode)?;
            rest = tail;
            let mut series = Vec::with_capacity(family.series.min(1 << 20) as usize);
            for _ in 0..family.series {
                let (saved, tail): (SavedSeries, _) =
                    postcard::take_from_bytes(rest).map_err(DurableError::decode)?;
                rest = tail;
                series.push(saved);
            }
            read.push((family, series));
        }
        if !rest.is_empty() {
            return Err(DurableError::decode("bytes after the last family"));
        }
        let (mut restored, mut discarded) = (0u64, 0u64);
        let mut labels = LabelSet::new();
        let now = self.now_tick();
        for (family, series) in read {
            let Some(kind) = kind_of(family.kind) else {
                discarded += series.len() as u64;
                continue;
            };
            let meta = FamilyMeta {
                name: &family.name,
                kind,
                help: &family.help,
                unit: &family.unit,
            };
            let added = self.with_family(meta, |f| {
                f.mark_accumulating();
                let (mut added, mut skipped) = (0u64, 0u64);
                for saved in series {
                    parse_labels(&saved.labels, &mut labels);
                    if labels.text() != saved.labels {
                        skipped += 1;
                        continue;
                    }
                    let state = SeriesState {
                        value: series_value(saved.value),
                        start_ns: saved.start_ns,
                        time_ns: saved.time_ns,
                        exemplars: None,
                    };
                    let mut table = f.shard_for(&labels).lock();
                    let (_, new) = table.upsert(&labels, state, Temporality::Cumulative, now);
                    if new {
                        added += 1;
                    }
                }
                (added, skipped)
            });
            match added {
                Ok((added, skipped)) => {
                    self.telemetry().series_added(added);
                    restored += added;
                    discarded += skipped;
                }
                Err(_) => discarded += family.series,
            }
        }
        Ok((restored, discarded))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_blocks_read_back_to_the_same_block() {
        let mut labels = LabelSet::new();
        labels.push_str("job", "shop/cart", LabelSource::Derived);
        labels.push_str(
            "path",
            "a \"quoted\" \\ back\nslash",
            LabelSource::Attribute,
        );
        labels.push_str("otel_scope_name", "lib", LabelSource::Derived);
        labels.finish();
        let text = labels.text().to_string();
        let mut back = LabelSet::new();
        parse_labels(&text, &mut back);
        assert_eq!(back.text(), text);
        assert_eq!(back.hash(), labels.hash());
        parse_labels("", &mut back);
        assert_eq!(back.text(), "");
    }
}
