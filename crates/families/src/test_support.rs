//! Fixtures shared by the families' unit tests.

use collapse_core::faer::{Col, ColRef, Mat, MatRef};
use collapse_core::{Covariance, rng::Rng};

/// Σ = diag(τ) in the standard basis: enough for quad_form, bilinear and sampling.
#[derive(Debug)]
pub(crate) struct Diagonal(pub Vec<f64>);

impl Covariance for Diagonal {
    fn dim(&self) -> usize {
        self.0.len()
    }
    fn eigenvalues(&self) -> Vec<f64> {
        self.0.clone()
    }
    fn to_eigenbasis(&self, v: ColRef<'_, f64>) -> Col<f64> {
        v.to_owned()
    }
    fn to_standard_basis(&self, c: ColRef<'_, f64>) -> Col<f64> {
        c.to_owned()
    }
    fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64> {
        Mat::from_fn(m.nrows(), m.ncols(), |i, j| self.0[i] * m[(i, j)])
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> Mat<f64> {
        let z = collapse_core::rng::normal_vec(rng, 1.0, n * self.0.len());
        Mat::from_fn(n, self.0.len(), |i, j| self.0[j].sqrt() * z[i * self.0.len() + j])
    }
}

/// A column from a slice.
pub(crate) fn col(v: &[f64]) -> Col<f64> {
    Col::from_fn(v.len(), |i| v[i])
}
