/// Why a cell has no theory prediction (shown by `collapse theory` and in the
/// manifest): the prediction is a null, never a silently wrong number.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NoTheory(pub String);

impl NoTheory {
    /// A reason.
    pub fn new(reason: impl Into<String>) -> Self {
        NoTheory(reason.into())
    }
}

impl std::fmt::Display for NoTheory {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

/// A metric's predicted path: one value per iteration, `None` where the theory knows
/// only part of the path (e.g. only the t → ∞ limit).
pub type Path = Vec<Option<f64>>;

/// The theory of one cell, built by its protocol from the cell's typed plugins
/// (estimator penalty, covariance spectrum, signal distribution, family noise), never
/// from parameter names.
pub trait CellTheory: Send + Sync + std::fmt::Debug {
    /// Predicted path of each metric (in the order of the cell's plan) under `weights`.
    fn paths(&self, weights: &[f64]) -> Vec<Result<Path, NoTheory>>;
    /// The stationary (t → ∞) value of the main metric at constant weight `w`.
    fn limit(&self, w: f64) -> Result<f64, NoTheory>;
    /// The constant weight minimising the stationary main metric, and that minimum; by
    /// default a numerical search of [`Self::limit`] ([`minimise_weight`]), for theories
    /// without a closed form.
    fn optimal_weight(&self) -> Result<(f64, f64), NoTheory> {
        minimise_weight(|w| self.limit(w))
    }
    /// The same theory with the estimator's ridge penalty replaced by `lambda` (for
    /// curves over λ).
    fn at_penalty(&self, lambda: f64) -> Result<Box<dyn CellTheory>, NoTheory> {
        let _ = lambda;
        Err(NoTheory::new("this theory does not depend on a ridge penalty"))
    }
}

/// The constant weight in [0.01, 1] minimising a unimodal stationary metric `f`, and the
/// minimum: a grid of step 0.01, then golden-section search around the best grid point
/// (80 steps, far below any Monte Carlo resolution).
pub fn minimise_weight(f: impl Fn(f64) -> Result<f64, NoTheory>) -> Result<(f64, f64), NoTheory> {
    let grid: Vec<f64> = (1..=100).map(|k| k as f64 / 100.0).collect();
    let values: Vec<f64> = grid.iter().map(|&w| f(w)).collect::<Result<_, _>>()?;
    let best = values.iter().enumerate().min_by(|a, b| a.1.total_cmp(b.1)).map(|(k, _)| k).unwrap_or(99);
    let (mut a, mut b) = (grid[best.saturating_sub(1)], grid[(best + 1).min(99)]);
    let r = (5f64.sqrt() - 1.0) / 2.0;
    // Golden section: the interior point kept from one step is an interior point of the
    // next, so each step evaluates f once.
    let (mut c, mut d) = (b - r * (b - a), a + r * (b - a));
    let (mut fc, mut fd) = (f(c)?, f(d)?);
    for _ in 0..80 {
        if fc < fd {
            (b, d, fd) = (d, c, fc);
            c = b - r * (b - a);
            fc = f(c)?;
        } else {
            (a, c, fc) = (c, d, fd);
            d = a + r * (b - a);
            fd = f(d)?;
        }
    }
    let w = 0.5 * (a + b);
    Ok((w, f(w)?))
}
