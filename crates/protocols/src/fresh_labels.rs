use collapse_core::{BuildContext, ParamError, Params, Protocol};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::mixing::{LabelMixing, Path, RealLabels};

/// Fresh-label mixing on a fixed design (P1's main protocol; docs/fresh-labels.md §1).
/// X is drawn once per replicate. t = 0: β̂_0 = fit(X, y_0), y_0 = Xβ + ε_0. t ≥ 1: fresh
/// real labels y_t (new noise each iteration) and synthetic labels ỹ_t drawn by the
/// family from the previous fit on the same rows are mixed as z_t = w_t y_t + (1 − w_t) ỹ_t
/// and the estimator is refitted on what the policy keeps (replace: z_t only).
///
/// With a spectral estimator (ridge, min-norm, OLS, PCR) and Gaussian labels, each
/// iteration costs O(r) in the design's singular coordinates and every row also carries
/// the exact conditional risk E[‖β̂_t − β‖²_Σ | X, β] (`risk_exact`, from the shared
/// recursion, docs/spectral-recursion.md §2–§4). The theory (`risk_theory`) is
/// docs/fresh-labels.md §3 (min-norm, exact in t), docs/asymptotics.md §4 and §6 (ridge),
/// docs/logistic.md §4 (GLM families, linearized).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `path` | `auto` | `auto`, `spectral`, `refit` | how each refit is computed (all exact) |
/// | `projected_noise` | true | bool | spectral path: draw Uᵀε directly (r normals instead of n; exact in law) |
/// | `fast_design` | true | bool | spectral path with projected noise: sample the row space where exact in law (docs/numerics.md §3, §4) |
///
/// Policies: replace; accumulate (a fit on the running mean of the label vectors, spectral
/// and exact, docs/policies.md §2); accumulate-subsample (the refit path on rows of X
/// drawn from all iterations' labels, no exact risk, docs/policies.md §5).
///
/// Errors: `path = "spectral"` when the estimator is not a spectral filter, the family's
/// labels are not Gaussian or the policy subsamples; an estimator that cannot fit the
/// family's labels (`estimator.kind`); a family that is not a regression family.
///
/// Reference: Garg, Bhattacharya, Sur (2025), arXiv 2509.22341.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreshLabelsParams {
    /// How each refit is computed: `auto`, `spectral` or `refit`.
    #[serde(default = "auto")]
    pub path: Path,
    /// Spectral path: draw the projected noise Uᵀε directly (exact in law).
    #[serde(default = "yes")]
    pub projected_noise: bool,
    /// Spectral path with projected noise: sample the row space (Laguerre / Bartlett)
    /// instead of drawing and factorizing X. Exact in law.
    #[serde(default = "yes")]
    pub fast_design: bool,
}

pub(crate) fn auto() -> Path {
    Path::Auto
}
pub(crate) fn yes() -> bool {
    true
}

impl Params for FreshLabelsParams {
    type Target = dyn Protocol;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Protocol>, ParamError> {
        Ok(Box::new(LabelMixing {
            real: RealLabels::Fresh,
            path: self.path,
            projected_noise: self.projected_noise,
            fast_design: self.fast_design,
        }))
    }
    fn example() -> Self {
        FreshLabelsParams { path: Path::Auto, projected_noise: true, fast_design: true }
    }
}

collapse_core::register!(
    ProtocolPlugin,
    FreshLabelsParams,
    "fresh-labels",
    "Fixed X; each iteration mixes fresh real labels with the previous model's synthetic labels"
);
