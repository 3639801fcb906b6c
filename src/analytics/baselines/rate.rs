//! [`RateConverter`]: a cumulative (monotonic) counter's samples to a
//! per-second rate, with reset detection as Prometheus `rate()` does.
//!
//! Between two samples `(t₀, v₀)` and `(t₁, v₁)` with `t₁ > t₀` the rate
//! is `(v₁ − v₀) / (t₁ − t₀)`. If `v₁ < v₀` the counter was reset (process
//! restart) and counted from 0 since, so the increase is `v₁` itself.
//! Non-finite values, negative values and non-increasing timestamps are
//! ignored (they return `None` and leave the state as it was), so one bad
//! sample does not produce a huge spike. Memory: 16 bytes (the previous
//! sample; a NaN time for none yet).

/// Turns cumulative counter samples into per-second rates.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
#[serde(from = "RateWire", into = "RateWire")]
pub struct RateConverter {
    /// The previous accepted sample's time; NaN before the first.
    prev_t: f64,
    prev_v: f64,
}

/// [`RateConverter`] as the durable state writes it: its earlier layout,
/// with a reset count no one reads any more (written as 0).
#[derive(serde::Serialize, serde::Deserialize)]
struct RateWire {
    prev: Option<(f64, f64)>,
    resets: u64,
}

impl From<RateWire> for RateConverter {
    fn from(w: RateWire) -> Self {
        match w.prev {
            Some((t, v)) if t.is_finite() && v.is_finite() => Self {
                prev_t: t,
                prev_v: v,
            },
            _ => Self::new(),
        }
    }
}

impl From<RateConverter> for RateWire {
    fn from(r: RateConverter) -> Self {
        Self {
            prev: r.previous(),
            resets: 0,
        }
    }
}

impl Default for RateConverter {
    fn default() -> Self {
        Self::new()
    }
}

impl RateConverter {
    pub const fn new() -> Self {
        Self {
            prev_t: f64::NAN,
            prev_v: f64::NAN,
        }
    }

    /// The previous accepted sample `(t, v)`, if any.
    pub fn previous(&self) -> Option<(f64, f64)> {
        (!self.prev_t.is_nan()).then_some((self.prev_t, self.prev_v))
    }

    /// Feeds the counter's value at `t_secs`; returns the rate per second
    /// since the previous accepted sample (`None` for the first sample
    /// and for ignored ones).
    pub fn update(&mut self, t_secs: f64, cumulative: f64) -> Option<f64> {
        if !t_secs.is_finite() || !cumulative.is_finite() || cumulative < 0.0 {
            return None;
        }
        let Some((t0, v0)) = self.previous() else {
            self.prev_t = t_secs;
            self.prev_v = cumulative;
            return None;
        };
        if t_secs <= t0 {
            return None;
        }
        let increase = if cumulative < v0 {
            cumulative
        } else {
            cumulative - v0
        };
        self.prev_t = t_secs;
        self.prev_v = cumulative;
        Some(increase / (t_secs - t0))
    }
}
