//! Attribute values as text (labels, dimensions): strings as they are, numbers and bools
//! as text, bytes as base64, arrays and maps as JSON (as the OTel
//! Collector's `AsString` renders them).

use std::fmt::Write;

use crate::model::otlp::common::{AnyValue, KeyValue, any_value::Value};
use crate::model::wire::{AnyValueView, Attributes};

/// Attribute lists read as text: owned (`[KeyValue]`, kept by a component)
/// or in place ([`Attributes`], from the request bytes), with the same
/// text either way. A key without a value is absent.
pub trait AttributeLookup {
    /// Appends the text of the first attribute named `key` to `out`;
    /// whether there was one.
    fn write_text(&self, key: &str, out: &mut String) -> bool;

    /// Calls `each(key, text)` for every attribute that has a value;
    /// `scratch` holds the texts that are not strings already.
    fn for_each_text(&self, scratch: &mut String, each: impl FnMut(&str, &str));

    /// The text of attribute `key`, if present and not empty.
    fn text(&self, key: &str) -> Option<String> {
        let mut text = String::new();
        (self.write_text(key, &mut text) && !text.is_empty()).then_some(text)
    }
}

impl AttributeLookup for [KeyValue] {
    fn write_text(&self, key: &str, out: &mut String) -> bool {
        match self
            .iter()
            .find(|kv| kv.key == key)
            .and_then(|kv| kv.value.as_ref())
        {
            Some(value) if has_text(value) => {
                write_any_value(Some(value), out);
                true
            }
            _ => false,
        }
    }

    fn for_each_text(&self, scratch: &mut String, mut each: impl FnMut(&str, &str)) {
        for kv in self {
            match kv.value.as_ref() {
                Some(AnyValue {
                    value: Some(Value::StringValue(s)),
                }) => each(&kv.key, s),
                Some(value) if has_text(value) => {
                    scratch.clear();
                    write_any_value(Some(value), scratch);
                    each(&kv.key, scratch);
                }
                _ => {}
            }
        }
    }
}

/// Whether a value is one (not empty, not a profiles-only reference).
fn has_text(value: &AnyValue) -> bool {
    !matches!(value.value, None | Some(Value::StringValueStrindex(_)))
}

impl AttributeLookup for Attributes<'_> {
    fn write_text(&self, key: &str, out: &mut String) -> bool {
        match self.find(key) {
            None | Some(AnyValueView::Empty) => false,
            Some(value) => {
                write_any_view(&value, out);
                true
            }
        }
    }

    fn for_each_text(&self, scratch: &mut String, mut each: impl FnMut(&str, &str)) {
        for kv in self.iter() {
            match kv.value {
                AnyValueView::Empty => {}
                AnyValueView::String(s) => each(kv.key, s),
                value => {
                    scratch.clear();
                    write_any_view(&value, scratch);
                    each(kv.key, scratch);
                }
            }
        }
    }
}

/// Appends the label text of `value` to `out`. Nesting is bounded by the
/// decoder's recursion limit.
pub fn write_any_value(value: Option<&AnyValue>, out: &mut String) {
    match value.and_then(|v| v.value.as_ref()) {
        // A string-table reference only has meaning inside profiles.
        None | Some(Value::StringValueStrindex(_)) => {}
        Some(Value::StringValue(s)) => out.push_str(s),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let mut buf = itoa::Buffer::new();
            out.push_str(buf.format(*i));
        }
        Some(Value::DoubleValue(d)) => write_double(*d, out),
        Some(Value::BytesValue(b)) => base64_into(b, out),
        Some(Value::ArrayValue(_)) | Some(Value::KvlistValue(_)) => {
            if let Some(v) = value {
                write_json(v, out);
            }
        }
    }
}

/// [`write_any_value`] for a value read in place: the same text.
pub fn write_any_view(value: &AnyValueView<'_>, out: &mut String) {
    match *value {
        AnyValueView::Empty => {}
        AnyValueView::String(s) => out.push_str(s),
        AnyValueView::Bool(b) => out.push_str(if b { "true" } else { "false" }),
        AnyValueView::Int(i) => {
            let mut buf = itoa::Buffer::new();
            out.push_str(buf.format(i));
        }
        AnyValueView::Double(d) => write_double(d, out),
        AnyValueView::Bytes(b) => base64_into(b, out),
        AnyValueView::Complex(_) => write_any_value(value.to_owned_value().as_ref(), out),
    }
}

fn write_double(d: f64, out: &mut String) {
    if d.is_nan() {
        out.push_str("NaN");
    } else if d.is_infinite() {
        out.push_str(if d > 0.0 { "+Inf" } else { "-Inf" });
    } else {
        let _ = write!(out, "{d}");
    }
}

fn write_json(value: &AnyValue, out: &mut String) {
    match &value.value {
        None | Some(Value::StringValueStrindex(_)) => out.push_str("null"),
        Some(Value::StringValue(s)) => json_string(s, out),
        Some(Value::BoolValue(b)) => out.push_str(if *b { "true" } else { "false" }),
        Some(Value::IntValue(i)) => {
            let _ = write!(out, "{i}");
        }
        Some(Value::DoubleValue(d)) if d.is_finite() => {
            let _ = write!(out, "{d}");
        }
        Some(Value::DoubleValue(d)) => {
            out.push('"');
            write_double(*d, out);
            out.push('"');
        }
        Some(Value::BytesValue(b)) => {
            out.push('"');
            base64_into(b, out);
            out.push('"');
        }
        Some(Value::ArrayValue(array)) => {
            out.push('[');
            for (i, v) in array.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                write_json(v, out);
            }
            out.push(']');
        }
        Some(Value::KvlistValue(list)) => {
            out.push('{');
            for (i, kv) in list.values.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                json_string(&kv.key, out);
                out.push(':');
                match &kv.value {
                    Some(v) => write_json(v, out),
                    None => out.push_str("null"),
                }
            }
            out.push('}');
        }
    }
}

fn json_string(s: &str, out: &mut String) {
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if (c as u32) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", c as u32);
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

const BASE64: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn base64_into(bytes: &[u8], out: &mut String) {
    for chunk in bytes.chunks(3) {
        let b = [
            chunk[0],
            chunk.get(1).copied().unwrap_or(0),
            chunk.get(2).copied().unwrap_or(0),
        ];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(BASE64[((n >> (18 - 6 * i)) & 63) as usize] as char);
            } else {
                out.push('=');
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::otlp::common::{ArrayValue, KeyValue, KeyValueList};

    /// The text of a value, checked to be the same when read in place.
    fn text(v: Value) -> String {
        use prost::Message;
        let owned = AnyValue { value: Some(v) };
        let mut out = String::new();
        write_any_value(Some(&owned), &mut out);
        let bytes = owned.encode_to_vec();
        let view = AnyValueView::parse_nested(&bytes, 0).expect("valid value");
        let mut in_place = String::new();
        write_any_view(&view, &mut in_place);
        assert_eq!(in_place, out);
        out
    }

    #[test]
    fn scalar_values() {
        assert_eq!(text(Value::StringValue("x y".into())), "x y");
        assert_eq!(text(Value::IntValue(-42)), "-42");
        assert_eq!(text(Value::DoubleValue(0.25)), "0.25");
        assert_eq!(text(Value::DoubleValue(1e20)), "100000000000000000000");
        assert_eq!(text(Value::BoolValue(true)), "true");
        assert_eq!(text(Value::BytesValue(b"hello".to_vec())), "aGVsbG8=");
        assert_eq!(text(Value::BytesValue(b"hi!".to_vec())), "aGkh");
    }

    #[test]
    fn composite_values_are_json() {
        let array = Value::ArrayValue(ArrayValue {
            values: vec![
                AnyValue {
                    value: Some(Value::StringValue("a\"".into())),
                },
                AnyValue {
                    value: Some(Value::IntValue(1)),
                },
            ],
        });
        assert_eq!(text(array), r#"["a\"",1]"#);
        let map = Value::KvlistValue(KeyValueList {
            values: vec![KeyValue {
                key: "k".into(),
                value: Some(AnyValue {
                    value: Some(Value::BoolValue(false)),
                }),
                ..Default::default()
            }],
        });
        assert_eq!(text(map), r#"{"k":false}"#);
    }
}
