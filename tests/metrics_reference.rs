//! `docs/METRICS.md` checked against what StreamGate exports, so the
//! metrics reference cannot drift from the code.
//!
//! The reference is every name in backticks in the first cell of a table
//! body row of METRICS.md (a `{label}` suffix is ignored). A name with
//! `<placeholders>` is a template for the families derived from other
//! metrics (`<name>_window_p<q>_<unit>`), each placeholder standing for a
//! run of name characters; a template needs a literal word besides its
//! placeholders.
//!
//! A real collector is fed traces (two services calling each other, with
//! errors and an unpaired call), logs and two gauges through the Rust
//! OpenTelemetry SDK, with the window and analysis processors on short
//! clocks and a threshold, until span metrics, service-graph edges, log
//! counts, windows, baselines, anomaly scores, forecasts and a time to
//! threshold are all on `/metrics`. Then:
//!
//! - every family on `/metrics` (its `# TYPE` line) is in the reference,
//!   except the test's own gauges (translated user metrics are the
//!   translation rules' business, not entries of the reference);
//! - every self-metric name of `streamgate::telemetry::names::ALL` is in
//!   the reference, whether or not it showed up in this run;
//! - every concrete name of the reference still exists: it is a
//!   self-metric, or it was on `/metrics`, or `src/` holds it in quotes,
//!   as it is or as the OTel name it is translated from
//!   (`"streamgate.forecast.lower"` for `streamgate_forecast_lower`).

mod common;

use std::collections::BTreeMap;
use std::path::Path;
use std::time::{Duration, Instant, SystemTime};

use common::{Collector, Options};
use opentelemetry::logs::{AnyValue, LogRecord as _, Logger as _, LoggerProvider as _, Severity};
use opentelemetry::metrics::MeterProvider as _;
use opentelemetry::trace::{
    Span as _, SpanKind, Status, TraceContextExt as _, Tracer as _, TracerProvider as _,
};
use opentelemetry::{Context, KeyValue};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::logs::SdkLoggerProvider;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use opentelemetry_sdk::trace::SdkTracerProvider;
use regex::Regex;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");
const DOC: &str = "docs/METRICS.md";

/// The metrics the test sends itself: translated user metrics, outside
/// the reference.
const SENT: &[&str] = &["queue_depth", "disk_usage_bytes"];

/// Families that must be on `/metrics` before the checks run, so they
/// check every kind of series StreamGate derives.
const EXPECTED: &[&str] = &[
    "target_info",
    "traces_span_metrics_calls_total",
    "traces_span_metrics_duration_seconds",
    "traces_service_graph_request_total",
    "traces_service_graph_request_failed_total",
    "traces_service_graph_request_server_seconds",
    "traces_service_graph_request_client_seconds",
    "traces_service_graph_unpaired_spans_total",
    "log_records_total",
    "log_error_records_total",
    "traces_span_metrics_duration_window_p95_seconds",
    "traces_span_metrics_duration_window_observations",
    "queue_depth_window_p95",
    "disk_usage_window_max_bytes",
    "streamgate_baseline_expected",
    "streamgate_baseline_lower",
    "streamgate_baseline_upper",
    "streamgate_anomaly_score",
    "streamgate_anomaly",
    "streamgate_anomaly_active",
    "streamgate_forecast",
    "streamgate_forecast_lower",
    "streamgate_forecast_upper",
    "streamgate_time_to_threshold_seconds",
    "streamgate_time_to_threshold_confirmed_seconds",
];

/// Windows and analysis on short clocks; the two gauges windowed and
/// analysed, a threshold on the rising one.
const PROCESSORS: &str = "windows:
  interval: 1s
  include: [traces.span.metrics.duration, queue.depth, disk.usage]
analysis:
  step: 250ms
  select:
    - {name: traces.span.metrics.calls}
    - {name: log.error.records}
    - {name: queue.depth}
    - {name: disk.usage}
  thresholds:
    - {name: disk.usage, value: 1000000000}
  horizons: [1s, 2s]
";

/// What METRICS.md documents.
#[derive(Debug, Default)]
struct Reference {
    /// Concrete names with the line they are on.
    names: Vec<(usize, String)>,
    /// Templates (`<name>_window_observations`) as anchored regexes.
    templates: Vec<(String, Regex)>,
}

impl Reference {
    fn parse(text: &str) -> Reference {
        let name = Regex::new(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$").unwrap();
        let template = Regex::new(r"^[a-zA-Z0-9_:<>]+$").unwrap();
        let literal_letter = Regex::new(r"(^|>)[^<]*[a-z]").unwrap();
        let placeholder = Regex::new(r"<[^>]*>").unwrap();
        let mut reference = Reference::default();
        let mut in_fence = false;
        let mut in_table = false;
        for (i, line) in text.lines().enumerate() {
            let trimmed = line.trim_start();
            if trimmed.starts_with("```") {
                in_fence = !in_fence;
                continue;
            }
            if in_fence || !trimmed.starts_with('|') {
                in_table = false;
                continue;
            }
            if !in_table {
                in_table = true; // the header row
                continue;
            }
            let first = trimmed[1..].split('|').next().unwrap_or_default();
            for span in first.split('`').skip(1).step_by(2) {
                let span = span.split('{').next().unwrap_or_default().trim();
                if name.is_match(span) {
                    reference.names.push((i + 1, span.to_string()));
                } else if span.contains('<')
                    && template.is_match(span)
                    && literal_letter.is_match(span)
                {
                    let pattern = placeholder
                        .split(span)
                        .map(regex::escape)
                        .collect::<Vec<_>>()
                        .join("[a-zA-Z0-9_:]+");
                    reference.templates.push((
                        span.to_string(),
                        Regex::new(&format!("^{pattern}$")).unwrap(),
                    ));
                }
            }
        }
        reference
    }

    fn documents(&self, family: &str) -> bool {
        self.names.iter().any(|(_, n)| n == family)
            || self.templates.iter().any(|(_, t)| t.is_match(family))
    }
}

fn read(path: &str) -> String {
    let path = Path::new(ROOT).join(path);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// Every `.rs` and `.yaml` file under `src/`, concatenated.
fn source_text() -> String {
    fn walk(dir: &Path, out: &mut String) {
        let mut entries: Vec<_> = std::fs::read_dir(dir)
            .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
            .map(|e| e.expect("dir entry").path())
            .collect();
        entries.sort();
        for path in entries {
            if path.is_dir() {
                walk(&path, out);
            } else if path
                .extension()
                .is_some_and(|e| e == "rs" || e == "yaml" || e == "yml")
            {
                out.push_str(&std::fs::read_to_string(&path).unwrap_or_default());
                out.push('\n');
            }
        }
    }
    let mut out = String::new();
    walk(&Path::new(ROOT).join("src"), &mut out);
    out
}

/// The strings `src/` may hold for a Prometheus family name, quoted: the
/// name itself, or an OTel name it is translated from (a unit or
/// `_total` suffix dropped, any `_` a `.`).
fn source_forms(name: &str) -> Vec<String> {
    let mut bases = vec![name.to_string()];
    for suffix in ["_total", "_seconds", "_bytes", "_ratio"] {
        if let Some(base) = name.strip_suffix(suffix) {
            bases.push(base.to_string());
        }
    }
    let mut forms = Vec::new();
    for base in bases {
        let gaps: Vec<usize> = base.match_indices('_').map(|(i, _)| i).collect();
        if gaps.len() > 12 {
            forms.push(format!("\"{base}\""));
            continue;
        }
        for mask in 0u32..(1 << gaps.len()) {
            let mut form = base.clone().into_bytes();
            for (bit, &at) in gaps.iter().enumerate() {
                if mask & (1 << bit) != 0 {
                    form[at] = b'.';
                }
            }
            forms.push(format!("\"{}\"", String::from_utf8(form).unwrap()));
        }
    }
    forms
}

/// Families on `/metrics` (name → type) and self-metric names the
/// reference lacks.
fn undocumented(reference: &Reference, families: &BTreeMap<String, String>) -> Vec<String> {
    let mut out = Vec::new();
    for (family, kind) in families {
        if SENT.contains(&family.as_str()) || reference.documents(family) {
            continue;
        }
        out.push(format!(
            "`{family}` is on /metrics but {DOC} does not document it: add a row `| `{family}` | {kind} | <labels> | <meaning> |` to the table of its section"
        ));
    }
    for name in streamgate::telemetry::names::ALL {
        if !reference.documents(name) {
            out.push(format!(
                "`{name}` is a self-metric (telemetry::names::ALL) but {DOC} does not document it: add a row `| `{name}` | <type> | <labels> | <meaning> |` to \"StreamGate's own metrics\""
            ));
        }
    }
    out
}

/// Documented names that nothing produces any more.
fn stale(reference: &Reference, families: &BTreeMap<String, String>, source: &str) -> Vec<String> {
    reference
        .names
        .iter()
        .filter(|(_, name)| {
            !streamgate::telemetry::names::ALL.contains(&name.as_str())
                && !families.contains_key(name)
                && !source_forms(name).iter().any(|f| source.contains(f.as_str()))
        })
        .map(|(line, name)| {
            format!(
                "{DOC}:{line}: `{name}` is documented, but it is no self-metric, was not on /metrics in this test, and src/ has neither \"{name}\" nor an OTel name it comes from: remove its row if StreamGate no longer exports it"
            )
        })
        .collect()
}

/// The families of a text exposition, from its `# TYPE` lines, with
/// their types.
fn families_of(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|rest| rest.split_once(' '))
        .map(|(name, kind)| (name.to_string(), kind.trim().to_string()))
        .collect()
}

fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s) with {DOC}:\n- {}",
        problems.len(),
        problems.join("\n- ")
    );
}

// ---------------------------------------------------------------- traffic

fn resource(service: &str) -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", service.to_string()),
            KeyValue::new("service.instance.id", format!("{service}-1")),
            KeyValue::new("deployment.environment.name", "test"),
        ])
        .build()
}

/// The SDK senders: two services' tracers, a logger and a meter with two
/// gauges, all over OTLP/HTTP protobuf.
struct Traffic {
    frontend: SdkTracerProvider,
    backend: SdkTracerProvider,
    logs: SdkLoggerProvider,
    meters: SdkMeterProvider,
    queue_depth: opentelemetry::metrics::Gauge<f64>,
    disk_usage: opentelemetry::metrics::Gauge<f64>,
}

impl Traffic {
    fn new(collector: &Collector) -> Traffic {
        let tracer =
            |service: &str| common::sdk::http_tracer_provider(collector, resource(service));
        let logs = common::sdk::http_logger_provider(collector, resource("frontend"));
        let meters = common::sdk::http_meter_provider(collector, resource("frontend"));
        let meter = meters.meter("streamgate.metrics-reference-test");
        Traffic {
            frontend: tracer("frontend"),
            backend: tracer("backend"),
            logs,
            queue_depth: meter.f64_gauge("queue.depth").with_unit("{item}").build(),
            disk_usage: meter.f64_gauge("disk.usage").with_unit("By").build(),
            meters,
        }
    }

    /// A server span of the frontend calling the backend (client and
    /// server spans), every third failing; a client call nobody answers;
    /// two log records, one an error; and the two gauges.
    fn round(&self, i: u64) {
        let frontend = self.frontend.tracer("frontend-http");
        let backend = self.backend.tracer("backend-http");
        let t0 = SystemTime::now() - Duration::from_millis(300);
        let ms = |n: u64| t0 + Duration::from_millis(n);
        let mut root = frontend
            .span_builder("GET /checkout")
            .with_kind(SpanKind::Server)
            .with_start_time(t0)
            .start(&frontend);
        let root_cx = Context::new().with_remote_span_context(root.span_context().clone());
        let mut call = frontend
            .span_builder("POST /pay")
            .with_kind(SpanKind::Client)
            .with_start_time(ms(5))
            .start_with_context(&frontend, &root_cx);
        let call_cx = Context::new().with_remote_span_context(call.span_context().clone());
        let mut serve = backend
            .span_builder("POST /pay")
            .with_kind(SpanKind::Server)
            .with_start_time(ms(7))
            .start_with_context(&backend, &call_cx);
        if i.is_multiple_of(3) {
            serve.set_status(Status::error("card declined"));
            root.set_status(Status::error("payment failed"));
        }
        let work = 20 + (i % 7) * 10;
        serve.end_with_timestamp(ms(7 + work));
        call.end_with_timestamp(ms(9 + work));
        root.end_with_timestamp(ms(15 + work));
        let mut lost = frontend
            .span_builder("GET /inventory")
            .with_kind(SpanKind::Client)
            .with_start_time(ms(20))
            .start_with_context(&frontend, &root_cx);
        lost.end_with_timestamp(ms(40));

        let logger = self.logs.logger("frontend-logs");
        for error in [false, true] {
            let mut record = logger.create_log_record();
            let (number, text) = if error {
                (Severity::Error, "ERROR")
            } else {
                (Severity::Info, "INFO")
            };
            record.set_severity_number(number);
            record.set_severity_text(text);
            record.set_body(AnyValue::from("checkout"));
            logger.emit(record);
        }

        self.queue_depth.record(20.0 + (i % 5) as f64, &[]);
        self.disk_usage.record(1e8 + i as f64 * 1e6, &[]);
        self.meters.force_flush().expect("metric flush");
    }

    fn shutdown(self) {
        for provider in [self.frontend, self.backend] {
            let _ = provider.shutdown();
        }
        let _ = self.logs.shutdown();
        let _ = self.meters.shutdown();
    }
}

/// Every family StreamGate put on `/metrics` while fed every signal is
/// documented, so is every self-metric, and every documented name is
/// still produced.
#[test]
fn every_exported_metric_is_documented_and_every_documented_one_exists() {
    let reference = Reference::parse(&read(DOC));
    assert!(
        reference.names.len() > 60 && !reference.templates.is_empty(),
        "{DOC}: too few names found ({} names, {} templates)",
        reference.names.len(),
        reference.templates.len()
    );

    let collector = Collector::start_with(Options {
        processors_extra: PROCESSORS.into(),
        connectors_extra: "servicegraph:\n  wait: 1s".into(),
        ..Default::default()
    });
    let traffic = Traffic::new(&collector);
    let deadline = Instant::now() + Duration::from_secs(90);
    let mut round = 0;
    let exposition = loop {
        traffic.round(round);
        round += 1;
        std::thread::sleep(Duration::from_millis(250));
        let text = collector.scrape_text();
        let families = families_of(&text);
        let missing: Vec<&str> = EXPECTED
            .iter()
            .copied()
            .filter(|f| !families.contains_key(*f))
            .collect();
        if missing.is_empty() {
            break text;
        }
        if Instant::now() > deadline {
            panic!(
                "after {round} rounds of traffic these families never showed on /metrics: {missing:?}\n{}",
                collector.logs()
            );
        }
    };
    traffic.shutdown();
    let families = families_of(&exposition);

    assert_none(undocumented(&reference, &families));
    assert_none(stale(&reference, &families, &source_text()));
}

/// The checks fail on drift, without a collector: a family that is not
/// documented, a self-metric whose row was removed, and a row for a name
/// nothing produces.
#[test]
fn drift_is_caught_with_a_fix_in_the_message() {
    let text = read(DOC);
    let source = source_text();
    let families = families_of(
        "# TYPE streamgate_uptime_seconds gauge\n# TYPE made_up_requests_total counter\n",
    );
    let reference = Reference::parse(&text);
    let problems = undocumented(&reference, &families);
    assert!(
        problems.iter().any(
            |p| p.starts_with("`made_up_requests_total` is on /metrics but")
                && p.contains("| counter |")
        ),
        "{problems:?}"
    );

    let row = text
        .lines()
        .find(|l| l.starts_with("| `streamgate_uptime_seconds` |"))
        .expect("a row for streamgate_uptime_seconds");
    let without = text.replace(&format!("{row}\n"), "");
    let problems = undocumented(&Reference::parse(&without), &BTreeMap::new());
    assert!(
        problems
            .iter()
            .any(|p| p.starts_with("`streamgate_uptime_seconds` is a self-metric")),
        "{problems:?}"
    );

    let with_stale = text.replace(
        &format!("{row}\n"),
        &format!(
            "{row}\n{}\n",
            row.replace("streamgate_uptime_seconds", "streamgate_downtime_seconds")
        ),
    );
    let problems = stale(&Reference::parse(&with_stale), &BTreeMap::new(), &source);
    assert!(
        problems
            .iter()
            .any(|p| p.contains("`streamgate_downtime_seconds` is documented, but")),
        "{problems:?}"
    );
}
