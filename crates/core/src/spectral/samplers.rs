//! Exact-in-law samplers of the row space of Gaussian designs that never form X
//! (docs/numerics.md §3, §4).

use faer::linalg::matmul::triangular::BlockStructure;
use faer::{Col, Mat, Par};
use rand_distr::{ChiSquared, Distribution};

use crate::error::CoreError;
use crate::rng::{Rng, normal_vec};
use crate::spectral::linalg::{lower_product, matvec, rank_tolerance, symmetric_eigen, t_matvec};
use crate::spectral::row_space::{LowRankForm, Parts, RowSpace, SigmaForm};
use crate::spectral::tridiagonal::tridiagonal_eigenvalues;

fn chi(k: usize, rng: &mut Rng, what: &'static str) -> Result<f64, CoreError> {
    let dist = ChiSquared::new(k as f64).map_err(|e| CoreError::numerical(what, format!("χ²({k}): {e}")))?;
    let x: f64 = dist.sample(rng);
    Ok(x.sqrt())
}

/// Sample the row space of an n × p design with iid N(0, 1) entries: singular values
/// from the Laguerre bidiagonal model and θ = Vᵀβ from rotation invariance
/// (docs/numerics.md §3). O(min(n, p)²); X and U are never formed.
pub fn sample_isotropic(n: usize, p: usize, beta: &Col<f64>, rng: &mut Rng, par: Par) -> Result<RowSpace, CoreError> {
    let (m, big) = (n.min(p), n.max(p));
    let mut a = Vec::with_capacity(m);
    let mut b = Vec::with_capacity(m);
    for i in 0..m {
        a.push(chi(big - i, rng, "Laguerre sampling")?);
        b.push(if i + 1 < m { chi(m - 1 - i, rng, "Laguerre sampling")? } else { 0.0 });
    }
    // T = BBᵀ for the upper bidiagonal B: T_ii = a_i² + b_i², T_{i,i+1} = b_i a_{i+1}.
    let mut diag: Vec<f64> = (0..m).map(|i| a[i] * a[i] + b[i] * b[i]).collect();
    let mut off: Vec<f64> = (0..m).map(|i| if i + 1 < m { b[i] * a[i + 1] } else { 0.0 }).collect();
    tridiagonal_eigenvalues(&mut diag, &mut off)?;
    let mut d: Vec<f64> = diag.iter().map(|&l| l.max(0.0).sqrt()).collect();
    d.sort_by(|x, y| y.total_cmp(x));
    let tol = rank_tolerance(d.first().copied().unwrap_or(0.0), n, p);
    d.retain(|&x| x > tol);
    // θ = ‖β‖ × (first r coordinates of a uniform unit vector of R^p).
    let z = normal_vec(rng, 1.0, p);
    let znorm = z.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = if znorm > 0.0 { beta.norm_l2() / znorm } else { 0.0 };
    let theta: Vec<f64> = z.iter().take(d.len()).map(|zi| zi * scale).collect();
    let identity = LowRankForm { scale: 1.0, terms: Vec::new() };
    RowSpace::assemble(
        Parts { n, d, theta, beta, u: None, v: None, projections: Vec::new() },
        SigmaForm::LowRank(identity),
        par,
    )
}

/// Sample the row space of an n × p Gaussian design with Σ = a(I + Σ_k (c_k/a) q_k q_kᵀ),
/// q_k orthonormal, p − K ≥ n, through the Bartlett decomposition of the bulk
/// (docs/numerics.md §4). O(n³) with no O(n²p) term.
pub fn sample_low_rank(
    n: usize,
    p: usize,
    beta: &Col<f64>,
    lr: LowRankForm,
    rng: &mut Rng,
    par: Par,
) -> Result<RowSpace, CoreError> {
    let k = lr.terms.len();
    let dof = p.checked_sub(k).filter(|&m| m >= n).ok_or_else(|| {
        CoreError::numerical("Bartlett sampling", format!("needs p − K ≥ n (p = {p}, K = {k}, n = {n})"))
    })?;
    let a = lr.scale;
    // Bartlett factor of the bulk's Wishart(n, p − K).
    let mut l = Mat::<f64>::zeros(n, n);
    for i in 0..n {
        l[(i, i)] = chi(dof - i, rng, "Bartlett sampling")?;
        let below = normal_vec(rng, 1.0, i);
        for j in 0..i {
            l[(i, j)] = below[j];
        }
    }
    let gk_draws = normal_vec(rng, 1.0, n * k);
    let gk = Mat::from_fn(n, k, |i, j| gk_draws[i * k + j]);
    let mut gram =
        lower_product(l.as_ref(), l.transpose(), BlockStructure::TriangularLower, BlockStructure::TriangularUpper, par);
    for (j, (c, _)) in lr.terms.iter().enumerate() {
        let f = 1.0 + c / a;
        for s in 0..n {
            for r in s..n {
                gram[(r, s)] += f * gk[(r, j)] * gk[(s, j)];
            }
        }
    }
    gram *= a;
    let (ev, vecs) = symmetric_eigen(gram.as_ref(), par)?;
    let lmax = ev.iter().copied().fold(0.0f64, f64::max);
    if !lmax.is_finite() {
        return Err(CoreError::numerical("Bartlett sampling", "non-finite eigenvalue of the sampled XXᵀ"));
    }
    let tol = rank_tolerance(lmax.sqrt(), n, p);
    let order: Vec<usize> = (0..n).rev().filter(|&i| ev[i] > 0.0 && ev[i].sqrt() > tol).collect();
    let d: Vec<f64> = order.iter().map(|&i| ev[i].sqrt()).collect();
    let u = Mat::from_fn(n, order.len(), |i, j| vecs[(i, order[j])]);
    // Xβ from the signal's components along the q_k and its bulk norm.
    let qb: Vec<f64> = lr.terms.iter().map(|(_, q)| q.iter().zip(beta.iter()).map(|(x, y)| x * y).sum()).collect();
    let bulk = (beta.squared_norm_l2() - qb.iter().map(|x| x * x).sum::<f64>()).max(0.0).sqrt();
    let z = normal_vec(rng, 1.0, dof);
    let znorm = z.iter().map(|x| x * x).sum::<f64>().sqrt();
    let scale = if znorm > 0.0 { bulk / znorm } else { 0.0 };
    let omega_b = Col::<f64>::from_fn(n, |i| z[i] * scale);
    let mut xb = matvec(l.as_ref(), omega_b.as_ref(), par);
    for (j, (c, _)) in lr.terms.iter().enumerate() {
        let f = (1.0 + c / a).sqrt() * qb[j];
        for i in 0..n {
            xb[i] += f * gk[(i, j)];
        }
    }
    xb *= a.sqrt();
    let project = |v: &Col<f64>| -> Vec<f64> {
        let uv = t_matvec(u.as_ref(), v.as_ref(), par);
        (0..d.len()).map(|i| uv[i] / d[i]).collect()
    };
    let theta = project(&xb);
    let projections: Vec<Vec<f64>> = lr
        .terms
        .iter()
        .enumerate()
        .map(|(j, (c, _))| project(&Col::from_fn(n, |i| (a + c).sqrt() * gk[(i, j)])))
        .collect();
    RowSpace::assemble(Parts { n, d, theta, beta, u: None, v: None, projections }, SigmaForm::LowRank(lr), par)
}
