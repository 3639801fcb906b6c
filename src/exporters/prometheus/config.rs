//! Configuration of the Prometheus exporter (`exporters.prometheus`).

use serde::{Deserialize, Serialize};

use crate::config::types::HumanDuration;

/// `exporters.prometheus`: how received metrics appear on `/metrics`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PrometheusExporterConfig {
    /// A series that receives no point for this long disappears from
    /// `/metrics` (and is counted in
    /// `streamgate_exporter_prometheus_expired_series_total`).
    pub series_ttl: HumanDuration,
    /// Optional prefix for every translated metric name (`ns_` + name).
    /// StreamGate's own `streamgate_*` series are never prefixed.
    pub namespace: String,
    /// Append unit and type suffixes (`_seconds`, `_total`, `_ratio`) as the
    /// OTel→Prometheus rules say. Turning it off keeps names as sent, only
    /// sanitised.
    pub add_metric_suffixes: bool,
    /// Emit `target_info` with the resource attributes not used for `job`
    /// and `instance`.
    pub target_info: bool,
}

impl Default for PrometheusExporterConfig {
    fn default() -> Self {
        Self {
            series_ttl: HumanDuration::secs(300),
            namespace: String::new(),
            add_metric_suffixes: true,
            target_info: true,
        }
    }
}

impl PrometheusExporterConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.series_ttl.get().as_secs() < 1 {
            return Err(format!(
                "exporters.prometheus.series_ttl is {}; it must be at least 1s",
                self.series_ttl
            ));
        }
        let ns = &self.namespace;
        if !ns.is_empty()
            && (!ns.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
                || ns.starts_with(|c: char| c.is_ascii_digit()))
        {
            return Err(format!(
                "exporters.prometheus.namespace `{ns}` must match [a-zA-Z_][a-zA-Z0-9_]*"
            ));
        }
        Ok(())
    }
}
