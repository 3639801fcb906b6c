//! Entry points shared by the fuzz targets and the corpus replay test.
//!
//! [`Harness::exercise`] takes one request body the way OTLP/HTTP does
//! after reading and decompressing it: admission, decode once (protobuf
//! validated in place, or OTLP/JSON), hand to the consumers, record the
//! outcome in telemetry, and encode the answer (the response with its
//! `partial_success`, or the `google.rpc.Status` of a refusal, in both
//! encodings and as a gRPC status). Everything runs in the calling thread:
//! no sockets, no runtime. Which consumers sit behind it (exporter,
//! connectors) is the caller's choice, since a receiver may not import
//! them (`tests/architecture.rs`).

use std::sync::Arc;

use bytes::Bytes;

use crate::telemetry::{Signal, Telemetry, Transport};

use super::signal::{Logs, Metrics, OtlpSignal, Traces};
use super::status::{Failure, RpcStatus};
use super::{Consumers, OtlpReceiver, OtlpReceiverConfig, Payload, process};

/// What the sender would be told.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Applied; `rejected` items (with `message`) went into `partial_success`.
    Accepted { rejected: u64, message: String },
    /// Refused as a whole.
    Refused(Failure),
}

impl Outcome {
    /// The OTLP/HTTP status code of the answer.
    pub fn http_status(&self) -> u16 {
        match self {
            Outcome::Accepted { .. } => 200,
            Outcome::Refused(failure) => failure.http_status().as_u16(),
        }
    }
}

/// A receiver without servers: the request path of OTLP/HTTP, in process.
pub struct Harness {
    receiver: OtlpReceiver,
}

impl Harness {
    /// A receiver built from `config` (never started), handing requests
    /// to `consumers`.
    pub fn new(
        config: OtlpReceiverConfig,
        consumers: Consumers,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Self {
            receiver: super::build(config, consumers, telemetry),
        }
    }

    /// Handles one decompressed request body of `signal` in `payload`
    /// encoding, as `POST /v1/<signal>` would.
    pub fn exercise(&self, signal: Signal, payload: Payload, body: &[u8]) -> Outcome {
        match signal {
            Signal::Traces => self.handle::<Traces>(payload, body),
            Signal::Metrics => self.handle::<Metrics>(payload, body),
            Signal::Logs => self.handle::<Logs>(payload, body),
        }
    }

    fn handle<S: OtlpSignal>(&self, payload: Payload, body: &[u8]) -> Outcome {
        let handled = (|| {
            let _permit = self.receiver.ctx.admission.try_admit()?;
            if body.len() > self.receiver.ctx.max_request_size {
                return Err(Failure::TooLarge("request body exceeds the limit".into()).into());
            }
            let request = process::decode::<S>(Bytes::copy_from_slice(body), payload)?;
            process::consume::<S>(&self.receiver.ctx, &request, Transport::Http)
        })();
        match handled {
            Ok(response) => {
                let (rejected, message) = partial_success(&encode(&response));
                Outcome::Accepted { rejected, message }
            }
            Err(refused) => {
                process::refused::<S>(&self.receiver.ctx, Transport::Http, &refused);
                let status = RpcStatus {
                    code: refused.failure.rpc_code(),
                    message: refused.failure.to_string(),
                    details: Vec::new(),
                };
                encode(&status);
                let _ = refused.failure.to_grpc();
                Outcome::Refused(refused.failure)
            }
        }
    }
}

/// Encodes an answer as both transports would; returns the protobuf.
fn encode<M: prost::Message + serde::Serialize>(message: &M) -> Vec<u8> {
    let json = serde_json::to_vec(message).unwrap_or_default();
    std::hint::black_box(json);
    message.encode_to_vec()
}

/// The shape the three export responses share: `partial_success` (1)
/// with the rejected count (1) and `error_message` (2).
#[derive(Clone, PartialEq, prost::Message)]
struct AnyResponse {
    #[prost(message, optional, tag = "1")]
    partial_success: Option<AnyPartialSuccess>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct AnyPartialSuccess {
    #[prost(int64, tag = "1")]
    rejected: i64,
    #[prost(string, tag = "2")]
    error_message: String,
}

/// `rejected` and the message of an encoded response's `partial_success`.
fn partial_success(encoded: &[u8]) -> (u64, String) {
    let partial = <AnyResponse as prost::Message>::decode(encoded)
        .ok()
        .and_then(|r| r.partial_success)
        .unwrap_or_default();
    (partial.rejected.max(0) as u64, partial.error_message)
}
