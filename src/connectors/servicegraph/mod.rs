//! The service-graph connector: edges between services from pairs of
//! spans, with the metric names and labels Grafana's service graph (and
//! Tempo's metrics-generator, and the OTel Collector's servicegraph
//! connector) use.
//!
//! A request is a CLIENT (or PRODUCER) span with span id X in one service
//! and a SERVER (or CONSUMER) span whose parent span id is X, same trace,
//! in another. The halves may arrive in either order and in different
//! requests. Halves of the same traces request pair with each other as
//! they are read, whatever waits in the stores (so they never take a
//! place there, nor are dropped when the stores are full); a half whose
//! other side is not in its request waits in a [`store::PendingStore`]
//! (at most `max_items`, at most `wait`). When the pair completes, the
//! edge `client → server` counts one request. Besides pairs:
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
//! Every `flush_interval` (with `0s`, after each traces request and each
//! periodic [`ServiceGraph::expire`]) the changed series are emitted as cumulative OTLP metrics **without a
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
mod lookup;
mod requests;
pub mod store;

use crate::model::MetricsBatch;
use std::borrow::Cow;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use hashbrown::HashTable;
use parking_lot::Mutex;

use crate::model::TracesBatch;
use crate::model::otlp::ItemCount;
use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::model::otlp::metrics::{
    AggregationTemporality, Histogram, HistogramDataPoint, Metric, NumberDataPoint, Sum,
    metric::Data, number_data_point,
};
use crate::model::otlp::trace::span::SpanKind;
use crate::model::otlp::trace::status::StatusCode;
use crate::model::spare::{self, Spare};
use crate::model::wire::AnyValueView;
use crate::model::wire::traces::SpanView;
use crate::pipeline::{ConsumeResult, Consumed, MetricsConsumer, TracesConsumer};
use crate::telemetry::Telemetry;

use super::explicit::bucket_of;
use super::output::{Output, now_ns, overflow_attribute, string_attribute};
use super::table::{Table, Upserted, insert_entries, read_entries, resource_hash};
pub use config::{Dimension, ServiceGraphConfig};
use lookup::Wanted;
use requests::{Done, Roots, Summed, Sums};
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

    /// Records `seconds`, which falls in bucket `slot`.
    fn record_in(&mut self, slot: usize, seconds: f64) {
        if let Some(c) = self.counts.get_mut(slot) {
            *c += 1;
        }
        self.sum += seconds;
        self.count += 1;
    }

    fn add(&mut self, other: &Latency) {
        for (c, o) in self.counts.iter_mut().zip(&other.counts) {
            *c += o;
        }
        self.sum += other.sum;
        self.count += other.count;
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

impl EdgeSeries {
    fn new(bounds: usize) -> Self {
        Self {
            requests: 0,
            failed: 0,
            server: Latency::new(bounds),
            client: Latency::new(bounds),
        }
    }

    fn record(&mut self, failed: bool, client_seconds: f64, server_seconds: f64, bounds: &[f64]) {
        self.requests += 1;
        self.failed += u64::from(failed);
        let server_slot = bucket_of(server_seconds, bounds);
        self.server.record_in(server_slot, server_seconds);
        // One-sided edges time both sides with the one span they saw.
        let client_slot = if client_seconds == server_seconds {
            server_slot
        } else {
            bucket_of(client_seconds, bounds)
        };
        self.client.record_in(client_slot, client_seconds);
    }

    fn add(&mut self, other: &EdgeSeries) {
        self.requests += other.requests;
        self.failed += other.failed;
        self.server.add(&other.server);
        self.client.add(&other.client);
    }
}

/// One unpaired/dropped series.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct SpanCounts {
    unpaired: u64,
    dropped: u64,
}

impl SpanCounts {
    fn add(&mut self, other: &SpanCounts) {
        self.unpaired += other.unpaired;
        self.dropped += other.dropped;
    }
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

/// One pending store, on cache lines of its own.
#[repr(align(64))]
struct PendingShard(Mutex<PendingStore>);

/// The series, and what was logged about drops, behind one lock.
struct Series {
    edges: Table<EdgeSeries>,
    spans: Table<SpanCounts>,
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
///
/// Halves wait in [`PENDING_SHARDS`] stores chosen by trace id, each
/// behind its own lock, so two requests pair their spans side by side.
/// What a request decided is summed per series ([`requests::Sums`]) and
/// then applied under the one series lock, once per request.
pub struct ServiceGraph {
    config: ServiceGraphConfig,
    bounds: Vec<f64>,
    /// Attribute names of the edge dimensions: `client`, `server`,
    /// `connection_type`, then `client_<d>`, `server_<d>` per extra.
    edge_labels: Vec<String>,
    /// The attributes spans are read for.
    wanted: Wanted,
    /// Hashes the pair keys of a request's halves.
    key_hasher: store::KeyHasher,
    empty_resource_hash: u64,
    scope: InstrumentationScope,
    pending: [PendingShard; PENDING_SHARDS],
    /// Halves waiting in all stores.
    waiting: Arc<AtomicUsize>,
    series: Mutex<Series>,
    /// The latest time used (Unix ns), so emitted timestamps never go
    /// backwards.
    clock: AtomicU64,
    downstream: Arc<dyn MetricsConsumer>,
    telemetry: Arc<Telemetry>,
}

/// Pending stores: enough that two or more threads rarely want the same
/// one at once.
pub const PENDING_SHARDS: usize = 8;

/// The halves one request offers. Halves of the same request pair with
/// each other as they are read, without a store; the rest go to the
/// store of their trace, in arrival order.
struct Offers<'a> {
    /// Where each half of this request still waiting for its other side
    /// in it is in `halves`, by its key's hash.
    in_request: HashTable<u32>,
    hasher: &'a store::KeyHasher,
    /// Halves of this request in arrival order, with their place in the
    /// request and, for a client half, the peer attribute it names (read
    /// into the half only if it goes to a store: a half that pairs here
    /// never needs it); `None` once paired. Their service names are the
    /// request's own bytes until then.
    halves: Vec<Option<InRequest<'a>>>,
    /// Spans in the request.
    spans: usize,
    /// After [`Offers::spill`]: per store, the halves left for it (their
    /// place in `halves`) and the index of their service name in
    /// `services`.
    by_store: [Vec<(u32, u32)>; PENDING_SHARDS],
    /// The owned service names of the halves left, one per run of halves
    /// of one resource.
    services: Vec<Arc<str>>,
}

/// Where [`ServiceGraph::span`] puts what a span decides (halves to
/// pair, requests completed within the request, root spans), and the
/// span's place in the request.
type SpanRead<'r, 'a> = (
    &'r mut Offers<'a>,
    &'r mut Vec<(u32, Done<&'a str>)>,
    &'r mut Roots<'a>,
    u32,
);

/// A half as it waits in its request.
struct InRequest<'a> {
    at: u32,
    key: store::Key,
    half: Half<&'a str>,
    peer: Option<AnyValueView<'a>>,
}

impl<'a> Offers<'a> {
    /// For a request of `spans` spans; room is made at its first half
    /// (a request of root spans has none).
    fn new(spans: usize, hasher: &'a store::KeyHasher) -> Self {
        Self {
            in_request: HashTable::new(),
            hasher,
            halves: spare::relabel(spare::take(&SPARE_HALVES)),
            spans,
            by_store: Default::default(),
            services: Vec::new(),
        }
    }

    /// Pairs `half` with its other side if this request had it, into
    /// `done`; else keeps it for the stores. A second half of the same
    /// side and key replaces the first (keeping its place), as in a
    /// store.
    fn push(
        &mut self,
        at: u32,
        key: store::Key,
        (half, peer): (Half<&'a str>, Option<AnyValueView<'a>>),
        done: &mut Vec<(u32, Done<&'a str>)>,
    ) {
        let Offers {
            in_request,
            hasher,
            halves,
            spans,
            ..
        } = self;
        if in_request.capacity() == 0 {
            in_request.reserve(*spans, |_| 0);
        }
        let hash = hasher.hash(&key);
        let found = in_request.find_entry(hash, |&i| {
            halves
                .get(i as usize)
                .and_then(Option::as_ref)
                .is_some_and(|w| w.key == key)
        });
        match found {
            Ok(entry) => {
                let i = *entry.get() as usize;
                let Some(Some(waiting)) = halves.get_mut(i) else {
                    return;
                };
                if waiting.half.side == half.side {
                    (waiting.half, waiting.peer) = (half, peer);
                    return;
                }
                entry.remove();
                if let Some(waiting) = halves.get_mut(i).and_then(Option::take) {
                    let (client, server) = match half.side {
                        Side::Client => (half, waiting.half),
                        Side::Server => (waiting.half, half),
                    };
                    done.push((at, Done::Paired { client, server }));
                }
            }
            Err(_) => {
                if halves.capacity() == 0 {
                    halves.reserve(*spans);
                }
                let i = halves.len() as u32;
                halves.push(Some(InRequest {
                    at,
                    key,
                    half,
                    peer,
                }));
                let halves = &*halves;
                // The table is sized for every span: it never grows, so
                // this rehash is a formality.
                in_request.insert_unique(hash, i, |&j| {
                    halves
                        .get(j as usize)
                        .and_then(Option::as_ref)
                        .map_or(0, |w| hasher.hash(&w.key))
                });
            }
        }
    }

    /// Lists the halves left unpaired for their stores, in arrival order,
    /// client halves with the peer they name read into them, and owns
    /// their service names (once per run of halves of one resource).
    fn spill(&mut self) {
        let Offers {
            in_request,
            halves,
            by_store,
            services,
            ..
        } = self;
        if in_request.is_empty() {
            return;
        }
        // About each store's share of what is left.
        let share = in_request.len() / PENDING_SHARDS + 8;
        for list in by_store.iter_mut() {
            list.reserve(share);
        }
        let mut last: Option<&'a str> = None;
        for (i, waiting) in halves.iter_mut().enumerate() {
            let Some(waiting) = waiting else {
                continue;
            };
            let service = waiting.half.service;
            if !last.is_some_and(|name| std::ptr::eq(name, service)) {
                services.push(Arc::from(service));
                last = Some(service);
            }
            if let Some(peer) = waiting.peer.take() {
                waiting
                    .half
                    .set_peer(lookup::text_of(&peer).map(String::into_boxed_str));
            }
            let run = services.len().saturating_sub(1);
            by_store[store::shard_of(&waiting.key, PENDING_SHARDS)].push((i as u32, run as u32));
        }
    }

    /// Takes the halves [`Offers::spill`] listed for store `index`, in
    /// arrival order, each with its place in the request, its key and its
    /// service name owned.
    fn take_for(&mut self, index: usize) -> impl Iterator<Item = (u32, store::Key, Half)> + '_ {
        let Offers {
            halves,
            by_store,
            services,
            ..
        } = self;
        let listed = by_store
            .get_mut(index)
            .map(std::mem::take)
            .unwrap_or_default();
        listed.into_iter().filter_map(move |(i, run)| {
            let waiting = halves.get_mut(i as usize)?.take()?;
            let service = services.get(run as usize)?.clone();
            Some((waiting.at, waiting.key, waiting.half.with_service(service)))
        })
    }
}

impl Drop for Offers<'_> {
    fn drop(&mut self) {
        let halves = std::mem::take(&mut self.halves);
        spare::give(&SPARE_HALVES, spare::relabel(halves));
    }
}

thread_local! {
    /// Per-request lists, kept by each thread for its next request (see
    /// `model::spare`).
    static SPARE_HALVES: Spare<Option<InRequest<'static>>> = const { Spare::new() };
    static SPARE_DONE: Spare<(u32, Done)> = const { Spare::new() };
    static SPARE_HERE: Spare<(u32, Done<&'static str>)> = const { Spare::new() };
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
        let waiting = Arc::new(AtomicUsize::new(0));
        let pending = std::array::from_fn(|_| {
            PendingShard(Mutex::new(PendingStore::sharing(
                config.max_items,
                wait_ns,
                waiting.clone(),
            )))
        });
        Self {
            pending,
            waiting,
            series: Mutex::new(Series {
                edges: Table::new(config.cardinality_limit),
                spans: Table::new(config.cardinality_limit),
                drop_logged_ns: None,
                drops_unlogged: 0,
            }),
            clock: AtomicU64::new(0),
            bounds,
            edge_labels,
            wanted: Wanted::new(&config.peer_attributes, &config.dimensions),
            key_hasher: store::KeyHasher::default(),
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

    /// How often changed series are emitted (zero: after every request).
    pub fn flush_interval(&self) -> std::time::Duration {
        self.config.flush_interval.get()
    }

    /// Pairs the spans of a request as of `now_ns` (Unix ns), after expiring
    /// the halves whose wait ended, and counts the requests and halves
    /// that it completed; emits the changed series with a zero
    /// `flush_interval`.
    pub fn consume_batch_at(&self, batch: &TracesBatch, now_ns: u64) {
        let now = self.advance(now_ns);
        let mut offered = Offers::new(batch.item_count() as usize, &self.key_hasher);
        let mut done = spare::take(&SPARE_DONE);
        let mut here = spare::relabel(spare::take(&SPARE_HERE));
        let mut roots = Roots::default();
        let mut found = Vec::new();
        let mut at = 0u32;
        for rs in batch.resources() {
            let Some(resource) = rs.resource() else {
                continue;
            };
            let service = match resource.attributes.find("service.name") {
                Some(AnyValueView::String(s)) if !s.is_empty() => s,
                _ => continue,
            };
            let texts = self.wanted.resource_texts(&resource.attributes);
            for span in rs.spans() {
                // Spans count from 1: 0 is for halves of earlier requests.
                at = at.saturating_add(1);
                let read = (&mut offered, &mut here, &mut roots, at);
                self.span(&texts, service, &span, &mut found, read);
            }
        }
        offered.spill();
        // Every store is visited (each also expires its halves whose wait
        // ended), those free first: two requests at once each find work
        // elsewhere rather than queue behind one another.
        let mut tally = Tally::default();
        let mut left: u32 = (1 << PENDING_SHARDS) - 1;
        while left != 0 {
            let free = (0..PENDING_SHARDS)
                .filter(|i| left & (1 << i) != 0)
                .find_map(|i| self.pending[i].0.try_lock().map(|store| (i, store)));
            let (index, mut store) = free.unwrap_or_else(|| {
                let i = left.trailing_zeros() as usize;
                (i, self.pending[i].0.lock())
            });
            let offered = offered.take_for(index);
            self.pair(&mut store, offered, now, &mut done, &mut tally);
            left &= !(1 << index);
        }
        self.record(&done, &here, &roots, now, &mut tally);
        spare::give(&SPARE_DONE, done);
        spare::give(&SPARE_HERE, spare::relabel(here));
        if self.flush_interval().is_zero() {
            self.flush_at(now);
        }
    }

    /// Expires the halves whose wait ended (counting them unpaired or
    /// drawing virtual edges) and drops series idle for `series_ttl`, as of
    /// `now_ns`; emits what changed with a zero `flush_interval`. Called
    /// periodically by the app.
    pub fn expire(&self, now_ns: u64) -> Expired {
        let now = self.advance(now_ns);
        let mut done = Vec::new();
        let mut tally = Tally::default();
        for shard in self.pending.iter() {
            expire_store(&mut shard.0.lock(), now, &mut done, &mut tally);
        }
        self.record(&done, &[], &Roots::default(), now, &mut tally);
        if self.flush_interval().is_zero() {
            self.flush_at(now);
        }
        let ttl = u64::try_from(self.config.series_ttl.get().as_nanos()).unwrap_or(u64::MAX);
        let cutoff = now.saturating_sub(ttl);
        let mut series = self.series.lock();
        let dropped = series.edges.expire(cutoff) + series.spans.expire(cutoff);
        Expired {
            halves: tally.expired,
            series: dropped,
        }
    }

    /// Halves waiting for their pair.
    pub fn pending(&self) -> usize {
        self.waiting.load(Ordering::Relaxed)
    }

    /// Edge series held (not counting the overflow series).
    pub fn series(&self) -> usize {
        self.series.lock().edges.len()
    }

    /// Expires the halves of one store whose wait ended, then offers it
    /// the request's halves that belong to it, in arrival order.
    fn pair(
        &self,
        store: &mut PendingStore,
        offered: impl Iterator<Item = (u32, store::Key, Half)>,
        now: u64,
        done: &mut Vec<(u32, Done)>,
        tally: &mut Tally,
    ) {
        expire_store(store, now, done, tally);
        for (at, key, half) in offered {
            match store.offer(key, half, now) {
                Offer::Paired { client, server } => {
                    done.push((at, Done::Paired { client, server }))
                }
                Offer::Stored | Offer::Replaced => {}
                Offer::Full(half) => {
                    tally.dropped += 1;
                    done.push((at, Done::Dropped(half)));
                }
            }
        }
    }

    /// Moves the connector's clock to `now_ns`, never backwards.
    fn advance(&self, now_ns: u64) -> u64 {
        self.clock.fetch_max(now_ns, Ordering::Relaxed).max(now_ns)
    }

    /// Reads one span: a half to offer for pairing, a whole request to a
    /// database or from `user`, or nothing. `resource` holds its
    /// resource's texts of the wanted keys; `found` is scratch for the
    /// span's.
    fn span<'a>(
        &self,
        resource: &[Option<String>],
        service: &'a str,
        span: &SpanView<'a>,
        found: &mut Vec<Option<AnyValueView<'a>>>,
        (offered, done, roots, at): SpanRead<'_, 'a>,
    ) {
        let (side, messaging) = match SpanKind::try_from(span.kind) {
            Ok(SpanKind::Client) => (Side::Client, false),
            Ok(SpanKind::Producer) => (Side::Client, true),
            Ok(SpanKind::Server) => (Side::Server, false),
            Ok(SpanKind::Consumer) => (Side::Server, true),
            _ => return,
        };
        let root = side == Side::Server && span.parent_span_id.iter().all(|b| *b == 0);
        if root && !self.config.virtual_nodes {
            // Nothing can pair with a root span.
            return;
        }
        // A server span is read only for its dimensions.
        let dims = &self.config.dimensions;
        if side == Side::Client || !dims.is_empty() {
            self.wanted.find(&span.attributes(), found);
        } else {
            found.clear();
        }
        let attributes = self.wanted.found(found, resource);
        if root {
            // With virtual nodes a root span draws an edge from `user` at
            // once.
            let dims = attributes.dimension_values(dims);
            let failed = span.status_code == StatusCode::Error as i32;
            roots.record(at, service, dims, failed, span.seconds(), &self.bounds);
            return;
        }
        let half = Half::new(
            side,
            service,
            span.seconds(),
            span.status_code == StatusCode::Error as i32,
            messaging,
            attributes.dimension_values(dims),
        );
        let key = match side {
            Side::Client => {
                if !messaging && let Some(database) = attributes.database_name() {
                    let outcome = Done::OneSided {
                        half,
                        peer: Cow::Owned(database),
                        connection_type: DATABASE,
                    };
                    done.push((at, outcome));
                    return;
                }
                store::key(span.trace_id, span.span_id)
            }
            Side::Server => store::key(span.trace_id, span.parent_span_id),
        };
        let Some(key) = key else {
            return;
        };
        let peer = match side {
            Side::Client if self.config.virtual_nodes => attributes.peer(),
            _ => None,
        };
        offered.push(at, key, (half, peer), done);
    }

    /// Adds what a request or expiry round completed to the series, and
    /// its tally to the self-metrics: `done` by the stores, `here` within
    /// the request, `roots` its root spans.
    fn record(
        &self,
        done: &[(u32, Done)],
        here: &[(u32, Done<&str>)],
        roots: &Roots<'_>,
        now: u64,
        tally: &mut Tally,
    ) {
        if !done.is_empty() || !here.is_empty() || !roots.is_empty() {
            let defaults: Vec<Option<&str>> = self
                .config
                .dimensions
                .iter()
                .map(|d| d.default.as_deref())
                .collect();
            let mut sums = Sums::default();
            sums.add(done, &defaults, &self.bounds);
            sums.add(here, &defaults, &self.bounds);
            sums.add_roots(roots, &defaults, self.bounds.len());
            let bounds = self.bounds.len();
            let mut guard = self.series.lock();
            let series = &mut *guard;
            tally.overflow += self.add_sums(
                &mut series.edges,
                &sums.edges,
                now,
                || EdgeSeries::new(bounds),
                EdgeSeries::add,
                |s| s.requests,
            );
            tally.overflow += self.add_sums(
                &mut series.spans,
                &sums.spans,
                now,
                SpanCounts::default,
                SpanCounts::add,
                |c| c.unpaired + c.dropped,
            );
            if tally.dropped > 0 {
                self.log_drops(series, now, tally.dropped);
            }
        }
        let t = &self.telemetry;
        if tally.overflow > 0 {
            t.record_connector_overflow("servicegraph", tally.overflow);
        }
        if tally.unpaired_client + tally.unpaired_server > 0 {
            t.record_servicegraph_unpaired(tally.unpaired_client, tally.unpaired_server);
        }
        if tally.dropped > 0 {
            t.record_servicegraph_dropped(tally.dropped);
        }
        t.set_servicegraph_pending(self.pending() as u64);
    }

    /// Adds each of `sums` to its series in `table` (made by `make` when
    /// new); returns the items (`items` of a sum) that went to the
    /// overflow series.
    fn add_sums<'a, K: AsRef<[Option<&'a str>]>, V>(
        &self,
        table: &mut Table<V>,
        sums: &Summed<K, V>,
        now: u64,
        make: impl Fn() -> V,
        add: impl Fn(&mut V, &V),
        items: impl Fn(&V) -> u64,
    ) -> u64 {
        let mut overflowed = 0;
        for (dims, sum) in sums.iter() {
            let outcome = table.upsert(
                &[],
                self.empty_resource_hash,
                dims.as_ref(),
                now,
                &make,
                |v| add(v, sum),
            );
            if outcome == Upserted::Overflow {
                overflowed += items(sum);
            }
        }
        overflowed
    }

    /// Warns that the store is full, at most every ten seconds.
    fn log_drops(&self, series: &mut Series, now: u64, dropped: u64) {
        series.drops_unlogged += dropped;
        if series
            .drop_logged_ns
            .is_none_or(|at| now.saturating_sub(at) >= DROP_LOG_INTERVAL_NS)
        {
            tracing::warn!(
                dropped = series.drops_unlogged,
                max_items = self.config.max_items,
                "service-graph store full: spans dropped without pairing; raise \
                 connectors.servicegraph.max_items or shorten connectors.servicegraph.wait"
            );
            series.drop_logged_ns = Some(now);
            series.drops_unlogged = 0;
        }
    }

    /// Hands the series that changed since the last flush on as cumulative
    /// metrics. Runs after every request and expiry round with a zero
    /// `flush_interval`, else on that interval and at shutdown.
    pub fn flush(&self) {
        self.flush_at(now_ns());
    }

    /// [`ServiceGraph::flush`] as of `now_ns` (Unix ns).
    pub fn flush_at(&self, now_ns: u64) {
        let mut series = self.series.lock();
        // Under the lock, so emissions reach the exporter in time order.
        let now = self.advance(now_ns);
        let mut output = Output::new(self.scope.clone(), template());
        let bounds = &self.bounds;
        series.edges.drain_dirty(|_, entry| {
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
        series.spans.drain_dirty(|_, entry| {
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

/// Takes the halves of `store` whose wait ended: a client half naming its
/// peer becomes a virtual-node request (with `virtual_nodes`; only then
/// is the peer kept), any other is unpaired.
fn expire_store(
    store: &mut PendingStore,
    now: u64,
    done: &mut Vec<(u32, Done)>,
    tally: &mut Tally,
) {
    store.expire(now, |mut half| {
        tally.expired += 1;
        if half.side == Side::Client
            && let Some(peer) = half.take_peer()
        {
            let outcome = Done::OneSided {
                half,
                peer: Cow::Owned(peer.into()),
                connection_type: VIRTUAL_NODE,
            };
            done.push((0, outcome));
            return;
        }
        match half.side {
            Side::Client => tally.unpaired_client += 1,
            Side::Server => tally.unpaired_server += 1,
        }
        done.push((0, Done::Unpaired(half)));
    });
}

impl TracesConsumer for ServiceGraph {
    fn consume_traces(&self, batch: &TracesBatch) -> ConsumeResult {
        self.consume_batch_at(batch, now_ns());
        Ok(Consumed::all())
    }
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
        let series = self.series.lock();
        series.edges.save(out)?;
        series.spans.save(out)
    }

    fn restore(
        &self,
        snapshot: &[u8],
    ) -> Result<crate::pipeline::durable::Restored, crate::pipeline::durable::DurableError> {
        use crate::pipeline::durable::{DurableError, Restored};
        let labels = self.edge_labels.len();
        let buckets = self.bounds.len() + 1;
        // Both tables are read before either is filled: a snapshot that
        // fails half-way leaves nothing behind.
        let (rest, edges) = read_entries(snapshot, |e: &EdgeSeries, n| {
            (n == labels || n == 0)
                && e.server.counts.len() == buckets
                && e.client.counts.len() == buckets
        })?;
        let (rest, spans) = read_entries(rest, |_, n| n == 3 || n == 0)?;
        if !rest.is_empty() {
            return Err(DurableError::decode("bytes after the last series"));
        }
        let mut guard = self.series.lock();
        let state = &mut *guard;
        let (a, a_discarded) = insert_entries(edges, &mut [&mut state.edges], |_| 0);
        let (b, b_discarded) = insert_entries(spans, &mut [&mut state.spans], |_| 0);
        Ok(Restored {
            items: a + b,
            discarded: a_discarded + b_discarded,
        })
    }
}
