//! Asymptotic and exact risk formulas for iterative regression with real and synthetic
//! labels ("model collapse"), derived in the repository's `docs/` (cited by section).
//!
//! * [`mixing`]: scalar variance-inflation factors of the label-mixing recursion
//!   (docs/fresh-labels.md §3, §4; docs/fixed-labels.md §3).
//! * [`spectrum`]: spectral distributions, the effective regularisation `κ`, `D2`-type
//!   functionals and Marchenko–Pastur closed forms (docs/asymptotics.md §2, §4).
//! * [`limits`]: limiting and exact expected risks for min-norm and ridge under mixing, the
//!   finite-`t` isotropic path, fresh covariates in closed form (docs/fresh-covariates.md §3, §5;
//!   docs/partial-labels.md §3) and the generator chains of docs/asymptotics.md §7.3
//!   and docs/chains.md §2–§3.
//! * [`fresh`]: fresh covariates at every iteration, with all or a fraction of the rows
//!   labelled by real data (docs/fresh-covariates.md, docs/partial-labels.md).
//! * [`chain`]: generator chains with a ridge downstream model for any spectrum, the tuned
//!   penalty and power-law rates (docs/chains.md).
//! * [`optimal`]: the optimal ridge mixing weight `w*(λ)` (docs/asymptotics.md §4).
//!
//! Conventions: ridge `β̂ = (XᵀX + nλI)^{-1}Xᵀy`, `γ = p/n`, risk `‖β̂ − β‖²_Σ` (no `+σ²`),
//! `r² = ‖β‖²`, noise variance `σ²` (docs/README.md §2). The crate is pure `f64` arithmetic
//! with no dependencies.

pub mod chain;
pub mod error;
pub mod fresh;
pub mod limits;
pub mod mixing;
pub mod optimal;
pub mod spectrum;

pub use chain::{
    ChainEquivalent, ChainTerms, PowerLawRates, chain_overparam_fixed_error, ols_generator_scale, power_law_rates,
};
pub use error::TheoryError;
pub use fresh::{FreshRidge, FreshRows, FreshStep, fresh_exact_step, fresh_limit_step, fresh_stationary};
pub use limits::{
    BiasVariance, ChainRisk, ChainSetup, RidgeMixingEvaluator, chain_ols_error, chain_overparam_error,
    chain_ridge_isotropic, fixed_labels_min_norm_isotropic, fixed_labels_min_norm_isotropic_limit,
    fixed_labels_ridge_limit, fresh_covariates_isotropic, fresh_covariates_isotropic_limit, isotropic_path,
    min_norm_isotropic, min_norm_isotropic_finite, min_norm_limit, mixing_limit_min_norm, mixing_min_norm_isotropic_at,
    partial_labels_limit, ridge_mixing_isotropic, ridge_mixing_limit,
};
pub use mixing::{
    GOLDEN_W, c, c_k, c_t, dynamic_weights, fixed_labels_factor, fixed_labels_factor_limit, fixed_labels_factors,
    optimal_w_noise_ratio, pooled_variance_factors, variance_factors, variance_factors_keep,
    variance_factors_with_noise_ratio, variance_limit_keep,
};
pub use optimal::{OptimalPoint, optimal_w, optimal_w_curve};
pub use spectrum::{
    Spectrum, d2, d2_cross, df1, kappa, kappa_with_hint, mp_m, mp_m_prime, one_minus_d2_cross, stieltjes,
};
