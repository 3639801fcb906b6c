//! Configuration of the OTLP forwarding exporter (`exporters.otlp`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::types::{ByteSize, HumanDuration, Secret};
use crate::exporters::delivery::ClientTlsConfig;

/// `exporters.otlp`: what StreamGate receives, forwarded unchanged over
/// OTLP/HTTP (protobuf) to another OTLP endpoint.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpExporterConfig {
    /// The base URL, as `OTEL_EXPORTER_OTLP_ENDPOINT`: `/v1/traces`,
    /// `/v1/metrics` and `/v1/logs` are appended (empty: off). E.g.
    /// `http://tempo:4318`, `http://loki:3100/otlp`.
    pub endpoint: String,
    /// Which received signals are forwarded.
    pub traces: bool,
    pub metrics: bool,
    pub logs: bool,
    /// `gzip` or `none`.
    pub compression: Compression,
    /// Per request.
    pub timeout: HumanDuration,
    /// Items (spans, data points, log records) per request at most;
    /// received requests are merged up to it.
    pub send_batch_size: u64,
    /// Uncompressed bytes per request at most (a single received request
    /// larger than this is sent alone).
    pub send_batch_max_bytes: ByteSize,
    /// A batch is sent at the latest this long after its first item.
    pub batch_timeout: HumanDuration,
    /// Bytes waiting per signal at most; past it the oldest batches are
    /// dropped (counted in `streamgate_exporter_dropped_items_total`).
    pub queue_size: ByteSize,
    /// First wait before a retry; doubles up to `max_backoff`. A 429's or
    /// 503's `Retry-After` is honoured within those bounds.
    pub min_backoff: HumanDuration,
    pub max_backoff: HumanDuration,
    /// A batch still failing this long after it was queued is given up.
    pub max_retry_time: HumanDuration,
    /// Extra request headers (e.g. `{X-Scope-OrgID: tenant-1}`).
    pub headers: BTreeMap<String, String>,
    /// Bearer token (empty: none); wins over basic auth.
    pub bearer_token: Secret,
    pub basic_auth_username: String,
    pub basic_auth_password: Secret,
    /// Certificate checking for `https://` endpoints.
    pub tls: ClientTlsConfig,
}

/// How request bodies are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Compression {
    #[default]
    Gzip,
    None,
}

impl Default for OtlpExporterConfig {
    fn default() -> Self {
        Self {
            endpoint: String::new(),
            traces: true,
            metrics: false,
            logs: true,
            compression: Compression::Gzip,
            timeout: HumanDuration::secs(10),
            send_batch_size: 8192,
            send_batch_max_bytes: ByteSize::mib(4),
            batch_timeout: HumanDuration(std::time::Duration::from_millis(200)),
            queue_size: ByteSize::mib(64),
            min_backoff: HumanDuration::secs(1),
            max_backoff: HumanDuration::secs(30),
            max_retry_time: HumanDuration::secs(300),
            headers: BTreeMap::new(),
            bearer_token: Secret::default(),
            basic_auth_username: String::new(),
            basic_auth_password: Secret::default(),
            tls: ClientTlsConfig::default(),
        }
    }
}

impl OtlpExporterConfig {
    pub fn enabled(&self) -> bool {
        !self.endpoint.is_empty() && (self.traces || self.metrics || self.logs)
    }

    pub fn validate(&self) -> Result<(), String> {
        const KEY: &str = "exporters.otlp";
        if self.endpoint.is_empty() {
            return Ok(());
        }
        if !(self.endpoint.starts_with("http://") || self.endpoint.starts_with("https://")) {
            return Err(format!(
                "{KEY}.endpoint `{}` must start with http:// or https:// (OTLP/HTTP; the paths /v1/<signal> are appended)",
                self.endpoint
            ));
        }
        if self.endpoint.contains("/v1/") {
            return Err(format!(
                "{KEY}.endpoint `{}` names a signal path; give the base URL (e.g. http://host:4318), /v1/<signal> is appended",
                self.endpoint
            ));
        }
        if self.timeout.get().is_zero() {
            return Err(format!("{KEY}.timeout must be more than 0s"));
        }
        if self.send_batch_size == 0 || self.send_batch_max_bytes.bytes() < 1024 {
            return Err(format!(
                "{KEY}.send_batch_size must be at least 1 and send_batch_max_bytes at least 1KiB"
            ));
        }
        if self.queue_size < self.send_batch_max_bytes {
            return Err(format!(
                "{KEY}.queue_size ({}) must be at least send_batch_max_bytes ({})",
                self.queue_size, self.send_batch_max_bytes
            ));
        }
        if self.min_backoff.get().is_zero() || self.min_backoff > self.max_backoff {
            return Err(format!(
                "{KEY}.min_backoff ({}) must be more than 0s and at most max_backoff ({})",
                self.min_backoff, self.max_backoff
            ));
        }
        self.tls.validate(KEY)
    }
}
