//! Configuration of StreamGate's own logs (`logging`).

use serde::{Deserialize, Serialize};

/// Log line format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// `logging`: level and format of StreamGate's own logs (to stderr).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct LoggingConfig {
    /// A `tracing` filter: `info`, `debug`, or per module such as
    /// `info,streamgate::receivers=debug`. `RUST_LOG` overrides it.
    pub level: String,
    /// `text` or `json`.
    pub format: LogFormat,
}

impl Default for LoggingConfig {
    fn default() -> Self {
        Self {
            level: "info".into(),
            format: LogFormat::Text,
        }
    }
}

impl LoggingConfig {
    /// Each directive must end in a level: a bare word that is not one
    /// (`warning`) would be read as a module name, and the filter would
    /// then show nothing at all, errors included.
    pub fn validate(&self) -> Result<(), String> {
        check_filter(&self.level, "logging.level")
    }

    /// The `RUST_LOG` filter that overrides `level`, when set and not
    /// empty; checked as `level` is, so a typo there cannot silence the
    /// logs either.
    pub fn env_override() -> Result<Option<String>, String> {
        match std::env::var("RUST_LOG") {
            Ok(filter) if !filter.trim().is_empty() => {
                check_filter(&filter, "RUST_LOG")?;
                Ok(Some(filter))
            }
            Ok(_) => Ok(None),
            Err(std::env::VarError::NotPresent) => Ok(None),
            Err(std::env::VarError::NotUnicode(_)) => {
                Err("RUST_LOG is not valid UTF-8; unset it or write e.g. info".into())
            }
        }
    }
}

/// Checks a `tracing` filter given as `setting`: every directive ends in
/// a level.
fn check_filter(filter: &str, setting: &str) -> Result<(), String> {
    if filter.trim().is_empty() {
        return Err(format!("{setting} is empty; use e.g. info"));
    }
    for directive in filter.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let level = directive.rsplit_once('=').map_or(directive, |(_, l)| l);
        if level
            .trim()
            .parse::<tracing::level_filters::LevelFilter>()
            .is_err()
        {
            let hint = if level.eq_ignore_ascii_case("warning") {
                " (did you mean warn?)"
            } else {
                ""
            };
            return Err(format!(
                "{setting} `{filter}`: `{directive}` is not a level{hint}; use error, warn, info, debug, trace or off, or module=level"
            ));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(level: &str) -> Result<(), String> {
        LoggingConfig {
            level: level.into(),
            format: LogFormat::Text,
        }
        .validate()
    }

    #[test]
    fn levels_are_checked_so_a_typo_does_not_silence_the_logs() {
        for good in [
            "info",
            "WARN",
            "off",
            "info,streamgate::receivers=debug",
            "hyper=warn, info",
            "info,",
        ] {
            assert!(level(good).is_ok(), "{good}");
        }
        let e = level("warning").unwrap_err();
        assert!(e.contains("did you mean warn"), "{e}");
        for bad in ["inf", "notalevel", "info,streamgate", "streamgate=loud"] {
            assert!(level(bad).is_err(), "{bad}");
        }
        // RUST_LOG is held to the same rule, and named.
        for bad in ["verbose", "infoo", "bogus[["] {
            let e = check_filter(bad, "RUST_LOG").unwrap_err();
            assert!(e.starts_with("RUST_LOG `"), "{e}");
        }
    }
}
