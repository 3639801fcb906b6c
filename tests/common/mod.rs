//! Test harness for black-box tests: starts the real `streamgate` binary on
//! free loopback ports with a config in a temp directory, waits for
//! readiness, scrapes `/metrics`, and stops it with SIGTERM.
#![allow(dead_code)]

pub mod pki;
pub mod prometheus;
pub mod sdk;

use std::collections::BTreeMap;
use std::io::Read;
use std::net::{SocketAddr, TcpListener};
use std::path::PathBuf;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

/// A free TCP port on 127.0.0.1 (bound then released).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Runs `streamgate loadgen` with `args` and `--json`; its JSON summary
/// and its progress lines (stderr). Fails the test if it fails.
pub fn loadgen(args: &[&str]) -> (serde_json::Value, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_streamgate"))
        .arg("loadgen")
        .args(args)
        .arg("--json")
        .output()
        .expect("streamgate loadgen runs");
    let progress = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(out.status.success(), "{progress}");
    let summary = serde_json::from_slice(&out.stdout).expect("a JSON summary");
    (summary, progress)
}

/// A running collector.
pub struct Collector {
    child: Option<Child>,
    pub grpc: SocketAddr,
    pub http: SocketAddr,
    pub admin: SocketAddr,
    pub dir: tempfile::TempDir,
    stderr_path: PathBuf,
    /// Set when the admin server speaks HTTPS (see `Options::admin_ca`).
    admin_ca: Option<PathBuf>,
}

/// Extra YAML for the `receivers.otlp` and `exporters.prometheus` sections.
#[derive(Default, Clone)]
pub struct Options {
    pub receiver_extra: String,
    pub exporter_extra: String,
    /// YAML under `connectors:`.
    pub connectors_extra: String,
    /// YAML under `processors:`.
    pub processors_extra: String,
    /// YAML under `api:`.
    pub api_extra: String,
    /// YAML under `exporters:` beside `prometheus` (e.g. `alertmanager:`).
    pub exporters_extra: String,
    /// YAML under `server:` (the admin server) beside its endpoint.
    pub server_extra: String,
    /// YAML under `receivers.otlp.grpc:` and `receivers.otlp.http:`
    /// beside their endpoints (e.g. `tls:`).
    pub grpc_extra: String,
    pub http_extra: String,
    /// The CA to trust when `server_extra` turns on the admin server's
    /// TLS: readiness is then polled over HTTPS with curl.
    pub admin_ca: Option<PathBuf>,
    /// `state.directory` (default: `state/` in the collector's temp
    /// directory, so every collector starts afresh).
    pub state_dir: Option<PathBuf>,
    /// YAML under `state:` beside `directory` (e.g. `interval: 1s`).
    pub state_extra: String,
    /// Top-level YAML (e.g. `collector_instance: a`).
    pub top_extra: String,
}

impl Collector {
    pub fn start() -> Collector {
        Self::start_with(Options::default())
    }

    pub fn start_with(options: Options) -> Collector {
        let dir = tempfile::tempdir().expect("temp dir");
        // Port 0 everywhere: the OS picks free ports and the collector logs
        // the addresses it bound, so tests never race for a port.
        let config = format!(
            "{}\nstate:\n  directory: {}\n{}\nserver:\n  endpoint: 127.0.0.1:0\n  shutdown_timeout: 10s\n{}\napi:\n{}\nlogging:\n  level: info\n  format: json\nreceivers:\n  otlp:\n    grpc:\n      endpoint: 127.0.0.1:0\n{}\n    http:\n      endpoint: 127.0.0.1:0\n{}\n{}\nconnectors:\n{}\nprocessors:\n{}\nexporters:\n  prometheus:\n{}\n{}\n",
            options.top_extra,
            options
                .state_dir
                .clone()
                .unwrap_or_else(|| dir.path().join("state"))
                .display(),
            indent(&options.state_extra, 2),
            indent(&options.server_extra, 2),
            indent(&options.api_extra, 2),
            indent(&options.grpc_extra, 6),
            indent(&options.http_extra, 6),
            indent(&options.receiver_extra, 4),
            indent(&options.connectors_extra, 2),
            indent(&options.processors_extra, 2),
            indent(&options.exporter_extra, 4),
            indent(&options.exporters_extra, 2),
        );
        let config_path = dir.path().join("streamgate.yaml");
        std::fs::write(&config_path, config).expect("write config");
        let stderr_path = dir.path().join("stderr.log");
        let stderr = std::fs::File::create(&stderr_path).expect("log file");
        let child = Command::new(env!("CARGO_BIN_EXE_streamgate"))
            .arg("--config")
            .arg(&config_path)
            .stdout(Stdio::null())
            .stderr(stderr)
            .spawn()
            .expect("start streamgate");
        let unbound: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let mut collector = Collector {
            child: Some(child),
            grpc: unbound,
            http: unbound,
            admin: unbound,
            dir,
            stderr_path,
            admin_ca: options.admin_ca.clone(),
        };
        collector.wait_listening();
        collector.wait_ready();
        collector
    }

    /// Reads the bound addresses from the JSON log lines.
    fn wait_listening(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            let logs = self.logs();
            for line in logs.lines() {
                let Ok(entry) = serde_json::from_str::<serde_json::Value>(line) else {
                    continue;
                };
                let fields = &entry["fields"];
                let (Some(message), Some(addr)) =
                    (fields["message"].as_str(), fields["addr"].as_str())
                else {
                    continue;
                };
                let addr: SocketAddr = addr.parse().expect("logged address");
                if message.starts_with("OTLP/gRPC receiver listening") {
                    self.grpc = addr;
                } else if message.starts_with("OTLP/HTTP receiver listening") {
                    self.http = addr;
                } else if message.starts_with("admin server listening") {
                    self.admin = addr;
                }
            }
            if self.grpc.port() != 0 && self.http.port() != 0 && self.admin.port() != 0 {
                return;
            }
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("streamgate exited early ({status}): {logs}");
            }
            if Instant::now() > deadline {
                panic!("streamgate did not log its addresses in 20s: {logs}");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    fn wait_ready(&mut self) {
        let deadline = Instant::now() + Duration::from_secs(20);
        while Instant::now() < deadline {
            if let Some(child) = self.child.as_mut()
                && let Ok(Some(status)) = child.try_wait()
            {
                panic!("streamgate exited early ({status}): {}", self.logs());
            }
            if self.is_ready() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        panic!("streamgate not ready in 20s: {}", self.logs());
    }

    /// Whether `/readyz` answers 200 (over HTTPS with curl when the admin
    /// server speaks TLS).
    fn is_ready(&self) -> bool {
        match &self.admin_ca {
            None => http_client()
                .get(self.url("/readyz"))
                .send()
                .is_ok_and(|r| r.status().is_success()),
            Some(ca) => Command::new("curl")
                .args(["-sf", "-o", "/dev/null", "--max-time", "5", "--cacert"])
                .arg(ca)
                .arg(format!("https://localhost:{}/readyz", self.admin.port()))
                .status()
                .is_ok_and(|s| s.success()),
        }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.admin, path)
    }

    pub fn otlp_http_url(&self, path: &str) -> String {
        format!("http://{}{}", self.http, path)
    }

    /// POSTs an OTLP/JSON metrics body to `/v1/metrics`, which must be
    /// accepted.
    #[allow(dead_code)]
    pub fn post_json_metrics(&self, body: String) {
        let r = http_client()
            .post(self.otlp_http_url("/v1/metrics"))
            .header("Content-Type", "application/json")
            .body(body)
            .send()
            .unwrap();
        assert_eq!(r.status(), 200);
    }

    pub fn grpc_url(&self) -> String {
        format!("http://{}", self.grpc)
    }

    /// The raw `/metrics` text (Prometheus text format).
    pub fn scrape_text(&self) -> String {
        http_client()
            .get(self.url("/metrics"))
            .send()
            .and_then(|r| r.text())
            .expect("scrape /metrics")
    }

    /// `/metrics` parsed into samples.
    pub fn scrape(&self) -> Samples {
        Samples::parse(&self.scrape_text())
    }

    /// Waits until the span-metrics connector has emitted `total` calls in
    /// all (it flushes every `flush_interval`, 1 s by default, not on each
    /// request) and returns that scrape. A flush is one metrics batch, and
    /// a scrape may land while its calls are stored and its durations not
    /// yet, so both families must have counted every span.
    pub fn scrape_after_span_calls(&self, total: f64) -> Samples {
        self.scrape_after_sums(&[
            ("traces_span_metrics_calls_total", total),
            ("traces_span_metrics_duration_seconds_count", total),
        ])
    }

    /// Waits until the service-graph connector has emitted `total` requests
    /// in all, with both duration histograms counting each of them (an
    /// edge records a duration on both sides, so the counts equal the
    /// requests once the flush is fully stored), and returns that scrape.
    pub fn scrape_after_edge_requests(&self, total: f64) -> Samples {
        self.scrape_after_sums(&[
            ("traces_service_graph_request_total", total),
            ("traces_service_graph_request_server_seconds_count", total),
            ("traces_service_graph_request_client_seconds_count", total),
        ])
    }

    /// Waits until a request's bytes are in flight: it holds its
    /// admission slot (taken before its declared length is reserved),
    /// as a test that half-sends a request needs before going on.
    pub fn wait_for_a_request_in_flight(&self) {
        self.scrape_until("a request in flight", |s| {
            s.get("streamgate_receiver_in_flight_bytes", &[])
                .is_some_and(|b| b > 0.0)
        });
    }

    /// Waits until each family's samples (over all label sets) sum to its
    /// total in one scrape, as a connector that emits on a flush interval
    /// gets there with every metric of its flush, and returns that scrape.
    pub fn scrape_after_sums(&self, totals: &[(&str, f64)]) -> Samples {
        let what = totals
            .iter()
            .map(|(name, total)| format!("{name} summing to {total}"))
            .collect::<Vec<_>>()
            .join(" and ");
        self.scrape_until(&what, |s| {
            totals.iter().all(|&(name, total)| {
                s.matching(name, &[]).iter().map(|(_, v)| v).sum::<f64>() == total
            })
        })
    }

    /// Waits until `check` holds for a scrape (the SDKs export async).
    pub fn scrape_until(&self, what: &str, check: impl Fn(&Samples) -> bool) -> Samples {
        let deadline = Instant::now() + Duration::from_secs(15);
        loop {
            let samples = self.scrape();
            if check(&samples) {
                return samples;
            }
            if Instant::now() > deadline {
                panic!(
                    "timed out waiting for {what}; last scrape:\n{}",
                    samples.text
                );
            }
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    pub fn logs(&self) -> String {
        let mut s = String::new();
        if let Ok(mut f) = std::fs::File::open(&self.stderr_path) {
            let _ = f.read_to_string(&mut s);
        }
        s
    }

    pub fn pid(&self) -> u32 {
        self.child.as_ref().map(|c| c.id()).unwrap_or(0)
    }

    /// Kills the process with SIGKILL (no shutdown work at all) and waits.
    pub fn kill(&mut self) {
        let mut child = self.child.take().expect("running");
        child.kill().expect("SIGKILL");
        let _ = child.wait();
    }

    /// Sends SIGTERM and waits for exit.
    pub fn terminate(&mut self) -> ExitStatus {
        let mut child = self.child.take().expect("running");
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(child.id().to_string())
            .status();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Ok(Some(status)) = child.try_wait() {
                return status;
            }
            if Instant::now() > deadline {
                let _ = child.kill();
                panic!("streamgate did not exit after SIGTERM: {}", self.logs());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

impl Drop for Collector {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

fn indent(text: &str, by: usize) -> String {
    let pad = " ".repeat(by);
    text.lines()
        .map(|l| format!("{pad}{l}"))
        .collect::<Vec<_>>()
        .join("\n")
}

pub fn http_client() -> reqwest::blocking::Client {
    reqwest::blocking::Client::builder()
        .timeout(Duration::from_secs(10))
        .build()
        .expect("http client")
}

/// Parsed samples of a text-format scrape: `name{sorted labels}` → value.
pub struct Samples {
    pub text: String,
    pub values: BTreeMap<String, f64>,
    pub types: BTreeMap<String, String>,
    pub help: BTreeMap<String, String>,
}

impl Samples {
    pub fn parse(text: &str) -> Samples {
        let mut values = BTreeMap::new();
        let mut types = BTreeMap::new();
        let mut help = BTreeMap::new();
        for line in text.lines() {
            if let Some(rest) = line.strip_prefix("# TYPE ") {
                let mut it = rest.splitn(2, ' ');
                types.insert(
                    it.next().unwrap_or_default().to_string(),
                    it.next().unwrap_or_default().to_string(),
                );
                continue;
            }
            if let Some(rest) = line.strip_prefix("# HELP ") {
                let mut it = rest.splitn(2, ' ');
                help.insert(
                    it.next().unwrap_or_default().to_string(),
                    it.next().unwrap_or_default().to_string(),
                );
                continue;
            }
            if line.starts_with('#') || line.trim().is_empty() {
                continue;
            }
            let (series, value) = line.rsplit_once(' ').expect("sample line has a value");
            let value: f64 = match value {
                "+Inf" => f64::INFINITY,
                "-Inf" => f64::NEG_INFINITY,
                v => v
                    .parse()
                    .unwrap_or_else(|_| panic!("bad value in `{line}`")),
            };
            values.insert(canonical(series), value);
        }
        Samples {
            text: text.to_string(),
            values,
            types,
            help,
        }
    }

    /// The value of `name` with exactly these labels.
    pub fn get(&self, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
        self.values.get(&key(name, labels)).copied()
    }

    /// Every sample of `name` whose labels include all of `labels`.
    pub fn matching(&self, name: &str, labels: &[(&str, &str)]) -> Vec<(String, f64)> {
        self.values
            .iter()
            .filter(|(k, _)| {
                let (n, l) = k.split_once('{').unwrap_or((k.as_str(), ""));
                n == name
                    && labels
                        .iter()
                        .all(|(lk, lv)| l.contains(&format!("{lk}=\"{lv}\"")))
            })
            .map(|(k, v)| (k.clone(), *v))
            .collect()
    }

    pub fn has_family(&self, name: &str) -> bool {
        self.values
            .keys()
            .any(|k| k.split('{').next() == Some(name))
    }
}

/// `name{a="1",b="2"}` with labels sorted, for lookups.
pub fn key(name: &str, labels: &[(&str, &str)]) -> String {
    let mut labels: Vec<_> = labels.to_vec();
    labels.sort();
    if labels.is_empty() {
        return name.to_string();
    }
    let inner: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    format!("{name}{{{}}}", inner.join(","))
}

fn canonical(series: &str) -> String {
    let Some((name, rest)) = series.split_once('{') else {
        return series.to_string();
    };
    let inner = rest.strip_suffix('}').unwrap_or(rest);
    let mut pairs = split_labels(inner);
    pairs.sort();
    if pairs.is_empty() {
        return name.to_string();
    }
    format!("{name}{{{}}}", pairs.join(","))
}

/// The label names of a sample's `a="x",b="y"`, in order.
pub fn label_names(inner: &str) -> Vec<String> {
    split_labels(inner)
        .into_iter()
        .filter_map(|pair| pair.split_once('=').map(|(name, _)| name.to_string()))
        .collect()
}

/// Splits `a="x",b="y,z"` respecting quotes and escapes.
fn split_labels(inner: &str) -> Vec<String> {
    let mut out = Vec::new();
    let mut current = String::new();
    let mut in_quotes = false;
    let mut escaped = false;
    for c in inner.chars() {
        if escaped {
            current.push(c);
            escaped = false;
            continue;
        }
        match c {
            '\\' => {
                current.push(c);
                escaped = true;
            }
            '"' => {
                current.push(c);
                in_quotes = !in_quotes;
            }
            ',' if !in_quotes => {
                if !current.is_empty() {
                    out.push(std::mem::take(&mut current));
                }
            }
            c => current.push(c),
        }
    }
    if !current.is_empty() {
        out.push(current);
    }
    out
}

/// Whether tests must find their external peers (set by `scripts/test`).
/// Outside it, a test whose peer is missing says so and returns.
pub fn peers_required() -> bool {
    std::env::var("STREAMGATE_REQUIRE_PEERS").is_ok_and(|v| v == "1")
}

/// Finds an executable on PATH, or fails/skips per [`peers_required`].
pub fn find_peer(name: &str) -> Option<PathBuf> {
    let found = std::env::var_os("PATH").and_then(|paths| {
        std::env::split_paths(&paths)
            .map(|p| p.join(name))
            .find(|p| p.is_file())
    });
    if found.is_none() {
        if peers_required() {
            panic!("peer `{name}` is not installed; scripts/test installs it");
        }
        eprintln!("SKIPPED: peer `{name}` not installed (run scripts/test)");
    }
    found
}

/// Runs `promtool check metrics` on an exposition; returns whether it
/// exited 0 and everything it printed.
pub fn promtool_check(promtool: &std::path::Path, exposition: &str) -> (bool, String) {
    use std::io::Write;
    let mut child = Command::new(promtool)
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start promtool");
    child
        .stdin
        .take()
        .expect("promtool stdin")
        .write_all(exposition.as_bytes())
        .expect("feed the exposition to promtool");
    let output = child.wait_with_output().expect("promtool finished");
    let report = format!(
        "{}{}",
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
    (output.status.success(), report)
}
