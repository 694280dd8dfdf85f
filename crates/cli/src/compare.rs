//! `collapse compare DIR --param schedule.w`: paired comparisons of cells along one swept
//! parameter, from a run's `runs.parquet`.
//!
//! For each combination of the other swept parameters, cells are ordered by the
//! parameter's value. For neighbouring values a < b, the paired difference of the
//! final-iteration risk, d_r = risk(b)_r − risk(a)_r over replicates r, is reported with
//! its paired standard error sd(d)/√R. With common random numbers, replicate r of both
//! cells saw the same design, signal and noise, so the pairing removes most of the
//! variance; without them the same formula is simply the unpaired standard error. The
//! argmin of the mean risk comes with a bootstrap over replicates (resampling whole
//! replicates, which keeps the pairing): how often each value wins, and the 2.5%–97.5%
//! range of the winning value.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::{Context, Result};
use collapse_core::results::Running;
use collapse_core::rng::{Purpose, Streams};
use polars::prelude::{AnyValue, DataFrame};
use rand::RngExt as _;

use crate::UserError;

/// One paired comparison between neighbouring values.
#[derive(Debug, Clone, PartialEq)]
pub struct PairedStep {
    /// Label of the other swept parameters.
    pub group: String,
    /// Lower value of the parameter.
    pub from: f64,
    /// Upper value.
    pub to: f64,
    /// Mean of risk(to) − risk(from) over replicates.
    pub mean: f64,
    /// Paired standard error of that mean.
    pub se: f64,
}

/// The argmin of one group with its bootstrap distribution.
#[derive(Debug, Clone, PartialEq)]
pub struct Argmin {
    /// Label of the other swept parameters.
    pub group: String,
    /// Value with the lowest mean risk.
    pub best: f64,
    /// Share of bootstrap resamples each value wins, per value.
    pub wins: Vec<(f64, f64)>,
    /// 2.5% quantile of the bootstrap argmin.
    pub low: f64,
    /// 97.5% quantile of the bootstrap argmin.
    pub high: f64,
    /// The group's cells: (value of the parameter, cell index), ascending in the value.
    pub cells: Vec<(f64, i64)>,
}

/// The result of a comparison.
#[derive(Debug, Clone, Default)]
pub struct Comparison {
    /// The compared metric column.
    pub metric: String,
    /// Neighbouring-value differences.
    pub steps: Vec<PairedStep>,
    /// The argmin per group.
    pub argmin: Vec<Argmin>,
}

fn cell_value_string(v: AnyValue<'_>) -> String {
    match v {
        AnyValue::String(s) => s.to_string(),
        AnyValue::StringOwned(s) => s.to_string(),
        AnyValue::Null => "null".into(),
        other => other.to_string(),
    }
}

/// Whether a runs.parquet column is a parameter (`section.key` or a section's plugin
/// name) rather than an index or a metric.
pub fn is_parameter_column(name: &str) -> bool {
    name.contains('.') || collapse_core::Section::parse(name).is_some()
}

/// The metric columns of a runs table (not indices, weights, exact twins or parameters).
pub fn metric_columns(runs: &DataFrame) -> Vec<String> {
    runs.get_column_names()
        .iter()
        .map(|s| s.to_string())
        .filter(|n| {
            !is_parameter_column(n)
                && !["cell", "replicate", "iteration", "w"].contains(&n.as_str())
                && !n.ends_with("_exact")
        })
        .collect()
}

/// Compare `metric` along `param` at `iteration` (default: the last).
pub fn compare(
    runs: &DataFrame,
    param: &str,
    metric: Option<&str>,
    iteration: Option<i64>,
    bootstrap: usize,
) -> Result<Comparison> {
    let col = |name: &str| runs.column(name).with_context(|| format!("runs.parquet has no column `{name}`"));
    let names: Vec<String> = runs.get_column_names().iter().map(|s| s.to_string()).collect();
    let metrics = metric_columns(runs);
    let metric = match metric {
        Some(m) if metrics.iter().any(|x| x == m) => m.to_string(),
        Some(m) => {
            return Err(UserError::new(format!(
                "--metric: `{m}` is not a metric of runs.parquet; metrics: {}",
                metrics.join(", ")
            ))
            .into());
        }
        None => metrics.first().cloned().ok_or_else(|| UserError::new("runs.parquet has no metric column"))?,
    };
    if !names.iter().any(|n| n == param) {
        let params: Vec<&String> = names.iter().filter(|n| n.contains('.')).collect();
        return Err(UserError::new(format!(
            "--param: `{param}` is not a column of runs.parquet; parameter columns: {}",
            params.iter().map(|s| s.as_str()).collect::<Vec<_>>().join(", ")
        ))
        .into());
    }
    let cells: Vec<i64> = col("cell")?.i64()?.to_vec().into_iter().map(|x| x.unwrap_or(-1)).collect();
    let reps: Vec<i64> = col("replicate")?.i64()?.to_vec().into_iter().map(|x| x.unwrap_or(-1)).collect();
    let iters: Vec<i64> = col("iteration")?.i64()?.to_vec().into_iter().map(|x| x.unwrap_or(-1)).collect();
    let risk: Vec<f64> = col(&metric)?.f64()?.to_vec().into_iter().map(|x| x.unwrap_or(f64::NAN)).collect();
    let param_col = col(param)?.cast(&polars::prelude::DataType::Float64).map_err(|_| {
        UserError::new(format!("--param: `{param}` is not numeric; compare needs a numeric swept parameter"))
    })?;
    let values: Vec<f64> = param_col.f64()?.to_vec().into_iter().map(|x| x.unwrap_or(f64::NAN)).collect();
    let t = iteration.unwrap_or_else(|| iters.iter().copied().max().unwrap_or(0));

    // Other parameter columns that vary across cells define the groups.
    let mut other: Vec<String> = Vec::new();
    for n in &names {
        if !is_parameter_column(n) || n == param {
            continue;
        }
        let c = col(n)?;
        if c.n_unique()? > 1 {
            other.push(n.clone());
        }
    }
    // cell -> (group label, value); (cell, replicate) -> final risk
    let mut cell_info: BTreeMap<i64, (String, f64)> = BTreeMap::new();
    let mut final_risk: BTreeMap<(i64, i64), f64> = BTreeMap::new();
    for i in 0..runs.height() {
        // Cells without the parameter (another kind of a kind sweep) are not compared.
        if iters[i] != t || risk[i].is_nan() || values[i].is_nan() {
            continue;
        }
        final_risk.insert((cells[i], reps[i]), risk[i]);
        if let std::collections::btree_map::Entry::Vacant(e) = cell_info.entry(cells[i]) {
            let mut label = Vec::new();
            for n in &other {
                label.push(format!("{n}={}", cell_value_string(col(n)?.get(i)?)));
            }
            e.insert((label.join(", "), values[i]));
        }
    }
    if final_risk.is_empty() {
        return Err(UserError::new(format!("--iteration: no rows at iteration {t}")).into());
    }
    let replicates: Vec<i64> = {
        let mut r: Vec<i64> = final_risk.keys().map(|(_, r)| *r).collect();
        r.sort_unstable();
        r.dedup();
        r
    };
    let mut groups: BTreeMap<String, Vec<(f64, i64)>> = BTreeMap::new();
    for (cell, (label, v)) in &cell_info {
        groups.entry(label.clone()).or_default().push((*v, *cell));
    }
    let mut out = Comparison { metric: metric.clone(), ..Comparison::default() };
    for (g, (label, mut members)) in groups.into_iter().enumerate() {
        members.sort_by(|a, b| a.0.total_cmp(&b.0));
        let series: Vec<Vec<f64>> = members
            .iter()
            .map(|(_, c)| replicates.iter().map(|r| final_risk.get(&(*c, *r)).copied().unwrap_or(f64::NAN)).collect())
            .collect();
        for k in 1..members.len() {
            let d: Vec<f64> = series[k].iter().zip(&series[k - 1]).map(|(b, a)| b - a).collect();
            let mut acc = Running::default();
            d.iter().for_each(|&x| acc.push(x));
            let (mean, se) = (acc.mean, acc.se());
            out.steps.push(PairedStep {
                group: label.clone(),
                from: members[k - 1].0,
                to: members[k].0,
                mean,
                se: se.unwrap_or(f64::NAN),
            });
        }
        let argmin_of = |idx: &[usize]| -> usize {
            let means: Vec<f64> = series.iter().map(|s| idx.iter().map(|&i| s[i]).sum::<f64>()).collect();
            means.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k).unwrap_or(0)
        };
        let all: Vec<usize> = (0..replicates.len()).collect();
        let best = argmin_of(&all);
        // Deterministic bootstrap: its own stream, keyed by the group's position.
        let mut rng = Streams::new(0xB007, g as u64, 0).rng(Purpose::Plugin(1), 0);
        let mut wins = vec![0usize; members.len()];
        let mut winners = Vec::with_capacity(bootstrap);
        let mut idx = vec![0usize; replicates.len()];
        for _ in 0..bootstrap {
            for slot in idx.iter_mut() {
                *slot = rng.random_range(0..replicates.len());
            }
            let k = argmin_of(&idx);
            wins[k] += 1;
            winners.push(members[k].0);
        }
        winners.sort_by(f64::total_cmp);
        let q = |p: f64| -> f64 {
            if winners.is_empty() {
                f64::NAN
            } else {
                winners[((p * (winners.len() - 1) as f64).round() as usize).min(winners.len() - 1)]
            }
        };
        let shares = members.iter().zip(&wins).map(|((v, _), &n)| (*v, n as f64 / bootstrap.max(1) as f64)).collect();
        out.argmin.push(Argmin {
            group: label,
            best: members[best].0,
            wins: shares,
            low: q(0.025),
            high: q(0.975),
            cells: members.clone(),
        });
    }
    Ok(out)
}

/// Render a comparison as text.
pub fn render(c: &Comparison, param: &str) -> String {
    let metric = &c.metric;
    let mut s = String::new();
    let mut current = None;
    for step in &c.steps {
        if current != Some(&step.group) {
            let _ = writeln!(s, "{}", if step.group.is_empty() { "all cells:" } else { &step.group });
            let _ = writeln!(
                s,
                "  {:>10} → {:<10} {:>14} {:>12} {:>8}",
                param,
                param,
                format!("Δ {metric}"),
                "paired se",
                "z"
            );
            current = Some(&step.group);
        }
        let _ = writeln!(
            s,
            "  {:>10} → {:<10} {:>+14.6} {:>12.6} {:>+8.2}",
            step.from,
            step.to,
            step.mean,
            step.se,
            step.mean / step.se
        );
    }
    for Argmin { group: label, best, wins: shares, low: lo, high: hi, .. } in &c.argmin {
        let prefix = if label.is_empty() { String::new() } else { format!("{label}: ") };
        let top: Vec<String> =
            shares.iter().filter(|(_, p)| *p > 0.0).map(|(v, p)| format!("{v}: {:.0}%", 100.0 * p)).collect();
        let _ =
            writeln!(s, "{prefix}argmin {param} = {best}; bootstrap 95% range [{lo}, {hi}]; wins: {}", top.join(", "));
    }
    s
}

/// The argmin along `param` at every iteration of the runs table, one block per
/// iteration (e.g. the best downstream λ per generation of a chain).
pub fn render_every_iteration(runs: &DataFrame, param: &str, metric: Option<&str>, bootstrap: usize) -> Result<String> {
    let iters = runs.column("iteration").context("runs.parquet has no column `iteration`")?.i64()?.to_vec();
    let mut ts: Vec<i64> = iters.into_iter().flatten().collect();
    ts.sort_unstable();
    ts.dedup();
    let mut s = String::new();
    for t in ts {
        let c = compare(runs, param, metric, Some(t), bootstrap)?;
        for Argmin { group, best, low, high, .. } in &c.argmin {
            let prefix = if group.is_empty() { String::new() } else { format!("{group}: ") };
            let _ = writeln!(s, "iteration {t}: {prefix}argmin {param} = {best}; bootstrap 95% range [{low}, {high}]");
        }
    }
    Ok(s)
}

/// Load `runs.parquet` from a results directory.
pub fn load(dir: &Path) -> Result<DataFrame> {
    let path = dir.join("runs.parquet");
    if !path.is_file() {
        return Err(UserError::new(format!(
            "`{}` has no runs.parquet (run `collapse run … --out {}` first)",
            dir.display(),
            dir.display()
        ))
        .into());
    }
    let mut df = crate::output::read_parquet(&path)?;
    // Text parameter columns are categorical in runs.parquet; compare labels them as text.
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    for name in names {
        let column = df.column(&name)?;
        if column.dtype().is_categorical() || column.dtype().is_enum() {
            let text = column.cast(&polars::prelude::DataType::String)?;
            df.with_column(text)?;
        }
    }
    Ok(df)
}
