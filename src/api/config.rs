//! Configuration of the admin server (`server`): `/metrics`, health and
//! API; and of the debugging API's bounds (`api`).

use serde::{Deserialize, Serialize};

use crate::config::types::{AuthConfig, Endpoint, HumanDuration, TlsConfig};

/// `server`: the HTTP server for `/metrics`, `/healthz`, `/readyz` and `/api`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address, `IP:PORT`. Containers use `0.0.0.0`.
    pub endpoint: Endpoint,
    /// How long shutdown waits for in-flight requests before giving up.
    pub shutdown_timeout: HumanDuration,
    /// Requests handled at once; more get 503 with `Retry-After` at once
    /// (a scrape storm or a flood of API calls cannot pile up).
    pub max_concurrent_requests: usize,
    /// Serve HTTPS instead of plain HTTP (absent: plain HTTP).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
    /// Credentials for the admin server (none: no authentication).
    pub auth: AuthConfig,
    /// With `auth` set, what needs credentials: `writes` (requests that
    /// change state, `POST` and the like, and `/debug/pprof`) or `all`
    /// (everything but `/healthz` and `/readyz`, which probes use).
    pub require_auth_for: AuthScope,
}

/// What the admin server's credentials guard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuthScope {
    /// Requests that change state, and profiling.
    #[default]
    Writes,
    /// Everything but the health probes.
    All,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            endpoint: Endpoint::loopback(9464),
            shutdown_timeout: HumanDuration::secs(30),
            max_concurrent_requests: 64,
            tls: None,
            auth: AuthConfig::default(),
            require_auth_for: AuthScope::Writes,
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.shutdown_timeout.get().is_zero() {
            return Err("server.shutdown_timeout must be above 0".into());
        }
        if self.max_concurrent_requests == 0 {
            return Err("server.max_concurrent_requests must be at least 1".into());
        }
        self.auth.validate("server.auth")?;
        if let Some(tls) = &self.tls {
            tls.validate("server.tls")?;
        }
        Ok(())
    }
}

/// `api`: bounds of the debugging JSON API (`/api/v1/series`,
/// `/api/v1/series/history`, `/api/v1/tail/*`). Everything it keeps is
/// bounded here, so it costs fixed memory whatever the traffic.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ApiConfig {
    /// Most series one `GET /api/v1/series` returns: the default and the
    /// cap of its `limit` parameter.
    pub series_limit: usize,
    /// Series history (`GET /api/v1/series/history`).
    pub history: HistoryConfig,
    /// The most recent spans and log records (`GET /api/v1/tail/*`).
    pub tail: TailConfig,
    /// Period summaries (`/api/v1/reports`).
    pub reports: ReportsConfig,
    /// The web console at `/`.
    pub console: ConsoleConfig,
}

/// `api.console`: the web console's pages and what its charts remember.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ConsoleConfig {
    /// Whether `/` and `/console/*` are served.
    pub enabled: bool,
    /// Time between two samples of the charts (and between two live
    /// refreshes of a page, at least 2 s).
    pub sample_interval: HumanDuration,
    /// Samples each chart keeps (`points × sample_interval` of history).
    pub points: usize,
}

impl Default for ConsoleConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            sample_interval: HumanDuration::secs(5),
            points: 360,
        }
    }
}

/// `api.reports`: summaries of a period (anomalies, forecasts near
/// thresholds, recommendations, SLO status, ingest volume, alerts).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ReportsConfig {
    /// A report is generated on this schedule (and on `POST`).
    pub interval: HumanDuration,
    /// Reports kept (the oldest is dropped first).
    pub history: usize,
    /// Availability objective per service for the SLO status (0.999 =
    /// 99.9 % of server calls without error).
    pub slo_objective: f64,
    /// Entries per list in a report (anomalies, forecasts, ...).
    pub top: usize,
}

impl Default for ReportsConfig {
    fn default() -> Self {
        Self {
            interval: HumanDuration::secs(3600),
            history: 48,
            slo_objective: 0.999,
            top: 10,
        }
    }
}

/// `api.history`: which series keep a history and how much.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistoryConfig {
    /// Series watched at once. A series is watched from its first history
    /// request; watching one more drops the least recently requested.
    pub max_series: usize,
    /// Points kept per watched series (the oldest is dropped first).
    pub points: usize,
}

/// `api.tail`: the rings of recent spans and log records.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct TailConfig {
    /// Spans kept (the most recent); 0 turns `/api/v1/tail/traces` off.
    pub spans: usize,
    /// Log records kept (the most recent); 0 turns `/api/v1/tail/logs` off.
    pub logs: usize,
    /// Longest string kept (span name, attribute value, log body), in
    /// bytes; longer ones are cut at a character boundary and end in `…`.
    pub max_string_length: usize,
    /// Attributes kept per span or log record; the rest are counted in
    /// `dropped_attributes`.
    pub max_attributes: usize,
}

impl Default for ApiConfig {
    fn default() -> Self {
        Self {
            series_limit: 1000,
            history: HistoryConfig::default(),
            tail: TailConfig::default(),
            reports: ReportsConfig::default(),
            console: ConsoleConfig::default(),
        }
    }
}

impl Default for HistoryConfig {
    fn default() -> Self {
        Self {
            max_series: 64,
            points: 256,
        }
    }
}

impl Default for TailConfig {
    fn default() -> Self {
        Self {
            spans: 1000,
            logs: 1000,
            max_string_length: 256,
            max_attributes: 32,
        }
    }
}

impl ApiConfig {
    /// Checks the bounds; the error names the key.
    pub fn validate(&self) -> Result<(), String> {
        let check = |key: &str, value: usize, min: usize, max: usize| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "api.{key} is {value}; it must be between {min} and {max}"
                ))
            }
        };
        check("series_limit", self.series_limit, 1, 100_000)?;
        check("console.points", self.console.points, 2, 100_000)?;
        if self.console.sample_interval.get() < std::time::Duration::from_secs(1) {
            return Err(format!(
                "api.console.sample_interval is {}; it must be at least 1s",
                self.console.sample_interval
            ));
        }
        check("history.max_series", self.history.max_series, 1, 10_000)?;
        check("history.points", self.history.points, 1, 100_000)?;
        check("tail.spans", self.tail.spans, 0, 1_000_000)?;
        check("tail.logs", self.tail.logs, 0, 1_000_000)?;
        check(
            "tail.max_string_length",
            self.tail.max_string_length,
            16,
            65_536,
        )?;
        check("tail.max_attributes", self.tail.max_attributes, 0, 1_000)?;
        check("reports.history", self.reports.history, 1, 10_000)?;
        check("reports.top", self.reports.top, 1, 1_000)?;
        if self.reports.interval.get().as_secs() < 1 {
            return Err("api.reports.interval must be at least 1s".into());
        }
        let o = self.reports.slo_objective;
        if !(o > 0.0 && o < 1.0) {
            return Err(format!(
                "api.reports.slo_objective is {o}; it must be between 0 and 1 (exclusive), e.g. 0.999"
            ));
        }
        Ok(())
    }
}
