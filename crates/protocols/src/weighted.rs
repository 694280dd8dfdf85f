//! The `weighted` protocol (P3): every round draws n fresh real samples and m synthetic
//! samples from the previous fit and fits the weighted objective (docs/weighted.md).

use std::sync::Mutex;

use collapse_core::faer::{Col, Mat, MatRef};
use collapse_core::rng::Purpose;
use collapse_core::spectral::linalg::matvec;
use collapse_core::{
    BuildContext, CellTheory, CellView, CoreError, Covariance, DesignUse, Estimator, FitInput, MetricKind, Model,
    NoTheory, Origin, ParamError, Params, Path, Plan, PlannedMetric, Protocol, Regression, ReplicateData, SampleFamily,
    SampleSizes, Streams, Trajectory,
};
use collapse_theory::{optimal_w_noise_ratio, variance_factors_with_noise_ratio};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::theory::GlmInputs;

/// Largest number of synthetic samples per round (m = n/k grows without bound as k → 0).
pub const MAX_SYNTHETIC: usize = 10_000_000;

/// Weighted real + synthetic training (P3; docs/weighted.md §1). At t = 0 the model is
/// fitted to n real samples. Every round t ≥ 1 draws n **fresh real** samples from the
/// truth and m **synthetic** samples from the previous fit, both with fresh covariates
/// from the design (the covariance, or a data table's rows), and fits
///
/// θ̂_t = argmin_θ (w/n) Σ_real ℓ(θ; ·) + ((1 − w)/m) Σ_synthetic ℓ(θ; ·),
///
/// w = w_t from the schedule. w = 1 is real-only training, w = 0 fully synthetic.
///
/// * Regression families (linear-gaussian, logistic, poisson): synthetic labels are drawn
///   by the family at xᵀθ̂_{t−1}; the estimator gets row weights c_i = N·w/n (real) and
///   N(1 − w)/m (synthetic) with N the rows passed, i.e. the per-sample weights scaled to
///   sum to N, so the objective divided by N is the weighted mean loss plus the
///   estimator's penalty, (λ/2)‖θ‖² for `irls`: a ridge penalty keeps its per-sample
///   meaning at every w and m (docs/weighted.md §1). Each fit starts from θ̂_{t−1}.
/// * Sample families (gaussian, ecdf, kernel-regression; estimator `mle`) draw and fit
///   themselves, with weights w/n and (1 − w)/m summing to 1.
/// * A data-table design with a label column: real samples are rows (x_i, y_i) of the
///   table, and the truth is the estimator's fit on the whole table (docs/weighted.md §5).
///
/// Sizes: n = `design.n`; m given directly or as k = n/m (m = round(n/k), at least 1);
/// neither: k = 1. Streams: real covariates `Covariates`, real labels `RealNoise`,
/// synthetic covariates `Plugin(1)`, synthetic labels (and sample-family synthetic draws)
/// `SyntheticNoise`, each keyed by t, so cells of a design group share real data and the
/// first draws of their synthetic data (common random numbers).
///
/// Theory (docs/weighted.md §2–§4): MSE_∞(w) ∝ (w² + k(1 − w)²)/(w(2 − w)). Regression
/// families with the MLE: the linearized path a_t·tr(Σ I⁻¹)/n (a_t of P3's recursion);
/// sample families: their own (exact for means and the ECDF's L², first-order otherwise).
/// Table designs have no theory (their labels are not drawn from the model).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `m` | n/k | ≥ 1 | synthetic samples per round |
/// | `k` | 1 | > 0 | real-to-synthetic ratio n/m (m = round(n/k)) |
///
/// Errors: both `m` and `k`; m above 10⁷; a policy other than `replace`; an estimator that
/// cannot fit the family (sample families need `mle`); a table design without a label
/// column for a regression family, or with a sample family; a family's own dimension
/// check (ecdf and kernel-regression need p = 1).
///
/// Reference: He, Xu & Cheng (2025), *Recursive Learning Without Collapse: A
/// Weighting-Based Stabilization Framework*, arXiv 2502.18049.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct WeightedParams {
    /// Synthetic samples per round (≥ 1); give this or `k`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 1))]
    pub m: Option<usize>,
    /// The ratio k = n/m > 0 (m = round(n/k)); default 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(extend("exclusiveMinimum" = 0.0))]
    pub k: Option<f64>,
}

/// See [`WeightedParams`].
#[derive(Debug)]
pub struct Weighted {
    m: Option<usize>,
    k: Option<f64>,
    /// The truth of a table design, fitted once (keyed by the covariance's address).
    table_truth: Mutex<Option<(usize, Col<f64>)>>,
}

impl Params for WeightedParams {
    type Target = dyn Protocol;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Protocol>, ParamError> {
        if self.m.is_some() && self.k.is_some() {
            return Err(ParamError::new("k", "give `m` (synthetic samples) or `k` (= n/m), not both"));
        }
        if self.k.is_some_and(|k| !k.is_finite()) {
            return Err(ParamError::new("k", "must be a finite number > 0"));
        }
        Ok(Box::new(Weighted { m: self.m, k: self.k, table_truth: Mutex::new(None) }))
    }
    fn example() -> Self {
        WeightedParams { m: None, k: Some(1.0) }
    }
}

/// The regression or sample view of a cell's family.
enum View<'a> {
    Regression(&'a dyn Regression),
    Samples(&'a dyn SampleFamily),
}

fn view<'a>(cell: &CellView<'a>) -> Result<View<'a>, CoreError> {
    if let Some(r) = cell.family.regression() {
        Ok(View::Regression(r))
    } else if let Some(s) = cell.family.samples() {
        Ok(View::Samples(s))
    } else {
        Err(CoreError::config("family.kind", "this family has neither a regression nor a sample view"))
    }
}

/// Whether the cell's design is a data table with labels.
fn labelled_table(cell: &CellView<'_>) -> bool {
    cell.covariance.population().is_some_and(|p| p.y.is_some())
}

impl Weighted {
    /// n and m of a cell.
    pub fn sizes(&self, n: usize) -> SampleSizes {
        let m = match (self.m, self.k) {
            (Some(m), _) => m,
            (None, k) => {
                let m = (n as f64 / k.unwrap_or(1.0)).round();
                if m >= MAX_SYNTHETIC as f64 { MAX_SYNTHETIC + 1 } else { (m as usize).max(1) }
            }
        };
        SampleSizes { real: n, synthetic: m }
    }

    /// The truth of a table design: the estimator's fit on every row with its label.
    fn table_truth(&self, cell: &CellView<'_>, reg: &dyn Regression) -> Result<Col<f64>, CoreError> {
        let key = std::ptr::from_ref(cell.covariance).cast::<()>() as usize;
        let mut cache = self.table_truth.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if let Some((k, beta)) = cache.as_ref()
            && *k == key
        {
            return Ok(beta.clone());
        }
        let pop = cell.covariance.population().ok_or_else(|| CoreError::numerical("weighted", "no population"))?;
        let y = pop.y.as_ref().ok_or_else(|| CoreError::numerical("weighted", "no labels"))?;
        let y = Col::from_fn(y.len(), |i| y[i]);
        let input = FitInput {
            x: pop.x.as_ref(),
            y: y.as_ref(),
            weights: None,
            likelihood: reg.likelihood(),
            start: None,
            par: collapse_core::faer::Par::Seq,
        };
        let beta = cell.estimator.fit(&input).map_err(|e| {
            CoreError::config(
                "covariance",
                format!(
                    "the family's fit on the whole table (the truth) failed: {e}; use fewer features or lambda > 0"
                ),
            )
        })?;
        *cache = Some((key, beta.clone()));
        Ok(beta)
    }
}

impl Protocol for Weighted {
    fn plan(&self, cell: &CellView<'_>) -> Result<Plan, CoreError> {
        crate::mixing::reject_tuned_penalty(cell)?;
        let sizes = self.sizes(cell.n);
        if sizes.synthetic > MAX_SYNTHETIC {
            return Err(CoreError::config(
                "protocol.k",
                format!("gives m = n/k above {MAX_SYNTHETIC} synthetic samples per round; use a larger k"),
            ));
        }
        if !crate::fresh_design::replaces(cell) {
            return Err(CoreError::config(
                "policy.kind",
                "`weighted` trains each round on that round's real and synthetic samples; use policy `replace`",
            ));
        }
        match view(cell)? {
            View::Regression(reg) => {
                cell.estimator.supports(reg.likelihood()).map_err(|m| CoreError::config("estimator.kind", m))?;
                if let Some(pop) = cell.covariance.population() {
                    if pop.y.is_none() {
                        return Err(CoreError::config(
                            "covariance.label",
                            "a table design for a regression family needs a label column (the real labels)",
                        ));
                    }
                    self.table_truth(cell, reg)?;
                }
            }
            View::Samples(fam) => {
                if !cell.estimator.defers_to_family() {
                    return Err(CoreError::config(
                        "estimator.kind",
                        "this family fits its own weighted estimate; use kind = \"mle\"",
                    ));
                }
                if cell.covariance.population().is_some() {
                    return Err(CoreError::config(
                        "covariance.kind",
                        "a data-table design is for regression families (logistic, poisson, linear-gaussian)",
                    ));
                }
                fam.check(cell.p)?;
            }
        }
        Ok(Plan {
            design: DesignUse::Own,
            metrics: cell.family.metrics().into_iter().map(|metric| PlannedMetric { metric, exact: false }).collect(),
            uses_schedule: true,
            risk_evaluations_per_iteration: 0,
        })
    }

    fn start<'a>(
        &'a self,
        cell: CellView<'a>,
        plan: &'a Plan,
        data: &'a ReplicateData,
        streams: Streams,
    ) -> Result<Box<dyn Trajectory + 'a>, CoreError> {
        let sizes = self.sizes(cell.n);
        let slots = plan.slots();
        match view(&cell)? {
            View::Regression(reg) => {
                let truth = if labelled_table(&cell) { self.table_truth(&cell, reg)? } else { data.beta()?.clone() };
                Ok(Box::new(RegressionTrajectory {
                    reg,
                    estimator: cell.estimator,
                    covariance: data.covariance(),
                    table: labelled_table(&cell),
                    truth,
                    previous: None,
                    sizes,
                    streams,
                    data,
                    slots,
                }))
            }
            View::Samples(family) => {
                let truth = family.truth(data.beta()?.as_ref(), data.covariance())?;
                Ok(Box::new(SampleTrajectory {
                    family,
                    covariance: data.covariance(),
                    truth,
                    previous: None,
                    sizes,
                    streams,
                }))
            }
        }
    }

    fn theory(&self, cell: &CellView<'_>) -> Result<Box<dyn CellTheory>, NoTheory> {
        let sizes = self.sizes(cell.n);
        match view(cell).map_err(crate::theory::no)? {
            View::Samples(fam) => fam.weighted_theory(sizes, cell.covariance),
            View::Regression(_) if cell.covariance.population().is_some() => Err(NoTheory::new(
                "a data table's labels are not drawn from the model; the first-order theory does not apply",
            )),
            View::Regression(reg) => {
                let metrics: Vec<MetricKind> = cell.family.metrics().iter().map(|m| m.kind).collect();
                let (variance, excess, k) = match reg.gaussian_noise() {
                    Some(noise) => {
                        if cell.estimator.ridge_penalty() != Some(0.0) || cell.n <= cell.p {
                            return Err(NoTheory::new("the first-order theory covers the unpenalised fit with n > p"));
                        }
                        let ratio = if noise.sigma > 0.0 {
                            (noise.synthetic_sigma / noise.sigma).powi(2)
                        } else {
                            return Err(NoTheory::new("σ = 0: nothing to predict"));
                        };
                        (noise.sigma * noise.sigma * cell.p as f64 / cell.n as f64, None, sizes.ratio() * ratio)
                    }
                    None => {
                        let glm = GlmInputs::from_view(cell)?;
                        (glm.variance, Some(glm.excess), sizes.ratio())
                    }
                };
                Ok(Box::new(WeightedGlmTheory { variance, excess, k, metrics }))
            }
        }
    }

    fn sample_sizes(&self, cell: &CellView<'_>) -> Option<SampleSizes> {
        Some(self.sizes(cell.n))
    }
}

/// First-order theory of a regression family under the weighted protocol
/// (docs/weighted.md §3): every metric is its single-fit value times P3's factor a_t.
#[derive(Debug, Clone)]
struct WeightedGlmTheory {
    /// Single-fit E‖θ̂ − θ‖²_Σ (σ²p/n, or tr(Σ I⁻¹)/n).
    variance: f64,
    /// Single-fit excess loss p/(2n) (non-Gaussian families).
    excess: Option<f64>,
    /// Effective k: n/m, times σ̃²/σ² for Gaussian labels.
    k: f64,
    metrics: Vec<MetricKind>,
}

impl CellTheory for WeightedGlmTheory {
    fn paths(&self, weights: &[f64]) -> Vec<Result<Path, NoTheory>> {
        let a = variance_factors_with_noise_ratio(weights, self.k);
        self.metrics
            .iter()
            .map(|kind| {
                let unit = match (kind, self.excess) {
                    (MetricKind::SigmaError, _) => self.variance,
                    (MetricKind::ExcessLoss, Some(e)) => e,
                    _ => return Err(NoTheory::new("no theory for this metric")),
                };
                Ok(a.iter().map(|a| Some(a * unit)).collect())
            })
            .collect()
    }

    fn limit(&self, w: f64) -> Result<f64, NoTheory> {
        if !(w > 0.0 && w <= 1.0) {
            return Err(NoTheory::new("the stationary limit needs 0 < w ≤ 1"));
        }
        Ok(collapse_theory::c_k(w, self.k) * self.variance)
    }

    fn optimal_weight(&self) -> Result<(f64, f64), NoTheory> {
        let w = optimal_w_noise_ratio(self.k).map_err(crate::theory::no)?;
        Ok((w, self.limit(w)?))
    }
}

/// Row weights scaled to sum to the rows passed (docs/weighted.md §1).
fn row_weights(w: f64, real: usize, synthetic: usize) -> Vec<f64> {
    let rows = (real + synthetic) as f64;
    let mut c = vec![rows * w / real.max(1) as f64; real];
    c.extend(std::iter::repeat_n(rows * (1.0 - w) / synthetic.max(1) as f64, synthetic));
    c
}

/// The rows of `a` above the rows of `b`.
fn stack(a: MatRef<'_, f64>, b: MatRef<'_, f64>) -> Mat<f64> {
    let ra = a.nrows();
    Mat::from_fn(ra + b.nrows(), a.ncols(), |i, j| if i < ra { a[(i, j)] } else { b[(i - ra, j)] })
}

struct RegressionTrajectory<'a> {
    reg: &'a dyn Regression,
    estimator: &'a dyn Estimator,
    covariance: &'a dyn Covariance,
    table: bool,
    truth: Col<f64>,
    previous: Option<Col<f64>>,
    sizes: SampleSizes,
    streams: Streams,
    data: &'a ReplicateData,
    slots: usize,
}

impl RegressionTrajectory<'_> {
    /// n real rows and labels of round t.
    fn real(&self, t: u64) -> Result<(Mat<f64>, Vec<f64>), CoreError> {
        let n = self.sizes.real;
        let mut rng = self.streams.rng(Purpose::Covariates, t);
        if self.table
            && let Some(pop) = self.covariance.population()
            && let Some(y) = pop.y.as_ref()
        {
            use collapse_core::rand::RngExt as _;
            let rows = pop.x.nrows();
            let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..rows)).collect();
            let x = Mat::from_fn(n, pop.x.ncols(), |i, j| pop.x[(idx[i], j)]);
            return Ok((x, idx.iter().map(|&i| y[i]).collect()));
        }
        let x = self.covariance.sample(n, &mut rng);
        let eta: Vec<f64> = matvec(x.as_ref(), self.truth.as_ref(), self.data.par()).iter().copied().collect();
        let mut y = vec![0.0; n];
        self.reg.draw_labels(&eta, Origin::Real, &mut self.streams.rng(Purpose::RealNoise, t), &mut y);
        Ok((x, y))
    }

    /// m synthetic rows and labels of round t from the previous fit.
    fn synthetic(&self, t: u64) -> Result<(Mat<f64>, Vec<f64>), CoreError> {
        let m = self.sizes.synthetic;
        let prev = self.previous.as_ref().ok_or_else(|| CoreError::numerical("weighted", "no previous fit"))?;
        let x = self.covariance.sample(m, &mut self.streams.rng(Purpose::Plugin(1), t));
        let eta: Vec<f64> = matvec(x.as_ref(), prev.as_ref(), self.data.par()).iter().copied().collect();
        let mut y = vec![0.0; m];
        self.reg.draw_labels(&eta, Origin::Synthetic, &mut self.streams.rng(Purpose::SyntheticNoise, t), &mut y);
        Ok((x, y))
    }
}

impl Trajectory for RegressionTrajectory<'_> {
    fn step(&mut self, t: usize, w: f64, out: &mut [f64]) -> Result<(), CoreError> {
        let w = if t == 0 { 1.0 } else { w };
        let tt = t as u64;
        // A group with weight 0 is not drawn (its draws have their own streams, so the
        // other group's numbers do not move).
        let real = if w > 0.0 { Some(self.real(tt)?) } else { None };
        let synthetic = if w < 1.0 { Some(self.synthetic(tt)?) } else { None };
        let (nr, ns) = (real.as_ref().map_or(0, |r| r.1.len()), synthetic.as_ref().map_or(0, |s| s.1.len()));
        let (x, y) = match (real, synthetic) {
            (Some(r), Some(s)) => (stack(r.0.as_ref(), s.0.as_ref()), [r.1, s.1].concat()),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => return Err(CoreError::numerical("weighted", "no samples")),
        };
        let c = row_weights(w, nr, ns);
        let (y, c) = (Col::from_fn(y.len(), |i| y[i]), Col::from_fn(c.len(), |i| c[i]));
        let input = FitInput {
            x: x.as_ref(),
            y: y.as_ref(),
            weights: Some(c.as_ref()),
            likelihood: self.reg.likelihood(),
            start: self.previous.as_ref().map(|b| b.as_ref()),
            par: self.data.par(),
        };
        let fit = self.estimator.fit(&input)?;
        self.reg.score(fit.as_ref(), self.truth.as_ref(), self.covariance, &mut out[..self.slots])?;
        self.previous = Some(fit);
        Ok(())
    }
}

struct SampleTrajectory<'a> {
    family: &'a dyn SampleFamily,
    covariance: &'a dyn Covariance,
    truth: Model,
    previous: Option<Model>,
    sizes: SampleSizes,
    streams: Streams,
}

impl Trajectory for SampleTrajectory<'_> {
    fn step(&mut self, t: usize, w: f64, out: &mut [f64]) -> Result<(), CoreError> {
        let w = if t == 0 { 1.0 } else { w };
        let tt = t as u64;
        let (n, m) = (self.sizes.real, self.sizes.synthetic);
        let real = if w > 0.0 {
            let mut rng = self.streams.rng(Purpose::Covariates, tt);
            Some(self.family.draw(&self.truth, Origin::Real, n, self.covariance, &mut rng)?)
        } else {
            None
        };
        let synthetic = if w < 1.0 {
            let prev = self.previous.as_ref().ok_or_else(|| CoreError::numerical("weighted", "no previous fit"))?;
            let mut rng = self.streams.rng(Purpose::SyntheticNoise, tt);
            Some(self.family.draw(prev, Origin::Synthetic, m, self.covariance, &mut rng)?)
        } else {
            None
        };
        let mut weights = Vec::with_capacity(n + m);
        if real.is_some() {
            weights.extend(std::iter::repeat_n(w / n as f64, n));
        }
        if synthetic.is_some() {
            weights.extend(std::iter::repeat_n((1.0 - w) / m as f64, m));
        }
        let samples = match (real, synthetic) {
            (Some(r), Some(s)) => stack(r.as_ref(), s.as_ref()),
            (Some(only), None) | (None, Some(only)) => only,
            (None, None) => return Err(CoreError::numerical("weighted", "no samples")),
        };
        let fit = self.family.fit(samples.as_ref(), &weights, self.previous.as_ref())?;
        self.family.score(&fit, &self.truth, out)?;
        self.previous = Some(fit);
        Ok(())
    }
}

collapse_core::register!(
    ProtocolPlugin,
    WeightedParams,
    "weighted",
    "Each round: n fresh real + m synthetic samples (fresh covariates), weighted w/n and (1 − w)/m (P3)"
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_from_m_or_k() {
        let ctx = BuildContext { n: 100, p: 1 };
        let both = WeightedParams { m: Some(10), k: Some(2.0) };
        assert_eq!(both.checked_build(&ctx).unwrap_err().field(), Some("k"));
        let e = WeightedParams { m: None, k: Some(0.0) }.checked_build(&ctx).unwrap_err();
        assert_eq!(e.field(), Some("k"));
        let e = WeightedParams { m: Some(0), k: None }.checked_build(&ctx).unwrap_err();
        assert_eq!(e.field(), Some("m"));
        let w = Weighted { m: None, k: Some(3.0), table_truth: Mutex::new(None) };
        assert_eq!(w.sizes(100), SampleSizes { real: 100, synthetic: 33 });
        let w = Weighted { m: None, k: None, table_truth: Mutex::new(None) };
        assert_eq!(w.sizes(100).synthetic, 100);
        let w = Weighted { m: Some(7), k: None, table_truth: Mutex::new(None) };
        assert_eq!(w.sizes(100).synthetic, 7);
    }

    /// Row weights sum to the rows passed and split w : 1 − w between the groups.
    #[test]
    fn row_weights_keep_the_penalty_per_sample() {
        let c = row_weights(0.3, 4, 6);
        assert!((c.iter().sum::<f64>() - 10.0).abs() < 1e-12);
        assert!((c[..4].iter().sum::<f64>() - 3.0).abs() < 1e-12);
        assert_eq!(row_weights(1.0, 5, 0), vec![1.0; 5]);
    }
}
