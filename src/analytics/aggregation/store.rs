//! The bin counts for one sign of a [`Sketch`](super::Sketch): a dense run
//! of counters over a contiguous key range of at most `max_bins` keys.
//!
//! When a new key would make the run longer than `max_bins`, the bins at
//! the collapsing end ([`Collapse`]) are summed into the last bin kept, so
//! counts are never lost, only the resolution at that end. Counters start
//! at 8 bits and widen the whole run (to 16, 32, then 64 bits) only when
//! one would overflow, so a sketch whose busiest bin holds at most 255
//! values costs one byte per bin. The run grows to a quarter more than it
//! needs (at least [`MIN_CHUNK`] bins, at most `max_bins`). `clear` zeroes
//! the counters and keeps the allocation and width.

use std::ops::Range;

/// Which end of the key range gives way when the range would exceed
/// `max_bins`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub(crate) enum Collapse {
    /// Keys below `highest key − max_bins + 1` fold into that key.
    Lowest,
    /// Keys above `lowest key + max_bins − 1` fold into that key.
    Highest,
}

/// The smallest allocation, in bins, so that a few nearby keys do not
/// reallocate one by one.
const MIN_CHUNK: usize = 32;

trait Counter: Copy + Into<u64> {
    /// `self + n`, or `None` when it does not fit this width.
    fn plus(self, n: u64) -> Option<Self>;
    fn wrap(bins: Vec<Self>) -> Counts;
}

macro_rules! narrow_counter {
    ($t:ty, $variant:ident) => {
        impl Counter for $t {
            #[inline]
            fn plus(self, n: u64) -> Option<Self> {
                <$t>::try_from(n).ok().and_then(|n| self.checked_add(n))
            }
            fn wrap(bins: Vec<Self>) -> Counts {
                Counts::$variant(bins)
            }
        }
    };
}
narrow_counter!(u8, U8);
narrow_counter!(u16, U16);
narrow_counter!(u32, U32);

impl Counter for u64 {
    #[inline]
    fn plus(self, n: u64) -> Option<Self> {
        // 2^64 observations in one bin cannot happen in practice; saturate
        // rather than fail.
        Some(self.saturating_add(n))
    }
    fn wrap(bins: Vec<Self>) -> Counts {
        Counts::U64(bins)
    }
}

/// Counters of one width. Every `Vec` here has `len == capacity`.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
enum Counts {
    U8(Vec<u8>),
    U16(Vec<u16>),
    U32(Vec<u32>),
    U64(Vec<u64>),
}

/// Runs `$body` with `$v` bound to the counters, whatever their width.
macro_rules! dispatch {
    ($counts:expr, $v:ident => $body:expr) => {
        match $counts {
            Counts::U8($v) => $body,
            Counts::U16($v) => $body,
            Counts::U32($v) => $body,
            Counts::U64($v) => $body,
        }
    };
}

impl Counts {
    fn len(&self) -> usize {
        dispatch!(self, v => v.len())
    }

    fn heap_bytes(&self) -> usize {
        match self {
            Counts::U8(v) => v.capacity(),
            Counts::U16(v) => v.capacity() * size_of::<u16>(),
            Counts::U32(v) => v.capacity() * size_of::<u32>(),
            Counts::U64(v) => v.capacity() * size_of::<u64>(),
        }
    }

    /// Adds `n` at `i`; `false` (and nothing changed) when it would
    /// overflow this width.
    #[inline]
    fn try_add(&mut self, i: usize, n: u64) -> bool {
        dispatch!(self, v => match v[i].plus(n) {
            Some(c) => {
                v[i] = c;
                true
            }
            None => false,
        })
    }

    fn sum(&self, range: Range<usize>) -> u64 {
        fn total<T: Counter>(v: &[T]) -> u64 {
            v.iter().fold(0u64, |acc, &c| acc.saturating_add(c.into()))
        }
        dispatch!(self, v => total(&v[range]))
    }

    fn zero(&mut self, range: Range<usize>) {
        dispatch!(self, v => v[range].fill(0))
    }

    /// Moves the counters in `src` to start at `dst` and zeroes what they
    /// leave behind.
    fn shift(&mut self, src: Range<usize>, dst: usize) {
        dispatch!(self, v => {
            let n = src.len();
            v.copy_within(src.clone(), dst);
            if dst > src.start {
                v[src.start..dst.min(src.end)].fill(0);
            } else {
                v[(dst + n).max(src.start)..src.end].fill(0);
            }
        })
    }

    /// A new zeroed run of `len` counters of the same width holding the
    /// counters in `src` from `dst` on.
    fn relocated(&self, src: Range<usize>, len: usize, dst: usize) -> Counts {
        fn build<T: Counter + Default>(
            v: &[T],
            src: Range<usize>,
            len: usize,
            dst: usize,
        ) -> Counts {
            let mut bins = vec![T::default(); len];
            bins[dst..dst + src.len()].copy_from_slice(&v[src]);
            T::wrap(bins)
        }
        dispatch!(self, v => build(v, src, len, dst))
    }

    /// The next width up (a no-op at 64 bits, which never overflows).
    fn widen(&mut self) {
        let wider = match self {
            Counts::U8(v) => Counts::U16(v.iter().map(|&c| u16::from(c)).collect()),
            Counts::U16(v) => Counts::U32(v.iter().map(|&c| u32::from(c)).collect()),
            Counts::U32(v) => Counts::U64(v.iter().map(|&c| u64::from(c)).collect()),
            Counts::U64(_) => return,
        };
        *self = wider;
    }

    /// Index (into `range`) of the first counter, walking up or down, at
    /// which the running total exceeds `rank`.
    fn rank_position(&self, range: Range<usize>, rank: u64, ascending: bool) -> Option<usize> {
        fn walk<T: Counter>(v: &[T], rank: u64, ascending: bool) -> Option<usize> {
            let mut seen = 0u64;
            let mut step = |(i, &c): (usize, &T)| {
                seen = seen.saturating_add(c.into());
                (seen > rank).then_some(i)
            };
            if ascending {
                v.iter().enumerate().find_map(&mut step)
            } else {
                v.iter().enumerate().rev().find_map(&mut step)
            }
        }
        dispatch!(self, v => walk(&v[range], rank, ascending))
    }
}

/// Adds `src` into `dst` element by element; `Err(i)` when `dst[i]` would
/// overflow (elements before `i` are added, the rest untouched).
fn add_slice<D: Counter, S: Counter>(dst: &mut [D], src: &[S]) -> Result<(), usize> {
    for (i, (d, &s)) in dst.iter_mut().zip(src).enumerate() {
        *d = d.plus(s.into()).ok_or(i)?;
    }
    Ok(())
}

/// Counts per key for one sign.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
pub(crate) struct Store {
    counts: Counts,
    /// Key of `counts[0]`.
    offset: i64,
    /// Every non-zero counter lies in `lo..=hi` (meaningful when
    /// `total > 0`), and `hi − lo < max_bins`.
    lo: i64,
    hi: i64,
    total: u64,
    max_bins: usize,
    collapse: Collapse,
}

impl Store {
    /// `max_bins` must already be validated (at least 1).
    pub(crate) fn new(max_bins: usize, collapse: Collapse) -> Self {
        Self {
            counts: Counts::U8(Vec::new()),
            offset: 0,
            lo: 0,
            hi: 0,
            total: 0,
            max_bins,
            collapse,
        }
    }

    pub(crate) fn total(&self) -> u64 {
        self.total
    }

    pub(crate) fn heap_bytes(&self) -> usize {
        self.counts.heap_bytes()
    }

    /// Zeroes the counters, keeping the allocation and counter width.
    pub(crate) fn clear(&mut self) {
        if self.total > 0 {
            let range = self.range(self.lo, self.hi);
            self.counts.zero(range);
        }
        self.total = 0;
    }

    /// Empties the store; gives its allocation back (so it next grows only
    /// as far as the keys it then takes, counters back at 8 bits) when the
    /// keys it held spanned less than half of it, else keeps it as
    /// [`clear`](Self::clear) does. A store refilled with much the same
    /// spread keeps its allocation; one that once took a far wider spread
    /// shrinks back.
    pub(crate) fn clear_to_fit(&mut self) {
        let used = if self.total > 0 {
            (self.hi - self.lo + 1) as usize
        } else {
            0
        };
        if self.counts.len() > 2 * used.max(MIN_CHUNK) {
            self.counts = Counts::U8(Vec::new());
            self.offset = 0;
            self.lo = 0;
            self.hi = 0;
            self.total = 0;
        } else {
            self.clear();
        }
    }

    #[inline]
    fn index(&self, key: i64) -> usize {
        (key - self.offset) as usize
    }

    /// Indices of `lo..=hi` (both must be covered).
    fn range(&self, lo: i64, hi: i64) -> Range<usize> {
        self.index(lo)..self.index(hi) + 1
    }

    #[inline]
    pub(crate) fn add(&mut self, key: i64, n: u64) {
        let key = if self.total > 0 && self.lo <= key && key <= self.hi {
            key
        } else {
            self.make_room(key, key);
            key.clamp(self.lo, self.hi)
        };
        let i = self.index(key);
        self.add_at(i, n);
        self.total = self.total.saturating_add(n);
    }

    #[inline]
    fn add_at(&mut self, i: usize, n: u64) {
        while !self.counts.try_add(i, n) {
            self.counts.widen();
        }
    }

    /// Adds every count of `other` (same mapping), folding keys beyond
    /// `max_bins` into the edge bin as [`add`](Self::add) would.
    pub(crate) fn merge(&mut self, other: &Store) {
        if other.total == 0 {
            return;
        }
        self.make_room(other.lo, other.hi);
        let (olo, ohi) = (other.lo, other.hi);
        if olo < self.lo {
            let below = other.counts.sum(other.range(olo, ohi.min(self.lo - 1)));
            let i = self.index(self.lo);
            self.add_at(i, below);
        }
        if ohi > self.hi {
            let above = other.counts.sum(other.range(olo.max(self.hi + 1), ohi));
            let i = self.index(self.hi);
            self.add_at(i, above);
        }
        let (mid_lo, mid_hi) = (olo.max(self.lo), ohi.min(self.hi));
        if mid_lo <= mid_hi {
            let mut src = other.range(mid_lo, mid_hi);
            let mut dst = self.range(mid_lo, mid_hi);
            loop {
                let done = dispatch!(&mut self.counts, d => dispatch!(&other.counts, s =>
                    add_slice(&mut d[dst.clone()], &s[src.clone()])));
                match done {
                    Ok(()) => break,
                    Err(i) => {
                        self.counts.widen();
                        src.start += i;
                        dst.start += i;
                    }
                }
            }
        }
        self.total = self.total.saturating_add(other.total);
    }

    /// The key holding the element of 0-based `rank`, counting from the
    /// lowest key (`ascending`) or the highest. `None` when
    /// `rank >= total`.
    pub(crate) fn key_at_rank(&self, rank: u64, ascending: bool) -> Option<i64> {
        if rank >= self.total {
            return None;
        }
        // Walk from the nearer end: rank r from one end is rank
        // `total − 1 − r` from the other (p99 is a short walk down).
        let from_other_end = self.total - 1 - rank;
        let (rank, ascending) = if from_other_end < rank {
            (from_other_end, !ascending)
        } else {
            (rank, ascending)
        };
        let position = self
            .counts
            .rank_position(self.range(self.lo, self.hi), rank, ascending)?;
        Some(self.lo + position as i64)
    }

    /// Calls `f(key, count)` for every non-empty bin, lowest key first.
    pub(crate) fn for_each(&self, mut f: impl FnMut(i64, u64)) {
        if self.total == 0 {
            return;
        }
        for key in self.lo..=self.hi {
            let i = self.index(key);
            let count = self.counts.sum(i..i + 1);
            if count > 0 {
                f(key, count);
            }
        }
    }

    /// Makes `lo..=hi` the union of the current range and `a..=b`, folding
    /// the collapsing end if that is longer than `max_bins`, and makes the
    /// allocation cover it. Keys the caller adds must then be clamped to
    /// `self.lo..=self.hi`.
    fn make_room(&mut self, a: i64, b: i64) {
        let (mut lo, mut hi) = if self.total > 0 {
            (self.lo.min(a), self.hi.max(b))
        } else {
            (a, b)
        };
        let max = self.max_bins as i64;
        let mut folded = 0;
        // Where the existing counts lie after folding (empty when lo > hi).
        let (mut data_lo, mut data_hi) = if self.total > 0 {
            (self.lo, self.hi)
        } else {
            (1, 0)
        };
        if hi - lo + 1 > max {
            match self.collapse {
                Collapse::Lowest => {
                    lo = hi - max + 1;
                    if data_lo <= data_hi && data_lo < lo {
                        let range = self.range(data_lo, data_hi.min(lo - 1));
                        folded = self.counts.sum(range.clone());
                        self.counts.zero(range);
                        data_lo = lo;
                    }
                }
                Collapse::Highest => {
                    hi = lo + max - 1;
                    if data_lo <= data_hi && data_hi > hi {
                        let range = self.range(data_lo.max(hi + 1), data_hi);
                        folded = self.counts.sum(range.clone());
                        self.counts.zero(range);
                        data_hi = hi;
                    }
                }
            }
        }
        let data = (data_lo <= data_hi).then_some((data_lo, data_hi));
        self.cover(lo, hi, data);
        self.lo = lo;
        self.hi = hi;
        if folded > 0 {
            let edge = match self.collapse {
                Collapse::Lowest => lo,
                Collapse::Highest => hi,
            };
            let i = self.index(edge);
            self.add_at(i, folded);
        }
    }

    /// Makes the allocation cover `lo..=hi` (at most `max_bins` keys),
    /// keeping the counts of keys `data` in place by key. Slack goes on the
    /// side that grew, where the next keys are likely to land.
    fn cover(&mut self, lo: i64, hi: i64, data: Option<(i64, i64)>) {
        let len = self.counts.len();
        let len_i = len as i64;
        if lo >= self.offset && hi < self.offset + len_i {
            return;
        }
        let need = (hi - lo + 1) as usize;
        let grew_low = lo < self.offset;
        match data {
            None if need <= len => {
                // All counters are zero: re-base in place, slack on both sides.
                self.offset = lo - ((len - need) / 2) as i64;
            }
            Some((data_lo, data_hi)) if need <= len => {
                let offset = if grew_low { hi - len_i + 1 } else { lo };
                let src = self.range(data_lo, data_hi);
                self.counts.shift(src, (data_lo - offset) as usize);
                self.offset = offset;
            }
            _ => {
                let new_len = (need + need / 4).max(MIN_CHUNK).min(self.max_bins);
                let slack = (new_len - need) as i64;
                let offset = match data {
                    None => lo - slack / 2,
                    Some(_) if grew_low => lo - slack,
                    Some(_) => lo,
                };
                let (src, dst) = match data {
                    Some((data_lo, data_hi)) => {
                        (self.range(data_lo, data_hi), (data_lo - offset) as usize)
                    }
                    None => (0..0, 0),
                };
                self.counts = self.counts.relocated(src, new_len, dst);
                self.offset = offset;
            }
        }
    }
}
