//! The hostile-input corpus: requests a broken or malicious sender might
//! send, each with its defined outcome, replayed over OTLP/HTTP and
//! OTLP/gRPC against one collector. After the corpus the collector still
//! serves, the good series sent first is intact, and every refusal was
//! counted. (Garbage, truncated protobuf, bad JSON, unknown types and
//! encodings, oversize bodies and compression bombs are in
//! `http_receiver.rs` and `grpc_receiver.rs`; the fuzz corpus is replayed
//! by `fuzz_corpus.rs`.) docs/RELIABILITY.md lists the outcomes.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::{Duration, Instant};

use common::{Collector, http_client};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message;
use streamgate::model::otlp::common::{AnyValue, ArrayValue, KeyValue, KeyValueList, any_value};
use streamgate::model::otlp::metrics::{
    ExponentialHistogram, ExponentialHistogramDataPoint, Gauge, Histogram, HistogramDataPoint,
    Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum,
    exponential_histogram_data_point::Buckets, metric::Data, number_data_point,
};
use streamgate::model::otlp::resource::Resource;
use streamgate::model::otlp::{MetricsRequest, MetricsResponse};
use streamgate::receivers::otlp::status::RpcStatus;

const T0: u64 = 1_700_000_000_000_000_000;

fn string(s: &str) -> Option<AnyValue> {
    Some(AnyValue {
        value: Some(any_value::Value::StringValue(s.into())),
    })
}

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: string(value),
        ..Default::default()
    }
}

fn request(service: &str, metrics: Vec<Metric>) -> MetricsRequest {
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attr("service.name", service)],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn number_point(attributes: Vec<KeyValue>, time: u64, value: f64) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: if time == 0 { 0 } else { T0 - 1 },
        time_unix_nano: time,
        value: Some(number_data_point::Value::AsDouble(value)),
        ..Default::default()
    }
}

fn gauge(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: "hostile".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: points,
        })),
        ..Default::default()
    }
}

fn counter(name: &str, points: Vec<NumberDataPoint>) -> Metric {
    Metric {
        name: name.into(),
        description: "hostile".into(),
        data: Some(Data::Sum(Sum {
            aggregation_temporality: 2,
            is_monotonic: true,
            data_points: points,
        })),
        ..Default::default()
    }
}

/// An attribute value nested `depth` levels deep (arrays in key-value
/// lists).
fn nested(depth: usize) -> AnyValue {
    let mut value = AnyValue {
        value: Some(any_value::Value::IntValue(1)),
    };
    for i in 0..depth {
        value = if i % 2 == 0 {
            AnyValue {
                value: Some(any_value::Value::ArrayValue(ArrayValue {
                    values: vec![value],
                })),
            }
        } else {
            AnyValue {
                value: Some(any_value::Value::KvlistValue(KeyValueList {
                    values: vec![KeyValue {
                        key: "k".into(),
                        value: Some(value),
                        ..Default::default()
                    }],
                })),
            }
        };
    }
    value
}

/// What a request must get.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Outcome {
    /// Accepted whole (200 / OK, no partial success).
    Accepted,
    /// Accepted with `rejected` points refused in `partial_success`, whose
    /// message contains the text.
    Partial(i64, &'static str),
    /// Refused whole as malformed (400 / INVALID_ARGUMENT), the message
    /// containing the text.
    Malformed(&'static str),
}

struct Case {
    name: &'static str,
    /// Built per transport: `suffix` keeps series names apart.
    build: fn(&str) -> MetricsRequest,
    outcome: Outcome,
}

fn cases() -> Vec<Case> {
    vec![
        Case {
            name: "attribute nested 200 levels deep",
            build: |sfx| {
                request(
                    "hostile",
                    vec![gauge(
                        &format!("deep_{sfx}"),
                        vec![number_point(
                            vec![KeyValue {
                                key: "deep".into(),
                                value: Some(nested(200)),
                                ..Default::default()
                            }],
                            T0,
                            1.0,
                        )],
                    )],
                )
            },
            outcome: Outcome::Malformed("nested deeper than"),
        },
        Case {
            name: "100,000 attributes on one point",
            build: |sfx| {
                let attributes = (0..100_000).map(|i| attr(&format!("a{i}"), "v")).collect();
                request(
                    "hostile",
                    vec![gauge(
                        &format!("wide_{sfx}"),
                        vec![number_point(attributes, T0, 1.0)],
                    )],
                )
            },
            outcome: Outcome::Partial(1, "attributes"),
        },
        Case {
            name: "a 1 MiB attribute value",
            build: |sfx| {
                request(
                    "hostile",
                    vec![gauge(
                        &format!("long_{sfx}"),
                        vec![number_point(
                            vec![attr("blob", &"x".repeat(1 << 20))],
                            T0,
                            1.0,
                        )],
                    )],
                )
            },
            outcome: Outcome::Partial(1, "bytes"),
        },
        Case {
            name: "NaN and ±Inf gauge values",
            build: |sfx| {
                request(
                    "hostile",
                    vec![gauge(
                        &format!("special_{sfx}"),
                        vec![
                            number_point(vec![attr("v", "nan")], T0, f64::NAN),
                            number_point(vec![attr("v", "inf")], T0, f64::INFINITY),
                            number_point(vec![attr("v", "-inf")], T0, f64::NEG_INFINITY),
                        ],
                    )],
                )
            },
            outcome: Outcome::Accepted,
        },
        Case {
            name: "a negative monotonic counter",
            build: |sfx| {
                request(
                    "hostile",
                    vec![counter(
                        &format!("negative_{sfx}"),
                        vec![number_point(vec![], T0, -5.0)],
                    )],
                )
            },
            outcome: Outcome::Partial(1, "negative"),
        },
        Case {
            name: "histogram bucket counts disagree with count",
            build: |sfx| {
                request(
                    "hostile",
                    vec![Metric {
                        name: format!("mismatch_{sfx}"),
                        description: "hostile".into(),
                        data: Some(Data::Histogram(Histogram {
                            aggregation_temporality: 2,
                            data_points: vec![HistogramDataPoint {
                                time_unix_nano: T0,
                                count: 10,
                                sum: Some(1.0),
                                bucket_counts: vec![1, 2],
                                explicit_bounds: vec![1.0],
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    }],
                )
            },
            outcome: Outcome::Partial(1, "bucket counts sum to 3 but count is 10"),
        },
        Case {
            name: "exponential histogram buckets disagree with count",
            build: |sfx| {
                request(
                    "hostile",
                    vec![Metric {
                        name: format!("exp_mismatch_{sfx}"),
                        description: "hostile".into(),
                        data: Some(Data::ExponentialHistogram(ExponentialHistogram {
                            aggregation_temporality: 2,
                            data_points: vec![ExponentialHistogramDataPoint {
                                time_unix_nano: T0,
                                count: 10,
                                zero_count: 1,
                                positive: Some(Buckets {
                                    offset: 0,
                                    bucket_counts: vec![1, 1],
                                }),
                                ..Default::default()
                            }],
                        })),
                        ..Default::default()
                    }],
                )
            },
            outcome: Outcome::Partial(1, "zero and bucket counts sum to 3 but count is 10"),
        },
        Case {
            name: "metrics without data (no points to reject: a warning)",
            build: |sfx| {
                request(
                    "hostile",
                    (0..3)
                        .map(|i| Metric {
                            name: format!("empty_{i}_{sfx}"),
                            ..Default::default()
                        })
                        .collect(),
                )
            },
            outcome: Outcome::Partial(0, "has no data"),
        },
        Case {
            name: "zero and far-future timestamps",
            build: |sfx| {
                request(
                    "hostile",
                    vec![gauge(
                        &format!("when_{sfx}"),
                        vec![
                            number_point(vec![attr("t", "zero")], 0, 1.0),
                            number_point(vec![attr("t", "future")], u64::MAX, 2.0),
                        ],
                    )],
                )
            },
            outcome: Outcome::Accepted,
        },
        Case {
            name: "the same series twice in one request",
            build: |sfx| {
                request(
                    "hostile",
                    vec![gauge(
                        &format!("twice_{sfx}"),
                        vec![
                            number_point(vec![attr("s", "x")], T0, 1.0),
                            number_point(vec![attr("s", "x")], T0 + 1, 2.0),
                        ],
                    )],
                )
            },
            outcome: Outcome::Accepted,
        },
        Case {
            name: "one name sent as a gauge and as a counter",
            build: |sfx| {
                let name = format!("conflict_{sfx}");
                request(
                    "hostile",
                    vec![
                        gauge(&name, vec![number_point(vec![], T0, 1.0)]),
                        counter(
                            &format!("{name}_total"),
                            vec![number_point(vec![], T0, 1.0)],
                        ),
                    ],
                )
            },
            outcome: Outcome::Partial(1, "like those of gauge"),
        },
    ]
}

/// Sends over HTTP; returns the status code, the partial success or the
/// refusal message.
fn send_http(collector: &Collector, request: &MetricsRequest) -> (u16, i64, String) {
    let response = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .expect("POST /v1/metrics");
    let code = response.status().as_u16();
    let bytes = response.bytes().expect("body");
    if code == 200 {
        let r = MetricsResponse::decode(&bytes[..]).expect("ExportMetricsServiceResponse");
        let partial = r.partial_success.unwrap_or_default();
        (code, partial.rejected_data_points, partial.error_message)
    } else {
        let status = RpcStatus::decode(&bytes[..]).expect("google.rpc.Status");
        (code, 0, status.message)
    }
}

fn check_http(case: &Case, (code, rejected, message): (u16, i64, String)) {
    let name = case.name;
    match case.outcome {
        Outcome::Accepted => {
            assert_eq!((code, rejected), (200, 0), "{name}: {message}");
        }
        Outcome::Partial(n, text) => {
            assert_eq!((code, rejected), (200, n), "{name}: {message}");
            assert!(message.contains(text), "{name}: {message}");
        }
        Outcome::Malformed(text) => {
            assert_eq!(code, 400, "{name}: {message}");
            assert!(message.contains(text), "{name}: {message}");
        }
    }
}

#[test]
fn every_hostile_request_gets_its_defined_outcome_and_harms_nothing() {
    let collector = Collector::start();
    let good = request(
        "good",
        vec![counter("orders", vec![number_point(vec![], T0, 7.0)])],
    );
    assert_eq!(send_http(&collector, &good).0, 200);

    for case in cases() {
        check_http(&case, send_http(&collector, &(case.build)("http")));
    }
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = MetricsServiceClient::connect(collector.grpc_url())
            .await
            .expect("connect")
            .max_decoding_message_size(64 << 20);
        for case in cases() {
            let name = case.name;
            let result = client.export((case.build)("grpc")).await;
            match (case.outcome, result) {
                (Outcome::Accepted, Ok(r)) => {
                    let partial = r.into_inner().partial_success.unwrap_or_default();
                    assert_eq!(partial.rejected_data_points, 0, "{name}: {partial:?}");
                }
                (Outcome::Partial(n, text), Ok(r)) => {
                    let partial = r.into_inner().partial_success.unwrap_or_default();
                    assert_eq!(partial.rejected_data_points, n, "{name}: {partial:?}");
                    assert!(partial.error_message.contains(text), "{name}: {partial:?}");
                }
                (Outcome::Malformed(text), Err(status)) => {
                    assert_eq!(status.code(), tonic::Code::InvalidArgument, "{name}");
                    assert!(status.message().contains(text), "{name}: {status:?}");
                }
                (expected, got) => panic!("{name}: expected {expected:?}, got {got:?}"),
            }
        }
    });

    // Still serving; the good series is intact; the accepted odd values
    // are rendered as the exposition format writes them.
    let s = collector.scrape();
    assert_eq!(s.get("orders_total", &[("job", "good")]), Some(7.0));
    let text = collector.scrape_text();
    for sfx in ["http", "grpc"] {
        assert!(
            text.contains(&format!("special_{sfx}{{job=\"hostile\",v=\"inf\"}} +Inf")),
            "{text}"
        );
        assert!(text.contains(&format!("special_{sfx}{{job=\"hostile\",v=\"nan\"}} NaN")));
        assert_eq!(
            s.get(&format!("twice_{sfx}"), &[("job", "hostile"), ("s", "x")]),
            Some(2.0)
        );
        assert!(s.matching(&format!("deep_{sfx}"), &[]).is_empty());
        assert!(s.matching(&format!("wide_{sfx}"), &[]).is_empty());
        assert!(s.matching(&format!("long_{sfx}"), &[]).is_empty());
    }
    let malformed = s
        .matching(
            "streamgate_receiver_refused_requests_total",
            &[("reason", "malformed")],
        )
        .iter()
        .map(|(_, v)| v)
        .sum::<f64>();
    assert_eq!(malformed, 2.0, "one nested request per transport");
}

/// A sender that trickles its headers (slow loris) is cut off by the
/// header read timeout; one that stalls in its body gets 408; meanwhile
/// other requests are served.
#[test]
fn slow_senders_are_cut_off_and_others_are_served() {
    let collector = Collector::start_with(common::Options {
        receiver_extra: "read_timeout: 2s".into(),
        ..Default::default()
    });
    let mut slow = TcpStream::connect(collector.http).expect("connect");
    slow.set_read_timeout(Some(Duration::from_secs(40)))
        .expect("timeout");
    let started = Instant::now();
    slow.write_all(b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\n")
        .expect("first header bytes");
    let good = request(
        "good",
        vec![counter("served", vec![number_point(vec![], T0, 1.0)])],
    );
    // Another sender is served while the slow one hangs.
    assert_eq!(send_http(&collector, &good).0, 200);
    // Keep trickling one header byte a second; the server must close the
    // connection (read returns 0 or an error) well before 40 s.
    let mut buf = [0u8; 256];
    let mut closed = false;
    slow.set_read_timeout(Some(Duration::from_secs(1)))
        .expect("timeout");
    while !closed && started.elapsed() < Duration::from_secs(20) {
        if slow.write_all(b"X").is_err() {
            closed = true;
            break;
        }
        closed = match slow.read(&mut buf) {
            // Closed, or answered (408 / 400): either ends it.
            Ok(_) => true,
            Err(e) => !matches!(
                e.kind(),
                std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut
            ),
        };
    }
    let took = started.elapsed();
    assert!(closed, "slow connection still open after {took:?}");
    assert!(took < Duration::from_secs(10), "closed after {took:?}");

    // A body that stalls halfway: 408 with a Status body, counted.
    let body = good.encode_to_vec();
    let mut stalled = TcpStream::connect(collector.http).expect("connect");
    let head = format!(
        "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    stalled.write_all(head.as_bytes()).expect("headers");
    stalled
        .write_all(&body[..body.len() / 2])
        .expect("half the body");
    stalled
        .set_read_timeout(Some(Duration::from_secs(15)))
        .expect("timeout");
    let mut answer = Vec::new();
    let mut buf = [0u8; 1024];
    while let Ok(n) = stalled.read(&mut buf) {
        if n == 0 {
            break;
        }
        answer.extend_from_slice(&buf[..n]);
        if answer.windows(4).any(|w| w == b"\r\n\r\n") {
            break;
        }
    }
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    let timeouts = collector
        .scrape()
        .matching(
            "streamgate_receiver_refused_requests_total",
            &[("reason", "timeout")],
        )
        .iter()
        .map(|(_, v)| v)
        .sum::<f64>();
    assert_eq!(timeouts, 1.0);
}

/// A log record whose body is nested 150 levels deep (prost's decoder
/// alone recursed until the stack overflowed, killing the process): 400
/// naming the nesting, over HTTP and gRPC, and the collector lives on.
#[test]
fn a_deeply_nested_log_body_is_refused_not_a_crash() {
    use opentelemetry_proto::tonic::collector::logs::v1::ExportLogsServiceRequest;
    use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
    use streamgate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};

    let collector = Collector::start();
    let request = ExportLogsServiceRequest {
        resource_logs: vec![ResourceLogs {
            scope_logs: vec![ScopeLogs {
                log_records: vec![LogRecord {
                    body: Some(nested(150)),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    };
    let response = http_client()
        .post(collector.otlp_http_url("/v1/logs"))
        .header("content-type", "application/x-protobuf")
        .body(request.encode_to_vec())
        .send()
        .expect("POST /v1/logs");
    assert_eq!(response.status().as_u16(), 400);
    let status = RpcStatus::decode(response.bytes().expect("body")).expect("Status");
    assert!(
        status.message.contains("nested deeper"),
        "{}",
        status.message
    );
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = LogsServiceClient::connect(collector.grpc_url())
            .await
            .expect("connect");
        let err = client.export(request).await.expect_err("refused");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
    });
    // The fuzzer's two requests that crashed the process (thousands of
    // levels of values, and of groups): refused, and it lives on.
    for file in [
        "logs-nested-anyvalue-crash.binpb",
        "logs-nested-groups-crash.binpb",
    ] {
        let path = format!(
            "{}/src/receivers/otlp/testdata/{file}",
            env!("CARGO_MANIFEST_DIR")
        );
        let body = std::fs::read(&path).expect("crash input");
        let response = http_client()
            .post(collector.otlp_http_url("/v1/logs"))
            .header("content-type", "application/x-protobuf")
            .body(body)
            .send()
            .expect("POST /v1/logs");
        assert_eq!(response.status().as_u16(), 400, "{file}");
    }
    // Still serving.
    assert!(collector.scrape().has_family("streamgate_uptime_seconds"));
}

/// Oversized headers: more than 100 fields on HTTP/1.1 get 431, a header
/// list over 16 KiB is refused on OTLP/gRPC, and the collector serves the
/// next request as usual.
#[test]
fn oversized_headers_are_refused() {
    let collector = Collector::start();
    let body = request(
        "headers",
        vec![gauge("ok", vec![number_point(vec![], T0, 1.0)])],
    )
    .encode_to_vec();
    let mut many = reqwest::header::HeaderMap::new();
    for i in 0..150 {
        many.insert(
            reqwest::header::HeaderName::from_bytes(format!("x-h{i}").as_bytes()).expect("name"),
            "v".parse().expect("value"),
        );
    }
    let response = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .headers(many)
        .body(body.clone())
        .send()
        .expect("answered");
    assert_eq!(response.status().as_u16(), 431);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = MetricsServiceClient::connect(collector.grpc_url())
            .await
            .expect("connect");
        let mut export = tonic::Request::new(MetricsRequest::decode(&body[..]).expect("request"));
        export
            .metadata_mut()
            .insert("x-big", "x".repeat(32 * 1024).parse().expect("metadata"));
        let err = client.export(export).await.expect_err("refused");
        assert_ne!(err.code(), tonic::Code::Ok, "{err:?}");
        // The same connection's next, normal request is served.
        let ok = client
            .export(MetricsRequest::decode(&body[..]).expect("request"))
            .await;
        assert!(ok.is_ok(), "{ok:?}");
    });
    let response = http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("content-type", "application/x-protobuf")
        .body(body)
        .send()
        .expect("answered");
    assert_eq!(response.status().as_u16(), 200);
}
