//! What SIGHUP does. Prometheus, Alertmanager and the OTel Collector
//! reload their configuration on it, so an operator (or a config-map
//! reloader sidecar) may send it; left to its default action it would
//! kill StreamGate without draining or writing its state. StreamGate does
//! not apply a configuration in place: on SIGHUP it reads and checks the
//! file again (as `streamgate validate` does) and logs whether a restart
//! would change anything, and keeps running as it is.

use std::path::Path;

use crate::config::Config;

/// What the file says now, compared with the running configuration.
#[derive(Debug)]
pub enum Hangup {
    /// No file: the embedded default configuration runs.
    Embedded,
    /// The file loads to the configuration that runs.
    Unchanged,
    /// The file is valid and differs: a restart would apply it.
    Changed,
    /// The file no longer loads or checks: a restart would fail.
    Invalid(String),
}

/// Reads `path` again and compares it with `running`.
pub fn check(path: Option<&Path>, running: &Config) -> Hangup {
    let Some(path) = path else {
        return Hangup::Embedded;
    };
    let config = match Config::load(path) {
        Ok(config) => config,
        Err(e) => return Hangup::Invalid(e.to_string()),
    };
    if let Err(e) = super::check_files(&config) {
        return Hangup::Invalid(e.to_string());
    }
    if &config == running {
        Hangup::Unchanged
    } else {
        Hangup::Changed
    }
}

/// Logs what [`check`] found for `path`.
pub fn report(path: Option<&Path>, running: &Config) {
    let file = path.map(|p| p.display().to_string()).unwrap_or_default();
    match check(path, running) {
        Hangup::Embedded => tracing::info!(
            "SIGHUP received: running on the embedded default configuration, nothing to read again; still running"
        ),
        Hangup::Unchanged => tracing::info!(
            file,
            "SIGHUP received: the configuration file is unchanged; still running"
        ),
        Hangup::Changed => tracing::warn!(
            file,
            "SIGHUP received: the configuration file changed and is valid, but StreamGate does not apply configuration in place; restart it (SIGTERM, then start) to apply it; still running on the previous configuration"
        ),
        Hangup::Invalid(error) => tracing::error!(
            file,
            error,
            "SIGHUP received: the configuration file is no longer valid, so a restart would fail; still running on the previous configuration"
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_file_is_compared_with_what_runs() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("streamgate.yaml");
        std::fs::write(&path, "server:\n  endpoint: 127.0.0.1:19464\n").expect("write");
        let running = Config::load(&path).expect("valid");
        assert!(matches!(check(Some(&path), &running), Hangup::Unchanged));
        assert!(matches!(check(None, &running), Hangup::Embedded));

        std::fs::write(&path, "server:\n  endpoint: 127.0.0.1:19465\n").expect("write");
        assert!(matches!(check(Some(&path), &running), Hangup::Changed));

        std::fs::write(
            &path,
            "server:\n  endpoint: 127.0.0.1:19464\n  shutdown: 1\n",
        )
        .expect("write");
        match check(Some(&path), &running) {
            Hangup::Invalid(e) => assert!(e.contains("shutdown"), "{e}"),
            other => panic!("{other:?}"),
        }
        std::fs::remove_file(&path).expect("remove");
        assert!(matches!(check(Some(&path), &running), Hangup::Invalid(_)));
    }
}
