//! Tests of the log-metrics connector: severity naming, error detection,
//! counts per service, overflow.

use crate::model::MetricsBatch;
use std::sync::Arc;

use parking_lot::Mutex;

use super::*;
use crate::model::MetricsRequest;
use crate::model::otlp::common::{AnyValue, KeyValue, any_value};
use crate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};
use crate::model::otlp::resource::Resource;

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

fn request(service: &str, records: Vec<LogRecord>) -> LogsRequest {
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
