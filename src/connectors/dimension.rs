//! Configuration pieces the trace connectors share: extra dimensions and
//! the default latency buckets (those of the OTel Collector's spanmetrics
//! and servicegraph connectors).

use serde::{Deserialize, Serialize};

use crate::config::types::HumanDuration;

/// An extra dimension.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Dimension {
    /// Attribute key, e.g. `http.request.method`.
    pub name: String,
    /// Value when neither the span nor its resource has the attribute;
    /// without one, a missing dimension is left out.
    #[serde(default)]
    pub default: Option<String>,
}

/// Default latency buckets: 2ms, 4ms, 6ms, 8ms, 10ms, 50ms, 100ms, 200ms,
/// 400ms, 800ms, 1s, 1.4s, 2s, 5s, 10s, 15s.
pub fn default_latency_buckets() -> Vec<HumanDuration> {
    [
        2, 4, 6, 8, 10, 50, 100, 200, 400, 800, 1000, 1400, 2000, 5000, 10_000, 15_000,
    ]
    .iter()
    .map(|ms| HumanDuration(std::time::Duration::from_millis(*ms)))
    .collect()
}
