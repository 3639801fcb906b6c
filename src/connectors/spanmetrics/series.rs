//! The state of one span-metrics series: calls, the duration histogram,
//! exemplars.

use prost::encoding::{WireType, encode_key};

use crate::connectors::encode::{
    bytes_field, double_field, fixed64_field, len_prefix, message_field, packed_varint,
    packed_words, sint32_field,
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

    /// Writes the exemplar with `value` as field `field` of a point
    /// (Exemplar: time 2, as_double 3, span_id 4, trace_id 5).
    fn write(&self, out: &mut Vec<u8>, field: u32, value: f64) {
        let time = if self.time_ns == 0 { 0 } else { 9 };
        len_prefix(out, field, time + 9 + 10 + 18);
        fixed64_field(out, 2, self.time_ns);
        double_field(out, 3, value);
        bytes_field(out, 4, &self.span_id);
        bytes_field(out, 5, &self.trace_id);
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

    /// Writes this series' calls and duration points into the resource's
    /// point buffers (in shape order: calls, duration), each point with
    /// the attributes `attributes` writes as the given field.
    pub fn write_points(
        &self,
        points: &mut [Vec<u8>],
        scratch: &mut Vec<u8>,
        attributes: &dyn Fn(&mut Vec<u8>, u32),
        bounds: &[f64],
        start_ns: u64,
        now_ns: u64,
    ) {
        let [calls, duration] = points else {
            return;
        };
        // NumberDataPoint: times 2 and 3, as_int 6, exemplars 5,
        // attributes 7 (prost's order: the value oneof at its lowest tag).
        message_field(calls, 1, scratch, |p| {
            fixed64_field(p, 2, start_ns);
            fixed64_field(p, 3, now_ns);
            encode_key(6, WireType::SixtyFourBit, p);
            p.extend_from_slice(&(self.calls as i64).to_le_bytes());
            if let Some(e) = self.calls_exemplar {
                e.write(p, 5, 1.0);
            }
            attributes(p, 7);
        });
        match &self.buckets {
            Buckets::Explicit(counts) => message_field(duration, 1, scratch, |p| {
                fixed64_field(p, 2, start_ns);
                fixed64_field(p, 3, now_ns);
                fixed64_field(p, 4, self.calls);
                double_field(p, 5, self.sum);
                packed_words(p, 6, counts.iter().copied());
                packed_words(p, 7, bounds.iter().map(|b| b.to_bits()));
                let mut by_bucket = self.bucket_exemplars.clone();
                by_bucket.sort_unstable_by_key(|(bucket, _)| *bucket);
                for (_, e) in by_bucket {
                    e.write(p, 8, e.value);
                }
                attributes(p, 9);
            }),
            Buckets::Exponential(e) => message_field(duration, 1, scratch, |p| {
                attributes(p, 1);
                fixed64_field(p, 2, start_ns);
                fixed64_field(p, 3, now_ns);
                fixed64_field(p, 4, self.calls);
                double_field(p, 5, self.sum);
                sint32_field(p, 6, e.scale);
                fixed64_field(p, 7, e.zero_count);
                // Buckets: offset 1, counts 2; written even when empty.
                let mut positive = Vec::new();
                sint32_field(&mut positive, 1, e.offset);
                packed_varint(&mut positive, 2, &e.counts);
                len_prefix(p, 8, positive.len());
                p.extend_from_slice(&positive);
                if let Some(x) = self.calls_exemplar {
                    x.write(p, 11, x.value);
                }
            }),
        }
    }
}

#[cfg(test)]
mod tests {
    use prost::Message;

    use super::*;
    use crate::connectors::encode::string_attribute;
    use crate::model::otlp::common::{AnyValue, KeyValue, any_value::Value as V};
    use crate::model::otlp::metrics::{
        self as otlp, ExponentialHistogram, Histogram, Sum, exemplar, number_data_point,
    };

    fn attributes() -> Vec<KeyValue> {
        vec![KeyValue {
            key: "span.name".into(),
            value: Some(AnyValue {
                value: Some(V::StringValue("GET /items".into())),
            }),
            ..Default::default()
        }]
    }

    fn write(series: &SpanSeries, bounds: &[f64]) -> [Vec<u8>; 2] {
        let mut points = [Vec::new(), Vec::new()];
        let attributes =
            |out: &mut Vec<u8>, field: u32| string_attribute(out, field, "span.name", "GET /items");
        series.write_points(&mut points, &mut Vec::new(), &attributes, bounds, 5, 9);
        points
    }

    fn otlp_exemplar(e: Exemplar, value: f64) -> otlp::Exemplar {
        otlp::Exemplar {
            time_unix_nano: e.time_ns,
            span_id: e.span_id.to_vec(),
            trace_id: e.trace_id.to_vec(),
            value: Some(exemplar::Value::AsDouble(value)),
            ..Default::default()
        }
    }

    #[test]
    fn points_are_written_as_prost_writes_them() {
        let bounds = [0.1, 1.0];
        let kind = HistogramKind::Explicit(bounds.to_vec());
        let mut series = SpanSeries::new(&kind, bounds.len());
        let first = Exemplar::new(&[1; 16], &[2; 8], 0.5, 7);
        let second = Exemplar::new(&[3; 16], &[4; 8], 0.05, 8);
        series.record(0.5, 1, Some(first));
        series.record(0.05, 0, Some(second));
        series.record(2.0, 2, None);
        let [calls, duration] = write(&series, &bounds);
        let expected_calls = Sum {
            data_points: vec![otlp::NumberDataPoint {
                attributes: attributes(),
                start_time_unix_nano: 5,
                time_unix_nano: 9,
                value: Some(number_data_point::Value::AsInt(3)),
                exemplars: vec![otlp_exemplar(first, 1.0)],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(calls, expected_calls.encode_to_vec());
        let expected_duration = Histogram {
            data_points: vec![otlp::HistogramDataPoint {
                attributes: attributes(),
                start_time_unix_nano: 5,
                time_unix_nano: 9,
                count: 3,
                sum: Some(2.55),
                bucket_counts: vec![1, 1, 1],
                explicit_bounds: bounds.to_vec(),
                exemplars: vec![otlp_exemplar(second, 0.05), otlp_exemplar(first, 0.5)],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(duration, expected_duration.encode_to_vec());

        let kind = HistogramKind::Exponential { max_size: 160 };
        let mut series = SpanSeries::new(&kind, 0);
        series.record(0.5, 0, Some(first));
        series.record(0.25, 0, None);
        let [_, duration] = write(&series, &[]);
        let Buckets::Exponential(histogram) = &series.buckets else {
            panic!("exponential");
        };
        let expected = ExponentialHistogram {
            data_points: vec![otlp::ExponentialHistogramDataPoint {
                attributes: attributes(),
                start_time_unix_nano: 5,
                time_unix_nano: 9,
                count: 2,
                sum: Some(0.75),
                scale: histogram.scale,
                zero_count: histogram.zero_count,
                positive: Some(otlp::exponential_histogram_data_point::Buckets {
                    offset: histogram.offset,
                    bucket_counts: histogram.counts.clone(),
                }),
                exemplars: vec![otlp_exemplar(first, 0.5)],
                ..Default::default()
            }],
            ..Default::default()
        };
        assert_eq!(duration, expected.encode_to_vec());
        assert!(histogram.scale != 0 && !histogram.counts.is_empty());
    }
}
