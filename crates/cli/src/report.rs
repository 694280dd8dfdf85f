//! Terminal reports: the final-iteration table and the best weight of a w sweep.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use collapse_core::results::{Summary, predicted};
use collapse_core::spec::ResolvedScenario;
use collapse_core::{NoTheory, Path};
use serde_json::Value;

/// A number for a table: up to four decimals, or scientific when that would hide it.
pub fn number(f: f64) -> String {
    let a = f.abs();
    if a != 0.0 && !(1e-4..1e6).contains(&a) {
        format!("{f:.3e}")
    } else {
        format!("{f:.4}").trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

fn render(v: &Value) -> String {
    match v {
        Value::Number(x) => match x.as_f64() {
            Some(f) if x.is_f64() => number(f),
            _ => x.to_string(),
        },
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn fmt_opt(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map(|v| format!("{v:.5}")).unwrap_or_else(|| "-".into())
}

/// The table printed after a run: per cell, at its final iteration, each metric's mean
/// with its standard error, beside the exact conditional expectation (with the z-score
/// of the difference) and the theory prediction.
pub fn final_table(s: &ResolvedScenario, summary: &Summary, theory: &[Vec<Result<Path, NoTheory>>]) -> String {
    let metrics = s.metric_names();
    let mut headers: Vec<String> = vec!["cell".into()];
    headers.extend(s.axes.iter().map(|a| a.column()));
    for (m, exact) in &metrics {
        headers.push(format!("{m} ± se"));
        if *exact {
            headers.push(format!("{m}_exact"));
        }
        headers.push(format!("{m}_theory"));
        if *exact {
            headers.push("z_exact".into());
        }
    }
    let mut rows: Vec<Vec<String>> = Vec::new();
    for cell in &s.cells {
        let t = cell.iterations;
        let mut row = vec![cell.index.to_string()];
        row.extend(cell.coordinates.iter().map(render));
        for (m, exact) in &metrics {
            let stats = summary.metric(cell, t, m);
            row.push(match stats {
                Some(x) => format!("{:.5} ± {}", x.mean, x.se.map(|v| format!("{v:.5}")).unwrap_or("-".into())),
                None => "-".into(),
            });
            if *exact {
                row.push(fmt_opt(stats.and_then(|x| x.exact_mean)));
            }
            row.push(fmt_opt(predicted(cell, &theory[cell.index], t, m)));
            if *exact {
                row.push(stats.and_then(|x| x.z_exact()).map(|z| format!("{z:+.2}")).unwrap_or("-".into()));
            }
        }
        rows.push(row);
    }
    let widths: Vec<usize> = (0..headers.len())
        .map(|j| rows.iter().map(|r| r[j].chars().count()).chain([headers[j].chars().count()]).max().unwrap_or(0))
        .collect();
    let mut out = String::new();
    let line = |cells: &[String], out: &mut String| {
        let parts: Vec<String> = cells.iter().zip(&widths).map(|(c, w)| format!("{c:>w$}")).collect();
        let _ = writeln!(out, "{}", parts.join("  "));
    };
    let _ = writeln!(out, "final iteration t = {} ({} replicates per cell)", s.iterations, s.replicates);
    line(&headers, &mut out);
    for r in &rows {
        line(r, &mut out);
    }
    out
}

/// Where the scenario sweeps `schedule.w`: for each combination of the other swept
/// parameters, the w with the lowest final mean of the first metric.
pub fn best_w(s: &ResolvedScenario, summary: &Summary) -> Option<String> {
    let w_axis = s.axes.iter().position(|a| a.section == "schedule" && a.key == "w")?;
    let (metric, _) = s.metric_names().into_iter().next()?;
    // Groups in order of first appearance; the index map keeps this linear in cells.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for cell in &s.cells {
        let label: Vec<String> = s
            .axes
            .iter()
            .zip(&cell.coordinates)
            .enumerate()
            .filter(|(j, (_, v))| *j != w_axis && !v.is_null())
            .map(|(_, (a, v))| format!("{} = {}", a.column(), render(v)))
            .collect();
        let label = label.join(", ");
        match index.get(&label) {
            Some(&g) => groups[g].1.push(cell.index),
            None => {
                index.insert(label.clone(), groups.len());
                groups.push((label, vec![cell.index]));
            }
        }
    }
    let final_mean = |c: usize| {
        let cell = &s.cells[c];
        summary.metric(cell, cell.iterations, &metric).map(|x| x.mean).unwrap_or(f64::INFINITY)
    };
    let mut out = String::new();
    for (label, members) in groups {
        let best = members.iter().copied().min_by(|&a, &b| final_mean(a).total_cmp(&final_mean(b)))?;
        let cell = &s.cells[best];
        let row = summary.metric(cell, cell.iterations, &metric)?;
        let prefix = if label.is_empty() { String::new() } else { format!("{label}: ") };
        let _ = writeln!(
            out,
            "{prefix}best schedule.w = {} (final {metric} {:.5} ± {})",
            render(&cell.coordinates[w_axis]),
            row.mean,
            row.se.map(|x| format!("{x:.5}")).unwrap_or("-".into())
        );
    }
    Some(out)
}

/// Distinct reasons why (cell, metric) pairs have no theory prediction, with how many
/// pairs each; and the number of pairs.
pub fn theory_gaps(s: &ResolvedScenario, theory: &[Vec<Result<Path, NoTheory>>]) -> (BTreeMap<String, usize>, usize) {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    let mut total = 0;
    for (cell, preds) in s.cells.iter().zip(theory) {
        for (m, p) in cell.plan.metrics.iter().zip(preds) {
            total += 1;
            if let Err(r) = p {
                *reasons.entry(format!("{}: {r}", m.metric.name)).or_default() += 1;
            }
        }
    }
    (reasons, total)
}

/// Notes for the cells without a theory prediction: each distinct reason with how many
/// (cell, metric) pairs it covers, so a null in `<metric>_theory` is never silent.
pub fn theory_notes(s: &ResolvedScenario, theory: &[Vec<Result<Path, NoTheory>>]) -> String {
    let (reasons, total) = theory_gaps(s, theory);
    let mut out = String::new();
    for (text, n) in reasons {
        let _ = writeln!(out, "note: no theory for {n} of {total} (cell, metric) pairs ({text})");
    }
    out
}
