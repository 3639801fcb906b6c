//! The window processor: rolling windows over selected series.
//!
//! It sits in front of the exporter as a [`MetricsConsumer`]: matching
//! gauges (each point is a sample), histograms and delta exponential
//! histograms (bucket increments, spread evenly inside each bucket) are fed
//! into a [`WindowedStats`] per series, then the request is passed on
//! unchanged. As an [`ObservationConsumer`] it takes raw values from
//! connectors (span durations), which keep the sketch's 1 % relative error
//! end to end.
//!
//! Every `interval` it emits, per series and window (`window="5m"`), with
//! the series' own resource, scope and attributes so the results join
//! with their source in PromQL:
//! `{name}.window.p50`, `.p95`, `.p99` (one metric per configured
//! quantile, unit of the source), `{name}.window.mean`, `.min`, `.max`,
//! `.observations` and `.rate` (per second); for span durations for
//! example `traces_span_metrics_duration_window_p95_seconds{window="5m"}`.
//! (A `quantile` label is reserved for summaries in Prometheus, hence one
//! name per quantile.) A window that empties is withdrawn
//! (NoRecordedValue) instead of showing stale values.

pub mod config;
mod durable;

mod stream;

use crate::model::MetricsBatch;
use crate::model::otlp::ItemCount;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::analytics::aggregation::{WindowSpec, WindowSummary, WindowedStats};
use crate::model::otlp::common::KeyValue;
use crate::model::otlp::metrics::{
    DataPointFlags, Gauge, Metric, NumberDataPoint, metric::Data, number_data_point,
};
use crate::model::{MetricsRequest, Observations};
use crate::pipeline::{ConsumeResult, MetricsConsumer, ObservationConsumer, Shutdown};
use crate::processors::output::{derived, string_kv};
use crate::telemetry::Telemetry;

use crate::model::wire::{Attributes, MetricData, MetricView};
use crate::processors::identity::{ByIdentity, ScopeSource, scope_identity, stream_hash};
use crate::processors::pattern::Selection;
pub use config::WindowsConfig;
use stream::{LastHistogram, Stream, observe_bucket};

/// Relative accuracy of the sketches: quantiles within 1 %.
const RELATIVE_ACCURACY: f64 = 0.005;
/// Most bins per sketch (covers nine decades at this accuracy).
const MAX_BINS: usize = 2048;
/// Distinct values a bucket increment is spread over.
const BUCKET_SPREAD: u64 = 16;

/// The processor. Shared as `Arc<WindowProcessor>`.
pub struct WindowProcessor {
    config: WindowsConfig,
    specs: Vec<WindowSpec>,
    labels: Vec<String>,
    selection: Selection,
    /// Boxed, as the analysis processor's series.
    streams: Mutex<ByIdentity<Box<Stream>>>,
    downstream: Arc<dyn MetricsConsumer>,
    telemetry: Arc<Telemetry>,
}

/// Unix time now, in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl WindowProcessor {
    pub fn new(
        config: WindowsConfig,
        downstream: Arc<dyn MetricsConsumer>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let specs = config
            .windows
            .iter()
            .map(|w| WindowSpec::new(w.get().as_secs(), config.sub_buckets))
            .collect();
        let labels = config.windows.iter().map(|w| w.to_string()).collect();
        Self {
            selection: Selection::new(&config.include, &config.exclude),
            specs,
            labels,
            streams: Mutex::new(ByIdentity::default()),
            config,
            downstream,
            telemetry,
        }
    }

    /// Series analysed now.
    pub fn series(&self) -> usize {
        self.streams.lock().len()
    }

    /// Finds the stream of identity `hash`, or creates it with `make`;
    /// `None` when `max_series` is reached.
    fn stream<'a>(
        &self,
        streams: &'a mut ByIdentity<Box<Stream>>,
        now_ms: u64,
        hash: u64,
        make: impl FnOnce(WindowedStats, usize) -> Stream,
    ) -> Option<&'a mut Stream> {
        let full = streams.len() >= self.config.max_series;
        let stream = match streams.entry(hash) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if full => {
                self.telemetry.record_windows_skipped(1);
                return None;
            }
            Entry::Vacant(e) => {
                let stats = WindowedStats::new(&self.specs, RELATIVE_ACCURACY, MAX_BINS);
                e.insert(Box::new(make(stats, self.specs.len())))
            }
        };
        stream.last_seen_ms = stream.last_seen_ms.max(now_ms);
        Some(stream)
    }

    /// Feeds the selected metrics of a request at `now_ms`, read in place.
    /// Requests with no selected metric cost a name match per metric and
    /// take no lock.
    ///
    /// Gauge samples go in two passes, as in the analysis processor: their
    /// identities are hashed without the lock, then their streams are
    /// probed back to back under it, so the probes' cache misses overlap.
    /// A second walk creates the streams first seen in this request and
    /// feeds the histograms.
    pub fn observe_request(&self, request: &MetricsBatch, now_ms: u64) {
        let view = request.view();
        if !view.metric_names().any(|name| self.selection.selects(name)) {
            return;
        }
        let mut scratch = Scratch::default();
        let mut samples = Vec::with_capacity(request.item_count() as usize);
        let mut histograms = false;
        ScopeSource::each_scope(view, |source, metrics| {
            for metric in metrics.iter().filter(|m| self.selection.selects(m.name)) {
                let points = match metric.data {
                    Some(MetricData::Gauge(points)) => points,
                    Some(MetricData::Histogram { .. })
                    | Some(MetricData::Exponential {
                        temporality: DELTA, ..
                    }) => {
                        histograms = true;
                        continue;
                    }
                    // Sums and summaries do not feed windows.
                    _ => continue,
                };
                for p in points.iter() {
                    if let Some(value) = p.value {
                        let hash = stream_hash(
                            source.identity,
                            metric.name,
                            &p.attributes,
                            &mut scratch.encoded,
                        );
                        samples.push((hash, value));
                    }
                }
            }
        });
        let mut streams = self.streams.lock();
        let mut missing = Vec::new();
        for (i, &(hash, value)) in samples.iter().enumerate() {
            match streams.get_mut(&hash) {
                Some(s) => {
                    s.last_seen_ms = s.last_seen_ms.max(now_ms);
                    if !s.raw_values {
                        s.stage(now_ms, value);
                    }
                }
                None => missing.push(i),
            }
        }
        if missing.is_empty() && !histograms {
            return;
        }
        let mut missing = missing.into_iter().peekable();
        let mut index = 0;
        ScopeSource::each_scope(view, |source, metrics| {
            for metric in metrics.iter().filter(|m| self.selection.selects(m.name)) {
                let Some(MetricData::Gauge(points)) = metric.data else {
                    self.observe_metric(&mut streams, source, &metric, now_ms, &mut scratch);
                    continue;
                };
                if missing.peek().is_none() {
                    continue;
                }
                for p in points.iter() {
                    let Some(value) = p.value else { continue };
                    let this = index;
                    index += 1;
                    if missing.next_if_eq(&this).is_none() {
                        continue;
                    }
                    if let Some(s) = self.point_stream(
                        &mut streams,
                        source,
                        &metric,
                        &p.attributes,
                        now_ms,
                        &mut scratch.encoded,
                    ) {
                        s.stage(now_ms, value);
                    }
                }
            }
        });
    }

    /// The stream of a point read in place (created on first sight);
    /// `None` when it cannot be created or is fed raw values instead.
    fn point_stream<'s>(
        &self,
        streams: &'s mut ByIdentity<Box<Stream>>,
        source: &ScopeSource<'_, '_>,
        metric: &MetricView<'_>,
        attributes: &Attributes<'_>,
        now_ms: u64,
        encoded: &mut Vec<u8>,
    ) -> Option<&'s mut Stream> {
        let hash = stream_hash(source.identity, metric.name, attributes, encoded);
        self.stream(streams, now_ms, hash, |stats, windows| {
            Stream::new(
                &source.identifying_resource(),
                &source.owned_scope(),
                metric.name,
                metric.unit,
                &attributes.to_owned_vec(),
                stats,
                windows,
            )
        })
        .filter(|s| !s.raw_values)
    }

    /// Feeds the points of a histogram or delta exponential histogram
    /// metric (gauges go through `observe_request`'s two passes).
    fn observe_metric(
        &self,
        streams: &mut ByIdentity<Box<Stream>>,
        source: &ScopeSource<'_, '_>,
        metric: &MetricView<'_>,
        now_ms: u64,
        scratch: &mut Scratch,
    ) {
        match metric.data {
            Some(MetricData::Histogram {
                points,
                temporality,
            }) => {
                for p in points.iter() {
                    scratch.counts.clear();
                    scratch.bounds.clear();
                    p.bucket_counts.read_into(&mut scratch.counts);
                    p.explicit_bounds.read_doubles_into(&mut scratch.bounds);
                    let (counts, bounds) = (&scratch.counts, &scratch.bounds);
                    if counts.len() != bounds.len() + 1 {
                        continue;
                    }
                    let Some(s) = self.point_stream(
                        streams,
                        source,
                        metric,
                        &p.attributes,
                        now_ms,
                        &mut scratch.encoded,
                    ) else {
                        continue;
                    };
                    let increments: Vec<u64> = if temporality == DELTA {
                        counts.clone()
                    } else {
                        let previous = s.last_histogram.replace(LastHistogram {
                            start_ns: p.start_ns,
                            bounds: bounds.clone(),
                            counts: counts.clone(),
                        });
                        match previous {
                            // First sight of a cumulative series: its history
                            // is unknown, so it only sets the baseline.
                            None => continue,
                            Some(prev)
                                if prev.bounds == *bounds
                                    && prev.start_ns == p.start_ns
                                    && prev.counts.iter().zip(counts).all(|(a, b)| b >= a) =>
                            {
                                counts
                                    .iter()
                                    .zip(&prev.counts)
                                    .map(|(now, before)| now - before)
                                    .collect()
                            }
                            // A reset (new start or fewer counts): all of it is new.
                            Some(_) => counts.clone(),
                        }
                    };
                    for (i, n) in increments.iter().enumerate() {
                        let low = if i == 0 {
                            bounds.first().copied().unwrap_or(0.0).min(0.0)
                        } else {
                            bounds[i - 1]
                        };
                        let high = bounds.get(i).copied().unwrap_or(f64::INFINITY);
                        observe_bucket(&mut s.stats, now_ms, low, high, *n, BUCKET_SPREAD);
                    }
                }
            }
            Some(MetricData::Exponential {
                points,
                temporality: DELTA,
            }) => {
                for p in points.iter() {
                    let Some(s) = self.point_stream(
                        streams,
                        source,
                        metric,
                        &p.attributes,
                        now_ms,
                        &mut scratch.encoded,
                    ) else {
                        continue;
                    };
                    let base_log2 = (-(p.scale as f64)).exp2();
                    if p.zero_count > 0 {
                        s.stats.observe_n(now_ms, 0.0, p.zero_count);
                    }
                    if let Some(b) = &p.positive {
                        scratch.counts.clear();
                        b.counts.read_into(&mut scratch.counts);
                        for (i, n) in scratch.counts.iter().enumerate() {
                            let index = b.offset as f64 + i as f64;
                            let low = (index * base_log2).exp2();
                            let high = ((index + 1.0) * base_log2).exp2();
                            observe_bucket(&mut s.stats, now_ms, low, high, *n, BUCKET_SPREAD);
                        }
                    }
                }
            }
            _ => {}
        }
    }

    /// Feeds raw values at `now_ms`.
    pub fn observe_values(&self, batch: &Observations<'_>, now_ms: u64) {
        if !self.selection.selects(batch.metric) {
            return;
        }
        let identity = scope_identity(batch.resource, &batch.scope.name, &batch.scope.version);
        let hash = stream_hash(identity, batch.metric, batch.attributes, &mut Vec::new());
        let mut streams = self.streams.lock();
        if let Some(s) = self.stream(&mut streams, now_ms, hash, |stats, windows| {
            Stream::new(
                batch.resource,
                batch.scope,
                batch.metric,
                batch.unit,
                batch.attributes,
                stats,
                windows,
            )
        }) {
            s.raw_values = true;
            for v in batch.values {
                s.stats.observe(now_ms, *v);
            }
        }
    }

    /// Computes every window at `now_ms`; drops series idle for longer
    /// than the longest window. Returns the request to export.
    pub fn evaluate(&self, now_ms: u64) -> MetricsRequest {
        let now_ns = now_ms * 1_000_000;
        let mut streams = self.streams.lock();
        let mut summaries: Vec<WindowSummary> = Vec::new();
        let mut resource_metrics = Vec::new();
        // A series is dropped once nothing arrived for the longest window
        // and nothing of it is left on /metrics.
        let longest_ms = self
            .specs
            .iter()
            .map(|w| w.length_secs * 1000)
            .max()
            .unwrap_or(0);
        streams.retain(|_, s| {
            now_ms.saturating_sub(s.last_seen_ms) <= longest_ms || s.exported.iter().any(|e| *e)
        });
        for stream in streams.values_mut() {
            stream.flush();
            summaries.clear();
            stream
                .stats
                .summaries(now_ms, &self.config.quantiles, &mut summaries);
            let metrics = self.window_metrics(stream, &summaries, now_ns);
            if metrics.is_empty() {
                continue;
            }
            resource_metrics.push(derived(&stream.resource, &stream.scope, metrics));
        }
        self.telemetry.set_windows_series(streams.len() as u64);
        MetricsRequest { resource_metrics }
    }

    fn window_metrics(
        &self,
        stream: &mut Stream,
        summaries: &[WindowSummary],
        now_ns: u64,
    ) -> Vec<Metric> {
        let mut quantiles: Vec<Vec<NumberDataPoint>> =
            vec![Vec::new(); self.config.quantiles.len()];
        let mut mean = Vec::new();
        let mut min = Vec::new();
        let mut max = Vec::new();
        let mut observations = Vec::new();
        let mut rate = Vec::new();
        let point = |attributes: Vec<KeyValue>, value: f64| NumberDataPoint {
            attributes,
            time_unix_nano: now_ns,
            value: Some(number_data_point::Value::AsDouble(value)),
            ..Default::default()
        };
        let withdraw = |attributes: Vec<KeyValue>| NumberDataPoint {
            attributes,
            time_unix_nano: now_ns,
            flags: DataPointFlags::NoRecordedValueMask as u32,
            ..Default::default()
        };
        for (w, summary) in summaries.iter().enumerate() {
            let mut attrs = stream.attributes.clone();
            attrs.push(string_kv("window", &self.labels[w]));
            if summary.count > 0 {
                stream.exported[w] = true;
                for (i, (_, v)) in summary.quantiles.iter().enumerate() {
                    if let Some(points) = quantiles.get_mut(i) {
                        points.push(point(attrs.clone(), *v));
                    }
                }
                mean.extend(summary.mean.map(|v| point(attrs.clone(), v)));
                min.extend(summary.min.map(|v| point(attrs.clone(), v)));
                max.extend(summary.max.map(|v| point(attrs.clone(), v)));
            } else if stream.exported[w] {
                stream.exported[w] = false;
                for points in &mut quantiles {
                    points.push(withdraw(attrs.clone()));
                }
                mean.push(withdraw(attrs.clone()));
                min.push(withdraw(attrs.clone()));
                max.push(withdraw(attrs.clone()));
            }
            observations.push(point(attrs.clone(), summary.count as f64));
            rate.push(point(attrs, summary.rate_per_sec));
        }
        let unit = stream.unit.as_str();
        let name = &stream.metric;
        let gauge =
            |suffix: &str, unit: &str, description: &str, points: Vec<NumberDataPoint>| Metric {
                name: format!("{name}.window.{suffix}"),
                unit: unit.to_string(),
                description: description.to_string(),
                data: Some(Data::Gauge(Gauge {
                    data_points: points,
                })),
                ..Default::default()
            };
        let mut metrics: Vec<Metric> = quantiles
            .into_iter()
            .zip(&self.config.quantiles)
            .map(|(points, q)| {
                gauge(
                    &quantile_name(*q),
                    unit,
                    &format!(
                        "The {} quantile of the values in the window (sketch, 1% relative error).",
                        q
                    ),
                    points,
                )
            })
            .collect();
        metrics.extend([
            gauge("mean", unit, "Mean of the values in the window.", mean),
            gauge("min", unit, "Smallest value in the window.", min),
            gauge("max", unit, "Largest value in the window.", max),
            gauge(
                "observations",
                "{observation}",
                "Values observed in the window.",
                observations,
            ),
            gauge(
                "rate",
                "1/s",
                "Values observed per second over the window.",
                rate,
            ),
        ]);
        metrics.retain(|m| crate::model::otlp::metric_point_count(m) > 0);
        metrics
    }

    /// Evaluates every `interval` and exports, until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let this = &self;
        shutdown
            .every(self.config.interval.get(), move || async move {
                this.export_once()
            })
            .await;
    }

    /// One evaluation, exported unless it is empty.
    fn export_once(&self) {
        let request = self.evaluate(now_ms());
        if request.resource_metrics.is_empty() {
            return;
        }
        match self
            .downstream
            .consume_metrics(&MetricsBatch::from_request(request))
        {
            Ok(outcome) if outcome.rejected > 0 => tracing::warn!(
                rejected = outcome.rejected,
                "window series were rejected downstream: {}",
                outcome.message
            ),
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "window series not exported"),
        }
    }
}

/// `p50`, `p95`, `p99`, `p99.9` for 0.5, 0.95, 0.99, 0.999 (the dot
/// becomes `_` in the Prometheus name: `…_window_p99_9_seconds`).
pub fn quantile_name(q: f64) -> String {
    let percent = q * 100.0;
    let text = format!("{percent:.4}");
    let text = text.trim_end_matches('0').trim_end_matches('.');
    format!("p{text}")
}

impl MetricsConsumer for WindowProcessor {
    fn consume_metrics(&self, request: &MetricsBatch) -> ConsumeResult {
        self.observe_request(request, now_ms());
        self.downstream.consume_metrics(request)
    }
}

/// Aggregation temporality `DELTA`.
const DELTA: i32 = 1;

/// Buffers reused across the points of a request.
#[derive(Default)]
struct Scratch {
    encoded: Vec<u8>,
    counts: Vec<u64>,
    bounds: Vec<f64>,
}

impl ObservationConsumer for WindowProcessor {
    fn observe(&self, batch: &Observations<'_>) {
        self.observe_values(batch, now_ms());
    }
}

#[cfg(test)]
mod tests;
