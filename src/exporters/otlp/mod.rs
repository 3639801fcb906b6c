//! The OTLP forwarding exporter: what the receivers accept (traces and
//! logs by default, metrics when asked) goes on unchanged to another OTLP
//! endpoint over OTLP/HTTP with protobuf — Tempo, Jaeger, Loki, another
//! collector — so StreamGate can sit in front of an existing pipeline.
//!
//! Received requests travel as protobuf bytes; two serialised export
//! requests concatenated are one request holding both (their only field
//! is a repeated one), so batching appends bytes and never re-encodes.
//! A batch is sent when it reaches `send_batch_size` items or
//! `send_batch_max_bytes`, or `batch_timeout` after its first item. The
//! ingest path only appends and hands full batches to a queue bounded in
//! bytes; compression and sending happen on the sender task
//! (`exporters/delivery.rs`). Retried per the OTLP/HTTP specification:
//! 429, 502, 503, 504 and connection failures.

pub mod config;

use std::sync::Arc;
use std::time::{Duration, Instant};

use bytes::Bytes;

pub use config::{Compression, OtlpExporterConfig};

use crate::exporters::delivery::{
    self, Batch, BatchQueue, DeliveryError, HttpTarget, RetrySettings, TargetSettings,
};
use crate::model::otlp::ItemCount;
use crate::model::{LogsBatch, MetricsBatch, TracesBatch};
use crate::pipeline::{
    ConsumeResult, Consumed, LogsConsumer, MetricsConsumer, Shutdown, TracesConsumer,
};
use crate::telemetry::{Delivery, Telemetry};

/// The statuses OTLP/HTTP says to retry.
fn otlp_retryable(status: http::StatusCode) -> bool {
    matches!(status.as_u16(), 429 | 502 | 503 | 504)
}

/// One signal's batch being filled and its queue.
struct SignalForwarder {
    delivery: Delivery,
    path: &'static str,
    max_items: u64,
    max_bytes: usize,
    pending: parking_lot::Mutex<Pending>,
    queue: Arc<BatchQueue>,
}

#[derive(Default)]
struct Pending {
    bytes: Vec<u8>,
    items: u64,
    since: Option<Instant>,
}

impl Pending {
    fn take(&mut self) -> Option<Batch> {
        let since = self.since.take()?;
        let batch = Batch {
            body: Bytes::from(std::mem::take(&mut self.bytes)),
            items: std::mem::take(&mut self.items),
            created: since,
        };
        Some(batch)
    }
}

impl SignalForwarder {
    /// Appends one received request (protobuf) of `items` items.
    fn add(&self, wire: &[u8], items: u64) {
        if items == 0 {
            return;
        }
        let mut full = None;
        let mut pending = self.pending.lock();
        if !pending.bytes.is_empty()
            && (pending.items + items > self.max_items
                || pending.bytes.len() + wire.len() > self.max_bytes)
        {
            full = pending.take();
        }
        pending.bytes.extend_from_slice(wire);
        pending.items += items;
        pending.since.get_or_insert_with(Instant::now);
        let now_full = pending.items >= self.max_items || pending.bytes.len() >= self.max_bytes;
        let also = if now_full { pending.take() } else { None };
        drop(pending);
        for batch in full.into_iter().chain(also) {
            self.queue.push(batch);
        }
    }

    /// Queues the batch being filled if it is older than `age`.
    fn flush_older_than(&self, age: Duration) {
        let mut pending = self.pending.lock();
        if pending.since.is_some_and(|t| t.elapsed() >= age)
            && let Some(batch) = pending.take()
        {
            drop(pending);
            self.queue.push(batch);
        }
    }
}

/// The exporter: a forwarder per enabled signal.
pub struct OtlpForwarder {
    config: OtlpExporterConfig,
    telemetry: Arc<Telemetry>,
    traces: Option<SignalForwarder>,
    metrics: Option<SignalForwarder>,
    logs: Option<SignalForwarder>,
}

impl OtlpForwarder {
    /// `None` when no endpoint is configured.
    pub fn build(config: &OtlpExporterConfig, telemetry: Arc<Telemetry>) -> Option<Arc<Self>> {
        if !config.enabled() {
            return None;
        }
        let signal = |on: bool, delivery: Delivery, path: &'static str| {
            on.then(|| SignalForwarder {
                delivery,
                path,
                max_items: config.send_batch_size,
                max_bytes: config.send_batch_max_bytes.bytes() as usize,
                pending: parking_lot::Mutex::new(Pending::default()),
                queue: Arc::new(BatchQueue::new(
                    config.queue_size.bytes() as usize,
                    telemetry.clone(),
                    delivery,
                )),
            })
        };
        Some(Arc::new(Self {
            traces: signal(config.traces, Delivery::OtlpTraces, "/v1/traces"),
            metrics: signal(config.metrics, Delivery::OtlpMetrics, "/v1/metrics"),
            logs: signal(config.logs, Delivery::OtlpLogs, "/v1/logs"),
            config: config.clone(),
            telemetry,
        }))
    }

    pub fn forwards_traces(&self) -> bool {
        self.traces.is_some()
    }

    pub fn forwards_metrics(&self) -> bool {
        self.metrics.is_some()
    }

    pub fn forwards_logs(&self) -> bool {
        self.logs.is_some()
    }

    /// Starts a sender per signal and the batch timer.
    pub fn start(
        self: &Arc<Self>,
        shutdown: Shutdown,
    ) -> Result<Vec<tokio::task::JoinHandle<()>>, DeliveryError> {
        let cfg = &self.config;
        let mut tasks = Vec::new();
        let (flushed, _) = tokio::sync::watch::channel(false);
        for forwarder in [&self.traces, &self.metrics, &self.logs]
            .into_iter()
            .flatten()
        {
            let target = target(cfg, forwarder.path)?;
            let retry = RetrySettings {
                min_backoff: cfg.min_backoff.get(),
                max_backoff: cfg.max_backoff.get(),
                max_age: cfg.max_retry_time.get(),
                drain: cfg.timeout.get().min(Duration::from_secs(10)),
            };
            tasks.push(tokio::spawn(delivery::run_sender(
                forwarder.queue.clone(),
                target,
                retry,
                self.telemetry.clone(),
                forwarder.delivery,
                shutdown.clone(),
                // The sender drains after the timer's last flush.
                Some(flushed.subscribe()),
            )));
            let url = format!("{}{}", cfg.endpoint.trim_end_matches('/'), forwarder.path);
            tracing::info!(url = %url, "forwarding {} over OTLP/HTTP", forwarder.delivery.signal());
        }
        let this = self.clone();
        tasks.push(tokio::spawn(async move {
            let age = this.config.batch_timeout.get();
            shutdown
                .every((age / 4).max(Duration::from_millis(10)), || {
                    this.flush_older_than(age);
                    std::future::ready(())
                })
                .await;
            // Shutting down: what is being batched goes to the queues.
            this.flush_older_than(Duration::ZERO);
            let _ = flushed.send(true);
        }));
        Ok(tasks)
    }

    fn flush_older_than(&self, age: Duration) {
        for forwarder in [&self.traces, &self.metrics, &self.logs]
            .into_iter()
            .flatten()
        {
            forwarder.flush_older_than(age);
        }
    }
}

impl TracesConsumer for OtlpForwarder {
    fn consume_traces(&self, batch: &TracesBatch) -> ConsumeResult {
        if let Some(f) = &self.traces {
            f.add(batch.wire(), batch.item_count());
        }
        Ok(Consumed::all())
    }
}

impl MetricsConsumer for OtlpForwarder {
    fn consume_metrics(&self, batch: &MetricsBatch) -> ConsumeResult {
        if let Some(f) = &self.metrics {
            f.add(batch.wire(), batch.item_count());
        }
        Ok(Consumed::all())
    }
}

impl LogsConsumer for OtlpForwarder {
    fn consume_logs(&self, batch: &LogsBatch) -> ConsumeResult {
        if let Some(f) = &self.logs {
            let items = batch.item_count();
            if items > 0 {
                f.add(batch.wire(), items);
            }
        }
        Ok(Consumed::all())
    }
}

/// The endpoint of one signal (`path`: `/v1/traces`, …), with the
/// protocol's headers and the user's; `streamgate validate` builds it
/// too, so it refuses what the start would.
pub fn target(cfg: &OtlpExporterConfig, path: &str) -> Result<HttpTarget, DeliveryError> {
    let mut headers = vec![
        (
            "content-type".to_string(),
            "application/x-protobuf".to_string(),
        ),
        (
            "user-agent".to_string(),
            format!("streamgate/{}", env!("CARGO_PKG_VERSION")),
        ),
    ];
    if cfg.compression == Compression::Gzip {
        headers.push(("content-encoding".into(), "gzip".into()));
    }
    headers.extend(cfg.headers.iter().map(|(k, v)| (k.clone(), v.clone())));
    let url = format!("{}{}", cfg.endpoint.trim_end_matches('/'), path);
    HttpTarget::new(TargetSettings {
        key: "exporters.otlp",
        url: &url,
        timeout: cfg.timeout.get(),
        headers,
        bearer_token: &cfg.bearer_token,
        basic_auth_username: &cfg.basic_auth_username,
        basic_auth_password: &cfg.basic_auth_password,
        tls: &cfg.tls,
        gzip: cfg.compression == Compression::Gzip,
        retryable: otlp_retryable,
    })
}
