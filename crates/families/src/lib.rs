//! Model families: the data model of a scenario (`[family]`). A family draws real
//! labels from the true model and synthetic labels from the previous fit, supplies the
//! likelihood that estimators fitting by likelihood minimise, and scores estimates with
//! its declared metrics, computed from population quantities (Σ, quadrature), never from
//! a sampled test set.
//!
//! * `linear-gaussian`: y = xᵀβ + N(0, σ²); metric `risk` = ‖β̂ − β‖²_Σ
//!   (docs/fresh-labels.md §1).
//! * `logistic`: y ~ Bernoulli(sigmoid(xᵀβ)); metrics `param_error` and
//!   `excess_logloss` (docs/logistic.md).

mod linear_gaussian;
mod logistic;

pub use linear_gaussian::*;
pub use logistic::*;
