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
//! Every forecast made at `t` for `t + h` is kept (per horizon, in a
//! bounded queue) until a value arrives within `Δt/2` of `t + h`; then
//! each model's absolute error updates its EWMA (weight `error_alpha /
//! √k`: overlapping forecasts' errors are correlated, so longer horizons
//! average over more of them). The
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
//! # Memory
//!
//! Fixed after construction except the pending queues, which are bounded
//! by `max_pending` entries per horizon (forecasts made while a queue is
//! full are simply not tracked). [`Forecaster::memory_bytes`] reports the
//! allocated total.

use std::collections::VecDeque;

use statrs::distribution::{ContinuousCDF, Normal};

use super::ForecastError;

const MAD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
const DAY_SECS: f64 = 86_400.0;
/// `t` modulo `period` in `[0, period)`, exact for whole seconds.
fn phase(t: f64, period: f64) -> f64 {
    let r = t - (t / period).floor() * period;
    if r < 0.0 {
        r + period
    } else if r >= period {
        r - period
    } else {
        r
    }
}

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
    /// Bound on tracked, not yet matured forecasts per horizon (default
    /// 256).
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
            max_pending: 256,
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
            65_536.0,
            "[1, 65536], e.g. 256",
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
            max_pending: self.max_pending.clamp(1, 65_536),
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

#[derive(Debug, Clone, Copy)]
struct Pending {
    target_t: f64,
    preds: [f64; N_MODELS],
}

#[derive(Debug, Clone)]
struct HorizonState {
    secs: f64,
    /// Σ φ^i for i in 1..=h/Δt, refreshed when Δt moves by over 1 %.
    damp: f64,
    pending: VecDeque<Pending>,
    mae: [f64; N_MODELS],
    matured: [u32; N_MODELS],
    mult: [f64; N_MODELS],
}

/// Streaming multi-model forecaster for one series; see the module docs.
#[derive(Debug, Clone)]
pub struct Forecaster {
    cfg: ForecastConfig,
    z: f64,
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
    profile: Box<[f64]>,
    profile_seen: Box<[bool]>,
    first_t: f64,
    horizons: Vec<HorizonState>,
    /// Regression at the last point (cached by `update`).
    reg: Option<(f64, f64)>,
    /// Calibration factors for a miss and a hit (precomputed `exp`).
    grow: f64,
    shrink: f64,
    /// `Δt` and per-horizon damped-trend sums it was computed for.
    damp_dt: f64,
}

impl Default for Forecaster {
    fn default() -> Self {
        Self::new(ForecastConfig::default())
    }
}

impl Forecaster {
    /// A forecaster with `config` forced into range.
    pub fn new(config: ForecastConfig) -> Self {
        let cfg = config.clamped();
        let z = Normal::standard().inverse_cdf(0.5 + cfg.interval_level / 2.0);
        let horizons = cfg
            .horizons_secs
            .iter()
            .map(|&secs| HorizonState {
                secs,
                damp: 0.0,
                pending: VecDeque::with_capacity(cfg.max_pending.min(64)),
                mae: [0.0; N_MODELS],
                matured: [0; N_MODELS],
                mult: [1.0; N_MODELS],
            })
            .collect();
        Self {
            z,
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
            profile: vec![0.0; cfg.daily_slots as usize].into_boxed_slice(),
            profile_seen: vec![false; cfg.daily_slots as usize].into_boxed_slice(),
            first_t: f64::NAN,
            horizons,
            reg: None,
            grow: (cfg.calibration_rate * cfg.interval_level).exp(),
            shrink: (-cfg.calibration_rate * (1.0 - cfg.interval_level)).exp(),
            damp_dt: f64::NAN,
            cfg,
        }
    }

    /// Like [`Forecaster::new`] but rejects out-of-range configuration.
    pub fn try_new(config: ForecastConfig) -> Result<Self, ForecastError> {
        config.validate()?;
        Ok(Self::new(config))
    }

    /// The configuration in use (after clamping).
    pub fn config(&self) -> &ForecastConfig {
        &self.cfg
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
            + self.profile.len() * (size_of::<f64>() + size_of::<bool>())
            + self
                .horizons
                .iter()
                .map(|h| size_of::<HorizonState>() + h.pending.capacity() * size_of::<Pending>())
                .sum::<usize>()
    }

    fn slot(&self, t: f64) -> usize {
        let n = self.profile.len();
        ((phase(t, DAY_SECS) * n as f64 / DAY_SECS) as usize).min(n - 1)
    }

    fn seasonal_ready(&self) -> bool {
        !self.profile.is_empty() && self.last_t - self.first_t >= DAY_SECS
    }

    /// Least-squares line over the ring: (value at `last_t`, slope/s).
    fn regression(&self) -> Option<(f64, f64)> {
        if self.ring_len < 3 {
            return None;
        }
        let n = self.ring_len as f64;
        let (mut st, mut sv, mut stt, mut stv) = (0.0, 0.0, 0.0, 0.0);
        for &(t, v) in &self.ring[..self.ring_len] {
            let x = t - self.last_t;
            st += x;
            sv += v;
            stt += x * x;
            stv += x * v;
        }
        let den = n * stt - st * st;
        if den.abs() < 1e-12 {
            return None;
        }
        let slope = (n * stv - st * sv) / den;
        let intercept = (sv - slope * st) / n;
        Some((intercept, slope))
    }

    /// Every model's prediction for `h` seconds past the last point (NaN
    /// where a model cannot predict yet).
    fn predict_all(&self, h: f64, damp: f64, reg: Option<(f64, f64)>) -> [f64; N_MODELS] {
        let linear = reg.map_or(f64::NAN, |(a, b)| a + b * h);
        let seasonal = if self.seasonal_ready() {
            let (s0, s1) = (self.slot(self.last_t), self.slot(self.last_t + h));
            if self.profile_seen[s0] && self.profile_seen[s1] {
                self.last_v + self.profile[s1] - self.profile[s0]
            } else {
                f64::NAN
            }
        } else {
            f64::NAN
        };
        [
            self.last_v,
            self.ses,
            self.holt_l + damp * self.holt_b,
            linear,
            seasonal,
        ]
    }

    /// Feeds one value observed at `t_secs`. Non-finite values and
    /// timestamps that do not advance are ignored.
    pub fn update(&mut self, t_secs: f64, value: f64) {
        if !t_secs.is_finite() || !value.is_finite() || t_secs <= self.last_t {
            return;
        }
        // Score matured forecasts against this value.
        let cfg = &self.cfg;
        let half = if self.dt.is_finite() {
            0.5 * self.dt
        } else {
            0.0
        };
        let dt = self.dt;
        for hs in &mut self.horizons {
            // Overlapping forecasts' errors are correlated: average over
            // more of them at longer horizons (÷√steps).
            let steps = if dt.is_finite() && dt > 0.0 {
                (hs.secs / dt).max(1.0)
            } else {
                1.0
            };
            let err_alpha = cfg.error_alpha / steps.sqrt();
            while let Some(p) = hs.pending.front().copied() {
                if p.target_t > t_secs + half {
                    break;
                }
                hs.pending.pop_front();
                if p.target_t < t_secs - half {
                    continue; // a gap: nothing observed near the target
                }
                for m in 0..N_MODELS {
                    let pred = p.preds[m];
                    if !pred.is_finite() {
                        continue;
                    }
                    let e = (value - pred).abs();
                    if hs.matured[m] > 0 {
                        let width = hs.mult[m] * self.z * MAD_TO_SIGMA * hs.mae[m];
                        let f = if e > width { self.grow } else { self.shrink };
                        hs.mult[m] = (hs.mult[m] * f).clamp(0.05, 20.0);
                    }
                    let a = err_alpha.max(1.0 / (f64::from(hs.matured[m]) + 1.0));
                    hs.mae[m] += a * (e - hs.mae[m]);
                    hs.matured[m] = hs.matured[m].saturating_add(1);
                }
            }
        }

        // Update the models.
        if self.n == 0 {
            self.first_t = t_secs;
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
        if !self.profile.is_empty() {
            let s = self.slot(t_secs);
            if self.profile_seen[s] {
                self.profile[s] += 0.3 * (value - self.profile[s]);
            } else {
                self.profile[s] = value;
                self.profile_seen[s] = true;
            }
        }
        let cap = self.ring.len();
        self.ring[self.ring_head] = (t_secs, value);
        self.ring_head = (self.ring_head + 1) % cap;
        self.ring_len = (self.ring_len + 1).min(cap);
        self.last_t = t_secs;
        self.last_v = value;
        self.n += 1;

        // Record this point's forecasts for scoring when they mature.
        let reg = self.regression();
        self.reg = reg;
        if !(self.damp_dt.is_finite() && (self.dt - self.damp_dt).abs() <= 0.01 * self.damp_dt) {
            let phi = self.cfg.holt_phi;
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
            self.damp_dt = dt;
        }
        let max_pending = self.cfg.max_pending;
        for i in 0..self.horizons.len() {
            let (h, damp) = (self.horizons[i].secs, self.horizons[i].damp);
            let preds = self.predict_all(h, damp, reg);
            let hs = &mut self.horizons[i];
            if hs.pending.len() < max_pending {
                hs.pending.push_back(Pending {
                    target_t: t_secs + h,
                    preds,
                });
            }
        }
    }

    /// The model currently chosen for `horizon_idx`.
    pub fn chosen_model(&self, horizon_idx: usize) -> Option<Model> {
        let hs = self.horizons.get(horizon_idx)?;
        // Another model must beat naive by `naive_margin` to replace it.
        let mut best = 0;
        let mut best_err = hs.mae[0] * (1.0 - self.cfg.naive_margin);
        for m in 1..N_MODELS {
            if hs.matured[m] >= self.cfg.min_matured && hs.mae[m] < best_err {
                best_err = hs.mae[m];
                best = m;
            }
        }
        Some(MODELS[best])
    }

    /// Tracked mean absolute error of `model` at `horizon_idx` (`None`
    /// before any of its forecasts matured).
    pub fn tracked_error(&self, horizon_idx: usize, model: Model) -> Option<f64> {
        let hs = self.horizons.get(horizon_idx)?;
        let m = MODELS.iter().position(|&x| x == model)?;
        (hs.matured[m] > 0).then_some(hs.mae[m])
    }

    /// The forecast for `horizon_idx` from the data so far; `None` until
    /// the naive model has `min_matured` matured forecasts there.
    pub fn forecast(&self, horizon_idx: usize) -> Option<Forecast> {
        let hs = self.horizons.get(horizon_idx)?;
        if hs.matured[0] < self.cfg.min_matured.max(1) {
            return None;
        }
        let model = self.chosen_model(horizon_idx)?;
        let m = MODELS.iter().position(|&x| x == model)?;
        let mut value = self.predict_all(hs.secs, hs.damp, self.reg)[m];
        let mut model = model;
        let mut mi = m;
        if !value.is_finite() {
            value = self.last_v;
            model = Model::Naive;
            mi = 0;
        }
        let w = hs.mult[mi] * self.z * MAD_TO_SIGMA * hs.mae[mi];
        Some(Forecast {
            horizon_secs: hs.secs,
            value,
            lower: value - w,
            upper: value + w,
            model,
        })
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
