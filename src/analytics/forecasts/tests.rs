//! Forecaster tests: a linear ramp (trend models beat naive), a random
//! walk (naive is chosen), interval coverage on Gaussian noise, daily
//! seasonality, NaN and gaps, time to threshold, memory. Data comes from
//! SplitMix64, so every run sees the same values.

use super::*;

struct Rng(u64);

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

    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.open01(), self.open01());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

const T0: f64 = 1_700_000_000.0;
const STEP: f64 = 300.0;
/// Horizons in steps of the default configuration (5 m, 15 m, 1 h).
const STEPS: [usize; 3] = [1, 3, 12];

/// Runs the default forecaster (with a default baseline as its daily
/// shape, as the analysis processor does) over `v` at 5-minute steps and
/// returns, per horizon, (MAE of the chosen forecasts, MAE of naive,
/// coverage).
fn evaluate(v: &[f64], skip: usize) -> Vec<(f64, f64, f64)> {
    evaluate_with(v, skip).0
}

/// [`evaluate`], also returning the forecaster.
fn evaluate_with(v: &[f64], skip: usize) -> (Vec<(f64, f64, f64)>, Forecaster) {
    let mut f = Forecaster::default();
    let mut shape = crate::analytics::baselines::Baseline::default();
    let mut acc = [(0.0, 0.0, 0.0, 0.0); 3];
    for (i, &x) in v.iter().enumerate() {
        let t = T0 + i as f64 * STEP;
        shape.update(t, x);
        f.update_with(t, x, &shape);
        if i < skip {
            continue;
        }
        for (h, &k) in STEPS.iter().enumerate() {
            if let (Some(fc), Some(&y)) = (f.forecast(h), v.get(i + k)) {
                let a = &mut acc[h];
                a.0 += (fc.value - y).abs();
                a.1 += (x - y).abs();
                a.2 += f64::from(u8::from(fc.lower <= y && y <= fc.upper));
                a.3 += 1.0;
            }
        }
    }
    let stats = acc
        .iter()
        .map(|a| (a.0 / a.3, a.1 / a.3, a.2 / a.3))
        .collect();
    (stats, f)
}

#[test]
fn ramp_trend_models_beat_naive() {
    let mut rng = Rng(1);
    let v: Vec<f64> = (0..3000)
        .map(|i| 0.5 * i as f64 + 0.2 * rng.normal())
        .collect();
    let r = evaluate(&v, 500);
    for (h, &(mae, naive, _)) in r.iter().enumerate() {
        assert!(mae < 0.5 * naive, "horizon {h}: {mae} vs naive {naive}");
    }
    let mut f = Forecaster::default();
    for (i, &x) in v.iter().enumerate() {
        f.update(T0 + i as f64 * STEP, x);
    }
    for h in 0..3 {
        let m = f.chosen_model(h).unwrap();
        assert!(matches!(m, Model::Linear | Model::DampedHolt), "{h}: {m:?}");
    }
}

#[test]
fn random_walk_chooses_naive_and_is_not_worse() {
    let mut rng = Rng(2);
    let mut x = 100.0;
    let v: Vec<f64> = (0..5000)
        .map(|_| {
            x += rng.normal();
            x
        })
        .collect();
    let r = evaluate(&v, 500);
    for (h, &(mae, naive, _)) in r.iter().enumerate() {
        assert!(mae < 1.03 * naive, "horizon {h}: {mae} vs naive {naive}");
    }
    let mut f = Forecaster::default();
    for (i, &x) in v.iter().enumerate() {
        f.update(T0 + i as f64 * STEP, x);
    }
    let naive = f.tracked_error(0, Model::Naive).unwrap();
    let chosen = f.tracked_error(0, f.chosen_model(0).unwrap()).unwrap();
    assert!(chosen <= naive);
    assert!(
        chosen > 0.9 * naive,
        "no model can beat naive by much on a random walk"
    );
}

#[test]
fn intervals_cover_about_90_percent_on_gaussian_noise() {
    let mut rng = Rng(3);
    let v: Vec<f64> = (0..20_000).map(|_| 10.0 + rng.normal()).collect();
    let r = evaluate(&v, 1000);
    for (h, &(mae, naive, cov)) in r.iter().enumerate() {
        assert!((0.86..=0.94).contains(&cov), "horizon {h}: coverage {cov}");
        // Smoothing beats naive on white noise (naive MAE is √2 larger).
        assert!(mae < 0.85 * naive, "horizon {h}: {mae} vs {naive}");
    }
}

#[test]
fn daily_seasonality_uses_seasonal_naive_at_one_hour() {
    let mut rng = Rng(4);
    let v: Vec<f64> = (0..288 * 10)
        .map(|i| {
            let t = T0 + i as f64 * STEP;
            50.0 + 20.0 * (std::f64::consts::TAU * t / 86_400.0).sin() + 0.3 * rng.normal()
        })
        .collect();
    let (r, f) = evaluate_with(&v, 288 * 3);
    let (mae, naive, _) = r[2];
    assert!(mae < 0.6 * naive, "1 h: {mae} vs naive {naive}");
    assert_eq!(f.chosen_model(2), Some(Model::SeasonalNaive));
    // Without a daily shape the model never forecasts.
    let mut alone = Forecaster::default();
    for (i, &x) in v.iter().enumerate() {
        alone.update(T0 + i as f64 * STEP, x);
    }
    assert_eq!(alone.tracked_error(2, Model::SeasonalNaive), None);
    assert_ne!(alone.chosen_model(2), Some(Model::SeasonalNaive));
}

#[test]
fn nan_and_gaps_are_harmless() {
    let mut f = Forecaster::default();
    for i in 0..200 {
        let t = T0 + i as f64 * STEP;
        f.update(t, 5.0);
        f.update(t, f64::NAN);
        f.update(f64::NAN, 1.0);
        f.update(t - 1.0, 1e9); // late: ignored
    }
    // A one-day gap, then the same level.
    for i in 488..700 {
        f.update(T0 + i as f64 * STEP, 5.0);
    }
    for h in 0..3 {
        let fc = f.forecast(h).unwrap();
        assert!((fc.value - 5.0).abs() < 1e-9, "{fc:?}");
        assert!(fc.lower <= fc.value && fc.value <= fc.upper);
    }
}

#[test]
fn warm_up_then_forecasts() {
    let mut f = Forecaster::default();
    assert_eq!(f.forecast(0), None);
    assert_eq!(f.forecast(7), None);
    for i in 0..20 {
        f.update(T0 + i as f64 * STEP, i as f64);
    }
    assert!(f.forecast(0).is_some());
    assert!(
        f.forecast(2).is_none(),
        "1 h forecasts have not matured yet"
    );
}

#[test]
fn time_to_threshold_on_a_ramp() {
    let mut f = Forecaster::default();
    // 1 unit per minute, from 0.
    for i in 0..30 {
        f.update(T0 + i as f64 * 60.0, i as f64);
    }
    let eta = f.time_to_threshold(129.0).unwrap();
    // The fit's sums are f32: a few parts in ten million.
    assert!((eta - 6000.0).abs() < 6000.0 * 1e-6, "{eta}");
    assert_eq!(f.time_to_threshold(0.0), None, "moving away");
    assert_eq!(f.time_to_threshold(f64::NAN), None);
}

/// A one-off step from 50 to 500 toward a threshold of 1000 makes the
/// line steep for a while (its time to the threshold falls to minutes)
/// but never confirms the trend, at any spacing, noise or window; a ramp
/// to the same threshold is confirmed more than 15 minutes before it
/// crosses, and stays so: a ramp rising half its noise per point with
/// the default 12-point window, a quarter with 24 points.
#[test]
fn a_step_toward_a_threshold_is_never_confirmed_and_a_ramp_is() {
    for (spacing, noise, window) in [
        (15.0, 0.5, 12),
        (15.0, 5.0, 12),
        (60.0, 5.0, 12),
        (30.0, 20.0, 24),
        (15.0, 5.0, 48),
    ] {
        let config = || ForecastConfig {
            regression_points: window,
            ..Default::default()
        };
        let mut rng = Rng(17);
        let mut f = Forecaster::new(config());
        let mut soonest = f64::INFINITY;
        for i in 0..300 {
            let level = if i < 150 { 50.0 } else { 500.0 };
            f.update(T0 + i as f64 * spacing, level + noise * rng.normal());
            soonest = soonest.min(f.time_to_threshold(1000.0).unwrap_or(f64::INFINITY));
            assert_eq!(
                f.confirmed_time_to_threshold(1000.0),
                None,
                "step, every {spacing} s, noise {noise}, {window} points: point {i}, t {:?}",
                f.trend_standard_errors()
            );
        }
        if spacing < 60.0 && window == 12 {
            assert!(soonest < 900.0, "the step's line reached {soonest} s");
        }

        let mut rng = Rng(23);
        let mut f = Forecaster::new(config());
        let mut unconfirmed_last = 0.0;
        // 10 a minute from 50, crossing 1000 at 95 minutes.
        let minutes = |i: usize| i as f64 * spacing / 60.0;
        for i in 0.. {
            let v = 50.0 + 10.0 * minutes(i) + noise * rng.normal();
            f.update(T0 + i as f64 * spacing, v);
            if v >= 1000.0 {
                break;
            }
            let eta = f.time_to_threshold(1000.0);
            match f.confirmed_time_to_threshold(1000.0) {
                Some(confirmed) => assert_eq!(Some(confirmed), eta),
                None => unconfirmed_last = minutes(i),
            }
        }
        assert!(
            unconfirmed_last < 95.0 - 15.0,
            "ramp every {spacing} s, noise {noise}, {window} points: unconfirmed at {unconfirmed_last} min"
        );
    }
}

#[test]
fn memory_is_fixed_whatever_the_step() {
    // A horizon's state must not grow with h / Δt: 1 h at a 1 s step is
    // 3 600 steps, at 60 s 60.
    let fresh = Forecaster::default().memory_bytes();
    for step in [1.0, 10.0, 60.0] {
        let mut f = Forecaster::default();
        for i in 0..20_000 {
            f.update(T0 + i as f64 * step, (i % 17) as f64);
        }
        assert_eq!(f.memory_bytes(), fresh, "step {step}");
        assert!(
            f.forecast(2).is_some(),
            "step {step}: the 1 h horizon matured"
        );
    }
    assert!(fresh <= 2048, "{fresh} bytes");
}

#[test]
fn config_validation() {
    assert!(ForecastConfig::default().validate().is_ok());
    let none = ForecastConfig {
        horizons_secs: vec![],
        ..ForecastConfig::default()
    };
    assert_eq!(
        Forecaster::try_new(none.clone()).err(),
        Some(ForecastError::NoHorizons)
    );
    assert_eq!(Forecaster::new(none).horizons(), 3);
}

/// A state saved with one `max_pending` resumes under another: it
/// forecasts as it did, holds what a fresh state of the new size holds,
/// and keeps its oldest tracked forecasts, which mature and are scored
/// within the spacing they were made at.
#[test]
fn a_state_resumes_under_another_max_pending() {
    let config = |max_pending| ForecastConfig {
        max_pending,
        ..ForecastConfig::default()
    };
    let mut rng = Rng(31);
    let value = |i: usize, rng: &mut Rng| 100.0 + 0.05 * i as f64 + rng.normal();
    for (saved_at, resumed_at) in [(3, 2), (2, 3), (3, 1)] {
        let mut before = Forecaster::new(config(saved_at));
        let mut i = 0;
        while i < 400 {
            before.update(T0 + i as f64 * STEP, value(i, &mut rng));
            i += 1;
        }
        let bytes = postcard::to_allocvec(before.state()).expect("encode");
        let saved: SavedForecastState = postcard::from_bytes(&bytes).expect("decode");
        let settings = ForecastSettings::from(config(resumed_at));
        let mut after = saved.resume(&settings).expect("resumes");
        let fresh = ForecastState::new(&settings);
        assert_eq!(after.memory_bytes(), fresh.memory_bytes());
        for h in 0..3 {
            assert_eq!(
                after
                    .forecast(&settings, h)
                    .map(|f| (f.value, f.lower, f.upper, f.model)),
                before
                    .forecast(h)
                    .map(|f| (f.value, f.lower, f.upper, f.model)),
                "{saved_at} -> {resumed_at}, horizon {h}"
            );
        }
        // The 1 h horizon's oldest kept forecast matures within the
        // spacing it was tracked at (h / saved_at, 12 / saved_at steps);
        // emptied queues would score nothing for 12 steps.
        let error = |s: &ForecastState| s.tracked_error(2, Model::Naive);
        let at_resume = error(&after);
        let within = 12 / saved_at;
        let mut changed = false;
        for _ in 0..within {
            after.update(&settings, T0 + i as f64 * STEP, value(i, &mut rng));
            i += 1;
            changed |= error(&after) != at_resume;
        }
        assert!(
            changed,
            "{saved_at} -> {resumed_at}: nothing scored in {within} steps"
        );
    }
    // A state of other horizons starts afresh.
    let two_horizons = ForecastSettings::from(ForecastConfig {
        horizons_secs: vec![300.0, 900.0],
        ..ForecastConfig::default()
    });
    let three = ForecastState::new(&ForecastSettings::from(config(3)));
    let bytes = postcard::to_allocvec(&three).expect("encode");
    let saved: SavedForecastState = postcard::from_bytes(&bytes).expect("decode");
    assert!(saved.resume(&two_horizons).is_none());
}

/// The per-series state stays at 112 bytes (the analysis processor's
/// series is sized with it).
#[test]
fn a_forecast_state_is_112_bytes() {
    assert_eq!(size_of::<ForecastState>(), 112);
}

/// At the largest regression window (255 points, the ring's counters are
/// bytes) a series that goes flat after a ramp has a trend of exactly 0
/// at every point once the window holds only the flat part, however long
/// it stays flat.
#[test]
fn the_largest_window_keeps_a_flat_trend_exactly_zero() {
    let mut f = Forecaster::new(ForecastConfig {
        regression_points: 255,
        ..ForecastConfig::default()
    });
    assert_eq!(f.config().regression_points, 255);
    for i in 0..300 {
        f.update(T0 + i as f64 * 60.0, 0.37 * i as f64);
    }
    let flat = 0.37 * 299.0;
    for i in 300..1200 {
        f.update(T0 + i as f64 * 60.0, flat);
        if i >= 300 + 255 {
            assert_eq!(f.trend_per_sec(), Some(0.0), "point {i}");
        }
    }
}

/// A horizon forecasts once six of its tracked forecasts (two at a time,
/// half a horizon apart) have matured: the 1 h horizon's first forecast
/// comes after about three and a half horizons, not later.
#[test]
fn the_first_forecast_comes_after_three_and_a_half_horizons() {
    let mut f = Forecaster::default();
    let first = (0..200).find(|&i| {
        f.update(T0 + i as f64 * STEP, (i % 7) as f64);
        f.forecast(2).is_some()
    });
    // 12 steps a horizon: the sixth tracked forecast, made 2.5 horizons
    // after the first, matures 3.5 horizons (42 steps) in.
    let first = first.expect("the 1 h horizon forecasts");
    assert!(
        (40..=44).contains(&first),
        "first 1 h forecast at step {first}"
    );
}

/// Writes `analytics/testdata/forecast_state_fit.postcard`, the fixture
/// of `analytics::state_fixture`: run it after a deliberate change of the
/// wire format, with `STREAMGATE_WRITE_FIXTURE=1`.
#[test]
#[ignore]
fn write_the_forecast_state_fixture() {
    if std::env::var_os("STREAMGATE_WRITE_FIXTURE").is_none() {
        return;
    }
    let (_, f) = crate::analytics::state_fixture::fed(crate::analytics::state_fixture::PREFIX);
    let bytes = postcard::to_allocvec(f.state()).expect("encode");
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/src/analytics/testdata/forecast_state_fit.postcard"
    );
    std::fs::write(path, bytes).expect("write the fixture");
}
