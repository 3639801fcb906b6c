//! The OTel→Prometheus translation rules of prometheus/otlptranslator:
//! metric names with unit and type suffixes
//! ([`crate::model::prometheus_name`]), label names
//! ([`crate::model::prometheus_label`]); attribute values become label text through
//! [`crate::model::text`].

pub use crate::model::prometheus_label::sanitize_label_into;
pub use crate::model::prometheus_name::{MetricShape, metric_name, unit_word};
pub use crate::model::text::write_any_value;
