//! Counters of the push exporters (remote write, OTLP forwarding): items
//! sent, failed and dropped, retries, queue depth and the last success,
//! per exporter and signal. Shown as `streamgate_exporter_*` series only
//! for the exporters that are configured.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};

/// One push exporter's stream: which exporter, and for OTLP which signal.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Delivery {
    /// Prometheus remote write (samples).
    RemoteWrite,
    /// OTLP forwarding of spans.
    OtlpTraces,
    /// OTLP forwarding of data points.
    OtlpMetrics,
    /// OTLP forwarding of log records.
    OtlpLogs,
}

pub(crate) const DELIVERIES: usize = 4;

impl Delivery {
    pub const ALL: [Delivery; DELIVERIES] = [
        Delivery::RemoteWrite,
        Delivery::OtlpTraces,
        Delivery::OtlpMetrics,
        Delivery::OtlpLogs,
    ];

    /// The `exporter` label.
    pub fn exporter(self) -> &'static str {
        match self {
            Delivery::RemoteWrite => "remote_write",
            Delivery::OtlpTraces | Delivery::OtlpMetrics | Delivery::OtlpLogs => "otlp",
        }
    }

    /// The `signal` label.
    pub fn signal(self) -> &'static str {
        match self {
            Delivery::RemoteWrite | Delivery::OtlpMetrics => "metrics",
            Delivery::OtlpTraces => "traces",
            Delivery::OtlpLogs => "logs",
        }
    }
}

/// What became of items handed to a push exporter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DeliveryOutcome {
    /// Accepted by the endpoint.
    Sent,
    /// Refused for good (a 4xx other than 429), or still failing when
    /// too old to send or at shutdown.
    Failed,
    /// Never sent: pushed out of a full queue by newer items.
    Dropped,
}

impl DeliveryOutcome {
    pub const ALL: [DeliveryOutcome; 3] = [
        DeliveryOutcome::Sent,
        DeliveryOutcome::Failed,
        DeliveryOutcome::Dropped,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryOutcome::Sent => "sent",
            DeliveryOutcome::Failed => "failed",
            DeliveryOutcome::Dropped => "dropped",
        }
    }
}

/// The counters of one [`Delivery`].
#[derive(Debug, Default)]
pub struct DeliveryStats {
    pub(crate) enabled: AtomicBool,
    pub(crate) items: [AtomicU64; 3],
    pub(crate) requests_retried: AtomicU64,
    pub(crate) queue_items: AtomicI64,
    pub(crate) queue_bytes: AtomicI64,
    pub(crate) queue_capacity_bytes: AtomicI64,
    /// Unix milliseconds of the last accepted request (0: none yet).
    pub(crate) last_success_ms: AtomicU64,
}

impl DeliveryStats {
    /// Marks the exporter configured, with its queue's capacity.
    pub fn enable(&self, capacity_bytes: u64) {
        self.enabled.store(true, Ordering::Relaxed);
        self.queue_capacity_bytes
            .store(capacity_bytes as i64, Ordering::Relaxed);
    }

    pub fn is_enabled(&self) -> bool {
        self.enabled.load(Ordering::Relaxed)
    }

    pub fn record(&self, outcome: DeliveryOutcome, items: u64) {
        self.items[outcome as usize].fetch_add(items, Ordering::Relaxed);
        if outcome == DeliveryOutcome::Sent {
            let now = std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0);
            self.last_success_ms.store(now, Ordering::Relaxed);
        }
    }

    pub fn items(&self, outcome: DeliveryOutcome) -> u64 {
        self.items[outcome as usize].load(Ordering::Relaxed)
    }

    pub fn record_retry(&self) {
        self.requests_retried.fetch_add(1, Ordering::Relaxed);
    }

    pub fn set_queue(&self, items: usize, bytes: usize) {
        self.queue_items.store(items as i64, Ordering::Relaxed);
        self.queue_bytes.store(bytes as i64, Ordering::Relaxed);
    }
}
