//! Settings: the data protocol of one iteration.
//!
//! `fresh-labels` (THEORY.md §A.1): the design X is drawn once per replicate; t = 0
//! fits real labels y_0 = Xβ + ε_0; for t ≥ 1 fresh real labels y_t = Xβ + ε_t and
//! synthetic labels ỹ_t = Xβ̂_{t−1} + ε̃_t (same σ unless `synthetic_noise_sd` says
//! otherwise) are mixed as z_t = w_t y_t + (1 − w_t) ỹ_t and the estimator is refitted.

mod fresh_labels;

pub use fresh_labels::*;
