//! The `weighted` protocol against its theory (docs/weighted.md §2, docs/families.md):
//! Monte Carlo over independent chains vs the exact recursions, by z-score.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use collapse_core::Streams;
use common::{chains, column, data, scenario, z_score};

fn gaussian(n: usize, k: f64, w: f64, known: bool, iterations: usize) -> String {
    format!(
        "name = \"t\"\nseed = 3\nreplicates = 1\niterations = {iterations}\n[design]\nn = {n}\np = 1\n\
         [family]\nkind = \"gaussian\"\nknown_covariance = {known}\n[covariance]\nkind = \"diagonal\"\neigenvalues = [2.0]\n\
         [estimator]\nkind = \"mle\"\n[schedule]\nkind = \"constant\"\nw = {w}\n[protocol]\nkind = \"weighted\"\nk = {k}\n"
    )
}

/// The theory's path of metric `j` for cell 0.
fn theory(s: &collapse_core::ResolvedScenario, j: usize) -> Vec<f64> {
    let c = &s.cells[0];
    let t = c.plugins.protocol.theory(&c.view()).unwrap();
    t.paths(&c.weights)[j].as_ref().unwrap().iter().map(|x| x.unwrap()).collect()
}

/// Gaussian mean with the covariance known: n·MSE/σ² → (w² + k(1 − w)²)/(w(2 − w)) at
/// k ∈ {0.1, 1, 4} and three weights each (docs/families.md §1.2).
#[test]
fn gaussian_mean_matches_p3_with_known_covariance() {
    let n = 100;
    for k in [0.1, 1.0, 4.0] {
        let star = collapse_theory::optimal_w_noise_ratio(k).unwrap();
        for w in [star, 0.5, 0.9] {
            let s = scenario(&gaussian(n, k, w, true, 60));
            let d = data(&s, 0, Streams::new(1, 2, 3), None);
            let values = chains(&s, 0, &d, 1500, 11);
            let last = s.iterations;
            let predicted = theory(&s, 0)[last];
            let formula = collapse_theory::c_k(w, k) * 2.0 / n as f64;
            assert!((predicted - formula).abs() < 1e-9 * formula, "k {k}, w {w}: {predicted} vs {formula}");
            let z = z_score(&column(&values, last, 0), predicted);
            assert!(z.abs() < 4.0, "k = {k}, w = {w}: z = {z} against n·MSE/σ² = {}", collapse_theory::c_k(w, k));
        }
    }
}

/// With the covariance estimated, the mean follows the joint recursion of
/// docs/families.md §1.2 exactly (z-score at n = m = 4, and the spread tr Σ̂/tr Σ = s_t),
/// and departs from P3's formula by a measurable amount (4.1% below c_1(1/φ)).
#[test]
fn gaussian_mean_exact_recursion() {
    let (n, w) = (4, 0.618_034);
    let s = scenario(&gaussian(n, 1.0, w, false, 30));
    let d = data(&s, 0, Streams::new(1, 2, 3), None);
    let values = chains(&s, 0, &d, 60_000, 5);
    let last = s.iterations;
    let mean_path = theory(&s, 0);
    let spread_path = theory(&s, 2);
    for t in [1, 5, last] {
        let z = z_score(&column(&values, t, 0), mean_path[t]);
        assert!(z.abs() < 4.0, "mean error at t = {t}: z = {z}");
        let z = z_score(&column(&values, t, 2), spread_path[t]);
        assert!(z.abs() < 4.0, "variance ratio at t = {t}: z = {z}");
    }
    let p3 = collapse_theory::c_k(w, 1.0) * 2.0 / n as f64;
    let z = z_score(&column(&values, last, 0), p3);
    assert!(z < -4.0, "the shrinkage departure should be visible: z = {z} against P3's formula");
}

/// ECDF: E l2_t = a_t √τ/(n√π) exactly in t (docs/families.md §3.3).
#[test]
fn ecdf_l2_exact_recursion() {
    for (m, w) in [(50, 0.3), (25, 0.618), (50, 0.0)] {
        let text = format!(
            "name = \"t\"\nseed = 3\nreplicates = 1\niterations = 20\n[design]\nn = 50\np = 1\n\
             [family]\nkind = \"ecdf\"\n[covariance]\nkind = \"diagonal\"\neigenvalues = [4.0]\n[estimator]\nkind = \"mle\"\n\
             [schedule]\nkind = \"constant\"\nw = {w}\n[protocol]\nkind = \"weighted\"\nm = {m}\n"
        );
        let s = scenario(&text);
        let d = data(&s, 0, Streams::new(1, 2, 3), None);
        let values = chains(&s, 0, &d, 3000, 9);
        let path = theory(&s, 0);
        for t in [0, 3, 20] {
            let z = z_score(&column(&values, t, 0), path[t]);
            assert!(z.abs() < 4.0, "m = {m}, w = {w}, t = {t}: z = {z} (theory {})", path[t]);
        }
    }
}

/// Cells that differ only in the weight share the real samples of every round (common
/// random numbers): at t = 0 every cell has the same fit, and w = 1 never draws
/// synthetic samples, so its path does not depend on k.
#[test]
fn cells_share_real_samples() {
    let text = "name = \"t\"\nseed = 3\nreplicates = 1\niterations = 4\n[design]\nn = 30\np = 2\n\
         [family]\nkind = \"logistic\"\n[estimator]\nkind = \"mle\"\n[schedule]\nkind = \"constant\"\nw = [0.4, 1.0]\n\
         [protocol]\nkind = \"weighted\"\nk = [0.5, 2.0]\n";
    let s = scenario(text);
    let d = data(&s, 0, Streams::new(1, 2, 3), None);
    let runs: Vec<_> = (0..s.cells.len()).map(|c| chains(&s, c, &d, 1, 4)).collect();
    for r in &runs[1..] {
        assert_eq!(r[0][0], runs[0][0][0]);
    }
    let w1: Vec<usize> = s.cells.iter().filter(|c| (c.weights[1] - 1.0).abs() < 1e-15).map(|c| c.index).collect();
    assert_eq!(w1.len(), 2);
    assert_eq!(runs[w1[0]], runs[w1[1]]);
}
