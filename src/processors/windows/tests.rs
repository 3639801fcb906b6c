//! Tests of the window processor: what it selects, how each kind feeds
//! the windows, the rendered series, empty windows, limits, the gauges
//! handed to the analysis processor.

use crate::model::MetricsBatch;
use std::sync::Arc;

use super::*;
use crate::config::types::HumanDuration;
use crate::model::otlp::common::InstrumentationScope;
use crate::model::otlp::common::KeyValue;
use crate::model::otlp::metrics::{Histogram, HistogramDataPoint};
use crate::model::otlp::metrics::{ResourceMetrics, ScopeMetrics};
use crate::model::otlp::resource::Resource;
use crate::pipeline::Consumed;
use crate::processors::derived_test_support::{CountedLabels, PlainLabels, rendered};

struct Sink;

impl MetricsConsumer for Sink {
    fn consume_metrics(&self, _: &MetricsBatch) -> ConsumeResult {
        Ok(Consumed::all())
    }
}

const T0: u64 = 1_800_000_000_000;

fn processor(config: WindowsConfig) -> (WindowProcessor, Arc<Telemetry>) {
    let telemetry = Arc::new(Telemetry::new());
    (
        WindowProcessor::new(
            config,
            Arc::new(Sink),
            Arc::new(PlainLabels),
            None,
            telemetry.clone(),
        ),
        telemetry,
    )
}

/// One evaluation at `now`, then what `/metrics` would render.
fn evaluated(p: &WindowProcessor, now: u64) -> MetricsRequest {
    p.evaluate(now);
    rendered(p)
}

fn config() -> WindowsConfig {
    WindowsConfig {
        windows: vec![HumanDuration::secs(60), HumanDuration::secs(300)],
        ..Default::default()
    }
}

fn scope() -> InstrumentationScope {
    InstrumentationScope {
        name: "lib".into(),
        ..Default::default()
    }
}

fn service() -> Vec<KeyValue> {
    vec![
        string_kv("service.name", "api"),
        string_kv("host.name", "h1"),
    ]
}

/// (metric name, window, value or None when withdrawn) of every point.
fn points(r: &MetricsRequest) -> Vec<(String, String, Option<f64>)> {
    let mut out = Vec::new();
    for m in r
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
    {
        let Some(Data::Gauge(g)) = &m.data else {
            continue;
        };
        for p in &g.data_points {
            let window = p
                .attributes
                .iter()
                .find(|kv| kv.key == "window")
                .map(|kv| format!("{:?}", kv.value.as_ref().and_then(|v| v.value.clone())))
                .unwrap_or_default();
            let value = match p.value {
                Some(number_data_point::Value::AsDouble(v)) if p.flags == 0 => Some(v),
                _ => None,
            };
            out.push((m.name.clone(), window, value));
        }
    }
    out
}

fn value(r: &MetricsRequest, name: &str, window: &str) -> Option<f64> {
    points(r)
        .into_iter()
        .find(|(n, w, _)| n == name && w.contains(&format!("\"{window}\"")))
        .and_then(|(_, _, v)| v)
}

fn observe(p: &WindowProcessor, values: &[f64], now: u64) {
    observe_as(p, &[string_kv("span.name", "GET /")], values, now);
}

/// Span durations of the test service's operation with `attributes`.
fn observe_as(p: &WindowProcessor, attributes: &[KeyValue], values: &[f64], now: u64) {
    p.observe_values(
        &Observations {
            resource: &service(),
            scope: &scope(),
            metric: "traces.span.metrics.duration",
            unit: "s",
            description: "",
            attributes,
            values,
        },
        now,
    );
}

#[test]
fn raw_values_give_quantiles_within_one_percent() {
    let (p, _) = processor(config());
    let values: Vec<f64> = (1..=1000).map(|i| i as f64 / 1000.0).collect();
    observe(&p, &values, T0);
    let r = evaluated(&p, T0 + 1000);
    for (name, exact) in [
        ("traces.span.metrics.duration.window.p50", 0.5),
        ("traces.span.metrics.duration.window.p95", 0.95),
        ("traces.span.metrics.duration.window.p99", 0.99),
    ] {
        let got = value(&r, name, "1m").expect(name);
        assert!(
            (got - exact).abs() / exact <= 0.01,
            "{name}: {got} vs {exact}"
        );
    }
    assert_eq!(
        value(&r, "traces.span.metrics.duration.window.observations", "5m"),
        Some(1000.0)
    );
    assert_eq!(
        value(&r, "traces.span.metrics.duration.window.min", "1m"),
        Some(0.001)
    );
    assert_eq!(
        value(&r, "traces.span.metrics.duration.window.max", "1m"),
        Some(1.0)
    );
    let mean = value(&r, "traces.span.metrics.duration.window.mean", "1m").unwrap();
    assert!((mean - 0.5005).abs() < 1e-9);
    // Only identifying resource attributes are kept (no target_info).
    let resource = r.resource_metrics[0].resource.as_ref().unwrap();
    assert_eq!(resource.attributes.len(), 1);
}

/// An empty window shows only its observations and rate (0); once the
/// longest window is empty the series is gone.
#[test]
fn empty_windows_show_no_figures() {
    let (p, _) = processor(config());
    observe(&p, &[0.2], T0);
    let r = evaluated(&p, T0 + 1000);
    assert_eq!(
        value(&r, "traces.span.metrics.duration.window.p50", "1m").map(|v| (v * 100.0).round()),
        Some(20.0)
    );
    // Two minutes later the 1m window is empty, the 5m one still holds.
    let later = evaluated(&p, T0 + 121_000);
    let p50: Vec<_> = points(&later)
        .into_iter()
        .filter(|(n, _, _)| n == "traces.span.metrics.duration.window.p50")
        .collect();
    assert_eq!(p50.len(), 1, "{p50:?}");
    assert!(p50[0].1.contains("\"5m\""), "{p50:?}");
    for stat in ["mean", "min", "max", "p95"] {
        let name = format!("traces.span.metrics.duration.window.{stat}");
        assert_eq!(value(&later, &name, "1m"), None, "{name}");
        assert!(value(&later, &name, "5m").is_some(), "{name}");
    }
    assert_eq!(
        value(
            &later,
            "traces.span.metrics.duration.window.observations",
            "1m"
        ),
        Some(0.0)
    );
    assert_eq!(
        value(&later, "traces.span.metrics.duration.window.rate", "1m"),
        Some(0.0)
    );
    // After the longest window the series is dropped, with its gauges.
    evaluated(&p, T0 + 400_000);
    let gone = evaluated(&p, T0 + 401_000);
    assert_eq!(p.series(), 0);
    assert!(points(&gone).is_empty());
    assert!(p.families().is_empty());
}

/// A request of `metric` from the test service and scope.
fn request_of(metric: Metric) -> MetricsRequest {
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: service(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![metric],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn histogram_request(counts: Vec<u64>, start: u64) -> MetricsRequest {
    request_of(Metric {
        name: "http.server.request.duration".into(),
        unit: "s".into(),
        data: Some(Data::Histogram(Histogram {
            aggregation_temporality: 2,
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: start,
                count: counts.iter().sum(),
                bucket_counts: counts,
                explicit_bounds: vec![0.1, 0.2, 0.4],
                ..Default::default()
            }],
        })),
        ..Default::default()
    })
}

#[test]
fn cumulative_histograms_feed_their_increments() {
    let (p, _) = processor(config());
    // First sight only sets the baseline.
    p.observe_request(
        &MetricsBatch::from_request((histogram_request(vec![100, 0, 0, 0], 1)).clone()),
        T0,
    );
    assert!(
        value(
            &evaluated(&p, T0 + 10),
            "http.server.request.duration.window.observations",
            "1m"
        ) == Some(0.0)
    );
    // Then 100 more, all in (0.2, 0.4].
    p.observe_request(
        &MetricsBatch::from_request((histogram_request(vec![100, 0, 100, 0], 1)).clone()),
        T0 + 1000,
    );
    let r = evaluated(&p, T0 + 2000);
    assert_eq!(
        value(&r, "http.server.request.duration.window.observations", "1m"),
        Some(100.0)
    );
    let p50 = value(&r, "http.server.request.duration.window.p50", "1m").unwrap();
    assert!(
        (0.29..=0.31).contains(&p50),
        "spread evenly in the bucket: {p50}"
    );
    // A reset (new start time) counts all of it as new.
    p.observe_request(
        &MetricsBatch::from_request((histogram_request(vec![0, 10, 0, 0], 5)).clone()),
        T0 + 3000,
    );
    let r = evaluated(&p, T0 + 4000);
    assert_eq!(
        value(&r, "http.server.request.duration.window.observations", "1m"),
        Some(110.0)
    );
}

#[test]
fn selection_and_series_limit() {
    let (p, telemetry) = processor(WindowsConfig {
        include: vec!["*duration*".into()],
        exclude: vec!["*.internal.*".into()],
        max_series: 1,
        ..config()
    });
    let other = |metric: &str, span: &str, now| {
        let attributes = vec![string_kv("span.name", span)];
        p.observe_values(
            &Observations {
                resource: &service(),
                scope: &scope(),
                metric,
                unit: "s",
                description: "",
                attributes: &attributes,
                values: &[1.0],
            },
            now,
        );
    };
    other("queue.size", "a", T0);
    other("x.internal.duration", "a", T0);
    assert_eq!(p.series(), 0);
    other("rpc.duration", "a", T0);
    other("rpc.duration", "b", T0);
    assert_eq!(p.series(), 1);
    let skipped = telemetry
        .snapshot()
        .into_iter()
        .find(|f| f.name == "streamgate_processor_windows_skipped_points_total")
        .unwrap();
    assert_eq!(skipped.samples[0].value, 1.0);
}

#[test]
fn quantile_names() {
    assert_eq!(quantile_name(0.5), "p50");
    assert_eq!(quantile_name(0.95), "p95");
    assert_eq!(quantile_name(0.99), "p99");
    assert_eq!(quantile_name(0.999), "p99.9");
}

/// A series fed raw values by a connector ignores the connector's own
/// aggregated histogram of the same values (no double counting).
#[test]
fn raw_values_are_not_counted_twice() {
    let (p, _) = processor(config());
    observe(&p, &[0.1, 0.2], T0);
    let histogram = MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: service(),
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(scope()),
                metrics: vec![Metric {
                    name: "traces.span.metrics.duration".into(),
                    unit: "s".into(),
                    data: Some(Data::Histogram(Histogram {
                        aggregation_temporality: 1,
                        data_points: vec![HistogramDataPoint {
                            attributes: vec![string_kv("span.name", "GET /")],
                            count: 2,
                            bucket_counts: vec![2, 0],
                            explicit_bounds: vec![1.0],
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    p.observe_request(&MetricsBatch::from_request((histogram).clone()), T0);
    let r = evaluated(&p, T0 + 1000);
    assert_eq!(
        value(&r, "traces.span.metrics.duration.window.observations", "1m"),
        Some(2.0)
    );
}

/// A request of one gauge point.
fn gauge_request(value: f64) -> MetricsRequest {
    request_of(Metric {
        name: "queue.depth".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                attributes: vec![string_kv("queue", "orders")],
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    })
}

/// Gauge samples are staged a few at a time on their way into the
/// windows: fewer than a batch still count at the next evaluation, each
/// at its own time, and more than a batch all count.
#[test]
fn staged_gauge_samples_all_count_at_the_next_evaluation() {
    let (p, _) = processor(WindowsConfig {
        include: vec!["queue.*".into()],
        ..config()
    });
    for (k, v) in [3.0, 9.0, 5.0].into_iter().enumerate() {
        p.observe_request(&MetricsBatch::from_request(gauge_request(v)), T0 + k as u64);
    }
    let r = evaluated(&p, T0 + 1000);
    assert_eq!(
        value(&r, "queue.depth.window.observations", "1m"),
        Some(3.0)
    );
    assert_eq!(value(&r, "queue.depth.window.max", "1m"), Some(9.0));
    assert_eq!(value(&r, "queue.depth.window.min", "1m"), Some(3.0));
    let many = super::stream::STAGED as u64 * 2 + 3;
    for k in 0..many {
        p.observe_request(
            &MetricsBatch::from_request(gauge_request(k as f64)),
            T0 + 2000 + k,
        );
    }
    let r = evaluated(&p, T0 + 3000);
    assert_eq!(
        value(&r, "queue.depth.window.observations", "1m"),
        Some((3 + many) as f64)
    );
    assert_eq!(
        value(&r, "queue.depth.window.max", "1m"),
        Some((many - 1) as f64)
    );
}

/// A request of queue gauges (`queue`, value) and a cumulative histogram.
fn mixed_request(queues: &[(&str, f64)], histogram_counts: Vec<u64>) -> MetricsRequest {
    let mut request = histogram_request(histogram_counts, 1);
    request.resource_metrics[0].scope_metrics[0]
        .metrics
        .push(Metric {
            name: "queue.depth".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: queues
                    .iter()
                    .map(|&(queue, value)| NumberDataPoint {
                        attributes: vec![string_kv("queue", queue)],
                        value: Some(number_data_point::Value::AsDouble(value)),
                        ..Default::default()
                    })
                    .collect(),
            })),
            ..Default::default()
        });
    request
}

/// The 1m value of `name` per `queue` attribute.
fn per_queue(r: &MetricsRequest, name: &str) -> std::collections::BTreeMap<String, f64> {
    let mut out = std::collections::BTreeMap::new();
    for m in r
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .filter(|m| m.name == name)
    {
        let Some(Data::Gauge(g)) = &m.data else {
            continue;
        };
        for p in &g.data_points {
            let text = |key: &str| {
                p.attributes
                    .iter()
                    .find(|kv| kv.key == key)
                    .and_then(|kv| kv.value.as_ref())
                    .and_then(|v| match &v.value {
                        Some(crate::model::otlp::common::any_value::Value::StringValue(s)) => {
                            Some(s.clone())
                        }
                        _ => None,
                    })
            };
            if let (Some(queue), Some("1m"), Some(number_data_point::Value::AsDouble(v))) =
                (text("queue"), text("window").as_deref(), p.value)
            {
                out.insert(queue, v);
            }
        }
    }
    out
}

/// Gauge samples of known and new series interleaved in one request, with
/// a histogram beside them: each sample reaches its own series (the new
/// ones through the second walk) and the histogram is fed as well.
#[test]
fn new_and_known_gauge_series_in_one_request_each_get_their_samples() {
    let (p, _) = processor(WindowsConfig {
        include: vec!["queue.*".into(), "http.*".into()],
        ..config()
    });
    let batch =
        |queues: &[(&str, f64)], counts| MetricsBatch::from_request(mixed_request(queues, counts));
    p.observe_request(&batch(&[("orders", 1.0)], vec![1, 0, 0, 0]), T0);
    p.observe_request(
        &batch(
            &[
                ("orders", 2.0),
                ("billing", 5.0),
                ("orders", 3.0),
                ("mail", 7.0),
                ("billing", 4.0),
            ],
            vec![1, 2, 0, 0],
        ),
        T0 + 1,
    );
    assert_eq!(p.series(), 4, "three queues and the histogram");
    let r = evaluated(&p, T0 + 1000);
    let count = per_queue(&r, "queue.depth.window.observations");
    let max = per_queue(&r, "queue.depth.window.max");
    let want = |pairs: &[(&str, f64)]| {
        pairs
            .iter()
            .map(|&(q, v)| (q.to_string(), v))
            .collect::<std::collections::BTreeMap<_, _>>()
    };
    assert_eq!(
        count,
        want(&[("billing", 2.0), ("mail", 1.0), ("orders", 3.0)])
    );
    assert_eq!(
        max,
        want(&[("billing", 5.0), ("mail", 7.0), ("orders", 3.0)])
    );
    assert_eq!(
        value(&r, "http.server.request.duration.window.observations", "1m"),
        Some(2.0),
        "the histogram's increment since the first request"
    );
}

/// A processor restored from another's snapshot reports the same windows
/// at once, before any new data, and keeps adding to them; a snapshot of
/// other windows is discarded.
#[test]
fn restored_windows_report_what_was_saved() {
    use crate::pipeline::durable::{Durable, Restored};
    let (original, _) = processor(config());
    let values: Vec<f64> = (1..=500).map(|i| i as f64 / 100.0).collect();
    observe(&original, &values, T0);
    let mut snapshot = Vec::new();
    original.snapshot(&mut snapshot).expect("snapshot");

    let (restored, _) = processor(config());
    assert_eq!(
        restored.restore(&snapshot).expect("restore"),
        Restored {
            items: 1,
            discarded: 0
        }
    );
    let a = points(&evaluated(&original, T0 + 1000));
    let b = points(&evaluated(&restored, T0 + 1000));
    assert!(!a.is_empty());
    assert_eq!(a, b);
    observe(&original, &[7.0], T0 + 2000);
    observe(&restored, &[7.0], T0 + 2000);
    assert_eq!(
        points(&evaluated(&original, T0 + 3000)),
        points(&evaluated(&restored, T0 + 3000))
    );

    // One stream more promised than held: the good one is not kept.
    assert_eq!(snapshot[0], 1, "one stream, its count a one-byte varint");
    let mut overcounted = snapshot.clone();
    overcounted[0] = 2;
    let (fresh, _) = processor(config());
    assert!(fresh.restore(&overcounted).is_err());
    assert_eq!(fresh.series(), 0, "a failed snapshot leaves no stream");

    let (other, _) = processor(WindowsConfig {
        windows: vec![HumanDuration::secs(60)],
        ..Default::default()
    });
    assert_eq!(
        other.restore(&snapshot).expect("readable"),
        Restored {
            items: 0,
            discarded: 1
        }
    );
}

/// Records what the window processor hands it, wanting only p95.
#[derive(Default)]
struct P95Observer(parking_lot::Mutex<Vec<MetricsRequest>>);

impl DerivedObserver for P95Observer {
    fn wants_metric(&self, name: &str) -> bool {
        name.ends_with(".window.p95")
    }

    fn observe_derived(&self, batch: &MetricsBatch) {
        self.0.lock().push(batch.request().clone());
    }
}

/// A processor of the test config whose observer takes the p95 gauges.
fn observed_processor() -> (WindowProcessor, Arc<P95Observer>) {
    let observer = Arc::new(P95Observer::default());
    let p = WindowProcessor::new(
        config(),
        Arc::new(Sink),
        Arc::new(PlainLabels),
        Some(observer.clone()),
        Arc::new(Telemetry::new()),
    );
    (p, observer)
}

/// On each interval the observer gets the gauges it wants, with the
/// series' resource, scope and attributes and the window label, and no
/// others; an interval with none of them hands it nothing.
#[test]
fn the_observer_is_handed_the_gauges_it_wants() {
    let (p, observer) = observed_processor();
    let values: Vec<f64> = (1..=100).map(|i| i as f64 / 100.0).collect();
    observe(&p, &values, T0);
    p.evaluate(T0 + 1000);
    let handed = std::mem::take(&mut *observer.0.lock());
    assert_eq!(handed.len(), 1);
    let r = &handed[0];
    let got = points(r);
    assert_eq!(got.len(), 2, "p95 of 1m and 5m only: {got:?}");
    assert!(
        got.iter()
            .all(|(n, _, _)| n == "traces.span.metrics.duration.window.p95")
    );
    let p95 = value(r, "traces.span.metrics.duration.window.p95", "5m").expect("5m p95");
    assert!((p95 - 0.95).abs() / 0.95 <= 0.01, "{p95}");
    let rm = &r.resource_metrics[0];
    assert_eq!(
        rm.resource.as_ref().map(|r| r.attributes.clone()),
        Some(vec![string_kv("service.name", "api")])
    );
    assert_eq!(rm.scope_metrics[0].scope.as_ref(), Some(&scope()));
    let attributes = match &rm.scope_metrics[0].metrics[0].data {
        Some(Data::Gauge(g)) => g.data_points[0].attributes.clone(),
        _ => Vec::new(),
    };
    assert_eq!(attributes[0], string_kv("span.name", "GET /"));
    assert_eq!(rm.scope_metrics[0].metrics[0].unit, "s");
    // Nothing left in any window: nothing handed over.
    p.evaluate(T0 + 400_000);
    assert!(observer.0.lock().is_empty());
}

/// Many series are evaluated a batch at a time: the observer is handed
/// each series' gauges once, in batches of at most
/// [`EVALUATED_PER_LOCK`] series, so what is built for it at once stays
/// bounded however many series there are.
#[test]
fn the_observer_is_handed_many_series_a_batch_at_a_time() {
    let (p, observer) = observed_processor();
    let series = 2 * EVALUATED_PER_LOCK + 5;
    for i in 0..series {
        let name = format!("GET /{i}");
        observe_as(&p, &[string_kv("span.name", &name)], &[0.1, 0.2], T0);
    }
    p.evaluate(T0 + 1000);
    let handed = std::mem::take(&mut *observer.0.lock());
    assert_eq!(handed.len(), 3);
    assert!(
        handed
            .iter()
            .all(|r| r.resource_metrics.len() <= EVALUATED_PER_LOCK)
    );
    let mut names: Vec<String> = handed
        .iter()
        .flat_map(|r| &r.resource_metrics)
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .filter_map(|m| match &m.data {
            Some(Data::Gauge(g)) => Some(&g.data_points[0].attributes[0]),
            _ => None,
        })
        .map(|kv| format!("{:?}", kv.value))
        .collect();
    let handed_over = names.len();
    names.sort();
    names.dedup();
    assert_eq!(
        (handed_over, names.len()),
        (series, series),
        "each series once"
    );
    assert_eq!(p.series(), series);
}

/// A series whose gauges' labels the exporter would refuse gets no
/// windows and its values are counted as skipped; it is translated once
/// while it keeps sending, again once it was silent for the longest
/// window.
#[test]
fn series_the_exporter_would_refuse_get_no_windows() {
    use std::sync::atomic::Ordering;
    let telemetry = Arc::new(Telemetry::new());
    let labels = Arc::new(CountedLabels(Default::default()));
    let p = WindowProcessor::new(
        config(),
        Arc::new(Sink),
        labels.clone(),
        None,
        telemetry.clone(),
    );
    let long = vec![string_kv("span.name", &"/".repeat(300))];
    let refused = |now| observe_as(&p, &long, &[0.1, 0.2], now);
    refused(T0);
    observe(&p, &[0.3], T0);
    refused(T0 + 1000);
    assert_eq!(p.series(), 1);
    assert_eq!(telemetry.health_counters().limited_points, 2);
    assert_eq!(labels.0.load(Ordering::Relaxed), 2, "the refused one once");
    // Silent past the longest window (5m): forgotten, tried again.
    p.evaluate(T0 + 400_000);
    refused(T0 + 401_000);
    assert_eq!(labels.0.load(Ordering::Relaxed), 3);
    assert_eq!(telemetry.health_counters().limited_points, 3);
}

/// A windowed stream is boxed, one per series: it stays within jemalloc's
/// 384-byte size class (its windows' slots and any previous histogram
/// live behind pointers).
#[test]
fn a_stream_fits_the_384_byte_size_class() {
    assert!(
        size_of::<stream::Stream>() <= 384,
        "{} bytes",
        size_of::<stream::Stream>()
    );
}

/// A histogram point of `counts` in (0.1, 0.2, 0.4] buckets, timed
/// `time_ns`, started at `start_ns`, of `temporality`.
fn timed_histogram(
    counts: Vec<u64>,
    start_ns: u64,
    time_ns: u64,
    temporality: i32,
) -> MetricsBatch {
    MetricsBatch::from_request(request_of(Metric {
        name: "http.server.request.duration".into(),
        unit: "s".into(),
        data: Some(Data::Histogram(Histogram {
            aggregation_temporality: temporality,
            data_points: vec![HistogramDataPoint {
                start_time_unix_nano: start_ns,
                time_unix_nano: time_ns,
                count: counts.iter().sum(),
                bucket_counts: counts,
                explicit_bounds: vec![0.1, 0.2, 0.4],
                ..Default::default()
            }],
        })),
        ..Default::default()
    }))
}

fn timed_gauge(value: f64, time_ns: u64) -> MetricsBatch {
    let mut request = gauge_request(value);
    if let Some(Data::Gauge(g)) = &mut request.resource_metrics[0].scope_metrics[0].metrics[0].data
    {
        g.data_points[0].time_unix_nano = time_ns;
    }
    MetricsBatch::from_request(request)
}

const OBSERVATIONS_1M: &str = "http.server.request.duration.window.observations";

/// A point as old as the series' last (a retried request) or older (a
/// late one) is not observed again: the windows agree with the exporter,
/// which ignores it too. A late cumulative point is not a reset.
#[test]
fn repeated_and_late_points_are_not_observed_twice() {
    const S: u64 = 1_000_000_000;
    // A delta histogram sent twice.
    let (p, _) = processor(config());
    let delta = timed_histogram(vec![4, 3, 2, 1], 0, 10 * S, 1);
    p.observe_request(&delta, T0);
    p.observe_request(&delta, T0 + 100);
    let r = evaluated(&p, T0 + 1000);
    assert_eq!(value(&r, OBSERVATIONS_1M, "1m"), Some(10.0));

    // Cumulative, started before the processor: the first point is the
    // baseline; a late point between two others is skipped, not a reset.
    let (p, _) = processor(config());
    for (counts, time, at) in [
        (vec![10, 0, 0, 0], 10, 0),
        (vec![30, 0, 0, 0], 30, 100),
        (vec![20, 0, 0, 0], 20, 200),
        (vec![30, 0, 0, 0], 30, 250),
        (vec![40, 0, 0, 0], 40, 300),
    ] {
        p.observe_request(&timed_histogram(counts, S, time * S, 2), T0 + at);
    }
    let r = evaluated(&p, T0 + 1000);
    assert_eq!(value(&r, OBSERVATIONS_1M, "1m"), Some(30.0));

    // A gauge point, its repeat, and a stale one: one observation.
    let (p, _) = processor(WindowsConfig {
        include: vec!["queue.*".into()],
        ..config()
    });
    for (v, time, at) in [
        (100.0, 100, 0),
        (100.0, 100, 10),
        (5000.0, 70, 20),
        (7.0, 0, 30),
    ] {
        p.observe_request(&timed_gauge(v, time * S), T0 + at);
    }
    let r = evaluated(&p, T0 + 1000);
    assert_eq!(
        value(&r, "queue.depth.window.observations", "1m"),
        Some(2.0),
        "the untimed point counts"
    );
    assert_eq!(value(&r, "queue.depth.window.max", "1m"), Some(100.0));
}

/// The first point of a cumulative histogram that started while the
/// processor ran holds everything since its start: it is counted whole
/// (an SDK's first export is not lost), while one that started before
/// only sets the baseline.
#[test]
fn a_cumulative_series_started_since_the_processor_counts_its_first_point() {
    let (p, _) = processor(config());
    let now_ns = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64;
    p.observe_request(
        &timed_histogram(vec![0, 50, 0, 0], now_ns + 1, now_ns + 2, 2),
        T0,
    );
    let r = evaluated(&p, T0 + 1000);
    assert_eq!(value(&r, OBSERVATIONS_1M, "1m"), Some(50.0));
    let (p, _) = processor(config());
    p.observe_request(
        &timed_histogram(vec![0, 50, 0, 0], now_ns - 1_000_000_000, now_ns, 2),
        T0,
    );
    let r = evaluated(&p, T0 + 1000);
    assert_eq!(value(&r, OBSERVATIONS_1M, "1m"), Some(0.0));
}
