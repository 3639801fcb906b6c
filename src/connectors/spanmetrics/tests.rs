//! Tests of the span-metrics connector: dimensions, buckets, exemplars,
//! incremental cumulative output, overflow, observations, expiry.

use crate::model::MetricsBatch;
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::config::types::HumanDuration;
use crate::model::MetricsRequest;
use crate::model::otlp::common::{AnyValue, KeyValue, any_value};
use crate::model::otlp::metrics::{Metric, metric::Data};
use crate::model::otlp::resource::Resource;
use crate::model::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status};

#[derive(Default)]
struct Capture {
    requests: Mutex<Vec<MetricsRequest>>,
    observed: Mutex<Vec<(String, Vec<f64>)>>,
}

impl MetricsConsumer for Capture {
    fn consume_metrics(&self, request: &MetricsBatch) -> ConsumeResult {
        self.requests.lock().push(request.request().clone());
        Ok(Consumed::all())
    }
}

impl ObservationConsumer for Capture {
    fn observe(&self, batch: &Observations<'_>) {
        let name = batch
            .attributes
            .iter()
            .find(|kv| kv.key == "span.name")
            .map(|kv| format!("{:?}", kv.value))
            .unwrap_or_default();
        self.observed.lock().push((name, batch.values.to_vec()));
    }
}

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn span(name: &str, kind: i32, status: i32, millis: u64, id: u8) -> Span {
    Span {
        trace_id: vec![id; 16],
        span_id: vec![id; 8],
        name: name.into(),
        kind,
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_000_000_000 + millis * 1_000_000,
        status: Some(Status {
            code: status,
            ..Default::default()
        }),
        ..Default::default()
    }
}

fn request(resource: Vec<KeyValue>, spans: Vec<Span>) -> TracesBatch {
    TracesBatch::from_request(crate::model::TracesRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: resource,
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    })
}

/// A connector that emits after every request (`flush_interval: 0s`).
fn connector(config: SpanMetricsConfig) -> (SpanMetrics, Arc<Capture>, Arc<Telemetry>) {
    connector_flushing_every(config, HumanDuration::secs(0))
}

fn connector_flushing_every(
    mut config: SpanMetricsConfig,
    interval: HumanDuration,
) -> (SpanMetrics, Arc<Capture>, Arc<Telemetry>) {
    config.flush_interval = interval;
    let capture = Arc::new(Capture::default());
    let telemetry = Arc::new(Telemetry::new());
    let c = SpanMetrics::new(
        config,
        capture.clone(),
        Some(capture.clone()),
        telemetry.clone(),
    );
    (c, capture, telemetry)
}

fn attr<'a>(attrs: &'a [KeyValue], key: &str) -> Option<&'a str> {
    attrs
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| match &kv.value {
            Some(AnyValue {
                value: Some(any_value::Value::StringValue(s)),
            }) => Some(s.as_str()),
            _ => None,
        })
}

fn metrics(r: &MetricsRequest) -> Vec<&Metric> {
    r.resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
        .collect()
}

/// The `.calls` sum of an emitted request.
fn calls_sum(r: &MetricsRequest) -> &crate::model::otlp::metrics::Sum {
    let calls = metrics(r)
        .into_iter()
        .find(|m| m.name.ends_with(".calls"))
        .expect("calls");
    let Some(Data::Sum(sum)) = &calls.data else {
        panic!("calls is a sum")
    };
    sum
}

/// With a flush interval, requests only count; one flush emits each
/// changed series once with everything counted since the last flush.
#[test]
fn a_flush_interval_emits_each_changed_series_once() {
    let (c, capture, _) =
        connector_flushing_every(SpanMetricsConfig::default(), HumanDuration::secs(1));
    for i in 0..3 {
        c.consume_traces(&request(
            vec![kv("service.name", "shop")],
            vec![span("GET /", 2, 0, 1, i), span("GET /", 2, 0, 1, 10 + i)],
        ))
        .unwrap();
    }
    assert!(
        capture.requests.lock().is_empty(),
        "nothing before the flush"
    );
    assert!(capture.observed.lock().is_empty());
    c.flush();
    let requests = capture.requests.lock().clone();
    assert_eq!(requests.len(), 1);
    let sum = calls_sum(&requests[0]);
    assert_eq!(sum.data_points.len(), 1, "one series, once");
    assert_eq!(
        sum.data_points[0].value,
        Some(crate::model::otlp::metrics::number_data_point::Value::AsInt(6))
    );
    let observed: usize = capture.observed.lock().iter().map(|(_, v)| v.len()).sum();
    assert_eq!(observed, 6, "every duration reaches the windows");
    c.flush();
    assert_eq!(capture.requests.lock().len(), 1, "nothing changed since");
}

#[test]
fn counts_calls_and_buckets_durations_by_dimension() {
    let (c, capture, _) = connector(SpanMetricsConfig::default());
    let spans = vec![
        span("GET /", 2, 0, 1, 1),
        span("GET /", 2, 0, 3, 2),
        span("GET /", 2, 0, 3, 3),
        span("GET /", 2, 2, 20_000, 4),
        span("db", 3, 1, 20, 5),
    ];
    c.consume_traces(&request(vec![kv("service.name", "shop")], spans))
        .unwrap();
    let requests = capture.requests.lock();
    assert_eq!(requests.len(), 1);
    let ms = metrics(&requests[0]);
    assert_eq!(ms[0].name, "traces.span.metrics.calls");
    assert_eq!(ms[1].name, "traces.span.metrics.duration");
    assert_eq!(ms[1].unit, "s");
    let Some(Data::Sum(calls)) = &ms[0].data else {
        panic!("calls is a sum")
    };
    assert!(calls.is_monotonic);
    assert_eq!(calls.data_points.len(), 3);
    let ok_get = calls
        .data_points
        .iter()
        .find(|p| {
            attr(&p.attributes, "span.name") == Some("GET /")
                && attr(&p.attributes, "status.code") == Some("STATUS_CODE_UNSET")
        })
        .expect("GET / unset");
    assert_eq!(ok_get.value, Some(number_data_point_value(3)));
    assert_eq!(attr(&ok_get.attributes, "service.name"), Some("shop"));
    assert_eq!(
        attr(&ok_get.attributes, "span.kind"),
        Some("SPAN_KIND_SERVER")
    );
    let db = calls
        .data_points
        .iter()
        .find(|p| attr(&p.attributes, "span.name") == Some("db"))
        .unwrap();
    assert_eq!(attr(&db.attributes, "span.kind"), Some("SPAN_KIND_CLIENT"));
    assert_eq!(attr(&db.attributes, "status.code"), Some("STATUS_CODE_OK"));

    let Some(Data::Histogram(h)) = &ms[1].data else {
        panic!("duration is a histogram")
    };
    let get = h
        .data_points
        .iter()
        .find(|p| {
            attr(&p.attributes, "span.name") == Some("GET /")
                && attr(&p.attributes, "status.code") == Some("STATUS_CODE_UNSET")
        })
        .unwrap();
    assert_eq!(get.explicit_bounds.len(), 16);
    assert_eq!(get.explicit_bounds[0], 0.002);
    assert_eq!(get.explicit_bounds[15], 15.0);
    // 1 ms → ≤2ms; 3 ms twice → ≤4ms.
    assert_eq!(&get.bucket_counts[..3], &[1, 2, 0]);
    assert_eq!(get.count, 3);
    assert!((get.sum.unwrap() - 0.007).abs() < 1e-12);
    let error = h
        .data_points
        .iter()
        .find(|p| attr(&p.attributes, "status.code") == Some("STATUS_CODE_ERROR"))
        .unwrap();
    assert_eq!(error.bucket_counts[16], 1, "20 s goes to +Inf");
    // Exemplars: ids of the spans, in the bucket of their value.
    assert_eq!(get.exemplars.len(), 2, "one per bucket used");
    assert!(
        get.exemplars
            .iter()
            .all(|e| e.trace_id.len() == 16 && e.span_id.len() == 8)
    );
    assert_eq!(ok_get.exemplars.len(), 1);
    assert_eq!(
        ok_get.exemplars[0].trace_id,
        vec![1; 16],
        "the interval's first span"
    );
}

/// Each exemplar is the first span of its bucket (or of the series, for
/// the calls counter) in an emission interval; a bucket no span reached
/// since keeps the exemplar it had.
#[test]
fn exemplars_are_the_first_span_of_each_interval() {
    let (c, capture, _) =
        connector_flushing_every(SpanMetricsConfig::default(), HumanDuration::secs(60));
    let resource = || vec![kv("service.name", "shop")];
    // 1 ms and 3 ms: the ≤2ms and ≤4ms buckets.
    let first = vec![
        span("GET /", 2, 0, 1, 1),
        span("GET /", 2, 0, 3, 2),
        span("GET /", 2, 0, 1, 3),
    ];
    c.consume_traces(&request(resource(), first)).unwrap();
    c.flush();
    let second = vec![span("GET /", 2, 0, 1, 4), span("GET /", 2, 0, 1, 5)];
    c.consume_traces(&request(resource(), second)).unwrap();
    c.flush();
    let requests = capture.requests.lock().clone();
    assert_eq!(requests.len(), 2);
    let exemplars = |r: &MetricsRequest| {
        let calls: Vec<u8> = calls_sum(r).data_points[0]
            .exemplars
            .iter()
            .map(|e| e.trace_id[0])
            .collect();
        let Some(Data::Histogram(h)) = &metrics(r)[1].data else {
            panic!("duration is a histogram")
        };
        let buckets: Vec<u8> = h.data_points[0]
            .exemplars
            .iter()
            .map(|e| e.trace_id[0])
            .collect();
        (calls, buckets)
    };
    assert_eq!(exemplars(&requests[0]), (vec![1], vec![1, 2]));
    assert_eq!(
        exemplars(&requests[1]),
        (vec![4], vec![4, 2]),
        "the ≤4ms bucket keeps its exemplar"
    );
}

fn number_data_point_value(n: i64) -> crate::model::otlp::metrics::number_data_point::Value {
    crate::model::otlp::metrics::number_data_point::Value::AsInt(n)
}

#[test]
fn output_is_cumulative_and_only_changed_series() {
    let (c, capture, _) = connector(SpanMetricsConfig::default());
    let resource = vec![kv("service.name", "shop")];
    c.consume_traces(&request(
        resource.clone(),
        vec![span("a", 2, 0, 5, 1), span("b", 2, 0, 5, 2)],
    ))
    .unwrap();
    c.consume_traces(&request(resource, vec![span("a", 2, 0, 5, 3)]))
        .unwrap();
    let requests = capture.requests.lock();
    let Some(Data::Sum(second)) = &metrics(&requests[1])[0].data else {
        panic!()
    };
    assert_eq!(second.data_points.len(), 1, "only `a` changed");
    assert_eq!(
        second.data_points[0].value,
        Some(number_data_point_value(2))
    );
    let first_start = {
        let Some(Data::Sum(first)) = &metrics(&requests[0])[0].data else {
            panic!()
        };
        first.data_points[0].start_time_unix_nano
    };
    assert_eq!(second.data_points[0].start_time_unix_nano, first_start);
}

#[test]
fn extra_dimensions_come_from_span_then_resource_then_default() {
    let config = SpanMetricsConfig {
        dimensions: vec![
            Dimension {
                name: "http.request.method".into(),
                default: Some("GET".into()),
            },
            Dimension {
                name: "deployment.environment".into(),
                default: None,
            },
            Dimension {
                name: "missing".into(),
                default: None,
            },
        ],
        ..Default::default()
    };
    let (c, capture, _) = connector(config);
    let mut with_method = span("a", 2, 0, 5, 1);
    with_method.attributes = vec![kv("http.request.method", "POST")];
    let without = span("a", 2, 0, 5, 2);
    c.consume_traces(&request(
        vec![
            kv("service.name", "shop"),
            kv("deployment.environment", "prod"),
        ],
        vec![with_method, without],
    ))
    .unwrap();
    let requests = capture.requests.lock();
    let Some(Data::Sum(calls)) = &metrics(&requests[0])[0].data else {
        panic!()
    };
    let mut methods: Vec<_> = calls
        .data_points
        .iter()
        .map(|p| {
            assert_eq!(attr(&p.attributes, "deployment.environment"), Some("prod"));
            assert!(attr(&p.attributes, "missing").is_none());
            attr(&p.attributes, "http.request.method")
                .unwrap()
                .to_string()
        })
        .collect();
    methods.sort();
    assert_eq!(methods, vec!["GET", "POST"]);
}

#[test]
fn beyond_the_limit_spans_go_to_one_overflow_series() {
    let (c, capture, telemetry) = connector(SpanMetricsConfig {
        cardinality_limit: 2,
        ..Default::default()
    });
    let spans = (0..5)
        .map(|i| span(&format!("op{i}"), 2, 0, 5, i as u8))
        .collect();
    c.consume_traces(&request(vec![kv("service.name", "shop")], spans))
        .unwrap();
    assert_eq!(c.series(), 2);
    let requests = capture.requests.lock();
    let overflow: Vec<_> = requests[0]
        .resource_metrics
        .iter()
        .filter(|rm| {
            rm.resource
                .as_ref()
                .is_some_and(|r| r.attributes.is_empty())
        })
        .collect();
    assert_eq!(overflow.len(), 1);
    let Some(Data::Sum(calls)) = &overflow[0].scope_metrics[0].metrics[0].data else {
        panic!()
    };
    assert_eq!(calls.data_points[0].value, Some(number_data_point_value(3)));
    assert_eq!(
        calls.data_points[0].attributes[0].key,
        "otel.metric.overflow"
    );
    let snapshot = telemetry.snapshot();
    let family = snapshot
        .iter()
        .find(|f| f.name == "streamgate_connector_overflow_points_total")
        .unwrap();
    assert_eq!(family.samples[0].value, 3.0);
}

#[test]
fn raw_durations_reach_the_observer() {
    let (c, capture, _) = connector(SpanMetricsConfig::default());
    c.consume_traces(&request(
        vec![kv("service.name", "shop")],
        vec![span("a", 2, 0, 5, 1), span("a", 2, 0, 7, 2)],
    ))
    .unwrap();
    let observed = capture.observed.lock();
    assert_eq!(observed.len(), 1);
    assert_eq!(observed[0].1, vec![0.005, 0.007]);
}

#[test]
fn exponential_histograms_when_configured() {
    let (c, capture, _) = connector(SpanMetricsConfig {
        histogram: config::HistogramConfig {
            explicit: None,
            exponential: Some(config::ExponentialBuckets { max_size: 20 }),
        },
        ..Default::default()
    });
    let spans = (1..=100).map(|i| span("a", 2, 0, i, i as u8)).collect();
    c.consume_traces(&request(vec![kv("service.name", "shop")], spans))
        .unwrap();
    let requests = capture.requests.lock();
    let Some(Data::ExponentialHistogram(h)) = &metrics(&requests[0])[1].data else {
        panic!("exponential")
    };
    let p = &h.data_points[0];
    assert_eq!(p.count, 100);
    let buckets = p.positive.as_ref().unwrap();
    assert!(buckets.bucket_counts.len() <= 20);
    assert_eq!(buckets.bucket_counts.iter().sum::<u64>(), 100);
}

#[test]
fn idle_series_expire() {
    let (c, _, _) = connector(SpanMetricsConfig {
        series_ttl: HumanDuration::secs(1),
        ..Default::default()
    });
    c.consume_traces(&request(
        vec![kv("service.name", "shop")],
        vec![span("a", 2, 0, 5, 1)],
    ))
    .unwrap();
    assert_eq!(c.expire(crate::connectors::output::now_ns()), 0);
    assert_eq!(
        c.expire(crate::connectors::output::now_ns() + 2_000_000_000),
        1
    );
    assert_eq!(c.series(), 0);
}

/// The same resource with its attributes in another order (the Rust SDK
/// keeps them in a hash map) is one resource: one series, not two.
#[test]
fn resource_attribute_order_does_not_split_series() {
    let (c, capture, _) = connector(SpanMetricsConfig::default());
    let a = vec![kv("service.name", "shop"), kv("host.name", "h1")];
    let b = vec![kv("host.name", "h1"), kv("service.name", "shop")];
    c.consume_traces(&request(a, vec![span("x", 2, 0, 5, 1)]))
        .unwrap();
    c.consume_traces(&request(b, vec![span("x", 2, 0, 5, 2)]))
        .unwrap();
    assert_eq!(c.series(), 1);
    let requests = capture.requests.lock();
    let Some(Data::Sum(calls)) = &metrics(&requests[1])[0].data else {
        panic!()
    };
    assert_eq!(calls.data_points[0].value, Some(number_data_point_value(2)));
    // Timestamps only move forward.
    let Some(Data::Sum(first)) = &metrics(&requests[0])[0].data else {
        panic!()
    };
    assert!(calls.data_points[0].time_unix_nano > first.data_points[0].time_unix_nano);
}

/// Spans of known and new series interleaved in one request: each is
/// counted once on its own series (the known ones in the first pass, the
/// new ones when the second walk adds them).
#[test]
fn known_and_new_series_in_one_request_each_count_their_spans() {
    let (c, capture, _) =
        connector_flushing_every(SpanMetricsConfig::default(), HumanDuration::secs(1));
    let shop = || vec![kv("service.name", "shop")];
    c.consume_traces(&request(shop(), vec![span("a", 2, 0, 1, 1)]))
        .unwrap();
    let names = ["a", "b", "a", "c", "b"];
    let spans = names
        .iter()
        .enumerate()
        .map(|(i, name)| span(name, 2, 0, 1, 2 + i as u8))
        .collect();
    c.consume_traces(&request(shop(), spans)).unwrap();
    c.flush();
    let requests = capture.requests.lock();
    let sum = calls_sum(&requests[0]);
    let mut counts: Vec<(String, Option<_>)> = sum
        .data_points
        .iter()
        .map(|p| {
            let name = attr(&p.attributes, "span.name").unwrap_or_default();
            (name.to_string(), p.value)
        })
        .collect();
    counts.sort_by(|a, b| a.0.cmp(&b.0));
    let want: Vec<(String, Option<_>)> = [("a", 3), ("b", 2), ("c", 1)]
        .into_iter()
        .map(|(n, v)| (n.to_string(), Some(number_data_point_value(v))))
        .collect();
    assert_eq!(counts, want);
}

/// One resource (`service.name` "shop", the instance) per entry.
fn request_from(resources: Vec<(String, Vec<Span>)>) -> TracesBatch {
    TracesBatch::from_request(crate::model::TracesRequest {
        resource_spans: resources
            .into_iter()
            .map(|(instance, spans)| ResourceSpans {
                resource: Some(Resource {
                    attributes: vec![
                        kv("service.name", "shop"),
                        kv("service.instance.id", &instance),
                    ],
                    ..Default::default()
                }),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    })
}

/// Calls per emitted series: (instance, or `None` for the overflow
/// series, calls), over every request the capture holds.
fn calls_by_instance(capture: &Capture) -> Vec<(Option<String>, i64)> {
    let mut out = Vec::new();
    for r in capture.requests.lock().iter() {
        for rm in &r.resource_metrics {
            let instance = rm
                .resource
                .as_ref()
                .and_then(|r| attr(&r.attributes, "service.instance.id"))
                .map(str::to_string);
            let single = MetricsRequest {
                resource_metrics: vec![rm.clone()],
            };
            let sum = calls_sum(&single);
            for p in &sum.data_points {
                if let Some(crate::model::otlp::metrics::number_data_point::Value::AsInt(n)) =
                    p.value
                {
                    out.push((instance.clone(), n));
                }
            }
        }
    }
    out
}

fn instances(n: usize) -> Vec<String> {
    (0..n).map(|i| format!("pod-{i}")).collect()
}

#[test]
fn the_limit_counts_every_shard_and_one_overflow_series_takes_the_rest() {
    let pods = instances(16);
    let shards: std::collections::HashSet<usize> = pods
        .iter()
        .map(|p| {
            let (_, hash) = super::super::table::canonical_resource(vec![
                kv("service.name", "shop"),
                kv("service.instance.id", p),
            ]);
            shard_of(hash)
        })
        .collect();
    assert!(shards.len() > 2, "the instances spread over shards");
    let (c, capture, _) = connector_flushing_every(
        SpanMetricsConfig {
            cardinality_limit: 3,
            ..Default::default()
        },
        HumanDuration::secs(60),
    );
    let spans = || vec![span("op", 2, 0, 5, 1), span("op", 2, 0, 7, 2)];
    c.consume_traces(&request_from(
        pods.iter().map(|p| (p.clone(), spans())).collect(),
    ))
    .unwrap();
    assert_eq!(c.series(), 3);
    c.flush();
    let calls = calls_by_instance(&capture);
    let (overflow, kept): (Vec<_>, Vec<_>) = calls.iter().partition(|(i, _)| i.is_none());
    assert_eq!(kept.len(), 3, "{calls:?}");
    assert!(kept.iter().all(|(_, n)| *n == 2), "{calls:?}");
    assert_eq!(overflow, vec![&(None, 13 * 2)], "one overflow series");
}

#[test]
fn two_writers_at_once_stop_at_the_limit() {
    let (c, capture, _) = connector_flushing_every(
        SpanMetricsConfig {
            cardinality_limit: 20,
            ..Default::default()
        },
        HumanDuration::secs(60),
    );
    let c = Arc::new(c);
    let writers: Vec<_> = (0..2)
        .map(|w| {
            let c = Arc::clone(&c);
            std::thread::spawn(move || {
                for round in 0..25 {
                    let resources = (0..4)
                        .map(|i| (format!("w{w}-{round}-{i}"), vec![span("op", 2, 0, 5, 1)]))
                        .collect();
                    c.consume_traces(&request_from(resources))
                        .expect("consumed");
                }
            })
        })
        .collect();
    for w in writers {
        w.join().expect("writer");
    }
    assert_eq!(c.series(), 20);
    c.flush();
    let calls = calls_by_instance(&capture);
    let (overflow, kept): (Vec<_>, Vec<_>) = calls.iter().partition(|(i, _)| i.is_none());
    assert_eq!(kept.len(), 20);
    assert_eq!(overflow, vec![&(None, 180)]);
}

#[test]
fn every_shard_is_saved_and_restored() {
    use crate::pipeline::durable::Durable;
    let pods = instances(16);
    let (c, _, _) = connector_flushing_every(SpanMetricsConfig::default(), HumanDuration::secs(60));
    c.consume_traces(&request_from(
        pods.iter()
            .enumerate()
            .map(|(n, p)| {
                (
                    p.clone(),
                    (0..=n).map(|i| span("op", 2, 0, 5, i as u8)).collect(),
                )
            })
            .collect(),
    ))
    .unwrap();
    let mut snapshot = Vec::new();
    c.snapshot(&mut snapshot).unwrap();
    let (restarted, capture, _) =
        connector_flushing_every(SpanMetricsConfig::default(), HumanDuration::secs(60));
    let restored = restarted.restore(&snapshot).unwrap();
    assert_eq!((restored.items, restored.discarded), (16, 0));
    assert_eq!(restarted.series(), 16);
    restarted.flush();
    let mut calls = calls_by_instance(&capture);
    calls.sort();
    let mut want: Vec<(Option<String>, i64)> = pods
        .iter()
        .enumerate()
        .map(|(n, p)| (Some(p.clone()), n as i64 + 1))
        .collect();
    want.sort();
    assert_eq!(calls, want);
    // A restored series is found again by its spans: one more call each.
    restarted
        .consume_traces(&request_from(
            pods.iter()
                .map(|p| (p.clone(), vec![span("op", 2, 0, 5, 1)]))
                .collect(),
        ))
        .unwrap();
    assert_eq!(restarted.series(), 16);
}

#[test]
fn samples_are_grouped_by_shard_in_arrival_order() {
    let sample = |shard: usize| SpanSample {
        key: [shard as u64, 0],
        shard,
        seconds: 0.0,
        bucket: 0,
        exemplar: None,
    };
    let shards = [3, 0, 3, 7, 0, 3];
    let samples: Vec<SpanSample> = shards.iter().map(|&s| sample(s)).collect();
    let mut order = vec![99; 2];
    let ends = group_by_shard(&samples, &mut order);
    assert_eq!(order, vec![1, 4, 0, 2, 5, 3]);
    assert_eq!(ends, [2, 2, 2, 5, 5, 5, 5, 6]);
    let none = group_by_shard(&[], &mut order);
    assert!(order.is_empty());
    assert_eq!(none, [0; SHARDS]);
    // One shard with them all: no order needed.
    let one: Vec<SpanSample> = [5, 5, 5].iter().map(|&s| sample(s)).collect();
    let ends = group_by_shard(&one, &mut order);
    assert!(order.is_empty());
    assert_eq!(ends, [0, 0, 0, 0, 0, 3, 3, 3]);
}
