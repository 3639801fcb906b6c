//! The web console in a real browser: headless Chromium (Debian's
//! `chromium`) driven by `playwright-core` (`tests/console/check.mjs`)
//! against a running collector fed over OTLP/HTTP. Every page loads
//! without console errors at desktop and phone width, charts render with
//! their text alternatives, the first Tab reaches the skip link, the
//! series explorer opens a series, and an anomaly injected into a gauge
//! appears on the already-open anomalies page through its live refresh,
//! marked on its chart. Screenshots are saved under
//! `target/console-screenshots/` as test artefacts.

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::{Collector, Options, http_client, peers_required};
use serde_json::Value;

fn gauge(value: f64) -> String {
    format!(
        r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"checkout"}}}}]}},
          "scopeMetrics":[{{"metrics":[{{"name":"queue.depth","unit":"{{item}}","description":"Items waiting",
            "gauge":{{"dataPoints":[{{"asDouble":{value}}}]}}}}]}}]}}]}}"#
    )
}

/// The browser tooling, or `None` (skipped) outside `scripts/test`.
fn tooling() -> Option<(PathBuf, PathBuf)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/console");
    let chromium = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    let ready = chromium.is_file() && dir.join("node_modules/playwright-core").is_dir();
    if !ready {
        if peers_required() {
            panic!(
                "Chromium ({}) or tests/console/node_modules is missing; scripts/test installs them",
                chromium.display()
            );
        }
        eprintln!("SKIPPED: Chromium or playwright-core not installed (run scripts/test)");
        return None;
    }
    Some((dir, chromium))
}

#[test]
fn the_console_works_in_a_real_browser() {
    let Some((dir, chromium)) = tooling() else {
        return;
    };
    let collector = Collector::start_with(Options {
        processors_extra: "analysis:\n  select: [{name: queue.depth}]\n  step: 100ms\n  horizons: [1s]\n  series_ttl: 1m\n".into(),
        api_extra: "console:\n  sample_interval: 1s\n".into(),
        ..Default::default()
    });
    let url = collector.otlp_http_url("/v1/metrics");

    // A steady gauge while the browser visits the pages; once it has the
    // anomalies page open (check.mjs writes `anomalies-page-open`), jumps
    // to 20x the level, one every 350 ms, until stopped.
    let shots = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/console-screenshots");
    let go = shots.join("anomalies-page-open");
    let _ = std::fs::remove_file(&go);
    let stop = Arc::new(AtomicBool::new(false));
    let sender = {
        let stop = stop.clone();
        std::thread::spawn(move || {
            let client = http_client();
            let mut i = 0u64;
            let mut steady = 0u64;
            while !stop.load(Ordering::Relaxed) {
                let spiking = steady >= 60 && go.exists();
                let value = if spiking {
                    400.0
                } else {
                    20.0 + (i % 5) as f64 * 0.5
                };
                steady += u64::from(!spiking);
                let _ = client
                    .post(&url)
                    .header("Content-Type", "application/json")
                    .body(gauge(value))
                    .send();
                i += 1;
                std::thread::sleep(Duration::from_millis(if spiking { 350 } else { 100 }));
            }
        })
    };

    let out = Command::new("node")
        .arg(dir.join("check.mjs"))
        .arg(collector.url(""))
        .arg(&shots)
        .arg("queue_depth")
        .env("CHROMIUM", &chromium)
        .output()
        .expect("run node");
    stop.store(true, Ordering::Relaxed);
    let _ = sender.join();
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "check.mjs failed: {}\n{stdout}\n--- streamgate ---\n{}",
        String::from_utf8_lossy(&out.stderr),
        collector.logs()
    );
    let seen: Value = serde_json::from_str(stdout.trim()).expect("check.mjs prints JSON");

    let pages = seen["pages"].as_array().expect("pages");
    assert_eq!(pages.len(), 10, "five pages at two widths");
    for page in pages {
        let what = format!("{} at {}px", page["path"], page["width"]);
        assert_eq!(page["status"], 200, "{what}");
        assert_eq!(
            page["errors"],
            serde_json::json!([]),
            "{what}: console errors"
        );
        assert_eq!(page["lang"], "en", "{what}");
        assert!(
            !page["current"].as_str().unwrap_or_default().is_empty(),
            "{what}: current page marked"
        );
        assert_eq!(
            page["chartsNamed"], page["charts"],
            "{what}: every chart has a title and description"
        );
        assert_eq!(
            page["chartsDrawn"], page["charts"],
            "{what}: every chart drew"
        );
        assert_eq!(page["horizontalScroll"], false, "{what}: fits the width");
        // WCAG AA for normal text: 4.5:1.
        let contrast = &page["contrast"];
        assert!(
            contrast["ratio"].as_f64().unwrap_or(0.0) >= 4.5,
            "{what}: text contrast {contrast}"
        );
        assert_eq!(
            page["firstTab"], "Skip to content",
            "{what}: keyboard starts at the skip link"
        );
        assert!(Path::new(page["screenshot"].as_str().unwrap_or_default()).is_file());
    }
    let overview = &pages[0];
    assert!(overview["charts"].as_u64().unwrap_or(0) >= 3, "{overview}");
    assert!(
        overview["mainText"]
            .as_str()
            .unwrap_or_default()
            .contains("Health")
    );

    let view = &seen["seriesView"];
    assert_eq!(view["linked"], 1, "the search lists queue_depth: {view}");
    assert_eq!(view["view"]["charts"], 1, "{view}");
    assert!(
        view["view"]["h1"]
            .as_str()
            .unwrap_or_default()
            .contains("queue_depth")
    );

    let anomaly = &seen["anomaly"];
    assert_eq!(anomaly["found"], true, "{anomaly}\n{}", collector.logs());
    assert_eq!(
        anomaly["initiallyPresent"], false,
        "it arrived by the live refresh: {anomaly}"
    );
    assert_eq!(
        anomaly["loads"], 1,
        "the page was never reloaded: {anomaly}"
    );
    assert!(
        anomaly["details"]["marks"].as_u64().unwrap_or(0) >= 1,
        "anomaly marked: {anomaly}"
    );
    assert_eq!(anomaly["details"]["band"], 1, "{anomaly}");
    assert_eq!(anomaly["errors"], serde_json::json!([]), "{anomaly}");

    // The report made during the anomaly, rendered with its chart.
    let report = &seen["report"];
    assert_eq!(report["status"], 201, "{report}");
    assert_eq!(report["present"], true, "{report}");
    assert!(
        report["text"]
            .as_str()
            .unwrap_or_default()
            .contains("queue_depth"),
        "{report}"
    );
    assert!(report["charts"].as_u64().unwrap_or(0) >= 1, "{report}");
    assert!(report["marks"].as_u64().unwrap_or(0) >= 1, "{report}");
    // What the anomalies page draws, as JSON.
    let json = &seen["json"];
    assert_eq!(json["first"], "queue_depth", "{json}");
    assert!(json["history"].as_u64().unwrap_or(0) >= 2, "{json}");
}

/// With `require_auth_for: all` the console answers 401 without the
/// admin token, and the page with it; health probes stay open.
#[test]
fn the_console_honours_the_admin_credentials() {
    const TOKEN: &str = "console-admin-token-1234";
    let collector = Collector::start_with(Options {
        server_extra: format!("auth:\n  bearer_tokens: [\"{TOKEN}\"]\nrequire_auth_for: all"),
        ..Default::default()
    });
    for path in [
        "/",
        "/console/anomalies",
        "/console/series?match=up",
        "/api/v1/console/rates",
    ] {
        let anonymous = http_client().get(collector.url(path)).send().expect("GET");
        assert_eq!(anonymous.status().as_u16(), 401, "{path}");
        let allowed = http_client()
            .get(collector.url(path))
            .header("Authorization", format!("Bearer {TOKEN}"))
            .send()
            .expect("GET");
        assert_eq!(allowed.status().as_u16(), 200, "{path}");
    }
    let page = http_client()
        .get(collector.url("/"))
        .header("Authorization", format!("Bearer {TOKEN}"))
        .send()
        .and_then(|r| r.text())
        .expect("overview");
    assert!(page.contains("<h1>Overview</h1>"), "{page}");
    assert_eq!(
        http_client()
            .get(collector.url("/readyz"))
            .send()
            .expect("GET")
            .status()
            .as_u16(),
        200
    );
}

/// The overview lists refused requests by reason.
#[test]
fn the_overview_lists_refusals_by_reason() {
    let collector = Collector::start();
    let page = || {
        http_client()
            .get(collector.url("/?fragment=main"))
            .send()
            .and_then(|r| r.text())
            .expect("overview")
    };
    assert!(page().contains("No request refused since the start."));
    let refused = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("Content-Type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .expect("POST");
    assert_eq!(refused.status().as_u16(), 400);
    let html = page();
    assert!(
        html.contains(r#"<th scope="row">malformed</th><td class="num">1</td>"#),
        "{html}"
    );
    assert!(
        !html.contains("<html"),
        "a fragment is only <main>'s content"
    );
}
