//! Self-profiling over HTTP: a CPU profile taken while StreamGate works is
//! read by `go tool pprof` (Debian `golang-go`) and shows StreamGate's own
//! functions; the flame graph is SVG; bad parameters are 400 and a second
//! concurrent profile is 409 with `Retry-After`.

mod common;

use std::process::Command;
use std::time::Duration;

use common::{Collector, find_peer, http_client, peers_required};

/// Keeps StreamGate busy: metrics with many series, and scrapes.
fn load(collector: &Collector, stop: &std::sync::atomic::AtomicBool) {
    let client = http_client();
    let mut i = 0u64;
    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
        let points: Vec<String> = (0..200)
            .map(|j| {
                format!(
                    r#"{{"attributes":[{{"key":"k","value":{{"stringValue":"v{j}"}}}}],"asDouble":{i},"timeUnixNano":"{}"}}"#,
                    1_800_000_000_000_000_000u64 + i
                )
            })
            .collect();
        let body = format!(
            r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"load"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"load.gauge","gauge":{{"dataPoints":[{}]}}}}]}}]}}]}}"#,
            points.join(",")
        );
        let _ = client
            .post(collector.otlp_http_url("/v1/metrics"))
            .header("Content-Type", "application/json")
            .body(body)
            .send();
        let _ = client.get(collector.url("/metrics")).send();
        i += 1;
    }
}

#[test]
fn cpu_profile_is_read_by_go_tool_pprof() {
    let go = find_peer("go");
    if go.is_none() {
        assert!(!peers_required(), "go (golang-go) is required");
        eprintln!("skipped: no go toolchain");
        return;
    }
    let collector = Collector::start();
    let stop = std::sync::atomic::AtomicBool::new(false);
    let profile = std::thread::scope(|scope| {
        scope.spawn(|| load(&collector, &stop));
        let r = http_client()
            .get(collector.url("/debug/pprof/profile?seconds=3"))
            .timeout(Duration::from_secs(30))
            .send()
            .unwrap();
        stop.store(true, std::sync::atomic::Ordering::Relaxed);
        assert_eq!(r.status(), 200);
        r.bytes().unwrap()
    });
    assert_eq!(&profile[..2], &[0x1f, 0x8b], "gzipped");
    let file = collector.dir.path().join("cpu.pb.gz");
    std::fs::write(&file, &profile).unwrap();
    let out = Command::new(go.unwrap())
        .args(["tool", "pprof", "-top"])
        .arg(&file)
        .env("HOME", collector.dir.path())
        .env("PPROF_TMPDIR", collector.dir.path())
        .output()
        .expect("go tool pprof");
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(text.contains("Type: cpu"), "{text}");
    assert!(
        text.contains("streamgate::"),
        "StreamGate's own functions: {text}"
    );
}

#[test]
fn flamegraph_parameters_and_one_profile_at_a_time() {
    let collector = Collector::start_with(common::Options {
        exporters_extra: "pprof:\n  max_seconds: 5\n".into(),
        ..Default::default()
    });
    let client = http_client();
    let svg = client
        .get(collector.url("/debug/pprof/flamegraph?seconds=1"))
        .send()
        .unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    let svg = svg.text().unwrap();
    assert!(svg.contains("<svg"), "{svg}");

    for (query, needle) in [
        ("seconds=0", "out of range"),
        ("seconds=6", "max_seconds"),
        ("seconds=abc", "whole number"),
        ("secs=1", "unknown field"),
    ] {
        let r = client
            .get(collector.url(&format!("/debug/pprof/profile?{query}")))
            .send()
            .unwrap();
        assert_eq!(r.status(), 400, "{query}");
        let text = r.text().unwrap();
        assert!(text.contains(needle), "{query}: {text}");
    }

    // While one profile runs, a second is refused with a retry hint.
    std::thread::scope(|scope| {
        let first = scope.spawn(|| {
            client
                .get(collector.url("/debug/pprof/profile?seconds=3"))
                .send()
                .unwrap()
                .status()
        });
        std::thread::sleep(Duration::from_millis(800));
        let second = client
            .get(collector.url("/debug/pprof/profile?seconds=1"))
            .send()
            .unwrap();
        assert_eq!(second.status(), 409);
        assert!(second.headers().contains_key("retry-after"));
        assert_eq!(first.join().unwrap(), 200);
    });
}
