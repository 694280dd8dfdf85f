//! The registry with mock plugins: sorted lookups, unknown names listing the known
//! ones, and duplicate names as an error (this test binary registers a duplicate
//! schedule on purpose; estimators are unique).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use collapse_core::faer::{Col, ColRef, MatRef};
use collapse_core::registry::{self, Kind};
use collapse_core::{
    BuildContext, CellView, CoreError, Estimator, EstimatorPlugin, ParamError, Params, Schedule, SchedulePlugin,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug)]
struct Zero;
impl Estimator for Zero {
    fn fit(&self, x: MatRef<'_, f64>, _: ColRef<'_, f64>, _: Option<ColRef<'_, f64>>) -> Result<Col<f64>, CoreError> {
        Ok(Col::zeros(x.ncols()))
    }
}
impl Schedule for Zero {
    fn weights(&self, cell: &CellView<'_>) -> Result<Vec<f64>, CoreError> {
        Ok(vec![1.0; cell.iterations + 1])
    }
}

/// A mock with one bounded parameter.
#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MockParams {
    /// A scale in [0, 1].
    #[serde(default)]
    scale: f64,
}

impl Params for MockParams {
    type Target = dyn Estimator;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        collapse_core::check_range("scale", self.scale, 0.0, 1.0)?;
        Ok(Box::new(Zero))
    }
    fn example() -> Self {
        MockParams { scale: 0.5 }
    }
}

#[derive(Debug, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
struct MockScheduleParams {}

impl Params for MockScheduleParams {
    type Target = dyn Schedule;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Schedule>, ParamError> {
        Ok(Box::new(Zero))
    }
    fn example() -> Self {
        MockScheduleParams {}
    }
}

inventory::submit! { EstimatorPlugin::new::<MockParams>("zeta", "mock") }
inventory::submit! { EstimatorPlugin::new::<MockParams>("alpha", "mock") }
inventory::submit! { SchedulePlugin::new::<MockScheduleParams>("same", "mock") }
inventory::submit! { SchedulePlugin::new::<MockScheduleParams>("same", "mock, registered twice") }

fn ctx() -> BuildContext {
    BuildContext { n: 1, p: 1, noise_sd: 1.0 }
}

#[test]
fn lookups_are_sorted_and_unknown_names_list_the_known_ones() {
    let names: Vec<&str> = registry::plugins::<dyn Estimator>().unwrap().iter().map(|p| p.name).collect();
    assert_eq!(names, ["alpha", "zeta"]);
    let err = registry::lookup::<dyn Estimator>("lasso").unwrap_err();
    assert_eq!(err.to_string(), "kind: unknown estimator `lasso`; known estimators: alpha, zeta");
    assert_eq!(
        err.in_section("estimator").to_string(),
        "estimator.kind: unknown estimator `lasso`; known estimators: alpha, zeta"
    );
}

#[test]
fn duplicate_names_are_an_error() {
    let err = registry::plugins::<dyn Schedule>().unwrap_err();
    assert!(matches!(err, CoreError::DuplicatePlugin { kind: "schedule", .. }), "{err}");
    assert!(registry::catalog(Kind::Schedule).is_err());
}

#[test]
fn parameters_are_strict_and_validated() {
    let ok = registry::build::<dyn Estimator>("alpha", &serde_json::json!({"scale": 0.25}), &ctx()).unwrap();
    assert_eq!(ok.params["scale"], 0.25);
    let defaults = registry::build::<dyn Estimator>("alpha", &serde_json::json!({}), &ctx()).unwrap();
    assert_eq!(defaults.params["scale"], 0.0, "defaults are recorded");
    let unknown = registry::build::<dyn Estimator>("alpha", &serde_json::json!({"scael": 1}), &ctx()).unwrap_err();
    assert!(unknown.to_string().starts_with("scael: unknown field `scael`"), "{unknown}");
    let range = registry::build::<dyn Estimator>("alpha", &serde_json::json!({"scale": 2.0}), &ctx()).unwrap_err();
    assert_eq!(range.to_string(), "scale: must be in [0, 1], got 2");
    let ty = registry::build::<dyn Estimator>("alpha", &serde_json::json!({"scale": "x"}), &ctx()).unwrap_err();
    assert!(ty.to_string().starts_with("scale: invalid type"), "{ty}");
}

#[test]
fn names_must_be_kebab_case() {
    for ok in ["ridge", "min-norm", "ar1", "power-law"] {
        assert!(registry::is_kebab_case(ok), "{ok}");
    }
    for bad in ["", "Ridge", "min_norm", "-a", "a-", "a--b", "power law"] {
        assert!(!registry::is_kebab_case(bad), "{bad}");
    }
}

#[test]
fn schema_carries_docs() {
    let info = registry::catalog(Kind::Estimator).unwrap();
    let schema = &info[0].schema;
    assert_eq!(schema["description"], "A mock with one bounded parameter.");
    assert_eq!(schema["properties"]["scale"]["description"], "A scale in [0, 1].");
}
