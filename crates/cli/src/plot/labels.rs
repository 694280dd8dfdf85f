//! Readable names for columns: short symbols for legends ("λ"), axis labels with their
//! meaning ("ridge penalty λ"), metric labels. A column not listed here is shown by its
//! name, so a new plugin's parameters are labelled without any change here.

/// (column, symbol, axis label)
const PARAMS: &[(&str, &str, &str)] = &[
    ("iteration", "t", "iteration t"),
    ("schedule.w", "w", "real-data weight w"),
    ("estimator.lambda", "λ", "ridge penalty λ"),
    ("estimator.k", "k", "components k"),
    ("design.n", "n", "samples per iteration n"),
    ("design.p", "p", "dimension p"),
    ("family.noise_sd", "σ", "label noise sd σ"),
    ("family.synthetic_noise_sd", "σ̃", "synthetic label noise sd σ̃"),
    ("signal.radius", "‖β‖", "signal norm ‖β‖"),
    ("covariance.alpha", "α", "power-law exponent α"),
    ("covariance.rho", "ρ", "correlation ρ"),
];

/// (metric, short name, axis label)
const METRICS: &[(&str, &str, &str)] = &[
    ("risk", "risk", "excess risk (β̂ − β)ᵀΣ(β̂ − β)"),
    ("param_error", "parameter error", "parameter error ‖β̂ − β‖²"),
    ("excess_logloss", "excess log-loss", "excess log-loss"),
];

/// A short symbol for legends: `λ` for `estimator.lambda`; the column name otherwise.
pub fn symbol(column: &str) -> String {
    PARAMS.iter().find(|(c, ..)| *c == column).map(|(_, s, _)| s.to_string()).unwrap_or_else(|| column.to_string())
}

/// An axis label: `ridge penalty λ` for `estimator.lambda`; the column name otherwise.
pub fn axis(column: &str) -> String {
    PARAMS.iter().find(|(c, ..)| *c == column).map(|(.., l)| l.to_string()).unwrap_or_else(|| column.to_string())
}

/// A metric's axis label.
pub fn metric(name: &str) -> String {
    METRICS.iter().find(|(m, ..)| *m == name).map(|(.., l)| l.to_string()).unwrap_or_else(|| name.replace('_', " "))
}

/// A metric's short name for titles.
pub fn metric_short(name: &str) -> String {
    METRICS.iter().find(|(m, ..)| *m == name).map(|(_, s, _)| s.to_string()).unwrap_or_else(|| name.replace('_', " "))
}
