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

use crate::claims::Verdict;
use crate::shard;
use crate::workdir::{self, Layout, Recorder, ShardSpec, WorkDir};
use crate::writer::{self, Sources};
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
    let base = match file {
        Some(f) => crate::tables::Base::Dir(f.parent().map(Path::to_path_buf).unwrap_or_default()),
        None => crate::tables::Base::Registered,
    };
    crate::tables::load_tables(&mut table, &base)?;
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
    outln!("scenario `{}` is valid", s.name);
    outln!(
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
        outln!("  {}{only} ({} values): {}", a.column(), a.values.len(), vals.join(", "));
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

/// The data tables the scenario's cells read: path as written, hash, rows and columns.
fn data_files(s: &ResolvedScenario) -> Vec<Value> {
    let mut seen: BTreeMap<(String, String), Value> = BTreeMap::new();
    for cell in &s.cells {
        for (_, kind, record) in &cell.records {
            let (Some(path), Some(hash)) =
                (record.get("path").and_then(Value::as_str), record.get("hash").and_then(Value::as_str))
            else {
                continue;
            };
            seen.entry((path.to_string(), hash.to_string())).or_insert_with(|| {
                let table = collapse_core::registered_table(hash);
                json!({
                    "plugin": kind,
                    "path": path,
                    "hash": hash,
                    "hash_function": "xxh3-128 of the file's bytes",
                    "rows": table.as_ref().map(|t| t.rows()),
                })
            });
        }
    }
    seen.into_values().collect()
}

/// How `collapse run` was asked to run.
#[derive(Debug, Clone, Default)]
pub struct RunRequest {
    /// Output directory (default results/<name>).
    pub out: Option<PathBuf>,
    /// Worker threads (0: all).
    pub threads: usize,
    /// No progress bar.
    pub quiet: bool,
    /// This process's shard (from `--shard` or the Slurm array variables).
    pub shard: Option<ShardSpec>,
    /// Continue the unfinished run in the output directory.
    pub resume: bool,
    /// Refuse runs estimated to need more bytes than this (default: the available memory).
    pub max_memory: Option<u64>,
    /// Also write report.html and the figures.
    pub report: bool,
}

/// Memory the system can give a new process (`MemAvailable`), if known.
fn available_memory() -> Option<u64> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let line = text.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// Bytes of a size like `512M`, `4G`, `1.5T` or a plain number of bytes.
pub fn parse_size(flag: &str, text: &str) -> Result<u64> {
    let t = text.trim();
    let (number, unit) = t.split_at(t.find(|c: char| c.is_ascii_alphabetic()).unwrap_or(t.len()));
    let factor = match unit.trim().to_ascii_uppercase().as_str() {
        "" | "B" => 1.0,
        "K" | "KB" | "KIB" => 1024.0,
        "M" | "MB" | "MIB" => 1024.0 * 1024.0,
        "G" | "GB" | "GIB" => 1024.0 * 1024.0 * 1024.0,
        "T" | "TB" | "TIB" => 1024.0f64.powi(4),
        _ => {
            return Err(UserError::new(format!(
                "{flag}: `{text}` is not a size; use a number with K, M, G or T (e.g. 8G)"
            ))
            .into());
        }
    };
    let x: f64 =
        number.trim().parse().map_err(|_| UserError::new(format!("{flag}: `{text}` is not a size (e.g. 8G)")))?;
    if !(x.is_finite() && x > 0.0) {
        return Err(UserError::new(format!("{flag}: must be a positive size, got `{text}`")).into());
    }
    Ok((x * factor) as u64)
}

fn gib(bytes: f64) -> String {
    if bytes >= 1024f64.powi(3) {
        format!("{:.2} GiB", bytes / 1024f64.powi(3))
    } else {
        format!("{:.1} MiB", bytes / 1024f64.powi(2))
    }
}

/// Refuse a run whose estimated peak memory exceeds the limit (or what is available).
fn memory_guard(s: &ResolvedScenario, threads: usize, limit: Option<u64>) -> Result<()> {
    let threads =
        if threads == 0 { std::thread::available_parallelism().map(|n| n.get()).unwrap_or(1) } else { threads };
    let estimate = engine::memory_estimate(s, threads);
    // The Parquet row groups being assembled and encoded (bounded, see writer.rs).
    let total = estimate.total + 256.0 * 1024.0 * 1024.0;
    let (limit, source) = match (limit, available_memory()) {
        (Some(l), _) => (l as f64, "--max-memory"),
        (None, Some(a)) => (a as f64, "the memory available (MemAvailable)"),
        (None, None) => return Ok(()),
    };
    if total > limit {
        return Err(UserError::new(format!(
            "the run needs about {} ({} per worker thread for {} on {threads} threads, {} of results in flight), more than {source}: {}; reduce design.n or design.p, use fewer --threads, or a path that never forms X (protocol.fast_design = true, isotropic or low-rank covariance)",
            gib(total),
            gib(estimate.per_unit),
            estimate.dominated_by,
            gib(estimate.window),
            gib(limit)
        ))
        .into());
    }
    Ok(())
}

/// The manifest fields common to runs and merges.
fn manifest_base(
    s: &ResolvedScenario,
    rows: usize,
    summary_rows: usize,
    theory: &[Vec<Result<TheoryPath, NoTheory>>],
) -> serde_json::Map<String, Value> {
    let binary = std::env::current_exe()
        .ok()
        .and_then(|p| p.file_name().map(|f| f.to_string_lossy().into_owned()))
        .unwrap_or_else(|| "collapse".into());
    let v = json!({
        "collapse_version": env!("CARGO_PKG_VERSION"),
        "git_commit": Some(env!("COLLAPSE_GIT_COMMIT")).filter(|c| !c.is_empty()),
        "binary": binary,
        "plugins": plugins_used(s),
        "data": data_files(s),
        "scenario": s.name,
        "seed": s.seed,
        "cells": s.cells.len(),
        "design_groups": s.groups.len(),
        "replicates": s.replicates,
        "iterations": s.iterations,
        "output": {"runs": s.output.runs, "compression": s.output.compression},
        "rows": {"runs": rows, "summary": summary_rows},
        "theory_missing": report::theory_gaps(s, theory).0,
    });
    match v {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    }
}

/// Finish a run whose values are all spilled: runs table, summary, scenario and manifest,
/// staged and renamed into `out_dir`; then the final table and the claims' verdicts.
pub fn write_outputs(
    s: &ResolvedScenario,
    scenario_text: &str,
    sources: &Sources,
    out_dir: &Path,
    quiet: bool,
    extra: serde_json::Map<String, Value>,
) -> Result<(String, Vec<Verdict>)> {
    let rows = writer::run_rows(s);
    let mut staging = output::Staging::new(out_dir)?;
    let runs_path = (s.output.runs != RunsOutput::None).then(|| staging.path("runs.parquet"));
    let bar = progress_bar(quiet, rows, "rows written");
    let summary = writer::finalize(s, sources, runs_path.as_deref(), s.output.compression, &|k| bar.inc(k as u64))?;
    bar.finish_and_clear();
    let theory = results::predictions(s);
    let summary_table = results::summary_table(s, &summary, &theory);
    staging.parquet("summary.parquet", output::to_dataframe(&summary_table)?, s.output.compression)?;
    staging.text("scenario.toml", scenario_text)?;
    let mut manifest = manifest_base(s, rows, summary_table.rows(), &theory);
    manifest.extend(extra);
    staging.text("manifest.json", &(serde_json::to_string_pretty(&manifest)? + "\n"))?;
    staging.commit().context("writing results")?;
    let mut table = report::final_table(s, &summary, &theory);
    table.push('\n');
    table.push_str(&report::theory_notes(s, &theory));
    if let Some(best) = report::best_w(s, &summary) {
        table.push_str(&best);
    }
    let claims = crate::claims::parse_report(s.report.as_ref())?;
    let metrics: Vec<String> = s.metric_names().into_iter().map(|(m, _)| m).collect();
    let verdicts = crate::claims::evaluate(out_dir, &claims, &metrics)?;
    Ok((table.trim_end().to_string(), verdicts))
}

/// What a finished run reports.
#[derive(Debug, Clone)]
pub struct RunOutcome {
    /// Where the files are.
    pub out_dir: PathBuf,
    /// The final-iteration table, theory notes and the best weight (empty for a shard).
    pub table: String,
    /// The verdicts of the scenario's claims (none for a shard).
    pub verdicts: Vec<Verdict>,
    /// Grid cells.
    pub cells: usize,
    /// Replicates per cell.
    pub replicates: usize,
    /// The closing line: what was written where.
    pub wrote: String,
}

impl RunOutcome {
    /// Print the table, the claims' verdicts and the closing line.
    pub fn print(&self) {
        print_results(&self.table, &self.verdicts);
        outln!("{}", self.wrote);
    }
}

/// Print a results table and the claims' verdicts.
pub fn print_results(table: &str, verdicts: &[Verdict]) {
    if !table.is_empty() {
        outln!("{table}");
    }
    if !verdicts.is_empty() {
        outln!("claims:");
        for v in verdicts {
            outln!("  {v}");
        }
    }
}

/// `collapse run`: run, print the results, and with `req.report` write `report.html` and
/// the figures into the output directory.
pub fn run_scenario(name_or_file: &str, sets: &[String], req: &RunRequest) -> Result<()> {
    let outcome = execute(name_or_file, sets, req)?;
    outcome.print();
    if req.report && req.shard.is_none() {
        let formats = [crate::plot::Format::Svg, crate::plot::Format::Png];
        crate::html::scenario_report(&outcome.out_dir, &formats, Some(outcome.verdicts.clone()))?;
        outln!("wrote {}", outcome.out_dir.join("report.html").display());
    }
    Ok(())
}

/// Simulate this process's units (all of them, or a shard), recording each finished unit
/// in the working directory; then write the outputs (or, for a shard, turn the working
/// directory into a part for `collapse merge`).
pub fn execute(name_or_file: &str, sets: &[String], req: &RunRequest) -> Result<RunOutcome> {
    let s = load_scenario(name_or_file, sets)?;
    let (cells, replicates) = (s.cells.len(), s.replicates);
    let out_dir = req.out.clone().unwrap_or_else(|| PathBuf::from("results").join(&s.name));
    output::check_writable(&out_dir)?;
    memory_guard(&s, req.threads, req.max_memory)?;
    let scenario_text = s.to_toml()?;
    let hash = workdir::scenario_hash(&scenario_text);
    let layout = Layout::new(&s);
    let units_all = engine::units(&s);
    let mine: Vec<usize> = match req.shard {
        Some(shard) => shard::assign(&s, shard.count).swap_remove(shard.index - 1),
        None => (0..units_all.len()).collect(),
    };
    let wd_path = WorkDir::path_in(&out_dir, req.shard);
    let part_path = req.shard.map(|sh| out_dir.join("parts").join(sh.name()));
    if let Some(part) = part_path.as_ref().filter(|p| p.exists()) {
        let existing = WorkDir::open(part)?;
        if existing.state.scenario_hash != hash {
            return Err(UserError::new(format!(
                "`{}` holds a part of another scenario; use another --out",
                part.display()
            ))
            .into());
        }
        let wrote = format!(
            "shard {} is already complete ({}); merge with `collapse merge {}`",
            part.display(),
            part.display(),
            out_dir.display()
        );
        return Ok(RunOutcome { out_dir, table: String::new(), verdicts: Vec::new(), cells, replicates, wrote });
    }
    let wd = if req.resume {
        if !wd_path.exists() {
            return Err(UserError::new(format!(
                "--resume: `{}` has no unfinished run{} to resume",
                out_dir.display(),
                req.shard.map(|sh| format!(" of shard {}/{}", sh.index, sh.count)).unwrap_or_default()
            ))
            .into());
        }
        let wd = WorkDir::open(&wd_path)?;
        if wd.state.scenario_hash != hash {
            let other = spec::parse(&wd.state.scenario, "saved scenario")
                .ok()
                .and_then(|t| t.get("name").and_then(|n| n.as_str().map(str::to_string)));
            return Err(UserError::new(format!(
                "--resume: `{}` holds an unfinished run of another scenario ({}); it can only be resumed with that scenario and the same overrides",
                out_dir.display(),
                other.unwrap_or_else(|| "unnamed".into())
            ))
            .into());
        }
        wd
    } else {
        if wd_path.exists() {
            return Err(UserError::new(format!(
                "`{}` holds an unfinished run; finish it with --resume, or remove `{}` to start over",
                out_dir.display(),
                wd_path.display()
            ))
            .into());
        }
        WorkDir::create(&wd_path, WorkDir::state(&scenario_text, req.shard, mine.clone()), &layout)?
    };
    let todo: Vec<(usize, usize)> = mine.iter().filter(|u| !wd.done.contains(u)).map(|&u| units_all[u]).collect();
    let started = Instant::now();
    let trajectories: usize = todo.iter().map(|&(g, _)| s.groups[g].cells.len()).sum();
    let bar = progress_bar(req.quiet, trajectories, "trajectories");
    let mut recorder = Recorder::new(&wd, layout)?;
    let stats =
        engine::run(&s, &todo, RunOptions { threads: req.threads, ..RunOptions::default() }, &mut recorder, &|k| {
            bar.inc(k as u64)
        });
    bar.finish_and_clear();
    // Whatever happened, what finished is recorded.
    recorder.checkpoint()?;
    let stats = stats.map_err(|e| {
        anyhow::Error::from(e).context(format!(
            "the run stopped; finished units are kept: `--resume` continues it in {}",
            out_dir.display()
        ))
    })?;
    let simulation = started.elapsed().as_secs_f64();
    if let (Some(shard), Some(part)) = (req.shard, part_path) {
        std::fs::create_dir_all(out_dir.join("parts")).context("cannot create parts/")?;
        std::fs::rename(&wd.path, &part)
            .with_context(|| format!("cannot move the finished shard to {}", part.display()))?;
        let wrote = format!(
            "shard {}/{}: {} units in {simulation:.2} s on {} threads; part {} (merge all parts with `collapse merge {}`)",
            shard.index,
            shard.count,
            todo.len(),
            stats.threads,
            part.display(),
            out_dir.display()
        );
        return Ok(RunOutcome { out_dir, table: String::new(), verdicts: Vec::new(), cells, replicates, wrote });
    }
    let sources = Sources { files: vec![wd.spill()?], owner: vec![0; units_all.len()] };
    let extra = json!({
        "threads": stats.threads,
        "factorizations": stats.factorizations,
        "resumed": req.resume,
        "simulation_seconds": simulation,
        "overrides": sets,
    });
    let extra = match extra {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let (table, verdicts) = write_outputs(&s, &scenario_text, &sources, &out_dir, req.quiet, extra)?;
    std::fs::remove_dir_all(&wd.path).with_context(|| format!("cannot remove {}", wd.path.display()))?;
    let total = started.elapsed().as_secs_f64();
    let wrote = format!(
        "wrote {} ({} runs rows) in {total:.2} s (simulation {simulation:.2} s, writing {:.2} s) on {} threads",
        out_dir.display(),
        writer::run_rows(&s),
        total - simulation,
        stats.threads
    );
    Ok(RunOutcome { out_dir, table, verdicts, cells, replicates, wrote })
}
