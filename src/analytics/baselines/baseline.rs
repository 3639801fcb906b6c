//! [`Baseline`]: a robust, seasonal, streaming expected value and band for
//! one series, with an anomaly score in `[0, 1]` and a rising-edge flag.
//!
//! # Model
//!
//! Three candidate models run side by side, each with its own level: flat
//! (`level`), daily (`level_d + daily term at the time-of-day slot of
//! `t``) and weekly (`level_w + daily term + weekly correction at the
//! slot of the week`, 3-hour slots by default: the correction profile
//! learns the value less the daily term, so a weekday/weekend difference
//! costs 56 slots, not 168 hour-of-week ones). The expected value is the
//! one of the model with the lowest tracked one-step error (EWMA of
//! absolute error); a profile must beat flat by 5 % (the weekly model,
//! a refinement of the daily one, is preferred to it unless 5 % worse)
//! and takes part only once the series has `min_cycles` periods of
//! history, so short series stay flat and a profile that does not help
//! is never used. Each model keeps its own level (and clips by its own
//! error scale) because a shared level would follow whichever model is in
//! use — a flat level re-learns every daily edge, so the profile's error,
//! measured against that level, would never look better.
//!
//! A slot's first [`ESTABLISHED`] values are averaged as they are, so a
//! real pattern is learned within days; later values are clipped like
//! every other update.
//!
//! # Robust updates (Huber-clipped EWMA)
//!
//! `σ = max(1.2533 · scale, floor)` where `scale` is an EWMA of the
//! absolute residual (1.2533 = √(π/2) turns a mean absolute deviation
//! into a Gaussian σ) and `floor = max(min_scale_abs, min_scale_rel ·
//! |level|)` keeps flat or quantised series from dividing by ~0. Every
//! update uses the residual clipped to `±huber_k · σ`, so one spike moves
//! the level by at most `alpha · huber_k · σ` and the scale by at most
//! `alpha_scale · huber_k · σ`: it cannot poison the baseline.
//!
//! # Level shifts
//!
//! Clipping also slows the response to a genuine level shift. When
//! `shift_points` consecutive residuals lie beyond `shift_k · σ` on the
//! same side, the level is re-seated at the mean of those points
//! (deseasonalised) without the least and the greatest, so the baseline
//! re-adapts within `shift_points` steps instead of drifting for hours.
//! The run is kept as its sum and extremes, not as a buffer.
//!
//! # Score and flag
//!
//! `z = |x − expected| / σ` and the raw score is `z² / (z² + z_half²)`:
//! 0 on the expected value, 0.5 at `z_half` σ, → 1 far out. Once the
//! daily profile is ready σ comes from a 24-slot hour-of-day scale (noise
//! differs between busy and quiet hours). With `likelihood` on (default)
//! the exported score is the standard normal CDF of how far a short EWMA
//! of the raw score lies above its long-run mean, in long-run standard
//! deviations (after Numenta's anomaly likelihood), so a series that is
//! always spiky learns that spikes are normal. The flag is a rising edge:
//! `true` on the update where the score first reaches `threshold`; the
//! series is then "in anomaly" until the score stays below `clear_ratio ·
//! threshold` for `clear_points` updates, and no new edge fires within
//! `holdoff_secs` of the last, unless an episode stays 4× as far out (in
//! σ) as the last reported one for 3 updates (so a false alarm cannot
//! hide an outage for the hold-off). One incident is scored once: while in an
//! anomaly or within the hold-off, the exported `score` is capped at
//! `clear_ratio · threshold` (the uncapped value stays available as
//! `likelihood`), so a threshold on the score column reports each
//! incident on its first update, like the flag, instead of on every
//! update of a level shift.
//!
//! # NaN, gaps, late points
//!
//! Non-finite values and timestamps change nothing and yield `None`.
//! Timestamps going backwards or repeating the last one yield `None` and
//! are counted in [`Baseline::late_points`]. Gaps need no special case: seasonal slots
//! are found from `t`, so the profiles line up again after any gap, and a
//! level that moved during the gap is re-seated by the shift rule.
//!
//! # Memory
//!
//! Fixed at construction: the struct (with 24 hour-of-day scales in
//! bfloat16 written with dithered rounding, and the models' levels) plus
//! one byte per profile slot: an 8-bit code with a per-profile step,
//! written with dithered rounding (see [`Profile`]). How often a slot has
//! been visited is estimated from the profile's age and the points per
//! slot visit rather than counted per slot. The configuration is shared
//! ([`BaselineSettings`], which also holds the profiles' slot rates).
//! With the defaults (288 daily slots of 5 min, 56 weekly slots of 3 h)
//! [`Baseline::memory_bytes`] is 616 bytes; both profiles' codes, the
//! hour-of-day visit counts and the anomaly likelihood's running state
//! are one allocation (384 bytes, filling that size class), the rest a
//! 232-byte struct.

use std::ops::{Deref, DerefMut};
use std::sync::Arc;

use super::BaselineError;
use crate::analytics::bf16;
use crate::analytics::forecasts::DailyShape;

/// Gaussian σ over mean absolute deviation, √(π/2).
const MAD_TO_SIGMA: f64 = 1.253_314_137_315_500_3;
const DAY_SECS: f64 = 86_400.0;
const WEEK_SECS: f64 = 7.0 * DAY_SECS;
/// `t` modulo `period`, in `[0, period)`: exact for whole seconds (unlike
/// `x − ⌊x⌋` of `x = t / period`, which can put a point lying exactly on a
/// slot boundary into the slot before) and cheaper than `rem_euclid`. The
/// quotient is truncated by an integer conversion (one instruction, where
/// `floor` may be a library call) and the remainder corrected into range
/// (which also absorbs the off-by-one the multiplication by `1 / period`,
/// folded to a constant, may give instead of a division).
#[inline]
fn phase(t: f64, period: f64) -> f64 {
    let r = t - ((t * (1.0 / period)) as i64) as f64 * period;
    if r < 0.0 {
        r + period
    } else if r >= period {
        r - period
    } else {
        r
    }
}

/// `max(rate, 1 / (count + 1))`: an EWMA weight that starts as a plain
/// mean. The division is skipped once the mean's weight is below `rate`
/// (after the first `1 / rate` values), which is nearly always.
#[inline]
fn warm_rate(rate: f64, count: f64) -> f64 {
    if count * rate < 1.0 {
        rate.max(1.0 / (count + 1.0))
    } else {
        rate
    }
}

/// Where a time falls in the seasonal periods.
struct Clock {
    /// The daily profile's slot (0 without one).
    day_slot: usize,
    /// The weekly profile's slot (0 without one).
    week_slot: usize,
    /// Hour of the UTC day, 0–23.
    hour: usize,
}

/// Standard normal CDF by Abramowitz & Stegun 26.2.17 (absolute error
/// below 7.5e-8, checked against statrs in the tests): one `exp` and a
/// degree-5 polynomial, about a third of the cost of an exact `erfc`, and
/// the likelihood runs on every update of every series.
pub(crate) fn normal_cdf(x: f64) -> f64 {
    if x.is_nan() {
        return 0.5;
    }
    let a = x.abs();
    let t = 1.0 / (1.0 + 0.231_641_9 * a);
    let poly = t
        * (0.319_381_530
            + t * (-0.356_563_782
                + t * (1.781_477_937 + t * (-1.821_255_978 + t * 1.330_274_429))));
    // φ(a) = exp(−a²/2) / √(2π).
    let tail = (-0.5 * a * a).exp() * 0.398_942_280_401_432_7 * poly;
    if x >= 0.0 { 1.0 - tail } else { tail }
}

/// Tuning of a [`Baseline`]. `Default` gives the documented defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct BaselineConfig {
    /// Updates before any output is produced (default 12).
    pub warmup_points: u32,
    /// EWMA weight of the level (default 0.05).
    pub alpha: f64,
    /// EWMA weight of the scale (mean absolute residual) (default 0.02).
    pub alpha_scale: f64,
    /// EWMA weight of a seasonal slot on each visit (default 0.1).
    pub beta_season: f64,
    /// Residuals are clipped to ±`huber_k` σ before any update (default 3).
    pub huber_k: f64,
    /// Width of the band `expected ± band_z · σ` (default 3).
    pub band_z: f64,
    /// z at which the score is 0.5 (default 3).
    pub z_half: f64,
    /// Score at which an anomaly starts (default 0.95).
    pub threshold: f64,
    /// The anomaly ends after the score stays below `clear_ratio ·
    /// threshold` (default 0.7) ...
    pub clear_ratio: f64,
    /// ... for this many updates (default 3).
    pub clear_points: u32,
    /// No new rising edge within this many seconds of the last (default
    /// 21600, 6 h), unless an episode stays 4× as far out (in σ) as the
    /// last reported one for 3 updates.
    pub holdoff_secs: f64,
    /// Consecutive same-side residuals beyond `shift_k` σ that re-seat
    /// the level (default 12; 1 to 64).
    pub shift_points: u32,
    /// See `shift_points` (default 3).
    pub shift_k: f64,
    /// Absolute floor of σ (default 1e-9).
    pub min_scale_abs: f64,
    /// Floor of σ relative to |level| (default 0.001).
    pub min_scale_rel: f64,
    /// Score by the likelihood of the recent raw scores (default true).
    pub likelihood: bool,
    /// EWMA weight of the short-term raw score mean (default 0.2).
    pub alpha_short: f64,
    /// EWMA weight of the long-term raw score mean and variance (default
    /// 0.001).
    pub alpha_long: f64,
    /// Which seasonal profiles may be learned (default both).
    pub seasonality: Seasonality,
    /// Time-of-day slots of the daily profile (default 288, 5 min).
    pub daily_slots: u32,
    /// Slots of the weekly correction (default 56, 3 h).
    pub weekly_slots: u32,
    /// Periods of history before a profile may be used (default 1.5).
    pub min_cycles: f64,
}

/// Which seasonal profiles a [`Baseline`] learns.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Seasonality {
    None,
    Daily,
    DailyAndWeekly,
}

impl Default for BaselineConfig {
    fn default() -> Self {
        Self {
            warmup_points: 12,
            alpha: 0.05,
            alpha_scale: 0.02,
            beta_season: 0.1,
            huber_k: 3.0,
            band_z: 3.0,
            z_half: 3.0,
            threshold: 0.95,
            clear_ratio: 0.7,
            clear_points: 3,
            holdoff_secs: 21_600.0,
            shift_points: 12,
            shift_k: 3.0,
            min_scale_abs: 1e-9,
            min_scale_rel: 0.001,
            likelihood: true,
            alpha_short: 0.2,
            alpha_long: 0.001,
            seasonality: Seasonality::DailyAndWeekly,
            daily_slots: 288,
            weekly_slots: 56,
            min_cycles: 1.5,
        }
    }
}

fn check(
    name: &'static str,
    value: f64,
    lo: f64,
    hi: f64,
    range: &'static str,
) -> Result<(), BaselineError> {
    if value.is_finite() && value >= lo && value <= hi {
        Ok(())
    } else {
        Err(BaselineError::OutOfRange { name, value, range })
    }
}

impl BaselineConfig {
    /// Checks every field against its documented range.
    pub fn validate(&self) -> Result<(), BaselineError> {
        check("alpha", self.alpha, 1e-6, 1.0, "[1e-6, 1], e.g. 0.05")?;
        check(
            "alpha_scale",
            self.alpha_scale,
            1e-6,
            1.0,
            "[1e-6, 1], e.g. 0.02",
        )?;
        check(
            "beta_season",
            self.beta_season,
            1e-6,
            1.0,
            "[1e-6, 1], e.g. 0.1",
        )?;
        check("huber_k", self.huber_k, 0.5, 100.0, "[0.5, 100], e.g. 3")?;
        check("band_z", self.band_z, 0.1, 100.0, "[0.1, 100], e.g. 3")?;
        check("z_half", self.z_half, 0.1, 100.0, "[0.1, 100], e.g. 3")?;
        check("threshold", self.threshold, 0.0, 1.0, "[0, 1], e.g. 0.95")?;
        check(
            "clear_ratio",
            self.clear_ratio,
            0.0,
            1.0,
            "[0, 1], e.g. 0.7",
        )?;
        check(
            "holdoff_secs",
            self.holdoff_secs,
            0.0,
            1e9,
            "[0, 1e9], e.g. 21600",
        )?;
        check(
            "shift_points",
            self.shift_points as f64,
            1.0,
            64.0,
            "[1, 64], e.g. 12",
        )?;
        check("shift_k", self.shift_k, 0.5, 100.0, "[0.5, 100], e.g. 3")?;
        check(
            "min_scale_abs",
            self.min_scale_abs,
            0.0,
            f64::MAX,
            "[0, ∞), e.g. 1e-9",
        )?;
        check(
            "min_scale_rel",
            self.min_scale_rel,
            0.0,
            1.0,
            "[0, 1], e.g. 0.001",
        )?;
        check(
            "daily_slots",
            self.daily_slots as f64,
            1.0,
            1440.0,
            "[1, 1440], e.g. 288",
        )?;
        check(
            "weekly_slots",
            self.weekly_slots as f64,
            1.0,
            2016.0,
            "[1, 2016], e.g. 168",
        )?;
        check(
            "alpha_short",
            self.alpha_short,
            1e-4,
            1.0,
            "[1e-4, 1], e.g. 0.2",
        )?;
        check(
            "alpha_long",
            self.alpha_long,
            1e-6,
            1.0,
            "[1e-6, 1], e.g. 0.001",
        )?;
        check(
            "min_cycles",
            self.min_cycles,
            0.0,
            100.0,
            "[0, 100], e.g. 1.5",
        )?;
        Ok(())
    }

    /// The same configuration with every field forced into its range.
    pub fn clamped(&self) -> Self {
        let c = |v: f64, lo: f64, hi: f64, d: f64| if v.is_finite() { v.clamp(lo, hi) } else { d };
        let d = Self::default();
        Self {
            warmup_points: self.warmup_points,
            alpha: c(self.alpha, 1e-6, 1.0, d.alpha),
            alpha_scale: c(self.alpha_scale, 1e-6, 1.0, d.alpha_scale),
            beta_season: c(self.beta_season, 1e-6, 1.0, d.beta_season),
            huber_k: c(self.huber_k, 0.5, 100.0, d.huber_k),
            band_z: c(self.band_z, 0.1, 100.0, d.band_z),
            z_half: c(self.z_half, 0.1, 100.0, d.z_half),
            threshold: c(self.threshold, 0.0, 1.0, d.threshold),
            clear_ratio: c(self.clear_ratio, 0.0, 1.0, d.clear_ratio),
            clear_points: self.clear_points,
            holdoff_secs: c(self.holdoff_secs, 0.0, 1e9, d.holdoff_secs),
            shift_points: self.shift_points.clamp(1, 64),
            shift_k: c(self.shift_k, 0.5, 100.0, d.shift_k),
            min_scale_abs: c(self.min_scale_abs, 0.0, f64::MAX, d.min_scale_abs),
            min_scale_rel: c(self.min_scale_rel, 0.0, 1.0, d.min_scale_rel),
            likelihood: self.likelihood,
            alpha_short: c(self.alpha_short, 1e-4, 1.0, d.alpha_short),
            alpha_long: c(self.alpha_long, 1e-6, 1.0, d.alpha_long),
            seasonality: self.seasonality,
            daily_slots: self.daily_slots.clamp(1, 1440),
            weekly_slots: self.weekly_slots.clamp(1, 2016),
            min_cycles: c(self.min_cycles, 0.0, 100.0, d.min_cycles),
        }
    }
}

/// What a [`Baseline`] says about one value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BaselineOutput {
    /// The value the baseline expected at this time (before seeing it).
    pub expected: f64,
    /// `expected − band_z · σ`.
    pub lower: f64,
    /// `expected + band_z · σ`.
    pub upper: f64,
    /// Anomaly score in `[0, 1]` (the likelihood if enabled, else `raw`).
    pub score: f64,
    /// The likelihood before the once-per-incident cap (equals `score`
    /// outside incidents and hold-offs; `raw_score` if likelihood is off).
    pub likelihood: f64,
    /// Instantaneous score `z² / (z² + z_half²)` of this value alone.
    pub raw_score: f64,
    /// Rising edge: true only on the update where an anomaly starts.
    pub anomaly: bool,
    /// Whether the series is currently inside an anomaly (level, for
    /// display; export `anomaly`, not this, as the alerting signal).
    pub in_anomaly: bool,
}

/// A seasonal profile: one robust EWMA of its input per slot, stored as
/// an 8-bit code; the seasonal term is a slot's value minus the mean over
/// the visited slots, so it is centred and does not depend on how the
/// level moved while it was being learned.
///
/// A slot's value is `origin + step · code`. Codes are written with
/// stochastic rounding (dithered by a hash of the time), so an EWMA step
/// smaller than one code still moves the slot by the right amount on
/// average. The step adapts: it doubles when a value would not fit in
/// ±127 codes, and once per period it halves while the codes would still
/// fit (so the profile keeps 64–127 codes of resolution across its
/// range). The origin follows the mean of the visited slots, so a level
/// that drifts over weeks does not use the range up.
///
/// The codes, one per slot (`i8` as `u8`; [`UNSEEN`] for a slot never
/// visited, so reading a term takes one load), live in the baseline's
/// one allocation of cells; [`Slots`] pairs a profile with its share.
#[derive(Debug, Clone, serde::Serialize, serde::Deserialize)]
#[serde(from = "ProfileWire", into = "ProfileWire")]
struct Profile {
    /// Number of visited slots.
    seen: u16,
    /// The slot written last: the step is refined when slot 0 is entered
    /// (once per period).
    last_slot: u16,
    /// Sum of the visited slots' codes.
    sum: i32,
    /// `sum · (1 / seen)` in `f32` (0 before the first visit), kept in
    /// step with both: read by every term, so it is not recomputed there.
    mean: f32,
    /// Value units per code (0 until the first value away from origin).
    step: f32,
    /// EWMA of this model's absolute one-step error.
    err: f32,
    origin: f64,
    /// This model's own deseasonalised level: each candidate model keeps
    /// its own state, so its tracked error is what it would have scored.
    level: f64,
    /// Points written into `last_slot` since it was entered (saturating).
    streak: u8,
    /// Points the slot before it took in its visit: about the points a
    /// slot gets per period (see [`Profile::visits`]).
    per_visit: u8,
    ready: bool,
}

/// [`Profile`] as the durable state writes it: the fields of its earlier
/// layout, with the reciprocals it no longer keeps (`1 / seen` and `1 /
/// step`, written for the format, recomputed when read).
#[derive(serde::Serialize, serde::Deserialize)]
struct ProfileWire {
    seen: u16,
    last_slot: u16,
    sum: i32,
    mean: f32,
    inv_seen: f32,
    step: f32,
    inv_step: f32,
    err: f32,
    origin: f64,
    level: f64,
    streak: u8,
    per_visit: u8,
    ready: bool,
}

impl From<Profile> for ProfileWire {
    fn from(p: Profile) -> Self {
        Self {
            inv_seen: p.inv_seen(),
            inv_step: p.inv_step(),
            seen: p.seen,
            last_slot: p.last_slot,
            sum: p.sum,
            mean: p.mean,
            step: p.step,
            err: p.err,
            origin: p.origin,
            level: p.level,
            streak: p.streak,
            per_visit: p.per_visit,
            ready: p.ready,
        }
    }
}

impl From<ProfileWire> for Profile {
    fn from(w: ProfileWire) -> Self {
        Self {
            seen: w.seen,
            last_slot: w.last_slot,
            sum: w.sum,
            mean: w.mean,
            step: w.step,
            err: w.err,
            origin: w.origin,
            level: w.level,
            streak: w.streak,
            per_visit: w.per_visit,
            ready: w.ready,
        }
    }
}

/// Visits of a slot after which it is established (clipped updates at
/// `beta_season`); the 2-bit visit count saturates here.
const ESTABLISHED: u8 = 3;
/// A code's range: ±`CODE_MAX`.
const CODE_MAX: f64 = 127.0;
/// The code of a slot never visited (outside the code range).
const UNSEEN: u8 = 0x80;

/// `⌊y⌋` for `|y| ≤ CODE_MAX`, by truncating a positive number (`floor`
/// may be a library call).
#[inline]
fn floor_code(y: f64) -> i32 {
    (y + 256.0) as i32 - 256
}

/// A uniform dither in `[0, 1)` from a time and a slot (a multiplicative
/// hash; deterministic, no state).
#[inline]
fn dither(t: f64, s: usize) -> f64 {
    let h = (t.to_bits() ^ (s as u64).rotate_left(32)).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    (h >> 40) as f64 * (1.0 / (1u64 << 24) as f64)
}

/// The slot of a time whose phase in a profile's period is `phase`
/// (seconds), at `slots_per_sec` (the settings' figure for the period),
/// for a profile of `slots` slots.
#[inline]
fn slot_at(phase: f64, slots_per_sec: f64, slots: u32) -> usize {
    ((phase * slots_per_sec) as u32).min(slots.saturating_sub(1)) as usize
}

impl Profile {
    /// Whether a deserialised profile is consistent with `slots` slots
    /// (so every index it keeps is in range).
    fn fits(&self, slots: u32) -> bool {
        u32::from(self.seen) <= slots && u32::from(self.last_slot) < slots.max(1)
    }

    /// A profile with no slot visited (its cells all [`UNSEEN`]).
    fn new() -> Self {
        Self {
            seen: 0,
            sum: 0,
            mean: 0.0,
            step: 0.0,
            last_slot: 0,
            err: f32::NAN,
            origin: 0.0,
            level: f64::NAN,
            streak: 0,
            per_visit: 1,
            ready: false,
        }
    }

    /// `1 / seen` in `f32` (0 before the first visit).
    #[inline]
    fn inv_seen(&self) -> f32 {
        if self.seen == 0 {
            0.0
        } else {
            1.0 / f32::from(self.seen)
        }
    }

    /// `1 / step` in `f32` (0 while `step` is).
    #[inline]
    fn inv_step(&self) -> f32 {
        if self.step == 0.0 {
            0.0
        } else {
            1.0 / self.step
        }
    }

    /// Brings `mean` up to date with `sum` and `seen`.
    #[inline]
    fn remean(&mut self) {
        self.mean = self.sum as f32 * self.inv_seen();
    }
}

/// A profile with its cells: `Slots<&Profile, &[u8]>` to read,
/// `Slots<&mut Profile, &mut [u8]>` to write. Dereferences to the
/// profile.
struct Slots<P, C> {
    p: P,
    cells: C,
}

impl<P: Deref<Target = Profile>, C> Deref for Slots<P, C> {
    type Target = Profile;

    #[inline]
    fn deref(&self) -> &Profile {
        &self.p
    }
}

impl<P: DerefMut<Target = Profile>, C> DerefMut for Slots<P, C> {
    #[inline]
    fn deref_mut(&mut self) -> &mut Profile {
        &mut self.p
    }
}

impl<P: Deref<Target = Profile>, C: Deref<Target = [u8]>> Slots<P, C> {
    fn slots(&self) -> usize {
        self.cells.len()
    }

    #[inline]
    fn code(&self, s: usize) -> i32 {
        i32::from(self.cells[s] as i8)
    }

    /// Whether slot `s` has been visited (one load: its code).
    #[inline]
    fn is_seen(&self, s: usize) -> bool {
        self.cells[s] != UNSEEN
    }

    /// Values slot `s` has taken before, up to [`ESTABLISHED`], for a
    /// point `periods` (`age / period`) after the profile's first:
    /// estimated rather than counted per slot (which would cost more than
    /// the code). A regularly sampled slot was visited in each of the
    /// `⌊periods⌋` periods before this one, taking `per_visit` points each time, and
    /// has taken `streak` points in this visit so far. Exact for a series
    /// without gaps; a slot first reached after a gap counts as
    /// established sooner.
    #[inline]
    fn visits(&self, s: usize, periods: f64) -> u8 {
        if !self.is_seen(s) {
            return 0;
        }
        // (Truncation is ⌊⌋ here: `periods` ≥ 0.)
        let periods = periods as u32 as usize;
        let this_visit = if s == usize::from(self.last_slot) {
            usize::from(self.streak)
        } else {
            0
        };
        let before = periods.min(usize::from(ESTABLISHED)) * usize::from(self.per_visit.max(1));
        (before + this_visit).min(usize::from(ESTABLISHED)) as u8
    }

    /// Slot `s`'s value (absolute).
    #[inline]
    fn value(&self, s: usize) -> f64 {
        self.origin + f64::from(self.step) * f64::from(self.code(s))
    }

    /// The centred seasonal term at slot `s`.
    #[inline]
    fn term(&self, s: usize) -> f64 {
        let code = self.cells[s];
        if code == UNSEEN {
            0.0
        } else {
            f64::from(self.step) * (f64::from(code as i8) - f64::from(self.mean))
        }
    }

    /// The visited slots.
    fn visited(&self) -> impl Iterator<Item = usize> + '_ {
        (0..self.slots()).filter(|&s| self.is_seen(s))
    }
}

impl<P: DerefMut<Target = Profile>, C: DerefMut<Target = [u8]>> Slots<P, C> {
    /// Sets slot `s` to `value` (absolute), rounding stochastically with
    /// `u` in `[0, 1)`.
    #[inline]
    fn set(&mut self, s: usize, value: f64, u: f64) {
        let old = if self.is_seen(s) {
            self.code(s)
        } else {
            self.seen += 1;
            0
        };
        if s == usize::from(self.last_slot) {
            self.streak = self.streak.saturating_add(1);
        } else {
            self.per_visit = self.streak.max(1);
            self.streak = 1;
        }
        let y = (value - self.origin) * f64::from(self.inv_step()) + u;
        if y.abs() <= CODE_MAX && self.step > 0.0 {
            let code = floor_code(y);
            self.cells[s] = code as i8 as u8;
            self.sum += code - old;
        } else if self.step == 0.0 && value == self.origin {
            // A series that has not moved yet (a flat gauge, every
            // point): code 0 at the origin, as the rescaling path would
            // write, without it.
            self.cells[s] = 0;
            self.sum -= old;
        } else {
            self.set_rescaling(s, old, value, u);
        }
        self.remean();
        if s == 0 && self.last_slot != 0 {
            self.refine();
        }
        self.last_slot = s as u16;
    }

    /// [`Profile::set`] for a value that does not fit the current step
    /// and origin (or the first value away from the origin): re-centres,
    /// then coarsens the step until it fits.
    #[cold]
    fn set_rescaling(&mut self, s: usize, old: i32, value: f64, u: f64) {
        // While the scale changes, `s` holds a code of 0 that the sum
        // counts (every rescale recomputes the sum from the codes).
        self.cells[s] = 0;
        self.sum -= old;
        let mut recentred = false;
        let code = loop {
            if self.step == 0.0 {
                // The first value away from the origin sets the scale.
                let step = ((value - self.origin).abs() / 64.0) as f32;
                if step > 0.0 && step.is_finite() {
                    self.step = step;
                } else {
                    break 0;
                }
            }
            let y = (value - self.origin) * f64::from(self.inv_step()) + u;
            if y.abs() <= CODE_MAX {
                break floor_code(y);
            } else if !y.is_finite() {
                break 0;
            }
            // Re-centring first (once), then a coarser step.
            if recentred || !self.recentre() {
                self.rescale_coarser();
            }
            recentred = true;
        };
        let placeholder = self.code(s);
        self.cells[s] = code as i8 as u8;
        self.sum += code - placeholder;
    }

    /// Moves the origin to the mean of the visited slots; false if it is
    /// there already.
    fn recentre(&mut self) -> bool {
        if self.seen == 0 {
            return false;
        }
        let mean = (f64::from(self.sum) / f64::from(self.seen)).round() as i32;
        if mean == 0 {
            return false;
        }
        self.origin += f64::from(self.step) * f64::from(mean);
        self.map_codes(|c| c - mean);
        true
    }

    /// Doubles the step (halving every code).
    fn rescale_coarser(&mut self) {
        self.step *= 2.0;
        // Round half away from zero keeps the halving symmetric.
        self.map_codes(|c| if c >= 0 { (c + 1) / 2 } else { (c - 1) / 2 });
    }

    /// Halves the step while every code would still fit with room to
    /// spare (once per period, when slot 0 is written).
    fn refine(&mut self) {
        let _ = self.recentre();
        let mut widest = self
            .visited()
            .map(|s| self.code(s).abs())
            .max()
            .unwrap_or(0);
        let mut doublings = 0;
        while widest > 0 && widest * 2 <= 100 && doublings < 8 {
            widest *= 2;
            doublings += 1;
        }
        if doublings == 0 {
            return;
        }
        let k = 1 << doublings;
        self.step /= k as f32;
        self.map_codes(|c| c * k);
    }

    /// Rewrites every visited slot's code through `f` (clamped to the
    /// code range) and recomputes the sum.
    fn map_codes(&mut self, f: impl Fn(i32) -> i32) {
        let max = CODE_MAX as i32;
        for s in 0..self.slots() {
            if self.is_seen(s) {
                self.cells[s] = f(self.code(s)).clamp(-max, max) as i8 as u8;
            }
        }
        self.resum();
    }

    fn resum(&mut self) {
        self.sum = self.visited().map(|s| self.code(s)).sum();
        self.remean();
    }
}

/// A [`BaselineConfig`], forced into range, shared by every [`Baseline`]
/// made from it (one pointer per series instead of a copy).
/// `From<BaselineConfig>` clamps.
#[derive(Debug, Clone)]
pub struct BaselineSettings(Arc<Settings>);

/// A clamped configuration and the constants derived from it.
#[derive(Debug)]
struct Settings {
    cfg: BaselineConfig,
    /// Daily and weekly profile slots per second (kept here, not in every
    /// series' profiles).
    daily_slots_per_sec: f64,
    weekly_slots_per_sec: f64,
}

impl From<BaselineConfig> for BaselineSettings {
    fn from(config: BaselineConfig) -> Self {
        let cfg = config.clamped();
        Self(Arc::new(Settings {
            daily_slots_per_sec: f64::from(cfg.daily_slots) / DAY_SECS,
            weekly_slots_per_sec: f64::from(cfg.weekly_slots) / WEEK_SECS,
            cfg,
        }))
    }
}

impl Default for BaselineSettings {
    fn default() -> Self {
        BaselineConfig::default().into()
    }
}

impl BaselineSettings {
    /// The configuration (after clamping).
    pub fn config(&self) -> &BaselineConfig {
        &self.0.cfg
    }
}

impl std::ops::Deref for BaselineSettings {
    type Target = BaselineConfig;

    fn deref(&self) -> &BaselineConfig {
        &self.0.cfg
    }
}

/// A streaming anomaly baseline for one series; see the module docs.
///
/// Serialisable for durable state, without its settings: a deserialised
/// baseline is attached to the current ones with [`Baseline::resume`].
/// Written as [`BaselineWire`], the format of its earlier layout (the
/// hour-of-day visits apart from the profiles' cells), so saved
/// baselines resume across the change.
#[derive(Debug, Clone)]
pub struct Baseline {
    cfg: BaselineSettings,
    /// Points accepted (saturating).
    n: u32,
    /// Points dropped as late (saturating).
    late: u32,
    first_t: f64,
    last_t: f64,
    level: f64,
    /// EWMA of the absolute residual (an error scale: `f32` is plenty).
    scale: f32,
    err_flat: f32,
    /// The daily profile of the raw value.
    daily: Option<Profile>,
    /// The weekly correction: a profile of the value less the daily term.
    weekly: Option<Profile>,
    /// Both profiles' codes, the hour-of-day visits and the likelihood's
    /// state in one allocation: the daily profile's `daily_slots`, then
    /// the weekly one's `weekly_slots` (none for a profile the
    /// seasonality leaves out), then [`HOURS`] visit counts, one per hour
    /// of the day, saturating at 255, then the [`Likelihood`] (the visits
    /// and the likelihood fill the space the allocation's size class
    /// leaves after the codes with the default slots, not the struct).
    cells: Box<[u8]>,
    /// Where the weekly profile's cells start (the daily profile's slot
    /// count, or 0 without one): kept in the struct's padding so reading
    /// a profile does not go through the settings. Set by `new` and
    /// `resume`.
    weekly_at: u16,
    /// The series' first value: the run buffer holds values less this.
    origin: f64,
    /// The current run of same-side outliers (deseasonalised, less
    /// `origin`): its sum, least and greatest value, length and side.
    run_sum: f64,
    run_min: f32,
    run_max: f32,
    run_len: u8,
    run_sign: i8,
    in_anomaly: bool,
    /// Mean absolute residual per hour of the day, as bfloat16 written
    /// with dithered rounding (unbiased; 0.4 % apart on average, far
    /// below a scale estimate's own noise).
    hour_scale: [u16; HOURS],
    last_edge_t: f64,
}

/// Hours in a day: the hour-of-day scales and visit counts.
const HOURS: usize = 24;

/// The mark in [`Likelihood::calm`] of an anomaly episode that began
/// within the hold-off: tracked for its hysteresis, never reported.
const QUIET: u32 = 1 << 31;
/// The bits of [`Likelihood::calm`] that hold the peak `z` (`|residual|
/// / σ`) of the last reported anomaly: an `f32`'s upper half without its
/// sign (a bfloat16 truncated), 0 when unknown (a state written before
/// they were kept).
const PEAK_Z: u32 = 0x7FFF_0000;
/// The bits of [`Likelihood::calm`] that count the updates the score has
/// stayed below the clear level (saturating).
const CALM_COUNT: u32 = 0x0FFF;
/// The bits of [`Likelihood::calm`] that count, in an episode held quiet,
/// the consecutive updates at least [`HOLDOFF_BREAKTHROUGH`] times as far
/// out as the last reported anomaly (saturating).
const SEVERE_RUN: u32 = 0xF000;
/// One update in [`SEVERE_RUN`].
const SEVERE_ONE: u32 = 0x1000;
/// How much farther out (in σ) than the anomaly that started the
/// hold-off an incident must be, for [`BREAKTHROUGH_POINTS`] updates in a
/// row, to be reported within it: a false alarm must not hide a real
/// outage for the hold-off's 6 hours, while the after-shocks of one
/// incident and the lone bursts of a bursty series stay quiet.
const HOLDOFF_BREAKTHROUGH: f64 = 4.0;
/// See [`HOLDOFF_BREAKTHROUGH`].
const BREAKTHROUGH_POINTS: u32 = 3;

/// The anomaly likelihood's running state: a short EWMA of the raw score,
/// the raw score's long-run mean and variance, and `calm`: the updates
/// the score has stayed below the clear level in an anomaly
/// ([`CALM_COUNT`]), the last reported anomaly's peak `z` ([`PEAK_Z`])
/// and whether the current episode is held quiet ([`QUIET`]). Kept as the
/// last [`Likelihood::BYTES`] of a baseline's cells, read at the start of
/// an update and written back at its end.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Likelihood {
    short: f32,
    mean: f32,
    var: f32,
    calm: u32,
}

impl Likelihood {
    const BYTES: usize = 16;
    const NONE: Self = Self {
        short: 0.0,
        mean: 0.0,
        var: 0.0,
        calm: 0,
    };

    /// Read from the last [`Self::BYTES`] of `cells`.
    #[inline]
    fn read(cells: &[u8]) -> Self {
        let mut words = [0u32; 4];
        let at = cells.len() - Self::BYTES;
        for (i, w) in words.iter_mut().enumerate() {
            let mut b = [0u8; 4];
            b.copy_from_slice(&cells[at + 4 * i..at + 4 * i + 4]);
            *w = u32::from_le_bytes(b);
        }
        Self {
            short: f32::from_bits(words[0]),
            mean: f32::from_bits(words[1]),
            var: f32::from_bits(words[2]),
            calm: words[3],
        }
    }

    /// The last reported anomaly's peak `z` (0 when unknown).
    #[inline]
    fn peak_z(self) -> f64 {
        f64::from(f32::from_bits(self.calm & PEAK_Z))
    }

    /// `calm` with the peak `z` set to `z` (truncated to bfloat16).
    #[inline]
    fn with_peak_z(calm: u32, z: f64) -> u32 {
        let bits = if z.is_nan() {
            0
        } else {
            (z as f32).to_bits() & PEAK_Z
        };
        (calm & !PEAK_Z) | bits
    }

    /// Counts a point `z` σ out in an episode held quiet: whether it is
    /// far enough beyond the last reported anomaly, and has been for
    /// [`BREAKTHROUGH_POINTS`] updates in a row, to be reported itself.
    #[inline]
    fn breaks_through(&mut self, z: f64) -> bool {
        // (Not on a series without noise, σ = 0: every departure is
        // infinitely far out there, and none is farther than another.)
        let peak = self.peak_z();
        let severe =
            peak > 0.0 && peak.is_finite() && z.is_finite() && z >= HOLDOFF_BREAKTHROUGH * peak;
        if !severe {
            self.calm &= !SEVERE_RUN;
            return false;
        }
        if self.calm & SEVERE_RUN != SEVERE_RUN {
            self.calm += SEVERE_ONE;
        }
        (self.calm & SEVERE_RUN) / SEVERE_ONE >= BREAKTHROUGH_POINTS
    }

    /// Written into the last [`Self::BYTES`] of `cells`.
    #[inline]
    fn write(self, cells: &mut [u8]) {
        let at = cells.len() - Self::BYTES;
        let words = [
            self.short.to_bits(),
            self.mean.to_bits(),
            self.var.to_bits(),
            self.calm,
        ];
        for (i, w) in words.iter().enumerate() {
            cells[at + 4 * i..at + 4 * i + 4].copy_from_slice(&w.to_le_bytes());
        }
    }
}

/// [`Baseline`] as the durable state writes it: the fields of its earlier
/// layout, in order, with the profiles' codes (`cells`) and the
/// hour-of-day visits apart. Its settings are not written.
#[derive(serde::Serialize, serde::Deserialize)]
struct BaselineWire<C, V> {
    n: u32,
    late: u32,
    first_t: f64,
    last_t: f64,
    level: f64,
    scale: f32,
    err_flat: f32,
    daily: Option<Profile>,
    weekly: Option<Profile>,
    cells: C,
    origin: f64,
    run_sum: f64,
    run_min: f32,
    run_max: f32,
    run_len: u8,
    run_sign: i8,
    in_anomaly: bool,
    hour_scale: [u16; HOURS],
    hour_visits: V,
    raw_short: f32,
    raw_mean: f32,
    raw_var: f32,
    calm: u32,
    last_edge_t: f64,
}

impl serde::Serialize for Baseline {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let (codes, visits) = self.cells.split_at(self.hours_at());
        let visits = &visits[..HOURS];
        let lk = Likelihood::read(&self.cells);
        BaselineWire {
            n: self.n,
            late: self.late,
            first_t: self.first_t,
            last_t: self.last_t,
            level: self.level,
            scale: self.scale,
            err_flat: self.err_flat,
            daily: self.daily.clone(),
            weekly: self.weekly.clone(),
            cells: codes,
            origin: self.origin,
            run_sum: self.run_sum,
            run_min: self.run_min,
            run_max: self.run_max,
            run_len: self.run_len,
            run_sign: self.run_sign,
            in_anomaly: self.in_anomaly,
            hour_scale: self.hour_scale,
            hour_visits: <&[u8; HOURS]>::try_from(visits).map_err(serde::ser::Error::custom)?,
            raw_short: lk.short,
            raw_mean: lk.mean,
            raw_var: lk.var,
            calm: lk.calm,
            last_edge_t: self.last_edge_t,
        }
        .serialize(serializer)
    }
}

impl<'de> serde::Deserialize<'de> for Baseline {
    /// Attached to the default settings until [`Baseline::resume`]
    /// attaches it to the current ones.
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let w = BaselineWire::<Vec<u8>, [u8; HOURS]>::deserialize(deserializer)?;
        let mut cells = w.cells;
        cells.reserve_exact(HOURS + Likelihood::BYTES);
        cells.extend_from_slice(&w.hour_visits);
        cells.resize(cells.len() + Likelihood::BYTES, 0);
        Likelihood {
            short: w.raw_short,
            mean: w.raw_mean,
            var: w.raw_var,
            calm: w.calm,
        }
        .write(&mut cells);
        Ok(Self {
            cfg: BaselineSettings::default(),
            n: w.n,
            late: w.late,
            first_t: w.first_t,
            last_t: w.last_t,
            level: w.level,
            scale: w.scale,
            err_flat: w.err_flat,
            daily: w.daily,
            weekly: w.weekly,
            cells: cells.into_boxed_slice(),
            weekly_at: 0,
            origin: w.origin,
            run_sum: w.run_sum,
            run_min: w.run_min,
            run_max: w.run_max,
            run_len: w.run_len,
            run_sign: w.run_sign,
            in_anomaly: w.in_anomaly,
            hour_scale: w.hour_scale,
            last_edge_t: w.last_edge_t,
        })
    }
}

/// Where a baseline's weekly cells start: after the daily profile's
/// (configuration caps `daily_slots` at 1,440).
fn weekly_offset(daily: &Option<Profile>, cfg: &BaselineSettings) -> u16 {
    daily.as_ref().map_or(0, |_| cfg.daily_slots as u16)
}

/// Where the hour-of-day scales' dither comes from (apart from the
/// profiles' slots).
const HOUR_DITHER: usize = 1 << 20;

impl Default for Baseline {
    fn default() -> Self {
        Self::new(BaselineConfig::default())
    }
}

impl Baseline {
    /// A baseline with `config` forced into range (see
    /// [`BaselineConfig::clamped`]).
    pub fn new(config: impl Into<BaselineSettings>) -> Self {
        let cfg: BaselineSettings = config.into();
        let daily = (cfg.seasonality != Seasonality::None).then(Profile::new);
        let weekly = (cfg.seasonality == Seasonality::DailyAndWeekly).then(Profile::new);
        let slots = daily.as_ref().map_or(0, |_| cfg.daily_slots)
            + weekly.as_ref().map_or(0, |_| cfg.weekly_slots);
        let mut cells = vec![UNSEEN; slots as usize + HOURS + Likelihood::BYTES];
        cells[slots as usize..].fill(0);
        Likelihood::NONE.write(&mut cells);
        Self {
            cells: cells.into_boxed_slice(),
            weekly_at: weekly_offset(&daily, &cfg),
            cfg,
            n: 0,
            first_t: f64::NAN,
            last_t: f64::NEG_INFINITY,
            level: 0.0,
            scale: 0.0,
            err_flat: 0.0,
            daily,
            weekly,
            origin: 0.0,
            run_sum: 0.0,
            run_min: f32::INFINITY,
            run_max: f32::NEG_INFINITY,
            run_len: 0,
            run_sign: 0,
            in_anomaly: false,
            hour_scale: [0; HOURS],
            last_edge_t: f64::NEG_INFINITY,
            late: 0,
        }
    }

    /// Like [`Baseline::new`] but rejects out-of-range configuration.
    /// A deserialised baseline attached to `settings`, or `None` when its
    /// shape does not fit them (seasonality or slot counts changed, or
    /// the state is inconsistent): it must then start afresh.
    pub fn resume(mut self, settings: BaselineSettings) -> Option<Self> {
        let profile_fits = |profile: &Option<Profile>, wanted: bool, slots: u32| match profile {
            None => !wanted,
            Some(p) => wanted && p.fits(slots),
        };
        let fits = profile_fits(
            &self.daily,
            settings.seasonality != Seasonality::None,
            settings.daily_slots,
        ) && profile_fits(
            &self.weekly,
            settings.seasonality == Seasonality::DailyAndWeekly,
            settings.weekly_slots,
        ) && u32::from(self.run_len) < settings.shift_points.max(1)
            && self.cells.len()
                == self
                    .daily
                    .as_ref()
                    .map_or(0, |_| settings.daily_slots as usize)
                    + self
                        .weekly
                        .as_ref()
                        .map_or(0, |_| settings.weekly_slots as usize)
                    + HOURS
                    + Likelihood::BYTES;
        if !fits {
            return None;
        }
        self.weekly_at = weekly_offset(&self.daily, &settings);
        self.cfg = settings;
        Some(self)
    }

    pub fn try_new(config: BaselineConfig) -> Result<Self, BaselineError> {
        config.validate()?;
        Ok(Self::new(config))
    }

    /// The configuration in use (after clamping).
    pub fn config(&self) -> &BaselineConfig {
        self.cfg.config()
    }

    /// Points accepted so far.
    pub fn points(&self) -> u64 {
        u64::from(self.n)
    }

    /// Whether the series is in an anomaly, as of the last update (one
    /// that started with a rising edge, not one held quiet within the
    /// hold-off).
    pub fn in_anomaly(&self) -> bool {
        self.in_anomaly && Likelihood::read(&self.cells).calm & QUIET == 0
    }

    /// Whether an anomaly started on the last update (its rising edge,
    /// [`BaselineOutput::anomaly`]).
    pub fn anomaly_started(&self) -> bool {
        self.last_t.is_finite() && self.last_edge_t == self.last_t
    }

    /// Points dropped because their timestamp went backwards.
    pub fn late_points(&self) -> u64 {
        u64::from(self.late)
    }

    /// Heap + inline bytes held by this baseline; constant after `new`.
    pub fn memory_bytes(&self) -> usize {
        size_of::<Self>() + self.cells.len()
    }

    /// Where the hour-of-day visits start: after the profiles' cells.
    #[inline]
    fn hours_at(&self) -> usize {
        self.cells.len() - HOURS - Likelihood::BYTES
    }

    /// Where the weekly profile's cells start: after the daily ones.
    #[inline]
    fn weekly_cells_at(&self) -> usize {
        usize::from(self.weekly_at)
    }

    /// The daily profile with its cells.
    #[inline]
    fn daily(&self) -> Option<Slots<&Profile, &[u8]>> {
        let p = self.daily.as_ref()?;
        Some(Slots {
            p,
            cells: &self.cells[..self.weekly_cells_at()],
        })
    }

    /// The weekly profile with its cells.
    #[inline]
    fn weekly(&self) -> Option<Slots<&Profile, &[u8]>> {
        let p = self.weekly.as_ref()?;
        Some(Slots {
            p,
            cells: &self.cells[self.weekly_cells_at()..self.hours_at()],
        })
    }

    /// Where `t` falls in the day and the week (computed once per update).
    #[inline]
    fn clock(&self, t: f64) -> Clock {
        let day = phase(t, DAY_SECS);
        Clock {
            day_slot: slot_at(day, self.cfg.0.daily_slots_per_sec, self.cfg.daily_slots),
            week_slot: slot_at(
                phase(t, WEEK_SECS),
                self.cfg.0.weekly_slots_per_sec,
                self.cfg.weekly_slots,
            ),
            hour: ((day * (1.0 / 3600.0)) as u32 as usize).min(23),
        }
    }

    /// σ at `c`: from the hour-of-day scale once the daily profile is
    /// ready and that hour has been seen enough (noise often differs
    /// between busy and quiet hours), else from the global scale.
    fn sigma(&self, c: &Clock) -> f64 {
        let floor = self
            .cfg
            .min_scale_abs
            .max(self.cfg.min_scale_rel * self.level.abs());
        let h = c.hour;
        let daily_ready = self.daily.as_ref().is_some_and(|p| p.ready);
        let scale = if daily_ready && self.cells[self.hours_at() + h] >= 12 {
            f64::from(bf16::to_f32(self.hour_scale[h]))
        } else {
            f64::from(self.scale)
        };
        (scale * MAD_TO_SIGMA).max(floor)
    }

    /// The chosen model's expected value at `t` and its level: the flat
    /// level, or a profile's level plus its term, whichever has had the
    /// lowest tracked error (a profile must beat flat by 5 %).
    fn expected_and_level(&self, c: &Clock, daily: f64) -> (f64, f64) {
        let mut best = (f64::from(self.err_flat), self.level, self.level);
        // A profile must beat flat by 5 %.
        let mut bar = 0.95;
        if let Some(p) = &self.daily
            && p.ready
            && f64::from(p.err) < bar * best.0
        {
            best = (f64::from(p.err), p.level + daily, p.level);
            // The weekly model is the daily one plus the weekly
            // correction: it refines the daily model and is preferred to
            // it unless its error is 5 % higher. (Judged by recent error
            // alone, the daily model often wins on weekdays and is still
            // the one chosen when the weekend starts.)
            bar = 1.05;
        }
        if let Some(p) = self.weekly()
            && p.ready
            && f64::from(p.err) < bar * best.0
        {
            best = (
                f64::from(p.err),
                p.level + daily + p.term(c.week_slot),
                p.level,
            );
        }
        (best.1, best.2)
    }

    /// The daily profile's centred term at `c` (0 without one).
    #[inline]
    fn daily_term(&self, c: &Clock) -> f64 {
        self.daily().map_or(0.0, |p| p.term(c.day_slot))
    }

    /// The expected value and band at `t` without updating, once warm.
    pub fn expected_at(&self, t_secs: f64) -> Option<(f64, f64, f64)> {
        if self.n < self.cfg.warmup_points.max(1) || !t_secs.is_finite() {
            return None;
        }
        let c = self.clock(t_secs);
        let (e, _) = self.expected_and_level(&c, self.daily_term(&c));
        let w = self.cfg.band_z * self.sigma(&c);
        Some((e, e - w, e + w))
    }

    /// Feeds one value observed at `t_secs` (Unix seconds). Returns `None`
    /// during warm-up, for non-finite input and for late or repeated
    /// times.
    pub fn update(&mut self, t_secs: f64, value: f64) -> Option<BaselineOutput> {
        if !t_secs.is_finite() || !value.is_finite() {
            return None;
        }
        // A repeated time is a duplicate (a retried or doubled point):
        // counted with the late ones, as the forecaster ignores it too.
        if t_secs <= self.last_t {
            self.late = self.late.saturating_add(1);
            return None;
        }
        self.last_t = t_secs;
        if self.n == 0 {
            self.first_t = t_secs;
            self.origin = value;
            self.level = value;
            for p in [&mut self.daily, &mut self.weekly].into_iter().flatten() {
                p.level = value;
                p.origin = value;
            }
            self.n = 1;
            return None;
        }
        let weekly_at = self.weekly_cells_at();
        let cfg = &self.cfg;
        let warm = self.n >= cfg.warmup_points.max(1);
        let c = self.clock(t_secs);
        let daily = self.daily_term(&c);
        let sigma = self.sigma(&c);
        let (expected, chosen_level) = self.expected_and_level(&c, daily);
        let season = expected - chosen_level;
        let resid = value - expected;
        // z²/(z² + z_half²) with z = |resid|/σ, in one division.
        let r2 = resid * resid;
        let raw = r2 / (r2 + cfg.z_half * cfg.z_half * sigma * sigma);
        let raw = if raw.is_finite() {
            raw
        } else if r2 > 0.0 {
            1.0
        } else {
            0.0
        };
        // Likelihood: how unusual the recent raw scores are against their
        // own long-run distribution (after Numenta's anomaly likelihood).
        let mut lk = Likelihood::read(&self.cells);
        let likelihood = if cfg.likelihood && warm {
            let short = f64::from(lk.short);
            let short = short + cfg.alpha_short * (raw - short);
            let a = warm_rate(
                cfg.alpha_long,
                f64::from(self.n) - f64::from(cfg.warmup_points) + 1.0,
            );
            let mean = f64::from(lk.mean);
            let d = raw - mean;
            let mean = mean + a * d;
            let var = (1.0 - a) * (f64::from(lk.var) + a * d * d);
            (lk.short, lk.mean, lk.var) = (short as f32, mean as f32, var as f32);
            let sd = var.sqrt().max(0.01);
            normal_cdf((short - mean) / sd)
        } else {
            raw
        };
        let score = likelihood;

        // Flag with hysteresis (only once warm).
        let mut edge = false;
        // A new anomaly may start on this update (not inside one, hold-off
        // over); otherwise the exported score is capped below the
        // threshold, so one incident is scored once.
        let mut open = !self.in_anomaly && t_secs - self.last_edge_t >= cfg.holdoff_secs;
        // How far out this point is, in σ, and at least `z_half` (an
        // anomaly's likelihood can cross the threshold on a point near
        // the expected value, after a run of unusual ones); only read in
        // an episode.
        let z = || {
            let z = resid.abs() / sigma;
            if z.is_nan() {
                cfg.z_half
            } else {
                z.max(cfg.z_half)
            }
        };
        if warm {
            let quiet = lk.calm & QUIET != 0;
            if self.in_anomaly && quiet && lk.breaks_through(z()) {
                // A quiet episode that grows far beyond the anomaly that
                // started the hold-off is reported after all.
                edge = true;
                open = true;
                self.last_edge_t = t_secs;
                lk.calm = Likelihood::with_peak_z(0, z());
            } else if self.in_anomaly {
                // (The calm count keeps its episode's `QUIET` mark and the
                // peak.)
                if !quiet && z() > lk.peak_z() {
                    lk.calm = Likelihood::with_peak_z(lk.calm, z());
                }
                if score < cfg.clear_ratio * cfg.threshold {
                    if lk.calm & CALM_COUNT < CALM_COUNT {
                        lk.calm += 1;
                    }
                    if lk.calm & CALM_COUNT >= cfg.clear_points.min(CALM_COUNT) {
                        self.in_anomaly = false;
                    }
                } else {
                    lk.calm &= QUIET | PEAK_Z | SEVERE_RUN;
                }
            } else if score >= cfg.threshold {
                // Within the hold-off after an anomaly's start, a new
                // episode runs its hysteresis quietly: it neither starts
                // an anomaly nor shows as one (one per hold-off), unless
                // it is `HOLDOFF_BREAKTHROUGH` times as far out as the
                // anomaly that started the hold-off.
                self.in_anomaly = true;
                lk.calm = QUIET | (lk.calm & PEAK_Z);
                if t_secs - self.last_edge_t >= cfg.holdoff_secs || lk.breaks_through(z()) {
                    edge = true;
                    open = true;
                    self.last_edge_t = t_secs;
                    lk.calm = Likelihood::with_peak_z(0, z());
                }
            }
        }
        lk.write(&mut self.cells);
        let band = cfg.band_z * sigma;
        let out = BaselineOutput {
            expected,
            lower: expected - band,
            upper: expected + band,
            score: if open {
                score
            } else {
                score.min(cfg.clear_ratio * cfg.threshold)
            },
            likelihood,
            raw_score: raw,
            anomaly: edge,
            in_anomaly: self.in_anomaly && lk.calm & QUIET == 0,
        };

        // Robust state updates.
        let n = f64::from(self.n);
        let alpha = warm_rate(cfg.alpha, n);
        let alpha_s = warm_rate(cfg.alpha_scale, n);
        let clip = cfg.huber_k * sigma;
        let warming = !warm;
        // During warm-up σ is unreliable: do not clip yet.
        let flat_resid = value - self.level;
        let err_flat = f64::from(self.err_flat);
        self.err_flat = (err_flat + alpha_s * (flat_resid.abs() - err_flat)) as f32;
        self.level += alpha
            * if warming {
                flat_resid
            } else {
                flat_resid.clamp(-clip, clip)
            };
        let abs_r = if warming {
            resid.abs()
        } else {
            resid.abs().min(clip)
        };
        let scale = f64::from(self.scale);
        self.scale = (scale + alpha_s * (abs_r - scale)) as f32;
        let h = c.hour;
        let hours_at = self.hours_at();
        let hv = self.cells[hours_at + h];
        let ah = warm_rate(alpha_s, f64::from(hv));
        let hs = f64::from(bf16::to_f32(self.hour_scale[h]));
        let hs = (hs + ah * (abs_r - hs)) as f32;
        self.hour_scale[h] = bf16::from_f32_dithered(hs, dither(t_secs, HOUR_DITHER + h));
        self.cells[hours_at + h] = hv.saturating_add(1);

        let age = t_secs - self.first_t;
        let (beta, k, min_cycles) = (cfg.beta_season, cfg.huber_k, cfg.min_cycles);
        let floor = cfg.min_scale_abs.max(cfg.min_scale_rel * self.level.abs());
        // The weekly correction learns the value less the daily term.
        let (daily_cells, weekly_cells) = self.cells[..hours_at].split_at_mut(weekly_at);
        for (p, cells, s, y, per_period) in [
            (
                &mut self.daily,
                daily_cells,
                c.day_slot,
                value,
                1.0 / DAY_SECS,
            ),
            (
                &mut self.weekly,
                weekly_cells,
                c.week_slot,
                value - daily,
                1.0 / WEEK_SECS,
            ),
        ] {
            let Some(p) = p else { continue };
            let mut p = Slots { p, cells };
            let e = y - p.level - p.term(s);
            let err = if p.err.is_finite() {
                f64::from(p.err) + alpha_s * (e.abs() - f64::from(p.err))
            } else {
                e.abs()
            };
            p.err = err as f32;
            if !p.ready && age * per_period >= min_cycles {
                p.ready = true;
            }
            // Clip by this model's own error scale: the chosen model's σ
            // may be tiny while a profile is still being learned.
            let p_clip = if err.is_finite() {
                k * (MAD_TO_SIGMA * err).max(floor)
            } else {
                clip
            };
            p.level += alpha * if warming { e } else { e.clamp(-p_clip, p_clip) };
            let v = p.visits(s, age * per_period);
            let target = if v == 0 {
                if warming { p.level } else { y }
            } else {
                // The first visits are averaged as they are (one spike is
                // diluted, a real pattern learned in days); later ones are
                // clipped so a spike cannot move an established slot far.
                let old = p.value(s);
                let d = y - old;
                if v < ESTABLISHED {
                    old + d / (f64::from(v) + 1.0)
                } else {
                    old + beta * d.clamp(-p_clip, p_clip)
                }
            };
            p.set(s, target, dither(t_secs, s));
        }

        // Level shift: a run of same-side outliers re-seats the level.
        let sign: i8 = if warm && resid.abs() > cfg.shift_k * sigma {
            if resid > 0.0 { 1 } else { -1 }
        } else {
            0
        };
        if sign == 0 || sign != self.run_sign {
            self.run_sign = sign;
            self.run_len = 0;
            self.run_sum = 0.0;
            self.run_min = f32::INFINITY;
            self.run_max = f32::NEG_INFINITY;
        }
        if sign != 0 {
            let x = value - season - self.origin;
            self.run_sum += x;
            self.run_min = self.run_min.min(x as f32);
            self.run_max = self.run_max.max(x as f32);
            self.run_len = self.run_len.saturating_add(1);
        }
        if sign != 0 && u32::from(self.run_len) >= cfg.shift_points {
            // The run's mean without its two extremes (with three points
            // or more): robust to a spike within the run, and no buffer.
            let n = f64::from(self.run_len);
            let trimmed = if n >= 3.0 {
                (self.run_sum - f64::from(self.run_min) - f64::from(self.run_max)) / (n - 2.0)
            } else {
                self.run_sum / n
            };
            let med = trimmed + self.origin;
            // Move every model's level by the same step.
            let delta = med - chosen_level;
            self.level += delta;
            for p in [&mut self.daily, &mut self.weekly].into_iter().flatten() {
                p.level += delta;
            }
            self.run_len = 0;
            self.run_sign = 0;
            self.run_sum = 0.0;
            self.run_min = f32::INFINITY;
            self.run_max = f32::NEG_INFINITY;
        }
        self.n = self.n.saturating_add(1);
        warm.then_some(out)
    }
}

/// The daily profile as a forecaster's daily shape: the centred term of
/// the time of day's slot, once the baseline has a day of history and
/// that slot has been visited.
impl DailyShape for Baseline {
    #[inline]
    fn daily_changes(&self, t_secs: f64, ahead: &[f64], out: &mut [f32]) {
        // A day of history first (false while `first_t` is NaN).
        let Some(p) = self.daily().filter(|_| t_secs - self.first_t >= DAY_SECS) else {
            out.fill(f32::NAN);
            return;
        };
        let now_phase = phase(t_secs, DAY_SECS);
        let (per_sec, slots) = (self.cfg.0.daily_slots_per_sec, self.cfg.daily_slots);
        let s = slot_at(now_phase, per_sec, slots);
        if !p.is_seen(s) {
            out.fill(f32::NAN);
            return;
        }
        let now = p.term(s);
        for (o, &h) in out.iter_mut().zip(ahead) {
            // (t + h) mod day from the two phases: exact when `t + h` is.
            let mut then = now_phase + h;
            if then >= DAY_SECS {
                then -= DAY_SECS;
            }
            let s = slot_at(then, per_sec, slots);
            *o = if p.is_seen(s) {
                (p.term(s) - now) as f32
            } else {
                f32::NAN
            };
        }
    }
}

#[cfg(test)]
mod profile_tests {
    use super::*;

    /// A profile of `slots` slots with its own cells.
    fn profile(slots: usize) -> (Profile, Vec<u8>) {
        (Profile::new(), vec![UNSEEN; slots])
    }

    /// A series that has not moved keeps every slot at the origin with no
    /// step (the flat path), and its first move sets the step as the
    /// rescaling path does.
    #[test]
    fn a_flat_series_stays_at_the_origin_until_it_moves() {
        let (mut profile, mut cells) = profile(288);
        let mut p = Slots {
            p: &mut profile,
            cells: &mut cells[..],
        };
        p.origin = 42.0;
        for s in 0..288 {
            p.set(s, 42.0, 0.5);
        }
        assert_eq!(p.step, 0.0);
        assert_eq!((p.seen, p.sum), (288, 0));
        assert!((0..288).all(|s| p.is_seen(s) && p.value(s) == 42.0));
        p.set(5, 50.0, 0.5);
        assert!(p.step > 0.0);
        assert!(
            (p.value(5) - 50.0).abs() <= f64::from(p.step),
            "{}",
            p.value(5)
        );
        assert!(
            (p.value(4) - 42.0).abs() <= f64::from(p.step),
            "{}",
            p.value(4)
        );
    }

    /// The visits a slot is taken to have had match a per-slot count for
    /// a series without gaps: one point per slot per day (5-minute data),
    /// or five (1-minute data).
    #[test]
    fn estimated_visits_match_the_count_without_gaps() {
        for points_per_slot in [1usize, 5] {
            let (mut profile, mut cells) = profile(288);
            let mut p = Slots {
                p: &mut profile,
                cells: &mut cells[..],
            };
            let step = 300.0 / points_per_slot as f64;
            let mut counts = [0u8; 288];
            for i in 0..(4 * 288 * points_per_slot) {
                let age = i as f64 * step;
                let s = slot_at(phase(age, DAY_SECS), 288.0 / DAY_SECS, 288);
                assert_eq!(
                    p.visits(s, age / DAY_SECS),
                    counts[s],
                    "{points_per_slot} per slot, point {i}, slot {s}"
                );
                counts[s] = (counts[s] + 1).min(ESTABLISHED);
                p.set(s, 10.0 + (s % 7) as f64, 0.5);
            }
        }
    }
}
