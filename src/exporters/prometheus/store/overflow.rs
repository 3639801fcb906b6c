//! Series beyond a limit: instead of a series of their own, their points
//! fold into one series per family labelled `otel_metric_overflow="true"`
//! (the OpenTelemetry convention for the aggregate over the cardinality
//! limit), so the family's totals stay right and memory stays bounded.
//!
//! How a point folds in depends on what it means:
//! - counters and classic histograms add their *increase*: a delta point
//!   as it is, a cumulative one less the last value seen of the same
//!   series (a compact record of 8 bytes of key plus the value, far less
//!   than a stored series). A series' first point, or one that went down
//!   (a reset), adds its whole value;
//! - gauges, summaries and exponential histograms cannot be summed
//!   across series: the overflow series shows the latest such point.
//!
//! The record of last values is bounded (`tracked` per family): when it
//! is full, a cumulative point of a series not in it cannot be folded
//! without counting its whole history again, and is refused (counted, and
//! reported to the sender as rejected).

use hashbrown::HashTable;

use super::FamilyKind;
use super::value::{ClassicHistogram, SeriesState, SeriesValue, Temporality};

/// The label of the overflow series.
pub const OVERFLOW_LABEL: &str = "otel_metric_overflow";
/// The overflow series' label block as stored.
pub const OVERFLOW_TEXT: &str = "otel_metric_overflow=\"true\"";

/// Series limits of the store.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SeriesLimits {
    /// Series per family (metric); more fold into its overflow series.
    pub per_metric: usize,
    /// Series over all families.
    pub global: usize,
}

impl SeriesLimits {
    pub const UNLIMITED: Self = Self {
        per_metric: usize::MAX,
        global: usize::MAX,
    };

    /// Cumulative series beyond the limit whose last value a family keeps.
    pub fn tracked(&self) -> usize {
        self.per_metric.min(self.global)
    }
}

impl Default for SeriesLimits {
    fn default() -> Self {
        Self::UNLIMITED
    }
}

/// What folding one point did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Folded {
    /// The overflow series now includes the point.
    Folded,
    /// A cumulative point of an untracked series with the record full.
    Refused,
}

/// The last value of each cumulative series folded into a family's
/// overflow series, by the first word of its raw key.
#[derive(Default)]
pub struct LastValues {
    last: HashTable<(u64, SeriesValue)>,
}

impl LastValues {
    pub fn len(&self) -> usize {
        self.last.len()
    }

    pub fn is_empty(&self) -> bool {
        self.last.is_empty()
    }

    /// The increase `incoming` brings over the last value of series `key`
    /// (recording `incoming` as its last value), or `None` when the series
    /// is new and `tracked` series are recorded already.
    fn increase(
        &mut self,
        key: u64,
        incoming: &SeriesValue,
        tracked: usize,
    ) -> Option<SeriesValue> {
        let found = self.last.find_mut(key, |(k, _)| *k == key);
        let Some((_, last)) = found else {
            if self.last.len() >= tracked {
                return None;
            }
            self.last
                .insert_unique(key, (key, incoming.clone()), |(k, _)| *k);
            return Some(incoming.clone());
        };
        let increase = match (&*last, incoming) {
            (SeriesValue::Number(before), SeriesValue::Number(now)) if now >= before => {
                SeriesValue::Number(now - before)
            }
            (SeriesValue::Histogram(before), SeriesValue::Histogram(now)) => {
                histogram_increase(before, now)
            }
            // A reset, or another layout: the whole value is new.
            _ => incoming.clone(),
        };
        *last = incoming.clone();
        Some(increase)
    }
}

/// `now − before` bucket by bucket when the layout is the same and nothing
/// went down; else (a reset) `now` whole.
fn histogram_increase(before: &ClassicHistogram, now: &ClassicHistogram) -> SeriesValue {
    let same_layout = before.bounds == now.bounds && before.counts.len() == now.counts.len();
    let grew =
        now.count >= before.count && before.counts.iter().zip(&now.counts).all(|(b, n)| n >= b);
    if !(same_layout && grew) {
        return SeriesValue::Histogram(Box::new(now.clone()));
    }
    SeriesValue::Histogram(Box::new(ClassicHistogram {
        bounds: now.bounds.clone(),
        counts: now
            .counts
            .iter()
            .zip(&before.counts)
            .map(|(n, b)| n - b)
            .collect(),
        count: now.count - before.count,
        sum: match (now.sum, before.sum) {
            (Some(n), Some(b)) => Some(n - b),
            (n, _) => n,
        },
    }))
}

/// Adds `increase` into the overflow series' `total` (a histogram of
/// another layout replaces it and restarts the sum).
fn add(total: &mut SeriesValue, increase: SeriesValue) {
    match (total, increase) {
        (SeriesValue::Number(t), SeriesValue::Number(d)) => *t += d,
        (SeriesValue::Histogram(t), SeriesValue::Histogram(d))
            if t.bounds == d.bounds && t.counts.len() == d.counts.len() =>
        {
            for (c, dc) in t.counts.iter_mut().zip(&d.counts) {
                *c = c.saturating_add(*dc);
            }
            t.count = t.count.saturating_add(d.count);
            t.sum = match (t.sum, d.sum) {
                (Some(a), Some(b)) => Some(a + b),
                (a, b) => a.or(b),
            };
        }
        (slot, other) => *slot = other,
    }
}

/// Whether points of this kind and value add up across series.
fn sums(kind: FamilyKind, value: &SeriesValue) -> bool {
    match value {
        SeriesValue::Number(_) => kind == FamilyKind::Counter,
        SeriesValue::Histogram(_) => true,
        SeriesValue::Exponential(_) | SeriesValue::Summary(_) => false,
    }
}

/// Folds the point `incoming` of the series with raw key `key` into the
/// overflow series `total` (`None` when it does not exist yet: the state
/// to create it with is returned).
pub fn fold(
    last: &mut LastValues,
    key: u64,
    kind: FamilyKind,
    temporality: Temporality,
    mut incoming: SeriesState,
    total: Option<&mut SeriesState>,
    tracked: usize,
) -> (Folded, Option<SeriesState>) {
    incoming.exemplars = None;
    if !sums(kind, &incoming.value) {
        // The latest point shows.
        return match total {
            Some(t) => {
                if incoming.time_ns >= t.time_ns {
                    *t = incoming;
                }
                (Folded::Folded, None)
            }
            None => (Folded::Folded, Some(incoming)),
        };
    }
    let increase = match temporality {
        Temporality::Delta => incoming.value.clone(),
        Temporality::Cumulative => match last.increase(key, &incoming.value, tracked) {
            Some(increase) => increase,
            None => return (Folded::Refused, None),
        },
    };
    match total {
        Some(t) => {
            add(&mut t.value, increase);
            t.time_ns = t.time_ns.max(incoming.time_ns);
            if incoming.start_ns != 0 && (t.start_ns == 0 || incoming.start_ns < t.start_ns) {
                t.start_ns = incoming.start_ns;
            }
            (Folded::Folded, None)
        }
        None => {
            incoming.value = increase;
            (Folded::Folded, Some(incoming))
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    fn number(v: f64, t: u64) -> SeriesState {
        SeriesState::new(SeriesValue::Number(v), 1, t)
    }

    fn value(s: &SeriesState) -> f64 {
        match s.value {
            SeriesValue::Number(v) => v,
            _ => f64::NAN,
        }
    }

    #[test]
    fn cumulative_counters_add_their_increases_and_resets() {
        let mut last = LastValues::default();
        let c = FamilyKind::Counter;
        let cum = Temporality::Cumulative;
        let (_, created) = fold(&mut last, 1, c, cum, number(10.0, 1), None, 10);
        let mut total = created.expect("created");
        assert_eq!(value(&total), 10.0);
        // Series 2 appears with 5, series 1 grows to 13, series 2 resets to 1.
        for (key, v) in [(2, 5.0), (1, 13.0), (2, 1.0)] {
            let (f, none) = fold(&mut last, key, c, cum, number(v, 2), Some(&mut total), 10);
            assert_eq!((f, none.is_none()), (Folded::Folded, true));
        }
        assert_eq!(value(&total), 10.0 + 5.0 + 3.0 + 1.0);
        assert_eq!(last.len(), 2);
    }

    #[test]
    fn a_full_record_refuses_new_cumulative_series_but_not_deltas() {
        let mut last = LastValues::default();
        let c = FamilyKind::Counter;
        let (_, t) = fold(
            &mut last,
            1,
            c,
            Temporality::Cumulative,
            number(1.0, 1),
            None,
            1,
        );
        let mut total = t.expect("created");
        let (f, _) = fold(
            &mut last,
            2,
            c,
            Temporality::Cumulative,
            number(7.0, 2),
            Some(&mut total),
            1,
        );
        assert_eq!(f, Folded::Refused);
        let (f, _) = fold(
            &mut last,
            2,
            c,
            Temporality::Delta,
            number(7.0, 2),
            Some(&mut total),
            1,
        );
        assert_eq!(f, Folded::Folded);
        assert_eq!(value(&total), 8.0);
    }

    #[test]
    fn gauges_show_the_latest_point() {
        let mut last = LastValues::default();
        let g = FamilyKind::Gauge;
        let cum = Temporality::Cumulative;
        let (_, t) = fold(&mut last, 1, g, cum, number(3.0, 5), None, 10);
        let mut total = t.expect("created");
        fold(&mut last, 2, g, cum, number(9.0, 4), Some(&mut total), 10);
        assert_eq!(value(&total), 3.0, "an older point does not replace");
        fold(&mut last, 2, g, cum, number(9.0, 6), Some(&mut total), 10);
        assert_eq!(value(&total), 9.0);
        assert!(last.is_empty(), "gauges need no record");
    }

    #[test]
    fn cumulative_histograms_add_bucket_increases() {
        let bounds: Arc<[f64]> = Arc::from(vec![1.0, 2.0]);
        let h = |counts: Vec<u64>, sum: f64| {
            SeriesState::new(
                SeriesValue::Histogram(Box::new(ClassicHistogram {
                    bounds: bounds.clone(),
                    count: counts.iter().sum(),
                    counts,
                    sum: Some(sum),
                })),
                1,
                1,
            )
        };
        let mut last = LastValues::default();
        let (kind, cum) = (FamilyKind::Histogram, Temporality::Cumulative);
        let (_, t) = fold(&mut last, 1, kind, cum, h(vec![1, 0, 0], 0.5), None, 10);
        let mut total = t.expect("created");
        fold(
            &mut last,
            2,
            kind,
            cum,
            h(vec![0, 2, 0], 3.0),
            Some(&mut total),
            10,
        );
        fold(
            &mut last,
            1,
            kind,
            cum,
            h(vec![1, 0, 4], 20.5),
            Some(&mut total),
            10,
        );
        let SeriesValue::Histogram(total) = &total.value else {
            panic!("a histogram")
        };
        assert_eq!(total.counts, vec![1, 2, 4]);
        assert_eq!(total.count, 7);
        assert_eq!(total.sum, Some(23.5));
    }
}
