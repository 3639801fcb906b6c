//! `streamgate backtest --plot`: beside each output CSV an SVG chart of
//! the series with the expected value, the band, anomaly marks and the
//! first horizon's forecast (drawn at the time it is for), and an
//! `index.html` linking every chart with the summary table. Charts are
//! drawn by [`crate::chart`]; long series are thinned to at most
//! `MAX_POINTS` per line (every anomaly is kept).

use std::fmt::Write as _;
use std::path::{Path, PathBuf};

use super::batch::Summary;
use super::input::Series;
use crate::chart::{Chart, Line, escape};

/// Points per line at most.
const MAX_POINTS: usize = 1500;

/// One plotted file, for the index.
#[derive(Debug, Clone)]
pub struct Plotted {
    /// The chart and the output CSV, relative to the output directory.
    pub svg: PathBuf,
    pub csv: PathBuf,
    pub rows: usize,
    pub anomalies: usize,
}

/// The output columns, by name, parsed from the CSV written for `series`.
struct Columns {
    names: Vec<String>,
    /// Row-major: `cells[row][column]` (the columns after `timestamp,value`).
    cells: Vec<Vec<Option<f64>>>,
}

impl Columns {
    fn read(csv: &str) -> Columns {
        let mut lines = csv.lines();
        let names = lines
            .next()
            .unwrap_or_default()
            .split(',')
            .skip(2)
            .map(str::to_string)
            .collect();
        let cells = lines
            .map(|line| {
                line.split(',')
                    .skip(2)
                    .map(|c| c.parse::<f64>().ok())
                    .collect()
            })
            .collect();
        Columns { names, cells }
    }

    fn index(&self, name: &str) -> Option<usize> {
        self.names.iter().position(|n| n == name)
    }

    fn get(&self, row: usize, col: Option<usize>) -> Option<f64> {
        self.cells.get(row)?.get(col?).copied().flatten()
    }
}

/// `5m` → 300 seconds.
fn horizon_secs(label: &str) -> Option<f64> {
    let split = label.find(|c: char| !c.is_ascii_digit())?;
    let n: f64 = label[..split].parse().ok()?;
    let unit = match &label[split..] {
        "s" => 1.0,
        "m" => 60.0,
        "h" => 3600.0,
        "d" => 86_400.0,
        _ => return None,
    };
    Some(n * unit)
}

/// Draws `series` with the outputs in `csv_path` to `svg_path`.
pub fn plot_file(
    series: &Series,
    csv_path: &Path,
    svg_path: &Path,
    title: &str,
) -> std::io::Result<(usize, usize)> {
    let columns = Columns::read(&std::fs::read_to_string(csv_path)?);
    let rows = &series.rows;
    let stride = rows.len().div_ceil(MAX_POINTS).max(1);
    let (expected, lower, upper, flag) = (
        columns.index("expected"),
        columns.index("lower"),
        columns.index("upper"),
        columns.index("anomaly"),
    );
    let forecast = columns.names.iter().enumerate().find_map(|(i, n)| {
        let label = n.strip_prefix("forecast_")?;
        (!label.contains('_')).then_some((i, horizon_secs(label)?, label.to_string()))
    });
    let mut values = Vec::new();
    let mut expect = Vec::new();
    let mut band = Vec::new();
    let mut ahead = Vec::new();
    let mut marks = Vec::new();
    for (i, row) in rows.iter().enumerate() {
        let anomalous = columns.get(i, flag) == Some(1.0);
        if anomalous && let Some(v) = row.value {
            marks.push((row.time_secs, v));
        }
        if i % stride != 0 {
            continue;
        }
        if let Some(v) = row.value {
            values.push((row.time_secs, v));
        }
        if let Some(e) = columns.get(i, expected) {
            expect.push((row.time_secs, e));
        }
        if let (Some(lo), Some(hi)) = (columns.get(i, lower), columns.get(i, upper)) {
            band.push((row.time_secs, lo, hi));
        }
        if let Some((col, secs, _)) = &forecast
            && let Some(f) = columns.get(i, Some(*col))
        {
            ahead.push((row.time_secs + secs, f));
        }
    }
    let forecast_label = forecast
        .as_ref()
        .map(|(_, _, l)| format!("forecast {l} ahead"))
        .unwrap_or_default();
    let description = format!(
        "{title}: {} points, {} flagged as anomalies; value, expected value, band{}",
        rows.len(),
        marks.len(),
        if ahead.is_empty() {
            String::new()
        } else {
            format!(" and {forecast_label}")
        }
    );
    let mut lines = vec![
        Line {
            points: &values,
            class: "value",
            label: "value",
        },
        Line {
            points: &expect,
            class: "expected",
            label: "expected",
        },
    ];
    if !ahead.is_empty() {
        lines.push(Line {
            points: &ahead,
            class: "forecast",
            label: &forecast_label,
        });
    }
    let svg = Chart {
        title,
        description: &description,
        lines,
        band: &band,
        marks: &marks,
        unit: "",
    }
    .render_standalone();
    std::fs::write(svg_path, svg)?;
    Ok((rows.len(), marks.len()))
}

/// A relative path as an `href`: escaped for HTML, with the characters
/// that would end or redirect a URL path percent-encoded.
fn href(path: &Path) -> String {
    let mut out = String::new();
    for c in path.display().to_string().chars() {
        match c {
            '%' => out.push_str("%25"),
            ' ' => out.push_str("%20"),
            '#' => out.push_str("%23"),
            '?' => out.push_str("%3F"),
            c => out.push(c),
        }
    }
    escape(&out)
}

/// Writes `index.html` in `output`: the summary and every chart.
pub fn write_index(output: &Path, plotted: &[Plotted], summary: &Summary) -> std::io::Result<()> {
    let mut html = String::from(
        r#"<!doctype html><html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width,initial-scale=1"><link rel="icon" href="data:,"><title>StreamGate backtest</title><style>body{font:16px/1.5 system-ui,sans-serif;margin:0 auto;max-width:1100px;padding:16px;color:#111318}table{border-collapse:collapse}th,td{padding:4px 10px;border-bottom:1px solid #d5d9e2;text-align:left}td.num{text-align:right}img{width:100%;height:auto;border:1px solid #d5d9e2;border-radius:8px}figure{margin:24px 0}a{color:#0b57d0}</style></head><body><main><h1>StreamGate backtest</h1>"#,
    );
    let _ = write!(
        html,
        r#"<p>{} files, {} points in {:.2} s ({:.0} points/s).</p><table><caption>Forecasts against the naive forecast</caption><thead><tr><th scope="col">Horizon</th><th scope="col">Forecasts</th><th scope="col">MAE / naive (geometric mean)</th><th scope="col">Interval coverage</th></tr></thead><tbody>"#,
        summary.files,
        summary.rows,
        summary.seconds,
        summary.points_per_second()
    );
    for h in &summary.horizons {
        let _ = write!(
            html,
            r#"<tr><th scope="row">{}</th><td class="num">{}</td><td class="num">{}</td><td class="num">{}</td></tr>"#,
            escape(&h.label),
            h.checked,
            h.relative_mae_geomean
                .map_or("–".into(), |v| format!("{v:.3}")),
            h.coverage
                .map_or("–".into(), |v| format!("{:.1} %", v * 100.0))
        );
    }
    html.push_str(r#"</tbody></table><h2>Series</h2><table><thead><tr><th scope="col">File</th><th scope="col">Points</th><th scope="col">Anomalies flagged</th></tr></thead><tbody>"#);
    for p in plotted {
        let csv = escape(&p.csv.display().to_string());
        let _ = write!(
            html,
            r##"<tr><td><a href="#{csv}">{csv}</a></td><td class="num">{}</td><td class="num">{}</td></tr>"##,
            p.rows, p.anomalies
        );
    }
    html.push_str("</tbody></table>");
    for p in plotted {
        let csv = escape(&p.csv.display().to_string());
        let (csv_href, svg_href) = (href(&p.csv), href(&p.svg));
        let _ = write!(
            html,
            r#"<figure id="{csv}"><img src="{svg_href}" alt="Chart of {csv}: value, expected value, band and {} anomalies"><figcaption><a href="{csv_href}">{csv}</a> ({} points, {} anomalies) · <a href="{svg_href}">chart</a></figcaption></figure>"#,
            p.anomalies, p.rows, p.anomalies
        );
    }
    html.push_str("</main></body></html>\n");
    std::fs::write(output.join("index.html"), html)
}
