//! The Prometheus remote-write exporter (protocol 1.0): every `interval`
//! it walks everything `/metrics` serves — translated metrics, the
//! enriched series (span metrics, windows, analysis) with `target_info`,
//! and StreamGate's own — encodes it as snappy-compressed
//! `WriteRequest`s stamped with the collection's time, and queues them
//! for the sender (`exporters/delivery.rs`: bounded queue, retries with
//! backoff). So Prometheus (`--web.enable-remote-write-receiver`), Mimir,
//! Thanos Receive or Cortex hold the same series a scrape would see, with
//! `collector_instance` and the `external_labels` added.
//!
//! A series that is gone since the last collection gets one staleness
//! marker, as a scrape would give it (`staleness.rs`).
//!
//! Collections run on a blocking thread, one family lock at a time, as a
//! scrape does; a collection still running when the next is due makes
//! that one skipped, never queued twice.

pub mod config;
mod encode;
mod staleness;

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

pub use config::RemoteWriteConfig;
pub use encode::RequestEncoder;
pub use staleness::{Ledger, LedgerError};

use crate::exporters::delivery::{
    self, BatchQueue, DeliveryError, HttpTarget, RetrySettings, TargetSettings,
};
use crate::exporters::prometheus::{
    COLLECTOR_INSTANCE_LABEL, NameFilter, PrometheusExporter, Unpaced,
};
use crate::pipeline::Shutdown;
use crate::telemetry::Delivery;

/// The protocol's fixed headers.
const PROTOCOL_HEADERS: [(&str, &str); 3] = [
    ("content-type", "application/x-protobuf"),
    ("content-encoding", "snappy"),
    ("x-prometheus-remote-write-version", "0.1.0"),
];

/// The exporter: what to collect and where the requests wait.
pub struct RemoteWrite {
    config: RemoteWriteConfig,
    exporter: Arc<PrometheusExporter>,
    queue: Arc<BatchQueue>,
    /// `external_labels` and `collector_instance`, sorted by name.
    defaults: Vec<(String, String)>,
    /// The last collection's requests, for the staleness markers of the
    /// next (collections never overlap: see [`RemoteWrite::run`]).
    ledger: parking_lot::Mutex<staleness::Ledger>,
}

/// The endpoint with the protocol's headers and the user's;
/// `streamgate validate` builds it too, so it refuses what the start
/// would.
pub fn target(config: &RemoteWriteConfig) -> Result<HttpTarget, DeliveryError> {
    let mut headers: Vec<(String, String)> = PROTOCOL_HEADERS
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    headers.push((
        "user-agent".into(),
        format!("streamgate/{}", env!("CARGO_PKG_VERSION")),
    ));
    headers.extend(config.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    HttpTarget::new(TargetSettings {
        key: "exporters.remote_write",
        url: &config.url,
        timeout: config.timeout.get(),
        headers,
        bearer_token: &config.bearer_token,
        basic_auth_username: &config.basic_auth_username,
        basic_auth_password: &config.basic_auth_password,
        tls: &config.tls,
        gzip: false,
        retryable: delivery::retry_429_and_5xx,
    })
}

/// Starts collecting and sending; `None` when no URL is configured.
pub fn start(
    config: &RemoteWriteConfig,
    exporter: Arc<PrometheusExporter>,
    shutdown: Shutdown,
) -> Result<Option<Vec<tokio::task::JoinHandle<()>>>, DeliveryError> {
    if !config.enabled() {
        return Ok(None);
    }
    let target = target(config)?;
    let telemetry = exporter.telemetry().clone();
    let queue = Arc::new(BatchQueue::new(
        config.queue_size.bytes() as usize,
        telemetry.clone(),
        Delivery::RemoteWrite,
    ));
    let mut defaults: Vec<(String, String)> = config
        .external_labels
        .iter()
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if !exporter.collector_instance().is_empty() {
        defaults.push((
            COLLECTOR_INSTANCE_LABEL.to_string(),
            exporter.collector_instance().to_string(),
        ));
    }
    defaults.sort();
    let remote = Arc::new(RemoteWrite {
        config: config.clone(),
        exporter,
        queue: queue.clone(),
        defaults,
        ledger: parking_lot::Mutex::new(staleness::Ledger::default()),
    });
    let retry = RetrySettings {
        min_backoff: config.min_backoff.get(),
        max_backoff: config.max_backoff.get(),
        max_age: config.max_sample_age.get(),
        drain: config.timeout.get().min(Duration::from_secs(10)),
    };
    tracing::info!(url = %config.url, interval = %config.interval, "remote-writing every series");
    let (collected, last_collection) = tokio::sync::watch::channel(false);
    let collector = tokio::spawn(remote.run(shutdown.clone(), collected));
    let sender = tokio::spawn(async move {
        delivery::run_sender(
            queue,
            target,
            retry,
            telemetry,
            Delivery::RemoteWrite,
            shutdown,
            Some(last_collection),
        )
        .await
    });
    Ok(Some(vec![collector, sender]))
}

impl RemoteWrite {
    /// Collects every `interval` until shutdown, then once more (so the
    /// latest values go out) and tells the sender.
    async fn run(self: Arc<Self>, shutdown: Shutdown, done: tokio::sync::watch::Sender<bool>) {
        let mut tick = tokio::time::interval(self.config.interval.get());
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Skip);
        let stop = shutdown.wait();
        tokio::pin!(stop);
        loop {
            tokio::select! {
                _ = &mut stop => break,
                _ = tick.tick() => {
                    let remote = self.clone();
                    let _ = tokio::task::spawn_blocking(move || remote.collect()).await;
                }
            }
        }
        let remote = self.clone();
        let _ = tokio::task::spawn_blocking(move || remote.collect()).await;
        let _ = done.send(true);
    }

    /// One collection: every series with this moment's timestamp and a
    /// staleness marker for every series of the last collection that is
    /// gone, queued in requests of `max_samples_per_send`. Returns the
    /// samples.
    pub fn collect(&self) -> u64 {
        let now_ms = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as i64)
            .unwrap_or(0);
        let mut ledger = self.ledger.lock();
        let queue = self.queue.clone();
        let mut bodies = Vec::new();
        let mut ready = |batch: delivery::Batch| {
            bodies.push(batch.body.clone());
            queue.push(batch);
        };
        let mut encoder = RequestEncoder::new(
            now_ms,
            self.config.max_samples_per_send,
            self.config.send_metadata,
            &self.defaults,
            &mut ready,
        );
        self.exporter
            .visit(&NameFilter::all(), &mut encoder, &mut Unpaced);
        match ledger.mark_vanished(&mut encoder) {
            Ok(0) => {}
            Ok(marked) => tracing::debug!(
                marked,
                "remote write: staleness markers for series that are gone"
            ),
            Err(e) => {
                tracing::warn!(error = %e, "remote write: no staleness markers this collection")
            }
        }
        encoder.flush();
        let total = encoder.total_samples;
        drop(encoder);
        ledger.remember(bodies);
        total
    }
}
