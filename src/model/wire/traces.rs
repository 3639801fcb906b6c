//! Views of the OTLP trace messages, from `ExportTraceServiceRequest` down
//! to spans, their events, links and status, and [`validate_traces`], the
//! one pass that checks a whole request (every field prost would check)
//! and counts its spans.

use super::common::{
    Attributes, FieldName, KeyValueView, MessageView, Repeated, ResourceView, ScopeView,
    head_and_schema_url, once, optional, validate_attributes,
};
use super::reader::{
    Field, Fields, InOrder, SPAN_ID_LEN, TRACE_ID_LEN, Value, WireError, for_each_field, id_fits,
    utf8,
};
use super::span_index::SpanIndex;

/// `ExportTraceServiceRequest`.
#[derive(Debug, Clone, Copy)]
pub struct TracesRequestView<'a> {
    pub resource_spans: Repeated<'a, ResourceSpansView<'a>>,
}

impl<'a> TracesRequestView<'a> {
    /// The view of a request's bytes (validate them first).
    pub fn new(bytes: &'a [u8]) -> Self {
        Self {
            resource_spans: Repeated::new(
                bytes,
                1,
                &FieldName("ExportTraceServiceRequest", "resource_spans"),
            ),
        }
    }
}

/// `ResourceSpans`.
#[derive(Debug, Clone, Copy)]
pub struct ResourceSpansView<'a> {
    pub resource: Option<ResourceView<'a>>,
    pub scope_spans: Repeated<'a, ScopeSpansView<'a>>,
    pub schema_url: &'a str,
}

impl<'a> MessageView<'a> for ResourceSpansView<'a> {
    const NAME: &'static str = "ResourceSpans";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (resource, schema_url) = head_and_schema_url(bytes, Self::NAME, "resource")?;
        Ok(Self {
            resource: optional(resource)?,
            scope_spans: Repeated::new(bytes, 2, &FieldName(Self::NAME, "scope_spans")),
            schema_url,
        })
    }
}

/// `ScopeSpans`.
#[derive(Debug, Clone, Copy)]
pub struct ScopeSpansView<'a> {
    pub scope: Option<ScopeView<'a>>,
    pub spans: Repeated<'a, SpanView<'a>>,
    pub schema_url: &'a str,
}

impl<'a> MessageView<'a> for ScopeSpansView<'a> {
    const NAME: &'static str = "ScopeSpans";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let (scope, schema_url) = head_and_schema_url(bytes, Self::NAME, "scope")?;
        Ok(Self {
            scope: optional(scope)?,
            spans: Repeated::new(bytes, 2, &FieldName(Self::NAME, "spans")),
            schema_url,
        })
    }
}

/// `Span`: the fields every span consumer reads, decoded; the rest
/// (attributes, events, links, trace state, dropped counts, the status
/// message) read on demand from the span's bytes. `kind` and `status_code`
/// are the numbers as sent (protobuf enums are open: an unknown number is
/// kept, not refused). Small, because consumers walk millions of these.
/// Two views are equal when they read the same span bytes, the same hot
/// fields and the same attributes (wherever each reads them from).
#[derive(Debug, Clone, Copy)]
pub struct SpanView<'a> {
    pub(super) bytes: &'a [u8],
    /// The part of `bytes` that holds its attributes: from the first
    /// one's tag to the end of the last one (other fields between them
    /// are skipped when read), or all of `bytes` when not known.
    pub(super) attributes_run: &'a [u8],
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub parent_span_id: &'a [u8],
    pub name: &'a str,
    pub kind: i32,
    /// The status code; 0 (unset) without a status.
    pub status_code: i32,
    pub flags: u32,
    pub start_ns: u64,
    pub end_ns: u64,
}

impl<'a> SpanView<'a> {
    /// The view of `bytes` before any field is read: every field unset.
    fn unset(bytes: &'a [u8]) -> Self {
        SpanView {
            bytes,
            attributes_run: bytes,
            trace_id: &[],
            span_id: &[],
            parent_span_id: &[],
            name: "",
            kind: 0,
            status_code: 0,
            flags: 0,
            start_ns: 0,
            end_ns: 0,
        }
    }

    /// Duration in seconds (0 when the end is before the start).
    pub fn seconds(&self) -> f64 {
        self.end_ns.saturating_sub(self.start_ns) as f64 / 1e9
    }

    pub fn attributes(&self) -> Attributes<'a> {
        Repeated::new(self.attributes_run, 9, &FieldName(Self::NAME, "attributes"))
    }

    pub fn events(&self) -> Repeated<'a, EventView<'a>> {
        Repeated::new(self.bytes, 11, &FieldName(Self::NAME, "events"))
    }

    pub fn links(&self) -> Repeated<'a, LinkView<'a>> {
        Repeated::new(self.bytes, 13, &FieldName(Self::NAME, "links"))
    }

    /// The status (last occurrence), if sent.
    pub fn status(&self) -> Option<StatusView<'a>> {
        self.last(15)
            .and_then(|v| StatusView::parse(field!(v, Self::NAME, "status").message().ok()?).ok())
    }

    pub fn trace_state(&self) -> &'a str {
        self.last(3)
            .and_then(|v| field!(v, Self::NAME, "trace_state").string().ok())
            .unwrap_or("")
    }

    pub fn dropped_attributes_count(&self) -> u32 {
        self.varint(10)
    }

    pub fn dropped_events_count(&self) -> u32 {
        self.varint(12)
    }

    pub fn dropped_links_count(&self) -> u32 {
        self.varint(14)
    }

    /// The last occurrence of field `number` (of a validated span).
    fn last(&self, number: u32) -> Option<Value<'a>> {
        let mut fields = Fields::new(self.bytes, Self::NAME);
        let mut found = None;
        while let Ok(Some((n, v))) = fields.next_field() {
            if n == number {
                found = Some(v);
            }
        }
        found
    }

    fn varint(&self, number: u32) -> u32 {
        self.last(number)
            .and_then(|v| field!(v, Self::NAME, "dropped count").uint32().ok())
            .unwrap_or(0)
    }

    /// Reads the span's fields in one walk, checking every one of them;
    /// attributes (9), events (11) and links (13) go to `child`.
    fn parse_with(
        bytes: &'a [u8],
        mut child: impl FnMut(u32, Value<'a>) -> Result<(), WireError>,
    ) -> Result<Self, WireError> {
        const NAME: &str = SpanView::NAME;
        let mut out = SpanView::unset(bytes);
        let mut status_seen = None;
        for_each_field(bytes, NAME, |n, v| {
            match n {
                1 => out.trace_id = field!(v, NAME, "trace_id").id(TRACE_ID_LEN)?,
                2 => out.span_id = field!(v, NAME, "span_id").id(SPAN_ID_LEN)?,
                3 => {
                    field!(v, NAME, "trace_state").string()?;
                }
                4 => out.parent_span_id = field!(v, NAME, "parent_span_id").id(SPAN_ID_LEN)?,
                5 => out.name = field!(v, NAME, "name").string()?,
                6 => out.kind = field!(v, NAME, "kind").int32()?,
                7 => out.start_ns = field!(v, NAME, "start_time_unix_nano").fixed64()?,
                8 => out.end_ns = field!(v, NAME, "end_time_unix_nano").fixed64()?,
                10 => {
                    field!(v, NAME, "dropped_attributes_count").uint32()?;
                }
                12 => {
                    field!(v, NAME, "dropped_events_count").uint32()?;
                }
                14 => {
                    field!(v, NAME, "dropped_links_count").uint32()?;
                }
                15 => {
                    let status = StatusView::parse(field!(v, NAME, "status").message()?)?;
                    once(&mut status_seen, (), NAME, "status")?;
                    out.status_code = status.code;
                }
                16 => out.flags = field!(v, NAME, "flags").fixed32()?,
                9 | 11 | 13 => child(n, v)?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

impl<'a> MessageView<'a> for SpanView<'a> {
    const NAME: &'static str = "Span";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        Self::parse_with(bytes, |_, _| Ok(()))
    }
}

impl<'a> SpanView<'a> {
    /// Checks a span laid out as every OTLP encoder lays it out: its
    /// fields in field-number order with their one-byte tags (the flags'
    /// two), each singular field at most once. It reads straight through
    /// instead of dispatching on each field. `None` for any other layout
    /// and for anything invalid: the general walk then reads the span,
    /// and gives the error (it reads whatever this reads to the same
    /// view).
    #[inline(always)]
    pub(super) fn validate_in_order(bytes: &'a [u8]) -> Option<Self> {
        let mut out = SpanView::unset(bytes);
        let mut span = InOrder::new(bytes);
        if span.at(0x0a) {
            out.trace_id = span.delimited().filter(|id| id_fits(id, TRACE_ID_LEN))?;
        }
        if span.at(0x12) {
            out.span_id = span.delimited().filter(|id| id_fits(id, SPAN_ID_LEN))?;
        }
        if span.at(0x1a) {
            utf8(span.delimited()?)?;
        }
        if span.at(0x22) {
            out.parent_span_id = span.delimited().filter(|id| id_fits(id, SPAN_ID_LEN))?;
        }
        if span.at(0x2a) {
            out.name = utf8(span.delimited()?)?;
        }
        if span.at(0x30) {
            out.kind = span.varint()? as i32;
        }
        if span.at(0x39) {
            out.start_ns = u64::from_le_bytes(span.fixed::<1, 8>()?);
        }
        if span.at(0x41) {
            out.end_ns = u64::from_le_bytes(span.fixed::<1, 8>()?);
        }
        let mut run = AttributeRun::default();
        while span.at(0x4a) {
            let attribute = span.delimited()?;
            KeyValueView::parse(attribute).ok()?;
            run.add(bytes, attribute);
        }
        if span.at(0x50) {
            span.varint()?;
        }
        while span.at(0x5a) {
            let event = EventView::parse(span.delimited()?).ok()?;
            validate_attributes(&event.attributes).ok()?;
        }
        if span.at(0x60) {
            span.varint()?;
        }
        while span.at(0x6a) {
            let link = LinkView::parse(span.delimited()?).ok()?;
            validate_attributes(&link.attributes).ok()?;
        }
        if span.at(0x70) {
            span.varint()?;
        }
        if span.at(0x7a) {
            out.status_code = StatusView::parse(span.delimited()?).ok()?.code;
        }
        if span.rest.starts_with(&[0x85, 0x01]) {
            out.flags = u32::from_le_bytes(span.fixed::<2, 4>()?);
        }
        if !span.rest.is_empty() {
            return None;
        }
        out.attributes_run = run.get(bytes);
        Some(out)
    }

    /// Checks a span's own fields and its attributes, events and links,
    /// in one walk.
    /// The view's attributes are read from their run alone.
    #[inline(always)]
    pub fn validate(bytes: &'a [u8]) -> Result<Self, WireError> {
        match Self::validate_in_order(bytes) {
            Some(view) => Ok(view),
            None => Self::validate_walking(bytes),
        }
    }

    /// [`SpanView::validate`] for any layout, field by field.
    #[cold]
    #[inline(never)]
    pub(super) fn validate_walking(bytes: &'a [u8]) -> Result<Self, WireError> {
        const NAME: &str = SpanView::NAME;
        let mut run = AttributeRun::default();
        let mut view = SpanView::parse_with(bytes, |n, v| {
            match n {
                9 => {
                    let attribute = field!(v, NAME, "attributes").message()?;
                    KeyValueView::parse(attribute)?;
                    run.add(bytes, attribute);
                }
                11 => {
                    let event = EventView::parse(field!(v, NAME, "events").message()?)?;
                    validate_attributes(&event.attributes)?;
                }
                _ => {
                    let link = LinkView::parse(field!(v, NAME, "links").message()?)?;
                    validate_attributes(&link.attributes)?;
                }
            }
            Ok(())
        })?;
        view.attributes_run = run.get(bytes);
        Ok(view)
    }
}

impl PartialEq for SpanView<'_> {
    fn eq(&self, other: &Self) -> bool {
        self.bytes == other.bytes
            && self.trace_id == other.trace_id
            && self.span_id == other.span_id
            && self.parent_span_id == other.parent_span_id
            && self.name == other.name
            && self.kind == other.kind
            && self.status_code == other.status_code
            && self.flags == other.flags
            && self.start_ns == other.start_ns
            && self.end_ns == other.end_ns
            && self.attributes().raw().eq(other.attributes().raw())
    }
}

/// Where the field 9 whose value starts at `at` (`len` bytes) starts, if
/// its tag is the one byte 0x4a and its length the shortest varint: an
/// encoder may spend more bytes on either (which is valid), and then
/// where it starts is not known from its value alone.
#[inline]
fn canonical_start(span: &[u8], at: usize, len: usize) -> Option<usize> {
    let prefix = 1 + prost::length_delimiter_len(len);
    let start = at.checked_sub(prefix)?;
    let mut length = span.get(start + 1..at)?;
    (span.get(start) == Some(&0x4a)
        && prost::decode_length_delimiter(&mut length).ok() == Some(len))
    .then_some(start)
}

/// Where a span's attributes lie, found while it is walked: from the
/// first attribute's tag to the end of the last attribute.
#[derive(Default)]
struct AttributeRun {
    /// Byte offsets in the span; `None` before the first attribute.
    range: Option<(usize, usize)>,
    /// The first attribute's tag and length were not where their
    /// canonical encoding puts them: the run is then the whole span.
    unknown: bool,
}

impl AttributeRun {
    /// `attribute` is the value of a field 9 of `span`.
    #[inline]
    fn add(&mut self, span: &[u8], attribute: &[u8]) {
        let at = (attribute.as_ptr() as usize).wrapping_sub(span.as_ptr() as usize);
        let end = at + attribute.len();
        match &mut self.range {
            // Only where the run starts needs a tag boundary: later
            // attributes just extend it.
            Some((_, last)) => *last = end,
            None => match canonical_start(span, at, attribute.len()) {
                Some(start) => self.range = Some((start, end)),
                None => {
                    self.unknown = true;
                    self.range = Some((0, end));
                }
            },
        }
    }

    fn get<'a>(&self, span: &'a [u8]) -> &'a [u8] {
        match self.range {
            _ if self.unknown => span,
            None => &[],
            Some((start, end)) => span.get(start..end).unwrap_or(span),
        }
    }
}

/// `Status`.
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct StatusView<'a> {
    pub message: &'a str,
    pub code: i32,
}

impl<'a> MessageView<'a> for StatusView<'a> {
    const NAME: &'static str = "Status";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        // Nearly every status: none set, or a one-byte code alone.
        match bytes {
            [] => return Ok(StatusView::default()),
            [0x18, code @ 0..0x80] => {
                return Ok(StatusView {
                    message: "",
                    code: i32::from(*code),
                });
            }
            _ => {}
        }
        let mut out = StatusView::default();
        for_each_field(bytes, Self::NAME, |n, v| {
            match n {
                2 => out.message = field!(v, Self::NAME, "message").string()?,
                3 => out.code = field!(v, Self::NAME, "code").int32()?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// `Span.Event`.
#[derive(Debug, Clone, Copy)]
pub struct EventView<'a> {
    pub time_ns: u64,
    pub name: &'a str,
    pub attributes: Attributes<'a>,
    pub dropped_attributes_count: u32,
}

impl<'a> MessageView<'a> for EventView<'a> {
    const NAME: &'static str = "Event";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        let mut out = EventView {
            time_ns: 0,
            name: "",
            attributes: Repeated::new(bytes, 3, &FieldName(Self::NAME, "attributes")),
            dropped_attributes_count: 0,
        };
        for_each_field(bytes, Self::NAME, |n, v| {
            match n {
                1 => out.time_ns = field!(v, Self::NAME, "time_unix_nano").fixed64()?,
                2 => out.name = field!(v, Self::NAME, "name").string()?,
                4 => {
                    out.dropped_attributes_count =
                        field!(v, Self::NAME, "dropped_attributes_count").uint32()?
                }
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// `Span.Link`.
#[derive(Debug, Clone, Copy)]
pub struct LinkView<'a> {
    pub trace_id: &'a [u8],
    pub span_id: &'a [u8],
    pub trace_state: &'a str,
    pub attributes: Attributes<'a>,
    pub dropped_attributes_count: u32,
    pub flags: u32,
}

impl<'a> MessageView<'a> for LinkView<'a> {
    const NAME: &'static str = "Link";
    fn parse(bytes: &'a [u8]) -> Result<Self, WireError> {
        const NAME: &str = LinkView::NAME;
        let mut out = LinkView {
            trace_id: &[],
            span_id: &[],
            trace_state: "",
            attributes: Repeated::new(bytes, 4, &FieldName(NAME, "attributes")),
            dropped_attributes_count: 0,
            flags: 0,
        };
        for_each_field(bytes, NAME, |n, v| {
            match n {
                1 => out.trace_id = field!(v, NAME, "trace_id").id(TRACE_ID_LEN)?,
                2 => out.span_id = field!(v, NAME, "span_id").id(SPAN_ID_LEN)?,
                3 => out.trace_state = field!(v, NAME, "trace_state").string()?,
                5 => {
                    out.dropped_attributes_count =
                        field!(v, NAME, "dropped_attributes_count").uint32()?
                }
                6 => out.flags = field!(v, NAME, "flags").fixed32()?,
                _ => {}
            }
            Ok(())
        })?;
        Ok(out)
    }
}

/// Checks a whole `ExportTraceServiceRequest` and returns its number of
/// spans. After this, every view of the request reads without error.
pub fn validate_traces(bytes: &[u8]) -> Result<u64, WireError> {
    SpanIndex::build(bytes).map(|index| index.len() as u64)
}
