//! The extension points: object-safe traits that plugins implement.
//!
//! The engine owns the loop (cells, replicates, iterations, parallelism, results). A
//! plugin fills in one step: a [`Covariance`] samples designs and exposes Σ's
//! eigen-structure, a [`Signal`] draws β, an [`Estimator`] fits, a [`Schedule`] gives
//! the real-data weight of each iteration, and a [`Setting`] turns the previous
//! iteration's state into the next one. Randomness always comes in as an argument.

use std::fmt::Debug;

use faer::{Col, ColRef, Mat, MatRef};

use crate::error::CoreError;
use crate::replicate::{Outcome, ReplicateData, RowSpaceMode};
use crate::rng::{Rng, Streams};

/// A feature covariance Σ = Q diag(τ) Qᵀ and how to sample features from it.
///
/// Implementations keep Σ structured (identity, diagonal, rank-one plus identity,
/// Toeplitz) and avoid dense p × p matrices where they can.
pub trait Covariance: Send + Sync + Debug {
    /// The dimension p.
    fn dim(&self) -> usize;
    /// Eigenvalues τ_1 ≥ τ_2 ≥ … ≥ τ_p (with multiplicity, descending).
    fn eigenvalues(&self) -> Vec<f64>;
    /// Coordinates of `v` in the eigenbasis, Qᵀv, ordered like [`Self::eigenvalues`].
    fn to_eigenbasis(&self, v: ColRef<'_, f64>) -> Col<f64>;
    /// The vector with eigen-coordinates `c`, Qc.
    fn to_standard_basis(&self, c: ColRef<'_, f64>) -> Col<f64>;
    /// Σ·M for a p × k matrix M.
    fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64>;
    /// vᵀΣv.
    fn quad_form(&self, v: ColRef<'_, f64>) -> f64 {
        let sv = self.apply(v.as_mat());
        v.iter().zip(sv.col(0).iter()).map(|(a, b)| a * b).sum()
    }
    /// Draw an n × p design whose rows are iid N(0, Σ), i.e. X = Z Σ^{1/2} in law.
    fn sample(&self, n: usize, rng: &mut Rng) -> Mat<f64>;
    /// True when Σ = I (enables O(r) risk evaluation and exact shortcuts).
    fn is_isotropic(&self) -> bool {
        false
    }
    /// Σ as a scaled identity plus a few rank-one terms, Σ = a·I + Σ_k c_k q_k q_kᵀ, when
    /// the model has that form (isotropic, spiked, equicorrelated). Risk evaluation then
    /// costs O(r·K) per iteration and never needs the p × r right singular vectors.
    fn low_rank_form(&self) -> Option<LowRankForm> {
        None
    }
}

/// Σ = scale·I + Σ_k weights[k]·q_k q_kᵀ.
#[derive(Debug, Clone, PartialEq)]
pub struct LowRankForm {
    /// The multiple a of the identity.
    pub scale: f64,
    /// The rank-one terms (c_k, q_k), q_k ∈ R^p.
    pub terms: Vec<(f64, Col<f64>)>,
}

impl LowRankForm {
    /// True when the directions q_k are orthonormal (to 1e-10), as the Bartlett
    /// sampler of the row space requires.
    pub fn has_orthonormal_terms(&self) -> bool {
        self.terms.iter().enumerate().all(|(i, (_, qi))| {
            self.terms.iter().enumerate().all(|(j, (_, qj))| {
                let dot: f64 = qi.iter().zip(qj.iter()).map(|(x, y)| x * y).sum();
                (dot - if i == j { 1.0 } else { 0.0 }).abs() < 1e-10
            })
        })
    }
}

/// How the true signal β is drawn for a replicate.
pub trait Signal: Send + Sync + Debug {
    /// Draw β ∈ R^p for one replicate (a fixed signal ignores `rng`).
    fn draw(&self, covariance: &dyn Covariance, rng: &mut Rng) -> Result<Col<f64>, CoreError>;
    /// Expected ‖β‖² (r²).
    fn radius_squared(&self, covariance: &dyn Covariance) -> f64;
    /// The expected share of ‖β‖² on each eigen-direction of Σ (ordered like
    /// [`Covariance::eigenvalues`], summing to 1): the signal distribution G of the
    /// theory. `None` if the signal cannot say.
    fn eigen_shares(&self, covariance: &dyn Covariance) -> Option<Vec<f64>> {
        let _ = covariance;
        None
    }
}

/// An estimator that is a spectral filter of the design: with the thin SVD
/// X = U diag(d) Vᵀ, the fit is β̂ = V diag(gain(d_i)) Uᵀy. Ridge (gain d/(d²+nλ)),
/// min-norm (1/d), principal-component regression and early-stopped gradient descent
/// are of this form, which lets settings factor X once and iterate in O(r).
pub trait SpectralFilter: Send + Sync + Debug {
    /// The gain applied to the singular direction with singular value `d` (> 0) in a
    /// design with `n` rows.
    fn gain(&self, d: f64, n: usize) -> f64;
}

/// Fits a linear model to (possibly weighted) data.
pub trait Estimator: Send + Sync + Debug {
    /// Fit β̂ ∈ R^p to rows `x` (n × p) and labels `y`. With `weights`, row i enters
    /// the loss with weight `weights[i]` (leave room for unequal real/synthetic sets).
    fn fit(
        &self,
        x: MatRef<'_, f64>,
        y: ColRef<'_, f64>,
        weights: Option<ColRef<'_, f64>>,
    ) -> Result<Col<f64>, CoreError>;
    /// The spectral form of this estimator, if it has one.
    fn spectral(&self) -> Option<&dyn SpectralFilter> {
        None
    }
    /// The ridge penalty λ (0 for min-norm / OLS) when the estimator is ridge-like; used
    /// by theory models and the theory-optimal schedule.
    fn ridge_penalty(&self) -> Option<f64> {
        None
    }
}

/// The sizes and plugins of one cell, as seen by schedules and settings.
#[derive(Debug, Clone, Copy)]
pub struct CellView<'a> {
    /// Samples per iteration.
    pub n: usize,
    /// Features.
    pub p: usize,
    /// Label noise standard deviation σ.
    pub noise_sd: f64,
    /// Number of refits after t = 0.
    pub iterations: usize,
    /// The cell's estimator.
    pub estimator: &'a dyn Estimator,
    /// The cell's covariance.
    pub covariance: &'a dyn Covariance,
    /// The cell's signal.
    pub signal: &'a dyn Signal,
}

/// The real-data weight w_t of each iteration.
pub trait Schedule: Send + Sync + Debug {
    /// Weights w_0, …, w_T (length `cell.iterations + 1`), each in [0, 1]; w_0 = 1
    /// because t = 0 fits real labels only.
    fn weights(&self, cell: &CellView<'_>) -> Result<Vec<f64>, CoreError>;
}

/// One chain of iterations of a setting, for one (cell, replicate).
pub trait Chain: Send {
    /// Advance to iteration `t` (t = 0 is the first fit) with real-data weight `w`.
    fn step(&mut self, t: usize, w: f64) -> Result<Outcome, CoreError>;
}

/// The data protocol of an iteration: which design, which labels are real, which are
/// synthetic, what is kept from earlier iterations.
pub trait Setting: Send + Sync + Debug {
    /// Cross-field checks against the cell (sizes, estimator); called at resolve time.
    fn check(&self, cell: &CellView<'_>) -> Result<(), CoreError> {
        let _ = cell;
        Ok(())
    }
    /// Whether this setting uses one design per replicate (drawn by the engine and
    /// shared by all cells of a design group). Settings that draw fresh covariates
    /// every iteration return false.
    fn fixed_design(&self) -> bool {
        true
    }
    /// How this setting needs the row space of the fixed design for `cell`. Part of the
    /// design-group key: cells that need different modes never share draws.
    fn row_space_mode(&self, cell: &CellView<'_>) -> RowSpaceMode {
        let _ = cell;
        RowSpaceMode::Factorize
    }
    /// Start a chain for one cell on one replicate.
    fn start<'a>(
        &'a self,
        cell: CellView<'a>,
        data: &'a ReplicateData,
        streams: Streams,
    ) -> Result<Box<dyn Chain + 'a>, CoreError>;
}
