use collapse_core::{BuildContext, ParamError, Params, Policy, Retention};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Replace: every iteration trains on its own data only (docs/policies.md §1,
/// docs/spectral-recursion.md §5).
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
/// equal weight, so the newest data get weight 1/(t + 1) (docs/policies.md §1). On a fixed
/// design this is a fit on the running mean of the label vectors: O(r) per iteration on
/// the spectral path with the exact risk, and copies of X are never stacked; for
/// min-norm at w = 0 the variance factor stays below π²/6 (docs/policies.md §2–§3). With
/// fresh covariates the pool is kept as rows while it has at most p of them, then as the
/// moments Σ X_jᵀX_j, Σ X_jᵀz_j (docs/policies.md §4).
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

/// Accumulate-subsample: every iteration keeps all data so far in a pool and refits on
/// `rows` rows drawn from it uniformly without replacement (the `Selection` stream of
/// the iteration, so the cells of a design group draw the same rows); default: as many
/// rows as one iteration brings (docs/policies.md §5). On a fixed design the pool holds
/// one label vector per iteration and the drawn rows repeat rows of X; with fresh
/// covariates it holds every X_t. Each iteration is one refit on the subsample, through
/// the smaller Gram matrix of its design for spectral estimators: O(rows·p·min(rows, p))
/// flops, and memory that grows by one iteration's rows each step. No exact risk and no
/// theory (docs/policies.md §6).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `rows` | n | integer ≥ 1 | rows of each refit (capped at the pool's size) |
///
/// Errors: `rows` = 0.
///
/// Reference: Kazdan et al. (2024), arXiv 2410.16713 ("accumulate-subsample").
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AccumulateSubsampleParams {
    /// Rows of each refit, drawn from all rows so far (default: the design's n).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub rows: Option<usize>,
}

/// See [`AccumulateSubsampleParams`].
#[derive(Debug, Clone, Copy)]
pub struct AccumulateSubsample {
    rows: Option<usize>,
}

impl Policy for AccumulateSubsample {
    fn retention(&self, _: usize, n: usize) -> Retention {
        Retention::Subsample { rows: self.rows.unwrap_or(n) }
    }
}

impl Params for AccumulateSubsampleParams {
    type Target = dyn Policy;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Policy>, ParamError> {
        Ok(Box::new(AccumulateSubsample { rows: self.rows }))
    }
    fn example() -> Self {
        AccumulateSubsampleParams { rows: None }
    }
}

collapse_core::register!(PolicyPlugin, ReplaceParams, "replace", "Each iteration trains on its own data only");
collapse_core::register!(
    PolicyPlugin,
    AccumulateParams,
    "accumulate",
    "Each iteration trains on all data so far, iterations weighted equally"
);
collapse_core::register!(
    PolicyPlugin,
    AccumulateSubsampleParams,
    "accumulate-subsample",
    "Each iteration refits on a random subsample of all data so far (default: n rows)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn subsample_rows_must_be_positive() {
        let ctx = BuildContext { n: 10, p: 20 };
        let e = AccumulateSubsampleParams { rows: Some(0) }.checked_build(&ctx).unwrap_err();
        assert_eq!(e.field(), Some("rows"), "{e}");
        let p = AccumulateSubsampleParams { rows: None }.checked_build(&ctx).unwrap();
        assert_eq!(p.retention(3, 10), Retention::Subsample { rows: 10 });
    }
}
