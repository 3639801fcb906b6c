//! Recommendations: plain-language findings derived from forecasts and
//! anomalies, with the series and numbers behind each.

use std::collections::BTreeMap;

use serde::Serialize;

/// One finding.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Recommendation {
    /// `threshold` (a level forecast to be crossed) or `anomaly`.
    pub kind: &'static str,
    /// The finding in one sentence.
    pub summary: String,
    /// Prometheus name of the series it is about.
    pub metric: String,
    /// The series' labels (job, instance, attributes).
    pub labels: BTreeMap<String, String>,
    /// The numbers behind the finding (value, expected, eta_seconds, …).
    pub numbers: BTreeMap<String, f64>,
}

/// Anything that can list current recommendations.
pub trait RecommendationSource: Send + Sync {
    fn recommendations(&self) -> Vec<Recommendation>;
}
