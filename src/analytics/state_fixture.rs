//! Saved model states of earlier builds (`testdata/`), and the tests that
//! they resume: the durable state's wire format must not change when a
//! model's layout in memory does. The fixtures hold a default
//! [`Baseline`] and forecaster state fed [`PREFIX`] points of [`value`],
//! encoded with postcard as the analysis snapshot writes them:
//! `forecast_state.postcard` from a build whose linear model kept a ring
//! of its last points, `forecast_state_fit.postcard` from one with the
//! discounted fit (written by `forecasts::tests::write_the_forecast_state_fixture`).

use crate::analytics::baselines::Baseline;
use crate::analytics::forecasts::{
    ForecastSettings, Forecaster, MODELS, Model, SavedForecastState,
};

/// Points fed before the fixtures were saved (three days at 5 minutes).
pub const PREFIX: usize = 864;
/// Points fed after resuming.
const CONTINUATION: usize = 600;
const T0: f64 = 1_700_000_000.0;
const STEP: f64 = 300.0;

/// Point `i` of the series: a daily cycle, a slow trend, deterministic
/// noise, and a burst now and then.
pub fn value(i: usize) -> (f64, f64) {
    let t = T0 + i as f64 * STEP;
    let phase = (i % 288) as f64 / 288.0 * std::f64::consts::TAU;
    let mut h = (i as u64).wrapping_mul(0x9e37_79b9_7f4a_7c15);
    h ^= h >> 29;
    let noise = (h % 1000) as f64 / 1000.0 - 0.5;
    let burst = if i % 397 < 4 { 25.0 } else { 0.0 };
    (
        t,
        100.0 + 20.0 * phase.sin() + 0.01 * i as f64 + 3.0 * noise + burst,
    )
}

/// A default baseline and forecaster fed the first `n` points.
pub fn fed(n: usize) -> (Baseline, Forecaster) {
    let mut b = Baseline::default();
    let mut f = Forecaster::default();
    for i in 0..n {
        let (t, v) = value(i);
        b.update(t, v);
        f.update_with(t, v, &b);
    }
    (b, f)
}

/// Both fixtures decode, resume under the default settings, and from
/// then on give exactly what models fed the whole series give: every
/// verdict of the baseline and every forecast.
#[test]
fn saved_states_of_an_earlier_build_resume_exactly() {
    let baseline: Baseline =
        postcard::from_bytes(include_bytes!("testdata/baseline.postcard")).expect("baseline");
    let state: SavedForecastState =
        postcard::from_bytes(include_bytes!("testdata/forecast_state_fit.postcard"))
            .expect("forecast state");
    let settings = ForecastSettings::default();
    let mut restored_b = baseline
        .resume(Baseline::default().config().clone().into())
        .expect("the baseline resumes");
    let mut restored_f = state.resume(&settings).expect("the forecast state resumes");
    let (mut b, mut f) = fed(PREFIX);
    let mut forecasts = 0;
    for i in PREFIX..PREFIX + CONTINUATION {
        let (t, v) = value(i);
        let (want, got) = (b.update(t, v), restored_b.update(t, v));
        assert_eq!(
            format!("{want:?}"),
            format!("{got:?}"),
            "verdict at point {i}"
        );
        f.update_with(t, v, &b);
        restored_f.update_with(&settings, t, v, &restored_b);
        for h in 0..f.horizons() {
            let (want, got) = (f.forecast(h), restored_f.forecast(&settings, h));
            assert_eq!(want, got, "forecast {h} at point {i}");
            forecasts += usize::from(got.is_some());
        }
    }
    assert!(
        forecasts > CONTINUATION,
        "forecasts were compared: {forecasts}"
    );
}

/// A forecaster state saved when the linear model kept a ring of its last
/// `regression_points` points resumes with the fit of those points: its
/// trend is the one a state fed only them has, and the other models'
/// tracked errors (which the linear model does not touch) go on exactly
/// as those of a state fed the whole series, at every point after.
#[test]
fn a_state_saved_with_a_regression_ring_resumes_with_its_fit() {
    let saved: SavedForecastState =
        postcard::from_bytes(include_bytes!("testdata/forecast_state.postcard"))
            .expect("forecast state");
    let settings = ForecastSettings::default();
    let mut restored = saved.resume(&settings).expect("the ring state resumes");
    let ring = settings.config().regression_points;
    let mut last_points = Forecaster::default();
    for i in PREFIX - ring..PREFIX {
        let (t, v) = value(i);
        last_points.update(t, v);
    }
    let (want, got) = (
        last_points.trend_per_sec().expect("a trend"),
        restored.trend_per_sec().expect("a trend"),
    );
    assert!(
        (want - got).abs() <= 1e-5 * want.abs(),
        "trend {got} against {want}"
    );
    let (mut b, mut f) = fed(PREFIX);
    for i in PREFIX..PREFIX + CONTINUATION {
        for h in 0..f.horizons() {
            for m in MODELS.into_iter().filter(|&m| m != Model::Linear) {
                assert_eq!(
                    f.tracked_error(h, m),
                    restored.tracked_error(h, m),
                    "{m:?} at horizon {h}, point {i}"
                );
            }
            assert!(restored.forecast(&settings, h).is_some(), "point {i}");
        }
        let (t, v) = value(i);
        b.update(t, v);
        f.update_with(t, v, &b);
        restored.update_with(&settings, t, v, &b);
    }
}
