//! [`WindowedStats`]: sliding time windows over one analysed series, each a
//! ring of clock-aligned sub-bucket [`Sketch`]es.
//!
//! # Windows
//!
//! A [`WindowSpec`] of length `L` in `n` sub-buckets has sub-buckets of
//! `w = L / n` ms aligned to the Unix epoch: sub-bucket `k` covers
//! `[k·w, (k+1)·w)`. The window at `now` is the `n` sub-buckets ending
//! with the one holding `now`, `k_now − n < k ≤ k_now` with
//! `k_now = ⌊now / w⌋`, i.e. the span `[(k_now − n + 1)·w, now]`, which is
//! between `L − w` and `L` long. So a value observed at `t` counts while
//! `⌊t/w⌋ > ⌊now/w⌋ − n`: it leaves the window between `L − w` and `L`
//! after `t`, never later, and the window slides in steps of one
//! sub-bucket. (Keeping also the sub-bucket that straddles `now − L`
//! would need `n + 1` sketches and report values up to `L + w` old.)
//!
//! Each window holds exactly `n` sketches: a sub-bucket is cleared and
//! reused when time reaches its next turn, so memory does not grow with
//! traffic or with time, only with the spread of values (see
//! [`Sketch`]'s bin limit).
//!
//! # Nested windows: each value kept once
//!
//! When every window's sub-buckets divide the next longer one's, and a
//! window always lies inside the next one (`(n − 1)·w ≤ (n' − 1)·w'`,
//! as for the standard 1 m, 5 m, 15 m, 1 h and 1 d in 10 sub-buckets
//! each), the windows are kept *nested*: a value is added to the
//! shortest window only, and a sub-bucket that leaves a window moves on
//! to the next longer window that still shows it, merged into the
//! sub-bucket there that holds its span (or dropped after the longest).
//! Window `i` is then the merge of the sub-buckets held by windows `0..=i`,
//! computed shortest first so each window's merge starts from the one
//! before. Every window shows exactly what it would if it kept its own
//! copy of each value, but a point costs one sketch update instead of one
//! per window, and a burst is held once (at 20 s of spans: in the 1 m
//! window's sketches, then in one 5 m sub-bucket, then in one 15 m one…)
//! instead of once per window. Windows that do not nest (configured
//! out of order, or with widths that do not divide) each keep their own
//! sketches.
//!
//! # Rate
//!
//! `rate_per_sec = count / covered_secs` where, in milliseconds,
//!
//! ```text
//! covered = max(w, min(now − window_start, now − first))
//! ```
//!
//! `window_start = (k_now − n + 1)·w` is where the window's data can begin
//! (so `now − window_start` is in `[L − w, L)`), and `first` is the
//! earliest timestamp this object ever accepted. Using the window's actual
//! span rather than `L` keeps a steady rate steady as sub-buckets roll
//! over; using `first` keeps a new series from looking slow; the floor of
//! one sub-bucket keeps a series' first values from looking like a burst.
//!
//! # Memory
//!
//! At most one sketch per sub-bucket, plus the sketch a `summaries` call
//! merges into and gives back at its end (nested or not), so
//! `memory_bytes() ≤ WindowedStats::memory_bound(specs, max_bins)`: about
//! 1.6 MiB for the five standard windows (1 m, 5 m, 15 m, 1 h, 1 d in 10
//! sub-buckets each) at 2048 bins, reached only with values spanning the
//! whole `f64` range on both signs *and* bins holding over 4e9 values.
//! A sub-bucket that starts over gives back the bins its last values
//! spanned less than half of ([`Sketch::clear_to_fit`]), so a slot does
//! not keep the widest spread it ever held. Measured (`cargo bench
//! --bench analytics`, nested): log-normal latencies take 41 KB at 1
//! value/s, 59 KB at 10/s, 80 KB at 1000/s; a million distinct values
//! over the whole `f64` range take 281 KB. A sub-bucket's sketch is made
//! on its first value and given back when it leaves its window, an empty
//! slot is one null pointer, and what every series of a configuration
//! has alike (each ring's spec, width and place, the sketch shape) is
//! one shared layout: the five windows of a series that has had no
//! values for a day take 680 bytes (its 50 slots, 5 ring clocks and the
//! struct).
//!
//! # Late values
//!
//! Timestamps may go backwards. A value whose sub-bucket is still in a
//! window's ring lands there; one older than the ring (that is, outside
//! the window as of the newest timestamp seen) is dropped from that
//! window, where it would not count anyway. A value dropped from *every*
//! window is counted in [`WindowedStats::late_observations`].

use std::sync::Arc;

use super::AggregationError;
use super::sketch::{self, Bin, Sketch};

/// The most sub-buckets a window may have.
pub const MAX_SUB_BUCKETS: u32 = 4096;
/// The longest window: 400 days.
pub const MAX_WINDOW_SECS: u64 = 400 * 86_400;

/// One sliding window: its length and how many sub-buckets it slides by.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
pub struct WindowSpec {
    /// Window length in seconds (e.g. 300).
    pub length_secs: u64,
    /// Sub-buckets per window (e.g. 10, so a 300 s window slides by 30 s).
    pub sub_buckets: u32,
}

impl WindowSpec {
    pub const fn new(length_secs: u64, sub_buckets: u32) -> Self {
        Self {
            length_secs,
            sub_buckets,
        }
    }

    /// Checks the spec: a positive length up to [`MAX_WINDOW_SECS`], 1 to
    /// [`MAX_SUB_BUCKETS`] sub-buckets, each a whole number of ms.
    pub fn validate(&self) -> Result<(), AggregationError> {
        let reason = if self.length_secs == 0 {
            Some("the length must be at least 1 s")
        } else if self.length_secs > MAX_WINDOW_SECS {
            Some("the length must be at most 400 days")
        } else if self.sub_buckets == 0 {
            Some("there must be at least one sub-bucket")
        } else if self.sub_buckets > MAX_SUB_BUCKETS {
            Some("there may be at most 4096 sub-buckets")
        } else if !(self.length_secs * 1000).is_multiple_of(u64::from(self.sub_buckets)) {
            Some("the sub-buckets must divide the length into whole milliseconds")
        } else {
            None
        };
        match reason {
            None => Ok(()),
            Some(reason) => Err(AggregationError::Window {
                length_secs: self.length_secs,
                sub_buckets: self.sub_buckets,
                reason,
            }),
        }
    }

    /// The spec clamped into range, and its sub-bucket width in ms (the
    /// length divided by the sub-buckets, rounded down).
    fn normalized(&self) -> (Self, u64) {
        let length_secs = self.length_secs.clamp(1, MAX_WINDOW_SECS);
        let length_ms = length_secs * 1000;
        // At most one sub-bucket per ms, so the width is never 0.
        let sub_buckets = self
            .sub_buckets
            .clamp(1, MAX_SUB_BUCKETS)
            .min(u32::try_from(length_ms).unwrap_or(u32::MAX));
        let spec = Self::new(length_secs, sub_buckets);
        (spec, length_ms / u64::from(sub_buckets))
    }
}

/// What one window held at the time asked.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct WindowSummary {
    /// The window's length (its spec's, after clamping).
    pub length_secs: u64,
    /// Values in the window.
    pub count: u64,
    /// Their sum.
    pub sum: f64,
    /// `count` per second of covered time (see the module doc).
    pub rate_per_sec: f64,
    /// `sum / count`; `None` when empty.
    pub mean: Option<f64>,
    /// Exact smallest value; `None` when empty.
    pub min: Option<f64>,
    /// Exact largest value; `None` when empty.
    pub max: Option<f64>,
    /// `(q, value)` for each requested `q` in `[0, 1]`, in request order;
    /// empty when the window is.
    pub quantiles: Vec<(f64, f64)>,
}

/// A ring slot: the sub-bucket it holds, if any, behind one pointer (8
/// bytes a slot, so the 50 slots of five windows cost 400 bytes while
/// they are empty). Made on the sub-bucket's first value and given back
/// once it has left its window, so a quiet series holds only the
/// sketches its windows still show.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(from = "SavedSubBucket", into = "SavedSubBucket")]
struct SubBucket(Option<Box<Bucket>>);

/// A sub-bucket in use.
#[derive(Debug, Clone)]
struct Bucket {
    /// `k` of the sub-bucket this sketch holds.
    index: u64,
    sketch: Sketch,
}

/// A ring slot as durable state writes it (the layout of snapshot
/// version 2, when a slot was its index and sketch side by side).
#[derive(serde::Serialize, serde::Deserialize)]
struct SavedSubBucket {
    index: Option<u64>,
    sketch: Option<Box<Sketch>>,
}

impl From<SavedSubBucket> for SubBucket {
    fn from(saved: SavedSubBucket) -> Self {
        match saved {
            SavedSubBucket {
                index: Some(index),
                sketch: Some(sketch),
            } => Self(Some(Box::new(Bucket {
                index,
                sketch: *sketch,
            }))),
            // An index without values, or values without an index, shows
            // nothing in any window.
            _ => Self(None),
        }
    }
}

impl From<SubBucket> for SavedSubBucket {
    fn from(slot: SubBucket) -> Self {
        match slot.0 {
            Some(bucket) => Self {
                index: Some(bucket.index),
                sketch: Some(Box::new(bucket.sketch)),
            },
            None => Self {
                index: None,
                sketch: None,
            },
        }
    }
}

impl SubBucket {
    /// `k` of the sub-bucket held, if any.
    fn index(&self) -> Option<u64> {
        self.0.as_ref().map(|b| b.index)
    }

    fn sketch(&self) -> Option<&Sketch> {
        self.0.as_ref().map(|b| &b.sketch)
    }
}

/// What the windows of every series under one configuration share: each
/// ring's spec, width and place among a series' slots, the empty sketch
/// new sub-buckets are made like, and whether the windows nest. Built
/// once and shared, so a series keeps only its slots and clocks.
#[derive(Debug)]
struct Layout {
    rings: Box<[RingShape]>,
    /// Empty: the bin mapping, and the shape of every sketch made.
    template: Sketch,
    /// The windows nest (see the module doc): a value is kept once, by
    /// the shortest window that shows it.
    nested: bool,
}

/// One window's ring of sub-buckets, as every series has it.
#[derive(Debug, Clone, Copy)]
struct RingShape {
    spec: WindowSpec,
    width_ms: u64,
    /// Where its slots start among a series' slots.
    first_slot: usize,
    slots: usize,
}

impl RingShape {
    fn len(&self) -> u64 {
        self.slots as u64
    }

    /// Whether sub-bucket `index` is in the window ending with `k_now`.
    fn in_window(&self, index: Option<u64>, k_now: u64) -> bool {
        index.is_some_and(|k| k <= k_now && k.saturating_add(self.len()) > k_now)
    }
}

impl Layout {
    fn new(specs: &[WindowSpec], template: Sketch) -> Self {
        let mut first_slot = 0;
        let rings: Box<[RingShape]> = specs
            .iter()
            .map(|spec| {
                let (spec, width_ms) = spec.normalized();
                let shape = RingShape {
                    spec,
                    width_ms,
                    first_slot,
                    slots: spec.sub_buckets as usize,
                };
                first_slot += shape.slots;
                shape
            })
            .collect();
        Self {
            nested: windows_nest(&rings),
            rings,
            template,
        }
    }

    fn slots(&self) -> usize {
        self.rings.iter().map(|ring| ring.slots).sum()
    }
}

/// Whether each ring's sub-buckets divide the next one's and each ring's
/// window always lies inside the next one's: window `a` at `t` starts
/// at `(⌊t/w⌋ − n + 1)·w`, window `b` at `(⌊t/w'⌋ − n' + 1)·w'`, and
/// with `w | w'` the first is never earlier when `(n − 1)·w ≤
/// (n' − 1)·w'` (equality when `t` starts a sub-bucket of `b`).
fn windows_nest(rings: &[RingShape]) -> bool {
    rings.len() > 1
        && rings.windows(2).all(|pair| {
            let (short, long) = (&pair[0], &pair[1]);
            long.width_ms.is_multiple_of(short.width_ms)
                && (short.len() - 1).saturating_mul(short.width_ms)
                    <= (long.len() - 1).saturating_mul(long.width_ms)
        })
}

/// A ring's clock in one series: the newest sub-bucket it has taken
/// and, so the hot path skips the division while time stays in it, that
/// sub-bucket's span `[start, end)` ms and slot.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
struct RingClock {
    newest: Option<u64>,
    current_start: u64,
    current_end: u64,
    current_slot: u32,
}

impl RingClock {
    /// Makes sub-bucket `k` in `slot` the newest.
    fn advance_to(&mut self, k: u64, slot: usize, width_ms: u64) {
        self.newest = Some(k);
        self.current_start = k * width_ms;
        self.current_end = self.current_start.saturating_add(width_ms);
        self.current_slot = slot as u32;
    }
}

/// Adds the value to its sub-bucket in one ring that keeps its own copy
/// of every value, making its sketch like `template` if it has none;
/// `false` when that sub-bucket is older than the ring.
#[inline]
#[allow(clippy::too_many_arguments)]
fn observe_own_copy(
    shape: &RingShape,
    clock: &mut RingClock,
    slots: &mut [SubBucket],
    now_ms: u64,
    value: f64,
    bin: Bin,
    n: u64,
    template: &Sketch,
) -> bool {
    if clock.current_start <= now_ms
        && now_ms < clock.current_end
        && let Some(bucket) = slots[clock.current_slot as usize].0.as_deref_mut()
    {
        bucket.sketch.add_bin(value, bin, n);
        return true;
    }
    let k = now_ms / shape.width_ms;
    if clock
        .newest
        .is_some_and(|newest| k.saturating_add(shape.len()) <= newest)
    {
        return false;
    }
    let slot_index = (k % shape.len()) as usize;
    let slot = &mut slots[slot_index];
    // A slot can only hold an older sub-bucket here: a newer one with
    // the same slot would be at least `n` ahead, making `k` late.
    let bucket = match &mut slot.0 {
        Some(bucket) if bucket.index == k => bucket,
        Some(bucket) => {
            // A new sub-bucket: the spread of recent values, not the
            // widest range the slot ever held, sets its size.
            bucket.sketch.clear_to_fit();
            bucket.index = k;
            bucket
        }
        None => slot.0.insert(Box::new(Bucket {
            index: k,
            sketch: template.empty_like(),
        })),
    };
    bucket.sketch.add_bin(value, bin, n);
    if clock.newest.is_none_or(|newest| k > newest) {
        clock.advance_to(k, slot_index, shape.width_ms);
    }
    true
}

/// Nested windows: moves `bucket`, which has left the window of ring
/// `level` of `layout` as of `now_ms`, to the next longer window that still shows
/// it, merged into the sub-bucket there that holds its span. Returns
/// the box it no longer needs (merged, or past the longest window),
/// for the caller to reuse or drop.
fn settle(
    layout: &Layout,
    slots: &mut [SubBucket],
    level: usize,
    bucket: Box<Bucket>,
    now_ms: u64,
) -> Option<Box<Bucket>> {
    let rings = &layout.rings;
    let (mut level, mut bucket) = (level, bucket);
    loop {
        let from_width = rings[level].width_ms;
        level += 1;
        let Some(shape) = rings.get(level) else {
            return Some(bucket); // past the longest window
        };
        // Nested widths divide: the sub-bucket holding this one's span.
        bucket.index /= shape.width_ms / from_width;
        if bucket.index.saturating_add(shape.len()) <= now_ms / shape.width_ms {
            continue;
        }
        let slot = &mut slots[shape.first_slot + (bucket.index % shape.len()) as usize];
        match slot.0.take() {
            None => {
                slot.0 = Some(bucket);
                return None;
            }
            Some(mut there) if there.index == bucket.index => {
                there.sketch.merge(&bucket.sketch);
                slot.0 = Some(there);
                return Some(bucket);
            }
            // The older sub-bucket in that slot has left this window
            // too: it moves on in turn.
            Some(older) if older.index < bucket.index => {
                slot.0 = Some(bucket);
                bucket = older;
            }
            // A newer one (values ahead of `now_ms`) keeps the slot;
            // these values have left its window as of the newest.
            Some(newer) => {
                slot.0 = Some(newer);
                return Some(bucket);
            }
        }
    }
}

/// Windowed statistics for one analysed series.
#[derive(Debug, Clone)]
pub struct WindowedStats {
    layout: Arc<Layout>,
    /// Every ring's slots, ring after ring ([`RingShape::first_slot`]).
    slots: Box<[SubBucket]>,
    /// One per ring.
    clocks: Box<[RingClock]>,
    first_ms: Option<u64>,
    last_ms: Option<u64>,
    late: u64,
}

/// [`WindowedStats`] as durable state writes it: the windows and sketch
/// shape it was made for (checked against the configuration when read
/// back), then its own slots, clocks and times.
#[derive(serde::Serialize)]
struct SavedWindowsRef<'a> {
    specs: Vec<WindowSpec>,
    shape: &'a Sketch,
    slots: &'a [SubBucket],
    clocks: &'a [RingClock],
    first_ms: Option<u64>,
    last_ms: Option<u64>,
    late: u64,
}

/// Window statistics read back from durable state, to be taken in by
/// [`WindowedStats::restore`] when they fit the configuration.
#[derive(Debug, serde::Deserialize)]
pub struct SavedWindows {
    specs: Vec<WindowSpec>,
    shape: Sketch,
    slots: Vec<SubBucket>,
    clocks: Vec<RingClock>,
    first_ms: Option<u64>,
    last_ms: Option<u64>,
    late: u64,
}

impl serde::Serialize for WindowedStats {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        SavedWindowsRef {
            specs: self.specs().collect(),
            shape: &self.layout.template,
            slots: &self.slots,
            clocks: &self.clocks,
            first_ms: self.first_ms,
            last_ms: self.last_ms,
            late: self.late,
        }
        .serialize(serializer)
    }
}

impl WindowedStats {
    /// `saved` as window statistics of this one's configuration (sharing
    /// its layout), if it was made for the same windows, sub-bucket
    /// counts and sketch shape and every slot and clock is in range.
    pub fn restore(&self, saved: SavedWindows) -> Option<WindowedStats> {
        let layout = &self.layout;
        let fits = saved.specs.len() == layout.rings.len()
            && saved
                .specs
                .iter()
                .zip(&layout.rings)
                .all(|(a, b)| *a == b.spec)
            && saved.shape.same_shape(&layout.template)
            && saved.slots.len() == layout.slots()
            && saved.clocks.len() == layout.rings.len()
            && saved
                .clocks
                .iter()
                .zip(&layout.rings)
                .all(|(clock, ring)| (clock.current_slot as usize) < ring.slots.max(1))
            && saved
                .slots
                .iter()
                .all(|s| s.sketch().is_none_or(|k| k.same_shape(&layout.template)));
        fits.then(|| Self {
            layout: Arc::clone(layout),
            slots: saved.slots.into_boxed_slice(),
            clocks: saved.clocks.into_boxed_slice(),
            first_ms: saved.first_ms,
            last_ms: saved.last_ms,
            late: saved.late,
        })
    }

    /// One ring per spec, of sketches built by
    /// [`Sketch::new`]`(relative_accuracy, max_bins)`. Out-of-range
    /// arguments are clamped (specs: length to 1 s..=[`MAX_WINDOW_SECS`],
    /// sub-buckets to 1..=[`MAX_SUB_BUCKETS`], width rounded down to whole
    /// ms); use [`try_new`](Self::try_new) to reject them instead. Make
    /// the next series' with [`empty_like`](Self::empty_like), which
    /// shares this one's layout.
    pub fn new(specs: &[WindowSpec], relative_accuracy: f64, max_bins: usize) -> Self {
        let template = Sketch::new(relative_accuracy, max_bins);
        Self::with_layout(Arc::new(Layout::new(specs, template)))
    }

    fn with_layout(layout: Arc<Layout>) -> Self {
        Self {
            slots: (0..layout.slots()).map(|_| SubBucket(None)).collect(),
            clocks: vec![RingClock::default(); layout.rings.len()].into_boxed_slice(),
            layout,
            first_ms: None,
            last_ms: None,
            late: 0,
        }
    }

    /// Empty statistics of the same windows and sketch shape, sharing
    /// this one's layout.
    pub fn empty_like(&self) -> Self {
        Self::with_layout(Arc::clone(&self.layout))
    }

    /// Like [`new`](Self::new), but every window keeps its own sketches
    /// even when the windows nest: the reference the nested layout is
    /// tested against.
    #[cfg(test)]
    pub(crate) fn new_unnested(
        specs: &[WindowSpec],
        relative_accuracy: f64,
        max_bins: usize,
    ) -> Self {
        let mut layout = Layout::new(specs, Sketch::new(relative_accuracy, max_bins));
        layout.nested = false;
        Self::with_layout(Arc::new(layout))
    }

    /// Whether the windows nest, so each value is kept once (see the
    /// module doc).
    pub fn is_nested(&self) -> bool {
        self.layout.nested
    }

    /// Like [`new`](Self::new) but rejects out-of-range arguments and an
    /// empty spec list.
    pub fn try_new(
        specs: &[WindowSpec],
        relative_accuracy: f64,
        max_bins: usize,
    ) -> Result<Self, AggregationError> {
        sketch::validate(relative_accuracy, max_bins)?;
        if specs.is_empty() {
            return Err(AggregationError::NoWindows);
        }
        for spec in specs {
            spec.validate()?;
        }
        Ok(Self::new(specs, relative_accuracy, max_bins))
    }

    /// The windows, in spec order (after clamping).
    pub fn specs(&self) -> impl ExactSizeIterator<Item = WindowSpec> + '_ {
        self.layout.rings.iter().map(|ring| ring.spec)
    }

    /// Observes one value at `now_ms` (Unix ms). NaN and ±infinity are
    /// ignored.
    #[inline]
    pub fn observe(&mut self, now_ms: u64, value: f64) {
        self.observe_n(now_ms, value, 1);
    }

    /// Observes `n` copies of `value` at `now_ms`. NaN, ±infinity and
    /// `n = 0` are ignored.
    pub fn observe_n(&mut self, now_ms: u64, value: f64, n: u64) {
        if n == 0 || self.clocks.is_empty() {
            return;
        }
        let Some(bin) = self.layout.template.bin_of(value) else {
            return;
        };
        let accepted = if self.layout.nested {
            self.observe_nested(now_ms, value, bin, n)
        } else {
            let layout = &*self.layout;
            let mut accepted = false;
            for (shape, clock) in layout.rings.iter().zip(self.clocks.iter_mut()) {
                let slots = &mut self.slots[shape.first_slot..shape.first_slot + shape.slots];
                accepted |=
                    observe_own_copy(shape, clock, slots, now_ms, value, bin, n, &layout.template);
            }
            accepted
        };
        if accepted {
            self.first_ms = Some(self.first_ms.map_or(now_ms, |t| t.min(now_ms)));
            self.last_ms = Some(self.last_ms.map_or(now_ms, |t| t.max(now_ms)));
        } else {
            self.late = self.late.saturating_add(n);
        }
    }

    /// Nested windows: adds the value to the shortest window whose ring
    /// still holds its sub-bucket (the first one but for late values);
    /// `false` when none does.
    #[inline]
    fn observe_nested(&mut self, now_ms: u64, value: f64, bin: Bin, n: u64) -> bool {
        let shortest = &self.clocks[0];
        if shortest.current_start <= now_ms
            && now_ms < shortest.current_end
            && let Some(bucket) = self.slots[shortest.current_slot as usize].0.as_deref_mut()
        {
            bucket.sketch.add_bin(value, bin, n);
            return true;
        }
        let layout = &*self.layout;
        // Every ring's newest sub-bucket is the one of the newest value.
        let newest_ms = self.last_ms.map_or(now_ms, |last| last.max(now_ms));
        for (level, shape) in layout.rings.iter().enumerate() {
            let k = now_ms / shape.width_ms;
            if k.saturating_add(shape.len()) <= newest_ms / shape.width_ms {
                continue; // left this window: a longer one may show it
            }
            let in_ring = (k % shape.len()) as usize;
            let slot_index = shape.first_slot + in_ring;
            let spare = match self.slots[slot_index].0.take() {
                Some(mut bucket) if bucket.index == k => {
                    bucket.sketch.add_bin(value, bin, n);
                    self.slots[slot_index].0 = Some(bucket);
                    return true;
                }
                // An older sub-bucket in the slot has left this window
                // (one newer by the same slot would make `k` late).
                Some(bucket) if bucket.index < k => {
                    settle(layout, &mut self.slots, level, bucket, newest_ms)
                }
                Some(newer) => {
                    self.slots[slot_index].0 = Some(newer);
                    continue;
                }
                None => None,
            };
            let mut bucket = match spare {
                Some(mut bucket) => {
                    bucket.sketch.clear_to_fit();
                    bucket.index = k;
                    bucket
                }
                None => Box::new(Bucket {
                    index: k,
                    sketch: layout.template.empty_like(),
                }),
            };
            bucket.sketch.add_bin(value, bin, n);
            self.slots[slot_index].0 = Some(bucket);
            let clock = &mut self.clocks[level];
            if level == 0 && clock.newest.is_none_or(|newest| k > newest) {
                clock.advance_to(k, slot_index, shape.width_ms);
            }
            return true;
        }
        false
    }

    /// Nested windows: every sub-bucket that has left its window as of
    /// `now_ms` moves on to the next longer one (or is given back after
    /// the longest), so each window's ring holds only what it shows.
    fn advance(&mut self, now_ms: u64) {
        let layout = &*self.layout;
        for (level, shape) in layout.rings.iter().enumerate() {
            let k_now = now_ms / shape.width_ms;
            for slot_index in shape.first_slot..shape.first_slot + shape.slots {
                let slot = &mut self.slots[slot_index];
                if slot
                    .index()
                    .is_some_and(|k| k.saturating_add(shape.len()) <= k_now)
                    && let Some(bucket) = slot.0.take()
                {
                    settle(layout, &mut self.slots, level, bucket, now_ms);
                }
            }
        }
    }

    /// Values dropped because they were older than every window's ring.
    pub fn late_observations(&self) -> u64 {
        self.late
    }

    /// Fills `out` with one summary per window at `now_ms`, in spec order,
    /// with the `quantiles` asked for (those outside `[0, 1]` are skipped).
    /// Entries already in `out` are overwritten in place, so a caller that
    /// keeps `out` between calls reuses its buffers. Sub-buckets that have
    /// left their window give their sketches back here; the windows are
    /// merged into a sketch made for the call and given back at its end.
    pub fn summaries(&mut self, now_ms: u64, quantiles: &[f64], out: &mut Vec<WindowSummary>) {
        if self.layout.nested {
            self.advance(now_ms);
        }
        let layout = &*self.layout;
        out.truncate(layout.rings.len());
        // Nested, window `i` is the merge of rings `0..=i`: the merge
        // carries on from one window to the next.
        let mut merged = layout.template.empty_like();
        let since_first = self
            .first_ms
            .map_or(0, |first| now_ms.saturating_sub(first));
        for (i, shape) in layout.rings.iter().enumerate() {
            let k_now = now_ms / shape.width_ms;
            let slots = &mut self.slots[shape.first_slot..shape.first_slot + shape.slots];
            if !layout.nested {
                // Sub-buckets that have left the window give their
                // sketches back (not those ahead of it).
                for slot in slots.iter_mut() {
                    if slot
                        .index()
                        .is_some_and(|k| k.saturating_add(shape.len()) <= k_now)
                    {
                        slot.0 = None;
                    }
                }
                merged.clear();
            }
            for slot in slots.iter() {
                if let Some(sketch) = slot.sketch()
                    && shape.in_window(slot.index(), k_now)
                {
                    merged.merge(sketch);
                }
            }
            let window_start = k_now.saturating_add(1).saturating_sub(shape.len()) * shape.width_ms;
            let covered_ms = (now_ms - window_start).min(since_first).max(shape.width_ms);
            if i == out.len() {
                out.push(WindowSummary::default());
            }
            let summary = &mut out[i];
            let count = merged.count();
            summary.length_secs = shape.spec.length_secs;
            summary.count = count;
            summary.sum = merged.sum();
            summary.rate_per_sec = count as f64 * 1000.0 / covered_ms as f64;
            summary.mean = (count > 0).then(|| merged.sum() / count as f64);
            summary.min = merged.min();
            summary.max = merged.max();
            summary.quantiles.clear();
            summary.quantiles.extend(
                quantiles
                    .iter()
                    .filter_map(|&q| merged.quantile(q).map(|value| (q, value))),
            );
        }
    }

    /// Whether no window holds anything at `now_ms`: nothing was observed,
    /// or the newest observation has left every window. An idle series can
    /// be dropped without changing any summary.
    pub fn is_idle(&self, now_ms: u64) -> bool {
        let Some(last) = self.last_ms else {
            return true;
        };
        self.layout
            .rings
            .iter()
            .all(|ring| (last / ring.width_ms).saturating_add(ring.len()) <= now_ms / ring.width_ms)
    }

    /// Bytes this series holds: the struct, its slots and clocks, and
    /// every sub-bucket sketch made (the layout is shared by every series
    /// of a configuration and not counted).
    pub fn memory_bytes(&self) -> usize {
        let sketches: usize = self
            .slots
            .iter()
            .filter_map(SubBucket::sketch)
            .map(|sketch| size_of::<Bucket>() + sketch.heap_bytes())
            .sum();
        size_of::<Self>()
            + self.slots.len() * size_of::<SubBucket>()
            + self.clocks.len() * size_of::<RingClock>()
            + sketches
    }

    /// The most [`memory_bytes`](Self::memory_bytes) can ever report for
    /// these specs and bin limit: every sub-bucket's sketch at
    /// [`Sketch::memory_bound`], plus the sketch a read merges into.
    pub fn memory_bound(specs: &[WindowSpec], max_bins: usize) -> usize {
        let sketch_heap = Sketch::heap_bound(max_bins);
        let sub_buckets: usize = specs
            .iter()
            .map(|spec| spec.normalized().0.sub_buckets as usize)
            .sum();
        size_of::<Self>()
            + specs.len() * size_of::<RingClock>()
            + sub_buckets * (size_of::<SubBucket>() + size_of::<Bucket>() + sketch_heap)
            + size_of::<Sketch>()
            + sketch_heap
    }
}
