//! Model families: the data model of a scenario (`[family]`). A family draws real data
//! from the true model and synthetic data from the previous fit, and scores estimates
//! with its declared metrics, computed from population quantities (Σ, closed forms,
//! quadrature), never from a sampled test set.
//!
//! Regression families (labels given covariates, [`collapse_core::Regression`]) supply
//! the likelihood that estimators minimise:
//! * `linear-gaussian`: y = xᵀβ + N(0, σ²); metric `risk` = ‖β̂ − β‖²_Σ
//!   (docs/fresh-labels.md §1).
//! * `logistic`: y ~ Bernoulli(sigmoid(xᵀβ)); metrics `param_error` and
//!   `excess_logloss` (docs/logistic.md).
//! * `poisson`: y ~ Poisson(exp(xᵀβ)); metrics `param_error` and `excess_loss`
//!   (docs/families.md §2).
//!
//! Sample families (a model estimated from samples, [`collapse_core::SampleFamily`])
//! fit their own weighted estimate (estimator `mle`) and carry the theory of the
//! weighted recursion (docs/weighted.md, docs/families.md):
//! * `gaussian`: N(μ, Σ), metrics `mean_error`, `cov_error` (docs/families.md §1).
//! * `ecdf`: the empirical CDF, metrics `l2`, `ks` (docs/families.md §3).
//! * `kernel-regression`: Nadaraya–Watson on [0, 1], metric `ise` (docs/families.md §4).

mod ecdf;
mod gaussian;
mod kernel_regression;
mod linear_gaussian;
mod logistic;
mod poisson;
#[cfg(test)]
mod test_support;

pub use ecdf::*;
pub use gaussian::*;
pub use kernel_regression::*;
pub use linear_gaussian::*;
pub use logistic::*;
pub use poisson::*;

/// The `design.p = 1` requirement of a family on the real line; `why` says why, in the
/// error a user sees.
fn require_one_dimension(p: usize, why: &str) -> Result<(), collapse_core::CoreError> {
    if p == 1 {
        Ok(())
    } else {
        Err(collapse_core::CoreError::config("design.p", format!("{why}; set p = 1 (got {p})")))
    }
}

/// ∫ g over [a, b] by the composite Simpson rule with `cells` (even) cells; 0 for an
/// empty interval.
fn simpson(a: f64, b: f64, cells: usize, g: impl Fn(f64) -> f64) -> f64 {
    if b <= a {
        return 0.0;
    }
    let h = (b - a) / cells as f64;
    let mut s = g(a) + g(b);
    for i in 1..cells {
        s += g(a + i as f64 * h) * if i % 2 == 1 { 4.0 } else { 2.0 };
    }
    s * h / 3.0
}
