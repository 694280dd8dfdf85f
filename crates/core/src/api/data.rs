use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use faer::{Col, Mat, MatRef, Par};

use crate::api::{Covariance, RowSpaceMode, Signal, sigma_form};
use crate::error::CoreError;
use crate::rng::{Purpose, Streams};
use crate::spectral::{RowSpace, samplers};

/// What one (design group, replicate) shares between the cells of the group: the signal
/// β, the design X and its row space, each computed at most once and only if a
/// protocol asks for it (docs/numerics.md §2).
#[derive(Debug)]
pub struct ReplicateData {
    n: usize,
    p: usize,
    streams: Streams,
    covariance: Arc<dyn Covariance>,
    signal: Arc<dyn Signal>,
    par: Par,
    factorizations: Arc<AtomicUsize>,
    mode: RowSpaceMode,
    evaluations: usize,
    beta: OnceLock<Result<Col<f64>, CoreError>>,
    design: OnceLock<Mat<f64>>,
    row_space: OnceLock<Result<RowSpace, CoreError>>,
    iteration: Mutex<IterationShare>,
    shared: Mutex<HashMap<u64, Arc<dyn Any + Send + Sync>>>,
}

/// The values the cells of a unit share at one iteration ([`ReplicateData::shared_at`]).
#[derive(Default)]
struct IterationShare {
    t: usize,
    entries: Vec<(Streams, u64, TypeId, Arc<dyn Any + Send + Sync>)>,
}

impl std::fmt::Debug for IterationShare {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("IterationShare").field("t", &self.t).field("entries", &self.entries.len()).finish()
    }
}

impl ReplicateData {
    /// Lazily drawn data for one replicate of a design group.
    pub fn new(
        n: usize,
        p: usize,
        streams: Streams,
        covariance: Arc<dyn Covariance>,
        signal: Arc<dyn Signal>,
        par: Par,
        factorizations: Arc<AtomicUsize>,
    ) -> Self {
        ReplicateData {
            n,
            p,
            streams,
            covariance,
            signal,
            par,
            factorizations,
            mode: RowSpaceMode::Factorize,
            evaluations: 0,
            beta: OnceLock::new(),
            design: OnceLock::new(),
            row_space: OnceLock::new(),
            iteration: Mutex::new(IterationShare::default()),
            shared: Mutex::new(HashMap::new()),
        }
    }

    /// Choose how the row space is obtained.
    #[must_use]
    pub fn with_mode(mut self, mode: RowSpaceMode) -> Self {
        self.mode = mode;
        self
    }

    /// How many Σ-risk evaluations the cells of this replicate make in total; with a
    /// dense Σ, more than r of them make precomputing VᵀΣV (O(p·r²)) worth it.
    #[must_use]
    pub fn with_evaluation_hint(mut self, evaluations: usize) -> Self {
        self.evaluations = evaluations;
        self
    }

    /// Samples per iteration.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Features.
    pub fn p(&self) -> usize {
        self.p
    }

    /// The stream factory of this replicate.
    pub fn streams(&self) -> Streams {
        self.streams
    }

    /// The parallelism for linear algebra inside this unit.
    pub fn par(&self) -> Par {
        self.par
    }

    /// The covariance of the design group.
    pub fn covariance(&self) -> &dyn Covariance {
        self.covariance.as_ref()
    }

    /// The true signal β (drawn once per replicate from the signal stream).
    pub fn beta(&self) -> Result<&Col<f64>, CoreError> {
        self.beta
            .get_or_init(|| {
                let mut rng = self.streams.rng(Purpose::Signal, 0);
                let beta = self.signal.draw(self.covariance.as_ref(), &mut rng)?;
                if beta.nrows() != self.p {
                    return Err(CoreError::numerical(
                        "signal",
                        format!("signal returned {} coordinates, expected p = {}", beta.nrows(), self.p),
                    ));
                }
                Ok(beta)
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// The fixed design X of this replicate (drawn once from the design stream). Under
    /// [`RowSpaceMode::Sample`] the row space does not come from this matrix.
    pub fn design(&self) -> MatRef<'_, f64> {
        self.design
            .get_or_init(|| {
                let mut rng = self.streams.rng(Purpose::Design, 0);
                self.covariance.sample(self.n, &mut rng)
            })
            .as_ref()
    }

    /// A value the cells of this unit share at iteration `t` (fresh covariates drawn from
    /// `streams`, their Gram factorization, ...): the first cell that asks computes it
    /// with `make`, the others get the same `Arc`. Values are told apart by `streams`,
    /// `key` and their type; asking for a later iteration drops the values of the earlier
    /// one. The engine advances the cells of a unit in lockstep, so each value is
    /// computed once per iteration and at most one iteration's values are held
    /// (docs/numerics.md §9). An error from `make` is returned and nothing is stored.
    pub fn shared_at<T: Any + Send + Sync>(
        &self,
        streams: Streams,
        t: usize,
        key: u64,
        make: impl FnOnce() -> Result<T, CoreError>,
    ) -> Result<Arc<T>, CoreError> {
        let id = TypeId::of::<T>();
        let found = {
            let mut share = self.iteration.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
            if share.t != t {
                share.t = t;
                share.entries.clear();
            }
            share.entries.iter().find(|(s, k, i, _)| *s == streams && *k == key && *i == id).map(|e| e.3.clone())
        };
        if let Some(hit) = found.and_then(|v| v.downcast::<T>().ok()) {
            return Ok(hit);
        }
        // Computed without holding the lock: `make` may ask for another shared value.
        let value = Arc::new(make()?);
        let mut share = self.iteration.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if share.t == t {
            share.entries.push((streams, key, id, value.clone()));
        }
        Ok(value)
    }

    /// The row space of the fixed design, computed once per replicate and shared by
    /// every cell of the design group.
    pub fn row_space(&self) -> Result<&RowSpace, CoreError> {
        self.row_space
            .get_or_init(|| {
                self.factorizations.fetch_add(1, Ordering::Relaxed);
                let beta = self.beta()?;
                let sample = self.mode == RowSpaceMode::Sample;
                let low_rank = self.covariance.low_rank_form().filter(|lr| {
                    lr.has_orthonormal_terms() && (self.p as f64) >= 1.5 * self.n as f64 && lr.scale > 0.0
                });
                if sample && self.covariance.is_isotropic() {
                    let mut rng = self.streams.rng(Purpose::Design, 0);
                    samplers::sample_isotropic(self.n, self.p, beta, &mut rng, self.par)
                } else if let (true, Some(lr)) = (sample, low_rank) {
                    let mut rng = self.streams.rng(Purpose::Design, 0);
                    samplers::sample_low_rank(self.n, self.p, beta, lr, &mut rng, self.par)
                } else {
                    let apply = |m: MatRef<'_, f64>| self.covariance.apply(m);
                    let form = sigma_form(self.covariance.as_ref(), &apply);
                    let rs = RowSpace::factorize(self.design(), beta, form, self.par)?;
                    Ok(if self.evaluations > rs.rank() { rs.with_projected_covariance(self.par) } else { rs })
                }
            })
            .as_ref()
            .map_err(Clone::clone)
    }

    /// A value a protocol derives from this replicate and shares between the cells of the
    /// design group (e.g. a second factorization, or a generator chain that does not
    /// depend on the cell's estimator): computed by `init` the first time `key` is asked
    /// for, then returned as is. Keys are the protocol's own (a content hash of what the
    /// value depends on); a key reused for another type is a numerical error. Cells of a
    /// unit run one after another, so `init` runs once per key.
    pub fn shared<T: Any + Send + Sync>(
        &self,
        key: u64,
        init: impl FnOnce() -> Result<T, CoreError>,
    ) -> Result<Arc<T>, CoreError> {
        let found = self
            .shared
            .lock()
            .map_err(|_| CoreError::numerical("shared data", "a lock was poisoned"))?
            .get(&key)
            .cloned();
        let value = match found {
            Some(v) => v,
            None => {
                let v: Arc<dyn Any + Send + Sync> = Arc::new(init()?);
                self.shared
                    .lock()
                    .map_err(|_| CoreError::numerical("shared data", "a lock was poisoned"))?
                    .entry(key)
                    .or_insert(v)
                    .clone()
            }
        };
        value
            .downcast::<T>()
            .map_err(|_| CoreError::numerical("shared data", format!("key {key:#x} holds another type")))
    }
}
