//! Reports end to end: spans sent by the Rust OpenTelemetry SDK, then
//! `POST /api/v1/reports` summarises the period — ingest volume and the
//! SLO status per service from the span metrics — and the next report
//! covers only what came after; JSON, Markdown and HTML renderings, the
//! list, and the API's answers to bad requests.

mod common;

use std::time::{Duration, SystemTime};

use common::{Collector, http_client};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

/// Sends `calls` server spans of `service`, `errors` of them failed.
fn send(collector: &Collector, service: &str, calls: usize, errors: usize) {
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
                .with_attributes([KeyValue::new("service.name", service.to_string())])
                .build(),
        )
        .with_sampler(Sampler::AlwaysOn)
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("reports-test");
    let start = SystemTime::now() - Duration::from_secs(1);
    for i in 0..calls {
        let mut span = tracer
            .span_builder("GET /cart")
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .start(&tracer);
        if i < errors {
            span.set_status(Status::error("boom"));
        }
        span.end_with_timestamp(start + Duration::from_millis(20));
    }
    provider.force_flush().expect("flush");
    provider.shutdown().expect("shutdown");
}

/// Waits until the checkout service's span calls, over every status,
/// total `calls` on `/metrics`: the whole span-metrics flush is stored.
fn wait_for_checkout_calls(collector: &Collector, calls: f64) {
    collector.scrape_until(&format!("{calls} checkout calls"), |s| {
        s.matching("traces_span_metrics_calls_total", &[("job", "checkout")])
            .iter()
            .map(|(_, v)| v)
            .sum::<f64>()
            == calls
    });
}

fn post_report(collector: &Collector) -> serde_json::Value {
    let r = http_client()
        .post(collector.url("/api/v1/reports"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

#[test]
fn reports_summarise_each_period() {
    let collector = Collector::start();
    let none = http_client()
        .get(collector.url("/api/v1/reports/latest"))
        .send()
        .unwrap();
    assert_eq!(none.status(), 404, "no report before the first");

    send(&collector, "checkout", 200, 4);
    wait_for_checkout_calls(&collector, 200.0);
    let first = post_report(&collector);
    assert_eq!(first["id"], 1);
    assert_eq!(first["trigger"], "manual");
    assert_eq!(first["ingest"]["spans"], 200);
    let slo = &first["slo"][0];
    assert_eq!(slo["service"], "checkout");
    assert_eq!(slo["calls"], 200.0);
    assert_eq!(slo["errors"], 4.0);
    assert!((slo["availability"].as_f64().unwrap() - 0.98).abs() < 1e-9);
    assert_eq!(slo["met"], false, "98 % is below 99.9 %");
    assert!((slo["budget_used"].as_f64().unwrap() - 20.0).abs() < 1e-6);
    assert_eq!(first["health"]["status"], "ok");

    // The next period counts only what came after the first report.
    send(&collector, "checkout", 100, 0);
    wait_for_checkout_calls(&collector, 300.0);
    let second = post_report(&collector);
    assert_eq!(second["id"], 2);
    assert_eq!(second["ingest"]["spans"], 100);
    assert_eq!(second["slo"][0]["calls"], 100.0);
    assert_eq!(second["slo"][0]["errors"], 0.0);
    assert_eq!(second["slo"][0]["met"], true);
    assert_eq!(second["period_from"], first["period_to"]);

    let list: serde_json::Value = serde_json::from_slice(
        &http_client()
            .get(collector.url("/api/v1/reports"))
            .send()
            .unwrap()
            .bytes()
            .unwrap(),
    )
    .unwrap();
    assert_eq!(list["reports"][0]["id"], 2, "newest first");
    assert_eq!(list["reports"][1]["id"], 1);

    let md = http_client()
        .get(collector.url("/api/v1/reports/latest?format=markdown"))
        .send()
        .unwrap();
    assert!(
        md.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/markdown")
    );
    let md = md.text().unwrap();
    assert!(md.starts_with("# StreamGate report 2"), "{md}");
    assert!(
        md.contains("| checkout | 100 | 0 | 100.0000% | 99.900% | yes |"),
        "{md}"
    );

    let html = http_client()
        .get(collector.url("/api/v1/reports/1?format=html"))
        .send()
        .unwrap()
        .text()
        .unwrap();
    assert!(html.contains("<h1>StreamGate report 1</h1>"), "{html}");
    assert!(html.contains("<td>checkout</td>"), "{html}");

    for (path, status) in [
        ("/api/v1/reports/latest?format=pdf", 400),
        ("/api/v1/reports/99", 404),
        ("/api/v1/reports/abc", 400),
        ("/api/v1/reports/latest?colour=red", 400),
    ] {
        let r = http_client().get(collector.url(path)).send().unwrap();
        assert_eq!(r.status(), status, "{path}");
    }
}

/// After a restart that restores the span metrics, the first report
/// covers the time since the start: the calls counted before the restart
/// are on `/metrics` at once, but not in the report.
#[test]
fn the_first_report_after_a_restart_leaves_out_restored_calls() {
    let dir = tempfile::tempdir().unwrap();
    let state = dir.path().join("state");
    let options = || common::Options {
        state_dir: Some(state.clone()),
        state_extra: "interval: 1h".into(),
        ..Default::default()
    };
    let mut first = Collector::start_with(options());
    send(&first, "checkout", 50, 5);
    wait_for_checkout_calls(&first, 50.0);
    assert!(first.terminate().success(), "{}", first.logs());

    let second = Collector::start_with(options());
    // Restored and shown without new spans.
    wait_for_checkout_calls(&second, 50.0);
    let report = post_report(&second);
    let checkout: Vec<&serde_json::Value> = report["slo"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|s| s["service"] == "checkout")
        .collect();
    assert!(
        checkout.iter().all(|s| s["calls"] == 0.0),
        "restored calls are not this period's: {report}"
    );
    // New calls are.
    send(&second, "checkout", 10, 0);
    wait_for_checkout_calls(&second, 60.0);
    let next = post_report(&second);
    assert_eq!(next["slo"][0]["service"], "checkout", "{next}");
    assert_eq!(next["slo"][0]["calls"], 10.0, "{next}");
}
