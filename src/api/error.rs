//! API errors as JSON: `{"error": "..."}` with 400 for a bad request and
//! 404 for something that does not exist; and the strict query-string
//! reading every endpoint shares (unknown or repeated parameters are 400).

use axum::extract::Query;
use axum::extract::rejection::QueryRejection;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Json, Response};
use serde::Serialize;

/// An error answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiError {
    pub status: StatusCode,
    pub message: String,
}

impl ApiError {
    pub fn bad_request(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::BAD_REQUEST,
            message: message.into(),
        }
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self {
            status: StatusCode::NOT_FOUND,
            message: message.into(),
        }
    }
}

/// 405 as JSON, with the `Allow` header of the methods the route takes.
pub fn method_not_allowed(method: &axum::http::Method, allowed: &'static str) -> Response {
    let mut response = ApiError {
        status: StatusCode::METHOD_NOT_ALLOWED,
        message: format!("{method} is not allowed here; use {allowed}"),
    }
    .into_response();
    response.headers_mut().insert(
        axum::http::header::ALLOW,
        axum::http::HeaderValue::from_static(allowed),
    );
    response
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(Body {
                error: &self.message,
            }),
        )
            .into_response()
    }
}

/// The query parameters of a request, in order.
pub type RawParams = Result<Query<Vec<(String, String)>>, QueryRejection>;

/// Query parameters, read strictly.
#[derive(Debug, Default)]
pub struct Params {
    pairs: Vec<(String, String)>,
}

impl Params {
    /// Accepts the parameters in `known`, each at most once; with
    /// `others_allowed`, other names are kept for [`rest`](Self::rest).
    pub fn read(raw: RawParams, known: &[&str], others_allowed: bool) -> Result<Self, ApiError> {
        let Query(pairs) = raw.map_err(|e| ApiError::bad_request(e.body_text()))?;
        for (i, (name, _)) in pairs.iter().enumerate() {
            if !others_allowed && !known.contains(&name.as_str()) {
                let takes = match known {
                    [] => "no parameters".to_string(),
                    _ => known.join(", "),
                };
                return Err(ApiError::bad_request(format!(
                    "unknown parameter `{name}`; this endpoint takes {takes}"
                )));
            }
            if pairs[..i].iter().any(|(n, _)| n == name) {
                return Err(ApiError::bad_request(format!(
                    "parameter `{name}` is given twice"
                )));
            }
        }
        Ok(Self { pairs })
    }

    pub fn get(&self, name: &str) -> Option<&str> {
        self.pairs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| v.as_str())
    }

    /// The parameters not in `known`, in order.
    pub fn rest<'a>(&'a self, known: &'a [&str]) -> impl Iterator<Item = (&'a str, &'a str)> {
        self.pairs
            .iter()
            .filter(|(n, _)| !known.contains(&n.as_str()))
            .map(|(n, v)| (n.as_str(), v.as_str()))
    }

    /// `limit`: a positive integer, `default` when absent, at most `max`.
    pub fn limit(&self, default: usize, max: usize) -> Result<usize, ApiError> {
        match self.get("limit") {
            None => Ok(default.min(max)),
            Some(text) => match text.parse::<usize>() {
                Ok(0) | Err(_) => Err(ApiError::bad_request(format!(
                    "limit `{text}` must be a positive integer"
                ))),
                Ok(n) => Ok(n.min(max)),
            },
        }
    }
}
