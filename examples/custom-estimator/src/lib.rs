//! An out-of-tree estimator plugin for `collapse`: `landweber`, early-stopped gradient
//! descent on the least-squares loss.
//!
//! The whole plugin is a parameter struct implementing [`Params`], an estimator
//! implementing [`Estimator`] (and, because it is a spectral filter, [`SpectralFilter`]),
//! and one [`collapse_core::register!`]. `src/main.rs` links this crate into its own copy
//! of the `collapse` binary (`use custom_estimator as _;`), so `list estimator` shows
//! `landweber` beside the built-in estimators and scenario files can say
//! `kind = "landweber"`.
//!
//! The only dependencies are `collapse-core` (which re-exports faer, serde, schemars,
//! serde_json, inventory and rand, hence the `crate = "collapse_core::…"` attributes
//! below) and, for the binary, `collapse-cli`.

use collapse_core::faer::{Col, Mat};
use collapse_core::schemars::JsonSchema;
use collapse_core::serde::{Deserialize, Serialize};
use collapse_core::spectral::linalg::{matvec, t_matvec, thin_svd};
use collapse_core::{BuildContext, CoreError, Estimator, FitInput, ParamError, Params, SpectralFilter};

/// Landweber iteration (early-stopped gradient descent) on the least-squares loss
/// L(b) = ‖y − Xb‖²/(2n), started at b_0 = 0:
///
/// b_{j+1} = b_j + (η/n) Xᵀ(y − X b_j),  j = 0, …, k − 1,  β̂ = b_k.
///
/// With the thin SVD X = U diag(d) Vᵀ every singular direction evolves on its own, so
/// β̂ = V diag(g(d_i)) Uᵀy with the exact Landweber filter
/// g(d) = (1 − (1 − η d²/n)^k) / d. Small singular values get g ≈ kη·d/n (heavily
/// shrunk, like ridge with nλ ≈ n/(ηk)); large ones get g ≈ 1/d (least squares). As
/// k → ∞ with 0 < η d_max²/n ≤ 2 (d_max the largest singular value), β̂ → X⁺y, the
/// minimum-norm least-squares solution. Being a spectral filter, it gets the
/// fixed-design fast path (O(r) per iteration) and the exact risk `risk_exact` under
/// Gaussian labels.
///
/// **Step size.** The step is η = `step_size` / s_ref with the fixed reference
/// curvature s_ref = (1 + √(p/n))², n = `design.n`, p = `design.p`: the almost-sure
/// limit of the largest eigenvalue d_max²/n of XᵀX/n when Σ = I (upper edge of the
/// Marchenko–Pastur law). η is fixed when the scenario is resolved, not taken from each
/// sampled design, so that every replicate runs the same iteration and `step_size`
/// means the same thing across cells. The iteration is stable iff the curvature of the
/// top direction η·d_max²/n is at most 2, i.e. `step_size` · (d_max²/n) / s_ref ≤ 2:
/// for Σ = I any `step_size` < 2 is safe up to the O(n^(−2/3)) edge fluctuations, but
/// with a strong spike (e.g. `equicorrelated`, `spiked`, `power-law` covariances)
/// d_max²/n exceeds s_ref by about the top eigenvalue of Σ and `step_size` must be
/// lowered accordingly.
///
/// Row weights c_i ≥ 0 (loss Σ c_i (y_i − x_iᵀb)²/(2n)) are applied by scaling row i
/// of X and y by √c_i; n is the number of rows handed to the fit. The iteration always
/// starts at 0 (a warm start would change the estimator), so `FitInput::start` is
/// ignored.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `steps` | 50 | integer, 1 ≤ k ≤ 1 000 000 | number of gradient steps k (early-stopping time) |
/// | `step_size` | 1.0 | 0 < s < 2 | step η in units of 1/s_ref, s_ref = (1 + √(p/n))² |
///
/// Errors: when the scenario is resolved, `steps` outside [1, 1 000 000] or
/// `step_size` outside (0, 2), naming the field. When running, a numerical failure
/// naming `estimator.step_size` and the curvature η·d_max²/n when the step is unstable
/// for the sampled design (curvature > 2: the iterates would grow like
/// |1 − η d_max²/n|^k). Both paths report it: the gains see the whole spectrum, and
/// `fit` computes d_max of the (weighted) design before stepping. The `collapse`
/// binary then exits with code 1.
///
/// References: L. Landweber (1951), *An iteration formula for Fredholm integral
/// equations of the first kind*, Amer. J. Math. 73(3), 615–624; Y. Yao, L. Rosasco,
/// A. Caponnetto (2007), *On early stopping in gradient descent learning*, Constr.
/// Approx. 26(2), 289–315.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(crate = "collapse_core::serde", deny_unknown_fields)]
#[schemars(crate = "collapse_core::schemars")]
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
    /// `s_ref` is the reference curvature (see [`reference_curvature`]). The ranges of
    /// `steps` and `step_size` are declared in [`LandweberParams`]'s schema and checked
    /// by the registry before [`Params::build`] runs.
    pub fn new(steps: usize, step_size: f64, s_ref: f64) -> Self {
        Landweber { steps, step_size, s_ref, eta: step_size / s_ref }
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

    /// Ok when the iteration is stable on a design with largest singular value `d_max`
    /// and `n` rows (η·d_max²/n ≤ 2); otherwise the error both paths report.
    fn check_stable(&self, d_max: f64, n: usize) -> Result<(), CoreError> {
        let top = d_max * d_max / n.max(1) as f64;
        let curvature = self.eta * top;
        if curvature <= 2.0 {
            return Ok(());
        }
        Err(CoreError::numerical(
            "landweber",
            format!(
                "estimator.step_size = {} is unstable for this design: the top direction's curvature \
                 η·d_max²/n = {curvature:.4} exceeds 2 (d_max²/n = {top:.4}, reference s_ref = {:.4}); \
                 use estimator.step_size < {:.4}",
                self.step_size,
                self.s_ref,
                2.0 * self.s_ref / top,
            ),
        ))
    }
}

impl SpectralFilter for Landweber {
    /// g(d) = (1 − (1 − x)^k)/d with x = η d²/n, for every singular value; an error when
    /// the largest x exceeds 2 (the step is unstable along that direction).
    fn gains(&self, d: &[f64], n: usize) -> Result<Vec<f64>, CoreError> {
        if d.iter().any(|v| v.is_nan()) {
            return Err(CoreError::numerical("landweber", "NaN singular value"));
        }
        // d is descending, but taking the maximum costs nothing and assumes nothing.
        let d_max = d.iter().copied().fold(0.0, f64::max);
        self.check_stable(d_max, n)?;
        let steps = self.steps as f64;
        let steps_i32 = i32::try_from(self.steps).unwrap_or(i32::MAX);
        Ok(d.iter()
            .map(|&d| {
                if d <= 0.0 {
                    return 0.0;
                }
                let x = self.eta * d * d / n as f64;
                let kept = if x <= 1.0 {
                    // 1 − (1 − x)^k = −expm1(k·ln(1 − x)), without cancellation for small x.
                    -(steps * (-x).ln_1p()).exp_m1()
                } else {
                    // 1 − x ∈ [−1, 0): an oscillating but non-growing factor (k ≤ 10⁶ fits i32).
                    1.0 - (1.0 - x).powi(steps_i32)
                };
                kept / d
            })
            .collect())
    }
}

impl Estimator for Landweber {
    /// Runs the k gradient steps on the √c-scaled rows, after checking the step against
    /// the (weighted) design's largest singular value.
    fn fit(&self, input: &FitInput<'_>) -> Result<Col<f64>, CoreError> {
        let (x, y, par) = (input.x, input.y, input.par);
        let (n, p) = (x.nrows(), x.ncols());
        if y.nrows() != n {
            return Err(CoreError::numerical("landweber", format!("design has {n} rows but {} labels", y.nrows())));
        }
        if n == 0 {
            return Ok(Col::zeros(p));
        }
        let (xw, yw): (Mat<f64>, Col<f64>) = match input.weights {
            None => (x.to_owned(), y.to_owned()),
            Some(c) => {
                if c.nrows() != n || c.iter().any(|&ci| !(ci >= 0.0 && ci.is_finite())) {
                    return Err(CoreError::numerical("landweber", "row weights must be finite, >= 0 and one per row"));
                }
                let s: Vec<f64> = c.iter().map(|ci| ci.sqrt()).collect();
                (Mat::from_fn(n, p, |i, j| s[i] * x[(i, j)]), Col::from_fn(n, |i| s[i] * y[i]))
            }
        };
        // The same stability criterion as the gains, on the design actually fitted.
        let d_max = thin_svd(xw.as_ref(), par)?.s.first().copied().unwrap_or(0.0);
        if d_max.is_nan() {
            return Err(CoreError::numerical("landweber", "NaN singular value"));
        }
        self.check_stable(d_max, n)?;
        let h = self.eta / n as f64;
        let mut b = Col::<f64>::zeros(p);
        for _ in 0..self.steps {
            let fitted = matvec(xw.as_ref(), b.as_ref(), par);
            let residual = Col::<f64>::from_fn(n, |i| yw[i] - fitted[i]);
            let grad = t_matvec(xw.as_ref(), residual.as_ref(), par);
            for j in 0..p {
                b[j] += h * grad[j];
            }
        }
        if b.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::numerical("landweber", "non-finite coefficients"));
        }
        Ok(b)
    }

    fn spectral(&self) -> Option<&dyn SpectralFilter> {
        Some(self)
    }
}

impl Params for LandweberParams {
    type Target = dyn Estimator;
    /// Ranges are checked by the registry from the schema; what is left is fixing η
    /// from the sizes.
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        Ok(Box::new(Landweber::new(self.steps, self.step_size, reference_curvature(ctx.n, ctx.p))))
    }
    fn example() -> Self {
        LandweberParams { steps: 20, step_size: 1.0 }
    }
}

collapse_core::register!(
    EstimatorPlugin,
    LandweberParams,
    "landweber",
    "Early-stopped gradient descent (Landweber): k steps of b ← b + (η/n)Xᵀ(y − Xb) from 0"
);

#[cfg(test)]
#[allow(clippy::unwrap_used)]
mod tests {
    use super::*;
    use collapse_core::SquaredError;
    use collapse_core::faer::{ColRef, MatRef, Par};
    use collapse_core::rng::{Purpose, Streams, normal_vec};
    use collapse_core::serde_json::json;
    use collapse_core::spectral::linalg::truncated_svd;

    fn ctx(n: usize, p: usize) -> BuildContext {
        BuildContext { n, p }
    }

    fn fit(
        est: &dyn Estimator,
        x: MatRef<'_, f64>,
        y: ColRef<'_, f64>,
        weights: Option<ColRef<'_, f64>>,
    ) -> Result<Col<f64>, CoreError> {
        est.fit(&FitInput { x, y, weights, likelihood: &SquaredError, start: None, par: Par::Seq })
    }

    fn random(n: usize, p: usize, seed: u64) -> (Mat<f64>, Col<f64>) {
        let mut rng = Streams::new(seed, 0, 0).rng(Purpose::Design, 0);
        let z = normal_vec(&mut rng, 1.0, n * p + n);
        (Mat::from_fn(n, p, |i, j| z[i * p + j]), Col::from_fn(n, |i| z[n * p + i]))
    }

    /// β̂ = V diag(gains(d)) Uᵀy on the truncated SVD of (√c ⊙ X, √c ⊙ y): what the
    /// protocols' spectral path computes.
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
        let svd = truncated_svd(xw.as_ref(), Par::Seq).unwrap();
        let g = filter.gains(&svd.d, n).unwrap();
        let uty = t_matvec(svd.u.as_ref(), yw.as_ref(), Par::Seq);
        let coef = Col::from_fn(svd.d.len(), |i| g[i] * uty[i]);
        matvec(svd.v.as_ref(), coef.as_ref(), Par::Seq)
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
        assert_eq!(plugin.provided_by, ("custom-estimator", env!("CARGO_PKG_VERSION")));
        let built = (plugin.build)(&json!({}), &ctx(40, 80)).unwrap();
        assert_eq!(built.params["steps"], json!(50));
        assert_eq!(built.params["step_size"], json!(1.0));
        assert!(built.object.spectral().is_some());
        assert!(built.object.ridge_penalty().is_none());
        assert!(LandweberParams::example().checked_build(&ctx(40, 80)).is_ok());
        assert!(LandweberParams::default().checked_build(&ctx(40, 80)).is_ok());
    }

    /// The ranges are declared once, in the schema, and enforced by the registry.
    #[test]
    fn invalid_parameters_name_their_field() {
        let err = |p: LandweberParams| p.checked_build(&ctx(10, 20)).unwrap_err();
        for steps in [0, 1_000_001] {
            let e = err(LandweberParams { steps, step_size: 1.0 });
            assert_eq!(e.field(), Some("steps"));
            assert!(e.to_string().contains("in [1, 1000000]"), "{e}");
        }
        for bad in [0.0, -0.5, 2.0, 2.5] {
            let e = err(LandweberParams { steps: 10, step_size: bad });
            assert_eq!(e.field(), Some("step_size"), "{bad}");
            assert!(e.to_string().contains("(0, 2)"), "{e}");
        }
        // Through the registry (as a scenario file is read): type errors and unknown
        // keys name the field too.
        let plugin = collapse_core::registry::lookup::<dyn Estimator>("landweber").unwrap();
        let field = |v| match (plugin.build)(&v, &ctx(10, 20)) {
            Err(CoreError::Config { field, .. }) => field,
            other => panic!("expected a config error, got {other:?}"),
        };
        assert_eq!(field(json!({"steps": 0})), "steps");
        assert_eq!(field(json!({"steps": -3})), "steps");
        assert_eq!(field(json!({"steps": 2.5})), "steps");
        assert_eq!(field(json!({"step_size": 3.0})), "step_size");
        assert_eq!(field(json!({"step_size": 0.0})), "step_size");
        assert_eq!(field(json!({"step_size": "big"})), "step_size");
        assert_eq!(field(json!({"lambda": 1.0})), "lambda");
    }

    /// By hand: X = diag(1, 2), y = (1, 2), n = p = 2, so s_ref = (1 + 1)² = 4 and
    /// step_size = 1 gives η = 1/4, η/n = 1/8. The coordinates decouple:
    /// b₁ ← b₁ + (1 − b₁)/8: 1/8, then 1/8 + 7/64 = 15/64;
    /// b₂ ← b₂ + 2(2 − 2b₂)/8 = b₂ + (1 − b₂)/2: 1/2, then 3/4.
    /// With row weights (4, 1) the rows scale by (2, 1): X = 2I, y = (2, 2), and both
    /// coordinates follow b ← b + (1 − b)/2: (3/4, 3/4).
    #[test]
    fn tiny_case_by_hand() {
        let est = LandweberParams { steps: 2, step_size: 1.0 }.checked_build(&ctx(2, 2)).unwrap();
        let x = Mat::from_fn(2, 2, |i, j| [[1.0, 0.0], [0.0, 2.0]][i][j]);
        let y = Col::from_fn(2, |i| [1.0, 2.0][i]);
        let b = fit(est.as_ref(), x.as_ref(), y.as_ref(), None).unwrap();
        assert!((b[0] - 15.0 / 64.0).abs() < 1e-15, "{b:?}");
        assert!((b[1] - 0.75).abs() < 1e-15, "{b:?}");
        // The filter gives the same numbers: g(2)·2 = 3/4, g(1) = 1 − (7/8)² = 15/64.
        let g = est.spectral().unwrap().gains(&[2.0, 1.0], 2).unwrap();
        assert!((2.0 * g[0] - 0.75).abs() < 1e-15, "{g:?}");
        assert!((g[1] - 15.0 / 64.0).abs() < 1e-15, "{g:?}");
        let w = Col::from_fn(2, |i| [4.0, 1.0][i]);
        let bw = fit(est.as_ref(), x.as_ref(), y.as_ref(), Some(w.as_ref())).unwrap();
        assert!((bw[0] - 0.75).abs() < 1e-15 && (bw[1] - 0.75).abs() < 1e-15, "{bw:?}");
    }

    /// The invariant the protocols rely on: `fit` (k explicit gradient steps) equals the
    /// spectral form V diag(gains(d)) Uᵀy, for p > n, n > p and n = p, with and without
    /// row weights, across step counts and across the whole stable range of the top
    /// direction's curvature c = η d_max²/n (including the oscillating regime 1 < c ≤ 2).
    #[test]
    fn fit_agrees_with_spectral_gains() {
        for (n, p, seed) in [(30, 50, 1), (50, 20, 2), (25, 25, 3)] {
            let (x, y) = random(n, p, seed);
            let weights = Col::from_fn(n, |i| 0.25 + (i % 4) as f64);
            for w in [None, Some(weights.as_ref())] {
                let xw = Mat::from_fn(n, p, |i, j| w.map_or(1.0, |c| c[i].sqrt()) * x[(i, j)]);
                let d_max = thin_svd(xw.as_ref(), Par::Seq).unwrap().s[0];
                let s_max = d_max * d_max / n as f64;
                for c in [0.05, 0.7, 1.0, 1.6, 1.99] {
                    for steps in [1, 2, 7, 50, 400] {
                        // Measuring the step in units of 1/s_max makes η d_max²/n = c.
                        let lw = Landweber::new(steps, c, s_max);
                        let b = fit(&lw, x.as_ref(), y.as_ref(), w).unwrap();
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
        let lw = Landweber::new(20_000, 1.0, reference_curvature(n, p));
        let b = fit(&lw, x.as_ref(), y.as_ref(), None).unwrap();
        let svd = truncated_svd(x.as_ref(), Par::Seq).unwrap();
        let uty = t_matvec(svd.u.as_ref(), y.as_ref(), Par::Seq);
        let pinv = matvec(svd.v.as_ref(), Col::from_fn(n, |i| uty[i] / svd.d[i]).as_ref(), Par::Seq);
        assert!(max_rel_diff(&b, &pinv) < 1e-8, "{:e}", max_rel_diff(&b, &pinv));
        let resid = &matvec(x.as_ref(), b.as_ref(), Par::Seq) - &y;
        assert!(resid.norm_l2() < 1e-8 * y.norm_l2());
    }

    #[test]
    fn gain_limits() {
        let lw = Landweber::new(10, 1.0, 4.0); // η = 1/4
        let n = 8;
        let g = |d: f64| lw.gains(&[d], n).unwrap()[0];
        // Small d: g ≈ kη d/n (no cancellation).
        let d = 1e-9;
        assert!((g(d) / (10.0 * 0.25 * d / n as f64) - 1.0).abs() < 1e-12);
        assert!(g(0.0).abs() < f64::MIN_POSITIVE);
        // η d²/n = 1: one step interpolates the direction, g = 1/d.
        let d = (n as f64 / 0.25).sqrt();
        assert!((g(d) * d - 1.0).abs() < 1e-15);
        // η d²/n = 2 is the (stable) edge; above it the gains are an error.
        let d = (2.0 * n as f64 / 0.25).sqrt();
        assert!(g(d).is_finite());
        assert!(lw.gains(&[d * 1.01, 1.0], n).is_err());
    }

    /// A step that is unstable for the sampled design is a numerical error naming
    /// `estimator.step_size` and the curvature, from `fit` and from the gains alike;
    /// the gains fail on the whole spectrum even though the small direction is stable.
    #[test]
    fn unstable_step_is_reported() {
        let est = LandweberParams { steps: 5, step_size: 1.9 }.checked_build(&ctx(2, 2)).unwrap(); // η = 0.475
        let x = Mat::from_fn(2, 2, |i, j| if i == j { [1.0, 4.0][i] } else { 0.0 }); // η·16/2 = 3.8
        let y = Col::from_fn(2, |_| 1.0);
        let from_fit = fit(est.as_ref(), x.as_ref(), y.as_ref(), None).unwrap_err();
        let from_gains = est.spectral().unwrap().gains(&[4.0, 1.0], 2).unwrap_err();
        for e in [&from_fit, &from_gains] {
            assert!(matches!(e, CoreError::Numerical { .. }), "{e:?}");
            assert!(!e.is_user_error());
            let text = e.to_string();
            assert!(text.contains("estimator.step_size = 1.9"), "{text}");
            assert!(text.contains("η·d_max²/n = 3.8000"), "{text}");
        }
        assert_eq!(from_fit.to_string(), from_gains.to_string());
        assert!(est.spectral().unwrap().gains(&[1.0], 2).is_ok());
    }
}
