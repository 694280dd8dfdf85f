use collapse_core::faer::{Col, Mat};
use collapse_core::rng::{Purpose, Streams, fill_normal};
use collapse_core::{
    BuildContext, CellView, Chain, CoreError, Estimator, Outcome, ParamError, Params, ReplicateData, RowSpace,
    RowSpaceMode, Setting, SettingPlugin, SpectralFilter, check_range,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a fixed-design setting computes each refit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// `spectral` when the estimator is a spectral filter, else `refit`.
    Auto,
    /// Factor X once per replicate and iterate in the r = rank(X) row-space
    /// coordinates: O(r) per iteration for Σ = I, O(p·r) otherwise.
    Spectral,
    /// Form the labels in R^n and call the estimator's `fit` every iteration (any
    /// estimator; what most published code does).
    Refit,
}

/// Fresh-label mixing on a fixed design (Garg, Bhattacharya, Sur 2025; THEORY.md
/// §A.1). X is drawn once per replicate. t = 0: β̂_0 = fit(X, y_0) with
/// y_0 = Xβ + ε_0. t ≥ 1: y_t = Xβ + ε_t, ỹ_t = Xβ̂_{t−1} + ε̃_t,
/// z_t = w_t y_t + (1 − w_t) ỹ_t, β̂_t = fit(X, z_t); ε_t ~ N(0, σ²I),
/// ε̃_t ~ N(0, σ̃²I) independent.
///
/// The spectral path writes β̂_t = V b_t with the thin SVD X = U diag(d) Vᵀ and gain
/// g_i of the estimator: b_t = g ⊙ (d ⊙ (w θ + (1−w) b_{t−1}) + Uᵀη_t), θ = Vᵀβ,
/// η_t = w ε_t + (1 − w) ε̃_t. With `projected_noise = true` the vectors Uᵀε_t and Uᵀε̃_t
/// are drawn directly as r independent N(0, σ²) draws: U has orthonormal columns, so
/// this is exact in distribution (not draw-for-draw equal to projecting n draws).
///
/// Each outcome also carries the exact conditional risk E[‖β̂_t − β‖²_Σ | X, β] from
/// the per-direction AR(1) recursion (THEORY.md §E) when the estimator is spectral:
/// μ_t = (1−w) a μ_{t−1} + w a θ, ν_t = (1−w)² a² ν_{t−1} + g²(w²σ² + (1−w)²σ̃²), a = g d.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `path` | `auto` | `auto`, `spectral`, `refit` | how each refit is computed (all exact) |
/// | `projected_noise` | true | bool | spectral path: draw Uᵀε directly (r normals instead of n) |
/// | `synthetic_noise_sd` | σ (`design.noise_sd`) | σ̃ ≥ 0 | noise sd of synthetic labels |
/// | `fast_design` | true | bool | isotropic Σ, spectral path, projected noise: sample the row space (Laguerre) |
///
/// With `fast_design` (the default) and an isotropic covariance, the singular values of
/// X are drawn from the Laguerre bidiagonal model and θ = Vᵀβ from rotation invariance
/// (see `collapse_core::replicate`): O(min(n,p)²) per replicate instead of an
/// O(n·p·min(n,p)) SVD, exact in distribution, but not draw-for-draw equal to drawing X.
///
/// Errors: `path = "spectral"` with an estimator that has no spectral form.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FreshLabelsParams {
    /// How each refit is computed: `auto`, `spectral` or `refit`.
    #[serde(default = "auto")]
    pub path: Path,
    /// Spectral path: draw the projected noise Uᵀε directly (exact in distribution).
    #[serde(default = "yes")]
    pub projected_noise: bool,
    /// Noise sd σ̃ of synthetic labels; default: the same σ as real labels.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub synthetic_noise_sd: Option<f64>,
    /// Isotropic Gaussian designs on the spectral path with projected noise: sample the
    /// singular values (Laguerre model) and θ = Vᵀβ (rotation invariance) instead of
    /// drawing and factorizing X. Exact in distribution.
    #[serde(default = "yes")]
    pub fast_design: bool,
}

fn auto() -> Path {
    Path::Auto
}
fn yes() -> bool {
    true
}

/// See [`FreshLabelsParams`].
#[derive(Debug, Clone)]
pub struct FreshLabels {
    path: Path,
    projected_noise: bool,
    synthetic_noise_sd: Option<f64>,
    fast_design: bool,
}

impl FreshLabels {
    fn spectral_path(&self, cell: &CellView<'_>) -> bool {
        self.path != Path::Refit && cell.estimator.spectral().is_some()
    }
}

impl Params for FreshLabelsParams {
    type Target = dyn Setting;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Setting>, ParamError> {
        if let Some(s) = self.synthetic_noise_sd {
            check_range("synthetic_noise_sd", s, 0.0, f64::INFINITY)?;
        }
        Ok(Box::new(FreshLabels {
            path: self.path,
            projected_noise: self.projected_noise,
            synthetic_noise_sd: self.synthetic_noise_sd,
            fast_design: self.fast_design,
        }))
    }
    fn example() -> Self {
        FreshLabelsParams { path: Path::Auto, projected_noise: true, synthetic_noise_sd: None, fast_design: true }
    }
}

collapse_core::inventory::submit! {
    SettingPlugin::new::<FreshLabelsParams>("fresh-labels", "Fixed X; each iteration mixes fresh real labels with the previous model's synthetic labels")
}

impl Setting for FreshLabels {
    fn row_space_mode(&self, cell: &CellView<'_>) -> RowSpaceMode {
        if self.fast_design && self.projected_noise && self.spectral_path(cell) {
            RowSpaceMode::SampleIsotropic
        } else {
            RowSpaceMode::Factorize
        }
    }

    fn check(&self, cell: &CellView<'_>) -> Result<(), CoreError> {
        if self.path == Path::Spectral && cell.estimator.spectral().is_none() {
            return Err(CoreError::config(
                "path",
                "`spectral` needs an estimator with a spectral form (ridge, min-norm, ols); use \"refit\" or \"auto\"",
            ));
        }
        Ok(())
    }

    fn start<'a>(
        &'a self,
        cell: CellView<'a>,
        data: &'a ReplicateData,
        streams: Streams,
    ) -> Result<Box<dyn Chain + 'a>, CoreError> {
        let sigma = cell.noise_sd;
        let sigma_syn = self.synthetic_noise_sd.unwrap_or(sigma);
        let spectral = cell.estimator.spectral();
        let exact = match spectral {
            Some(f) => Some(ExactRisk::new(data.row_space()?, f, sigma, sigma_syn)),
            None => None,
        };
        let use_spectral = self.spectral_path(&cell);
        if let (true, Some(filter)) = (use_spectral, spectral) {
            let rs = data.row_space()?;
            let n = rs.n();
            let gains: Vec<f64> = rs.d.iter().map(|&d| filter.gain(d, n)).collect();
            let r = rs.rank();
            Ok(Box::new(SpectralChain {
                rs,
                gains,
                b: vec![0.0; r],
                xi: vec![0.0; if self.projected_noise { r } else { n }],
                xi_syn: vec![0.0; if self.projected_noise { r } else { n }],
                proj: vec![0.0; r],
                proj_syn: vec![0.0; r],
                projected: self.projected_noise,
                sigma,
                sigma_syn,
                streams,
                exact,
            }))
        } else {
            Ok(Box::new(RefitChain {
                data,
                estimator: cell.estimator,
                beta_hat: Col::zeros(cell.p),
                sigma,
                sigma_syn,
                streams,
                exact,
            }))
        }
    }
}

/// The exact conditional risk E[‖β̂_t − β‖²_Σ | X, β] by the per-direction AR(1)
/// recursion of THEORY.md §E.
#[derive(Debug, Clone)]
pub struct ExactRisk<'a> {
    rs: &'a RowSpace,
    a: Vec<f64>,
    g2: Vec<f64>,
    mu: Vec<f64>,
    nu: Vec<f64>,
    sigma2: f64,
    sigma2_syn: f64,
}

impl<'a> ExactRisk<'a> {
    /// Prepare the recursion for the spectral filter `filter` on `rs`.
    pub fn new(rs: &'a RowSpace, filter: &dyn SpectralFilter, sigma: f64, sigma_syn: f64) -> Self {
        let n = rs.n();
        let g: Vec<f64> = rs.d.iter().map(|&d| filter.gain(d, n)).collect();
        let a = g.iter().zip(&rs.d).map(|(g, d)| g * d).collect();
        let g2 = g.iter().map(|g| g * g).collect();
        let r = rs.rank();
        ExactRisk {
            rs,
            a,
            g2,
            mu: vec![0.0; r],
            nu: vec![0.0; r],
            sigma2: sigma * sigma,
            sigma2_syn: sigma_syn * sigma_syn,
        }
    }

    /// Advance to iteration t with weight w and return the expected risk.
    pub fn step(&mut self, t: usize, w: f64) -> f64 {
        let theta = &self.rs.theta;
        if t == 0 {
            for i in 0..self.a.len() {
                self.mu[i] = self.a[i] * theta[i];
                self.nu[i] = self.g2[i] * self.sigma2;
            }
        } else {
            let v = 1.0 - w;
            let fresh = w * w * self.sigma2 + v * v * self.sigma2_syn;
            for i in 0..self.a.len() {
                self.mu[i] = v * self.a[i] * self.mu[i] + w * self.a[i] * theta[i];
                self.nu[i] = v * v * self.a[i] * self.a[i] * self.nu[i] + self.g2[i] * fresh;
            }
        }
        let variance: f64 = self.nu.iter().zip(self.rs.m_diag()).map(|(nu, m)| nu * m).sum();
        self.rs.risk_of_coords(&self.mu) + variance
    }
}

struct SpectralChain<'a> {
    rs: &'a RowSpace,
    gains: Vec<f64>,
    b: Vec<f64>,
    xi: Vec<f64>,
    xi_syn: Vec<f64>,
    proj: Vec<f64>,
    proj_syn: Vec<f64>,
    projected: bool,
    sigma: f64,
    sigma_syn: f64,
    streams: Streams,
    exact: Option<ExactRisk<'a>>,
}

impl SpectralChain<'_> {
    /// Uᵀε for the noise of `purpose` at iteration t, into `proj`.
    fn projected_noise(&mut self, purpose: Purpose, t: usize) {
        let (buf, out, sd) = match purpose {
            Purpose::RealNoise => (&mut self.xi, &mut self.proj, self.sigma),
            _ => (&mut self.xi_syn, &mut self.proj_syn, self.sigma_syn),
        };
        let mut rng = self.streams.rng(purpose, t as u64);
        fill_normal(&mut rng, sd, buf);
        match (self.projected, self.rs.u()) {
            (false, Some(u)) => {
                for (i, o) in out.iter_mut().enumerate() {
                    *o = u.col(i).iter().zip(buf.iter()).map(|(a, b)| a * b).sum();
                }
            }
            // Projected noise (or a sampled row space, which only exists with it).
            _ => out.copy_from_slice(buf),
        }
    }
}

impl Chain for SpectralChain<'_> {
    fn step(&mut self, t: usize, w: f64) -> Result<Outcome, CoreError> {
        self.projected_noise(Purpose::RealNoise, t);
        let d = &self.rs.d;
        let theta = &self.rs.theta;
        if t == 0 {
            for i in 0..self.b.len() {
                self.b[i] = self.gains[i] * (d[i] * theta[i] + self.proj[i]);
            }
        } else {
            let v = 1.0 - w;
            if v > 0.0 {
                self.projected_noise(Purpose::SyntheticNoise, t);
            } else {
                self.proj_syn.iter_mut().for_each(|x| *x = 0.0);
            }
            for i in 0..self.b.len() {
                let signal = d[i] * (w * theta[i] + v * self.b[i]);
                self.b[i] = self.gains[i] * (signal + w * self.proj[i] + v * self.proj_syn[i]);
            }
        }
        let risk = self.rs.risk_of_coords(&self.b);
        if !risk.is_finite() {
            return Err(CoreError::numerical("fresh-labels", "non-finite risk"));
        }
        Ok(Outcome { risk, risk_exact: self.exact.as_mut().map(|e| e.step(t, w)) })
    }
}

struct RefitChain<'a> {
    data: &'a ReplicateData,
    estimator: &'a dyn Estimator,
    beta_hat: Col<f64>,
    sigma: f64,
    sigma_syn: f64,
    streams: Streams,
    exact: Option<ExactRisk<'a>>,
}

impl RefitChain<'_> {
    fn noise(&self, purpose: Purpose, t: usize, sd: f64, n: usize) -> Col<f64> {
        let mut buf = vec![0.0; n];
        fill_normal(&mut self.streams.rng(purpose, t as u64), sd, &mut buf);
        Col::from_fn(n, |i| buf[i])
    }
}

impl Chain for RefitChain<'_> {
    fn step(&mut self, t: usize, w: f64) -> Result<Outcome, CoreError> {
        let x: &Mat<f64> = &self.data.design().x;
        let beta = self.data.beta()?;
        let n = x.nrows();
        let real = x * beta + self.noise(Purpose::RealNoise, t, self.sigma, n);
        let labels = if t == 0 {
            real
        } else {
            let v = 1.0 - w;
            let synthetic = if v > 0.0 {
                x * &self.beta_hat + self.noise(Purpose::SyntheticNoise, t, self.sigma_syn, n)
            } else {
                Col::zeros(n)
            };
            &real * w + &synthetic * v
        };
        self.beta_hat = self.estimator.fit(x.as_ref(), labels.as_ref(), None)?;
        let err = &self.beta_hat - beta;
        let risk = self.data.covariance().quad_form(err.as_ref());
        if !risk.is_finite() {
            return Err(CoreError::numerical("fresh-labels", "non-finite risk"));
        }
        Ok(Outcome { risk, risk_exact: self.exact.as_mut().map(|e| e.step(t, w)) })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    use collapse_core::faer::{Col, ColRef, MatRef};
    use collapse_core::{Covariance, Signal};
    use collapse_covariance::{IsotropicParams, RandomSignalParams};
    use collapse_estimators::RidgeParams;

    fn ctx() -> BuildContext {
        BuildContext { n: 4, p: 6, noise_sd: 1.0 }
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<FreshLabels>();
        check::<FreshLabelsParams>();
    }

    #[test]
    fn negative_synthetic_noise_is_rejected() {
        let p = FreshLabelsParams { synthetic_noise_sd: Some(-1.0), ..FreshLabelsParams::example() };
        let e = p.build(&ctx()).unwrap_err();
        assert_eq!(e.field, "synthetic_noise_sd");
    }

    /// An estimator without a spectral form cannot take the spectral path.
    #[test]
    fn spectral_path_needs_a_spectral_estimator() {
        #[derive(Debug)]
        struct Opaque;
        impl Estimator for Opaque {
            fn fit(
                &self,
                x: MatRef<'_, f64>,
                _: ColRef<'_, f64>,
                _: Option<ColRef<'_, f64>>,
            ) -> Result<Col<f64>, CoreError> {
                Ok(Col::zeros(x.ncols()))
            }
        }
        let setting = FreshLabelsParams { path: Path::Spectral, ..FreshLabelsParams::example() }.build(&ctx()).unwrap();
        let cov = IsotropicParams {}.build(&ctx()).unwrap();
        let signal = RandomSignalParams { radius: 1.0 }.build(&ctx()).unwrap();
        let view = CellView {
            n: 4,
            p: 6,
            noise_sd: 1.0,
            iterations: 1,
            estimator: &Opaque,
            covariance: cov.as_ref(),
            signal: signal.as_ref(),
        };
        let e = setting.check(&view).unwrap_err();
        assert!(e.to_string().starts_with("path:"), "{e}");
    }

    /// Hand computation of the exact risk for min-norm on a design of full row rank:
    /// E R_0 = B_X + σ² Σ 1/d_i², and one step at weight w multiplies the variance
    /// part by (1−w)² + w² + (1−w)².
    #[test]
    fn exact_risk_by_hand() {
        let (n, p) = (4, 6);
        let cov: Arc<dyn Covariance> = Arc::from(IsotropicParams {}.build(&ctx()).unwrap());
        let signal: Arc<dyn Signal> = Arc::from(RandomSignalParams { radius: 1.0 }.build(&ctx()).unwrap());
        let data = ReplicateData::new(n, p, Streams::new(1, 0, 0), cov, signal, Arc::new(AtomicUsize::new(0)));
        let rs = data.row_space().unwrap();
        let ridge = RidgeParams { lambda: 0.0 }.build(&ctx()).unwrap();
        let mut exact = ExactRisk::new(rs, ridge.spectral().unwrap(), 1.0, 1.0);
        let bias = rs.perp_norm2();
        let var: f64 = rs.d.iter().map(|d| 1.0 / (d * d)).sum();
        assert!((exact.step(0, 1.0) - (bias + var)).abs() < 1e-12 * (bias + var));
        let w: f64 = 0.3;
        let factor = (1.0 - w).powi(2) + w * w + (1.0 - w).powi(2);
        assert!((exact.step(1, w) - (bias + factor * var)).abs() < 1e-12 * (bias + var));
    }
}
