//! Protocols (`[protocol]`: where each iteration's data come from) and policies
//! (`[policy]`: what is kept across iterations).
//!
//! * `fresh-labels` (docs/fresh-labels.md): fixed X; fresh real labels each iteration,
//!   mixed with synthetic labels from the previous fit.
//! * `fixed-labels` (docs/fixed-labels.md): fixed X and fixed real labels y_0, mixed with
//!   fresh synthetic labels.
//! * `generational-chain` (docs/chains.md): P2's chain of generators, each fitted on the
//!   previous one's labels, with a downstream model fitted on every generation's labels.
//! * policies `replace` and `accumulate` (docs/spectral-recursion.md §5).
//!
//! Fixed-design protocols share [`mixing`]: the shared spectral recursion of the core for
//! spectral estimators with Gaussian labels, a refit path for everything else, and
//! [`theory`] for the predictions.

mod chain;
pub mod chain_theory;
mod fixed_labels;
mod fresh_labels;
pub mod mixing;
mod policies;
pub mod theory;

pub use chain::*;
pub use fixed_labels::*;
pub use fresh_labels::*;
pub use mixing::{LabelMixing, Path, RealLabels};
pub use policies::*;
