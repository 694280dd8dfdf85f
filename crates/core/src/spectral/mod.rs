//! Numerical machinery, independent of the plugin API: dense linear algebra with
//! explicit parallelism, the row space of a fixed design and its exact-in-law samplers,
//! the tridiagonal eigen-solver, the shared per-direction recursion of spectral
//! estimators, and Gauss–Hermite quadrature.

pub mod linalg;
pub mod quadrature;
pub mod recursion;
pub mod row_space;
pub mod samplers;
pub mod tridiagonal;

pub use linalg::{TruncatedSvd, truncated_svd};
pub use quadrature::GaussHermite;
pub use recursion::{Directions, Moments, NoiseDraws, Simulation, Source, Step};
pub use row_space::{LowRankForm, RowSpace, SigmaForm};
