//! Saved model states of an earlier build (`testdata/`), and the test that
//! they resume exactly: the durable state's wire format must not change
//! when a model's layout in memory does. The fixtures hold a default
//! [`Baseline`] and [`ForecastState`] fed [`PREFIX`] points of [`value`],
//! encoded with postcard as the analysis snapshot writes them.

use crate::analytics::baselines::Baseline;
use crate::analytics::forecasts::{ForecastSettings, ForecastState, Forecaster};

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
    let state: ForecastState =
        postcard::from_bytes(include_bytes!("testdata/forecast_state.postcard"))
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
