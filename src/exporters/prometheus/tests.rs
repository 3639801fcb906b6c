//! Tests of the exporter's semantics: temporality, resets, ordering,
//! staleness, expiry, every point kind's rendering, and both formats.

use std::sync::Arc;

use super::store::value::MERGED_BUCKETS;
use super::*;
use crate::model::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use crate::model::otlp::metrics::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, Summary, SummaryDataPoint,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
    summary_data_point::ValueAtQuantile,
};
use crate::model::otlp::resource::Resource;
use crate::model::{MetricsBatch, MetricsRequest};

pub(super) const DELTA: i32 = 1;
pub(super) const CUMULATIVE: i32 = 2;

pub(super) fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn request_with(resource: Vec<KeyValue>, metrics: Vec<Metric>) -> MetricsBatch {
    MetricsBatch::from_request(MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "test.scope".into(),
                    version: "2.0".into(),
                    ..Default::default()
                }),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

fn request(metrics: Vec<Metric>) -> MetricsBatch {
    request_with(vec![kv("service.name", "svc")], metrics)
}

pub(super) fn number(start: u64, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

pub(super) fn sum(
    name: &str,
    temporality: i32,
    monotonic: bool,
    points: Vec<NumberDataPoint>,
) -> Metric {
    Metric {
        name: name.into(),
        unit: "1".into(),
        description: "a sum".into(),
        data: Some(Data::Sum(Sum {
            data_points: points,
            aggregation_temporality: temporality,
            is_monotonic: monotonic,
        })),
        ..Default::default()
    }
}

fn histogram(name: &str, temporality: i32, points: Vec<HistogramDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        unit: "s".into(),
        description: "latency".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: points,
            aggregation_temporality: temporality,
        })),
        ..Default::default()
    }
}

fn hist_point(time: u64, bounds: &[f64], counts: &[u64], sum: f64) -> HistogramDataPoint {
    HistogramDataPoint {
        start_time_unix_nano: 1_000_000_000,
        time_unix_nano: time,
        count: counts.iter().sum(),
        sum: Some(sum),
        bucket_counts: counts.to_vec(),
        explicit_bounds: bounds.to_vec(),
        ..Default::default()
    }
}

fn exporter() -> PrometheusExporter {
    PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        Arc::new(Telemetry::new()),
    )
}

const BASE: &str = r#"job="svc",otel_scope_name="test.scope",otel_scope_version="2.0""#;

fn line(name: &str, extra: &str, value: &str) -> String {
    if extra.is_empty() {
        format!("{name}{{{BASE}}} {value}\n")
    } else {
        format!("{name}{{{extra},{BASE}}} {value}\n")
    }
}

fn line_le(name: &str, le: &str, value: &str) -> String {
    format!("{name}{{{BASE},le=\"{le}\"}} {value}\n")
}

#[test]
fn delta_sums_accumulate_into_cumulative_counters() {
    let e = exporter();
    for (t, v) in [(2, 5.0), (3, 2.5), (4, 1.0)] {
        e.consume_metrics(&request(vec![sum(
            "jobs",
            DELTA,
            true,
            vec![number(t - 1, t, v)],
        )]))
        .unwrap();
    }
    let text = e.render(Format::Text);
    assert!(text.contains("# TYPE jobs_total counter\n"), "{text}");
    assert!(text.contains(&line("jobs_total", "", "8.5")), "{text}");
}

/// A delta no newer than the series' last (a retry, or a late interval)
/// is not added, since the two cannot be told apart; its increment is
/// lost, so the sender is told in `partial_success`, and it is counted
/// with the out-of-order points. A late cumulative point is covered by
/// the newer one and refused silently.
#[test]
fn repeated_or_older_delta_is_not_counted_twice() {
    let e = exporter();
    let delta = request(vec![sum("jobs", DELTA, true, vec![number(1, 2, 5.0)])]);
    assert_eq!(e.consume_metrics(&delta).unwrap().rejected, 0);
    let repeated = e.consume_metrics(&delta).unwrap();
    assert_eq!(repeated.rejected, 1);
    assert!(
        repeated.message.contains("no newer than the series' last"),
        "{}",
        repeated.message
    );
    assert!(
        e.render(Format::Text)
            .contains(&line("jobs_total", "", "5"))
    );
    let cumulative = request(vec![sum("done", CUMULATIVE, true, vec![number(1, 5, 9.0)])]);
    e.consume_metrics(&cumulative).unwrap();
    let older = request(vec![sum("done", CUMULATIVE, true, vec![number(1, 4, 8.0)])]);
    let outcome = e.consume_metrics(&older).unwrap();
    assert_eq!((outcome.rejected, outcome.message.as_str()), (0, ""));
    assert!(
        e.render(Format::Text)
            .contains(&line("done_total", "", "9"))
    );
    assert_eq!(
        e.telemetry
            .snapshot()
            .iter()
            .find(|f| f.name == names::EXPORTER_OUT_OF_ORDER_POINTS)
            .unwrap()
            .samples[0]
            .value,
        2.0
    );
}

#[test]
fn delta_histograms_accumulate_and_reset_on_new_layout() {
    let e = exporter();
    let bounds = [0.1, 1.0];
    e.consume_metrics(&request(vec![histogram(
        "rpc.duration",
        DELTA,
        vec![hist_point(2, &bounds, &[1, 2, 0], 1.5)],
    )]))
    .unwrap();
    e.consume_metrics(&request(vec![histogram(
        "rpc.duration",
        DELTA,
        vec![hist_point(3, &bounds, &[0, 1, 1], 3.0)],
    )]))
    .unwrap();
    let text = e.render(Format::Text);
    let name = "rpc_duration_seconds";
    assert!(
        text.contains(&line_le(&format!("{name}_bucket"), "0.1", "1")),
        "{text}"
    );
    assert!(
        text.contains(&line_le(&format!("{name}_bucket"), "1", "4")),
        "{text}"
    );
    assert!(
        text.contains(&line_le(&format!("{name}_bucket"), "+Inf", "5")),
        "{text}"
    );
    assert!(
        text.contains(&line(&format!("{name}_sum"), "", "4.5")),
        "{text}"
    );
    assert!(
        text.contains(&line(&format!("{name}_count"), "", "5")),
        "{text}"
    );

    e.consume_metrics(&request(vec![histogram(
        "rpc.duration",
        DELTA,
        vec![hist_point(4, &[0.5], &[2, 0], 0.2)],
    )]))
    .unwrap();
    let text = e.render(Format::Text);
    assert!(
        text.contains(&line_le(&format!("{name}_bucket"), "0.5", "2")),
        "{text}"
    );
    assert!(
        text.contains(&line(&format!("{name}_count"), "", "2")),
        "{text}"
    );
}

#[test]
fn cumulative_points_replace_and_older_points_are_ignored() {
    let e = exporter();
    e.consume_metrics(&request(vec![sum(
        "bytes.out",
        CUMULATIVE,
        true,
        vec![number(1, 10, 100.0)],
    )]))
    .unwrap();
    e.consume_metrics(&request(vec![sum(
        "bytes.out",
        CUMULATIVE,
        true,
        vec![number(1, 5, 50.0)],
    )]))
    .unwrap();
    assert!(
        e.render(Format::Text)
            .contains(&line("bytes_out_total", "", "100"))
    );
    // A counter reset: new start time, lower value.
    e.consume_metrics(&request(vec![sum(
        "bytes.out",
        CUMULATIVE,
        true,
        vec![number(20_000_000_000, 30_000_000_000, 3.0)],
    )]))
    .unwrap();
    let text = e.render(Format::Text);
    assert!(text.contains(&line("bytes_out_total", "", "3")), "{text}");
    let om = e.render(Format::OpenMetrics);
    assert!(om.contains(&line("bytes_out_created", "", "20")), "{om}");
}

/// `openmetrics_created: false` leaves the `_created` samples out of
/// OpenMetrics (counters and histograms alike) and changes nothing else;
/// by default they are there.
#[test]
fn created_samples_can_be_left_out_of_openmetrics() {
    let points = || {
        request(vec![
            sum(
                "bytes.out",
                CUMULATIVE,
                true,
                vec![number(2_000_000_000, 5_000_000_000, 7.0)],
            ),
            histogram(
                "latency",
                CUMULATIVE,
                vec![HistogramDataPoint {
                    start_time_unix_nano: 2_000_000_000,
                    ..hist_point(5_000_000_000, &[1.0], &[1, 2], 4.0)
                }],
            ),
        ])
    };
    let with = exporter();
    with.consume_metrics(&points()).unwrap();
    let without = PrometheusExporter::new(
        PrometheusExporterConfig {
            openmetrics_created: false,
            ..Default::default()
        },
        Arc::new(Telemetry::new()),
    );
    without.consume_metrics(&points()).unwrap();
    let om = with.render(Format::OpenMetrics);
    assert!(om.contains(&line("bytes_out_created", "", "2")), "{om}");
    assert!(
        om.contains(&line("latency_seconds_created", "", "2")),
        "{om}"
    );
    let lean = without.render(Format::OpenMetrics);
    assert!(!lean.contains("_created"), "{lean}");
    // Everything else of the two families is the same (StreamGate's own
    // series, with their clocks, are left out of the comparison).
    let ours = |text: &str| -> Vec<String> {
        text.lines()
            .filter(|l| l.contains("bytes_out") || l.contains("latency_seconds"))
            .filter(|l| !l.contains("_created"))
            .map(str::to_string)
            .collect()
    };
    assert_eq!(ours(&lean), ours(&om));
    assert!(lean.contains(&line("bytes_out_total", "", "7")), "{lean}");
    // The text format never has them, and is the same either way.
    let text = with.render(Format::Text);
    assert!(!text.contains("_created"), "{text}");
    assert_eq!(ours(&without.render(Format::Text)), ours(&text));
}

#[test]
fn no_recorded_value_removes_the_series() {
    let e = exporter();
    e.consume_metrics(&request(vec![sum(
        "temp",
        CUMULATIVE,
        false,
        vec![number(0, 1, 20.0)],
    )]))
    .unwrap();
    assert!(e.render(Format::Text).contains(&line("temp", "", "20")));
    let mut stale = number(0, 2, 0.0);
    stale.value = None;
    stale.flags = 1;
    e.consume_metrics(&request(vec![sum("temp", CUMULATIVE, false, vec![stale])]))
        .unwrap();
    assert!(!e.render(Format::Text).contains("temp{"));
    assert_eq!(e.telemetry.active_series(), 0);
}

/// A point whose attributes were seen before finds its series by raw key;
/// the answer must be the one the full translation gives: attribute order
/// does not matter, scopes stay apart, removed series come back.
#[test]
fn known_points_update_the_series_their_labels_name() {
    let e = exporter();
    let point = |value: f64, attrs: &[(&str, &str)]| {
        let mut p = number(0, value as u64, value);
        p.attributes = attrs.iter().map(|(k, v)| kv(k, v)).collect();
        p
    };
    let send = |e: &PrometheusExporter, scope: &str, p: NumberDataPoint| {
        let mut batch = request(vec![sum("temp", CUMULATIVE, false, vec![p])])
            .request()
            .clone();
        batch.resource_metrics[0].scope_metrics[0]
            .scope
            .as_mut()
            .unwrap()
            .version = scope.into();
        e.consume_metrics(&MetricsBatch::from_request(batch))
            .unwrap();
    };
    let labels = |scope: &str| {
        format!(
            "a=\"1\",b=\"2\",job=\"svc\",otel_scope_name=\"test.scope\",otel_scope_version=\"{scope}\""
        )
    };
    send(&e, "1", point(1.0, &[("a", "1"), ("b", "2")]));
    send(&e, "1", point(2.0, &[("b", "2"), ("a", "1")]));
    send(&e, "1", point(3.0, &[("a", "1"), ("b", "2")]));
    send(&e, "2", point(4.0, &[("a", "1"), ("b", "2")]));
    let text = e.render(Format::Text);
    assert!(
        text.contains(&format!("temp{{{}}} 3\n", labels("1"))),
        "{text}"
    );
    assert!(
        text.contains(&format!("temp{{{}}} 4\n", labels("2"))),
        "{text}"
    );
    assert_eq!(e.store.series_count(), 2);
    let mut stale = point(5.0, &[("b", "2"), ("a", "1")]);
    stale.value = None;
    stale.flags = 1;
    send(&e, "1", stale);
    assert_eq!(e.store.series_count(), 1);
    send(&e, "1", point(6.0, &[("a", "1"), ("b", "2")]));
    let text = e.render(Format::Text);
    assert!(
        text.contains(&format!("temp{{{}}} 6\n", labels("1"))),
        "{text}"
    );
    assert_eq!(e.store.series_count(), 2);
    // Other bytes, same labels: `a` as an integer renders as "1" too.
    let mut int_a = point(7.0, &[("b", "2")]);
    int_a.attributes.push(KeyValue {
        key: "a".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(1)),
        }),
        ..Default::default()
    });
    send(&e, "1", int_a);
    send(&e, "1", point(8.0, &[("b", "2"), ("a", "1")]));
    let text = e.render(Format::Text);
    assert!(
        text.contains(&format!("temp{{{}}} 8\n", labels("1"))),
        "{text}"
    );
    assert_eq!(e.store.series_count(), 2);
}

#[test]
fn idle_series_expire() {
    let e = exporter();
    e.consume_metrics(&request(vec![sum(
        "idle",
        CUMULATIVE,
        false,
        vec![number(0, 1, 1.0)],
    )]))
    .unwrap();
    assert_eq!(e.store.expire(10), 0);
    std::thread::sleep(std::time::Duration::from_millis(1100));
    assert_eq!(e.store.expire(0), 1);
    assert!(!e.render(Format::Text).contains("idle"));
    assert_eq!(e.store.series_count(), 0);
    assert_eq!(e.telemetry.active_series(), 0);
}

#[test]
fn gauges_ratio_and_non_monotonic_sums() {
    let e = exporter();
    let gauge = Metric {
        name: "cpu.utilization".into(),
        unit: "1".into(),
        description: "CPU".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![number(0, 1, 0.25)],
        })),
        ..Default::default()
    };
    let updown = Metric {
        unit: "{connection}".into(),
        ..sum(
            "db.connections",
            DELTA,
            false,
            vec![number(0, 1, 3.0), number(1, 2, -1.0)],
        )
    };
    e.consume_metrics(&request(vec![gauge, updown])).unwrap();
    let text = e.render(Format::Text);
    assert!(
        text.contains("# TYPE cpu_utilization_ratio gauge\n"),
        "{text}"
    );
    assert!(
        text.contains(&line("cpu_utilization_ratio", "", "0.25")),
        "{text}"
    );
    assert!(text.contains("# TYPE db_connections gauge\n"), "{text}");
    assert!(text.contains(&line("db_connections", "", "2")), "{text}");
}

/// An explicit `+Inf` bound is the closing bucket: `le="+Inf"` is written
/// once, with the whole count.
#[test]
fn an_explicit_inf_bound_is_written_once() {
    let e = exporter();
    let point = HistogramDataPoint {
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        count: 3,
        sum: Some(10.0),
        bucket_counts: vec![1, 1, 1],
        explicit_bounds: vec![1.0, f64::INFINITY],
        ..Default::default()
    };
    let metric = Metric {
        name: "infb".into(),
        data: Some(Data::Histogram(Histogram {
            data_points: vec![point],
            aggregation_temporality: CUMULATIVE,
        })),
        ..Default::default()
    };
    e.consume_metrics(&request(vec![metric])).unwrap();
    for format in [Format::Text, Format::OpenMetrics] {
        let text = e.render(format);
        let les: Vec<&str> = text
            .lines()
            .filter(|l| l.starts_with("infb_bucket"))
            .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
            .collect();
        assert_eq!(les, vec!["1", "+Inf"], "{text}");
        assert!(text.contains(&line_le("infb_bucket", "1", "1")), "{text}");
        assert!(
            text.contains(&line_le("infb_bucket", "+Inf", "3")),
            "{text}"
        );
    }
}

/// At scale -10 every bucket edge past 1 overflows to infinity: those
/// buckets are counted in `+Inf` (written once), never as a bound of
/// their own.
#[test]
fn exponential_buckets_past_the_largest_float_fold_into_inf() {
    let e = exporter();
    let point = ExponentialHistogramDataPoint {
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        count: 5,
        sum: Some(1e300),
        scale: -10,
        zero_count: 1,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![2],
        }),
        negative: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 1],
        }),
        ..Default::default()
    };
    let metric = Metric {
        name: "huge".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![point],
            aggregation_temporality: DELTA,
        })),
        ..Default::default()
    };
    e.consume_metrics(&request(vec![metric])).unwrap();
    let text = e.render(Format::Text);
    let buckets: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("huge_bucket"))
        .collect();
    let les: Vec<&str> = buckets
        .iter()
        .filter_map(|l| l.split("le=\"").nth(1)?.split('"').next())
        .collect();
    // The positive bucket (1, 2^1024] keeps its finite lower edge; the
    // negative ones' lowest edge (-2^2048) is not finite.
    assert_eq!(les, vec!["-1", "0", "1", "+Inf"], "{text}");
    assert!(text.contains(&line_le("huge_bucket", "-1", "2")), "{text}");
    assert!(text.contains(&line_le("huge_bucket", "0", "3")), "{text}");
    assert!(text.contains(&line_le("huge_bucket", "1", "3")), "{text}");
    assert!(
        text.contains(&line_le("huge_bucket", "+Inf", "5")),
        "{text}"
    );
}

#[test]
fn exponential_histograms_become_classic_buckets() {
    let e = exporter();
    // scale 0: base 2. positive offset 0 → buckets (1,2], (2,4]; one zero.
    let point = ExponentialHistogramDataPoint {
        start_time_unix_nano: 1,
        time_unix_nano: 2,
        count: 4,
        sum: Some(7.0),
        scale: 0,
        zero_count: 1,
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 2],
        }),
        ..Default::default()
    };
    let metric = Metric {
        name: "payload.size".into(),
        unit: "By".into(),
        description: "sizes".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: vec![point.clone()],
            aggregation_temporality: DELTA,
        })),
        ..Default::default()
    };
    e.consume_metrics(&request(vec![metric.clone()])).unwrap();
    let name = "payload_size_bytes_bucket";
    let text = e.render(Format::Text);
    assert!(
        text.contains("# TYPE payload_size_bytes histogram\n"),
        "{text}"
    );
    assert!(text.contains(&line_le(name, "0", "1")), "{text}");
    // The first bucket's lower edge is a bound: histogram_quantile
    // interpolates inside (1, 2], not over (0, 2].
    assert!(text.contains(&line_le(name, "1", "1")), "{text}");
    assert!(text.contains(&line_le(name, "2", "2")), "{text}");
    assert!(text.contains(&line_le(name, "4", "4")), "{text}");
    assert!(text.contains(&line_le(name, "+Inf", "4")), "{text}");

    // A delta at scale 1 merges after downscaling to scale 0.
    let finer = ExponentialHistogramDataPoint {
        time_unix_nano: 3,
        count: 2,
        sum: Some(6.0),
        scale: 1,
        zero_count: 0,
        positive: Some(Buckets {
            offset: 2, // (2, 2.83] and (2.83, 4] at scale 1 → (2, 4] at scale 0
            bucket_counts: vec![1, 1],
        }),
        ..point
    };
    let mut metric2 = metric;
    if let Some(Data::ExponentialHistogram(h)) = &mut metric2.data {
        h.data_points = vec![finer];
    }
    e.consume_metrics(&request(vec![metric2])).unwrap();
    let text = e.render(Format::Text);
    assert!(text.contains(&line_le(name, "4", "6")), "{text}");
    assert!(text.contains(&line_le(name, "+Inf", "6")), "{text}");
    assert!(
        text.contains(&line("payload_size_bytes_sum", "", "13")),
        "{text}"
    );
}

fn exponential_metric(points: Vec<ExponentialHistogramDataPoint>) -> Metric {
    Metric {
        name: "latency".into(),
        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
            data_points: points,
            aggregation_temporality: DELTA,
        })),
        ..Default::default()
    }
}

fn exponential_point(
    time: u64,
    scale: i32,
    offset: i32,
    counts: Vec<u64>,
) -> ExponentialHistogramDataPoint {
    ExponentialHistogramDataPoint {
        time_unix_nano: time,
        count: counts.iter().sum(),
        scale,
        positive: Some(Buckets {
            offset,
            bucket_counts: counts,
        }),
        ..Default::default()
    }
}

/// The classic bucket counts of the `latency` histogram: (le, count).
fn latency_buckets(text: &str) -> Vec<(f64, u64)> {
    text.lines()
        .filter(|l| l.starts_with("latency_bucket{"))
        .filter_map(|l| l.split_once("le=\"").map(|(_, rest)| rest))
        .filter_map(|l| {
            let (le, count) = l.split_once("\"} ")?;
            let le = if le == "+Inf" {
                f64::INFINITY
            } else {
                le.parse().ok()?
            };
            Some((le, count.parse().ok()?))
        })
        .collect()
}

#[test]
fn exponential_deltas_far_apart_merge_at_a_coarser_scale() {
    let e = exporter();
    // Scale 20, one bucket near 2^-1000 and one near 2^+1000: adding them
    // at scale 20 would need two billion buckets (16 GB).
    let low = exponential_point(1, 20, -1_000 << 20, vec![3]);
    let high = exponential_point(2, 20, 1_000 << 20, vec![4]);
    for point in [low, high] {
        let outcome = e
            .consume_metrics(&request(vec![exponential_metric(vec![point])]))
            .unwrap();
        assert_eq!(outcome.rejected, 0, "{}", outcome.message);
    }
    let text = e.render(Format::Text);
    let buckets = latency_buckets(&text);
    assert!(
        buckets.len() <= MERGED_BUCKETS + 2,
        "{} buckets",
        buckets.len()
    );
    assert_eq!(buckets.last(), Some(&(f64::INFINITY, 7)), "{text}");
    // Nothing counted is lost: the low value's bucket ends below 1, the
    // high one's starts above it.
    let below_one = buckets
        .iter()
        .filter(|(le, _)| *le <= 1.0)
        .map(|b| b.1)
        .max();
    assert_eq!(below_one, Some(3), "{text}");
    let count = text.lines().find(|l| l.starts_with("latency_count{"));
    assert!(count.is_some_and(|l| l.ends_with(" 7")), "{text}");
}

#[test]
fn exponential_bucket_indices_beyond_finite_values_are_rejected() {
    let e = exporter();
    let near_max = exponential_point(1, 20, i32::MAX - 1, vec![1, 1]);
    let far_below = exponential_point(1, 0, -1_100, vec![1]);
    let edge = exponential_point(1, 0, 1_000, vec![1]);
    let outcome = e
        .consume_metrics(&request(vec![exponential_metric(vec![
            near_max, far_below, edge,
        ])]))
        .unwrap();
    assert_eq!(outcome.rejected, 2, "{}", outcome.message);
    assert!(
        outcome.message.contains("beyond any finite value"),
        "{}",
        outcome.message
    );
    // The valid point is kept: 2^1000 < values ≤ 2^1001.
    let text = e.render(Format::Text);
    let count = text.lines().find(|l| l.starts_with("latency_count{"));
    assert!(count.is_some_and(|l| l.ends_with(" 1")), "{text}");
}

#[test]
fn summaries_render_quantiles() {
    let e = exporter();
    let metric = Metric {
        name: "gc.pause".into(),
        unit: "ms".into(),
        description: "pauses".into(),
        data: Some(Data::Summary(Summary {
            data_points: vec![SummaryDataPoint {
                time_unix_nano: 1,
                count: 10,
                sum: 55.0,
                quantile_values: vec![
                    ValueAtQuantile {
                        quantile: 0.5,
                        value: 4.0,
                    },
                    ValueAtQuantile {
                        quantile: 0.99,
                        value: 9.5,
                    },
                ],
                ..Default::default()
            }],
        })),
        ..Default::default()
    };
    e.consume_metrics(&request(vec![metric])).unwrap();
    let text = e.render(Format::Text);
    assert!(
        text.contains("# TYPE gc_pause_milliseconds summary\n"),
        "{text}"
    );
    assert!(
        text.contains(&format!(
            "gc_pause_milliseconds{{{BASE},quantile=\"0.99\"}} 9.5\n"
        )),
        "{text}"
    );
    assert!(
        text.contains(&line("gc_pause_milliseconds_count", "", "10")),
        "{text}"
    );
    assert!(
        text.contains(&line("gc_pause_milliseconds_sum", "", "55")),
        "{text}"
    );
}

/// A quantile outside [0, 1], or NaN, is refused for its point alone.
#[test]
fn summary_quantiles_outside_zero_to_one_are_rejected() {
    let e = exporter();
    let point = |q: f64, at: &str| SummaryDataPoint {
        time_unix_nano: 1,
        count: 1,
        sum: 1.0,
        attributes: vec![kv("at", at)],
        quantile_values: vec![
            ValueAtQuantile {
                quantile: 0.5,
                value: 1.0,
            },
            ValueAtQuantile {
                quantile: q,
                value: 2.0,
            },
        ],
        ..Default::default()
    };
    let metric = Metric {
        name: "rpc".into(),
        data: Some(Data::Summary(Summary {
            data_points: vec![
                point(1.5, "over"),
                point(f64::NAN, "nan"),
                point(1.0, "max"),
            ],
        })),
        ..Default::default()
    };
    let outcome = e.consume_metrics(&request(vec![metric])).unwrap();
    assert_eq!(outcome.rejected, 2, "{}", outcome.message);
    assert!(
        outcome
            .message
            .contains("summary quantile 1.5 is outside [0, 1]"),
        "{}",
        outcome.message
    );
    let text = e.render(Format::Text);
    assert!(text.contains("at=\"max\""), "{text}");
    assert!(
        !text.contains("at=\"over\"") && !text.contains("at=\"nan\""),
        "{text}"
    );
}

#[test]
fn invalid_histograms_are_rejected_with_reasons() {
    let e = exporter();
    let mut bad_count = hist_point(2, &[1.0], &[1, 1], 1.0);
    bad_count.count = 5;
    let wrong_len = hist_point(2, &[1.0, 2.0], &[1, 1], 1.0);
    let unsorted = hist_point(2, &[2.0, 1.0], &[1, 1, 1], 1.0);
    let outcome = e
        .consume_metrics(&request(vec![histogram(
            "h",
            CUMULATIVE,
            vec![bad_count, wrong_len, unsorted],
        )]))
        .unwrap();
    assert_eq!(outcome.rejected, 3);
    assert!(
        outcome.message.contains("sum to 2 but count is 5"),
        "{}",
        outcome.message
    );
}

#[test]
fn resource_becomes_job_instance_and_target_info() {
    let e = exporter();
    let resource = vec![
        kv("service.name", "api"),
        kv("service.namespace", "shop"),
        kv("service.instance.id", "pod-1"),
        kv("deployment.environment", "prod"),
    ];
    let mut point = number(0, 1, 1.0);
    point.attributes = vec![
        kv("http.route", "/a"),
        kv("http_route", "/b"),
        kv("job", "spoof"),
        kv("1st", "x"),
    ];
    let gauge = Metric {
        name: "up.ish".into(),
        description: "g".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point],
        })),
        ..Default::default()
    };
    e.consume_metrics(&request_with(resource, vec![gauge]))
        .unwrap();
    let text = e.render(Format::Text);
    assert!(
        text.contains(r#"up_ish{http_route="/a;/b",instance="pod-1",job="shop/api",key_1st="x",otel_scope_name="test.scope",otel_scope_version="2.0"} 1"#),
        "{text}"
    );
    assert!(
        text.contains(
            r#"target_info{deployment_environment="prod",instance="pod-1",job="shop/api"} 1"#
        ),
        "{text}"
    );
}

/// A resource that names its service twice is read by the first
/// occurrence, as the span and log connectors and the Collector read it.
#[test]
fn a_service_named_twice_is_named_by_the_first() {
    let e = exporter();
    let resource = vec![
        kv("service.name", "first"),
        kv("service.instance.id", "pod-1"),
        kv("service.name", "second"),
        kv("service.instance.id", "pod-2"),
    ];
    e.consume_metrics(&request_with(resource, vec![one_gauge("twice", 1.0)]))
        .unwrap();
    let text = e.render(Format::Text);
    assert!(
        text.contains(r#"twice{instance="pod-1",job="first","#),
        "{text}"
    );
}

/// A gauge whose metadata says `prometheus.type: unknown` (an untyped
/// metric scraped by the Prometheus receiver) goes back out untyped: `untyped`
/// in the text format, `unknown` in OpenMetrics; other gauges stay gauges.
#[test]
fn an_unknown_typed_gauge_is_written_back_untyped() {
    let e = exporter();
    let mut untyped = one_gauge("legacy.things", 3.0);
    untyped.metadata = vec![kv("prometheus.type", "unknown")];
    let mut other = one_gauge("typed.things", 4.0);
    other.metadata = vec![kv("prometheus.type", "gauge")];
    e.consume_metrics(&request(vec![untyped, other])).unwrap();
    let text = e.render(Format::Text);
    assert!(text.contains("# TYPE legacy_things untyped\n"), "{text}");
    assert!(text.contains("# TYPE typed_things gauge\n"), "{text}");
    assert!(text.contains("\nlegacy_things{"), "{text}");
    let om = e.render(Format::OpenMetrics);
    assert!(om.contains("# TYPE legacy_things unknown\n"), "{om}");
}

/// A gauge `name` with one point.
fn one_gauge(name: &str, value: f64) -> Metric {
    Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![number(0, 1, value)],
        })),
        ..Default::default()
    }
}

/// One `target_info` per job and instance: a resource whose other
/// attributes changed (a new version deployed) replaces the one before;
/// another instance keeps its own.
#[test]
fn target_info_is_one_series_per_job_and_instance() {
    let e = exporter();
    let resource = |instance: &str, version: &str| {
        vec![
            kv("service.name", "api"),
            kv("service.instance.id", instance),
            kv("service.version", version),
        ]
    };
    for (instance, version) in [("a", "1.0"), ("b", "1.0"), ("a", "1.1")] {
        e.consume_metrics(&request_with(
            resource(instance, version),
            vec![one_gauge("g", 1.0)],
        ))
        .unwrap();
    }
    let text = e.render(Format::Text);
    let infos: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("target_info{"))
        .collect();
    assert_eq!(
        infos,
        vec![
            r#"target_info{instance="a",job="api",service_version="1.1"} 1"#,
            r#"target_info{instance="b",job="api",service_version="1.0"} 1"#,
        ],
        "{text}"
    );
    use super::ingest::has_label_pair;
    assert!(has_label_pair(r#"a="1",job="api""#, r#"job="api""#));
    assert!(!has_label_pair(r#"xjob="api""#, r#"job="api""#));
    assert!(!has_label_pair(r#"job="api2""#, r#"job="api""#));
}

/// A received metric that would be written as `target_info` (a gauge of
/// that name, a counter `target.info`) is refused: it would overwrite the
/// resource's 1 that `* on (job, instance) group_left target_info` joins
/// multiply by. The rest of the request is stored.
#[test]
fn a_metric_named_target_info_is_refused() {
    let e = exporter();
    let resource = vec![kv("service.name", "api"), kv("k", "v")];
    let consumed = e
        .consume_metrics(&request_with(
            resource,
            vec![
                one_gauge("target_info", 42.0),
                sum("target.info", CUMULATIVE, true, vec![number(1, 2, 3.0)]),
                one_gauge("g", 1.0),
            ],
        ))
        .unwrap();
    assert_eq!(consumed.rejected, 2, "{consumed:?}");
    assert!(
        consumed.message.contains("`target_info`") && consumed.message.contains("`target.info`"),
        "{consumed:?}"
    );
    let text = e.render(Format::Text);
    let infos: Vec<&str> = text
        .lines()
        .filter(|l| l.starts_with("target_info"))
        .collect();
    assert_eq!(infos, vec![r#"target_info{job="api",k="v"} 1"#], "{text}");
    assert!(text.contains("\ng{"), "{text}");

    // With `target_info` off the name is free.
    let off = PrometheusExporter::new(
        PrometheusExporterConfig {
            target_info: false,
            ..Default::default()
        },
        Arc::new(Telemetry::new()),
    );
    let consumed = off
        .consume_metrics(&request(vec![one_gauge("target_info", 42.0)]))
        .unwrap();
    assert_eq!(consumed.rejected, 0, "{consumed:?}");
}

/// Scope attributes: keys that sanitise to one label join their values
/// with `;` (as point attributes do), and an attribute cannot take the
/// scope's own `otel_scope_name`, `otel_scope_version` or
/// `otel_scope_schema_url`, set or not.
#[test]
fn scope_attributes_join_on_collision_and_never_replace_the_scope() {
    let e = exporter();
    let scoped = |scope: InstrumentationScope, schema_url: &str| {
        MetricsBatch::from_request(MetricsRequest {
            resource_metrics: vec![ResourceMetrics {
                resource: Some(Resource {
                    attributes: vec![kv("service.name", "svc")],
                    ..Default::default()
                }),
                scope_metrics: vec![ScopeMetrics {
                    scope: Some(scope),
                    metrics: vec![one_gauge("g", 1.0)],
                    schema_url: schema_url.into(),
                }],
                ..Default::default()
            }],
        })
    };
    let forged = vec![
        kv("a_b", "2"),
        kv("a.b", "1"),
        kv("name", "forged"),
        kv("version", "9"),
        kv("schema_url", "fake"),
    ];
    e.consume_metrics(&scoped(
        InstrumentationScope {
            name: "lib".into(),
            attributes: forged.clone(),
            ..Default::default()
        },
        "https://real",
    ))
    .unwrap();
    e.consume_metrics(&scoped(
        InstrumentationScope {
            attributes: forged,
            ..Default::default()
        },
        "",
    ))
    .unwrap();
    let text = e.render(Format::Text);
    let mut lines: Vec<&str> = text.lines().filter(|l| l.starts_with("g{")).collect();
    lines.sort_unstable();
    assert_eq!(
        lines,
        vec![
            r#"g{job="svc",otel_scope_a_b="1;2",otel_scope_name="lib",otel_scope_schema_url="https://real"} 1"#,
            r#"g{job="svc",otel_scope_a_b="1;2"} 1"#,
        ],
        "{text}"
    );
}

/// `target_info` keeps to the label limits: over them it is left out, with
/// a warning in the partial success, and the resource's points are kept.
#[test]
fn target_info_over_the_label_limits_is_left_out_with_a_warning() {
    let e = exporter();
    let long = "v".repeat(5000);
    let resource = vec![kv("service.name", "api"), kv("build.log", &long)];
    let consumed = e
        .consume_metrics(&request_with(resource, vec![one_gauge("g", 1.0)]))
        .unwrap();
    assert_eq!(consumed.rejected, 0);
    assert!(
        consumed.message.contains("`target_info`")
            && consumed.message.contains("max_label_value_length"),
        "{consumed:?}"
    );
    let text = e.render(Format::Text);
    assert!(!text.contains("target_info"), "{text}");
    assert!(text.contains("\ng{"), "{text}");

    let many: Vec<_> = (0..200)
        .map(|i| kv(&format!("attr.{i}"), "x"))
        .chain([kv("service.name", "api2")])
        .collect();
    let consumed = e
        .consume_metrics(&request_with(many, vec![one_gauge("g", 2.0)]))
        .unwrap();
    assert!(
        consumed.message.contains("max_labels_per_series"),
        "{consumed:?}"
    );
    assert!(!e.render(Format::Text).contains("target_info"));
}

#[test]
fn resource_without_other_attributes_has_no_target_info() {
    let e = exporter();
    e.consume_metrics(&request(vec![sum(
        "x",
        CUMULATIVE,
        true,
        vec![number(0, 1, 1.0)],
    )]))
    .unwrap();
    assert!(!e.render(Format::Text).contains("target_info"));
}

#[test]
fn openmetrics_output_is_well_formed() {
    let e = exporter();
    e.consume_metrics(&request(vec![
        Metric {
            unit: "By".into(),
            ..sum(
                "net.io",
                CUMULATIVE,
                true,
                vec![number(2_000_000_000, 3_000_000_000, 9.0)],
            )
        },
        histogram(
            "rpc.duration",
            CUMULATIVE,
            vec![hist_point(2, &[0.5], &[1, 0], 0.25)],
        ),
    ]))
    .unwrap();
    let om = e.render(Format::OpenMetrics);
    assert!(om.ends_with("# EOF\n"), "{om}");
    assert!(om.contains("# TYPE net_io_bytes counter\n"), "{om}");
    assert!(om.contains("# UNIT net_io_bytes bytes\n"), "{om}");
    assert!(om.contains(&line("net_io_bytes_total", "", "9")), "{om}");
    assert!(om.contains(&line("net_io_bytes_created", "", "2")), "{om}");
    assert!(
        om.contains("# TYPE rpc_duration_seconds histogram\n# UNIT rpc_duration_seconds seconds\n"),
        "{om}"
    );
    assert!(
        om.contains("# TYPE streamgate_receiver_accepted_items counter\n"),
        "{om}"
    );
    assert!(!e.render(Format::Text).contains("# EOF"));
}

#[test]
fn format_negotiation_follows_accept() {
    assert_eq!(Format::negotiate(None), Format::Text);
    assert_eq!(
        Format::negotiate(Some(
            "application/openmetrics-text;version=1.0.0,application/openmetrics-text;version=0.0.1;q=0.75,text/plain;version=0.0.4;q=0.5,*/*;q=0.1"
        )),
        Format::OpenMetrics
    );
    assert_eq!(
        Format::negotiate(Some("text/plain;version=0.0.4")),
        Format::Text
    );
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;q=0")),
        Format::Text
    );
    // The higher quality wins, whatever the order.
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;q=0.5,text/plain;q=0.9")),
        Format::Text
    );
    assert_eq!(
        Format::negotiate(Some(
            "text/plain;version=0.0.4;q=0.3,application/openmetrics-text;version=1.0.0;q=0.5"
        )),
        Format::OpenMetrics
    );
    // Wildcards stand for text, never for OpenMetrics.
    assert_eq!(Format::negotiate(Some("*/*")), Format::Text);
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text;q=0.2,*/*;q=0.8")),
        Format::Text
    );
    assert_eq!(
        Format::negotiate(Some("application/openmetrics-text, */*;q=0.1")),
        Format::OpenMetrics
    );
    // Prometheus 3's own header.
    assert_eq!(
        Format::negotiate(Some(
            "application/openmetrics-text;version=1.0.0;escaping=allow-utf-8;q=0.6,application/openmetrics-text;version=0.0.1;q=0.5,text/plain;version=1.0.0;escaping=allow-utf-8;q=0.4,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
        )),
        Format::OpenMetrics
    );
}

#[test]
fn label_values_are_escaped() {
    let e = exporter();
    let mut point = number(0, 1, 1.0);
    point.attributes = vec![kv("path", "C:\\tmp\n\"x\"")];
    let gauge = Metric {
        name: "esc".into(),
        description: "line one\nline two \\ end".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point],
        })),
        ..Default::default()
    };
    e.consume_metrics(&request(vec![gauge])).unwrap();
    let text = e.render(Format::Text);
    assert!(text.contains(r#"path="C:\\tmp\n\"x\"""#), "{text}");
    assert!(
        text.contains("# HELP esc line one\\nline two \\\\ end\n"),
        "{text}"
    );
}

#[test]
fn own_metric_names_cannot_be_taken() {
    let e = exporter();
    let outcome = e
        .consume_metrics(&request(vec![Metric {
            unit: String::new(),
            ..sum(
                "streamgate.uptime.seconds",
                CUMULATIVE,
                false,
                vec![number(0, 1, 1.0)],
            )
        }]))
        .unwrap();
    assert_eq!(outcome.rejected, 1);
    assert!(
        outcome.message.contains("StreamGate's own"),
        "{}",
        outcome.message
    );
}

/// The specification's OTLP/JSON example, translated: compared line by
/// line (series order within a family is not part of the format).
#[test]
fn spec_example_matches_golden_exposition() {
    let e = exporter();
    let request: MetricsRequest =
        serde_json::from_slice(include_bytes!("testdata/spec_example.json")).unwrap();
    e.consume_metrics(&MetricsBatch::from_request(request))
        .unwrap();
    let rendered = e.render(Format::Text);
    let ours: std::collections::BTreeSet<&str> = rendered
        .lines()
        .take_while(|l| !l.contains("streamgate_"))
        .collect();
    let golden: std::collections::BTreeSet<&str> =
        include_str!("testdata/spec_example.prom").lines().collect();
    assert_eq!(ours, golden, "rendered:\n{rendered}");
}

/// OpenMetrics writes `_sum` and `_count` only together, and not at all
/// when negative buckets remain; leading empty negative buckets are dropped.
#[test]
fn openmetrics_histogram_sum_and_count_rules() {
    let e = exporter();
    let mut no_sum = hist_point(2, &[1.0], &[1, 1], 0.0);
    no_sum.sum = None;
    let negative = ExponentialHistogramDataPoint {
        time_unix_nano: 2,
        count: 3,
        sum: Some(-1.0),
        scale: 0,
        negative: Some(Buckets {
            offset: 0,
            bucket_counts: vec![1, 0, 0],
        }),
        positive: Some(Buckets {
            offset: 0,
            bucket_counts: vec![2],
        }),
        ..Default::default()
    };
    e.consume_metrics(&request(vec![
        histogram("no.sum", CUMULATIVE, vec![no_sum]),
        Metric {
            name: "signed".into(),
            description: "d".into(),
            data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                data_points: vec![negative],
                aggregation_temporality: CUMULATIVE,
            })),
            ..Default::default()
        },
    ]))
    .unwrap();
    let text = e.render(Format::Text);
    assert!(
        text.contains(&line("no_sum_seconds_count", "", "2")),
        "{text}"
    );
    assert!(text.contains(&line("signed_sum", "", "-1")), "{text}");
    let om = e.render(Format::OpenMetrics);
    assert!(!om.contains("no_sum_seconds_count"), "{om}");
    assert!(
        !om.contains("signed_sum") && !om.contains("signed_count"),
        "{om}"
    );
    // Negative bucket 0 holds [-2, -1): le=-1 has 1; the emptier -4, -8 edges are gone.
    assert!(om.contains(&line_le("signed_bucket", "-1", "1")), "{om}");
    assert!(
        !om.contains("le=\"-2\"") && !om.contains("le=\"-4\""),
        "{om}"
    );
    assert!(om.contains(&line_le("signed_bucket", "2", "3")), "{om}");
}

/// A metric without data holds no points, so none is rejected: the
/// message is the OTLP spec's warning (partial success with 0).
#[test]
fn metric_without_data_is_reported_not_dropped_silently() {
    let e = exporter();
    let outcome = e
        .consume_metrics(&request(vec![Metric {
            name: "empty".into(),
            ..Default::default()
        }]))
        .unwrap();
    assert_eq!(outcome.rejected, 0);
    assert!(
        outcome.message.contains("`empty` has no data"),
        "{}",
        outcome.message
    );
}

/// An attribute named like the label the exposition adds (`le` on a
/// histogram) is dropped, or the output would repeat the label.
#[test]
fn attribute_named_le_does_not_duplicate_the_bucket_label() {
    let e = exporter();
    let mut point = hist_point(2, &[1.0], &[1, 0], 0.5);
    point.attributes = vec![kv("le", "oops"), kv("route", "/x")];
    e.consume_metrics(&request(vec![histogram("lat", CUMULATIVE, vec![point])]))
        .unwrap();
    let text = e.render(Format::Text);
    let want = r#"lat_seconds_bucket{job="svc",otel_scope_name="test.scope",otel_scope_version="2.0",route="/x",le="1"} 1"#;
    assert!(text.contains(want), "{text}");
    assert!(!text.contains("oops"), "{text}");
}

mod queries {
    use std::collections::BTreeMap;

    use super::*;
    use crate::pipeline::query::{HistoryError, HistoryPoint, SeriesMatcher, SeriesQuery};

    fn owned(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        owned(pairs).into_iter().collect()
    }

    const SCOPE: [(&str, &str); 3] = [
        ("job", "svc"),
        ("otel_scope_name", "test.scope"),
        ("otel_scope_version", "2.0"),
    ];

    fn with_scope(extra: &[(&'static str, &'static str)]) -> Vec<(&'static str, &'static str)> {
        let mut all = SCOPE.to_vec();
        all.extend_from_slice(extra);
        all
    }

    fn codes(e: &PrometheusExporter, time: u64, values: &[(&str, f64)]) {
        let points = values
            .iter()
            .map(|(code, v)| NumberDataPoint {
                attributes: vec![kv("code", code)],
                ..number(1, time, *v)
            })
            .collect();
        e.consume_metrics(&request(vec![
            sum("http.requests", CUMULATIVE, true, points),
            sum("other", CUMULATIVE, false, vec![number(1, time, 1.0)]),
        ]))
        .unwrap();
    }

    fn names_and_codes(e: &PrometheusExporter, selector: &str, limit: usize) -> Vec<String> {
        let page = e.find_series(&SeriesMatcher::parse(selector).unwrap(), limit);
        page.series
            .iter()
            .map(|s| {
                let code = s.labels.get("code").map(String::as_str).unwrap_or("-");
                format!("{}:{}:{code}", s.name, s.kind)
            })
            .collect()
    }

    #[test]
    fn series_are_found_by_name_regex_and_labels_sorted_and_limited() {
        let e = exporter();
        codes(&e, 2, &[("500", 1.0), ("200", 5.0), ("404", 2.0)]);
        let page = e.find_series(&SeriesMatcher::parse("other").unwrap(), 10);
        assert_eq!(page.series.len(), 1);
        assert_eq!(page.series[0].kind, "gauge");
        assert_eq!(page.series[0].labels, map(&SCOPE));
        assert!(!page.truncated);
        assert_eq!(
            names_and_codes(&e, "http_.*", 10),
            [
                "http_requests_total:counter:200",
                "http_requests_total:counter:404",
                "http_requests_total:counter:500"
            ]
        );
        assert_eq!(
            names_and_codes(&e, r#"{code=~"[45]..",job="svc"}"#, 10),
            [
                "http_requests_total:counter:404",
                "http_requests_total:counter:500"
            ]
        );
        assert_eq!(names_and_codes(&e, "", 10).len(), 4);
        let page = e.find_series(&SeriesMatcher::parse(".*").unwrap(), 2);
        assert!(page.truncated);
        assert_eq!(page.series.len(), 2);
        assert_eq!(
            names_and_codes(&e, ".*", 2),
            [
                "http_requests_total:counter:200",
                "http_requests_total:counter:404"
            ]
        );
        assert_eq!(
            names_and_codes(&e, ".*", 3),
            [
                "http_requests_total:counter:200",
                "http_requests_total:counter:404",
                "http_requests_total:counter:500"
            ]
        );
        assert!(
            e.find_series(&SeriesMatcher::parse(".*").unwrap(), 3)
                .truncated
        );
        assert!(
            !e.find_series(&SeriesMatcher::parse(".*").unwrap(), 4)
                .truncated
        );
        assert!(names_and_codes(&e, "nothing", 10).is_empty());
    }

    #[test]
    fn history_starts_at_the_current_value_and_grows_with_updates() {
        let e = exporter();
        codes(&e, 2, &[("200", 5.0), ("500", 1.0)]);
        let labels = owned(&with_scope(&[("code", "200")]));
        let first = e.series_history("http_requests_total", &labels).unwrap();
        assert_eq!(first.kind, "counter");
        assert_eq!(first.labels, map(&with_scope(&[("code", "200")])));
        assert_eq!(
            first.points,
            [HistoryPoint {
                time_unix_nano: 2,
                value: Some(5.0),
                count: None,
                sum: None
            }]
        );
        codes(&e, 3, &[("200", 7.0), ("500", 2.0)]);
        // An older point changes nothing and is not recorded.
        codes(&e, 1, &[("200", 1.0)]);
        codes(&e, 4, &[("200", 9.0)]);
        let grown = e.series_history("http_requests_total", &labels).unwrap();
        let seen: Vec<(u64, f64)> = grown
            .points
            .iter()
            .map(|p| (p.time_unix_nano, p.value.unwrap()))
            .collect();
        assert_eq!(seen, [(2, 5.0), (3, 7.0), (4, 9.0)]);
        // Labels must be the series' exact set.
        let err = e
            .series_history("http_requests_total", &owned(&[("code", "200")]))
            .unwrap_err();
        assert_eq!(
            err,
            HistoryError::NotFound(r#"http_requests_total{code="200"}"#.into())
        );
    }

    #[test]
    fn delta_and_histogram_history_shows_accumulated_count_and_sum() {
        let e = exporter();
        let bounds = [0.1, 1.0];
        let send = |time, counts: &[u64], sum| {
            e.consume_metrics(&request(vec![histogram(
                "rpc.duration",
                DELTA,
                vec![hist_point(time, &bounds, counts, sum)],
            )]))
            .unwrap();
        };
        send(2, &[1, 1, 0], 0.5);
        let labels = owned(&SCOPE);
        let first = e.series_history("rpc_duration_seconds", &labels).unwrap();
        assert_eq!(first.kind, "histogram");
        send(3, &[0, 2, 1], 4.0);
        let h = e.series_history("rpc_duration_seconds", &labels).unwrap();
        let seen: Vec<(u64, u64, f64)> = h
            .points
            .iter()
            .map(|p| (p.time_unix_nano, p.count.unwrap(), p.sum.unwrap()))
            .collect();
        assert_eq!(seen, [(2, 2, 0.5), (3, 5, 4.5)]);
        assert!(h.points.iter().all(|p| p.value.is_none()));
    }
}

/// Totals added up from deltas (sums and histograms) survive a restart
/// through durable state and keep adding; cumulative series are not
/// saved (their sender's next point carries the total).
#[test]
fn delta_totals_are_restored_and_keep_adding() {
    use crate::pipeline::durable::Durable;
    let e = exporter();
    for (t, v) in [(2, 5.0), (3, 2.5)] {
        e.consume_metrics(&request(vec![sum(
            "jobs",
            DELTA,
            true,
            vec![number(1, t, v)],
        )]))
        .unwrap();
    }
    e.consume_metrics(&request(vec![histogram(
        "wait",
        DELTA,
        vec![hist_point(2, &[1.0], &[3, 1], 2.0)],
    )]))
    .unwrap();
    e.consume_metrics(&request(vec![sum(
        "bytes.sent",
        CUMULATIVE,
        true,
        vec![number(1, 2, 100.0)],
    )]))
    .unwrap();
    let mut snapshot = Vec::new();
    e.snapshot(&mut snapshot).unwrap();

    // A snapshot with a byte too many is refused whole: no series of it
    // is kept.
    let spoiled = exporter();
    let mut extra = snapshot.clone();
    extra.push(0);
    assert!(spoiled.restore(&extra).is_err());
    let text = spoiled.render(Format::Text);
    assert!(!text.contains("jobs_total"), "{text}");

    let restarted = exporter();
    let restored = restarted.restore(&snapshot).unwrap();
    assert_eq!(restored.items, 2, "the delta sum and the delta histogram");
    let text = restarted.render(Format::Text);
    assert!(text.contains(&line("jobs_total", "", "7.5")), "{text}");
    assert!(
        text.contains(&line_le("wait_seconds_bucket", "+Inf", "4")),
        "{text}"
    );
    assert!(!text.contains("bytes_sent"), "{text}");
    restarted
        .consume_metrics(&request(vec![sum(
            "jobs",
            DELTA,
            true,
            vec![number(1, 9, 1.0)],
        )]))
        .unwrap();
    let text = restarted.render(Format::Text);
    assert!(text.contains(&line("jobs_total", "", "8.5")), "{text}");
    // The start time is the original one (OpenMetrics `_created`).
    let om = restarted.render(Format::OpenMetrics);
    assert!(om.contains("jobs_created{"), "{om}");
    assert!(restarted.restore(&[9, 9, 9]).is_err());
}

/// A metric whose family another request holds is applied after the
/// request's other metrics, from the points it keyed before (one per
/// series, each to its own series), once the family is free.
#[test]
fn a_held_family_waits_and_loses_nothing() {
    let e = Arc::new(exporter());
    let gauge = |name: &str, values: &[f64]| Metric {
        name: name.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: values
                .iter()
                .enumerate()
                .map(|(i, &v)| NumberDataPoint {
                    attributes: vec![kv("shard", &i.to_string())],
                    ..number(0, 1 + i as u64, v)
                })
                .collect(),
        })),
        ..Default::default()
    };
    e.consume_metrics(&request(vec![
        gauge("held", &[1.0, 1.0]),
        gauge("free", &[1.0]),
    ]))
    .unwrap();
    let family = e.store().family("held").expect("family held");
    let table = family.lock_all();
    let writer = {
        let e = Arc::clone(&e);
        std::thread::spawn(move || {
            let batch = request(vec![gauge("held", &[20.0, 21.0]), gauge("free", &[3.0])]);
            e.consume_metrics(&batch).map(|c| c.rejected)
        })
    };
    std::thread::sleep(std::time::Duration::from_millis(200));
    assert!(
        !writer.is_finished(),
        "the held family's points were skipped"
    );
    drop(table);
    assert_eq!(writer.join().expect("writer thread").expect("consumed"), 0);
    let text = e.render(Format::Text);
    for (name, shard, value) in [("held", 0, "20"), ("held", 1, "21"), ("free", 0, "3")] {
        let want = format!("{name}{{{BASE},shard=\"{shard}\"}} {value}\n");
        assert!(text.contains(&want), "{want} in\n{text}");
    }
}

fn exemplar(value: f64, attributes: Vec<KeyValue>) -> crate::model::otlp::metrics::Exemplar {
    crate::model::otlp::metrics::Exemplar {
        filtered_attributes: attributes,
        time_unix_nano: 5_000_000_000,
        span_id: vec![0xab; 8],
        trace_id: vec![0xcd; 16],
        value: Some(crate::model::otlp::metrics::exemplar::Value::AsDouble(
            value,
        )),
    }
}

/// An exemplar's `filtered_attributes` are labels of the OpenMetrics
/// exemplar beside `trace_id` and `span_id`, translated as a point's
/// attributes are; attributes that would take the exemplar past
/// OpenMetrics' 128 characters are left out, the ids kept.
#[test]
fn exemplar_filtered_attributes_become_exemplar_labels() {
    let e = exporter();
    let ids = r#"trace_id="cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",span_id="abababababababab""#;
    let mut counted = number(1_000_000_000, 2_000_000_000, 3.0);
    counted.exemplars = vec![exemplar(
        1.0,
        vec![
            kv("user.id", "u\"7"),
            kv("trace_id", "shadow"),
            kv("http.route", "/a"),
            kv("http_route", "/b"),
        ],
    )];
    let mut timed = hist_point(2_000_000_000, &[0.5, 2.0], &[1, 1, 1], 6.25);
    timed.exemplars = vec![
        exemplar(0.25, vec![kv("customer", "c1")]),
        exemplar(1.0, vec![kv("note", &"é".repeat(61))]),
        exemplar(5.0, vec![kv("note", &"x".repeat(62))]),
    ];
    e.consume_metrics(&request(vec![
        sum("calls", CUMULATIVE, true, vec![counted]),
        histogram("rpc.duration", CUMULATIVE, vec![timed]),
    ]))
    .unwrap();
    let om = e.render(Format::OpenMetrics);
    let calls = format!(
        "calls_total{{{BASE}}} 3 # {{{ids},http_route=\"/a;/b\",user_id=\"u\\\"7\"}} 1 5.000000000\n"
    );
    assert!(om.contains(&calls), "{om}");
    let under = format!(
        "rpc_duration_seconds_bucket{{{BASE},le=\"0.5\"}} 1 # {{{ids},customer=\"c1\"}} 0.25 5.000000000\n"
    );
    assert!(om.contains(&under), "{om}");
    // 63 characters of ids and 4 + 61 of the note (characters, not
    // bytes): 128, the most there may be.
    let at_limit = format!(
        "rpc_duration_seconds_bucket{{{BASE},le=\"2\"}} 2 # {{{ids},note=\"{}\"}} 1 5.000000000\n",
        "é".repeat(61)
    );
    assert!(om.contains(&at_limit), "{om}");
    // With 62: 129, one too many.
    let over =
        format!("rpc_duration_seconds_bucket{{{BASE},le=\"+Inf\"}} 3 # {{{ids}}} 5 5.000000000\n");
    assert!(om.contains(&over), "{om}");
}

/// With `collector_instance` set, a sender's attribute that would become
/// that label (on a point, or on the resource for `target_info`) is
/// replaced by this replica's, as `job` and `instance` replace theirs: a
/// sample with the label twice would fail the whole scrape.
#[test]
fn collector_instance_replaces_a_sender_label_of_that_name() {
    let e = PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        Arc::new(Telemetry::new()),
    )
    .with_collector_instance("sg-a");
    let mut point = number(0, 2_000_000_000, 7.0);
    point.attributes = vec![kv("collector_instance", "upstream"), kv("route", "/a")];
    e.consume_metrics(&request_with(
        vec![
            kv("service.name", "svc"),
            kv("service.instance.id", "i-1"),
            kv("collector.instance", "gw-1"),
        ],
        vec![Metric {
            name: "ci.test".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![point],
            })),
            ..Default::default()
        }],
    ))
    .unwrap();
    let text = e.render(Format::Text);
    for name in ["ci_test{", "target_info{"] {
        let line = text
            .lines()
            .find(|l| l.starts_with(name))
            .unwrap_or_else(|| panic!("{name}: {text}"));
        assert_eq!(line.matches("collector_instance=").count(), 1, "{line}");
        assert!(line.contains(r#"collector_instance="sg-a""#), "{line}");
    }
    assert!(
        !text.contains("upstream") && !text.contains("gw-1"),
        "{text}"
    );
    // The derived gauges' blocks leave it out too.
    let block = e
        .label_block(
            &[],
            &InstrumentationScope::default(),
            &[kv("collector_instance", "x")],
        )
        .unwrap();
    assert!(!block.text.contains("collector_instance"), "{}", block.text);
    // Without it set, the attribute is a label like any other.
    let plain = exporter();
    let mut point = number(0, 2_000_000_000, 7.0);
    point.attributes = vec![kv("collector_instance", "upstream")];
    plain
        .consume_metrics(&request(vec![Metric {
            name: "ci.test".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![point],
            })),
            ..Default::default()
        }]))
        .unwrap();
    assert!(
        plain
            .render(Format::Text)
            .contains(r#"collector_instance="upstream""#)
    );
}
