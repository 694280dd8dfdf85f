use collapse_core::{BuildContext, ParamError, Params, Policy, Retention};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Replace: every iteration trains on its own data only (docs/spectral-recursion.md §5).
///
/// No parameters.
///
/// Reference: Shumailov et al. (2024), Nature 631; Gerstgrasser et al. (2024),
/// arXiv 2404.01413 ("replace").
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ReplaceParams {}

/// See [`ReplaceParams`].
#[derive(Debug, Clone, Copy)]
pub struct Replace;

impl Policy for Replace {
    fn retention(&self, _: usize, _: usize) -> Retention {
        Retention::Pool { newest: 1.0 }
    }
}

impl Params for ReplaceParams {
    type Target = dyn Policy;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Policy>, ParamError> {
        Ok(Box::new(Replace))
    }
    fn example() -> Self {
        ReplaceParams {}
    }
}

/// Accumulate: every iteration trains on all data so far, each iteration's data with
/// equal weight, so the newest data get weight 1/(t + 1) (docs/spectral-recursion.md §5).
/// On a fixed design this is a fit on the running mean of the label vectors: O(r) per
/// iteration on the spectral path, and copies of X are never stacked.
///
/// No parameters.
///
/// Reference: Gerstgrasser et al. (2024), arXiv 2404.01413; Kazdan et al. (2024),
/// arXiv 2410.16713 ("accumulate").
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccumulateParams {}

/// See [`AccumulateParams`].
#[derive(Debug, Clone, Copy)]
pub struct Accumulate;

impl Policy for Accumulate {
    fn retention(&self, t: usize, _: usize) -> Retention {
        Retention::Pool { newest: 1.0 / (t as f64 + 1.0) }
    }
}

impl Params for AccumulateParams {
    type Target = dyn Policy;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Policy>, ParamError> {
        Ok(Box::new(Accumulate))
    }
    fn example() -> Self {
        AccumulateParams {}
    }
}

collapse_core::register!(PolicyPlugin, ReplaceParams, "replace", "Each iteration trains on its own data only");
collapse_core::register!(
    PolicyPlugin,
    AccumulateParams,
    "accumulate",
    "Each iteration trains on all data so far, iterations weighted equally"
);
