//! The three-way check on one fixed design: Monte Carlo over label noise against the
//! exact conditional risk (THEORY.md §E), and the exact recursion against independent
//! closed forms (§A.3 for min-norm, §A.5 for ridge at stationarity).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use collapse_core::faer::linalg::solvers::Solve;
use collapse_core::faer::{Col, Mat, Side};
use collapse_core::{BuildContext, CellView, Covariance, Estimator, Params, ReplicateData, Setting, Signal, Streams};
use collapse_covariance::{IsotropicParams, RandomSignalParams, SpikedParams};
use collapse_estimators::{MinNormParams, RidgeParams};
use collapse_schedules::DynamicParams;
use collapse_settings::{FreshLabelsParams, Path};

struct Fixture {
    n: usize,
    p: usize,
    sigma: f64,
    estimator: Box<dyn Estimator>,
    covariance: Arc<dyn Covariance>,
    signal: Arc<dyn Signal>,
    data: ReplicateData,
}

impl Fixture {
    fn new(n: usize, p: usize, estimator: Box<dyn Estimator>, covariance: Box<dyn Covariance>) -> Self {
        let ctx = BuildContext { n, p, noise_sd: 1.0 };
        let covariance: Arc<dyn Covariance> = Arc::from(covariance);
        let signal: Arc<dyn Signal> = Arc::from(RandomSignalParams { radius: 1.0 }.build(&ctx).unwrap());
        let data = ReplicateData::new(
            n,
            p,
            Streams::new(99, 0, 0),
            covariance.clone(),
            signal.clone(),
            Arc::new(AtomicUsize::new(0)),
        );
        Fixture { n, p, sigma: 1.0, estimator, covariance, signal, data }
    }

    fn view(&self, iterations: usize) -> CellView<'_> {
        CellView {
            n: self.n,
            p: self.p,
            noise_sd: self.sigma,
            iterations,
            estimator: self.estimator.as_ref(),
            covariance: self.covariance.as_ref(),
            signal: self.signal.as_ref(),
        }
    }

    /// Risks [chain][t] of `chains` chains that share the design and β but use
    /// independent noise streams; and the exact risks of the first chain.
    fn simulate(&self, setting: &dyn Setting, weights: &[f64], chains: u64) -> (Vec<Vec<f64>>, Vec<f64>) {
        let view = self.view(weights.len() - 1);
        let mut risks = Vec::new();
        let mut exact = Vec::new();
        for k in 0..chains {
            let mut chain = setting.start(view, &self.data, Streams::new(5, 0, k + 1)).unwrap();
            let mut path = Vec::new();
            for (t, &w) in weights.iter().enumerate() {
                let o = chain.step(t, w).unwrap();
                path.push(o.risk);
                if k == 0 {
                    exact.push(o.risk_exact.unwrap());
                }
            }
            risks.push(path);
        }
        (risks, exact)
    }
}

fn z_score(xs: impl Iterator<Item = f64> + Clone, expected: f64) -> f64 {
    let n = xs.clone().count() as f64;
    let mean = xs.clone().sum::<f64>() / n;
    let var = xs.map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean - expected) / (var / n).sqrt()
}

fn setting(path: Path, projected_noise: bool) -> Box<dyn Setting> {
    FreshLabelsParams { path, projected_noise, synthetic_noise_sd: None, fast_design: false }
        .build(&BuildContext { n: 1, p: 1, noise_sd: 1.0 })
        .unwrap()
}

fn c_t(w: f64, t: usize) -> f64 {
    let c = (w * w + (1.0 - w) * (1.0 - w)) / (w * (2.0 - w));
    c + (1.0 - w).powi(2 * t as i32) * (1.0 - c)
}

/// Min-norm: E[R_t | X] = B_X + c_t(w) V_X with B_X = ‖(I−P)β‖², V_X = σ² Σ 1/d_i².
#[test]
fn min_norm_exact_matches_closed_form_and_monte_carlo() {
    let (n, p) = (30, 60);
    let ctx = BuildContext { n, p, noise_sd: 1.0 };
    let f = Fixture::new(n, p, MinNormParams {}.build(&ctx).unwrap(), IsotropicParams {}.build(&ctx).unwrap());
    let w = 0.618;
    let weights: Vec<f64> = (0..=12).map(|t| if t == 0 { 1.0 } else { w }).collect();
    let (risks, exact) = f.simulate(setting(Path::Spectral, true).as_ref(), &weights, 3000);

    let rs = f.data.row_space().unwrap();
    let beta = f.data.beta().unwrap();
    let b_x = beta.squared_norm_l2() - rs.theta.iter().map(|x| x * x).sum::<f64>();
    let v_x: f64 = rs.d.iter().map(|d| 1.0 / (d * d)).sum::<f64>() * f.sigma * f.sigma;
    for (t, e) in exact.iter().enumerate() {
        let closed = b_x + c_t(w, t) * v_x;
        assert!((e - closed).abs() < 1e-10 * closed, "t = {t}: {e} vs {closed}");
    }
    for t in [0, 1, 3, 12] {
        let z = z_score(risks.iter().map(|r| r[t]), exact[t]);
        assert!(z.abs() < 4.0, "t = {t}: z = {z}");
    }
}

/// The dynamic schedule gives a_t = w_t for min-norm: E[R_t | X] = B_X + w_t V_X.
#[test]
fn dynamic_schedule_variance_factor_equals_its_weight() {
    let (n, p) = (25, 50);
    let ctx = BuildContext { n, p, noise_sd: 1.0 };
    let f = Fixture::new(n, p, MinNormParams {}.build(&ctx).unwrap(), IsotropicParams {}.build(&ctx).unwrap());
    let weights = DynamicParams {}.build(&ctx).unwrap().weights(&f.view(15)).unwrap();
    let (risks, exact) = f.simulate(setting(Path::Spectral, true).as_ref(), &weights, 2000);
    let rs = f.data.row_space().unwrap();
    let beta = f.data.beta().unwrap();
    let b_x = beta.squared_norm_l2() - rs.theta.iter().map(|x| x * x).sum::<f64>();
    let v_x: f64 = rs.d.iter().map(|d| 1.0 / (d * d)).sum();
    for (t, e) in exact.iter().enumerate() {
        assert!((e - (b_x + weights[t] * v_x)).abs() < 1e-10 * e, "t = {t}");
    }
    let z = z_score(risks.iter().map(|r| r[15]), exact[15]);
    assert!(z.abs() < 4.0, "z = {z}");
}

/// Ridge on a spiked (non-isotropic) Σ: the recursion at large t equals the exact
/// stationary risk of §A.5, a²βᵀR_aΣR_aβ + c(w)σ²(1/n)tr(ΣSR_aR_b), a = λ/w,
/// b = λ/(2−w), computed here densely with Cholesky solves; Monte Carlo agrees.
#[test]
fn ridge_exact_matches_stationary_formula_and_monte_carlo() {
    let (n, p, lambda, w) = (40, 30, 0.3, 0.7);
    let ctx = BuildContext { n, p, noise_sd: 1.0 };
    let f = Fixture::new(
        n,
        p,
        RidgeParams { lambda }.build(&ctx).unwrap(),
        SpikedParams { spikes: vec![4.0, 1.5] }.build(&ctx).unwrap(),
    );
    let t_max = 200;
    let weights: Vec<f64> = (0..=t_max).map(|t| if t == 0 { 1.0 } else { w }).collect();
    let (risks, exact) = f.simulate(setting(Path::Spectral, true).as_ref(), &weights, 1500);

    let x = &f.data.design().x;
    let beta = f.data.beta().unwrap();
    let sigma_mat = f.covariance.apply(Mat::<f64>::identity(p, p).as_ref());
    let s = x.transpose() * x * (1.0 / n as f64);
    let (a, b) = (lambda / w, lambda / (2.0 - w));
    let shifted = |x: f64| Mat::from_fn(p, p, |i, j| s[(i, j)] + if i == j { x } else { 0.0 });
    let ra = shifted(a).llt(Side::Lower).unwrap();
    let rb = shifted(b).llt(Side::Lower).unwrap();
    let ra_beta = ra.solve(beta);
    let bias = a * a * (ra_beta.transpose() * (&sigma_mat * &ra_beta));
    // tr(Σ S R_a R_b) = tr(R_b Σ S R_a)
    let m = ra.solve(&s.transpose()); // R_a S  (S symmetric)
    let m = rb.solve(&(&sigma_mat * &m)); // R_b Σ S R_a
    let trace: f64 = (0..p).map(|i| m[(i, i)]).sum();
    let cw = (w * w + (1.0 - w) * (1.0 - w)) / (w * (2.0 - w));
    let stationary = bias + cw * f.sigma * f.sigma * trace / n as f64;
    assert!((exact[t_max] - stationary).abs() < 1e-8 * stationary, "{} vs {stationary}", exact[t_max]);
    for t in [0, 2, t_max] {
        let z = z_score(risks.iter().map(|r| r[t]), exact[t]);
        assert!(z.abs() < 4.0, "t = {t}: z = {z}");
    }
    let _ = Col::<f64>::zeros(1);
}

/// The spectral path with full (unprojected) noise and the refit path consume the same
/// random numbers, so they must give the same risks up to rounding.
#[test]
fn spectral_and_refit_paths_agree_draw_for_draw() {
    let (n, p) = (20, 35);
    let ctx = BuildContext { n, p, noise_sd: 1.0 };
    for lambda in [0.0, 0.2] {
        let f = Fixture::new(
            n,
            p,
            RidgeParams { lambda }.build(&ctx).unwrap(),
            SpikedParams { spikes: vec![3.0] }.build(&ctx).unwrap(),
        );
        let weights = [1.0, 0.6, 0.6, 0.3, 0.9, 0.0];
        let (a, ea) = f.simulate(setting(Path::Spectral, false).as_ref(), &weights, 3);
        let (b, eb) = f.simulate(setting(Path::Refit, true).as_ref(), &weights, 3);
        for (ra, rb) in a.iter().flatten().zip(b.iter().flatten()) {
            assert!((ra - rb).abs() < 1e-9 * ra.max(1.0), "λ = {lambda}: {ra} vs {rb}");
        }
        assert_eq!(ea, eb);
    }
}
