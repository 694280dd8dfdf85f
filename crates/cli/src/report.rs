//! Terminal reports: the final-iteration table and the best weight of a w sweep.

use std::fmt::Write as _;

use collapse_core::engine::SummaryRow;
use collapse_core::spec::ResolvedScenario;
use serde_json::Value;

fn render(v: &Value) -> String {
    match v {
        Value::Number(x) => match x.as_f64() {
            Some(f) if x.is_f64() => format!("{f:.4}").trim_end_matches('0').trim_end_matches('.').to_string(),
            _ => x.to_string(),
        },
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn fmt_opt(x: Option<f64>) -> String {
    x.filter(|v| v.is_finite()).map(|v| format!("{v:.5}")).unwrap_or_else(|| "-".into())
}

/// The table printed after a run: per cell, the final-iteration mean risk with its
/// standard error, beside the exact conditional risk and the theory prediction.
pub fn final_table(s: &ResolvedScenario, stats: &[Vec<SummaryRow>], theory: &[Option<Vec<f64>>]) -> String {
    let mut headers: Vec<String> = vec!["cell".into()];
    headers.extend(s.axes.iter().map(|a| a.column()));
    headers.extend(["risk_mean ± se".into(), "risk_exact_mean".into(), "risk_theory".into(), "z_exact".into()]);
    let mut rows: Vec<Vec<String>> = Vec::new();
    for (c, cell) in s.cells.iter().enumerate() {
        let Some(last) = stats[c].last() else { continue };
        let t = stats[c].len() - 1;
        let mut row = vec![c.to_string()];
        row.extend(cell.coordinates.iter().map(render));
        row.push(format!("{:.5} ± {}", last.risk_mean, last.risk_se.map(|x| format!("{x:.5}")).unwrap_or("-".into())));
        row.push(fmt_opt(last.risk_exact_mean));
        row.push(fmt_opt(theory.get(c).and_then(|v| v.as_ref()).and_then(|v| v.get(t).copied())));
        row.push(last.z_exact().map(|z| format!("{z:+.2}")).unwrap_or("-".into()));
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
/// parameters, the w with the lowest final mean risk.
pub fn best_w(s: &ResolvedScenario, stats: &[Vec<SummaryRow>]) -> Option<String> {
    let w_axis = s.axes.iter().position(|a| a.section == "schedule" && a.key == "w")?;
    // Groups in order of first appearance; the index map keeps this linear in cells.
    let mut groups: Vec<(String, Vec<usize>)> = Vec::new();
    let mut index: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (c, cell) in s.cells.iter().enumerate() {
        let label: Vec<String> = s
            .axes
            .iter()
            .zip(&cell.coordinates)
            .enumerate()
            .filter(|(j, _)| *j != w_axis)
            .map(|(_, (a, v))| format!("{} = {}", a.column(), render(v)))
            .collect();
        let label = label.join(", ");
        match index.get(&label) {
            Some(&g) => groups[g].1.push(c),
            None => {
                index.insert(label.clone(), groups.len());
                groups.push((label, vec![c]));
            }
        }
    }
    let mut out = String::new();
    for (label, members) in groups {
        let best = members.iter().copied().min_by(|&a, &b| {
            let ra = stats[a].last().map(|r| r.risk_mean).unwrap_or(f64::INFINITY);
            let rb = stats[b].last().map(|r| r.risk_mean).unwrap_or(f64::INFINITY);
            ra.total_cmp(&rb)
        })?;
        let row = stats[best].last()?;
        let prefix = if label.is_empty() { String::new() } else { format!("{label}: ") };
        let _ = writeln!(
            out,
            "{prefix}best schedule.w = {} (final risk {:.5} ± {})",
            render(&s.cells[best].coordinates[w_axis]),
            row.risk_mean,
            row.risk_se.map(|x| format!("{x:.5}")).unwrap_or("-".into())
        );
    }
    Some(out)
}
