//! Compact storage of what a long-lived per-series state says about its
//! series: its attribute list packed into one allocation (with its label
//! block on `/metrics`, for analysed series: [`SeriesText`]), and the
//! resource and scope it shares with every other series of the same
//! source.
//!
//! An owned `Vec<KeyValue>` costs 56 bytes per attribute plus two
//! allocations for its key and value; the same list as its protobuf
//! encoding is the attributes' bytes and about four more each, in one
//! boxed slice. It is unpacked when the series' outputs are built (once
//! per evaluation step), so the saving is paid for off the ingest path.

use std::sync::Arc;

use prost::Message;

use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::processors::identity::{ByIdentity, ScopeSource};

/// An attribute list as its protobuf encoding (each `KeyValue`
/// length-delimited, in order).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PackedAttributes(Box<[u8]>);

impl PackedAttributes {
    /// Packs `attributes`, keeping their order.
    pub fn pack(attributes: &[KeyValue]) -> Self {
        let len: usize = attributes
            .iter()
            .map(|kv| {
                let n = kv.encoded_len();
                n + prost::length_delimiter_len(n)
            })
            .sum();
        let mut bytes = Vec::with_capacity(len);
        pack_into(attributes, &mut bytes);
        Self(bytes.into_boxed_slice())
    }

    /// The attributes, in the order they were packed.
    pub fn unpack(&self) -> Vec<KeyValue> {
        unpack(&self.0)
    }
}

/// The bytes of `attributes` packed: each `KeyValue` length-delimited.
fn pack_into(attributes: &[KeyValue], bytes: &mut Vec<u8>) {
    for kv in attributes {
        // Writing into a Vec grows it as needed: this cannot fail.
        let _ = kv.encode_length_delimited(bytes);
    }
}

/// The attributes packed in `bytes`, in order.
fn unpack(mut rest: &[u8]) -> Vec<KeyValue> {
    let mut out = Vec::new();
    while !rest.is_empty() {
        // Only `pack_into` wrote these bytes: a decode error cannot
        // happen, and would end the list rather than panic.
        match KeyValue::decode_length_delimited(&mut rest) {
            Ok(kv) => out.push(kv),
            Err(_) => break,
        }
    }
    out
}

/// A series' attributes packed and its label block on `/metrics`, in one
/// allocation: the packed attributes' length (4 bytes, little-endian),
/// the packed attributes, then the label block.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesText(Box<[u8]>);

impl SeriesText {
    pub fn new(attributes: &[KeyValue], labels: &str) -> Self {
        let mut bytes = vec![0; 4];
        pack_into(attributes, &mut bytes);
        let packed = (bytes.len() - 4) as u32;
        bytes[..4].copy_from_slice(&packed.to_le_bytes());
        bytes.extend_from_slice(labels.as_bytes());
        Self(bytes.into_boxed_slice())
    }

    /// Where the label block starts.
    fn split(&self) -> usize {
        let len = self
            .0
            .first_chunk::<4>()
            .map_or(0, |b| u32::from_le_bytes(*b) as usize);
        (4 + len).min(self.0.len())
    }

    /// The attributes, in the order they were given.
    pub fn attributes(&self) -> Vec<KeyValue> {
        unpack(self.0.get(4..self.split()).unwrap_or_default())
    }

    /// The label block.
    pub fn labels(&self) -> &str {
        // `new` wrote a whole `&str` here: never invalid.
        std::str::from_utf8(&self.0[self.split()..]).unwrap_or_default()
    }
}

/// The identifying resource attributes and the scope of a source, as its
/// derived series go out under them.
#[derive(Debug, PartialEq)]
pub struct Origin {
    pub resource: Vec<KeyValue>,
    pub scope: InstrumentationScope,
}

/// One [`Origin`] per source identity, shared by the series of that
/// source: a source's resource and scope are kept once however many of its
/// series are analysed.
#[derive(Debug, Default)]
pub struct Origins(ByIdentity<Arc<Origin>>);

impl Origins {
    /// The shared origin of `source`, made on first sight.
    pub fn of(&mut self, source: &ScopeSource<'_, '_>) -> Arc<Origin> {
        self.0
            .entry(source.identity)
            .or_insert_with(|| {
                Arc::new(Origin {
                    resource: source.identifying_resource(),
                    scope: source.owned_scope(),
                })
            })
            .clone()
    }

    /// Forgets the origins no series holds any more.
    pub fn release_unused(&mut self) {
        self.0.retain(|_, origin| Arc::strong_count(origin) > 1);
    }

    /// Sources known.
    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::otlp::common::{AnyValue, ArrayValue, any_value::Value};
    use crate::model::otlp::kv;

    #[test]
    fn series_text_keeps_attributes_and_labels_apart() {
        let attributes = vec![
            kv("route", Value::StringValue("/a".into())),
            kv("code", Value::IntValue(503)),
        ];
        let labels = r#"code="503",job="api",route="/a""#;
        let text = SeriesText::new(&attributes, labels);
        assert_eq!(text.attributes(), attributes);
        assert_eq!(text.labels(), labels);
        let none = SeriesText::new(&[], "");
        assert!(none.attributes().is_empty());
        assert_eq!(none.labels(), "");
        let no_labels = SeriesText::new(&attributes, "");
        assert_eq!(no_labels.attributes(), attributes);
        assert_eq!(no_labels.labels(), "");
    }

    #[test]
    fn unpacks_what_was_packed_in_order_and_smaller() {
        let attributes = vec![
            kv("service.name", Value::StringValue("checkout".into())),
            kv("http.status_code", Value::IntValue(503)),
            kv("ratio", Value::DoubleValue(0.25)),
            kv("empty", Value::StringValue(String::new())),
            kv(
                "list",
                Value::ArrayValue(ArrayValue {
                    values: vec![AnyValue {
                        value: Some(Value::BoolValue(true)),
                    }],
                }),
            ),
            KeyValue {
                key: "no value".into(),
                ..Default::default()
            },
        ];
        let packed = PackedAttributes::pack(&attributes);
        assert_eq!(packed.unpack(), attributes);
        let owned = attributes.len() * size_of::<KeyValue>();
        assert!(packed.0.len() < owned / 2, "{}", packed.0.len());
        assert!(PackedAttributes::pack(&[]).unpack().is_empty());
    }
}
