//! Configuration of the log-metrics connector (`connectors.logmetrics`).

use serde::{Deserialize, Serialize};

use crate::config::types::HumanDuration;

/// `connectors.logmetrics`: counts of log records by service and severity.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LogMetricsConfig {
    /// Whether log records are counted.
    pub enabled: bool,
    /// Most series per metric; beyond it records count in one overflow
    /// series labelled `otel_metric_overflow="true"`.
    pub cardinality_limit: usize,
    /// A series with no record for this long is dropped from the connector.
    pub series_ttl: HumanDuration,
}

impl Default for LogMetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            cardinality_limit: 10_000,
            series_ttl: HumanDuration::secs(300),
        }
    }
}

impl LogMetricsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.cardinality_limit == 0 {
            return Err("connectors.logmetrics.cardinality_limit must be at least 1".into());
        }
        Ok(())
    }
}
