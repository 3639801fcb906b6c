//! The protobuf wire format, read in place: fields of one message as
//! (number, value) pairs whose bytes borrow from the buffer, and the typed
//! accessors the views use. Nothing here allocates.

/// Why a message could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum WireError {
    #[error("{message}: message ends inside a field")]
    Truncated { message: &'static str },
    #[error("{message}: varint longer than 10 bytes or over 64 bits")]
    VarintOverflow { message: &'static str },
    #[error("{message}: field key {key} is over 32 bits")]
    KeyOverflow { message: &'static str, key: u64 },
    #[error("{message}: field number 0 is not allowed")]
    ZeroField { message: &'static str },
    #[error("{message}: unsupported wire type {wire_type}")]
    UnknownWireType {
        message: &'static str,
        wire_type: u8,
    },
    #[error("{message}.{field}: wrong wire type {wire_type} for this field")]
    WrongWireType {
        message: &'static str,
        field: &'static str,
        wire_type: u8,
    },
    #[error("{message}.{field}: string is not valid UTF-8")]
    InvalidUtf8 {
        message: &'static str,
        field: &'static str,
    },
    #[error("{message}.{field}: packed length {len} is not a multiple of {width}")]
    PackedLength {
        message: &'static str,
        field: &'static str,
        len: usize,
        width: usize,
    },
    #[error("{message}: request larger than 4 GiB")]
    TooLarge { message: &'static str },
    #[error("{message}: values nested deeper than {limit} levels")]
    TooDeep { message: &'static str, limit: usize },
    /// A singular sub-message (or a second member of a oneof of messages)
    /// sent more than once. Protobuf would merge the parts (or keep the
    /// last member); no OTLP encoder splits a message, and reading in
    /// place cannot merge, so the request is refused rather than read
    /// with a part silently dropped.
    #[error("{message}.{field}: sent more than once (a singular message must come in one part)")]
    RepeatedMessage {
        message: &'static str,
        field: &'static str,
    },
    /// A trace id of other than 16 bytes or a span id of other than 8
    /// (empty is allowed: "no id"). `trace.proto` calls such an id
    /// invalid, and the OTel Collector refuses the request.
    #[error("{message}.{field}: {len} bytes where an id has {expected} (or none)")]
    IdLength {
        message: &'static str,
        field: &'static str,
        len: usize,
        expected: usize,
    },
}

/// Bytes in a trace id.
pub const TRACE_ID_LEN: usize = 16;
/// Bytes in a span id.
pub const SPAN_ID_LEN: usize = 8;

/// Whether `id` is a valid id of `expected` bytes, or none.
#[inline]
pub fn id_fits(id: &[u8], expected: usize) -> bool {
    id.is_empty() || id.len() == expected
}

/// One field's value as it is on the wire.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Value<'a> {
    Varint(u64),
    Fixed64(u64),
    Fixed32(u32),
    Bytes(&'a [u8]),
}

impl Value<'_> {
    fn wire_type(&self) -> u8 {
        match self {
            Value::Varint(_) => 0,
            Value::Fixed64(_) => 1,
            Value::Bytes(_) => 2,
            Value::Fixed32(_) => 5,
        }
    }
}

/// The fields of one message, in wire order.
#[derive(Debug, Clone, Copy)]
pub struct Fields<'a> {
    buf: &'a [u8],
    message: &'static str,
}

impl<'a> Fields<'a> {
    /// `message` names the message type in errors.
    pub fn new(buf: &'a [u8], message: &'static str) -> Self {
        Self { buf, message }
    }

    /// Bytes not read yet.
    pub fn remaining(&self) -> usize {
        self.buf.len()
    }

    /// The next field, `None` at the end of the message.
    #[inline(always)]
    pub fn next_field(&mut self) -> Result<Option<(u32, Value<'a>)>, WireError> {
        if self.buf.is_empty() {
            return Ok(None);
        }
        let key = self.varint()?;
        // As protobuf decoders do: a key over 32 bits is invalid (it
        // would otherwise alias a smaller field number).
        if key > u64::from(u32::MAX) {
            return Err(WireError::KeyOverflow {
                message: self.message,
                key,
            });
        }
        let number = (key >> 3) as u32;
        if number == 0 {
            return Err(WireError::ZeroField {
                message: self.message,
            });
        }
        let value = match (key & 7) as u8 {
            0 => Value::Varint(self.varint()?),
            1 => Value::Fixed64(u64::from_le_bytes(self.take_array::<8>()?)),
            2 => {
                let len = self.varint()?;
                if len > self.buf.len() as u64 {
                    return Err(self.truncated());
                }
                let (bytes, rest) = self.buf.split_at(len as usize);
                self.buf = rest;
                Value::Bytes(bytes)
            }
            5 => Value::Fixed32(u32::from_le_bytes(self.take_array::<4>()?)),
            wire_type => {
                return Err(WireError::UnknownWireType {
                    message: self.message,
                    wire_type,
                });
            }
        };
        Ok(Some((number, value)))
    }

    fn truncated(&self) -> WireError {
        WireError::Truncated {
            message: self.message,
        }
    }

    #[inline]
    fn take_array<const N: usize>(&mut self) -> Result<[u8; N], WireError> {
        let Some((head, rest)) = self.buf.split_first_chunk::<N>() else {
            return Err(self.truncated());
        };
        self.buf = rest;
        Ok(*head)
    }

    #[inline]
    fn varint(&mut self) -> Result<u64, WireError> {
        // Tags, lengths and small numbers are one byte.
        if let Some((&byte, rest)) = self.buf.split_first()
            && byte < 0x80
        {
            self.buf = rest;
            return Ok(u64::from(byte));
        }
        self.varint_long()
    }

    fn varint_long(&mut self) -> Result<u64, WireError> {
        let mut value = 0u64;
        for (i, byte) in self.buf.iter().enumerate().take(10) {
            // The tenth byte holds bit 63 alone.
            if i == 9 && *byte > 1 {
                return Err(WireError::VarintOverflow {
                    message: self.message,
                });
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                self.buf = &self.buf[i + 1..];
                return Ok(value);
            }
        }
        if self.buf.len() >= 10 {
            Err(WireError::VarintOverflow {
                message: self.message,
            })
        } else {
            Err(self.truncated())
        }
    }
}

/// Typed reads of one field, checking its wire type; `message` and `field`
/// name it in errors.
#[derive(Debug, Clone, Copy)]
pub struct Field<'a> {
    pub value: Value<'a>,
    pub message: &'static str,
    pub field: &'static str,
}

impl<'a> Field<'a> {
    /// The error for a value of the wrong wire type.
    pub fn wrong(&self) -> WireError {
        WireError::WrongWireType {
            message: self.message,
            field: self.field,
            wire_type: self.value.wire_type(),
        }
    }

    pub fn bytes(&self) -> Result<&'a [u8], WireError> {
        match self.value {
            Value::Bytes(b) => Ok(b),
            _ => Err(self.wrong()),
        }
    }

    /// A trace or span id: empty, or exactly `expected` bytes.
    pub fn id(&self, expected: usize) -> Result<&'a [u8], WireError> {
        let id = self.bytes()?;
        if id_fits(id, expected) {
            Ok(id)
        } else {
            Err(WireError::IdLength {
                message: self.message,
                field: self.field,
                len: id.len(),
                expected,
            })
        }
    }

    #[inline]
    pub fn string(&self) -> Result<&'a str, WireError> {
        let bytes = self.bytes()?;
        match utf8(bytes) {
            Some(text) => Ok(text),
            // Read as empty while invalid strings are being found.
            None if super::repair::note_invalid(bytes) => Ok(""),
            None => Err(WireError::InvalidUtf8 {
                message: self.message,
                field: self.field,
            }),
        }
    }

    pub fn varint(&self) -> Result<u64, WireError> {
        match self.value {
            Value::Varint(v) => Ok(v),
            _ => Err(self.wrong()),
        }
    }

    pub fn uint32(&self) -> Result<u32, WireError> {
        Ok(self.varint()? as u32)
    }

    pub fn int32(&self) -> Result<i32, WireError> {
        Ok(self.varint()? as i32)
    }

    pub fn sint32(&self) -> Result<i32, WireError> {
        let v = self.varint()? as u32;
        Ok((v >> 1) as i32 ^ -((v & 1) as i32))
    }

    pub fn boolean(&self) -> Result<bool, WireError> {
        Ok(self.varint()? != 0)
    }

    pub fn fixed64(&self) -> Result<u64, WireError> {
        match self.value {
            Value::Fixed64(v) => Ok(v),
            _ => Err(self.wrong()),
        }
    }

    pub fn fixed32(&self) -> Result<u32, WireError> {
        match self.value {
            Value::Fixed32(v) => Ok(v),
            _ => Err(self.wrong()),
        }
    }

    pub fn double(&self) -> Result<f64, WireError> {
        Ok(f64::from_bits(self.fixed64()?))
    }

    /// How many 8-byte values one occurrence of a repeated `fixed64` or
    /// `double` field holds: one unpacked, or a packed run.
    pub fn packed64_len(&self) -> Result<usize, WireError> {
        match self.value {
            Value::Fixed64(_) => Ok(1),
            Value::Bytes(b) if b.len() % 8 == 0 => Ok(b.len() / 8),
            Value::Bytes(b) => Err(WireError::PackedLength {
                message: self.message,
                field: self.field,
                len: b.len(),
                width: 8,
            }),
            _ => Err(self.wrong()),
        }
    }

    /// A message field's bytes (same wire type as `bytes`).
    pub fn message(&self) -> Result<&'a [u8], WireError> {
        self.bytes()
    }
}

/// Reads a varint from the front of `buf` and moves past it, as a field
/// walk reads one; `None` if it is cut short or too long.
#[inline]
pub fn take_varint(buf: &mut &[u8]) -> Option<u64> {
    let mut fields = Fields::new(buf, "");
    let value = fields.varint().ok()?;
    *buf = fields.buf;
    Some(value)
}

/// A message's bytes read front to back in the order its encoder wrote
/// its fields, each expected tag checked in turn instead of dispatching on
/// every field (see `SpanView::validate_in_order`).
pub struct InOrder<'a> {
    pub rest: &'a [u8],
}

impl<'a> InOrder<'a> {
    pub fn new(bytes: &'a [u8]) -> Self {
        Self { rest: bytes }
    }

    /// Whether the next field's one-byte tag is `tag`.
    #[inline(always)]
    pub fn at(&self, tag: u8) -> bool {
        self.rest.first() == Some(&tag)
    }

    /// The value of a length-delimited field whose one-byte tag is next.
    #[inline(always)]
    pub fn delimited(&mut self) -> Option<&'a [u8]> {
        let mut rest = self.rest.get(1..)?;
        let len = match rest {
            [len @ 0..0x80, tail @ ..] => {
                rest = tail;
                usize::from(*len)
            }
            _ => usize::try_from(take_varint(&mut rest)?).ok()?,
        };
        let (value, rest) = rest.split_at_checked(len)?;
        self.rest = rest;
        Some(value)
    }

    /// The value of a varint field whose one-byte tag is next.
    #[inline(always)]
    pub fn varint(&mut self) -> Option<u64> {
        let mut rest = self.rest.get(1..)?;
        let value = take_varint(&mut rest)?;
        self.rest = rest;
        Some(value)
    }

    /// The value of a fixed-width field whose `TAG`-byte tag is next.
    #[inline(always)]
    pub fn fixed<const TAG: usize, const N: usize>(&mut self) -> Option<[u8; N]> {
        let (value, rest) = self.rest.get(TAG..)?.split_first_chunk::<N>()?;
        self.rest = rest;
        Some(*value)
    }
}

/// `bytes` as text, if they are valid UTF-8.
#[inline]
pub fn utf8(bytes: &[u8]) -> Option<&str> {
    if bytes.is_ascii() {
        // SAFETY: ASCII is valid UTF-8. Keys, names and most values are
        // ASCII, and this check is several times cheaper than the general
        // one on short strings.
        return Some(unsafe { std::str::from_utf8_unchecked(bytes) });
    }
    std::str::from_utf8(bytes).ok()
}

/// Walks the fields of `buf`, calling `on_field(number, field)` for each;
/// the closure reads what it knows and ignores the rest (unknown fields are
/// skipped, as protobuf requires).
#[inline]
pub fn for_each_field<'a>(
    buf: &'a [u8],
    message: &'static str,
    mut on_field: impl FnMut(u32, Value<'a>) -> Result<(), WireError>,
) -> Result<(), WireError> {
    let mut fields = Fields::new(buf, message);
    while let Some((number, value)) = fields.next_field()? {
        on_field(number, value)?;
    }
    Ok(())
}

/// A repeated scalar field of 8-byte values (`fixed64`, `double`), packed
/// or not, possibly split over several occurrences.
#[derive(Debug, Clone, Copy)]
pub struct Packed64<'a> {
    msg: &'a [u8],
    number: u32,
    message: &'static str,
}

/// A repeated varint field (`uint64`), packed or not.
#[derive(Debug, Clone, Copy)]
pub struct PackedVarint<'a> {
    msg: &'a [u8],
    number: u32,
    message: &'static str,
}

impl<'a> Packed64<'a> {
    pub fn new(msg: &'a [u8], number: u32, message: &'static str) -> Self {
        Self {
            msg,
            number,
            message,
        }
    }

    /// Checks every occurrence; returns how many values there are.
    pub fn validate(&self, field: &'static str) -> Result<usize, WireError> {
        let mut count = 0;
        for_each_field(self.msg, self.message, |n, value| {
            if n == self.number {
                count += Field {
                    value,
                    message: self.message,
                    field,
                }
                .packed64_len()?;
            }
            Ok(())
        })?;
        Ok(count)
    }

    /// Appends the raw 64-bit values to `out` (after validation).
    pub fn read_into(&self, out: &mut Vec<u64>) {
        let _ = for_each_field(self.msg, self.message, |n, v| {
            if n == self.number {
                match v {
                    Value::Fixed64(x) => out.push(x),
                    Value::Bytes(b) => out.extend(
                        b.chunks_exact(8)
                            .filter_map(|c| c.try_into().ok())
                            .map(u64::from_le_bytes),
                    ),
                    _ => {}
                }
            }
            Ok(())
        });
    }

    /// Appends the values read as doubles.
    pub fn read_doubles_into(&self, out: &mut Vec<f64>) {
        let _ = for_each_field(self.msg, self.message, |n, v| {
            if n == self.number {
                match v {
                    Value::Fixed64(x) => out.push(f64::from_bits(x)),
                    Value::Bytes(b) => out.extend(
                        b.chunks_exact(8)
                            .filter_map(|c| c.try_into().ok())
                            .map(|c| f64::from_bits(u64::from_le_bytes(c))),
                    ),
                    _ => {}
                }
            }
            Ok(())
        });
    }
}

impl<'a> PackedVarint<'a> {
    pub fn new(msg: &'a [u8], number: u32, message: &'static str) -> Self {
        Self {
            msg,
            number,
            message,
        }
    }

    /// Checks every occurrence.
    pub fn validate(&self, field: &'static str) -> Result<(), WireError> {
        for_each_field(self.msg, self.message, |n, v| {
            if n != self.number {
                return Ok(());
            }
            match v {
                Value::Varint(_) => Ok(()),
                Value::Bytes(b) => {
                    let mut inner = Fields::new(b, self.message);
                    while !inner.buf.is_empty() {
                        inner.varint()?;
                    }
                    Ok(())
                }
                other => Err(WireError::WrongWireType {
                    message: self.message,
                    field,
                    wire_type: other.wire_type(),
                }),
            }
        })
    }

    /// Appends the values to `out` (after validation).
    pub fn read_into(&self, out: &mut Vec<u64>) {
        let _ = for_each_field(self.msg, self.message, |n, v| {
            if n == self.number {
                match v {
                    Value::Varint(x) => out.push(x),
                    Value::Bytes(b) => {
                        let mut inner = Fields::new(b, self.message);
                        while !inner.buf.is_empty() {
                            match inner.varint() {
                                Ok(x) => out.push(x),
                                Err(_) => break,
                            }
                        }
                    }
                    _ => {}
                }
            }
            Ok(())
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Found by the fuzzer: both were read where protobuf decoders refuse
    /// them (a key over 32 bits aliased field 1; a 10-byte varint's extra
    /// bits were dropped).
    #[test]
    fn keys_over_32_bits_and_varints_over_64_bits_are_refused() {
        // Key 2^32 + 8 (field 1 plus bit 32), then a varint 1.
        let key = [0x88, 0x80, 0x80, 0x80, 0x10, 0x01];
        assert!(matches!(
            Fields::new(&key, "T").next_field(),
            Err(WireError::KeyOverflow { .. })
        ));
        // Field 1, varint of 10 bytes whose last byte is 2 (bit 64).
        let long = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02,
        ];
        assert_eq!(
            Fields::new(&long, "T").next_field(),
            Err(WireError::VarintOverflow { message: "T" })
        );
        // u64::MAX itself is fine.
        let max = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert_eq!(
            Fields::new(&max, "T").next_field(),
            Ok(Some((1, Value::Varint(u64::MAX))))
        );
    }

    #[test]
    fn reads_each_wire_type_and_rejects_truncation() {
        // field 1 varint 150, field 2 fixed64 1, field 3 bytes "hi", field 4 fixed32 7
        let buf = [
            0x08, 0x96, 0x01, 0x11, 1, 0, 0, 0, 0, 0, 0, 0, 0x1a, 2, b'h', b'i', 0x25, 7, 0, 0, 0,
        ];
        let mut f = Fields::new(&buf, "T");
        assert_eq!(f.next_field(), Ok(Some((1, Value::Varint(150)))));
        assert_eq!(f.next_field(), Ok(Some((2, Value::Fixed64(1)))));
        assert_eq!(f.next_field(), Ok(Some((3, Value::Bytes(b"hi")))));
        assert_eq!(f.next_field(), Ok(Some((4, Value::Fixed32(7)))));
        assert_eq!(f.next_field(), Ok(None));
        for cut in 1..buf.len() {
            let mut f = Fields::new(&buf[..cut], "T");
            let mut result = Ok(Some((0, Value::Varint(0))));
            while let Ok(Some(_)) = result {
                result = f.next_field();
            }
            // Cuts at field boundaries end cleanly; all others are errors.
            if ![3, 12, 16].contains(&cut) {
                assert!(result.is_err(), "cut at {cut} was accepted");
            }
        }
    }

    #[test]
    fn rejects_overlong_varints_zero_fields_and_groups() {
        let overlong = [
            0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01,
        ];
        assert!(matches!(
            Fields::new(&overlong, "T").next_field(),
            Err(WireError::VarintOverflow { .. })
        ));
        assert!(matches!(
            Fields::new(&[0x00, 0x01], "T").next_field(),
            Err(WireError::ZeroField { .. })
        ));
        assert!(matches!(
            Fields::new(&[0x0b], "T").next_field(),
            Err(WireError::UnknownWireType { wire_type: 3, .. })
        ));
    }

    #[test]
    fn packed_and_unpacked_repeats_read_alike() {
        // field 6 packed [1, 2], then field 6 unpacked 3.
        let mut buf = vec![0x32, 16];
        buf.extend(1u64.to_le_bytes());
        buf.extend(2u64.to_le_bytes());
        buf.push(0x31);
        buf.extend(3u64.to_le_bytes());
        let packed = Packed64::new(&buf, 6, "T");
        assert_eq!(packed.validate("counts"), Ok(3));
        let mut out = Vec::new();
        packed.read_into(&mut out);
        assert_eq!(out, vec![1, 2, 3]);
        let bad = [0x32, 3, 1, 2, 3];
        assert!(Packed64::new(&bad, 6, "T").validate("counts").is_err());
        // varints: packed [1, 300] then unpacked 5
        let v = [0x12, 3, 1, 0xac, 0x02, 0x10, 5];
        let varints = PackedVarint::new(&v, 2, "T");
        assert_eq!(varints.validate("counts"), Ok(()));
        let mut out = Vec::new();
        varints.read_into(&mut out);
        assert_eq!(out, vec![1, 300, 5]);
    }

    #[test]
    fn field_reads_check_wire_types_and_utf8() {
        let f = Field {
            value: Value::Bytes(&[0xff]),
            message: "T",
            field: "name",
        };
        assert!(matches!(f.string(), Err(WireError::InvalidUtf8 { .. })));
        assert!(matches!(f.varint(), Err(WireError::WrongWireType { .. })));
        let z = Field {
            value: Value::Varint(3),
            message: "T",
            field: "scale",
        };
        assert_eq!(z.sint32(), Ok(-2));
    }
}
