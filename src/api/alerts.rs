//! `/api/v1/alerts`: StreamGate's built-in alerts, through the
//! [`AlertsQuery`] `app.rs` wires in.
//!
//! - `GET /api/v1/alerts`: active alerts, newest first;
//! - `GET /api/v1/alerts/history`: resolved alerts, most recent first;
//! - `GET /api/v1/alerts/{id}`: one alert (the `generatorURL` of pushes);
//! - `POST /api/v1/alerts`: create a manual alert from
//!   `{"labels": {"alertname": …}, "annotations": {…}, "severity":
//!   "info|warning|critical", "endsAt": "<RFC 3339>"}` → 201;
//! - `POST /api/v1/alerts/{id}/resolve` → 200 with the resolved alert.
//!
//! Bodies are JSON; a bad body is 400, an unknown id 404.

use std::collections::BTreeMap;
use std::sync::Arc;

use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use serde::Deserialize;

use super::ApiState;
use super::error::{ApiError, Params, RawParams};
use crate::model::alert::{AlertError, Severity};
use crate::model::time::parse_rfc3339;
use crate::pipeline::query::AlertsQuery;

/// The body of `POST /api/v1/alerts`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct NewAlert {
    labels: BTreeMap<String, String>,
    #[serde(default)]
    annotations: BTreeMap<String, String>,
    #[serde(default)]
    severity: Option<String>,
    #[serde(default, rename = "endsAt")]
    ends_at: Option<String>,
}

fn alerts(state: &ApiState) -> Result<&Arc<dyn AlertsQuery>, ApiError> {
    state
        .alerts
        .as_ref()
        .ok_or_else(|| ApiError::not_found("alerting is not running"))
}

fn refused(e: AlertError) -> ApiError {
    match e {
        AlertError::NotFound(_) => ApiError::not_found(e.to_string()),
        AlertError::Invalid(_) => ApiError::bad_request(e.to_string()),
        AlertError::Full(_) => ApiError {
            status: StatusCode::SERVICE_UNAVAILABLE,
            message: e.to_string(),
        },
    }
}

/// The active alerts (no query parameters: any is a 400).
pub async fn list(
    State(state): State<Arc<ApiState>>,
    raw: RawParams,
) -> Result<Response, ApiError> {
    Params::read(raw, &[], false)?;
    let a = alerts(&state)?;
    Ok(Json(serde_json::json!({ "alerts": a.active() })).into_response())
}

/// The alert history (no query parameters: any is a 400).
pub async fn history(
    State(state): State<Arc<ApiState>>,
    raw: RawParams,
) -> Result<Response, ApiError> {
    Params::read(raw, &[], false)?;
    let a = alerts(&state)?;
    Ok(Json(serde_json::json!({ "alerts": a.history() })).into_response())
}

pub async fn one(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let a = alerts(&state)?;
    let alert = a
        .get(&id)
        .ok_or_else(|| ApiError::not_found(format!("no alert with id {id}")))?;
    Ok(Json(alert).into_response())
}

pub async fn create(State(state): State<Arc<ApiState>>, body: Bytes) -> Result<Response, ApiError> {
    let a = alerts(&state)?;
    let new: NewAlert = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("body is not a valid alert: {e}")))?;
    let severity = match new.severity.as_deref() {
        None => Severity::Warning,
        Some(s) => Severity::parse(s).ok_or_else(|| {
            ApiError::bad_request(format!(
                "severity {s:?} is not one of info, warning, critical"
            ))
        })?,
    };
    let ends_at = match new.ends_at.as_deref() {
        None | Some("") => None,
        Some(t) => Some(parse_rfc3339(t).ok_or_else(|| {
            ApiError::bad_request(format!("endsAt {t:?} is not an RFC 3339 time"))
        })?),
    };
    let alert = a
        .create(new.labels, new.annotations, severity, ends_at)
        .map_err(refused)?;
    Ok((StatusCode::CREATED, Json(alert)).into_response())
}

pub async fn resolve(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
) -> Result<Response, ApiError> {
    let a = alerts(&state)?;
    let alert = a.resolve(&id).map_err(refused)?;
    Ok(Json(alert).into_response())
}
