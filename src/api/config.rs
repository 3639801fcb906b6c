//! Configuration of the admin server (`server`): `/metrics`, health and API.

use serde::{Deserialize, Serialize};

use crate::config::types::{Endpoint, HumanDuration};

/// `server`: the HTTP server for `/metrics`, `/healthz`, `/readyz` and `/api`.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ServerConfig {
    /// Listen address, `IP:PORT`. Containers use `0.0.0.0`.
    pub endpoint: Endpoint,
    /// How long shutdown waits for in-flight requests before giving up.
    pub shutdown_timeout: HumanDuration,
}

impl Default for ServerConfig {
    fn default() -> Self {
        Self {
            endpoint: Endpoint::loopback(9464),
            shutdown_timeout: HumanDuration::secs(30),
        }
    }
}

impl ServerConfig {
    pub fn validate(&self) -> Result<(), String> {
        if self.shutdown_timeout.get().is_zero() {
            return Err("server.shutdown_timeout must be above 0".into());
        }
        Ok(())
    }
}
