use std::sync::OnceLock;

use collapse_core::faer::{Col, ColRef, Mat, MatRef, Par};
use collapse_core::rng::{Rng, normal_vec};
use collapse_core::spectral::LowRankForm;
use collapse_core::spectral::linalg::{matvec, symmetric_eigen};
use collapse_core::{BuildContext, Covariance, ParamError, Params};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn standard_normal_matrix(n: usize, p: usize, rng: &mut Rng) -> Mat<f64> {
    // Row-major fill: row i of the design consumes draws i·p .. (i+1)·p, so the first
    // rows of a larger design equal a smaller one drawn from the same stream.
    let z = normal_vec(rng, 1.0, n * p);
    Mat::from_fn(n, p, |i, j| z[i * p + j])
}

/// Σ = I_p.
///
/// No parameters. The design has iid N(0, 1) entries.
///
/// Reference: the isotropic model of Garg, Bhattacharya, Sur (2025), arXiv 2509.22341.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct IsotropicParams {}

/// Σ = I.
#[derive(Debug, Clone)]
pub struct Isotropic {
    p: usize,
}

impl Covariance for Isotropic {
    fn dim(&self) -> usize {
        self.p
    }
    fn eigenvalues(&self) -> Vec<f64> {
        vec![1.0; self.p]
    }
    fn to_eigenbasis(&self, v: ColRef<'_, f64>) -> Col<f64> {
        v.to_owned()
    }
    fn to_standard_basis(&self, c: ColRef<'_, f64>) -> Col<f64> {
        c.to_owned()
    }
    fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64> {
        m.to_owned()
    }
    fn quad_form(&self, v: ColRef<'_, f64>) -> f64 {
        v.squared_norm_l2()
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> Mat<f64> {
        standard_normal_matrix(n, self.p, rng)
    }
    fn is_isotropic(&self) -> bool {
        true
    }
    fn low_rank_form(&self) -> Option<LowRankForm> {
        Some(LowRankForm { scale: 1.0, terms: Vec::new() })
    }
}

impl Params for IsotropicParams {
    type Target = dyn Covariance;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Covariance>, ParamError> {
        Ok(Box::new(Isotropic { p: ctx.p }))
    }
    fn example() -> Self {
        IsotropicParams {}
    }
}

/// A covariance that is diagonal in the coordinate basis, Σ = diag(τ_1, …, τ_p).
/// The eigenbasis is the coordinate basis sorted by decreasing τ (ties keep their
/// coordinate order).
#[derive(Debug, Clone)]
pub struct Diagonal {
    tau: Vec<f64>,
    sqrt_tau: Vec<f64>,
    /// order[k] = coordinate of the k-th largest eigenvalue.
    order: Vec<usize>,
}

impl Diagonal {
    /// Σ = diag(tau); every τ must be finite and > 0.
    pub fn new(tau: Vec<f64>) -> Self {
        let mut order: Vec<usize> = (0..tau.len()).collect();
        order.sort_by(|&a, &b| tau[b].total_cmp(&tau[a]).then(a.cmp(&b)));
        let sqrt_tau = tau.iter().map(|t| t.sqrt()).collect();
        Diagonal { tau, sqrt_tau, order }
    }
}

impl Covariance for Diagonal {
    fn dim(&self) -> usize {
        self.tau.len()
    }
    fn eigenvalues(&self) -> Vec<f64> {
        self.order.iter().map(|&j| self.tau[j]).collect()
    }
    fn to_eigenbasis(&self, v: ColRef<'_, f64>) -> Col<f64> {
        Col::from_fn(self.tau.len(), |k| v[self.order[k]])
    }
    fn to_standard_basis(&self, c: ColRef<'_, f64>) -> Col<f64> {
        let mut out = Col::zeros(self.tau.len());
        for (k, &j) in self.order.iter().enumerate() {
            out[j] = c[k];
        }
        out
    }
    fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64> {
        Mat::from_fn(m.nrows(), m.ncols(), |i, j| self.tau[i] * m[(i, j)])
    }
    fn quad_form(&self, v: ColRef<'_, f64>) -> f64 {
        v.iter().zip(&self.tau).map(|(x, t)| t * x * x).sum()
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> Mat<f64> {
        let mut z = standard_normal_matrix(n, self.tau.len(), rng);
        for j in 0..self.tau.len() {
            let s = self.sqrt_tau[j];
            for i in 0..n {
                z[(i, j)] *= s;
            }
        }
        z
    }
    fn is_isotropic(&self) -> bool {
        self.tau.iter().all(|&t| (t - 1.0).abs() <= 4.0 * f64::EPSILON)
    }
    /// A bulk value a shared by all but at most 32 coordinates (the spiked model):
    /// Σ = a·I + Σ_j (τ_j − a) e_j e_jᵀ over the others.
    fn low_rank_form(&self) -> Option<LowRankForm> {
        let mut counts: std::collections::HashMap<u64, usize> = std::collections::HashMap::new();
        for t in &self.tau {
            *counts.entry(t.to_bits()).or_default() += 1;
        }
        let (bulk, count) = counts.into_iter().max_by_key(|&(bits, c)| (c, bits))?;
        if self.tau.len() - count > 32 {
            return None;
        }
        let a = f64::from_bits(bulk);
        let p = self.tau.len();
        let terms = (0..p)
            .filter(|&j| self.tau[j].to_bits() != bulk)
            .map(|j| (self.tau[j] - a, Col::from_fn(p, |i| if i == j { 1.0 } else { 0.0 })))
            .collect();
        Some(LowRankForm { scale: a, terms })
    }
}

/// Σ = diag(τ_1, …, τ_p) with explicitly given eigenvalues.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `eigenvalues` | (required) | p values, each finite and > 0 | the diagonal of Σ |
///
/// Errors: wrong length (must equal `design.p`), a value ≤ 0 or not finite.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DiagonalParams {
    /// The p eigenvalues (diagonal entries) of Σ, each > 0.
    #[schemars(extend("items" = {"type": "number", "format": "double", "exclusiveMinimum": 0.0}))]
    pub eigenvalues: Vec<f64>,
}

impl Params for DiagonalParams {
    type Target = dyn Covariance;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Covariance>, ParamError> {
        if self.eigenvalues.len() != ctx.p {
            return Err(ParamError::new(
                "eigenvalues",
                format!("has {} values but design.p = {}; give exactly one per feature", self.eigenvalues.len(), ctx.p),
            ));
        }
        Ok(Box::new(Diagonal::new(self.eigenvalues.clone())))
    }
    fn example() -> Self {
        DiagonalParams { eigenvalues: vec![4.0, 2.0, 1.0, 1.0, 0.5, 0.5, 0.25, 0.25] }
    }
}

/// The spiked model Σ = I + Σ_k h_k u_k u_kᵀ with spike directions u_k = e_k (the
/// first coordinate axes; for an isotropic Gaussian Z any orthonormal u_k give the
/// same risk distribution, by rotation invariance). Eigenvalues: 1 + h_k on the
/// spikes, 1 elsewhere.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `spikes` | (required) | list of h_k > −1, at most p of them | spike strengths |
///
/// Reference: Johnstone (2001), Ann. Statist. 29(2); the spiked model of Garg,
/// Bhattacharya, Sur (2025), arXiv 2509.22341.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct SpikedParams {
    /// Spike strengths h_k (> −1 so that Σ stays positive definite).
    #[schemars(extend("items" = {"type": "number", "format": "double", "exclusiveMinimum": -1.0}))]
    pub spikes: Vec<f64>,
}

impl Params for SpikedParams {
    type Target = dyn Covariance;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Covariance>, ParamError> {
        if self.spikes.is_empty() {
            return Err(ParamError::new("spikes", "give at least one spike (use `isotropic` for none)"));
        }
        if self.spikes.len() > ctx.p {
            return Err(ParamError::new(
                "spikes",
                format!("{} spikes but design.p = {}; at most p spikes", self.spikes.len(), ctx.p),
            ));
        }
        let mut tau = vec![1.0; ctx.p];
        for (k, &h) in self.spikes.iter().enumerate() {
            tau[k] = 1.0 + h;
        }
        Ok(Box::new(Diagonal::new(tau)))
    }
    fn example() -> Self {
        SpikedParams { spikes: vec![5.0, 2.0] }
    }
}

/// Power-law spectrum: eigenvalues τ_k ∝ k^(−α), k = 1..p, rescaled so that
/// tr Σ = p (mean eigenvalue 1), diagonal in the coordinate basis. This is the
/// capacity condition of the scaling-law literature.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `alpha` | 1.0 | 0 ≤ α ≤ 50 | decay exponent (0 is isotropic) |
///
/// Reference: Dohmatob, Feng, Kempe (2024), arXiv 2402.07712; Cui et al. (2021).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerLawCovParams {
    /// Decay exponent α ≥ 0 of τ_k ∝ k^(−α).
    #[serde(default = "default_alpha")]
    #[schemars(range(min = 0.0, max = 50.0))]
    pub alpha: f64,
}

fn default_alpha() -> f64 {
    1.0
}

impl Params for PowerLawCovParams {
    type Target = dyn Covariance;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Covariance>, ParamError> {
        let raw: Vec<f64> = (1..=ctx.p).map(|k| (k as f64).powf(-self.alpha)).collect();
        let mean = raw.iter().sum::<f64>() / ctx.p as f64;
        let tau: Vec<f64> = raw.iter().map(|t| t / mean).collect();
        if tau.iter().any(|&t| !(t > 0.0 && t.is_finite())) {
            return Err(ParamError::new(
                "alpha",
                format!("α = {} underflows for p = {}; use a smaller α", self.alpha, ctx.p),
            ));
        }
        Ok(Box::new(Diagonal::new(tau)))
    }
    fn example() -> Self {
        PowerLawCovParams { alpha: 1.0 }
    }
}

/// Equicorrelated features: Σ = (1 − ρ)I + ρ11ᵀ. Eigenvalues 1 − ρ + pρ (direction
/// 1/√p) and 1 − ρ (multiplicity p − 1). The eigenbasis is the Householder reflection
/// H that maps e_1 to 1/√p, so Qᵀv costs O(p); Σ^{1/2} = √(1−ρ) I + c 11ᵀ with
/// c = (√(1−ρ+pρ) − √(1−ρ))/p, so sampling costs O(np).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `rho` | (required) | −1/(p−1) < ρ < 1 | common correlation |
///
/// Reference: the equicorrelated model of Garg, Bhattacharya, Sur (2025).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EquicorrelatedParams {
    /// Correlation ρ between any two features, in (−1/(p−1), 1).
    #[schemars(extend("exclusiveMaximum" = 1.0))]
    pub rho: f64,
}

/// Σ = (1 − ρ)I + ρ11ᵀ.
#[derive(Debug, Clone)]
pub struct Equicorrelated {
    p: usize,
    rho: f64,
    /// Householder vector u (‖u‖ = 1) with H = I − 2uuᵀ, H e_1 = 1/√p.
    u: Vec<f64>,
}

impl Equicorrelated {
    fn reflect(&self, v: ColRef<'_, f64>) -> Col<f64> {
        let dot: f64 = v.iter().zip(&self.u).map(|(a, b)| a * b).sum();
        Col::from_fn(self.p, |i| v[i] - 2.0 * dot * self.u[i])
    }
}

impl Covariance for Equicorrelated {
    fn dim(&self) -> usize {
        self.p
    }
    fn eigenvalues(&self) -> Vec<f64> {
        let mut ev = vec![1.0 - self.rho; self.p];
        ev[0] = 1.0 - self.rho + self.p as f64 * self.rho;
        if self.rho < 0.0 {
            ev.rotate_left(1); // the 1/√p direction is then the smallest
        }
        ev
    }
    fn to_eigenbasis(&self, v: ColRef<'_, f64>) -> Col<f64> {
        let c = self.reflect(v);
        if self.rho < 0.0 {
            // The 1/√p direction carries the smallest eigenvalue: move it last.
            Col::from_fn(self.p, |k| c[(k + 1) % self.p])
        } else {
            c
        }
    }
    fn to_standard_basis(&self, c: ColRef<'_, f64>) -> Col<f64> {
        if self.rho < 0.0 {
            let unrotated = Col::from_fn(self.p, |k| c[(k + self.p - 1) % self.p]);
            self.reflect(unrotated.as_ref())
        } else {
            self.reflect(c)
        }
    }
    fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64> {
        let mut out = Mat::zeros(m.nrows(), m.ncols());
        for j in 0..m.ncols() {
            let s: f64 = m.col(j).iter().sum();
            for i in 0..m.nrows() {
                out[(i, j)] = (1.0 - self.rho) * m[(i, j)] + self.rho * s;
            }
        }
        out
    }
    fn quad_form(&self, v: ColRef<'_, f64>) -> f64 {
        let s: f64 = v.iter().sum();
        (1.0 - self.rho) * v.squared_norm_l2() + self.rho * s * s
    }
    fn low_rank_form(&self) -> Option<LowRankForm> {
        let p = self.p as f64;
        let q = Col::from_fn(self.p, |_| 1.0 / p.sqrt());
        Some(LowRankForm { scale: 1.0 - self.rho, terms: vec![(p * self.rho, q)] })
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> Mat<f64> {
        let p = self.p as f64;
        let a = (1.0 - self.rho).sqrt();
        let c = ((1.0 - self.rho + p * self.rho).sqrt() - a) / p;
        let mut z = standard_normal_matrix(n, self.p, rng);
        for i in 0..n {
            let s: f64 = (0..self.p).map(|j| z[(i, j)]).sum();
            for j in 0..self.p {
                z[(i, j)] = a * z[(i, j)] + c * s;
            }
        }
        z
    }
}

impl Params for EquicorrelatedParams {
    type Target = dyn Covariance;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Covariance>, ParamError> {
        let lower = if ctx.p > 1 { -1.0 / (ctx.p as f64 - 1.0) } else { -1.0 };
        if !(self.rho.is_finite() && self.rho > lower && self.rho < 1.0) {
            return Err(ParamError::new(
                "rho",
                format!("must be in (-1/(p-1), 1) = ({lower}, 1) for p = {}, got {}", ctx.p, self.rho),
            ));
        }
        let p = ctx.p;
        // u ∝ e_1 − 1/√p, normalised (H e_1 = 1/√p); for p = 1 there is nothing to do.
        let s = 1.0 / (p as f64).sqrt();
        let mut u: Vec<f64> = (0..p).map(|i| if i == 0 { 1.0 - s } else { -s }).collect();
        let norm = u.iter().map(|x| x * x).sum::<f64>().sqrt();
        if norm > 0.0 {
            u.iter_mut().for_each(|x| *x /= norm);
        }
        Ok(Box::new(Equicorrelated { p, rho: self.rho, u }))
    }
    fn example() -> Self {
        EquicorrelatedParams { rho: 0.5 }
    }
}

/// First-order autoregressive (Kac–Murdock–Szegő) covariance Σ_ij = ρ^|i−j|.
/// Σv costs O(p) by a forward and a backward recursion; designs are sampled by the
/// AR(1) recursion x_j = ρ x_{j−1} + √(1−ρ²) z_j, whose rows are N(0, Σ) (equal in
/// law to Z Σ^{1/2}). The eigen-decomposition (O(p³)) is computed once, only when a
/// signal or the theory asks for it.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `rho` | (required) | −1 < ρ < 1 | lag-one correlation |
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Ar1Params {
    /// Lag-one correlation ρ in (−1, 1).
    #[schemars(extend("exclusiveMinimum" = -1.0, "exclusiveMaximum" = 1.0))]
    pub rho: f64,
}

/// Σ_ij = ρ^|i−j|.
#[derive(Debug)]
pub struct Ar1 {
    p: usize,
    rho: f64,
    eigen: OnceLock<(Vec<f64>, Mat<f64>)>,
}

impl Ar1 {
    fn eigen(&self) -> &(Vec<f64>, Mat<f64>) {
        self.eigen.get_or_init(|| {
            let sigma = Mat::from_fn(self.p, self.p, |i, j| self.rho.powi((i as i32 - j as i32).abs()));
            match symmetric_eigen(sigma.as_ref(), Par::Seq) {
                Ok((values, vectors)) => {
                    // Ascending from the solver; exposed descending.
                    let k = self.p;
                    let vals: Vec<f64> = (0..k).rev().map(|i| values[i]).collect();
                    let vecs = Mat::from_fn(k, k, |i, j| vectors[(i, k - 1 - j)]);
                    (vals, vecs)
                }
                // The KMS matrix is symmetric positive definite; faer's solver does not
                // fail on it. Should it, fall back to a clearly wrong-looking NaN basis
                // rather than panic.
                Err(_) => (vec![f64::NAN; self.p], Mat::from_fn(self.p, self.p, |_, _| f64::NAN)),
            }
        })
    }
}

impl Covariance for Ar1 {
    fn dim(&self) -> usize {
        self.p
    }
    fn eigenvalues(&self) -> Vec<f64> {
        self.eigen().0.clone()
    }
    fn to_eigenbasis(&self, v: ColRef<'_, f64>) -> Col<f64> {
        matvec(self.eigen().1.transpose(), v, Par::Seq)
    }
    fn to_standard_basis(&self, c: ColRef<'_, f64>) -> Col<f64> {
        matvec(self.eigen().1.as_ref(), c, Par::Seq)
    }
    fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64> {
        let (p, rho) = (self.p, self.rho);
        let mut out = Mat::zeros(p, m.ncols());
        let mut fwd = vec![0.0; p];
        for j in 0..m.ncols() {
            // (Σv)_i = Σ_{k≤i} ρ^{i−k} v_k + Σ_{k>i} ρ^{k−i} v_k
            let mut acc = 0.0;
            for i in 0..p {
                acc = rho * acc + m[(i, j)];
                fwd[i] = acc;
            }
            let mut back = 0.0;
            for i in (0..p).rev() {
                out[(i, j)] = fwd[i] + rho * back;
                back = rho * back + m[(i, j)];
            }
        }
        out
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> Mat<f64> {
        let mut z = standard_normal_matrix(n, self.p, rng);
        let s = (1.0 - self.rho * self.rho).sqrt();
        for i in 0..n {
            for j in 1..self.p {
                z[(i, j)] = self.rho * z[(i, j - 1)] + s * z[(i, j)];
            }
        }
        z
    }
}

impl Params for Ar1Params {
    type Target = dyn Covariance;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Covariance>, ParamError> {
        Ok(Box::new(Ar1 { p: ctx.p, rho: self.rho, eigen: OnceLock::new() }))
    }
    fn example() -> Self {
        Ar1Params { rho: 0.5 }
    }
}

collapse_core::register!(CovariancePlugin, IsotropicParams, "isotropic", "Σ = I");
collapse_core::register!(CovariancePlugin, DiagonalParams, "diagonal", "Σ = diag(τ) with explicit eigenvalues");
collapse_core::register!(
    CovariancePlugin,
    SpikedParams,
    "spiked",
    "Σ = I + Σ_k h_k e_k e_kᵀ (spikes on the first axes)"
);
collapse_core::register!(
    CovariancePlugin,
    PowerLawCovParams,
    "power-law",
    "Eigenvalues ∝ k^(−α), trace normalised to p"
);
collapse_core::register!(CovariancePlugin, EquicorrelatedParams, "equicorrelated", "Σ = (1−ρ)I + ρ11ᵀ");
collapse_core::register!(CovariancePlugin, Ar1Params, "ar1", "Σ_ij = ρ^|i−j| (AR(1) / Kac–Murdock–Szegő)");

#[cfg(test)]
mod tests {
    use super::*;
    use collapse_core::rng::{Purpose, Streams};

    fn ctx(p: usize) -> BuildContext {
        BuildContext { n: 10, p }
    }

    fn all_examples(p: usize) -> Vec<Box<dyn Covariance>> {
        vec![
            IsotropicParams::example().build(&ctx(p)).unwrap(),
            DiagonalParams { eigenvalues: (0..p).map(|k| 1.0 + k as f64).collect() }.build(&ctx(p)).unwrap(),
            SpikedParams::example().build(&ctx(p)).unwrap(),
            PowerLawCovParams::example().build(&ctx(p)).unwrap(),
            EquicorrelatedParams::example().build(&ctx(p)).unwrap(),
            EquicorrelatedParams { rho: -0.05 }.build(&ctx(p)).unwrap(),
            Ar1Params::example().build(&ctx(p)).unwrap(),
        ]
    }

    fn dense(c: &dyn Covariance) -> Mat<f64> {
        c.apply(Mat::<f64>::identity(c.dim(), c.dim()).as_ref())
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Isotropic>();
        check::<Diagonal>();
        check::<Equicorrelated>();
        check::<Ar1>();
    }

    #[test]
    fn eigenpairs_reconstruct_sigma_and_are_positive_descending() {
        let p = 7;
        for c in all_examples(p) {
            let ev = c.eigenvalues();
            assert!(ev.iter().all(|&t| t > 0.0), "{c:?}");
            assert!(ev.windows(2).all(|w| w[0] >= w[1] - 1e-12), "{c:?}: {ev:?}");
            let s = dense(c.as_ref());
            for k in 0..p {
                // Σ q_k = τ_k q_k with q_k = Q e_k
                let ek = Col::from_fn(p, |i| if i == k { 1.0 } else { 0.0 });
                let q = c.to_standard_basis(ek.as_ref());
                let sq = &s * &q;
                let diff = (&sq - &q * ev[k]).norm_l2();
                assert!(diff < 1e-10 * ev[0], "{c:?} k={k} diff={diff}");
                // round trip
                let back = c.to_eigenbasis(q.as_ref());
                assert!((&back - &ek).norm_l2() < 1e-10, "{c:?}");
            }
            let v = Col::from_fn(p, |i| (i as f64 * 0.7).sin());
            let qf = c.quad_form(v.as_ref());
            let direct = (v.transpose() * (&s * &v)).abs();
            assert!((qf - direct).abs() < 1e-10 * direct.max(1.0), "{c:?}");
        }
    }

    #[test]
    fn low_rank_forms_reconstruct_sigma() {
        let p = 7;
        for c in all_examples(p) {
            let Some(lr) = c.low_rank_form() else { continue };
            let s = dense(c.as_ref());
            let mut rebuilt = Mat::<f64>::identity(p, p) * lr.scale;
            for (w, q) in &lr.terms {
                rebuilt += (q * q.transpose()) * *w;
            }
            assert!((&rebuilt - &s).norm_l2() < 1e-12 * s.norm_l2(), "{c:?}");
        }
        assert!(PowerLawCovParams { alpha: 1.0 }.build(&ctx(64)).unwrap().low_rank_form().is_none());
    }

    #[test]
    fn ar1_apply_matches_dense() {
        let c = Ar1Params { rho: -0.6 }.build(&ctx(6)).unwrap();
        let s = dense(c.as_ref());
        for i in 0..6 {
            for j in 0..6 {
                assert!((s[(i, j)] - (-0.6f64).powi((i as i32 - j as i32).abs())).abs() < 1e-14);
            }
        }
    }

    /// The sample covariance of many draws matches Σ (within Monte Carlo error).
    #[test]
    fn samples_have_the_right_covariance() {
        let (n, p) = (20_000, 5);
        for c in all_examples(p) {
            let x = c.sample(n, &mut Streams::new(3, 0, 0).rng(Purpose::Design, 0));
            let s_hat = x.transpose() * &x * (1.0 / n as f64);
            let s = dense(c.as_ref());
            for i in 0..p {
                for j in 0..p {
                    let sd = ((s[(i, i)] * s[(j, j)] + s[(i, j)] * s[(i, j)]) / n as f64).sqrt();
                    assert!(
                        (s_hat[(i, j)] - s[(i, j)]).abs() < 5.0 * sd,
                        "{c:?} ({i},{j}) {} vs {}",
                        s_hat[(i, j)],
                        s[(i, j)]
                    );
                }
            }
        }
    }

    #[test]
    fn power_law_trace_is_p() {
        let c = PowerLawCovParams { alpha: 1.5 }.build(&ctx(50)).unwrap();
        let tr: f64 = c.eigenvalues().iter().sum();
        assert!((tr - 50.0).abs() < 1e-9);
    }

    #[test]
    fn invalid_parameters_are_rejected_with_their_field() {
        let e = |r: Result<Box<dyn Covariance>, collapse_core::CoreError>| {
            r.unwrap_err().field().unwrap_or_default().to_string()
        };
        assert_eq!(e(SpikedParams { spikes: vec![] }.checked_build(&ctx(4))), "spikes");
        assert_eq!(e(SpikedParams { spikes: vec![1.0; 5] }.checked_build(&ctx(4))), "spikes");
        assert_eq!(e(SpikedParams { spikes: vec![-1.5] }.checked_build(&ctx(4))), "spikes[0]");
        assert_eq!(e(DiagonalParams { eigenvalues: vec![1.0; 3] }.checked_build(&ctx(4))), "eigenvalues");
        assert_eq!(
            e(DiagonalParams { eigenvalues: vec![1.0, 0.0, 1.0, 1.0] }.checked_build(&ctx(4))),
            "eigenvalues[1]"
        );
        assert_eq!(e(EquicorrelatedParams { rho: 1.0 }.checked_build(&ctx(4))), "rho");
        assert_eq!(e(EquicorrelatedParams { rho: -0.5 }.checked_build(&ctx(4))), "rho");
        assert_eq!(e(Ar1Params { rho: -1.0 }.checked_build(&ctx(4))), "rho");
        assert_eq!(e(PowerLawCovParams { alpha: -1.0 }.checked_build(&ctx(4))), "alpha");
    }
}
