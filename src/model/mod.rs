//! Internal types passed between components.
//!
//! Data travels through the pipeline in its decoded OTLP form (the
//! `opentelemetry-proto` structures), so a request is decoded once and its
//! points go straight into the series store without intermediate copies.
//! This module names those payloads and counts the items in them.

pub mod alert;
pub mod batch;
pub mod observation;
pub mod otlp;
pub mod prometheus_name;
pub mod recommendation;
pub mod text;
pub mod time;
pub mod wire;

pub use batch::{MetricsBatch, TracesBatch};
pub use observation::Observations;
pub use otlp::{LogsRequest, MetricsRequest, TracesRequest};
