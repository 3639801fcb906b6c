//! Wires the components from a resolved config, runs them, and drains them
//! on shutdown: readiness goes false, receivers refuse new requests and
//! stop accepting, in-flight requests finish, then the process exits.

use std::net::SocketAddr;
use std::sync::Arc;

use tokio::net::TcpListener;

mod admin;
pub mod hangup;
pub mod probe;
pub mod state;

#[cfg(test)]
mod analysis_labels_tests;

use crate::api::{self, ApiState, Health, Listeners, Tail};
use crate::config::Config;
use crate::connectors::logmetrics::LogMetrics;
use crate::connectors::servicegraph::ServiceGraph;
use crate::connectors::spanmetrics::SpanMetrics;
use crate::exporters::alertmanager::Alerting;
use crate::exporters::prometheus::{self, PrometheusExporter};
use crate::pipeline::durable::Durable;
use crate::pipeline::{
    Discard, Fanout, LogsConsumer, MetricsConsumer, Shutdown, ShutdownTrigger, TracesConsumer,
};
use crate::processors::analysis::AnalysisProcessor;
use crate::processors::windows::WindowProcessor;
use crate::receivers::otlp::{self, Admission, Consumers, OtlpReceiver};
use crate::telemetry::Telemetry;

/// Why the collector could not run.
#[derive(Debug, thiserror::Error)]
pub enum AppError {
    #[error(
        "the state of {0} was not written at shutdown (see the error above); what it took since its last snapshot will not be restored"
    )]
    StateNotSaved(String),
    #[error(transparent)]
    Receiver(#[from] otlp::ReceiverError),
    #[error("cannot listen on {endpoint} (server.endpoint): {source}")]
    ServerBind {
        endpoint: SocketAddr,
        source: std::io::Error,
    },
    #[error(transparent)]
    Tls(#[from] otlp::tls::TlsError),
    #[error(transparent)]
    State(#[from] state::StateError),
    #[error(transparent)]
    Exporter(#[from] crate::exporters::delivery::DeliveryError),
    #[error("shutdown did not finish within {0:?}; in-flight requests were abandoned")]
    DrainTimeout(std::time::Duration),
}

/// The built collector, not yet listening.
pub struct App {
    config: Config,
    telemetry: Arc<Telemetry>,
    exporter: Arc<PrometheusExporter>,
    receiver: OtlpReceiver,
    health: Arc<Health>,
    spanmetrics: Option<Arc<SpanMetrics>>,
    servicegraph: Option<Arc<ServiceGraph>>,
    logmetrics: Option<Arc<LogMetrics>>,
    windows: Option<Arc<WindowProcessor>>,
    analysis: Option<Arc<AnalysisProcessor>>,
    tail: Arc<Tail>,
    forwarder: Option<Arc<crate::exporters::otlp::OtlpForwarder>>,
}

/// A started collector: its addresses and how to stop it.
pub struct Running {
    pub listeners: Listeners,
    trigger: ShutdownTrigger,
    admission: Admission,
    health: Arc<Health>,
    tasks: Vec<tokio::task::JoinHandle<()>>,
    drain_timeout: std::time::Duration,
    state: Option<Arc<state::StateStore>>,
}

impl App {
    /// Builds every component from the config.
    pub fn build(config: Config) -> App {
        let telemetry = Arc::new(Telemetry::new());
        let exporter = Arc::new(
            prometheus::PrometheusExporter::new(config.prometheus.clone(), telemetry.clone())
                .with_collector_instance(&config.collector_instance),
        );
        exporter
            .store()
            .set_watch_limits(prometheus::store::WatchLimits {
                max_series: config.api.history.max_series,
                points: config.api.history.points,
            });
        // Metrics flow: receivers and connectors → windows → analysis → exporter.
        let analysis = config.analysis.enabled.then(|| {
            let analysis = Arc::new(AnalysisProcessor::new(
                config.analysis.clone(),
                exporter.clone(),
                exporter.clone(),
                telemetry.clone(),
            ));
            // Its baselines and forecasts are rendered from its state.
            let source: Arc<dyn crate::pipeline::derived::DerivedSource> = analysis.clone();
            exporter.attach_derived(Arc::downgrade(&source));
            analysis
        });
        let after_windows: Arc<dyn MetricsConsumer> = match &analysis {
            Some(a) => a.clone(),
            None => exporter.clone(),
        };
        let windows = config.windows.enabled.then(|| {
            // Its gauges are rendered from its state too; the analysis
            // processor is handed the ones it selects.
            let observer = analysis
                .clone()
                .map(|a| a as Arc<dyn crate::pipeline::derived::DerivedObserver>);
            let windows = Arc::new(WindowProcessor::new(
                config.windows.clone(),
                after_windows.clone(),
                exporter.clone(),
                observer,
                telemetry.clone(),
            ));
            let source: Arc<dyn crate::pipeline::derived::DerivedSource> = windows.clone();
            exporter.attach_derived(Arc::downgrade(&source));
            windows
        });
        let metrics: Arc<dyn MetricsConsumer> = match &windows {
            Some(w) => w.clone(),
            None => after_windows,
        };
        let observer = windows
            .clone()
            .map(|w| w as Arc<dyn crate::pipeline::ObservationConsumer>);

        let spanmetrics = config.spanmetrics.enabled.then(|| {
            Arc::new(SpanMetrics::new(
                config.spanmetrics.clone(),
                metrics.clone(),
                observer.clone(),
                telemetry.clone(),
            ))
        });
        let servicegraph = config.servicegraph.enabled.then(|| {
            Arc::new(ServiceGraph::new(
                config.servicegraph.clone(),
                metrics.clone(),
                telemetry.clone(),
            ))
        });
        let logmetrics = config.logmetrics.enabled.then(|| {
            Arc::new(LogMetrics::new(
                config.logmetrics.clone(),
                metrics.clone(),
                telemetry.clone(),
            ))
        });

        // What the receivers accept may also go on, unchanged, over OTLP.
        let forwarder =
            crate::exporters::otlp::OtlpForwarder::build(&config.otlp_exporter, telemetry.clone());
        let mut traces: Vec<Arc<dyn TracesConsumer>> = Vec::new();
        if let Some(f) = forwarder.as_ref().filter(|f| f.forwards_traces()) {
            traces.push(f.clone());
        }
        if let Some(c) = &spanmetrics {
            traces.push(c.clone());
        }
        if let Some(c) = &servicegraph {
            traces.push(c.clone());
        }
        let mut logs: Vec<Arc<dyn LogsConsumer>> = Vec::new();
        if let Some(f) = forwarder.as_ref().filter(|f| f.forwards_logs()) {
            logs.push(f.clone());
        }
        if let Some(c) = &logmetrics {
            logs.push(c.clone());
        }
        // The API's tail of recent spans and logs sees what the others took.
        let tail = Arc::new(Tail::new(&config.api.tail));
        if config.api.tail.spans > 0 {
            traces.push(tail.clone());
        }
        if config.api.tail.logs > 0 {
            logs.push(tail.clone());
        }
        let received_metrics: Arc<dyn MetricsConsumer> =
            match forwarder.as_ref().filter(|f| f.forwards_metrics()) {
                Some(f) => Arc::new(Fanout::new(vec![
                    metrics,
                    f.clone() as Arc<dyn MetricsConsumer>,
                ])),
                None => metrics,
            };
        let consumers = Consumers {
            traces: if traces.is_empty() {
                Arc::new(Discard)
            } else {
                Arc::new(Fanout::new(traces))
            },
            metrics: received_metrics,
            logs: if logs.is_empty() {
                Arc::new(Discard)
            } else {
                Arc::new(Fanout::new(logs))
            },
        };
        let receiver = otlp::build(config.otlp.clone(), consumers, telemetry.clone());
        App {
            config,
            telemetry,
            exporter,
            receiver,
            health: Arc::new(Health::default()),
            spanmetrics,
            servicegraph,
            logmetrics,
            windows,
            analysis,
            tail,
            forwarder,
        }
    }

    pub fn exporter(&self) -> &Arc<PrometheusExporter> {
        &self.exporter
    }

    /// Binds every listener and starts serving.
    pub async fn start(self) -> Result<Running, AppError> {
        let (trigger, shutdown) = Shutdown::new();
        let mut tasks = Vec::new();

        let admin_tls = admin::tls(&self.config.server, self.telemetry.clone())?;
        // Push exporters are set up (and their files read) before any
        // listener binds, so a bad setting stops the start cleanly.
        if let Some(remote) = crate::exporters::remote_write::start(
            &self.config.remote_write,
            self.exporter.clone(),
            shutdown.clone(),
        )? {
            tasks.extend(remote);
        }
        if let Some(forwarder) = &self.forwarder {
            tasks.extend(forwarder.start(shutdown.clone())?);
        }
        let endpoint = self.config.server.endpoint.addr();
        let listener = TcpListener::bind(endpoint)
            .await
            .map_err(|source| AppError::ServerBind { endpoint, source })?;
        let server_addr = listener.local_addr().unwrap_or(endpoint);
        let scheme = if admin_tls.is_some() { "https" } else { "http" };

        let recommendations = self
            .analysis
            .clone()
            .map(|a| a as Arc<dyn crate::model::recommendation::RecommendationSource>);
        let (alerting, notifier_task) = Alerting::new(
            self.config.alerting.clone(),
            recommendations.clone(),
            self.telemetry.clone(),
            &format!("{scheme}://{server_addr}"),
            shutdown.clone(),
        );

        // Saved state is read back before any data can arrive.
        let mut durable = self.durable_components();
        durable.push(alerting.clone());
        let store = state::StateStore::open(&self.config.state, durable, self.telemetry.clone())?
            .map(Arc::new);
        if let Some(store) = &store {
            store.restore_all();
            // Restored connector series are on /metrics now, not at the
            // next record or flush (and the reports' first period starts
            // from their totals).
            if let Some(c) = &self.logmetrics {
                c.flush();
            }
            if let Some(c) = &self.spanmetrics {
                c.flush();
            }
            tasks.push(tokio::spawn(store.clone().run(shutdown.clone())));
        }

        let received = self.receiver.start(shutdown.clone()).await?;
        tasks.extend(received.tasks);

        let listeners = Listeners {
            otlp_grpc: received.grpc_addr.map(|a| a.to_string()),
            otlp_http: received.http_addr.map(|a| a.to_string()),
            server: Some(server_addr.to_string()),
        };
        tasks.extend(notifier_task);
        if !self.config.alerting.url.is_empty() {
            tracing::info!(url = %self.config.alerting.url, "pushing alerts to Alertmanager");
        }
        tasks.push(tokio::spawn(alerting.clone().run(shutdown.clone())));
        tasks.push(tokio::spawn(sample_health(
            self.telemetry.clone(),
            shutdown.clone(),
        )));
        let alerts_query = alerting.clone() as Arc<dyn crate::pipeline::query::AlertsQuery>;
        let reports = Arc::new(api::reports::Reports::new(
            self.config.api.reports.clone(),
            self.telemetry.clone(),
            self.exporter.clone(),
            recommendations.clone(),
            Some(alerts_query.clone()),
        ));
        tasks.push(tokio::spawn(reports.clone().run(shutdown.clone())));
        let api_state = Arc::new(ApiState {
            health: self.health.clone(),
            telemetry: self.telemetry.clone(),
            listeners: parking_lot::RwLock::new(listeners.clone()),
            series: self.exporter.clone(),
            tail: self.tail.clone(),
            config: self.config.api.clone(),
            recommendations,
            alerts: Some(alerts_query),
            reports: Some(reports),
        });
        let memory = otlp::MemoryLimits::resolve(&self.config.otlp.memory_limiter);
        let profiling = crate::exporters::pprof::Profiling::new(
            self.config.pprof.clone(),
            shutdown.clone(),
            memory.enabled().then_some(memory.soft),
        );
        if !self.config.pprof.pyroscope.url.is_empty() {
            tracing::info!(url = %self.config.pprof.pyroscope.url, "pushing CPU profiles to Pyroscope");
            tasks.push(tokio::spawn(
                profiling
                    .clone()
                    .run_continuous(self.telemetry.clone(), shutdown.clone()),
            ));
        }
        let mut router = api::router(api_state.clone())
            .merge(self.exporter.router())
            .merge(profiling.router());
        if self.config.api.console.enabled {
            let analysis = self
                .analysis
                .clone()
                .map(|a| a as Arc<dyn crate::model::recommendation::AnalysisSnapshot>);
            let recorder = Arc::new(api::console::Recorder::new(
                self.telemetry.clone(),
                analysis,
                self.config.api.console.sample_interval.get(),
                self.config.api.console.points,
            ));
            tasks.push(tokio::spawn(recorder.clone().run(shutdown.clone())));
            let console = Arc::new(api::console::Console {
                api: api_state,
                recorder,
                destinations: self.destinations(),
            });
            router = router.merge(api::console::router(console));
        }
        let router = router.fallback(api::not_found);
        tracing::info!(
            addr = %server_addr,
            tls = self.config.server.tls.is_some(),
            "admin server listening (/metrics, /healthz, /readyz, /api/v1)"
        );
        self.telemetry
            .set_runtime(tokio::runtime::Handle::current());
        let router = admin::guard(router, &self.config.server, self.telemetry.clone());
        let router = admin::require_client_certificates(router, self.telemetry.clone());
        let router = admin::limit(
            router,
            self.config.server.max_concurrent_requests,
            self.telemetry.clone(),
        );
        let admin = admin::serve(listener, router, admin_tls, shutdown.clone())
            .map_err(|source| AppError::ServerBind { endpoint, source })?;
        tasks.push(tokio::task::spawn_blocking(move || {
            if admin.join().is_err() {
                tracing::error!("admin server thread panicked");
            }
        }));
        tasks.push(tokio::spawn(
            self.exporter.clone().run_expiry(shutdown.clone()),
        ));

        if let Some(w) = &self.windows {
            tasks.push(tokio::spawn(w.clone().run(shutdown.clone())));
        }
        if let Some(a) = &self.analysis {
            tasks.push(tokio::spawn(a.clone().run(shutdown.clone())));
        }
        tasks.push(tokio::spawn(expire_connectors(
            self.spanmetrics.clone(),
            self.servicegraph.clone(),
            self.logmetrics.clone(),
            shutdown,
        )));

        self.health.set_ready();
        Ok(Running {
            listeners,
            trigger,
            admission: self.receiver.admission(),
            health: self.health,
            tasks,
            drain_timeout: self.config.server.shutdown_timeout.get(),
            state: store,
        })
    }

    /// Where StreamGate pushes, for the console's overview.
    fn destinations(&self) -> api::console::Destinations {
        let c = &self.config;
        let mut out = Vec::new();
        let mut add = |what: &str, to: &str| {
            if !to.is_empty() {
                out.push((what.to_string(), to.to_string()));
            }
        };
        add("Alertmanager", &c.alerting.url);
        add("Prometheus remote write", &c.remote_write.url);
        add("OTLP forwarding", &c.otlp_exporter.endpoint);
        add("Pyroscope", &c.pprof.pyroscope.url);
        out
    }

    /// The components whose state is kept across restarts.
    fn durable_components(&self) -> Vec<Arc<dyn Durable>> {
        let mut out: Vec<Arc<dyn Durable>> = vec![self.exporter.clone()];
        if let Some(a) = &self.analysis {
            out.push(a.clone());
        }
        if let Some(w) = &self.windows {
            out.push(w.clone());
        }
        if let Some(c) = &self.spanmetrics {
            out.push(c.clone());
        }
        if let Some(c) = &self.logmetrics {
            out.push(c.clone());
        }
        if let Some(c) = &self.servicegraph {
            out.push(c.clone());
        }
        out
    }
}

impl Running {
    /// Stops accepting, lets in-flight requests finish, and waits for every
    /// server (at most `server.shutdown_timeout`).
    pub async fn shutdown(self) -> Result<(), AppError> {
        self.health.set_draining();
        self.admission.start_draining();
        self.trigger.trigger();
        let all = futures_join(self.tasks);
        let drained = tokio::time::timeout(self.drain_timeout, all).await;
        // Everything acknowledged has been applied: keep it.
        let mut unsaved = Vec::new();
        if let Some(store) = self.state {
            let started = std::time::Instant::now();
            match tokio::task::spawn_blocking(move || store.snapshot_all()).await {
                Ok(failed) => unsaved = failed,
                Err(_) => {
                    tracing::error!("the final state snapshot panicked");
                    unsaved.push("every component");
                }
            }
            if unsaved.is_empty() {
                tracing::info!(
                    took_ms = started.elapsed().as_millis() as u64,
                    "state written at shutdown"
                );
            }
        }
        drained.map_err(|_| AppError::DrainTimeout(self.drain_timeout))?;
        match unsaved.is_empty() {
            true => Ok(()),
            false => Err(AppError::StateNotSaved(unsaved.join(", "))),
        }
    }
}

/// Flushes the span-metrics and service-graph connectors every
/// `flush_interval` (and once at shutdown); drops idle connector series
/// every 10 s until shutdown; every second, expires the service graph's
/// span halves whose wait ended (it also does so on each traces request,
/// but unpaired spans must be counted when no traffic comes).
async fn expire_connectors(
    spanmetrics: Option<Arc<SpanMetrics>>,
    servicegraph: Option<Arc<ServiceGraph>>,
    logmetrics: Option<Arc<LogMetrics>>,
    shutdown: Shutdown,
) {
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    let mut pairing_tick = tokio::time::interval(std::time::Duration::from_secs(1));
    pairing_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let (span_every, mut span_flush) =
        flush_ticks(spanmetrics.as_ref().map(|c| c.flush_interval()));
    let (graph_every, mut graph_flush) =
        flush_ticks(servicegraph.as_ref().map(|c| c.flush_interval()));
    let stop = shutdown.wait();
    tokio::pin!(stop);
    loop {
        tokio::select! {
            _ = &mut stop => {
                // What was counted since the last flush still goes out.
                if let Some(c) = &spanmetrics {
                    c.flush();
                }
                if let Some(c) = &servicegraph {
                    c.flush();
                }
                return;
            }
            _ = span_flush.tick(), if span_every => {
                if let Some(c) = &spanmetrics {
                    c.flush();
                }
            }
            _ = graph_flush.tick(), if graph_every => {
                if let Some(c) = &servicegraph {
                    c.flush();
                }
            }
            _ = pairing_tick.tick(), if servicegraph.is_some() => {
                if let Some(c) = &servicegraph {
                    c.expire(crate::connectors::output::now_ns());
                }
            }
            _ = tick.tick() => {
                let now = crate::connectors::output::now_ns();
                if let Some(c) = &spanmetrics {
                    c.expire(now);
                }
                if let Some(c) = &logmetrics {
                    c.expire(now);
                }
            }
        }
    }
}

/// A connector's flush timer: whether it ticks (a connector with a
/// non-zero interval), and the timer.
fn flush_ticks(interval: Option<std::time::Duration>) -> (bool, tokio::time::Interval) {
    let every = interval.filter(|d| !d.is_zero());
    let mut timer = tokio::time::interval(every.unwrap_or(std::time::Duration::MAX / 4));
    timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    (every.is_some(), timer)
}

async fn futures_join(tasks: Vec<tokio::task::JoinHandle<()>>) {
    for task in tasks {
        if let Err(e) = task.await {
            tracing::error!(error = %e, "a server task failed during shutdown");
        }
    }
}

/// What `streamgate validate` checks beyond the file itself, as the
/// start would: every configured TLS certificate, key and client CA
/// loads, and the exporters' endpoints, headers and client TLS files
/// make a target (nothing is sent).
pub fn check_files(config: &Config) -> Result<(), AppError> {
    if config.otlp_exporter.enabled() {
        crate::exporters::otlp::target(&config.otlp_exporter, "/v1/metrics")?;
    }
    if config.remote_write.enabled() {
        crate::exporters::remote_write::target(&config.remote_write)?;
    }
    let otlp = [
        ("receivers.otlp.grpc.tls", &config.otlp.grpc),
        ("receivers.otlp.http.tls", &config.otlp.http),
    ];
    for (key, server) in otlp {
        if let Some(tls) = server.tls.as_ref().filter(|_| server.enabled) {
            otlp::tls::check(tls, key)?;
        }
    }
    if let Some(tls) = &config.server.tls {
        otlp::tls::check(tls, "server.tls")?;
    }
    Ok(())
}

/// Waits for SIGINT or SIGTERM; calls `on_hangup` on each SIGHUP
/// (which would otherwise end the process without a drain).
pub async fn wait_for_signal(on_hangup: impl Fn()) {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let term = async {
        use tokio::signal::unix::{SignalKind, signal};
        let mut hangups = match signal(SignalKind::hangup()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGHUP");
                None
            }
        };
        let mut term = match signal(SignalKind::terminate()) {
            Ok(s) => Some(s),
            Err(e) => {
                tracing::warn!(error = %e, "cannot watch SIGTERM");
                None
            }
        };
        loop {
            let hangup = async {
                match hangups.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            let terminate = async {
                match term.as_mut() {
                    Some(s) => s.recv().await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = hangup => on_hangup(),
                _ = terminate => return,
            }
        }
    };
    #[cfg(not(unix))]
    let term = {
        let _ = on_hangup;
        std::future::pending::<()>()
    };
    tokio::select! {
        _ = ctrl_c => tracing::info!("SIGINT received; shutting down"),
        _ = term => tracing::info!("SIGTERM received; shutting down"),
    }
}

/// Samples the health counters every 10 s (for `/api/v1/status`).
async fn sample_health(telemetry: Arc<crate::telemetry::Telemetry>, shutdown: Shutdown) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut tick = tokio::time::interval(std::time::Duration::from_secs(10));
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tick.tick() => telemetry.sample_health(),
        }
    }
}
