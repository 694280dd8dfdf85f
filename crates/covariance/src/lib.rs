//! Covariance models Σ and signal models β.
//!
//! Covariances keep Σ structured: `isotropic` (I), the diagonal family (`diagonal`,
//! `spiked`, `power-law`: Σ = diag(τ) in the coordinate basis), `equicorrelated`
//! (identity plus a rank-one term, eigenbasis given by one Householder reflection) and
//! `ar1` (Toeplitz ρ^|i−j|, applied in O(p) per vector and sampled by the AR(1)
//! recursion), and `table` (rows drawn from a data table, docs/weighted.md §5). Each exposes its eigenvalues and eigenbasis for the risk computation
//! and the theory, and samples designs whose rows are iid N(0, Σ).
//!
//! Signals draw β per replicate: `random` (uniform on the sphere, the random-effects
//! model), `aligned` (a share of ‖β‖² on the leading eigen-directions), `power-law`
//! (β_k² ∝ k^(−δ) in Σ's eigenbasis) and `fixed`.

mod covariances;
mod signals;
mod table;

pub use covariances::*;
pub use signals::*;
pub use table::*;
