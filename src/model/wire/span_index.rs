//! [`SpanIndex`]: what validating a traces request learns, kept. One walk
//! checks every field of the request and records, per span, where it lies
//! and the fields every span consumer reads (ids, name, kind, status,
//! times). Consumers then walk the index instead of re-reading the bytes:
//! a request is read once however many connectors look at its spans.
//!
//! An index's span list is handed back to its thread when the index is
//! dropped (see `model::spare`).

use std::ops::Range;

use crate::model::spare::{self, Spare};

use super::common::{MessageView, ResourceView, ScopeView, once};
use super::reader::{Field, WireError, for_each_field, utf8};
use super::traces::{ScopeSpansView, SpanView, TracesRequestView};

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
    /// `whole` is at most `u32::MAX` bytes long ([`SpanIndex::build`]
    /// checks), so the offsets fit.
    #[inline]
    fn of(whole: &[u8], part: &[u8]) -> Self {
        if part.is_empty() {
            return Self::default();
        }
        let start = (part.as_ptr() as usize).wrapping_sub(whole.as_ptr() as usize);
        Self {
            start: start as u32,
            end: (start + part.len()) as u32,
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

thread_local! {
    /// A dropped index's span list, for the next index built on this
    /// thread.
    static SPARE: Spare<SpanEntry> = const { Spare::new() };
}

impl Drop for SpanIndex {
    fn drop(&mut self) {
        spare::give(&SPARE, std::mem::take(&mut self.spans));
    }
}

impl SpanIndex {
    /// Checks a whole `ExportTraceServiceRequest` (every field prost would
    /// check) and indexes its spans.
    pub fn build(bytes: &[u8]) -> Result<Self, WireError> {
        const NAME: &str = "ExportTraceServiceRequest";
        if u32::try_from(bytes.len()).is_err() {
            return Err(WireError::TooLarge { message: NAME });
        }
        let mut index = SpanIndex {
            groups: Vec::new(),
            spans: spare::take(&SPARE),
        };
        for rs in TracesRequestView::new(bytes).resource_spans.try_iter() {
            let rs = rs?;
            let resource = match &rs.resource {
                Some(r) => {
                    r.validate()?;
                    Some(Slice::of(bytes, r.bytes()))
                }
                None => None,
            };
            let first = index.spans.len();
            for ss in rs.scope_spans.raw() {
                index.add_scope_spans(bytes, ss?)?;
            }
            index.groups.push(ResourceGroup {
                resource,
                spans: first..index.spans.len(),
            });
        }
        Ok(index)
    }

    /// Checks one `ScopeSpans` of `request` and indexes its spans, in one
    /// walk of its fields.
    fn add_scope_spans(&mut self, request: &[u8], bytes: &[u8]) -> Result<(), WireError> {
        const NAME: &str = ScopeSpansView::NAME;
        let mut scope_seen = None;
        for_each_field(bytes, NAME, |n, value| {
            match n {
                1 => {
                    once(&mut scope_seen, (), NAME, "scope")?;
                    ScopeView::parse(field!(value, NAME, "scope").message()?)?.validate()?;
                }
                2 => self.add_span(request, field!(value, NAME, "spans").message()?)?,
                3 => {
                    field!(value, NAME, "schema_url").string()?;
                }
                _ => {}
            }
            Ok(())
        })
    }

    /// Checks one span of `request` and indexes it.
    #[inline]
    fn add_span(&mut self, request: &[u8], span: &[u8]) -> Result<(), WireError> {
        let view = SpanView::validate(span)?;
        self.spans.push(SpanEntry {
            bytes: Slice::of(request, span),
            attributes: Slice::of(request, view.attributes_run),
            trace_id: Slice::of(request, view.trace_id),
            span_id: Slice::of(request, view.span_id),
            parent_span_id: Slice::of(request, view.parent_span_id),
            name: Slice::of(request, view.name.as_bytes()),
            kind: view.kind,
            status_code: view.status_code,
            flags: view.flags,
            start_ns: view.start_ns,
            end_ns: view.end_ns,
        });
        Ok(())
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
