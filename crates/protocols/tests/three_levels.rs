//! Simulation, exact and asymptotic risk side by side for fresh labels
//! (docs/spectral-recursion.md §3–§4, docs/asymptotics.md §4):
//! 1. On fixed designs, Monte Carlo over label noise agrees with the exact conditional
//!    risk by z-score, for isotropic, spiked and power-law Σ, min-norm and ridge,
//!    constant and dynamic schedules.
//! 2. The exact stationary risk, averaged over designs (and over the random-effects
//!    signal in closed form), approaches the asymptotic limit as n grows: the gap shrinks
//!    on n = 100, 400, 1600 at fixed γ.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use collapse_core::{ReplicateData, RowSpaceMode, Streams};
use collapse_theory::Spectrum;
use common::{chains, column, data, scenario, text, z_score};

fn covariance(kind: &str) -> &'static str {
    match kind {
        "isotropic" => "[covariance]\nkind = \"isotropic\"",
        "spiked" => "[covariance]\nkind = \"spiked\"\nspikes = [4.0, 1.5]",
        _ => "[covariance]\nkind = \"power-law\"\nalpha = 1.0",
    }
}

#[test]
fn monte_carlo_agrees_with_exact_risk_on_fixed_designs() {
    let (n, p, iterations, reps) = (30, 60, 6, 800);
    let mut checked = 0;
    for (k, cov) in ["isotropic", "spiked", "power-law"].into_iter().enumerate() {
        for lambda in [0.0, 0.5] {
            for schedule in ["kind = \"constant\"\nw = 0.6", "kind = \"dynamic\""] {
                let s = scenario(&text(
                    n,
                    p,
                    iterations,
                    &format!(
                        "{}\n[estimator]\nkind = \"ridge\"\nlambda = {lambda}\n[schedule]\n{schedule}",
                        covariance(cov)
                    ),
                ));
                let d = data(&s, 0, Streams::new(17, k as u64, 0), Some(RowSpaceMode::Factorize));
                let values = chains(&s, 0, &d, reps, 23 + k as u64);
                for t in [0, 3, iterations] {
                    let z = z_score(&column(&values, t, 0), values[0][t][1]);
                    assert!(z.abs() < 4.0, "{cov}, λ = {lambda}, {schedule}, t = {t}: z = {z}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 3 * 2 * 2 * 3);
}

/// E_β[ E[R_∞ | X, β] ] for β uniform on the sphere of radius r (E ββᵀ = r²/p·I), at
/// stationarity under constant w (docs/spectral-recursion.md §3):
/// bias = (r²/p)[tr Σ − 2Σ m_i M_ii + Σ m_i² M_ii] with multipliers
/// m_i = s_i/(s_i + λ/w), s_i = d_i²/n; variance = Σ M_ii ν_i,
/// ν_i = g_i² σ² (w² + (1−w)²)/(1 − ((1−w) g_i d_i)²), g_i = d_i/(d_i² + nλ).
fn stationary_exact_over_signals(d: &ReplicateData, trace_sigma: f64, lambda: f64, w: f64) -> f64 {
    let rs = d.row_space().unwrap();
    let n = rs.n() as f64;
    let mut bias = trace_sigma;
    let mut variance = 0.0;
    for (i, &di) in rs.d.iter().enumerate() {
        let m_ii = rs.m_diag()[i];
        let s = di * di / n;
        let mult = s / (s + lambda / w);
        bias += -2.0 * mult * m_ii + mult * mult * m_ii;
        let g = di / (di * di + n * lambda);
        let rho = (1.0 - w) * g * di;
        variance += m_ii * g * g * (w * w + (1.0 - w) * (1.0 - w)) / (1.0 - rho * rho);
    }
    bias / d.p() as f64 + variance
}

#[test]
fn exact_risk_approaches_the_asymptotic_limit_as_n_grows() {
    let (gamma, w) = (1.5, 0.6);
    let sizes = [(100usize, 24u64), (400, 6), (1600, 2)];
    for cov in ["isotropic", "spiked", "power-law"] {
        let mut gaps = vec![Vec::new(); 2];
        for &(n, designs) in &sizes {
            let p = (gamma * n as f64) as usize;
            let s = scenario(&text(
                n,
                p,
                1,
                &format!(
                    "{}\n[estimator]\nkind = \"min-norm\"\n[schedule]\nkind = \"constant\"\nw = {w}",
                    covariance(cov)
                ),
            ));
            let taus = s.cells[0].plugins.covariance.eigenvalues();
            let trace: f64 = taus.iter().sum();
            let h = Spectrum::from_eigenvalues(&taus).unwrap();
            let mut sums = [0.0; 2];
            for k in 0..designs {
                let d = data(&s, 0, Streams::new(31, k, n as u64), Some(RowSpaceMode::Factorize));
                for (j, lambda) in [0.0, 0.5].into_iter().enumerate() {
                    sums[j] += stationary_exact_over_signals(&d, trace, lambda, w) / designs as f64;
                }
            }
            for (j, lambda) in [0.0, 0.5].into_iter().enumerate() {
                let theory = collapse_theory::ridge_mixing_limit(&h, &h, gamma, 1.0, 1.0, lambda, w).unwrap().total();
                gaps[j].push((sums[j] - theory).abs());
            }
        }
        for (j, lambda) in [0.0, 0.5].into_iter().enumerate() {
            let g = &gaps[j];
            eprintln!("{cov}, λ = {lambda}: |exact − theory| at n = 100, 400, 1600: {g:?}");
            assert!(g[1] < g[0] && g[2] < g[1], "{cov}, λ = {lambda}: gaps at n = 100, 400, 1600: {g:?}");
            assert!(g[2] < 0.01, "{cov}, λ = {lambda}: gap at n = 1600 is {}", g[2]);
        }
    }
}
