use collapse_core::faer::{Col, Mat};
use collapse_core::schemars::JsonSchema;
use collapse_core::serde::{Deserialize, Serialize};
use collapse_core::spectral::linalg::{matvec, t_matvec, truncated_svd};
use collapse_core::{BuildContext, CoreError, Estimator, FitInput, ParamError, Params, SpectralFilter, Tuning};

/// Fit β̂ = V diag(g) Uᵀy on the thin SVD of the (row-weighted) design, with the gains
/// of `filter` (docs/estimators.md §1, §3).
///
/// With row weights c_i ≥ 0 the loss is Σ c_i (y_i − x_iᵀb)², which equals the
/// unweighted loss on rows scaled by √c_i.
pub fn spectral_fit(input: &FitInput<'_>, filter: &dyn SpectralFilter) -> Result<Col<f64>, CoreError> {
    let (x, y) = (input.x, input.y);
    let (n, p) = (x.nrows(), x.ncols());
    if y.nrows() != n {
        return Err(CoreError::numerical("fit", format!("design has {n} rows but {} labels", y.nrows())));
    }
    let (xw, yw): (Mat<f64>, Col<f64>) = match input.weights {
        None => (x.to_owned(), y.to_owned()),
        Some(c) => {
            if c.nrows() != n || c.iter().any(|&ci| !(ci >= 0.0 && ci.is_finite())) {
                return Err(CoreError::numerical("fit", "row weights must be finite, >= 0 and one per row"));
            }
            let s: Vec<f64> = c.iter().map(|ci| ci.sqrt()).collect();
            (Mat::from_fn(n, p, |i, j| s[i] * x[(i, j)]), Col::from_fn(n, |i| s[i] * y[i]))
        }
    };
    let svd = truncated_svd(xw.as_ref(), input.par)?;
    let gains = filter.gains(&svd.d, n)?;
    let uty = t_matvec(svd.u.as_ref(), yw.as_ref(), input.par);
    let coef = Col::<f64>::from_fn(svd.d.len(), |i| gains[i] * uty[i]);
    let beta = matvec(svd.v.as_ref(), coef.as_ref(), input.par);
    if beta.iter().any(|b| !b.is_finite()) {
        return Err(CoreError::numerical("fit", "non-finite coefficients"));
    }
    Ok(beta)
}

/// Ridge regression: β̂ = argmin_b ‖y − Xb‖² + nλ‖b‖² = (XᵀX + nλI)⁻¹Xᵀy, computed
/// as V diag(d_i / (d_i² + nλ)) Uᵀy (docs/estimators.md §1). At λ = 0 the gain is
/// 1/d_i: the minimum-ℓ2-norm interpolator X⁺y (ordinary least squares when n ≥ p).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `lambda` | (required) | λ ≥ 0, finite | penalty, in the normalisation (XᵀX + nλI) |
///
/// Errors: `lambda` negative or not finite.
///
/// Reference: Hastie, Montanari, Rosset, Tibshirani (2022), *Surprises in
/// high-dimensional ridgeless least squares interpolation*, Ann. Statist. 50(2).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(crate = "collapse_core::serde", deny_unknown_fields)]
#[schemars(crate = "collapse_core::schemars")]
pub struct RidgeParams {
    /// Ridge penalty λ ≥ 0 in (XᵀX + nλI)β = Xᵀy; 0 is the min-norm interpolator.
    #[schemars(range(min = 0.0))]
    pub lambda: f64,
}

/// The ridge estimator (also min-norm at λ = 0 and OLS).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Ridge {
    lambda: f64,
}

impl Ridge {
    /// Ridge with penalty `lambda` (≥ 0, finite: checked by the caller's schema).
    pub fn new(lambda: f64) -> Self {
        Ridge { lambda }
    }
}

impl SpectralFilter for Ridge {
    fn gains(&self, d: &[f64], n: usize) -> Result<Vec<f64>, CoreError> {
        let nl = n as f64 * self.lambda;
        Ok(d.iter().map(|&d| d / (d * d + nl)).collect())
    }
}

impl Estimator for Ridge {
    fn fit(&self, input: &FitInput<'_>) -> Result<Col<f64>, CoreError> {
        spectral_fit(input, self)
    }
    fn spectral(&self) -> Option<&dyn SpectralFilter> {
        Some(self)
    }
    fn ridge_penalty(&self) -> Option<f64> {
        Some(self.lambda)
    }
}

impl Params for RidgeParams {
    type Target = dyn Estimator;
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        Ok(Box::new(Ridge::new(self.lambda)))
    }
    fn example() -> Self {
        RidgeParams { lambda: 0.1 }
    }
}

/// The minimum-ℓ2-norm interpolator β̂ = X⁺y = lim_{λ→0⁺} ridge: ridge at λ = 0, under
/// its own name for readable scenarios. For p > n it interpolates (Xβ̂ = y); for n ≥ p
/// it is ordinary least squares.
///
/// No parameters.
///
/// Reference: Hastie et al. (2022); Garg, Bhattacharya, Sur (2025), arXiv 2509.22341.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(crate = "collapse_core::serde", deny_unknown_fields)]
#[schemars(crate = "collapse_core::schemars")]
pub struct MinNormParams {}

impl Params for MinNormParams {
    type Target = dyn Estimator;
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        Ok(Box::new(Ridge::new(0.0)))
    }
    fn example() -> Self {
        MinNormParams {}
    }
}

/// Ordinary least squares β̂ = argmin ‖y − Xb‖², computed through the thin SVD. It
/// requires n ≥ p (a unique least-squares solution for a full-rank design); for p > n
/// use `min-norm` or `ridge`.
///
/// No parameters. Errors: `design.n < design.p`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(crate = "collapse_core::serde", deny_unknown_fields)]
#[schemars(crate = "collapse_core::schemars")]
pub struct OlsParams {}

impl Params for OlsParams {
    type Target = dyn Estimator;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        if ctx.n < ctx.p {
            return Err(ParamError::new(
                "kind",
                format!(
                    "`ols` needs design.n >= design.p, got n = {} < p = {}; use `min-norm` or `ridge` when p > n",
                    ctx.n, ctx.p
                ),
            ));
        }
        Ok(Box::new(Ridge::new(0.0)))
    }
    fn example() -> Self {
        OlsParams {}
    }
}

/// Principal-component regression on the design's own top-k singular directions:
/// β̂ = Σ_{i ≤ k} v_i (u_iᵀy)/d_i, i.e. gains 1/d_i on the k largest singular values and
/// 0 on the rest (docs/estimators.md §2). A spectral filter that needs the whole
/// spectrum, so it uses the fixed-design fast path and has an exact risk. With k ≥ the
/// design's rank it equals `min-norm` (draw for draw).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `k` | (required) | integer, 1 ≤ k ≤ min(n, p) | number of principal components kept |
///
/// Errors: `k` = 0 or larger than min(design.n, design.p).
///
/// Reference: Jolliffe (1982), *A note on the use of principal components in
/// regression*, JRSS C 31(3); Xu & Hsu (2019), *On the number of variables to use in
/// principal component regression*, NeurIPS.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(crate = "collapse_core::serde", deny_unknown_fields)]
#[schemars(crate = "collapse_core::schemars")]
pub struct PcrParams {
    /// Principal components kept (1 ≤ k ≤ min(n, p)).
    #[schemars(range(min = 1))]
    pub k: usize,
}

/// See [`PcrParams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pcr {
    k: usize,
}

impl SpectralFilter for Pcr {
    fn gains(&self, d: &[f64], _n: usize) -> Result<Vec<f64>, CoreError> {
        // d is descending: the first k are the leading components.
        Ok(d.iter().enumerate().map(|(i, &d)| if i < self.k { 1.0 / d } else { 0.0 }).collect())
    }
}

impl Estimator for Pcr {
    fn fit(&self, input: &FitInput<'_>) -> Result<Col<f64>, CoreError> {
        spectral_fit(input, self)
    }
    fn spectral(&self) -> Option<&dyn SpectralFilter> {
        Some(self)
    }
}

impl Params for PcrParams {
    type Target = dyn Estimator;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        let max = ctx.n.min(ctx.p);
        if self.k > max {
            return Err(ParamError::new(
                "k",
                format!("must be at most min(design.n, design.p) = {max}, got {}", self.k),
            ));
        }
        Ok(Box::new(Pcr { k: self.k }))
    }
    fn example() -> Self {
        PcrParams { k: 5 }
    }
}

/// Ridge with a tuned penalty: the protocol picks λ per cell, and per iteration, as the
/// argmin over λ ≥ 0 of its theory's predicted error for that cell (sizes, spectrum,
/// signal, noise, iteration), as the `optimal` schedule does for the weight w
/// (docs/chains.md §6). The estimator itself has no penalty: only a protocol that tunes
/// (`generational-chain`) accepts it, and reports the λ it used as the metric `lambda`.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `adaptive` | true | bool | re-tune at every iteration (true), or tune at t = 0 and keep that λ (false) |
///
/// Errors: a protocol that does not tune (`fresh-labels`, `fixed-labels`) rejects it when
/// the scenario is resolved; a cell whose protocol has no theory for it.
///
/// Reference: Dohmatob, Feng, Kempe (2024), arXiv 2402.07712 (adaptive regularization).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(crate = "collapse_core::serde", deny_unknown_fields)]
#[schemars(crate = "collapse_core::schemars")]
pub struct TunedRidgeParams {
    /// Re-tune λ at every iteration (true) or tune once at t = 0 and keep it (false).
    #[serde(default = "tuned_default")]
    pub adaptive: bool,
}

fn tuned_default() -> bool {
    true
}

/// See [`TunedRidgeParams`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TunedRidge {
    /// Re-tune at every iteration.
    pub adaptive: bool,
}

impl Estimator for TunedRidge {
    fn fit(&self, _: &FitInput<'_>) -> Result<Col<f64>, CoreError> {
        Err(CoreError::numerical("tuned-ridge", "has no penalty of its own; the protocol fits with the λ it tunes"))
    }
    fn tuned_penalty(&self) -> Option<Tuning> {
        Some(if self.adaptive { Tuning::EveryIteration } else { Tuning::FirstIteration })
    }
}

impl Params for TunedRidgeParams {
    type Target = dyn Estimator;
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        Ok(Box::new(TunedRidge { adaptive: self.adaptive }))
    }
    fn example() -> Self {
        TunedRidgeParams { adaptive: true }
    }
}

collapse_core::register!(
    EstimatorPlugin,
    TunedRidgeParams,
    "tuned-ridge",
    "Ridge whose λ the protocol tunes per cell and iteration (argmin of its theory)"
);
collapse_core::register!(
    EstimatorPlugin,
    RidgeParams,
    "ridge",
    "Ridge regression (XᵀX + nλI)⁻¹Xᵀy; λ = 0 is the min-norm interpolator"
);
collapse_core::register!(
    EstimatorPlugin,
    MinNormParams,
    "min-norm",
    "Minimum-ℓ2-norm interpolator X⁺y (ridge at λ = 0)"
);
collapse_core::register!(EstimatorPlugin, OlsParams, "ols", "Ordinary least squares (requires n ≥ p)");
collapse_core::register!(
    EstimatorPlugin,
    PcrParams,
    "pcr",
    "Principal-component regression on the top k singular directions"
);

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use collapse_core::SquaredError;
    use collapse_core::faer::ColRef;
    use collapse_core::faer::{MatRef, Par};
    use collapse_core::rng::{Purpose, Streams, normal_vec};

    fn ctx(n: usize, p: usize) -> BuildContext {
        BuildContext { n, p }
    }

    fn fit(est: &dyn Estimator, x: MatRef<'_, f64>, y: ColRef<'_, f64>, w: Option<ColRef<'_, f64>>) -> Col<f64> {
        est.fit(&FitInput { x, y, weights: w, likelihood: &SquaredError, start: None, par: Par::Seq }).unwrap()
    }

    fn random(n: usize, p: usize, seed: u64) -> (Mat<f64>, Col<f64>) {
        let mut rng = Streams::new(seed, 0, 0).rng(Purpose::Design, 0);
        let z = normal_vec(&mut rng, 1.0, n * p + n);
        (Mat::from_fn(n, p, |i, j| z[i * p + j]), Col::from_fn(n, |i| z[n * p + i]))
    }

    #[test]
    fn plugins_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Ridge>();
        check::<Pcr>();
        check::<RidgeParams>();
    }

    #[test]
    fn ols_requires_n_at_least_p() {
        let e = OlsParams {}.build(&ctx(3, 5)).unwrap_err();
        assert!(e.message.contains("design.n >= design.p"), "{}", e.message);
        assert!(OlsParams {}.build(&ctx(5, 5)).is_ok());
    }

    #[test]
    fn pcr_k_is_bounded_by_the_design() {
        let e = PcrParams { k: 6 }.build(&ctx(5, 8)).unwrap_err();
        assert_eq!(e.field, "k");
        assert!(e.message.contains("min(design.n, design.p) = 5"), "{}", e.message);
        assert!(PcrParams { k: 5 }.build(&ctx(5, 8)).is_ok());
    }

    /// Hand-computed: X = [[1,0],[0,2],[0,0]], y = (1,2,3), n = 3, λ = 1/3:
    /// (XᵀX + I)β = Xᵀy ⇒ β = (1/2, 4/5).
    #[test]
    fn tiny_ridge_by_hand() {
        let x = Mat::from_fn(3, 2, |i, j| [[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]][i][j]);
        let y = Col::from_fn(3, |i| [1.0, 2.0, 3.0][i]);
        let b = fit(&Ridge::new(1.0 / 3.0), x.as_ref(), y.as_ref(), None);
        assert_relative_eq!(b[0], 0.5, epsilon = 1e-14);
        assert_relative_eq!(b[1], 0.8, epsilon = 1e-14);
    }

    /// Hand-computed PCR: X = diag(3, 1) (plus a zero row), y = (3, 5, 7): with k = 1 only
    /// the direction of singular value 3 is kept, β = (y_1/3, 0) = (1, 0).
    #[test]
    fn tiny_pcr_by_hand() {
        let x = Mat::from_fn(3, 2, |i, j| [[3.0, 0.0], [0.0, 1.0], [0.0, 0.0]][i][j]);
        let y = Col::from_fn(3, |i| [3.0, 5.0, 7.0][i]);
        let b = fit(&Pcr { k: 1 }, x.as_ref(), y.as_ref(), None);
        assert_relative_eq!(b[0], 1.0, epsilon = 1e-14);
        assert_relative_eq!(b[1], 0.0, epsilon = 1e-14);
        let b = fit(&Pcr { k: 2 }, x.as_ref(), y.as_ref(), None);
        assert_relative_eq!(b[1], 5.0, epsilon = 1e-14);
    }

    #[test]
    fn pcr_at_full_rank_is_min_norm() {
        let (x, y) = random(10, 25, 4);
        let a = fit(&Pcr { k: 10 }, x.as_ref(), y.as_ref(), None);
        let b = fit(&Ridge::new(0.0), x.as_ref(), y.as_ref(), None);
        assert!((&a - &b).norm_l2() <= 1e-13 * b.norm_l2());
    }

    #[test]
    fn ridge_satisfies_its_normal_equations() {
        let (n, p, lambda) = (30, 50, 0.3);
        let (x, y) = random(n, p, 1);
        let b = fit(&Ridge::new(lambda), x.as_ref(), y.as_ref(), None);
        // (XᵀX + nλ I) b − Xᵀy = Xᵀ(Xb − y) + nλ b
        let resid = x.transpose() * (&x * &b - &y) + &b * (n as f64 * lambda);
        let scale = (x.transpose() * &y).norm_l2();
        assert!(resid.norm_l2() <= 100.0 * (n.max(p) as f64) * f64::EPSILON * scale, "{}", resid.norm_l2());
    }

    #[test]
    fn min_norm_interpolates_and_lies_in_the_row_space() {
        let (n, p) = (20, 45);
        let (x, y) = random(n, p, 2);
        let b = fit(MinNormParams {}.build(&ctx(n, p)).unwrap().as_ref(), x.as_ref(), y.as_ref(), None);
        let fitted = &x * &b - &y;
        assert!(fitted.norm_l2() < 1e-10 * y.norm_l2());
        let svd = truncated_svd(x.as_ref(), Par::Seq).unwrap();
        let proj = &svd.v * (svd.v.transpose() * &b);
        assert!((&proj - &b).norm_l2() < 1e-10 * b.norm_l2());
    }

    #[test]
    fn weights_scale_rows() {
        let (x, y) = random(12, 4, 3);
        let w = Col::from_fn(12, |i| if i % 2 == 0 { 4.0 } else { 1.0 });
        let r = Ridge::new(0.05);
        let b1 = fit(&r, x.as_ref(), y.as_ref(), Some(w.as_ref()));
        let xs = Mat::from_fn(12, 4, |i, j| w[i].sqrt() * x[(i, j)]);
        let ys = Col::from_fn(12, |i| w[i].sqrt() * y[i]);
        let b2 = fit(&r, xs.as_ref(), ys.as_ref(), None);
        assert!((&b1 - &b2).norm_l2() < 1e-12);
    }

    #[test]
    fn examples_build() {
        assert!(RidgeParams::example().build(&ctx(10, 20)).is_ok());
        assert!(MinNormParams::example().build(&ctx(10, 20)).is_ok());
        assert!(OlsParams::example().build(&ctx(20, 10)).is_ok());
        assert!(PcrParams::example().build(&ctx(20, 10)).is_ok());
    }
}
