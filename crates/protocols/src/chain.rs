use std::sync::{Arc, Mutex};

use collapse_core::faer::{Col, Mat, MatRef, Par};
use collapse_core::rng::{Purpose, Rng, Streams, content_hash, fill_normal};
use collapse_core::serde_json;
use collapse_core::spectral::linalg::{matmul, matvec, t_matvec, truncated_svd};
use collapse_core::spectral::{Directions, Moments, NoiseDraws, RowSpace, SigmaForm, Simulation, Source, Step};
use collapse_core::{
    BuildContext, CellTheory, CellView, CoreError, Covariance, DesignUse, MetricKind, MetricSpec, NoTheory, ParamError,
    Params, Plan, PlannedMetric, Protocol, ReplicateData, RowSpaceMode, Trajectory, Tuning,
};
use rand::Rng as _;
use rand_distr::{ChiSquared, Distribution};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

use crate::chain_theory::{ChainInputs, ChainTheory};

/// P2's generational chain (docs/chains.md §1): generator k = 1..K fits its estimator to
/// T₀ samples labelled by generator k − 1 with noise σ₀ (generator 0 is the truth w₀);
/// at every generation k = 0..K (the iteration axis; k = 0 is clean data) a downstream
/// model — the scenario's `[estimator]` — is fitted on T = `design.n` samples labelled
/// by generator k with the family's noise σ, and scored by ‖ŵ − w₀‖²_Σ (`test_error`).
/// `generator_error` is ‖ŵ_k − w₀‖²_Σ of generator k itself and `lambda` the downstream
/// penalty used (tuned per generation with `tuned-ridge`, docs/chains.md §6).
///
/// Sizes: `design.p` is the dimension d and `design.n` the downstream sample size T; the
/// downstream design is the replicate's design (shared, with its factorization, by every
/// cell of the design group: a λ grid, tuned vs fixed λ, other generator settings) and
/// reused at every generation, as is its label noise. Generator designs are drawn by the
/// protocol, fresh at each generation or one per replicate (`generator_design`).
///
/// Paths (all exact in law, docs/chains.md §7): `wishart` for OLS generators (T₀ ≥ d, Σ
/// positive definite) draws XᵀX and XᵀE through the Bartlett decomposition, never the
/// T₀ × d design (O(d²) per generator instead of O(T₀d²)); `spectral` (a fixed generator
/// design) factorizes it once and runs the shared recursion of the core; `refit` draws
/// every generator design and fits it. `test_error_exact` and `generator_error_exact` are
/// E[· | downstream design, w₀] for OLS generators (averaging over generator designs and
/// all label noise; T₀ ≥ d + 2) and E[· | both designs, w₀] on the `spectral` path.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `generator_samples` | (required) | T₀ ≥ 1 | samples of every generator |
/// | `generator_noise_sd` | family σ | σ₀ ≥ 0 | label noise of the generators' data |
/// | `generator` | `ols` | `ols`, `min-norm`, `ridge` | generator estimator (`ols` needs T₀ ≥ d) |
/// | `generator_lambda` | 0 | λ₀ ≥ 0 | generator ridge penalty (only with `generator = "ridge"`) |
/// | `generator_design` | `fresh` | `fresh`, `fixed` | a new generator design per generation, or one per replicate |
/// | `path` | `auto` | `auto`, `wishart`, `spectral`, `refit` | how generators are simulated |
/// | `exact` | true | bool | also write the exact conditional twins (costs O(d r²) per replicate) |
///
/// Errors: a family without Gaussian labels or with a synthetic noise level (the chain's
/// generator noise is `generator_noise_sd`); a downstream estimator that is not a spectral
/// filter or `tuned-ridge`; a policy other than `replace`; `generator = "ols"` with
/// T₀ < d; `generator_lambda` > 0 without `generator = "ridge"`; `path = "wishart"`
/// without OLS generators or with a singular Σ; `path = "spectral"` with fresh generator
/// designs; `tuned-ridge` where the chain has no theory.
///
/// Reference: Dohmatob, Feng, Kempe (2024), *Model Collapse Demystified: The Case of
/// Regression*, arXiv 2402.07712.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GenerationalChainParams {
    /// Samples T₀ ≥ 1 of every generator.
    #[schemars(range(min = 1))]
    pub generator_samples: usize,
    /// Label noise σ₀ ≥ 0 of the generators' data; default: the family's σ.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub generator_noise_sd: Option<f64>,
    /// Generator estimator: `ols`, `min-norm` or `ridge`.
    #[serde(default = "ols")]
    pub generator: GeneratorFit,
    /// Generator ridge penalty λ₀ ≥ 0 (only with `generator = "ridge"`).
    #[serde(default)]
    #[schemars(range(min = 0.0))]
    pub generator_lambda: f64,
    /// `fresh` (a new design per generation) or `fixed` (one per replicate).
    #[serde(default = "fresh")]
    pub generator_design: GeneratorDesign,
    /// How generators are simulated: `auto`, `wishart`, `spectral` or `refit`.
    #[serde(default = "auto")]
    pub path: ChainPath,
    /// Also write the exact conditional twins.
    #[serde(default = "yes")]
    pub exact: bool,
}

/// The generators' estimator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorFit {
    /// Ordinary least squares (T₀ ≥ d).
    Ols,
    /// Minimum-norm least squares (interpolates when T₀ < d).
    MinNorm,
    /// Ridge with penalty `generator_lambda`.
    Ridge,
}

/// Where generator designs come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorDesign {
    /// A new design at every generation.
    Fresh,
    /// One design per replicate, reused by every generation.
    Fixed,
}

/// How generators are simulated.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum ChainPath {
    /// `wishart` for OLS generators with T₀ ≥ d and Σ positive definite, else `spectral`
    /// for a fixed generator design, else `refit`.
    Auto,
    /// Bartlett draws of XᵀX and XᵀE (OLS generators only).
    Wishart,
    /// One factorization of the fixed generator design and the shared recursion.
    Spectral,
    /// Draw and fit every generator.
    Refit,
}

fn ols() -> GeneratorFit {
    GeneratorFit::Ols
}
fn fresh() -> GeneratorDesign {
    GeneratorDesign::Fresh
}
fn auto() -> ChainPath {
    ChainPath::Auto
}
fn yes() -> bool {
    true
}

/// See [`GenerationalChainParams`].
#[derive(Debug)]
pub struct GenerationalChain {
    params: GenerationalChainParams,
    /// The tuned penalties of the last cell planned, keyed by a fingerprint of the cell.
    tuned: Mutex<Option<(u64, Arc<Vec<f64>>)>>,
}

impl Params for GenerationalChainParams {
    type Target = dyn Protocol;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Protocol>, ParamError> {
        if self.generator == GeneratorFit::Ols && self.generator_samples < ctx.p {
            return Err(ParamError::new(
                "generator",
                format!(
                    "`ols` needs generator_samples >= design.p, got T0 = {} < d = {}; use `min-norm` or `ridge`",
                    self.generator_samples, ctx.p
                ),
            ));
        }
        if self.generator_lambda > 0.0 && self.generator != GeneratorFit::Ridge {
            return Err(ParamError::new("generator_lambda", "applies only to generator = \"ridge\""));
        }
        if self.path == ChainPath::Wishart && self.generator != GeneratorFit::Ols {
            return Err(ParamError::new("path", "`wishart` simulates OLS generators only; use generator = \"ols\""));
        }
        if self.path == ChainPath::Spectral && self.generator_design != GeneratorDesign::Fixed {
            return Err(ParamError::new("path", "`spectral` needs generator_design = \"fixed\""));
        }
        Ok(Box::new(GenerationalChain { params: self.clone(), tuned: Mutex::new(None) }))
    }
    fn example() -> Self {
        GenerationalChainParams {
            generator_samples: 60,
            generator_noise_sd: Some(1.0),
            generator: GeneratorFit::Ols,
            generator_lambda: 0.0,
            generator_design: GeneratorDesign::Fresh,
            path: ChainPath::Auto,
            exact: true,
        }
    }
}

collapse_core::register!(
    ProtocolPlugin,
    GenerationalChainParams,
    "generational-chain",
    "P2's chain: generator k fits data labelled by generator k − 1; a downstream model is fitted on each generation's labels"
);

/// The simulation path a cell uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Sim {
    Wishart,
    Spectral,
    Refit,
}

/// Which exact twins a cell has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Twin {
    /// OLS generators: expectations over generator designs (docs/chains.md §7).
    Ols,
    /// Fixed generator design: conditional on it (docs/chains.md §7).
    Spectral,
}

fn positive_definite(c: &dyn Covariance) -> bool {
    c.eigenvalues().iter().all(|&t| t > 0.0 && t.is_finite())
}

impl GenerationalChain {
    fn sigma0(&self, sigma: f64) -> f64 {
        self.params.generator_noise_sd.unwrap_or(sigma)
    }

    fn sim(&self, cell: &CellView<'_>) -> Result<Sim, CoreError> {
        let p = &self.params;
        let wishart_ok = p.generator == GeneratorFit::Ols && positive_definite(cell.covariance);
        Ok(match p.path {
            ChainPath::Wishart if !wishart_ok => {
                return Err(CoreError::config(
                    "protocol.path",
                    "`wishart` needs a positive-definite Σ (the generators' Gram matrix must be invertible)",
                ));
            }
            ChainPath::Wishart => Sim::Wishart,
            ChainPath::Spectral => Sim::Spectral,
            ChainPath::Refit => Sim::Refit,
            ChainPath::Auto if wishart_ok => Sim::Wishart,
            ChainPath::Auto if p.generator_design == GeneratorDesign::Fixed => Sim::Spectral,
            ChainPath::Auto => Sim::Refit,
        })
    }

    fn twin(&self, cell: &CellView<'_>, sim: Sim) -> Option<Twin> {
        if !self.params.exact {
            return None;
        }
        if sim == Sim::Spectral {
            return Some(Twin::Spectral);
        }
        let ols = self.params.generator == GeneratorFit::Ols
            && self.params.generator_samples >= cell.p + 2
            && positive_definite(cell.covariance);
        ols.then_some(Twin::Ols)
    }

    /// Fingerprint of what the tuned penalties depend on.
    fn fingerprint(&self, cell: &CellView<'_>) -> u64 {
        let tau: f64 = cell.covariance.eigenvalues().iter().enumerate().map(|(i, t)| t * (1.0 + i as f64).ln()).sum();
        let shares: f64 = cell
            .signal
            .eigen_shares(cell.covariance)
            .unwrap_or_default()
            .iter()
            .enumerate()
            .map(|(i, s)| s * (1.0 + i as f64).sqrt())
            .sum();
        let noise = cell.family.regression().and_then(|r| r.gaussian_noise()).map(|n| n.sigma).unwrap_or(-1.0);
        content_hash(&format!(
            "{}|{}|{}|{:?}|{:?}|{tau:e}|{shares:e}|{noise:e}|{:e}",
            cell.n,
            cell.p,
            cell.iterations,
            cell.estimator.tuned_penalty(),
            serde_json::to_string(&self.params).unwrap_or_default(),
            cell.signal.radius_squared(cell.covariance)
        ))
    }

    /// The downstream penalty of each generation: tuned from the theory for
    /// `tuned-ridge`, the estimator's own otherwise (None for a non-ridge filter).
    fn penalties(&self, cell: &CellView<'_>) -> Result<Option<Arc<Vec<f64>>>, CoreError> {
        let Some(tuning) = cell.estimator.tuned_penalty() else {
            return Ok(cell.estimator.ridge_penalty().map(|l| Arc::new(vec![l; cell.iterations + 1])));
        };
        let key = self.fingerprint(cell);
        let mut slot = self.tuned.lock().map_err(|_| CoreError::numerical("tuned penalty", "a lock was poisoned"))?;
        if let Some((k, path)) = slot.as_ref()
            && *k == key
        {
            return Ok(Some(path.clone()));
        }
        let inputs = ChainInputs::from_view(cell, self)
            .map_err(|r| CoreError::config("estimator.kind", format!("`tuned-ridge` needs the chain's theory: {r}")))?;
        let mut path = Vec::with_capacity(cell.iterations + 1);
        for k in 0..=cell.iterations {
            let lambda = match (tuning, path.first()) {
                (Tuning::FirstIteration, Some(&first)) => first,
                _ => inputs.tuned(k as u32).map_err(|r| {
                    CoreError::config("estimator.kind", format!("`tuned-ridge` cannot tune generation {k}: {r}"))
                })?,
            };
            path.push(lambda);
        }
        let path = Arc::new(path);
        *slot = Some((key, path.clone()));
        Ok(Some(path))
    }

    pub(crate) fn params(&self) -> &GenerationalChainParams {
        &self.params
    }
}

impl Protocol for GenerationalChain {
    fn plan(&self, cell: &CellView<'_>) -> Result<Plan, CoreError> {
        let reg = cell.family.regression().ok_or_else(|| {
            CoreError::config(
                "family.kind",
                "the generational chain needs a regression family (labels given covariates)",
            )
        })?;
        let noise = reg.gaussian_noise().ok_or_else(|| {
            CoreError::config("family.kind", "the generational chain needs Gaussian labels (linear-gaussian)")
        })?;
        if noise.synthetic_sigma.to_bits() != noise.sigma.to_bits() {
            return Err(CoreError::config(
                "family.synthetic_noise_sd",
                "the generational chain sets the generators' noise with protocol.generator_noise_sd; remove it",
            ));
        }
        if cell.estimator.spectral().is_none() && cell.estimator.tuned_penalty().is_none() {
            return Err(CoreError::config(
                "estimator.kind",
                "the downstream model of the generational chain must be a spectral filter (ridge, min-norm, ols, pcr) or tuned-ridge",
            ));
        }
        if !crate::fresh_design::replaces(cell) {
            return Err(CoreError::config(
                "policy.kind",
                "the generational chain trains each generation on the previous generator's labels only; use `replace`",
            ));
        }
        let sim = self.sim(cell)?;
        let twin = self.twin(cell, sim).is_some();
        let mut metrics = vec![
            PlannedMetric {
                metric: MetricSpec::new(
                    "test_error",
                    MetricKind::SigmaError,
                    "downstream error ‖ŵ_pred − w0‖²_Σ of the model fitted on generation k's labels",
                ),
                exact: twin,
            },
            PlannedMetric {
                metric: MetricSpec::new("generator_error", MetricKind::SigmaError, "‖ŵ_k − w0‖²_Σ of generator k"),
                exact: twin,
            },
        ];
        if self.penalties(cell)?.is_some() {
            metrics.push(PlannedMetric {
                metric: MetricSpec::new("lambda", MetricKind::Other, "the downstream ridge penalty at generation k"),
                exact: false,
            });
        }
        Ok(Plan {
            design: DesignUse::Fixed(RowSpaceMode::Factorize),
            metrics,
            uses_schedule: false,
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
        let noise = cell
            .family
            .regression()
            .and_then(|r| r.gaussian_noise())
            .ok_or_else(|| CoreError::numerical("generational chain", "labels are not Gaussian"))?;
        let sim = self.sim(&cell)?;
        let twin = if plan.metrics.first().is_some_and(|m| m.exact) { self.twin(&cell, sim) } else { None };
        let penalties = self.penalties(&cell)?;
        let basis = data.shared(content_hash("generational-chain|downstream"), || downstream_basis(data))?;
        let moments = match twin {
            Some(_) => Some(data.shared(content_hash("generational-chain|moments"), || {
                DownstreamMoments::new(&basis, data.covariance(), data.par())
            })?),
            None => None,
        };
        // Streams identify the replicate's randomness (tests run several trajectories on
        // one design with different streams); the chain does not depend on the cell's
        // downstream estimator, so cells that differ only there share it.
        let id = streams.rng(Purpose::Plugin(CHAIN_PURPOSE), 0).next_u64();
        let sigma0 = self.sigma0(noise.sigma);
        let key = content_hash(&format!(
            "generational-chain|chain|{id}|{}|{}|{sim:?}|{sigma0:e}|{twin:?}",
            serde_json::to_string(&self.params).unwrap_or_default(),
            cell.iterations
        ));
        let chain = data.shared(key, || GeneratorChain::run(self, &cell, data, &streams, sim, sigma0, twin))?;
        let cross = match (twin, chain.spectral.as_ref()) {
            (Some(Twin::Spectral), Some(sp)) => {
                let key = content_hash(&format!("generational-chain|cross|{key}"));
                Some(data.shared(key, || Ok(matmul(basis.v.transpose(), sp.v.as_ref(), data.par())))?)
            }
            _ => None,
        };
        let mut xi = vec![0.0; basis.d.len()];
        fill_normal(&mut streams.rng(Purpose::RealNoise, 0), 1.0, &mut xi);
        let filter = match penalties.as_ref() {
            Some(p) => Filter::Ridge(p.clone()),
            None => {
                let f =
                    cell.estimator.spectral().ok_or_else(|| CoreError::numerical("downstream", "no spectral form"))?;
                Filter::Fixed(Directions::new(&basis.rs, f.gains(&basis.d, basis.rs.n())?)?)
            }
        };
        let per_generation = if twin == Some(Twin::Ols) {
            sigma0 * sigma0 / (self.params.generator_samples as f64 - cell.p as f64 - 1.0)
        } else {
            0.0
        };
        Ok(Box::new(ChainTrajectory {
            data,
            basis,
            moments,
            chain,
            cross,
            twin,
            xi,
            sigma: noise.sigma,
            filter,
            per_generation,
            lambda_slot: penalties.is_some(),
            spread: None,
        }))
    }

    fn theory(&self, cell: &CellView<'_>) -> Result<Box<dyn CellTheory>, NoTheory> {
        let lambdas = self.penalties(cell).map_err(|e| NoTheory::new(e.to_string()))?;
        let inputs = ChainInputs::from_view(cell, self)?;
        Ok(Box::new(ChainTheory::new(inputs, lambdas.map(|l| l.as_ref().clone()))))
    }
}

/// The `Purpose::Plugin` code of the chain's own streams ("chn").
const CHAIN_PURPOSE: u32 = 0x63_686e;

/// The downstream design's row space with V, and its dimensions.
#[derive(Debug)]
struct Basis {
    rs: RowSpace,
    d: Vec<f64>,
    v: Mat<f64>,
}

/// Factorize the replicate's (downstream) design once, keeping V (docs/chains.md §7).
fn downstream_basis(data: &ReplicateData) -> Result<Basis, CoreError> {
    let beta = data.beta()?;
    let apply = |m: MatRef<'_, f64>| data.covariance().apply(m);
    let rs = RowSpace::factorize(data.design(), beta, SigmaForm::General(&apply), data.par())?;
    let v = rs.v().ok_or_else(|| CoreError::numerical("downstream design", "no right singular vectors"))?.clone();
    let d = rs.d.clone();
    Ok(Basis { rs, d, v })
}

/// M = VᵀΣV and Q = VᵀΣ⁻¹V of the downstream design, for the exact twins.
#[derive(Debug)]
struct DownstreamMoments {
    m: Mat<f64>,
    q: Mat<f64>,
}

impl DownstreamMoments {
    fn new(basis: &Basis, cov: &dyn Covariance, par: Par) -> Result<Self, CoreError> {
        let v = &basis.v;
        let sv = cov.apply(v.as_ref());
        let m = matmul(v.transpose(), sv.as_ref(), par);
        let tau = cov.eigenvalues();
        let q = if tau.iter().all(|&t| t > 0.0) {
            let mut siv = Mat::<f64>::zeros(v.nrows(), v.ncols());
            for j in 0..v.ncols() {
                let mut c = cov.to_eigenbasis(v.col(j));
                for (ci, t) in c.iter_mut().zip(&tau) {
                    *ci /= t;
                }
                let back = cov.to_standard_basis(c.as_ref());
                for i in 0..v.nrows() {
                    siv[(i, j)] = back[i];
                }
            }
            matmul(v.transpose(), siv.as_ref(), par)
        } else {
            Mat::zeros(0, 0)
        };
        Ok(DownstreamMoments { m, q })
    }

    /// tr(A M A Q) = Σ_ij a_i M_ij a_j Q_ji.
    fn trace_amaq(&self, a: &[f64]) -> f64 {
        let r = a.len();
        let mut s = 0.0;
        for j in 0..r {
            let (mc, qc) = (self.m.col(j), self.q.col(j));
            for i in 0..r {
                s += a[i] * mc[i] * a[j] * qc[i];
            }
        }
        s
    }
}

/// The fixed generator design's factorization and the exact moments of the chain in
/// its coordinates (docs/chains.md §7).
#[derive(Debug)]
struct SpectralChain {
    v: Mat<f64>,
    /// E[b_k] and Var(b_k) per generation (k ≥ 1 at index k; index 0 unused).
    mean: Vec<Vec<f64>>,
    var: Vec<Vec<f64>>,
}

/// One replicate's generators ŵ_0 = w0, …, ŵ_K with their errors.
#[derive(Debug)]
struct GeneratorChain {
    w: Vec<Col<f64>>,
    error: Vec<f64>,
    exact: Vec<f64>,
    spectral: Option<SpectralChain>,
}

/// Gains of a generator fit on singular values `d` of a design with `n` rows.
fn generator_gains(fit: GeneratorFit, lambda: f64, d: &[f64], n: usize) -> Vec<f64> {
    let nl = if fit == GeneratorFit::Ridge { n as f64 * lambda } else { 0.0 };
    d.iter().map(|&d| d / (d * d + nl)).collect()
}

impl GeneratorChain {
    fn run(
        protocol: &GenerationalChain,
        cell: &CellView<'_>,
        data: &ReplicateData,
        streams: &Streams,
        sim: Sim,
        sigma0: f64,
        twin: Option<Twin>,
    ) -> Result<Self, CoreError> {
        let w0 = data.beta()?.clone();
        let cov = data.covariance();
        let k_max = cell.iterations;
        let mut chain = GeneratorChain { w: vec![w0.clone()], error: vec![0.0], exact: vec![0.0], spectral: None };
        let p = protocol.params();
        match sim {
            Sim::Wishart => {
                let t0 = p.generator_samples;
                let d = cell.p;
                let tau = cov.eigenvalues();
                let whiten = |x: &[f64]| -> Col<f64> {
                    // Σ^{-1/2} x through the eigenbasis.
                    let c = cov.to_eigenbasis(Col::from_fn(d, |i| x[i]).as_ref());
                    let c = Col::from_fn(d, |i| c[i] / tau[i].sqrt());
                    cov.to_standard_basis(c.as_ref())
                };
                let noise = |k: usize| {
                    let mut z = vec![0.0; d];
                    fill_normal(&mut streams.rng(Purpose::SyntheticNoise, k as u64), 1.0, &mut z);
                    z
                };
                let mut offset = Col::<f64>::zeros(d);
                match p.generator_design {
                    GeneratorDesign::Fixed => {
                        // N_k = σ0 Σ^{-1/2} L^{-T} (z_1 + … + z_k) with one Bartlett factor L.
                        let mut rhs = vec![vec![0.0; d]; k_max];
                        let mut acc = vec![0.0; d];
                        for (k, slot) in rhs.iter_mut().enumerate() {
                            for (a, z) in acc.iter_mut().zip(noise(k + 1)) {
                                *a += z;
                            }
                            slot.clone_from(&acc);
                        }
                        let mut rng = streams.rng(Purpose::Covariates, 0);
                        bartlett_solve(t0, d, &mut rng, &mut rhs)?;
                        for x in &rhs {
                            let n = whiten(x);
                            chain.w.push(Col::from_fn(d, |i| w0[i] + sigma0 * n[i]));
                        }
                    }
                    GeneratorDesign::Fresh => {
                        for k in 1..=k_max {
                            let mut rhs = vec![noise(k)];
                            let mut rng = streams.rng(Purpose::Covariates, k as u64);
                            bartlett_solve(t0, d, &mut rng, &mut rhs)?;
                            let n = whiten(&rhs[0]);
                            offset = Col::from_fn(d, |i| offset[i] + sigma0 * n[i]);
                            chain.w.push(Col::from_fn(d, |i| w0[i] + offset[i]));
                        }
                    }
                }
            }
            Sim::Spectral => {
                let mut rng = streams.rng(Purpose::Covariates, 0);
                let x = cov.sample(p.generator_samples, &mut rng);
                let apply = |m: MatRef<'_, f64>| cov.apply(m);
                let rs = RowSpace::factorize(x.as_ref(), &w0, SigmaForm::General(&apply), data.par())?;
                let v = rs.v().ok_or_else(|| CoreError::numerical("generator design", "no V"))?.clone();
                let dirs = Directions::new(&rs, generator_gains(p.generator, p.generator_lambda, &rs.d, rs.n()))?;
                let mut walk = Simulation::new(&rs, NoiseDraws::Projected, &[])?;
                let mut moments = Moments::new(dirs.len(), &[]);
                let mut mean = vec![Vec::new()];
                let mut var = vec![Vec::new()];
                for k in 1..=k_max {
                    // Generator k refits the fixed design on labels of generator k − 1:
                    // the fresh-label recursion at w = 0 (docs/chains.md §7).
                    let noise = [(Source::new(Purpose::SyntheticNoise, k), sigma0)];
                    let step = if k == 1 {
                        Step { keep: 0.0, feedback: 0.0, signal: 1.0, noise: &noise }
                    } else {
                        Step { keep: 0.0, feedback: 1.0, signal: 0.0, noise: &noise }
                    };
                    walk.step(&rs, &dirs, streams, &step);
                    moments.step(&dirs, &rs.theta, &step);
                    let b = Col::from_fn(dirs.len(), |i| walk.coords()[i]);
                    chain.w.push(matvec(v.as_ref(), b.as_ref(), data.par()));
                    chain.error.push(rs.risk_of_coords(walk.coords(), data.par()));
                    if twin.is_some() {
                        chain.exact.push(moments.risk(&rs, data.par()));
                    }
                    mean.push(moments.mean().to_vec());
                    var.push(moments.variance().to_vec());
                }
                chain.spectral = Some(SpectralChain { v, mean, var });
                return Ok(chain);
            }
            Sim::Refit => {
                for k in 1..=k_max {
                    let it = if p.generator_design == GeneratorDesign::Fixed { 0 } else { k as u64 };
                    let x = cov.sample(p.generator_samples, &mut streams.rng(Purpose::Covariates, it));
                    let prev = chain.w.last().cloned().unwrap_or_else(|| w0.clone());
                    let mut y = matvec(x.as_ref(), prev.as_ref(), data.par());
                    let mut e = vec![0.0; y.nrows()];
                    fill_normal(&mut streams.rng(Purpose::SyntheticNoise, k as u64), sigma0, &mut e);
                    for (yi, ei) in y.iter_mut().zip(&e) {
                        *yi += ei;
                    }
                    let svd = truncated_svd(x.as_ref(), data.par())?;
                    let g = generator_gains(p.generator, p.generator_lambda, &svd.d, x.nrows());
                    let uy = t_matvec(svd.u.as_ref(), y.as_ref(), data.par());
                    let coef = Col::from_fn(g.len(), |i| g[i] * uy[i]);
                    chain.w.push(matvec(svd.v.as_ref(), coef.as_ref(), data.par()));
                }
            }
        }
        // Realized errors; the OLS twin is k σ0² d/(T0 − d − 1) (docs/chains.md §2).
        for k in 1..chain.w.len() {
            let e = &chain.w[k] - &w0;
            chain.error.push(cov.quad_form(e.as_ref()));
            if twin == Some(Twin::Ols) {
                let d = cell.p as f64;
                chain.exact.push(k as f64 * sigma0 * sigma0 * d / (p.generator_samples as f64 - d - 1.0));
            }
        }
        Ok(chain)
    }
}

/// Solve Lᵀ X = R in place for a Bartlett factor L of a Wishart_d(T₀, I) matrix,
/// generating L one column at a time from the last (docs/chains.md §7): L_ii = √χ²(T₀ − i)
/// (0-based i), L_ji ~ N(0, 1) for j > i, independent. Back substitution needs column i
/// when it reaches row i, so L is never stored: O(d·cols) memory, d² normals.
fn bartlett_solve(t0: usize, d: usize, rng: &mut Rng, rhs: &mut [Vec<f64>]) -> Result<(), CoreError> {
    if t0 < d {
        return Err(CoreError::numerical("wishart path", format!("needs T0 >= d, got {t0} < {d}")));
    }
    if rhs.is_empty() {
        return Ok(());
    }
    let mut col = vec![0.0; d];
    for i in (0..d).rev() {
        let dist = ChiSquared::new((t0 - i) as f64)
            .map_err(|e| CoreError::numerical("wishart path", format!("χ²({}): {e}", t0 - i)))?;
        let lii = dist.sample(rng).sqrt();
        fill_normal(rng, 1.0, &mut col[i + 1..]);
        if !(lii > 0.0 && lii.is_finite()) {
            return Err(CoreError::numerical("wishart path", "a zero pivot of the Bartlett factor"));
        }
        for x in rhs.iter_mut() {
            let s: f64 = col[i + 1..].iter().zip(&x[i + 1..]).map(|(l, xj)| l * xj).sum();
            x[i] = (x[i] - s) / lii;
        }
    }
    Ok(())
}

/// The downstream filter of a cell.
#[derive(Debug)]
enum Filter {
    /// Ridge with a penalty per generation.
    Ridge(Arc<Vec<f64>>),
    /// A fixed spectral filter (PCR, ...).
    Fixed(Directions),
}

/// c_j = (a ⊙ P_j)ᵀ M (a ⊙ P_j) for every generator direction j (docs/chains.md §7), as the
/// column sums of W ⊙ (M W) with W = A P; kept in `cache` while the filter is unchanged.
fn spread_weights(
    cache: &mut Option<(Vec<u64>, Vec<f64>)>,
    m: &DownstreamMoments,
    p: &Mat<f64>,
    a: &[f64],
    par: Par,
) -> Vec<f64> {
    let key: Vec<u64> = a.iter().map(|x| x.to_bits()).collect();
    if let Some((k, c)) = cache.as_ref()
        && *k == key
    {
        return c.clone();
    }
    let w = Mat::<f64>::from_fn(p.nrows(), p.ncols(), |i, j| a[i] * p[(i, j)]);
    let mw = matmul(m.m.as_ref(), w.as_ref(), par);
    let c: Vec<f64> = (0..w.ncols()).map(|j| w.col(j).iter().zip(mw.col(j).iter()).map(|(x, y)| x * y).sum()).collect();
    *cache = Some((key, c.clone()));
    c
}

struct ChainTrajectory<'a> {
    data: &'a ReplicateData,
    basis: Arc<Basis>,
    moments: Option<Arc<DownstreamMoments>>,
    chain: Arc<GeneratorChain>,
    cross: Option<Arc<Mat<f64>>>,
    twin: Option<Twin>,
    xi: Vec<f64>,
    sigma: f64,
    filter: Filter,
    per_generation: f64,
    lambda_slot: bool,
    spread: Option<(Vec<u64>, Vec<f64>)>,
}

impl ChainTrajectory<'_> {
    /// ‖V x − w0‖²_Σ for row-space coordinates x.
    fn risk(&self, x: &[f64]) -> f64 {
        self.basis.rs.risk_of_coords(x, self.data.par())
    }
}

impl Trajectory for ChainTrajectory<'_> {
    fn step(&mut self, t: usize, _w: f64, out: &mut [f64]) -> Result<(), CoreError> {
        let par = self.data.par();
        let basis = &self.basis;
        let owned;
        let dirs = match &self.filter {
            Filter::Fixed(d) => d,
            Filter::Ridge(l) => {
                let nl = basis.rs.n() as f64 * l[t];
                owned = Directions::new(&basis.rs, basis.d.iter().map(|&d| d / (d * d + nl)).collect())?;
                &owned
            }
        };
        // Coordinates of generator t in the downstream row space: Vᵀŵ_t.
        let w =
            self.chain.w.get(t).ok_or_else(|| CoreError::numerical("generational chain", "generation out of range"))?;
        let proj = t_matvec(basis.v.as_ref(), w.as_ref(), par);
        let coords: Vec<f64> =
            (0..dirs.len()).map(|i| dirs.a[i] * proj[i] + self.sigma * dirs.g[i] * self.xi[i]).collect();
        let mut j = 0;
        out[j] = self.risk(&coords);
        j += 1;
        let exact_test = match (self.twin, self.moments.as_ref()) {
            (Some(twin), Some(m)) => {
                let variance: f64 = (0..dirs.len())
                    .map(|i| basis.rs.m_diag()[i] * dirs.g[i] * dirs.g[i] * self.sigma * self.sigma)
                    .sum();
                let collapse_and_mean = match twin {
                    Twin::Ols => {
                        let mean: Vec<f64> = (0..dirs.len()).map(|i| dirs.a[i] * basis.rs.theta[i]).collect();
                        self.risk(&mean) + t as f64 * self.per_generation * m.trace_amaq(&dirs.a)
                    }
                    Twin::Spectral => {
                        let sp =
                            self.chain.spectral.as_ref().ok_or_else(|| CoreError::numerical("twin", "no chain"))?;
                        let p: &Mat<f64> =
                            self.cross.as_deref().ok_or_else(|| CoreError::numerical("twin", "no cross"))?;
                        if t == 0 {
                            let mean: Vec<f64> = (0..dirs.len()).map(|i| dirs.a[i] * basis.rs.theta[i]).collect();
                            self.risk(&mean)
                        } else {
                            let mu = Col::from_fn(sp.mean[t].len(), |i| sp.mean[t][i]);
                            let pm = matvec(p.as_ref(), mu.as_ref(), par);
                            let mean: Vec<f64> = (0..dirs.len()).map(|i| dirs.a[i] * pm[i]).collect();
                            let weights = spread_weights(&mut self.spread, m, p, &dirs.a, par);
                            let spread: f64 = weights.iter().zip(&sp.var[t]).map(|(c, v)| c * v).sum();
                            self.risk(&mean) + spread
                        }
                    }
                };
                Some(collapse_and_mean + variance)
            }
            _ => None,
        };
        if let Some(e) = exact_test {
            out[j] = e;
            j += 1;
        }
        out[j] = self.chain.error[t];
        j += 1;
        if self.twin.is_some() {
            out[j] = self.chain.exact[t];
            j += 1;
        }
        if self.lambda_slot
            && let Filter::Ridge(l) = &self.filter
        {
            out[j] = l[t];
        }
        Ok(())
    }
}
