//! The value held for one series and how each kind of OTLP point updates it:
//! cumulative points replace, delta points accumulate (sums *and*
//! histograms), out-of-order points are ignored.

use std::sync::Arc;

/// What applying one point did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Applied {
    /// The series now reflects the point.
    Updated,
    /// The point was older than (or, for deltas, as old as) the stored one.
    OutOfOrder,
}

/// Explicit-bucket histogram state. `counts` are per bucket (not
/// cumulative), one more than `bounds` (the last is the `+Inf` bucket), or
/// empty when the sender gave only count and sum.
#[derive(Debug, Clone, PartialEq)]
pub struct ClassicHistogram {
    pub bounds: Arc<[f64]>,
    pub counts: Vec<u64>,
    pub count: u64,
    pub sum: Option<f64>,
}

/// Base-2 exponential histogram state, kept native so deltas of different
/// scales merge exactly; rendered as classic buckets.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExponentialHistogram {
    pub scale: i32,
    pub zero_threshold: f64,
    pub zero_count: u64,
    pub positive: Buckets,
    pub negative: Buckets,
    pub count: u64,
    pub sum: Option<f64>,
}

/// A run of exponential buckets starting at index `offset`.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Buckets {
    pub offset: i32,
    pub counts: Vec<u64>,
}

/// The scales an exponential histogram may have (as the OTel data model
/// allows: base 2^(2^-scale) from 2^1024 down to 2^(2^-20)).
pub const EXPONENTIAL_SCALES: std::ops::RangeInclusive<i32> = -10..=20;

/// How many buckets a side of a delta exponential histogram may span
/// after adding two points, unless a point alone is wider. OTel SDKs
/// default to 160 buckets a side; adding deltas whose ranges lie far
/// apart lowers the scale until the sum fits, as an SDK would, instead
/// of allocating the whole gap.
pub const MERGED_BUCKETS: usize = 160;

/// The largest bucket index magnitude a finite `f64` can fall into at
/// `scale`: |value| lies within 2^±1075, so |index| ≤ 1075 × 2^scale.
/// At scale 20 that is 1,127,219,200, well inside `i32`.
pub fn exponential_index_limit(scale: i32) -> i64 {
    if scale >= 0 {
        1075_i64 << scale
    } else {
        (1075_i64 >> -scale) + 1
    }
}

/// Summary state: (quantile, value) pairs as sent.
#[derive(Debug, Clone, PartialEq)]
pub struct Summary {
    pub quantiles: Vec<(f64, f64)>,
    pub count: u64,
    pub sum: f64,
}

/// The value of a series.
#[derive(Debug, Clone, PartialEq)]
pub enum SeriesValue {
    Number(f64),
    Histogram(Box<ClassicHistogram>),
    Exponential(Box<ExponentialHistogram>),
    Summary(Box<Summary>),
}

/// How a point combines with what is stored.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Temporality {
    /// The point carries the total since `start`: replace.
    Cumulative,
    /// The point carries the change since the previous point: add.
    Delta,
}

/// One stored series: its value and the timestamps of the last point.
#[derive(Debug, Clone, PartialEq)]
pub struct SeriesState {
    pub value: SeriesValue,
    /// Start of the cumulative interval, Unix ns (0 = unknown).
    pub start_ns: u64,
    /// Timestamp of the last applied point, Unix ns (0 = unknown).
    pub time_ns: u64,
    /// The latest exemplar per slot (one slot for numbers, one per bucket
    /// for histograms) that has had one; `None` until a point carries
    /// one. (A thin box: most series never have one, and this keeps every
    /// series' state 8 bytes smaller.)
    pub exemplars: Option<Box<Exemplars>>,
}

/// The latest exemplar of each slot that has had one, in slot order.
/// Only those slots take room: a latency histogram's values fall in a
/// few of its buckets (span durations of 1–50 ms in 6 of the default
/// 17), and a slot without one cost as much as one with.
#[derive(Debug, Clone, PartialEq)]
pub struct Exemplars {
    /// Slots of the layout these were kept for: points with another
    /// layout (other bucket bounds) start them over.
    slots: usize,
    kept: Vec<KeptExemplar>,
}

#[derive(Debug, Clone, PartialEq)]
struct KeptExemplar {
    exemplar: StoredExemplar,
    slot: u32,
}

impl Exemplars {
    fn new(slots: usize) -> Self {
        Self {
            slots,
            kept: Vec::new(),
        }
    }

    /// Keeps `exemplar` as the latest of `slot`; a slot outside the
    /// layout is ignored.
    fn record(&mut self, slot: usize, slots: usize, exemplar: StoredExemplar) {
        if self.slots != slots {
            self.slots = slots;
            self.kept.clear();
        }
        let Some(slot) = u32::try_from(slot).ok().filter(|_| slot < slots) else {
            return;
        };
        match self.kept.binary_search_by_key(&slot, |k| k.slot) {
            Ok(i) => self.kept[i].exemplar = exemplar,
            Err(i) => {
                // A new slot is rare (once per bucket the series ever
                // fills): room for exactly one more.
                self.kept.reserve_exact(1);
                self.kept.insert(i, KeptExemplar { exemplar, slot });
            }
        }
    }

    fn get(&self, slot: usize) -> Option<&StoredExemplar> {
        let slot = u32::try_from(slot).ok()?;
        let i = self.kept.binary_search_by_key(&slot, |k| k.slot).ok()?;
        Some(&self.kept[i].exemplar)
    }

    /// Slots holding one.
    pub fn len(&self) -> usize {
        self.kept.len()
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }
}

/// An exemplar: the trace and span behind a value, for OpenMetrics.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredExemplar {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    pub value: f64,
    pub time_ns: u64,
    /// The exemplar's `filtered_attributes` as OpenMetrics label pairs
    /// written after `span_id` (`,name="value"…`, names translated and
    /// values escaped), when it had some and they fit the exemplar's
    /// 128-character limit; `None` otherwise.
    pub labels: Option<Box<str>>,
}

impl SeriesState {
    pub fn new(value: SeriesValue, start_ns: u64, time_ns: u64) -> Self {
        Self {
            value,
            start_ns,
            time_ns,
            exemplars: None,
        }
    }

    /// Keeps `exemplar` as the latest one of `slot` (of `slots`).
    pub fn record_exemplar(&mut self, slot: usize, slots: usize, exemplar: StoredExemplar) {
        self.exemplars
            .get_or_insert_with(|| Box::new(Exemplars::new(slots)))
            .record(slot, slots, exemplar);
    }

    pub fn exemplar(&self, slot: usize) -> Option<&StoredExemplar> {
        self.exemplars.as_ref()?.get(slot)
    }

    fn is_out_of_order(&self, time_ns: u64, temporality: Temporality) -> bool {
        if time_ns == 0 || self.time_ns == 0 {
            return false;
        }
        match temporality {
            Temporality::Cumulative => time_ns < self.time_ns,
            // A repeated delta (same timestamp) would be counted twice.
            Temporality::Delta => time_ns <= self.time_ns,
        }
    }

    /// Applies a point of the same kind. `incoming` is the point's value as
    /// a fresh state.
    pub fn apply(&mut self, incoming: SeriesState, temporality: Temporality) -> Applied {
        if self.is_out_of_order(incoming.time_ns, temporality) {
            return Applied::OutOfOrder;
        }
        match temporality {
            Temporality::Cumulative => {
                let exemplars = self.exemplars.take();
                *self = incoming;
                self.exemplars = exemplars;
            }
            Temporality::Delta => {
                let merged = match (&mut self.value, incoming.value) {
                    (SeriesValue::Number(total), SeriesValue::Number(delta)) => {
                        *total += delta;
                        true
                    }
                    (SeriesValue::Histogram(_), SeriesValue::Histogram(delta)) => {
                        let point = HistogramPoint {
                            start_ns: incoming.start_ns,
                            time_ns: incoming.time_ns,
                            bounds: &delta.bounds,
                            counts: &delta.counts,
                            count: delta.count,
                            sum: delta.sum,
                        };
                        self.merge_histogram(&point, Temporality::Delta);
                        return Applied::Updated;
                    }
                    (SeriesValue::Exponential(total), SeriesValue::Exponential(delta)) => {
                        total.add_delta(*delta);
                        true
                    }
                    (slot, other) => {
                        *slot = other;
                        false
                    }
                };
                if !merged {
                    // A changed layout restarts the accumulation.
                    self.start_ns = incoming.start_ns;
                }
                if self.start_ns == 0 {
                    self.start_ns = incoming.start_ns;
                }
                self.time_ns = incoming.time_ns;
            }
        }
        Applied::Updated
    }
}

/// A histogram point as it arrives, borrowed from the request.
#[derive(Debug, Clone, Copy)]
pub struct HistogramPoint<'a> {
    pub start_ns: u64,
    pub time_ns: u64,
    pub bounds: &'a [f64],
    pub counts: &'a [u64],
    pub count: u64,
    pub sum: Option<f64>,
}

impl HistogramPoint<'_> {
    /// The state of a new series holding this point.
    pub fn to_state(&self) -> SeriesState {
        SeriesState::new(
            SeriesValue::Histogram(Box::new(ClassicHistogram {
                bounds: Arc::from(self.bounds),
                counts: self.counts.to_vec(),
                count: self.count,
                sum: self.sum,
            })),
            self.start_ns,
            self.time_ns,
        )
    }
}

impl SeriesState {
    /// Applies a histogram point in place: with an unchanged bucket layout
    /// no allocation happens.
    pub fn apply_histogram(
        &mut self,
        point: &HistogramPoint<'_>,
        temporality: Temporality,
    ) -> Applied {
        if self.is_out_of_order(point.time_ns, temporality) {
            return Applied::OutOfOrder;
        }
        self.merge_histogram(point, temporality);
        Applied::Updated
    }

    /// Adds (delta) or sets (cumulative) a histogram point, ordering
    /// already checked.
    fn merge_histogram(&mut self, point: &HistogramPoint<'_>, temporality: Temporality) {
        let SeriesValue::Histogram(h) = &mut self.value else {
            *self = point.to_state();
            return;
        };
        let same_layout = *h.bounds == *point.bounds && h.counts.len() == point.counts.len();
        match (temporality, same_layout) {
            (Temporality::Delta, true) => {
                for (total, add) in h.counts.iter_mut().zip(point.counts) {
                    *total = total.saturating_add(*add);
                }
                h.count = h.count.saturating_add(point.count);
                h.sum = match (h.sum, point.sum) {
                    (Some(a), Some(b)) => Some(a + b),
                    (a, b) => a.or(b),
                };
                if self.start_ns == 0 {
                    self.start_ns = point.start_ns;
                }
            }
            (Temporality::Cumulative, true) => {
                h.counts.copy_from_slice(point.counts);
                h.count = point.count;
                h.sum = point.sum;
                self.start_ns = point.start_ns;
            }
            // A new layout restarts the series from this point.
            (_, false) => {
                *self = point.to_state();
                return;
            }
        }
        self.time_ns = point.time_ns;
    }
}

impl Buckets {
    /// Whether every bucket index lies within `±limit` (see
    /// [`exponential_index_limit`]); empty buckets always do.
    pub fn within(&self, limit: i64) -> bool {
        let first = i64::from(self.offset);
        let last = first + self.counts.len() as i64 - 1;
        self.counts.is_empty() || (first >= -limit && last <= limit)
    }

    /// The first and last index these buckets cover once re-indexed
    /// `shift` levels down, or `None` when there are none.
    fn range_after(&self, shift: u32) -> Option<(i64, i64)> {
        if self.counts.is_empty() {
            return None;
        }
        let first = i64::from(self.offset);
        let last = first + self.counts.len() as i64 - 1;
        Some((first >> shift, last >> shift))
    }

    /// How many buckets `self` re-indexed `shift` levels down and `other`
    /// `other_shift` levels down span together.
    fn merged_width(&self, shift: u32, other: &Buckets, other_shift: u32) -> usize {
        let ranges = [self.range_after(shift), other.range_after(other_shift)];
        let mut covered = ranges.into_iter().flatten();
        let Some((mut first, mut last)) = covered.next() else {
            return 0;
        };
        for (f, l) in covered {
            first = first.min(f);
            last = last.max(l);
        }
        (last - first + 1) as usize
    }

    /// Re-indexes these buckets to a coarser scale (`shift` levels down):
    /// each bucket index `i` becomes `i >> shift`.
    fn downscale(&mut self, shift: u32) {
        if shift == 0 || self.counts.is_empty() {
            return;
        }
        let first = self.offset >> shift;
        let last = (self.offset + self.counts.len() as i32 - 1) >> shift;
        let mut merged = vec![0u64; (last - first + 1) as usize];
        for (i, count) in self.counts.iter().enumerate() {
            let index = (self.offset + i as i32) >> shift;
            merged[(index - first) as usize] += count;
        }
        self.offset = first;
        self.counts = merged;
    }

    fn add(&mut self, other: &Buckets) {
        if other.counts.is_empty() {
            return;
        }
        if self.counts.is_empty() {
            *self = other.clone();
            return;
        }
        let first = self.offset.min(other.offset);
        let last =
            (self.offset + self.counts.len() as i32).max(other.offset + other.counts.len() as i32);
        let mut merged = vec![0u64; (last - first) as usize];
        for (src, offset) in [(&self.counts, self.offset), (&other.counts, other.offset)] {
            for (i, count) in src.iter().enumerate() {
                let slot = (offset - first) as usize + i;
                merged[slot] = merged[slot].saturating_add(*count);
            }
        }
        self.offset = first;
        self.counts = merged;
    }
}

impl ExponentialHistogram {
    fn add_delta(&mut self, mut delta: ExponentialHistogram) {
        let mut scale = self.scale.min(delta.scale);
        while scale > *EXPONENTIAL_SCALES.start() && !self.fits_with(&delta, scale) {
            scale -= 1;
        }
        let shift_self = (self.scale - scale) as u32;
        let shift_delta = (delta.scale - scale) as u32;
        self.positive.downscale(shift_self);
        self.negative.downscale(shift_self);
        delta.positive.downscale(shift_delta);
        delta.negative.downscale(shift_delta);
        self.scale = scale;
        self.positive.add(&delta.positive);
        self.negative.add(&delta.negative);
        self.zero_count = self.zero_count.saturating_add(delta.zero_count);
        self.zero_threshold = self.zero_threshold.max(delta.zero_threshold);
        self.count = self.count.saturating_add(delta.count);
        self.sum = match (self.sum, delta.sum) {
            (Some(a), Some(b)) => Some(a + b),
            (a, b) => a.or(b),
        };
    }

    /// Whether `self` and `delta` added at `scale` keep each side within
    /// [`MERGED_BUCKETS`] (or within the wider of the two, if one is).
    fn fits_with(&self, delta: &ExponentialHistogram, scale: i32) -> bool {
        let shift = (self.scale - scale) as u32;
        let delta_shift = (delta.scale - scale) as u32;
        [
            (&self.positive, &delta.positive),
            (&self.negative, &delta.negative),
        ]
        .into_iter()
        .all(|(own, other)| {
            let cap = MERGED_BUCKETS.max(own.counts.len()).max(other.counts.len());
            own.merged_width(shift, other, delta_shift) <= cap
        })
    }

    /// The classic `le` buckets this histogram maps to: (upper bound,
    /// cumulative count), ascending, without the final `+Inf`. Every bound
    /// is finite: a bucket whose edge overflows (at scale -10 every bucket
    /// above 1 does) is counted in the next finite bound, or in `+Inf`,
    /// so no `le` is written twice. The lower edge of the first bucket on
    /// each side is a bound too (holding what lies below it), so
    /// `histogram_quantile` interpolates inside that bucket rather than
    /// from zero.
    pub fn classic_buckets(&self) -> Vec<(f64, u64)> {
        let base_log2 = (-self.scale as f64).exp2();
        let bound = |index: i32| (index as f64 * base_log2).exp2();
        let mut out =
            Vec::with_capacity(self.positive.counts.len() + self.negative.counts.len() + 3);
        let mut running = 0u64;
        // Negative bucket i holds values in [-base^(i+1), -base^i): walk from
        // the most negative upward, from its lower edge.
        let negatives = self.negative.counts.len() as i32;
        if negatives > 0 {
            let lowest = -bound(self.negative.offset.saturating_add(negatives));
            if lowest.is_finite() {
                out.push((lowest, 0));
            }
        }
        for (i, count) in self.negative.counts.iter().enumerate().rev() {
            running = running.saturating_add(*count);
            let edge = -bound(self.negative.offset + i as i32);
            if edge.is_finite() {
                out.push((edge, running));
            }
        }
        running = running.saturating_add(self.zero_count);
        out.push((self.zero_threshold, running));
        if !self.positive.counts.is_empty() {
            let lowest = bound(self.positive.offset);
            if lowest > self.zero_threshold && lowest.is_finite() {
                out.push((lowest, running));
            }
        }
        for (i, count) in self.positive.counts.iter().enumerate() {
            running = running.saturating_add(*count);
            let edge = bound(self.positive.offset + i as i32 + 1);
            if !edge.is_finite() {
                // This bucket and those above it: only `+Inf` holds them.
                break;
            }
            out.push((edge, running));
        }
        out
    }
}
