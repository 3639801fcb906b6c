//! Black-box tests of OTLP/HTTP: encodings, compression, and every kind of
//! bad input answered with the status code the OTLP specification gives,
//! a `google.rpc.Status` body, a count in the self-metrics, and no harm to
//! data already accepted.

mod common;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

use common::{Collector, Options, http_client};
use prost::Message;
use streamgate::model::otlp::common::{AnyValue, KeyValue, any_value};
use streamgate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
    number_data_point,
};
use streamgate::model::otlp::resource::Resource;
use streamgate::model::otlp::{MetricsRequest, MetricsResponse};
use streamgate::receivers::otlp::status::RpcStatus;

const PROTOBUF: &str = "application/x-protobuf";

fn attr(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}

fn request(metrics: Vec<Metric>) -> MetricsRequest {
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![attr("service.name", "checkout")],
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

fn gauge(name: &str, value: f64) -> Metric {
    Metric {
        name: name.into(),
        description: "a test gauge".into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![NumberDataPoint {
                time_unix_nano: 1_700_000_000_000_000_000,
                value: Some(number_data_point::Value::AsDouble(value)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

fn counter(name: &str, value: i64) -> Metric {
    Metric {
        name: name.into(),
        description: "a test counter".into(),
        data: Some(Data::Sum(Sum {
            aggregation_temporality: 2,
            is_monotonic: true,
            data_points: vec![NumberDataPoint {
                start_time_unix_nano: 1_600_000_000_000_000_000,
                time_unix_nano: 1_700_000_000_000_000_000,
                value: Some(number_data_point::Value::AsInt(value)),
                ..Default::default()
            }],
        })),
        ..Default::default()
    }
}

fn post(
    collector: &Collector,
    path: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: Vec<u8>,
) -> reqwest::blocking::Response {
    let mut req = http_client()
        .post(collector.otlp_http_url(path))
        .header("Content-Type", content_type)
        .body(body);
    if let Some(e) = encoding {
        req = req.header("Content-Encoding", e);
    }
    req.send().expect("request sent")
}

fn status_body(response: reqwest::blocking::Response) -> (u16, RpcStatus) {
    let code = response.status().as_u16();
    let json = response.headers().get("content-type").is_some_and(|v| {
        v.to_str()
            .unwrap_or_default()
            .starts_with("application/json")
    });
    let bytes = response.bytes().expect("body");
    let status = if json {
        let v: serde_json::Value = serde_json::from_slice(&bytes).expect("JSON status body");
        RpcStatus {
            code: v["code"].as_i64().expect("code") as i32,
            message: v["message"].as_str().expect("message").to_string(),
            details: vec![],
        }
    } else {
        RpcStatus::decode(&bytes[..]).expect("protobuf google.rpc.Status body")
    };
    (code, status)
}

fn gzip(data: &[u8]) -> Vec<u8> {
    let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    e.write_all(data).unwrap();
    e.finish().unwrap()
}

fn refused(collector: &Collector, reason: &str) -> f64 {
    collector
        .scrape()
        .get(
            "streamgate_receiver_refused_requests_total",
            &[
                ("signal", "metrics"),
                ("transport", "http"),
                ("reason", reason),
            ],
        )
        .unwrap_or(0.0)
}

/// Protobuf and JSON requests, plain and gzip/deflate/zstd compressed, are
/// all accepted and answered in the request's own encoding.
#[test]
fn accepts_every_encoding_and_answers_in_kind() {
    let collector = Collector::start();
    let body = request(vec![gauge("enc.proto", 1.0)]).encode_to_vec();
    let r = post(&collector, "/v1/metrics", PROTOBUF, None, body);
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], PROTOBUF);
    let response = MetricsResponse::decode(r.bytes().unwrap()).expect("protobuf response");
    assert!(response.partial_success.is_none());

    let json = serde_json::to_vec(&request(vec![gauge("enc.json", 2.0)])).unwrap();
    let r = post(
        &collector,
        "/v1/metrics",
        "application/json",
        None,
        json.clone(),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(r.headers()["content-type"], "application/json");
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).expect("JSON response");
    assert!(v.is_object() && v.get("partialSuccess").is_none(), "{v}");

    let gz = gzip(&request(vec![gauge("enc.gzip", 3.0)]).encode_to_vec());
    assert_eq!(
        post(&collector, "/v1/metrics", PROTOBUF, Some("gzip"), gz).status(),
        200
    );

    let mut z = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::default());
    z.write_all(&request(vec![gauge("enc.deflate", 4.0)]).encode_to_vec())
        .unwrap();
    let deflated = z.finish().unwrap();
    assert_eq!(
        post(
            &collector,
            "/v1/metrics",
            PROTOBUF,
            Some("deflate"),
            deflated
        )
        .status(),
        200
    );

    let zstd = zstd::encode_all(
        &request(vec![gauge("enc.zstd", 5.0)]).encode_to_vec()[..],
        3,
    )
    .unwrap();
    assert_eq!(
        post(&collector, "/v1/metrics", PROTOBUF, Some("zstd"), zstd).status(),
        200
    );

    let s = collector.scrape();
    for (name, value) in [
        ("enc_proto", 1.0),
        ("enc_json", 2.0),
        ("enc_gzip", 3.0),
        ("enc_deflate", 4.0),
        ("enc_zstd", 5.0),
    ] {
        assert_eq!(s.get(name, &[("job", "checkout")]), Some(value), "{name}");
    }
}

/// OTLP/JSON as the specification writes it: camelCase keys, int64 as
/// strings, enums as numbers; traces carry hex ids.
#[test]
fn accepts_spec_shaped_otlp_json() {
    let collector = Collector::start();
    let metrics = r#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-svc"}}]},
      "scopeMetrics":[{"scope":{"name":"my.library","version":"1.0.0"},"metrics":[
        {"name":"my.counter","unit":"1","description":"I am a Counter","sum":{"aggregationTemporality":1,"isMonotonic":true,
          "dataPoints":[{"asDouble":5,"startTimeUnixNano":"1544712660300000000","timeUnixNano":"1544712660300000000",
            "attributes":[{"key":"my.counter.attr","value":{"stringValue":"some value"}}]}]}},
        {"name":"my.gauge","unit":"1","description":"I am a Gauge","gauge":{"dataPoints":[{"asInt":"10","timeUnixNano":"1544712660300000000"}]}}
      ]}]}]}"#;
    let r = post(
        &collector,
        "/v1/metrics",
        "application/json",
        None,
        metrics.into(),
    );
    assert_eq!(r.status(), 200, "{}", r.text().unwrap_or_default());
    let s = collector.scrape();
    assert_eq!(
        s.get(
            "my_counter_total",
            &[
                ("job", "json-svc"),
                ("my_counter_attr", "some value"),
                ("otel_scope_name", "my.library"),
                ("otel_scope_version", "1.0.0")
            ]
        ),
        Some(5.0)
    );
    assert_eq!(
        s.get(
            "my_gauge_ratio",
            &[
                ("job", "json-svc"),
                ("otel_scope_name", "my.library"),
                ("otel_scope_version", "1.0.0")
            ]
        ),
        Some(10.0)
    );

    let traces = r#"{"resourceSpans":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"json-svc"}}]},
      "scopeSpans":[{"scope":{"name":"t"},"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174",
        "name":"I'm a server span","startTimeUnixNano":"1544712660000000000","endTimeUnixNano":"1544712661000000000","kind":2,
        "attributes":[{"key":"my.span.attr","value":{"stringValue":"some value"}}]}]}]}]}"#;
    let r = post(
        &collector,
        "/v1/traces",
        "application/json",
        None,
        traces.into(),
    );
    assert_eq!(r.status(), 200);
    let logs = r#"{"resourceLogs":[{"resource":{},"scopeLogs":[{"scope":{},"logRecords":[
        {"timeUnixNano":"1544712660300000000","severityNumber":10,"severityText":"Information","body":{"stringValue":"hello"}},
        {"timeUnixNano":"1544712660300000000","severityNumber":17,"body":{"stringValue":"oops"}}]}]}]}"#;
    let r = post(
        &collector,
        "/v1/logs",
        "application/json",
        None,
        logs.into(),
    );
    assert_eq!(r.status(), 200);
    let s = collector.scrape();
    let accepted = |signal| {
        s.get(
            "streamgate_receiver_accepted_items_total",
            &[("signal", signal), ("transport", "http")],
        )
    };
    assert_eq!(accepted("traces"), Some(1.0));
    assert_eq!(accepted("logs"), Some(2.0));
    assert_eq!(accepted("metrics"), Some(2.0));
}

/// Garbage, truncated protobuf, bad JSON, wrong content type, unknown
/// content encoding, GET, unknown path, oversized and bomb bodies: each gets
/// its status code and a Status body, is counted by reason, and the series
/// accepted before are still served afterwards.
#[test]
fn bad_input_is_refused_clearly_and_harms_nothing() {
    let collector = Collector::start_with(Options {
        receiver_extra: "max_request_size: 64KiB".into(),
        ..Default::default()
    });
    let good = request(vec![counter("orders", 7)]).encode_to_vec();
    assert_eq!(
        post(&collector, "/v1/metrics", PROTOBUF, None, good.clone()).status(),
        200
    );

    // Garbage bytes, protobuf: 400 with a protobuf Status.
    let r = post(
        &collector,
        "/v1/metrics",
        PROTOBUF,
        None,
        b"\xff\xff\xff garbage".to_vec(),
    );
    assert_eq!(r.headers()["content-type"], PROTOBUF);
    let (code, status) = status_body(r);
    assert_eq!(code, 400);
    assert_eq!(status.code, 3, "INVALID_ARGUMENT");
    assert!(
        status.message.contains("cannot decode metrics protobuf"),
        "{}",
        status.message
    );

    // Truncated protobuf: 400.
    let (code, _) = status_body(post(
        &collector,
        "/v1/metrics",
        PROTOBUF,
        None,
        good[..good.len() - 5].to_vec(),
    ));
    assert_eq!(code, 400);

    // Invalid JSON: 400 with a JSON Status.
    let (code, status) = status_body(post(
        &collector,
        "/v1/metrics",
        "application/json",
        None,
        b"{\"resourceMetrics\": [".to_vec(),
    ));
    assert_eq!(code, 400);
    assert!(status.message.contains("OTLP/JSON"), "{}", status.message);

    // Wrong content type: 415.
    let (code, status) = status_body(post(
        &collector,
        "/v1/metrics",
        "text/plain",
        None,
        good.clone(),
    ));
    assert_eq!(code, 415);
    assert!(status.message.contains("text/plain"), "{}", status.message);

    // Unknown content encoding: 415.
    let (code, _) = status_body(post(
        &collector,
        "/v1/metrics",
        PROTOBUF,
        Some("br"),
        good.clone(),
    ));
    assert_eq!(code, 415);

    // Corrupt gzip: 400.
    let (code, _) = status_body(post(
        &collector,
        "/v1/metrics",
        PROTOBUF,
        Some("gzip"),
        b"not gzip at all".to_vec(),
    ));
    assert_eq!(code, 400);

    // Oversized body (declared length): 413.
    let (code, status) = status_body(post(
        &collector,
        "/v1/metrics",
        PROTOBUF,
        None,
        vec![0u8; 70 * 1024],
    ));
    assert_eq!(code, 413);
    assert!(status.message.contains("limit"), "{}", status.message);

    // Gzip bomb: 64 MiB of zeros in ~64 KiB of gzip is cut off at the limit.
    let bomb = gzip(&vec![0u8; 64 << 20]);
    assert!(bomb.len() < 64 * 1024, "bomb is small on the wire");
    let (code, status) = status_body(post(
        &collector,
        "/v1/metrics",
        PROTOBUF,
        Some("gzip"),
        bomb,
    ));
    assert_eq!(code, 413);
    assert!(
        status.message.contains("decompression"),
        "{}",
        status.message
    );

    // GET: 405 with Allow: POST.
    let r = http_client()
        .get(collector.otlp_http_url("/v1/metrics"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(r.headers()["allow"], "POST");

    // Unknown path: 404, its Status in the request's encoding.
    let r = post(
        &collector,
        "/v1/profiles-nope",
        PROTOBUF,
        None,
        good.clone(),
    );
    assert_eq!(r.headers()["content-type"], "application/x-protobuf");
    let (code, status) = status_body(r);
    assert_eq!(code, 404);
    assert!(
        status.message.contains("unknown path"),
        "{}",
        status.message
    );

    // The collector still serves, the earlier series is intact, and the
    // refusals are counted by reason.
    let s = collector.scrape();
    assert_eq!(s.get("orders_total", &[("job", "checkout")]), Some(7.0));
    // Four undecodable bodies and the GET.
    assert_eq!(refused(&collector, "malformed"), 5.0);
    assert_eq!(refused(&collector, "unsupported_media_type"), 2.0);
    assert_eq!(refused(&collector, "too_large"), 2.0);
    assert_eq!(
        post(&collector, "/v1/metrics", PROTOBUF, None, good).status(),
        200
    );
}

/// A chunked body without Content-Length that grows past the limit is cut
/// off with 413 as soon as it crosses it.
#[test]
fn chunked_oversize_body_is_refused() {
    let collector = Collector::start_with(Options {
        receiver_extra: "max_request_size: 16KiB".into(),
        ..Default::default()
    });
    let mut stream = TcpStream::connect(collector.http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let mut req = format!(
        "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    .into_bytes();
    for _ in 0..20 {
        req.extend_from_slice(b"400\r\n");
        req.extend_from_slice(&[0u8; 0x400]);
        req.extend_from_slice(b"\r\n");
    }
    req.extend_from_slice(b"0\r\n\r\n");
    let _ = stream.write_all(&req);
    let mut answer = String::new();
    let mut buf = [0u8; 4096];
    if let Ok(n) = stream.read(&mut buf) {
        answer.push_str(&String::from_utf8_lossy(&buf[..n]));
    }
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
}

/// A refusal answered before the body was read (here an unknown content
/// type) tells an HTTP/1.1 sender that the connection closes, so it does
/// not send its next request into it; an accepted request keeps it open
/// for the next.
#[test]
fn refusals_before_the_body_say_the_connection_closes() {
    let collector = Collector::start();
    let mut stream = TcpStream::connect(collector.http).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let body = request(vec![gauge("kept", 1.0)]).encode_to_vec();
    let mut accepted = format!(
        "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    accepted.extend_from_slice(&body);
    stream.write_all(&accepted).unwrap();
    let mut buf = [0u8; 4096];
    let n = stream.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 200"), "{answer}");
    assert!(!answer.contains("connection: close"), "{answer}");
    // The same connection, a body in an unknown type, 2 MB of it.
    let refused = "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: text/csv\r\nContent-Length: 2000000\r\n\r\n";
    stream.write_all(refused.as_bytes()).unwrap();
    let n = stream.read(&mut buf).unwrap();
    let answer = String::from_utf8_lossy(&buf[..n]).to_ascii_lowercase();
    assert!(answer.starts_with("http/1.1 415"), "{answer}");
    assert!(answer.contains("connection: close"), "{answer}");
}

/// When some points are rejected (a type conflict), the rest are applied
/// and the answer carries `partial_success` with the count and reason.
#[test]
fn type_conflict_gives_partial_success() {
    let collector = Collector::start();
    let first = request(vec![counter("jobs", 3)]).encode_to_vec();
    assert_eq!(
        post(&collector, "/v1/metrics", PROTOBUF, None, first).status(),
        200
    );
    // `jobs_total` as a gauge collides with the counter `jobs_total`.
    let clash = request(vec![gauge("jobs_total", 1.0), gauge("fine", 2.0)]).encode_to_vec();
    let r = post(&collector, "/v1/metrics", PROTOBUF, None, clash);
    assert_eq!(r.status(), 200);
    let response = MetricsResponse::decode(r.bytes().unwrap()).unwrap();
    let partial = response.partial_success.expect("partial success");
    assert_eq!(partial.rejected_data_points, 1);
    assert!(
        partial.error_message.contains("jobs_total"),
        "{}",
        partial.error_message
    );

    let clash_json = serde_json::to_vec(&request(vec![gauge("jobs_total", 1.0)])).unwrap();
    let r = post(
        &collector,
        "/v1/metrics",
        "application/json",
        None,
        clash_json,
    );
    let v: serde_json::Value = serde_json::from_slice(&r.bytes().unwrap()).unwrap();
    assert_eq!(v["partialSuccess"]["rejectedDataPoints"], "1", "{v}");

    let s = collector.scrape();
    assert_eq!(s.get("jobs_total", &[("job", "checkout")]), Some(3.0));
    assert_eq!(s.get("fine", &[("job", "checkout")]), Some(2.0));
    assert_eq!(
        s.types.get("jobs_total").map(String::as_str),
        Some("counter")
    );
    assert_eq!(
        s.get(
            "streamgate_receiver_refused_items_total",
            &[
                ("signal", "metrics"),
                ("transport", "http"),
                ("reason", "rejected")
            ]
        ),
        Some(2.0)
    );
}

/// Strings that are not valid UTF-8 (as some SDKs send, and Collectors
/// forward) lose their invalid bytes to `?` and nothing else: the request
/// is accepted with a warning in `partial_success` (0 rejected), and the
/// repair is counted.
#[test]
fn strings_that_are_not_utf8_are_repaired_not_refused() {
    let collector = Collector::start();
    let mut bad = gauge("cafe_temperature", 21.0);
    bad.data = Some(Data::Gauge(Gauge {
        data_points: vec![NumberDataPoint {
            time_unix_nano: 1_700_000_000_000_000_000,
            value: Some(number_data_point::Value::AsDouble(21.0)),
            attributes: vec![attr("room", "salle-\u{e9}t\u{e9}"), attr("k\u{e9}y", "v")],
            ..Default::default()
        }],
    }));
    let mut body = request(vec![bad, gauge("fine", 2.0)]).encode_to_vec();
    // Latin-1 instead of UTF-8: each two-byte `é` becomes `é` then a
    // byte that continues nothing.
    let mut replaced = 0;
    while let Some(at) = body.windows(2).position(|w| w == "\u{e9}".as_bytes()) {
        body[at] = 0xe9;
        body[at + 1] = b'_';
        replaced += 1;
    }
    assert_eq!(replaced, 3);
    let r = post(&collector, "/v1/metrics", PROTOBUF, None, body.clone());
    assert_eq!(r.status(), 200);
    let partial = MetricsResponse::decode(r.bytes().unwrap())
        .unwrap()
        .partial_success
        .expect("a warning");
    assert_eq!(partial.rejected_data_points, 0);
    assert!(
        partial
            .error_message
            .contains("2 string(s) were not valid UTF-8"),
        "{}",
        partial.error_message
    );
    let s = collector.scrape();
    assert_eq!(
        s.get(
            "cafe_temperature",
            &[("room", "salle-?_t?_"), ("k_y", "v"), ("job", "checkout")]
        ),
        Some(21.0),
        "{}",
        s.text
    );
    assert_eq!(s.get("fine", &[("job", "checkout")]), Some(2.0));
    let count = |c: &Collector| {
        c.scrape().get(
            "streamgate_receiver_repaired_strings_total",
            &[("signal", "metrics"), ("transport", "http")],
        )
    };
    assert_eq!(count(&collector), Some(2.0));
    assert_eq!(refused(&collector, "malformed"), 0.0);
    // gzip on top changes nothing.
    let r = post(
        &collector,
        "/v1/metrics",
        PROTOBUF,
        Some("gzip"),
        gzip(&body),
    );
    assert_eq!(r.status(), 200);
    assert_eq!(count(&collector), Some(4.0));
}

/// Beyond `max_concurrent_requests`, a request is refused at once with 429,
/// `Retry-After` and RESOURCE_EXHAUSTED, not queued; the held request still
/// completes.
#[test]
fn overload_is_429_with_retry_after() {
    let collector = Collector::start_with(Options {
        receiver_extra: "max_concurrent_requests: 1\nretry_after: 3s".into(),
        ..Default::default()
    });
    let body = request(vec![gauge("slow", 1.0)]).encode_to_vec();
    // Hold the only permit: headers and half the body, then wait.
    let mut slow = TcpStream::connect(collector.http).unwrap();
    slow.set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    let head = format!(
        "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    );
    slow.write_all(head.as_bytes()).unwrap();
    slow.write_all(&body[..body.len() / 2]).unwrap();
    slow.flush().unwrap();
    collector.wait_for_a_request_in_flight();

    let r = post(&collector, "/v1/metrics", PROTOBUF, None, body.clone());
    assert_eq!(r.headers()["retry-after"], "3");
    let (code, status) = status_body(r);
    assert_eq!(code, 429);
    assert_eq!(status.code, 8, "RESOURCE_EXHAUSTED");

    slow.write_all(&body[body.len() / 2..]).unwrap();
    let mut buf = [0u8; 1024];
    let n = slow.read(&mut buf).unwrap();
    assert!(String::from_utf8_lossy(&buf[..n]).starts_with("HTTP/1.1 200"));
    assert_eq!(refused(&collector, "overloaded"), 1.0);
    assert_eq!(
        collector.scrape().get("slow", &[("job", "checkout")]),
        Some(1.0)
    );
}

/// An attribute's `doubleValue` of `"NaN"` or `"Infinity"` (what protobuf's
/// JSON printers write) is read as that value: the request is accepted
/// and the label is what the same attribute sent as protobuf gives.
#[test]
fn special_double_attributes_in_json_are_read() {
    let collector = Collector::start();
    let body = br#"{"resourceMetrics":[{"resource":{"attributes":[{"key":"service.name","value":{"stringValue":"nan"}}]},"scopeMetrics":[{"metrics":[
        {"name":"ok","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":1}]}},
        {"name":"g","gauge":{"dataPoints":[{"timeUnixNano":"1700000000000000000","asDouble":1,"attributes":[{"key":"ratio","value":{"doubleValue":"NaN"}},{"key":"top","value":{"doubleValue":"Infinity"}}]}]}}]}]}]}"#;
    let r = post(
        &collector,
        "/v1/metrics",
        "application/json",
        None,
        body.to_vec(),
    );
    assert_eq!(r.status(), 200);
    let mut same = gauge("g_pb", 1.0);
    if let Some(Data::Gauge(g)) = &mut same.data {
        g.data_points[0].attributes = vec![
            KeyValue {
                key: "ratio".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::DoubleValue(f64::NAN)),
                }),
                ..Default::default()
            },
            KeyValue {
                key: "top".into(),
                value: Some(AnyValue {
                    value: Some(any_value::Value::DoubleValue(f64::INFINITY)),
                }),
                ..Default::default()
            },
        ];
    }
    let r = post(
        &collector,
        "/v1/metrics",
        PROTOBUF,
        None,
        request(vec![same]).encode_to_vec(),
    );
    assert_eq!(r.status(), 200);
    let s = collector.scrape();
    assert_eq!(s.get("ok", &[("job", "nan")]), Some(1.0));
    let from_json = s.matching("g", &[("job", "nan")]);
    let from_pb = s.matching("g_pb", &[("job", "checkout")]);
    assert_eq!(from_json.len(), 1, "{}", s.text);
    assert_eq!(from_pb.len(), 1, "{}", s.text);
    let labels = |series: &str| {
        let inner = &series[series.find('{').unwrap() + 1..series.rfind('}').unwrap()];
        let mut l: Vec<String> = inner
            .split(',')
            .filter(|l| l.starts_with("ratio=") || l.starts_with("top="))
            .map(str::to_string)
            .collect();
        l.sort();
        l
    };
    assert_eq!(labels(&from_json[0].0), labels(&from_pb[0].0), "{}", s.text);
    assert_eq!(labels(&from_json[0].0).len(), 2, "{}", s.text);
}

/// A sender pointed at the wrong path or using the wrong method loses its
/// data: both are counted, so an alert can find it.
#[test]
fn misdirected_requests_are_counted() {
    let collector = Collector::start();
    let r = http_client()
        .get(collector.otlp_http_url("/v1/metrics"))
        .send()
        .unwrap();
    assert_eq!(r.status(), 405);
    assert_eq!(refused(&collector, "malformed"), 1.0);
    for path in ["/v1/metric", "/v1/metrics/"] {
        let r = post(&collector, path, PROTOBUF, None, Vec::new());
        assert_eq!(r.status(), 404, "{path}");
    }
    let s = collector.scrape();
    assert_eq!(
        s.get(
            "streamgate_receiver_unknown_path_requests_total",
            &[("transport", "http")]
        ),
        Some(2.0)
    );
}

/// A client that closes the connection before its body's end (its own
/// timeout fired, or it was killed) is counted as `aborted`, not as a
/// malformed request: nothing it sent was wrong. Both framings: a
/// declared length and chunks.
#[test]
fn a_client_gone_mid_body_is_aborted_not_malformed() {
    let collector = Collector::start();
    let heads = [
        format!(
            "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nContent-Length: 1000\r\n\r\n"
        ),
        format!(
            "POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: {PROTOBUF}\r\nTransfer-Encoding: chunked\r\n\r\n400\r\n"
        ),
    ];
    for (i, head) in heads.iter().enumerate() {
        let mut stream = TcpStream::connect(collector.http).unwrap();
        stream.write_all(head.as_bytes()).unwrap();
        stream.write_all(&[0u8; 10]).unwrap();
        stream.flush().unwrap();
        drop(stream);
        let want = (i + 1) as f64;
        let deadline = std::time::Instant::now() + Duration::from_secs(10);
        while refused(&collector, "aborted") < want {
            assert!(
                std::time::Instant::now() < deadline,
                "not counted as aborted: {}",
                collector.scrape_text()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }
    assert_eq!(refused(&collector, "malformed"), 0.0);
}
