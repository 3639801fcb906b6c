//! The analysis pages: anomalies (analysed series ranked by score, each
//! charted with its expected value, band and anomaly marks) and forecasts
//! (per horizon with intervals, time to threshold, recommendations).

use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::layout::escape;
use super::recorder::AnalysisSample;
use super::{Console, PageQuery, human_duration, labels_text, refresh_secs, respond};
use crate::chart::{Chart, Line, short_number};
use crate::model::recommendation::AnalysedSeries;

const NO_ANALYSIS: &str = r#"<p class="muted">The analysis processor is off (<code>processors.analysis.enabled</code>).</p>"#;

pub async fn anomalies(State(console): State<Arc<Console>>, query: PageQuery) -> Response {
    let mut out = String::from("<h1>Anomalies</h1>");
    if !console.recorder.has_analysis() {
        out.push_str(NO_ANALYSIS);
    } else {
        let (ranked, total) = console.recorder.ranking();
        let anomalous = ranked.iter().filter(|(s, _)| s.anomalous).count();
        let _ = write!(
            out,
            r#"<p id="summary">{anomalous} of the {} highest-scoring series are in an anomaly now ({total} series analysed).</p>"#,
            ranked.len()
        );
        if ranked.is_empty() {
            out.push_str(r#"<p class="muted">No series evaluated yet: the first evaluation step has not run.</p>"#);
        }
        out.push_str(r#"<div class="legend"><span><i class="swatch sw-value"></i>value</span><span><i class="swatch sw-expected"></i>expected</span><span><i class="swatch sw-band"></i>band</span><span><i class="swatch sw-mark"></i>anomaly</span></div><ol class="ranking">"#);
        for (i, (s, history)) in ranked.iter().enumerate() {
            series_block(&mut out, i, s, history);
        }
        out.push_str("</ol>");
    }
    respond(
        &query,
        "Anomalies",
        "/console/anomalies",
        out,
        refresh_secs(&console),
    )
}

fn series_block(out: &mut String, rank: usize, s: &AnalysedSeries, history: &[AnalysisSample]) {
    let (badge, word) = if s.anomalous {
        ("bad", "anomalous")
    } else if s.score >= 0.5 {
        ("warn", "elevated")
    } else {
        ("ok", "normal")
    };
    let title = format!("{} {}", s.metric, service_of(s));
    let description = format!(
        "{}: value {} where {} was expected (band {} to {}), anomaly score {:.2}",
        title,
        short_number(s.value),
        short_number(s.expected),
        short_number(s.lower),
        short_number(s.upper),
        s.score
    );
    let _ = write!(
        out,
        r#"<li class="series" data-metric="{}" data-anomalous="{}"><h2>{}. <code>{}</code> <span class="badge {badge}">{word}</span></h2><p class="labels">{}</p><p>Score <strong>{:.2}</strong> · value {} · expected {} · band {} to {}</p>"#,
        escape(&s.metric),
        s.anomalous,
        rank + 1,
        escape(&s.metric),
        labels_text(&s.labels),
        s.score,
        short_number(s.value),
        short_number(s.expected),
        short_number(s.lower),
        short_number(s.upper),
    );
    out.push_str(&anomaly_chart(&title, &description, history));
    out.push_str("</li>");
}

/// A series' recorded history as a chart: value, expected value, band,
/// and a mark on every sample taken inside an anomaly.
pub(super) fn anomaly_chart(title: &str, description: &str, history: &[AnalysisSample]) -> String {
    let values: Vec<(f64, f64)> = history.iter().map(|h| (h.t, h.value)).collect();
    let expected: Vec<(f64, f64)> = history.iter().map(|h| (h.t, h.expected)).collect();
    let band: Vec<(f64, f64, f64)> = history
        .iter()
        .filter(|h| h.lower.is_finite() && h.upper.is_finite())
        .map(|h| (h.t, h.lower, h.upper))
        .collect();
    let marks: Vec<(f64, f64)> = history
        .iter()
        .filter(|h| h.anomalous)
        .map(|h| (h.t, h.value))
        .collect();
    Chart {
        title,
        description,
        lines: vec![
            Line {
                points: &values,
                class: "value",
                label: "value",
            },
            Line {
                points: &expected,
                class: "expected",
                label: "expected",
            },
        ],
        band: &band,
        marks: &marks,
        unit: "",
    }
    .render()
}

fn service_of(s: &AnalysedSeries) -> String {
    s.labels
        .get("service.name")
        .or_else(|| s.labels.get("job"))
        .map(|v| format!("of {v}"))
        .unwrap_or_default()
}

/// `5m` → 300.
fn horizon_secs(label: &str) -> Option<f64> {
    let (n, unit) = label.split_at(label.find(|c: char| !c.is_ascii_digit())?);
    let n: f64 = n.parse().ok()?;
    Some(
        n * match unit {
            "s" => 1.0,
            "m" => 60.0,
            "h" => 3600.0,
            "d" => 86_400.0,
            _ => return None,
        },
    )
}

pub async fn forecasts(State(console): State<Arc<Console>>, query: PageQuery) -> Response {
    let mut out = String::from("<h1>Forecasts</h1>");
    if !console.recorder.has_analysis() {
        out.push_str(NO_ANALYSIS);
        return respond(
            &query,
            "Forecasts",
            "/console/forecasts",
            out,
            refresh_secs(&console),
        );
    }
    let recommendations = console
        .api
        .recommendations
        .as_ref()
        .map(|r| r.recommendations())
        .unwrap_or_default();
    out.push_str(r#"<section aria-labelledby="rec-h"><h2 id="rec-h">Recommendations</h2>"#);
    if recommendations.is_empty() {
        out.push_str(r#"<p class="muted">None now: no anomaly and no threshold forecast to be crossed within a day.</p>"#);
    } else {
        out.push_str(r#"<ul id="recommendations">"#);
        for r in &recommendations {
            let _ = write!(
                out,
                r#"<li><span class="badge {}">{}</span> {}</li>"#,
                if r.kind == "anomaly" { "bad" } else { "warn" },
                escape(r.kind),
                escape(&r.summary)
            );
        }
        out.push_str("</ul>");
    }
    out.push_str("</section>");

    let (ranked, _) = console.recorder.ranking();
    // Soonest threshold crossings first, then the others by anomaly rank.
    let eta = |s: &AnalysedSeries| {
        s.thresholds
            .iter()
            .filter_map(|(_, eta)| *eta)
            .fold(f64::INFINITY, f64::min)
    };
    let mut with_forecasts: Vec<_> = ranked
        .iter()
        .filter(|(s, _)| !s.forecasts.is_empty())
        .collect();
    with_forecasts.sort_by(|a, b| eta(&a.0).total_cmp(&eta(&b.0)));
    out.push_str(
        r#"<section aria-labelledby="fc-h"><h2 id="fc-h">Forecasts: soonest threshold crossings first</h2>"#,
    );
    if with_forecasts.is_empty() {
        out.push_str(r#"<p class="muted">No forecast yet: a forecaster gives one after its first forecasts have been scored against what happened.</p>"#);
    }
    out.push_str(r#"<div class="legend"><span><i class="swatch sw-value"></i>value</span><span><i class="swatch sw-forecast"></i>forecast</span><span><i class="swatch sw-band"></i>prediction interval</span></div>"#);
    for (s, history) in with_forecasts {
        forecast_block(&mut out, s, history);
    }
    out.push_str("</section>");
    respond(
        &query,
        "Forecasts",
        "/console/forecasts",
        out,
        refresh_secs(&console),
    )
}

fn forecast_block(out: &mut String, s: &AnalysedSeries, history: &[AnalysisSample]) {
    let _ = write!(
        out,
        r#"<div class="series" data-metric="{}"><h3><code>{}</code></h3><p class="labels">{}</p><div class="table-wrap"><table><thead><tr><th scope="col">Horizon</th><th scope="col" class="num">Forecast</th><th scope="col" class="num">Interval</th></tr></thead><tbody>"#,
        escape(&s.metric),
        escape(&s.metric),
        labels_text(&s.labels)
    );
    for f in &s.forecasts {
        let _ = write!(
            out,
            r#"<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{} to {}</td></tr>"#,
            escape(&f.horizon),
            short_number(f.value),
            short_number(f.lower),
            short_number(f.upper)
        );
    }
    out.push_str("</tbody></table></div>");
    for (level, eta) in &s.thresholds {
        let _ = write!(
            out,
            "<p>Threshold {}: {}</p>",
            short_number(*level),
            match eta {
                Some(secs) => format!("reached in about {}", human_duration(*secs)),
                None => "not reached on the current trend".into(),
            }
        );
    }
    let values: Vec<(f64, f64)> = history.iter().map(|h| (h.t, h.value)).collect();
    let now = history.last().map_or(0.0, |h| h.t);
    let mut ahead = vec![(now, s.value)];
    let mut band = vec![(now, s.value, s.value)];
    for f in &s.forecasts {
        if let Some(h) = horizon_secs(&f.horizon) {
            ahead.push((now + h, f.value));
            band.push((now + h, f.lower, f.upper));
        }
    }
    let title = format!("{} forecast", s.metric);
    let description = format!(
        "{}: now {}; {}",
        s.metric,
        short_number(s.value),
        s.forecasts
            .iter()
            .map(|f| format!(
                "in {} {} ({} to {})",
                f.horizon,
                short_number(f.value),
                short_number(f.lower),
                short_number(f.upper)
            ))
            .collect::<Vec<_>>()
            .join(", ")
    );
    out.push_str(
        &Chart {
            title: &title,
            description: &description,
            lines: vec![
                Line {
                    points: &values,
                    class: "value",
                    label: "value",
                },
                Line {
                    points: &ahead,
                    class: "forecast",
                    label: "forecast",
                },
            ],
            band: &band,
            marks: &[],
            unit: "",
        }
        .render(),
    );
    out.push_str("</div>");
}

#[cfg(test)]
mod tests {
    #[test]
    fn horizons_are_read_in_seconds() {
        assert_eq!(super::horizon_secs("5m"), Some(300.0));
        assert_eq!(super::horizon_secs("1h"), Some(3600.0));
        assert_eq!(super::horizon_secs("x"), None);
    }
}
