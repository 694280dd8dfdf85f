//! The engine: the one loop over cells, replicates and iterations.
//!
//! Work is split into units of (design group, replicate). A unit draws the group's
//! design and signal once (lazily, through [`ReplicateData`]), factorizes the design at
//! most once, and runs the chain of every cell of the group on it. Units run in
//! parallel on a rayon pool of the requested size; their results are stored by index
//! and assembled in a fixed order (cells, then replicates, then iterations), so the
//! output does not depend on the thread count. faer runs single-threaded inside the
//! units so the two levels of parallelism do not oversubscribe the cores.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use rayon::prelude::*;

use crate::error::CoreError;
use crate::replicate::{Outcome, ReplicateData};
use crate::rng::Streams;
use crate::spec::{ParamValue, ResolvedScenario};

/// The raw outcome of a run: `outcomes[cell][replicate][iteration]`.
#[derive(Debug, Clone)]
pub struct RunResults {
    /// Outcomes per cell, replicate and iteration.
    pub outcomes: Vec<Vec<Vec<Outcome>>>,
    /// How many design factorizations were computed.
    pub factorizations: usize,
    /// Threads used.
    pub threads: usize,
}

/// Run a resolved scenario on `threads` worker threads (0: all cores), calling
/// `progress` with the number of (cell, replicate) chains finished by each unit.
pub fn run(
    scenario: &ResolvedScenario,
    threads: usize,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<RunResults, CoreError> {
    faer::set_global_parallelism(faer::Par::Seq);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .map_err(|e| CoreError::config("--threads", format!("cannot start {threads} threads: {e}")))?;
    let threads = pool.current_num_threads();
    let factorizations = Arc::new(AtomicUsize::new(0));
    let units: Vec<(usize, usize)> =
        (0..scenario.groups.len()).flat_map(|g| (0..scenario.replicates).map(move |r| (g, r))).collect();
    tracing::info!(
        cells = scenario.cells.len(),
        groups = scenario.groups.len(),
        replicates = scenario.replicates,
        threads,
        "running scenario `{}`",
        scenario.name
    );
    let unit_results: Vec<Vec<Vec<Outcome>>> = pool.install(|| {
        units
            .par_iter()
            .map(|&(g, r)| {
                let out = run_unit(scenario, g, r, &factorizations);
                progress(scenario.groups[g].cells.len());
                out
            })
            .collect::<Result<Vec<_>, CoreError>>()
    })?;
    let mut outcomes: Vec<Vec<Vec<Outcome>>> = vec![vec![Vec::new(); scenario.replicates]; scenario.cells.len()];
    for (&(g, r), per_cell) in units.iter().zip(unit_results) {
        for (&c, chain) in scenario.groups[g].cells.iter().zip(per_cell) {
            outcomes[c][r] = chain;
        }
    }
    Ok(RunResults { outcomes, factorizations: factorizations.load(Ordering::Relaxed), threads })
}

fn run_unit(
    scenario: &ResolvedScenario,
    group: usize,
    replicate: usize,
    factorizations: &Arc<AtomicUsize>,
) -> Result<Vec<Vec<Outcome>>, CoreError> {
    let members = &scenario.groups[group].cells;
    let first = &scenario.cells[members[0]];
    let streams = Streams::new(scenario.seed, group as u64, replicate as u64);
    let data = ReplicateData::new(
        first.design.n,
        first.design.p,
        streams,
        first.covariance.clone(),
        first.signal.clone(),
        factorizations.clone(),
    )
    .with_mode(first.setting.row_space_mode(&first.view()))
    // Each chain evaluates the realised and the exact risk once per iteration.
    .with_evaluation_hint(members.iter().map(|&c| 2 * (scenario.cells[c].iterations + 1)).sum());
    let mut out = Vec::with_capacity(members.len());
    for &c in members {
        let cell = &scenario.cells[c];
        let mut chain = cell.setting.start(cell.view(), &data, streams)?;
        let mut path = Vec::with_capacity(cell.iterations + 1);
        for (t, &w) in cell.weights.iter().enumerate() {
            let o = chain.step(t, w).map_err(|e| match e {
                CoreError::Numerical { what, detail } => CoreError::Numerical {
                    what,
                    detail: format!("{detail} (cell {c}, replicate {replicate}, iteration {t})"),
                },
                other => other,
            })?;
            path.push(o);
        }
        out.push(path);
    }
    Ok(out)
}

/// A column of a result table.
#[derive(Debug, Clone, PartialEq)]
pub enum ColumnData {
    /// 64-bit integers.
    Int(Vec<i64>),
    /// Reals; `None` is null.
    Float(Vec<Option<f64>>),
    /// Booleans.
    Bool(Vec<bool>),
    /// Strings; `None` is null.
    Str(Vec<Option<String>>),
}

impl ColumnData {
    /// Number of rows.
    pub fn len(&self) -> usize {
        match self {
            ColumnData::Int(v) => v.len(),
            ColumnData::Float(v) => v.len(),
            ColumnData::Bool(v) => v.len(),
            ColumnData::Str(v) => v.len(),
        }
    }

    /// True when there are no rows.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// A tidy table in column buffers (turned into a DataFrame by the CLI).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Table {
    /// Named columns of equal length.
    pub columns: Vec<(String, ColumnData)>,
}

impl Table {
    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map(|(_, c)| c.len()).unwrap_or(0)
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&ColumnData> {
        self.columns.iter().find(|(n, _)| n == name).map(|(_, c)| c)
    }
}

/// Parameter columns repeated `repeat(cell)` times per cell, with one type per column
/// chosen over all cells (integers stay integers, numbers with nulls become reals).
fn param_columns(scenario: &ResolvedScenario, repeat: impl Fn(usize) -> usize) -> Vec<(String, ColumnData)> {
    let names = scenario.column_names();
    let mut out = Vec::with_capacity(names.len());
    for name in &names {
        // Cells of different plugin kinds have different parameters: absent is null.
        let values: Vec<&ParamValue> =
            scenario.cells.iter().map(|c| c.column(name).unwrap_or(&ParamValue::Null)).collect();
        let all_int = !values.is_empty() && values.iter().all(|v| matches!(v, ParamValue::Int(_)));
        let all_num = values.iter().all(|v| matches!(v, ParamValue::Int(_) | ParamValue::Float(_) | ParamValue::Null));
        let all_bool = values.iter().all(|v| matches!(v, ParamValue::Bool(_)));
        let data = if all_int {
            ColumnData::Int(
                values
                    .iter()
                    .enumerate()
                    .flat_map(|(c, v)| {
                        let x = if let ParamValue::Int(i) = v { *i } else { 0 };
                        std::iter::repeat_n(x, repeat(c))
                    })
                    .collect(),
            )
        } else if all_num {
            ColumnData::Float(
                values
                    .iter()
                    .enumerate()
                    .flat_map(|(c, v)| {
                        let x = match v {
                            ParamValue::Int(i) => Some(*i as f64),
                            ParamValue::Float(f) => Some(*f),
                            _ => None,
                        };
                        std::iter::repeat_n(x, repeat(c))
                    })
                    .collect(),
            )
        } else if all_bool {
            ColumnData::Bool(
                values
                    .iter()
                    .enumerate()
                    .flat_map(|(c, v)| std::iter::repeat_n(matches!(v, ParamValue::Bool(true)), repeat(c)))
                    .collect(),
            )
        } else {
            ColumnData::Str(
                values
                    .iter()
                    .enumerate()
                    .flat_map(|(c, v)| {
                        let s = if matches!(v, ParamValue::Null) { None } else { Some(v.render()) };
                        std::iter::repeat_n(s, repeat(c))
                    })
                    .collect(),
            )
        };
        out.push((name.clone(), data));
    }
    out
}

/// `runs` table: one row per (cell, replicate, iteration).
pub fn runs_table(scenario: &ResolvedScenario, results: &RunResults) -> Table {
    let mut cell = Vec::new();
    let mut replicate = Vec::new();
    let mut iteration = Vec::new();
    let mut w = Vec::new();
    let mut risk = Vec::new();
    let mut risk_exact = Vec::new();
    for (c, per_rep) in results.outcomes.iter().enumerate() {
        for (r, path) in per_rep.iter().enumerate() {
            for (t, o) in path.iter().enumerate() {
                cell.push(c as i64);
                replicate.push(r as i64);
                iteration.push(t as i64);
                w.push(Some(scenario.cells[c].weights[t]));
                risk.push(Some(o.risk));
                risk_exact.push(o.risk_exact);
            }
        }
    }
    let per_cell = |c: usize| scenario.replicates * (scenario.cells[c].iterations + 1);
    let mut columns = vec![
        ("cell".to_string(), ColumnData::Int(cell)),
        ("replicate".to_string(), ColumnData::Int(replicate)),
        ("iteration".to_string(), ColumnData::Int(iteration)),
        ("w".to_string(), ColumnData::Float(w)),
        ("risk".to_string(), ColumnData::Float(risk)),
        ("risk_exact".to_string(), ColumnData::Float(risk_exact)),
    ];
    columns.extend(param_columns(scenario, per_cell));
    Table { columns }
}

/// Mean and standard error of the mean (None for fewer than two values).
pub fn mean_se(values: impl Iterator<Item = f64> + Clone) -> (f64, Option<f64>) {
    let n = values.clone().count();
    if n == 0 {
        return (f64::NAN, None);
    }
    let mean = values.clone().sum::<f64>() / n as f64;
    if n < 2 {
        return (mean, None);
    }
    let var = values.map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n as f64 - 1.0);
    (mean, Some((var / n as f64).sqrt()))
}

/// Per-(cell, iteration) statistics.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SummaryRow {
    /// Mean realised risk over replicates.
    pub risk_mean: f64,
    /// Standard error of that mean.
    pub risk_se: Option<f64>,
    /// Mean exact conditional risk over replicates.
    pub risk_exact_mean: Option<f64>,
}

impl SummaryRow {
    /// (risk_mean − risk_exact_mean)/risk_se: approximately standard normal when the
    /// simulation and the exact conditional risk agree.
    pub fn z_exact(&self) -> Option<f64> {
        match (self.risk_exact_mean, self.risk_se) {
            (Some(e), Some(s)) if s > 0.0 => Some((self.risk_mean - e) / s),
            _ => None,
        }
    }
}

/// Summary statistics `[cell][iteration]`.
pub fn summarize(results: &RunResults) -> Vec<Vec<SummaryRow>> {
    results
        .outcomes
        .iter()
        .map(|per_rep| {
            let t_len = per_rep.first().map(Vec::len).unwrap_or(0);
            (0..t_len)
                .map(|t| {
                    let (risk_mean, risk_se) = mean_se(per_rep.iter().map(move |p| p[t].risk));
                    let exact: Option<Vec<f64>> = per_rep.iter().map(|p| p[t].risk_exact).collect();
                    let risk_exact_mean = exact.map(|e| e.iter().sum::<f64>() / e.len() as f64);
                    SummaryRow { risk_mean, risk_se, risk_exact_mean }
                })
                .collect()
        })
        .collect()
}

/// `summary` table: one row per (cell, iteration). `theory[cell]`, where given,
/// holds the predicted risk per iteration.
pub fn summary_table(scenario: &ResolvedScenario, results: &RunResults, theory: &[Option<Vec<f64>>]) -> Table {
    let stats = summarize(results);
    let mut cell = Vec::new();
    let mut iteration = Vec::new();
    let mut w = Vec::new();
    let mut reps = Vec::new();
    let mut mean = Vec::new();
    let mut se = Vec::new();
    let mut exact = Vec::new();
    let mut z = Vec::new();
    let mut th = Vec::new();
    for (c, rows) in stats.iter().enumerate() {
        for (t, row) in rows.iter().enumerate() {
            cell.push(c as i64);
            iteration.push(t as i64);
            w.push(Some(scenario.cells[c].weights[t]));
            reps.push(scenario.replicates as i64);
            mean.push(Some(row.risk_mean));
            se.push(row.risk_se);
            exact.push(row.risk_exact_mean);
            z.push(row.z_exact());
            th.push(theory.get(c).and_then(|v| v.as_ref()).and_then(|v| v.get(t).copied()).filter(|x| x.is_finite()));
        }
    }
    let per_cell = |c: usize| scenario.cells[c].iterations + 1;
    let mut columns =
        vec![("cell".to_string(), ColumnData::Int(cell)), ("iteration".to_string(), ColumnData::Int(iteration))];
    columns.extend(param_columns(scenario, per_cell));
    columns.extend([
        ("w".to_string(), ColumnData::Float(w)),
        ("replicates".to_string(), ColumnData::Int(reps)),
        ("risk_mean".to_string(), ColumnData::Float(mean)),
        ("risk_se".to_string(), ColumnData::Float(se)),
        ("risk_exact_mean".to_string(), ColumnData::Float(exact)),
        ("risk_theory".to_string(), ColumnData::Float(th)),
        ("z_exact".to_string(), ColumnData::Float(z)),
    ]);
    Table { columns }
}
