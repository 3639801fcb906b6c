//! One connection's worth of sending: OTLP/gRPC through the generated
//! tonic clients, or OTLP/HTTP (protobuf or JSON) through hyper, each
//! request compressed as asked (gzip or zstd, as the OTel Collector's
//! exporters send by default) and each answer read as the OTLP
//! specification says: success with an optional `partial_success`, or a
//! refusal with its status.

use bytes::{BufMut as _, Bytes};
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use opentelemetry_proto::tonic::collector::logs::v1::logs_service_client::LogsServiceClient;
use opentelemetry_proto::tonic::collector::metrics::v1::metrics_service_client::MetricsServiceClient;
use opentelemetry_proto::tonic::collector::trace::v1::trace_service_client::TraceServiceClient;
use prost::Message as _;
use std::io::Write as _;
use std::marker::PhantomData;
use tonic::codec::{Codec, CompressionEncoding, EncodeBuf, Encoder};
use tonic::codegen::http::uri::PathAndQuery;
use tonic::transport::Channel;

use super::{LoadgenError, Signal};
use crate::model::otlp::{LogsResponse, MetricsResponse, TracesResponse};
use crate::model::{LogsRequest, MetricsRequest, TracesRequest};

/// One request of any signal.
pub enum Payload {
    Metrics(MetricsRequest),
    /// A request of this signal already encoded as protobuf (see
    /// `template.rs`).
    Encoded(Signal, Bytes),
    Traces(TracesRequest),
    Logs(LogsRequest),
}

/// How the server answered one request.
#[derive(Debug, Clone, PartialEq)]
pub enum Answer {
    /// Accepted, `rejected` items of it refused by `partial_success`.
    Accepted { rejected: u64 },
    /// Refused as a whole: the HTTP status or gRPC code, whether it is
    /// one senders retry (429/502/503/504, `RESOURCE_EXHAUSTED`/
    /// `UNAVAILABLE`), and whether the server said when (`Retry-After`,
    /// `RetryInfo`).
    Refused {
        status: String,
        retryable: bool,
        hinted: bool,
    },
    /// No answer: connection or protocol failure.
    Failed(String),
}

/// The wire encoding of OTLP/HTTP bodies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Encoding {
    Protobuf,
    Json,
}

/// How request bodies are compressed: gRPC message compression
/// (`grpc-encoding`), or the HTTP body's `Content-Encoding`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    None,
    /// gzip at its default level, as the OTel Collector's OTLP exporters
    /// send by default.
    Gzip,
    /// zstd at its default level.
    Zstd,
}

impl Compression {
    /// The gRPC message encoding, if any.
    fn grpc(self) -> Option<CompressionEncoding> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some(CompressionEncoding::Gzip),
            Compression::Zstd => Some(CompressionEncoding::Zstd),
        }
    }

    /// The `Content-Encoding` of a compressed body, if any.
    fn content_encoding(self) -> Option<&'static str> {
        match self {
            Compression::None => None,
            Compression::Gzip => Some("gzip"),
            Compression::Zstd => Some("zstd"),
        }
    }

    /// `body` compressed this way (as it is for `None`).
    pub fn compress(self, body: &[u8]) -> std::io::Result<Vec<u8>> {
        match self {
            Compression::None => Ok(body.to_vec()),
            Compression::Gzip => {
                let mut encoder = flate2::write::GzEncoder::new(
                    Vec::with_capacity(body.len() / 4),
                    flate2::Compression::default(),
                );
                encoder.write_all(body)?;
                encoder.finish()
            }
            Compression::Zstd => zstd::bulk::compress(body, 0),
        }
    }
}

pub enum Sender {
    Grpc {
        channel: Channel,
        compression: Option<CompressionEncoding>,
    },
    Http {
        client: Box<Client<HttpConnector, Full<Bytes>>>,
        /// `http://host:port` (the signal path is added per request).
        base: String,
        encoding: Encoding,
        compression: Compression,
    },
}

impl Sender {
    /// A gRPC sender with its own HTTP/2 connection to `endpoint`.
    pub async fn grpc(endpoint: &str, compression: Compression) -> Result<Self, LoadgenError> {
        let channel = Channel::from_shared(endpoint.to_string())
            .map_err(|e| LoadgenError::Endpoint(format!("{endpoint}: {e}")))?
            .connect()
            .await
            .map_err(|e| LoadgenError::Connect(format!("{endpoint}: {e}")))?;
        Ok(Sender::Grpc {
            channel,
            compression: compression.grpc(),
        })
    }

    pub fn http(base: &str, encoding: Encoding, compression: Compression) -> Self {
        Sender::Http {
            client: Box::new(Client::builder(TokioExecutor::new()).build(HttpConnector::new())),
            base: base.trim_end_matches('/').to_string(),
            encoding,
            compression,
        }
    }

    pub async fn send(&self, payload: Payload) -> Answer {
        match self {
            Sender::Grpc {
                channel,
                compression,
            } => grpc(channel.clone(), *compression, payload).await,
            Sender::Http {
                client,
                base,
                encoding,
                compression,
            } => http(client, base, *encoding, *compression, payload).await,
        }
    }
}

/// A server's gRPC status as a refusal; a status tonic made from a
/// transport error (it carries the error as its source: a refused
/// connection, a TLS server spoken to in plaintext, a reset stream) is no
/// answer at all.
fn grpc_refusal(status: tonic::Status) -> Answer {
    use std::error::Error as _;
    if status.source().is_some() {
        return Answer::Failed(format!("{:?}: {}", status.code(), status.message()));
    }
    match status.code() {
        tonic::Code::Unavailable if status.message().contains("connect") => {
            Answer::Failed(status.message().to_string())
        }
        code => Answer::Refused {
            status: format!("{code:?}"),
            retryable: matches!(
                code,
                tonic::Code::ResourceExhausted | tonic::Code::Unavailable
            ),
            hinted: {
                use tonic_types::StatusExt;
                status.get_details_retry_info().is_some()
            },
        },
    }
}

/// The OTLP/gRPC export method of each signal.
const METRICS_EXPORT: &str = "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";
const TRACES_EXPORT: &str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";
const LOGS_EXPORT: &str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

/// Sends protobuf bytes as they are and decodes the answer as `R`: a
/// request encoded ahead of time goes out without being built again.
struct EncodedCodec<R>(PhantomData<R>);

impl<R: prost::Message + Default + Send + 'static> Codec for EncodedCodec<R> {
    type Encode = Bytes;
    type Decode = R;
    type Encoder = BytesEncoder;
    type Decoder = tonic_prost::ProstDecoder<R>;

    fn encoder(&mut self) -> BytesEncoder {
        BytesEncoder
    }

    fn decoder(&mut self) -> Self::Decoder {
        tonic_prost::ProstDecoder::default()
    }
}

/// Writes a message's encoded bytes into the gRPC frame.
struct BytesEncoder;

impl Encoder for BytesEncoder {
    type Item = Bytes;
    type Error = tonic::Status;

    fn encode(&mut self, item: Bytes, dst: &mut EncodeBuf<'_>) -> Result<(), tonic::Status> {
        dst.put_slice(&item);
        Ok(())
    }
}

/// A unary OTLP/gRPC export of encoded bytes to `method`, its answer
/// decoded as `R`.
async fn export_encoded<R: prost::Message + Default + Send + Sync + 'static>(
    channel: Channel,
    compression: Option<CompressionEncoding>,
    method: &'static str,
    body: Bytes,
) -> Result<R, tonic::Status> {
    let mut client = tonic::client::Grpc::new(channel);
    if let Some(encoding) = compression {
        client = client.send_compressed(encoding);
    }
    client
        .ready()
        .await
        .map_err(|e| tonic::Status::unavailable(format!("connect: {e}")))?;
    client
        .unary(
            tonic::Request::new(body),
            PathAndQuery::from_static(method),
            EncodedCodec::<R>(PhantomData),
        )
        .await
        .map(tonic::Response::into_inner)
}

/// A generated client for `$client`, compressing its requests as asked.
macro_rules! compressed_client {
    ($client:ident, $channel:expr, $compression:expr) => {{
        let client = $client::new($channel);
        match $compression {
            Some(encoding) => client.send_compressed(encoding),
            None => client,
        }
    }};
}

async fn grpc(
    channel: Channel,
    compression: Option<CompressionEncoding>,
    payload: Payload,
) -> Answer {
    let rejected = match payload {
        Payload::Encoded(Signal::Metrics, body) => {
            export_encoded::<MetricsResponse>(channel, compression, METRICS_EXPORT, body)
                .await
                .map(|a| a.partial_success.map_or(0, |p| p.rejected_data_points))
        }
        Payload::Encoded(Signal::Traces, body) => {
            export_encoded::<TracesResponse>(channel, compression, TRACES_EXPORT, body)
                .await
                .map(|a| a.partial_success.map_or(0, |p| p.rejected_spans))
        }
        Payload::Encoded(Signal::Logs, body) => {
            export_encoded::<LogsResponse>(channel, compression, LOGS_EXPORT, body)
                .await
                .map(|a| a.partial_success.map_or(0, |p| p.rejected_log_records))
        }
        Payload::Metrics(r) => compressed_client!(MetricsServiceClient, channel, compression)
            .export(r)
            .await
            .map(|a| {
                a.into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_data_points)
            }),
        Payload::Traces(r) => compressed_client!(TraceServiceClient, channel, compression)
            .export(r)
            .await
            .map(|a| {
                a.into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_spans)
            }),
        Payload::Logs(r) => compressed_client!(LogsServiceClient, channel, compression)
            .export(r)
            .await
            .map(|a| {
                a.into_inner()
                    .partial_success
                    .map_or(0, |p| p.rejected_log_records)
            }),
    };
    match rejected {
        Ok(rejected) => Answer::Accepted {
            rejected: rejected.max(0) as u64,
        },
        Err(status) => grpc_refusal(status),
    }
}

async fn http(
    client: &Client<HttpConnector, Full<Bytes>>,
    base: &str,
    encoding: Encoding,
    compression: Compression,
    payload: Payload,
) -> Answer {
    let (path, body) = match (&payload, encoding) {
        (Payload::Encoded(signal, b), _) => (signal_path(*signal), b.clone()),
        (Payload::Metrics(r), Encoding::Protobuf) => ("metrics", r.encode_to_vec().into()),
        (Payload::Traces(r), Encoding::Protobuf) => ("traces", r.encode_to_vec().into()),
        (Payload::Logs(r), Encoding::Protobuf) => ("logs", r.encode_to_vec().into()),
        (Payload::Metrics(r), Encoding::Json) => ("metrics", json(r).into()),
        (Payload::Traces(r), Encoding::Json) => ("traces", json(r).into()),
        (Payload::Logs(r), Encoding::Json) => ("logs", json(r).into()),
    };
    // Encoded bytes are protobuf whatever the run's encoding.
    let encoding = match payload {
        Payload::Encoded(..) => Encoding::Protobuf,
        _ => encoding,
    };
    let content_type = match encoding {
        Encoding::Protobuf => "application/x-protobuf",
        Encoding::Json => "application/json",
    };
    let mut request = http::Request::post(format!("{base}/v1/{path}"))
        .header(http::header::CONTENT_TYPE, content_type);
    let body = match compression.content_encoding() {
        None => body,
        Some(coding) => {
            request = request.header(http::header::CONTENT_ENCODING, coding);
            match compression.compress(&body) {
                Ok(compressed) => compressed.into(),
                Err(e) => return Answer::Failed(format!("compressing the body: {e}")),
            }
        }
    };
    let request = match request.body(Full::new(body)) {
        Ok(r) => r,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let response = match client.request(request).await {
        Ok(r) => r,
        Err(e) => return Answer::Failed(e.to_string()),
    };
    let status = response.status();
    let hinted = response.headers().contains_key(http::header::RETRY_AFTER);
    let body = match response.into_body().collect().await {
        Ok(b) => b.to_bytes(),
        Err(e) => return Answer::Failed(e.to_string()),
    };
    if !status.is_success() {
        return Answer::Refused {
            status: status.as_u16().to_string(),
            retryable: matches!(status.as_u16(), 429 | 502 | 503 | 504),
            hinted,
        };
    }
    Answer::Accepted {
        rejected: rejected_in(&payload, encoding, &body),
    }
}

/// The OTLP/HTTP path segment of `signal` (`/v1/<segment>`).
fn signal_path(signal: Signal) -> &'static str {
    match signal {
        Signal::Metrics => "metrics",
        Signal::Traces => "traces",
        Signal::Logs => "logs",
    }
}

fn json<T: serde::Serialize>(request: &T) -> Vec<u8> {
    serde_json::to_vec(request).unwrap_or_default()
}

/// `partial_success`'s rejected count in a success body (0 if absent).
fn rejected_in(payload: &Payload, encoding: Encoding, body: &[u8]) -> u64 {
    let rejected = match (payload, encoding) {
        // Encoded bytes go out as protobuf, so their answer is protobuf.
        (Payload::Encoded(Signal::Metrics, _), _) | (Payload::Metrics(_), Encoding::Protobuf) => {
            MetricsResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| p.rejected_data_points)
        }
        (Payload::Encoded(Signal::Traces, _), _) | (Payload::Traces(_), Encoding::Protobuf) => {
            TracesResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| p.rejected_spans)
        }
        (Payload::Encoded(Signal::Logs, _), _) | (Payload::Logs(_), Encoding::Protobuf) => {
            LogsResponse::decode(body)
                .ok()
                .and_then(|r| r.partial_success)
                .map(|p| p.rejected_log_records)
        }
        (_, Encoding::Json) => serde_json::from_slice::<serde_json::Value>(body)
            .ok()
            .and_then(|v| {
                let partial = v.get("partialSuccess")?;
                ["rejectedDataPoints", "rejectedSpans", "rejectedLogRecords"]
                    .iter()
                    .find_map(|k| partial.get(*k))
                    .and_then(|n| n.as_str().and_then(|s| s.parse().ok()).or(n.as_i64()))
            }),
    };
    rejected.unwrap_or(0).max(0) as u64
}
