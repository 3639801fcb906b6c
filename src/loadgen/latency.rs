//! Request latencies in log-spaced buckets (about 2 % wide, 1 µs to over
//! a minute): constant memory however long the run, quantiles within one
//! bucket, and histograms of several workers merge by adding.

use std::time::Duration;

/// Buckets per factor of 2 of latency.
const PER_OCTAVE: f64 = 32.0;
/// 1 µs × 2^(BUCKETS / 32): 2^27 µs, over 2 minutes.
const BUCKETS: usize = 27 * PER_OCTAVE as usize;

#[derive(Debug, Clone)]
pub struct Latencies {
    counts: Vec<u64>,
    total: u64,
    max: Duration,
}

impl Default for Latencies {
    fn default() -> Self {
        Self {
            counts: vec![0; BUCKETS + 1],
            total: 0,
            max: Duration::ZERO,
        }
    }
}

impl Latencies {
    pub fn record(&mut self, latency: Duration) {
        let micros = latency.as_secs_f64() * 1e6;
        let index = if micros <= 1.0 {
            0
        } else {
            ((micros.log2() * PER_OCTAVE).ceil() as usize).min(BUCKETS)
        };
        self.counts[index] += 1;
        self.total += 1;
        self.max = self.max.max(latency);
    }

    pub fn merge(&mut self, other: &Latencies) {
        for (a, b) in self.counts.iter_mut().zip(&other.counts) {
            *a += b;
        }
        self.total += other.total;
        self.max = self.max.max(other.max);
    }

    pub fn count(&self) -> u64 {
        self.total
    }

    pub fn max(&self) -> Duration {
        self.max
    }

    /// The `q` quantile (0 to 1): the upper edge of its bucket, at most
    /// the largest latency seen. Zero when nothing was recorded.
    pub fn quantile(&self, q: f64) -> Duration {
        if self.total == 0 {
            return Duration::ZERO;
        }
        let rank = ((q.clamp(0.0, 1.0) * self.total as f64).ceil() as u64).max(1);
        let mut seen = 0;
        for (index, count) in self.counts.iter().enumerate() {
            seen += count;
            if seen >= rank {
                let micros = (index as f64 / PER_OCTAVE).exp2();
                return Duration::from_secs_f64(micros * 1e-6).min(self.max);
            }
        }
        self.max
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_are_within_a_bucket() {
        let mut l = Latencies::default();
        for micros in 1..=10_000u64 {
            l.record(Duration::from_micros(micros));
        }
        for (q, exact) in [(0.5, 5_000.0), (0.99, 9_900.0), (1.0, 10_000.0)] {
            let got = l.quantile(q).as_secs_f64() * 1e6;
            assert!(
                got >= exact && got <= exact * 1.022,
                "q{q}: {got} vs {exact}"
            );
        }
        let mut other = Latencies::default();
        other.record(Duration::from_secs(3));
        l.merge(&other);
        assert_eq!(l.count(), 10_001);
        assert_eq!(l.max(), Duration::from_secs(3));
        assert_eq!(l.quantile(1.0), Duration::from_secs(3));
        assert_eq!(Latencies::default().quantile(0.5), Duration::ZERO);
    }
}
