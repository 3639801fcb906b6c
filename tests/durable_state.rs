//! Black-box tests of durable state (`state:`): the binary keeps its
//! analysis models and its span-metrics counters across a `kill -9`
//! (losing at most one snapshot interval) and across a graceful restart,
//! and a damaged or foreign state file is reported, set aside and never
//! stops the start.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::{Collector, Options, http_client};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::SdkTracerProvider;

const ANALYSIS: &str = "analysis:\n  select: [{name: queue.depth}]\n  step: 100ms\n  horizons: [1s]\n  series_ttl: 1m\n";

fn gauge(value: f64) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}}]}},
          "scopeMetrics":[{{"metrics":[{{"name":"queue.depth","unit":"{{item}}",
            "gauge":{{"dataPoints":[{{"asDouble":{value}}}]}}}}]}}]}}]}}"#
    )
}

fn collector(state: &Path, interval: &str) -> Collector {
    Collector::start_with(Options {
        processors_extra: ANALYSIS.into(),
        state_dir: Some(state.to_path_buf()),
        state_extra: format!("interval: {interval}"),
        ..Default::default()
    })
}

fn send(c: &Collector, value: f64) {
    let r = http_client()
        .post(c.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .body(gauge(value))
        .send()
        .expect("send");
    assert_eq!(r.status(), 200);
}

/// Sends a steady series long enough for the baseline to warm up.
fn teach(c: &Collector) {
    for i in 0..40 {
        send(c, 20.0 + (i % 5) as f64 * 0.5);
        std::thread::sleep(Duration::from_millis(100));
    }
}

const LABELS: [(&str, &str); 2] = [("job", "checkout"), ("metric", "queue_depth")];

fn expected(c: &Collector) -> Option<f64> {
    c.scrape()
        .matching("streamgate_baseline_expected", &LABELS)
        .first()
        .map(|m| m.1)
}

fn state_metric(c: &Collector, name: &str, extra: &[(&str, &str)]) -> f64 {
    let mut labels = vec![("component", "analysis")];
    labels.extend_from_slice(extra);
    c.scrape().get(name, &labels).unwrap_or(0.0)
}

/// How long a restored baseline is given to speak after its one point.
const SPEAKS: Duration = Duration::from_secs(15);
/// How long a fresh one is watched for staying silent.
const SILENT: Duration = Duration::from_secs(3);

/// After a restart, one point is enough for the restored baseline to
/// speak (a fresh one needs its warm-up of 12 points): its expected
/// value once a step has taken the point, looked for `within` (long for
/// a baseline that should speak, on a loaded machine; a few steps for
/// one that should not).
fn speaks_after_one_point(c: &Collector, within: Duration) -> Option<f64> {
    send(c, 21.0);
    let deadline = Instant::now() + within;
    while Instant::now() < deadline {
        if let Some(v) = expected(c) {
            return Some(v);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    None
}

/// Unix time now, in seconds.
fn unix_now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .expect("clock")
        .as_secs_f64()
}

/// Waits (at most 10 s) for a snapshot of `component` written after `since`.
fn wait_for_snapshot(c: &Collector, component: &str, since: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while c
        .scrape()
        .get(
            "streamgate_state_last_snapshot_timestamp_seconds",
            &[("component", component)],
        )
        .unwrap_or(0.0)
        < since
    {
        assert!(
            Instant::now() < deadline,
            "no {component} snapshot within 10s: {}",
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn kill_9_keeps_the_models_of_the_last_snapshot() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut first = collector(&state, "1s");
    teach(&first);
    let before = expected(&first).expect("the baseline warmed up");
    wait_for_snapshot(&first, "analysis", unix_now());
    first.kill();

    let second = collector(&state, "1s");
    assert!(
        state_metric(&second, "streamgate_state_restored_items", &[]) >= 1.0,
        "{}",
        second.logs()
    );
    assert!(
        second.logs().contains("state restored"),
        "{}",
        second.logs()
    );
    let after =
        speaks_after_one_point(&second, SPEAKS).expect("the restored baseline speaks at once");
    assert!(
        (after - before).abs() < 2.0,
        "restored expected {after}, before the kill {before}"
    );

    // The same single point to a collector without that state: silence
    // (the warm-up starts again), which is what the restore saved.
    let fresh = collector(&dir.path().join("other"), "1s");
    assert_eq!(speaks_after_one_point(&fresh, SILENT), None);
}

#[test]
fn a_graceful_stop_writes_the_state_it_has() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    // An interval far longer than the test: only shutdown writes.
    let mut first = collector(&state, "1h");
    teach(&first);
    assert!(expected(&first).is_some());
    assert_eq!(
        state_metric(
            &first,
            "streamgate_state_snapshots_total",
            &[("outcome", "ok")]
        ),
        0.0
    );
    assert!(first.terminate().success());
    assert!(state.join("analysis.state").is_file());
    let second = collector(&state, "1h");
    assert!(
        speaks_after_one_point(&second, SPEAKS).is_some(),
        "{}",
        second.logs()
    );
}

#[test]
fn damaged_and_foreign_state_is_set_aside_and_the_start_goes_on() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    std::fs::create_dir_all(&state).expect("mkdir");
    std::fs::write(state.join("analysis.state"), b"this is not a state file").expect("write");
    let c = collector(&state, "1h");
    assert_eq!(
        state_metric(&c, "streamgate_state_restore_failures_total", &[]),
        1.0
    );
    let logs = c.logs();
    assert!(logs.contains("saved state cannot be used"), "{logs}");
    assert!(logs.contains("not a StreamGate state file"), "{logs}");
    let aside: Vec<_> = std::fs::read_dir(state.join("corrupt"))
        .expect("corrupt/ made")
        .map(|e| e.expect("entry").file_name().to_string_lossy().to_string())
        .collect();
    assert_eq!(aside.len(), 1, "{aside:?}");
    assert!(aside[0].starts_with("analysis."), "{aside:?}");
    // It works as a fresh collector.
    teach(&c);
    assert!(expected(&c).is_some());
}

/// Runs `streamgate` on a config of its `server` endpoint and `state`
/// YAML (the OTLP receivers on free ports), for a start that must fail:
/// its exit code and stderr.
fn run_failing(dir: &Path, server: &str, state: &str) -> (Option<i32>, String) {
    let config = dir.join("failing.yaml");
    std::fs::write(
        &config,
        format!(
            "{state}server:\n  endpoint: {server}\nreceivers:\n  otlp:\n    grpc:\n      endpoint: 127.0.0.1:0\n    http:\n      endpoint: 127.0.0.1:0\n"
        ),
    )
    .expect("config");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .arg("--config")
        .arg(&config)
        .output()
        .expect("run");
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn a_state_directory_in_use_stops_the_second_process() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let _first = collector(&state, "1h");
    let state_yaml = format!("state:\n  directory: {}\n", state.display());
    let (code, err) = run_failing(dir.path(), "127.0.0.1:0", &state_yaml);
    assert_eq!(code, Some(1));
    assert!(
        err.contains("in use by another StreamGate process"),
        "{err}"
    );
}

/// Log counts restored from the state are on `/metrics` again as soon as
/// the collector is ready, not only once the next log record comes.
#[test]
fn restored_log_counts_show_before_new_records() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut first = collector(&state, "1h");
    let logs = r#"{"resourceLogs":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"ledger"}}]},
        "scopeLogs":[{"logRecords":[{"severityNumber":17,"body":{"stringValue":"a"}},{"severityNumber":9,"body":{"stringValue":"b"}}]}]}]}"#;
    for _ in 0..3 {
        let r = http_client()
            .post(first.otlp_http_url("/v1/logs"))
            .header("Content-Type", "application/json")
            .body(logs)
            .send()
            .expect("send logs");
        assert_eq!(r.status(), 200);
    }
    let ledger = [("service_name", "ledger")];
    let errors = |c: &Collector| {
        let found = c.scrape().matching("log_error_records_total", &ledger);
        found.first().map(|(_, v)| *v)
    };
    first.scrape_until("the error records", |s| {
        s.matching("log_error_records_total", &ledger)
            .first()
            .map(|(_, v)| *v)
            == Some(3.0)
    });
    assert!(first.terminate().success());
    let second = collector(&state, "1h");
    // Ready means restored; the counts are there with no record sent.
    assert_eq!(errors(&second), Some(3.0), "{}", second.logs());
}

/// A final snapshot that cannot be written is an error: the log says
/// which component's state is lost and the exit code is 1, not "state
/// written at shutdown" and 0.
#[test]
fn a_final_snapshot_that_fails_is_reported_and_exits_1() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut c = collector(&state, "1h");
    teach(&c);
    // A directory where the analysis' temporary file goes.
    std::fs::create_dir_all(state.join(".analysis.state.tmp").join("x")).expect("mkdir");
    let status = c.terminate();
    let logs = c.logs();
    assert_eq!(status.code(), Some(1), "{logs}");
    assert!(
        logs.contains("the state of analysis was not written at shutdown"),
        "{logs}"
    );
    assert!(!logs.contains("state written at shutdown"), "{logs}");
}

/// A `state.directory` that is a file is refused with that said, and a
/// cause is said once.
#[test]
fn a_state_directory_that_is_a_file_is_refused_plainly() {
    let dir = tempfile::tempdir().expect("tempdir");
    let file = dir.path().join("afile");
    std::fs::write(&file, b"").expect("write");
    let state_yaml = format!("state:\n  directory: {}\n", file.display());
    // Refused as a configuration error (exit 2), as `validate` refuses it.
    let (code, err) = run_failing(dir.path(), "127.0.0.1:0", &state_yaml);
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("is a file, not a directory"), "{err}");

    // A port in use: the OS error once.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let port = taken.local_addr().expect("addr").port();
    let (code, err) = run_failing(dir.path(), &format!("127.0.0.1:{port}"), "");
    assert_eq!(code, Some(1));
    let line = err
        .lines()
        .find(|l| l.starts_with("error:"))
        .unwrap_or_default();
    assert_eq!(line.matches("in use").count(), 1, "{err}");
}

/// Sends `n` spans of operation `GET /cart` of service `cart` with the
/// Rust SDK.
fn send_spans(c: &Collector, n: usize) {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(c.otlp_http_url("/v1/traces"))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("span exporter");
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_attributes([KeyValue::new("service.name", "cart")])
                .build(),
        )
        .with_simple_exporter(exporter)
        .build();
    let tracer = provider.tracer("durable-state-test");
    for _ in 0..n {
        tracer.start("GET /cart").end();
    }
    provider.force_flush().expect("flush");
    provider.shutdown().expect("shutdown");
}

/// `traces_span_metrics_calls_total` of the test's operation, with the
/// start time of its series (OpenMetrics `_created`).
fn calls(c: &Collector) -> Option<f64> {
    c.scrape()
        .matching(
            "traces_span_metrics_calls_total",
            &[("service_name", "cart"), ("span_name", "GET /cart")],
        )
        .first()
        .map(|m| m.1)
}

fn wait_for_calls(c: &Collector, want: f64) {
    let deadline = Instant::now() + Duration::from_secs(10);
    while calls(c) != Some(want) {
        assert!(
            Instant::now() < deadline,
            "calls_total never reached {want} (now {:?}): {}",
            calls(c),
            c.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A span-metrics counter continues across `kill -9` from the last
/// snapshot: Prometheus sees it grow, not reset to 0.
#[test]
fn kill_9_keeps_span_metrics_counters_growing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut first = collector(&state, "1s");
    send_spans(&first, 7);
    wait_for_calls(&first, 7.0);
    wait_for_snapshot(&first, "spanmetrics", unix_now());
    first.kill();

    let second = collector(&state, "1s");
    // Restored series are emitted at the connector's first flush, before
    // any new span.
    wait_for_calls(&second, 7.0);
    send_spans(&second, 3);
    wait_for_calls(&second, 10.0);
}

/// An alert created through the API survives `kill -9` with its id and
/// start time.
#[test]
fn kill_9_keeps_active_alerts() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut first = collector(&state, "1s");
    let created: serde_json::Value = serde_json::from_str(
        &http_client()
            .post(first.url("/api/v1/alerts"))
            .header("Content-Type", "application/json")
            .body(r#"{"labels": {"alertname": "DiskAlmostFull", "service": "db"}, "severity": "warning"}"#)
            .send()
            .expect("create")
            .text()
            .expect("body"),
    )
    .expect("JSON");
    let id = created["id"].as_str().expect("id").to_string();
    let created_at = created["starts_at"].as_f64().expect("starts_at");
    wait_for_snapshot(&first, "alerts", created_at);
    first.kill();

    let second = collector(&state, "1s");
    let alert: serde_json::Value = serde_json::from_str(
        &http_client()
            .get(second.url(&format!("/api/v1/alerts/{id}")))
            .send()
            .expect("get")
            .text()
            .expect("body"),
    )
    .expect("JSON");
    assert_eq!(alert["labels"]["alertname"], "DiskAlmostFull", "{alert}");
    assert_eq!(alert["starts_at"].as_f64(), Some(created_at), "{alert}");
    assert!(alert["ends_at"].is_null(), "still active: {alert}");
}

/// Exports `orders` (+n) with the Rust SDK in delta temporality.
fn send_delta(c: &Collector, n: u64) {
    use opentelemetry::metrics::MeterProvider as _;
    use opentelemetry_sdk::metrics::{PeriodicReader, SdkMeterProvider, Temporality};
    let exporter = opentelemetry_otlp::MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(c.otlp_http_url("/v1/metrics"))
        .with_temporality(Temporality::Delta)
        .build()
        .expect("metric exporter");
    let provider = SdkMeterProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_attributes([KeyValue::new("service.name", "shop")])
                .build(),
        )
        .with_reader(
            PeriodicReader::builder(exporter)
                .with_interval(Duration::from_secs(3600))
                .build(),
        )
        .build();
    provider
        .meter("durable-state-test")
        .u64_counter("orders")
        .build()
        .add(n, &[]);
    provider.force_flush().expect("flush");
    provider.shutdown().expect("shutdown");
}

fn orders(c: &Collector) -> Option<f64> {
    c.scrape()
        .matching("orders_total", &[("job", "shop")])
        .first()
        .map(|m| m.1)
}

/// A counter a delta sender feeds is a total only StreamGate knows: it
/// continues across `kill -9` instead of restarting from the next delta.
#[test]
fn kill_9_keeps_delta_totals() {
    let dir = tempfile::tempdir().expect("tempdir");
    let state = dir.path().join("state");
    let mut first = collector(&state, "1s");
    send_delta(&first, 5);
    send_delta(&first, 4);
    assert_eq!(orders(&first), Some(9.0));
    wait_for_snapshot(&first, "exporter", unix_now());
    first.kill();

    let second = collector(&state, "1s");
    assert_eq!(orders(&second), Some(9.0), "restored before any new point");
    send_delta(&second, 2);
    assert_eq!(orders(&second), Some(11.0));
}
