//! One metric family: its Prometheus type, help and unit, and its series,
//! split into [`SHARDS`] tables by [`route_hash`](super::labels::route_hash)
//! (of a series' `job` and `instance`), each behind its own lock.
//!
//! Why shards: two workers writing the points of two instances of one
//! service into one table take turns on its lock and its cache lines even
//! when they never wait (measured: 1.6× from 2 threads instead of 1.85×).
//! A series' shard is a function of its final labels, so it is found in
//! one place whatever source its labels came from. What the family holds
//! as a whole stays whole: its series count (one atomic, shared by the
//! shards, moved only when a series is created or dropped), so its series
//! limit is exact; and its overflow series, which has neither label and so
//! always lives in the same shard.
//!
//! Locking: a writer holds one shard at a time (a point bound for another
//! shard, or for the overflow series, is written after the lock it holds
//! is let go), so shards never wait on each other. Readers that must see
//! the whole family at one instant (durable save) lock every shard in
//! index order.

use hashbrown::HashTable;
use parking_lot::{Mutex, MutexGuard};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use super::labels::label_hash;
use super::overflow::{self, Folded, LastValues};
use super::read_ahead::ReadAhead;
use super::shared::{LabelText, SharedLabels, Splice};
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
    /// A gauge whose metadata says `prometheus.type: unknown` (what the
    /// Prometheus receiver makes of an untyped metric): written back as
    /// untyped.
    Unknown,
}

impl FamilyKind {
    /// The OpenMetrics type name (the text format says `untyped` for
    /// `unknown`: see the renderer).
    pub fn as_str(self) -> &'static str {
        match self {
            FamilyKind::Gauge => "gauge",
            FamilyKind::Counter => "counter",
            FamilyKind::Histogram => "histogram",
            FamilyKind::Summary => "summary",
            FamilyKind::Unknown => "unknown",
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
    /// The series' key in its table: the raw key of the first point that
    /// created it (or one derived from its labels).
    key: RawKey,
    /// Sorted, escaped `name="value"` pairs joined by commas, less the
    /// run kept in the family's [`SharedLabels`] (see `splice`).
    labels: Box<str>,
    pub state: SeriesState,
    /// [`SeriesStore::now_tick`](super::SeriesStore::now_tick) of the last update.
    last_seen: u32,
    /// Where the shared run goes back into `labels`.
    splice: Splice,
}

/// A stored series as readers see it: its whole label block and state.
#[derive(Clone, Copy)]
pub struct SeriesView<'a> {
    labels: LabelText<'a>,
    pub state: &'a SeriesState,
}

impl<'a> SeriesView<'a> {
    pub fn labels(&self) -> LabelText<'a> {
        self.labels
    }
}

/// A 128-bit hash of everything a point's labels are translated from (its
/// attribute bytes as sent, and the labels its resource and scope add). The
/// same key always translates to the same labels, so a known key finds its
/// series without building, sorting and escaping the labels again.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawKey(pub [u64; 2]);

/// Seeds of the keys of series created from labels alone.
const TEXT_SEEDS: [foldhash::fast::FixedState; 2] = [
    foldhash::fast::FixedState::with_seed(0x452821e638d01377),
    foldhash::fast::FixedState::with_seed(0xbe5466cf34e90c6c),
];

impl RawKey {
    /// The key of a series created from its labels (no raw point).
    fn of_labels(text: &str) -> Self {
        use std::hash::BuildHasher;
        RawKey(TEXT_SEEDS.map(|seed| seed.hash_one(text)))
    }
}

/// The labels index: label hash → first word of the key of the series
/// with those labels (16 bytes a series; the labels are compared to tell
/// apart series whose keys share that word).
struct LabelEntry {
    hash: u64,
    key0: u64,
}

/// A further raw key of a series (its attributes sent in another order,
/// or another set that translates to the same labels).
struct Alias {
    raw: RawKey,
    key: RawKey,
}

/// The series of one family, keyed by raw key so that a point of a known
/// series costs one probe of one table; indexed by labels for everything
/// else (new raw keys, removal, watches, queries).
#[derive(Default)]
pub struct SeriesTable {
    table: HashTable<StoredSeries>,
    /// The label runs the family's series share (`instance`, `job`,
    /// `otel_scope_*`), each kept once.
    shared: SharedLabels,
    by_labels: HashTable<LabelEntry>,
    aliases: HashTable<Alias>,
    /// History rings of the watched series of this family; almost always
    /// empty, and then an update pays only the `is_empty` check.
    watched: Vec<Watch>,
    /// The last values of the cumulative series folded into the overflow
    /// series (absent until a series limit is reached).
    overflowed: Option<Box<LastValues>>,
    /// Series in the whole family, shared with its other shards.
    family_len: Arc<AtomicUsize>,
}

impl SeriesTable {
    /// The key of the series with these labels.
    fn key_of(&self, labels: &LabelSet) -> Option<RawKey> {
        let (hash, text) = (labels.hash(), labels.text());
        let (table, shared) = (&self.table, &self.shared);
        let with_labels = |key0: u64| {
            table
                .iter_hash(key0)
                .find(|s| s.key.0[0] == key0 && shared.text(&s.labels, s.splice).is(text))
                .map(|s| s.key)
        };
        self.by_labels
            .iter_hash(hash)
            .filter(|e| e.hash == hash)
            .find_map(|e| with_labels(e.key0))
    }

    /// Whether a series with these labels is stored.
    pub fn contains(&self, labels: &LabelSet) -> bool {
        self.key_of(labels).is_some()
    }

    /// Folds a point of the series with raw key `raw` (beyond a series
    /// limit) into the overflow series labelled `overflow_labels`,
    /// creating it if needed; returns what happened and whether the
    /// overflow series is new. See [`overflow`].
    #[allow(clippy::too_many_arguments)]
    pub fn fold_overflow(
        &mut self,
        overflow_labels: &LabelSet,
        raw: RawKey,
        kind: FamilyKind,
        temporality: Temporality,
        incoming: SeriesState,
        tracked: usize,
        now: u32,
    ) -> (Folded, bool) {
        let key = self.key_of(overflow_labels);
        let last = self.overflowed.get_or_insert_with(Default::default);
        let total = key
            .and_then(|k| self.table.find_mut(k.0[0], |s| s.key == k))
            .map(|s| {
                s.last_seen = now;
                &mut s.state
            });
        let (folded, create) =
            overflow::fold(last, raw.0[0], kind, temporality, incoming, total, tracked);
        match create {
            Some(state) => {
                let new = self
                    .upsert_keyed(
                        overflow_labels,
                        None,
                        now,
                        usize::MAX,
                        || state,
                        |_| Applied::Updated,
                    )
                    .is_ok_and(|(_, new)| new);
                (folded, new)
            }
            None => (folded, false),
        }
    }

    fn series_mut(&mut self, key: RawKey) -> Option<&mut StoredSeries> {
        self.table.find_mut(key.0[0], |s| s.key == key)
    }

    /// Applies a point to the series with these labels, creating it if new.
    /// Returns what happened and whether the series is new.
    pub fn upsert(
        &mut self,
        labels: &LabelSet,
        incoming: SeriesState,
        temporality: Temporality,
        now: u32,
    ) -> (Applied, bool) {
        let update = incoming.clone();
        self.upsert_keyed(
            labels,
            None,
            now,
            usize::MAX,
            || incoming,
            |state| state.apply(update, temporality),
        )
        .unwrap_or((Applied::Updated, false))
    }

    /// Applies a point to the series with these labels without building a
    /// state for an existing one: `update` changes it in place (reusing its
    /// buffers), `create` builds the state of a new one. `raw` is the
    /// point's raw key when it was looked up and not known: it is
    /// remembered for the series (as its key, or an alias). A new series
    /// is refused when its family already holds `limit` series: `Err`
    /// then hands back the state it would have had (for the overflow
    /// series).
    pub fn upsert_keyed(
        &mut self,
        labels: &LabelSet,
        raw: Option<RawKey>,
        now: u32,
        limit: usize,
        create: impl FnOnce() -> SeriesState,
        update: impl FnOnce(&mut SeriesState) -> Applied,
    ) -> Result<(Applied, bool), SeriesState> {
        let hash = labels.hash();
        if let Some(key) = self.key_of(labels) {
            if let Some(raw) = raw.filter(|r| *r != key) {
                self.add_alias(raw, key);
            }
            // Found through the table, so present.
            if let Some(existing) = self.table.find_mut(key.0[0], |s| s.key == key) {
                existing.last_seen = now;
                let applied = update(&mut existing.state);
                if !self.watched.is_empty() && applied == Applied::Updated {
                    watch::record(&mut self.watched, hash, labels.text(), &existing.state);
                }
                return Ok((applied, false));
            }
        }
        // Counted before it is made: the shards of a family are written at
        // once, and the count is what they share.
        if self
            .family_len
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_err()
        {
            return Err(create());
        }
        let text = labels.text();
        // A raw key is new here (the caller looked it up); a key derived
        // from labels could only repeat by a 128-bit collision.
        let key = raw
            .filter(|k| self.series_mut(*k).is_none())
            .unwrap_or_else(|| RawKey::of_labels(text));
        let (own, splice) = self.shared.split(text, labels.shared_span());
        let entry = self.table.insert_unique(
            key.0[0],
            StoredSeries {
                key,
                labels: own,
                state: create(),
                last_seen: now,
                splice,
            },
            |s| s.key.0[0],
        );
        if !self.watched.is_empty() {
            watch::record(&mut self.watched, hash, text, &entry.get().state);
        }
        self.by_labels.insert_unique(
            hash,
            LabelEntry {
                hash,
                key0: key.0[0],
            },
            |e| e.hash,
        );
        Ok((Applied::Updated, true))
    }

    fn add_alias(&mut self, raw: RawKey, key: RawKey) {
        // Bounded: senders varying attribute order could add keys forever.
        if self.aliases.len() >= self.table.len() + 1024 {
            self.aliases.clear();
        }
        match self.aliases.find_mut(raw.0[0], |a| a.raw == raw) {
            Some(alias) => alias.key = key,
            None => {
                self.aliases
                    .insert_unique(raw.0[0], Alias { raw, key }, |a| a.raw.0[0]);
            }
        }
    }

    /// Loads the table slot of a raw key, so that a later update of it
    /// finds it in cache. Calling it for a batch of keys back to back
    /// lets their cache misses overlap (nothing here waits for a load's
    /// result before the next key's probe starts).
    #[inline]
    pub fn touch(&self, raw: RawKey) {
        // An entry spans two cache lines: read the key (the probe) and the
        // state's time, which the update reads first.
        let found = self.table.find(raw.0[0], |s| s.key == raw);
        std::hint::black_box(found.map(|s| s.state.time_ns));
    }

    /// Applies `update` (taking it out of the option) to the series a raw
    /// key is known to translate to; `None`, with `update` left in place,
    /// when the key is unknown.
    pub fn update_raw<F: FnOnce(&mut SeriesState) -> Applied>(
        &mut self,
        raw: RawKey,
        now: u32,
        update: &mut Option<F>,
    ) -> Option<Applied> {
        let index = match self.table.find_bucket_index(raw.0[0], |s| s.key == raw) {
            Some(index) => index,
            None => {
                let key = self.aliases.find(raw.0[0], |a| a.raw == raw)?.key;
                self.table.find_bucket_index(key.0[0], |s| s.key == key)?
            }
        };
        let existing = self.table.get_bucket_mut(index)?;
        let update = update.take()?;
        existing.last_seen = now;
        let applied = update(&mut existing.state);
        if !self.watched.is_empty() && applied == Applied::Updated {
            let text = self
                .shared
                .text(&existing.labels, existing.splice)
                .to_string();
            watch::record(&mut self.watched, label_hash(&text), &text, &existing.state);
        }
        Some(applied)
    }

    /// Runs `f` on the state of the series with these labels, if present.
    pub fn with_state(&mut self, labels: &LabelSet, f: impl FnOnce(&mut SeriesState)) {
        if let Some(key) = self.key_of(labels)
            && let Some(s) = self.series_mut(key)
        {
            f(&mut s.state);
        }
    }

    /// Removes the series with these labels; true if it existed.
    pub fn remove(&mut self, labels: &LabelSet) -> bool {
        let Some(key) = self.key_of(labels) else {
            return false;
        };
        let hash = labels.hash();
        if let Ok(entry) = self
            .by_labels
            .find_entry(hash, |e| e.hash == hash && e.key0 == key.0[0])
        {
            entry.remove();
        }
        match self.table.find_entry(key.0[0], |s| s.key == key) {
            Ok(entry) => {
                let (removed, _) = entry.remove();
                self.shared.release(removed.splice);
                self.family_len.fetch_sub(1, Ordering::AcqRel);
                true
            }
            Err(_) => false,
        }
    }

    /// Removes the series whose whole label block `doomed` picks;
    /// returns how many.
    pub fn remove_where(&mut self, mut doomed: impl FnMut(&str) -> bool) -> u64 {
        let mut text = String::new();
        let keys: Vec<RawKey> = self
            .table
            .iter()
            .filter(|s| {
                text.clear();
                self.shared.text(&s.labels, s.splice).push_to(&mut text);
                doomed(&text)
            })
            .map(|s| s.key)
            .collect();
        if keys.is_empty() {
            return 0;
        }
        let shared = &mut self.shared;
        self.table.retain(|s| {
            let gone = keys.contains(&s.key);
            if gone {
                shared.release(s.splice);
            }
            !gone
        });
        self.forget_removed(keys.len());
        keys.len() as u64
    }

    /// After `removed` series left the table: the family's count, and
    /// the label index and aliases of series no longer in it.
    fn forget_removed(&mut self, removed: usize) {
        self.family_len.fetch_sub(removed, Ordering::AcqRel);
        let table = &self.table;
        let present = |key0: u64| table.find(key0, |s| s.key.0[0] == key0).is_some();
        self.by_labels.retain(|e| present(e.key0));
        self.aliases.retain(|a| present(a.key.0[0]));
    }

    /// Series in this table (one shard of its family).
    pub fn len(&self) -> usize {
        self.table.len()
    }

    /// Series in the whole family this table is a shard of.
    pub fn family_len(&self) -> usize {
        self.family_len.load(Ordering::Acquire)
    }

    pub fn is_empty(&self) -> bool {
        self.table.is_empty()
    }

    pub fn iter(&self) -> impl Iterator<Item = SeriesView<'_>> {
        ReadAhead::new(self.table.iter(), |s: &StoredSeries| s.labels.as_bytes())
            .map(|s| self.view(s))
    }

    pub fn get(&self, labels: &LabelSet) -> Option<SeriesView<'_>> {
        let key = self.key_of(labels)?;
        let s = self.table.find(key.0[0], |s| s.key == key)?;
        Some(self.view(s))
    }

    fn view<'a>(&'a self, s: &'a StoredSeries) -> SeriesView<'a> {
        SeriesView {
            labels: self.shared.text(&s.labels, s.splice),
            state: &s.state,
        }
    }

    /// Distinct label runs shared by this family's series.
    pub fn shared_runs(&self) -> usize {
        self.shared.len()
    }

    /// Drops series last seen before `cutoff` with their index entries;
    /// returns how many.
    fn retain_seen_since(&mut self, cutoff: u32) -> u64 {
        let before = self.table.len();
        let shared = &mut self.shared;
        let mut overflow_expired = false;
        self.table.retain(|s| {
            let keep = s.last_seen >= cutoff;
            if !keep {
                shared.release(s.splice);
                overflow_expired |= &*s.labels == overflow::OVERFLOW_TEXT;
            }
            keep
        });
        if overflow_expired {
            // The overflow series is gone: so are the last values it was
            // summed from.
            self.overflowed = None;
        }
        let removed = (before - self.table.len()) as u64;
        if removed > 0 {
            self.forget_removed(removed as usize);
        }
        removed
    }

    /// The ring of the series with these labels, started (holding its
    /// current value) if it was not watched; `None` if there is no such
    /// series. `capacity` sizes a new ring.
    pub(super) fn watch(&mut self, labels: &LabelSet, capacity: usize) -> Option<&Watch> {
        let hash = labels.hash();
        let text = labels.text();
        let current = watch::point_of(self.get(labels)?.state);
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
    /// Whether `text.help` is set: once it is, writers skip the text lock
    /// (every metric of every request would take it otherwise).
    has_help: AtomicBool,
    /// Whether delta points were added up here: its series then hold
    /// totals only StreamGate knows, kept in durable state.
    accumulates: AtomicBool,
    shards: Box<[Shard]>,
    /// Series over all shards (each shard's table holds a clone).
    len: Arc<AtomicUsize>,
}

/// How many tables a family's series are split into. 8 keeps two writers
/// apart 7 times in 8 (for two instances picked at random), for 2 KiB per
/// family (8 × 256-byte shards; an empty table allocates nothing).
pub const SHARDS: usize = 8;

/// One shard, on cache lines of its own: its lock word is written by every
/// writer that takes it, and must not share a line with its neighbour's.
#[repr(align(64))]
struct Shard(Mutex<SeriesTable>);

/// Help and unit, which the latest sender may refine.
#[derive(Debug, Clone, Default)]
pub struct FamilyText {
    pub help: String,
    pub unit: String,
}

impl Family {
    pub fn new(meta: &FamilyMeta<'_>) -> Self {
        let len = Arc::new(AtomicUsize::new(0));
        Self {
            name: meta.name.into(),
            kind: meta.kind,
            text: Mutex::new(FamilyText {
                help: meta.help.to_string(),
                unit: meta.unit.to_string(),
            }),
            has_help: AtomicBool::new(!meta.help.is_empty()),
            accumulates: AtomicBool::new(false),
            shards: Box::new(std::array::from_fn::<_, SHARDS, _>(|_| {
                Shard(Mutex::new(SeriesTable {
                    family_len: Arc::clone(&len),
                    ..SeriesTable::default()
                }))
            })),
            len,
        }
    }

    /// The index of the shard of series routed by `route` (see
    /// [`LabelSet::route`]).
    pub fn shard_index(route: u64) -> usize {
        // The high bits: foldhash mixes them best.
        (route >> 58) as usize % SHARDS
    }

    /// The shard at `index` (taken modulo [`SHARDS`]).
    pub fn shard(&self, index: usize) -> &Mutex<SeriesTable> {
        &self.shards[index % SHARDS].0
    }

    /// The shard that holds (or would hold) the series with these labels.
    pub fn shard_for(&self, labels: &LabelSet) -> &Mutex<SeriesTable> {
        self.shard(Self::shard_index(labels.route()))
    }

    /// Every shard, in index order.
    pub fn shards(&self) -> impl Iterator<Item = &Mutex<SeriesTable>> {
        self.shards.iter().map(|s| &s.0)
    }

    /// Every shard locked, in index order (the one order anything takes
    /// more than one in): the whole family at one instant.
    pub fn lock_all(&self) -> Vec<MutexGuard<'_, SeriesTable>> {
        self.shards().map(|s| s.lock()).collect()
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
        if meta.help.is_empty() || self.has_help.load(Ordering::Relaxed) {
            return;
        }
        let mut text = self.text.lock();
        if text.help.is_empty() {
            text.help = meta.help.to_string();
        }
        self.has_help.store(true, Ordering::Relaxed);
    }

    /// Marks the family as holding totals added up from deltas.
    pub fn mark_accumulating(&self) {
        if !self.accumulates.load(Ordering::Relaxed) {
            self.accumulates.store(true, Ordering::Relaxed);
        }
    }

    /// Whether delta points were added up in this family.
    pub fn accumulates(&self) -> bool {
        self.accumulates.load(Ordering::Relaxed)
    }

    pub fn series_count(&self) -> usize {
        self.len.load(Ordering::Acquire)
    }

    /// Drops series last seen before `cutoff`; returns (removed, left).
    pub(super) fn expire_older_than(&self, cutoff: u32) -> (u64, usize) {
        let removed = self
            .shards()
            .map(|shard| shard.lock().retain_seen_since(cutoff))
            .sum();
        (removed, self.series_count())
    }
}
