use faer::Col;

use crate::api::Covariance;
use crate::error::CoreError;
use crate::rng::Rng;

/// How the true signal β is drawn for a replicate.
pub trait Signal: Send + Sync + std::fmt::Debug {
    /// Draw β ∈ R^p for one replicate (a fixed signal ignores `rng`).
    fn draw(&self, covariance: &dyn Covariance, rng: &mut Rng) -> Result<Col<f64>, CoreError>;
    /// Expected ‖β‖² (r²).
    fn radius_squared(&self, covariance: &dyn Covariance) -> f64;
    /// The expected share of ‖β‖² on each eigen-direction of Σ (ordered like
    /// [`Covariance::eigenvalues`], summing to 1): the signal distribution G of the
    /// theory. `None` if the signal cannot say.
    fn eigen_shares(&self, covariance: &dyn Covariance) -> Option<Vec<f64>> {
        let _ = covariance;
        None
    }
    /// True when βᵀΣβ is the same in every replicate (a fixed β, or a β of fixed norm
    /// with Σ = I), so theory that needs it may use its expectation.
    fn fixed_sigma_norm(&self, covariance: &dyn Covariance) -> bool {
        covariance.is_isotropic()
    }
}
