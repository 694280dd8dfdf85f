//! Limiting and exact expected risks (docs/fresh-labels.md §3, docs/asymptotics.md §4, docs/asymptotics.md §6, docs/fresh-covariates.md §3, docs/partial-labels.md §3, docs/asymptotics.md §7, docs/chains.md §2–§4).
//!
//! Risks are excess prediction risks `‖β̂ − β‖²_Σ` (no `+σ²`), for ridge
//! `β̂ = (XᵀX + nλI)^{-1}Xᵀy`, aspect ratio `γ = p/n`, `r² = ‖β‖²` and noise variance `σ²`.
//! Spectral inputs are `H` (spectrum of Σ) and `G` (signal distribution), see
//! [`crate::spectrum`].

use crate::error::{TheoryError, invalid, mixing_weight, non_negative, positive, unit_interval};
use crate::mixing::{c, c_t, fixed_labels_factor, fixed_labels_factor_limit};
use crate::spectrum::{
    KappaRoot, KappaSolver, Spectrum, atom_sums, mp_bias_factor, mp_mixed_resolvent, mp_squared_filter, one_minus,
};

/// A risk split into its bias and variance parts.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BiasVariance {
    /// Squared-bias part (`r²`-proportional).
    pub bias: f64,
    /// Variance part (`σ²`-proportional; includes the mixing inflation where relevant).
    pub variance: f64,
}

impl BiasVariance {
    /// `bias + variance`.
    #[must_use]
    pub fn total(&self) -> f64 {
        self.bias + self.variance
    }
}

/// `σ² · v` with the convention `0 · ∞ = 0`: a noiseless problem has no variance even where
/// the variance functional diverges (the interpolation threshold).
fn scale_variance(sigma2: f64, v: f64) -> f64 {
    if sigma2 > 0.0 { sigma2 * v } else { 0.0 }
}

/// `factor · variance` with `factor · 0 = 0` even for an infinite factor.
fn inflate(variance: f64, factor: f64) -> f64 {
    if variance > 0.0 { factor * variance } else { 0.0 }
}

fn validate_common(gamma: f64, r2: f64, sigma2: f64) -> Result<(), TheoryError> {
    positive("gamma", gamma)?;
    non_negative("r2", r2)?;
    non_negative("sigma2", sigma2)?;
    Ok(())
}

/// Isotropic (`Σ = I`) min-norm limit (docs/fresh-labels.md §3, HMRT):
/// `γ > 1`: `B = r²(1 − 1/γ)`, `V = σ²/(γ − 1)`; `γ < 1` (OLS): `B = 0`, `V = σ²γ/(1 − γ)`;
/// `γ = 1`: `B = 0`, `V = +∞` (for `σ² > 0`).
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0`, `r² ≥ 0`, `σ² ≥ 0` are finite.
pub fn min_norm_isotropic(gamma: f64, r2: f64, sigma2: f64) -> Result<BiasVariance, TheoryError> {
    validate_common(gamma, r2, sigma2)?;
    Ok(if gamma > 1.0 {
        BiasVariance { bias: r2 * (1.0 - 1.0 / gamma), variance: scale_variance(sigma2, 1.0 / (gamma - 1.0)) }
    } else {
        // γ = 1 gives 1/0 = +∞, the divergence at the interpolation threshold.
        BiasVariance { bias: 0.0, variance: scale_variance(sigma2, gamma / (1.0 - gamma)) }
    })
}

/// Exact finite-sample expectation of the isotropic Gaussian min-norm risk
/// (docs/fresh-labels.md §3 "The finite-n expectation … is exact"):
/// `p > n + 1`: `E B_X = r²(1 − n/p)`, `E V_X = σ² n/(p − n − 1)`;
/// `p < n − 1` (OLS): `B = 0`, `V = σ² p/(n − p − 1)` (inverse-Wishart mean).
/// For `|p − n| ≤ 1` the expected variance is `+∞` (bias `r²(1 − n/p)` if `p > n`, else 0).
///
/// # Errors
/// [`TheoryError::InvalidParameter`] if `n` or `p` is 0 or `r²`, `σ²` is negative/non-finite.
pub fn min_norm_isotropic_finite(n: usize, p: usize, r2: f64, sigma2: f64) -> Result<BiasVariance, TheoryError> {
    if n == 0 {
        return Err(invalid("n", 0.0, "must be >= 1"));
    }
    if p == 0 {
        return Err(invalid("p", 0.0, "must be >= 1"));
    }
    non_negative("r2", r2)?;
    non_negative("sigma2", sigma2)?;
    let (nf, pf) = (n as f64, p as f64);
    let bias = if p > n { r2 * (1.0 - nf / pf) } else { 0.0 };
    let v = if p > n + 1 {
        nf / (pf - nf - 1.0)
    } else if p + 1 < n {
        pf / (nf - pf - 1.0)
    } else {
        f64::INFINITY
    };
    Ok(BiasVariance { bias, variance: scale_variance(sigma2, v) })
}

/// Min-norm limit for general `(H, G)` (docs/fresh-labels.md §3):
/// `B = r²κ0² ∫τ/(τ+κ0)² dG / (1 − D2)`, `V = σ² D2/(1 − D2)`, `D2 = γ∫τ²/(τ+κ0)² dH`,
/// with the ridgeless `κ0` of [`crate::spectrum::kappa`]. In the under-parametrised case
/// (`γM ≤ 1`, `M = H((0,∞))`) `κ0 = 0`, so `B = 0` and `V = σ²γM/(1 − γM)`: the OLS variance,
/// independent of the shape of `H` (Σ-norm and Σ^{-1} in `tr Σ(XᵀX)⁺` cancel).
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0`, `r² ≥ 0`, `σ² ≥ 0` are finite.
pub fn min_norm_limit(
    h: &Spectrum,
    g: &Spectrum,
    gamma: f64,
    r2: f64,
    sigma2: f64,
) -> Result<BiasVariance, TheoryError> {
    let mut ev = RidgeMixingEvaluator::new(h, g, gamma, r2, sigma2)?;
    ev.limit(0.0, 1.0)
}

/// Stationary min-norm risk under fresh-label mixing, `R_∞(w) = B + c(w)·V`
/// (docs/fresh-labels.md §3, P1 Thm 3.1), with `B`, `V` from [`min_norm_limit`]. The returned
/// `variance` already includes the factor `c(w)`.
///
/// # Errors
/// As [`min_norm_limit`], and `w` must lie in `(0, 1]`.
pub fn mixing_limit_min_norm(
    h: &Spectrum,
    g: &Spectrum,
    gamma: f64,
    r2: f64,
    sigma2: f64,
    w: f64,
) -> Result<BiasVariance, TheoryError> {
    let mut ev = RidgeMixingEvaluator::new(h, g, gamma, r2, sigma2)?;
    ev.limit(0.0, w)
}

/// Stationary ridge risk under fresh-label mixing for general `(H, G)` (docs/asymptotics.md §4):
/// `B = r²κ_a² ∫τ/(τ+κ_a)² dG / (1 − D2(κ_a))` with `κ_a = κ(λ/w)`, and
/// `V = c(w)σ² D2×/(1 − D2×)` with `D2× = D2×(κ(λ/w), κ(λ/(2−w)))`.
///
/// `w = 1` is plain ridge; `λ = 0` is the min-norm limit `B + c(w)V` ([`min_norm_limit`]):
/// `κ(0) = κ0` makes the two formulas coincide, so no separate branch is needed. One-off
/// evaluation; use [`RidgeMixingEvaluator`] for many `(λ, w)` on the same problem.
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0`, `r², σ², λ ≥ 0` are finite and
/// `w ∈ (0, 1]`.
pub fn ridge_mixing_limit(
    h: &Spectrum,
    g: &Spectrum,
    gamma: f64,
    r2: f64,
    sigma2: f64,
    lambda: f64,
    w: f64,
) -> Result<BiasVariance, TheoryError> {
    let mut ev = RidgeMixingEvaluator::new(h, g, gamma, r2, sigma2)?;
    ev.limit(lambda, w)
}

/// Isotropic closed form of [`ridge_mixing_limit`] (docs/asymptotics.md §4, "Isotropic closed
/// forms"), with `m1 = m(−λ/w)`, `m2 = m(−λ/(2−w))` the Marchenko–Pastur transforms:
/// `B = r²(λ/w)² m'(−λ/w)`,
/// `V = σ²γ c(w) [(2−w)m1 − w m2] / (2(1−w))` (`= σ²γ[m − λm']` at `w = 1`).
///
/// Numerics: the bracket is the divided difference `J(a,b) = ∫s/((s+a)(s+b))dF` at
/// `a = λ/w`, `b = λ/(2−w)`. Written as above it loses `log10(1/|1−w|)` digits near `w = 1`
/// (the docs' `|1−w| < 1e−9` switch) and, for `γ > 1`, another `log10(1/λ)` digits because
/// the atom of `F` at 0 contributes `~1/λ` to `m1`, `m2` and then cancels. This function
/// evaluates the algebraically identical `J = ψ(b)/(γ(φ(a)+φ(b)) + 1 − γ + a)`
/// (`φ(x) = x·m(−x)`, `ψ = 1 − φ`; see the `spectrum` module), which has neither
/// cancellation, so no special case at `w = 1` is needed. Likewise the bias uses
/// `x²m'(−x) = φ(x + γφ)/√D`. `λ = 0` gives the min-norm limit `B + c(w)V`.
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0`, `r², σ², λ ≥ 0` are finite and
/// `w ∈ (0, 1]`.
pub fn ridge_mixing_isotropic(
    gamma: f64,
    r2: f64,
    sigma2: f64,
    lambda: f64,
    w: f64,
) -> Result<BiasVariance, TheoryError> {
    validate_common(gamma, r2, sigma2)?;
    non_negative("lambda", lambda)?;
    mixing_weight("w", w)?;
    if lambda <= 0.0 {
        let mn = min_norm_isotropic(gamma, r2, sigma2)?;
        return Ok(BiasVariance { bias: mn.bias, variance: c(w) * mn.variance });
    }
    let (a, b) = (lambda / w, lambda / (2.0 - w));
    Ok(BiasVariance {
        bias: r2 * mp_bias_factor(gamma, a),
        variance: scale_variance(sigma2, gamma * c(w) * mp_mixed_resolvent(gamma, a, b)),
    })
}

/// Everything the stationary formulas need at one `(λ, w)`.
#[derive(Debug, Clone, Copy)]
struct Components {
    /// `r²κ_a²∫τ/(τ+κ_a)² dG / (1 − D2(κ_a))`: the bias of ridge at penalty `λ/w`
    /// (`κ_a²τ/(τ+κ_a)² = τ·v_a²` with `v_a = κ_a/(τ+κ_a)`).
    bias: f64,
    /// `D2(κ_a)/(1 − D2(κ_a))`: ridge variance functional at penalty `λ/w` (per unit `σ²`).
    single_variance: f64,
    /// `D2×/(1 − D2×)`: mixed-resolvent variance functional (per unit `σ²`).
    cross_variance: f64,
}

/// Reusable evaluator of the stationary ridge/mixing risk for one problem `(H, G, γ, r², σ²)`
/// (docs/asymptotics.md §4, B.(i)).
///
/// It keeps the last solved `κ(λ/w)` and `κ(λ/(2−w))` and warm-starts the next solves with
/// the tangent predictor `κ(x) ≈ κ(x₀) + (x − x₀)/(1 − D2(κ(x₀)))` (docs/asymptotics.md §2 step 4;
/// `κ` is concave in `x`, so the prediction lies right of the root and Newton then converges
/// monotonically, typically in one or two passes over the atoms). This is what makes
/// optimising `w` along a curve of `λ` cheap for spectra with many atoms.
#[derive(Debug, Clone)]
pub struct RidgeMixingEvaluator<'a> {
    solver: KappaSolver<'a>,
    g_taus: &'a [f64],
    g_ps: &'a [f64],
    /// `G` has the same atoms as `H`: the bias integral is fused into the `H` pass.
    fused: bool,
    r2: f64,
    sigma2: f64,
    cache_a: Option<(f64, KappaRoot)>,
    cache_b: Option<(f64, KappaRoot)>,
}

impl<'a> RidgeMixingEvaluator<'a> {
    /// Prepares the evaluator.
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] unless `γ > 0`, `r² ≥ 0`, `σ² ≥ 0` are finite.
    pub fn new(h: &'a Spectrum, g: &'a Spectrum, gamma: f64, r2: f64, sigma2: f64) -> Result<Self, TheoryError> {
        validate_common(gamma, r2, sigma2)?;
        let (g_taus, g_ps) = g.positive_atoms();
        Ok(Self {
            solver: KappaSolver::new(h, gamma),
            g_taus,
            g_ps,
            fused: h.same_atoms(g),
            r2,
            sigma2,
            cache_a: None,
            cache_b: None,
        })
    }

    /// Stationary fresh-label mixing risk at `(λ, w)`; see [`ridge_mixing_limit`].
    ///
    /// # Errors
    /// [`TheoryError::InvalidParameter`] unless `λ ≥ 0` is finite and `w ∈ (0, 1]`.
    pub fn limit(&mut self, lambda: f64, w: f64) -> Result<BiasVariance, TheoryError> {
        non_negative("lambda", lambda)?;
        mixing_weight("w", w)?;
        Ok(self.limit_unchecked(lambda, w))
    }

    /// Stationary risk when the real labels are fixed (docs/fixed-labels.md §3, ridge):
    /// `R_∞ = B(λ/w) + σ²D2(κ_a)/(1−D2(κ_a)) + (1−w)²/(w(2−w))·σ²D2×/(1−D2×)`.
    ///
    /// # Errors
    /// As [`Self::limit`].
    pub fn fixed_labels_limit(&mut self, lambda: f64, w: f64) -> Result<BiasVariance, TheoryError> {
        non_negative("lambda", lambda)?;
        mixing_weight("w", w)?;
        let comp = self.components(lambda, w);
        let extra = (1.0 - w) * (1.0 - w) / (w * (2.0 - w));
        // The synthetic-noise term is absent (not 0·∞) at w = 1.
        let cross = if extra > 0.0 { extra * comp.cross_variance } else { 0.0 };
        Ok(BiasVariance { bias: comp.bias, variance: scale_variance(self.sigma2, comp.single_variance + cross) })
    }

    pub(crate) fn limit_unchecked(&mut self, lambda: f64, w: f64) -> BiasVariance {
        let comp = self.components(lambda, w);
        BiasVariance { bias: comp.bias, variance: scale_variance(self.sigma2, c(w) * comp.cross_variance) }
    }

    /// Solves `κ(x)` warm-started from `cache`, and refreshes the cache.
    fn kappa_cached(solver: &KappaSolver<'_>, cache: &mut Option<(f64, KappaRoot)>, x: f64) -> f64 {
        let hint = cache.and_then(|(x0, root)| (root.slope > 0.0).then(|| root.kappa + (x - x0) / root.slope));
        let root = solver.solve(x, hint);
        *cache = Some((x, root));
        root.kappa
    }

    fn components(&mut self, lambda: f64, w: f64) -> Components {
        let x_a = lambda / w;
        let ka = Self::kappa_cached(&self.solver, &mut self.cache_a, x_a);
        // At w = 1 both penalties coincide; skip the second solve (and keep its cache
        // untouched, it stays a good hint for nearby w < 1).
        let kb = if w < 1.0 { Self::kappa_cached(&self.solver, &mut self.cache_b, lambda / (2.0 - w)) } else { ka };
        let (taus, ps) = self.solver.positive_atoms();
        // One pass over H, in terms of the filter factors u = τ/(τ+κ), v = κ/(τ+κ) ∈ [0, 1]
        // (no spurious under/overflow for extreme κ):
        //   D2× = γ∫ua·ub,  1 − D2× = (1−γM) + γ∫(va + ua·vb),
        //   D2(κa) = γ∫ua², 1 − D2(κa) = (1−γM) + γ∫va(1 + ua),
        // (the `1 − …` are then formed by `one_minus`, which picks the better-conditioned
        // of the two forms), and, if G = H, the bias integral κa²∫τ/(τ+κa)² dG = ∫τ·va² dG.
        let [d2x, d2x_c, d2a, d2a_c, bias_h] = atom_sums(taus, ps, |t, p| {
            let ia = 1.0 / (t + ka);
            let ib = 1.0 / (t + kb);
            let (ua, va) = (t * ia, ka * ia);
            let (ub, vb) = (t * ib, kb * ib);
            let pua = p * ua;
            let pva = p * va;
            [pua * ub, pva + pua * vb, pua * ua, pva * (1.0 + ua), pva * va * t]
        });
        let gamma = self.solver.gamma();
        let base = self.solver.one_minus_gm();
        let bias_integral = if self.fused {
            bias_h
        } else {
            let [s] = atom_sums(self.g_taus, self.g_ps, |t, q| {
                let v = ka / (t + ka);
                [q * t * v * v]
            });
            s
        };
        let (one_minus_d2a, _) = one_minus(gamma, base, d2a, d2a_c);
        let (one_minus_d2x, _) = one_minus(gamma, base, d2x, d2x_c);
        // κa = 0 only in the under-parametrised ridgeless case, where the bias vanishes
        // (the Σ-norm of the null-space component is 0); this also avoids 0/0 at γM = 1.
        let bias = if ka > 0.0 && self.r2 > 0.0 { self.r2 * bias_integral / one_minus_d2a } else { 0.0 };
        let ratio = |d: f64, om: f64| if om > 0.0 { d / om } else { f64::INFINITY };
        Components {
            bias,
            single_variance: ratio(gamma * d2a, one_minus_d2a),
            cross_variance: ratio(gamma * d2x, one_minus_d2x),
        }
    }
}

/// Stationary ridge risk with fixed real labels for general `(H, G)` (docs/fixed-labels.md §3):
/// `R_∞ = B(λ/w) + V(λ/w) + (1−w)²/(w(2−w)) · σ² D2×/(1 − D2×)`, i.e. ridge at the inflated
/// penalty `λ/w` on `y_0` plus the noise injected by the synthetic labels. At `λ = 0` this is
/// `B + V/(w(2−w))`.
///
/// # Errors
/// As [`ridge_mixing_limit`].
pub fn fixed_labels_ridge_limit(
    h: &Spectrum,
    g: &Spectrum,
    gamma: f64,
    r2: f64,
    sigma2: f64,
    lambda: f64,
    w: f64,
) -> Result<BiasVariance, TheoryError> {
    RidgeMixingEvaluator::new(h, g, gamma, r2, sigma2)?.fixed_labels_limit(lambda, w)
}

/// Isotropic min-norm risk with the real labels `y_0` reused at every iteration, after `t`
/// iterations (docs/fixed-labels.md §3): `B + a_t V` with
/// `a_t = 1 + (1−w)²(1 − (1−w)^{2t})/(w(2−w))` ([`crate::mixing::fixed_labels_factor`]).
/// `w = 0` (pure self-training) is allowed: `a_t = 1 + t`.
///
/// # Errors
/// As [`min_norm_isotropic`], and `w ∈ [0, 1]`.
pub fn fixed_labels_min_norm_isotropic(
    gamma: f64,
    r2: f64,
    sigma2: f64,
    w: f64,
    t: u32,
) -> Result<BiasVariance, TheoryError> {
    unit_interval("w", w)?;
    let mn = min_norm_isotropic(gamma, r2, sigma2)?;
    Ok(BiasVariance { bias: mn.bias, variance: inflate(mn.variance, fixed_labels_factor(w, t)) })
}

/// `t → ∞` limit of [`fixed_labels_min_norm_isotropic`]: `B + V/(w(2−w))` (docs/fixed-labels.md §3).
///
/// # Errors
/// As [`min_norm_isotropic`], and `w ∈ (0, 1]`.
pub fn fixed_labels_min_norm_isotropic_limit(
    gamma: f64,
    r2: f64,
    sigma2: f64,
    w: f64,
) -> Result<BiasVariance, TheoryError> {
    mixing_weight("w", w)?;
    let mn = min_norm_isotropic(gamma, r2, sigma2)?;
    Ok(BiasVariance { bias: mn.bias, variance: inflate(mn.variance, fixed_labels_factor_limit(w)) })
}

/// Exact finite-`n` expected min-norm risk `D_t` with fresh isotropic Gaussian covariates at
/// every iteration and mixing weight `w` (docs/fresh-covariates.md §3):
/// `D_t = (1−w)²(n/p) D_{t−1} + r²(1 − n/p) + (w² + (1−w)²)σ² n/(p−n−1)`,
/// `D_0 = r²(1 − n/p) + σ² n/(p−n−1)`. Evaluated in closed form
/// `D_t = ρ^t D_0 + K(1 − ρ^t)/(1 − ρ)`, `ρ = (1−w)²n/p`.
///
/// # Errors
/// [`TheoryError::OutOfDomain`] unless `p > n + 1` (the expected variance is finite only
/// then); [`TheoryError::InvalidParameter`] for `n = 0`, negative `r²`, `σ²` or `w ∉ [0, 1]`.
pub fn fresh_covariates_isotropic(
    n: usize,
    p: usize,
    r2: f64,
    sigma2: f64,
    w: f64,
    t: u32,
) -> Result<f64, TheoryError> {
    if n == 0 {
        return Err(invalid("n", 0.0, "must be >= 1"));
    }
    if p <= n + 1 {
        return Err(TheoryError::OutOfDomain { reason: "fresh-covariate recursion requires p > n + 1" });
    }
    non_negative("r2", r2)?;
    non_negative("sigma2", sigma2)?;
    unit_interval("w", w)?;
    let (nf, pf) = (n as f64, p as f64);
    let bias = r2 * (1.0 - nf / pf);
    let var = sigma2 * nf / (pf - nf - 1.0);
    let d0 = bias + var;
    if t == 0 {
        return Ok(d0);
    }
    let rho = (1.0 - w) * (1.0 - w) * nf / pf;
    let k = bias + (w * w + (1.0 - w) * (1.0 - w)) * var;
    let rho_t = rho.powf(f64::from(t));
    // 1 − ρ^t without cancellation; ρ ≤ n/p < 1 so 1 − ρ is never small.
    let one_minus_rho_t = if rho > 0.0 { -(f64::from(t) * rho.ln()).exp_m1() } else { 1.0 };
    Ok(rho_t * d0 + k * one_minus_rho_t / (1.0 - rho))
}

/// Proportional limit of [`fresh_covariates_isotropic`] as `t → ∞` (docs/fresh-covariates.md §5):
/// `D_∞ = [r²(1 − 1/γ) + (w² + (1−w)²)σ²/(γ−1)] / (1 − (1−w)²/γ)`. At `w = 0` it equals
/// `r² + σ²γ/(γ−1)²`: bounded, but no better than the null predictor.
///
/// # Errors
/// [`TheoryError::OutOfDomain`] unless `γ > 1`; invalid `r²`, `σ²`, `w ∉ [0, 1]`.
pub fn fresh_covariates_isotropic_limit(gamma: f64, r2: f64, sigma2: f64, w: f64) -> Result<f64, TheoryError> {
    partial_labels_limit(gamma, r2, sigma2, w, 1.0)
}

/// Limit risk with fresh covariates when only a fraction `π` of the rows gets the mixed
/// real label and the rest only the synthetic one (docs/partial-labels.md §3):
/// `D_∞ = [r²(1 − 1/γ) + νσ²/(γ−1)]/(1 − q)`, `q = (d2 − d1²/γ)/(γ − 1)`,
/// `d1 = π(1−w) + (1−π)`, `d2 = π(1−w)² + (1−π)`, `ν = π(w² + (1−w)²) + (1−π)`.
/// `π = 1` is B.(ii); `π = 0` collapses to `r² + σ²γ/(γ−1)²`.
///
/// # Errors
/// [`TheoryError::OutOfDomain`] unless `γ > 1`; invalid `r²`, `σ²`, `w ∉ [0,1]`, `π ∉ [0,1]`.
pub fn partial_labels_limit(gamma: f64, r2: f64, sigma2: f64, w: f64, pi: f64) -> Result<f64, TheoryError> {
    validate_common(gamma, r2, sigma2)?;
    unit_interval("w", w)?;
    unit_interval("pi", pi)?;
    if gamma <= 1.0 {
        return Err(TheoryError::OutOfDomain { reason: "fresh-covariate limits require gamma > 1" });
    }
    // The stationary value of the limit step with equal real and synthetic noise.
    crate::fresh::fresh_stationary(crate::fresh::fresh_limit_step(gamma, pi, w, sigma2, sigma2)?, r2)
}

/// Node count cap for [`isotropic_path`]'s quadrature (see its docs).
const MAX_QUADRATURE_NODES: usize = 1 << 21;

/// Asymptotic isotropic risk path `risk_0, …, risk_T` for an arbitrary schedule
/// (docs/asymptotics.md §6): the exact per-direction recursion of docs/spectral-recursion.md §3 run on the Marchenko–Pastur law.
///
/// Per spectral point `s`, with `a = s/(s+λ)`: mean multiplier `g_0 = a`,
/// `g_t = (1−w_t) a g_{t−1} + w_t a`; variance (in units of `s/(s+λ)²`) `v_0 = σ²`,
/// `v_t = (1−w_t)² a² v_{t−1} + (w_t² + (1−w_t)²)σ²`; then
/// `risk_t = r²[∫(1−g_t)² dF_ac + (1 − 1/γ)₊] + γ∫ s/(s+λ)² v_t dF_ac`.
/// Synthetic noise has the same variance as real noise. `weights[0]` is ignored (the first
/// fit uses real labels only); the result has `weights.len()` entries.
///
/// For `λ = 0`, `a ≡ 1` makes `g_t ≡ 1` and `v_t = a_t σ²` constant in `s`, so the path is
/// exactly `B + a_t V` ([`crate::mixing::variance_factors`], [`min_norm_isotropic`]) and is
/// returned in that closed form.
///
/// **Quadrature** (λ > 0). With `s = (1+γ) + 2√γ cos θ` the MP density becomes
/// `dF_ac = 2 sin²θ / (π s) dθ` on `θ ∈ (0, π)`: the square-root edges disappear and the
/// integrand is an even, 2π-periodic, analytic function of `θ`, for which the midpoint rule
/// converges geometrically, with error `~e^{−2Nρ}` where `ρ` is the distance of the nearest
/// complex singularity from the real `θ` axis. The bias is written as
/// `∫(1−g)² dF_ac = F_ac(R) − ∫(2g − g²) dF_ac` and `(2g − g²)/s = ĝ(2 − aĝ)/(s+λ)` with
/// `ĝ = g/a`, which removes the pole of the density at `s = 0`; every integrand then has its
/// only singularity at `s = −λ`, i.e. `ρ = acosh(1 + (s₋ + λ)/(2√γ))`, `s₋ = (1−√γ)²`.
/// `N = ⌈25/ρ⌉` nodes (at least 64) give `e^{−50}`-level truncation error. Near `γ = 1` with
/// tiny `λ` this is capped at 2²¹ nodes, beyond which accuracy degrades gracefully.
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0`, `r², σ², λ ≥ 0` are finite and every
/// `w_t` (`t ≥ 1`) lies in `[0, 1]`.
pub fn isotropic_path(gamma: f64, r2: f64, sigma2: f64, lambda: f64, weights: &[f64]) -> Result<Vec<f64>, TheoryError> {
    validate_common(gamma, r2, sigma2)?;
    non_negative("lambda", lambda)?;
    for &w in weights.iter().skip(1) {
        unit_interval("weights[t]", w)?;
    }
    if lambda <= 0.0 {
        let mn = min_norm_isotropic(gamma, r2, sigma2)?;
        return Ok(crate::mixing::variance_factors(weights)
            .into_iter()
            .map(|a| mn.bias + inflate(mn.variance, a))
            .collect());
    }
    Ok(isotropic_path_quadrature(gamma, r2, sigma2, lambda, weights))
}

/// The quadrature of [`isotropic_path`], also valid at `λ = 0` for `γ ≠ 1` (used by the tests
/// to check it against the closed form).
fn isotropic_path_quadrature(gamma: f64, r2: f64, sigma2: f64, lambda: f64, weights: &[f64]) -> Vec<f64> {
    let steps = weights.len();
    if steps == 0 {
        return Vec::new();
    }
    let sqrt_g = gamma.sqrt();
    let center = 1.0 + gamma;
    let half_width = 2.0 * sqrt_g;
    let lower_edge = (1.0 - sqrt_g) * (1.0 - sqrt_g);
    // acosh(1 + y) = ln(1 + y + √(y(2+y))), accurate for small y.
    let y = (lower_edge + lambda) / half_width;
    let rho = (y + (y * (2.0 + y)).sqrt()).ln_1p();
    let nodes = if rho > 0.0 {
        (25.0 / rho).ceil().clamp(64.0, MAX_QUADRATURE_NODES as f64) as usize
    } else {
        MAX_QUADRATURE_NODES
    };
    let nf = nodes as f64;
    let ac_mass = (1.0 / gamma).min(1.0);

    // Per-t accumulators of ∫(2g − g²) dF_ac and ∫ s/(s+λ)² v_t dF_ac.
    let mut signal = vec![0.0; steps];
    let mut noise = vec![0.0; steps];
    for k in 0..nodes {
        let theta = (k as f64 + 0.5) * std::f64::consts::PI / nf;
        let (sin, cos) = theta.sin_cos();
        let s = center + half_width * cos;
        // dF_ac = u/s with u = h² sin²θ/(2γN) per node; the 1/s is folded into the integrands.
        let u = half_width * half_width * sin * sin / (2.0 * gamma * nf);
        let inv = 1.0 / (s + lambda);
        let a = s * inv;
        let mut g_hat = 1.0; // ĝ_0 = g_0/a = 1
        let mut v = sigma2;
        for (t, &w) in weights.iter().enumerate() {
            if t > 0 {
                let keep = 1.0 - w;
                g_hat = keep * a * g_hat + w;
                v = keep * keep * a * a * v + (w * w + keep * keep) * sigma2;
            }
            signal[t] += u * g_hat * (2.0 - a * g_hat) * inv;
            noise[t] += u * v * inv * inv;
        }
    }
    let atom = (1.0 - 1.0 / gamma).max(0.0);
    signal.iter().zip(&noise).map(|(sg, nz)| r2 * ((ac_mass - sg) + atom) + gamma * nz).collect()
}

/// Exact expected downstream error after `generations` OLS generators (docs/chains.md §2, P2):
/// `E_test = σ² d/(T − d − 1) + n σ0² d/(T0 − d − 1)`: linear growth in the number of
/// generations `n`. Gaussian design, `Σ` arbitrary (the OLS variance does not depend on it).
///
/// # Errors
/// [`TheoryError::OutOfDomain`] unless `T ≥ d + 2` and (when `generations > 0`) `T0 ≥ d + 2`;
/// [`TheoryError::InvalidParameter`] for `d = 0` or negative variances.
pub fn chain_ols_error(
    d: usize,
    t_samples: usize,
    t0: usize,
    sigma2: f64,
    sigma0_2: f64,
    generations: u32,
) -> Result<f64, TheoryError> {
    if d == 0 {
        return Err(invalid("d", 0.0, "must be >= 1"));
    }
    non_negative("sigma2", sigma2)?;
    non_negative("sigma0_2", sigma0_2)?;
    if t_samples < d + 2 {
        return Err(TheoryError::OutOfDomain { reason: "OLS downstream error requires T >= d + 2" });
    }
    let df = d as f64;
    let clean = sigma2 * df / (t_samples as f64 - df - 1.0);
    if generations == 0 {
        return Ok(clean);
    }
    Ok(clean + f64::from(generations) * generator_noise(d, t0, sigma0_2)?)
}

/// `σ0² d/(T0 − d − 1)`: the error one OLS generator adds (docs/chains.md §2).
fn generator_noise(d: usize, t0: usize, sigma0_2: f64) -> Result<f64, TheoryError> {
    if t0 < d + 2 {
        return Err(TheoryError::OutOfDomain { reason: "OLS generators require T0 >= d + 2" });
    }
    let df = d as f64;
    Ok(sigma0_2 * df / (t0 as f64 - df - 1.0))
}

/// Parameters of P2's generator chain with a ridge downstream model (docs/chains.md §4).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainSetup {
    /// Dimension `d`.
    pub d: usize,
    /// Downstream sample size `T`.
    pub t_samples: usize,
    /// Sample size `T0` of every generator.
    pub t0: usize,
    /// `‖w0‖²`.
    pub r2: f64,
    /// Downstream label-noise variance `σ²`.
    pub sigma2: f64,
    /// Generator label-noise variance `σ0²`.
    pub sigma0_2: f64,
    /// Number of generations `n` (0 = clean data).
    pub generations: u32,
}

/// Downstream test error split into the clean ridge risk and the model-collapse term.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ChainRisk {
    /// `E_test^clean(λ)`: ordinary ridge risk on clean data.
    pub clean: f64,
    /// Extra error carried by the `n` generations.
    pub collapse: f64,
}

impl ChainRisk {
    /// `clean + collapse`.
    #[must_use]
    pub fn total(&self) -> f64 {
        self.clean + self.collapse
    }
}

/// Isotropic ridge downstream error after `n` OLS generators (docs/chains.md §4, closed form):
/// with `φ = d/T` and `m, m'` the Marchenko–Pastur transforms at `−λ` with ratio `φ`,
/// `E_test = r²λ²m' + σ²φ(m − λm') + nσ0² d/(T0−d−1) · (1 − 2λm + λ²m')`.
///
/// The three brackets are evaluated in the cancellation-free forms `φ(λ+γφ)/√D`,
/// `ψ/√D` and `ψ((1−φ)² + 2λ(1+φ))/((√D+λ)√D)` (see the `spectrum` module); the last one,
/// `∫s²/(s+λ)² dF`, is the fraction of the generators' error that survives the ridge filter.
///
/// # Errors
/// [`TheoryError::OutOfDomain`] when `generations > 0` and `T0 < d + 2`;
/// [`TheoryError::InvalidParameter`] for `d = 0`, `T = 0`, negative variances or `λ`.
pub fn chain_ridge_isotropic(setup: &ChainSetup, lambda: f64) -> Result<ChainRisk, TheoryError> {
    if setup.d == 0 {
        return Err(invalid("d", 0.0, "must be >= 1"));
    }
    if setup.t_samples == 0 {
        return Err(invalid("t_samples", 0.0, "must be >= 1"));
    }
    non_negative("r2", setup.r2)?;
    non_negative("sigma2", setup.sigma2)?;
    non_negative("sigma0_2", setup.sigma0_2)?;
    non_negative("lambda", lambda)?;
    let phi = setup.d as f64 / setup.t_samples as f64;
    let clean = ridge_mixing_isotropic(phi, setup.r2, setup.sigma2, lambda, 1.0)?.total();
    let collapse = if setup.generations == 0 {
        0.0
    } else {
        f64::from(setup.generations)
            * generator_noise(setup.d, setup.t0, setup.sigma0_2)?
            * mp_squared_filter(phi, lambda)
    };
    Ok(ChainRisk { clean, collapse })
}

/// Generator error with over-parametrised generators (`T0 < d`), fresh isotropic designs
/// (docs/chains.md §3): `E‖ŵ_n − w0‖² = (1 − ρ^n)[r² + σ0² T0/((d − T0 − 1)(1 − ρ))]`,
/// `ρ = T0/d`. Even noiseless (`σ0 = 0`) the error tends exponentially fast to the null risk
/// `r²`.
///
/// # Errors
/// [`TheoryError::OutOfDomain`] unless `d > T0 + 1`; [`TheoryError::InvalidParameter`] for
/// `T0 = 0` or negative `r²`, `σ0²`.
pub fn chain_overparam_error(
    d: usize,
    t0: usize,
    r2: f64,
    sigma0_2: f64,
    generations: u32,
) -> Result<f64, TheoryError> {
    if t0 == 0 {
        return Err(invalid("t0", 0.0, "must be >= 1"));
    }
    if d <= t0 + 1 {
        return Err(TheoryError::OutOfDomain { reason: "over-parametrised chain requires d > T0 + 1" });
    }
    non_negative("r2", r2)?;
    non_negative("sigma0_2", sigma0_2)?;
    if generations == 0 {
        return Ok(0.0);
    }
    let (df, tf) = (d as f64, t0 as f64);
    let rho = tf / df;
    let one_minus_rho_n = -(f64::from(generations) * rho.ln()).exp_m1();
    Ok(one_minus_rho_n * (r2 + sigma0_2 * tf / ((df - tf - 1.0) * (1.0 - rho))))
}

/// Isotropic min-norm risk after `t` iterations of fresh-label mixing with constant `w`
/// (docs/fresh-labels.md §3): `B + c_t(w)·V` in the proportional limit. Convenience wrapper around
/// [`crate::mixing::c_t`] and [`min_norm_isotropic`].
///
/// # Errors
/// As [`min_norm_isotropic`], and `w ∈ [0, 1]`.
pub fn mixing_min_norm_isotropic_at(
    gamma: f64,
    r2: f64,
    sigma2: f64,
    w: f64,
    t: u32,
) -> Result<BiasVariance, TheoryError> {
    unit_interval("w", w)?;
    let mn = min_norm_isotropic(gamma, r2, sigma2)?;
    Ok(BiasVariance { bias: mn.bias, variance: inflate(mn.variance, c_t(w, t)) })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mixing::{GOLDEN_W, dynamic_weights, variance_factors};
    use approx::assert_relative_eq;

    fn iso() -> Result<Spectrum, TheoryError> {
        Spectrum::point_mass(1.0)
    }

    fn two_level() -> Result<Spectrum, TheoryError> {
        Spectrum::from_atoms(&[1.0, 4.0], &[0.5, 0.5])
    }

    #[test]
    fn min_norm_isotropic_values() -> Result<(), TheoryError> {
        let mn = min_norm_isotropic(2.0, 1.0, 1.0)?;
        assert_relative_eq!(mn.bias, 0.5);
        assert_relative_eq!(mn.variance, 1.0);
        let ols = min_norm_isotropic(0.5, 3.0, 2.0)?;
        assert_relative_eq!(ols.bias, 0.0);
        assert_relative_eq!(ols.variance, 2.0);
        let crit = min_norm_isotropic(1.0, 1.0, 1.0)?;
        assert!(crit.variance.is_infinite());
        assert_relative_eq!(crit.bias, 0.0);
        assert_relative_eq!(min_norm_isotropic(1.0, 1.0, 0.0)?.variance, 0.0);
        assert!(min_norm_isotropic(0.0, 1.0, 1.0).is_err());
        assert!(min_norm_isotropic(2.0, -1.0, 1.0).is_err());
        Ok(())
    }

    #[test]
    fn min_norm_finite_values() -> Result<(), TheoryError> {
        let f = min_norm_isotropic_finite(100, 300, 1.0, 1.0)?;
        assert_relative_eq!(f.bias, 2.0 / 3.0, max_relative = 1e-15);
        assert_relative_eq!(f.variance, 100.0 / 199.0, max_relative = 1e-15);
        let ols = min_norm_isotropic_finite(300, 100, 1.0, 2.0)?;
        assert_relative_eq!(ols.bias, 0.0);
        assert_relative_eq!(ols.variance, 200.0 / 199.0, max_relative = 1e-15);
        for (n, p) in [(100, 101), (100, 100), (100, 99)] {
            assert!(min_norm_isotropic_finite(n, p, 1.0, 1.0)?.variance.is_infinite());
        }
        assert!(min_norm_isotropic_finite(0, 1, 1.0, 1.0).is_err());
        // Proportional limit: n = 10⁴, p = 2·10⁴ → B = ½, V ≈ 1.
        let big = min_norm_isotropic_finite(10_000, 20_000, 1.0, 1.0)?;
        let lim = min_norm_isotropic(2.0, 1.0, 1.0)?;
        assert_relative_eq!(big.total(), lim.total(), max_relative = 1e-3);
        Ok(())
    }

    #[test]
    fn general_min_norm_matches_isotropic() -> Result<(), TheoryError> {
        let h = iso()?;
        for &g in &[0.3, 0.9, 1.0 + 1e-6, 1.5, 2.0, 5.0] {
            let general = min_norm_limit(&h, &h, g, 1.3, 0.7)?;
            let cf = min_norm_isotropic(g, 1.3, 0.7)?;
            assert_relative_eq!(general.bias, cf.bias, max_relative = 1e-9, epsilon = 1e-15);
            assert_relative_eq!(general.variance, cf.variance, max_relative = 1e-9);
        }
        assert!(min_norm_limit(&h, &h, 1.0, 1.0, 1.0)?.variance.is_infinite());
        Ok(())
    }

    #[test]
    fn two_level_min_norm_derivation() -> Result<(), TheoryError> {
        // H = G = ½δ1 + ½δ4, γ = 2 (docs/asymptotics.md §2 checkpoint spectrum, random effects G = H):
        // κ0 solves 1/(1+κ) + 4/(4+κ) = 1 ⇒ κ0 = 2; D2 = 2(½·1/9 + ½·16/36) = 5/9;
        // B = κ0²∫τ/(τ+κ0)²dG/(1−D2) = 4(1/18 + 1/18)/(4/9) = 1; V = (5/9)/(4/9) = 5/4.
        let h = two_level()?;
        let mn = min_norm_limit(&h, &h, 2.0, 1.0, 1.0)?;
        assert_relative_eq!(mn.bias, 1.0, max_relative = 1e-14);
        assert_relative_eq!(mn.variance, 1.25, max_relative = 1e-14);
        // Under-parametrised general H: OLS variance σ²γ/(1−γ) regardless of H.
        let ols = min_norm_limit(&h, &h, 0.25, 1.0, 1.0)?;
        assert_relative_eq!(ols.bias, 0.0);
        assert_relative_eq!(ols.variance, 1.0 / 3.0, max_relative = 1e-14);
        // With a zero atom: γM plays the role of γ.
        let hz = Spectrum::from_atoms(&[0.0, 1.0, 4.0], &[0.5, 0.25, 0.25])?;
        let z = min_norm_limit(&hz, &hz, 1.5, 1.0, 1.0)?;
        assert_relative_eq!(z.variance, 3.0, max_relative = 1e-14);
        assert_relative_eq!(z.bias, 0.0);
        Ok(())
    }

    #[test]
    fn small_lambda_reference_values() -> Result<(), TheoryError> {
        // docs/asymptotics.md §4: R_∞(1e−7, 0.618) = 1.118034 (isotropic γ = 2, r = σ = 1) — this is
        // B + V/φ = ½ + 1/φ — and 1.772542 for the two-level H: B + V/φ = 1 + 1.25/φ with the
        // values derived in `two_level_min_norm_derivation` (so the "two-level H" is
        // H = G = ½δ1 + ½δ4). The O(λ) correction is far below the 6-digit rounding.
        let h = iso()?;
        let r = ridge_mixing_limit(&h, &h, 2.0, 1.0, 1.0, 1e-7, 0.618)?.total();
        assert!((r - 1.118_034).abs() < 5e-7, "{r}");
        let r_iso = ridge_mixing_isotropic(2.0, 1.0, 1.0, 1e-7, 0.618)?.total();
        assert!((r_iso - 1.118_034).abs() < 5e-7, "{r_iso}");
        let t = two_level()?;
        let r2l = ridge_mixing_limit(&t, &t, 2.0, 1.0, 1.0, 1e-7, 0.618)?.total();
        assert!((r2l - 1.772_542).abs() < 5e-7, "{r2l}");
        // and both are continuous at λ = 0 (min-norm limit B + c(w)V).
        let r0 = ridge_mixing_limit(&t, &t, 2.0, 1.0, 1.0, 0.0, 0.618)?.total();
        assert_relative_eq!(r0, 1.0 + 1.25 * c(0.618), max_relative = 1e-14);
        assert!((r0 - r2l).abs() < 1e-6);
        Ok(())
    }

    #[test]
    fn general_ridge_matches_isotropic_closed_form() -> Result<(), TheoryError> {
        let h = iso()?;
        let mut ev = RidgeMixingEvaluator::new(&h, &h, 1.0, 1.0, 1.0)?;
        for &g in &[0.5, 1.0 - 1e-6, 1.0, 1.0 + 1e-6, 1.5, 2.0] {
            for &lambda in &[1e-8, 1e-3, 0.1, 1.0, 10.0] {
                for &w in &[0.05, 0.3, GOLDEN_W, 0.9, 1.0 - 1e-10, 1.0] {
                    let general = ridge_mixing_limit(&h, &h, g, 1.7, 0.6, lambda, w)?;
                    let cf = ridge_mixing_isotropic(g, 1.7, 0.6, lambda, w)?;
                    assert_relative_eq!(general.bias, cf.bias, max_relative = 1e-9);
                    assert_relative_eq!(general.variance, cf.variance, max_relative = 1e-9);
                    if (g - 1.0).abs() < 1e-12 {
                        let e = ev.limit(lambda, w)?;
                        let direct = ridge_mixing_limit(&h, &h, 1.0, 1.0, 1.0, lambda, w)?;
                        assert_relative_eq!(e.total(), direct.total(), max_relative = 1e-12);
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn isotropic_closed_form_matches_theory_m_form() -> Result<(), TheoryError> {
        // docs/asymptotics.md §4 forms, evaluated naively where they are well conditioned.
        use crate::spectrum::{mp_m, mp_m_prime};
        for &g in &[0.5, 1.5, 2.0] {
            for &lambda in &[0.1, 1.0, 10.0] {
                for &w in &[0.3, GOLDEN_W, 0.9] {
                    let (a, b) = (lambda / w, lambda / (2.0 - w));
                    let (m1, m2) = (mp_m(g, a)?, mp_m(g, b)?);
                    let bias = a * a * mp_m_prime(g, a)?;
                    let var = g * (w * w + (1.0 - w) * (1.0 - w)) * ((2.0 - w) * m1 - w * m2)
                        / (2.0 * w * (1.0 - w) * (2.0 - w));
                    let cf = ridge_mixing_isotropic(g, 1.0, 1.0, lambda, w)?;
                    assert_relative_eq!(cf.bias, bias, max_relative = 1e-12);
                    assert_relative_eq!(cf.variance, var, max_relative = 1e-9);
                }
                // w = 1: B = r²λ²m'(−λ), V = σ²γ[m(−λ) − λm'(−λ)].
                let cf = ridge_mixing_isotropic(g, 1.0, 1.0, lambda, 1.0)?;
                let (m, mp) = (mp_m(g, lambda)?, mp_m_prime(g, lambda)?);
                assert_relative_eq!(cf.bias, lambda * lambda * mp, max_relative = 1e-12);
                assert_relative_eq!(cf.variance, g * (m - lambda * mp), max_relative = 1e-10);
                // Continuity across the docs' |1−w| < 1e−9 switch, which this form does not need.
                let near = ridge_mixing_isotropic(g, 1.0, 1.0, lambda, 1.0 - 1e-12)?;
                assert_relative_eq!(near.total(), cf.total(), max_relative = 1e-11);
            }
        }
        Ok(())
    }

    #[test]
    fn ridge_variance_difference_form() -> Result<(), TheoryError> {
        // docs/asymptotics.md §4: D2×/(1 − D2×) = (κ_a − κ_b)/(a − b) − 1 for general H.
        use crate::spectrum::{d2_cross, kappa};
        let h = Spectrum::from_atoms(&[0.2, 1.0, 3.0], &[0.3, 0.5, 0.2])?;
        let (g, lambda, w) = (1.7, 0.3, 0.55);
        let (a, b) = (lambda / w, lambda / (2.0 - w));
        let (ka, kb) = (kappa(&h, g, a)?, kappa(&h, g, b)?);
        let d = d2_cross(&h, g, ka, kb)?;
        assert_relative_eq!(d / (1.0 - d), (ka - kb) / (a - b) - 1.0, max_relative = 1e-10);
        let v = ridge_mixing_limit(&h, &h, g, 0.0, 1.0, lambda, w)?.variance;
        assert_relative_eq!(v, c(w) * d / (1.0 - d), max_relative = 1e-12);
        Ok(())
    }

    #[test]
    fn separate_g_matches_fused_path() -> Result<(), TheoryError> {
        // G given as a distinct object with the same atoms must give the fused result, and
        // a spiked G (docs/asymptotics.md §4) must weight the bias by ξ.
        let h = two_level()?;
        let g_copy = Spectrum::from_atoms(&[4.0, 1.0], &[0.5, 0.5])?;
        let mut fused = RidgeMixingEvaluator::new(&h, &h, 1.4, 2.0, 0.5)?;
        let mut sep = RidgeMixingEvaluator::new(&h, &g_copy, 1.4, 2.0, 0.5)?;
        let g_other = Spectrum::from_atoms(&[1.0, 4.0, 9.0], &[0.5, 0.5, 0.0])?;
        assert!(!h.same_atoms(&Spectrum::point_mass(1.0)?));
        for &(l, w) in &[(0.0, 0.7), (0.01, 0.6), (1.0, 1.0), (3.0, 0.8)] {
            assert_relative_eq!(fused.limit(l, w)?.total(), sep.limit(l, w)?.total(), max_relative = 1e-14);
            let o = ridge_mixing_limit(&h, &g_other, 1.4, 2.0, 0.5, l, w)?;
            assert_relative_eq!(o.total(), fused.limit(l, w)?.total(), max_relative = 1e-14);
        }
        // G = δ4 on a two-level H: bias integral is τ/(τ+κ)² at τ = 4 only.
        let spike = Spectrum::point_mass(4.0)?;
        let lambda = 0.5;
        let bv = ridge_mixing_limit(&h, &spike, 2.0, 1.0, 0.0, lambda, 1.0)?;
        let k = crate::spectrum::kappa(&h, 2.0, lambda)?;
        let d = crate::spectrum::d2(&h, 2.0, k)?;
        assert_relative_eq!(bv.bias, k * k * 4.0 / (4.0 + k).powi(2) / (1.0 - d), max_relative = 1e-13);
        assert_relative_eq!(bv.variance, 0.0);
        Ok(())
    }

    #[test]
    fn table_a5_values_at_reported_optima() -> Result<(), TheoryError> {
        // docs/asymptotics.md §4 table (isotropic, γ = 1.5, SNR = 1, σ = 1): R* at the reported w*.
        // The risk is flat at the optimum, so the 4-digit w* reproduces R* to ~1e-8.
        for (lambda, w, r_star) in [(0.1, 0.5936, 0.95065), (1.0, 0.7512, 0.69923), (10.0, 1.0, 0.86320)] {
            let r = ridge_mixing_isotropic(1.5, 1.0, 1.0, lambda, w)?.total();
            assert!((r - r_star).abs() < 5e-6, "λ = {lambda}: {r} vs {r_star}");
        }
        Ok(())
    }

    #[test]
    fn mixing_min_norm_reaches_b_plus_v_over_phi() -> Result<(), TheoryError> {
        let h = two_level()?;
        let r = mixing_limit_min_norm(&h, &h, 2.0, 1.0, 1.0, GOLDEN_W)?;
        assert_relative_eq!(r.total(), 1.0 + 1.25 * GOLDEN_W, max_relative = 1e-14);
        assert!(mixing_limit_min_norm(&h, &h, 2.0, 1.0, 1.0, 0.0).is_err());
        assert!(mixing_limit_min_norm(&h, &h, 2.0, 1.0, 1.0, 1.5).is_err());
        let at = mixing_min_norm_isotropic_at(2.0, 1.0, 1.0, GOLDEN_W, 1000)?;
        assert_relative_eq!(at.total(), 0.5 + GOLDEN_W, max_relative = 1e-14);
        Ok(())
    }

    #[test]
    fn fixed_labels_values() -> Result<(), TheoryError> {
        // docs/fixed-labels.md §3 examples, isotropic γ = 2, r = σ = 1.
        let h = iso()?;
        for (lambda, w, expected) in [(0.5, 0.8, 0.8806), (0.5, 1.0, 0.9020), (0.05, 0.8, 1.3414), (0.05, 1.0, 1.3381)]
        {
            let r = fixed_labels_ridge_limit(&h, &h, 2.0, 1.0, 1.0, lambda, w)?.total();
            assert!((r - expected).abs() < 5e-5, "λ = {lambda}, w = {w}: {r}");
        }
        // w = 1 is plain ridge, identical to the fresh-label formula at w = 1.
        let a = fixed_labels_ridge_limit(&h, &h, 2.0, 1.0, 1.0, 0.3, 1.0)?;
        let b = ridge_mixing_limit(&h, &h, 2.0, 1.0, 1.0, 0.3, 1.0)?;
        assert_relative_eq!(a.total(), b.total(), max_relative = 1e-14);
        // λ = 0: B + V/(w(2−w)), and the t-indexed min-norm version converges to it.
        let lim = fixed_labels_ridge_limit(&h, &h, 2.0, 1.0, 1.0, 0.0, GOLDEN_W)?.total();
        assert!((lim - 1.6708).abs() < 5e-5);
        let iso_lim = fixed_labels_min_norm_isotropic_limit(2.0, 1.0, 1.0, GOLDEN_W)?.total();
        assert_relative_eq!(lim, iso_lim, max_relative = 1e-12);
        let at = fixed_labels_min_norm_isotropic(2.0, 1.0, 1.0, GOLDEN_W, 500)?.total();
        assert_relative_eq!(at, iso_lim, max_relative = 1e-14);
        assert_relative_eq!(fixed_labels_min_norm_isotropic(2.0, 1.0, 1.0, 0.0, 4)?.total(), 0.5 + 5.0);
        Ok(())
    }

    #[test]
    fn isotropic_path_quadrature_reproduces_min_norm() -> Result<(), TheoryError> {
        // λ = 0 through the quadrature (the public function uses the closed form): must
        // reproduce B + a_t V for an arbitrary schedule.
        let weights = [1.0, 0.3, 0.9, GOLDEN_W, 0.0, 0.5, 1.0, 0.7];
        let a = variance_factors(&weights);
        for &g in &[0.25, 0.5, 0.8, 1.25, 1.5, 2.0, 4.0] {
            let q = isotropic_path_quadrature(g, 1.3, 0.8, 0.0, &weights);
            let mn = min_norm_isotropic(g, 1.3, 0.8)?;
            for (qt, at) in q.iter().zip(&a) {
                assert_relative_eq!(*qt, mn.bias + at * mn.variance, max_relative = 1e-11);
            }
        }
        Ok(())
    }

    #[test]
    fn isotropic_path_converges_to_stationary_limit() -> Result<(), TheoryError> {
        for &g in &[0.5, 1.0, 1.5, 2.0] {
            for &lambda in &[1e-4, 0.1, 1.0, 10.0] {
                for &w in &[0.3, GOLDEN_W, 1.0] {
                    // (1−w)^{2t} a^{2t} ≤ 0.7^{400}: fully converged.
                    let weights = vec![w; 400];
                    let path = isotropic_path(g, 1.0, 1.0, lambda, &weights)?;
                    let lim = ridge_mixing_isotropic(g, 1.0, 1.0, lambda, w)?.total();
                    let last = path.last().copied().unwrap_or(f64::NAN);
                    assert_relative_eq!(last, lim, max_relative = 1e-10);
                }
                // t = 0 is a single ridge fit.
                let p0 = isotropic_path(g, 1.0, 1.0, lambda, &[1.0])?;
                let ridge = ridge_mixing_isotropic(g, 1.0, 1.0, lambda, 1.0)?.total();
                assert_relative_eq!(p0[0], ridge, max_relative = 1e-10);
            }
        }
        Ok(())
    }

    #[test]
    fn isotropic_path_small_lambda_and_schedules() -> Result<(), TheoryError> {
        // λ → 0 is continuous: λ = 1e-9 is within O(λ) of B + a_t V, for the greedy schedule.
        let weights = dynamic_weights(12);
        let a = variance_factors(&weights);
        for &g in &[0.5, 2.0] {
            let mn = min_norm_isotropic(g, 1.0, 1.0)?;
            let p = isotropic_path(g, 1.0, 1.0, 1e-9, &weights)?;
            let p0 = isotropic_path(g, 1.0, 1.0, 0.0, &weights)?;
            for ((pt, p0t), at) in p.iter().zip(&p0).zip(&a) {
                assert_relative_eq!(*p0t, mn.bias + at * mn.variance, max_relative = 1e-15);
                assert_relative_eq!(*pt, *p0t, max_relative = 1e-6);
            }
        }
        assert!(isotropic_path(1.0, 1.0, 1.0, 0.0, &[1.0, 0.5])?[1].is_infinite());
        assert!(isotropic_path(2.0, 1.0, 1.0, 0.1, &[]).map(|v| v.is_empty())?);
        assert!(isotropic_path(2.0, 1.0, 1.0, 0.1, &[1.0, 1.5]).is_err());
        Ok(())
    }

    #[test]
    fn fresh_covariates_values() -> Result<(), TheoryError> {
        // docs/fresh-covariates.md §5, γ = 2, r = σ = 1: D_∞(1) = 1.5, D_∞(1/φ) = 1.108746, w → 0: 3.
        assert_relative_eq!(fresh_covariates_isotropic_limit(2.0, 1.0, 1.0, 1.0)?, 1.5);
        let g = fresh_covariates_isotropic_limit(2.0, 1.0, 1.0, GOLDEN_W)?;
        assert!((g - 1.108_746).abs() < 5e-7, "{g}");
        assert_relative_eq!(fresh_covariates_isotropic_limit(2.0, 1.0, 1.0, 0.0)?, 3.0);
        // Optimum w* = 0.6085, D* = 1.108495 (by a fine scan).
        let (mut best_w, mut best) = (0.0, f64::INFINITY);
        for i in 5000..7000 {
            let w = f64::from(i) * 1e-4;
            let d = fresh_covariates_isotropic_limit(2.0, 1.0, 1.0, w)?;
            if d < best {
                (best_w, best) = (w, d);
            }
        }
        assert!((best_w - 0.6085).abs() < 1e-4 && (best - 1.108_495).abs() < 5e-7);
        // Finite n: the recursion, its closed form, and the proportional limit.
        let (n, p) = (50, 100);
        let mut d = fresh_covariates_isotropic(n, p, 1.0, 1.0, 0.7, 0)?;
        for t in 1..40 {
            d = 0.09 * 0.5 * d + 0.5 + (0.49 + 0.09) * 50.0 / 49.0;
            assert_relative_eq!(fresh_covariates_isotropic(n, p, 1.0, 1.0, 0.7, t)?, d, max_relative = 1e-13);
        }
        let big = fresh_covariates_isotropic(100_000, 200_000, 1.0, 1.0, GOLDEN_W, 1000)?;
        assert_relative_eq!(big, g, max_relative = 1e-4);
        assert!(fresh_covariates_isotropic(10, 11, 1.0, 1.0, 0.5, 3).is_err());
        assert!(fresh_covariates_isotropic_limit(1.0, 1.0, 1.0, 0.5).is_err());
        Ok(())
    }

    #[test]
    fn partial_labels_values() -> Result<(), TheoryError> {
        // docs/partial-labels.md §3, γ = 2, r = σ = 1: π = ½, w = 1 → 2.400; π = ½, w = 1/φ → 1.8984;
        // π = 0 → 3.000; π = 1 recovers B.(ii).
        assert_relative_eq!(partial_labels_limit(2.0, 1.0, 1.0, 1.0, 0.5)?, 2.4, max_relative = 1e-15);
        assert!((partial_labels_limit(2.0, 1.0, 1.0, GOLDEN_W, 0.5)? - 1.8984).abs() < 5e-5);
        assert_relative_eq!(partial_labels_limit(2.0, 1.0, 1.0, 0.4, 0.0)?, 3.0, max_relative = 1e-15);
        // Dropping synthetic-only rows instead: B.(ii) with γ' = γ/π = 4 gives
        // D(w=1) = 1.083 (docs/partial-labels.md §4).
        assert!((fresh_covariates_isotropic_limit(4.0, 1.0, 1.0, 1.0)? - 1.0833).abs() < 5e-5);
        assert!(partial_labels_limit(2.0, 1.0, 1.0, 0.5, 1.5).is_err());
        Ok(())
    }

    #[test]
    fn chain_ols_values() -> Result<(), TheoryError> {
        // docs/chains.md §2: d = 100, T = T0 = 400, σ = σ0 = 1: (1 + n)·100/299.
        for (n, expected) in [(0, 0.334_448), (1, 0.668_896), (5, 2.006_689), (10, 3.678_930)] {
            let e = chain_ols_error(100, 400, 400, 1.0, 1.0, n)?;
            assert!((e - expected).abs() < 5e-7, "n = {n}: {e}");
        }
        assert!(chain_ols_error(100, 101, 400, 1.0, 1.0, 0).is_err());
        assert!(chain_ols_error(100, 400, 101, 1.0, 1.0, 1).is_err());
        assert!(chain_ols_error(100, 400, 101, 1.0, 1.0, 0).is_ok());
        Ok(())
    }

    #[test]
    fn chain_ridge_values() -> Result<(), TheoryError> {
        // docs/chains.md §4: d = 200, T = 400, T0 = 600, r = σ = σ0 = 1, n = 3:
        // λ = 1 → 0.794716 (clean 0.455214 + collapse 0.339502); λ = 0.1 → 1.713131.
        let setup = ChainSetup { d: 200, t_samples: 400, t0: 600, r2: 1.0, sigma2: 1.0, sigma0_2: 1.0, generations: 3 };
        let one = chain_ridge_isotropic(&setup, 1.0)?;
        assert!((one.clean - 0.455_214).abs() < 5e-7, "{one:?}");
        assert!((one.collapse - 0.339_502).abs() < 5e-7, "{one:?}");
        assert!((one.total() - 0.794_716).abs() < 5e-7);
        let tenth = chain_ridge_isotropic(&setup, 0.1)?;
        assert!((tenth.total() - 1.713_131).abs() < 5e-7, "{tenth:?}");
        // λ = 0 with φ < 1: the OLS result of docs/chains.md §2 in the proportional limit
        // (σ²φ/(1−φ) = 1 for the clean part; the collapse term is exactly n σ0² d/(T0−d−1)).
        let zero = chain_ridge_isotropic(&setup, 0.0)?;
        assert_relative_eq!(zero.clean, 1.0, max_relative = 1e-14);
        assert_relative_eq!(zero.collapse, 3.0 * 200.0 / 399.0, max_relative = 1e-14);
        // The collapse factor 1 − 2λm + λ²m' against the naive MP expression.
        use crate::spectrum::{mp_m, mp_m_prime};
        let (m, mp) = (mp_m(0.5, 1.0)?, mp_m_prime(0.5, 1.0)?);
        assert_relative_eq!(one.collapse, 3.0 * 200.0 / 399.0 * (1.0 - 2.0 * m + mp), max_relative = 1e-12);
        Ok(())
    }

    #[test]
    fn chain_overparam_values() -> Result<(), TheoryError> {
        // docs/chains.md §3, d = 200, T0 = 100: σ0 = 0 → 1 − 2^{-n}; σ0 = 0.5: 0.7525, 1.3169.
        for (n, e) in [(1, 0.5), (2, 0.75), (4, 0.9375)] {
            assert_relative_eq!(chain_overparam_error(200, 100, 1.0, 0.0, n)?, e, max_relative = 1e-14);
        }
        assert!((chain_overparam_error(200, 100, 1.0, 0.25, 1)? - 0.7525).abs() < 5e-5);
        assert!((chain_overparam_error(200, 100, 1.0, 0.25, 3)? - 1.3169).abs() < 5e-5);
        assert_relative_eq!(chain_overparam_error(200, 100, 1.0, 0.25, 0)?, 0.0);
        assert!(chain_overparam_error(100, 100, 1.0, 0.25, 1).is_err());
        Ok(())
    }

    /// Textbook evaluation of docs/asymptotics.md §4 for general (H, G): κ by 200 bisection steps on
    /// the naive fixed-point equation, then the formulas exactly as written. Only used in
    /// well-conditioned regimes, as an independent reference.
    fn naive_ridge_mixing(h: &Spectrum, g: &Spectrum, gamma: f64, r2: f64, sigma2: f64, lambda: f64, w: f64) -> f64 {
        let kappa = |x: f64| {
            let (mut lo, mut hi) = (0.0, x + gamma * h.mean() + 1.0);
            for _ in 0..200 {
                let mid = 0.5 * (lo + hi);
                if mid * (1.0 - gamma * h.integrate(|t| t / (t + mid))) - x > 0.0 {
                    hi = mid;
                } else {
                    lo = mid;
                }
            }
            0.5 * (lo + hi)
        };
        let (ka, kb) = (kappa(lambda / w), kappa(lambda / (2.0 - w)));
        let d2a = gamma * h.integrate(|t| t * t / ((t + ka) * (t + ka)));
        let d2x = gamma * h.integrate(|t| t * t / ((t + ka) * (t + kb)));
        let bias = r2 * ka * ka * g.integrate(|t| t / ((t + ka) * (t + ka))) / (1.0 - d2a);
        bias + c(w) * sigma2 * d2x / (1.0 - d2x)
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(200))]
        #[test]
        fn general_formula_matches_naive_reference(
            taus in proptest::collection::vec(0.01_f64..100.0, 1..10),
            g_weights in proptest::collection::vec(0.0_f64..1.0, 10),
            gamma in 0.2_f64..5.0,
            r2 in 0.0_f64..5.0,
            log_lambda in -3.0_f64..2.0,
            w in 0.05_f64..=1.0,
        ) {
            let fail = |e: TheoryError| proptest::test_runner::TestCaseError::fail(e.to_string());
            let h = Spectrum::from_atoms(&taus, &vec![1.0; taus.len()]).map_err(fail)?;
            let mut gw = g_weights[..taus.len()].to_vec();
            gw[0] += 0.1; // keep the weights from summing to zero
            let g = Spectrum::from_atoms(&taus, &gw).map_err(fail)?;
            let lambda = 10f64.powf(log_lambda);
            let fast = ridge_mixing_limit(&h, &g, gamma, r2, 1.0, lambda, w).map_err(fail)?.total();
            let naive = naive_ridge_mixing(&h, &g, gamma, r2, 1.0, lambda, w);
            proptest::prop_assert!((fast - naive).abs() <= 1e-9 * naive, "{fast} vs {naive}");
        }
    }
}
