//! Black-box tests of the rolling windows: span durations sent by the
//! Rust OpenTelemetry SDK and a histogram from its metrics SDK come out as
//! `*_window_p50/p95/p99_*` series whose quantiles match the exact ones
//! within 1 % (spans) or the bucket resolution (histograms).

mod common;

use std::time::{Duration, SystemTime};

use common::{Collector, Options, Samples};
use opentelemetry::KeyValue;
use opentelemetry::trace::{Span as _, SpanKind, Tracer as _, TracerProvider as _};
use opentelemetry_otlp::{Protocol, SpanExporter, WithExportConfig};
use opentelemetry_sdk::Resource;
use opentelemetry_sdk::trace::{Sampler, SdkTracerProvider};

fn collector() -> Collector {
    Collector::start_with(Options {
        processors_extra: "windows:\n  interval: 200ms\n  windows: [1m, 5m]\n".into(),
        ..Default::default()
    })
}

/// Sends one span per duration (ms) over OTLP/HTTP.
fn send_spans(collector: &Collector, durations_ms: &[f64]) {
    let exporter = SpanExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(collector.otlp_http_url("/v1/traces"))
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("span exporter");
    let provider = SdkTracerProvider::builder()
        .with_resource(
            Resource::builder_empty()
                .with_attributes([KeyValue::new("service.name", "checkout")])
                .build(),
        )
        .with_sampler(Sampler::AlwaysOn)
        .with_batch_exporter(exporter)
        .build();
    let tracer = provider.tracer("windows-test");
    let start = SystemTime::now() - Duration::from_secs(30);
    for ms in durations_ms {
        let mut span = tracer
            .span_builder("GET /cart")
            .with_kind(SpanKind::Server)
            .with_start_time(start)
            .start(&tracer);
        span.end_with_timestamp(start + Duration::from_secs_f64(ms / 1000.0));
    }
    provider.force_flush().expect("flush");
    provider.shutdown().expect("shutdown");
}

fn window_value(s: &Samples, stat: &str, window: &str) -> Option<f64> {
    let name = format!("traces_span_metrics_duration_window_{stat}");
    let found = s.matching(
        &name,
        &[
            ("service_name", "checkout"),
            ("span_name", "GET /cart"),
            ("window", window),
        ],
    );
    assert!(found.len() <= 1, "{found:?}");
    found.first().map(|(_, v)| *v)
}

/// Exact quantile by the nearest-rank definition.
fn exact(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).clamp(1, sorted.len());
    sorted[rank - 1]
}

/// Log-normal-ish durations (a heavy right tail): p50/p95/p99 of the 1m
/// and 5m windows are within 1 % of the exact values; count, min, max and
/// rate are exact.
#[test]
fn span_duration_quantiles_match_exact_values() {
    let collector = collector();
    // Deterministic spread from 1 ms to ~3 s, dense at the low end.
    let mut durations: Vec<f64> = (0..2000)
        .map(|i| {
            let u = (i as f64 + 0.5) / 2000.0;
            (u * 8.0).exp() * 0.001 * 1000.0
        })
        .collect();
    send_spans(&collector, &durations);
    durations.sort_by(f64::total_cmp);
    // Each window family is read under its own lock: wait until every
    // one this test reads shows the evaluation with all the values.
    let s = collector.scrape_until("window series", |s| {
        ["1m", "5m"].iter().all(|w| {
            window_value(s, "observations", w) == Some(2000.0)
                && [
                    "p50_seconds",
                    "p95_seconds",
                    "p99_seconds",
                    "min_seconds",
                    "max_seconds",
                ]
                .iter()
                .all(|stat| window_value(s, stat, w).is_some())
        }) && window_value(s, "rate_per_second", "5m").is_some()
    });
    for window in ["1m", "5m"] {
        for (stat, q) in [
            ("p50_seconds", 0.5),
            ("p95_seconds", 0.95),
            ("p99_seconds", 0.99),
        ] {
            let want = exact(&durations, q) / 1000.0;
            let got = window_value(&s, stat, window)
                .unwrap_or_else(|| panic!("{stat} {window}:\n{}", s.text));
            assert!(
                (got - want).abs() <= 0.01 * want,
                "{window} {stat}: got {got}, exact {want}"
            );
        }
        assert_eq!(window_value(&s, "observations", window), Some(2000.0));
        let min = window_value(&s, "min_seconds", window).unwrap();
        let max = window_value(&s, "max_seconds", window).unwrap();
        assert!((min - durations[0] / 1000.0).abs() < 1e-6, "{min}");
        assert!((max - durations[1999] / 1000.0).abs() < 1e-6, "{max}");
    }
    // The 5m window's rate: 2000 values over the covered time (< 5 min).
    assert!(window_value(&s, "rate_per_second", "5m").unwrap() > 2000.0 / 300.0);
    assert_eq!(
        s.types["traces_span_metrics_duration_window_p95_seconds"],
        "gauge"
    );
}

/// The window series pass `promtool check metrics` with no problem
/// reported (no `quantile` label on gauges, base units, help texts).
#[test]
fn window_series_pass_promtool() {
    let Some(promtool) = common::find_peer("promtool") else {
        return;
    };
    let collector = collector();
    send_spans(&collector, &[5.0, 10.0, 20.0]);
    let s = collector.scrape_until("window series", |s| {
        window_value(s, "observations", "1m") == Some(3.0)
    });
    let (success, report) = common::promtool_check(&promtool, &s.text);
    assert!(success, "promtool: {report}");
    assert_eq!(report.trim(), "", "promtool printed problems");
}

/// The windows' p95, which the analysis processor selects by default,
/// reaches it although it is rendered rather than stored: its baseline
/// shows up labelled with the window series, and the window series itself
/// is on `/metrics` once per window (not also as a stored copy).
#[test]
fn analysis_reads_the_window_p95() {
    let collector = Collector::start_with(Options {
        processors_extra: "windows:\n  interval: 200ms\n  windows: [1m, 5m]\nanalysis:\n  step: 100ms\n  horizons: [1s]\n".into(),
        ..Default::default()
    });
    send_spans(&collector, &[5.0, 10.0, 20.0]);
    let s = collector.scrape_until("a baseline of the window p95", |s| {
        !s.matching(
            "streamgate_baseline_expected",
            &[
                ("metric", "traces_span_metrics_duration_window_p95_seconds"),
                ("window", "5m"),
                ("span_name", "GET /cart"),
            ],
        )
        .is_empty()
    });
    let p95 = s.matching(
        "traces_span_metrics_duration_window_p95_seconds",
        &[("span_name", "GET /cart")],
    );
    assert_eq!(p95.len(), 2, "one per window: {p95:?}");
    let lines = s
        .text
        .lines()
        .filter(|l| l.starts_with("traces_span_metrics_duration_window_p95_seconds{"))
        .count();
    assert_eq!(lines, 2, "{}", s.text);
    let helps = s
        .text
        .lines()
        .filter(|l| l.starts_with("# HELP traces_span_metrics_duration_window_p95_seconds "))
        .count();
    assert_eq!(helps, 1);
}
