//! [`Forecaster`]: per-horizon model choice by tracked online error, with
//! prediction intervals calibrated online.
//!
//! # Models
//!
//! Every update refreshes five cheap models (see [`Model`]):
//! last value (naive), simple exponential smoothing, damped-trend Holt,
//! least-squares line over the last `regression_points` points (as
//! Prometheus `predict_linear`), and seasonal naive (last value plus the
//! daily profile's change from now to `t + h`, once a day of history
//! exists). Horizons are in seconds; a model that works in steps uses
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
//! tracked mean absolute error into a Gaussian σ, and `m` is a per model
//! and horizon multiplier calibrated online as in adaptive conformal
//! inference: after each matured forecast `m ← m · exp(η · (miss − (1 −
//! level)))`, so long-run coverage converges to the level even for heavy
//! tailed or skewed residuals.
//!
//! # Cost
//!
//! Constant per point. The least-squares sums slide with the window
//! (recomputed from it each time it wraps, so rounding does not
//! accumulate; a window of equal values has slope exactly 0). Daily
//! profile slots come from a multiplication with an exact correction and
//! are cached per horizon. The normal quantile is computed at
//! construction, `error_alpha / √k` when `Δt` changes, the damped-trend
//! sums when `Δt` moves by over 1 %. Once every model has enough matured
//! forecasts that its weight is `error_alpha / √k`, scoring a matured
//! forecast has no branch or division per model. [`Forecaster::forecast`]
//! reads the forecasts `update` made.
//!
//! # Memory
//!
//! Fixed at construction: the struct, the regression ring, the daily
//! profile (`f32` relative to the first value) and per horizon a ring of
//! `max_pending` tracked forecasts (32 bytes each), made `h /
//! max_pending` apart so it never grows whatever `h / Δt` is. The
//! configuration is shared ([`ForecastSettings`]).
//! [`Forecaster::memory_bytes`] reports the total: 1 968 bytes with the
//! defaults.

use std::sync::Arc;

use statrs::distribution::{ContinuousCDF, Normal};

use super::ForecastError;

const MAD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
const DAY_SECS: f64 = 86_400.0;

/// `t` modulo a day in `[0, 86400)`, exact for whole seconds. The
/// quotient is truncated from a multiplication (no division, no `floor`
/// call); it is off by at most one, which the correction absorbs, and
/// `t - q · 86400` is exact, so the result equals the `floor` version.
#[inline]
fn day_phase(t: f64) -> f64 {
    let q = if t.abs() < 4.5e15 {
        (t * (1.0 / DAY_SECS)) as i64 as f64
    } else {
        (t / DAY_SECS).floor()
    };
    let r = t - q * DAY_SECS;
    if r < 0.0 {
        r + DAY_SECS
    } else if r >= DAY_SECS {
        r - DAY_SECS
    } else {
        r
    }
}

/// The most forecasts tracked at once per horizon.
pub const MAX_PENDING: usize = 64;

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
    /// Points in the regression window (default 12; 3 to 256).
    pub regression_points: usize,
    /// Slots of the daily profile for [`Model::SeasonalNaive`] (default
    /// 96; 0 disables the model).
    pub daily_slots: u32,
    /// EWMA weight of each matured absolute error (default 0.02).
    pub error_alpha: f64,
    /// Matured forecasts before a model may be chosen (default 12).
    pub min_matured: u32,
    /// Step of the interval multiplier's online calibration (default 0.05).
    pub calibration_rate: f64,
    /// Relative margin by which another model's tracked error must be
    /// below naive's to be chosen (default 0.03).
    pub naive_margin: f64,
    /// Forecasts tracked (kept until they mature and are scored) at once
    /// per horizon, made `h / max_pending` apart (default 4; 1 to 64).
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
            daily_slots: 96,
            error_alpha: 0.02,
            min_matured: 12,
            calibration_rate: 0.05,
            naive_margin: 0.03,
            max_pending: 4,
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
            256.0,
            "[3, 256], e.g. 12",
        )?;
        check(
            "daily_slots",
            f64::from(self.daily_slots),
            0.0,
            1440.0,
            "[0, 1440], e.g. 96",
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
            regression_points: self.regression_points.clamp(3, 256),
            daily_slots: self.daily_slots.min(1440),
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

/// One tracked forecast: the naive forecast (the value it was made from)
/// in full and the other models' forecasts as `f32` differences from it,
/// so an entry is 32 bytes and keeps full precision for series far from
/// zero.
#[derive(Debug, Clone, Copy)]
struct Pending {
    target_t: f64,
    base: f64,
    /// Models 1.. less `base`; NaN where a model could not forecast.
    deltas: [f32; N_MODELS - 1],
}

impl Pending {
    const EMPTY: Self = Self {
        target_t: f64::NAN,
        base: f64::NAN,
        deltas: [f32::NAN; N_MODELS - 1],
    };

    #[inline]
    fn new(target_t: f64, preds: &[f64; N_MODELS]) -> Self {
        let base = preds[0];
        let mut deltas = [f32::NAN; N_MODELS - 1];
        for (d, p) in deltas.iter_mut().zip(&preds[1..]) {
            *d = (p - base) as f32;
        }
        Self {
            target_t,
            base,
            deltas,
        }
    }

    #[inline]
    fn preds(&self) -> [f64; N_MODELS] {
        let b = self.base;
        let d = &self.deltas;
        [
            b,
            b + f64::from(d[0]),
            b + f64::from(d[1]),
            b + f64::from(d[2]),
            b + f64::from(d[3]),
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

/// First-in first-out ring of the forecasts tracked for one horizon: at
/// most `max_pending`, made at least `h / max_pending` apart, so the ring
/// never needs to grow and a horizon's memory does not depend on how
/// many points it spans.
#[derive(Debug, Clone)]
struct PendingQueue {
    buf: Box<[Pending]>,
    head: u16,
    len: u16,
    /// Earliest time the next forecast is tracked.
    next_t: f64,
}

impl PendingQueue {
    fn new(max_pending: usize) -> Self {
        Self {
            buf: vec![Pending::EMPTY; max_pending.clamp(1, MAX_PENDING)].into_boxed_slice(),
            head: 0,
            len: 0,
            next_t: f64::NEG_INFINITY,
        }
    }

    fn capacity(&self) -> usize {
        self.buf.len()
    }

    /// Removes and returns the oldest entry if its target is `≤ until`.
    #[inline]
    fn pop_due(&mut self, until: f64) -> Option<Pending> {
        if self.len == 0 {
            return None;
        }
        let head = usize::from(self.head);
        let p = *self.buf.get(head)?;
        if p.target_t > until {
            return None;
        }
        self.head = if head + 1 == self.buf.len() {
            0
        } else {
            self.head + 1
        };
        self.len -= 1;
        Some(p)
    }

    /// Whether a forecast made at `t` is to be tracked.
    #[inline]
    fn due(&self, t: f64) -> bool {
        t >= self.next_t && usize::from(self.len) < self.buf.len()
    }

    /// Tracks `p`, made at `t`; the next is tracked from `t + spacing`.
    #[inline]
    fn push(&mut self, p: Pending, t: f64, spacing: f64) {
        let cap = self.buf.len();
        if usize::from(self.len) >= cap {
            return;
        }
        let mut i = usize::from(self.head) + usize::from(self.len);
        if i >= cap {
            i -= cap;
        }
        if let Some(slot) = self.buf.get_mut(i) {
            *slot = p;
            self.len += 1;
            self.next_t = t + spacing;
        }
    }
}

/// A daily-profile slot, reused while successive lookups fall in it.
#[derive(Debug, Clone, Copy)]
struct SlotCache {
    /// `slot · 86400`: the slot covers `phase · n` in `[lo, lo + 86400)`.
    lo: f64,
    slot: usize,
}

impl SlotCache {
    const EMPTY: Self = Self {
        lo: f64::NAN,
        slot: 0,
    };

    /// Slot of a day phase in a profile of `n > 0` slots: `⌊phase · n /
    /// 86400⌋`, exact, from a multiplication and a correction (no
    /// division) when the cached slot does not cover it.
    #[inline]
    fn get(&mut self, phase: f64, n: usize) -> usize {
        let x = phase * n as f64;
        if x >= self.lo && x < self.lo + DAY_SECS {
            return self.slot;
        }
        let mut s = (x * (1.0 / DAY_SECS)) as u32;
        if f64::from(s + 1) * DAY_SECS <= x {
            s += 1;
        } else if s > 0 && f64::from(s) * DAY_SECS > x {
            s -= 1;
        }
        let s = (s as usize).min(n - 1);
        *self = Self {
            lo: s as f64 * DAY_SECS,
            slot: s,
        };
        s
    }
}

/// Interval calibration constants shared by the horizons.
#[derive(Debug, Clone, Copy)]
struct Calibration {
    /// Scale factors after a miss and a hit (precomputed `exp`).
    grow: f64,
    shrink: f64,
    /// Bounds of the scale: `m` in `[0.05, 20]`, times `z · √(π/2)`.
    lo: f64,
    hi: f64,
}

const ALL_MODELS: u8 = (1 << N_MODELS) - 1;

/// Per-horizon tracked errors and interval scales of every model.
#[derive(Debug, Clone)]
struct Tracking {
    /// EWMA weight of a matured error, `error_alpha / √max(1, h/Δt)`, for
    /// the `Δt` in `Forecaster::alpha_dt`.
    err_alpha: f64,
    /// Target time of the newest queued forecast in which some model
    /// could not predict (those take the general scoring path).
    partial_until: f64,
    mae: [f64; N_MODELS],
    /// Interval half-width per unit of MAE: `m · z · √(π/2)`.
    scale: [f64; N_MODELS],
    /// Matured forecasts per model, less `bulk` (see `Tracking::count`).
    matured: [u32; N_MODELS],
    /// Forecasts every model matured in since `matured` was last brought
    /// up to date (by the settled path, which scores all five).
    bulk: u32,
    /// The configured `min_matured`.
    min_matured: u32,
    /// Bit `m`: model `m` has at least `max(min_matured, 1)` matured
    /// forecasts, and enough of them that its weight `max(err_alpha, 1 /
    /// (count + 1))` is `err_alpha`.
    settled: u8,
    /// `1 / (count + 1)` of the least settled model when `settled` was
    /// computed: while `err_alpha` stays at or above it, `settled` holds.
    floor: f64,
}

#[derive(Debug, Clone)]
struct HorizonState {
    secs: f64,
    /// Σ φ^i for i in 1..=h/Δt, refreshed when Δt moves by over 1 %.
    damp: f64,
    /// `h` modulo a day, and the profile slot of the last `t + h`.
    phase: f64,
    slot: SlotCache,
    /// Every model's forecast from the last point (what `forecast` reads).
    cur: [f64; N_MODELS],
    track: Tracking,
    pending: PendingQueue,
}

impl Tracking {
    fn new(error_alpha: f64, unit: f64, min_matured: u32) -> Self {
        Self {
            err_alpha: error_alpha,
            partial_until: f64::NEG_INFINITY,
            mae: [0.0; N_MODELS],
            scale: [unit; N_MODELS],
            matured: [0; N_MODELS],
            bulk: 0,
            min_matured,
            settled: 0,
            floor: f64::INFINITY,
        }
    }

    /// Matured forecasts of model `m`.
    #[inline]
    fn count(&self, m: usize) -> u32 {
        self.matured[m].saturating_add(self.bulk)
    }

    /// Recomputes `settled` (and `floor`) from the counts.
    fn refresh_settled(&mut self) {
        let (mut bits, mut least) = (0, u32::MAX);
        for m in 0..N_MODELS {
            let k = self.count(m);
            if k >= self.min_matured.max(1) && (f64::from(k) + 1.0) * self.err_alpha >= 1.0 {
                bits |= 1 << m;
                least = least.min(k);
            }
        }
        self.settled = bits;
        self.floor = 1.0 / (f64::from(least) + 1.0);
    }

    /// Sets the error weight for a new `Δt`.
    #[inline]
    fn set_err_alpha(&mut self, err_alpha: f64) {
        self.err_alpha = err_alpha;
        if err_alpha < self.floor {
            self.refresh_settled();
        }
    }

    /// Scores one matured forecast against the observed `value`.
    #[inline]
    fn score(&mut self, p: &Pending, value: f64, cal: &Calibration) {
        let preds = &p.preds();
        // Usually every model predicted and is settled: no branch per
        // model.
        if p.target_t > self.partial_until && self.settled == ALL_MODELS {
            let a = self.err_alpha;
            let (mae, scale) = (&mut self.mae, &mut self.scale);
            for m in 0..N_MODELS {
                let e = (value - preds[m]).abs();
                let s = scale[m]
                    * if e > scale[m] * mae[m] {
                        cal.grow
                    } else {
                        cal.shrink
                    };
                let s = if s < cal.lo { cal.lo } else { s };
                scale[m] = if s > cal.hi { cal.hi } else { s };
                mae[m] += a * (e - mae[m]);
            }
            self.bulk = self.bulk.saturating_add(1);
            return;
        }
        // Else, if every model that predicted is settled (e.g. seasonal
        // naive before a day of history or when disabled): skip the rest.
        let finite = preds
            .iter()
            .enumerate()
            .fold(0, |bits, (m, p)| bits | (u8::from(p.is_finite()) << m));
        if finite & !self.settled != 0 {
            self.score_each(preds, value, cal);
            return;
        }
        let a = self.err_alpha;
        for (m, &pred) in preds.iter().enumerate() {
            if finite & (1 << m) == 0 {
                continue;
            }
            let e = (value - pred).abs();
            let s = self.scale[m];
            let f = if e > s * self.mae[m] {
                cal.grow
            } else {
                cal.shrink
            };
            self.scale[m] = (s * f).clamp(cal.lo, cal.hi);
            self.mae[m] += a * (e - self.mae[m]);
            self.matured[m] = self.matured[m].saturating_add(1);
        }
    }

    /// `Tracking::score` for any state, model by model (as during the
    /// warm-up).
    #[cold]
    fn score_each(&mut self, preds: &[f64; N_MODELS], value: f64, cal: &Calibration) {
        for m in 0..N_MODELS {
            self.matured[m] = self.count(m);
        }
        self.bulk = 0;
        let ea = self.err_alpha;
        for (m, &pred) in preds.iter().enumerate() {
            if !pred.is_finite() {
                continue;
            }
            let e = (value - pred).abs();
            let k = self.matured[m];
            if k > 0 {
                let s = self.scale[m];
                let f = if e > s * self.mae[m] {
                    cal.grow
                } else {
                    cal.shrink
                };
                self.scale[m] = (s * f).clamp(cal.lo, cal.hi);
            }
            let a = if self.settled & (1 << m) != 0 {
                ea
            } else {
                ea.max(1.0 / (f64::from(k) + 1.0))
            };
            self.mae[m] += a * (e - self.mae[m]);
            self.matured[m] = k.saturating_add(1);
        }
        self.refresh_settled();
    }

    /// Index of the chosen model: another model must beat naive by
    /// `naive_margin` to replace it, and have `min_matured` matured
    /// forecasts (every settled model has).
    #[inline]
    fn chosen(&self, naive_margin: f64) -> usize {
        let settled = self.settled == ALL_MODELS;
        let mut best = 0;
        let mut best_err = self.mae[0] * (1.0 - naive_margin);
        for m in 1..N_MODELS {
            if (settled || self.count(m) >= self.min_matured) && self.mae[m] < best_err {
                best_err = self.mae[m];
                best = m;
            }
        }
        best
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
    cal: Calibration,
}

impl From<ForecastConfig> for ForecastSettings {
    fn from(config: ForecastConfig) -> Self {
        let cfg = config.clamped();
        let z = Normal::standard().inverse_cdf(0.5 + cfg.interval_level / 2.0);
        let unit = z * MAD_TO_SIGMA;
        let cal = Calibration {
            grow: (cfg.calibration_rate * cfg.interval_level).exp(),
            shrink: (-cfg.calibration_rate * (1.0 - cfg.interval_level)).exp(),
            lo: 0.05 * unit,
            hi: 20.0 * unit,
        };
        Self(Arc::new(Settings { cfg, unit, cal }))
    }
}

impl ForecastSettings {
    /// The configuration (after clamping).
    pub fn config(&self) -> &ForecastConfig {
        &self.0.cfg
    }
}

/// Streaming multi-model forecaster for one series; see the module docs.
#[derive(Debug, Clone)]
pub struct Forecaster {
    settings: ForecastSettings,
    n: u64,
    last_t: f64,
    last_v: f64,
    dt: f64,
    ses: f64,
    holt_l: f64,
    holt_b: f64,
    /// Ring of the last `regression_points` (t, v).
    ring: Box<[(f64, f64)]>,
    ring_head: usize,
    ring_len: usize,
    /// `1 / ring_len`.
    inv_len: f64,
    /// Sliding sums over the ring of `u = t − anchor_t` and `w = v −
    /// anchor_v`: Σu, Σw, Σu², Σuw. Recomputed from the ring (with the
    /// newest point as anchor) each time the ring wraps, so rounding does
    /// not accumulate.
    sums: [f64; 4],
    anchor_t: f64,
    anchor_v: f64,
    /// Trailing points equal to the last value (up to the ring size): a
    /// constant window has slope exactly 0, whatever the sums' rounding.
    same: usize,
    /// Daily profile as differences from `origin` (the first value), NaN
    /// where no value was seen yet.
    profile: Box<[f32]>,
    origin: f64,
    /// Profile slot of the last point.
    slot: SlotCache,
    first_t: f64,
    horizons: Box<[HorizonState]>,
    /// Regression at the last point (cached by `update`).
    reg: Option<(f64, f64)>,
    /// `Δt` the per-horizon damped-trend sums were computed for.
    damp_dt: f64,
    /// `Δt` the per-horizon error weights were computed for.
    alpha_dt: f64,
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
        let (cfg, unit) = (&settings.0.cfg, settings.0.unit);
        let horizons = cfg
            .horizons_secs
            .iter()
            .map(|&secs| HorizonState {
                secs,
                damp: 0.0,
                phase: day_phase(secs),
                slot: SlotCache::EMPTY,
                cur: [f64::NAN; N_MODELS],
                track: Tracking::new(cfg.error_alpha, unit, cfg.min_matured),
                pending: PendingQueue::new(cfg.max_pending),
            })
            .collect();
        Self {
            n: 0,
            last_t: f64::NEG_INFINITY,
            last_v: f64::NAN,
            dt: f64::NAN,
            ses: 0.0,
            holt_l: 0.0,
            holt_b: 0.0,
            ring: vec![(0.0, 0.0); cfg.regression_points].into_boxed_slice(),
            ring_head: 0,
            ring_len: 0,
            inv_len: 0.0,
            sums: [0.0; 4],
            anchor_t: 0.0,
            anchor_v: 0.0,
            same: 0,
            profile: vec![f32::NAN; cfg.daily_slots as usize].into_boxed_slice(),
            origin: 0.0,
            slot: SlotCache::EMPTY,
            first_t: f64::NAN,
            horizons,
            reg: None,
            damp_dt: f64::NAN,
            alpha_dt: f64::NEG_INFINITY,
            settings,
        }
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

    /// Number of horizons (valid `horizon_idx` are `0..horizons()`).
    pub fn horizons(&self) -> usize {
        self.horizons.len()
    }

    /// Bytes held (struct, ring, profile and the pending queues'
    /// allocated capacity).
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>()
            + self.ring.len() * size_of::<(f64, f64)>()
            + self.profile.len() * size_of::<f32>()
            + self
                .horizons
                .iter()
                .map(|h| size_of::<HorizonState>() + h.pending.capacity() * size_of::<Pending>())
                .sum::<usize>()
    }

    /// Adds `(t, v)` to the ring and its sums, dropping the oldest point
    /// once full.
    #[inline]
    fn push_ring(&mut self, t: f64, v: f64) {
        let cap = self.ring.len();
        self.same = if v == self.last_v {
            (self.same + 1).min(cap)
        } else {
            1
        };
        let (at, av) = (self.anchor_t, self.anchor_v);
        let [su, sw, suu, suw] = &mut self.sums;
        if self.ring_len == cap {
            let (ot, ov) = self.ring[self.ring_head];
            let (u, w) = (ot - at, ov - av);
            *su -= u;
            *sw -= w;
            *suu -= u * u;
            *suw -= u * w;
        } else {
            self.ring_len += 1;
            self.inv_len = 1.0 / self.ring_len as f64;
        }
        let (u, w) = (t - at, v - av);
        *su += u;
        *sw += w;
        *suu += u * u;
        *suw += u * w;
        self.ring[self.ring_head] = (t, v);
        self.ring_head += 1;
        if self.ring_head == cap {
            self.ring_head = 0;
            // Re-anchor at the newest point and recompute the sums.
            self.anchor_t = t;
            self.anchor_v = v;
            let mut sums = [0.0; 4];
            for &(t, v) in &self.ring[..self.ring_len] {
                let (u, w) = (t - self.anchor_t, v - self.anchor_v);
                sums[0] += u;
                sums[1] += w;
                sums[2] += u * u;
                sums[3] += u * w;
            }
            self.sums = sums;
        }
    }

    /// Least-squares line over the ring: (value at `last_t`, slope/s).
    #[inline]
    fn regression(&self) -> Option<(f64, f64)> {
        if self.ring_len < 3 {
            return None;
        }
        let n = self.ring_len as f64;
        let [su, sw, suu, suw] = self.sums;
        // Both are invariant under the shift of origin.
        let den = n * suu - su * su;
        if den.abs() < 1e-12 {
            return None;
        }
        if self.same >= self.ring_len {
            return Some((self.last_v, 0.0));
        }
        let slope = (n * suw - su * sw) / den;
        // Σ(t − last_t) = Σu − n · (last_t − anchor_t).
        let st = su - n * (self.last_t - self.anchor_t);
        let intercept = self.anchor_v + (sw - slope * st) * self.inv_len;
        Some((intercept, slope))
    }

    /// Feeds one value observed at `t_secs`. Non-finite values and
    /// timestamps that do not advance are ignored.
    pub fn update(&mut self, t_secs: f64, value: f64) {
        if !t_secs.is_finite() || !value.is_finite() || t_secs <= self.last_t {
            return;
        }
        // Matured forecasts are scored with the spacing known before this
        // point. Overlapping forecasts' errors are correlated: average
        // over more of them at longer horizons (÷√steps). Recomputed only
        // when Δt moved (never, once a regular series' Δt has settled).
        let dt = self.dt;
        if dt.to_bits() != self.alpha_dt.to_bits() {
            let valid = dt.is_finite() && dt > 0.0;
            let error_alpha = self.settings.0.cfg.error_alpha;
            for hs in &mut self.horizons {
                hs.track.set_err_alpha(error_weight(
                    error_alpha,
                    hs.secs,
                    dt,
                    valid,
                    hs.pending.capacity(),
                ));
            }
            self.alpha_dt = dt;
        }
        let half = if dt.is_finite() { 0.5 * dt } else { 0.0 };

        // Update the models.
        let cfg = &self.settings.0.cfg;
        if self.n == 0 {
            self.first_t = t_secs;
            self.origin = value;
            self.anchor_t = t_secs;
            self.anchor_v = value;
            self.ses = value;
            self.holt_l = value;
            self.holt_b = 0.0;
        } else {
            let d = t_secs - self.last_t;
            self.dt = if self.dt.is_finite() {
                self.dt + 0.1 * (d - self.dt)
            } else {
                d
            };
            self.ses += cfg.ses_alpha * (value - self.ses);
            let (a, b, phi) = (cfg.holt_alpha, cfg.holt_beta, cfg.holt_phi);
            let prev_l = self.holt_l;
            self.holt_l = a * value + (1.0 - a) * (prev_l + phi * self.holt_b);
            self.holt_b = b * (self.holt_l - prev_l) + (1.0 - b) * phi * self.holt_b;
        }
        let slots = self.profile.len();
        let phase = day_phase(t_secs);
        let mut now = f64::NAN;
        if slots > 0 {
            let s = self.slot.get(phase, slots);
            let x = value - self.origin;
            if let Some(p) = self.profile.get_mut(s) {
                let old = f64::from(*p);
                let new = if old.is_nan() {
                    x
                } else {
                    old + 0.3 * (x - old)
                };
                *p = new as f32;
                now = f64::from(*p);
            }
        }
        self.push_ring(t_secs, value);
        self.last_t = t_secs;
        self.last_v = value;
        self.n += 1;
        let reg = self.regression();
        self.reg = reg;
        if !(self.damp_dt.is_finite() && (self.dt - self.damp_dt).abs() <= 0.01 * self.damp_dt) {
            let phi = self.settings.0.cfg.holt_phi;
            let dt = self.dt;
            for hs in &mut self.horizons {
                let steps = if dt.is_finite() && dt > 0.0 {
                    hs.secs / dt
                } else {
                    1.0
                };
                hs.damp = if phi < 1e-9 {
                    0.0
                } else {
                    phi * (1.0 - phi.powf(steps)) / (1.0 - phi)
                };
            }
            self.damp_dt = self.dt;
        }

        // Per horizon: score the forecasts maturing now, then record this
        // point's forecasts for scoring when they mature. Seasonal naive
        // needs a day of history and both profile slots seen (NaN
        // otherwise, through the profile's NaN).
        let seasonal = slots > 0 && t_secs - self.first_t >= DAY_SECS;
        let cal = self.settings.0.cal;
        let (ses, holt_l, holt_b) = (self.ses, self.holt_l, self.holt_b);
        for hs in &mut self.horizons {
            while let Some(p) = hs.pending.pop_due(t_secs + half) {
                if p.target_t >= t_secs - half {
                    hs.track.score(&p, value, &cal);
                } // else a gap: nothing observed near the target
            }
            let h = hs.secs;
            let seasonal = if seasonal {
                // (t + h) mod day from the two phases: exact when `t + h`
                // is (e.g. whole seconds).
                let mut p = phase + hs.phase;
                if p >= DAY_SECS {
                    p -= DAY_SECS;
                }
                let s1 = hs.slot.get(p, slots);
                self.profile
                    .get(s1)
                    .map_or(f64::NAN, |&p1| value + (f64::from(p1) - now))
            } else {
                f64::NAN
            };
            let preds = [
                value,
                ses,
                holt_l + hs.damp * holt_b,
                reg.map_or(f64::NAN, |(a, b)| a + b * h),
                seasonal,
            ];
            if hs.pending.due(t_secs) {
                let target_t = t_secs + h;
                // (Naive is always finite; `p · 0` is 0 for finite `p`,
                // NaN otherwise, and a sum that overflows only errs on the
                // safe side.)
                if (preds[1] + preds[2] + preds[3] + preds[4]) * 0.0 != 0.0 {
                    hs.track.partial_until = target_t;
                }
                let spacing = h / hs.pending.capacity() as f64 - half;
                hs.pending
                    .push(Pending::new(target_t, &preds), t_secs, spacing);
            }
            hs.cur = preds;
        }
    }

    /// The model currently chosen for `horizon_idx`.
    pub fn chosen_model(&self, horizon_idx: usize) -> Option<Model> {
        let hs = self.horizons.get(horizon_idx)?;
        Some(MODELS[hs.track.chosen(self.settings.0.cfg.naive_margin)])
    }

    /// Tracked mean absolute error of `model` at `horizon_idx` (`None`
    /// before any of its forecasts matured).
    pub fn tracked_error(&self, horizon_idx: usize, model: Model) -> Option<f64> {
        let hs = self.horizons.get(horizon_idx)?;
        let m = MODELS.iter().position(|&x| x == model)?;
        (hs.track.count(m) > 0).then_some(hs.track.mae[m])
    }

    /// The forecast for `horizon_idx` from the data so far; `None` until
    /// the naive model has `min_matured` matured forecasts there.
    #[inline]
    pub fn forecast(&self, horizon_idx: usize) -> Option<Forecast> {
        let hs = self.horizons.get(horizon_idx)?;
        let tr = &hs.track;
        if tr.settled != ALL_MODELS && tr.count(0) < tr.min_matured.max(1) {
            return None;
        }
        let mut mi = tr.chosen(self.settings.0.cfg.naive_margin);
        let mut value = hs.cur[mi];
        if !value.is_finite() {
            value = self.last_v;
            mi = 0;
        }
        let w = tr.scale[mi] * tr.mae[mi];
        Some(Forecast {
            horizon_secs: hs.secs,
            value,
            lower: value - w,
            upper: value + w,
            model: MODELS[mi],
        })
    }

    /// The current linear trend (least squares over the regression
    /// window, as `predict_linear`), in units per second.
    pub fn trend_per_sec(&self) -> Option<f64> {
        self.reg.map(|(_, slope)| slope).filter(|s| s.is_finite())
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
        let (now, slope) = self.reg?;
        if slope == 0.0 || !slope.is_finite() {
            return None;
        }
        let eta = (threshold - now) / slope;
        (eta >= 0.0 && eta.is_finite()).then_some(eta)
    }
}
