//! The admin HTTP API on the `server` endpoint: liveness (`/healthz`),
//! readiness (`/readyz`) and `GET /api/v1/status`. `/metrics` is mounted
//! beside it by `app.rs` from the Prometheus exporter.

pub mod config;
mod health;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Json};
use axum::routing::get;
use serde::Serialize;

use crate::telemetry::{Signal, Telemetry};

pub use health::Health;

/// Where StreamGate listens, for the status page.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Listeners {
    pub otlp_grpc: Option<String>,
    pub otlp_http: Option<String>,
    pub server: Option<String>,
}

/// Shared state of the API handlers.
pub struct ApiState {
    pub health: Arc<Health>,
    pub telemetry: Arc<Telemetry>,
    pub listeners: parking_lot::RwLock<Listeners>,
}

/// The API routes.
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/status", get(status))
        .with_state(state)
}

#[derive(Serialize)]
struct Status {
    version: &'static str,
    ready: bool,
    draining: bool,
    uptime_seconds: f64,
    listeners: Listeners,
    active_series: i64,
    accepted: Accepted,
}

#[derive(Serialize)]
struct Accepted {
    spans: u64,
    data_points: u64,
    log_records: u64,
}

async fn status(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    let t = &state.telemetry;
    Json(Status {
        version: env!("CARGO_PKG_VERSION"),
        ready: state.health.is_ready(),
        draining: state.health.is_draining(),
        uptime_seconds: t.uptime().as_secs_f64(),
        listeners: state.listeners.read().clone(),
        active_series: t.active_series(),
        accepted: Accepted {
            spans: t.accepted_total(Signal::Traces),
            data_points: t.accepted_total(Signal::Metrics),
            log_records: t.accepted_total(Signal::Logs),
        },
    })
}
