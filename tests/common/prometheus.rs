//! A real Prometheus for black-box tests: started from the Debian binary
//! with a given config in a temp directory (config, TSDB, log), on a free
//! loopback port (retried if another process takes the port first),
//! waited for until ready, queried through its HTTP API, killed on drop
//! (also when a test panics).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{free_port, http_client};

/// A running Prometheus; see the module docs.
pub struct Prometheus {
    child: Option<Child>,
    addr: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Prometheus {
    /// Starts `binary` with `config` (YAML). Rule files the config names
    /// must exist; one Prometheus cannot load ends it, and this panics
    /// with its log.
    pub fn start(binary: &Path, config: &str) -> Prometheus {
        Self::start_with(binary, config, &[], None)
    }

    /// [`Prometheus::start`] with extra command-line flags (e.g.
    /// `--web.enable-remote-write-receiver`), and on `addr` when given
    /// (a port a test reserved; not retried elsewhere).
    pub fn start_with(
        binary: &Path,
        config: &str,
        flags: &[&str],
        addr: Option<&str>,
    ) -> Prometheus {
        for _ in 0..3 {
            let mut prometheus = Prometheus::spawn(binary, config, flags, addr);
            match prometheus.wait_ready() {
                Ok(()) => return prometheus,
                Err(log) if log.contains("address already in use") => continue,
                Err(log) => panic!("prometheus exited early:\n{log}"),
            }
        }
        panic!("prometheus found no free port in 3 tries");
    }

    fn spawn(binary: &Path, config: &str, flags: &[&str], addr: Option<&str>) -> Prometheus {
        let dir = tempfile::tempdir().expect("temp dir");
        let config_path = dir.path().join("prometheus.yml");
        std::fs::write(&config_path, config).expect("write prometheus.yml");
        let log = dir.path().join("prometheus.log");
        let log_file = std::fs::File::create(&log).expect("log file");
        let addr = addr
            .map(str::to_string)
            .unwrap_or_else(|| format!("127.0.0.1:{}", free_port()));
        let child = Command::new(binary)
            .args(flags)
            .arg(format!("--config.file={}", config_path.display()))
            .arg(format!(
                "--storage.tsdb.path={}",
                dir.path().join("data").display()
            ))
            .arg(format!("--web.listen-address={addr}"))
            .stdin(Stdio::null())
            .stdout(log_file.try_clone().expect("log file"))
            .stderr(log_file)
            .spawn()
            .expect("start prometheus");
        Prometheus {
            child: Some(child),
            addr,
            log,
            _dir: dir,
        }
    }

    pub fn logs(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{}", self.addr, path)
    }

    /// Waits for `/-/ready`; `Err(log)` if Prometheus exited first.
    fn wait_ready(&mut self) -> Result<(), String> {
        let deadline = Instant::now() + Duration::from_secs(30);
        while Instant::now() < deadline {
            if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                return Err(format!("exit {status}\n{}", self.logs()));
            }
            if let Ok(r) = http_client().get(self.url("/-/ready")).send()
                && r.status().is_success()
            {
                // Ready, and ours: not another server on a reused port.
                if let Some(Ok(Some(status))) = self.child.as_mut().map(|c| c.try_wait()) {
                    return Err(format!("exit {status}\n{}", self.logs()));
                }
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(100));
        }
        panic!("prometheus not ready in 30s:\n{}", self.logs());
    }

    /// `GET path` with query parameters: `data` of a success answer, or
    /// Prometheus' error.
    pub fn try_api(&self, path: &str, params: &[(&str, &str)]) -> Result<Value, String> {
        let query: Vec<String> = params
            .iter()
            .map(|(k, v)| format!("{}={}", percent_encode(k), percent_encode(v)))
            .collect();
        let response = http_client()
            .get(format!("{}?{}", self.url(path), query.join("&")))
            .send()
            .map_err(|e| format!("GET {path}: {e}"))?;
        let text = response.text().map_err(|e| e.to_string())?;
        let answer: Value =
            serde_json::from_str(&text).map_err(|e| format!("not JSON ({e}): {text}"))?;
        if answer["status"] != "success" {
            return Err(format!("{}: {}", answer["errorType"], answer["error"]));
        }
        Ok(answer["data"].clone())
    }

    /// Like [`Prometheus::try_api`], panicking on an error answer.
    pub fn api(&self, path: &str, params: &[(&str, &str)]) -> Value {
        self.try_api(path, params)
            .unwrap_or_else(|e| panic!("{path} {params:?}: {e}"))
    }

    /// The result vector of an instant query, or Prometheus' error.
    pub fn try_query(&self, promql: &str) -> Result<Vec<Value>, String> {
        let data = self.try_api("/api/v1/query", &[("query", promql)])?;
        Ok(data["result"].as_array().cloned().unwrap_or_default())
    }

    /// The result vector of an instant query.
    pub fn query(&self, promql: &str) -> Vec<Value> {
        self.try_query(promql)
            .unwrap_or_else(|e| panic!("`{promql}`: {e}"))
    }
}

impl Drop for Prometheus {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// Percent-encodes a URL query component (everything but unreserved
/// characters).
pub fn percent_encode(text: &str) -> String {
    let mut out = String::with_capacity(text.len() * 3);
    for b in text.bytes() {
        if b.is_ascii_alphanumeric() || b"-._~".contains(&b) {
            out.push(b as char);
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

/// The sample value of a query result.
pub fn sample_value(result: &Value) -> f64 {
    result["value"][1]
        .as_str()
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no value in {result}"))
}
