//! A connector's metrics request written straight as protobuf: the
//! resource, scope and metric envelopes around data points the connector
//! writes itself ([`RequestWriter`]), and the few field kinds those points
//! use. Written as prost writes them: in field-number order (a oneof at
//! its lowest number), with the shortest encodings, and fields at their
//! default value left out (but oneof members and optional fields, which
//! are written when set).
//!
//! The span-metrics connector flushes every changed series each interval;
//! building OTLP structures for them (two owned strings per attribute, a
//! vector per exemplar and bucket list) only to encode and drop them cost
//! more than the writing itself.

use std::collections::HashMap;

use bytes::Bytes;
use prost::Message;
use prost::encoding::{WireType, encode_key, encode_varint, encoded_len_varint, key_len};

use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::model::otlp::resource::Resource;

/// The tag and length of a length-delimited field `field` of `len` bytes.
#[inline]
pub fn len_prefix(out: &mut Vec<u8>, field: u32, len: usize) {
    encode_key(field, WireType::LengthDelimited, out);
    encode_varint(len as u64, out);
}

/// How many bytes a length-delimited field `field` of `len` bytes takes.
#[inline]
pub fn delimited_len(field: u32, len: usize) -> usize {
    key_len(field) + encoded_len_varint(len as u64) + len
}

/// A `bytes` or `string` field (left out when empty).
#[inline]
pub fn bytes_field(out: &mut Vec<u8>, field: u32, value: &[u8]) {
    if !value.is_empty() {
        len_prefix(out, field, value.len());
        out.extend_from_slice(value);
    }
}

/// A `fixed64` or `sfixed64` field (left out when zero).
#[inline]
pub fn fixed64_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        encode_key(field, WireType::SixtyFourBit, out);
        out.extend_from_slice(&value.to_le_bytes());
    }
}

/// A `double` field that is always written (an optional one, or a
/// oneof member).
#[inline]
pub fn double_field(out: &mut Vec<u8>, field: u32, value: f64) {
    encode_key(field, WireType::SixtyFourBit, out);
    out.extend_from_slice(&value.to_le_bytes());
}

/// A varint field (`uint32`, `uint64`, `int32`, enum, `bool`; left out
/// when zero).
#[inline]
pub fn varint_field(out: &mut Vec<u8>, field: u32, value: u64) {
    if value != 0 {
        encode_key(field, WireType::Varint, out);
        encode_varint(value, out);
    }
}

/// A `sint32` field (zigzag; left out when zero).
#[inline]
pub fn sint32_field(out: &mut Vec<u8>, field: u32, value: i32) {
    varint_field(out, field, u64::from(((value << 1) ^ (value >> 31)) as u32));
}

/// A packed repeated 8-byte field (`fixed64`, or `double` given as its
/// bits; left out when empty).
pub fn packed_words(out: &mut Vec<u8>, field: u32, words: impl ExactSizeIterator<Item = u64>) {
    if words.len() > 0 {
        len_prefix(out, field, words.len() * 8);
        words.for_each(|w| out.extend_from_slice(&w.to_le_bytes()));
    }
}

/// A packed repeated `uint64` field (left out when empty).
pub fn packed_varint(out: &mut Vec<u8>, field: u32, values: &[u64]) {
    if !values.is_empty() {
        let len = values.iter().map(|&v| encoded_len_varint(v)).sum();
        len_prefix(out, field, len);
        values.iter().for_each(|&v| encode_varint(v, out));
    }
}

/// How many bytes a `KeyValue`'s key field takes (none when empty).
#[inline]
fn key_field_len(key: &str) -> usize {
    if key.is_empty() {
        0
    } else {
        delimited_len(1, key.len())
    }
}

/// A `KeyValue` field with a string value.
#[inline]
pub fn string_attribute(out: &mut Vec<u8>, field: u32, key: &str, value: &str) {
    // AnyValue { string_value = 1 }: written even when empty (a oneof).
    let any_len = delimited_len(1, value.len());
    let key_part = key_field_len(key);
    len_prefix(out, field, key_part + delimited_len(2, any_len));
    bytes_field(out, 1, key.as_bytes());
    len_prefix(out, 2, any_len);
    len_prefix(out, 1, value.len());
    out.extend_from_slice(value.as_bytes());
}

/// A `KeyValue` field with a bool value.
pub fn bool_attribute(out: &mut Vec<u8>, field: u32, key: &str, value: bool) {
    // AnyValue { bool_value = 2 }: written even when false (a oneof).
    let key_part = key_field_len(key);
    len_prefix(out, field, key_part + delimited_len(2, 2));
    bytes_field(out, 1, key.as_bytes());
    len_prefix(out, 2, 2);
    encode_key(2, WireType::Varint, out);
    encode_varint(u64::from(value), out);
}

/// Writes a message field `field` whose body `write` appends to
/// `scratch` (cleared first), then copies it after its length.
#[inline]
pub fn message_field(
    out: &mut Vec<u8>,
    field: u32,
    scratch: &mut Vec<u8>,
    write: impl FnOnce(&mut Vec<u8>),
) {
    scratch.clear();
    write(scratch);
    len_prefix(out, field, scratch.len());
    out.extend_from_slice(scratch);
}

/// One metric of a connector's output: its name, description and unit,
/// which data field holds its points, and that field's own fields after
/// the points (temporality, monotonicity), encoded.
#[derive(Debug, Clone)]
pub struct MetricShape {
    pub name: String,
    pub description: String,
    pub unit: String,
    /// `Metric.data`'s field: 7 (sum), 9 (histogram), 10 (exponential
    /// histogram).
    pub data_field: u32,
    /// The data message's fields after its points, encoded.
    pub trailer: Vec<u8>,
}

impl MetricShape {
    /// A cumulative monotonic sum.
    pub fn cumulative_sum(name: String, description: &str, unit: &str) -> Self {
        let mut trailer = Vec::new();
        varint_field(&mut trailer, 2, CUMULATIVE);
        varint_field(&mut trailer, 3, 1);
        Self::new(name, description, unit, 7, trailer)
    }

    /// A cumulative histogram, explicit (field 9) or exponential (10).
    pub fn cumulative_histogram(
        name: String,
        description: &str,
        unit: &str,
        exponential: bool,
    ) -> Self {
        let mut trailer = Vec::new();
        varint_field(&mut trailer, 2, CUMULATIVE);
        let field = if exponential { 10 } else { 9 };
        Self::new(name, description, unit, field, trailer)
    }

    fn new(name: String, description: &str, unit: &str, data_field: u32, trailer: Vec<u8>) -> Self {
        Self {
            name,
            description: description.into(),
            unit: unit.into(),
            data_field,
            trailer,
        }
    }

    /// The encoded `Metric` body's length with `points` bytes of points.
    fn body_len(&self, points: usize) -> usize {
        text_len(1, &self.name)
            + text_len(2, &self.description)
            + text_len(3, &self.unit)
            + delimited_len(self.data_field, points + self.trailer.len())
    }

    fn write(&self, out: &mut Vec<u8>, points: &[u8]) {
        len_prefix(out, 2, self.body_len(points.len()));
        bytes_field(out, 1, self.name.as_bytes());
        bytes_field(out, 2, self.description.as_bytes());
        bytes_field(out, 3, self.unit.as_bytes());
        len_prefix(out, self.data_field, points.len() + self.trailer.len());
        out.extend_from_slice(points);
        out.extend_from_slice(&self.trailer);
    }
}

/// `AGGREGATION_TEMPORALITY_CUMULATIVE`.
const CUMULATIVE: u64 = 2;

/// The length of a string field as written (nothing when empty).
fn text_len(field: u32, text: &str) -> usize {
    if text.is_empty() {
        0
    } else {
        delimited_len(field, text.len())
    }
}

/// The points of one resource: per metric, its data points as written
/// (each a field 1 of the metric's data message).
struct Group {
    resource: Vec<u8>,
    points: Vec<Vec<u8>>,
}

/// Collects data points per resource slot (`None` = the overflow series)
/// and writes the `ExportMetricsServiceRequest` around them: one
/// `ResourceMetrics` per resource, with the connector's scope and its
/// metrics in a fixed order (those without points left out).
pub struct RequestWriter {
    scope: Vec<u8>,
    metrics: Vec<MetricShape>,
    groups: Vec<Group>,
    /// Resource slot → index in `groups`.
    index: HashMap<Option<usize>, usize>,
}

impl RequestWriter {
    pub fn new(scope: &InstrumentationScope, metrics: Vec<MetricShape>) -> Self {
        Self {
            scope: scope.encode_to_vec(),
            metrics,
            groups: Vec::new(),
            index: HashMap::new(),
        }
    }

    /// The point buffers of a resource's metrics (in the order given to
    /// [`RequestWriter::new`]), created on first use.
    pub fn points(&mut self, slot: Option<usize>, resource: &[KeyValue]) -> &mut [Vec<u8>] {
        let position = match self.index.get(&slot) {
            Some(&p) => p,
            None => {
                self.groups.push(Group {
                    resource: Resource {
                        attributes: resource.to_vec(),
                        ..Default::default()
                    }
                    .encode_to_vec(),
                    points: vec![Vec::new(); self.metrics.len()],
                });
                self.index.insert(slot, self.groups.len() - 1);
                self.groups.len() - 1
            }
        };
        &mut self.groups[position].points
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

    /// The encoded request.
    pub fn finish(self) -> Bytes {
        // Each group's `ScopeMetrics` and `ResourceMetrics` lengths, once.
        let lens: Vec<(usize, usize)> = self
            .groups
            .iter()
            .map(|group| {
                let metrics: usize = self
                    .metrics
                    .iter()
                    .zip(&group.points)
                    .filter(|(_, points)| !points.is_empty())
                    .map(|(m, points)| delimited_len(2, m.body_len(points.len())))
                    .sum();
                let scope_metrics = delimited_len(1, self.scope.len()) + metrics;
                let resource_metrics =
                    delimited_len(1, group.resource.len()) + delimited_len(2, scope_metrics);
                (scope_metrics, resource_metrics)
            })
            .collect();
        let total = lens.iter().map(|&(_, r)| delimited_len(1, r)).sum();
        let mut out = Vec::with_capacity(total);
        for (group, &(scope_metrics, resource_metrics)) in self.groups.iter().zip(&lens) {
            len_prefix(&mut out, 1, resource_metrics);
            len_prefix(&mut out, 1, group.resource.len());
            out.extend_from_slice(&group.resource);
            len_prefix(&mut out, 2, scope_metrics);
            len_prefix(&mut out, 1, self.scope.len());
            out.extend_from_slice(&self.scope);
            for (metric, points) in self.metrics.iter().zip(&group.points) {
                if !points.is_empty() {
                    metric.write(&mut out, points);
                }
            }
        }
        debug_assert_eq!(out.len(), total);
        Bytes::from(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::MetricsRequest;
    use crate::model::otlp::common::{AnyValue, any_value::Value as V};
    use crate::model::otlp::metrics::{
        AggregationTemporality, Metric, NumberDataPoint, metric::Data, number_data_point,
    };

    fn kv(key: &str, value: V) -> KeyValue {
        KeyValue {
            key: key.into(),
            value: Some(AnyValue { value: Some(value) }),
            ..Default::default()
        }
    }

    #[test]
    fn attributes_and_fields_are_what_prost_writes() {
        for (key, value) in [("service.name", "checkout"), ("", ""), ("k", ""), ("", "v")] {
            let mut ours = Vec::new();
            string_attribute(&mut ours, 7, key, value);
            let point = NumberDataPoint {
                attributes: vec![kv(key, V::StringValue(value.into()))],
                ..Default::default()
            };
            assert_eq!(ours, point.encode_to_vec(), "{key:?}={value:?}");
        }
        for flag in [true, false] {
            let mut ours = Vec::new();
            bool_attribute(&mut ours, 7, "otel.metric.overflow", flag);
            let point = NumberDataPoint {
                attributes: vec![kv("otel.metric.overflow", V::BoolValue(flag))],
                ..Default::default()
            };
            assert_eq!(ours, point.encode_to_vec());
        }
        let long = "x".repeat(300);
        let mut ours = Vec::new();
        string_attribute(&mut ours, 9, &long, &long);
        let decoded =
            crate::model::otlp::metrics::HistogramDataPoint::decode(&ours[..]).expect("valid");
        assert_eq!(
            decoded.attributes,
            vec![kv(&long, V::StringValue(long.clone()))]
        );
        let mut ours = Vec::new();
        sint32_field(&mut ours, 6, -3);
        packed_varint(&mut ours, 2, &[0, 1, 300, u64::MAX]);
        let mut expected = Vec::new();
        prost::encoding::sint32::encode(6, &-3, &mut expected);
        prost::encoding::uint64::encode_packed(2, &[0, 1, 300, u64::MAX], &mut expected);
        assert_eq!(ours, expected);
    }

    #[test]
    fn the_request_is_the_one_prost_would_write() {
        let scope = InstrumentationScope {
            name: "streamgate.test".into(),
            version: "1".into(),
            ..Default::default()
        };
        let shapes = vec![
            MetricShape::cumulative_sum("calls".into(), "Calls.", ""),
            MetricShape::cumulative_histogram("duration".into(), "Durations.", "s", false),
        ];
        let mut writer = RequestWriter::new(&scope, shapes);
        assert!(writer.is_empty());
        let resource = vec![kv("service.name", V::StringValue("a".repeat(200)))];
        let point = |value: i64| NumberDataPoint {
            attributes: vec![kv("span.name", V::StringValue(format!("op{value}")))],
            start_time_unix_nano: 5,
            time_unix_nano: 9,
            value: Some(number_data_point::Value::AsInt(value)),
            ..Default::default()
        };
        // Enough points that lengths take two bytes.
        for value in 0..40 {
            let points = writer.points(Some(0), &resource);
            let mut scratch = Vec::new();
            message_field(&mut points[0], 1, &mut scratch, |p| {
                point(value).encode_raw(p)
            });
        }
        writer.next_table();
        let points = writer.points(None, &[]);
        let mut scratch = Vec::new();
        message_field(&mut points[0], 1, &mut scratch, |p| point(-1).encode_raw(p));
        let bytes = writer.finish();
        let decoded = MetricsRequest::decode(&bytes[..]).expect("valid");
        let calls = |points: Vec<NumberDataPoint>| Metric {
            name: "calls".into(),
            description: "Calls.".into(),
            data: Some(Data::Sum(crate::model::otlp::metrics::Sum {
                data_points: points,
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        };
        let group =
            |resource: Vec<KeyValue>, points| crate::model::otlp::metrics::ResourceMetrics {
                resource: Some(Resource {
                    attributes: resource,
                    ..Default::default()
                }),
                scope_metrics: vec![crate::model::otlp::metrics::ScopeMetrics {
                    scope: Some(scope.clone()),
                    metrics: vec![calls(points)],
                    ..Default::default()
                }],
                ..Default::default()
            };
        let expected = MetricsRequest {
            resource_metrics: vec![
                group(resource.clone(), (0..40).map(point).collect()),
                group(Vec::new(), vec![point(-1)]),
            ],
        };
        assert_eq!(decoded, expected);
        assert_eq!(bytes, expected.encode_to_vec(), "byte for byte");
    }
}
