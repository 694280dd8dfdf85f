//! `collapse theory`: asymptotic predictions for a scenario without simulating.
//!
//! Per cell: the limit risk at the cell's final weight, the optimal constant weight
//! w*(λ) and the risk there. With `--curve lambda`: w*(λ) over a log grid of λ for each
//! distinct (covariance, signal, sizes, noise); with `--curve w`: the limit risk over a
//! grid of w for each cell.

use std::fmt::Write as _;

use anyhow::Result;
use collapse_core::engine::{ColumnData, Table};
use collapse_core::spec::ResolvedScenario;
use collapse_theory::models::Inputs;
use collapse_theory::{RidgeMixingEvaluator, optimal_w, optimal_w_curve};

use crate::UserError;

/// Which curve to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Curve {
    /// w*(λ) over a log grid of λ.
    Lambda,
    /// Limit risk over a grid of w.
    W,
}

/// Options of `collapse theory`.
#[derive(Debug, Clone)]
pub struct TheoryOptions {
    /// Curve to compute, if any.
    pub curve: Option<Curve>,
    /// Grid points.
    pub points: usize,
    /// log10 range of λ for `--curve lambda`.
    pub lambda_range: (f64, f64),
}

fn err(e: collapse_theory::TheoryError) -> anyhow::Error {
    anyhow::anyhow!("theory: {e}")
}

fn label(s: &ResolvedScenario, c: usize, skip: &[&str]) -> String {
    let parts: Vec<String> = s
        .axes
        .iter()
        .zip(&s.cells[c].coordinates)
        .filter(|(a, _)| !skip.iter().any(|k| a.column() == *k || (k.ends_with('.') && a.column().starts_with(k))))
        .map(|(a, v)| format!("{}={}", a.column(), v))
        .collect();
    let _ = c;
    if parts.is_empty() { "all cells".to_string() } else { parts.join(", ") }
}

/// Compute the predictions; returns the printed report and the table to write.
pub fn theory(s: &ResolvedScenario, opts: &TheoryOptions) -> Result<(String, Table)> {
    let inputs: Vec<Option<Inputs>> = s.cells.iter().map(|c| Inputs::from_view(&c.view())).collect();
    if inputs.iter().all(Option::is_none) {
        return Err(UserError::new(
            "no cell of this scenario is covered by the theory (it needs a ridge-like estimator and a signal whose spread over Σ's eigenbasis is known)",
        )
        .into());
    }
    let mut out = String::new();
    let (mut col_cell, mut col_label, mut col_lambda, mut col_w, mut col_risk, mut col_wstar, mut col_rstar) =
        (vec![], vec![], vec![], vec![], vec![], vec![], vec![]);
    match opts.curve {
        None => {
            let width = (0..s.cells.len()).map(|c| label(s, c, &[]).chars().count()).max().unwrap_or(0).max(5);
            let _ = writeln!(
                out,
                "{:>5}  {:<width$} {:>10} {:>8} {:>12} {:>8} {:>12}",
                "cell", "parameters", "lambda", "w", "risk_limit", "w*", "risk(w*)"
            );
            for (c, inp) in inputs.iter().enumerate() {
                let Some(i) = inp else { continue };
                let w = *s.cells[c].weights.last().unwrap_or(&1.0);
                let mut ev = RidgeMixingEvaluator::new(&i.h, &i.g, i.gamma, i.r2, i.sigma2).map_err(err)?;
                let limit = if w > 0.0 { ev.limit(i.lambda, w).map_err(err)?.total() } else { f64::INFINITY };
                let (ws, rs) = optimal_w(&i.h, &i.g, i.gamma, i.r2, i.sigma2, i.lambda).map_err(err)?;
                let l = label(s, c, &[]);
                let pad = width.saturating_sub(l.chars().count());
                let _ = writeln!(
                    out,
                    "{c:>5}  {l}{:pad$} {:>10.4} {w:>8.4} {limit:>12.6} {ws:>8.4} {rs:>12.6}",
                    "", i.lambda
                );
                col_cell.push(c as i64);
                col_label.push(Some(l));
                col_lambda.push(Some(i.lambda));
                col_w.push(Some(w));
                col_risk.push(Some(limit));
                col_wstar.push(Some(ws));
                col_rstar.push(Some(rs));
            }
        }
        Some(Curve::Lambda) => {
            let (a, b) = opts.lambda_range;
            let n = opts.points.max(2);
            let lambdas: Vec<f64> = (0..n).map(|k| 10f64.powf(a + (b - a) * k as f64 / (n - 1) as f64)).collect();
            let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
            for (c, inp) in inputs.iter().enumerate() {
                let Some(i) = inp else { continue };
                let l = label(s, c, &["estimator.lambda", "schedule", "schedule."]);
                if !seen.insert(l.clone()) {
                    continue;
                }
                let curve = optimal_w_curve(&i.h, &i.g, i.gamma, i.r2, i.sigma2, &lambdas).map_err(err)?;
                let ws: Vec<f64> = curve.iter().map(|p| p.w).collect();
                let (wmin, wmax) =
                    ws.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), &w| (lo.min(w), hi.max(w)));
                let dips = ws.windows(2).filter(|p| p[1] < p[0] - 1e-9).count();
                let _ = writeln!(
                    out,
                    "{l}: w*(λ) for λ in [1e{a}, 1e{b}] ({n} points): min {wmin:.4}, max {wmax:.4}, within [1/2, 1]: {}",
                    wmin >= 0.5 - 1e-9 && wmax <= 1.0 + 1e-12
                );
                if dips == 0 {
                    let _ = writeln!(out, "  w* is non-decreasing in λ over the grid");
                } else {
                    let turn = ws
                        .iter()
                        .enumerate()
                        .min_by(|x, y| x.1.total_cmp(y.1))
                        .map(|(k, _)| lambdas[k])
                        .unwrap_or(f64::NAN);
                    let _ = writeln!(
                        out,
                        "  w* decreases on {dips} grid steps: it dips below 1/φ for small λ (lowest at λ ≈ {turn:.3e}) before rising towards 1"
                    );
                }
                let _ = writeln!(out, "  {:>12} {:>8} {:>12}", "lambda", "w*", "risk(w*)");
                let step = (n / 12).max(1);
                for (k, p) in curve.iter().enumerate() {
                    if k % step == 0 || k == n - 1 {
                        let _ = writeln!(out, "  {:>12.4e} {:>8.4} {:>12.6}", p.lambda, p.w, p.risk);
                    }
                    col_cell.push(c as i64);
                    col_label.push(Some(l.clone()));
                    col_lambda.push(Some(p.lambda));
                    col_w.push(Some(p.w));
                    col_risk.push(Some(p.risk));
                    col_wstar.push(Some(p.w));
                    col_rstar.push(Some(p.risk));
                }
            }
        }
        Some(Curve::W) => {
            let n = opts.points.max(2);
            let grid: Vec<f64> = (0..n).map(|k| 0.02 + 0.98 * k as f64 / (n - 1) as f64).collect();
            let mut seen: std::collections::HashSet<String> = std::collections::HashSet::new();
            for (c, inp) in inputs.iter().enumerate() {
                let Some(i) = inp else { continue };
                let l = label(s, c, &["schedule", "schedule."]);
                if !seen.insert(l.clone()) {
                    continue;
                }
                let mut ev = RidgeMixingEvaluator::new(&i.h, &i.g, i.gamma, i.r2, i.sigma2).map_err(err)?;
                let (ws, rs) = optimal_w(&i.h, &i.g, i.gamma, i.r2, i.sigma2, i.lambda).map_err(err)?;
                let _ = writeln!(out, "{l}: λ = {}: w* = {ws:.4}, risk(w*) = {rs:.6}", i.lambda);
                let _ = writeln!(out, "  {:>8} {:>12}", "w", "risk_limit");
                let step = (n / 12).max(1);
                for (k, &w) in grid.iter().enumerate() {
                    let r = ev.limit(i.lambda, w).map_err(err)?.total();
                    if k % step == 0 || k == n - 1 {
                        let _ = writeln!(out, "  {w:>8.4} {r:>12.6}");
                    }
                    col_cell.push(c as i64);
                    col_label.push(Some(l.clone()));
                    col_lambda.push(Some(i.lambda));
                    col_w.push(Some(w));
                    col_risk.push(Some(r));
                    col_wstar.push(Some(ws));
                    col_rstar.push(Some(rs));
                }
            }
        }
    }
    let table = Table {
        columns: vec![
            ("cell".into(), ColumnData::Int(col_cell)),
            ("label".into(), ColumnData::Str(col_label)),
            ("lambda".into(), ColumnData::Float(col_lambda)),
            ("w".into(), ColumnData::Float(col_w)),
            ("risk_limit".into(), ColumnData::Float(col_risk)),
            ("w_star".into(), ColumnData::Float(col_wstar)),
            ("risk_star".into(), ColumnData::Float(col_rstar)),
        ],
    };
    Ok((out, table))
}
