//! Explicit-bucket histograms as the connectors keep them: which bucket
//! a duration falls in.

/// The bucket of `seconds` under `bounds` (upper bounds, inclusive,
/// ascending): `bounds.len()` for +Inf.
#[inline]
pub fn bucket_of(seconds: f64, bounds: &[f64]) -> usize {
    bounds.partition_point(|b| *b < seconds)
}

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
}
