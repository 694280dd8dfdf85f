use collapse_core::faer::dyn_stack::{MemBuffer, MemStack};
use collapse_core::faer::linalg::cholesky::llt::factor::{
    LltRegularization, cholesky_in_place, cholesky_in_place_scratch,
};
use collapse_core::faer::linalg::triangular_solve::{solve_lower_triangular_in_place, solve_upper_triangular_in_place};
use collapse_core::faer::{Col, Mat, Par};
use collapse_core::schemars::JsonSchema;
use collapse_core::serde::{Deserialize, Serialize};
use collapse_core::spectral::linalg::{lower_gram, matvec, symmetric_eigen, t_matvec};
use collapse_core::{BuildContext, CoreError, Estimator, FitInput, Likelihood, ParamError, Params};

/// What numerical errors of this estimator are reported as.
const WHAT: &str = "irls";
/// Sufficient-decrease constant c of the step-halving (Armijo) test.
const ARMIJO: f64 = 1e-4;
/// Step halvings tried before the line search fails (α down to 2⁻⁶⁰).
const MAX_HALVINGS: usize = 60;
/// A Newton step that moves some linear predictor by more than this fraction of
/// 1 + max|η| while the objective is flat is running off along a separating direction.
const RUNNING_OFF: f64 = 1e-3;
/// Consecutive Newton steps with a saturated row and a growing ‖β‖ that count as
/// separation (λ = 0).
const SEPARATION_STEPS: usize = 5;

/// Weighted, optionally ridge-penalised Newton / iteratively reweighted least squares
/// (IRLS) for a canonical GLM (docs/logistic.md §5). With row weights c_i ≥ 0 (default 1),
/// labels y_i (soft labels allowed: mixing real and synthetic labels on shared rows is a
/// soft label, docs/logistic.md §1) and the family's likelihood loss b(η) − yη, it
/// minimises
///
/// F(β) = Σ_i c_i [b(x_iᵀβ) − y_i x_iᵀβ] + (nλ/2)‖β‖²,  n = rows,
///
/// with ∇F = Xᵀ C(μ − y) + nλβ (μ_i = b'(x_iᵀβ), the likelihood's mean) and
/// ∇²F = XᵀWX + nλI (W = diag(c_i b''(x_iᵀβ)), its variance). With the Gaussian
/// likelihood b(η) = η²/2 this is ½‖C^{1/2}(y − Xβ)‖² + (nλ/2)‖β‖², weighted ridge with λ
/// in the same normalisation (XᵀCX + nλI) as `ridge`, solved by one Newton step.
///
/// Each Newton step Δ = −(∇²F)⁻¹∇F comes from a Cholesky factor LLᵀ of ∇²F (an
/// eigendecomposition when the factorization fails or a pivot is tiny); the Newton
/// decrement is Λ² = ‖L⁻¹∇F‖². The step is halved (α = 1, ½, ¼, …) until
/// F(β + αΔ) ≤ F(β) − 10⁻⁴·α·Λ². The fit stops when Λ²/2 (≈ F(β) − min F) is at most
/// τ·(|F(β)| + ε·Σc_i) and the step moves no linear predictor by more than
/// √τ·(1 + max_i |η_i|), and then takes that last full step, which Newton's quadratic
/// convergence makes accurate to far below τ. (The second condition keeps a fit that
/// creeps along a separating direction, where F flattens and Λ² → 0 while the step still
/// moves η by O(1), from passing for converged.) It starts from `start` (the previous
/// iteration's estimate, so that successive fits take a few steps) or from 0.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `lambda` | 0 | λ ≥ 0, finite | ridge penalty, in the normalisation (XᵀWX + nλI) of ridge; 0 is the maximum-likelihood estimate |
/// | `max_iterations` | 100 | ≥ 1 | Newton steps allowed per fit |
/// | `tolerance` | 1e-10 | 0 < τ < 1 | relative tolerance on the Newton decrement: stop when Λ²/2 ≤ τ·\|F\| |
///
/// Errors (numerical, named `irls`, never a NaN estimate): labels the likelihood rejects
/// (e.g. outside [0, 1] for Bernoulli); with λ = 0, (quasi-)separated data, detected when
/// for 5 consecutive steps some row's fitted mean equals its label to machine precision
/// (|y − μ| and b'' both ≤ 2⁻⁵³: |η| ≳ 36.7 for Bernoulli) while ‖β‖ keeps growing, when
/// F is flat to working precision along a step that still moves η, or when XᵀWX becomes
/// numerically singular (which also means rank(X) < p); a failed line search; no
/// convergence within `max_iterations`; non-finite values. With λ > 0 the objective is
/// strongly convex and the minimiser always exists.
///
/// Reference: McCullagh & Nelder (1989), *Generalized Linear Models*, 2nd ed., Chapman &
/// Hall, §2.5 (IRLS); Boyd & Vandenberghe (2004), *Convex Optimization*, §9.5 (Newton
/// decrement, backtracking).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(crate = "collapse_core::serde", deny_unknown_fields)]
#[schemars(crate = "collapse_core::schemars")]
pub struct IrlsParams {
    /// Ridge penalty λ ≥ 0 in (nλ/2)‖β‖², the normalisation of ridge; 0 (the default) is
    /// the maximum-likelihood estimate.
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub lambda: f64,
    /// Newton steps allowed per fit (≥ 1); more is a non-convergence error.
    #[serde(default = "default_max_iterations")]
    #[schemars(range(min = 1))]
    pub max_iterations: usize,
    /// Relative tolerance τ in (0, 1) on the Newton decrement: stop when Λ²/2 ≤ τ·|F|.
    #[serde(default = "default_tolerance")]
    #[schemars(extend("exclusiveMinimum" = 0.0, "exclusiveMaximum" = 1.0))]
    pub tolerance: f64,
}

fn default_max_iterations() -> usize {
    100
}

fn default_tolerance() -> f64 {
    1e-10
}

/// See [`IrlsParams`].
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Irls {
    lambda: f64,
    max_iterations: usize,
    tolerance: f64,
}

impl Irls {
    /// IRLS with penalty `lambda` (≥ 0), at most `max_iterations` (≥ 1) Newton steps and
    /// relative tolerance `tolerance` (in (0, 1)); ranges are checked by the parameters'
    /// schema.
    pub fn new(lambda: f64, max_iterations: usize, tolerance: f64) -> Self {
        Irls { lambda, max_iterations, tolerance }
    }

    fn separation(&self, beta_norm: f64) -> CoreError {
        CoreError::numerical(
            WHAT,
            format!(
                "data are (quasi-)separable: the fit keeps pushing fitted means towards their labels while ‖β‖ \
                 grows (‖β‖ = {beta_norm:.3e}), so no maximum-likelihood estimate exists; use lambda > 0"
            ),
        )
    }

    fn singular(&self, n: usize, p: usize) -> CoreError {
        if self.lambda == 0.0 {
            CoreError::numerical(
                WHAT,
                format!(
                    "the Hessian XᵀWX is numerically singular: the data are (quasi-)separable or the design \
                     ({n} × {p}) has rank < p, so the maximum-likelihood estimate is not unique or does not exist; \
                     use lambda > 0"
                ),
            )
        } else {
            CoreError::numerical(
                WHAT,
                format!(
                    "the Hessian XᵀWX + nλI is numerically singular: λ = {} is too small for the scale of this \
                     design ({n} × {p}); increase lambda",
                    self.lambda
                ),
            )
        }
    }
}

/// A row whose fitted mean equals its label to machine precision and whose Newton weight
/// has vanished: the signature of a row that the fit separates.
fn saturated(likelihood: &dyn Likelihood, y: f64, eta: f64) -> bool {
    let half_eps = 0.5 * f64::EPSILON;
    (y - likelihood.mean(eta)).abs() <= half_eps && likelihood.variance(eta) <= half_eps
}

fn sum_of_squares(v: &Col<f64>) -> f64 {
    v.iter().map(|x| x * x).sum()
}

/// The Newton step Δ = −H⁻¹g and the decrement gᵀH⁻¹g for the symmetric H whose lower
/// triangle is given; None when H is numerically singular (its smallest eigenvalue at
/// most p·ε times its largest).
fn newton_step(h: Mat<f64>, g: &Col<f64>, par: Par) -> Result<Option<(Col<f64>, f64)>, CoreError> {
    let p = h.nrows();
    let diag_max = (0..p).map(|j| h[(j, j)]).fold(0.0, f64::max);
    if !diag_max.is_finite() || (0..p).any(|j| !h[(j, j)].is_finite()) {
        return Err(CoreError::numerical(WHAT, "non-finite Hessian"));
    }
    let singular_below = p as f64 * f64::EPSILON * diag_max;
    let mut l = h.clone();
    let mut buf = MemBuffer::new(cholesky_in_place_scratch::<f64>(p, par, Default::default()));
    let factored =
        cholesky_in_place(l.as_mut(), LltRegularization::default(), par, MemStack::new(&mut buf), Default::default())
            .is_ok();
    // The smallest eigenvalue is at most the smallest pivot L_jj², so a tiny pivot means a
    // (numerically) singular H; a moderate one does not prove the opposite, which the
    // line search and the separation test take care of.
    if factored && (0..p).all(|j| l[(j, j)] * l[(j, j)] > singular_below) {
        for j in 0..p {
            for i in 0..j {
                l[(i, j)] = 0.0;
            }
        }
        let mut z = Mat::from_fn(p, 1, |i, _| g[i]);
        solve_lower_triangular_in_place(l.as_ref(), z.as_mut(), par);
        let decrement: f64 = z.col(0).iter().map(|x| x * x).sum();
        solve_upper_triangular_in_place(l.transpose(), z.as_mut(), par);
        return Ok(Some((Col::from_fn(p, |i| -z[(i, 0)]), decrement)));
    }
    // Fallback: H = Q diag(ν) Qᵀ (eigenvalues ascending).
    let (values, vectors) = symmetric_eigen(h.as_ref(), par)?;
    let (Some(&lo), Some(&hi)) = (values.first(), values.last()) else {
        return Ok(Some((Col::zeros(0), 0.0)));
    };
    if !(lo.is_finite() && hi.is_finite()) || lo <= p as f64 * f64::EPSILON * hi {
        return Ok(None);
    }
    let qtg = t_matvec(vectors.as_ref(), g.as_ref(), par);
    let decrement = (0..p).map(|j| qtg[j] * qtg[j] / values[j]).sum();
    let scaled = Col::from_fn(p, |j| -qtg[j] / values[j]);
    Ok(Some((matvec(vectors.as_ref(), scaled.as_ref(), par), decrement)))
}

impl Irls {
    fn fit_glm(&self, input: &FitInput<'_>) -> Result<Col<f64>, CoreError> {
        let (x, lik, par) = (input.x, input.likelihood, input.par);
        let (n, p) = (x.nrows(), x.ncols());
        if input.y.nrows() != n {
            return Err(CoreError::numerical(WHAT, format!("design has {n} rows but {} labels", input.y.nrows())));
        }
        let y: Vec<f64> = input.y.iter().copied().collect();
        let c: Vec<f64> = match input.weights {
            None => vec![1.0; n],
            Some(w) => {
                if w.nrows() != n || w.iter().any(|&ci| !(ci >= 0.0 && ci.is_finite())) {
                    return Err(CoreError::numerical(WHAT, "row weights must be finite, >= 0 and one per row"));
                }
                w.iter().copied().collect()
            }
        };
        if let Some(i) = (0..n).find(|&i| !lik.valid_label(y[i])) {
            return Err(CoreError::numerical(
                WHAT,
                format!("label y[{i}] = {} is not a valid {} label", y[i], lik.name()),
            ));
        }
        let mut beta = match input.start {
            None => Col::zeros(p),
            Some(s) => {
                if s.nrows() != p || s.iter().any(|b| !b.is_finite()) {
                    return Err(CoreError::numerical(WHAT, format!("the start must be {p} finite coefficients")));
                }
                s.to_owned()
            }
        };
        let nl = n as f64 * self.lambda;
        let objective = |eta: &[f64], beta_sq: f64| -> f64 {
            let data: f64 = (0..n).filter(|&i| c[i] > 0.0).map(|i| c[i] * lik.loss(y[i], eta[i])).sum();
            data + 0.5 * nl * beta_sq
        };
        let floor = f64::EPSILON * c.iter().sum::<f64>();
        let mut eta: Vec<f64> = matvec(x, beta.as_ref(), par).iter().copied().collect();
        let mut f = objective(&eta, sum_of_squares(&beta));
        if !f.is_finite() {
            return Err(CoreError::numerical(WHAT, format!("non-finite objective {f} at the start")));
        }
        let any_saturated = |eta: &[f64]| (0..n).any(|i| c[i] > 0.0 && saturated(lik, y[i], eta[i]));
        let mut separating_steps = 0;
        let mut last_decrement = f64::NAN;
        for _ in 0..self.max_iterations {
            // Gradient Xᵀ C(μ − y) + nλβ and Hessian XᵀWX + nλI (lower triangle).
            let resid = Col::from_fn(n, |i| c[i] * (lik.mean(eta[i]) - y[i]));
            let root_w: Vec<f64> = (0..n).map(|i| (c[i] * lik.variance(eta[i])).sqrt()).collect();
            let xw = Mat::from_fn(n, p, |i, j| root_w[i] * x[(i, j)]);
            let mut grad = t_matvec(x, resid.as_ref(), par);
            for j in 0..p {
                grad[j] += nl * beta[j];
            }
            if grad.iter().any(|g| !g.is_finite()) {
                return Err(CoreError::numerical(WHAT, "non-finite gradient"));
            }
            let mut h = lower_gram(xw.transpose(), par);
            for j in 0..p {
                h[(j, j)] += nl;
            }
            let Some((delta, decrement)) = newton_step(h, &grad, par)? else {
                if self.lambda == 0.0 && any_saturated(&eta) {
                    return Err(self.separation(beta.norm_l2()));
                }
                return Err(self.singular(n, p));
            };
            if !decrement.is_finite() || delta.iter().any(|d| !d.is_finite()) {
                return Err(CoreError::numerical(WHAT, "non-finite Newton step"));
            }
            last_decrement = decrement;
            let scale = f.abs() + floor;
            let xd: Vec<f64> = matvec(x, delta.as_ref(), par).iter().copied().collect();
            let trial = |alpha: f64| {
                let b = Col::from_fn(p, |j| beta[j] + alpha * delta[j]);
                let e: Vec<f64> = (0..n).map(|i| eta[i] + alpha * xd[i]).collect();
                let ft = objective(&e, sum_of_squares(&b));
                (b, e, ft)
            };
            // Near a separating direction F flattens and Λ² → 0 while the step keeps moving
            // the linear predictors by O(1): such a fit has not converged (`moves`), and if
            // F stops decreasing there, it is running off to infinity (`runs_off`, a coarse
            // threshold that rounding in an ill-conditioned but converged fit cannot reach).
            let eta_scale = 1.0 + eta.iter().fold(0.0, |m: f64, e| m.max(e.abs()));
            let eta_step = xd.iter().fold(0.0, |m: f64, d| m.max(d.abs()));
            let moves = eta_step > self.tolerance.sqrt() * eta_scale;
            let runs_off = eta_step > RUNNING_OFF * eta_scale;
            if 0.5 * decrement <= self.tolerance * scale && !moves {
                // Converged: the last full step brings β to about (Λ²)² of the optimum.
                let (b, _, ft) = trial(1.0);
                let accept = ft.is_finite() && ft <= f + 64.0 * f64::EPSILON * scale;
                return Ok(if accept { b } else { beta });
            }
            let mut alpha = 1.0;
            let mut accepted = None;
            for _ in 0..=MAX_HALVINGS {
                let (b, e, ft) = trial(alpha);
                if ft.is_finite() && ft <= f - ARMIJO * alpha * decrement {
                    accepted = Some((b, e, ft));
                    break;
                }
                alpha *= 0.5;
            }
            let Some((b, e, ft)) = accepted else {
                // No decrease at all: F is flat to working precision along the Newton
                // direction. Converged, unless the direction still moves the fit (the
                // signature of separation) or something else is wrong.
                if !runs_off && 0.5 * decrement <= 64.0 * f64::EPSILON * scale {
                    return Ok(beta);
                }
                if self.lambda == 0.0 && (runs_off || any_saturated(&eta)) {
                    return Err(self.separation(beta.norm_l2()));
                }
                return Err(CoreError::numerical(
                    WHAT,
                    format!(
                        "line search failed: no step in 1, 1/2, …, 2^-{MAX_HALVINGS} of the Newton direction \
                         decreases the objective (Newton decrement Λ² = {decrement:.3e}, objective {f:.6e})"
                    ),
                ));
            };
            let grew = b.norm_l2() > beta.norm_l2();
            if self.lambda == 0.0 && grew && any_saturated(&e) {
                separating_steps += 1;
            } else {
                separating_steps = 0;
            }
            beta = b;
            eta = e;
            f = ft;
            if separating_steps >= SEPARATION_STEPS {
                return Err(self.separation(beta.norm_l2()));
            }
        }
        if self.lambda == 0.0 && any_saturated(&eta) {
            return Err(self.separation(beta.norm_l2()));
        }
        Err(CoreError::numerical(
            WHAT,
            format!(
                "no convergence within max_iterations = {} Newton steps (last Newton decrement Λ²/2 = {:.3e}, \
                 objective {f:.6e}, tolerance {:e}); raise max_iterations",
                self.max_iterations,
                0.5 * last_decrement,
                self.tolerance
            ),
        ))
    }
}

impl Estimator for Irls {
    fn fit(&self, input: &FitInput<'_>) -> Result<Col<f64>, CoreError> {
        self.fit_glm(input)
    }
    /// Any likelihood: on the Gaussian one IRLS is weighted ridge in one Newton step.
    fn supports(&self, _likelihood: &dyn Likelihood) -> Result<(), String> {
        Ok(())
    }
    fn ridge_penalty(&self) -> Option<f64> {
        Some(self.lambda)
    }
}

impl Params for IrlsParams {
    type Target = dyn Estimator;
    fn build(&self, _ctx: &BuildContext) -> Result<Box<dyn Estimator>, ParamError> {
        // The schema bounds are checked before `build`; a NaN is written back as null and
        // so escapes them.
        if !self.lambda.is_finite() {
            return Err(ParamError::new("lambda", format!("must be finite and >= 0, got {}", self.lambda)));
        }
        if !(self.tolerance > 0.0 && self.tolerance < 1.0) {
            return Err(ParamError::new("tolerance", format!("must be in (0, 1), got {}", self.tolerance)));
        }
        Ok(Box::new(Irls::new(self.lambda, self.max_iterations, self.tolerance)))
    }
    fn example() -> Self {
        IrlsParams { lambda: 0.0, max_iterations: default_max_iterations(), tolerance: default_tolerance() }
    }
}

collapse_core::register!(
    EstimatorPlugin,
    IrlsParams,
    "irls",
    "Newton/IRLS for canonical GLMs (logistic, …), weighted and optionally ridge-penalised (nλ/2)‖β‖²"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Ridge;
    use collapse_core::SquaredError;
    use collapse_core::faer::{ColRef, MatRef};
    use collapse_core::rand::RngExt as _;
    use collapse_core::rng::{Purpose, Streams, normal_vec};

    /// Bernoulli likelihood with the stable forms of the logistic family (the estimators
    /// crate does not depend on the families crate).
    #[derive(Debug)]
    struct Bern;
    fn softplus(x: f64) -> f64 {
        x.max(0.0) + (-x.abs()).exp().ln_1p()
    }
    fn sigmoid(x: f64) -> f64 {
        if x >= 0.0 { 1.0 / (1.0 + (-x).exp()) } else { x.exp() / (1.0 + x.exp()) }
    }
    impl Likelihood for Bern {
        fn name(&self) -> &'static str {
            "bernoulli"
        }
        fn is_gaussian(&self) -> bool {
            false
        }
        fn mean(&self, eta: f64) -> f64 {
            sigmoid(eta)
        }
        fn variance(&self, eta: f64) -> f64 {
            sigmoid(eta) * sigmoid(-eta)
        }
        fn loss(&self, y: f64, eta: f64) -> f64 {
            softplus(eta) - y * eta
        }
        fn valid_label(&self, y: f64) -> bool {
            (0.0..=1.0).contains(&y)
        }
    }

    fn ctx(n: usize, p: usize) -> BuildContext {
        BuildContext { n, p }
    }

    fn irls(lambda: f64) -> Irls {
        Irls::new(lambda, 100, 1e-10)
    }

    fn fit_with(
        est: &dyn Estimator,
        lik: &dyn Likelihood,
        x: MatRef<'_, f64>,
        y: ColRef<'_, f64>,
        weights: Option<ColRef<'_, f64>>,
        start: Option<ColRef<'_, f64>>,
    ) -> Result<Col<f64>, CoreError> {
        est.fit(&FitInput { x, y, weights, likelihood: lik, start, par: Par::Seq })
    }

    /// A Gaussian design and Bernoulli(σ(xᵀβ)) labels.
    fn logistic_data(n: usize, p: usize, seed: u64) -> (Mat<f64>, Col<f64>, Col<f64>) {
        let mut rng = Streams::new(seed, 0, 0).rng(Purpose::Design, 0);
        let z = normal_vec(&mut rng, 1.0, n * p + n);
        let x = Mat::from_fn(n, p, |i, j| z[i * p + j]);
        let beta = Col::from_fn(p, |j| if j % 2 == 0 { 0.8 } else { -0.5 });
        let eta = matvec(x.as_ref(), beta.as_ref(), Par::Seq);
        let mut rng = Streams::new(seed, 0, 0).rng(Purpose::RealNoise, 0);
        let y = Col::from_fn(n, |i| if rng.random::<f64>() < sigmoid(eta[i]) { 1.0 } else { 0.0 });
        (x, y, beta)
    }

    /// max_j |[Xᵀ C(y − μ) − nλβ]_j| and the scale n·max|x_ij| it is compared to.
    fn score_residual(x: &Mat<f64>, y: &Col<f64>, c: Option<&Col<f64>>, b: &Col<f64>, lambda: f64) -> (f64, f64) {
        let (n, p) = x.shape();
        let eta = matvec(x.as_ref(), b.as_ref(), Par::Seq);
        let r = Col::from_fn(n, |i| c.map_or(1.0, |c| c[i]) * (y[i] - sigmoid(eta[i])));
        let s = t_matvec(x.as_ref(), r.as_ref(), Par::Seq);
        let worst = (0..p).map(|j| (s[j] - n as f64 * lambda * b[j]).abs()).fold(0.0, f64::max);
        let xmax = x.col_iter().flat_map(|col| col.iter().map(|v| v.abs()).collect::<Vec<_>>()).fold(0.0, f64::max);
        (worst, n as f64 * xmax)
    }

    #[test]
    fn plugins_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Irls>();
        check::<IrlsParams>();
    }

    #[test]
    fn defaults_and_example() {
        let p: IrlsParams = collapse_core::serde_json::from_str("{}").unwrap();
        assert!(p.lambda.abs() < f64::MIN_POSITIVE);
        assert_eq!(p.max_iterations, 100);
        assert!((p.tolerance - 1e-10).abs() < 1e-25);
        let est = IrlsParams::example().checked_build(&ctx(10, 3)).unwrap();
        assert_eq!(est.ridge_penalty(), Some(0.0));
        assert!(est.spectral().is_none());
        assert!(est.supports(&Bern).is_ok() && est.supports(&SquaredError).is_ok());
    }

    #[test]
    fn invalid_parameters_are_rejected_with_their_field() {
        let base = IrlsParams::example();
        for (params, field) in [
            (IrlsParams { lambda: -0.1, ..base.clone() }, "lambda"),
            (IrlsParams { lambda: f64::INFINITY, ..base.clone() }, "lambda"),
            (IrlsParams { lambda: f64::NAN, ..base.clone() }, "lambda"),
            (IrlsParams { max_iterations: 0, ..base.clone() }, "max_iterations"),
            (IrlsParams { tolerance: 0.0, ..base.clone() }, "tolerance"),
            (IrlsParams { tolerance: -1e-8, ..base.clone() }, "tolerance"),
            (IrlsParams { tolerance: 1.0, ..base.clone() }, "tolerance"),
            (IrlsParams { tolerance: f64::NAN, ..base.clone() }, "tolerance"),
        ] {
            let e = params.checked_build(&ctx(10, 3)).unwrap_err();
            assert_eq!(e.field(), Some(field), "{e}");
        }
        let e =
            collapse_core::registry::deserialize_strict::<IrlsParams>(&collapse_core::serde_json::json!({"lamda": 1}))
                .unwrap_err();
        assert_eq!(e.field(), Some("lamda"), "{e}");
    }

    /// Hand-computed: one column of ones, so F(β) = Σ c_i [softplus(β) − y_i β] and the MLE
    /// is logit of the weighted label mean: labels (1, 0, 1, 1) → ln 3; soft labels with
    /// mean 0.6 → ln 1.5; weights (2, 1, 1, 0) on (1, 0, 1, 1) → mean 3/4 → ln 3.
    #[test]
    fn intercept_only_mle_by_hand() {
        let x = Mat::from_fn(4, 1, |_, _| 1.0);
        type Case = ([f64; 4], Option<[f64; 4]>, f64);
        let cases: [Case; 3] = [
            ([1.0, 0.0, 1.0, 1.0], None, 3f64.ln()),
            ([0.618, 0.382, 0.4, 1.0], None, 1.5f64.ln()),
            ([1.0, 0.0, 1.0, 1.0], Some([2.0, 1.0, 1.0, 0.0]), 3f64.ln()),
        ];
        for (labels, weights, expected) in cases {
            let y = Col::from_fn(4, |i| labels[i]);
            let w = weights.map(|w| Col::from_fn(4, |i| w[i]));
            let b = fit_with(&irls(0.0), &Bern, x.as_ref(), y.as_ref(), w.as_ref().map(|w| w.as_ref()), None).unwrap();
            // Default τ = 1e-10: the last step leaves an error of order (√τ)², far below 1e-11.
            assert!((b[0] - expected).abs() < 1e-11, "{labels:?}: {} vs {expected}", b[0]);
        }
    }

    /// Penalised intercept: the score equation ȳ − σ(β) − λβ = 0, solved independently by
    /// bisection.
    #[test]
    fn penalised_intercept_against_bisection() {
        let x = Mat::from_fn(4, 1, |_, _| 1.0);
        let y = Col::from_fn(4, |i| [1.0, 0.0, 1.0, 1.0][i]);
        let lambda = 0.3;
        let score = |b: f64| 0.75 - sigmoid(b) - lambda * b;
        let (mut lo, mut hi) = (-10.0, 10.0);
        for _ in 0..200 {
            let mid = 0.5 * (lo + hi);
            if score(mid) > 0.0 { lo = mid } else { hi = mid }
        }
        let b = fit_with(&irls(lambda), &Bern, x.as_ref(), y.as_ref(), None, None).unwrap();
        assert!((b[0] - 0.5 * (lo + hi)).abs() < 1e-13, "{} vs {}", b[0], 0.5 * (lo + hi));
    }

    /// The score equations Xᵀ(y − μ) − nλβ = 0 hold to rounding (n·max|x|·ε scale) on a
    /// random logistic data set, weighted and unweighted, with and without a penalty.
    #[test]
    fn score_equations_hold() {
        let (n, p) = (60, 4);
        let (x, y, _) = logistic_data(n, p, 11);
        let c = Col::from_fn(n, |i| [0.5, 1.0, 2.0][i % 3]);
        for lambda in [0.0, 0.05] {
            for weights in [None, Some(&c)] {
                let est = Irls::new(lambda, 100, 1e-14);
                let b = fit_with(&est, &Bern, x.as_ref(), y.as_ref(), weights.map(|c| c.as_ref()), None).unwrap();
                let (worst, scale) = score_residual(&x, &y, weights, &b, lambda);
                assert!(worst < 16.0 * scale * f64::EPSILON, "λ = {lambda}: {worst:e} vs {:e}", scale * f64::EPSILON);
            }
        }
    }

    /// With the default tolerance, the answer agrees with a tight-tolerance fit far below
    /// statistical precision, and a warm start (from the answer itself, from 0 and from
    /// far away) gives the same answer.
    #[test]
    fn default_tolerance_and_warm_starts_agree() {
        let (n, p) = (200, 3);
        let (x, y, _) = logistic_data(n, p, 12);
        let tight = fit_with(&Irls::new(0.0, 100, 1e-15), &Bern, x.as_ref(), y.as_ref(), None, None).unwrap();
        let far = Col::from_fn(p, |j| 3.0 * tight[j] + 0.5);
        for start in [None, Some(tight.clone()), Some(Col::zeros(p)), Some(far)] {
            let b =
                fit_with(&irls(0.0), &Bern, x.as_ref(), y.as_ref(), None, start.as_ref().map(|s| s.as_ref())).unwrap();
            let gap = (0..p).map(|j| (b[j] - tight[j]).abs()).fold(0.0, f64::max);
            assert!(gap < 1e-9 * tight.norm_l2(), "gap {gap:e}");
        }
    }

    /// Gaussian likelihood: IRLS is weighted ridge with the same λ (one Newton step).
    #[test]
    fn gaussian_likelihood_equals_ridge() {
        let (n, p) = (40, 6);
        let mut rng = Streams::new(5, 0, 0).rng(Purpose::Design, 0);
        let z = normal_vec(&mut rng, 1.0, n * p + n);
        let x = Mat::from_fn(n, p, |i, j| z[i * p + j]);
        let y = Col::from_fn(n, |i| 3.0 * z[n * p + i] + x[(i, 0)]);
        let c = Col::from_fn(n, |i| if i % 4 == 0 { 0.25 } else { 1.5 });
        for lambda in [0.0, 0.02, 1.0] {
            for weights in [None, Some(c.as_ref())] {
                let a = fit_with(&irls(lambda), &SquaredError, x.as_ref(), y.as_ref(), weights, None).unwrap();
                let b = fit_with(&Ridge::new(lambda), &SquaredError, x.as_ref(), y.as_ref(), weights, None).unwrap();
                let gap = (0..p).map(|j| (a[j] - b[j]).abs()).fold(0.0, f64::max);
                assert!(gap < 1e-12 * b.norm_l2(), "λ = {lambda}: gap {gap:e}");
            }
        }
    }

    /// Separated data: λ = 0 is an error that says so; λ > 0 converges.
    #[test]
    fn separation_is_an_error_unless_penalised() {
        // 1-D, complete separation at 0.
        let x = Mat::from_fn(4, 1, |i, _| [1.0, 2.0, -1.0, -2.0][i]);
        let y = Col::from_fn(4, |i| [1.0, 1.0, 0.0, 0.0][i]);
        // 2-D, quasi-separation: the first two rows are separated by x₂, the rest overlap.
        let x2 = Mat::from_fn(6, 2, |i, j| {
            [[1.0, 1.0], [1.0, -1.0], [1.0, 0.0], [1.0, 0.0], [-1.0, 0.0], [-1.0, 0.0]][i][j]
        });
        let y2 = Col::from_fn(6, |i| [1.0, 0.0, 1.0, 0.0, 1.0, 0.0][i]);
        for (x, y) in [(&x, &y), (&x2, &y2)] {
            let e = fit_with(&irls(0.0), &Bern, x.as_ref(), y.as_ref(), None, None).unwrap_err();
            let msg = e.to_string();
            assert!(msg.contains("separable") && msg.contains("lambda > 0"), "{msg}");
            let b = fit_with(&irls(0.1), &Bern, x.as_ref(), y.as_ref(), None, None).unwrap();
            assert!(b.iter().all(|v| v.is_finite()));
            let (worst, scale) = score_residual(x, y, None, &b, 0.1);
            assert!(worst < 1e-6 * scale, "{worst:e}");
        }
    }

    /// A design of rank < p without a penalty: the MLE is not unique (soft labels, so
    /// no separation); the error names the cause. A penalty makes it unique.
    #[test]
    fn rank_deficient_design_needs_a_penalty() {
        let x = Mat::from_fn(8, 3, |i, j| if j == 2 { (i as f64).sin() } else { (i as f64 + 1.0).cos() });
        let y = Col::from_fn(8, |i| if i % 2 == 0 { 0.3 } else { 0.7 });
        let e = fit_with(&irls(0.0), &Bern, x.as_ref(), y.as_ref(), None, None).unwrap_err();
        assert!(e.to_string().contains("rank < p"), "{e}");
        assert!(fit_with(&irls(0.01), &Bern, x.as_ref(), y.as_ref(), None, None).is_ok());
    }

    #[test]
    fn invalid_labels_and_non_convergence_are_errors() {
        let (x, mut y, _) = logistic_data(30, 2, 13);
        let e = fit_with(&Irls::new(0.0, 1, 1e-10), &Bern, x.as_ref(), y.as_ref(), None, None).unwrap_err();
        assert!(e.to_string().contains("no convergence within max_iterations = 1"), "{e}");
        y[7] = 1.5;
        let e = fit_with(&irls(0.0), &Bern, x.as_ref(), y.as_ref(), None, None).unwrap_err();
        assert!(e.to_string().contains("y[7] = 1.5 is not a valid bernoulli label"), "{e}");
        y[7] = f64::NAN;
        assert!(fit_with(&irls(0.0), &Bern, x.as_ref(), y.as_ref(), None, None).is_err());
    }
}
