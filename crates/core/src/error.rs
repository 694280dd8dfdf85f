//! Typed errors of the core crate.
//!
//! Configuration problems carry the dotted path of the offending field
//! (`estimator.lambda`) so the CLI can print one line that names the field and what is
//! allowed. Numerical failure is data, never a panic.

use thiserror::Error;

/// Everything that can go wrong while parsing, resolving or running a scenario.
#[derive(Debug, Clone, Error)]
#[non_exhaustive]
pub enum CoreError {
    /// A configuration value is missing, malformed or out of range.
    #[error("{field}: {message}")]
    Config {
        /// Dotted path of the field, e.g. `estimator.lambda`.
        field: String,
        /// What is wrong and what is allowed.
        message: String,
    },
    /// A plugin name that is not registered for its kind.
    #[error("{field}: unknown {kind} `{name}`; known {kind}s: {}", known.join(", "))]
    UnknownPlugin {
        /// Field that named the plugin (e.g. `estimator.kind`).
        field: String,
        /// Plugin kind (estimator, covariance, ...).
        kind: &'static str,
        /// The name that was asked for.
        name: String,
        /// Every registered name of that kind, sorted.
        known: Vec<String>,
    },
    /// Two plugins of one kind registered the same name.
    #[error("duplicate {kind} plugin name `{name}`: two crates register it; rename one")]
    DuplicatePlugin {
        /// Plugin kind.
        kind: &'static str,
        /// The clashing name.
        name: String,
    },
    /// Results could not be written (a sink's I/O failed).
    #[error("writing results: {0}")]
    Output(String),
    /// A numerical routine failed (non-convergence, non-finite values, ...).
    #[error("numerical failure in {what}: {detail}")]
    Numerical {
        /// The routine that failed.
        what: &'static str,
        /// Where and why.
        detail: String,
    },
}

impl CoreError {
    /// A configuration error on `field`.
    pub fn config(field: impl Into<String>, message: impl Into<String>) -> Self {
        CoreError::Config { field: field.into(), message: message.into() }
    }

    /// A numerical failure in `what`.
    pub fn numerical(what: &'static str, detail: impl Into<String>) -> Self {
        CoreError::Numerical { what, detail: detail.into() }
    }

    /// Prefix the field path with a section name (`lambda` → `estimator.lambda`).
    #[must_use]
    pub fn in_section(self, section: &str) -> Self {
        let join = |field: String| {
            if section.is_empty() {
                field
            } else if field.is_empty() {
                section.to_string()
            } else {
                format!("{section}.{field}")
            }
        };
        match self {
            CoreError::Config { field, message } => CoreError::Config { field: join(field), message },
            CoreError::UnknownPlugin { field, kind, name, known } => {
                CoreError::UnknownPlugin { field: join(field), kind, name, known }
            }
            other => other,
        }
    }

    /// The dotted field path of a configuration error.
    pub fn field(&self) -> Option<&str> {
        match self {
            CoreError::Config { field, .. } | CoreError::UnknownPlugin { field, .. } => Some(field),
            _ => None,
        }
    }

    /// True for errors caused by user input (as opposed to numerical failure).
    pub fn is_user_error(&self) -> bool {
        matches!(self, CoreError::Config { .. } | CoreError::UnknownPlugin { .. } | CoreError::DuplicatePlugin { .. })
    }
}

/// A parameter that failed validation, relative to its section (`lambda`, not
/// `estimator.lambda`); the resolver adds the section.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[error("{field}: {message}")]
pub struct ParamError {
    /// Field name inside the plugin's parameter table.
    pub field: String,
    /// What is wrong and what is allowed.
    pub message: String,
}

impl ParamError {
    /// A validation error for `field`.
    pub fn new(field: impl Into<String>, message: impl Into<String>) -> Self {
        ParamError { field: field.into(), message: message.into() }
    }
}

impl From<ParamError> for CoreError {
    fn from(e: ParamError) -> Self {
        CoreError::Config { field: e.field, message: e.message }
    }
}
