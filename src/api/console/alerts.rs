//! The alerts page: active alerts, the recent history and the latest
//! period report rendered (ingest, availability, findings, anomalies
//! charted).

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::layout::escape;
use super::{Console, PageQuery, labels_text, refresh_secs, respond};
use crate::chart::{clock, short_number};
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
    report_section(&mut out, &console);
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

/// The latest period report, rendered: health, ingest, availability,
/// findings, and each anomaly charted from the console's history when it
/// has one.
fn report_section(out: &mut String, console: &Console) {
    out.push_str(
        r#"<section id="report" aria-labelledby="report-h"><h2 id="report-h">Latest report</h2>"#,
    );
    let Some(report) = console.api.reports.as_ref().and_then(|r| r.latest()) else {
        out.push_str(r#"<p class="muted">No report yet; one is made every <code>api.reports.interval</code>, or now with <code>POST /api/v1/reports</code>.</p></section>"#);
        return;
    };
    let _ = write!(
        out,
        r#"<p>Report {} ({}) for {} to {}: health <strong>{:?}</strong>. Also as <a href="/api/v1/reports/latest?format=html">HTML</a>, <a href="/api/v1/reports/latest?format=markdown">Markdown</a> and <a href="/api/v1/reports/latest">JSON</a>.</p>"#,
        report.id,
        escape(report.trigger),
        escape(&report.period_from),
        escape(&report.period_to),
        report.health.status
    );
    let i = &report.ingest;
    let _ = write!(
        out,
        r#"<div class="cards">{}{}{}{}</div>"#,
        card("Spans", i.spans as f64),
        card("Data points", i.data_points as f64),
        card("Log records", i.log_records as f64),
        card("Refused requests", i.refused_requests as f64)
    );
    if !report.slo.is_empty() {
        out.push_str(r#"<h3>Service availability</h3><div class="table-wrap"><table id="slo"><thead><tr><th scope="col">Service</th><th scope="col" class="num">Calls</th><th scope="col" class="num">Errors</th><th scope="col" class="num">Availability</th><th scope="col" class="num">Budget used</th><th scope="col">Objective</th></tr></thead><tbody>"#);
        for slo in &report.slo {
            let _ = write!(
                out,
                r#"<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td><td class="num">{:.3} %</td><td class="num">{:.0} %</td><td><span class="badge {}">{}</span></td></tr>"#,
                escape(&slo.service),
                short_number(slo.calls),
                short_number(slo.errors),
                slo.availability * 100.0,
                slo.budget_used * 100.0,
                if slo.met { "ok" } else { "bad" },
                if slo.met { "met" } else { "missed" }
            );
        }
        out.push_str("</tbody></table></div>");
    }
    if !report.recommendations.is_empty() {
        out.push_str("<h3>Findings</h3><ul>");
        for r in &report.recommendations {
            let _ = write!(out, "<li>{}</li>", escape(r));
        }
        out.push_str("</ul>");
    }
    if !report.anomalies.is_empty() {
        out.push_str("<h3>Anomalies in the report</h3>");
        let (ranked, _) = console.recorder.ranking();
        for a in &report.anomalies {
            let history = ranked
                .iter()
                .find(|(s, _)| s.metric == a.metric && s.labels == a.labels)
                .map(|(_, h)| h.as_slice())
                .unwrap_or_default();
            let _ = write!(out, "<p>{}</p>", escape(&a.summary));
            out.push_str(&super::analysis::anomaly_chart(
                &a.metric, &a.summary, history,
            ));
        }
    }
    out.push_str("</section>");
}

fn card(label: &str, value: f64) -> String {
    format!(
        r#"<div class="card"><div class="label">{label}</div><div class="value">{}</div></div>"#,
        short_number(value)
    )
}
