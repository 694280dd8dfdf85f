//! What one replicate shares between the cells of its design group: the design X, the
//! signal β and the row space of X, each computed at most once and only if a setting
//! asks for it.
//!
//! The row space (singular values d, θ = Vᵀβ, and what the risk needs) is obtained in
//! the cheapest exact way:
//! * **thin SVD** of X (faer), the general case;
//! * **Gram eigendecomposition** XXᵀ = U diag(d²) Uᵀ when p ≥ 1.5·n: O(n²p + n³) instead
//!   of a thin SVD, with V = XᵀU diag(1/d) formed only when the risk needs it (for
//!   Σ = a·I + low rank it does not: θ = diag(1/d) Uᵀ(Xβ)). For p ≥ 1.5n the condition
//!   number of XXᵀ stays moderate, so squaring it costs no meaningful accuracy;
//! * **Laguerre sampling** ([`RowSpaceMode::SampleIsotropic`], isotropic Gaussian
//!   designs): the singular values of an n × p matrix of iid N(0, 1) entries have the
//!   law of those of the m × m upper bidiagonal matrix with diagonal χ_N, χ_{N−1}, …,
//!   χ_{N−m+1} and superdiagonal χ_{m−1}, …, χ_1 (m = min(n, p), N = max(n, p);
//!   Silverstein 1985, Dumitriu & Edelman 2002), and V is Haar-distributed independently
//!   of them, so θ = Vᵀβ has the law of ‖β‖ times the first m coordinates of a uniform
//!   unit vector of R^p. Sampling costs O(m²) (an implicit QL on the tridiagonal BBᵀ)
//!   instead of O(n·p·m), exactly in distribution. X and U are never formed.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::{Accum, Col, Mat, MatRef, Side};
use rand_distr::{ChiSquared, Distribution};

use crate::error::CoreError;
use crate::model::{Covariance, Signal};
use crate::rng::{Purpose, Rng, Streams, normal_vec};

/// The result of one iteration of one chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Realised excess risk ‖β̂_t − β‖²_Σ.
    pub risk: f64,
    /// Exact conditional expectation E[‖β̂_t − β‖²_Σ | X, β], where the setting can
    /// compute it in closed form.
    pub risk_exact: Option<f64>,
}

/// A fixed design of one replicate.
#[derive(Debug)]
pub struct Design {
    /// The n × p design matrix.
    pub x: Mat<f64>,
}

/// How a setting needs the row space of a fixed design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowSpaceMode {
    /// Draw X and factorize it (thin SVD, or Gram eigendecomposition for p ≥ 1.5n);
    /// U is available.
    Factorize,
    /// Sample the row space directly where that is exact in distribution (Gaussian
    /// designs with Σ = I: Laguerre model; Σ = a·I + low rank with orthonormal
    /// directions and p ≥ 1.5n: Bartlett model); otherwise as
    /// [`RowSpaceMode::Factorize`]. Neither X nor U exists: only for settings that draw
    /// projected noise directly.
    SampleIsotropic,
}

/// The data of one (design group, replicate), shared by every cell of the group.
#[derive(Debug)]
pub struct ReplicateData {
    n: usize,
    p: usize,
    streams: Streams,
    covariance: Arc<dyn Covariance>,
    signal: Arc<dyn Signal>,
    factorizations: Arc<AtomicUsize>,
    mode: RowSpaceMode,
    evaluations: usize,
    beta: OnceLock<Result<Col<f64>, CoreError>>,
    design: OnceLock<Design>,
    row_space: OnceLock<Result<RowSpace, CoreError>>,
}

impl ReplicateData {
    /// Lazily drawn data for one replicate of a design group (row space by
    /// factorization; see [`Self::with_mode`]).
    pub fn new(
        n: usize,
        p: usize,
        streams: Streams,
        covariance: Arc<dyn Covariance>,
        signal: Arc<dyn Signal>,
        factorizations: Arc<AtomicUsize>,
    ) -> Self {
        ReplicateData {
            n,
            p,
            streams,
            covariance,
            signal,
            factorizations,
            mode: RowSpaceMode::Factorize,
            evaluations: 0,
            beta: OnceLock::new(),
            design: OnceLock::new(),
            row_space: OnceLock::new(),
        }
    }

    /// Choose how the row space is obtained.
    #[must_use]
    pub fn with_mode(mut self, mode: RowSpaceMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many risk evaluations the cells of this replicate will make in total; with a
    /// dense Σ, more than r of them make precomputing VᵀΣV (O(p·r²)) worth it, so that each
    /// evaluation costs O(r²) instead of O(p·r).
    #[must_use]
    pub fn with_evaluation_hint(mut self, evaluations: usize) -> Self {
        self.evaluations = evaluations;
        self
    }

    /// The stream factory of this replicate.
    pub fn streams(&self) -> Streams {
        self.streams
    }

    /// The covariance of the design group.
    pub fn covariance(&self) -> &dyn Covariance {
        self.covariance.as_ref()
    }

    /// The true signal β (drawn once per replicate from the signal stream).
    pub fn beta(&self) -> Result<&Col<f64>, CoreError> {
        self.beta
            .get_or_init(|| {
                let mut rng = self.streams.rng(Purpose::Signal, 0);
                let beta = self.signal.draw(self.covariance.as_ref(), &mut rng)?;
                if beta.nrows() != self.p {
                    return Err(CoreError::numerical(
                        "signal",
                        format!("signal returned {} coordinates, expected p = {}", beta.nrows(), self.p),
                    ));
                }
                Ok(beta)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The fixed design X of this replicate (drawn once from the design stream). Under
    /// [`RowSpaceMode::SampleIsotropic`] the row space does not come from this matrix.
    pub fn design(&self) -> &Design {
        self.design.get_or_init(|| {
            let mut rng = self.streams.rng(Purpose::Design, 0);
            Design { x: self.covariance.sample(self.n, &mut rng) }
        })
    }

    /// The row space of the fixed design, computed once per replicate and shared by
    /// every cell of the design group.
    pub fn row_space(&self) -> Result<&RowSpace, CoreError> {
        self.row_space
            .get_or_init(|| {
                self.factorizations.fetch_add(1, Ordering::Relaxed);
                let beta = self.beta()?;
                let sample = self.mode == RowSpaceMode::SampleIsotropic;
                let low_rank = self.covariance.low_rank_form().filter(|lr| {
                    lr.has_orthonormal_terms() && (self.p as f64) >= 1.5 * self.n as f64 && lr.scale > 0.0
                });
                if sample && self.covariance.is_isotropic() {
                    let mut rng = self.streams.rng(Purpose::Design, 0);
                    RowSpace::sample_isotropic(self.n, self.p, beta, self.covariance.clone(), &mut rng)
                } else if let (true, Some(lr)) = (sample, low_rank) {
                    let mut rng = self.streams.rng(Purpose::Design, 0);
                    RowSpace::sample_low_rank(self.n, self.p, beta, self.covariance.clone(), lr, &mut rng)
                } else {
                    let rs = RowSpace::factorize(&self.design().x, beta, self.covariance.clone())?;
                    Ok(if self.evaluations > rs.rank() { rs.with_projected_covariance() } else { rs })
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A thin SVD X = U diag(d) Vᵀ restricted to the numerical rank r.
#[derive(Debug, Clone)]
pub struct TruncatedSvd {
    /// Singular values above `d_max · max(n, p) · eps`, descending (length r).
    pub d: Vec<f64>,
    /// Left singular vectors, n × r.
    pub u: Mat<f64>,
    /// Right singular vectors, p × r.
    pub v: Mat<f64>,
}

/// The thin SVD of `x` with singular values below `d_max · max(n, p) · eps` treated as
/// zero, as `pinv`/`lstsq` do. The one place that cut is made, for the fixed-design row
/// space and for estimators that refit.
pub fn truncated_svd(x: MatRef<'_, f64>) -> Result<TruncatedSvd, CoreError> {
    let (n, p) = (x.nrows(), x.ncols());
    let svd = x.thin_svd().map_err(|e| CoreError::numerical("thin SVD", format!("{e:?} (n = {n}, p = {p})")))?;
    let s = svd.S().column_vector();
    let d_max = finite_or("thin SVD", if s.nrows() > 0 { s[0] } else { 0.0 })?;
    let tol = d_max * (n.max(p) as f64) * f64::EPSILON;
    let r = s.iter().take_while(|&&di| di > tol).count();
    Ok(TruncatedSvd {
        d: s.iter().take(r).copied().collect(),
        u: svd.U().subcols(0, r).to_owned(),
        v: svd.V().subcols(0, r).to_owned(),
    })
}

/// How ‖V b − β‖²_Σ is evaluated.
#[derive(Debug)]
enum RiskForm {
    /// Σ = a·I + Σ_k c_k q_k q_kᵀ: a(‖b − θ‖² + ‖β⊥‖²) + Σ_k c_k (w_kᵀb − q_kᵀβ)²,
    /// w_k = Vᵀq_k. O(r·K).
    LowRank { scale: f64, terms: Vec<(f64, Vec<f64>, f64)> },
    /// Any Σ: reconstruct V b (O(p·r)) and apply Σ.
    Dense { v: Mat<f64>, beta: Col<f64> },
    /// Any Σ with M = VᵀΣV, h = VᵀΣβ⊥ and c = β⊥ᵀΣβ⊥ precomputed:
    /// eᵀMe − 2eᵀh + c with e = b − θ. O(r²).
    Projected { m: Mat<f64>, h: Vec<f64>, c: f64 },
}

/// The row space of a fixed design restricted to its numerical rank, with what every
/// spectral computation needs: singular values d, θ = Vᵀβ, the Σ-weights of the
/// singular directions, and the risk evaluation.
#[derive(Debug)]
pub struct RowSpace {
    n: usize,
    /// Singular values above `d_max · max(n, p) · eps`, descending (length r).
    pub d: Vec<f64>,
    /// θ = Vᵀβ.
    pub theta: Vec<f64>,
    u: Option<Mat<f64>>,
    /// ‖β⊥‖², β⊥ = β − Vθ (Euclidean).
    perp_norm2: f64,
    covariance: Arc<dyn Covariance>,
    form: RiskForm,
    /// diag(VᵀΣV): the Σ-weight of each singular direction.
    m_diag: Vec<f64>,
}

fn finite_or(what: &'static str, x: f64) -> Result<f64, CoreError> {
    if x.is_finite() { Ok(x) } else { Err(CoreError::numerical(what, "non-finite value")) }
}

impl RowSpace {
    /// Factorize `x` (thin SVD, or the Gram matrix's eigendecomposition when p ≥ 1.5n)
    /// and project `beta`. V is formed only when the risk needs it (Σ without a
    /// low-rank form), and then kept once, in the risk evaluation.
    pub fn factorize(x: &Mat<f64>, beta: &Col<f64>, covariance: Arc<dyn Covariance>) -> Result<Self, CoreError> {
        let (n, p) = (x.nrows(), x.ncols());
        let low_rank = covariance.low_rank_form();
        let need_v = low_rank.is_none();
        let (d, u, v) = if (p as f64) >= 1.5 * n as f64 {
            // XXᵀ = U diag(d²) Uᵀ; only the lower triangle is formed (half the flops of a
            // full product) because the symmetric eigensolver reads only that half.
            let gram = lower_gram(x.as_ref(), x.transpose(), BlockStructure::Rectangular, BlockStructure::Rectangular);
            let eig = gram
                .self_adjoint_eigen(Side::Lower)
                .map_err(|e| CoreError::numerical("eigendecomposition of XXᵀ", format!("{e:?} (n = {n}, p = {p})")))?;
            let ev = eig.S().column_vector();
            let lmax = ev.iter().copied().fold(0.0f64, f64::max);
            finite_or("eigendecomposition of XXᵀ", lmax)?;
            // Same cut as the SVD (d below d_max·max(n,p)·eps is zero), on d² = λ.
            let d_tol = lmax.sqrt() * (n.max(p) as f64) * f64::EPSILON;
            let order: Vec<usize> = (0..n).rev().filter(|&i| ev[i] > 0.0 && ev[i].sqrt() > d_tol).collect();
            let d: Vec<f64> = order.iter().map(|&i| ev[i].sqrt()).collect();
            let u = Mat::from_fn(n, order.len(), |i, j| eig.U()[(i, order[j])]);
            let v = need_v.then(|| {
                let mut v = x.transpose() * &u;
                for (j, dj) in d.iter().enumerate() {
                    for i in 0..p {
                        v[(i, j)] /= dj;
                    }
                }
                v
            });
            (d, u, v)
        } else {
            let svd = truncated_svd(x.as_ref())?;
            (svd.d, svd.u, need_v.then_some(svd.v))
        };
        // θ = Vᵀβ = diag(1/d) Uᵀ(Xβ): no V needed.
        let xb = x * beta;
        let utxb = u.transpose() * &xb;
        let theta: Vec<f64> = (0..d.len()).map(|i| utxb[i] / d[i]).collect();
        // Projections of the rank-one directions on the row space: Vᵀq = diag(1/d)Uᵀ(Xq).
        let projections: Vec<Vec<f64>> = low_rank
            .iter()
            .flat_map(|lr| lr.terms.iter())
            .map(|(_, q)| {
                let uq = u.transpose() * (x * q);
                (0..d.len()).map(|i| uq[i] / d[i]).collect()
            })
            .collect();
        Self::assemble(n, d, theta, beta, Some(u), v, covariance, low_rank, projections)
    }

    /// Sample the row space of an n × p isotropic Gaussian design (module docs).
    pub fn sample_isotropic(
        n: usize,
        p: usize,
        beta: &Col<f64>,
        covariance: Arc<dyn Covariance>,
        rng: &mut Rng,
    ) -> Result<Self, CoreError> {
        let (m, big) = (n.min(p), n.max(p));
        let chi = |k: usize, rng: &mut Rng| -> Result<f64, CoreError> {
            let dist = ChiSquared::new(k as f64)
                .map_err(|e| CoreError::numerical("Laguerre sampling", format!("χ²({k}): {e}")))?;
            let x: f64 = dist.sample(rng);
            Ok(x.sqrt())
        };
        let mut a = Vec::with_capacity(m);
        let mut b = Vec::with_capacity(m);
        for i in 0..m {
            a.push(chi(big - i, rng)?);
            b.push(if i + 1 < m { chi(m - 1 - i, rng)? } else { 0.0 });
        }
        // T = BBᵀ for the upper bidiagonal B: T_ii = a_i² + b_i², T_{i,i+1} = b_i a_{i+1}.
        let mut diag: Vec<f64> = (0..m).map(|i| a[i] * a[i] + b[i] * b[i]).collect();
        let mut off: Vec<f64> = (0..m).map(|i| if i + 1 < m { b[i] * a[i + 1] } else { 0.0 }).collect();
        tridiagonal_eigenvalues(&mut diag, &mut off)?;
        let mut d: Vec<f64> = diag.iter().map(|&l| l.max(0.0).sqrt()).collect();
        d.sort_by(|x, y| y.total_cmp(x));
        let d_max = d.first().copied().unwrap_or(0.0);
        let tol = d_max * (big as f64) * f64::EPSILON;
        d.retain(|&x| x > tol);
        // θ = ‖β‖ × (first r coordinates of a uniform unit vector of R^p).
        let z = normal_vec(rng, 1.0, p);
        let znorm = z.iter().map(|x| x * x).sum::<f64>().sqrt();
        let bnorm = beta.norm_l2();
        let scale = if znorm > 0.0 { bnorm / znorm } else { 0.0 };
        let theta: Vec<f64> = z.iter().take(d.len()).map(|zi| zi * scale).collect();
        // Σ = I: the low-rank form has no rank-one terms, so no projections are needed.
        let low_rank = covariance.low_rank_form();
        Self::assemble(n, d, theta, beta, None, None, covariance, low_rank, Vec::new())
    }

    /// Sample the row space of an n × p Gaussian design with Σ = a(I + Σ_k (c_k/a) q_k q_kᵀ),
    /// q_k orthonormal, p − K ≥ n. With Q⊥ completing the q_k to a basis, Z Q = G_K
    /// (n × K) and Z Q⊥ = L Ω (Bartlett: L lower triangular with L_ii = χ_{p−K−i},
    /// N(0, 1) below the diagonal; Ω with Haar-distributed orthonormal rows, independent
    /// of L). Then XXᵀ = a(LLᵀ + G_K diag(1 + c/a) G_Kᵀ),
    /// Xβ = √a(G_K diag(√(1 + c/a)) Qᵀβ + L Ω Q⊥ᵀβ) with Ω Q⊥ᵀβ distributed as
    /// ‖Q⊥ᵀβ‖ times the first n coordinates of a uniform unit vector of R^{p−K}, and
    /// X q_k = √(a + c_k) G_K e_k. Exact in distribution; O(n³) with no O(n²p) term.
    pub fn sample_low_rank(
        n: usize,
        p: usize,
        beta: &Col<f64>,
        covariance: Arc<dyn Covariance>,
        lr: crate::model::LowRankForm,
        rng: &mut Rng,
    ) -> Result<Self, CoreError> {
        let k = lr.terms.len();
        let dof = p.checked_sub(k).filter(|&m| m >= n).ok_or_else(|| {
            CoreError::numerical("Bartlett sampling", format!("needs p − K ≥ n (p = {p}, K = {k}, n = {n})"))
        })?;
        let a = lr.scale;
        // Bartlett factor of the bulk's Wishart(n, p − K).
        let mut l = Mat::<f64>::zeros(n, n);
        for i in 0..n {
            let chi2 = ChiSquared::new((dof - i) as f64)
                .map_err(|e| CoreError::numerical("Bartlett sampling", format!("χ²({}): {e}", dof - i)))?;
            let x: f64 = chi2.sample(rng);
            l[(i, i)] = x.sqrt();
            let below = normal_vec(rng, 1.0, i);
            for j in 0..i {
                l[(i, j)] = below[j];
            }
        }
        let gk_draws = normal_vec(rng, 1.0, n * k);
        let gk = Mat::from_fn(n, k, |i, j| gk_draws[i * k + j]);
        let mut gram =
            lower_gram(l.as_ref(), l.transpose(), BlockStructure::TriangularLower, BlockStructure::TriangularUpper);
        for (j, (c, _)) in lr.terms.iter().enumerate() {
            let f = 1.0 + c / a;
            for s in 0..n {
                for r in s..n {
                    gram[(r, s)] += f * gk[(r, j)] * gk[(s, j)];
                }
            }
        }
        gram *= a;
        let eig = gram
            .self_adjoint_eigen(Side::Lower)
            .map_err(|e| CoreError::numerical("eigendecomposition of the sampled XXᵀ", format!("{e:?}")))?;
        let ev = eig.S().column_vector();
        let lmax = finite_or("eigendecomposition of the sampled XXᵀ", ev.iter().copied().fold(0.0f64, f64::max))?;
        let d_tol = lmax.sqrt() * (p.max(n) as f64) * f64::EPSILON;
        let order: Vec<usize> = (0..n).rev().filter(|&i| ev[i] > 0.0 && ev[i].sqrt() > d_tol).collect();
        let d: Vec<f64> = order.iter().map(|&i| ev[i].sqrt()).collect();
        let u = Mat::from_fn(n, order.len(), |i, j| eig.U()[(i, order[j])]);
        // Xβ from the signal's components along the q_k and its bulk norm.
        let qb: Vec<f64> = lr.terms.iter().map(|(_, q)| q.iter().zip(beta.iter()).map(|(x, y)| x * y).sum()).collect();
        let bulk = (beta.squared_norm_l2() - qb.iter().map(|x| x * x).sum::<f64>()).max(0.0).sqrt();
        let z = normal_vec(rng, 1.0, dof);
        let znorm = z.iter().map(|x| x * x).sum::<f64>().sqrt();
        let scale = if znorm > 0.0 { bulk / znorm } else { 0.0 };
        let omega_b = Col::<f64>::from_fn(n, |i| z[i] * scale);
        let mut xb = &l * &omega_b;
        for (j, (c, _)) in lr.terms.iter().enumerate() {
            let f = (1.0 + c / a).sqrt() * qb[j];
            for i in 0..n {
                xb[i] += f * gk[(i, j)];
            }
        }
        xb *= a.sqrt();
        let project = |v: &Col<f64>| -> Vec<f64> {
            let uv = u.transpose() * v;
            (0..d.len()).map(|i| uv[i] / d[i]).collect()
        };
        let theta = project(&xb);
        let projections: Vec<Vec<f64>> = lr
            .terms
            .iter()
            .enumerate()
            .map(|(j, (c, _))| project(&Col::from_fn(n, |i| (a + c).sqrt() * gk[(i, j)])))
            .collect();
        Self::assemble(n, d, theta, beta, None, None, covariance, Some(lr), projections)
    }

    #[allow(clippy::too_many_arguments)]
    fn assemble(
        n: usize,
        d: Vec<f64>,
        theta: Vec<f64>,
        beta: &Col<f64>,
        u: Option<Mat<f64>>,
        v: Option<Mat<f64>>,
        covariance: Arc<dyn Covariance>,
        low_rank: Option<crate::model::LowRankForm>,
        projections: Vec<Vec<f64>>,
    ) -> Result<Self, CoreError> {
        let r = d.len();
        let theta2: f64 = theta.iter().map(|t| t * t).sum();
        // ‖β⊥‖² = ‖β‖² − ‖θ‖² (V has orthonormal columns); clamp rounding below zero.
        let perp_norm2 = (beta.squared_norm_l2() - theta2).max(0.0);
        let (form, m_diag) = match (low_rank, v) {
            (Some(lr), _) => {
                let mut m_diag = vec![lr.scale; r];
                let mut terms = Vec::with_capacity(lr.terms.len());
                if projections.len() != lr.terms.len() {
                    return Err(CoreError::numerical("row space", "missing projections of the low-rank terms"));
                }
                for ((c, q), w) in lr.terms.iter().zip(projections) {
                    let qb: f64 = q.iter().zip(beta.iter()).map(|(a, b)| a * b).sum();
                    for i in 0..r {
                        m_diag[i] += c * w[i] * w[i];
                    }
                    terms.push((*c, w, qb));
                }
                (RiskForm::LowRank { scale: lr.scale, terms }, m_diag)
            }
            (None, Some(v)) => {
                let sv = covariance.apply(v.as_ref());
                let m_diag = (0..r).map(|j| v.col(j).iter().zip(sv.col(j).iter()).map(|(a, b)| a * b).sum()).collect();
                (RiskForm::Dense { v, beta: beta.clone() }, m_diag)
            }
            (None, None) => {
                return Err(CoreError::numerical("row space", "a covariance without low-rank form needs V"));
            }
        };
        if d.iter().chain(&theta).chain(&m_diag).any(|x| !x.is_finite()) {
            return Err(CoreError::numerical("row space", "non-finite singular values or projections"));
        }
        Ok(RowSpace { n, d, theta, u, perp_norm2, covariance, form, m_diag })
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

    /// True when Σ = I.
    pub fn isotropic(&self) -> bool {
        self.covariance.is_isotropic()
    }

    /// diag(VᵀΣV).
    pub fn m_diag(&self) -> &[f64] {
        &self.m_diag
    }

    /// ‖β⊥‖², the squared norm of β outside the row space.
    pub fn perp_norm2(&self) -> f64 {
        self.perp_norm2
    }

    /// Risk ‖V b − β‖²_Σ of the estimate with row-space coordinates `b` (β̂ = V b):
    /// O(r·K) when Σ = a·I + rank K, O(p·r) otherwise.
    pub fn risk_of_coords(&self, b: &[f64]) -> f64 {
        match &self.form {
            RiskForm::LowRank { scale, terms } => {
                let inside: f64 = b.iter().zip(&self.theta).map(|(bi, ti)| (bi - ti) * (bi - ti)).sum();
                let mut risk = scale * (inside + self.perp_norm2);
                for (c, w, qb) in terms {
                    let wb: f64 = w.iter().zip(b).map(|(x, y)| x * y).sum();
                    risk += c * (wb - qb) * (wb - qb);
                }
                risk
            }
            RiskForm::Dense { v, beta } => {
                let bc = Col::<f64>::from_fn(b.len(), |i| b[i]);
                let err = v * &bc - beta;
                self.covariance.quad_form(err.as_ref())
            }
            RiskForm::Projected { m, h, c } => {
                let r = b.len();
                let e: Vec<f64> = b.iter().zip(&self.theta).map(|(bi, ti)| bi - ti).collect();
                let mut quad = 0.0;
                for j in 0..r {
                    let col = m.col(j);
                    let mut s = 0.0;
                    for i in 0..r {
                        s += col[i] * e[i];
                    }
                    quad += e[j] * s;
                }
                let cross: f64 = e.iter().zip(h).map(|(x, y)| x * y).sum();
                quad - 2.0 * cross + c
            }
        }
    }

    /// Switch a dense-Σ risk to the precomputed O(r²) form (THEORY.md §E): M = VᵀΣV,
    /// h = VᵀΣβ⊥, c = β⊥ᵀΣβ⊥. Other forms are returned unchanged.
    #[must_use]
    pub fn with_projected_covariance(mut self) -> Self {
        if let RiskForm::Dense { v, beta } = &self.form {
            let sv = self.covariance.apply(v.as_ref());
            let m = v.transpose() * &sv;
            let theta = Col::<f64>::from_fn(self.theta.len(), |i| self.theta[i]);
            let beta_perp = beta - v * &theta;
            let h_col = sv.transpose() * &beta_perp;
            let h: Vec<f64> = h_col.iter().copied().collect();
            let c = self.covariance.quad_form(beta_perp.as_ref());
            self.form = RiskForm::Projected { m, h, c };
        }
        self
    }
}

/// The lower triangle of lhs·rhs (the upper triangle is left zero), for symmetric
/// products read by a `Side::Lower` eigensolver.
fn lower_gram(
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    lhs_structure: BlockStructure,
    rhs_structure: BlockStructure,
) -> Mat<f64> {
    let mut out = Mat::<f64>::zeros(lhs.nrows(), rhs.ncols());
    triangular::matmul(
        out.as_mut(),
        BlockStructure::TriangularLower,
        Accum::Replace,
        lhs,
        lhs_structure,
        rhs,
        rhs_structure,
        1.0,
        faer::get_global_parallelism(),
    );
    out
}

/// Eigenvalues of the symmetric tridiagonal matrix with diagonal `diag` and
/// off-diagonal `off` (off[i] couples i and i + 1; the last entry is ignored), in place
/// in `diag` (unsorted), by the implicit QL algorithm with Wilkinson shifts (as in
/// EISPACK tql1). O(m²) in total.
pub fn tridiagonal_eigenvalues(diag: &mut [f64], off: &mut [f64]) -> Result<(), CoreError> {
    let m = diag.len();
    if m == 0 {
        return Ok(());
    }
    off[m - 1] = 0.0;
    for l in 0..m {
        let mut iterations = 0;
        loop {
            let mut k = l;
            while k + 1 < m {
                let dd = diag[k].abs() + diag[k + 1].abs();
                if off[k].abs() <= f64::EPSILON * dd {
                    break;
                }
                k += 1;
            }
            if k == l {
                break;
            }
            iterations += 1;
            if iterations > 60 {
                return Err(CoreError::numerical("tridiagonal eigenvalues", "QL did not converge in 60 sweeps"));
            }
            let mut g = (diag[l + 1] - diag[l]) / (2.0 * off[l]);
            let mut r = g.hypot(1.0);
            g = diag[k] - diag[l] + off[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut underflow = false;
            let mut i = k;
            while i > l {
                i -= 1;
                let f = s * off[i];
                let b = c * off[i];
                r = f.hypot(g);
                off[i + 1] = r;
                if r == 0.0 {
                    diag[i + 1] -= p;
                    off[k] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = diag[i + 1] - p;
                r = (diag[i] - g) * s + 2.0 * c * b;
                p = s * r;
                diag[i + 1] = g + p;
                g = c * r - b;
            }
            if underflow {
                continue;
            }
            diag[l] -= p;
            off[l] = g;
            off[k] = 0.0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dense Σ (diagonal, no low-rank form) evaluated by reconstruction and by the
    /// precomputed O(r²) form gives the same risk.
    #[test]
    fn projected_covariance_form_matches_reconstruction() {
        #[derive(Debug)]
        struct Diag(Vec<f64>);
        impl Covariance for Diag {
            fn dim(&self) -> usize {
                self.0.len()
            }
            fn eigenvalues(&self) -> Vec<f64> {
                self.0.clone()
            }
            fn to_eigenbasis(&self, v: faer::ColRef<'_, f64>) -> Col<f64> {
                v.to_owned()
            }
            fn to_standard_basis(&self, c: faer::ColRef<'_, f64>) -> Col<f64> {
                c.to_owned()
            }
            fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64> {
                Mat::from_fn(m.nrows(), m.ncols(), |i, j| self.0[i] * m[(i, j)])
            }
            fn sample(&self, n: usize, rng: &mut Rng) -> Mat<f64> {
                let z = normal_vec(rng, 1.0, n * self.0.len());
                Mat::from_fn(n, self.0.len(), |i, j| z[i * self.0.len() + j] * self.0[j].sqrt())
            }
        }
        for (n, p) in [(12, 30), (20, 15)] {
            let cov: Arc<dyn Covariance> = Arc::new(Diag((1..=p).map(|k| 1.0 / k as f64).collect()));
            let mut rng = Streams::new(5, 0, 0).rng(Purpose::Design, 0);
            let x = cov.sample(n, &mut rng);
            let beta = Col::from_fn(p, |i| (i as f64 + 0.5).cos());
            let dense = RowSpace::factorize(&x, &beta, cov.clone()).unwrap();
            let b: Vec<f64> = (0..dense.rank()).map(|i| (i as f64).sin()).collect();
            let r1 = dense.risk_of_coords(&b);
            let r2 = dense.with_projected_covariance().risk_of_coords(&b);
            assert!((r1 - r2).abs() < 1e-12 * r1.max(1.0), "{r1} vs {r2}");
        }
    }

    /// The QL eigenvalues of a random tridiagonal matrix equal faer's dense solver's.
    #[test]
    fn tridiagonal_eigenvalues_match_dense_solver() {
        let m = 40;
        let mut rng = Streams::new(1, 2, 3).rng(Purpose::Plugin(0), 0);
        let dg = normal_vec(&mut rng, 1.0, m);
        let of = normal_vec(&mut rng, 1.0, m);
        let dense = Mat::from_fn(m, m, |i, j| {
            if i == j {
                dg[i]
            } else if i + 1 == j {
                of[i]
            } else if j + 1 == i {
                of[j]
            } else {
                0.0
            }
        });
        let mut expected: Vec<f64> = dense.self_adjoint_eigenvalues(Side::Lower).unwrap();
        let (mut d, mut o) = (dg.clone(), of.clone());
        tridiagonal_eigenvalues(&mut d, &mut o).unwrap();
        d.sort_by(f64::total_cmp);
        expected.sort_by(f64::total_cmp);
        for (a, b) in d.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-12 * expected.iter().map(|x| x.abs()).fold(0.0, f64::max), "{a} vs {b}");
        }
    }
}
