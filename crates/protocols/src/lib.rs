//! Protocols (`[protocol]`: where each iteration's data come from) and policies
//! (`[policy]`: what is kept across iterations).
//!
//! * `fresh-labels` (docs/fresh-labels.md): fixed X; fresh real labels each iteration,
//!   mixed with synthetic labels from the previous fit.
//! * `fixed-labels` (docs/fixed-labels.md): fixed X and fixed real labels y_0, mixed with
//!   fresh synthetic labels.
//! * `weighted` (docs/weighted.md): P3's n fresh real + m synthetic samples per round,
//!   weighted w/n and (1 − w)/m, for regression and sample families.
//! * policies `replace` and `accumulate` (docs/spectral-recursion.md §5).
//!
//! Fixed-design protocols share [`mixing`]: the shared spectral recursion of the core for
//! spectral estimators with Gaussian labels, a refit path for everything else, and
//! [`theory`] for the predictions.

mod fixed_labels;
mod fresh_labels;
pub mod mixing;
mod policies;
pub mod theory;
mod weighted;

pub use fixed_labels::*;
pub use fresh_labels::*;
pub use mixing::{LabelMixing, Path, RealLabels};
pub use policies::*;
pub use weighted::*;
