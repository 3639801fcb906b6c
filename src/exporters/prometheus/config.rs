//! Configuration of the Prometheus exporter (`exporters.prometheus`).

use serde::{Deserialize, Serialize};

use crate::config::types::HumanDuration;

use super::store::SeriesLimits;

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
    /// In OpenMetrics (what Prometheus asks for first), write each
    /// counter's, histogram's and summary's start time as its `_created`
    /// sample. Prometheus 2.x stores each `_created` sample as a series of
    /// its own; `false` leaves them out, as client_golang does by default
    /// (the text format never has them).
    pub openmetrics_created: bool,
    /// Most series on `/metrics` over all metrics. A new series beyond it
    /// is folded into its metric's `otel_metric_overflow="true"` series
    /// (counted in `streamgate_exporter_prometheus_overflow_points_total`).
    pub max_series: usize,
    /// Most series of one metric; beyond it likewise.
    pub max_series_per_metric: usize,
    /// Most labels of a new series (attributes plus `job`, `instance` and
    /// scope labels); a point with more is refused (partial success), as
    /// Prometheus' `label_limit` and Mimir's label-count limit would fail
    /// it later.
    pub max_labels_per_series: usize,
    /// Most bytes of one label value of a new series; a point with a
    /// longer one is refused likewise.
    pub max_label_value_length: usize,
}

impl Default for PrometheusExporterConfig {
    fn default() -> Self {
        Self {
            series_ttl: HumanDuration::secs(300),
            namespace: String::new(),
            add_metric_suffixes: true,
            target_info: true,
            openmetrics_created: true,
            max_series: 2_000_000,
            max_series_per_metric: 200_000,
            max_labels_per_series: 128,
            max_label_value_length: 4096,
        }
    }
}

impl PrometheusExporterConfig {
    /// The series limits of the store.
    pub fn series_limits(&self) -> SeriesLimits {
        SeriesLimits {
            per_metric: self.max_series_per_metric,
            global: self.max_series,
        }
    }

    pub fn validate(&self) -> Result<(), String> {
        if self.max_labels_per_series < 8 || self.max_label_value_length < 64 {
            return Err(
                "exporters.prometheus.max_labels_per_series must be at least 8 and max_label_value_length at least 64"
                    .into(),
            );
        }
        if self.max_series == 0 || self.max_series_per_metric == 0 {
            return Err(
                "exporters.prometheus.max_series and max_series_per_metric must be at least 1"
                    .into(),
            );
        }
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
