//! StreamGate's own telemetry: the `streamgate_*` self-metrics and the typed
//! events that count and log in one call.
//!
//! Every metric name is a constant in [`names`]. Components record through
//! [`Telemetry`] (cheap atomics, no locks on the hot path); the Prometheus
//! exporter reads a [`snapshot`](Telemetry::snapshot) when `/metrics` is
//! scraped. This module imports nothing else of StreamGate's.

pub mod allocator;
pub mod delivery;
pub mod events;
pub mod health;
mod histogram;
mod log_limit;
pub mod names;
pub mod process;
mod snapshot;

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

pub use delivery::{Delivery, DeliveryOutcome, DeliveryStats};
pub use histogram::AtomicHistogram;
pub use snapshot::{FamilySnapshot, MetricKind, SampleSnapshot};

/// The OTLP signal a request carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Signal {
    Traces,
    Metrics,
    Logs,
}

impl Signal {
    pub const ALL: [Signal; 3] = [Signal::Traces, Signal::Metrics, Signal::Logs];

    pub fn as_str(self) -> &'static str {
        match self {
            Signal::Traces => "traces",
            Signal::Metrics => "metrics",
            Signal::Logs => "logs",
        }
    }

    /// What one item of this signal is called in counts and messages.
    pub fn item_name(self) -> &'static str {
        match self {
            Signal::Traces => "spans",
            Signal::Metrics => "data points",
            Signal::Logs => "log records",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The wire transport a request arrived on.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transport {
    Grpc,
    Http,
}

impl Transport {
    pub const ALL: [Transport; 2] = [Transport::Grpc, Transport::Http];

    pub fn as_str(self) -> &'static str {
        match self {
            Transport::Grpc => "grpc",
            Transport::Http => "http",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// Why a receiver refused items.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RefusalReason {
    /// The body could not be decoded (400 / INVALID_ARGUMENT).
    Malformed,
    /// The body was larger than the limit (413 / RESOURCE_EXHAUSTED).
    TooLarge,
    /// Unknown content type or encoding (415).
    UnsupportedMediaType,
    /// The body did not arrive within the read timeout (408).
    Timeout,
    /// Missing or wrong credentials (401).
    Unauthenticated,
    /// The collector was overloaded or shutting down (429/503, retryable).
    Overloaded,
    /// Memory was above the soft limit, or the requests in flight at their
    /// budget (429, retryable).
    MemoryLimited,
    /// Decoded fine, but some items were rejected (`partial_success`).
    Rejected,
    /// The client closed the connection before the body's end.
    Aborted,
}

impl RefusalReason {
    pub const ALL: [RefusalReason; REASONS] = [
        RefusalReason::Malformed,
        RefusalReason::TooLarge,
        RefusalReason::UnsupportedMediaType,
        RefusalReason::Timeout,
        RefusalReason::Unauthenticated,
        RefusalReason::Overloaded,
        RefusalReason::MemoryLimited,
        RefusalReason::Rejected,
        RefusalReason::Aborted,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RefusalReason::Malformed => "malformed",
            RefusalReason::TooLarge => "too_large",
            RefusalReason::UnsupportedMediaType => "unsupported_media_type",
            RefusalReason::Timeout => "timeout",
            RefusalReason::Unauthenticated => "unauthenticated",
            RefusalReason::Overloaded => "overloaded",
            RefusalReason::MemoryLimited => "memory_limited",
            RefusalReason::Rejected => "rejected",
            RefusalReason::Aborted => "aborted",
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

const SIGNALS: usize = 3;
const TRANSPORTS: usize = 2;
const REASONS: usize = 9;

/// Connectors with self-metrics, in label order.
pub const CONNECTOR_NAMES: [&str; 3] = ["spanmetrics", "servicegraph", "logmetrics"];
const CONNECTORS: usize = CONNECTOR_NAMES.len();

/// Counters kept per (signal, transport).
#[derive(Default)]
struct PerRoute<T> {
    cells: [[T; TRANSPORTS]; SIGNALS],
}

impl<T> PerRoute<T> {
    fn get(&self, signal: Signal, transport: Transport) -> &T {
        &self.cells[signal.index()][transport.index()]
    }
}

/// All of StreamGate's self-metrics. Shared as `Arc<Telemetry>`.
pub struct Telemetry {
    started: Instant,
    started_unix: f64,
    accepted_items: PerRoute<AtomicU64>,
    refused_items: [PerRoute<AtomicU64>; REASONS],
    refused_requests: [PerRoute<AtomicU64>; REASONS],
    received_bytes: PerRoute<AtomicU64>,
    /// Strings of accepted requests that were not valid UTF-8, repaired.
    repaired_strings: PerRoute<AtomicU64>,
    /// Requests to no OTLP export (an unknown HTTP path or gRPC method),
    /// by transport.
    unknown_paths: [AtomicU64; 2],
    request_duration: PerRoute<AtomicHistogram>,
    active_series: AtomicI64,
    /// The memory limiter's soft and hard limits (0: off).
    memory_limits: [AtomicU64; 2],
    /// Request bytes held against the memory limiter's in-flight budget.
    in_flight_bytes: AtomicU64,
    expired_series: AtomicU64,
    removed_series: AtomicU64,
    scrapes: AtomicU64,
    /// The runtime ingest runs on, whose state `streamgate_runtime_*`
    /// shows (the admin server has a runtime of its own).
    runtime: std::sync::OnceLock<tokio::runtime::Handle>,
    /// Time spent rendering /metrics, and the last render's, in ns
    /// (waits for slow clients not counted).
    render_nanos: AtomicU64,
    last_render_nanos: AtomicU64,
    out_of_order_points: AtomicU64,
    exporter_overflow_points: AtomicU64,
    refusal_logs: [[log_limit::LogLimit; REASONS]; SIGNALS],
    connector_overflow: [AtomicU64; CONNECTORS],
    windows_series: AtomicU64,
    windows_skipped: AtomicU64,
    analysis_series: AtomicU64,
    analysis_skipped: AtomicU64,
    servicegraph_pending: AtomicU64,
    /// Unpaired halves: [client, server].
    servicegraph_unpaired: [AtomicU64; 2],
    servicegraph_dropped: AtomicU64,
    /// Alert notifications to Alertmanager: [sent, failed, dropped].
    alerting_notifications: [AtomicU64; 3],
    alerting_queue: AtomicI64,
    /// Active alerts by severity: [info, warning, critical].
    alerting_active: [AtomicI64; 3],
    health: parking_lot::Mutex<health::HealthWindow>,
    /// Profile pushes: [sent, failed, dropped].
    profiling_pushes: [AtomicU64; 3],
    /// The push exporters' counters, by [`Delivery`].
    delivery: [DeliveryStats; delivery::DELIVERIES],
    /// Failed TLS handshakes, by `TlsServer`.
    tls_handshake_failures: [AtomicU64; 3],
    /// Admin requests refused for missing or wrong credentials.
    admin_unauthenticated: AtomicU64,
    admin_overloaded: AtomicU64,
    /// The state store's work, by component.
    state: parking_lot::Mutex<std::collections::BTreeMap<&'static str, StateStats>>,
}

/// What the state store did for one component.
#[derive(Debug, Clone, Copy, Default)]
pub struct StateStats {
    pub snapshots_ok: u64,
    pub snapshots_failed: u64,
    /// Size of the last snapshot written.
    pub bytes: u64,
    /// Unix time the last snapshot written was begun (0: none yet): its
    /// state is at least this recent, so `now − this` bounds what a crash
    /// would lose however long the writing took.
    pub last_taken_unix: f64,
    /// Items taken back at start.
    pub restored: u64,
    pub restore_failures: u64,
}

/// A server of StreamGate's, as `server` label of its connection metrics.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TlsServer {
    OtlpGrpc,
    OtlpHttp,
    Admin,
}

impl TlsServer {
    pub const ALL: [TlsServer; 3] = [TlsServer::OtlpGrpc, TlsServer::OtlpHttp, TlsServer::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            TlsServer::OtlpGrpc => "otlp_grpc",
            TlsServer::OtlpHttp => "otlp_http",
            TlsServer::Admin => "admin",
        }
    }
}

/// What became of an alert notification.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotificationOutcome {
    /// Alertmanager accepted it.
    Sent,
    /// Refused or unreachable after the retries.
    Failed,
    /// Not queued: the queue was full.
    Dropped,
}

impl NotificationOutcome {
    pub const ALL: [NotificationOutcome; 3] = [
        NotificationOutcome::Sent,
        NotificationOutcome::Failed,
        NotificationOutcome::Dropped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            NotificationOutcome::Sent => "sent",
            NotificationOutcome::Failed => "failed",
            NotificationOutcome::Dropped => "dropped",
        }
    }
}

impl Default for Telemetry {
    fn default() -> Self {
        Self::new()
    }
}

impl Telemetry {
    /// Unix time at which this process started, in seconds.
    pub fn started_unix(&self) -> f64 {
        self.started_unix
    }

    pub fn new() -> Self {
        let started_unix = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_secs_f64())
            .unwrap_or(0.0);
        Self {
            started: Instant::now(),
            started_unix,
            accepted_items: PerRoute::default(),
            refused_items: Default::default(),
            refused_requests: Default::default(),
            received_bytes: PerRoute::default(),
            repaired_strings: PerRoute::default(),
            unknown_paths: Default::default(),
            request_duration: PerRoute::default(),
            active_series: AtomicI64::new(0),
            memory_limits: Default::default(),
            in_flight_bytes: AtomicU64::new(0),
            expired_series: AtomicU64::new(0),
            removed_series: AtomicU64::new(0),
            scrapes: AtomicU64::new(0),
            runtime: std::sync::OnceLock::new(),
            render_nanos: AtomicU64::new(0),
            last_render_nanos: AtomicU64::new(0),
            out_of_order_points: AtomicU64::new(0),
            exporter_overflow_points: AtomicU64::new(0),
            refusal_logs: Default::default(),
            connector_overflow: Default::default(),
            windows_series: AtomicU64::new(0),
            windows_skipped: AtomicU64::new(0),
            analysis_series: AtomicU64::new(0),
            analysis_skipped: AtomicU64::new(0),
            alerting_notifications: Default::default(),
            alerting_queue: AtomicI64::new(0),
            alerting_active: Default::default(),
            health: Default::default(),
            profiling_pushes: Default::default(),
            delivery: Default::default(),
            tls_handshake_failures: Default::default(),
            admin_unauthenticated: AtomicU64::new(0),
            admin_overloaded: AtomicU64::new(0),
            state: Default::default(),
            servicegraph_pending: AtomicU64::new(0),
            servicegraph_unpaired: Default::default(),
            servicegraph_dropped: AtomicU64::new(0),
        }
    }

    /// Time since this process started.
    pub fn uptime(&self) -> Duration {
        self.started.elapsed()
    }

    pub fn record_accepted(&self, signal: Signal, transport: Transport, items: u64) {
        self.accepted_items
            .get(signal, transport)
            .fetch_add(items, Ordering::Relaxed);
    }

    pub fn record_refused(
        &self,
        signal: Signal,
        transport: Transport,
        reason: RefusalReason,
        items: u64,
    ) {
        self.refused_items[reason.index()]
            .get(signal, transport)
            .fetch_add(items, Ordering::Relaxed);
        self.refused_requests[reason.index()]
            .get(signal, transport)
            .fetch_add(1, Ordering::Relaxed);
    }

    pub fn record_repaired_strings(&self, signal: Signal, transport: Transport, strings: u64) {
        self.repaired_strings
            .get(signal, transport)
            .fetch_add(strings, Ordering::Relaxed);
    }

    pub fn record_unknown_path(&self, transport: Transport) {
        self.unknown_paths[transport as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Requests to no OTLP export on `transport`.
    pub fn unknown_paths(&self, transport: Transport) -> u64 {
        self.unknown_paths[transport as usize].load(Ordering::Relaxed)
    }

    pub fn record_bytes(&self, signal: Signal, transport: Transport, bytes: u64) {
        self.received_bytes
            .get(signal, transport)
            .fetch_add(bytes, Ordering::Relaxed);
    }

    pub fn record_request_duration(&self, signal: Signal, transport: Transport, took: Duration) {
        self.request_duration
            .get(signal, transport)
            .observe(took.as_secs_f64());
    }

    /// The memory limiter's soft and hard limits, bytes (0: off).
    pub fn set_memory_limits(&self, soft: u64, hard: u64) {
        self.memory_limits[0].store(soft, Ordering::Relaxed);
        self.memory_limits[1].store(hard, Ordering::Relaxed);
    }

    /// Request bytes now held against the in-flight budget.
    pub fn set_in_flight_bytes(&self, bytes: u64) {
        self.in_flight_bytes.store(bytes, Ordering::Relaxed);
    }

    pub fn series_added(&self, n: u64) {
        self.active_series.fetch_add(n as i64, Ordering::Relaxed);
    }

    pub fn series_removed(&self, n: u64) {
        self.active_series.fetch_sub(n as i64, Ordering::Relaxed);
        self.removed_series.fetch_add(n, Ordering::Relaxed);
    }

    pub fn series_expired(&self, n: u64) {
        self.active_series.fetch_sub(n as i64, Ordering::Relaxed);
        self.expired_series.fetch_add(n, Ordering::Relaxed);
    }

    pub fn record_out_of_order(&self, points: u64) {
        self.out_of_order_points
            .fetch_add(points, Ordering::Relaxed);
    }

    /// Whether a refusal may be logged now (and how many were not since).
    pub fn refusal_log_admit(&self, signal: Signal, reason: RefusalReason) -> Option<u64> {
        self.refusal_logs[signal.index()][reason.index()].admit(self.started)
    }

    /// Points of series beyond the exporter's series limits, folded into
    /// their metric's overflow series.
    pub fn record_exporter_overflow(&self, points: u64) {
        self.exporter_overflow_points
            .fetch_add(points, Ordering::Relaxed);
    }

    /// Points a connector routed to its overflow series.
    pub fn record_connector_overflow(&self, connector: &str, points: u64) {
        if let Some(i) = CONNECTOR_NAMES.iter().position(|c| *c == connector) {
            self.connector_overflow[i].fetch_add(points, Ordering::Relaxed);
        }
    }

    /// Series the window processor analyses now.
    pub fn set_windows_series(&self, n: u64) {
        self.windows_series.store(n, Ordering::Relaxed);
    }

    /// Points not analysed because `max_series` was reached.
    pub fn record_windows_skipped(&self, points: u64) {
        self.windows_skipped.fetch_add(points, Ordering::Relaxed);
    }

    /// Span halves the service-graph connector holds waiting for their pair.
    pub fn set_servicegraph_pending(&self, halves: u64) {
        self.servicegraph_pending.store(halves, Ordering::Relaxed);
    }

    /// Client and server span halves whose pair did not arrive in time.
    pub fn record_servicegraph_unpaired(&self, client: u64, server: u64) {
        self.servicegraph_unpaired[0].fetch_add(client, Ordering::Relaxed);
        self.servicegraph_unpaired[1].fetch_add(server, Ordering::Relaxed);
    }

    /// Span halves dropped because the service-graph store was full.
    pub fn record_servicegraph_dropped(&self, spans: u64) {
        self.servicegraph_dropped
            .fetch_add(spans, Ordering::Relaxed);
    }

    /// Series the analysis processor analyses now.
    pub fn set_analysis_series(&self, n: u64) {
        self.analysis_series.store(n, Ordering::Relaxed);
    }

    /// Points not analysed because the analysis `max_series` was reached.
    /// Sum of a per-route counter over every signal and transport.
    fn route_sum(cells: &PerRoute<AtomicU64>) -> u64 {
        cells
            .cells
            .iter()
            .flatten()
            .map(|c| c.load(Ordering::Relaxed))
            .sum()
    }

    /// The counters overall health is judged on.
    pub fn health_counters(&self) -> health::HealthCounters {
        let requests = |r: RefusalReason| Self::route_sum(&self.refused_requests[r.index()]);
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        health::HealthCounters {
            overloaded_requests: requests(RefusalReason::Overloaded),
            memory_limited_requests: requests(RefusalReason::MemoryLimited),
            refused_items: requests(RefusalReason::Malformed)
                + requests(RefusalReason::TooLarge)
                + requests(RefusalReason::UnsupportedMediaType)
                + requests(RefusalReason::Timeout)
                + requests(RefusalReason::Unauthenticated),
            rejected_items: Self::route_sum(&self.refused_items[RefusalReason::Rejected.index()]),
            limited_points: self.connector_overflow.iter().map(load).sum::<u64>()
                + load(&self.exporter_overflow_points)
                + load(&self.windows_skipped)
                + load(&self.analysis_skipped),
            dropped_spans: load(&self.servicegraph_dropped),
            failed_notifications: self.notifications(NotificationOutcome::Failed)
                + self.notifications(NotificationOutcome::Dropped),
            sent_notifications: self.notifications(NotificationOutcome::Sent),
            failed_snapshots: self.state.lock().values().map(|s| s.snapshots_failed).sum(),
            lost_exports: self
                .delivery
                .iter()
                .map(|d| d.items(DeliveryOutcome::Failed) + d.items(DeliveryOutcome::Dropped))
                .sum(),
            sent_exports: self
                .delivery
                .iter()
                .map(|d| d.items(DeliveryOutcome::Sent))
                .sum(),
            retried_exports: self
                .delivery
                .iter()
                .map(|d| load(&d.requests_retried))
                .sum(),
        }
    }

    /// Requests refused for any reason, over every signal and transport.
    pub fn refused_requests_total(&self) -> u64 {
        self.refused_requests.iter().map(Self::route_sum).sum()
    }

    /// Requests refused so far, by reason, over every signal and transport.
    pub fn refused_requests_by_reason(&self) -> Vec<(RefusalReason, u64)> {
        RefusalReason::ALL
            .iter()
            .map(|r| (*r, Self::route_sum(&self.refused_requests[r.index()])))
            .collect()
    }

    /// Takes a health sample now (called every few seconds).
    pub fn sample_health(&self) {
        let now = self.uptime().as_secs_f64();
        let counters = self.health_counters();
        self.health.lock().sample(now, counters);
    }

    /// Overall health from the recent samples.
    pub fn health(&self, ready: bool, draining: bool) -> health::HealthReport {
        let counters = self.health_counters();
        self.health.lock().assess(ready, draining, counters)
    }

    /// Counts one profile push by outcome.
    pub fn record_tls_handshake_failure(&self, server: TlsServer) {
        self.tls_handshake_failures[server as usize].fetch_add(1, Ordering::Relaxed);
    }

    pub fn tls_handshake_failures(&self, server: TlsServer) -> u64 {
        self.tls_handshake_failures[server as usize].load(Ordering::Relaxed)
    }

    /// Counts a snapshot of `component`: written whole (`ok`, `bytes`
    /// long, begun at `taken` Unix seconds) or failed.
    pub fn record_state_snapshot(
        &self,
        component: &'static str,
        ok: bool,
        bytes: u64,
        taken_unix: f64,
    ) {
        let mut state = self.state.lock();
        let stats = state.entry(component).or_default();
        if ok {
            stats.snapshots_ok += 1;
            stats.bytes = bytes;
            stats.last_taken_unix = taken_unix;
        } else {
            stats.snapshots_failed += 1;
        }
    }

    pub fn set_state_restored(&self, component: &'static str, items: u64) {
        self.state.lock().entry(component).or_default().restored = items;
    }

    pub fn record_state_restore_failure(&self, component: &'static str) {
        self.state
            .lock()
            .entry(component)
            .or_default()
            .restore_failures += 1;
    }

    /// What the state store did, by component.
    pub fn state_stats(&self) -> Vec<(&'static str, StateStats)> {
        self.state.lock().iter().map(|(k, v)| (*k, *v)).collect()
    }

    pub fn record_admin_unauthenticated(&self) {
        self.admin_unauthenticated.fetch_add(1, Ordering::Relaxed);
    }

    /// Counts a request the admin server refused with 503 because
    /// `server.max_concurrent_requests` were in flight.
    pub fn record_admin_overloaded(&self) {
        self.admin_overloaded.fetch_add(1, Ordering::Relaxed);
    }

    /// The counters of one push exporter.
    pub fn delivery(&self, which: Delivery) -> &DeliveryStats {
        &self.delivery[which as usize]
    }

    pub fn record_profile_push(&self, outcome: NotificationOutcome) {
        self.profiling_pushes[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Counts one alert notification by outcome.
    pub fn record_notification(&self, outcome: NotificationOutcome) {
        self.alerting_notifications[outcome as usize].fetch_add(1, Ordering::Relaxed);
    }

    /// Notifications waiting for delivery.
    pub fn set_alerting_queue(&self, n: usize) {
        self.alerting_queue.store(n as i64, Ordering::Relaxed);
    }

    /// Active alerts by severity: [info, warning, critical].
    pub fn set_active_alerts(&self, counts: [usize; 3]) {
        for (slot, n) in self.alerting_active.iter().zip(counts) {
            slot.store(n as i64, Ordering::Relaxed);
        }
    }

    /// Notifications counted so far with `outcome`.
    pub fn notifications(&self, outcome: NotificationOutcome) -> u64 {
        self.alerting_notifications[outcome as usize].load(Ordering::Relaxed)
    }

    pub fn record_analysis_skipped(&self, points: u64) {
        self.analysis_skipped.fetch_add(points, Ordering::Relaxed);
    }

    pub fn scraped(&self) {
        self.scrapes.fetch_add(1, Ordering::Relaxed);
    }

    /// Sets the runtime `streamgate_runtime_*` describes (the first call
    /// wins); until then, the runtime a snapshot is taken on.
    pub fn set_runtime(&self, handle: tokio::runtime::Handle) {
        let _ = self.runtime.set(handle);
    }

    /// The runtime `streamgate_runtime_*` describes, if any.
    pub(crate) fn runtime(&self) -> Option<tokio::runtime::Handle> {
        self.runtime
            .get()
            .cloned()
            .or_else(|| tokio::runtime::Handle::try_current().ok())
    }

    /// One /metrics exposition took `spent` to render (not counting
    /// waits for the client to read).
    pub fn rendered(&self, spent: std::time::Duration) {
        let ns = u64::try_from(spent.as_nanos()).unwrap_or(u64::MAX);
        self.render_nanos.fetch_add(ns, Ordering::Relaxed);
        self.last_render_nanos.store(ns, Ordering::Relaxed);
    }

    /// Items accepted so far for one signal on one transport.
    pub fn accepted(&self, signal: Signal, transport: Transport) -> u64 {
        self.accepted_items
            .get(signal, transport)
            .load(Ordering::Relaxed)
    }

    /// Items accepted so far for one signal over every transport.
    pub fn accepted_total(&self, signal: Signal) -> u64 {
        Transport::ALL
            .iter()
            .map(|t| self.accepted_items.get(signal, *t).load(Ordering::Relaxed))
            .sum()
    }

    /// Series currently held by the Prometheus exporter.
    pub fn active_series(&self) -> i64 {
        self.active_series.load(Ordering::Relaxed)
    }
}
