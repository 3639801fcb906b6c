//! Configuration of self-profiling (`exporters.pprof`).

use serde::{Deserialize, Serialize};

/// `exporters.pprof`: StreamGate's own CPU profiles on `/debug/pprof`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct PprofConfig {
    /// Whether `/debug/pprof/*` is served.
    pub enabled: bool,
    /// Samples per second of a CPU profile (`?seconds=` long).
    pub frequency: u32,
    /// Longest profile a request may ask for, in seconds.
    pub max_seconds: u64,
}

impl Default for PprofConfig {
    fn default() -> Self {
        Self {
            enabled: true,
            frequency: 100,
            max_seconds: 60,
        }
    }
}

impl PprofConfig {
    pub fn validate(&self) -> Result<(), String> {
        if !(1..=1000).contains(&self.frequency) {
            return Err(format!(
                "exporters.pprof.frequency is {}; it must be between 1 and 1000 (Hz), e.g. 100",
                self.frequency
            ));
        }
        if !(1..=3600).contains(&self.max_seconds) {
            return Err(format!(
                "exporters.pprof.max_seconds is {}; it must be between 1 and 3600",
                self.max_seconds
            ));
        }
        Ok(())
    }
}
