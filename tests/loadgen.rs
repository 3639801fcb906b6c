//! `streamgate loadgen` against a running StreamGate: every signal over
//! both transports is accepted and counted alike on both sides, compressed
//! requests (gzip, zstd) too and smaller on the wire, the prost
//! baseline is measured beside the server's figure, visibility probes
//! time an accepted point until it shows on `/metrics`, a target rate is
//! kept, refusals are reported by status, and endpoints off loopback are
//! refused unless allowed.

mod common;

use std::process::Command;

use common::{Collector, Options};
use serde_json::Value;

/// Runs the loadgen with `args`, returning its JSON summary.
fn loadgen(args: &[&str]) -> Value {
    let (summary, progress) = common::loadgen(args);
    // Not a terminal: plain progress lines with the rate, ending "done in".
    assert!(
        progress.contains("items/s") && progress.contains("done in") && !progress.contains('\r'),
        "progress lines: {progress}"
    );
    summary
}

fn accepted_on_server(collector: &Collector, signal: &str, transport: &str) -> f64 {
    collector
        .scrape()
        .get(
            "streamgate_receiver_accepted_items_total",
            &[("signal", signal), ("transport", transport)],
        )
        .unwrap_or(0.0)
}

#[test]
fn every_signal_over_both_transports_is_accepted_and_counted() {
    let collector = Collector::start();
    let metrics_url = collector.url("/metrics");
    for (signal, server_signal) in [
        ("metrics", "metrics"),
        ("traces", "traces"),
        ("logs", "logs"),
    ] {
        for (transport, endpoint) in [
            ("grpc", format!("http://{}", collector.grpc)),
            ("http", format!("http://{}", collector.http)),
        ] {
            let before = accepted_on_server(&collector, server_signal, transport);
            let s = loadgen(&[
                "--signal",
                signal,
                "--transport",
                transport,
                "--endpoint",
                &endpoint,
                "--duration",
                "1500ms",
                "--batch",
                "50",
                "--series",
                "500",
                "--concurrency",
                "2",
                "--metrics-url",
                &metrics_url,
            ]);
            let accepted = s["items_accepted"].as_u64().unwrap();
            assert!(accepted >= 50, "{signal} over {transport}: {s}");
            assert_eq!(s["items_sent"].as_u64(), Some(accepted), "{s}");
            assert_eq!(s["items_refused"].as_u64(), Some(0), "{s}");
            assert!(s["refusals"].as_object().unwrap().is_empty(), "{s}");
            assert!(s["latency_p99_ms"].as_f64().unwrap() > 0.0, "{s}");
            assert!(s["server_cpu_seconds"].as_f64().is_some(), "{s}");
            let after = accepted_on_server(&collector, server_signal, transport);
            assert_eq!(
                after - before,
                accepted as f64,
                "{signal} over {transport}: the server counted the same"
            );
        }
    }
    // OTLP/JSON bodies too.
    let s = loadgen(&[
        "--transport",
        "http",
        "--encoding",
        "json",
        "--endpoint",
        &format!("http://{}", collector.http),
        "--duration",
        "1s",
        "--batch",
        "20",
    ]);
    assert!(s["items_accepted"].as_u64().unwrap() >= 20, "{s}");
    assert_eq!(s["items_refused"].as_u64(), Some(0), "{s}");
}

/// `--compression gzip` and `zstd` compress every request (gRPC message
/// compression, or the HTTP body's `Content-Encoding`): the server
/// accepts and counts every item as for plain requests, and takes a
/// fraction of the bytes on the wire for them. With `--baseline` the
/// floor decompresses the payloads too.
#[test]
fn compressed_requests_are_accepted_and_smaller_on_the_wire() {
    let collector = Collector::start();
    let metrics_url = collector.url("/metrics");
    let wire_bytes = |transport: &str| {
        collector
            .scrape()
            .get(
                "streamgate_receiver_received_bytes_total",
                &[("signal", "metrics"), ("transport", transport)],
            )
            .unwrap_or(0.0)
    };
    for (transport, endpoint) in [
        ("grpc", format!("http://{}", collector.grpc)),
        ("http", format!("http://{}", collector.http)),
    ] {
        let mut bytes_per_item = Vec::new();
        for compression in ["none", "gzip", "zstd"] {
            let (items_before, bytes_before) = (
                accepted_on_server(&collector, "metrics", transport),
                wire_bytes(transport),
            );
            let mut args = vec![
                "--transport",
                transport,
                "--endpoint",
                &endpoint,
                "--compression",
                compression,
                "--duration",
                "1s",
                "--batch",
                "200",
                "--series",
                "1000",
                "--concurrency",
                "2",
                "--metrics-url",
                &metrics_url,
            ];
            // The floor (2 s of decoding) once per transport.
            if compression == "gzip" {
                args.push("--baseline");
            }
            let s = loadgen(&args);
            let accepted = s["items_accepted"].as_u64().unwrap();
            assert!(accepted >= 200, "{compression} over {transport}: {s}");
            assert_eq!(s["items_sent"].as_u64(), Some(accepted), "{s}");
            assert!(s["refusals"].as_object().unwrap().is_empty(), "{s}");
            assert_eq!(s["compression"], compression, "{s}");
            if compression == "gzip" {
                let floor = s["prost_decode_per_cpu_second"].as_f64().unwrap_or(0.0);
                assert!((1e4..1e9).contains(&floor), "{compression}: {s}");
            }
            let items = accepted_on_server(&collector, "metrics", transport) - items_before;
            assert_eq!(items, accepted as f64, "{compression} over {transport}");
            bytes_per_item.push((wire_bytes(transport) - bytes_before) / items);
        }
        // The load generator's series repeat their names and attribute
        // values: compressed, they take well under a third of the bytes.
        let [plain, gzip, zstd] = bytes_per_item[..] else {
            unreachable!()
        };
        assert!(plain > 50.0, "{transport}: {plain} bytes per point");
        assert!(gzip < plain / 3.0, "{transport}: gzip {gzip} of {plain}");
        assert!(zstd < plain / 3.0, "{transport}: zstd {zstd} of {plain}");
    }
}

/// `--baseline` measures prost decoding of the same payloads and reports
/// it beside the server's accepted items per CPU-second.
#[test]
fn the_decode_baseline_is_reported_beside_the_server_figure() {
    let collector = Collector::start();
    for signal in ["metrics", "traces", "logs"] {
        let s = loadgen(&[
            "--signal",
            signal,
            "--endpoint",
            &format!("http://{}", collector.grpc),
            "--duration",
            "1s",
            "--batch",
            "100",
            "--metrics-url",
            &collector.url("/metrics"),
            "--baseline",
        ]);
        let floor = s["prost_decode_per_cpu_second"].as_f64().unwrap_or(0.0);
        // Any machine decodes more than 10,000 items of 5 attributes per
        // CPU-second, and none a billion.
        assert!((1e4..1e9).contains(&floor), "{signal}: {s}");
        assert!(
            s["accepted_per_server_cpu_second"].as_f64().is_some(),
            "{s}"
        );
    }
    let s = loadgen(&[
        "--endpoint",
        &format!("http://{}", collector.grpc),
        "--duration",
        "1s",
    ]);
    assert!(s["prost_decode_per_cpu_second"].is_null(), "{s}");
}

/// `--probe-visibility` exports probe points beside the load and times
/// each from its answer to the `/metrics` read that shows it; the probe
/// series is really on `/metrics` afterwards, and the flag needs
/// `--metrics-url`.
#[test]
fn visibility_probes_time_an_accepted_point_until_it_shows() {
    let collector = Collector::start();
    for transport in ["grpc", "http"] {
        let endpoint = match transport {
            "grpc" => format!("http://{}", collector.grpc),
            _ => format!("http://{}", collector.http),
        };
        let s = loadgen(&[
            "--transport",
            transport,
            "--endpoint",
            &endpoint,
            "--duration",
            "2s",
            "--batch",
            "100",
            "--rate",
            "2000",
            "--metrics-url",
            &collector.url("/metrics"),
            "--probe-visibility",
        ]);
        let probes = s["visibility_probes"].as_u64().unwrap_or(0);
        assert!(probes >= 5, "{transport}: {s}");
        assert_eq!(s["visibility_missed"].as_u64(), Some(0), "{s}");
        // Acknowledged means applied: the first read after the answer
        // already shows the point.
        assert_eq!(s["visibility_extra_reads"].as_u64(), Some(0), "{s}");
        let p99 = s["visibility_p99_ms"].as_f64().expect("a p99");
        assert!(p99 > 0.0 && p99 < 2000.0, "{s}");
    }
    let probe = collector
        .scrape()
        .matching("loadgen_probe", &[("job", "loadgen-probe")]);
    assert_eq!(probe.len(), 1, "the probe series is on /metrics: {probe:?}");
    assert!(probe[0].1 >= 5.0, "the last probe's number: {probe:?}");
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["loadgen", "--probe-visibility", "--duration", "1s"])
        .output()
        .expect("streamgate loadgen runs");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--probe-visibility needs --metrics-url"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[test]
fn a_target_rate_is_kept() {
    let collector = Collector::start();
    let s = loadgen(&[
        "--endpoint",
        &format!("http://{}", collector.grpc),
        "--rate",
        "2000",
        "--batch",
        "100",
        "--duration",
        "2s",
    ]);
    // 2 s at 2000/s: 40 requests of 100.
    let accepted = s["items_accepted"].as_u64().unwrap();
    assert!((3600..=4000).contains(&accepted), "{s}");
    assert_eq!(s["items_failed"].as_u64(), Some(0), "{s}");
    let parts: u64 = [
        "items_accepted",
        "items_rejected",
        "items_refused",
        "items_failed",
    ]
    .iter()
    .map(|k| s[k].as_u64().unwrap())
    .sum();
    assert_eq!(Some(parts), s["items_sent"].as_u64(), "{s}");

    // Two requests of 500 at 1000/s, due at 0 and 0.5 s: the rate is over
    // the whole second, not until the second answer.
    let s = loadgen(&[
        "--endpoint",
        &format!("http://{}", collector.grpc),
        "--rate",
        "1000",
        "--batch",
        "500",
        "--series",
        "500",
        "--duration",
        "1s",
    ]);
    assert_eq!(s["items_accepted"].as_u64(), Some(1000), "{s}");
    assert!(s["seconds"].as_f64().unwrap() >= 1.0, "{s}");
    let rate = s["accepted_per_second"].as_f64().unwrap();
    assert!((900.0..=1000.0).contains(&rate), "{s}");
}

/// Nothing listening is an error over either transport (exit 1, the
/// address named), not a run of failed requests that exits 0.
#[test]
fn nothing_listening_is_an_error() {
    let free = std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port");
    for transport in ["grpc", "http"] {
        let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .args([
                "loadgen",
                "--transport",
                transport,
                "--endpoint",
                &format!("http://{free}"),
                "--duration",
                "2s",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{transport}: {stderr}");
        assert!(
            stderr.contains("cannot connect") && stderr.contains(&free.to_string()),
            "{transport}: {stderr}"
        );
    }
}

/// `streamgate -c FILE loadgen` sends to the file's OTLP receiver; a
/// file that cannot be read is an error, as for `run`.
#[test]
fn a_config_file_gives_the_default_endpoint() {
    let collector = Collector::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("streamgate.yaml");
    std::fs::write(
        &config,
        format!(
            "receivers:\n  otlp:\n    grpc:\n      endpoint: {}\n    http:\n      endpoint: {}\n",
            collector.grpc, collector.http
        ),
    )
    .unwrap();
    for transport in ["grpc", "http"] {
        let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .arg("-c")
            .arg(&config)
            .args([
                "loadgen",
                "--transport",
                transport,
                "--duration",
                "1s",
                "--json",
            ])
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "{transport}: {stderr}");
        let s: Value = serde_json::from_slice(&out.stdout).unwrap();
        assert!(s["items_accepted"].as_u64().unwrap() > 0, "{s}");
    }
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args([
            "-c",
            "/nonexistent/streamgate.yaml",
            "loadgen",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

#[test]
fn refusals_are_reported_by_status() {
    let collector = Collector::start_with(Options {
        receiver_extra: "max_request_size: 1KiB\n".into(),
        ..Default::default()
    });
    // One second of 100-point requests, one at a time, over `transport`.
    let refused_run = |transport: &str, endpoint: &str| {
        loadgen(&[
            "--transport",
            transport,
            "--endpoint",
            endpoint,
            "--duration",
            "1s",
            "--batch",
            "100",
            "--concurrency",
            "1",
        ])
    };
    let s = refused_run("http", &format!("http://{}", collector.http));
    assert_eq!(s["items_accepted"].as_u64(), Some(0), "{s}");
    assert_eq!(s["items_refused"], s["items_sent"], "{s}");
    let refusals = s["refusals"].as_object().unwrap();
    assert!(refusals.contains_key("413"), "{s}");

    // Over gRPC the metrics go out pre-encoded: the refusal still comes
    // back as the server's gRPC code, counted per request.
    let s = refused_run("grpc", &collector.grpc_url());
    assert_eq!(s["items_accepted"].as_u64(), Some(0), "{s}");
    assert!(s["items_sent"].as_u64().unwrap() > 0, "{s}");
    assert_eq!(s["items_refused"], s["items_sent"], "{s}");
    assert_eq!(s["requests_failed"].as_u64(), Some(0), "{s}");
    let refusals = s["refusals"].as_object().unwrap();
    assert!(
        refusals
            .keys()
            .any(|k| k.contains("ResourceExhausted") || k.contains("OutOfRange")),
        "{s}"
    );
}

#[test]
fn endpoints_off_loopback_need_allow_remote() {
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args([
            "loadgen",
            "--endpoint",
            "http://192.0.2.1:4317",
            "--duration",
            "1s",
        ])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("--allow-remote"));
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["loadgen", "--duration", "3h"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
}

/// A server that does not speak gRPC (here one answering HTTP/1.1) gives
/// no answers, not refusals: none is counted as refused and the run
/// fails, as it does over HTTP when nothing answers.
#[test]
fn a_server_that_is_not_grpc_answers_nothing() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { return };
            use std::io::Write as _;
            let _ = stream.write_all(b"HTTP/1.1 400 Bad Request\r\ncontent-length: 0\r\n\r\n");
        }
    });
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args([
            "loadgen",
            "--endpoint",
            &format!("http://{addr}"),
            "--duration",
            "1s",
            "--rate",
            "200",
            "--batch",
            "100",
            "--json",
        ])
        .output()
        .unwrap();
    let err = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{err}");
    assert!(err.contains("none of"), "{err}");
    assert!(!err.contains("refused: "), "{err}");
}
