//! The working state of a run: what makes it resumable, shardable and mergeable.
//!
//! A run (or one shard of it) works in a hidden directory inside its output directory:
//!
//! * `state.json`: the scenario's content hash, the resolved scenario, the shard (if any);
//! * `spill.bin`: every value of every finished unit, at the position its rows have in the
//!   output (cell, then replicate, then iteration: [`Layout`]); a shard's spill is sparse,
//!   holding only its own units;
//! * `done.log`: the units whose values are safely in the spill, one per line, appended at
//!   checkpoints (values first, synced, then the log, synced), so a unit is either
//!   recorded complete or not at all.
//!
//! A killed run leaves its working directory; `--resume` reopens it, runs the units not in
//! `done.log`, and finishes as if uninterrupted: the outputs are computed from the spill,
//! which holds the same numbers in the same places either way. A finished shard's working
//! directory is renamed to `parts/shard-I-of-N/` (a rename is atomic: a part is complete
//! or absent); `collapse merge` reads the parts' spills.

use std::collections::BTreeSet;
use std::fs::File;
use std::io::Write as _;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use anyhow::{Context, Result};
use collapse_core::spec::ResolvedScenario;
use collapse_core::{CoreError, Sink, UnitOutput};
use serde::{Deserialize, Serialize};

use crate::UserError;

/// Format version of a working directory; bump on any change to the files' layout.
const FORMAT: u32 = 1;
/// A checkpoint syncs the spill and appends to `done.log` at most this often (override:
/// `COLLAPSE_CHECKPOINT_SECONDS`, e.g. 0 in tests that kill a run midway).
fn checkpoint_every() -> Duration {
    std::env::var("COLLAPSE_CHECKPOINT_SECONDS")
        .ok()
        .and_then(|v| v.parse::<f64>().ok())
        .filter(|s| s.is_finite() && *s >= 0.0)
        .map(Duration::from_secs_f64)
        .unwrap_or(Duration::from_secs(2))
}

/// Where each (cell, replicate) block of values sits in a spill: cell-major over the whole
/// scenario, so the file read in order is the runs table's row order.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Per cell: offset (in f64 values) of its replicate 0.
    pub cell_offsets: Vec<u64>,
    /// Per cell: values per replicate ((iterations + 1) × slots).
    pub block: Vec<usize>,
    /// Replicates per cell.
    pub replicates: usize,
    /// Total values.
    pub total: u64,
}

impl Layout {
    /// The layout of `scenario`.
    pub fn new(scenario: &ResolvedScenario) -> Self {
        let mut cell_offsets = Vec::with_capacity(scenario.cells.len());
        let mut block = Vec::with_capacity(scenario.cells.len());
        let mut total = 0u64;
        for cell in &scenario.cells {
            let b = cell.plan.slots() * (cell.iterations + 1);
            cell_offsets.push(total);
            block.push(b);
            total += (b * scenario.replicates) as u64;
        }
        Layout { cell_offsets, block, replicates: scenario.replicates, total }
    }

    /// Byte offset of (cell, replicate).
    pub fn byte_offset(&self, cell: usize, replicate: usize) -> u64 {
        (self.cell_offsets[cell] + (replicate * self.block[cell]) as u64) * 8
    }
}

/// The id of a unit: group × replicates + replicate (its position in `engine::units`).
pub fn unit_id(replicates: usize, group: usize, replicate: usize) -> usize {
    group * replicates + replicate
}

/// A shard: the `index`-th (1-based) of `count`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShardSpec {
    /// 1-based index.
    pub index: usize,
    /// Number of shards.
    pub count: usize,
}

impl ShardSpec {
    /// The directory name of this shard's part.
    pub fn name(&self) -> String {
        format!("shard-{}-of-{}", self.index, self.count)
    }
}

/// What `state.json` records.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct State {
    /// Working-directory format version.
    pub format: u32,
    /// Content hash of the resolved scenario.
    pub scenario_hash: u64,
    /// The resolved scenario (TOML text).
    pub scenario: String,
    /// The shard this directory belongs to, if the run is sharded.
    pub shard: Option<ShardSpec>,
    /// The units this directory is responsible for.
    pub units: Vec<usize>,
}

/// The content hash of a resolved scenario: what parts and resumed runs must share.
pub fn scenario_hash(text: &str) -> u64 {
    collapse_core::rng::content_hash(text)
}

/// An open working directory.
#[derive(Debug)]
pub struct WorkDir {
    /// Its path.
    pub path: PathBuf,
    /// Its state.
    pub state: State,
    /// Units already recorded complete.
    pub done: BTreeSet<usize>,
}

fn read_done(path: &Path) -> Result<BTreeSet<usize>> {
    let text = match std::fs::read_to_string(path) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeSet::new()),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    // A line cut short by a kill is not a record: only complete lines count.
    let complete = text.rfind('\n').map(|i| &text[..=i]).unwrap_or("");
    complete
        .lines()
        .map(|l| l.trim().parse::<usize>().with_context(|| format!("{}: bad unit `{l}`", path.display())))
        .collect()
}

impl WorkDir {
    /// The working directory of a run (or of shard `shard`) in output directory `out`.
    pub fn path_in(out: &Path, shard: Option<ShardSpec>) -> PathBuf {
        match shard {
            Some(s) => out.join(format!(".collapse-work-{}", s.name())),
            None => out.join(".collapse-work"),
        }
    }

    /// Start a fresh working directory (removing an old one at the same path).
    pub fn create(path: &Path, state: State, layout: &Layout) -> Result<Self> {
        if path.exists() {
            std::fs::remove_dir_all(path).with_context(|| format!("cannot remove {}", path.display()))?;
        }
        std::fs::create_dir_all(path)
            .map_err(|e| UserError::new(format!("--out: cannot create `{}`: {e}", path.display())))?;
        let spill =
            File::create(path.join("spill.bin")).with_context(|| format!("cannot create {}", path.display()))?;
        // Sized up front and sparse: only written blocks take space.
        spill.set_len(layout.total * 8).context("cannot size the spill file")?;
        let text = serde_json::to_string_pretty(&state)?;
        let tmp = path.join(".state.json.tmp");
        std::fs::write(&tmp, text).context("cannot write state.json")?;
        std::fs::rename(&tmp, path.join("state.json")).context("cannot write state.json")?;
        Ok(WorkDir { path: path.to_path_buf(), state, done: BTreeSet::new() })
    }

    /// Open an existing working directory.
    pub fn open(path: &Path) -> Result<Self> {
        let text = std::fs::read_to_string(path.join("state.json"))
            .map_err(|e| UserError::new(format!("`{}` is not a collapse working directory: {e}", path.display())))?;
        let state: State = serde_json::from_str(&text)
            .map_err(|e| UserError::new(format!("`{}`: unreadable state.json: {e}", path.display())))?;
        if state.format != FORMAT {
            return Err(UserError::new(format!(
                "`{}` was written by another version of collapse (format {}, this one reads {FORMAT})",
                path.display(),
                state.format
            ))
            .into());
        }
        let done = read_done(&path.join("done.log"))?;
        Ok(WorkDir { path: path.to_path_buf(), state, done })
    }

    /// The spill file, for reading.
    pub fn spill(&self) -> Result<File> {
        File::open(self.path.join("spill.bin"))
            .with_context(|| format!("cannot open {}/spill.bin", self.path.display()))
    }

    /// A new state for `scenario` (its resolved TOML text) and `units`.
    pub fn state(text: &str, shard: Option<ShardSpec>, units: Vec<usize>) -> State {
        State { format: FORMAT, scenario_hash: scenario_hash(text), scenario: text.to_string(), shard, units }
    }
}

/// A sink that records units into a working directory (see the module docs).
#[derive(Debug)]
pub struct Recorder {
    layout: Layout,
    spill: File,
    log: File,
    pending: Vec<usize>,
    last: Instant,
    every: Duration,
}

impl Recorder {
    /// Record into `dir`.
    pub fn new(dir: &WorkDir, layout: Layout) -> Result<Self> {
        let spill = File::options()
            .write(true)
            .open(dir.path.join("spill.bin"))
            .with_context(|| format!("cannot open {}/spill.bin", dir.path.display()))?;
        let log = File::options()
            .create(true)
            .append(true)
            .open(dir.path.join("done.log"))
            .with_context(|| format!("cannot open {}/done.log", dir.path.display()))?;
        Ok(Recorder { layout, spill, log, pending: Vec::new(), last: Instant::now(), every: checkpoint_every() })
    }

    /// Sync the values written so far, then record their units as done.
    pub fn checkpoint(&mut self) -> Result<(), CoreError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let io = |e: std::io::Error| CoreError::Output(format!("recording finished units: {e}"));
        self.spill.sync_data().map_err(io)?;
        let mut lines = String::new();
        for u in self.pending.drain(..) {
            lines.push_str(&u.to_string());
            lines.push('\n');
        }
        self.log.write_all(lines.as_bytes()).map_err(io)?;
        self.log.sync_data().map_err(io)?;
        self.last = Instant::now();
        Ok(())
    }
}

impl Sink for Recorder {
    fn accept(&mut self, unit: UnitOutput) -> Result<(), CoreError> {
        for p in &unit.paths {
            let bytes: Vec<u8> = p.values.iter().flat_map(|x| x.to_le_bytes()).collect();
            self.spill
                .write_all_at(&bytes, self.layout.byte_offset(p.cell, unit.replicate))
                .map_err(|e| CoreError::Output(format!("spilling results: {e}")))?;
        }
        self.pending.push(unit_id(self.layout.replicates, unit.group, unit.replicate));
        if self.last.elapsed() >= self.every {
            self.checkpoint()?;
        }
        Ok(())
    }
}
