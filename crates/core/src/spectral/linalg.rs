//! Dense linear algebra with the parallelism passed explicitly.
//!
//! faer's high-level methods and operators read a process-wide parallelism setting.
//! The engine already runs units in parallel, so nesting a second level of threads
//! would oversubscribe the cores, and a matrix product split differently could round
//! differently. Every factorization and product in the numerical code goes through
//! these wrappers with the [`Par`] the engine hands down (`Par::Seq` inside units).

use faer::diag::Diag;
use faer::dyn_stack::{MemBuffer, MemStack};
use faer::linalg::cholesky::llt;
use faer::linalg::matmul::triangular::{self, BlockStructure};
use faer::linalg::{evd, svd};
use faer::{Accum, Col, ColRef, Mat, MatRef, Par};

use crate::error::CoreError;

/// A ⋅ B.
pub fn matmul(a: MatRef<'_, f64>, b: MatRef<'_, f64>, par: Par) -> Mat<f64> {
    let mut out = Mat::<f64>::zeros(a.nrows(), b.ncols());
    faer::linalg::matmul::matmul(out.as_mut(), Accum::Replace, a, b, 1.0, par);
    out
}

/// A ⋅ x.
pub fn matvec(a: MatRef<'_, f64>, x: ColRef<'_, f64>, par: Par) -> Col<f64> {
    let mut out = Col::<f64>::zeros(a.nrows());
    faer::linalg::matmul::matmul(out.as_mut(), Accum::Replace, a, x, 1.0, par);
    out
}

/// Aᵀ ⋅ x.
pub fn t_matvec(a: MatRef<'_, f64>, x: ColRef<'_, f64>, par: Par) -> Col<f64> {
    matvec(a.transpose(), x, par)
}

/// The lower triangle of lhs ⋅ rhs (the upper triangle is left zero), for symmetric
/// products read by a lower-triangle eigensolver: half the flops of a full product.
pub fn lower_product(
    lhs: MatRef<'_, f64>,
    rhs: MatRef<'_, f64>,
    lhs_structure: BlockStructure,
    rhs_structure: BlockStructure,
    par: Par,
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
        par,
    );
    out
}

/// The lower triangle of X Xᵀ.
pub fn lower_gram(x: MatRef<'_, f64>, par: Par) -> Mat<f64> {
    lower_product(x, x.transpose(), BlockStructure::Rectangular, BlockStructure::Rectangular, par)
}

/// A thin SVD: singular values (descending), U (n × m) and V (p × m), m = min(n, p).
#[derive(Debug, Clone)]
pub struct ThinSvd {
    /// Singular values, descending.
    pub s: Vec<f64>,
    /// Left singular vectors.
    pub u: Mat<f64>,
    /// Right singular vectors.
    pub v: Mat<f64>,
}

/// The thin SVD of `x`.
pub fn thin_svd(x: MatRef<'_, f64>, par: Par) -> Result<ThinSvd, CoreError> {
    let (n, p) = x.shape();
    let m = n.min(p);
    let mut u = Mat::<f64>::zeros(n, m);
    let mut v = Mat::<f64>::zeros(p, m);
    let mut s = Diag::<f64>::zeros(m);
    let compute = svd::ComputeSvdVectors::Thin;
    let mut buf = MemBuffer::new(svd::svd_scratch::<f64>(n, p, compute, compute, par, Default::default()));
    svd::svd(x, s.as_mut(), Some(u.as_mut()), Some(v.as_mut()), par, MemStack::new(&mut buf), Default::default())
        .map_err(|e| CoreError::numerical("thin SVD", format!("{e:?} (n = {n}, p = {p})")))?;
    Ok(ThinSvd { s: s.column_vector().iter().copied().collect(), u, v })
}

/// The eigendecomposition of a symmetric matrix of which only the lower triangle is
/// read: eigenvalues ascending, eigenvectors as columns.
pub fn symmetric_eigen(a: MatRef<'_, f64>, par: Par) -> Result<(Vec<f64>, Mat<f64>), CoreError> {
    let n = a.nrows();
    let mut u = Mat::<f64>::zeros(n, n);
    let mut s = Diag::<f64>::zeros(n);
    let mut buf =
        MemBuffer::new(evd::self_adjoint_evd_scratch::<f64>(n, evd::ComputeEigenvectors::Yes, par, Default::default()));
    evd::self_adjoint_evd(a, s.as_mut(), Some(u.as_mut()), par, MemStack::new(&mut buf), Default::default())
        .map_err(|e| CoreError::numerical("symmetric eigendecomposition", format!("{e:?} (dimension {n})")))?;
    Ok((s.column_vector().iter().copied().collect(), u))
}

/// The Cholesky factorization A = LLᵀ of a symmetric positive definite matrix of which
/// only the lower triangle is read.
#[derive(Debug, Clone)]
pub struct Cholesky {
    l: Mat<f64>,
}

impl Cholesky {
    /// Factorize; an error when A is not numerically positive definite.
    pub fn new(a: MatRef<'_, f64>, par: Par) -> Result<Self, CoreError> {
        let n = a.nrows();
        let mut l = a.to_owned();
        let params = Default::default();
        let mut buf = MemBuffer::new(llt::factor::cholesky_in_place_scratch::<f64>(n, par, params));
        llt::factor::cholesky_in_place(l.as_mut(), Default::default(), par, MemStack::new(&mut buf), params)
            .map_err(|e| CoreError::numerical("Cholesky factorization", format!("{e:?} (dimension {n})")))?;
        Ok(Cholesky { l })
    }

    /// A⁻¹b by two triangular solves.
    pub fn solve(&self, b: ColRef<'_, f64>, par: Par) -> Col<f64> {
        let n = self.l.nrows();
        let mut x = b.to_owned();
        let mut buf = MemBuffer::new(llt::solve::solve_in_place_scratch::<f64>(n, 1, par));
        llt::solve::solve_in_place(self.l.as_ref(), x.as_mat_mut(), par, MemStack::new(&mut buf));
        x
    }

    /// tr(A⁻¹) = ‖L⁻¹‖²_F (n³/3 flops): with tr A it bounds the condition number,
    /// λ_max/λ_min ≤ tr A · tr A⁻¹.
    pub fn inverse_trace(&self, par: Par) -> f64 {
        let n = self.l.nrows();
        let mut inv = Mat::<f64>::identity(n, n);
        faer::linalg::triangular_solve::solve_lower_triangular_in_place(self.l.as_ref(), inv.as_mut(), par);
        inv.squared_norm_l2()
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

/// The cut below which singular values count as zero, as `pinv`/`lstsq` make it
/// (docs/numerics.md §1).
pub fn rank_tolerance(d_max: f64, n: usize, p: usize) -> f64 {
    d_max * (n.max(p) as f64) * f64::EPSILON
}

/// The thin SVD of `x` with singular values at or below [`rank_tolerance`] dropped.
/// The one place that cut is made, for the fixed-design row space and for estimators
/// that refit.
pub fn truncated_svd(x: MatRef<'_, f64>, par: Par) -> Result<TruncatedSvd, CoreError> {
    let (n, p) = x.shape();
    let svd = thin_svd(x, par)?;
    let d_max = svd.s.first().copied().unwrap_or(0.0);
    if !d_max.is_finite() {
        return Err(CoreError::numerical("thin SVD", format!("non-finite singular value (n = {n}, p = {p})")));
    }
    let tol = rank_tolerance(d_max, n, p);
    let r = svd.s.iter().take_while(|&&di| di > tol).count();
    Ok(TruncatedSvd { d: svd.s[..r].to_vec(), u: svd.u.subcols(0, r).to_owned(), v: svd.v.subcols(0, r).to_owned() })
}

/// Dot product of two slices.
pub fn dot(a: &[f64], b: &[f64]) -> f64 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn svd_reconstructs_and_eigen_diagonalises() {
        let x = Mat::from_fn(5, 3, |i, j| ((i * 3 + j) as f64).sin());
        let svd = truncated_svd(x.as_ref(), Par::Seq).unwrap();
        let us = Mat::from_fn(5, svd.d.len(), |i, j| svd.u[(i, j)] * svd.d[j]);
        let back = matmul(us.as_ref(), svd.v.transpose(), Par::Seq);
        assert!((&back - &x).norm_l2() < 1e-12);
        let g = lower_gram(x.as_ref(), Par::Seq);
        let (ev, _) = symmetric_eigen(g.as_ref(), Par::Seq).unwrap();
        let mut sq: Vec<f64> = svd.d.iter().map(|d| d * d).collect();
        sq.sort_by(f64::total_cmp);
        for (a, b) in ev.iter().rev().take(3).zip(sq.iter().rev()) {
            assert!((a - b).abs() < 1e-12 * b.max(1.0), "{a} vs {b}");
        }
    }

    #[test]
    fn cholesky_solves_and_rejects_indefinite() {
        let x = Mat::from_fn(6, 4, |i, j| ((i * 4 + j) as f64).cos());
        let mut a = lower_product(
            x.transpose(),
            x.as_ref(),
            BlockStructure::Rectangular,
            BlockStructure::Rectangular,
            Par::Seq,
        );
        for i in 0..4 {
            a[(i, i)] += 0.5;
        }
        let b = Col::from_fn(4, |i| i as f64 - 1.0);
        let chol = Cholesky::new(a.as_ref(), Par::Seq).unwrap();
        let sol = chol.solve(b.as_ref(), Par::Seq);
        // Check against the full symmetric matrix (only the lower triangle was read).
        let full = Mat::from_fn(4, 4, |i, j| if i >= j { a[(i, j)] } else { a[(j, i)] });
        let back = matvec(full.as_ref(), sol.as_ref(), Par::Seq);
        assert!((&back - &b).norm_l2() < 1e-12);
        // tr(A⁻¹) from the factor equals the trace of the inverse of the full matrix.
        let inv_trace: f64 = (0..4)
            .map(|i| {
                let e = Col::from_fn(4, |k| if k == i { 1.0 } else { 0.0 });
                chol.solve(e.as_ref(), Par::Seq)[i]
            })
            .sum();
        assert!((chol.inverse_trace(Par::Seq) - inv_trace).abs() < 1e-12 * inv_trace);
        let neg = Mat::from_fn(2, 2, |i, j| if i == j { -1.0 } else { 0.0 });
        assert!(Cholesky::new(neg.as_ref(), Par::Seq).is_err());
    }
}
