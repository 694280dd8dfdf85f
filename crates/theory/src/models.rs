//! Theory models as plugins (`collapse_core::TheoryPlugin`): they read a cell's
//! estimator, covariance spectrum H, signal distribution G, sizes and schedule, and
//! predict the risk at each iteration from the formulas of this crate.
//!
//! * `min-norm-mixing`: fresh-label mixing with min-norm / OLS (λ = 0), any covariance
//!   with a spectrum, any signal with eigen-shares, any schedule, any synthetic noise
//!   level: risk_t = B + a_t V (THEORY.md §A.3), a_0 = 1,
//!   a_t = (1−w_t)² a_{t−1} + w_t² + k(1−w_t)², k = σ̃²/σ².
//! * `ridge-mixing`: fresh-label mixing with ridge (λ > 0) and σ̃ = σ. Isotropic Σ: the
//!   whole finite-t path for any schedule (§A.7). General (H, G): t = 0 (a single ridge
//!   fit) and the stationary limit (§A.5) for a constant schedule, from the first
//!   iteration at which the transient, bounded by (1−w)^t, is below 1e-6; NaN
//!   (null in Parquet) before that.

use collapse_core::{CellView, TheoryCell, TheoryModel, TheoryPlugin};

use crate::limits::{isotropic_path, min_norm_limit, ridge_mixing_limit};
use crate::mixing::variance_factors_with_noise_ratio;
use crate::spectrum::Spectrum;

/// The asymptotic description of a cell: spectra, aspect ratio, SNR, penalty.
#[derive(Debug, Clone)]
pub struct Inputs {
    /// Spectral distribution H of Σ.
    pub h: Spectrum,
    /// Signal distribution G (share of ‖β‖² per eigenvalue of Σ).
    pub g: Spectrum,
    /// γ = p/n.
    pub gamma: f64,
    /// r² = E‖β‖².
    pub r2: f64,
    /// σ².
    pub sigma2: f64,
    /// Ridge penalty (0 for min-norm / OLS).
    pub lambda: f64,
    /// True when Σ = I.
    pub isotropic: bool,
}

impl Inputs {
    /// Read the asymptotic inputs off a cell, or `None` if its estimator is not
    /// ridge-like or its signal cannot report how ‖β‖² spreads over Σ's eigenbasis.
    pub fn from_view(view: &CellView<'_>) -> Option<Inputs> {
        let lambda = view.estimator.ridge_penalty()?;
        let taus = view.covariance.eigenvalues();
        let shares = view.signal.eigen_shares(view.covariance)?;
        if shares.len() != taus.len() || taus.iter().any(|t| !t.is_finite()) {
            return None;
        }
        let h = Spectrum::from_eigenvalues(&taus).ok()?;
        let g = Spectrum::from_atoms(&taus, &shares).ok()?;
        Some(Inputs {
            h,
            g,
            gamma: view.p as f64 / view.n as f64,
            r2: view.signal.radius_squared(view.covariance),
            sigma2: view.noise_sd * view.noise_sd,
            lambda,
            isotropic: view.covariance.is_isotropic(),
        })
    }
}

/// k = σ̃²/σ² of a `fresh-labels` cell (None for other settings).
fn fresh_labels_noise_ratio(cell: &TheoryCell<'_>) -> Option<f64> {
    if cell.setting() != "fresh-labels" {
        return None;
    }
    let sigma = cell.view.noise_sd;
    match cell.number("setting.synthetic_noise_sd") {
        None => Some(1.0),
        Some(s) if sigma > 0.0 => Some((s / sigma) * (s / sigma)),
        Some(s) if s <= 0.0 => Some(1.0),
        Some(_) => None,
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct MinNormMixing;

impl TheoryModel for MinNormMixing {
    fn predict(&self, cell: &TheoryCell<'_>) -> Option<Vec<f64>> {
        let k = fresh_labels_noise_ratio(cell)?;
        let inputs = Inputs::from_view(&cell.view)?;
        if inputs.lambda > 0.0 {
            return None;
        }
        let bv = min_norm_limit(&inputs.h, &inputs.g, inputs.gamma, inputs.r2, inputs.sigma2).ok()?;
        let factors = variance_factors_with_noise_ratio(cell.weights, k);
        Some(factors.into_iter().map(|a| bv.bias + a * bv.variance).collect())
    }
}

/// See the module docs.
#[derive(Debug)]
pub struct RidgeMixing;

impl TheoryModel for RidgeMixing {
    fn predict(&self, cell: &TheoryCell<'_>) -> Option<Vec<f64>> {
        let k = fresh_labels_noise_ratio(cell)?;
        let i = Inputs::from_view(&cell.view)?;
        if i.lambda <= 0.0 || i.lambda.is_nan() || (k - 1.0).abs() > 1e-12 {
            return None;
        }
        if i.isotropic {
            return isotropic_path(i.gamma, i.r2, i.sigma2, i.lambda, cell.weights).ok();
        }
        let first = ridge_mixing_limit(&i.h, &i.g, i.gamma, i.r2, i.sigma2, i.lambda, 1.0).ok()?.total();
        let mut out = vec![f64::NAN; cell.weights.len()];
        out[0] = first;
        let tail = &cell.weights[1.min(cell.weights.len())..];
        if let Some(&w) = tail.first()
            && tail.iter().all(|&x| (x - w).abs() <= f64::EPSILON)
            && w > 0.0
        {
            let limit = ridge_mixing_limit(&i.h, &i.g, i.gamma, i.r2, i.sigma2, i.lambda, w).ok()?.total();
            for (t, slot) in out.iter_mut().enumerate().skip(1) {
                if (1.0 - w).powi(t as i32) < 1e-6 {
                    *slot = limit;
                }
            }
        }
        Some(out)
    }
}

collapse_core::inventory::submit! {
    TheoryPlugin {
        name: "min-norm-mixing",
        summary: "fresh-labels + min-norm/OLS, any Σ spectrum and signal, any schedule: B + a_t V (§A.3)",
        model: &MinNormMixing,
    }
}

collapse_core::inventory::submit! {
    TheoryPlugin {
        name: "ridge-mixing",
        summary: "fresh-labels + ridge: isotropic finite-t path (§A.7); general (H, G) stationary limit (§A.5)",
        model: &RidgeMixing,
    }
}
