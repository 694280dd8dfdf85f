//! The row space of a fixed design, restricted to its numerical rank, with what every
//! spectral computation needs: singular values d, θ = Vᵀβ, the Σ-weights of the
//! singular directions and the risk ‖V b − β‖²_Σ of an estimate with row-space
//! coordinates b (docs/spectral-recursion.md §1, §4; docs/numerics.md §2, §6).

use faer::{Col, Mat, MatRef, Par};

use crate::error::CoreError;
use crate::spectral::linalg::{self, dot, lower_gram, matmul, matvec, rank_tolerance, symmetric_eigen, t_matvec};

/// Σ = scale·I + Σ_k weights[k]·q_k q_kᵀ.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRankForm {
    /// The multiple a of the identity.
    pub scale: f64,
    /// The rank-one terms (c_k, q_k), q_k ∈ R^p.
    pub terms: Vec<(f64, Col<f64>)>,
}

impl LowRankForm {
    /// True when the directions q_k are orthonormal (to 1e-10), as the Bartlett
    /// sampler requires.
    pub fn has_orthonormal_terms(&self) -> bool {
        self.terms.iter().enumerate().all(|(i, (_, qi))| {
            self.terms.iter().enumerate().all(|(j, (_, qj))| {
                let d: f64 = qi.iter().zip(qj.iter()).map(|(x, y)| x * y).sum();
                (d - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10
            })
        })
    }
}

/// How the row space sees Σ: as identity plus low rank (cheap risk), or through a
/// function applying Σ to a p × k matrix (used twice, at construction).
pub enum SigmaForm<'a> {
    /// Σ = a·I + Σ_k c_k q_k q_kᵀ.
    LowRank(LowRankForm),
    /// Any Σ, given as M ↦ Σ·M.
    General(&'a dyn Fn(MatRef<'_, f64>) -> Mat<f64>),
}

impl std::fmt::Debug for SigmaForm<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SigmaForm::LowRank(lr) => f.debug_tuple("LowRank").field(lr).finish(),
            SigmaForm::General(_) => f.write_str("General(..)"),
        }
    }
}

/// How ‖V b − β‖²_Σ is evaluated (docs/numerics.md §6).
#[derive(Debug)]
enum RiskForm {
    /// Σ = a·I + Σ_k c_k q_k q_kᵀ: a(‖b − θ‖² + ‖β⊥‖²) + Σ_k c_k (w_kᵀb − q_kᵀβ)²,
    /// w_k = Vᵀq_k. O(r·K).
    LowRank { scale: f64, terms: Vec<(f64, Vec<f64>, f64)> },
    /// Any Σ with V, ΣV and Σβ stored: (Vb − β)ᵀ(ΣVb − Σβ). O(p·r).
    Dense { v: Mat<f64>, sv: Mat<f64>, beta: Col<f64>, sbeta: Col<f64> },
    /// Any Σ with M = VᵀΣV, h = VᵀΣβ⊥ and c = β⊥ᵀΣβ⊥ precomputed:
    /// eᵀMe − 2eᵀh + c with e = b − θ. O(r²).
    Projected { m: Mat<f64>, h: Vec<f64>, c: f64 },
}

/// The row space of one fixed design (see the module docs).
#[derive(Debug)]
pub struct RowSpace {
    n: usize,
    /// Singular values above the rank cut, descending (length r).
    pub d: Vec<f64>,
    /// θ = Vᵀβ.
    pub theta: Vec<f64>,
    u: Option<Mat<f64>>,
    perp_norm2: f64,
    form: RiskForm,
    m_diag: Vec<f64>,
}

/// The pieces a factorization or sampler produces.
pub(crate) struct Parts<'a> {
    pub n: usize,
    pub d: Vec<f64>,
    pub theta: Vec<f64>,
    pub beta: &'a Col<f64>,
    pub u: Option<Mat<f64>>,
    pub v: Option<Mat<f64>>,
    /// Vᵀq_k for each low-rank term, in the order of the form's terms.
    pub projections: Vec<Vec<f64>>,
}

impl RowSpace {
    /// Factorize `x` (thin SVD, or the eigendecomposition of the lower triangle of XXᵀ
    /// when p ≥ 1.5n; docs/numerics.md §2) and project `beta`. V is formed only when
    /// the risk needs it (Σ without a low-rank form).
    pub fn factorize(x: MatRef<'_, f64>, beta: &Col<f64>, sigma: SigmaForm<'_>, par: Par) -> Result<Self, CoreError> {
        let (n, p) = x.shape();
        let need_v = matches!(sigma, SigmaForm::General(_));
        let (d, u, v) = if (p as f64) >= 1.5 * n as f64 {
            let gram = lower_gram(x, par);
            let (ev, vecs) = symmetric_eigen(gram.as_ref(), par)
                .map_err(|e| CoreError::numerical("eigendecomposition of XXᵀ", format!("{e} (n = {n}, p = {p})")))?;
            let lmax = ev.iter().copied().fold(0.0f64, f64::max);
            if !lmax.is_finite() {
                return Err(CoreError::numerical("eigendecomposition of XXᵀ", "non-finite eigenvalue"));
            }
            // Same cut as the SVD, on d = √λ.
            let tol = rank_tolerance(lmax.sqrt(), n, p);
            let order: Vec<usize> = (0..n).rev().filter(|&i| ev[i] > 0.0 && ev[i].sqrt() > tol).collect();
            let d: Vec<f64> = order.iter().map(|&i| ev[i].sqrt()).collect();
            let u = Mat::from_fn(n, order.len(), |i, j| vecs[(i, order[j])]);
            let v = need_v.then(|| {
                let mut v = matmul(x.transpose(), u.as_ref(), par);
                for (j, dj) in d.iter().enumerate() {
                    for i in 0..p {
                        v[(i, j)] /= dj;
                    }
                }
                v
            });
            (d, u, v)
        } else {
            let svd = linalg::truncated_svd(x, par)?;
            (svd.d, svd.u, need_v.then_some(svd.v))
        };
        // θ = Vᵀβ = diag(1/d) Uᵀ(Xβ): no V needed.
        let project = |w: &Col<f64>| -> Vec<f64> {
            let uw = t_matvec(u.as_ref(), matvec(x, w.as_ref(), par).as_ref(), par);
            (0..d.len()).map(|i| uw[i] / d[i]).collect()
        };
        let theta = project(beta);
        let projections = match &sigma {
            SigmaForm::LowRank(lr) => lr.terms.iter().map(|(_, q)| project(q)).collect(),
            SigmaForm::General(_) => Vec::new(),
        };
        Self::assemble(Parts { n, d, theta, beta, u: Some(u), v, projections }, sigma, par)
    }

    pub(crate) fn assemble(parts: Parts<'_>, sigma: SigmaForm<'_>, par: Par) -> Result<Self, CoreError> {
        let Parts { n, d, theta, beta, u, v, projections } = parts;
        let r = d.len();
        // ‖β⊥‖² = ‖β‖² − ‖θ‖² (V has orthonormal columns); clamp rounding below zero.
        let perp_norm2 = (beta.squared_norm_l2() - dot(&theta, &theta)).max(0.0);
        let (form, m_diag) = match sigma {
            SigmaForm::LowRank(lr) => {
                if projections.len() != lr.terms.len() {
                    return Err(CoreError::numerical("row space", "missing projections of the low-rank terms"));
                }
                let mut m_diag = vec![lr.scale; r];
                let mut terms = Vec::with_capacity(lr.terms.len());
                for ((c, q), w) in lr.terms.iter().zip(projections) {
                    let qb: f64 = q.iter().zip(beta.iter()).map(|(a, b)| a * b).sum();
                    for i in 0..r {
                        m_diag[i] += c * w[i] * w[i];
                    }
                    terms.push((*c, w, qb));
                }
                (RiskForm::LowRank { scale: lr.scale, terms }, m_diag)
            }
            SigmaForm::General(apply) => {
                let v = v.ok_or_else(|| CoreError::numerical("row space", "a general Σ needs V"))?;
                let sv = apply(v.as_ref());
                let sbeta_m = apply(beta.as_mat());
                let sbeta = Col::from_fn(beta.nrows(), |i| sbeta_m[(i, 0)]);
                let m_diag = (0..r).map(|j| v.col(j).iter().zip(sv.col(j).iter()).map(|(a, b)| a * b).sum()).collect();
                let _ = par;
                (RiskForm::Dense { v, sv, beta: beta.clone(), sbeta }, m_diag)
            }
        };
        if d.iter().chain(&theta).chain(&m_diag).any(|x| !x.is_finite()) {
            return Err(CoreError::numerical("row space", "non-finite singular values or projections"));
        }
        Ok(RowSpace { n, d, theta, u, perp_norm2, form, m_diag })
    }

    /// Number of rows of the design.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Numerical rank r.
    pub fn rank(&self) -> usize {
        self.d.len()
    }

    /// Left singular vectors (n × r), if the row space came from a factorization.
    pub fn u(&self) -> Option<&Mat<f64>> {
        self.u.as_ref()
    }

    /// The right singular vectors V (p × r) when the row space keeps them: a factorized
    /// design with a general Σ (`SigmaForm::General`), before
    /// [`Self::with_projected_covariance`].
    pub fn v(&self) -> Option<&Mat<f64>> {
        match &self.form {
            RiskForm::Dense { v, .. } => Some(v),
            _ => None,
        }
    }

    /// diag(VᵀΣV): the Σ-weight of each singular direction.
    pub fn m_diag(&self) -> &[f64] {
        &self.m_diag
    }

    /// ‖β⊥‖², the squared norm of β outside the row space.
    pub fn perp_norm2(&self) -> f64 {
        self.perp_norm2
    }

    /// Risk ‖V b − β‖²_Σ of the estimate with row-space coordinates `b`
    /// (docs/spectral-recursion.md §4).
    pub fn risk_of_coords(&self, b: &[f64], par: Par) -> f64 {
        match &self.form {
            RiskForm::LowRank { scale, terms } => {
                let inside: f64 = b.iter().zip(&self.theta).map(|(bi, ti)| (bi - ti) * (bi - ti)).sum();
                let mut risk = scale * (inside + self.perp_norm2);
                for (c, w, qb) in terms {
                    let wb = dot(w, b);
                    risk += c * (wb - qb) * (wb - qb);
                }
                risk
            }
            RiskForm::Dense { v, sv, beta, sbeta } => {
                let bc = Col::<f64>::from_fn(b.len(), |i| b[i]);
                let err = matvec(v.as_ref(), bc.as_ref(), par) - beta;
                let serr = matvec(sv.as_ref(), bc.as_ref(), par) - sbeta;
                err.iter().zip(serr.iter()).map(|(a, b)| a * b).sum()
            }
            RiskForm::Projected { m, h, c } => {
                let e: Vec<f64> = b.iter().zip(&self.theta).map(|(bi, ti)| bi - ti).collect();
                let mut quad = 0.0;
                for j in 0..e.len() {
                    let col = m.col(j);
                    let mut s = 0.0;
                    for i in 0..e.len() {
                        s += col[i] * e[i];
                    }
                    quad += e[j] * s;
                }
                quad - 2.0 * dot(&e, h) + c
            }
        }
    }

    /// Switch a dense-Σ risk to the precomputed O(r²) form: M = VᵀΣV, h = VᵀΣβ⊥,
    /// c = β⊥ᵀΣβ⊥ (docs/numerics.md §6). Other forms are returned unchanged.
    #[must_use]
    pub fn with_projected_covariance(mut self, par: Par) -> Self {
        if let RiskForm::Dense { v, sv, beta, sbeta } = &self.form {
            let m = matmul(v.transpose(), sv.as_ref(), par);
            let theta = Col::<f64>::from_fn(self.theta.len(), |i| self.theta[i]);
            let beta_perp = beta - matvec(v.as_ref(), theta.as_ref(), par);
            let sbeta_perp = sbeta - matvec(sv.as_ref(), theta.as_ref(), par);
            let h_col = t_matvec(v.as_ref(), sbeta_perp.as_ref(), par);
            let h: Vec<f64> = h_col.iter().copied().collect();
            let c: f64 = beta_perp.iter().zip(sbeta_perp.iter()).map(|(a, b)| a * b).sum();
            self.form = RiskForm::Projected { m, h, c };
        }
        self
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, Streams, normal_vec};

    /// A dense Σ (diagonal) evaluated by reconstruction, by the stored-ΣV form and by
    /// the precomputed O(r²) form gives the same risk.
    #[test]
    fn risk_forms_agree() {
        for (n, p) in [(12, 30), (20, 15)] {
            let tau: Vec<f64> = (1..=p).map(|k| 1.0 / k as f64).collect();
            let apply = |m: MatRef<'_, f64>| Mat::from_fn(m.nrows(), m.ncols(), |i, j| tau[i] * m[(i, j)]);
            let mut rng = Streams::new(5, 0, 0).rng(Purpose::Design, 0);
            let z = normal_vec(&mut rng, 1.0, n * p);
            let x = Mat::from_fn(n, p, |i, j| z[i * p + j] * tau[j].sqrt());
            let beta = Col::from_fn(p, |i| (i as f64 + 0.5).cos());
            let dense = RowSpace::factorize(x.as_ref(), &beta, SigmaForm::General(&apply), Par::Seq).unwrap();
            let b: Vec<f64> = (0..dense.rank()).map(|i| (i as f64).sin()).collect();
            let r1 = dense.risk_of_coords(&b, Par::Seq);
            // Direct: β̂ = V b from a fresh SVD.
            let svd = linalg::truncated_svd(x.as_ref(), Par::Seq).unwrap();
            let bhat = matvec(svd.v.as_ref(), Col::from_fn(b.len(), |i| b[i]).as_ref(), Par::Seq);
            let err = &bhat - &beta;
            let direct: f64 = err.iter().zip(&tau).map(|(e, t)| t * e * e).sum();
            // Signs of singular vectors may differ between the two factorizations when
            // the Gram path is used; compare the sign-invariant risk at b = θ instead.
            let at_theta = dense.risk_of_coords(&dense.theta, Par::Seq);
            let perp: Vec<f64> = {
                let vt = t_matvec(svd.v.as_ref(), beta.as_ref(), Par::Seq);
                let back = matvec(svd.v.as_ref(), vt.as_ref(), Par::Seq);
                (&beta - &back).iter().copied().collect()
            };
            let perp_risk: f64 = perp.iter().zip(&tau).map(|(e, t)| t * e * e).sum();
            assert!((at_theta - perp_risk).abs() < 1e-10 * perp_risk.max(1.0), "{at_theta} vs {perp_risk}");
            if (p as f64) < 1.5 * n as f64 {
                assert!((r1 - direct).abs() < 1e-10 * direct.max(1.0), "{r1} vs {direct}");
            }
            let r2 = dense.with_projected_covariance(Par::Seq).risk_of_coords(&b, Par::Seq);
            assert!((r1 - r2).abs() < 1e-10 * r1.max(1.0), "{r1} vs {r2}");
        }
    }
}
