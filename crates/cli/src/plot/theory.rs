//! Theory curves on a dense grid: the run's resolved scenario with the x parameter
//! replaced by many values, resolved again (no simulation), and each cell's protocol
//! theory evaluated. A theory is a function of the parameters, so a line through a
//! dense grid shows its shape between the simulated values (e.g. the minimum of c(w) at
//! 1/φ when the grid of w is coarse).

use std::collections::BTreeMap;

use anyhow::{Result, bail};
use collapse_core::results;
use collapse_core::spec::{self, ParamValue};

use super::data::Level;
use super::spec::FigureSpec;

/// Points of a dense theory grid.
pub const DENSE_POINTS: usize = 61;

/// A run's scenario, ready to be resolved again with a dense x.
#[derive(Debug, Clone)]
pub struct DenseTheory {
    table: toml::Table,
}

/// (facet key, series key) → theory line.
pub type Curves = BTreeMap<(Vec<Level>, Vec<Level>), Vec<(f64, f64)>>;

fn level(v: Option<&ParamValue>) -> Level {
    match v {
        None | Some(ParamValue::Null) => Level::Null,
        Some(ParamValue::Int(i)) => Level::Num(*i as f64),
        Some(ParamValue::Float(x)) => Level::Num(*x),
        Some(other) => Level::Text(other.render()),
    }
}

impl DenseTheory {
    /// From the text of a run's `scenario.toml`.
    pub fn new(scenario_toml: &str) -> Result<Self> {
        Ok(DenseTheory { table: spec::parse(scenario_toml, "scenario.toml")? })
    }

    /// The grid: `DENSE_POINTS` values from the smallest to the largest of `xs`,
    /// geometric on a log axis, whole numbers when every x is one.
    fn grid(xs: &[f64], log: bool) -> Vec<f64> {
        let (lo, hi) = xs.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        if !(lo.is_finite() && hi.is_finite()) || hi <= lo {
            return Vec::new();
        }
        let n = DENSE_POINTS;
        let mut g: Vec<f64> = (0..n)
            .map(|k| {
                let u = k as f64 / (n - 1) as f64;
                if log { (lo.ln() + u * (hi.ln() - lo.ln())).exp() } else { lo + u * (hi - lo) }
            })
            .collect();
        g.extend_from_slice(xs);
        if xs.iter().all(|x| x.fract() == 0.0) {
            g.iter_mut().for_each(|x| *x = x.round());
        }
        g.sort_by(f64::total_cmp);
        g.dedup();
        g
    }

    /// Theory lines of `metric` over a dense grid spanning `xs`, keyed like the figure's
    /// panels and series.
    pub fn curves(
        &self,
        spec: &FigureSpec,
        metric: &str,
        xs: &[f64],
        facets: &[String],
        series: &[String],
    ) -> Result<Curves> {
        let grid = Self::grid(xs, spec.log_x);
        if grid.is_empty() {
            bail!("no range of x");
        }
        let integers = grid.iter().all(|x| x.fract() == 0.0) && xs.iter().all(|x| x.fract() == 0.0);
        let values: Vec<String> =
            grid.iter().map(|x| if integers { format!("{}", *x as i64) } else { format!("{x:?}") }).collect();
        let mut table = self.table.clone();
        spec::apply_override(&mut table, &format!("{}=[{}]", spec.x, values.join(",")))?;
        let s = spec::resolve(&table)?;
        let theory = results::predictions(&s);
        let mut out = Curves::new();
        for cell in &s.cells {
            let keep = spec.selection.iter().all(|(c, want)| level(cell.column(c)).matches(want));
            let x = cell.column(&spec.x).and_then(ParamValue::as_f64);
            let (Some(x), true) = (x, keep) else { continue };
            let t = match spec.iteration {
                Some(t) => usize::try_from(t).unwrap_or(usize::MAX),
                None => cell.iterations,
            };
            if t > cell.iterations {
                continue;
            }
            let Some(y) = results::predicted(cell, &theory[cell.index], t, metric) else { continue };
            let fk: Vec<Level> = facets.iter().map(|c| level(cell.column(c))).collect();
            let sk: Vec<Level> = series.iter().map(|c| level(cell.column(c))).collect();
            out.entry((fk, sk)).or_default().push((x, y));
        }
        Ok(out)
    }
}
