//! The theory of own-design cells (fresh covariates, partial labels), from the cell's
//! typed plugins: the proportional limit (n, p → ∞, p/n → γ) of the scalar recursion
//! `D_t = q_t D_{t−1} + b_t r² + v_t` (docs/fresh-covariates.md §5,
//! docs/partial-labels.md §3) for min-norm/OLS, and the two-dimensional isotropic ridge
//! recursion of docs/fresh-covariates.md §6. Everything else is a null with its reason
//! (docs/fresh-covariates.md §7).

use collapse_core::{CellTheory, CellView, MetricKind, NoTheory, Path};
use collapse_theory::{FreshRidge, FreshStep, fresh_limit_step, fresh_stationary, optimal_w_noise_ratio};

use crate::fresh_design::{FreshDesign, replaces};
use collapse_core::minimise_weight;

use crate::theory::no;

/// What the predictions are computed from.
#[derive(Debug, Clone, Copy)]
enum Model {
    /// Min-norm/OLS: the limit steps at t = 0 (γ_0 = p/n, all rows real) and t ≥ 1.
    LeastSquares { gamma0: f64, gamma: f64, pi: f64 },
    /// Isotropic ridge with every row mixed.
    Ridge(FreshRidge),
}

/// The theory of an own-design cell.
#[derive(Debug, Clone)]
pub struct FreshTheory {
    model: Model,
    isotropic: bool,
    design: FreshDesign,
    n: usize,
    p: usize,
    r2: f64,
    sigma2: f64,
    synthetic_sigma2: f64,
    metrics: Vec<MetricKind>,
}

/// Build the theory of an own-design cell, or say why there is none.
pub fn fresh_theory(view: &CellView<'_>, design: FreshDesign) -> Result<Box<dyn CellTheory>, NoTheory> {
    if !replaces(view) {
        return Err(no("the fresh-covariate theory covers the replace policy only (docs/policies.md §6)"));
    }
    let noise = view
        .family
        .regression()
        .and_then(|r| r.gaussian_noise())
        .ok_or_else(|| no("the fresh-covariate theory covers Gaussian labels only"))?;
    let lambda = view
        .estimator
        .ridge_penalty()
        .ok_or_else(|| no("no fresh-covariate theory for this estimator (min-norm, OLS and ridge have one)"))?;
    let theory = FreshTheory {
        model: Model::LeastSquares { gamma0: 0.0, gamma: 0.0, pi: 0.0 },
        isotropic: view.covariance.is_isotropic(),
        design,
        n: view.n,
        p: view.p,
        r2: view.signal.radius_squared(view.covariance),
        sigma2: noise.sigma * noise.sigma,
        synthetic_sigma2: noise.synthetic_sigma * noise.synthetic_sigma,
        metrics: view.family.metrics().into_iter().map(|m| m.kind).collect(),
    };
    Ok(Box::new(theory.with_penalty(lambda)?))
}

impl FreshTheory {
    /// The same cell at ridge penalty `lambda`.
    fn with_penalty(mut self, lambda: f64) -> Result<Self, NoTheory> {
        let (n, m) = (self.n as f64, self.design.mixed_rows(self.n) as f64);
        let gamma0 = self.p as f64 / n;
        let (rows, pi) = if self.design.drop_synthetic_only { (m, 1.0) } else { (n, m / n) };
        let gamma = self.p as f64 / rows;
        self.model = if lambda > 0.0 {
            if !self.isotropic {
                return Err(no(
                    "ridge with fresh covariates has a theory for isotropic Σ only (docs/fresh-covariates.md §7)",
                ));
            }
            if pi < 1.0 || self.design.drop_synthetic_only {
                return Err(no("the partial-labels theory covers min-norm only (docs/partial-labels.md §5)"));
            }
            Model::Ridge(FreshRidge::new(gamma, lambda).map_err(no)?)
        } else {
            if !self.isotropic && (gamma0 > 1.0 || gamma > 1.0) {
                return Err(no(
                    "min-norm with fresh covariates and p > n has a theory for isotropic Σ only (docs/fresh-covariates.md §7)",
                ));
            }
            // Both steps must exist (γ ≠ 1; OLS with rows of one kind).
            self.step(gamma0, 1.0, 1.0)?;
            self.step(gamma, pi, 0.5)?;
            Model::LeastSquares { gamma0, gamma, pi }
        };
        Ok(self)
    }

    fn step(&self, gamma: f64, pi: f64, w: f64) -> Result<FreshStep, NoTheory> {
        fresh_limit_step(gamma, pi, w, self.sigma2, self.synthetic_sigma2).map_err(no)
    }

    fn main_path(&self, weights: &[f64]) -> Result<Path, NoTheory> {
        match self.model {
            Model::Ridge(r) => Ok(r
                .path(weights, self.r2, self.sigma2, self.synthetic_sigma2)
                .map_err(no)?
                .into_iter()
                .map(Some)
                .collect()),
            Model::LeastSquares { gamma0, gamma, pi } => {
                let mut d = 0.0;
                let mut out = Vec::with_capacity(weights.len());
                for (t, &w) in weights.iter().enumerate() {
                    let step = if t == 0 { self.step(gamma0, 1.0, 1.0)? } else { self.step(gamma, pi, w)? };
                    d = step.apply(d, self.r2);
                    out.push(Some(d));
                }
                Ok(out)
            }
        }
    }
}

impl CellTheory for FreshTheory {
    fn paths(&self, weights: &[f64]) -> Vec<Result<Path, NoTheory>> {
        self.metrics
            .iter()
            .map(|kind| match kind {
                MetricKind::SigmaError => self.main_path(weights),
                _ => Err(no("no fresh-covariate theory for this metric")),
            })
            .collect()
    }

    fn limit(&self, w: f64) -> Result<f64, NoTheory> {
        if !(0.0..=1.0).contains(&w) {
            return Err(no("the stationary limit needs 0 ≤ w ≤ 1"));
        }
        match self.model {
            Model::Ridge(r) => r.limit(w, self.r2, self.sigma2, self.synthetic_sigma2).map_err(no),
            Model::LeastSquares { gamma, pi, .. } => fresh_stationary(self.step(gamma, pi, w)?, self.r2).map_err(no),
        }
    }

    fn optimal_weight(&self) -> Result<(f64, f64), NoTheory> {
        match self.model {
            // n > p, every row mixed: the fresh-labels factor, w*(k) in closed form
            // (docs/fresh-covariates.md §4).
            Model::LeastSquares { gamma, pi, .. } if gamma < 1.0 && pi >= 1.0 && self.sigma2 > 0.0 => {
                let w = optimal_w_noise_ratio(self.synthetic_sigma2 / self.sigma2).map_err(no)?;
                Ok((w, self.limit(w)?))
            }
            _ => minimise_weight(|w| self.limit(w)),
        }
    }

    fn at_penalty(&self, lambda: f64) -> Result<Box<dyn CellTheory>, NoTheory> {
        Ok(Box::new(self.clone().with_penalty(lambda)?))
    }
}
