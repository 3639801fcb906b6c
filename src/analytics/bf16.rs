//! bfloat16: the high half of an `f32` (8 bits of precision, the full
//! exponent range), for model state that needs a few digits and not
//! four bytes: the forecaster's tracked forecasts and the baseline's
//! hour-of-day scales.

/// A quiet NaN.
pub const NAN: u16 = 0x7fc0;

/// `x` as a bfloat16, rounded to nearest even; NaN stays NaN.
#[inline]
pub fn from_f32(x: f32) -> u16 {
    if x.is_nan() {
        return NAN;
    }
    let bits = x.to_bits();
    let round = 0x7fff + ((bits >> 16) & 1);
    (bits.wrapping_add(round) >> 16) as u16
}

/// `x` (finite, ≥ 0) as a bfloat16, rounded up with probability equal to
/// its distance from the value below (`u` uniform in `[0, 1)`): unbiased,
/// so an EWMA step smaller than one bfloat16 step still moves it right on
/// average.
#[inline]
pub fn from_f32_dithered(x: f32, u: f64) -> u16 {
    let r = (u * 65_536.0) as u32;
    (x.to_bits().saturating_add(r) >> 16) as u16
}

/// The `f32` a bfloat16 stands for (exact).
#[inline]
pub fn to_f32(h: u16) -> f32 {
    f32::from_bits(u32::from(h) << 16)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rounds_to_nearest_and_dithers_without_bias() {
        assert_eq!(to_f32(from_f32(1.0)), 1.0);
        assert_eq!(to_f32(from_f32(1.0 + 1.0 / 512.0)), 1.0, "ties to even");
        assert_eq!(to_f32(from_f32(1.0 + 3.0 / 512.0)), 1.0 + 1.0 / 128.0);
        assert!(to_f32(from_f32(f32::NAN)).is_nan());
        // 1 + 1/512 lies a quarter of the way from 1 to the next bfloat16.
        let x = 1.0 + 1.0 / 512.0;
        let n = 10_000;
        let mean = (0..n)
            .map(|i| f64::from(to_f32(from_f32_dithered(x, (i as f64 + 0.5) / n as f64))))
            .sum::<f64>()
            / n as f64;
        assert!((mean - f64::from(x)).abs() < 1e-5, "{mean}");
    }
}
