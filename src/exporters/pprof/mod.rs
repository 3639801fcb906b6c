//! Self-profiling: StreamGate's own CPU profiles on `/debug/pprof`.
//!
//! | file | owns |
//! |---|---|
//! | `cpu.rs` | one CPU profile (pprof-rs), rendered as gzipped pprof or SVG |
//! | `push.rs` | push to Pyroscope `/ingest` (multipart pprof), bounded queue, retries |
//! | `config.rs` | `exporters.pprof` settings |
//!
//! - `GET /debug/pprof/profile?seconds=N`: a CPU profile of N seconds
//!   (default 30, at most `max_seconds`) as `profile.proto`, gzipped, as
//!   `go tool pprof` and Pyroscope read it;
//! - `GET /debug/pprof/flamegraph?seconds=N`: the same as an SVG flame
//!   graph.
//!
//! One CPU profile runs at a time (the sampler is process-wide): a second
//! request while one runs is answered 409 with `Retry-After`.
//!
//! With `pyroscope.url` set, profiles are taken continuously in
//! consecutive `upload_interval` windows and pushed (`push.rs`); an
//! on-demand request then waits for the current window to end.

pub mod config;
mod cpu;
pub mod push;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::{Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde::Deserialize;

pub use config::PprofConfig;
pub use cpu::Format;

/// Why a profile could not be taken.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum PprofError {
    #[error("the profiler failed: {0}")]
    Profiler(String),
    #[error("a CPU profile is already running; try again when it ends")]
    Busy,
    #[error("{0}")]
    BadRequest(String),
}

/// The profiling endpoints' state.
pub struct Profiling {
    cfg: PprofConfig,
    /// Held while a CPU profile runs.
    running: tokio::sync::Mutex<()>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Params {
    seconds: Option<String>,
}

impl Profiling {
    pub fn new(cfg: PprofConfig) -> Arc<Self> {
        Arc::new(Self {
            cfg,
            running: tokio::sync::Mutex::new(()),
        })
    }

    /// The `/debug/pprof` routes (none when disabled).
    pub fn router(self: &Arc<Self>) -> Router {
        if !self.cfg.enabled {
            return Router::new();
        }
        Router::new()
            .route("/debug/pprof/profile", get(cpu_profile))
            .route("/debug/pprof/flamegraph", get(flamegraph))
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
        tokio::task::spawn_blocking(move || cpu::profile(duration, frequency, format))
            .await
            .map_err(|e| PprofError::Profiler(e.to_string()))?
    }
}

impl Profiling {
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
        let (pusher, worker) = push::Pusher::spawn(cfg, frequency, telemetry, shutdown.clone());
        while !shutdown.is_triggered() {
            let from = unix_now();
            let taken = {
                let _running = self.running.lock().await;
                tokio::task::spawn_blocking(move || cpu::profile(window, frequency, Format::Pprof))
                    .await
            };
            let until = unix_now().max(from + 1);
            match taken {
                Ok(Ok(profile)) => pusher.send(push::Upload {
                    from,
                    until,
                    profile,
                }),
                Ok(Err(e)) => tracing::warn!("continuous profile failed: {e}"),
                Err(e) => tracing::warn!("continuous profile failed: {e}"),
            }
        }
        drop(pusher);
        let _ = worker.await;
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
    };
    let mut r = (status, e.to_string() + "\n").into_response();
    if status == StatusCode::CONFLICT {
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
    match p.cpu(duration, format).await {
        Ok(body) => {
            let (content_type, name) = match format {
                Format::Pprof => ("application/octet-stream", "profile.pb.gz"),
                Format::Flamegraph => ("image/svg+xml", "flamegraph.svg"),
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
