//! [`RateConverter`]: a cumulative (monotonic) counter's samples to a
//! per-second rate, with reset detection as Prometheus `rate()` does.
//!
//! Between two samples `(t₀, v₀)` and `(t₁, v₁)` with `t₁ > t₀` the rate
//! is `(v₁ − v₀) / (t₁ − t₀)`. If `v₁ < v₀` the counter was reset (process
//! restart) and counted from 0 since, so the increase is `v₁` itself.
//! Non-finite values, negative values and non-increasing timestamps are
//! ignored (they return `None` and leave the state as it was), so one bad
//! sample does not produce a huge spike. Memory: 32 bytes.

/// Turns cumulative counter samples into per-second rates.
#[derive(Debug, Clone, Default, serde::Serialize, serde::Deserialize)]
pub struct RateConverter {
    prev: Option<(f64, f64)>,
    resets: u64,
}

impl RateConverter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Feeds the counter's value at `t_secs`; returns the rate per second
    /// since the previous accepted sample (`None` for the first sample
    /// and for ignored ones).
    pub fn update(&mut self, t_secs: f64, cumulative: f64) -> Option<f64> {
        if !t_secs.is_finite() || !cumulative.is_finite() || cumulative < 0.0 {
            return None;
        }
        let Some((t0, v0)) = self.prev else {
            self.prev = Some((t_secs, cumulative));
            return None;
        };
        if t_secs <= t0 {
            return None;
        }
        let increase = if cumulative < v0 {
            self.resets += 1;
            cumulative
        } else {
            cumulative - v0
        };
        self.prev = Some((t_secs, cumulative));
        Some(increase / (t_secs - t0))
    }

    /// Counter resets detected so far.
    pub fn resets(&self) -> u64 {
        self.resets
    }
}
