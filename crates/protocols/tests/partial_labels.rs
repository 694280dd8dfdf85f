//! Partial labels (docs/partial-labels.md): Monte Carlo against the exact recursion with
//! the finite-n feedback factor q_n (§2), the exact path against its limit as n grows
//! (§3), and dropping the synthetic-only rows against keeping them (§4).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

mod common;

use collapse_core::Streams;
use common::{chains, column, data, scenario, text, z_score};

fn partial(pi: f64, rows: &str, w: &str) -> String {
    format!(
        "[estimator]\nkind = \"min-norm\"\n[schedule]\nkind = \"constant\"\nw = {w}\n[protocol]\nkind = \"partial-labels\"\npi = {pi}\nsynthetic_rows = {rows}"
    )
}

/// Keep and drop, π = 0.4 and 0.75: simulation agrees with the exact column, which at
/// t ≥ 1 uses q_n = ((p − 1) tr D² − (tr D)²)/(p(p − n − 1)).
#[test]
fn monte_carlo_matches_the_exact_recursion() {
    let (n, p, t_max) = (20, 50, 8);
    for pi in [0.4, 0.75] {
        let s = scenario(&text(n, p, t_max, &partial(pi, "[\"keep\", \"drop\"]", "[0.3, 0.8]")));
        let d = data(&s, 0, Streams::new(31, 0, 0), None);
        for cell in 0..s.cells.len() {
            assert!(s.cells[cell].plan.metrics[0].exact);
            let values = chains(&s, cell, &d, 3000, 41);
            for t in [0, 1, 2, t_max] {
                let z = z_score(&column(&values, t, 0), values[0][t][1]);
                assert!(z.abs() < 4.0, "π = {pi}, cell {cell}, t = {t}: z = {z}");
            }
        }
    }
}

/// The exact path approaches the limit path (γ = 2, π = 1/2) like 1/n.
#[test]
fn exact_path_approaches_the_limit_as_n_grows() {
    for rows in ["\"keep\"", "\"drop\""] {
        let mut gaps = Vec::new();
        for n in [20, 40, 80, 160, 320] {
            let s = scenario(&text(n, 2 * n, 8, &partial(0.5, rows, "0.6")));
            let c = &s.cells[0];
            let theory = c.plugins.protocol.theory(&c.view()).unwrap().paths(&c.weights).remove(0).unwrap();
            let exact = chains(&s, 0, &data(&s, 0, Streams::new(32, 0, 0), None), 1, 42);
            gaps.push((0..=8).map(|t| (exact[0][t][1] - theory[t].unwrap()).abs()).fold(0.0, f64::max));
        }
        for pair in gaps.windows(2) {
            assert!(pair[1] < 0.7 * pair[0], "{rows}: {gaps:?}");
        }
    }
}

/// Dropping the synthetic-only rows beats keeping them (π = 1/2, γ = 2, w = 0.6), paired:
/// both variants see the same designs and real labels.
#[test]
fn dropping_the_synthetic_only_rows_is_better() {
    let (n, p, t_max) = (40, 80, 12);
    let s = scenario(&text(n, p, t_max, &partial(0.5, "[\"keep\", \"drop\"]", "0.6")));
    assert_eq!(s.cells[0].group, s.cells[1].group, "one design group: common random numbers");
    let d = data(&s, 0, Streams::new(33, 0, 0), None);
    let keep = chains(&s, 0, &d, 300, 43);
    let drop = chains(&s, 1, &d, 300, 43);
    // t = 0 is the same fit in both.
    assert_eq!(keep[0][0][0].to_bits(), drop[0][0][0].to_bits());
    let diff: Vec<f64> = drop.iter().zip(&keep).map(|(a, b)| a[t_max][0] - b[t_max][0]).collect();
    let z = z_score(&diff, 0.0);
    assert!(z < -4.0, "drop − keep: paired z = {z}");
}
