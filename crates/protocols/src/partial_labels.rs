use collapse_core::{BuildContext, ParamError, Params, Protocol};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::fresh_design::FreshDesign;

/// Fresh covariates with partial real labels (P1 setting (iii); docs/partial-labels.md §1):
/// every iteration draws a new design X_t; at t ≥ 1 the first m = round(π·n) rows get the
/// mixed label w·y + (1 − w)·ỹ and the other n − m only the synthetic label ỹ of the
/// previous fit (rows are iid, so which m rows is immaterial). With
/// `synthetic_rows = "drop"` only the m rows with a real label are fitted: fresh
/// covariates with m rows, the comparison that shows whether fitting the synthetic-only
/// rows helps (docs/partial-labels.md §4). t = 0 fits real labels on all n rows.
///
/// For min-norm with isotropic rows and p > n + 1 the expected risk is exactly
/// D_t = q_n D_{t−1} + r²(1 − n/p) + Σ_i s_i²/(p − n − 1), q_n = ((p − 1)tr D² − (tr D)²)/(p(p − n − 1)),
/// D = diag(1 − w on the m mixed rows, 1 on the others) (`risk_exact`,
/// docs/partial-labels.md §2); its proportional limit
/// D_∞ = [r²(1 − 1/γ) + νσ²/(γ − 1)]/(1 − q), q = (d₂ − d₁²/γ)/(γ − 1), is the theory (§3).
/// π = 1 is `fresh-covariates`; π = 0 forgets β: D_∞ = r² + σ̃²γ/(γ − 1)². For
/// min-norm, dropping the synthetic-only rows is better on the whole (π, w) grid
/// evaluated in docs/partial-labels.md §4. Ridge and non-isotropic Σ: simulation only.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `pi` | (required) | 0 ≤ π ≤ 1 | fraction of rows whose label mixes in a real label |
/// | `synthetic_rows` | `keep` | `keep`, `drop` | fit the synthetic-only rows, or drop them |
///
/// Errors: `pi` outside [0, 1]; `synthetic_rows = "drop"` with round(π·n) = 0
/// (`protocol.pi`); as `fresh-covariates` for the family and estimator.
///
/// Reference: Garg, Bhattacharya, Sur (2025), arXiv 2509.22341, setting (iii).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PartialLabelsParams {
    /// Fraction π of the rows whose label mixes in a real label (0 ≤ π ≤ 1).
    #[schemars(range(min = 0.0, max = 1.0))]
    pub pi: f64,
    /// `keep`: fit all n rows; `drop`: fit only the rows with a real label.
    #[serde(default)]
    pub synthetic_rows: SyntheticRows,
}

/// What is done with the rows that get only a synthetic label.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum SyntheticRows {
    /// Fit them with their synthetic labels.
    #[default]
    Keep,
    /// Leave them out of the fit.
    Drop,
}

impl Params for PartialLabelsParams {
    type Target = dyn Protocol;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Protocol>, ParamError> {
        Ok(Box::new(FreshDesign { pi: self.pi, drop_synthetic_only: self.synthetic_rows == SyntheticRows::Drop }))
    }
    fn example() -> Self {
        PartialLabelsParams { pi: 0.5, synthetic_rows: SyntheticRows::Keep }
    }
}

collapse_core::register!(
    ProtocolPlugin,
    PartialLabelsParams,
    "partial-labels",
    "Fresh covariates; a fraction π of the rows mixes in real labels, the rest get synthetic labels only"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pi_outside_the_unit_interval_is_rejected_with_its_field() {
        let ctx = BuildContext { n: 10, p: 20 };
        for pi in [-0.1, 1.5, f64::NAN] {
            let e = PartialLabelsParams { pi, synthetic_rows: SyntheticRows::Keep }.checked_build(&ctx).unwrap_err();
            assert_eq!(e.field(), Some("pi"), "{e}");
        }
        assert!(PartialLabelsParams { pi: 0.0, synthetic_rows: SyntheticRows::Drop }.checked_build(&ctx).is_ok());
    }
}
