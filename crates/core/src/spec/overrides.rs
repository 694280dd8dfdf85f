//! `--set KEY=VALUE` overrides, applied to the parsed scenario before resolution.

use crate::error::CoreError;
use crate::spec::top_level_keys;

/// Apply one `KEY=VALUE` override (`--set estimator.lambda=0.1`). VALUE is TOML
/// (`0.1`, `[0.5, 0.618]`, `{ from = 0, to = 1, steps = 5 }`, `"ridge"`); a bare word
/// that is not valid TOML is taken as a string (`estimator.kind=ridge`). KEY is a
/// top-level key, `section.key`, or `section.kind-name.key` for a per-kind table.
pub fn apply_override(table: &mut toml::Table, assignment: &str) -> Result<(), CoreError> {
    let Some((key, raw)) = assignment.split_once('=') else {
        return Err(CoreError::config(
            "--set",
            format!("expected KEY=VALUE (e.g. estimator.lambda=0.1), got `{assignment}`"),
        ));
    };
    let key = key.trim();
    let raw = raw.trim();
    let path: Vec<&str> = key.split('.').collect();
    if key.is_empty() || path.iter().any(|s| s.is_empty()) || path.len() > 3 {
        return Err(CoreError::config(
            "--set",
            format!(
                "`{key}` is not a valid key; use `top_level_key`, `section.key` or `section.kind.key` (e.g. schedule.w)"
            ),
        ));
    }
    let allowed = top_level_keys();
    if !allowed.contains(&path[0]) {
        return Err(CoreError::config(
            format!("--set {key}"),
            format!("unknown key `{}`; allowed: {}", path[0], allowed.join(", ")),
        ));
    }
    if raw.is_empty() {
        return Err(CoreError::config(format!("--set {key}"), "missing value after `=`"));
    }
    let value = match format!("v = {raw}").parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or(toml::Value::String(raw.to_string())),
        Err(e) => {
            let looks_structured = raw.starts_with(['[', '{', '"', '\'']) || raw.parse::<f64>().is_ok();
            let is_word = raw.chars().all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '.');
            if looks_structured || !is_word {
                return Err(CoreError::config(
                    format!("--set {key}"),
                    format!("cannot parse `{raw}` as a TOML value: {}", e.message()),
                ));
            }
            toml::Value::String(raw.to_string())
        }
    };
    let mut target = table;
    for (depth, part) in path[..path.len() - 1].iter().enumerate() {
        let entry = target.entry(part.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        target = entry.as_table_mut().ok_or_else(|| {
            CoreError::config(format!("--set {key}"), format!("`{}` is not a table", path[..=depth].join(".")))
        })?;
    }
    target.insert(path[path.len() - 1].to_string(), value);
    Ok(())
}
