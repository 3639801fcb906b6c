//! The trace views read exactly what prost reads: a request with events,
//! links, status and every span field, walked through the views, matches
//! its prost decoding; truncated and corrupt bytes are refused by
//! validation where prost refuses them.

use prost::Message;

use super::span_index::SpanIndex;
use super::tests::{kv, owned_attributes};
use super::traces::{SpanView, TracesRequestView, validate_traces};
use crate::model::otlp::common::{InstrumentationScope, any_value::Value as V};
use crate::model::otlp::resource::Resource;
use crate::model::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status, span};
use crate::model::otlp::{ItemCount, TracesRequest};

/// Two resources, spans with every field set, events, links and status.
pub fn sample_traces() -> TracesRequest {
    let full = Span {
        trace_id: vec![7; 16],
        span_id: vec![3; 8],
        trace_state: "vendor=x".into(),
        parent_span_id: vec![1; 8],
        flags: 0x301,
        name: "GET /items/{id}".into(),
        kind: span::SpanKind::Server as i32,
        start_time_unix_nano: 1_000,
        end_time_unix_nano: 2_500_000,
        attributes: vec![
            kv("http.request.method", V::StringValue("GET".into())),
            kv("http.response.status_code", V::IntValue(200)),
        ],
        dropped_attributes_count: 2,
        events: vec![span::Event {
            time_unix_nano: 1_500,
            name: "exception".into(),
            attributes: vec![kv("exception.type", V::StringValue("IOError".into()))],
            dropped_attributes_count: 1,
        }],
        dropped_events_count: 3,
        links: vec![span::Link {
            trace_id: vec![9; 16],
            span_id: vec![8; 8],
            trace_state: "k=v".into(),
            attributes: vec![kv("link.kind", V::StringValue("follows".into()))],
            dropped_attributes_count: 4,
            flags: 1,
        }],
        dropped_links_count: 5,
        status: Some(Status {
            message: "boom".into(),
            code: 2,
        }),
    };
    let bare = Span {
        name: "internal".into(),
        kind: 42, // unknown enum numbers are kept
        ..Default::default()
    };
    let resource = |service: &str| {
        Some(Resource {
            attributes: vec![kv("service.name", V::StringValue(service.into()))],
            ..Default::default()
        })
    };
    TracesRequest {
        resource_spans: vec![
            ResourceSpans {
                resource: resource("checkout"),
                scope_spans: vec![ScopeSpans {
                    scope: Some(InstrumentationScope {
                        name: "lib".into(),
                        version: "1.0".into(),
                        attributes: vec![kv("a", V::BoolValue(true))],
                        dropped_attributes_count: 0,
                    }),
                    spans: vec![full, bare],
                    schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
                }],
                schema_url: "https://opentelemetry.io/schemas/1.26.0".into(),
            },
            ResourceSpans {
                resource: resource("cart"),
                scope_spans: vec![ScopeSpans::default()],
                ..Default::default()
            },
        ],
    }
}

/// Rebuilds the owned request from the views, field by field.
fn rebuild(bytes: &[u8]) -> TracesRequest {
    let view = TracesRequestView::new(bytes);
    TracesRequest {
        resource_spans: view
            .resource_spans
            .iter()
            .map(|rs| ResourceSpans {
                resource: rs.resource.map(|r| Resource {
                    attributes: owned_attributes(&r.attributes),
                    ..Default::default()
                }),
                schema_url: rs.schema_url.into(),
                scope_spans: rs
                    .scope_spans
                    .iter()
                    .map(|ss| ScopeSpans {
                        scope: ss.scope.map(|s| InstrumentationScope {
                            name: s.name.into(),
                            version: s.version.into(),
                            attributes: owned_attributes(&s.attributes),
                            dropped_attributes_count: 0,
                        }),
                        schema_url: ss.schema_url.into(),
                        spans: ss.spans.iter().map(rebuild_span).collect(),
                    })
                    .collect(),
            })
            .collect(),
    }
}

fn rebuild_span(s: super::traces::SpanView<'_>) -> Span {
    Span {
        trace_id: s.trace_id.to_vec(),
        span_id: s.span_id.to_vec(),
        trace_state: s.trace_state().into(),
        parent_span_id: s.parent_span_id.to_vec(),
        flags: s.flags,
        name: s.name.into(),
        kind: s.kind,
        start_time_unix_nano: s.start_ns,
        end_time_unix_nano: s.end_ns,
        attributes: owned_attributes(&s.attributes()),
        dropped_attributes_count: s.dropped_attributes_count(),
        events: s
            .events()
            .iter()
            .map(|e| span::Event {
                time_unix_nano: e.time_ns,
                name: e.name.into(),
                attributes: owned_attributes(&e.attributes),
                dropped_attributes_count: e.dropped_attributes_count,
            })
            .collect(),
        dropped_events_count: s.dropped_events_count(),
        links: s
            .links()
            .iter()
            .map(|l| span::Link {
                trace_id: l.trace_id.to_vec(),
                span_id: l.span_id.to_vec(),
                trace_state: l.trace_state.into(),
                attributes: owned_attributes(&l.attributes),
                dropped_attributes_count: l.dropped_attributes_count,
                flags: l.flags,
            })
            .collect(),
        dropped_links_count: s.dropped_links_count(),
        status: s.status().map(|st| Status {
            message: st.message.into(),
            code: st.code,
        }),
    }
}

/// The request with every empty `AnyValue` taken as absent, as the views
/// read it (both mean "no value").
fn without_empty_values(mut request: TracesRequest) -> TracesRequest {
    fn clear(attributes: &mut [crate::model::otlp::common::KeyValue]) {
        for kv in attributes {
            if kv.value.as_ref().is_some_and(|v| v.value.is_none()) {
                kv.value = None;
            }
        }
    }
    for rs in &mut request.resource_spans {
        if let Some(r) = &mut rs.resource {
            clear(&mut r.attributes);
        }
        for ss in &mut rs.scope_spans {
            if let Some(s) = &mut ss.scope {
                clear(&mut s.attributes);
            }
            for span in &mut ss.spans {
                clear(&mut span.attributes);
                span.events
                    .iter_mut()
                    .for_each(|e| clear(&mut e.attributes));
                span.links.iter_mut().for_each(|l| clear(&mut l.attributes));
            }
        }
    }
    request
}

/// The index validation builds gives the same spans and resources as
/// reading the request's views.
fn assert_index_matches_views(bytes: &[u8]) {
    let index = SpanIndex::build(bytes).expect("valid");
    let by_view: Vec<(Option<&[u8]>, Vec<SpanView<'_>>)> = TracesRequestView::new(bytes)
        .resource_spans
        .iter()
        .map(|rs| {
            (
                rs.resource.map(|r| r.bytes()),
                rs.scope_spans
                    .iter()
                    .flat_map(|ss| ss.spans.iter())
                    .collect(),
            )
        })
        .collect();
    let by_index: Vec<(Option<&[u8]>, Vec<SpanView<'_>>)> = index
        .resources(bytes)
        .map(|r| (r.resource().map(|r| r.bytes()), r.spans().collect()))
        .collect();
    assert_eq!(by_index, by_view);
}

#[test]
fn views_read_every_span_field_prost_reads() {
    let request = sample_traces();
    let bytes = request.encode_to_vec();
    assert_eq!(validate_traces(&bytes), Ok(request.item_count()));
    assert_eq!(rebuild(&bytes), request);
    assert_index_matches_views(&bytes);
    let first = first_viewed_span(&bytes);
    assert_eq!(first.status_code, 2);
    assert!((first.seconds() - 0.002499).abs() < 1e-12);
}

/// Calls `check` with the first span of the request `bytes` read through
/// the index and read by walking the views.
fn with_first_span(bytes: &[u8], check: impl FnOnce(SpanView<'_>, SpanView<'_>)) {
    let index = SpanIndex::build(bytes).expect("valid");
    let indexed = index
        .resources(bytes)
        .flat_map(|r| r.spans().collect::<Vec<_>>())
        .next()
        .expect("a span");
    check(indexed, first_viewed_span(bytes));
}

/// The first span of the request `bytes`, read by walking the views.
fn first_viewed_span(bytes: &[u8]) -> SpanView<'_> {
    TracesRequestView::new(bytes)
        .resource_spans
        .iter()
        .flat_map(|rs| rs.scope_spans.iter())
        .flat_map(|ss| ss.spans.iter())
        .next()
        .expect("a span")
}

/// A request of one resource, one scope and one span encoded as `span`.
fn request_of_span_bytes(span: &[u8]) -> Vec<u8> {
    let mut scope_spans = Vec::new();
    prost::encoding::bytes::encode(2, &span.to_vec(), &mut scope_spans);
    let mut resource_spans = Vec::new();
    prost::encoding::bytes::encode(2, &scope_spans, &mut resource_spans);
    let mut request = Vec::new();
    prost::encoding::bytes::encode(1, &resource_spans, &mut request);
    request
}

fn keys(span: &SpanView<'_>) -> Vec<String> {
    span.attributes()
        .iter()
        .map(|kv| kv.key.to_owned())
        .collect()
}

#[test]
fn indexed_spans_read_their_attributes_from_their_run_alone() {
    let mut span = sample_traces().resource_spans[0].scope_spans[0].spans[0].clone();
    span.attributes
        .push(kv("net.peer.name", V::StringValue("db".into())));
    let three = [
        "http.request.method",
        "http.response.status_code",
        "net.peer.name",
    ];
    with_first_span(
        &request_of_span_bytes(&span.encode_to_vec()),
        |indexed, parsed| {
            assert_eq!(keys(&indexed), three);
            assert_eq!(indexed, parsed);
            assert!(indexed.attributes_run.len() < indexed.bytes.len() / 2);
        },
    );
    let bare = Span {
        attributes: Vec::new(),
        ..span.clone()
    };
    with_first_span(
        &request_of_span_bytes(&bare.encode_to_vec()),
        |indexed, parsed| {
            assert!(keys(&indexed).is_empty());
            assert!(indexed.attributes_run.is_empty());
            assert_eq!(indexed, parsed);
        },
    );
    // One more attribute after the events, links and status.
    let mut interleaved = span.encode_to_vec();
    prost::encoding::message::encode(9, &kv("late", V::IntValue(7)), &mut interleaved);
    with_first_span(&request_of_span_bytes(&interleaved), |indexed, parsed| {
        let mut four = three.to_vec();
        four.push("late");
        assert_eq!(keys(&indexed), four);
        assert_eq!(indexed, parsed);
    });
    // An attribute's length spent on two bytes (valid, not canonical):
    // the run is then the whole span.
    let attribute = kv("k", V::StringValue("v".into())).encode_to_vec();
    let mut long = vec![0x4a, 0x80 | attribute.len() as u8, 0x00];
    long.extend_from_slice(&attribute);
    with_first_span(&request_of_span_bytes(&long), |indexed, parsed| {
        assert_eq!(indexed.attributes_run, indexed.bytes);
        assert_eq!(keys(&indexed), ["k"]);
        assert_eq!(indexed, parsed);
    });
}

/// Whether a request prost decoded holds a trace or span id of the wrong
/// length, which validation refuses and prost does not.
fn has_bad_id(request: &TracesRequest) -> bool {
    use super::reader::{SPAN_ID_LEN, TRACE_ID_LEN, id_fits};
    request
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .any(|s| {
            !id_fits(&s.trace_id, TRACE_ID_LEN)
                || !id_fits(&s.span_id, SPAN_ID_LEN)
                || !id_fits(&s.parent_span_id, SPAN_ID_LEN)
                || s.links.iter().any(|l| {
                    !id_fits(&l.trace_id, TRACE_ID_LEN) || !id_fits(&l.span_id, SPAN_ID_LEN)
                })
        })
}

/// Validation refuses what prost refuses, and what prost accepts but
/// OTLP forbids (an id of the wrong length).
fn agrees(
    ours: &Result<u64, super::WireError>,
    prost: &Result<TracesRequest, prost::DecodeError>,
) -> bool {
    match (ours, prost) {
        (Err(super::WireError::IdLength { .. }), Ok(decoded)) => has_bad_id(decoded),
        (Ok(_), Ok(decoded)) => !has_bad_id(decoded),
        (ours, prost) => ours.is_ok() == prost.is_ok(),
    }
}

#[test]
fn every_truncation_and_single_byte_corruption_agrees_with_prost() {
    let bytes = sample_traces().encode_to_vec();
    for cut in 0..bytes.len() {
        let ours = validate_traces(&bytes[..cut]);
        let prost = TracesRequest::decode(&bytes[..cut]);
        assert!(agrees(&ours, &prost), "cut at {cut}: {ours:?}");
    }
    let mut both_accepted = 0;
    for at in 0..bytes.len() {
        for flip in [0x80u8, 0xff, 0x01, 0x06] {
            let mut corrupt = bytes.clone();
            corrupt[at] ^= flip;
            let ours = validate_traces(&corrupt);
            let prost = TracesRequest::decode(&corrupt[..]);
            assert!(agrees(&ours, &prost), "byte {at} ^ {flip:#x}: {ours:?}");
            if let (Ok(count), Ok(decoded)) = (ours, prost) {
                assert_eq!(count, decoded.item_count());
                assert_index_matches_views(&corrupt);
                assert_eq!(
                    rebuild(&corrupt),
                    without_empty_values(decoded),
                    "byte {at} ^ {flip:#x}"
                );
                both_accepted += 1;
            }
        }
    }
    assert!(both_accepted > 0);
}

/// Each encoded span of the sample request.
fn sample_spans() -> Vec<Vec<u8>> {
    sample_traces()
        .resource_spans
        .iter()
        .flat_map(|rs| &rs.scope_spans)
        .flat_map(|ss| &ss.spans)
        .map(|s| s.encode_to_vec())
        .collect()
}

#[test]
fn a_span_read_in_field_order_reads_as_the_field_walk_reads_it() {
    let mut in_order = 0;
    for span in sample_spans() {
        assert!(
            SpanView::validate_in_order(&span).is_some(),
            "prost's layout is read in order"
        );
        let cuts = (0..span.len()).map(|n| span[..n].to_vec());
        let changed = (0..span.len()).flat_map(|at| {
            [0x80u8, 0xff, 0x01, 0x06, 0x08, 0x40].map(|flip| {
                let mut copy = span.clone();
                copy[at] ^= flip;
                copy
            })
        });
        for bytes in std::iter::once(span.clone()).chain(cuts).chain(changed) {
            let walked = SpanView::validate_walking(&bytes);
            if let Some(view) = SpanView::validate_in_order(&bytes) {
                in_order += 1;
                assert_eq!(Ok(view), walked, "{bytes:02x?}");
            }
            assert_eq!(SpanView::validate(&bytes), walked, "{bytes:02x?}");
        }
    }
    assert!(in_order > 100, "read in order: {in_order}");
}

#[test]
fn a_span_in_another_field_order_is_walked() {
    let span = &sample_spans()[0];
    let mut fields = Vec::new();
    let mut rest = &span[..];
    while !rest.is_empty() {
        let mut probe = super::reader::Fields::new(rest, "Span");
        probe.next_field().expect("valid").expect("a field");
        let len = rest.len() - probe.remaining();
        fields.push(&rest[..len]);
        rest = &rest[len..];
    }
    fields.reverse();
    let reversed: Vec<u8> = fields.concat();
    assert!(SpanView::validate_in_order(&reversed).is_none());
    let view = SpanView::validate(&reversed).expect("valid in any order");
    assert_eq!(view.name, "GET /items/{id}");
    assert_eq!(view.trace_id, &[7; 16]);
    assert_eq!(
        view.status_code,
        SpanView::validate(span).expect("valid").status_code
    );
}

#[test]
fn invalid_utf8_in_a_span_name_is_refused_with_the_field_named() {
    let mut request = sample_traces();
    request.resource_spans[0].scope_spans[0].spans[0].name = "é-op".into();
    let mut bytes = request.encode_to_vec();
    let at = bytes
        .windows(2)
        .position(|w| w == "é".as_bytes())
        .expect("encoded name");
    bytes[at + 1] = 0x41;
    assert!(TracesRequest::decode(&bytes[..]).is_err());
    let error = validate_traces(&bytes).expect_err("invalid UTF-8");
    assert_eq!(error.to_string(), "Span.name: string is not valid UTF-8");
}
