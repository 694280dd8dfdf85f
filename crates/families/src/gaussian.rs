use collapse_core::faer::{ColRef, Mat, MatRef};
use collapse_core::rng::fill_normal;
use collapse_core::{
    BuildContext, CellTheory, CoreError, Covariance, Family, MetricKind, MetricSpec, Model, NoTheory, Origin,
    ParamError, Params, Path, Rng, SampleFamily, SampleSizes, model_ref,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// What numerical errors of this family are reported as.
const WHAT: &str = "gaussian";

/// Gaussian distribution estimation (docs/families.md §1): the model is N(μ, Σ) in
/// dimension p, the truth has μ = β (the scenario's signal) and Σ the scenario's
/// covariance. Real samples are drawn from the truth, synthetic samples from the previous
/// fit N(μ̂, Σ̂) (with `known_covariance`, from N(μ̂, Σ)), each as μ + L z with L a
/// Cholesky factor and z ~ N(0, I_p), so common random numbers couple nearby fits.
///
/// The estimate (estimator `mle`) is the weighted maximum-likelihood estimate with
/// weights c_i summing to 1: μ̂ = Σ c_i x_i and Σ̂ = Σ c_i (x_i − μ̂)(x_i − μ̂)ᵀ, which
/// has E Σ̂ = (1 − Σ c_i²)Σ for iid samples, the (n − 1)/n shrinkage of the MLE.
///
/// Metrics, in column order: `mean_error` = ‖μ̂ − μ‖², `cov_error` = ‖Σ̂ − Σ‖²_F and
/// `variance_ratio` = tr Σ̂ / tr Σ (the collapse of the spread), all exact (no test sample).
///
/// Theory (docs/families.md §1): under the weighted protocol, `mean_error` is exact in t,
/// E‖μ̂_t − μ‖² = v_t tr(Σ)/n, from the joint recursion of v_t and the shrinkage s_t of
/// E Σ̂_t = s_t Σ; with `known_covariance` v_t = w² + (1 − w)²(v_{t−1} + k) and the
/// stationary value is (w² + k(1 − w)²)/(w(2 − w))·tr(Σ)/n, P3's formula; `variance_ratio`
/// is s_t exactly; `cov_error` has a first-order prediction.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `known_covariance` | false | bool | draw synthetic samples with the true Σ instead of Σ̂ |
///
/// Errors: none beyond the protocol's (the estimator must be `mle`).
///
/// Reference: He, Xu & Cheng (2025), *Recursive Learning Without Collapse: A
/// Weighting-Based Stabilization Framework*, arXiv 2502.18049 (Gaussian distribution
/// estimation); docs/families.md §1.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GaussianParams {
    /// Draw synthetic samples from N(μ̂, Σ) with the true covariance (the mean-only
    /// experiment) instead of N(μ̂, Σ̂).
    #[serde(default)]
    pub known_covariance: bool,
}

/// See [`GaussianParams`].
#[derive(Debug, Clone, Copy)]
pub struct Gaussian {
    known_covariance: bool,
}

/// A fitted or true N(μ, Σ) with a Cholesky factor of Σ for sampling.
#[derive(Debug, Clone)]
pub struct GaussianModel {
    /// μ.
    pub mean: Vec<f64>,
    /// Σ (p × p).
    pub cov: Mat<f64>,
    /// Lower-triangular L with LLᵀ = Σ (zero columns where Σ is singular).
    factor: Mat<f64>,
}

impl GaussianModel {
    /// The model N(mean, cov); the error says why `cov` is not a covariance.
    pub fn new(mean: Vec<f64>, cov: Mat<f64>) -> Result<Self, CoreError> {
        let factor = psd_cholesky(cov.as_ref())?;
        Ok(GaussianModel { mean, cov, factor })
    }
}

/// Cholesky factor of a positive semi-definite matrix: a pivot at or below p·ε times the
/// largest diagonal counts as zero and its column is set to zero (the matrix is then
/// singular in that direction, e.g. a collapsed covariance). O(p³) for the small p of
/// distribution estimation; a negative pivot beyond rounding is an error.
pub fn psd_cholesky(a: MatRef<'_, f64>) -> Result<Mat<f64>, CoreError> {
    let p = a.nrows();
    let scale = (0..p).map(|j| a[(j, j)].abs()).fold(0.0, f64::max);
    if !scale.is_finite() {
        return Err(CoreError::numerical(WHAT, "non-finite covariance"));
    }
    let tiny = (p as f64) * f64::EPSILON * scale;
    let mut l = Mat::<f64>::zeros(p, p);
    for j in 0..p {
        let d = a[(j, j)] - (0..j).map(|k| l[(j, k)] * l[(j, k)]).sum::<f64>();
        if d < -1e3 * tiny.max(f64::MIN_POSITIVE) {
            return Err(CoreError::numerical(WHAT, format!("covariance is not positive semi-definite (pivot {d:e})")));
        }
        if d <= tiny {
            continue;
        }
        let root = d.sqrt();
        l[(j, j)] = root;
        for i in j + 1..p {
            let s = a[(i, j)] - (0..j).map(|k| l[(i, k)] * l[(j, k)]).sum::<f64>();
            l[(i, j)] = s / root;
        }
    }
    Ok(l)
}

/// Σ as a dense matrix.
fn dense(covariance: &dyn Covariance) -> Mat<f64> {
    let p = covariance.dim();
    covariance.apply(Mat::<f64>::identity(p, p).as_ref())
}

/// The joint recursion of E‖μ̂_t − μ‖² = v_t tr(Σ)/n and E Σ̂_t = s_t Σ
/// (docs/families.md §1.2): one step at weight w.
fn step(v: f64, s: f64, w: f64, n: f64, m: f64, known: bool) -> (f64, f64) {
    let q = (1.0 - w) * (1.0 - w);
    let k = n / m;
    let syn = if known { 1.0 } else { s };
    let s_next = (w - w * w / n) + (1.0 - w - q / m) * syn + w * (1.0 - w) * v / n;
    let v_next = w * w + q * (v + k * syn);
    (v_next, s_next)
}

impl Gaussian {
    /// The family.
    pub fn new(known_covariance: bool) -> Self {
        Gaussian { known_covariance }
    }

    /// (v_t, s_t, u_t) along a schedule: mean factor, shrinkage and the first-order
    /// covariance-error factor (docs/families.md §1.2, §1.3).
    fn factors(&self, weights: &[f64], sizes: SampleSizes) -> Vec<(f64, f64, f64)> {
        let (n, m) = (sizes.real as f64, sizes.synthetic as f64);
        let k = n / m;
        let (mut v, mut s, mut u) = (1.0, 1.0 - 1.0 / n, 1.0 - 1.0 / n);
        let mut out = Vec::with_capacity(weights.len());
        for (t, &w) in weights.iter().enumerate() {
            if t > 0 {
                let q = (1.0 - w) * (1.0 - w);
                let syn = if self.known_covariance { 1.0 } else { s };
                let keep = if self.known_covariance { 0.0 } else { (1.0 - 1.0 / m) * (1.0 - 1.0 / m) };
                u = w * w + q * (keep * u + k * syn * syn);
                (v, s) = step(v, s, w, n, m, self.known_covariance);
            }
            out.push((v, s, u));
        }
        out
    }
}

impl Family for Gaussian {
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![
            MetricSpec::new("mean_error", MetricKind::Other, "squared error of the mean ‖μ̂ − μ‖²"),
            MetricSpec::new("cov_error", MetricKind::Other, "squared Frobenius error of the covariance ‖Σ̂ − Σ‖²_F"),
            MetricSpec::new("variance_ratio", MetricKind::Other, "tr Σ̂ / tr Σ: the spread kept (collapse: → 0)"),
        ]
    }
    fn samples(&self) -> Option<&dyn SampleFamily> {
        Some(self)
    }
}

impl SampleFamily for Gaussian {
    fn truth(&self, beta: ColRef<'_, f64>, covariance: &dyn Covariance) -> Result<Model, CoreError> {
        Ok(Box::new(GaussianModel::new(beta.iter().copied().collect(), dense(covariance))?))
    }

    fn draw(
        &self,
        model: &Model,
        origin: Origin,
        count: usize,
        covariance: &dyn Covariance,
        rng: &mut Rng,
    ) -> Result<Mat<f64>, CoreError> {
        let model = model_ref::<GaussianModel>(model, WHAT)?;
        let p = model.mean.len();
        let known;
        let factor = if origin == Origin::Synthetic && self.known_covariance {
            known = psd_cholesky(dense(covariance).as_ref())?;
            &known
        } else {
            &model.factor
        };
        let mut z = vec![0.0; count * p];
        fill_normal(rng, 1.0, &mut z);
        Ok(Mat::from_fn(count, p, |i, j| {
            let zi = &z[i * p..(i + 1) * p];
            model.mean[j] + (0..=j).map(|k| factor[(j, k)] * zi[k]).sum::<f64>()
        }))
    }

    fn fit(&self, samples: MatRef<'_, f64>, weights: &[f64], _previous: Option<&Model>) -> Result<Model, CoreError> {
        let (rows, p) = (samples.nrows(), samples.ncols());
        if weights.len() != rows || rows == 0 {
            return Err(CoreError::numerical(WHAT, format!("{rows} samples with {} weights", weights.len())));
        }
        let mean: Vec<f64> = (0..p).map(|j| (0..rows).map(|i| weights[i] * samples[(i, j)]).sum()).collect();
        let cov = Mat::from_fn(p, p, |a, b| {
            (0..rows).map(|i| weights[i] * (samples[(i, a)] - mean[a]) * (samples[(i, b)] - mean[b])).sum::<f64>()
        });
        if mean.iter().any(|x| !x.is_finite()) {
            return Err(CoreError::numerical(WHAT, "non-finite mean"));
        }
        Ok(Box::new(GaussianModel::new(mean, cov)?))
    }

    fn score(&self, estimate: &Model, truth: &Model, out: &mut [f64]) -> Result<(), CoreError> {
        let (e, t) = (model_ref::<GaussianModel>(estimate, WHAT)?, model_ref::<GaussianModel>(truth, WHAT)?);
        out[0] = e.mean.iter().zip(&t.mean).map(|(a, b)| (a - b) * (a - b)).sum();
        let p = t.mean.len();
        out[1] = (0..p)
            .flat_map(|i| (0..p).map(move |j| (i, j)))
            .map(|(i, j)| (e.cov[(i, j)] - t.cov[(i, j)]).powi(2))
            .sum();
        let trace = |m: &Mat<f64>| (0..p).map(|i| m[(i, i)]).sum::<f64>();
        out[2] = trace(&e.cov) / trace(&t.cov);
        Ok(())
    }

    fn weighted_theory(
        &self,
        sizes: SampleSizes,
        covariance: &dyn Covariance,
    ) -> Result<Box<dyn CellTheory>, NoTheory> {
        let taus = covariance.eigenvalues();
        Ok(Box::new(GaussianTheory {
            family: *self,
            sizes,
            tr: taus.iter().sum(),
            tr2: taus.iter().map(|t| t * t).sum(),
        }))
    }
}

/// The weighted-recursion theory of [`Gaussian`] for one cell (docs/families.md §1.2, §1.3).
#[derive(Debug, Clone, Copy)]
pub struct GaussianTheory {
    family: Gaussian,
    sizes: SampleSizes,
    /// tr Σ.
    tr: f64,
    /// tr Σ².
    tr2: f64,
}

impl CellTheory for GaussianTheory {
    fn paths(&self, weights: &[f64]) -> Vec<Result<Path, NoTheory>> {
        let n = self.sizes.real as f64;
        let f = self.family.factors(weights, self.sizes);
        let (tr, tr2) = (self.tr, self.tr2);
        vec![
            Ok(f.iter().map(|(v, _, _)| Some(v * tr / n)).collect()),
            Ok(f.iter().map(|(_, s, u)| Some((s - 1.0) * (s - 1.0) * tr2 + u * (tr2 + tr * tr) / n)).collect()),
            Ok(f.iter().map(|(_, s, _)| Some(*s)).collect()),
        ]
    }

    fn limit(&self, w: f64) -> Result<f64, NoTheory> {
        if !(w > 0.0 && w <= 1.0) {
            return Err(NoTheory::new("the stationary limit needs 0 < w ≤ 1"));
        }
        let (n, m) = (self.sizes.real as f64, self.sizes.synthetic as f64);
        let (k, q) = (n / m, (1.0 - w) * (1.0 - w));
        let one_minus_q = w * (2.0 - w);
        let v = if self.family.known_covariance {
            collapse_theory::c_k(w, k)
        } else {
            // Fixed point of the pair (docs/families.md §1.2): v = (w² + qks)/(1 − q) and
            // s = a + b s + c v, solved for s.
            let (a, b, c) = (w - w * w / n, 1.0 - w - q / m, w * (1.0 - w) / n);
            let s = (a + c * w * w / one_minus_q) / (1.0 - b - c * q * k / one_minus_q);
            (w * w + q * k * s) / one_minus_q
        };
        Ok(v * self.tr / n)
    }
}

impl Params for GaussianParams {
    type Target = dyn Family;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Family>, ParamError> {
        Ok(Box::new(Gaussian::new(self.known_covariance)))
    }
    fn example() -> Self {
        GaussianParams { known_covariance: false }
    }
}

collapse_core::register!(
    FamilyPlugin,
    GaussianParams,
    "gaussian",
    "Estimate N(μ, Σ) from samples (μ = signal β, Σ = covariance); metrics mean_error, cov_error, variance_ratio"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::Diagonal as Diag;
    use collapse_core::rng::{Purpose, Streams};

    #[test]
    fn cholesky_of_a_singular_matrix() {
        let a = Mat::from_fn(3, 3, |i, j| [[4.0, 2.0, 0.0], [2.0, 1.0, 0.0], [0.0, 0.0, 9.0]][i][j]);
        let l = psd_cholesky(a.as_ref()).unwrap();
        let back = Mat::from_fn(3, 3, |i, j| (0..3).map(|k| l[(i, k)] * l[(j, k)]).sum::<f64>());
        for i in 0..3 {
            for j in 0..3 {
                assert!((back[(i, j)] - a[(i, j)]).abs() < 1e-12, "{i} {j}");
            }
        }
        let bad = Mat::from_fn(1, 1, |_, _| -1.0);
        assert!(psd_cholesky(bad.as_ref()).is_err());
    }

    /// Weighted mean and covariance by hand, and the scores.
    #[test]
    fn weighted_fit_and_score_by_hand() {
        let x = Mat::from_fn(3, 1, |i, _| [1.0, 2.0, 4.0][i]);
        let g = Gaussian::new(false);
        let fit = g.fit(x.as_ref(), &[0.5, 0.25, 0.25], None).unwrap();
        let e = model_ref::<GaussianModel>(&fit, WHAT).unwrap();
        // μ̂ = 0.5 + 0.5 + 1 = 2; Σ̂ = 0.5·1 + 0.25·0 + 0.25·4 = 1.5.
        assert!((e.mean[0] - 2.0).abs() < 1e-15 && (e.cov[(0, 0)] - 1.5).abs() < 1e-15);
        let truth: Model = Box::new(GaussianModel::new(vec![1.0], Mat::from_fn(1, 1, |_, _| 1.0)).unwrap());
        let mut out = [0.0; 3];
        g.score(&fit, &truth, &mut out).unwrap();
        assert!((out[0] - 1.0).abs() < 1e-15 && (out[1] - 0.25).abs() < 1e-15, "{out:?}");
        assert!((out[2] - 1.5).abs() < 1e-15);
    }

    /// Draws have the model's mean and covariance (z-scores).
    #[test]
    fn draws_have_the_model_moments() {
        let g = Gaussian::new(false);
        let cov = Mat::from_fn(2, 2, |i, j| [[2.0, 0.6], [0.6, 1.0]][i][j]);
        let model: Model = Box::new(GaussianModel::new(vec![1.0, -2.0], cov).unwrap());
        let n = 100_000;
        let mut rng = Streams::new(1, 2, 3).rng(Purpose::Covariates, 0);
        let x = g.draw(&model, Origin::Real, n, &Diag(vec![1.0, 1.0]), &mut rng).unwrap();
        let fit = g.fit(x.as_ref(), &vec![1.0 / n as f64; n], None).unwrap();
        let e = model_ref::<GaussianModel>(&fit, WHAT).unwrap();
        let z0 = (e.mean[0] - 1.0) / (2.0 / n as f64).sqrt();
        let z01 = (e.cov[(0, 1)] - 0.6) / ((2.0 * 1.0 + 0.36) / n as f64).sqrt();
        assert!(z0.abs() < 4.0 && z01.abs() < 4.0, "{z0} {z01}");
    }

    /// The recursion's fixed point equals the long-run iterate, and with the covariance
    /// known it is P3's c_k(w)·tr(Σ)/n.
    #[test]
    fn limit_matches_the_recursion() {
        let cov = Diag(vec![2.0, 1.0]);
        let sizes = SampleSizes { real: 100, synthetic: 50 };
        for known in [false, true] {
            let g = Gaussian::new(known);
            for w in [0.2, 0.618, 0.9] {
                let theory = g.weighted_theory(sizes, &cov).unwrap();
                let path = theory.paths(&vec![w; 3000]).remove(0).unwrap();
                let last = path.last().unwrap().unwrap();
                let limit = theory.limit(w).unwrap();
                assert!((last - limit).abs() < 1e-12 * limit, "{known} {w}: {last} vs {limit}");
                if known {
                    assert!((limit - collapse_theory::c_k(w, 2.0) * 3.0 / 100.0).abs() < 1e-15);
                }
            }
        }
    }
}
