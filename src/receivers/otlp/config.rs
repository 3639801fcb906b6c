//! Configuration of the OTLP receiver (`receivers.otlp`).

use serde::{Deserialize, Serialize};

use crate::config::types::{ByteSize, Endpoint, HumanDuration};

/// `receivers.otlp`: the OTLP/gRPC and OTLP/HTTP servers.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct OtlpReceiverConfig {
    /// The OTLP/gRPC server (traces, metrics and logs services).
    pub grpc: ServerConfig,
    /// The OTLP/HTTP server (`POST /v1/traces`, `/v1/metrics`, `/v1/logs`).
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
}

fn enabled() -> bool {
    true
}

impl Default for OtlpReceiverConfig {
    fn default() -> Self {
        Self {
            grpc: ServerConfig {
                enabled: true,
                endpoint: Endpoint::loopback(4317),
            },
            http: ServerConfig {
                enabled: true,
                endpoint: Endpoint::loopback(4318),
            },
            max_request_size: ByteSize::mib(20),
            max_concurrent_requests: 256,
            retry_after: HumanDuration::secs(1),
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
