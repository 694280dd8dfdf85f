//! The training set that a policy keeps across iterations, for protocols that refit on a
//! changing design: fresh covariates (every policy but replace) and subsampling on a
//! fixed design (docs/policies.md §3–§5).
//!
//! * **Weighted pool** (`Retention::Pool { newest }`, e.g. accumulate): iteration j's
//!   rows enter with weight c_j (Σ_j c_j = 1, the newest with ℓ_t) and the fit minimises
//!   Σ_j c_j‖z_j − X_j b‖² + n̄λ‖b‖², n̄ = Σ_j c_j m_j (stacking every row with equal
//!   weight when all c_j are equal). A spectral estimator keeps the √c-scaled rows while
//!   they are fewer than p, then only the moments A = Σ c_j X_jᵀX_j and b = Σ c_j X_jᵀz_j
//!   (O(p²) memory however long the run); any other estimator keeps every row.
//! * **Subsample** (`Retention::Subsample { rows }`): every block is kept; each refit
//!   draws `rows` of all rows so far uniformly without replacement (the `Selection`
//!   stream of the iteration, so cells of a design group draw the same rows) and fits
//!   them unweighted.

use std::sync::Arc;

use collapse_core::faer::{Col, Mat, MatRef, Par};
use collapse_core::rand::seq::index;
use collapse_core::rng::Purpose;
use collapse_core::spectral::linalg::{lower_gram, t_matvec};
use collapse_core::{CoreError, Estimator, FitInput, Likelihood, Retention, Streams};

use crate::gram::{Gram, refit};

/// The design rows of one iteration: the fixed design, or covariates drawn afresh.
#[derive(Debug, Clone)]
pub enum Rows<'a> {
    /// A fixed design, borrowed from the replicate.
    Fixed(MatRef<'a, f64>),
    /// Covariates drawn for one iteration (shared with the other cells of the unit).
    Drawn(Arc<Mat<f64>>),
}

impl Rows<'_> {
    /// The matrix.
    pub fn get(&self) -> MatRef<'_, f64> {
        match self {
            Rows::Fixed(x) => *x,
            Rows::Drawn(x) => x.as_ref().as_ref(),
        }
    }
}

/// One iteration's contribution: its first `count` design rows with their labels.
#[derive(Debug, Clone)]
pub struct Block<'a> {
    /// Design rows (only the first `count` are used).
    pub rows: Rows<'a>,
    /// Rows used.
    pub count: usize,
    /// Labels of the used rows.
    pub labels: Vec<f64>,
}

impl Block<'_> {
    fn x(&self) -> MatRef<'_, f64> {
        self.rows.get().subrows(0, self.count)
    }
}

#[derive(Debug)]
enum State<'a> {
    /// √c-scaled rows and labels of a spectral estimator's pool (fewer rows than p).
    Rows { x: Mat<f64>, y: Vec<f64> },
    /// Moments of a spectral estimator's pool: lower triangle of A, and b.
    Moments { a: Mat<f64>, b: Col<f64>, rows: usize },
    /// Every block with its weight c_j (other estimators).
    Stacked { blocks: Vec<(Block<'a>, f64)> },
    /// Every block (subsampling).
    Subsample { rows: usize, blocks: Vec<Block<'a>> },
}

/// The kept training set of one trajectory.
#[derive(Debug)]
pub struct Pool<'a> {
    state: State<'a>,
    /// n̄ = Σ_j c_j m_j.
    mean_rows: f64,
    /// The rows of one iteration of the design (the ridge normalisation).
    n: usize,
    p: usize,
}

impl<'a> Pool<'a> {
    /// An empty pool for `retention` (that of iteration 1; a policy keeps one kind).
    pub fn new(retention: Retention, spectral: bool, n: usize, p: usize) -> Self {
        let state = match retention {
            Retention::Subsample { rows } => State::Subsample { rows, blocks: Vec::new() },
            Retention::Pool { .. } if spectral => State::Rows { x: Mat::zeros(0, p), y: Vec::new() },
            Retention::Pool { .. } => State::Stacked { blocks: Vec::new() },
        };
        Pool { state, mean_rows: 0.0, n, p }
    }

    /// Add iteration t's block under `retention` (t = 0: the pool starts with it).
    pub fn push(&mut self, block: Block<'a>, retention: Retention, par: Par) -> Result<(), CoreError> {
        let newest = match (retention, &mut self.state) {
            (Retention::Subsample { .. }, State::Subsample { blocks, .. }) => {
                blocks.push(block);
                return Ok(());
            }
            (Retention::Pool { newest }, State::Rows { .. } | State::Moments { .. } | State::Stacked { .. }) => {
                newest.clamp(0.0, 1.0)
            }
            _ => return Err(CoreError::numerical("policy", "the policy changed between keeping and subsampling rows")),
        };
        let keep = 1.0 - newest;
        self.mean_rows = keep * self.mean_rows + newest * block.count as f64;
        match &mut self.state {
            State::Stacked { blocks } => {
                if keep == 0.0 {
                    blocks.clear();
                }
                blocks.iter_mut().for_each(|(_, c)| *c *= keep);
                blocks.push((block, newest));
            }
            State::Rows { x, y } => {
                let (old, m) = if keep == 0.0 { (0, block.count) } else { (x.nrows(), x.nrows() + block.count) };
                let (sk, sn) = (keep.sqrt(), newest.sqrt());
                let bx = block.x();
                let next = Mat::from_fn(m, self.p, |i, j| if i < old { sk * x[(i, j)] } else { sn * bx[(i - old, j)] });
                let mut labels: Vec<f64> = y[..old].iter().map(|v| sk * v).collect();
                labels.extend(block.labels.iter().map(|v| sn * v));
                if m > self.p {
                    // From now on only the moments: O(p²) whatever the number of iterations.
                    let a = lower_gram(next.transpose(), par);
                    let yc = Col::from_fn(m, |i| labels[i]);
                    let b = t_matvec(next.as_ref(), yc.as_ref(), par);
                    self.state = State::Moments { a, b, rows: m };
                } else {
                    *x = next;
                    *y = labels;
                }
            }
            State::Moments { a, b, rows } => {
                let bx = block.x();
                let gram = lower_gram(bx.transpose(), par);
                let yc = Col::from_fn(block.count, |i| block.labels[i]);
                let xty = t_matvec(bx, yc.as_ref(), par);
                for j in 0..self.p {
                    for i in j..self.p {
                        a[(i, j)] = keep * a[(i, j)] + newest * gram[(i, j)];
                    }
                    b[j] = keep * b[j] + newest * xty[j];
                }
                *rows = if keep == 0.0 { block.count } else { *rows + block.count };
            }
            State::Subsample { .. } => {}
        }
        Ok(())
    }

    /// Refit on the pool at iteration `t` (`start`: the previous estimate, for iterative
    /// estimators).
    pub fn fit(
        &self,
        estimator: &dyn Estimator,
        likelihood: &dyn Likelihood,
        start: Option<&Col<f64>>,
        streams: &Streams,
        t: usize,
        par: Par,
    ) -> Result<Col<f64>, CoreError> {
        let start = start.map(|b| b.as_ref());
        // Rescale the weights to n̄ = n so that a filter normalised by n rows sees the
        // pooled objective's penalty n̄λ (docs/policies.md §4).
        let scale = if self.mean_rows > 0.0 { self.n as f64 / self.mean_rows } else { 1.0 };
        match &self.state {
            State::Rows { x, y } => {
                let s = scale.sqrt();
                let xs = Mat::from_fn(x.nrows(), self.p, |i, j| s * x[(i, j)]);
                let ys = Col::from_fn(y.len(), |i| s * y[i]);
                Gram::new(xs.as_ref(), par).fit(estimator, xs.as_ref(), ys.as_ref(), self.n, par)
            }
            State::Moments { a, b, rows } => {
                let a = Mat::from_fn(self.p, self.p, |i, j| scale * a[(i, j)]);
                let b = Col::from_fn(self.p, |i| scale * b[i]);
                Gram::from_lower(a, false, *rows, self.p).fit_moments(estimator, b.as_ref(), self.n, par)
            }
            State::Stacked { blocks } => {
                let total: usize = blocks.iter().map(|(b, _)| b.count).sum();
                let (x, y) = stack(blocks.iter().map(|(b, _)| b), total, self.p);
                // Per-row weights c_j·N/n̄: the estimator's penalty is N·λ for N rows.
                let factor = total as f64 / self.mean_rows.max(f64::MIN_POSITIVE);
                let w: Vec<f64> = blocks.iter().flat_map(|(b, c)| std::iter::repeat_n(c * factor, b.count)).collect();
                let wc = Col::from_fn(total, |i| w[i]);
                estimator.fit(&FitInput {
                    x: x.as_ref(),
                    y: y.as_ref(),
                    weights: Some(wc.as_ref()),
                    likelihood,
                    start,
                    par,
                })
            }
            State::Subsample { rows, blocks } => {
                let total: usize = blocks.iter().map(|b| b.count).sum();
                let k = (*rows).min(total);
                let mut rng = streams.rng(Purpose::Selection, t as u64);
                let mut chosen = index::sample(&mut rng, total, k).into_vec();
                chosen.sort_unstable();
                let (x, y) = pick(blocks, &chosen, self.p);
                refit(estimator, likelihood, x.as_ref(), y.as_ref(), start, par)
            }
        }
    }
}

/// The blocks stacked into one design and label vector.
fn stack<'b, 'a: 'b>(blocks: impl Iterator<Item = &'b Block<'a>>, total: usize, p: usize) -> (Mat<f64>, Col<f64>) {
    let mut x = Mat::<f64>::zeros(total, p);
    let mut y = Col::<f64>::zeros(total);
    let mut at = 0;
    for b in blocks {
        let bx = b.x();
        for i in 0..b.count {
            for j in 0..p {
                x[(at + i, j)] = bx[(i, j)];
            }
            y[at + i] = b.labels[i];
        }
        at += b.count;
    }
    (x, y)
}

/// The rows with pool indices `chosen` (ascending), numbered block after block.
fn pick(blocks: &[Block<'_>], chosen: &[usize], p: usize) -> (Mat<f64>, Col<f64>) {
    let mut located = Vec::with_capacity(chosen.len());
    let (mut block, mut offset) = (0, 0);
    for &c in chosen {
        while c >= offset + blocks[block].count {
            offset += blocks[block].count;
            block += 1;
        }
        located.push((block, c - offset));
    }
    let x = Mat::from_fn(located.len(), p, |i, j| {
        let (b, r) = located[i];
        blocks[b].rows.get()[(r, j)]
    });
    let y = Col::from_fn(located.len(), |i| {
        let (b, r) = located[i];
        blocks[b].labels[r]
    });
    (x, y)
}

#[cfg(test)]
mod tests {
    use super::*;
    use collapse_core::SquaredError;
    use collapse_core::rng::normal_vec;
    use collapse_estimators::Ridge;

    /// The estimator's own least-squares fit to (x, y), unweighted and from no start.
    fn direct_fit(est: &dyn Estimator, x: &Mat<f64>, y: &Col<f64>) -> Col<f64> {
        let input = FitInput {
            x: x.as_ref(),
            y: y.as_ref(),
            weights: None,
            likelihood: &SquaredError,
            start: None,
            par: Par::Seq,
        };
        est.fit(&input).unwrap()
    }

    fn block(m: usize, p: usize, seed: u64) -> Block<'static> {
        let z = normal_vec(&mut Streams::new(seed, 1, 2).rng(Purpose::Design, 0), 1.0, m * p + m);
        let x = Mat::from_fn(m, p, |i, j| z[i * p + j]);
        Block { rows: Rows::Drawn(Arc::new(x)), count: m, labels: z[m * p..].to_vec() }
    }

    /// Accumulate on fresh designs: the pooled fit (rows while N ≤ p, then moments) equals
    /// ridge / min-norm on the stacked rows with penalty N·λ, also for blocks of unequal size.
    #[test]
    fn pooled_fit_equals_the_stacked_fit() {
        let (n, p) = (10, 25);
        for lambda in [0.0, 0.3] {
            let est = Ridge::new(lambda);
            for sizes in [[10, 10, 10, 10, 10], [10, 6, 6, 6, 6]] {
                let mut pool = Pool::new(Retention::Pool { newest: 1.0 }, true, n, p);
                let mut kept = Vec::new();
                for (t, &m) in sizes.iter().enumerate() {
                    let b = block(m, p, t as u64);
                    kept.push(b.clone());
                    pool.push(b, Retention::Pool { newest: 1.0 / (t as f64 + 1.0) }, Par::Seq).unwrap();
                    let fit = pool.fit(&est, &SquaredError, None, &Streams::new(1, 1, 1), t, Par::Seq).unwrap();
                    let total: usize = kept.iter().map(|b| b.count).sum();
                    let (x, y) = stack(kept.iter(), total, p);
                    let direct = direct_fit(&est, &x, &y);
                    let err = (&fit - &direct).norm_l2() / direct.norm_l2();
                    assert!(err < 1e-9, "λ = {lambda}, sizes {sizes:?}, t = {t} (N = {total}): {err}");
                }
            }
        }
    }

    /// Subsampling draws `rows` of all rows so far from the iteration's Selection stream
    /// and fits them; the fit equals the estimator's own fit on those rows.
    #[test]
    fn subsample_fits_the_drawn_rows() {
        let (n, p, rows) = (8, 20, 8);
        let est = Ridge::new(0.0);
        let streams = Streams::new(4, 5, 6);
        let mut pool = Pool::new(Retention::Subsample { rows }, true, n, p);
        let blocks: Vec<Block<'static>> = (0..3).map(|t| block(n, p, 10 + t)).collect();
        for b in &blocks {
            pool.push(b.clone(), Retention::Subsample { rows }, Par::Seq).unwrap();
        }
        let fit = pool.fit(&est, &SquaredError, None, &streams, 2, Par::Seq).unwrap();
        let mut chosen = index::sample(&mut streams.rng(Purpose::Selection, 2), 3 * n, rows).into_vec();
        chosen.sort_unstable();
        let (x, y) = pick(&blocks, &chosen, p);
        let direct = direct_fit(&est, &x, &y);
        assert!((&fit - &direct).norm_l2() < 1e-9 * direct.norm_l2());
        assert!(chosen.iter().any(|&c| c >= n), "draws reach beyond the first block: {chosen:?}");
    }
}
