//! Forecasts: [`Forecaster`] predicts one series at fixed horizons (in
//! seconds, e.g. 5 m, 15 m, 1 h) with a prediction interval, choosing per
//! horizon among several simple models by their tracked online error, and
//! estimates the time until a threshold is crossed.
//!
//! | file | owns |
//! |---|---|
//! | `forecaster.rs` | [`Forecaster`], [`ForecastConfig`], [`Forecast`], [`Model`], [`DailyShape`], [`SavedForecastState`] |
//! | `fit.rs` | the linear model's discounted least-squares sums |
//!
//! Pure: time is passed in as Unix seconds (`f64`), no clock, no I/O.
//! See `docs/ALGORITHMS.md` for the models, their references and the
//! evaluation on NAB data.

mod fit;
mod forecaster;

#[cfg(test)]
mod tests;

pub use forecaster::{
    DailyShape, Forecast, ForecastConfig, ForecastSettings, ForecastState, Forecaster, MODELS,
    Model, NoShape, SavedForecastState,
};

/// Why forecast parameters were rejected (by [`ForecastConfig::validate`]
/// and [`Forecaster::try_new`]; [`Forecaster::new`] clamps instead).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ForecastError {
    #[error("{name} = {value} is out of range: use a value in {range}")]
    OutOfRange {
        name: &'static str,
        value: f64,
        range: &'static str,
    },
    #[error("no horizons configured: give at least one, e.g. 300 s")]
    NoHorizons,
    #[error("too many horizons ({0}): use at most 8")]
    TooManyHorizons(usize),
}
