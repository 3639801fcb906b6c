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

/// One analysed series as the analysis processor last evaluated it: the
/// value fed to its models, the baseline's verdict and the forecasts.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AnalysedSeries {
    /// Prometheus name of the source series.
    pub metric: String,
    /// Its resource and point labels (with `transform` for rates and
    /// ratios).
    pub labels: BTreeMap<String, String>,
    pub value: f64,
    pub expected: f64,
    pub lower: f64,
    pub upper: f64,
    /// Anomaly score in `[0, 1]`.
    pub score: f64,
    /// Inside an anomaly now.
    pub anomalous: bool,
    /// Point forecasts with their prediction intervals, by horizon.
    pub forecasts: Vec<ForecastPoint>,
    /// Configured thresholds and when each is forecast to be reached
    /// (seconds from now; `None`: not on the current trend).
    pub thresholds: Vec<(f64, Option<f64>)>,
}

/// A forecast for one horizon.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ForecastPoint {
    /// `5m`, `15m`, `1h`.
    pub horizon: String,
    pub value: f64,
    pub lower: f64,
    pub upper: f64,
}

/// Anything that can list its analysed series.
pub trait AnalysisSnapshot: Send + Sync {
    /// The `limit` analysed series with the highest anomaly scores
    /// (anomalous ones first), then up to `limit` more forecast to reach a
    /// threshold soonest, and how many there are in all.
    fn analysed(&self, limit: usize) -> (Vec<AnalysedSeries>, usize);
}
