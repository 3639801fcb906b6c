//! How refusals are answered: the failure kinds, their HTTP and gRPC
//! status codes, and `google.rpc.Status` bodies in the request's encoding.

use std::time::Duration;

use serde::Serialize;

/// `google.rpc.Status`, the OTLP error body.
#[derive(Clone, PartialEq, prost::Message, Serialize)]
pub struct RpcStatus {
    #[prost(int32, tag = "1")]
    pub code: i32,
    #[prost(string, tag = "2")]
    pub message: String,
    #[prost(message, repeated, tag = "3")]
    #[serde(skip)]
    pub details: Vec<prost_types_any::Any>,
}

/// `google.protobuf.Any`, only to give `details` its wire type.
pub mod prost_types_any {
    #[derive(Clone, PartialEq, prost::Message)]
    pub struct Any {
        #[prost(string, tag = "1")]
        pub type_url: String,
        #[prost(bytes = "vec", tag = "2")]
        pub value: Vec<u8>,
    }
}

/// gRPC status codes used here (google.rpc.Code).
pub mod code {
    pub const CANCELLED: i32 = 1;
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const DEADLINE_EXCEEDED: i32 = 4;
    pub const NOT_FOUND: i32 = 5;
    pub const RESOURCE_EXHAUSTED: i32 = 8;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// Why a request was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Failure {
    /// Undecodable body: never retry (400 / INVALID_ARGUMENT).
    #[error("{0}")]
    Malformed(String),
    /// Body over the limit, on the wire or decompressed (413 / RESOURCE_EXHAUSTED without retry info).
    #[error("{0}")]
    TooLarge(String),
    /// Unknown content type or encoding (415).
    #[error("{0}")]
    UnsupportedMediaType(String),
    /// Too much load; retry after the hint (429 / RESOURCE_EXHAUSTED with RetryInfo).
    #[error("{message}")]
    Overloaded {
        message: String,
        retry_after: Duration,
    },
    /// Missing or wrong credentials (401 / UNAUTHENTICATED).
    #[error("{0}")]
    Unauthenticated(String),
    /// The body did not arrive within the read timeout (408 /
    /// DEADLINE_EXCEEDED).
    #[error("{0}")]
    ReadTimeout(String),
    /// The client closed the connection before its body's end: nothing
    /// to decode, and nobody left to answer (400 / CANCELLED if they
    /// were).
    #[error("{0}")]
    Aborted(String),
    /// Memory above the soft limit, or the in-flight budget full; retry
    /// after the hint (429 / RESOURCE_EXHAUSTED with RetryInfo).
    #[error("{message}")]
    MemoryLimited {
        message: String,
        retry_after: Duration,
    },
    /// Draining for shutdown; retry elsewhere or later (503 / UNAVAILABLE).
    #[error("{message}")]
    ShuttingDown {
        message: String,
        retry_after: Duration,
    },
}

impl Failure {
    pub fn http_status(&self) -> http::StatusCode {
        match self {
            Failure::Malformed(_) | Failure::Aborted(_) => http::StatusCode::BAD_REQUEST,
            Failure::TooLarge(_) => http::StatusCode::PAYLOAD_TOO_LARGE,
            Failure::UnsupportedMediaType(_) => http::StatusCode::UNSUPPORTED_MEDIA_TYPE,
            Failure::ReadTimeout(_) => http::StatusCode::REQUEST_TIMEOUT,
            Failure::Unauthenticated(_) => http::StatusCode::UNAUTHORIZED,
            Failure::Overloaded { .. } | Failure::MemoryLimited { .. } => {
                http::StatusCode::TOO_MANY_REQUESTS
            }
            Failure::ShuttingDown { .. } => http::StatusCode::SERVICE_UNAVAILABLE,
        }
    }

    pub fn rpc_code(&self) -> i32 {
        match self {
            Failure::Malformed(_) | Failure::UnsupportedMediaType(_) => code::INVALID_ARGUMENT,
            Failure::ReadTimeout(_) => code::DEADLINE_EXCEEDED,
            Failure::Aborted(_) => code::CANCELLED,
            Failure::Unauthenticated(_) => code::UNAUTHENTICATED,
            Failure::TooLarge(_) | Failure::Overloaded { .. } | Failure::MemoryLimited { .. } => {
                code::RESOURCE_EXHAUSTED
            }
            Failure::ShuttingDown { .. } => code::UNAVAILABLE,
        }
    }

    pub fn retry_after(&self) -> Option<Duration> {
        match self {
            Failure::Overloaded { retry_after, .. }
            | Failure::MemoryLimited { retry_after, .. }
            | Failure::ShuttingDown { retry_after, .. } => Some(*retry_after),
            _ => None,
        }
    }

    pub fn reason(&self) -> crate::telemetry::RefusalReason {
        use crate::telemetry::RefusalReason;
        match self {
            Failure::Malformed(_) => RefusalReason::Malformed,
            Failure::TooLarge(_) => RefusalReason::TooLarge,
            Failure::UnsupportedMediaType(_) => RefusalReason::UnsupportedMediaType,
            Failure::ReadTimeout(_) => RefusalReason::Timeout,
            Failure::Aborted(_) => RefusalReason::Aborted,
            Failure::Unauthenticated(_) => RefusalReason::Unauthenticated,
            Failure::Overloaded { .. } | Failure::ShuttingDown { .. } => RefusalReason::Overloaded,
            Failure::MemoryLimited { .. } => RefusalReason::MemoryLimited,
        }
    }

    /// The gRPC status for this failure (RetryInfo attached when retryable).
    pub fn to_grpc(&self) -> tonic::Status {
        use tonic_types::{ErrorDetails, StatusExt};
        let message = self.to_string();
        match self {
            Failure::Malformed(_) | Failure::UnsupportedMediaType(_) => {
                tonic::Status::invalid_argument(message)
            }
            Failure::TooLarge(_) => tonic::Status::resource_exhausted(message),
            Failure::ReadTimeout(_) => tonic::Status::deadline_exceeded(message),
            Failure::Aborted(_) => tonic::Status::cancelled(message),
            Failure::Unauthenticated(_) => tonic::Status::unauthenticated(message),
            Failure::Overloaded { retry_after, .. }
            | Failure::MemoryLimited { retry_after, .. } => tonic::Status::with_error_details(
                tonic::Code::ResourceExhausted,
                message,
                ErrorDetails::with_retry_info(Some(*retry_after)),
            ),
            Failure::ShuttingDown { retry_after, .. } => tonic::Status::with_error_details(
                tonic::Code::Unavailable,
                message,
                ErrorDetails::with_retry_info(Some(*retry_after)),
            ),
        }
    }
}

/// Seconds for `Retry-After`: at least 1, rounded up.
pub fn retry_after_seconds(d: Duration) -> u64 {
    (d.as_secs() + u64::from(d.subsec_nanos() > 0)).max(1)
}
