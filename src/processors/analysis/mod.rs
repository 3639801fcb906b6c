//! The analysis processor: a learned baseline, an anomaly score and
//! forecasts for every selected series, computed on an evaluation step
//! aligned to the clock and exported as gauges rendered from its state.
//!
//! As a [`MetricsConsumer`] in front of the exporter it records the latest
//! value of each selected series (gauges as they are, monotonic sums as
//! per-second rates with reset detection) and passes the request on. On
//! each step it feeds those values to the series' [`Baseline`] and
//! [`ForecastState`] (from `analytics`). As a [`DerivedSource`] it gives
//! the exporter, on every `/metrics` and remote-write walk, with the
//! source's resource identity, scope and attributes plus `metric` (the
//! source's Prometheus name) and, for counters, `transform="rate"` (one
//! label block per series, built by the exporter's translation when the
//! series is created; nothing per derived gauge is stored):
//! `streamgate_baseline_expected`, `_lower`, `_upper`,
//! `streamgate_anomaly_score`, `streamgate_anomaly` (1 on the step an
//! anomaly starts, else 0), `streamgate_anomaly_active` (1 while in one)
//! and `streamgate_forecast{horizon}`, `_lower`, `_upper`, and for
//! configured thresholds `streamgate_time_to_threshold_seconds{threshold}`.
//! A series silent for `series_ttl` is dropped, and its gauges with it.
//! Configured ratios (default: the error ratio of each span operation)
//! are analysed too, as series of their own
//! labelled `transform="ratio"` and `ratio="<numerator>"` (see `ratio.rs`),
//! and so are StreamGate's own memory and CPU, fed in on every step
//! (see `own.rs`).

pub mod config;
mod durable;
mod own;
mod ratio;

use crate::model::MetricsBatch;
use crate::model::otlp::ItemCount;
use std::collections::BTreeMap;
use std::collections::hash_map::Entry;
use std::fmt::Write;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::analytics::baselines::{Baseline, BaselineOutput, BaselineSettings, RateConverter};
use crate::analytics::forecasts::{ForecastSettings, ForecastState};
use crate::model::MetricsRequest;
use crate::model::otlp::common::KeyValue;
use crate::model::prefetch::prefetch;
use crate::model::prometheus_name::{MetricShape, metric_name};
use crate::model::recommendation::{Recommendation, RecommendationSource};
use crate::model::text::AttributeLookup;
use crate::model::wire::metrics::NumberPointView;
use crate::model::wire::{Attributes, MetricData, MetricView, MetricsRequestView, Repeated};
use crate::pipeline::derived::{
    BlockParts, DerivedFamily, DerivedSource, LabelBlock, LabelTranslator, SampleSink,
    set_aside_added_labels,
};
use crate::pipeline::{ConsumeResult, MetricsConsumer, Shutdown};
use crate::processors::identity::{
    ByIdentity, ScopeSource, attribute_hash, stream_hash, with_attributes,
};
use crate::processors::output::string_kv;
use crate::processors::packed::{
    Origin, Origins, SeriesText, any_text, key_shape, label_keys, longest_common_run,
    marked_attributes, own_labels_hash, run_in,
};
use crate::processors::pattern::matches;
use crate::processors::refused::RefusedIdentities;
use crate::telemetry::{Telemetry, names};

pub use config::{AnalysisConfig, AnomalySettings, RatioRule, SelectRule, ThresholdRule};
use ratio::RatioGroup;

/// An analysed series' entry in the processor's map: what every point
/// writes is held in the entry itself (the cache line the map probe loads
/// anyway), the rest behind a box, so a point follows no pointer. With
/// its key the entry is 48 bytes (a test checks).
struct Slot {
    /// Latest value not yet fed to the models; NaN for none (only finite
    /// values are recorded).
    pending: f64,
    /// A counter's previous sample (unused unless `counter`).
    rate: RateConverter,
    series: Box<Series>,
    /// When the series' last point came: Unix seconds rounded up (see
    /// [`point_second`]), so it expires at most a second after
    /// `series_ttl`, never before.
    last_point: u32,
    /// A monotonic sum, recorded as its per-second rate.
    counter: bool,
    /// A delta monotonic sum: its points are added up into the running
    /// total `rate` turns into a rate (unused unless `counter`).
    delta: bool,
}

/// `now` (seconds) as a [`Slot`]'s last-point time: rounded up, and
/// clamped into `u32` (Unix seconds until 2106).
#[inline]
fn point_second(now: f64) -> u32 {
    // `as` saturates (and takes NaN to 0).
    now.ceil() as u32
}

impl Slot {
    /// Records an observation of this series at `now`: its value, or for
    /// a counter its rate since the last point.
    #[inline]
    fn record(&mut self, o: &Observation, now: f64) {
        self.last_point = point_second(now);
        let sample = if self.counter {
            let total = match (self.delta, self.rate.previous()) {
                // A negative delta is no increase of a monotonic sum.
                (true, _) if o.value < 0.0 => return,
                (true, Some((_, before))) => before + o.value,
                _ => o.value,
            };
            self.rate.update(o.time_secs, total)
        } else {
            Some(o.value)
        };
        if let Some(v) = sample.filter(|v| v.is_finite()) {
            self.pending = v;
        }
    }

    /// Whether the series has had no point for more than `ttl` seconds at
    /// `now`.
    fn silent(&self, now: f64, ttl: f64) -> bool {
        now - f64::from(self.last_point) > ttl
    }

    /// The counter's rate state, for a counter.
    fn rate(&self) -> Option<&RateConverter> {
        self.counter.then_some(&self.rate)
    }

    /// The value waiting for the next step, if any, leaving none.
    fn take_pending(&mut self) -> Option<f64> {
        let v = std::mem::replace(&mut self.pending, f64::NAN);
        (!v.is_nan()).then_some(v)
    }

    /// The value waiting for the next step, if any.
    #[cfg(test)]
    fn pending(&self) -> Option<f64> {
        (!self.pending.is_nan()).then_some(self.pending)
    }
}

/// A selected point, as the first pass of
/// [`AnalysisProcessor::observe_request`] reads it.
struct Observation {
    hash: u64,
    value: f64,
    time_secs: f64,
}

/// What an analysed metric's points are.
#[derive(Clone, Copy)]
struct Kind {
    shape: MetricShape,
    /// A monotonic sum, analysed as a per-second rate.
    counter: bool,
    /// A delta monotonic sum (its points are increases).
    delta: bool,
}

impl Kind {
    /// A ratio series: a share, fed as it is.
    const RATIO: Kind = Kind {
        shape: MetricShape::Gauge,
        counter: false,
        delta: false,
    };

    /// The number points of `metric` and their kind, for the metric types
    /// that are analysed (gauges, monotonic sums of either temporality,
    /// non-monotonic sums).
    fn of<'a>(metric: &MetricView<'a>) -> Option<(Repeated<'a, NumberPointView<'a>>, Kind)> {
        let (points, shape, counter, delta) = match metric.data {
            Some(MetricData::Gauge(points)) => (points, MetricShape::Gauge, false, false),
            Some(MetricData::Sum {
                points,
                temporality: CUMULATIVE,
                monotonic: true,
            }) => (points, MetricShape::MonotonicSum, true, false),
            Some(MetricData::Sum {
                points,
                temporality: DELTA,
                monotonic: true,
            }) => (points, MetricShape::MonotonicSum, true, true),
            Some(MetricData::Sum {
                points,
                monotonic: false,
                ..
            }) => (points, MetricShape::NonMonotonicSum, false, false),
            _ => return None,
        };
        Some((
            points,
            Kind {
                shape,
                counter,
                delta,
            },
        ))
    }
}

/// Text a walk of the derived gauges writes per series, kept for the
/// whole walk: a valued series' own labels, a threshold's label value.
#[derive(Default)]
struct WalkScratch {
    labels: String,
    threshold: String,
}

/// One analysed series: its identity, models and export state. Boxed
/// in its map entry; 384 bytes, jemalloc's size class, so what is added
/// here must come out elsewhere (a test checks). What few series have
/// is kept apart: a ratio series' group in the processor's `ratios`,
/// the thresholds of a metric in its origin.
struct Series {
    baseline: Baseline,
    forecaster: ForecastState,
    /// Resource and scope, shared with the other series of the source.
    origin: Arc<Origin>,
    /// Source attributes plus `metric` (and `transform`), packed (read by
    /// the console and findings), and the derived series' label block on
    /// `/metrics`, built once by the exporter's translation: every
    /// derived gauge of the series is rendered from it and the models
    /// (see [`DerivedSource`]).
    text: SeriesText,
    /// The baseline's band and score for the last value fed.
    last: Last,
}

impl Series {
    /// Threshold levels that apply to this series (its origin's).
    fn thresholds(&self) -> &[f64] {
        self.origin.thresholds.get().map_or(&[], |t| t)
    }
}

/// The baseline's band and score for a series' last value (what
/// `/metrics`, the console and recommendations need of a
/// [`BaselineOutput`]; whether it is in an anomaly, and whether one
/// started on that step, the baseline keeps, and the value the
/// forecaster). NaN before the first verdict. 16 bytes: the expected
/// value in full; the band, which is symmetric (`expected ± band_z ·
/// σ`), as its half-width in `f32` (a width needs a few digits); the
/// score, in `[0, 1]`, to nine decimals (so a score compared with an
/// alert threshold such as 0.95 reads back as that decimal).
#[derive(Debug, Clone, Copy)]
struct Last {
    expected: f64,
    /// `upper − expected`, and `expected − lower`.
    half_width: f32,
    /// The score in billionths.
    score_nanos: u32,
}

/// A verdict as `/metrics`, the console and recommendations read it.
#[derive(Debug, Clone, Copy)]
struct Verdict {
    value: f64,
    expected: f64,
    lower: f64,
    upper: f64,
    score: f64,
    in_anomaly: bool,
    /// Whether the anomaly started on this step.
    started: bool,
}

impl Last {
    const NONE: Self = Self {
        expected: f64::NAN,
        half_width: f32::NAN,
        score_nanos: 0,
    };
    const NANOS: f64 = 1e9;

    fn judge(&mut self, b: &BaselineOutput) {
        *self = Self {
            expected: b.expected,
            half_width: (0.5 * (b.upper - b.lower)) as f32,
            score_nanos: (b.score.clamp(0.0, 1.0) * Self::NANOS).round() as u32,
        };
    }

    fn lower(&self) -> f64 {
        self.expected - f64::from(self.half_width)
    }

    fn upper(&self) -> f64 {
        self.expected + f64::from(self.half_width)
    }

    fn score(&self) -> f64 {
        f64::from(self.score_nanos) / Self::NANOS
    }
}

impl Series {
    /// The baseline's verdict on the last value, once there is one.
    fn verdict(&self) -> Option<Verdict> {
        let last = &self.last;
        if last.expected.is_nan() {
            return None;
        }
        Some(Verdict {
            value: self.forecaster.last_value().unwrap_or(f64::NAN),
            expected: last.expected,
            lower: last.lower(),
            upper: last.upper(),
            score: last.score(),
            in_anomaly: self.baseline.in_anomaly(),
            started: self.baseline.anomaly_started(),
        })
    }
}

/// A series' label block as [`AnalysisProcessor::kept_label_blocks`]
/// gives it.
#[cfg(test)]
#[derive(Debug)]
pub(crate) struct KeptLabels {
    pub head: String,
    pub run: String,
    pub tail: String,
    pub resource: Vec<KeyValue>,
    pub scope: crate::model::otlp::common::InstrumentationScope,
    pub attributes: Vec<KeyValue>,
}

/// The processor. Shared as `Arc<AnalysisProcessor>`.
pub struct AnalysisProcessor {
    config: AnalysisConfig,
    horizon_labels: Vec<String>,
    /// Shared by every series' baseline and forecaster (one pointer each).
    baseline_settings: BaselineSettings,
    forecast_settings: ForecastSettings,
    /// Boxed: the map stays small enough to probe from cache, and a
    /// point touches only its own series' memory.
    series: Mutex<ByIdentity<Slot>>,
    /// The ratio series' groups (their member counters' increases), by
    /// the ratio series' identity: few series are ratios, so the group is
    /// not in every series' box. Locked after `series`, never with
    /// `restored`.
    ratios: Mutex<ByIdentity<RatioGroup>>,
    /// The series' shared resources and scopes. Locked after `series`.
    origins: Mutex<Origins>,
    /// Models read back from saved state, waiting for their series' first
    /// point (see `durable.rs`). Locked after `series` when both are.
    restored: Mutex<ByIdentity<durable::Saved>>,
    downstream: Arc<dyn MetricsConsumer>,
    /// The exporter's label translation, for each series' label block.
    translator: Arc<dyn LabelTranslator>,
    telemetry: Arc<Telemetry>,
    /// The process' memory limit, the default threshold of its own memory.
    memory_limit: Option<f64>,
    /// Identities refused for their labels: their points are counted as
    /// skipped without their labels being translated again, until silent
    /// for `series_ttl`.
    refused: RefusedIdentities,
}

impl Series {
    /// The source's Prometheus name and the series' resource and point
    /// labels (without `metric`), as findings and the console name them.
    fn metric_and_labels(&self) -> (String, std::collections::BTreeMap<String, String>) {
        let mut attributes = self.text.attribute_texts(&self.origin);
        let metric = attributes
            .iter()
            .position(|(key, _)| key == "metric")
            .map(|at| attributes.swap_remove(at).1)
            .unwrap_or_default();
        let labels = self
            .origin
            .resource
            .iter()
            .map(|kv| (kv.key.clone(), any_text(kv.value.as_ref())))
            .chain(attributes)
            .collect();
        (metric, labels)
    }
}

/// Crossings forecast further ahead than this are not recommendations
/// (`streamgate_time_to_threshold_seconds` still shows them): a trend
/// extrapolated for weeks says little.
const RECOMMEND_WITHIN_SECS: f64 = 86_400.0;

/// Whether a point of metric `name` with `attributes` (under `resource`)
/// matches one of `rules`: name pattern and exact label values, a label
/// looked up in the point's attributes first, then the resource's (so
/// `service.name` works for span metrics).
/// The rules whose name pattern matches metric `name`.
fn rules_for<'r>(rules: &'r [SelectRule], name: &str) -> Vec<&'r SelectRule> {
    rules
        .iter()
        .filter(|rule| matches(&rule.name, name))
        .collect()
}

/// Whether any of `rules` (already matched by name) matches a point by
/// its labels, looked up in the point's attributes, then the resource's.
fn labels_match<A, R>(rules: &[&SelectRule], attributes: &A, resource: &R) -> bool
where
    A: AttributeLookup + ?Sized,
    R: AttributeLookup + ?Sized,
{
    rules.iter().any(|rule| {
        rule.labels.iter().all(|(k, v)| {
            attributes.text(k).or_else(|| resource.text(k)).as_deref() == Some(v.as_str())
        })
    })
}

/// Aggregation temporality `DELTA`.
const DELTA: i32 = 1;
/// Aggregation temporality `CUMULATIVE`.
const CUMULATIVE: i32 = 2;

/// Mixed into a ratio group's identity (with the rule's index), so a group
/// never shares its stream's identity.
const RATIO_SALT: u64 = 0x9e37_79b9_7f4a_7c15;

/// Steps after start before StreamGate's own resources are analysed.
const OWN_SETTLE_STEPS: f64 = 20.0;

/// Unix time now, in seconds.
pub fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl AnalysisProcessor {
    /// Builds the processor; StreamGate's own memory series get the
    /// process' memory limit as a threshold unless a rule names them.
    pub fn new(
        mut config: AnalysisConfig,
        downstream: Arc<dyn MetricsConsumer>,
        translator: Arc<dyn LabelTranslator>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let memory_limit = crate::telemetry::allocator::memory_limit_bytes();
        if let Some(limit) = memory_limit {
            for name in [own::RESIDENT_MEMORY, own::HEAP_ALLOCATED] {
                if !config.thresholds.iter().any(|t| matches(&t.name, name)) {
                    config.thresholds.push(ThresholdRule {
                        name: name.into(),
                        value: limit,
                    });
                }
            }
        }
        let horizon_labels = config.horizons.iter().map(|h| h.to_string()).collect();
        Self {
            memory_limit,
            baseline_settings: config.anomaly.baseline().into(),
            forecast_settings: config.forecasts().into(),
            config,
            horizon_labels,
            series: Mutex::new(ByIdentity::default()),
            ratios: Mutex::new(ByIdentity::default()),
            restored: Mutex::new(ByIdentity::default()),
            origins: Mutex::new(Origins::default()),
            downstream,
            translator,
            telemetry,
            refused: RefusedIdentities::new("a series is not analysed"),
        }
    }

    /// Series analysed now.
    pub fn series_count(&self) -> usize {
        self.series.lock().len()
    }

    /// Each series' label block as kept (its own text before and after
    /// the run its origin keeps, and that run), with what it was
    /// translated from: for tests that check it against a translation.
    #[cfg(test)]
    pub(crate) fn kept_label_blocks(&self) -> Vec<KeptLabels> {
        self.series
            .lock()
            .values()
            .map(|slot| {
                let s = &slot.series;
                let mut scratch = String::new();
                let (head, tail, split) = s.text.label_parts(&s.origin, &mut scratch);
                let run = match s.origin.label_run.get() {
                    Some(run) if split => run.to_string(),
                    _ => String::new(),
                };
                KeptLabels {
                    head: head.into(),
                    run,
                    tail: tail.into(),
                    resource: s.origin.resource.clone(),
                    scope: s.origin.scope.clone(),
                    attributes: s
                        .text
                        .attribute_texts(&s.origin)
                        .iter()
                        .map(|(k, v)| string_kv(k, v))
                        .collect(),
                }
            })
            .collect()
    }

    /// Sources and origins (sources times their sets of own labels).
    #[cfg(test)]
    pub(crate) fn origin_counts(&self) -> (usize, usize) {
        let origins = self.origins.lock();
        (origins.len(), origins.origins())
    }

    /// Whether a metric of this name is analysed or feeds a ratio.
    fn wants(&self, name: &str) -> bool {
        self.config.select.iter().any(|r| matches(&r.name, name)) || self.has_ratio(name)
    }

    /// Records the latest value of every selected point, at `now` seconds,
    /// reading the request in place.
    ///
    /// Two passes: the identities of the selected points are hashed
    /// without the lock, then the map is probed for all of them back to
    /// back. The probes are independent, so the processor overlaps their
    /// cache misses instead of waiting for each between two points'
    /// parsing and hashing, and the lock is held only for the probes.
    /// Points of series not seen before are created by a second walk of
    /// the request (rare once series are known).
    pub fn observe_request(&self, request: &MetricsBatch, now: f64) {
        let view = request.view();
        if !view.metric_names().any(|name| self.wants(name)) {
            return;
        }
        let mut encoded = Vec::new();
        let mut observed = Vec::with_capacity(request.item_count() as usize);
        self.for_each_selected(view, |source, metric, _, p, value| {
            observed.push(Observation {
                hash: stream_hash(source.identity, metric.name, &p.attributes, &mut encoded),
                value,
                time_secs: p.time_ns as f64 / 1e9,
            });
        });
        let mut series = self.series.lock();
        let mut missing = Vec::new();
        for (i, o) in observed.iter().enumerate() {
            match series.get_mut(&o.hash) {
                Some(slot) => slot.record(o, now),
                None => missing.push(i),
            }
        }
        if !missing.is_empty() {
            self.create_missing(&mut series, view, &observed, &missing, now);
        }
        if view.metric_names().any(|name| self.has_ratio(name)) {
            self.observe_ratios(&mut series, view, now);
        }
    }

    /// Calls `each` with every point the select rules pick (and the
    /// exclude rules do not), in request order, with its metric's shape
    /// and value.
    fn for_each_selected<'a>(
        &self,
        view: MetricsRequestView<'a>,
        mut each: impl FnMut(&ScopeSource<'_, 'a>, &MetricView<'a>, Kind, &NumberPointView<'a>, f64),
    ) {
        ScopeSource::each_scope(view, |source, metrics| {
            for metric in metrics.iter() {
                let select = rules_for(&self.config.select, metric.name);
                if select.is_empty() {
                    continue;
                }
                let Some((points, kind)) = Kind::of(&metric) else {
                    continue;
                };
                let exclude = rules_for(&self.config.exclude, metric.name);
                for p in points.iter() {
                    let Some(value) = p.value else { continue };
                    if labels_match(&exclude, &p.attributes, source.resource)
                        || !labels_match(&select, &p.attributes, source.resource)
                    {
                        continue;
                    }
                    each(source, &metric, kind, &p, value);
                }
            }
        });
    }

    /// Creates the series of the `missing` observations (indices into
    /// `observed`, ascending) by walking the request again in the same
    /// order, and records their values.
    fn create_missing(
        &self,
        series: &mut ByIdentity<Slot>,
        view: MetricsRequestView<'_>,
        observed: &[Observation],
        missing: &[usize],
        now: f64,
    ) {
        let mut next = missing.iter().copied().peekable();
        let mut index = 0;
        self.for_each_selected(view, |source, metric, kind, p, _| {
            let this = index;
            index += 1;
            if next.next_if_eq(&this).is_none() {
                return;
            }
            let Some(o) = observed.get(this) else { return };
            let made = self.series_or_new(series, o.hash, now, || {
                self.new_stream_series(source, metric, kind, &p.attributes)
            });
            if let Some(slot) = made {
                slot.record(o, now);
            }
        });
    }

    /// A new analysed series for a point of `metric` with `attributes`
    /// (refused with why, see [`new_series`](Self::new_series)).
    fn new_stream_series(
        &self,
        source: &ScopeSource<'_, '_>,
        metric: &MetricView<'_>,
        kind: Kind,
        attributes: &Attributes<'_>,
    ) -> Result<Slot, String> {
        let name = metric_name(metric.name, metric.unit, kind.shape, "", true)
            .unwrap_or_else(|| metric.name.to_string());
        let mut owned = attributes.to_owned_vec();
        owned.push(string_kv("metric", &name));
        if kind.counter {
            owned.push(string_kv("transform", "rate"));
        }
        let own = 1 + usize::from(kind.counter);
        let fresh = self.new_series(source, owned, own, kind)?;
        fresh.series.origin.thresholds.get_or_init(|| {
            self.config
                .thresholds
                .iter()
                .filter(|t| matches(&t.name, metric.name))
                .map(|t| t.value)
                .collect()
        });
        Ok(fresh)
    }

    /// Whether counters named `name` feed a ratio rule.
    fn has_ratio(&self, name: &str) -> bool {
        self.config.ratios.iter().any(|r| matches(&r.name, name))
    }

    /// Records the points of the request's counters that feed ratio
    /// rules (the exclude rules apply to them too).
    fn observe_ratios(
        &self,
        series: &mut ByIdentity<Slot>,
        view: MetricsRequestView<'_>,
        now: f64,
    ) {
        let mut text = String::new();
        ScopeSource::each_scope(view, |source, metrics| {
            for metric in metrics.iter().filter(|m| self.has_ratio(m.name)) {
                let Some((points, kind)) = Kind::of(&metric) else {
                    continue;
                };
                // A ratio group reads its members' running totals.
                if !kind.counter || kind.delta {
                    continue;
                }
                let ratio_rules: Vec<(usize, &RatioRule)> = self
                    .config
                    .ratios
                    .iter()
                    .enumerate()
                    .filter(|(_, rule)| matches(&rule.name, metric.name))
                    .collect();
                let exclude = rules_for(&self.config.exclude, metric.name);
                for p in points.iter() {
                    let Some(value) = p.value else { continue };
                    if labels_match(&exclude, &p.attributes, source.resource) {
                        continue;
                    }
                    for &(index, rule) in &ratio_rules {
                        self.observe_ratio(
                            series,
                            source,
                            &metric,
                            (index, rule),
                            &p.attributes,
                            value,
                            now,
                            &mut text,
                        );
                    }
                }
            }
        });
    }

    /// Records a counter point in a ratio group (the point's attributes
    /// without the rule's `over` attribute), creating the group's analysed
    /// series on first sight.
    #[allow(clippy::too_many_arguments)]
    fn observe_ratio(
        &self,
        series: &mut ByIdentity<Slot>,
        source: &ScopeSource<'_, '_>,
        metric: &MetricView<'_>,
        (index, rule): (usize, &RatioRule),
        attributes: &Attributes<'_>,
        value: f64,
        now: f64,
        text: &mut String,
    ) {
        if attributes.find(&rule.over).is_none() {
            return;
        }
        // The member (the point's own series) and its group, in one pass.
        let (mut member, mut group) = (0u64, 0u64);
        attributes.for_each_text(text, |key, value| {
            let h = attribute_hash(key, value);
            member = member.wrapping_add(h);
            if key != rule.over {
                group = group.wrapping_add(h);
            }
        });
        let salted = source.identity ^ RATIO_SALT.wrapping_mul(index as u64 + 1);
        let hash = with_attributes(salted, metric.name, group);
        let Some(s) = self.series_or_new(series, hash, now, || {
            let name = metric_name(
                metric.name,
                metric.unit,
                MetricShape::MonotonicSum,
                "",
                true,
            )
            .unwrap_or_else(|| metric.name.to_string());
            let mut group_attributes: Vec<KeyValue> = attributes
                .to_owned_vec()
                .into_iter()
                .filter(|kv| kv.key != rule.over)
                .collect();
            group_attributes.push(string_kv("metric", &name));
            group_attributes.push(string_kv("transform", "ratio"));
            group_attributes.push(string_kv("ratio", &rule.label()));
            self.new_series(source, group_attributes, 3, Kind::RATIO)
        }) else {
            return;
        };
        let numerator = rule
            .numerator
            .iter()
            .all(|(k, v)| attributes.text(k).as_deref() == Some(v.as_str()));
        s.last_point = point_second(now);
        self.ratios
            .lock()
            .entry(hash)
            .or_default()
            .record(member, numerator, value);
    }

    /// The series of identity `hash`, created with `make` on first sight;
    /// `None` (counted as skipped) when `max_series` is reached or `make`
    /// refuses the series (an identity refused once is remembered, as of
    /// `now`, and not made again).
    fn series_or_new<'s>(
        &self,
        series: &'s mut ByIdentity<Slot>,
        hash: u64,
        now: f64,
        make: impl FnOnce() -> Result<Slot, String>,
    ) -> Option<&'s mut Slot> {
        let full = series.len() >= self.config.max_series;
        match series.entry(hash) {
            Entry::Occupied(e) => Some(e.into_mut()),
            Entry::Vacant(_) if full => {
                self.telemetry.record_analysis_skipped(1);
                None
            }
            Entry::Vacant(e) => {
                if self.refused.seen_again(hash, now) {
                    self.telemetry.record_analysis_skipped(1);
                    return None;
                }
                let mut slot = match make() {
                    Ok(slot) => slot,
                    Err(why) => {
                        self.refused.refuse(hash, now, &why);
                        self.telemetry.record_analysis_skipped(1);
                        return None;
                    }
                };
                let saved = self.restored.lock().remove(&hash);
                if let Some(saved) = saved {
                    // Only a ratio series saved a group (their identities
                    // are apart from every other series').
                    if let Some(group) = saved.claim(&mut slot) {
                        self.ratios.lock().insert(hash, group);
                    }
                }
                Some(e.insert(slot))
            }
        }
    }

    /// A new analysed series; why not when its gauges' labels would break
    /// the exporter's label limits, as the exporter would refuse such a
    /// point. The last `own` of `attributes` are the processor's own
    /// labels (`metric`, and `transform` or `ratio`).
    fn new_series(
        &self,
        source: &ScopeSource<'_, '_>,
        attributes: Vec<KeyValue>,
        own: usize,
        kind: Kind,
    ) -> Result<Slot, String> {
        // The gauges add `horizon` and `threshold`: a source attribute of
        // either name is kept as `exported_<name>`.
        let attributes =
            set_aside_added_labels(&attributes, &["horizon", "threshold"]).unwrap_or(attributes);
        let own = &attributes[attributes.len().saturating_sub(own)..];
        let origin = self.origins.lock().of(source, own_labels_hash(own));
        let block = self
            .translator
            .label_block(&origin.resource, &origin.scope, &attributes)?;
        // The run of labels every series of the origin has is kept once,
        // in the origin, for every series whose block has it.
        let shared = match origin.label_run.get() {
            Some(run) => run_in(&block.text, run),
            // (Set even when there is none, so later series do not ask
            // again.)
            None => {
                let run = self.first_run(&origin, own, &block);
                let text = run.clone().map_or("", |run| &block.text[run]);
                let _ = origin.label_run.set(text.into());
                run
            }
        };
        let text = self
            .mapped_text(&origin, &attributes, &block.text, shared.clone())
            .unwrap_or_else(|| SeriesText::new(&attributes, &block.text, shared));
        Ok(Slot {
            pending: f64::NAN,
            last_point: 0,
            counter: kind.counter,
            delta: kind.delta,
            rate: RateConverter::new(),
            series: Box::new(Series {
                origin,
                text,
                last: Last::NONE,
                baseline: Baseline::new(self.baseline_settings.clone()),
                forecaster: ForecastState::new(&self.forecast_settings),
            }),
        })
    }

    /// The run of labels an origin's first series leaves to it: the
    /// longest run of the labels of the origin's resource, scope and
    /// `own` labels alone (what every series of the origin has) that
    /// `block` has in one piece, unless the translation's run of the
    /// labels it derives from the resource and scope is as long.
    fn first_run(
        &self,
        origin: &Origin,
        own: &[KeyValue],
        block: &LabelBlock,
    ) -> Option<std::ops::Range<usize>> {
        let common = self
            .translator
            .label_block(&origin.resource, &origin.scope, own)
            .ok()
            .and_then(|common| longest_common_run(&block.text, &common.text))
            .filter(|common| common.len() > block.shared.len());
        common
            .or_else(|| Some(block.shared.clone()))
            .filter(|run| !run.is_empty() && block.text.get(run.clone()).is_some())
    }

    /// A series' text in the mapped form (its attributes read back from
    /// its label block, see [`SeriesText`]) under its origin's key list
    /// for attributes of its shape, learnt from the first such series:
    /// its block translated once more with each attribute's value
    /// replaced by a marker says which label carries which attribute.
    /// `None` (keep them packed) when they cannot be read back exactly.
    fn mapped_text(
        &self,
        origin: &Origin,
        attributes: &[KeyValue],
        labels: &str,
        shared: Option<std::ops::Range<usize>>,
    ) -> Option<SeriesText> {
        let parsed = crate::model::label_block::parse_borrowed(labels);
        if parsed.is_empty() && !attributes.is_empty() {
            return None;
        }
        let shape = key_shape(attributes);
        let index = match origin.known_label_keys(shape, &parsed, attributes) {
            Some(index) => index,
            None => {
                let marked = self
                    .translator
                    .label_block(
                        &origin.resource,
                        &origin.scope,
                        &marked_attributes(attributes),
                    )
                    .ok()?;
                let keys = label_keys(&parsed, &marked.text, attributes)?;
                origin.learn_label_keys(shape, keys)?
            }
        };
        SeriesText::mapped_or_valued(index, labels, shared, &origin.own_names)
    }

    /// One evaluation step at `now` seconds: feeds pending values to the
    /// models (what `/metrics` renders from them changes with it) and
    /// drops the series silent for `series_ttl`.
    pub fn evaluate(&self, now: f64) {
        let ttl = self.config.series_ttl.get().as_secs_f64();
        let mut series = self.series.lock();
        let mut ratios = self.ratios.lock();
        let mut gone = Vec::new();
        for (hash, slot) in series.iter_mut() {
            if slot.silent(now, ttl) {
                gone.push(*hash);
                continue;
            }
            let recorded = slot.take_pending();
            let s = &mut slot.series;
            let group = if ratios.is_empty() {
                None
            } else {
                ratios.get_mut(hash)
            };
            let pending = match group {
                // A ratio's value comes from its members' increases.
                Some(group) => group.step(),
                None => recorded,
            };
            if let Some(value) = pending {
                self.step(s, value, now);
            }
        }
        for hash in &gone {
            series.remove(hash);
            ratios.remove(hash);
        }
        drop(ratios);
        if !gone.is_empty() {
            self.origins.lock().release_unused();
        }
        self.restored
            .lock()
            .retain(|_, saved| now - saved.last_point_secs <= durable::UNCLAIMED_TTL_SECS);
        self.refused.expire(now, ttl);
        self.telemetry.set_analysis_series(series.len() as u64);
    }

    /// Feeds `value` (the step's latest) to the models of `s`.
    fn step(&self, s: &mut Series, value: f64, now: f64) {
        let baseline = s.baseline.update(now, value);
        s.forecaster
            .update_with(&self.forecast_settings, now, value, &s.baseline);
        if let Some(b) = baseline {
            s.last.judge(&b);
        }
    }

    /// Calls `sample` for every series' value in derived family `family`
    /// (see [`DERIVED_FAMILIES`]); false when `sample` stopped.
    ///
    /// The map is locked for [`WALK_CHUNK`] series at a time (the series
    /// are taken by key from a list made first), so a render of many
    /// series never keeps points waiting for longer than a chunk; a
    /// series dropped meanwhile is skipped, one created meanwhile waits
    /// for the next render.
    fn walk_family(&self, family: DerivedKind, sample: &mut SampleSink<'_>) -> bool {
        // Without a threshold rule no series has a time to one.
        if matches!(family, DerivedKind::TimeToThreshold { .. })
            && self.config.thresholds.is_empty()
        {
            return true;
        }
        let keys: Vec<u64> = self.series.lock().keys().copied().collect();
        let mut scratch = WalkScratch::default();
        for chunk in keys.chunks(WALK_CHUNK) {
            let series = self.series.lock();
            if !self.walk_chunk(&series, chunk, family, &mut scratch, sample) {
                return false;
            }
        }
        true
    }

    /// [`walk_family`](Self::walk_family) over the series of `keys`.
    fn walk_chunk(
        &self,
        series: &ByIdentity<Slot>,
        keys: &[u64],
        family: DerivedKind,
        scratch: &mut WalkScratch,
        sample: &mut SampleSink<'_>,
    ) -> bool {
        // Each series' box, label text and forecast state are allocations
        // anywhere in the heap: all of a group's are asked for before the
        // first is written, so their waits for memory overlap instead of
        // coming one after the other.
        let box_bytes = match family {
            // A verdict reads the baseline's state at the end of the box.
            DerivedKind::Verdict(_) => SERIES_BYTES,
            _ => FORECAST_PART_BYTES,
        };
        for group in keys.chunks(LOOK_AHEAD) {
            let mut found = [None::<&Series>; LOOK_AHEAD];
            for (found, key) in found.iter_mut().zip(group) {
                *found = series.get(key).map(|slot| {
                    prefetch(&*slot.series, box_bytes);
                    &*slot.series
                });
            }
            for s in found.iter().flatten() {
                s.text.prefetch_labels();
                if let DerivedKind::Forecast(_) = family {
                    s.forecaster.prefetch_forecasts();
                }
            }
            for s in found.iter().flatten() {
                if !self.write_series(s, family, scratch, sample) {
                    return false;
                }
            }
        }
        true
    }

    /// [`walk_chunk`](Self::walk_chunk)'s samples of one series; false
    /// when `sample` stopped.
    fn write_series(
        &self,
        s: &Series,
        family: DerivedKind,
        scratch: &mut WalkScratch,
        sample: &mut SampleSink<'_>,
    ) -> bool {
        let WalkScratch {
            labels: label_text,
            threshold: threshold_text,
        } = scratch;
        // A series with nothing in the family is passed over before its
        // labels are written.
        let verdict = match family {
            DerivedKind::Verdict(_) => match s.verdict() {
                Some(v) => Some(v),
                None => return true,
            },
            DerivedKind::TimeToThreshold { .. } if s.thresholds().is_empty() => return true,
            _ => None,
        };
        let (head, tail, split) = s.text.label_parts(&s.origin, label_text);
        let labels = BlockParts {
            head,
            shared: match s.origin.label_run.get() {
                Some(run) if split => run,
                _ => "",
            },
            tail,
        };
        match family {
            DerivedKind::Verdict(field) => match verdict {
                Some(v) => sample(labels, None, field.of(&v)),
                None => true,
            },
            DerivedKind::Forecast(edge) => {
                self.horizon_labels.iter().enumerate().all(|(h, label)| {
                    match s.forecaster.forecast(&self.forecast_settings, h) {
                        Some(f) => sample(labels, Some(("horizon", label)), edge.of(&f)),
                        None => true,
                    }
                })
            }
            DerivedKind::TimeToThreshold { confirmed } => s.thresholds().iter().all(|level| {
                let eta = if confirmed {
                    s.forecaster
                        .confirmed_time_to_threshold(&self.forecast_settings, *level)
                } else {
                    s.forecaster.time_to_threshold(*level)
                };
                match eta {
                    Some(secs) => {
                        threshold_text.clear();
                        let _ = write!(threshold_text, "{level}");
                        sample(labels, Some(("threshold", threshold_text)), secs)
                    }
                    None => true,
                }
            }),
        }
    }

    /// Evaluates on every step boundary of the clock until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let step = self.config.step.get().as_secs_f64();
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            let now = now_secs();
            let next = ((now / step).floor() + 1.0) * step;
            let sleep =
                tokio::time::sleep(std::time::Duration::from_secs_f64((next - now).max(0.0)));
            tokio::select! {
                _ = &mut stop => return,
                _ = sleep => {
                    // StreamGate's own resources, analysed like any series,
                    // once the start-up allocations have settled (a process
                    // growing to its working size is not an anomaly).
                    let settled = next - self.telemetry.started_unix() >= OWN_SETTLE_STEPS * step;
                    let own = if !settled {
                        MetricsRequest::default()
                    } else {
                        own::request(
                            &own::OwnReading::now(),
                            (self.telemetry.started_unix() * 1e9) as u64,
                            (next * 1e9) as u64,
                        )
                    };
                    self.observe_request(&MetricsBatch::from_request(own), next);
                    self.evaluate(next);
                }
            }
        }
    }
}

/// Series walked per lock of the map when a derived family is rendered
/// (about 0.1-0.3 ms of formatting).
const WALK_CHUNK: usize = 512;
/// Series of a chunk looked up and asked for together before they are
/// written (see `walk_chunk`).
const LOOK_AHEAD: usize = 16;
/// Bytes of a series' box asked for ahead: all of it, or for a forecast
/// the first 256, where the forecaster's state and the label pointers
/// are.
const SERIES_BYTES: usize = size_of::<Series>();
const FORECAST_PART_BYTES: usize = 256;

/// What a derived family shows of a series.
#[derive(Clone, Copy)]
enum DerivedKind {
    Verdict(VerdictField),
    Forecast(ForecastEdge),
    /// The time to each configured level; `confirmed`, only while the
    /// recent points confirm the trend.
    TimeToThreshold {
        confirmed: bool,
    },
}

/// A number of the baseline's last verdict.
#[derive(Clone, Copy)]
enum VerdictField {
    Expected,
    Lower,
    Upper,
    Score,
    /// 1 on the step an anomaly started.
    Started,
    /// 1 while in an anomaly.
    Active,
}

impl VerdictField {
    fn of(self, v: &Verdict) -> f64 {
        let flag = |b: bool| if b { 1.0 } else { 0.0 };
        match self {
            VerdictField::Expected => v.expected,
            VerdictField::Lower => v.lower,
            VerdictField::Upper => v.upper,
            VerdictField::Score => v.score,
            VerdictField::Started => flag(v.started),
            VerdictField::Active => flag(v.in_anomaly),
        }
    }
}

/// A number of a forecast.
#[derive(Clone, Copy)]
enum ForecastEdge {
    Value,
    Lower,
    Upper,
}

impl ForecastEdge {
    fn of(self, f: &crate::analytics::forecasts::Forecast) -> f64 {
        match self {
            ForecastEdge::Value => f.value,
            ForecastEdge::Lower => f.lower,
            ForecastEdge::Upper => f.upper,
        }
    }
}

/// The derived gauges, rendered from the series' state on every
/// `/metrics` and remote-write walk; [`DERIVED_KINDS`] says what each
/// shows.
const DERIVED_FAMILIES: [DerivedFamily; 11] = [
    DerivedFamily::fixed(
        "streamgate.baseline.expected",
        "",
        "Value the learned baseline expected for the source series.",
        0,
    ),
    DerivedFamily::fixed(
        "streamgate.baseline.lower",
        "",
        "Lower edge of the baseline's normal band.",
        1,
    ),
    DerivedFamily::fixed(
        "streamgate.baseline.upper",
        "",
        "Upper edge of the baseline's normal band.",
        2,
    ),
    DerivedFamily::fixed(
        "streamgate.anomaly.score",
        "",
        "Anomaly score of the source series' latest value, 0 to 1.",
        3,
    ),
    DerivedFamily::fixed(
        "streamgate.anomaly",
        "",
        "1 on the evaluation step where an anomaly of the source series starts, else 0.",
        4,
    ),
    DerivedFamily::fixed(
        "streamgate.anomaly.active",
        "",
        "1 while the source series is in an anomaly (from its start until the score has calmed), else 0.",
        5,
    ),
    DerivedFamily::fixed(
        "streamgate.forecast",
        "",
        "Forecast of the source series at the horizon.",
        6,
    ),
    DerivedFamily::fixed(
        "streamgate.forecast.lower",
        "",
        "Lower edge of the forecast's prediction interval (90%).",
        7,
    ),
    DerivedFamily::fixed(
        "streamgate.forecast.upper",
        "",
        "Upper edge of the forecast's prediction interval (90%).",
        8,
    ),
    DerivedFamily::fixed(
        "streamgate.time_to_threshold",
        "s",
        "Seconds until the series' current trend reaches the threshold level.",
        9,
    ),
    DerivedFamily::fixed(
        "streamgate.time_to_threshold.confirmed",
        "s",
        "Seconds until the series' current trend reaches the threshold level, shown only while the recent points confirm the trend (a one-off step never does).",
        10,
    ),
];

/// What each of [`DERIVED_FAMILIES`] shows, in the same order.
const DERIVED_KINDS: [DerivedKind; 11] = [
    DerivedKind::Verdict(VerdictField::Expected),
    DerivedKind::Verdict(VerdictField::Lower),
    DerivedKind::Verdict(VerdictField::Upper),
    DerivedKind::Verdict(VerdictField::Score),
    DerivedKind::Verdict(VerdictField::Started),
    DerivedKind::Verdict(VerdictField::Active),
    DerivedKind::Forecast(ForecastEdge::Value),
    DerivedKind::Forecast(ForecastEdge::Lower),
    DerivedKind::Forecast(ForecastEdge::Upper),
    DerivedKind::TimeToThreshold { confirmed: false },
    DerivedKind::TimeToThreshold { confirmed: true },
];

impl DerivedSource for AnalysisProcessor {
    fn families(&self) -> Vec<DerivedFamily> {
        DERIVED_FAMILIES.to_vec()
    }

    /// The key of each family is its index in [`DERIVED_FAMILIES`].
    fn walk(&self, key: u64, sample: &mut SampleSink<'_>) -> bool {
        match usize::try_from(key).ok().and_then(|i| DERIVED_KINDS.get(i)) {
            Some(kind) => self.walk_family(*kind, sample),
            None => true,
        }
    }
}

/// `12 min`, `5 h 3 min`, `40 s` for a duration in seconds.
fn human_duration(secs: f64) -> String {
    let s = secs.max(0.0).round() as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", (s + 30) / 60),
        _ => format!("{} h {} min", s / 3600, (s % 3600) / 60),
    }
}

/// A value in the unit of a Prometheus metric name: bytes as KB/MB/GB
/// (decimal), seconds and ratios as they are, with 4 significant digits.
fn human_quantity(v: f64, metric: &str) -> String {
    if !v.is_finite() {
        return "unknown".into();
    }
    if metric.ends_with("_bytes") || metric.contains("_bytes_") {
        let a = v.abs();
        let (div, unit) = match a {
            a if a >= 1e9 => (1e9, "GB"),
            a if a >= 1e6 => (1e6, "MB"),
            a if a >= 1e3 => (1e3, "KB"),
            _ => (1.0, "B"),
        };
        return format!("{} {unit}", significant(v / div));
    }
    significant(v)
}

/// 4 significant digits, no exponent for everyday magnitudes.
fn significant(v: f64) -> String {
    let a = v.abs();
    if a == 0.0 {
        return "0".into();
    }
    if !(1e-4..1e9).contains(&a) {
        return format!("{v:.3e}");
    }
    let decimals = (3 - a.log10().floor() as i32).max(0) as usize;
    format!("{v:.decimals$}")
}

impl crate::model::recommendation::AnalysisSnapshot for AnalysisProcessor {
    fn analysed(&self, limit: usize) -> (Vec<crate::model::recommendation::AnalysedSeries>, usize) {
        use crate::model::recommendation::{AnalysedSeries, ForecastPoint};
        let series = self.series.lock();
        let total = series.len();
        // Rank by (in an anomaly, score) without building every entry.
        let mut ranked: Vec<(bool, f64, &Series)> = series
            .values()
            .filter_map(|slot| {
                let s: &Series = &slot.series;
                s.verdict().map(|v| (v.in_anomaly, v.score, s))
            })
            .collect();
        let by_rank = |a: &(bool, f64, &Series), b: &(bool, f64, &Series)| {
            b.0.cmp(&a.0).then(b.1.total_cmp(&a.1))
        };
        // Series forecast to reach a threshold soonest come too (the
        // forecasts page lists them), even with a low anomaly score.
        let mut soonest: Vec<(f64, &Series)> = series
            .values()
            .filter_map(|slot| {
                let s: &Series = &slot.series;
                s.thresholds()
                    .iter()
                    .filter_map(|level| s.forecaster.time_to_threshold(*level))
                    .min_by(f64::total_cmp)
                    .map(|eta| (eta, s))
            })
            .collect();
        if ranked.len() > limit {
            ranked.select_nth_unstable_by(limit, by_rank);
            ranked.truncate(limit);
        }
        ranked.sort_by(by_rank);
        soonest.sort_by(|a, b| a.0.total_cmp(&b.0));
        for (_, s) in soonest.into_iter().take(limit) {
            if let Some(v) = s.verdict()
                && !ranked.iter().any(|(_, _, r)| std::ptr::eq(*r, s))
            {
                ranked.push((v.in_anomaly, v.score, s));
            }
        }
        let out = ranked
            .into_iter()
            .filter_map(|(_, _, s)| {
                let v = s.verdict()?;
                let (metric, labels) = s.metric_and_labels();
                let forecasts = self
                    .horizon_labels
                    .iter()
                    .enumerate()
                    .filter_map(|(h, label)| {
                        s.forecaster
                            .forecast(&self.forecast_settings, h)
                            .map(|f| ForecastPoint {
                                horizon: label.clone(),
                                value: f.value,
                                lower: f.lower,
                                upper: f.upper,
                            })
                    })
                    .collect();
                let thresholds = s
                    .thresholds()
                    .iter()
                    .map(|level| (*level, s.forecaster.time_to_threshold(*level)))
                    .collect();
                Some(AnalysedSeries {
                    metric,
                    labels,
                    value: v.value,
                    expected: v.expected,
                    lower: v.lower,
                    upper: v.upper,
                    score: v.score,
                    anomalous: v.in_anomaly,
                    forecasts,
                    thresholds,
                })
            })
            .collect();
        (out, total)
    }
}

impl RecommendationSource for AnalysisProcessor {
    fn recommendations(&self) -> Vec<Recommendation> {
        let series = self.series.lock();
        let mut out = Vec::new();
        for s in series.values().map(|slot| &slot.series) {
            let (metric, mut labels) = s.metric_and_labels();
            let service = labels
                .get("service.name")
                .cloned()
                .unwrap_or_else(|| "its source".into());
            if let Some(v) = s.verdict().filter(|v| v.in_anomaly) {
                let value = v.value;
                out.push(Recommendation {
                    kind: "anomaly",
                    summary: format!(
                        "{metric} of {service} is anomalous: {value:.4} where {:.4} was expected (band {:.4} to {:.4}, score {:.2})",
                        v.expected,
                        v.lower,
                        v.upper,
                        v.score
                    ),
                    metric: metric.clone(),
                    labels: labels.clone(),
                    numbers: [
                        ("value".to_string(), value),
                        ("expected".to_string(), v.expected),
                        ("lower".to_string(), v.lower),
                        ("upper".to_string(), v.upper),
                        ("score".to_string(), v.score),
                    ]
                    .into_iter()
                    .collect(),
                });
            }
            for level in s.thresholds() {
                let Some(eta) = s
                    .forecaster
                    .time_to_threshold(*level)
                    .filter(|eta| *eta <= RECOMMEND_WITHIN_SECS)
                else {
                    continue;
                };
                // The last value fed (the baseline gives no verdict while
                // it warms up; the trend already has its points).
                let value = s
                    .verdict()
                    .map(|v| v.value)
                    .or_else(|| s.forecaster.last_value())
                    .unwrap_or(f64::NAN);
                let per_hour = s.forecaster.trend_per_sec().unwrap_or(f64::NAN) * 3600.0;
                let confirmed = s
                    .forecaster
                    .confirmed_time_to_threshold(&self.forecast_settings, *level);
                labels.insert("threshold".into(), level.to_string());
                let own_memory = service == "streamgate"
                    && [names::PROCESS_RESIDENT_MEMORY, names::HEAP_ALLOCATED]
                        .contains(&metric.as_str());
                let target = if own_memory && Some(*level) == self.memory_limit {
                    format!("its memory limit ({})", human_quantity(*level, &metric))
                } else {
                    human_quantity(*level, &metric)
                };
                let mut numbers: BTreeMap<String, f64> = [
                    ("value".to_string(), value),
                    ("threshold".to_string(), *level),
                    ("eta_seconds".to_string(), eta),
                    ("rate_per_hour".to_string(), per_hour),
                ]
                .into_iter()
                .collect();
                if let Some(confirmed) = confirmed {
                    numbers.insert("confirmed_eta_seconds".to_string(), confirmed);
                }
                out.push(Recommendation {
                    kind: "threshold",
                    summary: format!(
                        "{metric} of {service} {} {} per hour and is forecast to reach {target} in {} (now {}{})",
                        if per_hour >= 0.0 { "grows" } else { "falls" },
                        human_quantity(per_hour.abs(), &metric),
                        human_duration(eta),
                        human_quantity(value, &metric),
                        if confirmed.is_some() {
                            ""
                        } else {
                            "; the trend is not yet confirmed by the recent points"
                        },
                    ),
                    metric: metric.clone(),
                    labels: labels.clone(),
                    numbers,
                });
            }
        }
        // Soonest crossings first, then anomalies by score.
        out.sort_by(|a, b| {
            let key = |r: &Recommendation| {
                r.numbers
                    .get("eta_seconds")
                    .copied()
                    .unwrap_or(f64::INFINITY)
            };
            key(a).total_cmp(&key(b)).then_with(|| {
                let score = |r: &Recommendation| r.numbers.get("score").copied().unwrap_or(0.0);
                score(b).total_cmp(&score(a))
            })
        });
        out
    }
}

/// Derived gauges (the window processor's) are observed like received
/// points, and go no further: their source renders them.
impl crate::pipeline::derived::DerivedObserver for AnalysisProcessor {
    fn wants_metric(&self, name: &str) -> bool {
        self.wants(name)
    }

    fn observe_derived(&self, batch: &MetricsBatch) {
        self.observe_request(batch, now_secs());
    }
}

impl MetricsConsumer for AnalysisProcessor {
    fn consume_metrics(&self, request: &MetricsBatch) -> ConsumeResult {
        self.observe_request(request, now_secs());
        self.downstream.consume_metrics(request)
    }
}

#[cfg(test)]
mod tests;
