//! Explicit-bucket histograms as the connectors keep them: which bucket
//! a duration falls in.

/// The bucket of `seconds` under `bounds` (upper bounds, inclusive,
/// ascending): `bounds.len()` for +Inf.
#[inline]
pub fn bucket_of(seconds: f64, bounds: &[f64]) -> usize {
    if bounds.len() <= SHORT {
        // The bounds below the value, counted without a branch: for the
        // usual 16 bounds cheaper than a binary search's chain of
        // dependent, unpredictable steps.
        bounds.iter().map(|b| usize::from(*b < seconds)).sum()
    } else {
        bounds.partition_point(|b| *b < seconds)
    }
}

/// Bounds lists up to this long are counted rather than searched.
const SHORT: usize = 32;

#[cfg(test)]
mod tests {
    use super::bucket_of;

    #[test]
    fn upper_bounds_are_inclusive() {
        let bounds = [0.002, 0.004, 1.0];
        assert_eq!(bucket_of(0.001, &bounds), 0);
        assert_eq!(bucket_of(0.002, &bounds), 0);
        assert_eq!(bucket_of(0.003, &bounds), 1);
        assert_eq!(bucket_of(1.0, &bounds), 2);
        assert_eq!(bucket_of(20.0, &bounds), 3);
        assert_eq!(bucket_of(5.0, &[]), 0);
    }

    #[test]
    fn counting_and_searching_agree() {
        for n in [1, 16, 32, 33, 100] {
            let bounds: Vec<f64> = (1..=n).map(|i| f64::from(i) * 0.01).collect();
            for k in 0..=(n + 2) * 4 {
                let v = f64::from(k) * 0.0025;
                let expected = bounds.partition_point(|b| *b < v);
                assert_eq!(bucket_of(v, &bounds), expected, "{n} bounds, {v}");
            }
        }
    }
}
