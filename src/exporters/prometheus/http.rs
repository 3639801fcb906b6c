//! The `/metrics` endpoint: format negotiation and gzip, streamed: the
//! exposition is rendered on a blocking thread in 256 KiB chunks, at most
//! 8 in flight, so neither an async worker nor a second copy of the
//! output is tied up by a large scrape. When the scraper asks for gzip
//! (Prometheus always does) or zstd, the chunks are compressed as they
//! come on threads of their own ([`compression`](super::compression)), so
//! rendering and compressing overlap on every core.
//! `?name[]=<metric>` (repeatable) renders only those metrics, as the
//! Prometheus client libraries' exporters do.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::body::Body;
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;

use super::compression::{Coding, compress_chunks, compressors};
use super::{ChunkSink, Format, NameFilter, PrometheusExporter};

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
/// Most rendered bytes held back while a family is locked (see
/// `StreamSink::push`).
const MAX_HELD_BYTES: usize = 16 * 1024 * 1024;

/// Sends rendered chunks on, to the response body or to the compressing
/// thread. While a family's lock is held it never waits for a slow
/// client: chunks the body has no room for are held, and sent (waiting)
/// between families, so ingest and expiry wait at most for one family's
/// rendering, never for the network. Memory held is at most one family's
/// exposition, and at most 16 MiB: a larger family waits for the client
/// past that.
struct StreamSink {
    tx: tokio::sync::mpsc::Sender<Bytes>,
    held: VecDeque<Bytes>,
    /// Bytes in `held`.
    held_bytes: usize,
    /// Time spent waiting for the client to take chunks.
    waited: Duration,
}

impl StreamSink {
    /// Sends `bytes`, waiting for room; false once the client is gone.
    fn send_waiting(&mut self, bytes: Bytes) -> bool {
        let started = Instant::now();
        let sent = self.tx.blocking_send(bytes).is_ok();
        self.waited += started.elapsed();
        sent
    }
}

impl ChunkSink for StreamSink {
    fn push(&mut self, chunk: String) -> bool {
        let bytes = Bytes::from(chunk);
        if bytes.is_empty() {
            return true;
        }
        if !self.held.is_empty() {
            self.held_bytes += bytes.len();
            self.held.push_back(bytes);
            // A family's exposition larger than the cap (a family of
            // millions of series) is not buffered whole: past it, the
            // render waits for the client even with a shard locked.
            if self.held_bytes > MAX_HELD_BYTES {
                return self.settle();
            }
            return true;
        }
        match self.tx.try_send(bytes) {
            Ok(()) => true,
            Err(tokio::sync::mpsc::error::TrySendError::Full(bytes)) => {
                self.held_bytes += bytes.len();
                self.held.push_back(bytes);
                true
            }
            Err(tokio::sync::mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    fn settle(&mut self) -> bool {
        self.held_bytes = 0;
        while let Some(bytes) = self.held.pop_front() {
            if !self.send_waiting(bytes) {
                return false;
            }
        }
        true
    }
}

async fn metrics(
    State(exporter): State<Arc<PrometheusExporter>>,
    Query(query): Query<Vec<(String, String)>>,
    headers: HeaderMap,
) -> Response {
    let names = NameFilter::from_query(query.iter().map(|(k, v)| (k.as_str(), v.as_str())));
    let accept = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok());
    let format = Format::negotiate(accept);
    let coding = Coding::negotiate(
        headers
            .get(header::ACCEPT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    );
    exporter.telemetry.scraped();
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
    let tx = if let Some(coding) = coding {
        let (plain_tx, plain_rx) = tokio::sync::mpsc::channel::<Bytes>(CHUNKS_IN_FLIGHT);
        tokio::task::spawn_blocking(move || compress_chunks(plain_rx, tx, coding, compressors()));
        plain_tx
    } else {
        tx
    };
    // Rendering reads every series: off the async workers, streamed.
    tokio::task::spawn_blocking(move || {
        let started = Instant::now();
        let mut sink = StreamSink {
            tx,
            held: VecDeque::new(),
            held_bytes: 0,
            waited: Duration::ZERO,
        };
        exporter.render_chunks(format, &names, CHUNK_BYTES, &mut sink);
        exporter
            .telemetry
            .rendered(started.elapsed().saturating_sub(sink.waited));
    });
    let mut response = Response::new(Body::new(ChunkBody { rx }));
    if let Some(coding) = coding {
        response.headers_mut().insert(
            header::CONTENT_ENCODING,
            HeaderValue::from_static(coding.name()),
        );
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
