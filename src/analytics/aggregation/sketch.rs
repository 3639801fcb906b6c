//! [`Sketch`]: a DDSketch-style quantile sketch with relative-error
//! guarantees, log-spaced bins (see [`mapping`](super::mapping) for the
//! bound), a zero count and separate stores for positive and negative
//! values.
//!
//! # Accuracy
//!
//! `quantile(q)` answers with the element of 0-based rank
//! `⌊q·(count − 1)⌋` in sorted order, to within relative error `α` (the
//! `relative_accuracy`): each bin's count is exact and the bins are
//! ordered, so the walk finds the bin that holds that element, and the
//! bin's value is within `α` of everything in it. The answer is clamped to
//! `[min, max]`, which only moves it towards the true value; `q = 0` and
//! `q = 1` return the exact minimum and maximum. With the default
//! `α = 0.005` the error is at most 0.5 %, half the 1 % the analytics
//! promise, leaving room for float rounding (≈1e-13).
//!
//! # Bin limit
//!
//! Each sign keeps at most `max_bins` consecutive bins, i.e. a ratio of
//! `γ^max_bins` between the largest and smallest magnitude kept at full
//! accuracy (≈7.8e8 for the defaults: 1 µs to 13 min for latencies). Past
//! that the *lowest values* give way: on the positive side the smallest
//! magnitudes fold into the lowest bin kept, on the negative side the
//! largest magnitudes (the most negative values) fold into the highest
//! bin kept. Counts are never lost; quantiles whose rank falls in a folded
//! bin are over-estimated (never below the true value, never above
//! `max`), and every quantile above them keeps the `α` bound.
//!
//! # Memory
//!
//! Bins are dense counters over the range of bins in use plus up to a
//! quarter of slack, one byte each while no bin holds more than 255 values
//! (then 2, 4 or 8 bytes, as needed), so a sketch of typical latencies
//! (≈900 bins in use) takes 1–2 KiB; whatever it has seen,
//! `memory_bytes() ≤ size_of::<Sketch>() + 2 · max_bins · 8`
//! ([`Sketch::memory_bound`]).

use super::AggregationError;
use super::mapping::LogMapping;
use super::store::{Collapse, Store};

/// The relative accuracy used by [`Sketch::default`]: 0.5 %.
pub const DEFAULT_RELATIVE_ACCURACY: f64 = 0.005;
/// The bin limit (per sign) used by [`Sketch::default`].
pub const DEFAULT_MAX_BINS: usize = 2048;
/// The smallest relative accuracy accepted.
pub const MIN_RELATIVE_ACCURACY: f64 = 1e-6;
/// The largest relative accuracy accepted (bins a factor 3 wide).
pub const MAX_RELATIVE_ACCURACY: f64 = 0.5;
/// The smallest bin limit accepted.
pub const MIN_MAX_BINS: usize = 16;
/// The largest bin limit accepted (8 MiB per sign at most).
pub const MAX_MAX_BINS: usize = 1 << 20;

/// Where a value goes in a sketch. Computed once per value by
/// [`WindowedStats`](super::WindowedStats) and applied to every window.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Bin {
    Zero,
    Positive(i64),
    Negative(i64),
}

/// A mergeable quantile sketch with relative-error guarantees.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub struct Sketch {
    mapping: LogMapping,
    /// Bins of positive values by key, folding the lowest keys.
    positive: Store,
    /// Bins of negative values by the key of their magnitude, folding the
    /// highest keys (the lowest values).
    negative: Store,
    zero_count: u64,
    count: u64,
    sum: f64,
    min: f64,
    max: f64,
    max_bins: usize,
}

impl Default for Sketch {
    fn default() -> Self {
        Self::new(DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS)
    }
}

impl Sketch {
    /// Whether `other` was made with the same accuracy and bin limit (so
    /// the two merge, and a deserialised one fits the configuration).
    pub fn same_shape(&self, other: &Sketch) -> bool {
        self.mapping == other.mapping && self.max_bins == other.max_bins
    }

    /// A sketch answering quantiles within `relative_accuracy` (e.g.
    /// `0.005`), keeping at most `max_bins` bins per sign (e.g. `2048`).
    /// Out-of-range arguments are clamped to
    /// [`MIN_RELATIVE_ACCURACY`]`..=`[`MAX_RELATIVE_ACCURACY`] and
    /// [`MIN_MAX_BINS`]`..=`[`MAX_MAX_BINS`] (a NaN accuracy becomes the
    /// default); use [`try_new`](Self::try_new) to reject them instead.
    pub fn new(relative_accuracy: f64, max_bins: usize) -> Self {
        let relative_accuracy = if relative_accuracy.is_nan() {
            DEFAULT_RELATIVE_ACCURACY
        } else {
            relative_accuracy.clamp(MIN_RELATIVE_ACCURACY, MAX_RELATIVE_ACCURACY)
        };
        let max_bins = max_bins.clamp(MIN_MAX_BINS, MAX_MAX_BINS);
        Self::empty(LogMapping::new(relative_accuracy), max_bins)
    }

    /// An empty sketch with `mapping` and `max_bins` (already checked).
    fn empty(mapping: LogMapping, max_bins: usize) -> Self {
        Self {
            mapping,
            positive: Store::new(max_bins, Collapse::Lowest),
            negative: Store::new(max_bins, Collapse::Highest),
            zero_count: 0,
            count: 0,
            sum: 0.0,
            min: f64::INFINITY,
            max: f64::NEG_INFINITY,
            max_bins,
        }
    }

    /// Like [`new`](Self::new) but rejects out-of-range arguments.
    pub fn try_new(relative_accuracy: f64, max_bins: usize) -> Result<Self, AggregationError> {
        validate(relative_accuracy, max_bins)?;
        Ok(Self::new(relative_accuracy, max_bins))
    }

    /// The relative accuracy in effect (after clamping).
    pub fn relative_accuracy(&self) -> f64 {
        self.mapping.relative_accuracy()
    }

    /// The bin limit per sign in effect (after clamping).
    pub fn max_bins(&self) -> usize {
        self.max_bins
    }

    /// Adds one value. NaN and ±infinity are ignored (counted nowhere).
    #[inline]
    pub fn add(&mut self, value: f64) {
        self.add_n(value, 1);
    }

    /// Adds `n` copies of `value`. NaN, ±infinity and `n = 0` are ignored.
    #[inline]
    pub fn add_n(&mut self, value: f64, n: u64) {
        if n == 0 {
            return;
        }
        if let Some(bin) = self.bin_of(value) {
            self.add_bin(value, bin, n);
        }
    }

    /// The bin of a finite value; `None` for NaN and ±infinity.
    #[inline]
    pub(crate) fn bin_of(&self, value: f64) -> Option<Bin> {
        if !value.is_finite() {
            None
        } else if value > 0.0 {
            Some(Bin::Positive(self.mapping.key(value)))
        } else if value < 0.0 {
            Some(Bin::Negative(self.mapping.key(-value)))
        } else {
            Some(Bin::Zero)
        }
    }

    /// Adds `n ≥ 1` copies of `value`, whose bin (under this sketch's
    /// mapping) is `bin`.
    #[inline]
    pub(crate) fn add_bin(&mut self, value: f64, bin: Bin, n: u64) {
        match bin {
            Bin::Zero => self.zero_count = self.zero_count.saturating_add(n),
            Bin::Positive(key) => self.positive.add(key, n),
            Bin::Negative(key) => self.negative.add(key, n),
        }
        self.count = self.count.saturating_add(n);
        self.sum += value * n as f64;
        self.min = self.min.min(value);
        self.max = self.max.max(value);
    }

    /// Adds everything `other` holds. Exact (bin by bin, as if every value
    /// had been added here) when both have the same accuracy; otherwise each
    /// of `other`'s bins is re-added at its representative value, so errors
    /// compound to at most about the sum of the two accuracies. `min`,
    /// `max`, `count` and `sum` stay exact either way.
    pub fn merge(&mut self, other: &Sketch) {
        if other.count == 0 {
            return;
        }
        if self.mapping.same_bins(&other.mapping) {
            self.positive.merge(&other.positive);
            self.negative.merge(&other.negative);
        } else {
            // Representatives can round to 0 or overflow at the ends of
            // the f64 range; keep them positive and finite.
            let rekey = |key| {
                let value = other.mapping.value(key);
                self.mapping.key(value.clamp(f64::from_bits(1), f64::MAX))
            };
            other
                .positive
                .for_each(|key, n| self.positive.add(rekey(key), n));
            other
                .negative
                .for_each(|key, n| self.negative.add(rekey(key), n));
        }
        self.zero_count = self.zero_count.saturating_add(other.zero_count);
        self.count = self.count.saturating_add(other.count);
        self.sum += other.sum;
        self.min = self.min.min(other.min);
        self.max = self.max.max(other.max);
    }

    /// The value at quantile `q` (see the module doc for the rank and the
    /// error bound). `None` when the sketch is empty or `q` is not in
    /// `[0, 1]`.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        if self.count == 0 || !(0.0..=1.0).contains(&q) {
            return None;
        }
        if q == 0.0 {
            return Some(self.min);
        }
        if q == 1.0 {
            return Some(self.max);
        }
        let last = self.count - 1;
        let rank = ((q * last as f64).floor() as u64).min(last);
        let negatives = self.negative.total();
        let value = if rank < negatives {
            // Ascending values are descending magnitudes.
            let key = self.negative.key_at_rank(rank, false)?;
            -self.mapping.value(key)
        } else if rank - negatives < self.zero_count {
            0.0
        } else {
            let key = self
                .positive
                .key_at_rank(rank - negatives - self.zero_count, true)?;
            self.mapping.value(key)
        };
        Some(value.clamp(self.min, self.max))
    }

    /// Values added (NaN and infinities excluded).
    pub fn count(&self) -> u64 {
        self.count
    }

    /// Sum of the values added.
    pub fn sum(&self) -> f64 {
        self.sum
    }

    /// The smallest value added, exactly.
    pub fn min(&self) -> Option<f64> {
        (self.count > 0).then_some(self.min)
    }

    /// The largest value added, exactly.
    pub fn max(&self) -> Option<f64> {
        (self.count > 0).then_some(self.max)
    }

    /// Whether nothing has been added since creation or the last `clear`.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Empties the sketch, keeping its allocations (and counter widths) for
    /// reuse.
    pub fn clear(&mut self) {
        self.positive.clear();
        self.negative.clear();
        self.zero_count = 0;
        self.count = 0;
        self.sum = 0.0;
        self.min = f64::INFINITY;
        self.max = f64::NEG_INFINITY;
    }

    /// Empties the sketch for values of another period, giving back the
    /// bin allocations its last values spanned less than half of (so it
    /// does not keep the widest range it ever held).
    pub fn clear_to_fit(&mut self) {
        self.positive.clear_to_fit();
        self.negative.clear_to_fit();
        self.clear();
    }

    /// An empty sketch of the same shape (accuracy and bin limit), with
    /// no bins allocated.
    pub fn empty_like(&self) -> Self {
        Self::empty(self.mapping, self.max_bins)
    }

    /// Empties the sketch and gives back its bin allocations.
    pub fn release(&mut self) {
        *self = self.empty_like();
    }

    /// Bytes used: the struct itself plus its bin allocations.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() + self.heap_bytes()
    }

    /// Bytes allocated for bins.
    pub(crate) fn heap_bytes(&self) -> usize {
        self.positive.heap_bytes() + self.negative.heap_bytes()
    }

    /// The most [`memory_bytes`](Self::memory_bytes) can ever report for a
    /// sketch with this bin limit (clamped like [`new`](Self::new)): both
    /// signs at `max_bins` 8-byte counters.
    pub fn memory_bound(max_bins: usize) -> usize {
        size_of::<Self>() + Self::heap_bound(max_bins)
    }

    pub(crate) fn heap_bound(max_bins: usize) -> usize {
        2 * max_bins.clamp(MIN_MAX_BINS, MAX_MAX_BINS) * size_of::<u64>()
    }
}

/// Checks sketch parameters without building one.
pub fn validate(relative_accuracy: f64, max_bins: usize) -> Result<(), AggregationError> {
    if !(MIN_RELATIVE_ACCURACY..=MAX_RELATIVE_ACCURACY).contains(&relative_accuracy) {
        return Err(AggregationError::RelativeAccuracy(relative_accuracy));
    }
    if !(MIN_MAX_BINS..=MAX_MAX_BINS).contains(&max_bins) {
        return Err(AggregationError::MaxBins(max_bins));
    }
    Ok(())
}
