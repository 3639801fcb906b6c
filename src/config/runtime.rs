//! Configuration of the async runtime that runs the receivers, the
//! pipeline and the servers (`runtime`).

use serde::{Deserialize, Serialize};

/// The most worker threads accepted (far above any machine this runs on;
/// a typo such as 10000 is refused rather than started).
pub const MAX_WORKER_THREADS: usize = 1024;

/// The environment variable Tokio reads for its worker count when none is
/// configured.
pub const WORKER_THREADS_ENV: &str = "TOKIO_WORKER_THREADS";

/// `runtime`: how many threads decode, translate and store requests.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RuntimeConfig {
    /// Worker threads of the runtime. 0 (the default): the
    /// `TOKIO_WORKER_THREADS` environment variable if set, else one per
    /// CPU this process may use (its affinity mask and cgroup quota).
    pub worker_threads: usize,
}

impl RuntimeConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.worker_threads > MAX_WORKER_THREADS {
            return Err(format!(
                "runtime.worker_threads is {}; use 0 (one per CPU) or 1 to {MAX_WORKER_THREADS}",
                self.worker_threads
            ));
        }
        Ok(())
    }

    /// The worker count to give the runtime builder: the configured one,
    /// else the one in `env` (the value of [`WORKER_THREADS_ENV`]), else
    /// `None` for one per CPU. An `env` value that is not a count from 1
    /// to [`MAX_WORKER_THREADS`] is an error here rather than Tokio's
    /// panic at start.
    pub fn workers(&self, env: Option<&str>) -> Result<Option<usize>, String> {
        if self.worker_threads > 0 {
            return Ok(Some(self.worker_threads));
        }
        let Some(text) = env else {
            return Ok(None);
        };
        match text.trim().parse::<usize>() {
            Ok(n) if (1..=MAX_WORKER_THREADS).contains(&n) => Ok(Some(n)),
            _ => Err(format!(
                "{WORKER_THREADS_ENV}={text:?} is not a worker count; \
                 use 1 to {MAX_WORKER_THREADS}, or unset it for one per CPU"
            )),
        }
    }

    /// [`RuntimeConfig::workers`] with this process's environment.
    pub fn workers_from_env(&self) -> Result<Option<usize>, String> {
        let env = std::env::var_os(WORKER_THREADS_ENV);
        let text = env.as_ref().map(|v| v.to_string_lossy());
        self.workers(text.as_deref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_configured_count_wins_over_the_environment() {
        let configured = RuntimeConfig { worker_threads: 2 };
        assert_eq!(configured.workers(Some("7")), Ok(Some(2)));
        assert_eq!(configured.workers(Some("nonsense")), Ok(Some(2)));
        let default = RuntimeConfig::default();
        assert_eq!(default.workers(None), Ok(None));
        assert_eq!(default.workers(Some("3")), Ok(Some(3)));
        assert_eq!(default.workers(Some(" 1 ")), Ok(Some(1)));
    }

    #[test]
    fn a_bad_environment_count_is_an_error_not_a_panic() {
        let default = RuntimeConfig::default();
        for bad in ["0", "-1", "two", "", "100000"] {
            let err = default.workers(Some(bad)).unwrap_err();
            assert!(err.contains(WORKER_THREADS_ENV), "{err}");
        }
    }

    #[test]
    fn an_absurd_configured_count_is_refused() {
        assert!(RuntimeConfig { worker_threads: 4 }.validate().is_ok());
        let err = RuntimeConfig {
            worker_threads: MAX_WORKER_THREADS + 1,
        }
        .validate()
        .unwrap_err();
        assert!(err.contains("runtime.worker_threads"), "{err}");
    }
}
