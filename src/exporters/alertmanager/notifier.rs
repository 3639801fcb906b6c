//! [`Notifier`]: pushes alert batches to Alertmanager's API v2
//! (`POST <url>/api/v2/alerts`) from a bounded queue, retrying with
//! exponential backoff, so a slow or absent Alertmanager never blocks
//! anything else: a full queue drops the batch (counted; the periodic
//! re-send of active alerts makes up for it once Alertmanager is back).
//!
//! Retried: connection errors, timeouts, 429 and 5xx. Not retried: other
//! 4xx (the body is wrong; retrying cannot help). Each outcome is counted
//! in `streamgate_alerting_notifications_total{outcome}` and failures are
//! logged at most once a minute.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::rt::TokioExecutor;
use tokio::sync::mpsc;

use crate::pipeline::Shutdown;
use crate::telemetry::{NotificationOutcome, Telemetry};

/// Where and how to push.
#[derive(Debug, Clone)]
pub struct NotifierConfig {
    /// `http://host:port` of Alertmanager (path prefix allowed).
    pub url: String,
    pub timeout: Duration,
    /// Batches waiting at most.
    pub queue: usize,
    /// Attempts per batch (1 = no retry).
    pub attempts: u32,
    /// First backoff; doubles per attempt up to 30 s.
    pub backoff: Duration,
}

/// The sending half; cheap to clone.
#[derive(Clone)]
pub struct Notifier {
    tx: mpsc::Sender<Vec<u8>>,
    queued: Arc<AtomicUsize>,
    telemetry: Arc<Telemetry>,
}

impl Notifier {
    /// Starts the delivery task; it ends after `shutdown` once the queue
    /// is drained (one attempt per remaining batch).
    pub fn spawn(
        cfg: NotifierConfig,
        telemetry: Arc<Telemetry>,
        shutdown: Shutdown,
    ) -> (Notifier, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(cfg.queue.max(1));
        let queued = Arc::new(AtomicUsize::new(0));
        let worker = Worker {
            cfg,
            client: Client::builder(TokioExecutor::new()).build(HttpConnector::new()),
            telemetry: telemetry.clone(),
            queued: queued.clone(),
            last_log: None,
        };
        let handle = tokio::spawn(worker.run(rx, shutdown));
        (
            Notifier {
                tx,
                queued,
                telemetry,
            },
            handle,
        )
    }

    /// Queues a JSON body of postable alerts; never waits. Returns false
    /// (and counts a drop) when the queue is full.
    pub fn send(&self, body: Vec<u8>) -> bool {
        // Counted before it is queued: the worker (on another thread) may
        // take it and count it out at once.
        let n = self
            .queued
            .fetch_add(1, Ordering::Relaxed)
            .saturating_add(1);
        match self.tx.try_send(body) {
            Ok(()) => {
                self.telemetry.set_alerting_queue(n);
                true
            }
            Err(_) => {
                self.queued.fetch_sub(1, Ordering::Relaxed);
                self.telemetry
                    .record_notification(NotificationOutcome::Dropped);
                false
            }
        }
    }
}

struct Worker {
    cfg: NotifierConfig,
    client: Client<HttpConnector, Full<Bytes>>,
    telemetry: Arc<Telemetry>,
    queued: Arc<AtomicUsize>,
    last_log: Option<std::time::Instant>,
}

/// Why one attempt failed.
enum Failure {
    Retry(String),
    Final(String),
}

impl Worker {
    async fn run(mut self, mut rx: mpsc::Receiver<Vec<u8>>, shutdown: Shutdown) {
        let stop = shutdown.clone().wait();
        tokio::pin!(stop);
        loop {
            let body = tokio::select! {
                b = rx.recv() => match b { Some(b) => b, None => return },
                _ = &mut stop => break,
            };
            self.dequeued();
            self.deliver(body, &shutdown).await;
        }
        // Shutting down: one attempt for whatever is still queued.
        while let Ok(body) = rx.try_recv() {
            self.dequeued();
            let outcome = self.attempt(&body).await;
            self.finish(outcome.err());
        }
    }

    fn dequeued(&self) {
        let n = self
            .queued
            .fetch_sub(1, Ordering::Relaxed)
            .saturating_sub(1);
        self.telemetry.set_alerting_queue(n);
    }

    async fn deliver(&mut self, body: Vec<u8>, shutdown: &Shutdown) {
        let mut backoff = self.cfg.backoff;
        let mut last = None;
        for attempt in 0..self.cfg.attempts.max(1) {
            if attempt > 0 {
                if shutdown.is_triggered() {
                    break;
                }
                tokio::time::sleep(backoff).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
            match self.attempt(&body).await {
                Ok(()) => {
                    self.finish(None);
                    return;
                }
                Err(Failure::Final(why)) => {
                    self.finish(Some(Failure::Final(why)));
                    return;
                }
                Err(Failure::Retry(why)) => last = Some(why),
            }
        }
        self.finish(Some(Failure::Retry(last.unwrap_or_default())));
    }

    fn finish(&mut self, failure: Option<Failure>) {
        let Some(f) = failure else {
            self.telemetry
                .record_notification(NotificationOutcome::Sent);
            return;
        };
        self.telemetry
            .record_notification(NotificationOutcome::Failed);
        let why = match f {
            Failure::Retry(w) | Failure::Final(w) => w,
        };
        let now = std::time::Instant::now();
        if self
            .last_log
            .is_none_or(|t| now.duration_since(t) >= Duration::from_secs(60))
        {
            self.last_log = Some(now);
            tracing::warn!(url = %self.cfg.url, "alert notification to Alertmanager failed: {why}");
        }
    }

    async fn attempt(&self, body: &[u8]) -> Result<(), Failure> {
        let uri = format!("{}/api/v2/alerts", self.cfg.url.trim_end_matches('/'));
        let request = http::Request::post(&uri)
            .header(http::header::CONTENT_TYPE, "application/json")
            .header(
                http::header::USER_AGENT,
                concat!("streamgate/", env!("CARGO_PKG_VERSION")),
            )
            .body(Full::new(Bytes::copy_from_slice(body)))
            .map_err(|e| Failure::Final(format!("bad Alertmanager URL {uri}: {e}")))?;
        let response = tokio::time::timeout(self.cfg.timeout, self.client.request(request))
            .await
            .map_err(|_| Failure::Retry(format!("no answer within {:?}", self.cfg.timeout)))?
            .map_err(|e| Failure::Retry(format!("{uri}: {e}")))?;
        let status = response.status();
        if status.is_success() {
            // Drain the (small) body so the connection can be reused.
            let _ = tokio::time::timeout(self.cfg.timeout, response.into_body().collect()).await;
            return Ok(());
        }
        let text = tokio::time::timeout(self.cfg.timeout, response.into_body().collect())
            .await
            .ok()
            .and_then(|r| r.ok())
            .map(|b| {
                String::from_utf8_lossy(&b.to_bytes())
                    .chars()
                    .take(200)
                    .collect::<String>()
            })
            .unwrap_or_default();
        let why = format!("{uri} answered {status}: {text}");
        if status.is_server_error() || status == http::StatusCode::TOO_MANY_REQUESTS {
            Err(Failure::Retry(why))
        } else {
            Err(Failure::Final(why))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Senders on other threads than the worker's keep the queue count
    /// within the queue and back to zero once drained. (It once went
    /// below zero when the worker took a batch before the sender counted
    /// it in, and the next send overflowed; that interleaving is rare
    /// here, `tests/alerting.rs` met it with the API on its own thread.)
    #[test]
    fn queue_count_stays_sane_with_senders_on_other_threads() {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let (trigger, shutdown) = Shutdown::new();
        let cfg = NotifierConfig {
            // Nothing listens on the discard port: each delivery fails fast.
            url: "http://127.0.0.1:9".into(),
            timeout: Duration::from_millis(200),
            queue: 4,
            attempts: 1,
            backoff: Duration::from_millis(1),
        };
        let telemetry = Arc::new(Telemetry::new());
        let (notifier, worker) =
            runtime.block_on(async { Notifier::spawn(cfg, telemetry.clone(), shutdown.clone()) });
        std::thread::scope(|scope| {
            for _ in 0..2 {
                let notifier = &notifier;
                scope.spawn(move || {
                    for _ in 0..5_000 {
                        notifier.send(b"[]".to_vec());
                        assert!(notifier.queued.load(Ordering::Relaxed) <= 4 + 2);
                    }
                });
            }
        });
        trigger.trigger();
        runtime.block_on(async {
            let _ = tokio::time::timeout(Duration::from_secs(10), worker).await;
        });
        assert_eq!(notifier.queued.load(Ordering::Relaxed), 0);
    }
}
