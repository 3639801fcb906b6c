//! Internal types passed between components.
//!
//! Metrics and traces travel through the pipeline as validated protobuf
//! bytes ([`batch`]) read in place through [`wire`] views, so a request is
//! checked once and its points go straight into the series store without
//! intermediate copies; logs travel in their decoded OTLP form (the
//! `opentelemetry-proto` structures). This module names those payloads and
//! counts the items in them.

pub mod alert;
pub mod batch;
pub mod label_block;
pub mod observation;
pub mod otlp;
pub mod prefetch;
pub mod prometheus_label;
pub mod prometheus_name;
pub mod recommendation;
pub mod spare;
pub mod text;
pub mod time;
pub mod wire;

pub use batch::{LogsBatch, MetricsBatch, TracesBatch};
pub use observation::Observations;
pub use otlp::{LogsRequest, MetricsRequest, TracesRequest};
