//! Analytics cost: ns per `WindowedStats::observe` with the five standard
//! windows (1 m, 5 m, 15 m, 1 h, 1 d in 10 sub-buckets each), per
//! `summaries` call over full windows, and per `Sketch::add` for
//! reference; each windows figure also for the same five windows listed
//! longest first (`_own_copies`), which do not nest, so each keeps its
//! own copy of every value as all windows did before they were nested. Prints memory per sketch and per `WindowedStats` for
//! latency-like data next to the worst-case bounds.
//!
//! Run: `cargo bench --bench analytics`.

use std::hint::black_box;

use criterion::{Criterion, criterion_group, criterion_main};
use streamgate::analytics::aggregation::{
    DEFAULT_MAX_BINS, DEFAULT_RELATIVE_ACCURACY, Sketch, WindowSpec, WindowSummary, WindowedStats,
};

#[path = "support/requests.rs"]
mod requests;

const T0: u64 = 1_700_000_100_000;
const QUANTILES: [f64; 5] = [0.5, 0.9, 0.95, 0.99, 0.999];

fn specs() -> [WindowSpec; 5] {
    [60, 300, 900, 3600, 86_400].map(|secs| WindowSpec::new(secs, 10))
}

fn stats() -> WindowedStats {
    WindowedStats::new(&specs(), DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS)
}

/// The same five windows, longest first: they do not nest, so each keeps
/// its own sketches (the layout before windows were nested).
fn own_copies() -> WindowedStats {
    let mut specs = specs();
    specs.reverse();
    let stats = WindowedStats::new(&specs, DEFAULT_RELATIVE_ACCURACY, DEFAULT_MAX_BINS);
    assert!(!stats.is_nested() && self::stats().is_nested());
    stats
}

/// Latency-like values (log-normal, median 50 ms, σ = 1) from SplitMix64.
fn latencies(n: usize) -> Vec<f64> {
    let mut state = 42u64;
    let mut next = move || {
        state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = state;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        ((z ^ (z >> 31)) >> 11) as f64 / (1u64 << 53) as f64 + 1e-17
    };
    (0..n)
        .map(|_| {
            let (u1, u2) = (next(), next());
            let z = (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos();
            (0.05f64.ln() + z).exp()
        })
        .collect()
}

/// A day and a bit of latencies at `per_sec` values per second.
fn filled(per_sec: u64) -> (WindowedStats, u64) {
    fill(stats(), per_sec)
}

fn fill(mut stats: WindowedStats, per_sec: u64) -> (WindowedStats, u64) {
    let values = latencies(4096);
    let step = 1000 / per_sec;
    let end = T0 + 90_000_000;
    let mut t = T0;
    let mut i = 0;
    while t < end {
        stats.observe(t, values[i % values.len()]);
        t += step;
        i += 1;
    }
    (stats, end)
}

fn observe(c: &mut Criterion) {
    let values = latencies(4096);
    let mut group = c.benchmark_group("analytics");
    // One value per ms: a sub-bucket of the 1 m window rolls every 6000.
    group.bench_function("observe_5_windows", |b| {
        let mut stats = stats();
        let (mut t, mut i) = (T0, 0usize);
        b.iter(|| {
            stats.observe(black_box(t), black_box(values[i & 4095]));
            t += 1;
            i += 1;
        });
    });
    group.bench_function("observe_5_windows_own_copies", |b| {
        let mut stats = own_copies();
        let (mut t, mut i) = (T0, 0usize);
        b.iter(|| {
            stats.observe(black_box(t), black_box(values[i & 4095]));
            t += 1;
            i += 1;
        });
    });
    group.bench_function("observe_1_window", |b| {
        let mut stats = WindowedStats::new(
            &[WindowSpec::new(300, 10)],
            DEFAULT_RELATIVE_ACCURACY,
            DEFAULT_MAX_BINS,
        );
        let (mut t, mut i) = (T0, 0usize);
        b.iter(|| {
            stats.observe(black_box(t), black_box(values[i & 4095]));
            t += 1;
            i += 1;
        });
    });
    group.bench_function("sketch_add", |b| {
        let mut sketch = Sketch::default();
        let mut i = 0usize;
        b.iter(|| {
            sketch.add(black_box(values[i & 4095]));
            i += 1;
        });
    });
    group.finish();
}

fn summaries(c: &mut Criterion) {
    let (mut stats, now) = filled(10);
    let mut out: Vec<WindowSummary> = Vec::new();
    let mut group = c.benchmark_group("analytics");
    group.bench_function("summaries_5_windows_5_quantiles", |b| {
        b.iter(|| {
            stats.summaries(black_box(now), &QUANTILES, &mut out);
            black_box(&out);
        });
    });
    let (mut copies, now) = fill(own_copies(), 10);
    group.bench_function("summaries_5_windows_5_quantiles_own_copies", |b| {
        b.iter(|| {
            copies.summaries(black_box(now), &QUANTILES, &mut out);
            black_box(&out);
        });
    });
    group.finish();
}

fn memory() {
    let values = latencies(100_000);
    let mut sketch = Sketch::default();
    for &v in &values {
        sketch.add(v);
    }
    println!(
        "memory: sketch of 100k latencies {} B (bound {} B)",
        sketch.memory_bytes(),
        Sketch::memory_bound(DEFAULT_MAX_BINS)
    );
    for per_sec in [1, 10, 1000] {
        let (mut stats, now) = filled(per_sec);
        let mut out = Vec::new();
        stats.summaries(now, &QUANTILES, &mut out);
        let (mut copies, _) = fill(own_copies(), per_sec);
        copies.summaries(now, &QUANTILES, &mut out);
        println!(
            "memory: WindowedStats (5 windows × 10) after 25 h of latencies at {per_sec}/s: {} B nested, {} B own copies",
            stats.memory_bytes(),
            copies.memory_bytes()
        );
    }
    // Worst-shaped data: a million distinct values over the whole f64
    // range, both signs, over two days (every sketch at its bin limit).
    let mut wide = stats();
    let mut state = 7u64;
    for i in 0..1_000_000u64 {
        state = state
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        let magnitude = ((state >> 11) as f64 / (1u64 << 53) as f64 * 1400.0 - 700.0).exp();
        let value = if i % 2 == 0 { magnitude } else { -magnitude };
        wide.observe(T0 + i * 173, value);
    }
    let mut out = Vec::new();
    wide.summaries(T0 + 1_000_000 * 173, &QUANTILES, &mut out);
    println!(
        "memory: WindowedStats after 1M distinct values over the f64 range: {} B",
        wide.memory_bytes()
    );
    println!(
        "memory: WindowedStats empty {} B, bound {} B",
        stats().memory_bytes(),
        WindowedStats::memory_bound(&specs(), DEFAULT_MAX_BINS)
    );
}

/// Per-point cost of the baseline and all forecasts together (issue 4's
/// budget: under 200 ns), on a noisy daily sine at 5-minute steps and at
/// 60 s steps (the OTel SDKs' default export interval), after warm-up,
/// reading the three forecasts each point as the collector does;
/// and of the forecaster alone, also at jittered 10 s steps with
/// fractional timestamps (as evaluation steps are stamped), where `Δt`
/// changes at every point.
fn baseline_and_forecasts(c: &mut Criterion) {
    use streamgate::analytics::baselines::{Baseline, BaselineConfig};
    use streamgate::analytics::forecasts::{ForecastConfig, Forecaster};
    /// Two weeks of a noisy daily sine sampled `per_day` times a day,
    /// computed up front so the figures are the updates alone.
    fn daily_sine(per_day: u64, noise: &[f64]) -> Vec<f64> {
        (0..per_day * 14)
            .map(|i| {
                let day = (i % per_day) as f64 / per_day as f64 * std::f64::consts::TAU;
                50.0 + 20.0 * day.sin() + noise[(i % 4096) as usize] * 10.0
            })
            .collect()
    }
    /// One point through the baseline and the forecaster, and the three
    /// forecasts read, as the collector does each step.
    fn analyse(baseline: &mut Baseline, forecaster: &mut Forecaster, t: f64, v: f64) {
        black_box(baseline.update(t, v));
        forecaster.update_with(t, v, &*baseline);
        for h in 0..3 {
            black_box(forecaster.forecast(h));
        }
    }
    let mut baseline = Baseline::new(BaselineConfig::default());
    let mut forecaster = Forecaster::new(ForecastConfig::default());
    let noise = latencies(4096);
    let values = daily_sine(288, &noise);
    let value = |i: u64| values[i as usize % values.len()];
    let mut i = 0u64;
    for _ in 0..10_000 {
        let t = 1_700_000_000.0 + i as f64 * 300.0;
        baseline.update(t, value(i));
        forecaster.update_with(t, value(i), &baseline);
        i += 1;
    }
    let mut group = c.benchmark_group("analytics");
    group.bench_function("baseline_and_3_forecasts_per_point", |b| {
        b.iter(|| {
            let t = 1_700_000_000.0 + i as f64 * 300.0;
            let v = value(i);
            i += 1;
            analyse(&mut baseline, &mut forecaster, t, v);
        })
    });
    group.bench_function("baseline_per_point", |b| {
        b.iter(|| {
            let t = 1_700_000_000.0 + i as f64 * 300.0;
            let v = value(i);
            i += 1;
            black_box(baseline.update(t, v))
        })
    });
    group.bench_function("forecaster_and_3_forecasts_per_point", |b| {
        b.iter(|| {
            let t = 1_700_000_000.0 + i as f64 * 300.0;
            let v = value(i);
            i += 1;
            forecaster.update(t, v);
            for h in 0..3 {
                black_box(forecaster.forecast(h));
            }
        })
    });
    // The forecaster reading a (fixed) baseline's daily shape: what the
    // seasonal-naive model adds to the forecaster alone.
    group.bench_function(
        "forecaster_with_daily_shape_and_3_forecasts_per_point",
        |b| {
            b.iter(|| {
                let t = 1_700_000_000.0 + i as f64 * 300.0;
                let v = value(i);
                i += 1;
                forecaster.update_with(t, v, &baseline);
                for h in 0..3 {
                    black_box(forecaster.forecast(h));
                }
            })
        },
    );
    // The same with a point every 60 s, the OTel SDKs' default export
    // interval: fewer tracked forecasts made and matured per point than
    // with 5-minute data, where every point makes one for two horizons.
    let mut baseline_60 = Baseline::new(BaselineConfig::default());
    let mut forecaster_60 = Forecaster::new(ForecastConfig::default());
    let values_60 = daily_sine(1440, &noise);
    let value_60 = |i: u64| values_60[i as usize % values_60.len()];
    let mut k = 0u64;
    for _ in 0..40_000 {
        let t = 1_700_000_000.0 + k as f64 * 60.0;
        baseline_60.update(t, value_60(k));
        forecaster_60.update_with(t, value_60(k), &baseline_60);
        k += 1;
    }
    group.bench_function("baseline_and_3_forecasts_per_point_60s_apart", |b| {
        b.iter(|| {
            let t = 1_700_000_000.0 + k as f64 * 60.0;
            let v = value_60(k);
            k += 1;
            analyse(&mut baseline_60, &mut forecaster_60, t, v);
        })
    });
    let mut jittered = Forecaster::new(ForecastConfig::default());
    let stamp = |i: u64| {
        1_700_000_000.123 + i as f64 * 10.0 + 0.01 * (noise[(i * 7 % 4096) as usize] - 0.05)
    };
    let mut j = 0u64;
    for _ in 0..10_000 {
        jittered.update(stamp(j), value(j));
        j += 1;
    }
    group.bench_function("forecaster_and_3_forecasts_per_point_jittered_10s", |b| {
        b.iter(|| {
            let (t, v) = (stamp(j), value(j));
            j += 1;
            jittered.update(t, v);
            for h in 0..3 {
                black_box(jittered.forecast(h));
            }
        })
    });
    group.finish();
}

/// Analysis state per series: a baseline and a forecaster with the
/// default settings after 8 days of points every 60 s (profiles filled,
/// every horizon's queue of pending forecasts at its steady length).
fn analysis_memory() {
    use streamgate::analytics::baselines::{Baseline, BaselineConfig};
    use streamgate::analytics::forecasts::{ForecastConfig, Forecaster};
    let mut baseline = Baseline::new(BaselineConfig::default());
    let mut forecaster = Forecaster::new(ForecastConfig::default());
    // The forecaster's state, as the analysis processor keeps it (the
    // settings pointer is shared there).
    let (fresh_b, fresh_f) = (baseline.memory_bytes(), forecaster.state().memory_bytes());
    for i in 0..(8 * 1440) {
        let t = 1_700_000_000.0 + 60.0 * i as f64;
        let v = 100.0 + 20.0 * (t / 86_400.0 * std::f64::consts::TAU).sin();
        baseline.update(t, v);
        forecaster.update_with(t, v, &baseline);
    }
    println!(
        "memory: analysis state per series: baseline {} B (new {fresh_b} B), forecaster {} B (new {fresh_f} B), both {} B",
        baseline.memory_bytes(),
        forecaster.state().memory_bytes(),
        baseline.memory_bytes() + forecaster.state().memory_bytes()
    );
}

/// What the web console's recorder costs: one `analysed(25)` snapshot of
/// the analysis processor (ranking every series, its lock held) with
/// 10,000 analysed series.
fn analysis_snapshot(c: &mut Criterion) {
    use std::sync::Arc;
    use streamgate::exporters::prometheus::{Format, PrometheusExporter, PrometheusExporterConfig};
    use streamgate::model::MetricsBatch;
    use streamgate::model::recommendation::AnalysisSnapshot;
    use streamgate::pipeline::derived::DerivedSource;
    use streamgate::pipeline::{ConsumeResult, Consumed, MetricsConsumer};
    use streamgate::processors::analysis::{AnalysisConfig, AnalysisProcessor, SelectRule};
    use streamgate::telemetry::Telemetry;

    struct Sink;
    impl MetricsConsumer for Sink {
        fn consume_metrics(&self, _: &MetricsBatch) -> ConsumeResult {
            Ok(Consumed::all())
        }
    }
    let config = AnalysisConfig {
        select: vec![SelectRule {
            name: "*".into(),
            labels: Default::default(),
        }],
        max_series: 20_000,
        ..Default::default()
    };
    let telemetry = Arc::new(Telemetry::new());
    let exporter = Arc::new(PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        telemetry.clone(),
    ));
    let p = Arc::new(AnalysisProcessor::new(
        config,
        Arc::new(Sink),
        exporter.clone(),
        telemetry,
    ));
    let source: Arc<dyn DerivedSource> = p.clone();
    exporter.attach_derived(Arc::downgrade(&source));
    for step in 0..20u64 {
        let t = 1_700_000_000.0 + 30.0 * step as f64;
        let request = requests::realistic_request(10, 1000, 1, (t * 1e9) as u64);
        p.observe_request(&MetricsBatch::from_request(request), t);
        p.evaluate(t);
    }
    let (list, total) = p.analysed(25);
    println!(
        "analysis snapshot: {total} series analysed, {} ranked",
        list.len()
    );
    c.bench_function("analysis_snapshot_top25_of_10k", |b| {
        b.iter(|| black_box(p.analysed(25).0.len()))
    });
    // `/metrics` with the derived gauges of 10,000 analysed series,
    // rendered from their state (and StreamGate's own families).
    let text = exporter.render(Format::Text);
    println!(
        "derived render: {} bytes, {} baseline series",
        text.len(),
        text.matches("streamgate_baseline_expected{").count()
    );
    c.bench_function("render_derived_of_10k_analysed", |b| {
        b.iter(|| black_box(exporter.render(Format::Text).len()))
    });
}

fn benches(c: &mut Criterion) {
    memory();
    analysis_memory();
    observe(c);
    summaries(c);
    baseline_and_forecasts(c);
    analysis_snapshot(c);
}

criterion_group!(analytics, benches);
criterion_main!(analytics);
