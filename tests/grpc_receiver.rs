//! Black-box tests of OTLP/gRPC: compressed requests from a real tonic
//! client, malformed messages answered with INVALID_ARGUMENT, oversize with
//! RESOURCE_EXHAUSTED, overload with RESOURCE_EXHAUSTED plus RetryInfo,
//! and calls to other services counted as UNIMPLEMENTED.

mod common;

use std::io::Write;
use std::net::TcpStream;
use std::time::Duration;

use bytes::{BufMut, Bytes};
use common::{Collector, Options};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message;
use streamgate::model::otlp::common::{AnyValue, KeyValue, any_value};
use streamgate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data, number_data_point,
};
use streamgate::model::otlp::resource::Resource;
use streamgate::model::otlp::{MetricsRequest, MetricsResponse};
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EncodeBuf, Encoder};
use tonic_types::StatusExt;

fn request(name: &str, value: f64) -> MetricsRequest {
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(AnyValue {
                        value: Some(any_value::Value::StringValue("grpc-svc".into())),
                    }),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    description: "test".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: 1,
                            value: Some(number_data_point::Value::AsDouble(value)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap()
}

/// Sends raw bytes as the request message, to put malformed data on the wire.
#[derive(Clone, Default)]
struct RawRequestCodec;

struct RawEncoder;
struct ResponseDecoder;

impl Encoder for RawEncoder {
    type Item = Bytes;
    type Error = tonic::Status;
    fn encode(&mut self, item: Bytes, buf: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        buf.put(item);
        Ok(())
    }
}

impl Decoder for ResponseDecoder {
    type Item = MetricsResponse;
    type Error = tonic::Status;
    fn decode(
        &mut self,
        buf: &mut DecodeBuf<'_>,
    ) -> Result<Option<MetricsResponse>, tonic::Status> {
        MetricsResponse::decode(buf)
            .map(Some)
            .map_err(|e| tonic::Status::internal(e.to_string()))
    }
}

impl Codec for RawRequestCodec {
    type Encode = Bytes;
    type Decode = MetricsResponse;
    type Encoder = RawEncoder;
    type Decoder = ResponseDecoder;
    fn encoder(&mut self) -> RawEncoder {
        RawEncoder
    }
    fn decoder(&mut self) -> ResponseDecoder {
        ResponseDecoder
    }
}

async fn send_raw(addr: String, body: Bytes) -> Result<MetricsResponse, tonic::Status> {
    send_raw_with(addr, body, None).await
}

async fn send_raw_with(
    addr: String,
    body: Bytes,
    compression: Option<CompressionEncoding>,
) -> Result<MetricsResponse, tonic::Status> {
    send_raw_to(
        addr,
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        body,
        compression,
    )
    .await
}

/// `body` as a unary call of `method`.
async fn send_raw_to(
    addr: String,
    method: &'static str,
    body: Bytes,
    compression: Option<CompressionEncoding>,
) -> Result<MetricsResponse, tonic::Status> {
    let channel = tonic::transport::Channel::from_shared(addr)
        .unwrap()
        .connect()
        .await
        .expect("connect");
    let mut grpc = tonic::client::Grpc::new(channel);
    if let Some(c) = compression {
        grpc = grpc.send_compressed(c);
    }
    grpc.ready().await.expect("ready");
    let path = http::uri::PathAndQuery::from_static(method);
    grpc.unary(tonic::Request::new(body), path, RawRequestCodec)
        .await
        .map(|r| r.into_inner())
}

/// gzip- and zstd-compressed requests from tonic's client are decoded and
/// their points appear on /metrics.
#[test]
fn compressed_requests_are_accepted() {
    let collector = Collector::start();
    let rt = runtime();
    rt.block_on(async {
        for (encoding, name, value) in [
            (None, "plain", 1.0),
            (Some(CompressionEncoding::Gzip), "gzipped", 2.0),
            (Some(CompressionEncoding::Zstd), "zstded", 3.0),
        ] {
            let mut client = MetricsServiceClient::connect(collector.grpc_url())
                .await
                .expect("connect");
            if let Some(e) = encoding {
                client = client.send_compressed(e).accept_compressed(e);
            }
            let response = client
                .export(request(name, value))
                .await
                .expect("export accepted")
                .into_inner();
            assert!(response.partial_success.is_none());
        }
    });
    let s = collector.scrape();
    assert_eq!(s.get("plain", &[("job", "grpc-svc")]), Some(1.0));
    assert_eq!(s.get("gzipped", &[("job", "grpc-svc")]), Some(2.0));
    assert_eq!(s.get("zstded", &[("job", "grpc-svc")]), Some(3.0));
    assert!(
        s.get(
            "streamgate_receiver_received_bytes_total",
            &[("signal", "metrics"), ("transport", "grpc")]
        )
        .unwrap_or(0.0)
            > 0.0
    );
}

/// A malformed message is INVALID_ARGUMENT (never retried), an oversize
/// one RESOURCE_EXHAUSTED without retry info; the collector keeps serving.
#[test]
fn malformed_and_oversize_messages() {
    let collector = Collector::start_with(Options {
        receiver_extra: "max_request_size: 4KiB".into(),
        ..Default::default()
    });
    let rt = runtime();
    rt.block_on(async {
        let err = send_raw(
            collector.grpc_url(),
            Bytes::from_static(b"\xff\xfe garbage"),
        )
        .await
        .expect_err("garbage refused");
        assert_eq!(err.code(), tonic::Code::InvalidArgument, "{err:?}");
        assert!(err.message().contains("cannot decode"), "{}", err.message());

        let good = request("kept", 9.0).encode_to_vec();
        let truncated = Bytes::from(good[..good.len() - 3].to_vec());
        let err = send_raw(collector.grpc_url(), truncated)
            .await
            .expect_err("truncated refused");
        assert_eq!(err.code(), tonic::Code::InvalidArgument);

        let big = Bytes::from(vec![0u8; 8 * 1024]);
        let err = send_raw(collector.grpc_url(), big)
            .await
            .expect_err("oversize refused");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
        assert!(err.get_details_retry_info().is_none());

        // A zstd bomb: tiny on the wire, far over the limit decompressed.
        let bomb = Bytes::from(vec![0u8; 16 << 20]);
        let err = send_raw_with(collector.grpc_url(), bomb, Some(CompressionEncoding::Zstd))
            .await
            .expect_err("bomb refused");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");

        send_raw(collector.grpc_url(), Bytes::from(good))
            .await
            .expect("good message still accepted");
    });
    let s = collector.scrape();
    assert_eq!(s.get("kept", &[("job", "grpc-svc")]), Some(9.0));
    assert_eq!(
        s.get(
            "streamgate_receiver_refused_requests_total",
            &[
                ("signal", "metrics"),
                ("transport", "grpc"),
                ("reason", "malformed")
            ]
        ),
        Some(2.0)
    );
    assert_eq!(
        s.get(
            "streamgate_receiver_refused_requests_total",
            &[
                ("signal", "metrics"),
                ("transport", "grpc"),
                ("reason", "too_large")
            ]
        ),
        Some(2.0)
    );
}

/// With every request slot taken, gRPC answers RESOURCE_EXHAUSTED with a
/// RetryInfo detail carrying the configured delay.
#[test]
fn overload_is_resource_exhausted_with_retry_info() {
    let collector = Collector::start_with(Options {
        receiver_extra: "max_concurrent_requests: 1\nretry_after: 2s".into(),
        ..Default::default()
    });
    // Hold the only slot with a half-sent HTTP request (admission is shared).
    let mut slow = TcpStream::connect(collector.http).unwrap();
    slow.write_all(
        b"POST /v1/metrics HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-protobuf\r\nContent-Length: 100\r\n\r\nabc",
    )
    .unwrap();
    collector.wait_for_a_request_in_flight();
    let rt = runtime();
    rt.block_on(async {
        let mut client = MetricsServiceClient::connect(collector.grpc_url())
            .await
            .unwrap();
        let err = client
            .export(request("refused", 1.0))
            .await
            .expect_err("overloaded");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted);
        let retry = err.get_details_retry_info().expect("RetryInfo detail");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(2)));
    });
    drop(slow);
}

/// A call to a service or method the receiver does not have (a sender
/// configured for another protocol) is UNIMPLEMENTED and counted, so an
/// alert can find the data it loses.
#[test]
fn calls_to_unknown_services_and_methods_are_counted() {
    let collector = Collector::start();
    let rt = runtime();
    rt.block_on(async {
        let body = Bytes::from(request("lost", 1.0).encode_to_vec());
        for method in [
            "/grpc.health.v1.Health/Check",
            "/opentelemetry.proto.collector.metrics.v1.MetricsService/Push",
            "/opentelemetry.proto.collector.profiles.v1development.ProfilesService/Export",
        ] {
            let err = send_raw_to(collector.grpc_url(), method, body.clone(), None)
                .await
                .expect_err("not ours");
            assert_eq!(err.code(), tonic::Code::Unimplemented, "{method}: {err:?}");
        }
    });
    let s = collector.scrape();
    assert_eq!(
        s.get(
            "streamgate_receiver_unknown_path_requests_total",
            &[("transport", "grpc")]
        ),
        Some(3.0),
        "{}",
        s.text
    );
    assert!(!s.text.contains("\nlost"), "nothing of it is stored");
}

/// A request to the gRPC port that is not gRPC (its content type not
/// `application/grpc`) is answered HTTP 415, as gRPC over HTTP/2 asks,
/// not HTTP 200 with a gRPC status; it is counted and nothing is stored.
/// curl sends it, over HTTP/2 without TLS; `application/grpc+proto` is
/// gRPC and goes on to be read (and refused as malformed here).
#[test]
fn a_request_that_is_not_grpc_gets_http_415() {
    let collector = Collector::start();
    let url = format!(
        "{}/opentelemetry.proto.collector.metrics.v1.MetricsService/Export",
        collector.grpc_url()
    );
    let post = |content_type: &str| {
        let out = std::process::Command::new("curl")
            .args(["-sS", "--http2-prior-knowledge", "-D", "-", "-H"])
            .arg(format!("Content-Type: {content_type}"))
            .args(["--data-binary", "lost"])
            .arg(&url)
            .output()
            .expect("curl runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let refused = post("text/plain");
    assert!(refused.starts_with("HTTP/2 415"), "{refused}");
    assert!(refused.contains("not gRPC"), "{refused}");
    let grpc = post("application/grpc+proto");
    assert!(grpc.starts_with("HTTP/2 200"), "{grpc}");
    assert!(grpc.contains("grpc-status: 3"), "{grpc}");

    let s = collector.scrape();
    let refused_as = |reason: &str| {
        s.get(
            "streamgate_receiver_refused_requests_total",
            &[
                ("signal", "metrics"),
                ("transport", "grpc"),
                ("reason", reason),
            ],
        )
    };
    assert_eq!(
        refused_as("unsupported_media_type"),
        Some(1.0),
        "{}",
        s.text
    );
    assert_eq!(refused_as("malformed"), Some(1.0), "{}", s.text);
    assert!(!s.text.contains("\nlost"), "nothing of it is stored");
}
