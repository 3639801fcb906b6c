//! Baseline tests (step, spike, ramp, daily seasonality, level shift, NaN,
//! gaps and late points, memory) and counter-to-rate tests (reset). Data
//! comes from a small deterministic PRNG (SplitMix64), so every run sees
//! the same values.
//!
//! Also holds the NAB evaluation (`nab_evaluation`, ignored by default):
//! `cargo test --release --lib nab_evaluation -- --ignored --nocapture`.

use super::*;

/// SplitMix64: tiny, fast, and good enough to generate test data.
pub(crate) struct Rng(pub(crate) u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    pub(crate) fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.open01(), self.open01());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

const T0: f64 = 1_700_000_000.0;
const STEP: f64 = 300.0;

/// Feeds `values` at 5-minute steps; returns the outputs.
fn run(b: &mut Baseline, values: &[f64]) -> Vec<Option<BaselineOutput>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &v)| b.update(T0 + i as f64 * STEP, v))
        .collect()
}

fn edges(out: &[Option<BaselineOutput>]) -> Vec<usize> {
    out.iter()
        .enumerate()
        .filter(|(_, o)| o.is_some_and(|o| o.anomaly))
        .map(|(i, _)| i)
        .collect()
}

/// The raw (per-value z) score path, flag at z = 6, 1 h hold-off: for
/// tests that check the model itself rather than the likelihood stage.
fn raw_cfg() -> BaselineConfig {
    BaselineConfig {
        likelihood: false,
        threshold: 0.8,
        holdoff_secs: 3600.0,
        ..BaselineConfig::default()
    }
}

fn noisy(n: usize, level: f64, sd: f64, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..n).map(|_| level + sd * rng.normal()).collect()
}

#[test]
fn warm_up_yields_nothing_then_outputs() {
    let mut b = Baseline::default();
    let out = run(&mut b, &noisy(30, 10.0, 1.0, 1));
    assert!(out[..12].iter().all(Option::is_none));
    assert!(out[12..].iter().all(Option::is_some));
    let o = out[29].unwrap();
    assert!(o.lower < o.expected && o.expected < o.upper);
    assert!((0.0..=1.0).contains(&o.score));
}

#[test]
fn step_flags_once_and_readapts() {
    let mut v = noisy(1000, 10.0, 1.0, 2);
    for x in &mut v[500..] {
        *x += 20.0;
    }
    let mut b = Baseline::new(raw_cfg());
    let out = run(&mut b, &v);
    let e = edges(&out);
    assert_eq!(e.iter().filter(|&&i| i >= 500).count(), 1, "edges {e:?}");
    assert!(e.contains(&500), "edges {e:?}");
    assert!(e.iter().filter(|&&i| i < 500).count() <= 1, "edges {e:?}");
    // Re-adapted (level shift): expected near 30 soon after.
    let o = out[530].unwrap();
    assert!((o.expected - 30.0).abs() < 1.0, "expected {}", o.expected);
    assert!(!out[600].unwrap().in_anomaly);

    // The default (likelihood) score flags it too, within a few steps.
    let mut b = Baseline::default();
    let e = edges(&run(&mut b, &v));
    assert_eq!(e.iter().filter(|&&i| i >= 500).count(), 1, "edges {e:?}");
    assert!(e.iter().any(|&i| (500..=503).contains(&i)), "edges {e:?}");
}

/// A second incident within the hold-off after the first one's start
/// neither raises the flag nor shows as active, and its score stays
/// below the threshold: one anomaly per hold-off, as documented. After
/// the hold-off a new incident is flagged again.
#[test]
fn an_incident_within_the_hold_off_is_not_reported() {
    let mut v = noisy(3000, 10.0, 1.0, 21);
    // Spikes at 500, 508 (within the 1 h hold-off at 5-minute steps,
    // after the first has calmed) and 700 (after it), each 3 points long.
    for start in [500, 508, 700] {
        for x in &mut v[start..start + 3] {
            *x += 1000.0;
        }
    }
    let mut b = Baseline::new(raw_cfg());
    let out = run(&mut b, &v);
    assert_eq!(edges(&out), [500, 700], "{:?}", edges(&out));
    assert!(out[500].unwrap().in_anomaly);
    for (i, o) in out.iter().enumerate().take(514).skip(507) {
        let o = o.unwrap();
        assert!(!o.in_anomaly, "active at {i}: {o:?}");
        assert!(o.score < 0.8, "score at {i}: {o:?}");
    }
    assert!(out[700].unwrap().in_anomaly);
}

/// A small false alarm does not hide a real outage for the hold-off: an
/// incident within it that stays far beyond the one that started it (in
/// σ) for three updates is reported on its third, with the default
/// scoring and 6 h hold-off. A lone burst that large, or a second outage
/// no larger than the reported one, stays quiet.
#[test]
fn a_far_larger_incident_breaks_through_the_hold_off() {
    let mut v = noisy(3000, 100.0, 1.0, 21);
    // A blip of 8 σ at 500; within the 6 h (5-minute steps) a lone burst
    // 50× as far out at 520, an outage as far out at 540 for 5 points,
    // and another at 560.
    for x in &mut v[500..502] {
        *x += 8.0;
    }
    v[520] += 400.0;
    for start in [540, 560] {
        for x in &mut v[start..start + 5] {
            *x += 400.0;
        }
    }
    let out = run(&mut Baseline::default(), &v);
    let e = edges(&out);
    assert_eq!(
        e.iter().filter(|&&i| (500..503).contains(&i)).count(),
        1,
        "{e:?}"
    );
    assert!(!out[519].unwrap().in_anomaly, "the blip has calmed");
    assert!(!out[539].unwrap().in_anomaly, "the burst has calmed");
    assert!(e.contains(&542), "the outage is reported: {e:?}");
    assert!(out[542].unwrap().in_anomaly);
    assert!(out[542].unwrap().score >= 0.95, "{:?}", out[542]);
    assert!(
        !e.iter()
            .any(|&i| (503..542).contains(&i) || (543..600).contains(&i)),
        "{e:?}"
    );

    // Without the blip, the burst is the anomaly, and neither outage is
    // reported within its hold-off: the burst was as far out.
    let mut w = v.clone();
    w[500..502].copy_from_slice(&v[498..500]);
    let e = edges(&run(&mut Baseline::default(), &w));
    assert_eq!(
        e.iter().filter(|&&i| (500..600).contains(&i)).count(),
        1,
        "{e:?}"
    );
}

#[test]
fn level_shift_down_readapts_within_shift_points() {
    let mut v = noisy(600, 100.0, 2.0, 3);
    for x in &mut v[300..] {
        *x -= 50.0;
    }
    let mut b = Baseline::default();
    let out = run(&mut b, &v);
    let o = out[315].unwrap();
    assert!((o.expected - 50.0).abs() < 3.0, "expected {}", o.expected);
}

#[test]
fn spike_does_not_poison_baseline() {
    let mut v = noisy(800, 10.0, 1.0, 4);
    v[400] = 1000.0;
    let mut b = Baseline::new(raw_cfg());
    let out = run(&mut b, &v);
    let spike = out[400].unwrap();
    assert!(spike.anomaly && spike.score > 0.99);
    let after = out[401].unwrap();
    assert!((after.expected - 10.0).abs() < 0.5, "{after:?}");
    let before = out[399].unwrap();
    assert!(after.upper - after.lower < 1.3 * (before.upper - before.lower));
    assert!(edges(&out).iter().filter(|&&i| i > 400).count() == 0);
}

#[test]
fn regular_spikes_become_normal_with_the_likelihood_score() {
    // A spike every 10 points, forever: raw z is huge at every spike.
    let mut v = noisy(6000, 10.0, 1.0, 11);
    for x in v.iter_mut().step_by(10) {
        *x += 30.0;
    }
    let mut raw = Baseline::new(BaselineConfig {
        likelihood: false,
        ..BaselineConfig::default()
    });
    let raw_edges = edges(&run(&mut raw, &v));
    let mut b = Baseline::default();
    let out = run(&mut b, &v);
    let e = edges(&out);
    // The raw score flags at every hold-off; the likelihood learns the
    // pattern and stays quiet after the first few days.
    assert!(
        raw_edges.iter().filter(|&&i| i > 3000).count() >= 5,
        "{raw_edges:?}"
    );
    assert!(e.iter().filter(|&&i| i > 3000).count() <= 1, "edges {e:?}");
    // A change of behaviour (a level shift) still flags.
    let mut w = v.clone();
    for x in &mut w[5000..] {
        *x += 15.0;
    }
    let mut b = Baseline::default();
    let e = edges(&run(&mut b, &w));
    assert!(e.iter().any(|&i| (5000..5010).contains(&i)), "edges {e:?}");
}

#[test]
fn ramp_is_tracked_without_flags() {
    let mut rng = Rng(5);
    let v: Vec<f64> = (0..2000)
        .map(|i| 0.01 * i as f64 + 0.5 * rng.normal())
        .collect();
    let mut b = Baseline::default();
    let out = run(&mut b, &v);
    assert!(edges(&out).len() <= 2, "edges {:?}", edges(&out));
    let o = out[1999].unwrap();
    assert!((o.expected - 19.99).abs() < 1.0, "expected {}", o.expected);
}

fn daily_sine(n: usize, seed: u64) -> Vec<f64> {
    let mut rng = Rng(seed);
    (0..n)
        .map(|i| {
            let t = T0 + i as f64 * STEP;
            50.0 + 20.0 * (std::f64::consts::TAU * t / 86_400.0).sin() + rng.normal()
        })
        .collect()
}

#[test]
fn learns_daily_seasonality() {
    let n = 288 * 10;
    let mut v = daily_sine(n, 6);
    // An anomaly that stays inside the daily range: +14 at one point.
    v[n - 100] += 14.0;
    let mut b = Baseline::new(raw_cfg());
    let out = run(&mut b, &v);
    // Over the last 3 days the expected value follows the sine closely.
    let mut err = 0.0;
    let mut cnt = 0.0;
    for (i, o) in out.iter().enumerate().skip(n - 288 * 3) {
        if i != n - 100 {
            let t = T0 + i as f64 * STEP;
            let truth = 50.0 + 20.0 * (std::f64::consts::TAU * t / 86_400.0).sin();
            err += (o.unwrap().expected - truth).abs();
            cnt += 1.0;
        }
    }
    assert!(err / cnt < 1.5, "mean error {}", err / cnt);
    let e = edges(&out);
    assert!(e.contains(&(n - 100)), "edges {e:?} {:?}", out[n - 100]);
    assert!(
        e.iter().filter(|&&i| i > n - 288 * 3).count() == 1,
        "edges {e:?}"
    );
}

#[test]
fn nan_changes_nothing() {
    let v = noisy(100, 10.0, 1.0, 7);
    let mut a = Baseline::default();
    let mut b = Baseline::default();
    for (i, &x) in v.iter().enumerate() {
        let t = T0 + i as f64 * STEP;
        let oa = a.update(t, x);
        assert_eq!(b.update(t, f64::NAN), None);
        assert_eq!(b.update(t, f64::INFINITY), None);
        assert_eq!(b.update(f64::NAN, x), None);
        assert_eq!(oa, b.update(t, x));
    }
}

#[test]
fn gaps_keep_seasonal_alignment_and_late_points_are_dropped() {
    let n = 288 * 8;
    let v = daily_sine(n, 8);
    let mut b = Baseline::default();
    let mut last = None;
    for (i, &x) in v.iter().enumerate() {
        // A 1.5-day gap in the middle.
        if (288 * 4..288 * 4 + 432).contains(&i) {
            continue;
        }
        last = b.update(T0 + i as f64 * STEP, x).or(last);
        if i == 288 * 4 + 432 + 5 {
            let o = last.unwrap();
            assert!(!o.anomaly, "{o:?}");
            assert!((o.expected - x).abs() < 4.0, "{o:?} vs {x}");
        }
    }
    assert_eq!(b.update(T0, 1.0), None);
    assert_eq!(b.late_points(), 1);
    // A repeated time is a duplicate: not fed, counted with the late.
    let last_t = T0 + (n - 1) as f64 * STEP;
    assert_eq!(b.update(last_t, 1e9), None);
    assert_eq!(b.late_points(), 2);
    let next = b.update(last_t + STEP, v[0]).expect("a verdict");
    assert!(
        !next.anomaly,
        "the duplicate's 1e9 was not learned: {next:?}"
    );
}

/// As a forecaster's daily shape, the baseline answers only once it has
/// a day of history (the forecaster keeps no first time of its own), and
/// then with the daily sine's change over the horizon.
#[test]
fn daily_shape_waits_for_a_day_of_history() {
    use crate::analytics::forecasts::DailyShape;
    let values = daily_sine(288 * 2, 4);
    let mut b = Baseline::default();
    // 1 h and 6 h ahead.
    let ahead = [3_600.0, 21_600.0];
    let mut out = [0.0f32; 2];
    for (i, &v) in values.iter().enumerate() {
        let t = T0 + i as f64 * STEP;
        b.update(t, v);
        b.daily_changes(t, &ahead, &mut out);
        if i < 288 {
            assert!(out.iter().all(|c| c.is_nan()), "point {i}: {out:?}");
        }
    }
    // The last point, a day and a bit in: every slot has been visited.
    let t = T0 + (values.len() - 1) as f64 * STEP;
    b.daily_changes(t, &ahead, &mut out);
    let sine = |t: f64| 20.0 * (std::f64::consts::TAU * t / 86_400.0).sin();
    for (&change, &h) in out.iter().zip(&ahead) {
        let truth = sine(t + h) - sine(t);
        assert!(
            (f64::from(change) - truth).abs() < 5.0,
            "{h} s ahead: {change} against {truth}"
        );
    }
}

#[test]
fn memory_is_bounded_and_constant() {
    let mut b = Baseline::default();
    let m0 = b.memory_bytes();
    run(&mut b, &daily_sine(288 * 15, 9));
    assert_eq!(b.memory_bytes(), m0);
    assert!(m0 <= 1024, "{m0} bytes");
}

/// Mean |expected − truth| over the last week of five, and the rising
/// edges in it, for a daily sine 40 lower on Saturdays and Sundays.
fn weekend_fit(seasonality: Seasonality) -> (f64, usize) {
    const WEEK: usize = 288 * 7;
    let truth = |i: usize| {
        let t = T0 + i as f64 * STEP;
        // 1970-01-01 was a Thursday: day 2 of the week is a Saturday.
        let weekend = matches!(((t / 86_400.0) as i64).rem_euclid(7), 2 | 3);
        100.0
            + 20.0 * (std::f64::consts::TAU * t / 86_400.0).sin()
            + if weekend { -40.0 } else { 0.0 }
    };
    let mut rng = Rng(21);
    let v: Vec<f64> = (0..5 * WEEK).map(|i| truth(i) + rng.normal()).collect();
    let mut b = Baseline::new(BaselineConfig {
        seasonality,
        ..raw_cfg()
    });
    let out = run(&mut b, &v);
    let last = 4 * WEEK;
    let err: f64 = (last..5 * WEEK)
        .map(|i| (out[i].map_or(f64::NAN, |o| o.expected) - truth(i)).abs())
        .sum();
    let flags = edges(&out).iter().filter(|&&i| i >= last).count();
    (err / WEEK as f64, flags)
}

#[test]
fn weekly_correction_learns_a_weekend_level() {
    let (weekly, weekly_flags) = weekend_fit(Seasonality::DailyAndWeekly);
    let (daily, _) = weekend_fit(Seasonality::Daily);
    assert!(
        weekly < 0.5 * daily,
        "weekly {weekly} vs daily only {daily}"
    );
    assert!(weekly < 3.0, "weekly {weekly}");
    assert_eq!(weekly_flags, 0);
}

/// Profiles keep 8-bit codes: the step follows the pattern's range, so a
/// small daily shape on a large offset is learned, and a level that
/// drifts far (a hundredfold over the run) keeps its shape.
#[test]
fn quantised_profiles_follow_offset_and_drift() {
    let n = 288 * 12;
    let mut rng = Rng(22);
    let shape = |i: usize| 5.0 * (std::f64::consts::TAU * (T0 + i as f64 * STEP) / 86_400.0).sin();
    for (offset, growth) in [(1e9, 0.0), (10.0, 0.01)] {
        let level = |i: usize| offset + growth * i as f64;
        let v: Vec<f64> = (0..n)
            .map(|i| level(i) + shape(i) + 0.2 * rng.normal())
            .collect();
        let mut b = Baseline::new(raw_cfg());
        let out = run(&mut b, &v);
        let tail = n - 288 * 2..n;
        let err: f64 = tail
            .clone()
            .map(|i| (out[i].map_or(f64::NAN, |o| o.expected) - level(i) - shape(i)).abs())
            .sum::<f64>()
            / tail.len() as f64;
        assert!(
            err < 1.0,
            "offset {offset} growth {growth}: mean error {err}"
        );
        assert!(edges(&out[tail.start..]).is_empty(), "offset {offset}");
    }
}

/// Values far outside anything seen (and back) widen the profile's step
/// without overflow, NaN or panic.
#[test]
fn extreme_values_keep_profiles_finite() {
    let mut b = Baseline::default();
    let mut v = daily_sine(288 * 3, 23);
    v[400] = 1e300;
    v[401] = -1e300;
    v[402] = f64::MAX;
    let out = run(&mut b, &v);
    for o in out.iter().flatten().skip(500) {
        assert!(o.expected.is_finite() && o.upper.is_finite(), "{o:?}");
    }
}

#[test]
fn config_validation() {
    assert!(BaselineConfig::default().validate().is_ok());
    let bad = BaselineConfig {
        alpha: 2.0,
        ..BaselineConfig::default()
    };
    assert!(matches!(
        Baseline::try_new(bad.clone()),
        Err(BaselineError::OutOfRange { name: "alpha", .. })
    ));
    assert_eq!(Baseline::new(bad).config().alpha, 1.0);
}

#[test]
fn counter_rate_with_reset() {
    let mut r = RateConverter::new();
    assert_eq!(r.update(0.0, 100.0), None);
    assert_eq!(r.update(10.0, 150.0), Some(5.0));
    // Reset: the counter restarted from 0 and is now at 20.
    assert_eq!(r.update(20.0, 20.0), Some(2.0));
    assert_eq!(r.previous(), Some((20.0, 20.0)));
    assert_eq!(r.update(30.0, 40.0), Some(2.0));
    // Ignored: NaN, negative, time not advancing.
    assert_eq!(r.update(40.0, f64::NAN), None);
    assert_eq!(r.update(40.0, -1.0), None);
    assert_eq!(r.update(30.0, 50.0), None);
    assert_eq!(r.update(40.0, 60.0), Some(2.0));
}

/// The durable state keeps the converter's earlier layout (a previous
/// sample as an option, then a reset count): states saved before it
/// became 16 bytes read back, and what it writes reads back the same.
#[test]
fn counter_rate_keeps_its_saved_layout() {
    #[derive(serde::Serialize)]
    struct Earlier {
        prev: Option<(f64, f64)>,
        resets: u64,
    }
    let earlier = postcard::to_allocvec(&Earlier {
        prev: Some((10.0, 150.0)),
        resets: 3,
    })
    .unwrap();
    let mut r: RateConverter = postcard::from_bytes(&earlier).unwrap();
    assert_eq!(r.previous(), Some((10.0, 150.0)));
    assert_eq!(r.update(20.0, 170.0), Some(2.0));
    let none = postcard::to_allocvec(&Earlier {
        prev: None,
        resets: 0,
    })
    .unwrap();
    let fresh: RateConverter = postcard::from_bytes(&none).unwrap();
    assert_eq!(fresh.previous(), None);
    assert_eq!(postcard::to_allocvec(&RateConverter::new()).unwrap(), none);
    let again: RateConverter = postcard::from_bytes(&postcard::to_allocvec(&r).unwrap()).unwrap();
    assert_eq!(again.previous(), Some((20.0, 170.0)));
    assert_eq!(size_of::<RateConverter>(), 16);
}

/// A daily square wave (20 for 9 h, 80 for 9 h, 20 for 6 h) with a
/// little noise: a flat model re-learns the level at every edge, the
/// daily profile predicts the edges. Once the profile is in use there are
/// no flags, and the expected value is right at the edges themselves.
#[test]
fn daily_square_wave_is_learned_and_not_flagged() {
    let mut rng = Rng(11);
    let day = 288;
    let values: Vec<f64> = (0..14 * day)
        .map(|i| {
            let slot = i % day;
            let base = if (108..216).contains(&slot) {
                80.0
            } else {
                20.0
            };
            base + 0.2 * rng.normal()
        })
        .collect();
    let mut b = Baseline::default();
    let out = run(&mut b, &values);
    let late_flags: Vec<usize> = (3 * day..values.len())
        .filter(|&i| out[i].is_some_and(|o| o.anomaly))
        .collect();
    assert!(late_flags.is_empty(), "flags after day 3: {late_flags:?}");
    for i in (10 * day..14 * day).filter(|i| i % day == 108 || i % day == 216) {
        let o = out[i].expect("warm");
        assert!(
            (o.expected - values[i]).abs() < 3.0,
            "edge at {i}: expected {} value {}",
            o.expected,
            values[i]
        );
    }
}

/// A step that persists: the score reaches the threshold once, on the
/// rising edge; for the rest of the incident it is capped below the
/// threshold while the uncapped likelihood stays visible.
#[test]
fn an_incident_is_scored_once() {
    let mut rng = Rng(12);
    let values: Vec<f64> = (0..600)
        .map(|i| if i < 400 { 10.0 } else { 30.0 } + rng.normal())
        .collect();
    let cfg = BaselineConfig::default();
    let mut b = Baseline::new(cfg.clone());
    let out = run(&mut b, &values);
    let above: Vec<usize> = (0..values.len())
        .filter(|&i| out[i].is_some_and(|o| o.score >= cfg.threshold))
        .collect();
    assert_eq!(above.len(), 1, "rows at or above the threshold: {above:?}");
    let edge = above[0];
    assert!((400..410).contains(&edge), "edge at {edge}");
    assert!(out[edge].is_some_and(|o| o.anomaly));
    let next = out[edge + 1].expect("warm");
    assert!(next.score <= cfg.clear_ratio * cfg.threshold + 1e-12);
    assert!(next.likelihood >= cfg.threshold, "{next:?}");
}

#[test]
fn fast_normal_cdf_matches_statrs() {
    use statrs::distribution::{ContinuousCDF, Normal};
    let n = Normal::standard();
    let mut worst = 0.0f64;
    for i in -4000..=4000 {
        let x = f64::from(i) * 0.0025;
        worst = worst.max((baseline::normal_cdf(x) - n.cdf(x)).abs());
    }
    assert!(worst < 1e-7, "{worst}");
    assert_eq!(baseline::normal_cdf(f64::NAN), 0.5);
    assert_eq!(baseline::normal_cdf(f64::INFINITY), 1.0);
    assert_eq!(baseline::normal_cdf(f64::NEG_INFINITY), 0.0);
    assert!(baseline::normal_cdf(-40.0) >= 0.0);
}

/// Evaluation on the NAB development subset (`../shared/data/nab-dev`, or
/// `$NAB_DIR`): the NAB standard-profile score of the rising-edge flags at
/// the default threshold and the best over a threshold sweep, the
/// forecasts' MAE relative to naive per horizon (geometric mean over
/// series) and interval coverage, and the per-point cost of one baseline
/// plus one forecaster. Figures are recorded in `docs/ALGORITHMS.md`.
///
/// Run: `cargo test --release --lib nab_evaluation -- --ignored --nocapture`
#[test]
#[ignore = "reads the NAB data from disk; run explicitly"]
fn nab_evaluation() {
    use crate::analytics::forecasts::{Forecaster, MODELS};
    use std::time::Instant;

    let dir = std::env::var("NAB_DIR")
        .unwrap_or_else(|_| concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/data/nab-dev").into());
    let windows_text =
        std::fs::read_to_string(format!("{dir}/windows.json")).expect("windows.json");
    let windows: serde_json::Value = serde_json::from_str(&windows_text).expect("json");
    type File = (String, Vec<(f64, f64)>, Vec<(usize, usize)>);
    let mut files: Vec<File> = Vec::new();
    for (name, wins) in windows.as_object().expect("object") {
        let text = std::fs::read_to_string(format!("{dir}/{name}")).expect("csv");
        let rows: Vec<(f64, f64)> = text
            .lines()
            .skip(1)
            .filter_map(|l| {
                let (ts, v) = l.split_once(',')?;
                Some((nab::parse_ts(ts)?, v.trim().parse().ok()?))
            })
            .collect();
        let idx = wins
            .as_array()
            .expect("array")
            .iter()
            .filter_map(|w| {
                let s = nab::parse_ts(w[0].as_str()?)?;
                let e = nab::parse_ts(w[1].as_str()?)?;
                let first = rows.iter().position(|r| r.0 >= s)?;
                let last = rows.iter().rposition(|r| r.0 <= e)?;
                (first <= last).then_some((first, last))
            })
            .collect();
        files.push((name.clone(), rows, idx));
    }
    let total_windows: usize = files.iter().map(|f| f.2.len()).sum();
    println!(
        "{} files, {} windows, {} rows",
        files.len(),
        total_windows,
        files.iter().map(|f| f.1.len()).sum::<usize>()
    );

    let normalise = |raw: f64| 100.0 * (raw + total_windows as f64) / (2.0 * total_windows as f64);
    // One run per file: the score and the rising edge of every row.
    let run_all = |cfg: &BaselineConfig| -> Vec<Vec<(f64, bool)>> {
        files
            .iter()
            .map(|(_, rows, _)| {
                let mut b = Baseline::new(cfg.clone());
                rows.iter()
                    .map(|r| {
                        b.update(r.0, r.1)
                            .map_or((0.0, false), |o| (o.score, o.anomaly))
                    })
                    .collect()
            })
            .collect()
    };
    // Flags: every row whose `anomaly` is set is a detection.
    let flag_score = |outs: &[Vec<(f64, bool)>], verbose: bool| -> f64 {
        let mut raw = 0.0;
        for ((name, rows, wins), out) in files.iter().zip(outs) {
            let det: Vec<usize> = (0..out.len()).filter(|&i| out[i].1).collect();
            let s = nab::file_score(rows.len(), wins, &det);
            if verbose {
                let probation = ((0.15 * rows.len() as f64) as usize).min(750);
                let hits: Vec<String> = wins
                    .iter()
                    .map(|&(a, b)| {
                        det.iter()
                            .find(|&&i| i >= a && i <= b && i >= probation)
                            .map_or("miss".into(), |&i| {
                                format!("{:.2}", (i - a) as f64 / (b - a) as f64)
                            })
                    })
                    .collect();
                let fp = det
                    .iter()
                    .filter(|&&i| i >= probation && !wins.iter().any(|&(a, b)| i >= a && i <= b))
                    .count();
                println!("  {name:60} windows {hits:?} fp {fp:3} raw {s:+.3}");
                if std::env::var("NAB_FILE").is_ok_and(|f| name.contains(&f)) {
                    println!("    windows {wins:?} n {} detections {det:?}", rows.len());
                }
            }
            raw += s;
        }
        normalise(raw)
    };
    // Score, as NAB thresholds a detector's score column: every row at or
    // above the threshold is a detection; the best threshold is reported.
    let best_score_threshold = |outs: &[Vec<(f64, bool)>]| -> (f64, f64) {
        let mut best = (1.0, f64::NEG_INFINITY);
        for k in 0..=200 {
            let th = k as f64 / 200.0;
            let mut raw = 0.0;
            for ((_, rows, wins), out) in files.iter().zip(outs) {
                let det: Vec<usize> = (0..out.len()).filter(|&i| out[i].0 >= th).collect();
                raw += nab::file_score(rows.len(), wins, &det);
            }
            let s = normalise(raw);
            if s > best.1 {
                best = (th, s);
            }
        }
        best
    };
    let mut default = BaselineConfig::default();
    if let Some(v) = std::env::var("NAB_THRESHOLD")
        .ok()
        .and_then(|v| v.parse().ok())
    {
        default.threshold = v;
    }
    // Exploration knobs: NAB_<FIELD> for a few fields.
    let env = |k: &str| std::env::var(k).ok().and_then(|v| v.parse::<f64>().ok());
    if let Some(v) = env("NAB_SHIFT_POINTS") {
        default.shift_points = v as u32;
    }
    if let Some(v) = env("NAB_ALPHA_LONG") {
        default.alpha_long = v;
    }
    if let Some(v) = env("NAB_ALPHA_SHORT") {
        default.alpha_short = v;
    }
    if let Some(v) = env("NAB_CLEAR_RATIO") {
        default.clear_ratio = v;
    }
    if let Some(v) = env("NAB_MIN_CYCLES") {
        default.min_cycles = v;
    }
    if let Some(v) = env("NAB_HOLDOFF") {
        default.holdoff_secs = v;
    }
    if let Some(v) = env("NAB_DAILY_SLOTS") {
        default.daily_slots = v as u32;
    }
    if let Some(v) = env("NAB_WEEKLY_SLOTS") {
        default.weekly_slots = v as u32;
    }
    let default = default;
    let outs = run_all(&default);
    let at_default = flag_score(&outs, std::env::var_os("NAB_VERBOSE").is_some());
    let (score_th, score_best) = best_score_threshold(&outs);
    for ((name, _, _), out) in files.iter().zip(&outs) {
        let above = out.iter().filter(|o| o.0 >= score_th).count();
        let (mut run, mut longest) = (0, 0);
        for o in out {
            run = if o.0 >= score_th { run + 1 } else { 0 };
            longest = longest.max(run);
        }
        println!("  score >= {score_th:.3}: {name:60} rows {above:5} longest run {longest}");
    }
    let mut best = (default.threshold, at_default);
    for threshold in [0.5, 0.7, 0.9, 0.95, 0.97, 0.99] {
        for holdoff_secs in [6.0 * 3600.0, 24.0 * 3600.0, 72.0 * 3600.0] {
            let c = BaselineConfig {
                threshold,
                holdoff_secs,
                ..default.clone()
            };
            let s = flag_score(&run_all(&c), false);
            println!("  flags: threshold {threshold} holdoff {holdoff_secs:6} -> {s:.1}");
            if s > best.1 {
                best = (threshold, s);
            }
        }
    }
    println!(
        "NAB standard score: flags at default threshold {:.3} -> {at_default:.1}; flags at best threshold {:.4} -> {:.1}; score column at best threshold {score_th:.4} -> {score_best:.1}",
        default.threshold, best.0, best.1
    );

    if std::env::var_os("NAB_QUICK").is_some() {
        return;
    }
    // Forecasts: relative MAE vs naive per horizon, geometric mean over
    // series with a non-zero naive error; pooled interval coverage.
    const STEPS: [usize; 3] = [1, 3, 12];
    let mut log_rel = [0.0f64; 3];
    let mut n_rel = [0usize; 3];
    let mut worst = [0.0f64; 3];
    let mut covered = [0usize; 3];
    let mut total = [0usize; 3];
    let mut chosen = [[0usize; MODELS.len()]; 3];
    // Exploration knobs of the forecaster: NAB_MAX_PENDING,
    // NAB_REGRESSION_POINTS, NAB_MIN_MATURED.
    let mut forecast_cfg = crate::analytics::forecasts::ForecastConfig::default();
    if let Some(v) = env("NAB_MAX_PENDING") {
        forecast_cfg.max_pending = v as usize;
    }
    if let Some(v) = env("NAB_REGRESSION_POINTS") {
        forecast_cfg.regression_points = v as usize;
    }
    if let Some(v) = env("NAB_MIN_MATURED") {
        forecast_cfg.min_matured = v as u32;
    }
    for (name, rows, _) in &files {
        let mut f = Forecaster::new(forecast_cfg.clone());
        let mut b = Baseline::new(default.clone());
        let mut mae = [(0.0f64, 0.0f64); 3];
        for (i, &(t, x)) in rows.iter().enumerate() {
            b.update(t, x);
            f.update_with(t, x, &b);
            for (h, &k) in STEPS.iter().enumerate() {
                let Some(&(ty, y)) = rows.get(i + k) else {
                    continue;
                };
                // Only where the target row is exactly at t + h.
                if (ty - t - 300.0 * k as f64).abs() > 1.0 {
                    continue;
                }
                if let Some(fc) = f.forecast(h) {
                    mae[h].0 += (fc.value - y).abs();
                    mae[h].1 += (x - y).abs();
                    covered[h] += usize::from(fc.lower <= y && y <= fc.upper);
                    total[h] += 1;
                    chosen[h][MODELS.iter().position(|&m| m == fc.model).unwrap_or(0)] += 1;
                }
            }
        }
        for h in 0..3 {
            if mae[h].1 > 0.0 && mae[h].0 > 0.0 {
                log_rel[h] += (mae[h].0 / mae[h].1).ln();
                worst[h] = worst[h].max(mae[h].0 / mae[h].1);
                if mae[h].0 > mae[h].1 {
                    println!(
                        "  worse than naive at horizon {h}: {name} {:.3}",
                        mae[h].0 / mae[h].1
                    );
                }
                n_rel[h] += 1;
            }
        }
    }
    for (h, name) in ["5m", "15m", "1h"].iter().enumerate() {
        println!(
            "forecast {name:>3}: relative MAE (geo mean over {} series) {:.3}, worst series {:.3}, 90% interval coverage {:.1}%, chosen {:?}",
            n_rel[h],
            (log_rel[h] / n_rel[h] as f64).exp(),
            worst[h],
            100.0 * covered[h] as f64 / total[h] as f64,
            MODELS
                .iter()
                .zip(chosen[h])
                .map(|(m, c)| format!("{}={c}", m.as_str()))
                .collect::<Vec<_>>()
        );
    }

    // Per-point cost of one baseline and one forecaster (3 horizons).
    let time = |which: u8| {
        let start = Instant::now();
        let mut points = 0usize;
        for _ in 0..5 {
            for (_, rows, _) in &files {
                let mut b = Baseline::default();
                let mut f = Forecaster::default();
                for &(t, x) in rows {
                    if which & 1 != 0 {
                        std::hint::black_box(b.update(t, x));
                    }
                    if which & 2 != 0 {
                        f.update_with(t, x, &b);
                        for h in 0..3 {
                            std::hint::black_box(f.forecast(h));
                        }
                    }
                }
                points += rows.len();
            }
        }
        start.elapsed().as_nanos() as f64 / points as f64
    };
    let (tb, tf, tboth) = (time(1), time(2), time(3));
    println!(
        "cost per point: baseline {tb:.0} ns, forecaster update + 3 forecasts {tf:.0} ns, both {tboth:.0} ns"
    );
    let b = Baseline::default();
    let f = Forecaster::default();
    println!(
        "memory: baseline {} B, forecaster {} B (before pending queues grow)",
        b.memory_bytes(),
        f.memory_bytes()
    );
}

/// NAB helpers for the evaluation.
mod nab {
    /// `YYYY-MM-DD HH:MM:SS[.ffffff]` (UTC) to Unix seconds.
    pub fn parse_ts(s: &str) -> Option<f64> {
        let s = s.trim();
        let (date, time) = s.split_once([' ', 'T'])?;
        let mut d = date.split('-').map(|p| p.parse::<i64>());
        let (y, m, day) = (d.next()?.ok()?, d.next()?.ok()?, d.next()?.ok()?);
        let mut tp = time.split(':');
        let (hh, mm) = (
            tp.next()?.parse::<i64>().ok()?,
            tp.next()?.parse::<i64>().ok()?,
        );
        let ss: f64 = tp.next()?.parse().ok()?;
        // Days from civil (Howard Hinnant's algorithm).
        let y = if m <= 2 { y - 1 } else { y };
        let era = y.div_euclid(400);
        let yoe = y - era * 400;
        let mp = (m + 9) % 12;
        let doy = (153 * mp + 2) / 5 + day - 1;
        let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
        let days = era * 146_097 + doe - 719_468;
        Some((days * 86_400 + hh * 3600 + mm * 60) as f64 + ss)
    }

    fn scaled_sigmoid(x: f64) -> f64 {
        if x > 3.0 {
            -1.0
        } else {
            2.0 / (1.0 + (5.0 * x).exp()) - 1.0
        }
    }

    /// NAB standard profile (TP 1, FP 0.11, FN 1) raw score of one file.
    pub fn file_score(n: usize, windows: &[(usize, usize)], detections: &[usize]) -> f64 {
        let probation = ((0.15 * n as f64) as usize).min(750);
        let max_tp = scaled_sigmoid(-1.0);
        let mut tp = vec![f64::NAN; windows.len()];
        let mut fp = 0.0;
        for &i in detections.iter().filter(|&&i| i >= probation) {
            if let Some(w) = windows.iter().position(|&(s, e)| s <= i && i <= e) {
                let (s, e) = windows[w];
                let pos = -((e - i + 1) as f64) / (e - s + 1) as f64;
                let score = scaled_sigmoid(pos) / max_tp;
                if tp[w].is_nan() || score > tp[w] {
                    tp[w] = score;
                }
            } else if let Some(&(s, e)) = windows.iter().rev().find(|&&(_, e)| e < i) {
                let pos = (i - e) as f64 / ((e - s) as f64).max(1.0);
                fp += 0.11 * scaled_sigmoid(pos);
            } else {
                fp -= 0.11;
            }
        }
        tp.iter()
            .map(|&s| if s.is_nan() { -1.0 } else { s })
            .sum::<f64>()
            + fp
    }
}

/// With the defaults a baseline is a 232-byte struct and 384 bytes of
/// cells (profile codes, hour visits and the likelihood's 16 bytes:
/// jemalloc's 384-byte class, full), so the analysis processor's series
/// keeps its size class.
#[test]
fn a_default_baseline_keeps_its_size() {
    let b = Baseline::default();
    assert_eq!(size_of::<Baseline>(), 232);
    assert_eq!(b.memory_bytes(), 232 + 288 + 56 + 24 + 16);
}
