//! An out-of-tree estimator plugin for `collapse`: `landweber`, early-stopped gradient
//! descent on the least-squares loss.
//!
//! The whole plugin is a parameter struct implementing [`Params`], an estimator
//! implementing [`Estimator`] (and, because it is a spectral filter, [`SpectralFilter`]),
//! and one `inventory::submit!`. `src/main.rs` links this crate into its own copy of
//! the `collapse` binary (`use custom_estimator as _;`), so `collapse list estimator`
//! shows `landweber` beside the built-in estimators and scenario files can say
//! `kind = "landweber"`.

use collapse_core::faer::{Col, ColRef, Mat, MatRef};
use collapse_core::{BuildContext, CoreError, Estimator, EstimatorPlugin, ParamError, Params, SpectralFilter};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Largest accepted number of steps (a fit costs O(steps · n · p)).
pub const MAX_STEPS: usize = 1_000_000;

/// Landweber iteration (early-stopped gradient descent) on the least-squares loss
/// L(b) = ‖y − Xb‖²/(2n), started at b_0 = 0:
///
/// b_{j+1} = b_j + (η/n) Xᵀ(y − X b_j),  j = 0, …, k − 1,  β̂ = b_k.
///
/// With the thin SVD X = U diag(d) Vᵀ every singular direction evolves on its own, so
/// β̂ = V diag(g(d_i)) Uᵀy with the exact Landweber filter
/// g(d) = (1 − (1 − η d²/n)^k) / d. Small singular values get g ≈ kη·d/n (heavily
/// shrunk, like ridge with nλ ≈ n/(ηk)); large ones get g ≈ 1/d (least squares). As
/// k → ∞ with 0 < η d_max²/n < 2, β̂ → X⁺y, the minimum-norm least-squares solution.
///
/// **Step size.** The step is η = `step_size` / s_ref with the fixed reference
/// curvature s_ref = (1 + √(p/n))², n = `design.n`, p = `design.p`: the almost-sure
/// limit of the largest eigenvalue ‖X‖₂²/n of XᵀX/n when Σ = I (upper edge of the
/// Marchenko–Pastur law). η is fixed when the scenario is resolved and does not
/// depend on the sampled design, because the spectral form g(d) may only depend on d
/// and n: that is what lets settings factor X once and iterate in O(r), and it is what
/// makes `fit` and the spectral gain the same estimator. The iteration is stable iff
/// η·‖X‖₂²/n ≤ 2, i.e. `step_size` · (‖X‖₂²/n) / s_ref ≤ 2: for Σ = I any
/// `step_size` < 2 is safe up to the O(n^(−2/3)) edge fluctuations, but with a
/// strong spike (e.g. `equicorrelated`, `spiked`, `power-law` covariances) ‖X‖₂²/n
/// exceeds s_ref by the top eigenvalue of Σ and `step_size` must be lowered
/// accordingly.
///
/// Row weights c_i ≥ 0 (loss Σ c_i (y_i − x_iᵀb)²/(2n)) are applied by scaling row i
/// of X and y by √c_i; n is the number of rows handed to the fit.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `steps` | 50 | integer, 1 ≤ k ≤ 1 000 000 | number of gradient steps k (early-stopping time) |
/// | `step_size` | 1.0 | 0 < s < 2 | step η in units of 1/s_ref, s_ref = (1 + √(p/n))² |
///
/// Errors: at build time, `steps` outside [1, 1 000 000] and `step_size` not in
/// (0, 2) (or not finite), each naming its field. At fit time, a numerical error when
/// the step is unstable for the sampled design (η·‖X‖₂²/n > 2, the iterates would
/// grow like |1 − η d_max²/n|^k); the spectral gain is NaN for such a singular value,
/// so the spectral path fails on a non-finite risk instead of reporting garbage.
///
/// References: L. Landweber (1951), *An iteration formula for Fredholm integral
/// equations of the first kind*, Amer. J. Math. 73(3), 615–624; Y. Yao, L. Rosasco,
/// A. Caponnetto (2007), *On early stopping in gradient descent learning*, Constr.
/// Approx. 26(2), 289–315.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LandweberParams {
    /// Number of gradient steps k (1 ≤ k ≤ 1000000): the early-stopping time.
    #[serde(default = "default_steps")]
    #[schemars(range(min = 1, max = 1_000_000))]
    pub steps: usize,
    /// Step size in units of 1/s_ref, s_ref = (1 + √(p/n))²; must lie in (0, 2).
    #[serde(default = "default_step_size")]
    #[schemars(extend("exclusiveMinimum" = 0.0, "exclusiveMaximum" = 2.0))]
    pub step_size: f64,
}

fn default_steps() -> usize {
    50
}

fn default_step_size() -> f64 {
    1.0
}

impl Default for LandweberParams {
    fn default() -> Self {
        LandweberParams { steps: default_steps(), step_size: default_step_size() }
    }
}

/// The reference curvature s_ref = (1 + √(p/n))² for an n × p design.
pub fn reference_curvature(n: usize, p: usize) -> f64 {
    let r = 1.0 + (p as f64 / n.max(1) as f64).sqrt();
    r * r
}

/// The Landweber estimator. See [`LandweberParams`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Landweber {
    steps: usize,
    step_size: f64,
    s_ref: f64,
    /// η = step_size / s_ref in b ← b + (η/n) Xᵀ(y − Xb).
    eta: f64,
}

impl Landweber {
    /// The estimator with `steps` steps and step η = `step_size` / `s_ref`, where
    /// `s_ref` is the reference curvature (see [`reference_curvature`]). Validates
    /// `steps` ∈ [1, [`MAX_STEPS`]], `step_size` ∈ (0, 2) and `s_ref` finite and > 0.
    pub fn new(steps: usize, step_size: f64, s_ref: f64) -> Result<Self, ParamError> {
        if !(1..=MAX_STEPS).contains(&steps) {
            return Err(ParamError::new("steps", format!("must be an integer in [1, {MAX_STEPS}], got {steps}")));
        }
        if !(step_size.is_finite() && step_size > 0.0 && step_size < 2.0) {
            return Err(ParamError::new("step_size", format!("must be in (0, 2), got {step_size}")));
        }
        if !(s_ref.is_finite() && s_ref > 0.0) {
            return Err(ParamError::new(
                "step_size",
                format!("reference curvature must be finite and > 0, got {s_ref}"),
            ));
        }
        Ok(Landweber { steps, step_size, s_ref, eta: step_size / s_ref })
    }

    /// The number of steps k.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The absolute step η = step_size / s_ref.
    pub fn eta(&self) -> f64 {
        self.eta
    }

    /// The reference curvature s_ref the step size is measured in.
    pub fn reference_curvature(&self) -> f64 {
        self.s_ref
    }
}

impl SpectralFilter for Landweber {
    /// g(d) = (1 − (1 − x)^k)/d with x = η d²/n; 0 for d ≤ 0; NaN when x > 2 (the step
    /// is unstable along that direction).
    fn gain(&self, d: f64, n: usize) -> f64 {
        if d.is_nan() {
            return f64::NAN;
        }
        if d <= 0.0 {
            return 0.0;
        }
        let x = self.eta * d * d / n as f64;
        let kept = if x <= 1.0 {
            // 1 − (1 − x)^k = −expm1(k·ln(1 − x)), without cancellation for small x.
            -(self.steps as f64 * (-x).ln_1p()).exp_m1()
        } else if x <= 2.0 {
            // 1 − x ∈ [−1, 0): an oscillating but non-growing factor (k ≤ 10⁶ fits i32).
            1.0 - (1.0 - x).powi(i32::try_from(self.steps).unwrap_or(i32::MAX))
        } else {
            return f64::NAN;
        };
        kept / d
    }
}

impl Estimator for Landweber {
    fn fit(
        &self,
        x: MatRef<'_, f64>,
        y: ColRef<'_, f64>,
        weights: Option<ColRef<'_, f64>>,
    ) -> Result<Col<f64>, CoreError> {
        let (n, p) = (x.nrows(), x.ncols());
        if y.nrows() != n {
            return Err(CoreError::numerical("landweber fit", format!("design has {n} rows but {} labels", y.nrows())));
        }
        if n == 0 {
            return Ok(Col::zeros(p));
        }
        let (xw, yw): (Mat<f64>, Col<f64>) = match weights {
            None => (x.to_owned(), y.to_owned()),
            Some(c) => {
                if c.nrows() != n || c.iter().any(|&ci| !(ci >= 0.0 && ci.is_finite())) {
                    return Err(CoreError::numerical(
                        "landweber fit",
                        "row weights must be finite, >= 0 and one per row",
                    ));
                }
                let s: Vec<f64> = c.iter().map(|ci| ci.sqrt()).collect();
                (Mat::from_fn(n, p, |i, j| s[i] * x[(i, j)]), Col::from_fn(n, |i| s[i] * y[i]))
            }
        };
        // Stability η‖X‖₂²/n ≤ 2, with ‖X‖₂ the largest singular value: the same
        // criterion under which the spectral gain is finite.
        let sv = xw.singular_values().map_err(|e| CoreError::numerical("landweber fit", format!("SVD: {e:?}")))?;
        let d_max = sv.first().copied().unwrap_or(0.0);
        let curvature = self.eta * d_max * d_max / n as f64;
        if !curvature.is_finite() || curvature > 2.0 {
            return Err(CoreError::numerical(
                "landweber fit",
                format!(
                    "estimator.step_size = {} is unstable for this design: η·‖X‖₂²/n = {curvature:.4} > 2 \
                     (‖X‖₂²/n = {:.4} vs s_ref = {:.4}); use step_size < {:.4}",
                    self.step_size,
                    d_max * d_max / n as f64,
                    self.s_ref,
                    2.0 * self.step_size / curvature,
                ),
            ));
        }
        let h = self.eta / n as f64;
        let mut b = Col::<f64>::zeros(p);
        for _ in 0..self.steps {
            let residual = &yw - &xw * &b;
            b += (xw.transpose() * &residual) * h;
        }
        if b.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::numerical("landweber fit", "non-finite coefficients"));
        }
        Ok(b)
    }

    fn spectral(&self) -> Option<&dyn SpectralFilter> {
        Some(self)
    }
}

impl Params for LandweberParams {
    type Target = dyn Estimator;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        Ok(Box::new(Landweber::new(self.steps, self.step_size, reference_curvature(ctx.n, ctx.p))?))
    }
    fn example() -> Self {
        LandweberParams { steps: 20, step_size: 1.0 }
    }
}

collapse_core::inventory::submit! {
    EstimatorPlugin::new::<LandweberParams>(
        "landweber",
        "Early-stopped gradient descent (Landweber): k steps of b ← b + (η/n)Xᵀ(y − Xb) from 0",
    )
}

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use collapse_core::rng::{Purpose, Streams, normal_vec};
    use collapse_core::serde_json::json;

    fn ctx(n: usize, p: usize) -> BuildContext {
        BuildContext { n, p, noise_sd: 1.0 }
    }

    fn random(n: usize, p: usize, seed: u64) -> (Mat<f64>, Col<f64>) {
        let mut rng = Streams::new(seed, 0, 0).rng(Purpose::Design, 0);
        let z = normal_vec(&mut rng, 1.0, n * p + n);
        (Mat::from_fn(n, p, |i, j| z[i * p + j]), Col::from_fn(n, |i| z[n * p + i]))
    }

    /// β̂ = V diag(gain(d_i)) Uᵀy on the thin SVD of (√c ⊙ X, √c ⊙ y).
    fn spectral_reference(
        filter: &dyn SpectralFilter,
        x: MatRef<'_, f64>,
        y: ColRef<'_, f64>,
        weights: Option<ColRef<'_, f64>>,
    ) -> Col<f64> {
        let (n, p) = (x.nrows(), x.ncols());
        let s: Vec<f64> = (0..n).map(|i| weights.map_or(1.0, |c| c[i].sqrt())).collect();
        let xw = Mat::from_fn(n, p, |i, j| s[i] * x[(i, j)]);
        let yw = Col::from_fn(n, |i| s[i] * y[i]);
        let svd = xw.thin_svd().unwrap();
        let d = svd.S().column_vector();
        let uty = svd.U().transpose() * &yw;
        let coef = Col::from_fn(d.nrows(), |i| filter.gain(d[i], n) * uty[i]);
        svd.V() * &coef
    }

    fn max_rel_diff(a: &Col<f64>, b: &Col<f64>) -> f64 {
        (a - b).norm_max() / b.norm_max().max(f64::MIN_POSITIVE)
    }

    #[test]
    fn plugin_is_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Landweber>();
        check::<LandweberParams>();
        check::<Box<dyn Estimator>>();
    }

    #[test]
    fn is_registered_with_defaults() {
        let plugin = collapse_core::registry::lookup::<dyn Estimator>("landweber").unwrap();
        let built = (plugin.build)(&json!({}), &ctx(40, 80)).unwrap();
        assert_eq!(built.params["steps"], json!(50));
        assert_eq!(built.params["step_size"], json!(1.0));
        assert!(built.object.spectral().is_some());
        assert!(built.object.ridge_penalty().is_none());
        assert!(LandweberParams::example().build(&ctx(40, 80)).is_ok());
    }

    #[test]
    fn invalid_parameters_name_their_field() {
        let field = |p: LandweberParams| p.build(&ctx(10, 20)).unwrap_err().field;
        assert_eq!(field(LandweberParams { steps: 0, step_size: 1.0 }), "steps");
        assert_eq!(field(LandweberParams { steps: MAX_STEPS + 1, step_size: 1.0 }), "steps");
        for bad in [0.0, -0.5, 2.0, 2.5, f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
            let e = LandweberParams { steps: 10, step_size: bad }.build(&ctx(10, 20)).unwrap_err();
            assert_eq!(e.field, "step_size", "{bad}");
            assert!(e.message.contains("(0, 2)"), "{}", e.message);
        }
        // Through the registry: type errors and unknown keys name the field too.
        let plugin = collapse_core::registry::lookup::<dyn Estimator>("landweber").unwrap();
        let err = |v| match (plugin.build)(&v, &ctx(10, 20)) {
            Err(CoreError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(err(json!({"steps": 0})), "steps");
        assert_eq!(err(json!({"steps": -3})), "steps");
        assert_eq!(err(json!({"steps": 2.5})), "steps");
        assert_eq!(err(json!({"step_size": 3.0})), "step_size");
        assert_eq!(err(json!({"step_size": "big"})), "step_size");
        assert!(matches!((plugin.build)(&json!({"lambda": 1.0}), &ctx(10, 20)), Err(CoreError::Config { .. })));
    }

    /// By hand: X = diag(1, 2), y = (1, 2), n = p = 2, so s_ref = (1 + 1)² = 4 and
    /// step_size = 1 gives η = 1/4, η/n = 1/8. The coordinates decouple:
    /// b₁ ← b₁ + (1 − b₁)/8: 1/8, then 1/8 + 7/64 = 15/64;
    /// b₂ ← b₂ + 2(2 − 2b₂)/8 = b₂ + (1 − b₂)/2: 1/2, then 3/4.
    /// With row weights (4, 1) the rows scale by (2, 1): X = 2I, y = (2, 2), and both
    /// coordinates follow b ← b + (1 − b)/2: (3/4, 3/4).
    #[test]
    fn tiny_case_by_hand() {
        let est = LandweberParams { steps: 2, step_size: 1.0 }.build(&ctx(2, 2)).unwrap();
        let x = Mat::from_fn(2, 2, |i, j| [[1.0, 0.0], [0.0, 2.0]][i][j]);
        let y = Col::from_fn(2, |i| [1.0, 2.0][i]);
        let b = est.fit(x.as_ref(), y.as_ref(), None).unwrap();
        assert!((b[0] - 15.0 / 64.0).abs() < 1e-15, "{b:?}");
        assert!((b[1] - 0.75).abs() < 1e-15, "{b:?}");
        // The filter gives the same numbers: g(1) = 1 − (7/8)² = 15/64, g(2)·2 = 3/4.
        let g = est.spectral().unwrap();
        assert!((g.gain(1.0, 2) - 15.0 / 64.0).abs() < 1e-15);
        assert!((2.0 * g.gain(2.0, 2) - 0.75).abs() < 1e-15);
        let w = Col::from_fn(2, |i| [4.0, 1.0][i]);
        let bw = est.fit(x.as_ref(), y.as_ref(), Some(w.as_ref())).unwrap();
        assert!((bw[0] - 0.75).abs() < 1e-15 && (bw[1] - 0.75).abs() < 1e-15, "{bw:?}");
    }

    /// The invariant settings rely on: `fit` (k explicit gradient steps) equals the
    /// spectral form V diag(gain(d_i)) Uᵀy, for p > n, n > p and n = p, with and
    /// without row weights, across step counts and across the whole stable range of
    /// the top direction's curvature c = η d_max²/n (including the oscillating regime
    /// 1 < c ≤ 2).
    #[test]
    fn fit_agrees_with_spectral_gain() {
        for (n, p, seed) in [(30, 50, 1), (50, 20, 2), (25, 25, 3)] {
            let (x, y) = random(n, p, seed);
            let weights = Col::from_fn(n, |i| 0.25 + (i % 4) as f64);
            for w in [None, Some(weights.as_ref())] {
                let xw = Mat::from_fn(n, p, |i, j| w.map_or(1.0, |c| c[i].sqrt()) * x[(i, j)]);
                let d_max = xw.singular_values().unwrap()[0];
                let s_max = d_max * d_max / n as f64;
                for c in [0.05, 0.7, 1.0, 1.6, 1.99] {
                    for steps in [1, 2, 7, 50, 400] {
                        // Measuring the step in units of 1/s_max makes η d_max²/n = c.
                        let lw = Landweber::new(steps, c, s_max).unwrap();
                        let b = lw.fit(x.as_ref(), y.as_ref(), w).unwrap();
                        let reference = spectral_reference(&lw, x.as_ref(), y.as_ref(), w);
                        let diff = max_rel_diff(&b, &reference);
                        let tag = format!("n={n} p={p} k={steps} c={c} weighted={}", w.is_some());
                        assert!(diff < 1e-9, "{tag}: {diff:e}");
                    }
                }
            }
        }
    }

    /// As k → ∞ the iteration converges to the minimum-norm interpolator X⁺y (p > n).
    #[test]
    fn many_steps_approach_min_norm() {
        let (n, p) = (20, 45);
        let (x, y) = random(n, p, 4);
        let lw = Landweber::new(20_000, 1.0, reference_curvature(n, p)).unwrap();
        let b = lw.fit(x.as_ref(), y.as_ref(), None).unwrap();
        let svd = x.thin_svd().unwrap();
        let d = svd.S().column_vector();
        let uty = svd.U().transpose() * &y;
        let pinv = svd.V() * Col::from_fn(n, |i| uty[i] / d[i]);
        assert!(max_rel_diff(&b, &pinv) < 1e-8, "{:e}", max_rel_diff(&b, &pinv));
        assert!((&x * &b - &y).norm_l2() < 1e-8 * y.norm_l2());
    }

    #[test]
    fn gain_limits() {
        let lw = Landweber::new(10, 1.0, 4.0).unwrap(); // η = 1/4
        let n = 8;
        // Small d: g ≈ kη d/n (no cancellation).
        let d = 1e-9;
        assert!((lw.gain(d, n) / (10.0 * 0.25 * d / n as f64) - 1.0).abs() < 1e-12);
        assert!(lw.gain(0.0, n).abs() < f64::MIN_POSITIVE);
        // η d²/n = 1: one step interpolates the direction, g = 1/d.
        let d = (n as f64 / 0.25).sqrt();
        assert!((lw.gain(d, n) * d - 1.0).abs() < 1e-15);
        // η d²/n = 2 is the (stable) edge; above it the gain is NaN.
        let d = (2.0 * n as f64 / 0.25).sqrt();
        assert!(lw.gain(d, n).is_finite());
        assert!(lw.gain(d * 1.01, n).is_nan());
    }

    /// A step that is unstable for the sampled design is an error in `fit`, and the
    /// spectral gain of the offending direction is NaN.
    #[test]
    fn unstable_step_is_reported() {
        let est = LandweberParams { steps: 5, step_size: 1.9 }.build(&ctx(2, 2)).unwrap(); // η = 0.475
        let x = Mat::from_fn(2, 2, |i, j| if i == j { [1.0, 4.0][i] } else { 0.0 }); // η·16/2 = 3.8
        let y = Col::from_fn(2, |_| 1.0);
        let err = est.fit(x.as_ref(), y.as_ref(), None).unwrap_err().to_string();
        assert!(err.contains("step_size"), "{err}");
        assert!(est.spectral().unwrap().gain(4.0, 2).is_nan());
    }
}
