//! Fresh covariates at every iteration (docs/fresh-covariates.md, docs/partial-labels.md):
//! the expected risk obeys a scalar recursion `D_t = q_t D_{t−1} + b_t r² + v_t`, because
//! a fresh Gaussian design sees the previous error only through its norm.
//!
//! * [`fresh_exact_step`]: the exact finite-`n` coefficients, for min-norm with isotropic
//!   rows and `p > m + 1` (docs/partial-labels.md §2, docs/fresh-covariates.md §3) and for
//!   OLS with `m > p + 1` and any Σ (docs/fresh-covariates.md §4);
//! * [`fresh_limit_step`]: their proportional limits (docs/fresh-covariates.md §5,
//!   docs/partial-labels.md §3);
//! * [`FreshRidge`]: isotropic ridge, a two-dimensional recursion in `E‖δ‖²` and `E δᵀβ`
//!   with Marchenko–Pastur coefficients (docs/fresh-covariates.md §6).

use crate::error::{TheoryError, invalid, non_negative, positive, unit_interval};
use crate::spectrum::{mp_m, mp_m_prime};

/// One step of `D_t = q·D_{t−1} + bias·r² + noise`, `D_{−1} = 0`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreshStep {
    /// Feedback: `E‖A δ‖²_Σ = q ‖δ‖²_Σ` for the map `A` that carries the previous error.
    pub q: f64,
    /// Coefficient of `r² = ‖β‖²` (the part of β outside the new row space).
    pub bias: f64,
    /// The label noise passed through the fit.
    pub noise: f64,
}

impl FreshStep {
    /// `q·previous + bias·r2 + noise`.
    #[must_use]
    pub fn apply(&self, previous: f64, r2: f64) -> f64 {
        self.q * previous + self.bias * r2 + self.noise
    }
}

/// The labels of one iteration's `rows` fitted rows: `mixed` of them get
/// `w·y + (1 − w)·ỹ`, the other `rows − mixed` only `ỹ`; real noise variance `sigma2`,
/// synthetic `synthetic_sigma2`. The first fit (t = 0) is `w = 1`, `mixed = rows`.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreshRows {
    /// Rows fitted.
    pub rows: usize,
    /// Rows with a mixed real label.
    pub mixed: usize,
    /// Real-label weight.
    pub w: f64,
    /// σ².
    pub sigma2: f64,
    /// σ̃².
    pub synthetic_sigma2: f64,
}

impl FreshRows {
    fn validate(&self) -> Result<(), TheoryError> {
        if self.rows == 0 {
            return Err(invalid("rows", 0.0, "must be >= 1"));
        }
        if self.mixed > self.rows {
            return Err(invalid("mixed", self.mixed as f64, "must be at most rows"));
        }
        unit_interval("w", self.w)?;
        non_negative("sigma2", self.sigma2)?;
        non_negative("synthetic_sigma2", self.synthetic_sigma2)?;
        Ok(())
    }

    /// Σ_i (noise variance of row i): mixed rows `w²σ² + (1−w)²σ̃²`, the others `σ̃²`.
    fn noise_sum(&self) -> f64 {
        let v = 1.0 - self.w;
        let mixed = self.mixed as f64;
        mixed * (self.w * self.w * self.sigma2 + v * v * self.synthetic_sigma2)
            + (self.rows - self.mixed) as f64 * self.synthetic_sigma2
    }

    /// (tr D, tr D²) for `D = diag(1 − w on mixed rows, 1 on the others)`.
    fn traces(&self) -> (f64, f64) {
        let v = 1.0 - self.w;
        let (mixed, rest) = (self.mixed as f64, (self.rows - self.mixed) as f64);
        (mixed * v + rest, mixed * v * v + rest)
    }

    /// True when every row carries the same feedback (D a multiple of I).
    fn uniform(&self) -> bool {
        self.mixed == 0 || self.mixed == self.rows || self.w == 0.0
    }
}

/// The exact finite-`n` step of the expected risk with a fresh Gaussian design of `rows`
/// rows and `p` columns, given `r² = ‖β‖²`:
///
/// * **min-norm, isotropic rows, `p > rows + 1`** (docs/partial-labels.md §2):
///   `q = ((p − 1) tr D² − (tr D)²)/(p (p − m − 1))`, `bias = 1 − m/p`,
///   `noise = Σ_i s_i²/(p − m − 1)`; with every row mixed, `q = (1 − w)² m/p`
///   (docs/fresh-covariates.md §3);
/// * **OLS, `rows > p + 1`, any Σ, every row with the same label kind**
///   (docs/fresh-covariates.md §4): `q = (1 − w)²` (mixed) or 1 (synthetic only),
///   `bias = 0`, `noise = Σ_i s_i² · p/(m (m − p − 1))`.
///
/// # Errors
/// [`TheoryError::OutOfDomain`] outside these cases (`|p − rows| ≤ 1`, where the expected
/// risk is infinite, or OLS with rows of both kinds); invalid rows, w or variances.
pub fn fresh_exact_step(p: usize, rows: FreshRows) -> Result<FreshStep, TheoryError> {
    rows.validate()?;
    let (m, pf) = (rows.rows as f64, p as f64);
    if p > rows.rows + 1 {
        let (s1, s2) = rows.traces();
        Ok(FreshStep {
            q: ((pf - 1.0) * s2 - s1 * s1) / (pf * (pf - m - 1.0)),
            bias: 1.0 - m / pf,
            noise: rows.noise_sum() / (pf - m - 1.0),
        })
    } else if rows.rows > p + 1 {
        if !rows.uniform() {
            return Err(TheoryError::OutOfDomain {
                reason: "with n > p the exact fresh-design recursion needs every row to carry the same kind of label",
            });
        }
        let v = if rows.mixed == 0 { 1.0 } else { 1.0 - rows.w };
        Ok(FreshStep { q: v * v, bias: 0.0, noise: rows.noise_sum() * pf / (m * (m - pf - 1.0)) })
    } else {
        Err(TheoryError::OutOfDomain {
            reason: "the expected min-norm risk of a fresh Gaussian design is infinite for |p − n| ≤ 1",
        })
    }
}

/// The proportional limit of [`fresh_exact_step`] with `gamma = p/rows` and a fraction
/// `pi` of mixed rows (docs/fresh-covariates.md §5, docs/partial-labels.md §3):
///
/// * `γ > 1`: `q = (d₂ − d₁²/γ)/(γ − 1)`, `bias = 1 − 1/γ`, `noise = ν/(γ − 1)`, with
///   `d₁ = π(1−w) + 1 − π`, `d₂ = π(1−w)² + 1 − π`, `ν = π(w²σ² + (1−w)²σ̃²) + (1−π)σ̃²`;
/// * `γ < 1`, all rows of one kind: `q = (1−w)²` or 1, `bias = 0`, `noise = νγ/(1 − γ)`.
///
/// # Errors
/// [`TheoryError::OutOfDomain`] at `γ = 1` and for `γ < 1` with rows of both kinds;
/// invalid `γ`, `π`, `w`, variances.
pub fn fresh_limit_step(
    gamma: f64,
    pi: f64,
    w: f64,
    sigma2: f64,
    synthetic_sigma2: f64,
) -> Result<FreshStep, TheoryError> {
    positive("gamma", gamma)?;
    unit_interval("pi", pi)?;
    unit_interval("w", w)?;
    non_negative("sigma2", sigma2)?;
    non_negative("synthetic_sigma2", synthetic_sigma2)?;
    let v = 1.0 - w;
    let nu = pi * (w * w * sigma2 + v * v * synthetic_sigma2) + (1.0 - pi) * synthetic_sigma2;
    if gamma > 1.0 {
        let d1 = pi * v + (1.0 - pi);
        let d2 = pi * v * v + (1.0 - pi);
        Ok(FreshStep { q: (d2 - d1 * d1 / gamma) / (gamma - 1.0), bias: 1.0 - 1.0 / gamma, noise: nu / (gamma - 1.0) })
    } else if gamma < 1.0 {
        if !(pi == 0.0 || pi >= 1.0 || w == 0.0) {
            return Err(TheoryError::OutOfDomain {
                reason: "with n > p the fresh-design limit needs every row to carry the same kind of label",
            });
        }
        let q = if pi == 0.0 { 1.0 } else { v * v };
        Ok(FreshStep { q, bias: 0.0, noise: nu * gamma / (1.0 - gamma) })
    } else {
        Err(TheoryError::OutOfDomain { reason: "the fresh-design min-norm risk is infinite at gamma = 1" })
    }
}

/// The stationary value `(bias·r² + noise)/(1 − q)` of a constant step.
///
/// # Errors
/// [`TheoryError::OutOfDomain`] when `q ≥ 1` (no stationary value: the risk grows
/// without bound, e.g. OLS with synthetic labels only).
pub fn fresh_stationary(step: FreshStep, r2: f64) -> Result<f64, TheoryError> {
    if step.q >= 1.0 {
        return Err(TheoryError::OutOfDomain { reason: "the risk has no stationary value (feedback factor q >= 1)" });
    }
    Ok((step.bias * r2 + step.noise) / (1.0 - step.q))
}

/// Isotropic ridge with fresh covariates, in the proportional limit
/// (docs/fresh-covariates.md §6). With `Q = (S + λ)⁻¹`, `R = QS`, `S = XᵀX/n` and the
/// Marchenko–Pastur law at ratio γ, the pair `(m_t, c_t) = (E‖δ_t‖², E δ_tᵀβ)` obeys
///
/// `m_t = (1−w)²μ_RR m − 2(1−w)λ μ_RQ c + λ²μ_QQ r² + ν γ μ_RQ`,
/// `c_t = (1−w) μ_R c − λ μ_Q r²`,
///
/// with `μ_Q = m(−λ)`, `μ_QQ = m'(−λ)`, `μ_R = 1 − λμ_Q`, `μ_RQ = μ_Q − λμ_QQ`,
/// `μ_RR = 1 − 2λμ_Q + λ²μ_QQ`, and `ν = w²σ² + (1−w)²σ̃²` (`w = 1`, `ν = σ²` at t = 0).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreshRidge {
    gamma: f64,
    lambda: f64,
    mu_q: f64,
    mu_qq: f64,
}

impl FreshRidge {
    /// The coefficients at aspect ratio `gamma = p/n` and penalty `lambda > 0`.
    ///
    /// # Errors
    /// Invalid `γ` or `λ` (λ must be > 0; use the min-norm steps at λ = 0).
    pub fn new(gamma: f64, lambda: f64) -> Result<Self, TheoryError> {
        positive("gamma", gamma)?;
        positive("lambda", lambda)?;
        Ok(FreshRidge { gamma, lambda, mu_q: mp_m(gamma, lambda)?, mu_qq: mp_m_prime(gamma, lambda)? })
    }

    fn mu(&self) -> (f64, f64, f64) {
        let l = self.lambda;
        let mu_r = 1.0 - l * self.mu_q;
        let mu_rq = self.mu_q - l * self.mu_qq;
        let mu_rr = 1.0 - 2.0 * l * self.mu_q + l * l * self.mu_qq;
        (mu_r, mu_rq, mu_rr)
    }

    /// One step from `(m, c)` at weight `w`.
    fn step(&self, (m, c): (f64, f64), w: f64, r2: f64, sigma2: f64, synthetic_sigma2: f64) -> (f64, f64) {
        let (mu_r, mu_rq, mu_rr) = self.mu();
        let (l, v) = (self.lambda, 1.0 - w);
        let nu = w * w * sigma2 + v * v * synthetic_sigma2;
        let m_next = v * v * mu_rr * m - 2.0 * v * l * mu_rq * c + l * l * self.mu_qq * r2 + nu * self.gamma * mu_rq;
        let c_next = v * mu_r * c - l * self.mu_q * r2;
        (m_next, c_next)
    }

    /// The path `E‖δ_t‖²`, t = 0, …, `weights.len() − 1` (`weights[0]` is ignored: the
    /// first fit uses real labels only).
    ///
    /// # Errors
    /// Invalid `r²`, variances or weights.
    pub fn path(&self, weights: &[f64], r2: f64, sigma2: f64, synthetic_sigma2: f64) -> Result<Vec<f64>, TheoryError> {
        non_negative("r2", r2)?;
        non_negative("sigma2", sigma2)?;
        non_negative("synthetic_sigma2", synthetic_sigma2)?;
        let mut state = (0.0, 0.0);
        let mut out = Vec::with_capacity(weights.len());
        for (t, &w) in weights.iter().enumerate() {
            let w = if t == 0 { 1.0 } else { unit_interval("w", w)? };
            state = self.step(state, w, r2, sigma2, synthetic_sigma2);
            out.push(state.0);
        }
        Ok(out)
    }

    /// The stationary `E‖δ‖²` at constant `w` (the fixed point of the recursion).
    ///
    /// # Errors
    /// Invalid inputs.
    pub fn limit(&self, w: f64, r2: f64, sigma2: f64, synthetic_sigma2: f64) -> Result<f64, TheoryError> {
        unit_interval("w", w)?;
        non_negative("r2", r2)?;
        let (mu_r, mu_rq, mu_rr) = self.mu();
        let (l, v) = (self.lambda, 1.0 - w);
        // μ_R < 1 and μ_RR < 1 for λ > 0, so both fixed points exist.
        let c = -l * self.mu_q * r2 / (1.0 - v * mu_r);
        let nu = w * w * sigma2 + v * v * synthetic_sigma2;
        Ok((-2.0 * v * l * mu_rq * c + l * l * self.mu_qq * r2 + nu * self.gamma * mu_rq) / (1.0 - v * v * mu_rr))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::fresh_covariates_isotropic;
    use approx::assert_relative_eq;

    fn rows(rows: usize, mixed: usize, w: f64) -> FreshRows {
        FreshRows { rows, mixed, w, sigma2: 1.0, synthetic_sigma2: 1.0 }
    }

    #[test]
    fn exact_steps_reproduce_the_fresh_covariates_recursion() -> Result<(), TheoryError> {
        let (n, p, w) = (40, 100, 0.7);
        let mut d = fresh_exact_step(p, rows(n, n, 1.0))?.apply(0.0, 1.3);
        assert_relative_eq!(d, fresh_covariates_isotropic(n, p, 1.3, 1.0, w, 0)?, max_relative = 1e-14);
        for t in 1..6 {
            d = fresh_exact_step(p, rows(n, n, w))?.apply(d, 1.3);
            assert_relative_eq!(d, fresh_covariates_isotropic(n, p, 1.3, 1.0, w, t)?, max_relative = 1e-13);
        }
        // Every row mixed: q = (1 − w)² n/p.
        assert_relative_eq!(fresh_exact_step(p, rows(n, n, w))?.q, 0.09 * 0.4, max_relative = 1e-14);
        Ok(())
    }

    /// The exact step at n rows and p = 2n columns approaches the limit step like 1/n (the
    /// limit's closed form, `partial_labels_limit`, is pinned by hand-computed values in
    /// limits.rs).
    #[test]
    fn exact_steps_converge_to_the_limit_step() -> Result<(), TheoryError> {
        for (pi, w) in [(1.0, 0.618), (0.5, 1.0), (0.5, 0.618), (0.0, 0.4), (0.25, 0.3)] {
            let s = fresh_limit_step(2.0, pi, w, 1.0, 1.0)?;
            // The exact step at n, p = 2n approaches the limit like 1/n.
            let gap = |n: usize| -> Result<f64, TheoryError> {
                let m = (pi * n as f64).round() as usize;
                let e = fresh_exact_step(2 * n, rows(n, m, w))?;
                Ok((fresh_stationary(e, 1.0)? - fresh_stationary(s, 1.0)?).abs())
            };
            let (g1, g2) = (gap(100)?, gap(1000)?);
            assert!(g2 < g1 / 5.0 && g2 < 5e-3, "pi = {pi}, w = {w}: {g1} then {g2}");
        }
        Ok(())
    }

    /// OLS (n > p): the fresh-labels variance factor times σ²p/(n − p − 1); synthetic
    /// labels only grow the risk without bound.
    #[test]
    fn ols_steps() -> Result<(), TheoryError> {
        let (n, p) = (100, 30);
        let v = 30.0 / 69.0;
        assert_relative_eq!(fresh_exact_step(p, rows(n, n, 1.0))?.noise, v, max_relative = 1e-14);
        let s = fresh_exact_step(p, rows(n, n, 0.5))?;
        assert_relative_eq!(s.q, 0.25);
        assert_relative_eq!(s.noise, 0.5 * v, max_relative = 1e-14);
        assert_relative_eq!(fresh_exact_step(p, rows(n, 0, 0.5))?.q, 1.0);
        assert!(fresh_exact_step(p, rows(n, 50, 0.5)).is_err());
        assert!(fresh_exact_step(n, rows(n, n, 0.5)).is_err());
        assert!(fresh_exact_step(n + 1, rows(n, n, 0.5)).is_err());
        let lim = fresh_limit_step(0.5, 1.0, 0.5, 1.0, 1.0)?;
        assert_relative_eq!(fresh_stationary(lim, 1.0)?, 0.5 * 1.0 / 0.75, max_relative = 1e-14);
        assert!(fresh_stationary(fresh_limit_step(0.5, 0.0, 0.5, 1.0, 1.0)?, 1.0).is_err());
        Ok(())
    }

    /// Partial labels at finite n, hand-computed values at a small size (the Monte Carlo
    /// check of q_n is crates/protocols/tests/partial_labels.rs).
    #[test]
    fn partial_label_step_values() -> Result<(), TheoryError> {
        // p = 10, n = 4, two mixed rows, w = 0.5: D = diag(0.5, 0.5, 1, 1).
        let s = fresh_exact_step(10, rows(4, 2, 0.5))?;
        let (s1, s2) = (3.0, 2.5);
        assert_relative_eq!(s.q, (9.0 * s2 - s1 * s1) / (10.0 * 5.0), max_relative = 1e-15);
        assert_relative_eq!(s.noise, (2.0 * 0.5 + 2.0) / 5.0, max_relative = 1e-15);
        Ok(())
    }

    /// Ridge: λ → 0 recovers min-norm (γ > 1) and OLS (γ < 1); the path tends to the limit.
    #[test]
    fn ridge_recursion_limits() -> Result<(), TheoryError> {
        for gamma in [2.0, 0.5] {
            for w in [0.5, 0.8, 1.0] {
                let small = FreshRidge::new(gamma, 1e-7)?.limit(w, 1.0, 1.0, 1.0)?;
                let mn = fresh_stationary(fresh_limit_step(gamma, 1.0, w, 1.0, 1.0)?, 1.0)?;
                assert_relative_eq!(small, mn, max_relative = 1e-4);
            }
        }
        let r = FreshRidge::new(2.0, 0.3)?;
        let path = r.path(&[1.0; 200], 1.0, 1.0, 1.0)?;
        assert_relative_eq!(path[199], r.limit(1.0, 1.0, 1.0, 1.0)?, max_relative = 1e-12);
        // At w = 1 every fit is one ridge fit: r²λ²m' + σ²γ(m − λm').
        let (m, mp) = (mp_m(2.0, 0.3)?, mp_m_prime(2.0, 0.3)?);
        assert_relative_eq!(path[0], 0.09 * mp + 2.0 * (m - 0.3 * mp), max_relative = 1e-13);
        let path = r.path(&[1.0, 0.6, 0.6, 0.6], 1.0, 1.0, 1.0)?;
        assert!(path.iter().all(|x| x.is_finite() && *x > 0.0));
        assert!(FreshRidge::new(2.0, 0.0).is_err());
        Ok(())
    }
}
