//! Scenario values: TOML to JSON with every number checked to be finite, and the
//! parameter values that become Parquet columns.

use serde_json::{Map, Value};

use crate::error::CoreError;

/// Convert a TOML table to a JSON object. A float that is NaN or infinite, or a
/// date-time, is an error naming its dotted path (JSON cannot hold them, and a scenario
/// never needs them).
pub fn toml_to_json(table: &toml::Table, path: &str) -> Result<Map<String, Value>, CoreError> {
    let mut out = Map::new();
    for (k, v) in table {
        let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
        out.insert(k.clone(), convert(v, &p)?);
    }
    Ok(out)
}

fn convert(v: &toml::Value, path: &str) -> Result<Value, CoreError> {
    Ok(match v {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => Value::from(*i),
        toml::Value::Float(f) => {
            if !f.is_finite() {
                return Err(CoreError::config(path, format!("must be a finite number, got {f}")));
            }
            Value::from(*f)
        }
        toml::Value::Boolean(b) => Value::Bool(*b),
        toml::Value::Datetime(d) => {
            return Err(CoreError::config(path, format!("a date-time ({d}) is not a valid value here")));
        }
        toml::Value::Array(items) => Value::Array(
            items.iter().enumerate().map(|(i, it)| convert(it, &format!("{path}[{i}]"))).collect::<Result<_, _>>()?,
        ),
        toml::Value::Table(t) => Value::Object(toml_to_json(t, path)?),
    })
}

/// Convert a JSON value back to TOML (for the resolved `scenario.toml`).
pub fn json_to_toml(v: &Value, path: &str) -> Result<toml::Value, CoreError> {
    toml::Value::try_from(v).map_err(|e| CoreError::config(path, format!("cannot be written as TOML: {e}")))
}

/// A value of a parameter column.
#[derive(Debug, Clone, PartialEq)]
pub enum ParamValue {
    /// Integer parameter.
    Int(i64),
    /// Real parameter.
    Float(f64),
    /// Boolean parameter.
    Bool(bool),
    /// String parameter, plugin name, or a list rendered as JSON.
    Str(String),
    /// Absent optional parameter.
    Null,
}

impl ParamValue {
    /// The column value of a JSON parameter.
    pub fn from_json(v: &Value) -> ParamValue {
        match v {
            Value::Null => ParamValue::Null,
            Value::Bool(b) => ParamValue::Bool(*b),
            Value::Number(x) => match x.as_i64() {
                Some(i) if !x.is_f64() => ParamValue::Int(i),
                _ => ParamValue::Float(x.as_f64().unwrap_or(f64::NAN)),
            },
            Value::String(s) => ParamValue::Str(s.clone()),
            other => ParamValue::Str(other.to_string()),
        }
    }

    /// Human-readable rendering for tables.
    pub fn render(&self) -> String {
        match self {
            ParamValue::Int(i) => i.to_string(),
            ParamValue::Float(x) => format!("{x}"),
            ParamValue::Bool(b) => b.to_string(),
            ParamValue::Str(s) => s.clone(),
            ParamValue::Null => "null".into(),
        }
    }

    /// The value as a number, if it is one.
    pub fn as_f64(&self) -> Option<f64> {
        match self {
            ParamValue::Int(i) => Some(*i as f64),
            ParamValue::Float(x) => Some(*x),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn non_finite_numbers_name_their_path() {
        for bad in ["nan", "inf", "-inf"] {
            let t: toml::Table = format!("[schedule]\nw = [0.5, {bad}]").parse().unwrap();
            let e = toml_to_json(&t, "").unwrap_err().to_string();
            assert!(e.starts_with("schedule.w[1]: must be a finite number"), "{e}");
        }
    }
}
