//! The state of one span-metrics series: calls, the duration histogram,
//! exemplars.

use crate::model::otlp::common::KeyValue;
use crate::model::otlp::metrics::{
    ExponentialHistogramDataPoint, HistogramDataPoint, Metric, NumberDataPoint,
    exponential_histogram_data_point, metric::Data, number_data_point,
};

use super::HistogramKind;
use crate::connectors::exponential::ExpoHistogram;

/// A recent span, kept as an exemplar.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct Exemplar {
    trace_id: [u8; 16],
    span_id: [u8; 8],
    value: f64,
    time_ns: u64,
}

impl Exemplar {
    pub fn new(trace_id: &[u8], span_id: &[u8], value: f64, time_ns: u64) -> Self {
        let mut t = [0u8; 16];
        let mut s = [0u8; 8];
        t.copy_from_slice(&trace_id[..16]);
        s.copy_from_slice(&span_id[..8]);
        Self {
            trace_id: t,
            span_id: s,
            value,
            time_ns,
        }
    }

    fn to_otlp(self, value: f64) -> crate::model::otlp::metrics::Exemplar {
        crate::model::otlp::metrics::Exemplar {
            time_unix_nano: self.time_ns,
            span_id: self.span_id.to_vec(),
            trace_id: self.trace_id.to_vec(),
            value: Some(crate::model::otlp::metrics::exemplar::Value::AsDouble(
                value,
            )),
            ..Default::default()
        }
    }
}

/// The duration buckets.
#[derive(serde::Serialize, serde::Deserialize)]
pub enum Buckets {
    /// Per-bucket counts, one more than the bounds.
    Explicit(Vec<u64>),
    Exponential(ExpoHistogram),
}

#[derive(serde::Serialize, serde::Deserialize)]
pub struct SpanSeries {
    pub calls: u64,
    pub sum: f64,
    pub buckets: Buckets,
    pub calls_exemplar: Option<Exemplar>,
    /// The last exemplar of each explicit bucket that has one, by bucket
    /// index: spans of a series fall in few buckets, so this stays a few
    /// entries instead of one slot per bucket.
    pub bucket_exemplars: Vec<(usize, Exemplar)>,
    /// Which exemplars were taken since the last emission: bit `b` for
    /// the bucket `b` (below 63), bit 63 for the calls counter. Each keeps
    /// the first span of an emission interval; later spans then leave the
    /// exemplars alone, so most spans write nothing beyond the counts.
    #[serde(skip)]
    sampled: u64,
}

/// The bit of [`SpanSeries::sampled`] for the calls counter's exemplar.
const CALLS_SAMPLED: u64 = 1 << 63;

/// The bit of [`SpanSeries::sampled`] for bucket `slot`'s exemplar; none
/// past the 63rd bucket (those take every span's, as before).
fn bucket_bit(slot: usize) -> u64 {
    if slot < 63 { 1 << slot } else { 0 }
}

impl SpanSeries {
    pub fn new(histogram: &HistogramKind, bounds: usize) -> Self {
        let buckets = match histogram {
            HistogramKind::Explicit(_) => Buckets::Explicit(vec![0; bounds + 1]),
            HistogramKind::Exponential { max_size } => {
                Buckets::Exponential(ExpoHistogram::new(*max_size))
            }
        };
        Self {
            calls: 0,
            sum: 0.0,
            buckets,
            calls_exemplar: None,
            bucket_exemplars: Vec::new(),
            sampled: 0,
        }
    }

    /// Records a span of `seconds`, which falls in explicit bucket `slot`
    /// (see [`crate::connectors::explicit::bucket_of`]; ignored for
    /// exponential buckets), with its exemplar.
    pub fn record(&mut self, seconds: f64, slot: usize, exemplar: Option<Exemplar>) {
        self.calls += 1;
        self.sum += seconds;
        match &mut self.buckets {
            Buckets::Explicit(counts) => {
                if let Some(count) = counts.get_mut(slot) {
                    *count += 1;
                }
                let bit = bucket_bit(slot);
                if let Some(e) = exemplar
                    && self.sampled & bit == 0
                {
                    self.sampled |= bit;
                    match self.bucket_exemplars.iter_mut().find(|(b, _)| *b == slot) {
                        Some((_, cell)) => *cell = e,
                        None => self.bucket_exemplars.push((slot, e)),
                    }
                }
            }
            Buckets::Exponential(h) => h.record(seconds),
        }
        if exemplar.is_some() && self.sampled & CALLS_SAMPLED == 0 {
            self.sampled |= CALLS_SAMPLED;
            self.calls_exemplar = exemplar;
        }
    }

    /// Reads what [`SpanSeries::record`] writes for a span in `slot`
    /// beyond the series itself (its bucket count), so that a pass over a
    /// request's spans brings it into cache ahead of the updates.
    #[inline]
    pub fn warm(&self, slot: usize) -> u64 {
        match &self.buckets {
            Buckets::Explicit(counts) => counts.get(slot).copied().unwrap_or(0),
            Buckets::Exponential(_) => 0,
        }
    }

    /// Starts a new emission interval: the next span of each bucket
    /// (and of the calls counter) becomes its exemplar.
    pub fn emitted(&mut self) {
        self.sampled = 0;
    }

    /// Appends this series' calls and duration points to the resource's
    /// metrics (in template order: calls, duration).
    pub fn write_points(
        &self,
        metrics: &mut [Metric],
        attributes: Vec<KeyValue>,
        bounds: &[f64],
        start_ns: u64,
        now_ns: u64,
    ) {
        if let Some(Data::Sum(sum)) = metrics.get_mut(0).and_then(|m| m.data.as_mut()) {
            sum.data_points.push(NumberDataPoint {
                attributes: attributes.clone(),
                start_time_unix_nano: start_ns,
                time_unix_nano: now_ns,
                value: Some(number_data_point::Value::AsInt(self.calls as i64)),
                exemplars: self
                    .calls_exemplar
                    .map(|e| e.to_otlp(1.0))
                    .into_iter()
                    .collect(),
                ..Default::default()
            });
        }
        match (
            metrics.get_mut(1).and_then(|m| m.data.as_mut()),
            &self.buckets,
        ) {
            (Some(Data::Histogram(h)), Buckets::Explicit(counts)) => {
                h.data_points.push(HistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start_ns,
                    time_unix_nano: now_ns,
                    count: self.calls,
                    sum: Some(self.sum),
                    bucket_counts: counts.clone(),
                    explicit_bounds: bounds.to_vec(),
                    exemplars: {
                        let mut by_bucket = self.bucket_exemplars.clone();
                        by_bucket.sort_unstable_by_key(|(bucket, _)| *bucket);
                        by_bucket.iter().map(|(_, e)| e.to_otlp(e.value)).collect()
                    },
                    ..Default::default()
                });
            }
            (Some(Data::ExponentialHistogram(h)), Buckets::Exponential(e)) => {
                h.data_points.push(ExponentialHistogramDataPoint {
                    attributes,
                    start_time_unix_nano: start_ns,
                    time_unix_nano: now_ns,
                    count: self.calls,
                    sum: Some(self.sum),
                    scale: e.scale,
                    zero_count: e.zero_count,
                    positive: Some(exponential_histogram_data_point::Buckets {
                        offset: e.offset,
                        bucket_counts: e.counts.clone(),
                    }),
                    exemplars: self
                        .calls_exemplar
                        .map(|x| x.to_otlp(x.value))
                        .into_iter()
                        .collect(),
                    ..Default::default()
                });
            }
            _ => {}
        }
    }
}
