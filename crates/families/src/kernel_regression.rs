use collapse_core::faer::{ColRef, Mat, MatRef};
use collapse_core::rand::RngExt as _;
use collapse_core::rng::fill_normal;
use collapse_core::{
    BuildContext, CellTheory, CoreError, Covariance, Family, MetricKind, MetricSpec, Model, NoTheory, Origin,
    ParamError, Params, Path, Rng, SampleFamily, SampleSizes, model_ref,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::simpson;

const WHAT: &str = "kernel-regression";

/// The true regression function f on [0, 1].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum TrueFunction {
    /// f(x) = sin(2πx).
    Sine,
    /// f(x) = exp(−(x − 1/2)²/(2·0.1²)), a bump of width 0.1.
    Bump,
    /// f(x) = 1{x > 1/2}, a jump (the smoother's bias does not vanish there).
    Step,
    /// f(x) = x (no interior bias: a local-constant fit is biased only at the ends).
    Linear,
}

impl TrueFunction {
    /// f(x).
    pub fn eval(self, x: f64) -> f64 {
        match self {
            TrueFunction::Sine => (2.0 * std::f64::consts::PI * x).sin(),
            TrueFunction::Bump => (-(x - 0.5) * (x - 0.5) / (2.0 * 0.01)).exp(),
            TrueFunction::Step => f64::from(u8::from(x > 0.5)),
            TrueFunction::Linear => x,
        }
    }
}

/// Nonparametric regression y = f(x) + ε, ε ~ N(0, σ²), with x uniform on [0, 1]
/// (docs/families.md §4). The estimate (estimator `mle`: the local-constant, i.e.
/// kernel-weighted least-squares, fit) is the weighted Nadaraya–Watson smoother
///
/// f̂(x) = Σ c_i K_h(x − x_i) y_i / Σ c_i K_h(x − x_i),  K_h(u) = K(u/h)/h,
///
/// with the biweight kernel K(u) = (15/16)(1 − u²)² on |u| ≤ 1 (compact, so each
/// evaluation touches only the samples within h), and at a point with no sample within h
/// the value of the nearest sample. Synthetic samples take fresh x̃ ~ U[0, 1] and
/// ỹ = f̂_{t−1}(x̃) + ε̃ with the same σ.
///
/// Metric `ise` = ∫_0^1 (f̂ − f)² dx (the design law is uniform), by the midpoint rule on
/// the fixed grid x_j = (j + ½)/G, j < G: deterministic, exact for the grid, no test
/// sample.
///
/// Theory (first order in 1/n, docs/families.md §4.2): ISE_t ≈ b_t²·IB + v_t·IV with the
/// single-fit integrated squared bias IB and variance IV (kernel integrals on [0, 1],
/// boundaries included), b_t = 1 + (1 − w)b_{t−1} and v_t = w² + (1 − w)²(ρ v_{t−1} + k),
/// where ρ = R(K∗K)/R(K) ≈ 0.723 is the share of the previous fit's variance that survives
/// re-smoothing. Because ρ < 1 and the bias is amplified by 1/w, the optimal weight
/// departs from P3's w*(k) (docs/families.md §4.3).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `function` | `sine` | `sine`, `bump`, `step`, `linear` | the true f |
/// | `noise_sd` | 1 | σ ≥ 0 | noise sd of real and synthetic responses |
/// | `bandwidth` | 0.1 | 0 < h ≤ 1 | the smoother's bandwidth h |
/// | `grid` | 200 | ≥ 10 | points G of the quadrature grid of `ise` |
///
/// Errors: `design.p` other than 1.
///
/// Reference: Nadaraya (1964), Theory Probab. Appl. 9(1); Watson (1964), Sankhyā A 26;
/// He, Xu & Cheng (2025), arXiv 2502.18049 (nonparametric estimation).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct KernelRegressionParams {
    /// The true regression function: `sine`, `bump`, `step` or `linear`.
    #[serde(default = "sine")]
    pub function: TrueFunction,
    /// Noise standard deviation σ ≥ 0 of real and synthetic responses.
    #[serde(default = "one")]
    #[schemars(range(min = 0.0))]
    pub noise_sd: f64,
    /// Bandwidth h in (0, 1] of the biweight kernel.
    #[serde(default = "default_bandwidth")]
    #[schemars(extend("exclusiveMinimum" = 0.0, "maximum" = 1.0))]
    pub bandwidth: f64,
    /// Points of the midpoint grid on [0, 1] that `ise` is computed on (≥ 10).
    #[serde(default = "default_grid")]
    #[schemars(range(min = 10))]
    pub grid: usize,
}

fn sine() -> TrueFunction {
    TrueFunction::Sine
}
fn one() -> f64 {
    1.0
}
fn default_bandwidth() -> f64 {
    0.1
}
fn default_grid() -> usize {
    200
}

/// The biweight kernel (15/16)(1 − u²)² on |u| ≤ 1.
pub fn biweight(u: f64) -> f64 {
    if u.abs() >= 1.0 {
        0.0
    } else {
        let a = 1.0 - u * u;
        0.9375 * a * a
    }
}

/// See [`KernelRegressionParams`].
#[derive(Debug, Clone)]
pub struct KernelRegression {
    function: TrueFunction,
    sigma: f64,
    h: f64,
    grid: Vec<f64>,
}

/// ρ = R(K∗K)/R(K) of the biweight kernel: R(K∗K) = 1168780/2263261 by exact polynomial
/// integration and R(K) = 5/7 (docs/families.md §4.2).
pub const BIWEIGHT_RHO: f64 = 233_756.0 / 323_323.0;

/// The truth, or a fitted smoother (samples sorted by x with their weights).
#[derive(Debug, Clone)]
pub enum Smoother {
    /// The true f.
    Truth,
    /// Nadaraya–Watson on these samples.
    Fit {
        /// x, ascending.
        x: Vec<f64>,
        /// y in the same order.
        y: Vec<f64>,
        /// Weights in the same order.
        c: Vec<f64>,
    },
}

impl KernelRegression {
    /// The family with true `function`, noise sd `sigma`, bandwidth `h` and a quadrature
    /// grid of `grid` midpoints.
    pub fn new(function: TrueFunction, sigma: f64, h: f64, grid: usize) -> Self {
        KernelRegression { function, sigma, h, grid: (0..grid).map(|j| (j as f64 + 0.5) / grid as f64).collect() }
    }

    /// f̂(x0) for a fit.
    fn nw(&self, x: &[f64], y: &[f64], c: &[f64], x0: f64) -> f64 {
        let lo = x.partition_point(|&v| v <= x0 - self.h);
        let hi = x.partition_point(|&v| v < x0 + self.h);
        let (mut num, mut den) = (0.0, 0.0);
        for i in lo..hi {
            let k = c[i] * biweight((x0 - x[i]) / self.h);
            num += k * y[i];
            den += k;
        }
        if den > 0.0 {
            return num / den;
        }
        // No sample within h: the nearest sample with positive weight.
        let j = x.partition_point(|&v| v < x0);
        let left = (0..j).rev().find(|&i| c[i] > 0.0);
        let right = (j..x.len()).find(|&i| c[i] > 0.0);
        match (left, right) {
            (Some(l), Some(r)) => {
                if x0 - x[l] <= x[r] - x0 {
                    y[l]
                } else {
                    y[r]
                }
            }
            (Some(i), None) | (None, Some(i)) => y[i],
            (None, None) => 0.0,
        }
    }

    fn eval(&self, model: &Smoother, x0: f64) -> f64 {
        match model {
            Smoother::Truth => self.function.eval(x0),
            Smoother::Fit { x, y, c } => self.nw(x, y, c, x0),
        }
    }

    /// First-order single-fit integrated squared bias and variance (per real sample
    /// count n) of the smoother under the uniform design (docs/families.md §4.2).
    pub fn bias_variance(&self, n: f64) -> (f64, f64) {
        let h = self.h;
        let f = |u: f64| self.function.eval(u);
        let (mut ib, mut iv) = (0.0, 0.0);
        for &x in &self.grid {
            let (a, b) = ((x - h).max(0.0), (x + h).min(1.0));
            let kern = |u: f64| biweight((x - u) / h) / h;
            let d = simpson(a, b, 200, kern);
            let m = simpson(a, b, 200, |u| kern(u) * f(u)) / d;
            let v =
                simpson(a, b, 200, |u| kern(u) * kern(u) * ((f(u) - m).powi(2) + self.sigma * self.sigma)) / (d * d);
            ib += (m - f(x)).powi(2);
            iv += v / n;
        }
        let g = self.grid.len() as f64;
        (ib / g, iv / g)
    }
}

impl Family for KernelRegression {
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![MetricSpec::new("ise", MetricKind::Other, "integrated squared error ∫_0^1 (f̂ − f)² dx on the fixed grid")]
    }
    fn samples(&self) -> Option<&dyn SampleFamily> {
        Some(self)
    }
}

impl SampleFamily for KernelRegression {
    fn check(&self, p: usize) -> Result<(), CoreError> {
        crate::require_one_dimension(p, "family `kernel-regression` has one covariate x ∈ [0, 1]")
    }

    fn truth(&self, _beta: ColRef<'_, f64>, _covariance: &dyn Covariance) -> Result<Model, CoreError> {
        Ok(Box::new(Smoother::Truth))
    }

    fn draw(
        &self,
        model: &Model,
        _origin: Origin,
        count: usize,
        _covariance: &dyn Covariance,
        rng: &mut Rng,
    ) -> Result<Mat<f64>, CoreError> {
        let model = model_ref::<Smoother>(model, WHAT)?;
        let x: Vec<f64> = (0..count).map(|_| rng.random::<f64>()).collect();
        let mut noise = vec![0.0; count];
        fill_normal(rng, self.sigma, &mut noise);
        Ok(Mat::from_fn(count, 2, |i, j| if j == 0 { x[i] } else { self.eval(model, x[i]) + noise[i] }))
    }

    fn fit(&self, samples: MatRef<'_, f64>, weights: &[f64], _previous: Option<&Model>) -> Result<Model, CoreError> {
        let rows = samples.nrows();
        if weights.len() != rows || rows == 0 || samples.ncols() != 2 {
            return Err(CoreError::numerical(WHAT, format!("{rows} samples with {} weights", weights.len())));
        }
        let mut order: Vec<usize> = (0..rows).collect();
        order.sort_by(|&a, &b| samples[(a, 0)].total_cmp(&samples[(b, 0)]));
        let x: Vec<f64> = order.iter().map(|&i| samples[(i, 0)]).collect();
        let y: Vec<f64> = order.iter().map(|&i| samples[(i, 1)]).collect();
        if y.iter().chain(&x).any(|v| !v.is_finite()) {
            return Err(CoreError::numerical(WHAT, "non-finite sample"));
        }
        let c = order.iter().map(|&i| weights[i]).collect();
        Ok(Box::new(Smoother::Fit { x, y, c }))
    }

    fn score(&self, estimate: &Model, _truth: &Model, out: &mut [f64]) -> Result<(), CoreError> {
        let model = model_ref::<Smoother>(estimate, WHAT)?;
        let sum: f64 = self.grid.iter().map(|&x| (self.eval(model, x) - self.function.eval(x)).powi(2)).sum();
        out[0] = sum / self.grid.len() as f64;
        Ok(())
    }

    fn weighted_theory(
        &self,
        sizes: SampleSizes,
        _covariance: &dyn Covariance,
    ) -> Result<Box<dyn CellTheory>, NoTheory> {
        let (ib, iv) = self.bias_variance(sizes.real as f64);
        Ok(Box::new(KernelTheory { k: sizes.ratio(), ib, iv, rho: BIWEIGHT_RHO }))
    }
}

/// The first-order weighted-recursion theory of [`KernelRegression`] for one cell
/// (docs/families.md §4.2).
#[derive(Debug, Clone, Copy)]
pub struct KernelTheory {
    k: f64,
    /// Single-fit integrated squared bias.
    ib: f64,
    /// Single-fit integrated variance.
    iv: f64,
    rho: f64,
}

impl CellTheory for KernelTheory {
    fn paths(&self, weights: &[f64]) -> Vec<Result<Path, NoTheory>> {
        let v = collapse_theory::variance_factors_keep(weights, self.k, self.rho);
        let mut b = 1.0;
        let path = weights
            .iter()
            .zip(&v)
            .enumerate()
            .map(|(t, (&w, &v))| {
                if t > 0 {
                    b = 1.0 + (1.0 - w) * b;
                }
                Some(b * b * self.ib + v * self.iv)
            })
            .collect();
        vec![Ok(path)]
    }

    fn limit(&self, w: f64) -> Result<f64, NoTheory> {
        if !(w > 0.0 && w <= 1.0) {
            return Err(NoTheory::new("the stationary limit needs 0 < w ≤ 1"));
        }
        let v = collapse_theory::variance_limit_keep(w, self.k, self.rho);
        Ok(self.ib / (w * w) + v * self.iv)
    }
}

impl Params for KernelRegressionParams {
    type Target = dyn Family;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Family>, ParamError> {
        Ok(Box::new(KernelRegression::new(self.function, self.noise_sd, self.bandwidth, self.grid)))
    }
    fn example() -> Self {
        KernelRegressionParams { function: TrueFunction::Sine, noise_sd: 1.0, bandwidth: 0.1, grid: 200 }
    }
}

collapse_core::register!(
    FamilyPlugin,
    KernelRegressionParams,
    "kernel-regression",
    "y = f(x) + ε on [0, 1], Nadaraya–Watson smoother of bandwidth h; metric ise on a fixed grid"
);

#[cfg(test)]
mod tests {
    use super::*;

    fn fam(h: f64) -> KernelRegression {
        KernelRegression::new(TrueFunction::Sine, 1.0, h, 10)
    }

    /// Hand-computed smoother: two samples within h of x0 = 0.5 at ±h/2 with weights
    /// 1/4 and 3/4: K(±1/2) equal, so f̂(0.5) = (y₁ + 3y₂)/4; far away the nearest sample.
    #[test]
    fn smoother_by_hand() {
        let f = fam(0.2);
        let x = [0.4, 0.6, 0.95];
        let y = [1.0, 3.0, -7.0];
        let c = [0.25, 0.75, 0.0];
        assert!((f.nw(&x, &y, &c, 0.5) - 2.5).abs() < 1e-15);
        // Only the first sample within h of 0.25 (|0.25 − 0.4| < 0.2 < |0.25 − 0.6|).
        assert!((f.nw(&x, &y, &c, 0.25) - 1.0).abs() < 1e-15);
        // 0.95 has weight 0: the nearest positive-weight sample is 0.6 (no sample within h of 0.9? 0.6 is 0.3 away).
        assert!((f.nw(&x, &y, &c, 0.9) - 3.0).abs() < 1e-15);
    }

    /// ise by hand: a fit that is constant 0 has ise = mean of sin²(2πx_j) over the grid,
    /// which for the midpoint grid of G = 10 points is exactly 1/2.
    #[test]
    fn ise_of_the_zero_function() {
        let f = fam(0.3);
        let samples = Mat::from_fn(3, 2, |i, j| if j == 0 { [0.1, 0.5, 0.9][i] } else { 0.0 });
        let fit = f.fit(samples.as_ref(), &[0.3, 0.3, 0.4], None).unwrap();
        let mut out = [0.0];
        let truth: Model = Box::new(Smoother::Truth);
        f.score(&fit, &truth, &mut out).unwrap();
        assert!((out[0] - 0.5).abs() < 1e-14, "{}", out[0]);
    }

    /// The exact ρ = R(K∗K)/R(K) against quadrature: K∗K(z) = ∫ K(u)K(z − u) du on
    /// |z| ≤ 2, R(K) = ∫ K² = 5/7.
    #[test]
    fn rho_of_the_biweight() {
        let conv = |z: f64| simpson((z - 1.0).max(-1.0), (z + 1.0).min(1.0), 400, |u| biweight(u) * biweight(z - u));
        let r_kernel = simpson(-1.0, 1.0, 400, |u| biweight(u) * biweight(u));
        assert!((r_kernel - 5.0 / 7.0).abs() < 1e-8, "{r_kernel}");
        let rho = simpson(-2.0, 2.0, 800, |z| conv(z) * conv(z)) / r_kernel;
        assert!((rho - BIWEIGHT_RHO).abs() < 1e-9, "{rho}");
    }

    #[test]
    fn parameters_are_checked() {
        let ctx = BuildContext { n: 10, p: 1 };
        let bad = KernelRegressionParams { bandwidth: 0.0, ..KernelRegressionParams::example() };
        assert_eq!(bad.checked_build(&ctx).unwrap_err().field(), Some("bandwidth"));
        let bad = KernelRegressionParams { noise_sd: -1.0, ..KernelRegressionParams::example() };
        assert_eq!(bad.checked_build(&ctx).unwrap_err().field(), Some("noise_sd"));
        let bad = KernelRegressionParams { grid: 3, ..KernelRegressionParams::example() };
        assert_eq!(bad.checked_build(&ctx).unwrap_err().field(), Some("grid"));
        assert_eq!(fam(0.1).check(2).unwrap_err().field(), Some("design.p"));
    }
}
