//! The span-metrics connector: RED metrics from every span, compatible
//! with the OTel Collector's spanmetrics connector.
//!
//! For each span it counts a call and records the duration (seconds) under
//! the dimensions `service.name`, `span.name`, `span.kind`, `status.code`
//! and the configured extras. Every `flush_interval` (or after each traces
//! request when it is zero) it emits the series that changed (and every
//! [`REFRESH_EVERY`](super::table::REFRESH_EVERY) all of them, so a rate no
//! span moves falls to 0) as cumulative
//! `{namespace}.calls` and `{namespace}.duration` (explicit or exponential
//! histogram) with exemplars, and hands the raw durations to the
//! observation consumer (the window processor). Series are bounded by `cardinality_limit` (then one
//! overflow series) and expire after `series_ttl`.
//!
//! The series are split into [`SHARDS`] tables by resource, each behind
//! its own lock, so workers writing the spans of different service
//! instances do not take turns on one lock (see `connectors/table.rs` for
//! how the limit and the overflow series stay single).

pub mod config;
mod series;

use crate::model::MetricsBatch;
use crate::model::otlp::ItemCount;
use crate::model::otlp::common::KeyValue;
use crate::model::spare::{self, Spare};
use crate::model::wire::traces::SpanView;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::otlp::common::InstrumentationScope;
use crate::model::otlp::trace::{span::SpanKind, status::StatusCode};
use crate::model::text::AttributeLookup;
use crate::model::{Observations, TracesBatch};
use crate::pipeline::{
    ConsumeResult, Consumed, MetricsConsumer, ObservationConsumer, TracesConsumer,
};
use crate::telemetry::Telemetry;

use super::encode::{self, MetricShape, RequestWriter};
use super::explicit::bucket_of;
use super::output::{OVERFLOW_KEY, find_str, now_ns, overflow_attribute, string_attribute};
use super::table::{
    Found, KeyPrefix, OVERFLOW_SHARD, SHARDS, SeriesKey, Table, Upserted, canonical_resource,
    load_tables, save_tables, shard_of,
};
pub use config::{Dimension, HistogramConfig, HistogramKind, SpanMetricsConfig};
use series::{Buckets, Exemplar, SpanSeries};

/// The duration histogram's description.
const DURATION_DESCRIPTION: &str = "Span durations recorded by the span-metrics connector.";

/// Dimensions every span has, in order.
const FIXED: [&str; 4] = ["service.name", "span.name", "span.kind", "status.code"];

/// One table, on cache lines of its own (its lock word is written by
/// every worker that takes it).
#[repr(align(64))]
struct Shard(Mutex<Table<SpanSeries>>);

/// The connector. Shared as `Arc<SpanMetrics>`.
pub struct SpanMetrics {
    config: SpanMetricsConfig,
    kind: HistogramKind,
    bounds: Vec<f64>,
    dimension_names: Vec<String>,
    scope: InstrumentationScope,
    shards: Box<[Shard]>,
    downstream: Arc<dyn MetricsConsumer>,
    observer: Option<Arc<dyn ObservationConsumer>>,
    telemetry: Arc<Telemetry>,
}

impl SpanMetrics {
    pub fn new(
        config: SpanMetricsConfig,
        downstream: Arc<dyn MetricsConsumer>,
        observer: Option<Arc<dyn ObservationConsumer>>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let kind = config.histogram.kind();
        let bounds = match &kind {
            HistogramKind::Explicit(bounds) => bounds.clone(),
            HistogramKind::Exponential { .. } => Vec::new(),
        };
        let dimension_names = FIXED
            .iter()
            .map(|s| s.to_string())
            .chain(config.dimensions.iter().map(|d| d.name.clone()))
            .collect();
        Self {
            shards: Table::shards(config.cardinality_limit, SHARDS)
                .into_iter()
                .map(|t| Shard(Mutex::new(t)))
                .collect(),
            kind,
            bounds,
            dimension_names,
            scope: InstrumentationScope {
                name: "streamgate.spanmetrics".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            },
            config,
            downstream,
            observer,
            telemetry,
        }
    }

    fn calls_name(&self) -> String {
        format!("{}.calls", self.config.namespace)
    }

    fn duration_name(&self) -> String {
        format!("{}.duration", self.config.namespace)
    }

    /// The emitted metrics: calls, then durations.
    fn shapes(&self) -> Vec<MetricShape> {
        let exponential = matches!(self.kind, HistogramKind::Exponential { .. });
        vec![
            MetricShape::cumulative_sum(
                self.calls_name(),
                "Spans counted by the span-metrics connector.",
                "",
            ),
            MetricShape::cumulative_histogram(
                self.duration_name(),
                DURATION_DESCRIPTION,
                "s",
                exponential,
            ),
        ]
    }

    /// Drops series with no span within `series_ttl`. Returns how many.
    pub fn expire(&self, now_ns: u64) -> usize {
        let ttl = self.config.series_ttl.get().as_nanos() as u64;
        let cutoff = now_ns.saturating_sub(ttl);
        self.shards.iter().map(|s| s.0.lock().expire(cutoff)).sum()
    }

    /// How often changed series are emitted (zero: after every request).
    pub fn flush_interval(&self) -> std::time::Duration {
        self.config.flush_interval.get()
    }

    /// Series currently held.
    pub fn series(&self) -> usize {
        self.shards[0].0.lock().total_len()
    }

    fn shard(&self, index: usize) -> parking_lot::MutexGuard<'_, Table<SpanSeries>> {
        self.shards[index % SHARDS].0.lock()
    }

    /// Moves the changed series of one shard into `output`, stamped with
    /// the shard's clock.
    fn drain_into(
        &self,
        table: &mut Table<SpanSeries>,
        output: &mut RequestWriter,
        duration_name: &str,
    ) {
        let now = table.tick(now_ns());
        table.mark_all_changed_every(now, super::table::REFRESH_EVERY);
        let mut scratch = Vec::new();
        table.drain_dirty_holding(|resource, entry, durations| {
            let overflow = entry.resource.is_none();
            let dims = || {
                self.dimension_names
                    .iter()
                    .zip(&entry.dims)
                    .filter_map(|(name, value)| value.as_deref().map(|v| (name.as_str(), v)))
            };
            if let Some(observer) = &self.observer
                && !durations.is_empty()
            {
                let attributes: Vec<KeyValue> = if overflow {
                    vec![overflow_attribute()]
                } else {
                    dims().map(|(name, v)| string_attribute(name, v)).collect()
                };
                observer.observe(&Observations {
                    resource,
                    scope: &self.scope,
                    metric: duration_name,
                    unit: "s",
                    description: DURATION_DESCRIPTION,
                    attributes: &attributes,
                    values: durations,
                });
            }
            entry.value.emitted();
            let write_attributes = |out: &mut Vec<u8>, field: u32| {
                if overflow {
                    encode::bool_attribute(out, field, OVERFLOW_KEY, true);
                } else {
                    dims().for_each(|(name, v)| encode::string_attribute(out, field, name, v));
                }
            };
            entry.value.write_points(
                output.points(entry.resource, resource),
                &mut scratch,
                &write_attributes,
                &self.bounds,
                entry.start_ns,
                now,
            );
        });
    }

    /// Hands the series that changed since the last flush on as metrics
    /// (cumulative calls and durations), and their new durations to the
    /// observation consumer. Runs after every request with a zero
    /// `flush_interval`, else on that interval and at shutdown.
    pub fn flush(&self) {
        let mut output = RequestWriter::new(&self.scope, self.shapes());
        let calls_name = self.calls_name();
        let duration_name = self.duration_name();
        // One shard at a time: writers wait for one shard, not all.
        for shard in self.shards.iter() {
            let mut table = shard.0.lock();
            self.drain_into(&mut table, &mut output, &duration_name);
            output.next_table();
        }
        if output.is_empty() {
            return;
        }
        let batch = match MetricsBatch::decode(output.finish()) {
            Ok(batch) => batch,
            Err(e) => {
                // Written here, so always valid; were it not, say so
                // rather than emit nothing silently.
                tracing::error!(error = %e, metric = %calls_name, "span metrics were written invalid");
                return;
            }
        };
        let outcome = self.downstream.consume_metrics(&batch);
        if let Ok(Consumed { rejected, message }) = &outcome
            && *rejected > 0
        {
            tracing::warn!(
                rejected,
                metric = %calls_name,
                "span metrics were rejected downstream: {message}"
            );
        }
    }

    fn new_series(&self) -> SpanSeries {
        SpanSeries::new(&self.kind, self.bounds.len())
    }
}

impl TracesConsumer for SpanMetrics {
    /// Two passes, as the metrics processors: every span's series key,
    /// duration and exemplar are read without a lock, then each shard the
    /// request's resources fall in is probed for its spans back to back
    /// under its lock (their cache misses overlap, and two requests share
    /// a lock for less time, or not at all when their resources differ).
    /// Spans of series not seen before are added by a further walk of the
    /// request; those past the limit in a shard without the overflow
    /// series go to it once that shard is let go.
    fn consume_traces(&self, batch: &TracesBatch) -> ConsumeResult {
        let keep_values = self.observer.is_some();
        let mut samples = spare::take(&SPARE_SAMPLES);
        samples.reserve(batch.item_count() as usize);
        self.for_each_span(batch, |_, (rhash, prefix), dims, span| {
            let seconds = span.seconds();
            samples.push(SpanSample {
                key: prefix.key(dims.get(1..).unwrap_or_default()),
                shard: shard_of(rhash),
                seconds,
                bucket: bucket_of(seconds, &self.bounds),
                exemplar: self.exemplar(span, seconds),
            });
        });
        let mut order = spare::take(&SPARE_ORDER);
        let ends = group_by_shard(&samples, &mut order);
        let mut overflowed = 0u64;
        let mut refused = Vec::new();
        let mut found = spare::take(&SPARE_FOUND);
        found.reserve(samples.len());
        let mut start = 0;
        for (shard, &end) in ends.iter().enumerate() {
            let run = start..end;
            start = end;
            if run.is_empty() {
                continue;
            }
            let mut table = self.shard(shard);
            let now = table.tick(now_ns());
            found.clear();
            let touch =
                |i: usize, s: &SpanSample| (i, table.touch(s.key, |series| series.warm(s.bucket)));
            if order.is_empty() {
                // One shard has every sample.
                found.extend(samples.iter().enumerate().map(|(i, s)| touch(i, s)));
            } else {
                let run = order.get(run).unwrap_or_default();
                found.extend(
                    run.iter()
                        .filter_map(|&i| samples.get(i as usize).map(|s| touch(i as usize, s))),
                );
            }
            let mut missing = Vec::new();
            for &(i, at) in &found {
                match (at, samples.get(i)) {
                    (Some(at), Some(sample)) => {
                        table.update_found(at, now, |s| {
                            s.record(sample.seconds, sample.bucket, sample.exemplar)
                        });
                        if keep_values {
                            table.hold(at, sample.seconds);
                        }
                    }
                    _ => missing.push(i),
                }
            }
            if !missing.is_empty() {
                overflowed +=
                    self.add_series(batch, &samples, &missing, &mut table, now, &mut refused);
            }
        }
        if !refused.is_empty() {
            // Straight to the overflow series: the series belong to other
            // shards, and must not be created here even if the count has
            // fallen since.
            let mut table = self.shard(OVERFLOW_SHARD);
            let now = table.tick(now_ns());
            for sample in refused.iter().filter_map(|&i| samples.get(i)) {
                table.upsert_overflow(
                    now,
                    || self.new_series(),
                    |s| s.record(sample.seconds, sample.bucket, sample.exemplar),
                );
                if keep_values {
                    table.hold(Found::OVERFLOW, sample.seconds);
                }
                overflowed += 1;
            }
        }
        spare::give(&SPARE_SAMPLES, samples);
        spare::give(&SPARE_FOUND, found);
        spare::give(&SPARE_ORDER, order);
        if overflowed > 0 {
            self.telemetry
                .record_connector_overflow("spanmetrics", overflowed);
        }
        if self.config.flush_interval.get().is_zero() {
            self.flush();
        }
        Ok(Consumed::all())
    }
}

impl SpanMetrics {
    /// Adds the spans at `indices` (ascending) of the request, whose
    /// series `table` did not have, by walking the request again; returns
    /// how many went to the overflow series. Those the table refuses (past
    /// the limit, without the overflow series) are added to `refused`.
    fn add_series(
        &self,
        batch: &TracesBatch,
        samples: &[SpanSample],
        indices: &[usize],
        table: &mut Table<SpanSeries>,
        now: u64,
        refused: &mut Vec<usize>,
    ) -> u64 {
        let keep_values = self.observer.is_some();
        let mut overflowed = 0;
        let mut wanted = indices.iter().copied().peekable();
        let mut index = 0;
        self.for_each_span(batch, |resource, (rhash, _), dims, _| {
            let this = index;
            index += 1;
            if wanted.next_if_eq(&this).is_none() {
                return;
            }
            let Some(sample) = samples.get(this) else {
                return;
            };
            let outcome = table.upsert(
                resource,
                rhash,
                dims,
                now,
                || self.new_series(),
                |s| s.record(sample.seconds, sample.bucket, sample.exemplar),
            );
            let held = match outcome {
                Upserted::Overflow => {
                    overflowed += 1;
                    Some(Found::OVERFLOW)
                }
                Upserted::Refused => {
                    refused.push(this);
                    None
                }
                Upserted::Existing | Upserted::New => table.find(sample.key),
            };
            if keep_values && let Some(at) = held {
                table.hold(at, sample.seconds);
            }
        });
        overflowed
    }
}

thread_local! {
    /// Per-request lists, kept by each thread for its next request (see
    /// `model::spare`).
    static SPARE_SAMPLES: Spare<SpanSample> = const { Spare::new() };
    static SPARE_FOUND: Spare<(usize, Option<Found>)> = const { Spare::new() };
    static SPARE_ORDER: Spare<u32> = const { Spare::new() };
}

/// Puts the indices of `samples` into `order` grouped by shard, in
/// arrival order within each shard (a counting sort); returns where each
/// shard's run ends in `order`. When one shard has every sample (a
/// request of one resource) `order` is left empty: the samples are
/// that shard's run as they are.
fn group_by_shard(samples: &[SpanSample], order: &mut Vec<u32>) -> [usize; SHARDS] {
    let mut ends = [0usize; SHARDS];
    for s in samples {
        if let Some(n) = ends.get_mut(s.shard) {
            *n += 1;
        }
    }
    let whole = ends.contains(&samples.len());
    let mut next = [0usize; SHARDS];
    let mut total = 0;
    for (at, end) in next.iter_mut().zip(ends.iter_mut()) {
        *at = total;
        total += *end;
        *end = total;
    }
    order.clear();
    if whole {
        return ends;
    }
    order.resize(total, 0);
    for (i, s) in samples.iter().enumerate() {
        if let Some(at) = next.get_mut(s.shard)
            && let Some(slot) = order.get_mut(*at)
        {
            *slot = i as u32;
            *at += 1;
        }
    }
    ends
}

/// A span as the first pass of `consume_traces` reads it.
struct SpanSample {
    key: SeriesKey,
    /// The shard of its resource.
    shard: usize,
    seconds: f64,
    /// Its explicit bucket (see [`bucket_of`]).
    bucket: usize,
    exemplar: Option<Exemplar>,
}

impl SpanMetrics {
    /// Calls `each` with every span of the request, in order, with its
    /// resource (canonical), the resource's hash with the series keys'
    /// hashing done as far as the first dimension (the service, the same
    /// for all of a resource's spans), and the span's dimension values.
    fn for_each_span<'a>(
        &self,
        batch: &'a TracesBatch,
        mut each: impl FnMut(&[KeyValue], (u64, &KeyPrefix), &[Option<&str>], &SpanView<'a>),
    ) {
        let mut extras: Vec<String> = vec![String::new(); self.config.dimensions.len()];
        for rs in batch.resources() {
            let (resource, rhash) = canonical_resource(
                rs.resource()
                    .map(|r| r.attributes.to_owned_vec())
                    .unwrap_or_default(),
            );
            let resource = resource.as_slice();
            let service = find_str(resource, "service.name");
            let prefix = KeyPrefix::new(rhash, &[service]);
            let resource_key = (rhash, &prefix);
            for span in rs.spans() {
                for (extra, d) in extras.iter_mut().zip(&self.config.dimensions) {
                    extra.clear();
                    let found = span.attributes().write_text(&d.name, extra)
                        || resource.write_text(&d.name, extra);
                    if let (false, Some(default)) = (found, &d.default) {
                        extra.push_str(default);
                    }
                }
                let fixed: [Option<&str>; FIXED.len()] = [
                    service,
                    Some(span.name),
                    Some(kind_name(span.kind)),
                    Some(status_name(span.status_code)),
                ];
                if extras.is_empty() {
                    each(resource, resource_key, &fixed, &span);
                } else {
                    let with_extras: Vec<Option<&str>> = fixed
                        .into_iter()
                        .chain(extras.iter().map(|e| (!e.is_empty()).then_some(e.as_str())))
                        .collect();
                    each(resource, resource_key, &with_extras, &span);
                }
            }
        }
    }

    /// The exemplar a span leaves on its series, when exemplars are on and
    /// its ids are well formed.
    fn exemplar(&self, span: &SpanView<'_>, seconds: f64) -> Option<Exemplar> {
        (self.config.exemplars && span.trace_id.len() == 16 && span.span_id.len() == 8)
            .then(|| Exemplar::new(span.trace_id, span.span_id, seconds, span.end_ns))
    }
}

/// The `span.kind` dimension of a kind number (`SPAN_KIND_UNSPECIFIED`
/// for numbers the protocol does not define).
fn kind_name(kind: i32) -> &'static str {
    SpanKind::try_from(kind)
        .map(|k| k.as_str_name())
        .unwrap_or("SPAN_KIND_UNSPECIFIED")
}

/// The `status.code` dimension of a status code number.
fn status_name(code: i32) -> &'static str {
    StatusCode::try_from(code)
        .map(|c| c.as_str_name())
        .unwrap_or("STATUS_CODE_UNSET")
}

#[cfg(test)]
mod tests;

/// Durable state: every series' calls, duration histogram and exemplars,
/// so `calls_total` and the duration histogram continue across a restart
/// with their start time instead of resetting.
impl crate::pipeline::durable::Durable for SpanMetrics {
    fn state_name(&self) -> &'static str {
        "spanmetrics"
    }

    fn state_version(&self) -> u32 {
        1
    }

    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), crate::pipeline::durable::DurableError> {
        let tables: Vec<_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let tables: Vec<&Table<SpanSeries>> = tables.iter().map(|t| &**t).collect();
        save_tables(&tables, out)
    }

    fn restore(
        &self,
        snapshot: &[u8],
    ) -> Result<crate::pipeline::durable::Restored, crate::pipeline::durable::DurableError> {
        use crate::pipeline::durable::{DurableError, Restored};
        let dims = self.dimension_names.len();
        let buckets = self.bounds.len() + 1;
        let exponential = matches!(self.kind, HistogramKind::Exponential { .. });
        // Series whose layout no longer matches the configuration (other
        // dimensions, bounds or histogram kind) start afresh.
        let fits = |s: &SpanSeries, n: usize| {
            (n == dims || n == 0)
                && match &s.buckets {
                    Buckets::Explicit(counts) => !exponential && counts.len() == buckets,
                    Buckets::Exponential(_) => exponential,
                }
        };
        let mut tables: Vec<_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let (rest, items, discarded) = load_tables(snapshot, &mut tables, shard_of, fits)?;
        if !rest.is_empty() {
            return Err(DurableError::decode("bytes after the last series"));
        }
        Ok(Restored { items, discarded })
    }
}
