use collapse_core::faer::Col;
use collapse_core::schemars::JsonSchema;
use collapse_core::serde::{Deserialize, Serialize};
use collapse_core::{BuildContext, CoreError, Estimator, FitInput, Likelihood, ParamError, Params};

use crate::Irls;

/// The family's (weighted) maximum-likelihood estimate, for every family
/// (docs/weighted.md §1):
///
/// * regression families (linear-gaussian, logistic, poisson): the unpenalised weighted
///   MLE, computed by `irls` with λ = 0, `max_iterations` = 100 and `tolerance` = 1e-10
///   (for Gaussian labels one Newton step: weighted least squares);
/// * sample families (gaussian, ecdf, kernel-regression): the family's own weighted
///   estimate, documented with the family (the weighted MLE of N(μ, Σ), the weighted
///   empirical CDF, the Nadaraya–Watson local-constant fit). The protocol asks the
///   family to fit; this estimator only says so ([`Estimator::defers_to_family`]).
///
/// One estimator for all families lets one scenario sweep the family kind
/// (`golden-ratio-families`).
///
/// No parameters. Errors: those of `irls` (separation, non-convergence, invalid labels).
///
/// Reference: McCullagh & Nelder (1989), *Generalized Linear Models*, §2.5; He, Xu &
/// Cheng (2025), arXiv 2502.18049 (weighted estimation across model families).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(crate = "collapse_core::serde", deny_unknown_fields)]
#[schemars(crate = "collapse_core::schemars")]
pub struct MleParams {}

/// See [`MleParams`].
#[derive(Debug, Clone, Copy)]
pub struct Mle(Irls);

impl Mle {
    /// The estimator.
    pub fn new() -> Self {
        Mle(Irls::new(0.0, 100, 1e-10))
    }
}

impl Default for Mle {
    fn default() -> Self {
        Self::new()
    }
}

impl Estimator for Mle {
    fn fit(&self, input: &FitInput<'_>) -> Result<Col<f64>, CoreError> {
        self.0.fit(input)
    }
    fn supports(&self, _likelihood: &dyn Likelihood) -> Result<(), String> {
        Ok(())
    }
    fn ridge_penalty(&self) -> Option<f64> {
        Some(0.0)
    }
    fn defers_to_family(&self) -> bool {
        true
    }
}

impl Params for MleParams {
    type Target = dyn Estimator;
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        Ok(Box::new(Mle::new()))
    }
    fn example() -> Self {
        MleParams {}
    }
}

collapse_core::register!(
    EstimatorPlugin,
    MleParams,
    "mle",
    "The family's weighted maximum-likelihood estimate (irls at λ = 0; sample families fit themselves)"
);

#[cfg(test)]
mod tests {
    use super::*;
    use collapse_core::SquaredError;
    use collapse_core::faer::{Mat, Par};

    /// On Gaussian labels the MLE is weighted least squares: on one intercept column with
    /// labels (1, 5) and weights (1, 3), the weighted mean (1 + 15)/4 = 4.
    #[test]
    fn weighted_least_squares_by_hand() {
        let x = Mat::from_fn(2, 1, |_, _| 1.0);
        let y = Col::from_fn(2, |i| [1.0, 5.0][i]);
        let c = Col::from_fn(2, |i| [1.0, 3.0][i]);
        let input = FitInput {
            x: x.as_ref(),
            y: y.as_ref(),
            weights: Some(c.as_ref()),
            likelihood: &SquaredError,
            start: None,
            par: Par::Seq,
        };
        let b = Mle::new().fit(&input).unwrap();
        assert!((b[0] - 4.0).abs() < 1e-12, "{}", b[0]);
        assert!(Mle::new().defers_to_family());
        assert_eq!(Mle::new().ridge_penalty(), Some(0.0));
        assert!(MleParams::example().checked_build(&BuildContext { n: 3, p: 1 }).is_ok());
    }
}
