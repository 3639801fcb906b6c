//! The configuration file: YAML with `${env:VAR}` substitution, read in two
//! phases. [`RawConfig`] is what the user wrote (unknown keys rejected with
//! the line and a suggestion); [`Config`] is what it means (validated, every
//! default filled). The embedded default is [`DEFAULT_YAML`], printed by
//! `streamgate print-config`.

mod env;
mod logging;
mod runtime;
mod state;
pub mod types;

use std::path::Path;

use serde::{Deserialize, Serialize};

pub use crate::api::config::{ApiConfig, ServerConfig};
pub use crate::connectors::logmetrics::LogMetricsConfig;
pub use crate::connectors::servicegraph::ServiceGraphConfig;
pub use crate::connectors::spanmetrics::SpanMetricsConfig;
pub use crate::exporters::alertmanager::config::AlertingConfig;
pub use crate::exporters::otlp::OtlpExporterConfig;
pub use crate::exporters::pprof::config::PprofConfig;
pub use crate::exporters::prometheus::config::PrometheusExporterConfig;
pub use crate::exporters::remote_write::RemoteWriteConfig;
pub use crate::processors::analysis::AnalysisConfig;
pub use crate::processors::windows::WindowsConfig;
pub use crate::receivers::otlp::config::OtlpReceiverConfig;
pub use logging::{LogFormat, LoggingConfig};
pub use runtime::{MAX_WORKER_THREADS, RuntimeConfig, WORKER_THREADS_ENV};
pub use state::StateConfig;

/// The documented default configuration, embedded in the binary.
pub const DEFAULT_YAML: &str = include_str!("default.yaml");

/// Why a configuration could not be used.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read config file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("{source_name}:{line}: {message}")]
    Substitution {
        source_name: String,
        line: usize,
        message: String,
    },
    #[error("{source_name}{location}: {message}")]
    Parse {
        source_name: String,
        /// `:line:column` when known.
        location: String,
        message: String,
    },
    #[error("{source_name}: {message}")]
    Invalid {
        source_name: String,
        message: String,
    },
}

/// The file as written. Every section is optional.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConfig {
    /// This replica's name, added as `collector_instance` to every series
    /// on `/metrics` and in remote write (empty: no label), so replicas
    /// sharing a backend never write the same series.
    pub collector_instance: String,
    /// The admin server: `/metrics`, health, API.
    pub server: ServerConfig,
    /// Bounds of the debugging API (series, history, tails).
    pub api: ApiConfig,
    /// Log level and format.
    pub logging: LoggingConfig,
    /// Worker threads.
    pub runtime: RuntimeConfig,
    /// Where state that outlives a restart is kept.
    pub state: StateConfig,
    /// Where telemetry comes in.
    pub receivers: RawReceivers,
    /// Signals turned into metrics.
    pub connectors: RawConnectors,
    /// Analytics over selected series.
    pub processors: RawProcessors,
    /// Where telemetry goes out.
    pub exporters: RawExporters,
}

/// `receivers:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawReceivers {
    pub otlp: OtlpReceiverConfig,
}

/// `connectors:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawConnectors {
    pub spanmetrics: SpanMetricsConfig,
    pub servicegraph: ServiceGraphConfig,
    pub logmetrics: LogMetricsConfig,
}

/// `processors:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawProcessors {
    pub windows: WindowsConfig,
    pub analysis: AnalysisConfig,
}

/// `exporters:`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RawExporters {
    pub prometheus: PrometheusExporterConfig,
    pub remote_write: RemoteWriteConfig,
    pub otlp: OtlpExporterConfig,
    pub alertmanager: AlertingConfig,
    pub pprof: PprofConfig,
}

/// A validated configuration, ready to build components from.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    pub collector_instance: String,
    pub server: ServerConfig,
    pub api: ApiConfig,
    pub logging: LoggingConfig,
    pub runtime: RuntimeConfig,
    pub state: StateConfig,
    pub otlp: OtlpReceiverConfig,
    pub spanmetrics: SpanMetricsConfig,
    pub servicegraph: ServiceGraphConfig,
    pub logmetrics: LogMetricsConfig,
    pub windows: WindowsConfig,
    pub analysis: AnalysisConfig,
    pub prometheus: PrometheusExporterConfig,
    pub remote_write: RemoteWriteConfig,
    pub otlp_exporter: OtlpExporterConfig,
    pub alerting: AlertingConfig,
    pub pprof: PprofConfig,
}

impl Default for Config {
    fn default() -> Self {
        RawConfig::default()
            .resolve("defaults")
            .expect("built-in defaults are valid")
    }
}

impl RawConfig {
    /// Validates every section and the combinations between them.
    pub fn resolve(self, source_name: &str) -> Result<Config, ConfigError> {
        let invalid = |message: String| ConfigError::Invalid {
            source_name: source_name.to_string(),
            message,
        };
        self.server.validate().map_err(invalid)?;
        self.api.validate().map_err(invalid)?;
        self.logging.validate().map_err(invalid)?;
        self.runtime.validate().map_err(invalid)?;
        self.state.validate().map_err(invalid)?;
        self.receivers.otlp.validate().map_err(invalid)?;
        self.exporters.prometheus.validate().map_err(invalid)?;
        self.exporters.remote_write.validate().map_err(invalid)?;
        self.exporters.otlp.validate().map_err(invalid)?;
        if self.collector_instance.chars().any(char::is_control) {
            return Err(invalid(
                "collector_instance must not hold control characters".into(),
            ));
        }
        self.exporters.alertmanager.validate().map_err(invalid)?;
        self.exporters.pprof.validate().map_err(invalid)?;
        let pprof_token = self.exporters.pprof.access_token.expose();
        if !pprof_token.is_empty()
            && self.server.auth.is_enabled()
            && !self
                .server
                .auth
                .bearer_tokens
                .iter()
                .any(|t| t.expose() == pprof_token)
        {
            return Err(invalid(
                "exporters.pprof.access_token and server.auth both guard /debug/pprof, and a request carries one Authorization header, so none could pass both: leave access_token empty (server.auth then guards the profiles) or make it one of server.auth.bearer_tokens (only that token then reads them)".into(),
            ));
        }
        self.connectors.spanmetrics.validate().map_err(invalid)?;
        self.connectors.servicegraph.validate().map_err(invalid)?;
        self.connectors.logmetrics.validate().map_err(invalid)?;
        self.processors.windows.validate().map_err(invalid)?;
        self.processors.analysis.validate().map_err(invalid)?;

        let mut listeners = vec![("server.endpoint", self.server.endpoint)];
        if self.receivers.otlp.grpc.enabled {
            listeners.push((
                "receivers.otlp.grpc.endpoint",
                self.receivers.otlp.grpc.endpoint,
            ));
        }
        if self.receivers.otlp.http.enabled {
            listeners.push((
                "receivers.otlp.http.endpoint",
                self.receivers.otlp.http.endpoint,
            ));
        }
        // One port cannot be bound twice on overlapping addresses: the
        // same one, or a wildcard (0.0.0.0, ::) and any address of its
        // family (or of both, for `::` on dual-stack hosts).
        let overlap = |a: std::net::SocketAddr, b: std::net::SocketAddr| {
            let (x, y) = (a.ip(), b.ip());
            x == y
                || (x.is_unspecified() && (x.is_ipv4() == y.is_ipv4() || x.is_ipv6()))
                || (y.is_unspecified() && (x.is_ipv4() == y.is_ipv4() || y.is_ipv6()))
        };
        for (i, (name_a, a)) in listeners.iter().enumerate() {
            for (name_b, b) in &listeners[i + 1..] {
                let port = a.addr().port();
                if port != 0 && port == b.addr().port() && overlap(a.addr(), b.addr()) {
                    let what = if a == b {
                        format!("are both {a}")
                    } else {
                        format!("overlap ({a} and {b}: one port on the same addresses)")
                    };
                    return Err(invalid(format!(
                        "{name_a} and {name_b} {what}; give each its own port"
                    )));
                }
            }
        }
        Ok(Config {
            collector_instance: self.collector_instance,
            server: self.server,
            api: self.api,
            logging: self.logging,
            runtime: self.runtime,
            state: self.state,
            otlp: self.receivers.otlp,
            spanmetrics: self.connectors.spanmetrics,
            servicegraph: self.connectors.servicegraph,
            logmetrics: self.connectors.logmetrics,
            windows: self.processors.windows,
            analysis: self.processors.analysis,
            prometheus: self.exporters.prometheus,
            remote_write: self.exporters.remote_write,
            otlp_exporter: self.exporters.otlp,
            alerting: self.exporters.alertmanager,
            pprof: self.exporters.pprof,
        })
    }
}

impl Config {
    /// Reads and resolves a config file.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_yaml(&text, &path.display().to_string())
    }

    /// The embedded default configuration.
    pub fn embedded_default() -> Result<Config, ConfigError> {
        Self::from_yaml(DEFAULT_YAML, "<embedded default>")
    }

    /// Parses YAML text (`source_name` names it in errors), substituting
    /// `${env:VAR}` from the process environment.
    pub fn from_yaml(text: &str, source_name: &str) -> Result<Config, ConfigError> {
        Self::from_yaml_with_env(text, source_name, |name| std::env::var(name).ok())
    }

    /// As [`from_yaml`](Self::from_yaml) with a given environment.
    pub fn from_yaml_with_env(
        text: &str,
        source_name: &str,
        lookup: impl Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        let text = env::substitute(text, source_name, lookup)?;
        let raw: RawConfig = if text.trim().is_empty() {
            RawConfig::default()
        } else {
            serde_path_to_error::deserialize(serde_yaml_ng::Deserializer::from_str(&text))
                .map_err(|e| parse_error(&e, &text, source_name))?
        };
        raw.resolve(source_name)
    }
}

/// Turns a YAML error into one naming the line and the setting, with a
/// "did you mean" for unknown keys.
fn parse_error(
    error: &serde_path_to_error::Error<serde_yaml_ng::Error>,
    text: &str,
    source_name: &str,
) -> ConfigError {
    let inner = error.inner();
    let path = error.path().to_string();
    let mut message = inner.to_string();
    // serde_yaml_ng appends " at line X column Y"; the location goes in front.
    if let Some(cut) = message.find(" at line ") {
        message.truncate(cut);
    }
    // …and puts the path of the mapping it was in first, which the full
    // path replaces.
    if let Some((prefix, rest)) = message.split_once(": ")
        && path.starts_with(prefix)
    {
        message = rest.to_string();
    }
    let unknown_key = unknown_key_hint(&message);
    let location = inner.location().map(|l| {
        // A value its own type refused (a duration, a size, an address)
        // is located at the start of its mapping: the key's own line is
        // found below it.
        let (line, column) = match (&unknown_key, path.rsplit('.').next()) {
            (None, Some(key)) => key_line(text, l.line(), l.column(), key),
            _ => (l.line(), l.column()),
        };
        format!(":{line}:{column}")
    });
    let message = match unknown_key {
        // The path ends with the unknown key, which the hint names.
        Some(hint) => match path.rsplit_once('.') {
            Some((parent, _)) if !parent.is_empty() => format!("{parent}: {hint}"),
            _ => hint,
        },
        None if path == "." || path.is_empty() => message,
        None => format!("{path}: {message}"),
    };
    ConfigError::Parse {
        source_name: source_name.to_string(),
        location: location.unwrap_or_default(),
        message,
    }
}

/// Where `key` is written in the block mapping that starts at `line`:
/// `column` (both from 1): the first line below it at the mapping's
/// indentation that starts with `key:`. The mapping's own place when
/// none does (a flow mapping, a quoted key, a key that is an index).
fn key_line(text: &str, line: usize, column: usize, key: &str) -> (usize, usize) {
    let indent = column.saturating_sub(1);
    for (i, row) in text.lines().enumerate().skip(line.saturating_sub(1)) {
        let content = row.trim_start_matches(' ');
        if content.is_empty() || content.starts_with('#') {
            continue;
        }
        let at = row.len() - content.len();
        if at < indent || (i + 1 > line && at == indent && content.starts_with("- ")) {
            break;
        }
        if at == indent
            && let Some(after) = content.strip_prefix(key)
            && after.trim_start().starts_with(':')
        {
            return (i + 1, column);
        }
    }
    (line, column)
}

/// For serde's "unknown field `x`, expected one of `a`, `b`" message, the
/// closest valid key and the full list.
fn unknown_key_hint(message: &str) -> Option<String> {
    let rest = message.split("unknown field `").nth(1)?;
    let (unknown, tail) = rest.split_once('`')?;
    let expected: Vec<&str> = tail.split('`').skip(1).step_by(2).collect();
    let best = expected
        .iter()
        .map(|k| (strsim::jaro_winkler(unknown, k), *k))
        .filter(|(score, _)| *score > 0.7)
        .max_by(|a, b| a.0.total_cmp(&b.0));
    let valid = expected.join(", ");
    Some(match best {
        Some((_, key)) => {
            format!("unknown key `{unknown}`; did you mean `{key}`? (valid keys here: {valid})")
        }
        None => format!("unknown key `{unknown}` (valid keys here: {valid})"),
    })
}

#[cfg(test)]
mod tests;
