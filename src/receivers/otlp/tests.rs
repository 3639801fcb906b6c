//! Unit tests of the receiver's decoding pieces: OTLP/JSON as the
//! specification's examples write it, content types, encodings, bounded
//! decompression and the status mapping.

use std::io::Write;
use std::time::Duration;

use super::encoding::{Compression, Payload, decompress};
use super::process::decode;
use super::signal::{Logs, Metrics, Traces};
use super::status::{Failure, code, retry_after_seconds};
use crate::model::otlp::ItemCount;
use crate::model::otlp::metrics::metric::Data;

#[test]
fn spec_example_json_decodes_for_every_signal() {
    let metrics = decode::<Metrics>(
        bytes::Bytes::from_static(include_bytes!("testdata/metrics.json")),
        Payload::Json,
    )
    .unwrap();
    assert_eq!(metrics.item_count(), 4);
    let scope = &metrics.request().resource_metrics[0].scope_metrics[0];
    assert_eq!(scope.scope.as_ref().unwrap().attributes.len(), 1);
    match &scope.metrics[3].data {
        Some(Data::ExponentialHistogram(h)) => {
            let p = &h.data_points[0];
            assert_eq!((p.count, p.zero_count, p.scale), (3, 1, 0));
            assert_eq!(p.positive.as_ref().unwrap().bucket_counts, vec![0, 2]);
        }
        other => panic!("expected an exponential histogram, got {other:?}"),
    }
    let traces = decode::<Traces>(
        bytes::Bytes::from_static(include_bytes!("testdata/traces.json")),
        Payload::Json,
    )
    .unwrap();
    let span = &traces.request().resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(span.trace_id[..4], [0x5b, 0x8e, 0xff, 0xf7]);
    assert_eq!(span.span_id.len(), 8);
    assert_eq!(span.kind, 2);
    let logs = decode::<Logs>(
        bytes::Bytes::from_static(include_bytes!("testdata/logs.json")),
        Payload::Json,
    )
    .unwrap();
    assert_eq!(logs.item_count(), 1);
    assert_eq!(
        logs.request().resource_logs[0].scope_logs[0].log_records[0]
            .attributes
            .len(),
        6
    );
}

#[test]
fn malformed_bodies_are_malformed_not_panics() {
    for body in [
        &b"{"[..],
        b"[]",
        b"{\"resourceMetrics\": 5}",
        b"\xff\x00\x01",
    ] {
        assert!(matches!(
            decode::<Metrics>(bytes::Bytes::copy_from_slice(body), Payload::Json),
            Err(Failure::Malformed(_))
        ));
    }
    assert!(matches!(
        decode::<Metrics>(
            bytes::Bytes::from_static(b"\x0a\xff\xff\xff\xff\x0f"),
            Payload::Protobuf
        ),
        Err(Failure::Malformed(_))
    ));
}

#[test]
fn content_types_and_encodings() {
    assert_eq!(
        Payload::from_content_type("application/x-protobuf"),
        Some(Payload::Protobuf)
    );
    assert_eq!(
        Payload::from_content_type("application/json; charset=utf-8"),
        Some(Payload::Json)
    );
    assert_eq!(
        Payload::from_content_type("Application/JSON"),
        Some(Payload::Json)
    );
    assert_eq!(Payload::from_content_type("text/plain"), None);
    assert_eq!(
        Compression::from_header(None).unwrap(),
        Compression::Identity
    );
    assert_eq!(
        Compression::from_header(Some("GZIP")).unwrap(),
        Compression::Gzip
    );
    assert_eq!(
        Compression::from_header(Some("zstd")).unwrap(),
        Compression::Zstd
    );
    assert!(matches!(
        Compression::from_header(Some("br")),
        Err(Failure::UnsupportedMediaType(_))
    ));
}

#[test]
fn decompression_stops_at_the_limit() {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(&vec![0u8; 1 << 20]).unwrap();
    let bomb = bytes::Bytes::from(gz.finish().unwrap());
    assert!(matches!(
        decompress(bomb.clone(), Compression::Gzip, 1000),
        Err(Failure::TooLarge(_))
    ));
    assert_eq!(
        decompress(bomb, Compression::Gzip, 1 << 20).unwrap().len(),
        1 << 20
    );
    let raw = {
        let mut d = flate2::write::DeflateEncoder::new(Vec::new(), flate2::Compression::fast());
        d.write_all(b"raw deflate").unwrap();
        d.finish().unwrap()
    };
    assert_eq!(
        &decompress(raw.into(), Compression::Deflate, 100).unwrap()[..],
        b"raw deflate"
    );
}

#[test]
fn failures_map_to_otlp_codes() {
    let overloaded = Failure::Overloaded {
        message: "x".into(),
        retry_after: Duration::from_millis(1500),
    };
    assert_eq!(overloaded.http_status(), 429);
    assert_eq!(overloaded.to_grpc().code(), tonic::Code::ResourceExhausted);
    assert_eq!(retry_after_seconds(Duration::from_millis(1500)), 2);
    assert_eq!(retry_after_seconds(Duration::ZERO), 1);
    assert_eq!(Failure::Malformed("m".into()).http_status(), 400);
    assert_eq!(
        Failure::Malformed("m".into()).to_grpc().code(),
        tonic::Code::InvalidArgument
    );
    let aborted = Failure::Aborted("a".into());
    assert_eq!(aborted.to_grpc().code(), tonic::Code::Cancelled);
    assert_eq!(aborted.rpc_code(), code::CANCELLED);
    assert_eq!(aborted.reason().as_str(), "aborted");
    assert_eq!(aborted.retry_after(), None);
    assert_eq!(Failure::TooLarge("t".into()).http_status(), 413);
    assert_eq!(Failure::UnsupportedMediaType("u".into()).http_status(), 415);
    let draining = Failure::ShuttingDown {
        message: "bye".into(),
        retry_after: Duration::from_secs(1),
    };
    assert_eq!(draining.http_status(), 503);
    assert_eq!(draining.to_grpc().code(), tonic::Code::Unavailable);
}

fn metric_json(metric: &str) -> Vec<u8> {
    format!(r#"{{"resourceMetrics":[{{"scopeMetrics":[{{"metrics":[{metric}]}}]}}]}}"#).into_bytes()
}

/// Errors inside a metric's data are 400s naming the problem, never a
/// silently dropped metric.
#[test]
fn json_errors_inside_metric_data_are_malformed() {
    let cases = [
        r#"{"name":"a","gauge":{"dataPoints":"oops"}}"#,
        r#"{"name":"a","histogram":{"dataPoints":[{"explicitBounds":["bad"]}]}}"#,
        r#"{"name":"a","gauge":{"dataPoints":[{"timeUnixNano":"not-a-number","asInt":"1"}]}}"#,
        r#"{"name":"a","sum":{"aggregationTemporality":"AGGREGATION_TEMPORALITY_SIDEWAYS","dataPoints":[]}}"#,
        r#"{"name":"a","sum":{"aggregation_temporality":"sideways","data_points":[]}}"#,
        r#"{"name":"a","gauge":{"dataPoints":[{"asDouble":"lots"}]}}"#,
        r#"{"name":"a","gauge":{"dataPoints":[{"asDouble":1,"asInt":"1"}]}}"#,
        r#"{"name":"a","gauge":{"dataPoints":[]},"sum":{"dataPoints":[]}}"#,
    ];
    for case in cases {
        let result = decode::<Metrics>(metric_json(case).into(), Payload::Json);
        assert!(
            matches!(result, Err(Failure::Malformed(_))),
            "{case}: {result:?}"
        );
    }
}

/// Doubles in every form the proto3 JSON mapping allows.
#[test]
fn json_doubles_accept_strings_and_specials() {
    let body = metric_json(
        r#"{"name":"a","gauge":{"dataPoints":[{"asDouble":"NaN"},{"asDouble":"Infinity"},{"asDouble":"-Infinity"},{"asDouble":"1.5"},{"asDouble":2},{"asInt":7},{"asInt":"-8"}]}}"#,
    );
    let request = decode::<Metrics>(body.into(), Payload::Json).unwrap();
    let Some(Data::Gauge(g)) =
        &request.request().resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("a gauge");
    };
    use crate::model::otlp::metrics::number_data_point::Value::{AsDouble, AsInt};
    let values: Vec<_> = g.data_points.iter().map(|p| p.value).collect();
    assert!(matches!(values[0], Some(AsDouble(v)) if v.is_nan()));
    assert_eq!(values[1], Some(AsDouble(f64::INFINITY)));
    assert_eq!(values[2], Some(AsDouble(f64::NEG_INFINITY)));
    assert_eq!(values[3], Some(AsDouble(1.5)));
    assert_eq!(values[4], Some(AsDouble(2.0)));
    assert_eq!(values[5], Some(AsInt(7)));
    assert_eq!(values[6], Some(AsInt(-8)));
}

/// A histogram's and an exponential histogram's doubles take the same
/// forms (`sum`, `min`, `max`, `explicitBounds`, `zeroThreshold`).
#[test]
fn json_histogram_doubles_accept_strings_and_specials() {
    let body = metric_json(
        r#"{"name":"h","histogram":{"aggregationTemporality":2,"dataPoints":[{"count":"3","sum":"NaN","min":"-Infinity","max":"Infinity","bucketCounts":["1",2],"explicitBounds":["0.5"]}]}},{"name":"e","exponentialHistogram":{"aggregationTemporality":1,"dataPoints":[{"count":1,"sum":"2.5","scale":1,"zeroCount":"0","zeroThreshold":"1e-9","positive":{"offset":1,"bucketCounts":["1"]},"min":null}]}}"#,
    );
    let request = decode::<Metrics>(body.into(), Payload::Json).unwrap();
    let metrics = &request.request().resource_metrics[0].scope_metrics[0].metrics;
    let Some(Data::Histogram(h)) = &metrics[0].data else {
        panic!("a histogram");
    };
    let p = &h.data_points[0];
    assert!(p.sum.is_some_and(f64::is_nan));
    assert_eq!(
        (p.min, p.max),
        (Some(f64::NEG_INFINITY), Some(f64::INFINITY))
    );
    assert_eq!(
        (p.count, &p.bucket_counts, &p.explicit_bounds),
        (3, &vec![1, 2], &vec![0.5])
    );
    assert_eq!(h.aggregation_temporality, 2);
    let Some(Data::ExponentialHistogram(e)) = &metrics[1].data else {
        panic!("an exponential histogram");
    };
    let p = &e.data_points[0];
    assert_eq!(
        (p.sum, p.zero_threshold, p.scale, p.min),
        (Some(2.5), 1e-9, 1, None)
    );
    assert_eq!(
        p.positive
            .as_ref()
            .map(|b| (b.offset, b.bucket_counts.clone())),
        Some((1, vec![1]))
    );
    for bad in [
        r#"{"name":"h","histogram":{"dataPoints":[{"sum":"lots"}]}}"#,
        r#"{"name":"h","histogram":{"dataPoints":[{"bucketCounts":[-1]}]}}"#,
        r#"{"name":"e","exponentialHistogram":{"dataPoints":[{"zeroThreshold":"x"}]}}"#,
    ] {
        let result = decode::<Metrics>(metric_json(bad).into(), Payload::Json);
        assert!(
            matches!(result, Err(Failure::Malformed(_))),
            "{bad}: {result:?}"
        );
    }
}

/// Proto field names, enum value names and string `doubleValue`s, which
/// the proto3 JSON mapping lets a sender use (and the OTel Collector
/// accepts), decode to the same request as the lowerCamelCase form.
#[test]
fn json_in_proto_field_names_and_enum_names_decodes() {
    let traces = br#"{"resource_spans":[{"resource":{"attributes":[{"key":"service.name","value":{"string_value":"svc"}}]},
        "scope_spans":[{"spans":[{"trace_id":"5b8efff798038103d269b633813fc60c","span_id":"eee19b7ec3c1b174",
        "name":"GET /","kind":"SPAN_KIND_SERVER","start_time_unix_nano":"1000","end_time_unix_nano":"2000",
        "status":{"code":"STATUS_CODE_ERROR"},
        "attributes":[{"key":"ratio","value":{"doubleValue":"0.25"}}]}]}]}]}"#;
    let request = decode::<Traces>(traces.to_vec().into(), Payload::Json).unwrap();
    let rs = &request.request().resource_spans[0];
    let span = &rs.scope_spans[0].spans[0];
    assert_eq!(span.name, "GET /");
    assert_eq!(span.kind, 2, "SPAN_KIND_SERVER");
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    assert_eq!(
        (span.start_time_unix_nano, span.end_time_unix_nano),
        (1000, 2000)
    );
    assert_eq!(span.trace_id.len(), 16);
    use crate::model::otlp::common::any_value::Value;
    let ratio = span.attributes[0]
        .value
        .as_ref()
        .and_then(|v| v.value.clone());
    assert_eq!(ratio, Some(Value::DoubleValue(0.25)));
    let service = rs.resource.as_ref().map(|r| r.attributes[0].clone());
    assert_eq!(
        service.and_then(|kv| kv.value).and_then(|v| v.value),
        Some(Value::StringValue("svc".into()))
    );

    let metrics = br#"{"resource_metrics":[{"scope_metrics":[{"metrics":[{"name":"calls",
        "sum":{"aggregation_temporality":"AGGREGATION_TEMPORALITY_CUMULATIVE","is_monotonic":true,
        "data_points":[{"time_unix_nano":"5","as_int":"7"}]}}]}]}]}"#;
    let request = decode::<Metrics>(metrics.to_vec().into(), Payload::Json).unwrap();
    let metric = &request.request().resource_metrics[0].scope_metrics[0].metrics[0];
    let Some(Data::Sum(sum)) = &metric.data else {
        panic!("a sum: {metric:?}");
    };
    assert_eq!((sum.aggregation_temporality, sum.is_monotonic), (2, true));
    assert_eq!(sum.data_points[0].time_unix_nano, 5);
    assert_eq!(request.item_count(), 1);

    let logs = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"SEVERITY_NUMBER_ERROR",
        "body":{"stringValue":"boom"}}]}]}]}"#;
    let request = decode::<Logs>(logs.to_vec().into(), Payload::Json).unwrap();
    let record = &request.request().resource_logs[0].scope_logs[0].log_records[0];
    assert_eq!(record.severity_number, 17, "SEVERITY_NUMBER_ERROR");

    // An unknown name is still an error, reported for the body as sent.
    let unknown =
        br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"severityNumber":"LOUD"}]}]}]}"#;
    let result = decode::<Logs>(unknown.to_vec().into(), Payload::Json);
    assert!(
        matches!(&result, Err(Failure::Malformed(m)) if m.contains("line 1")),
        "{result:?}"
    );
}

/// What else the proto3 JSON mapping allows: `null` for any field, 32-bit
/// integers and enums as strings, an empty array or key-value list as
/// `{}`. Each decodes as the protobuf form of the same request would.
#[test]
fn json_nulls_integer_strings_and_empty_lists_decode() {
    let traces = br#"{"resourceSpans":[{"resource":null,"scopeSpans":[{"spans":[{
        "traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"a",
        "kind":"2","flags":"256","droppedAttributesCount":"3","status":{"code":"2","message":null},
        "attributes":[{"key":"list","value":{"arrayValue":{}}},{"key":"map","value":{"kvlistValue":{}}},
                      {"key":"none","value":{"arrayValue":{"values":null}}}],
        "events":null}]}]}]}"#;
    let request = decode::<Traces>(traces.to_vec().into(), Payload::Json).unwrap();
    let span = &request.request().resource_spans[0].scope_spans[0].spans[0];
    assert_eq!(
        (span.kind, span.flags, span.dropped_attributes_count),
        (2, 256, 3)
    );
    assert_eq!(span.status.as_ref().map(|s| s.code), Some(2));
    use crate::model::otlp::common::any_value::Value;
    use crate::model::otlp::common::{ArrayValue, KeyValueList};
    let values: Vec<_> = span
        .attributes
        .iter()
        .map(|kv| kv.value.as_ref().and_then(|v| v.value.clone()))
        .collect();
    assert_eq!(
        values,
        [
            Some(Value::ArrayValue(ArrayValue { values: vec![] })),
            Some(Value::KvlistValue(KeyValueList { values: vec![] })),
            Some(Value::ArrayValue(ArrayValue { values: vec![] })),
        ]
    );

    let metrics = metric_json(
        r#"{"name":"e","unit":null,"exponentialHistogram":{"aggregationTemporality":"2","dataPoints":[{"count":"1","scale":"-1","flags":"0","positive":{"offset":"-2","bucketCounts":["1"]}}]}},
           {"name":"s","summary":{"dataPoints":[{"count":"2","sum":"NaN","quantileValues":[{"quantile":"0.5","value":"Infinity"}]}]}}"#,
    );
    let request = decode::<Metrics>(metrics.into(), Payload::Json).unwrap();
    let metrics = &request.request().resource_metrics[0].scope_metrics[0].metrics;
    let Some(Data::ExponentialHistogram(e)) = &metrics[0].data else {
        panic!("an exponential histogram: {metrics:?}");
    };
    assert_eq!(e.aggregation_temporality, 2);
    let p = &e.data_points[0];
    assert_eq!(
        (p.scale, p.positive.as_ref().map(|b| b.offset)),
        (-1, Some(-2))
    );
    let Some(Data::Summary(s)) = &metrics[1].data else {
        panic!("a summary: {metrics:?}");
    };
    let p = &s.data_points[0];
    assert!(p.sum.is_nan());
    assert_eq!(
        (
            p.count,
            p.quantile_values[0].quantile,
            p.quantile_values[0].value
        ),
        (2, 0.5, f64::INFINITY)
    );

    // Out of a 32-bit field's range, or not a number: refused.
    for bad in [
        r#"{"name":"e","exponentialHistogram":{"dataPoints":[{"scale":"4294967296"}]}}"#,
        r#"{"name":"g","gauge":{"dataPoints":[{"asInt":"1","flags":"-1"}]}}"#,
        r#"{"name":"s","summary":{"dataPoints":[{"sum":"lots"}]}}"#,
    ] {
        let result = decode::<Metrics>(metric_json(bad).into(), Payload::Json);
        assert!(
            matches!(result, Err(Failure::Malformed(_))),
            "{bad}: {result:?}"
        );
    }
}

/// An exemplar's value in any number form is kept, and one that is no
/// number refuses the request rather than vanishing.
#[test]
fn json_exemplar_values_are_read_or_refused() {
    let body = metric_json(
        r#"{"name":"g","gauge":{"dataPoints":[{"asInt":"1","exemplars":[
            {"asDouble":"0.25","timeUnixNano":"9","traceId":"5B8EFFF798038103D269B633813FC60C","spanId":"eee19b7ec3c1b174",
             "filteredAttributes":[{"key":"user","value":{"stringValue":"u"}}]},
            {"asInt":"-3"},{"asDouble":"NaN"}]}]}}"#,
    );
    let request = decode::<Metrics>(body.into(), Payload::Json).unwrap();
    let Some(Data::Gauge(g)) =
        &request.request().resource_metrics[0].scope_metrics[0].metrics[0].data
    else {
        panic!("a gauge");
    };
    use crate::model::otlp::metrics::exemplar::Value;
    let exemplars = &g.data_points[0].exemplars;
    assert_eq!(exemplars[0].value, Some(Value::AsDouble(0.25)));
    assert_eq!(exemplars[0].time_unix_nano, 9);
    assert_eq!(exemplars[0].trace_id[0], 0x5b);
    assert_eq!(exemplars[0].span_id.len(), 8);
    assert_eq!(exemplars[0].filtered_attributes[0].key, "user");
    assert_eq!(exemplars[1].value, Some(Value::AsInt(-3)));
    assert!(matches!(exemplars[2].value, Some(Value::AsDouble(v)) if v.is_nan()));
    for bad in [
        r#"{"asInt":"abc"}"#,
        r#"{"asDouble":1,"asInt":1}"#,
        r#"{"spanId":"xyz"}"#,
    ] {
        let body = metric_json(&format!(
            r#"{{"name":"g","gauge":{{"dataPoints":[{{"asInt":"1","exemplars":[{bad}]}}]}}}}"#
        ));
        let result = decode::<Metrics>(body.into(), Payload::Json);
        assert!(
            matches!(result, Err(Failure::Malformed(_))),
            "{bad}: {result:?}"
        );
    }
}

/// A trace id of other than 16 bytes or a span id of other than 8 is
/// refused (`trace.proto` calls it invalid, the OTel Collector refuses
/// it), in protobuf and in JSON, for spans, links, log records and
/// exemplars; an empty id is "no id" and accepted.
#[test]
fn ids_of_the_wrong_length_are_refused() {
    use crate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};
    use crate::model::otlp::trace::{ResourceSpans, ScopeSpans, Span, span::Link};
    use crate::model::otlp::{LogsRequest, TracesRequest};
    use prost::Message;
    let traces = |span: Span| TracesRequest {
        resource_spans: vec![ResourceSpans {
            scope_spans: vec![ScopeSpans {
                spans: vec![span],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let good = Span {
        trace_id: vec![1; 16],
        span_id: vec![2; 8],
        name: "a".into(),
        ..Default::default()
    };
    let cases = [
        (
            Span {
                trace_id: vec![1; 2],
                ..good.clone()
            },
            "trace_id: 2 bytes",
        ),
        (
            Span {
                span_id: vec![2; 1],
                ..good.clone()
            },
            "span_id: 1 bytes",
        ),
        (
            Span {
                parent_span_id: vec![3; 16],
                ..good.clone()
            },
            "parent_span_id: 16 bytes",
        ),
        (
            Span {
                links: vec![Link {
                    trace_id: vec![1; 8],
                    span_id: vec![2; 8],
                    ..Default::default()
                }],
                ..good.clone()
            },
            "Link.trace_id: 8 bytes",
        ),
    ];
    for (span, says) in cases {
        let body = traces(span).encode_to_vec();
        let result = decode::<Traces>(body.into(), Payload::Protobuf);
        assert!(
            matches!(&result, Err(Failure::Malformed(m)) if m.contains(says)),
            "{says}: {result:?}"
        );
    }
    for span in [
        good.clone(),
        Span {
            trace_id: vec![],
            span_id: vec![],
            ..good
        },
    ] {
        let body = traces(span).encode_to_vec();
        assert!(decode::<Traces>(body.into(), Payload::Protobuf).is_ok());
    }
    let logs = LogsRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    trace_id: vec![1; 15],
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let result = decode::<Logs>(logs.encode_to_vec().into(), Payload::Protobuf);
    assert!(
        matches!(&result, Err(Failure::Malformed(m)) if m.contains("trace_id")),
        "{result:?}"
    );

    let json = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"abcd","spanId":"eee19b7ec3c1b174","name":"a"}]}]}]}"#;
    let result = decode::<Traces>(json.to_vec().into(), Payload::Json);
    assert!(
        matches!(&result, Err(Failure::Malformed(m)) if m.contains("trace_id: 2 bytes")),
        "{result:?}"
    );
    let json = br#"{"resourceLogs":[{"scopeLogs":[{"logRecords":[{"spanId":"ab"}]}]}]}"#;
    let result = decode::<Logs>(json.to_vec().into(), Payload::Json);
    assert!(
        matches!(&result, Err(Failure::Malformed(m)) if m.contains("span_id")),
        "{result:?}"
    );
    let json = metric_json(
        r#"{"name":"g","gauge":{"dataPoints":[{"asInt":"1","exemplars":[{"asInt":"1","traceId":"ab"}]}]}}"#,
    );
    let result = decode::<Metrics>(json.into(), Payload::Json);
    assert!(
        matches!(&result, Err(Failure::Malformed(m)) if m.contains("trace_id")),
        "{result:?}"
    );
}
