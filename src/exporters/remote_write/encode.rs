//! Turning the families `/metrics` serves into remote-write 1.0 requests:
//! a `prometheus.WriteRequest` protobuf (one `TimeSeries` per sample, its
//! labels sorted by name with `__name__` among them, and optionally a
//! `MetricMetadata` per family), compressed with snappy's block format.
//!
//! The protobuf is written by hand straight from the store's label
//! blocks, so a collection allocates per request, not per series.

use std::ops::Range;
use std::time::Instant;

use bytes::Bytes;

use crate::exporters::delivery::Batch;
use crate::exporters::prometheus::render::{Exposition, Format};
use crate::exporters::prometheus::store::LabelText;
use crate::exporters::prometheus::store::value::StoredExemplar;

/// Protobuf wire types.
const LEN: u8 = 2;
const FIXED64: u8 = 1;
const VARINT: u8 = 0;

fn tag(field: u8, wire: u8) -> u8 {
    (field << 3) | wire
}

fn put_varint(mut v: u64, out: &mut Vec<u8>) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn varint_len(v: u64) -> usize {
    (64 - (v | 1).leading_zeros() as usize).div_ceil(7)
}

/// A length-delimited field's full size: tag + length + bytes.
fn field_len(len: usize) -> usize {
    1 + varint_len(len as u64) + len
}

fn put_bytes_field(field: u8, bytes: &[u8], out: &mut Vec<u8>) {
    out.push(tag(field, LEN));
    put_varint(bytes.len() as u64, out);
    out.extend_from_slice(bytes);
}

/// `prometheus.MetricMetadata.MetricType`.
fn metric_type(kind: &str) -> u64 {
    match kind {
        "counter" => 1,
        "gauge" => 2,
        "histogram" => 3,
        "summary" => 5,
        _ => 0,
    }
}

/// Collects samples into compressed requests of at most `max_samples`
/// samples each, handing each full one to `ready`.
pub struct RequestEncoder<'a> {
    timestamp_ms: i64,
    max_samples: usize,
    send_metadata: bool,
    /// Labels every series gets unless it has its own of that name,
    /// sorted by name.
    defaults: &'a [(String, String)],
    /// The request being filled (WriteRequest fields, unframed).
    request: Vec<u8>,
    samples: usize,
    /// The label block of the series being written, as the store holds
    /// it; samples of one series (histogram buckets, `_sum`, `_count`)
    /// come one after another, so it is parsed once per series.
    block: String,
    /// Scratch for the next sample's block, compared with `block`.
    next_block: String,
    /// Unescaped names and values: the series' labels and the defaults
    /// first (`base_len` bytes), then the sample's `__name__` and extra.
    text: String,
    base_len: usize,
    /// The series' labels with the defaults, sorted by name, deduplicated
    /// (ranges into `text`).
    base: Vec<(Range<usize>, Range<usize>)>,
    /// The sample's labels: `base` with `__name__` and the extra label.
    labels: Vec<(Range<usize>, Range<usize>)>,
    series: Vec<u8>,
    /// A hash of every sample's encoded labels, in the order written
    /// (for the staleness markers of the next collection).
    written: Vec<u64>,
    ready: &'a mut dyn FnMut(Batch),
    compressor: snap::raw::Encoder,
    /// Samples encoded so far.
    pub total_samples: u64,
}

impl<'a> RequestEncoder<'a> {
    pub fn new(
        timestamp_ms: i64,
        max_samples: usize,
        send_metadata: bool,
        defaults: &'a [(String, String)],
        ready: &'a mut dyn FnMut(Batch),
    ) -> Self {
        Self {
            timestamp_ms,
            max_samples: max_samples.max(1),
            send_metadata,
            defaults,
            request: Vec::with_capacity(max_samples * 96),
            samples: 0,
            block: String::new(),
            next_block: String::new(),
            text: String::new(),
            base_len: 0,
            base: Vec::new(),
            labels: Vec::new(),
            series: Vec::new(),
            written: Vec::new(),
            ready,
            compressor: snap::raw::Encoder::new(),
            total_samples: 0,
        }
    }

    /// Hands over the request being filled, if it holds any sample.
    pub fn flush(&mut self) {
        if self.samples == 0 {
            return;
        }
        let body = self
            .compressor
            .compress_vec(&self.request)
            .unwrap_or_default();
        let batch = Batch {
            body: Bytes::from(body),
            items: self.samples as u64,
            created: Instant::now(),
        };
        self.request.clear();
        self.samples = 0;
        (self.ready)(batch);
    }

    /// Appends `name` and `value` to `text`; their ranges.
    fn push_text(&mut self, name: &str, value: &str) -> (Range<usize>, Range<usize>) {
        let n0 = self.text.len();
        self.text.push_str(name);
        let v0 = self.text.len();
        self.text.push_str(value);
        (n0..v0, v0..self.text.len())
    }

    /// Parses `block` (pre-escaped: `a="x",b="y\"z"`) into `base`, adds
    /// the defaults the series lacks, and sorts by name.
    fn parse_series(&mut self) {
        self.text.clear();
        self.base.clear();
        let block = std::mem::take(&mut self.block);
        let mut rest = block.as_str();
        while !rest.is_empty() {
            let Some(eq) = rest.find("=\"") else { break };
            let n0 = self.text.len();
            self.text.push_str(&rest[..eq]);
            let v0 = self.text.len();
            let mut chars = rest[eq + 2..].char_indices();
            let mut end = rest.len();
            while let Some((i, c)) = chars.next() {
                match c {
                    '\\' => match chars.next() {
                        Some((_, 'n')) => self.text.push('\n'),
                        Some((_, other)) => self.text.push(other),
                        None => {}
                    },
                    '"' => {
                        end = eq + 2 + i + 1;
                        break;
                    }
                    c => self.text.push(c),
                }
            }
            self.base.push((n0..v0, v0..self.text.len()));
            rest = rest[end.min(rest.len())..].trim_start_matches(',');
        }
        self.block = block;
        for (k, v) in self.defaults {
            let label = self.push_text(k, v);
            self.base.push(label);
        }
        let text = &self.text;
        let name = |r: &Range<usize>| &text.as_bytes()[r.clone()];
        // Stable: the series' own label comes first and wins over a
        // default of the same name.
        self.base.sort_by(|a, b| name(&a.0).cmp(name(&b.0)));
        self.base.dedup_by(|b, a| name(&a.0) == name(&b.0));
        self.base_len = self.text.len();
    }

    /// Writes one sample of the current series with `__name__` and the
    /// extra label (already at the end of `text`, ranges given) placed
    /// among the sorted labels.
    fn encode_series(&mut self, extras: &[(Range<usize>, Range<usize>)], value: f64) {
        let text = &self.text;
        let name = |r: &Range<usize>| &text.as_bytes()[r.clone()];
        self.labels.clear();
        self.labels.extend_from_slice(&self.base);
        for extra in extras {
            match self
                .labels
                .binary_search_by(|probe| name(&probe.0).cmp(name(&extra.0)))
            {
                // A series label of the same name as `le` or `quantile`
                // cannot be stored; the sample's own one wins.
                Ok(at) => self.labels[at] = extra.clone(),
                Err(at) => self.labels.insert(at, extra.clone()),
            }
        }
        let series = &mut self.series;
        series.clear();
        for (n, v) in &self.labels {
            if v.is_empty() {
                continue;
            }
            let (n, v) = (name(n), name(v));
            let label_len = field_len(n.len()) + field_len(v.len());
            series.push(tag(1, LEN));
            put_varint(label_len as u64, series);
            put_bytes_field(1, n, series);
            put_bytes_field(2, v, series);
        }
        self.written.push(labels_hash(&self.series));
        self.push_series(wire_value(value).to_bits());
    }

    /// Writes one sample with the staleness marker for a series that is
    /// gone, given its encoded labels (the `Label` fields of its
    /// `TimeSeries`, as an earlier request carried them).
    pub fn stale(&mut self, labels: &[u8]) {
        self.series.clear();
        self.series.extend_from_slice(labels);
        self.push_series(STALE_NAN);
    }

    /// The hashes of the labels of every sample written so far
    /// ([`labels_hash`]), taken.
    pub fn take_written(&mut self) -> Vec<u64> {
        std::mem::take(&mut self.written)
    }

    /// Completes the `TimeSeries` whose labels are in `series` with one
    /// sample of these value bits at the collection's time, and adds it
    /// to the request.
    fn push_series(&mut self, value_bits: u64) {
        let series = &mut self.series;
        let ts = self.timestamp_ms as u64;
        let sample_len = 1 + 8 + 1 + varint_len(ts);
        series.push(tag(2, LEN));
        put_varint(sample_len as u64, series);
        series.push(tag(1, FIXED64));
        series.extend_from_slice(&value_bits.to_le_bytes());
        series.push(tag(2, VARINT));
        put_varint(ts, series);
        put_bytes_field(1, &self.series, &mut self.request);
        self.samples += 1;
        self.total_samples += 1;
        if self.samples >= self.max_samples {
            self.flush();
        }
    }
}

/// A series' identity across collections: a hash of its encoded labels.
/// Two series that collide only lose a staleness marker.
pub fn labels_hash(labels: &[u8]) -> u64 {
    use std::hash::BuildHasher as _;
    const SEED: foldhash::fast::FixedState = foldhash::fast::FixedState::with_seed(0x5e7a_1e55);
    SEED.hash_one(labels)
}

impl Exposition for RequestEncoder<'_> {
    fn format(&self) -> Format {
        Format::Text
    }

    fn header(&mut self, name: &str, kind: &str, help: &str, unit: &str) {
        if !self.send_metadata {
            return;
        }
        let mut meta = std::mem::take(&mut self.series);
        meta.clear();
        meta.push(tag(1, VARINT));
        put_varint(metric_type(kind), &mut meta);
        put_bytes_field(2, name.as_bytes(), &mut meta);
        if !help.is_empty() {
            put_bytes_field(4, help.as_bytes(), &mut meta);
        }
        if !unit.is_empty() {
            put_bytes_field(5, unit.as_bytes(), &mut meta);
        }
        put_bytes_field(3, &meta, &mut self.request);
        self.series = meta;
    }

    fn sample(
        &mut self,
        name: &str,
        suffix: &str,
        labels: LabelText<'_>,
        extra: Option<(&str, &str)>,
        value: f64,
    ) {
        self.next_block.clear();
        labels.push_to(&mut self.next_block);
        if self.next_block != self.block || self.base_len == 0 && self.base.is_empty() {
            std::mem::swap(&mut self.block, &mut self.next_block);
            self.parse_series();
        }
        self.text.truncate(self.base_len);
        let n0 = self.text.len();
        self.text.push_str("__name__");
        let v0 = self.text.len();
        self.text.push_str(name);
        self.text.push_str(suffix);
        let metric = (n0..v0, v0..self.text.len());
        match extra {
            Some((k, v)) => {
                let extra = self.push_text(k, v);
                self.encode_series(&[metric, extra], value);
            }
            None => self.encode_series(&[metric], value),
        }
    }

    fn exemplar(&mut self, _exemplar: &StoredExemplar) {}
}

/// Prometheus's staleness marker (`value.StaleNaN`).
pub const STALE_NAN: u64 = 0x7ff0_0000_0000_0002;

/// Prometheus's ordinary NaN (`value.NormalNaN`).
const NORMAL_NAN: u64 = 0x7ff8_0000_0000_0001;

/// A sample's value as sent: every NaN becomes Prometheus's ordinary
/// NaN, so a sender's NaN that happens to carry the bits of the
/// staleness marker (`0x7ff0000000000002`) does not end the series in
/// the storage. A scrape of `/metrics` reads such a value as an ordinary
/// `NaN` too.
fn wire_value(value: f64) -> f64 {
    if value.is_nan() {
        f64::from_bits(NORMAL_NAN)
    } else {
        value
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use prost::Message;

    #[derive(Clone, PartialEq, Message)]
    struct WriteRequest {
        #[prost(message, repeated, tag = "1")]
        timeseries: Vec<TimeSeries>,
        #[prost(message, repeated, tag = "3")]
        metadata: Vec<MetricMetadata>,
    }
    #[derive(Clone, PartialEq, Message)]
    struct TimeSeries {
        #[prost(message, repeated, tag = "1")]
        labels: Vec<Label>,
        #[prost(message, repeated, tag = "2")]
        samples: Vec<Sample>,
    }
    #[derive(Clone, PartialEq, Message)]
    struct Label {
        #[prost(string, tag = "1")]
        name: String,
        #[prost(string, tag = "2")]
        value: String,
    }
    #[derive(Clone, PartialEq, Message)]
    struct Sample {
        #[prost(double, tag = "1")]
        value: f64,
        #[prost(int64, tag = "2")]
        timestamp: i64,
    }
    #[derive(Clone, PartialEq, Message)]
    struct MetricMetadata {
        #[prost(int32, tag = "1")]
        r#type: i32,
        #[prost(string, tag = "2")]
        metric_family_name: String,
        #[prost(string, tag = "4")]
        help: String,
        #[prost(string, tag = "5")]
        unit: String,
    }

    fn decode(batch: &Batch) -> WriteRequest {
        let raw = snap::raw::Decoder::new()
            .decompress_vec(&batch.body)
            .expect("snappy block");
        WriteRequest::decode(raw.as_slice()).expect("protobuf")
    }

    fn labels(ts: &TimeSeries) -> Vec<(&str, &str)> {
        ts.labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .collect()
    }

    #[test]
    fn series_are_sorted_unescaped_and_carry_defaults() {
        let defaults = vec![
            ("cluster".to_string(), "eu-1".to_string()),
            ("job".to_string(), "ignored".to_string()),
        ];
        let mut batches = Vec::new();
        let mut ready = |b: Batch| batches.push(b);
        let mut enc = RequestEncoder::new(1_700_000_000_123, 10, true, &defaults, &mut ready);
        enc.header("http_requests_total", "counter", "Requests.", "");
        enc.sample(
            "http_requests_total",
            "",
            LabelText::whole(r#"job="api",path="/a\"b\\c\nd",Zone="x",empty="""#),
            None,
            42.5,
        );
        enc.sample(
            "latency_seconds",
            "_bucket",
            LabelText::whole(""),
            Some(("le", "0.25")),
            3.0,
        );
        enc.flush();
        drop(enc);
        assert_eq!(batches.len(), 1);
        assert_eq!(batches[0].items, 2);
        let request = decode(&batches[0]);
        assert_eq!(request.metadata.len(), 1);
        assert_eq!(request.metadata[0].r#type, 1);
        assert_eq!(
            request.metadata[0].metric_family_name,
            "http_requests_total"
        );
        assert_eq!(request.metadata[0].help, "Requests.");
        assert_eq!(request.timeseries.len(), 2);
        let first = &request.timeseries[0];
        assert_eq!(
            labels(first),
            vec![
                ("Zone", "x"),
                ("__name__", "http_requests_total"),
                ("cluster", "eu-1"),
                ("job", "api"),
                ("path", "/a\"b\\c\nd"),
            ]
        );
        assert_eq!(
            first.samples,
            vec![Sample {
                value: 42.5,
                timestamp: 1_700_000_000_123
            }]
        );
        assert_eq!(
            labels(&request.timeseries[1]),
            vec![
                ("__name__", "latency_seconds_bucket"),
                ("cluster", "eu-1"),
                ("job", "ignored"),
                ("le", "0.25"),
            ]
        );
    }

    #[test]
    fn samples_of_one_series_share_its_parsed_labels() {
        let defaults = vec![("collector_instance".to_string(), "r1".to_string())];
        let mut batches = Vec::new();
        let mut ready = |b: Batch| batches.push(b);
        let mut enc = RequestEncoder::new(5, 100, false, &defaults, &mut ready);
        let block = r#"job="api",zone="a""#;
        for (suffix, le, v) in [
            ("_bucket", Some("0.5"), 1.0),
            ("_bucket", Some("+Inf"), 2.0),
            ("_sum", None, 0.7),
            ("_count", None, 2.0),
        ] {
            enc.sample(
                "d",
                suffix,
                LabelText::whole(block),
                le.map(|l| ("le", l)),
                v,
            );
        }
        enc.sample("e", "", LabelText::whole(r#"job="web""#), None, 9.0);
        enc.flush();
        drop(enc);
        let request = decode(&batches[0]);
        let got: Vec<Vec<(&str, &str)>> = request.timeseries.iter().map(labels).collect();
        let with = |name: &'static str, le: Option<&'static str>| {
            let mut l = vec![
                ("__name__", name),
                ("collector_instance", "r1"),
                ("job", "api"),
            ];
            if let Some(le) = le {
                l.push(("le", le));
            }
            l.push(("zone", "a"));
            l
        };
        assert_eq!(
            got,
            vec![
                with("d_bucket", Some("0.5")),
                with("d_bucket", Some("+Inf")),
                with("d_sum", None),
                with("d_count", None),
                vec![
                    ("__name__", "e"),
                    ("collector_instance", "r1"),
                    ("job", "web")
                ],
            ]
        );
    }

    #[test]
    fn requests_split_at_max_samples() {
        let mut batches = Vec::new();
        let mut ready = |b: Batch| batches.push(b);
        let mut enc = RequestEncoder::new(1, 3, false, &[], &mut ready);
        for i in 0..7 {
            let block = format!("i=\"{i}\"");
            enc.sample("m", "", LabelText::whole(&block), None, i as f64);
        }
        enc.flush();
        assert_eq!(enc.total_samples, 7);
        drop(enc);
        let sizes: Vec<u64> = batches.iter().map(|b| b.items).collect();
        assert_eq!(sizes, vec![3, 3, 1]);
        let values: Vec<f64> = batches
            .iter()
            .flat_map(|b| decode(b).timeseries)
            .map(|ts| ts.samples[0].value)
            .collect();
        assert_eq!(values, vec![0.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    /// A NaN carrying the staleness marker's bits goes out as an ordinary
    /// NaN; other values keep their bits.
    #[test]
    fn no_sample_is_sent_as_a_staleness_marker() {
        let stale = f64::from_bits(0x7ff0_0000_0000_0002);
        let mut batches = Vec::new();
        let mut ready = |b: Batch| batches.push(b);
        let mut enc = RequestEncoder::new(1, 10, false, &[], &mut ready);
        for (i, v) in [stale, f64::NAN, -0.0, 1.5].into_iter().enumerate() {
            let block = format!("i=\"{i}\"");
            enc.sample("m", "", LabelText::whole(&block), None, v);
        }
        enc.flush();
        drop(enc);
        let bits: Vec<u64> = batches
            .iter()
            .flat_map(|b| decode(b).timeseries)
            .map(|ts| ts.samples[0].value.to_bits())
            .collect();
        assert_eq!(
            bits,
            vec![
                NORMAL_NAN,
                NORMAL_NAN,
                (-0.0f64).to_bits(),
                1.5f64.to_bits()
            ]
        );
    }

    /// A collection walks what `/metrics` serves, the gauges processors
    /// render from their state (`pipeline::derived`) included.
    #[test]
    fn derived_gauges_are_collected_with_their_labels() {
        use crate::exporters::prometheus::{
            NameFilter, PrometheusExporter, PrometheusExporterConfig, Unpaced,
        };
        use crate::model::otlp::common::{AnyValue, InstrumentationScope, KeyValue, any_value};
        use crate::pipeline::derived::{
            BlockParts, DerivedFamily, DerivedSource, LabelBlock, LabelTranslator, SampleSink,
        };
        use std::sync::Arc;

        const FAMILIES: [DerivedFamily; 1] =
            [DerivedFamily::fixed("demo.forecast", "", "A forecast.", 0)];
        struct Demo(LabelBlock);
        impl DerivedSource for Demo {
            fn families(&self) -> Vec<DerivedFamily> {
                FAMILIES.to_vec()
            }
            fn walk(&self, _: u64, sample: &mut SampleSink<'_>) -> bool {
                let block = BlockParts::whole(&self.0.text);
                sample(block, Some(("horizon", "5m")), 1.5)
                    && sample(block, Some(("horizon", "1h")), 2.5)
            }
        }
        let exporter = PrometheusExporter::new(
            PrometheusExporterConfig::default(),
            Arc::new(crate::telemetry::Telemetry::new()),
        );
        let kv = |k: &str, v: &str| KeyValue {
            key: k.into(),
            value: Some(AnyValue {
                value: Some(any_value::Value::StringValue(v.into())),
            }),
            ..Default::default()
        };
        let block = exporter
            .label_block(
                &[kv("service.name", "api")],
                &InstrumentationScope::default(),
                &[kv("metric", "queue_depth")],
            )
            .expect("within limits");
        let source: Arc<dyn DerivedSource> = Arc::new(Demo(block));
        exporter.attach_derived(Arc::downgrade(&source));
        let mut batches = Vec::new();
        let mut ready = |b: Batch| batches.push(b);
        let mut enc = RequestEncoder::new(7, 1000, false, &[], &mut ready);
        assert!(exporter.visit(&NameFilter::all(), &mut enc, &mut Unpaced));
        enc.flush();
        drop(enc);
        let series: Vec<(Vec<(String, String)>, f64)> = batches
            .iter()
            .flat_map(|b| decode(b).timeseries)
            .filter(|ts| labels(ts).contains(&("__name__", "demo_forecast")))
            .map(|ts| {
                let l = labels(&ts)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v.to_string()))
                    .collect();
                (l, ts.samples[0].value)
            })
            .collect();
        let pair = |k: &str, v: &str| (k.to_string(), v.to_string());
        assert_eq!(
            series,
            vec![
                (
                    vec![
                        pair("__name__", "demo_forecast"),
                        pair("horizon", "5m"),
                        pair("job", "api"),
                        pair("metric", "queue_depth"),
                    ],
                    1.5
                ),
                (
                    vec![
                        pair("__name__", "demo_forecast"),
                        pair("horizon", "1h"),
                        pair("job", "api"),
                        pair("metric", "queue_depth"),
                    ],
                    2.5
                ),
            ]
        );
    }

    #[test]
    fn varint_lengths_match_encoding() {
        for v in [0u64, 1, 127, 128, 16_383, 16_384, u32::MAX as u64, u64::MAX] {
            let mut out = Vec::new();
            put_varint(v, &mut out);
            assert_eq!(out.len(), varint_len(v), "{v}");
        }
    }
}
