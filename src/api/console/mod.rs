//! The web console on the admin server: server-rendered pages that show
//! StreamGate to someone who has just started it and to someone tuning
//! its analytics, without a front-end build step or third-party scripts.
//!
//! - `/`: health and why, ingest rates by signal and transport, refusals,
//!   active series, memory, uptime, listeners and push destinations;
//! - `/console/anomalies`: analysed series ranked by anomaly score, each
//!   with its recent values, expected value, band and anomaly marks;
//! - `/console/forecasts`: forecasts per horizon with intervals,
//!   time to threshold and the recommendations;
//! - `/console/alerts`: active alerts, history and the latest report;
//! - `/console/series`: search series by name and labels; open one to
//!   watch its history;
//! - `/api/v1/console/{rates,anomalies}`: the recorded data the pages
//!   draw, as JSON.
//!
//! Pages read snapshots only: the [`recorder::Recorder`] samples counters
//! and the analysis ranking off the ingest path; charts are SVG drawn by
//! `crate::chart`. Every page is complete without JavaScript; with it, `<main>`
//! is refetched (`?fragment=main`) every few seconds. The admin server's
//! credentials apply as to every GET (`server.require_auth_for`).

mod alerts;
mod analysis;
pub mod layout;
mod overview;
pub mod recorder;
mod series;

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Router;
use axum::extract::Query;
use axum::http::header;
use axum::response::{IntoResponse, Response};
use axum::routing::get;

use super::ApiState;
pub use recorder::Recorder;

/// Where StreamGate sends things, for the overview: (what, where).
pub type Destinations = Vec<(String, String)>;

/// What the pages read.
pub struct Console {
    pub api: Arc<ApiState>,
    pub recorder: Arc<Recorder>,
    pub destinations: Destinations,
}

/// Query parameters of every page (`fragment=main` asks for `<main>`'s
/// content only).
pub type PageQuery = Query<BTreeMap<String, String>>;

/// The console's routes.
pub fn router(console: Arc<Console>) -> Router {
    Router::new()
        .route("/", get(overview::page))
        .route("/console", get(overview::page))
        .route("/console/anomalies", get(analysis::anomalies))
        .route("/console/forecasts", get(analysis::forecasts))
        .route("/console/alerts", get(alerts::page))
        .route("/console/series", get(series::search))
        .route("/console/series/view", get(series::view))
        .route("/api/v1/console/rates", get(rates_json))
        .route("/api/v1/console/anomalies", get(anomalies_json))
        .with_state(console)
}

/// `GET /api/v1/console/rates`: the overview's samples, oldest first
/// (accepted items per second by signal and transport, refused requests
/// per second, active series, resident memory).
async fn rates_json(axum::extract::State(console): axum::extract::State<Arc<Console>>) -> Response {
    axum::Json(serde_json::json!({
        "interval_seconds": console.recorder.interval().as_secs_f64(),
        "signals": ["traces", "metrics", "logs"],
        "transports": ["grpc", "http"],
        "samples": console.recorder.rates(),
    }))
    .into_response()
}

/// `GET /api/v1/console/anomalies`: the analysed series ranked by anomaly
/// score, each with its recorded history (what the anomalies page draws).
async fn anomalies_json(
    axum::extract::State(console): axum::extract::State<Arc<Console>>,
) -> Response {
    let (ranked, total) = console.recorder.ranking();
    let series: Vec<serde_json::Value> = ranked
        .into_iter()
        .map(|(s, history)| serde_json::json!({ "series": s, "history": history }))
        .collect();
    axum::Json(serde_json::json!({ "analysed": total, "ranked": series })).into_response()
}

/// Seconds between live refreshes of a page.
fn refresh_secs(console: &Console) -> u64 {
    console.recorder.interval().as_secs().clamp(2, 60)
}

/// The whole page, or only `<main>`'s content when the script asks.
fn respond(
    query: &BTreeMap<String, String>,
    title: &str,
    path: &str,
    body: String,
    refresh: u64,
) -> Response {
    let html = if query.get("fragment").is_some_and(|f| f == "main") {
        body
    } else {
        layout::page(title, path, &body, refresh)
    };
    (
        [
            (header::CONTENT_TYPE, "text/html; charset=utf-8"),
            (header::CACHE_CONTROL, "no-store"),
        ],
        html,
    )
        .into_response()
}

/// `12.3/s` style rate.
fn per_second(v: f64) -> String {
    format!("{}/s", crate::chart::short_number(v))
}

/// A label set as `k="v", …`, escaped for HTML.
fn labels_text(labels: &BTreeMap<String, String>) -> String {
    let parts: Vec<String> = labels.iter().map(|(k, v)| format!("{k}=\"{v}\"")).collect();
    layout::escape(&parts.join(", "))
}

/// A duration in words: `3 h 20 min`, `45 s`.
fn human_duration(secs: f64) -> String {
    if !secs.is_finite() {
        return "–".into();
    }
    let s = secs.max(0.0) as u64;
    match s {
        0..=119 => format!("{s} s"),
        120..=7199 => format!("{} min", s / 60),
        7200..=172_799 => format!("{} h {} min", s / 3600, s / 60 % 60),
        _ => format!("{} d {} h", s / 86_400, s / 3600 % 24),
    }
}
