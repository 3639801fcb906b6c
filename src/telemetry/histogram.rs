//! A lock-free fixed-bucket histogram for request durations.

use std::sync::atomic::{AtomicU64, Ordering};

/// Upper bounds (seconds) of the request-duration buckets.
pub const DURATION_BOUNDS: [f64; 14] = [
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

/// Counts per bucket (not cumulative), plus the sum in nanoseconds.
#[derive(Default)]
pub struct AtomicHistogram {
    buckets: [AtomicU64; DURATION_BOUNDS.len() + 1],
    sum_nanos: AtomicU64,
}

impl AtomicHistogram {
    pub fn observe(&self, seconds: f64) {
        let slot = DURATION_BOUNDS
            .iter()
            .position(|b| seconds <= *b)
            .unwrap_or(DURATION_BOUNDS.len());
        self.buckets[slot].fetch_add(1, Ordering::Relaxed);
        let nanos = (seconds * 1e9).max(0.0) as u64;
        self.sum_nanos.fetch_add(nanos, Ordering::Relaxed);
    }

    /// Cumulative counts per bound (the last is `+Inf`), sum in seconds, count.
    pub fn cumulative(&self) -> (Vec<(f64, u64)>, f64, u64) {
        let mut running = 0;
        let mut out = Vec::with_capacity(DURATION_BOUNDS.len() + 1);
        for (i, bucket) in self.buckets.iter().enumerate() {
            running += bucket.load(Ordering::Relaxed);
            let bound = DURATION_BOUNDS.get(i).copied().unwrap_or(f64::INFINITY);
            out.push((bound, running));
        }
        let sum = self.sum_nanos.load(Ordering::Relaxed) as f64 / 1e9;
        (out, sum, running)
    }
}
