//! Loading, validating and running scenarios; the files a run writes.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result};
use collapse_core::engine::{self, RunOptions};
use collapse_core::results;
use collapse_core::spec::{self, ResolvedScenario, RunsOutput};
use collapse_core::{CoreError, NoTheory, Path as TheoryPath, Section, registry};
use serde_json::{Value, json};

use crate::writer::RunWriter;
use crate::{UserError, output, report};

/// Read a scenario file as UTF-8 text; anything else is a user error naming the file.
fn read_text(path: &Path) -> Result<String> {
    let bytes = std::fs::read(path)
        .map_err(|e| UserError::new(format!("cannot read scenario file `{}`: {e}", path.display())))?;
    String::from_utf8(bytes).map_err(|e| {
        UserError::new(format!(
            "scenario file `{}` is not UTF-8 text (byte {})",
            path.display(),
            e.utf8_error().valid_up_to()
        ))
        .into()
    })
}

/// A hint for a plugin that this binary does not know but a saved run's manifest names.
fn manifest_hint(file: &Path, e: &CoreError) -> Option<String> {
    let CoreError::UnknownPlugin { kind, name, .. } = e else { return None };
    let manifest = file.parent()?.join("manifest.json");
    let v: Value = serde_json::from_str(&std::fs::read_to_string(manifest).ok()?).ok()?;
    let entry = v.get("plugins")?.as_array()?.iter().find(|p| p["section"] == *kind && p["kind"] == name.as_str())?;
    Some(format!(
        "{e}; the run that saved this scenario got `{name}` from crate `{}` {} (binary `{}`): build a binary that links that crate",
        entry["crate"].as_str().unwrap_or("?"),
        entry["version"].as_str().unwrap_or(""),
        v.get("binary").and_then(Value::as_str).unwrap_or("?")
    ))
}

/// Load a scenario from a file or the registry, apply `--set` overrides, resolve it.
pub fn load_scenario(name_or_file: &str, sets: &[String]) -> Result<ResolvedScenario> {
    let path = Path::new(name_or_file);
    let (text, origin, file) = if path.is_dir() {
        return Err(UserError::new(format!(
            "`{name_or_file}` is a directory; give a scenario file (TOML) or a registered scenario name"
        ))
        .into());
    } else if path.is_file() {
        (read_text(path)?, name_or_file.to_string(), Some(path))
    } else if name_or_file.ends_with(".toml") || name_or_file.contains(std::path::MAIN_SEPARATOR) {
        return Err(UserError::new(format!("scenario file `{name_or_file}` does not exist")).into());
    } else {
        let s = registry::lookup_scenario(name_or_file).map_err(|e| {
            UserError::new(format!(
                "`{name_or_file}` is neither a scenario file nor a registered scenario; {}",
                match e {
                    CoreError::UnknownPlugin { known, .. } => format!("registered scenarios: {}", known.join(", ")),
                    other => other.to_string(),
                }
            ))
        })?;
        (s.toml.to_string(), format!("scenario `{}`", s.name), None)
    };
    let mut table = spec::parse(&text, &origin)?;
    for s in sets {
        spec::apply_override(&mut table, s)?;
    }
    let scenario = spec::resolve(&table).map_err(|e| match file.and_then(|f| manifest_hint(f, &e)) {
        Some(hint) => anyhow::Error::from(UserError::new(hint)),
        None => anyhow::Error::from(e),
    })?;
    let report = crate::claims::parse_report(scenario.report.as_ref())?;
    crate::plot::spec::check(&report.figures, &known_columns(&scenario))?;
    Ok(scenario)
}

/// The columns a scenario's results will have, for checking its figures.
fn known_columns(s: &ResolvedScenario) -> crate::plot::spec::KnownColumns {
    let kinds = results::param_kinds(s);
    crate::plot::spec::KnownColumns {
        params: kinds.iter().map(|(n, _)| n.clone()).collect(),
        numeric: kinds
            .iter()
            .filter(|(_, k)| matches!(k, results::ParamKind::Int | results::ParamKind::Float))
            .map(|(n, _)| n.clone())
            .collect(),
        metrics: s.metric_names().into_iter().map(|(m, _)| m).collect(),
    }
}

/// `collapse validate`: resolve and print the grid.
pub fn validate(name_or_file: &str, sets: &[String]) -> Result<()> {
    let s = load_scenario(name_or_file, sets)?;
    println!("scenario `{}` is valid", s.name);
    println!(
        "grid: {} cells × {} replicates × {} iterations (+ t = 0) = {} rows; {} design groups",
        s.cells.len(),
        s.replicates,
        s.iterations,
        s.run_rows(),
        s.groups.len()
    );
    for a in &s.axes {
        let vals: Vec<String> = a.values.iter().map(|v| v.to_string()).collect();
        let only = a.kind.as_ref().map(|k| format!(" (for {} = {k})", a.section)).unwrap_or_default();
        println!("  {}{only} ({} values): {}", a.column(), a.values.len(), vals.join(", "));
    }
    Ok(())
}

/// A progress bar on a terminal (hidden otherwise or with `--quiet`).
fn progress_bar(quiet: bool, length: usize, what: &str) -> indicatif::ProgressBar {
    if quiet || !std::io::stderr().is_terminal() {
        return indicatif::ProgressBar::hidden();
    }
    let bar = indicatif::ProgressBar::new(length as u64);
    let template = format!("{{spinner}} [{{elapsed_precise}}] {{bar:40}} {{pos}}/{{len}} {what} ({{eta}})");
    if let Ok(style) = indicatif::ProgressStyle::with_template(&template) {
        bar.set_style(style);
    }
    bar
}

/// Which plugins (section, kind) the scenario uses, and the crates that provide them.
fn plugins_used(s: &ResolvedScenario) -> Vec<Value> {
    let mut seen: BTreeMap<(Section, String), Value> = BTreeMap::new();
    for cell in &s.cells {
        for (section, kind, _) in &cell.records {
            seen.entry((*section, kind.clone())).or_insert_with(|| {
                let (krate, version) = section.provided_by(kind).unwrap_or(("unknown", ""));
                json!({"section": section.name(), "kind": kind, "crate": krate, "version": version})
            });
        }
    }
    seen.into_values().collect()
}

/// Distinct reasons why cells have no theory, with how many (cell, metric) pairs each.
fn theory_gaps(s: &ResolvedScenario, theory: &[Vec<Result<TheoryPath, NoTheory>>]) -> Value {
    let mut reasons: BTreeMap<String, usize> = BTreeMap::new();
    for (cell, preds) in s.cells.iter().zip(theory) {
        for (m, p) in cell.plan.metrics.iter().zip(preds) {
            if let Err(r) = p {
                *reasons.entry(format!("{}: {r}", m.metric.name)).or_default() += 1;
            }
        }
    }
    json!(reasons)
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Where the files are.
    pub out_dir: PathBuf,
    /// The final-iteration table and the best weight, as printed.
    pub table: String,
    /// The verdicts of the scenario's claims.
    pub verdicts: Vec<crate::claims::Verdict>,
    /// Grid cells.
    pub cells: usize,
    /// Replicates per cell.
    pub replicates: usize,
    /// The closing "wrote …" line.
    pub wrote: String,
}

/// `collapse run`: run, print the table, the claims' verdicts and what was written, and
/// with `report` write `report.html` (and the figures) into the output directory.
pub fn run_scenario(
    name_or_file: &str,
    sets: &[String],
    out: Option<&Path>,
    threads: usize,
    quiet: bool,
    report: bool,
) -> Result<()> {
    let outcome = execute(name_or_file, sets, out, threads, quiet)?;
    println!("{}", outcome.table);
    if !outcome.verdicts.is_empty() {
        println!("claims:");
        for v in &outcome.verdicts {
            println!("  {v}");
        }
    }
    println!("{}", outcome.wrote);
    if report {
        let formats = [crate::plot::Format::Svg, crate::plot::Format::Png];
        crate::html::scenario_report(&outcome.out_dir, &formats)?;
        println!("wrote {}", outcome.out_dir.join("report.html").display());
    }
    Ok(())
}

/// Simulate, streaming every finished unit to the writer, then write the runs table from
/// the spill, the summary, the resolved scenario and the manifest, rename them all into
/// place, and check the scenario's claims.
pub fn execute(
    name_or_file: &str,
    sets: &[String],
    out: Option<&Path>,
    threads: usize,
    quiet: bool,
) -> Result<RunOutcome> {
    let s = load_scenario(name_or_file, sets)?;
    let out_dir = out.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("results").join(&s.name));
    output::check_writable(&out_dir)?;
    let scenario_text = s.to_toml()?;
    let started = Instant::now();
    let mut staging = output::Staging::new(&out_dir)?;
    let scratch = (s.output.runs == RunsOutput::All).then(|| staging.scratch("runs.spill"));
    let mut writer = RunWriter::new(&s, scratch)?;
    let bar = progress_bar(quiet, s.cells.len() * s.replicates, "trajectories");
    let units = engine::units(&s);
    let stats =
        engine::run(&s, &units, RunOptions { threads, ..RunOptions::default() }, &mut writer, &|k| bar.inc(k as u64))?;
    bar.finish_and_clear();
    let simulation = started.elapsed().as_secs_f64();
    let rows = writer.rows();
    let runs_path = (s.output.runs != RunsOutput::None).then(|| staging.path("runs.parquet"));
    let bar = progress_bar(quiet, rows, "rows written");
    let summary = writer.finish(runs_path.as_deref(), s.output.compression, &|k| bar.inc(k as u64))?;
    bar.finish_and_clear();
    let theory = results::predictions(&s);
    let summary_table = results::summary_table(&s, &summary, &theory);
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "collapse".into());
    staging.parquet("summary.parquet", output::to_dataframe(&summary_table)?, s.output.compression)?;
    staging.text("scenario.toml", &scenario_text)?;
    let total = started.elapsed().as_secs_f64();
    let manifest = json!({
        "collapse_version": env!("CARGO_PKG_VERSION"),
        "git_commit": Some(env!("COLLAPSE_GIT_COMMIT")).filter(|c| !c.is_empty()),
        "binary": binary,
        "plugins": plugins_used(&s),
        "scenario": s.name,
        "seed": s.seed,
        "threads": stats.threads,
        "cells": s.cells.len(),
        "design_groups": s.groups.len(),
        "replicates": s.replicates,
        "iterations": s.iterations,
        "factorizations": stats.factorizations,
        "output": {"runs": s.output.runs, "compression": s.output.compression},
        "rows": {"runs": rows, "summary": summary_table.rows()},
        "simulation_seconds": simulation,
        "writing_seconds": total - simulation,
        "theory_missing": theory_gaps(&s, &theory),
        "overrides": sets,
    });
    staging.text("manifest.json", &(serde_json::to_string_pretty(&manifest)? + "\n"))?;
    staging.commit().context("writing results")?;
    let total = started.elapsed().as_secs_f64();
    let mut table = report::final_table(&s, &summary, &theory);
    if let Some(best) = report::best_w(&s, &summary) {
        table.push('\n');
        table.push_str(best.trim_end());
    }
    let claims = crate::claims::parse_report(s.report.as_ref())?;
    let metrics: Vec<String> = s.metric_names().into_iter().map(|(m, _)| m).collect();
    let verdicts = crate::claims::evaluate(&out_dir, &claims, &metrics)?;
    let wrote = format!(
        "wrote {} ({rows} runs rows, {} summary rows) in {total:.2} s (simulation {simulation:.2} s, writing {:.2} s) on {} threads",
        out_dir.display(),
        summary_table.rows(),
        total - simulation,
        stats.threads
    );
    Ok(RunOutcome { out_dir, table, verdicts, cells: s.cells.len(), replicates: s.replicates, wrote })
}
