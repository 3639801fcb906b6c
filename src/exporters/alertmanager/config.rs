//! Configuration of the built-in alerting (`exporters.alertmanager`).

use serde::{Deserialize, Serialize};

use crate::config::types::HumanDuration;

/// `exporters.alertmanager`: alerts from anomalies and threshold
/// forecasts, without a rule evaluator, kept for the API and pushed to
/// Alertmanager's API v2 when `url` is set.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AlertingConfig {
    /// Whether alerts are derived from anomalies and forecasts (manual
    /// alerts through the API work either way).
    pub enabled: bool,
    /// Alertmanager, `http://host:9093` (empty: alerts stay on the API).
    pub url: String,
    /// Per push request.
    pub timeout: HumanDuration,
    /// Notification batches waiting at most; more are dropped and counted.
    pub queue: usize,
    /// Attempts per batch, with exponential backoff from 1 s.
    pub attempts: u32,
    /// How often anomalies and forecasts are turned into alerts.
    pub evaluation_interval: HumanDuration,
    /// How often active (and recently resolved) alerts are re-sent.
    pub resend_interval: HumanDuration,
    /// A warning alert still active after this becomes critical.
    pub escalate_after: HumanDuration,
    /// A forecast threshold crossing closer than this raises an alert ...
    pub forecast_within: HumanDuration,
    /// ... a critical one when closer than this.
    pub critical_within: HumanDuration,
    /// Resolved alerts kept for `GET /api/v1/alerts/history`.
    pub history: usize,
    /// Most active alerts; further new ones are skipped and logged.
    pub max_active: usize,
    /// Base URL of StreamGate as people reach it, for `generatorURL`
    /// (empty: `http://<server.endpoint>`).
    pub external_url: String,
}

impl Default for AlertingConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            url: String::new(),
            timeout: HumanDuration::secs(10),
            queue: 100,
            attempts: 5,
            evaluation_interval: HumanDuration::secs(15),
            resend_interval: HumanDuration::secs(60),
            escalate_after: HumanDuration::secs(30 * 60),
            forecast_within: HumanDuration::secs(3600),
            critical_within: HumanDuration::secs(15 * 60),
            history: 1000,
            max_active: 1000,
            external_url: String::new(),
        }
    }
}

impl AlertingConfig {
    pub fn validate(&self) -> Result<(), String> {
        let p = "exporters.alertmanager";
        if self.evaluation_interval.get().as_millis() < 10 {
            return Err(format!("{p}.evaluation_interval must be at least 10ms"));
        }
        if self.resend_interval.get() < self.evaluation_interval.get() {
            return Err(format!(
                "{p}.resend_interval must be at least evaluation_interval"
            ));
        }
        if self.critical_within.get() > self.forecast_within.get() {
            return Err(format!(
                "{p}.critical_within must not exceed forecast_within"
            ));
        }
        if self.history == 0 || self.max_active == 0 {
            return Err(format!("{p}.history and {p}.max_active must be at least 1"));
        }
        let url = &self.url;
        if !url.is_empty() && !url.starts_with("http://") {
            return Err(format!(
                "{p}.url must start with http:// (got {url:?}); TLS comes with the security settings"
            ));
        }
        if !url.is_empty() && url.parse::<http::Uri>().is_err() {
            return Err(format!("{p}.url {url:?} is not a valid URL"));
        }
        if self.queue == 0 || self.attempts == 0 {
            return Err(format!("{p}.queue and {p}.attempts must be at least 1"));
        }
        if self.timeout.get().is_zero() {
            return Err(format!("{p}.timeout must be above 0"));
        }
        Ok(())
    }
}
