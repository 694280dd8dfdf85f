//! `collapse plot DIR`: figures of a run, as SVG and PNG, with the theory overlaid.
//!
//! The figures are the scenario's own (`[[report.figures]]` in its `scenario.toml`, see
//! [`spec`]) or, when it declares none, the defaults ([`figure::defaults`]): the final
//! value of the first metric against each swept numeric parameter, and the metric
//! against the iteration. `--x` (with `--y`, `--colour`, `--facet`, …) draws one figure
//! of your choice instead.

pub mod data;
pub mod draw;
pub mod figure;
pub mod labels;
pub mod raster;
pub mod spec;
pub mod theory;

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};

use crate::UserError;
use data::SummaryData;
use figure::Figure;
use spec::FigureSpec;
use theory::DenseTheory;

/// An output format.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, clap::ValueEnum)]
pub enum Format {
    /// Scalable vector graphics (always readable as text, the figure's source).
    Svg,
    /// A PNG raster at twice the SVG's size.
    Png,
}

/// A drawn figure.
#[derive(Debug, Clone)]
pub struct Rendered {
    /// What was drawn.
    pub figure: Figure,
    /// The SVG document.
    pub svg: String,
}

/// Pixel scale of PNG files relative to the SVG.
pub const PNG_SCALE: f32 = 2.0;

/// The figure specifications of the run in `dir`: its scenario's, or the defaults. Their
/// columns are checked against the summary (exit 2 with the known columns).
pub fn specs(dir: &Path, data: &SummaryData) -> Result<Vec<FigureSpec>> {
    let declared = match std::fs::read_to_string(dir.join("scenario.toml")) {
        Ok(text) => {
            let table = collapse_core::spec::parse(&text, "scenario.toml")?;
            crate::claims::parse_report(table.get("report"))?.figures
        }
        Err(_) => Vec::new(),
    };
    if declared.is_empty() {
        return Ok(figure::defaults(data));
    }
    let known = spec::KnownColumns {
        params: data.param_names(),
        numeric: data.numeric_params(),
        metrics: data.metrics.clone(),
    };
    spec::check(&declared, &known)?;
    Ok(declared)
}

/// The dense theory of the run in `dir`, when its scenario can be resolved by this binary.
pub fn dense_theory(dir: &Path) -> Option<DenseTheory> {
    let text = std::fs::read_to_string(dir.join("scenario.toml")).ok()?;
    DenseTheory::new(&text).ok()
}

/// Draw `specs` from the run in `dir`.
pub fn render(dir: &Path, data: &SummaryData, specs: &[FigureSpec]) -> Result<Vec<Rendered>> {
    let theory = dense_theory(dir);
    specs
        .iter()
        .enumerate()
        .map(|(k, s)| {
            let figure = figure::build(s, k, data, theory.as_ref())?;
            let svg = draw::svg(&figure)?;
            Ok(Rendered { figure, svg })
        })
        .collect()
}

/// Write each figure as `<out>/<name>.<format>`; returns the files written.
pub fn write(figures: &[Rendered], out: &Path, formats: &[Format]) -> Result<Vec<PathBuf>> {
    crate::output::check_writable(out)?;
    let mut staging = crate::output::Staging::new(out)?;
    let mut files = Vec::new();
    for r in figures {
        for format in formats {
            let (name, bytes) = match format {
                Format::Svg => (format!("{}.svg", r.figure.name), r.svg.clone().into_bytes()),
                Format::Png => (format!("{}.png", r.figure.name), raster::png_from_svg(&r.svg, PNG_SCALE)?),
            };
            let tmp = staging.path(&name);
            std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
            files.push(out.join(name));
        }
    }
    staging.commit()?;
    Ok(files)
}

/// One line per figure: what it shows (panels, series, points, theory).
pub fn describe(f: &Figure) -> String {
    format!(
        "{}: {} panel{}, {} series, {} points, {} exact, {} theory line{}{}",
        f.name,
        f.panels.len(),
        if f.panels.len() == 1 { "" } else { "s" },
        f.series(),
        f.points(),
        f.exact_points(),
        f.theory_lines(),
        if f.theory_lines() == 1 { "" } else { "s" },
        if f.dense_theory { " (dense)" } else { "" }
    )
}

/// `collapse plot`: draw and write the figures of the run in `dir`.
pub fn command(dir: &Path, out: Option<&Path>, formats: &[Format], adhoc: Option<FigureSpec>) -> Result<()> {
    let data = SummaryData::load(dir)?;
    let specs = match adhoc {
        Some(s) => vec![s],
        None => specs(dir, &data)?,
    };
    if formats.is_empty() {
        return Err(UserError::new("--format: give at least one of svg, png").into());
    }
    let out = out.map(Path::to_path_buf).unwrap_or_else(|| dir.join("figures"));
    let figures = render(dir, &data, &specs)?;
    let files = write(&figures, &out, formats)?;
    for f in &figures {
        println!("{}", describe(&f.figure));
    }
    println!("wrote {} files to {}", files.len(), out.display());
    Ok(())
}
