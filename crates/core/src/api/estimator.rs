use faer::{Col, ColRef, MatRef, Par};

use crate::error::CoreError;

/// The negative log-likelihood of a regression family in its natural parameter
/// η = xᵀβ: what an estimator that fits by likelihood minimises. Canonical GLMs have
/// loss(y, η) = b(η) − yη with mean b'(η) and variance b''(η); the Gaussian family is
/// the squared error (η − y)²/2.
pub trait Likelihood: Send + Sync + std::fmt::Debug {
    /// Short name (`gaussian`, `bernoulli`, `poisson`), for messages.
    fn name(&self) -> &'static str;
    /// True for the Gaussian (squared-error) likelihood, which least-squares
    /// estimators (ridge, min-norm, OLS, PCR) fit.
    fn is_gaussian(&self) -> bool;
    /// The mean E[y | η] = b'(η).
    fn mean(&self, eta: f64) -> f64;
    /// The variance b''(η), the Newton weight of a canonical GLM.
    fn variance(&self, eta: f64) -> f64;
    /// The loss b(η) − yη (up to a term free of η).
    fn loss(&self, y: f64, eta: f64) -> f64;
    /// Whether `y` is a valid (possibly soft, i.e. mixed) label for this likelihood.
    fn valid_label(&self, y: f64) -> bool;
}

/// What an estimator is given to fit.
#[derive(Debug, Clone, Copy)]
pub struct FitInput<'a> {
    /// Rows x_i (n × p).
    pub x: MatRef<'a, f64>,
    /// Labels (possibly soft: a weighted mix of real and synthetic labels).
    pub y: ColRef<'a, f64>,
    /// Row weights c_i ≥ 0 (None: all 1). Row i enters the loss with weight c_i.
    pub weights: Option<ColRef<'a, f64>>,
    /// The family's likelihood.
    pub likelihood: &'a dyn Likelihood,
    /// A starting point for iterative estimators (the previous iteration's estimate).
    pub start: Option<ColRef<'a, f64>>,
    /// Parallelism for the linear algebra (the engine passes `Par::Seq` inside units).
    pub par: Par,
}

/// Fits a linear model β̂ ∈ R^p to (weighted, possibly soft-labelled) data.
pub trait Estimator: Send + Sync + std::fmt::Debug {
    /// Fit β̂. Numerical failure (non-convergence, separation, non-finite values) is an
    /// error naming what failed, never a NaN.
    fn fit(&self, input: &FitInput<'_>) -> Result<Col<f64>, CoreError>;
    /// Whether this estimator fits data of `likelihood`; the error says what to use
    /// instead. Checked when the scenario is resolved.
    fn supports(&self, likelihood: &dyn Likelihood) -> Result<(), String> {
        if likelihood.is_gaussian() {
            Ok(())
        } else {
            Err(format!(
                "fits least squares only, but the family's labels are {}; use an estimator that fits by likelihood (irls)",
                likelihood.name()
            ))
        }
    }
    /// The spectral form of this estimator, if it has one.
    fn spectral(&self) -> Option<&dyn SpectralFilter> {
        None
    }
    /// The ridge penalty λ in (XᵀX + nλI) (0 for min-norm and OLS) when the estimator is
    /// ridge; theory uses it.
    fn ridge_penalty(&self) -> Option<f64> {
        None
    }
    /// True for an estimator that, on a family without a regression view
    /// ([`crate::Family::samples`]: a mean and covariance, an empirical CDF, a smoother),
    /// lets the family compute its own weighted estimate (`mle`). Protocols that fit
    /// sample families require it.
    fn defers_to_family(&self) -> bool {
        false
    }

    /// True for a ridge whose penalty the protocol chooses, per cell and iteration, as
    /// the argmin of its theory's predicted error (`tuned-ridge`). Such an estimator has
    /// no penalty of its own: a protocol that does not tune must reject it in `plan`.
    fn tuned_penalty(&self) -> Option<Tuning> {
        None
    }
}

/// When a tuned penalty is chosen ([`Estimator::tuned_penalty`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tuning {
    /// Re-tuned at every iteration.
    EveryIteration,
    /// Tuned at t = 0 and kept for every later iteration.
    FirstIteration,
}

/// An estimator that is a spectral filter of the design: with the thin SVD
/// X = U diag(d) Vᵀ, β̂ = V diag(g) Uᵀy (docs/estimators.md §1). Ridge, min-norm, OLS,
/// principal-component regression and early-stopped gradient descent are of this form,
/// which lets protocols factor X once, iterate in O(r) and compute the exact risk.
pub trait SpectralFilter: Send + Sync + std::fmt::Debug {
    /// The gains g_i for the singular values `d` (descending, all > 0) of a design with
    /// `n` rows. The filter sees the whole spectrum (PCR keeps the k largest); an error
    /// says why the filter is not defined for this design.
    fn gains(&self, d: &[f64], n: usize) -> Result<Vec<f64>, CoreError>;
}

/// The squared-error likelihood (η − y)²/2 of Gaussian labels.
#[derive(Debug, Clone, Copy, Default)]
pub struct SquaredError;

impl Likelihood for SquaredError {
    fn name(&self) -> &'static str {
        "gaussian"
    }
    fn is_gaussian(&self) -> bool {
        true
    }
    fn mean(&self, eta: f64) -> f64 {
        eta
    }
    fn variance(&self, _: f64) -> f64 {
        1.0
    }
    fn loss(&self, y: f64, eta: f64) -> f64 {
        0.5 * (eta - y) * (eta - y)
    }
    fn valid_label(&self, y: f64) -> bool {
        y.is_finite()
    }
}
