//! Configuration of the span-metrics connector (`connectors.spanmetrics`).

use serde::{Deserialize, Serialize};

use crate::config::types::HumanDuration;
pub use crate::connectors::dimension::{Dimension, default_latency_buckets};

/// `connectors.spanmetrics`: RED metrics from spans, compatible with the
/// OTel Collector's spanmetrics connector.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct SpanMetricsConfig {
    /// Whether spans are turned into metrics.
    pub enabled: bool,
    /// Prefix of the metric names: `{namespace}.calls` and
    /// `{namespace}.duration` (→ `traces_span_metrics_calls_total`,
    /// `traces_span_metrics_duration_seconds`).
    pub namespace: String,
    /// Upper bounds of the duration histogram's buckets.
    pub histogram: HistogramConfig,
    /// Extra dimensions, looked up in the span's attributes, then the
    /// resource's, then `default`; without a default a missing dimension is
    /// left out.
    pub dimensions: Vec<Dimension>,
    /// Most series per metric; beyond it spans count in one overflow series
    /// labelled `otel_metric_overflow="true"`.
    pub cardinality_limit: usize,
    /// A series with no span for this long is dropped from the connector.
    pub series_ttl: HumanDuration,
    /// Attach the trace and span id of recent spans as exemplars.
    pub exemplars: bool,
    /// How often the series that changed are handed on as metrics (`0s`:
    /// after every traces request). Spans are counted as they arrive; this
    /// only sets how soon the counts show on `/metrics`, and lets a busy
    /// series be emitted once per interval instead of once per request.
    pub flush_interval: HumanDuration,
}

/// The duration histogram: `explicit` buckets (the default) or
/// `exponential`; at most one of the two.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct HistogramConfig {
    /// Explicit bucket upper bounds.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explicit: Option<ExplicitBuckets>,
    /// Base-2 exponential buckets that pick their own scale.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub exponential: Option<ExponentialBuckets>,
}

/// `histogram.explicit`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExplicitBuckets {
    /// Upper bounds, strictly increasing (durations: `2ms`, `1s`, …).
    pub buckets: Vec<HumanDuration>,
}

impl Default for ExplicitBuckets {
    fn default() -> Self {
        Self {
            buckets: default_latency_buckets(),
        }
    }
}

/// `histogram.exponential`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ExponentialBuckets {
    /// Most buckets; the scale halves when more would be needed.
    pub max_size: u32,
}

impl Default for ExponentialBuckets {
    fn default() -> Self {
        Self { max_size: 160 }
    }
}

/// What the histogram config means.
#[derive(Debug, Clone, PartialEq)]
pub enum HistogramKind {
    /// Bounds in seconds.
    Explicit(Vec<f64>),
    Exponential {
        max_size: u32,
    },
}

impl HistogramConfig {
    pub fn kind(&self) -> HistogramKind {
        match (&self.explicit, &self.exponential) {
            (_, Some(e)) => HistogramKind::Exponential {
                max_size: e.max_size,
            },
            (Some(x), None) => {
                HistogramKind::Explicit(x.buckets.iter().map(|b| b.get().as_secs_f64()).collect())
            }
            (None, None) => HistogramKind::Explicit(
                default_latency_buckets()
                    .iter()
                    .map(|b| b.get().as_secs_f64())
                    .collect(),
            ),
        }
    }
}

impl Default for SpanMetricsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            namespace: "traces.span.metrics".into(),
            histogram: HistogramConfig::default(),
            dimensions: Vec::new(),
            cardinality_limit: 10_000,
            series_ttl: HumanDuration::secs(300),
            exemplars: true,
            flush_interval: HumanDuration::secs(1),
        }
    }
}

impl SpanMetricsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.namespace.trim().is_empty() {
            return Err("connectors.spanmetrics.namespace must not be empty".into());
        }
        if self.histogram.explicit.is_some() && self.histogram.exponential.is_some() {
            return Err(
                "connectors.spanmetrics.histogram: set `explicit` or `exponential`, not both"
                    .into(),
            );
        }
        match self.histogram.kind() {
            HistogramKind::Explicit(buckets) => {
                if buckets.is_empty() {
                    return Err("connectors.spanmetrics.histogram.explicit.buckets is empty".into());
                }
                if buckets.windows(2).any(|w| w[0] >= w[1]) {
                    return Err(
                        "connectors.spanmetrics.histogram.explicit.buckets must be strictly increasing"
                            .into(),
                    );
                }
            }
            HistogramKind::Exponential { max_size } => {
                if !(4..=1024).contains(&max_size) {
                    return Err(
                        "connectors.spanmetrics.histogram.exponential.max_size must be 4..=1024"
                            .into(),
                    );
                }
            }
        }
        if self.cardinality_limit == 0 {
            return Err("connectors.spanmetrics.cardinality_limit must be at least 1".into());
        }
        if self.flush_interval.get() > std::time::Duration::from_secs(60) {
            return Err("connectors.spanmetrics.flush_interval must be at most 1m".into());
        }
        for d in &self.dimensions {
            if d.name.is_empty() {
                return Err(
                    "connectors.spanmetrics.dimensions: a dimension has an empty name".into(),
                );
            }
            if ["service.name", "span.name", "span.kind", "status.code"].contains(&d.name.as_str())
            {
                return Err(format!(
                    "connectors.spanmetrics.dimensions: `{}` is always a dimension",
                    d.name
                ));
            }
        }
        Ok(())
    }
}
