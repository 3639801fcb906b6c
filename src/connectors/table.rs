//! The aggregation table every connector keeps: series keyed by (resource,
//! dimension values), with a cardinality limit, an overflow series, dirty
//! tracking for incremental output, and expiry of idle series.
//!
//! Resources are stored once and shared by their series. A series is found
//! by a 128-bit hash of its resource and dimension values, kept in the
//! index itself: an existing series costs one probe and no allocation, and
//! its stored values are not compared (as with the Prometheus store's raw
//! keys, a collision between two of a table's series is far less likely
//! than a memory error). Beyond `limit` series the table routes points to one
//! overflow series (attribute `otel.metric.overflow=true`, no resource), so
//! memory never grows with the cardinality of the input.
//!
//! A connector written by several workers at once splits its series into
//! [`Table::shards`]: tables that share one series count (so the limit
//! holds across them) and of which only the first keeps the overflow
//! series; another shard answers [`Upserted::Refused`] past the limit,
//! and the caller applies the point to the first shard once it has let
//! its own go, so no one holds two shards.
//!
//! [`Table::save`] and [`Table::load`] write and read back every series
//! (resource, dimension values, value, start and last time) for durable
//! state, so a connector's cumulative counters continue across a restart
//! with their original start time instead of resetting.

use std::hash::{BuildHasher, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use hashbrown::HashTable;

use super::held::HeldValues;

use crate::model::otlp::common::KeyValue;
use crate::pipeline::durable::{DurableError, append as put};

const HASHER: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x7ab1e);
/// The second half of a series key.
const HASHER_HIGH: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5e71e5);

/// Hashes a resource's attributes (order-sensitive, as sent).
pub fn resource_hash(attributes: &[KeyValue]) -> u64 {
    use crate::model::otlp::common::any_value::Value;
    let mut h = HASHER.build_hasher();
    for kv in attributes {
        h.write(kv.key.as_bytes());
        h.write_u8(0xff);
        match kv.value.as_ref().and_then(|v| v.value.as_ref()) {
            Some(Value::StringValue(s)) => h.write(s.as_bytes()),
            Some(Value::IntValue(i)) => h.write_i64(*i),
            Some(Value::DoubleValue(d)) => h.write_u64(d.to_bits()),
            Some(Value::BoolValue(b)) => h.write_u8(u8::from(*b)),
            Some(Value::BytesValue(b)) => h.write(b),
            Some(other) => h.write(format!("{other:?}").as_bytes()),
            None => h.write_u8(0),
        }
        h.write_u8(0xfe);
    }
    h.finish()
}

/// A resource's attributes sorted by key, and their hash: SDKs may send
/// the same resource with its attributes in another order (the Rust SDK
/// keeps them in a hash map), and that must stay one resource.
pub fn canonical_resource(mut attributes: Vec<KeyValue>) -> (Vec<KeyValue>, u64) {
    attributes.sort_by(|a, b| a.key.cmp(&b.key));
    let hash = resource_hash(&attributes);
    (attributes, hash)
}

/// How many tables a sharded connector splits its series into, by
/// resource ([`shard_of`]).
pub const SHARDS: usize = 8;

/// The shard that keeps the overflow series ([`Table::shards`]'s first).
pub const OVERFLOW_SHARD: usize = 0;

/// The shard of a resource's series, from its hash.
pub fn shard_of(resource_hash: u64) -> usize {
    (resource_hash >> 59) as usize % SHARDS
}

/// The identity of a series: a 128-bit hash of its resource and values.
pub type SeriesKey = [u64; 2];

/// An index bucket: the key, so a probe needs no other memory, and where
/// the series is.
struct IndexEntry {
    key: SeriesKey,
    slot: usize,
}

/// The key of a series of the resource with hash `resource_hash`.
pub fn series_key(resource_hash: u64, dims: &[Option<&str>]) -> SeriesKey {
    KeyPrefix::new(resource_hash, &[]).key(dims)
}

/// [`series_key`]'s hashing done as far as the resource and the first
/// dimension values, for the series of one resource that share them (the
/// span-metrics series of one resource share its service name): each
/// series then hashes only the values after them.
#[derive(Clone)]
pub struct KeyPrefix([foldhash::fast::FoldHasher<'static>; 2]);

impl KeyPrefix {
    pub fn new(resource_hash: u64, first: &[Option<&str>]) -> Self {
        let mut hashers = [HASHER.build_hasher(), HASHER_HIGH.build_hasher()];
        for h in &mut hashers {
            h.write_u64(resource_hash);
            write_dims(h, first);
        }
        Self(hashers)
    }

    /// The key of the series whose values are the prefix's, then `rest`.
    #[inline]
    pub fn key(&self, rest: &[Option<&str>]) -> SeriesKey {
        let [mut low, mut high] = self.0.clone();
        write_dims(&mut low, rest);
        write_dims(&mut high, rest);
        [low.finish(), high.finish()]
    }
}

#[inline]
fn write_dims(h: &mut impl Hasher, dims: &[Option<&str>]) {
    for d in dims {
        // Length + 1 before each value (0: absent) keeps the values
        // apart in two writes per value.
        match d {
            Some(v) => {
                h.write_usize(v.len() + 1);
                h.write(v.as_bytes());
            }
            None => h.write_usize(0),
        }
    }
}

/// Where [`Table::touch`] found a series: valid for
/// [`Table::update_found`] until a series is added to or dropped from
/// the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Found(usize);

impl Found {
    /// The overflow series (for [`Table::hold`]).
    pub const OVERFLOW: Found = Found(OVERFLOW);
}

/// One aggregated series.
pub struct Entry<V> {
    key: SeriesKey,
    /// Index into the resource slots; `None` for the overflow series.
    pub resource: Option<usize>,
    /// Dimension values in the connector's dimension order; `None` means
    /// the dimension is absent for this series.
    pub dims: Vec<Option<Box<str>>>,
    pub value: V,
    /// Unix ns of the first point.
    pub start_ns: u64,
    /// Unix ns of the last point.
    pub last_ns: u64,
    dirty: bool,
}

struct ResourceSlot {
    hash: u64,
    attributes: Vec<KeyValue>,
    series: usize,
}

/// What [`Table::upsert`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Upserted {
    Existing,
    New,
    /// The limit was reached: the point went to the overflow series.
    Overflow,
    /// The limit was reached in a shard without the overflow series:
    /// nothing changed; the point belongs to the first shard's.
    Refused,
}

/// A connector's series.
pub struct Table<V> {
    limit: usize,
    /// Series (not counting the overflow series) over every table that
    /// shares the limit: this one alone, or all shards of a connector.
    total: Arc<AtomicUsize>,
    /// Whether this table keeps the overflow series (the only or the
    /// first shard).
    holds_overflow: bool,
    slots: Vec<Option<Entry<V>>>,
    free: Vec<usize>,
    index: HashTable<IndexEntry>,
    dirty: Vec<usize>,
    resources: Vec<Option<ResourceSlot>>,
    free_resources: Vec<usize>,
    resource_index: HashTable<usize>,
    overflow: Option<Entry<V>>,
    len: usize,
    last_ns: u64,
    /// Values held per series until the next drain ([`Table::hold`]);
    /// the overflow series' apart.
    held: HeldValues,
    overflow_held: Vec<f64>,
    /// When [`Table::mark_all_changed_every`] last marked every series.
    refreshed_ns: u64,
}

/// How often a connector hands on every series, changed or not (see
/// [`Table::mark_all_changed_every`]).
pub const REFRESH_EVERY: std::time::Duration = std::time::Duration::from_secs(15);

/// Slot of the overflow series in [`Table::dirty`].
const OVERFLOW: usize = usize::MAX;

/// A series as [`Table::save`] writes it: the resource's attributes as a
/// protobuf `Resource` (empty for the overflow series), then the rest.
#[derive(serde::Serialize)]
struct SavedEntry<'a, V> {
    overflow: bool,
    resource: &'a [u8],
    dims: Vec<Option<&'a str>>,
    value: &'a V,
    start_ns: u64,
    last_ns: u64,
}

/// A [`SavedEntry`] read back.
#[derive(serde::Deserialize)]
struct SavedEntryOwned<V> {
    overflow: bool,
    resource: Vec<u8>,
    dims: Vec<Option<String>>,
    value: V,
    start_ns: u64,
    last_ns: u64,
}

impl<V> Table<V> {
    pub fn new(limit: usize) -> Self {
        Self::sharing(limit, Arc::new(AtomicUsize::new(0)), true)
    }

    /// `count` tables that share `limit` (at least one); the first keeps
    /// the overflow series.
    pub fn shards(limit: usize, count: usize) -> Vec<Self> {
        let total = Arc::new(AtomicUsize::new(0));
        (0..count.max(1))
            .map(|i| Self::sharing(limit, Arc::clone(&total), i == 0))
            .collect()
    }

    fn sharing(limit: usize, total: Arc<AtomicUsize>, holds_overflow: bool) -> Self {
        Self {
            limit,
            total,
            holds_overflow,
            slots: Vec::new(),
            free: Vec::new(),
            index: HashTable::new(),
            dirty: Vec::new(),
            resources: Vec::new(),
            free_resources: Vec::new(),
            resource_index: HashTable::new(),
            overflow: None,
            held: HeldValues::default(),
            overflow_held: Vec::new(),
            refreshed_ns: 0,
            len: 0,
            last_ns: 0,
        }
    }

    /// A timestamp for the points emitted now: the wall clock, but always
    /// after the previous one, so the exporter never takes a later state
    /// for an older one. Call it with the table locked.
    pub fn tick(&mut self, wall_ns: u64) -> u64 {
        self.last_ns = wall_ns.max(self.last_ns + 1);
        self.last_ns
    }

    /// Series held, not counting the overflow series.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Series held by this table and the shards it shares its limit with.
    pub fn total_len(&self) -> usize {
        self.total.load(Ordering::Acquire)
    }

    /// Counts one more series if the limit allows it.
    fn admit(&self) -> bool {
        let limit = self.limit;
        self.total
            .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| {
                (n < limit).then_some(n + 1)
            })
            .is_ok()
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// The slot of the series with this key.
    #[inline]
    fn slot_of(&self, key: SeriesKey) -> Option<usize> {
        self.index.find(key[0], |e| e.key == key).map(|e| e.slot)
    }

    /// Applies `update` to the series in `slot` and marks it changed.
    #[inline]
    fn update_slot(&mut self, slot: usize, now_ns: u64, update: impl FnOnce(&mut V)) {
        if let Some(Some(entry)) = self.slots.get_mut(slot) {
            update(&mut entry.value);
            entry.last_ns = now_ns;
            if !entry.dirty {
                entry.dirty = true;
                self.dirty.push(slot);
            }
        }
    }

    /// Finds the series of `key` (from [`series_key`]) and loads it, and
    /// what `warm` reads of its value, into cache; `None` if the table
    /// does not have it. Called for a batch of keys back to back it lets
    /// their cache misses overlap, and [`Table::update_found`] then
    /// updates each without looking it up again.
    #[inline]
    pub fn touch(&self, key: SeriesKey, warm: impl Fn(&V) -> u64) -> Option<Found> {
        let slot = self.slot_of(key)?;
        let entry = self.slots.get(slot)?.as_ref()?;
        std::hint::black_box(warm(&entry.value) ^ u64::from(entry.dirty));
        Some(Found(slot))
    }

    /// Applies `update` to a series [`Table::touch`] found, and marks it
    /// changed. The table must not have changed in between: found and
    /// updated under one lock, with no series added or dropped between.
    #[inline]
    pub fn update_found(&mut self, found: Found, now_ns: u64, update: impl FnOnce(&mut V)) {
        self.update_slot(found.0, now_ns, update);
    }

    /// Where the series of `key` is, if the table has it.
    pub fn find(&self, key: SeriesKey) -> Option<Found> {
        self.slot_of(key).map(Found)
    }

    /// Holds `value` for a series updated since the last drain, which
    /// hands it over ([`Table::drain_dirty_holding`]). A changed series
    /// is not expired before the drain, so `at` stays its own until
    /// then.
    #[inline]
    pub fn hold(&mut self, at: Found, value: f64) {
        if at.0 == OVERFLOW {
            self.overflow_held.push(value);
        } else {
            self.held.push(at.0, value);
        }
    }

    /// Finds or adds the series of `dims` under the resource, and applies
    /// `update` to its value. `make` builds the value of a new series.
    pub fn upsert(
        &mut self,
        resource: &[KeyValue],
        resource_hash: u64,
        dims: &[Option<&str>],
        now_ns: u64,
        make: impl FnOnce() -> V,
        update: impl FnOnce(&mut V),
    ) -> Upserted {
        let key = series_key(resource_hash, dims);
        if let Some(slot) = self.slot_of(key) {
            self.update_slot(slot, now_ns, update);
            return Upserted::Existing;
        }
        if !self.admit() {
            return self.upsert_overflow(now_ns, make, update);
        }
        let resource = self.resource_slot(resource, resource_hash);
        let mut value = make();
        update(&mut value);
        let entry = Entry {
            key,
            resource: Some(resource),
            dims: dims.iter().map(|d| d.map(Box::from)).collect(),
            value,
            start_ns: now_ns,
            last_ns: now_ns,
            dirty: true,
        };
        let slot = match self.free.pop() {
            Some(s) => {
                self.slots[s] = Some(entry);
                s
            }
            None => {
                self.slots.push(Some(entry));
                self.slots.len() - 1
            }
        };
        self.index
            .insert_unique(key[0], IndexEntry { key, slot }, |e| e.key[0]);
        self.dirty.push(slot);
        self.len += 1;
        Upserted::New
    }

    /// Applies `update` to the overflow series (created by `make`), if
    /// this table keeps it; [`Upserted::Refused`], and nothing changed,
    /// if not. For a point another shard refused past the limit.
    pub fn upsert_overflow(
        &mut self,
        now_ns: u64,
        make: impl FnOnce() -> V,
        update: impl FnOnce(&mut V),
    ) -> Upserted {
        if !self.holds_overflow {
            return Upserted::Refused;
        }
        let overflow = self.overflow.get_or_insert_with(|| Entry {
            key: [0; 2],
            resource: None,
            dims: Vec::new(),
            value: make(),
            start_ns: now_ns,
            last_ns: now_ns,
            dirty: false,
        });
        update(&mut overflow.value);
        overflow.last_ns = now_ns;
        if !overflow.dirty {
            overflow.dirty = true;
            self.dirty.push(OVERFLOW);
        }
        Upserted::Overflow
    }

    fn resource_slot(&mut self, attributes: &[KeyValue], hash: u64) -> usize {
        let resources = &self.resources;
        if let Some(&slot) = self.resource_index.find(hash, |&r| {
            resources[r]
                .as_ref()
                .is_some_and(|r| r.hash == hash && r.attributes == attributes)
        }) {
            if let Some(r) = self.resources[slot].as_mut() {
                r.series += 1;
            }
            return slot;
        }
        let entry = ResourceSlot {
            hash,
            attributes: attributes.to_vec(),
            series: 1,
        };
        let slot = match self.free_resources.pop() {
            Some(s) => {
                self.resources[s] = Some(entry);
                s
            }
            None => {
                self.resources.push(Some(entry));
                self.resources.len() - 1
            }
        };
        let resources = &self.resources;
        self.resource_index.insert_unique(hash, slot, |&r| {
            resources[r].as_ref().map(|r| r.hash).unwrap_or_default()
        });
        slot
    }

    /// The attributes of a resource slot.
    pub fn resource(&self, slot: Option<usize>) -> &[KeyValue] {
        slot.and_then(|s| self.resources.get(s))
            .and_then(|r| r.as_ref())
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default()
    }

    /// Marks every series changed once `every` has passed since it last
    /// did (by `now_ns`), so the next drain hands them all on: a counter
    /// no span or record moves is stamped again with its unchanged value,
    /// and its rate falls to 0 where the analysis and `rate()` see it (a
    /// series handed on only when it changed would look frozen at its
    /// last rate). The OTel Collector's connectors hand on every series
    /// at every flush; this does it at most every `every`.
    pub fn mark_all_changed_every(&mut self, now_ns: u64, every: std::time::Duration) {
        let every_ns = u64::try_from(every.as_nanos()).unwrap_or(u64::MAX);
        if now_ns.saturating_sub(self.refreshed_ns) < every_ns {
            return;
        }
        self.refreshed_ns = now_ns;
        for (slot, entry) in self.slots.iter_mut().enumerate() {
            if let Some(entry) = entry
                && !entry.dirty
            {
                entry.dirty = true;
                self.dirty.push(slot);
            }
        }
        if let Some(overflow) = &mut self.overflow
            && !overflow.dirty
        {
            overflow.dirty = true;
            self.dirty.push(OVERFLOW);
        }
    }

    /// Calls `visit` for every series changed since the last call, and
    /// marks them clean.
    pub fn drain_dirty(&mut self, mut visit: impl FnMut(&[KeyValue], &mut Entry<V>)) {
        self.drain_dirty_holding(|resource, entry, _| visit(resource, entry));
    }

    /// As [`Table::drain_dirty`], also handing each series the values
    /// held for it since the last drain, in the order they were held.
    pub fn drain_dirty_holding(
        &mut self,
        mut visit: impl FnMut(&[KeyValue], &mut Entry<V>, &[f64]),
    ) {
        let dirty = std::mem::take(&mut self.dirty);
        self.held.group(self.slots.len());
        let overflow_held = std::mem::take(&mut self.overflow_held);
        for slot in &dirty {
            let (entry, held) = if *slot == OVERFLOW {
                (self.overflow.as_mut(), overflow_held.as_slice())
            } else {
                let entry = self.slots.get_mut(*slot).and_then(|e| e.as_mut());
                (entry, self.held.of(*slot))
            };
            let Some(entry) = entry else { continue };
            entry.dirty = false;
            let resource = entry
                .resource
                .and_then(|s| self.resources.get(s))
                .and_then(|r| r.as_ref())
                .map(|r| r.attributes.as_slice())
                .unwrap_or_default();
            visit(resource, entry, held);
        }
        self.held.release();
        let used = overflow_held.len();
        self.overflow_held = overflow_held;
        super::held::trim_after_clear(&mut self.overflow_held, used);
        self.dirty = dirty;
        self.dirty.clear();
    }

    /// Removes series whose last point is older than `cutoff_ns`; returns
    /// how many. The overflow series expires too.
    pub fn expire(&mut self, cutoff_ns: u64) -> usize {
        let mut removed = 0;
        for slot in 0..self.slots.len() {
            let stale = self.slots[slot]
                .as_ref()
                .is_some_and(|e| e.last_ns < cutoff_ns && !e.dirty);
            if !stale {
                continue;
            }
            let Some(entry) = self.slots[slot].take() else {
                continue;
            };
            if let Ok(found) = self.index.find_entry(entry.key[0], |e| e.slot == slot) {
                found.remove();
            }
            self.free.push(slot);
            self.len -= 1;
            self.total.fetch_sub(1, Ordering::AcqRel);
            removed += 1;
            if let Some(r) = entry.resource {
                self.release_resource(r);
            }
        }
        if self
            .overflow
            .as_ref()
            .is_some_and(|o| o.last_ns < cutoff_ns && !o.dirty)
        {
            self.overflow = None;
            removed += 1;
        }
        if removed > 0 {
            self.compact_if_sparse();
        }
        removed
    }

    /// Gives back the room of expired series once they are most of it:
    /// the slots, the index and the resource slots are rebuilt at the
    /// size of what is left when under a quarter of the slots hold a
    /// series, so a burst's series leave no tables of their size behind.
    /// Series that changed since the last drain (and the values held for
    /// them) are named by slot, so a table with any is left for a later
    /// expiry.
    fn compact_if_sparse(&mut self) {
        const MIN_SLOTS: usize = 64;
        let sparse = self.slots.len() > MIN_SLOTS && self.len * 4 < self.slots.len();
        if !sparse || !self.dirty.is_empty() || !self.held.is_empty() {
            return;
        }
        // Resources first: each kept one gets its new slot.
        let mut resource_moves = vec![usize::MAX; self.resources.len()];
        let mut resources = Vec::with_capacity(self.resources.len() - self.free_resources.len());
        for (old, r) in std::mem::take(&mut self.resources).into_iter().enumerate() {
            if let Some(r) = r {
                resource_moves[old] = resources.len();
                resources.push(Some(r));
            }
        }
        let mut slots = Vec::with_capacity(self.len);
        for mut entry in std::mem::take(&mut self.slots).into_iter().flatten() {
            entry.resource = entry
                .resource
                .and_then(|r| resource_moves.get(r).copied())
                .filter(|&r| r != usize::MAX);
            slots.push(Some(entry));
        }
        let mut index = HashTable::with_capacity(slots.len());
        for (slot, entry) in slots.iter().enumerate() {
            if let Some(entry) = entry {
                let key = entry.key;
                index.insert_unique(key[0], IndexEntry { key, slot }, |e| e.key[0]);
            }
        }
        let mut resource_index = HashTable::with_capacity(resources.len());
        for (slot, r) in resources.iter().enumerate() {
            if let Some(r) = r {
                resource_index.insert_unique(r.hash, slot, |&s| {
                    resources[s].as_ref().map(|r| r.hash).unwrap_or_default()
                });
            }
        }
        self.slots = slots;
        self.index = index;
        self.resources = resources;
        self.resource_index = resource_index;
        self.free = Vec::new();
        self.free_resources = Vec::new();
        self.dirty = Vec::new();
    }

    /// Room for series kept by the table: its slots, live or free.
    #[cfg(test)]
    fn slot_room(&self) -> usize {
        self.slots.capacity()
    }

    /// Appends every series (the overflow series too) to `out`: their
    /// number, then each as a [`SavedEntry`].
    pub fn save(&self, out: &mut Vec<u8>) -> Result<(), DurableError>
    where
        V: serde::Serialize,
    {
        save_tables(&[self], out)
    }

    /// Reads back series written by [`Table::save`] from the front of
    /// `bytes`, into this (empty) table; returns the rest of `bytes` and
    /// (series restored, series discarded). A series `fits` refuses (its
    /// value or dimensions no longer match the configuration), or beyond
    /// the limit, is discarded. Restored series are marked changed, so
    /// the connector's next output carries them.
    pub fn load<'b>(
        &mut self,
        bytes: &'b [u8],
        fits: impl Fn(&V, usize) -> bool,
    ) -> Result<(&'b [u8], u64, u64), DurableError>
    where
        V: serde::de::DeserializeOwned,
    {
        load_tables(bytes, &mut [self], |_| 0, fits)
    }

    /// Adds a series read back by [`load_tables`] (its key not present).
    fn insert_loaded(&mut self, entry: Entry<V>, attributes: &[KeyValue], hash: u64) {
        let key = entry.key;
        let resource = self.resource_slot(attributes, hash);
        let last_ns = entry.last_ns;
        let entry = Entry {
            resource: Some(resource),
            ..entry
        };
        let slot = self.slots.len();
        self.slots.push(Some(entry));
        self.index
            .insert_unique(key[0], IndexEntry { key, slot }, |e| e.key[0]);
        self.dirty.push(slot);
        self.len += 1;
        self.last_ns = self.last_ns.max(last_ns);
    }

    fn release_resource(&mut self, slot: usize) {
        let Some(r) = self.resources[slot].as_mut() else {
            return;
        };
        r.series -= 1;
        if r.series == 0 {
            let hash = r.hash;
            self.resources[slot] = None;
            if let Ok(found) = self.resource_index.find_entry(hash, |&s| s == slot) {
                found.remove();
            }
            self.free_resources.push(slot);
        }
    }
}

/// Writes the series of every table (the shards of one connector) as
/// one [`Table::save`] would write them from a single table.
pub fn save_tables<V: serde::Serialize>(
    tables: &[&Table<V>],
    out: &mut Vec<u8>,
) -> Result<(), DurableError> {
    let entries: Vec<(&Table<V>, &Entry<V>)> = tables
        .iter()
        .flat_map(|t| {
            t.slots
                .iter()
                .flatten()
                .chain(t.overflow.as_ref())
                .map(move |e| (*t, e))
        })
        .collect();
    put(&(entries.len() as u64), out)?;
    let mut resource = Vec::new();
    for (table, entry) in entries {
        resource.clear();
        let overflow = entry.resource.is_none();
        if !overflow {
            prost::encoding::message::encode_repeated(
                1,
                table.resource(entry.resource),
                &mut resource,
            );
        }
        let saved = SavedEntry {
            overflow,
            resource: &resource,
            dims: entry.dims.iter().map(|d| d.as_deref()).collect(),
            value: &entry.value,
            start_ns: entry.start_ns,
            last_ns: entry.last_ns,
        };
        put(&saved, out)?;
    }
    Ok(())
}

/// Series read back from a snapshot by [`read_entries`], not yet in any
/// table: a component reads all of its snapshot first and takes the
/// series in only once the whole of it is readable ([`insert_entries`]),
/// so a snapshot that fails half-way leaves nothing behind.
pub struct ReadEntries<V> {
    entries: Vec<ReadEntry<V>>,
    /// Series that did not fit the configuration.
    discarded: u64,
}

/// One series of [`ReadEntries`].
struct ReadEntry<V> {
    entry: Entry<V>,
    overflow: bool,
    attributes: Vec<KeyValue>,
    hash: u64,
}

/// Reads what [`save_tables`] (or [`Table::save`]) wrote, keeping the
/// series that `fits` (given the value and its number of dimensions);
/// gives back the bytes after them.
pub fn read_entries<V>(
    bytes: &[u8],
    fits: impl Fn(&V, usize) -> bool,
) -> Result<(&[u8], ReadEntries<V>), DurableError>
where
    V: serde::de::DeserializeOwned,
{
    use prost::Message;
    let (count, mut rest): (u64, _) =
        postcard::take_from_bytes(bytes).map_err(DurableError::decode)?;
    let mut read = ReadEntries {
        entries: Vec::new(),
        discarded: 0,
    };
    for _ in 0..count {
        let (saved, tail): (SavedEntryOwned<V>, _) =
            postcard::take_from_bytes(rest).map_err(DurableError::decode)?;
        rest = tail;
        if !fits(&saved.value, saved.dims.len()) {
            read.discarded += 1;
            continue;
        }
        let (attributes, hash, key) = if saved.overflow {
            (Vec::new(), 0, [0; 2])
        } else {
            let Ok(resource) = crate::model::otlp::resource::Resource::decode(&saved.resource[..])
            else {
                return Err(DurableError::decode(
                    "a saved resource is not a protobuf Resource",
                ));
            };
            let attributes = resource.attributes;
            let hash = resource_hash(&attributes);
            let dims: Vec<Option<&str>> = saved.dims.iter().map(|d| d.as_deref()).collect();
            let key = series_key(hash, &dims);
            (attributes, hash, key)
        };
        read.entries.push(ReadEntry {
            entry: Entry {
                key,
                resource: None,
                dims: saved
                    .dims
                    .iter()
                    .map(|d| d.as_deref().map(Box::from))
                    .collect(),
                value: saved.value,
                start_ns: saved.start_ns,
                last_ns: saved.last_ns,
                dirty: true,
            },
            overflow: saved.overflow,
            attributes,
            hash,
        });
    }
    Ok((rest, read))
}

/// Puts series read by [`read_entries`] into the (empty) `tables`, each
/// into `tables[route(resource hash)]` and the overflow series into the
/// table that keeps it; returns (series restored, series discarded).
pub fn insert_entries<V, T>(
    read: ReadEntries<V>,
    tables: &mut [T],
    route: impl Fn(u64) -> usize,
) -> (u64, u64)
where
    T: std::ops::DerefMut<Target = Table<V>>,
{
    let (mut restored, mut discarded) = (0, read.discarded);
    if tables.is_empty() {
        return (0, discarded + read.entries.len() as u64);
    }
    let overflow_table = tables.iter().position(|t| t.holds_overflow).unwrap_or(0);
    let count = tables.len();
    for ReadEntry {
        entry,
        overflow,
        attributes,
        hash,
    } in read.entries
    {
        if overflow {
            let table = &mut tables[overflow_table];
            table.overflow = Some(entry);
            table.dirty.push(OVERFLOW);
            restored += 1;
            continue;
        }
        let table = &mut tables[route(hash) % count];
        if table.slot_of(entry.key).is_some() || !table.admit() {
            discarded += 1;
            continue;
        }
        table.insert_loaded(entry, &attributes, hash);
        restored += 1;
    }
    (restored, discarded)
}

/// [`read_entries`] then [`insert_entries`], for a snapshot of one table
/// set; gives back the bytes after it, series restored and discarded.
pub fn load_tables<'b, V, T>(
    bytes: &'b [u8],
    tables: &mut [T],
    route: impl Fn(u64) -> usize,
    fits: impl Fn(&V, usize) -> bool,
) -> Result<(&'b [u8], u64, u64), DurableError>
where
    V: serde::de::DeserializeOwned,
    T: std::ops::DerefMut<Target = Table<V>>,
{
    if tables.is_empty() {
        return Err(DurableError::decode("no table to load into"));
    }
    let (rest, read) = read_entries(bytes, fits)?;
    let (restored, discarded) = insert_entries(read, tables, route);
    Ok((rest, restored, discarded))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn kv(k: &str, v: &str) -> KeyValue {
        KeyValue {
            key: k.into(),
            value: Some(crate::model::otlp::common::AnyValue {
                value: Some(crate::model::otlp::common::any_value::Value::StringValue(
                    v.into(),
                )),
            }),
            ..Default::default()
        }
    }

    #[test]
    fn a_key_from_a_prefix_is_the_whole_key_and_values_stay_apart() {
        let dims = [
            Some("checkout"),
            Some("GET /"),
            None,
            Some("STATUS_CODE_UNSET"),
        ];
        for rh in [0, 7, u64::MAX] {
            let whole = series_key(rh, &dims);
            for split in 0..=dims.len() {
                let (first, rest) = dims.split_at(split);
                assert_eq!(KeyPrefix::new(rh, first).key(rest), whole, "split {split}");
            }
            assert_ne!(series_key(rh ^ 1, &dims), whole, "another resource");
        }
        // The same bytes spread over other values, or a value absent
        // rather than empty, are other series.
        let key = |d: &[Option<&str>]| series_key(1, d);
        assert_ne!(key(&[Some("ab"), Some("c")]), key(&[Some("a"), Some("bc")]));
        assert_ne!(key(&[None, Some("a")]), key(&[Some(""), Some("a")]));
    }

    /// A burst's series expire and take their room with them: the table
    /// shrinks to what is left, which keeps its values and resources and
    /// is found as before; new series still join, and share resources.
    /// Every `every`, a drain hands on every series, changed or not (the
    /// overflow series too); in between, only the changed ones.
    #[test]
    fn every_series_is_handed_on_again_every_refresh() {
        let mut t: Table<u64> = Table::new(2);
        let r = vec![kv("service.name", "svc")];
        for (i, dim) in ["a", "b", "c"].into_iter().enumerate() {
            t.upsert(
                &r,
                resource_hash(&r),
                &[Some(dim)],
                i as u64,
                || 0,
                |v| *v += 1,
            );
        }
        let drained = |t: &mut Table<u64>| {
            let mut n = 0;
            t.drain_dirty(|_, _| n += 1);
            n
        };
        let every = std::time::Duration::from_secs(15);
        t.mark_all_changed_every(20_000_000_000, every);
        assert_eq!(drained(&mut t), 3, "two series and the overflow");
        t.upsert(&r, resource_hash(&r), &[Some("a")], 4, || 0, |v| *v += 1);
        t.mark_all_changed_every(30_000_000_000, every);
        assert_eq!(drained(&mut t), 1, "10 s later: the changed one");
        t.mark_all_changed_every(35_000_000_000, every);
        assert_eq!(drained(&mut t), 3, "15 s later: all again");
        assert_eq!(drained(&mut t), 0);
    }

    #[test]
    fn expiry_of_most_series_gives_their_room_back() {
        let mut t: Table<u64> = Table::new(10_000);
        let resources: Vec<Vec<KeyValue>> = (0..10)
            .map(|i| vec![kv("service.name", &format!("svc-{i}"))])
            .collect();
        let name = |i: usize| format!("op-{i}");
        for i in 0..2_000 {
            let r = &resources[i % 10];
            let dim = name(i);
            t.upsert(
                r,
                resource_hash(r),
                &[Some(&dim)],
                1,
                || 0,
                |v| *v += i as u64,
            );
        }
        t.drain_dirty(|_, _| {});
        let room = t.slot_room();
        assert!(room >= 2_000);
        // Ten series (of resources 0 and 5) stay busy; the rest go quiet.
        let kept: Vec<usize> = (0..2_000)
            .filter(|i| i % 200 == 0 || i % 200 == 5)
            .collect();
        for &i in &kept {
            let r = &resources[i % 10];
            let dim = name(i);
            t.upsert(r, resource_hash(r), &[Some(&dim)], 5, || 0, |v| *v += 1);
        }
        // A table with undrained changes is left as it is.
        assert_eq!(t.expire(3), 2_000 - kept.len());
        assert_eq!(t.slot_room(), room, "changed series are named by slot");
        t.drain_dirty(|_, _| {});
        t.upsert(
            &resources[0],
            resource_hash(&resources[0]),
            &[Some("late")],
            4,
            || 0,
            |v| *v += 1,
        );
        t.drain_dirty(|_, _| {});
        assert_eq!(t.expire(5), 1, "the late series");
        assert!(t.slot_room() < 64, "room left: {}", t.slot_room());
        assert_eq!(t.len(), kept.len());
        assert_eq!(t.total_len(), kept.len());
        for &i in &kept {
            let r = &resources[i % 10];
            let dim = name(i);
            let found = t.find(series_key(resource_hash(r), &[Some(&dim)]));
            assert!(found.is_some(), "{dim}");
            assert_eq!(
                t.upsert(r, resource_hash(r), &[Some(&dim)], 7, || 0, |v| *v += 1),
                Upserted::Existing
            );
        }
        let mut seen = Vec::new();
        t.drain_dirty(|resource, e| {
            seen.push((resource.to_vec(), e.dims[0].clone(), e.value));
        });
        seen.sort_by(|a, b| a.1.cmp(&b.1));
        let mut want: Vec<_> = kept
            .iter()
            .map(|&i| {
                (
                    resources[i % 10].clone(),
                    Some(name(i).into_boxed_str()),
                    i as u64 + 2,
                )
            })
            .collect();
        want.sort_by(|a, b| a.1.cmp(&b.1));
        assert_eq!(seen, want);
        // New series join, sharing a resource that stayed.
        let r = &resources[5];
        assert_eq!(
            t.upsert(r, resource_hash(r), &[Some("new")], 8, || 0, |v| *v += 1),
            Upserted::New
        );
        let at = t
            .find(series_key(resource_hash(r), &[Some("new")]))
            .expect("new");
        let resource_of_new = t.slots[at.0].as_ref().and_then(|e| e.resource);
        let resource_of_kept = t
            .find(series_key(resource_hash(r), &[Some(name(5).as_str())]))
            .and_then(|f| t.slots[f.0].as_ref().and_then(|e| e.resource));
        assert_eq!(resource_of_new, resource_of_kept);
        assert_eq!(t.resource(resource_of_new), r.as_slice());
    }

    /// Values held for a series (and for the overflow series) are handed
    /// over with it at the next drain, in order, once; a series whose
    /// slot is reused after expiry starts with none.
    #[test]
    fn held_values_reach_their_series_at_the_drain() {
        let mut t: Table<u64> = Table::new(2);
        let r = vec![kv("service.name", "a")];
        let rh = resource_hash(&r);
        for d in ["x", "y", "z"] {
            t.upsert(&r, rh, &[Some(d)], 1, || 0, |v| *v += 1);
        }
        let x = t.find(series_key(rh, &[Some("x")])).expect("x");
        let y = t.find(series_key(rh, &[Some("y")])).expect("y");
        assert_eq!(t.find(series_key(rh, &[Some("z")])), None, "z overflowed");
        t.hold(y, 2.0);
        t.hold(x, 1.0);
        t.hold(Found::OVERFLOW, 9.0);
        t.hold(y, 3.0);
        let mut seen = Vec::new();
        t.drain_dirty_holding(|_, e, held| {
            let name = e.dims.first().cloned().flatten();
            seen.push((name, held.to_vec()));
        });
        seen.sort_by(|a, b| a.0.cmp(&b.0));
        assert_eq!(
            seen,
            vec![
                (None, vec![9.0]),
                (Some("x".into()), vec![1.0]),
                (Some("y".into()), vec![2.0, 3.0]),
            ]
        );
        assert_eq!(t.expire(2), 3, "x, y and the overflow series");
        t.upsert(&r, rh, &[Some("w")], 3, || 0, |v| *v += 1);
        let mut again = Vec::new();
        t.drain_dirty_holding(|_, _, held| again.push(held.len()));
        assert_eq!(again, vec![0], "nothing held twice or for a new series");
    }

    #[test]
    fn counts_limits_overflows_and_expires() {
        let mut t: Table<u64> = Table::new(2);
        let r = vec![kv("service.name", "a")];
        let rh = resource_hash(&r);
        assert_eq!(
            t.upsert(&r, rh, &[Some("x")], 1, || 0, |v| *v += 1),
            Upserted::New
        );
        assert_eq!(
            t.upsert(&r, rh, &[Some("x")], 2, || 0, |v| *v += 1),
            Upserted::Existing
        );
        assert_eq!(
            t.upsert(&r, rh, &[None], 2, || 0, |v| *v += 1),
            Upserted::New
        );
        assert_eq!(
            t.upsert(&r, rh, &[Some("y")], 3, || 0, |v| *v += 5),
            Upserted::Overflow
        );
        assert_eq!(
            t.upsert(&r, rh, &[Some("z")], 3, || 0, |v| *v += 5),
            Upserted::Overflow
        );
        let mut seen = Vec::new();
        t.drain_dirty(|res, e| seen.push((res.len(), e.dims.clone(), e.value)));
        seen.sort_by_key(|s| s.2);
        assert_eq!(seen.len(), 3);
        assert_eq!(
            seen[2],
            (0, vec![], 10),
            "overflow has no resource, sums both"
        );
        assert!(seen.contains(&(1, vec![Some("x".into())], 2)));
        let mut again = 0;
        t.drain_dirty(|_, _| again += 1);
        assert_eq!(again, 0, "clean after drain");
        assert_eq!(t.expire(3), 2, "x (last 2) and None (last 2)");
        assert_eq!(t.len(), 0);
        assert_eq!(
            t.upsert(&r, rh, &[Some("w")], 4, || 0, |v| *v += 1),
            Upserted::New
        );
        assert_eq!(t.expire(4), 1, "only the overflow series (last 3)");
        assert_eq!(t.len(), 1);
    }

    #[test]
    fn saved_series_load_back_with_their_times_and_overflow() {
        let mut t: Table<u64> = Table::new(2);
        let a = vec![kv("service.name", "a")];
        let b = vec![kv("service.name", "b")];
        t.upsert(&a, resource_hash(&a), &[Some("x")], 10, || 0, |v| *v += 5);
        t.upsert(&b, resource_hash(&b), &[None], 11, || 0, |v| *v += 7);
        t.upsert(&b, resource_hash(&b), &[Some("y")], 12, || 0, |v| *v += 9);
        let mut out = Vec::new();
        t.save(&mut out).expect("save");
        out.extend_from_slice(b"tail");

        let mut back: Table<u64> = Table::new(2);
        let (rest, restored, discarded) = back.load(&out, |_, _| true).expect("load");
        assert_eq!((rest, restored, discarded), (&b"tail"[..], 3, 0));
        let mut seen = Vec::new();
        back.drain_dirty(|resource, e| {
            seen.push((
                resource.to_vec(),
                e.dims.clone(),
                e.value,
                e.start_ns,
                e.last_ns,
            ))
        });
        seen.sort_by_key(|s| s.2);
        assert_eq!(seen.len(), 3, "restored series are emitted");
        assert_eq!(seen[0], (a.clone(), vec![Some("x".into())], 5, 10, 10));
        assert_eq!(seen[1], (b.clone(), vec![None], 7, 11, 11));
        assert_eq!(seen[2].2, 9, "the overflow series");
        assert!(seen[2].0.is_empty());
        // The same series found again by key, not duplicated.
        assert_eq!(
            back.upsert(&a, resource_hash(&a), &[Some("x")], 20, || 0, |v| *v += 1),
            Upserted::Existing
        );
        // A refused layout is discarded.
        let mut strict: Table<u64> = Table::new(2);
        let (_, restored, discarded) = strict.load(&out, |v, _| *v != 7).expect("load");
        assert_eq!((restored, discarded), (2, 1));
        assert!(
            Table::<u64>::new(2)
                .load(&[0x05, 0x01], |_, _| true)
                .is_err()
        );
    }
}
