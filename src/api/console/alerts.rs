//! The alerts page: active alerts, the recent history and the latest
//! period report.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::layout::escape;
use super::{Console, PageQuery, labels_text, refresh_secs, respond};
use crate::chart::clock;
use crate::model::alert::{Alert, Severity};

/// Resolved alerts shown at most.
const HISTORY_SHOWN: usize = 50;

pub async fn page(State(console): State<Arc<Console>>, query: PageQuery) -> Response {
    let mut out = String::from("<h1>Alerts</h1>");
    match &console.api.alerts {
        None => out.push_str(r#"<p class="muted">Built-in alerting is off (<code>exporters.alertmanager.enabled</code>).</p>"#),
        Some(alerts) => {
            let active = alerts.active();
            let _ = write!(
                out,
                r#"<section aria-labelledby="active-h"><h2 id="active-h">Active ({})</h2>"#,
                active.len()
            );
            table(&mut out, "active", &active, false);
            out.push_str("</section>");
            let history: Vec<Alert> = alerts.history().into_iter().take(HISTORY_SHOWN).collect();
            out.push_str(r#"<section aria-labelledby="history-h"><h2 id="history-h">Recently resolved</h2>"#);
            table(&mut out, "history", &history, true);
            out.push_str("</section>");
        }
    }
    out.push_str(r#"<section aria-labelledby="report-h"><h2 id="report-h">Latest report</h2>"#);
    match console.api.reports.as_ref().and_then(|r| r.latest()) {
        None => out.push_str(r#"<p class="muted">No report yet; one is made every <code>api.reports.interval</code>, or now with <code>POST /api/v1/reports</code>.</p>"#),
        Some(report) => {
            let _ = write!(
                out,
                r#"<p>Report {} ({}) for {} to {}: health <strong>{:?}</strong>. <a href="/api/v1/reports/latest?format=html">Read it whole</a>.</p>"#,
                report.id,
                escape(report.trigger),
                escape(&report.period_from),
                escape(&report.period_to),
                report.health.status
            );
            if !report.recommendations.is_empty() {
                out.push_str("<ul>");
                for r in &report.recommendations {
                    let _ = write!(out, "<li>{}</li>", escape(r));
                }
                out.push_str("</ul>");
            }
        }
    }
    out.push_str("</section>");
    respond(
        &query,
        "Alerts",
        "/console/alerts",
        out,
        refresh_secs(&console),
    )
}

fn table(out: &mut String, id: &str, alerts: &[Alert], resolved: bool) {
    if alerts.is_empty() {
        out.push_str(r#"<p class="muted">None.</p>"#);
        return;
    }
    let _ = write!(
        out,
        r#"<div class="table-wrap"><table id="{id}"><thead><tr><th scope="col">Severity</th><th scope="col">Alert</th><th scope="col">Since (UTC)</th>{}<th scope="col">Labels</th></tr></thead><tbody>"#,
        if resolved {
            r#"<th scope="col">Ended</th>"#
        } else {
            ""
        }
    );
    for a in alerts {
        let class = match a.severity {
            Severity::Critical => "bad",
            Severity::Warning => "warn",
            Severity::Info => "ok",
        };
        let name = a
            .labels
            .get("alertname")
            .map(String::as_str)
            .unwrap_or("alert");
        let summary = a
            .annotations
            .get("summary")
            .map(String::as_str)
            .unwrap_or_default();
        let _ = write!(
            out,
            r#"<tr><td><span class="badge {class}">{}</span></td><td><strong>{}</strong><br>{}</td><td>{}</td>"#,
            a.severity.as_str(),
            escape(name),
            escape(summary),
            clock(a.starts_at)
        );
        if resolved {
            let _ = write!(out, "<td>{}</td>", a.ends_at.map(clock).unwrap_or_default());
        }
        let _ = write!(
            out,
            r#"<td class="labels">{}</td></tr>"#,
            labels_text(&a.labels)
        );
    }
    out.push_str("</tbody></table></div>");
}
