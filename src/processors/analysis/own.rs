//! StreamGate's own resources as OTLP metrics for the analysis processor,
//! so its memory, CPU and queue get a baseline and forecasts like any
//! service's (a leak shows up as an anomaly and a time to the memory
//! limit).
//!
//! Names translate to the self-metrics on `/metrics`:
//! `streamgate.process.resident_memory` (By, gauge) →
//! `streamgate_process_resident_memory_bytes`, `streamgate.heap.allocated`
//! (By, gauge) → `streamgate_heap_allocated_bytes`,
//! `streamgate.process.cpu` (s, cumulative counter, analysed as a rate:
//! cores in use) → `streamgate_process_cpu_seconds_total`,
//! `streamgate.runtime.global_queue_depth` (gauge) →
//! `streamgate_runtime_global_queue_depth`. The resource is
//! `service.name=streamgate`.

use crate::model::MetricsRequest;
use crate::model::otlp::metrics::{
    Gauge, Metric, NumberDataPoint, ResourceMetrics, ScopeMetrics, Sum, metric::Data,
    number_data_point,
};
use crate::model::otlp::resource::Resource;
use crate::processors::output::string_kv;
use crate::telemetry::process::ProcessStats;

/// The OTel name of StreamGate's resident memory.
pub const RESIDENT_MEMORY: &str = "streamgate.process.resident_memory";
/// The OTel name of the bytes in StreamGate's live heap allocations.
pub const HEAP_ALLOCATED: &str = "streamgate.heap.allocated";
/// The OTel name of StreamGate's CPU time.
pub const CPU: &str = "streamgate.process.cpu";
/// The OTel name of the tasks waiting for a runtime worker.
pub const QUEUE: &str = "streamgate.runtime.global_queue_depth";

/// One reading of StreamGate's own resources.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct OwnReading {
    pub process: ProcessStats,
    /// Bytes in live heap allocations (where jemalloc is the allocator).
    pub heap_allocated: Option<f64>,
    /// Tasks waiting in the async runtime's global queue.
    pub queue_depth: Option<f64>,
}

impl OwnReading {
    /// Reads everything now (the queue only on a Tokio runtime).
    pub fn now() -> Self {
        Self {
            process: crate::telemetry::process::read(),
            heap_allocated: crate::telemetry::allocator::read().map(|h| h.allocated),
            queue_depth: tokio::runtime::Handle::try_current()
                .ok()
                .map(|h| h.metrics().global_queue_depth() as f64),
        }
    }
}

/// `own` at `now_ns` as a request (empty when nothing could be read).
pub fn request(own: &OwnReading, start_ns: u64, now_ns: u64) -> MetricsRequest {
    let point = |v: f64, start: u64| NumberDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: now_ns,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let gauge = |name: &str, unit: &str, v: f64| Metric {
        name: name.into(),
        unit: unit.into(),
        data: Some(Data::Gauge(Gauge {
            data_points: vec![point(v, 0)],
        })),
        ..Default::default()
    };
    let mut metrics = Vec::new();
    if let Some(v) = own.process.resident_bytes {
        metrics.push(gauge(RESIDENT_MEMORY, "By", v));
    }
    if let Some(v) = own.heap_allocated {
        metrics.push(gauge(HEAP_ALLOCATED, "By", v));
    }
    if let Some(v) = own.queue_depth {
        metrics.push(gauge(QUEUE, "", v));
    }
    if let Some(v) = own.process.cpu_seconds {
        metrics.push(Metric {
            name: CPU.into(),
            unit: "s".into(),
            data: Some(Data::Sum(Sum {
                data_points: vec![point(v, start_ns)],
                aggregation_temporality: 2,
                is_monotonic: true,
            })),
            ..Default::default()
        });
    }
    if metrics.is_empty() {
        return MetricsRequest::default();
    }
    MetricsRequest {
        resource_metrics: vec![ResourceMetrics {
            resource: Some(Resource {
                attributes: vec![string_kv("service.name", "streamgate")],
                ..Default::default()
            }),
            scope_metrics: vec![ScopeMetrics {
                metrics,
                ..Default::default()
            }],
            ..Default::default()
        }],
    }
}
