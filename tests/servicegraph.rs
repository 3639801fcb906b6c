//! Black-box tests of the service-graph connector: client and server spans
//! of two services, sent over OTLP/HTTP protobuf in separate requests, come
//! out of `/metrics` as the series Grafana's service graph queries
//! (`traces_service_graph_request_total`, `…_failed_total`,
//! `…_server_seconds`, `…_client_seconds` by `client`, `server`,
//! `connection_type`), and halves that never pair are counted as unpaired
//! or dropped.

mod common;

use std::time::{SystemTime, UNIX_EPOCH};

use common::{Collector, Options, Samples, find_peer, http_client};
use prost::Message;
use streamgate::model::otlp::TracesRequest;
use streamgate::model::otlp::common::{AnyValue, KeyValue, any_value};
use streamgate::model::otlp::resource::Resource;
use streamgate::model::otlp::trace::span::SpanKind;
use streamgate::model::otlp::trace::status::StatusCode;
use streamgate::model::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status};

const VERSION: &str = env!("CARGO_PKG_VERSION");

fn kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

/// A span of trace `trace` with id `id` and parent `parent` (0: root),
/// lasting `millis`, ended a minute ago.
fn span(kind: SpanKind, trace: u8, id: u8, parent: u8, millis: u64, error: bool) -> Span {
    let end = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap()
        .as_nanos() as u64
        - 60_000_000_000;
    Span {
        trace_id: vec![trace; 16],
        span_id: vec![id; 8],
        parent_span_id: if parent == 0 {
            Vec::new()
        } else {
            vec![parent; 8]
        },
        name: "call".into(),
        kind: kind as i32,
        start_time_unix_nano: end - millis * 1_000_000,
        end_time_unix_nano: end,
        status: error.then(|| Status {
            code: StatusCode::Error as i32,
            ..Default::default()
        }),
        ..Default::default()
    }
}

/// Sends the spans of one service over OTLP/HTTP protobuf.
fn send(collector: &Collector, service: &str, spans: Vec<Span>) {
    let request = TracesRequest {
        resource_spans: vec![ResourceSpans {
            resource: Some(Resource {
                attributes: vec![kv("service.name", service)],
                ..Default::default()
            }),
            scope_spans: vec![ScopeSpans {
                spans,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let response = http_client()
        .post(collector.otlp_http_url("/v1/traces"))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .expect("POST /v1/traces");
    assert_eq!(response.status(), 200);
}

/// The labels of an edge series, with the connector's scope labels.
fn edge<'a>(
    client: &'a str,
    server: &'a str,
    extra: &[(&'a str, &'a str)],
) -> Vec<(&'a str, &'a str)> {
    let mut labels = vec![
        ("client", client),
        ("server", server),
        ("otel_scope_name", "streamgate.servicegraph"),
        ("otel_scope_version", VERSION),
    ];
    labels.extend_from_slice(extra);
    labels
}

fn with<'a>(base: &[(&'a str, &'a str)], extra: (&'a str, &'a str)) -> Vec<(&'a str, &'a str)> {
    let mut l = base.to_vec();
    l.push(extra);
    l
}

fn bucket(s: &Samples, name: &str, labels: &[(&str, &str)], le: &str) -> Option<f64> {
    s.get(&format!("{name}_bucket"), &with(labels, ("le", le)))
}

/// Client and server halves sent in separate requests, in both orders,
/// pair into one edge with exact request, failure and latency series; a
/// producer/consumer pair is a `messaging_system` edge, and a root server
/// span an edge from `user`.
#[test]
fn paired_spans_become_service_graph_edges() {
    let collector = Collector::start();
    // Trace 1: client first. Trace 2: server first, and failed.
    send(
        &collector,
        "frontend",
        vec![span(SpanKind::Client, 1, 11, 10, 30, false)],
    );
    let s = collector.scrape();
    assert!(
        !s.has_family("traces_service_graph_request_total"),
        "{}",
        s.text
    );
    assert_eq!(
        s.get("streamgate_connector_servicegraph_pending_spans", &[]),
        Some(1.0)
    );
    send(
        &collector,
        "backend",
        vec![span(SpanKind::Server, 1, 12, 11, 20, false)],
    );
    send(
        &collector,
        "backend",
        vec![span(SpanKind::Server, 2, 22, 21, 1200, true)],
    );
    send(
        &collector,
        "frontend",
        vec![span(SpanKind::Client, 2, 21, 20, 1300, false)],
    );
    // Messaging, and a root span of the frontend.
    send(
        &collector,
        "orders",
        vec![span(SpanKind::Producer, 3, 31, 0, 2, false)],
    );
    send(
        &collector,
        "billing",
        vec![span(SpanKind::Consumer, 3, 32, 31, 7, false)],
    );
    send(
        &collector,
        "frontend",
        vec![span(SpanKind::Server, 4, 41, 0, 50, false)],
    );

    // frontend → backend twice, orders → billing, user → frontend.
    let s = collector.scrape_after_edge_requests(4.0);
    let fb = edge("frontend", "backend", &[]);
    assert_eq!(
        s.get("traces_service_graph_request_total", &fb),
        Some(2.0),
        "{}",
        s.text
    );
    assert_eq!(
        s.get("traces_service_graph_request_failed_total", &fb),
        Some(1.0)
    );
    assert_eq!(s.types["traces_service_graph_request_total"], "counter");
    assert_eq!(
        s.types["traces_service_graph_request_server_seconds"],
        "histogram"
    );
    assert_eq!(
        s.types["traces_service_graph_request_client_seconds"],
        "histogram"
    );
    let server = "traces_service_graph_request_server_seconds";
    for (le, want) in [
        ("0.01", 0.0),
        ("0.05", 1.0),
        ("1", 1.0),
        ("1.4", 2.0),
        ("+Inf", 2.0),
    ] {
        assert_eq!(bucket(&s, server, &fb, le), Some(want), "server le={le}");
    }
    assert_eq!(s.get(&format!("{server}_count"), &fb), Some(2.0));
    let sum = s.get(&format!("{server}_sum"), &fb).unwrap();
    assert!((sum - 1.22).abs() < 1e-9, "{sum}");
    let client = "traces_service_graph_request_client_seconds";
    for (le, want) in [("0.006", 0.0), ("0.05", 1.0), ("1.4", 2.0), ("15", 2.0)] {
        assert_eq!(bucket(&s, client, &fb, le), Some(want), "client le={le}");
    }
    let sum = s.get(&format!("{client}_sum"), &fb).unwrap();
    assert!((sum - 1.33).abs() < 1e-9, "{sum}");

    let messaging = edge(
        "orders",
        "billing",
        &[("connection_type", "messaging_system")],
    );
    assert_eq!(
        s.get("traces_service_graph_request_total", &messaging),
        Some(1.0)
    );
    assert_eq!(
        s.get("traces_service_graph_request_failed_total", &messaging),
        Some(0.0)
    );
    assert_eq!(bucket(&s, server, &messaging, "0.008"), Some(1.0));
    assert_eq!(bucket(&s, client, &messaging, "0.002"), Some(1.0));

    let user = edge("user", "frontend", &[("connection_type", "virtual_node")]);
    assert_eq!(
        s.get("traces_service_graph_request_total", &user),
        Some(1.0)
    );
    assert_eq!(
        s.get("streamgate_connector_servicegraph_pending_spans", &[]),
        Some(0.0)
    );
    assert!(!s.has_family("traces_service_graph_unpaired_spans_total"));
}

/// A half whose pair never arrives is counted unpaired after `wait`, on
/// the periodic expiry without further traffic; a half that finds the
/// store full is dropped and counted at once.
#[test]
fn unpaired_and_dropped_halves_are_counted() {
    let collector = Collector::start_with(Options {
        connectors_extra: "servicegraph:\n  wait: 1s\n  max_items: 1\n  virtual_nodes: false"
            .into(),
        ..Default::default()
    });
    send(
        &collector,
        "frontend",
        vec![
            span(SpanKind::Client, 1, 11, 0, 5, false),
            span(SpanKind::Client, 2, 21, 0, 5, false),
        ],
    );
    // Set during the request: one half waits, the other found the store
    // full. Read at once, before the waiting half's `wait` (1 s) is up.
    let s = collector.scrape();
    assert_eq!(
        s.get("streamgate_connector_servicegraph_pending_spans", &[]),
        Some(1.0),
        "{}",
        s.text
    );
    assert_eq!(
        s.get("streamgate_connector_servicegraph_dropped_spans_total", &[]),
        Some(1.0)
    );
    let frontend = [
        ("client", "frontend"),
        ("otel_scope_name", "streamgate.servicegraph"),
        ("otel_scope_version", VERSION),
    ];
    let s = collector.scrape_until("the dropped client half", |s| {
        s.get("traces_service_graph_dropped_spans_total", &frontend)
            .is_some()
    });
    assert_eq!(
        s.get("traces_service_graph_dropped_spans_total", &frontend),
        Some(1.0),
        "{}",
        s.text
    );
    let s = collector.scrape_until("the unpaired client half", |s| {
        s.get("traces_service_graph_unpaired_spans_total", &frontend)
            .is_some()
    });
    assert_eq!(
        s.get("traces_service_graph_unpaired_spans_total", &frontend),
        Some(1.0)
    );
    let side = |v| [("side", v)];
    assert_eq!(
        s.get(
            "streamgate_connector_servicegraph_unpaired_spans_total",
            &side("client")
        ),
        Some(1.0)
    );
    assert_eq!(
        s.get(
            "streamgate_connector_servicegraph_unpaired_spans_total",
            &side("server")
        ),
        Some(0.0)
    );
    assert_eq!(
        s.get("streamgate_connector_servicegraph_pending_spans", &[]),
        Some(0.0)
    );
    // The server half arriving late waits alone and is unpaired in turn.
    send(
        &collector,
        "backend",
        vec![span(SpanKind::Server, 1, 12, 11, 5, false)],
    );
    let backend = [
        ("server", "backend"),
        ("otel_scope_name", "streamgate.servicegraph"),
        ("otel_scope_version", VERSION),
    ];
    collector.scrape_until("the unpaired server half", |s| {
        s.get("traces_service_graph_unpaired_spans_total", &backend) == Some(1.0)
    });
    let s = collector.scrape();
    assert!(
        !s.has_family("traces_service_graph_request_total"),
        "{}",
        s.text
    );
}

/// Edges beyond `cardinality_limit` are counted in one overflow series;
/// extra dimensions label each side as `client_<name>`/`server_<name>`.
#[test]
fn overflow_series_and_extra_dimensions() {
    let collector = Collector::start_with(Options {
        connectors_extra:
            "servicegraph:\n  cardinality_limit: 1\n  dimensions: [{name: tier, default: web}]"
                .into(),
        ..Default::default()
    });
    for (trace, server) in [(1u8, "backend"), (2, "payments"), (3, "stock")] {
        send(
            &collector,
            "frontend",
            vec![span(SpanKind::Client, trace, 11, 0, 5, false)],
        );
        let mut s = span(SpanKind::Server, trace, 12, 11, 5, false);
        s.attributes.push(kv("tier", "api"));
        send(&collector, server, vec![s]);
    }
    let s = collector.scrape_after_edge_requests(3.0);
    let first = edge(
        "frontend",
        "backend",
        &[("client_tier", "web"), ("server_tier", "api")],
    );
    assert_eq!(
        s.get("traces_service_graph_request_total", &first),
        Some(1.0),
        "{}",
        s.text
    );
    let overflow = [
        ("otel_metric_overflow", "true"),
        ("otel_scope_name", "streamgate.servicegraph"),
        ("otel_scope_version", VERSION),
    ];
    assert_eq!(
        s.get("traces_service_graph_request_total", &overflow),
        Some(2.0)
    );
    assert_eq!(
        s.get(
            "traces_service_graph_request_server_seconds_count",
            &overflow
        ),
        Some(2.0)
    );
    assert_eq!(
        s.get(
            "streamgate_connector_overflow_points_total",
            &[("connector", "servicegraph")]
        ),
        Some(2.0)
    );
}

/// `promtool check metrics` finds no problem with the service-graph series
/// (edges, failures, both histograms, unpaired and dropped counters).
#[test]
fn promtool_accepts_the_service_graph_series() {
    let Some(promtool) = find_peer("promtool") else {
        return;
    };
    let collector = Collector::start_with(Options {
        connectors_extra: "servicegraph:\n  max_items: 1".into(),
        ..Default::default()
    });
    send(
        &collector,
        "frontend",
        vec![
            span(SpanKind::Client, 1, 11, 0, 30, true),
            span(SpanKind::Client, 2, 21, 0, 30, false),
        ],
    );
    send(
        &collector,
        "backend",
        vec![span(SpanKind::Server, 1, 12, 11, 20, false)],
    );
    // One edge with its failure and both durations, and the dropped half:
    // every family of the flush is in.
    let text = collector
        .scrape_after_sums(&[
            ("traces_service_graph_request_total", 1.0),
            ("traces_service_graph_request_failed_total", 1.0),
            ("traces_service_graph_request_server_seconds_count", 1.0),
            ("traces_service_graph_request_client_seconds_count", 1.0),
            ("traces_service_graph_dropped_spans_total", 1.0),
        ])
        .text;
    for family in [
        "traces_service_graph_request_total",
        "traces_service_graph_request_failed_total",
        "traces_service_graph_request_server_seconds_bucket",
        "traces_service_graph_request_client_seconds_bucket",
        "traces_service_graph_dropped_spans_total",
    ] {
        assert!(text.contains(family), "{family} in\n{text}");
    }
    let (success, report) = common::promtool_check(&promtool, &text);
    assert!(
        success && report.trim().is_empty(),
        "promtool check metrics failed:\n{report}\n--- scrape ---\n{text}"
    );
}

/// Two services instrumented with the Rust OpenTelemetry SDK: the
/// frontend's CLIENT span is the parent of the backend's SERVER span (the
/// context propagated as it would be over HTTP); the service graph shows
/// one `frontend` → `backend` edge.
#[test]
fn rust_sdk_client_and_server_services_form_an_edge() {
    use opentelemetry::trace::{
        Span as _, SpanKind as SdkKind, TraceContextExt, Tracer as _, TracerProvider as _,
    };
    use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
    use opentelemetry_sdk::Resource;
    use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

    let collector = Collector::start();
    let provider = |service: &str| {
        let exporter = SpanExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(collector.otlp_http_url("/v1/traces"))
            .build()
            .expect("span exporter");
        SdkTracerProvider::builder()
            .with_resource(
                Resource::builder_empty()
                    .with_attributes([opentelemetry::KeyValue::new(
                        "service.name",
                        service.to_string(),
                    )])
                    .build(),
            )
            .with_sampler(Sampler::AlwaysOn)
            .with_simple_exporter(exporter)
            .build()
    };
    let frontend = provider("frontend");
    let backend = provider("backend");
    let client_tracer = frontend.tracer("frontend-http-client");
    let server_tracer = backend.tracer("backend-http-server");
    for _ in 0..3 {
        let client = client_tracer
            .span_builder("GET /api")
            .with_kind(SdkKind::Client)
            .start(&client_tracer);
        let parent =
            opentelemetry::Context::new().with_remote_span_context(client.span_context().clone());
        let mut server = server_tracer
            .span_builder("GET /api")
            .with_kind(SdkKind::Server)
            .start_with_context(&server_tracer, &parent);
        server.end();
        let mut client = client;
        client.end();
    }
    frontend.force_flush().expect("flush");
    backend.force_flush().expect("flush");
    // The only edge, with every family of its flush stored.
    let s = collector.scrape_after_edge_requests(3.0);
    let edge = s.matching(
        "traces_service_graph_request_total",
        &[("client", "frontend"), ("server", "backend")],
    );
    assert_eq!(edge.len(), 1, "{}", s.text);
    assert_eq!(edge[0].1, 3.0);
    let failed = s.matching(
        "traces_service_graph_request_failed_total",
        &[("client", "frontend"), ("server", "backend")],
    );
    assert_eq!(failed[0].1, 0.0);
    frontend.shutdown().expect("shutdown");
    backend.shutdown().expect("shutdown");
}
