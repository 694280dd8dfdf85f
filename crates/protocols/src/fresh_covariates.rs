use collapse_core::{BuildContext, ParamError, Params, Protocol};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fresh_design::FreshDesign;

/// Fresh covariates at every iteration (P1 setting (ii); docs/fresh-covariates.md §1):
/// iteration t draws a new design X_t (rows iid N(0, Σ)) with fresh real labels
/// y_t = X_tβ + ε_t; at t ≥ 1 the model refits on z_t = w_t y_t + (1 − w_t) ỹ_t, where
/// ỹ_t are synthetic labels from the previous fit on the same X_t. Cells that differ only
/// in w, λ, the estimator or the policy see the same X_t and real labels (common random
/// numbers), and a unit factorizes X_t once for all of them: a certified Cholesky factor of
/// the smaller Gram matrix (XXᵀ + nλI for n ≤ p; min-norm, OLS, ridge) or its
/// eigendecomposition (other filters), then O(np) per cell (docs/fresh-covariates.md §8).
///
/// The error δ_t = β̂_t − β of min-norm obeys δ_t = (1 − w)P_tδ_{t−1} − (I − P_t)β + X_t⁺η_t,
/// so with isotropic rows and p > n + 1 the expected risk is exactly
/// D_t = (1 − w)²(n/p)D_{t−1} + r²(1 − n/p) + (w²σ² + (1 − w)²σ̃²)n/(p − n − 1)
/// (`risk_exact`, docs/fresh-covariates.md §3); for OLS with n > p + 1 and any Σ,
/// D_t = (1 − w)²D_{t−1} + (w²σ² + (1 − w)²σ̃²)p/(n − p − 1) (§4). The theory
/// (`risk_theory`, `collapse theory`) is the proportional limit of that recursion, its
/// stationary value and optimal w (§5), and for isotropic ridge a two-dimensional
/// Marchenko–Pastur recursion (§6); ridge or min-norm with p > n on a non-isotropic Σ has
/// no theory (a null with its reason, §7). Synthetic data help here: at γ = 2 and SNR 1
/// the optimal w is 0.6085 (near 1/φ, not equal to it) and its risk 1.1085 is well below
/// w = 1's 1.5.
///
/// Policies: replace (the default), accumulate (a weighted pool kept as moments once it
/// has more rows than p) and accumulate-subsample (a refit on the subsample each
/// iteration); docs/policies.md §4–§5.
///
/// No parameters.
///
/// Errors: a family that is not a regression family (`family.kind`); an estimator that
/// cannot fit the family's labels (`estimator.kind`).
///
/// Reference: Garg, Bhattacharya, Sur (2025), arXiv 2509.22341, setting (ii).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreshCovariatesParams {}

impl Params for FreshCovariatesParams {
    type Target = dyn Protocol;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Protocol>, ParamError> {
        Ok(Box::new(FreshDesign { pi: 1.0, drop_synthetic_only: false }))
    }
    fn example() -> Self {
        FreshCovariatesParams {}
    }
}

collapse_core::register!(
    ProtocolPlugin,
    FreshCovariatesParams,
    "fresh-covariates",
    "A new design X_t every iteration; fresh real labels mixed with the previous model's synthetic labels on X_t"
);
