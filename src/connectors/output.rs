//! Building the metrics request a connector emits: one `ResourceMetrics`
//! per resource, each with the connector's metrics in a fixed order.

use crate::model::MetricsRequest;
use crate::model::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use crate::model::otlp::metrics::{Metric, ResourceMetrics, ScopeMetrics};
use crate::model::otlp::resource::Resource;

/// Collects points per resource slot (`None` = the overflow series).
pub struct Output {
    scope: InstrumentationScope,
    template: Vec<Metric>,
    groups: Vec<ResourceMetrics>,
    /// Resource slot → index in `groups`.
    index: std::collections::HashMap<Option<usize>, usize>,
}

impl Output {
    /// `template` holds the connector's metrics with empty point lists.
    pub fn new(scope: InstrumentationScope, template: Vec<Metric>) -> Self {
        Self {
            scope,
            template,
            groups: Vec::new(),
            index: std::collections::HashMap::new(),
        }
    }

    /// The metrics of a resource, created from the template on first use.
    pub fn metrics(&mut self, slot: Option<usize>, resource: &[KeyValue]) -> &mut Vec<Metric> {
        let position = match self.index.get(&slot) {
            Some(p) => *p,
            None => {
                self.groups.push(ResourceMetrics {
                    resource: Some(Resource {
                        attributes: resource.to_vec(),
                        ..Default::default()
                    }),
                    scope_metrics: vec![ScopeMetrics {
                        scope: Some(self.scope.clone()),
                        metrics: self.template.clone(),
                        ..Default::default()
                    }],
                    ..Default::default()
                });
                self.index.insert(slot, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        &mut self.groups[position].scope_metrics[0].metrics
    }

    /// Starts taking the points of another table (a connector's next
    /// shard): its resource slots are its own. A resource's series are
    /// all in one shard, so none is split over two groups.
    pub fn next_table(&mut self) {
        self.index.clear();
    }

    pub fn is_empty(&self) -> bool {
        self.groups.is_empty()
    }

    pub fn finish(self) -> MetricsRequest {
        MetricsRequest {
            resource_metrics: self.groups,
        }
    }
}

/// A string attribute.
pub fn string_attribute(key: &str, value: &str) -> KeyValue {
    KeyValue {
        key: key.to_string(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value.to_string())),
        }),
        ..Default::default()
    }
}

/// The key of the overflow attribute of the OTel metrics specification
/// (a bool, true).
pub const OVERFLOW_KEY: &str = "otel.metric.overflow";

/// The overflow attribute of the OTel metrics specification.
pub fn overflow_attribute() -> KeyValue {
    KeyValue {
        key: OVERFLOW_KEY.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::BoolValue(true)),
        }),
        ..Default::default()
    }
}

/// The value of attribute `key`, if present.
pub fn find_attribute<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a AnyValue> {
    attributes
        .iter()
        .find(|kv| kv.key == key)
        .and_then(|kv| kv.value.as_ref())
}

/// The string value of attribute `key`, if it is a non-empty string.
pub fn find_str<'a>(attributes: &'a [KeyValue], key: &str) -> Option<&'a str> {
    match find_attribute(attributes, key).and_then(|v| v.value.as_ref()) {
        Some(any_value::Value::StringValue(s)) if !s.is_empty() => Some(s),
        _ => None,
    }
}

/// Unix time now, in nanoseconds.
pub fn now_ns() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_nanos() as u64)
        .unwrap_or(0)
}
