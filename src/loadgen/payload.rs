//! The requests the load generator sends: OTLP metrics, spans or log
//! records shaped like an SDK's, over a fixed number of distinct series,
//! stamped with the current time when built.
//!
//! Request `i` covers items `i × batch .. (i + 1) × batch`, taken modulo
//! `series`, so every series recurs once per `series / batch` requests.

use crate::model::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
use crate::model::otlp::logs::{LogRecord, ResourceLogs, ScopeLogs};
use crate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
    number_data_point,
};
use crate::model::otlp::resource::Resource;
use crate::model::otlp::trace::{ResourceSpans, ScopeSpans, Span, Status, span, status};
use crate::model::{LogsRequest, MetricsRequest, TracesRequest};

/// Distinct metric names the series are spread over (even: gauges, odd:
/// cumulative counters).
pub const METRICS: u64 = 10;
/// Distinct services of spans and log records.
const SERVICES: u64 = 5;

/// What each request holds.
#[derive(Debug, Clone, Copy)]
pub struct Shape {
    /// Distinct series (metrics), operations (spans) or sources (logs).
    pub series: u64,
    /// Items per request.
    pub batch: u64,
    /// Attributes per item (the series' identity is one of them).
    pub attributes: u64,
    /// How spans relate to each other (traces only).
    pub spans: SpanShape,
}

/// How the spans of a traces request relate to each other.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, clap::ValueEnum)]
pub enum SpanShape {
    /// Every span is a root SERVER span of its own trace (a service
    /// receiving requests from outside).
    #[default]
    Roots,
    /// Spans come in pairs of one trace: a CLIENT span in one service and
    /// its child SERVER span in the next one (service `loadgen-s` calls
    /// `loadgen-(s+1)`), as instrumented services calling each other
    /// send them; the service graph pairs them into edges.
    Pairs,
    /// The same pairs, but each SERVER span is sent one request after
    /// its CLIENT span (as when each service exports its own spans): the
    /// service graph keeps every half waiting for its other side.
    PairsAcross,
}

impl SpanShape {
    /// Whether spans come in client/server pairs.
    pub fn paired(self) -> bool {
        self != SpanShape::Roots
    }
}

fn text(key: &str, value: String) -> KeyValue {
    KeyValue {
        key: key.into(),
        value: Some(AnyValue {
            value: Some(any_value::Value::StringValue(value)),
        }),
        ..Default::default()
    }
}

/// `n` attributes for item `id`: its identity first, then `attr.k`.
fn attributes(id: u64, n: u64, identity: &str) -> Vec<KeyValue> {
    let mut out = Vec::with_capacity(n as usize);
    if n > 0 {
        out.push(text(identity, format!("{id}")));
    }
    for k in 1..n {
        out.push(text(
            &format!("attr.{k}"),
            format!("value-{}", (id + k) % 7),
        ));
    }
    out
}

fn resource(service: &str) -> Option<Resource> {
    Some(Resource {
        attributes: vec![
            text("service.name", service.into()),
            text("service.instance.id", "loadgen-1".into()),
            text("host.name", "loadgen".into()),
        ],
        ..Default::default()
    })
}

fn scope() -> Option<InstrumentationScope> {
    Some(InstrumentationScope {
        name: "streamgate.loadgen".into(),
        version: env!("CARGO_PKG_VERSION").into(),
        ..Default::default()
    })
}

/// The item ids of request `index`.
fn ids(shape: &Shape, index: u64) -> impl Iterator<Item = u64> {
    let series = shape.series.max(1);
    let first = index.wrapping_mul(shape.batch);
    (0..shape.batch).map(move |k| first.wrapping_add(k) % series)
}

/// What stamps one data point of a metrics request: its start time (0
/// for none), its time and its value.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct PointStamp {
    pub start_ns: u64,
    pub time_ns: u64,
    pub value: f64,
}

/// The value of item `id`'s point in request `index`: counters grow with
/// the request index; gauges wander.
pub(crate) fn point_value(id: u64, index: u64, counter: bool) -> f64 {
    if counter {
        index as f64
    } else {
        (id % 100) as f64 + (index % 10) as f64
    }
}

/// Whether item `id` is a cumulative counter (odd metric) or a gauge.
fn is_counter(id: u64) -> bool {
    (id % METRICS) % 2 == 1
}

/// Metrics request `index` at `now_ns`, started at `start_ns`.
pub fn metrics(shape: &Shape, index: u64, start_ns: u64, now_ns: u64) -> MetricsRequest {
    metrics_stamped(shape, index, |id, counter| PointStamp {
        start_ns: if counter { start_ns } else { 0 },
        time_ns: now_ns,
        value: point_value(id, index, counter),
    })
}

/// Metrics request `index` with each point's times and value from
/// `stamp(id, counter)`, called in the order the points are encoded.
/// Everything else in the request depends only on which ids it covers.
pub(crate) fn metrics_stamped(
    shape: &Shape,
    index: u64,
    mut stamp: impl FnMut(u64, bool) -> PointStamp,
) -> MetricsRequest {
    let mut by_metric: Vec<Vec<(u64, Vec<KeyValue>)>> = vec![Vec::new(); METRICS as usize];
    for id in ids(shape, index) {
        by_metric[(id % METRICS) as usize]
            .push((id, attributes(id, shape.attributes, "series.id")));
    }
    let by_metric: Vec<Vec<NumberDataPoint>> = by_metric
        .into_iter()
        .map(|points| {
            points
                .into_iter()
                .map(|(id, attributes)| {
                    let s = stamp(id, is_counter(id));
                    NumberDataPoint {
                        attributes,
                        start_time_unix_nano: s.start_ns,
                        time_unix_nano: s.time_ns,
                        value: Some(number_data_point::Value::AsDouble(s.value)),
                        ..Default::default()
                    }
                })
                .collect()
        })
        .collect();
    let metrics = by_metric
        .into_iter()
        .enumerate()
        .filter(|(_, points)| !points.is_empty())
        .map(|(m, data_points)| Metric {
            name: format!("loadgen.metric.{m}"),
            description: format!("Load generator series group {m}."),
            unit: if m % 2 == 1 { "1".into() } else { "s".into() },
            data: Some(if m % 2 == 1 {
                Data::Sum(Sum {
                    data_points,
                    aggregation_temporality: 2,
                    is_monotonic: true,
                })
            } else {
                Data::Gauge(Gauge { data_points })
            }),
            ..Default::default()
        })
        .collect();
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("loadgen"),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// The visibility probe's request: one gauge point, `loadgen.probe`,
/// whose value is the probe's number.
pub fn probe(number: u64, now_ns: u64) -> MetricsRequest {
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: resource("loadgen-probe"),
            scope_metrics: vec![ScopeMetrics {
                scope: scope(),
                metrics: vec![Metric {
                    name: "loadgen.probe".into(),
                    description: "The load generator's visibility probe.".into(),
                    data: Some(Data::Gauge(Gauge {
                        data_points: vec![NumberDataPoint {
                            time_unix_nano: now_ns,
                            value: Some(number_data_point::Value::AsDouble(number as f64)),
                            ..Default::default()
                        }],
                    })),
                    ..Default::default()
                }],
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}

/// What stamps one span of a traces request: its IDs and times.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SpanStamp {
    pub trace_id: [u8; 16],
    pub span_id: [u8; 8],
    /// The parent's span ID, for a span that has one.
    pub parent_span_id: Option<[u8; 8]>,
    pub start_ns: u64,
    pub end_ns: u64,
}

/// The number of the `k`-th span of request `index` over the run.
pub(crate) fn span_serial(shape: &Shape, index: u64, k: u64) -> u64 {
    index.wrapping_mul(shape.batch).wrapping_add(k)
}

/// A span's duration, from its serial number (1 to 50 ms).
pub(crate) fn span_duration_ns(serial: u64) -> u64 {
    1_000_000 + (serial.wrapping_mul(7919) % 50) * 1_000_000
}

/// The ID bytes of a span's serial number: the number after it,
/// big-endian, so the first span's ID is not all zeros (an invalid span
/// ID, which the receiving side ignores or reads as "no parent").
pub(crate) fn id_bytes(serial: u64) -> [u8; 8] {
    serial.wrapping_add(1).to_be_bytes()
}

/// Trace and span IDs from a span's serial number.
pub(crate) fn span_ids(serial: u64) -> ([u8; 16], [u8; 8]) {
    let id = id_bytes(serial);
    let mut trace = [0; 16];
    trace[..8].copy_from_slice(&id);
    trace[8..].copy_from_slice(&id);
    (trace, id)
}

/// Traces request `index` at `now_ns`: one span per item, grouped by
/// service; 1 in 100 spans is an error.
pub fn traces(shape: &Shape, index: u64, now_ns: u64) -> TracesRequest {
    traces_stamped(shape, index, |serial, parent| {
        let (trace_id, _) = span_ids(parent.unwrap_or(serial));
        SpanStamp {
            trace_id,
            span_id: span_ids(serial).1,
            parent_span_id: parent.map(|p| span_ids(p).1),
            start_ns: now_ns.saturating_sub(span_duration_ns(serial)),
            end_ns: now_ns,
        }
    })
}

/// The serial number of the parent of the `k`-th span of request
/// `index`, for a span that has one: with [`SpanShape::Pairs`], each
/// odd-numbered span is the child of the span before it (a last span
/// without a partner stays a client span without its server half); with
/// [`SpanShape::PairsAcross`], of that span in the request before.
pub(crate) fn span_parent(shape: &Shape, index: u64, k: u64) -> Option<u64> {
    let before = match shape.spans {
        SpanShape::Roots => return None,
        SpanShape::Pairs => 0,
        SpanShape::PairsAcross => shape.batch,
    };
    (k % 2 == 1).then(|| span_serial(shape, index, k - 1).wrapping_sub(before))
}

/// Traces request `index` with each span's IDs and times from
/// `stamp(serial, parent serial)`. What else a span holds depends on its
/// item id and on its serial number modulo 100 (its duration class and
/// error flag).
pub(crate) fn traces_stamped(
    shape: &Shape,
    index: u64,
    mut stamp: impl FnMut(u64, Option<u64>) -> SpanStamp,
) -> TracesRequest {
    let mut by_service: Vec<Vec<Span>> = vec![Vec::new(); SERVICES as usize];
    for (k, id) in ids(shape, index).enumerate() {
        let serial = span_serial(shape, index, k as u64);
        let error = serial.is_multiple_of(100);
        let parent = span_parent(shape, index, k as u64);
        let s = stamp(serial, parent);
        let kind = match (shape.spans, parent) {
            (SpanShape::Pairs | SpanShape::PairsAcross, None) => span::SpanKind::Client,
            _ => span::SpanKind::Server,
        };
        by_service[(id % SERVICES) as usize].push(Span {
            trace_id: s.trace_id.to_vec(),
            span_id: s.span_id.to_vec(),
            parent_span_id: s.parent_span_id.map(|p| p.to_vec()).unwrap_or_default(),
            name: format!("GET /api/v1/items/{}", id / SERVICES),
            kind: kind as i32,
            start_time_unix_nano: s.start_ns,
            end_time_unix_nano: s.end_ns,
            attributes: attributes(id, shape.attributes, "loadgen.operation"),
            status: Some(Status {
                code: if error {
                    status::StatusCode::Error as i32
                } else {
                    status::StatusCode::Unset as i32
                },
                ..Default::default()
            }),
            ..Default::default()
        });
    }
    TracesRequest {
        resource_spans: by_service
            .into_iter()
            .enumerate()
            .filter(|(_, spans)| !spans.is_empty())
            .map(|(s, spans)| ResourceSpans {
                resource: resource(&format!("loadgen-{s}")),
                scope_spans: vec![ScopeSpans {
                    scope: scope(),
                    spans,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

/// Logs request `index` at `now_ns`: one record per item, grouped by
/// service; 1 in 20 records is an error.
pub fn logs(shape: &Shape, index: u64, now_ns: u64) -> LogsRequest {
    let mut by_service: Vec<Vec<LogRecord>> = vec![Vec::new(); SERVICES as usize];
    for (k, id) in ids(shape, index).enumerate() {
        let serial = index.wrapping_mul(shape.batch).wrapping_add(k as u64);
        let error = serial.is_multiple_of(20);
        by_service[(id % SERVICES) as usize].push(LogRecord {
            time_unix_nano: now_ns,
            observed_time_unix_nano: now_ns,
            severity_number: if error { 17 } else { 9 },
            severity_text: if error { "ERROR" } else { "INFO" }.into(),
            body: Some(AnyValue {
                value: Some(any_value::Value::StringValue(format!(
                    "request {serial} for source {id} handled"
                ))),
            }),
            attributes: attributes(id, shape.attributes, "loadgen.source"),
            ..Default::default()
        });
    }
    LogsRequest {
        resource_logs: by_service
            .into_iter()
            .enumerate()
            .filter(|(_, records)| !records.is_empty())
            .map(|(s, log_records)| ResourceLogs {
                resource: resource(&format!("loadgen-{s}")),
                scope_logs: vec![ScopeLogs {
                    scope: scope(),
                    log_records,
                    ..Default::default()
                }],
                ..Default::default()
            })
            .collect(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::otlp::ItemCount;

    const SHAPE: Shape = Shape {
        series: 25,
        batch: 10,
        attributes: 3,
        spans: SpanShape::Roots,
    };

    #[test]
    fn every_request_holds_a_batch_and_series_recur() {
        let a = metrics(&SHAPE, 0, 1, 2);
        assert_eq!(a.item_count(), 10);
        assert_eq!(traces(&SHAPE, 0, 2).item_count(), 10);
        assert_eq!(logs(&SHAPE, 0, 2).item_count(), 10);
        // Requests 0, 1, 2 cover ids 0..10, 10..20, 20..25 + 0..5.
        let ids = |i| ids(&SHAPE, i).collect::<Vec<_>>();
        assert_eq!(ids(2), vec![20, 21, 22, 23, 24, 0, 1, 2, 3, 4]);
        let point = match &a.resource_metrics[0].scope_metrics[0].metrics[0].data {
            Some(Data::Gauge(g)) => g.data_points[0].clone(),
            other => panic!("{other:?}"),
        };
        assert_eq!(point.attributes.len(), 3);
        assert_eq!(point.time_unix_nano, 2);
    }

    #[test]
    fn paired_spans_are_a_client_and_its_server_child_in_the_next_service() {
        let shape = Shape {
            spans: SpanShape::Pairs,
            ..SHAPE
        };
        let request = traces(&shape, 3, 2);
        assert_eq!(request.item_count(), 10);
        let mut spans: Vec<(String, Span)> = Vec::new();
        for rs in &request.resource_spans {
            let service = match &rs.resource.as_ref().unwrap().attributes[0].value {
                Some(AnyValue {
                    value: Some(any_value::Value::StringValue(s)),
                }) => s.clone(),
                other => panic!("{other:?}"),
            };
            for span in &rs.scope_spans[0].spans {
                spans.push((service.clone(), span.clone()));
            }
        }
        let clients: Vec<_> = spans
            .iter()
            .filter(|(_, s)| s.kind == span::SpanKind::Client as i32)
            .collect();
        assert_eq!(clients.len(), 5);
        for (client_service, client) in clients {
            assert!(client.parent_span_id.is_empty());
            let children: Vec<_> = spans
                .iter()
                .filter(|(_, s)| s.parent_span_id == client.span_id)
                .collect();
            assert_eq!(children.len(), 1, "one server child per client");
            let (server_service, server) = children[0];
            assert_eq!(server.kind, span::SpanKind::Server as i32);
            assert_eq!(server.trace_id, client.trace_id);
            assert_ne!(server.span_id, client.span_id);
            assert_ne!(server_service, client_service, "a call crosses services");
        }
        // Across requests: the servers of one request are the children
        // of the clients of the request before, one each.
        let across = Shape {
            spans: SpanShape::PairsAcross,
            ..SHAPE
        };
        let of_kind = |request: &TracesRequest, kind: span::SpanKind| {
            let mut spans: Vec<Span> = request
                .resource_spans
                .iter()
                .flat_map(|rs| rs.scope_spans[0].spans.clone())
                .filter(|s| s.kind == kind as i32)
                .collect();
            spans.sort_by(|a, b| a.span_id.cmp(&b.span_id));
            spans
        };
        let clients = of_kind(&traces(&across, 3, 2), span::SpanKind::Client);
        let servers = of_kind(&traces(&across, 4, 2), span::SpanKind::Server);
        assert_eq!((clients.len(), servers.len()), (5, 5));
        let mut parents: Vec<(Vec<u8>, Vec<u8>)> = servers
            .iter()
            .map(|s| (s.parent_span_id.clone(), s.trace_id.clone()))
            .collect();
        parents.sort();
        let mut expected: Vec<(Vec<u8>, Vec<u8>)> = clients
            .iter()
            .map(|c| (c.span_id.clone(), c.trace_id.clone()))
            .collect();
        expected.sort();
        assert_eq!(parents, expected);
        // No ID is all zeros, the run's first span's included.
        for shape in [SHAPE, shape, across] {
            for rs in traces(&shape, 0, 2).resource_spans {
                for s in &rs.scope_spans[0].spans {
                    assert!(s.span_id.iter().any(|b| *b != 0), "{shape:?}");
                    assert!(s.trace_id.iter().any(|b| *b != 0), "{shape:?}");
                }
            }
        }
        // Roots have no parents and are all servers.
        assert!(traces(&SHAPE, 3, 2).resource_spans.iter().all(|rs| {
            rs.scope_spans[0]
                .spans
                .iter()
                .all(|s| s.parent_span_id.is_empty() && s.kind == span::SpanKind::Server as i32)
        }));
    }
}
