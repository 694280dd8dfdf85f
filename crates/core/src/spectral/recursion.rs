//! The shared per-direction recursion of linear spectral estimators on a fixed design
//! (docs/spectral-recursion.md §2–§4).
//!
//! In the singular coordinates of the design, every protocol of the "refit a spectral
//! filter on mixed labels" kind moves each direction i independently:
//!
//! b_{t,i} = (κ_t + ρ_t a_i) b_{t−1,i} + s_t a_i θ_i + g_i Σ_k ℓ_{t,k} ξ_{k,i},   b_{−1} = 0,
//!
//! with gains g_i, a_i = g_i d_i, θ = Vᵀβ, and standard normal noise sources ξ_k that
//! are either fresh at each step or persistent (one draw reused, e.g. fixed real labels).
//! A protocol (with its policy) only chooses the scalars κ_t ("keep"), ρ_t ("feedback"),
//! s_t ("signal") and the loadings ℓ_{t,k} of each step; [`Simulation`] draws the noise
//! and advances b in O(r), [`Moments`] advances the exact conditional mean, variance and
//! cross-covariances with the persistent sources, which give the exact conditional risk.

use faer::Par;

use crate::error::CoreError;
use crate::rng::{Purpose, Streams, fill_normal};
use crate::spectral::row_space::RowSpace;

/// A standard normal noise source: the stream of `purpose` at `iteration`. Two steps
/// that name the same source see the same draw.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Source {
    /// What the draws are for (real-label noise, synthetic-label noise, ...).
    pub purpose: Purpose,
    /// The iteration whose stream holds the draws.
    pub iteration: u64,
}

impl Source {
    /// The source of `purpose` at `iteration`.
    pub fn new(purpose: Purpose, iteration: usize) -> Self {
        Source { purpose, iteration: iteration as u64 }
    }
}

/// The coefficients of one step (module docs).
#[derive(Debug, Clone, Copy)]
pub struct Step<'a> {
    /// κ_t: weight of the previous estimate carried over unchanged.
    pub keep: f64,
    /// ρ_t: weight of the previous estimate fed back through the filter (a_i).
    pub feedback: f64,
    /// s_t: weight of the true signal seen through the filter.
    pub signal: f64,
    /// (source, loading ℓ_{t,k}); a zero loading draws nothing.
    pub noise: &'a [(Source, f64)],
}

/// Per-direction gains g_i and a_i = g_i d_i of a spectral filter on a row space.
#[derive(Debug, Clone)]
pub struct Directions {
    /// g_i.
    pub g: Vec<f64>,
    /// a_i = g_i d_i.
    pub a: Vec<f64>,
}

impl Directions {
    /// Directions from the gains of a filter on `rs`; gains must be finite.
    pub fn new(rs: &RowSpace, gains: Vec<f64>) -> Result<Self, CoreError> {
        if gains.len() != rs.rank() {
            return Err(CoreError::numerical(
                "spectral filter",
                format!("returned {} gains for {} singular values", gains.len(), rs.rank()),
            ));
        }
        if let Some((i, g)) = gains.iter().enumerate().find(|(_, g)| !g.is_finite()) {
            return Err(CoreError::numerical(
                "spectral filter",
                format!("gain {g} for singular value {} (direction {i})", rs.d[i]),
            ));
        }
        let a = gains.iter().zip(&rs.d).map(|(g, d)| g * d).collect();
        Ok(Directions { g: gains, a })
    }

    /// Number of directions r.
    pub fn len(&self) -> usize {
        self.g.len()
    }

    /// True when the design has rank 0.
    pub fn is_empty(&self) -> bool {
        self.g.is_empty()
    }
}

/// Exact conditional moments of b_t given the design and β (docs/spectral-recursion.md §3).
#[derive(Debug, Clone)]
pub struct Moments {
    mu: Vec<f64>,
    nu: Vec<f64>,
    persistent: Vec<Source>,
    /// cross[k][i] = Cov(b_{t,i}, ξ_{k,i}) for persistent source k.
    cross: Vec<Vec<f64>>,
    loads: Vec<f64>,
}

impl Moments {
    /// Moments at b_{−1} = 0 for `r` directions, tracking covariances with the
    /// `persistent` sources (those a protocol reuses across steps).
    pub fn new(r: usize, persistent: &[Source]) -> Self {
        Moments {
            mu: vec![0.0; r],
            nu: vec![0.0; r],
            persistent: persistent.to_vec(),
            cross: vec![vec![0.0; r]; persistent.len()],
            loads: vec![0.0; persistent.len()],
        }
    }

    /// Advance by one step.
    pub fn step(&mut self, dirs: &Directions, theta: &[f64], step: &Step<'_>) {
        let total_load2: f64 = step.noise.iter().map(|(_, l)| l * l).sum();
        // Loading of each persistent source in this step.
        self.loads.iter_mut().for_each(|l| *l = 0.0);
        for (src, load) in step.noise {
            if let Some(k) = self.persistent.iter().position(|p| p == src) {
                self.loads[k] += load;
            }
        }
        for i in 0..self.mu.len() {
            let (a, g) = (dirs.a[i], dirs.g[i]);
            let carry = step.keep + step.feedback * a;
            self.mu[i] = carry * self.mu[i] + step.signal * a * theta[i];
            let mut nu = carry * carry * self.nu[i] + g * g * total_load2;
            for (c, load) in self.cross.iter_mut().zip(&self.loads) {
                // Cov(b_t, ξ_k) enters Var(b_t) through the cross term with the new draw.
                nu += 2.0 * carry * g * load * c[i];
                c[i] = carry * c[i] + g * load;
            }
            self.nu[i] = nu;
        }
    }

    /// E[b_t | X, β].
    pub fn mean(&self) -> &[f64] {
        &self.mu
    }

    /// Var(b_{t,i} | X, β).
    pub fn variance(&self) -> &[f64] {
        &self.nu
    }

    /// E[‖V b_t − β‖²_Σ | X, β] = risk of the mean + Σ_i M_ii ν_i (docs/spectral-recursion.md §4).
    pub fn risk(&self, rs: &RowSpace, par: Par) -> f64 {
        let variance: f64 = self.nu.iter().zip(rs.m_diag()).map(|(nu, m)| nu * m).sum();
        rs.risk_of_coords(&self.mu, par) + variance
    }
}

/// How noise sources are drawn in the singular coordinates.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NoiseDraws {
    /// Draw Uᵀε directly as r standard normals: exact in law (docs/spectral-recursion.md §6).
    Projected,
    /// Draw ε ∈ R^n and project with Uᵀ: draw for draw what refitting on the labels gives.
    Full,
}

/// A simulated path of b_t (docs/spectral-recursion.md §2).
#[derive(Debug, Clone)]
pub struct Simulation {
    b: Vec<f64>,
    draws: NoiseDraws,
    cache: Vec<(Source, Vec<f64>)>,
    persistent: Vec<Source>,
    scratch: Vec<f64>,
    xi: Vec<f64>,
    acc: Vec<f64>,
}

impl Simulation {
    /// A path at b_{−1} = 0 on `rs`; draws of the `persistent` sources are kept.
    pub fn new(rs: &RowSpace, draws: NoiseDraws, persistent: &[Source]) -> Result<Self, CoreError> {
        if draws == NoiseDraws::Full && rs.u().is_none() {
            return Err(CoreError::numerical(
                "spectral recursion",
                "full noise draws need the left singular vectors, which a sampled row space does not have",
            ));
        }
        let r = rs.rank();
        Ok(Simulation {
            b: vec![0.0; r],
            draws,
            cache: Vec::new(),
            persistent: persistent.to_vec(),
            scratch: vec![0.0; if draws == NoiseDraws::Full { rs.n() } else { r }],
            xi: vec![0.0; r],
            acc: vec![0.0; r],
        })
    }

    /// Draw source `src` in the singular coordinates into `self.xi`.
    fn draw(&mut self, rs: &RowSpace, streams: &Streams, src: Source) {
        if let Some((_, cached)) = self.cache.iter().find(|(s, _)| *s == src) {
            self.xi.copy_from_slice(cached);
            return;
        }
        let mut rng = streams.rng(src.purpose, src.iteration);
        fill_normal(&mut rng, 1.0, &mut self.scratch);
        match (self.draws, rs.u()) {
            (NoiseDraws::Full, Some(u)) => {
                for (i, x) in self.xi.iter_mut().enumerate() {
                    *x = u.col(i).iter().zip(&self.scratch).map(|(a, b)| a * b).sum();
                }
            }
            _ => self.xi.copy_from_slice(&self.scratch),
        }
        if self.persistent.contains(&src) {
            self.cache.push((src, self.xi.clone()));
        }
    }

    /// Advance by one step.
    pub fn step(&mut self, rs: &RowSpace, dirs: &Directions, streams: &Streams, step: &Step<'_>) {
        self.acc.iter_mut().for_each(|x| *x = 0.0);
        for &(src, load) in step.noise {
            if load == 0.0 {
                continue;
            }
            self.draw(rs, streams, src);
            for (acc, xi) in self.acc.iter_mut().zip(&self.xi) {
                *acc += load * xi;
            }
        }
        let theta = &rs.theta;
        for i in 0..self.b.len() {
            let (a, g) = (dirs.a[i], dirs.g[i]);
            self.b[i] = (step.keep + step.feedback * a) * self.b[i] + step.signal * a * theta[i] + g * self.acc[i];
        }
    }

    /// The current coordinates b_t.
    pub fn coords(&self) -> &[f64] {
        &self.b
    }
}
