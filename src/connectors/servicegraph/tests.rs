//! Tests of the service-graph connector: pairing in either order and
//! across requests, failed and messaging edges, database and virtual-node
//! edges, extra dimensions, expiry of halves (on requests and on the
//! periodic call), the store limit, the cardinality limit, series expiry.

use crate::model::MetricsBatch;
use std::collections::BTreeMap;
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::config::types::HumanDuration;
use crate::model::otlp::TracesRequest;
use crate::model::text::write_any_value;
use crate::model::{MetricsRequest, TracesBatch};

/// The tests build owned requests; the connector reads them as a batch.
trait ConsumeOwned {
    fn consume_traces_at(&self, request: &TracesRequest, now_ns: u64);
}

impl ConsumeOwned for ServiceGraph {
    fn consume_traces_at(&self, request: &TracesRequest, now_ns: u64) {
        self.consume_batch_at(&TracesBatch::from_request(request.clone()), now_ns);
    }
}
use crate::model::otlp::common::{AnyValue, KeyValue, any_value};
use crate::model::otlp::resource::Resource;
use crate::model::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status};
use crate::telemetry::{FamilySnapshot, names};

const SECOND: u64 = 1_000_000_000;
/// An arbitrary "now" for the tests: 2026-01-01.
const T0: u64 = 1_767_225_600 * SECOND;

const CLIENT: i32 = SpanKind::Client as i32;
const SERVER: i32 = SpanKind::Server as i32;
const PRODUCER: i32 = SpanKind::Producer as i32;
const CONSUMER: i32 = SpanKind::Consumer as i32;
const INTERNAL: i32 = SpanKind::Internal as i32;

#[derive(Default)]
struct Capture {
    requests: Mutex<Vec<MetricsRequest>>,
}

impl MetricsConsumer for Capture {
    fn consume_metrics(&self, request: &MetricsBatch) -> ConsumeResult {
        self.requests.lock().push(request.request().clone());
        Ok(Consumed::all())
    }
}

/// The latest emitted value of a series.
#[derive(Debug, Clone, PartialEq)]
enum Value {
    Count(i64),
    Histogram {
        count: u64,
        sum: f64,
        buckets: Vec<u64>,
    },
}

impl Capture {
    /// Every series' latest value, keyed `name{k=v,…}` (sorted), the way
    /// the exporter would hold them after applying every request in order.
    fn latest(&self) -> BTreeMap<String, Value> {
        let mut out = BTreeMap::new();
        for request in self.requests.lock().iter() {
            for rm in &request.resource_metrics {
                let resource = rm.resource.as_ref().map(|r| r.attributes.len());
                assert_eq!(resource, Some(0), "emitted without resource attributes");
                for sm in &rm.scope_metrics {
                    assert_eq!(
                        sm.scope.as_ref().map(|s| s.name.as_str()),
                        Some("streamgate.servicegraph")
                    );
                    for m in &sm.metrics {
                        match &m.data {
                            Some(Data::Sum(s)) => {
                                assert!(s.is_monotonic);
                                for p in &s.data_points {
                                    let Some(number_data_point::Value::AsInt(v)) = p.value else {
                                        panic!("integer counts")
                                    };
                                    out.insert(series(&m.name, &p.attributes), Value::Count(v));
                                }
                            }
                            Some(Data::Histogram(h)) => {
                                assert_eq!(m.unit, "s");
                                for p in &h.data_points {
                                    assert_eq!(p.bucket_counts.iter().sum::<u64>(), p.count);
                                    assert_eq!(p.bucket_counts.len(), p.explicit_bounds.len() + 1);
                                    out.insert(
                                        series(&m.name, &p.attributes),
                                        Value::Histogram {
                                            count: p.count,
                                            sum: p.sum.unwrap_or_default(),
                                            buckets: p.bucket_counts.clone(),
                                        },
                                    );
                                }
                            }
                            other => panic!("unexpected data {other:?}"),
                        }
                    }
                }
            }
        }
        out
    }

    fn count(&self, name: &str, labels: &[(&str, &str)]) -> Option<i64> {
        match self.latest().get(&key(name, labels)) {
            Some(Value::Count(v)) => Some(*v),
            Some(other) => panic!("{name} is {other:?}"),
            None => None,
        }
    }

    fn histogram(&self, name: &str, labels: &[(&str, &str)]) -> Option<(u64, f64, Vec<u64>)> {
        match self.latest().get(&key(name, labels)) {
            Some(Value::Histogram {
                count,
                sum,
                buckets,
            }) => Some((*count, *sum, buckets.clone())),
            Some(other) => panic!("{name} is {other:?}"),
            None => None,
        }
    }

    /// Emitted timestamps of every point, in emission order.
    fn times(&self) -> Vec<u64> {
        let mut out = Vec::new();
        for r in self.requests.lock().iter() {
            for m in r
                .resource_metrics
                .iter()
                .flat_map(|rm| &rm.scope_metrics)
                .flat_map(|sm| &sm.metrics)
            {
                match &m.data {
                    Some(Data::Sum(s)) => {
                        out.extend(s.data_points.iter().map(|p| p.time_unix_nano))
                    }
                    Some(Data::Histogram(h)) => {
                        out.extend(h.data_points.iter().map(|p| p.time_unix_nano))
                    }
                    _ => {}
                }
            }
        }
        out
    }
}

fn series(name: &str, attributes: &[KeyValue]) -> String {
    let mut pairs: Vec<String> = attributes
        .iter()
        .map(|kv| {
            let mut v = String::new();
            write_any_value(kv.value.as_ref(), &mut v);
            format!("{}={v}", kv.key)
        })
        .collect();
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
}

fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut pairs: Vec<String> = labels.iter().map(|(k, v)| format!("{k}={v}")).collect();
    pairs.sort();
    format!("{name}{{{}}}", pairs.join(","))
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

/// A span of trace `trace`, id `id`, parent `parent` (0 = root), lasting
/// `millis`.
fn span(kind: i32, trace: u8, id: u8, parent: u8, millis: u64) -> Span {
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: if parent == 0 {
            Vec::new()
        } else {
            vec![parent; 8]
        },
        name: "op".into(),
        kind,
        start_time_unix_nano: T0,
        end_time_unix_nano: T0 + millis * 1_000_000,
        ..Default::default()
    }
}

fn failed(mut s: Span) -> Span {
    s.status = Some(Status {
        code: StatusCode::Error as i32,
        ..Default::default()
    });
    s
}

fn with(mut s: Span, attributes: &[(&str, &str)]) -> Span {
    s.attributes = attributes.iter().map(|(k, v)| kv(k, v)).collect();
    s
}

fn resource_spans(service: &str, spans: Vec<Span>) -> ResourceSpans {
    ResourceSpans {
        resource: Some(Resource {
            attributes: vec![kv("service.name", service)],
            ..Default::default()
        }),
        scope_spans: vec![ScopeSpans {
            spans,
            ..Default::default()
        }],
        ..Default::default()
    }
}

fn request(service: &str, spans: Vec<Span>) -> TracesRequest {
    TracesRequest {
        resource_spans: vec![resource_spans(service, spans)],
    }
}

/// A connector that emits after every request and expiry round
/// (`flush_interval: 0s`).
fn connector(mut config: ServiceGraphConfig) -> (ServiceGraph, Arc<Capture>, Arc<Telemetry>) {
    config.flush_interval = HumanDuration::secs(0);
    let capture = Arc::new(Capture::default());
    let telemetry = Arc::new(Telemetry::new());
    let c = ServiceGraph::new(config, capture.clone(), telemetry.clone());
    (c, capture, telemetry)
}

fn self_metric(telemetry: &Telemetry, name: &str, labels: &[(&str, &str)]) -> f64 {
    let families: Vec<FamilySnapshot> = telemetry.snapshot();
    let family = families
        .iter()
        .find(|f| f.name == name)
        .unwrap_or_else(|| panic!("{name} in the snapshot"));
    family
        .samples
        .iter()
        .find(|s| {
            s.labels.len() == labels.len()
                && labels
                    .iter()
                    .all(|(k, v)| s.labels.iter().any(|(lk, lv)| lk == k && lv == v))
        })
        .map(|s| s.value)
        .unwrap_or_else(|| panic!("{name}{labels:?} sampled"))
}

const EDGE: [(&str, &str); 2] = [("client", "frontend"), ("server", "backend")];

/// The default buckets: index of the bucket a duration falls in.
fn bucket_of(seconds: f64) -> usize {
    ServiceGraphConfig::default()
        .bounds()
        .partition_point(|b| *b < seconds)
}

fn one_in(slot: usize) -> Vec<u64> {
    let mut v = vec![0; ServiceGraphConfig::default().bounds().len() + 1];
    v[slot] = 1;
    v
}

#[test]
fn client_then_server_across_requests_is_one_edge() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    c.consume_traces_at(&request("frontend", vec![span(CLIENT, 1, 7, 3, 30)]), T0);
    assert_eq!(c.pending(), 1);
    assert!(capture.latest().is_empty(), "nothing before the pair");
    c.consume_traces_at(
        &request("backend", vec![span(SERVER, 1, 8, 7, 20)]),
        T0 + SECOND,
    );
    assert_eq!(c.pending(), 0);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(1));
    assert_eq!(capture.count(REQUEST_FAILED_TOTAL, &EDGE), Some(0));
    let (count, sum, buckets) = capture.histogram(REQUEST_SERVER_SECONDS, &EDGE).unwrap();
    assert_eq!((count, buckets), (1, one_in(bucket_of(0.02))));
    assert!((sum - 0.02).abs() < 1e-12, "{sum}");
    let (count, sum, buckets) = capture.histogram(REQUEST_CLIENT_SECONDS, &EDGE).unwrap();
    assert_eq!((count, buckets), (1, one_in(bucket_of(0.03))));
    assert!((sum - 0.03).abs() < 1e-12, "{sum}");
    assert_eq!(capture.latest().len(), 4, "{:#?}", capture.latest());
}

#[test]
fn server_then_client_is_the_same_edge() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    c.consume_traces_at(&request("backend", vec![span(SERVER, 1, 8, 7, 20)]), T0);
    assert_eq!(c.pending(), 1);
    c.consume_traces_at(&request("frontend", vec![span(CLIENT, 1, 7, 3, 30)]), T0);
    assert_eq!(c.pending(), 0);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(1));
    let (_, sum, _) = capture.histogram(REQUEST_SERVER_SECONDS, &EDGE).unwrap();
    assert!((sum - 0.02).abs() < 1e-12, "server side is the server span");
    let (_, sum, _) = capture.histogram(REQUEST_CLIENT_SECONDS, &EDGE).unwrap();
    assert!((sum - 0.03).abs() < 1e-12, "client side is the client span");
}

#[test]
fn pairs_in_one_request_and_counts_accumulate() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    let both = TracesRequest {
        resource_spans: vec![
            resource_spans(
                "frontend",
                vec![span(CLIENT, 1, 7, 0, 30), span(CLIENT, 2, 7, 0, 30)],
            ),
            resource_spans(
                "backend",
                vec![span(SERVER, 1, 8, 7, 20), span(SERVER, 2, 8, 7, 2000)],
            ),
        ],
    };
    c.consume_traces_at(&both, T0);
    assert_eq!(c.pending(), 0);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(2));
    let (count, sum, _) = capture.histogram(REQUEST_SERVER_SECONDS, &EDGE).unwrap();
    assert_eq!(count, 2);
    assert!((sum - 2.02).abs() < 1e-9, "{sum}");
    // Same span ids in another trace are another request.
    c.consume_traces_at(
        &TracesRequest {
            resource_spans: vec![
                resource_spans("backend", vec![span(SERVER, 3, 8, 7, 1)]),
                resource_spans("frontend", vec![span(CLIENT, 3, 7, 0, 1)]),
            ],
        },
        T0 + SECOND,
    );
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(3));
}

#[test]
fn halves_of_one_request_pair_without_waiting_even_when_the_store_is_full() {
    let config = ServiceGraphConfig {
        max_items: 1,
        ..Default::default()
    };
    let (c, capture, telemetry) = connector(config);
    // The store's one place is taken.
    c.consume_traces_at(&request("frontend", vec![span(CLIENT, 9, 7, 0, 1)]), T0);
    assert_eq!(c.pending(), 1);
    // Both halves of two requests, in either order and across
    // resources; the second client is sent twice, the later one counts.
    let both = TracesRequest {
        resource_spans: vec![
            resource_spans("backend", vec![span(SERVER, 1, 8, 7, 20)]),
            resource_spans(
                "frontend",
                vec![
                    span(CLIENT, 1, 7, 0, 30),
                    span(CLIENT, 2, 7, 0, 1),
                    span(CLIENT, 2, 7, 0, 40),
                ],
            ),
            resource_spans("backend", vec![span(SERVER, 2, 8, 7, 5)]),
        ],
    };
    c.consume_traces_at(&both, T0);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(2));
    let (count, sum, _) = capture.histogram(REQUEST_CLIENT_SECONDS, &EDGE).unwrap();
    assert_eq!(count, 2);
    assert!((sum - 0.070).abs() < 1e-12, "{sum}");
    assert_eq!(
        self_metric(&telemetry, names::SERVICEGRAPH_DROPPED_SPANS, &[]),
        0.0
    );
    assert_eq!(c.pending(), 1, "the earlier half still waits");
    // A half whose other side is not in the request still waits for it
    // in the store (and, the store being full, is dropped).
    c.consume_traces_at(&request("backend", vec![span(SERVER, 3, 8, 7, 1)]), T0);
    assert_eq!(
        self_metric(&telemetry, names::SERVICEGRAPH_DROPPED_SPANS, &[]),
        1.0
    );
}

#[test]
fn an_error_on_either_side_fails_the_request() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    c.consume_traces_at(
        &TracesRequest {
            resource_spans: vec![
                resource_spans(
                    "frontend",
                    vec![
                        failed(span(CLIENT, 1, 7, 0, 1)),
                        span(CLIENT, 2, 7, 0, 1),
                        span(CLIENT, 3, 7, 0, 1),
                    ],
                ),
                resource_spans(
                    "backend",
                    vec![
                        span(SERVER, 1, 8, 7, 1),
                        failed(span(SERVER, 2, 8, 7, 1)),
                        span(SERVER, 3, 8, 7, 1),
                    ],
                ),
            ],
        },
        T0,
    );
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(3));
    assert_eq!(capture.count(REQUEST_FAILED_TOTAL, &EDGE), Some(2));
}

#[test]
fn producer_and_consumer_pair_as_messaging_system() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    c.consume_traces_at(&request("orders", vec![span(PRODUCER, 1, 7, 0, 1)]), T0);
    c.consume_traces_at(&request("billing", vec![span(CONSUMER, 1, 8, 7, 1)]), T0);
    let labels = [
        ("client", "orders"),
        ("server", "billing"),
        ("connection_type", MESSAGING_SYSTEM),
    ];
    assert_eq!(capture.count(REQUEST_TOTAL, &labels), Some(1));
}

#[test]
fn internal_spans_and_resources_without_service_name_are_ignored() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    c.consume_traces_at(&request("frontend", vec![span(INTERNAL, 1, 7, 0, 1)]), T0);
    let anonymous = TracesRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span(CLIENT, 1, 9, 0, 1)],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    c.consume_traces_at(&anonymous, T0);
    // Malformed ids cannot be paired.
    let mut bad = span(CLIENT, 1, 10, 0, 1);
    bad.span_id = vec![1, 2, 3];
    c.consume_traces_at(&request("frontend", vec![bad]), T0);
    assert_eq!(c.pending(), 0);
    assert!(capture.latest().is_empty());
}

#[test]
fn a_half_that_waits_too_long_is_counted_unpaired() {
    let config = ServiceGraphConfig {
        virtual_nodes: false,
        ..Default::default()
    };
    let (c, capture, telemetry) = connector(config);
    c.consume_traces_at(&request("frontend", vec![span(CLIENT, 1, 7, 3, 30)]), T0);
    assert_eq!(
        c.expire(T0 + 2 * SECOND - 1),
        Expired::default(),
        "still waiting"
    );
    assert_eq!(c.pending(), 1);
    assert_eq!(
        c.expire(T0 + 2 * SECOND),
        Expired {
            halves: 1,
            series: 0
        }
    );
    assert_eq!(c.pending(), 0);
    assert_eq!(
        capture.count(UNPAIRED_SPANS_TOTAL, &[("client", "frontend")]),
        Some(1)
    );
    assert_eq!(
        capture.count(DROPPED_SPANS_TOTAL, &[("client", "frontend")]),
        None,
        "no zero dropped series"
    );
    // The late server half waits in turn, and expires unpaired too.
    c.consume_traces_at(
        &request("backend", vec![span(SERVER, 1, 8, 7, 20)]),
        T0 + 3 * SECOND,
    );
    assert_eq!(c.pending(), 1);
    c.expire(T0 + 5 * SECOND);
    assert_eq!(
        capture.count(UNPAIRED_SPANS_TOTAL, &[("server", "backend")]),
        Some(1)
    );
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), None);
    let unpaired = names::SERVICEGRAPH_UNPAIRED_SPANS;
    assert_eq!(
        self_metric(&telemetry, unpaired, &[("side", "client")]),
        1.0
    );
    assert_eq!(
        self_metric(&telemetry, unpaired, &[("side", "server")]),
        1.0
    );
    assert_eq!(
        self_metric(&telemetry, names::SERVICEGRAPH_PENDING_SPANS, &[]),
        0.0
    );
}

#[test]
fn a_traces_request_expires_halves_too() {
    let config = ServiceGraphConfig {
        virtual_nodes: false,
        wait: HumanDuration(std::time::Duration::from_millis(500)),
        ..Default::default()
    };
    let (c, capture, telemetry) = connector(config);
    c.consume_traces_at(
        &request(
            "orders",
            vec![span(PRODUCER, 1, 7, 0, 1), span(CLIENT, 2, 7, 0, 1)],
        ),
        T0,
    );
    assert_eq!(
        self_metric(&telemetry, names::SERVICEGRAPH_PENDING_SPANS, &[]),
        2.0
    );
    // The server of trace 1 arrives too late: the producer half expires
    // first (unpaired), then the consumer waits on its own.
    c.consume_traces_at(
        &request("billing", vec![span(CONSUMER, 1, 8, 7, 1)]),
        T0 + SECOND,
    );
    assert_eq!(c.pending(), 1);
    assert_eq!(
        capture.count(
            UNPAIRED_SPANS_TOTAL,
            &[("client", "orders"), ("connection_type", MESSAGING_SYSTEM)]
        ),
        Some(1)
    );
    assert_eq!(
        capture.count(UNPAIRED_SPANS_TOTAL, &[("client", "orders")]),
        Some(1)
    );
    assert_eq!(
        self_metric(&telemetry, names::SERVICEGRAPH_PENDING_SPANS, &[]),
        1.0
    );
}

#[test]
fn a_full_store_drops_new_halves_and_counts_them() {
    let config = ServiceGraphConfig {
        max_items: 2,
        ..Default::default()
    };
    let (c, capture, telemetry) = connector(config);
    c.consume_traces_at(
        &request(
            "frontend",
            vec![
                span(CLIENT, 1, 7, 0, 1),
                span(CLIENT, 2, 7, 0, 1),
                span(CLIENT, 3, 7, 0, 1),
            ],
        ),
        T0,
    );
    assert_eq!(c.pending(), 2);
    c.consume_traces_at(&request("backend", vec![span(SERVER, 4, 8, 7, 1)]), T0);
    assert_eq!(
        capture.count(DROPPED_SPANS_TOTAL, &[("client", "frontend")]),
        Some(1)
    );
    assert_eq!(
        capture.count(DROPPED_SPANS_TOTAL, &[("server", "backend")]),
        Some(1)
    );
    // A half whose pair waits still pairs when the store is full.
    c.consume_traces_at(&request("backend", vec![span(SERVER, 1, 8, 7, 1)]), T0);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(1));
    assert_eq!(c.pending(), 1);
    // …and frees a place.
    c.consume_traces_at(&request("frontend", vec![span(CLIENT, 5, 7, 0, 1)]), T0);
    assert_eq!(c.pending(), 2);
    assert_eq!(
        self_metric(&telemetry, names::SERVICEGRAPH_DROPPED_SPANS, &[]),
        2.0
    );
}

#[test]
fn edges_beyond_the_cardinality_limit_go_to_the_overflow_series() {
    let config = ServiceGraphConfig {
        cardinality_limit: 1,
        ..Default::default()
    };
    let (c, capture, telemetry) = connector(config);
    for (trace, server) in [(1, "backend"), (2, "payments"), (3, "stock")] {
        c.consume_traces_at(
            &TracesRequest {
                resource_spans: vec![
                    resource_spans("frontend", vec![span(CLIENT, trace, 7, 0, 1)]),
                    resource_spans(server, vec![failed(span(SERVER, trace, 8, 7, 1))]),
                ],
            },
            T0,
        );
    }
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(1));
    let overflow = [("otel.metric.overflow", "true")];
    assert_eq!(capture.count(REQUEST_TOTAL, &overflow), Some(2));
    assert_eq!(capture.count(REQUEST_FAILED_TOTAL, &overflow), Some(2));
    assert_eq!(
        capture
            .histogram(REQUEST_SERVER_SECONDS, &overflow)
            .map(|h| h.0),
        Some(2)
    );
    assert_eq!(c.series(), 1);
    assert_eq!(
        self_metric(
            &telemetry,
            names::CONNECTOR_OVERFLOW_POINTS,
            &[("connector", "servicegraph")]
        ),
        2.0
    );
}

#[test]
fn root_server_spans_come_from_user_and_unpaired_clients_go_to_their_peer() {
    let (c, capture, telemetry) = connector(ServiceGraphConfig::default());
    c.consume_traces_at(
        &request(
            "frontend",
            vec![
                span(SERVER, 1, 3, 0, 50),
                with(span(CLIENT, 1, 7, 3, 40), &[("peer.service", "stripe")]),
                span(CLIENT, 1, 9, 3, 40),
            ],
        ),
        T0,
    );
    let user = [
        ("client", USER),
        ("server", "frontend"),
        ("connection_type", VIRTUAL_NODE),
    ];
    assert_eq!(capture.count(REQUEST_TOTAL, &user), Some(1), "at once");
    assert_eq!(c.pending(), 2);
    c.expire(T0 + 2 * SECOND);
    let stripe = [
        ("client", "frontend"),
        ("server", "stripe"),
        ("connection_type", VIRTUAL_NODE),
    ];
    assert_eq!(capture.count(REQUEST_TOTAL, &stripe), Some(1));
    let (count, sum, _) = capture.histogram(REQUEST_SERVER_SECONDS, &stripe).unwrap();
    assert_eq!(count, 1, "the client's duration stands in for the server");
    assert!((sum - 0.04).abs() < 1e-12);
    assert_eq!(
        capture.count(UNPAIRED_SPANS_TOTAL, &[("client", "frontend")]),
        Some(1),
        "the client span without a peer attribute"
    );
    let unpaired = names::SERVICEGRAPH_UNPAIRED_SPANS;
    assert_eq!(
        self_metric(&telemetry, unpaired, &[("side", "client")]),
        1.0
    );
}

/// Root spans of one request are summed per service and dimension
/// values: interleaved resources and values each keep their own edge,
/// with every span's duration on both sides and its failure counted.
#[test]
fn root_spans_of_one_request_sum_per_service_and_dimensions() {
    let config = ServiceGraphConfig {
        dimensions: vec![Dimension {
            name: "region".into(),
            default: None,
        }],
        ..Default::default()
    };
    let (c, capture, _) = connector(config);
    let eu = |s: Span| with(s, &[("region", "eu")]);
    c.consume_traces_at(
        &TracesRequest {
            resource_spans: vec![
                resource_spans(
                    "frontend",
                    vec![
                        eu(span(SERVER, 1, 1, 0, 1)),
                        span(SERVER, 2, 1, 0, 3),
                        failed(eu(span(SERVER, 3, 1, 0, 20))),
                    ],
                ),
                resource_spans("admin", vec![eu(span(SERVER, 4, 1, 0, 1))]),
                resource_spans("frontend", vec![eu(span(SERVER, 5, 1, 0, 1))]),
            ],
        },
        T0,
    );
    let edge = |server, region: Option<&'static str>| {
        let mut labels = vec![
            ("client", USER),
            ("server", server),
            ("connection_type", VIRTUAL_NODE),
        ];
        labels.extend(region.map(|r| ("server_region", r)));
        labels
    };
    let frontend_eu = edge("frontend", Some("eu"));
    assert_eq!(
        capture.count(REQUEST_TOTAL, &frontend_eu),
        Some(3),
        "{:#?}",
        capture.latest()
    );
    assert_eq!(capture.count(REQUEST_FAILED_TOTAL, &frontend_eu), Some(1));
    for side in [REQUEST_SERVER_SECONDS, REQUEST_CLIENT_SECONDS] {
        let (count, sum, _) = capture.histogram(side, &frontend_eu).unwrap();
        assert_eq!(count, 3, "{side}");
        assert!((sum - 0.022).abs() < 1e-12, "{side}: {sum}");
    }
    assert_eq!(
        capture.count(REQUEST_TOTAL, &edge("frontend", None)),
        Some(1)
    );
    assert_eq!(
        capture.count(REQUEST_TOTAL, &edge("admin", Some("eu"))),
        Some(1)
    );
    assert_eq!(c.pending(), 0, "no root span waits");
}

#[test]
fn without_virtual_nodes_root_spans_are_skipped_and_peers_unpaired() {
    let config = ServiceGraphConfig {
        virtual_nodes: false,
        ..Default::default()
    };
    let (c, capture, _) = connector(config);
    c.consume_traces_at(
        &request(
            "frontend",
            vec![
                span(SERVER, 1, 3, 0, 50),
                with(span(CLIENT, 1, 7, 3, 40), &[("peer.service", "stripe")]),
            ],
        ),
        T0,
    );
    assert_eq!(c.pending(), 1, "the root span does not wait");
    c.expire(T0 + 2 * SECOND);
    assert_eq!(
        capture.count(UNPAIRED_SPANS_TOTAL, &[("client", "frontend")]),
        Some(1)
    );
    assert_eq!(capture.latest().len(), 1, "{:#?}", capture.latest());
}

#[test]
fn database_clients_are_whole_requests_to_the_database_node() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    let mut port = with(
        span(CLIENT, 1, 8, 0, 5),
        &[
            ("db.system.name", "redis"),
            ("network.peer.address", "10.0.0.9"),
        ],
    );
    port.attributes.push(KeyValue {
        key: "network.peer.port".into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::IntValue(6379)),
        }),
        ..Default::default()
    });
    c.consume_traces_at(
        &request(
            "frontend",
            vec![
                with(
                    span(CLIENT, 1, 7, 0, 12),
                    &[("db.system", "postgresql"), ("server.address", "pg.local")],
                ),
                port,
                with(span(CLIENT, 1, 9, 0, 1), &[("db.name", "carts")]),
            ],
        ),
        T0,
    );
    assert_eq!(c.pending(), 0, "nothing waits for a database");
    for server in ["pg.local", "10.0.0.9:6379", "carts"] {
        let labels = [
            ("client", "frontend"),
            ("server", server),
            ("connection_type", DATABASE),
        ];
        assert_eq!(capture.count(REQUEST_TOTAL, &labels), Some(1), "{server}");
    }
    let pg = [
        ("client", "frontend"),
        ("server", "pg.local"),
        ("connection_type", DATABASE),
    ];
    let (count, sum, _) = capture.histogram(REQUEST_SERVER_SECONDS, &pg).unwrap();
    assert_eq!(count, 1);
    assert!((sum - 0.012).abs() < 1e-12);
}

#[test]
fn extra_dimensions_label_each_side() {
    let config = ServiceGraphConfig {
        dimensions: vec![
            Dimension {
                name: "deployment.environment.name".into(),
                default: None,
            },
            Dimension {
                name: "region".into(),
                default: Some("none".into()),
            },
        ],
        ..Default::default()
    };
    let (c, capture, _) = connector(config);
    let mut backend = request("backend", vec![span(SERVER, 1, 8, 7, 1)]);
    backend.resource_spans[0]
        .resource
        .as_mut()
        .unwrap()
        .attributes
        .push(kv("deployment.environment.name", "prod"));
    c.consume_traces_at(
        &request(
            "frontend",
            vec![with(span(CLIENT, 1, 7, 0, 1), &[("region", "eu")])],
        ),
        T0,
    );
    c.consume_traces_at(&backend, T0);
    let labels = [
        ("client", "frontend"),
        ("server", "backend"),
        ("server_deployment.environment.name", "prod"),
        ("client_region", "eu"),
        ("server_region", "none"),
    ];
    assert_eq!(
        capture.count(REQUEST_TOTAL, &labels),
        Some(1),
        "{:#?}",
        capture.latest()
    );
}

/// A side no span was seen for (a database, the `user` of a root span)
/// takes the dimension's default, as an instrumented side without the
/// attribute does: every series of the metric has the same labels.
#[test]
fn a_side_without_a_span_takes_the_dimensions_default() {
    let config = ServiceGraphConfig {
        dimensions: vec![Dimension {
            name: "region".into(),
            default: Some("none".into()),
        }],
        virtual_nodes: true,
        ..Default::default()
    };
    let (c, capture, _) = connector(config);
    c.consume_traces_at(
        &request(
            "frontend",
            vec![
                with(span(SERVER, 1, 7, 0, 3), &[("region", "eu")]),
                with(
                    span(CLIENT, 1, 8, 7, 1),
                    &[("db.system", "postgresql"), ("server.address", "pg.local")],
                ),
            ],
        ),
        T0,
    );
    let db = [
        ("client", "frontend"),
        ("server", "pg.local"),
        ("connection_type", DATABASE),
        ("client_region", "none"),
        ("server_region", "none"),
    ];
    assert_eq!(
        capture.count(REQUEST_TOTAL, &db),
        Some(1),
        "{:#?}",
        capture.latest()
    );
    let user = [
        ("client", "user"),
        ("server", "frontend"),
        ("connection_type", "virtual_node"),
        ("client_region", "none"),
        ("server_region", "eu"),
    ];
    assert_eq!(
        capture.count(REQUEST_TOTAL, &user),
        Some(1),
        "{:#?}",
        capture.latest()
    );
}

#[test]
fn a_resent_half_replaces_the_waiting_one() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    c.consume_traces_at(&request("frontend", vec![span(CLIENT, 1, 7, 0, 1)]), T0);
    c.consume_traces_at(&request("frontend", vec![span(CLIENT, 1, 7, 0, 9)]), T0);
    assert_eq!(c.pending(), 1);
    c.consume_traces_at(&request("backend", vec![span(SERVER, 1, 8, 7, 1)]), T0);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(1));
    let (_, sum, _) = capture.histogram(REQUEST_CLIENT_SECONDS, &EDGE).unwrap();
    assert!((sum - 0.009).abs() < 1e-12, "the latest client span counts");
}

#[test]
fn a_half_resent_within_its_request_replaces_the_one_before_it() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    c.consume_traces_at(
        &TracesRequest {
            resource_spans: vec![
                resource_spans(
                    "frontend",
                    vec![span(CLIENT, 1, 7, 0, 1), span(CLIENT, 1, 7, 0, 9)],
                ),
                resource_spans("backend", vec![span(SERVER, 1, 8, 7, 1)]),
            ],
        },
        T0,
    );
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(1));
    assert_eq!(c.pending(), 0, "the pair completed within the request");
    let (_, sum, _) = capture.histogram(REQUEST_CLIENT_SECONDS, &EDGE).unwrap();
    assert!((sum - 0.009).abs() < 1e-12, "the latest client span counts");
}

#[test]
fn only_changed_series_are_emitted_and_time_never_goes_back() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    c.consume_traces_at(
        &TracesRequest {
            resource_spans: vec![
                resource_spans("frontend", vec![span(CLIENT, 1, 7, 0, 1)]),
                resource_spans("backend", vec![span(SERVER, 1, 8, 7, 1)]),
            ],
        },
        T0 + 10 * SECOND,
    );
    let before = capture.requests.lock().len();
    c.consume_traces_at(&request("frontend", vec![span(INTERNAL, 1, 9, 0, 1)]), T0);
    c.expire(T0);
    assert_eq!(
        capture.requests.lock().len(),
        before,
        "nothing changed, nothing sent"
    );
    // A request stamped earlier than the last emission is emitted at the
    // later time, so the exporter never sees a cumulative point go back.
    c.consume_traces_at(
        &TracesRequest {
            resource_spans: vec![
                resource_spans("frontend", vec![span(CLIENT, 2, 7, 0, 1)]),
                resource_spans("backend", vec![span(SERVER, 2, 8, 7, 1)]),
            ],
        },
        T0 + 5 * SECOND,
    );
    let times = capture.times();
    assert!(times.iter().all(|t| *t == T0 + 10 * SECOND), "{times:?}");
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(2));
}

#[test]
fn idle_series_expire_after_the_ttl() {
    let config = ServiceGraphConfig {
        series_ttl: HumanDuration::secs(60),
        ..Default::default()
    };
    let (c, _, _) = connector(config);
    c.consume_traces_at(
        &TracesRequest {
            resource_spans: vec![
                resource_spans("frontend", vec![span(CLIENT, 1, 7, 0, 1)]),
                resource_spans("backend", vec![span(SERVER, 1, 8, 7, 1)]),
            ],
        },
        T0,
    );
    assert_eq!(c.series(), 1);
    assert_eq!(c.expire(T0 + 59 * SECOND).series, 0);
    assert_eq!(c.expire(T0 + 61 * SECOND).series, 1);
    assert_eq!(c.series(), 0);
}

#[test]
fn the_expiry_queue_stays_bounded_when_halves_pair() {
    let mut store = PendingStore::new(10_000, 2 * SECOND);
    let half = |side| Half::new(side, "s".into(), 0.0, false, false, Vec::new());
    for i in 0..100_000u32 {
        let mut trace = [0u8; 16];
        trace[..4].copy_from_slice(&i.to_le_bytes());
        let k = store::key(&trace, &[1; 8]).unwrap();
        assert_eq!(store.offer(k, half(Side::Client), T0), Offer::Stored);
        assert!(matches!(
            store.offer(k, half(Side::Server), T0),
            Offer::Paired { .. }
        ));
    }
    assert_eq!(store.len(), 0);
    assert!(store.queued() <= 1025, "{}", store.queued());
    let mut expired = 0;
    store.expire(T0 + 3 * SECOND, |_| expired += 1);
    assert_eq!(expired, 0, "paired halves never expire");
    assert_eq!(store.queued(), 0);
}

#[test]
fn a_reused_slot_keeps_its_new_half_waiting_its_own_wait() {
    let mut store = PendingStore::new(10, 2 * SECOND);
    let half = |side, service: &str, seconds| {
        Half::new(side, service.into(), seconds, false, false, Vec::new())
    };
    let key = |t: u8| store::key(&[t; 16], &[1; 8]).unwrap();
    // The first half pairs at once; its slot takes the second half, whose
    // wait starts a second later.
    assert_eq!(
        store.offer(key(1), half(Side::Client, "a", 1.0), T0),
        Offer::Stored
    );
    assert!(matches!(
        store.offer(key(1), half(Side::Server, "b", 2.0), T0),
        Offer::Paired { .. }
    ));
    assert_eq!(
        store.offer(key(2), half(Side::Client, "c", 3.0), T0 + SECOND),
        Offer::Stored
    );
    let mut expired = Vec::new();
    store.expire(T0 + 2 * SECOND, |h| expired.push(h));
    assert!(expired.is_empty(), "the first half's entry is stale");
    assert_eq!(store.len(), 1);
    // A resent half replaces the waiting one and keeps its wait.
    assert_eq!(
        store.offer(key(2), half(Side::Client, "c", 4.0), T0 + 2 * SECOND),
        Offer::Replaced
    );
    store.expire(T0 + 3 * SECOND, |h| expired.push(h));
    assert_eq!(expired.len(), 1);
    assert_eq!((&*expired[0].service, expired[0].seconds), ("c", 4.0));
    assert!(store.is_empty());
    // A late other side finds nothing: it waits in turn.
    assert_eq!(
        store.offer(key(2), half(Side::Server, "d", 5.0), T0 + 3 * SECOND),
        Offer::Stored
    );
}

#[test]
fn the_store_lets_a_bursts_slots_go_once_it_is_empty() {
    let mut store = PendingStore::new(100_000, 2 * SECOND);
    for i in 0..20_000u32 {
        let mut trace = [0u8; 16];
        trace[..4].copy_from_slice(&i.to_le_bytes());
        let k = store::key(&trace, &[1; 8]).unwrap();
        let half = Half::new(Side::Client, "s".into(), 0.0, false, false, Vec::new());
        assert_eq!(store.offer(k, half, T0), Offer::Stored);
    }
    let mut expired = 0;
    store.expire(T0 + 2 * SECOND, |_| expired += 1);
    assert_eq!(expired, 20_000);
    assert_eq!((store.len(), store.queued(), store.slots()), (0, 0, 0));
}
#[test]
fn config_defaults_are_the_collectors_and_bad_values_are_explained() {
    let config = ServiceGraphConfig::default();
    assert!(config.validate().is_ok());
    assert_eq!(config.max_items, 10_000);
    assert_eq!(config.wait, HumanDuration::secs(2));
    assert_eq!(config.cardinality_limit, 10_000);
    assert_eq!(
        config.bounds(),
        vec![
            0.002, 0.004, 0.006, 0.008, 0.01, 0.05, 0.1, 0.2, 0.4, 0.8, 1.0, 1.4, 2.0, 5.0, 10.0,
            15.0
        ]
    );
    let bad = |f: fn(&mut ServiceGraphConfig)| {
        let mut c = ServiceGraphConfig::default();
        f(&mut c);
        c.validate().unwrap_err()
    };
    assert!(bad(|c| c.max_items = 0).contains("max_items"));
    assert!(bad(|c| c.wait = HumanDuration::secs(0)).contains("wait"));
    assert!(bad(|c| c.latency_histogram_buckets.reverse()).contains("strictly increasing"));
    assert!(bad(|c| c.latency_histogram_buckets.clear()).contains("empty"));
    assert!(bad(|c| c.cardinality_limit = 0).contains("cardinality_limit"));
    assert!(
        bad(|c| c.dimensions = vec![
            Dimension {
                name: "a".into(),
                default: None
            };
            2
        ])
        .contains("twice")
    );
}

/// The client halves of `traces`, one span each, from `frontend`.
fn clients_of(traces: std::ops::RangeInclusive<u8>) -> TracesRequest {
    request(
        "frontend",
        traces.map(|t| span(CLIENT, t, 7, 0, 1)).collect(),
    )
}

#[test]
fn the_store_limit_counts_the_halves_of_every_shard() {
    let spread: std::collections::HashSet<usize> = (1..=64u8)
        .filter_map(|t| store::key(&[t; 16], &[7; 8]))
        .map(|k| store::shard_of(&k, PENDING_SHARDS))
        .collect();
    assert!(spread.len() > 4, "the test traces fall in several shards");
    let config = ServiceGraphConfig {
        max_items: 10,
        ..Default::default()
    };
    let (c, capture, telemetry) = connector(config);
    c.consume_traces_at(&clients_of(1..=64), T0);
    assert_eq!(c.pending(), 10);
    assert_eq!(
        capture.count(DROPPED_SPANS_TOTAL, &[("client", "frontend")]),
        Some(54)
    );
    assert_eq!(
        self_metric(&telemetry, names::SERVICEGRAPH_PENDING_SPANS, &[]),
        10.0
    );
    // Pairing and expiry give the places back, in any shard.
    c.consume_traces_at(
        &request(
            "backend",
            (1..=64).map(|t| span(SERVER, t, 8, 7, 1)).collect(),
        ),
        T0,
    );
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(10));
    assert_eq!(
        c.pending(),
        10,
        "the 54 unmatched servers fill the store again"
    );
    c.expire(T0 + 3 * SECOND);
    assert_eq!(c.pending(), 0);
    c.consume_traces_at(&clients_of(101..=110), T0 + 3 * SECOND);
    assert_eq!(c.pending(), 10);
}

#[test]
fn a_flush_interval_emits_each_changed_series_once() {
    let capture = Arc::new(Capture::default());
    let c = ServiceGraph::new(
        ServiceGraphConfig::default(),
        capture.clone(),
        Arc::new(Telemetry::new()),
    );
    assert_eq!(c.flush_interval(), std::time::Duration::from_secs(1));
    c.consume_traces_at(&clients_of(1..=3), T0);
    c.consume_traces_at(
        &request(
            "backend",
            (1..=3).map(|t| span(SERVER, t, 8, 7, 1)).collect(),
        ),
        T0,
    );
    assert!(
        capture.requests.lock().is_empty(),
        "nothing before the flush"
    );
    c.flush_at(T0 + SECOND);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(3));
    assert_eq!(
        capture.times(),
        vec![T0 + SECOND; 4],
        "one point per metric"
    );
    c.flush_at(T0 + 2 * SECOND);
    assert_eq!(capture.requests.lock().len(), 1, "nothing changed since");
    c.consume_traces_at(&clients_of(4..=4), T0 + 2 * SECOND);
    c.consume_traces_at(&request("backend", vec![span(SERVER, 4, 8, 7, 1)]), T0);
    c.flush_at(T0 + 2 * SECOND);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(4));
    let times = capture.times();
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "{times:?}");
}

/// Two threads at once, one sending the client halves of 250 traces and
/// the other their server halves: every request is counted once, however
/// the halves meet.
#[test]
fn two_threads_pair_the_halves_of_the_same_traces() {
    let (c, capture, _) = connector(ServiceGraphConfig::default());
    std::thread::scope(|s| {
        s.spawn(|| {
            for first in (1..=250u8).step_by(10) {
                c.consume_traces_at(&clients_of(first..=first + 9), T0);
            }
        });
        s.spawn(|| {
            for first in (1..=250u8).step_by(10) {
                let servers = (first..=first + 9)
                    .map(|t| span(SERVER, t, 8, 7, 1))
                    .collect();
                c.consume_traces_at(&request("backend", servers), T0);
            }
        });
    });
    assert_eq!(c.pending(), 0);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(250));
    let (count, _, _) = capture.histogram(REQUEST_SERVER_SECONDS, &EDGE).unwrap();
    assert_eq!(count, 250);
}

/// Within one request, the edges take the series left under the
/// cardinality limit in the order their spans came, as across requests.
#[test]
fn the_first_edges_of_a_request_take_the_series_left() {
    let config = ServiceGraphConfig {
        cardinality_limit: 1,
        ..Default::default()
    };
    let (c, capture, _) = connector(config);
    let services = ["web", "api", "jobs", "admin", "search"];
    let request = TracesRequest {
        resource_spans: services
            .iter()
            .enumerate()
            .map(|(i, service)| resource_spans(service, vec![span(SERVER, i as u8 + 1, 9, 0, 1)]))
            .collect(),
    };
    c.consume_traces_at(&request, T0);
    let latest = capture.latest();
    let edges: Vec<&String> = latest
        .keys()
        .filter(|k| k.starts_with(REQUEST_TOTAL) && k.contains("server="))
        .collect();
    assert_eq!(edges.len(), 1, "{latest:?}");
    assert!(edges[0].contains("server=web"), "{edges:?}");
    assert_eq!(
        capture.count(REQUEST_TOTAL, &[("otel.metric.overflow", "true")]),
        Some(4)
    );
}

/// Pairs completed in one request count in the order of the spans that
/// completed them, whichever stores their traces fall in.
#[test]
fn pairs_of_one_request_take_the_series_left_in_span_order() {
    let shard = |t: u8| store::key(&[t; 16], &[7; 8]).map(|k| store::shard_of(&k, PENDING_SHARDS));
    let (early, late) = (1..=60u8)
        .flat_map(|a| (1..=60u8).map(move |b| (a, b)))
        .find(|&(a, b)| shard(a) > shard(b))
        .expect("two traces in different stores");
    let config = ServiceGraphConfig {
        cardinality_limit: 1,
        ..Default::default()
    };
    let (c, capture, _) = connector(config);
    let request = TracesRequest {
        resource_spans: vec![
            resource_spans(
                "frontend",
                vec![span(CLIENT, early, 7, 0, 1), span(CLIENT, late, 7, 0, 1)],
            ),
            resource_spans("backend", vec![span(SERVER, early, 8, 7, 1)]),
            resource_spans("payments", vec![span(SERVER, late, 8, 7, 1)]),
        ],
    };
    c.consume_traces_at(&request, T0);
    assert_eq!(capture.count(REQUEST_TOTAL, &EDGE), Some(1));
    assert_eq!(
        capture.count(REQUEST_TOTAL, &[("otel.metric.overflow", "true")]),
        Some(1)
    );
}
