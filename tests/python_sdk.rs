//! Black-box tests against the real OpenTelemetry Python SDK: the script
//! `tests/python/send_metrics.py` exports a Counter, an UpDownCounter, a
//! Histogram (explicit boundaries set by a View) and an ObservableGauge,
//! plus spans and log records, over OTLP/gRPC or OTLP/HTTP to a started
//! collector, and the scrape must show the exact Prometheus names, labels
//! and values the OTel→Prometheus translation rules give.
//!
//! The interpreter is `$STREAMGATE_PYTHON` (`scripts/test` points it at
//! `.venv/bin/python`, which has the SDK pinned in
//! `tests/python/requirements.txt`). Without it the tests skip, or fail
//! when `STREAMGATE_REQUIRE_PEERS=1`.

mod common;

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use common::{Collector, Samples, peers_required};

const SCRIPT: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/python/send_metrics.py");
const SCHEMA_URL: &str = "https://opentelemetry.io/schemas/1.26.0";

/// Data points in one export of the script: 2 + 1 order/payload counter
/// series, 1 up-down counter, 1 histogram, 1 gauge.
const DATA_POINTS: f64 = 6.0;
const SPANS: f64 = 3.0;
const LOG_RECORDS: f64 = 2.0;

/// The interpreter with the SDK installed, or `None` (test skipped).
fn python() -> Option<PathBuf> {
    match std::env::var_os("STREAMGATE_PYTHON").filter(|p| !p.is_empty()) {
        Some(path) => {
            let path = PathBuf::from(path);
            assert!(
                path.is_file(),
                "STREAMGATE_PYTHON={} is not a file; run scripts/test to create .venv",
                path.display()
            );
            Some(path)
        }
        None if peers_required() => {
            panic!("STREAMGATE_PYTHON is not set; scripts/test creates .venv and sets it")
        }
        None => {
            eprintln!("SKIPPED: STREAMGATE_PYTHON not set (run scripts/test)");
            None
        }
    }
}

/// What one run of the script did.
struct Run {
    success: bool,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn describe(&self) -> String {
        format!(
            "exit {:?}\n--- stdout ---\n{}\n--- stderr ---\n{}",
            self.code, self.stdout, self.stderr
        )
    }
}

/// Runs `send_metrics.py` with `args`, killing it after 60 s. Output goes
/// to files in `dir`, so a chatty exporter cannot block on a full pipe.
fn run_script(python: &Path, dir: &Path, args: &[&str]) -> Run {
    let n = std::fs::read_dir(dir).map(|d| d.count()).unwrap_or(0);
    let out_path = dir.join(format!("python-{n}.out"));
    let err_path = dir.join(format!("python-{n}.err"));
    let mut child = Command::new(python)
        .arg(SCRIPT)
        .args(args)
        .env("PYTHONUNBUFFERED", "1")
        .env("PYTHONDONTWRITEBYTECODE", "1")
        .stdin(Stdio::null())
        .stdout(std::fs::File::create(&out_path).expect("stdout file"))
        .stderr(std::fs::File::create(&err_path).expect("stderr file"))
        .spawn()
        .unwrap_or_else(|e| panic!("cannot start {}: {e}", python.display()));
    let deadline = Instant::now() + Duration::from_secs(60);
    let status = loop {
        if let Some(status) = child.try_wait().expect("wait for python") {
            break status;
        }
        if Instant::now() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!(
                "send_metrics.py {args:?} did not finish in 60s; stderr:\n{}",
                std::fs::read_to_string(&err_path).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(20));
    };
    Run {
        success: status.success(),
        code: status.code(),
        stdout: std::fs::read_to_string(&out_path).unwrap_or_default(),
        stderr: std::fs::read_to_string(&err_path).unwrap_or_default(),
    }
}

/// Runs the script and requires it to report every export successful.
fn send(python: &Path, collector: &Collector, args: &[&str]) -> Run {
    let run = run_script(python, collector.dir.path(), args);
    assert!(
        run.success,
        "send_metrics.py {args:?} failed\n{}\n--- collector log ---\n{}",
        run.describe(),
        collector.logs()
    );
    assert!(
        run.stdout.contains("\"ok\": true"),
        "send_metrics.py printed no success summary\n{}",
        run.describe()
    );
    run
}

fn grpc_args(collector: &Collector) -> Vec<String> {
    vec!["grpc".into(), collector.grpc_url()]
}

fn http_args(collector: &Collector) -> Vec<String> {
    vec!["http".into(), format!("http://{}", collector.http)]
}

fn with<'a>(base: &'a [String], extra: &[&'a str]) -> Vec<&'a str> {
    base.iter()
        .map(String::as_str)
        .chain(extra.iter().copied())
        .collect()
}

/// The labels every series of one script run carries: `job` from
/// `service.namespace`/`service.name`, `instance` from
/// `service.instance.id`, and the `otel_scope_*` labels of the meter.
fn shared(instance: &str) -> Vec<(&str, &str)> {
    vec![
        ("job", "shop/checkout"),
        ("instance", instance),
        ("otel_scope_name", "shop.checkout"),
        ("otel_scope_version", "1.2.3"),
        ("otel_scope_schema_url", SCHEMA_URL),
        ("otel_scope_library_kind", "sdk-test"),
    ]
}

fn labels<'a>(instance: &'a str, extra: &[(&'a str, &'a str)]) -> Vec<(&'a str, &'a str)> {
    let mut all = shared(instance);
    all.extend_from_slice(extra);
    all
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    samples.get(name, labels).unwrap_or_else(|| {
        panic!(
            "no sample {}; scrape:\n{}",
            common::key(name, labels),
            samples.text
        )
    })
}

fn order_labels(region: &str) -> [(&str, &str); 4] {
    [
        ("shop_region", region),
        ("payment_method", "card"),
        ("http_response_status_code", "200"),
        ("retry", "false"),
    ]
}

/// Expected values of one instance's series; `runs` scales what delta
/// temporality accumulates over repeated exports.
struct Expected {
    orders_eu: f64,
    orders_us: f64,
    payload: f64,
    /// Cumulative counts of the buckets le=0.1, 0.5, 1, 5, +Inf.
    buckets: [f64; 5],
    sum: f64,
}

impl Expected {
    fn times(runs: f64) -> Expected {
        Expected {
            orders_eu: 5.0 * runs,
            orders_us: 4.0 * runs,
            payload: 1536.0 * runs,
            buckets: [1.0, 3.0, 3.0, 4.0, 5.0].map(|c| c * runs),
            sum: 10.5625 * runs,
        }
    }
}

/// Asserts every translated series of one instance, exactly.
fn assert_instance(samples: &Samples, instance: &str, want: &Expected) {
    let eu = labels(instance, &order_labels("eu"));
    let us = labels(instance, &order_labels("us"));
    assert_eq!(value(samples, "shop_orders_total", &eu), want.orders_eu);
    assert_eq!(value(samples, "shop_orders_total", &us), want.orders_us);
    assert_eq!(
        samples
            .matching("shop_orders_total", &[("instance", instance)])
            .len(),
        2,
        "one series per attribute set:\n{}",
        samples.text
    );

    let region = labels(instance, &[("shop_region", "eu")]);
    assert_eq!(
        value(samples, "shop_payload_size_bytes_total", &region),
        want.payload
    );
    // The up-down counter is cumulative in every temporality preference.
    assert_eq!(value(samples, "shop_cart_items", &region), 3.0);

    for (le, count) in ["0.1", "0.5", "1", "5", "+Inf"].iter().zip(want.buckets) {
        let mut with_le = region.clone();
        with_le.push(("le", le));
        assert_eq!(
            value(samples, "shop_checkout_duration_seconds_bucket", &with_le),
            count,
            "bucket le={le}"
        );
    }
    assert_eq!(
        samples
            .matching(
                "shop_checkout_duration_seconds_bucket",
                &[("instance", instance)]
            )
            .len(),
        5,
        "exactly the View's 4 boundaries plus +Inf:\n{}",
        samples.text
    );
    assert_eq!(
        value(samples, "shop_checkout_duration_seconds_sum", &region),
        want.sum
    );
    assert_eq!(
        value(samples, "shop_checkout_duration_seconds_count", &region),
        want.buckets[4]
    );

    let queue = labels(instance, &[("queue", "payments")]);
    assert_eq!(value(samples, "shop_queue_utilization_ratio", &queue), 0.75);

    // Resource attributes other than service.* go to target_info.
    let info = samples.matching(
        "target_info",
        &[
            ("job", "shop/checkout"),
            ("instance", instance),
            ("deployment_environment_name", "test"),
            ("telemetry_sdk_language", "python"),
            ("telemetry_sdk_name", "opentelemetry"),
        ],
    );
    assert_eq!(info.len(), 1, "one target_info series:\n{}", samples.text);
    let (series, v) = &info[0];
    assert_eq!(*v, 1.0);
    assert!(
        series.contains("telemetry_sdk_version=\"1.45."),
        "telemetry.sdk.version of the pinned SDK: {series}"
    );
    let label_names: Vec<&str> = series
        .trim_end_matches('}')
        .split_once('{')
        .map(|(_, l)| l.split(',').filter_map(|p| p.split('=').next()).collect())
        .unwrap_or_default();
    assert_eq!(
        label_names,
        [
            "deployment_environment_name",
            "instance",
            "job",
            "telemetry_sdk_language",
            "telemetry_sdk_name",
            "telemetry_sdk_version"
        ],
        "service.* attributes are job/instance only"
    );
}

/// Types, help texts and the set of translated families.
fn assert_families(samples: &Samples) {
    let translated: BTreeSet<&str> = samples
        .types
        .keys()
        .map(String::as_str)
        .filter(|n| !n.starts_with("streamgate_"))
        // Span and log metrics come from the connectors; checked apart.
        .filter(|n| !n.starts_with("traces_") && !n.starts_with("log_"))
        // Window families of the duration histogram join on the windows
        // processor's 10 s clock; they are not translated families.
        .filter(|n| !n.contains("_window_"))
        .collect();
    assert_eq!(
        translated,
        BTreeSet::from([
            "shop_cart_items",
            "shop_checkout_duration_seconds",
            "shop_orders_total",
            "shop_payload_size_bytes_total",
            "shop_queue_utilization_ratio",
            "target_info",
        ]),
        "translated family names; scrape:\n{}",
        samples.text
    );
    let types = [
        ("shop_orders_total", "counter", "Orders placed."),
        (
            "shop_payload_size_bytes_total",
            "counter",
            "Bytes of order payloads received.",
        ),
        ("shop_cart_items", "gauge", "Items in open carts."),
        (
            "shop_checkout_duration_seconds",
            "histogram",
            "Time to check out.",
        ),
        (
            "shop_queue_utilization_ratio",
            "gauge",
            "Share of the queue in use.",
        ),
        ("target_info", "gauge", "Target metadata"),
    ];
    for (family, kind, help) in types {
        assert_eq!(
            samples.types.get(family).map(String::as_str),
            Some(kind),
            "TYPE of {family}"
        );
        assert_eq!(
            samples.help.get(family).map(String::as_str),
            Some(help),
            "HELP of {family}"
        );
    }
}

/// The receiver's own count of what arrived on `transport`.
fn assert_accepted(samples: &Samples, transport: &str, runs: f64, traces_and_logs: bool) {
    let accepted = |signal: &str| {
        samples
            .get(
                "streamgate_receiver_accepted_items_total",
                &[("signal", signal), ("transport", transport)],
            )
            .unwrap_or(0.0)
    };
    assert_eq!(
        accepted("metrics"),
        DATA_POINTS * runs,
        "data points over {transport}"
    );
    if traces_and_logs {
        assert_eq!(accepted("traces"), SPANS * runs, "spans over {transport}");
        assert_eq!(
            accepted("logs"),
            LOG_RECORDS * runs,
            "log records over {transport}"
        );
    }
    let refused: f64 = samples
        .matching("streamgate_receiver_refused_items_total", &[])
        .iter()
        .map(|(_, v)| v)
        .sum();
    assert_eq!(refused, 0.0, "nothing refused:\n{}", samples.text);
}

/// The SDK's OTLP/gRPC exporters: every instrument arrives translated, and
/// is visible on the very next scrape after the export was acknowledged;
/// spans and log records are counted as accepted.
#[test]
fn grpc_export_translates_every_instrument() {
    let Some(python) = python() else { return };
    let collector = Collector::start();
    send(&python, &collector, &with(&grpc_args(&collector), &[]));
    let samples = collector.scrape();
    assert_instance(&samples, "checkout-1", &Expected::times(1.0));
    // Span metrics come on the connector's next flush.
    let samples = collector.scrape_after_span_calls(3.0);
    assert_families(&samples);
    assert_accepted(&samples, "grpc", 1.0, true);
    assert_span_and_log_metrics(&samples, "checkout-1");
}

/// The script's 3 spans and 2 log records as span metrics and log counts:
/// one call per span name, INTERNAL kind, unset status; one record per
/// severity; no error records.
fn assert_span_and_log_metrics(samples: &Samples, instance: &str) {
    let version = env!("CARGO_PKG_VERSION");
    for span in ["checkout", "reserve-stock", "charge-card"] {
        let labels = [
            ("instance", instance),
            ("job", "shop/checkout"),
            ("otel_scope_name", "streamgate.spanmetrics"),
            ("otel_scope_version", version),
            ("service_name", "checkout"),
            ("span_kind", "SPAN_KIND_INTERNAL"),
            ("span_name", span),
            ("status_code", "STATUS_CODE_UNSET"),
        ];
        assert_eq!(
            samples.get("traces_span_metrics_calls_total", &labels),
            Some(1.0),
            "{span}: {}",
            samples.text
        );
        assert_eq!(
            samples.get("traces_span_metrics_duration_seconds_count", &labels),
            Some(1.0)
        );
        let mut inf = labels.to_vec();
        inf.push(("le", "+Inf"));
        assert_eq!(
            samples.get("traces_span_metrics_duration_seconds_bucket", &inf),
            Some(1.0)
        );
    }
    for severity in ["INFO", "WARN"] {
        let labels = [
            ("instance", instance),
            ("job", "shop/checkout"),
            ("otel_scope_name", "streamgate.logmetrics"),
            ("otel_scope_version", version),
            ("service_name", "checkout"),
            ("severity", severity),
        ];
        assert_eq!(
            samples.get("log_records_total", &labels),
            Some(1.0),
            "{severity}"
        );
    }
    assert!(!samples.has_family("log_error_records_total"));
}

/// The SDK's OTLP/HTTP (protobuf) exporters: the same names, labels and
/// values as over gRPC.
#[test]
fn http_export_translates_every_instrument() {
    let Some(python) = python() else { return };
    let collector = Collector::start();
    send(&python, &collector, &with(&http_args(&collector), &[]));
    let samples = collector.scrape();
    assert_instance(&samples, "checkout-1", &Expected::times(1.0));
    assert_families(&samples);
    assert_accepted(&samples, "http", 1.0, true);
}

/// gzip-compressed exports from both SDK exporters are decompressed and
/// land as separate series per `service.instance.id`.
#[test]
fn gzip_exports_on_both_transports() {
    let Some(python) = python() else { return };
    let collector = Collector::start();
    let grpc = grpc_args(&collector);
    let http = http_args(&collector);
    send(
        &python,
        &collector,
        &with(&grpc, &["--compression", "gzip", "--instance", "gz-grpc"]),
    );
    send(
        &python,
        &collector,
        &with(&http, &["--compression", "gzip", "--instance", "gz-http"]),
    );
    let samples = collector.scrape();
    assert_instance(&samples, "gz-grpc", &Expected::times(1.0));
    assert_instance(&samples, "gz-http", &Expected::times(1.0));
    assert_families(&samples);
    assert_accepted(&samples, "grpc", 1.0, true);
    assert_accepted(&samples, "http", 1.0, true);
}

/// With the SDK's delta temporality preference, counters and histograms
/// from two processes of the same instance accumulate into one cumulative
/// series, while the up-down counter (always cumulative) and the gauge
/// keep their last value.
#[test]
fn delta_exports_accumulate() {
    let Some(python) = python() else { return };
    let collector = Collector::start();
    let http = http_args(&collector);
    let grpc = grpc_args(&collector);
    let delta = ["--temporality", "delta", "--no-traces", "--no-logs"];
    send(&python, &collector, &with(&http, &delta));
    let samples = collector.scrape();
    assert_instance(&samples, "checkout-1", &Expected::times(1.0));
    send(&python, &collector, &with(&grpc, &delta));
    let samples = collector.scrape();
    assert_instance(&samples, "checkout-1", &Expected::times(2.0));
    assert_families(&samples);
    assert_accepted(&samples, "http", 1.0, false);
    assert_accepted(&samples, "grpc", 1.0, false);
}

/// Cumulative exports from a restarted process (a new start time) replace
/// the stored values instead of adding to them.
#[test]
fn cumulative_exports_of_a_restarted_process_replace() {
    let Some(python) = python() else { return };
    let collector = Collector::start();
    let grpc = grpc_args(&collector);
    let quiet = ["--no-traces", "--no-logs"];
    send(&python, &collector, &with(&grpc, &quiet));
    send(&python, &collector, &with(&grpc, &quiet));
    let samples = collector.scrape();
    assert_instance(&samples, "checkout-1", &Expected::times(1.0));
    assert_accepted(&samples, "grpc", 2.0, false);
}

/// The script's exit status is meaningful: with the collector gone, the
/// exporters' failure makes it exit non-zero (so a green test above means
/// the SDK really got a success answer).
#[test]
fn script_fails_when_the_collector_is_down() {
    let Some(python) = python() else { return };
    let mut collector = Collector::start();
    let http = http_args(&collector);
    let grpc = grpc_args(&collector);
    let dir = tempfile::tempdir().expect("temp dir");
    let status = collector.terminate();
    assert!(status.success(), "collector exit after SIGTERM: {status}");
    for args in [&http, &grpc] {
        let run = run_script(
            &python,
            dir.path(),
            &with(args, &["--timeout", "2", "--no-traces", "--no-logs"]),
        );
        assert_eq!(run.code, Some(1), "{}", run.describe());
        assert!(run.stdout.contains("\"ok\": false"), "{}", run.describe());
    }
}
