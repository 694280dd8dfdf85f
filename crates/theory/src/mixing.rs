//! Scalar variance-inflation factors of the real/synthetic label mixing recursion.
//!
//! With a fixed design and a constant weight `w`, the min-norm iterate is an AR(1) process
//! `e_t = (1−w) e_{t−1} + X⁺η_t` whose noise has variance `(w² + (1−w)²)σ²` (docs/fresh-labels.md §2–§3).
//! Everything in this module is a consequence of that scalar recursion, so the functions take
//! and return plain `f64` and are cheap enough for inner loops.
//!
//! Throughout, `q = (1−w)²` is the AR(1) contraction of the variance and `1 − q = w(2−w)` is
//! evaluated in the product form, which has no cancellation as `w → 0`.

use crate::error::{TheoryError, invalid};

/// `1/φ = (√5 − 1)/2`, the optimal constant mixing weight for min-norm interpolation
/// (root of `w² + w − 1 = 0`, docs/fresh-labels.md §3) and the limit of the greedy schedule (docs/fresh-labels.md §4).
pub const GOLDEN_W: f64 = 0.618_033_988_749_894_9;

/// Stationary variance-inflation factor `c(w) = (w² + (1−w)²) / (w(2−w))` (docs/fresh-labels.md §3).
///
/// `c(1) = 1` (fresh labels only), `c(1/φ) = 1/φ` (the minimum), and `c(w) → +∞` as `w → 0`;
/// `c(0)` evaluates to `+∞`. Domain: `w ∈ [0, 1]` (the formula is evaluated as written elsewhere).
#[must_use]
pub fn c(w: f64) -> f64 {
    c_k(w, 1.0)
}

/// Stationary variance factor with synthetic noise `σ̃² = kσ²`:
/// `c_k(w) = (w² + k(1−w)²) / (w(2−w))` (docs/fresh-labels.md §1 last bullet, docs/fresh-labels.md §3, and docs/fresh-labels.md §3 where
/// `k = n/m` is the real-to-synthetic sample-size ratio). `c_k(w*) = w*` at
/// [`optimal_w_noise_ratio`]`(k)`.
#[must_use]
pub fn c_k(w: f64, k: f64) -> f64 {
    let q = (1.0 - w) * (1.0 - w);
    (w * w + k * q) / (w * (2.0 - w))
}

/// `S_t(w) = Σ_{j<t} q^j = (1 − q^t)/(1 − q)` with `q = (1−w)²`.
///
/// Evaluated as `−expm1(t·ln q) / (w(2−w))` so that neither the numerator nor the denominator
/// cancels for small `w`; at `w = 0` (`q = 1`) the limit `t` is returned.
fn geometric_sum(w: f64, t: u32) -> f64 {
    if t == 0 {
        return 0.0;
    }
    let one_minus_q = w * (2.0 - w);
    if one_minus_q.abs() < f64::MIN_POSITIVE {
        return f64::from(t);
    }
    // ln q = 2 ln|1−w|; ln_1p keeps full relative accuracy for small w.
    let ln_q = if w <= 1.0 { 2.0 * (-w).ln_1p() } else { 2.0 * (w - 1.0).ln() };
    -(f64::from(t) * ln_q).exp_m1() / one_minus_q
}

/// `q^t = (1−w)^{2t}`, exact at `w = 1` (`0^0 = 1`, `0^t = 0`).
fn contraction_power(w: f64, t: u32) -> f64 {
    ((1.0 - w) * (1.0 - w)).powf(f64::from(t))
}

/// Transient variance factor `c_t(w) = c(w) + (1−w)^{2t}(1 − c(w))`, `c_0 = 1`
/// (docs/fresh-labels.md §3): `E[R(β̂_t)|X] = B_X + c_t(w)·V_X` for min-norm with a constant weight.
///
/// Evaluated in the equivalent form `c_t = q^t + (w² + q)·S_t` (`q = (1−w)²`, `S_t` the
/// geometric sum), which is finite at `w = 0`, where `c_t(0) = 1 + t` (pure self-training:
/// the variance grows linearly).
#[must_use]
pub fn c_t(w: f64, t: u32) -> f64 {
    let q = (1.0 - w) * (1.0 - w);
    contraction_power(w, t) + (w * w + q) * geometric_sum(w, t)
}

/// Variance factors `a_t` of a time-varying schedule (docs/fresh-labels.md §3):
/// `a_0 = 1`, `a_t = (1−w_t)² a_{t−1} + w_t² + (1−w_t)²`.
///
/// `weights[t]` is the weight used at iteration `t`; `weights[0]` belongs to the initial fit on
/// real labels only and is ignored (it is `1` by definition). The result has the same length
/// as `weights` (empty in, empty out), and the min-norm risk path is `B_X + a_t V_X`.
#[must_use]
pub fn variance_factors(weights: &[f64]) -> Vec<f64> {
    variance_factors_with_noise_ratio(weights, 1.0)
}

/// [`variance_factors`] when synthetic labels carry noise variance `k·σ²` instead of `σ²`
/// (docs/fresh-labels.md §1, docs/fresh-labels.md §3): `a_t = (1−w_t)² a_{t−1} + w_t² + k(1−w_t)²`, in units of the
/// single-fit variance `V`.
#[must_use]
pub fn variance_factors_with_noise_ratio(weights: &[f64], k: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(weights.len());
    let mut a = 1.0;
    for (t, &w) in weights.iter().enumerate() {
        if t > 0 {
            let q = (1.0 - w) * (1.0 - w);
            a = q * a + w * w + k * q;
        }
        out.push(a);
    }
    out
}

/// The variance factor when only a share `keep` of the previous fit's variance survives in
/// the next round's synthetic data (the ECDF's m-sample resampling, docs/families.md §3.3;
/// the kernel smoother's re-smoothing ρ, docs/families.md §4.2):
/// `a_0 = 1`, `a_t = w_t² + (1−w_t)²(keep·a_{t−1} + k)`. `keep = 1` is
/// [`variance_factors_with_noise_ratio`].
#[must_use]
pub fn variance_factors_keep(weights: &[f64], k: f64, keep: f64) -> Vec<f64> {
    let mut a = 1.0;
    weights
        .iter()
        .enumerate()
        .map(|(t, &w)| {
            if t > 0 {
                let q = (1.0 - w) * (1.0 - w);
                a = w * w + q * (keep * a + k);
            }
            a
        })
        .collect()
}

/// The stationary value of [`variance_factors_keep`] at constant `w`:
/// `(w² + (1−w)²k)/(1 − keep·(1−w)²)`.
#[must_use]
pub fn variance_limit_keep(w: f64, k: f64, keep: f64) -> f64 {
    let q = (1.0 - w) * (1.0 - w);
    (w * w + q * k) / (1.0 - keep * q)
}

/// Greedy (one-step optimal) min-norm schedule `w_0 = 1`, `w_t = (1 + w_{t−1})/(2 + w_{t−1})`
/// (docs/fresh-labels.md §4). Returns `iterations + 1` weights `w_0, …, w_iterations`.
///
/// `w_t = F_{2t+1}/F_{2t+2}` (Fibonacci) → `1/φ`, and the schedule satisfies `a_t = w_t`
/// for the factors of [`variance_factors`].
#[must_use]
pub fn dynamic_weights(iterations: usize) -> Vec<f64> {
    let mut out = Vec::with_capacity(iterations + 1);
    let mut w = 1.0;
    out.push(w);
    for _ in 0..iterations {
        w = (1.0 + w) / (2.0 + w);
        out.push(w);
    }
    out
}

/// Optimal weight for synthetic-to-real noise (or sample-size) ratio `k`:
/// `w*(k) = (√(k² + 4k) − k)/2`, the root in `(0, 1)` of `w² + kw − k = 0` (docs/fresh-labels.md §3,
/// docs/fresh-labels.md §3; P3's formula with `k = n/m`). `w*(1) = 1/φ`.
///
/// Evaluated without cancellation: `(√(k(k+4)) − k)/2` for `k < 1` (the root dominates `k`)
/// and the rationalised `2/(1 + √(1 + 4/k))` for `k ≥ 1`.
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `k` is finite and `> 0`.
pub fn optimal_w_noise_ratio(k: f64) -> Result<f64, TheoryError> {
    if !(k.is_finite() && k > 0.0) {
        return Err(invalid("k", k, "must be finite and > 0"));
    }
    Ok(if k < 1.0 { 0.5 * ((k * (k + 4.0)).sqrt() - k) } else { 2.0 / (1.0 + (1.0 + 4.0 / k).sqrt()) })
}

/// Variance factor when the real labels `y_0` are reused at every iteration (docs/fixed-labels.md §3):
/// `a_t = 1 + (1−w)²(1 − (1−w)^{2t}) / (w(2−w))`, so `E[R_t|X] = B_X + a_t V_X` for min-norm.
///
/// Evaluated as `1 + (1−w)²·S_t`; `a_t(0) = 1 + t` (collapse), and `a_t ≥ 1` always: synthetic
/// labels never help in this setting.
#[must_use]
pub fn fixed_labels_factor(w: f64, t: u32) -> f64 {
    1.0 + (1.0 - w) * (1.0 - w) * geometric_sum(w, t)
}

/// Variance factors when the real labels `y_0` are reused at every iteration, for any
/// schedule and synthetic noise ratio `k = σ̃²/σ²` (docs/fixed-labels.md §3). In units
/// of the single-fit variance, with `c_t` the correlation of the iterate's noise with
/// the reused real noise: `a_0 = c_0 = 1`,
/// `a_t = (1−w_t)² a_{t−1} + 2 w_t (1−w_t) c_{t−1} + w_t² + k(1−w_t)²`,
/// `c_t = (1−w_t) c_{t−1} + w_t`. For a constant `w` and `k = 1` this is
/// [`fixed_labels_factor`].
#[must_use]
pub fn fixed_labels_factors(weights: &[f64], k: f64) -> Vec<f64> {
    let mut out = Vec::with_capacity(weights.len());
    let (mut a, mut c) = (1.0, 1.0);
    for (t, &w) in weights.iter().enumerate() {
        if t > 0 {
            let v = 1.0 - w;
            a = v * v * a + 2.0 * w * v * c + w * w + k * v * v;
            c = v * c + w;
        }
        out.push(a);
    }
    out
}

/// Min-norm/OLS variance factors on a fixed design under a pooling policy that trains on
/// the running average `L_t = (1 − ℓ_t) L_{t−1} + ℓ_t z_t` of the label vectors
/// (docs/policies.md §2): `averaging[t − 1]` is ℓ_t for t ≥ 1 (replace: all 1;
/// accumulate: 1/(t + 1)). In units of the single-fit variance, `a_0 = c_0 = 1` and
///
/// fresh real labels: `a_t = (1 − ℓw)² a_{t−1} + ℓ²(w² + k(1 − w)²)`;
/// reused real labels: the same plus `2(1 − ℓw)ℓw c_{t−1}`, with
/// `c_t = (1 − ℓw) c_{t−1} + ℓw` (`w = w_t`, `ℓ = ℓ_t`).
///
/// With every ℓ_t = 1 these are [`variance_factors_with_noise_ratio`] and
/// [`fixed_labels_factors`]; accumulate at w = 0 gives `1 + k Σ_{j=2}^{t+1} 1/j²`, below
/// `1 + k(π²/6 − 1)`. `averaging` shorter than `weights.len() − 1` repeats its last
/// entry (1 if empty).
#[must_use]
pub fn pooled_variance_factors(weights: &[f64], averaging: &[f64], k: f64, reused_real: bool) -> Vec<f64> {
    let mut out = Vec::with_capacity(weights.len());
    let (mut a, mut c) = (1.0, 1.0);
    for (t, &w) in weights.iter().enumerate() {
        if t > 0 {
            let l = averaging.get(t - 1).or(averaging.last()).copied().unwrap_or(1.0);
            let keep = 1.0 - l * w;
            let v = 1.0 - w;
            let cross = if reused_real { 2.0 * keep * l * w * c } else { 0.0 };
            a = keep * keep * a + l * l * (w * w + k * v * v) + cross;
            c = keep * c + l * w;
        }
        out.push(a);
    }
    out
}

/// `t → ∞` limit of [`fixed_labels_factor`]: `a_∞ = 1/(w(2−w))` (docs/fixed-labels.md §3);
/// `+∞` at `w = 0`.
#[must_use]
pub fn fixed_labels_factor_limit(w: f64) -> f64 {
    1.0 / (w * (2.0 - w))
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    /// keep = 1 is the noise-ratio recursion; at constant w the recursion converges to
    /// its stationary value; keep < 1 damps the feedback (smaller factor).
    #[test]
    fn variance_with_a_kept_share() {
        let weights = [1.0, 0.3, 0.5, 0.618, 0.9];
        for (a, b) in
            variance_factors_keep(&weights, 0.7, 1.0).iter().zip(variance_factors_with_noise_ratio(&weights, 0.7))
        {
            assert_relative_eq!(*a, b, max_relative = 1e-14);
        }
        for keep in [1.0, 0.723, 0.99] {
            let path = variance_factors_keep(&[0.618; 400], 1.0, keep);
            assert_relative_eq!(*path.last().unwrap(), variance_limit_keep(0.618, 1.0, keep), max_relative = 1e-12);
        }
        assert_relative_eq!(variance_limit_keep(0.618, 1.0, 1.0), c_k(0.618, 1.0), max_relative = 1e-14);
        assert!(variance_limit_keep(0.618, 1.0, 0.723) < variance_limit_keep(0.618, 1.0, 1.0));
    }

    /// The general recursion reproduces the constant-w closed form, and w = 0 gives 1 + t.
    #[test]
    fn fixed_labels_recursion_matches_closed_form() {
        for w in [0.0, 0.3, 0.618, 1.0] {
            let weights: Vec<f64> = (0..30).map(|t| if t == 0 { 1.0 } else { w }).collect();
            let a = fixed_labels_factors(&weights, 1.0);
            for (t, at) in a.iter().enumerate() {
                assert_relative_eq!(*at, fixed_labels_factor(w, t as u32), max_relative = 1e-12);
            }
        }
        let zero: Vec<f64> = (0..6).map(|t| if t == 0 { 1.0 } else { 0.0 }).collect();
        assert_eq!(fixed_labels_factors(&zero, 1.0), vec![1.0, 2.0, 3.0, 4.0, 5.0, 6.0]);
    }

    #[test]
    fn golden_w_is_inverse_golden_ratio() {
        let phi = 0.5 * (1.0 + 5.0_f64.sqrt());
        assert_relative_eq!(GOLDEN_W, 1.0 / phi, max_relative = 1e-16);
        assert_relative_eq!(GOLDEN_W * GOLDEN_W + GOLDEN_W, 1.0, max_relative = 1e-15);
    }

    #[test]
    fn c_reference_values() {
        // docs/fresh-labels.md §3: c(1) = 1, c(1/2) = 2/3, c(0.3) = 1.13725 and c(1/φ) = 1/φ.
        assert_relative_eq!(c(1.0), 1.0, max_relative = 1e-15);
        assert_relative_eq!(c(0.5), 2.0 / 3.0, max_relative = 1e-15);
        // c(0.3) = (0.09 + 0.49)/(0.3·1.7) = 0.58/0.51 exactly.
        assert_relative_eq!(c(0.3), 0.58 / 0.51, max_relative = 1e-15);
        assert!((c(0.3) - 1.13725).abs() < 5e-6);
        assert_relative_eq!(c(GOLDEN_W), GOLDEN_W, max_relative = 1e-15);
        assert!(c(0.0).is_infinite());
    }

    #[test]
    fn golden_weight_minimises_c() {
        // dc/dw = 0 ⇔ w² + w − 1 = 0 (docs/fresh-labels.md §3); check by finite differences.
        let h = 1e-4;
        assert!(c(GOLDEN_W - h) > c(GOLDEN_W));
        assert!(c(GOLDEN_W + h) > c(GOLDEN_W));
        let derivative = (c(GOLDEN_W + 1e-6) - c(GOLDEN_W - 1e-6)) / 2e-6;
        assert!(derivative.abs() < 1e-8, "{derivative}");
    }

    #[test]
    fn c_t_matches_recursion_and_limits() {
        for &w in &[0.0, 1e-9, 0.1, 0.5, GOLDEN_W, 0.9, 1.0] {
            let weights = vec![w; 60];
            let a = variance_factors(&weights);
            for (t, &at) in a.iter().enumerate() {
                let t = u32::try_from(t).unwrap_or(u32::MAX);
                assert_relative_eq!(c_t(w, t), at, max_relative = 1e-13);
            }
        }
        // w = 0: pure self-training, the variance grows linearly.
        assert_relative_eq!(c_t(0.0, 7), 8.0, max_relative = 1e-15);
        // w = 1: fresh labels every time, c_t = 1 for all t.
        assert_relative_eq!(c_t(1.0, 5), 1.0, max_relative = 1e-15);
        // large t: the stationary value.
        assert_relative_eq!(c_t(0.3, 10_000), c(0.3), max_relative = 1e-14);
        // Tiny w: the stable form agrees with the first-order expansion c_t ≈ 1 + t
        // (error O(t² w)).
        assert_relative_eq!(c_t(1e-12, 3), 4.0, max_relative = 1e-9);
    }

    #[test]
    fn general_initial_condition_identity() {
        // docs/fresh-labels.md §3: a_t = (1−w)^{2t} a_0 + c(w)(1 − (1−w)^{2t}); with a_0 = 1 this is c_t.
        let w: f64 = 0.37;
        for t in 0..20_u32 {
            let qt = (1.0 - w) * (1.0 - w);
            let qt = qt.powi(i32::try_from(t).unwrap_or(i32::MAX));
            assert_relative_eq!(c_t(w, t), qt + c(w) * (1.0 - qt), max_relative = 1e-14);
        }
    }

    #[test]
    fn variance_factors_edge_cases() {
        assert!(variance_factors(&[]).is_empty());
        // weights[0] is ignored.
        assert_relative_eq!(variance_factors(&[0.123])[0], 1.0);
        let a = variance_factors(&[1.0, 0.5, 0.5]);
        // a_1 = 0.25·1 + 0.25 + 0.25 = 0.75, a_2 = 0.25·0.75 + 0.5 = 0.6875.
        assert_relative_eq!(a[1], 0.75, max_relative = 1e-15);
        assert_relative_eq!(a[2], 0.6875, max_relative = 1e-15);
    }

    #[test]
    fn dynamic_weights_are_fibonacci_ratios_and_equal_their_factors() {
        // docs/fresh-labels.md §4: w_t = a_t = F_{2t+1}/F_{2t+2}: 1, 2/3, 5/8, 13/21, 34/55, 89/144.
        let w = dynamic_weights(5);
        let expected = [1.0, 2.0 / 3.0, 5.0 / 8.0, 13.0 / 21.0, 34.0 / 55.0, 89.0 / 144.0];
        assert_eq!(w.len(), expected.len());
        for (x, y) in w.iter().zip(expected) {
            assert_relative_eq!(*x, y, max_relative = 1e-15);
        }
        let a = variance_factors(&dynamic_weights(40));
        for (at, wt) in a.iter().zip(dynamic_weights(40)) {
            assert_relative_eq!(*at, wt, max_relative = 1e-14);
        }
        assert_relative_eq!(dynamic_weights(40)[40], GOLDEN_W, max_relative = 1e-15);
        assert_eq!(dynamic_weights(0), vec![1.0]);
    }

    #[test]
    fn dynamic_weights_are_greedy_optimal() {
        // a_t(w) = (1−w)² a + w² + (1−w)² is minimised at w = (a+1)/(a+2) (docs/fresh-labels.md §4).
        let w = dynamic_weights(6);
        let a = variance_factors(&w);
        for t in 1..w.len() {
            let step = |v: f64| (1.0 - v) * (1.0 - v) * a[t - 1] + v * v + (1.0 - v) * (1.0 - v);
            let best = step(w[t]);
            for dv in [-1e-3, 1e-3] {
                assert!(step(w[t] + dv) > best);
            }
        }
    }

    #[test]
    fn optimal_noise_ratio_reference_values() -> Result<(), TheoryError> {
        // docs/fresh-labels.md §3 (4-decimal values).
        let table =
            [(0.01, 0.0951), (0.1, 0.2702), (0.5, 0.5), (1.0, 0.6180), (2.0, 0.7321), (10.0, 0.9161), (100.0, 0.9902)];
        for (k, w) in table {
            let got = optimal_w_noise_ratio(k)?;
            assert!((got - w).abs() < 5e-5, "k = {k}: {got} vs {w}");
        }
        assert_relative_eq!(optimal_w_noise_ratio(1.0)?, GOLDEN_W, max_relative = 1e-15);
        // Asymptotics (docs/fresh-labels.md §3): w* ≈ √k as k → 0 and w* ≈ 1 − 1/k as k → ∞; the
        // stable forms keep full relative accuracy far into both tails.
        assert_relative_eq!(optimal_w_noise_ratio(1e-20)?, 1e-10, max_relative = 1e-9);
        let big = optimal_w_noise_ratio(1e12)?;
        assert!((1.0 - big - 1e-12).abs() < 1e-22 + 4.0 * f64::EPSILON);
        assert!(optimal_w_noise_ratio(0.0).is_err());
        assert!(optimal_w_noise_ratio(-1.0).is_err());
        assert!(optimal_w_noise_ratio(f64::NAN).is_err());
        assert!(optimal_w_noise_ratio(f64::INFINITY).is_err());
        Ok(())
    }

    #[test]
    fn naive_pooling_is_suboptimal() {
        // docs/fresh-labels.md §3: at k = 0.1 pooling (w = k/(1+k)) gives 0.5238 vs 0.2702 at the optimum;
        // at k = 1, 2/3 vs 1/φ.
        assert!((c_k(0.1 / 1.1, 0.1) - 0.5238).abs() < 5e-5);
        assert!((c_k(0.5, 1.0) - 2.0 / 3.0).abs() < 1e-15);
    }

    #[test]
    fn fixed_labels_factor_values() {
        // docs/fixed-labels.md §3: a_∞ = 1/(w(2−w)), a_t(0) = 1 + t; γ = 2, r = σ = 1 gives
        // R_∞ = 0.5 + a_∞ = 1.8333 (w=½), 1.6708 (1/φ), 1.5101 (0.9), 1.5 (1).
        for (w, r) in [(0.5, 1.8333), (GOLDEN_W, 1.6708), (0.9, 1.5101), (1.0, 1.5)] {
            assert!((0.5 + fixed_labels_factor_limit(w) - r).abs() < 5e-5, "w = {w}");
            assert_relative_eq!(fixed_labels_factor(w, 5000), fixed_labels_factor_limit(w), max_relative = 1e-14);
        }
        assert_relative_eq!(fixed_labels_factor(0.0, 9), 10.0, max_relative = 1e-15);
        assert_relative_eq!(fixed_labels_factor(0.4, 0), 1.0);
        // Direct recursion: a_t = 1 + (1−w)² a'_{t−1} where a' sums the synthetic noise.
        let w = 0.3;
        let mut a = 1.0;
        let mut extra = 0.0;
        for t in 1..30_u32 {
            extra = (1.0 - w) * (1.0 - w) * (extra + 1.0);
            a = 1.0 + extra;
            assert_relative_eq!(fixed_labels_factor(w, t), a, max_relative = 1e-13);
        }
        assert!(a > 1.0);
    }

    proptest! {
        #[test]
        fn c_k_is_minimised_at_closed_form(k in 1e-3_f64..1e3) {
            let w = optimal_w_noise_ratio(k).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(w > 0.0 && w < 1.0);
            // c_k(w*) = w* (docs/fresh-labels.md §3).
            prop_assert!((c_k(w, k) - w).abs() <= 1e-12 * w);
            // and it is a minimum of c_k in w.
            let h = 1e-4 * w.min(1.0 - w);
            prop_assert!(c_k(w - h, k) >= c_k(w, k));
            prop_assert!(c_k(w + h, k) >= c_k(w, k));
        }

        #[test]
        fn c_t_is_between_one_and_c_or_monotone(w in 0.01_f64..1.0, t in 0_u32..200) {
            // c_t interpolates geometrically between c_0 = 1 and c(w).
            let ct = c_t(w, t);
            let (lo, hi) = if c(w) < 1.0 { (c(w), 1.0) } else { (1.0, c(w)) };
            prop_assert!(ct >= lo * (1.0 - 1e-14) && ct <= hi * (1.0 + 1e-14));
        }
    }

    #[test]
    fn pooled_factors_reduce_to_replace_and_bound_accumulate() {
        let ws = [1.0, 0.3, 0.7, 0.0, 0.9, 0.5];
        for k in [1.0, 2.5] {
            let fresh = pooled_variance_factors(&ws, &[], k, false);
            let fixed = pooled_variance_factors(&ws, &[1.0], k, true);
            for (a, b) in fresh.iter().zip(variance_factors_with_noise_ratio(&ws, k)) {
                assert!((a - b).abs() < 1e-14);
            }
            for (a, b) in fixed.iter().zip(fixed_labels_factors(&ws, k)) {
                assert!((a - b).abs() < 1e-14);
            }
        }
        let ws = vec![0.0; 101];
        let acc: Vec<f64> = (1..=100).map(|t| 1.0 / (t as f64 + 1.0)).collect();
        let a = pooled_variance_factors(&ws, &acc, 1.0, false);
        let expected: f64 = (1..=101).map(|j| 1.0 / (j * j) as f64).sum();
        assert!((a[100] - expected).abs() < 1e-13 && a[100] < std::f64::consts::PI.powi(2) / 6.0);
    }
}
