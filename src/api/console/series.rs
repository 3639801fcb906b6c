//! The series explorer: search active series by name and labels (the
//! API's selector syntax), and a page per series that watches it and
//! charts its recent points, refreshed live.

use std::collections::BTreeMap;
use std::fmt::Write;
use std::sync::Arc;

use axum::extract::State;
use axum::response::Response;

use super::layout::{escape, url_encode};
use super::{Console, PageQuery, labels_text, refresh_secs, respond};
use crate::chart::{Chart, Line, short_number};
use crate::pipeline::query::SeriesMatcher;

/// Series listed at most on one search.
const SHOWN: usize = 200;

pub async fn search(State(console): State<Arc<Console>>, query: PageQuery) -> Response {
    let selector = query.get("match").cloned().unwrap_or_default();
    let mut out = format!(
        r#"<h1>Series</h1><form class="search" method="get" action="/console/series" role="search"><div><label for="match">Name or selector, e.g. <code>http_server_duration_seconds</code>, <code>{{job="api"}}</code> or <code>checkout_.*</code></label><input type="text" id="match" name="match" value="{}"></div><button type="submit">Search</button></form>"#,
        escape(&selector)
    );
    if !selector.is_empty() {
        match SeriesMatcher::parse(&selector) {
            Err(e) => {
                let _ = write!(out, r#"<p role="alert">Not a selector: {}</p>"#, escape(&e));
            }
            Ok(matcher) => {
                let series = console.api.series.clone();
                let page = tokio::task::spawn_blocking(move || series.find_series(&matcher, SHOWN))
                    .await
                    .ok();
                match page {
                    None => out.push_str(r#"<p role="alert">The search failed.</p>"#),
                    Some(page) => {
                        let _ = write!(
                            out,
                            r#"<p id="found">{}{} series.</p>"#,
                            if page.truncated { "The first " } else { "" },
                            page.series.len()
                        );
                        out.push_str(r#"<div class="table-wrap"><table id="series"><thead><tr><th scope="col">Series</th><th scope="col">Type</th><th scope="col">Labels</th></tr></thead><tbody>"#);
                        for s in &page.series {
                            let _ = write!(
                                out,
                                r#"<tr><td><a href="{}">{}</a></td><td>{}</td><td class="labels">{}</td></tr>"#,
                                view_link(&s.name, &s.labels),
                                escape(&s.name),
                                s.kind,
                                labels_text(&s.labels)
                            );
                        }
                        out.push_str("</tbody></table></div>");
                    }
                }
            }
        }
    }
    respond(&query, "Series", "/console/series", out, 0)
}

/// The view page's address for one series.
fn view_link(name: &str, labels: &BTreeMap<String, String>) -> String {
    let mut link = format!("/console/series/view?name={}", url_encode(name));
    for (k, v) in labels {
        let _ = write!(link, "&amp;label.{}={}", url_encode(k), url_encode(v));
    }
    link
}

pub async fn view(State(console): State<Arc<Console>>, query: PageQuery) -> Response {
    let name = query.get("name").cloned().unwrap_or_default();
    let labels: Vec<(String, String)> = query
        .iter()
        .filter_map(|(k, v)| k.strip_prefix("label.").map(|k| (k.to_string(), v.clone())))
        .collect();
    let mut out = format!(r#"<h1>Series <code>{}</code></h1>"#, escape(&name));
    match console.api.series.series_history(&name, &labels) {
        Err(e) => {
            let _ = write!(
                out,
                r#"<p role="alert">{}</p><p><a href="/console/series">Back to the search</a></p>"#,
                escape(&e.to_string())
            );
        }
        Ok(history) => {
            let _ = write!(
                out,
                r#"<p class="labels">{}</p><p>Type {} · watched: every update is recorded from the first view on (up to {} points).</p>"#,
                labels_text(&history.labels),
                history.kind,
                history.capacity
            );
            let points: Vec<(f64, f64)> = history
                .points
                .iter()
                .filter_map(|p| {
                    let t = p.time_unix_nano as f64 / 1e9;
                    p.value.or(p.count.map(|c| c as f64)).map(|v| (t, v))
                })
                .collect();
            let what = if history.points.iter().any(|p| p.value.is_some()) {
                "value"
            } else {
                "count"
            };
            let description = format!(
                "{} {what}, {} points, latest {}",
                name,
                points.len(),
                points.last().map_or("none".into(), |p| short_number(p.1))
            );
            out.push_str(
                &Chart {
                    title: &name,
                    description: &description,
                    lines: vec![Line {
                        points: &points,
                        class: "value",
                        label: what,
                    }],
                    band: &[],
                    marks: &[],
                    unit: "",
                }
                .render(),
            );
            let _ = write!(
                out,
                r#"<p id="latest">Latest {what}: <strong>{}</strong> ({} points)</p>"#,
                points.last().map_or("none".into(), |p| short_number(p.1)),
                points.len()
            );
        }
    }
    respond(
        &query,
        "Series",
        "/console/series",
        out,
        refresh_secs(&console),
    )
}
