//! Configuration of the window processor (`processors.windows`).

use serde::{Deserialize, Serialize};

use crate::config::types::HumanDuration;

/// `processors.windows`: rolling-window statistics of selected gauges,
/// histograms and span durations.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct WindowsConfig {
    /// Whether windows are computed at all.
    pub enabled: bool,
    /// OTel metric names to analyse (`*` matches any run of characters,
    /// `?` one). Gauges, histograms and exponential histograms only; span
    /// durations arrive as `traces.span.metrics.duration`.
    pub include: Vec<String>,
    /// Names never analysed, even when included.
    pub exclude: Vec<String>,
    /// Window lengths.
    pub windows: Vec<HumanDuration>,
    /// Sub-buckets per window: a window slides in steps of
    /// length / sub_buckets, and its memory is sub_buckets sketches.
    pub sub_buckets: u32,
    /// Quantiles reported per window.
    pub quantiles: Vec<f64>,
    /// How often window series are computed and exported.
    pub interval: HumanDuration,
    /// Most series analysed; further ones are skipped and counted.
    pub max_series: usize,
}

impl Default for WindowsConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            include: vec![
                "traces.span.metrics.duration".into(),
                "*duration*".into(),
                "*latency*".into(),
            ],
            exclude: Vec::new(),
            windows: [60, 300, 900, 3600, 86_400]
                .iter()
                .map(|s| HumanDuration::secs(*s))
                .collect(),
            sub_buckets: 10,
            quantiles: vec![0.5, 0.95, 0.99],
            interval: HumanDuration::secs(10),
            max_series: 2000,
        }
    }
}

impl WindowsConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.windows.is_empty() {
            return Err("processors.windows.windows is empty".into());
        }
        for w in &self.windows {
            let ms = w.get().as_millis();
            if ms < 1000 || ms % u128::from(self.sub_buckets.max(1)) != 0 {
                return Err(format!(
                    "processors.windows.windows: {w} must be at least 1s and divide into {} sub-buckets of whole milliseconds",
                    self.sub_buckets
                ));
            }
        }
        if !(1..=120).contains(&self.sub_buckets) {
            return Err("processors.windows.sub_buckets must be 1..=120".into());
        }
        if self.quantiles.iter().any(|q| !(0.0..=1.0).contains(q)) {
            return Err("processors.windows.quantiles must be within [0, 1]".into());
        }
        if self.interval.get().as_millis() < 100 {
            return Err("processors.windows.interval must be at least 100ms".into());
        }
        if self.max_series == 0 {
            return Err("processors.windows.max_series must be at least 1".into());
        }
        Ok(())
    }
}
