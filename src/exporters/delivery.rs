//! Pushing encoded batches to an HTTP endpoint, shared by the remote-write
//! and OTLP exporters: a queue bounded in bytes (a full queue drops its
//! oldest batches, counted, so memory stays bounded through an outage and
//! the newest data goes first once the endpoint is back), and one sender
//! that posts batches in order with retries and exponential backoff.
//!
//! Retried: connection errors, timeouts, 429 (after its `Retry-After`
//! when given) and 5xx. Not retried: other statuses (the request itself
//! is wrong; the endpoint's answer is logged). A batch still failing when
//! older than `max_age`, or at shutdown, is given up. Every item's fate
//! is counted in `streamgate_exporter_{sent,failed,dropped}_items_total`;
//! failures are logged at most once a minute.

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use base64::Engine;
use bytes::Bytes;
use http::header::{HeaderMap, HeaderName, HeaderValue};
use http_body_util::{BodyExt, Full};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use serde::{Deserialize, Serialize};

use crate::config::types::Secret;
use crate::pipeline::Shutdown;
use crate::telemetry::{Delivery, DeliveryOutcome, Telemetry};

/// Why an exporter's endpoint could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum DeliveryError {
    #[error("{key}.url `{url}` is not an http:// or https:// URL: {why}")]
    Url {
        key: &'static str,
        url: String,
        why: String,
    },
    #[error("{key}.headers: `{name}` is not a valid header: {why}")]
    Header {
        key: &'static str,
        name: String,
        why: String,
    },
    #[error("{key}.tls: cannot use {path}: {why}")]
    Tls {
        key: &'static str,
        path: String,
        why: String,
    },
}

/// `tls:` of an exporter: how the endpoint's certificate is checked, and
/// an optional client certificate (mutual TLS). Without it, `https://`
/// endpoints are checked against the system's CA certificates.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, deny_unknown_fields)]
pub struct ClientTlsConfig {
    /// PEM CA certificates trusted instead of the system's.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<PathBuf>,
    /// PEM client certificate chain, for endpoints that require one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub cert_file: Option<PathBuf>,
    /// PEM private key of `cert_file`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub key_file: Option<PathBuf>,
}

impl ClientTlsConfig {
    pub fn validate(&self, key: &str) -> Result<(), String> {
        if self.cert_file.is_some() != self.key_file.is_some() {
            return Err(format!(
                "{key}.tls.cert_file and key_file go together; give both or neither"
            ));
        }
        Ok(())
    }
}

/// Where and how an exporter posts.
pub struct TargetSettings<'a> {
    /// The config key of the exporter, for messages.
    pub key: &'static str,
    pub url: &'a str,
    pub timeout: Duration,
    /// Headers of every request: the protocol's, then the user's.
    pub headers: Vec<(String, String)>,
    pub bearer_token: &'a Secret,
    pub basic_auth_username: &'a str,
    pub basic_auth_password: &'a Secret,
    pub tls: &'a ClientTlsConfig,
    /// Gzip each body before its first attempt (`Content-Encoding: gzip`
    /// is then among `headers`).
    pub gzip: bool,
    /// Which refusals are worth retrying; the others fail at once.
    pub retryable: fn(http::StatusCode) -> bool,
}

/// Remote write's rule: 429 and every 5xx.
pub fn retry_429_and_5xx(status: http::StatusCode) -> bool {
    status == http::StatusCode::TOO_MANY_REQUESTS || status.is_server_error()
}

/// An endpoint requests are posted to.
pub struct HttpTarget {
    client: Client<HttpsConnector<HttpConnector>, Full<Bytes>>,
    uri: http::Uri,
    headers: HeaderMap,
    timeout: Duration,
    gzip: bool,
    retryable: fn(http::StatusCode) -> bool,
}

/// Why one attempt failed.
#[derive(Debug)]
pub enum Failure {
    /// Worth trying again, after `after` when the endpoint said so.
    Retry {
        why: String,
        after: Option<Duration>,
    },
    /// The endpoint refused the request itself.
    Final(String),
}

impl HttpTarget {
    pub fn new(settings: TargetSettings<'_>) -> Result<Self, DeliveryError> {
        let key = settings.key;
        let url_error = |why: String| DeliveryError::Url {
            key,
            url: settings.url.to_string(),
            why,
        };
        let uri: http::Uri = settings
            .url
            .parse()
            .map_err(|e: http::uri::InvalidUri| url_error(e.to_string()))?;
        if !matches!(uri.scheme_str(), Some("http") | Some("https")) || uri.host().is_none() {
            return Err(url_error("it needs a scheme and a host".into()));
        }
        let mut headers = HeaderMap::new();
        let mut insert = |name: &str, value: &str| -> Result<(), DeliveryError> {
            let header = |why: String| DeliveryError::Header {
                key,
                name: name.to_string(),
                why,
            };
            let n = HeaderName::from_bytes(name.as_bytes()).map_err(|e| header(e.to_string()))?;
            let mut v = HeaderValue::from_str(value).map_err(|e| header(e.to_string()))?;
            v.set_sensitive(n == http::header::AUTHORIZATION);
            headers.insert(n, v);
            Ok(())
        };
        for (name, value) in &settings.headers {
            insert(name, value)?;
        }
        if !settings.bearer_token.is_empty() {
            insert(
                "authorization",
                &format!("Bearer {}", settings.bearer_token.expose()),
            )?;
        } else if !settings.basic_auth_username.is_empty() {
            let pair = format!(
                "{}:{}",
                settings.basic_auth_username,
                settings.basic_auth_password.expose()
            );
            let encoded = base64::engine::general_purpose::STANDARD.encode(pair);
            insert("authorization", &format!("Basic {encoded}"))?;
        }
        let tls = client_tls(key, settings.tls)?;
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            client: Client::builder(TokioExecutor::new()).build(connector),
            uri,
            headers,
            timeout: settings.timeout,
            gzip: settings.gzip,
            retryable: settings.retryable,
        })
    }

    /// The body as sent: gzipped when the target asks for it (on a
    /// blocking thread, once per batch, not per attempt).
    pub async fn prepare(&self, body: Bytes) -> Bytes {
        if !self.gzip {
            return body;
        }
        tokio::task::spawn_blocking(move || {
            use std::io::Write;
            let mut encoder = flate2::write::GzEncoder::new(
                Vec::with_capacity(body.len() / 4),
                flate2::Compression::fast(),
            );
            // Writing to a Vec cannot fail.
            let _ = encoder.write_all(&body);
            encoder.finish().map(Bytes::from).unwrap_or(body)
        })
        .await
        .unwrap_or_default()
    }

    pub fn uri(&self) -> &http::Uri {
        &self.uri
    }

    /// Posts `body` once.
    pub async fn post(&self, body: Bytes) -> Result<(), Failure> {
        let mut request = http::Request::post(self.uri.clone());
        if let Some(h) = request.headers_mut() {
            h.extend(self.headers.clone());
        }
        let request = request
            .body(Full::new(body))
            .map_err(|e| Failure::Final(e.to_string()))?;
        let response = match tokio::time::timeout(self.timeout, self.client.request(request)).await
        {
            Err(_) => {
                return Err(Failure::Retry {
                    why: format!("no answer within {:?}", self.timeout),
                    after: None,
                });
            }
            Ok(Err(e)) => {
                return Err(Failure::Retry {
                    why: connection_error(&e),
                    after: None,
                });
            }
            Ok(Ok(response)) => response,
        };
        let status = response.status();
        let retry_after = response
            .headers()
            .get(http::header::RETRY_AFTER)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs);
        // The body is read (bounded in time) so the connection is reused,
        // and its start explains a refusal.
        let body = tokio::time::timeout(self.timeout, response.into_body().collect())
            .await
            .ok()
            .and_then(Result::ok)
            .map(|b| b.to_bytes())
            .unwrap_or_default();
        if status.is_success() {
            return Ok(());
        }
        let text = String::from_utf8_lossy(&body[..body.len().min(512)]);
        let why = format!("{status}: {}", text.trim());
        if (self.retryable)(status) {
            Err(Failure::Retry {
                why,
                after: retry_after,
            })
        } else {
            Err(Failure::Final(why))
        }
    }
}

/// The innermost cause of a client error (hyper's outer message is only
/// "client error (Connect)").
fn connection_error(error: &hyper_util::client::legacy::Error) -> String {
    let mut why = error.to_string();
    let mut source = std::error::Error::source(error);
    while let Some(cause) = source {
        why = cause.to_string();
        source = cause.source();
    }
    why
}

fn client_tls(
    key: &'static str,
    settings: &ClientTlsConfig,
) -> Result<rustls::ClientConfig, DeliveryError> {
    let tls_error = |path: &Path, why: String| DeliveryError::Tls {
        key,
        path: path.display().to_string(),
        why,
    };
    let read = |path: &Path| std::fs::read(path).map_err(|e| tls_error(path, e.to_string()));
    let mut roots = rustls::RootCertStore::empty();
    match &settings.ca_file {
        Some(path) => {
            let pem = read(path)?;
            for cert in CertificateDer::pem_slice_iter(&pem) {
                let cert = cert.map_err(|e| tls_error(path, e.to_string()))?;
                roots
                    .add(cert)
                    .map_err(|e| tls_error(path, e.to_string()))?;
            }
            if roots.is_empty() {
                return Err(tls_error(path, "no PEM certificate in it".into()));
            }
        }
        None => {
            // Unreadable system certificates leave https:// endpoints
            // failing their handshakes, which is counted and logged.
            for cert in rustls_native_certs::load_native_certs().certs {
                let _ = roots.add(cert);
            }
        }
    }
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let builder = rustls::ClientConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| tls_error(Path::new("-"), e.to_string()))?
        .with_root_certificates(roots);
    match (&settings.cert_file, &settings.key_file) {
        (Some(cert_path), Some(key_path)) => {
            let pem = read(cert_path)?;
            let chain = CertificateDer::pem_slice_iter(&pem)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| tls_error(cert_path, e.to_string()))?;
            let private = PrivateKeyDer::from_pem_slice(&read(key_path)?)
                .map_err(|e| tls_error(key_path, e.to_string()))?;
            builder
                .with_client_auth_cert(chain, private)
                .map_err(|e| tls_error(cert_path, e.to_string()))
        }
        _ => Ok(builder.with_no_client_auth()),
    }
}

/// One encoded request body and how many items it carries.
#[derive(Debug, Clone)]
pub struct Batch {
    pub body: Bytes,
    pub items: u64,
    pub created: Instant,
}

/// Batches waiting to be sent, at most `max_bytes` of them.
pub struct BatchQueue {
    state: parking_lot::Mutex<QueueState>,
    max_bytes: usize,
    ready: tokio::sync::Notify,
    telemetry: Arc<Telemetry>,
    delivery: Delivery,
}

#[derive(Default)]
struct QueueState {
    batches: VecDeque<Batch>,
    bytes: usize,
    items: u64,
    /// Items dropped since the last warning, and when that was: a full
    /// queue is logged at most once a minute.
    dropped_unlogged: u64,
    last_drop_warning: Option<Instant>,
}

/// How often a queue that keeps dropping says so.
const DROP_WARNING_EVERY: Duration = Duration::from_secs(60);

impl BatchQueue {
    pub fn new(max_bytes: usize, telemetry: Arc<Telemetry>, delivery: Delivery) -> Self {
        telemetry.delivery(delivery).enable(max_bytes as u64);
        Self {
            state: parking_lot::Mutex::new(QueueState::default()),
            max_bytes,
            ready: tokio::sync::Notify::new(),
            telemetry,
            delivery,
        }
    }

    /// Queues a batch without waiting. When the queue would exceed its
    /// bytes, the oldest batches are dropped (counted) to make room; a
    /// batch larger than the whole queue is queued alone.
    pub fn push(&self, batch: Batch) {
        let stats = self.telemetry.delivery(self.delivery);
        let mut state = self.state.lock();
        while !state.batches.is_empty() && state.bytes + batch.body.len() > self.max_bytes {
            if let Some(old) = state.batches.pop_front() {
                state.bytes -= old.body.len();
                state.items -= old.items;
                state.dropped_unlogged += old.items;
                stats.record(DeliveryOutcome::Dropped, old.items);
            }
        }
        state.bytes += batch.body.len();
        state.items += batch.items;
        state.batches.push_back(batch);
        stats.set_queue(state.items as usize, state.bytes);
        let now = Instant::now();
        let warn = state.dropped_unlogged > 0
            && state
                .last_drop_warning
                .is_none_or(|t| now.duration_since(t) >= DROP_WARNING_EVERY);
        let dropped = if warn {
            state.last_drop_warning = Some(now);
            std::mem::take(&mut state.dropped_unlogged)
        } else {
            0
        };
        drop(state);
        self.ready.notify_one();
        if dropped > 0 {
            tracing::warn!(
                exporter = self.delivery.exporter(),
                signal = self.delivery.signal(),
                items = dropped,
                queue_bytes = self.max_bytes,
                "export queue full: the oldest items, not yet sent, were dropped for new ones \
                 (the endpoint is down or slower than the data; raise queue_size to hold more)"
            );
        }
    }

    /// Takes the oldest batch, if any.
    pub fn try_pop(&self) -> Option<Batch> {
        let mut state = self.state.lock();
        let batch = state.batches.pop_front()?;
        state.bytes -= batch.body.len();
        state.items -= batch.items;
        self.telemetry
            .delivery(self.delivery)
            .set_queue(state.items as usize, state.bytes);
        Some(batch)
    }

    /// Waits for a batch.
    pub async fn pop(&self) -> Batch {
        loop {
            let notified = self.ready.notified();
            if let Some(batch) = self.try_pop() {
                return batch;
            }
            notified.await;
        }
    }

    /// Batches waiting.
    pub fn len(&self) -> usize {
        self.state.lock().batches.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// How the sender retries.
#[derive(Debug, Clone, Copy)]
pub struct RetrySettings {
    pub min_backoff: Duration,
    pub max_backoff: Duration,
    /// A batch still failing when this old is given up.
    pub max_age: Duration,
    /// After shutdown, how long what is queued may still take.
    pub drain: Duration,
}

/// Sends queued batches in order until shutdown, then what is left
/// within `retry.drain`, after `last_batches` (when given) turns true: the
/// producer has queued its last.
pub async fn run_sender(
    queue: Arc<BatchQueue>,
    target: HttpTarget,
    retry: RetrySettings,
    telemetry: Arc<Telemetry>,
    delivery: Delivery,
    shutdown: Shutdown,
    last_batches: Option<tokio::sync::watch::Receiver<bool>>,
) {
    let mut sender = Sender {
        target,
        retry,
        telemetry,
        delivery,
        last_log: LogLimit::default(),
    };
    let stop = shutdown.clone().wait();
    tokio::pin!(stop);
    loop {
        let batch = tokio::select! {
            b = queue.pop() => b,
            _ = &mut stop => break,
        };
        sender.deliver(batch, &shutdown).await;
    }
    // Shutting down: what is queued (and what the last collection added)
    // gets one attempt each while the drain time lasts.
    let deadline = Instant::now() + retry.drain;
    if let Some(mut last) = last_batches {
        let _ = tokio::time::timeout_at(deadline.into(), last.wait_for(|done| *done)).await;
    }
    let failed_before = sender
        .telemetry
        .delivery(delivery)
        .items(DeliveryOutcome::Failed);
    while let Some(batch) = queue.try_pop() {
        let outcome = if Instant::now() < deadline {
            let body = sender.target.prepare(batch.body.clone()).await;
            tokio::time::timeout_at(deadline.into(), sender.target.post(body))
                .await
                .unwrap_or_else(|_| {
                    Err(Failure::Retry {
                        why: "shutdown drain time over".into(),
                        after: None,
                    })
                })
        } else {
            Err(Failure::Retry {
                why: "shutdown drain time over".into(),
                after: None,
            })
        };
        sender.finish(&batch, outcome);
    }
    let lost = sender
        .telemetry
        .delivery(delivery)
        .items(DeliveryOutcome::Failed)
        - failed_before;
    if lost > 0 {
        tracing::warn!(
            exporter = delivery.exporter(),
            signal = delivery.signal(),
            url = %sender.target.uri(),
            items = lost,
            "not delivered before shutdown"
        );
    }
}

struct Sender {
    target: HttpTarget,
    retry: RetrySettings,
    telemetry: Arc<Telemetry>,
    delivery: Delivery,
    last_log: LogLimit,
}

/// When a retry, and a loss, was last logged: apart, so a retry warning
/// never hides the loss that follows it.
#[derive(Default)]
struct LogLimit([Option<Instant>; 2]);

impl LogLimit {
    /// Whether a failure of `kind` may be logged at `now` (once a minute
    /// for each kind); if so, it counts as logged.
    fn allows(&mut self, kind: Failed, now: Instant) -> bool {
        let last = &mut self.0[kind as usize];
        let due = last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60));
        if due {
            *last = Some(now);
        }
        due
    }
}

/// What a logged push failure is: one to be retried, or items lost.
#[derive(Clone, Copy)]
enum Failed {
    Retrying = 0,
    Lost = 1,
}

impl Sender {
    async fn deliver(&mut self, batch: Batch, shutdown: &Shutdown) {
        let mut backoff = self.retry.min_backoff;
        let body = self.target.prepare(batch.body.clone()).await;
        loop {
            let outcome = self.target.post(body.clone()).await;
            let (why, after) = match outcome {
                Err(Failure::Retry { why, after }) => (why, after),
                other => return self.finish(&batch, other),
            };
            if shutdown.is_triggered() || batch.created.elapsed() >= self.retry.max_age {
                return self.finish(&batch, Err(Failure::Retry { why, after }));
            }
            self.telemetry.delivery(self.delivery).record_retry();
            self.log(Failed::Retrying, &format!("{why}; retrying"));
            let wait = after
                .unwrap_or(backoff)
                .clamp(self.retry.min_backoff, self.retry.max_backoff);
            backoff = (backoff * 2).min(self.retry.max_backoff);
            let stop = shutdown.clone().wait();
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = stop => {}
            }
        }
    }

    fn finish(&mut self, batch: &Batch, outcome: Result<(), Failure>) {
        let stats = self.telemetry.delivery(self.delivery);
        match outcome {
            Ok(()) => stats.record(DeliveryOutcome::Sent, batch.items),
            Err(Failure::Final(why)) => {
                stats.record(DeliveryOutcome::Failed, batch.items);
                self.log(
                    Failed::Lost,
                    &format!("refused {} items: {why}", batch.items),
                );
            }
            Err(Failure::Retry { why, .. }) => {
                stats.record(DeliveryOutcome::Failed, batch.items);
                self.log(
                    Failed::Lost,
                    &format!("gave up on {} items: {why}", batch.items),
                );
            }
        }
    }

    /// Logs a failure, at most once a minute for each kind.
    fn log(&mut self, kind: Failed, message: &str) {
        if self.last_log.allows(kind, Instant::now()) {
            tracing::warn!(
                exporter = self.delivery.exporter(),
                signal = self.delivery.signal(),
                url = %self.target.uri(),
                "push failed: {message}"
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A retry warning does not hide the loss that follows it: each kind
    /// is logged once a minute on its own.
    #[test]
    fn losses_are_logged_apart_from_retries() {
        let mut limit = LogLimit::default();
        let t = Instant::now();
        assert!(limit.allows(Failed::Retrying, t));
        assert!(!limit.allows(Failed::Retrying, t + Duration::from_secs(5)));
        assert!(limit.allows(Failed::Lost, t + Duration::from_secs(6)));
        assert!(!limit.allows(Failed::Lost, t + Duration::from_secs(30)));
        assert!(limit.allows(Failed::Retrying, t + Duration::from_secs(61)));
        assert!(limit.allows(Failed::Lost, t + Duration::from_secs(67)));
    }

    fn batch(bytes: usize, items: u64) -> Batch {
        Batch {
            body: Bytes::from(vec![0u8; bytes]),
            items,
            created: Instant::now(),
        }
    }

    #[test]
    fn a_full_queue_drops_its_oldest_batches_and_counts_their_items() {
        let telemetry = Arc::new(Telemetry::new());
        let queue = BatchQueue::new(1000, telemetry.clone(), Delivery::RemoteWrite);
        queue.push(batch(400, 1));
        queue.push(batch(400, 2));
        // 400 + 400 + 300 > 1000: the first (1 item) goes.
        queue.push(batch(300, 3));
        let stats = telemetry.delivery(Delivery::RemoteWrite);
        assert_eq!(stats.items(DeliveryOutcome::Dropped), 1);
        assert_eq!(queue.len(), 2);
        assert_eq!(queue.try_pop().map(|b| b.items), Some(2));
        assert_eq!(queue.try_pop().map(|b| b.items), Some(3));
        assert!(queue.try_pop().is_none());
        // A batch larger than the whole queue is kept alone.
        queue.push(batch(100, 4));
        queue.push(batch(5000, 5));
        assert_eq!(stats.items(DeliveryOutcome::Dropped), 1 + 4);
        assert_eq!(queue.try_pop().map(|b| b.items), Some(5));
        assert!(stats.is_enabled());
    }

    #[test]
    fn targets_refuse_bad_urls_and_headers_and_set_credentials() {
        let tls = ClientTlsConfig::default();
        let none = Secret::default();
        let settings = |url: &'static str, headers: Vec<(String, String)>| TargetSettings {
            key: "exporters.test",
            url,
            timeout: Duration::from_secs(1),
            headers,
            bearer_token: &none,
            basic_auth_username: "",
            basic_auth_password: &none,
            tls: &tls,
            gzip: false,
            retryable: retry_429_and_5xx,
        };
        let err = HttpTarget::new(settings("ftp://host/x", vec![]))
            .err()
            .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("exporters.test.url")));
        let err = HttpTarget::new(settings(
            "http://h:1/w",
            vec![("bad header".into(), "v".into())],
        ))
        .err()
        .map(|e| e.to_string());
        assert!(err.is_some_and(|e| e.contains("`bad header`")));
        let password = Secret::new("s3cret");
        let target = HttpTarget::new(TargetSettings {
            basic_auth_username: "ops",
            basic_auth_password: &password,
            ..settings("https://h:1/w", vec![("X-Scope-OrgID".into(), "t1".into())])
        })
        .expect("target");
        assert_eq!(target.headers["x-scope-orgid"], "t1");
        assert_eq!(target.headers["authorization"], "Basic b3BzOnMzY3JldA==");
        assert!(retry_429_and_5xx(http::StatusCode::BAD_GATEWAY));
        assert!(!retry_429_and_5xx(http::StatusCode::BAD_REQUEST));
    }
}
