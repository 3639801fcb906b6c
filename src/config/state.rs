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
        Ok(())
    }

    /// Whether state is kept at all.
    pub fn enabled(&self) -> bool {
        !self.directory.is_empty()
    }
}
