//! One analysed series: its identity as an OTLP stream (identifying
//! resource attributes, scope, metric, attributes), its window statistics,
//! and the previous cumulative histogram (to turn it into deltas).

use crate::analytics::aggregation::WindowedStats;
use crate::model::otlp::common::{InstrumentationScope, KeyValue};
use crate::processors::identity::IDENTIFYING;

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
    pub resource: Vec<KeyValue>,
    pub scope: InstrumentationScope,
    pub metric: String,
    pub unit: String,
    pub attributes: Vec<KeyValue>,
    pub last_histogram: Option<LastHistogram>,
    /// Whether each window's series are on `/metrics` now (so they can be
    /// withdrawn when the window empties).
    pub exported: Vec<bool>,
}

/// Samples staged per series before they go into its windows.
pub const STAGED: usize = 8;

impl Stream {
    pub fn new(
        resource: &[KeyValue],
        scope: &InstrumentationScope,
        metric: &str,
        unit: &str,
        attributes: &[KeyValue],
        stats: WindowedStats,
        windows: usize,
    ) -> Self {
        Self {
            resource: resource
                .iter()
                .filter(|kv| IDENTIFYING.contains(&kv.key.as_str()))
                .cloned()
                .collect(),
            scope: scope.clone(),
            metric: metric.to_string(),
            unit: unit.to_string(),
            attributes: attributes.to_vec(),
            stats,
            last_histogram: None,
            exported: vec![false; windows],
            last_seen_ms: 0,
            raw_values: false,
            staged_len: 0,
            staged: [(0, 0.0); STAGED],
        }
    }

    /// Takes a gauge sample observed at `now_ms`.
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
