//! Raw measurements handed from connectors to processors that need every
//! value (window quantiles), alongside the aggregated metrics they emit.

use crate::model::otlp::common::{InstrumentationScope, KeyValue};

/// Values measured for one series since the last batch, identified as its
/// OTLP metric stream is (resource, scope, metric name, attributes).
#[derive(Debug, Clone, Copy)]
pub struct Observations<'a> {
    pub resource: &'a [KeyValue],
    pub scope: &'a InstrumentationScope,
    pub metric: &'a str,
    pub unit: &'a str,
    pub description: &'a str,
    pub attributes: &'a [KeyValue],
    pub values: &'a [f64],
}
