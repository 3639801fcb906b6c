//! `state:`: where StreamGate keeps the state that outlives a restart
//! (models, accumulated counters, alerts) and how often it writes it.

use serde::{Deserialize, Serialize};

use super::types::HumanDuration;

/// `state:`: where and how often state is kept.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct StateConfig {
    /// Directory of the snapshots (created if missing). Empty: state is
    /// not kept, and a restart starts from nothing.
    pub directory: String,
    /// How often every component's state is written (and at shutdown).
    /// A crash loses at most this much.
    pub interval: HumanDuration,
}

impl Default for StateConfig {
    fn default() -> Self {
        Self {
            directory: "data".into(),
            interval: HumanDuration::secs(60),
        }
    }
}

impl StateConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !self.directory.is_empty() && self.interval.get() < std::time::Duration::from_secs(1) {
            return Err(format!(
                "state.interval is {}; it must be at least 1s",
                self.interval
            ));
        }
        // What a start would refuse, `validate` refuses too (a missing
        // directory is created at start).
        let dir = std::path::Path::new(&self.directory);
        if self.enabled() && dir.exists() && !dir.is_dir() {
            return Err(format!(
                "state.directory {} is a file, not a directory",
                dir.display()
            ));
        }
        Ok(())
    }

    /// Whether state is kept at all.
    pub fn enabled(&self) -> bool {
        !self.directory.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_state_directory_that_is_a_file_is_refused() {
        let file = tempfile::NamedTempFile::new().expect("temp file");
        let config = StateConfig {
            directory: file.path().display().to_string(),
            ..Default::default()
        };
        let err = config.validate().expect_err("a file");
        assert!(err.contains("is a file, not a directory"), "{err}");
        let dir = tempfile::tempdir().expect("temp dir");
        let config = StateConfig {
            directory: dir.path().join("not-yet").display().to_string(),
            ..Default::default()
        };
        assert!(config.validate().is_ok(), "created at start");
    }
}
