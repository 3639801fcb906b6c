//! The shipped Prometheus rules (`rules/*.yml`) end to end, with real
//! peers as a user runs them: StreamGate receives a gauge over OTLP/HTTP
//! JSON (with an injected anomaly) and spans from the Rust OpenTelemetry
//! SDK (with errors and slow calls), and a real Prometheus (Debian's
//! `prometheus`, 2.42) scrapes its `/metrics` with `honor_labels: true`
//! and evaluates a copy of every rule file in which each `for:` is `0s`
//! (the expressions are untouched), so nothing waits for hold times.
//!
//! Checked through Prometheus' HTTP API: every group and rule of the files
//! is loaded, evaluates with health "ok" and no error (also once every
//! series exists); `ServiceAnomaly` is quiet while the gauge is steady,
//! fires for `service="checkout"` with its routing labels and runbook link
//! after the jump, and resolves once StreamGate's own
//! `streamgate_anomaly_active` is back to 0; every recording rule returns
//! data (the SLO ones for the service that sent spans, with the error and
//! slow-call ratios that were sent); the burn-rate alerts fire for that
//! service; `up` is 1 and no StreamGate health alert (`StreamGateTargetDown`
//! included) fires.
//!
//! Without `prometheus` installed the test skips, or fails when
//! `STREAMGATE_REQUIRE_PEERS=1`.

mod common;

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use common::prometheus::{Prometheus, sample_value};
use common::{Collector, Options, find_peer, http_client};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Status, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};
use serde_json::Value;

/// The service whose gauge gets the anomaly.
const ANOMALOUS: &str = "checkout";
/// The service that sends spans (another one, so that the analysis of its
/// error ratio cannot be mistaken for the injected anomaly).
const SPANS: &str = "payments";
const RUNBOOKS: &str = "https://github.com/streamgate/streamgate/blob/main/docs/runbooks.md";

// ---------------------------------------------------------------------------
// The rule files, with every hold time set to 0s.

/// One rule group of the shipped files: name and rule names (alert or
/// record), in file order.
struct Group {
    name: String,
    rules: Vec<String>,
    /// The recording rules' names.
    records: Vec<String>,
}

fn rule_files() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("rules");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == "yml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no rule files in {}", dir.display());
    files
}

/// Writes a copy of every `rules/*.yml` into `dir` with each `for:` set to
/// `0s`, checks the copy parses back to the same expressions, and returns
/// the groups it holds.
fn write_rules_without_hold(dir: &Path) -> Vec<Group> {
    let mut groups = Vec::new();
    for file in rule_files() {
        let text = std::fs::read_to_string(&file).expect("read rule file");
        let original: serde_yaml_ng::Value = serde_yaml_ng::from_str(&text)
            .unwrap_or_else(|e| panic!("parse {}: {e}", file.display()));
        let mut copy = original.clone();
        for group in copy["groups"]
            .as_sequence_mut()
            .expect("a `groups` list")
            .iter_mut()
        {
            for rule in group["rules"]
                .as_sequence_mut()
                .expect("a `rules` list")
                .iter_mut()
            {
                let rule = rule.as_mapping_mut().expect("a rule is a mapping");
                if rule.contains_key("for") {
                    rule.insert("for".into(), "0s".into());
                }
            }
        }
        let out = serde_yaml_ng::to_string(&copy).expect("YAML out");
        let target = dir.join(file.file_name().expect("file name"));
        std::fs::write(&target, &out).expect("write rule copy");

        // The copy differs from the original only in the hold times.
        let reread: serde_yaml_ng::Value = serde_yaml_ng::from_str(&out).expect("reparse copy");
        for (g_orig, g_copy) in original["groups"]
            .as_sequence()
            .unwrap()
            .iter()
            .zip(reread["groups"].as_sequence().unwrap())
        {
            let mut rules = Vec::new();
            let mut records = Vec::new();
            let copied = g_copy["rules"].as_sequence().unwrap();
            let originals = g_orig["rules"].as_sequence().unwrap();
            assert_eq!(copied.len(), originals.len());
            for (r_orig, r_copy) in originals.iter().zip(copied) {
                assert_eq!(r_orig["expr"], r_copy["expr"], "expression kept");
                assert_eq!(r_orig["labels"], r_copy["labels"]);
                assert_eq!(r_orig["annotations"], r_copy["annotations"]);
                if r_orig.get("for").is_some() {
                    assert_eq!(r_copy["for"].as_str(), Some("0s"));
                }
                if let Some(record) = r_orig["record"].as_str() {
                    records.push(record.to_string());
                    rules.push(record.to_string());
                } else {
                    rules.push(r_orig["alert"].as_str().expect("alert name").to_string());
                }
            }
            groups.push(Group {
                name: g_orig["name"].as_str().expect("group name").to_string(),
                rules,
                records,
            });
        }
    }
    groups
}

// ---------------------------------------------------------------------------
// Prometheus.

/// Starts `binary` scraping `target` every second as job `streamgate`
/// with `honor_labels: true`, evaluating the rule files in `rules` every
/// second.
fn start_prometheus(binary: &Path, target: &str, rules: &Path) -> Prometheus {
    let config = format!(
        "global:\n  scrape_interval: 1s\n  scrape_timeout: 1s\n  evaluation_interval: 1s\n\
         rule_files:\n  - '{}/*.yml'\n\
         scrape_configs:\n\
         \x20 - job_name: streamgate\n    honor_labels: true\n    static_configs:\n      - targets: ['{target}']\n",
        rules.display()
    );
    Prometheus::start(binary, &config)
}

impl Prometheus {
    /// The single value of an instant query, if it has exactly one result.
    fn value(&self, promql: &str) -> Option<f64> {
        match self.query(promql).as_slice() {
            [one] => Some(sample_value(one)),
            _ => None,
        }
    }

    /// Active (pending or firing) alerts.
    fn alerts(&self) -> Vec<Value> {
        self.api("/api/v1/alerts", &[])["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Firing alerts called `name` whose `service` label is `service`.
    fn firing(&self, name: &str, service: &str) -> Vec<Value> {
        self.alerts()
            .into_iter()
            .filter(|a| {
                a["state"] == "firing"
                    && a["labels"]["alertname"] == name
                    && a["labels"]["service"] == service
            })
            .collect()
    }

    /// The rule groups Prometheus has loaded.
    fn groups(&self) -> Vec<Value> {
        self.api("/api/v1/rules", &[])["groups"]
            .as_array()
            .cloned()
            .unwrap_or_default()
    }

    /// Panics with `what`, the targets and Prometheus' log.
    fn fail(&self, what: &str) -> ! {
        let targets = self.api("/api/v1/targets", &[]);
        panic!(
            "{what}\ntargets: {targets}\n--- prometheus log ---\n{}",
            self.logs()
        );
    }
}

/// Checks that every group of the files is loaded with all its rules, each
/// evaluated at least once with health "ok" and no error, and that every
/// alert's hold time is the 0s of the copy. `Err` describes the first
/// rule not (yet) in that state.
fn rules_healthy(prometheus: &Prometheus, expected: &[Group]) -> Result<(), String> {
    let loaded = prometheus.groups();
    let mut names: Vec<&str> = loaded.iter().filter_map(|g| g["name"].as_str()).collect();
    names.sort_unstable();
    let mut want: Vec<&str> = expected.iter().map(|g| g.name.as_str()).collect();
    want.sort_unstable();
    if names != want {
        return Err(format!("groups loaded {names:?}, files have {want:?}"));
    }
    for group in expected {
        let got = loaded
            .iter()
            .find(|g| g["name"] == group.name.as_str())
            .expect("listed above");
        if got["lastEvaluation"]
            .as_str()
            .is_none_or(|t| t.starts_with("0001-"))
        {
            return Err(format!("group {} not evaluated yet", group.name));
        }
        let rules = got["rules"].as_array().cloned().unwrap_or_default();
        let rule_names: Vec<&str> = rules.iter().filter_map(|r| r["name"].as_str()).collect();
        if rule_names != group.rules {
            return Err(format!(
                "group {}: rules loaded {rule_names:?}, file has {:?}",
                group.name, group.rules
            ));
        }
        for rule in &rules {
            let error = rule["lastError"].as_str().unwrap_or("");
            if rule["health"] != "ok" || !error.is_empty() {
                return Err(format!(
                    "group {}, rule {}: health {}, lastError {error:?}; query {}",
                    group.name, rule["name"], rule["health"], rule["query"]
                ));
            }
            if rule["type"] == "alerting" && rule["duration"].as_f64() != Some(0.0) {
                return Err(format!(
                    "rule {} holds for {}",
                    rule["name"], rule["duration"]
                ));
            }
        }
    }
    Ok(())
}

// ---------------------------------------------------------------------------
// Senders.

/// An OTLP/JSON gauge `queue.depth` of service `checkout`, stamped now.
fn gauge(value: f64) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"{ANOMALOUS}"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"queue.depth","gauge":{{"dataPoints":[{{"asDouble":{value},"timeUnixNano":"{}"}}]}}}}]}}]}}]}}"#,
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .expect("clock after 1970")
            .as_nanos()
    )
}

fn send_gauge(collector: &Collector, value: f64) {
    let response = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .body(gauge(value))
        .send()
        .expect("POST /v1/metrics");
    assert_eq!(response.status(), 200, "{}", collector.logs());
}

/// Spans of service `payments` sent by the Rust SDK over OTLP/HTTP
/// protobuf every 300 ms until dropped. Each round: four SERVER spans
/// (one with an error status, one of 900 ms, two fast and fine) and one
/// failing CLIENT span to `peer.service=card-gateway`, which the SLO rules
/// must leave out: 1 in 4 calls fail and 1 in 4 are slower than 0.4 s.
struct SpanSender {
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl SpanSender {
    fn start(collector: &Collector) -> SpanSender {
        let endpoint = collector.otlp_http_url("/v1/traces");
        let stop = Arc::new(AtomicBool::new(false));
        let stopped = stop.clone();
        let thread = std::thread::spawn(move || {
            let exporter = SpanExporter::builder()
                .with_http()
                .with_protocol(Protocol::HttpBinary)
                .with_endpoint(endpoint)
                .with_timeout(Duration::from_secs(5))
                .build()
                .expect("span exporter");
            let provider = SdkTracerProvider::builder()
                .with_resource(
                    Resource::builder_empty()
                        .with_attributes([KeyValue::new("service.name", SPANS)])
                        .build(),
                )
                .with_sampler(Sampler::AlwaysOn)
                .with_simple_exporter(exporter)
                .build();
            let tracer = provider.tracer("rules-e2e");
            while !stopped.load(Ordering::Relaxed) {
                let start = SystemTime::now();
                for (name, kind, millis, error) in [
                    ("POST /pay", SpanKind::Server, 900, false),
                    ("POST /pay", SpanKind::Server, 5, false),
                    ("POST /pay", SpanKind::Server, 3, false),
                    ("charge card", SpanKind::Client, 4, true),
                    ("POST /pay", SpanKind::Server, 6, true),
                ] {
                    // The outgoing call names its peer, as instrumented
                    // clients do: the service graph records it as a
                    // virtual-node edge instead of an unpaired half.
                    let attributes = if kind == SpanKind::Client {
                        vec![KeyValue::new("peer.service", "card-gateway")]
                    } else {
                        Vec::new()
                    };
                    let mut span = tracer
                        .span_builder(name)
                        .with_kind(kind)
                        .with_start_time(start)
                        .with_attributes(attributes)
                        .start(&tracer);
                    if error {
                        span.set_status(Status::error("declined"));
                    }
                    span.end_with_timestamp(start + Duration::from_millis(millis));
                }
                std::thread::sleep(Duration::from_millis(300));
            }
            let _ = provider.shutdown();
        });
        SpanSender {
            stop,
            thread: Some(thread),
        }
    }
}

impl Drop for SpanSender {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

// ---------------------------------------------------------------------------

/// StreamGate, the Rust SDK and a real Prometheus running the shipped
/// rules (hold times 0s): all rules healthy, `ServiceAnomaly` quiet while
/// steady, firing for checkout after the jump and resolved after it, SLO
/// recording rules and burn-rate alerts on the spans' service, no
/// StreamGate health alert.
#[test]
fn shipped_rules_evaluate_and_alert_in_real_prometheus() {
    let Some(binary) = find_peer("prometheus") else {
        return;
    };
    let began = Instant::now();
    let collector = Collector::start_with(Options {
        processors_extra: "analysis:\n  select: [{name: queue.depth}]\n  step: 100ms\n  horizons: [1s]\n  series_ttl: 1m\n".into(),
        ..Default::default()
    });
    let rules_dir = tempfile::tempdir().expect("temp dir");
    let groups = write_rules_without_hold(rules_dir.path());
    let prometheus = start_prometheus(&binary, &collector.admin.to_string(), rules_dir.path());
    let _spans = SpanSender::start(&collector);
    // One undecodable request, so that the refusal rules evaluate over
    // real refusal series too (one in hundreds of requests: no alert).
    let refused = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .body("{not json")
        .send()
        .expect("POST /v1/metrics");
    assert_eq!(refused.status(), 400);

    // Steady phase: at least 80 points 100 ms apart, and on until
    // Prometheus has stored several scrapes of the series' anomaly state
    // (the target is discovered a few seconds after start) and the rules
    // have run over them without firing.
    let active = format!(r#"streamgate_anomaly_active{{job="{ANOMALOUS}",metric="queue_depth"}}"#);
    let mut i = 0u32;
    loop {
        send_gauge(&collector, 20.0 + f64::from(i % 5) * 0.5);
        std::thread::sleep(Duration::from_millis(100));
        i += 1;
        if i >= 80
            && i.is_multiple_of(5)
            && prometheus
                .value(&format!("count_over_time({active}[1m])"))
                .is_some_and(|n| n >= 4.0)
            && rules_healthy(&prometheus, &groups).is_ok()
        {
            break;
        }
        if began.elapsed() > Duration::from_secs(40) {
            prometheus.fail(&format!(
                "no steady anomaly state in Prometheus after {i} points; rules: {:?}",
                rules_healthy(&prometheus, &groups)
            ));
        }
    }
    assert_eq!(
        prometheus.value(&format!("max_over_time({active}[1m])")),
        Some(0.0),
        "no anomaly while steady"
    );
    assert!(
        prometheus
            .query(&format!(
                r#"ALERTS{{alertname="ServiceAnomaly",service="{ANOMALOUS}"}}"#
            ))
            .is_empty()
            && prometheus
                .query(&format!(
                    r#"count_over_time(ALERTS{{alertname="ServiceAnomaly",service="{ANOMALOUS}"}}[1m])"#
                ))
                .is_empty(),
        "ServiceAnomaly fired before the jump: {:?}",
        prometheus.alerts()
    );
    assert!(
        !prometheus
            .alerts()
            .iter()
            .any(|a| a["labels"]["alertname"] == "ServiceAnomaly"
                && a["labels"]["service"] == ANOMALOUS),
        "no ServiceAnomaly pending or firing for {ANOMALOUS} before the jump"
    );
    let steady_secs = began.elapsed().as_secs_f64();

    // The anomaly: a jump to 20× the level, held until the alert fires.
    let jumped = Instant::now();
    let mut fired = Vec::new();
    let mut n = 0u32;
    while fired.is_empty() {
        send_gauge(&collector, 400.0);
        std::thread::sleep(Duration::from_millis(100));
        n += 1;
        fired = prometheus.firing("ServiceAnomaly", ANOMALOUS);
        if fired.is_empty() && jumped.elapsed() > Duration::from_secs(15) {
            prometheus.fail(&format!(
                "ServiceAnomaly did not fire for {ANOMALOUS} within 15 s of the jump; \
                 StreamGate has {:?}; Prometheus has {:?}; alerts {:?}",
                collector.scrape().matching(
                    "streamgate_anomaly_active",
                    &[("job", ANOMALOUS), ("metric", "queue_depth")]
                ),
                prometheus.query(&active),
                prometheus.alerts()
            ));
        }
    }
    let fire_secs = jumped.elapsed().as_secs_f64();
    assert_eq!(fired.len(), 1, "one alert: {fired:?}");
    let alert = &fired[0];
    let labels = alert["labels"].as_object().expect("labels");
    assert_eq!(labels["alertname"], "ServiceAnomaly");
    assert_eq!(labels["service"], ANOMALOUS);
    assert_eq!(labels["job"], ANOMALOUS);
    assert_eq!(labels["metric"], "queue_depth");
    assert_eq!(labels["severity"], "warning");
    assert!(
        !labels.contains_key("instance") && !labels.contains_key("team"),
        "instance is aggregated away, an empty team dropped: {labels:?}"
    );
    assert_eq!(
        alert["annotations"]["runbook_url"],
        format!("{RUNBOOKS}#serviceanomaly")
    );
    assert_eq!(
        alert["annotations"]["summary"],
        format!("Anomaly in queue_depth of {ANOMALOUS}")
    );
    let score: f64 = alert["value"]
        .as_str()
        .and_then(|v| v.parse().ok())
        .expect("a value");
    assert!(
        (0.0..=1.0).contains(&score),
        "the value is the score: {alert}"
    );
    let runbooks =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/runbooks.md"))
            .expect("docs/runbooks.md");
    assert!(
        runbooks.contains("\n## ServiceAnomaly\n"),
        "runbook section"
    );
    // The widespread alert needs 3 anomalous series of the service.
    assert!(
        prometheus
            .firing("ServiceAnomalyWidespread", ANOMALOUS)
            .is_empty()
    );

    // The anomaly ends: the new level, held until StreamGate's anomaly
    // state is 0 again, then until Prometheus has seen it.
    let resolving = Instant::now();
    let mut calm_at = None;
    loop {
        send_gauge(&collector, 400.0);
        std::thread::sleep(Duration::from_millis(100));
        n += 1;
        if calm_at.is_none() && n.is_multiple_of(3) {
            let state = collector.scrape().matching(
                "streamgate_anomaly_active",
                &[("job", ANOMALOUS), ("metric", "queue_depth")],
            );
            if state.len() == 1 && state[0].1 == 0.0 {
                calm_at = Some(Instant::now());
            }
        }
        if let Some(at) = calm_at
            && n.is_multiple_of(3)
            && prometheus.firing("ServiceAnomaly", ANOMALOUS).is_empty()
        {
            assert!(
                prometheus.value(&active) == Some(0.0),
                "resolved while Prometheus' anomaly state is 0: {:?}",
                prometheus.query(&active)
            );
            // A scrape and an evaluation a second apart; a few of each
            // on a loaded machine.
            assert!(
                at.elapsed() < Duration::from_secs(10),
                "resolved within a few evaluations of the end"
            );
            break;
        }
        if resolving.elapsed() > Duration::from_secs(30) {
            prometheus.fail(&format!(
                "ServiceAnomaly still firing 30 s after the jump was held (StreamGate calm: {}); alerts {:?}",
                calm_at.is_some(),
                prometheus.alerts()
            ));
        }
    }
    let resolve_secs = resolving.elapsed().as_secs_f64();
    let calm_secs = calm_at.map_or(0.0, |at| (at - jumped).as_secs_f64());

    // Every rule, now evaluated over every series: healthy.
    if let Err(problem) = rules_healthy(&prometheus, &groups) {
        prometheus.fail(&problem);
    }

    // Every recording rule returns data: the SLO ones for the service
    // that sent spans, the anomaly count for the gauge's service.
    let records: Vec<&String> = groups.iter().flat_map(|g| &g.records).collect();
    assert!(!records.is_empty());
    for record in records {
        let (job, label) = if record.starts_with("job_service_name_team:") {
            (SPANS, format!(r#"service_name="{SPANS}""#))
        } else {
            (ANOMALOUS, String::new())
        };
        let selector = format!(r#"{record}{{job="{job}",{label}}}"#);
        let result = prometheus.query(&selector);
        assert_eq!(
            result.len(),
            1,
            "`{selector}` returns one series: {result:?}"
        );
        let value = sample_value(&result[0]);
        assert!(value.is_finite(), "{selector} = {value}");
    }
    let slo = |record: &str| {
        prometheus
            .value(&format!(
                r#"job_service_name_team:{record}{{job="{SPANS}",service_name="{SPANS}"}}"#
            ))
            .expect("one series")
    };
    // 1 in 4 SERVER calls failed (the failing CLIENT span is not counted).
    let errors = slo("span_errors_per_call:ratio_rate5m");
    assert!((0.15..=0.35).contains(&errors), "error ratio {errors}");
    // 1 in 4 SERVER calls took longer than 0.4 s.
    let slow = slo("span_slow_calls_per_call:ratio_rate5m");
    assert!((0.15..=0.35).contains(&slow), "slow-call ratio {slow}");
    assert_eq!(slo("span_availability_objective:ratio"), 0.999);
    assert_eq!(slo("span_latency_objective:ratio"), 0.99);
    assert_eq!(
        prometheus.value(&format!(
            r#"job_team:streamgate_anomaly_active:sum{{job="{ANOMALOUS}"}}"#
        )),
        Some(0.0)
    );

    // With a quarter of the calls failing and a quarter slow, every burn
    // rate is far above its factor: all SLO alerts fire for the service.
    for name in [
        "ServiceAvailabilityBurnRate1h",
        "ServiceAvailabilityBurnRate6h",
        "ServiceAvailabilityBurnRate1d",
        "ServiceAvailabilityBurnRate3d",
        "ServiceLatencyBurnRate1h",
        "ServiceLatencyBurnRate6h",
        "ServiceLatencyBurnRate1d",
        "ServiceLatencyBurnRate3d",
    ] {
        let fired = prometheus.firing(name, SPANS);
        assert_eq!(
            fired.len(),
            1,
            "{name} for {SPANS}: {:?}",
            prometheus.alerts()
        );
        let labels = &fired[0]["labels"];
        assert_eq!(labels["service_name"], SPANS);
        let severity = if name.ends_with("1h") || name.ends_with("6h") {
            "critical"
        } else {
            "warning"
        };
        assert_eq!(labels["severity"], severity, "{name}");
        assert_eq!(
            fired[0]["annotations"]["runbook_url"],
            format!("{RUNBOOKS}#{}", name.to_lowercase())
        );
    }

    // StreamGate itself is scraped and healthy: no health alert fires.
    assert_eq!(
        prometheus.value(r#"up{job="streamgate"}"#),
        Some(1.0),
        "{}",
        prometheus.logs()
    );
    let health: Vec<Value> = prometheus
        .alerts()
        .into_iter()
        .filter(|a| {
            a["labels"]["alertname"]
                .as_str()
                .is_some_and(|n| n.starts_with("StreamGate"))
        })
        .collect();
    assert!(health.is_empty(), "StreamGate health alerts: {health:?}");
    assert!(
        prometheus
            .query(r#"ALERTS{alertname="StreamGateTargetDown"}"#)
            .is_empty()
    );

    eprintln!(
        "rules_e2e: steady phase {steady_secs:.1} s, fired {fire_secs:.1} s after the jump, \
         StreamGate calm {calm_secs:.1} s after the jump, alert resolved {resolve_secs:.1} s \
         after firing; SLO error ratio {errors:.3}, slow-call ratio {slow:.3}; total {:.1} s",
        began.elapsed().as_secs_f64()
    );
}
