//! The admin HTTP API on the `server` endpoint: liveness (`/healthz`),
//! readiness (`/readyz`), `GET /api/v1/status`, and the live debugging
//! endpoints:
//!
//! - `GET /api/v1/series?match=&limit=`: active series, their labels and
//!   type (`series.rs`, through the [`SeriesQuery`] `app.rs` wires in);
//! - `GET /api/v1/series/history?name=&<label>=…`: a series' recent
//!   points, recorded from its first request on;
//! - `GET /api/v1/tail/traces` and `/api/v1/tail/logs` (`?service=&limit=`):
//!   the most recent spans and log records, from the [`Tail`] consumer;
//! - `GET /api/v1/recommendations`: findings of the analysis processor;
//! - `/api/v1/alerts…`: built-in alerts (`alerts.rs`);
//! - `/api/v1/reports…`: period reports (`reports.rs`).
//!
//! Errors are JSON `{"error": "..."}`: 400 for a bad parameter, 404 for an
//! unknown series. `/metrics` is mounted beside the API by `app.rs` from
//! the Prometheus exporter.

mod alerts;
pub mod config;
pub mod console;
mod error;
mod health;
pub mod reports;
mod series;
pub mod tail;

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::response::{IntoResponse, Json};
use axum::routing::{get, post};
use serde::Serialize;

use crate::pipeline::query::SeriesQuery;
use crate::telemetry::{Signal, Telemetry};

pub use config::ApiConfig;
pub use health::Health;
pub use tail::Tail;

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
    /// The series store, for listing and history.
    pub series: Arc<dyn SeriesQuery>,
    /// Recent spans and log records.
    pub tail: Arc<Tail>,
    /// Limits of the debugging endpoints.
    pub config: ApiConfig,
    /// Findings of the analysis processor (none when it is off).
    pub recommendations: Option<Arc<dyn crate::model::recommendation::RecommendationSource>>,
    /// Built-in alerts (none when not running).
    pub alerts: Option<Arc<dyn crate::pipeline::query::AlertsQuery>>,
    /// Period reports (none when not running).
    pub reports: Option<Arc<reports::Reports>>,
}

/// The API routes. A method a route does not take is a JSON 405 naming
/// the ones it does (with `Allow`).
pub fn router(state: Arc<ApiState>) -> Router {
    Router::new()
        .route("/healthz", get(health::healthz))
        .route("/readyz", get(health::readyz))
        .route("/api/v1/status", get(status).fallback(only("GET")))
        .route("/api/v1/series", get(series::list).fallback(only("GET")))
        .route(
            "/api/v1/series/history",
            get(series::history).fallback(only("GET")),
        )
        .route(
            "/api/v1/tail/traces",
            get(tail::traces).fallback(only("GET")),
        )
        .route("/api/v1/tail/logs", get(tail::logs).fallback(only("GET")))
        .route(
            "/api/v1/recommendations",
            get(recommendations).fallback(only("GET")),
        )
        .route(
            "/api/v1/alerts",
            get(alerts::list)
                .post(alerts::create)
                .fallback(only("GET, POST")),
        )
        .route(
            "/api/v1/alerts/history",
            get(alerts::history).fallback(only("GET")),
        )
        .route(
            "/api/v1/alerts/{id}",
            get(alerts::one).fallback(only("GET")),
        )
        .route(
            "/api/v1/alerts/{id}/resolve",
            post(alerts::resolve).fallback(only("POST")),
        )
        .route(
            "/api/v1/reports",
            get(reports::list)
                .post(reports::create)
                .fallback(only("GET, POST")),
        )
        .route(
            "/api/v1/reports/latest",
            get(reports::latest).fallback(only("GET")),
        )
        .route(
            "/api/v1/reports/{id}",
            get(reports::one).fallback(only("GET")),
        )
        .with_state(state)
}

/// The 405 of a route that takes only the `allowed` methods.
fn only(
    allowed: &'static str,
) -> impl Fn(axum::http::Method) -> std::future::Ready<axum::response::Response> + Clone {
    move |method| std::future::ready(error::method_not_allowed(&method, allowed))
}

/// What the admin server answers for a path nothing serves: under
/// `/api/` a JSON 404 as every API error is, elsewhere plain text.
pub async fn not_found(uri: axum::http::Uri) -> axum::response::Response {
    use axum::response::IntoResponse;
    if uri.path().starts_with("/api/") {
        error::ApiError::not_found(format!("no such endpoint: {}", uri.path())).into_response()
    } else {
        (
            axum::http::StatusCode::NOT_FOUND,
            format!("not found: {}\n", uri.path()),
        )
            .into_response()
    }
}

#[derive(Serialize)]
struct Status {
    /// `ok`, `degraded` or `failing`, with the reasons.
    health: crate::telemetry::health::HealthReport,
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

/// `GET /api/v1/recommendations`: plain-language findings from forecasts
/// and anomalies, soonest threshold crossings first.
/// The analysis' findings (no query parameters: any is a 400).
async fn recommendations(
    State(state): State<Arc<ApiState>>,
    raw: error::RawParams,
) -> Result<impl IntoResponse, error::ApiError> {
    error::Params::read(raw, &[], false)?;
    let list = state
        .recommendations
        .as_ref()
        .map(|r| r.recommendations())
        .unwrap_or_default();
    Ok(Json(serde_json::json!({ "recommendations": list })))
}

async fn status(State(state): State<Arc<ApiState>>) -> impl IntoResponse {
    let t = &state.telemetry;
    Json(Status {
        health: t.health(state.health.is_ready(), state.health.is_draining()),
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

#[cfg(test)]
mod tests;
