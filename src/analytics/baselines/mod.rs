//! Baselines: a streaming, per-series anomaly baseline ([`Baseline`]) and
//! a counter-to-rate helper ([`RateConverter`]).
//!
//! | file | owns |
//! |---|---|
//! | `baseline.rs` | [`Baseline`], [`BaselineConfig`], [`BaselineOutput`] |
//! | `rate.rs` | [`RateConverter`]: cumulative counter → per-second rate |
//!
//! Everything is pure: time is passed in as Unix seconds (`f64`), values
//! are `f64`, and nothing reads a clock or does I/O. Memory per series is
//! fixed at construction and reported by [`Baseline::memory_bytes`]
//! (5.3 KB with the defaults). See `docs/ALGORITHMS.md` for the
//! algorithm, its references and the evaluation on NAB data.

mod baseline;
mod rate;

#[cfg(test)]
mod tests;

pub use baseline::{Baseline, BaselineConfig, BaselineOutput, BaselineSettings, Seasonality};
pub use rate::RateConverter;

/// Why baseline parameters were rejected (by [`BaselineConfig::validate`]
/// and [`Baseline::try_new`]; [`Baseline::new`] clamps instead).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum BaselineError {
    #[error("{name} = {value} is out of range: use a value in {range}")]
    OutOfRange {
        name: &'static str,
        value: f64,
        range: &'static str,
    },
}
