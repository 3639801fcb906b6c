//! Alerts as StreamGate's built-in alerting keeps them and the API shows
//! them: [`Alert`] with its [`Severity`] and [`Source`], and why an
//! operation on one was refused ([`AlertError`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

/// How urgent an alert is; the `severity` label.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    Info,
    Warning,
    Critical,
}

impl Severity {
    pub fn as_str(self) -> &'static str {
        match self {
            Severity::Info => "info",
            Severity::Warning => "warning",
            Severity::Critical => "critical",
        }
    }

    pub fn parse(text: &str) -> Option<Severity> {
        match text {
            "info" => Some(Severity::Info),
            "warning" => Some(Severity::Warning),
            "critical" => Some(Severity::Critical),
            _ => None,
        }
    }
}

/// Where an alert came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Source {
    /// A series in an anomaly.
    Anomaly,
    /// A level forecast to be crossed soon.
    Forecast,
    /// Created through the API.
    Manual,
}

/// One alert, active or resolved.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Alert {
    /// The fingerprint as 16 hex digits; stable for the same labels.
    pub id: String,
    /// Labels as sent, including `alertname` and `severity`.
    pub labels: BTreeMap<String, String>,
    pub annotations: BTreeMap<String, String>,
    pub source: Source,
    pub severity: Severity,
    /// Unix seconds.
    pub starts_at: f64,
    /// Last time a source confirmed the condition (Unix seconds).
    pub updated_at: f64,
    /// Set once resolved (or, for a manual alert, when it is due to end).
    pub ends_at: Option<f64>,
    /// Whether the severity was raised after `escalate_after`.
    pub escalated: bool,
}

/// Why an alert operation was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AlertError {
    #[error("{0}")]
    Invalid(String),
    #[error("no active alert with id {0}")]
    NotFound(String),
    #[error("{0} alerts are active already (exporters.alertmanager.max_active)")]
    Full(usize),
}
