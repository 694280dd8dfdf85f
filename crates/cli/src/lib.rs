//! The `collapse` command-line tool as a library, so that a downstream crate can link
//! its own plugins and call [`run`] from a three-line `main`:
//!
//! ```no_run
//! // use my_plugins as _;   // link the crate so inventory sees its plugins
//! fn main() -> std::process::ExitCode {
//!     collapse_cli::run()
//! }
//! ```
//!
//! Exit codes: 0 success; 2 bad input (a config, a flag, a file; nothing is written);
//! 1 failure while running (numerical failure, I/O error).

// Link the built-in plugin crates: inventory only sees crates that are named.
use collapse_covariance as _;
use collapse_estimators as _;
use collapse_schedules as _;
use collapse_settings as _;
use collapse_theory as _;

pub mod compare;
pub mod output;
pub mod report;
pub mod scenarios;
pub mod theory_cmd;

use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use collapse_core::CoreError;
use collapse_core::engine::{self, RunResults};
use collapse_core::registry::{self, Kind};
use collapse_core::spec::{self, ResolvedScenario};
use serde_json::{Value, json};

/// An error caused by the user's input: printed as one line, exit code 2.
#[derive(Debug)]
pub struct UserError(String);

impl UserError {
    /// A user error with this message.
    pub fn new(message: impl Into<String>) -> Self {
        UserError(message.into())
    }
}

impl std::fmt::Display for UserError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for UserError {}

#[derive(Debug, Parser)]
#[command(
    name = "collapse",
    version,
    about = "Model collapse in iterative regression: simulate, compare with exact and asymptotic risk, write tidy Parquet."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// List registered plugins (all kinds, or one kind).
    List {
        /// estimator, covariance, signal, schedule, setting, scenario or theory.
        kind: Option<String>,
        /// Print JSON instead of a table.
        #[arg(long)]
        json: bool,
    },
    /// Describe one plugin: math, parameters with defaults and ranges, an example.
    Describe {
        /// Plugin kind.
        kind: String,
        /// Plugin name.
        name: String,
    },
    /// Print the JSON Schema of scenario files.
    Schema,
    /// Resolve a scenario (file or registered name) and print its grid.
    Validate(ScenarioArgs),
    /// Run a scenario (file or registered name) and write results.
    Run {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Output directory (default: results/<scenario name>).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads (default: all cores). Output is identical for any value.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: Option<u16>,
        /// No progress bar and no table.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Paired comparison along a swept parameter: differences between neighbouring values
    /// with paired standard errors, and the argmin with a bootstrap interval.
    Compare {
        /// A results directory (holding runs.parquet).
        dir: PathBuf,
        /// The swept parameter column, e.g. schedule.w or estimator.lambda.
        #[arg(long)]
        param: String,
        /// Iteration to compare (default: the last).
        #[arg(long)]
        iteration: Option<i64>,
        /// Bootstrap resamples for the argmin.
        #[arg(long, default_value_t = 2000)]
        bootstrap: usize,
    },
    /// Asymptotic predictions for a scenario, without simulating: limit risk per cell,
    /// w*(λ) and the risk there, or a curve over λ or w.
    Theory {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Compute a curve: `lambda` (w*(λ) over a log grid) or `w` (limit risk over w).
        #[arg(long, value_enum)]
        curve: Option<theory_cmd::Curve>,
        /// Grid points of the curve.
        #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(2..=100_000))]
        points: u32,
        /// log10 of the smallest λ of `--curve lambda`.
        #[arg(long, default_value_t = -3.0, allow_negative_numbers = true)]
        log_lambda_min: f64,
        /// log10 of the largest λ of `--curve lambda`.
        #[arg(long, default_value_t = 2.0, allow_negative_numbers = true)]
        log_lambda_max: f64,
        /// Also write theory.parquet into this directory.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

#[derive(Debug, clap::Args)]
struct ScenarioArgs {
    /// A scenario file (TOML) or the name of a registered scenario.
    scenario: String,
    /// Override a key: --set estimator.lambda=0.1, --set schedule.w=[0.5,0.618], --set replicates=20.
    #[arg(long = "set", value_name = "KEY=VALUE")]
    set: Vec<String>,
}

/// Parse the process arguments, run, print errors, and return the exit code.
pub fn run() -> ExitCode {
    run_with(std::env::args_os())
}

/// [`run`] with explicit arguments (the first is the program name).
pub fn run_with<I, T>(args: I) -> ExitCode
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = match Cli::try_parse_from(args) {
        Ok(c) => c,
        Err(e) => {
            let _ = e.print();
            return if e.use_stderr() { ExitCode::from(2) } else { ExitCode::SUCCESS };
        }
    };
    init_tracing();
    match dispatch(cli) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let user = is_user_error(&e);
            eprintln!("error: {}", format_error(&e));
            ExitCode::from(if user { 2 } else { 1 })
        }
    }
}

fn init_tracing() {
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("warn"));
    let _ = tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).try_init();
}

fn is_user_error(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<UserError>().is_some() || c.downcast_ref::<CoreError>().is_some_and(CoreError::is_user_error)
    })
}

fn format_error(e: &anyhow::Error) -> String {
    let parts: Vec<String> = e.chain().map(|c| c.to_string()).collect();
    parts.join(": ")
}

fn dispatch(cli: Cli) -> Result<()> {
    match cli.command {
        Command::List { kind, json } => list(kind.as_deref(), json),
        Command::Describe { kind, name } => describe(&kind, &name),
        Command::Schema => {
            println!("{}", serde_json::to_string_pretty(&spec::scenario_schema()?)?);
            Ok(())
        }
        Command::Validate(args) => validate(&args),
        Command::Run { scenario, out, threads, quiet } => {
            run_scenario(&scenario, out.as_deref(), threads.map(usize::from).unwrap_or(0), quiet)
        }
        Command::Compare { dir, param, iteration, bootstrap } => {
            let runs = compare::load(&dir)?;
            let c = compare::compare(&runs, &param, iteration, bootstrap)?;
            print!("{}", compare::render(&c, &param));
            Ok(())
        }
        Command::Theory { scenario, curve, points, log_lambda_min, log_lambda_max, out } => {
            if !(log_lambda_min.is_finite() && log_lambda_max.is_finite() && log_lambda_min < log_lambda_max) {
                return Err(UserError::new(format!(
                    "--log-lambda-min ({log_lambda_min}) must be finite and below --log-lambda-max ({log_lambda_max})"
                ))
                .into());
            }
            let s = load_scenario(&scenario.scenario, &scenario.set)?;
            if let Some(dir) = &out {
                output::check_writable(dir)?;
            }
            let opts = theory_cmd::TheoryOptions {
                curve,
                points: points as usize,
                lambda_range: (log_lambda_min, log_lambda_max),
            };
            let (text, table) = theory_cmd::theory(&s, &opts)?;
            print!("{text}");
            if let Some(dir) = &out {
                output::write_all(
                    dir,
                    vec![output::Artifact::Parquet("theory.parquet", output::to_dataframe(&table)?)],
                )?;
                println!("wrote {}", dir.join("theory.parquet").display());
            }
            Ok(())
        }
    }
}

fn list(kind: Option<&str>, as_json: bool) -> Result<()> {
    let kinds = match kind {
        Some(k) => vec![Kind::parse(k)?],
        None => Kind::ALL.to_vec(),
    };
    let mut all = Vec::new();
    for k in kinds {
        all.extend(registry::catalog(k)?);
    }
    if as_json {
        let v: Vec<Value> =
            all.iter().map(|p| json!({"kind": p.kind.name(), "name": p.name, "summary": p.summary})).collect();
        println!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let width = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let mut current = None;
        for p in &all {
            if current != Some(p.kind) {
                println!("{}:", p.kind.name());
                current = Some(p.kind);
            }
            println!("  {:width$}  {}", p.name, p.summary);
        }
    }
    Ok(())
}

fn describe(kind: &str, name: &str) -> Result<()> {
    let kind = Kind::parse(kind)?;
    let all = registry::catalog(kind)?;
    let Some(p) = all.iter().find(|p| p.name == name) else {
        return Err(CoreError::UnknownPlugin {
            field: "NAME".into(),
            kind: kind.name(),
            name: name.into(),
            known: all.iter().map(|p| p.name.to_string()).collect(),
        }
        .into());
    };
    println!("{} `{}`: {}\n", kind.name(), p.name, p.summary);
    if kind == Kind::Scenario {
        println!("{}", p.example.as_str().unwrap_or_default());
        return Ok(());
    }
    if let Some(d) = p.schema.get("description").and_then(Value::as_str) {
        println!("{d}\n");
    }
    let props = p.schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = p
        .schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    println!("parameters:");
    match props {
        Some(props) if !props.is_empty() => {
            for (k, v) in props {
                let ty = v.get("type").map(|t| t.to_string().replace('"', "")).unwrap_or_else(|| "see schema".into());
                let default = if required.contains(&k.as_str()) {
                    "required".to_string()
                } else {
                    v.get("default").map(|d| format!("default {d}")).unwrap_or_else(|| "optional".into())
                };
                let mut range = Vec::new();
                if let Some(m) = v.get("minimum") {
                    range.push(format!(">= {m}"));
                }
                if let Some(m) = v.get("maximum") {
                    range.push(format!("<= {m}"));
                }
                if let Some(e) = v.get("enum") {
                    range.push(format!("one of {e}"));
                }
                let desc = v.get("description").and_then(Value::as_str).unwrap_or("");
                println!(
                    "  {k}: {ty}, {default}{}\n      {desc}",
                    if range.is_empty() { String::new() } else { format!(", {}", range.join(", ")) }
                );
            }
        }
        _ => println!("  (none)"),
    }
    let mut example = toml::Table::new();
    example.insert("kind".into(), toml::Value::String(p.name.into()));
    if let Some(obj) = p.example.as_object() {
        for (k, v) in obj {
            if let Ok(tv) = toml::Value::try_from(v) {
                example.insert(k.clone(), tv);
            }
        }
    }
    let mut wrapper = toml::Table::new();
    wrapper.insert(kind.name().into(), toml::Value::Table(example));
    println!("\nexample:\n{}", toml::to_string(&wrapper).unwrap_or_default());
    Ok(())
}

/// Load a scenario from a file or the registry, apply `--set` overrides, resolve it.
pub fn load_scenario(name_or_file: &str, sets: &[String]) -> Result<ResolvedScenario> {
    let path = Path::new(name_or_file);
    let (text, origin) = if path.is_file() {
        (
            std::fs::read_to_string(path).with_context(|| format!("cannot read {}", path.display()))?,
            name_or_file.to_string(),
        )
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
        (s.toml.to_string(), format!("scenario `{}`", s.name))
    };
    let mut table = spec::parse(&text, &origin)?;
    for s in sets {
        spec::apply_override(&mut table, s)?;
    }
    Ok(spec::resolve(&table)?)
}

fn validate(args: &ScenarioArgs) -> Result<()> {
    let s = load_scenario(&args.scenario, &args.set)?;
    println!("scenario `{}` is valid", s.name);
    println!(
        "grid: {} cells × {} replicates × {} iterations (+ t = 0) = {} rows; {} design groups",
        s.cells.len(),
        s.replicates,
        s.iterations,
        s.cells.len() * s.replicates * (s.iterations + 1),
        s.groups.len()
    );
    for a in &s.axes {
        let vals: Vec<String> = a.values.iter().map(|v| v.to_string()).collect();
        println!("  {} ({} values): {}", a.column(), a.values.len(), vals.join(", "));
    }
    Ok(())
}

/// Run a resolved scenario with a progress bar.
pub fn simulate(s: &ResolvedScenario, threads: usize, quiet: bool) -> Result<RunResults> {
    let total = (s.cells.len() * s.replicates) as u64;
    let bar = if quiet || !std::io::stderr().is_terminal() {
        indicatif::ProgressBar::hidden()
    } else {
        let b = indicatif::ProgressBar::new(total);
        if let Ok(style) =
            indicatif::ProgressStyle::with_template("{spinner} [{elapsed_precise}] {bar:40} {pos}/{len} chains ({eta})")
        {
            b.set_style(style);
        }
        b
    };
    let results = engine::run(s, threads, &|k| bar.inc(k as u64))?;
    bar.finish_and_clear();
    Ok(results)
}

fn run_scenario(args: &ScenarioArgs, out: Option<&Path>, threads: usize, quiet: bool) -> Result<()> {
    let s = load_scenario(&args.scenario, &args.set)?;
    let out_dir = out.map(Path::to_path_buf).unwrap_or_else(|| PathBuf::from("results").join(&s.name));
    output::check_writable(&out_dir)?;
    let started = Instant::now();
    let results = simulate(&s, threads, quiet)?;
    let wall = started.elapsed().as_secs_f64();
    let theory = collapse_core::theory::predict_all(&s);
    let runs = engine::runs_table(&s, &results);
    let summary = engine::summary_table(&s, &results, &theory);
    let manifest = json!({
        "collapse_version": env!("CARGO_PKG_VERSION"),
        "git_commit": Some(env!("COLLAPSE_GIT_COMMIT")).filter(|c| !c.is_empty()),
        "scenario": s.name,
        "seed": s.seed,
        "threads": results.threads,
        "wall_seconds": wall,
        "cells": s.cells.len(),
        "design_groups": s.groups.len(),
        "replicates": s.replicates,
        "iterations": s.iterations,
        "factorizations": results.factorizations,
        "rows": {"runs": runs.rows(), "summary": summary.rows()},
        "overrides": args.set,
    });
    output::write_all(
        &out_dir,
        vec![
            output::Artifact::Parquet("runs.parquet", output::to_dataframe(&runs)?),
            output::Artifact::Parquet("summary.parquet", output::to_dataframe(&summary)?),
            output::Artifact::Text("scenario.toml", s.to_toml()),
            output::Artifact::Text("manifest.json", serde_json::to_string_pretty(&manifest)? + "\n"),
        ],
    )?;
    if !quiet {
        let stats = engine::summarize(&results);
        println!("{}", report::final_table(&s, &stats, &theory));
        if let Some(best) = report::best_w(&s, &stats) {
            print!("{best}");
        }
        println!(
            "wrote {} ({} runs rows, {} summary rows) in {wall:.2} s on {} threads",
            out_dir.display(),
            runs.rows(),
            summary.rows(),
            results.threads
        );
    }
    Ok(())
}
