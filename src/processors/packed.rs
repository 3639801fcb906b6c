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

use std::ops::Range;
use std::sync::{Arc, OnceLock};

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
/// allocation: the packed attributes' length and where the block's shared
/// run was left out (4 bytes each, little-endian; [`WHOLE`] when it was
/// not), the packed attributes, then the block's own text (all of it, or
/// the text before and after the run, which the series' [`Origin`]
/// keeps once for all of them).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SeriesText(Box<[u8]>);

/// The split position of a label block kept whole.
const WHOLE: u32 = u32::MAX;

impl SeriesText {
    /// `labels` is the whole block; `shared` the run to leave out (the
    /// caller keeps it), or `None` to keep the block whole.
    pub fn new(attributes: &[KeyValue], labels: &str, shared: Option<Range<usize>>) -> Self {
        let mut bytes = vec![0; 8];
        pack_into(attributes, &mut bytes);
        let packed = (bytes.len() - 8) as u32;
        bytes[..4].copy_from_slice(&packed.to_le_bytes());
        let run = shared.filter(|r| labels.get(r.clone()).is_some());
        let split = match &run {
            Some(r) => {
                bytes.extend_from_slice(&labels.as_bytes()[..r.start]);
                bytes.extend_from_slice(&labels.as_bytes()[r.end..]);
                r.start as u32
            }
            None => {
                bytes.extend_from_slice(labels.as_bytes());
                WHOLE
            }
        };
        bytes[4..8].copy_from_slice(&split.to_le_bytes());
        Self(bytes.into_boxed_slice())
    }

    fn word(&self, at: usize) -> u32 {
        self.0
            .get(at..at + 4)
            .and_then(|b| b.try_into().ok())
            .map_or(0, u32::from_le_bytes)
    }

    /// Where the label text starts.
    fn text_start(&self) -> usize {
        (8 + self.word(0) as usize).min(self.0.len())
    }

    /// Asks the CPU for the label text ahead of [`label_parts`]
    /// (see [`prefetch`](crate::model::prefetch::prefetch)).
    ///
    /// [`label_parts`]: Self::label_parts
    pub fn prefetch_labels(&self) {
        if let Some(text) = self.0.get(self.text_start()..) {
            crate::model::prefetch::prefetch(text, 256);
        }
    }

    /// The attributes, in the order they were given.
    pub fn attributes(&self) -> Vec<KeyValue> {
        unpack(self.0.get(8..self.text_start()).unwrap_or_default())
    }

    /// The label block's own text: before the run and after it, and
    /// whether the run was left out (the text is all in the first part
    /// when it was not).
    pub fn label_parts(&self) -> (&str, &str, bool) {
        let bytes = self.0.get(self.text_start()..).unwrap_or_default();
        debug_assert!(std::str::from_utf8(bytes).is_ok());
        // SAFETY: `new`, the only constructor (`Default` is empty), wrote
        // the label text after the packed attributes as whole `&str`
        // pieces, split on a char boundary (a range `get` accepted), and
        // `text_start` is where it wrote them; the bytes are never
        // changed after. Read on every scrape for every derived gauge, so
        // not validated again each time.
        let text = unsafe { std::str::from_utf8_unchecked(bytes) };
        match self.word(4) {
            WHOLE => (text, "", false),
            split => {
                let at = (split as usize).min(text.len());
                match (text.get(..at), text.get(at..)) {
                    (Some(head), Some(tail)) => (head, tail, true),
                    _ => (text, "", false),
                }
            }
        }
    }
}

/// The identifying resource attributes and the scope of a source, as its
/// derived series go out under them.
#[derive(Debug, PartialEq)]
pub struct Origin {
    pub resource: Vec<KeyValue>,
    pub scope: InstrumentationScope,
    /// The run of labels the exporter's translation derives from the
    /// resource and scope (`job`, `instance`, `otel_scope_*`), as the
    /// source's first analysed series got it: its series whose label
    /// block has the same run leave it out of their own text
    /// ([`SeriesText`]).
    pub label_run: OnceLock<Box<str>>,
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
                    label_run: OnceLock::new(),
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
        let text = SeriesText::new(&attributes, labels, None);
        assert_eq!(text.attributes(), attributes);
        assert_eq!(text.label_parts(), (labels, "", false));
        // The run `job="api"` left out: the text around it is kept.
        let run = labels.find("job").unwrap()..labels.find(",route").unwrap();
        let split = SeriesText::new(&attributes, labels, Some(run));
        assert_eq!(split.attributes(), attributes);
        assert_eq!(
            split.label_parts(),
            (r#"code="503","#, r#",route="/a""#, true)
        );
        let none = SeriesText::new(&[], "", None);
        assert!(none.attributes().is_empty());
        assert_eq!(none.label_parts(), ("", "", false));
        let no_labels = SeriesText::new(&attributes, "", Some(0..0));
        assert_eq!(no_labels.attributes(), attributes);
        assert_eq!(no_labels.label_parts(), ("", "", true));
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
