//! [`Fit`]: the linear model's discounted least-squares line, kept as six
//! running sums instead of a window of points.
//!
//! Every past point weighs `λ^age` (its age in points), and the line
//! minimises the weighted squared error: the discounted least squares
//! behind Brown's linear exponential smoothing. With `λ = (n − 1) / (n +
//! 1)` the points' mean age, `λ / (1 − λ)`, is that of an `n`-point
//! window, `(n − 1) / 2`, so the line answers as quickly as a
//! least-squares line over the last `n` points (Prometheus
//! `predict_linear`) while keeping 24 bytes instead of `n` points.
//!
//! The sums are taken about the newest point (`u = t − t_last`, `w = v −
//! v_last`), so they stay small whatever the timestamps and the values'
//! offset, and `f32` holds them: each new point moves the origin (an exact
//! polynomial shift), discounts the sums and adds itself at `(0, 0)`.
//! The arithmetic is in `f64`; the rounding to `f32` is discounted away
//! with the points, so it never accumulates.
//!
//! The sixth sum, `Σλᵃw²`, gives the points' scatter about the line and
//! so the slope's standard error ([`Fit::slope_standard_errors`]): how
//! firmly the recent points establish the trend. A line through a one-off
//! step (a flat run, a jump, a flat run) leaves residuals as large as the
//! step itself, so its slope stays within about `√n` standard errors of
//! flat however large the step, where a ramp's grows with its length.

/// Discounted sums about the newest point: `Σλᵃ`, `Σλᵃu`, `Σλᵃu²`,
/// `Σλᵃw`, `Σλᵃuw`, `Σλᵃw²` (`a` a point's age in points). Empty when
/// `Σλᵃ` is 0.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(super) struct Fit([f32; 6]);

impl Fit {
    /// No point yet.
    pub(super) const EMPTY: Self = Self([0.0; 6]);

    /// The weight that gives the points the mean age of an `n`-point
    /// window: `(n − 1) / (n + 1)`.
    pub(super) fn decay_for_window(n: usize) -> f64 {
        let n = n as f64;
        (n - 1.0) / (n + 1.0)
    }

    /// The sums as written in durable state.
    pub(super) fn to_wire(self) -> [f64; 6] {
        self.0.map(f64::from)
    }

    /// Sums read back from durable state; `None` unless every one is
    /// finite and the weights, `Σλᵃu²` and `Σλᵃw²` are not negative.
    pub(super) fn from_wire(sums: [f64; 6]) -> Option<Self> {
        let fit = Self(sums.map(|x| x as f32));
        let [w, _, uu, _, _, yy] = fit.0;
        (fit.0.iter().all(|x| x.is_finite()) && w >= 0.0 && uu >= 0.0 && yy >= 0.0).then_some(fit)
    }

    /// The five sums an earlier build wrote, without `Σλᵃw²`: the scatter
    /// is taken as large as what the line explains (half the variance),
    /// so the trend is not established until those points have aged out.
    pub(super) fn from_wire_without_scatter(sums: [f64; 5]) -> Option<Self> {
        let [w, u, uu, y, uy] = sums;
        let mut fit = Self::from_wire([w, u, uu, y, uy, 0.0])?;
        let explained = match fit.line() {
            Some((_, slope)) if w > 0.0 => slope * (uy - u * y / w),
            _ => 0.0,
        };
        let mean_square = if w > 0.0 { y * y / w } else { 0.0 };
        fit.0[5] = (mean_square + 2.0 * explained.max(0.0)) as f32;
        fit.0[5].is_finite().then_some(fit)
    }

    /// Moves the origin to the point `dt` seconds and `dv` later than
    /// the newest (which becomes `(−dt, −dv)`).
    #[inline]
    pub(super) fn shift(&mut self, dt: f64, dv: f64) {
        let [w, u, uu, y, uy, yy] = self.0.map(f64::from);
        self.0 = [
            w,
            u - dt * w,
            uu - 2.0 * dt * u + dt * dt * w,
            y - dv * w,
            uy - dt * y - dv * u + dt * dv * w,
            yy - 2.0 * dv * y + dv * dv * w,
        ]
        .map(|x| x as f32);
    }

    /// Adds a point `dt` seconds after the newest, its value `dv` above
    /// it (anything for the first point), discounting the others by
    /// `decay`; it becomes the origin.
    #[inline]
    pub(super) fn push(&mut self, decay: f64, dt: f64, dv: f64) {
        if self.0[0] == 0.0 {
            *self = Self([1.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
            return;
        }
        let [w, u, uu, y, uy, yy] = self.0.map(f64::from);
        // (u − dt)(w − dv) summed: the shift, then the discount; the new
        // point adds 1 to the weight and nothing to the moments.
        self.0 = [
            decay * w + 1.0,
            decay * (u - dt * w),
            decay * (uu - 2.0 * dt * u + dt * dt * w),
            decay * (y - dv * w),
            decay * (uy - dt * y - dv * u + dt * dv * w),
            decay * (yy - 2.0 * dv * y + dv * dv * w),
        ]
        .map(|x| x as f32);
    }

    /// Forgets how the older points departed from the newest one's value
    /// (for a series whose recent points are all equal): the line is then
    /// flat through it, exactly.
    #[inline]
    pub(super) fn flatten(&mut self) {
        self.0[3] = 0.0;
        self.0[4] = 0.0;
        self.0[5] = 0.0;
    }

    /// The fitted line as (offset of its value at the newest point from
    /// that point's value, slope per second); `None` while the points
    /// have too little spread in time to fix a slope.
    #[inline]
    pub(super) fn line(&self) -> Option<(f64, f64)> {
        let [w, u, uu, y, uy, _] = self.0.map(f64::from);
        // Σλ(u − ū)² · Σλ: zero for one point; below the sums' rounding
        // when the points' times barely differ.
        let spread = w * uu - u * u;
        // NaN-safe: a NaN spread has no line either.
        if spread.partial_cmp(&(1e-5 * w * uu)) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let slope = (w * uy - u * y) / spread;
        Some(((y - slope * u) / w, slope))
    }

    /// The slope in standard errors (a t statistic), `|slope| / se`, and
    /// the fit's effective number of points, `(Σλᵃ)² / Σλ²ᵃ` (`n` for an
    /// `n`-point window once full): the residuals' variance is taken over
    /// those less the line's two parameters. The t statistic is infinite
    /// for points exactly on a sloped line; `None` without a line or
    /// with too few points to leave a residual degree of freedom.
    pub(super) fn slope_standard_errors(&self, decay: f64) -> Option<(f64, f64)> {
        let (_, slope) = self.line()?;
        let [w, u, uu, y, uy, yy] = self.0.map(f64::from);
        // Σλ²ᵃ from Σλᵃ = (1 − λⁿ) / (1 − λ): λⁿ = 1 − (1 − λ)Σλᵃ.
        let decay_n = (1.0 - (1.0 - decay) * w).max(0.0);
        let squares = (1.0 - decay_n * decay_n) / (1.0 - decay * decay);
        let effective = w * w / squares;
        // NaN-safe: a NaN count has no t either.
        if effective.partial_cmp(&2.05) != Some(std::cmp::Ordering::Greater) {
            return None;
        }
        let spread = uu - u * u / w;
        let covariance = uy - u * y / w;
        let scatter = yy - y * y / w;
        let residual = (scatter - slope * covariance).max(0.0);
        let variance = residual / w * effective / (effective - 2.0);
        let standard_error = (variance / spread).sqrt();
        Some(slope.abs() / standard_error)
            .filter(|t| !t.is_nan())
            .map(|t| (t, effective))
    }
}

#[cfg(test)]
mod tests {
    use super::Fit;

    /// Weighted least squares computed directly from the points.
    fn direct(points: &[(f64, f64)], decay: f64) -> (f64, f64) {
        let (t_last, v_last) = points[points.len() - 1];
        let mut s = [0.0f64; 5];
        for (age, &(t, v)) in points.iter().rev().enumerate() {
            let (k, u, w) = (decay.powi(age as i32), t - t_last, v - v_last);
            s[0] += k;
            s[1] += k * u;
            s[2] += k * u * u;
            s[3] += k * w;
            s[4] += k * u * w;
        }
        let slope = (s[0] * s[4] - s[1] * s[3]) / (s[0] * s[2] - s[1] * s[1]);
        ((s[3] - slope * s[1]) / s[0], slope)
    }

    fn fed(points: &[(f64, f64)], decay: f64) -> Fit {
        let mut fit = Fit::EMPTY;
        let mut last = (f64::NAN, f64::NAN);
        for &(t, v) in points {
            fit.push(decay, t - last.0, v - last.1);
            last = (t, v);
        }
        fit
    }

    /// The running sums give the line that weighted least squares over
    /// every point gives, for uneven spacing, a large time and value
    /// offset and a level shift.
    #[test]
    fn the_running_sums_give_the_discounted_least_squares_line() {
        let decay = Fit::decay_for_window(12);
        let mut points = Vec::new();
        let mut t = 1.7e9;
        for i in 0..200 {
            t += 45.0 + (i * 37 % 29) as f64;
            let shift = if i > 120 { 500.0 } else { 0.0 };
            points.push((t, 1e6 + 0.3 * i as f64 + ((i * 13) % 7) as f64 + shift));
        }
        for n in [3, 12, 50, 200] {
            let (offset, slope) = fed(&points[..n], decay).line().expect("a line");
            let (want_offset, want_slope) = direct(&points[..n], decay);
            assert!(
                (slope - want_slope).abs() <= 1e-4 * want_slope.abs().max(1e-3),
                "{n} points: slope {slope} against {want_slope}"
            );
            assert!(
                (offset - want_offset).abs() <= 1e-3 * want_offset.abs().max(1.0),
                "{n} points: offset {offset} against {want_offset}"
            );
        }
    }

    /// An exact line is fitted exactly (any weighting), and one point or
    /// none has no line.
    #[test]
    fn a_ramp_is_fitted_exactly_and_one_point_has_no_line() {
        let decay = Fit::decay_for_window(12);
        let ramp: Vec<(f64, f64)> = (0..40)
            .map(|i| (1.7e9 + 60.0 * i as f64, 5.0 + 0.25 * i as f64))
            .collect();
        let (offset, slope) = fed(&ramp, decay).line().expect("a line");
        assert!((slope - 0.25 / 60.0).abs() < 1e-9, "slope {slope}");
        assert!(offset.abs() < 1e-4, "offset {offset}");
        assert_eq!(Fit::EMPTY.line(), None);
        assert_eq!(fed(&ramp[..1], decay).line(), None);
    }

    /// Shifting the origin and back leaves the same line; the wire form
    /// reads back what was written and refuses impossible sums.
    #[test]
    fn shifts_and_the_wire_form_keep_the_line() {
        let decay = Fit::decay_for_window(12);
        let points: Vec<(f64, f64)> = (0..30)
            .map(|i| (60.0 * i as f64, ((i * 7) % 11) as f64))
            .collect();
        let fit = fed(&points, decay);
        let mut moved = fit;
        moved.shift(30.0, 2.0);
        moved.shift(-30.0, -2.0);
        let (a, b) = (fit.line().unwrap(), moved.line().unwrap());
        assert!((a.0 - b.0).abs() < 1e-4 && (a.1 - b.1).abs() < 1e-7);
        assert_eq!(Fit::from_wire(fit.to_wire()), Some(fit));
        assert_eq!(Fit::from_wire([1.0, 0.0, -1.0, 0.0, 0.0, 0.0]), None);
        assert_eq!(Fit::from_wire([1.0, f64::NAN, 0.0, 0.0, 0.0, 0.0]), None);
        assert_eq!(Fit::from_wire([1.0, 0.0, 0.0, 0.0, 0.0, -1.0]), None);
    }

    /// The slope's t statistic computed directly from the points:
    /// weighted least squares, the residuals' variance over the
    /// effective number of points less two.
    fn direct_t(points: &[(f64, f64)], decay: f64) -> f64 {
        let (_, slope) = direct(points, decay);
        let weights: Vec<f64> = (0..points.len())
            .map(|i| decay.powi((points.len() - 1 - i) as i32))
            .collect();
        let total: f64 = weights.iter().sum();
        let mean = |f: &dyn Fn(&(f64, f64)) -> f64| -> f64 {
            points
                .iter()
                .zip(&weights)
                .map(|(p, k)| k * f(p))
                .sum::<f64>()
                / total
        };
        let (t_mean, v_mean) = (mean(&|p| p.0), mean(&|p| p.1));
        let spread: f64 = points
            .iter()
            .zip(&weights)
            .map(|(p, k)| k * (p.0 - t_mean).powi(2))
            .sum();
        let residual: f64 = points
            .iter()
            .zip(&weights)
            .map(|(p, k)| k * (p.1 - v_mean - slope * (p.0 - t_mean)).powi(2))
            .sum();
        let effective = total * total / weights.iter().map(|k| k * k).sum::<f64>();
        let variance = residual / total * effective / (effective - 2.0);
        slope.abs() / (variance / spread).sqrt()
    }

    /// The sixth sum gives the slope's t statistic that the points give,
    /// at any offset, spacing and count.
    #[test]
    fn the_slope_in_standard_errors_is_that_of_the_points() {
        for window in [6, 12, 30] {
            let decay = Fit::decay_for_window(window);
            let mut points = Vec::new();
            let mut t = 1.7e9;
            for i in 0..150 {
                t += 15.0 + (i * 37 % 11) as f64;
                let noise = ((i * 7919) % 97) as f64 / 97.0 - 0.5;
                points.push((t, 2e5 + 0.2 * i as f64 + 3.0 * noise));
            }
            for n in [4, 7, 20, 150] {
                let (got, _) = fed(&points[..n], decay)
                    .slope_standard_errors(decay)
                    .expect("a t statistic");
                let want = direct_t(&points[..n], decay);
                assert!(
                    (got - want).abs() <= 2e-3 * want,
                    "window {window}, {n} points: {got} against {want}"
                );
            }
        }
    }

    /// A one-off step, however large and wherever it sits in the window,
    /// leaves the slope within about √n standard errors of flat (3.5 for
    /// the default 12 points); a ramp whose rise per point is a third of
    /// its noise goes well past 4. Exactly equal points have no t.
    #[test]
    fn a_step_never_establishes_a_trend_and_a_ramp_does() {
        let decay = Fit::decay_for_window(12);
        let noise = |i: usize| ((i * 7919) % 101) as f64 / 101.0 - 0.5;
        for jump in [10.0, 450.0, 1e6] {
            let mut fit = Fit::EMPTY;
            let mut last = (f64::NAN, f64::NAN);
            let mut most: f64 = 0.0;
            for i in 0..120 {
                let point = (
                    15.0 * i as f64,
                    50.0 + if i >= 60 { jump } else { 0.0 } + noise(i),
                );
                fit.push(decay, point.0 - last.0, point.1 - last.1);
                last = point;
                if i >= 60 {
                    let t = fit.slope_standard_errors(decay).map_or(0.0, |(t, _)| t);
                    most = most.max(t);
                }
            }
            assert!(most > 2.0 && most < 3.5, "step of {jump}: {most}");
        }
        let ramp: Vec<(f64, f64)> = (0..60)
            .map(|i| (15.0 * i as f64, 50.0 + i as f64 + 3.0 * 2.0 * noise(i)))
            .collect();
        let (t, effective) = fed(&ramp, decay).slope_standard_errors(decay).expect("a t");
        assert!(t > 6.0, "ramp: {t}");
        assert!(
            (effective - 12.0).abs() < 1e-2,
            "{effective} effective points"
        );
        let flat: Vec<(f64, f64)> = (0..20).map(|i| (15.0 * i as f64, 7.0)).collect();
        assert_eq!(fed(&flat, decay).slope_standard_errors(decay), None);
    }

    /// A state an earlier build wrote, without the scatter, reads back
    /// with the same line and a trend that is not established.
    #[test]
    fn five_sums_of_an_earlier_build_read_back_unestablished() {
        let decay = Fit::decay_for_window(12);
        let ramp: Vec<(f64, f64)> = (0..40)
            .map(|i| (60.0 * i as f64, 5.0 + 0.25 * i as f64))
            .collect();
        let fit = fed(&ramp, decay);
        let [w, u, uu, y, uy, _] = fit.to_wire();
        let old = Fit::from_wire_without_scatter([w, u, uu, y, uy]).expect("read back");
        assert_eq!(old.line(), fit.line());
        let (t, _) = old.slope_standard_errors(decay).expect("a t");
        assert!(t < 3.5, "{t}");
        assert!(Fit::from_wire_without_scatter([1.0, 0.0, -1.0, 0.0, 0.0]).is_none());
    }
}
