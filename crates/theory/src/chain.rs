//! Generator chains (P2; docs/chains.md): the downstream ridge error after `k` generations
//! of OLS generators for any covariance spectrum (deterministic equivalent, docs/chains.md
//! §4), the penalty that minimises it (docs/chains.md §6), and the power-law rates of the
//! tuned error (docs/chains.md §5).
//!
//! The exact finite-sample formulas of the chain (OLS downstream, over-parametrised
//! generators) are in [`crate::limits`]: [`crate::chain_ols_error`],
//! [`crate::chain_overparam_error`], [`crate::chain_ridge_isotropic`].

use crate::error::{TheoryError, invalid, non_negative, positive};
use crate::limits::RidgeMixingEvaluator;
use crate::spectrum::{Spectrum, d2, kappa, one_minus_d2_cross};

/// The downstream error of a chain split into the clean ridge risk and the collapse term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainTerms {
    /// Ridge risk on clean labels (bias + σ² variance).
    pub clean: f64,
    /// The error the generations add: `k·c₀·C(λ)`.
    pub collapse: f64,
}

impl ChainTerms {
    /// `clean + collapse`.
    #[must_use]
    pub fn total(&self) -> f64 {
        self.clean + self.collapse
    }
}

/// Deterministic equivalent of the downstream ridge error of a chain of OLS generators
/// (docs/chains.md §4), for a covariance with spectral distribution `H` in dimension `d`
/// and a signal distribution `G`:
///
/// `E_test(k, λ) ≈ r²κ²∫τ/(τ+κ)² dG/(1 − D2) + σ² D2/(1 − D2)
///                 + k·σ₀²/(T₀ − d − 1)·[df₂ + κ² tr((Σ+κ)⁻²)·D2/(1 − D2)]`,
///
/// with `κ = κ(λ)` at ratio `γ = d/T`, `D2 = df₂/T` and `df₂ = tr(Σ²(Σ+κ)⁻²)`.
#[derive(Debug, Clone)]
pub struct ChainEquivalent {
    h: Spectrum,
    g: Spectrum,
    d: usize,
    t: usize,
    r2: f64,
    sigma2: f64,
    per_generation: f64,
}

impl ChainEquivalent {
    /// The chain with `d` features (spectrum `h`, signal distribution `g`, `r² = E‖w0‖²`),
    /// downstream sample size `t` and label-noise variance `sigma2`, and generators adding
    /// `per_generation = σ₀²/(T₀ − d − 1)` each ([`ols_generator_scale`]).
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] for `d = 0`, `t = 0` or negative variances.
    pub fn new(
        h: Spectrum,
        g: Spectrum,
        d: usize,
        t: usize,
        r2: f64,
        sigma2: f64,
        per_generation: f64,
    ) -> Result<Self, TheoryError> {
        if d == 0 {
            return Err(invalid("d", 0.0, "must be >= 1"));
        }
        if t == 0 {
            return Err(invalid("t", 0.0, "must be >= 1"));
        }
        non_negative("r2", r2)?;
        non_negative("sigma2", sigma2)?;
        non_negative("per_generation", per_generation)?;
        Ok(ChainEquivalent { h, g, d, t, r2, sigma2, per_generation })
    }

    /// `d/T`.
    fn gamma(&self) -> f64 {
        self.d as f64 / self.t as f64
    }

    /// The error after `k` generations at penalty `λ`.
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] for a negative or non-finite `λ`;
    /// [`TheoryError::OutOfDomain`] at the interpolation threshold (`D2 = 1`).
    pub fn terms(&self, k: u32, lambda: f64) -> Result<ChainTerms, TheoryError> {
        non_negative("lambda", lambda)?;
        let gamma = self.gamma();
        let mut ev = RidgeMixingEvaluator::new(&self.h, &self.g, gamma, self.r2, self.sigma2)?;
        let clean = ev.limit(lambda, 1.0)?.total();
        if k == 0 || self.per_generation == 0.0 {
            return Ok(ChainTerms { clean, collapse: 0.0 });
        }
        Ok(ChainTerms { clean, collapse: f64::from(k) * self.per_generation * self.collapse_trace(lambda)? })
    }

    /// `C(λ) ≈ E tr(Σ(I − λR)Σ⁻¹(I − λR)) = df₂ + κ² tr((Σ+κ)⁻²)·D2/(1 − D2)`
    /// (docs/chains.md §4): how much of one generator's error survives the ridge filter.
    ///
    /// # Errors
    /// As [`Self::terms`].
    pub fn collapse_trace(&self, lambda: f64) -> Result<f64, TheoryError> {
        let gamma = self.gamma();
        let k = kappa(&self.h, gamma, lambda)?;
        let d2v = d2(&self.h, gamma, k)?;
        let denom = one_minus_d2_cross(&self.h, gamma, k, k)?;
        if !(denom > 0.0 && denom.is_finite()) {
            return Err(TheoryError::OutOfDomain { reason: "the downstream fit is at its interpolation threshold" });
        }
        let df2 = d2v * self.t as f64;
        // κ² tr((Σ+κ)⁻²) = d ∫ κ²/(τ+κ)² dH; atoms at τ = 0 contribute d·H({0}) (κ > 0).
        let (taus, ws) = (self.h.taus(), self.h.weights());
        let tail: f64 = if k > 0.0 {
            taus.iter().zip(ws).map(|(&t, &w)| w * (k / (t + k)) * (k / (t + k))).sum::<f64>() * self.d as f64
        } else {
            0.0
        };
        Ok(df2 + tail * d2v / denom)
    }

    /// The penalty minimising the error after `k` generations, and that error
    /// (docs/chains.md §6): a log grid over `[10⁻¹⁰, 10³]·τ̄` and `λ = 0`, then
    /// golden-section search in `log λ` around the best grid point.
    ///
    /// # Errors
    /// As [`Self::terms`], when no penalty of the grid can be evaluated.
    pub fn tuned(&self, k: u32) -> Result<(f64, f64), TheoryError> {
        let scale = self.h.mean().max(f64::MIN_POSITIVE);
        let f = |log_l: f64| self.terms(k, scale * log_l.exp()).map(|t| t.total()).unwrap_or(f64::INFINITY);
        let (lo, hi) = ((1e-10f64).ln(), (1e3f64).ln());
        let steps = 131;
        let grid: Vec<f64> = (0..steps).map(|i| lo + (hi - lo) * i as f64 / (steps - 1) as f64).collect();
        let values: Vec<f64> = grid.iter().map(|&x| f(x)).collect();
        let (best, &best_value) = values
            .iter()
            .enumerate()
            .min_by(|a, b| a.1.total_cmp(b.1))
            .ok_or(TheoryError::OutOfDomain { reason: "no penalty to tune" })?;
        // λ = 0 (the min-norm or OLS limit) is allowed and wins when the error keeps
        // falling as λ → 0 (noiseless data).
        let at_zero = self.terms(k, 0.0).map(|t| t.total()).unwrap_or(f64::INFINITY);
        if best == 0 && at_zero <= best_value {
            return Ok((0.0, at_zero));
        }
        if !best_value.is_finite() {
            return Err(TheoryError::OutOfDomain { reason: "the error is infinite for every penalty" });
        }
        let (mut a, mut b) = (grid[best.saturating_sub(1)], grid[(best + 1).min(steps - 1)]);
        let r = (5f64.sqrt() - 1.0) / 2.0;
        for _ in 0..60 {
            let (c, d) = (b - r * (b - a), a + r * (b - a));
            if f(c) < f(d) {
                b = d;
            } else {
                a = c;
            }
        }
        let x = 0.5 * (a + b);
        let (lambda, value) = (scale * x.exp(), f(x));
        if at_zero <= value { Ok((0.0, at_zero)) } else { Ok((lambda, value)) }
    }
}

/// `σ₀²/(T₀ − d − 1)`: the Σ-error one OLS generator adds, per unit of `d`
/// (`E(XᵀX)⁻¹ = Σ⁻¹/(T₀ − d − 1)`, docs/chains.md §2).
///
/// # Errors
/// [`TheoryError::OutOfDomain`] unless `T₀ ≥ d + 2`; [`TheoryError::InvalidParameter`] for
/// a negative `σ₀²`.
pub fn ols_generator_scale(d: usize, t0: usize, sigma0_2: f64) -> Result<f64, TheoryError> {
    non_negative("sigma0_2", sigma0_2)?;
    if t0 < d + 2 {
        return Err(TheoryError::OutOfDomain { reason: "OLS generators require T0 >= d + 2" });
    }
    Ok(sigma0_2 / (t0 as f64 - d as f64 - 1.0))
}

/// Generator error after `k` generations with a fixed over-parametrised design (`T₀ < d`,
/// isotropic, min-norm; docs/chains.md §3): `ŵ_k = P w0 + X₀⁺(E_1 + … + E_k)`, so
/// `E‖ŵ_k − w0‖² = r²(1 − T₀/d) + k σ₀² T₀/(d − T₀ − 1)` for `k ≥ 1` (0 at `k = 0`).
///
/// # Errors
/// [`TheoryError::OutOfDomain`] unless `d > T₀ + 1`; [`TheoryError::InvalidParameter`] for
/// `T₀ = 0` or negative `r²`, `σ₀²`.
pub fn chain_overparam_fixed_error(d: usize, t0: usize, r2: f64, sigma0_2: f64, k: u32) -> Result<f64, TheoryError> {
    if t0 == 0 {
        return Err(invalid("t0", 0.0, "must be >= 1"));
    }
    if d <= t0 + 1 {
        return Err(TheoryError::OutOfDomain { reason: "over-parametrised chain requires d > T0 + 1" });
    }
    non_negative("r2", r2)?;
    non_negative("sigma0_2", sigma0_2)?;
    if k == 0 {
        return Ok(0.0);
    }
    let (df, tf) = (d as f64, t0 as f64);
    Ok(r2 * (1.0 - tf / df) + f64::from(k) * sigma0_2 * tf / (df - tf - 1.0))
}

/// Power-law rates of the tuned downstream error (docs/chains.md §5) for eigenvalues
/// `τ_j ∝ j^(−α)` and signal coordinates `θ_j² ∝ j^(−δ)` in Σ's eigenbasis.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct PowerLawRates {
    /// Source exponent `r = (α + δ − 1)/(2α)` (`τ_j θ_j² ∝ j^(−1−2αr)`).
    pub source: f64,
    /// Exponent of `T` of the noiseless tuned error (`λ → 0`): `−2α·min(r, 1)`.
    pub fast: f64,
    /// Exponent of `T` of the tuned error with label noise (or generations):
    /// `−2α r̃/(2α r̃ + 1)`, `r̃ = min(r, 1)`.
    pub slow: f64,
    /// Exponent of `T` of the tuned penalty with noise: `−α/(2α r̃ + 1)`.
    pub penalty: f64,
}

/// The rates of [`PowerLawRates`].
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `α > 1` (a summable spectrum) and
/// `α + δ > 1` (a positive source exponent).
pub fn power_law_rates(alpha: f64, delta: f64) -> Result<PowerLawRates, TheoryError> {
    positive("alpha", alpha)?;
    non_negative("delta", delta)?;
    if alpha <= 1.0 {
        return Err(invalid("alpha", alpha, "must be > 1 (a trace-class power-law spectrum)"));
    }
    let source = (alpha + delta - 1.0) / (2.0 * alpha);
    let r = source.min(1.0);
    let two_ar = 2.0 * alpha * r;
    Ok(PowerLawRates { source, fast: -two_ar, slow: -two_ar / (two_ar + 1.0), penalty: -alpha / (two_ar + 1.0) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{ChainSetup, chain_ridge_isotropic};
    use approx::assert_relative_eq;

    fn iso(d: usize, t: usize, per: f64) -> ChainEquivalent {
        let h = Spectrum::point_mass(1.0).unwrap();
        ChainEquivalent::new(h.clone(), h, d, t, 1.0, 1.0, per).unwrap()
    }

    /// For Σ = I the equivalent equals the Marchenko–Pastur closed form of
    /// docs/chains.md §4 (d = 200, T = 400, T0 = 600, n = 3: 0.794716 at λ = 1).
    #[test]
    fn isotropic_equivalent_is_the_closed_form() {
        let per = ols_generator_scale(200, 600, 1.0).unwrap();
        let eq = iso(200, 400, per);
        for lambda in [0.0, 0.1, 1.0, 5.0] {
            let setup =
                ChainSetup { d: 200, t_samples: 400, t0: 600, r2: 1.0, sigma2: 1.0, sigma0_2: 1.0, generations: 3 };
            let closed = chain_ridge_isotropic(&setup, lambda).unwrap();
            let de = eq.terms(3, lambda).unwrap();
            assert_relative_eq!(de.clean, closed.clean, max_relative = 1e-9);
            assert_relative_eq!(de.collapse, closed.collapse, max_relative = 1e-9);
        }
        assert!((eq.terms(3, 1.0).unwrap().total() - 0.794716).abs() < 5e-7);
    }

    /// At λ = 0 with T > d the collapse trace is d (OLS downstream passes the generator
    /// error through unchanged).
    #[test]
    fn ols_downstream_passes_the_generator_error() {
        let taus: Vec<f64> = (1..=50).map(|j| (j as f64).powf(-1.5)).collect();
        let h = Spectrum::from_eigenvalues(&taus).unwrap();
        let eq = ChainEquivalent::new(h.clone(), h, 50, 200, 1.0, 1.0, 0.01).unwrap();
        assert_relative_eq!(eq.collapse_trace(0.0).unwrap(), 50.0, max_relative = 1e-12);
    }

    /// The tuned penalty grows with the number of generations (more effective noise) and
    /// is 0 for noiseless clean data.
    #[test]
    fn tuned_penalty_grows_with_generations() {
        let taus: Vec<f64> = (1..=400).map(|j| (j as f64).powf(-2.0)).collect();
        let shares: Vec<f64> = (1..=400).map(|j| (j as f64).powf(-2.0)).collect();
        let total: f64 = shares.iter().sum();
        let shares: Vec<f64> = shares.iter().map(|s| s / total).collect();
        let h = Spectrum::from_eigenvalues(&taus).unwrap();
        let g = Spectrum::from_atoms(&taus, &shares).unwrap();
        let eq = ChainEquivalent::new(h.clone(), g.clone(), 400, 200, 1.0, 0.0, 0.01).unwrap();
        let (l0, _) = eq.tuned(0).unwrap();
        assert!(l0 <= 0.0, "{l0}");
        let l: Vec<f64> = (1..=4).map(|k| eq.tuned(k).unwrap().0).collect();
        assert!(l.windows(2).all(|w| w[1] > w[0]), "{l:?}");
        // The tuned value is a minimum: nearby penalties are not better.
        let (lk, vk) = eq.tuned(2).unwrap();
        for f in [0.8, 1.25] {
            assert!(eq.terms(2, lk * f).unwrap().total() >= vk * (1.0 - 1e-9));
        }
    }

    #[test]
    fn rates() {
        let r = power_law_rates(2.0, 2.0).unwrap();
        assert_relative_eq!(r.source, 0.75);
        assert_relative_eq!(r.fast, -3.0);
        assert_relative_eq!(r.slow, -0.75);
        assert_relative_eq!(r.penalty, -0.5);
        // Saturation: r > 1 caps the exponents at r = 1.
        let s = power_law_rates(2.0, 8.0).unwrap();
        assert_relative_eq!(s.fast, -4.0);
        assert!(power_law_rates(1.0, 1.0).is_err());
    }

    #[test]
    fn overparam_fixed_values() {
        // d = 200, T0 = 100: r²/2 + k σ0² 100/99.
        assert_relative_eq!(chain_overparam_fixed_error(200, 100, 1.0, 0.0, 3).unwrap(), 0.5);
        assert_relative_eq!(chain_overparam_fixed_error(200, 100, 1.0, 1.0, 2).unwrap(), 0.5 + 200.0 / 99.0);
        assert_relative_eq!(chain_overparam_fixed_error(200, 100, 1.0, 1.0, 0).unwrap(), 0.0);
        assert!(chain_overparam_fixed_error(101, 100, 1.0, 1.0, 1).is_err());
        assert!(ols_generator_scale(100, 101, 1.0).is_err());
    }
}
