//! The `/metrics` endpoint: format negotiation and gzip.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::{Format, PrometheusExporter};

pub fn router(exporter: Arc<PrometheusExporter>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(exporter)
}

async fn metrics(State(exporter): State<Arc<PrometheusExporter>>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    exporter.telemetry.scraped();
    let body = exporter.render(format);
    let mut response = if gzip {
        let mut encoder = flate2::write::GzEncoder::new(
            Vec::with_capacity(body.len() / 4),
            flate2::Compression::fast(),
        );
        match encoder
            .write_all(body.as_bytes())
            .and_then(|_| encoder.finish())
        {
            Ok(compressed) => {
                let mut r = compressed.into_response();
                r.headers_mut()
                    .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
                r
            }
            Err(e) => {
                return (
                    StatusCode::INTERNAL_SERVER_ERROR,
                    format!("gzip failed: {e}"),
                )
                    .into_response();
            }
        }
    } else {
        body.into_response()
    };
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(format.content_type()),
    );
    response.headers_mut().insert(
        header::VARY,
        HeaderValue::from_static("Accept, Accept-Encoding"),
    );
    response
}

fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let coding = it.next().unwrap_or_default();
        let zero = it.any(|p| p == "q=0" || p == "q=0.0");
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
    })
}
