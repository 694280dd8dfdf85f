//! The `optimal` schedule asks the theory of the cell's own protocol. Fresh labels,
//! isotropic Σ, σ = 1, γ = 1.5, SNR 1 (docs/asymptotics.md §5, reference table):
//! w*(0.1) = 0.5936, w*(1) = 0.7512, w*(10) = 1; 1/φ for min-norm; fixed labels: 1.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use collapse_core::spec::{parse, resolve};
use collapse_covariance as _;
use collapse_estimators as _;
use collapse_families as _;
use collapse_protocols as _;
use collapse_schedules::INVERSE_GOLDEN_RATIO;

fn optimal_w(estimator: &str, protocol: &str) -> Vec<f64> {
    let text = format!(
        "name = \"t\"\nreplicates = 1\niterations = 3\n[design]\nn = 200\np = 300\n[estimator]\n{estimator}\n[schedule]\nkind = \"optimal\"\n[protocol]\nkind = \"{protocol}\"\n"
    );
    let s = resolve(&parse(&text, "test").unwrap()).unwrap();
    s.cells[0].weights.clone()
}

#[test]
fn optimal_weights_match_the_theory_table() {
    for (lambda, expected) in [(0.1, 0.5936), (1.0, 0.7512), (10.0, 1.0)] {
        let w = optimal_w(&format!("kind = \"ridge\"\nlambda = {lambda}"), "fresh-labels");
        assert_eq!(w.len(), 4);
        assert!((w[0] - 1.0).abs() < f64::EPSILON);
        assert!(w[1..].iter().all(|x| (x - expected).abs() < 5e-4), "λ = {lambda}: {w:?} vs {expected}");
    }
    let w = optimal_w("kind = \"min-norm\"", "fresh-labels");
    assert!(w[1..].iter().all(|x| (x - INVERSE_GOLDEN_RATIO).abs() < 1e-15));
    // Fixed real labels: synthetic data never help min-norm, so w* = 1.
    let w = optimal_w("kind = \"min-norm\"", "fixed-labels");
    assert!(w[1..].iter().all(|x| (x - 1.0).abs() < 1e-15), "{w:?}");
}

/// A cell without theory gets a clear error naming why.
#[test]
fn optimal_without_theory_is_an_error_with_the_reason() {
    let text = "name = \"t\"\nreplicates = 1\niterations = 3\n[design]\nn = 20\np = 30\n[estimator]\nkind = \"pcr\"\nk = 5\n[schedule]\nkind = \"optimal\"\n";
    let e = resolve(&parse(text, "test").unwrap()).unwrap_err().to_string();
    assert!(
        e.starts_with("schedule.kind: `optimal` needs the protocol's theory: no asymptotic theory for this estimator"),
        "{e}"
    );
    // Ridge theory assumes σ̃ = σ: noisier synthetic labels have no ridge optimum (min-norm has one).
    let text = "name = \"t\"\nreplicates = 1\niterations = 3\n[design]\nn = 20\np = 30\n[family]\nsynthetic_noise_sd = 2.0\n[estimator]\nkind = \"ridge\"\nlambda = 0.5\n[schedule]\nkind = \"optimal\"\n";
    let e = resolve(&parse(text, "test").unwrap()).unwrap_err().to_string();
    assert!(e.starts_with("schedule.kind: `optimal` has no optimal weight here") && e.contains("σ̃ = σ"), "{e}");
}

/// Min-norm with noisier synthetic labels: w* = (√(k² + 4k) − k)/2, k = σ̃²/σ² (docs/fresh-labels.md §3).
#[test]
fn optimal_weight_follows_the_noise_ratio_for_min_norm() {
    let text = "name = \"t\"\nreplicates = 1\niterations = 2\n[design]\nn = 20\np = 30\n[family]\nnoise_sd = 1.0\nsynthetic_noise_sd = 2.0\n[estimator]\nkind = \"min-norm\"\n[schedule]\nkind = \"optimal\"\n";
    let s = resolve(&parse(text, "test").unwrap()).unwrap();
    let k: f64 = 4.0;
    let expected = ((k * k + 4.0 * k).sqrt() - k) / 2.0;
    assert!((s.cells[0].weights[1] - expected).abs() < 1e-12, "{:?} vs {expected}", s.cells[0].weights);
}
