//! Aggregation: quantile sketches ([`Sketch`]) and sliding time windows of
//! them ([`WindowedStats`]), the building blocks the processors use to
//! turn a series' raw values into per-window count, rate, mean, min, max
//! and quantiles.
//!
//! | file | owns |
//! |---|---|
//! | `mapping.rs` | value ↔ bin mapping and the relative-error proof |
//! | `store.rs` | dense, bounded, collapsing bin counters for one sign |
//! | `sketch.rs` | [`Sketch`]: add, merge, quantile, memory bound |
//! | `window.rs` | [`WindowSpec`], [`WindowedStats`], [`WindowSummary`] |
//!
//! Guarantee: with the default accuracy ([`DEFAULT_RELATIVE_ACCURACY`],
//! 0.5 %) every quantile is within 0.5 % (so within the promised 1 %) of
//! the exact value of its rank, as long as a sign's values span less than
//! `γ^max_bins` (≈7.8e8 with the defaults); see `sketch.rs` for what
//! happens beyond.

mod mapping;
mod sketch;
mod store;
mod window;

#[cfg(test)]
mod tests;

pub use sketch::{
    DEFAULT_MAX_BINS, DEFAULT_RELATIVE_ACCURACY, MAX_MAX_BINS, MAX_RELATIVE_ACCURACY, MIN_MAX_BINS,
    MIN_RELATIVE_ACCURACY, Sketch, validate as validate_sketch,
};
pub use window::{
    MAX_SUB_BUCKETS, MAX_WINDOW_SECS, SavedWindows, WindowSpec, WindowSummary, WindowedStats,
};

/// Why analytics parameters were rejected (by the `try_new`s and
/// `validate`s; the plain constructors clamp instead).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AggregationError {
    #[error(
        "relative accuracy {0} is out of range: use a value from 1e-6 to 0.5, e.g. 0.005 (0.5 %)"
    )]
    RelativeAccuracy(f64),
    #[error("max_bins {0} is out of range: use 16 to 1048576, e.g. 2048")]
    MaxBins(usize),
    #[error("window of {length_secs} s in {sub_buckets} sub-buckets: {reason}")]
    Window {
        length_secs: u64,
        sub_buckets: u32,
        reason: &'static str,
    },
    #[error("no windows configured: give at least one, e.g. 300 s in 10 sub-buckets")]
    NoWindows,
}
