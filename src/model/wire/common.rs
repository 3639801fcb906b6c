//! Views of the OTLP messages every signal shares: attributes (`KeyValue`,
//! `AnyValue`), `Resource`, `InstrumentationScope`, and [`Repeated`], the
//! lazy list of a repeated message field.

use std::marker::PhantomData;

use prost::Message;

use super::reader::{Field, Fields, WireError, for_each_field};
use crate::model::otlp::common::{AnyValue, KeyValue};

/// How deep arrays and key-value lists may nest inside an attribute value
/// (the value of prost's recursion limit, which this build does not have:
/// `pprof_util` turns on prost's `no-recursion-limit`, so every request
/// prost decodes is checked in place first, see `wire::logs`).
pub const MAX_DEPTH: usize = 100;

/// A message type that can be viewed in place.
pub trait MessageView<'a>: Sized {
    /// The protobuf message name, for errors.
    const NAME: &'static str;
    /// Reads the message's own fields (not its repeated children).
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError>;
}

/// A repeated message field, read lazily from its parent's bytes.
pub struct Repeated<'a, T> {
    parent: &'a [u8],
    number: u32,
    /// Message and field name, for errors. One pointer: the views holding
    /// lists are moved on every step of an iteration, so their size counts.
    name: &'static FieldName,
    _item: PhantomData<fn() -> T>,
}

/// A repeated field's message and field names, as errors name them
/// (`FieldName("Sum", "data_points")`).
#[derive(Debug)]
pub struct FieldName(pub &'static str, pub &'static str);

impl<T> Clone for Repeated<'_, T> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<T> Copy for Repeated<'_, T> {}

impl<T> std::fmt::Debug for Repeated<'_, T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Repeated({}.{})", self.name.0, self.name.1)
    }
}

impl<'a, T: MessageView<'a> + 'a> Repeated<'a, T> {
    pub fn new(parent: &'a [u8], number: u32, name: &'static FieldName) -> Self {
        Self {
            parent,
            number,
            name,
            _item: PhantomData,
        }
    }

    /// The raw bytes of each element.
    pub fn raw(&self) -> impl Iterator<Item = Result<&'a [u8], WireError>> + use<'a, T> {
        let mut fields = Fields::new(self.parent, self.name.0);
        let (number, message, field) = (self.number, self.name.0, self.name.1);
        std::iter::from_fn(move || {
            loop {
                match fields.next_field() {
                    Ok(Some((n, value))) if n == number => {
                        return Some(
                            Field {
                                value,
                                message,
                                field,
                            }
                            .message(),
                        );
                    }
                    Ok(Some(_)) => continue,
                    Ok(None) => return None,
                    Err(e) => {
                        // Stop after the first error.
                        fields = Fields::new(&[], message);
                        return Some(Err(e));
                    }
                }
            }
        })
    }

    /// Each element parsed, errors included (for validation).
    pub fn try_iter(&self) -> impl Iterator<Item = Result<T, WireError>> + use<'a, T> {
        self.raw().map(|bytes| bytes.and_then(T::parse))
    }

    /// Each element of an already validated message; an element that does
    /// not parse (impossible after validation) is skipped.
    pub fn iter(&self) -> impl Iterator<Item = T> + use<'a, T> {
        self.try_iter().filter_map(Result::ok)
    }

    pub fn is_empty(&self) -> bool {
        self.raw().next().is_none()
    }

    /// Number of elements.
    pub fn len(&self) -> usize {
        self.raw().count()
    }
}

/// An attribute value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum AnyValueView<'a> {
    /// No value (or a profiles-only string-table reference).
    Empty,
    String(&'a str),
    Bool(bool),
    Int(i64),
    Double(f64),
    Bytes(&'a [u8]),
    /// An array or key-value list: the whole `AnyValue` message.
    Complex(&'a [u8]),
}

impl<'a> AnyValueView<'a> {
    /// Reads an `AnyValue` message, checking nested values down to `depth`.
    pub fn parse_nested(bytes: &'a [u8], depth: usize) -> Result<Self, WireError> {
        const NAME: &str = "AnyValue";
        if depth > MAX_DEPTH {
            return Err(WireError::TooDeep {
                message: NAME,
                limit: MAX_DEPTH,
            });
        }
        match Self::parse_plain(bytes) {
            Some(plain) => Ok(plain),
            None => Self::walk(bytes, depth),
        }
    }

    /// Reads an `AnyValue` field by field (any encoding, nested values
    /// checked down to `depth`, which the caller has checked).
    fn walk(bytes: &'a [u8], depth: usize) -> Result<Self, WireError> {
        const NAME: &str = "AnyValue";
        let mut out = AnyValueView::Empty;
        for_each_field(bytes, NAME, |n, value| {
            let f = |field| Field {
                value,
                message: NAME,
                field,
            };
            out = match n {
                1 => AnyValueView::String(f("string_value").string()?),
                2 => AnyValueView::Bool(f("bool_value").boolean()?),
                3 => AnyValueView::Int(f("int_value").varint()? as i64),
                4 => AnyValueView::Double(f("double_value").double()?),
                5 => {
                    for_each_item(f("array_value").message()?, "ArrayValue", |item| {
                        AnyValueView::parse_nested(item, depth + 1).map(|_| ())
                    })?;
                    AnyValueView::Complex(bytes)
                }
                6 => {
                    for_each_item(f("kvlist_value").message()?, "KeyValueList", |item| {
                        KeyValueView::parse_nested(item, depth + 1).map(|_| ())
                    })?;
                    AnyValueView::Complex(bytes)
                }
                7 => AnyValueView::Bytes(f("bytes_value").bytes()?),
                8 => {
                    f("string_value_strindex").int32()?;
                    AnyValueView::Empty
                }
                _ => out,
            };
            Ok(())
        })?;
        Ok(out)
    }

    /// The shapes nearly every value has, read without the general walk:
    /// nothing, or one string (ASCII, under 128 bytes), bool, int or
    /// double field with its shortest tag. `None` for anything else, which
    /// the general walk reads (to the same view for whatever this reads).
    #[inline(always)]
    fn parse_plain(bytes: &'a [u8]) -> Option<Self> {
        match bytes {
            [] => Some(AnyValueView::Empty),
            [0x0a, len @ 0..0x80, text @ ..]
                if usize::from(*len) == text.len() && text.is_ascii() =>
            {
                // SAFETY: ASCII is valid UTF-8 (see `reader::utf8`).
                Some(AnyValueView::String(unsafe {
                    std::str::from_utf8_unchecked(text)
                }))
            }
            [0x10, flag @ 0..0x80] => Some(AnyValueView::Bool(*flag != 0)),
            [0x18, int @ ..] => exact_varint(int).map(|v| AnyValueView::Int(v as i64)),
            [0x21, double @ ..] => {
                let bits: [u8; 8] = (*double).try_into().ok()?;
                Some(AnyValueView::Double(f64::from_le_bytes(bits)))
            }
            _ => None,
        }
    }

    /// The value as the owned OTLP type (for the rare array and list values
    /// that are rendered as JSON).
    pub fn to_owned_value(&self) -> Option<AnyValue> {
        use crate::model::otlp::common::any_value::Value as V;
        let value = match *self {
            AnyValueView::Empty => return None,
            AnyValueView::String(s) => V::StringValue(s.to_string()),
            AnyValueView::Bool(b) => V::BoolValue(b),
            AnyValueView::Int(i) => V::IntValue(i),
            AnyValueView::Double(d) => V::DoubleValue(d),
            AnyValueView::Bytes(b) => V::BytesValue(b.to_vec()),
            AnyValueView::Complex(bytes) => return AnyValue::decode(bytes).ok(),
        };
        Some(AnyValue { value: Some(value) })
    }
}

/// Runs `check` on each element of the `values` list (field 1) of an
/// `ArrayValue` or `KeyValueList`.
fn for_each_item<'a>(
    list: &'a [u8],
    message: &'static str,
    mut check: impl FnMut(&'a [u8]) -> Result<(), WireError>,
) -> Result<(), WireError> {
    for_each_field(list, message, |n, value| {
        if n == 1 {
            check(
                Field {
                    value,
                    message,
                    field: "values",
                }
                .message()?,
            )?;
        }
        Ok(())
    })
}

/// One attribute.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyValueView<'a> {
    pub key: &'a str,
    pub value: AnyValueView<'a>,
}

impl<'a> KeyValueView<'a> {
    fn parse_nested(bytes: &'a [u8], depth: usize) -> Result<Self, WireError> {
        // Its value is checked against the depth limit as the general
        // walk would (`AnyValueView::parse_nested`).
        if depth <= MAX_DEPTH
            && let Some(plain) = Self::parse_plain(bytes)
        {
            return Ok(plain);
        }
        Self::walk(bytes, depth)
    }

    /// Reads a `KeyValue` field by field (any encoding).
    fn walk(bytes: &'a [u8], depth: usize) -> Result<Self, WireError> {
        const NAME: &str = "KeyValue";
        let mut out = KeyValueView {
            key: "",
            value: AnyValueView::Empty,
        };
        for_each_field(bytes, NAME, |n, value| {
            let f = |field| Field {
                value,
                message: NAME,
                field,
            };
            match n {
                1 => out.key = f("key").string()?,
                2 => out.value = AnyValueView::parse_nested(f("value").message()?, depth)?,
                3 => {
                    f("key_strindex").int32()?;
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl<'a> KeyValueView<'a> {
    /// The shape nearly every attribute has, read without the general
    /// walk: an ASCII key under 128 bytes, then a value under 128 bytes
    /// that [`AnyValueView::parse_plain`] reads, each with its shortest
    /// tag and nothing else. `None` for anything else, which the general
    /// walk reads (to the same view for whatever this reads).
    #[inline(always)]
    fn parse_plain(bytes: &'a [u8]) -> Option<Self> {
        let (key, Some(value)) = plain_layout(bytes)? else {
            return None;
        };
        if !key.is_ascii() {
            return None;
        }
        Some(KeyValueView {
            // SAFETY: ASCII is valid UTF-8 (see `reader::utf8`).
            key: unsafe { std::str::from_utf8_unchecked(key) },
            value: AnyValueView::parse_plain(value)?,
        })
    }
}

/// The varint that is all of `bytes`, if it is one (at most 10 bytes,
/// the tenth holding bit 63 alone, the last without a continuation).
#[inline]
fn exact_varint(bytes: &[u8]) -> Option<u64> {
    let (&last, head) = bytes.split_last()?;
    if last >= 0x80 || head.len() > 9 || (head.len() == 9 && last > 1) {
        return None;
    }
    let mut value = u64::from(last) << (7 * head.len());
    for (i, byte) in head.iter().enumerate() {
        if byte & 0x80 == 0 {
            return None;
        }
        value |= u64::from(byte & 0x7f) << (7 * i);
    }
    Some(value)
}

impl KeyValueView<'_> {
    /// The attribute as an owned OTLP key-value.
    pub fn to_owned_kv(&self) -> KeyValue {
        KeyValue {
            key: self.key.to_string(),
            value: self.value.to_owned_value(),
            ..Default::default()
        }
    }
}

impl<'a> MessageView<'a> for KeyValueView<'a> {
    const NAME: &'static str = "KeyValue";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        Self::parse_nested(bytes, 0)
    }
}

/// Attributes of anything: a repeated `KeyValue` field.
pub type Attributes<'a> = Repeated<'a, KeyValueView<'a>>;

impl<'a> Attributes<'a> {
    /// The value of the first attribute named `key` (of a validated list).
    pub fn find(&self, key: &str) -> Option<AnyValueView<'a>> {
        self.iter().find(|kv| kv.key == key).map(|kv| kv.value)
    }

    /// Each attribute's key bytes and its whole `KeyValue` message, of a
    /// validated list, without reading the values: a reader that wants a
    /// few keys parses only those attributes
    /// (`KeyValueView::parse`).
    pub fn keyed(&self) -> impl Iterator<Item = (&'a [u8], &'a [u8])> + use<'a> {
        self.raw().filter_map(Result::ok).map(|kv| {
            if let Some(key) = plain_key(kv) {
                return (key, kv);
            }
            let mut fields = Fields::new(kv, "KeyValue");
            let mut key: &[u8] = &[];
            // The last key field wins, as when the message is parsed.
            while let Ok(Some((n, value))) = fields.next_field() {
                if let (1, super::reader::Value::Bytes(bytes)) = (n, value) {
                    key = bytes;
                }
            }
            (key, kv)
        })
    }

    /// The attributes as owned OTLP key-values.
    pub fn to_owned_vec(&self) -> Vec<KeyValue> {
        self.iter().map(|kv| kv.to_owned_kv()).collect()
    }
}

/// A `KeyValue` laid out as nearly every encoder writes it: its key
/// field, then at most a value field, each with its shortest tag and a
/// one-byte length (so the key is the only key field): the key's bytes
/// and the value's, if there is a value field. `None` for anything else.
#[inline(always)]
fn plain_layout(kv: &[u8]) -> Option<(&[u8], Option<&[u8]>)> {
    let [0x0a, key_len @ 0..0x80, rest @ ..] = kv else {
        return None;
    };
    let (key, rest) = rest.split_at_checked(usize::from(*key_len))?;
    match rest {
        [] => Some((key, None)),
        [0x12, value_len @ 0..0x80, value @ ..] if usize::from(*value_len) == value.len() => {
            Some((key, Some(value)))
        }
        _ => None,
    }
}

/// The key of a plainly laid-out `KeyValue` ([`plain_layout`]); `None`
/// for anything else, which [`Attributes::keyed`] walks.
#[inline(always)]
fn plain_key(kv: &[u8]) -> Option<&[u8]> {
    plain_layout(kv).map(|(key, _)| key)
}

/// Checks every attribute.
pub fn validate_attributes(attributes: &Attributes<'_>) -> Result<(), WireError> {
    attributes.try_iter().try_for_each(|kv| kv.map(|_| ()))
}

/// A `Resource`.
#[derive(Debug, Clone, Copy)]
pub struct ResourceView<'a> {
    pub attributes: Attributes<'a>,
}

impl<'a> MessageView<'a> for ResourceView<'a> {
    const NAME: &'static str = "Resource";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        for_each_field(bytes, Self::NAME, |n, value| {
            let f = |field| Field {
                value,
                message: Self::NAME,
                field,
            };
            match n {
                2 => {
                    f("dropped_attributes_count").uint32()?;
                }
                3 => validate_entity_ref(f("entity_refs").message()?)?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(Self {
            attributes: Repeated::new(bytes, 1, &FieldName(Self::NAME, "attributes")),
        })
    }
}

impl<'a> ResourceView<'a> {
    pub fn validate(&self) -> Result<(), WireError> {
        validate_attributes(&self.attributes)
    }

    /// The encoded `Resource` message.
    pub fn bytes(&self) -> &'a [u8] {
        self.attributes.parent
    }
}

fn validate_entity_ref(bytes: &[u8]) -> Result<(), WireError> {
    const NAME: &str = "EntityRef";
    for_each_field(bytes, NAME, |n, value| {
        let field = match n {
            1 => "schema_url",
            2 => "type",
            3 => "id_keys",
            4 => "description_keys",
            _ => return Ok(()),
        };
        Field {
            value,
            message: NAME,
            field,
        }
        .string()
        .map(|_| ())
    })
}

/// An `InstrumentationScope`.
#[derive(Debug, Clone, Copy)]
pub struct ScopeView<'a> {
    pub name: &'a str,
    pub version: &'a str,
    pub attributes: Attributes<'a>,
}

impl<'a> MessageView<'a> for ScopeView<'a> {
    const NAME: &'static str = "InstrumentationScope";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut out = ScopeView {
            name: "",
            version: "",
            attributes: Repeated::new(bytes, 3, &FieldName(Self::NAME, "attributes")),
        };
        for_each_field(bytes, Self::NAME, |n, value| {
            let f = |field| Field {
                value,
                message: Self::NAME,
                field,
            };
            match n {
                1 => out.name = f("name").string()?,
                2 => out.version = f("version").string()?,
                4 => {
                    f("dropped_attributes_count").uint32()?;
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl ScopeView<'_> {
    pub fn validate(&self) -> Result<(), WireError> {
        validate_attributes(&self.attributes)
    }
}

/// Field 1 (a message: the resource or scope) and field 3 (`schema_url`),
/// the shape every `Resource*` and `Scope*` container message shares.
pub fn head_and_schema_url<'a>(
    bytes: &'a [u8],
    message: &'static str,
    head: &'static str,
) -> Result<(Option<&'a [u8]>, &'a str), WireError> {
    let mut first = None;
    let mut schema_url = "";
    for_each_field(bytes, message, |n, value| {
        let field = |field| Field {
            value,
            message,
            field,
        };
        match n {
            1 => once(&mut first, field(head).message()?, message, head)?,
            3 => schema_url = field("schema_url").string()?,
            _ => {}
        }
        Ok(())
    })?;
    Ok((first, schema_url))
}

/// Sets a singular sub-message field read from the wire, refusing a
/// second occurrence (see [`WireError::RepeatedMessage`]).
pub fn once<T>(
    slot: &mut Option<T>,
    value: T,
    message: &'static str,
    field: &'static str,
) -> Result<(), WireError> {
    match slot.replace(value) {
        None => Ok(()),
        Some(_) => Err(WireError::RepeatedMessage { message, field }),
    }
}

/// Reads an optional sub-message field (sent at most once: see [`once`]).
pub fn optional<'a, T: MessageView<'a>>(bytes: Option<&'a [u8]>) -> Result<Option<T>, WireError> {
    bytes.map(T::parse).transpose()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::otlp::common::{ArrayValue, KeyValueList, any_value::Value as V};
    use crate::model::otlp::kv;

    #[test]
    fn attribute_values_read_as_prost_wrote_them() {
        let nested = V::ArrayValue(ArrayValue {
            values: vec![AnyValue {
                value: Some(V::KvlistValue(KeyValueList {
                    values: vec![kv("k", V::IntValue(-3))],
                })),
            }],
        });
        let cases = vec![
            kv("s", V::StringValue("héllo".into())),
            kv("b", V::BoolValue(true)),
            kv("i", V::IntValue(-42)),
            kv("d", V::DoubleValue(1.5)),
            kv("y", V::BytesValue(vec![0, 1, 255])),
            kv("n", nested.clone()),
        ];
        for case in cases {
            let bytes = case.encode_to_vec();
            let view = KeyValueView::parse(&bytes).expect("valid");
            assert_eq!(view.key, case.key);
            assert_eq!(view.value.to_owned_value(), case.value);
        }
    }

    /// Bytes that differ from `bytes` by one truncation or one byte.
    fn damaged(bytes: &[u8]) -> impl Iterator<Item = Vec<u8>> + '_ {
        let cut = (0..bytes.len()).map(|n| bytes[..n].to_vec());
        let changed = (0..bytes.len()).flat_map(move |at| {
            let original = bytes[at];
            [0x00, 0x01, 0x02, 0x7f, 0x80, 0xff, 0x0a, 0x12, 0x18]
                .into_iter()
                .chain([original.wrapping_add(1), original.wrapping_sub(1)])
                .filter(move |&b| b != original)
                .map(move |b| {
                    let mut copy = bytes.to_vec();
                    copy[at] = b;
                    copy
                })
        });
        cut.chain(changed)
    }

    /// How many of `encodings`, and of their damaged copies, `agrees`
    /// finds read plainly (it checks that each reads the same walked).
    fn read_plainly(encodings: &[Vec<u8>], agrees: impl Fn(&[u8]) -> bool) -> usize {
        encodings
            .iter()
            .flat_map(|e| std::iter::once(e.clone()).chain(damaged(e)))
            .filter(|bytes| agrees(bytes))
            .count()
    }

    /// The values of the plain-read tests (plain and not), and encodings
    /// of attributes with each of them under keys plain and not, as prost
    /// writes them and as other valid encoders might.
    fn sample_values_and_attributes() -> (Vec<Option<V>>, Vec<Vec<u8>>) {
        let long = "x".repeat(126);
        let values = vec![
            None,
            Some(V::StringValue(String::new())),
            Some(V::StringValue("GET /api/v1/items/7".into())),
            Some(V::StringValue(long.clone())),
            Some(V::StringValue(format!("{long}xy"))),
            Some(V::StringValue("héllo".into())),
            Some(V::BoolValue(true)),
            Some(V::BoolValue(false)),
            Some(V::IntValue(0)),
            Some(V::IntValue(127)),
            Some(V::IntValue(128)),
            Some(V::IntValue(-1)),
            Some(V::IntValue(i64::MIN)),
            Some(V::IntValue(i64::MAX)),
            Some(V::DoubleValue(-2.25)),
            Some(V::BytesValue(vec![0, 1, 255])),
            Some(V::ArrayValue(ArrayValue {
                values: vec![AnyValue {
                    value: Some(V::IntValue(1)),
                }],
            })),
        ];
        let mut encodings = Vec::new();
        for key in ["", "k", "service.name", &long, &format!("{long}xy"), "clé"] {
            for value in &values {
                let kv = KeyValue {
                    key: key.into(),
                    value: value.clone().map(|v| AnyValue { value: Some(v) }),
                    ..Default::default()
                };
                encodings.push(kv.encode_to_vec());
            }
        }
        // Valid encodings no encoder here writes: a bool and an int in
        // longer varints than needed, fields twice or out of order.
        encodings.extend([
            vec![0x0a, 1, b'k', 0x12, 3, 0x10, 0x81, 0x00],
            vec![0x0a, 1, b'k', 0x12, 3, 0x18, 0x80, 0x00],
            vec![0x12, 2, 0x10, 1, 0x0a, 1, b'k'],
            vec![0x0a, 1, b'k', 0x0a, 1, b'j', 0x12, 2, 0x10, 1],
            vec![0x0a, 1, b'k', 0x12, 4, 0x10, 1, 0x10, 0],
        ]);
        (values, encodings)
    }

    #[test]
    fn plain_attributes_read_as_the_field_walk_reads_them() {
        let (values, encodings) = sample_values_and_attributes();
        let plain = read_plainly(&encodings, |bytes| {
            KeyValueView::parse_plain(bytes)
                .map(|view| assert_eq!(Ok(view), KeyValueView::walk(bytes, 0), "{bytes:02x?}"))
                .is_some()
        });
        assert!(plain > 100, "the common shapes are read plainly ({plain})");
        let mut value_encodings: Vec<Vec<u8>> = values
            .iter()
            .map(|v| AnyValue { value: v.clone() }.encode_to_vec())
            .collect();
        value_encodings.extend([
            vec![0x10, 0x81, 0x00],
            vec![
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            vec![
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
            ],
            vec![
                0x18, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
            ],
            vec![0x21, 0, 0, 0, 0, 0, 0, 0xf0, 0x3f, 0x10, 1],
            vec![0x10, 1, 0x0a, 1, b'v'],
        ]);
        let plain = read_plainly(&value_encodings, |bytes| {
            AnyValueView::parse_plain(bytes)
                .map(|view| assert_eq!(Ok(view), AnyValueView::walk(bytes, 0), "{bytes:02x?}"))
                .is_some()
        });
        assert!(plain > 100, "plain values are read plainly ({plain})");
        let common = KeyValue {
            key: "http.route".into(),
            value: Some(AnyValue {
                value: Some(V::StringValue("/items".into())),
            }),
            ..Default::default()
        };
        assert!(KeyValueView::parse_plain(&common.encode_to_vec()).is_some());
    }

    #[test]
    fn a_plain_key_is_the_key_the_field_walk_reads() {
        let (_, encodings) = sample_values_and_attributes();
        let plain = read_plainly(&encodings, |bytes| {
            let Ok(walked) = KeyValueView::walk(bytes, 0) else {
                // `keyed` reads validated lists only.
                return false;
            };
            plain_key(bytes)
                .map(|key| assert_eq!(key, walked.key.as_bytes(), "{bytes:02x?}"))
                .is_some()
        });
        assert!(plain > 100, "the common shapes are read plainly ({plain})");
        let out_of_order = [0x12, 2, 0x10, 1, 0x0a, 1, b'k'];
        assert_eq!(plain_key(&out_of_order), None);
        let twice = [0x0a, 1, b'k', 0x0a, 1, b'j', 0x12, 2, 0x10, 1];
        assert_eq!(plain_key(&twice), None, "the walk reads the last key");
    }

    #[test]
    fn a_plain_value_past_the_depth_limit_is_refused_as_before() {
        let bytes = kv("k", V::IntValue(1)).encode_to_vec();
        assert!(matches!(
            KeyValueView::parse_nested(&bytes, MAX_DEPTH + 1),
            Err(WireError::TooDeep { .. })
        ));
        assert_eq!(
            KeyValueView::parse_nested(&bytes, MAX_DEPTH).map(|v| v.key),
            Ok("k")
        );
    }

    #[test]
    fn nesting_is_bounded() {
        let mut value = AnyValue {
            value: Some(V::IntValue(1)),
        };
        for _ in 0..(MAX_DEPTH + 5) {
            value = AnyValue {
                value: Some(V::ArrayValue(ArrayValue {
                    values: vec![value],
                })),
            };
        }
        let bytes = value.encode_to_vec();
        assert!(matches!(
            AnyValueView::parse_nested(&bytes, 0),
            Err(WireError::TooDeep { .. })
        ));
    }
}
