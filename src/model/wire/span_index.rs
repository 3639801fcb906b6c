//! [`SpanIndex`]: what validating a traces request learns, kept. One walk
//! checks every field of the request and records, per span, where it lies
//! and the fields every span consumer reads (ids, name, kind, status,
//! times). Consumers then walk the index instead of re-reading the bytes:
//! a request is read once however many connectors look at its spans.

use std::ops::Range;

use super::common::{MessageView, ResourceView};
use super::reader::{WireError, utf8};
use super::traces::{SpanView, TracesRequestView};

/// A byte range of the request (requests are far below 4 GiB: the
/// receiver caps them).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
struct Slice {
    start: u32,
    end: u32,
}

impl Slice {
    /// The range `part` occupies inside `whole` (`part` borrows from it;
    /// an empty part may be a static default, and is the empty range).
    fn of(whole: &[u8], part: &[u8]) -> Result<Self, WireError> {
        if part.is_empty() {
            return Ok(Self::default());
        }
        let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        let end = start + part.len();
        match (u32::try_from(start), u32::try_from(end)) {
            (Ok(start), Ok(end)) if end as usize <= whole.len() => Ok(Self { start, end }),
            _ => Err(WireError::TooLarge {
                message: "ExportTraceServiceRequest",
            }),
        }
    }

    fn get(self, whole: &[u8]) -> &[u8] {
        whole
            .get(self.start as usize..self.end as usize)
            .unwrap_or_default()
    }
}

/// One span: where it lies and its decoded hot fields.
#[derive(Debug, Clone, Copy)]
struct SpanEntry {
    bytes: Slice,
    /// Its attributes' run (see `SpanView::attributes_run`).
    attributes: Slice,
    trace_id: Slice,
    span_id: Slice,
    parent_span_id: Slice,
    name: Slice,
    kind: i32,
    status_code: i32,
    flags: u32,
    start_ns: u64,
    end_ns: u64,
}

/// The spans of one `ResourceSpans` (all its scopes), and its resource.
#[derive(Debug, Clone)]
struct ResourceGroup {
    resource: Option<Slice>,
    spans: Range<usize>,
}

/// A validated traces request's spans, grouped by resource.
#[derive(Debug, Default)]
pub struct SpanIndex {
    groups: Vec<ResourceGroup>,
    spans: Vec<SpanEntry>,
}

impl SpanIndex {
    /// Checks a whole `ExportTraceServiceRequest` (every field prost would
    /// check) and indexes its spans.
    pub fn build(bytes: &[u8]) -> Result<Self, WireError> {
        let mut index = SpanIndex::default();
        for rs in TracesRequestView::new(bytes).resource_spans.try_iter() {
            let rs = rs?;
            let resource = match &rs.resource {
                Some(r) => {
                    r.validate()?;
                    Some(Slice::of(bytes, r.bytes())?)
                }
                None => None,
            };
            let first = index.spans.len();
            for ss in rs.scope_spans.try_iter() {
                let ss = ss?;
                if let Some(scope) = &ss.scope {
                    scope.validate()?;
                }
                for span in ss.spans.raw() {
                    let span = span?;
                    let view = SpanView::validate(span)?;
                    index.spans.push(SpanEntry {
                        bytes: Slice::of(bytes, span)?,
                        attributes: Slice::of(bytes, view.attributes_run)?,
                        trace_id: Slice::of(bytes, view.trace_id)?,
                        span_id: Slice::of(bytes, view.span_id)?,
                        parent_span_id: Slice::of(bytes, view.parent_span_id)?,
                        name: Slice::of(bytes, view.name.as_bytes())?,
                        kind: view.kind,
                        status_code: view.status_code,
                        flags: view.flags,
                        start_ns: view.start_ns,
                        end_ns: view.end_ns,
                    });
                }
            }
            index.groups.push(ResourceGroup {
                resource,
                spans: first..index.spans.len(),
            });
        }
        Ok(index)
    }

    /// Number of spans.
    pub fn len(&self) -> usize {
        self.spans.len()
    }

    pub fn is_empty(&self) -> bool {
        self.spans.is_empty()
    }

    /// The spans of the request `bytes` (the one indexed), by resource.
    pub fn resources<'a>(&'a self, bytes: &'a [u8]) -> impl Iterator<Item = IndexedResource<'a>> {
        self.groups.iter().map(move |g| IndexedResource {
            bytes,
            resource: g.resource,
            spans: self.spans.get(g.spans.clone()).unwrap_or_default(),
        })
    }
}

/// One `ResourceSpans` of an indexed request.
#[derive(Debug, Clone, Copy)]
pub struct IndexedResource<'a> {
    bytes: &'a [u8],
    resource: Option<Slice>,
    spans: &'a [SpanEntry],
}

impl<'a> IndexedResource<'a> {
    /// The resource, if the request had one.
    pub fn resource(&self) -> Option<ResourceView<'a>> {
        self.resource
            .and_then(|s| ResourceView::parse(s.get(self.bytes)).ok())
    }

    /// The spans of all its scopes, in order.
    pub fn spans(&self) -> impl Iterator<Item = SpanView<'a>> + use<'a> {
        let bytes = self.bytes;
        self.spans.iter().map(move |e| SpanView {
            bytes: e.bytes.get(bytes),
            attributes_run: e.attributes.get(bytes),
            trace_id: e.trace_id.get(bytes),
            span_id: e.span_id.get(bytes),
            parent_span_id: e.parent_span_id.get(bytes),
            // Checked when indexed; a failure here is impossible.
            name: utf8(e.name.get(bytes)).unwrap_or_default(),
            kind: e.kind,
            status_code: e.status_code,
            flags: e.flags,
            start_ns: e.start_ns,
            end_ns: e.end_ns,
        })
    }
}
