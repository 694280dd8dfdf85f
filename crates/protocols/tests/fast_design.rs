//! The sampled row space (Laguerre for Σ = I, Bartlett for Σ = aI + low rank; no X)
//! against the full path
//! (draw X, factorize): the same distribution of the risk. Means by a two-sample
//! z-score, and the whole final-iteration distribution by a two-sample
//! Kolmogorov–Smirnov test.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use collapse_core::{RowSpaceMode, Streams};
use common::{chains, data, scenario, text};

/// Final-iteration risk and exact risk of `reps` replicates (one design each) under `mode`.
fn final_risks(mode: RowSpaceMode, cov: &str, n: usize, p: usize, lambda: f64, reps: u64) -> (Vec<f64>, Vec<f64>) {
    let cov = match cov {
        "isotropic" => "[covariance]\nkind = \"isotropic\"",
        "spiked" => "[covariance]\nkind = \"spiked\"\nspikes = [6.0, 2.0]",
        _ => "[covariance]\nkind = \"equicorrelated\"\nrho = 0.4",
    };
    let iterations = 8;
    let s = scenario(&text(
        n,
        p,
        iterations,
        &format!("{cov}\n[estimator]\nkind = \"ridge\"\nlambda = {lambda}\n[schedule]\nkind = \"constant\"\nw = 0.6"),
    ));
    let seed = if mode == RowSpaceMode::Sample { 1 } else { 2 };
    let (mut risk, mut exact) = (Vec::new(), Vec::new());
    for r in 0..reps {
        let d = data(&s, 0, Streams::new(seed, 0, r), Some(mode));
        let values = chains(&s, 0, &d, 1, 100 + seed + 2 * r);
        risk.push(values[0][iterations][0]);
        exact.push(values[0][iterations][1]);
    }
    (risk, exact)
}

fn mean_var(x: &[f64]) -> (f64, f64) {
    let n = x.len() as f64;
    let m = x.iter().sum::<f64>() / n;
    (m, x.iter().map(|v| (v - m) * (v - m)).sum::<f64>() / (n - 1.0))
}

fn two_sample_z(a: &[f64], b: &[f64]) -> f64 {
    let ((ma, va), (mb, vb)) = (mean_var(a), mean_var(b));
    (ma - mb) / (va / a.len() as f64 + vb / b.len() as f64).sqrt()
}

/// Two-sample Kolmogorov–Smirnov statistic D = sup |F_a − F_b|.
fn ks(a: &[f64], b: &[f64]) -> f64 {
    let (mut a, mut b) = (a.to_vec(), b.to_vec());
    a.sort_by(f64::total_cmp);
    b.sort_by(f64::total_cmp);
    let (mut i, mut j, mut d) = (0usize, 0usize, 0.0f64);
    while i < a.len() && j < b.len() {
        if a[i] <= b[j] {
            i += 1;
        } else {
            j += 1;
        }
        d = d.max((i as f64 / a.len() as f64 - j as f64 / b.len() as f64).abs());
    }
    d
}

#[test]
fn sampled_row_space_has_the_full_paths_risk_distribution() {
    let reps = 1500;
    let cases = [
        ("isotropic", 40, 80, 0.0),
        ("isotropic", 40, 80, 0.3),
        ("isotropic", 60, 30, 0.0),
        ("spiked", 40, 80, 0.0),
        ("spiked", 40, 80, 0.3),
        ("equicorrelated", 40, 80, 0.3),
    ];
    for (cov, n, p, lambda) in cases {
        let (fast, fast_exact) = final_risks(RowSpaceMode::Sample, cov, n, p, lambda, reps);
        let (full, full_exact) = final_risks(RowSpaceMode::Factorize, cov, n, p, lambda, reps);
        let z = two_sample_z(&fast, &full);
        let z_exact = two_sample_z(&fast_exact, &full_exact);
        let d = ks(&fast, &full);
        // KS critical value at α = 0.001: 1.95·√((m + n)/(m·n)).
        let critical = 1.95 * (2.0 / reps as f64).sqrt();
        eprintln!(
            "n = {n}, p = {p}, λ = {lambda}: z = {z:.2}, z_exact = {z_exact:.2}, KS D = {d:.4} (critical {critical:.4})"
        );
        assert!(
            z.abs() < 4.0 && z_exact.abs() < 4.0,
            "{cov}, n = {n}, p = {p}, λ = {lambda}: z = {z}, z_exact = {z_exact}"
        );
        assert!(d < critical, "{cov}, n = {n}, p = {p}, λ = {lambda}: KS D = {d} ≥ {critical}");
    }
}
