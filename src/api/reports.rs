//! Reports: a summary of a period — health, ingest volume, top anomalies,
//! forecasts near thresholds, recommendations, SLO status per service and
//! the alerts of the period — generated on a schedule (`api.reports.
//! interval`, hourly) and on demand, kept in a bounded history, served as
//! JSON and as a readable Markdown or HTML page.
//!
//! - `GET /api/v1/reports`: the kept reports (id, time, period), newest
//!   first;
//! - `GET /api/v1/reports/latest[?format=json|markdown|html]`;
//! - `GET /api/v1/reports/{id}[?format=…]`;
//! - `POST /api/v1/reports`: generate one now → 201.
//!
//! Counters are cumulative, so a report subtracts the totals recorded
//! with the previous report (or at start): ingest volume and SLO calls
//! and errors are for the period exactly. SLO availability per service is
//! `1 − errors / calls` of its server and consumer spans
//! (`traces_span_metrics_calls_total`), against `slo_objective`.

use std::collections::{BTreeMap, VecDeque};
use std::fmt::Write as _;
use std::sync::Arc;

use axum::Json;
use axum::extract::{Path, Query, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use parking_lot::Mutex;
use serde::{Deserialize, Serialize};

use super::ApiState;
use super::config::ReportsConfig;
use super::error::ApiError;
use crate::model::alert::Alert;
use crate::model::recommendation::{Recommendation, RecommendationSource};
use crate::model::time::rfc3339;
use crate::pipeline::Shutdown;
use crate::pipeline::query::{AlertsQuery, SeriesQuery};
use crate::telemetry::health::HealthReport;
use crate::telemetry::{Signal, Telemetry};

const CALLS: &str = "traces_span_metrics_calls_total";

/// Items received in the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct Ingest {
    pub spans: u64,
    pub data_points: u64,
    pub log_records: u64,
    /// Requests refused for any reason (overload, malformed, ...).
    pub refused_requests: u64,
}

/// SLO status of one service in the period.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SloStatus {
    pub service: String,
    pub calls: f64,
    pub errors: f64,
    pub availability: f64,
    pub objective: f64,
    pub met: bool,
    /// Share of the period's error budget used (1 = all of it).
    pub budget_used: f64,
}

/// Alerts of the period.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct AlertSummary {
    /// Alerts that started in the period (active or resolved since).
    pub started: usize,
    /// Alerts resolved in the period.
    pub resolved: usize,
    /// Active at the end of the period.
    pub active: Vec<Alert>,
}

/// One report.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Report {
    pub id: u64,
    /// `scheduled` or `manual`.
    pub trigger: &'static str,
    pub generated_at: String,
    pub period_from: String,
    pub period_to: String,
    pub period_seconds: f64,
    pub health: HealthReport,
    pub ingest: Ingest,
    /// Series in an anomaly now, highest score first.
    pub anomalies: Vec<Recommendation>,
    /// Levels forecast to be crossed, soonest first.
    pub forecasts: Vec<Recommendation>,
    /// Every finding, in one sentence each.
    pub recommendations: Vec<String>,
    pub slo: Vec<SloStatus>,
    pub alerts: AlertSummary,
}

/// Totals recorded with the previous report.
#[derive(Debug, Clone, Default)]
struct Marks {
    at: f64,
    accepted: [u64; 3],
    refused: u64,
    calls: BTreeMap<String, f64>,
    errors: BTreeMap<String, f64>,
}

/// The report generator and its history.
pub struct Reports {
    cfg: ReportsConfig,
    telemetry: Arc<Telemetry>,
    series: Arc<dyn SeriesQuery>,
    recommendations: Option<Arc<dyn RecommendationSource>>,
    alerts: Option<Arc<dyn AlertsQuery>>,
    state: Mutex<(VecDeque<Arc<Report>>, Marks, u64)>,
}

fn now_secs() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or(0.0)
}

impl Reports {
    pub fn new(
        cfg: ReportsConfig,
        telemetry: Arc<Telemetry>,
        series: Arc<dyn SeriesQuery>,
        recommendations: Option<Arc<dyn RecommendationSource>>,
        alerts: Option<Arc<dyn AlertsQuery>>,
    ) -> Self {
        let reports = Self {
            cfg,
            telemetry,
            series,
            recommendations,
            alerts,
            state: Mutex::new((VecDeque::new(), Marks::default(), 0)),
        };
        // The first period starts now: calls restored from saved state
        // (counted before the restart) are not in it.
        let (calls, errors) = reports.slo_totals();
        *reports.state.lock() = (
            VecDeque::new(),
            Marks {
                at: reports.telemetry.started_unix(),
                calls,
                errors,
                ..Marks::default()
            },
            0,
        );
        reports
    }

    /// Calls and errors per service (server and consumer spans) now.
    fn slo_totals(&self) -> (BTreeMap<String, f64>, BTreeMap<String, f64>) {
        let mut calls = BTreeMap::new();
        let mut errors = BTreeMap::new();
        for kind in ["SPAN_KIND_SERVER", "SPAN_KIND_CONSUMER"] {
            for (labels, v) in self.series.sum_by(CALLS, &["job"], &[("span_kind", kind)]) {
                *calls.entry(labels["job"].clone()).or_insert(0.0) += v;
            }
            for (labels, v) in self.series.sum_by(
                CALLS,
                &["job"],
                &[("span_kind", kind), ("status_code", "STATUS_CODE_ERROR")],
            ) {
                *errors.entry(labels["job"].clone()).or_insert(0.0) += v;
            }
        }
        (calls, errors)
    }

    /// Generates a report now and keeps it.
    pub fn generate(&self, trigger: &'static str) -> Arc<Report> {
        let now = now_secs();
        let t = &self.telemetry;
        let accepted = [
            t.accepted_total(Signal::Traces),
            t.accepted_total(Signal::Metrics),
            t.accepted_total(Signal::Logs),
        ];
        let refused = t.refused_requests_total();
        let (calls, errors) = self.slo_totals();
        let findings = self
            .recommendations
            .as_ref()
            .map(|r| r.recommendations())
            .unwrap_or_default();
        let top = self.cfg.top;
        let mut anomalies: Vec<Recommendation> = findings
            .iter()
            .filter(|r| r.kind == "anomaly")
            .cloned()
            .collect();
        let score = |r: &Recommendation| r.numbers.get("score").copied().unwrap_or(0.0);
        anomalies.sort_by(|a, b| score(b).total_cmp(&score(a)));
        anomalies.truncate(top);
        // Already soonest first.
        let forecasts: Vec<Recommendation> = findings
            .iter()
            .filter(|r| r.kind == "threshold")
            .take(top)
            .cloned()
            .collect();
        let (active, history) = self
            .alerts
            .as_ref()
            .map(|a| (a.active(), a.history()))
            .unwrap_or_default();
        let health = t.health(true, false);

        let mut state = self.state.lock();
        let (reports, marks, next_id) = &mut *state;
        let from = marks.at;
        let slo = calls
            .iter()
            .filter_map(|(service, &total)| {
                let c = (total - marks.calls.get(service).copied().unwrap_or(0.0)).max(0.0);
                if c <= 0.0 {
                    return None;
                }
                let e_total = errors.get(service).copied().unwrap_or(0.0);
                let e = (e_total - marks.errors.get(service).copied().unwrap_or(0.0)).clamp(0.0, c);
                let availability = 1.0 - e / c;
                let objective = self.cfg.slo_objective;
                Some(SloStatus {
                    service: service.clone(),
                    calls: c,
                    errors: e,
                    availability,
                    objective,
                    met: availability >= objective,
                    budget_used: (e / c) / (1.0 - objective),
                })
            })
            .collect();
        let in_period = |x: f64| x >= from && x <= now;
        let alerts = AlertSummary {
            started: active
                .iter()
                .chain(history.iter())
                .filter(|a| in_period(a.starts_at))
                .count(),
            resolved: history
                .iter()
                .filter(|a| a.ends_at.is_some_and(in_period))
                .count(),
            active: active.into_iter().take(top).collect(),
        };
        *next_id += 1;
        let report = Arc::new(Report {
            id: *next_id,
            trigger,
            generated_at: rfc3339(now),
            period_from: rfc3339(from),
            period_to: rfc3339(now),
            period_seconds: now - from,
            health,
            ingest: Ingest {
                spans: accepted[0].saturating_sub(marks.accepted[0]),
                data_points: accepted[1].saturating_sub(marks.accepted[1]),
                log_records: accepted[2].saturating_sub(marks.accepted[2]),
                refused_requests: refused.saturating_sub(marks.refused),
            },
            anomalies,
            forecasts,
            recommendations: findings.iter().map(|r| r.summary.clone()).collect(),
            slo,
            alerts,
        });
        *marks = Marks {
            at: now,
            accepted,
            refused,
            calls,
            errors,
        };
        reports.push_back(report.clone());
        while reports.len() > self.cfg.history {
            reports.pop_front();
        }
        report
    }

    /// The newest report, if any.
    pub fn latest(&self) -> Option<Arc<Report>> {
        self.find(None)
    }

    fn find(&self, id: Option<u64>) -> Option<Arc<Report>> {
        let state = self.state.lock();
        match id {
            None => state.0.back().cloned(),
            Some(id) => state.0.iter().find(|r| r.id == id).cloned(),
        }
    }

    /// Generates a report every `interval` until shutdown.
    pub async fn run(self: Arc<Self>, shutdown: Shutdown) {
        let stop = shutdown.wait();
        tokio::pin!(stop);
        let every = self.cfg.interval.get();
        loop {
            tokio::select! {
                _ = &mut stop => return,
                _ = tokio::time::sleep(every) => {
                    self.generate("scheduled");
                }
            }
        }
    }
}

/// A report as Markdown.
pub fn markdown(r: &Report) -> String {
    let mut s = String::new();
    let _ = writeln!(s, "# StreamGate report {}\n", r.id);
    let _ = writeln!(
        s,
        "Period {} to {} ({:.0} min), generated {} ({}).\n",
        r.period_from,
        r.period_to,
        r.period_seconds / 60.0,
        r.generated_at,
        r.trigger
    );
    let _ = writeln!(s, "## Health: {:?}\n", r.health.status);
    for reason in &r.health.reasons {
        let _ = writeln!(s, "- {reason}");
    }
    let _ = writeln!(s, "\n## Ingest\n");
    let _ = writeln!(
        s,
        "| spans | data points | log records | refused requests |"
    );
    let _ = writeln!(s, "|---|---|---|---|");
    let i = &r.ingest;
    let _ = writeln!(
        s,
        "| {} | {} | {} | {} |",
        i.spans, i.data_points, i.log_records, i.refused_requests
    );
    let _ = writeln!(s, "\n## SLO status\n");
    if r.slo.is_empty() {
        let _ = writeln!(s, "No server spans in the period.");
    } else {
        let _ = writeln!(
            s,
            "| service | calls | errors | availability | objective | met | budget used |"
        );
        let _ = writeln!(s, "|---|---|---|---|---|---|---|");
        for x in &r.slo {
            let _ = writeln!(
                s,
                "| {} | {:.0} | {:.0} | {:.4}% | {:.3}% | {} | {:.0}% |",
                x.service,
                x.calls,
                x.errors,
                100.0 * x.availability,
                100.0 * x.objective,
                if x.met { "yes" } else { "no" },
                100.0 * x.budget_used
            );
        }
    }
    for (title, list) in [
        ("Top anomalies", &r.anomalies),
        ("Forecasts near thresholds", &r.forecasts),
    ] {
        let _ = writeln!(s, "\n## {title}\n");
        if list.is_empty() {
            let _ = writeln!(s, "None.");
        }
        for x in list {
            let _ = writeln!(s, "- {}", x.summary);
        }
    }
    let _ = writeln!(s, "\n## Alerts\n");
    let _ = writeln!(
        s,
        "{} started, {} resolved in the period; {} active now.",
        r.alerts.started,
        r.alerts.resolved,
        r.alerts.active.len()
    );
    for a in &r.alerts.active {
        let _ = writeln!(
            s,
            "- {} ({}): {}",
            a.labels.get("alertname").map_or("", String::as_str),
            a.severity.as_str(),
            a.annotations.get("summary").map_or("", String::as_str)
        );
    }
    let _ = writeln!(s, "\n## Recommendations\n");
    if r.recommendations.is_empty() {
        let _ = writeln!(s, "None.");
    }
    for x in &r.recommendations {
        let _ = writeln!(s, "- {x}");
    }
    s
}

/// Escapes text for HTML.
fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A report as a small, self-contained HTML page (the Markdown rendered
/// line by line: headings, lists, tables, paragraphs).
pub fn html(r: &Report) -> String {
    let mut out = String::from(
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\">",
    );
    let _ = write!(
        out,
        "<title>StreamGate report {}</title><style>body{{font-family:system-ui,sans-serif;max-width:60rem;margin:1rem auto;padding:0 1rem;color:#111}}table{{border-collapse:collapse}}td,th{{border:1px solid #999;padding:.2rem .5rem}}</style></head><body>",
        r.id
    );
    let mut in_list = false;
    let mut table_rows: Vec<Vec<String>> = Vec::new();
    let flush_table = |rows: &mut Vec<Vec<String>>, out: &mut String| {
        if rows.is_empty() {
            return;
        }
        out.push_str("<table>");
        for (i, row) in rows.iter().enumerate() {
            let tag = if i == 0 { "th" } else { "td" };
            out.push_str("<tr>");
            for c in row {
                let _ = write!(out, "<{tag}>{}</{tag}>", escape(c));
            }
            out.push_str("</tr>");
        }
        out.push_str("</table>");
        rows.clear();
    };
    for line in markdown(r).lines() {
        if in_list && !line.starts_with("- ") {
            out.push_str("</ul>");
            in_list = false;
        }
        if !line.starts_with('|') {
            flush_table(&mut table_rows, &mut out);
        }
        if let Some(h) = line.strip_prefix("## ") {
            let _ = write!(out, "<h2>{}</h2>", escape(h));
        } else if let Some(h) = line.strip_prefix("# ") {
            let _ = write!(out, "<h1>{}</h1>", escape(h));
        } else if let Some(item) = line.strip_prefix("- ") {
            if !in_list {
                out.push_str("<ul>");
                in_list = true;
            }
            let _ = write!(out, "<li>{}</li>", escape(item));
        } else if line.starts_with('|') {
            if line.starts_with("|---") {
                continue;
            }
            table_rows.push(
                line.trim_matches('|')
                    .split('|')
                    .map(|c| c.trim().to_string())
                    .collect(),
            );
        } else if !line.is_empty() {
            let _ = write!(out, "<p>{}</p>", escape(line));
        }
    }
    if in_list {
        out.push_str("</ul>");
    }
    flush_table(&mut table_rows, &mut out);
    out.push_str("</body></html>");
    out
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FormatParam {
    format: Option<String>,
}

fn reports(state: &ApiState) -> Result<&Arc<Reports>, ApiError> {
    state
        .reports
        .as_ref()
        .ok_or_else(|| ApiError::not_found("reports are not running"))
}

fn render(report: &Report, format: Option<&str>) -> Result<Response, ApiError> {
    Ok(match format.unwrap_or("json") {
        "json" => Json(report.clone()).into_response(),
        "markdown" | "md" => (
            [(header::CONTENT_TYPE, "text/markdown; charset=utf-8")],
            markdown(report),
        )
            .into_response(),
        "html" => (
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            html(report),
        )
            .into_response(),
        other => {
            return Err(ApiError::bad_request(format!(
                "format {other:?} is not one of json, markdown, html"
            )));
        }
    })
}

pub async fn list(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let r = reports(&state)?;
    let list: Vec<serde_json::Value> = r
        .state
        .lock()
        .0
        .iter()
        .rev()
        .map(|x| {
            serde_json::json!({
                "id": x.id,
                "trigger": x.trigger,
                "generated_at": x.generated_at,
                "period_from": x.period_from,
                "period_to": x.period_to,
                "health": x.health.status,
            })
        })
        .collect();
    Ok(Json(serde_json::json!({ "reports": list })).into_response())
}

pub async fn latest(
    State(state): State<Arc<ApiState>>,
    Query(q): Query<FormatParam>,
) -> Result<Response, ApiError> {
    let r = reports(&state)?;
    let report = r.find(None).ok_or_else(|| {
        ApiError::not_found("no report yet: POST /api/v1/reports generates one now")
    })?;
    render(&report, q.format.as_deref())
}

pub async fn one(
    State(state): State<Arc<ApiState>>,
    Path(id): Path<String>,
    Query(q): Query<FormatParam>,
) -> Result<Response, ApiError> {
    let r = reports(&state)?;
    let id: u64 = id
        .parse()
        .map_err(|_| ApiError::bad_request(format!("report id {id:?} is not a number")))?;
    let report = r.find(Some(id)).ok_or_else(|| {
        ApiError::not_found(format!("no report {id} (kept: api.reports.history)"))
    })?;
    render(&report, q.format.as_deref())
}

pub async fn create(State(state): State<Arc<ApiState>>) -> Result<Response, ApiError> {
    let r = reports(&state)?;
    let report = r.generate("manual");
    Ok((StatusCode::CREATED, Json(Report::clone(&report))).into_response())
}
