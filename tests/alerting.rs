//! Built-in alerting end to end with a real Alertmanager (Debian
//! `prometheus-alertmanager`), routed by the shipped
//! `deploy/alertmanager/alertmanager.yml` (checked with `amtool
//! check-config`) to a webhook receiver this test runs: an anomaly pushed
//! by StreamGate arrives firing with its routing labels and resolves when
//! the anomaly ends; a manual alert created and resolved through the API
//! does the same. Also the API's answers to bad requests.

mod common;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::{Collector, Options, find_peer, free_port, http_client, peers_required};

/// Requests the webhook received: (path, JSON body).
type Received = Arc<Mutex<Vec<(String, serde_json::Value)>>>;

/// A minimal HTTP server that records every POST and answers 200.
fn webhook() -> (String, Received) {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind webhook");
    let url = format!("http://{}", listener.local_addr().expect("addr"));
    let received: Received = Arc::default();
    let sink = received.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().expect("clone"));
            let mut request_line = String::new();
            if reader.read_line(&mut request_line).is_err() {
                continue;
            }
            let path = request_line
                .split_whitespace()
                .nth(1)
                .unwrap_or("")
                .to_string();
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            if let Ok(json) = serde_json::from_slice(&body) {
                sink.lock().unwrap().push((path, json));
            }
            let _ = stream
                .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
        }
    });
    (url, received)
}

/// A running Alertmanager, stopped on drop.
struct Alertmanager {
    child: Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Drop for Alertmanager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// The shipped config with the webhook URLs pointed at `webhook` and the
/// grouping waits shortened for a test.
fn test_config(webhook: &str) -> String {
    let shipped = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/deploy/alertmanager/alertmanager.yml"
    ))
    .expect("shipped config");
    let mut config: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&shipped.replace("http://127.0.0.1:5001", webhook)).expect("yaml");
    let route = &mut config["route"];
    route["group_wait"] = "1s".into();
    route["group_interval"] = "1s".into();
    if let Some(routes) = route["routes"].as_sequence_mut() {
        for r in routes {
            if r.get("group_wait").is_some() {
                r["group_wait"] = "1s".into();
            }
        }
    }
    serde_yaml_ng::to_string(&config).expect("yaml out")
}

fn start_alertmanager(binary: &Path, amtool: Option<&Path>, webhook: &str) -> Alertmanager {
    start_alertmanager_on(binary, amtool, webhook, free_port())
}

fn start_alertmanager_on(
    binary: &Path,
    amtool: Option<&Path>,
    webhook: &str,
    port: u16,
) -> Alertmanager {
    let dir = tempfile::tempdir().expect("temp dir");
    let config = dir.path().join("alertmanager.yml");
    std::fs::write(&config, test_config(webhook)).expect("write config");
    if let Some(amtool) = amtool {
        for file in [
            config.as_path(),
            Path::new(concat!(
                env!("CARGO_MANIFEST_DIR"),
                "/deploy/alertmanager/alertmanager.yml"
            )),
        ] {
            let out = Command::new(amtool)
                .arg("check-config")
                .arg(file)
                .output()
                .expect("amtool");
            assert!(
                out.status.success(),
                "amtool check-config {}: {}{}",
                file.display(),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr)
            );
        }
    }
    let child = Command::new(binary)
        .arg(format!("--config.file={}", config.display()))
        .arg(format!(
            "--storage.path={}",
            dir.path().join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--cluster.listen-address=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(dir.path().join("am.log")).expect("log"))
        .spawn()
        .expect("start alertmanager");
    let log = dir.path().join("am.log");
    let mut am = Alertmanager {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _dir: dir,
    };
    // A loaded two-core machine can take a while to start it; a start
    // that failed says so in its log.
    let deadline = Instant::now() + Duration::from_secs(READY_SECS);
    while Instant::now() < deadline {
        if http_client()
            .get(format!("{}/-/ready", am.url))
            .send()
            .is_ok_and(|r| r.status().is_success())
        {
            return am;
        }
        if let Ok(Some(status)) = am.child.try_wait() {
            panic!(
                "alertmanager exited ({status}) before it was ready:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "alertmanager not ready in {READY_SECS} s:\n{}",
        std::fs::read_to_string(&log).unwrap_or_default()
    );
}

/// How long a started Alertmanager may take to answer `/-/ready`.
const READY_SECS: u64 = 60;

/// The alerts of every webhook notification so far: (status, labels).
fn notified(received: &Received) -> Vec<(String, serde_json::Value)> {
    received
        .lock()
        .unwrap()
        .iter()
        .flat_map(|(_, body)| body["alerts"].as_array().cloned().unwrap_or_default())
        .map(|a| {
            (
                a["status"].as_str().unwrap_or("").to_string(),
                a["labels"].clone(),
            )
        })
        .collect()
}

fn wait_for(
    what: &str,
    received: &Received,
    secs: u64,
    check: impl Fn(&[(String, serde_json::Value)]) -> bool,
) {
    let deadline = Instant::now() + Duration::from_secs(secs);
    while Instant::now() < deadline {
        if check(&notified(received)) {
            return;
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    panic!(
        "{what} within {secs} s; webhook got {:#?}",
        received.lock().unwrap()
    );
}

fn gauge(value: f64) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"queue.depth","gauge":{{"dataPoints":[{{"asDouble":{value},"timeUnixNano":"{}"}}]}}}}]}}]}}]}}"#,
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_nanos()
    )
}

fn json(r: reqwest::blocking::Response) -> serde_json::Value {
    serde_json::from_slice(&r.bytes().unwrap()).unwrap()
}

fn peers() -> Option<(std::path::PathBuf, Option<std::path::PathBuf>)> {
    match find_peer("prometheus-alertmanager").or_else(|| find_peer("alertmanager")) {
        Some(am) => Some((am, find_peer("amtool"))),
        None => {
            assert!(!peers_required(), "prometheus-alertmanager is required");
            eprintln!("skipped: no alertmanager installed");
            None
        }
    }
}

#[test]
fn anomaly_alert_reaches_alertmanager_and_resolves() {
    let Some((binary, amtool)) = peers() else {
        return;
    };
    assert!(amtool.is_some() || !peers_required(), "amtool is required");
    let (hook, received) = webhook();
    let am = start_alertmanager(&binary, amtool.as_deref(), &hook);
    let collector = Collector::start_with(Options {
        processors_extra: "analysis:\n  select: [{name: queue.depth}]\n  step: 100ms\n  horizons: [1s]\n  series_ttl: 1m\n".into(),
        exporters_extra: format!(
            "alertmanager:\n  url: {}\n  evaluation_interval: 100ms\n  resend_interval: 1s\n  attempts: 2\n",
            am.url
        ),
        ..Default::default()
    });
    let send = |v: f64| {
        let r = http_client()
            .post(collector.otlp_http_url("/v1/metrics"))
            .header("Content-Type", "application/json")
            .body(gauge(v))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    };
    // About 80 points of history first: the likelihood needs a long-run
    // distribution of its raw scores before a jump stands out.
    for i in 0..80 {
        send(20.0 + (i % 5) as f64 * 0.5);
        std::thread::sleep(Duration::from_millis(100));
    }
    // The anomaly: a jump, held until the alert is out.
    let deadline = Instant::now() + Duration::from_secs(20);
    let mut active = Vec::new();
    while Instant::now() < deadline && active.is_empty() {
        send(400.0);
        std::thread::sleep(Duration::from_millis(150));
        let body: serde_json::Value = http_client()
            .get(collector.url("/api/v1/alerts"))
            .send()
            .unwrap()
            .bytes()
            .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
            .unwrap();
        // StreamGate's own memory may be flagged while it warms up: only
        // the checkout alert matters here.
        active = body["alerts"]
            .as_array()
            .cloned()
            .unwrap_or_default()
            .into_iter()
            .filter(|a| a["labels"]["service"] == "checkout")
            .collect();
    }
    assert_eq!(active.len(), 1, "one alert: {active:?}");
    let alert = &active[0];
    assert_eq!(alert["labels"]["alertname"], "StreamGateAnomaly");
    assert_eq!(alert["labels"]["service"], "checkout");
    assert_eq!(alert["labels"]["severity"], "warning");
    assert_eq!(alert["labels"]["metric"], "queue_depth");
    assert!(
        alert["annotations"]["runbook_url"]
            .as_str()
            .is_some_and(|u| u.ends_with("docs/runbooks.md#streamgateanomaly"))
    );
    // Alertmanager routed it (warning → the ticket receiver).
    wait_for("the firing anomaly at the webhook", &received, 20, |n| {
        n.iter().any(|(status, labels)| {
            status == "firing"
                && labels["alertname"] == "StreamGateAnomaly"
                && labels["service"] == "checkout"
        })
    });
    assert!(
        received
            .lock()
            .unwrap()
            .iter()
            .any(|(path, _)| path == "/ticket"),
        "warnings go to the ticket receiver"
    );
    // Alertmanager holds it with StreamGate's generatorURL.
    let held: serde_json::Value = http_client()
        .get(format!("{}/api/v2/alerts", am.url))
        .send()
        .unwrap()
        .bytes()
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
        .unwrap();
    let id = alert["id"].as_str().unwrap();
    assert!(
        held.as_array().unwrap().iter().any(|a| a["generatorURL"]
            .as_str()
            .is_some_and(|u| u.ends_with(&format!("/api/v1/alerts/{id}")))),
        "{held}"
    );

    // The anomaly ends: back to the usual level until the alert resolves.
    let deadline = Instant::now() + Duration::from_secs(40);
    while Instant::now() < deadline
        && !notified(&received)
            .iter()
            .any(|(s, l)| s == "resolved" && l["alertname"] == "StreamGateAnomaly")
    {
        send(400.0);
        std::thread::sleep(Duration::from_millis(100));
    }
    wait_for("the resolved anomaly at the webhook", &received, 5, |n| {
        n.iter()
            .any(|(s, l)| s == "resolved" && l["alertname"] == "StreamGateAnomaly")
    });
    let history: serde_json::Value = http_client()
        .get(collector.url("/api/v1/alerts/history"))
        .send()
        .unwrap()
        .bytes()
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
        .unwrap();
    let ended = history["alerts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|a| a["id"] == id)
        .expect("the anomaly alert in the history");
    assert!(ended["ends_at"].as_f64().is_some());
    let metrics = collector.scrape();
    assert!(
        metrics
            .get(
                "streamgate_alerting_notifications_total",
                &[("outcome", "sent")]
            )
            .is_some_and(|v| v >= 2.0),
        "{}",
        metrics.text
    );
    assert_eq!(
        metrics.get(
            "streamgate_alerting_notifications_total",
            &[("outcome", "failed")]
        ),
        Some(0.0)
    );
}

#[test]
fn manual_alert_fires_and_resolves_through_the_api() {
    let Some((binary, amtool)) = peers() else {
        return;
    };
    let (hook, received) = webhook();
    let am = start_alertmanager(&binary, amtool.as_deref(), &hook);
    let collector = Collector::start_with(Options {
        exporters_extra: format!(
            "alertmanager:\n  url: {}\n  evaluation_interval: 100ms\n  resend_interval: 1s\n",
            am.url
        ),
        ..Default::default()
    });
    let client = http_client();
    let post = |body: &str| {
        client
            .post(collector.url("/api/v1/alerts"))
            .header("Content-Type", "application/json")
            .body(body.to_string())
            .send()
            .unwrap()
    };
    // Bad requests are 400 with a reason, and create nothing.
    for (body, needle) in [
        (r#"{"labels": {}}"#, "alertname"),
        (
            r#"{"labels": {"alertname": "X"}, "severity": "huge"}"#,
            "severity",
        ),
        (r#"{"labels": {"alert-name": "X"}}"#, "valid label"),
        (
            r#"{"labels": {"alertname": "X"}, "endsAt": "soon"}"#,
            "RFC 3339",
        ),
        ("not json", "valid alert"),
    ] {
        let r = post(body);
        assert_eq!(r.status(), 400, "{body}");
        let text = r.text().unwrap();
        assert!(text.contains(needle), "{body}: {text}");
    }
    let r = post(
        r#"{"labels": {"alertname": "DiskAlmostFull", "service": "db", "team": "storage"}, "annotations": {"summary": "disk at 91%"}, "severity": "critical"}"#,
    );
    assert_eq!(r.status(), 201);
    let created = json(r);
    let id = created["id"].as_str().unwrap().to_string();
    wait_for(
        "the manual alert on the page receiver",
        &received,
        20,
        |n| {
            n.iter().any(|(s, l)| {
                s == "firing" && l["alertname"] == "DiskAlmostFull" && l["severity"] == "critical"
            })
        },
    );
    assert!(
        received.lock().unwrap().iter().any(|(p, _)| p == "/page"),
        "critical goes to the page receiver"
    );
    let one: serde_json::Value = client
        .get(collector.url(&format!("/api/v1/alerts/{id}")))
        .send()
        .unwrap()
        .bytes()
        .map(|b| serde_json::from_slice::<serde_json::Value>(&b).unwrap())
        .unwrap();
    assert_eq!(one["labels"]["team"], "storage");

    let r = client
        .post(collector.url(&format!("/api/v1/alerts/{id}/resolve")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    wait_for("the manual alert resolved", &received, 20, |n| {
        n.iter()
            .any(|(s, l)| s == "resolved" && l["alertname"] == "DiskAlmostFull")
    });
    let r = client
        .post(collector.url(&format!("/api/v1/alerts/{id}/resolve")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404, "already resolved");
    let r = client
        .get(collector.url("/api/v1/alerts/0123456789abcdef"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 404);
}

/// An unreachable Alertmanager costs nothing but counted failures: ingest
/// and the API keep answering.
#[test]
fn unreachable_alertmanager_is_counted_not_blocking() {
    let port = free_port();
    let collector = Collector::start_with(Options {
        exporters_extra: format!(
            "alertmanager:\n  url: http://127.0.0.1:{port}\n  evaluation_interval: 100ms\n  resend_interval: 200ms\n  attempts: 1\n  timeout: 500ms\n"
        ),
        ..Default::default()
    });
    let r = http_client()
        .post(collector.url("/api/v1/alerts"))
        .header("Content-Type", "application/json")
        .body(r#"{"labels": {"alertname": "X"}}"#)
        .send()
        .unwrap();
    assert_eq!(r.status(), 201);
    let s = collector.scrape_until("a failed notification", |s| {
        s.get(
            "streamgate_alerting_notifications_total",
            &[("outcome", "failed")],
        )
        .is_some_and(|v| v >= 1.0)
    });
    assert_eq!(
        s.get(
            "streamgate_alerting_notifications_total",
            &[("outcome", "sent")]
        ),
        Some(0.0)
    );
    let r = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/json")
        .body(gauge(1.0))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
}

/// Alertmanager is down when alerts fire and resolve: the notifications
/// fail (bounded retries, counted), ingest goes on at full speed, and once
/// Alertmanager is up the periodic re-send delivers the alert still active
/// and the one resolved meanwhile. The outage lasts `STREAMGATE_OUTAGE_SECS`
/// (default 8; the figures in docs/RELIABILITY.md are from a 180 s run).
#[test]
fn alerts_raised_during_an_alertmanager_outage_arrive_after_it() {
    let Some((binary, _)) = peers() else {
        return;
    };
    let outage = Duration::from_secs(
        std::env::var("STREAMGATE_OUTAGE_SECS")
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(8),
    );
    let (hook, received) = webhook();
    let port = free_port();
    let collector = Collector::start_with(Options {
        exporters_extra: format!(
            "alertmanager:\n  url: http://127.0.0.1:{port}\n  evaluation_interval: 200ms\n  resend_interval: 1s\n  attempts: 2\n  timeout: 500ms\n"
        ),
        ..Default::default()
    });
    let create = |name: &str| -> String {
        let r = http_client()
            .post(collector.url("/api/v1/alerts"))
            .header("Content-Type", "application/json")
            .body(format!(
                r#"{{"labels": {{"alertname": "{name}", "service": "db"}}, "severity": "warning"}}"#
            ))
            .send()
            .unwrap();
        assert_eq!(r.status(), 201);
        json(r)["id"].as_str().unwrap().to_string()
    };
    let started = Instant::now();
    create("StillFiring");
    let gone = create("ResolvedDuringOutage");
    let r = http_client()
        .post(collector.url(&format!("/api/v1/alerts/{gone}/resolve")))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // Ingest during the outage: every request answered, none slow.
    let mut slowest = Duration::ZERO;
    while started.elapsed() < outage {
        let sent = Instant::now();
        let r = http_client()
            .post(collector.otlp_http_url("/v1/metrics"))
            .header("Content-Type", "application/json")
            .body(gauge(1.0))
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
        slowest = slowest.max(sent.elapsed());
        std::thread::sleep(Duration::from_millis(100));
    }
    assert!(
        slowest < Duration::from_secs(1),
        "ingest waited {slowest:?}"
    );
    let failed = collector
        .scrape()
        .get(
            "streamgate_alerting_notifications_total",
            &[("outcome", "failed")],
        )
        .unwrap_or(0.0);
    assert!(failed >= 1.0, "failures are counted");

    let _am = start_alertmanager_on(&binary, None, &hook, port);
    let back = Instant::now();
    wait_for(
        "both alerts, one firing and one resolved, after the outage",
        &received,
        30,
        |n| {
            n.iter()
                .any(|(s, l)| s == "firing" && l["alertname"] == "StillFiring")
                && n.iter()
                    .any(|(s, l)| s == "resolved" && l["alertname"] == "ResolvedDuringOutage")
        },
    );
    let s = collector.scrape();
    let sent = s.get(
        "streamgate_alerting_notifications_total",
        &[("outcome", "sent")],
    );
    assert!(sent.is_some_and(|v| v >= 1.0));
    eprintln!(
        "outage {outage:?}: {failed} notifications failed, slowest ingest request {slowest:?}; \
         delivered {:?} after Alertmanager was ready; {} sent, {:?} dropped",
        back.elapsed(),
        sent.unwrap_or(0.0),
        s.get(
            "streamgate_alerting_notifications_total",
            &[("outcome", "dropped")]
        )
    );
}

/// The shipped config's inhibition, in a real Alertmanager: a widespread
/// anomaly mutes the single-series anomalies of its service, a fast SLO
/// burn mutes the slow burn of the same objective and service, and a
/// critical alert mutes nothing else (another series' forecast, another
/// objective, another service).
#[test]
fn the_shipped_inhibition_mutes_only_what_a_critical_alert_covers() {
    let Some((binary, amtool)) = peers() else {
        return;
    };
    let (hook, _received) = webhook();
    let am = start_alertmanager(&binary, amtool.as_deref(), &hook);
    let alerts = [
        ("ServiceAnomalyWidespread", "critical", "checkout", ""),
        ("ServiceAnomaly", "warning", "checkout", "latency"),
        ("ServiceAnomaly", "warning", "search", "latency"),
        ("ServiceAvailabilityBurnRate1h", "critical", "checkout", ""),
        ("ServiceAvailabilityBurnRate1d", "warning", "checkout", ""),
        ("ServiceLatencyBurnRate3d", "warning", "checkout", ""),
        (
            "StreamGateForecastBreach",
            "critical",
            "checkout",
            "disk_used",
        ),
        (
            "StreamGateForecastBreach",
            "warning",
            "checkout",
            "queue_depth",
        ),
    ];
    let body: Vec<serde_json::Value> = alerts
        .iter()
        .map(|(name, severity, service, metric)| {
            serde_json::json!({"labels": {
                "alertname": name, "severity": severity, "service": service, "metric": metric,
            }})
        })
        .collect();
    let r = http_client()
        .post(format!("{}/api/v2/alerts", am.url))
        .header("Content-Type", "application/json")
        .body(serde_json::to_vec(&body).unwrap())
        .send()
        .unwrap();
    assert!(r.status().is_success(), "{}", r.status());
    let expected_muted = |name: &str, service: &str| {
        matches!(
            (name, service),
            ("ServiceAnomaly", "checkout") | ("ServiceAvailabilityBurnRate1d", "checkout")
        )
    };
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let listed = json(
            http_client()
                .get(format!("{}/api/v2/alerts", am.url))
                .send()
                .unwrap(),
        );
        let states: Vec<(String, String, String, String)> = listed
            .as_array()
            .unwrap()
            .iter()
            .map(|a| {
                let label = |k: &str| a["labels"][k].as_str().unwrap_or("").to_string();
                (
                    label("alertname"),
                    label("service"),
                    label("metric"),
                    a["status"]["state"].as_str().unwrap_or("").to_string(),
                )
            })
            .collect();
        let right = states.len() == alerts.len()
            && states.iter().all(|(name, service, _, state)| {
                let want = if expected_muted(name, service) {
                    "suppressed"
                } else {
                    "active"
                };
                state == want
            });
        if right {
            break;
        }
        assert!(Instant::now() < deadline, "states: {states:?}");
        std::thread::sleep(Duration::from_millis(200));
    }
}
