use std::any::Any;

use faer::{ColRef, Mat, MatRef};

use crate::api::{CellTheory, Covariance, Likelihood, NoTheory};
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
/// estimate is scored. Families of the regression kind (labels given covariates, a linear
/// predictor xᵀβ) say so through [`Family::regression`]; families whose model is a
/// distribution or a function estimated from samples (a Gaussian mean and covariance, an
/// empirical CDF, a kernel smoother) through [`Family::samples`]. A family has at least
/// one of the two views.
pub trait Family: Send + Sync + std::fmt::Debug {
    /// The metrics, in column order.
    fn metrics(&self) -> Vec<MetricSpec>;
    /// The regression view of this family, if it is one.
    fn regression(&self) -> Option<&dyn Regression> {
        None
    }
    /// The sample view of this family, if it is one.
    fn samples(&self) -> Option<&dyn SampleFamily> {
        None
    }
}

/// A fitted (or true) model of a [`SampleFamily`]: opaque to protocols, which only hand
/// it back to the family that made it. Each family downcasts to its own state type.
pub type Model = Box<dyn Any + Send + Sync>;

/// Real and synthetic samples per round of a protocol that draws both (docs/weighted.md §1).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SampleSizes {
    /// Real samples n.
    pub real: usize,
    /// Synthetic samples m.
    pub synthetic: usize,
}

impl SampleSizes {
    /// k = n/m.
    pub fn ratio(&self) -> f64 {
        self.real as f64 / self.synthetic as f64
    }
}

/// A family whose model is estimated from samples (rows of a matrix) rather than from
/// labels given covariates: it draws samples from the truth or from a fitted model, fits
/// a weighted estimate, scores it exactly (closed forms or quadrature, never a test
/// sample), and predicts the weighted recursion's first-order theory
/// (docs/weighted.md §2, docs/families.md).
///
/// Weights passed to [`SampleFamily::fit`] are normalised to sum to 1: real samples get
/// w/n each and synthetic samples (1 − w)/m each (docs/weighted.md §1).
pub trait SampleFamily: Send + Sync + std::fmt::Debug {
    /// Check that the family can run with p features (some families are one-dimensional);
    /// the error names the field and what is allowed.
    fn check(&self, p: usize) -> Result<(), CoreError> {
        let _ = p;
        Ok(())
    }
    /// The true model of one replicate, from the signal β (a mean, a location) and the
    /// covariance of the cell.
    fn truth(&self, beta: ColRef<'_, f64>, covariance: &dyn Covariance) -> Result<Model, CoreError>;
    /// Draw `count` samples (one per row) from `model` (real: the truth; synthetic: the
    /// previous fit), consuming `rng` in order so that common random numbers couple
    /// the draws of nearby models.
    fn draw(
        &self,
        model: &Model,
        origin: Origin,
        count: usize,
        covariance: &dyn Covariance,
        rng: &mut Rng,
    ) -> Result<Mat<f64>, CoreError>;
    /// Fit the weighted estimate to `samples` with row weights `weights` (≥ 0, summing
    /// to 1); `previous` is the previous round's fit (a warm start, or for a mixture
    /// estimate unused).
    fn fit(&self, samples: MatRef<'_, f64>, weights: &[f64], previous: Option<&Model>) -> Result<Model, CoreError>;
    /// Score `estimate` against `truth`: one value per metric of [`Family::metrics`].
    fn score(&self, estimate: &Model, truth: &Model, out: &mut [f64]) -> Result<(), CoreError>;
    /// The theory of the weighted recursion with these sizes (docs/weighted.md §2): each
    /// metric's expected path under a schedule, the stationary main metric and its
    /// optimal weight, or why there is none.
    fn weighted_theory(&self, sizes: SampleSizes, covariance: &dyn Covariance)
    -> Result<Box<dyn CellTheory>, NoTheory>;
}

/// Downcast a [`Model`] to the family's state type; a mismatch is a numerical error
/// naming the family (a protocol handed a model to the wrong family).
pub fn model_ref<'a, T: 'static>(model: &'a Model, family: &'static str) -> Result<&'a T, CoreError> {
    model.downcast_ref::<T>().ok_or_else(|| CoreError::numerical(family, "a model of another family was passed"))
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
