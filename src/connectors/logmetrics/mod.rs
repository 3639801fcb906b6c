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
mod tally;

use crate::model::MetricsBatch;
use std::sync::Arc;

use parking_lot::Mutex;

use crate::model::LogsBatch;
use crate::model::otlp::common::InstrumentationScope;
use crate::model::otlp::metrics::{
    AggregationTemporality, Metric, NumberDataPoint, Sum, metric::Data, number_data_point,
};
use crate::pipeline::{ConsumeResult, Consumed, LogsConsumer, MetricsConsumer};
use crate::telemetry::Telemetry;

use super::output::{Output, find_str, now_ns, overflow_attribute, string_attribute};
use super::table::{
    OVERFLOW_SHARD, SHARDS, Table, Upserted, canonical_resource, insert_entries, read_entries,
    save_tables, shard_of,
};
pub use config::LogMetricsConfig;
use tally::SeverityTally;

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

/// The record and error-record tables of one shard, on cache lines of
/// their own (the lock word is written by every worker that takes it).
#[repr(align(64))]
struct Shard(Mutex<Tables>);

struct Tables {
    records: Table<Counts>,
    errors: Table<Counts>,
}

/// The connector. Shared as `Arc<LogMetrics>`. Its series are split into
/// [`SHARDS`] pairs of tables by resource, each pair behind its own lock,
/// so workers counting different services' logs do not take turns on one
/// lock (see `connectors/table.rs` for how the limit and the overflow
/// series stay single).
pub struct LogMetrics {
    config: LogMetricsConfig,
    scope: InstrumentationScope,
    shards: Box<[Shard]>,
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
        let limit = config.cardinality_limit;
        let shards = Table::shards(limit, SHARDS)
            .into_iter()
            .zip(Table::shards(limit, SHARDS))
            .map(|(records, errors)| Shard(Mutex::new(Tables { records, errors })))
            .collect();
        Self {
            shards,
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
        self.shards
            .iter()
            .map(|s| {
                let mut t = s.0.lock();
                t.records.expire(cutoff) + t.errors.expire(cutoff)
            })
            .sum()
    }

    /// Moves the changed series of one shard into `output`, stamped with
    /// the shard's clock.
    fn drain_into(tables: &mut Tables, output: &mut Output) {
        let now = tables.records.tick(now_ns());
        drain_table(
            &mut tables.records,
            output,
            0,
            &["service.name", "severity"],
            now,
        );
        drain_table(&mut tables.errors, output, 1, &["service.name"], now);
    }
}

/// Moves the changed series of one table into `output` as points of the
/// metric at `index`, their dimensions named by `names`. A table's
/// resource slots are its own: the output starts a new table after it.
fn drain_table(
    table: &mut Table<Counts>,
    output: &mut Output,
    index: usize,
    names: &[&str],
    now: u64,
) {
    table.mark_all_changed_every(now, super::table::REFRESH_EVERY);
    table.drain_dirty(|resource, entry| {
        let attributes = match entry.resource {
            None => vec![overflow_attribute()],
            Some(_) => names
                .iter()
                .zip(&entry.dims)
                .filter_map(|(k, v)| v.as_deref().map(|v| string_attribute(k, v)))
                .collect(),
        };
        let metrics = output.metrics(entry.resource, resource);
        push(
            metrics,
            index,
            point(attributes, entry.value.records, entry.start_ns, now),
        );
    });
    output.next_table();
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
    /// Reads the request in place. Each resource's records are counted by
    /// severity first, outside any lock; then its series are updated under
    /// the lock of its shard, once per severity (one shard at a time).
    /// Records past the limit in a shard without the overflow series are
    /// added to it once that shard is let go. Then the changed series of
    /// every shard the request touched are taken for output, each shard
    /// once.
    fn consume_logs(&self, batch: &LogsBatch) -> ConsumeResult {
        let mut overflowed = 0u64;
        let mut output = self.output();
        // Refused records and error records, for the overflow series.
        let (mut refused, mut refused_errors) = (0u64, 0u64);
        let mut touched = [false; SHARDS];
        let mut tally = SeverityTally::default();
        for rl in batch.view().resource_logs.iter() {
            tally.clear();
            for sl in rl.scope_logs.iter() {
                for record in sl.log_records.iter() {
                    tally.add((record.severity_number, record.severity_text));
                }
            }
            if tally.is_empty() {
                continue;
            }
            let (resource, rhash) = canonical_resource(
                rl.resource
                    .map(|r| r.attributes.to_owned_vec())
                    .unwrap_or_default(),
            );
            let resource = resource.as_slice();
            let service = find_str(resource, "service.name");
            let shard = shard_of(rhash);
            touched[shard] = true;
            let mut tables = self.shards[shard].0.lock();
            let now = tables.records.tick(now_ns());
            for ((number, text), n) in tally.counts() {
                let severity = if text.is_empty() {
                    severity_range(number)
                } else {
                    text
                };
                match tables.records.upsert(
                    resource,
                    rhash,
                    &[service, Some(severity)],
                    now,
                    Counts::default,
                    |c| c.records += n,
                ) {
                    Upserted::Overflow => overflowed += n,
                    Upserted::Refused => refused += n,
                    Upserted::Existing | Upserted::New => {}
                }
                if is_error(number, text) {
                    let outcome = tables.errors.upsert(
                        resource,
                        rhash,
                        &[service],
                        now,
                        Counts::default,
                        |c| c.records += n,
                    );
                    match outcome {
                        Upserted::Overflow => overflowed += n,
                        Upserted::Refused => refused_errors += n,
                        Upserted::Existing | Upserted::New => {}
                    }
                }
            }
        }
        if refused + refused_errors > 0 {
            touched[OVERFLOW_SHARD] = true;
            let mut guard = self.shards[OVERFLOW_SHARD].0.lock();
            let tables = &mut *guard;
            let now = tables.records.tick(now_ns());
            for (table, n) in [
                (&mut tables.records, refused),
                (&mut tables.errors, refused_errors),
            ] {
                if n > 0 {
                    table.upsert_overflow(now, Counts::default, |c| c.records += n);
                }
            }
            overflowed += refused + refused_errors;
        }
        for (shard, _) in self.shards.iter().zip(touched).filter(|(_, t)| *t) {
            Self::drain_into(&mut shard.0.lock(), &mut output);
        }
        if overflowed > 0 {
            self.telemetry
                .record_connector_overflow("logmetrics", overflowed);
        }
        self.emit(output);
        Ok(Consumed::all())
    }
}

impl LogMetrics {
    /// An empty output for the two counters.
    fn output(&self) -> Output {
        Output::new(
            self.scope.clone(),
            vec![
                Self::counter(RECORDS, "Log records received, by service and severity."),
                Self::counter(ERRORS, "Log records at ERROR or FATAL level, by service."),
            ],
        )
    }

    /// Hands every changed series on: after a restore, the restored ones
    /// (they are on `/metrics` again before any new record comes, as the
    /// span metrics' are at their first flush).
    pub fn flush(&self) {
        let mut output = self.output();
        for shard in self.shards.iter() {
            Self::drain_into(&mut shard.0.lock(), &mut output);
        }
        self.emit(output);
    }

    /// Sends `output`'s points downstream, if it has any.
    fn emit(&self, output: Output) {
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
        let shards: Vec<_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let records: Vec<&Table<Counts>> = shards.iter().map(|t| &t.records).collect();
        let errors: Vec<&Table<Counts>> = shards.iter().map(|t| &t.errors).collect();
        save_tables(&records, out)?;
        save_tables(&errors, out)
    }

    fn restore(
        &self,
        snapshot: &[u8],
    ) -> Result<crate::pipeline::durable::Restored, crate::pipeline::durable::DurableError> {
        use crate::pipeline::durable::{DurableError, Restored};
        // Both tables are read before either is filled: a snapshot that
        // fails half-way leaves nothing behind.
        let (rest, saved_records) = read_entries(snapshot, |_: &Counts, _| true)?;
        let (rest, saved_errors) = read_entries(rest, |_: &Counts, _| true)?;
        if !rest.is_empty() {
            return Err(DurableError::decode("bytes after the last series"));
        }
        let mut shards: Vec<_> = self.shards.iter().map(|s| s.0.lock()).collect();
        let mut records: Vec<&mut Table<Counts>> =
            shards.iter_mut().map(|t| &mut t.records).collect();
        let (a, a_discarded) = insert_entries(saved_records, &mut records, shard_of);
        let mut errors: Vec<&mut Table<Counts>> =
            shards.iter_mut().map(|t| &mut t.errors).collect();
        let (b, b_discarded) = insert_entries(saved_errors, &mut errors, shard_of);
        Ok(Restored {
            items: a + b,
            discarded: a_discarded + b_discarded,
        })
    }
}
