//! Refits of a spectral estimator on a design that changes (fresh covariates, a pool of
//! rows): one symmetric eigendecomposition of the smaller Gram matrix, never an SVD of
//! the design (docs/numerics.md §9).
//!
//! For X (m × p), `m ≤ p`: XXᵀ = U diag(d²) Uᵀ and β̂ = V diag(g) Uᵀy = Xᵀ U diag(g/d) Uᵀy;
//! `m > p`: XᵀX = V diag(d²) Vᵀ and β̂ = V diag(g/d) Vᵀ(Xᵀy). Forming the Gram costs
//! m·p·min(m, p) flops (lower triangle), the eigendecomposition O(min(m, p)³), and each
//! fit afterwards O(m·p): cells that share the design share the factorization.

use collapse_core::faer::{Col, ColRef, Mat, MatRef, Par};
use collapse_core::spectral::linalg::{cholesky_solve, lower_gram, matvec, symmetric_eigen, t_matvec};
use collapse_core::{CoreError, Estimator, FitInput, Likelihood};

/// The eigendecomposition of the smaller Gram matrix of a design, restricted to its
/// numerical rank.
#[derive(Debug, Clone)]
pub struct GramFactor {
    /// True: `vectors` are the left singular vectors U (m × r); false: V (p × r).
    left: bool,
    /// Singular values d = √(eigenvalue) above the cut, descending.
    pub d: Vec<f64>,
    vectors: Mat<f64>,
}

/// Eigenvalues at or below this fraction of the largest count as zero: the Gram matrix
/// carries rounding of order ε·max(m, p)·λ_max, so the cut moves from the SVD's
/// d_max·max(m, p)·ε to the eigenvalue level (docs/numerics.md §9).
fn eigen_cut(lmax: f64, m: usize, p: usize) -> f64 {
    lmax * (m.max(p) as f64) * f64::EPSILON
}

impl GramFactor {
    /// Factorize `x` through its smaller Gram matrix.
    pub fn new(x: MatRef<'_, f64>, par: Par) -> Result<Self, CoreError> {
        let (m, p) = x.shape();
        let left = m <= p;
        let gram = if left { lower_gram(x, par) } else { lower_gram(x.transpose(), par) };
        Self::from_gram(gram.as_ref(), left, m, p, par)
    }

    /// From the lower triangle of a Gram matrix already formed (XXᵀ if `left`, else XᵀX)
    /// of an m × p design.
    pub fn from_gram(gram: MatRef<'_, f64>, left: bool, m: usize, p: usize, par: Par) -> Result<Self, CoreError> {
        let (ev, vecs) = symmetric_eigen(gram, par)?;
        // Ascending: the largest is last.
        let lmax = ev.last().copied().unwrap_or(0.0);
        if !lmax.is_finite() {
            return Err(CoreError::numerical("Gram eigendecomposition", format!("non-finite eigenvalue (m = {m}, p = {p})")));
        }
        let cut = eigen_cut(lmax.max(0.0), m, p);
        let order: Vec<usize> = (0..ev.len()).rev().filter(|&i| ev[i] > cut).collect();
        let d = order.iter().map(|&i| ev[i].sqrt()).collect();
        let vectors = Mat::from_fn(vecs.nrows(), order.len(), |i, j| vecs[(i, order[j])]);
        Ok(GramFactor { left, d, vectors })
    }

    /// β̂ = V diag(gains) Uᵀy for the design `x` this factor came from.
    pub fn apply(&self, x: MatRef<'_, f64>, y: ColRef<'_, f64>, gains: &[f64], par: Par) -> Col<f64> {
        let r = self.d.len();
        if self.left {
            let uty = t_matvec(self.vectors.as_ref(), y, par);
            let coef = Col::<f64>::from_fn(r, |i| uty[i] * gains[i] / self.d[i]);
            t_matvec(x, matvec(self.vectors.as_ref(), coef.as_ref(), par).as_ref(), par)
        } else {
            self.apply_moments(t_matvec(x, y, par).as_ref(), gains, par)
        }
    }

    /// β̂ = V diag(gains/d) Vᵀ b for b = Xᵀy, when the factor came from XᵀX.
    pub fn apply_moments(&self, b: ColRef<'_, f64>, gains: &[f64], par: Par) -> Col<f64> {
        let vtb = t_matvec(self.vectors.as_ref(), b, par);
        let coef = Col::<f64>::from_fn(self.d.len(), |i| vtb[i] * gains[i] / self.d[i]);
        matvec(self.vectors.as_ref(), coef.as_ref(), par)
    }
}

/// Refit `estimator` on (x, y) with `gains_rows` rows for the spectral filter's
/// normalisation: a spectral estimator through [`GramFactor`], any other through its own
/// `fit` (started at `start`).
pub fn refit(
    estimator: &dyn Estimator,
    likelihood: &dyn Likelihood,
    x: MatRef<'_, f64>,
    y: ColRef<'_, f64>,
    start: Option<ColRef<'_, f64>>,
    par: Par,
) -> Result<Col<f64>, CoreError> {
    match estimator.spectral() {
        Some(filter) => {
            let gram = GramFactor::new(x, par)?;
            let gains = filter.gains(&gram.d, x.nrows())?;
            finite(gram.apply(x, y, &gains, par))
        }
        None => estimator.fit(&FitInput { x, y, weights: None, likelihood, start, par }),
    }
}

/// Fit a spectral filter from the moments A = X̃ᵀX̃ (lower triangle, p × p) and b = X̃ᵀỹ of
/// a weighted pool whose per-iteration weights sum to 1, so that the ridge penalty is
/// n·λ with n the rows of one iteration (docs/policies.md §4). Ridge with λ > 0 solves
/// (A + nλI)β = b by Cholesky when nλ bounds the conditioning; everything else uses the
/// eigendecomposition of A.
pub fn fit_moments(
    estimator: &dyn Estimator,
    a: MatRef<'_, f64>,
    b: ColRef<'_, f64>,
    n: usize,
    rows: usize,
    par: Par,
) -> Result<Col<f64>, CoreError> {
    let filter = estimator
        .spectral()
        .ok_or_else(|| CoreError::numerical("pooled fit", "moments need a spectral estimator"))?;
    let p = a.nrows();
    if let Some(lambda) = estimator.ridge_penalty().filter(|l| *l > 0.0) {
        let shift = n as f64 * lambda;
        let trace: f64 = (0..p).map(|i| a[(i, i)]).sum();
        // tr A ≥ λ_max(A): the condition number of A + nλI is at most (tr A + nλ)/(nλ).
        if (trace + shift) / shift < 1e10 {
            let mut shifted = a.to_owned();
            for i in 0..p {
                shifted[(i, i)] += shift;
            }
            return finite(cholesky_solve(shifted.as_ref(), b, par)?);
        }
    }
    let gram = GramFactor::from_gram(a, false, rows, p, par)?;
    let gains = filter.gains(&gram.d, n)?;
    finite(gram.apply_moments(b, &gains, par))
}

fn finite(beta: Col<f64>) -> Result<Col<f64>, CoreError> {
    if beta.iter().all(|b| b.is_finite()) {
        Ok(beta)
    } else {
        Err(CoreError::numerical("fit", "non-finite coefficients"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use collapse_core::rng::{Purpose, Streams, normal_vec};
    use collapse_core::spectral::linalg::truncated_svd;

    fn design(m: usize, p: usize, seed: u64) -> Mat<f64> {
        let z = normal_vec(&mut Streams::new(seed, 0, 0).rng(Purpose::Design, 0), 1.0, m * p);
        Mat::from_fn(m, p, |i, j| z[i * p + j])
    }

    /// The Gram route gives the SVD's min-norm and ridge fits on both sides of m = p, and
    /// cuts the exactly-zero directions of a design with repeated rows.
    #[test]
    fn gram_fits_equal_svd_fits() {
        for (m, p) in [(8, 20), (20, 8), (12, 12)] {
            let x = design(m, p, 3);
            let y = Col::from_fn(m, |i| (i as f64 * 0.7).sin());
            let svd = truncated_svd(x.as_ref(), Par::Seq).unwrap();
            for nl in [0.0, 0.5] {
                let g = GramFactor::new(x.as_ref(), Par::Seq).unwrap();
                assert_eq!(g.d.len(), svd.d.len());
                let gains: Vec<f64> = g.d.iter().map(|d| d / (d * d + nl)).collect();
                let a = g.apply(x.as_ref(), y.as_ref(), &gains, Par::Seq);
                let sg: Vec<f64> = svd.d.iter().map(|d| d / (d * d + nl)).collect();
                let uty = t_matvec(svd.u.as_ref(), y.as_ref(), Par::Seq);
                let coef = Col::<f64>::from_fn(sg.len(), |i| sg[i] * uty[i]);
                let b = matvec(svd.v.as_ref(), coef.as_ref(), Par::Seq);
                assert!((&a - &b).norm_l2() < 1e-8 * b.norm_l2().max(1.0), "m = {m}, p = {p}, nλ = {nl}");
            }
        }
        // Rows repeated: rank 5 of 10 rows; the Gram cut keeps exactly 5 directions and the
        // fit is the least-squares fit on the averaged labels (finite, not 1e13).
        let base = design(5, 30, 4);
        let x = Mat::from_fn(10, 30, |i, j| base[(i % 5, j)]);
        let g = GramFactor::new(x.as_ref(), Par::Seq).unwrap();
        assert_eq!(g.d.len(), 5);
        let y = Col::from_fn(10, |i| if i < 5 { 1.0 } else { -1.0 });
        let gains: Vec<f64> = g.d.iter().map(|d| 1.0 / d).collect();
        let beta = g.apply(x.as_ref(), y.as_ref(), &gains, Par::Seq);
        assert!(beta.norm_l2() < 1e-6, "{}", beta.norm_l2());
    }
}
