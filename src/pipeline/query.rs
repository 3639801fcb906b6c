//! Read-only queries the JSON API asks of components it may not import.
//!
//! [`SeriesQuery`] is how `api/` lists the series the Prometheus exporter
//! holds and reads a series' recent history: `app.rs` hands the exporter to
//! the API as an `Arc<dyn SeriesQuery>`. Everything crossing the trait is a
//! plain, owned, serialisable value, so no lock or store type leaks out.
//!
//! [`SeriesMatcher`] parses the selector of `GET /api/v1/series?match=`:
//! a metric name (`http_requests_total`), a regular expression on the
//! name (`http_.*`, anchored at both ends), optionally followed by label
//! matchers in PromQL style (`{job="api",code=~"5.."}`, with `=`, `!=`,
//! `=~`, `!~`); the name may be left out when labels are given.

use std::collections::BTreeMap;

use serde::Serialize;

use crate::model::prometheus_label::is_label_name;

/// Queries over the active series.
pub trait SeriesQuery: Send + Sync {
    /// The series that match, sorted by name then labels, at most `limit`.
    fn find_series(&self, matcher: &SeriesMatcher, limit: usize) -> SeriesPage;

    /// The recent points of the series `name` with exactly these labels
    /// (label name, unescaped value). The first request for a series starts
    /// watching it: from then on every update is recorded, and this call
    /// returns at least its current value.
    fn series_history(
        &self,
        name: &str,
        labels: &[(String, String)],
    ) -> Result<SeriesHistory, HistoryError>;

    /// The sum of the numeric series of family `name` whose labels include
    /// every `(label, value)` of `filter`, grouped by the values of `by`
    /// (a missing label groups as ""). For reports, off the ingest path.
    fn sum_by(
        &self,
        name: &str,
        by: &[&str],
        filter: &[(&str, &str)],
    ) -> Vec<(BTreeMap<String, String>, f64)>;
}

/// Why a history could not be returned.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum HistoryError {
    #[error("no active series {0}")]
    NotFound(String),
    #[error(
        "{0} is computed from the analysis or window state when /metrics is rendered, not stored: its history is not recorded (the console's analysis pages chart the analysis gauges)"
    )]
    Derived(String),
}

/// One series as listed.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesInfo {
    pub name: String,
    /// `counter`, `gauge`, `histogram` or `summary`.
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub labels: BTreeMap<String, String>,
}

/// A page of matching series.
#[derive(Debug, Clone, Default, PartialEq, Serialize)]
pub struct SeriesPage {
    pub series: Vec<SeriesInfo>,
    /// More series matched than were returned.
    pub truncated: bool,
}

/// One recorded value of a watched series. Numbers carry `value`;
/// histograms and summaries carry `count` and `sum` (`sum` when sent).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct HistoryPoint {
    /// The point's timestamp, or the time it was stored when it had none.
    pub time_unix_nano: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub value: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub sum: Option<f64>,
}

/// The recorded points of one series, oldest first.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct SeriesHistory {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: &'static str,
    pub labels: BTreeMap<String, String>,
    /// How many points the ring keeps.
    pub capacity: usize,
    pub points: Vec<HistoryPoint>,
}

/// How a label matcher compares.
#[derive(Debug, Clone)]
pub enum LabelOp {
    Equal(String),
    NotEqual(String),
    Regex(regex::Regex),
    NotRegex(regex::Regex),
}

/// One `label<op>"value"` of a selector.
#[derive(Debug, Clone)]
pub struct LabelMatcher {
    pub name: String,
    pub op: LabelOp,
}

impl LabelMatcher {
    /// Whether `value` (empty when the series lacks the label, as in
    /// PromQL) satisfies the matcher.
    pub fn matches(&self, value: &str) -> bool {
        match &self.op {
            LabelOp::Equal(v) => value == v,
            LabelOp::NotEqual(v) => value != v,
            LabelOp::Regex(r) => r.is_match(value),
            LabelOp::NotRegex(r) => !r.is_match(value),
        }
    }
}

/// How the metric name is matched.
#[derive(Debug, Clone)]
pub enum NameMatch {
    /// Every name.
    Any,
    /// This name exactly.
    Exact(String),
    /// An anchored regular expression.
    Regex(regex::Regex),
    /// The name as written before the braces, and `__name__` matchers
    /// inside them (`{__name__=~"http_.*"}`), all of which must hold.
    With(Box<NameMatch>, Vec<LabelOp>),
}

impl NameMatch {
    pub fn matches(&self, name: &str) -> bool {
        match self {
            NameMatch::Any => true,
            NameMatch::Exact(n) => n == name,
            NameMatch::Regex(r) => r.is_match(name),
            NameMatch::With(base, ops) => {
                base.matches(name)
                    && ops.iter().all(|op| {
                        LabelMatcher {
                            name: String::new(),
                            op: op.clone(),
                        }
                        .matches(name)
                    })
            }
        }
    }
}

/// A parsed series selector.
#[derive(Debug, Clone)]
pub struct SeriesMatcher {
    pub name: NameMatch,
    pub labels: Vec<LabelMatcher>,
}

/// Largest compiled regex accepted from a request.
const REGEX_SIZE_LIMIT: usize = 1 << 20;

fn anchored(pattern: &str) -> Result<regex::Regex, String> {
    let build = |p: &str| {
        regex::RegexBuilder::new(p)
            .size_limit(REGEX_SIZE_LIMIT)
            .build()
    };
    // `(?s)`: `.` matches a newline too, as in PromQL.
    build(&format!("^(?s:{pattern})$")).map_err(|anchored_error| {
        // Explain the user's pattern, not our anchored wrapper, in one line
        // (a syntax error's last line says what is wrong).
        let error = build(pattern).err().unwrap_or(anchored_error).to_string();
        let why = error
            .rsplit_once("error: ")
            .map_or(error.as_str(), |(_, why)| why)
            .trim();
        format!("bad regular expression `{pattern}`: {why}")
    })
}

fn is_metric_name(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_' || c == ':')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == ':')
}

impl SeriesMatcher {
    /// Every series.
    pub fn all() -> Self {
        Self {
            name: NameMatch::Any,
            labels: Vec::new(),
        }
    }

    /// Parses `name`, `regex`, `name{l="v",...}` or `{l="v",...}`. The
    /// name part is exact when it is a valid metric name, otherwise a
    /// regular expression that must match the whole name.
    pub fn parse(selector: &str) -> Result<Self, String> {
        let selector = selector.trim();
        if selector.is_empty() {
            return Ok(Self::all());
        }
        // The first `{` that is not a regex repetition (`{2}`, `{1,3}`)
        // opens the label matchers, which run to the closing `}` at the end.
        let open = selector.match_indices('{').map(|(i, _)| i).find(|&i| {
            let inner = selector[i + 1..].split('}').next().unwrap_or_default();
            let repetition = inner
                .chars()
                .all(|c| c.is_ascii_digit() || c == ',' || c == ' ');
            inner.is_empty() || !repetition
        });
        let (name_part, labels_part) = match open {
            Some(open) => match selector[open + 1..].strip_suffix('}') {
                Some(inner) => (&selector[..open], Some(inner)),
                None => {
                    return Err(format!(
                        "label matchers `{}` do not end with `}}`",
                        &selector[open..]
                    ));
                }
            },
            None => (selector, None),
        };
        let name = match name_part.trim() {
            "" => NameMatch::Any,
            n if is_metric_name(n) => NameMatch::Exact(n.to_string()),
            n => NameMatch::Regex(anchored(n)?),
        };
        let mut labels = match labels_part {
            Some(text) => parse_label_matchers(text)?,
            None => Vec::new(),
        };
        // `__name__` inside the braces matches the name, as in PromQL.
        let on_name: Vec<LabelOp> = labels
            .extract_if(.., |m| m.name == "__name__")
            .map(|m| m.op)
            .collect();
        let name = if on_name.is_empty() {
            name
        } else {
            NameMatch::With(Box::new(name), on_name)
        };
        Ok(Self { name, labels })
    }

    /// Whether a series' labels (name, unescaped value) satisfy every
    /// label matcher.
    pub fn labels_match(&self, labels: &BTreeMap<String, String>) -> bool {
        self.labels
            .iter()
            .all(|m| m.matches(labels.get(&m.name).map(String::as_str).unwrap_or_default()))
    }
}

/// Parses `a="1", b!="2", c=~"x.*", d!~"y"` (a trailing comma is allowed).
fn parse_label_matchers(text: &str) -> Result<Vec<LabelMatcher>, String> {
    let mut out = Vec::new();
    let mut rest = text.trim_start();
    while !rest.is_empty() {
        let end = rest
            .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
            .unwrap_or(rest.len());
        let name = &rest[..end];
        if !is_label_name(name) {
            return Err(format!("expected a label name at `{rest}`"));
        }
        rest = rest[end..].trim_start();
        let (op, after) = if let Some(r) = rest.strip_prefix("=~") {
            ("=~", r)
        } else if let Some(r) = rest.strip_prefix("!~") {
            ("!~", r)
        } else if let Some(r) = rest.strip_prefix("!=") {
            ("!=", r)
        } else if let Some(r) = rest.strip_prefix('=') {
            ("=", r)
        } else {
            return Err(format!(
                "expected =, !=, =~ or !~ after label `{name}`, found `{rest}`"
            ));
        };
        let (value, after) = parse_quoted(after.trim_start())
            .ok_or_else(|| format!("expected a quoted value for label `{name}`"))?;
        let op = match op {
            "=" => LabelOp::Equal(value),
            "!=" => LabelOp::NotEqual(value),
            "=~" => LabelOp::Regex(anchored(&value)?),
            _ => LabelOp::NotRegex(anchored(&value)?),
        };
        out.push(LabelMatcher {
            name: name.to_string(),
            op,
        });
        rest = after.trim_start();
        match rest.strip_prefix(',') {
            Some(r) => rest = r.trim_start(),
            None if rest.is_empty() => {}
            None => return Err(format!("expected `,` or `}}` at `{rest}`")),
        }
    }
    Ok(out)
}

/// A `"..."` string with `\"`, `\\` and `\n` escapes; returns it and the rest.
fn parse_quoted(text: &str) -> Option<(String, &str)> {
    let body = text.strip_prefix('"')?;
    let mut value = String::new();
    let mut chars = body.char_indices();
    while let Some((i, c)) = chars.next() {
        match c {
            '"' => return Some((value, &body[i + 1..])),
            '\\' => match chars.next()?.1 {
                'n' => value.push('\n'),
                other => value.push(other),
            },
            c => value.push(c),
        }
    }
    None
}

/// StreamGate's built-in alerts, for the API (`/api/v1/alerts`).
pub trait AlertsQuery: Send + Sync {
    /// Active alerts, newest first.
    fn active(&self) -> Vec<crate::model::alert::Alert>;
    /// Resolved alerts, most recent first.
    fn history(&self) -> Vec<crate::model::alert::Alert>;
    /// One alert by id, active or resolved.
    fn get(&self, id: &str) -> Option<crate::model::alert::Alert>;
    /// Creates (or refreshes) a manual alert; `ends_at` in Unix seconds.
    fn create(
        &self,
        labels: std::collections::BTreeMap<String, String>,
        annotations: std::collections::BTreeMap<String, String>,
        severity: crate::model::alert::Severity,
        ends_at: Option<f64>,
    ) -> Result<crate::model::alert::Alert, crate::model::alert::AlertError>;
    /// Resolves an active alert.
    fn resolve(
        &self,
        id: &str,
    ) -> Result<crate::model::alert::Alert, crate::model::alert::AlertError>;
}
