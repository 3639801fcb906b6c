//! Self-profiling over HTTP: CPU and heap profiles taken while StreamGate
//! works are read by `go tool pprof` (Debian `golang-go`) and show
//! StreamGate's own functions; the flame graphs are SVG; bad parameters
//! are 400, a second concurrent CPU profile is 409 with `Retry-After`, and
//! with `access_token` set every route needs the bearer token.

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

/// `go tool pprof <args> <file>`'s standard output, asserting success.
/// `-symbolize=none`: the names must come from the profile itself (go
/// would otherwise re-read the binary's debug information, slowly).
fn go_pprof(
    go: &std::path::Path,
    collector: &Collector,
    args: &[&str],
    file: &std::path::Path,
) -> String {
    let out = Command::new(go)
        .args(["tool", "pprof", "-symbolize=none"])
        .args(args)
        .arg(file)
        .env("HOME", collector.dir.path())
        .env("PPROF_TMPDIR", collector.dir.path())
        .output()
        .expect("go tool pprof");
    let text = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "{text}{}",
        String::from_utf8_lossy(&out.stderr)
    );
    text
}

#[test]
fn heap_profile_is_read_by_go_tool_pprof() {
    let go = find_peer("go");
    if go.is_none() {
        assert!(!peers_required(), "go (golang-go) is required");
        eprintln!("skipped: no go toolchain");
        return;
    }
    let go = go.unwrap();
    // A finer sampling interval than the default 512 KiB.
    let collector = Collector::start_with(common::Options {
        exporters_extra: "pprof:\n  heap_sample_bytes: 65536\n".into(),
        ..Default::default()
    });
    // 10,000 stored series are live allocations of the ingest path.
    let client = http_client();
    for batch in 0..20 {
        let points: Vec<String> = (0..500)
            .map(|j| {
                format!(
                    r#"{{"attributes":[{{"key":"k","value":{{"stringValue":"v{batch}-{j}"}}}}],"asDouble":1,"timeUnixNano":"1800000000000000000"}}"#
                )
            })
            .collect();
        let body = format!(
            r#"{{"resourceMetrics":[{{"resource":{{"attributes":[{{"key":"service.name","value":{{"stringValue":"heap"}}}}]}},"scopeMetrics":[{{"metrics":[{{"name":"heap.gauge","gauge":{{"dataPoints":[{}]}}}}]}}]}}]}}"#,
            points.join(",")
        );
        collector.post_json_metrics(body);
    }
    let r = client
        .get(collector.url("/debug/pprof/heap"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(
        r.headers()["content-disposition"]
            .to_str()
            .unwrap()
            .contains("heap.pb.gz")
    );
    let profile = r.bytes().unwrap();
    assert_eq!(&profile[..2], &[0x1f, 0x8b], "gzipped");
    let file = collector.dir.path().join("heap.pb.gz");
    std::fs::write(&file, &profile).unwrap();
    let top = go_pprof(&go, &collector, &["-top"], &file);
    assert!(top.contains("Type: inuse_space"), "{top}");
    // Allocation sites in StreamGate's own functions and source lines.
    let lines = go_pprof(&go, &collector, &["-traces", "-lines"], &file);
    assert!(
        lines.contains("streamgate::")
            && (lines.contains("/src/exporters/prometheus/")
                || lines.contains("/src/receivers/otlp/")),
        "StreamGate's own allocation sites: {lines}"
    );
    // The allocator's own frames are not shown as the allocating code.
    assert!(
        !lines.contains("prof_backtrace_impl") && !lines.contains("_rjem_"),
        "{lines}"
    );

    let svg = client
        .get(collector.url("/debug/pprof/heap/flamegraph"))
        .send()
        .unwrap();
    assert_eq!(svg.status(), 200);
    assert_eq!(svg.headers()["content-type"], "image/svg+xml");
    assert!(svg.text().unwrap().contains("<svg"));

    // The allocator's own figures are exported beside the process'.
    let s = collector.scrape();
    let allocated = s
        .get("streamgate_heap_allocated_bytes", &[])
        .expect("heap series");
    let resident = s
        .get("streamgate_heap_resident_bytes", &[])
        .expect("heap series");
    assert!(
        allocated > 1e5 && resident >= allocated,
        "{allocated} {resident}"
    );
    assert!(
        s.get("streamgate_process_memory_limit_bytes", &[])
            .is_some_and(|l| l > allocated),
        "{}",
        s.text
    );
}

#[test]
fn access_token_guards_every_profile_route() {
    let collector = Collector::start_with(common::Options {
        exporters_extra: "pprof:\n  access_token: pr0file-me\n".into(),
        ..Default::default()
    });
    let client = http_client();
    for path in [
        "/debug/pprof/heap",
        "/debug/pprof/heap/flamegraph",
        "/debug/pprof/profile?seconds=1",
        "/debug/pprof/flamegraph?seconds=1",
    ] {
        for auth in [None, Some("Bearer wrong"), Some("Basic cHI6cHI=")] {
            let mut request = client.get(collector.url(path));
            if let Some(auth) = auth {
                request = request.header("Authorization", auth);
            }
            let r = request.send().unwrap();
            assert_eq!(r.status(), 401, "{path} with {auth:?}");
            assert!(
                r.headers()["www-authenticate"]
                    .to_str()
                    .unwrap()
                    .starts_with("Bearer")
            );
        }
    }
    let r = client
        .get(collector.url("/debug/pprof/heap"))
        .header("Authorization", "Bearer pr0file-me")
        .send()
        .unwrap();
    assert_eq!(r.status(), 200);
    // /metrics is not behind the profiling token.
    assert_eq!(
        client
            .get(collector.url("/metrics"))
            .send()
            .unwrap()
            .status(),
        200
    );
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
    let text = go_pprof(&go.unwrap(), &collector, &["-top"], &file);
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

/// A profile that would lift resident memory past the memory limiter's
/// soft limit is refused (503, saying why and what to do) instead of
/// making the receivers refuse data while it runs: the OTLP receivers
/// keep accepting. Under a limit with room, the same profile is taken.
#[test]
fn a_profile_that_would_pass_the_memory_limit_is_refused() {
    let tight = Collector::start_with(common::Options {
        receiver_extra: "memory_limiter:\n  limit: 128MiB".into(),
        ..Default::default()
    });
    let client = http_client();
    for path in ["/debug/pprof/profile?seconds=1", "/debug/pprof/heap"] {
        let r = client.get(tight.url(path)).send().unwrap();
        assert_eq!(r.status(), 503, "{path}");
        assert!(r.headers().contains_key("retry-after"), "{path}");
        let text = r.text().unwrap();
        assert!(
            text.contains("soft limit") && text.contains("memory_limiter.limit"),
            "{path}: {text}"
        );
    }
    let s = tight.scrape();
    assert_eq!(
        s.get(
            "streamgate_receiver_refused_requests_total",
            &[
                ("signal", "metrics"),
                ("transport", "http"),
                ("reason", "memory_limited")
            ]
        ),
        Some(0.0),
        "{}",
        s.text
    );

    let roomy = Collector::start_with(common::Options {
        receiver_extra: "memory_limiter:\n  limit: 2GiB".into(),
        ..Default::default()
    });
    let r = client.get(roomy.url("/debug/pprof/heap")).send().unwrap();
    assert_eq!(r.status(), 200);
}
