//! The overview page (`/`): health with its reasons, totals, ingest and
//! refusal rates over time, memory, where StreamGate listens and where it
//! pushes.

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::layout::escape;
use super::recorder::RateSample;
use super::{Console, PageQuery, human_duration, per_second, refresh_secs, respond};
use crate::chart::{Chart, Line, short_number};
use crate::telemetry::Signal;
use crate::telemetry::health::HealthLevel;

pub async fn page(State(console): State<Arc<Console>>, query: PageQuery) -> Response {
    let body = render(&console);
    respond(&query, "Overview", "/", body, refresh_secs(&console))
}

fn render(console: &Console) -> String {
    let api = &console.api;
    let t = &api.telemetry;
    let health = t.health(api.health.is_ready(), api.health.is_draining());
    let (class, word) = match health.status {
        HealthLevel::Ok => ("status-ok", "OK"),
        HealthLevel::Degraded => ("status-degraded", "Degraded"),
        HealthLevel::Failing => ("status-failing", "Failing"),
    };
    let rates = console.recorder.rates();
    let last = rates.last().copied().unwrap_or_default();
    let mut out = String::new();
    let _ = write!(
        out,
        r#"<h1>Overview</h1><p id="health" class="{class}"><strong>Health: {word}</strong>{}</p>"#,
        if api.health.is_draining() {
            " (shutting down)"
        } else {
            ""
        }
    );
    if !health.reasons.is_empty() {
        out.push_str(r#"<ul class="reasons">"#);
        for reason in &health.reasons {
            let _ = write!(out, "<li>{}</li>", escape(reason));
        }
        out.push_str("</ul>");
    }
    let accepted_rate: f64 = last.accepted.iter().flatten().sum();
    let memory = crate::telemetry::process::resident_bytes().unwrap_or(0) as f64;
    out.push_str(r#"<section aria-labelledby="now-h"><h2 id="now-h">Now</h2><div class="cards">"#);
    for (label, value) in [
        ("Ingest", per_second(accepted_rate)),
        ("Refused requests", per_second(last.refused)),
        ("Active series", short_number(t.active_series() as f64)),
        ("Memory (resident)", format!("{}B", short_number(memory))),
        ("Uptime", human_duration(t.uptime().as_secs_f64())),
        (
            "Spans accepted",
            short_number(t.accepted_total(Signal::Traces) as f64),
        ),
        (
            "Data points accepted",
            short_number(t.accepted_total(Signal::Metrics) as f64),
        ),
        (
            "Log records accepted",
            short_number(t.accepted_total(Signal::Logs) as f64),
        ),
    ] {
        let _ = write!(
            out,
            r#"<div class="card"><div class="label">{label}</div><div class="value">{}</div></div>"#,
            escape(&value)
        );
    }
    out.push_str("</div></section>");

    out.push_str(r#"<section aria-labelledby="rates-h"><h2 id="rates-h">Ingest by signal and transport</h2>"#);
    rate_table(&mut out, &last);
    let series = |f: &dyn Fn(&RateSample) -> f64| -> Vec<(f64, f64)> {
        rates.iter().map(|r| (r.t, f(r))).collect()
    };
    let spans = series(&|r| r.accepted[0].iter().sum());
    let points = series(&|r| r.accepted[1].iter().sum());
    let logs = series(&|r| r.accepted[2].iter().sum());
    let description = format!(
        "Accepted per second, latest: spans {}, data points {}, log records {}",
        per_second(spans.last().map_or(0.0, |p| p.1)),
        per_second(points.last().map_or(0.0, |p| p.1)),
        per_second(logs.last().map_or(0.0, |p| p.1)),
    );
    out.push_str(
        &Chart {
            title: "Accepted items per second",
            description: &description,
            lines: vec![
                Line {
                    points: &spans,
                    class: "value",
                    label: "spans/s",
                },
                Line {
                    points: &points,
                    class: "expected",
                    label: "data points/s",
                },
                Line {
                    points: &logs,
                    class: "forecast",
                    label: "log records/s",
                },
            ],
            band: &[],
            marks: &[],
            unit: "",
        }
        .render(),
    );
    out.push_str(
        r#"<div class="legend"><span><i class="swatch sw-value"></i>spans/s</span><span><i class="swatch sw-expected"></i>data points/s</span><span><i class="swatch sw-forecast"></i>log records/s</span></div>"#,
    );
    let refused = series(&|r| r.refused);
    let memory_line = series(&|r| r.resident_bytes);
    let refused_desc = format!(
        "Refused requests per second, latest {}",
        per_second(last.refused)
    );
    out.push_str("<h2>Refused requests</h2>");
    let by_reason: Vec<_> = t
        .refused_requests_by_reason()
        .into_iter()
        .filter(|(_, n)| *n > 0)
        .collect();
    if by_reason.is_empty() {
        out.push_str(r#"<p id="refusals" class="muted">No request refused since the start.</p>"#);
    } else {
        out.push_str(r#"<div class="table-wrap"><table id="refusals"><caption>Requests refused since the start, by reason</caption><thead><tr><th scope="col">Reason</th><th scope="col" class="num">Requests</th></tr></thead><tbody>"#);
        for (reason, n) in by_reason {
            let _ = write!(
                out,
                r#"<tr><th scope="row">{}</th><td class="num">{}</td></tr>"#,
                reason.as_str(),
                short_number(n as f64)
            );
        }
        out.push_str("</tbody></table></div>");
    }

    out.push_str(
        &Chart {
            title: "Refused requests per second",
            description: &refused_desc,
            lines: vec![Line {
                points: &refused,
                class: "value",
                label: "refused/s",
            }],
            band: &[],
            marks: &[],
            unit: "",
        }
        .render(),
    );
    let memory_desc = format!(
        "Resident memory, latest {}B",
        short_number(last.resident_bytes)
    );
    out.push_str("<h2>Memory</h2>");
    out.push_str(
        &Chart {
            title: "Resident memory",
            description: &memory_desc,
            lines: vec![Line {
                points: &memory_line,
                class: "value",
                label: "resident bytes",
            }],
            band: &[],
            marks: &[],
            unit: "B",
        }
        .render(),
    );
    out.push_str("</section>");

    out.push_str(r#"<section aria-labelledby="where-h"><h2 id="where-h">Listening and sending</h2><div class="table-wrap"><table><thead><tr><th scope="col">What</th><th scope="col">Where</th></tr></thead><tbody>"#);
    let listeners = api.listeners.read().clone();
    for (what, addr) in [
        ("OTLP/gRPC receiver", listeners.otlp_grpc),
        ("OTLP/HTTP receiver", listeners.otlp_http),
        ("Admin server (/metrics, API, console)", listeners.server),
    ] {
        let _ = write!(
            out,
            "<tr><td>{what}</td><td><code>{}</code></td></tr>",
            escape(addr.as_deref().unwrap_or("off"))
        );
    }
    for (what, to) in &console.destinations {
        let _ = write!(
            out,
            "<tr><td>{}</td><td><code>{}</code></td></tr>",
            escape(what),
            escape(to)
        );
    }
    out.push_str("</tbody></table></div></section>");
    out
}

/// The latest rates as a table: signals by transport.
fn rate_table(out: &mut String, last: &RateSample) {
    out.push_str(r#"<div class="table-wrap"><table id="rates"><thead><tr><th scope="col">Signal</th><th scope="col" class="num">gRPC</th><th scope="col" class="num">HTTP</th></tr></thead><tbody>"#);
    for (si, signal) in ["spans", "data points", "log records"].iter().enumerate() {
        let _ = write!(
            out,
            r#"<tr><th scope="row">{signal}</th><td class="num">{}</td><td class="num">{}</td></tr>"#,
            per_second(last.accepted[si][0]),
            per_second(last.accepted[si][1])
        );
    }
    out.push_str("</tbody></table></div>");
}
