//! The series store behind `/metrics`: metric families keyed by their
//! Prometheus name, each holding its series keyed by a canonical label
//! block.
//!
//! A series' identity is the hash of its family name and sorted labels,
//! computed once per point from the label text built in a reused buffer;
//! a lookup allocates nothing, and a new series stores its label block
//! already escaped for the exposition format, so rendering is a copy.
//!
//! Locking: the family map is a read-mostly `RwLock`; each family splits
//! its series into shards by `job` and `instance`, each with its own
//! `Mutex`, taken once per metric of a request (not per point), so two
//! instances' requests into one family rarely meet (see `family.rs`).
//!
//! History: series asked for by `/api/v1/series/history` are *watched*
//! (`watch.rs`): their ring sits in their family's table and each update
//! of a watched series appends to it under the shard lock it already
//! holds. The watch list (bounded, least recently requested evicted) has
//! its own lock, taken only by history requests and always before any
//! shard lock, so it never meets the ingest path.

mod durable;
mod family;
mod labels;
pub mod overflow;
mod read_ahead;
mod shared;
pub mod value;
mod watch;

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use parking_lot::{Mutex, RwLock, RwLockReadGuard};

pub use family::{
    Family, FamilyKind, FamilyMeta, RawKey, SHARDS, SeriesTable, SeriesView, StoredSeries,
};
pub use labels::{LabelSet, LabelSource, escape_value_into, parse_label_block, route_hash};
pub use overflow::{Folded, OVERFLOW_LABEL, SeriesLimits};
pub use shared::LabelText;
pub use value::{Applied, SeriesState, SeriesValue, Temporality};
pub use watch::{Lru, Watch, WatchKey, WatchLimits};

use crate::pipeline::query::HistoryPoint;

use crate::telemetry::Telemetry;

/// Why a metric's points could not be stored.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum StoreError {
    #[error(
        "metric `{name}` is a {incoming} here but already a {existing}; its points were dropped"
    )]
    TypeConflict {
        name: String,
        existing: &'static str,
        incoming: &'static str,
    },
    #[error("metric `{name}` would collide with StreamGate's own series; rename it")]
    Reserved { name: String },
    #[error(
        "metric `{name}` ({incoming}) would write series named like those of {existing} `{other}` (such as `{sample}`); its points were dropped: rename one of them"
    )]
    NameClash {
        name: String,
        incoming: &'static str,
        other: String,
        existing: &'static str,
        sample: String,
    },
}

/// All series, by family. Shared as `Arc<SeriesStore>`.
pub struct SeriesStore {
    families: RwLock<HashMap<Box<str>, Arc<Family>>>,
    reserved: Vec<&'static str>,
    epoch: Instant,
    telemetry: Arc<Telemetry>,
    watches: Mutex<watch::Watchlist>,
}

/// The recorded points of a watched series.
#[derive(Debug, Clone, PartialEq)]
pub struct Watched {
    pub kind: FamilyKind,
    pub capacity: usize,
    /// Oldest first.
    pub points: Vec<HistoryPoint>,
}

impl SeriesStore {
    /// `reserved` are family names no received metric may take (our own).
    pub fn new(telemetry: Arc<Telemetry>, reserved: Vec<&'static str>) -> Self {
        Self {
            families: RwLock::new(HashMap::new()),
            reserved,
            epoch: Instant::now(),
            telemetry,
            watches: Mutex::new(watch::Watchlist::default()),
        }
    }

    /// Sets how many series may be watched and how many points a new ring
    /// keeps; rings over the new series limit are dropped.
    pub fn set_watch_limits(&self, limits: WatchLimits) {
        let mut watches = self.watches.lock();
        watches.limits = limits;
        for key in watches.lru.set_max(limits.max_series) {
            self.unwatch(&key);
        }
    }

    /// The family `name`, if it exists.
    pub fn family(&self, name: &str) -> Option<Arc<Family>> {
        self.families.read().get(name).cloned()
    }

    /// The history of the series `name{labels}`, watching it from now on
    /// if it was not (its ring then holds its current value). `None` if
    /// there is no such series.
    pub fn watch(&self, name: &str, labels: &LabelSet) -> Option<Watched> {
        let mut watches = self.watches.lock();
        let family = self.family(name)?;
        let watched = {
            let mut table = family.shard_for(labels).lock();
            let ring = table.watch(labels, watches.limits.points)?;
            Watched {
                kind: family.kind(),
                capacity: ring.capacity(),
                points: ring.points(),
            }
        };
        let key = WatchKey {
            family: name.into(),
            hash: labels.hash(),
            route: labels.route(),
            labels: labels.text().into(),
        };
        if let Some(evicted) = watches.lru.touch(key) {
            self.unwatch(&evicted);
        }
        Some(watched)
    }

    /// Number of watched series.
    pub fn watched_count(&self) -> usize {
        self.watches.lock().lru.len()
    }

    /// Drops the ring of `key` (a shard lock; the watch-list lock is held
    /// by the caller).
    fn unwatch(&self, key: &WatchKey) {
        if let Some(family) = self.family(&key.family) {
            family
                .shard(Family::shard_index(key.route))
                .lock()
                .unwatch(key.hash, &key.labels);
        }
    }

    pub fn telemetry(&self) -> &Telemetry {
        &self.telemetry
    }

    /// Seconds since the store was created: the coarse clock series expire on.
    pub fn now_tick(&self) -> u32 {
        self.epoch.elapsed().as_secs() as u32
    }

    /// Runs `update` on the family `name` of kind `kind`, creating it if
    /// needed. The family map stays read-locked while `update` runs, so an
    /// expiry sweep cannot remove the family under it.
    pub fn with_family<R>(
        &self,
        meta: FamilyMeta<'_>,
        update: impl FnOnce(&Family) -> R,
    ) -> Result<R, StoreError> {
        let map = self.families.read();
        if let Some(family) = map.get(meta.name) {
            family.check_kind(meta.name, meta.kind)?;
            family.refresh_meta(&meta);
            return Ok(update(family));
        }
        drop(map);
        let exposed = openmetrics_family(meta.name, meta.kind);
        if self
            .reserved
            .iter()
            .any(|r| *r == meta.name || r.strip_suffix("_total").unwrap_or(r) == exposed)
        {
            return Err(StoreError::Reserved {
                name: meta.name.to_string(),
            });
        }
        let mut map = self.families.write();
        if !map.contains_key(meta.name) {
            if let Some(clash) = name_clash(&map, meta.name, meta.kind) {
                return Err(clash);
            }
            map.insert(meta.name.into(), Arc::new(Family::new(&meta)));
        }
        let map = parking_lot::RwLockWriteGuard::downgrade(map);
        let family = map
            .get(meta.name)
            .expect("family inserted under the write lock");
        family.check_kind(meta.name, meta.kind)?;
        family.refresh_meta(&meta);
        Ok(update(family))
    }

    /// How many families there are.
    pub fn family_count(&self) -> usize {
        self.families.read().len()
    }

    /// The families, sorted by name, for rendering.
    pub fn families_sorted(&self) -> Vec<Arc<Family>> {
        let map: RwLockReadGuard<'_, _> = self.families.read();
        let mut families: Vec<Arc<Family>> = map.values().cloned().collect();
        drop(map);
        families.sort_by(|a, b| a.name().cmp(b.name()));
        families
    }

    /// Removes series not updated for `ttl_secs`, and families left empty.
    /// Returns how many series expired.
    pub fn expire(&self, ttl_secs: u32) -> u64 {
        let now = self.now_tick();
        let mut expired = 0;
        let mut emptied = false;
        for family in self.families_sorted() {
            let (removed, left) = family.expire_older_than(now.saturating_sub(ttl_secs));
            expired += removed;
            emptied |= left == 0;
        }
        if emptied {
            let mut map = self.families.write();
            map.retain(|_, family| family.series_count() > 0);
        }
        if expired > 0 {
            self.telemetry.series_expired(expired);
        }
        expired
    }

    /// Number of series over all families.
    pub fn series_count(&self) -> usize {
        self.families
            .read()
            .values()
            .map(|f| f.series_count())
            .sum()
    }
}

/// The family name OpenMetrics uses: counters drop `_total`.
pub fn openmetrics_family(name: &str, kind: FamilyKind) -> &str {
    match kind {
        FamilyKind::Counter => name.strip_suffix("_total").unwrap_or(name),
        _ => name,
    }
}

/// Every name a family of `kind` called `name` puts on `/metrics` in
/// either format: its `# TYPE` names and its samples' names.
fn exposed_names(name: &str, kind: FamilyKind) -> Vec<String> {
    let family = openmetrics_family(name, kind);
    let with = |suffix: &str| format!("{name}{suffix}");
    match kind {
        FamilyKind::Gauge | FamilyKind::Unknown => vec![name.into()],
        FamilyKind::Counter => vec![
            name.into(),
            family.into(),
            format!("{family}_total"),
            format!("{family}_created"),
        ],
        FamilyKind::Histogram => vec![
            name.into(),
            with("_bucket"),
            with("_count"),
            with("_sum"),
            with("_created"),
        ],
        FamilyKind::Summary => vec![name.into(), with("_count"), with("_sum"), with("_created")],
    }
}

/// Suffixes a family adds to its name (or, for a counter's OpenMetrics
/// family, drops from it).
const FAMILY_SUFFIXES: [&str; 5] = ["_bucket", "_count", "_sum", "_created", "_total"];

/// The error for a new family `name` of `kind` if a family in `map`
/// (under another name) would put a line of the same name on `/metrics`:
/// a histogram `x` and a gauge `x_count`, a counter `x_total` and a gauge
/// `x` (its OpenMetrics family) or `x_created`. The exposition would hold
/// one name twice, which Prometheus refuses or keeps only one of.
fn name_clash(
    map: &HashMap<Box<str>, Arc<Family>>,
    name: &str,
    kind: FamilyKind,
) -> Option<StoreError> {
    let mine = exposed_names(name, kind);
    for written in &mine {
        // The families that could write `written`: named it, or it less
        // (or plus) a suffix a family adds.
        let mut candidates = vec![written.clone(), format!("{written}_total")];
        for suffix in FAMILY_SUFFIXES {
            if let Some(stem) = written.strip_suffix(suffix) {
                candidates.push(stem.to_string());
                candidates.push(format!("{stem}_total"));
            }
        }
        for candidate in candidates {
            let Some(other) = map.get(candidate.as_str()).filter(|_| candidate != name) else {
                continue;
            };
            let theirs = exposed_names(&candidate, other.kind());
            if let Some(sample) = mine.iter().find(|n| theirs.contains(n)) {
                return Some(StoreError::NameClash {
                    name: name.to_string(),
                    incoming: kind.as_str(),
                    other: candidate,
                    existing: other.kind().as_str(),
                    sample: sample.clone(),
                });
            }
        }
    }
    None
}

#[cfg(test)]
mod tests;
