//! OTLP protobuf read in place ("borrowed decoding"): views whose strings
//! and lists point into the request bytes, so a request is checked once and
//! then read without allocating a string per attribute.
//!
//! [`reader`] reads the wire format; [`common`] views attributes, resources
//! and scopes; [`metrics`] views metrics requests down to data points and
//! validates them. A view of unvalidated bytes is never handed out:
//! [`MetricsBatch`](super::MetricsBatch) validates on construction.

pub mod common;
pub mod metrics;
pub mod reader;

pub use common::{
    AnyValueView, Attributes, KeyValueView, MessageView, Repeated, ResourceView, ScopeView,
};
pub use metrics::{MetricData, MetricView, MetricsRequestView};
pub use reader::WireError;

#[cfg(test)]
pub mod tests;
