//! Enforces the layout rules of GUIDE.md §2 on the source tree: every file
//! opens with a `//!` doc comment, and each module imports only what it may.

use std::path::{Path, PathBuf};

fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).expect("readable src dir") {
        let path = entry.expect("dir entry").path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}

fn sources() -> Vec<(String, String)> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut files = Vec::new();
    rust_files(&root, &mut files);
    files
        .into_iter()
        .map(|p| {
            let rel = p
                .strip_prefix(&root)
                .unwrap()
                .to_string_lossy()
                .replace('\\', "/");
            (rel, std::fs::read_to_string(&p).expect("readable source"))
        })
        .collect()
}

/// The `crate::` modules a file refers to (first path segment).
fn crate_imports(text: &str) -> Vec<String> {
    let mut found = Vec::new();
    for (i, _) in text.match_indices("crate::") {
        let rest = &text[i + "crate::".len()..];
        let segment: String = rest
            .chars()
            .take_while(|c| c.is_alphanumeric() || *c == '_' || *c == ':')
            .collect();
        found.push(segment.trim_end_matches(':').to_string());
    }
    found
}

#[test]
fn every_source_file_starts_with_a_module_doc() {
    let missing: Vec<String> = sources()
        .into_iter()
        .filter(|(_, text)| !text.trim_start().starts_with("//!"))
        .map(|(path, _)| path)
        .collect();
    assert!(missing.is_empty(), "files without a //! doc: {missing:?}");
}

#[test]
fn modules_import_only_what_the_guide_allows() {
    // (module prefix, allowed crate:: paths)
    let rules: &[(&str, &[&str])] = &[
        ("model/", &["model"]),
        ("telemetry/", &["telemetry"]),
        ("pipeline/", &["pipeline", "model", "telemetry"]),
        ("analytics/", &["analytics", "model"]),
        (
            "receivers/",
            &[
                "receivers",
                "model",
                "pipeline",
                "telemetry",
                "config::types",
            ],
        ),
        // Every component's config.rs may use the shared value types.
        (
            "connectors/",
            &[
                "connectors",
                "model",
                "pipeline",
                "telemetry",
                "config::types",
            ],
        ),
        (
            "processors/",
            &[
                "processors",
                "model",
                "pipeline",
                "telemetry",
                "analytics",
                "config::types",
            ],
        ),
        (
            "exporters/",
            &[
                "exporters",
                "model",
                "pipeline",
                "telemetry",
                "config::types",
            ],
        ),
        (
            "api/",
            &[
                "api",
                "model",
                "telemetry",
                "pipeline",
                "config::types",
                "chart",
            ],
        ),
        // Drawing only: nothing of ours.
        ("chart.rs", &["chart"]),
    ];
    let mut violations = Vec::new();
    for (path, text) in sources() {
        let Some((_, allowed)) = rules.iter().find(|(prefix, _)| path.starts_with(prefix)) else {
            continue;
        };
        for import in crate_imports(&text) {
            if !allowed
                .iter()
                .any(|a| import == *a || import.starts_with(&format!("{a}::")))
            {
                violations.push(format!("{path} imports crate::{import}"));
            }
        }
    }
    assert!(violations.is_empty(), "{violations:#?}");
}

/// The algorithms take no clock, do no I/O and spawn nothing. Their unit
/// tests (`tests.rs`) may read fixture files and time themselves.
#[test]
fn analytics_stays_pure() {
    for (path, text) in sources() {
        if path.starts_with("analytics/") && !path.ends_with("/tests.rs") {
            for banned in [
                "tokio",
                "std::time::SystemTime",
                "Instant::now",
                "std::fs",
                "std::net",
            ] {
                assert!(!text.contains(banned), "{path} uses {banned}");
            }
        }
    }
}

#[test]
fn only_main_uses_anyhow() {
    for (path, text) in sources() {
        if path != "main.rs" {
            assert!(!text.contains("anyhow"), "{path} uses anyhow");
        }
    }
}
