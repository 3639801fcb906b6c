//! The other spellings of OTLP/JSON that the proto3 JSON mapping asks
//! parsers to accept, and the OTel Collector does: the proto field names
//! (`resource_spans`, `time_unix_nano`) beside the lowerCamelCase ones,
//! enum values by name (`"SPAN_KIND_SERVER"`) beside their numbers,
//! 32-bit integers and an attribute's `doubleValue` as strings (`"NaN"`
//! and the infinities too, see [`super::json_special_doubles`]), `null`
//! for any field (its default), and an empty `arrayValue` or
//! `kvlistValue` written as `{}` (an empty message).
//!
//! The lowerCamelCase form with numeric enums, which every OTel SDK
//! sends, is decoded straight from the bytes. Anything else goes through
//! a `serde_json::Value` rewritten into that form: a body whose object
//! keys hold an `_` (in OTLP/JSON only field names are object keys;
//! attribute keys are values), or one whose direct decoding failed.
//! Without this, a body of proto field names would decode as an empty
//! request and be answered 200 with its data dropped.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use super::json_special_doubles::{RestoreSpecialDoubles, stand_in};

use crate::model::otlp::logs::SeverityNumber;
use crate::model::otlp::metrics::AggregationTemporality;
use crate::model::otlp::trace::span::SpanKind;
use crate::model::otlp::trace::status::StatusCode;

/// Decodes an OTLP/JSON request in any of the accepted spellings. The
/// error is that of decoding the body as it was sent.
pub fn decode<T: DeserializeOwned + RestoreSpecialDoubles>(
    body: &[u8],
) -> Result<T, serde_json::Error> {
    let (mut request, special) = decode_respelled::<T>(body)?;
    if special {
        request.restore_special_doubles();
    }
    Ok(request)
}

/// Decodes an OTLP/JSON body in any of the accepted spellings, and says
/// whether a special `doubleValue` was written as its stand-in (the
/// caller restores it, see [`super::json_special_doubles`]).
pub fn decode_respelled<T: DeserializeOwned>(body: &[u8]) -> Result<(T, bool), serde_json::Error> {
    let direct_error = if has_field_name_key(body) {
        None
    } else {
        match serde_json::from_slice(body) {
            Ok(request) => return Ok((request, false)),
            Err(e) => Some(e),
        }
    };
    let mut value = match serde_json::from_slice::<Value>(body) {
        Ok(value) => value,
        Err(e) => return Err(direct_error.unwrap_or(e)),
    };
    let mut special = false;
    let respelled = respell(&mut value, &mut special);
    let e = match T::deserialize(&value) {
        Ok(request) => return Ok((request, special)),
        Err(e) => e,
    };
    // An enum given by a name it does not have: say that, not that a
    // number was expected.
    if let Some((key, name)) = unknown_enum(&value) {
        // The error of the body as sent places it (line and column).
        let place = direct_error.map_or_else(|| e.to_string(), |f| f.to_string());
        return Err(serde::de::Error::custom(format!(
            "`{key}` is {name:?}, which is not one of its enum's value names (such as {}) nor a number ({place})",
            example_name(key)
        )));
    }
    match direct_error {
        // Nothing was respelled: the first error names the place.
        Some(first) if !respelled => Err(first),
        // Otherwise the error left after respelling is the one to mend.
        _ => Err(e),
    }
}

/// The first enum field (`kind`, `code`, `aggregationTemporality`,
/// `severityNumber`) in `value` still holding a string after respelling:
/// a name the enum does not have.
fn unknown_enum(value: &Value) -> Option<(&'static str, String)> {
    const ENUMS: [&str; 4] = ["kind", "code", "aggregationTemporality", "severityNumber"];
    match value {
        Value::Array(items) => items.iter().find_map(unknown_enum),
        Value::Object(fields) => fields.iter().find_map(|(key, v)| match v {
            Value::String(text) => ENUMS
                .iter()
                .find(|e| **e == key)
                .map(|e| (*e, text.clone())),
            _ => unknown_enum(v),
        }),
        _ => None,
    }
}

/// A valid name of the enum of field `key`, for the error.
fn example_name(key: &str) -> &'static str {
    match key {
        "kind" => "SPAN_KIND_SERVER",
        "code" => "STATUS_CODE_ERROR",
        "aggregationTemporality" => "AGGREGATION_TEMPORALITY_CUMULATIVE",
        _ => "SEVERITY_NUMBER_INFO",
    }
}

/// Whether an object key in `body` holds an `_`. In JSON an `_` can only
/// be inside a string, so each `_` is followed to the end of its string
/// (past escapes), and that string is a key when a `:` follows it. Bodies
/// of lowerCamelCase keys hold few `_`, so this is mostly one vectorised
/// search.
fn has_field_name_key(body: &[u8]) -> bool {
    let mut i = 0;
    while let Some(at) = memchr::memchr(b'_', &body[i..]) {
        let mut end = i + at + 1;
        loop {
            match memchr::memchr2(b'"', b'\\', body.get(end..).unwrap_or_default()) {
                None => return false,
                Some(at) if body[end + at] == b'"' => {
                    end += at;
                    break;
                }
                Some(at) => end += at + 2,
            }
        }
        i = end + 1;
        let next = body[i..].iter().find(|b| !b.is_ascii_whitespace());
        if next == Some(&b':') {
            return true;
        }
    }
    false
}

/// Rewrites `value` into the form the direct decoding reads, in place:
/// lowerCamelCase keys (a key spelled both ways keeps the lowerCamelCase
/// one), no `null` fields, numbers for enums, 32-bit integers and
/// `doubleValue`s, and `values` in an empty array or key-value list.
/// Whether anything changed; `special` is set when a `doubleValue` was
/// written as a stand-in.
fn respell(value: &mut Value, special: &mut bool) -> bool {
    let mut changed = false;
    match value {
        Value::Array(items) => {
            for item in items {
                changed |= respell(item, special);
            }
        }
        Value::Object(fields) => {
            if fields.keys().any(|k| k.contains('_')) {
                changed = true;
                *fields =
                    std::mem::take(fields)
                        .into_iter()
                        .fold(Map::new(), |mut out, (key, v)| {
                            let key = lower_camel(&key);
                            out.entry(key).or_insert(v);
                            out
                        });
            }
            let before = fields.len();
            fields.retain(|_, v| !v.is_null());
            changed |= fields.len() != before;
            for (key, v) in fields.iter_mut() {
                changed |= respell(v, special);
                changed |= respell_field(key, v, special);
            }
        }
        _ => {}
    }
    changed
}

/// Rewrites one field's value: an enum's name or number as a string as
/// its number, a 32-bit integer as a string as a number, a string
/// `doubleValue` as a number (`"NaN"` and the infinities, which a JSON
/// number cannot hold, as their stand-ins, setting `special`), and `{}`
/// for an empty `arrayValue` or `kvlistValue` as one with no `values`.
/// Whether it changed.
fn respell_field(key: &str, value: &mut Value, special: &mut bool) -> bool {
    if let ("arrayValue" | "kvlistValue", Value::Object(list)) = (key, &mut *value) {
        if list.contains_key("values") {
            return false;
        }
        list.insert("values".to_owned(), Value::Array(Vec::new()));
        return true;
    }
    let Value::String(text) = value else {
        return false;
    };
    let text = text.trim();
    let number = match key {
        "kind" => enum_number(text, SpanKind::from_str_name),
        "code" => enum_number(text, StatusCode::from_str_name),
        "aggregationTemporality" => enum_number(text, AggregationTemporality::from_str_name),
        "severityNumber" => enum_number(text, SeverityNumber::from_str_name),
        // The 32-bit integers of OTLP (64-bit ones are read from strings
        // already).
        "droppedAttributesCount" | "droppedEventsCount" | "droppedLinksCount" | "flags" => {
            text.parse::<u32>().ok().map(Value::from)
        }
        "scale" | "offset" | "stringValueStrindex" => text.parse::<i32>().ok().map(Value::from),
        "doubleValue" => match stand_in(text) {
            Some(stand_in) => {
                *special = true;
                serde_json::Number::from_f64(stand_in).map(Value::Number)
            }
            None => text
                .parse::<f64>()
                .ok()
                .and_then(serde_json::Number::from_f64)
                .map(Value::Number),
        },
        _ => None,
    };
    match number {
        Some(number) => {
            *value = number;
            true
        }
        // Left as it is: the decoding names what is wrong.
        None => false,
    }
}

/// An enum value given by its name or as its number in a string.
fn enum_number<E: Into<i32>>(text: &str, by_name: fn(&str) -> Option<E>) -> Option<Value> {
    by_name(text)
        .map(Into::into)
        .or_else(|| text.parse::<i32>().ok())
        .map(Value::from)
}

/// `time_unix_nano` → `timeUnixNano`.
fn lower_camel(key: &str) -> String {
    let mut out = String::with_capacity(key.len());
    let mut upper = false;
    for c in key.chars() {
        if c == '_' {
            upper = !out.is_empty();
        } else if upper {
            out.extend(c.to_uppercase());
            upper = false;
        } else {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn field_name_keys_are_found_in_keys_only() {
        assert!(has_field_name_key(br#"{"resource_spans": []}"#));
        assert!(has_field_name_key(br#"{"a":{"time_unix_nano" :"1"}}"#));
        assert!(!has_field_name_key(br#"{"resourceSpans": []}"#));
        // Attribute keys and values are strings that are not keys.
        assert!(!has_field_name_key(
            br#"{"key":"http_route","value":{"stringValue":"a_b\":"}}"#
        ));
        assert!(!has_field_name_key(br#"{"s":"x\\","t":"y_z"}"#));
        assert!(!has_field_name_key(br#"{"unterminated_"#));
    }

    /// `"NaN"` and the infinities, as protobuf's JSON printers write an
    /// attribute's double, arrive as those values, wherever the
    /// attribute is.
    #[test]
    fn special_doubles_arrive_as_themselves() {
        use crate::model::otlp::common::any_value::Value as V;
        let body = br#"{"resourceLogs":[{"resource":{"attributes":[{"key":"r","value":{"doubleValue":"Infinity"}}]},
            "scopeLogs":[{"logRecords":[{"body":{"arrayValue":{"values":[{"doubleValue":"-Infinity"}]}},
            "attributes":[{"key":"n","value":{"doubleValue":"NaN"}},{"key":"x","value":{"doubleValue":2.5}}]}]}]}]}"#;
        let request: crate::model::LogsRequest = decode(body).unwrap();
        let rl = &request.resource_logs[0];
        let double = |v: &Option<crate::model::otlp::common::AnyValue>| match v
            .as_ref()
            .and_then(|v| v.value.clone())
        {
            Some(V::DoubleValue(d)) => d,
            other => panic!("{other:?}"),
        };
        assert_eq!(
            double(&rl.resource.as_ref().unwrap().attributes[0].value),
            f64::INFINITY
        );
        let record = &rl.scope_logs[0].log_records[0];
        assert!(double(&record.attributes[0].value).is_nan());
        assert_eq!(double(&record.attributes[1].value), 2.5);
        let Some(V::ArrayValue(list)) = record.body.as_ref().and_then(|b| b.value.clone()) else {
            panic!("{:?}", record.body);
        };
        assert_eq!(double(&Some(list.values[0].clone())), f64::NEG_INFINITY);
    }

    /// An enum given by a name it does not have is refused naming the
    /// field and the name, not as "expected i32".
    #[test]
    fn an_unknown_enum_name_is_named() {
        use crate::model::otlp::TracesRequest;
        let body = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","kind":"SPAN_KIND_FOO"}]}]}]}"#;
        let err = decode::<TracesRequest>(body).expect_err("no such kind");
        let text = err.to_string();
        assert!(
            text.contains("`kind` is \"SPAN_KIND_FOO\"") && text.contains("SPAN_KIND_SERVER"),
            "{text}"
        );
        // A known name still decodes.
        let good = br#"{"resourceSpans":[{"scopeSpans":[{"spans":[{"traceId":"5b8efff798038103d269b633813fc60c","spanId":"eee19b7ec3c1b174","name":"x","kind":"SPAN_KIND_CLIENT"}]}]}]}"#;
        assert!(decode::<TracesRequest>(good).is_ok());
    }

    #[test]
    fn keys_enums_and_doubles_are_respelled() {
        let mut v: Value = serde_json::from_str(
            r#"{"resource_spans":[{"scope_spans":[{"spans":[{"kind":"SPAN_KIND_SERVER",
                "status":{"code":"STATUS_CODE_ERROR"},"trace_id":"ab","traceId":"cd",
                "attributes":[{"key":"x_y","value":{"double_value":"1.5"}},
                              {"key":"n","value":{"doubleValue":"NaN"}}]}]}]}]}"#,
        )
        .unwrap();
        let mut special = false;
        respell(&mut v, &mut special);
        assert!(special, "NaN written as its stand-in");
        let span = &v["resourceSpans"][0]["scopeSpans"][0]["spans"][0];
        assert_eq!(span["kind"], 2);
        assert_eq!(span["status"]["code"], 2);
        assert_eq!(span["traceId"], "cd", "the lowerCamelCase spelling wins");
        assert!(span.get("trace_id").is_none());
        assert_eq!(span["attributes"][0]["key"], "x_y", "values stay");
        assert_eq!(span["attributes"][0]["value"]["doubleValue"], 1.5);
        assert!(span["attributes"][1]["value"]["doubleValue"].is_f64());
        assert_eq!(
            lower_camel("aggregation_temporality"),
            "aggregationTemporality"
        );
        assert_eq!(lower_camel("_leading"), "leading");
    }
}
