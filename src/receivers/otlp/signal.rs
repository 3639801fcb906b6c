//! What differs between traces, metrics and logs, in one trait, so the
//! HTTP and gRPC servers are written once for all three signals.

use bytes::Bytes;

use crate::model::otlp::ItemCount;
use crate::model::otlp::{
    ExportLogsPartialSuccess, ExportMetricsPartialSuccess, ExportTracePartialSuccess, LogsResponse,
    MetricsResponse, TracesResponse,
};
use crate::model::{LogsBatch, MetricsBatch, TracesBatch};
use crate::pipeline::ConsumeResult;
use crate::telemetry::Signal;

use super::Consumers;

/// One OTLP signal: its request and response types, paths and consumer.
pub trait OtlpSignal: Send + Sync + 'static {
    /// What the pipeline is handed.
    type Request: ItemCount + Send + Sync + 'static;
    type Response: prost::Message + serde::Serialize + Default + Send + 'static;

    const SIGNAL: Signal;
    /// `POST` path on OTLP/HTTP.
    const HTTP_PATH: &'static str;
    /// The gRPC service name.
    const GRPC_SERVICE: &'static str;
    /// The gRPC method path.
    const GRPC_PATH: &'static str;

    fn consume(consumers: &Consumers, request: &Self::Request) -> ConsumeResult;

    /// Validates a protobuf body (decoding is left to the consumers that
    /// want owned structures); the error says what is wrong.
    fn decode_protobuf(body: Bytes) -> Result<Self::Request, String>;

    /// Decodes OTLP/JSON; the error says what is wrong.
    fn decode_json(body: &[u8]) -> Result<Self::Request, String>;

    /// Strings of the request that were not valid UTF-8 and were
    /// repaired when it was decoded.
    fn repaired_strings(request: &Self::Request) -> u32;

    /// The success answer; `rejected > 0` fills `partial_success`.
    fn response(rejected: u64, message: String) -> Self::Response;
}

pub struct Traces;
pub struct Metrics;
pub struct Logs;

impl OtlpSignal for Traces {
    type Request = TracesBatch;
    type Response = TracesResponse;
    const SIGNAL: Signal = Signal::Traces;
    const HTTP_PATH: &'static str = "/v1/traces";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.trace.v1.TraceService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.trace.v1.TraceService/Export";

    fn consume(consumers: &Consumers, request: &Self::Request) -> ConsumeResult {
        consumers.traces.consume_traces(request)
    }

    fn decode_protobuf(body: Bytes) -> Result<Self::Request, String> {
        TracesBatch::decode(body).map_err(|e| e.to_string())
    }

    fn repaired_strings(request: &Self::Request) -> u32 {
        request.repaired_strings()
    }

    fn decode_json(body: &[u8]) -> Result<Self::Request, String> {
        let request = super::json_spellings::decode(body).map_err(|e| e.to_string())?;
        TracesBatch::from_sent_request(request).map_err(|e| e.to_string())
    }

    fn response(rejected: u64, message: String) -> Self::Response {
        TracesResponse {
            partial_success: (rejected > 0 || !message.is_empty()).then_some(
                ExportTracePartialSuccess {
                    rejected_spans: rejected as i64,
                    error_message: message,
                },
            ),
        }
    }
}

impl OtlpSignal for Metrics {
    type Request = MetricsBatch;
    type Response = MetricsResponse;
    const SIGNAL: Signal = Signal::Metrics;
    const HTTP_PATH: &'static str = "/v1/metrics";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.metrics.v1.MetricsService";
    const GRPC_PATH: &'static str =
        "/opentelemetry.proto.collector.metrics.v1.MetricsService/Export";

    fn consume(consumers: &Consumers, request: &Self::Request) -> ConsumeResult {
        consumers.metrics.consume_metrics(request)
    }

    fn decode_protobuf(body: Bytes) -> Result<Self::Request, String> {
        MetricsBatch::decode(body).map_err(|e| e.to_string())
    }

    fn repaired_strings(request: &Self::Request) -> u32 {
        request.repaired_strings()
    }

    fn decode_json(body: &[u8]) -> Result<Self::Request, String> {
        let request = super::json::decode_metrics(body).map_err(|e| e.to_string())?;
        MetricsBatch::from_sent_request(request).map_err(|e| e.to_string())
    }

    fn response(rejected: u64, message: String) -> Self::Response {
        MetricsResponse {
            partial_success: (rejected > 0 || !message.is_empty()).then_some(
                ExportMetricsPartialSuccess {
                    rejected_data_points: rejected as i64,
                    error_message: message,
                },
            ),
        }
    }
}

impl OtlpSignal for Logs {
    type Request = LogsBatch;
    type Response = LogsResponse;
    const SIGNAL: Signal = Signal::Logs;
    const HTTP_PATH: &'static str = "/v1/logs";
    const GRPC_SERVICE: &'static str = "opentelemetry.proto.collector.logs.v1.LogsService";
    const GRPC_PATH: &'static str = "/opentelemetry.proto.collector.logs.v1.LogsService/Export";

    fn consume(consumers: &Consumers, request: &Self::Request) -> ConsumeResult {
        consumers.logs.consume_logs(request)
    }

    fn decode_protobuf(body: Bytes) -> Result<Self::Request, String> {
        LogsBatch::decode(body).map_err(|e| e.to_string())
    }

    fn repaired_strings(request: &Self::Request) -> u32 {
        request.repaired_strings()
    }

    fn decode_json(body: &[u8]) -> Result<Self::Request, String> {
        let request = super::json_spellings::decode(body).map_err(|e| e.to_string())?;
        LogsBatch::from_sent_request(request).map_err(|e| e.to_string())
    }

    fn response(rejected: u64, message: String) -> Self::Response {
        LogsResponse {
            partial_success: (rejected > 0 || !message.is_empty()).then_some(
                ExportLogsPartialSuccess {
                    rejected_log_records: rejected as i64,
                    error_message: message,
                },
            ),
        }
    }
}
