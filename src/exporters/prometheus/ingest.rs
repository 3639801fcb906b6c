//! Applying a decoded OTLP metrics request to the series store: resource
//! labels (`job`, `instance`, `target_info`), scope labels, then each
//! point of each metric under the lock of its family's shard.
//!
//! A family's shard is chosen by a series' `job` and `instance` (see
//! `store/family.rs`). When the scope gives both, every point of the
//! scope goes to one shard, chosen once. When it lacks one, a point whose
//! attributes supply it (an attribute `instance`, say) may belong to
//! another shard: it is put aside and written after the scope's shard is
//! let go, as are points bound for the overflow series, so a writer never
//! holds two shards.

use std::fmt::Write;
use std::hash::{BuildHasher, Hasher};

use crate::model::MetricsBatch;
use crate::model::otlp::metrics::DataPointFlags;
use crate::model::text::write_any_view;
use crate::model::wire::metrics::{
    ExponentialPointView, HistogramPointView, NumberPointView, SummaryPointView,
};
use crate::model::wire::{
    Attributes, KeyValueView, MetricData, MetricView, ResourceView, ScopeView,
};
use crate::pipeline::Consumed;
use crate::pipeline::derived::LabelBlock;

use super::config::PrometheusExporterConfig;
use super::exemplar::{latest_exemplar, stored_exemplar};
use super::store::value::{
    Buckets, EXPONENTIAL_SCALES, ExponentialHistogram, HistogramPoint, Summary,
    exponential_index_limit,
};
use super::store::{
    Applied, Family, FamilyKind, FamilyMeta, Folded, LabelSet, LabelSource, OVERFLOW_LABEL, RawKey,
    SeriesLimits, SeriesState, SeriesStore, SeriesTable, SeriesValue, StoreError, Temporality,
    escape_value_into, openmetrics_family, route_hash,
};
use super::translate::{MetricShape, metric_name, sanitize_label_into, unit_word};

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
pub const TARGET_INFO: &str = "target_info";

const DELTA: i32 = 1;
const CUMULATIVE: i32 = 2;

/// Labels shared by every point under one scope: `job`, `instance`,
/// `otel_scope_*`, as (name, value) pairs already valid, and a hash of
/// them that seeds the points' raw keys.
#[derive(Default)]
struct SharedLabels {
    pairs: Vec<(String, String)>,
    hash: u64,
    /// The shard of the scope's points (unless a point's attributes supply
    /// a `job` or `instance` the scope lacks).
    home: usize,
    /// Whether the scope lacks `job`, and `instance`: a point's attribute
    /// may then give it, and with it another shard.
    open: [bool; 2],
}

/// The labels a series' shard is chosen by, in `SharedLabels::open` order.
const ROUTE_LABELS: [&str; 2] = ["job", "instance"];

impl SharedLabels {
    /// Whether an attribute key names a label the shard is chosen by and
    /// the scope does not set (it then decides the point's shard). Keys
    /// that do not contain the label's name are told apart without
    /// sanitising them.
    fn routes_by(&self, key: &str, scratch: &mut String) -> bool {
        ROUTE_LABELS.iter().zip(self.open).any(|(label, open)| {
            open && key.contains(label) && {
                scratch.clear();
                sanitize_label_into(key, scratch);
                scratch == label
            }
        })
    }
}

/// Two independent seeds make the 128-bit raw key.
const RAW_SEEDS: [foldhash::fast::FixedState; 2] = [
    foldhash::fast::FixedState::with_seed(0x243f_6a88_85a3_08d3),
    foldhash::fast::FixedState::with_seed(0x1319_8a2e_0370_7344),
];

/// Counts what one request did, for partial success and self-metrics.
#[derive(Default)]
struct Tally {
    rejected: u64,
    messages: Vec<String>,
    out_of_order: u64,
}

impl Tally {
    fn reject(&mut self, points: u64, message: String) {
        self.rejected += points;
        if self.messages.len() < 5 && !self.messages.contains(&message) {
            self.messages.push(message);
        }
    }
}

/// Applies requests to a store. Holds reusable buffers; one per worker.
pub struct Ingester<'a> {
    store: &'a SeriesStore,
    config: &'a PrometheusExporterConfig,
    buffers: Buffers,
    now: u32,
}

/// Reused per point: the label set and the decoded bucket lists.
#[derive(Default)]
struct Buffers {
    labels: LabelSet,
    /// `otel_metric_overflow="true"`, built on first use.
    overflow: LabelSet,
    scratch: String,
    counts: Vec<u64>,
    bounds: Vec<f64>,
}

impl<'a> Ingester<'a> {
    /// `reserved`: a label the exposition adds to every sample
    /// (`collector_instance`), which attributes may not set.
    pub fn new(
        store: &'a SeriesStore,
        config: &'a PrometheusExporterConfig,
        reserved: Option<&'static str>,
    ) -> Self {
        let mut buffers = Buffers::default();
        buffers.labels.reserve(reserved);
        Self {
            store,
            config,
            buffers,
            now: store.now_tick(),
        }
    }

    /// Applies every point of the request. Rejected points are counted and
    /// explained in the result; nothing else is lost.
    pub fn ingest(&mut self, batch: &MetricsBatch) -> Consumed {
        self.now = self.store.now_tick();
        let mut tally = Tally::default();
        // Number points with their raw keys, one metric at a time (reused).
        let mut keyed = Vec::new();
        for resource_metrics in batch.view().resource_metrics.iter() {
            let resource = resource_metrics.resource.as_ref();
            let identity = ResourceIdentity::of(resource);
            if self.config.target_info {
                self.write_target_info(resource, &identity, &mut tally);
            }
            for scope_metrics in resource_metrics.scope_metrics.iter() {
                let shared = shared_labels(
                    &identity,
                    scope_metrics.scope.as_ref(),
                    scope_metrics.schema_url,
                );
                // A metric whose family another request holds is put off
                // until the scope's other metrics are in, with its points
                // keyed already, so two requests into the same families
                // rarely wait for each other; the put-off ones are tried
                // once more before waiting.
                let mut busy = Vec::new();
                for metric in scope_metrics.metrics.iter() {
                    keyed.clear();
                    if !self.ingest_metric(&metric, &shared, &mut tally, false, &mut keyed) {
                        busy.push((metric, std::mem::take(&mut keyed)));
                    }
                }
                for wait in [false, true] {
                    busy.retain_mut(|(metric, keyed)| {
                        !self.ingest_metric(metric, &shared, &mut tally, wait, keyed)
                    });
                }
            }
        }
        if tally.out_of_order > 0 {
            self.store
                .telemetry()
                .record_out_of_order(tally.out_of_order);
        }
        if tally.rejected == 0 && tally.messages.is_empty() {
            Consumed::all()
        } else {
            // With nothing rejected, the messages are warnings (a
            // `target_info` left out): OTLP's partial success with 0
            // rejected and a message.
            Consumed::rejected(tally.rejected, tally.messages.join("; "))
        }
    }

    fn write_target_info(
        &mut self,
        resource: Option<&ResourceView<'_>>,
        identity: &ResourceIdentity,
        tally: &mut Tally,
    ) {
        let Some(resource) = resource else { return };
        let others = || {
            resource
                .attributes
                .iter()
                .filter(|kv| !is_identifying(kv.key))
        };
        if others().next().is_none() || (identity.job.is_none() && identity.instance.is_none()) {
            return;
        }
        let name = target_info_name(&self.config.namespace);
        let meta = FamilyMeta {
            name: &name,
            kind: FamilyKind::Gauge,
            help: "Target metadata",
            unit: "",
        };
        let labels = &mut self.buffers.labels;
        labels.clear();
        for kv in others() {
            push_attribute(labels, &kv);
        }
        identity.push(labels);
        labels.finish();
        let labels = &*labels;
        // The limits that keep a scrape within Prometheus's `label_limit`
        // and remote storage's limits hold for `target_info` too: over
        // them, it is left out (the resource's points are still stored).
        let limits = (
            self.config.max_labels_per_series,
            self.config.max_label_value_length,
        );
        if let Some(why) = label_limit_error(labels, limits, 0) {
            tally.reject(
                0,
                format!("`{name}` of this resource was not written: {why}; its points were kept"),
            );
            return;
        }
        let now = self.now;
        let identifying = identity.pairs();
        let result = self.store.with_family(meta, |family| {
            // (Same job and instance: the same shard.)
            let mut series = family.shard_for(labels).lock();
            let (_, new) = series.upsert(
                labels,
                SeriesState::new(SeriesValue::Number(1.0), 0, 0),
                Temporality::Cumulative,
                now,
            );
            // One `target_info` per job and instance (so `* on (job,
            // instance) group_left target_info` joins): a resource whose
            // other attributes changed replaces the one before.
            let replaced = if new {
                let mine = labels.text();
                series.remove_where(|text| {
                    text != mine && identifying.iter().all(|pair| has_label_pair(text, pair))
                })
            } else {
                0
            };
            (new, replaced)
        });
        match result {
            Ok((new, replaced)) => {
                let telemetry = self.store.telemetry();
                if new {
                    telemetry.series_added(1);
                }
                if replaced > 0 {
                    telemetry.series_removed(replaced);
                }
            }
            Err(e) => tally.reject(0, e.to_string()),
        }
    }

    /// Applies one metric's points. Without `wait`, returns `false` (and
    /// changes nothing but `keyed`) when its family's table is locked by
    /// another request; otherwise `true`. `keyed` is the metric's number
    /// points with their raw keys: filled here when empty, and kept for
    /// a retry.
    fn ingest_metric<'b>(
        &mut self,
        metric: &MetricView<'b>,
        shared: &SharedLabels,
        tally: &mut Tally,
        wait: bool,
        keyed: &mut Vec<(RawKey, NumberPointView<'b>)>,
    ) -> bool {
        let Some(data) = &metric.data else {
            // No points, so none rejected: the message is a warning (the
            // OTLP spec's partial success with a count of 0).
            tally.reject(
                0,
                format!(
                    "metric `{}` has no data (gauge, sum, histogram, exponential histogram or summary)",
                    metric.name
                ),
            );
            return true;
        };
        let (shape, kind, temporality) = match *data {
            MetricData::Gauge(_) if says_unknown(&metric.metadata) => {
                (MetricShape::Gauge, FamilyKind::Unknown, CUMULATIVE)
            }
            MetricData::Gauge(_) => (MetricShape::Gauge, FamilyKind::Gauge, CUMULATIVE),
            MetricData::Sum {
                monotonic: true,
                temporality,
                ..
            } => (MetricShape::MonotonicSum, FamilyKind::Counter, temporality),
            MetricData::Sum { temporality, .. } => {
                (MetricShape::NonMonotonicSum, FamilyKind::Gauge, temporality)
            }
            MetricData::Histogram { temporality, .. }
            | MetricData::Exponential { temporality, .. } => {
                (MetricShape::Histogram, FamilyKind::Histogram, temporality)
            }
            MetricData::Summary(_) => (MetricShape::Summary, FamilyKind::Summary, CUMULATIVE),
        };
        if data.has_no_points() {
            return true;
        }
        // Counted only for a rejection: it is a walk over the metric.
        let points = || data.point_count() as u64;
        let Some(name) = metric_name(
            metric.name,
            metric.unit,
            shape,
            &self.config.namespace,
            self.config.add_metric_suffixes,
        ) else {
            tally.reject(
                points(),
                format!(
                    "metric name `{}` has no character usable in a Prometheus name",
                    metric.name
                ),
            );
            return true;
        };
        // `target_info` is the resource's, written by the translation: a
        // metric of that name would overwrite its 1 (or clash with it).
        if self.config.target_info
            && is_target_info(openmetrics_family(&name, kind), &self.config.namespace)
        {
            tally.reject(
                points(),
                StoreError::Reserved {
                    name: metric.name.to_string(),
                }
                .to_string(),
            );
            return true;
        }
        let temporality = match temporality {
            DELTA => Temporality::Delta,
            CUMULATIVE => Temporality::Cumulative,
            _ => {
                tally.reject(
                    points(),
                    format!(
                        "metric `{}` has unspecified aggregation temporality",
                        metric.name
                    ),
                );
                return true;
            }
        };
        let unit = unit_word(metric.unit);
        let meta = FamilyMeta {
            name: &name,
            kind,
            help: metric.description,
            unit: &unit,
        };
        let now = self.now;
        let limits = self.config.series_limits();
        let global = usize::try_from(self.store.telemetry().active_series()).unwrap_or(0);
        // Number points are read and keyed before the shard lock: the
        // hashing is off the lock, and under it the table is probed for
        // every key back to back (see `SeriesTable::touch`), so the
        // probes' cache misses overlap instead of following each other.
        if let MetricData::Gauge(p) | MetricData::Sum { points: p, .. } = data
            && keyed.is_empty()
        {
            keyed.extend(p.iter().map(|point| {
                (
                    raw_key(shared.hash, &point.attributes, point.attribute_bytes),
                    point,
                )
            }));
        }
        let keyed = &*keyed;
        let context = MetricContext {
            shared,
            temporality,
            kind,
            limits,
            label_limits: (
                self.config.max_labels_per_series,
                self.config.max_label_value_length,
            ),
            global,
            now,
            metric_name: metric.name,
            exposition_label: match kind {
                FamilyKind::Histogram => Some("le"),
                FamilyKind::Summary => Some("quantile"),
                _ => None,
            },
        };
        let buffers = &mut self.buffers;
        let result = self.store.with_family(meta, |family| {
            if temporality == Temporality::Delta {
                family.mark_accumulating();
            }
            let home = family.shard(shared.home);
            let mut series = if wait { home.lock() } else { home.try_lock()? };
            let mut outcome = Outcome::default();
            PointWriter::new(
                &mut series,
                shared.home,
                None,
                &context,
                buffers,
                tally,
                &mut outcome,
            )
            .write_all(data, keyed);
            drop(series);
            // Points another shard holds, one shard at a time.
            let mut elsewhere = std::mem::take(&mut outcome.elsewhere);
            elsewhere.sort_unstable();
            for group in elsewhere.chunk_by(|a, b| a.0 == b.0) {
                let shard = group[0].0;
                let indices: Vec<usize> = group.iter().map(|(_, i)| *i).collect();
                let mut series = family.shard(shard).lock();
                let only = Some(indices.as_slice());
                PointWriter::new(
                    &mut series,
                    shard,
                    only,
                    &context,
                    buffers,
                    tally,
                    &mut outcome,
                )
                .write_all(data, keyed);
            }
            // Points beyond a series limit, into the overflow series.
            let overflowing = std::mem::take(&mut outcome.overflowing);
            if !overflowing.is_empty() {
                let shard = Family::shard_index(overflow_labels(buffers).route());
                let mut series = family.shard(shard).lock();
                let mut writer = PointWriter::new(
                    &mut series,
                    shard,
                    None,
                    &context,
                    buffers,
                    tally,
                    &mut outcome,
                );
                for (key, state) in overflowing {
                    writer.overflow(key, state);
                }
            }
            Some((outcome.added, outcome.removed, outcome.overflowed))
        });
        match result {
            Ok(None) => return false,
            Ok(Some((added, removed, overflowed))) => {
                let telemetry = self.store.telemetry();
                if overflowed > 0 {
                    telemetry.record_exporter_overflow(overflowed);
                }
                if added > 0 {
                    telemetry.series_added(added);
                }
                if removed > 0 {
                    telemetry.series_removed(removed);
                }
            }
            Err(e) => tally.reject(points(), e.to_string()),
        }
        true
    }
}

/// The raw key of a point: its attribute bytes as sent, seeded with the
/// hash of the scope's shared labels. `contiguous` is the encoded
/// attributes when they are one run (hashed in one go); otherwise each is
/// hashed with its length. Two layouts of one attribute set may get two
/// keys: both lead to the same series (the second through the labels
/// index).
fn raw_key(shared_hash: u64, attributes: &Attributes<'_>, contiguous: Option<&[u8]>) -> RawKey {
    let mut hashers = RAW_SEEDS.map(|seed| seed.build_hasher());
    for hasher in &mut hashers {
        hasher.write_u64(shared_hash);
    }
    if let Some(bytes) = contiguous {
        for hasher in &mut hashers {
            hasher.write(bytes);
        }
        return RawKey(hashers.map(|h| h.finish()));
    }
    for bytes in attributes.raw().flatten() {
        for hasher in &mut hashers {
            hasher.write_usize(bytes.len());
            hasher.write(bytes);
        }
    }
    RawKey(hashers.map(|h| h.finish()))
}

/// What stays the same for every point of one metric.
struct MetricContext<'s> {
    shared: &'s SharedLabels,
    temporality: Temporality,
    kind: FamilyKind,
    limits: SeriesLimits,
    /// Most labels and longest label value of a new series.
    label_limits: (usize, usize),
    /// Series in the store when this metric's points began.
    global: usize,
    now: u32,
    metric_name: &'s str,
    /// The label the exposition adds to this kind (`le`, `quantile`).
    exposition_label: Option<&'static str>,
}

/// What writing one metric's points did, over all the shards it took.
#[derive(Default)]
struct Outcome {
    added: u64,
    removed: u64,
    /// Points folded into the overflow series.
    overflowed: u64,
    /// (shard, point index) of points another shard holds.
    elsewhere: Vec<(usize, usize)>,
    /// Points of new series beyond a limit, when the overflow series is
    /// in another shard than the one held.
    overflowing: Vec<(RawKey, SeriesState)>,
}

/// Writes the points of one metric into one shard of its family.
struct PointWriter<'s> {
    series: &'s mut SeriesTable,
    /// The index of the shard held.
    shard: usize,
    /// The indices (ascending) of the points to write, all of this shard;
    /// `None`: every point, those of other shards put aside.
    only: Option<&'s [usize]>,
    /// The index of the point being written.
    at: usize,
    context: &'s MetricContext<'s>,
    buffers: &'s mut Buffers,
    tally: &'s mut Tally,
    outcome: &'s mut Outcome,
}

/// `otel_metric_overflow="true"`, built on first use.
fn overflow_labels(buffers: &mut Buffers) -> &LabelSet {
    let labels = &mut buffers.overflow;
    if labels.is_empty() {
        labels.push_str(OVERFLOW_LABEL, "true", LabelSource::Attribute);
        labels.finish();
    }
    labels
}

impl<'s> PointWriter<'s> {
    /// A writer into `series`, the shard at `shard`, of every point (or
    /// those at `only`).
    fn new(
        series: &'s mut SeriesTable,
        shard: usize,
        only: Option<&'s [usize]>,
        context: &'s MetricContext<'s>,
        buffers: &'s mut Buffers,
        tally: &'s mut Tally,
        outcome: &'s mut Outcome,
    ) -> Self {
        Self {
            series,
            shard,
            only,
            at: 0,
            context,
            buffers,
            tally,
            outcome,
        }
    }
}

impl PointWriter<'_> {
    /// Writes the metric's points (those of [`only`](Self::only) when set).
    fn write_all<'b>(&mut self, data: &MetricData<'b>, keyed: &[(RawKey, NumberPointView<'b>)]) {
        let only = self.only;
        let wanted = |i: usize| only.is_none_or(|only| only.binary_search(&i).is_ok());
        match data {
            MetricData::Gauge(_) | MetricData::Sum { .. } => {
                for (key, _) in keyed {
                    self.series.touch(*key);
                }
                for (at, (key, point)) in keyed.iter().enumerate().filter(|(i, _)| wanted(*i)) {
                    self.at = at;
                    self.number(point, *key);
                }
            }
            MetricData::Histogram { points, .. } => {
                for (at, point) in points.iter().enumerate().filter(|(i, _)| wanted(*i)) {
                    self.at = at;
                    self.histogram(&point);
                }
            }
            MetricData::Exponential { points, .. } => {
                for (at, point) in points.iter().enumerate().filter(|(i, _)| wanted(*i)) {
                    self.at = at;
                    self.exponential(&point);
                }
            }
            MetricData::Summary(points) => {
                for (at, point) in points.iter().enumerate().filter(|(i, _)| wanted(*i)) {
                    self.at = at;
                    self.summary(&point);
                }
            }
        }
    }

    /// Whether the point being written belongs to the shard held; if not,
    /// it is put aside for its own shard.
    fn is_here(&mut self, attributes: &Attributes<'_>) -> bool {
        if self.only.is_some() {
            return true;
        }
        let shared = self.context.shared;
        if shared.open == [false, false] {
            return true;
        }
        let scratch = &mut self.buffers.scratch;
        if !attributes
            .iter()
            .any(|kv| shared.routes_by(kv.key, scratch))
        {
            return true;
        }
        self.build_labels(attributes);
        let shard = Family::shard_index(self.buffers.labels.route());
        if shard == self.shard {
            return true;
        }
        self.outcome.elsewhere.push((shard, self.at));
        false
    }

    /// Builds the label set of a point into the buffers.
    fn build_labels(&mut self, attributes: &Attributes<'_>) {
        fill_labels(
            &mut self.buffers.labels,
            attributes,
            self.context.shared,
            self.context.exposition_label,
        );
    }

    /// Applies a point to its series: `update` for an existing one (found
    /// by raw key when known), `create` for a new one. A point flagged "no
    /// recorded value" removes the series instead.
    fn write(
        &mut self,
        attributes: &Attributes<'_>,
        key: RawKey,
        flags: u32,
        create: impl FnOnce() -> SeriesState,
        update: impl FnOnce(&mut SeriesState) -> Applied,
    ) {
        if !self.is_here(attributes) {
            return;
        }
        if flags & DataPointFlags::NoRecordedValueMask as u32 != 0 {
            self.build_labels(attributes);
            if self.series.remove(&self.buffers.labels) {
                self.outcome.removed += 1;
            }
            return;
        }
        let mut update = Some(update);
        if let Some(applied) = self.series.update_raw(key, self.context.now, &mut update) {
            return self.count(applied, false);
        }
        let Some(update) = update else { return };
        self.build_labels(attributes);
        if let Some(why) = label_limit_error(&self.buffers.labels, self.context.label_limits, 0) {
            return self.reject(&why);
        }
        let labels = &self.buffers.labels;
        let total = self
            .context
            .global
            .saturating_add(self.outcome.added as usize);
        let limits = self.context.limits;
        if total >= limits.global && !self.series.contains(labels) {
            return self.overflow(key, create());
        }
        // The family's limit is checked where the series would be counted.
        match self.series.upsert_keyed(
            labels,
            Some(key),
            self.context.now,
            limits.per_metric,
            create,
            update,
        ) {
            Ok((applied, new)) => self.count(applied, new),
            Err(refused) => self.overflow(key, refused),
        }
    }

    /// Folds a point of a new series beyond a series limit into the
    /// family's overflow series.
    fn overflow(&mut self, key: RawKey, incoming: SeriesState) {
        let labels = overflow_labels(self.buffers);
        if Family::shard_index(labels.route()) != self.shard {
            self.outcome.overflowing.push((key, incoming));
            return;
        }
        let (folded, new) = self.series.fold_overflow(
            labels,
            key,
            self.context.kind,
            self.context.temporality,
            incoming,
            self.context.limits.tracked(),
            self.context.now,
        );
        if new {
            self.outcome.added += 1;
        }
        match folded {
            Folded::Folded => self.outcome.overflowed += 1,
            Folded::Refused => self.reject(
                "series limit reached and the overflow series tracks as many cumulative series as it may; \
                 the point of a series it has not seen cannot be added without counting its history twice",
            ),
        }
    }

    fn count(&mut self, applied: Applied, new: bool) {
        if new {
            self.outcome.added += 1;
        }
        if applied == Applied::OutOfOrder {
            self.tally.out_of_order += 1;
            // A late cumulative point is covered by the newer one; a late
            // delta's increment is lost, so the sender is told.
            if self.context.temporality == Temporality::Delta {
                self.reject(
                    "a delta point no newer than the series' last one is not added \
                     (a repeat, or a late interval: the two cannot be told apart)",
                );
            }
        }
    }

    fn reject(&mut self, why: &str) {
        let scratch = &mut self.buffers.scratch;
        scratch.clear();
        let _ = write!(scratch, "metric `{}`: {why}", self.context.metric_name);
        let message = scratch.clone();
        self.tally.reject(1, message);
    }

    /// Writes a number point whose raw key is `key`.
    fn number(&mut self, point: &NumberPointView<'_>, key: RawKey) {
        let value = match point.value {
            Some(v) => v,
            None if point.flags & DataPointFlags::NoRecordedValueMask as u32 != 0 => 0.0,
            None => return self.reject("a number point has no value"),
        };
        if self.context.kind == FamilyKind::Counter && value < 0.0 {
            return self.reject("a monotonic sum has a negative value; a counter only grows");
        }
        let state = SeriesState::new(SeriesValue::Number(value), point.start_ns, point.time_ns);
        let temporality = self.context.temporality;
        let exemplar = point
            .has_exemplars
            .then(|| latest_exemplar(&point.exemplars))
            .flatten();
        let with_exemplar = |state: &mut SeriesState| {
            if let Some(e) = &exemplar {
                state.record_exemplar(0, 1, e.clone());
            }
        };
        self.write(
            &point.attributes,
            key,
            point.flags,
            || {
                let mut new = state.clone();
                with_exemplar(&mut new);
                new
            },
            |existing| {
                let applied = existing.apply(state.clone(), temporality);
                if applied == Applied::Updated {
                    with_exemplar(existing);
                }
                applied
            },
        );
    }

    fn histogram(&mut self, point: &HistogramPointView<'_>) {
        let mut counts = std::mem::take(&mut self.buffers.counts);
        let mut bounds = std::mem::take(&mut self.buffers.bounds);
        counts.clear();
        bounds.clear();
        point.bucket_counts.read_into(&mut counts);
        point.explicit_bounds.read_doubles_into(&mut bounds);
        self.histogram_with(point, &counts, &bounds);
        self.buffers.counts = counts;
        self.buffers.bounds = bounds;
    }

    fn histogram_with(&mut self, point: &HistogramPointView<'_>, counts: &[u64], bounds: &[f64]) {
        if point.flags & DataPointFlags::NoRecordedValueMask as u32 == 0 {
            if !counts.is_empty() && counts.len() != bounds.len() + 1 {
                return self.reject(&format!(
                    "histogram has {} bucket counts for {} bounds (want bounds+1)",
                    counts.len(),
                    bounds.len()
                ));
            }
            if bounds
                .windows(2)
                .any(|w| w[0].partial_cmp(&w[1]) != Some(std::cmp::Ordering::Less))
                || bounds.iter().any(|b| b.is_nan())
            {
                return self.reject("histogram bounds are not strictly increasing");
            }
            let total: u64 = counts.iter().fold(0u64, |a, c| a.saturating_add(*c));
            if !counts.is_empty() && total != point.count {
                return self.reject(&format!(
                    "histogram bucket counts sum to {total} but count is {}",
                    point.count
                ));
            }
        }
        let incoming = HistogramPoint {
            start_ns: point.start_ns,
            time_ns: point.time_ns,
            bounds,
            counts,
            count: point.count,
            sum: point.sum,
        };
        let temporality = self.context.temporality;
        let slots = bounds.len() + 1;
        let with_exemplars = |state: &mut SeriesState| {
            for e in point.exemplars.iter().filter_map(|e| stored_exemplar(&e)) {
                state.record_exemplar(bounds.partition_point(|b| *b < e.value), slots, e);
            }
        };
        self.write(
            &point.attributes,
            raw_key(self.context.shared.hash, &point.attributes, None),
            point.flags,
            || {
                let mut state = incoming.to_state();
                with_exemplars(&mut state);
                state
            },
            |state| {
                let applied = state.apply_histogram(&incoming, temporality);
                if applied == Applied::Updated {
                    with_exemplars(state);
                }
                applied
            },
        );
    }

    fn exponential(&mut self, point: &ExponentialPointView<'_>) {
        let recorded = point.flags & DataPointFlags::NoRecordedValueMask as u32 == 0;
        if recorded && !EXPONENTIAL_SCALES.contains(&point.scale) {
            return self.reject(&format!(
                "exponential histogram scale {} is outside -10..=20",
                point.scale
            ));
        }
        let buckets = |b: &Option<crate::model::wire::metrics::BucketsView<'_>>| match b {
            Some(b) => {
                let mut counts = Vec::new();
                b.counts.read_into(&mut counts);
                Buckets {
                    offset: b.offset,
                    counts,
                }
            }
            None => Buckets::default(),
        };
        let (positive, negative) = (buckets(&point.positive), buckets(&point.negative));
        let limit = exponential_index_limit(point.scale);
        if recorded && !(positive.within(limit) && negative.within(limit)) {
            return self.reject(&format!(
                "exponential histogram bucket indices reach past ±{limit}, beyond any finite value at scale {}",
                point.scale
            ));
        }
        // `count` must be the zero bucket's plus every bucket's count
        // (metrics.proto), as for explicit buckets.
        let total = [&positive.counts, &negative.counts]
            .into_iter()
            .flatten()
            .fold(point.zero_count, |a, c| a.saturating_add(*c));
        if recorded && total != point.count {
            return self.reject(&format!(
                "exponential histogram zero and bucket counts sum to {total} but count is {}",
                point.count
            ));
        }
        let value = ExponentialHistogram {
            scale: point.scale,
            zero_threshold: point.zero_threshold,
            zero_count: point.zero_count,
            positive,
            negative,
            count: point.count,
            sum: point.sum,
        };
        let state = SeriesState::new(
            SeriesValue::Exponential(Box::new(value)),
            point.start_ns,
            point.time_ns,
        );
        self.store(
            &point.attributes,
            point.flags,
            state,
            self.context.temporality,
        );
    }

    fn summary(&mut self, point: &SummaryPointView<'_>) {
        let recorded = point.flags & DataPointFlags::NoRecordedValueMask as u32 == 0;
        // metrics.proto: a quantile is in [0.0, 1.0] (0 the minimum, 1
        // the maximum); another would be a `quantile` label no query of
        // quantiles means.
        if recorded
            && let Some(q) = point
                .quantile_values
                .iter()
                .find(|q| !(0.0..=1.0).contains(&q.quantile))
        {
            return self.reject(&format!(
                "summary quantile {} is outside [0, 1]",
                q.quantile
            ));
        }
        let value = Summary {
            quantiles: point
                .quantile_values
                .iter()
                .map(|q| (q.quantile, q.value))
                .collect(),
            count: point.count,
            sum: point.sum,
        };
        let state = SeriesState::new(
            SeriesValue::Summary(Box::new(value)),
            point.start_ns,
            point.time_ns,
        );
        // Summaries are always cumulative.
        self.store(
            &point.attributes,
            point.flags,
            state,
            Temporality::Cumulative,
        );
    }

    /// Writes a whole new state (exponential histograms, summaries).
    fn store(
        &mut self,
        attributes: &Attributes<'_>,
        flags: u32,
        state: SeriesState,
        temporality: Temporality,
    ) {
        let incoming = state.clone();
        self.write(
            attributes,
            raw_key(self.context.shared.hash, attributes, None),
            flags,
            || state,
            |existing| existing.apply(incoming, temporality),
        );
    }
}

/// Why `labels` (with `extra` labels the exposition adds) break the label
/// limits (`max_labels_per_series`, `max_label_value_length`), if they do.
fn label_limit_error(labels: &LabelSet, limits: (usize, usize), extra: usize) -> Option<String> {
    let (count, longest) = (labels.len() + extra, labels.longest_value());
    let (max_labels, max_value) = limits;
    if count > max_labels {
        return Some(format!(
            "a point has {count} attributes and labels; the limit is {max_labels} (exporters.prometheus.max_labels_per_series)"
        ));
    }
    (longest > max_value).then(|| {
        format!(
            "a label value is {longest} bytes; the limit is {max_value} bytes (exporters.prometheus.max_label_value_length)"
        )
    })
}

/// The name of the `target_info` family under `namespace`.
fn target_info_name(namespace: &str) -> std::borrow::Cow<'static, str> {
    if namespace.is_empty() {
        TARGET_INFO.into()
    } else {
        format!("{namespace}_{TARGET_INFO}").into()
    }
}

/// Whether `family` is [`target_info_name`] under `namespace` (compared
/// in place: this runs for every metric of every request).
fn is_target_info(family: &str, namespace: &str) -> bool {
    if namespace.is_empty() {
        return family == TARGET_INFO;
    }
    family
        .strip_prefix(namespace)
        .and_then(|rest| rest.strip_prefix('_'))
        == Some(TARGET_INFO)
}

/// Builds the label set of a point with `attributes` under `shared`
/// into `labels`. `exposition_label` (`le`, `quantile`) is written by the
/// exposition itself: an attribute of that name would duplicate it.
fn fill_labels(
    labels: &mut LabelSet,
    attributes: &Attributes<'_>,
    shared: &SharedLabels,
    exposition_label: Option<&str>,
) {
    labels.clear();
    for kv in attributes.iter() {
        if Some(kv.key) != exposition_label {
            push_attribute(labels, &kv);
        }
    }
    for (name, value) in &shared.pairs {
        labels.push_str(name, value, LabelSource::Derived);
    }
    labels.finish();
}

/// The label block the first point of `batch` (its first resource,
/// scope and metric) gets on `/metrics`, built as ingest builds it, with
/// its run of derived labels; empty when the batch has no point. An
/// error when the block with one more label (`horizon`, `threshold`)
/// breaks `limits` (`max_labels_per_series`, `max_label_value_length`).
pub fn first_point_label_block(
    batch: &MetricsBatch,
    limits: (usize, usize),
    reserved: Option<&'static str>,
) -> Result<LabelBlock, String> {
    // One builder per thread, reused: a series' first point (of every
    // new analysed or windowed series) then grows no buffers.
    thread_local! {
        static LABELS: std::cell::RefCell<LabelSet> = std::cell::RefCell::new(LabelSet::new());
    }
    LABELS.with(|labels| match labels.try_borrow_mut() {
        Ok(mut labels) => {
            labels.reserve(reserved);
            block_of_first_point(batch, limits, &mut labels)
        }
        // Only a translation within a translation could meet a borrowed
        // builder; it gets a new one.
        Err(_) => {
            let mut labels = LabelSet::new();
            labels.reserve(reserved);
            block_of_first_point(batch, limits, &mut labels)
        }
    })
}

/// [`first_point_label_block`] with the builder `labels`.
fn block_of_first_point(
    batch: &MetricsBatch,
    limits: (usize, usize),
    labels: &mut LabelSet,
) -> Result<LabelBlock, String> {
    let view = batch.view();
    let Some(resource_metrics) = view.resource_metrics.iter().next() else {
        return Ok(LabelBlock::default());
    };
    let identity = ResourceIdentity::of(resource_metrics.resource.as_ref());
    let Some(scope_metrics) = resource_metrics.scope_metrics.iter().next() else {
        return Ok(LabelBlock::default());
    };
    let shared = shared_labels(
        &identity,
        scope_metrics.scope.as_ref(),
        scope_metrics.schema_url,
    );
    let point = scope_metrics
        .metrics
        .iter()
        .next()
        .and_then(|metric| match metric.data {
            Some(MetricData::Gauge(points)) => points.iter().next(),
            _ => None,
        });
    let Some(point) = point else {
        return Ok(LabelBlock::default());
    };
    fill_labels(labels, &point.attributes, &shared, None);
    if let Some(why) = label_limit_error(labels, limits, 1) {
        return Err(why);
    }
    Ok(LabelBlock {
        text: labels.text().to_string(),
        shared: labels.shared_span(),
    })
}

fn is_identifying(key: &str) -> bool {
    matches!(key, SERVICE_NAME | SERVICE_NAMESPACE | SERVICE_INSTANCE_ID)
}

fn push_attribute(labels: &mut LabelSet, kv: &KeyValueView<'_>) {
    labels.push(
        kv.key,
        |b| sanitize_label_into(kv.key, b),
        |b| write_any_view(&kv.value, b),
        LabelSource::Attribute,
    );
}

/// Whether a metric's metadata says `prometheus.type: unknown`: the
/// Prometheus receiver's mark of an untyped metric, which the
/// specification has written back as unknown (untyped).
fn says_unknown(metadata: &Attributes<'_>) -> bool {
    metadata.iter().any(|kv| {
        if kv.key != "prometheus.type" {
            return false;
        }
        let mut text = String::new();
        write_any_view(&kv.value, &mut text);
        text == "unknown"
    })
}

/// `job` and `instance` of a resource.
struct ResourceIdentity {
    job: Option<String>,
    instance: Option<String>,
}

impl ResourceIdentity {
    /// A key given twice counts by its first occurrence, as the
    /// Collector's attribute maps and the span and log connectors read it.
    fn of(resource: Option<&ResourceView<'_>>) -> Self {
        let mut name = None;
        let mut namespace = None;
        let mut instance = None;
        let mut seen = [false; 3];
        for kv in resource.iter().flat_map(|r| r.attributes.iter()) {
            let (slot, at) = match kv.key {
                SERVICE_NAME => (&mut name, 0),
                SERVICE_NAMESPACE => (&mut namespace, 1),
                SERVICE_INSTANCE_ID => (&mut instance, 2),
                _ => continue,
            };
            if std::mem::replace(&mut seen[at], true) {
                continue;
            }
            let mut text = String::new();
            write_any_view(&kv.value, &mut text);
            *slot = Some(text).filter(|t| !t.is_empty());
        }
        let job = match (namespace, name) {
            (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
            (None, Some(name)) => Some(name),
            _ => None,
        };
        Self { job, instance }
    }

    /// `job="…"` and `instance="…"` as a label block writes them (those
    /// the resource has).
    fn pairs(&self) -> Vec<String> {
        [("job", &self.job), ("instance", &self.instance)]
            .into_iter()
            .filter_map(|(name, value)| {
                let value = value.as_ref()?;
                let mut pair = format!("{name}=\"");
                escape_value_into(value, &mut pair);
                pair.push('"');
                Some(pair)
            })
            .collect()
    }

    fn push(&self, labels: &mut LabelSet) {
        if let Some(job) = &self.job {
            labels.push_str("job", job, LabelSource::Derived);
        }
        if let Some(instance) = &self.instance {
            labels.push_str("instance", instance, LabelSource::Derived);
        }
    }
}

/// Whether the label block `text` has the label `pair` (`name="value"`,
/// escaped as a block writes it).
pub(super) fn has_label_pair(text: &str, pair: &str) -> bool {
    crate::model::label_block::label_spans(text)
        .into_iter()
        .any(|span| &text[span] == pair)
}

/// The scope's attributes as `otel_scope_<key>` labels, sorted by name.
/// The scope's name, version and schema URL are its identity: an
/// attribute that would take one of their labels is left out, whether the
/// field is set or not. Attributes whose keys sanitise to one label join
/// their values with `;`, ordered by the original key, as point
/// attributes do.
fn scope_attribute_labels(scope: &ScopeView<'_>) -> Vec<(String, String)> {
    const IDENTITY: [&str; 3] = [
        "otel_scope_name",
        "otel_scope_version",
        "otel_scope_schema_url",
    ];
    let mut labels: Vec<(String, &str, String)> = Vec::new();
    for kv in scope.attributes.iter() {
        let mut name = String::new();
        sanitize_label_into(&format!("otel_scope_{}", kv.key), &mut name);
        let mut value = String::new();
        write_any_view(&kv.value, &mut value);
        if !name.is_empty() && !value.is_empty() && !IDENTITY.contains(&name.as_str()) {
            labels.push((name, kv.key, value));
        }
    }
    labels.sort_by(|a, b| a.0.cmp(&b.0).then_with(|| a.1.cmp(b.1)));
    let mut joined: Vec<(String, String)> = Vec::with_capacity(labels.len());
    for (name, _, value) in labels {
        match joined.last_mut() {
            Some((last, values)) if *last == name => {
                values.push(';');
                values.push_str(&value);
            }
            _ => joined.push((name, value)),
        }
    }
    joined
}

fn shared_labels(
    identity: &ResourceIdentity,
    scope: Option<&ScopeView<'_>>,
    schema_url: &str,
) -> SharedLabels {
    let mut pairs = Vec::with_capacity(4);
    if let Some(job) = &identity.job {
        pairs.push(("job".to_string(), job.clone()));
    }
    if let Some(instance) = &identity.instance {
        pairs.push(("instance".to_string(), instance.clone()));
    }
    if let Some(scope) = scope {
        if !scope.name.is_empty() {
            pairs.push(("otel_scope_name".into(), scope.name.to_string()));
        }
        if !scope.version.is_empty() {
            pairs.push(("otel_scope_version".into(), scope.version.to_string()));
        }
        pairs.extend(scope_attribute_labels(scope));
    }
    if !schema_url.is_empty() {
        pairs.push(("otel_scope_schema_url".into(), schema_url.to_string()));
    }
    let mut hasher = RAW_SEEDS[0].build_hasher();
    for (name, value) in &pairs {
        hasher.write_usize(name.len());
        hasher.write(name.as_bytes());
        hasher.write_usize(value.len());
        hasher.write(value.as_bytes());
    }
    let escaped = |value: &Option<String>| {
        let mut out = String::new();
        if let Some(value) = value {
            escape_value_into(value, &mut out);
        }
        out
    };
    let route = route_hash(&escaped(&identity.job), &escaped(&identity.instance));
    SharedLabels {
        hash: hasher.finish(),
        pairs,
        home: Family::shard_index(route),
        open: [identity.job.is_none(), identity.instance.is_none()],
    }
}
