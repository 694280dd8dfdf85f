use crate::api::{CellTheory, CellView, MetricSpec, NoTheory, ReplicateData, SampleSizes};
use crate::error::CoreError;
use crate::rng::Streams;

/// How a protocol uses the design of a unit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum DesignUse {
    /// One design per (design group, replicate), shared by every cell of the group; its
    /// row space is obtained as `RowSpaceMode` says.
    Fixed(RowSpaceMode),
    /// The protocol draws its own covariates (e.g. fresh covariates every iteration).
    Own,
}

/// How a protocol needs the row space of a fixed design.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RowSpaceMode {
    /// Draw X and factorize it (thin SVD, or the Gram eigendecomposition for p ≥ 1.5n);
    /// X and U are available.
    Factorize,
    /// Sample the row space directly where that is exact in law (isotropic Gaussian
    /// designs; Σ = a·I + orthonormal low rank with p ≥ 1.5n), otherwise factorize.
    /// Neither X nor U then exists: only for protocols that draw projected noise.
    Sample,
}

/// A metric column with whether the protocol reports its exact conditional
/// expectation beside it (`<name>_exact`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PlannedMetric {
    /// The family's metric.
    pub metric: MetricSpec,
    /// Whether an exact twin is computed.
    pub exact: bool,
}

/// What a protocol declares, at resolve time, about a cell: the engine acts on this and
/// knows nothing else about the protocol.
#[derive(Debug, Clone, PartialEq)]
pub struct Plan {
    /// How the design is used.
    pub design: DesignUse,
    /// The metric columns, in order.
    pub metrics: Vec<PlannedMetric>,
    /// Whether the cell's weights come from the schedule (if not, the scenario needs no
    /// `[schedule]`).
    pub uses_schedule: bool,
    /// How many times per iteration the cell evaluates a Σ-risk on the shared row space
    /// (decides whether precomputing VᵀΣV pays off).
    pub risk_evaluations_per_iteration: usize,
}

impl Plan {
    /// Values written per iteration: each metric, then its exact twin if any.
    pub fn slots(&self) -> usize {
        self.metrics.iter().map(|m| 1 + usize::from(m.exact)).sum()
    }
}

/// The data protocol: where each iteration's data come from (fixed or fresh design,
/// real labels fresh or reused, generator chains, n real + m synthetic). A protocol
/// declares what it needs ([`Protocol::plan`]), advances a trajectory one iteration at a
/// time, and owns the theory of its cells.
pub trait Protocol: Send + Sync + std::fmt::Debug {
    /// Validate the cell (family, estimator, sizes, policy) and declare what it needs.
    fn plan(&self, cell: &CellView<'_>) -> Result<Plan, CoreError>;
    /// Start a trajectory for one cell on one replicate.
    fn start<'a>(
        &'a self,
        cell: CellView<'a>,
        plan: &'a Plan,
        data: &'a ReplicateData,
        streams: Streams,
    ) -> Result<Box<dyn Trajectory + 'a>, CoreError>;
    /// The theory of a cell, or why there is none.
    fn theory(&self, cell: &CellView<'_>) -> Result<Box<dyn CellTheory>, NoTheory> {
        let _ = cell;
        Err(NoTheory::new("this protocol has no theory"))
    }
    /// The real and synthetic samples per round, for protocols that draw both (n real and
    /// m synthetic: `weighted`); schedules that depend on k = n/m read it here.
    fn sample_sizes(&self, cell: &CellView<'_>) -> Option<SampleSizes> {
        let _ = cell;
        None
    }
}

/// One run of iterations of a protocol, for one (cell, replicate).
pub trait Trajectory: Send {
    /// Advance to iteration `t` (t = 0 is the first fit) with real-data weight `w`, and
    /// write the plan's values (each metric, then its exact twin if planned) into `out`.
    fn step(&mut self, t: usize, w: f64, out: &mut [f64]) -> Result<(), CoreError>;
}

/// What is kept across iterations (docs/spectral-recursion.md §5).
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Retention {
    /// Train on the union of every iteration's data so far, the newest iteration's data
    /// with total weight `newest` and the previous training set scaled by 1 − newest
    /// (replace: 1; accumulate with equal weights: 1/(t + 1)).
    Pool {
        /// Weight of the newest iteration's data.
        newest: f64,
    },
    /// Train on `rows` rows drawn uniformly without replacement from all data so far.
    Subsample {
        /// Training-set size.
        rows: usize,
    },
}

/// A policy: what is kept across iterations, independent of where labels come from.
pub trait Policy: Send + Sync + std::fmt::Debug {
    /// The retention at iteration t ≥ 1 for a protocol whose iterations bring `n` rows.
    fn retention(&self, t: usize, n: usize) -> Retention;
}
