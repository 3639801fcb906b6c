//! The Grafana dashboards in `dashboards/`, checked offline and against a
//! real Prometheus.
//!
//! Offline, `tests/dashboards/validate.mjs` (Node, with the
//! `@grafana/schema`, `ts-json-schema-generator` and `ajv` versions that
//! `tests/dashboards/package-lock.json` pins and `scripts/test` installs)
//! validates every dashboard against Grafana's own dashboard and panel
//! types and lints its datasources, panel ids, targets and metric names
//! (those of docs/METRICS.md); deliberately broken copies must fail.
//!
//! End to end, StreamGate fed by the Rust OpenTelemetry SDK (two services
//! with a client→server call, errors, an unpaired call, logs, a steady gauge
//! that jumps and a rising one with a threshold) is scraped every second by
//! a real Prometheus, and every query of every dashboard (panel targets,
//! annotations and variable queries, with the template variables filled in
//! as Grafana would) must parse and return data, except the few queries of
//! [`MAY_BE_EMPTY`].
//!
//! Without `node`, the installed tooling or `prometheus` the tests skip, or
//! fail when `STREAMGATE_REQUIRE_PEERS=1`.

mod common;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant, SystemTime};

use common::prometheus::Prometheus;
use common::{Collector, Options, find_peer, http_client};
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
use regex::{Captures, Regex};
use serde_json::Value;

const ROOT: &str = env!("CARGO_MANIFEST_DIR");

/// Queries that may return no data here, by a metric they read. Everything
/// else must return data.
const MAY_BE_EMPTY: &[(&str, &str)] = &[
    // Pyroscope pushes: the pprof exporter that counts them is a later
    // issue (the overview's panel says "No data" until then).
    (
        "streamgate_profiling_pushes_total",
        "no pprof push exporter yet",
    ),
];

/// How template variables Grafana defines itself are filled in.
const BUILTINS: &[(&str, &str)] = &[
    ("__rate_interval", "1m"),
    ("__interval", "15s"),
    ("__range", "5m"),
];

/// The analysis and window processors on short clocks, analysing the
/// default selection plus the two gauges the test sends, with a threshold
/// on the rising one, and horizons short enough for forecasts to be out
/// within the test (a forecast shows once 12 have matured).
const PROCESSORS: &str = "windows:
  interval: 1s
analysis:
  step: 250ms
  select:
    - {name: traces.span.metrics.calls}
    - {name: log.error.records}
    - {name: traces.span.metrics.duration.window.p95, labels: {window: 5m}}
    - {name: streamgate.process.resident_memory}
    - {name: streamgate.process.cpu}
    - {name: queue.depth}
    - {name: disk.usage}
  thresholds:
    - {name: disk.usage, value: 1000000000}
  horizons: [2s, 5s]
";

fn dashboard_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(Path::new(ROOT).join("dashboards"))
        .expect("dashboards/")
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "json"))
        .collect();
    files.sort();
    files
}

fn load(path: &Path) -> Value {
    let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// `node`, once the validator's packages are installed; `None` to skip.
fn validator() -> Option<PathBuf> {
    let node = find_peer("node")?;
    let installed =
        Path::new(ROOT).join("tests/dashboards/node_modules/@grafana/schema/package.json");
    if !installed.is_file() {
        let message = "tests/dashboards/node_modules is missing: scripts/test installs it (npm ci in tests/dashboards)";
        if common::peers_required() {
            panic!("{message}");
        }
        eprintln!("SKIPPED: {message}");
        return None;
    }
    Some(node)
}

/// Runs validate.mjs on `files`: whether it passed, and what it printed.
fn validate(node: &Path, files: &[PathBuf]) -> (bool, String) {
    let output = Command::new(node)
        .arg(Path::new(ROOT).join("tests/dashboards/validate.mjs"))
        .args(files)
        .current_dir(ROOT)
        .output()
        .expect("run node");
    (
        output.status.success(),
        format!(
            "{}{}",
            String::from_utf8_lossy(&output.stdout),
            String::from_utf8_lossy(&output.stderr)
        ),
    )
}

/// The three dashboards pass Grafana's schema (from @grafana/schema) and
/// the lint: datasources, ids, targets, variables, documented metrics.
#[test]
fn dashboards_match_grafana_schema_and_documented_metrics() {
    let Some(node) = validator() else {
        return;
    };
    let files = dashboard_files();
    let names: Vec<String> = files
        .iter()
        .map(|f| f.file_name().unwrap().to_string_lossy().into_owned())
        .collect();
    assert_eq!(
        names,
        [
            "streamgate-analytics.json",
            "streamgate-overview.json",
            "streamgate-services-red.json"
        ]
    );
    let (ok, report) = validate(&node, &files);
    println!("{report}");
    assert!(ok, "validate.mjs failed:\n{report}");
    assert!(report.contains("3 passed, 0 failed"), "{report}");
}

/// validate.mjs's report by file stem: each file's `ok …` or `FAILED …`
/// line with the `  - reason` lines under it.
fn report_by_file(report: &str) -> BTreeMap<String, String> {
    let mut sections = BTreeMap::new();
    let mut current = None;
    for line in report.lines() {
        let header = line
            .strip_prefix("ok      ")
            .or_else(|| line.strip_prefix("FAILED  "));
        if let Some(rest) = header {
            let path = rest.split(':').next().unwrap_or_default();
            let stem = Path::new(path).file_stem().unwrap_or_default();
            current = Some(stem.to_string_lossy().into_owned());
        } else if !line.starts_with("  - ") {
            current = None;
            continue;
        }
        if let Some(stem) = &current {
            let section: &mut String = sections.entry(stem.clone()).or_default();
            section.push_str(line);
            section.push('\n');
        }
    }
    sections
}

/// Broken copies of a dashboard fail validation, each for its own reason:
/// Grafana's schema (a wrong type, an unknown panel option, a misspelt
/// target field), a panel without datasource or targets, a repeated panel
/// id, an undocumented metric, and a file that is not JSON. An intact
/// copy passes in the same run.
#[test]
fn validator_rejects_broken_dashboards() {
    let Some(node) = validator() else {
        return;
    };
    let original = load(&Path::new(ROOT).join("dashboards/streamgate-overview.json"));
    // The first stat panel, and the panel after it.
    let index = original["panels"]
        .as_array()
        .unwrap()
        .iter()
        .position(|p| p["type"] == "stat")
        .expect("a stat panel");
    type Breaker = fn(&mut Value, usize);
    let cases: &[(&str, Breaker, &str)] = &[
        (
            "schema-version-text",
            |d, _| d["schemaVersion"] = Value::from("42"),
            "/schemaVersion: must be number",
        ),
        (
            "unknown-option",
            |d, i| d["panels"][i]["options"]["textMod"] = Value::from("auto"),
            "must NOT have additional properties (textMod)",
        ),
        (
            "misspelt-target-field",
            |d, i| d["panels"][i]["targets"][0]["legendformat"] = Value::from("x"),
            "must NOT have additional properties (legendformat)",
        ),
        (
            "no-datasource",
            |d, i| {
                d["panels"][i].as_object_mut().unwrap().remove("datasource");
            },
            "datasource must be",
        ),
        (
            "no-targets",
            |d, i| d["panels"][i]["targets"] = Value::Array(Vec::new()),
            "no targets",
        ),
        (
            "repeated-id",
            |d, i| d["panels"][i + 1]["id"] = d["panels"][i]["id"].clone(),
            "also used by",
        ),
        (
            "undocumented-metric",
            |d, i| {
                d["panels"][i]["targets"][0]["expr"] =
                    Value::from("sum(rate(streamgate_made_up_total[5m]))")
            },
            "metric `streamgate_made_up_total` is not documented in docs/METRICS.md",
        ),
    ];
    let dir = tempfile::tempdir().expect("temp dir");
    let mut files = Vec::new();
    for (name, breaker, _) in cases {
        let mut copy = original.clone();
        copy["uid"] = Value::from(*name);
        breaker(&mut copy, index);
        let path = dir.path().join(format!("{name}.json"));
        std::fs::write(&path, serde_json::to_string_pretty(&copy).unwrap()).unwrap();
        files.push(path);
    }
    let not_json = dir.path().join("not-json.json");
    std::fs::write(&not_json, "{\"panels\": [").unwrap();
    files.push(not_json);
    let intact = dir.path().join("intact.json");
    std::fs::write(&intact, serde_json::to_string_pretty(&original).unwrap()).unwrap();
    files.push(intact);

    let (ok, report) = validate(&node, &files);
    assert!(!ok, "broken dashboards passed:\n{report}");
    let by_file = report_by_file(&report);
    let section = |name: &str| -> &str {
        by_file
            .get(name)
            .unwrap_or_else(|| panic!("{name} not reported:\n{report}"))
    };
    for (name, _, reason) in cases {
        let s = section(name);
        assert!(s.starts_with("FAILED"), "{name} passed:\n{report}");
        assert!(
            s.contains(reason),
            "{name} did not fail with `{reason}`:\n{s}"
        );
    }
    assert!(section("not-json").contains("cannot read"), "{report}");
    assert!(section("intact").starts_with("ok"), "{report}");
    assert!(report.contains("1 passed, 8 failed"), "{report}");
}

// ---------------------------------------------------------------- traffic

fn resource(service: &str) -> Resource {
    Resource::builder_empty()
        .with_attributes([
            KeyValue::new("service.name", service.to_string()),
            KeyValue::new("deployment.environment.name", "test"),
        ])
        .build()
}

fn tracer_provider(collector: &Collector, service: &str) -> SdkTracerProvider {
    common::sdk::http_tracer_provider(collector, resource(service))
}

/// The SDK senders of the test: two services' tracers, the frontend's
/// logger and meter, and its two gauges.
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
        let logs = common::sdk::http_logger_provider(collector, resource("frontend"));
        let meters = common::sdk::http_meter_provider(collector, resource("frontend"));
        let meter = meters.meter("streamgate.dashboards-test");
        let queue_depth = meter
            .f64_gauge("queue.depth")
            .with_unit("{item}")
            .with_description("Items waiting.")
            .build();
        let disk_usage = meter
            .f64_gauge("disk.usage")
            .with_unit("By")
            .with_description("Disk space in use.")
            .build();
        Traffic {
            frontend: tracer_provider(collector, "frontend"),
            backend: tracer_provider(collector, "backend"),
            logs,
            meters,
            queue_depth,
            disk_usage,
        }
    }

    /// One request through both services: the frontend's server span, its
    /// client call and the backend's server span of that call (each
    /// exported on its own, pairing across requests); every fourth one
    /// fails. Plus two log records (every third an error).
    fn request(&self, i: u64) {
        let frontend = self.frontend.tracer("frontend-http");
        let backend = self.backend.tracer("backend-http");
        let failed = i.is_multiple_of(4);
        let t0 = SystemTime::now() - Duration::from_millis(400);
        let millis = |ms: u64| Duration::from_millis(ms);
        let mut root = frontend
            .span_builder("GET /checkout")
            .with_kind(SpanKind::Server)
            .with_start_time(t0)
            .start(&frontend);
        let root_cx = Context::new().with_remote_span_context(root.span_context().clone());
        let mut call = frontend
            .span_builder("POST /pay")
            .with_kind(SpanKind::Client)
            .with_start_time(t0 + millis(5))
            .start_with_context(&frontend, &root_cx);
        let call_cx = Context::new().with_remote_span_context(call.span_context().clone());
        let mut serve = backend
            .span_builder("POST /pay")
            .with_kind(SpanKind::Server)
            .with_start_time(t0 + millis(7))
            .start_with_context(&backend, &call_cx);
        let work = 20 + (i % 7) * 15;
        if failed {
            serve.set_status(Status::error("card declined"));
            root.set_status(Status::error("payment failed"));
        }
        serve.end_with_timestamp(t0 + millis(7 + work));
        call.end_with_timestamp(t0 + millis(9 + work));
        root.end_with_timestamp(t0 + millis(15 + work));

        let logger = self.logs.logger("frontend-logs");
        for error in [false, i.is_multiple_of(3)] {
            let mut record = logger.create_log_record();
            if error {
                record.set_severity_number(Severity::Error);
                record.set_severity_text("ERROR");
                record.set_body(AnyValue::from("payment failed"));
            } else {
                record.set_severity_number(Severity::Info);
                record.set_severity_text("INFO");
                record.set_body(AnyValue::from("checkout served"));
            }
            logger.emit(record);
        }
    }

    /// A client call whose server never reports: unpaired after `wait`.
    fn unpaired_call(&self) {
        let frontend = self.frontend.tracer("frontend-http");
        let t0 = SystemTime::now() - Duration::from_millis(100);
        let mut call = frontend
            .span_builder("GET /inventory")
            .with_kind(SpanKind::Client)
            .with_start_time(t0)
            .start(&frontend);
        call.end_with_timestamp(t0 + Duration::from_millis(30));
    }

    fn gauges(&self, queue_depth: f64, disk_usage: f64) {
        self.queue_depth.record(queue_depth, &[]);
        self.disk_usage.record(disk_usage, &[]);
        self.meters.force_flush().expect("metric flush");
    }

    fn shutdown(self) {
        for provider in [self.frontend, self.backend] {
            provider.force_flush().expect("span flush");
            provider.shutdown().expect("tracer shutdown");
        }
        self.logs.shutdown().expect("logger shutdown");
        self.meters.shutdown().expect("meter shutdown");
    }
}

// ---------------------------------------------------------------- Prometheus

/// A real Prometheus scraping `target` every second (job `streamgate`,
/// `honor_labels: true`).
fn start_prometheus(binary: &Path, target: &str) -> Prometheus {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         scrape_configs:\n\
         \x20 - job_name: streamgate\n    honor_labels: true\n    static_configs:\n      - targets: ['{target}']\n"
    );
    Prometheus::start(binary, &config)
}

impl Prometheus {
    /// Polls `promql` until it returns data.
    fn wait_for(&self, promql: &str) {
        let deadline = Instant::now() + Duration::from_secs(45);
        loop {
            match self.try_query(promql) {
                Ok(r) if !r.is_empty() => return,
                Err(e) => panic!("`{promql}`: {e}"),
                Ok(_) if Instant::now() > deadline => {
                    panic!("no data for `{promql}` in 45 s:\n{}", self.logs())
                }
                Ok(_) => std::thread::sleep(Duration::from_millis(250)),
            }
        }
    }
}

// ---------------------------------------------------------------- queries

/// One query of a dashboard: where it is, and its PromQL with variables.
struct Query {
    place: String,
    expr: String,
}

fn panels(list: &Value) -> Vec<&Value> {
    let mut out = Vec::new();
    for p in list.as_array().into_iter().flatten() {
        out.push(p);
        out.extend(panels(&p["panels"]));
    }
    out
}

/// The PromQL of a Prometheus variable query: `label_values(sel, label)`
/// as `count by (label) (sel)` (the values Grafana lists), `query_result(e)`
/// as `e`.
fn variable_promql(query: &str) -> String {
    let label_values = Regex::new(r"(?s)^\s*label_values\((.*),\s*(\w+)\s*\)\s*$").unwrap();
    let query_result = Regex::new(r"(?s)^\s*query_result\((.*)\)\s*$").unwrap();
    if let Some(c) = label_values.captures(query) {
        format!("count by ({}) ({})", &c[2], &c[1])
    } else if let Some(c) = query_result.captures(query) {
        c[1].to_string()
    } else {
        panic!("unsupported variable query `{query}`")
    }
}

/// Every query of a dashboard: panel targets, annotations, variables.
fn queries(name: &str, d: &Value) -> Vec<Query> {
    let mut out = Vec::new();
    for p in panels(&d["panels"]) {
        for t in p["targets"].as_array().into_iter().flatten() {
            out.push(Query {
                place: format!("{name} panel {} {} {}", p["id"], p["title"], t["refId"]),
                expr: t["expr"].as_str().expect("expr").to_string(),
            });
        }
    }
    for a in d["annotations"]["list"].as_array().into_iter().flatten() {
        if let Some(expr) = a["target"]["expr"].as_str() {
            out.push(Query {
                place: format!("{name} annotation {}", a["name"]),
                expr: expr.to_string(),
            });
        }
    }
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        if v["type"] == "query" {
            out.push(Query {
                place: format!("{name} variable {}", v["name"]),
                expr: variable_promql(v["query"].as_str().expect("variable query")),
            });
        }
    }
    out
}

/// Replaces `$name`, `${name}` and `${name:format}` with `values`; other
/// `$` text (label_replace's `$1`) stays.
fn interpolate(expr: &str, values: &BTreeMap<String, String>) -> String {
    let re = Regex::new(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)").unwrap();
    re.replace_all(expr, |c: &Captures| {
        let name = c.get(1).or_else(|| c.get(2)).unwrap().as_str();
        values
            .get(name)
            .cloned()
            .unwrap_or_else(|| c[0].to_string())
    })
    .into_owned()
}

/// A variable's current value as Grafana writes it into a query: a list
/// as a regex alternation.
fn current(v: &Value) -> Option<String> {
    match &v["current"]["value"] {
        Value::String(s) => Some(s.clone()),
        Value::Array(items) => Some(format!(
            "({})",
            items
                .iter()
                .map(|i| i.as_str().unwrap_or_default())
                .collect::<Vec<_>>()
                .join("|")
        )),
        _ => None,
    }
}

/// An instant-vector sample as Grafana's `query_result()` lists it:
/// `name{a="1",b="2"} value timestamp_ms`.
fn query_result_text(sample: &Value) -> String {
    let labels = sample["metric"].as_object().expect("labels");
    let name = labels["__name__"].as_str().unwrap_or_default();
    let pairs: Vec<String> = labels
        .iter()
        .filter(|(k, _)| *k != "__name__")
        .map(|(k, v)| format!("{k}=\"{}\"", v.as_str().unwrap_or_default()))
        .collect();
    format!(
        "{name}{{{}}} {} {}",
        pairs.join(","),
        sample["value"][1].as_str().unwrap_or_default(),
        (sample["value"][0].as_f64().unwrap_or_default() * 1000.0) as i64
    )
}

/// The values to try for each variable of a dashboard: every option of a
/// `query_result()` variable (panels repeat over them), as Grafana lists
/// them (the query's samples through the variable's regex); All (its
/// `allValue`) for other multi-value variables; the current value of the
/// rest.
fn variable_values(d: &Value, prometheus: &Prometheus) -> BTreeMap<String, Vec<String>> {
    let mut fixed: BTreeMap<String, String> = BUILTINS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    let mut listed = Vec::new();
    for v in d["templating"]["list"].as_array().into_iter().flatten() {
        let name = v["name"].as_str().unwrap().to_string();
        let query = v["query"].as_str().unwrap_or_default();
        if v["type"] == "query" && query.trim_start().starts_with("query_result(") {
            listed.push(v);
        } else if v["includeAll"] == true {
            fixed.insert(name, v["allValue"].as_str().unwrap_or(".*").to_string());
        } else if let Some(value) = current(v) {
            fixed.insert(name, value);
        }
    }
    let mut values: BTreeMap<String, Vec<String>> = fixed
        .iter()
        .map(|(k, v)| (k.clone(), vec![v.clone()]))
        .collect();
    for v in listed {
        let name = v["name"].as_str().unwrap();
        let promql = interpolate(
            &variable_promql(v["query"].as_str().expect("query")),
            &fixed,
        );
        let pattern = v["regex"].as_str().unwrap_or_default();
        let regex = Regex::new(pattern.trim_start_matches('/').trim_end_matches('/'))
            .unwrap_or_else(|e| panic!("variable {name}: regex {pattern}: {e}"));
        let options: Vec<String> = prometheus
            .try_query(&promql)
            .unwrap_or_else(|e| panic!("variable {name}: `{promql}`: {e}"))
            .iter()
            .map(query_result_text)
            .filter_map(|text| {
                regex.captures(&text).map(|c| {
                    c.get(1)
                        .unwrap_or_else(|| c.get(0).unwrap())
                        .as_str()
                        .to_string()
                })
            })
            .collect();
        assert!(
            !options.is_empty(),
            "variable {name} lists nothing: `{promql}`"
        );
        values.insert(name.to_string(), options);
    }
    values
}

/// Every concrete query of a dashboard: one per option of a listed
/// variable it uses.
fn expand(query: &Query, values: &BTreeMap<String, Vec<String>>) -> Vec<String> {
    let first: BTreeMap<String, String> = values
        .iter()
        .map(|(k, v)| (k.clone(), v[0].clone()))
        .collect();
    let used = Regex::new(r"\$\{(\w+)(?::\w+)?\}|\$(\w+)").unwrap();
    let listed = used.captures_iter(&query.expr).find_map(|c| {
        let name = c.get(1).or_else(|| c.get(2)).unwrap().as_str();
        values
            .get(name)
            .filter(|v| v.len() > 1)
            .map(|v| (name.to_string(), v.clone()))
    });
    match listed {
        None => vec![interpolate(&query.expr, &first)],
        Some((name, options)) => options
            .into_iter()
            .map(|option| {
                let mut one = first.clone();
                one.insert(name.clone(), option);
                interpolate(&query.expr, &one)
            })
            .collect(),
    }
}

/// StreamGate fed by the Rust SDK, a real Prometheus scraping it, and
/// every query of every dashboard run through Prometheus' HTTP API: all
/// parse, and all return data except the [`MAY_BE_EMPTY`] ones.
#[test]
fn every_dashboard_query_returns_data_from_real_prometheus() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let collector = Collector::start_with(Options {
        processors_extra: PROCESSORS.into(),
        ..Default::default()
    });
    let prometheus = start_prometheus(&binary, &collector.admin.to_string());
    let traffic = Traffic::new(&collector);

    // A malformed request, for the refusal panels.
    let refused = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff_u8; 16])
        .send()
        .expect("POST /v1/metrics");
    assert_eq!(refused.status(), 400);

    // About 15 s of steady traffic: requests, logs and one point per
    // gauge per round, on the 250 ms analysis step.
    traffic.unpaired_call();
    for i in 0..60_u64 {
        let round = Instant::now();
        traffic.request(i);
        traffic.gauges(
            20.0 + (i % 5) as f64 * 0.5,
            1_000_000.0 + i as f64 * 50_000.0,
        );
        std::thread::sleep(Duration::from_millis(250).saturating_sub(round.elapsed()));
    }
    // The queue jumps to 20× its level, one point at a time, until the
    // analysis flags it (the flag holds while no newer point arrives, so
    // each jump is watched long enough for a step to have taken it: a
    // jump sent before the step that raises the flag would clear it).
    let raised = || {
        collector
            .scrape()
            .matching("streamgate_anomaly", &[("metric", "queue_depth")])
            .first()
            .is_some_and(|(_, v)| *v == 1.0)
    };
    let flagged = (1..=10).any(|jump| {
        traffic.gauges(400.0, 1_000_000.0 + (60 + jump) as f64 * 50_000.0);
        let deadline = Instant::now() + Duration::from_millis(2000);
        loop {
            if raised() {
                return true;
            }
            if Instant::now() > deadline {
                return false;
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    });
    assert!(
        flagged,
        "queue_depth was not flagged:\n{}",
        collector.scrape_text()
    );
    // No newer point from here on (shutting the meter provider down now
    // would export the gauges once more and end the rising edge).

    prometheus.wait_for(r#"streamgate_anomaly{metric="queue_depth"} == 1"#);
    prometheus.wait_for(r#"streamgate_anomaly_active{metric="queue_depth"} == 1"#);
    prometheus
        .wait_for(r#"traces_service_graph_request_total{client="frontend",server="backend"}"#);
    prometheus.wait_for("traces_service_graph_unpaired_spans_total");
    prometheus.wait_for("streamgate_time_to_threshold_seconds");

    let mut total = 0;
    let mut allowed_empty = Vec::new();
    let mut pending: Vec<(String, String)> = Vec::new();
    for file in dashboard_files() {
        let name = file.file_name().unwrap().to_string_lossy().into_owned();
        let d = load(&file);
        let values = variable_values(&d, &prometheus);
        for query in queries(&name, &d) {
            for promql in expand(&query, &values) {
                total += 1;
                pending.push((query.place.clone(), promql));
            }
        }
    }
    // A few queries need a scrape or an analysis step more: retry the
    // empty ones for a while.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut failures;
    loop {
        failures = Vec::new();
        let mut empty = Vec::new();
        for (place, promql) in pending {
            match prometheus.try_query(&promql) {
                Err(e) => failures.push(format!("{place}: does not parse: {e}\n    {promql}")),
                Ok(r) if r.is_empty() => {
                    if let Some((metric, why)) =
                        MAY_BE_EMPTY.iter().find(|(m, _)| promql.contains(m))
                    {
                        allowed_empty.push(format!("{place}: {metric} ({why})"));
                    } else {
                        empty.push((place, promql));
                    }
                }
                Ok(_) => {}
            }
        }
        if empty.is_empty() || Instant::now() > deadline {
            failures.extend(
                empty
                    .iter()
                    .map(|(place, promql)| format!("{place}: no data\n    {promql}")),
            );
            break;
        }
        pending = empty;
        std::thread::sleep(Duration::from_secs(1));
    }
    traffic.shutdown();
    println!("{total} queries run; allowed to be empty:");
    for a in &allowed_empty {
        println!("  {a}");
    }
    assert!(total > 100, "only {total} queries found");
    assert!(
        failures.is_empty(),
        "{} of {total} dashboard queries failed:\n{}\n--- StreamGate /metrics ---\n{}",
        failures.len(),
        failures.join("\n"),
        collector.scrape_text()
    );
}
