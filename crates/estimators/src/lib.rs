//! Estimator plugins: `ridge`, `min-norm` and `ols`.
//!
//! All three are spectral filters of the design's thin SVD X = U diag(d) Vᵀ:
//! β̂ = V diag(g(d_i)) Uᵀy. Settings with a fixed design use that form to factor X once
//! per replicate; [`collapse_core::Estimator::fit`] factorizes on every call and is
//! the general path (weighted rows, changing designs). No explicit inverse or
//! pseudo-inverse is ever formed; singular values below `d_max · max(n, p) · eps`
//! count as zero, as in `numpy.linalg.lstsq`.

use collapse_core::faer::{Col, ColRef, Mat, MatRef};
use collapse_core::{
    BuildContext, CoreError, Estimator, EstimatorPlugin, ParamError, Params, SpectralFilter, check_range, truncated_svd,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Fit β̂ = V diag(gain(d_i)) Uᵀy on the thin SVD of the (row-weighted) design.
///
/// With row weights c_i ≥ 0 the loss is Σ c_i (y_i − x_iᵀb)², which equals the
/// unweighted loss on rows scaled by √c_i.
pub fn spectral_fit(
    x: MatRef<'_, f64>,
    y: ColRef<'_, f64>,
    weights: Option<ColRef<'_, f64>>,
    filter: &dyn SpectralFilter,
) -> Result<Col<f64>, CoreError> {
    let (n, p) = (x.nrows(), x.ncols());
    if y.nrows() != n {
        return Err(CoreError::numerical("fit", format!("design has {n} rows but {} labels", y.nrows())));
    }
    let (xw, yw): (Mat<f64>, Col<f64>) = match weights {
        None => (x.to_owned(), y.to_owned()),
        Some(c) => {
            if c.nrows() != n || c.iter().any(|&ci| !(ci >= 0.0 && ci.is_finite())) {
                return Err(CoreError::numerical("fit", "row weights must be finite, >= 0 and one per row"));
            }
            let s: Vec<f64> = c.iter().map(|ci| ci.sqrt()).collect();
            (Mat::from_fn(n, p, |i, j| s[i] * x[(i, j)]), Col::from_fn(n, |i| s[i] * y[i]))
        }
    };
    let svd = truncated_svd(xw.as_ref())?;
    let uty = svd.u.transpose() * &yw;
    let coef = Col::<f64>::from_fn(svd.d.len(), |i| filter.gain(svd.d[i], n) * uty[i]);
    let beta = &svd.v * &coef;
    if beta.iter().any(|b| !b.is_finite()) {
        return Err(CoreError::numerical("fit", "non-finite coefficients"));
    }
    Ok(beta)
}

/// Ridge regression: β̂ = argmin_b ‖y − Xb‖² + nλ‖b‖² = (XᵀX + nλI)⁻¹Xᵀy, computed
/// as V diag(d_i / (d_i² + nλ)) Uᵀy. At λ = 0 the gain is 1/d_i: the
/// minimum-ℓ2-norm interpolator X⁺y (ordinary least squares when n ≥ p).
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
#[serde(deny_unknown_fields)]
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
    /// Ridge with penalty `lambda` (validated ≥ 0).
    pub fn new(lambda: f64) -> Result<Self, ParamError> {
        check_range("lambda", lambda, 0.0, f64::INFINITY)?;
        Ok(Ridge { lambda })
    }
}

impl SpectralFilter for Ridge {
    fn gain(&self, d: f64, n: usize) -> f64 {
        d / (d * d + n as f64 * self.lambda)
    }
}

impl Estimator for Ridge {
    fn fit(
        &self,
        x: MatRef<'_, f64>,
        y: ColRef<'_, f64>,
        weights: Option<ColRef<'_, f64>>,
    ) -> Result<Col<f64>, CoreError> {
        spectral_fit(x, y, weights, self)
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
        Ok(Box::new(Ridge::new(self.lambda)?))
    }
    fn example() -> Self {
        RidgeParams { lambda: 0.1 }
    }
}

/// The minimum-ℓ2-norm interpolator β̂ = X⁺y = lim_{λ→0⁺} ridge: ridge at λ = 0, as
/// its own name for readable scenarios. For p > n it interpolates (Xβ̂ = y); for
/// n ≥ p it is ordinary least squares.
///
/// No parameters.
///
/// Reference: Hastie et al. (2022); Garg, Bhattacharya, Sur (2025), arXiv 2509.22341.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct MinNormParams {}

impl Params for MinNormParams {
    type Target = dyn Estimator;
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        Ok(Box::new(Ridge { lambda: 0.0 }))
    }
    fn example() -> Self {
        MinNormParams {}
    }
}

/// Ordinary least squares β̂ = argmin ‖y − Xb‖², computed through the thin SVD. It
/// requires n ≥ p (a unique least-squares solution for a full-rank design); for
/// p > n use `min-norm` or `ridge`.
///
/// No parameters. Errors: `design.n < design.p`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
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
        Ok(Box::new(Ridge { lambda: 0.0 }))
    }
    fn example() -> Self {
        OlsParams {}
    }
}

collapse_core::inventory::submit! {
    EstimatorPlugin::new::<RidgeParams>("ridge", "Ridge regression (XᵀX + nλI)⁻¹Xᵀy; λ = 0 is the min-norm interpolator")
}
collapse_core::inventory::submit! {
    EstimatorPlugin::new::<MinNormParams>("min-norm", "Minimum-ℓ2-norm interpolator X⁺y (ridge at λ = 0)")
}
collapse_core::inventory::submit! {
    EstimatorPlugin::new::<OlsParams>("ols", "Ordinary least squares (requires n ≥ p)")
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use collapse_core::rng::{Purpose, Streams, normal_vec};

    fn ctx(n: usize, p: usize) -> BuildContext {
        BuildContext { n, p, noise_sd: 1.0 }
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
        check::<RidgeParams>();
    }

    #[test]
    fn negative_or_nan_lambda_is_rejected() {
        for bad in [-0.1, f64::NAN, f64::INFINITY] {
            let e = RidgeParams { lambda: bad }.build(&ctx(5, 3)).unwrap_err();
            assert_eq!(e.field, "lambda");
            assert!(e.message.contains(">= 0"), "{}", e.message);
        }
    }

    #[test]
    fn ols_requires_n_at_least_p() {
        let e = OlsParams {}.build(&ctx(3, 5)).unwrap_err();
        assert!(e.message.contains("n >= design.p") || e.message.contains("design.n >= design.p"), "{}", e.message);
        assert!(OlsParams {}.build(&ctx(5, 5)).is_ok());
    }

    /// Hand-computed: X = [[1,0],[0,2],[0,0]], y = (1,2,3), n = 3, λ = 1/3:
    /// (XᵀX + I)β = Xᵀy ⇒ β = (1/2, 4/5).
    #[test]
    fn tiny_ridge_by_hand() {
        let x = Mat::from_fn(3, 2, |i, j| [[1.0, 0.0], [0.0, 2.0], [0.0, 0.0]][i][j]);
        let y = Col::from_fn(3, |i| [1.0, 2.0, 3.0][i]);
        let b = Ridge::new(1.0 / 3.0).unwrap().fit(x.as_ref(), y.as_ref(), None).unwrap();
        assert_relative_eq!(b[0], 0.5, epsilon = 1e-14);
        assert_relative_eq!(b[1], 0.8, epsilon = 1e-14);
    }

    #[test]
    fn ridge_satisfies_its_normal_equations() {
        let (n, p, lambda) = (30, 50, 0.3);
        let (x, y) = random(n, p, 1);
        let b = Ridge::new(lambda).unwrap().fit(x.as_ref(), y.as_ref(), None).unwrap();
        // (XᵀX + nλ I) b − Xᵀy = Xᵀ(Xb − y) + nλ b
        let resid = x.transpose() * (&x * &b - &y) + &b * (n as f64 * lambda);
        let scale = (x.transpose() * &y).norm_l2();
        assert!(resid.norm_l2() <= 100.0 * (n.max(p) as f64) * f64::EPSILON * scale, "{}", resid.norm_l2());
    }

    #[test]
    fn min_norm_interpolates_and_is_orthogonal_to_the_null_space() {
        let (n, p) = (20, 45);
        let (x, y) = random(n, p, 2);
        let est = MinNormParams {}.build(&ctx(n, p)).unwrap();
        let b = est.fit(x.as_ref(), y.as_ref(), None).unwrap();
        let fit = &x * &b - &y;
        assert!(fit.norm_l2() < 1e-10 * y.norm_l2());
        // Minimum norm: b lies in the row space, so b = Xᵀa for some a; equivalently
        // b is unchanged by projecting onto the row space.
        let svd = x.thin_svd().unwrap();
        let proj = svd.V() * (svd.V().transpose() * &b);
        assert!((&proj - &b).norm_l2() < 1e-10 * b.norm_l2());
    }

    #[test]
    fn weights_scale_rows() {
        let (x, y) = random(12, 4, 3);
        let w = Col::from_fn(12, |i| if i % 2 == 0 { 4.0 } else { 1.0 });
        let r = Ridge::new(0.05).unwrap();
        let b1 = r.fit(x.as_ref(), y.as_ref(), Some(w.as_ref())).unwrap();
        let xs = Mat::from_fn(12, 4, |i, j| w[i].sqrt() * x[(i, j)]);
        let ys = Col::from_fn(12, |i| w[i].sqrt() * y[i]);
        let b2 = r.fit(xs.as_ref(), ys.as_ref(), None).unwrap();
        assert!((&b1 - &b2).norm_l2() < 1e-12);
    }

    #[test]
    fn examples_build() {
        assert!(RidgeParams::example().build(&ctx(10, 20)).is_ok());
        assert!(MinNormParams::example().build(&ctx(10, 20)).is_ok());
        assert!(OlsParams::example().build(&ctx(20, 10)).is_ok());
    }
}
