//! Tests of the log-metrics connector: severity naming, error detection,
//! counts per service, overflow.

use crate::model::MetricsBatch;
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::model::otlp::common::{AnyValue, KeyValue, any_value};
use crate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};
use crate::model::otlp::resource::Resource;
use crate::model::{LogsRequest, MetricsRequest};

#[derive(Default)]
struct Capture(Mutex<Vec<MetricsRequest>>);

impl MetricsConsumer for Capture {
    fn consume_metrics(&self, request: &MetricsBatch) -> ConsumeResult {
        self.0.lock().push(request.request().clone());
        Ok(Consumed::all())
    }
}

fn record(number: i32, text: &str) -> LogRecord {
    LogRecord {
        severity_number: number,
        severity_text: text.into(),
        ..Default::default()
    }
}

fn request(service: &str, records: Vec<LogRecord>) -> LogsBatch {
    LogsBatch::from_request(logs_request(service, records))
}

fn logs_request(service: &str, records: Vec<LogRecord>) -> LogsRequest {
    LogsRequest {
        resource_logs: vec![ResourceLogs {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue(service.into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// (metric, severity or "", value) of every point.
fn points(r: &MetricsRequest) -> Vec<(String, String, i64)> {
    let mut out = Vec::new();
    for m in r
        .resource_metrics
        .iter()
        .flat_map(|rm| &rm.scope_metrics)
        .flat_map(|sm| &sm.metrics)
    {
        let Some(Data::Sum(s)) = &m.data else {
            continue;
        };
        for p in &s.data_points {
            let severity = p
                .attributes
                .iter()
                .find(|kv| kv.key == "severity")
                .and_then(|kv| match &kv.value.as_ref()?.value {
                    Some(any_value::Value::StringValue(s)) => Some(s.clone()),
                    _ => None,
                })
                .unwrap_or_default();
            let Some(number_data_point::Value::AsInt(v)) = p.value else {
                continue;
            };
            out.push((m.name.clone(), severity, v));
        }
    }
    out.sort();
    out
}

#[test]
fn severity_ranges_and_error_levels() {
    assert_eq!(severity_range(9), "INFO");
    assert_eq!(severity_range(17), "ERROR");
    assert_eq!(severity_range(24), "FATAL");
    assert_eq!(severity_range(0), "UNSPECIFIED");
    assert!(is_error(17, ""));
    assert!(!is_error(13, "error"), "the number wins when set");
    assert!(is_error(0, "Error"));
    assert!(is_error(0, "CRITICAL"));
    assert!(!is_error(0, "warning"));
}

#[test]
fn counts_by_service_and_severity_with_errors() {
    let capture = Arc::new(Capture::default());
    let c = LogMetrics::new(
        LogMetricsConfig::default(),
        capture.clone(),
        Arc::new(Telemetry::new()),
    );
    c.consume_logs(&request(
        "api",
        vec![
            record(9, "Information"),
            record(9, "Information"),
            record(17, ""),
            record(0, "ERROR"),
            record(13, ""),
        ],
    ))
    .unwrap();
    let requests = capture.0.lock();
    assert_eq!(
        points(&requests[0]),
        vec![
            ("log.error.records".into(), "".into(), 2),
            ("log.records".into(), "ERROR".into(), 2),
            ("log.records".into(), "Information".into(), 2),
            ("log.records".into(), "WARN".into(), 1),
        ]
    );
}

#[test]
fn overflow_beyond_the_limit() {
    let capture = Arc::new(Capture::default());
    let telemetry = Arc::new(Telemetry::new());
    let c = LogMetrics::new(
        LogMetricsConfig {
            cardinality_limit: 1,
            ..Default::default()
        },
        capture.clone(),
        telemetry.clone(),
    );
    c.consume_logs(&request(
        "api",
        vec![record(9, "a"), record(9, "b"), record(9, "c")],
    ))
    .unwrap();
    let requests = capture.0.lock();
    let overflow = requests[0]
        .resource_metrics
        .iter()
        .find(|rm| {
            rm.resource
                .as_ref()
                .is_some_and(|r| r.attributes.is_empty())
        })
        .expect("an overflow resource");
    let Some(Data::Sum(s)) = &overflow.scope_metrics[0].metrics[0].data else {
        panic!()
    };
    assert_eq!(
        s.data_points[0].value,
        Some(number_data_point::Value::AsInt(2))
    );
    assert_eq!(s.data_points[0].attributes[0].key, "otel.metric.overflow");
}

/// One resource per (service, records).
fn request_from(resources: Vec<(String, Vec<LogRecord>)>) -> LogsBatch {
    LogsBatch::from_request(LogsRequest {
        resource_logs: resources
            .into_iter()
            .flat_map(|(service, records)| logs_request(&service, records).resource_logs)
            .collect(),
    })
}

/// (service of the resource, metric, value) of every point, sorted; the
/// overflow series' resource has no service ("").
fn points_by_service(requests: &[MetricsRequest]) -> Vec<(String, String, i64)> {
    let mut out = Vec::new();
    for rm in requests.iter().flat_map(|r| &r.resource_metrics) {
        let service = rm
            .resource
            .as_ref()
            .and_then(|r| r.attributes.iter().find(|kv| kv.key == "service.name"))
            .and_then(|kv| match &kv.value.as_ref()?.value {
                Some(any_value::Value::StringValue(s)) => Some(s.clone()),
                _ => None,
            })
            .unwrap_or_default();
        let single = MetricsRequest {
            resource_metrics: vec![rm.clone()],
        };
        for (metric, _, value) in points(&single) {
            out.push((service.clone(), metric, value));
        }
    }
    out.sort();
    out
}

/// The shard of the resource of a service.
fn shard_of_service(service: &str) -> usize {
    let attributes = logs_request(service, Vec::new()).resource_logs[0]
        .resource
        .clone()
        .unwrap_or_default()
        .attributes;
    shard_of(super::super::table::canonical_resource(attributes).1)
}

#[test]
fn error_counts_stay_with_their_own_resource() {
    // Two services of one shard (so of one pair of tables).
    let quiet = (0..256)
        .map(|i| format!("quiet-{i}"))
        .find(|q| shard_of_service(q) == shard_of_service("noisy"))
        .expect("a service in the same shard");
    let capture = Arc::new(Capture::default());
    let c = LogMetrics::new(
        LogMetricsConfig::default(),
        capture.clone(),
        Arc::new(Telemetry::new()),
    );
    // Only the second resource logs errors: its error series is the first
    // in the error table, the first resource's records the first in the
    // record table.
    c.consume_logs(&request_from(vec![
        (quiet.clone(), vec![record(9, "")]),
        ("noisy".into(), vec![record(17, "")]),
    ]))
    .unwrap();
    let requests = capture.0.lock();
    assert_eq!(
        points_by_service(&requests),
        vec![
            ("noisy".into(), "log.error.records".into(), 1),
            ("noisy".into(), "log.records".into(), 1),
            (quiet, "log.records".into(), 1),
        ]
    );
}

#[test]
fn the_limit_counts_every_shard_and_one_overflow_series_takes_the_rest() {
    let services: Vec<String> = (0..16).map(|i| format!("svc-{i}")).collect();
    let shards: std::collections::HashSet<usize> =
        services.iter().map(|s| shard_of_service(s)).collect();
    assert!(shards.len() > 2, "the services spread over shards");
    let capture = Arc::new(Capture::default());
    let c = LogMetrics::new(
        LogMetricsConfig {
            cardinality_limit: 3,
            ..Default::default()
        },
        capture.clone(),
        Arc::new(Telemetry::new()),
    );
    c.consume_logs(&request_from(
        services
            .iter()
            .map(|s| (s.clone(), vec![record(9, ""), record(17, "")]))
            .collect(),
    ))
    .unwrap();
    let requests = capture.0.lock();
    let points = points_by_service(&requests);
    let count = |metric: &str, overflow: bool| -> Vec<i64> {
        points
            .iter()
            .filter(|(s, m, _)| m == metric && s.is_empty() == overflow)
            .map(|(_, _, v)| *v)
            .collect()
    };
    // Per table: 3 series of their own, one overflow series with the
    // rest (two record series a service: its INFO and its ERROR records).
    for (metric, rest) in [("log.records", 29), ("log.error.records", 13)] {
        assert_eq!(count(metric, false), vec![1, 1, 1], "{metric}: {points:?}");
        assert_eq!(count(metric, true), vec![rest], "{metric}: {points:?}");
    }
}

#[test]
fn every_shard_is_saved_and_restored() {
    use crate::pipeline::durable::Durable;
    let services: Vec<String> = (0..16).map(|i| format!("svc-{i}")).collect();
    let logs = |n: usize| vec![record(17, ""); n];
    let first = LogMetrics::new(
        LogMetricsConfig::default(),
        Arc::new(Capture::default()),
        Arc::new(Telemetry::new()),
    );
    first
        .consume_logs(&request_from(
            services
                .iter()
                .enumerate()
                .map(|(n, s)| (s.clone(), logs(n + 1)))
                .collect(),
        ))
        .unwrap();
    let mut snapshot = Vec::new();
    first.snapshot(&mut snapshot).unwrap();
    let capture = Arc::new(Capture::default());
    let restarted = LogMetrics::new(
        LogMetricsConfig::default(),
        capture.clone(),
        Arc::new(Telemetry::new()),
    );
    // A snapshot with a byte too many is refused whole: nothing of it
    // is kept (the component starts afresh, as the log says).
    let mut spoiled = snapshot.clone();
    spoiled.push(0);
    assert!(restarted.restore(&spoiled).is_err());
    let mut empty = Vec::new();
    restarted.snapshot(&mut empty).unwrap();
    assert_eq!(empty, [0, 0], "no series in either table");
    let restored = restarted.restore(&snapshot).unwrap();
    assert_eq!((restored.items, restored.discarded), (32, 0));
    // One more error from each: every total continues from its own.
    restarted
        .consume_logs(&request_from(
            services.iter().map(|s| (s.clone(), logs(1))).collect(),
        ))
        .unwrap();
    let requests = capture.0.lock();
    let mut want: Vec<(String, String, i64)> = services
        .iter()
        .enumerate()
        .flat_map(|(n, s)| {
            ["log.error.records", "log.records"].map(|m| (s.clone(), m.to_string(), n as i64 + 2))
        })
        .collect();
    want.sort();
    assert_eq!(points_by_service(&requests), want);
}
