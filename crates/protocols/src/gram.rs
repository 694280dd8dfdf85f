//! Refits of a spectral estimator on a design that changes (fresh covariates, a pool of
//! rows): one factorization of the smaller Gram matrix, never an SVD of the design
//! (docs/numerics.md §9).
//!
//! For X (m × p) let G be XXᵀ (m × m) when m ≤ p, else XᵀX (p × p). Ridge-type filters
//! (ridge, min-norm, OLS: gains d/(d² + nλ)) solve one system with G: β̂ = Xᵀ(XXᵀ + nλI)⁻¹y
//! or (XᵀX + nλI)⁻¹Xᵀy, by a Cholesky factorization when G + nλI is provably well
//! conditioned (tr(G + nλI)·tr((G + nλI)⁻¹) ≤ 10⁸), which costs m·p·min(m, p) flops for G
//! and about (2/3)min(m, p)³ for the factor and the check. Other filters (PCR), and
//! ill-conditioned or rank-deficient systems, use the eigendecomposition
//! G = W diag(d²) Wᵀ with the rank cut at the eigenvalue level: β̂ = V diag(g) Uᵀy, with
//! U = W (m ≤ p; β̂ = Xᵀ U diag(g/d) Uᵀy) or V = W (m > p; β̂ = V diag(g/d) Vᵀ Xᵀy). One
//! [`Gram`] is shared by every cell that fits the same design, and each of its
//! factorizations is computed at most once; each fit afterwards costs O(m·p).

use std::sync::{Arc, Mutex, OnceLock};

use collapse_core::faer::{Col, ColRef, Mat, MatRef, Par};
use collapse_core::spectral::linalg::{Cholesky, lower_gram, matvec, rank_tolerance, symmetric_eigen, t_matvec};
use collapse_core::{CoreError, Estimator, FitInput, Likelihood};

/// Largest certified condition number of G + nλI for which the Cholesky route is taken:
/// the solve then loses at most about 8 of 16 digits, far below Monte Carlo error.
const MAX_CONDITION: f64 = 1e8;

/// The Gram matrix of one design and its factorizations, made on demand.
#[derive(Debug)]
pub struct Gram {
    /// True: G = XXᵀ; false: G = XᵀX.
    left: bool,
    m: usize,
    p: usize,
    /// Lower triangle of G.
    gram: Mat<f64>,
    trace: f64,
    eig: OnceLock<Result<GramFactor, CoreError>>,
    /// Cholesky factors of G + shift·I by the shift's bits; None: not certified.
    chol: Mutex<Vec<(u64, Option<Arc<Cholesky>>)>>,
}

impl Gram {
    /// The smaller Gram matrix of `x`.
    pub fn new(x: MatRef<'_, f64>, par: Par) -> Self {
        let (m, p) = x.shape();
        let left = m <= p;
        let gram = if left { lower_gram(x, par) } else { lower_gram(x.transpose(), par) };
        Self::from_lower(gram, left, m, p)
    }

    /// From the lower triangle of a Gram matrix already formed (XXᵀ if `left`, else
    /// XᵀX) of an m × p design.
    pub fn from_lower(gram: Mat<f64>, left: bool, m: usize, p: usize) -> Self {
        let trace = (0..gram.nrows()).map(|i| gram[(i, i)]).sum();
        Gram { left, m, p, gram, trace, eig: OnceLock::new(), chol: Mutex::new(Vec::new()) }
    }

    /// The eigendecomposition, computed once.
    pub fn factor(&self, par: Par) -> Result<&GramFactor, CoreError> {
        self.eig
            .get_or_init(|| GramFactor::from_gram(self.gram.as_ref(), self.left, self.m, self.p, par))
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The Cholesky factor of G + shift·I when its condition number is certified below
    /// [`MAX_CONDITION`] (by tr·tr⁻¹, or by the shift alone), computed once per shift.
    fn cholesky(&self, shift: f64, par: Par) -> Option<Arc<Cholesky>> {
        let mut cache = self.chol.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((_, c)) = cache.iter().find(|(bits, _)| *bits == shift.to_bits()) {
            return c.clone();
        }
        let mut shifted = self.gram.clone();
        for i in 0..shifted.nrows() {
            shifted[(i, i)] += shift;
        }
        let top = self.trace + shift * shifted.nrows() as f64;
        let chol = Cholesky::new(shifted.as_ref(), par).ok().filter(|c| {
            // λ_max ≤ tr(G) + shift and λ_min ≥ max(shift, 1/tr((G + shift)⁻¹)).
            (shift > 0.0 && top / shift <= MAX_CONDITION) || top * c.inverse_trace(par) <= MAX_CONDITION
        });
        let chol = chol.map(Arc::new);
        cache.push((shift.to_bits(), chol.clone()));
        chol
    }

    /// β̂ of `estimator` (a spectral filter) on the design `x` this Gram matrix came from,
    /// labels `y`, with the filter normalised by `n` rows.
    pub fn fit(
        &self,
        estimator: &dyn Estimator,
        x: MatRef<'_, f64>,
        y: ColRef<'_, f64>,
        n: usize,
        par: Par,
    ) -> Result<Col<f64>, CoreError> {
        if self.left {
            if let Some(chol) = self.ridge_cholesky(estimator, n, par) {
                return finite(t_matvec(x, chol.solve(y, par).as_ref(), par));
            }
            let (factor, gains) = self.gains(estimator, n, par)?;
            finite(factor.apply(x, y, &gains, par))
        } else {
            self.fit_moments(estimator, t_matvec(x, y, par).as_ref(), n, par)
        }
    }

    /// β̂ = filter applied to b = X̃ᵀỹ when G = X̃ᵀX̃ (p × p): the pooled moments of a
    /// weighted pool, or Xᵀy of one design with more rows than columns.
    pub fn fit_moments(
        &self,
        estimator: &dyn Estimator,
        b: ColRef<'_, f64>,
        n: usize,
        par: Par,
    ) -> Result<Col<f64>, CoreError> {
        if self.left {
            return Err(CoreError::numerical("Gram fit", "moments need the p × p Gram matrix"));
        }
        if let Some(chol) = self.ridge_cholesky(estimator, n, par) {
            return finite(chol.solve(b, par));
        }
        let (factor, gains) = self.gains(estimator, n, par)?;
        finite(factor.apply_moments(b, &gains, par))
    }

    /// The Cholesky factor of G + nλI for an estimator whose gains are d/(d² + nλ).
    fn ridge_cholesky(&self, estimator: &dyn Estimator, n: usize, par: Par) -> Option<Arc<Cholesky>> {
        let lambda = estimator.ridge_penalty().filter(|l| *l >= 0.0 && estimator.spectral().is_some())?;
        self.cholesky(n as f64 * lambda, par)
    }

    fn gains(&self, estimator: &dyn Estimator, n: usize, par: Par) -> Result<(&GramFactor, Vec<f64>), CoreError> {
        let filter =
            estimator.spectral().ok_or_else(|| CoreError::numerical("Gram fit", "the estimator is not spectral"))?;
        let factor = self.factor(par)?;
        let gains = filter.gains(&factor.d, n)?;
        Ok((factor, gains))
    }
}

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

impl GramFactor {
    /// From the lower triangle of a Gram matrix already formed (XXᵀ if `left`, else XᵀX)
    /// of an m × p design.
    pub fn from_gram(gram: MatRef<'_, f64>, left: bool, m: usize, p: usize, par: Par) -> Result<Self, CoreError> {
        let (ev, vecs) = symmetric_eigen(gram, par)?;
        // Ascending: the largest is last.
        let lmax = ev.last().copied().unwrap_or(0.0);
        if !lmax.is_finite() {
            return Err(CoreError::numerical(
                "Gram eigendecomposition",
                format!("non-finite eigenvalue (m = {m}, p = {p})"),
            ));
        }
        // The Gram matrix carries rounding of order ε·max(m, p)·λ_max, so the SVD's rank
        // tolerance applies at the eigenvalue level, to λ_max instead of d_max
        // (docs/numerics.md §9).
        let cut = rank_tolerance(lmax.max(0.0), m, p);
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

/// Refit `estimator` on (x, y): a spectral estimator through the [`Gram`] matrix of x
/// (filter normalised by x's rows), any other through its own `fit` (started at `start`).
pub fn refit(
    estimator: &dyn Estimator,
    likelihood: &dyn Likelihood,
    x: MatRef<'_, f64>,
    y: ColRef<'_, f64>,
    start: Option<ColRef<'_, f64>>,
    par: Par,
) -> Result<Col<f64>, CoreError> {
    match estimator.spectral() {
        Some(_) => Gram::new(x, par).fit(estimator, x, y, x.nrows(), par),
        None => estimator.fit(&FitInput { x, y, weights: None, likelihood, start, par }),
    }
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
    use collapse_estimators::Ridge;

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
                let gram = Gram::new(x.as_ref(), Par::Seq);
                let g = gram.factor(Par::Seq).unwrap();
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
        let gram = Gram::new(x.as_ref(), Par::Seq);
        let g = gram.factor(Par::Seq).unwrap();
        assert_eq!(g.d.len(), 5);
        let y = Col::from_fn(10, |i| if i < 5 { 1.0 } else { -1.0 });
        let gains: Vec<f64> = g.d.iter().map(|d| 1.0 / d).collect();
        let beta = g.apply(x.as_ref(), y.as_ref(), &gains, Par::Seq);
        assert!(beta.norm_l2() < 1e-6, "{}", beta.norm_l2());
        // The shared Gram refuses Cholesky for this singular system and takes the same route.
        let via = Gram::new(x.as_ref(), Par::Seq).fit(&Ridge::new(0.0), x.as_ref(), y.as_ref(), 10, Par::Seq).unwrap();
        assert!((&via - &beta).norm_l2() < 1e-12);
    }

    /// Ridge-type fits through the shared Gram (Cholesky when certified) equal the
    /// eigendecomposition route, on both sides of m = p, for min-norm and ridge.
    #[test]
    fn cholesky_and_eigen_routes_agree() {
        for (m, p) in [(10, 30), (30, 10), (25, 30)] {
            let x = design(m, p, 9);
            let y = Col::from_fn(m, |i| (i as f64 * 0.3).cos());
            for lambda in [0.0, 0.2] {
                let est = Ridge::new(lambda);
                let gram = Gram::new(x.as_ref(), Par::Seq);
                let via = gram.fit(&est, x.as_ref(), y.as_ref(), m, Par::Seq).unwrap();
                let f = gram.factor(Par::Seq).unwrap();
                let gains: Vec<f64> = f.d.iter().map(|d| d / (d * d + m as f64 * lambda)).collect();
                let direct = f.apply(x.as_ref(), y.as_ref(), &gains, Par::Seq);
                assert!((&via - &direct).norm_l2() < 1e-9 * direct.norm_l2(), "m = {m}, p = {p}, λ = {lambda}");
            }
        }
    }
}
