use faer::{Col, ColRef, Mat, MatRef};

use crate::api::Population;
use crate::rng::Rng;
use crate::spectral::{LowRankForm, SigmaForm};

/// A feature covariance Σ = Q diag(τ) Qᵀ and how to sample features from it.
///
/// Implementations keep Σ structured (identity, diagonal, rank-one plus identity,
/// Toeplitz) and avoid dense p × p matrices where they can.
pub trait Covariance: Send + Sync + std::fmt::Debug {
    /// The dimension p.
    fn dim(&self) -> usize;
    /// Eigenvalues τ_1 ≥ τ_2 ≥ … ≥ τ_p (with multiplicity, descending).
    fn eigenvalues(&self) -> Vec<f64>;
    /// Coordinates of `v` in the eigenbasis, Qᵀv, ordered like [`Self::eigenvalues`].
    fn to_eigenbasis(&self, v: ColRef<'_, f64>) -> Col<f64>;
    /// The vector with eigen-coordinates `c`, Qc.
    fn to_standard_basis(&self, c: ColRef<'_, f64>) -> Col<f64>;
    /// Σ·M for a p × k matrix M.
    fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64>;
    /// vᵀΣv.
    fn quad_form(&self, v: ColRef<'_, f64>) -> f64 {
        let sv = self.apply(v.as_mat());
        v.iter().zip(sv.col(0).iter()).map(|(a, b)| a * b).sum()
    }
    /// uᵀΣv.
    fn bilinear(&self, u: ColRef<'_, f64>, v: ColRef<'_, f64>) -> f64 {
        let sv = self.apply(v.as_mat());
        u.iter().zip(sv.col(0).iter()).map(|(a, b)| a * b).sum()
    }
    /// Draw an n × p design whose rows are iid N(0, Σ), i.e. X = Z Σ^{1/2} in law.
    fn sample(&self, n: usize, rng: &mut Rng) -> Mat<f64>;
    /// True when Σ = I (enables O(r) risk evaluation and exact shortcuts).
    fn is_isotropic(&self) -> bool {
        false
    }
    /// Σ as a scaled identity plus a few rank-one terms, when the model has that form
    /// (isotropic, spiked, equicorrelated): risk evaluation then costs O(r·K) per
    /// iteration and never needs the p × r right singular vectors.
    fn low_rank_form(&self) -> Option<LowRankForm> {
        None
    }
    /// The finite population the rows are drawn from, when the design is a data table
    /// (rows drawn uniformly with replacement): families then score estimates exactly
    /// over these rows instead of over N(0, Σ), and protocols that draw their own rows
    /// take real labels from it (docs/weighted.md §5).
    fn population(&self) -> Option<&Population> {
        None
    }
}

/// How the row space of a design drawn from `covariance` should see Σ.
pub fn sigma_form<'a>(covariance: &'a dyn Covariance, apply: &'a dyn Fn(MatRef<'_, f64>) -> Mat<f64>) -> SigmaForm<'a> {
    match covariance.low_rank_form() {
        Some(lr) => SigmaForm::LowRank(lr),
        None => SigmaForm::General(apply),
    }
}
