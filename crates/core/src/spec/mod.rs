//! Scenario files: parse, then override, then resolve.
//!
//! A scenario is a TOML file with top-level keys `name`, `description`, `seed`,
//! `replicates`, `iterations`, `common_random_numbers`, the sizes table `[design]`
//! (`n`, `p`) and one table per plugin section ([`Section`]: `[family]`, `[signal]`,
//! `[covariance]`, `[estimator]`, `[schedule]`, `[protocol]`, `[policy]`). Each plugin
//! section has `kind` plus that plugin's parameters flat beside it. Parsing keeps the file
//! generic (a TOML table); [`apply_override`] edits it (`--set estimator.lambda=0.1`);
//! [`resolve`] expands sweeps into cells, builds and validates every plugin of every
//! cell, asks each cell's protocol for its plan, and returns a [`ResolvedScenario`], the
//! only thing the engine accepts.
//!
//! **Sweeps.** A numeric parameter may be given as a list (`w = [0.5, 0.618]`), a
//! linear range (`w = { from = 0.1, to = 1.0, steps = 10 }`, both ends included) or a
//! log range (`lambda = { logspace = [-3, 1], steps = 9 }`: 10^-3 … 10^1, exponents as
//! in numpy's `logspace`); a text or boolean parameter as a list of values
//! (`generator_design = ["fresh", "fixed"]`, `adaptive = [true, false]`). The scenario
//! then runs the grid of all swept parameters; each
//! grid point is a *cell*. A parameter that is itself a list (the `list` schedule's `w`,
//! `spiked`'s `spikes`) is swept by giving a list of lists; a text parameter (a choice
//! such as `synthetic_rows = ["keep", "drop"]`) by a list of strings.
//!
//! **Kind sweeps.** `kind = ["isotropic", "spiked"]` sweeps the plugin itself; each kind's
//! own parameters go in a sub-table named after it (`[covariance.spiked] spikes = [4.0]`),
//! where they may be swept too (`[estimator.pcr] k = [1, 5]` multiplies only the `pcr`
//! cells). Parameter columns are the union over kinds (null where a kind lacks one).

mod grid;
mod overrides;
mod resolve;
mod schema;
mod value;

use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::api::{CellView, Covariance, Estimator, Family, Plan, Policy, Protocol, Schedule, Signal};
use crate::error::CoreError;
use crate::registry::Section;

pub use grid::{MAX_CELLS, MAX_STEPS};
pub use overrides::apply_override;
pub use resolve::resolve;
pub use schema::scenario_schema;
pub use value::{ParamValue, json_to_toml, toml_to_json};

/// Top-level keys that are not plugin sections.
pub const HEADER_KEYS: [&str; 9] =
    ["name", "description", "seed", "replicates", "iterations", "common_random_numbers", "design", "output", "report"];

/// Which rows of the runs table a run writes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum RunsOutput {
    /// Every iteration of every (cell, replicate).
    #[default]
    All,
    /// Only the final iteration.
    Final,
    /// No runs table: the summary only.
    None,
}

/// The compression of the Parquet files.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Compression {
    /// Zstandard (the default: small files, fast).
    #[default]
    Zstd,
    /// LZ4 (fastest to write and read).
    Lz4,
    /// Snappy (the most widely supported by old readers).
    Snappy,
    /// Gzip.
    Gzip,
    /// No compression.
    Uncompressed,
}

/// The `[output]` table: what a run writes. It changes no number, only which files and
/// rows are written and how they are compressed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OutputSpec {
    /// `all` (every iteration), `final` (only the last iteration) or `none` (summary only).
    #[serde(default)]
    pub runs: RunsOutput,
    /// Parquet compression: `zstd`, `lz4`, `snappy`, `gzip` or `uncompressed`.
    #[serde(default)]
    pub compression: Compression,
}

/// Every top-level key of a scenario file.
pub fn top_level_keys() -> Vec<&'static str> {
    HEADER_KEYS.iter().copied().chain(Section::ALL.iter().map(|s| s.name())).collect()
}

/// The `[design]` table: the sizes of every iteration's data.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct Sizes {
    /// Samples per iteration (n ≥ 1).
    #[schemars(range(min = 1))]
    pub n: usize,
    /// Features (p ≥ 1).
    #[schemars(range(min = 1))]
    pub p: usize,
}

/// One swept parameter.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Section (`schedule`, or `design` for sizes).
    pub section: String,
    /// Parameter inside the section (`w`), or `kind` for a kind sweep.
    pub key: String,
    /// For an axis from a kind's own sub-table: that kind (the axis applies only to it).
    pub kind: Option<String>,
    /// The values, in grid order.
    pub values: Vec<Value>,
}

impl Axis {
    /// Column name `section.key` (a swept plugin kind is the section's own column).
    pub fn column(&self) -> String {
        if self.key == "kind" { self.section.clone() } else { format!("{}.{}", self.section, self.key) }
    }
}

/// The built plugins of a cell.
#[derive(Debug, Clone)]
pub struct Plugins {
    /// Data model.
    pub family: Arc<dyn Family>,
    /// Signal.
    pub signal: Arc<dyn Signal>,
    /// Covariance (shared between cells with identical covariance parameters).
    pub covariance: Arc<dyn Covariance>,
    /// Estimator.
    pub estimator: Arc<dyn Estimator>,
    /// Schedule (absent when the protocol does not use one).
    pub schedule: Option<Arc<dyn Schedule>>,
    /// Protocol.
    pub protocol: Arc<dyn Protocol>,
    /// Policy.
    pub policy: Arc<dyn Policy>,
}

/// One point of the sweep grid with every plugin built and validated.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Position in the grid.
    pub index: usize,
    /// Index of the cell's design group in [`ResolvedScenario::groups`].
    pub group: usize,
    /// Samples per iteration.
    pub n: usize,
    /// Features.
    pub p: usize,
    /// Iterations after t = 0.
    pub iterations: usize,
    /// The plugins.
    pub plugins: Plugins,
    /// What the protocol declared for this cell.
    pub plan: Plan,
    /// Weights w_0..w_T (all 1 when the protocol uses no schedule).
    pub weights: Vec<f64>,
    /// Parameter columns (`design.n`, `estimator`, `estimator.lambda`, ...).
    pub columns: Vec<(String, ParamValue)>,
    /// Per section: the kind and its full parameter record (defaults included).
    pub records: Vec<(Section, String, Map<String, Value>)>,
    /// The cell's value on each axis (null where an axis does not apply).
    pub coordinates: Vec<Value>,
}

impl Cell {
    /// The view of this cell handed to protocols, schedules and theory.
    pub fn view(&self) -> CellView<'_> {
        let p = &self.plugins;
        CellView {
            n: self.n,
            p: self.p,
            iterations: self.iterations,
            family: p.family.as_ref(),
            covariance: p.covariance.as_ref(),
            signal: p.signal.as_ref(),
            estimator: p.estimator.as_ref(),
            protocol: p.protocol.as_ref(),
            policy: p.policy.as_ref(),
        }
    }

    /// The value of parameter column `name`, if the cell has it.
    pub fn column(&self, name: &str) -> Option<&ParamValue> {
        self.columns.iter().find(|(c, _)| c == name).map(|(_, v)| v)
    }

    /// The plugin kind of `section`.
    pub fn kind(&self, section: Section) -> Option<&str> {
        self.records.iter().find(|(s, ..)| *s == section).map(|(_, k, _)| k.as_str())
    }
}

/// A design group: cells that share sizes, covariance, signal, family and protocol
/// kind, and so share designs, signals, noise draws and factorizations per replicate.
#[derive(Debug, Clone)]
pub struct Group {
    /// The stream key: a hash of the group's resolved content (not its position).
    pub key: u64,
    /// Member cells, ascending.
    pub cells: Vec<usize>,
}

/// A validated scenario: the only input the engine accepts.
#[derive(Debug, Clone)]
pub struct ResolvedScenario {
    /// Scenario name (also the default output directory).
    pub name: String,
    /// Free-text description.
    pub description: String,
    /// Master seed.
    pub seed: u64,
    /// Independent replicates per cell.
    pub replicates: usize,
    /// Iterations after t = 0.
    pub iterations: usize,
    /// Whether cells of a design group share random numbers and factorizations.
    pub common_random_numbers: bool,
    /// Swept parameters.
    pub axes: Vec<Axis>,
    /// Grid cells.
    pub cells: Vec<Cell>,
    /// Design groups (one per cell without common random numbers).
    pub groups: Vec<Group>,
    /// What the run writes.
    pub output: OutputSpec,
    /// The `[report]` table (claims and figures), which the CLI interprets; it changes no
    /// number.
    pub report: Option<toml::Value>,
    /// The scenario as TOML after overrides, with defaults filled in.
    pub resolved: toml::Table,
}

impl ResolvedScenario {
    /// Names of the parameter columns: the union over cells, in order of first
    /// appearance (kind sweeps give cells different parameter sets).
    pub fn column_names(&self) -> Vec<String> {
        let mut names: Vec<String> = Vec::new();
        for c in &self.cells {
            for (n, _) in &c.columns {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
        names
    }

    /// The metric columns (name, whether some cell has an exact twin): the union over
    /// cells, in order of first appearance.
    pub fn metric_names(&self) -> Vec<(String, bool)> {
        let mut names: Vec<(String, bool)> = Vec::new();
        for c in &self.cells {
            for m in &c.plan.metrics {
                match names.iter_mut().find(|(n, _)| *n == m.metric.name) {
                    Some((_, exact)) => *exact |= m.exact,
                    None => names.push((m.metric.name.clone(), m.exact)),
                }
            }
        }
        names
    }

    /// The resolved scenario as TOML text (what `scenario.toml` holds).
    pub fn to_toml(&self) -> Result<String, CoreError> {
        toml::to_string_pretty(&self.resolved)
            .map_err(|e| CoreError::config("scenario", format!("cannot write the resolved scenario as TOML: {e}")))
    }

    /// Total rows of the runs table.
    pub fn run_rows(&self) -> usize {
        self.cells.iter().map(|c| c.iterations + 1).sum::<usize>() * self.replicates
    }
}

/// Parse scenario TOML text; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<toml::Table, CoreError> {
    text.parse::<toml::Table>().map_err(|e| {
        // One line: the position and the parser's message, not its multi-line rendering.
        let at = e
            .span()
            .map(|span| {
                let before = &text[..span.start.min(text.len())];
                let line = before.matches('\n').count() + 1;
                let column = before.rsplit('\n').next().map(|l| l.chars().count() + 1).unwrap_or(1);
                format!(" at line {line}, column {column}")
            })
            .unwrap_or_default();
        CoreError::config(origin, format!("invalid TOML{at}: {}", e.message().trim().replace('\n', "; ")))
    })
}
