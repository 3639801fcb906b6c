//! Black-box tests of traces turned into metrics: spans sent by the Rust
//! OpenTelemetry SDK over OTLP/HTTP come out of `/metrics` as the
//! spanmetrics connector's series — exact calls, duration buckets in
//! seconds, error status, extra dimensions, exemplars in OpenMetrics, and
//! the overflow series past the cardinality limit. The connector emits on
//! its default 1 s flush interval, so each check waits for the calls sent.

mod common;

use std::time::{Duration, SystemTime};

use common::{Collector, Options, Samples, http_client};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// One span to send: name, kind, duration (ms), error?, attributes.
struct Spec {
    name: &'static str,
    kind: SpanKind,
    millis: u64,
    error: bool,
    attributes: Vec<KeyValue>,
}

fn spec(name: &'static str, kind: SpanKind, millis: u64, error: bool) -> Spec {
    Spec {
        name,
        kind,
        millis,
        error,
        attributes: Vec::new(),
    }
}

/// Sends the spans over OTLP/HTTP protobuf with the Rust SDK, with
/// explicit start and end times.
fn send(collector: &Collector, service: &str, spans: Vec<Spec>) {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(collector.otlp_http_url("/v1/traces"))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("span exporter");
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_attributes([
                    KeyValue::new("service.name", service.to_string()),
                    KeyValue::new("deployment.environment.name", "test"),
                ])
                .build(),
        )
        .with_sampler(Sampler::AlwaysOn)
        .with_simple_exporter(exporter)
        .build();
    let tracer = provider.tracer("span-metrics-test");
    let start = SystemTime::now() - Duration::from_secs(60);
    for s in spans {
        let mut span = tracer
            .span_builder(s.name)
            .with_kind(s.kind)
            .with_start_time(start)
            .with_attributes(s.attributes)
            .start(&tracer);
        if s.error {
            span.set_status(Status::error("boom"));
        }
        span.end_with_timestamp(start + Duration::from_millis(s.millis));
    }
    provider.force_flush().expect("flush");
    provider.shutdown().expect("shutdown");
}

fn labels<'a>(
    service: &'a str,
    name: &'a str,
    kind: &'a str,
    status: &'a str,
) -> Vec<(&'a str, &'a str)> {
    vec![
        ("job", service),
        ("service_name", service),
        ("span_name", name),
        ("span_kind", kind),
        ("status_code", status),
        ("otel_scope_name", "streamgate.spanmetrics"),
        ("otel_scope_version", env!("CARGO_PKG_VERSION")),
    ]
}

fn bucket(s: &Samples, base: &[(&str, &str)], le: &str) -> Option<f64> {
    let mut l = base.to_vec();
    l.push(("le", le));
    s.get("traces_span_metrics_duration_seconds_bucket", &l)
}

/// Calls and durations per (service, span name, kind, status), with the
/// spanmetrics connector's default buckets in seconds.
#[test]
fn spans_become_red_metrics() {
    let collector = Collector::start();
    send(
        &collector,
        "checkout",
        vec![
            spec("GET /cart", SpanKind::Server, 1, false),
            spec("GET /cart", SpanKind::Server, 3, false),
            spec("GET /cart", SpanKind::Server, 45, false),
            spec("GET /cart", SpanKind::Server, 1200, true),
            spec("SELECT carts", SpanKind::Client, 7, false),
        ],
    );
    let s = collector.scrape_after_span_calls(5.0);
    let ok = labels(
        "checkout",
        "GET /cart",
        "SPAN_KIND_SERVER",
        "STATUS_CODE_UNSET",
    );
    let err = labels(
        "checkout",
        "GET /cart",
        "SPAN_KIND_SERVER",
        "STATUS_CODE_ERROR",
    );
    let db = labels(
        "checkout",
        "SELECT carts",
        "SPAN_KIND_CLIENT",
        "STATUS_CODE_UNSET",
    );
    assert_eq!(
        s.get("traces_span_metrics_calls_total", &ok),
        Some(3.0),
        "{}",
        s.text
    );
    assert_eq!(s.get("traces_span_metrics_calls_total", &err), Some(1.0));
    assert_eq!(s.get("traces_span_metrics_calls_total", &db), Some(1.0));
    assert_eq!(s.types["traces_span_metrics_duration_seconds"], "histogram");
    for (le, want) in [
        ("0.002", 1.0),
        ("0.004", 2.0),
        ("0.01", 2.0),
        ("0.05", 3.0),
        ("15", 3.0),
        ("+Inf", 3.0),
    ] {
        assert_eq!(bucket(&s, &ok, le), Some(want), "le={le}");
    }
    assert_eq!(bucket(&s, &err, "1"), Some(0.0));
    assert_eq!(bucket(&s, &err, "1.4"), Some(1.0));
    let sum = s
        .get("traces_span_metrics_duration_seconds_sum", &ok)
        .unwrap();
    assert!((sum - 0.049).abs() < 1e-9, "{sum}");
    assert_eq!(
        s.get("traces_span_metrics_duration_seconds_count", &db),
        Some(1.0)
    );
    assert_eq!(bucket(&s, &db, "0.008"), Some(1.0));
    assert_eq!(bucket(&s, &db, "0.006"), Some(0.0));

    // A second batch adds to the same cumulative series.
    send(
        &collector,
        "checkout",
        vec![spec("GET /cart", SpanKind::Server, 1, false)],
    );
    let s = collector.scrape_after_span_calls(6.0);
    assert_eq!(s.get("traces_span_metrics_calls_total", &ok), Some(4.0));
    assert_eq!(bucket(&s, &ok, "0.002"), Some(2.0));
}

/// OpenMetrics output carries `trace_id`/`span_id` exemplars on the calls
/// counter and on the bucket each exemplar's duration falls in.
#[test]
fn exemplars_in_openmetrics() {
    let collector = Collector::start();
    send(
        &collector,
        "cart",
        vec![spec("GET /x", SpanKind::Server, 30, false)],
    );
    collector.scrape_after_span_calls(1.0);
    let om = http_client()
        .get(collector.url("/metrics"))
        .header("Accept", "application/openmetrics-text; version=1.0.0")
        .send()
        .unwrap()
        .text()
        .unwrap();
    let calls = om
        .lines()
        .find(|l| l.starts_with("traces_span_metrics_calls_total{"))
        .expect("calls line");
    assert!(calls.contains(" # {trace_id=\""), "{calls}");
    let exemplar_buckets: Vec<&str> = om
        .lines()
        .filter(|l| {
            l.starts_with("traces_span_metrics_duration_seconds_bucket{") && l.contains(" # {")
        })
        .collect();
    assert_eq!(exemplar_buckets.len(), 1, "{om}");
    assert!(
        exemplar_buckets[0].contains("le=\"0.05\""),
        "{}",
        exemplar_buckets[0]
    );
    assert!(
        exemplar_buckets[0].contains("} 0.03 "),
        "value is the duration: {}",
        exemplar_buckets[0]
    );
    // Text format has no exemplars.
    assert!(!collector.scrape_text().contains(" # {"));
}

/// A configured extra dimension is read from the span's attributes, then
/// the resource's, then its default.
#[test]
fn extra_dimensions() {
    let collector = Collector::start_with(Options {
        connectors_extra: "spanmetrics:\n  dimensions:\n    - name: http.request.method\n      default: GET\n    - name: deployment.environment.name\n".into(),
        ..Default::default()
    });
    let mut post = spec("route", SpanKind::Server, 5, false);
    post.attributes = vec![KeyValue::new("http.request.method", "POST")];
    send(
        &collector,
        "api",
        vec![post, spec("route", SpanKind::Server, 5, false)],
    );
    let s = collector.scrape_after_span_calls(2.0);
    let mut base = labels("api", "route", "SPAN_KIND_SERVER", "STATUS_CODE_UNSET");
    base.push(("deployment_environment_name", "test"));
    for method in ["GET", "POST"] {
        let mut l = base.clone();
        l.push(("http_request_method", method));
        assert_eq!(
            s.get("traces_span_metrics_calls_total", &l),
            Some(1.0),
            "{method}: {}",
            s.text
        );
    }
}

/// Past `cardinality_limit` series, spans count in one series labelled
/// `otel_metric_overflow="true"`, and the overflow is counted.
#[test]
fn overflow_series_past_the_limit() {
    let collector = Collector::start_with(Options {
        connectors_extra: "spanmetrics:\n  cardinality_limit: 2\n".into(),
        ..Default::default()
    });
    send(
        &collector,
        "many",
        ["a", "b", "c", "d", "e"]
            .iter()
            .map(|n| spec(n, SpanKind::Server, 5, false))
            .collect(),
    );
    let s = collector.scrape_after_span_calls(5.0);
    let overflow = s.matching(
        "traces_span_metrics_calls_total",
        &[("otel_metric_overflow", "true")],
    );
    assert_eq!(overflow.len(), 1, "{}", s.text);
    assert_eq!(overflow[0].1, 3.0);
    assert_eq!(
        s.matching("traces_span_metrics_calls_total", &[("job", "many")])
            .len(),
        2
    );
    assert_eq!(
        s.get(
            "streamgate_connector_overflow_points_total",
            &[("connector", "spanmetrics")]
        ),
        Some(3.0)
    );
}
