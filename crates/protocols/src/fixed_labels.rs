use collapse_core::{BuildContext, ParamError, Params, Protocol};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fresh_labels::{auto, yes};
use crate::mixing::{LabelMixing, Path, RealLabels};

/// Fixed real data (P1 setting (i); docs/fixed-labels.md §1): X and the real labels
/// y_0 = Xβ + ε_0 are drawn once per replicate and reused; every t ≥ 1 refits on
/// z_t = w·y_0 + (1 − w)·ỹ_t, where ỹ_t are synthetic labels from the previous fit with
/// fresh noise. The real-label noise is a persistent source of the shared recursion, so
/// the exact risk carries its cross-covariance with the iterate
/// (docs/fixed-labels.md §2). For min-norm the risk is B + a_t·V exactly in t with
/// a_t ≥ 1: synthetic data never help, and at w = 0 the risk grows linearly in t
/// (docs/fixed-labels.md §3). Ridge: docs/fixed-labels.md §4.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `path` | `auto` | `auto`, `spectral`, `refit` | how each refit is computed (all exact) |
/// | `projected_noise` | true | bool | spectral path: draw Uᵀε directly |
/// | `fast_design` | true | bool | spectral path with projected noise: sample the row space where exact |
///
/// Policies: replace; accumulate (a fit on the running mean of the label vectors, spectral
/// and exact, docs/policies.md §2); accumulate-subsample (the refit path on rows of X
/// drawn from all iterations' labels, no exact risk, docs/policies.md §5).
///
/// Errors: as `fresh-labels`.
///
/// Reference: Garg, Bhattacharya, Sur (2025), arXiv 2509.22341, setting (i);
/// Dohmatob, Feng, Kempe (2024) for w = 0 (linear collapse).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedLabelsParams {
    /// How each refit is computed: `auto`, `spectral` or `refit`.
    #[serde(default = "auto")]
    pub path: Path,
    /// Spectral path: draw the projected noise Uᵀε directly (exact in law).
    #[serde(default = "yes")]
    pub projected_noise: bool,
    /// Spectral path with projected noise: sample the row space instead of drawing X.
    #[serde(default = "yes")]
    pub fast_design: bool,
}

impl Params for FixedLabelsParams {
    type Target = dyn Protocol;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Protocol>, ParamError> {
        Ok(Box::new(LabelMixing {
            real: RealLabels::Fixed,
            path: self.path,
            projected_noise: self.projected_noise,
            fast_design: self.fast_design,
        }))
    }
    fn example() -> Self {
        FixedLabelsParams { path: Path::Auto, projected_noise: true, fast_design: true }
    }
}

collapse_core::register!(
    ProtocolPlugin,
    FixedLabelsParams,
    "fixed-labels",
    "Fixed X and fixed real labels y_0; each iteration mixes y_0 with fresh synthetic labels"
);
