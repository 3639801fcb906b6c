//! Self-profiling: StreamGate's own CPU and heap profiles on
//! `/debug/pprof`, and pushed to Pyroscope.
//!
//! | file | owns |
//! |---|---|
//! | `cpu.rs` | one CPU profile (pprof-rs), rendered as gzipped pprof or SVG |
//! | `heap.rs` | the heap in use (jemalloc's sampling profiler), pprof or SVG |
//! | `push.rs` | push to Pyroscope `/ingest` (multipart pprof), bounded queue, retries |
//! | `config.rs` | `exporters.pprof` settings |
//!
//! - `GET /debug/pprof/profile?seconds=N`: a CPU profile of N seconds
//!   (default 30, at most `max_seconds`) as `profile.proto`, gzipped, as
//!   `go tool pprof` and Pyroscope read it;
//! - `GET /debug/pprof/flamegraph?seconds=N`: the same as an SVG flame
//!   graph;
//! - `GET /debug/pprof/heap`: the memory in use by call stack
//!   (`inuse_space`), gzipped pprof; `/debug/pprof/heap/flamegraph`: SVG.
//!
//! One CPU profile runs at a time (the sampler is process-wide): a second
//! request while one runs is answered 409 with `Retry-After`. With
//! `access_token` set, every route needs `Authorization: Bearer <token>`
//! (compared in constant time) and answers 401 otherwise.
//!
//! With `pyroscope.url` set, CPU profiles are taken continuously in
//! consecutive `upload_interval` windows and a heap profile every
//! `heap_interval`, and pushed (`push.rs`); an on-demand CPU request then
//! waits for the current window to end.

pub mod config;
mod cpu;
mod heap;
pub mod push;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

use crate::config::types::{authorization_parts, constant_time_eq};

pub use config::PprofConfig;
pub use cpu::{Format, SymbolCache, profile as cpu_profile_blocking};
pub use heap::profile as heap_profile_blocking;
pub use push::ProfileKind;

/// Why a profile could not be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PprofError {
    #[error("the profiler failed: {0}")]
    Profiler(String),
    #[error("a CPU profile is already running; try again when it ends")]
    Busy,
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    Unavailable(String),
    /// Taking the profile would lift resident memory over the memory
    /// limiter's soft limit, which would refuse incoming data meanwhile.
    #[error(
        "a {what} profile needs about {} MB of memory while it runs; with {} MB resident it would pass the memory limiter's soft limit ({} MB), which refuses incoming data: raise receivers.otlp.memory_limiter.limit, or profile when less memory is in use",
        cost / 1_000_000,
        resident / 1_000_000,
        soft / 1_000_000
    )]
    NoMemory {
        what: &'static str,
        cost: u64,
        resident: u64,
        soft: u64,
    },
}

/// Resident memory a CPU profile adds while it runs: pprof-rs' sample
/// table (about 70 MB) and the symboliser's debug information (about 80
/// MB), with the allocator's slack (measured 2026-12-07: 200–220 MB
/// resident during a profile of an idle collector at 20 MB).
pub const CPU_PROFILE_BYTES: u64 = 200_000_000;
/// Resident memory a heap profile adds while it is symbolised.
pub const HEAP_PROFILE_BYTES: u64 = 100_000_000;

/// The profiling endpoints' state.
pub struct Profiling {
    cfg: PprofConfig,
    /// Held while a CPU profile runs.
    running: tokio::sync::Mutex<()>,
    /// Ends a profile being taken early, so none holds up shutdown.
    shutdown: crate::pipeline::Shutdown,
    /// The memory limiter's soft limit, bytes (none: no limit): an
    /// on-demand profile that would pass it is refused, so profiling
    /// never makes the receivers refuse data.
    memory_soft_limit: Option<u64>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    seconds: Option<String>,
}

impl Profiling {
    /// Sets up the heap profiler from `cfg` (a failure is logged: CPU
    /// profiles still work).
    /// A CPU profile being taken at `shutdown` ends there.
    /// On-demand profiles keep resident memory under `memory_soft_limit`.
    pub fn new(
        cfg: PprofConfig,
        shutdown: crate::pipeline::Shutdown,
        memory_soft_limit: Option<u64>,
    ) -> Arc<Self> {
        if let Err(e) = heap::configure(cfg.enabled, cfg.heap_sample_bytes) {
            tracing::warn!("heap profiling: {e}");
        }
        if let Some(soft) = memory_soft_limit
            && cfg.enabled
            && !cfg.pyroscope.url.is_empty()
            && soft < 2 * CPU_PROFILE_BYTES
        {
            tracing::warn!(
                soft_limit_bytes = soft,
                profile_bytes = CPU_PROFILE_BYTES,
                "continuous profiling holds about {} MB while it runs, a large share of the memory limiter's soft limit: the receivers will refuse data sooner",
                CPU_PROFILE_BYTES / 1_000_000
            );
        }
        Arc::new(Self {
            cfg,
            running: tokio::sync::Mutex::new(()),
            shutdown,
            memory_soft_limit,
        })
    }

    /// Refuses a profile costing `cost` bytes that would lift resident
    /// memory past the memory limiter's soft limit.
    fn check_memory(&self, what: &'static str, cost: u64) -> Result<(), PprofError> {
        let Some(soft) = self.memory_soft_limit else {
            return Ok(());
        };
        let resident = crate::telemetry::process::resident_bytes().unwrap_or(0);
        if resident.saturating_add(cost) > soft {
            return Err(PprofError::NoMemory {
                what,
                cost,
                resident,
                soft,
            });
        }
        Ok(())
    }

    /// The `/debug/pprof` routes (none when disabled).
    pub fn router(self: &Arc<Self>) -> Router {
        if !self.cfg.enabled {
            return Router::new();
        }
        Router::new()
            .route("/debug/pprof/profile", get(cpu_profile))
            .route("/debug/pprof/flamegraph", get(flamegraph))
            .route("/debug/pprof/heap", get(heap_profile))
            .route("/debug/pprof/heap/flamegraph", get(heap_flamegraph))
            .route_layer(axum::middleware::from_fn_with_state(
                self.clone(),
                require_token,
            ))
            .with_state(self.clone())
    }

    fn seconds(&self, p: &Params) -> Result<Duration, PprofError> {
        let secs = match p.seconds.as_deref() {
            None | Some("") => 30.min(self.cfg.max_seconds),
            Some(s) => s.parse::<u64>().map_err(|_| {
                PprofError::BadRequest(format!("seconds={s:?} is not a whole number of seconds"))
            })?,
        };
        if secs == 0 || secs > self.cfg.max_seconds {
            return Err(PprofError::BadRequest(format!(
                "seconds={secs} is out of range: 1 to {} (exporters.pprof.max_seconds)",
                self.cfg.max_seconds
            )));
        }
        Ok(Duration::from_secs(secs))
    }

    /// Takes one CPU profile unless one is running (with continuous
    /// profiling on, waits up to one window for the sampler).
    pub async fn cpu(&self, duration: Duration, format: Format) -> Result<Vec<u8>, PprofError> {
        // Continuous profiling already holds what a profile costs.
        if self.cfg.pyroscope.url.is_empty() {
            self.check_memory("CPU", CPU_PROFILE_BYTES)?;
        }
        let _running = if self.cfg.pyroscope.url.is_empty() {
            self.running.try_lock().map_err(|_| PprofError::Busy)?
        } else {
            tokio::time::timeout(
                self.cfg.pyroscope.upload_interval.get() + Duration::from_secs(2),
                self.running.lock(),
            )
            .await
            .map_err(|_| PprofError::Busy)?
        };
        let frequency = self.cfg.frequency;
        let shutdown = self.shutdown.clone();
        self.on_demand(move || {
            let stop = || shutdown.is_triggered();
            cpu::profile(
                duration,
                frequency,
                format,
                &mut SymbolCache::default(),
                &stop,
            )
        })
        .await
    }

    /// Runs an on-demand profile on a blocking thread, then drops the
    /// symboliser's cache unless continuous profiling keeps using it.
    async fn on_demand(
        &self,
        take: impl FnOnce() -> Result<Vec<u8>, PprofError> + Send + 'static,
    ) -> Result<Vec<u8>, PprofError> {
        let continuous = !self.cfg.pyroscope.url.is_empty();
        tokio::task::spawn_blocking(move || {
            let taken = take();
            release_symbols(continuous);
            taken
        })
        .await
        .map_err(|e| PprofError::Profiler(e.to_string()))?
    }
}

impl Profiling {
    /// The heap in use now, sampled.
    pub async fn heap(&self, format: Format) -> Result<Vec<u8>, PprofError> {
        if self.cfg.pyroscope.url.is_empty() {
            self.check_memory("heap", HEAP_PROFILE_BYTES)?;
        }
        self.on_demand(move || heap::profile(format)).await
    }

    /// Continuous profiling: consecutive windows pushed to Pyroscope,
    /// until shutdown. Does nothing without `pyroscope.url`.
    pub async fn run_continuous(
        self: Arc<Self>,
        telemetry: Arc<crate::telemetry::Telemetry>,
        shutdown: crate::pipeline::Shutdown,
    ) {
        let cfg = self.cfg.pyroscope.clone();
        if cfg.url.is_empty() {
            return;
        }
        let frequency = self.cfg.frequency;
        let window = cfg.upload_interval.get();
        let heap_interval = cfg.heap_interval.get();
        let (pusher, worker) = push::Pusher::spawn(cfg, frequency, telemetry, shutdown.clone());
        let mut failure_log = push::OnceAMinute::default();
        let heap_pushes = (!heap_interval.is_zero() && heap::available()).then(|| {
            tokio::spawn(push_heap_profiles(
                self.clone(),
                pusher.clone(),
                heap_interval,
                shutdown.clone(),
            ))
        });
        // Kept across windows: each code address is symbolised once.
        let mut symbols = Some(SymbolCache::default());
        while !shutdown.is_triggered() {
            let mut cache = symbols.take().unwrap_or_default();
            let stopping = shutdown.clone();
            // The window starts once the profiler is ours: a profile taken
            // on /debug/pprof meanwhile is not in it.
            let (from, taken) = {
                let _running = self.running.lock().await;
                let from = unix_now();
                let taken = tokio::task::spawn_blocking(move || {
                    // At shutdown the window ends early and is pushed.
                    let stop = || stopping.is_triggered();
                    let taken = cpu::profile(window, frequency, Format::Pprof, &mut cache, &stop);
                    (taken, cache)
                })
                .await
                .map(|(taken, cache)| {
                    symbols = Some(cache);
                    taken
                });
                (from, taken)
            };
            let until = unix_now().max(from + 1);
            let failure = match taken {
                Ok(Ok(profile)) => {
                    pusher.send(push::Upload {
                        kind: ProfileKind::Cpu,
                        from,
                        until,
                        profile,
                    });
                    continue;
                }
                Ok(Err(e)) => e.to_string(),
                Err(e) => e.to_string(),
            };
            // A profile that cannot be taken (no writable $TMPDIR, say)
            // would fail at once again: counted, logged once a minute,
            // tried again a window later.
            pusher.record_failure();
            if failure_log.due() {
                tracing::warn!("continuous CPU profile failed: {failure}");
            }
            tokio::select! {
                _ = shutdown.clone().wait() => {}
                _ = tokio::time::sleep(window) => {}
            }
        }
        if let Some(task) = heap_pushes {
            let _ = task.await;
        }
        // The worker sends what is queued (once each, briefly) and ends.
        pusher.close();
        let _ = worker.await;
    }
}

/// A heap profile every `interval` until shutdown, each covering the
/// interval before it (Pyroscope shows in-use memory as of `until`).
async fn push_heap_profiles(
    profiling: Arc<Profiling>,
    pusher: push::Pusher,
    interval: Duration,
    shutdown: crate::pipeline::Shutdown,
) {
    let stop = shutdown.wait();
    tokio::pin!(stop);
    let mut from = unix_now();
    let mut failure_log = push::OnceAMinute::default();
    loop {
        tokio::select! {
            _ = &mut stop => return,
            _ = tokio::time::sleep(interval) => {}
        }
        let until = unix_now().max(from + 1);
        match profiling.heap(Format::Pprof).await {
            Ok(profile) => pusher.send(push::Upload {
                kind: ProfileKind::Heap,
                from,
                until,
                profile,
            }),
            Err(e) => {
                // Counted with the pushes; tried again an interval later.
                pusher.record_failure();
                if failure_log.due() {
                    tracing::warn!("heap profile failed: {e}");
                }
            }
        }
        from = until;
    }
}

/// With `access_token` set, refuses requests without the matching
/// `Authorization: Bearer` header (401, `WWW-Authenticate: Bearer`).
async fn require_token(
    State(p): State<Arc<Profiling>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let expected = p.cfg.access_token.expose().as_bytes();
    if expected.is_empty() {
        return next.run(request).await;
    }
    let given = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| bearer_credentials(v.as_bytes()))
        .unwrap_or_default();
    if constant_time_eq(given, expected) {
        return next.run(request).await;
    }
    let mut r = (
        StatusCode::UNAUTHORIZED,
        "/debug/pprof needs \"Authorization: Bearer <exporters.pprof.access_token>\"\n",
    )
        .into_response();
    r.headers_mut().insert(
        header::WWW_AUTHENTICATE,
        header::HeaderValue::from_static("Bearer realm=\"streamgate\""),
    );
    r
}

/// The token of an `Authorization: Bearer <token>` value: the scheme in
/// any case, then one or more spaces.
fn bearer_credentials(value: &[u8]) -> Option<&[u8]> {
    authorization_parts(value)
        .filter(|(scheme, _)| scheme.eq_ignore_ascii_case(b"bearer"))
        .map(|(_, token)| token)
}

/// Symbolising loads the binary's debug information (about 80 MB for a
/// release build) into a process-wide cache. Continuous profiling keeps
/// it, since reloading costs about 0.25 s of CPU per profile; after an
/// on-demand profile it is dropped, so an idle collector does not keep it.
fn release_symbols(continuous: bool) {
    if !continuous {
        backtrace::clear_symbol_cache();
    }
}

fn unix_now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

fn refusal(e: PprofError) -> Response {
    let status = match e {
        PprofError::Busy => StatusCode::CONFLICT,
        PprofError::BadRequest(_) => StatusCode::BAD_REQUEST,
        PprofError::Profiler(_) => StatusCode::INTERNAL_SERVER_ERROR,
        PprofError::Unavailable(_) => StatusCode::NOT_IMPLEMENTED,
        PprofError::NoMemory { .. } => StatusCode::SERVICE_UNAVAILABLE,
    };
    let mut r = (status, e.to_string() + "\n").into_response();
    if status == StatusCode::CONFLICT || status == StatusCode::SERVICE_UNAVAILABLE {
        r.headers_mut()
            .insert(header::RETRY_AFTER, header::HeaderValue::from_static("5"));
    }
    r
}

async fn run(p: &Profiling, params: Result<Query<Params>, String>, format: Format) -> Response {
    let params = match params {
        Ok(Query(p)) => p,
        Err(e) => return refusal(PprofError::BadRequest(e)),
    };
    let duration = match p.seconds(&params) {
        Ok(d) => d,
        Err(e) => return refusal(e),
    };
    let stem = match format {
        Format::Pprof => "profile",
        Format::Flamegraph => "flamegraph",
    };
    answer(p.cpu(duration, format).await, format, stem)
}

/// A profile as a download, or the refusal.
fn answer(taken: Result<Vec<u8>, PprofError>, format: Format, stem: &str) -> Response {
    match taken {
        Ok(body) => {
            let (content_type, name) = match format {
                Format::Pprof => ("application/octet-stream", format!("{stem}.pb.gz")),
                Format::Flamegraph => ("image/svg+xml", format!("{stem}.svg")),
            };
            (
                [
                    (header::CONTENT_TYPE, content_type.to_string()),
                    (
                        header::CONTENT_DISPOSITION,
                        format!("attachment; filename=\"{name}\""),
                    ),
                ],
                body,
            )
                .into_response()
        }
        Err(e) => refusal(e),
    }
}

async fn cpu_profile(
    State(p): State<Arc<Profiling>>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    run(&p, params.map_err(|e| e.body_text()), Format::Pprof).await
}

async fn flamegraph(
    State(p): State<Arc<Profiling>>,
    params: Result<Query<Params>, axum::extract::rejection::QueryRejection>,
) -> Response {
    run(&p, params.map_err(|e| e.body_text()), Format::Flamegraph).await
}

async fn heap_profile(State(p): State<Arc<Profiling>>) -> Response {
    answer(p.heap(Format::Pprof).await, Format::Pprof, "heap")
}

async fn heap_flamegraph(State(p): State<Arc<Profiling>>) -> Response {
    answer(p.heap(Format::Flamegraph).await, Format::Flamegraph, "heap")
}

#[cfg(test)]
mod tests {
    use super::bearer_credentials;

    #[test]
    fn the_bearer_scheme_is_case_insensitive() {
        assert_eq!(bearer_credentials(b"Bearer t0k"), Some(&b"t0k"[..]));
        assert_eq!(bearer_credentials(b"bearer  t0k"), Some(&b"t0k"[..]));
        assert_eq!(bearer_credentials(b"BEARER t0k"), Some(&b"t0k"[..]));
        assert_eq!(bearer_credentials(b"Basic t0k"), None);
        assert_eq!(bearer_credentials(b"Bearert0k"), None);
    }
}
