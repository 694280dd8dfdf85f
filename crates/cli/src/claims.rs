//! Claims: what a registered scenario shows, checked against its own results.
//!
//! A scenario's `[report]` table may list claims, each a sentence and a check computed
//! from the run's `summary.parquet` (and `runs.parquet` for paired checks):
//!
//! ```toml
//! [[report.claims]]
//! claim = "the long-run risk is lowest near w = 1/φ"
//! check = "argmin"            # argmin | argmin-theory | less | at-most | near | theory-optimum | linear | increasing | grows | bounded | agrees | slope
//! param = "schedule.w"
//! expect = 0.618
//! ```
//!
//! Every check has the optional fields `metric` (default: the first metric), `where` (a
//! table of parameter values selecting cells, e.g. `{ "schedule.w" = 0.0 }`) and
//! `iteration` (default: the last). `collapse run` prints a verdict line per claim:
//! "yes"/"no" with the numbers behind it.
//!
//! | check | fields | holds when |
//! |---|---|---|
//! | `argmin` | `param`; `expect`, `within = [lo, hi]` or `against = "theory"`; `tolerance` (0) | in every group of the other swept parameters, `expect` lies within the paired bootstrap 95% range of the argmin over `param` (± tolerance); with `within`, that range lies within `[lo, hi]`; with `against = "theory"`, the expected value is where the group's `<metric>_theory` is lowest |
//! | `argmin-theory` | `param`, `tolerance` (0) | in every group, the optimal weight of the cells' theory (`collapse theory`) lies within the paired bootstrap 95% range of the argmin over `param` (± tolerance) |
//! | `less` | `than` (a selection), `z` (3), `every_iteration` (false) | each selected cell's metric is below its `than` cell's by more than `z` paired standard errors (cells are paired by their other parameters), at the last iteration (or `iteration`, or every iteration) |
//! | `at-most` | `than` (a selection), `z` (2), `every_iteration` (false) | each selected cell's metric is not above its `than` cell's: the paired difference is below `z` standard errors, at the last iteration (or `iteration`, or every iteration) |
//! | `near` | `expect`, `tolerance`, `column` (`<metric>_mean`) | in every selected cell the summary column (e.g. `w`, the weight used) is within tolerance of `expect` |
//! | `theory-optimum` | `expect` and `tolerance`, or `within`; `lambda` | in every selected cell the theory's optimal constant weight (at ridge penalty `lambda` when given) is within tolerance of `expect`, or within `[lo, hi]` |
//! | `linear` | `z` (4), `min_r2` (0.99) | in every selected cell the mean grows linearly in t ≥ 1: slope > z standard errors, R² ≥ min_r2 |
//! | `increasing` | | in every selected cell the mean rises strictly from each iteration to the next |
//! | `grows` | `z` (4) | in every selected cell the mean at the last iteration (or `iteration`) exceeds the mean at t = 0 by more than z standard errors |
//! | `bounded` | `bound`, `relative` (false), `against` (`exact`) | in every selected cell the mean (with `against = "exact"`: the mean exact risk) stays ≤ bound at every iteration; with `relative = true` the bound is `bound` times the cell's own value at t = 0 |
//! | `agrees` | `against` (`exact` or `theory`), `z` (4) | in every selected cell \|mean − exact or theory\| < z standard errors |
//! | `slope` | `param`, `expect`, `tolerance` | the log–log least-squares slope of the mean against `param` (printed with its standard error, and beside the slope of the theory curve over the same cells) is within tolerance of `expect` |

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use polars::prelude::{DataFrame, DataType};
use serde::Deserialize;
use serde_json::Value;

use crate::compare;

/// The kinds of check.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum CheckKind {
    /// The argmin over a swept parameter is near an expected value.
    Argmin,
    /// The argmin over a swept parameter is near the theory's optimal weight of its group.
    ArgminTheory,
    /// One cell's metric is smaller than another's, paired.
    Less,
    /// The mean rises with the iteration.
    Increasing,
    /// The metric grows linearly in the iteration.
    Linear,
    /// The metric ends higher than it starts.
    Grows,
    /// The metric stays below a bound.
    Bounded,
    /// Simulation agrees with the exact expectation or the theory.
    Agrees,
    /// A log–log slope against a parameter.
    Slope,
    /// One cell's metric is not larger than another's, paired.
    AtMost,
    /// A summary column is near a value.
    Near,
    /// The theory's optimal weight is near a value or in a range.
    TheoryOptimum,
}

/// One claim of a scenario's `[report]`.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Claim {
    /// The sentence printed with the verdict.
    pub claim: String,
    /// What is checked.
    pub check: CheckKind,
    /// The metric (default: the scenario's first).
    #[serde(default)]
    pub metric: Option<String>,
    /// Parameter values selecting the cells the check looks at.
    #[serde(default, rename = "where")]
    pub selection: BTreeMap<String, Value>,
    /// The iteration (default: the last).
    #[serde(default)]
    pub iteration: Option<i64>,
    /// `argmin`, `slope`: the swept parameter.
    #[serde(default)]
    pub param: Option<String>,
    /// `argmin`, `slope`: the expected value.
    #[serde(default)]
    pub expect: Option<f64>,
    /// `argmin`, `slope`: the allowed distance from `expect`.
    #[serde(default)]
    pub tolerance: Option<f64>,
    /// `less`: the cell compared against.
    #[serde(default)]
    pub than: Option<BTreeMap<String, Value>>,
    /// `bounded`: the bound.
    #[serde(default)]
    pub bound: Option<f64>,
    /// `bounded`: the bound is relative to the cell's value at t = 0.
    #[serde(default)]
    pub relative: bool,
    /// `less`, `at-most`: the comparison holds at every iteration, not only the last.
    #[serde(default)]
    pub every_iteration: bool,
    /// `less`, `linear`, `agrees`: the z threshold.
    #[serde(default)]
    pub z: Option<f64>,
    /// `linear`: the smallest R².
    #[serde(default)]
    pub min_r2: Option<f64>,
    /// `agrees`: `exact` or `theory`; `argmin`: `theory` (the expected argmin comes from
    /// the theory column); `bounded`: `exact` (bound the exact risk instead of the mean).
    #[serde(default)]
    pub against: Option<String>,
    /// `argmin`, `theory-optimum`: the range the value must lie in.
    #[serde(default)]
    pub within: Option<[f64; 2]>,
    /// `near`: the summary column (default `<metric>_mean`).
    #[serde(default)]
    pub column: Option<String>,
    /// `theory-optimum`: the ridge penalty at which the theory is evaluated.
    #[serde(default)]
    pub lambda: Option<f64>,
}

/// A scenario's `[report]` table: the papers it reproduces, claims, and figures (drawn
/// by `collapse plot`, schema in [`crate::plot::spec`]).
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Report {
    /// The papers whose claims the scenario reproduces (`p1`, `p2`, `p3` or an alias; see
    /// `collapse reproduce`); normalised to the paper ids by [`parse_report`].
    #[serde(default)]
    pub papers: Vec<String>,
    /// One paper, the same as `papers = [paper]`.
    #[serde(default)]
    pub paper: Option<String>,
    /// Claims checked after a run.
    #[serde(default)]
    pub claims: Vec<Claim>,
    /// Figure specifications.
    #[serde(default)]
    pub figures: Vec<crate::plot::spec::FigureSpec>,
}

/// Parse and check a scenario's `[report]` table; errors name the field.
pub fn parse_report(table: Option<&toml::Value>) -> Result<Report> {
    let Some(table) = table else { return Ok(Report::default()) };
    let value = serde_json::to_value(table).context("report")?;
    let mut report: Report = collapse_core::registry::deserialize_strict(&value).map_err(|e| e.in_section("report"))?;
    let mut papers = Vec::new();
    let named = report.papers.iter().enumerate().map(|(k, p)| (format!("report.papers[{k}]"), p));
    for (field, name) in named.chain(report.paper.iter().map(|p| ("report.paper".to_string(), p))) {
        let paper = crate::reproduce::paper(name).ok_or_else(|| {
            collapse_core::CoreError::config(
                field,
                format!("unknown paper `{name}`; {}", crate::reproduce::known_papers()),
            )
        })?;
        if !papers.contains(&paper.id.to_string()) {
            papers.push(paper.id.to_string());
        }
    }
    report.papers = papers;
    report.paper = None;
    for (k, c) in report.claims.iter().enumerate() {
        let field = |f: &str| format!("report.claims[{k}].{f}");
        let need = |present: bool, f: &str, why: &str| -> Result<()> {
            if present {
                Ok(())
            } else {
                Err(collapse_core::CoreError::config(
                    field(f),
                    format!("missing; `{}` needs {why}", check_name(c.check)),
                )
                .into())
            }
        };
        match c.check {
            CheckKind::Argmin => {
                need(c.param.is_some(), "param", "the swept parameter")?;
                match (c.expect.is_some() || c.within.is_some(), c.against.as_deref()) {
                    (true, None) | (false, Some("theory")) => {}
                    (false, None) => {
                        need(false, "expect", "the expected argmin (or `within`, or against = \"theory\")")?
                    }
                    _ => {
                        return Err(collapse_core::CoreError::config(
                            field("against"),
                            "`argmin` takes one of `expect`, `within` or `against = \"theory\"`",
                        )
                        .into());
                    }
                }
            }
            CheckKind::TheoryOptimum => {
                need(c.expect.is_some() || c.within.is_some(), "expect", "the expected optimum (or `within`)")?;
                need(c.expect.is_none() || c.tolerance.is_some(), "tolerance", "the allowed distance from `expect`")?;
            }
            CheckKind::Near => {
                need(c.expect.is_some(), "expect", "the expected value")?;
                need(c.tolerance.is_some(), "tolerance", "the allowed distance from `expect`")?;
            }
            CheckKind::AtMost => need(c.than.is_some(), "than", "the cell compared against")?,
            CheckKind::Slope => {
                need(c.param.is_some(), "param", "the parameter on the x axis")?;
                need(c.expect.is_some(), "expect", "the expected slope")?;
                need(c.tolerance.is_some(), "tolerance", "the allowed distance from `expect`")?;
            }
            CheckKind::ArgminTheory => need(c.param.is_some(), "param", "the swept parameter")?,
            CheckKind::Less => need(c.than.is_some(), "than", "the cell compared against")?,
            CheckKind::Bounded => {
                need(c.bound.is_some(), "bound", "the bound")?;
                if !matches!(c.against.as_deref(), None | Some("exact")) {
                    return Err(
                        collapse_core::CoreError::config(field("against"), "`bounded` takes only \"exact\"").into()
                    );
                }
            }
            CheckKind::Agrees => {
                if !matches!(c.against.as_deref(), Some("exact" | "theory")) {
                    return Err(
                        collapse_core::CoreError::config(field("against"), "must be \"exact\" or \"theory\"").into()
                    );
                }
            }
            CheckKind::Linear | CheckKind::Grows | CheckKind::Increasing => {}
        }
        if let Some([lo, hi]) = c.within
            && !(lo.is_finite() && hi.is_finite() && lo <= hi)
        {
            return Err(collapse_core::CoreError::config(
                field("within"),
                format!("must be [lo, hi] with lo ≤ hi, got [{lo}, {hi}]"),
            )
            .into());
        }
    }
    Ok(report)
}

fn check_name(k: CheckKind) -> &'static str {
    match k {
        CheckKind::Argmin => "argmin",
        CheckKind::ArgminTheory => "argmin-theory",
        CheckKind::Grows => "grows",
        CheckKind::Less => "less",
        CheckKind::Increasing => "increasing",
        CheckKind::Linear => "linear",
        CheckKind::Bounded => "bounded",
        CheckKind::Agrees => "agrees",
        CheckKind::Slope => "slope",
        CheckKind::AtMost => "at-most",
        CheckKind::Near => "near",
        CheckKind::TheoryOptimum => "theory-optimum",
    }
}

/// The outcome of one claim.
#[derive(Debug, Clone, PartialEq)]
pub struct Verdict {
    /// The claim's sentence.
    pub claim: String,
    /// Whether it holds (None: could not be checked, e.g. no runs table).
    pub holds: Option<bool>,
    /// The numbers behind it.
    pub detail: String,
}

impl std::fmt::Display for Verdict {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mark = match self.holds {
            Some(true) => "yes",
            Some(false) => "NO",
            None => "not checked",
        };
        write!(f, "{}: {mark}, {}", self.claim, self.detail)
    }
}

/// Text columns (categorical or not) as strings, numbers as f64.
fn column_values(df: &DataFrame, name: &str) -> Result<Vec<Value>> {
    let c = df.column(name).with_context(|| format!("no column `{name}`"))?;
    if c.dtype().is_numeric() {
        let f = c.cast(&DataType::Float64)?;
        Ok(f.f64()?.to_vec().into_iter().map(|x| x.map(Value::from).unwrap_or(Value::Null)).collect())
    } else if c.dtype() == &DataType::Boolean {
        let b = c.bool()?;
        Ok((0..b.len()).map(|i| b.get(i).map(Value::from).unwrap_or(Value::Null)).collect())
    } else {
        let s = c.cast(&DataType::String)?;
        let s = s.str()?;
        Ok((0..s.len()).map(|i| s.get(i).map(Value::from).unwrap_or(Value::Null)).collect())
    }
}

fn same(a: &Value, b: &Value) -> bool {
    if let Value::Array(any) = b {
        return any.iter().any(|w| same(a, w));
    }
    match (a, b) {
        // A boolean parameter beside nulls (a kind sweep) is a text column.
        (Value::Bool(x), Value::String(s)) | (Value::String(s), Value::Bool(x)) => *s == x.to_string(),
        _ => match (a.as_f64(), b.as_f64()) {
            (Some(x), Some(y)) => (x - y).abs() <= 1e-9 * x.abs().max(y.abs()).max(1.0),
            _ => a == b,
        },
    }
}

/// The rows of `df` whose parameter columns match `selection`.
fn select(df: &DataFrame, selection: &BTreeMap<String, Value>) -> Result<Vec<bool>> {
    let mut keep = vec![true; df.height()];
    for (column, wanted) in selection {
        let values = column_values(df, column)
            .map_err(|_| crate::UserError::new(format!("report: `where` names `{column}`, which is not a column")))?;
        for (k, v) in keep.iter_mut().zip(values) {
            *k &= same(&v, wanted);
        }
    }
    Ok(keep)
}

fn f64s(df: &DataFrame, name: &str) -> Result<Vec<f64>> {
    let c = df.column(name).with_context(|| format!("no column `{name}`"))?.cast(&DataType::Float64)?;
    Ok(c.f64()?.to_vec().into_iter().map(|x| x.unwrap_or(f64::NAN)).collect())
}

/// Per selected cell: (cell, iteration → (mean, se, exact, theory)).
type CellSeries = BTreeMap<i64, BTreeMap<i64, (f64, f64, f64, f64)>>;

fn series(summary: &DataFrame, metric: &str, selection: &BTreeMap<String, Value>) -> Result<CellSeries> {
    let keep = select(summary, selection)?;
    let cell = f64s(summary, "cell")?;
    let t = f64s(summary, "iteration")?;
    let mean = f64s(summary, &format!("{metric}_mean"))?;
    let se = f64s(summary, &format!("{metric}_se"))?;
    let nan = vec![f64::NAN; summary.height()];
    let exact = f64s(summary, &format!("{metric}_exact_mean")).unwrap_or_else(|_| nan.clone());
    let theory = f64s(summary, &format!("{metric}_theory")).unwrap_or(nan);
    let mut out: CellSeries = BTreeMap::new();
    for i in (0..summary.height()).filter(|&i| keep[i]) {
        out.entry(cell[i] as i64).or_default().insert(t[i] as i64, (mean[i], se[i], exact[i], theory[i]));
    }
    Ok(out)
}

/// Evaluate the claims of a finished run in `dir` (its summary, runs and scenario.toml).
pub fn evaluate(dir: &Path, report: &Report, metrics: &[String]) -> Result<Vec<Verdict>> {
    if report.claims.is_empty() {
        return Ok(Vec::new());
    }
    let summary = crate::output::read_parquet(&dir.join("summary.parquet"))?;
    let runs_path = dir.join("runs.parquet");
    let runs = if runs_path.is_file() { Some(compare::load(dir)?) } else { None };
    let scenario = SavedScenario { path: dir.join("scenario.toml"), resolved: std::cell::OnceCell::new() };
    report.claims.iter().map(|c| evaluate_one(c, &summary, runs.as_ref(), metrics, &scenario)).collect()
}

/// The run's saved scenario.toml, resolved at most once per evaluation and only when a
/// claim about the theory's optima needs it.
struct SavedScenario {
    path: std::path::PathBuf,
    resolved: std::cell::OnceCell<Option<collapse_core::spec::ResolvedScenario>>,
}

impl SavedScenario {
    /// The resolved scenario, or None when the run has no scenario.toml.
    fn get(&self) -> Result<Option<&collapse_core::spec::ResolvedScenario>> {
        if let Some(s) = self.resolved.get() {
            return Ok(s.as_ref());
        }
        let loaded = match self.path.to_str().filter(|_| self.path.is_file()) {
            Some(path) => Some(crate::load_scenario(path, &[])?),
            None => None,
        };
        Ok(self.resolved.get_or_init(|| loaded).as_ref())
    }
}

fn evaluate_one(
    c: &Claim,
    summary: &DataFrame,
    runs: Option<&DataFrame>,
    metrics: &[String],
    scenario: &SavedScenario,
) -> Result<Verdict> {
    let metric = c.metric.clone().or_else(|| metrics.first().cloned()).unwrap_or_else(|| "risk".into());
    let verdict = |holds: Option<bool>, detail: String| Verdict { claim: c.claim.clone(), holds, detail };
    if !metrics.contains(&metric) {
        // E.g. a family kind narrowed by --set: the claim is about cells this run lacks.
        return Ok(verdict(None, format!("this run has no metric `{metric}`")));
    }
    let cells = series(summary, &metric, &c.selection)?;
    if cells.is_empty() {
        return Ok(verdict(Some(false), "no cell matches `where`".into()));
    }
    let at = |s: &BTreeMap<i64, (f64, f64, f64, f64)>| -> Option<(i64, (f64, f64, f64, f64))> {
        match c.iteration {
            Some(t) => s.get(&t).map(|v| (t, *v)),
            None => s.iter().next_back().map(|(t, v)| (*t, *v)),
        }
    };
    match c.check {
        CheckKind::Argmin => {
            let Some(runs) = runs else {
                return Ok(verdict(None, "needs runs.parquet (output.runs = all or final)".into()));
            };
            let param = c.param.as_deref().unwrap_or_default();
            let cmp = argmin_over(c, runs, param, &metric)?;
            let tol = c.tolerance.unwrap_or(0.0);
            let mut holds = !cmp.argmin.is_empty();
            let mut detail = String::new();
            for a in &cmp.argmin {
                // The expected argmin: given, or where the group's theory column is lowest.
                let expect = match (c.expect, c.against.as_deref()) {
                    (Some(e), _) => e,
                    (None, Some("theory")) => {
                        let predicted = a.cells.iter().filter_map(|(v, cell)| {
                            let theory = at(cells.get(cell)?)?.1.3;
                            theory.is_finite().then_some((*v, theory))
                        });
                        predicted.min_by(|x, y| x.1.total_cmp(&y.1)).map_or(f64::NAN, |(v, _)| v)
                    }
                    (None, _) => f64::NAN,
                };
                let ok = match c.within {
                    Some([lo, hi]) => a.low >= lo - 1e-12 && a.high <= hi + 1e-12,
                    None => expect >= a.low - tol - 1e-12 && expect <= a.high + tol + 1e-12,
                };
                holds &= ok;
                let group = if a.group.is_empty() { String::new() } else { format!("{}: ", a.group) };
                let shown =
                    if c.against.is_some() { format!(" (theory's argmin {})", short(expect)) } else { String::new() };
                let _ = write!(detail, "{group}{} [{}, {}]{shown}; ", short(a.best), short(a.low), short(a.high));
            }
            match (c.within, c.against.as_deref()) {
                (Some([lo, hi]), _) => {
                    let _ = write!(detail, "argmin of {param} (paired bootstrap 95% range) must lie in [{lo}, {hi}]");
                }
                (None, Some("theory")) => {
                    let _ = write!(
                        detail,
                        "argmin of {param} (paired bootstrap 95% range) must hold the theory's argmin{}",
                        if tol > 0.0 { format!(" ± {tol}") } else { String::new() }
                    );
                }
                (None, _) => {
                    let _ = write!(
                        detail,
                        "argmin of {param} (paired bootstrap 95% range), expected {}{}",
                        c.expect.map(short).unwrap_or_default(),
                        if tol > 0.0 { format!(" ± {tol}") } else { String::new() }
                    );
                }
            }
            Ok(verdict(Some(holds), detail))
        }
        CheckKind::ArgminTheory => {
            let Some(runs) = runs else {
                return Ok(verdict(None, "needs runs.parquet (output.runs = all or final)".into()));
            };
            let param = c.param.as_deref().unwrap_or_default();
            let cmp = argmin_over(c, runs, param, &metric)?;
            let tol = c.tolerance.unwrap_or(0.0);
            let Some(optima) = cell_optima(scenario, &c.selection, None)? else {
                return Ok(verdict(None, "needs the run's scenario.toml".into()));
            };
            let mut holds = !cmp.argmin.is_empty();
            let mut detail = String::new();
            for a in &cmp.argmin {
                let group = if a.group.is_empty() { String::new() } else { format!("{}: ", a.group) };
                let Some(expect) = a.cells.iter().find_map(|(_, cell)| optima.values.get(cell)) else {
                    holds = false;
                    let _ = write!(detail, "{group}no theory optimum; ");
                    continue;
                };
                let ok = *expect >= a.low - tol - 1e-12 && *expect <= a.high + tol + 1e-12;
                holds &= ok;
                let _ = write!(
                    detail,
                    "{group}argmin {param} = {} [{}, {}] vs theory {expect:.4}; ",
                    a.best, a.low, a.high
                );
            }
            if tol > 0.0 {
                let _ = write!(detail, "tolerance ± {tol}");
            }
            Ok(verdict(Some(holds), detail.trim_end_matches("; ").to_string()))
        }
        CheckKind::Grows => {
            let threshold = c.z.unwrap_or(4.0);
            let mut holds = true;
            let mut detail = String::new();
            for (cell, s) in &cells {
                let (Some((_, first)), Some((t, last))) = (s.get(&0).map(|v| (0, *v)), at(s)) else { continue };
                let z = (last.0 - first.0) / (last.1 * last.1 + first.1 * first.1).sqrt();
                holds &= z > threshold;
                let _ =
                    write!(detail, "cell {cell}: {:.4} at t = 0 → {:.4} at t = {t} (z = {z:+.1}); ", first.0, last.0);
            }
            Ok(verdict(Some(holds), detail.trim_end_matches("; ").to_string()))
        }
        CheckKind::Less | CheckKind::AtMost => {
            let Some(runs) = runs else {
                return Ok(verdict(None, "needs runs.parquet (output.runs = all or final)".into()));
            };
            let than = c.than.clone().unwrap_or_default();
            let pairs = pair_cells(summary, &c.selection, &than)?;
            if pairs.is_empty() {
                return Ok(verdict(Some(false), "no cell of `where` has a partner in `than`".into()));
            }
            let last = *cells.values().next().and_then(|s| s.keys().next_back()).unwrap_or(&0);
            let times: Vec<i64> = match (c.every_iteration, c.iteration) {
                (true, _) => cells.values().next().map(|s| s.keys().copied().collect()).unwrap_or_default(),
                (false, Some(t)) => vec![t],
                (false, None) => vec![last],
            };
            let when = match times.as_slice() {
                [t] => format!("at t = {t}"),
                _ => format!("at every t = {}..{}", times.first().unwrap_or(&0), times.last().unwrap_or(&0)),
            };
            let (cell, rep, it, val) =
                (f64s(runs, "cell")?, f64s(runs, "replicate")?, f64s(runs, "iteration")?, f64s(runs, &metric)?);
            let mut by: BTreeMap<(i64, i64, i64), f64> = BTreeMap::new();
            for i in 0..runs.height() {
                if times.contains(&(it[i] as i64)) {
                    by.insert((it[i] as i64, cell[i] as i64, rep[i] as i64), val[i]);
                }
            }
            let strict = c.check == CheckKind::Less;
            let threshold = c.z.unwrap_or(if strict { 3.0 } else { 2.0 });
            let mut holds = true;
            let mut worst = (f64::NEG_INFINITY, 0.0, 0.0);
            let mut parts = Vec::new();
            for (a, b, label) in &pairs {
                // The least favourable iteration of this pair: largest z.
                let mut pair_worst = (f64::NEG_INFINITY, 0.0, 0.0);
                for &t in &times {
                    let mut acc = collapse_core::results::Running::default();
                    for (_, v, w) in by
                        .range((t, *a, i64::MIN)..=(t, *a, i64::MAX))
                        .filter_map(|((_, _, r), v)| by.get(&(t, *b, *r)).map(|w| (r, v, w)))
                    {
                        acc.push(v - w);
                    }
                    let se = acc.se().unwrap_or(f64::NAN);
                    // Identical paired values (e.g. both cells at t = 0) differ by exactly 0.
                    let z = if acc.mean == 0.0 { 0.0 } else { acc.mean / se };
                    let ok = if strict { z < -threshold } else { z < threshold };
                    holds &= ok;
                    if z > pair_worst.0 || z.is_nan() {
                        pair_worst = (z, acc.mean, se);
                    }
                }
                if pair_worst.0 > worst.0 || pair_worst.0.is_nan() {
                    worst = pair_worst;
                }
                let prefix = if label.is_empty() { String::new() } else { format!("{label}: ") };
                parts.push(format!("{prefix}{:+.5} ± {:.5} (z = {:+.1})", pair_worst.1, pair_worst.2, pair_worst.0));
            }
            let need = if strict { format!("z < −{threshold}") } else { format!("z < {threshold}") };
            let largest = if times.len() > 1 { "largest " } else { "" };
            let detail = if parts.len() <= 4 {
                format!("{largest}paired difference {when}: {}; needs {need}", parts.join("; "))
            } else {
                format!(
                    "{} pairs {when}; largest paired difference {:+.5} ± {:.5} (z = {:+.1}); needs {need} in each",
                    parts.len(),
                    worst.1,
                    worst.2,
                    worst.0
                )
            };
            Ok(verdict(Some(holds), detail))
        }
        CheckKind::Near => {
            let column = c.column.clone().unwrap_or_else(|| format!("{metric}_mean"));
            let keep = select(summary, &c.selection)?;
            let values = f64s(summary, &column)
                .map_err(|_| crate::UserError::new(format!("report: `{column}` is not a column of summary.parquet")))?;
            let (cell, it) = (f64s(summary, "cell")?, f64s(summary, "iteration")?);
            let (expect, tol) = (c.expect.unwrap_or(f64::NAN), c.tolerance.unwrap_or(0.0));
            let mut worst: Option<f64> = None;
            for (cell_id, s) in &cells {
                let Some((t, _)) = at(s) else { continue };
                for i in (0..summary.height()).filter(|&i| keep[i] && cell[i] as i64 == *cell_id && it[i] as i64 == t) {
                    let v = values[i];
                    if worst.is_none_or(|w| (v - expect).abs() > (w - expect).abs() || v.is_nan()) {
                        worst = Some(v);
                    }
                }
            }
            let Some(w) = worst else { return Ok(verdict(Some(false), format!("no value of `{column}` selected"))) };
            Ok(verdict(
                Some((w - expect).abs() <= tol),
                format!(
                    "{column} = {w:.6} in {} cell{} (the farthest from {expect}; tolerance {tol})",
                    cells.len(),
                    if cells.len() == 1 { "" } else { "s" }
                ),
            ))
        }
        CheckKind::Increasing => {
            let mut holds = true;
            let mut detail = String::new();
            for (cell, s) in &cells {
                let means: Vec<f64> = s.values().map(|v| v.0).collect();
                let ok = means.len() >= 2 && means.windows(2).all(|w| w[1] > w[0]);
                holds &= ok;
                let (first, last) =
                    (means.first().copied().unwrap_or(f64::NAN), means.last().copied().unwrap_or(f64::NAN));
                let _ = write!(
                    detail,
                    "cell {cell}: {first:.4e} → {last:.4e}{}; ",
                    if ok { "" } else { " (not increasing)" }
                );
            }
            Ok(verdict(Some(holds), detail.trim_end_matches("; ").to_string()))
        }
        CheckKind::TheoryOptimum => theory_optimum(c, scenario),
        CheckKind::Linear => {
            let (zmin, r2min) = (c.z.unwrap_or(4.0), c.min_r2.unwrap_or(0.99));
            let mut holds = true;
            let mut detail = String::new();
            for (cell, s) in &cells {
                let pts: Vec<(f64, f64)> = s.iter().filter(|(t, _)| **t >= 1).map(|(t, v)| (*t as f64, v.0)).collect();
                let (slope, se, r2) = least_squares(&pts);
                let ok = slope / se > zmin && r2 >= r2min;
                holds &= ok;
                let _ = write!(detail, "cell {cell}: slope {slope:.4} ± {se:.4} per iteration, R² {r2:.4}; ");
            }
            Ok(verdict(Some(holds), detail.trim_end_matches("; ").to_string()))
        }
        CheckKind::Bounded => {
            let bound = c.bound.unwrap_or(f64::NAN);
            let exact = c.against.as_deref() == Some("exact");
            let value = |v: &(f64, f64, f64, f64)| if exact { v.2 } else { v.0 };
            let (mut holds, mut worst) = (true, f64::NEG_INFINITY);
            for s in cells.values() {
                let scale = if c.relative { s.get(&0).map_or(f64::NAN, value) } else { 1.0 };
                for v in s.values() {
                    // A missing value (NaN) fails the check rather than passing it.
                    holds &= value(v) <= bound * scale;
                    worst = worst.max(value(v) / scale);
                }
            }
            let what = if exact { "mean exact risk" } else { "mean" };
            let of = if c.relative { " relative to t = 0" } else { "" };
            Ok(verdict(Some(holds), format!("largest {what}{of} {worst:.5} (bound {bound})")))
        }
        CheckKind::Agrees => {
            let against = c.against.as_deref().unwrap_or("exact");
            let threshold = c.z.unwrap_or(4.0);
            let mut worst: f64 = 0.0;
            let mut n = 0;
            for s in cells.values() {
                let Some((_, (mean, se, exact, theory))) = at(s) else { continue };
                let reference = if against == "exact" { exact } else { theory };
                if reference.is_finite() && se > 0.0 {
                    worst = worst.max(((mean - reference) / se).abs());
                    n += 1;
                }
            }
            if n == 0 {
                return Ok(verdict(Some(false), format!("no cell has a {against} value")));
            }
            Ok(verdict(
                Some(worst < threshold),
                format!("largest |z| against {against} = {worst:.2} over {n} cells (needs < {threshold})"),
            ))
        }
        CheckKind::Slope => {
            let param = c.param.as_deref().unwrap_or_default();
            let keep = select(summary, &c.selection)?;
            let x = f64s(summary, param)
                .map_err(|_| crate::UserError::new(format!("report: `{param}` is not a column")))?;
            let cell = f64s(summary, "cell")?;
            let mut by_cell: BTreeMap<i64, f64> = BTreeMap::new();
            for i in (0..summary.height()).filter(|&i| keep[i]) {
                by_cell.insert(cell[i] as i64, x[i]);
            }
            let pts: Vec<(f64, f64)> = cells
                .iter()
                .filter_map(|(cell, s)| Some((by_cell.get(cell)?.ln(), at(s)?.1.0.ln())))
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .collect();
            let (slope, se, _) = least_squares(&pts);
            let theory: Vec<(f64, f64)> = cells
                .iter()
                .filter_map(|(cell, s)| Some((by_cell.get(cell)?.ln(), at(s)?.1.3.ln())))
                .filter(|(a, b)| a.is_finite() && b.is_finite())
                .collect();
            let beside = if theory.len() == pts.len() && theory.len() >= 2 {
                format!("; theory curve {:.3}", least_squares_slope(&theory))
            } else {
                String::new()
            };
            let (expect, tol) = (c.expect.unwrap_or(f64::NAN), c.tolerance.unwrap_or(0.0));
            Ok(verdict(
                Some((slope - expect).abs() <= tol),
                format!(
                    "log–log slope against {param} {slope:.3} ± {se:.3} over {} points{beside} (predicted rate {expect} ± {tol})",
                    pts.len()
                ),
            ))
        }
    }
}

/// The least-squares slope of y on x (any number of points ≥ 2).
fn least_squares_slope(pts: &[(f64, f64)]) -> f64 {
    let n = pts.len() as f64;
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    sxy / sxx
}

/// A number for a verdict: at most 4 decimals, no trailing zeros.
fn short(x: f64) -> String {
    crate::plot::data::format_number(x)
}

/// Cells selected by `selection`, each paired with the cell selected by `than` that has
/// the same values of every other parameter column: (cell, partner, label).
fn pair_cells(
    summary: &DataFrame,
    selection: &BTreeMap<String, Value>,
    than: &BTreeMap<String, Value>,
) -> Result<Vec<(i64, i64, String)>> {
    let (a, b) = (select(summary, selection)?, select(summary, than)?);
    let cell = f64s(summary, "cell")?;
    let names: Vec<String> = summary
        .get_column_names()
        .iter()
        .map(|s| s.to_string())
        .filter(|n| compare::is_parameter_column(n) && !selection.contains_key(n) && !than.contains_key(n))
        .collect();
    let columns: Vec<Vec<Value>> = names.iter().map(|n| column_values(summary, n)).collect::<Result<_>>()?;
    let varying: Vec<usize> = (0..names.len()).filter(|&j| columns[j].iter().any(|v| v != &columns[j][0])).collect();
    let key = |i: usize| -> String {
        let shown = |v: &Value| match v {
            Value::String(s) => s.clone(),
            other => other.as_f64().map(short).unwrap_or_else(|| other.to_string()),
        };
        varying
            .iter()
            .filter(|&&j| !columns[j][i].is_null())
            .map(|&j| format!("{}={}", names[j], shown(&columns[j][i])))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut partners: BTreeMap<String, i64> = BTreeMap::new();
    for i in (0..summary.height()).filter(|&i| b[i]) {
        partners.insert(key(i), cell[i] as i64);
    }
    let mut out: Vec<(i64, i64, String)> = Vec::new();
    for i in (0..summary.height()).filter(|&i| a[i]) {
        let k = key(i);
        if let Some(&p) = partners.get(&k)
            && !out.iter().any(|(c, ..)| *c == cell[i] as i64)
            && p != cell[i] as i64
        {
            out.push((cell[i] as i64, p, k));
        }
    }
    Ok(out)
}

/// `theory-optimum`: the optimal constant weight of each selected cell's theory.
fn theory_optimum(c: &Claim, scenario: &SavedScenario) -> Result<Verdict> {
    let verdict = |holds: Option<bool>, detail: String| Verdict { claim: c.claim.clone(), holds, detail };
    let Some(optima) = cell_optima(scenario, &c.selection, c.lambda)? else {
        return Ok(verdict(None, "needs the run's scenario.toml".into()));
    };
    let values: Vec<f64> = optima.values.values().copied().collect();
    if values.is_empty() {
        let why: Vec<String> = optima.reasons.into_iter().collect();
        return Ok(verdict(Some(false), format!("no selected cell has a theory optimum ({})", why.join("; "))));
    }
    let (lo, hi) = values.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &v| (a.min(v), b.max(v)));
    let at = c.lambda.map(|l| format!(" at λ = {l}")).unwrap_or_default();
    let range = if hi - lo < 5e-7 { format!("{lo:.6}") } else { format!("{lo:.6} to {hi:.6}") };
    let (holds, need) = match (c.within, c.expect) {
        (Some([a, b]), _) => (lo >= a && hi <= b, format!("in [{a}, {b}]")),
        (None, Some(e)) => {
            let tol = c.tolerance.unwrap_or(0.0);
            ((lo - e).abs() <= tol && (hi - e).abs() <= tol, format!("expected {e} ± {tol}"))
        }
        (None, None) => (false, "nothing to compare with".into()),
    };
    Ok(verdict(Some(holds), format!("theory w*{at} = {range} over {} cells; {need}", values.len())))
}

/// The paired comparison along `param` of the runs `c` selects (argmin with bootstrap).
fn argmin_over(c: &Claim, runs: &DataFrame, param: &str, metric: &str) -> Result<compare::Comparison> {
    let keep = select(runs, &c.selection)?;
    let mask: polars::prelude::BooleanChunked = keep.iter().map(|&k| Some(k)).collect();
    let rows = runs.filter(&mask)?;
    compare::compare(&rows, param, Some(metric), c.iteration, 2000)
}

/// The theory's optimal constant weight of each selected cell (by cell index), and why
/// the other selected cells have none.
struct CellOptima {
    values: BTreeMap<i64, f64>,
    reasons: std::collections::BTreeSet<String>,
}

/// The optimal weights of the cells of the run's `scenario` (its saved scenario.toml)
/// that `selection` selects, at ridge penalty `lambda` when given; `None` without the file.
fn cell_optima(
    scenario: &SavedScenario,
    selection: &BTreeMap<String, Value>,
    lambda: Option<f64>,
) -> Result<Option<CellOptima>> {
    let Some(s) = scenario.get()? else {
        return Ok(None);
    };
    let mut out = CellOptima { values: BTreeMap::new(), reasons: std::collections::BTreeSet::new() };
    for cell in &s.cells {
        let selected = selection.iter().all(|(column, wanted)| {
            let v = cell.column(column).map(|p| match p {
                collapse_core::spec::ParamValue::Int(i) => Value::from(*i),
                collapse_core::spec::ParamValue::Float(x) => Value::from(*x),
                collapse_core::spec::ParamValue::Bool(b) => Value::from(*b),
                collapse_core::spec::ParamValue::Str(t) => Value::from(t.clone()),
                collapse_core::spec::ParamValue::Null => Value::Null,
            });
            v.is_some_and(|v| same(&v, wanted))
        });
        if !selected {
            continue;
        }
        let theory = cell.plugins.protocol.theory(&cell.view());
        let optimum = theory.and_then(|t| match lambda {
            Some(l) => t.at_penalty(l)?.optimal_weight(),
            None => t.optimal_weight(),
        });
        match optimum {
            Ok((w, _)) => {
                out.values.insert(cell.index as i64, w);
            }
            Err(e) => {
                out.reasons.insert(e.0);
            }
        }
    }
    Ok(Some(out))
}

/// Least squares y = a + b x: (b, se(b), R²).
fn least_squares(pts: &[(f64, f64)]) -> (f64, f64, f64) {
    let n = pts.len() as f64;
    if pts.len() < 3 {
        return (f64::NAN, f64::NAN, f64::NAN);
    }
    let (mx, my) = (pts.iter().map(|p| p.0).sum::<f64>() / n, pts.iter().map(|p| p.1).sum::<f64>() / n);
    let sxx: f64 = pts.iter().map(|p| (p.0 - mx).powi(2)).sum();
    let sxy: f64 = pts.iter().map(|p| (p.0 - mx) * (p.1 - my)).sum();
    let syy: f64 = pts.iter().map(|p| (p.1 - my).powi(2)).sum();
    let b = sxy / sxx;
    let resid: f64 = pts.iter().map(|p| (p.1 - my - b * (p.0 - mx)).powi(2)).sum();
    let se = (resid / (n - 2.0) / sxx).sqrt();
    let r2 = if syy > 0.0 { 1.0 - resid / syy } else { 1.0 };
    (b, se, r2)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn least_squares_recovers_a_line() {
        let pts: Vec<(f64, f64)> = (0..10).map(|i| (i as f64, 2.0 + 0.5 * i as f64)).collect();
        let (b, se, r2) = least_squares(&pts);
        assert!((b - 0.5).abs() < 1e-12 && se < 1e-10 && (r2 - 1.0).abs() < 1e-12);
    }

    #[test]
    fn booleans_match_their_text_form() {
        assert!(same(&Value::Bool(true), &Value::from("true")));
        assert!(!same(&Value::from("false"), &Value::Bool(true)));
        assert!(same(&Value::from(3200), &Value::from(3200.0)));
    }

    #[test]
    fn at_most_needs_a_comparison_cell() {
        let t: toml::Value =
            toml::from_str("[[claims]]\nclaim = \"x\"\ncheck = \"at-most\"\nevery_iteration = true\n").unwrap();
        let e = parse_report(Some(&t)).unwrap_err().to_string();
        assert!(e.contains("report.claims[0].than"), "{e}");
        let t: toml::Value = toml::from_str("[[claims]]\nclaim = \"x\"\ncheck = \"increasing\"\n").unwrap();
        assert_eq!(parse_report(Some(&t)).unwrap().claims[0].check, CheckKind::Increasing);
    }

    #[test]
    fn report_fields_are_checked_per_kind() {
        let t: toml::Value = toml::from_str("[[claims]]\nclaim = \"x\"\ncheck = \"argmin\"\nexpect = 0.6\n").unwrap();
        let e = parse_report(Some(&t)).unwrap_err().to_string();
        assert!(e.contains("report.claims[0].param") && e.contains("missing"), "{e}");
        let t: toml::Value = toml::from_str("[[claims]]\nclaim = \"x\"\ncheck = \"argmax\"\n").unwrap();
        let e = parse_report(Some(&t)).unwrap_err().to_string();
        assert!(e.contains("report.claims[0].check"), "{e}");
        let t: toml::Value = toml::from_str("[[claims]]\nclaim = \"x\"\ncheck = \"bounded\"\nbound = 2.0\n").unwrap();
        assert_eq!(parse_report(Some(&t)).unwrap().claims.len(), 1);
    }
}
