use collapse_core::faer::{ColRef, Mat, MatRef};
use collapse_core::rand::RngExt as _;
use collapse_core::rng::fill_normal;
use collapse_core::{
    BuildContext, CellTheory, CoreError, Covariance, Family, MetricKind, MetricSpec, Model, NoTheory, Origin,
    ParamError, Params, Path, Rng, SampleFamily, SampleSizes, model_ref,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

const WHAT: &str = "ecdf";

/// E sup_u |B(u)| of a Brownian bridge, √(π/2)·ln 2 (docs/families.md §3.3).
pub const BRIDGE_SUP_MEAN: f64 = 0.868_731_160_636_159_6;

/// Nonparametric estimation of a distribution on the real line by its empirical CDF
/// (docs/families.md §3). The truth is N(β, τ) with β the scenario's (one-dimensional)
/// signal and τ its covariance; the estimate (estimator `mle`, the nonparametric MLE) is
/// the weighted empirical CDF F_t = Σ c_i 1{x_i ≤ ·}, which under the weighted protocol
/// is F_t = w F̂_real + (1 − w) F̂_syn with synthetic samples drawn from F_{t−1} (one
/// uniform per draw, inverted through F_{t−1}).
///
/// Metrics, in column order, both exact on the step function (no grid, no test sample):
/// * `l2` = ∫ (F_t(x) − F(x))² dx, by the closed-form antiderivatives of Φ and Φ² on
///   each interval between atoms (docs/families.md §3.2);
/// * `ks` = sup_x |F_t(x) − F(x)|, attained at an atom, from either side.
///
/// Theory (docs/families.md §3.3): E l2_t = a_t τ^{1/2}/(n√π) exactly in t, with
/// a_0 = 1 and a_t = w² + (1 − w)²((1 − 1/m)a_{t−1} + k); E ks_t ≈ (a_t/n)^{1/2}·√(π/2)·ln 2
/// to first order (a Brownian bridge).
///
/// No parameters. Errors: `design.p` other than 1.
///
/// Reference: He, Xu & Cheng (2025), arXiv 2502.18049 (nonparametric estimation of a
/// CDF); docs/families.md §3.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct EcdfParams {}

/// See [`EcdfParams`].
#[derive(Debug, Clone, Copy, Default)]
pub struct Ecdf;

/// The true N(μ, sd²) or a weighted step function.
#[derive(Debug, Clone)]
pub enum Cdf {
    /// N(mu, sd²).
    Normal {
        /// Mean.
        mu: f64,
        /// Standard deviation.
        sd: f64,
    },
    /// Σ_j (cum_j − cum_{j−1}) δ_{atoms_j}, atoms ascending, cum the running weight.
    Steps {
        /// Atoms, ascending (ties allowed).
        atoms: Vec<f64>,
        /// Cumulative weights (the last is the total, 1 up to rounding).
        cum: Vec<f64>,
    },
}

/// Φ(x).
pub fn normal_cdf(x: f64) -> f64 {
    0.5 * libm::erfc(-x / std::f64::consts::SQRT_2)
}

fn normal_pdf(x: f64) -> f64 {
    (-0.5 * x * x).exp() / (2.0 * std::f64::consts::PI).sqrt()
}

/// ∫_{−∞}^x Φ = xΦ(x) + φ(x).
fn int_phi(x: f64) -> f64 {
    x * normal_cdf(x) + normal_pdf(x)
}

/// ∫_{−∞}^x Φ² = xΦ(x)² + 2Φ(x)φ(x) − Φ(√2 x)/√π (docs/families.md §3.2).
fn int_phi2(x: f64) -> f64 {
    let c = normal_cdf(x);
    x * c * c + 2.0 * c * normal_pdf(x) - normal_cdf(std::f64::consts::SQRT_2 * x) / std::f64::consts::PI.sqrt()
}

/// ∫ (F − Φ)² over the real line for a step function F in standardized coordinates
/// (atoms `u` ascending, `cum` its running weight ending at 1).
pub fn l2_to_normal(u: &[f64], cum: &[f64]) -> f64 {
    let Some((&first, &last)) = u.first().zip(u.last()) else { return f64::INFINITY };
    // Level 0 left of the first atom, 1 right of the last (by symmetry ∫_b^∞ (1 − Φ)² = ∫_{−∞}^{−b} Φ²).
    let mut total = int_phi2(first) + int_phi2(-last);
    for j in 0..u.len() - 1 {
        let (a, b) = (u[j], u[j + 1]);
        if b > a {
            let c = cum[j];
            total += c * c * (b - a) - 2.0 * c * (int_phi(b) - int_phi(a)) + (int_phi2(b) - int_phi2(a));
        }
    }
    total.max(0.0)
}

/// sup |F − Φ| for a step function in standardized coordinates.
pub fn ks_to_normal(u: &[f64], cum: &[f64]) -> f64 {
    let mut before = 0.0;
    let mut worst: f64 = 0.0;
    for (&x, &c) in u.iter().zip(cum) {
        let phi = normal_cdf(x);
        worst = worst.max((c - phi).abs()).max((before - phi).abs());
        before = c;
    }
    worst
}

impl Ecdf {
    /// a_t along a schedule (docs/families.md §3.3): a share 1 − 1/m of the previous
    /// fit's variance survives resampling m synthetic samples, k = n/m.
    fn factors(weights: &[f64], sizes: SampleSizes) -> Vec<f64> {
        let (n, m) = (sizes.real as f64, sizes.synthetic as f64);
        collapse_theory::variance_factors_keep(weights, n / m, 1.0 - 1.0 / m)
    }

    fn sd(covariance: &dyn Covariance) -> f64 {
        covariance.eigenvalues().first().copied().unwrap_or(1.0).max(0.0).sqrt()
    }
}

impl Family for Ecdf {
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![
            MetricSpec::new("l2", MetricKind::Other, "squared L² distance ∫ (F̂ − F)² dx to the true CDF"),
            MetricSpec::new("ks", MetricKind::Other, "Kolmogorov–Smirnov distance sup |F̂ − F| to the true CDF"),
        ]
    }
    fn samples(&self) -> Option<&dyn SampleFamily> {
        Some(self)
    }
}

impl SampleFamily for Ecdf {
    fn check(&self, p: usize) -> Result<(), CoreError> {
        crate::require_one_dimension(p, "family `ecdf` estimates a distribution on the real line")
    }

    fn truth(&self, beta: ColRef<'_, f64>, covariance: &dyn Covariance) -> Result<Model, CoreError> {
        let sd = Self::sd(covariance);
        if !(sd > 0.0 && sd.is_finite()) {
            return Err(CoreError::numerical(WHAT, format!("the true standard deviation is {sd}")));
        }
        Ok(Box::new(Cdf::Normal { mu: beta[0], sd }))
    }

    fn draw(
        &self,
        model: &Model,
        _origin: Origin,
        count: usize,
        _covariance: &dyn Covariance,
        rng: &mut Rng,
    ) -> Result<Mat<f64>, CoreError> {
        let mut x = vec![0.0; count];
        match model_ref::<Cdf>(model, WHAT)? {
            Cdf::Normal { mu, sd } => {
                fill_normal(rng, *sd, &mut x);
                x.iter_mut().for_each(|v| *v += mu);
            }
            Cdf::Steps { atoms, cum } => {
                let total = cum.last().copied().unwrap_or(0.0);
                for v in x.iter_mut() {
                    let u: f64 = rng.random::<f64>() * total;
                    let j = cum.partition_point(|&c| c <= u).min(atoms.len() - 1);
                    *v = atoms[j];
                }
            }
        }
        Ok(Mat::from_fn(count, 1, |i, _| x[i]))
    }

    fn fit(&self, samples: MatRef<'_, f64>, weights: &[f64], _previous: Option<&Model>) -> Result<Model, CoreError> {
        let rows = samples.nrows();
        if weights.len() != rows || rows == 0 || samples.ncols() != 1 {
            return Err(CoreError::numerical(WHAT, format!("{rows} samples with {} weights", weights.len())));
        }
        let mut pairs: Vec<(f64, f64)> = (0..rows).map(|i| (samples[(i, 0)], weights[i])).collect();
        if pairs.iter().any(|(x, _)| !x.is_finite()) {
            return Err(CoreError::numerical(WHAT, "non-finite sample"));
        }
        pairs.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut run = 0.0;
        let cum = pairs
            .iter()
            .map(|(_, c)| {
                run += c;
                run
            })
            .collect();
        Ok(Box::new(Cdf::Steps { atoms: pairs.into_iter().map(|(x, _)| x).collect(), cum }))
    }

    fn score(&self, estimate: &Model, truth: &Model, out: &mut [f64]) -> Result<(), CoreError> {
        let (Cdf::Steps { atoms, cum }, Cdf::Normal { mu, sd }) =
            (model_ref::<Cdf>(estimate, WHAT)?, model_ref::<Cdf>(truth, WHAT)?)
        else {
            return Err(CoreError::numerical(WHAT, "score needs a fitted step function and the true normal"));
        };
        let total = cum.last().copied().unwrap_or(0.0);
        let u: Vec<f64> = atoms.iter().map(|x| (x - mu) / sd).collect();
        let cum: Vec<f64> = cum.iter().map(|c| c / total).collect();
        out[0] = sd * l2_to_normal(&u, &cum);
        out[1] = ks_to_normal(&u, &cum);
        Ok(())
    }

    fn weighted_theory(
        &self,
        sizes: SampleSizes,
        covariance: &dyn Covariance,
    ) -> Result<Box<dyn CellTheory>, NoTheory> {
        Ok(Box::new(EcdfTheory { sizes, sd: Self::sd(covariance) }))
    }
}

/// The weighted-recursion theory of [`Ecdf`] for one cell (docs/families.md §3.3).
#[derive(Debug, Clone, Copy)]
pub struct EcdfTheory {
    sizes: SampleSizes,
    sd: f64,
}

impl CellTheory for EcdfTheory {
    fn paths(&self, weights: &[f64]) -> Vec<Result<Path, NoTheory>> {
        let n = self.sizes.real as f64;
        let a = Ecdf::factors(weights, self.sizes);
        vec![
            Ok(a.iter().map(|a| Some(a * self.sd / (n * std::f64::consts::PI.sqrt()))).collect()),
            Ok(a.iter().map(|a| Some((a / n).sqrt() * BRIDGE_SUP_MEAN)).collect()),
        ]
    }

    fn limit(&self, w: f64) -> Result<f64, NoTheory> {
        if !(w > 0.0 && w <= 1.0) {
            return Err(NoTheory::new("the stationary limit needs 0 < w ≤ 1"));
        }
        let (n, m) = (self.sizes.real as f64, self.sizes.synthetic as f64);
        let a = collapse_theory::variance_limit_keep(w, n / m, 1.0 - 1.0 / m);
        Ok(a * self.sd / (n * std::f64::consts::PI.sqrt()))
    }
}

impl Params for EcdfParams {
    type Target = dyn Family;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Family>, ParamError> {
        Ok(Box::new(Ecdf))
    }
    fn example() -> Self {
        EcdfParams {}
    }
}

collapse_core::register!(
    FamilyPlugin,
    EcdfParams,
    "ecdf",
    "Estimate a distribution on R by its (weighted) empirical CDF; metrics l2, ks (exact on the step function)"
);

#[cfg(test)]
mod tests {
    use super::*;

    use crate::simpson;

    fn step_cdf(u: &[f64], cum: &[f64], x: f64) -> f64 {
        u.iter().zip(cum).filter(|(a, _)| **a <= x).map(|(_, c)| *c).next_back().unwrap_or(0.0)
    }

    /// Hand-computed cases: one atom at 0 (F = 1{x ≥ 0}): l2 = 2∫_0^∞(1 − Φ)² and
    /// ks = 1/2; the closed form against Simpson on each smooth piece.
    #[test]
    fn single_atom_by_hand() {
        let (u, cum) = ([0.0], [1.0]);
        assert!((ks_to_normal(&u, &cum) - 0.5).abs() < 1e-15);
        let reference = 2.0 * simpson(0.0, 40.0, 400_000, |x| (1.0 - normal_cdf(x)).powi(2));
        assert!((l2_to_normal(&u, &cum) - reference).abs() < 1e-10, "{} vs {reference}", l2_to_normal(&u, &cum));
        // ∫_{−∞}^0 Φ² = φ(0) − Φ(0)/√π = (√2 − 1)/(2√π), twice (both sides): (√2 − 1)/√π.
        let exact = (std::f64::consts::SQRT_2 - 1.0) / std::f64::consts::PI.sqrt();
        assert!((l2_to_normal(&u, &cum) - exact).abs() < 1e-14);
    }

    /// A general step function with ties and uneven weights against piecewise Simpson.
    #[test]
    fn l2_and_ks_against_brute_force() {
        let u = [-1.3, -0.2, -0.2, 0.4, 2.1];
        let cum = [0.1, 0.35, 0.5, 0.8, 1.0];
        let mut reference = simpson(-40.0, u[0], 200_000, |x| normal_cdf(x).powi(2));
        for j in 0..u.len() - 1 {
            if u[j + 1] > u[j] {
                reference += simpson(u[j], u[j + 1], 20_000, |x| (cum[j] - normal_cdf(x)).powi(2));
            }
        }
        reference += simpson(u[4], 40.0, 200_000, |x| (1.0 - normal_cdf(x)).powi(2));
        assert!((l2_to_normal(&u, &cum) - reference).abs() < 1e-11, "{} vs {reference}", l2_to_normal(&u, &cum));
        // KS by a fine scan of both one-sided limits.
        let mut scan: f64 = 0.0;
        for i in 0..=400_000 {
            let x = -5.0 + 10.0 * i as f64 / 400_000.0;
            scan = scan.max((step_cdf(&u, &cum, x) - normal_cdf(x)).abs());
        }
        let ks = ks_to_normal(&u, &cum);
        assert!(ks >= scan - 1e-12 && ks - scan < 1e-4, "{ks} vs {scan}");
        // The supremum here is at u = −0.2 from the left: |0.1 − Φ(−0.2)|.
        assert!((ks - (normal_cdf(-0.2) - 0.1)).abs() < 1e-15, "{ks}");
    }

    #[test]
    fn dimension_other_than_one_is_rejected() {
        let e = Ecdf.check(2).unwrap_err();
        assert_eq!(e.field(), Some("design.p"));
        assert!(Ecdf.check(1).is_ok());
    }

    /// Draws from a step function hit each atom with its weight (z-score).
    #[test]
    fn draws_follow_the_weights() {
        use collapse_core::rng::{Purpose, Streams};
        let x = Mat::from_fn(3, 1, |i, _| [2.0, -1.0, 5.0][i]);
        let fit = Ecdf.fit(x.as_ref(), &[0.2, 0.5, 0.3], None).unwrap();
        let mut rng = Streams::new(5, 0, 0).rng(Purpose::SyntheticNoise, 1);
        let n = 100_000;
        let d = Ecdf.draw(&fit, Origin::Synthetic, n, &crate::test_support::Diagonal(vec![1.0]), &mut rng).unwrap();
        let share = (0..n).filter(|&i| (d[(i, 0)] + 1.0).abs() < 1e-12).count() as f64 / n as f64;
        let z = (share - 0.5) / (0.25 / n as f64).sqrt();
        assert!(z.abs() < 4.0, "{share}");
    }
}
