//! Black-box tests of OTLP authentication (`receivers.otlp.auth`): the
//! real Rust OpenTelemetry SDK with the right bearer token is accepted
//! over gRPC and HTTP, with a wrong one it is refused; without credentials
//! a request gets 401 with `WWW-Authenticate` (HTTP) or `UNAUTHENTICATED`
//! (gRPC), basic credentials work too, refusals are counted as
//! `unauthenticated`, and the secrets appear nowhere in the logs.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use common::{Collector, Options, http_client};
use opentelemetry_otlp::{
    MetricExporter, Protocol, RetryPolicy, WithExportConfig, WithHttpConfig, WithTonicConfig,
};
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_sdk::metrics::SdkMeterProvider;
use prost::Message;
use streamgate::model::otlp::MetricsRequest;

const TOKEN: &str = "t0ken-for-the-auth-test-0123456789";

fn collector() -> Collector {
    Collector::start_with(Options {
        receiver_extra: format!(
            "auth:\n  bearer_tokens: [\"{TOKEN}\"]\n  basic:\n    - username: agent\n      password: \"b4sic-passw0rd\""
        ),
        ..Default::default()
    })
}

fn provider(exporter: MetricExporter, service: &str) -> SdkMeterProvider {
    common::sdk::logins_provider(exporter, service, "auth-test")
}

fn http_exporter(c: &Collector, token: &str) -> MetricExporter {
    MetricExporter::builder()
        .with_http()
        .with_protocol(Protocol::HttpBinary)
        .with_endpoint(c.otlp_http_url("/v1/metrics"))
        .with_headers(HashMap::from([(
            "authorization".to_string(),
            format!("Bearer {token}"),
        )]))
        .with_retry_policy(RetryPolicy::disabled())
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("HTTP exporter")
}

fn grpc_exporter(c: &Collector, token: &str) -> MetricExporter {
    let mut metadata = tonic::metadata::MetadataMap::new();
    metadata.insert(
        "authorization",
        format!("Bearer {token}").parse().expect("metadata value"),
    );
    MetricExporter::builder()
        .with_tonic()
        .with_endpoint(c.grpc_url())
        .with_metadata(metadata)
        .with_retry_policy(RetryPolicy::disabled())
        .with_timeout(Duration::from_secs(10))
        .build()
        .expect("gRPC exporter")
}

fn refused(c: &Collector, transport: &str) -> f64 {
    c.scrape()
        .get(
            "streamgate_receiver_refused_requests_total",
            &[
                ("signal", "metrics"),
                ("transport", transport),
                ("reason", "unauthenticated"),
            ],
        )
        .unwrap_or(0.0)
}

#[test]
fn the_sdk_with_the_token_is_accepted_without_it_refused() {
    let c = collector();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .expect("runtime");

    // The right token: both transports accepted.
    // (Providers stay alive to the end: dropping one exports again.)
    let http = provider(http_exporter(&c, TOKEN), "auth-http");
    http.force_flush().expect("HTTP export with the token");
    let grpc = {
        let _guard = runtime.enter();
        provider(grpc_exporter(&c, TOKEN), "auth-grpc")
    };
    grpc.force_flush().expect("gRPC export with the token");
    let logins = |s: &common::Samples, job: &str| -> Vec<f64> {
        s.matching("logins_total", &[("job", job), ("result", "ok")])
            .into_iter()
            .map(|(_, v)| v)
            .collect()
    };
    c.scrape_until("both exports stored", |s| {
        logins(s, "auth-http") == [3.0] && logins(s, "auth-grpc") == [3.0]
    });

    // A wrong token: the SDK's export fails and nothing is stored.
    let wrong_http = provider(http_exporter(&c, "not-the-token-0123456789"), "wrong-http");
    assert!(wrong_http.force_flush().is_err());
    let wrong = {
        let _guard = runtime.enter();
        provider(grpc_exporter(&c, "not-the-token-0123456789"), "wrong-grpc")
    };
    assert!(wrong.force_flush().is_err());
    let s = c.scrape();
    assert!(
        s.matching("logins_total", &[("job", "wrong-http")])
            .is_empty()
    );
    assert!(
        s.matching("logins_total", &[("job", "wrong-grpc")])
            .is_empty()
    );
    assert_eq!(refused(&c, "http"), 1.0);
    assert_eq!(refused(&c, "grpc"), 1.0);

    // No secret in the logs.
    let logs = c.logs();
    assert!(!logs.contains(TOKEN) && !logs.contains("b4sic-passw0rd"));
    drop((http, grpc, wrong_http, wrong));
}

#[test]
fn requests_without_credentials_get_401_or_unauthenticated_basic_works() {
    let c = collector();
    let body = MetricsRequest::default().encode_to_vec();
    let post = |auth: Option<&str>| {
        let mut request = http_client()
            .post(c.otlp_http_url("/v1/metrics"))
            .header("content-type", "application/x-protobuf")
            .body(body.clone());
        if let Some(a) = auth {
            request = request.header("authorization", a);
        }
        request.send().expect("POST")
    };
    let r = post(None);
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap_or_default()
            .contains("Bearer")
    );
    // base64("agent:b4sic-passw0rd")
    assert_eq!(
        post(Some("Basic YWdlbnQ6YjRzaWMtcGFzc3cwcmQ="))
            .status()
            .as_u16(),
        200
    );
    assert_eq!(post(Some("Basic YWdlbnQ6d3Jvbmc=")).status().as_u16(), 401);

    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .expect("runtime");
    runtime.block_on(async {
        let mut client = MetricsServiceClient::connect(c.grpc_url())
            .await
            .expect("connect");
        let err = client
            .export(opentelemetry_proto::tonic::collector::metrics::v1::ExportMetricsServiceRequest::default())
            .await
            .expect_err("no credentials");
        assert_eq!(err.code(), tonic::Code::Unauthenticated, "{err:?}");
    });
    assert_eq!(refused(&c, "http"), 2.0);
    assert_eq!(refused(&c, "grpc"), 1.0);
}

/// An unauthenticated upload over HTTP/2 (curl, prior knowledge) gets the
/// 401 itself, not a reset stream, even with a body larger than what is
/// read of it.
#[test]
fn an_unauthenticated_http2_upload_gets_the_401() {
    let c = collector();
    let dir = tempfile::tempdir().expect("tempdir");
    let body = dir.path().join("body.bin");
    std::fs::write(&body, vec![0u8; 1 << 20]).expect("body");
    for _ in 0..5 {
        let out = std::process::Command::new("curl")
            .args([
                "-s",
                "-o",
                "/dev/null",
                "-w",
                "%{http_code}",
                "--http2-prior-knowledge",
            ])
            .args([
                "-H",
                "Content-Type: application/x-protobuf",
                "--data-binary",
            ])
            .arg(format!("@{}", body.display()))
            .arg(c.otlp_http_url("/v1/metrics"))
            .output()
            .expect("curl");
        assert_eq!(String::from_utf8_lossy(&out.stdout), "401", "{out:?}");
    }
}
