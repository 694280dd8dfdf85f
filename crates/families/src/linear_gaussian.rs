use collapse_core::faer::ColRef;
use collapse_core::{
    BuildContext, CoreError, Covariance, Family, GaussianNoise, Likelihood, MetricKind, MetricSpec, Origin, ParamError,
    Params, Regression, Rng, SquaredError, gaussian_labels,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Linear regression with Gaussian noise: real labels y = xᵀβ + ε, ε ~ N(0, σ²);
/// synthetic labels from the previous fit, ỹ = xᵀβ̂ + ε̃, ε̃ ~ N(0, σ̃²) (σ̃ = σ unless
/// given). Metric `risk` = ‖β̂ − β‖²_Σ, the excess prediction risk for x ~ N(0, Σ)
/// (no + σ²), with an exact conditional twin where the protocol has one
/// (docs/fresh-labels.md §1, docs/spectral-recursion.md §4).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `noise_sd` | 1 | σ ≥ 0 | noise sd of real labels |
/// | `synthetic_noise_sd` | σ | σ̃ ≥ 0 | noise sd of synthetic labels |
///
/// Errors: a negative or non-finite noise level.
///
/// Reference: Garg, Bhattacharya, Sur (2025), arXiv 2509.22341; Dohmatob, Feng, Kempe
/// (2024), arXiv 2402.07712.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LinearGaussianParams {
    /// Standard deviation σ ≥ 0 of the noise of real labels.
    #[serde(default = "one")]
    #[schemars(range(min = 0.0))]
    pub noise_sd: f64,
    /// Standard deviation σ̃ ≥ 0 of the noise of synthetic labels; default: σ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub synthetic_noise_sd: Option<f64>,
}

fn one() -> f64 {
    1.0
}

/// See [`LinearGaussianParams`].
#[derive(Debug, Clone, Copy)]
pub struct LinearGaussian {
    noise: GaussianNoise,
}

impl LinearGaussian {
    /// The family with real noise `sigma` and synthetic noise `synthetic_sigma`.
    pub fn new(sigma: f64, synthetic_sigma: f64) -> Self {
        LinearGaussian { noise: GaussianNoise { sigma, synthetic_sigma } }
    }
}

impl Family for LinearGaussian {
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::new("risk", MetricKind::SigmaError, "excess prediction risk ‖β̂ − β‖²_Σ")]
    }
    fn regression(&self) -> Option<&dyn Regression> {
        Some(self)
    }
}

impl Regression for LinearGaussian {
    fn likelihood(&self) -> &dyn Likelihood {
        &SquaredError
    }
    fn draw_labels(&self, eta: &[f64], origin: Origin, rng: &mut Rng, out: &mut [f64]) {
        let sd = match origin {
            Origin::Real => self.noise.sigma,
            Origin::Synthetic => self.noise.synthetic_sigma,
        };
        gaussian_labels(eta, sd, rng, out);
    }
    fn gaussian_noise(&self) -> Option<GaussianNoise> {
        Some(self.noise)
    }
    fn score(
        &self,
        estimate: ColRef<'_, f64>,
        truth: ColRef<'_, f64>,
        covariance: &dyn Covariance,
        out: &mut [f64],
    ) -> Result<(), CoreError> {
        let err = estimate.to_owned() - truth;
        out[0] = covariance.quad_form(err.as_ref());
        Ok(())
    }
}

impl Params for LinearGaussianParams {
    type Target = dyn Family;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Family>, ParamError> {
        Ok(Box::new(LinearGaussian::new(self.noise_sd, self.synthetic_noise_sd.unwrap_or(self.noise_sd))))
    }
    fn example() -> Self {
        LinearGaussianParams { noise_sd: 1.0, synthetic_noise_sd: None }
    }
}

collapse_core::register!(
    FamilyPlugin,
    LinearGaussianParams,
    "linear-gaussian",
    "Linear regression with Gaussian label noise σ (synthetic: σ̃); metric risk = ‖β̂ − β‖²_Σ"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn negative_noise_is_rejected_with_its_field() {
        let ctx = BuildContext { n: 4, p: 2 };
        for (p, field) in [
            (LinearGaussianParams { noise_sd: -1.0, synthetic_noise_sd: None }, "noise_sd"),
            (LinearGaussianParams { noise_sd: 1.0, synthetic_noise_sd: Some(-0.5) }, "synthetic_noise_sd"),
        ] {
            let e = p.checked_build(&ctx).unwrap_err();
            assert_eq!(e.field(), Some(field), "{e}");
        }
    }

    #[test]
    fn synthetic_noise_defaults_to_real_noise() {
        let f = LinearGaussianParams { noise_sd: 2.5, synthetic_noise_sd: None }
            .checked_build(&BuildContext { n: 1, p: 1 })
            .unwrap();
        let noise = f.regression().unwrap().gaussian_noise().unwrap();
        assert!((noise.synthetic_sigma - 2.5).abs() < f64::EPSILON);
    }
}
