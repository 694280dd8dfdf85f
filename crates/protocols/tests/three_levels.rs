//! Simulation, exact and asymptotic risk side by side (THEORY.md §A, §E):
//! 1. On fixed designs, Monte Carlo over label noise agrees with the exact conditional
//!    risk by z-score, for isotropic, spiked and power-law Σ, min-norm and ridge,
//!    constant and dynamic schedules.
//! 2. The exact stationary risk, averaged over designs (and over the random-effects
//!    signal in closed form), approaches the asymptotic limit as n grows: the gap shrinks
//!    on n = 100, 400, 1600 at fixed γ.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use collapse_core::{BuildContext, CellView, Covariance, Estimator, Params, ReplicateData, RowSpace, Signal, Streams};
use collapse_covariance::{IsotropicParams, PowerLawCovParams, RandomSignalParams, SpikedParams};
use collapse_estimators::RidgeParams;
use collapse_schedules::{ConstantParams, DynamicParams};
use collapse_settings::FreshLabelsParams;
use collapse_theory::Spectrum;

fn covariance(kind: &str, p: usize) -> Arc<dyn Covariance> {
    let ctx = BuildContext { n: 1, p, noise_sd: 1.0 };
    Arc::from(match kind {
        "isotropic" => IsotropicParams {}.build(&ctx).unwrap(),
        "spiked" => SpikedParams { spikes: vec![4.0, 1.5] }.build(&ctx).unwrap(),
        "power-law" => PowerLawCovParams { alpha: 1.0 }.build(&ctx).unwrap(),
        other => panic!("{other}"),
    })
}

fn ctx(n: usize, p: usize) -> BuildContext {
    BuildContext { n, p, noise_sd: 1.0 }
}

fn z_score(xs: &[f64], expected: f64) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean - expected) / (var / n).sqrt()
}

#[test]
fn monte_carlo_agrees_with_exact_risk_on_fixed_designs() {
    let (n, p, iterations, chains) = (30, 60, 6, 800);
    let setting = FreshLabelsParams::example().build(&ctx(n, p)).unwrap();
    let signal: Arc<dyn Signal> = Arc::from(RandomSignalParams { radius: 1.0 }.build(&ctx(n, p)).unwrap());
    let mut checked = 0;
    for (k, cov_kind) in ["isotropic", "spiked", "power-law"].into_iter().enumerate() {
        let cov = covariance(cov_kind, p);
        let data = ReplicateData::new(
            n,
            p,
            Streams::new(17, k as u64, 0),
            cov.clone(),
            signal.clone(),
            Arc::new(AtomicUsize::new(0)),
        );
        for lambda in [0.0, 0.5] {
            let est: Box<dyn Estimator> = RidgeParams { lambda }.build(&ctx(n, p)).unwrap();
            let view = CellView {
                n,
                p,
                noise_sd: 1.0,
                iterations,
                estimator: est.as_ref(),
                covariance: cov.as_ref(),
                signal: signal.as_ref(),
            };
            let schedules = [
                ("constant", ConstantParams { w: 0.6 }.build(&ctx(n, p)).unwrap()),
                ("dynamic", DynamicParams {}.build(&ctx(n, p)).unwrap()),
            ];
            for (name, schedule) in &schedules {
                let weights = schedule.weights(&view).unwrap();
                let mut risks = vec![Vec::new(); iterations + 1];
                let mut exact = Vec::new();
                for c in 0..chains {
                    let mut chain = setting.start(view, &data, Streams::new(23, 1000 + k as u64, c)).unwrap();
                    for (t, &w) in weights.iter().enumerate() {
                        let o = chain.step(t, w).unwrap();
                        risks[t].push(o.risk);
                        if c == 0 {
                            exact.push(o.risk_exact.unwrap());
                        }
                    }
                }
                for t in [0, 3, iterations] {
                    let z = z_score(&risks[t], exact[t]);
                    assert!(z.abs() < 4.0, "{cov_kind}, λ = {lambda}, {name}, t = {t}: z = {z}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 3 * 2 * 2 * 3);
}

/// E_β[ E[R_∞ | X, β] ] for β uniform on the sphere of radius r (E ββᵀ = r²/p·I), at
/// stationarity under constant w (THEORY.md §E closed forms):
/// bias = (r²/p)[tr Σ − 2Σ m_i M_ii + Σ m_i² M_ii] with multipliers
/// m_i = s_i/(s_i + λ/w), s_i = d_i²/n; variance = Σ M_ii ν_i,
/// ν_i = g_i² σ² (w² + (1−w)²)/(1 − ((1−w) g_i d_i)²), g_i = d_i/(d_i² + nλ).
fn stationary_exact_over_signals(
    rs: &RowSpace,
    trace_sigma: f64,
    p: usize,
    lambda: f64,
    w: f64,
    r2: f64,
    sigma2: f64,
) -> f64 {
    let n = rs.n() as f64;
    let mut bias = trace_sigma;
    let mut variance = 0.0;
    for (i, &d) in rs.d.iter().enumerate() {
        let m_ii = rs.m_diag()[i];
        let s = d * d / n;
        let mult = s / (s + lambda / w);
        bias += -2.0 * mult * m_ii + mult * mult * m_ii;
        let g = d / (d * d + n * lambda);
        let rho = (1.0 - w) * g * d;
        variance += m_ii * g * g * sigma2 * (w * w + (1.0 - w) * (1.0 - w)) / (1.0 - rho * rho);
    }
    r2 / p as f64 * bias + variance
}

#[test]
fn exact_risk_approaches_the_asymptotic_limit_as_n_grows() {
    let gamma = 1.5;
    let (w, r2, sigma2) = (0.6, 1.0, 1.0);
    let sizes = [(100usize, 24u64), (400, 6), (1600, 2)];
    let signal: Arc<dyn Signal> = Arc::from(RandomSignalParams { radius: 1.0 }.build(&ctx(1, 1)).unwrap());
    for cov_kind in ["isotropic", "spiked", "power-law"] {
        let mut gaps = vec![Vec::new(); 2];
        for &(n, designs) in &sizes {
            let p = (gamma * n as f64) as usize;
            let cov = covariance(cov_kind, p);
            let taus = cov.eigenvalues();
            let trace: f64 = taus.iter().sum();
            let h = Spectrum::from_eigenvalues(&taus).unwrap();
            let mut sums = [0.0; 2];
            for k in 0..designs {
                let data = ReplicateData::new(
                    n,
                    p,
                    Streams::new(31, k, n as u64),
                    cov.clone(),
                    signal.clone(),
                    Arc::new(AtomicUsize::new(0)),
                );
                let rs = data.row_space().unwrap();
                for (j, lambda) in [0.0, 0.5].into_iter().enumerate() {
                    sums[j] += stationary_exact_over_signals(rs, trace, p, lambda, w, r2, sigma2) / designs as f64;
                }
            }
            for (j, lambda) in [0.0, 0.5].into_iter().enumerate() {
                let theory = collapse_theory::ridge_mixing_limit(&h, &h, gamma, r2, sigma2, lambda, w).unwrap().total();
                gaps[j].push((sums[j] - theory).abs());
            }
        }
        for (j, lambda) in [0.0, 0.5].into_iter().enumerate() {
            let g = &gaps[j];
            eprintln!("{cov_kind}, λ = {lambda}: |exact − theory| at n = 100, 400, 1600: {g:?}");
            assert!(g[1] < g[0] && g[2] < g[1], "{cov_kind}, λ = {lambda}: gaps at n = 100, 400, 1600: {g:?}");
            assert!(g[2] < 0.01, "{cov_kind}, λ = {lambda}: gap at n = 1600 is {}", g[2]);
        }
    }
}
