//! Core of `collapse`: the plugin API, the registry, scenario files and sweep grids,
//! reproducible random streams, the engine and its sinks, result tables, and the
//! numerical machinery (row spaces, samplers, the shared spectral recursion).
//!
//! Layers, with no cycles: [`error`] and [`rng`] at the bottom; [`spectral`] (numerics,
//! no plugin types); [`api`] (traits and the types they use); [`registry`]; [`spec`];
//! [`engine`] and [`results`]. This crate knows no plugin and no file format.

pub mod api;
pub mod engine;
pub mod error;
pub mod registry;
pub mod results;
pub mod rng;
pub mod spec;
pub mod spectral;

pub use api::*;
pub use engine::{CellPath, RunOptions, RunStats, Sink, UnitOutput};
pub use error::{CoreError, ParamError};
pub use registry::{
    CovariancePlugin, EstimatorPlugin, FamilyPlugin, Params, Plugin, PolicyPlugin, ProtocolPlugin, ScenarioPlugin,
    SchedulePlugin, Section, SignalPlugin,
};
pub use results::{ColumnData, Table};
pub use rng::{Purpose, Rng, Streams};
pub use spec::{ResolvedScenario, apply_override, parse, resolve};

/// Re-exported so plugin crates use the same versions and need no direct dependency.
pub use faer;
pub use inventory;
pub use rand;
pub use schemars;
pub use serde;
pub use serde_json;
