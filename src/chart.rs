//! Line charts drawn as SVG by StreamGate itself, for the web console and
//! `streamgate backtest --plot`: time on x, one or more
//! lines, an optional band (expected range) and marks (anomalies), with
//! axes, ticks and a text alternative (`<title>`, `<desc>`) so a screen
//! reader says what the chart shows. Scales to its container through
//! `viewBox`; colours come from the page's CSS classes, so the palette
//! (and its contrast) lives in one place.

use std::fmt::Write;

/// Escapes text for XML/HTML element content and quoted attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// One line: its points `(unix seconds, value)`, CSS class and legend.
pub struct Line<'a> {
    pub points: &'a [(f64, f64)],
    pub class: &'static str,
    pub label: &'a str,
}

/// A chart to draw.
pub struct Chart<'a> {
    /// Short accessible name.
    pub title: &'a str,
    /// What the chart shows, in words (the latest values).
    pub description: &'a str,
    pub lines: Vec<Line<'a>>,
    /// `(t, low, high)`: a shaded range, e.g. the baseline's band.
    pub band: &'a [(f64, f64, f64)],
    /// `(t, value)` points marked with a dot, e.g. anomalies.
    pub marks: &'a [(f64, f64)],
    /// Unit shown after the y tick values (may be empty).
    pub unit: &'a str,
}

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 220.0;
const LEFT: f64 = 64.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 12.0;
const BOTTOM: f64 = 28.0;

/// The palette of a chart outside the console (a file of its own): the
/// console's light colours.
const STANDALONE_STYLE: &str = ".chart{font-family:system-ui,sans-serif;background:#f5f7fb}.chart text{fill:#4a5060;font-size:11px}.chart .grid{stroke:#d5d9e2;stroke-width:1}.chart .line{fill:none;stroke-width:1.5}.chart .value{stroke:#0b57d0}.chart .expected{stroke:#5f3dc4;stroke-dasharray:5 4}.chart .forecast{stroke:#8a4b00;stroke-dasharray:2 3}.chart .band{fill:#c9dcfb;opacity:.7}.chart .mark{fill:#b3261e;stroke:#ffffff;stroke-width:1.5}.chart .empty{fill:#4a5060;font-size:14px}";

impl Chart<'_> {
    /// A standalone SVG document (its own namespace and palette), for a
    /// file of its own.
    pub fn render_standalone(&self) -> String {
        let svg = self.render();
        let body = svg.strip_prefix("<svg ").unwrap_or(&svg);
        let close = body.find('>').map_or(0, |i| i + 1);
        format!(
            r#"<?xml version="1.0" encoding="UTF-8"?>
<svg xmlns="http://www.w3.org/2000/svg" {}<style>{STANDALONE_STYLE}</style>{}"#,
            &body[..close],
            &body[close..]
        )
    }

    /// The SVG element.
    pub fn render(&self) -> String {
        let mut out = String::with_capacity(4096);
        let id = chart_id(self.title);
        let _ = write!(
            out,
            r#"<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-labelledby="{id}-t {id}-d" preserveAspectRatio="xMidYMid meet"><title id="{id}-t">{}</title><desc id="{id}-d">{}</desc>"#,
            escape(self.title),
            escape(self.description)
        );
        let (t0, t1, v0, v1) = self.extent();
        if !t0.is_finite() {
            let _ = write!(
                out,
                r#"<text class="empty" x="{}" y="{}" text-anchor="middle">no data yet</text></svg>"#,
                WIDTH / 2.0,
                HEIGHT / 2.0
            );
            return out;
        }
        let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * (WIDTH - LEFT - RIGHT);
        let y = |v: f64| TOP + (v1 - v) / (v1 - v0) * (HEIGHT - TOP - BOTTOM);
        self.axes(&mut out, t0, t1, v0, v1);
        if !self.band.is_empty() {
            out.push_str(r#"<path class="band" d=""#);
            for (i, (t, _, hi)) in self.band.iter().enumerate() {
                let _ = write!(
                    out,
                    "{}{:.1},{:.1}",
                    if i == 0 { 'M' } else { 'L' },
                    x(*t),
                    y(*hi)
                );
            }
            for (t, lo, _) in self.band.iter().rev() {
                let _ = write!(out, "L{:.1},{:.1}", x(*t), y(*lo));
            }
            out.push_str(r#"Z"/>"#);
        }
        for line in &self.lines {
            let finite: Vec<&(f64, f64)> =
                line.points.iter().filter(|(_, v)| v.is_finite()).collect();
            if finite.is_empty() {
                continue;
            }
            let _ = write!(out, r#"<path class="line {}" d=""#, line.class);
            for (i, (t, v)) in finite.iter().enumerate() {
                let _ = write!(
                    out,
                    "{}{:.1},{:.1}",
                    if i == 0 { 'M' } else { 'L' },
                    x(*t),
                    y(*v)
                );
            }
            let _ = write!(out, r#""><title>{}</title></path>"#, escape(line.label));
        }
        for (t, v) in self.marks {
            let _ = write!(
                out,
                r#"<circle class="mark" cx="{:.1}" cy="{:.1}" r="4"><title>anomaly at {}</title></circle>"#,
                x(*t),
                y(*v),
                clock(*t)
            );
        }
        out.push_str("</svg>");
        out
    }

    /// Time and value ranges over every line, band and mark, padded so
    /// a flat series still gets a visible range.
    fn extent(&self) -> (f64, f64, f64, f64) {
        let mut t = (f64::INFINITY, f64::NEG_INFINITY);
        let mut v = (f64::INFINITY, f64::NEG_INFINITY);
        let mut see = |tt: f64, vv: f64| {
            if tt.is_finite() && vv.is_finite() {
                t = (t.0.min(tt), t.1.max(tt));
                v = (v.0.min(vv), v.1.max(vv));
            }
        };
        for line in &self.lines {
            for (tt, vv) in line.points {
                see(*tt, *vv);
            }
        }
        for (tt, lo, hi) in self.band {
            see(*tt, *lo);
            see(*tt, *hi);
        }
        for (tt, vv) in self.marks {
            see(*tt, *vv);
        }
        if !t.0.is_finite() {
            return (f64::NAN, f64::NAN, f64::NAN, f64::NAN);
        }
        if t.1 - t.0 < 1.0 {
            t = (t.0 - 30.0, t.1 + 30.0);
        }
        let span = v.1 - v.0;
        let pad = if span > 0.0 {
            span * 0.08
        } else {
            v.0.abs().max(1.0) * 0.1
        };
        // Counts, rates and sizes never go below zero: nor does their axis.
        let low = if v.0 >= 0.0 {
            (v.0 - pad).max(0.0)
        } else {
            v.0 - pad
        };
        (t.0, t.1, low, v.1 + pad)
    }

    fn axes(&self, out: &mut String, t0: f64, t1: f64, v0: f64, v1: f64) {
        let x = |t: f64| LEFT + (t - t0) / (t1 - t0) * (WIDTH - LEFT - RIGHT);
        let y = |v: f64| TOP + (v1 - v) / (v1 - v0) * (HEIGHT - TOP - BOTTOM);
        out.push_str(r#"<g class="axis" aria-hidden="true">"#);
        for i in 0..=4 {
            let v = v0 + (v1 - v0) * f64::from(i) / 4.0;
            let _ = write!(
                out,
                r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{:.1}" y2="{:.1}"/><text x="{}" y="{:.1}" text-anchor="end">{}{}</text>"#,
                WIDTH - RIGHT,
                y(v),
                y(v),
                LEFT - 6.0,
                y(v) + 4.0,
                short_number(v),
                escape(self.unit)
            );
        }
        for i in 0..=3 {
            let t = t0 + (t1 - t0) * f64::from(i) / 3.0;
            let anchor = match i {
                0 => "start",
                3 => "end",
                _ => "middle",
            };
            let _ = write!(
                out,
                r#"<text x="{:.1}" y="{}" text-anchor="{anchor}">{}</text>"#,
                x(t),
                HEIGHT - 8.0,
                if t1 - t0 > 86_400.0 {
                    format!("{} {}", date(t), &clock(t)[..5])
                } else {
                    clock(t)
                }
            );
        }
        out.push_str("</g>");
    }
}

/// A stable element id from a title.
fn chart_id(title: &str) -> String {
    let hash = title.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3)
    });
    format!("c{hash:x}")
}

/// `YYYY-MM-DD` (UTC) of a Unix time (days counted from the civil
/// calendar's epoch, proleptic Gregorian).
pub fn date(t: f64) -> String {
    let days = (t / 86_400.0).floor() as i64;
    // Shift to 0000-03-01 so leap days fall at the end of a year.
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// `HH:MM:SS` (UTC) of a Unix time.
pub fn clock(t: f64) -> String {
    let secs = t.max(0.0) as u64 % 86_400;
    format!("{:02}:{:02}:{:02}", secs / 3600, secs / 60 % 60, secs % 60)
}

/// A value in few characters: `1.2k`, `3.4M`, `0.012`.
pub fn short_number(v: f64) -> String {
    let a = v.abs();
    if !v.is_finite() {
        return "–".into();
    }
    if a >= 1e9 {
        format!("{:.1}G", v / 1e9)
    } else if a >= 1e6 {
        format!("{:.1}M", v / 1e6)
    } else if a >= 1e4 {
        format!("{:.1}k", v / 1e3)
    } else if a >= 100.0 || v.fract() == 0.0 {
        format!("{v:.0}")
    } else if a >= 1.0 {
        format!("{v:.2}")
    } else {
        format!("{v:.3}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_chart_draws_its_lines_band_and_marks_inside_the_frame() {
        let values = [(100.0, 1.0), (160.0, 5.0), (220.0, 2.0)];
        let expected = [(100.0, 1.5), (160.0, 1.5), (220.0, 1.5)];
        let band = [(100.0, 0.5, 2.5), (160.0, 0.5, 2.5), (220.0, 0.5, 2.5)];
        let marks = [(160.0, 5.0)];
        let svg = Chart {
            title: "latency <p99>",
            description: "value 2 expected 1.5",
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
            unit: "s",
        }
        .render();
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("<title id=") && svg.contains("latency &lt;p99&gt;"));
        assert_eq!(svg.matches(r#"class="line value""#).count(), 1);
        assert_eq!(svg.matches(r#"class="band""#).count(), 1);
        assert_eq!(svg.matches("<circle").count(), 1);
        // Every coordinate of the paths lies inside the viewBox.
        for path in svg.split(r#" d=""#).skip(1) {
            let d = &path[..path.find('"').unwrap()];
            for pair in d.split(['M', 'L', 'Z']).filter(|p| !p.is_empty()) {
                let (px, py) = pair.split_once(',').unwrap();
                let (px, py): (f64, f64) = (px.parse().unwrap(), py.parse().unwrap());
                assert!(
                    (0.0..=WIDTH).contains(&px) && (0.0..=HEIGHT).contains(&py),
                    "{pair}"
                );
            }
        }
    }

    #[test]
    fn an_empty_chart_says_so() {
        let svg = Chart {
            title: "t",
            description: "d",
            lines: vec![Line {
                points: &[],
                class: "value",
                label: "v",
            }],
            band: &[],
            marks: &[],
            unit: "",
        }
        .render();
        assert!(svg.contains("no data yet"));
    }

    #[test]
    fn numbers_and_times_are_short() {
        assert_eq!(short_number(1_234_567.0), "1.2M");
        assert_eq!(short_number(0.01234), "0.012");
        assert_eq!(short_number(42.0), "42");
        assert_eq!(short_number(42.5), "42.50");
        assert_eq!(clock(3_661.0), "01:01:01");
        assert_eq!(date(0.0), "1970-01-01");
        assert_eq!(date(951_782_400.0), "2000-02-29");
        assert_eq!(date(1_396_310_400.0), "2014-04-01");
    }
}
