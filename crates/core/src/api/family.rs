use faer::ColRef;

use crate::api::{Covariance, Likelihood};
use crate::error::CoreError;
use crate::rng::Rng;

/// What a metric measures, so that protocols with fast paths can compute it without
/// reconstructing the estimate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MetricKind {
    /// ‖β̂ − β‖²_Σ, the excess prediction risk of a linear predictor under Gaussian
    /// covariates; spectral protocols evaluate it in the design's singular coordinates.
    SigmaError,
    /// The population excess loss E_x[KL(law(y | xᵀβ) ‖ law(y | xᵀβ̂))] of the family's
    /// likelihood (excess log-loss for Bernoulli labels, excess deviance/2 for Poisson).
    ExcessLoss,
    /// Anything else; computed by [`Regression::score`].
    Other,
}

/// A metric a family scores each estimate with; it becomes a Parquet column.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MetricSpec {
    /// Column name (`risk`, `param_error`, `excess_logloss`).
    pub name: String,
    /// How it is computed.
    pub kind: MetricKind,
    /// One line for `collapse describe` and the docs.
    pub summary: String,
}

impl MetricSpec {
    /// A metric called `name`.
    pub fn new(name: &str, kind: MetricKind, summary: &str) -> Self {
        MetricSpec { name: name.into(), kind, summary: summary.into() }
    }
}

/// Whether labels are drawn from the true model or from the previous fit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Origin {
    /// Real data, from the true β.
    Real,
    /// Synthetic data, from the previous iteration's estimate.
    Synthetic,
}

/// Gaussian label noise: y = xᵀb + N(0, σ²), synthetic labels with σ̃.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GaussianNoise {
    /// σ of real labels.
    pub sigma: f64,
    /// σ̃ of synthetic labels.
    pub synthetic_sigma: f64,
}

/// The data model: how real and synthetic data are drawn from a model and how an
/// estimate is scored. Families of the regression kind (labels given covariates) say so
/// through [`Family::regression`]; other kinds (distribution estimation from samples)
/// have their own accessor.
pub trait Family: Send + Sync + std::fmt::Debug {
    /// The metrics, in column order.
    fn metrics(&self) -> Vec<MetricSpec>;
    /// The regression view of this family, if it is one.
    fn regression(&self) -> Option<&dyn Regression> {
        None
    }
}

/// A regression family: y | x drawn from a law with natural parameter η = xᵀβ.
pub trait Regression: Send + Sync + std::fmt::Debug {
    /// The likelihood that estimators fitting by likelihood minimise.
    fn likelihood(&self) -> &dyn Likelihood;
    /// Draw labels for the linear predictors `eta` (real: from the true β; synthetic:
    /// from the previous estimate) into `out`, consuming `rng` in order.
    fn draw_labels(&self, eta: &[f64], origin: Origin, rng: &mut crate::rng::Rng, out: &mut [f64]);
    /// Gaussian label noise, when labels are xᵀb + Gaussian noise: it lets fixed-design
    /// protocols use the spectral recursion and its exact risk.
    fn gaussian_noise(&self) -> Option<GaussianNoise> {
        None
    }
    /// Score `estimate` against `truth` for covariates x ~ N(0, Σ): one value per
    /// metric of [`Family::metrics`], in order, into `out`.
    fn score(
        &self,
        estimate: ColRef<'_, f64>,
        truth: ColRef<'_, f64>,
        covariance: &dyn Covariance,
        out: &mut [f64],
    ) -> Result<(), CoreError>;
}

/// Helper for families: fill `out` with N(0, sd²) draws added to `mean`.
pub fn gaussian_labels(mean: &[f64], sd: f64, rng: &mut Rng, out: &mut [f64]) {
    crate::rng::fill_normal(rng, sd, out);
    for (o, m) in out.iter_mut().zip(mean) {
        *o += m;
    }
}
