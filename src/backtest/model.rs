//! The analytics as a [`RowModel`]: the streaming baseline and the
//! forecaster of `analytics`, exactly as the collector runs them.

use crate::analytics::baselines::{Baseline, BaselineConfig};
use crate::analytics::forecasts::{ForecastConfig, Forecaster};

use super::RowModel;
use super::runner::{Horizon, columns};

/// Baseline + forecasts for one series.
pub struct AnalyticsModel {
    baseline: Baseline,
    forecaster: Forecaster,
    horizons: Vec<Horizon>,
}

/// `5m`, `15m`, `1h`, `90s` for a horizon in seconds.
pub fn horizon_label(secs: f64) -> String {
    let s = secs.round() as u64;
    if s.is_multiple_of(3600) {
        format!("{}h", s / 3600)
    } else if s.is_multiple_of(60) {
        format!("{}m", s / 60)
    } else {
        format!("{s}s")
    }
}

impl AnalyticsModel {
    pub fn new(baseline: BaselineConfig, forecasts: ForecastConfig) -> Self {
        let horizons = forecasts
            .horizons_secs
            .iter()
            .map(|s| Horizon {
                secs: *s,
                label: horizon_label(*s),
            })
            .collect();
        Self {
            baseline: Baseline::new(baseline),
            forecaster: Forecaster::new(forecasts),
            horizons,
        }
    }

    pub fn horizons(&self) -> &[Horizon] {
        &self.horizons
    }
}

impl RowModel for AnalyticsModel {
    fn columns(&self) -> Vec<String> {
        columns(&self.horizons)
    }

    fn update(&mut self, time_secs: f64, value: Option<f64>, out: &mut Vec<Option<f64>>) {
        let Some(value) = value else {
            out.resize(5 + 3 * self.horizons.len(), None);
            return;
        };
        match self.baseline.update(time_secs, value) {
            Some(b) => out.extend([
                Some(b.expected),
                Some(b.lower),
                Some(b.upper),
                Some(b.score),
                Some(if b.anomaly { 1.0 } else { 0.0 }),
            ]),
            None => out.extend([None; 5]),
        }
        self.forecaster
            .update_with(time_secs, value, &self.baseline);
        for h in 0..self.horizons.len() {
            match self.forecaster.forecast(h) {
                Some(f) => out.extend([Some(f.value), Some(f.lower), Some(f.upper)]),
                None => out.extend([None; 3]),
            }
        }
    }
}
