//! The service-graph connector: edges between services from pairs of
//! spans, with the metric names and labels Grafana's service graph (and
//! Tempo's metrics-generator, and the OTel Collector's servicegraph
//! connector) use.
//!
//! A request is a CLIENT (or PRODUCER) span with span id X in one service
//! and a SERVER (or CONSUMER) span whose parent span id is X, same trace,
//! in another. The halves may arrive in either order and in different
//! requests: the first one waits in a [`store::PendingStore`] (at most
//! `max_items`, at most `wait`). When the pair completes, the edge
//! `client → server` counts one request. Besides pairs:
//! - a CLIENT span with a database attribute (`db.system.name`,
//!   `db.system`, `db.namespace`, `db.name`) is a whole request to a
//!   database node at once (`connection_type="database"`), named by
//!   `peer.service`, `server.address`, `network.peer.address[:port]`,
//!   `db.namespace`, `db.name`, `db.system.name` or `db.system`, first found;
//! - with `virtual_nodes`, a root SERVER/CONSUMER span is at once a request
//!   from `user`, and a client half that expires with a `peer_attributes`
//!   attribute is a request to that peer (`connection_type="virtual_node"`);
//! - any other half that waited `wait` is counted in
//!   `traces_service_graph_unpaired_spans_total{client=…}` or `{server=…}`;
//!   a half that finds the store full is dropped and counted in
//!   `traces_service_graph_dropped_spans_total` the same way.
//!
//! Spans of a resource without `service.name` are ignored, as the peers do.
//!
//! After each traces request (and each periodic [`ServiceGraph::expire`])
//! the changed series are emitted as cumulative OTLP metrics **without a
//! resource** (so no `job`/`instance`/`target_info`; the labels are the
//! edge's own), scope `streamgate.servicegraph`. The OTel names are the
//! Prometheus names already, so they translate to themselves with or
//! without `add_metric_suffixes`:
//!
//! | metric | type | labels |
//! |---|---|---|
//! | `traces_service_graph_request_total` | counter | `client`, `server`, `connection_type`, extras |
//! | `traces_service_graph_request_failed_total` | counter | same; either side had `STATUS_CODE_ERROR` |
//! | `traces_service_graph_request_server_seconds` | histogram | same; the server span's duration |
//! | `traces_service_graph_request_client_seconds` | histogram | same; the client span's duration |
//! | `traces_service_graph_unpaired_spans_total` | counter | `client` or `server`, `connection_type` |
//! | `traces_service_graph_dropped_spans_total` | counter | `client` or `server`, `connection_type` |
//!
//! `connection_type` is empty (no label) for CLIENT→SERVER, otherwise
//! `messaging_system`, `database` or `virtual_node`. Extras are
//! `client_<dimension>` and `server_<dimension>`. An edge with one
//! instrumented side (database, virtual node) records that side's duration
//! in both histograms, so every histogram count equals the request count.
//! Series are bounded by `cardinality_limit` (then one overflow series)
//! and expire after `series_ttl`.

pub mod config;
pub mod store;

use crate::model::MetricsBatch;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::TracesBatch;
use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::model::otlp::metrics::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum,
    metric::Data, number_data_point,
};
use crate::model::otlp::trace::span::SpanKind;
use crate::model::otlp::trace::status::StatusCode;
use crate::model::text::AttributeLookup;
use crate::model::wire::Attributes;
use crate::model::wire::traces::SpanView;
use crate::pipeline::{ConsumeResult, Consumed, MetricsConsumer, TracesConsumer};
use crate::telemetry::Telemetry;

use super::output::{Output, find_str, now_ns, overflow_attribute, string_attribute};
use super::table::{Table, Upserted, resource_hash};
pub use config::{Dimension, ServiceGraphConfig};
use store::{Half, Offer, PendingStore, Side};

/// `connection_type` values.
pub const MESSAGING_SYSTEM: &str = "messaging_system";
pub const DATABASE: &str = "database";
pub const VIRTUAL_NODE: &str = "virtual_node";
/// The client of a request that entered the system at a root span.
pub const USER: &str = "user";

/// Metric names, in template order.
pub const REQUEST_TOTAL: &str = "traces_service_graph_request_total";
pub const REQUEST_FAILED_TOTAL: &str = "traces_service_graph_request_failed_total";
pub const REQUEST_SERVER_SECONDS: &str = "traces_service_graph_request_server_seconds";
pub const REQUEST_CLIENT_SECONDS: &str = "traces_service_graph_request_client_seconds";
pub const UNPAIRED_SPANS_TOTAL: &str = "traces_service_graph_unpaired_spans_total";
pub const DROPPED_SPANS_TOTAL: &str = "traces_service_graph_dropped_spans_total";

const REQUESTS: usize = 0;
const FAILED: usize = 1;
const SERVER_SECONDS: usize = 2;
const CLIENT_SECONDS: usize = 3;
const UNPAIRED: usize = 4;
const DROPPED: usize = 5;

/// Attributes that make a CLIENT span a database request.
const DATABASE_MARKERS: [&str; 4] = ["db.system.name", "db.system", "db.namespace", "db.name"];

/// Seconds between "store full" warnings.
const DROP_LOG_INTERVAL_NS: u64 = 10_000_000_000;

/// A latency histogram with the configured bounds.
#[derive(serde::Serialize, serde::Deserialize)]
struct Latency {
    counts: Vec<u64>,
    sum: f64,
    count: u64,
}

impl Latency {
    fn new(bounds: usize) -> Self {
        Self {
            counts: vec![0; bounds + 1],
            sum: 0.0,
            count: 0,
        }
    }

    fn record(&mut self, seconds: f64, bounds: &[f64]) {
        let slot = bounds.partition_point(|b| *b < seconds);
        self.counts[slot] += 1;
        self.sum += seconds;
        self.count += 1;
    }

    fn point(
        &self,
        attributes: Vec<KeyValue>,
        bounds: &[f64],
        start_ns: u64,
        now_ns: u64,
    ) -> HistogramDataPoint {
        HistogramDataPoint {
            attributes,
            start_time_unix_nano: start_ns,
            time_unix_nano: now_ns,
            count: self.count,
            sum: Some(self.sum),
            bucket_counts: self.counts.clone(),
            explicit_bounds: bounds.to_vec(),
            ..Default::default()
        }
    }
}

/// One edge series.
#[derive(serde::Serialize, serde::Deserialize)]
struct EdgeSeries {
    requests: u64,
    failed: u64,
    server: Latency,
    client: Latency,
}

/// One unpaired/dropped series.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct SpanCounts {
    unpaired: u64,
    dropped: u64,
}

/// A completed request.
struct Edge<'a> {
    client: &'a str,
    server: &'a str,
    connection_type: &'a str,
    failed: bool,
    client_seconds: f64,
    server_seconds: f64,
    client_dims: &'a [Option<Box<str>>],
    server_dims: &'a [Option<Box<str>>],
}

/// What one request or expiry round did, for the self-metrics.
#[derive(Default)]
struct Tally {
    overflow: u64,
    dropped: u64,
    unpaired_client: u64,
    unpaired_server: u64,
    expired: usize,
}

/// Everything behind the connector's lock.
struct State {
    pending: PendingStore,
    edges: Table<EdgeSeries>,
    spans: Table<SpanCounts>,
    /// The latest time used, so emitted timestamps never go backwards.
    last_ns: u64,
    /// When the last "store full" warning was written, and drops since.
    drop_logged_ns: Option<u64>,
    drops_unlogged: u64,
}

/// What [`ServiceGraph::expire`] removed.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Expired {
    /// Halves whose wait ended (unpaired or turned into virtual edges).
    pub halves: usize,
    /// Idle series dropped after `series_ttl`.
    pub series: usize,
}

/// The connector. Shared as `Arc<ServiceGraph>`.
pub struct ServiceGraph {
    config: ServiceGraphConfig,
    bounds: Vec<f64>,
    /// Attribute names of the edge dimensions: `client`, `server`,
    /// `connection_type`, then `client_<d>`, `server_<d>` per extra.
    edge_labels: Vec<String>,
    empty_resource_hash: u64,
    scope: InstrumentationScope,
    state: Mutex<State>,
    downstream: Arc<dyn MetricsConsumer>,
    telemetry: Arc<Telemetry>,
}

impl ServiceGraph {
    pub fn new(
        config: ServiceGraphConfig,
        downstream: Arc<dyn MetricsConsumer>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        let bounds = config.bounds();
        let mut edge_labels: Vec<String> = ["client", "server", "connection_type"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        for d in &config.dimensions {
            edge_labels.push(format!("client_{}", d.name));
            edge_labels.push(format!("server_{}", d.name));
        }
        let wait_ns = u64::try_from(config.wait.get().as_nanos()).unwrap_or(u64::MAX);
        Self {
            state: Mutex::new(State {
                pending: PendingStore::new(config.max_items, wait_ns),
                edges: Table::new(config.cardinality_limit),
                spans: Table::new(config.cardinality_limit),
                last_ns: 0,
                drop_logged_ns: None,
                drops_unlogged: 0,
            }),
            bounds,
            edge_labels,
            empty_resource_hash: resource_hash(&[]),
            scope: InstrumentationScope {
                name: "streamgate.servicegraph".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            },
            config,
            downstream,
            telemetry,
        }
    }

    /// Pairs the spans of a request as of `now_ns` (Unix ns), after expiring
    /// the halves whose wait ended, and emits the changed series.
    pub fn consume_batch_at(&self, batch: &TracesBatch, now_ns: u64) {
        let mut state = self.state.lock();
        let now = advance(&mut state, now_ns);
        let mut tally = Tally::default();
        self.expire_halves(&mut state, now, &mut tally);
        for rs in batch.resources() {
            let resource = rs
                .resource()
                .map(|r| r.attributes.to_owned_vec())
                .unwrap_or_default();
            let Some(service) = find_str(&resource, "service.name") else {
                continue;
            };
            for span in rs.spans() {
                self.span(&mut state, &resource, service, &span, now, &mut tally);
            }
        }
        self.finish(&mut state, now, &tally);
    }

    /// Expires the halves whose wait ended (counting them unpaired or
    /// drawing virtual edges) and drops series idle for `series_ttl`, as of
    /// `now_ns`; emits what changed. Called periodically by the app.
    pub fn expire(&self, now_ns: u64) -> Expired {
        let mut state = self.state.lock();
        let now = advance(&mut state, now_ns);
        let mut tally = Tally::default();
        self.expire_halves(&mut state, now, &mut tally);
        self.finish(&mut state, now, &tally);
        let ttl = u64::try_from(self.config.series_ttl.get().as_nanos()).unwrap_or(u64::MAX);
        let cutoff = now.saturating_sub(ttl);
        let series = state.edges.expire(cutoff) + state.spans.expire(cutoff);
        Expired {
            halves: tally.expired,
            series,
        }
    }

    /// Halves waiting for their pair.
    pub fn pending(&self) -> usize {
        self.state.lock().pending.len()
    }

    /// Edge series held (not counting the overflow series).
    pub fn series(&self) -> usize {
        self.state.lock().edges.len()
    }

    fn span(
        &self,
        state: &mut State,
        resource: &[KeyValue],
        service: &str,
        span: &SpanView<'_>,
        now: u64,
        tally: &mut Tally,
    ) {
        let (side, messaging) = match SpanKind::try_from(span.kind) {
            Ok(SpanKind::Client) => (Side::Client, false),
            Ok(SpanKind::Producer) => (Side::Client, true),
            Ok(SpanKind::Server) => (Side::Server, false),
            Ok(SpanKind::Consumer) => (Side::Server, true),
            _ => return,
        };
        let seconds = span.seconds();
        let failed = span.status_code == StatusCode::Error as i32;
        let dims = self.dimension_values(&span.attributes(), resource);
        let key = match side {
            Side::Client => {
                if !messaging && let Some(database) = database_name(&span.attributes(), resource) {
                    let edge = Edge {
                        client: service,
                        server: &database,
                        connection_type: DATABASE,
                        failed,
                        client_seconds: seconds,
                        server_seconds: seconds,
                        client_dims: &dims,
                        server_dims: &[],
                    };
                    self.record_edge(&mut state.edges, &edge, now, tally);
                    return;
                }
                store::key(span.trace_id, span.span_id)
            }
            Side::Server => {
                if span.parent_span_id.iter().all(|b| *b == 0) {
                    // A root span: nothing can pair with it.
                    if self.config.virtual_nodes {
                        let edge = Edge {
                            client: USER,
                            server: service,
                            connection_type: VIRTUAL_NODE,
                            failed,
                            client_seconds: seconds,
                            server_seconds: seconds,
                            client_dims: &[],
                            server_dims: &dims,
                        };
                        self.record_edge(&mut state.edges, &edge, now, tally);
                    }
                    return;
                }
                store::key(span.trace_id, span.parent_span_id)
            }
        };
        let Some(key) = key else {
            return;
        };
        let peer = (side == Side::Client && self.config.virtual_nodes)
            .then(|| {
                self.config
                    .peer_attributes
                    .iter()
                    .find_map(|p| span.attributes().text(p))
            })
            .flatten()
            .map(String::into_boxed_str);
        let half = Half {
            side,
            service: service.into(),
            seconds,
            failed,
            messaging,
            dims,
            peer,
        };
        match state.pending.offer(key, half, now) {
            Offer::Paired { client, server } => {
                let edge = Edge {
                    client: &client.service,
                    server: &server.service,
                    connection_type: if client.messaging || server.messaging {
                        MESSAGING_SYSTEM
                    } else {
                        ""
                    },
                    failed: client.failed || server.failed,
                    client_seconds: client.seconds,
                    server_seconds: server.seconds,
                    client_dims: &client.dims,
                    server_dims: &server.dims,
                };
                self.record_edge(&mut state.edges, &edge, now, tally);
            }
            Offer::Stored | Offer::Replaced => {}
            Offer::Full(half) => {
                tally.dropped += 1;
                self.count_span(&mut state.spans, &half, true, now, tally);
            }
        }
    }

    /// The extra dimension values of one side, in config order.
    fn dimension_values(
        &self,
        attributes: &Attributes<'_>,
        resource: &[KeyValue],
    ) -> Vec<Option<Box<str>>> {
        self.config
            .dimensions
            .iter()
            .map(|d| {
                attributes
                    .text(&d.name)
                    .or_else(|| resource.text(&d.name))
                    .or_else(|| d.default.clone())
                    .map(String::into_boxed_str)
            })
            .collect()
    }

    fn record_edge(&self, edges: &mut Table<EdgeSeries>, edge: &Edge, now: u64, tally: &mut Tally) {
        let mut dims: Vec<Option<&str>> = Vec::with_capacity(self.edge_labels.len());
        dims.push(Some(edge.client));
        dims.push(Some(edge.server));
        dims.push((!edge.connection_type.is_empty()).then_some(edge.connection_type));
        for i in 0..self.config.dimensions.len() {
            dims.push(edge.client_dims.get(i).and_then(|d| d.as_deref()));
            dims.push(edge.server_dims.get(i).and_then(|d| d.as_deref()));
        }
        let bounds = &self.bounds;
        let outcome = edges.upsert(
            &[],
            self.empty_resource_hash,
            &dims,
            now,
            || EdgeSeries {
                requests: 0,
                failed: 0,
                server: Latency::new(bounds.len()),
                client: Latency::new(bounds.len()),
            },
            |s| {
                s.requests += 1;
                if edge.failed {
                    s.failed += 1;
                }
                s.server.record(edge.server_seconds, bounds);
                s.client.record(edge.client_seconds, bounds);
            },
        );
        if outcome == Upserted::Overflow {
            tally.overflow += 1;
        }
    }

    /// Counts a half that never paired (`dropped` false) or was dropped.
    fn count_span(
        &self,
        spans: &mut Table<SpanCounts>,
        half: &Half,
        dropped: bool,
        now: u64,
        tally: &mut Tally,
    ) {
        let service = Some(&*half.service);
        let (client, server) = match half.side {
            Side::Client => (service, None),
            Side::Server => (None, service),
        };
        let connection_type = half.messaging.then_some(MESSAGING_SYSTEM);
        let outcome = spans.upsert(
            &[],
            self.empty_resource_hash,
            &[client, server, connection_type],
            now,
            SpanCounts::default,
            |c| {
                if dropped {
                    c.dropped += 1;
                } else {
                    c.unpaired += 1;
                }
            },
        );
        if outcome == Upserted::Overflow {
            tally.overflow += 1;
        }
    }

    fn expire_halves(&self, state: &mut State, now: u64, tally: &mut Tally) {
        let State {
            pending,
            edges,
            spans,
            ..
        } = state;
        pending.expire(now, |half| {
            tally.expired += 1;
            if let (Side::Client, Some(peer)) = (half.side, &half.peer) {
                let edge = Edge {
                    client: &half.service,
                    server: peer,
                    connection_type: VIRTUAL_NODE,
                    failed: half.failed,
                    client_seconds: half.seconds,
                    server_seconds: half.seconds,
                    client_dims: &half.dims,
                    server_dims: &[],
                };
                self.record_edge(edges, &edge, now, tally);
                return;
            }
            match half.side {
                Side::Client => tally.unpaired_client += 1,
                Side::Server => tally.unpaired_server += 1,
            }
            self.count_span(spans, &half, false, now, tally);
        });
    }

    /// Records the tally in the self-metrics and emits the changed series.
    /// Runs under the lock, so emissions reach the exporter in time order.
    fn finish(&self, state: &mut State, now: u64, tally: &Tally) {
        let t = &self.telemetry;
        if tally.overflow > 0 {
            t.record_connector_overflow("servicegraph", tally.overflow);
        }
        if tally.unpaired_client + tally.unpaired_server > 0 {
            t.record_servicegraph_unpaired(tally.unpaired_client, tally.unpaired_server);
        }
        if tally.dropped > 0 {
            t.record_servicegraph_dropped(tally.dropped);
            state.drops_unlogged += tally.dropped;
            if state
                .drop_logged_ns
                .is_none_or(|at| now.saturating_sub(at) >= DROP_LOG_INTERVAL_NS)
            {
                tracing::warn!(
                    dropped = state.drops_unlogged,
                    max_items = self.config.max_items,
                    "service-graph store full: spans dropped without pairing; raise \
                     connectors.servicegraph.max_items or shorten connectors.servicegraph.wait"
                );
                state.drop_logged_ns = Some(now);
                state.drops_unlogged = 0;
            }
        }
        t.set_servicegraph_pending(state.pending.len() as u64);

        let mut output = Output::new(self.scope.clone(), template());
        let bounds = &self.bounds;
        state.edges.drain_dirty(|_, entry| {
            let attributes = self.attributes(entry.resource.is_none(), &entry.dims);
            let metrics = output.metrics(entry.resource.map(|_| 0), &[]);
            let s = &entry.value;
            push_count(
                metrics,
                REQUESTS,
                &attributes,
                s.requests,
                entry.start_ns,
                now,
            );
            push_count(metrics, FAILED, &attributes, s.failed, entry.start_ns, now);
            push_histogram(
                metrics,
                SERVER_SECONDS,
                s.server
                    .point(attributes.clone(), bounds, entry.start_ns, now),
            );
            push_histogram(
                metrics,
                CLIENT_SECONDS,
                s.client.point(attributes, bounds, entry.start_ns, now),
            );
        });
        state.spans.drain_dirty(|_, entry| {
            let attributes = self.attributes(entry.resource.is_none(), &entry.dims);
            let metrics = output.metrics(entry.resource.map(|_| 0), &[]);
            let c = &entry.value;
            if c.unpaired > 0 {
                push_count(
                    metrics,
                    UNPAIRED,
                    &attributes,
                    c.unpaired,
                    entry.start_ns,
                    now,
                );
            }
            if c.dropped > 0 {
                push_count(
                    metrics,
                    DROPPED,
                    &attributes,
                    c.dropped,
                    entry.start_ns,
                    now,
                );
            }
        });
        if output.is_empty() {
            return;
        }
        match self
            .downstream
            .consume_metrics(&MetricsBatch::from_request(output.finish()))
        {
            Ok(Consumed { rejected, message }) if rejected > 0 => {
                tracing::warn!(
                    rejected,
                    "service-graph metrics were rejected downstream: {message}"
                );
            }
            Ok(_) => {}
            Err(e) => tracing::warn!(error = %e, "service-graph metrics were refused downstream"),
        }
    }

    /// A series' attributes: its non-empty dimensions by label name, or
    /// the overflow attribute.
    fn attributes(&self, overflow: bool, dims: &[Option<Box<str>>]) -> Vec<KeyValue> {
        if overflow {
            return vec![overflow_attribute()];
        }
        self.edge_labels
            .iter()
            .zip(dims)
            .filter_map(|(name, value)| value.as_deref().map(|v| string_attribute(name, v)))
            .collect()
    }
}

impl TracesConsumer for ServiceGraph {
    fn consume_traces(&self, batch: &TracesBatch) -> ConsumeResult {
        self.consume_batch_at(batch, now_ns());
        Ok(Consumed::all())
    }
}

/// Moves the connector's clock to `now_ns`, never backwards.
fn advance(state: &mut State, now_ns: u64) -> u64 {
    state.last_ns = state.last_ns.max(now_ns);
    state.last_ns
}

/// The emitted metrics with empty point lists, in index order.
fn template() -> Vec<Metric> {
    let counter = |name: &str, unit: &str, description: &str| Metric {
        name: name.into(),
        unit: unit.into(),
        description: description.into(),
        data: Some(Data::Sum(Sum {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
            is_monotonic: true,
        })),
        ..Default::default()
    };
    let histogram = |name: &str, description: &str| Metric {
        name: name.into(),
        unit: "s".into(),
        description: description.into(),
        data: Some(Data::Histogram(Histogram {
            data_points: Vec::new(),
            aggregation_temporality: AggregationTemporality::Cumulative as i32,
        })),
        ..Default::default()
    };
    vec![
        counter(
            REQUEST_TOTAL,
            "{request}",
            "Requests between two services, from paired client and server spans.",
        ),
        counter(
            REQUEST_FAILED_TOTAL,
            "{request}",
            "Requests between two services where either span had status ERROR.",
        ),
        histogram(
            REQUEST_SERVER_SECONDS,
            "Duration of requests between two services as the server saw it.",
        ),
        histogram(
            REQUEST_CLIENT_SECONDS,
            "Duration of requests between two services as the client saw it.",
        ),
        counter(
            UNPAIRED_SPANS_TOTAL,
            "{span}",
            "Client or server spans whose other side did not arrive within the wait.",
        ),
        counter(
            DROPPED_SPANS_TOTAL,
            "{span}",
            "Client or server spans dropped because the pairing store was full.",
        ),
    ]
}

fn push_count(
    metrics: &mut [Metric],
    index: usize,
    attributes: &[KeyValue],
    value: u64,
    start_ns: u64,
    now_ns: u64,
) {
    if let Some(Data::Sum(sum)) = metrics.get_mut(index).and_then(|m| m.data.as_mut()) {
        sum.data_points.push(NumberDataPoint {
            attributes: attributes.to_vec(),
            start_time_unix_nano: start_ns,
            time_unix_nano: now_ns,
            value: Some(number_data_point::Value::AsInt(
                i64::try_from(value).unwrap_or(i64::MAX),
            )),
            ..Default::default()
        });
    }
}

fn push_histogram(metrics: &mut [Metric], index: usize, point: HistogramDataPoint) {
    if let Some(Data::Histogram(h)) = metrics.get_mut(index).and_then(|m| m.data.as_mut()) {
        h.data_points.push(point);
    }
}

/// The database node a CLIENT span calls, if it is a database request.
fn database_name(span: &Attributes<'_>, resource: &[KeyValue]) -> Option<String> {
    let find = |key: &str| span.text(key).or_else(|| resource.text(key));
    if !DATABASE_MARKERS.iter().any(|m| find(m).is_some()) {
        return None;
    }
    find("peer.service")
        .or_else(|| find("server.address"))
        .or_else(|| {
            find("network.peer.address").map(|host| match find("network.peer.port") {
                Some(port) => format!("{host}:{port}"),
                None => host,
            })
        })
        .or_else(|| find("db.namespace"))
        .or_else(|| find("db.name"))
        .or_else(|| find("db.system.name"))
        .or_else(|| find("db.system"))
}

#[cfg(test)]
mod tests;

/// Durable state: the request, failure and latency counts of every edge
/// and the unpaired and dropped span counts, so they continue across a
/// restart. Span halves waiting for their other half are not kept: they
/// would expire unpaired before the restart ended anyway.
impl crate::pipeline::durable::Durable for ServiceGraph {
    fn state_name(&self) -> &'static str {
        "servicegraph"
    }

    fn state_version(&self) -> u32 {
        1
    }

    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), crate::pipeline::durable::DurableError> {
        let state = self.state.lock();
        state.edges.save(out)?;
        state.spans.save(out)
    }

    fn restore(
        &self,
        snapshot: &[u8],
    ) -> Result<crate::pipeline::durable::Restored, crate::pipeline::durable::DurableError> {
        use crate::pipeline::durable::{DurableError, Restored};
        let labels = self.edge_labels.len();
        let buckets = self.bounds.len() + 1;
        let mut state = self.state.lock();
        let (rest, a, a_discarded) = state.edges.load(snapshot, |e: &EdgeSeries, n| {
            (n == labels || n == 0)
                && e.server.counts.len() == buckets
                && e.client.counts.len() == buckets
        })?;
        let (rest, b, b_discarded) = state.spans.load(rest, |_, n| n == 3 || n == 0)?;
        if !rest.is_empty() {
            return Err(DurableError::decode("bytes after the last series"));
        }
        Ok(Restored {
            items: a + b,
            discarded: a_discarded + b_discarded,
        })
    }
}
