//! `streamgate healthcheck`: one GET of a health endpoint (by default
//! `/readyz` on the admin server), for container health checks where no
//! HTTP client is installed. Exit 0 on a 2xx answer within the timeout.

use std::time::Duration;

use bytes::Bytes;
use http_body_util::Empty;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;

/// Why the probe failed.
#[derive(Debug, thiserror::Error)]
pub enum ProbeError {
    #[error("`{0}` is not an http:// URL")]
    Url(String),
    #[error("{url}: {reason}")]
    Failed { url: String, reason: String },
    #[error("{url}: no answer within {timeout:?}")]
    Timeout { url: String, timeout: Duration },
    #[error("{url}: answered {status}")]
    Unhealthy { url: String, status: u16 },
}

/// GETs `url` (plain HTTP); `Ok` with the status when it is 2xx.
pub fn probe(url: &str, timeout: Duration) -> Result<u16, ProbeError> {
    let uri: http::Uri = url.parse().map_err(|_| ProbeError::Url(url.into()))?;
    if uri.scheme_str() != Some("http") {
        return Err(ProbeError::Url(url.into()));
    }
    let failed = |reason: String| ProbeError::Failed {
        url: url.into(),
        reason,
    };
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| failed(e.to_string()))?;
    runtime.block_on(async {
        let client: Client<HttpConnector, Empty<Bytes>> =
            Client::builder(TokioExecutor::new()).build(HttpConnector::new());
        let answer = tokio::time::timeout(timeout, client.get(uri))
            .await
            .map_err(|_| ProbeError::Timeout {
                url: url.into(),
                timeout,
            })?
            .map_err(|e| failed(e.to_string()))?;
        let status = answer.status().as_u16();
        if answer.status().is_success() {
            Ok(status)
        } else {
            Err(ProbeError::Unhealthy {
                url: url.into(),
                status,
            })
        }
    })
}
