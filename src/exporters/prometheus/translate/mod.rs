//! The OTel→Prometheus translation rules of prometheus/otlptranslator:
//! metric names with unit and type suffixes ([`names`]), label names
//! ([`labels`]); attribute values become label text through
//! [`crate::model::text`].

pub mod labels;
pub mod names;

pub use crate::model::text::write_any_value;
pub use labels::sanitize_label_into;
pub use names::{MetricShape, metric_name, unit_word};
