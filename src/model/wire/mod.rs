//! OTLP protobuf read in place ("borrowed decoding"): views whose strings
//! and lists point into the request bytes, so a request is checked once and
//! then read without allocating a string per attribute.
//!
//! [`reader`] reads the wire format; [`common`] views attributes, resources
//! and scopes; [`metrics`] and [`traces`] view requests down to data points
//! and spans, and validate them. A view of unvalidated bytes is never handed out:
//! a [`Batch`](super::batch::Batch) validates on construction.

/// Builds the typed-field reader for field `field` of message `message`.
macro_rules! field {
    ($value:expr, $message:expr, $field:literal) => {
        Field {
            value: $value,
            message: $message,
            field: $field,
        }
    };
}

pub mod common;
pub mod logs;
pub mod metrics;
pub mod reader;
pub mod repair;
pub mod span_index;
pub mod traces;

pub use common::{
    AnyValueView, Attributes, FieldName, KeyValueView, MessageView, Repeated, ResourceView,
    ScopeView,
};
pub use metrics::{MetricData, MetricView, MetricsRequestView};
pub use reader::WireError;

#[cfg(test)]
pub mod tests;
#[cfg(test)]
pub mod traces_tests;
