//! Tests of the sketch (accuracy on uniform, log-normal and Pareto data
//! against exact sorted quantiles, merging, zero and negative values,
//! collapsing, counter widening, memory bounds) and of the windows
//! (expiry, sliding, rate, idleness, late values, allocation reuse, and
//! nested windows against windows that keep their own copies).
//!
//! Data comes from a small deterministic PRNG (SplitMix64), so every run
//! sees the same values.

use super::*;

/// SplitMix64: tiny, fast, and good enough to generate test data.
struct Rng(u64);

impl Rng {
    fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in (0, 1): never 0, so logs and powers are safe.
    fn open01(&mut self) -> f64 {
        ((self.next_u64() >> 11) as f64 + 0.5) / (1u64 << 53) as f64
    }

    /// Standard normal (Box–Muller).
    fn normal(&mut self) -> f64 {
        let (u1, u2) = (self.open01(), self.open01());
        (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
    }
}

const N: usize = 100_000;
const QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];
/// The proven bound for the default accuracy, plus float rounding.
const BOUND: f64 = DEFAULT_RELATIVE_ACCURACY + 1e-12;

fn uniform(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n).map(|_| rng.open01() * 1000.0).collect()
}

/// Latency-like: median 50 ms, σ = 1 in log space.
fn log_normal(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| (0.05f64.ln() + rng.normal()).exp())
        .collect()
}

/// Pareto with scale 1 ms and shape 1.1: a heavy tail (infinite variance).
fn pareto(rng: &mut Rng, n: usize) -> Vec<f64> {
    (0..n)
        .map(|_| 1e-3 / rng.open01().powf(1.0 / 1.1))
        .collect()
}

fn sketch_of(values: &[f64]) -> Sketch {
    let mut sketch = Sketch::default();
    for &v in values {
        sketch.add(v);
    }
    sketch
}

fn sorted(values: &[f64]) -> Vec<f64> {
    let mut sorted = values.to_vec();
    sorted.sort_by(f64::total_cmp);
    sorted
}

/// The exact value of the rank the sketch answers for.
fn exact(sorted: &[f64], q: f64) -> f64 {
    sorted[(q * (sorted.len() - 1) as f64).floor() as usize]
}

fn relative_error(estimate: f64, exact: f64) -> f64 {
    if exact == 0.0 {
        estimate.abs()
    } else {
        ((estimate - exact) / exact).abs()
    }
}

/// Asserts the 1 % promise for the required quantiles and the proven bound
/// on a grid of 1001 quantiles.
fn assert_accurate(values: &[f64], sketch: &Sketch) {
    let sorted = sorted(values);
    for q in QUANTILES {
        let (got, want) = (sketch.quantile(q).unwrap(), exact(&sorted, q));
        let err = relative_error(got, want);
        assert!(err <= 0.01, "q={q}: {got} vs exact {want} ({err})");
    }
    for i in 0..=1000 {
        let q = f64::from(i) / 1000.0;
        let (got, want) = (sketch.quantile(q).unwrap(), exact(&sorted, q));
        let err = relative_error(got, want);
        assert!(err <= BOUND, "q={q}: {got} vs exact {want} ({err})");
    }
    assert_eq!(sketch.count(), values.len() as u64);
    assert_eq!(sketch.min(), sorted.first().copied());
    assert_eq!(sketch.max(), sorted.last().copied());
}

/// Uniform values in (0, 1000): every quantile within 1 % (and 0.5 %).
#[test]
fn uniform_quantiles_are_within_one_percent() {
    let values = uniform(&mut Rng(1), N);
    assert_accurate(&values, &sketch_of(&values));
}

/// Log-normal latencies: every quantile within 1 % (and 0.5 %).
#[test]
fn log_normal_quantiles_are_within_one_percent() {
    let values = log_normal(&mut Rng(2), N);
    assert_accurate(&values, &sketch_of(&values));
}

/// Heavy-tailed Pareto values spanning many decades: every quantile within
/// 1 % (and 0.5 %), the tail included.
#[test]
fn pareto_quantiles_are_within_one_percent() {
    let values = pareto(&mut Rng(3), N);
    assert_accurate(&values, &sketch_of(&values));
}

/// Merging sketches of two halves gives the same answers as one sketch of
/// everything, whichever sketch the other is merged into.
#[test]
fn merge_of_halves_equals_sketch_of_all() {
    let mut rng = Rng(4);
    let mut values = log_normal(&mut rng, N / 2);
    values.extend(pareto(&mut rng, N / 2).iter().map(|v| -v));
    values.extend([0.0; 100]);
    let all = sketch_of(&values);
    let (a, b) = values.split_at(values.len() / 3);
    for (first, second) in [(a, b), (b, a)] {
        let mut merged = sketch_of(first);
        merged.merge(&sketch_of(second));
        assert_eq!(merged.count(), all.count());
        assert_eq!(merged.min(), all.min());
        assert_eq!(merged.max(), all.max());
        assert!(relative_error(merged.sum(), all.sum()) < 1e-9);
        for i in 0..=1000 {
            let q = f64::from(i) / 1000.0;
            assert_eq!(merged.quantile(q), all.quantile(q), "q={q}");
        }
        assert_accurate(&values, &merged);
    }
}

/// Merging an empty sketch changes nothing, and merging into an empty one
/// copies.
#[test]
fn merge_with_empty_sketches() {
    let values = uniform(&mut Rng(5), 1000);
    let full = sketch_of(&values);
    let mut into_full = full.clone();
    into_full.merge(&Sketch::default());
    let mut into_empty = Sketch::default();
    into_empty.merge(&full);
    for q in QUANTILES {
        assert_eq!(into_full.quantile(q), full.quantile(q));
        assert_eq!(into_empty.quantile(q), full.quantile(q));
    }
}

/// A sketch of another accuracy merges approximately: errors add up to
/// about the sum of both accuracies.
#[test]
fn merge_of_different_accuracies_is_approximate() {
    let values = log_normal(&mut Rng(6), N);
    let mut coarse = Sketch::new(0.01, 2048);
    for &v in &values {
        coarse.add(v);
    }
    let mut fine = Sketch::default();
    fine.merge(&coarse);
    assert_eq!(fine.count(), values.len() as u64);
    let sorted = sorted(&values);
    for q in QUANTILES {
        let err = relative_error(fine.quantile(q).unwrap(), exact(&sorted, q));
        assert!(err <= 0.015 + 1e-9, "q={q}: {err}");
    }
}

/// Zeros and negative values: ranks run from the most negative value
/// through the zeros to the largest, zeros come back as exactly 0, and
/// negative quantiles keep the relative bound.
#[test]
fn zero_and_negative_values() {
    let mut rng = Rng(7);
    let mut values: Vec<f64> = log_normal(&mut rng, N / 2).iter().map(|v| -v).collect();
    values.extend(uniform(&mut rng, N / 4));
    values.extend(std::iter::repeat_n(0.0, N / 4));
    values.push(-0.0);
    let sketch = sketch_of(&values);
    assert_accurate(&values, &sketch);
    assert_eq!(sketch.quantile(0.6), Some(0.0));
    assert!(sketch.quantile(0.25).unwrap() < 0.0);
    assert!(sketch.quantile(0.9).unwrap() > 0.0);

    let mut negatives = Sketch::default();
    negatives.add(-2.0);
    negatives.add(-1.0);
    assert_eq!(negatives.quantile(0.0), Some(-2.0));
    assert_eq!(negatives.quantile(1.0), Some(-1.0));
    assert!(relative_error(negatives.quantile(0.4).unwrap(), -2.0) <= BOUND);
}

/// NaN and infinities are counted nowhere; `add_n` with `n = 0` does
/// nothing; extremes of the f64 range (subnormals, ±MAX) are handled.
#[test]
fn non_finite_values_are_ignored_and_extremes_work() {
    let mut sketch = Sketch::default();
    for v in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        sketch.add(v);
    }
    sketch.add_n(1.0, 0);
    assert!(sketch.is_empty());
    assert_eq!(sketch.quantile(0.5), None);
    assert_eq!((sketch.min(), sketch.max()), (None, None));

    let mut extremes = Sketch::default();
    for v in [
        f64::from_bits(1),
        f64::MIN_POSITIVE,
        f64::MAX,
        -f64::MAX,
        -f64::from_bits(1),
    ] {
        extremes.add(v);
    }
    assert_eq!(extremes.count(), 5);
    assert_eq!(extremes.quantile(0.0), Some(-f64::MAX));
    assert_eq!(extremes.quantile(1.0), Some(f64::MAX));
    for i in 0..=10 {
        let q = extremes.quantile(f64::from(i) / 10.0).unwrap();
        assert!(q.is_finite());
    }
}

/// Quantiles outside [0, 1] (and NaN) have no answer.
#[test]
fn quantile_outside_unit_interval_is_none() {
    let sketch = sketch_of(&[1.0, 2.0, 3.0]);
    for q in [-0.1, 1.1, f64::NAN] {
        assert_eq!(sketch.quantile(q), None);
    }
    assert_eq!(sketch.quantile(0.0), Some(1.0));
    assert_eq!(sketch.quantile(1.0), Some(3.0));
}

/// `add_n(v, n)` is the same as `n` times `add(v)`.
#[test]
fn add_n_equals_repeated_add() {
    let mut rng = Rng(8);
    let mut once = Sketch::default();
    let mut repeated = Sketch::default();
    for _ in 0..1000 {
        let v = rng.open01() * 100.0 - 20.0;
        let n = rng.next_u64() % 5;
        once.add_n(v, n);
        for _ in 0..n {
            repeated.add(v);
        }
    }
    assert_eq!(once.count(), repeated.count());
    assert!(relative_error(once.sum(), repeated.sum()) < 1e-9);
    for i in 0..=100 {
        let q = f64::from(i) / 100.0;
        assert_eq!(once.quantile(q), repeated.quantile(q));
    }
}

/// Counters widen from 8 to 16 to 32 to 64 bits when a bin would
/// overflow, by adding or by merging, and counts stay exact.
#[test]
fn counters_widen_without_losing_counts() {
    let mut sketch = Sketch::default();
    let small = sketch.memory_bytes();
    sketch.add_n(1.0, 60_000);
    sketch.add_n(2.0, 1);
    let mut other = sketch.clone();
    sketch.merge(&other); // 120 000 in one bin: past 16 bits
    assert!(sketch.memory_bytes() > small);
    other.add_n(1.0, 5_000_000_000); // past 32 bits
    sketch.merge(&other);
    assert_eq!(sketch.count(), 120_002 + 60_001 + 5_000_000_000);
    assert!(relative_error(sketch.quantile(0.999_999).unwrap(), 1.0) <= BOUND);
    assert_eq!(sketch.quantile(1.0), Some(2.0));
}

/// Past `max_bins` the lowest values fold into the lowest bin kept: high
/// quantiles keep the bound, low ones are over-estimated but never above
/// the maximum; the same on the negative side, where the most negative
/// values fold. Memory stays within the bound.
#[test]
fn collapsing_keeps_high_quantiles_accurate() {
    let mut rng = Rng(9);
    // Magnitudes over e^0..e^20; 256 bins of 0.5 % keep the top e^2.56.
    let magnitudes: Vec<f64> = (0..N).map(|_| (20.0 * rng.open01()).exp()).collect();
    for sign in [1.0, -1.0] {
        let values: Vec<f64> = magnitudes.iter().map(|m| sign * m).collect();
        let mut sketch = Sketch::new(DEFAULT_RELATIVE_ACCURACY, 256);
        for &v in &values {
            sketch.add(v);
        }
        assert!(sketch.memory_bytes() <= Sketch::memory_bound(256));
        let sorted = sorted(&values);
        let accurate: &[f64] = if sign > 0.0 {
            &[0.9, 0.95, 0.99, 0.999]
        } else {
            &[0.001, 0.01, 0.05, 0.1]
        };
        let folded: &[f64] = if sign > 0.0 {
            &[0.001, 0.1, 0.5]
        } else {
            &[0.5, 0.9, 0.999]
        };
        for &q in accurate {
            // On the negative side the accurate values are near zero.
            let q = if sign > 0.0 { q } else { 1.0 - q };
            let err = relative_error(sketch.quantile(q).unwrap(), exact(&sorted, q));
            assert!(err <= BOUND, "sign {sign} q={q}: {err}");
        }
        for &q in folded {
            let q = if sign > 0.0 { q } else { 1.0 - q };
            let got = sketch.quantile(q).unwrap();
            assert!(
                got >= exact(&sorted, q) && got <= sketch.max().unwrap(),
                "sign {sign} q={q}"
            );
        }
        assert_eq!(sketch.count(), N as u64);
    }
}

/// `clear` empties the sketch but keeps its allocations.
#[test]
fn clear_keeps_allocations() {
    let values = log_normal(&mut Rng(10), 10_000);
    let mut sketch = sketch_of(&values);
    let bytes = sketch.memory_bytes();
    sketch.clear();
    assert!(sketch.is_empty());
    assert_eq!(sketch.quantile(0.5), None);
    assert_eq!(sketch.sum(), 0.0);
    assert_eq!(sketch.memory_bytes(), bytes);
    for &v in &values {
        sketch.add(v);
    }
    assert_eq!(sketch.memory_bytes(), bytes);
    assert_accurate(&values, &sketch);
}

/// A million distinct values over the whole f64 range, both signs, stay
/// within the documented bound.
#[test]
fn sketch_memory_is_bounded() {
    let mut rng = Rng(11);
    let mut sketch = Sketch::default();
    for i in 0..1_000_000 {
        let magnitude = (1400.0 * rng.open01() - 700.0).exp();
        sketch.add(if i % 2 == 0 { magnitude } else { -magnitude });
    }
    assert_eq!(sketch.count(), 1_000_000);
    let bound = Sketch::memory_bound(DEFAULT_MAX_BINS);
    assert!(
        sketch.memory_bytes() <= bound,
        "{} > {bound}",
        sketch.memory_bytes()
    );
    // The folded edge bins hold most values, so counters went to 32 bits:
    // 2 signs × 2048 bins × 4 bytes + the struct.
    assert!(sketch.memory_bytes() <= 2 * 2048 * 4 + size_of::<Sketch>());
}

/// Bad parameters: the `try_new`s and `validate`s reject them with a
/// message, the plain constructors clamp.
#[test]
fn parameters_are_validated_or_clamped() {
    assert!(matches!(
        Sketch::try_new(0.0, 2048),
        Err(AggregationError::RelativeAccuracy(_))
    ));
    assert!(matches!(
        Sketch::try_new(f64::NAN, 2048),
        Err(AggregationError::RelativeAccuracy(_))
    ));
    assert!(matches!(
        Sketch::try_new(0.01, 1),
        Err(AggregationError::MaxBins(1))
    ));
    assert!(Sketch::try_new(0.01, 1024).is_ok());
    let clamped = Sketch::new(2.0, 0);
    assert_eq!(clamped.relative_accuracy(), MAX_RELATIVE_ACCURACY);
    assert_eq!(clamped.max_bins(), MIN_MAX_BINS);
    assert_eq!(
        Sketch::new(f64::NAN, 2048).relative_accuracy(),
        DEFAULT_RELATIVE_ACCURACY
    );

    for bad in [
        WindowSpec::new(0, 10),
        WindowSpec::new(60, 0),
        WindowSpec::new(1, 7),
        WindowSpec::new(60, 5000),
    ] {
        let err = bad.validate().unwrap_err();
        assert!(matches!(err, AggregationError::Window { .. }), "{bad:?}");
        assert!(!err.to_string().is_empty());
    }
    assert!(WindowSpec::new(300, 10).validate().is_ok());
    assert_eq!(
        WindowedStats::try_new(&[], 0.005, 2048).unwrap_err(),
        AggregationError::NoWindows
    );
    assert!(WindowedStats::try_new(&[WindowSpec::new(60, 0)], 0.005, 2048).is_err());

    // Clamped windows still work: 1 s in (at most) 1000 sub-buckets of 1 ms.
    let mut stats = WindowedStats::new(
        &[WindowSpec::new(0, 0), WindowSpec::new(1, 4096)],
        0.005,
        2048,
    );
    stats.observe(1_000, 1.0);
    let mut out = Vec::new();
    stats.summaries(1_000, &[0.5], &mut out);
    assert_eq!(out.len(), 2);
    assert!(out.iter().all(|s| s.count == 1 && s.length_secs == 1));
}

// ---- windows ----

const MINUTE: u64 = 60_000;
/// A Unix time aligned to 5 minutes (and so to every sub-bucket below).
const T0: u64 = 1_700_000_100_000 - 1_700_000_100_000 % (5 * MINUTE);

fn one_and_five_minutes() -> WindowedStats {
    WindowedStats::new(
        &[WindowSpec::new(60, 10), WindowSpec::new(300, 10)],
        DEFAULT_RELATIVE_ACCURACY,
        DEFAULT_MAX_BINS,
    )
}

fn summaries(stats: &mut WindowedStats, now_ms: u64) -> Vec<WindowSummary> {
    let mut out = Vec::new();
    stats.summaries(now_ms, &QUANTILES, &mut out);
    out
}

fn counts(stats: &mut WindowedStats, now_ms: u64) -> Vec<u64> {
    summaries(stats, now_ms).iter().map(|s| s.count).collect()
}

/// Values observed at different times leave the 1 m window after a minute
/// and stay in the 5 m one until five minutes have passed.
#[test]
fn values_fall_out_of_the_short_window_first() {
    let mut stats = one_and_five_minutes();
    stats.observe(T0, 1.0);
    stats.observe(T0 + 30_000, 2.0);
    assert_eq!(counts(&mut stats, T0 + 30_000), [2, 2]);

    let at_one_minute = summaries(&mut stats, T0 + MINUTE);
    assert_eq!(at_one_minute[0].count, 1);
    assert_eq!(at_one_minute[0].min, Some(2.0));
    assert_eq!(at_one_minute[1].count, 2);

    let later = summaries(&mut stats, T0 + 90_000);
    assert_eq!(
        (later[0].count, later[0].min, later[0].mean),
        (0, None, None)
    );
    assert!(later[0].quantiles.is_empty());
    assert_eq!(later[1].count, 2);
    assert_eq!(later[1].mean, Some(1.5));
    assert_eq!(later[1].quantiles.len(), QUANTILES.len());

    assert_eq!(counts(&mut stats, T0 + 5 * MINUTE), [0, 1]);
    assert_eq!(counts(&mut stats, T0 + 5 * MINUTE + 30_000), [0, 0]);
}

/// Wherever a value falls inside its sub-bucket, it stays in a window at
/// least `L − w` and leaves no later than `L` after it was observed.
#[test]
fn a_value_stays_between_length_minus_width_and_length() {
    let mut rng = Rng(12);
    for _ in 0..200 {
        let t = T0 + rng.next_u64() % (10 * MINUTE);
        let mut stats = one_and_five_minutes();
        stats.observe(t, 5.0);
        assert_eq!(counts(&mut stats, t), [1, 1]);
        assert_eq!(counts(&mut stats, t + MINUTE - 6_000), [1, 1], "t={t}");
        assert_eq!(counts(&mut stats, t + MINUTE), [0, 1], "t={t}");
        assert_eq!(counts(&mut stats, t + 5 * MINUTE - 30_000), [0, 1], "t={t}");
        assert_eq!(counts(&mut stats, t + 5 * MINUTE), [0, 0], "t={t}");
    }
}

/// The window slides one sub-bucket at a time: with one value per
/// sub-bucket, each step forward drops exactly the oldest value.
#[test]
fn window_slides_sub_bucket_by_sub_bucket() {
    let w = 6_000;
    let mut stats = one_and_five_minutes();
    for i in 0..10u32 {
        stats.observe(T0 + u64::from(i) * w + 1_234, f64::from(i + 1));
    }
    let full = summaries(&mut stats, T0 + 9 * w + 5_000);
    assert_eq!(
        (full[0].count, full[0].min, full[0].max),
        (10, Some(1.0), Some(10.0))
    );
    for step in 1..=10u32 {
        let now = T0 + (9 + u64::from(step)) * w;
        for offset in [0, w / 2, w - 1] {
            let s = &summaries(&mut stats, now + offset)[0];
            assert_eq!(s.count, u64::from(10 - step), "step {step}");
            let min = (step < 10).then_some(f64::from(step + 1));
            assert_eq!(s.min, min, "step {step}");
            assert_eq!(s.sum, (step + 1..=10).map(f64::from).sum::<f64>());
        }
    }
    assert_eq!(counts(&mut stats, T0 + 19 * w), [0, 10]);
}

/// A steady 10 values/s reads as 10/s in every window at every moment,
/// across sub-bucket roll-overs, within 0.5 %.
#[test]
fn rate_of_steady_traffic_is_right() {
    let mut stats = one_and_five_minutes();
    let mut out = Vec::new();
    let mut t = T0 + 777;
    let end = T0 + 10 * MINUTE;
    while t <= end {
        stats.observe(t, 1.0);
        if t > T0 + 5 * MINUTE + 777 && (t - 777).is_multiple_of(1_000) {
            stats.summaries(t, &[], &mut out);
            for s in &out {
                assert!((s.rate_per_sec - 10.0).abs() / 10.0 < 0.005, "t={t}: {s:?}");
            }
        }
        t += 100;
    }
}

/// A new series' rate is its count over the time since its first value,
/// not over the whole window, but never over less than one sub-bucket.
#[test]
fn rate_of_a_new_series_uses_its_age() {
    let mut stats = one_and_five_minutes();
    stats.observe(T0 + 500, 1.0);
    let first = summaries(&mut stats, T0 + 500);
    assert_eq!(first[0].rate_per_sec, 1.0 / 6.0);
    assert_eq!(first[1].rate_per_sec, 1.0 / 30.0);
    for i in 1..=200 {
        stats.observe(T0 + 500 + i * 100, 1.0);
    }
    let young = summaries(&mut stats, T0 + 20_500);
    assert_eq!(young[0].count, 201);
    assert!(
        (young[0].rate_per_sec - 10.05).abs() < 1e-9,
        "{:?}",
        young[0]
    );
    // 20 s is less than the 5 m window's 30 s sub-bucket: the floor holds.
    assert_eq!(young[1].count, 201);
    assert!(
        (young[1].rate_per_sec - 201.0 / 30.0).abs() < 1e-9,
        "{:?}",
        young[1]
    );
    // Nothing new for a while: the short window's rate decays to 0.
    let quiet = summaries(&mut stats, T0 + 2 * MINUTE);
    assert_eq!(quiet[0].rate_per_sec, 0.0);
    assert!((quiet[1].rate_per_sec - 201.0 / 119.5).abs() < 1e-9);
}

/// A series is idle when nothing has been observed or the newest value has
/// left even the longest window.
#[test]
fn idle_detection() {
    let mut stats = one_and_five_minutes();
    assert!(stats.is_idle(T0));
    stats.observe(T0 + 10, 3.0);
    assert!(!stats.is_idle(T0 + 10));
    assert!(!stats.is_idle(T0 + 2 * MINUTE));
    assert!(!stats.is_idle(T0 + 5 * MINUTE - 1));
    assert!(stats.is_idle(T0 + 5 * MINUTE));
    assert_eq!(counts(&mut stats, T0 + 5 * MINUTE), [0, 0]);
    stats.observe(T0 + 6 * MINUTE, 3.0);
    assert!(!stats.is_idle(T0 + 6 * MINUTE));
}

/// Out-of-order values still in a window's ring land in their sub-bucket;
/// older ones are dropped from that window, and counted as late when no
/// window could take them. NaN is neither observed nor late.
#[test]
fn late_values_are_dropped_and_counted() {
    let mut stats = one_and_five_minutes();
    stats.observe(T0 + 10 * MINUTE, 1.0);
    stats.observe(T0 + 10 * MINUTE - 40_000, 2.0); // in both rings
    assert_eq!(counts(&mut stats, T0 + 10 * MINUTE), [2, 2]);
    stats.observe(T0 + 10 * MINUTE - 3 * MINUTE, 3.0); // 5 m ring only
    assert_eq!(counts(&mut stats, T0 + 10 * MINUTE), [2, 3]);
    assert_eq!(stats.late_observations(), 0);
    stats.observe(T0, 4.0); // older than both rings
    stats.observe_n(T0 + MINUTE, 4.0, 3);
    stats.observe(T0, f64::NAN);
    assert_eq!(stats.late_observations(), 4);
    assert_eq!(counts(&mut stats, T0 + 10 * MINUTE), [2, 3]);
    // A slot reused by a newer sub-bucket no longer holds the old values.
    stats.observe(T0 + 15 * MINUTE + 10, 5.0);
    let s = summaries(&mut stats, T0 + 15 * MINUTE + 10);
    assert_eq!((s[1].count, s[1].min), (1, Some(5.0)));
}

/// Summaries asked for into the same `out` reuse its entries and the
/// scratch sketch: no new allocations, same answers.
#[test]
fn summaries_reuse_their_buffers() {
    let mut stats = WindowedStats::new(
        &standard_specs(),
        DEFAULT_RELATIVE_ACCURACY,
        DEFAULT_MAX_BINS,
    );
    let mut rng = Rng(13);
    for i in 0..100_000u64 {
        stats.observe(T0 + i * 500, (0.05f64.ln() + rng.normal()).exp());
    }
    let now = T0 + 100_000 * 500;
    let mut out = Vec::new();
    stats.summaries(now, &QUANTILES, &mut out);
    let first = out.clone();
    let pointers: Vec<_> = out.iter().map(|s| s.quantiles.as_ptr()).collect();
    let bytes = stats.memory_bytes();
    stats.summaries(now, &QUANTILES, &mut out);
    assert_eq!(out, first);
    assert_eq!(
        out.iter().map(|s| s.quantiles.as_ptr()).collect::<Vec<_>>(),
        pointers
    );
    assert_eq!(stats.memory_bytes(), bytes);
    assert_eq!(out.len(), 5);
    assert_eq!(
        out.iter().map(|s| s.length_secs).collect::<Vec<_>>(),
        [60, 300, 900, 3600, 86_400]
    );
    // Invalid quantiles are skipped; order is the caller's.
    stats.summaries(now, &[0.99, 2.0, 0.5], &mut out);
    assert_eq!(
        out[4].quantiles.iter().map(|q| q.0).collect::<Vec<_>>(),
        [0.99, 0.5]
    );
}

/// Windowed quantiles keep the sketch's bound: the 1 h window of
/// log-normal data against the exact values it should hold.
#[test]
fn windowed_quantiles_are_accurate() {
    let mut stats = WindowedStats::new(
        &standard_specs(),
        DEFAULT_RELATIVE_ACCURACY,
        DEFAULT_MAX_BINS,
    );
    let values = log_normal(&mut Rng(14), N);
    // One value every 72 ms: 100k values over two hours.
    for (i, &v) in values.iter().enumerate() {
        stats.observe(T0 + i as u64 * 72, v);
    }
    let now = T0 + (N as u64 - 1) * 72;
    let out = summaries(&mut stats, now);
    let hour = &out[3];
    let start = (now / 360_000 - 9) * 360_000;
    let in_window: Vec<f64> = values
        .iter()
        .enumerate()
        .filter(|(i, _)| T0 + *i as u64 * 72 >= start)
        .map(|(_, &v)| v)
        .collect();
    assert_eq!(hour.count, in_window.len() as u64);
    let sorted = sorted(&in_window);
    for &(q, got) in &hour.quantiles {
        assert!(relative_error(got, exact(&sorted, q)) <= BOUND, "q={q}");
    }
    assert_eq!(out[4].count, N as u64);
}

fn standard_specs() -> [WindowSpec; 5] {
    [60, 300, 900, 3600, 86_400].map(|secs| WindowSpec::new(secs, 10))
}

/// A million distinct values over two days, spread over the whole f64
/// range, keep a five-window stats object within its documented bound.
#[test]
fn windowed_memory_is_bounded() {
    let specs = standard_specs();
    let mut stats = WindowedStats::new(&specs, DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS);
    let mut rng = Rng(15);
    for i in 0..1_000_000u64 {
        let magnitude = (1400.0 * rng.open01() - 700.0).exp();
        stats.observe(
            T0 + i * 173,
            if i % 2 == 0 { magnitude } else { -magnitude },
        );
    }
    let mut out = Vec::new();
    stats.summaries(T0 + 1_000_000 * 173, &QUANTILES, &mut out);
    let bound = WindowedStats::memory_bound(&specs, DEFAULT_MAX_BINS);
    assert!(
        stats.memory_bytes() <= bound,
        "{} > {bound}",
        stats.memory_bytes()
    );
}

// ---- the bin store against a reference model ----

use std::collections::BTreeMap;

use super::store::{Collapse, Store};

/// What a store must hold after the given `(key, count)` adds: every key
/// moved to the edge kept by `max_bins` (a fold is the same whenever it
/// happens, because the edge only moves inwards).
fn reference(adds: &[(i64, u64)], max_bins: i64, collapse: Collapse) -> BTreeMap<i64, u64> {
    let mut bins = BTreeMap::new();
    let (Some(lo), Some(hi)) = (
        adds.iter().map(|a| a.0).min(),
        adds.iter().map(|a| a.0).max(),
    ) else {
        return bins;
    };
    for &(key, n) in adds {
        let key = match collapse {
            _ if hi - lo < max_bins => key,
            Collapse::Lowest => key.max(hi - max_bins + 1),
            Collapse::Highest => key.min(lo + max_bins - 1),
        };
        *bins.entry(key).or_insert(0) += n;
    }
    bins
}

fn contents(store: &Store) -> BTreeMap<i64, u64> {
    let mut bins = BTreeMap::new();
    store.for_each(|key, n| {
        bins.insert(key, n);
    });
    bins
}

/// Random adds that wander, jump, and pile up: builds `(key, count)`s.
fn wandering_adds(rng: &mut Rng, len: usize) -> Vec<(i64, u64)> {
    let mut centre = 0i64;
    (0..len)
        .map(|_| {
            match rng.next_u64() % 50 {
                0 => centre += (rng.next_u64() % 400) as i64 - 200,
                1 => centre += (rng.next_u64() % 20) as i64 - 10,
                _ => {}
            }
            let key = centre + (rng.next_u64() % 16) as i64 - 8;
            let n = match rng.next_u64() % 100 {
                0 => 70_000,
                1 => 5_000_000_000,
                _ => 1 + rng.next_u64() % 3,
            };
            (key, n)
        })
        .collect()
}

/// The store (shifting, growing, folding, widening, merging, clearing)
/// always holds exactly what the reference model says, and finds every
/// rank in the right bin.
#[test]
fn store_matches_reference_model() {
    let mut rng = Rng(16);
    for round in 0..300 {
        let max_bins = [16usize, 40, 100, 1000][round % 4];
        let collapse = if round % 2 == 0 {
            Collapse::Lowest
        } else {
            Collapse::Highest
        };
        let len = 1 + (rng.next_u64() % 400) as usize;
        let a = wandering_adds(&mut rng, len);
        let b = wandering_adds(&mut rng, len / 2);

        let mut left = Store::new(max_bins, collapse);
        let mut right = Store::new(max_bins, collapse);
        if round % 3 == 0 {
            // Start from a cleared, already allocated store.
            for &(key, n) in &b {
                left.add(key + 1000, n);
            }
            left.clear();
        }
        for &(key, n) in &a {
            left.add(key, n);
        }
        let expected = reference(&a, max_bins as i64, collapse);
        assert_eq!(contents(&left), expected, "round {round}");
        for &(key, n) in &b {
            right.add(key, n);
        }
        left.merge(&right);
        let all: Vec<(i64, u64)> = a.iter().chain(&b).copied().collect();
        let expected = reference(&all, max_bins as i64, collapse);
        assert_eq!(contents(&left), expected, "round {round} after merge");
        assert!(left.heap_bytes() <= max_bins * 8);

        let total: u64 = expected.values().sum();
        assert_eq!(left.total(), total);
        for _ in 0..20 {
            let rank = rng.next_u64() % total;
            let mut seen = 0;
            let want = expected
                .iter()
                .find(|&(_, &n)| {
                    seen += n;
                    seen > rank
                })
                .map(|(&key, _)| key);
            assert_eq!(
                left.key_at_rank(rank, true),
                want,
                "round {round} rank {rank}"
            );
            let mut seen = 0;
            let want = expected
                .iter()
                .rev()
                .find(|&(_, &n)| {
                    seen += n;
                    seen > rank
                })
                .map(|(&key, _)| key);
            assert_eq!(
                left.key_at_rank(rank, false),
                want,
                "round {round} rank {rank} desc"
            );
        }
        assert_eq!(left.key_at_rank(total, true), None);
    }
}

/// `clear_to_fit` gives back the bins a sketch's last values spanned less
/// than half of, and keeps an allocation they filled; either way the
/// sketch is empty and takes new values as a fresh one does.
#[test]
fn clear_to_fit_shrinks_only_what_the_last_values_left_unused() {
    let wide = log_normal(&mut Rng(11), 10_000);
    let mut sketch = sketch_of(&wide);
    let full = sketch.memory_bytes();
    // Refilled with much the same spread: the allocation stays.
    sketch.clear_to_fit();
    assert!(sketch.is_empty());
    assert_eq!(sketch.memory_bytes(), full);
    // A narrow period in an allocation sized for the wide one: given back.
    for v in [0.050, 0.051, 0.052] {
        sketch.add(v);
    }
    sketch.clear_to_fit();
    assert!(sketch.is_empty());
    assert_eq!(sketch.quantile(0.5), None);
    let empty = sketch.memory_bytes();
    assert!(empty < full / 4, "{empty} of {full}");
    // And it works as a fresh sketch afterwards.
    for &v in &wide {
        sketch.add(v);
    }
    let fresh = sketch_of(&wide);
    for q in [0.5, 0.95, 0.99] {
        assert_eq!(sketch.quantile(q), fresh.quantile(q));
    }
}

/// A series that goes quiet gives back each sub-bucket's sketch once it
/// has left its window, and what its windows still show is unchanged; a
/// fresh one holds no sketch at all.
#[test]
fn a_quiet_series_keeps_only_the_sketches_its_windows_show() {
    let specs = standard_specs();
    let mut stats = WindowedStats::new(&specs, DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS);
    let fresh = stats.memory_bytes();
    let values = log_normal(&mut Rng(16), 20_000);
    // A 20 s burst, then nothing.
    for (i, &v) in values.iter().enumerate() {
        stats.observe(T0 + i as u64, v);
    }
    let after_burst = summaries(&mut stats, T0 + 20_000);
    let busy = stats.memory_bytes();
    assert!(busy > fresh + 5 * size_of::<Sketch>(), "{busy} vs {fresh}");
    // 20 minutes on, the 1 m, 5 m and 15 m windows are empty.
    let later = summaries(&mut stats, T0 + 20 * MINUTE);
    let quiet = stats.memory_bytes();
    assert!(quiet < busy, "{quiet} vs {busy}");
    for (w, summary) in later.iter().enumerate() {
        if w < 3 {
            assert_eq!(summary.count, 0, "window {w}");
        } else {
            assert_eq!(summary.count, 20_000, "window {w}");
            assert_eq!(summary.quantiles, after_burst[w].quantiles, "window {w}");
        }
    }
    // A value arriving again is counted from a new sketch.
    stats.observe(T0 + 20 * MINUTE, 1.0);
    let again = summaries(&mut stats, T0 + 20 * MINUTE + 1);
    assert_eq!(again[0].count, 1);
    assert_eq!(again[4].count, 20_001);
    // A day and more on, nothing is shown and no sketch is kept.
    let gone = summaries(&mut stats, T0 + 2 * 1440 * MINUTE);
    assert!(gone.iter().all(|s| s.count == 0));
    assert_eq!(stats.memory_bytes(), fresh);
}

// ---- nested windows against windows keeping their own copies ----

/// A window's count, sum (to 6 decimals: the order of float additions
/// may change the last bits), rate (bits), min, max and quantiles.
type Shown = (u64, u64, u64, Option<f64>, Option<f64>, Vec<(f64, f64)>);

/// Everything a window shows, with the sum rounded to what the order of
/// float additions may change.
fn shown(summaries: &[WindowSummary]) -> Vec<Shown> {
    summaries
        .iter()
        .map(|s| {
            let sum_rounded = (s.sum * 1e6).round() as u64;
            (
                s.count,
                sum_rounded,
                s.rate_per_sec.to_bits(),
                s.min,
                s.max,
                s.quantiles.clone(),
            )
        })
        .collect()
}

/// Observes the same values, some of them late, into nested windows and
/// into windows that keep their own copies, reading both now and then:
/// bursts, quiet hours and a gap of more than a day in between.
fn compare_nested_with_copies(specs: &[WindowSpec], seed: u64, steps: usize) {
    let mut nested = WindowedStats::new(specs, DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS);
    let mut copies =
        WindowedStats::new_unnested(specs, DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS);
    assert!(nested.is_nested() && !copies.is_nested());
    let mut rng = Rng(seed);
    let mut t = T0 + 1234;
    let (mut a, mut b) = (Vec::new(), Vec::new());
    for step in 0..steps {
        // Mostly small steps, sometimes a quiet stretch of up to 3 h, and
        // once a gap of more than a day.
        t += match rng.next_u64() % 100 {
            0 => rng.next_u64() % (3 * 60 * MINUTE),
            1..=9 => rng.next_u64() % (5 * MINUTE),
            _ => rng.next_u64() % 2_000,
        };
        if step == steps / 2 {
            t += 1500 * MINUTE;
        }
        let value = (0.05f64.ln() + rng.normal()).exp();
        // One value in ten is late, by up to 2 h.
        let at = if rng.next_u64().is_multiple_of(10) {
            t.saturating_sub(rng.next_u64() % (120 * MINUTE))
        } else {
            t
        };
        let n = 1 + rng.next_u64() % 3;
        nested.observe_n(at, value, n);
        copies.observe_n(at, value, n);
        if rng.next_u64().is_multiple_of(50) {
            let now = t + rng.next_u64() % (10 * MINUTE);
            nested.summaries(now, &QUANTILES, &mut a);
            copies.summaries(now, &QUANTILES, &mut b);
            assert_eq!(shown(&a), shown(&b), "step {step} at {now}");
        }
    }
    assert_eq!(nested.late_observations(), copies.late_observations());
}

/// The standard windows nest: they show what windows keeping their own
/// copies of every value show, read after read.
#[test]
fn nested_standard_windows_show_what_copies_would() {
    for seed in 0..4 {
        compare_nested_with_copies(&standard_specs(), 100 + seed, 40_000);
    }
}

/// So do other nesting windows: uneven sub-bucket counts, and a window
/// whose start only just stays inside the next one's.
#[test]
fn other_nesting_windows_show_what_copies_would() {
    let specs = [
        WindowSpec::new(10, 5),
        WindowSpec::new(60, 6),
        WindowSpec::new(120, 2),
        WindowSpec::new(3600, 30),
    ];
    for seed in 0..4 {
        compare_nested_with_copies(&specs, 200 + seed, 40_000);
    }
}

/// Windows nest only when each one's sub-buckets divide the next one's
/// and each lies inside the next one; otherwise each keeps its own.
#[test]
fn only_nesting_windows_are_kept_nested() {
    let nests = |specs: &[WindowSpec]| {
        WindowedStats::new(specs, DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS).is_nested()
    };
    assert!(nests(&standard_specs()));
    // Longest first.
    assert!(!nests(&[WindowSpec::new(300, 10), WindowSpec::new(60, 10)]));
    // 7 s sub-buckets do not divide 30 s ones.
    assert!(!nests(&[WindowSpec::new(70, 10), WindowSpec::new(300, 10)]));
    // A 2 m window in one sub-bucket starts afresh every 2 minutes, when
    // the 1 m window still reaches back 54 s before it; in two it starts
    // at most 60 s back, which is enough.
    assert!(!nests(&[WindowSpec::new(60, 10), WindowSpec::new(120, 1)]));
    assert!(nests(&[WindowSpec::new(60, 10), WindowSpec::new(120, 2)]));
    // One window has nothing to nest in.
    assert!(!nests(&[WindowSpec::new(60, 10)]));
}

/// A 20 s burst, 12 minutes on, is held once by nested windows (in one
/// 15 m sub-bucket) where windows with their own copies hold it three
/// times (15 m, 1 h and 1 d), and both show the same.
#[test]
fn nested_windows_hold_a_burst_once() {
    let specs = standard_specs();
    let mut nested = WindowedStats::new(&specs, DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS);
    let mut copies =
        WindowedStats::new_unnested(&specs, DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS);
    let fresh = nested.memory_bytes();
    for (i, &v) in log_normal(&mut Rng(17), 20_000).iter().enumerate() {
        nested.observe(T0 + i as u64, v);
        copies.observe(T0 + i as u64, v);
    }
    let later = T0 + 12 * MINUTE;
    let (a, b) = (summaries(&mut nested, later), summaries(&mut copies, later));
    assert_eq!(shown(&a), shown(&b));
    assert_eq!(
        a.iter().map(|s| s.count).collect::<Vec<_>>(),
        [0, 0, 20_000, 20_000, 20_000]
    );
    let one_copy = nested.memory_bytes() - fresh;
    let three_copies = copies.memory_bytes() - fresh;
    assert!(
        3 * one_copy <= three_copies + three_copies / 10,
        "nested {one_copy} B, copies {three_copies} B"
    );
}
