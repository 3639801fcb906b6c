//! A base-2 exponential histogram that chooses its own scale: it starts
//! fine and halves its resolution whenever the buckets in use would exceed
//! `max_size`, as OTel SDKs' exponential aggregation does.

/// Positive values only (durations); zero goes to the zero bucket.
#[derive(Debug, Clone, PartialEq, serde::Serialize, serde::Deserialize)]
pub struct ExpoHistogram {
    pub scale: i32,
    pub offset: i32,
    pub counts: Vec<u64>,
    pub zero_count: u64,
    max_size: usize,
}

const START_SCALE: i32 = 20;

impl ExpoHistogram {
    pub fn new(max_size: u32) -> Self {
        Self {
            scale: START_SCALE,
            offset: 0,
            counts: Vec::new(),
            zero_count: 0,
            max_size: max_size.max(2) as usize,
        }
    }

    /// Index of the bucket holding `value` at `scale`: bucket i is
    /// (base^i, base^(i+1)] with base = 2^(2^-scale).
    fn index(value: f64, scale: i32) -> i32 {
        let scaled = value.log2() * (scale as f64).exp2();
        (scaled.ceil() as i64 - 1).clamp(i32::MIN as i64 / 2, i32::MAX as i64 / 2) as i32
    }

    pub fn record(&mut self, value: f64) {
        if value.is_nan() || value <= 0.0 || !value.is_finite() {
            self.zero_count += 1;
            return;
        }
        let mut index = Self::index(value, self.scale);
        if self.counts.is_empty() {
            self.offset = index;
            self.counts.push(1);
            return;
        }
        loop {
            let low = self.offset.min(index);
            let high = (self.offset + self.counts.len() as i32 - 1).max(index);
            if ((high as i64 - low as i64) as usize) < self.max_size {
                break;
            }
            self.downscale();
            index = Self::index(value, self.scale);
        }
        if index < self.offset {
            let grow = (self.offset - index) as usize;
            self.counts.splice(0..0, std::iter::repeat_n(0, grow));
            self.offset = index;
        }
        let slot = (index - self.offset) as usize;
        if slot >= self.counts.len() {
            self.counts.resize(slot + 1, 0);
        }
        self.counts[slot] += 1;
    }

    fn downscale(&mut self) {
        self.scale -= 1;
        let first = self.offset >> 1;
        let last = (self.offset + self.counts.len() as i32 - 1) >> 1;
        let mut merged = vec![0u64; (last - first + 1) as usize];
        for (i, c) in self.counts.iter().enumerate() {
            merged[(((self.offset + i as i32) >> 1) - first) as usize] += c;
        }
        self.offset = first;
        self.counts = merged;
    }

    pub fn count(&self) -> u64 {
        self.zero_count + self.counts.iter().sum::<u64>()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stays_within_max_size_and_keeps_every_count() {
        let mut h = ExpoHistogram::new(20);
        for i in 1..=1000 {
            h.record(i as f64 / 1000.0);
        }
        h.record(0.0);
        assert!(h.counts.len() <= 20, "{}", h.counts.len());
        assert_eq!(h.count(), 1001);
        assert_eq!(h.zero_count, 1);
        // Every value lies in its bucket at the final scale.
        let base = (-(h.scale as f64)).exp2().exp2();
        let lower = base.powi(h.offset);
        let upper = base.powi(h.offset + h.counts.len() as i32);
        assert!(lower < 0.001 && upper >= 1.0, "{lower} {upper}");
    }

    #[test]
    fn single_value_is_exact_bucket() {
        let mut h = ExpoHistogram::new(160);
        h.record(1.0);
        h.record(1.0);
        assert_eq!(h.scale, START_SCALE);
        assert_eq!(h.counts, vec![2]);
        // 1.0 is the upper edge of bucket -1 at any scale.
        assert_eq!(h.offset, -1);
    }
}
