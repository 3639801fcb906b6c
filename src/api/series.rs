//! `GET /api/v1/series` (the active series a selector matches, with their
//! labels and type) and `GET /api/v1/series/history` (the recent points of
//! one series), answered through the [`SeriesQuery`] `app.rs` wires in.
//!
//! [`SeriesQuery`]: crate::pipeline::query::SeriesQuery

use std::sync::Arc;

use axum::extract::State;
use axum::response::{IntoResponse, Json, Response};

use crate::pipeline::query::{HistoryError, SeriesMatcher};

use super::ApiState;
use super::error::{ApiError, Params, RawParams};

/// A label named like a reserved parameter is passed as `label.<name>`.
const LABEL_PREFIX: &str = "label.";

/// `GET /api/v1/series?match=<selector>&limit=N`.
pub async fn list(State(state): State<Arc<ApiState>>, raw: RawParams) -> Response {
    match list_inner(state, raw).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn list_inner(state: Arc<ApiState>, raw: RawParams) -> Result<Response, ApiError> {
    let params = Params::read(raw, &["match", "limit"], false)?;
    let matcher = SeriesMatcher::parse(params.get("match").unwrap_or_default())
        .map_err(ApiError::bad_request)?;
    let max = state.config.series_limit;
    let limit = params.limit(max, max)?;
    let query = state.series.clone();
    // A listing walks every matching family: keep it off the async workers.
    let page = tokio::task::spawn_blocking(move || query.find_series(&matcher, limit))
        .await
        .map_err(|e| ApiError {
            status: axum::http::StatusCode::INTERNAL_SERVER_ERROR,
            message: format!("series listing failed: {e}"),
        })?;
    Ok(Json(page).into_response())
}

/// `GET /api/v1/series/history?name=<metric>&<label>=<value>...`.
pub async fn history(State(state): State<Arc<ApiState>>, raw: RawParams) -> Response {
    match history_inner(&state, raw) {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

fn history_inner(state: &ApiState, raw: RawParams) -> Result<Response, ApiError> {
    const KNOWN: &[&str] = &["name"];
    let params = Params::read(raw, KNOWN, true)?;
    let name = params
        .get("name")
        .filter(|n| !n.is_empty())
        .ok_or_else(|| {
            ApiError::bad_request(
                "missing parameter `name` (the metric name); labels follow as <label>=<value>",
            )
        })?;
    let labels = history_labels(&params, KNOWN)?;
    match state.series.series_history(name, &labels) {
        Ok(history) => Ok(Json(history).into_response()),
        Err(e @ (HistoryError::NotFound(_) | HistoryError::Derived(_))) => {
            Err(ApiError::not_found(e.to_string()))
        }
    }
}

/// The label parameters of a history request: every parameter but
/// `name`, with `label.` stripped; names must be valid, each given once.
fn history_labels(params: &Params, known: &[&str]) -> Result<Vec<(String, String)>, ApiError> {
    let mut labels: Vec<(String, String)> = Vec::new();
    for (param, value) in params.rest(known) {
        let label = param.strip_prefix(LABEL_PREFIX).unwrap_or(param);
        let valid = label
            .chars()
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && label.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
        if !valid {
            return Err(ApiError::bad_request(format!(
                "`{param}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*)"
            )));
        }
        if labels.iter().any(|(l, _)| l == label) {
            return Err(ApiError::bad_request(format!(
                "label `{label}` is given twice"
            )));
        }
        labels.push((label.to_string(), value.to_string()));
    }
    Ok(labels)
}
