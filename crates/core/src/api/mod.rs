//! The plugin API: object-safe traits that plugins implement, and the types they use.
//!
//! The engine owns the loop (units, cells, iterations, parallelism, results). A plugin
//! fills in one step: a [`Family`] draws labels and scores estimates, a [`Covariance`]
//! samples designs and exposes Σ's eigen-structure, a [`Signal`] draws β, an
//! [`Estimator`] fits, a [`Schedule`] gives the real-data weight of each iteration, a
//! [`Protocol`] turns the previous iteration's state into the next one, and a [`Policy`]
//! says what is kept across iterations. Randomness always comes in as an argument.

mod cell;
mod covariance;
mod data;
mod estimator;
mod family;
mod protocol;
mod schedule;
mod signal;
mod table;
mod theory;

pub use cell::{BuildContext, CellView};
pub use covariance::{Covariance, sigma_form};
pub use data::ReplicateData;
pub use estimator::{Estimator, FitInput, Likelihood, SpectralFilter, SquaredError, Tuning};
pub use family::{
    Family, GaussianNoise, MetricKind, MetricSpec, Model, Origin, Regression, SampleFamily, SampleSizes,
    gaussian_labels, model_ref,
};
pub use protocol::{DesignUse, Plan, PlannedMetric, Policy, Protocol, Retention, RowSpaceMode, Trajectory};
pub use schedule::Schedule;
pub use signal::Signal;
pub use table::{DataTable, Population, file_hash, register_table, registered_table};
pub use theory::{CellTheory, NoTheory, Path, minimise_weight};
