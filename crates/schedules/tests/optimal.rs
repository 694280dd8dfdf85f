//! The `optimal` schedule against THEORY.md §A.5's table (isotropic, σ = 1):
//! γ = 1.5, SNR = 1: w*(0.1) = 0.5936, w*(1) = 0.7512, w*(10) = 1; and 1/φ for min-norm.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use collapse_core::{BuildContext, CellView, Params};
use collapse_covariance::{IsotropicParams, RandomSignalParams};
use collapse_estimators::{MinNormParams, RidgeParams};
use collapse_schedules::{INVERSE_GOLDEN_RATIO, OptimalParams};

fn optimal_w(lambda: Option<f64>) -> Vec<f64> {
    let ctx = BuildContext { n: 200, p: 300, noise_sd: 1.0 };
    let cov = IsotropicParams {}.build(&ctx).unwrap();
    let signal = RandomSignalParams { radius: 1.0 }.build(&ctx).unwrap();
    let est = match lambda {
        Some(l) => RidgeParams { lambda: l }.build(&ctx).unwrap(),
        None => MinNormParams {}.build(&ctx).unwrap(),
    };
    let view = CellView {
        n: 200,
        p: 300,
        noise_sd: 1.0,
        iterations: 3,
        estimator: est.as_ref(),
        covariance: cov.as_ref(),
        signal: signal.as_ref(),
    };
    OptimalParams {}.build(&ctx).unwrap().weights(&view).unwrap()
}

#[test]
fn optimal_weights_match_the_theory_table() {
    for (lambda, expected) in [(0.1, 0.5936), (1.0, 0.7512), (10.0, 1.0)] {
        let w = optimal_w(Some(lambda));
        assert_eq!(w.len(), 4);
        assert!((w[0] - 1.0).abs() < f64::EPSILON);
        assert!(w[1..].iter().all(|x| (x - expected).abs() < 5e-4), "λ = {lambda}: {w:?} vs {expected}");
    }
    let w = optimal_w(None);
    assert!(w[1..].iter().all(|x| (x - INVERSE_GOLDEN_RATIO).abs() < 1e-15));
}
