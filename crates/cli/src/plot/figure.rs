//! From a figure's specification and a run's summary to what is drawn: panels of series
//! of points (mean ± 2 SE, exact mean) with their theory lines; and the default figures
//! of any run.

use std::collections::BTreeMap;

use anyhow::Result;

use super::data::{Level, SummaryData};
use super::labels;
use super::spec::{Columns, FigureSpec};
use super::theory::DenseTheory;
use crate::UserError;

/// One simulated value: the mean with its ±2 SE bar, and the exact conditional mean.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Point {
    /// x.
    pub x: f64,
    /// Mean over replicates.
    pub mean: f64,
    /// Lower end of the bar (mean − 2 SE), if there is a standard error.
    pub low: Option<f64>,
    /// Upper end of the bar.
    pub high: Option<f64>,
    /// Mean of the exact conditional expectation.
    pub exact: Option<f64>,
}

/// One series of a panel.
#[derive(Debug, Clone, PartialEq)]
pub struct Series {
    /// Index into [`Figure::legend`] (which also fixes the colour).
    pub key: usize,
    /// Simulated points, by increasing x.
    pub points: Vec<Point>,
    /// The theory line, by increasing x.
    pub theory: Vec<(f64, f64)>,
}

/// One panel: the cells sharing a value of the facet parameters.
#[derive(Debug, Clone, PartialEq)]
pub struct Panel {
    /// "p = 300" (empty without facets).
    pub title: String,
    /// Its series.
    pub series: Vec<Series>,
}

/// A figure ready to draw.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// File stem.
    pub name: String,
    /// Title.
    pub title: String,
    /// Axis labels.
    pub x_label: String,
    /// Axis labels.
    pub y_label: String,
    /// Logarithmic axes.
    pub log_x: bool,
    /// Logarithmic axes.
    pub log_y: bool,
    /// Series labels, in colour order.
    pub legend: Vec<String>,
    /// Panels.
    pub panels: Vec<Panel>,
    /// Whether exact means are drawn (some point has one).
    pub has_exact: bool,
    /// Whether a theory line is drawn (some series has one).
    pub has_theory: bool,
    /// Whether the theory lines were recomputed on a dense grid of x.
    pub dense_theory: bool,
    /// Remarks (points left out of a log axis).
    pub notes: Vec<String>,
    /// Caption for the report.
    pub caption: Option<String>,
}

impl Figure {
    /// Simulated points over all panels and series.
    pub fn points(&self) -> usize {
        self.panels.iter().flat_map(|p| &p.series).map(|s| s.points.len()).sum()
    }

    /// Exact means drawn.
    pub fn exact_points(&self) -> usize {
        self.panels.iter().flat_map(|p| &p.series).flat_map(|s| &s.points).filter(|p| p.exact.is_some()).count()
    }

    /// Theory lines drawn (series with at least two theory points).
    pub fn theory_lines(&self) -> usize {
        self.panels.iter().flat_map(|p| &p.series).filter(|s| s.theory.len() >= 2).count()
    }

    /// Series over all panels.
    pub fn series(&self) -> usize {
        self.panels.iter().map(|p| p.series.len()).sum()
    }
}

fn unknown_column(what: &str, name: &str, known: &[String]) -> anyhow::Error {
    UserError::new(format!(
        "{what}: `{name}` is not a column of summary.parquet; parameter columns: {}",
        known.join(", ")
    ))
    .into()
}

/// The label of a key: "λ = 0.1, p = 300".
fn key_label(columns: &[String], key: &[Level]) -> String {
    let parts: Vec<String> =
        columns.iter().zip(key).map(|(c, v)| format!("{} = {}", labels::symbol(c), v.render())).collect();
    parts.join(", ")
}

/// Build the figure `spec` from `data`; `theory` recomputes dense theory curves where the
/// scenario allows it.
pub fn build(spec: &FigureSpec, index: usize, data: &SummaryData, theory: Option<&DenseTheory>) -> Result<Figure> {
    let known = data.param_names();
    let metric = match &spec.y {
        Some(y) if data.metrics.contains(y) => y.clone(),
        Some(y) => {
            return Err(UserError::new(format!(
                "y: `{y}` is not a metric of summary.parquet; metrics: {}",
                data.metrics.join(", ")
            ))
            .into());
        }
        None => data.metrics.first().cloned().ok_or_else(|| UserError::new("summary.parquet has no metric column"))?,
    };
    let by_iteration = spec.x == "iteration";
    if !by_iteration {
        match data.param(&spec.x) {
            None => return Err(unknown_column("x", &spec.x, &known)),
            Some(p) if !p.numeric => {
                return Err(UserError::new(format!(
                    "x: `{}` is not numeric; x must be `iteration` or one of {}",
                    spec.x,
                    data.numeric_params().join(", ")
                ))
                .into());
            }
            Some(_) => {}
        }
    }
    for (what, columns) in [("colour", spec.colour_columns()), ("facet", spec.facet_columns())] {
        if let Some(c) = columns.iter().find(|c| data.param(c).is_none()) {
            return Err(unknown_column(what, c, &known));
        }
    }
    if let Some(c) = spec.selection.keys().find(|c| data.param(c).is_none()) {
        return Err(unknown_column("where", c, &known));
    }
    let mean = data.number(&format!("{metric}_mean")).unwrap_or_default();
    let nan = vec![f64::NAN; data.rows];
    let se = data.number(&format!("{metric}_se")).unwrap_or(&nan);
    let exact = data.number(&format!("{metric}_exact_mean")).unwrap_or(&nan);
    let predicted = data.number(&format!("{metric}_theory")).unwrap_or(&nan);

    // Rows shown: selected cells, at every iteration or at the chosen one.
    let last = data.last_iteration();
    let rows: Vec<usize> = (0..data.rows)
        .filter(|&i| {
            spec.selection.iter().all(|(c, want)| data.param(c).is_some_and(|p| p.values[i].matches(want)))
                && match (by_iteration, spec.iteration) {
                    (true, _) => true,
                    (false, Some(t)) => data.iteration[i] == t,
                    (false, None) => last.get(&data.cell[i]) == Some(&data.iteration[i]),
                }
        })
        .collect();
    if rows.is_empty() {
        return Err(UserError::new(format!(
            "figure {}: no row of summary.parquet matches `where` and `iteration`",
            spec.name.clone().unwrap_or_else(|| format!("#{index}"))
        ))
        .into());
    }
    let facets = spec.facet_columns();
    let mut series_columns = spec.colour_columns();
    for c in data.varying(&rows) {
        if c != spec.x && !facets.contains(&c) && !series_columns.contains(&c) {
            series_columns.push(c);
        }
    }
    let key = |columns: &[String], i: usize| -> Vec<Level> {
        columns.iter().map(|c| data.param(c).map(|p| p.values[i].clone()).unwrap_or(Level::Null)).collect()
    };
    let x_of = |i: usize| -> f64 {
        if by_iteration {
            data.iteration[i] as f64
        } else {
            data.param(&spec.x).and_then(|p| p.values[i].as_f64()).unwrap_or(f64::NAN)
        }
    };

    // facet key → series key → points (and per-row theory).
    type Groups = BTreeMap<Vec<Level>, BTreeMap<Vec<Level>, (Vec<Point>, Vec<(f64, f64)>)>>;
    let mut groups: Groups = BTreeMap::new();
    let mut dropped = 0usize;
    for &i in &rows {
        let x = x_of(i);
        let m = mean[i];
        if !x.is_finite() || !m.is_finite() || (spec.log_x && x <= 0.0) || (spec.log_y && m <= 0.0) {
            dropped += 1;
            continue;
        }
        let s = se[i];
        let bar = s.is_finite().then_some(2.0 * s);
        let point = Point {
            x,
            mean: m,
            low: bar.map(|b| m - b),
            high: bar.map(|b| m + b),
            exact: (spec.exact && exact[i].is_finite()).then_some(exact[i]),
        };
        let entry = groups.entry(key(&facets, i)).or_default().entry(key(&series_columns, i)).or_default();
        entry.0.push(point);
        if spec.theory && predicted[i].is_finite() && !(spec.log_y && predicted[i] <= 0.0) {
            entry.1.push((x, predicted[i]));
        }
    }
    // Against the iteration every t is a grid point: the theory line is complete.
    let mut dense_theory = by_iteration;
    if spec.theory
        && !by_iteration
        && let Some(model) = theory
    {
        let xs: Vec<f64> =
            rows.iter().map(|&i| x_of(i)).filter(|x| x.is_finite() && (!spec.log_x || *x > 0.0)).collect();
        match model.curves(spec, &metric, &xs, &facets, &series_columns) {
            Ok(curves) if !curves.is_empty() => {
                for series in groups.values_mut().flat_map(|g| g.iter_mut()) {
                    series.1.1.clear();
                }
                for ((fk, sk), line) in curves {
                    if let Some(s) = groups.get_mut(&fk).and_then(|g| g.get_mut(&sk)) {
                        s.1 = line.into_iter().filter(|(_, y)| y.is_finite() && !(spec.log_y && *y <= 0.0)).collect();
                    }
                }
                dense_theory = true;
            }
            Ok(_) => {}
            Err(e) => tracing::debug!("no dense theory for figure {index}: {e:#}"),
        }
    }

    let mut legend_keys: Vec<Vec<Level>> = groups.values().flat_map(|g| g.keys().cloned()).collect();
    legend_keys.sort();
    legend_keys.dedup();
    let legend: Vec<String> = legend_keys.iter().map(|k| key_label(&series_columns, k)).collect();
    let panels: Vec<Panel> = groups
        .into_iter()
        .map(|(fk, g)| Panel {
            title: key_label(&facets, &fk),
            series: g
                .into_iter()
                .map(|(sk, (mut points, mut theory))| {
                    points.sort_by(|a, b| a.x.total_cmp(&b.x));
                    theory.sort_by(|a, b| a.0.total_cmp(&b.0));
                    theory.dedup_by(|a, b| a.0.total_cmp(&b.0).is_eq());
                    Series { key: legend_keys.binary_search(&sk).unwrap_or(0), points, theory }
                })
                .collect(),
        })
        .collect();
    let name = spec.name.clone().unwrap_or_else(|| format!("figure-{}", index + 1));
    let x_label = spec.x_label.clone().unwrap_or_else(|| labels::axis(&spec.x));
    let y_label = spec.y_label.clone().unwrap_or_else(|| labels::metric(&metric));
    let title = spec.title.clone().unwrap_or_else(|| match (by_iteration, spec.iteration) {
        (true, _) => format!("{} against the iteration", labels::metric_short(&metric)),
        (false, Some(t)) => {
            format!("{} at iteration {t} against {}", labels::metric_short(&metric), labels::symbol(&spec.x))
        }
        (false, None) => format!("Final {} against {}", labels::metric_short(&metric), labels::symbol(&spec.x)),
    });
    let mut notes = Vec::new();
    if dropped > 0 {
        notes.push(format!("{dropped} values not shown (not finite, or not positive on a log axis)"));
    }
    let mut figure = Figure {
        name,
        title,
        x_label,
        y_label,
        log_x: spec.log_x,
        log_y: spec.log_y,
        legend,
        panels,
        has_exact: false,
        has_theory: false,
        dense_theory,
        notes,
        caption: spec.caption.clone(),
    };
    figure.has_exact = figure.exact_points() > 0;
    figure.has_theory = figure.theory_lines() > 0;
    Ok(figure)
}

/// Evenly spaced members of `values` (sorted), at most `keep`, ends included.
fn thin(values: &[Level], keep: usize) -> Vec<Level> {
    if values.len() <= keep || keep < 2 {
        return values.to_vec();
    }
    let mut out: Vec<Level> =
        (0..keep).map(|k| values[(k * (values.len() - 1) + (keep - 1) / 2) / (keep - 1)].clone()).collect();
    out.dedup();
    out
}

fn level_json(l: &Level) -> serde_json::Value {
    match l {
        Level::Null => serde_json::Value::Null,
        Level::Num(x) => serde_json::json!(x),
        Level::Text(s) => serde_json::json!(s),
    }
}

/// The default figures of a run: the final metric against each swept numeric parameter,
/// and the metric against the iteration (one series per cell when there are few cells;
/// otherwise one panel per combination of the other parameters, with at most
/// [`MAX_SERIES`] values of the parameter with the most values).
pub fn defaults(data: &SummaryData) -> Vec<FigureSpec> {
    let Some(metric) = data.metrics.first().cloned() else { return Vec::new() };
    let last = data.last_iteration();
    let final_rows = data.final_rows();
    let axes = data.varying(&final_rows);
    let distinct = |c: &str| -> Vec<Level> {
        let mut v: Vec<Level> =
            data.param(c).map(|p| final_rows.iter().map(|&i| p.values[i].clone()).collect()).unwrap_or_default();
        v.sort();
        v.dedup();
        v
    };
    let mean = data.number(&format!("{metric}_mean")).unwrap_or_default();
    let finals: Vec<f64> =
        final_rows.iter().map(|&i| mean.get(i).copied().unwrap_or(f64::NAN)).filter(|m| m.is_finite()).collect();
    let spans_decades = |v: &[f64]| {
        let (lo, hi) = v.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &x| (a.min(x), b.max(x)));
        lo > 0.0 && hi / lo >= 100.0
    };
    let mut out = Vec::new();
    for a in &axes {
        let Some(p) = data.param(a) else { continue };
        if !p.numeric {
            continue;
        }
        let values: Vec<f64> = distinct(a).iter().filter_map(Level::as_f64).collect();
        if values.len() < 2 {
            continue;
        }
        let mut spec = FigureSpec::new(a);
        spec.y = Some(metric.clone());
        spec.name = Some(format!("{}-vs-{}", metric.replace('_', "-"), a.replace(['.', '_'], "-")));
        spec.log_x = spans_decades(&values);
        spec.log_y = spans_decades(&finals);
        let others: Vec<&String> = axes.iter().filter(|o| *o != a).collect();
        if others.len() >= 2
            && let Some(f) = others.iter().min_by_key(|o| distinct(o).len())
        {
            spec.facet = Some(Columns::One((*f).clone()));
        }
        out.push(spec);
    }
    let cells = last.len();
    let mut spec = FigureSpec::new("iteration");
    spec.y = Some(metric.clone());
    spec.name = Some(format!("{}-vs-iteration", metric.replace('_', "-")));
    let all: Vec<f64> = mean.iter().copied().filter(|m| m.is_finite()).collect();
    spec.log_y = spans_decades(&all);
    if cells > MAX_SERIES && !axes.is_empty() {
        let series_axis = axes.iter().max_by_key(|a| distinct(a).len()).cloned().unwrap_or_default();
        let kept = thin(&distinct(&series_axis), MAX_SERIES - 2);
        if kept.len() < distinct(&series_axis).len() {
            spec.selection.insert(series_axis.clone(), serde_json::Value::Array(kept.iter().map(level_json).collect()));
        }
        spec.colour = Some(Columns::One(series_axis.clone()));
        let mut facets: Vec<String> = axes.iter().filter(|a| **a != series_axis).cloned().collect();
        // At most MAX_PANELS panels: thin the facet with the most values until they fit.
        let panels = |s: &FigureSpec, f: &[String]| -> usize {
            f.iter()
                .map(|c| {
                    s.selection.get(c).and_then(|v| v.as_array().map(Vec::len)).unwrap_or_else(|| distinct(c).len())
                })
                .product()
        };
        while panels(&spec, &facets) > MAX_PANELS {
            let Some(widest) = facets.iter().max_by_key(|c| panels(&spec, std::slice::from_ref(c))).cloned() else {
                break;
            };
            let n = panels(&spec, std::slice::from_ref(&widest));
            if n <= 2 {
                facets.retain(|c| *c != widest);
                spec.selection.insert(widest.clone(), level_json(&distinct(&widest)[0]));
                continue;
            }
            let kept = thin(&distinct(&widest), n - 1);
            spec.selection.insert(widest, serde_json::Value::Array(kept.iter().map(level_json).collect()));
        }
        if !facets.is_empty() {
            spec.facet = Some(if facets.len() == 1 { Columns::One(facets[0].clone()) } else { Columns::Many(facets) });
        }
    }
    out.push(spec);
    out
}

/// Most series in one default panel.
pub const MAX_SERIES: usize = 8;
/// Most panels in one default figure.
pub const MAX_PANELS: usize = 12;
