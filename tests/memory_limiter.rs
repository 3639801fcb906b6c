//! Black-box tests of the memory limiter: above the soft limit new data is
//! refused over HTTP (429, `Retry-After`) and gRPC (`RESOURCE_EXHAUSTED`
//! with `RetryInfo`) while `/metrics` and `/healthz` keep answering; a
//! request larger than the in-flight budget (hard less soft) is refused
//! the same way while smaller ones pass; the refusals are counted under
//! `reason="memory_limited"` and the limits are exported.

mod common;

use std::time::Duration;

use common::{Collector, Options, http_client};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use prost::Message;
use streamgate::model::otlp::MetricsRequest;
use streamgate::model::otlp::common::{AnyValue, KeyValue, any_value};
use streamgate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, metric::Data, number_data_point,
};
use streamgate::model::otlp::resource::Resource;
use streamgate::receivers::otlp::status::RpcStatus;
use tonic_types::StatusExt;

const PROTOBUF: &str = "application/x-protobuf";

/// A gauge request whose description carries `padding` bytes, so its
/// size can be chosen.
fn request(name: &str, padding: usize) -> MetricsRequest {
    let string = |s: String| AnyValue {
        value: Some(any_value::Value::StringValue(s)),
    };
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![KeyValue {
                    key: "service.name".into(),
                    value: Some(string("memory-test".into())),
                    ..Default::default()
                }],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics: vec![Metric {
                    name: name.into(),
                    description: "x".repeat(padding),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: 1,
                            value: Some(number_data_point::Value::AsDouble(1.0)),
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

fn post(collector: &Collector, body: Vec<u8>) -> reqwest::blocking::Response {
    http_client()
        .post(collector.otlp_http_url("/v1/metrics"))
        .header("content-type", PROTOBUF)
        .body(body)
        .send()
        .expect("POST /v1/metrics")
}

fn status_of(response: reqwest::blocking::Response) -> (u16, RpcStatus) {
    let code = response.status().as_u16();
    let body = response.bytes().expect("body");
    (code, RpcStatus::decode(body).expect("google.rpc.Status"))
}

fn memory_refusals(collector: &Collector, transport: &str) -> f64 {
    collector
        .scrape()
        .get(
            "streamgate_receiver_refused_requests_total",
            &[
                ("signal", "metrics"),
                ("transport", transport),
                ("reason", "memory_limited"),
            ],
        )
        .unwrap_or(0.0)
}

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime")
}

/// Soft limit 1 % of 64 MiB (655 KiB): the process is always above it,
/// so every request is refused, over both transports, with a retry hint.
#[test]
fn above_the_soft_limit_new_data_is_refused_with_retry_hints() {
    let collector = Collector::start_with(Options {
        receiver_extra: "retry_after: 2s\nmemory_limiter:\n  limit: 64MiB\n  soft_percent: 1\n  hard_percent: 2\n  check_interval: 10ms".into(),
        ..Default::default()
    });
    // The first sample is taken within check_interval of starting.
    std::thread::sleep(Duration::from_millis(200));

    let response = post(&collector, request("refused_http", 10).encode_to_vec());
    assert_eq!(response.headers()["retry-after"], "2");
    let (code, status) = status_of(response);
    assert_eq!(code, 429);
    assert_eq!(status.code, 8, "RESOURCE_EXHAUSTED");
    assert!(
        status.message.contains("above the soft limit 0.6MiB"),
        "{}",
        status.message
    );

    runtime().block_on(async {
        let mut client = MetricsServiceClient::connect(collector.grpc_url())
            .await
            .expect("connect");
        let err = client
            .export(request("refused_grpc", 10))
            .await
            .expect_err("memory limited");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
        let retry = err.get_details_retry_info().expect("RetryInfo detail");
        assert_eq!(retry.retry_delay, Some(Duration::from_secs(2)));
    });

    // The admin server keeps answering and tells why.
    let health = http_client()
        .get(collector.url("/healthz"))
        .send()
        .expect("healthz");
    assert!(health.status().is_success());
    let samples = collector.scrape();
    assert_eq!(
        samples.get(
            "streamgate_receiver_memory_limit_bytes",
            &[("limit", "soft")]
        ),
        Some(((64u64 << 20) / 100) as f64)
    );
    assert_eq!(
        samples.get(
            "streamgate_receiver_memory_limit_bytes",
            &[("limit", "hard")]
        ),
        Some(((64u64 << 20) * 2 / 100) as f64)
    );
    assert_eq!(memory_refusals(&collector, "http"), 1.0);
    assert_eq!(memory_refusals(&collector, "grpc"), 1.0);
    assert_eq!(samples.get("refused_http", &[]), None);
    assert!(samples.matching("refused_grpc", &[]).is_empty());
}

/// Limit 1 GiB, soft 50 %, hard 51 %: requests in flight may hold 10.2
/// MiB. A 12 MiB request is refused (declared length over HTTP, frames as
/// they arrive over gRPC); a 1 MiB one is accepted, and nothing is left
/// held afterwards.
#[test]
fn requests_beyond_the_in_flight_budget_are_refused_smaller_ones_pass() {
    let collector = Collector::start_with(Options {
        receiver_extra: "retry_after: 1s\nmemory_limiter:\n  limit: 1GiB\n  soft_percent: 50\n  hard_percent: 51".into(),
        ..Default::default()
    });
    let big = request("too_big", 12 << 20).encode_to_vec();
    let response = post(&collector, big);
    assert_eq!(response.headers()["retry-after"], "1");
    let (code, status) = status_of(response);
    assert_eq!(code, 429);
    assert_eq!(status.code, 8, "RESOURCE_EXHAUSTED");
    assert!(status.message.contains("budget"), "{}", status.message);

    let (code, _) = status_of(post(&collector, request("fits", 1 << 20).encode_to_vec()));
    assert_eq!(code, 200);

    runtime().block_on(async {
        let mut client = MetricsServiceClient::connect(collector.grpc_url())
            .await
            .expect("connect");
        let err = client
            .export(request("too_big_grpc", 12 << 20))
            .await
            .expect_err("beyond the budget");
        assert_eq!(err.code(), tonic::Code::ResourceExhausted, "{err:?}");
        assert!(err.message().contains("budget"), "{err:?}");
        assert!(err.get_details_retry_info().is_some());
        client
            .export(request("fits_grpc", 1 << 20))
            .await
            .expect("a 1 MiB request fits");
    });

    let samples = collector.scrape_until("both small requests stored", |s| {
        !s.matching("fits", &[]).is_empty() && !s.matching("fits_grpc", &[]).is_empty()
    });
    assert!(samples.matching("too_big", &[]).is_empty());
    assert!(samples.matching("too_big_grpc", &[]).is_empty());
    assert_eq!(memory_refusals(&collector, "http"), 1.0);
    assert_eq!(memory_refusals(&collector, "grpc"), 1.0);
    // Every reservation was given back (the gauge is refreshed by the
    // sampler every 100 ms).
    let samples = collector.scrape_until("in-flight bytes back to 0", |s| {
        s.get("streamgate_receiver_in_flight_bytes", &[]) == Some(0.0)
    });
    assert_eq!(
        samples.get("streamgate_receiver_in_flight_bytes", &[]),
        Some(0.0)
    );
}
