//! The `/metrics` endpoint: format negotiation and gzip, streamed: the
//! exposition is rendered on a blocking thread in 256 KiB chunks (gzipped
//! chunk by chunk when asked), at most 8 in flight, so neither an async
//! worker nor a second copy of the output is tied up by a large scrape.

use std::io::Write;
use std::sync::Arc;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use flate2::write::GzEncoder;

use super::{Format, PrometheusExporter};

pub fn router(exporter: Arc<PrometheusExporter>) -> Router {
    Router::new()
        .route("/metrics", get(metrics))
        .with_state(exporter)
}

/// Chunks of the exposition handed from the rendering thread to the
/// response: a few in flight at most, so a slow client holds back the
/// rendering rather than memory filling up.
const CHUNK_BYTES: usize = 256 * 1024;
const CHUNKS_IN_FLIGHT: usize = 8;

async fn metrics(State(exporter): State<Arc<PrometheusExporter>>, headers: HeaderMap) -> Response {
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let gzip = headers
        .get(header::ACCEPT_ENCODING)
        .and_then(|v| v.to_str().ok())
        .is_some_and(accepts_gzip);
    exporter.telemetry.scraped();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    // Rendering reads every series: off the async workers, streamed.
    tokio::task::spawn_blocking(move || {
        let mut gz = gzip.then(|| GzEncoder::new(Vec::new(), flate2::Compression::fast()));
        let mut send = |chunk: String| -> bool {
            let bytes = match gz.as_mut() {
                None => Bytes::from(chunk),
                Some(encoder) => {
                    if encoder.write_all(chunk.as_bytes()).is_err() {
                        return false;
                    }
                    Bytes::from(std::mem::take(encoder.get_mut()))
                }
            };
            bytes.is_empty() || tx.blocking_send(bytes).is_ok()
        };
        exporter.render_chunks(format, CHUNK_BYTES, &mut send);
        if let Some(encoder) = gz
            && let Ok(rest) = encoder.finish()
            && !rest.is_empty()
        {
            let _ = tx.blocking_send(Bytes::from(rest));
        }
    });
    let mut response = Response::new(Body::new(ChunkBody { rx }));
    if gzip {
        response
            .headers_mut()
            .insert(header::CONTENT_ENCODING, HeaderValue::from_static("gzip"));
    }
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

/// A response body fed chunk by chunk from a channel; it ends when the
/// sender is dropped.
struct ChunkBody {
    rx: tokio::sync::mpsc::Receiver<Bytes>,
}

impl http_body::Body for ChunkBody {
    type Data = Bytes;
    type Error = std::convert::Infallible;

    fn poll_frame(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Result<http_body::Frame<Bytes>, Self::Error>>> {
        self.rx
            .poll_recv(cx)
            .map(|chunk| chunk.map(|b| Ok(http_body::Frame::data(b))))
    }
}

fn accepts_gzip(value: &str) -> bool {
    value.split(',').any(|part| {
        let mut it = part.split(';').map(str::trim);
        let coding = it.next().unwrap_or_default();
        let zero = it.any(|p| p == "q=0" || p == "q=0.0");
        (coding.eq_ignore_ascii_case("gzip") || coding == "*") && !zero
    })
}
