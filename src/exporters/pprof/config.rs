//! Configuration of self-profiling (`exporters.pprof`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::types::HumanDuration;

/// `exporters.pprof`: StreamGate's own CPU profiles on `/debug/pprof`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PprofConfig {
    /// Whether `/debug/pprof/*` is served.
    pub enabled: bool,
    /// Samples per second of a CPU profile (`?seconds=` long).
    pub frequency: u32,
    /// Longest profile a request may ask for, in seconds.
    pub max_seconds: u64,
    /// Continuous profiling pushed to a Pyroscope-compatible server.
    pub pyroscope: PyroscopeConfig,
}

/// `exporters.pprof.pyroscope`: with `url` set, CPU profiles are taken
/// continuously in consecutive `upload_interval` windows and pushed.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PyroscopeConfig {
    /// `http://host:4040` (empty: no continuous profiling).
    pub url: String,
    /// The application name; profiles are `<name>.cpu{labels}`.
    pub application_name: String,
    /// Labels of every profile (e.g. `{env: prod}`).
    pub labels: BTreeMap<String, String>,
    /// Length of each profile window.
    pub upload_interval: HumanDuration,
    /// `X-Scope-OrgID` for multi-tenant servers (empty: none).
    pub tenant_id: String,
    /// Bearer token (empty: none); wins over basic auth.
    pub bearer_token: String,
    pub basic_auth_username: String,
    pub basic_auth_password: String,
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
            tenant_id: String::new(),
            bearer_token: String::new(),
            basic_auth_username: String::new(),
            basic_auth_password: String::new(),
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
        if p.upload_interval.get().as_millis() < 1000 {
            return Err("exporters.pprof.pyroscope.upload_interval must be at least 1s".into());
        }
        if p.queue == 0 || p.attempts == 0 || p.timeout.get().is_zero() {
            return Err(
                "exporters.pprof.pyroscope.queue, attempts and timeout must be above 0".into(),
            );
        }
        Ok(())
    }
}
