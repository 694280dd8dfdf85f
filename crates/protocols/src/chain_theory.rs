//! The theory of a generational-chain cell (docs/chains.md), built from the cell's typed
//! plugins: the covariance spectrum H, the signal distribution G, the family's noise σ, the
//! downstream penalty (or the tuned one) and the protocol's generator settings.
//!
//! * `test_error`, OLS generators (T₀ ≥ d + 2): the exact finite-T expectation
//!   σ²d/(T − d − 1) + kσ₀²d/(T₀ − d − 1) for an OLS downstream fit (docs/chains.md §2),
//!   the deterministic equivalent of docs/chains.md §4 for ridge and min-norm.
//! * `generator_error`: kσ₀²d/(T₀ − d − 1) for OLS generators (exact); for min-norm
//!   generators with T₀ < d − 1 and Σ = I, (1 − ρᵏ)[r² + σ₀²T₀/((d − T₀ − 1)(1 − ρ))],
//!   ρ = T₀/d, with fresh designs and r²(1 − ρ) + kσ₀²T₀/(d − T₀ − 1) with a fixed one
//!   (docs/chains.md §3, exact).

use collapse_core::{CellTheory, CellView, NoTheory, Path};
use collapse_theory::{
    ChainEquivalent, Spectrum, chain_ols_error, chain_overparam_error, chain_overparam_fixed_error, ols_generator_scale,
};

use crate::chain::{GenerationalChain, GeneratorDesign, GeneratorFit};

use crate::theory::no;

/// What the chain's theory predicts from.
#[derive(Debug, Clone)]
pub struct ChainInputs {
    h: Spectrum,
    g: Spectrum,
    d: usize,
    t: usize,
    t0: usize,
    r2: f64,
    sigma2: f64,
    sigma0_2: f64,
    generator: GeneratorFit,
    generator_lambda: f64,
    design: GeneratorDesign,
    isotropic: bool,
    iterations: usize,
}

impl ChainInputs {
    /// Read the inputs off a cell of `protocol`.
    pub fn from_view(view: &CellView<'_>, protocol: &GenerationalChain) -> Result<Self, NoTheory> {
        let noise = view
            .family
            .regression()
            .and_then(|r| r.gaussian_noise())
            .ok_or_else(|| no("the family's labels are not Gaussian"))?;
        let taus = view.covariance.eigenvalues();
        let shares = view
            .signal
            .eigen_shares(view.covariance)
            .ok_or_else(|| no("the signal cannot say how ‖w0‖² spreads over Σ's eigenbasis"))?;
        let p = protocol.params();
        let sigma0 = p.generator_noise_sd.unwrap_or(noise.sigma);
        Ok(ChainInputs {
            h: Spectrum::from_eigenvalues(&taus).map_err(no)?,
            g: Spectrum::from_atoms(&taus, &shares).map_err(no)?,
            d: view.p,
            t: view.n,
            t0: p.generator_samples,
            r2: view.signal.radius_squared(view.covariance),
            sigma2: noise.sigma * noise.sigma,
            sigma0_2: sigma0 * sigma0,
            generator: p.generator,
            generator_lambda: p.generator_lambda,
            design: p.generator_design,
            isotropic: view.covariance.is_isotropic(),
            iterations: view.iterations,
        })
    }

    fn ols_generators(&self) -> Result<f64, NoTheory> {
        if self.generator != GeneratorFit::Ols {
            return Err(no("the downstream theory covers OLS generators (docs/chains.md §4)"));
        }
        ols_generator_scale(self.d, self.t0, self.sigma0_2).map_err(no)
    }

    fn equivalent(&self) -> Result<ChainEquivalent, NoTheory> {
        let per = self.ols_generators()?;
        ChainEquivalent::new(self.h.clone(), self.g.clone(), self.d, self.t, self.r2, self.sigma2, per).map_err(no)
    }

    /// The downstream penalty minimising the predicted error after `k` generations
    /// (docs/chains.md §6).
    pub fn tuned(&self, k: u32) -> Result<f64, NoTheory> {
        Ok(self.equivalent()?.tuned(k).map_err(no)?.0)
    }

    fn test_error(&self, k: usize, lambda: f64) -> Result<f64, NoTheory> {
        self.ols_generators()?;
        let k32 = u32::try_from(k).map_err(no)?;
        if lambda == 0.0 && self.t >= self.d + 2 {
            return chain_ols_error(self.d, self.t, self.t0, self.sigma2, self.sigma0_2, k32).map_err(no);
        }
        Ok(self.equivalent()?.terms(k32, lambda).map_err(no)?.total())
    }

    fn generator_error(&self, k: usize) -> Result<f64, NoTheory> {
        let k32 = u32::try_from(k).map_err(no)?;
        if self.generator == GeneratorFit::Ols {
            return Ok(k as f64 * ols_generator_scale(self.d, self.t0, self.sigma0_2).map_err(no)? * self.d as f64);
        }
        let min_norm = self.generator == GeneratorFit::MinNorm || self.generator_lambda == 0.0;
        if !(min_norm && self.isotropic && self.d > self.t0 + 1) {
            return Err(no("the generator theory covers OLS, and min-norm with T0 < d − 1 and Σ = I"));
        }
        match self.design {
            GeneratorDesign::Fresh => chain_overparam_error(self.d, self.t0, self.r2, self.sigma0_2, k32).map_err(no),
            GeneratorDesign::Fixed => {
                chain_overparam_fixed_error(self.d, self.t0, self.r2, self.sigma0_2, k32).map_err(no)
            }
        }
    }
}

/// The theory of a generational-chain cell (module docs).
#[derive(Debug, Clone)]
pub struct ChainTheory {
    inputs: ChainInputs,
    /// The downstream penalty per generation (None: not a ridge).
    lambdas: Option<Vec<f64>>,
}

impl ChainTheory {
    /// The theory with the downstream penalties of each generation.
    pub fn new(inputs: ChainInputs, lambdas: Option<Vec<f64>>) -> Self {
        ChainTheory { inputs, lambdas }
    }

    fn path(&self, len: usize, f: impl Fn(usize) -> Result<f64, NoTheory>) -> Result<Path, NoTheory> {
        (0..len).map(|k| f(k).map(Some)).collect()
    }
}

impl CellTheory for ChainTheory {
    fn paths(&self, weights: &[f64]) -> Vec<Result<Path, NoTheory>> {
        let len = weights.len();
        let test = match &self.lambdas {
            Some(l) => self.path(len, |k| self.inputs.test_error(k, l[k.min(l.len() - 1)])),
            None => Err(no("no theory for this downstream estimator (ridge, min-norm, ols and tuned-ridge have one)")),
        };
        let mut out = vec![test, self.path(len, |k| self.inputs.generator_error(k))];
        if self.lambdas.is_some() {
            out.push(Err(no("the penalty is an input of the downstream fit, not a prediction")));
        }
        out
    }

    fn limit(&self, _w: f64) -> Result<f64, NoTheory> {
        Err(no("the chain has no stationary limit: its error grows with the generations"))
    }

    fn optimal_weight(&self) -> Result<(f64, f64), NoTheory> {
        Err(no("the chain has no mixing weight"))
    }

    fn at_penalty(&self, lambda: f64) -> Result<Box<dyn CellTheory>, NoTheory> {
        Ok(Box::new(ChainTheory {
            inputs: self.inputs.clone(),
            lambdas: Some(vec![lambda; self.inputs.iterations + 1]),
        }))
    }
}
