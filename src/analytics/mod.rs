//! Analytics: pure algorithms over the values the processors feed in.
//!
//! Nothing here touches the network, files, threads or a clock: every
//! function that depends on time takes the time (Unix milliseconds) as an
//! argument, so results are reproducible and testable with synthetic
//! clocks. The processors own the evaluation clock and call in.
//!
//! | module | owns |
//! |---|---|
//! | [`aggregation`] | quantile sketches and sliding time windows of them |
//! | [`baselines`] | streaming anomaly baseline per series, counter → rate |
//! | [`bf16`] | bfloat16 encoding of compact model state |
//! | [`forecasts`] | multi-model forecasts with intervals, time to threshold |

pub mod aggregation;
pub mod baselines;
pub mod bf16;
pub mod forecasts;
#[cfg(test)]
mod state_fixture;
