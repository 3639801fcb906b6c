//! Processors: pipeline stages between the receivers/connectors and the
//! exporters that feed series into the analytics on the evaluation clock
//! and emit what it derives.
//!
//! - [`windows`]: rolling windows (1m … 1d) with rate, count, mean, min,
//!   max and quantiles from mergeable sketches.

pub mod analysis;
pub mod identity;
pub mod output;
pub mod packed;
pub mod pattern;
pub mod refused;
pub mod windows;

#[cfg(test)]
mod derived_test_support;
