//! The theory of label-mixing cells, built from the cell's typed plugins (never from
//! parameter names): the estimator's ridge penalty, the covariance spectrum H, the
//! signal distribution G, the family's noise or likelihood, the policy and the schedule.
//!
//! * Linear-Gaussian labels, min-norm/OLS: risk_t = B + a_t·V exactly in t, with a_t the
//!   variance factor of the protocol (fresh: docs/fresh-labels.md §3; fixed:
//!   docs/fixed-labels.md §3) and (B, V) the single-fit limits (docs/asymptotics.md §3).
//! * Linear-Gaussian labels, ridge: fresh labels: the isotropic finite-t path
//!   (docs/asymptotics.md §6) or, for general (H, G) and a constant weight, t = 0 and the
//!   stationary limit (docs/asymptotics.md §4); fixed labels: t = 0 and the stationary
//!   limit (docs/fixed-labels.md §4).
//! * A pooling policy other than replace (accumulate): min-norm/OLS only, risk_t = B + a_t·V
//!   with the pooled variance factors of docs/policies.md §2; no theory for subsampling.
//! * Canonical GLM labels (logistic, ...) with the unpenalised MLE: the linearized
//!   prediction a_t·tr(Σ I(β)⁻¹)/n for ‖β̂ − β‖²_Σ and a_t·p/(2n) for the excess loss
//!   (docs/logistic.md §3, §4).

use collapse_core::spectral::GaussHermite;
use collapse_core::{CellTheory, CellView, MetricKind, NoTheory, Path, Retention, minimise_weight};
use collapse_theory::{
    GOLDEN_W, RidgeMixingEvaluator, Spectrum, c_k, fixed_labels_factors, isotropic_path, min_norm_limit, optimal_w,
    optimal_w_noise_ratio, pooled_variance_factors, variance_factors_with_noise_ratio,
};

use crate::mixing::RealLabels;

/// A theory that does not apply, and why.
pub(crate) fn no(e: impl std::fmt::Display) -> NoTheory {
    NoTheory::new(e.to_string())
}

/// The asymptotic description of a linear-Gaussian cell.
#[derive(Debug, Clone)]
pub struct LinearInputs {
    /// Spectral distribution H of Σ.
    pub h: Spectrum,
    /// Signal distribution G (share of ‖β‖² per eigenvalue of Σ).
    pub g: Spectrum,
    /// γ = p/n.
    pub gamma: f64,
    /// r² = E‖β‖².
    pub r2: f64,
    /// σ² of real labels.
    pub sigma2: f64,
    /// k = σ̃²/σ².
    pub noise_ratio: f64,
    /// Ridge penalty (0 for min-norm / OLS).
    pub lambda: f64,
    /// True when Σ = I.
    pub isotropic: bool,
}

impl LinearInputs {
    /// Read the inputs off a cell whose family has Gaussian labels.
    pub fn from_view(view: &CellView<'_>) -> Result<Self, NoTheory> {
        let noise = view
            .family
            .regression()
            .and_then(|r| r.gaussian_noise())
            .ok_or_else(|| no("the family's labels are not Gaussian"))?;
        let lambda = view
            .estimator
            .ridge_penalty()
            .ok_or_else(|| no("no asymptotic theory for this estimator (ridge, min-norm and OLS have one)"))?;
        let taus = view.covariance.eigenvalues();
        let shares = view
            .signal
            .eigen_shares(view.covariance)
            .ok_or_else(|| no("the signal cannot say how ‖β‖² spreads over Σ's eigenbasis"))?;
        if shares.len() != taus.len() || taus.iter().any(|t| !t.is_finite()) {
            return Err(no("the covariance spectrum is not available"));
        }
        let sigma2 = noise.sigma * noise.sigma;
        let noise_ratio = if sigma2 > 0.0 {
            (noise.synthetic_sigma * noise.synthetic_sigma) / sigma2
        } else if noise.synthetic_sigma > 0.0 {
            return Err(no("σ = 0 with σ̃ > 0: the variance factors are relative to σ²"));
        } else {
            1.0
        };
        Ok(LinearInputs {
            h: Spectrum::from_eigenvalues(&taus).map_err(no)?,
            g: Spectrum::from_atoms(&taus, &shares).map_err(no)?,
            gamma: view.p as f64 / view.n as f64,
            r2: view.signal.radius_squared(view.covariance),
            sigma2,
            noise_ratio,
            lambda,
            isotropic: view.covariance.is_isotropic(),
        })
    }
}

/// The linearized description of a canonical-GLM cell (docs/logistic.md §3).
#[derive(Debug, Clone, Copy)]
pub struct GlmInputs {
    /// tr(Σ I(β)⁻¹)/n: the single-fit variance of ‖β̂ − β‖²_Σ.
    pub variance: f64,
    /// p/(2n): the single-fit expected excess loss.
    pub excess: f64,
}

impl GlmInputs {
    /// Read the inputs off a cell with a non-Gaussian regression family and the MLE.
    pub fn from_view(view: &CellView<'_>) -> Result<Self, NoTheory> {
        let reg = view.family.regression().ok_or_else(|| no("not a regression family"))?;
        let lik = reg.likelihood();
        match view.estimator.ridge_penalty() {
            None => return Err(no("no theory for this estimator")),
            Some(l) if l > 0.0 => return Err(no("the linearized GLM theory covers the unpenalised MLE (λ = 0) only")),
            Some(_) => {}
        }
        if view.n <= view.p {
            return Err(no("the linearized GLM theory needs n > p (it is a large-n expansion)"));
        }
        if !view.signal.fixed_sigma_norm(view.covariance) {
            return Err(no("βᵀΣβ varies between replicates for this signal and covariance"));
        }
        let taus = view.covariance.eigenvalues();
        let shares =
            view.signal.eigen_shares(view.covariance).ok_or_else(|| no("the signal's eigen-shares are unknown"))?;
        let s2 =
            view.signal.radius_squared(view.covariance) * taus.iter().zip(&shares).map(|(t, s)| t * s).sum::<f64>();
        let gh = GaussHermite::new(60).map_err(no)?;
        let s = s2.max(0.0).sqrt();
        let e0 = gh.expect(|z| lik.variance(s * z));
        let p = view.p as f64;
        // tr(Σ I⁻¹) = (p − 1)/E b''(η) + s²/E[b''(η) η²], η ~ N(0, s²) (docs/logistic.md §3).
        let trace = if s2 > 1e-12 {
            let e2 = gh.expect(|z| lik.variance(s * z) * s2 * z * z);
            (p - 1.0) / e0 + s2 / e2
        } else {
            p / e0
        };
        if !(trace.is_finite() && trace > 0.0) {
            return Err(no("the Fisher information is singular for this signal"));
        }
        let n = view.n as f64;
        Ok(GlmInputs { variance: trace / n, excess: p / (2.0 * n) })
    }
}

/// What the theory predicts from.
#[derive(Debug, Clone)]
enum Model {
    Linear(LinearInputs),
    Glm(GlmInputs),
}

/// The theory of a label-mixing cell (module docs).
#[derive(Debug, Clone)]
pub struct MixingTheory {
    real: RealLabels,
    model: Model,
    metrics: Vec<MetricKind>,
    /// The policy's averaging weights ℓ_t for t ≥ 1 when it is not replace.
    pooled: Option<Vec<f64>>,
}

/// Build the theory of a label-mixing cell, or say why there is none.
pub fn mixing_theory(view: &CellView<'_>, real: RealLabels) -> Result<Box<dyn CellTheory>, NoTheory> {
    let averaging = (1..=view.iterations.max(1))
        .map(|t| match view.policy.retention(t, view.n) {
            Retention::Pool { newest } => Some(newest),
            Retention::Subsample { .. } => None,
        })
        .collect::<Option<Vec<f64>>>()
        .ok_or_else(|| no("no theory for a subsampling policy (docs/policies.md §6)"))?;
    let pooled = (!averaging.iter().all(|&l| l >= 1.0)).then_some(averaging);
    let reg = view.family.regression().ok_or_else(|| no("not a regression family"))?;
    let model = if reg.gaussian_noise().is_some() {
        Model::Linear(LinearInputs::from_view(view)?)
    } else {
        Model::Glm(GlmInputs::from_view(view)?)
    };
    if pooled.is_some() && !matches!(&model, Model::Linear(i) if i.lambda == 0.0) {
        return Err(no(
            "with a policy other than replace the theory covers min-norm and OLS with Gaussian labels (docs/policies.md §2)",
        ));
    }
    let metrics = view.family.metrics().into_iter().map(|m| m.kind).collect();
    Ok(Box::new(MixingTheory { real, model, metrics, pooled }))
}

impl MixingTheory {
    /// Variance factors a_t of the schedule, in units of the single-fit variance.
    fn factors(&self, weights: &[f64], k: f64) -> Vec<f64> {
        if let Some(averaging) = &self.pooled {
            return pooled_variance_factors(weights, averaging, k, self.real == RealLabels::Fixed);
        }
        match self.real {
            RealLabels::Fresh => variance_factors_with_noise_ratio(weights, k),
            RealLabels::Fixed => fixed_labels_factors(weights, k),
        }
    }

    /// The stationary variance factor at constant w.
    fn factor_limit(&self, w: f64, k: f64) -> f64 {
        match self.real {
            RealLabels::Fresh => c_k(w, k),
            RealLabels::Fixed => 1.0 + k * (1.0 - w) * (1.0 - w) / (w * (2.0 - w)),
        }
    }

    /// The main metric's path for a linear-Gaussian cell.
    fn linear_path(&self, i: &LinearInputs, weights: &[f64]) -> Result<Path, NoTheory> {
        if i.lambda == 0.0 && (i.gamma - 1.0).abs() < 1e-12 {
            return Err(no(
                "the min-norm risk has no finite limit at γ = p/n = 1 (the interpolation peak, docs/asymptotics.md §3)",
            ));
        }
        if i.lambda == 0.0 {
            let bv = min_norm_limit(&i.h, &i.g, i.gamma, i.r2, i.sigma2).map_err(no)?;
            return Ok(self
                .factors(weights, i.noise_ratio)
                .into_iter()
                .map(|a| Some(bv.bias + a * bv.variance))
                .collect());
        }
        if (i.noise_ratio - 1.0).abs() > 1e-12 {
            return Err(no("the ridge theory assumes synthetic labels as noisy as real ones (σ̃ = σ)"));
        }
        if self.real == RealLabels::Fresh && i.isotropic {
            return isotropic_path(i.gamma, i.r2, i.sigma2, i.lambda, weights)
                .map(|v| v.into_iter().map(Some).collect())
                .map_err(no);
        }
        // t = 0 (one ridge fit) and, for a constant weight, the stationary limit once the
        // transient, bounded by (1 − w)^t, is below 1e-6.
        let mut ev = RidgeMixingEvaluator::new(&i.h, &i.g, i.gamma, i.r2, i.sigma2).map_err(no)?;
        let mut out = vec![None; weights.len()];
        if let Some(first) = out.first_mut() {
            *first = Some(ev.limit(i.lambda, 1.0).map_err(no)?.total());
        }
        let tail = &weights[1.min(weights.len())..];
        if let Some(&w) = tail.first()
            && w > 0.0
            && tail.iter().all(|&x| (x - w).abs() <= f64::EPSILON)
        {
            let limit = self.limit(w)?;
            for (t, slot) in out.iter_mut().enumerate().skip(1) {
                if (1.0 - w).powi(t as i32) < 1e-6 {
                    *slot = Some(limit);
                }
            }
        }
        Ok(out)
    }
}

impl CellTheory for MixingTheory {
    fn paths(&self, weights: &[f64]) -> Vec<Result<Path, NoTheory>> {
        self.metrics
            .iter()
            .map(|kind| match (&self.model, kind) {
                (Model::Linear(i), MetricKind::SigmaError) => self.linear_path(i, weights),
                (Model::Glm(g), MetricKind::SigmaError) => {
                    Ok(self.factors(weights, 1.0).into_iter().map(|a| Some(a * g.variance)).collect())
                }
                (Model::Glm(g), MetricKind::ExcessLoss) => {
                    Ok(self.factors(weights, 1.0).into_iter().map(|a| Some(a * g.excess)).collect())
                }
                _ => Err(no("no theory for this metric")),
            })
            .collect()
    }

    fn limit(&self, w: f64) -> Result<f64, NoTheory> {
        if self.pooled.is_some() {
            return Err(no("the stationary limit is given for the replace policy (docs/policies.md §2)"));
        }
        if !(w > 0.0 && w <= 1.0) {
            return Err(no("the stationary limit needs 0 < w ≤ 1"));
        }
        match &self.model {
            Model::Glm(g) => Ok(self.factor_limit(w, 1.0) * g.variance),
            Model::Linear(i) if i.lambda == 0.0 => {
                let bv = min_norm_limit(&i.h, &i.g, i.gamma, i.r2, i.sigma2).map_err(no)?;
                Ok(bv.bias + self.factor_limit(w, i.noise_ratio) * bv.variance)
            }
            Model::Linear(i) => {
                if (i.noise_ratio - 1.0).abs() > 1e-12 {
                    return Err(no("the ridge theory assumes synthetic labels as noisy as real ones (σ̃ = σ)"));
                }
                let mut ev = RidgeMixingEvaluator::new(&i.h, &i.g, i.gamma, i.r2, i.sigma2).map_err(no)?;
                let bv = match self.real {
                    RealLabels::Fresh => ev.limit(i.lambda, w),
                    RealLabels::Fixed => ev.fixed_labels_limit(i.lambda, w),
                };
                Ok(bv.map_err(no)?.total())
            }
        }
    }

    fn optimal_weight(&self) -> Result<(f64, f64), NoTheory> {
        if self.pooled.is_some() {
            return Err(no("the optimal constant weight is given for the replace policy (docs/policies.md §2)"));
        }
        match (&self.model, self.real) {
            // Fixed real labels: the variance factor is ≥ 1 with equality only at w = 1.
            (Model::Glm(_), RealLabels::Fixed) => Ok((1.0, self.limit(1.0)?)),
            (Model::Linear(i), RealLabels::Fixed) if i.lambda == 0.0 => Ok((1.0, self.limit(1.0)?)),
            (Model::Glm(g), RealLabels::Fresh) => Ok((GOLDEN_W, GOLDEN_W * g.variance)),
            (Model::Linear(i), RealLabels::Fresh) if i.lambda == 0.0 => {
                let w = optimal_w_noise_ratio(i.noise_ratio).map_err(no)?;
                Ok((w, self.limit(w)?))
            }
            (Model::Linear(i), RealLabels::Fresh) => {
                if (i.noise_ratio - 1.0).abs() > 1e-12 {
                    return Err(no("the ridge theory assumes synthetic labels as noisy as real ones (σ̃ = σ)"));
                }
                optimal_w(&i.h, &i.g, i.gamma, i.r2, i.sigma2, i.lambda).map_err(no)
            }
            (Model::Linear(_), RealLabels::Fixed) => minimise_weight(|w| self.limit(w)),
        }
    }

    fn at_penalty(&self, lambda: f64) -> Result<Box<dyn CellTheory>, NoTheory> {
        match &self.model {
            Model::Linear(i) => {
                let mut inputs = i.clone();
                inputs.lambda = lambda;
                if self.pooled.is_some() && lambda > 0.0 {
                    return Err(no("with a policy other than replace the theory covers min-norm and OLS"));
                }
                Ok(Box::new(MixingTheory {
                    real: self.real,
                    model: Model::Linear(inputs),
                    metrics: self.metrics.clone(),
                    pooled: self.pooled.clone(),
                }))
            }
            Model::Glm(_) => Err(no("the GLM theory covers λ = 0 only")),
        }
    }
}
