//! Configuration of self-profiling (`exporters.pprof`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::types::{HumanDuration, Secret};

/// `exporters.pprof`: StreamGate's own CPU and heap profiles on
/// `/debug/pprof`, optionally pushed to Pyroscope.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PprofConfig {
    /// Whether `/debug/pprof/*` is served.
    pub enabled: bool,
    /// Samples per second of a CPU profile (`?seconds=` long).
    pub frequency: u32,
    /// Longest profile a request may ask for, in seconds.
    pub max_seconds: u64,
    /// Average bytes allocated between two samples of the heap profiler
    /// (a power of two; smaller is finer and costlier).
    pub heap_sample_bytes: u64,
    /// When set, `/debug/pprof/*` answers only requests with
    /// `Authorization: Bearer <access_token>` (401 otherwise).
    pub access_token: Secret,
    /// Continuous profiling pushed to a Pyroscope-compatible server.
    pub pyroscope: PyroscopeConfig,
}

/// `exporters.pprof.pyroscope`: with `url` set, CPU profiles are taken
/// continuously in consecutive `upload_interval` windows and pushed, and
/// a heap profile every `heap_interval`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PyroscopeConfig {
    /// `http://host:4040` (empty: no continuous profiling).
    pub url: String,
    /// The application name; profiles are `<name>.cpu{labels}` and
    /// `<name>.inuse_space{labels}`.
    pub application_name: String,
    /// Labels of every profile (e.g. `{env: prod}`).
    pub labels: BTreeMap<String, String>,
    /// Length of each profile window.
    pub upload_interval: HumanDuration,
    /// Time between two heap profiles (`0s`: none).
    pub heap_interval: HumanDuration,
    /// `X-Scope-OrgID` for multi-tenant servers (empty: none).
    pub tenant_id: String,
    /// Bearer token (empty: none); wins over basic auth.
    pub bearer_token: Secret,
    pub basic_auth_username: String,
    pub basic_auth_password: Secret,
    /// Per push request.
    pub timeout: HumanDuration,
    /// Profiles waiting to be pushed at most; more are dropped and counted.
    pub queue: usize,
    /// Attempts per profile, with backoff from 1 s.
    pub attempts: u32,
}

impl Default for PyroscopeConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            application_name: "streamgate".into(),
            labels: BTreeMap::new(),
            upload_interval: HumanDuration::secs(10),
            heap_interval: HumanDuration::secs(60),
            tenant_id: String::new(),
            bearer_token: Secret::default(),
            basic_auth_username: String::new(),
            basic_auth_password: Secret::default(),
            timeout: HumanDuration::secs(10),
            queue: 6,
            attempts: 3,
        }
    }
}

impl Default for PprofConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            frequency: 100,
            max_seconds: 60,
            heap_sample_bytes: 512 * 1024,
            access_token: Secret::default(),
            pyroscope: PyroscopeConfig::default(),
        }
    }
}

impl PprofConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.frequency) {
            return Err(format!(
                "exporters.pprof.frequency is {}; it must be between 1 and 1000 (Hz), e.g. 100",
                self.frequency
            ));
        }
        if !(1..=3600).contains(&self.max_seconds) {
            return Err(format!(
                "exporters.pprof.max_seconds is {}; it must be between 1 and 3600",
                self.max_seconds
            ));
        }
        if !self.heap_sample_bytes.is_power_of_two()
            || !(4096..=1 << 30).contains(&self.heap_sample_bytes)
        {
            return Err(format!(
                "exporters.pprof.heap_sample_bytes is {}; it must be a power of two from 4096 to 1073741824, e.g. 524288",
                self.heap_sample_bytes
            ));
        }
        let p = &self.pyroscope;
        if !p.url.is_empty() && !p.url.starts_with("http://") {
            return Err(format!(
                "exporters.pprof.pyroscope.url must start with http:// (got {:?})",
                p.url
            ));
        }
        if !p.url.is_empty() && p.url.parse::<http::Uri>().is_err() {
            return Err(format!(
                "exporters.pprof.pyroscope.url {:?} is not a valid URL",
                p.url
            ));
        }
        if p.application_name.is_empty()
            || !p
                .application_name
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
        {
            return Err("exporters.pprof.pyroscope.application_name must be non-empty letters, digits, '.', '_' or '-'".into());
        }
        // The series name carries the labels as `{k=v,k=v}`, which has no
        // escaping: these characters would split or end a label.
        for (key, value) in &p.labels {
            let bad = |t: &str| {
                t.is_empty() || t.chars().any(|c| ",={}\"\\".contains(c) || c.is_control())
            };
            if bad(key) || bad(value) {
                return Err(format!(
                    "exporters.pprof.pyroscope.labels: `{key}: {value}` cannot be sent; a label's name and value must be non-empty, without `,`, `=`, `{{`, `}}`, quotes or backslashes (Pyroscope's series name has no escaping)"
                ));
            }
        }
        if p.upload_interval.get().as_millis() < 1000 {
            return Err("exporters.pprof.pyroscope.upload_interval must be at least 1s".into());
        }
        if !p.heap_interval.get().is_zero() && p.heap_interval.get().as_millis() < 1000 {
            return Err(
                "exporters.pprof.pyroscope.heap_interval must be 0s (off) or at least 1s".into(),
            );
        }
        if p.queue == 0 || p.attempts == 0 || p.timeout.get().is_zero() {
            return Err(
                "exporters.pprof.pyroscope.queue, attempts and timeout must be above 0".into(),
            );
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A label Pyroscope's unescaped series name would split is refused
    /// at load; an ordinary one is kept.
    #[test]
    fn labels_that_would_split_the_series_name_are_refused() {
        let with = |k: &str, v: &str| {
            let mut cfg = PprofConfig::default();
            cfg.pyroscope.url = "http://127.0.0.1:4040".into();
            cfg.pyroscope.labels.insert(k.into(), v.into());
            cfg.validate()
        };
        assert!(with("env", "prod-eu_1").is_ok());
        for (k, v) in [("region", "eu,west=1"), ("a=b", "c"), ("x", "}"), ("x", "")] {
            let e = with(k, v).unwrap_err();
            assert!(e.contains("cannot be sent"), "{k}: {v}: {e}");
        }
    }
}
