//! OTLP metrics requests shaped like an SDK's, shared by the benchmarks.

use streamgate::model::MetricsRequest;
use streamgate::model::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use streamgate::model::otlp::metrics::{
    Gauge, Histogram, HistogramDataPoint, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics,
    Sum, metric::Data, number_data_point,
};
use streamgate::model::otlp::resource::Resource;

pub fn kv(key: &str, value: String) -> KeyValue {
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
