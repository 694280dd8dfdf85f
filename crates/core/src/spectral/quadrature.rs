//! Gauss–Hermite quadrature for expectations over normal laws (docs/numerics.md §7):
//! population metrics and Fisher information of GLM families are Gaussian integrals in
//! one or two dimensions, computed this way instead of by sampling a test set.

use faer::{Mat, Par};

use crate::error::CoreError;
use crate::spectral::linalg::symmetric_eigen;

/// Nodes and weights for E f(Z), Z ~ N(0, 1): E f(Z) ≈ Σ_j weights[j] f(nodes[j]).
#[derive(Debug, Clone, PartialEq)]
pub struct GaussHermite {
    /// Nodes (in units of the standard normal), ascending.
    pub nodes: Vec<f64>,
    /// Weights, summing to 1.
    pub weights: Vec<f64>,
}

impl GaussHermite {
    /// The rule with `order` nodes (1 ≤ order ≤ 200), exact for polynomials of degree
    /// < 2·order. Golub–Welsch: the nodes of the physicists' rule are the eigenvalues of
    /// the Jacobi matrix with off-diagonal √(k/2), its weights √π·(first eigenvector
    /// component)²; for the standard normal the nodes scale by √2 and the weights by 1/√π.
    pub fn new(order: usize) -> Result<Self, CoreError> {
        if !(1..=200).contains(&order) {
            return Err(CoreError::numerical("Gauss–Hermite rule", format!("order {order} not in 1..=200")));
        }
        let jacobi = Mat::from_fn(order, order, |i, j| if i == j + 1 { (i as f64 / 2.0).sqrt() } else { 0.0 });
        let (values, vectors) = symmetric_eigen(jacobi.as_ref(), Par::Seq)?;
        let nodes: Vec<f64> = values.iter().map(|x| x * std::f64::consts::SQRT_2).collect();
        let mut weights: Vec<f64> = (0..order).map(|j| vectors[(0, j)] * vectors[(0, j)]).collect();
        let total: f64 = weights.iter().sum();
        weights.iter_mut().for_each(|w| *w /= total);
        Ok(GaussHermite { nodes, weights })
    }

    /// E f(Z) for Z ~ N(0, 1).
    pub fn expect(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.nodes.iter().zip(&self.weights).map(|(&z, &w)| w * f(z)).sum()
    }

    /// E f(U, V) for (U, V) ~ N(0, [[s11, s12], [s12, s22]]) by the tensor rule after a
    /// Cholesky factor of the covariance (a rank-one or zero covariance is handled by
    /// the same factor with a zero second column).
    pub fn expect2(&self, s11: f64, s12: f64, s22: f64, f: impl Fn(f64, f64) -> f64) -> f64 {
        self.expect2_with(s11, s12, s22, |u| u, |&u, v| f(u, v))
    }

    /// [`Self::expect2`] for an integrand with a part that depends on U alone: `outer(u)`
    /// is computed once per outer node and handed to `inner` with each v, so costly
    /// functions of u are not recomputed for every inner node.
    pub fn expect2_with<S>(
        &self,
        s11: f64,
        s12: f64,
        s22: f64,
        outer: impl Fn(f64) -> S,
        inner: impl Fn(&S, f64) -> f64,
    ) -> f64 {
        let l11 = s11.max(0.0).sqrt();
        let l21 = if l11 > 0.0 { s12 / l11 } else { 0.0 };
        let l22 = (s22 - l21 * l21).max(0.0).sqrt();
        let l21 = if l11 > 0.0 { l21 } else { 0.0 };
        let l22 = if l11 > 0.0 { l22 } else { s22.max(0.0).sqrt() };
        // A (numerically) rank-one covariance, e.g. p = 1 where V is a multiple of U: the
        // inner rule would evaluate one point `order` times. The neglected second column
        // changes the result by O(l22²) relative, below 1e-14 at this cut.
        let rank_one = l22 <= 1e-7 * l11.max(l21.abs());
        let mut total = 0.0;
        for (&z1, &w1) in self.nodes.iter().zip(&self.weights) {
            let at_u = outer(l11 * z1);
            if rank_one {
                total += w1 * inner(&at_u, l21 * z1);
                continue;
            }
            let mut sum = 0.0;
            for (&z2, &w2) in self.nodes.iter().zip(&self.weights) {
                sum += w2 * inner(&at_u, l21 * z1 + l22 * z2);
            }
            total += w1 * sum;
        }
        total
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Moments of the standard normal: E Z² = 1, E Z⁴ = 3, E Z⁶ = 15 are exact.
    #[test]
    fn normal_moments_are_exact() {
        let gh = GaussHermite::new(8).unwrap();
        assert!((gh.expect(|_| 1.0) - 1.0).abs() < 1e-14);
        assert!(gh.expect(|z| z).abs() < 1e-14);
        assert!((gh.expect(|z| z * z) - 1.0).abs() < 1e-13);
        assert!((gh.expect(|z| z.powi(4)) - 3.0).abs() < 1e-12);
        assert!((gh.expect(|z| z.powi(6)) - 15.0).abs() < 1e-11);
    }

    /// E[U V] = s12, E[U² V²] = s11 s22 + 2 s12² (Isserlis), also for a singular
    /// covariance (rank one: the one-dimensional shortcut).
    #[test]
    fn bivariate_moments() {
        let gh = GaussHermite::new(6).unwrap();
        for (s11, s12, s22) in [(2.0, 0.7, 1.5), (1.0, 1.0, 1.0), (0.0, 0.0, 2.0)] {
            assert!((gh.expect2(s11, s12, s22, |u, v| u * v) - s12).abs() < 1e-12);
            let isserlis = s11 * s22 + 2.0 * s12 * s12;
            assert!((gh.expect2(s11, s12, s22, |u, v| u * u * v * v) - isserlis).abs() < 1e-11);
        }
    }
}
