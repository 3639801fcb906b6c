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
//! Every `interval` it computes, per series and window, the figures it
//! shows, and keeps them with the series. As a [`DerivedSource`] it gives
//! the exporter, on every `/metrics` and remote-write walk, per series and
//! window (`window="5m"`), with the series' own resource, scope and
//! attributes (one label block per series, built by the exporter's
//! translation when the series is created) so the results join with their
//! source in PromQL: `{name}.window.p50`, `.p95`, `.p99` (one metric per
//! configured quantile, unit of the source), `{name}.window.mean`, `.min`,
//! `.max`, `.observations` and `.rate` (per second); for span durations
//! for example `traces_span_metrics_duration_window_p95_seconds{window="5m"}`.
//! (A `quantile` label is reserved for summaries in Prometheus, hence one
//! name per quantile.) A window that is empty shows only its observations
//! and rate (0). The gauges the analysis processor selects are also handed
//! to it on each interval ([`DerivedObserver`]), not stored.

pub mod config;
mod durable;

mod stream;

use crate::model::MetricsBatch;
use crate::model::otlp::ItemCount;
use std::borrow::Cow;
use std::collections::hash_map::Entry;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::analytics::aggregation::{WindowSpec, WindowSummary, WindowedStats};
use crate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, metric::Data, number_data_point,
};
use crate::model::{MetricsRequest, Observations};
use crate::pipeline::derived::{
    BlockParts, DerivedFamily, DerivedObserver, DerivedSource, LabelTranslator, SampleSink,
    set_aside_added_labels,
};
use crate::pipeline::{ConsumeResult, MetricsConsumer, ObservationConsumer, Shutdown};
use crate::processors::output::{derived, string_kv};
use crate::telemetry::Telemetry;

use crate::model::wire::{Attributes, MetricData, MetricView};
use crate::processors::identity::{ByIdentity, ScopeSource, scope_identity, stream_hash};
use crate::processors::pattern::Selection;
use crate::processors::refused::RefusedIdentities;
pub use config::WindowsConfig;
use stream::{LastHistogram, STAT_BITS, Stream, StreamOrigin, observe_bucket};

/// Relative accuracy of the sketches: quantiles within 1 %.
const RELATIVE_ACCURACY: f64 = 0.005;
/// Most bins per sketch (covers nine decades at this accuracy).
const MAX_BINS: usize = 2048;
/// Distinct values a bucket increment is spread over.
const BUCKET_SPREAD: u64 = 16;
/// Series evaluated per lock of the stream map, and so at most in one
/// batch of gauges handed to the observer.
const EVALUATED_PER_LOCK: usize = 128;

/// The processor. Shared as `Arc<WindowProcessor>`.
pub struct WindowProcessor {
    config: WindowsConfig,
    /// Empty windows of the configured specs: every series' are made
    /// like it and share its layout.
    empty: WindowedStats,
    labels: Vec<String>,
    selection: Selection,
    /// Boxed, as the analysis processor's series.
    streams: Mutex<ByIdentity<Box<Stream>>>,
    downstream: Arc<dyn MetricsConsumer>,
    /// The exporter's label translation, for each series' label block.
    translator: Arc<dyn LabelTranslator>,
    /// Takes the window gauges it wants on each interval (the analysis
    /// processor).
    observer: Option<Arc<dyn DerivedObserver>>,
    telemetry: Arc<Telemetry>,
    /// When this processor started (Unix ns): a cumulative histogram
    /// first seen with a start time since then is counted whole.
    started_ns: u64,
    /// Identities refused for their labels: their points are counted as
    /// skipped without their labels being translated again, until silent
    /// for the longest window.
    refused: RefusedIdentities,
}

/// What a derived family shows, after the configured quantiles (which
/// come first, in their order).
const MEAN: usize = 0;
const MIN: usize = 1;
const MAX: usize = 2;
const OBSERVATIONS: usize = 3;
const RATE: usize = 4;
/// Figures per window besides the quantiles.
const OTHER_STATS: usize = 5;

/// Unix time now, in milliseconds.
pub fn now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

impl WindowProcessor {
    /// A processor passing requests on to `downstream`, its gauges
    /// labelled by `translator` and the ones `observer` wants handed to it.
    pub fn new(
        config: WindowsConfig,
        downstream: Arc<dyn MetricsConsumer>,
        translator: Arc<dyn LabelTranslator>,
        observer: Option<Arc<dyn DerivedObserver>>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let specs: Vec<WindowSpec> = config
            .windows
            .iter()
            .map(|w| WindowSpec::new(w.get().as_secs(), config.sub_buckets))
            .collect();
        let labels = config.windows.iter().map(|w| w.to_string()).collect();
        Self {
            selection: Selection::new(&config.include, &config.exclude),
            empty: WindowedStats::new(&specs, RELATIVE_ACCURACY, MAX_BINS),
            labels,
            streams: Mutex::new(ByIdentity::default()),
            config,
            downstream,
            translator,
            observer,
            telemetry,
            refused: RefusedIdentities::new("a series gets no windows"),
            started_ns: std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_nanos() as u64),
        }
    }

    /// Figures kept per window: one per quantile, then [`OTHER_STATS`].
    fn stats_per_window(&self) -> usize {
        self.config.quantiles.len() + OTHER_STATS
    }

    /// A new stream for `origin`, its gauges' label block built by the
    /// exporter's translation; why not when that block, with the `window`
    /// label, breaks the exporter's label limits, as the exporter would
    /// refuse such a point.
    fn new_stream(&self, origin: StreamOrigin<'_>, stats: WindowedStats) -> Result<Stream, String> {
        let resource = StreamOrigin::identifying(origin.resource);
        // The gauges add `window`: a source attribute of that name is
        // kept as `exported_window`.
        let renamed = set_aside_added_labels(origin.attributes, &["window"]);
        let attributes = renamed.as_deref().unwrap_or(origin.attributes);
        let block = self
            .translator
            .label_block(&resource, origin.scope, attributes)?;
        Ok(Stream::new(
            StreamOrigin {
                resource: &resource,
                attributes,
                ..origin
            },
            block.text.into_boxed_str(),
            stats,
            self.empty.specs().len() * self.stats_per_window(),
        ))
    }

    /// Series analysed now.
    pub fn series(&self) -> usize {
        self.streams.lock().len()
    }

    /// Finds the stream of identity `hash`, or creates it with `make`;
    /// `None` (counted as skipped) when `max_series` is reached or `make`
    /// refuses it.
    fn stream<'a>(
        &self,
        streams: &'a mut ByIdentity<Box<Stream>>,
        now_ms: u64,
        hash: u64,
        make: impl FnOnce(WindowedStats) -> Result<Stream, String>,
    ) -> Option<&'a mut Stream> {
        let full = streams.len() >= self.config.max_series;
        let stream = match streams.entry(hash) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(_) if full => {
                self.telemetry.record_windows_skipped(1);
                return None;
            }
            Entry::Vacant(e) => {
                let now_secs = now_ms as f64 / 1000.0;
                if self.refused.seen_again(hash, now_secs) {
                    self.telemetry.record_windows_skipped(1);
                    return None;
                }
                match make(self.empty.empty_like()) {
                    Ok(made) => e.insert(Box::new(made)),
                    Err(why) => {
                        self.refused.refuse(hash, now_secs, &why);
                        self.telemetry.record_windows_skipped(1);
                        return None;
                    }
                }
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
                        samples.push((hash, value, p.time_ns));
                    }
                }
            }
        });
        let mut streams = self.streams.lock();
        let mut missing = Vec::new();
        for (i, &(hash, value, time_ns)) in samples.iter().enumerate() {
            match streams.get_mut(&hash) {
                Some(s) => {
                    s.last_seen_ms = s.last_seen_ms.max(now_ms);
                    if !s.raw_values && s.take_point(time_ns) {
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
                    ) && s.take_point(p.time_ns)
                    {
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
        self.stream(streams, now_ms, hash, |stats| {
            let origin = StreamOrigin {
                resource: &source.identifying_resource(),
                scope: &source.owned_scope(),
                metric: metric.name,
                unit: metric.unit,
                attributes: &attributes.to_owned_vec(),
            };
            self.new_stream(origin, stats)
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
                    if !s.take_point(p.time_ns) {
                        continue;
                    }
                    let increments: Vec<u64> = if temporality == DELTA {
                        counts.clone()
                    } else {
                        let fresh = LastHistogram {
                            start_ns: p.start_ns,
                            bounds: bounds.clone(),
                            counts: counts.clone(),
                        };
                        let previous = match &mut s.last_histogram {
                            Some(kept) => Some(std::mem::replace(&mut **kept, fresh)),
                            None => {
                                s.last_histogram = Some(Box::new(fresh));
                                None
                            }
                        };
                        match previous {
                            // First sight of a cumulative series that
                            // started while this processor ran: all of
                            // it happened since, so all of it is new.
                            None if p.start_ns != 0 && p.start_ns >= self.started_ns => {
                                counts.clone()
                            }
                            // Otherwise its history is unknown, so it
                            // only sets the baseline.
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
                    if !s.take_point(p.time_ns) {
                        continue;
                    }
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
        if let Some(s) = self.stream(&mut streams, now_ms, hash, |stats| {
            let origin = StreamOrigin {
                resource: batch.resource,
                scope: batch.scope,
                metric: batch.metric,
                unit: batch.unit,
                attributes: batch.attributes,
            };
            self.new_stream(origin, stats)
        }) {
            s.raw_values = true;
            for v in batch.values {
                s.stats.observe(now_ms, *v);
            }
        }
    }

    /// Computes every window at `now_ms` (what `/metrics` shows of them
    /// changes with it), drops series idle for longer than the longest
    /// window, and hands the observer the gauges it wants, one batch per
    /// [`EVALUATED_PER_LOCK`] series: the stream map is locked for one
    /// batch at a time (ingest waits for at most that many series), and
    /// the gauges built for the observer, owned OTLP with each series'
    /// labels, are at most one batch's worth at any time, however many
    /// series there are.
    pub fn evaluate(&self, now_ms: u64) {
        // Once nothing arrived for the longest window, every window of a
        // series is empty: it has nothing left to show.
        let longest_ms = self
            .empty
            .specs()
            .map(|w| w.length_secs * 1000)
            .max()
            .unwrap_or(0);
        let hashes: Vec<u64> = {
            let mut streams = self.streams.lock();
            streams.retain(|_, s| now_ms.saturating_sub(s.last_seen_ms) <= longest_ms);
            self.telemetry.set_windows_series(streams.len() as u64);
            streams.keys().copied().collect()
        };
        self.refused
            .expire(now_ms as f64 / 1000.0, longest_ms as f64 / 1000.0);
        let now_ns = now_ms * 1_000_000;
        let per_window = self.stats_per_window();
        let mut summaries: Vec<WindowSummary> = Vec::new();
        // Which figures of a metric the observer wants, per metric name.
        let mut wanted: std::collections::HashMap<String, Vec<bool>> = Default::default();
        for batch in hashes.chunks(EVALUATED_PER_LOCK) {
            let mut resource_metrics = Vec::new();
            let mut streams = self.streams.lock();
            for hash in batch {
                // Dropped since the list was taken: nothing to show.
                let Some(stream) = streams.get_mut(hash) else {
                    continue;
                };
                stream.flush();
                summaries.clear();
                stream
                    .stats
                    .summaries(now_ms, &self.config.quantiles, &mut summaries);
                for (w, summary) in summaries.iter().enumerate() {
                    let Some(values) = stream.values.get_mut(w * per_window..(w + 1) * per_window)
                    else {
                        continue;
                    };
                    write_figures(summary, self.config.quantiles.len(), values);
                }
                let Some(observer) = &self.observer else {
                    continue;
                };
                if !wanted.contains_key(&stream.metric) {
                    let wants = (0..per_window)
                        .map(|stat| observer.wants_metric(&self.family_name(&stream.metric, stat)))
                        .collect();
                    wanted.insert(stream.metric.clone(), wants);
                }
                let wants = &wanted[&stream.metric];
                if wants.iter().any(|w| *w) {
                    let metrics = self.observed_metrics(stream, wants, now_ns);
                    if !metrics.is_empty() {
                        resource_metrics.push(derived(
                            &stream.resource(),
                            &stream.scope(),
                            metrics,
                        ));
                    }
                }
            }
            drop(streams);
            if let Some(observer) = &self.observer
                && !resource_metrics.is_empty()
            {
                let request = MetricsRequest { resource_metrics };
                observer.observe_derived(&MetricsBatch::from_request(request));
            }
        }
    }

    /// Figure `stat` of a window (see [`stats_per_window`](Self::stats_per_window)):
    /// its name's suffix, its unit (`None`: the source's) and help.
    fn figure(&self, stat: usize) -> (Cow<'static, str>, Option<&'static str>, Cow<'static, str>) {
        let q = self.config.quantiles.len();
        match stat.checked_sub(q) {
            None => {
                let quantile = self.config.quantiles[stat];
                (
                    quantile_name(quantile).into(),
                    None,
                    format!(
                        "The {quantile} quantile of the values in the window (sketch, 1% relative error)."
                    )
                    .into(),
                )
            }
            Some(MEAN) => (
                "mean".into(),
                None,
                "Mean of the values in the window.".into(),
            ),
            Some(MIN) => ("min".into(), None, "Smallest value in the window.".into()),
            Some(MAX) => ("max".into(), None, "Largest value in the window.".into()),
            Some(OBSERVATIONS) => (
                "observations".into(),
                Some("{observation}"),
                "Values observed in the window.".into(),
            ),
            Some(_) => (
                "rate".into(),
                Some("1/s"),
                "Values observed per second over the window.".into(),
            ),
        }
    }

    /// The OTel name of a metric's figure `stat`.
    fn family_name(&self, metric: &str, stat: usize) -> String {
        format!("{metric}.window.{}", self.figure(stat).0)
    }

    /// The derived family of figure `stat` of a metric in `unit`.
    fn family(&self, metric: &str, unit: &str, family: u64, stat: usize) -> DerivedFamily {
        let (suffix, own_unit, help) = self.figure(stat);
        DerivedFamily {
            name: format!("{metric}.window.{suffix}").into(),
            unit: own_unit.map_or_else(|| Cow::Owned(unit.to_string()), Cow::Borrowed),
            help,
            key: family | stat as u64,
        }
    }

    /// The gauges of `stream` the observer `wants` (one flag per figure),
    /// from the figures just computed, stamped `now_ns`.
    fn observed_metrics(&self, stream: &Stream, wants: &[bool], now_ns: u64) -> Vec<Metric> {
        let per_window = self.stats_per_window();
        let mut metrics = Vec::new();
        let source_attributes = stream.attributes();
        for (stat, _) in wants.iter().enumerate().filter(|(_, w)| **w) {
            let points: Vec<NumberDataPoint> = self
                .labels
                .iter()
                .enumerate()
                .filter_map(|(w, label)| {
                    let value = *stream.values.get(w * per_window + stat)?;
                    if value.is_nan() {
                        return None;
                    }
                    let mut attributes = source_attributes.clone();
                    attributes.push(string_kv("window", label));
                    Some(NumberDataPoint {
                        attributes,
                        time_unix_nano: now_ns,
                        value: Some(number_data_point::Value::AsDouble(value)),
                        ..Default::default()
                    })
                })
                .collect();
            if points.is_empty() {
                continue;
            }
            let family = self.family(&stream.metric, &stream.unit, 0, stat);
            metrics.push(Metric {
                name: family.name.into_owned(),
                unit: family.unit.into_owned(),
                description: family.help.into_owned(),
                data: Some(Data::Gauge(Gauge {
                    data_points: points,
                })),
                ..Default::default()
            });
        }
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

    /// One evaluation now; the gauges the observer wants are handed to it.
    fn export_once(&self) {
        self.evaluate(now_ms());
    }
}

/// Writes the figures of one window into `values` (the window's share
/// of a stream's): its quantiles, then the others at `quantiles +`
/// [`MEAN`] and so on; NaN where the window has none.
fn write_figures(summary: &WindowSummary, quantiles: usize, values: &mut [f64]) {
    values.fill(f64::NAN);
    if summary.count > 0 {
        for (slot, (_, v)) in values.iter_mut().zip(&summary.quantiles).take(quantiles) {
            *slot = *v;
        }
    }
    let others = [
        (MEAN, summary.mean),
        (MIN, summary.min),
        (MAX, summary.max),
        (OBSERVATIONS, Some(summary.count as f64)),
        (RATE, Some(summary.rate_per_sec)),
    ];
    for (stat, value) in others {
        if let (Some(slot), Some(v)) = (values.get_mut(quantiles + stat), value) {
            *slot = v;
        }
    }
}

impl DerivedSource for WindowProcessor {
    /// Per metric (name and unit) of the series now kept, one family per
    /// figure; its key is the metric's [`stream::family_of`] with the
    /// figure's index in the [`STAT_BITS`].
    fn families(&self) -> Vec<DerivedFamily> {
        let mut metrics: Vec<(u64, String, String)> = Vec::new();
        {
            let streams = self.streams.lock();
            let mut seen = std::collections::HashSet::new();
            for s in streams.values() {
                if seen.insert(s.family) {
                    metrics.push((s.family, s.metric.clone(), s.unit.clone()));
                }
            }
        }
        metrics.sort_unstable_by(|a, b| a.1.cmp(&b.1).then(a.2.cmp(&b.2)));
        metrics
            .iter()
            .flat_map(|(family, metric, unit)| {
                (0..self.stats_per_window()).map(|stat| self.family(metric, unit, *family, stat))
            })
            .collect()
    }

    fn walk(&self, key: u64, sample: &mut SampleSink<'_>) -> bool {
        let family = key & !STAT_BITS;
        let stat = (key & STAT_BITS) as usize;
        let per_window = self.stats_per_window();
        if stat >= per_window {
            return true;
        }
        let streams = self.streams.lock();
        for s in streams.values().filter(|s| s.family == family) {
            let labels = BlockParts::whole(&s.labels);
            for (w, label) in self.labels.iter().enumerate() {
                let Some(&value) = s.values.get(w * per_window + stat) else {
                    continue;
                };
                if !value.is_nan() && !sample(labels, Some(("window", label)), value) {
                    return false;
                }
            }
        }
        true
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
