//! The OTLP forwarding exporter: spans and logs sent by the Rust OTel SDK
//! go on unchanged (ids, names, attributes, resource) to a downstream
//! OTLP/HTTP endpoint, batched, gzipped, with the configured headers,
//! while StreamGate still derives its span metrics from them; a busy
//! endpoint (503) is retried until it takes them; metrics are forwarded
//! only when asked.
//!
//! No OTLP backend can be installed here, so the endpoint is
//! `tests/python/otlp_sink.py`, which parses every request with the
//! official OpenTelemetry protobuf classes and refuses anything a real
//! receiver would (wrong path, content type, encoding or body).

mod common;

use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use common::{Collector, Options, http_client, peers_required};
use opentelemetry::KeyValue;
use opentelemetry::logs::{LogRecord as _, Logger as _, LoggerProvider as _};
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use serde_json::Value;

/// The sink process, killed on drop.
struct Sink {
    child: Child,
    port: u16,
}

impl Sink {
    fn start(fail_first: u32) -> Option<Sink> {
        let python = match std::env::var_os("STREAMGATE_PYTHON").filter(|p| !p.is_empty()) {
            Some(p) => PathBuf::from(p),
            None if peers_required() => panic!("STREAMGATE_PYTHON is not set; run scripts/test"),
            None => {
                eprintln!("SKIPPED: STREAMGATE_PYTHON not set (run scripts/test)");
                return None;
            }
        };
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/python/otlp_sink.py");
        let mut child = Command::new(python)
            .arg(script)
            .env("FAIL_FIRST", fail_first.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("start the OTLP sink");
        let mut line = String::new();
        BufReader::new(child.stdout.take().expect("stdout"))
            .read_line(&mut line)
            .expect("sink port");
        let port = line.trim().parse().expect("the sink prints its port");
        Some(Sink { child, port })
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}", self.port)
    }

    fn summary(&self) -> Value {
        let text = http_client()
            .get(format!("{}/summary", self.url()))
            .send()
            .and_then(|r| r.text())
            .expect("sink summary");
        serde_json::from_str(&text).expect("summary JSON")
    }

    /// Waits until `check` accepts the summary.
    fn wait_for(&self, c: &Collector, what: &str, check: impl Fn(&Value) -> bool) -> Value {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let summary = self.summary();
            if check(&summary) {
                return summary;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; sink has {summary:#}\n--- streamgate ---\n{}",
                    c.logs()
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }
}

impl Drop for Sink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A collector forwarding to `sink`. Batches wait up to a second, so the
/// test's back-to-back requests are merged even on a loaded machine.
fn forwarding_collector(sink: &Sink, extra: &str) -> Collector {
    Collector::start_with(Options {
        exporters_extra: format!(
            "otlp:\n  endpoint: {}\n  batch_timeout: 1s\n  min_backoff: 50ms\n  max_backoff: 200ms\n  headers:\n    X-Scope-OrgID: tenant-7\n{extra}",
            sink.url()
        ),
        ..Default::default()
    })
}

fn resource() -> Resource {
    Resource::builder().with_service_name("checkout").build()
}

/// Sends `n` spans `charge-<i>` (attribute `attempt=i`) one request each;
/// returns their (trace id, span id) as lowercase hex.
fn send_spans(c: &Collector, n: usize) -> Vec<(String, String)> {
    let provider = common::sdk::http_tracer_provider(c, resource());
    let tracer = provider.tracer("checkout.payments");
    let mut ids = Vec::new();
    for i in 0..n {
        let mut span = tracer.start(format!("charge-{i}"));
        span.set_attribute(KeyValue::new("attempt", i as i64));
        let ctx = span.span_context().clone();
        ids.push((ctx.trace_id().to_string(), ctx.span_id().to_string()));
        span.end();
    }
    provider.force_flush().expect("span flush");
    ids
}

fn send_logs(c: &Collector, bodies: &[&'static str]) -> SdkLoggerProvider {
    let provider = common::sdk::http_logger_provider(c, resource());
    let logger = provider.logger("checkout.audit");
    for body in bodies {
        let mut record = logger.create_log_record();
        record.set_body((*body).into());
        record.set_severity_text("WARN");
        logger.emit(record);
    }
    provider.force_flush().expect("log flush");
    provider
}

/// Every span in the sink's trace requests.
fn spans(summary: &Value) -> Vec<Value> {
    requests(summary, "/v1/traces")
        .iter()
        .flat_map(|r| array(&r["request"]["resourceSpans"]))
        .flat_map(|rs| {
            let service = service_of(&rs);
            array(&rs["scopeSpans"])
                .into_iter()
                .flat_map(|ss| array(&ss["spans"]))
                .map(move |mut s| {
                    s["service"] = Value::String(service.clone());
                    s
                })
        })
        .collect()
}

fn log_bodies(summary: &Value) -> Vec<String> {
    requests(summary, "/v1/logs")
        .iter()
        .flat_map(|r| array(&r["request"]["resourceLogs"]))
        .flat_map(|rl| array(&rl["scopeLogs"]))
        .flat_map(|sl| array(&sl["logRecords"]))
        .filter_map(|l| l["body"]["stringValue"].as_str().map(str::to_string))
        .collect()
}

fn requests(summary: &Value, path: &str) -> Vec<Value> {
    array(&summary["requests"])
        .into_iter()
        .filter(|r| r["path"] == path)
        .collect()
}

fn array(v: &Value) -> Vec<Value> {
    v.as_array().cloned().unwrap_or_default()
}

fn service_of(resource_spans: &Value) -> String {
    array(&resource_spans["resource"]["attributes"])
        .iter()
        .find(|a| a["key"] == "service.name")
        .and_then(|a| a["value"]["stringValue"].as_str())
        .unwrap_or_default()
        .to_string()
}

/// The protobuf-JSON id (base64) as lowercase hex.
fn hex_id(b64: &Value) -> String {
    use base64::Engine;
    let bytes = base64::engine::general_purpose::STANDARD
        .decode(b64.as_str().unwrap_or_default())
        .unwrap_or_default();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn forwarded(c: &Collector, family: &str, signal: &str) -> f64 {
    c.scrape()
        .matching(family, &[("exporter", "otlp"), ("signal", signal)])
        .iter()
        .map(|(_, v)| v)
        .sum()
}

/// Waits until `items` of `signal` are counted as sent: the exporter
/// counts a request once it has read the answer, a moment after the sink
/// has recorded it.
fn wait_for_sent(c: &Collector, signal: &str, items: f64) {
    let sent = "streamgate_exporter_sent_items_total";
    c.scrape_until(&format!("{items} {signal} items counted as sent"), |s| {
        s.matching(sent, &[("exporter", "otlp"), ("signal", signal)])
            .iter()
            .map(|(_, v)| v)
            .sum::<f64>()
            == items
    });
}

#[test]
fn spans_and_logs_go_on_unchanged_and_still_feed_span_metrics() {
    let Some(sink) = Sink::start(0) else {
        return;
    };
    let c = forwarding_collector(&sink, "");
    let ids = send_spans(&c, 6);
    let _logs = send_logs(&c, &["card declined", "retrying charge"]);

    let summary = sink.wait_for(&c, "6 spans and 2 logs", |s| {
        spans(s).len() == 6 && log_bodies(s).len() == 2
    });
    assert!(array(&summary["refused"]).is_empty(), "{summary:#}");
    let got = spans(&summary);
    for (i, (trace_id, span_id)) in ids.iter().enumerate() {
        let span = got
            .iter()
            .find(|s| hex_id(&s["spanId"]) == *span_id)
            .unwrap_or_else(|| panic!("span {span_id} forwarded: {summary:#}"));
        assert_eq!(hex_id(&span["traceId"]), *trace_id);
        assert_eq!(span["name"], format!("charge-{i}"));
        assert_eq!(span["service"], "checkout");
        let attempt = array(&span["attributes"])
            .into_iter()
            .find(|a| a["key"] == "attempt")
            .expect("attribute kept");
        assert_eq!(attempt["value"]["intValue"], i.to_string());
    }
    let mut bodies = log_bodies(&summary);
    bodies.sort();
    assert_eq!(bodies, vec!["card declined", "retrying charge"]);

    // Six one-span requests were merged into fewer, gzipped, with the
    // configured header; nothing went to /v1/metrics.
    let trace_requests = requests(&summary, "/v1/traces");
    assert!(
        trace_requests.len() < 6,
        "batched: {} requests",
        trace_requests.len()
    );
    for r in array(&summary["requests"]) {
        assert_eq!(r["encoding"], "gzip");
        assert_eq!(r["tenant"], "tenant-7");
        assert!(
            r["user_agent"]
                .as_str()
                .unwrap_or_default()
                .starts_with("streamgate/")
        );
    }
    assert!(requests(&summary, "/v1/metrics").is_empty());

    // The spans still made span metrics here.
    let samples = c.scrape_after_span_calls(6.0);
    assert_eq!(
        samples
            .matching(
                "traces_span_metrics_calls_total",
                &[("service_name", "checkout")]
            )
            .iter()
            .map(|(_, v)| v)
            .sum::<f64>(),
        6.0
    );
    wait_for_sent(&c, "traces", 6.0);
    wait_for_sent(&c, "logs", 2.0);
    assert_eq!(
        forwarded(&c, "streamgate_exporter_failed_items_total", "traces"),
        0.0
    );
}

#[test]
fn a_busy_endpoint_is_retried_and_metrics_forward_when_asked() {
    let Some(sink) = Sink::start(3) else {
        return;
    };
    let c = forwarding_collector(&sink, "  metrics: true\n  compression: none\n");
    let ids = send_spans(&c, 2);
    let meter = common::sdk::logins_provider(
        opentelemetry_otlp::MetricExporter::builder()
            .with_http()
            .with_protocol(Protocol::HttpBinary)
            .with_endpoint(c.otlp_http_url("/v1/metrics"))
            .build()
            .expect("metric exporter"),
        "checkout",
        "checkout.logins",
    );
    meter.force_flush().expect("metrics flush");

    let summary = sink.wait_for(&c, "2 spans and a metrics request", |s| {
        spans(s).len() == 2 && !requests(s, "/v1/metrics").is_empty()
    });
    assert_eq!(summary["failed_on_purpose"], 3);
    let got: Vec<String> = spans(&summary)
        .iter()
        .map(|s| hex_id(&s["spanId"]))
        .collect();
    for (_, span_id) in &ids {
        assert!(got.contains(span_id), "{span_id} in {got:?}");
    }
    let metrics = &requests(&summary, "/v1/metrics")[0];
    assert_eq!(metrics["encoding"], "");
    let names: Vec<String> = array(&metrics["request"]["resourceMetrics"])
        .iter()
        .flat_map(|rm| array(&rm["scopeMetrics"]))
        .flat_map(|sm| array(&sm["metrics"]))
        .filter_map(|m| m["name"].as_str().map(str::to_string))
        .collect();
    assert_eq!(names, vec!["logins"]);
    assert!(
        forwarded(&c, "streamgate_exporter_retried_requests_total", "traces")
            + forwarded(&c, "streamgate_exporter_retried_requests_total", "metrics")
            >= 3.0
    );
    assert_eq!(
        forwarded(&c, "streamgate_exporter_failed_items_total", "traces"),
        0.0
    );
    wait_for_sent(&c, "metrics", 1.0);
}
