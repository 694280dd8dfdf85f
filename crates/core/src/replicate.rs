//! What one replicate shares between the cells of its design group: the design X, the
//! signal β and the factorization of X, each computed at most once and only if a
//! setting asks for it.

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, OnceLock};

use faer::{Col, Mat};

use crate::error::CoreError;
use crate::model::{Covariance, Signal};
use crate::rng::{Purpose, Streams};

/// The result of one iteration of one chain.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Outcome {
    /// Realised excess risk ‖β̂_t − β‖²_Σ.
    pub risk: f64,
    /// Exact conditional expectation E[‖β̂_t − β‖²_Σ | X, β], where the setting can
    /// compute it in closed form.
    pub risk_exact: Option<f64>,
}

/// A fixed design of one replicate.
#[derive(Debug)]
pub struct Design {
    /// The n × p design matrix.
    pub x: Mat<f64>,
}

/// The data of one (design group, replicate), shared by every cell of the group.
#[derive(Debug)]
pub struct ReplicateData {
    n: usize,
    p: usize,
    streams: Streams,
    covariance: Arc<dyn Covariance>,
    signal: Arc<dyn Signal>,
    factorizations: Arc<AtomicUsize>,
    beta: OnceLock<Result<Col<f64>, CoreError>>,
    design: OnceLock<Design>,
    row_space: OnceLock<Result<RowSpace, CoreError>>,
}

impl ReplicateData {
    /// Lazily drawn data for one replicate of a design group.
    pub fn new(
        n: usize,
        p: usize,
        streams: Streams,
        covariance: Arc<dyn Covariance>,
        signal: Arc<dyn Signal>,
        factorizations: Arc<AtomicUsize>,
    ) -> Self {
        ReplicateData {
            n,
            p,
            streams,
            covariance,
            signal,
            factorizations,
            beta: OnceLock::new(),
            design: OnceLock::new(),
            row_space: OnceLock::new(),
        }
    }

    /// The stream factory of this replicate.
    pub fn streams(&self) -> Streams {
        self.streams
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

    /// The fixed design X of this replicate (drawn once from the design stream).
    pub fn design(&self) -> &Design {
        self.design.get_or_init(|| {
            let mut rng = self.streams.rng(Purpose::Design, 0);
            Design { x: self.covariance.sample(self.n, &mut rng) }
        })
    }

    /// The row-space factorization of the fixed design (one thin SVD per replicate,
    /// shared by every cell of the design group).
    pub fn row_space(&self) -> Result<&RowSpace, CoreError> {
        self.row_space
            .get_or_init(|| {
                self.factorizations.fetch_add(1, Ordering::Relaxed);
                RowSpace::new(&self.design().x, self.beta()?, self.covariance.clone())
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// The thin SVD of a fixed design restricted to its numerical rank, with the
/// quantities every spectral computation needs: singular values d, U, V, θ = Vᵀβ,
/// and the part of the risk that lives outside the row space.
#[derive(Debug)]
pub struct RowSpace {
    n: usize,
    /// Singular values above `d_max · max(n, p) · eps`, descending (length r).
    pub d: Vec<f64>,
    /// Left singular vectors, n × r.
    pub u: Mat<f64>,
    /// Right singular vectors, p × r.
    pub v: Mat<f64>,
    /// θ = Vᵀβ.
    pub theta: Vec<f64>,
    beta: Col<f64>,
    covariance: Arc<dyn Covariance>,
    /// β⊥ᵀΣβ⊥ with β⊥ = β − Vθ: the risk of any estimate that lives in the row space,
    /// from outside it (for Σ = I: ‖β⊥‖²).
    perp_risk: f64,
    /// diag(VᵀΣV): the Σ-weight of each singular direction.
    m_diag: Vec<f64>,
}

impl RowSpace {
    /// Factorize `x` and project `beta`.
    pub fn new(x: &Mat<f64>, beta: &Col<f64>, covariance: Arc<dyn Covariance>) -> Result<Self, CoreError> {
        let (n, p) = (x.nrows(), x.ncols());
        let svd = x
            .thin_svd()
            .map_err(|e| CoreError::numerical("thin SVD of the design", format!("{e:?} (n = {n}, p = {p})")))?;
        let s = svd.S().column_vector();
        let d_max = if s.nrows() > 0 { s[0] } else { 0.0 };
        if !d_max.is_finite() {
            return Err(CoreError::numerical("thin SVD of the design", "non-finite singular value"));
        }
        // Treat singular values below d_max·max(n,p)·eps as zero, as pinv/lstsq do.
        let tol = d_max * (n.max(p) as f64) * f64::EPSILON;
        let r = s.iter().take_while(|&&di| di > tol).count();
        let d: Vec<f64> = s.iter().take(r).copied().collect();
        let u = svd.U().subcols(0, r).to_owned();
        let v = svd.V().subcols(0, r).to_owned();
        let theta_col = v.transpose() * beta;
        let theta: Vec<f64> = theta_col.iter().copied().collect();
        let beta_perp = beta - &v * &theta_col;
        let (perp_risk, m_diag) = if covariance.is_isotropic() {
            (beta_perp.squared_norm_l2(), vec![1.0; r])
        } else {
            let sv = covariance.apply(v.as_ref());
            let m_diag = (0..r).map(|j| v.col(j).iter().zip(sv.col(j).iter()).map(|(a, b)| a * b).sum()).collect();
            (covariance.quad_form(beta_perp.as_ref()), m_diag)
        };
        Ok(RowSpace { n, d, u, v, theta, beta: beta.clone(), covariance, perp_risk, m_diag })
    }

    /// Number of rows of the design.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Numerical rank r.
    pub fn rank(&self) -> usize {
        self.d.len()
    }

    /// True when Σ = I, so that risk needs only the r coordinates.
    pub fn isotropic(&self) -> bool {
        self.covariance.is_isotropic()
    }

    /// diag(VᵀΣV).
    pub fn m_diag(&self) -> &[f64] {
        &self.m_diag
    }

    /// Risk ‖V b − β‖²_Σ of the estimate with row-space coordinates `b` (β̂ = V b).
    /// O(r) for Σ = I; otherwise O(p·r) (reconstruct, then a structured quadratic form).
    pub fn risk_of_coords(&self, b: &[f64]) -> f64 {
        if self.isotropic() {
            let inside: f64 = b.iter().zip(&self.theta).map(|(bi, ti)| (bi - ti) * (bi - ti)).sum();
            inside + self.perp_risk
        } else {
            let bc = Col::<f64>::from_fn(b.len(), |i| b[i]);
            let err = &self.v * &bc - &self.beta;
            self.covariance.quad_form(err.as_ref())
        }
    }

    /// Risk of an arbitrary estimate β̂ ∈ R^p.
    pub fn risk_of(&self, beta_hat: &Col<f64>) -> f64 {
        let err = beta_hat - &self.beta;
        self.covariance.quad_form(err.as_ref())
    }

    /// The true signal of this replicate.
    pub fn beta(&self) -> &Col<f64> {
        &self.beta
    }
}
