//! The transport-independent part of handling an export: decode once,
//! count, hand to the pipeline, turn the outcome into a response or a
//! failure, and record it all in telemetry.

use bytes::Bytes;

use crate::model::otlp::ItemCount;
use crate::pipeline::ConsumeError;
use crate::telemetry::events::{RequestAccepted, RequestRefused};
use crate::telemetry::{RefusalReason, Transport};

use super::ReceiverContext;
use super::encoding::Payload;
use super::signal::OtlpSignal;
use super::status::Failure;

/// Decodes an (already decompressed) body.
pub fn decode<S: OtlpSignal>(body: Bytes, payload: Payload) -> Result<S::Request, Failure> {
    match payload {
        Payload::Protobuf => S::decode_protobuf(body).map_err(|e| {
            Failure::Malformed(format!(
                "cannot decode {} protobuf: {e}",
                S::SIGNAL.as_str()
            ))
        }),
        Payload::Json if body.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') => {
            Err(Failure::Malformed(format!(
                "cannot decode {} OTLP/JSON: the body must be a JSON object",
                S::SIGNAL.as_str()
            )))
        }
        Payload::Json => S::decode_json(&body).map_err(|e| {
            Failure::Malformed(format!(
                "cannot decode {} OTLP/JSON: {e}",
                S::SIGNAL.as_str()
            ))
        }),
    }
}

/// A whole-request refusal and the items it held (0 when not decoded).
#[derive(Debug)]
pub struct Refused {
    pub failure: Failure,
    pub items: u64,
}

impl From<Failure> for Refused {
    fn from(failure: Failure) -> Self {
        Refused { failure, items: 0 }
    }
}

/// Hands a decoded request to the pipeline and records accepted and
/// partially rejected items. Whole-request refusals are returned for the
/// transport to answer and record with [`refused`].
pub fn consume<S: OtlpSignal>(
    ctx: &ReceiverContext,
    request: &S::Request,
    transport: Transport,
) -> Result<S::Response, Refused> {
    let items = request.item_count();
    let repaired = S::repaired_strings(request);
    match S::consume(&ctx.consumers, request) {
        Ok(mut outcome) => {
            if repaired > 0 {
                ctx.telemetry
                    .record_repaired_strings(S::SIGNAL, transport, u64::from(repaired));
                // A warning with nothing rejected, as OTLP's partial
                // success allows.
                let note = format!(
                    "{repaired} string(s) were not valid UTF-8; their invalid bytes were replaced by '?'"
                );
                outcome.message = if outcome.message.is_empty() {
                    note
                } else {
                    format!("{}; {note}", outcome.message)
                };
            }
            let accepted = items.saturating_sub(outcome.rejected);
            RequestAccepted {
                signal: S::SIGNAL,
                transport,
                items: accepted,
            }
            .emit(&ctx.telemetry);
            if outcome.rejected > 0 {
                RequestRefused {
                    signal: S::SIGNAL,
                    transport,
                    reason: RefusalReason::Rejected,
                    items: outcome.rejected,
                    message: &outcome.message,
                }
                .emit(&ctx.telemetry);
            }
            Ok(S::response(outcome.rejected, outcome.message))
        }
        Err(error) => {
            let failure = match error {
                ConsumeError::Overloaded {
                    reason,
                    retry_after,
                } => Failure::Overloaded {
                    message: reason,
                    retry_after,
                },
                ConsumeError::ShuttingDown => Failure::ShuttingDown {
                    message: "StreamGate is shutting down".into(),
                    retry_after: ctx.retry_after,
                },
            };
            Err(Refused { failure, items })
        }
    }
}

/// Records a whole-request refusal.
pub fn refused<S: OtlpSignal>(ctx: &ReceiverContext, transport: Transport, refused: &Refused) {
    RequestRefused {
        signal: S::SIGNAL,
        transport,
        reason: refused.failure.reason(),
        items: refused.items,
        message: &refused.failure.to_string(),
    }
    .emit(&ctx.telemetry);
}
