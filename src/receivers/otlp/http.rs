//! OTLP/HTTP: `POST /v1/traces`, `/v1/metrics`, `/v1/logs` with protobuf
//! or JSON bodies, answered in the request's encoding; errors as
//! `google.rpc.Status` with the status codes of the OTLP specification.

use std::sync::Arc;
use std::time::Instant;

use axum::Router;
use axum::body::Body;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use http_body_util::BodyExt;

use crate::telemetry::Transport;

use super::ReceiverContext;
use super::encoding::{Compression, Payload, decompress};
use super::memory::Reservation;
use super::process::{self, Refused};
use super::signal::{Logs, Metrics, OtlpSignal, Traces};
use super::status::{Failure, RpcStatus, code, retry_after_seconds};

/// The OTLP/HTTP routes.
pub fn router(ctx: Arc<ReceiverContext>) -> Router {
    Router::new()
        .route(
            Traces::HTTP_PATH,
            post(export::<Traces>).fallback(method_not_allowed::<Traces>),
        )
        .route(
            Metrics::HTTP_PATH,
            post(export::<Metrics>).fallback(method_not_allowed::<Metrics>),
        )
        .route(
            Logs::HTTP_PATH,
            post(export::<Logs>).fallback(method_not_allowed::<Logs>),
        )
        .fallback(not_found)
        .with_state(ctx)
}

async fn export<S: OtlpSignal>(
    State(ctx): State<Arc<ReceiverContext>>,
    version: Version,
    headers: HeaderMap,
    body: Body,
) -> Response {
    let started = Instant::now();
    let content_type = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok());
    let payload = content_type.and_then(Payload::from_content_type);
    let response = match handle::<S>(&ctx, &headers, payload, body).await {
        Ok(bytes) => {
            let payload = payload.unwrap_or(Payload::Protobuf);
            let mut r = Response::new(Body::from(bytes));
            r.headers_mut().insert(
                header::CONTENT_TYPE,
                HeaderValue::from_static(payload.content_type()),
            );
            r
        }
        Err(refusal) => {
            process::refused::<S>(&ctx, Transport::Http, &refusal);
            let mut r = failure_response(&refusal.failure, payload);
            if version <= Version::HTTP_11 && body_left_unread(&refusal.failure) {
                // The connection cannot carry another request: say so,
                // so the sender does not send its next one into a
                // connection about to close.
                r.headers_mut()
                    .insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            r
        }
    };
    ctx.telemetry
        .record_request_duration(S::SIGNAL, Transport::Http, started.elapsed());
    response
}

async fn handle<S: OtlpSignal>(
    ctx: &ReceiverContext,
    headers: &HeaderMap,
    payload: Option<Payload>,
    body: Body,
) -> Result<Vec<u8>, process::Refused> {
    if let Some(auth) = &ctx.auth
        && let Err(failure) = auth.check(
            headers
                .get(header::AUTHORIZATION)
                .map(HeaderValue::as_bytes),
        )
    {
        // The body is read (and dropped, nothing kept) first: answered
        // mid-upload, HTTP/2 clients such as curl report a reset stream
        // instead of the 401. Bounded by the size limit and read_timeout.
        discard(body, ctx.max_request_size, ctx.read_timeout).await;
        return Err(failure.into());
    }
    let _permit = ctx.admission.try_admit()?;
    let Some(payload) = payload else {
        let given = headers
            .get(header::CONTENT_TYPE)
            .map(|v| String::from_utf8_lossy(v.as_bytes()).into_owned())
            .unwrap_or_else(|| "none".into());
        return Err(Failure::UnsupportedMediaType(format!(
            "unsupported Content-Type `{given}`; use application/x-protobuf or application/json"
        ))
        .into());
    };
    let compression = Compression::from_header(
        headers
            .get(header::CONTENT_ENCODING)
            .and_then(|v| v.to_str().ok()),
    )?;
    let limit = ctx.max_request_size;
    let declared = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if declared.is_some_and(|n| n > limit as u64) {
        return Err(too_large(limit).into());
    }
    // The body's bytes count against the memory limiter's in-flight
    // budget: up front when the length is declared, else once read.
    let memory = ctx.admission.memory();
    let mut reserved = Reservation::default();
    if let Some(n) = declared
        && let Err(failure) = memory.reserve(&mut reserved, n)
    {
        // Read the body without keeping it, so the sender gets the 429
        // and its retry hint instead of a connection reset mid-upload.
        discard(body, limit, ctx.read_timeout).await;
        return Err(failure.into());
    }
    let read = http_body_util::Limited::new(body, limit).collect();
    let wire = tokio::time::timeout(ctx.read_timeout, read)
        .await
        .map_err(|_| {
            Failure::ReadTimeout(format!(
                "the request body did not arrive within {:?} (receivers.otlp.read_timeout)",
                ctx.read_timeout
            ))
        })?
        .map_err(|e| {
            if e.downcast_ref::<http_body_util::LengthLimitError>()
                .is_some()
            {
                too_large(limit)
            } else if client_went_away(&*e) {
                Failure::Aborted(format!(
                    "the client closed the connection before the request body's end: {e}"
                ))
            } else {
                Failure::Malformed(format!("cannot read request body: {e}"))
            }
        })?
        .to_bytes();
    ctx.telemetry
        .record_bytes(S::SIGNAL, Transport::Http, wire.len() as u64);
    if declared.is_none() {
        memory.reserve(&mut reserved, wire.len() as u64)?;
    }
    let body = decompress(wire, compression, limit)?;
    if compression != Compression::Identity {
        memory.reserve(&mut reserved, body.len() as u64)?;
    }
    let request = process::decode::<S>(body, payload)?;
    let response = process::consume::<S>(ctx, &request, Transport::Http)?;
    Ok(encode_response(&response, payload))
}

/// Whether a body read failed because the client closed the connection
/// before the body's end: hyper's incomplete message or an end-of-file or
/// reset from the socket, somewhere in the error's chain (axum and hyper
/// wrap it).
fn client_went_away(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        let hyper_gone = e
            .downcast_ref::<hyper::Error>()
            .is_some_and(|e| e.is_incomplete_message() || e.is_closed() || e.is_canceled());
        let io_gone = e.downcast_ref::<std::io::Error>().is_some_and(|e| {
            use std::io::ErrorKind::*;
            matches!(
                e.kind(),
                UnexpectedEof | ConnectionReset | ConnectionAborted | BrokenPipe
            )
        });
        if hyper_gone || io_gone {
            return true;
        }
        cause = e.source();
    }
    false
}

/// Whether a refusal may be answered before the body was read to its end
/// (HTTP/1 then closes the connection after the answer): every refusal
/// but a malformed body (read whole) and wrong credentials (the body is
/// read first; see [`discard`]). A memory refusal after its body was
/// drained closes the connection too, which costs a sender under memory
/// pressure one reconnect.
fn body_left_unread(failure: &Failure) -> bool {
    !matches!(
        failure,
        Failure::Malformed(_) | Failure::Unauthenticated(_) | Failure::Aborted(_)
    )
}

/// Reads and drops up to `limit` bytes of `body`, for at most `within`
/// (a stalled sender holds nothing for longer).
async fn discard(mut body: Body, limit: usize, within: std::time::Duration) {
    let drain = async {
        let mut read = 0;
        while let Some(Ok(frame)) = body.frame().await {
            read += frame.data_ref().map_or(0, |d| d.len());
            if read > limit {
                return;
            }
        }
    };
    let _ = tokio::time::timeout(within, drain).await;
}

fn too_large(limit: usize) -> Failure {
    Failure::TooLarge(format!("request body exceeds the limit of {limit} bytes"))
}

fn encode_response<M: prost::Message + serde::Serialize>(message: &M, payload: Payload) -> Vec<u8> {
    match payload {
        Payload::Protobuf => message.encode_to_vec(),
        Payload::Json => {
            // OTLP/JSON omits unset fields; serde writes `null` for `None`.
            let mut value = serde_json::to_value(message).unwrap_or_default();
            // The proto3 JSON mapping writes int64 counts as strings.
            if let serde_json::Value::Object(map) = &mut value {
                map.retain(|_, v| !v.is_null());
                if let Some(serde_json::Value::Object(partial)) = map.get_mut("partialSuccess") {
                    for v in partial.values_mut() {
                        if let Some(n) = v.as_i64() {
                            *v = serde_json::Value::String(n.to_string());
                        }
                    }
                }
            }
            serde_json::to_vec(&value).unwrap_or_else(|_| b"{}".to_vec())
        }
    }
}

/// The error answer: status code, `Retry-After` when retryable, and a
/// `google.rpc.Status` body in the request's encoding (JSON when unknown).
fn failure_response(failure: &Failure, payload: Option<Payload>) -> Response {
    let status = RpcStatus {
        code: failure.rpc_code(),
        message: failure.to_string(),
        details: Vec::new(),
    };
    let mut response = status_response(failure.http_status(), &status, payload);
    if let Some(after) = failure.retry_after()
        && let Ok(v) = HeaderValue::from_str(&retry_after_seconds(after).to_string())
    {
        response.headers_mut().insert(header::RETRY_AFTER, v);
    }
    if matches!(failure, Failure::Unauthenticated(_)) {
        response.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            HeaderValue::from_static(super::auth::CHALLENGE),
        );
    }
    response
}

fn status_response(http: StatusCode, status: &RpcStatus, payload: Option<Payload>) -> Response {
    let payload = payload.unwrap_or(Payload::Json);
    let mut response = (http, encode_response(status, payload)).into_response();
    response.headers_mut().insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(payload.content_type()),
    );
    response
}

/// The encoding a request declares (protobuf or JSON), for its error
/// answer; `None` for another or no content type (answered in JSON).
fn declared_payload(headers: &HeaderMap) -> Option<Payload> {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(Payload::from_content_type)
}

/// Another method than POST on an export path: 405, counted as a
/// malformed request of that signal (a sender's exporter misconfigured).
async fn method_not_allowed<S: OtlpSignal>(
    State(ctx): State<Arc<ReceiverContext>>,
    headers: HeaderMap,
) -> Response {
    let payload = declared_payload(&headers);
    let message = "method not allowed; OTLP/HTTP export uses POST";
    process::refused::<S>(
        &ctx,
        Transport::Http,
        &Refused::from(Failure::Malformed(message.into())),
    );
    let status = RpcStatus {
        code: code::UNIMPLEMENTED,
        message: message.into(),
        details: Vec::new(),
    };
    let mut response = status_response(StatusCode::METHOD_NOT_ALLOWED, &status, payload);
    response
        .headers_mut()
        .insert(header::ALLOW, HeaderValue::from_static("POST"));
    response
}

/// A path that is no OTLP export (a sender's exporter pointed at
/// `/v1/metric`, say): 404, counted by transport.
async fn not_found(State(ctx): State<Arc<ReceiverContext>>, headers: HeaderMap) -> Response {
    ctx.telemetry.record_unknown_path(Transport::Http);
    let status = RpcStatus {
        code: code::NOT_FOUND,
        message: "unknown path; OTLP/HTTP paths are /v1/traces, /v1/metrics and /v1/logs".into(),
        details: Vec::new(),
    };
    status_response(StatusCode::NOT_FOUND, &status, declared_payload(&headers))
}
