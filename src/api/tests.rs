//! Tests of the API's own parts: the tail rings (bounds, order, service
//! filter, what a span and a log record show, truncation) and the strict
//! reading of query parameters.

use axum::extract::Query;
use serde_json::{Value, json};

use super::config::TailConfig;
use super::error::Params;
use super::tail::Tail;
use crate::model::otlp::common::{AnyValue, ArrayValue, KeyValue, any_value::Value as Any};
use crate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};
use crate::model::otlp::resource::Resource;
use crate::model::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status};
use crate::model::{LogsRequest, TracesBatch, TracesRequest};
use crate::pipeline::{LogsConsumer, TracesConsumer};

fn attr(key: &str, value: Any) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![attr("service.name", Any::StringValue(service.into()))],
        ..Default::default()
    })
}

fn span(name: &str) -> Span {
    Span {
        trace_id: vec![0xab; 16],
        span_id: vec![0x01, 0x02, 0x03, 0x04, 0x05, 0x06, 0x07, 0x08],
        name: name.into(),
        kind: 3,
        start_time_unix_nano: 1_000_000_000,
        end_time_unix_nano: 1_500_000_000,
        ..Default::default()
    }
}

fn traces(batches: Vec<(&str, Vec<Span>)>) -> TracesBatch {
    TracesBatch::from_request(TracesRequest {
        resource_spans: batches
            .into_iter()
            .map(|(service, spans)| ResourceSpans {
                resource: resource(service),
                scope_spans: vec![ScopeSpans {
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    })
}

fn tail(spans: usize, logs: usize) -> Tail {
    Tail::new(&TailConfig {
        spans,
        logs,
        max_string_length: 16,
        max_attributes: 2,
    })
}

fn parse(json: &str) -> Vec<Value> {
    serde_json::from_str::<Value>(json)
        .unwrap()
        .as_array()
        .unwrap()
        .clone()
}

fn names(json: &str) -> Vec<String> {
    parse(json)
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

#[test]
fn span_shows_ids_kind_status_duration_service_and_attributes() {
    let t = tail(10, 10);
    let mut s = span("GET /cart");
    s.parent_span_id = vec![0xff; 8];
    s.status = Some(Status {
        code: 2,
        message: "boom".into(),
    });
    s.attributes = vec![
        attr("http.status_code", Any::IntValue(500)),
        attr("retry", Any::BoolValue(true)),
        attr("dropped", Any::DoubleValue(1.5)),
    ];
    s.dropped_attributes_count = 1;
    t.consume_traces(&traces(vec![("checkout", vec![s])]))
        .unwrap();
    assert_eq!(
        parse(&t.spans(None, 10)),
        [json!({
            "trace_id": "abababababababababababababababab",
            "span_id": "0102030405060708",
            "parent_span_id": "ffffffffffffffff",
            "name": "GET /cart",
            "kind": "client",
            "status": "error",
            "status_message": "boom",
            "start_time_unix_nano": 1_000_000_000u64,
            "duration_seconds": 0.5,
            "service": "checkout",
            "attributes": {"http.status_code": 500, "retry": true},
            "dropped_attributes": 2,
        })]
    );
}

#[test]
fn ring_keeps_the_newest_and_answers_newest_first() {
    let t = tail(3, 0);
    t.consume_traces(&traces(vec![("a", vec![span("1"), span("2")])]))
        .unwrap();
    t.consume_traces(&traces(vec![
        ("b", vec![span("3")]),
        ("a", vec![span("4")]),
    ]))
    .unwrap();
    assert_eq!(names(&t.spans(None, 10)), ["4", "3", "2"]);
    assert_eq!(names(&t.spans(None, 2)), ["4", "3"]);
    assert_eq!(names(&t.spans(Some("a"), 10)), ["4", "2"]);
    assert_eq!(names(&t.spans(Some("b"), 10)), ["3"]);
    assert!(names(&t.spans(Some("c"), 10)).is_empty());
    // A request larger than the ring keeps only its last spans (the ring
    // is full now: a request is captured once per interval).
    std::thread::sleep(super::tail::CAPTURE_EVERY);
    let many: Vec<Span> = (0..7).map(|i| span(&format!("m{i}"))).collect();
    t.consume_traces(&traces(vec![
        ("a", many[..2].to_vec()),
        ("b", many[2..].to_vec()),
    ]))
    .unwrap();
    assert_eq!(names(&t.spans(None, 10)), ["m6", "m5", "m4"]);
    // A tail of 0 keeps nothing.
    t.consume_logs(&LogsRequest::default().into()).unwrap();
    assert_eq!(t.logs(None, 10), "[]");
}

#[test]
fn long_strings_are_cut_at_a_character_boundary() {
    let t = tail(10, 10);
    // 15 ASCII bytes then a 2-byte character straddling the 16-byte limit.
    let long = "abcdefghijklmnoé and more";
    let mut s = span(long);
    s.attributes = vec![attr(
        "list",
        Any::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(Any::StringValue("0123456789abcdef".into())),
            }],
        }),
    )];
    t.consume_traces(&traces(vec![("svc", vec![s])])).unwrap();
    let got = &parse(&t.spans(None, 1))[0];
    assert_eq!(got["name"], "abcdefghijklmno…");
    assert_eq!(got["attributes"]["list"], "[\"0123456789abcd…");
}

#[test]
fn log_record_shows_time_severity_body_service_and_trace() {
    let t = tail(0, 10);
    let records = vec![
        LogRecord {
            time_unix_nano: 3,
            severity_number: 17,
            body: Some(AnyValue {
                value: Some(Any::StringValue("payment failed".into())),
            }),
            trace_id: vec![0x0c; 16],
            span_id: vec![0x0d; 8],
            attributes: vec![attr("order", Any::IntValue(42))],
            ..Default::default()
        },
        LogRecord {
            observed_time_unix_nano: 4,
            severity_text: "warning".into(),
            severity_number: 13,
            body: Some(AnyValue {
                value: Some(Any::IntValue(7)),
            }),
            ..Default::default()
        },
    ];
    let request = LogsRequest {
        resource_logs: vec![ResourceLogs {
            resource: resource("payments"),
            scope_logs: vec![ScopeLogs {
                log_records: records,
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    t.consume_logs(&request.into()).unwrap();
    assert_eq!(
        parse(&t.logs(Some("payments"), 10)),
        [
            json!({
                "time_unix_nano": 4,
                "severity": "warning",
                "severity_number": 13,
                "body": "7",
                "service": "payments",
                "attributes": {},
            }),
            json!({
                "time_unix_nano": 3,
                "severity": "ERROR",
                "severity_number": 17,
                "body": "payment failed",
                "service": "payments",
                "trace_id": "0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c0c",
                "span_id": "0d0d0d0d0d0d0d0d",
                "attributes": {"order": 42},
            }),
        ]
    );
    assert_eq!(t.spans(None, 10), "[]");
}

fn params(pairs: &[(&str, &str)]) -> super::error::RawParams {
    Ok(Query(
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect(),
    ))
}

#[test]
fn parameters_are_read_strictly() {
    let p = Params::read(
        params(&[("match", "up"), ("limit", "5")]),
        &["match", "limit"],
        false,
    )
    .unwrap();
    assert_eq!(p.get("match"), Some("up"));
    assert_eq!(p.limit(100, 1000), Ok(5));
    assert_eq!(p.limit(100, 3), Ok(3));
    let none = Params::read(params(&[]), &["limit"], false).unwrap();
    assert_eq!(none.limit(100, 1000), Ok(100));
    for bad in ["0", "-1", "ten"] {
        let p = Params::read(params(&[("limit", bad)]), &["limit"], false).unwrap();
        let err = p.limit(1, 1).unwrap_err();
        assert_eq!(err.status, 400);
        assert_eq!(
            err.message,
            format!("limit `{bad}` must be a positive integer")
        );
    }
    let err = Params::read(params(&[("matc", "up")]), &["match", "limit"], false).unwrap_err();
    assert_eq!(
        err.message,
        "unknown parameter `matc`; this endpoint takes match, limit"
    );
    let err = Params::read(params(&[("a", "1"), ("a", "2")]), &[], true).unwrap_err();
    assert_eq!(err.message, "parameter `a` is given twice");
    let p = Params::read(params(&[("name", "m"), ("job", "x")]), &["name"], true).unwrap();
    assert_eq!(p.rest(&["name"]).collect::<Vec<_>>(), [("job", "x")]);
}
