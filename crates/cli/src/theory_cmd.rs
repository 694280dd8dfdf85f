//! `collapse theory`: predictions for a scenario without simulating, from the theory of
//! each cell's own protocol.
//!
//! Per cell: the stationary main metric at the cell's final weight, the optimal constant
//! weight and the value there, or the reason the cell has no theory. With `--curve
//! lambda`: w*(λ) over a log grid of λ for each distinct cell apart from λ and the
//! schedule; with `--curve w`: the stationary value over a grid of w.

use std::fmt::Write as _;

use anyhow::Result;
use collapse_core::results::{ColumnData, Table};
use collapse_core::spec::ResolvedScenario;
use collapse_core::{CellTheory, NoTheory};

use crate::UserError;

/// Which curve to compute.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum Curve {
    /// w*(λ) over a log grid of λ.
    Lambda,
    /// Stationary value over a grid of w.
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

fn label(s: &ResolvedScenario, c: usize, skip: &[&str]) -> String {
    let parts: Vec<String> = s
        .axes
        .iter()
        .zip(&s.cells[c].coordinates)
        .filter(|(a, v)| {
            !v.is_null() && !skip.iter().any(|k| a.column() == *k || (k.ends_with('.') && a.column().starts_with(k)))
        })
        .map(|(a, v)| format!("{}={}", a.column(), v))
        .collect();
    if parts.is_empty() { "all cells".to_string() } else { parts.join(", ") }
}

#[derive(Default)]
struct Columns {
    cell: Vec<i64>,
    label: Vec<Option<String>>,
    lambda: Vec<Option<f64>>,
    w: Vec<Option<f64>>,
    value: Vec<Option<f64>>,
    w_star: Vec<Option<f64>>,
    value_star: Vec<Option<f64>>,
    reason: Vec<Option<String>>,
}

impl Columns {
    #[allow(clippy::too_many_arguments)]
    fn push(
        &mut self,
        c: usize,
        l: &str,
        lambda: Option<f64>,
        w: Option<f64>,
        v: Option<f64>,
        ws: Option<f64>,
        vs: Option<f64>,
        reason: Option<String>,
    ) {
        self.cell.push(c as i64);
        self.label.push(Some(l.to_string()));
        self.lambda.push(lambda);
        self.w.push(w);
        self.value.push(v);
        self.w_star.push(ws);
        self.value_star.push(vs);
        self.reason.push(reason);
    }

    fn table(self) -> Table {
        Table {
            columns: vec![
                ("cell".into(), ColumnData::Int(self.cell)),
                ("label".into(), ColumnData::Str(self.label)),
                ("lambda".into(), ColumnData::Float(self.lambda)),
                ("w".into(), ColumnData::Float(self.w)),
                ("limit".into(), ColumnData::Float(self.value)),
                ("w_star".into(), ColumnData::Float(self.w_star)),
                ("limit_star".into(), ColumnData::Float(self.value_star)),
                ("no_theory".into(), ColumnData::Str(self.reason)),
            ],
        }
    }
}

/// Compute the predictions; returns the printed report and the table to write.
pub fn theory(s: &ResolvedScenario, opts: &TheoryOptions) -> Result<(String, Table)> {
    let theories: Vec<Result<Box<dyn CellTheory>, NoTheory>> =
        s.cells.iter().map(|c| c.plugins.protocol.theory(&c.view())).collect();
    if theories.iter().all(Result::is_err) {
        let reasons: std::collections::BTreeSet<String> =
            theories.iter().filter_map(|t| t.as_ref().err().map(|r| r.0.clone())).collect();
        return Err(UserError::new(format!(
            "no cell of this scenario is covered by the theory: {}",
            reasons.into_iter().collect::<Vec<_>>().join("; ")
        ))
        .into());
    }
    let mut out = String::new();
    let mut cols = Columns::default();
    let err = |e: NoTheory| e.0;
    match opts.curve {
        None => {
            let width = (0..s.cells.len()).map(|c| label(s, c, &[]).chars().count()).max().unwrap_or(0).max(10);
            let _ = writeln!(
                out,
                "{:>5}  {:<width$} {:>10} {:>8} {:>12} {:>8} {:>12}",
                "cell", "parameters", "lambda", "w", "limit", "w*", "limit(w*)"
            );
            for (c, theory) in theories.iter().enumerate() {
                let cell = &s.cells[c];
                let l = label(s, c, &[]);
                let lambda = cell.plugins.estimator.ridge_penalty();
                let w = cell.weights.last().copied().unwrap_or(1.0);
                let theory = match theory {
                    Ok(t) => t,
                    Err(reason) => {
                        let _ = writeln!(out, "{c:>5}  {l:<width$} no theory: {reason}");
                        cols.push(c, &l, lambda, Some(w), None, None, None, Some(reason.0.clone()));
                        continue;
                    }
                };
                let limit = theory.limit(w).map_err(err);
                let best = theory.optimal_weight().map_err(err);
                let show = |x: &Result<f64, String>| {
                    x.as_ref().map(|v| format!("{v:>12.6}")).unwrap_or_else(|_| format!("{:>12}", "-"))
                };
                let (ws, vs) = match &best {
                    Ok((a, b)) => (format!("{a:>8.4}"), format!("{b:>12.6}")),
                    Err(_) => (format!("{:>8}", "-"), format!("{:>12}", "-")),
                };
                let lam = lambda.map(|x| format!("{x:>10.4}")).unwrap_or_else(|| format!("{:>10}", "-"));
                let _ = writeln!(out, "{c:>5}  {l:<width$} {lam} {w:>8.4} {} {ws} {vs}", show(&limit));
                let reason = limit.as_ref().err().or(best.as_ref().err()).cloned();
                if let Some(r) = &reason {
                    let _ = writeln!(out, "       note: {r}");
                }
                cols.push(
                    c,
                    &l,
                    lambda,
                    Some(w),
                    limit.ok(),
                    best.as_ref().ok().map(|b| b.0),
                    best.as_ref().ok().map(|b| b.1),
                    reason,
                );
            }
        }
        Some(Curve::Lambda) => {
            let (a, b) = opts.lambda_range;
            let n = opts.points.max(2);
            let lambdas: Vec<f64> = (0..n).map(|k| 10f64.powf(a + (b - a) * k as f64 / (n - 1) as f64)).collect();
            let mut seen = std::collections::HashSet::new();
            for (c, theory) in theories.iter().enumerate() {
                let Ok(theory) = theory else { continue };
                let l = label(s, c, &["estimator.lambda", "schedule", "schedule."]);
                if !seen.insert(l.clone()) {
                    continue;
                }
                let mut ws = Vec::with_capacity(n);
                let mut curve = Vec::with_capacity(n);
                for &lambda in &lambdas {
                    let point = theory.at_penalty(lambda).and_then(|t| t.optimal_weight());
                    match point {
                        Ok((w, v)) => {
                            ws.push(w);
                            curve.push((lambda, w, v));
                        }
                        Err(reason) => {
                            let _ = writeln!(out, "{l}: no w*(λ) curve: {reason}");
                            break;
                        }
                    }
                }
                if curve.is_empty() {
                    continue;
                }
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
                    let turn = curve.iter().min_by(|x, y| x.1.total_cmp(&y.1)).map(|p| p.0).unwrap_or(f64::NAN);
                    let _ = writeln!(
                        out,
                        "  w* decreases on {dips} grid steps: it dips below 1/φ for small λ (lowest at λ ≈ {turn:.3e}) before rising towards 1 (docs/asymptotics.md §5)"
                    );
                }
                let _ = writeln!(out, "  {:>12} {:>8} {:>12}", "lambda", "w*", "limit(w*)");
                let step = (n / 12).max(1);
                for (k, &(lambda, w, v)) in curve.iter().enumerate() {
                    if k % step == 0 || k == curve.len() - 1 {
                        let _ = writeln!(out, "  {lambda:>12.4e} {w:>8.4} {v:>12.6}");
                    }
                    cols.push(c, &l, Some(lambda), Some(w), Some(v), Some(w), Some(v), None);
                }
            }
        }
        Some(Curve::W) => {
            let n = opts.points.max(2);
            let grid: Vec<f64> = (0..n).map(|k| 0.02 + 0.98 * k as f64 / (n - 1) as f64).collect();
            let mut seen = std::collections::HashSet::new();
            for (c, theory) in theories.iter().enumerate() {
                let Ok(theory) = theory else { continue };
                let l = label(s, c, &["schedule", "schedule."]);
                if !seen.insert(l.clone()) {
                    continue;
                }
                let lambda = s.cells[c].plugins.estimator.ridge_penalty();
                let best = theory.optimal_weight().ok();
                match best {
                    Some((ws, vs)) => {
                        let _ = writeln!(out, "{l}: w* = {ws:.4}, limit(w*) = {vs:.6}");
                    }
                    None => {
                        let _ = writeln!(out, "{l}:");
                    }
                }
                let _ = writeln!(out, "  {:>8} {:>12}", "w", "limit");
                let step = (n / 12).max(1);
                for (k, &w) in grid.iter().enumerate() {
                    let v = theory.limit(w).map_err(err);
                    if k % step == 0 || k == n - 1 {
                        let shown =
                            v.as_ref().map(|x| format!("{x:>12.6}")).unwrap_or_else(|r| format!("  no theory: {r}"));
                        let _ = writeln!(out, "  {w:>8.4} {shown}");
                    }
                    cols.push(
                        c,
                        &l,
                        lambda,
                        Some(w),
                        v.as_ref().ok().copied(),
                        best.map(|b| b.0),
                        best.map(|b| b.1),
                        v.err(),
                    );
                }
            }
        }
    }
    Ok((out, cols.table()))
}
