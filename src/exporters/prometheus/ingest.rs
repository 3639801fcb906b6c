//! Applying a decoded OTLP metrics request to the series store: resource
//! labels (`job`, `instance`, `target_info`), scope labels, then each
//! point of each metric under one family lock.

use std::fmt::Write;

use crate::model::MetricsRequest;
use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::model::otlp::metrics::{
    AggregationTemporality, DataPointFlags, ExponentialHistogramDataPoint, HistogramDataPoint,
    Metric, NumberDataPoint, SummaryDataPoint, metric::Data, number_data_point,
};
use crate::model::otlp::resource::Resource;
use crate::pipeline::Consumed;

use super::config::PrometheusExporterConfig;
use super::store::value::{Buckets, ExponentialHistogram, HistogramPoint, StoredExemplar, Summary};
use super::store::{
    Applied, FamilyKind, FamilyMeta, LabelSet, LabelSource, SeriesState, SeriesStore, SeriesTable,
    SeriesValue, Temporality,
};
use super::translate::{MetricShape, metric_name, sanitize_label_into, unit_word, write_any_value};

const SERVICE_NAME: &str = "service.name";
const SERVICE_NAMESPACE: &str = "service.namespace";
const SERVICE_INSTANCE_ID: &str = "service.instance.id";
pub const TARGET_INFO: &str = "target_info";

/// Labels shared by every point under one scope: `job`, `instance`,
/// `otel_scope_*`, as (name, value) pairs already valid.
#[derive(Default)]
struct SharedLabels {
    pairs: Vec<(String, String)>,
}

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
    labels: LabelSet,
    scratch: String,
    now: u32,
}

impl<'a> Ingester<'a> {
    pub fn new(store: &'a SeriesStore, config: &'a PrometheusExporterConfig) -> Self {
        Self {
            store,
            config,
            labels: LabelSet::new(),
            scratch: String::new(),
            now: store.now_tick(),
        }
    }

    /// Applies every point of the request. Rejected points are counted and
    /// explained in the result; nothing else is lost.
    pub fn ingest(&mut self, request: &MetricsRequest) -> Consumed {
        self.now = self.store.now_tick();
        let mut tally = Tally::default();
        for resource_metrics in &request.resource_metrics {
            let resource = resource_metrics.resource.as_ref();
            let identity = ResourceIdentity::of(resource);
            if self.config.target_info {
                self.write_target_info(resource, &identity, &mut tally);
            }
            for scope_metrics in &resource_metrics.scope_metrics {
                let shared = shared_labels(
                    &identity,
                    scope_metrics.scope.as_ref(),
                    &scope_metrics.schema_url,
                );
                for metric in &scope_metrics.metrics {
                    self.ingest_metric(metric, &shared, &mut tally);
                }
            }
        }
        if tally.out_of_order > 0 {
            self.store
                .telemetry()
                .record_out_of_order(tally.out_of_order);
        }
        if tally.rejected == 0 {
            Consumed::all()
        } else {
            Consumed::rejected(tally.rejected, tally.messages.join("; "))
        }
    }

    fn write_target_info(
        &mut self,
        resource: Option<&Resource>,
        identity: &ResourceIdentity,
        tally: &mut Tally,
    ) {
        let Some(resource) = resource else { return };
        let others = resource
            .attributes
            .iter()
            .filter(|kv| !is_identifying(&kv.key))
            .count();
        if others == 0 || (identity.job.is_none() && identity.instance.is_none()) {
            return;
        }
        let name = if self.config.namespace.is_empty() {
            TARGET_INFO.to_string()
        } else {
            format!("{}_{TARGET_INFO}", self.config.namespace)
        };
        let meta = FamilyMeta {
            name: &name,
            kind: FamilyKind::Gauge,
            help: "Target metadata",
            unit: "",
        };
        self.labels.clear();
        for kv in resource
            .attributes
            .iter()
            .filter(|kv| !is_identifying(&kv.key))
        {
            push_attribute(&mut self.labels, kv);
        }
        identity.push(&mut self.labels);
        self.labels.finish();
        let labels = &self.labels;
        let now = self.now;
        let result = self.store.with_family(meta, |family| {
            let mut series = family.series.lock();
            let (_, new) = series.upsert(
                labels,
                SeriesState::new(SeriesValue::Number(1.0), 0, 0),
                Temporality::Cumulative,
                now,
            );
            new
        });
        match result {
            Ok(true) => self.store.telemetry().series_added(1),
            Ok(false) => {}
            Err(e) => tally.reject(0, e.to_string()),
        }
    }

    fn ingest_metric(&mut self, metric: &Metric, shared: &SharedLabels, tally: &mut Tally) {
        let Some(data) = &metric.data else {
            tally.reject(
                1,
                format!(
                    "metric `{}` has no data (gauge, sum, histogram, exponential histogram or summary)",
                    metric.name
                ),
            );
            return;
        };
        let (shape, kind, points) = match data {
            Data::Gauge(g) => (MetricShape::Gauge, FamilyKind::Gauge, g.data_points.len()),
            Data::Sum(s) if s.is_monotonic => (
                MetricShape::MonotonicSum,
                FamilyKind::Counter,
                s.data_points.len(),
            ),
            Data::Sum(s) => (
                MetricShape::NonMonotonicSum,
                FamilyKind::Gauge,
                s.data_points.len(),
            ),
            Data::Histogram(h) => (
                MetricShape::Histogram,
                FamilyKind::Histogram,
                h.data_points.len(),
            ),
            Data::ExponentialHistogram(h) => (
                MetricShape::Histogram,
                FamilyKind::Histogram,
                h.data_points.len(),
            ),
            Data::Summary(s) => (
                MetricShape::Summary,
                FamilyKind::Summary,
                s.data_points.len(),
            ),
        };
        if points == 0 {
            return;
        }
        let Some(name) = metric_name(
            &metric.name,
            &metric.unit,
            shape,
            &self.config.namespace,
            self.config.add_metric_suffixes,
        ) else {
            tally.reject(
                points as u64,
                format!(
                    "metric name `{}` has no character usable in a Prometheus name",
                    metric.name
                ),
            );
            return;
        };
        let temporality = match data {
            Data::Sum(s) => s.aggregation_temporality,
            Data::Histogram(h) => h.aggregation_temporality,
            Data::ExponentialHistogram(h) => h.aggregation_temporality,
            _ => AggregationTemporality::Cumulative as i32,
        };
        let temporality = if temporality == AggregationTemporality::Delta as i32 {
            Temporality::Delta
        } else if temporality == AggregationTemporality::Cumulative as i32 {
            Temporality::Cumulative
        } else {
            tally.reject(
                points as u64,
                format!(
                    "metric `{}` has unspecified aggregation temporality",
                    metric.name
                ),
            );
            return;
        };
        let unit = unit_word(&metric.unit);
        let meta = FamilyMeta {
            name: &name,
            kind,
            help: &metric.description,
            unit: &unit,
        };
        let now = self.now;
        let labels = &mut self.labels;
        let scratch = &mut self.scratch;
        let result = self.store.with_family(meta, |family| {
            let mut series = family.series.lock();
            let mut writer = PointWriter {
                series: &mut series,
                labels,
                scratch,
                shared,
                temporality,
                now,
                metric_name: &metric.name,
                exposition_label: match kind {
                    FamilyKind::Histogram => Some("le"),
                    FamilyKind::Summary => Some("quantile"),
                    _ => None,
                },
                tally,
                added: 0,
                removed: 0,
            };
            match data {
                Data::Gauge(g) => g.data_points.iter().for_each(|p| writer.number(p)),
                Data::Sum(s) => s.data_points.iter().for_each(|p| writer.number(p)),
                Data::Histogram(h) => h.data_points.iter().for_each(|p| writer.histogram(p)),
                Data::ExponentialHistogram(h) => {
                    h.data_points.iter().for_each(|p| writer.exponential(p))
                }
                Data::Summary(s) => s.data_points.iter().for_each(|p| writer.summary(p)),
            }
            (writer.added, writer.removed)
        });
        match result {
            Ok((added, removed)) => {
                let telemetry = self.store.telemetry();
                if added > 0 {
                    telemetry.series_added(added);
                }
                if removed > 0 {
                    telemetry.series_removed(removed);
                }
            }
            Err(e) => tally.reject(points as u64, e.to_string()),
        }
    }
}

/// Writes the points of one metric into its family's series table.
struct PointWriter<'s> {
    series: &'s mut SeriesTable,
    labels: &'s mut LabelSet,
    scratch: &'s mut String,
    shared: &'s SharedLabels,
    temporality: Temporality,
    now: u32,
    metric_name: &'s str,
    /// The label the exposition adds to this kind (`le`, `quantile`).
    exposition_label: Option<&'static str>,
    tally: &'s mut Tally,
    added: u64,
    removed: u64,
}

impl PointWriter<'_> {
    /// Builds the label set of a point; returns false if the point says
    /// "no recorded value" (the series was removed instead).
    fn prepare(&mut self, attributes: &[KeyValue], flags: u32) -> bool {
        self.labels.clear();
        for kv in attributes {
            // `le` / `quantile` are written by the exposition itself; an
            // attribute of that name would duplicate the label.
            if Some(kv.key.as_str()) != self.exposition_label {
                push_attribute(self.labels, kv);
            }
        }
        for (name, value) in &self.shared.pairs {
            self.labels.push_str(name, value, LabelSource::Derived);
        }
        self.labels.finish();
        if flags & DataPointFlags::NoRecordedValueMask as u32 != 0 {
            if self.series.remove(self.labels) {
                self.removed += 1;
            }
            return false;
        }
        true
    }

    fn store(&mut self, state: SeriesState, temporality: Temporality) {
        let (applied, new) = self
            .series
            .upsert(self.labels, state, temporality, self.now);
        self.count(applied, new);
    }

    fn count(&mut self, applied: Applied, new: bool) {
        if new {
            self.added += 1;
        }
        if applied == Applied::OutOfOrder {
            self.tally.out_of_order += 1;
        }
    }

    fn reject(&mut self, why: &str) {
        self.scratch.clear();
        let _ = write!(self.scratch, "metric `{}`: {why}", self.metric_name);
        self.tally.reject(1, self.scratch.clone());
    }

    fn number(&mut self, point: &NumberDataPoint) {
        let value = match point.value {
            Some(number_data_point::Value::AsDouble(v)) => v,
            Some(number_data_point::Value::AsInt(v)) => v as f64,
            None if point.flags & DataPointFlags::NoRecordedValueMask as u32 != 0 => 0.0,
            None => return self.reject("a number point has no value"),
        };
        if !self.prepare(&point.attributes, point.flags) {
            return;
        }
        let state = SeriesState::new(
            SeriesValue::Number(value),
            point.start_time_unix_nano,
            point.time_unix_nano,
        );
        let temporality = self.temporality;
        let exemplar = point.exemplars.iter().rev().find_map(stored_exemplar);
        let (applied, new) = self.series.upsert_with(
            self.labels,
            self.now,
            || state.clone(),
            |existing| existing.apply(state.clone(), temporality),
        );
        if let Some(e) = exemplar.filter(|_| applied == Applied::Updated) {
            self.series
                .with_state(self.labels, |s| s.record_exemplar(0, 1, e));
        }
        self.count(applied, new);
    }

    fn histogram(&mut self, point: &HistogramDataPoint) {
        let bounds = &point.explicit_bounds;
        let counts = &point.bucket_counts;
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
        if !self.prepare(&point.attributes, point.flags) {
            return;
        }
        let incoming = HistogramPoint {
            start_ns: point.start_time_unix_nano,
            time_ns: point.time_unix_nano,
            bounds,
            counts,
            count: point.count,
            sum: point.sum,
        };
        let temporality = self.temporality;
        let (applied, new) = self.series.upsert_with(
            self.labels,
            self.now,
            || incoming.to_state(),
            |state| state.apply_histogram(&incoming, temporality),
        );
        if applied == Applied::Updated && !point.exemplars.is_empty() {
            let slots = bounds.len() + 1;
            self.series.with_state(self.labels, |s| {
                for e in point.exemplars.iter().filter_map(stored_exemplar) {
                    s.record_exemplar(bounds.partition_point(|b| *b < e.value), slots, e);
                }
            });
        }
        self.count(applied, new);
    }

    fn exponential(&mut self, point: &ExponentialHistogramDataPoint) {
        if point.flags & DataPointFlags::NoRecordedValueMask as u32 == 0
            && !(-10..=20).contains(&point.scale)
        {
            return self.reject(&format!(
                "exponential histogram scale {} is outside -10..=20",
                point.scale
            ));
        }
        if !self.prepare(&point.attributes, point.flags) {
            return;
        }
        let buckets = |b: &Option<_>| match b {
            Some(crate::model::otlp::metrics::exponential_histogram_data_point::Buckets {
                offset,
                bucket_counts,
            }) => Buckets {
                offset: *offset,
                counts: bucket_counts.clone(),
            },
            None => Buckets::default(),
        };
        let value = ExponentialHistogram {
            scale: point.scale,
            zero_threshold: point.zero_threshold,
            zero_count: point.zero_count,
            positive: buckets(&point.positive),
            negative: buckets(&point.negative),
            count: point.count,
            sum: point.sum,
        };
        let state = SeriesState::new(
            SeriesValue::Exponential(Box::new(value)),
            point.start_time_unix_nano,
            point.time_unix_nano,
        );
        self.store(state, self.temporality);
    }

    fn summary(&mut self, point: &SummaryDataPoint) {
        if !self.prepare(&point.attributes, point.flags) {
            return;
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
            point.start_time_unix_nano,
            point.time_unix_nano,
        );
        // Summaries are always cumulative.
        self.store(state, Temporality::Cumulative);
    }
}

/// An OTLP exemplar with a trace and span id, as stored.
fn stored_exemplar(e: &crate::model::otlp::metrics::Exemplar) -> Option<StoredExemplar> {
    use crate::model::otlp::metrics::exemplar::Value;
    let value = match e.value? {
        Value::AsDouble(v) => v,
        Value::AsInt(v) => v as f64,
    };
    Some(StoredExemplar {
        trace_id: e.trace_id.as_slice().try_into().ok()?,
        span_id: e.span_id.as_slice().try_into().ok()?,
        value,
        time_ns: e.time_unix_nano,
    })
}

fn is_identifying(key: &str) -> bool {
    matches!(key, SERVICE_NAME | SERVICE_NAMESPACE | SERVICE_INSTANCE_ID)
}

fn push_attribute(labels: &mut LabelSet, kv: &KeyValue) {
    labels.push(
        &kv.key,
        |b| sanitize_label_into(&kv.key, b),
        |b| write_any_value(kv.value.as_ref(), b),
        LabelSource::Attribute,
    );
}

/// `job` and `instance` of a resource.
struct ResourceIdentity {
    job: Option<String>,
    instance: Option<String>,
}

impl ResourceIdentity {
    fn of(resource: Option<&Resource>) -> Self {
        let mut name = None;
        let mut namespace = None;
        let mut instance = None;
        for kv in resource
            .map(|r| r.attributes.as_slice())
            .unwrap_or_default()
        {
            let slot = match kv.key.as_str() {
                SERVICE_NAME => &mut name,
                SERVICE_NAMESPACE => &mut namespace,
                SERVICE_INSTANCE_ID => &mut instance,
                _ => continue,
            };
            let mut text = String::new();
            write_any_value(kv.value.as_ref(), &mut text);
            *slot = Some(text).filter(|t| !t.is_empty());
        }
        let job = match (namespace, name) {
            (Some(ns), Some(name)) => Some(format!("{ns}/{name}")),
            (None, Some(name)) => Some(name),
            _ => None,
        };
        Self { job, instance }
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

fn shared_labels(
    identity: &ResourceIdentity,
    scope: Option<&InstrumentationScope>,
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
            pairs.push(("otel_scope_name".into(), scope.name.clone()));
        }
        if !scope.version.is_empty() {
            pairs.push(("otel_scope_version".into(), scope.version.clone()));
        }
        for kv in &scope.attributes {
            let mut name = String::new();
            sanitize_label_into(&format!("otel_scope_{}", kv.key), &mut name);
            let mut value = String::new();
            write_any_value(kv.value.as_ref(), &mut value);
            if !name.is_empty() && !value.is_empty() {
                pairs.push((name, value));
            }
        }
    }
    if !schema_url.is_empty() {
        pairs.push(("otel_scope_schema_url".into(), schema_url.to_string()));
    }
    SharedLabels { pairs }
}
