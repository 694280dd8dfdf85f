//! The engine: the one loop over units, cells and iterations.
//!
//! Work is split into units of (design group, replicate). A unit draws the group's
//! design and signal once (lazily, through [`ReplicateData`]), factorizes the design at
//! most once, and runs the trajectories of every cell of the group on it, advancing them
//! in lockstep (all cells at iteration t before any at t + 1) so that data drawn afresh
//! at each iteration is shared by the cells and held one iteration at a time. Units run in
//! parallel on a rayon pool of the requested size, a bounded window at a time; the
//! finished units of a window are handed to a [`Sink`] in unit order, so a sink sees the
//! same sequence whatever the thread count (which keeps streamed summaries and files
//! bit-identical) and memory holds one window of results, not the run. What is done
//! with the results (collected, streamed to Parquet, written as a shard) is the sink's
//! business. Linear algebra inside a unit runs with the [`Par`] given in [`RunOptions`]
//! (sequential by default: the units are the parallelism).

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use faer::Par;
use rayon::prelude::*;

use crate::api::{DesignUse, ReplicateData, RowSpaceMode};
use crate::error::CoreError;
use crate::rng::Streams;
use crate::spec::ResolvedScenario;

/// One cell's values in one unit: `values[t * slots + j]` is slot j (each planned
/// metric, then its exact twin if any) at iteration t.
#[derive(Debug, Clone, PartialEq)]
pub struct CellPath {
    /// The cell.
    pub cell: usize,
    /// Row-major (iterations + 1) × slots.
    pub values: Vec<f64>,
}

/// The results of one unit: every cell of the design group on one replicate.
#[derive(Debug, Clone, PartialEq)]
pub struct UnitOutput {
    /// Design group index.
    pub group: usize,
    /// Replicate.
    pub replicate: usize,
    /// One path per member cell, in the group's cell order.
    pub paths: Vec<CellPath>,
}

/// Where finished units go: called from one thread, in the order of the units given to
/// [`run`].
pub trait Sink: Send {
    /// Take one finished unit.
    fn accept(&mut self, unit: UnitOutput) -> Result<(), CoreError>;
}

/// Units computed in parallel before their results are handed to the sink, per thread:
/// enough to keep every thread busy across uneven units, few enough to bound memory.
const WINDOW_PER_THREAD: usize = 8;

/// How to run.
#[derive(Debug, Clone, Copy)]
pub struct RunOptions {
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// Parallelism of the linear algebra inside a unit.
    pub par: Par,
}

impl Default for RunOptions {
    fn default() -> Self {
        RunOptions { threads: 0, par: Par::Seq }
    }
}

/// What the run did besides producing results.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RunStats {
    /// Design factorizations (or row-space samples) computed.
    pub factorizations: usize,
    /// Worker threads used.
    pub threads: usize,
}

/// Every unit of a scenario: (design group, replicate), group-major.
pub fn units(scenario: &ResolvedScenario) -> Vec<(usize, usize)> {
    (0..scenario.groups.len()).flat_map(|g| (0..scenario.replicates).map(move |r| (g, r))).collect()
}

/// Run `units` of a resolved scenario, handing each finished unit to `sink` in the order
/// of `units`, and calling `progress` with the number of (cell, replicate) trajectories
/// each unit finished. While the sink takes one window, the next window is computed.
pub fn run(
    scenario: &ResolvedScenario,
    units: &[(usize, usize)],
    options: RunOptions,
    sink: &mut dyn Sink,
    progress: &(dyn Fn(usize) + Sync),
) -> Result<RunStats, CoreError> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(options.threads)
        .build()
        .map_err(|e| CoreError::config("--threads", format!("cannot start {} threads: {e}", options.threads)))?;
    let threads = pool.current_num_threads();
    let factorizations = Arc::new(AtomicUsize::new(0));
    tracing::info!(
        cells = scenario.cells.len(),
        groups = scenario.groups.len(),
        units = units.len(),
        threads,
        "running scenario `{}`",
        scenario.name
    );
    let window = (threads * WINDOW_PER_THREAD).max(1);
    let compute = |part: &[(usize, usize)]| -> Result<Vec<UnitOutput>, CoreError> {
        part.par_iter()
            .map(|&(g, r)| {
                let out = run_unit(scenario, g, r, options.par, &factorizations)?;
                progress(out.paths.len());
                Ok(out)
            })
            .collect()
    };
    pool.install(|| -> Result<(), CoreError> {
        let mut done: Vec<UnitOutput> = Vec::new();
        for part in units.chunks(window) {
            let (next, delivered) = rayon::join(|| compute(part), || done.drain(..).try_for_each(|u| sink.accept(u)));
            delivered?;
            done = next?;
        }
        done.drain(..).try_for_each(|u| sink.accept(u))
    })?;
    Ok(RunStats { factorizations: factorizations.load(Ordering::Relaxed), threads })
}

/// Run every cell of design group `group` on replicate `replicate`.
pub fn run_unit(
    scenario: &ResolvedScenario,
    group: usize,
    replicate: usize,
    par: Par,
    factorizations: &Arc<AtomicUsize>,
) -> Result<UnitOutput, CoreError> {
    let members = &scenario.groups[group].cells;
    let first = &scenario.cells[members[0]];
    let streams = Streams::new(scenario.seed, scenario.groups[group].key, replicate as u64);
    let mode = match first.plan.design {
        DesignUse::Fixed(mode) => mode,
        DesignUse::Own => RowSpaceMode::Factorize,
    };
    let evaluations: usize = members
        .iter()
        .map(|&c| scenario.cells[c].plan.risk_evaluations_per_iteration * (scenario.cells[c].iterations + 1))
        .sum();
    let data = ReplicateData::new(
        first.n,
        first.p,
        streams,
        first.plugins.covariance.clone(),
        first.plugins.signal.clone(),
        par,
        factorizations.clone(),
    )
    .with_mode(mode)
    .with_evaluation_hint(evaluations);
    // The cells advance in lockstep, iteration by iteration, so that what they share at
    // one iteration (fresh covariates and their factorization, ReplicateData::shared_at)
    // is computed once and held for that iteration only. Each cell's numbers depend only
    // on its own streams, so the order of the steps changes no value.
    let mut running = Vec::with_capacity(members.len());
    for &c in members {
        let cell = &scenario.cells[c];
        let trajectory = cell.plugins.protocol.start(cell.view(), &cell.plan, &data, streams)?;
        running.push((c, trajectory, vec![0.0; cell.plan.slots() * cell.weights.len()]));
    }
    let iterations = members.iter().map(|&c| scenario.cells[c].weights.len()).max().unwrap_or(0);
    for t in 0..iterations {
        for (c, trajectory, values) in &mut running {
            let cell = &scenario.cells[*c];
            let Some(&w) = cell.weights.get(t) else { continue };
            let slots = cell.plan.slots();
            let out = &mut values[t * slots..(t + 1) * slots];
            let located = |e: CoreError| match e {
                CoreError::Numerical { what, detail } => CoreError::Numerical {
                    what,
                    detail: format!("{detail} (cell {c}, replicate {replicate}, iteration {t})"),
                },
                other => other,
            };
            trajectory.step(t, w, out).map_err(located)?;
            if let Some(j) = out.iter().position(|x| !x.is_finite()) {
                return Err(located(CoreError::numerical(
                    "metric",
                    format!("non-finite value {} in column {}", out[j], slot_name(cell, j)),
                )));
            }
        }
    }
    let paths = running.into_iter().map(|(cell, _, values)| CellPath { cell, values }).collect();
    Ok(UnitOutput { group, replicate, paths })
}

/// The column name of slot `j` of a cell's plan.
pub fn slot_name(cell: &crate::spec::Cell, j: usize) -> String {
    let mut k = 0;
    for m in &cell.plan.metrics {
        if k == j {
            return m.metric.name.clone();
        }
        k += 1;
        if m.exact {
            if k == j {
                return format!("{}_exact", m.metric.name);
            }
            k += 1;
        }
    }
    format!("slot {j}")
}

/// An estimate of a run's peak memory, made before it starts.
#[derive(Debug, Clone, PartialEq)]
pub struct MemoryEstimate {
    /// Bytes of the largest unit's working set (design, factorization, trajectories).
    pub per_unit: f64,
    /// Bytes of the results held in the window of units in flight.
    pub window: f64,
    /// per_unit × threads + window.
    pub total: f64,
    /// What dominates the largest unit, naming the fields (for the refusal message).
    pub dominated_by: String,
}

/// Estimate the peak memory of running `scenario` on `threads` threads: per worker thread
/// the largest unit's design matrix (when it is formed), its factorization and the
/// trajectories' state, and the results of the window of units in flight. The fast paths
/// that never form X (sampled row spaces) are estimated as such.
pub fn memory_estimate(scenario: &ResolvedScenario, threads: usize) -> MemoryEstimate {
    const F64: f64 = 8.0;
    let threads = threads.max(1) as f64;
    let mut worst = (0.0f64, String::new());
    let mut window_unit = 0.0f64;
    for group in &scenario.groups {
        let first = &scenario.cells[group.cells[0]];
        let (n, p) = (first.n as f64, first.p as f64);
        let m = n.min(p);
        let (design, what) = match first.plan.design {
            // X, its factors (U: n × m, V: p × m, or the Gram matrix and its eigenvectors).
            DesignUse::Fixed(RowSpaceMode::Factorize) => (
                F64 * (n * p + n * m + p * m + 2.0 * m * m),
                format!("design.n × design.p = {} × {}", first.n, first.p),
            ),
            // Sampled row space: the bidiagonal or Bartlett factor and one draw of length p.
            DesignUse::Fixed(RowSpaceMode::Sample) => {
                (F64 * (3.0 * m * m + p + n.min(4.0 * m)), format!("min(design.n, design.p)² = {}²", m as u64))
            }
            // A fresh X_t and its factorization at every iteration.
            DesignUse::Own => (
                F64 * (2.0 * n * p + 2.0 * m * m),
                format!("design.n × design.p = {} × {} per iteration", first.n, first.p),
            ),
        };
        // Trajectories may hold labels (n) and an estimate (p) of their own.
        let trajectories = F64 * group.cells.len() as f64 * (3.0 * n + 2.0 * p);
        let unit = design + trajectories;
        if unit > worst.0 {
            worst = (unit, what);
        }
        let results: f64 = group
            .cells
            .iter()
            .map(|&c| F64 * (scenario.cells[c].plan.slots() * (scenario.cells[c].iterations + 1)) as f64)
            .sum();
        window_unit = window_unit.max(results);
    }
    let window = window_unit * threads * WINDOW_PER_THREAD as f64 * 2.0;
    MemoryEstimate { per_unit: worst.0, window, total: worst.0 * threads + window, dominated_by: worst.1 }
}
