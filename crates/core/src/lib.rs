//! Core of `collapse`: the plugin traits, the registry, scenario files and sweep grids,
//! reproducible random streams, the engine and the result tables.
//!
//! See the workspace README for the user's view and `DESIGN.md`-style notes in each
//! module for the why. This crate knows no plugin and no output format.

pub mod engine;
pub mod error;
pub mod model;
pub mod registry;
pub mod replicate;
pub mod rng;
pub mod spec;
pub mod theory;

pub use engine::{ColumnData, RunResults, Table};
pub use error::{CoreError, ParamError, check_above, check_range};
pub use model::{CellView, Chain, Covariance, Estimator, LowRankForm, Schedule, Setting, Signal, SpectralFilter};
pub use registry::{
    BuildContext, CovariancePlugin, EstimatorPlugin, Kind, Params, Plugin, ScenarioPlugin, SchedulePlugin,
    SettingPlugin, SignalPlugin,
};
pub use replicate::{Outcome, ReplicateData, RowSpace, RowSpaceMode, TruncatedSvd, truncated_svd};
pub use rng::{Purpose, Rng, Streams};
pub use spec::{ResolvedScenario, apply_override, parse, resolve};
pub use theory::{TheoryCell, TheoryModel, TheoryPlugin};

/// Re-exported so plugin crates use the same versions.
pub use faer;
pub use inventory;
pub use schemars;
pub use serde_json;
