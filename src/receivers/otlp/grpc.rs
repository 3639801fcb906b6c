//! OTLP/gRPC: the traces, metrics and logs `Export` services (gzip and
//! zstd), written over tonic's server machinery with a codec that hands us
//! the raw message bytes. Decoding is ours, so a malformed message is
//! answered with `INVALID_ARGUMENT` (not retryable) as the OTLP
//! specification asks, and admission happens before the body is read.

use std::convert::Infallible;
use std::marker::PhantomData;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::task::{Context, Poll};
use std::time::Instant;

use bytes::{Buf, Bytes};
use http_body::{Body, Frame};
use tonic::body::Body as TonicBody;
use tonic::codec::{Codec, CompressionEncoding, DecodeBuf, Decoder, EnabledCompressionEncodings};
use tonic::server::{Grpc, NamedService, UnaryService};
use tonic::{Request, Response, Status};

use crate::telemetry::Transport;

use super::ReceiverContext;
use super::encoding::Payload;
use super::memory::{MemoryLimiter, Reservation};
use super::process::{self, Refused};
use super::signal::OtlpSignal;
use super::status::Failure;

/// The gRPC service of one signal.
pub struct SignalService<S: OtlpSignal> {
    ctx: Arc<ReceiverContext>,
    _signal: PhantomData<S>,
}

impl<S: OtlpSignal> SignalService<S> {
    pub fn new(ctx: Arc<ReceiverContext>) -> Self {
        Self {
            ctx,
            _signal: PhantomData,
        }
    }
}

impl<S: OtlpSignal> Clone for SignalService<S> {
    fn clone(&self) -> Self {
        Self::new(self.ctx.clone())
    }
}

impl<S: OtlpSignal> NamedService for SignalService<S> {
    const NAME: &'static str = S::GRPC_SERVICE;
}

impl<S, B> tower::Service<http::Request<B>> for SignalService<S>
where
    S: OtlpSignal,
    B: Body<Data = Bytes> + Send + 'static,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>> + Send + 'static,
{
    type Response = http::Response<TonicBody>;
    type Error = Infallible;
    type Future = Pin<Box<dyn Future<Output = Result<Self::Response, Infallible>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<Result<(), Infallible>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, req: http::Request<B>) -> Self::Future {
        let ctx = self.ctx.clone();
        Box::pin(async move {
            if req.uri().path() != S::GRPC_PATH {
                ctx.telemetry.record_unknown_path(Transport::Grpc);
                return Ok(
                    Status::unimplemented(format!("unknown method {}", req.uri().path()))
                        .into_http(),
                );
            }
            let started = Instant::now();
            // gRPC over HTTP/2 answers a request that is not gRPC (its
            // content type not `application/grpc…`) with HTTP 415, not
            // with a gRPC status its client would not read.
            if !is_grpc(req.headers()) {
                let failure = Failure::UnsupportedMediaType(format!(
                    "content-type {:?} is not gRPC (application/grpc)",
                    req.headers()
                        .get(http::header::CONTENT_TYPE)
                        .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
                        .unwrap_or_default()
                ));
                let refusal = Refused::from(failure);
                process::refused::<S>(&ctx, Transport::Grpc, &refusal);
                // Read (up to the size limit) and drop what was sent, so
                // the answer is not cut short by a reset of the stream
                // the client is still writing.
                let _ = http_body_util::BodyExt::collect(http_body_util::Limited::new(
                    req.into_body(),
                    ctx.max_request_size,
                ))
                .await;
                ctx.telemetry.record_request_duration(
                    S::SIGNAL,
                    Transport::Grpc,
                    started.elapsed(),
                );
                return Ok(not_grpc_response(&refusal.failure));
            }
            let authorized = match &ctx.auth {
                Some(auth) => auth.check(
                    req.headers()
                        .get(http::header::AUTHORIZATION)
                        .map(http::HeaderValue::as_bytes),
                ),
                None => Ok(()),
            };
            let permit = match authorized.and_then(|()| ctx.admission.try_admit()) {
                Ok(permit) => permit,
                Err(failure) => {
                    let refusal = Refused::from(failure);
                    process::refused::<S>(&ctx, Transport::Grpc, &refusal);
                    ctx.telemetry.record_request_duration(
                        S::SIGNAL,
                        Transport::Grpc,
                        started.elapsed(),
                    );
                    return Ok(refusal.failure.to_grpc().into_http());
                }
            };
            let wire_bytes = Arc::new(AtomicU64::new(0));
            let held = Arc::new(Held::default());
            let req = req.map(|body| CountingBody {
                inner: Box::pin(body),
                counted: wire_bytes.clone(),
                memory: ctx.admission.memory().clone(),
                held: held.clone(),
            });
            let mut accept = EnabledCompressionEncodings::default();
            accept.enable(CompressionEncoding::Gzip);
            accept.enable(CompressionEncoding::Zstd);
            let mut grpc = Grpc::new(RawCodec::<S::Response>::default())
                .apply_compression_config(accept, accept)
                .apply_max_message_size_config(Some(ctx.max_request_size), None);
            let reached = Arc::new(AtomicBool::new(false));
            let mut response = grpc
                .unary(
                    Export::<S> {
                        ctx: ctx.clone(),
                        reached: reached.clone(),
                        held: held.clone(),
                        _signal: PhantomData,
                    },
                    req,
                )
                .await;
            drop(permit);
            let over_budget = held.failure.lock().ok().and_then(|mut f| f.take());
            if let Some(failure) = over_budget {
                let refusal = Refused::from(failure);
                process::refused::<S>(&ctx, Transport::Grpc, &refusal);
                response = refusal.failure.to_grpc().into_http();
            } else if !reached.load(Ordering::Relaxed) {
                remap_transport_failure::<S>(&ctx, &mut response);
            }
            drop(held);
            ctx.telemetry.record_bytes(
                S::SIGNAL,
                Transport::Grpc,
                wire_bytes.load(Ordering::Relaxed),
            );
            ctx.telemetry
                .record_request_duration(S::SIGNAL, Transport::Grpc, started.elapsed());
            Ok(response)
        })
    }
}

/// Whether the request says it is gRPC: a content type of
/// `application/grpc`, alone or with a `+format` or parameters.
fn is_grpc(headers: &http::HeaderMap) -> bool {
    headers
        .get(http::header::CONTENT_TYPE)
        .map(http::HeaderValue::as_bytes)
        .is_some_and(|v| {
            let prefix = b"application/grpc";
            v.len() >= prefix.len()
                && v[..prefix.len()].eq_ignore_ascii_case(prefix)
                && matches!(v.get(prefix.len()), None | Some(b'+' | b';'))
        })
}

/// HTTP 415 with the reason as text, for a request that is not gRPC.
fn not_grpc_response(failure: &Failure) -> http::Response<TonicBody> {
    let mut response = http::Response::new(TonicBody::new(http_body_util::Full::new(Bytes::from(
        failure.to_string(),
    ))));
    *response.status_mut() = http::StatusCode::UNSUPPORTED_MEDIA_TYPE;
    response.headers_mut().insert(
        http::header::CONTENT_TYPE,
        http::HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}

/// tonic refuses some requests before our handler runs: oversize messages
/// (as OUT_OF_RANGE, which OTLP senders would retry forever), decompression
/// bombs (RESOURCE_EXHAUSTED) and corrupt compression (INTERNAL). Give them
/// the OTLP codes (RESOURCE_EXHAUSTED without RetryInfo, INVALID_ARGUMENT)
/// and count them.
fn remap_transport_failure<S: OtlpSignal>(
    ctx: &ReceiverContext,
    response: &mut http::Response<TonicBody>,
) {
    let headers = response.headers_mut();
    let Some(code) = headers
        .get("grpc-status")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<i32>().ok())
    else {
        return;
    };
    let message = headers
        .get("grpc-message")
        .and_then(|v| v.to_str().ok())
        .map(percent_decode)
        .unwrap_or_default();
    let failure = match tonic::Code::from_i32(code) {
        tonic::Code::OutOfRange | tonic::Code::ResourceExhausted => Failure::TooLarge(message),
        tonic::Code::Internal => Failure::Malformed(message),
        // An encoding not offered (deflate): answered UNIMPLEMENTED, as
        // gRPC asks, and counted.
        tonic::Code::Unimplemented => {
            let failure = Failure::UnsupportedMediaType(message);
            process::refused::<S>(ctx, Transport::Grpc, &Refused::from(failure));
            return;
        }
        _ => return,
    };
    let status = failure.to_grpc();
    headers.insert("grpc-status", http::HeaderValue::from(status.code() as i32));
    process::refused::<S>(ctx, Transport::Grpc, &Refused::from(failure));
}

/// Undoes the percent-encoding of `grpc-message`.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%'
            && i + 2 < bytes.len()
            && let Ok(v) = u8::from_str_radix(&text[i + 1..i + 3], 16)
        {
            out.push(v);
            i += 3;
            continue;
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// A request's bytes held against the memory limiter's in-flight budget,
/// and the refusal if they did not fit.
#[derive(Default)]
struct Held {
    reservation: std::sync::Mutex<Reservation>,
    failure: std::sync::Mutex<Option<Failure>>,
}

impl Held {
    /// Reserves `bytes` more; on refusal remembers why.
    fn reserve(&self, memory: &MemoryLimiter, bytes: u64) -> Result<(), Failure> {
        let Ok(mut reservation) = self.reservation.lock() else {
            return Ok(());
        };
        memory.reserve(&mut reservation, bytes).inspect_err(|f| {
            if let Ok(mut slot) = self.failure.lock() {
                *slot = Some(f.clone());
            }
        })
    }

    fn bytes(&self) -> u64 {
        self.reservation.lock().map_or(0, |r| r.bytes())
    }
}

/// The unary handler: raw bytes in, response out.
struct Export<S: OtlpSignal> {
    ctx: Arc<ReceiverContext>,
    /// Set when tonic got as far as calling us.
    reached: Arc<AtomicBool>,
    held: Arc<Held>,
    _signal: PhantomData<S>,
}

impl<S: OtlpSignal> UnaryService<Bytes> for Export<S> {
    type Response = S::Response;
    type Future = Pin<Box<dyn Future<Output = Result<Response<S::Response>, Status>> + Send>>;

    fn call(&mut self, request: Request<Bytes>) -> Self::Future {
        let ctx = self.ctx.clone();
        let held = self.held.clone();
        self.reached.store(true, Ordering::Relaxed);
        Box::pin(async move {
            let body = request.into_inner();
            // A compressed message is larger than the wire bytes held.
            let more = (body.len() as u64).saturating_sub(held.bytes());
            if let Err(failure) = held.reserve(ctx.admission.memory(), more) {
                // Answered (and counted) by the caller, which sees it held.
                return Err(failure.to_grpc());
            }
            let result = process::decode::<S>(body, Payload::Protobuf)
                .map_err(Refused::from)
                .and_then(|decoded| process::consume::<S>(&ctx, &decoded, Transport::Grpc));
            match result {
                Ok(response) => Ok(Response::new(response)),
                Err(refusal) => {
                    process::refused::<S>(&ctx, Transport::Grpc, &refusal);
                    Err(refusal.failure.to_grpc())
                }
            }
        })
    }
}

/// Encodes responses with prost; decodes requests to their raw bytes.
struct RawCodec<R>(PhantomData<R>);

impl<R> Default for RawCodec<R> {
    fn default() -> Self {
        Self(PhantomData)
    }
}

impl<R: prost::Message + Send + 'static> Codec for RawCodec<R> {
    type Encode = R;
    type Decode = Bytes;
    type Encoder = tonic_prost::ProstEncoder<R>;
    type Decoder = BytesDecoder;

    fn encoder(&mut self) -> Self::Encoder {
        tonic_prost::ProstEncoder::default()
    }

    fn decoder(&mut self) -> Self::Decoder {
        BytesDecoder
    }
}

struct BytesDecoder;

impl Decoder for BytesDecoder {
    type Item = Bytes;
    type Error = Status;

    fn decode(&mut self, buf: &mut DecodeBuf<'_>) -> Result<Option<Bytes>, Status> {
        let len = buf.remaining();
        Ok(Some(buf.copy_to_bytes(len)))
    }
}

/// Counts the body bytes as they arrive on the wire, reserving them from
/// the memory limiter's in-flight budget; a frame that does not fit ends
/// the body (the request is then answered as memory-limited).
struct CountingBody<B> {
    inner: Pin<Box<B>>,
    counted: Arc<AtomicU64>,
    memory: MemoryLimiter,
    held: Arc<Held>,
}

impl<B> Body for CountingBody<B>
where
    B: Body<Data = Bytes>,
{
    type Data = Bytes;
    type Error = B::Error;

    fn poll_frame(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Frame<Bytes>, B::Error>>> {
        let polled = self.inner.as_mut().poll_frame(cx);
        if let Poll::Ready(Some(Ok(frame))) = &polled
            && let Some(data) = frame.data_ref()
        {
            let n = data.len() as u64;
            self.counted.fetch_add(n, Ordering::Relaxed);
            if self.held.reserve(&self.memory, n).is_err() {
                return Poll::Ready(None);
            }
        }
        polled
    }

    fn is_end_stream(&self) -> bool {
        self.inner.is_end_stream()
    }

    fn size_hint(&self) -> http_body::SizeHint {
        self.inner.size_hint()
    }
}
