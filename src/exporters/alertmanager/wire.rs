//! Alertmanager API v2 wire format: the `postableAlerts` body of
//! `POST /api/v2/alerts` (labels, annotations, `startsAt`, `endsAt`,
//! `generatorURL`).

use serde::Serialize;

use crate::model::alert::Alert;
use crate::model::time::rfc3339;

/// One element of the `POST /api/v2/alerts` body.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct PostableAlert<'a> {
    pub labels: &'a std::collections::BTreeMap<String, String>,
    pub annotations: &'a std::collections::BTreeMap<String, String>,
    #[serde(rename = "startsAt")]
    pub starts_at: String,
    /// Set when resolved; for a firing alert, a time a little past the
    /// next re-send, so Alertmanager resolves it by itself if StreamGate
    /// goes away (as Prometheus does).
    #[serde(rename = "endsAt")]
    pub ends_at: String,
    #[serde(rename = "generatorURL")]
    pub generator_url: String,
}

/// The JSON body for `alerts` at `now`: firing alerts get `endsAt =
/// now + valid_for` (or their own earlier end), resolved ones their end.
pub fn body(alerts: &[Alert], now: f64, valid_for: f64, generator_base: &str) -> Vec<u8> {
    let list: Vec<PostableAlert> = alerts
        .iter()
        .map(|a| PostableAlert {
            labels: &a.labels,
            annotations: &a.annotations,
            starts_at: rfc3339(a.starts_at),
            ends_at: rfc3339(a.ends_at.unwrap_or(now + valid_for)),
            generator_url: format!("{}/{}", generator_base.trim_end_matches('/'), a.id),
        })
        .collect();
    serde_json::to_vec(&list).unwrap_or_else(|_| b"[]".to_vec())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::alert::{Severity, Source};

    #[test]
    fn body_is_alertmanagers_postable_alerts() {
        let a = Alert {
            id: "00000000000000ab".into(),
            labels: [("alertname".to_string(), "X".to_string())].into(),
            annotations: [("summary".to_string(), "s".to_string())].into(),
            source: Source::Manual,
            severity: Severity::Warning,
            starts_at: 100.0,
            updated_at: 100.0,
            ends_at: None,
            escalated: false,
        };
        let v: serde_json::Value =
            serde_json::from_slice(&body(&[a], 200.0, 180.0, "http://h:9464/api/v1/alerts/"))
                .expect("json");
        assert_eq!(v[0]["labels"]["alertname"], "X");
        assert_eq!(v[0]["annotations"]["summary"], "s");
        assert_eq!(v[0]["startsAt"], "1970-01-01T00:01:40.000Z");
        assert_eq!(v[0]["endsAt"], "1970-01-01T00:06:20.000Z");
        assert_eq!(
            v[0]["generatorURL"],
            "http://h:9464/api/v1/alerts/00000000000000ab"
        );
    }
}
