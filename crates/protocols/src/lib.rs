//! Protocols (`[protocol]`: where each iteration's data come from) and policies
//! (`[policy]`: what is kept across iterations).
//!
//! * `fresh-labels` (docs/fresh-labels.md): fixed X; fresh real labels each iteration,
//!   mixed with synthetic labels from the previous fit.
//! * `fixed-labels` (docs/fixed-labels.md): fixed X and fixed real labels y_0, mixed with
//!   fresh synthetic labels.
//! * `weighted` (docs/weighted.md): P3's n fresh real + m synthetic samples per round,
//!   weighted w/n and (1 − w)/m, for regression and sample families.
//! * `fresh-covariates` (docs/fresh-covariates.md): a new design X_t every iteration,
//!   fresh real labels mixed with synthetic labels on X_t.
//! * `partial-labels` (docs/partial-labels.md): fresh covariates; only a fraction π of
//!   the rows gets a real label.
//! * `generational-chain` (docs/chains.md): P2's chain of generators, each fitted on the
//!   previous one's labels, with a downstream model fitted on every generation's labels.
//! * policies `replace`, `accumulate` and `accumulate-subsample` (docs/policies.md).
//!
//! Fixed-design protocols share [`mixing`]: the shared spectral recursion of the core for
//! spectral estimators with Gaussian labels, a refit path for everything else, and
//! [`theory`] for the predictions. Own-design protocols share [`fresh_design`] (with
//! [`gram`] for the refits and [`fresh_theory`]); refits under an accumulating or
//! subsampling policy keep a [`pool`].

mod chain;
pub mod chain_theory;
mod fixed_labels;
mod fresh_covariates;
pub mod fresh_design;
mod fresh_labels;
pub mod fresh_theory;
pub mod gram;
pub mod mixing;
mod partial_labels;
mod policies;
pub mod pool;
pub mod theory;
mod weighted;

pub use chain::*;
pub use fixed_labels::*;
pub use fresh_covariates::*;
pub use fresh_labels::*;
pub use mixing::{LabelMixing, Path, RealLabels};
pub use partial_labels::*;
pub use policies::*;
pub use weighted::*;
