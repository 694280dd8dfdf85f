//! Fresh labels on one fixed design: Monte Carlo over label noise against the exact
//! conditional risk of the shared recursion (docs/spectral-recursion.md §3, §4), and the
//! exact recursion against independent closed forms (docs/fresh-labels.md §3 for
//! min-norm, §5 for ridge at stationarity).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use collapse_core::Streams;
use collapse_core::faer::linalg::solvers::Solve;
use collapse_core::faer::{Mat, Side};
use common::{chains, column, data, scenario, text, z_score};

fn c_t(w: f64, t: usize) -> f64 {
    let c = (w * w + (1.0 - w) * (1.0 - w)) / (w * (2.0 - w));
    c + (1.0 - w).powi(2 * t as i32) * (1.0 - c)
}

/// Min-norm: E[R_t | X] = B_X + c_t(w) V_X with B_X = ‖(I−P)β‖², V_X = σ² Σ 1/d_i².
#[test]
fn min_norm_exact_matches_closed_form_and_monte_carlo() {
    let s = scenario(&text(
        30,
        60,
        12,
        "[estimator]\nkind = \"min-norm\"\n[schedule]\nkind = \"constant\"\nw = 0.618\n[protocol]\nkind = \"fresh-labels\"\npath = \"spectral\"\nfast_design = false",
    ));
    let d = data(&s, 0, Streams::new(99, 0, 0), None);
    let values = chains(&s, 0, &d, 3000, 5);
    let rs = d.row_space().unwrap();
    let b_x = rs.perp_norm2();
    let v_x: f64 = rs.d.iter().map(|d| 1.0 / (d * d)).sum();
    for t in 0..=12 {
        let exact = values[0][t][1];
        let closed = b_x + c_t(0.618, t) * v_x;
        assert!((exact - closed).abs() < 1e-10 * closed, "t = {t}: {exact} vs {closed}");
    }
    for t in [0, 1, 3, 12] {
        let z = z_score(&column(&values, t, 0), values[0][t][1]);
        assert!(z.abs() < 4.0, "t = {t}: z = {z}");
    }
}

/// The dynamic schedule gives a_t = w_t for min-norm: E[R_t | X] = B_X + w_t V_X.
#[test]
fn dynamic_schedule_variance_factor_equals_its_weight() {
    let s = scenario(&text(25, 50, 15, "[estimator]\nkind = \"min-norm\"\n[schedule]\nkind = \"dynamic\""));
    let d = data(&s, 0, Streams::new(99, 1, 0), Some(collapse_core::RowSpaceMode::Factorize));
    let values = chains(&s, 0, &d, 2000, 6);
    let rs = d.row_space().unwrap();
    let v_x: f64 = rs.d.iter().map(|d| 1.0 / (d * d)).sum();
    for (t, w) in s.cells[0].weights.iter().enumerate() {
        let e = values[0][t][1];
        assert!((e - (rs.perp_norm2() + w * v_x)).abs() < 1e-10 * e, "t = {t}");
    }
    let z = z_score(&column(&values, 15, 0), values[0][15][1]);
    assert!(z.abs() < 4.0, "z = {z}");
}

/// Ridge on a spiked (non-isotropic) Σ: the recursion at large t equals the exact
/// stationary risk of docs/fresh-labels.md §5, a²βᵀR_aΣR_aβ + c(w)σ²(1/n)tr(ΣSR_aR_b),
/// a = λ/w, b = λ/(2−w), computed here densely with Cholesky solves; Monte Carlo agrees.
#[test]
fn ridge_exact_matches_stationary_formula_and_monte_carlo() {
    let (n, p, lambda, w, t_max) = (40, 30, 0.3, 0.7, 200);
    let s = scenario(&text(
        n,
        p,
        t_max,
        &format!(
            "[covariance]\nkind = \"spiked\"\nspikes = [4.0, 1.5]\n[estimator]\nkind = \"ridge\"\nlambda = {lambda}\n[schedule]\nkind = \"constant\"\nw = {w}"
        ),
    ));
    let d = data(&s, 0, Streams::new(99, 2, 0), None);
    let values = chains(&s, 0, &d, 1500, 7);
    let x = d.design();
    let beta = d.beta().unwrap();
    let sigma_mat = d.covariance().apply(Mat::<f64>::identity(p, p).as_ref());
    let s_mat = x.transpose() * x * (1.0 / n as f64);
    let (a, b) = (lambda / w, lambda / (2.0 - w));
    let shifted = |x: f64| Mat::from_fn(p, p, |i, j| s_mat[(i, j)] + if i == j { x } else { 0.0 });
    let ra = shifted(a).llt(Side::Lower).unwrap();
    let rb = shifted(b).llt(Side::Lower).unwrap();
    let ra_beta = ra.solve(beta);
    let bias = a * a * (ra_beta.transpose() * (&sigma_mat * &ra_beta));
    let m = ra.solve(&s_mat.transpose()); // R_a S (S symmetric)
    let m = rb.solve(&(&sigma_mat * &m)); // R_b Σ S R_a
    let trace: f64 = (0..p).map(|i| m[(i, i)]).sum();
    let cw = (w * w + (1.0 - w) * (1.0 - w)) / (w * (2.0 - w));
    let stationary = bias + cw * trace / n as f64;
    let exact = values[0][t_max][1];
    assert!((exact - stationary).abs() < 1e-8 * stationary, "{exact} vs {stationary}");
    for t in [0, 2, t_max] {
        let z = z_score(&column(&values, t, 0), values[0][t][1]);
        assert!(z.abs() < 4.0, "t = {t}: z = {z}");
    }
}

/// The spectral path with full (unprojected) noise and the refit path consume the same
/// random numbers, so they give the same risks up to rounding, for fresh and fixed labels.
#[test]
fn spectral_and_refit_paths_agree_draw_for_draw() {
    for protocol in ["fresh-labels", "fixed-labels"] {
        for lambda in [0.0, 0.2] {
            let sections = |path: &str, projected: bool| {
                format!(
                    "[covariance]\nkind = \"spiked\"\nspikes = [3.0]\n[estimator]\nkind = \"ridge\"\nlambda = {lambda}\n[schedule]\nkind = \"list\"\nw = [0.6, 0.6, 0.3, 0.9, 0.0]\n[protocol]\nkind = \"{protocol}\"\npath = \"{path}\"\nprojected_noise = {projected}"
                )
            };
            let a = scenario(&text(20, 35, 5, &sections("spectral", false)));
            let b = scenario(&text(20, 35, 5, &sections("refit", true)));
            let d = data(&a, 0, Streams::new(99, 3, 0), None);
            let va = chains(&a, 0, &d, 3, 8);
            let vb = chains(&b, 0, &d, 3, 8);
            for (ra, rb) in va.iter().flatten().zip(vb.iter().flatten()) {
                let (x, y) = (ra[0], rb[0]);
                assert!((x - y).abs() < 1e-9 * x.max(1.0), "{protocol}, λ = {lambda}: {x} vs {y}");
                assert!((ra[1] - rb[1]).abs() < 1e-12 * ra[1].max(1.0), "{protocol}: exact risks differ");
            }
        }
    }
}

/// Accumulate on a fixed design: Monte Carlo agrees with the exact recursion, and with
/// min-norm at w = 0 the variance factor Σ_{s ≤ t} 1/(s+1)² stays below π²/6
/// (docs/spectral-recursion.md §5).
#[test]
fn accumulate_matches_its_exact_risk_and_stays_bounded() {
    let t_max = 40;
    let s = scenario(&text(
        30,
        60,
        t_max,
        "[estimator]\nkind = \"min-norm\"\n[schedule]\nkind = \"constant\"\nw = [0.0, 0.618]\n[policy]\nkind = \"accumulate\"",
    ));
    let d = data(&s, 0, Streams::new(99, 4, 0), None);
    for cell in 0..2 {
        let values = chains(&s, cell, &d, 2000, 9);
        for t in [1, 5, t_max] {
            let z = z_score(&column(&values, t, 0), values[0][t][1]);
            assert!(z.abs() < 4.0, "cell {cell}, t = {t}: z = {z}");
        }
    }
    let values = chains(&s, 0, &d, 1, 9);
    let rs = d.row_space().unwrap();
    let v_x: f64 = rs.d.iter().map(|d| 1.0 / (d * d)).sum();
    let factor = (values[0][t_max][1] - rs.perp_norm2()) / v_x;
    let expected: f64 = (1..=t_max + 1).map(|s| 1.0 / (s * s) as f64).sum();
    assert!((factor - expected).abs() < 1e-10, "{factor} vs {expected}");
    assert!(factor < std::f64::consts::PI.powi(2) / 6.0);
}
