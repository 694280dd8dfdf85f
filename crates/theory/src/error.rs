//! The error type of the crate.
//!
//! Every public function that takes a user-supplied parameter validates it and reports a
//! [`TheoryError`] instead of returning a silently meaningless number (NaN, a negative
//! variance, …). The pure scalar formulas of [`crate::mixing`] are the exception: they are
//! total on their documented domain and are used in hot loops.

use std::fmt;

/// Why a formula could not be evaluated.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum TheoryError {
    /// A scalar parameter is outside the domain of the formula (e.g. `γ ≤ 0`, `w ∉ (0, 1]`).
    InvalidParameter {
        /// Name of the parameter as it appears in the function signature.
        name: &'static str,
        /// The rejected value (integers are converted to `f64` for reporting).
        value: f64,
        /// The condition the parameter has to satisfy.
        requirement: &'static str,
    },
    /// The atoms or weights given for a spectral distribution are not a valid probability
    /// measure on `[0, ∞)`.
    InvalidSpectrum {
        /// What is wrong with the input.
        reason: &'static str,
    },
    /// The parameters are individually valid but the formula does not apply to their
    /// combination (e.g. a finite-sample expectation that requires `p > n + 1`).
    OutOfDomain {
        /// The condition that failed.
        reason: &'static str,
    },
}

impl fmt::Display for TheoryError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::InvalidParameter { name, value, requirement } => {
                write!(f, "invalid parameter {name} = {value}: {requirement}")
            }
            Self::InvalidSpectrum { reason } => write!(f, "invalid spectrum: {reason}"),
            Self::OutOfDomain { reason } => write!(f, "formula out of domain: {reason}"),
        }
    }
}

impl std::error::Error for TheoryError {}

/// Shorthand used by the validators below.
pub(crate) fn invalid(name: &'static str, value: f64, requirement: &'static str) -> TheoryError {
    TheoryError::InvalidParameter { name, value, requirement }
}

/// Accepts finite `x > 0`.
pub(crate) fn positive(name: &'static str, x: f64) -> Result<f64, TheoryError> {
    if x.is_finite() && x > 0.0 { Ok(x) } else { Err(invalid(name, x, "must be finite and > 0")) }
}

/// Accepts finite `x ≥ 0`.
pub(crate) fn non_negative(name: &'static str, x: f64) -> Result<f64, TheoryError> {
    if x.is_finite() && x >= 0.0 { Ok(x) } else { Err(invalid(name, x, "must be finite and >= 0")) }
}

/// Accepts a mixing weight `w ∈ (0, 1]`.
pub(crate) fn mixing_weight(name: &'static str, w: f64) -> Result<f64, TheoryError> {
    if w > 0.0 && w <= 1.0 { Ok(w) } else { Err(invalid(name, w, "must lie in (0, 1]")) }
}

/// Accepts a mixing weight `w ∈ [0, 1]` (for recursions where `w = 0`, pure self-training,
/// is meaningful and finite at finite `t`).
pub(crate) fn unit_interval(name: &'static str, w: f64) -> Result<f64, TheoryError> {
    if (0.0..=1.0).contains(&w) { Ok(w) } else { Err(invalid(name, w, "must lie in [0, 1]")) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn display_mentions_name_and_requirement() {
        let e = invalid("gamma", -1.0, "must be finite and > 0");
        let s = e.to_string();
        assert!(s.contains("gamma") && s.contains("-1") && s.contains("> 0"), "{s}");
    }

    #[test]
    fn validators_reject_nan_and_infinities() {
        assert!(positive("x", f64::NAN).is_err());
        assert!(positive("x", f64::INFINITY).is_err());
        assert!(positive("x", 0.0).is_err());
        assert!(non_negative("x", -0.0).is_ok());
        assert!(non_negative("x", -1e-300).is_err());
        assert!(mixing_weight("w", 0.0).is_err());
        assert!(mixing_weight("w", 1.0).is_ok());
        assert!(mixing_weight("w", f64::NAN).is_err());
        assert!(unit_interval("w", 0.0).is_ok());
        assert!(unit_interval("w", 1.0 + 1e-15).is_err());
    }
}
