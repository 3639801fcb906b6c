//! One analysed series: its identity as an OTLP stream (identifying
//! resource attributes, scope, metric, attributes), its window statistics,
//! and the previous cumulative histogram (to turn it into deltas).

use crate::analytics::aggregation::WindowedStats;
use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::processors::identity::IDENTIFYING;
use crate::processors::packed::PackedAttributes;
use prost::Message;

/// The previous cumulative explicit-bucket histogram of a stream.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct LastHistogram {
    pub start_ns: u64,
    pub bounds: Vec<f64>,
    pub counts: Vec<u64>,
}

/// An analysed series. `repr(C)` with the fields every point touches
/// first (`last_seen_ms`, `raw_values`, the staged samples), so a point
/// costs the cache lines it writes and not the series' labels or
/// windows.
#[repr(C)]
pub struct Stream {
    /// Unix ms of the last point of this series (also a baseline-only one).
    pub last_seen_ms: u64,
    /// The sender's time (Unix ns) of the last point taken, so a repeated
    /// or late point (a retried request) is not observed twice. Not kept
    /// in durable state: after a restart the first point is taken.
    last_point_ns: u64,
    /// Raw values arrive for this series (from a connector), so its
    /// aggregated points must not be counted again.
    pub raw_values: bool,
    /// Samples in `staged`.
    staged_len: u8,
    /// Gauge samples not yet in `stats` (time, value): fed [`STAGED`] at
    /// a time, so the five windows' sketches are loaded into cache once
    /// per batch instead of once per sample. Flushed before `stats` is
    /// read. Inline, so staging a sample follows no pointer.
    staged: [(u64, f64); STAGED],
    pub stats: WindowedStats,
    /// Identifying resource attributes, packed (unpacked where the
    /// stream's gauges are built as OTLP, for the console, and for durable
    /// state).
    resource: PackedAttributes,
    /// The scope as its protobuf encoding.
    scope: Box<[u8]>,
    pub metric: String,
    pub unit: String,
    /// The source attributes, packed.
    attributes: PackedAttributes,
    /// Boxed: only cumulative histograms have one, and it would make
    /// every stream 48 bytes larger (a jemalloc size class up).
    pub last_histogram: Option<Box<LastHistogram>>,
    /// The label block of its gauges on `/metrics`, as the exporter's
    /// translation built it (the `window` label comes on top).
    pub labels: Box<str>,
    /// Which families its gauges belong to: [`family_of`] its metric and
    /// unit.
    pub family: u64,
    /// The last evaluation's figures: per window, one per [`Stat`] (NaN
    /// for none, as for a window that is empty).
    pub values: Box<[f64]>,
}

/// The bits of a derived family's key that say which statistic it shows;
/// the others come from [`family_of`].
pub const STAT_BITS: u64 = 0xff;

/// The families a stream's gauges are in: a hash of its metric name and
/// unit, without the [`STAT_BITS`].
pub fn family_of(metric: &str, unit: &str) -> u64 {
    use std::hash::Hasher;
    let mut h = std::hash::DefaultHasher::new();
    h.write(metric.as_bytes());
    h.write_u8(0xff);
    h.write(unit.as_bytes());
    h.finish() & !STAT_BITS
}

/// What identifies a stream: its source's identifying resource
/// attributes, its scope, metric (name and unit) and attributes.
pub struct StreamOrigin<'a> {
    pub resource: &'a [KeyValue],
    pub scope: &'a InstrumentationScope,
    pub metric: &'a str,
    pub unit: &'a str,
    pub attributes: &'a [KeyValue],
}

impl StreamOrigin<'_> {
    /// The resource's identifying attributes (the others do not make a
    /// stream of their own).
    pub fn identifying(resource: &[KeyValue]) -> Vec<KeyValue> {
        resource
            .iter()
            .filter(|kv| IDENTIFYING.contains(&kv.key.as_str()))
            .cloned()
            .collect()
    }
}

/// Samples staged per series before they go into its windows.
pub const STAGED: usize = 8;

impl Stream {
    /// A stream of `metric` with these identifying resource attributes,
    /// scope and attributes, its gauges labelled `labels`, with room for
    /// `values` figures.
    pub fn new(
        origin: StreamOrigin<'_>,
        labels: Box<str>,
        stats: WindowedStats,
        values: usize,
    ) -> Self {
        Self {
            resource: PackedAttributes::pack(origin.resource),
            scope: origin.scope.encode_to_vec().into_boxed_slice(),
            metric: origin.metric.to_string(),
            unit: origin.unit.to_string(),
            attributes: PackedAttributes::pack(origin.attributes),
            family: family_of(origin.metric, origin.unit),
            stats,
            last_histogram: None,
            labels,
            values: vec![f64::NAN; values].into_boxed_slice(),
            last_seen_ms: 0,
            last_point_ns: 0,
            raw_values: false,
            staged_len: 0,
            staged: [(0, 0.0); STAGED],
        }
    }

    /// The identifying resource attributes.
    pub fn resource(&self) -> Vec<KeyValue> {
        self.resource.unpack()
    }

    /// The scope (its default if its bytes could not be read back, which
    /// cannot happen: only [`Stream::new`] wrote them).
    pub fn scope(&self) -> InstrumentationScope {
        InstrumentationScope::decode(&self.scope[..]).unwrap_or_default()
    }

    /// The scope's protobuf encoding, as kept.
    pub fn scope_bytes(&self) -> &[u8] {
        &self.scope
    }

    /// The source attributes.
    pub fn attributes(&self) -> Vec<KeyValue> {
        self.attributes.unpack()
    }

    /// Takes a gauge sample observed at `now_ms`.
    /// Whether a point the sender timed at `time_ns` is new for this
    /// series: later than the last one taken (which it then becomes). A
    /// point as old as the last (a retried request) or older (a late
    /// one) was observed already, or is out of order, as the exporter
    /// treats it. A point without a time is always taken.
    pub fn take_point(&mut self, time_ns: u64) -> bool {
        if time_ns == 0 {
            return true;
        }
        if time_ns <= self.last_point_ns {
            return false;
        }
        self.last_point_ns = time_ns;
        true
    }

    pub fn stage(&mut self, now_ms: u64, value: f64) {
        if let Some(slot) = self.staged.get_mut(usize::from(self.staged_len)) {
            *slot = (now_ms, value);
            self.staged_len += 1;
        }
        if usize::from(self.staged_len) >= STAGED {
            self.flush();
        }
    }

    /// Feeds the staged samples into the windows, each at its own time.
    pub fn flush(&mut self) {
        let n = usize::from(std::mem::take(&mut self.staged_len));
        for &(now_ms, value) in &self.staged[..n] {
            self.stats.observe(now_ms, value);
        }
    }
}

/// Feeds `n` observations spread evenly over the bucket `(low, high]`
/// (as `histogram_quantile` assumes), with at most `spread` distinct values.
pub fn observe_bucket(
    stats: &mut WindowedStats,
    now_ms: u64,
    low: f64,
    high: f64,
    n: u64,
    spread: u64,
) {
    if n == 0 {
        return;
    }
    if !high.is_finite() {
        // The +Inf bucket: the highest finite bound is all that is known.
        stats.observe_n(now_ms, low, n);
        return;
    }
    let points = n.min(spread).max(1);
    let per = n / points;
    let mut extra = n % points;
    for k in 0..points {
        let value = low + (high - low) * (k as f64 + 0.5) / points as f64;
        let weight = per + u64::from(extra > 0);
        extra = extra.saturating_sub(1);
        stats.observe_n(now_ms, value, weight);
    }
}
