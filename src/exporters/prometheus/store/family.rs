//! One metric family: its Prometheus type, help and unit, and its series.

use hashbrown::HashTable;
use parking_lot::Mutex;

use super::value::{Applied, SeriesState, Temporality};
use super::watch::{self, Watch};
use super::{LabelSet, StoreError};

/// The Prometheus type of a family.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FamilyKind {
    Gauge,
    Counter,
    Histogram,
    Summary,
}

impl FamilyKind {
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyKind::Gauge => "gauge",
            FamilyKind::Counter => "counter",
            FamilyKind::Histogram => "histogram",
            FamilyKind::Summary => "summary",
        }
    }
}

/// What a point says about its family.
#[derive(Debug, Clone, Copy)]
pub struct FamilyMeta<'a> {
    pub name: &'a str,
    pub kind: FamilyKind,
    pub help: &'a str,
    /// The Prometheus unit word (`seconds`), empty when none.
    pub unit: &'a str,
}

/// One stored series.
#[derive(Debug)]
pub struct StoredSeries {
    hash: u64,
    /// Sorted, escaped `name="value"` pairs joined by commas.
    labels: Box<str>,
    pub state: SeriesState,
    /// [`SeriesStore::now_tick`](super::SeriesStore::now_tick) of the last update.
    last_seen: u32,
}

impl StoredSeries {
    pub fn labels(&self) -> &str {
        &self.labels
    }
}

/// A 128-bit hash of everything a point's labels are translated from (its
/// attribute bytes as sent, and the labels its resource and scope add). The
/// same key always translates to the same labels, so a known key finds its
/// series without building, sorting and escaping the labels again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawKey(pub [u64; 2]);

/// A raw key and the label hash of the series it translates to.
struct RawEntry {
    key: RawKey,
    series: u64,
}

/// The series of one family.
#[derive(Default)]
pub struct SeriesTable {
    table: HashTable<StoredSeries>,
    /// Raw keys seen for the series, when their label hash is unique in
    /// the table (so the hash alone names the series). A cache: entries
    /// whose series is gone are ignored and refreshed.
    raw: HashTable<RawEntry>,
    /// History rings of the watched series of this family; almost always
    /// empty, and then an update pays only the `is_empty` check.
    watched: Vec<Watch>,
}

impl SeriesTable {
    /// Applies a point to the series with these labels, creating it if new.
    /// Returns what happened and whether the series is new.
    pub fn upsert(
        &mut self,
        labels: &LabelSet,
        incoming: SeriesState,
        temporality: Temporality,
        now: u32,
    ) -> (Applied, bool) {
        let hash = labels.hash();
        let text = labels.text();
        if let Some(existing) = self
            .table
            .find_mut(hash, |s| s.hash == hash && &*s.labels == text)
        {
            existing.last_seen = now;
            let applied = existing.state.apply(incoming, temporality);
            if !self.watched.is_empty() && applied == Applied::Updated {
                watch::record(&mut self.watched, hash, text, &existing.state);
            }
            return (applied, false);
        }
        self.before_insert(hash);
        let entry = self.table.insert_unique(
            hash,
            StoredSeries {
                hash,
                labels: text.into(),
                state: incoming,
                last_seen: now,
            },
            |s| s.hash,
        );
        if !self.watched.is_empty() {
            watch::record(&mut self.watched, hash, text, &entry.get().state);
        }
        (Applied::Updated, true)
    }

    /// Like [`upsert`](Self::upsert) but without building a state for an
    /// existing series: `update` changes it in place (reusing its buffers),
    /// `create` builds the state of a new one.
    pub fn upsert_with(
        &mut self,
        labels: &LabelSet,
        now: u32,
        create: impl FnOnce() -> SeriesState,
        update: impl FnOnce(&mut SeriesState) -> Applied,
    ) -> (Applied, bool) {
        let hash = labels.hash();
        let text = labels.text();
        if let Some(existing) = self
            .table
            .find_mut(hash, |s| s.hash == hash && &*s.labels == text)
        {
            existing.last_seen = now;
            let applied = update(&mut existing.state);
            if !self.watched.is_empty() && applied == Applied::Updated {
                watch::record(&mut self.watched, hash, text, &existing.state);
            }
            return (applied, false);
        }
        self.before_insert(hash);
        let entry = self.table.insert_unique(
            hash,
            StoredSeries {
                hash,
                labels: text.into(),
                state: create(),
                last_seen: now,
            },
            |s| s.hash,
        );
        if !self.watched.is_empty() {
            watch::record(&mut self.watched, hash, text, &entry.get().state);
        }
        (Applied::Updated, true)
    }

    /// A new series whose label hash another series already has makes raw
    /// keys to that hash ambiguous: forget them all (this is ~never).
    fn before_insert(&mut self, hash: u64) {
        if !self.raw.is_empty() && self.table.iter_hash(hash).any(|s| s.hash == hash) {
            self.raw.clear();
        }
    }

    /// Applies `update` (taking it out of the option) to the series a raw
    /// key is known to translate to; `None`, with `update` left in place,
    /// when the key is unknown.
    pub fn update_raw<F: FnOnce(&mut SeriesState) -> Applied>(
        &mut self,
        key: RawKey,
        now: u32,
        update: &mut Option<F>,
    ) -> Option<Applied> {
        let hash = self
            .raw
            .find(key.0[0], |e| e.key == key)
            .map(|e| e.series)?;
        let existing = self.table.find_mut(hash, |s| s.hash == hash)?;
        let update = update.take()?;
        existing.last_seen = now;
        let applied = update(&mut existing.state);
        if !self.watched.is_empty() && applied == Applied::Updated {
            watch::record(&mut self.watched, hash, &existing.labels, &existing.state);
        }
        Some(applied)
    }

    /// Remembers that `key` translates to the series with these labels
    /// (after an upsert), unless another series shares their hash.
    pub fn remember_raw(&mut self, key: RawKey, labels: &LabelSet) {
        let hash = labels.hash();
        if self
            .table
            .iter_hash(hash)
            .filter(|s| s.hash == hash)
            .count()
            != 1
        {
            return;
        }
        // Bounded: senders varying attribute order could add keys forever.
        if self.raw.len() >= 2 * self.table.len() + 1024 {
            self.raw.clear();
        }
        match self.raw.find_mut(key.0[0], |e| e.key == key) {
            Some(entry) => entry.series = hash,
            None => {
                self.raw
                    .insert_unique(key.0[0], RawEntry { key, series: hash }, |e| e.key.0[0]);
            }
        }
    }

    /// Runs `f` on the state of the series with these labels, if present.
    pub fn with_state(&mut self, labels: &LabelSet, f: impl FnOnce(&mut SeriesState)) {
        let hash = labels.hash();
        let text = labels.text();
        if let Some(s) = self
            .table
            .find_mut(hash, |s| s.hash == hash && &*s.labels == text)
        {
            f(&mut s.state);
        }
    }

    /// Removes the series with these labels; true if it existed.
    pub fn remove(&mut self, labels: &LabelSet) -> bool {
        let hash = labels.hash();
        let text = labels.text();
        match self
            .table
            .find_entry(hash, |s| s.hash == hash && &*s.labels == text)
        {
            Ok(entry) => {
                entry.remove();
                true
            }
            Err(_) => false,
        }
    }

    pub fn len(&self) -> usize {
        self.table.len()
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = &StoredSeries> {
        self.table.iter()
    }

    pub fn get(&self, labels: &LabelSet) -> Option<&StoredSeries> {
        let hash = labels.hash();
        let text = labels.text();
        self.table
            .find(hash, |s| s.hash == hash && &*s.labels == text)
    }

    /// The ring of the series with these labels, started (holding its
    /// current value) if it was not watched; `None` if there is no such
    /// series. `capacity` sizes a new ring.
    pub(super) fn watch(&mut self, labels: &LabelSet, capacity: usize) -> Option<&Watch> {
        let hash = labels.hash();
        let text = labels.text();
        let current = watch::point_of(&self.get(labels)?.state);
        match self.watched.iter().position(|w| w.is(hash, text)) {
            Some(at) => Some(&self.watched[at]),
            None => {
                self.watched
                    .push(Watch::new(hash, text.into(), capacity, current));
                self.watched.last()
            }
        }
    }

    /// Stops watching the series (`hash`, `labels`).
    pub(super) fn unwatch(&mut self, hash: u64, labels: &str) {
        self.watched.retain(|w| !w.is(hash, labels));
    }

    /// Number of watched series in this family.
    pub fn watched_count(&self) -> usize {
        self.watched.len()
    }
}

/// A metric family.
pub struct Family {
    name: Box<str>,
    kind: FamilyKind,
    text: Mutex<FamilyText>,
    pub series: Mutex<SeriesTable>,
}

/// Help and unit, which the latest sender may refine.
#[derive(Debug, Clone, Default)]
pub struct FamilyText {
    pub help: String,
    pub unit: String,
}

impl Family {
    pub fn new(meta: &FamilyMeta<'_>) -> Self {
        Self {
            name: meta.name.into(),
            kind: meta.kind,
            text: Mutex::new(FamilyText {
                help: meta.help.to_string(),
                unit: meta.unit.to_string(),
            }),
            series: Mutex::new(SeriesTable::default()),
        }
    }

    pub fn name(&self) -> &str {
        &self.name
    }

    pub fn kind(&self) -> FamilyKind {
        self.kind
    }

    pub fn text(&self) -> FamilyText {
        self.text.lock().clone()
    }

    pub(super) fn check_kind(&self, name: &str, kind: FamilyKind) -> Result<(), StoreError> {
        if self.kind == kind {
            Ok(())
        } else {
            Err(StoreError::TypeConflict {
                name: name.to_string(),
                existing: self.kind.as_str(),
                incoming: kind.as_str(),
            })
        }
    }

    /// Keeps the first non-empty help text; fills it if it was empty.
    pub(super) fn refresh_meta(&self, meta: &FamilyMeta<'_>) {
        if meta.help.is_empty() {
            return;
        }
        let mut text = self.text.lock();
        if text.help.is_empty() {
            text.help = meta.help.to_string();
        }
    }

    pub fn series_count(&self) -> usize {
        self.series.lock().len()
    }

    /// Drops series last seen before `cutoff`; returns (removed, left).
    pub(super) fn expire_older_than(&self, cutoff: u32) -> (u64, usize) {
        let mut series = self.series.lock();
        let before = series.table.len();
        series.table.retain(|s| s.last_seen >= cutoff);
        let left = series.table.len();
        if left < before {
            let SeriesTable { table, raw, .. } = &mut *series;
            raw.retain(|e| table.find(e.series, |s| s.hash == e.series).is_some());
        }
        ((before - left) as u64, left)
    }
}
