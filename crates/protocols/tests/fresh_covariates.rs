//! Fresh covariates (docs/fresh-covariates.md): Monte Carlo over designs and label noise
//! (given β) against the exact finite-n recursion (§3 isotropic min-norm, §4 OLS with any
//! Σ), the exact recursion against its proportional limit as n grows (§5), isotropic
//! ridge against the two-dimensional limit recursion (§6), and the optimal weight.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use collapse_core::Streams;
use collapse_theory::fresh_covariates_isotropic;
use common::{chains, column, data, scenario, text, z_score};

fn fresh(estimator: &str, covariance: &str, w: &str) -> String {
    format!(
        "[covariance]\n{covariance}\n[estimator]\n{estimator}\n[schedule]\nkind = \"constant\"\nw = {w}\n[protocol]\nkind = \"fresh-covariates\""
    )
}

/// Isotropic min-norm, p > n + 1: the exact column is (3.1) with ‖β‖², and the simulated
/// mean over fresh designs and noise agrees with it.
#[test]
fn min_norm_monte_carlo_matches_the_exact_recursion() {
    let (n, p, t_max) = (20, 50, 8);
    let s = scenario(&text(n, p, t_max, &fresh("kind = \"min-norm\"", "kind = \"isotropic\"", "[0.3, 0.618, 1.0]")));
    let d = data(&s, 0, Streams::new(11, 0, 0), None);
    let r2 = d.beta().unwrap().squared_norm_l2();
    for (cell, w) in [0.3, 0.618, 1.0].into_iter().enumerate() {
        assert!(s.cells[cell].plan.metrics[0].exact, "exact planned");
        let values = chains(&s, cell, &d, 3000, 21);
        for t in 0..=t_max {
            let closed = fresh_covariates_isotropic(n, p, r2, 1.0, w, t as u32).unwrap();
            assert!((values[0][t][1] - closed).abs() < 1e-12 * closed, "w = {w}, t = {t}");
        }
        for t in [0, 1, 3, t_max] {
            let z = z_score(&column(&values, t, 0), values[0][t][1]);
            assert!(z.abs() < 4.0, "w = {w}, t = {t}: z = {z}");
        }
    }
}

/// OLS (n > p + 1) on a non-isotropic Σ: D_t = (1−w)²D_{t−1} + ν p/(n − p − 1), exact for any Σ.
#[test]
fn ols_monte_carlo_matches_the_exact_recursion_for_any_covariance() {
    let (n, p, t_max, w) = (60, 20, 6, 0.5);
    let s = scenario(&text(n, p, t_max, &fresh("kind = \"ols\"", "kind = \"spiked\"\nspikes = [5.0, 2.0]", "0.5")));
    let d = data(&s, 0, Streams::new(12, 0, 0), None);
    let values = chains(&s, 0, &d, 3000, 22);
    let v = p as f64 / (n - p - 1) as f64;
    let mut expected = v;
    for t in 0..=t_max {
        if t > 0 {
            expected = (1.0 - w) * (1.0 - w) * expected + (w * w + (1.0 - w) * (1.0 - w)) * v;
        }
        assert!((values[0][t][1] - expected).abs() < 1e-12 * expected, "t = {t}");
    }
    for t in [0, 2, t_max] {
        let z = z_score(&column(&values, t, 0), values[0][t][1]);
        assert!(z.abs() < 4.0, "t = {t}: z = {z}");
    }
}

/// The exact path approaches the theory's limit path like 1/n at γ = 2 (min-norm), and
/// at γ = 1/2 (OLS).
#[test]
fn exact_path_approaches_the_limit_as_n_grows() {
    for (gamma_num, gamma_den) in [(2, 1), (1, 2)] {
        let mut gaps = Vec::new();
        for n in [25, 50, 100, 200, 400] {
            let p = n * gamma_num / gamma_den;
            let estimator = if p > n { "kind = \"min-norm\"" } else { "kind = \"ols\"" };
            let s = scenario(&text(
                n,
                p,
                10,
                &format!(
                    "[signal]\nkind = \"random\"\nradius = 1.0\n{}",
                    fresh(estimator, "kind = \"isotropic\"", "0.6")
                ),
            ));
            let c = &s.cells[0];
            let theory = c.plugins.protocol.theory(&c.view()).unwrap().paths(&c.weights).remove(0).unwrap();
            let d = data(&s, 0, Streams::new(13, 0, 0), None);
            let exact = chains(&s, 0, &d, 1, 23);
            let gap = (0..=10).map(|t| (exact[0][t][1] - theory[t].unwrap()).abs()).fold(0.0, f64::max);
            gaps.push((n, gap));
        }
        for pair in gaps.windows(2) {
            assert!(pair[1].1 < 0.7 * pair[0].1, "γ = {gamma_num}/{gamma_den}: {gaps:?}");
        }
        let (n, last) = gaps[gaps.len() - 1];
        assert!(last * n as f64 > 0.1 && last * (n as f64) < 10.0, "gap not O(1/n): {gaps:?}");
    }
}

/// Isotropic ridge: the simulated mean agrees with the limit recursion of §6 at n = 80.
#[test]
fn ridge_monte_carlo_matches_the_limit_recursion() {
    let (n, p, t_max) = (80, 160, 4);
    let s = scenario(&text(n, p, t_max, &fresh("kind = \"ridge\"\nlambda = 0.3", "kind = \"isotropic\"", "0.6")));
    let c = &s.cells[0];
    assert!(!c.plan.metrics[0].exact, "no exact column for ridge");
    let theory = c.plugins.protocol.theory(&c.view()).unwrap().paths(&c.weights).remove(0).unwrap();
    let d = data(&s, 0, Streams::new(14, 0, 0), None);
    let values = chains(&s, 0, &d, 1200, 24);
    for t in [0, 1, t_max] {
        let z = z_score(&column(&values, t, 0), theory[t].unwrap());
        assert!(z.abs() < 4.0, "t = {t}: z = {z}");
    }
}

/// γ = 2, SNR 1: the long-run risk (mean over t = 10…20) is lowest at the theory's w*
/// (0.6085), below its neighbours 0.45 and 0.75 and below w = 1, each by a paired z-score.
#[test]
fn long_run_risk_is_lowest_near_the_optimal_weight() {
    let (n, p, t_max) = (50, 100, 20);
    let ws = [0.45, 0.6085, 0.75, 1.0];
    let s = scenario(&text(
        n,
        p,
        t_max,
        &fresh("kind = \"min-norm\"", "kind = \"isotropic\"", "[0.45, 0.6085, 0.75, 1.0]"),
    ));
    let c = &s.cells[1];
    let (w_star, _) = c.plugins.protocol.theory(&c.view()).unwrap().optimal_weight().unwrap();
    assert!((w_star - 0.6085).abs() < 1e-3, "theory w* = {w_star}");
    let d = data(&s, 0, Streams::new(15, 0, 0), None);
    // The same chain seeds for every cell: paired by common random numbers.
    let long_run: Vec<Vec<f64>> = (0..ws.len())
        .map(|cell| {
            chains(&s, cell, &d, 400, 25).iter().map(|ch| (10..=t_max).map(|t| ch[t][0]).sum::<f64>() / 11.0).collect()
        })
        .collect();
    for (k, w) in ws.iter().enumerate().filter(|(k, _)| *k != 1) {
        let diff: Vec<f64> = long_run[1].iter().zip(&long_run[k]).map(|(a, b)| a - b).collect();
        let z = z_score(&diff, 0.0);
        assert!(z < -4.0, "w* against w = {w}: paired z = {z}");
    }
}
