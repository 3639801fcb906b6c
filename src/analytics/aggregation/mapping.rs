//! The logarithmic bin mapping behind [`Sketch`](super::Sketch): which bin
//! a positive magnitude falls in, the value a bin stands for, and the
//! relative-error bound that follows.
//!
//! # The bound
//!
//! For a relative accuracy `α` in (0, 1) let `γ = (1 + α) / (1 − α)`.
//! Bin `k` holds the magnitudes `x` with `γ^(k−1) < x ≤ γ^k`, so
//! `k = ⌈log_γ x⌉`, and stands for `v_k = 2·γ^k / (1 + γ)`. For every
//! `x` in bin `k`, `γ^k / γ ≤ x ≤ γ^k` (the left end open), hence
//!
//! ```text
//!   v_k / x ∈ [ 2/(1+γ), 2γ/(1+γ) )  =  [ 1 − α, 1 + α )
//! ```
//!
//! because `2/(1+γ) = 2(1−α)/((1−α)+(1+α)) = 1 − α` and likewise
//! `2γ/(1+γ) = 1 + α`. So `|v_k − x| ≤ α·x`: the value a bin reports is
//! within relative error `α` of *every* value it holds, whatever their
//! distribution inside the bin. Both ends are attained, so the bound is
//! tight.
//!
//! Floating point: `⌈ln x / ln γ⌉` is computed with one `ln`, one multiply
//! and one `ceil`, all monotone, so the bins stay ordered. Rounding can
//! only put an `x` lying within about 1e-13 (relative) of a bin boundary
//! into the neighbouring bin, where the same ratio argument gives an
//! error of at most `α + 1e-13`.
//!
//! Keys fit `i64` with room to spare: `|ln x| ≤ 745` for every positive
//! finite `f64` (subnormals included), and `ln γ ≥ 2e-6` for the smallest
//! accuracy accepted (`1e-6`), so `|k| < 4e8`.

/// Maps positive finite magnitudes to bin keys and back.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize, serde::Deserialize)]
pub(crate) struct LogMapping {
    relative_accuracy: f64,
    ln_gamma: f64,
    inv_ln_gamma: f64,
    /// `ln(2 / (1 + γ))`: moves `γ^k` to the bin's representative value.
    representative_shift: f64,
}

impl LogMapping {
    /// `relative_accuracy` must already be validated (in (0, 1)).
    pub(crate) fn new(relative_accuracy: f64) -> Self {
        let gamma = (1.0 + relative_accuracy) / (1.0 - relative_accuracy);
        let ln_gamma = gamma.ln();
        Self {
            relative_accuracy,
            ln_gamma,
            inv_ln_gamma: 1.0 / ln_gamma,
            representative_shift: (2.0 / (1.0 + gamma)).ln(),
        }
    }

    pub(crate) fn relative_accuracy(&self) -> f64 {
        self.relative_accuracy
    }

    /// The bin of a positive finite magnitude.
    #[inline]
    pub(crate) fn key(&self, magnitude: f64) -> i64 {
        debug_assert!(magnitude > 0.0 && magnitude.is_finite());
        // `as` saturates; the module doc shows the result is far from the
        // i64 limits for every accepted accuracy.
        (magnitude.ln() * self.inv_ln_gamma).ceil() as i64
    }

    /// The value bin `key` stands for (within `α` of all it holds). May be
    /// `+inf` for the bin holding values near `f64::MAX`; callers clamp to
    /// the observed range.
    #[inline]
    pub(crate) fn value(&self, key: i64) -> f64 {
        (key as f64 * self.ln_gamma + self.representative_shift).exp()
    }

    /// Whether bins of `other` are bins of `self` (exact merges).
    pub(crate) fn same_bins(&self, other: &Self) -> bool {
        self.ln_gamma.to_bits() == other.ln_gamma.to_bits()
    }
}
