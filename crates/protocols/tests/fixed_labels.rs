//! Fixed real labels (docs/fixed-labels.md): Monte Carlo against the exact conditional
//! risk of the recursion with a persistent real-label source, for min-norm and ridge on
//! isotropic and non-isotropic Σ; the exact min-norm closed form B_X + a_t V_X; and the
//! exact risk averaged over designs approaching the asymptotic limit as n grows.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use collapse_core::Streams;
use collapse_theory::{Spectrum, fixed_labels_factor, fixed_labels_ridge_limit};
use common::{chains, column, data, scenario, text, z_score};

fn sections(cov: &str, lambda: f64, w: &str) -> String {
    let cov = match cov {
        "isotropic" => "[covariance]\nkind = \"isotropic\"".to_string(),
        "spiked" => "[covariance]\nkind = \"spiked\"\nspikes = [4.0, 1.5]".to_string(),
        _ => "[covariance]\nkind = \"power-law\"\nalpha = 1.0".to_string(),
    };
    format!(
        "{cov}\n[estimator]\nkind = \"ridge\"\nlambda = {lambda}\n[schedule]\nkind = \"constant\"\nw = {w}\n[protocol]\nkind = \"fixed-labels\""
    )
}

#[test]
fn monte_carlo_agrees_with_exact_risk() {
    let (n, p, iterations) = (30, 60, 10);
    let mut checked = 0;
    for (k, cov) in ["isotropic", "spiked", "power-law"].into_iter().enumerate() {
        for lambda in [0.0, 0.5] {
            let s = scenario(&text(n, p, iterations, &sections(cov, lambda, "[0.0, 0.5, 0.9]")));
            let d = data(&s, 0, Streams::new(41, k as u64, (lambda * 10.0) as u64), None);
            for cell in 0..3 {
                let values = chains(&s, cell, &d, 1500, 11 + cell as u64);
                for t in [0, 1, 4, iterations] {
                    let z = z_score(&column(&values, t, 0), values[0][t][1]);
                    assert!(z.abs() < 4.0, "{cov}, λ = {lambda}, cell {cell}, t = {t}: z = {z}");
                    checked += 1;
                }
            }
        }
    }
    assert_eq!(checked, 3 * 2 * 3 * 4);
}

/// Min-norm: E[R_t | X] = B_X + a_t V_X, a_t = 1 + (1−w)²(1 − (1−w)^{2t})/(w(2−w)); at
/// w = 0, a_t = 1 + t (linear collapse).
#[test]
fn min_norm_exact_risk_is_the_closed_form() {
    let s = scenario(&text(25, 50, 20, &sections("spiked", 0.0, "[0.0, 0.3, 0.618, 1.0]")));
    let d = data(&s, 0, Streams::new(42, 0, 0), None);
    let rs = d.row_space().unwrap();
    let m = rs.m_diag();
    let v_x: f64 = rs.d.iter().zip(m).map(|(d, m)| m / (d * d)).sum();
    let b_x = rs.risk_of_coords(&rs.theta, collapse_core::faer::Par::Seq);
    for (cell, w) in [0.0, 0.3, 0.618, 1.0].into_iter().enumerate() {
        let values = chains(&s, cell, &d, 1, 12);
        for t in 0..=20 {
            let expected = b_x + fixed_labels_factor(w, t as u32) * v_x;
            let e = values[0][t][1];
            assert!((e - expected).abs() < 1e-10 * expected, "w = {w}, t = {t}: {e} vs {expected}");
        }
    }
}

/// E_β E[R_∞ | X, β] for β uniform on the sphere of radius r (E ββᵀ = r²/p I) under
/// fixed labels at constant w: the stationary mean is ridge at λ/w with multipliers
/// m_i = s_i/(s_i + λ/w); the variance per direction is the fixed-point of the recursion
/// with the persistent source (docs/fixed-labels.md §2): with A = (1−w)a,
/// c_∞ = g w σ/(1 − A), ν_∞ = (g²(w²σ² + (1−w)²σ²) + 2 A g w σ c_∞)/(1 − A²).
fn stationary_exact_over_signals(d: &collapse_core::ReplicateData, trace: f64, lambda: f64, w: f64) -> f64 {
    let rs = d.row_space().unwrap();
    let (n, p) = (rs.n() as f64, d.p() as f64);
    let mut bias = trace;
    let mut variance = 0.0;
    for (i, &di) in rs.d.iter().enumerate() {
        let m_ii = rs.m_diag()[i];
        let s = di * di / n;
        let mult = s / (s + lambda / w);
        bias += -2.0 * mult * m_ii + mult * mult * m_ii;
        let g = di / (di * di + n * lambda);
        let a = (1.0 - w) * g * di;
        let c = g * w / (1.0 - a);
        let nu = (g * g * (w * w + (1.0 - w) * (1.0 - w)) + 2.0 * a * g * w * c) / (1.0 - a * a);
        variance += m_ii * nu;
    }
    bias / p + variance
}

#[test]
fn exact_risk_approaches_the_asymptotic_limit_as_n_grows() {
    let (gamma, w) = (1.5, 0.6);
    let sizes = [(100usize, 24u64), (400, 6), (1600, 2)];
    for cov in ["isotropic", "spiked"] {
        for lambda in [0.0, 0.5] {
            let (mut gaps, mut ses) = (Vec::new(), Vec::new());
            for &(n, designs) in &sizes {
                let p = (gamma * n as f64) as usize;
                let s = scenario(&text(n, p, 1, &sections(cov, lambda, &w.to_string())));
                let taus = s.cells[0].plugins.covariance.eigenvalues();
                let trace: f64 = taus.iter().sum();
                let h = Spectrum::from_eigenvalues(&taus).unwrap();
                let values: Vec<f64> = (0..designs)
                    .map(|k| {
                        let d =
                            data(&s, 0, Streams::new(43, k, n as u64), Some(collapse_core::RowSpaceMode::Factorize));
                        stationary_exact_over_signals(&d, trace, lambda, w)
                    })
                    .collect();
                let mean = values.iter().sum::<f64>() / designs as f64;
                let var = values.iter().map(|v| (v - mean) * (v - mean)).sum::<f64>() / (designs as f64 - 1.0).max(1.0);
                let theory = fixed_labels_ridge_limit(&h, &h, gamma, 1.0, 1.0, lambda, w).unwrap().total();
                gaps.push((mean - theory).abs());
                ses.push((var / designs as f64).sqrt());
            }
            eprintln!(
                "fixed labels, {cov}, λ = {lambda}: |exact − theory| at n = 100, 400, 1600: {gaps:?} (design se {ses:?})"
            );
            // The finite-n gap shrinks like 1/n until it meets the design-to-design noise
            // of the average: at the largest n it is below the smallest n's gap or within
            // four standard errors of zero.
            assert!(gaps[2] <= gaps[0].max(4.0 * ses[2]), "{cov}, λ = {lambda}: {gaps:?}, se {ses:?}");
            assert!(gaps[2] < 0.01, "{cov}, λ = {lambda}: gap at n = 1600 is {}", gaps[2]);
        }
    }
}
