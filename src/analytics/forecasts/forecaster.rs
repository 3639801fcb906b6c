//! [`Forecaster`]: per-horizon model choice by tracked online error, with
//! prediction intervals calibrated online.
//!
//! # Models
//!
//! Every update refreshes five cheap models (see [`Model`]):
//! last value (naive), simple exponential smoothing, damped-trend Holt,
//! a least-squares line weighted to the mean age of the last
//! `regression_points` points (see `fit.rs`; the trend Prometheus
//! `predict_linear` gives over those points), and seasonal naive (last
//! value plus the daily shape's change from now to `t + h`, once the
//! shape has a day of history). The daily shape is the series' baseline's daily profile
//! ([`DailyShape`], passed to [`Forecaster::update_with`]), so a series
//! learns its day once; [`Forecaster::update`] has none and seasonal
//! naive then never forecasts. Horizons are in seconds; a model that works in steps uses
//! `k = h / Δt` with `Δt` an EWMA of the observed spacing.
//!
//! # Choice
//!
//! Per horizon, a forecast made at `t` for `t + h` is tracked every `h /
//! max_pending` and kept until a value arrives within `Δt/2` of `t + h`;
//! then each model's absolute error updates its EWMA (weight `error_alpha
//! / √k`, `k = h / Δt`: overlapping forecasts' errors are correlated, so
//! longer horizons average over more of them; when fewer than `k` are
//! tracked each stands for `k / max_pending` of them, see
//! `error_weight`). The
//! forecast for a horizon uses the model with the lowest tracked error
//! among those with at least `min_matured` matured forecasts; another
//! model must beat naive by `naive_margin` and naive is used until others
//! qualify, so a horizon is no worse than
//! naive by more than the tracking noise.
//!
//! # Intervals
//!
//! `value ± m · z · √(π/2) · MAE`, where `z` is the standard normal
//! quantile for the configured level (statrs), `√(π/2) · MAE` turns the
//! tracked mean absolute error into a Gaussian σ, and `m` is a per
//! horizon multiplier calibrated online as in adaptive conformal
//! inference: after each matured forecast `m ← m · exp(η · (miss − (1 −
//! level)))`, a miss being the forecasting model's (the chosen one's)
//! error beyond its interval, so long-run coverage of the intervals
//! emitted converges to the level even for heavy tailed or skewed
//! residuals.
//!
//! # Cost
//!
//! Constant per point. The line's six discounted sums are updated in
//! place (a series flat for `regression_points` points has slope exactly
//! 0). The daily
//! shape is read once per point for every horizon, with the horizons
//! taken modulo a day at construction. The normal quantile is computed
//! at construction, `error_alpha / √k` when `Δt` changes, the
//! damped-trend sums when `Δt` moves by over 1 %. Once every model has
//! enough matured forecasts that its weight is `error_alpha / √k`,
//! scoring a matured forecast has no branch or division per model.
//! [`Forecaster::forecast`] computes the chosen model's forecast from
//! the state `update` left.
//!
//! # Memory
//!
//! Fixed at construction: the struct (with the line's sums in `f32`), per
//! horizon the models' tracked errors in `f32`,
//! their 16-bit counts, the interval scale and a ring of `max_pending`
//! tracked forecasts (16 bytes each: see `Pending`), made `h /
//! max_pending` apart so it never grows whatever `h / Δt` is; the tracked
//! forecasts of all horizons are one allocation. The configuration is
//! shared ([`ForecastSettings`]): a [`ForecastState`] is what one series
//! keeps, and every call that needs the configuration is passed it;
//! [`Forecaster`] owns a state and its settings.
//! [`ForecastState::memory_bytes`] reports the total: 400 bytes with the
//! defaults.
//!
//! # Time to a threshold
//!
//! [`ForecastState::time_to_threshold`] extends the line, as
//! `predict_linear` would. The line's sixth sum (the values' scatter)
//! gives the slope's standard error, and
//! [`ForecastState::confirmed_time_to_threshold`] gives the time only
//! while the slope is `1.2 · √n` of them from flat over the window's `n`
//! points, which a one-off step change never reaches.

use std::sync::Arc;

use statrs::distribution::{ContinuousCDF, Normal, StudentsT};

use crate::analytics::bf16;

use super::ForecastError;
use super::fit::Fit;

const MAD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
const DAY_SECS: f64 = 86_400.0;

/// The most forecasts tracked at once per horizon.
pub const MAX_PENDING: usize = 64;
/// The largest regression window (the count of equal points is a byte).
const MAX_REGRESSION_POINTS: u8 = u8::MAX;

/// The most horizons a forecaster tracks.
pub const MAX_HORIZONS: usize = 8;
const N_MODELS: usize = 5;

/// The forecasting models, in tie-break order (naive first).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Model {
    /// The last value.
    Naive,
    /// Simple exponential smoothing (an EWMA level).
    Smoothed,
    /// Holt's linear trend with damping.
    DampedHolt,
    /// Least-squares line over a window, as `predict_linear`.
    Linear,
    /// Last value plus the daily profile's change to `t + h`.
    SeasonalNaive,
}

/// Every model, in index order.
pub const MODELS: [Model; N_MODELS] = [
    Model::Naive,
    Model::Smoothed,
    Model::DampedHolt,
    Model::Linear,
    Model::SeasonalNaive,
];

impl Model {
    /// A short stable name for labels and CSV columns.
    pub fn as_str(self) -> &'static str {
        match self {
            Model::Naive => "naive",
            Model::Smoothed => "smoothed",
            Model::DampedHolt => "damped_holt",
            Model::Linear => "linear",
            Model::SeasonalNaive => "seasonal_naive",
        }
    }
}

/// Tuning of a [`Forecaster`]. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct ForecastConfig {
    /// Horizons in seconds (default 300, 900, 3600; 1 to 8 of them).
    pub horizons_secs: Vec<f64>,
    /// Central coverage of the prediction interval (default 0.9).
    pub interval_level: f64,
    /// Smoothing of the [`Model::Smoothed`] level (default 0.3).
    pub ses_alpha: f64,
    /// Holt level smoothing (default 0.5).
    pub holt_alpha: f64,
    /// Holt trend smoothing (default 0.1).
    pub holt_beta: f64,
    /// Holt trend damping per step (default 0.9).
    pub holt_phi: f64,
    /// Points whose mean age the linear model's weights match (default
    /// 12; 3 to 255): its line reacts as quickly as a least-squares line
    /// over that many points; a series flat for that many has slope 0.
    pub regression_points: usize,
    /// EWMA weight of each matured absolute error (default 0.02).
    pub error_alpha: f64,
    /// Matured forecasts before a model may be chosen, and before a
    /// horizon forecasts at all (default 6: with forecasts tracked `h /
    /// 2` apart, three horizons' worth).
    pub min_matured: u32,
    /// Step of the interval multiplier's online calibration (default 0.05).
    pub calibration_rate: f64,
    /// Relative margin by which another model's tracked error must be
    /// below naive's to be chosen (default 0.03).
    pub naive_margin: f64,
    /// Forecasts tracked (kept until they mature and are scored) at once
    /// per horizon, made `h / max_pending` apart (default 2; 1 to 64).
    /// Overlapping forecasts' errors are strongly correlated, so a few
    /// per horizon carry nearly all the information of one per point.
    pub max_pending: usize,
}

impl Default for ForecastConfig {
    fn default() -> Self {
        Self {
            horizons_secs: vec![300.0, 900.0, 3600.0],
            interval_level: 0.9,
            ses_alpha: 0.3,
            holt_alpha: 0.5,
            holt_beta: 0.1,
            holt_phi: 0.9,
            regression_points: 12,
            error_alpha: 0.02,
            min_matured: 6,
            calibration_rate: 0.05,
            naive_margin: 0.03,
            max_pending: 2,
        }
    }
}

fn check(
    name: &'static str,
    v: f64,
    lo: f64,
    hi: f64,
    range: &'static str,
) -> Result<(), ForecastError> {
    if v.is_finite() && v >= lo && v <= hi {
        Ok(())
    } else {
        Err(ForecastError::OutOfRange {
            name,
            value: v,
            range,
        })
    }
}

impl ForecastConfig {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), ForecastError> {
        if self.horizons_secs.is_empty() {
            return Err(ForecastError::NoHorizons);
        }
        if self.horizons_secs.len() > MAX_HORIZONS {
            return Err(ForecastError::TooManyHorizons(self.horizons_secs.len()));
        }
        for &h in &self.horizons_secs {
            check(
                "horizon_secs",
                h,
                1e-3,
                400.0 * DAY_SECS,
                "[0.001, 34560000], e.g. 300",
            )?;
        }
        check(
            "interval_level",
            self.interval_level,
            0.5,
            0.999,
            "[0.5, 0.999], e.g. 0.9",
        )?;
        check(
            "ses_alpha",
            self.ses_alpha,
            1e-4,
            1.0,
            "[1e-4, 1], e.g. 0.3",
        )?;
        check(
            "holt_alpha",
            self.holt_alpha,
            1e-4,
            1.0,
            "[1e-4, 1], e.g. 0.5",
        )?;
        check("holt_beta", self.holt_beta, 0.0, 1.0, "[0, 1], e.g. 0.1")?;
        check(
            "holt_phi",
            self.holt_phi,
            0.0,
            0.999,
            "[0, 0.999], e.g. 0.9",
        )?;
        check(
            "regression_points",
            self.regression_points as f64,
            3.0,
            f64::from(MAX_REGRESSION_POINTS),
            "[3, 255], e.g. 12",
        )?;
        check(
            "error_alpha",
            self.error_alpha,
            1e-4,
            1.0,
            "[1e-4, 1], e.g. 0.02",
        )?;
        check(
            "calibration_rate",
            self.calibration_rate,
            0.0,
            1.0,
            "[0, 1], e.g. 0.05",
        )?;
        check(
            "naive_margin",
            self.naive_margin,
            0.0,
            0.5,
            "[0, 0.5], e.g. 0.03",
        )?;
        check(
            "max_pending",
            self.max_pending as f64,
            1.0,
            MAX_PENDING as f64,
            "[1, 64], e.g. 4",
        )?;
        Ok(())
    }

    /// The same configuration with every field forced into its range.
    pub fn clamped(&self) -> Self {
        let d = Self::default();
        let c =
            |v: f64, lo: f64, hi: f64, dv: f64| if v.is_finite() { v.clamp(lo, hi) } else { dv };
        let mut horizons: Vec<f64> = self
            .horizons_secs
            .iter()
            .filter(|h| h.is_finite() && **h > 0.0)
            .map(|h| h.clamp(1e-3, 400.0 * DAY_SECS))
            .take(MAX_HORIZONS)
            .collect();
        if horizons.is_empty() {
            horizons = d.horizons_secs.clone();
        }
        Self {
            horizons_secs: horizons,
            interval_level: c(self.interval_level, 0.5, 0.999, d.interval_level),
            ses_alpha: c(self.ses_alpha, 1e-4, 1.0, d.ses_alpha),
            holt_alpha: c(self.holt_alpha, 1e-4, 1.0, d.holt_alpha),
            holt_beta: c(self.holt_beta, 0.0, 1.0, d.holt_beta),
            holt_phi: c(self.holt_phi, 0.0, 0.999, d.holt_phi),
            regression_points: self
                .regression_points
                .clamp(3, MAX_REGRESSION_POINTS.into()),
            error_alpha: c(self.error_alpha, 1e-4, 1.0, d.error_alpha),
            min_matured: self.min_matured,
            calibration_rate: c(self.calibration_rate, 0.0, 1.0, d.calibration_rate),
            naive_margin: c(self.naive_margin, 0.0, 0.5, d.naive_margin),
            max_pending: self.max_pending.clamp(1, MAX_PENDING),
        }
    }
}

/// A forecast for one horizon.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Forecast {
    /// Horizon in seconds.
    pub horizon_secs: f64,
    /// Point forecast for `t_last + horizon_secs`.
    pub value: f64,
    /// Lower end of the prediction interval.
    pub lower: f64,
    /// Upper end of the prediction interval.
    pub upper: f64,
    /// The model that produced it.
    pub model: Model,
}

/// One tracked forecast, 16 bytes (stored as a [`Unit`]): its target
/// time as the step from the previous entry's target, the naive forecast (the value it was made
/// from) as `f32` relative to the series' first value, and the other
/// models' forecasts as differences from it in 16-bit floats (bfloat16:
/// 8 bits of precision on the difference, far below the errors scored).
#[derive(Debug, Clone, Copy)]
struct Pending {
    /// Target time less the previous entry's (0 for an entry pushed into
    /// an empty queue: the horizon keeps the head's target).
    after: f32,
    /// Naive forecast less the series' first value.
    base: f32,
    /// Models 1.. less `base`, as bfloat16; NaN where a model could not
    /// forecast.
    deltas: [u16; N_MODELS - 1],
}

/// 16 bytes of a forecaster's store: one tracked forecast ([`Pending`]
/// as words; an earlier build's store also began with its regression
/// ring, two points per unit).
type Unit = [u32; 4];

#[inline]
fn from_bf16(h: u16) -> f64 {
    f64::from(bf16::to_f32(h))
}

impl Pending {
    const EMPTY: Self = Self {
        after: 0.0,
        base: f32::NAN,
        deltas: [bf16::NAN; N_MODELS - 1],
    };

    #[inline]
    fn new(after: f32, origin: f64, preds: &[f64; N_MODELS]) -> Self {
        let base = preds[0];
        let mut deltas = [bf16::NAN; N_MODELS - 1];
        for (d, p) in deltas.iter_mut().zip(&preds[1..]) {
            *d = bf16::from_f32((p - base) as f32);
        }
        Self {
            after,
            base: (base - origin) as f32,
            deltas,
        }
    }

    /// As a unit of the store.
    #[inline]
    fn to_unit(self) -> Unit {
        let d = self.deltas;
        [
            self.after.to_bits(),
            self.base.to_bits(),
            u32::from(d[0]) | (u32::from(d[1]) << 16),
            u32::from(d[2]) | (u32::from(d[3]) << 16),
        ]
    }

    /// Read back from a unit of the store.
    #[inline]
    fn from_unit(u: &Unit) -> Self {
        Self {
            after: Self::after_of(u),
            base: f32::from_bits(u[1]),
            deltas: [
                u[2] as u16,
                (u[2] >> 16) as u16,
                u[3] as u16,
                (u[3] >> 16) as u16,
            ],
        }
    }

    /// The `after` field of the tracked forecast in `u`.
    #[inline]
    fn after_of(u: &Unit) -> f32 {
        f32::from_bits(u[0])
    }

    #[inline]
    fn preds(&self, origin: f64) -> [f64; N_MODELS] {
        let b = origin + f64::from(self.base);
        let d = &self.deltas;
        [
            b,
            b + from_bf16(d[0]),
            b + from_bf16(d[1]),
            b + from_bf16(d[2]),
            b + from_bf16(d[3]),
        ]
    }
}

/// EWMA weight of one matured error at horizon `h` for spacing `dt`:
/// `error_alpha / √k` with `k = h / Δt` steps when every point's forecast
/// is tracked (overlapping forecasts' errors are correlated, so longer
/// horizons average over more of them); when only `tracked < k` are, each
/// carries the weight of the `k / tracked` it stands for, `error_alpha ·
/// √k / tracked`, so the error tracks over the same time either way.
fn error_weight(error_alpha: f64, h: f64, dt: f64, valid: bool, tracked: usize) -> f64 {
    let k = if valid { (h / dt).max(1.0) } else { 1.0 };
    (error_alpha * k.sqrt() / k.min(tracked as f64)).min(1.0)
}

/// First-in first-out ring of the forecasts tracked for one horizon, in
/// its share of [`Forecaster`]'s pending buffer: at most `max_pending`,
/// made at least `h / max_pending` apart, so the ring never grows and a
/// horizon's memory does not depend on how many points it spans.
#[derive(Debug, Clone, Copy, serde::Serialize, serde::Deserialize)]
struct Queue {
    /// Target time of the oldest entry (the newest one's is rebuilt from
    /// the entries' steps, see [`Queue::tail_target`]): an `f64` kept as
    /// two halves, so the queue is 4-aligned and packs with the
    /// horizon's other fields (12 bytes, not 16).
    head_target_bits: [u32; 2],
    head: u8,
    len: u8,
}

impl Queue {
    const EMPTY: Self = Self {
        head_target_bits: split(f64::NAN),
        head: 0,
        len: 0,
    };

    #[inline]
    fn head_target(&self) -> f64 {
        let [lo, hi] = self.head_target_bits;
        f64::from_bits(u64::from(lo) | (u64::from(hi) << 32))
    }

    #[inline]
    fn set_head_target(&mut self, target: f64) {
        self.head_target_bits = split(target);
    }

    /// Removes and returns the oldest entry (and its target) if its
    /// target is `≤ until`.
    #[inline]
    fn pop_due(&mut self, buf: &[Unit], until: f64) -> Option<(f64, Pending)> {
        let target = self.head_target();
        if self.len == 0 || target > until {
            return None;
        }
        let head = usize::from(self.head);
        let p = Pending::from_unit(buf.get(head)?);
        let next = if head + 1 == buf.len() { 0 } else { head + 1 };
        self.head = next as u8;
        self.len -= 1;
        if self.len > 0 {
            self.set_head_target(target + f64::from(Pending::after_of(&buf[next])));
        }
        Some((target, p))
    }

    /// Target time of the newest entry (−∞ when empty): the head's plus
    /// each later entry's step, added in the order `pop_due` adds them,
    /// so both agree to the bit and a step's rounding never accumulates.
    #[inline]
    fn tail_target(&self, buf: &[Unit]) -> f64 {
        if self.len == 0 {
            return f64::NEG_INFINITY;
        }
        let mut target = self.head_target();
        let mut i = usize::from(self.head);
        for _ in 1..self.len {
            i = if i + 1 == buf.len() { 0 } else { i + 1 };
            target += f64::from(Pending::after_of(&buf[i]));
        }
        target
    }

    /// The newest entry's target time (see [`Queue::tail_target`]) if a
    /// forecast made at `t`, `h` ahead, is to be tracked: the queue has
    /// room and the newest one was made at least `spacing` before `t`.
    #[inline]
    fn due(&self, buf: &[Unit], t: f64, h: f64, spacing: f64) -> Option<f64> {
        if usize::from(self.len) >= buf.len() {
            return None;
        }
        let tail = self.tail_target(buf);
        (t >= tail - h + spacing).then_some(tail)
    }

    /// Tracks a forecast for `target` with predictions `preds`, after the
    /// newest entry (whose target `due` returned).
    #[inline]
    fn push(
        &mut self,
        buf: &mut [Unit],
        target: f64,
        tail: f64,
        origin: f64,
        preds: &[f64; N_MODELS],
    ) {
        let cap = buf.len();
        if usize::from(self.len) >= cap {
            return;
        }
        let after = if self.len == 0 {
            self.set_head_target(target);
            0.0
        } else {
            (target - tail) as f32
        };
        let mut i = usize::from(self.head) + usize::from(self.len);
        if i >= cap {
            i -= cap;
        }
        if let Some(slot) = buf.get_mut(i) {
            *slot = Pending::new(after, origin, preds).to_unit();
            self.len += 1;
        }
    }
}

/// The low and high halves of `x`'s bits.
const fn split(x: f64) -> [u32; 2] {
    let bits = x.to_bits();
    [bits as u32, (bits >> 32) as u32]
}

/// Constants of scoring matured forecasts, shared by the horizons.
#[derive(Debug, Clone, Copy)]
struct Scoring {
    /// Interval scale factors after a miss and a hit (precomputed `exp`).
    grow: f32,
    shrink: f32,
    /// Bounds of the interval scale: `m` in `[0.05, 20]`, times `z ·
    /// √(π/2)`.
    lo: f32,
    hi: f32,
    /// `1 − naive_margin`: what another model's error must be below, as
    /// a fraction of naive's.
    naive_bar: f32,
    min_matured: u32,
}

const ALL_MODELS: u8 = (1 << N_MODELS) - 1;

#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct HorizonState {
    queue: Queue,
    track: Tracking,
    /// Σ φ^i for i in 1..=h/Δt, refreshed when Δt moves by over 1 %.
    damp: f32,
    /// The daily shape's change from the last point to `t + h` (NaN
    /// without one): seasonal naive's forecast less the last value.
    season: f32,
}

// A horizon's state fills one 64-byte line at most (queue 12, tracking
// 44, two f32).
const _: () = assert!(size_of::<HorizonState>() <= 64);

/// Per-horizon tracked errors and interval scales of every model, stored
/// in `f32` (computed in `f64`): a tracked error needs a few digits, not
/// sixteen.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
struct Tracking {
    /// EWMA weight of a matured error, `error_alpha / √max(1, h/Δt)`, for
    /// the `Δt` before the last update that moved it (see
    /// `ForecastState::weights_stale`).
    err_alpha: f32,
    mae: [f32; N_MODELS],
    /// Interval half-width per unit of MAE, `m · z · √(π/2)`, of the
    /// horizon's forecasts: calibrated on the chosen model's errors, so
    /// it calibrates the intervals that are emitted (one per horizon,
    /// carried over when the choice changes).
    scale: f32,
    /// Matured forecasts per model, less `bulk` (see `Tracking::count`);
    /// saturating (a count only matters up to `1 / err_alpha`).
    matured: [u16; N_MODELS],
    /// Forecasts every model matured in since `matured` was last brought
    /// up to date (by the settled path, which scores all five).
    bulk: u16,
    /// Bit `m`: model `m` has at least `max(min_matured, 1)` matured
    /// forecasts, and enough of them that its weight `max(err_alpha, 1 /
    /// (count + 1))` is `err_alpha`.
    settled: u8,
    /// The chosen model's index, brought up to date whenever an error,
    /// a count or `settled` changes (see `Tracking::choose`).
    chosen: u8,
    /// The count of the least settled model when `settled` was computed
    /// (`u16::MAX` for none): while `err_alpha · (least + 1) ≥ 1`,
    /// `settled` holds.
    least: u16,
}

impl Tracking {
    fn new(error_alpha: f64, unit: f64) -> Self {
        Self {
            err_alpha: error_alpha as f32,
            least: u16::MAX,
            mae: [0.0; N_MODELS],
            scale: unit as f32,
            matured: [0; N_MODELS],
            bulk: 0,
            settled: 0,
            chosen: 0,
        }
    }

    /// Matured forecasts of model `m`.
    #[inline]
    fn count(&self, m: usize) -> u32 {
        u32::from(self.matured[m].saturating_add(self.bulk))
    }

    /// Recomputes `settled` (and `least`) from the counts.
    fn refresh_settled(&mut self, sc: &Scoring) {
        let min_matured = sc.min_matured;
        let (mut bits, mut least) = (0, u32::MAX);
        let a = f64::from(self.err_alpha);
        for m in 0..N_MODELS {
            let k = self.count(m);
            if k >= min_matured.max(1) && (f64::from(k) + 1.0) * a >= 1.0 {
                bits |= 1 << m;
                least = least.min(k);
            }
        }
        self.settled = bits;
        self.least = u16::try_from(least).unwrap_or(u16::MAX);
        self.choose(sc);
    }

    /// Sets the error weight for a new `Δt`.
    #[inline]
    fn set_err_alpha(&mut self, err_alpha: f64, sc: &Scoring) {
        self.err_alpha = err_alpha as f32;
        if self.least != u16::MAX && (f64::from(self.least) + 1.0) * f64::from(self.err_alpha) < 1.0
        {
            self.refresh_settled(sc);
        }
    }

    /// Model `m`'s tracked error after a forecast with error `e`,
    /// weighted `a` (in `f32`: branch-free, and no conversions).
    #[inline]
    fn learn(&mut self, m: usize, e: f32, a: f32) {
        let mae = self.mae[m];
        self.mae[m] = mae + a * (e - mae);
    }

    /// Calibrates the interval scale on the error of the model that
    /// forecasts (the chosen one, naive where it could not predict),
    /// before that error is learned: a miss widens it, a hit narrows it.
    #[inline]
    fn calibrate(&mut self, preds: &[f64; N_MODELS], value: f64, sc: &Scoring) {
        let mut m = usize::from(self.chosen);
        if !preds[m].is_finite() {
            m = 0;
        }
        let e = (value - preds[m]).abs() as f32;
        let s = self.scale;
        let f = if e > s * self.mae[m] {
            sc.grow
        } else {
            sc.shrink
        };
        self.scale = (s * f).max(sc.lo).min(sc.hi);
    }

    /// Scores one matured forecast against the observed `value`.
    #[inline]
    fn score(&mut self, preds: &[f64; N_MODELS], value: f64, sc: &Scoring) {
        let a = self.err_alpha;
        // Usually every model predicted and is settled: no branch per
        // model. (Naive is always finite; `p · 0` is 0 for finite `p`,
        // NaN otherwise, and a sum that overflows only errs on the safe
        // side.)
        let all_predicted = (preds[1] + preds[2] + preds[3] + preds[4]) * 0.0 == 0.0;
        if all_predicted && self.settled == ALL_MODELS {
            self.calibrate(preds, value, sc);
            for (m, &pred) in preds.iter().enumerate() {
                self.learn(m, (value - pred).abs() as f32, a);
            }
            self.bulk = self.bulk.saturating_add(1);
            self.choose(sc);
            return;
        }
        // Else, if every model that predicted is settled (e.g. seasonal
        // naive before a day of history or when disabled): skip the rest.
        let finite = preds
            .iter()
            .enumerate()
            .fold(0, |bits, (m, p)| bits | (u8::from(p.is_finite()) << m));
        if finite & !self.settled != 0 {
            self.score_each(preds, value, sc);
            return;
        }
        self.calibrate(preds, value, sc);
        for (m, &pred) in preds.iter().enumerate() {
            if finite & (1 << m) == 0 {
                continue;
            }
            self.learn(m, (value - pred).abs() as f32, a);
            self.matured[m] = self.matured[m].saturating_add(1);
        }
        self.choose(sc);
    }

    /// `Tracking::score` for any state, model by model (as during the
    /// warm-up).
    #[cold]
    fn score_each(&mut self, preds: &[f64; N_MODELS], value: f64, sc: &Scoring) {
        for m in 0..N_MODELS {
            self.matured[m] = self.matured[m].saturating_add(self.bulk);
        }
        self.bulk = 0;
        let ea = self.err_alpha;
        // Once the forecasting model has a tracked error to measure
        // against.
        let chosen = usize::from(self.chosen);
        let forecasting = if preds[chosen].is_finite() { chosen } else { 0 };
        if self.matured[forecasting] > 0 {
            self.calibrate(preds, value, sc);
        }
        for (m, &pred) in preds.iter().enumerate() {
            if !pred.is_finite() {
                continue;
            }
            let e = (value - pred).abs() as f32;
            let k = self.matured[m];
            let a = if self.settled & (1 << m) != 0 {
                ea
            } else {
                ea.max((1.0 / (f64::from(k) + 1.0)) as f32)
            };
            self.learn(m, e, a);
            self.matured[m] = k.saturating_add(1);
        }
        self.refresh_settled(sc);
    }

    /// Brings `chosen` up to date: another model must beat naive by
    /// `naive_margin` to replace it, and have `min_matured` matured
    /// forecasts (every settled model has).
    #[inline]
    fn choose(&mut self, sc: &Scoring) {
        let settled = self.settled == ALL_MODELS;
        let mut best = 0;
        let mut best_err = self.mae[0] * sc.naive_bar;
        for m in 1..N_MODELS {
            let mae = self.mae[m];
            if (settled || self.count(m) >= sc.min_matured) && mae < best_err {
                best_err = mae;
                best = m;
            }
        }
        self.chosen = best as u8;
    }

    /// Model `m`'s interval half-width.
    #[inline]
    fn width(&self, m: usize) -> f64 {
        f64::from(self.scale) * f64::from(self.mae[m])
    }
}

/// A [`ForecastConfig`], forced into range, with the constants derived
/// from it, shared by every [`Forecaster`] made from it (one pointer per
/// series instead of a copy). `From<ForecastConfig>` clamps.
#[derive(Debug, Clone)]
pub struct ForecastSettings(Arc<Settings>);

#[derive(Debug)]
struct Settings {
    cfg: ForecastConfig,
    /// `z · √(π/2)`: the interval half-width per unit of MAE.
    unit: f64,
    scoring: Scoring,
    /// Each horizon modulo a day (what a daily shape needs of it).
    ahead_of_day: Vec<f64>,
    /// The linear model's discount per point (see [`Fit`]).
    fit_decay: f64,
}

impl From<ForecastConfig> for ForecastSettings {
    fn from(config: ForecastConfig) -> Self {
        let cfg = config.clamped();
        let z = Normal::standard().inverse_cdf(0.5 + cfg.interval_level / 2.0);
        let unit = z * MAD_TO_SIGMA;
        let scoring = Scoring {
            grow: (cfg.calibration_rate * cfg.interval_level).exp() as f32,
            shrink: (-cfg.calibration_rate * (1.0 - cfg.interval_level)).exp() as f32,
            lo: (0.05 * unit) as f32,
            hi: (20.0 * unit) as f32,
            naive_bar: (1.0 - cfg.naive_margin) as f32,
            min_matured: cfg.min_matured,
        };
        let ahead_of_day = cfg
            .horizons_secs
            .iter()
            .map(|h| h.rem_euclid(DAY_SECS))
            .collect();
        let fit_decay = Fit::decay_for_window(cfg.regression_points);
        Self(Arc::new(Settings {
            cfg,
            unit,
            scoring,
            ahead_of_day,
            fit_decay,
        }))
    }
}

impl Default for ForecastSettings {
    fn default() -> Self {
        ForecastConfig::default().into()
    }
}

impl ForecastSettings {
    /// The configuration (after clamping).
    pub fn config(&self) -> &ForecastConfig {
        &self.0.cfg
    }
}

/// The daily seasonal shape a [`Forecaster`]'s seasonal-naive model reads:
/// a centred daily term at any time. [`Baseline`](crate::analytics::baselines::Baseline)
/// implements it with its daily profile, so a series learns its daily
/// shape once for both.
pub trait DailyShape {
    /// Writes into `out[i]` the shape's change from `t_secs` to `t_secs +
    /// ahead[i]`, NaN where it has not been learned (no profile, less than
    /// a day of history, or either time of day not seen yet). Each
    /// `ahead[i]` is in `[0, 86400)`: a horizon modulo a day.
    fn daily_changes(&self, t_secs: f64, ahead: &[f64], out: &mut [f32]);
}

/// No daily shape: seasonal naive never forecasts.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoShape;

impl DailyShape for NoShape {
    fn daily_changes(&self, _t_secs: f64, _ahead: &[f64], out: &mut [f32]) {
        out.fill(f32::NAN);
    }
}

/// Streaming multi-model forecaster for one series with its settings;
/// see the module docs. A thin owner of a [`ForecastState`] and the
/// [`ForecastSettings`] it runs on.
#[derive(Debug, Clone)]
pub struct Forecaster {
    settings: ForecastSettings,
    state: ForecastState,
}

impl Default for Forecaster {
    fn default() -> Self {
        Self::new(ForecastConfig::default())
    }
}

impl Forecaster {
    /// A forecaster with `config` forced into range; pass
    /// [`ForecastSettings`] to share one configuration between many.
    pub fn new(config: impl Into<ForecastSettings>) -> Self {
        let settings: ForecastSettings = config.into();
        let state = ForecastState::new(&settings);
        Self { settings, state }
    }

    /// Like [`Forecaster::new`] but rejects out-of-range configuration.
    pub fn try_new(config: ForecastConfig) -> Result<Self, ForecastError> {
        config.validate()?;
        Ok(Self::new(config))
    }

    /// The configuration in use (after clamping).
    pub fn config(&self) -> &ForecastConfig {
        self.settings.config()
    }

    /// The per-series state (what a caller that shares the settings
    /// keeps).
    pub fn state(&self) -> &ForecastState {
        &self.state
    }

    /// Number of horizons (valid `horizon_idx` are `0..horizons()`).
    pub fn horizons(&self) -> usize {
        self.state.horizons()
    }

    /// Bytes held: the state's (see [`ForecastState::memory_bytes`]) and
    /// the settings pointer.
    pub fn memory_bytes(&self) -> usize {
        self.state.memory_bytes() + size_of::<ForecastSettings>()
    }

    /// See [`ForecastState::update`].
    pub fn update(&mut self, t_secs: f64, value: f64) {
        self.state.update(&self.settings, t_secs, value);
    }

    /// See [`ForecastState::update_with`].
    pub fn update_with(&mut self, t_secs: f64, value: f64, shape: &impl DailyShape) {
        self.state.update_with(&self.settings, t_secs, value, shape);
    }

    /// See [`ForecastState::chosen_model`].
    pub fn chosen_model(&self, horizon_idx: usize) -> Option<Model> {
        self.state.chosen_model(horizon_idx)
    }

    /// See [`ForecastState::tracked_error`].
    pub fn tracked_error(&self, horizon_idx: usize, model: Model) -> Option<f64> {
        self.state.tracked_error(horizon_idx, model)
    }

    /// See [`ForecastState::forecast`].
    pub fn forecast(&self, horizon_idx: usize) -> Option<Forecast> {
        self.state.forecast(&self.settings, horizon_idx)
    }

    /// See [`ForecastState::trend_per_sec`].
    pub fn trend_per_sec(&self) -> Option<f64> {
        self.state.trend_per_sec()
    }

    /// See [`ForecastState::time_to_threshold`].
    pub fn time_to_threshold(&self, threshold: f64) -> Option<f64> {
        self.state.time_to_threshold(threshold)
    }

    /// See [`ForecastState::trend_standard_errors`].
    pub fn trend_standard_errors(&self) -> Option<f64> {
        self.state.trend_standard_errors(&self.settings)
    }

    /// See [`ForecastState::confirmed_time_to_threshold`].
    pub fn confirmed_time_to_threshold(&self, threshold: f64) -> Option<f64> {
        self.state
            .confirmed_time_to_threshold(&self.settings, threshold)
    }
}

/// The slope's standard errors that confirm a trend fitted over
/// `effective` points (see [`ForecastState::confirmed_time_to_threshold`]):
/// `1.2 · √effective`, 4.16 for the default 12 regression points. A
/// line through a one-off step reaches `0.9–1.1 · √n` over `n` points,
/// however large the step (its residuals grow with it), and a ramp's
/// t statistic grows as `n^1.5`, so a wider window confirms noisier
/// ramps without confirming steps. With few points the bar is at least
/// the one-sided 99.9 % quantile of Student's t with `effective − 2`
/// degrees of freedom (10.2 for 5 points).
fn confirming_standard_errors(effective: f64) -> f64 {
    // From 12 points on `1.2 · √n` is the larger (4.16 against 4.14, and
    // the quantile only falls as n grows): no quantile to compute.
    if effective >= 12.0 {
        return 1.2 * effective.sqrt();
    }
    let small_sample =
        StudentsT::new(0.0, 1.0, effective - 2.0).map_or(f64::INFINITY, |t| t.inverse_cdf(0.999));
    (1.2 * effective.sqrt()).max(small_sample)
}

/// One series' forecaster state, without its settings: every method
/// that needs the configuration takes the [`ForecastSettings`] it was
/// made with (the analysis processor keeps one for all its series, so a
/// series does not carry the pointer).
///
/// Serialisable for durable state, written as [`StateWire`], which keeps
/// the format of the earlier, larger layout (a point count, the `Δt` the
/// error weights were computed for, 16-bit ring counters); it is read
/// back as a [`SavedForecastState`] and checked against the current
/// settings. 112 bytes (a test checks): the analysis processor's series
/// is sized with it.
#[derive(Debug, Clone)]
pub struct ForecastState {
    /// Every horizon's tracked forecasts, one allocation: horizon `i`'s
    /// queue of [`Pending`] in the `max_pending` units at `i ·
    /// max_pending`.
    store: Box<[Unit]>,
    horizons: Box<[HorizonState]>,
    last_t: f64,
    last_v: f64,
    /// The first value, to `f32` precision: tracked forecasts are stored
    /// relative to it (any reference near the values serves).
    origin: f32,
    /// EWMA of the points' spacing in seconds (`f32`: a spacing needs a
    /// few digits).
    dt: f32,
    ses: f64,
    holt_l: f64,
    holt_b: f64,
    /// The discounted least-squares sums of the linear model (see
    /// [`Fit`]).
    fit: Fit,
    /// `Δt` the per-horizon damped-trend sums were computed for.
    damp_dt: f32,
    /// Whether the per-horizon error weights are stale: `Δt` (as `f32`)
    /// moved in the last update, or none has run yet. They are
    /// recomputed at the start of the next update, with the `Δt` known
    /// before its point.
    weights_stale: bool,
    /// Points in the fit, up to 3 (a line needs that many).
    fit_points: u8,
    /// Trailing points equal to the last value, up to `regression_points`:
    /// a series flat for that long has slope exactly 0, whatever is left
    /// of older points in the sums.
    same: u8,
}

/// [`ForecastState`] as the durable state writes it: the field order and
/// types of its earlier layout, which kept the linear model's last points
/// in a ring at the front of the store, their sums in `sums` and the
/// point they were taken about in `anchor_t` and `anchor_v`. A state with
/// the discounted [`Fit`] writes [`FIT_WITH_SCATTER_ON_WIRE`] as
/// `ring_head`, its six sums in `sums`, `anchor_t` and `anchor_v`, its
/// points in `ring_len`, and no ring (the builds before the sixth sum
/// wrote [`FIT_ON_WIRE`] and five).
/// `n` is written as 0 or 1 (only whether a point was fed is read back:
/// a state has one iff `last_t` is finite), `alpha_dt` as a `Δt` that
/// makes stale weights read back as stale.
#[derive(serde::Serialize, serde::Deserialize)]
struct StateWire<S, H> {
    store: S,
    horizons: H,
    last_t: f64,
    last_v: f64,
    origin: f64,
    dt: f64,
    ses: f64,
    holt_l: f64,
    holt_b: f64,
    sums: [f64; 4],
    anchor_t: f64,
    anchor_v: f64,
    alpha_dt: f32,
    damp_dt: f32,
    n: u32,
    ring_head: u16,
    ring_len: u16,
    same: u16,
}

/// `ring_head` of a state written with the discounted fit's five sums
/// (no scatter): the ring's counters never reached it (they are below
/// 256).
const FIT_ON_WIRE: u16 = u16::MAX;
/// `ring_head` of a state written with the fit's six sums, the sixth
/// (`Σλᵃw²`) as `anchor_v`.
const FIT_WITH_SCATTER_ON_WIRE: u16 = u16::MAX - 1;

impl serde::Serialize for ForecastState {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let [w, u, uu, y, uy, yy] = self.fit.to_wire();
        StateWire {
            store: &*self.store,
            horizons: &*self.horizons,
            last_t: self.last_t,
            last_v: self.last_v,
            origin: f64::from(self.origin),
            dt: f64::from(self.dt),
            ses: self.ses,
            holt_l: self.holt_l,
            holt_b: self.holt_b,
            sums: [w, u, uu, y],
            anchor_t: uy,
            anchor_v: yy,
            alpha_dt: if self.weights_stale {
                f32::NEG_INFINITY
            } else {
                self.dt
            },
            damp_dt: self.damp_dt,
            n: u32::from(self.last_t.is_finite()),
            ring_head: FIT_WITH_SCATTER_ON_WIRE,
            ring_len: u16::from(self.fit_points),
            same: u16::from(self.same),
        }
        .serialize(serializer)
    }
}

/// A [`ForecastState`] as read back from durable state, written by this
/// build or an earlier one; [`SavedForecastState::resume`] checks it
/// against the current settings.
#[derive(serde::Deserialize)]
#[serde(transparent)]
pub struct SavedForecastState(StateWire<Box<[Unit]>, Box<[HorizonState]>>);

impl SavedForecastState {
    /// The saved state, if its shape fits `settings` (horizons, queue
    /// sizes, and a consistent state); `None` when it must start afresh.
    ///
    /// A state saved with another `max_pending` (and the same horizons)
    /// is kept: each horizon keeps its oldest tracked forecasts, as many
    /// as now fit, so an upgrade that changes the default does not
    /// restart every series' forecasts. A state of an earlier build,
    /// which kept the linear model's last `regression_points` points,
    /// gets the fit of those points (older ones are no longer known, so
    /// the line weighs the recent ones a little more until they age).
    pub fn resume(self, settings: &ForecastSettings) -> Option<ForecastState> {
        let w = self.0;
        let cfg = &settings.0.cfg;
        let (fit, fit_points, ring) = if w.ring_head == FIT_WITH_SCATTER_ON_WIRE {
            let [a, b, c, d] = w.sums;
            let points = u8::try_from(w.ring_len).ok().filter(|&n| n <= 3)?;
            (
                Fit::from_wire([a, b, c, d, w.anchor_t, w.anchor_v])?,
                points,
                0,
            )
        } else if w.ring_head == FIT_ON_WIRE {
            let [a, b, c, d] = w.sums;
            let points = u8::try_from(w.ring_len).ok().filter(|&n| n <= 3)?;
            (
                Fit::from_wire_without_scatter([a, b, c, d, w.anchor_t])?,
                points,
                0,
            )
        } else {
            let cap = cfg.regression_points;
            let (len, head) = (usize::from(w.ring_len), usize::from(w.ring_head));
            let ring = ring_units(cap);
            if len > cap || head >= cap || w.store.len() < ring {
                return None;
            }
            let ring_points = RingPoints {
                units: &w.store[..ring],
                len,
                head,
                cap,
                anchor: (w.anchor_t, w.anchor_v),
            };
            let fit = ring_points.fit(settings.0.fit_decay, (w.last_t, w.last_v));
            (fit, len.min(3) as u8, ring)
        };
        let horizons = cfg.horizons_secs.len();
        let queued = w.store.len() - ring;
        if horizons == 0 || !queued.is_multiple_of(horizons) {
            return None;
        }
        let saved_pending = queued / horizons;
        let fits = w.horizons.len() == horizons
            && (1..=MAX_PENDING).contains(&saved_pending)
            && w.horizons.iter().all(|h| {
                usize::from(h.queue.len) <= saved_pending
                    && usize::from(h.queue.head) < saved_pending
                    && usize::from(h.track.chosen) < N_MODELS
            });
        if !fits {
            return None;
        }
        let mut horizon_states = w.horizons;
        let store = if ring == 0 && saved_pending == cfg.max_pending {
            w.store
        } else {
            requeued(
                &mut horizon_states,
                &w.store[ring..],
                saved_pending,
                cfg.max_pending,
            )
        };
        let mut state = ForecastState {
            weights_stale: (w.dt as f32).to_bits() != w.alpha_dt.to_bits(),
            store,
            horizons: horizon_states,
            last_t: w.last_t,
            last_v: w.last_v,
            origin: w.origin as f32,
            dt: w.dt as f32,
            ses: w.ses,
            holt_l: w.holt_l,
            holt_b: w.holt_b,
            fit,
            damp_dt: w.damp_dt,
            fit_points,
            same: u8::try_from(w.same).ok()?,
        };
        if usize::from(state.same) >= cfg.regression_points {
            state.fit.flatten();
        }
        Some(state)
    }
}

/// The ring of an earlier build's state: its last `len` points (at most
/// `cap`, the oldest at `head` once full) as `f32` offsets from `anchor`,
/// two per unit.
struct RingPoints<'a> {
    units: &'a [Unit],
    len: usize,
    head: usize,
    cap: usize,
    anchor: (f64, f64),
}

impl RingPoints<'_> {
    /// The fit of the ring's points, oldest first, taken about `last`
    /// (the state's last point, the ring's newest).
    fn fit(&self, decay: f64, last: (f64, f64)) -> Fit {
        let start = if self.len < self.cap { 0 } else { self.head };
        let mut fit = Fit::EMPTY;
        let mut prev = (f64::NAN, f64::NAN);
        for k in 0..self.len {
            let i = (start + k) % self.cap;
            let unit = &self.units[i / 2];
            let (u, w) = (
                f32::from_bits(unit[2 * (i % 2)]),
                f32::from_bits(unit[2 * (i % 2) + 1]),
            );
            let point = (self.anchor.0 + f64::from(u), self.anchor.1 + f64::from(w));
            fit.push(decay, point.0 - prev.0, point.1 - prev.1);
            prev = point;
        }
        if self.len > 0 && last.0.is_finite() {
            fit.shift(last.0 - prev.0, last.1 - prev.1);
        }
        fit
    }
}

/// Units of a store that an earlier build's regression ring of `points`
/// took.
const fn ring_units(points: usize) -> usize {
    points.div_ceil(2)
}

/// A store of tracked forecasts for `horizons`, each horizon's queue
/// moved from `from` units in `old` to `to` (the oldest entries kept,
/// from the head).
fn requeued(horizons: &mut [HorizonState], old: &[Unit], from: usize, to: usize) -> Box<[Unit]> {
    let mut store = vec![Pending::EMPTY.to_unit(); horizons.len() * to];
    for (i, h) in horizons.iter_mut().enumerate() {
        let old = &old[i * from..(i + 1) * from];
        let new = &mut store[i * to..(i + 1) * to];
        let kept = usize::from(h.queue.len).min(to);
        for (k, slot) in new.iter_mut().take(kept).enumerate() {
            *slot = old[(usize::from(h.queue.head) + k) % from];
        }
        h.queue.head = 0;
        h.queue.len = kept as u8;
    }
    store.into_boxed_slice()
}

impl ForecastState {
    /// The last value fed, if any.
    pub fn last_value(&self) -> Option<f64> {
        self.last_t.is_finite().then_some(self.last_v)
    }

    /// A fresh state for `settings`.
    pub fn new(settings: &ForecastSettings) -> Self {
        let (cfg, unit) = (&settings.0.cfg, settings.0.unit);
        let horizons = cfg
            .horizons_secs
            .iter()
            .map(|_| HorizonState {
                queue: Queue::EMPTY,
                track: Tracking::new(cfg.error_alpha, unit),
                damp: 0.0,
                season: f32::NAN,
            })
            .collect();
        let store = vec![Pending::EMPTY.to_unit(); cfg.horizons_secs.len() * cfg.max_pending];
        Self {
            store: store.into_boxed_slice(),
            horizons,
            last_t: f64::NEG_INFINITY,
            last_v: f64::NAN,
            origin: 0.0,
            dt: f32::NAN,
            ses: 0.0,
            holt_l: 0.0,
            holt_b: 0.0,
            fit: Fit::EMPTY,
            damp_dt: f32::NAN,
            weights_stale: true,
            fit_points: 0,
            same: 0,
        }
    }

    /// Number of horizons (valid `horizon_idx` are `0..horizons()`).
    pub fn horizons(&self) -> usize {
        self.horizons.len()
    }

    /// Bytes held (struct, the store of tracked forecasts, the
    /// horizons); fixed at construction.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() + size_of_val(&*self.store) + size_of_val(&*self.horizons)
    }

    /// Adds `(t, v)` to the linear model's fit, before it becomes the
    /// last point. Once the last `cap` points are equal, the older
    /// points' departures from them are dropped from the sums, so the
    /// slope is exactly 0 (and stays so while the series is flat).
    #[inline]
    fn push_fit(&mut self, decay: f64, cap: usize, t: f64, v: f64) {
        self.same = if v == self.last_v {
            self.same.saturating_add(1).min(cap as u8)
        } else {
            1
        };
        self.fit.push(decay, t - self.last_t, v - self.last_v);
        if usize::from(self.same) >= cap {
            self.fit.flatten();
        }
        self.fit_points = self.fit_points.saturating_add(1).min(3);
    }

    /// The linear model's line: (value at `last_t`, slope/s), NaN with
    /// fewer than 3 points or too little spread in time.
    #[inline]
    fn regression(&self) -> (f64, f64) {
        match self.fit.line() {
            Some((offset, slope)) if self.fit_points >= 3 => (self.last_v + offset, slope),
            _ => (f64::NAN, f64::NAN),
        }
    }

    /// Model `m`'s forecast for horizon `i` (`h` seconds) from the last
    /// point, given the regression there (`ForecastState::regression`; only
    /// the linear model reads it).
    #[inline]
    fn prediction(&self, i: usize, h: f64, m: usize, reg: (f64, f64)) -> f64 {
        let hs = &self.horizons[i];
        match m {
            0 => self.last_v,
            1 => self.ses,
            2 => self.holt_l + f64::from(hs.damp) * self.holt_b,
            3 => reg.0 + reg.1 * h,
            _ => self.last_v + f64::from(hs.season),
        }
    }

    /// Every model's forecast for horizon `i` from the last point.
    #[inline]
    fn predictions(&self, i: usize, h: f64, reg: (f64, f64)) -> [f64; N_MODELS] {
        std::array::from_fn(|m| self.prediction(i, h, m, reg))
    }

    /// Feeds one value observed at `t_secs`, without a daily shape (the
    /// seasonal-naive model then never forecasts). Non-finite values and
    /// timestamps that do not advance are ignored.
    pub fn update(&mut self, settings: &ForecastSettings, t_secs: f64, value: f64) {
        self.update_with(settings, t_secs, value, &NoShape);
    }

    /// Feeds one value observed at `t_secs`; seasonal naive forecasts the
    /// last value plus `shape`'s change to `t + h` once the shape has a
    /// day of history (it answers NaN before). Non-finite values and
    /// timestamps that do not advance are ignored.
    pub fn update_with(
        &mut self,
        settings: &ForecastSettings,
        t_secs: f64,
        value: f64,
        shape: &impl DailyShape,
    ) {
        if !t_secs.is_finite() || !value.is_finite() || t_secs <= self.last_t {
            return;
        }
        // Matured forecasts are scored with the spacing known before this
        // point. Overlapping forecasts' errors are correlated: average
        // over more of them at longer horizons (÷√steps). Recomputed only
        // when Δt moved (never, once a regular series' Δt has settled).
        let dt = f64::from(self.dt);
        let cfg = &settings.0.cfg;
        let cap = cfg.max_pending;
        if self.weights_stale {
            let valid = dt.is_finite() && dt > 0.0;
            for (hs, &h) in self.horizons.iter_mut().zip(&cfg.horizons_secs) {
                hs.track.set_err_alpha(
                    error_weight(cfg.error_alpha, h, dt, valid, cap),
                    &settings.0.scoring,
                );
            }
            self.weights_stale = false;
        }
        let half = if dt.is_finite() { 0.5 * dt } else { 0.0 };

        // Update the models.
        if !self.last_t.is_finite() {
            self.origin = value.clamp(-f64::from(f32::MAX), f64::from(f32::MAX)) as f32;
            self.ses = value;
            self.holt_l = value;
            self.holt_b = 0.0;
        } else {
            let d = t_secs - self.last_t;
            self.dt = (if dt.is_finite() {
                dt + 0.1 * (d - dt)
            } else {
                d
            }) as f32;
            self.weights_stale = self.dt.to_bits() != (dt as f32).to_bits();
            self.ses += cfg.ses_alpha * (value - self.ses);
            let (a, b, phi) = (cfg.holt_alpha, cfg.holt_beta, cfg.holt_phi);
            let prev_l = self.holt_l;
            self.holt_l = a * value + (1.0 - a) * (prev_l + phi * self.holt_b);
            self.holt_b = b * (self.holt_l - prev_l) + (1.0 - b) * phi * self.holt_b;
        }
        self.push_fit(settings.0.fit_decay, cfg.regression_points, t_secs, value);
        self.last_t = t_secs;
        self.last_v = value;
        let reg = self.regression();
        let damp_dt = f64::from(self.damp_dt);
        let dt = f64::from(self.dt);
        if !(damp_dt.is_finite() && (dt - damp_dt).abs() <= 0.01 * damp_dt) {
            let phi = cfg.holt_phi;
            for (hs, &h) in self.horizons.iter_mut().zip(&cfg.horizons_secs) {
                let steps = if dt.is_finite() && dt > 0.0 {
                    h / dt
                } else {
                    1.0
                };
                hs.damp = if phi < 1e-9 {
                    0.0
                } else {
                    (phi * (1.0 - phi.powf(steps)) / (1.0 - phi)) as f32
                };
            }
            self.damp_dt = self.dt;
        }

        // Per horizon: score the forecasts maturing now, then record this
        // point's forecasts for scoring when they mature. Seasonal naive
        // needs the shape at both times (which takes a day of history).
        let horizons = self.horizons.len();
        let mut season = [f32::NAN; MAX_HORIZONS];
        let ahead = &settings.0.ahead_of_day;
        shape.daily_changes(t_secs, ahead, &mut season[..horizons]);
        let scoring = settings.0.scoring;
        let origin = f64::from(self.origin);
        for (i, &season) in season.iter().enumerate().take(horizons) {
            let h = cfg.horizons_secs[i];
            let buf = &mut self.store[i * cap..][..cap];
            let hs = &mut self.horizons[i];
            while let Some((target_t, p)) = hs.queue.pop_due(buf, t_secs + half) {
                if target_t >= t_secs - half {
                    hs.track.score(&p.preds(origin), value, &scoring);
                } // else a gap: nothing observed near the target
            }
            hs.season = season;
            let spacing = h / cap as f64 - half;
            if let Some(tail) = hs.queue.due(buf, t_secs, h, spacing) {
                let preds = self.predictions(i, h, reg);
                let target_t = t_secs + h;
                let hs = &mut self.horizons[i];
                let buf = &mut self.store[i * cap..][..cap];
                hs.queue.push(buf, target_t, tail, origin, &preds);
            }
        }
    }

    /// The model currently chosen for `horizon_idx`.
    pub fn chosen_model(&self, horizon_idx: usize) -> Option<Model> {
        let hs = self.horizons.get(horizon_idx)?;
        Some(MODELS[usize::from(hs.track.chosen)])
    }

    /// Tracked mean absolute error of `model` at `horizon_idx` (`None`
    /// before any of its forecasts matured).
    pub fn tracked_error(&self, horizon_idx: usize, model: Model) -> Option<f64> {
        let hs = self.horizons.get(horizon_idx)?;
        let m = MODELS.iter().position(|&x| x == model)?;
        (hs.track.count(m) > 0).then_some(f64::from(hs.track.mae[m]))
    }

    /// Asks the CPU for what [`forecast`](Self::forecast) reads outside
    /// this struct (every horizon's state), ahead of a walk over many
    /// series (see [`prefetch`](crate::model::prefetch::prefetch)).
    pub fn prefetch_forecasts(&self) {
        crate::model::prefetch::prefetch(&*self.horizons, 256);
    }

    /// The forecast for `horizon_idx` from the data so far; `None` until
    /// the naive model has `min_matured` matured forecasts there.
    #[inline]
    pub fn forecast(&self, settings: &ForecastSettings, horizon_idx: usize) -> Option<Forecast> {
        let hs = self.horizons.get(horizon_idx)?;
        let tr = &hs.track;
        let cfg = &settings.0.cfg;
        if tr.settled != ALL_MODELS && tr.count(0) < cfg.min_matured.max(1) {
            return None;
        }
        let h = cfg.horizons_secs[horizon_idx];
        let mut mi = usize::from(tr.chosen);
        let reg = if mi == 3 {
            self.regression()
        } else {
            (f64::NAN, f64::NAN)
        };
        let mut value = self.prediction(horizon_idx, h, mi, reg);
        if !value.is_finite() {
            value = self.last_v;
            mi = 0;
        }
        let w = tr.width(mi);
        Some(Forecast {
            horizon_secs: h,
            value,
            lower: value - w,
            upper: value + w,
            model: MODELS[mi],
        })
    }

    /// The current linear trend (least squares over the regression
    /// window, as `predict_linear`), in units per second.
    pub fn trend_per_sec(&self) -> Option<f64> {
        Some(self.regression().1).filter(|s| s.is_finite())
    }

    /// Seconds from the last point until the series' current linear trend
    /// (least squares over the regression window, as `predict_linear`)
    /// reaches `threshold` from the side the fitted line is on now. `None`
    /// if the trend is flat or moves away from the threshold, or there is
    /// too little data; callers that need "already past" compare the
    /// value themselves.
    pub fn time_to_threshold(&self, threshold: f64) -> Option<f64> {
        if !threshold.is_finite() {
            return None;
        }
        let (now, slope) = self.regression();
        if slope == 0.0 || !slope.is_finite() || !now.is_finite() {
            return None;
        }
        let eta = (threshold - now) / slope;
        (eta >= 0.0 && eta.is_finite()).then_some(eta)
    }

    /// How firmly the recent points establish the current trend: the
    /// line's slope in standard errors of the slope (its t statistic,
    /// the residuals' variance taken over the fit's effective points).
    /// `None` with fewer than 3 points, a flat series or no spread in
    /// time; infinite for points exactly on a sloped line.
    pub fn trend_standard_errors(&self, settings: &ForecastSettings) -> Option<f64> {
        self.trend_evidence(settings).map(|(t, _)| t)
    }

    /// The slope in standard errors and the fit's effective points.
    fn trend_evidence(&self, settings: &ForecastSettings) -> Option<(f64, f64)> {
        if self.fit_points < 3 {
            return None;
        }
        self.fit.slope_standard_errors(settings.0.fit_decay)
    }

    /// [`time_to_threshold`](Self::time_to_threshold), but only while the
    /// recent points confirm the trend: its slope at least `1.2 · √n`
    /// standard errors from flat over the window's `n` points (4.16 with
    /// the default 12; more while the fit has few points, see
    /// `confirming_standard_errors`). A one-off step
    /// toward the threshold makes the line steep for a few points (the
    /// time to the threshold falls to minutes, then rises as the line
    /// flattens on the new level) but never confirms it, since the
    /// points sit far from any line through the step; a ramp does once
    /// its rise per window stands out of its noise. Critical alerts read
    /// this one.
    pub fn confirmed_time_to_threshold(
        &self,
        settings: &ForecastSettings,
        threshold: f64,
    ) -> Option<f64> {
        let eta = self.time_to_threshold(threshold)?;
        let (t, effective) = self.trend_evidence(settings)?;
        (t >= confirming_standard_errors(effective)).then_some(eta)
    }
}
