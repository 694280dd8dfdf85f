//! Protocols that draw their own covariates at every iteration, shared by
//! `fresh-covariates` and `partial-labels` (docs/fresh-covariates.md §1,
//! docs/partial-labels.md §1).
//!
//! Iteration t draws X_t (n × p, rows iid N(0, Σ)) from the `Covariates` stream of t and
//! real labels from the `RealNoise` stream of t; cells of a design group therefore see the
//! same X_t and real labels (common random numbers), and the unit computes them, and the
//! Gram factorization of X_t, once per iteration for all its cells
//! (`ReplicateData::shared_at`; docs/fresh-covariates.md §8). t = 0 fits the real labels
//! of all n rows. At t ≥ 1 the first m = round(π n) rows get the mixed label
//! w·y + (1 − w)·ỹ and the other n − m the synthetic label ỹ (drawn from the previous
//! fit on the same rows, `SyntheticNoise` stream of t); with `drop` only the m mixed rows
//! are fitted. The rows are iid, so taking the first m is the same in law as any other
//! choice of m rows.
//!
//! The fit is kept as the policy says: replace refits on the newest rows (spectral
//! estimators: the smaller Gram matrix of X_t and its factorizations shared by the cells,
//! then O(np) per cell; [`Gram`]); other policies keep a [`Pool`]. The exact expected risk
//! (`<metric>_exact`) is the scalar recursion of docs/partial-labels.md §2 and
//! docs/fresh-covariates.md §3–§4 where it applies.

use std::sync::Arc;

use collapse_core::faer::{Col, Mat, Par};
use collapse_core::rng::Purpose;
use collapse_core::spectral::linalg::matvec;
use collapse_core::{
    CellTheory, CellView, CoreError, Covariance, DesignUse, Estimator, FitInput, MetricKind, NoTheory, Origin, Plan,
    PlannedMetric, Policy, Protocol, Regression, ReplicateData, Retention, Streams, Trajectory,
};
use collapse_theory::{FreshRows, fresh_exact_step};

use crate::gram::Gram;
use crate::mixing::LabelMixing;
use crate::pool::{Block, Pool, Rows};

/// What the rows of an own-design protocol get at t ≥ 1.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct FreshDesign {
    /// Fraction π of the rows whose label mixes in a real label.
    pub pi: f64,
    /// Fit only those rows (true) or all n (false).
    pub drop_synthetic_only: bool,
}

/// One iteration's draw, shared by the cells of a unit.
#[derive(Debug)]
struct Draw {
    x: Arc<Mat<f64>>,
    real: Vec<f64>,
}

/// Shared-value keys (ReplicateData::shared_at): the draw; the Gram factor of the first
/// `rows` rows is `GRAM + rows`.
const DRAW: u64 = 0;
const GRAM: u64 = 1;

impl FreshDesign {
    /// m = round(π n).
    pub fn mixed_rows(&self, n: usize) -> usize {
        ((self.pi * n as f64).round() as usize).min(n)
    }

    /// (rows fitted, rows with a mixed label) at iteration t.
    pub fn rows_at(&self, t: usize, n: usize) -> (usize, usize) {
        let m = self.mixed_rows(n);
        match (t, self.drop_synthetic_only) {
            (0, _) => (n, n),
            (_, true) => (m, m),
            (_, false) => (n, m),
        }
    }

    /// Whether every iteration's step of the exact recursion exists for this cell: Gaussian
    /// labels, min-norm or OLS, replace, and either isotropic rows with p > rows + 1 or
    /// rows > p + 1 with one kind of label (docs/partial-labels.md §2).
    fn exact_possible(&self, cell: &CellView<'_>) -> bool {
        let Some(noise) = cell.family.regression().and_then(|r| r.gaussian_noise()) else { return false };
        let least_squares = cell.estimator.spectral().is_some() && cell.estimator.ridge_penalty() == Some(0.0);
        if !least_squares || !replaces(cell) {
            return false;
        }
        let (s2, k2) = (noise.sigma * noise.sigma, noise.synthetic_sigma * noise.synthetic_sigma);
        [0, 1].iter().all(|&t| {
            let (rows, mixed) = self.rows_at(t, cell.n);
            let w = if t == 0 { 1.0 } else { 0.5 };
            let isotropic_ok = cell.p <= rows || cell.covariance.is_isotropic();
            isotropic_ok
                && fresh_exact_step(cell.p, FreshRows { rows, mixed, w, sigma2: s2, synthetic_sigma2: k2 }).is_ok()
        })
    }
}

impl Protocol for FreshDesign {
    /// Validate the cell and declare the plan.
    fn plan(&self, cell: &CellView<'_>) -> Result<Plan, CoreError> {
        crate::mixing::check_fit(cell)?;
        if self.drop_synthetic_only && self.mixed_rows(cell.n) == 0 {
            return Err(CoreError::config(
                "protocol.pi",
                format!(
                    "with synthetic_rows = \"drop\" at least one row must get a real label, but round(π·n) = 0 for n = {}",
                    cell.n
                ),
            ));
        }
        let exact = self.exact_possible(cell);
        let metrics = cell
            .family
            .metrics()
            .into_iter()
            .map(|m| PlannedMetric { exact: exact && m.kind == MetricKind::SigmaError, metric: m })
            .collect();
        Ok(Plan { design: DesignUse::Own, metrics, uses_schedule: true, risk_evaluations_per_iteration: 0 })
    }

    /// Start a trajectory on one replicate.
    fn start<'a>(
        &self,
        cell: CellView<'a>,
        plan: &'a Plan,
        data: &'a ReplicateData,
        streams: Streams,
    ) -> Result<Box<dyn Trajectory + 'a>, CoreError> {
        let reg = LabelMixing::regression(&cell)?;
        let beta = data.beta()?;
        let pool = (!replaces(&cell))
            .then(|| Pool::new(cell.policy.retention(1, cell.n), cell.estimator.spectral().is_some(), cell.n, cell.p));
        let exact = plan.metrics.iter().any(|m| m.exact).then(|| {
            let noise =
                reg.gaussian_noise().unwrap_or(collapse_core::GaussianNoise { sigma: 0.0, synthetic_sigma: 0.0 });
            Exact {
                d: 0.0,
                sigma2: noise.sigma * noise.sigma,
                synthetic_sigma2: noise.synthetic_sigma * noise.synthetic_sigma,
            }
        });
        Ok(Box::new(FreshTrajectory {
            design: *self,
            n: cell.n,
            p: cell.p,
            reg,
            estimator: cell.estimator,
            covariance: cell.covariance,
            policy: cell.policy,
            data,
            streams,
            beta,
            beta_norm2: beta.squared_norm_l2(),
            beta_hat: None,
            pool,
            exact,
            exact_slots: plan.metrics.iter().map(|m| m.exact).collect(),
            par: data.par(),
        }))
    }

    fn theory(&self, cell: &CellView<'_>) -> Result<Box<dyn CellTheory>, NoTheory> {
        crate::fresh_theory::fresh_theory(cell, *self)
    }
}

/// True when the policy keeps only the newest iteration at every t ≥ 1.
pub fn replaces(cell: &CellView<'_>) -> bool {
    (1..=cell.iterations.max(1))
        .all(|t| matches!(cell.policy.retention(t, cell.n), Retention::Pool { newest } if newest >= 1.0))
}

/// The exact expected risk D_{t−1} and the noise variances.
#[derive(Debug, Clone, Copy)]
struct Exact {
    d: f64,
    sigma2: f64,
    synthetic_sigma2: f64,
}

struct FreshTrajectory<'a> {
    design: FreshDesign,
    n: usize,
    p: usize,
    reg: &'a dyn Regression,
    estimator: &'a dyn Estimator,
    covariance: &'a dyn Covariance,
    policy: &'a dyn Policy,
    data: &'a ReplicateData,
    streams: Streams,
    beta: &'a Col<f64>,
    beta_norm2: f64,
    beta_hat: Option<Col<f64>>,
    pool: Option<Pool<'a>>,
    exact: Option<Exact>,
    exact_slots: Vec<bool>,
    par: Par,
}

impl FreshTrajectory<'_> {
    /// X_t and its real labels, drawn once per unit and iteration.
    fn draw(&self, t: usize) -> Result<Arc<Draw>, CoreError> {
        self.data.shared_at(self.streams, t, DRAW, || {
            let x = self.covariance.sample(self.n, &mut self.streams.rng(Purpose::Covariates, t as u64));
            let eta: Vec<f64> = matvec(x.as_ref(), self.beta.as_ref(), self.par).iter().copied().collect();
            let mut real = vec![0.0; self.n];
            self.reg.draw_labels(&eta, Origin::Real, &mut self.streams.rng(Purpose::RealNoise, t as u64), &mut real);
            Ok(Draw { x: Arc::new(x), real })
        })
    }

    /// The labels of the fitted rows at iteration t ≥ 1.
    fn labels(&self, t: usize, w: f64, draw: &Draw, rows: usize, mixed: usize) -> Result<Vec<f64>, CoreError> {
        if w >= 1.0 && mixed == rows {
            return Ok(draw.real[..rows].to_vec());
        }
        let prev = self.beta_hat.as_ref().ok_or_else(|| CoreError::numerical("fresh design", "no previous fit"))?;
        let x = draw.x.as_ref().as_ref().subrows(0, rows);
        let eta: Vec<f64> = matvec(x, prev.as_ref(), self.par).iter().copied().collect();
        let mut synthetic = vec![0.0; rows];
        let mut rng = self.streams.rng(Purpose::SyntheticNoise, t as u64);
        self.reg.draw_labels(&eta, Origin::Synthetic, &mut rng, &mut synthetic);
        for (i, s) in synthetic.iter_mut().enumerate().take(mixed) {
            *s = w * draw.real[i] + (1.0 - w) * *s;
        }
        Ok(synthetic)
    }

    /// Replace: refit on the newest rows; spectral estimators share the Gram factor of
    /// X_t with the other cells of the unit.
    fn fit_newest(&self, t: usize, draw: &Draw, rows: usize, labels: &[f64]) -> Result<Col<f64>, CoreError> {
        let x = draw.x.as_ref().as_ref().subrows(0, rows);
        let y = Col::from_fn(rows, |i| labels[i]);
        match self.estimator.spectral() {
            Some(_) => {
                let gram = self.data.shared_at(self.streams, t, GRAM + rows as u64, || Ok(Gram::new(x, self.par)))?;
                gram.fit(self.estimator, x, y.as_ref(), rows, self.par)
            }
            None => self.estimator.fit(&FitInput {
                x,
                y: y.as_ref(),
                weights: None,
                likelihood: self.reg.likelihood(),
                start: self.beta_hat.as_ref().map(|b| b.as_ref()),
                par: self.par,
            }),
        }
    }
}

impl Trajectory for FreshTrajectory<'_> {
    fn step(&mut self, t: usize, w: f64, out: &mut [f64]) -> Result<(), CoreError> {
        let draw = self.draw(t)?;
        let (rows, mixed) = self.design.rows_at(t, self.n);
        let w = if t == 0 { 1.0 } else { w };
        let labels = if t == 0 { draw.real.clone() } else { self.labels(t, w, &draw, rows, mixed)? };
        let pooled = match self.pool.as_mut() {
            None => None,
            Some(pool) => {
                let retention = match (t, self.policy.retention(t.max(1), self.n)) {
                    (0, Retention::Pool { .. }) => Retention::Pool { newest: 1.0 },
                    (_, r) => r,
                };
                let block = Block { rows: Rows::Drawn(draw.x.clone()), count: rows, labels: labels.clone() };
                pool.push(block, retention, self.par)?;
                // The first fit is the same whatever is kept later.
                match t {
                    0 => None,
                    _ => Some(pool.fit(
                        self.estimator,
                        self.reg.likelihood(),
                        self.beta_hat.as_ref(),
                        &self.streams,
                        t,
                        self.par,
                    )?),
                }
            }
        };
        let fit = match pooled {
            Some(fit) => fit,
            None => self.fit_newest(t, &draw, rows, &labels)?,
        };
        let mut scores = vec![0.0; self.exact_slots.len()];
        self.reg.score(fit.as_ref(), self.beta.as_ref(), self.covariance, &mut scores)?;
        self.beta_hat = Some(fit);
        let exact = match self.exact.as_mut() {
            Some(e) => {
                let step = fresh_exact_step(
                    self.p,
                    FreshRows { rows, mixed, w, sigma2: e.sigma2, synthetic_sigma2: e.synthetic_sigma2 },
                )
                .map_err(|err| CoreError::numerical("exact risk", err.to_string()))?;
                e.d = step.apply(e.d, self.beta_norm2);
                Some(e.d)
            }
            None => None,
        };
        crate::mixing::write_slots(out, &scores, &self.exact_slots, exact)
    }
}
