//! The OTLP payloads carried by the pipeline, and item counting for them.

pub use opentelemetry_proto::tonic::collector::logs::v1::{
    ExportLogsPartialSuccess, ExportLogsServiceRequest as LogsRequest,
    ExportLogsServiceResponse as LogsResponse,
};
pub use opentelemetry_proto::tonic::collector::metrics::v1::{
    ExportMetricsPartialSuccess, ExportMetricsServiceRequest as MetricsRequest,
    ExportMetricsServiceResponse as MetricsResponse,
};
pub use opentelemetry_proto::tonic::collector::trace::v1::{
    ExportTracePartialSuccess, ExportTraceServiceRequest as TracesRequest,
    ExportTraceServiceResponse as TracesResponse,
};
pub use opentelemetry_proto::tonic::common::v1 as common;
pub use opentelemetry_proto::tonic::logs::v1 as logs;
pub use opentelemetry_proto::tonic::metrics::v1 as metrics;
pub use opentelemetry_proto::tonic::resource::v1 as resource;
pub use opentelemetry_proto::tonic::trace::v1 as trace;

use metrics::metric::Data;

/// An attribute with any value, as the unit tests build them.
#[cfg(test)]
pub fn kv(key: &str, value: common::any_value::Value) -> common::KeyValue {
    common::KeyValue {
        key: key.into(),
        value: Some(common::AnyValue { value: Some(value) }),
        ..Default::default()
    }
}

/// Number of data points in one metric.
pub fn metric_point_count(metric: &metrics::Metric) -> u64 {
    let n = match &metric.data {
        Some(Data::Gauge(g)) => g.data_points.len(),
        Some(Data::Sum(s)) => s.data_points.len(),
        Some(Data::Histogram(h)) => h.data_points.len(),
        Some(Data::ExponentialHistogram(h)) => h.data_points.len(),
        Some(Data::Summary(s)) => s.data_points.len(),
        None => 0,
    };
    n as u64
}

/// Items in a request: data points, spans or log records.
pub trait ItemCount {
    fn item_count(&self) -> u64;
}

impl ItemCount for MetricsRequest {
    fn item_count(&self) -> u64 {
        self.resource_metrics
            .iter()
            .flat_map(|rm| &rm.scope_metrics)
            .flat_map(|sm| &sm.metrics)
            .map(metric_point_count)
            .sum()
    }
}

impl ItemCount for TracesRequest {
    fn item_count(&self) -> u64 {
        self.resource_spans
            .iter()
            .flat_map(|rs| &rs.scope_spans)
            .map(|ss| ss.spans.len() as u64)
            .sum()
    }
}

impl ItemCount for LogsRequest {
    fn item_count(&self) -> u64 {
        self.resource_logs
            .iter()
            .flat_map(|rl| &rl.scope_logs)
            .map(|sl| sl.log_records.len() as u64)
            .sum()
    }
}
