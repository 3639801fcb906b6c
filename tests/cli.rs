//! Black-box tests of the command line and the process lifecycle: config
//! validation with clear errors, the documented default config, and a
//! graceful SIGTERM that finishes in-flight requests and exits 0.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::process::Command;
use std::time::{Duration, Instant};

use common::Collector;

fn streamgate(args: &[&str]) -> std::process::Output {
    Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(args)
        .output()
        .expect("run streamgate")
}

/// `print-config` prints the documented default, which `validate` accepts.
#[test]
fn print_config_is_valid_and_documented() {
    let out = streamgate(&["print-config"]);
    assert!(out.status.success());
    let text = String::from_utf8(out.stdout).unwrap();
    for key in [
        "endpoint: 127.0.0.1:4317",
        "endpoint: 127.0.0.1:4318",
        "127.0.0.1:9464",
        "max_request_size",
        "series_ttl",
    ] {
        assert!(text.contains(key), "default config mentions {key}");
    }
    assert!(
        text.lines()
            .filter(|l| l.trim_start().starts_with('#'))
            .count()
            > 10,
        "documented"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("default.yaml");
    std::fs::write(&path, &text).unwrap();
    let out = streamgate(&["validate", "--config", path.to_str().unwrap()]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("valid"));

    // With --config it still prints the default (stdout unchanged, so a
    // redirect still makes a clean file) and says so on stderr.
    let out = streamgate(&["--config", path.to_str().unwrap(), "print-config"]);
    assert!(out.status.success());
    assert_eq!(String::from_utf8(out.stdout).unwrap(), text);
    let note = String::from_utf8_lossy(&out.stderr);
    assert!(note.contains("prints the embedded default"), "{note}");
}

/// An unknown key is rejected with exit code 2, its file, line and a
/// suggestion.
#[test]
fn validate_rejects_unknown_key_with_line_and_suggestion() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.yaml");
    std::fs::write(&path, "receivers:\n  otlp:\n    max_request_sise: 1MiB\n").unwrap();
    let out = streamgate(&["validate", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("bad.yaml:3:"), "{err}");
    assert!(err.contains("did you mean `max_request_size`"), "{err}");
}

/// `${env:VAR}` is substituted; an unset variable is an error naming it.
#[test]
fn env_substitution_in_config() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("env.yaml");
    std::fs::write(
        &path,
        "exporters:\n  prometheus:\n    namespace: ${env:SG_TEST_NS}\n",
    )
    .unwrap();
    let ok = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["validate", "--config", path.to_str().unwrap()])
        .env("SG_TEST_NS", "shop")
        .output()
        .unwrap();
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    let missing = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .args(["validate", "--config", path.to_str().unwrap()])
        .env_remove("SG_TEST_NS")
        .output()
        .unwrap();
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("SG_TEST_NS"));
}

/// A missing config file is exit code 2 with the path in the message.
#[test]
fn missing_config_file() {
    let out = streamgate(&["--config", "/nonexistent/streamgate.yaml"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/nonexistent/streamgate.yaml"));
}

/// A port already in use fails the start with exit code 1 and says which.
#[test]
fn port_in_use_fails_clearly() {
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    std::fs::write(
        &path,
        format!(
            "state:\n  directory: {}\nserver:\n  endpoint: 127.0.0.1:0\nreceivers:\n  otlp:\n    grpc:\n      endpoint: 127.0.0.1:{port}\n    http:\n      endpoint: 127.0.0.1:0\n",
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let out = streamgate(&["--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(1));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(&format!("127.0.0.1:{port}")), "{err}");
}

/// The collector logs where it listens, answers health and readiness, and
/// on SIGTERM finishes the request in flight, refuses new ones, and exits 0.
#[test]
fn sigterm_drains_in_flight_requests_and_exits_zero() {
    let mut collector = Collector::start();
    let logs = collector.logs();
    assert!(logs.contains(&collector.grpc.to_string()), "{logs}");
    assert!(logs.contains(&collector.http.to_string()), "{logs}");
    assert!(logs.contains(&collector.admin.to_string()), "{logs}");
    let health = common::http_client()
        .get(collector.url("/healthz"))
        .send()
        .unwrap();
    assert_eq!(health.status(), 200);

    // A request whose body is still arriving when SIGTERM comes.
    let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"inflight","gauge":{"dataPoints":[{"asDouble":1}]}}]}]}]}"#;
    let mut slow = TcpStream::connect(collector.http).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(
        slow,
        "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .unwrap();
    slow.write_all(&body[..10]).unwrap();
    collector.wait_for_a_request_in_flight();

    let pid = collector.pid();
    Command::new("kill")
        .args(["-TERM", &pid.to_string()])
        .status()
        .unwrap();
    // New connections are no longer accepted once the signal is handled.
    let deadline = Instant::now() + Duration::from_secs(10);
    while TcpStream::connect_timeout(&collector.http, Duration::from_millis(500)).is_ok() {
        assert!(Instant::now() < deadline, "listener closed during drain");
        std::thread::sleep(Duration::from_millis(50));
    }

    slow.write_all(&body[10..]).unwrap();
    let mut answer = vec![0u8; 1024];
    let n = slow.read(&mut answer).unwrap();
    let answer = String::from_utf8_lossy(&answer[..n]);
    assert!(
        answer.starts_with("HTTP/1.1 200"),
        "in-flight request finished: {answer}"
    );

    let status = collector.terminate();
    assert_eq!(status.code(), Some(0), "{}", collector.logs());
    assert!(collector.logs().contains("StreamGate stopped"));
}

/// `validate` loads the TLS files a config names: a missing key file is
/// exit code 2 with the config key and the path.
#[test]
fn validate_checks_tls_files() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let missing = dir.path().join("missing-key.pem");
    std::fs::write(
        &path,
        format!(
            "receivers:\n  otlp:\n    grpc:\n      endpoint: 127.0.0.1:4317\n      tls:\n        cert_file: {}\n        key_file: {}\n",
            dir.path().join("missing-cert.pem").display(),
            missing.display()
        ),
    )
    .unwrap();
    let out = streamgate(&["validate", "--config", path.to_str().unwrap()]);
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(
        err.contains("receivers.otlp.grpc.tls.cert_file") && err.contains("missing-cert.pem"),
        "{err}"
    );
}

/// `validate` refuses what the start would refuse in the exporters: a
/// URL without a host, a header that HTTP cannot carry, a client TLS file
/// that is not there; each is exit code 2 naming the config key.
#[test]
fn validate_builds_the_exporters_targets() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.yaml");
    let cases = [
        (
            "exporters:\n  remote_write:\n    url: \"http://\"\n",
            "exporters.remote_write.url",
        ),
        (
            "exporters:\n  remote_write:\n    url: http://127.0.0.1:9/api/v1/write\n    headers:\n      \"bad header\": x\n",
            "exporters.remote_write.headers",
        ),
        (
            "exporters:\n  otlp:\n    endpoint: http://127.0.0.1:9\n    headers:\n      x-token: \"a\\nb\"\n",
            "exporters.otlp.headers",
        ),
        (
            "exporters:\n  otlp:\n    endpoint: https://127.0.0.1:9\n    tls:\n      ca_file: /nonexistent/ca.pem\n",
            "/nonexistent/ca.pem",
        ),
    ];
    for (config, named) in cases {
        std::fs::write(&path, config).unwrap();
        let out = streamgate(&["validate", "--config", path.to_str().unwrap()]);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{config}: {err}");
        assert!(err.contains(named), "{config}: {err}");
    }
    // The same exporters, well configured, are valid.
    std::fs::write(
        &path,
        "exporters:\n  remote_write:\n    url: http://127.0.0.1:9/api/v1/write\n    headers:\n      x-scope-orgid: team-a\n  otlp:\n    endpoint: http://127.0.0.1:9\n",
    )
    .unwrap();
    let out = streamgate(&["validate", "--config", path.to_str().unwrap()]);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// `runtime.worker_threads` sets how many threads serve requests: the
/// runtime reports it on /metrics and in the start line, and it still
/// ingests. A bad `TOKIO_WORKER_THREADS` is exit code 2 with the reason,
/// not a panic.
#[test]
fn worker_threads_are_configurable() {
    let collector = Collector::start_with(common::Options {
        top_extra: "runtime:\n  worker_threads: 1".into(),
        ..Default::default()
    });
    let samples = collector.scrape();
    assert_eq!(
        samples.get("streamgate_runtime_workers", &[]),
        Some(1.0),
        "{}",
        collector.scrape_text()
    );
    assert!(
        collector.logs().contains("\"worker_threads\":1"),
        "{}",
        collector.logs()
    );
    let body = br#"{"resourceMetrics":[{"scopeMetrics":[{"metrics":[{"name":"one.thread","gauge":{"dataPoints":[{"asDouble":4}]}}]}]}]}"#;
    let answer = common::http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("content-type", "application/json")
        .body(body.to_vec())
        .send()
        .unwrap();
    assert_eq!(answer.status(), 200);
    let samples = collector.scrape_until("one_thread", |s| s.has_family("one_thread"));
    let values: Vec<f64> = samples
        .matching("one_thread", &[])
        .into_iter()
        .map(|(_, v)| v)
        .collect();
    assert_eq!(values, [4.0]);

    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .arg("validate")
        .env("TOKIO_WORKER_THREADS", "lots")
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("TOKIO_WORKER_THREADS"), "{err}");
}

/// `RUST_LOG` is held to `logging.level`'s rule: a filter that would
/// silence every log line (a typo read as a module name) stops the start
/// with exit 2, and `validate` says so too.
#[test]
fn a_rust_log_that_would_silence_the_logs_is_refused() {
    for args in [&["validate"][..], &["--config", "/dev/null"][..]] {
        let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .args(args)
            .env("RUST_LOG", "infoo")
            .output()
            .unwrap();
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&out.stderr);
        assert!(err.contains("RUST_LOG `infoo`"), "{err}");
    }
}

/// A closed stderr (the log pipe's reader gone) costs the log lines
/// only: the collector serves, and a SIGTERM still stops it cleanly.
#[test]
fn a_closed_stderr_does_not_stop_the_collector() {
    let dir = tempfile::tempdir().unwrap();
    let admin = common::free_port();
    let config = dir.path().join("c.yaml");
    std::fs::write(
        &config,
        format!(
            "server:\n  endpoint: 127.0.0.1:{admin}\nreceivers:\n  otlp:\n    grpc:\n      endpoint: 127.0.0.1:{}\n    http:\n      endpoint: 127.0.0.1:{}\nstate:\n  directory: {}\n",
            common::free_port(),
            common::free_port(),
            dir.path().join("state").display()
        ),
    )
    .unwrap();
    let mut child = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .arg("--config")
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stderr.take());
    let ready = format!("http://127.0.0.1:{admin}/readyz");
    let deadline = Instant::now() + Duration::from_secs(20);
    while common::http_client()
        .get(&ready)
        .send()
        .map_or(true, |r| r.status() != 200)
    {
        assert!(
            child.try_wait().unwrap().is_none(),
            "exited before it was ready"
        );
        assert!(Instant::now() < deadline, "never ready");
        std::thread::sleep(Duration::from_millis(50));
    }
    // A request that logs a warning (a malformed body) is still answered.
    let answer = common::http_client()
        .post(format!(
            "http://{}/v1/metrics",
            std::fs::read_to_string(&config)
                .unwrap()
                .lines()
                .filter_map(|l| l.trim().strip_prefix("endpoint: "))
                .nth(2)
                .unwrap()
        ))
        .header("content-type", "application/x-protobuf")
        .body(vec![0xff, 0xff, 0xff])
        .send()
        .unwrap();
    assert_eq!(answer.status(), 400);
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let deadline = Instant::now() + Duration::from_secs(20);
    let status = loop {
        if let Some(status) = child.try_wait().unwrap() {
            break status;
        }
        assert!(Instant::now() < deadline, "did not stop");
        std::thread::sleep(Duration::from_millis(20));
    };
    assert!(status.success(), "{status:?}");
    assert!(
        dir.path()
            .join("state")
            .read_dir()
            .unwrap()
            .next()
            .is_some()
    );
}
