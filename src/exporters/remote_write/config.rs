//! Configuration of the Prometheus remote-write exporter
//! (`exporters.remote_write`).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::config::types::{ByteSize, HumanDuration, Secret};
use crate::exporters::delivery::ClientTlsConfig;
use crate::model::prometheus_label::is_settable_label_name;

/// `exporters.remote_write`: every `interval`, everything `/metrics`
/// serves is sent to `url` with the remote-write 1.0 protocol.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct RemoteWriteConfig {
    /// The receiver's write endpoint, e.g.
    /// `http://prometheus:9090/api/v1/write` or
    /// `http://mimir:8080/api/v1/push` (empty: off).
    pub url: String,
    /// Time between two collections; each sends every series once, with
    /// the collection's timestamp.
    pub interval: HumanDuration,
    /// Per request.
    pub timeout: HumanDuration,
    /// Samples per request at most.
    pub max_samples_per_send: usize,
    /// Encoded requests waiting at most; past it the oldest are dropped
    /// (counted in `streamgate_exporter_dropped_items_total`).
    pub queue_size: ByteSize,
    /// First wait before a retry; doubles up to `max_backoff`. A 429's
    /// `Retry-After` is honoured within those bounds.
    pub min_backoff: HumanDuration,
    pub max_backoff: HumanDuration,
    /// A request still failing when its samples are this old is given up
    /// (receivers refuse samples much older than their newest anyway).
    pub max_sample_age: HumanDuration,
    /// Labels added to every series that lacks them (as Prometheus'
    /// `external_labels`), e.g. `{cluster: eu-1}`.
    pub external_labels: BTreeMap<String, String>,
    /// Extra request headers, e.g. `{X-Scope-OrgID: tenant-1}` for Mimir
    /// or Cortex.
    pub headers: BTreeMap<String, String>,
    /// Bearer token (empty: none); wins over basic auth.
    pub bearer_token: Secret,
    pub basic_auth_username: String,
    pub basic_auth_password: Secret,
    /// Certificate checking for `https://` URLs.
    pub tls: ClientTlsConfig,
    /// Send each family's type, help and unit with its samples.
    pub send_metadata: bool,
}

impl Default for RemoteWriteConfig {
    fn default() -> Self {
        Self {
            url: String::new(),
            interval: HumanDuration::secs(15),
            timeout: HumanDuration::secs(30),
            max_samples_per_send: 2000,
            queue_size: ByteSize(64 << 20),
            min_backoff: HumanDuration(std::time::Duration::from_millis(30)),
            max_backoff: HumanDuration::secs(5),
            max_sample_age: HumanDuration::secs(3600),
            external_labels: BTreeMap::new(),
            headers: BTreeMap::new(),
            bearer_token: Secret::default(),
            basic_auth_username: String::new(),
            basic_auth_password: Secret::default(),
            tls: ClientTlsConfig::default(),
            send_metadata: true,
        }
    }
}

impl RemoteWriteConfig {
    pub fn enabled(&self) -> bool {
        !self.url.is_empty()
    }

    pub fn validate(&self) -> Result<(), String> {
        const KEY: &str = "exporters.remote_write";
        if !self.enabled() {
            return Ok(());
        }
        if !(self.url.starts_with("http://") || self.url.starts_with("https://")) {
            return Err(format!(
                "{KEY}.url `{}` must start with http:// or https://",
                self.url
            ));
        }
        if self.interval.get() < std::time::Duration::from_secs(1) {
            return Err(format!(
                "{KEY}.interval is {}; it must be at least 1s",
                self.interval
            ));
        }
        if self.timeout.get().is_zero() {
            return Err(format!("{KEY}.timeout must be more than 0s"));
        }
        if !(1..=1_000_000).contains(&self.max_samples_per_send) {
            return Err(format!(
                "{KEY}.max_samples_per_send is {}; it must be between 1 and 1000000",
                self.max_samples_per_send
            ));
        }
        if self.queue_size.bytes() < 1 << 20 {
            return Err(format!(
                "{KEY}.queue_size is {}; it must be at least 1MiB",
                self.queue_size
            ));
        }
        if self.min_backoff.get().is_zero() || self.min_backoff > self.max_backoff {
            return Err(format!(
                "{KEY}.min_backoff ({}) must be more than 0s and at most max_backoff ({})",
                self.min_backoff, self.max_backoff
            ));
        }
        for name in self.external_labels.keys() {
            if !is_settable_label_name(name) {
                return Err(format!(
                    "{KEY}.external_labels: `{name}` is not a label name ([a-zA-Z_][a-zA-Z0-9_]*, not starting with __)"
                ));
            }
        }
        self.tls.validate(KEY)
    }
}
