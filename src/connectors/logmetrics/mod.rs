//! The log-metrics connector: every log record counted by service and
//! severity, so error-rate alerts need no log backend.
//!
//! Emits, after each logs request, the series that changed:
//! - `log.records` (→ `log_records_total{service_name, severity}`), where
//!   `severity` is the record's severity text, or when that is empty the
//!   range name of its severity number (`TRACE`, `DEBUG`, `INFO`, `WARN`,
//!   `ERROR`, `FATAL`, `UNSPECIFIED`);
//! - `log.error.records` (→ `log_error_records_total{service_name}`):
//!   records at ERROR or FATAL, by number (17–24) or, when the number is
//!   unset, by a text such as `error`, `err`, `fatal`, `critical`,
//!   `alert`, `emergency`, `panic`.

pub mod config;

use crate::model::MetricsBatch;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::LogsRequest;
use crate::model::otlp::common::InstrumentationScope;
use crate::model::otlp::metrics::{
    AggregationTemporality, Metric, NumberDataPoint, Sum, metric::Data, number_data_point,
};
use crate::pipeline::{ConsumeResult, Consumed, LogsConsumer, MetricsConsumer};
use crate::telemetry::Telemetry;

use super::output::{Output, find_str, now_ns, overflow_attribute, string_attribute};
use super::table::{Table, Upserted, canonical_resource};
pub use config::LogMetricsConfig;

/// The range name of an OTel severity number.
pub fn severity_range(number: i32) -> &'static str {
    match number {
        1..=4 => "TRACE",
        5..=8 => "DEBUG",
        9..=12 => "INFO",
        13..=16 => "WARN",
        17..=20 => "ERROR",
        21..=24 => "FATAL",
        _ => "UNSPECIFIED",
    }
}

/// Whether a record is error level.
pub fn is_error(number: i32, text: &str) -> bool {
    if number != 0 {
        return (17..=24).contains(&number);
    }
    let t = text.trim().to_ascii_lowercase();
    [
        "error",
        "err",
        "fatal",
        "critical",
        "crit",
        "alert",
        "emergency",
        "emerg",
        "panic",
        "severe",
    ]
    .iter()
    .any(|e| t.starts_with(e))
}

/// Counts per series.
#[derive(Default, serde::Serialize, serde::Deserialize)]
struct Counts {
    records: u64,
}

/// The connector. Shared as `Arc<LogMetrics>`.
pub struct LogMetrics {
    config: LogMetricsConfig,
    scope: InstrumentationScope,
    records: Mutex<Table<Counts>>,
    errors: Mutex<Table<Counts>>,
    downstream: Arc<dyn MetricsConsumer>,
    telemetry: Arc<Telemetry>,
}

const RECORDS: &str = "log.records";
const ERRORS: &str = "log.error.records";

impl LogMetrics {
    pub fn new(
        config: LogMetricsConfig,
        downstream: Arc<dyn MetricsConsumer>,
        telemetry: Arc<Telemetry>,
    ) -> Self {
        Self {
            records: Mutex::new(Table::new(config.cardinality_limit)),
            errors: Mutex::new(Table::new(config.cardinality_limit)),
            scope: InstrumentationScope {
                name: "streamgate.logmetrics".into(),
                version: env!("CARGO_PKG_VERSION").into(),
                ..Default::default()
            },
            config,
            downstream,
            telemetry,
        }
    }

    fn counter(name: &str, description: &str) -> Metric {
        Metric {
            name: name.into(),
            unit: "{record}".into(),
            description: description.into(),
            data: Some(Data::Sum(Sum {
                data_points: Vec::new(),
                aggregation_temporality: AggregationTemporality::Cumulative as i32,
                is_monotonic: true,
            })),
            ..Default::default()
        }
    }

    /// Drops series with no record within `series_ttl`. Returns how many.
    pub fn expire(&self, now_ns: u64) -> usize {
        let cutoff = now_ns.saturating_sub(self.config.series_ttl.get().as_nanos() as u64);
        self.records.lock().expire(cutoff) + self.errors.lock().expire(cutoff)
    }
}

fn point(
    attributes: Vec<crate::model::otlp::common::KeyValue>,
    value: u64,
    start: u64,
    now: u64,
) -> NumberDataPoint {
    NumberDataPoint {
        attributes,
        start_time_unix_nano: start,
        time_unix_nano: now,
        value: Some(number_data_point::Value::AsInt(value as i64)),
        ..Default::default()
    }
}

fn push(metrics: &mut [Metric], index: usize, p: NumberDataPoint) {
    if let Some(Data::Sum(sum)) = metrics.get_mut(index).and_then(|m| m.data.as_mut()) {
        sum.data_points.push(p);
    }
}

impl LogsConsumer for LogMetrics {
    fn consume_logs(&self, request: &LogsRequest) -> ConsumeResult {
        let mut overflowed = 0u64;
        let mut records = self.records.lock();
        let mut errors = self.errors.lock();
        let now = records.tick(now_ns());
        for rl in &request.resource_logs {
            let (resource, rhash) = canonical_resource(
                rl.resource
                    .as_ref()
                    .map(|r| r.attributes.clone())
                    .unwrap_or_default(),
            );
            let resource = resource.as_slice();
            let service = find_str(resource, "service.name");
            for sl in &rl.scope_logs {
                for record in &sl.log_records {
                    let severity = if record.severity_text.is_empty() {
                        severity_range(record.severity_number)
                    } else {
                        record.severity_text.as_str()
                    };
                    let outcome = records.upsert(
                        resource,
                        rhash,
                        &[service, Some(severity)],
                        now,
                        Counts::default,
                        |c| c.records += 1,
                    );
                    overflowed += u64::from(outcome == Upserted::Overflow);
                    if is_error(record.severity_number, &record.severity_text) {
                        let outcome =
                            errors.upsert(resource, rhash, &[service], now, Counts::default, |c| {
                                c.records += 1
                            });
                        overflowed += u64::from(outcome == Upserted::Overflow);
                    }
                }
            }
        }
        let mut output = Output::new(
            self.scope.clone(),
            vec![
                Self::counter(RECORDS, "Log records received, by service and severity."),
                Self::counter(ERRORS, "Log records at ERROR or FATAL level, by service."),
            ],
        );
        records.drain_dirty(|resource, entry| {
            let attributes = match entry.resource {
                None => vec![overflow_attribute()],
                Some(_) => ["service.name", "severity"]
                    .iter()
                    .zip(&entry.dims)
                    .filter_map(|(k, v)| v.as_deref().map(|v| string_attribute(k, v)))
                    .collect(),
            };
            let metrics = output.metrics(entry.resource, resource);
            push(
                metrics,
                0,
                point(attributes, entry.value.records, entry.start_ns, now),
            );
        });
        errors.drain_dirty(|resource, entry| {
            let attributes = match entry.resource {
                None => vec![overflow_attribute()],
                Some(_) => entry
                    .dims
                    .first()
                    .and_then(|v| v.as_deref())
                    .map(|v| vec![string_attribute("service.name", v)])
                    .unwrap_or_default(),
            };
            let metrics = output.metrics(entry.resource, resource);
            push(
                metrics,
                1,
                point(attributes, entry.value.records, entry.start_ns, now),
            );
        });
        drop(records);
        drop(errors);
        if overflowed > 0 {
            self.telemetry
                .record_connector_overflow("logmetrics", overflowed);
        }
        if !output.is_empty() {
            // Remove the metric of the pair that got no points in a resource.
            let mut request = output.finish();
            for rm in &mut request.resource_metrics {
                for sm in &mut rm.scope_metrics {
                    sm.metrics
                        .retain(|m| crate::model::otlp::metric_point_count(m) > 0);
                }
            }
            if let Ok(outcome) = self
                .downstream
                .consume_metrics(&MetricsBatch::from_request(request))
                && outcome.rejected > 0
            {
                tracing::warn!(
                    rejected = outcome.rejected,
                    "log metrics were rejected downstream: {}",
                    outcome.message
                );
            }
        }
        Ok(Consumed::all())
    }
}

#[cfg(test)]
mod tests;

/// Durable state: the record and error-record counts of every series, so
/// `log_records_total` continues across a restart instead of resetting.
impl crate::pipeline::durable::Durable for LogMetrics {
    fn state_name(&self) -> &'static str {
        "logmetrics"
    }

    fn state_version(&self) -> u32 {
        1
    }

    fn snapshot(&self, out: &mut Vec<u8>) -> Result<(), crate::pipeline::durable::DurableError> {
        self.records.lock().save(out)?;
        self.errors.lock().save(out)
    }

    fn restore(
        &self,
        snapshot: &[u8],
    ) -> Result<crate::pipeline::durable::Restored, crate::pipeline::durable::DurableError> {
        use crate::pipeline::durable::{DurableError, Restored};
        let (rest, a, a_discarded) = self.records.lock().load(snapshot, |_, _| true)?;
        let (rest, b, b_discarded) = self.errors.lock().load(rest, |_, _| true)?;
        if !rest.is_empty() {
            return Err(DurableError::decode("bytes after the last series"));
        }
        Ok(Restored {
            items: a + b,
            discarded: a_discarded + b_discarded,
        })
    }
}
