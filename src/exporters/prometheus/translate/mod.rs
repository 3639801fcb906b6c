//! The OTel→Prometheus translation rules of prometheus/otlptranslator:
//! metric names with unit and type suffixes ([`names`]), label names
//! ([`labels`]), attribute values as label text ([`values`]).

pub mod labels;
pub mod names;
pub mod values;

pub use labels::sanitize_label_into;
pub use names::{MetricShape, metric_name, unit_word};
pub use values::write_any_value;
