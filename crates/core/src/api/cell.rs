use crate::api::{Covariance, Estimator, Family, Policy, Protocol, Signal};

/// What a plugin's `build` may look at besides its own parameters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct BuildContext {
    /// Samples per iteration.
    pub n: usize,
    /// Features.
    pub p: usize,
}

/// The sizes and plugins of one cell, as seen by protocols, schedules and theory.
#[derive(Debug, Clone, Copy)]
pub struct CellView<'a> {
    /// Samples per iteration.
    pub n: usize,
    /// Features.
    pub p: usize,
    /// Number of iterations after t = 0.
    pub iterations: usize,
    /// The data model.
    pub family: &'a dyn Family,
    /// The covariance of the covariates.
    pub covariance: &'a dyn Covariance,
    /// The signal.
    pub signal: &'a dyn Signal,
    /// The estimator.
    pub estimator: &'a dyn Estimator,
    /// The protocol.
    pub protocol: &'a dyn Protocol,
    /// The policy.
    pub policy: &'a dyn Policy,
}
