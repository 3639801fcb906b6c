//! Tests of the analysis processor: selection, counters as rates, the
//! derived series with their source's identity, anomalies, withdrawal.

use crate::model::MetricsBatch;
use crate::model::text::AttributeLookup;
use std::sync::Arc;

use super::*;
use crate::config::types::HumanDuration;
use crate::model::otlp::metrics::Sum;
use crate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, metric::Data, number_data_point,
};
use crate::model::otlp::metrics::{ResourceMetrics, ScopeMetrics};
use crate::model::otlp::resource::Resource;
use crate::pipeline::Consumed;
use crate::pipeline::durable::Restored;
use crate::processors::derived_test_support::{CountedLabels, PlainLabels, rendered};

struct Sink;

impl MetricsConsumer for Sink {
    fn consume_metrics(&self, _: &MetricsBatch) -> ConsumeResult {
        Ok(Consumed::all())
    }
}

/// One evaluation step at `t`, then what `/metrics` would render.
fn evaluated(p: &AnalysisProcessor, t: f64) -> MetricsRequest {
    p.evaluate(t);
    rendered(p)
}

const T0: f64 = 1_800_000_000.0;

fn processor(select: Vec<SelectRule>) -> AnalysisProcessor {
    let config = AnalysisConfig {
        select,
        step: HumanDuration::secs(30),
        horizons: vec![HumanDuration::secs(60)],
        series_ttl: HumanDuration::secs(300),
        ..Default::default()
    };
    with_config(config)
}

/// A processor of `config`, its gauges labelled by [`PlainLabels`].
fn with_config(config: AnalysisConfig) -> AnalysisProcessor {
    with_telemetry(config, Arc::new(Telemetry::new()))
}

/// [`with_config`], counting into `telemetry`.
fn with_telemetry(config: AnalysisConfig, telemetry: Arc<Telemetry>) -> AnalysisProcessor {
    AnalysisProcessor::new(config, Arc::new(Sink), Arc::new(PlainLabels), telemetry)
}

fn rule(name: &str) -> SelectRule {
    SelectRule {
        name: name.into(),
        labels: Default::default(),
    }
}

fn request(name: &str, data: Data) -> MetricsRequest {
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    string_kv("service.name", "api"),
                    string_kv("host.name", "h"),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    unit: "1".into(),
                    data: Some(data),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn gauge_request(value: f64, route: &str) -> MetricsRequest {
    request(
        "queue.depth",
        Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: vec![string_kv("route", route)],
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            }],
        }),
    )
}

/// (metric, value, flags) of the points of `name`.
fn values(r: &MetricsRequest, name: &str) -> Vec<(Vec<KeyValue>, Option<f64>, u32)> {
    r.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .filter(|m| m.name == name)
        .flat_map(|m| match &m.data {
            Some(Data::Gauge(g)) => g.data_points.clone(),
            _ => Vec::new(),
        })
        .map(|p| {
            let v = match p.value {
                Some(number_data_point::Value::AsDouble(v)) => Some(v),
                _ => None,
            };
            (p.attributes, v, p.flags)
        })
        .collect()
}

#[test]
fn steady_series_then_a_spike_raises_one_anomaly() {
    let p = processor(vec![rule("queue.depth")]);
    let mut anomalies = Vec::new();
    let mut last = MetricsRequest::default();
    for step in 0..200 {
        let noise = ((step * 7919) % 13) as f64 * 0.1;
        let value = if step == 150 { 500.0 } else { 10.0 + noise };
        let t = T0 + step as f64 * 30.0;
        p.observe_request(
            &MetricsBatch::from_request((gauge_request(value, "/a")).clone()),
            t - 1.0,
        );
        last = evaluated(&p, t);
        for (_, v, _) in values(&last, "streamgate.anomaly") {
            if v == Some(1.0) {
                anomalies.push(step);
            }
        }
    }
    assert_eq!(anomalies, vec![150], "one rising edge, at the spike");
    let expected = values(&last, "streamgate.baseline.expected");
    assert_eq!(expected.len(), 1);
    let (attributes, v, _) = &expected[0];
    assert!(
        (v.unwrap() - 10.6).abs() < 1.0,
        "the spike did not poison the baseline: {v:?}"
    );
    assert_eq!(
        attributes.text("metric").as_deref(),
        Some("queue_depth_ratio")
    );
    assert_eq!(attributes.text("route").as_deref(), Some("/a"));
    assert!(
        !values(&last, "streamgate.forecast").is_empty(),
        "forecasts after warm-up"
    );
    let resource = last.resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(
        resource.attributes.len(),
        1,
        "identifying resource attributes only"
    );
}

#[test]
fn counters_are_analysed_as_rates() {
    let p = processor(vec![rule("requests")]);
    let mut last = MetricsRequest::default();
    for step in 0..40u64 {
        let t = T0 + step as f64 * 30.0;
        let counter = request(
            "requests",
            Data::Sum(Sum {
                aggregation_temporality: 2,
                is_monotonic: true,
                data_points: vec![NumberDataPoint {
                    time_unix_nano: (t * 1e9) as u64,
                    // 10 per second.
                    value: Some(number_data_point::Value::AsInt((step * 300) as i64)),
                    ..Default::default()
                }],
            }),
        );
        p.observe_request(&MetricsBatch::from_request((counter).clone()), t);
        last = evaluated(&p, t);
    }
    let expected = values(&last, "streamgate.baseline.expected");
    let (attributes, v, _) = &expected[0];
    assert!((v.unwrap() - 10.0).abs() < 1e-6, "{v:?}");
    assert_eq!(attributes.text("transform").as_deref(), Some("rate"));
    assert_eq!(attributes.text("metric").as_deref(), Some("requests_total"));
}

/// A delta counter is analysed as a rate too: its points are added up,
/// a repeated point (a retried export) is not counted twice, and a
/// negative one is no increase.
#[test]
fn delta_counters_are_analysed_as_rates() {
    let p = processor(vec![rule("requests")]);
    let delta = |t: f64, increase: i64| {
        request(
            "requests",
            Data::Sum(Sum {
                aggregation_temporality: 1,
                is_monotonic: true,
                data_points: vec![NumberDataPoint {
                    start_time_unix_nano: ((t - 30.0) * 1e9) as u64,
                    time_unix_nano: (t * 1e9) as u64,
                    value: Some(number_data_point::Value::AsInt(increase)),
                    ..Default::default()
                }],
            }),
        )
    };
    let mut last = MetricsRequest::default();
    for step in 0..40u64 {
        let t = T0 + step as f64 * 30.0;
        // 10 per second: 300 per 30 s, sent twice, and a bogus −5.
        p.observe_request(&MetricsBatch::from_request(delta(t, 300)), t);
        p.observe_request(&MetricsBatch::from_request(delta(t, 300)), t);
        p.observe_request(&MetricsBatch::from_request(delta(t, -5)), t);
        last = evaluated(&p, t);
    }
    let expected = values(&last, "streamgate.baseline.expected");
    assert_eq!(expected.len(), 1, "{expected:?}");
    let (attributes, v, _) = &expected[0];
    assert!((v.unwrap() - 10.0).abs() < 1e-6, "{v:?}");
    assert_eq!(attributes.text("transform").as_deref(), Some("rate"));
    assert_eq!(attributes.text("metric").as_deref(), Some("requests_total"));
}

#[test]
fn label_rules_select_points_and_silent_series_are_withdrawn() {
    let mut only_b = rule("queue.depth");
    only_b.labels.insert("route".into(), "/b".into());
    let p = processor(vec![only_b]);
    for step in 0..20 {
        let t = T0 + step as f64 * 30.0;
        p.observe_request(
            &MetricsBatch::from_request((gauge_request(5.0, "/a")).clone()),
            t,
        );
        p.observe_request(
            &MetricsBatch::from_request((gauge_request(5.0, "/b")).clone()),
            t,
        );
        p.evaluate(t);
    }
    assert_eq!(p.series_count(), 1);
    let shown = rendered(&p);
    assert_eq!(values(&shown, "streamgate.baseline.expected").len(), 1);
    assert_eq!(values(&shown, "streamgate.forecast").len(), 1);
    // Silent past the TTL: every derived series is gone.
    let r = evaluated(&p, T0 + 20.0 * 30.0 + 400.0);
    assert!(r.resource_metrics.is_empty(), "{r:?}");
    assert_eq!(p.series_count(), 0);
}

/// A `disk.usage` gauge request with one point of `value`.
fn disk_usage(value: f64) -> MetricsRequest {
    request(
        "disk.usage",
        Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            }],
        }),
    )
}

#[test]
fn time_to_threshold_follows_the_trend() {
    let config = AnalysisConfig {
        select: vec![rule("disk.usage")],
        thresholds: vec![ThresholdRule {
            name: "disk.*".into(),
            value: 1000.0,
        }],
        step: HumanDuration::secs(30),
        horizons: vec![HumanDuration::secs(60)],
        ..Default::default()
    };
    let p = with_config(config);
    let mut last = MetricsRequest::default();
    let (mut shown, mut withdrawn, mut was_shown) = (0, 0, false);
    for step in 0..40 {
        let t = T0 + step as f64 * 30.0;
        // +1 per second: from 100 at step 0.
        let value = 100.0 + step as f64 * 30.0;
        let r = disk_usage(value);
        p.observe_request(&MetricsBatch::from_request((r).clone()), t);
        last = evaluated(&p, t);
        let eta = values(&last, "streamgate.time_to_threshold");
        assert!(eta.len() <= 1, "{eta:?}");
        for (a, v, _) in &eta {
            assert_eq!(a.text("threshold").as_deref(), Some("1000"));
            let secs = v.expect("a value");
            shown += 1;
            // (1000 - value) seconds at +1/s.
            assert!(
                (secs - (900.0 - step as f64 * 30.0)).abs() < 1.0,
                "{secs} at {step}"
            );
        }
        if was_shown && eta.is_empty() {
            withdrawn += 1;
        }
        was_shown = !eta.is_empty();
    }
    assert!(shown > 10, "shown {shown} times");
    assert_eq!(withdrawn, 1, "withdrawn once when crossed");
    // At step 39 the value is 1270, past 1000: the ETA shown before is
    // withdrawn once the level is behind the trend.
    let eta = values(&last, "streamgate.time_to_threshold");
    assert!(eta.is_empty(), "{eta:?}");
    let p2 = with_config(AnalysisConfig {
        select: vec![rule("disk.usage")],
        thresholds: vec![ThresholdRule {
            name: "disk.usage".into(),
            value: 10_000.0,
        }],
        horizons: vec![HumanDuration::secs(60)],
        ..Default::default()
    });
    for step in 0..40 {
        let t = T0 + step as f64 * 30.0;
        let r = disk_usage(100.0 + step as f64 * 30.0);
        p2.observe_request(&MetricsBatch::from_request((r).clone()), t);
        last = evaluated(&p2, t);
    }
    // Value 1270 at +1/s: 10 000 is 8 730 s away.
    let eta = values(&last, "streamgate.time_to_threshold");
    assert_eq!(eta.len(), 1, "{eta:?}");
    let secs = eta[0].1.unwrap();
    assert!((secs - 8730.0).abs() < 1.0, "{secs}");
}

/// A series forecast to reach its threshold and a series in an anomaly
/// each give a recommendation with the numbers behind it.
/// A processor fed 150 steps of `disk.usage` growing 1/s (threshold
/// 10,000, reached in 5430 s) and of `queue.depth` steady until a 900 at
/// the last step.
fn disk_and_depth() -> AnalysisProcessor {
    let config = AnalysisConfig {
        select: vec![rule("disk.usage"), rule("queue.depth")],
        thresholds: vec![ThresholdRule {
            name: "disk.usage".into(),
            value: 10_000.0,
        }],
        horizons: vec![HumanDuration::secs(60)],
        ..Default::default()
    };
    let p = with_config(config);
    for step in 0..150 {
        let t = T0 + step as f64 * 30.0;
        let disk = disk_usage(100.0 + step as f64 * 30.0);
        p.observe_request(&MetricsBatch::from_request((disk).clone()), t);
        let depth = if step == 149 {
            900.0
        } else {
            10.0 + ((step * 7919) % 13) as f64 * 0.1
        };
        p.observe_request(
            &MetricsBatch::from_request((gauge_request(depth, "/a")).clone()),
            t,
        );
        p.evaluate(t);
    }
    p
}

/// A trend known before the baseline is warm: the threshold finding says
/// where the series is now, not "unknown".
#[test]
fn a_threshold_finding_before_the_baseline_is_warm_states_the_value() {
    let config = AnalysisConfig {
        select: vec![rule("disk.usage")],
        thresholds: vec![ThresholdRule {
            name: "disk.usage".into(),
            value: 1000.0,
        }],
        horizons: vec![HumanDuration::secs(60)],
        ..Default::default()
    };
    let p = with_config(config);
    let mut finding = None;
    for step in 0..6 {
        let t = T0 + step as f64 * 30.0;
        let disk = disk_usage(100.0 + step as f64 * 30.0);
        p.observe_request(&MetricsBatch::from_request(disk), t);
        p.evaluate(t);
        finding = p
            .recommendations()
            .into_iter()
            .find(|r| r.kind == "threshold");
        if finding.is_some() {
            break;
        }
    }
    // (Six points are fewer than the baseline's warm-up: this is the case
    // without a verdict.)
    assert!(crate::analytics::baselines::BaselineConfig::default().warmup_points > 6);
    let finding = finding.expect("a threshold finding within 6 steps");
    assert!(finding.summary.contains("(now 1"), "{}", finding.summary);
    assert!(!finding.summary.contains("unknown"), "{}", finding.summary);
    assert!(finding.numbers["value"].is_finite());
}

#[test]
fn recommendations_name_the_series_and_numbers() {
    use crate::model::recommendation::RecommendationSource;
    let p = disk_and_depth();
    let list = p.recommendations();
    let threshold = list
        .iter()
        .find(|r| r.kind == "threshold")
        .expect("a threshold finding");
    assert_eq!(threshold.metric, "disk_usage_ratio");
    // 100 + 149 × 30 = 4570 now, +1/s: 5430 s to 10 000.
    assert!((threshold.numbers["eta_seconds"] - 5430.0).abs() < 1.0);
    // An exact ramp: the trend is confirmed, at the same time.
    assert_eq!(
        threshold.numbers.get("confirmed_eta_seconds"),
        Some(&threshold.numbers["eta_seconds"])
    );
    assert!((threshold.numbers["rate_per_hour"] - 3600.0).abs() < 1.0);
    assert_eq!(
        threshold.summary,
        "disk_usage_ratio of api grows 3600 per hour and is forecast to reach 10000 in 91 min (now 4570)",
    );
    assert_eq!(threshold.labels["service.name"], "api");
    let anomaly = list
        .iter()
        .find(|r| r.kind == "anomaly")
        .expect("an anomaly finding");
    assert_eq!(anomaly.metric, "queue_depth_ratio");
    assert_eq!(anomaly.numbers["value"], 900.0);
    assert!(
        anomaly.summary.contains("is anomalous"),
        "{}",
        anomaly.summary
    );
    assert_eq!(anomaly.labels["route"], "/a");
}

/// The console's snapshot: the anomalous series ranks first with its
/// numbers and forecasts; with a limit of one, the series forecast to
/// reach its threshold still comes, after it, with its time to threshold.
#[test]
fn the_snapshot_ranks_anomalies_and_keeps_threshold_crossings() {
    use crate::model::recommendation::AnalysisSnapshot;
    let p = disk_and_depth();
    let (list, total) = p.analysed(1);
    assert_eq!(total, 2);
    assert_eq!(list.len(), 2, "{list:?}");
    assert_eq!(list[0].metric, "queue_depth_ratio");
    assert!(list[0].anomalous);
    assert_eq!(list[0].value, 900.0);
    assert!(list[0].score > 0.5);
    assert!(list[0].lower < list[0].expected && list[0].expected < list[0].upper);
    assert_eq!(list[1].metric, "disk_usage_ratio");
    assert!(!list[1].anomalous);
    let (level, eta) = list[1].thresholds[0];
    assert_eq!(level, 10_000.0);
    assert!((eta.expect("a crossing") - 5430.0).abs() < 1.0);
    assert_eq!(list[1].forecasts.len(), 1);
    assert_eq!(list[1].forecasts[0].horizon, "1m");
}

fn calls_request(ok: f64, error: Option<f64>) -> MetricsRequest {
    let point = |status: &str, value: f64| NumberDataPoint {
        attributes: vec![
            string_kv("span.name", "GET /cart"),
            string_kv("status.code", status),
        ],
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    };
    let mut data_points = vec![point("STATUS_CODE_UNSET", ok)];
    data_points.extend(error.map(|e| point("STATUS_CODE_ERROR", e)));
    request(
        "traces.span.metrics.calls",
        Data::Sum(Sum {
            data_points,
            aggregation_temporality: 2,
            is_monotonic: true,
        }),
    )
}

#[test]
fn error_ratio_of_span_calls_is_analysed_by_default() {
    // Only the default ratio rule: no plain selection.
    let p = processor(Vec::new());
    let (mut ok, mut err) = (0.0, 0.0);
    let mut edges = Vec::new();
    let mut learned = None;
    let mut last = MetricsRequest::default();
    for step in 0..120 {
        let t = T0 + step as f64 * 30.0;
        // 100 calls per step, 10 % errors, from step 100 on 50 %.
        let errors = if step >= 100 { 50.0 } else { 10.0 };
        ok += 100.0 - errors;
        err += errors;
        p.observe_request(
            &MetricsBatch::from_request((calls_request(ok, Some(err))).clone()),
            t - 1.0,
        );
        last = evaluated(&p, t);
        if step == 99 {
            learned = values(&last, "streamgate.baseline.expected")
                .first()
                .and_then(|(_, v, _)| *v);
        }
        for (_, v, _) in values(&last, "streamgate.anomaly") {
            if v == Some(1.0) {
                edges.push(step);
            }
        }
    }
    let learned = learned.expect("a baseline after warm-up");
    assert!((learned - 0.1).abs() < 1e-6, "learned {learned}");
    assert_eq!(edges.len(), 1, "{edges:?}");
    assert!((100..104).contains(&edges[0]), "{edges:?}");
    let expected = values(&last, "streamgate.baseline.expected");
    assert_eq!(expected.len(), 1, "{expected:?}");
    let (attributes, _, _) = &expected[0];
    let text = |k: &str| attributes.text(k);
    assert_eq!(text("transform").as_deref(), Some("ratio"));
    assert_eq!(
        text("ratio").as_deref(),
        Some("status.code=STATUS_CODE_ERROR")
    );
    assert_eq!(
        text("metric").as_deref(),
        Some("traces_span_metrics_calls_total")
    );
    assert_eq!(text("span.name").as_deref(), Some("GET /cart"));
    assert_eq!(text("status.code"), None, "summed away");
}

#[test]
fn quantities_are_written_for_people() {
    assert_eq!(
        human_quantity(40e6, "process_resident_memory_bytes"),
        "40.00 MB"
    );
    assert_eq!(human_quantity(1.5e9, "x_bytes_total"), "1.500 GB");
    assert_eq!(human_quantity(512.0, "x_bytes"), "512.0 B");
    assert_eq!(human_quantity(0.25, "latency_seconds"), "0.2500");
    assert_eq!(human_quantity(f64::NAN, "x"), "unknown");
    assert_eq!(human_quantity(2e12, "x"), "2.000e12");
}

#[test]
fn exclude_rules_win_over_select_and_match_resource_attributes() {
    let config = AnalysisConfig {
        select: vec![rule("queue.depth")],
        exclude: vec![SelectRule {
            name: "queue.*".into(),
            labels: [("route".to_string(), "/b".to_string())].into(),
        }],
        ..Default::default()
    };
    let p = with_config(config);
    p.observe_request(
        &MetricsBatch::from_request((gauge_request(1.0, "/a")).clone()),
        T0,
    );
    p.observe_request(
        &MetricsBatch::from_request((gauge_request(1.0, "/b")).clone()),
        T0,
    );
    assert_eq!(p.series_count(), 1, "/b is excluded");

    // service.name is a resource attribute: excluding the service drops
    // all of its points.
    let config = AnalysisConfig {
        select: vec![rule("queue.depth")],
        exclude: vec![SelectRule {
            name: "*".into(),
            labels: [("service.name".to_string(), "api".to_string())].into(),
        }],
        ..Default::default()
    };
    let p = with_config(config);
    p.observe_request(
        &MetricsBatch::from_request((gauge_request(1.0, "/a")).clone()),
        T0,
    );
    assert_eq!(p.series_count(), 0);
}

/// StreamGate's own heap, growing steadily, is forecast to reach the
/// process' memory limit: a recommendation says how fast and when.
#[test]
fn own_heap_growth_is_forecast_to_the_memory_limit() {
    let Some(limit) = crate::telemetry::allocator::memory_limit_bytes() else {
        return; // no /proc: no limit to forecast to
    };
    let p = with_config(AnalysisConfig {
        horizons: vec![HumanDuration::secs(300)],
        ..Default::default()
    });
    // limit/1000 more every 30 s step: 150 steps end at 15.9 % of the limit.
    let per_step = limit / 1000.0;
    for step in 0..150 {
        let t = T0 + step as f64 * 30.0;
        let reading = own::OwnReading {
            heap_allocated: Some(limit * 0.01 + step as f64 * per_step),
            queue_depth: Some(0.0),
            ..Default::default()
        };
        p.observe_request(
            &MetricsBatch::from_request((own::request(&reading, 0, (t * 1e9) as u64)).clone()),
            t,
        );
        p.evaluate(t);
    }
    let list = p.recommendations();
    let heap = list
        .iter()
        .find(|r| r.kind == "threshold" && r.metric == "streamgate_heap_allocated_bytes")
        .unwrap_or_else(|| panic!("a heap finding in {list:?}"));
    assert_eq!(heap.numbers["threshold"], limit);
    assert_eq!(heap.labels["service.name"], "streamgate");
    // Now 0.159 × limit, growing limit/1000 per 30 s: 841 steps to go.
    let eta = 841.0 * 30.0;
    assert!(
        (heap.numbers["eta_seconds"] - eta).abs() < 0.01 * eta,
        "{:?}",
        heap.numbers
    );
    assert!(
        (heap.numbers["rate_per_hour"] - per_step * 120.0).abs() < 0.01 * per_step * 120.0,
        "{:?}",
        heap.numbers
    );
    assert!(
        heap.summary
            .starts_with("streamgate_heap_allocated_bytes of streamgate grows "),
        "{}",
        heap.summary
    );
    assert!(
        heap.summary
            .contains(" per hour and is forecast to reach its memory limit ("),
        "{}",
        heap.summary
    );
    assert!(heap.summary.contains(" in 7 h 0 min"), "{}", heap.summary);
}

fn gauges_request(points: &[(&str, f64)]) -> MetricsRequest {
    request(
        "queue.depth",
        Data::Gauge(Gauge {
            data_points: route_points(points),
        }),
    )
}

/// One point per `(route, value)`, labelled `route`.
fn route_points(points: &[(&str, f64)]) -> Vec<NumberDataPoint> {
    points
        .iter()
        .map(|&(route, value)| NumberDataPoint {
            attributes: vec![string_kv("route", route)],
            value: Some(number_data_point::Value::AsDouble(value)),
            ..Default::default()
        })
        .collect()
}

/// The value each series holds for the next step, by its `route`.
fn pending_by_route(p: &AnalysisProcessor) -> std::collections::BTreeMap<String, Option<f64>> {
    p.series
        .lock()
        .values()
        .map(|slot| {
            let route = slot
                .series
                .text
                .attribute_texts(&slot.series.origin)
                .into_iter()
                .find(|(key, _)| key == "route")
                .map(|(_, value)| value)
                .unwrap_or_default();
            (route, slot.pending())
        })
        .collect()
}

#[test]
fn a_series_entry_fits_in_48_bytes() {
    // What every point writes lives in the map entry; with its key it
    // takes 48 bytes (of the table's 49 per bucket with its control byte).
    assert!(
        size_of::<(u64, Slot)>() <= 48,
        "{}",
        size_of::<(u64, Slot)>()
    );
}

/// A series' last point is kept to the second, rounded up: it expires at
/// most a second after `series_ttl` (300 s here), never before.
#[test]
fn a_silent_series_expires_within_a_second_after_its_ttl() {
    let p = processor(vec![rule("queue.depth")]);
    let at = T0 + 0.25;
    p.observe_request(&MetricsBatch::from_request(gauge_request(5.0, "/a")), at);
    p.evaluate(at);
    p.evaluate(at + 300.0);
    assert_eq!(p.series_count(), 1, "expired before its TTL");
    p.evaluate(at + 301.01);
    assert_eq!(p.series_count(), 0, "kept more than a second past its TTL");
}

#[test]
fn series_of_one_source_share_its_origin_until_the_last_expires() {
    let p = processor(vec![rule("queue.depth")]);
    let batch = |points: &[(&str, f64)]| MetricsBatch::from_request(gauges_request(points));
    p.observe_request(&batch(&[("/a", 1.0), ("/b", 2.0), ("/c", 3.0)]), T0);
    let r = evaluated(&p, T0);
    assert_eq!(p.series_count(), 3);
    assert_eq!(p.origins.lock().len(), 1);
    {
        let series = p.series.lock();
        let origins: Vec<&Arc<Origin>> = series.values().map(|s| &s.series.origin).collect();
        assert!(origins.windows(2).all(|w| Arc::ptr_eq(w[0], w[1])));
        assert_eq!(origins[0].resource, vec![string_kv("service.name", "api")]);
        // The run of resource labels is kept once, in the origin: each
        // series keeps only its own text.
        assert_eq!(
            origins[0].label_run.get().map(|r| &**r),
            Some("resource:service.name\u{2}api")
        );
        for s in series.values() {
            let mut scratch = String::new();
            let (head, tail, split) = s.series.text.label_parts(&s.series.origin, &mut scratch);
            assert!(split && head.is_empty() && !tail.contains("resource:"));
        }
    }
    // The derived series go out under the source's identifying resource.
    for rm in &r.resource_metrics {
        let resource = rm.resource.as_ref().map(|r| r.attributes.clone());
        assert_eq!(resource, Some(vec![string_kv("service.name", "api")]));
    }
    // /a keeps reporting; /b and /c go silent and expire: the origin stays
    // while /a holds it, and is released with the last series.
    p.observe_request(&batch(&[("/a", 1.0)]), T0 + 200.0);
    p.evaluate(T0 + 400.0);
    assert_eq!(p.series_count(), 1);
    assert_eq!(p.origins.lock().len(), 1);
    p.evaluate(T0 + 1000.0);
    assert_eq!(p.series_count(), 0);
    assert!(p.origins.lock().is_empty());
}

#[test]
fn new_and_known_series_in_one_request_each_get_their_own_value() {
    let p = processor(vec![rule("queue.depth")]);
    let batch = |points: &[(&str, f64)]| MetricsBatch::from_request(gauges_request(points));
    p.observe_request(&batch(&[("/a", 1.0), ("/c", 3.0)]), T0);
    // Known and new series interleaved, and a new series twice: the
    // first pass finds /a and /c, the second walk creates /b and /d.
    p.observe_request(
        &batch(&[
            ("/a", 10.0),
            ("/b", 20.0),
            ("/c", 30.0),
            ("/d", 40.0),
            ("/b", 21.0),
        ]),
        T0 + 1.0,
    );
    let pending = pending_by_route(&p);
    let want: std::collections::BTreeMap<String, Option<f64>> =
        [("/a", 10.0), ("/b", 21.0), ("/c", 30.0), ("/d", 40.0)]
            .into_iter()
            .map(|(r, v)| (r.to_string(), Some(v)))
            .collect();
    assert_eq!(pending, want);
}

/// A series whose gauges' labels the exporter would refuse is not
/// analysed, and its points are counted as skipped; the others are.
#[test]
fn series_the_exporter_would_refuse_are_counted_not_created() {
    let telemetry = Arc::new(Telemetry::new());
    let p = with_telemetry(
        AnalysisConfig {
            select: vec![rule("queue.depth")],
            ..Default::default()
        },
        telemetry.clone(),
    );
    let long = "/".repeat(300);
    let batch = MetricsBatch::from_request(gauges_request(&[("/a", 1.0), (&long, 2.0)]));
    p.observe_request(&batch, T0);
    p.observe_request(&batch, T0 + 1.0);
    let pending = pending_by_route(&p);
    assert_eq!(pending.len(), 1);
    assert_eq!(pending.get("/a"), Some(&Some(1.0)));
    assert_eq!(telemetry.health_counters().limited_points, 2);
}

/// A refused series' labels are translated once: its later points are
/// counted as skipped from memory, until it has been silent for
/// `series_ttl`.
#[test]
fn a_refused_series_is_remembered_until_it_goes_silent() {
    use std::sync::atomic::Ordering;
    let telemetry = Arc::new(Telemetry::new());
    let labels = Arc::new(CountedLabels(Default::default()));
    let p = AnalysisProcessor::new(
        AnalysisConfig {
            select: vec![rule("queue.depth")],
            step: HumanDuration::secs(30),
            series_ttl: HumanDuration::secs(300),
            ..Default::default()
        },
        Arc::new(Sink),
        labels.clone(),
        telemetry.clone(),
    );
    let long = "/".repeat(300);
    let batch = MetricsBatch::from_request(gauges_request(&[(&long, 2.0)]));
    for i in 0..5 {
        p.observe_request(&batch, T0 + f64::from(i));
    }
    assert_eq!(labels.0.load(Ordering::Relaxed), 1, "translated once");
    assert_eq!(telemetry.health_counters().limited_points, 5);
    // Still sending: remembered across steps.
    p.evaluate(T0 + 200.0);
    p.observe_request(&batch, T0 + 250.0);
    p.evaluate(T0 + 500.0);
    p.observe_request(&batch, T0 + 501.0);
    assert_eq!(labels.0.load(Ordering::Relaxed), 1, "still remembered");
    // Silent for longer than the TTL: forgotten, so tried again.
    p.evaluate(T0 + 900.0);
    p.observe_request(&batch, T0 + 901.0);
    assert_eq!(labels.0.load(Ordering::Relaxed), 2, "tried again");
    assert_eq!(telemetry.health_counters().limited_points, 8);
    assert_eq!(p.series_count(), 0);
}

#[test]
fn series_beyond_max_series_are_counted_not_created() {
    let config = AnalysisConfig {
        select: vec![rule("queue.depth")],
        max_series: 2,
        ..Default::default()
    };
    let telemetry = Arc::new(Telemetry::new());
    let p = with_telemetry(config, telemetry.clone());
    let batch = MetricsBatch::from_request(gauges_request(&[
        ("/a", 1.0),
        ("/b", 2.0),
        ("/c", 3.0),
        ("/a", 4.0),
    ]));
    p.observe_request(&batch, T0);
    let pending = pending_by_route(&p);
    assert_eq!(pending.len(), 2);
    assert_eq!(pending.get("/a"), Some(&Some(4.0)));
    assert_eq!(pending.get("/b"), Some(&Some(2.0)));
    assert_eq!(
        telemetry.health_counters().limited_points,
        1,
        "/c is counted"
    );
}

/// The derived series of one evaluation, as comparable (name, value) pairs.
fn derived_values(r: &MetricsRequest) -> Vec<(String, Option<f64>)> {
    let mut out: Vec<(String, Option<f64>)> = r
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .flat_map(|m| {
            values(r, &m.name)
                .into_iter()
                .map(|(attributes, v, _)| {
                    let horizon = attributes.text("horizon").unwrap_or_default();
                    (format!("{}{horizon}", m.name), v)
                })
                .collect::<Vec<_>>()
        })
        .collect();
    out.sort_by(|a, b| a.0.cmp(&b.0));
    out.dedup();
    out
}

/// A processor restored from another's snapshot continues exactly where
/// the other was: the same baselines, forecasts and counter rates, once
/// each series' first point after the restart claims its models.
#[test]
fn restored_models_continue_where_the_snapshot_left_them() {
    use crate::pipeline::durable::Durable;
    let select = vec![rule("queue.depth"), rule("jobs.done")];
    let counter = |total: f64| {
        request(
            "jobs.done",
            Data::Sum(Sum {
                data_points: vec![NumberDataPoint {
                    value: Some(number_data_point::Value::AsDouble(total)),
                    ..Default::default()
                }],
                aggregation_temporality: 2,
                is_monotonic: true,
            }),
        )
    };
    let feed = |p: &AnalysisProcessor, step: usize| {
        let t = T0 + step as f64 * 30.0;
        let value = 10.0 + (step as f64 * 0.7).sin() * 3.0;
        p.observe_request(
            &MetricsBatch::from_request(gauge_request(value, "/a")),
            t - 1.0,
        );
        let mut c = counter(step as f64 * 12.0);
        if let Some(Data::Sum(s)) = &mut c.resource_metrics[0].scope_metrics[0].metrics[0].data {
            s.data_points[0].time_unix_nano = ((t - 1.0) * 1e9) as u64;
        }
        p.observe_request(&MetricsBatch::from_request(c), t - 1.0);
        evaluated(p, t)
    };
    let original = processor(select.clone());
    for step in 0..120 {
        feed(&original, step);
    }
    let mut snapshot = Vec::new();
    original.snapshot(&mut snapshot).expect("snapshot");

    let restarted = processor(select.clone());
    let restored = restarted.restore(&snapshot).expect("restore");
    assert_eq!(
        restored,
        Restored {
            items: 2,
            discarded: 0
        }
    );
    assert_eq!(restarted.series_count(), 0, "models wait for their series");
    // A snapshot before the series return keeps the waiting models.
    let mut again = Vec::new();
    restarted.snapshot(&mut again).expect("snapshot");
    assert_eq!(again.len(), snapshot.len());

    for step in 120..160 {
        let a = derived_values(&feed(&original, step));
        let b = derived_values(&feed(&restarted, step));
        assert!(!a.is_empty());
        assert_eq!(a, b, "step {step}: the restored processor diverged");
    }

    // Without the snapshot, the first outputs differ (warm-up again).
    let fresh = processor(select);
    let a = derived_values(&feed(&original, 160));
    let b = derived_values(&feed(&fresh, 160));
    assert_ne!(a, b);
}

/// A ratio series restored from a snapshot keeps its group (its members'
/// last totals), so its first step after the restart already has an
/// increase to divide: it goes on exactly as the original.
#[test]
fn a_restored_ratio_series_keeps_its_group() {
    use crate::pipeline::durable::Durable;
    let feed = |p: &AnalysisProcessor, step: usize| {
        // 100 calls a step, 10 to 16 of them errors.
        let t = T0 + step as f64 * 30.0;
        let calls = 100.0 * step as f64;
        let err = (0..=step).map(|s| 10.0 + (s % 7) as f64).sum::<f64>();
        p.observe_request(
            &MetricsBatch::from_request(calls_request(calls - err, Some(err))),
            t - 1.0,
        );
        derived_values(&evaluated(p, t))
    };
    let original = processor(Vec::new());
    for step in 0..60 {
        feed(&original, step);
    }
    let mut snapshot = Vec::new();
    original.snapshot(&mut snapshot).expect("snapshot");
    let restarted = processor(Vec::new());
    restarted.restore(&snapshot).expect("restore");
    for step in 60..80 {
        let (a, b) = (feed(&original, step), feed(&restarted, step));
        assert!(!a.is_empty());
        assert_eq!(a, b, "step {step}: the restored ratio diverged");
    }
}

/// A snapshot taken with other seasonality settings is discarded per
/// series (counted), never attached to models of another shape; bytes
/// that are not a snapshot are an error.
#[test]
fn models_of_another_shape_are_discarded_and_garbage_refused() {
    use crate::pipeline::durable::Durable;
    let original = processor(vec![rule("queue.depth")]);
    for step in 0..30 {
        let t = T0 + step as f64 * 30.0;
        original.observe_request(
            &MetricsBatch::from_request(gauge_request(5.0, "/a")),
            t - 1.0,
        );
        original.evaluate(t);
    }
    let mut snapshot = Vec::new();
    original.snapshot(&mut snapshot).expect("snapshot");
    let mut config = AnalysisConfig {
        select: vec![rule("queue.depth")],
        step: HumanDuration::secs(30),
        horizons: vec![HumanDuration::secs(60), HumanDuration::secs(300)],
        series_ttl: HumanDuration::secs(300),
        ..Default::default()
    };
    config.horizons.push(HumanDuration::secs(900));
    let other = with_config(config);
    assert_eq!(
        other.restore(&snapshot).expect("readable"),
        Restored {
            items: 0,
            discarded: 1
        }
    );
    // As many horizons, but another: the tracked errors are of another
    // distance ahead, so the series starts afresh too.
    let moved = with_config(AnalysisConfig {
        select: vec![rule("queue.depth")],
        step: HumanDuration::secs(30),
        horizons: vec![HumanDuration::secs(10)],
        series_ttl: HumanDuration::secs(300),
        ..Default::default()
    });
    assert_eq!(
        moved.restore(&snapshot).expect("readable"),
        Restored {
            items: 0,
            discarded: 1
        }
    );
    // A snapshot of an earlier build ends with the series: read as
    // taken with the same horizons.
    let horizons_at = snapshot.len() - postcard::to_allocvec(&vec![60.0f64]).unwrap().len();
    assert_eq!(
        processor(vec![rule("queue.depth")])
            .restore(&snapshot[..horizons_at])
            .expect("readable"),
        Restored {
            items: 1,
            discarded: 0
        }
    );
    assert!(other.restore(&[0xff, 0xff, 0xff]).is_err());
    let mut cut = snapshot.clone();
    cut.truncate(snapshot.len() / 2);
    assert!(processor(vec![rule("queue.depth")]).restore(&cut).is_err());

    // A snapshot that promises one series more than it holds fails after
    // reading the good one, and that one is not kept either: the
    // component starts afresh as the log says.
    assert_eq!(snapshot[0], 1, "one series, its count a one-byte varint");
    let mut overcounted = snapshot.clone();
    overcounted[0] = 2;
    let fresh = processor(vec![rule("queue.depth")]);
    assert!(fresh.restore(&overcounted).is_err());
    let mut after = Vec::new();
    fresh.snapshot(&mut after).expect("snapshot");
    assert_eq!(after[0], 0, "no model of the failed snapshot is kept");
}

/// A series' boxed state stays in jemalloc's 384-byte size class (the
/// next is 448): every byte added must come out elsewhere.
#[test]
fn a_series_state_fits_in_384_bytes() {
    let size = size_of::<super::Series>();
    assert!(size <= 384, "Series is {size} bytes");
}

/// A render walks the map a chunk at a time, and a chunk in groups of
/// series asked for ahead: every series is there once however many
/// chunks and groups it takes, and a stop ends the walk, even within a
/// group.
#[test]
fn a_render_of_more_series_than_a_chunk_shows_each_once() {
    let config = AnalysisConfig {
        select: vec![rule("queue.depth")],
        step: HumanDuration::secs(30),
        horizons: vec![HumanDuration::secs(60)],
        series_ttl: HumanDuration::secs(300),
        max_series: 5000,
        ..Default::default()
    };
    let p = with_config(config);
    let routes: Vec<String> = (0..2 * WALK_CHUNK + 7).map(|i| format!("/r{i}")).collect();
    for step in 0..14 {
        let t = T0 + step as f64 * 30.0;
        let points: Vec<(&str, f64)> = routes.iter().map(|r| (r.as_str(), 5.0)).collect();
        p.observe_request(
            &MetricsBatch::from_request(gauges_request(&points)),
            t - 1.0,
        );
        p.evaluate(t);
    }
    let shown = values(&rendered(&p), "streamgate.baseline.expected");
    let mut seen: Vec<String> = shown
        .iter()
        .map(|(a, _, _)| a.as_slice().text("route").unwrap_or_default().to_string())
        .collect();
    seen.sort();
    seen.dedup();
    assert_eq!(shown.len(), routes.len());
    assert_eq!(seen.len(), routes.len());
    // The forecast families' walk (which asks for the forecast state
    // ahead) too: one horizon, one forecast a series.
    let forecasts = values(&rendered(&p), "streamgate.forecast");
    assert_eq!(forecasts.len(), routes.len());
    let mut taken = 0;
    let finished = p.walk(0, &mut |_, _, _| {
        taken += 1;
        taken < WALK_CHUNK + 3
    });
    assert!(!finished);
    assert_eq!(taken, WALK_CHUNK + 3, "the walk stops where the sink says");
}

/// The last verdict keeps its expected value exactly, its score to nine
/// decimals and its band as an `f32` half-width: the band reads back
/// within `f32` precision of its width, for small and large levels alike,
/// and a score such as 0.95 reads back as that decimal.
#[test]
fn the_last_verdict_keeps_its_band_within_f32_of_its_width() {
    use crate::analytics::baselines::Baseline;
    for (level, noise) in [(3.0, 0.5), (1.0e9, 40.0), (-250.0, 7.0)] {
        let mut b = Baseline::default();
        let mut out = None;
        for i in 0..100 {
            let v = level + noise * ((i * 37 % 11) as f64 - 5.0);
            out = b.update(1_700_000_000.0 + 60.0 * i as f64, v).or(out);
        }
        let mut out = out.expect("a verdict");
        let mut last = super::Last::NONE;
        last.judge(&out);
        assert_eq!(last.expected, out.expected);
        assert!((last.score() - out.score).abs() <= 0.5e-9, "score");
        out.score = 0.95;
        last.judge(&out);
        assert_eq!(last.score(), 0.95);
        assert_eq!(last.score().to_string(), "0.95");
        let width = out.upper - out.lower;
        assert!(width > 0.0);
        for (got, want) in [(last.lower(), out.lower), (last.upper(), out.upper)] {
            assert!(
                (got - want).abs() <= 1e-6 * width,
                "{got} vs {want} at level {level}"
            );
        }
    }
}
