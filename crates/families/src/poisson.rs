use collapse_core::faer::{Col, ColRef};
use collapse_core::rand::RngExt as _;
use collapse_core::{
    BuildContext, CoreError, Covariance, Family, Likelihood, MetricKind, MetricSpec, Origin, ParamError, Params,
    Regression, Rng,
};
use rand_distr::Distribution as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest mean drawn by inversion (one uniform per label); above it the PTRS sampler
/// of `rand_distr` is used (e^{−λ} would underflow long before λ = 745).
const INVERSION_MAX: f64 = 100.0;

/// Poisson regression with the log link: y ∈ {0, 1, 2, …} with E[y | x] = exp(xᵀβ)
/// (docs/families.md §2). Real labels from η = xᵀβ, synthetic labels from the previous
/// fit η = xᵀβ̂; a label with mean λ ≤ 100 is drawn by inverting the Poisson CDF at one
/// uniform (so common random numbers couple the labels of nearby fits, and a larger η
/// never gives a smaller label), above that by `rand_distr`'s PTRS sampler.
///
/// Likelihood `poisson` (canonical GLM): b(η) = e^η, mean and variance e^η,
/// loss(y, η) = e^η − yη; any y ≥ 0 is a valid (possibly mixed) label.
///
/// Metrics, in column order:
/// * `param_error` = ‖β̂ − β‖²_Σ;
/// * `excess_loss` = E_x[KL(Poi(e^u) ‖ Poi(e^v))], u = xᵀβ, v = xᵀβ̂: the population
///   excess negative log-likelihood (half the excess deviance). For x ~ N(0, Σ) it is
///   exact in closed form, e^{s11/2}[expm1((s22 − s11)/2) − (s12 − s11)] with
///   s = the covariance of (u, v) (docs/families.md §2.1); for a data-table design, the
///   mean of e^u(expm1(v − u) − (v − u)) over the table's rows.
///
/// No parameters. Errors: a non-finite metric is a numerical error naming it.
///
/// Reference: McCullagh & Nelder (1989), *Generalized Linear Models*, §6; He, Xu & Cheng
/// (2025), arXiv 2502.18049 (GLMs under weighted recursive training).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoissonParams {}

/// The Poisson likelihood with the canonical (log) link.
#[derive(Debug, Clone, Copy, Default)]
pub struct PoissonLikelihood;

impl Likelihood for PoissonLikelihood {
    fn name(&self) -> &'static str {
        "poisson"
    }
    fn is_gaussian(&self) -> bool {
        false
    }
    fn mean(&self, eta: f64) -> f64 {
        eta.exp()
    }
    fn variance(&self, eta: f64) -> f64 {
        eta.exp()
    }
    fn loss(&self, y: f64, eta: f64) -> f64 {
        eta.exp() - y * eta
    }
    fn valid_label(&self, y: f64) -> bool {
        y.is_finite() && y >= 0.0
    }
}

/// expm1(x) − x without cancellation: its Taylor series up to x⁴ where |x| < 10⁻³.
fn expm1_minus_x(x: f64) -> f64 {
    if x.abs() < 1e-3 { x * x * (0.5 + x * (1.0 / 6.0 + x / 24.0)) } else { x.exp_m1() - x }
}

/// e^u(expm1(d) − d), d = v − u: the Poisson KL of means e^u and e^v without cancellation.
pub fn poisson_kl(u: f64, v: f64) -> f64 {
    u.exp() * expm1_minus_x(v - u)
}

/// See [`PoissonParams`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Poisson;

/// One Poisson(λ) draw.
fn draw_one(lambda: f64, rng: &mut Rng) -> f64 {
    if !(lambda.is_finite() && lambda >= 0.0) {
        return f64::NAN;
    }
    if lambda <= INVERSION_MAX {
        let u: f64 = rng.random();
        let mut k = 0.0;
        let mut p = (-lambda).exp();
        let mut cdf = p;
        while u >= cdf && p > 0.0 {
            k += 1.0;
            p *= lambda / k;
            cdf += p;
        }
        return k;
    }
    rand_distr::Poisson::new(lambda).map(|d| d.sample(rng)).unwrap_or(f64::NAN)
}

impl Family for Poisson {
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![
            MetricSpec::new("param_error", MetricKind::SigmaError, "parameter error ‖β̂ − β‖²_Σ"),
            MetricSpec::new(
                "excess_loss",
                MetricKind::ExcessLoss,
                "population excess loss E_x KL(Poi(e^{xᵀβ}) ‖ Poi(e^{xᵀβ̂})) (half the excess deviance)",
            ),
        ]
    }
    fn regression(&self) -> Option<&dyn Regression> {
        Some(self)
    }
}

impl Regression for Poisson {
    fn likelihood(&self) -> &dyn Likelihood {
        &PoissonLikelihood
    }
    fn draw_labels(&self, eta: &[f64], _origin: Origin, rng: &mut Rng, out: &mut [f64]) {
        for (o, &e) in out.iter_mut().zip(eta) {
            *o = draw_one(e.exp(), rng);
        }
    }
    fn score(
        &self,
        estimate: ColRef<'_, f64>,
        truth: ColRef<'_, f64>,
        covariance: &dyn Covariance,
        out: &mut [f64],
    ) -> Result<(), CoreError> {
        let err = Col::from_fn(truth.nrows(), |i| estimate[i] - truth[i]);
        let d2 = covariance.quad_form(err.as_ref());
        let excess = match covariance.population() {
            Some(pop) => pop.mean_over_rows(truth, estimate, poisson_kl),
            None => {
                // e^{s11/2}[expm1(x) − (s12 − s11)] with x = (s22 − s11)/2, written as
                // e^{s11/2}[(expm1(x) − x) + ½‖β̂ − β‖²_Σ] (x − (s12 − s11) = ½Var(v − u)),
                // so that nothing cancels when β̂ ≈ β.
                let s11 = covariance.quad_form(truth);
                let s22 = covariance.quad_form(estimate);
                (0.5 * s11).exp() * (expm1_minus_x(0.5 * (s22 - s11)) + 0.5 * d2)
            }
        };
        if !(d2.is_finite() && excess.is_finite()) {
            return Err(CoreError::numerical("excess_loss", format!("non-finite metric ({d2}, {excess})")));
        }
        out[0] = d2;
        out[1] = excess.max(0.0);
        Ok(())
    }
}

impl Params for PoissonParams {
    type Target = dyn Family;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Family>, ParamError> {
        Ok(Box::new(Poisson))
    }
    fn example() -> Self {
        PoissonParams {}
    }
}

collapse_core::register!(
    FamilyPlugin,
    PoissonParams,
    "poisson",
    "Poisson regression with log link, y ~ Poi(exp(xᵀβ)); metrics param_error and excess_loss"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Diagonal, col};
    use collapse_core::rng::{Purpose, Streams};

    /// The closed form against Gauss–Hermite quadrature of the KL, and the second-order
    /// expansion ½ δᵀ I δ for a small perturbation.
    #[test]
    fn excess_loss_against_quadrature() {
        let cov = Diagonal(vec![0.6, 0.3]);
        let (beta, hat) = (col(&[0.5, -0.4]), col(&[0.7, -0.1]));
        let mut out = [0.0; 2];
        Poisson.score(hat.as_ref(), beta.as_ref(), &cov, &mut out).unwrap();
        let (s11, s12, s22) =
            (cov.quad_form(beta.as_ref()), cov.bilinear(beta.as_ref(), hat.as_ref()), cov.quad_form(hat.as_ref()));
        let gh = collapse_core::spectral::GaussHermite::new(60).unwrap();
        let reference = gh.expect2(s11, s12, s22, poisson_kl);
        assert!((out[1] - reference).abs() < 1e-12 * reference, "{} vs {reference}", out[1]);
        assert!((out[0] - (0.6 * 0.04 + 0.3 * 0.09)).abs() < 1e-15);
        // β̂ = β: exactly zero.
        Poisson.score(beta.as_ref(), beta.as_ref(), &cov, &mut out).unwrap();
        assert!(out[1].abs() < 1e-300 && out[0].abs() < 1e-300, "{out:?}");
        // β̂ = β + δ, δ small: ½ δᵀIδ with I = E[e^{xᵀβ} x xᵀ] = e^{βᵀΣβ/2}(Σ + Σββᵀ Σ) (the
        // e^{xᵀβ}-tilted law of x has mean Σβ and covariance Σ); relative error O(|δ|).
        let delta = col(&[1e-4, -2e-4]);
        let near = col(&[beta[0] + delta[0], beta[1] + delta[1]]);
        Poisson.score(near.as_ref(), beta.as_ref(), &cov, &mut out).unwrap();
        let b_sigma_d = cov.bilinear(beta.as_ref(), delta.as_ref());
        let half_fisher = 0.5 * (0.5 * s11).exp() * (cov.quad_form(delta.as_ref()) + b_sigma_d * b_sigma_d);
        assert!((out[1] - half_fisher).abs() < 1e-3 * half_fisher, "{} vs {half_fisher}", out[1]);
    }

    /// Label means and variances are e^η (z-scores), and draws are monotone in η.
    #[test]
    fn labels_are_poisson_and_monotone() {
        let n = 100_000;
        for (k, eta) in [-1.0, 0.5, 2.0, 5.0].into_iter().enumerate() {
            let mut out = vec![0.0; n];
            let mut rng = Streams::new(2, k as u64, 0).rng(Purpose::RealNoise, 0);
            Poisson.draw_labels(&vec![eta; n], Origin::Real, &mut rng, &mut out);
            let lambda = f64::exp(eta);
            let mean = out.iter().sum::<f64>() / n as f64;
            let z = (mean - lambda) / (lambda / n as f64).sqrt();
            assert!(z.abs() < 4.0, "η = {eta}: mean {mean}");
        }
        let lo: Vec<f64> = (0..500).map(|i| -2.0 + i as f64 / 100.0).collect();
        let hi: Vec<f64> = lo.iter().map(|e| e + 0.3).collect();
        let (mut a, mut b) = (vec![0.0; 500], vec![0.0; 500]);
        let s = Streams::new(4, 0, 0);
        Poisson.draw_labels(&lo, Origin::Real, &mut s.rng(Purpose::SyntheticNoise, 1), &mut a);
        Poisson.draw_labels(&hi, Origin::Synthetic, &mut s.rng(Purpose::SyntheticNoise, 1), &mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x <= y));
    }

    #[test]
    fn likelihood_is_canonical() {
        let l = PoissonLikelihood;
        assert!((l.loss(2.0, 0.3) - (0.3f64.exp() - 0.6)).abs() < 1e-15);
        assert!(l.valid_label(0.0) && l.valid_label(2.7) && !l.valid_label(-0.1) && !l.valid_label(f64::NAN));
        assert!(PoissonParams::example().checked_build(&BuildContext { n: 5, p: 2 }).is_ok());
    }
}
