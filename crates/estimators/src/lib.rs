//! Estimator plugins: `ridge`, `min-norm`, `ols`, `pcr` (spectral filters of the
//! design; docs/estimators.md) and `irls` (weighted, optionally penalised Newton/IRLS
//! for canonical GLMs; docs/logistic.md §5) and `mle` (the family's weighted maximum-
//! likelihood estimate, for every family; docs/weighted.md §1).
//!
//! The spectral estimators are filters of the design's thin SVD X = U diag(d) Vᵀ:
//! β̂ = V diag(g) Uᵀy. Fixed-design protocols use that form to factor X once per
//! replicate; [`collapse_core::Estimator::fit`] factorizes on every call and is the
//! general path (weighted rows, changing designs). No explicit inverse or
//! pseudo-inverse is ever formed; singular values at or below `d_max · max(n, p) · eps`
//! count as zero, as in `numpy.linalg.lstsq` (docs/numerics.md §1).

mod irls;
mod mle;
mod spectral;

pub use irls::*;
pub use mle::*;
pub use spectral::*;
