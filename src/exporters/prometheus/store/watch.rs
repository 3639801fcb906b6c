//! Watched series: the bounded history rings behind
//! `GET /api/v1/series/history`.
//!
//! A series becomes watched on its first history request. Its ring lives
//! in its family's [`SeriesTable`](super::SeriesTable), next to the series,
//! so recording a point needs no lock beyond the shard lock the update
//! already holds; a family with no watched series pays one `is_empty`
//! check per update. Which series are watched is remembered, least
//! recently requested first, in a bounded [`Lru`]: watching one more than
//! the limit drops the ring of the one requested longest ago.

use std::collections::VecDeque;

use crate::pipeline::query::HistoryPoint;

use super::value::{SeriesState, SeriesValue};

/// The history ring of one watched series.
#[derive(Debug)]
pub struct Watch {
    pub(super) hash: u64,
    pub(super) labels: Box<str>,
    ring: VecDeque<HistoryPoint>,
    capacity: usize,
}

impl Watch {
    /// A ring of `capacity` points (at least 1) holding `first`.
    pub fn new(hash: u64, labels: Box<str>, capacity: usize, first: HistoryPoint) -> Self {
        let capacity = capacity.max(1);
        let mut ring = VecDeque::with_capacity(capacity.min(64));
        ring.push_back(first);
        Self {
            hash,
            labels,
            ring,
            capacity,
        }
    }

    pub fn is(&self, hash: u64, labels: &str) -> bool {
        self.hash == hash && &*self.labels == labels
    }

    /// Appends a point, dropping the oldest when full.
    pub fn push(&mut self, point: HistoryPoint) {
        if self.ring.len() >= self.capacity {
            self.ring.pop_front();
        }
        self.ring.push_back(point);
    }

    /// The points, oldest first.
    pub fn points(&self) -> Vec<HistoryPoint> {
        self.ring.iter().copied().collect()
    }

    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

/// Records `state` in the ring of the series (`hash`, `labels`) if it is
/// watched. Called after an update only when the family has watches.
#[cold]
pub(super) fn record(watched: &mut [Watch], hash: u64, labels: &str, state: &SeriesState) {
    if let Some(w) = watched.iter_mut().find(|w| w.is(hash, labels)) {
        w.push(point_of(state));
    }
}

/// What the history shows of a series' state: the value of a number, the
/// count and sum of a histogram or summary.
pub fn point_of(state: &SeriesState) -> HistoryPoint {
    let time_unix_nano = if state.time_ns != 0 {
        state.time_ns
    } else {
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos() as u64)
            .unwrap_or_default()
    };
    let (value, count, sum) = match &state.value {
        SeriesValue::Number(v) => (Some(*v), None, None),
        SeriesValue::Histogram(h) => (None, Some(h.count), h.sum),
        SeriesValue::Exponential(h) => (None, Some(h.count), h.sum),
        SeriesValue::Summary(s) => (None, Some(s.count), Some(s.sum)),
    };
    HistoryPoint {
        time_unix_nano,
        value,
        count,
        sum,
    }
}

/// A bounded set of keys, least recently touched first.
#[derive(Debug)]
pub struct Lru<K> {
    max: usize,
    keys: VecDeque<K>,
}

impl<K: PartialEq> Lru<K> {
    /// At most `max` keys (at least 1).
    pub fn new(max: usize) -> Self {
        Self {
            max: max.max(1),
            keys: VecDeque::new(),
        }
    }

    /// Marks `key` as the most recently used, adding it if new; returns the
    /// key evicted to make room, if any. Linear in the number of keys,
    /// which is small (the watch limit) and touched only by API requests.
    pub fn touch(&mut self, key: K) -> Option<K> {
        if let Some(at) = self.keys.iter().position(|k| *k == key) {
            let key = self.keys.remove(at).expect("position is in range");
            self.keys.push_back(key);
            return None;
        }
        self.keys.push_back(key);
        if self.keys.len() > self.max {
            self.keys.pop_front()
        } else {
            None
        }
    }

    pub fn contains(&self, key: &K) -> bool {
        self.keys.contains(key)
    }

    pub fn len(&self) -> usize {
        self.keys.len()
    }

    pub fn is_empty(&self) -> bool {
        self.keys.is_empty()
    }

    /// Changes the bound; returns the keys evicted, oldest first.
    pub fn set_max(&mut self, max: usize) -> Vec<K> {
        self.max = max.max(1);
        let excess = self.keys.len().saturating_sub(self.max);
        self.keys.drain(..excess).collect()
    }
}

/// Identifies a watched series across families.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WatchKey {
    pub family: Box<str>,
    pub hash: u64,
    /// Which shard of the family the series is in.
    pub route: u64,
    pub labels: Box<str>,
}

/// How many series may be watched and how many points each keeps.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WatchLimits {
    pub max_series: usize,
    pub points: usize,
}

impl Default for WatchLimits {
    fn default() -> Self {
        Self {
            max_series: 64,
            points: 256,
        }
    }
}

/// The store's watch bookkeeping.
#[derive(Debug)]
pub(super) struct Watchlist {
    pub limits: WatchLimits,
    pub lru: Lru<WatchKey>,
}

impl Default for Watchlist {
    fn default() -> Self {
        let limits = WatchLimits::default();
        Self {
            limits,
            lru: Lru::new(limits.max_series),
        }
    }
}
