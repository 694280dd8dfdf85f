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

/// Print a line to stdout, ignoring a closed pipe (`collapse … | head`): the printout is a
/// courtesy, the files are the results, and a closed pipe must not become a panic.
macro_rules! outln {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = writeln!(std::io::stdout().lock(), $($t)*);
    }};
}

/// Print to stdout, ignoring a closed pipe (see `outln!`).
macro_rules! out {
    ($($t:tt)*) => {{
        use std::io::Write as _;
        let _ = write!(std::io::stdout().lock(), $($t)*);
    }};
}

// Link the built-in plugin crates: inventory only sees crates that are named.
use collapse_covariance as _;
use collapse_estimators as _;
use collapse_families as _;
use collapse_protocols as _;
use collapse_schedules as _;

pub mod catalog;
pub mod claims;
pub mod compare;
pub mod html;
pub mod merge;
pub mod output;
pub mod plot;
pub mod report;
pub mod reproduce;
pub mod run;
pub mod scenarios;
pub mod shard;
pub mod slurm;
pub mod tables;
pub mod theory_cmd;
pub mod workdir;
pub mod writer;

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};
use collapse_core::CoreError;
use collapse_core::spec;

pub use run::load_scenario;

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
        /// family, signal, covariance, estimator, schedule, protocol, policy or scenario.
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
        /// No progress bar (the results table is still printed).
        #[arg(long, short)]
        quiet: bool,
        /// Which runs rows to write: every iteration, only the final one, or none (summary
        /// only). Same as `--set output.runs=...`.
        #[arg(long, value_parser = ["all", "final", "none"])]
        runs: Option<String>,
        /// Parquet compression. Same as `--set output.compression=...`.
        #[arg(long, value_parser = ["zstd", "lz4", "snappy", "gzip", "uncompressed"])]
        compression: Option<String>,
        /// Also write report.html and the figures (SVG and PNG in figures/).
        #[arg(long)]
        report: bool,
        /// Run only shard I of N (1-based) and write it as a part for `collapse merge`.
        /// Inside a Slurm array task the shard comes from SLURM_ARRAY_TASK_ID/COUNT.
        #[arg(long, value_name = "I/N")]
        shard: Option<String>,
        /// Finish the unfinished run (or shard) in DIR: finished units are kept.
        #[arg(long, value_name = "DIR", conflicts_with = "out")]
        resume: Option<PathBuf>,
        /// Refuse to start when the run is estimated to need more memory than this
        /// (e.g. 8G; default: the memory available).
        #[arg(long, value_name = "SIZE")]
        max_memory: Option<String>,
    },
    /// Write a Slurm job array running the scenario in shards, and a dependent merge job;
    /// with --submit, submit both through sbatch.
    Slurm {
        #[command(flatten)]
        scenario: ScenarioArgs,
        /// Number of array tasks (shards).
        #[arg(long, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        tasks: u32,
        /// Output directory (shared by the tasks; the merged results land here).
        #[arg(long)]
        out: PathBuf,
        /// Slurm partition.
        #[arg(long)]
        partition: Option<String>,
        /// Wall-time limit per task (Slurm format, e.g. 01:00:00).
        #[arg(long)]
        time: Option<String>,
        /// CPUs per task (also collapse --threads).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=1024))]
        cpus_per_task: u16,
        /// Memory per task (Slurm format, e.g. 4G).
        #[arg(long)]
        mem: Option<String>,
        /// Submit the array and the merge through sbatch and print the job ids.
        #[arg(long)]
        submit: bool,
    },
    /// Merge the parts of a sharded run (DIR/parts/) into runs.parquet, summary.parquet,
    /// scenario.toml and manifest.json, identical to an unsharded run's.
    Merge {
        /// The output directory the shards wrote to.
        dir: PathBuf,
        /// No progress bar.
        #[arg(long, short)]
        quiet: bool,
    },
    /// Figures of a run (SVG and PNG): the scenario's own [[report.figures]] or the
    /// defaults, with simulation means ± 2 SE, exact means and the theory line.
    Plot {
        /// A results directory (holding summary.parquet and scenario.toml).
        dir: PathBuf,
        /// Where to write the figures (default: DIR/figures).
        #[arg(long)]
        out: Option<PathBuf>,
        /// File formats, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "svg,png")]
        format: Vec<plot::Format>,
        /// Draw one figure with this x column (a numeric parameter or `iteration`) instead
        /// of the scenario's figures.
        #[arg(long)]
        x: Option<String>,
        /// With --x: the metric (default: the first).
        #[arg(long, requires = "x")]
        y: Option<String>,
        /// With --x: the parameter(s) whose values are the series, comma-separated.
        #[arg(long, alias = "color", requires = "x", value_delimiter = ',')]
        colour: Vec<String>,
        /// With --x: the parameter(s) with one panel per value, comma-separated.
        #[arg(long, requires = "x", value_delimiter = ',')]
        facet: Vec<String>,
        /// With --x: the iteration shown (default: each cell's last).
        #[arg(long, requires = "x")]
        iteration: Option<i64>,
        /// With --x: logarithmic x axis.
        #[arg(long, requires = "x")]
        log_x: bool,
        /// With --x: logarithmic y axis.
        #[arg(long, requires = "x")]
        log_y: bool,
    },
    /// Write DIR/report.html: one self-contained page with the scenario, the claims'
    /// verdicts, the figures, the final summary with z-scores, the paired argmin of each
    /// swept parameter and the manifest (and the figures as files in DIR/figures).
    Report {
        /// A results directory.
        dir: PathBuf,
    },
    /// Reproduce a paper: run its registered scenarios, write results, figures and one
    /// index report.html, and print a verdict per claim.
    Reproduce {
        /// p1 (Garg, Bhattacharya & Sur 2025), p2 (Dohmatob, Feng & Kempe 2024) or p3
        /// (He, Xu & Cheng 2025); author names and short titles are accepted too.
        paper: String,
        /// Fewer replicates: a quarter, at least 50 per scenario (never more than the full number).
        #[arg(long)]
        quick: bool,
        /// Output directory (default: results/reproduce-<paper>[-quick]).
        #[arg(long)]
        out: Option<PathBuf>,
        /// Worker threads (default: all cores). Output is identical for any value.
        #[arg(long, value_parser = clap::value_parser!(u16).range(1..=1024))]
        threads: Option<u16>,
        /// Figure file formats, comma-separated.
        #[arg(long, value_enum, value_delimiter = ',', default_value = "svg,png")]
        format: Vec<plot::Format>,
        /// Override a key in every scenario (after --quick): --set replicates=50.
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
    },
    /// Paired comparison along a swept parameter: differences between neighbouring values
    /// with paired standard errors, and the argmin with a bootstrap interval.
    Compare {
        /// A results directory (holding runs.parquet).
        dir: PathBuf,
        /// The swept parameter column, e.g. schedule.w or estimator.lambda.
        #[arg(long)]
        param: String,
        /// The metric column to compare (default: the first metric, e.g. risk).
        #[arg(long)]
        metric: Option<String>,
        /// Iteration to compare (default: the last).
        #[arg(long, conflicts_with = "every_iteration")]
        iteration: Option<i64>,
        /// Compare at every iteration (e.g. the argmin of λ per generation of a chain).
        #[arg(long)]
        every_iteration: bool,
        /// Bootstrap resamples for the argmin.
        #[arg(long, default_value_t = 2000)]
        bootstrap: usize,
    },
    /// Theory for a scenario, without simulating: per cell the stationary value at the
    /// cell's weight, the optimal weight and the value there (or why there is no theory),
    /// or a curve over λ or w.
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
        Command::List { kind, json } => catalog::list(kind.as_deref(), json),
        Command::Describe { kind, name } => catalog::describe(&kind, &name),
        Command::Schema => {
            outln!("{}", serde_json::to_string_pretty(&spec::scenario_schema()?)?);
            Ok(())
        }
        Command::Validate(args) => run::validate(&args.scenario, &args.set),
        Command::Run { scenario, out, threads, quiet, runs, compression, report, shard, resume, max_memory } => {
            let mut sets = scenario.set.clone();
            sets.extend(runs.map(|r| format!("output.runs={r}")));
            sets.extend(compression.map(|c| format!("output.compression={c}")));
            let shard = match shard {
                Some(text) => Some(crate::shard::parse(&text)?),
                None => crate::shard::from_slurm(|k| std::env::var(k).ok())?,
            };
            let req = run::RunRequest {
                out: resume.clone().or(out),
                threads: threads.map(usize::from).unwrap_or(0),
                quiet,
                shard,
                resume: resume.is_some(),
                max_memory: max_memory.map(|m| run::parse_size("--max-memory", &m)).transpose()?,
                report,
            };
            run::run_scenario(&scenario.scenario, &sets, &req)
        }
        Command::Plot { dir, out, format, x, y, colour, facet, iteration, log_x, log_y } => {
            let adhoc = x.map(|x| {
                let mut s = plot::spec::FigureSpec::new(&x);
                s.name =
                    Some(format!("{}-vs-{}", y.clone().unwrap_or_else(|| "metric".into()), x).replace(['.', '_'], "-"));
                s.y = y;
                s.colour = (!colour.is_empty()).then_some(plot::spec::Columns::Many(colour));
                s.facet = (!facet.is_empty()).then_some(plot::spec::Columns::Many(facet));
                s.iteration = iteration;
                s.log_x = log_x;
                s.log_y = log_y;
                s
            });
            plot::command(&dir, out.as_deref(), &format, adhoc)
        }
        Command::Report { dir } => {
            html::scenario_report(&dir, &[plot::Format::Svg, plot::Format::Png], None)?;
            outln!("wrote {}", dir.join("report.html").display());
            Ok(())
        }
        Command::Reproduce { paper, quick, out, threads, format, set } => {
            let threads = threads.map(usize::from).unwrap_or(0);
            let opts = reproduce::ReproduceOptions { quick, out, threads, formats: format, sets: set };
            reproduce::command(&paper, &opts)
        }
        Command::Merge { dir, quiet } => merge::merge(&dir, quiet),
        Command::Slurm { scenario, tasks, out, partition, time, cpus_per_task, mem, submit } => {
            let s = load_scenario(&scenario.scenario, &scenario.set)?;
            output::check_writable(&out)?;
            let opts = slurm::SlurmOptions {
                tasks: tasks as usize,
                partition,
                time,
                cpus_per_task: cpus_per_task as usize,
                mem,
                submit,
            };
            out!("{}", slurm::prepare(&s.to_toml()?, &s.name, &out, &opts)?);
            Ok(())
        }
        Command::Compare { dir, param, metric, iteration, every_iteration, bootstrap } => {
            let runs = compare::load(&dir)?;
            if every_iteration {
                out!("{}", compare::render_every_iteration(&runs, &param, metric.as_deref(), bootstrap)?);
                return Ok(());
            }
            let c = compare::compare(&runs, &param, metric.as_deref(), iteration, bootstrap)?;
            out!("{}", compare::render(&c, &param));
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
            out!("{text}");
            if let Some(dir) = &out {
                let mut staging = output::Staging::new(dir)?;
                staging.parquet("theory.parquet", output::to_dataframe(&table)?, Default::default())?;
                staging.commit()?;
                outln!("wrote {}", dir.join("theory.parquet").display());
            }
            Ok(())
        }
    }
}
