//! A run's `summary.parquet` as plain columns: parameter values as [`Level`]s (numbers,
//! text, null) for grouping, statistics as `f64` with NaN for null.

use std::cmp::Ordering;
use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{DataFrame, DataType};
use serde_json::Value;

use crate::UserError;
use crate::compare::is_parameter_column;

/// One value of a parameter column, ordered (null first, then numbers, then text) so that
/// it can key a map.
#[derive(Debug, Clone)]
pub enum Level {
    /// Absent (a parameter of a kind the cell does not use).
    Null,
    /// A number.
    Num(f64),
    /// Text: plugin names, enums, lists.
    Text(String),
}

impl Level {
    fn rank(&self) -> u8 {
        match self {
            Level::Null => 0,
            Level::Num(_) => 1,
            Level::Text(_) => 2,
        }
    }

    /// The number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        if let Level::Num(x) = self { Some(*x) } else { None }
    }

    /// Whether this value is the JSON value `wanted` (numbers up to rounding), or one of
    /// them when `wanted` is a list.
    pub fn matches(&self, wanted: &Value) -> bool {
        match (self, wanted) {
            (_, Value::Array(any)) => any.iter().any(|w| self.matches(w)),
            (Level::Num(x), w) => w.as_f64().is_some_and(|y| (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0)),
            (Level::Text(s), Value::String(w)) => s == w,
            (Level::Text(s), Value::Bool(b)) => s == &b.to_string(),
            (Level::Null, Value::Null) => true,
            _ => false,
        }
    }

    /// Rendered for labels: numbers without trailing zeros.
    pub fn render(&self) -> String {
        match self {
            Level::Null => "–".into(),
            Level::Num(x) => format_number(*x),
            Level::Text(s) => s.clone(),
        }
    }
}

/// A number as a short label: integers without a point, others with up to 4 significant
/// decimals and no trailing zeros.
pub fn format_number(x: f64) -> String {
    if x.fract() == 0.0 && x.abs() < 1e15 {
        return format!("{}", x as i64);
    }
    let a = x.abs();
    let s = if (1e-3..1e5).contains(&a) { format!("{x:.4}") } else { format!("{x:.3e}") };
    if s.contains('e') { s } else { s.trim_end_matches('0').trim_end_matches('.').to_string() }
}

impl PartialEq for Level {
    fn eq(&self, other: &Self) -> bool {
        self.cmp(other) == Ordering::Equal
    }
}

impl Eq for Level {}

impl PartialOrd for Level {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl Ord for Level {
    fn cmp(&self, other: &Self) -> Ordering {
        match (self, other) {
            (Level::Num(a), Level::Num(b)) => a.total_cmp(b),
            (Level::Text(a), Level::Text(b)) => a.cmp(b),
            _ => self.rank().cmp(&other.rank()),
        }
    }
}

/// A parameter column.
#[derive(Debug, Clone)]
pub struct ParamColumn {
    /// Its name (`schedule.w`, `estimator`).
    pub name: String,
    /// Whether it holds numbers (nulls allowed).
    pub numeric: bool,
    /// One value per row.
    pub values: Vec<Level>,
}

/// The summary table of a run.
#[derive(Debug, Clone)]
pub struct SummaryData {
    /// Rows.
    pub rows: usize,
    /// `cell` per row.
    pub cell: Vec<i64>,
    /// `iteration` per row.
    pub iteration: Vec<i64>,
    /// Parameter columns in table order.
    pub params: Vec<ParamColumn>,
    /// Metric names (those with a `<m>_mean` column), in table order.
    pub metrics: Vec<String>,
    numbers: BTreeMap<String, Vec<f64>>,
}

fn f64s(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let c = df.column(name)?.cast(&DataType::Float64)?;
    Ok(c.f64()?.to_vec().into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

impl SummaryData {
    /// Read `dir/summary.parquet`; a missing directory or file is a user error.
    pub fn load(dir: &Path) -> Result<Self> {
        if !dir.is_dir() {
            return Err(UserError::new(format!(
                "`{}` is not a directory (give a run's output directory)",
                dir.display()
            ))
            .into());
        }
        let path = dir.join("summary.parquet");
        if !path.is_file() {
            return Err(UserError::new(format!(
                "`{}` has no summary.parquet (run `collapse run … --out {}` first)",
                dir.display(),
                dir.display()
            ))
            .into());
        }
        let df = crate::output::read_parquet(&path)?;
        Self::from_frame(&df).with_context(|| format!("reading {}", path.display()))
    }

    /// From a summary DataFrame.
    pub fn from_frame(df: &DataFrame) -> Result<Self> {
        let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
        for required in ["cell", "iteration"] {
            if !names.iter().any(|n| n == required) {
                return Err(UserError::new(format!("summary.parquet has no `{required}` column")).into());
            }
        }
        let mut params = Vec::new();
        let mut numbers = BTreeMap::new();
        let mut metrics = Vec::new();
        for name in &names {
            let column = df.column(name)?;
            if is_parameter_column(name) {
                let numeric = column.dtype().is_numeric();
                let values = if numeric {
                    f64s(df, name)?.into_iter().map(|x| if x.is_nan() { Level::Null } else { Level::Num(x) }).collect()
                } else {
                    let text = column.cast(&DataType::String)?;
                    let text = text.str()?;
                    (0..text.len())
                        .map(|i| text.get(i).map(|s| Level::Text(s.to_string())).unwrap_or(Level::Null))
                        .collect()
                };
                params.push(ParamColumn { name: name.clone(), numeric, values });
            } else if column.dtype().is_numeric() {
                numbers.insert(name.clone(), f64s(df, name)?);
                if let Some(m) = name.strip_suffix("_mean")
                    && !m.ends_with("_exact")
                {
                    metrics.push(m.to_string());
                }
            }
        }
        let cell = f64s(df, "cell")?.into_iter().map(|x| x as i64).collect();
        let iteration = f64s(df, "iteration")?.into_iter().map(|x| x as i64).collect();
        Ok(SummaryData { rows: df.height(), cell, iteration, params, metrics, numbers })
    }

    /// A numeric column that is not a parameter (`risk_mean`, `w`, …).
    pub fn number(&self, name: &str) -> Option<&[f64]> {
        self.numbers.get(name).map(Vec::as_slice)
    }

    /// The parameter column `name`.
    pub fn param(&self, name: &str) -> Option<&ParamColumn> {
        self.params.iter().find(|p| p.name == name)
    }

    /// Names of all parameter columns.
    pub fn param_names(&self) -> Vec<String> {
        self.params.iter().map(|p| p.name.clone()).collect()
    }

    /// Names of the numeric parameter columns.
    pub fn numeric_params(&self) -> Vec<String> {
        self.params.iter().filter(|p| p.numeric).map(|p| p.name.clone()).collect()
    }

    /// Each cell's last iteration.
    pub fn last_iteration(&self) -> BTreeMap<i64, i64> {
        let mut last: BTreeMap<i64, i64> = BTreeMap::new();
        for (c, t) in self.cell.iter().zip(&self.iteration) {
            let e = last.entry(*c).or_insert(*t);
            *e = (*e).max(*t);
        }
        last
    }

    /// The rows of each cell's last iteration (the final-iteration table).
    pub fn final_rows(&self) -> Vec<usize> {
        let last = self.last_iteration();
        (0..self.rows).filter(|&i| last.get(&self.cell[i]) == Some(&self.iteration[i])).collect()
    }

    /// The parameters that vary over `rows`, leaving out any column whose value is fixed by
    /// the columns kept before it (a kind's own parameters, which only follow the kind).
    pub fn varying(&self, rows: &[usize]) -> Vec<String> {
        let mut kept: Vec<&ParamColumn> = Vec::new();
        for p in &self.params {
            let first = rows.first().map(|&i| &p.values[i]);
            if rows.iter().all(|&i| Some(&p.values[i]) == first) {
                continue;
            }
            // Determined by the kept columns: one value per combination of theirs.
            let mut seen: BTreeMap<Vec<&Level>, &Level> = BTreeMap::new();
            let determined = !kept.is_empty()
                && rows.iter().all(|&i| {
                    let key: Vec<&Level> = kept.iter().map(|k| &k.values[i]).collect();
                    *seen.entry(key).or_insert(&p.values[i]) == &p.values[i]
                });
            if !determined {
                kept.push(p);
            }
        }
        kept.into_iter().map(|p| p.name.clone()).collect()
    }
}
