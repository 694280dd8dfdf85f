//! The registry with mock plugins: sorted lookups, unknown names listing the known
//! ones, duplicate names as an error (this test binary registers a duplicate schedule on
//! purpose; estimators are unique), ranges declared once in the schema and enforced,
//! and the providing crate recorded.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use collapse_core::faer::Col;
use collapse_core::registry;
use collapse_core::{BuildContext, CellView, CoreError, Estimator, FitInput, ParamError, Params, Schedule, Section};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

#[derive(Debug)]
struct Zero;
impl Estimator for Zero {
    fn fit(&self, input: &FitInput<'_>) -> Result<Col<f64>, CoreError> {
        Ok(Col::zeros(input.x.ncols()))
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
    #[schemars(range(min = 0.0, max = 1.0))]
    scale: f64,
    /// A positive rate.
    #[serde(default = "one")]
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    rate: f64,
    /// Weights, each in [0, 1].
    #[serde(default)]
    #[schemars(inner(range(min = 0.0, max = 1.0)))]
    weights: Vec<f64>,
}

fn one() -> f64 {
    1.0
}

impl Params for MockParams {
    type Target = dyn Estimator;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        Ok(Box::new(Zero))
    }
    fn example() -> Self {
        MockParams { scale: 0.5, rate: 1.0, weights: vec![] }
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

collapse_core::register!(EstimatorPlugin, MockParams, "zeta", "mock");
collapse_core::register!(EstimatorPlugin, MockParams, "alpha", "mock");
collapse_core::register!(SchedulePlugin, MockScheduleParams, "same", "mock");
collapse_core::register!(SchedulePlugin, MockScheduleParams, "same", "mock, registered twice");

fn ctx() -> BuildContext {
    BuildContext { n: 1, p: 1 }
}

fn build(params: serde_json::Value) -> Result<serde_json::Map<String, serde_json::Value>, CoreError> {
    let obj = params.as_object().cloned().unwrap_or_default();
    Section::Estimator.build("alpha", &obj, &ctx()).map(|(_, record)| record)
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
    assert!(Section::Schedule.catalog().is_err());
}

#[test]
fn parameters_are_strict_and_ranges_come_from_the_schema() {
    assert_eq!(build(serde_json::json!({"scale": 0.25})).unwrap()["scale"], 0.25);
    assert_eq!(build(serde_json::json!({})).unwrap()["scale"], 0.0, "defaults are recorded");
    let unknown = build(serde_json::json!({"scael": 1})).unwrap_err();
    assert!(unknown.to_string().starts_with("scael: unknown field `scael`"), "{unknown}");
    assert_eq!(build(serde_json::json!({"scale": 2.0})).unwrap_err().to_string(), "scale: must be in [0, 1], got 2");
    assert_eq!(build(serde_json::json!({"rate": 0.0})).unwrap_err().to_string(), "rate: must be > 0, got 0");
    assert_eq!(
        build(serde_json::json!({"weights": [0.5, 1.5]})).unwrap_err().to_string(),
        "weights[1]: must be in [0, 1], got 1.5"
    );
    let ty = build(serde_json::json!({"scale": "x"})).unwrap_err();
    assert!(ty.to_string().starts_with("scale: invalid type"), "{ty}");
    // The same check without the registry, as plugin tests use it.
    let e = MockParams { scale: -1.0, rate: 1.0, weights: vec![] }.checked_build(&ctx()).unwrap_err();
    assert_eq!(e.field(), Some("scale"));
    for bad in [f64::NAN, f64::INFINITY] {
        let e = MockParams { scale: 0.5, rate: bad, weights: vec![] }.checked_build(&ctx()).unwrap_err();
        assert_eq!(e.field(), Some("rate"), "{e}");
        let e = MockParams { scale: 0.5, rate: 1.0, weights: vec![bad] }.checked_build(&ctx()).unwrap_err();
        assert_eq!(e.field(), Some("weights[0]"), "{e}");
    }
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
fn schema_carries_docs_and_the_providing_crate() {
    let info = Section::Estimator.catalog().unwrap();
    let schema = &info[0].schema;
    assert_eq!(schema["description"], "A mock with one bounded parameter.");
    assert_eq!(schema["properties"]["scale"]["description"], "A scale in [0, 1].");
    assert_eq!(schema["properties"]["scale"]["minimum"], 0.0);
    assert_eq!(info[0].provided_by.0, "collapse-core");
}
