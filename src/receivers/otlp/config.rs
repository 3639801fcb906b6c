//! Configuration of the OTLP receiver (`receivers.otlp`).

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize, Serializer};

pub use crate::config::types::{AuthConfig, BasicUser, Secret, TlsConfig};
use crate::config::types::{ByteSize, Endpoint, HumanDuration};

/// `receivers.otlp`: the OTLP/gRPC and OTLP/HTTP servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// The OTLP/gRPC server (traces, metrics and logs services).
    #[serde(deserialize_with = "grpc_server")]
    pub grpc: ServerConfig,
    /// The OTLP/HTTP server (`POST /v1/traces`, `/v1/metrics`, `/v1/logs`).
    #[serde(deserialize_with = "http_server")]
    pub http: ServerConfig,
    /// Largest request accepted, checked on the wire size and again on the
    /// decompressed size (so a compression bomb is cut off early).
    /// Larger requests get 413 / `RESOURCE_EXHAUSTED`.
    pub max_request_size: ByteSize,
    /// Requests handled at once over both servers. Beyond it a request is
    /// refused at once with 429 / `RESOURCE_EXHAUSTED` and a retry hint,
    /// instead of queueing without bound.
    pub max_concurrent_requests: usize,
    /// The delay suggested to senders in `Retry-After` / `RetryInfo` when
    /// StreamGate is overloaded or shutting down.
    pub retry_after: HumanDuration,
    /// Most time a client may take to send a request: its headers
    /// (else the connection is closed) and its body (else 408 /
    /// `DEADLINE_EXCEEDED`). Bounds what slow or stalled senders hold.
    pub read_timeout: HumanDuration,
    /// Refusing new data when memory runs short.
    pub memory_limiter: MemoryLimiterConfig,
    /// Credentials senders must present (none: no authentication).
    pub auth: AuthConfig,
}

/// `receivers.otlp.memory_limiter`: soft and hard limits on resident
/// memory. Above the soft limit new requests are refused with 429 /
/// `RESOURCE_EXHAUSTED` and a retry hint; requests in flight may use at
/// most `hard − soft` bytes, so memory stays under the hard limit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct MemoryLimiterConfig {
    /// The memory StreamGate may use: `auto` (the cgroup's limit, else
    /// the machine's memory) or a size such as `2GiB`.
    pub limit: MemoryLimit,
    /// Percent of `limit` above which new data is refused.
    pub soft_percent: u8,
    /// Percent of `limit` that resident memory is kept under.
    pub hard_percent: u8,
    /// How often resident memory is read.
    pub check_interval: HumanDuration,
}

impl Default for MemoryLimiterConfig {
    fn default() -> Self {
        Self {
            limit: MemoryLimit::Auto,
            soft_percent: 70,
            hard_percent: 90,
            check_interval: HumanDuration(std::time::Duration::from_millis(20)),
        }
    }
}

/// `auto` or a size.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLimit {
    Auto,
    Size(ByteSize),
}

impl fmt::Display for MemoryLimit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MemoryLimit::Auto => f.write_str("auto"),
            MemoryLimit::Size(size) => size.fmt(f),
        }
    }
}

impl Serialize for MemoryLimit {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> Deserialize<'de> for MemoryLimit {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        // `auto`, else whatever a size may be (ByteSize's own parsing).
        let value = serde_yaml_ng::Value::deserialize(d)?;
        if value.as_str().is_some_and(|t| t.trim() == "auto") {
            return Ok(MemoryLimit::Auto);
        }
        ByteSize::deserialize(value)
            .map(MemoryLimit::Size)
            .map_err(|e| serde::de::Error::custom(format!("{e}, or `auto`")))
    }
}

impl MemoryLimiterConfig {
    fn validate(&self) -> Result<(), String> {
        let key = "receivers.otlp.memory_limiter";
        if let MemoryLimit::Size(size) = self.limit
            && size.bytes() < 64 << 20
        {
            return Err(format!(
                "{key}.limit is {size}; it must be at least 64MiB (or `auto`)"
            ));
        }
        if !(1..=99).contains(&self.soft_percent) || !(1..=99).contains(&self.hard_percent) {
            return Err(format!(
                "{key}: soft_percent ({}) and hard_percent ({}) must be between 1 and 99",
                self.soft_percent, self.hard_percent
            ));
        }
        if self.soft_percent >= self.hard_percent {
            return Err(format!(
                "{key}.soft_percent ({}) must be below hard_percent ({}): the difference is the budget of requests in flight",
                self.soft_percent, self.hard_percent
            ));
        }
        let interval = self.check_interval.get();
        if interval < std::time::Duration::from_millis(10)
            || interval > std::time::Duration::from_secs(10)
        {
            return Err(format!(
                "{key}.check_interval is {}; it must be between 10ms and 10s",
                self.check_interval
            ));
        }
        Ok(())
    }
}

/// One listening server.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ServerConfig {
    /// Whether this server runs at all.
    #[serde(default = "enabled")]
    pub enabled: bool,
    /// Listen address, `IP:PORT`. Containers use `0.0.0.0`.
    pub endpoint: Endpoint,
    /// Serve TLS instead of plaintext (absent: plaintext).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tls: Option<TlsConfig>,
}

fn enabled() -> bool {
    true
}

/// A `grpc:` or `http:` block as written: every key optional, the
/// endpoint defaulting to the server's standard loopback port, so a block
/// may set only `enabled` or `tls`.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WrittenServer {
    #[serde(default = "enabled")]
    enabled: bool,
    #[serde(default)]
    endpoint: Option<Endpoint>,
    #[serde(default)]
    tls: Option<TlsConfig>,
}

impl WrittenServer {
    fn with_default_port(self, port: u16) -> ServerConfig {
        ServerConfig {
            enabled: self.enabled,
            endpoint: self.endpoint.unwrap_or_else(|| Endpoint::loopback(port)),
            tls: self.tls,
        }
    }
}

fn grpc_server<'de, D: Deserializer<'de>>(d: D) -> Result<ServerConfig, D::Error> {
    Ok(WrittenServer::deserialize(d)?.with_default_port(4317))
}

fn http_server<'de, D: Deserializer<'de>>(d: D) -> Result<ServerConfig, D::Error> {
    Ok(WrittenServer::deserialize(d)?.with_default_port(4318))
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        Self {
            grpc: ServerConfig {
                enabled: true,
                endpoint: Endpoint::loopback(4317),
                tls: None,
            },
            http: ServerConfig {
                enabled: true,
                endpoint: Endpoint::loopback(4318),
                tls: None,
            },
            max_request_size: ByteSize::mib(20),
            max_concurrent_requests: 256,
            retry_after: HumanDuration::secs(1),
            read_timeout: HumanDuration::secs(30),
            memory_limiter: MemoryLimiterConfig::default(),
            auth: AuthConfig::default(),
        }
    }
}

impl OtlpReceiverConfig {
    /// Checks the values make sense; the error says which key and why.
    pub fn validate(&self) -> Result<(), String> {
        if self.max_request_size.bytes() < 1024 {
            return Err(format!(
                "receivers.otlp.max_request_size is {}; it must be at least 1KiB",
                self.max_request_size
            ));
        }
        if self.max_request_size.bytes() > u32::MAX as u64 {
            return Err("receivers.otlp.max_request_size must be below 4GiB".into());
        }
        if self.max_concurrent_requests == 0 {
            return Err("receivers.otlp.max_concurrent_requests must be at least 1".into());
        }
        let retry_after = self.retry_after.get();
        if retry_after < std::time::Duration::from_secs(1)
            || retry_after > std::time::Duration::from_secs(3600)
        {
            return Err(format!(
                "receivers.otlp.retry_after is {}; it must be between 1s and 1h (senders wait this long before retrying)",
                self.retry_after
            ));
        }
        self.memory_limiter.validate()?;
        self.auth.validate("receivers.otlp.auth")?;
        for (key, server) in [("grpc", &self.grpc), ("http", &self.http)] {
            if let Some(tls) = &server.tls {
                tls.validate(&format!("receivers.otlp.{key}.tls"))?;
            }
        }
        if self.read_timeout.get() < std::time::Duration::from_millis(100) {
            return Err(format!(
                "receivers.otlp.read_timeout is {}; it must be at least 100ms",
                self.read_timeout
            ));
        }
        if !self.grpc.enabled && !self.http.enabled {
            return Err("receivers.otlp: both grpc and http are disabled; enable one".into());
        }
        if self.grpc.enabled
            && self.http.enabled
            && self.grpc.endpoint == self.http.endpoint
            && self.grpc.endpoint.addr().port() != 0
        {
            return Err(format!(
                "receivers.otlp.grpc and receivers.otlp.http both listen on {}",
                self.grpc.endpoint
            ));
        }
        Ok(())
    }
}
