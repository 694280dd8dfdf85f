//! Label mixing on a fixed design, shared by `fresh-labels` and `fixed-labels`: the
//! design X is drawn once per replicate; t = 0 fits the real labels; every t ≥ 1 mixes
//! real labels (fresh, or the reused y_0) with synthetic labels from the previous fit,
//! z_t = w_t·y + (1 − w_t)·ỹ_t, and refits on what the policy keeps
//! (docs/fresh-labels.md §1, docs/fixed-labels.md §1).
//!
//! Two exact ways to compute the same iteration:
//! * **spectral**: a linear spectral estimator with Gaussian labels moves each singular
//!   direction of X independently (docs/spectral-recursion.md §2). The recursion is run
//!   in O(r) per iteration by [`collapse_core::spectral::Simulation`], and its exact
//!   conditional moments by [`collapse_core::spectral::Moments`];
//! * **refit**: labels are formed in R^n by the family and the estimator's `fit` is
//!   called every iteration (any estimator, any regression family).

use collapse_core::faer::{Col, MatRef, Par};
use collapse_core::rng::Purpose;
use collapse_core::spectral::linalg::matvec;
use collapse_core::spectral::{Directions, Moments, NoiseDraws, RowSpace, Simulation, Source, Step};
use collapse_core::{
    CellTheory, CellView, CoreError, DesignUse, Estimator, FitInput, MetricKind, NoTheory, Origin, Plan, PlannedMetric,
    Policy, Protocol, Regression, ReplicateData, Retention, RowSpaceMode, Streams, Trajectory,
};

use crate::gram::refit;
use crate::pool::{Block, Pool, Rows};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// How a fixed-design protocol computes each refit.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum Path {
    /// `spectral` when the estimator is a spectral filter, the labels Gaussian and the
    /// policy keeps whole iterations; else `refit`.
    Auto,
    /// Factor X once per replicate and iterate in the r = rank(X) singular coordinates.
    Spectral,
    /// Form the labels in R^n and call the estimator's `fit` every iteration.
    Refit,
}

/// Where the real labels of iterations t ≥ 1 come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RealLabels {
    /// Fresh real labels y_t = Xβ + ε_t at every iteration.
    Fresh,
    /// The real labels y_0 of t = 0, reused at every iteration.
    Fixed,
}

impl RealLabels {
    /// The noise source of the real labels used at iteration t.
    fn source(self, t: usize) -> Source {
        match self {
            RealLabels::Fresh => Source::new(Purpose::RealNoise, t),
            RealLabels::Fixed => Source::new(Purpose::RealNoise, 0),
        }
    }

    /// Sources reused across iterations.
    fn persistent(self) -> Vec<Source> {
        match self {
            RealLabels::Fresh => Vec::new(),
            RealLabels::Fixed => vec![Source::new(Purpose::RealNoise, 0)],
        }
    }
}

/// The options shared by fixed-design label-mixing protocols.
#[derive(Debug, Clone, Copy)]
pub struct LabelMixing {
    /// Fresh or reused real labels.
    pub real: RealLabels,
    /// How each refit is computed.
    pub path: Path,
    /// Spectral path: draw the projected noise Uᵀε directly (r normals instead of n).
    pub projected_noise: bool,
    /// Spectral path with projected noise: sample the row space where that is exact.
    pub fast_design: bool,
}

/// The label weights of the policy for iterations 1..=T: each iteration's labels enter a
/// running average with weight `newest` (docs/spectral-recursion.md §5); None when the
/// policy subsamples rows.
fn pool_weights(cell: &CellView<'_>) -> Option<Vec<f64>> {
    (1..=cell.iterations)
        .map(|t| match cell.policy.retention(t, cell.n) {
            Retention::Pool { newest } => Some(newest),
            Retention::Subsample { .. } => None,
        })
        .collect()
}

impl LabelMixing {
    /// The regression view of the cell's family, or an error naming the family.
    pub fn regression<'a>(cell: &CellView<'a>) -> Result<&'a dyn Regression, CoreError> {
        cell.family.regression().ok_or_else(|| {
            CoreError::config("family.kind", "this protocol needs a regression family (labels given covariates)")
        })
    }

    fn spectral_possible(cell: &CellView<'_>) -> Result<(), &'static str> {
        let reg = Self::regression(cell).map_err(|_| "the family is not a regression family")?;
        if cell.estimator.spectral().is_none() {
            return Err("the estimator is not a spectral filter (ridge, min-norm, ols, pcr are)");
        }
        if reg.gaussian_noise().is_none() {
            return Err("the family's labels are not Gaussian");
        }
        if cell.family.metrics().iter().any(|m| m.kind != MetricKind::SigmaError) {
            return Err("the family has metrics other than ‖β̂ − β‖²_Σ");
        }
        if pool_weights(cell).is_none() {
            return Err("the policy subsamples rows, which changes the design (refit only)");
        }
        Ok(())
    }

    fn use_spectral(&self, cell: &CellView<'_>) -> bool {
        self.path != Path::Refit && Self::spectral_possible(cell).is_ok()
    }
}

impl Protocol for LabelMixing {
    /// Validate the cell and declare the plan.
    fn plan(&self, cell: &CellView<'_>) -> Result<Plan, CoreError> {
        check_fit(cell)?;
        if self.path == Path::Spectral
            && let Err(why) = Self::spectral_possible(cell)
        {
            return Err(CoreError::config(
                "protocol.path",
                format!("`spectral` is not possible here: {why}; use \"refit\" or \"auto\""),
            ));
        }
        let spectral = self.use_spectral(cell);
        let exact_possible = Self::spectral_possible(cell).is_ok();
        let metrics: Vec<PlannedMetric> = cell
            .family
            .metrics()
            .into_iter()
            .map(|m| {
                let exact = exact_possible && m.kind == MetricKind::SigmaError;
                PlannedMetric { metric: m, exact }
            })
            .collect();
        let exact_count = metrics.iter().filter(|m| m.exact).count();
        let mode = if spectral && self.projected_noise && self.fast_design {
            RowSpaceMode::Sample
        } else {
            RowSpaceMode::Factorize
        };
        Ok(Plan {
            design: DesignUse::Fixed(mode),
            metrics,
            uses_schedule: true,
            risk_evaluations_per_iteration: exact_count + usize::from(spectral),
        })
    }

    /// Start a trajectory on one replicate.
    fn start<'a>(
        &self,
        cell: CellView<'a>,
        plan: &'a Plan,
        data: &'a ReplicateData,
        streams: Streams,
    ) -> Result<Box<dyn Trajectory + 'a>, CoreError> {
        let reg = Self::regression(&cell)?;
        let newest = pool_weights(&cell);
        let exact = plan.metrics.iter().any(|m| m.exact);
        let moments_of = |rs: &RowSpace| -> Result<Option<(Directions, Moments)>, CoreError> {
            if !exact {
                return Ok(None);
            }
            let filter =
                cell.estimator.spectral().ok_or_else(|| CoreError::numerical("exact risk", "no spectral form"))?;
            let dirs = Directions::new(rs, filter.gains(&rs.d, rs.n())?)?;
            let moments = Moments::new(dirs.len(), &self.real.persistent());
            Ok(Some((dirs, moments)))
        };
        let noise = reg.gaussian_noise();
        if self.use_spectral(&cell)
            && let (Some(noise), Some(filter), Some(newest)) = (noise, cell.estimator.spectral(), newest.clone())
        {
            let rs = data.row_space()?;
            let dirs = Directions::new(rs, filter.gains(&rs.d, rs.n())?)?;
            let draws = if self.projected_noise { NoiseDraws::Projected } else { NoiseDraws::Full };
            let persistent = self.real.persistent();
            let sim = Simulation::new(rs, draws, &persistent)?;
            let moments = exact.then(|| Moments::new(dirs.len(), &persistent));
            return Ok(Box::new(SpectralTrajectory {
                rs,
                dirs,
                sim,
                moments,
                streams,
                real: self.real,
                sigma: noise.sigma,
                synthetic_sigma: noise.synthetic_sigma,
                newest,
                par: data.par(),
            }));
        }
        let x = data.design();
        let beta = data.beta()?;
        let eta_true = matvec(x, beta.as_ref(), data.par());
        let exact_state = if exact { moments_of(data.row_space()?)? } else { None };
        Ok(Box::new(RefitTrajectory {
            data,
            x,
            beta,
            reg,
            estimator: cell.estimator,
            real: self.real,
            eta_true: eta_true.iter().copied().collect(),
            fixed_real: None,
            labels: vec![0.0; x.nrows()],
            pooled: vec![0.0; x.nrows()],
            beta_hat: None,
            exact: exact_state,
            subsample: newest.is_none().then(|| {
                Pool::new(cell.policy.retention(1, cell.n), cell.estimator.spectral().is_some(), cell.n, cell.p)
            }),
            policy: cell.policy,
            newest: newest.unwrap_or_default(),
            sigma: noise.map(|n| n.sigma),
            synthetic_sigma: noise.map(|n| n.synthetic_sigma),
            streams,
            metrics: plan.metrics.len(),
            exact_slots: plan.metrics.iter().map(|m| m.exact).collect(),
        }))
    }

    fn theory(&self, cell: &CellView<'_>) -> Result<Box<dyn CellTheory>, NoTheory> {
        crate::theory::mixing_theory(cell, self.real)
    }
}

/// The step coefficients of iteration t (docs/spectral-recursion.md §2, §5).
fn step_of<'n>(
    t: usize,
    w: f64,
    newest: &[f64],
    real: RealLabels,
    sigma: f64,
    synthetic_sigma: f64,
    noise: &'n mut [(Source, f64); 2],
) -> Step<'n> {
    if t == 0 {
        noise[0] = (real.source(0), sigma);
        noise[1] = (Source::new(Purpose::SyntheticNoise, 0), 0.0);
        return Step { keep: 0.0, feedback: 0.0, signal: 1.0, noise: &noise[..] };
    }
    let l = newest[t - 1];
    noise[0] = (real.source(t), l * w * sigma);
    noise[1] = (Source::new(Purpose::SyntheticNoise, t), l * (1.0 - w) * synthetic_sigma);
    Step { keep: 1.0 - l, feedback: l * (1.0 - w), signal: l * w, noise: &noise[..] }
}

struct SpectralTrajectory<'a> {
    rs: &'a RowSpace,
    dirs: Directions,
    sim: Simulation,
    moments: Option<Moments>,
    streams: Streams,
    real: RealLabels,
    sigma: f64,
    synthetic_sigma: f64,
    newest: Vec<f64>,
    par: Par,
}

impl Trajectory for SpectralTrajectory<'_> {
    fn step(&mut self, t: usize, w: f64, out: &mut [f64]) -> Result<(), CoreError> {
        let mut noise = [(Source::new(Purpose::RealNoise, 0), 0.0); 2];
        let step = step_of(t, w, &self.newest, self.real, self.sigma, self.synthetic_sigma, &mut noise);
        self.sim.step(self.rs, &self.dirs, &self.streams, &step);
        out[0] = self.rs.risk_of_coords(self.sim.coords(), self.par);
        if let Some(m) = self.moments.as_mut() {
            m.step(&self.dirs, &self.rs.theta, &step);
            out[1] = m.risk(self.rs, self.par);
        }
        Ok(())
    }
}

struct RefitTrajectory<'a> {
    data: &'a ReplicateData,
    x: MatRef<'a, f64>,
    beta: &'a Col<f64>,
    reg: &'a dyn Regression,
    estimator: &'a dyn Estimator,
    real: RealLabels,
    eta_true: Vec<f64>,
    fixed_real: Option<Vec<f64>>,
    labels: Vec<f64>,
    pooled: Vec<f64>,
    beta_hat: Option<Col<f64>>,
    exact: Option<(Directions, Moments)>,
    /// The kept rows of a subsampling policy (docs/policies.md §5).
    subsample: Option<Pool<'a>>,
    policy: &'a dyn Policy,
    newest: Vec<f64>,
    sigma: Option<f64>,
    synthetic_sigma: Option<f64>,
    streams: Streams,
    metrics: usize,
    exact_slots: Vec<bool>,
}

impl RefitTrajectory<'_> {
    /// Real labels of iteration t into `self.labels`.
    fn real_labels(&mut self, t: usize) {
        if self.real == RealLabels::Fixed
            && let Some(y0) = &self.fixed_real
        {
            self.labels.copy_from_slice(y0);
            return;
        }
        let mut rng = self.streams.rng(Purpose::RealNoise, if self.real == RealLabels::Fixed { 0 } else { t as u64 });
        self.reg.draw_labels(&self.eta_true, Origin::Real, &mut rng, &mut self.labels);
        if self.real == RealLabels::Fixed {
            self.fixed_real = Some(self.labels.clone());
        }
    }
}

impl Trajectory for RefitTrajectory<'_> {
    fn step(&mut self, t: usize, w: f64, out: &mut [f64]) -> Result<(), CoreError> {
        let par = self.data.par();
        self.real_labels(t);
        if t > 0 {
            let v = 1.0 - w;
            if v > 0.0 {
                let prev = self.beta_hat.as_ref().ok_or_else(|| CoreError::numerical("refit", "no previous fit"))?;
                let eta = matvec(self.x, prev.as_ref(), par);
                let eta: Vec<f64> = eta.iter().copied().collect();
                let mut synthetic = vec![0.0; eta.len()];
                let mut rng = self.streams.rng(Purpose::SyntheticNoise, t as u64);
                self.reg.draw_labels(&eta, Origin::Synthetic, &mut rng, &mut synthetic);
                for (y, s) in self.labels.iter_mut().zip(&synthetic) {
                    *y = w * *y + v * s;
                }
            }
        }
        let fit = if let Some(pool) = self.subsample.as_mut() {
            // Subsampling: the pool keeps every iteration's labels on the rows of X, and
            // each refit draws its rows from it (t = 0 fits the first labels whole).
            let retention = self.policy.retention(t.max(1), self.x.nrows());
            let block = Block { rows: Rows::Fixed(self.x), count: self.x.nrows(), labels: self.labels.clone() };
            pool.push(block, retention, par)?;
            if t == 0 {
                let y = Col::from_fn(self.labels.len(), |i| self.labels[i]);
                refit(self.estimator, self.reg.likelihood(), self.x, y.as_ref(), None, par)?
            } else {
                pool.fit(self.estimator, self.reg.likelihood(), self.beta_hat.as_ref(), &self.streams, t, par)?
            }
        } else {
            if t == 0 {
                self.pooled.copy_from_slice(&self.labels);
            } else {
                let l = self.newest[t - 1];
                for (p, z) in self.pooled.iter_mut().zip(&self.labels) {
                    *p = (1.0 - l) * *p + l * z;
                }
            }
            let y = Col::from_fn(self.pooled.len(), |i| self.pooled[i]);
            let input = FitInput {
                x: self.x,
                y: y.as_ref(),
                weights: None,
                likelihood: self.reg.likelihood(),
                start: self.beta_hat.as_ref().map(|b| b.as_ref()),
                par,
            };
            self.estimator.fit(&input)?
        };
        let mut scores = vec![0.0; self.metrics];
        self.reg.score(fit.as_ref(), self.beta.as_ref(), self.data.covariance(), &mut scores)?;
        self.beta_hat = Some(fit);
        // The exact conditional Σ-risk, advanced once per iteration.
        let exact_risk = match self.exact.as_mut() {
            Some((dirs, moments)) => {
                let rs = self.data.row_space()?;
                let (sigma, synthetic_sigma) = (self.sigma.unwrap_or(0.0), self.synthetic_sigma.unwrap_or(0.0));
                let mut noise = [(Source::new(Purpose::RealNoise, 0), 0.0); 2];
                let step = step_of(t, w, &self.newest, self.real, sigma, synthetic_sigma, &mut noise);
                moments.step(dirs, &rs.theta, &step);
                Some(moments.risk(rs, par))
            }
            None => None,
        };
        write_slots(out, &scores, &self.exact_slots, exact_risk)
    }
}

/// Check that the cell has a regression family its estimator can fit, for protocols
/// that fit the cell's own estimator (and tune no penalty).
pub(crate) fn check_fit(cell: &CellView<'_>) -> Result<(), CoreError> {
    let reg = LabelMixing::regression(cell)?;
    cell.estimator.supports(reg.likelihood()).map_err(|m| CoreError::config("estimator.kind", m))?;
    reject_tuned_penalty(cell)
}

/// Protocols that do not tune a penalty from their theory refuse `tuned-ridge` (it has no
/// penalty of its own, [`collapse_core::Estimator::tuned_penalty`]).
pub(crate) fn reject_tuned_penalty(cell: &CellView<'_>) -> Result<(), CoreError> {
    match cell.estimator.tuned_penalty() {
        Some(_) => Err(CoreError::config(
            "estimator.kind",
            "`tuned-ridge` needs a protocol that tunes the penalty from its theory (generational-chain); use `ridge` with a penalty",
        )),
        None => Ok(()),
    }
}

/// Write an iteration's metric values into `out` in slot order: each metric's score,
/// followed by the exact risk where `exact_slots` says the metric has one.
pub(crate) fn write_slots(
    out: &mut [f64],
    scores: &[f64],
    exact_slots: &[bool],
    exact: Option<f64>,
) -> Result<(), CoreError> {
    let mut j = 0;
    for (score, &has_exact) in scores.iter().zip(exact_slots) {
        out[j] = *score;
        j += 1;
        if has_exact {
            out[j] = exact.ok_or_else(|| CoreError::numerical("exact risk", "not computed"))?;
            j += 1;
        }
    }
    Ok(())
}
