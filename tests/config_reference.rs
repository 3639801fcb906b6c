//! `docs/CONFIGURATION.md` checked against the config structs, so the
//! reference cannot drift from the code.
//!
//! Conventions the reference follows (and these tests enforce):
//!
//! - **Option tables.** Every Markdown table whose header row starts with
//!   `| option |` documents options. Its first cell holds one or more
//!   option paths, each in backticks (several paths share a row when they
//!   mean the same, e.g. the three `tls` blocks); its `default` column
//!   holds the default as YAML in backticks, or no backticks when the
//!   option has no built-in value (inside an optional block or a list
//!   element).
//! - **Paths.** Keys joined by `.` from the top of the file:
//!   `exporters.prometheus.series_ttl`. A list is documented at its own
//!   path (`server.auth.basic`), and when its elements are objects, their
//!   fields as `list[].field` (`server.auth.basic[].username`). A map whose
//!   keys the user chooses is documented with a placeholder segment in
//!   angle brackets (`exporters.pprof.pyroscope.labels.<name>`); the tests
//!   check that such a key really is a map (an unknown key is accepted
//!   there) and not a struct hidden behind a placeholder.
//! - **Full example.** Exactly one code block fenced as ```` ```yaml
//!   full-example ```` sets every documented option. Options that exclude
//!   each other go in blocks fenced as ```` ```yaml alternative ````. Every
//!   `yaml` block of the page must load through the real loader
//!   ([`Config::from_yaml_with_env`]), with `${env:…_TOKEN}` and
//!   `${env:…_PASSWORD}` given example values and every other variable
//!   unset.
//!
//! The options that exist are the paths of `RawConfig::default()`, of the
//! full example and of the alternatives, serialised to JSON (`RawConfig`
//! derives `Serialize`; optional blocks appear once an example sets them).
//! Every leaf (a value or a list) must be documented; every documented
//! path must exist; every documented path must be set by the full example
//! (or an alternative); and every documented default must equal the
//! built-in one (compared after both go through the config types, so
//! `60s` and `1m` are the same duration).

use std::collections::BTreeSet;

use regex::Regex;
use serde_json::Value;
use streamgate::config::{Config, RawConfig};

const DOC: &str = "docs/CONFIGURATION.md";

fn doc_text() -> String {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(DOC);
    std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A path as segments; a map key holding dots (`status.code`) is one.
type Path = Vec<String>;

fn show(path: &[String]) -> String {
    path.join(".")
}

/// One option row of the reference.
#[derive(Debug, Clone)]
struct Row {
    line: usize,
    path: Path,
    /// The first code span of the default cell, if any.
    default: Option<String>,
}

/// A fenced `yaml` block.
#[derive(Debug, Clone)]
struct Block {
    line: usize,
    /// What follows `yaml` on the fence line (`full-example`, `alternative`).
    tag: String,
    text: String,
}

/// What the page holds: option rows, yaml blocks, and any rows it could
/// not read.
#[derive(Debug, Default)]
struct Reference {
    rows: Vec<Row>,
    blocks: Vec<Block>,
    malformed: Vec<String>,
}

fn code_spans(cell: &str) -> Vec<String> {
    cell.split('`')
        .skip(1)
        .step_by(2)
        .map(str::to_string)
        .collect()
}

/// Splits a table line into cells on unescaped `|`.
fn cells(line: &str) -> Vec<String> {
    let inner = line.trim().trim_start_matches('|');
    let inner = inner.strip_suffix('|').unwrap_or(inner);
    let mut out = vec![String::new()];
    let mut chars = inner.chars().peekable();
    while let Some(c) = chars.next() {
        match c {
            '\\' if chars.peek() == Some(&'|') => {
                out.last_mut().unwrap().push('|');
                chars.next();
            }
            '|' => out.push(String::new()),
            c => out.last_mut().unwrap().push(c),
        }
    }
    out.into_iter().map(|c| c.trim().to_string()).collect()
}

fn parse(text: &str) -> Reference {
    let path_syntax =
        Regex::new(r"^[a-z][a-z0-9_]*(\[\])?(\.([a-z][a-z0-9_]*(\[\])?|<[a-z_]+>))*$").unwrap();
    let mut reference = Reference::default();
    let mut fence: Option<(usize, String, String)> = None;
    // (header cells) of the table being read, when it is an option table.
    let mut table: Option<Vec<String>> = None;
    let mut in_table = false;
    for (i, line) in text.lines().enumerate() {
        let number = i + 1;
        let trimmed = line.trim_start();
        if let Some(info) = trimmed.strip_prefix("```") {
            match fence.take() {
                Some((start, info, body)) => {
                    let mut words = info.split_whitespace();
                    if words.next() == Some("yaml") {
                        reference.blocks.push(Block {
                            line: start,
                            tag: words.collect::<Vec<_>>().join(" "),
                            text: body,
                        });
                    }
                }
                None => fence = Some((number, info.trim().to_string(), String::new())),
            }
            continue;
        }
        if let Some((_, _, body)) = fence.as_mut() {
            body.push_str(line);
            body.push('\n');
            continue;
        }
        if !trimmed.starts_with('|') {
            in_table = false;
            table = None;
            continue;
        }
        let row = cells(trimmed);
        if !in_table {
            in_table = true;
            let header: Vec<String> = row.iter().map(|c| c.to_lowercase()).collect();
            table = (header.first().map(String::as_str) == Some("option")).then_some(header);
            continue;
        }
        let Some(header) = &table else { continue };
        if row.iter().all(|c| c.chars().all(|ch| "-: ".contains(ch))) {
            continue; // the separator line
        }
        let paths = code_spans(&row[0]);
        let rest: String = row[0].split('`').step_by(2).collect::<String>();
        if paths.is_empty() || rest.chars().any(|c| !(c == ',' || c.is_whitespace())) {
            reference.malformed.push(format!(
                "{DOC}:{number}: the first cell of an option row must be option paths in backticks, separated by commas; found `{}`",
                row[0]
            ));
            continue;
        }
        let default = header
            .iter()
            .position(|h| h == "default")
            .and_then(|at| row.get(at))
            .and_then(|cell| code_spans(cell).into_iter().next());
        for path in paths {
            if !path_syntax.is_match(&path) {
                reference.malformed.push(format!(
                    "{DOC}:{number}: `{path}` is not an option path (keys joined by `.`, `list[]` for list elements, `<name>` for user keys of a map)"
                ));
                continue;
            }
            reference.rows.push(Row {
                line: number,
                path: path.split('.').map(str::to_string).collect(),
                default: default.clone(),
            });
        }
    }
    reference
}

/// The environment the examples see: every `…_TOKEN` and `…_PASSWORD`
/// has an example value, long enough for the credential checks; nothing
/// else is set.
fn example_env(name: &str) -> Option<String> {
    (name.ends_with("_TOKEN") || name.ends_with("_PASSWORD"))
        .then(|| format!("example-{}-0123456789", name.to_lowercase()))
}

/// `${env:NAME}` and `${env:NAME:-default}` replaced as the loader does
/// (for parsing into `RawConfig`, which the loader does not expose).
fn substitute(text: &str) -> String {
    let reference = Regex::new(r"\$\{(?:env:)?([A-Za-z0-9_]+)(?::-([^}]*))?\}").unwrap();
    reference
        .replace_all(text, |c: &regex::Captures| {
            example_env(&c[1])
                .or_else(|| c.get(2).map(|d| d.as_str().to_string()))
                .unwrap_or_default()
        })
        .into_owned()
}

/// A block through the real loader (substitution, unknown keys,
/// validation), then as the `RawConfig` it is, in JSON.
fn load(block: &Block) -> Result<(Value, Value), String> {
    let name = format!("{DOC}:{} (yaml {})", block.line, block.tag);
    Config::from_yaml_with_env(&block.text, &name, example_env).map_err(|e| e.to_string())?;
    let text = substitute(&block.text);
    let raw: RawConfig = serde_yaml_ng::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
    let literal: serde_yaml_ng::Value =
        serde_yaml_ng::from_str(&text).map_err(|e| format!("{name}: {e}"))?;
    let literal = serde_json::to_value(literal).map_err(|e| format!("{name}: {e}"))?;
    Ok((
        serde_json::to_value(raw).expect("RawConfig serialises"),
        literal,
    ))
}

/// Paths of a config in JSON: `leaves` (values and lists: what must be
/// documented) and `all` (also every object on the way).
#[derive(Debug, Default)]
struct Paths {
    leaves: BTreeSet<Path>,
    all: BTreeSet<Path>,
}

impl Paths {
    fn collect(&mut self, value: &Value, path: &mut Path) {
        if !path.is_empty() {
            self.all.insert(path.clone());
        }
        match value {
            Value::Object(map) => {
                for (key, v) in map {
                    path.push(key.clone());
                    self.collect(v, path);
                    path.pop();
                }
            }
            Value::Array(items) => {
                self.leaves.insert(path.clone());
                for item in items.iter().filter(|i| i.is_object()) {
                    let last = path.pop().expect("a list has a key");
                    path.push(format!("{last}[]"));
                    self.collect(item, path);
                    path.pop();
                    path.push(last);
                }
            }
            _ => {
                self.leaves.insert(path.clone());
            }
        }
    }

    fn of(values: &[&Value]) -> Paths {
        let mut paths = Paths::default();
        for v in values {
            paths.collect(v, &mut Vec::new());
        }
        paths
    }
}

fn is_placeholder(segment: &str) -> bool {
    segment.starts_with('<') && segment.ends_with('>')
}

/// Whether the documented `doc` path covers the config path `path`.
fn covers(doc: &[String], path: &[String]) -> bool {
    doc.len() == path.len()
        && doc
            .iter()
            .zip(path)
            .all(|(d, p)| d == p || is_placeholder(d))
}

/// Everything the tests compare, loaded once per test.
struct Subject {
    reference: Reference,
    default: Value,
    /// The RawConfig JSON of the full example and of each alternative.
    examples: Vec<Value>,
    /// What the full example and the alternatives literally write.
    literal: Vec<Value>,
    /// The full example's JSON as written (for the map probe).
    full_literal: Value,
    problems: Vec<String>,
}

impl Subject {
    fn load(text: &str) -> Subject {
        let reference = parse(text);
        let mut problems = reference.malformed.clone();
        let default = serde_json::to_value(RawConfig::default()).expect("RawConfig serialises");
        let mut examples = Vec::new();
        let mut literal = Vec::new();
        let mut full_literal = Value::Null;
        let fulls = reference
            .blocks
            .iter()
            .filter(|b| b.tag == "full-example")
            .count();
        if fulls != 1 {
            problems.push(format!(
                "{DOC} must have exactly one block fenced as ```yaml full-example (found {fulls})"
            ));
        }
        for block in &reference.blocks {
            match load(block) {
                Ok((raw, written)) => {
                    if block.tag == "full-example" || block.tag == "alternative" {
                        examples.push(raw);
                        literal.push(written.clone());
                    }
                    if block.tag == "full-example" {
                        full_literal = written;
                    }
                }
                Err(e) => problems.push(format!(
                    "the yaml block at {DOC}:{} does not load: {e}",
                    block.line
                )),
            }
        }
        Subject {
            reference,
            default,
            examples,
            literal,
            full_literal,
            problems,
        }
    }

    fn existing(&self) -> Paths {
        let mut values = vec![&self.default];
        values.extend(self.examples.iter());
        Paths::of(&values)
    }

    /// Config options the reference leaves out.
    fn undocumented(&self) -> Vec<String> {
        let existing = self.existing();
        existing
            .leaves
            .iter()
            .filter(|path| !self.reference.rows.iter().any(|r| covers(&r.path, path)))
            .map(|path| {
                let default = lookup(&self.default, path);
                let (kind, shown) = match default {
                    Some(v) => (kind_of(v), format!("`{}`", yaml_text(v))),
                    None => ("<type>", String::new()),
                };
                let map_hint = match &path[..path.len() - 1] {
                    [] => String::new(),
                    parent => format!(" (or `{}.<name>` if it is a map of user keys)", show(parent)),
                };
                format!(
                    "`{p}` is a config option but {DOC} does not document it: add the row \
                     `| `{p}` | {kind} | {shown} | <constraints> | <meaning> |` to the option table of its section{map_hint}, \
                     and set it in the ```yaml full-example block",
                    p = show(path),
                )
            })
            .collect()
    }

    /// Documented paths that are no option.
    fn unknown(&self) -> Vec<String> {
        let existing = self.existing();
        let mut out = Vec::new();
        for row in &self.reference.rows {
            if !existing.all.iter().any(|p| covers(&row.path, p)) {
                out.push(format!(
                    "{DOC}:{}: `{}` is documented but is no option of the config structs (RawConfig, its defaults and the examples have no such key): remove the row or correct the path",
                    row.line,
                    show(&row.path)
                ));
            }
            if let Some(at) = row.path.iter().position(|s| is_placeholder(s))
                && let Err(e) = self.probe_map(&row.path[..at])
            {
                out.push(format!(
                    "{DOC}:{}: `{}` documents user keys under `{}`, but that is not a map: {e}; document its fields one by one",
                    row.line,
                    show(&row.path),
                    show(&row.path[..at])
                ));
            }
        }
        out
    }

    /// Whether the config accepts a key of the user's choosing at
    /// `prefix` (a map does; a struct denies unknown keys).
    fn probe_map(&self, prefix: &[String]) -> Result<(), String> {
        let mut value = self.full_literal.clone();
        let mut at = &mut value;
        for segment in prefix {
            let (key, element) = match segment.strip_suffix("[]") {
                Some(key) => (key, true),
                None => (segment.as_str(), false),
            };
            at = at
                .as_object_mut()
                .ok_or("the full example does not reach it")?
                .entry(key.to_string())
                .or_insert(if element {
                    Value::Array(Vec::new())
                } else {
                    Value::Object(Default::default())
                });
            if element {
                at = at
                    .as_array_mut()
                    .and_then(|items| items.first_mut())
                    .ok_or("the full example has no element of the list to try it in")?;
            }
        }
        let map = at
            .as_object_mut()
            .ok_or("the full example holds no map there")?;
        let sample = map
            .values()
            .next()
            .cloned()
            .unwrap_or_else(|| Value::from("x"));
        map.insert("streamgate_docs_probe".into(), sample);
        serde_json::from_value::<RawConfig>(value)
            .map(|_| ())
            .map_err(|e| format!("a key `streamgate_docs_probe` there is refused ({e})"))
    }

    /// Documented options the full example (and alternatives) leave out.
    fn not_in_example(&self) -> Vec<String> {
        let written = Paths::of(&self.literal.iter().collect::<Vec<_>>());
        self.reference
            .rows
            .iter()
            .filter(|r| !written.all.iter().any(|p| covers(&r.path, p)))
            .map(|r| {
                format!(
                    "{DOC}:{}: `{}` is documented but the ```yaml full-example block does not set it: add it there (or, if it excludes another option, to a ```yaml alternative block)",
                    r.line,
                    show(&r.path)
                )
            })
            .collect()
    }

    /// Documented defaults that differ from `RawConfig::default()`.
    fn wrong_defaults(&self) -> Vec<String> {
        let mut out = Vec::new();
        for row in &self.reference.rows {
            let built_in = lookup(&self.default, &row.path).filter(|v| !v.is_null());
            let (built_in, documented) = match (built_in, &row.default) {
                (None, _) => continue, // inside an optional block or a list element
                (Some(v), None) => {
                    out.push(format!(
                        "{DOC}:{}: `{}` has the built-in default `{}`; write it in backticks in the default column",
                        row.line,
                        show(&row.path),
                        yaml_text(v)
                    ));
                    continue;
                }
                (Some(v), Some(d)) => (v, d),
            };
            match normalise(&self.default, &row.path, documented) {
                Ok(v) if &v == built_in => {}
                Ok(_) => out.push(format!(
                    "{DOC}:{}: `{}` is documented with default `{documented}`, but the built-in default is `{}`: correct the default column",
                    row.line,
                    show(&row.path),
                    yaml_text(built_in)
                )),
                Err(e) => out.push(format!(
                    "{DOC}:{}: the documented default `{documented}` of `{}` is not a valid value: {e}",
                    row.line,
                    show(&row.path)
                )),
            }
        }
        out
    }

    fn all_problems(&self) -> Vec<String> {
        let mut all = self.problems.clone();
        all.extend(self.undocumented());
        all.extend(self.unknown());
        all.extend(self.not_in_example());
        all.extend(self.wrong_defaults());
        all
    }
}

fn lookup<'a>(value: &'a Value, path: &[String]) -> Option<&'a Value> {
    path.iter()
        .try_fold(value, |v, key| v.as_object()?.get(key))
}

/// `text` (YAML) put at `path` of the default config and read back
/// through the config types: what the default column means.
fn normalise(default: &Value, path: &[String], text: &str) -> Result<Value, String> {
    let yaml: serde_yaml_ng::Value = serde_yaml_ng::from_str(text).map_err(|e| e.to_string())?;
    let mut config = default.clone();
    let (last, parents) = path.split_last().expect("a path has a key");
    let mut at = &mut config;
    for key in parents {
        at = at
            .get_mut(key)
            .ok_or_else(|| format!("no `{key}` in the default config"))?;
    }
    at.as_object_mut().ok_or("not inside a section")?.insert(
        last.clone(),
        serde_json::to_value(yaml).map_err(|e| e.to_string())?,
    );
    let raw: RawConfig = serde_json::from_value(config).map_err(|e| e.to_string())?;
    let back = serde_json::to_value(raw).map_err(|e| e.to_string())?;
    lookup(&back, path)
        .cloned()
        .ok_or_else(|| "the value does not survive the round trip".to_string())
}

/// The type column's word for a default value, as far as its JSON form
/// tells (durations, sizes and secrets serialise as strings).
fn kind_of(value: &Value) -> &'static str {
    let duration = Regex::new(r"^([0-9.]+(ns|us|ms|s|m|h|d))+$").unwrap();
    let size = Regex::new(r"^[0-9]+(B|KiB|MiB|GiB)$").unwrap();
    match value {
        Value::Bool(_) => "boolean",
        Value::Number(n) if n.is_f64() => "number",
        Value::Number(_) => "integer",
        Value::String(s) if s == "<redacted>" => "secret",
        Value::String(s) if duration.is_match(s) => "duration",
        Value::String(s) if size.is_match(s) => "size",
        Value::String(_) => "string",
        Value::Array(_) => "list",
        Value::Object(_) => "map",
        Value::Null => "optional",
    }
}

/// A JSON value as one would write it in YAML flow style.
fn yaml_text(value: &Value) -> String {
    match value {
        // An unset secret serialises as `<redacted>` too.
        Value::String(s) if s.is_empty() || s == "<redacted>" => "\"\"".into(),
        Value::String(s) => s.clone(),
        Value::Array(items) => format!(
            "[{}]",
            items.iter().map(yaml_text).collect::<Vec<_>>().join(", ")
        ),
        Value::Object(map) => format!(
            "{{{}}}",
            map.iter()
                .map(|(k, v)| format!("{k}: {}", yaml_text(v)))
                .collect::<Vec<_>>()
                .join(", ")
        ),
        other => other.to_string(),
    }
}

fn assert_none(problems: Vec<String>) {
    assert!(
        problems.is_empty(),
        "{} problem(s) with {DOC}:\n- {}",
        problems.len(),
        problems.join("\n- ")
    );
}

/// The full example, the alternatives and every other `yaml` block of
/// the page load through the real loader (unknown keys fail it, and so do
/// values `validate()` refuses); the page's option rows are well formed.
#[test]
fn every_yaml_block_loads_through_the_real_loader() {
    let subject = Subject::load(&doc_text());
    assert!(
        subject.reference.blocks.len() >= 2,
        "expected the full example and an alternative in {DOC}"
    );
    assert_none(subject.problems);
}

/// Every key of the config structs (with its defaults and once every
/// optional block is set) has a row in the reference.
#[test]
fn every_config_option_is_documented() {
    let subject = Subject::load(&doc_text());
    assert!(
        subject.existing().leaves.len() > 100,
        "too few options found: the examples did not load"
    );
    assert_none(subject.undocumented());
}

/// Every documented path is a key of the config structs (no stale rows),
/// and every `<name>` placeholder stands for a real map.
#[test]
fn every_documented_option_exists() {
    let subject = Subject::load(&doc_text());
    assert!(
        !subject.reference.rows.is_empty(),
        "no option rows in {DOC}"
    );
    assert_none(subject.unknown());
}

/// The full example sets every documented option.
#[test]
fn full_example_sets_every_documented_option() {
    let subject = Subject::load(&doc_text());
    assert_none(subject.not_in_example());
}

/// Every documented default is the built-in one.
#[test]
fn documented_defaults_are_the_built_in_ones() {
    let subject = Subject::load(&doc_text());
    assert_none(subject.wrong_defaults());
}

/// The checks fail on drift: a page with a row taken out, a row for an
/// option that does not exist, a struct documented as a map, a wrong
/// default and an example with a misspelt key each get a new problem
/// whose message says what to change.
#[test]
fn drift_is_caught_with_a_fix_in_the_message() {
    let text = doc_text();
    // Only what a break adds counts: the page may be behind the code
    // right now (the other tests say so), which must not hide a break.
    let intact: BTreeSet<String> = Subject::load(&text).all_problems().into_iter().collect();

    let row = |path: &str| {
        text.lines()
            .find(|l| l.starts_with(&format!("| `{path}` |")))
            .unwrap_or_else(|| panic!("no row of its own for `{path}` in {DOC}"))
            .to_string()
    };
    let series_ttl = row("exporters.prometheus.series_ttl");
    let cases: Vec<(&str, String, &str)> = vec![
        (
            "row removed",
            text.replace(&format!("{series_ttl}\n"), ""),
            "`exporters.prometheus.series_ttl` is a config option but docs/CONFIGURATION.md does not document it",
        ),
        (
            "stale row",
            text.replace(
                &format!("{series_ttl}\n"),
                &format!(
                    "{series_ttl}\n{}\n",
                    series_ttl.replace("series_ttl", "series_lifetime")
                ),
            ),
            "`exporters.prometheus.series_lifetime` is documented but is no option",
        ),
        (
            "struct as a map",
            text.replace(
                &format!("{series_ttl}\n"),
                &format!("{series_ttl}\n| `api.tail.<name>` | integer | | | |\n"),
            ),
            "documents user keys under `api.tail`, but that is not a map",
        ),
        (
            "wrong default",
            text.replace(&series_ttl, &series_ttl.replacen("`5m`", "`10m`", 1)),
            "is documented with default `10m`, but the built-in default is `5m`",
        ),
        (
            "misspelt key in the example",
            text.replacen(
                "    max_label_value_length:",
                "    max_label_value_lenght:",
                1,
            ),
            "did you mean `max_label_value_length`",
        ),
    ];
    for (name, broken, expected) in cases {
        assert_ne!(broken, text, "{name}: the page did not change");
        let problems: Vec<String> = Subject::load(&broken)
            .all_problems()
            .into_iter()
            .filter(|p| !intact.contains(p))
            .collect();
        assert!(
            problems.iter().any(|p| p.contains(expected)),
            "{name}: expected a problem containing `{expected}`, got:\n{}",
            problems.join("\n")
        );
    }
}
