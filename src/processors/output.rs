//! Building what processors emit: derived series go out under their
//! source's identifying resource attributes and scope.

use crate::model::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use crate::model::otlp::metrics::{Metric, ResourceMetrics, ScopeMetrics};
use crate::model::otlp::resource::Resource;

/// One `ResourceMetrics` holding `metrics` under `resource` and `scope`.
pub fn derived(
    resource: &[KeyValue],
    scope: &InstrumentationScope,
    metrics: Vec<Metric>,
) -> ResourceMetrics {
    ResourceMetrics {
        resource: Some(Resource {
            attributes: resource.to_vec(),
            ..Default::default()
        }),
        scope_metrics: vec![ScopeMetrics {
            scope: Some(scope.clone()),
            metrics,
            ..Default::default()
        }],
        ..Default::default()
    }
}

/// A string attribute.
pub fn string_kv(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.into())),
        }),
        ..Default::default()
    }
}
