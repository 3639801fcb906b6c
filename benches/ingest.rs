//! Hot-path benchmarks: OTLP metrics decode alone (the physical floor),
//! decode + translate + store update, and `/metrics` rendering.
//!
//! Run: `cargo bench --bench ingest`. Throughput is in data points/s.

use std::hint::black_box;
use std::sync::Arc;

use criterion::{Criterion, Throughput, criterion_group, criterion_main};
use prost::Message;
use streamgate::exporters::prometheus::{Format, PrometheusExporter, PrometheusExporterConfig};
use streamgate::model::MetricsRequest;
use streamgate::model::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use streamgate::model::otlp::metrics::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, metric::Data, number_data_point,
};
use streamgate::model::otlp::resource::Resource;
use streamgate::pipeline::MetricsConsumer;
use streamgate::telemetry::Telemetry;

fn kv(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// A request like an SDK sends: 5 resource attributes, one scope, and
/// `metrics` metrics of `points` points each with 5 attributes, cycling
/// through the first `kinds` of gauge, counter, histogram.
pub fn realistic_request(metrics: usize, points: usize, kinds: usize, time: u64) -> MetricsRequest {
    let attrs = |i: usize| {
        vec![
            kv("http.request.method", ["GET", "POST", "PUT"][i % 3].into()),
            kv("http.route", format!("/api/v1/items/{}", i % 50)),
            kv(
                "http.response.status_code",
                ["200", "404", "500"][i % 3].into(),
            ),
            kv("server.address", format!("backend-{}.internal", i % 7)),
            kv("network.protocol.version", "1.1".into()),
        ]
    };
    let metric = |m: usize| {
        let data = match m % kinds {
            0 => Data::Gauge(Gauge {
                data_points: (0..points)
                    .map(|i| NumberDataPoint {
                        attributes: attrs(i),
                        time_unix_nano: time,
                        value: Some(number_data_point::Value::AsDouble(i as f64 * 1.5)),
                        ..Default::default()
                    })
                    .collect(),
            }),
            1 => Data::Sum(Sum {
                aggregation_temporality: 2,
                is_monotonic: true,
                data_points: (0..points)
                    .map(|i| NumberDataPoint {
                        attributes: attrs(i),
                        start_time_unix_nano: 1,
                        time_unix_nano: time,
                        value: Some(number_data_point::Value::AsInt(i as i64 * 10)),
                        ..Default::default()
                    })
                    .collect(),
            }),
            _ => Data::Histogram(Histogram {
                aggregation_temporality: 2,
                data_points: (0..points)
                    .map(|i| HistogramDataPoint {
                        attributes: attrs(i),
                        start_time_unix_nano: 1,
                        time_unix_nano: time,
                        count: 10,
                        sum: Some(1.5),
                        bucket_counts: vec![1, 2, 3, 4, 0, 0],
                        explicit_bounds: vec![0.005, 0.01, 0.05, 0.1, 0.5],
                        ..Default::default()
                    })
                    .collect(),
            }),
        };
        Metric {
            name: format!("app.metric_{m}.duration"),
            unit: "s".into(),
            description: "benchmark metric".into(),
            data: Some(data),
            ..Default::default()
        }
    };
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![
                    kv("service.name", "checkout".into()),
                    kv("service.namespace", "shop".into()),
                    kv("service.instance.id", "pod-7f9c".into()),
                    kv("host.name", "node-3".into()),
                    kv("cloud.region", "eu-west-1".into()),
                ],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                scope: Some(InstrumentationScope {
                    name: "io.opentelemetry.http".into(),
                    version: "1.2.3".into(),
                    ..Default::default()
                }),
                metrics: (0..metrics).map(metric).collect(),
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn exporter() -> PrometheusExporter {
    PrometheusExporter::new(
        PrometheusExporterConfig::default(),
        Arc::new(Telemetry::new()),
    )
}

fn ingest(c: &mut Criterion) {
    let request = realistic_request(12, 100, 3, 2);
    let bytes = request.encode_to_vec();
    let points = 12 * 100;
    let mut group = c.benchmark_group("metrics_ingest");
    group.throughput(Throughput::Elements(points));
    group.bench_function("decode_only", |b| {
        b.iter(|| black_box(MetricsRequest::decode(black_box(&bytes[..])).unwrap()))
    });
    let e = exporter();
    e.consume_metrics(&request).unwrap();
    group.bench_function("decode_translate_store", |b| {
        b.iter(|| {
            let decoded = MetricsRequest::decode(black_box(&bytes[..])).unwrap();
            black_box(e.consume_metrics(&decoded).unwrap())
        })
    });
    // The same with the CPU profiler sampling the process at 100 Hz, as
    // continuous profiling does: the ratio to the case above is its
    // overhead (target: under 2 % loss).
    {
        let _profiler = pprof::ProfilerGuardBuilder::default()
            .frequency(100)
            .blocklist(&["libc", "libgcc", "pthread", "vdso"])
            .build()
            .expect("profiler");
        group.bench_function("decode_translate_store_profiled_100hz", |b| {
            b.iter(|| {
                let decoded = MetricsRequest::decode(black_box(&bytes[..])).unwrap();
                black_box(e.consume_metrics(&decoded).unwrap())
            })
        });
    }
    group.finish();
}

fn render(c: &mut Criterion) {
    let mut group = c.benchmark_group("metrics_render");
    group.sample_size(20);
    for series in [10_000usize, 100_000] {
        let e = exporter();
        // Gauges and counters: one sample line per series.
        let request = realistic_request(series / 1000, 1000, 2, 2);
        assert_eq!(e.store().series_count(), 0);
        e.consume_metrics(&request).unwrap();
        assert_eq!(e.store().series_count(), series + 1, "plus target_info");
        eprintln!(
            "text_{series}_series renders {} bytes",
            e.render(Format::Text).len()
        );
        group.throughput(Throughput::Elements(series as u64));
        group.bench_function(format!("text_{series}_series"), |b| {
            b.iter(|| black_box(e.render(Format::Text).len()))
        });
    }
    group.finish();
}

criterion_group!(benches, ingest, render);
criterion_main!(benches);
