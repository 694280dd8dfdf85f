//! Result tables: the tidy `runs` and `summary` tables as column buffers, the summary
//! statistics computed from streamed unit results, and the theory predictions of every
//! cell. The CLI turns tables into Parquet; this crate knows no file format.

use crate::api::{NoTheory, Path};
use crate::engine::{Sink, UnitOutput};
use crate::error::CoreError;
use crate::spec::{Cell, ParamValue, ResolvedScenario};

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

/// A tidy table in column buffers.
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

/// A sink that keeps every unit's values in memory, indexed by (cell, replicate): the
/// reference against which streaming sinks are tested, and the simplest way to use the
/// engine from a library.
#[derive(Debug)]
pub struct Collector {
    replicates: usize,
    paths: Vec<Option<Vec<f64>>>,
}

impl Collector {
    /// An empty collector for `scenario`.
    pub fn new(scenario: &ResolvedScenario) -> Self {
        Collector { replicates: scenario.replicates, paths: vec![None; scenario.cells.len() * scenario.replicates] }
    }

    /// The values of (cell, replicate), once collected: row-major (T + 1) × slots.
    pub fn into_paths(self) -> Vec<Option<Vec<f64>>> {
        self.paths
    }
}

impl Sink for Collector {
    fn accept(&mut self, unit: UnitOutput) -> Result<(), CoreError> {
        for p in unit.paths {
            self.paths[p.cell * self.replicates + unit.replicate] = Some(p.values);
        }
        Ok(())
    }
}

/// Running mean and sum of squared deviations (Welford), fed in a fixed order so that
/// the result does not depend on how the work was scheduled.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Running {
    /// Values seen.
    pub count: u64,
    /// Their mean.
    pub mean: f64,
    /// Σ (x − mean)².
    pub m2: f64,
}

impl Running {
    /// Add one value.
    pub fn push(&mut self, x: f64) {
        self.count += 1;
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
    }

    /// Standard error of the mean (None for fewer than two values).
    pub fn se(&self) -> Option<f64> {
        (self.count >= 2).then(|| (self.m2 / (self.count as f64 - 1.0) / self.count as f64).sqrt())
    }
}

/// Per-(cell, iteration, slot) statistics of a run, accumulated from unit results.
/// Feed each cell's replicates in ascending order ([`Summary::add`]); a single run and
/// a merge of shards then produce identical numbers.
#[derive(Debug, Clone)]
pub struct Summary {
    /// stats[cell][t * slots + j].
    pub stats: Vec<Vec<Running>>,
    slots: Vec<usize>,
}

impl Summary {
    /// Empty statistics for `scenario`.
    pub fn new(scenario: &ResolvedScenario) -> Self {
        Summary {
            stats: scenario
                .cells
                .iter()
                .map(|c| vec![Running::default(); c.plan.slots() * (c.iterations + 1)])
                .collect(),
            slots: scenario.cells.iter().map(|c| c.plan.slots()).collect(),
        }
    }

    /// Add one replicate's path of `cell`.
    pub fn add(&mut self, cell: usize, values: &[f64]) {
        for (acc, &x) in self.stats[cell].iter_mut().zip(values) {
            acc.push(x);
        }
    }

    /// The statistics of slot `j` of `cell` at iteration `t`.
    pub fn get(&self, cell: usize, t: usize, j: usize) -> Running {
        self.stats[cell][t * self.slots[cell] + j]
    }
}

/// Statistics of one metric of one cell at one iteration.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct MetricSummary {
    /// Mean over replicates.
    pub mean: f64,
    /// Its standard error.
    pub se: Option<f64>,
    /// Mean of the exact conditional expectation, where planned.
    pub exact_mean: Option<f64>,
}

impl MetricSummary {
    /// (mean − exact_mean)/se: approximately standard normal when the simulation and
    /// the exact conditional expectation agree.
    pub fn z_exact(&self) -> Option<f64> {
        match (self.exact_mean, self.se) {
            (Some(e), Some(s)) if s > 0.0 => Some((self.mean - e) / s),
            _ => None,
        }
    }
}

impl Summary {
    /// The statistics of metric `name` of `cell` at iteration `t`, if the cell has it.
    pub fn metric(&self, cell: &Cell, t: usize, name: &str) -> Option<MetricSummary> {
        let mut j = 0;
        for m in &cell.plan.metrics {
            if m.metric.name == name {
                let value = self.get(cell.index, t, j);
                let exact = m.exact.then(|| self.get(cell.index, t, j + 1).mean);
                return Some(MetricSummary { mean: value.mean, se: value.se(), exact_mean: exact });
            }
            j += 1 + usize::from(m.exact);
        }
        None
    }
}

/// The theory of each cell: per planned metric, the predicted path or why there is none.
pub fn predictions(scenario: &ResolvedScenario) -> Vec<Vec<Result<Path, NoTheory>>> {
    scenario
        .cells
        .iter()
        .map(|cell| match cell.plugins.protocol.theory(&cell.view()) {
            Ok(theory) => theory
                .paths(&cell.weights)
                .into_iter()
                .map(|path| {
                    // A non-finite prediction is reported as such, never as a silent null.
                    path.and_then(|p| match p.iter().flatten().find(|x| !x.is_finite()) {
                        Some(x) => Err(NoTheory::new(format!("the theory's prediction is not finite here ({x})"))),
                        None => Ok(p),
                    })
                })
                .collect(),
            Err(reason) => cell.plan.metrics.iter().map(|_| Err(reason.clone())).collect(),
        })
        .collect()
}

/// The predicted value of metric `name` for `cell` at iteration `t`.
pub fn predicted(cell: &Cell, predictions: &[Result<Path, NoTheory>], t: usize, name: &str) -> Option<f64> {
    let k = cell.plan.metrics.iter().position(|m| m.metric.name == name)?;
    predictions.get(k)?.as_ref().ok()?.get(t).copied().flatten().filter(|x| x.is_finite())
}

/// The type of a parameter column, chosen over all cells: integers stay integers (when
/// every cell has one), numbers with nulls become reals, anything else is text.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ParamKind {
    /// Every cell has an integer.
    Int,
    /// Numbers, possibly null.
    Float,
    /// Every cell has a boolean.
    Bool,
    /// Text (plugin names, enums, lists as JSON), possibly null.
    Str,
}

/// The parameter columns of a scenario with their types.
pub fn param_kinds(scenario: &ResolvedScenario) -> Vec<(String, ParamKind)> {
    scenario
        .column_names()
        .into_iter()
        .map(|name| {
            let values: Vec<&ParamValue> =
                scenario.cells.iter().map(|c| c.column(&name).unwrap_or(&ParamValue::Null)).collect();
            let kind = if !values.is_empty() && values.iter().all(|v| matches!(v, ParamValue::Int(_))) {
                ParamKind::Int
            } else if values.iter().all(|v| matches!(v, ParamValue::Int(_) | ParamValue::Float(_) | ParamValue::Null)) {
                ParamKind::Float
            } else if values.iter().all(|v| matches!(v, ParamValue::Bool(_))) {
                ParamKind::Bool
            } else {
                ParamKind::Str
            };
            (name, kind)
        })
        .collect()
}

/// Parameter columns repeated `repeat(cell)` times per cell.
pub fn param_columns(scenario: &ResolvedScenario, repeat: impl Fn(usize) -> usize) -> Vec<(String, ColumnData)> {
    param_kinds(scenario)
        .into_iter()
        .map(|(name, kind)| {
            // Cells of different plugin kinds have different parameters: absent is null.
            let value = |c: usize| scenario.cells[c].column(&name).unwrap_or(&ParamValue::Null);
            let cells = 0..scenario.cells.len();
            let data = match kind {
                ParamKind::Int => ColumnData::Int(
                    cells
                        .flat_map(|c| {
                            std::iter::repeat_n(if let ParamValue::Int(i) = value(c) { *i } else { 0 }, repeat(c))
                        })
                        .collect(),
                ),
                ParamKind::Float => {
                    ColumnData::Float(cells.flat_map(|c| std::iter::repeat_n(value(c).as_f64(), repeat(c))).collect())
                }
                ParamKind::Bool => ColumnData::Bool(
                    cells
                        .flat_map(|c| std::iter::repeat_n(matches!(value(c), ParamValue::Bool(true)), repeat(c)))
                        .collect(),
                ),
                ParamKind::Str => ColumnData::Str(
                    cells
                        .flat_map(|c| {
                            let v = value(c);
                            std::iter::repeat_n(
                                if matches!(v, ParamValue::Null) { None } else { Some(v.render()) },
                                repeat(c),
                            )
                        })
                        .collect(),
                ),
            };
            (name, data)
        })
        .collect()
}

/// Where each of the scenario's metric columns sits in `cell`'s slots: (value, exact twin).
pub fn metric_positions(scenario_metrics: &[(String, bool)], cell: &Cell) -> Vec<(Option<usize>, Option<usize>)> {
    scenario_metrics
        .iter()
        .map(|(name, _)| {
            let mut j = 0;
            for m in &cell.plan.metrics {
                if &m.metric.name == name {
                    return (Some(j), m.exact.then_some(j + 1));
                }
                j += 1 + usize::from(m.exact);
            }
            (None, None)
        })
        .collect()
}

/// `runs` table: one row per (cell, replicate, iteration), from collected paths.
pub fn runs_table(scenario: &ResolvedScenario, paths: &[Option<Vec<f64>>]) -> Table {
    let metrics = scenario.metric_names();
    let mut cell_col = Vec::new();
    let mut replicate = Vec::new();
    let mut iteration = Vec::new();
    let mut w = Vec::new();
    // Per metric: values and exact twins.
    let mut metric_cols: Vec<[Vec<Option<f64>>; 2]> = metrics.iter().map(|_| Default::default()).collect();
    for cell in &scenario.cells {
        let positions = metric_positions(&metrics, cell);
        let slots = cell.plan.slots();
        for r in 0..scenario.replicates {
            let Some(values) = &paths[cell.index * scenario.replicates + r] else { continue };
            for t in 0..=cell.iterations {
                cell_col.push(cell.index as i64);
                replicate.push(r as i64);
                iteration.push(t as i64);
                w.push(cell.plan.uses_schedule.then_some(cell.weights[t]));
                let row = &values[t * slots..(t + 1) * slots];
                for ([v, e], (pv, pe)) in metric_cols.iter_mut().zip(&positions) {
                    v.push(pv.map(|j| row[j]));
                    e.push(pe.map(|j| row[j]));
                }
            }
        }
    }
    let per_cell = |c: usize| scenario.replicates * (scenario.cells[c].iterations + 1);
    let mut columns = vec![
        ("cell".to_string(), ColumnData::Int(cell_col)),
        ("replicate".to_string(), ColumnData::Int(replicate)),
        ("iteration".to_string(), ColumnData::Int(iteration)),
        ("w".to_string(), ColumnData::Float(w)),
    ];
    for ((name, has_exact), [v, e]) in metrics.iter().zip(metric_cols) {
        columns.push((name.clone(), ColumnData::Float(v)));
        if *has_exact {
            columns.push((format!("{name}_exact"), ColumnData::Float(e)));
        }
    }
    columns.extend(param_columns(scenario, per_cell));
    Table { columns }
}

/// Feed collected paths into a [`Summary`] in (cell, replicate) order.
pub fn summarize(scenario: &ResolvedScenario, paths: &[Option<Vec<f64>>]) -> Summary {
    let mut summary = Summary::new(scenario);
    for cell in &scenario.cells {
        for r in 0..scenario.replicates {
            if let Some(values) = &paths[cell.index * scenario.replicates + r] {
                summary.add(cell.index, values);
            }
        }
    }
    summary
}

/// `summary` table: one row per (cell, iteration), with per metric `<m>_mean`,
/// `<m>_se`, `<m>_theory`, and where planned `<m>_exact_mean` and `<m>_z_exact`.
pub fn summary_table(scenario: &ResolvedScenario, summary: &Summary, theory: &[Vec<Result<Path, NoTheory>>]) -> Table {
    let metrics = scenario.metric_names();
    let mut cell_col = Vec::new();
    let mut iteration = Vec::new();
    let mut w = Vec::new();
    let mut reps = Vec::new();
    let mut cols: Vec<[Vec<Option<f64>>; 5]> = metrics.iter().map(|_| Default::default()).collect();
    for cell in &scenario.cells {
        for t in 0..=cell.iterations {
            cell_col.push(cell.index as i64);
            iteration.push(t as i64);
            w.push(cell.plan.uses_schedule.then_some(cell.weights[t]));
            reps.push(scenario.replicates as i64);
            for ((name, _), c) in metrics.iter().zip(cols.iter_mut()) {
                let s = summary.metric(cell, t, name);
                c[0].push(s.map(|s| s.mean));
                c[1].push(s.and_then(|s| s.se));
                c[2].push(s.and_then(|s| s.exact_mean));
                c[3].push(predicted(cell, &theory[cell.index], t, name));
                c[4].push(s.and_then(|s| s.z_exact()));
            }
        }
    }
    let per_cell = |c: usize| scenario.cells[c].iterations + 1;
    let mut columns =
        vec![("cell".to_string(), ColumnData::Int(cell_col)), ("iteration".to_string(), ColumnData::Int(iteration))];
    columns.extend(param_columns(scenario, per_cell));
    columns.push(("w".to_string(), ColumnData::Float(w)));
    columns.push(("replicates".to_string(), ColumnData::Int(reps)));
    for ((name, has_exact), [mean, se, exact, th, z]) in metrics.iter().zip(cols) {
        columns.push((format!("{name}_mean"), ColumnData::Float(mean)));
        columns.push((format!("{name}_se"), ColumnData::Float(se)));
        if *has_exact {
            columns.push((format!("{name}_exact_mean"), ColumnData::Float(exact)));
        }
        columns.push((format!("{name}_theory"), ColumnData::Float(th)));
        if *has_exact {
            columns.push((format!("{name}_z_exact"), ColumnData::Float(z)));
        }
    }
    Table { columns }
}
