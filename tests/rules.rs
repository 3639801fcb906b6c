//! The shipped Prometheus rules (`rules/*.yml`) and their unit tests
//! (`rules/tests/*.yml`): `promtool check rules` finds nothing to report,
//! `promtool test rules` passes, every alert is tested both firing and not
//! firing, and every alert carries the labels and annotations routing and
//! the runbook (`docs/runbooks.md`) rely on.
//!
//! promtool comes from Debian's `prometheus` package (`scripts/test`
//! installs it). Without it the promtool tests skip, or fail when
//! `STREAMGATE_REQUIRE_PEERS=1`; the checks on the rule files themselves
//! always run.

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use common::find_peer;
use serde_yaml_ng::Value;

const RUNBOOK_BASE: &str = "https://github.com/streamgate/streamgate/blob/main/docs/runbooks.md#";

fn repo() -> &'static Path {
    Path::new(env!("CARGO_MANIFEST_DIR"))
}

/// The `*.yml` files directly in `dir`, sorted.
fn yaml_files(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("read {}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").path())
        .filter(|p| p.is_file() && p.extension().is_some_and(|e| e == "yml"))
        .collect();
    files.sort();
    files
}

fn rule_files() -> Vec<PathBuf> {
    let files = yaml_files(&repo().join("rules"));
    assert!(!files.is_empty(), "no rules/*.yml");
    files
}

fn test_files() -> Vec<PathBuf> {
    let files = yaml_files(&repo().join("rules/tests"));
    assert!(!files.is_empty(), "no rules/tests/*.yml");
    files
}

fn load(path: &Path) -> Value {
    let text =
        std::fs::read_to_string(path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("parse {}: {e}", path.display()))
}

/// A value's items when it is a sequence, else nothing.
fn items(value: &Value) -> &[Value] {
    value.as_sequence().map(Vec::as_slice).unwrap_or(&[])
}

/// A string field of a mapping.
fn text<'a>(value: &'a Value, key: &str) -> Option<&'a str> {
    value.get(key).and_then(Value::as_str)
}

/// Every rule of every group in `rules/*.yml`, with the file it is in.
fn rules() -> Vec<(String, Value)> {
    let mut out = Vec::new();
    for path in rule_files() {
        let file = path.file_name().unwrap().to_string_lossy().into_owned();
        let doc = load(&path);
        let groups = items(&doc["groups"]);
        assert!(!groups.is_empty(), "{file}: no groups");
        for group in groups {
            for rule in items(&group["rules"]) {
                out.push((file.clone(), rule.clone()));
            }
        }
    }
    out
}

/// Runs promtool with `args`; returns whether it exited 0 and what it
/// printed on stdout and stderr.
fn promtool(promtool: &Path, args: &[&str], files: &[PathBuf]) -> (bool, String, String) {
    let output = Command::new(promtool)
        .args(args)
        .args(files)
        .current_dir(repo())
        .output()
        .expect("run promtool");
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

/// GitHub's anchor for a Markdown heading: lower case, spaces to `-`,
/// punctuation other than `-` and `_` dropped.
fn anchor(heading: &str) -> String {
    heading
        .trim()
        .to_lowercase()
        .chars()
        .filter_map(|c| match c {
            ' ' => Some('-'),
            c if c.is_alphanumeric() || c == '-' || c == '_' => Some(c),
            _ => None,
        })
        .collect()
}

/// `promtool check rules rules/*.yml` succeeds and reports nothing but the
/// files it checked and their rule counts (no lint, no warning).
#[test]
fn promtool_check_rules_is_clean() {
    let Some(promtool_path) = find_peer("promtool") else {
        return;
    };
    let files = rule_files();
    let (success, stdout, stderr) = promtool(&promtool_path, &["check", "rules"], &files);
    assert!(success, "promtool check rules failed:\n{stdout}\n{stderr}");
    assert_eq!(stderr.trim(), "", "promtool printed on stderr:\n{stderr}");
    let unexpected: Vec<&str> = stdout
        .lines()
        .map(str::trim)
        .filter(|l| {
            !(l.is_empty()
                || l.starts_with("Checking ")
                || (l.starts_with("SUCCESS: ") && l.ends_with(" rules found")))
        })
        .collect();
    assert!(
        unexpected.is_empty(),
        "promtool check rules reported:\n{}\n--- full output ---\n{stdout}",
        unexpected.join("\n")
    );
    assert_eq!(
        stdout.matches("SUCCESS: ").count(),
        files.len(),
        "one SUCCESS per file:\n{stdout}"
    );
}

/// `promtool test rules rules/tests/*.yml` passes every test file.
#[test]
fn promtool_test_rules_passes() {
    let Some(promtool_path) = find_peer("promtool") else {
        return;
    };
    let files = test_files();
    let (success, stdout, stderr) = promtool(&promtool_path, &["test", "rules"], &files);
    assert!(success, "promtool test rules failed:\n{stdout}\n{stderr}");
    assert_eq!(
        stdout.matches("SUCCESS").count(),
        files.len(),
        "one SUCCESS per test file:\n{stdout}\n{stderr}"
    );
    assert!(!stdout.contains("FAILED"), "{stdout}\n{stderr}");
}

/// Every alert in `rules/` is tested in `rules/tests/` at least once
/// firing (`exp_alerts` not empty) and at least once not firing
/// (`exp_alerts` empty), and the tests name no alert that does not exist.
/// Every test file loads rule files that exist.
#[test]
fn every_alert_is_tested_firing_and_not_firing() {
    let alerts: BTreeSet<String> = rules()
        .iter()
        .filter_map(|(_, rule)| text(rule, "alert").map(str::to_string))
        .collect();
    assert!(!alerts.is_empty(), "no alerts in rules/");

    // alert name -> (tested firing, tested not firing)
    let mut tested: BTreeMap<String, (bool, bool)> = BTreeMap::new();
    for path in test_files() {
        let doc = load(&path);
        let dir = path.parent().unwrap();
        let rule_files = items(&doc["rule_files"]);
        assert!(!rule_files.is_empty(), "{}: no rule_files", path.display());
        for file in rule_files {
            let file = file.as_str().expect("rule_files entries are strings");
            assert!(
                dir.join(file).is_file(),
                "{}: rule file {file} does not exist",
                path.display()
            );
        }
        for test in items(&doc["tests"]) {
            for case in items(&test["alert_rule_test"]) {
                let name = text(case, "alertname")
                    .unwrap_or_else(|| panic!("{}: a case without alertname", path.display()));
                let fires = !items(&case["exp_alerts"]).is_empty();
                let entry = tested.entry(name.to_string()).or_default();
                if fires {
                    entry.0 = true;
                } else {
                    entry.1 = true;
                }
            }
        }
    }

    let mut problems = Vec::new();
    for alert in &alerts {
        match tested.get(alert) {
            None => problems.push(format!("{alert}: not tested")),
            Some((false, _)) => problems.push(format!("{alert}: never tested firing")),
            Some((_, false)) => problems.push(format!("{alert}: never tested not firing")),
            Some(_) => {}
        }
    }
    for name in tested.keys() {
        if !alerts.contains(name) {
            problems.push(format!("{name}: tested but no such alert in rules/"));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// Every alert has `severity` (critical, warning or info) and a `service`
/// label, `summary`, `description` and a `runbook_url` pointing to its own
/// section of `docs/runbooks.md`; alert names are unique; recording rules
/// are named `level:metric:operations`.
#[test]
fn alerts_carry_routing_labels_and_runbook_links() {
    let runbook =
        std::fs::read_to_string(repo().join("docs/runbooks.md")).expect("docs/runbooks.md");
    let anchors: BTreeSet<String> = runbook
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| anchor(l.trim_start_matches('#')))
        .collect();

    let mut problems = Vec::new();
    let mut seen = BTreeSet::new();
    for (file, rule) in rules() {
        if let Some(record) = text(&rule, "record") {
            let parts: Vec<&str> = record.split(':').collect();
            if parts.len() != 3 || parts.iter().any(|p| p.is_empty()) {
                problems.push(format!(
                    "{file}: recording rule {record} is not level:metric:operations"
                ));
            }
            continue;
        }
        let Some(alert) = text(&rule, "alert") else {
            problems.push(format!("{file}: a rule that is neither alert nor record"));
            continue;
        };
        if !seen.insert(alert.to_string()) {
            problems.push(format!("{file}: alert {alert} defined twice"));
        }
        let labels = &rule["labels"];
        match text(labels, "severity") {
            Some("critical" | "warning" | "info") => {}
            other => problems.push(format!("{alert}: severity {other:?}")),
        }
        if text(labels, "service") != Some("{{ $labels.job }}") {
            problems.push(format!(
                "{alert}: service label is not the job ({:?})",
                text(labels, "service")
            ));
        }
        let annotations = &rule["annotations"];
        for key in ["summary", "description"] {
            if text(annotations, key).is_none_or(|t| t.trim().is_empty()) {
                problems.push(format!("{alert}: no {key}"));
            }
        }
        let expected = format!("{RUNBOOK_BASE}{}", alert.to_lowercase());
        match text(annotations, "runbook_url") {
            Some(url) if url == expected => {}
            other => problems.push(format!(
                "{alert}: runbook_url {other:?}, expected {expected}"
            )),
        }
        if !anchors.contains(&alert.to_lowercase()) {
            problems.push(format!(
                "{alert}: docs/runbooks.md has no section #{}",
                alert.to_lowercase()
            ));
        }
    }
    assert!(!seen.is_empty(), "no alerts in rules/");
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}
