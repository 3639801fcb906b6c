//! Configuration of the analysis processor (`processors.analysis`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::analytics::baselines::{BaselineConfig, Seasonality};
use crate::analytics::forecasts::ForecastConfig;
use crate::config::types::HumanDuration;

/// `processors.analysis`: learned baselines, anomaly scores and forecasts
/// for selected series.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnalysisConfig {
    /// Whether series are analysed at all.
    pub enabled: bool,
    /// Which series: each rule names OTel metrics (`*`, `?` match) and may
    /// require label values. Counters are analysed as per-second rates.
    pub select: Vec<SelectRule>,
    /// Points matching any of these rules are not analysed, even when a
    /// `select` or `ratios` rule takes them (e.g. one noisy service).
    pub exclude: Vec<SelectRule>,
    /// The evaluation step, aligned to the clock: each step feeds every
    /// series' latest value to its baseline and forecaster.
    pub step: HumanDuration,
    /// Forecast horizons.
    pub horizons: Vec<HumanDuration>,
    /// Most series analysed; further ones are skipped and counted.
    pub max_series: usize,
    /// A series with no point for this long stops being analysed and its
    /// derived series are withdrawn.
    pub series_ttl: HumanDuration,
    /// Levels whose crossing is forecast: for series matching `name`,
    /// `streamgate_time_to_threshold_seconds{threshold}` is the time until
    /// the current trend reaches `value` (absent while it moves away).
    pub thresholds: Vec<ThresholdRule>,
    /// Ratios of a counter's increase, analysed like any other series: for
    /// counters named `name`, the share of the increase on series whose
    /// attributes match `numerator`, among the series that differ only in
    /// `over` (default: the error ratio of every span operation).
    pub ratios: Vec<RatioRule>,
    /// Anomaly detection settings of every baseline.
    pub anomaly: AnomalySettings,
    /// Coverage of the forecasts' prediction intervals (0.5 to 0.999).
    pub interval: f64,
}

/// `processors.analysis.anomaly`: how baselines score and flag.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct AnomalySettings {
    /// Score at which an anomaly starts (0 to 1).
    pub threshold: f64,
    /// No new anomaly of the same series within this time of the last,
    /// unless it stays 4× as far out (in σ) as that one for 3 steps.
    pub holdoff: HumanDuration,
    /// Width of the exported normal band, in σ.
    pub band: f64,
    /// Which seasonal profiles may be learned.
    pub seasonality: SeasonalityName,
}

/// Seasonal profiles a baseline may learn.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SeasonalityName {
    None,
    Daily,
    DailyAndWeekly,
}

impl Default for AnomalySettings {
    fn default() -> Self {
        Self {
            threshold: 0.95,
            holdoff: HumanDuration::secs(6 * 3600),
            band: 3.0,
            seasonality: SeasonalityName::DailyAndWeekly,
        }
    }
}

impl AnomalySettings {
    /// The baseline configuration these settings give.
    pub fn baseline(&self) -> BaselineConfig {
        BaselineConfig {
            threshold: self.threshold,
            holdoff_secs: self.holdoff.get().as_secs_f64(),
            band_z: self.band,
            seasonality: match self.seasonality {
                SeasonalityName::None => Seasonality::None,
                SeasonalityName::Daily => Seasonality::Daily,
                SeasonalityName::DailyAndWeekly => Seasonality::DailyAndWeekly,
            },
            ..BaselineConfig::default()
        }
    }
}

impl AnalysisConfig {
    /// The forecaster configuration: these horizons and interval.
    pub fn forecasts(&self) -> ForecastConfig {
        ForecastConfig {
            horizons_secs: self
                .horizons
                .iter()
                .map(|h| h.get().as_secs_f64())
                .collect(),
            interval_level: self.interval,
            ..ForecastConfig::default()
        }
    }
}

/// A ratio of one counter's increase: `numerator` series over all
/// values of `over`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RatioRule {
    /// OTel name pattern of a cumulative monotonic counter.
    pub name: String,
    /// The attribute summed away (its values make up the denominator).
    pub over: String,
    /// Attribute values of the numerator series (exact match).
    pub numerator: BTreeMap<String, String>,
}

impl RatioRule {
    /// The `ratio` label of the analysed series, `key=value[,key=value]`.
    pub fn label(&self) -> String {
        self.numerator
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(",")
    }
}

/// A saturation level to watch.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ThresholdRule {
    /// OTel metric name pattern.
    pub name: String,
    /// The level, in the series' unit (per second for counters).
    pub value: f64,
}

/// One selection rule.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SelectRule {
    /// OTel metric name pattern.
    pub name: String,
    /// Attribute values the point must have (exact match; looked up in
    /// the point's attributes, then its resource's).
    #[serde(default)]
    pub labels: BTreeMap<String, String>,
}

impl Default for AnalysisConfig {
    fn default() -> Self {
        let rule = |name: &str, labels: &[(&str, &str)]| SelectRule {
            name: name.into(),
            labels: labels
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        };
        Self {
            enabled: true,
            select: vec![
                rule("traces.span.metrics.calls", &[]),
                rule("log.error.records", &[]),
                rule(
                    "traces.span.metrics.duration.window.p95",
                    &[("window", "5m")],
                ),
                rule("streamgate.process.resident_memory", &[]),
                rule("streamgate.heap.allocated", &[]),
                rule("streamgate.process.cpu", &[]),
                rule("streamgate.runtime.global_queue_depth", &[]),
            ],
            exclude: Vec::new(),
            step: HumanDuration::secs(30),
            horizons: [300, 900, 3600]
                .iter()
                .map(|s| HumanDuration::secs(*s))
                .collect(),
            max_series: 1000,
            series_ttl: HumanDuration::secs(600),
            thresholds: Vec::new(),
            ratios: vec![RatioRule {
                name: "traces.span.metrics.calls".into(),
                over: "status.code".into(),
                numerator: [("status.code".to_string(), "STATUS_CODE_ERROR".to_string())]
                    .into_iter()
                    .collect(),
            }],
            anomaly: AnomalySettings::default(),
            interval: 0.9,
        }
    }
}

impl AnalysisConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.step.get().as_millis() < 50 {
            return Err("processors.analysis.step must be at least 50ms".into());
        }
        if self.horizons.is_empty() || self.horizons.len() > 8 {
            return Err("processors.analysis.horizons must list 1 to 8 durations".into());
        }
        if self.horizons.iter().any(|h| h.get().is_zero()) {
            return Err("processors.analysis.horizons must be above 0".into());
        }
        if self.max_series == 0 {
            return Err("processors.analysis.max_series must be at least 1".into());
        }
        if self.thresholds.iter().any(|t| !t.value.is_finite()) {
            return Err(
                "processors.analysis.thresholds: every value must be a finite number".into(),
            );
        }
        for r in &self.ratios {
            if r.over.is_empty() || r.numerator.is_empty() {
                return Err(format!(
                    "processors.analysis.ratios ({}): set `over` and at least one `numerator` attribute",
                    r.name
                ));
            }
        }
        let a = &self.anomaly;
        if !(a.threshold > 0.0 && a.threshold <= 1.0) {
            return Err(
                "processors.analysis.anomaly.threshold must be above 0 and at most 1, e.g. 0.95"
                    .into(),
            );
        }
        if !(a.band.is_finite() && a.band > 0.0 && a.band <= 100.0) {
            return Err(
                "processors.analysis.anomaly.band must be above 0 and at most 100 (σ), e.g. 3"
                    .into(),
            );
        }
        if !(self.interval >= 0.5 && self.interval <= 0.999) {
            return Err(
                "processors.analysis.interval must be between 0.5 and 0.999, e.g. 0.9".into(),
            );
        }
        if self.series_ttl.get() < self.step.get() {
            return Err("processors.analysis.series_ttl must be at least one step".into());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn anomaly_settings_are_checked_and_reach_the_baseline() {
        let ok = AnalysisConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let with = |f: &dyn Fn(&mut AnalysisConfig)| {
            let mut c = AnalysisConfig::default();
            f(&mut c);
            c.validate()
        };
        let err = with(&|c| c.anomaly.threshold = 0.0).unwrap_err();
        assert!(err.contains("anomaly.threshold"), "{err}");
        let err = with(&|c| c.anomaly.band = f64::NAN).unwrap_err();
        assert!(err.contains("anomaly.band"), "{err}");
        let err = with(&|c| c.interval = 1.0).unwrap_err();
        assert!(err.contains("interval"), "{err}");

        let settings: AnomalySettings =
            serde_yaml_ng::from_str("{threshold: 0.9, holdoff: 1h, seasonality: daily}")
                .expect("parses");
        let b = settings.baseline();
        assert_eq!(b.threshold, 0.9);
        assert_eq!(b.holdoff_secs, 3600.0);
        assert_eq!(b.band_z, 3.0);
        assert_eq!(b.seasonality, Seasonality::Daily);
        let f = AnalysisConfig::default().forecasts();
        assert_eq!(f.horizons_secs, vec![300.0, 900.0, 3600.0]);
        assert_eq!(f.interval_level, 0.9);
    }
}
