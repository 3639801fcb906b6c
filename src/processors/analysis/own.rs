//! StreamGate's own resources as OTLP metrics for the analysis processor,
//! so its memory and CPU get a baseline and forecasts like any service's
//! (a leak shows up as an anomaly and a time to threshold).
//!
//! Names translate to the self-metrics on `/metrics`:
//! `streamgate.process.resident_memory` (By, gauge) →
//! `streamgate_process_resident_memory_bytes`, `streamgate.process.cpu`
//! (s, cumulative counter, analysed as a rate: cores in use) →
//! `streamgate_process_cpu_seconds_total`. The resource is
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
/// The OTel name of StreamGate's CPU time.
pub const CPU: &str = "streamgate.process.cpu";

/// `stats` at `now_ns` as a request (empty when nothing could be read).
pub fn request(stats: &ProcessStats, start_ns: u64, now_ns: u64) -> MetricsRequest {
    let point = |v: f64, start: u64| NumberDataPoint {
        start_time_unix_nano: start,
        time_unix_nano: now_ns,
        value: Some(number_data_point::Value::AsDouble(v)),
        ..Default::default()
    };
    let mut metrics = Vec::new();
    if let Some(v) = stats.resident_bytes {
        metrics.push(Metric {
            name: RESIDENT_MEMORY.into(),
            unit: "By".into(),
            data: Some(Data::Gauge(Gauge {
                data_points: vec![point(v, 0)],
            })),
            ..Default::default()
        });
    }
    if let Some(v) = stats.cpu_seconds {
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
