//! Scenario files: parse, then override, then resolve.
//!
//! A scenario is a TOML file with top-level keys `name`, `description`, `seed`,
//! `replicates`, `iterations`, `common_random_numbers`, and the sections `[design]`
//! (`n`, `p`, `noise_sd`), `[signal]`, `[covariance]`, `[estimator]`, `[schedule]` and
//! `[setting]`. Each plugin section has `kind` plus that plugin's parameters flat
//! beside it. Parsing keeps the file generic (a TOML table); [`apply_override`] edits
//! it (`--set estimator.lambda=0.1`); [`resolve`] expands sweeps into cells, builds and
//! validates every plugin of every cell, and returns a [`ResolvedScenario`], the only
//! thing the engine accepts.
//!
//! **Sweeps.** A numeric parameter may be given as a list (`w = [0.5, 0.618]`), a
//! linear range (`w = { from = 0.1, to = 1.0, steps = 10 }`, both ends included) or a
//! log range (`lambda = { logspace = [-3, 1], steps = 9 }`: 10^-3 … 10^1, exponents as
//! in numpy's `logspace`). The scenario then runs the Cartesian grid of all swept
//! parameters; each grid point is a *cell*. A parameter that is itself a list (the
//! `list` schedule's `w`, `spiked`'s `spikes`) is swept by giving a list of lists.
//!
//! **Kind sweeps.** `kind = ["isotropic", "spiked"]` sweeps the plugin itself; each kind's
//! own parameters go in a sub-table named after it (`[covariance.spiked] spikes = [4.0]`),
//! and the parameter columns are the union over kinds (null where a kind lacks one).
//! Sub-tables of kinds that are not selected are ignored.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;

use schemars::JsonSchema;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::{CoreError, check_range};
use crate::model::{CellView, Covariance, Estimator, Schedule, Setting, Signal};
use crate::registry::{self, BuildContext, Built, Registered};

/// Plugin sections, in the order they appear in files, grids and columns.
pub const PLUGIN_SECTIONS: [&str; 5] = ["signal", "covariance", "estimator", "schedule", "setting"];

/// Top-level keys of a scenario file.
pub const TOP_LEVEL_KEYS: [&str; 12] = [
    "name",
    "description",
    "seed",
    "replicates",
    "iterations",
    "common_random_numbers",
    "design",
    "signal",
    "covariance",
    "estimator",
    "schedule",
    "setting",
];

/// Default plugin of a section that a scenario file leaves out.
fn default_kind(section: &str) -> Option<&'static str> {
    match section {
        "signal" => Some("random"),
        "covariance" => Some("isotropic"),
        "setting" => Some("fresh-labels"),
        _ => None,
    }
}

/// The `[design]` table: sizes and noise shared by every plugin of a cell.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DesignParams {
    /// Samples per iteration (n ≥ 1).
    pub n: usize,
    /// Features (p ≥ 1).
    pub p: usize,
    /// Standard deviation σ of label noise, real and synthetic (σ ≥ 0, default 1).
    #[serde(default = "one")]
    pub noise_sd: f64,
}

fn one() -> f64 {
    1.0
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
    fn from_json(v: &Value) -> ParamValue {
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
}

/// One swept parameter.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Section (`schedule`).
    pub section: String,
    /// Parameter inside the section (`w`).
    pub key: String,
    /// The values, in grid order.
    pub values: Vec<Value>,
}

impl Axis {
    /// Column name `section.key`.
    pub fn column(&self) -> String {
        // A swept plugin kind is the section's own column (`covariance`), as in Parquet.
        if self.key == "kind" { self.section.clone() } else { format!("{}.{}", self.section, self.key) }
    }
}

/// One point of the sweep grid with every plugin built and validated.
#[derive(Debug, Clone)]
pub struct Cell {
    /// Position in the grid (row-major over the axes, last axis fastest).
    pub index: usize,
    /// Design group (cells of one group share designs, signals and noise draws).
    pub group: usize,
    /// Sizes and noise.
    pub design: DesignParams,
    /// Estimator.
    pub estimator: Arc<dyn Estimator>,
    /// Covariance (shared between cells with identical covariance parameters).
    pub covariance: Arc<dyn Covariance>,
    /// Signal.
    pub signal: Arc<dyn Signal>,
    /// Schedule.
    pub schedule: Arc<dyn Schedule>,
    /// Setting.
    pub setting: Arc<dyn Setting>,
    /// The schedule's weights w_0..w_T.
    pub weights: Vec<f64>,
    /// Parameter columns (`design.n`, `estimator`, `estimator.lambda`, ...).
    pub columns: Vec<(String, ParamValue)>,
    /// The cell's value on each swept axis, in axis order.
    pub coordinates: Vec<Value>,
    /// Number of refits after t = 0.
    pub iterations: usize,
}

impl Cell {
    /// The view of this cell handed to schedules and settings.
    pub fn view(&self) -> CellView<'_> {
        CellView {
            n: self.design.n,
            p: self.design.p,
            noise_sd: self.design.noise_sd,
            iterations: self.iterations,
            estimator: self.estimator.as_ref(),
            covariance: self.covariance.as_ref(),
            signal: self.signal.as_ref(),
        }
    }

    /// The value of parameter column `name`, if the cell has it.
    pub fn column(&self, name: &str) -> Option<&ParamValue> {
        self.columns.iter().find(|(c, _)| c == name).map(|(_, v)| v)
    }
}

/// A design group: cells that share n, p, covariance, signal, noise and setting kind.
#[derive(Debug, Clone)]
pub struct Group {
    /// Member cells, ascending.
    pub cells: Vec<usize>,
}

/// A validated scenario: the only input the engine accepts.
#[derive(Debug, Clone)]
pub struct ResolvedScenario {
    /// Scenario name (also the default output directory).
    pub name: String,
    /// Free-text description.
    pub description: String,
    /// Master seed.
    pub seed: u64,
    /// Independent replicates per cell.
    pub replicates: usize,
    /// Refits after t = 0.
    pub iterations: usize,
    /// Whether cells of a design group share random numbers and factorizations.
    pub common_random_numbers: bool,
    /// Swept parameters.
    pub axes: Vec<Axis>,
    /// Grid cells.
    pub cells: Vec<Cell>,
    /// Design groups (one per cell without common random numbers).
    pub groups: Vec<Group>,
    /// The scenario as TOML after overrides, with defaults filled in.
    pub resolved: toml::Table,
}

impl ResolvedScenario {
    /// Names of the parameter columns, in order.
    pub fn column_names(&self) -> Vec<String> {
        // The union over cells, in order of first appearance (kind sweeps give cells
        // different parameter sets).
        let mut names: Vec<String> = Vec::new();
        for c in &self.cells {
            for (n, _) in &c.columns {
                if !names.contains(n) {
                    names.push(n.clone());
                }
            }
        }
        names
    }

    /// The resolved scenario as TOML text (what `scenario.toml` holds).
    pub fn to_toml(&self) -> String {
        toml::to_string_pretty(&self.resolved).unwrap_or_default()
    }
}

/// Parse scenario TOML text; `origin` names the file in errors.
pub fn parse(text: &str, origin: &str) -> Result<toml::Table, CoreError> {
    text.parse::<toml::Table>().map_err(|e| CoreError::config(origin, format!("invalid TOML: {e}")))
}

/// Apply one `KEY=VALUE` override (`--set estimator.lambda=0.1`). VALUE is TOML
/// (`0.1`, `[0.5, 0.618]`, `{ from = 0, to = 1, steps = 5 }`, `"ridge"`); a bare word
/// that is not valid TOML is taken as a string (`estimator.kind=ridge`).
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
    if key.is_empty() || path.iter().any(|s| s.is_empty()) || path.len() > 2 {
        return Err(CoreError::config(
            "--set",
            format!("`{key}` is not a valid key; use `top_level_key` or `section.key` (e.g. schedule.w)"),
        ));
    }
    if !TOP_LEVEL_KEYS.contains(&path[0]) {
        return Err(CoreError::config(
            format!("--set {key}"),
            format!("unknown key `{}`; allowed: {}", path[0], TOP_LEVEL_KEYS.join(", ")),
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
    if path.len() == 1 {
        table.insert(path[0].to_string(), value);
    } else {
        let section = table.entry(path[0].to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(section) = section.as_table_mut() else {
            return Err(CoreError::config(format!("--set {key}"), format!("`{}` is not a table", path[0])));
        };
        section.insert(path[1].to_string(), value);
    }
    Ok(())
}

/// How a parameter's schema says it is typed (decides what a list means).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shape {
    Number,
    Integer,
    Array,
    Other,
}

fn field_shape(schema: &Value, key: &str) -> Shape {
    let Some(prop) = schema.get("properties").and_then(|p| p.get(key)) else {
        return Shape::Other;
    };
    let prop = match prop.get("$ref").and_then(Value::as_str) {
        Some(r) => {
            let name = r.rsplit('/').next().unwrap_or("");
            schema.get("$defs").and_then(|d| d.get(name)).unwrap_or(prop)
        }
        None => prop,
    };
    let types: Vec<&str> = match prop.get("type") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    if types.contains(&"integer") {
        Shape::Integer
    } else if types.contains(&"number") {
        Shape::Number
    } else if types.contains(&"array") {
        Shape::Array
    } else {
        Shape::Other
    }
}

/// Expand a range object `{ from, to, steps }` / `{ logspace = [a, b], steps }`.
fn expand_range(field: &str, obj: &Map<String, Value>) -> Result<Vec<f64>, CoreError> {
    const FORMS: &str =
        "expected a number, a list of numbers, { from = a, to = b, steps = k } or { logspace = [a, b], steps = k }";
    let steps = obj
        .get("steps")
        .and_then(Value::as_u64)
        .filter(|&s| s >= 1)
        .ok_or_else(|| CoreError::config(field, format!("`steps` must be an integer >= 1; {FORMS}")))?;
    let steps = usize::try_from(steps).map_err(|_| CoreError::config(field, "`steps` is too large"))?;
    if steps > 100_000 {
        return Err(CoreError::config(field, format!("`steps` = {steps} is more than 100000")));
    }
    let lin = |a: f64, b: f64| -> Vec<f64> {
        if steps == 1 { vec![a] } else { (0..steps).map(|i| a + (b - a) * (i as f64) / ((steps - 1) as f64)).collect() }
    };
    let num = |k: &str, v: Option<&Value>| -> Result<f64, CoreError> {
        v.and_then(Value::as_f64)
            .filter(|x| x.is_finite())
            .ok_or_else(|| CoreError::config(field, format!("`{k}` must be a finite number; {FORMS}")))
    };
    let keys: Vec<&str> = obj.keys().map(String::as_str).collect();
    if let Some(ls) = obj.get("logspace") {
        if keys.iter().any(|k| !["logspace", "steps"].contains(k)) {
            return Err(CoreError::config(field, format!("unexpected keys {keys:?}; {FORMS}")));
        }
        let pair = ls
            .as_array()
            .filter(|a| a.len() == 2)
            .ok_or_else(|| CoreError::config(field, format!("`logspace` must be [a, b] (exponents of 10); {FORMS}")))?;
        let (a, b) = (num("logspace[0]", pair.first())?, num("logspace[1]", pair.get(1))?);
        Ok(lin(a, b).into_iter().map(|e| 10f64.powf(e)).collect())
    } else {
        if keys.iter().any(|k| !["from", "to", "steps"].contains(k)) {
            return Err(CoreError::config(field, format!("unexpected keys {keys:?}; {FORMS}")));
        }
        Ok(lin(num("from", obj.get("from"))?, num("to", obj.get("to"))?))
    }
}

fn to_integer(field: &str, x: f64) -> Result<Value, CoreError> {
    let r = x.round();
    if (x - r).abs() > 1e-9 * x.abs().max(1.0) || r < 0.0 {
        return Err(CoreError::config(field, format!("sweep value {x} is not a non-negative integer")));
    }
    Ok(Value::from(r as u64))
}

/// Split a section's table into fixed parameters and sweep axes.
fn split_section(
    section: &str,
    table: &Map<String, Value>,
    schema: &Value,
    fixed: &mut Map<String, Value>,
    axes: &mut Vec<Axis>,
) -> Result<(), CoreError> {
    let mut keys: Vec<&String> = table.keys().filter(|k| k.as_str() != "kind").collect();
    keys.sort();
    for key in keys {
        let value = &table[key];
        let field = format!("{section}.{key}");
        let shape = field_shape(schema, key);
        let sweep: Option<Vec<Value>> = match (shape, value) {
            (Shape::Number | Shape::Integer, Value::Array(items)) => {
                if items.is_empty() {
                    return Err(CoreError::config(&field, "an empty list sweeps nothing; give at least one value"));
                }
                let mut out = Vec::with_capacity(items.len());
                for it in items {
                    let x = it.as_f64().ok_or_else(|| {
                        CoreError::config(&field, format!("sweep lists must hold numbers, found {it}"))
                    })?;
                    out.push(if shape == Shape::Integer { to_integer(&field, x)? } else { it.clone() });
                }
                Some(out)
            }
            (Shape::Number | Shape::Integer, Value::Object(obj)) => {
                let xs = expand_range(&field, obj)?;
                Some(if shape == Shape::Integer {
                    xs.into_iter().map(|x| to_integer(&field, x)).collect::<Result<_, _>>()?
                } else {
                    xs.into_iter().map(Value::from).collect()
                })
            }
            (Shape::Array, Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_array) => {
                Some(items.clone())
            }
            _ => None,
        };
        match sweep {
            Some(values) => axes.push(Axis { section: section.to_string(), key: key.clone(), values }),
            None => {
                fixed.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

fn section_schema(section: &str, kind: &str) -> Result<Value, CoreError> {
    fn of<T: ?Sized + Registered>(kind: &str) -> Result<Value, CoreError> {
        Ok((registry::lookup::<T>(kind)?.schema)())
    }
    match section {
        "signal" => of::<dyn Signal>(kind),
        "covariance" => of::<dyn Covariance>(kind),
        "estimator" => of::<dyn Estimator>(kind),
        "schedule" => of::<dyn Schedule>(kind),
        "setting" => of::<dyn Setting>(kind),
        _ => Ok(Value::Null),
    }
}

fn section_plugin_names(section: &str) -> Result<Vec<&'static str>, CoreError> {
    fn names<T: ?Sized + Registered>() -> Result<Vec<&'static str>, CoreError> {
        Ok(registry::plugins::<T>()?.into_iter().map(|p| p.name).collect())
    }
    match section {
        "signal" => names::<dyn Signal>(),
        "covariance" => names::<dyn Covariance>(),
        "estimator" => names::<dyn Estimator>(),
        "schedule" => names::<dyn Schedule>(),
        "setting" => names::<dyn Setting>(),
        _ => Ok(Vec::new()),
    }
}

fn get_u64(map: &Map<String, Value>, key: &str, default: Option<u64>, min: u64) -> Result<u64, CoreError> {
    match map.get(key) {
        None => default.ok_or_else(|| CoreError::config(key, "missing; this key is required")),
        Some(v) => match v.as_u64() {
            Some(x) if x >= min => Ok(x),
            _ => Err(CoreError::config(key, format!("must be an integer >= {min}, got {v}"))),
        },
    }
}

fn to_usize(key: &str, x: u64) -> Result<usize, CoreError> {
    usize::try_from(x).map_err(|_| CoreError::config(key, "value too large"))
}

/// A built covariance and the parameter record it was built from.
type CachedCovariance = (Arc<dyn Covariance>, Map<String, Value>);

/// Validate and expand a parsed scenario into cells.
pub fn resolve(table: &toml::Table) -> Result<ResolvedScenario, CoreError> {
    let root = serde_json::to_value(table).map_err(|e| CoreError::config("scenario", e.to_string()))?;
    let Value::Object(root) = root else {
        return Err(CoreError::config("scenario", "a scenario must be a TOML table"));
    };
    for key in root.keys() {
        if !TOP_LEVEL_KEYS.contains(&key.as_str()) {
            return Err(CoreError::config(key, format!("unknown key; allowed: {}", TOP_LEVEL_KEYS.join(", "))));
        }
    }
    let name = match root.get("name") {
        Some(Value::String(s)) if !s.is_empty() => s.clone(),
        Some(v) => return Err(CoreError::config("name", format!("must be a non-empty string, got {v}"))),
        None => return Err(CoreError::config("name", "missing; this key is required")),
    };
    if !name.chars().all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.')) || name.starts_with('.') {
        return Err(CoreError::config(
            "name",
            format!("`{name}` must use only letters, digits, `-`, `_` and `.` (it names the output directory)"),
        ));
    }
    let description = match root.get("description") {
        None => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(v) => return Err(CoreError::config("description", format!("must be a string, got {v}"))),
    };
    let seed = get_u64(&root, "seed", Some(0), 0)?;
    let replicates = to_usize("replicates", get_u64(&root, "replicates", None, 1)?)?;
    let iterations = to_usize("iterations", get_u64(&root, "iterations", None, 0)?)?;
    if iterations > 10_000_000 {
        return Err(CoreError::config("iterations", format!("{iterations} is more than 10000000")));
    }
    let common_random_numbers = match root.get("common_random_numbers") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(CoreError::config("common_random_numbers", format!("must be true or false, got {v}"))),
    };

    // Sections: generic tables split into `kind`, fixed parameters and sweep axes.
    let mut axes = Vec::new();
    let mut fixed: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();
    let mut kinds: BTreeMap<&str, Vec<String>> = BTreeMap::new();
    let mut per_kind: BTreeMap<&str, BTreeMap<String, Map<String, Value>>> = BTreeMap::new();
    let design_schema = serde_json::to_value(schemars::schema_for!(DesignParams)).unwrap_or(Value::Null);
    for section in std::iter::once("design").chain(PLUGIN_SECTIONS) {
        let mut table = match root.get(section) {
            Some(Value::Object(t)) => t.clone(),
            Some(v) => return Err(CoreError::config(section, format!("must be a table ([{section}]), got {v}"))),
            None => match default_kind(section) {
                Some(k) => Map::from_iter([("kind".to_string(), Value::from(k))]),
                None => return Err(CoreError::config(section, format!("missing section [{section}]"))),
            },
        };
        let schema = if section == "design" {
            design_schema.clone()
        } else {
            let field = format!("{section}.kind");
            let names: Vec<String> = match table.get("kind") {
                Some(Value::String(k)) => vec![k.clone()],
                // A list of kinds sweeps the plugin itself; each kind's own parameters
                // sit in a sub-table named after it (`[covariance.spiked] spikes = [4.0]`).
                Some(Value::Array(items)) if !items.is_empty() => {
                    let mut names = Vec::new();
                    for it in items {
                        match it.as_str() {
                            Some(k) if !names.iter().any(|n: &String| n == k) => names.push(k.to_string()),
                            Some(k) => return Err(CoreError::config(&field, format!("`{k}` is listed twice"))),
                            None => {
                                return Err(CoreError::config(
                                    &field,
                                    format!("must be a plugin name or a list of names, got {it}"),
                                ));
                            }
                        }
                    }
                    names
                }
                Some(v) => {
                    return Err(CoreError::config(
                        &field,
                        format!("must be a plugin name or a list of names, got {v}"),
                    ));
                }
                None => match default_kind(section) {
                    Some(k) => vec![k.to_string()],
                    None => return Err(CoreError::config(&field, "missing; name a plugin")),
                },
            };
            let mut merged = Map::new();
            for kind in &names {
                let schema = section_schema(section, kind).map_err(|e| e.in_section(section))?;
                if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                    for (k, v) in props {
                        merged.entry(k.clone()).or_insert_with(|| v.clone());
                    }
                }
            }
            // Sub-tables named after a plugin of this section hold that plugin's own
            // parameters (`[covariance.spiked]`); those of kinds not selected are ignored,
            // so narrowing a kind sweep with --set needs no other edit.
            let registered = section_plugin_names(section)?;
            let mut specific = BTreeMap::new();
            let sub_keys: Vec<String> = table
                .iter()
                .filter(|(k, v)| v.is_object() && registered.contains(&k.as_str()))
                .map(|(k, _)| k.clone())
                .collect();
            for key in sub_keys {
                if let Some(Value::Object(m)) = table.remove(&key) {
                    specific.insert(key, m);
                }
            }
            for kind in &names {
                if let Some(v) = table.get(kind) {
                    return Err(CoreError::config(
                        format!("{section}.{kind}"),
                        format!("must be a table of `{kind}` parameters, got {v}"),
                    ));
                }
            }
            if !specific.is_empty() {
                per_kind.insert(section, specific);
            }
            if names.len() > 1 {
                axes.push(Axis {
                    section: section.to_string(),
                    key: "kind".to_string(),
                    values: names.iter().map(|k| Value::from(k.as_str())).collect(),
                });
            }
            kinds.insert(section, names);
            Value::Object(Map::from_iter([("properties".to_string(), Value::Object(merged))]))
        };
        let mut f = Map::new();
        split_section(section, &table, &schema, &mut f, &mut axes)?;
        fixed.insert(section, f);
    }

    let grid_size = axes.iter().try_fold(1usize, |acc, a| acc.checked_mul(a.values.len()));
    let grid_size = match grid_size {
        Some(g) if g <= 1_000_000 => g,
        _ => return Err(CoreError::config("scenario", "the sweep grid has more than 1000000 cells")),
    };

    let mut covariance_cache: HashMap<String, CachedCovariance> = HashMap::new();
    let mut signal_cache: HashMap<String, Arc<dyn Signal>> = HashMap::new();
    let mut group_keys: HashMap<String, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    let mut cells = Vec::with_capacity(grid_size);
    let mut defaults: BTreeMap<&str, Map<String, Value>> = BTreeMap::new();

    // Sections with one plugin kind: their defaults are written into scenario.toml.
    let single_kind: std::collections::BTreeSet<&str> =
        kinds.iter().filter(|(_, names)| names.len() == 1).map(|(section, _)| *section).collect();
    for index in 0..grid_size {
        // Row-major: the last axis varies fastest.
        let mut coords = Vec::with_capacity(axes.len());
        let mut rem = index;
        for axis in axes.iter().rev() {
            coords.push(axis.values[rem % axis.values.len()].clone());
            rem /= axis.values.len();
        }
        coords.reverse();
        let mut params = fixed.clone();
        let mut cell_kinds: BTreeMap<&str, String> =
            kinds.iter().map(|(s, names)| (*s, names.first().cloned().unwrap_or_default())).collect();
        for (axis, v) in axes.iter().zip(&coords) {
            if axis.key == "kind" {
                if let (Some(k), Some(slot)) = (v.as_str(), cell_kinds.get_mut(axis.section.as_str())) {
                    *slot = k.to_string();
                }
            } else if let Some(m) = params.get_mut(axis.section.as_str()) {
                m.insert(axis.key.clone(), v.clone());
            }
        }
        for (section, specific) in &per_kind {
            if let (Some(extra), Some(m)) = (specific.get(&cell_kinds[section]), params.get_mut(section)) {
                for (k, v) in extra {
                    m.insert(k.clone(), v.clone());
                }
            }
        }
        let kinds = &cell_kinds;
        let design_value = Value::Object(params["design"].clone());
        let design: DesignParams = registry::deserialize_strict(&design_value).map_err(|e| e.in_section("design"))?;
        if design.n == 0 {
            return Err(CoreError::config("design.n", "must be >= 1, got 0"));
        }
        if design.p == 0 {
            return Err(CoreError::config("design.p", "must be >= 1, got 0"));
        }
        check_range("noise_sd", design.noise_sd, 0.0, f64::INFINITY)
            .map_err(|e| CoreError::from(e).in_section("design"))?;
        let ctx = BuildContext { n: design.n, p: design.p, noise_sd: design.noise_sd };

        let mut columns: Vec<(String, ParamValue)> = vec![
            ("design.n".into(), ParamValue::Int(design.n as i64)),
            ("design.p".into(), ParamValue::Int(design.p as i64)),
            ("design.noise_sd".into(), ParamValue::Float(design.noise_sd)),
        ];
        let mut record = |section: &'static str, kind: &str, built_params: &Map<String, Value>| {
            columns.push((section.to_string(), ParamValue::Str(kind.to_string())));
            for (k, v) in built_params {
                columns.push((format!("{section}.{k}"), ParamValue::from_json(v)));
            }
            if index == 0 && single_kind.contains(section) {
                defaults.insert(section, built_params.clone());
            }
        };

        fn build_in<T: ?Sized + Registered>(
            section: &str,
            kind: &str,
            params: &Map<String, Value>,
            ctx: &BuildContext,
        ) -> Result<Built<T>, CoreError> {
            registry::build::<T>(kind, &Value::Object(params.clone()), ctx).map_err(|e| e.in_section(section))
        }

        let cov_key = format!("{}|{}|{}", kinds["covariance"], Value::Object(params["covariance"].clone()), design.p);
        let (covariance, cov_params) = match covariance_cache.get(&cov_key) {
            Some(c) => c.clone(),
            None => {
                let built =
                    build_in::<dyn Covariance>("covariance", &kinds["covariance"], &params["covariance"], &ctx)?;
                let c: Arc<dyn Covariance> = Arc::from(built.object);
                if c.dim() != design.p {
                    return Err(CoreError::config(
                        "covariance",
                        format!("has dimension {} but design.p = {}", c.dim(), design.p),
                    ));
                }
                covariance_cache.insert(cov_key.clone(), (c.clone(), built.params.clone()));
                (c, built.params)
            }
        };
        let sig_key = format!("{}|{}|{}", kinds["signal"], Value::Object(params["signal"].clone()), cov_key);
        let built_signal = build_in::<dyn Signal>("signal", &kinds["signal"], &params["signal"], &ctx)?;
        let signal: Arc<dyn Signal> = match signal_cache.get(&sig_key) {
            Some(s) => s.clone(),
            None => {
                let s: Arc<dyn Signal> = Arc::from(built_signal.object);
                signal_cache.insert(sig_key.clone(), s.clone());
                s
            }
        };
        record("signal", &kinds["signal"], &built_signal.params);
        record("covariance", &kinds["covariance"], &cov_params);
        let built_estimator = build_in::<dyn Estimator>("estimator", &kinds["estimator"], &params["estimator"], &ctx)?;
        record("estimator", &kinds["estimator"], &built_estimator.params);
        let built_schedule = build_in::<dyn Schedule>("schedule", &kinds["schedule"], &params["schedule"], &ctx)?;
        record("schedule", &kinds["schedule"], &built_schedule.params);
        let built_setting = build_in::<dyn Setting>("setting", &kinds["setting"], &params["setting"], &ctx)?;
        record("setting", &kinds["setting"], &built_setting.params);

        let estimator: Arc<dyn Estimator> = Arc::from(built_estimator.object);
        let schedule: Arc<dyn Schedule> = Arc::from(built_schedule.object);
        let setting: Arc<dyn Setting> = Arc::from(built_setting.object);
        let view = CellView {
            n: design.n,
            p: design.p,
            noise_sd: design.noise_sd,
            iterations,
            estimator: estimator.as_ref(),
            covariance: covariance.as_ref(),
            signal: signal.as_ref(),
        };
        setting.check(&view).map_err(|e| e.in_section("setting"))?;
        let weights = schedule.weights(&view).map_err(|e| e.in_section("schedule"))?;
        if weights.len() != iterations + 1 {
            return Err(CoreError::config(
                "schedule",
                format!("produced {} weights, expected iterations + 1 = {}", weights.len(), iterations + 1),
            ));
        }
        if let Some((t, w)) = weights.iter().enumerate().find(|(_, w)| !(0.0..=1.0).contains(*w)) {
            return Err(CoreError::config(
                "schedule.w",
                format!("weight at iteration {t} is {w}; weights must be in [0, 1]"),
            ));
        }

        // Design group: everything that changes the design, the signal or the noise.
        let group_key = if common_random_numbers {
            format!(
                "{}|{}|{}|{}|{}|{:?}",
                Value::Object(params["design"].clone()),
                cov_key,
                sig_key,
                kinds["setting"],
                setting.fixed_design(),
                setting.row_space_mode(&view)
            )
        } else {
            format!("cell {index}")
        };
        let group = *group_keys.entry(group_key).or_insert_with(|| {
            groups.push(Group { cells: Vec::new() });
            groups.len() - 1
        });
        groups[group].cells.push(index);

        cells.push(Cell {
            index,
            group,
            design,
            estimator,
            covariance,
            signal,
            schedule,
            setting,
            weights,
            columns,
            coordinates: coords,
            iterations,
        });
    }

    // The resolved scenario: the input after overrides, with defaults written out.
    let mut resolved = table.clone();
    resolved.insert("seed".into(), toml::Value::Integer(seed as i64));
    resolved.insert("common_random_numbers".into(), toml::Value::Boolean(common_random_numbers));
    for section in std::iter::once("design").chain(PLUGIN_SECTIONS) {
        let entry = resolved.entry(section.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        if let Some(t) = entry.as_table_mut() {
            if let Some([kind]) = kinds.get(section).map(Vec::as_slice) {
                t.entry("kind".to_string()).or_insert_with(|| toml::Value::String(kind.clone()));
            }
            let section_defaults = if section == "design" {
                cells.first().and_then(|c| serde_json::to_value(&c.design).ok()).and_then(|v| v.as_object().cloned())
            } else {
                defaults.get(section).cloned()
            };
            let in_subtable = |k: &str| {
                kinds.get(section).and_then(|names| names.first()).is_some_and(|kind| {
                    t.get(kind).and_then(toml::Value::as_table).is_some_and(|sub| sub.contains_key(k))
                })
            };
            let section_defaults = section_defaults.unwrap_or_default();
            let to_add: Vec<(String, Value)> = section_defaults
                .into_iter()
                .filter(|(k, v)| !v.is_null() && !t.contains_key(k) && !in_subtable(k))
                .collect();
            for (k, v) in to_add {
                if let Ok(tv) = toml::Value::try_from(&v) {
                    t.insert(k, tv);
                }
            }
        }
    }

    Ok(ResolvedScenario {
        name,
        description,
        seed,
        replicates,
        iterations,
        common_random_numbers,
        axes,
        cells,
        groups,
        resolved,
    })
}

/// The JSON Schema of scenario files: top-level keys plus, for each section, one
/// variant per registered plugin (its parameters, each numeric one also accepting the
/// sweep forms).
pub fn scenario_schema() -> Result<Value, CoreError> {
    let sweep_defs = serde_json::json!({
        "linear_range": {
            "type": "object",
            "description": "Linear sweep: `steps` values from `from` to `to`, both included.",
            "properties": {"from": {"type": "number"}, "to": {"type": "number"}, "steps": {"type": "integer", "minimum": 1}},
            "required": ["from", "to", "steps"],
            "additionalProperties": false
        },
        "log_range": {
            "type": "object",
            "description": "Log sweep: `steps` values 10^a ... 10^b (exponents, as numpy.logspace).",
            "properties": {"logspace": {"type": "array", "items": {"type": "number"}, "minItems": 2, "maxItems": 2}, "steps": {"type": "integer", "minimum": 1}},
            "required": ["logspace", "steps"],
            "additionalProperties": false
        }
    });
    fn sweepable(schema: &Value) -> Value {
        let mut schema = schema.clone();
        let defs = schema.get("$defs").cloned();
        if let Some(props) = schema.get_mut("properties").and_then(Value::as_object_mut) {
            for (key, prop) in props.iter_mut() {
                let shape = field_shape(
                    &Value::Object(Map::from_iter([
                        ("properties".to_string(), Value::Object(Map::from_iter([(key.clone(), prop.clone())]))),
                        ("$defs".to_string(), defs.clone().unwrap_or(Value::Null)),
                    ])),
                    key,
                );
                let original = prop.clone();
                *prop = match shape {
                    Shape::Number | Shape::Integer => serde_json::json!({"anyOf": [
                        original,
                        {"type": "array", "items": {"type": "number"}, "minItems": 1},
                        {"$ref": "#/$defs/linear_range"},
                        {"$ref": "#/$defs/log_range"}
                    ]}),
                    Shape::Array => serde_json::json!({"anyOf": [original, {"type": "array", "items": original}]}),
                    Shape::Other => original,
                };
            }
        }
        if let Some(obj) = schema.as_object_mut() {
            obj.remove("$schema");
        }
        schema
    }
    // Move a plugin schema's own `$defs` to the root (under `<plugin>.<Name>`) and
    // rewrite its references, so that every `$ref` resolves against the scenario schema.
    fn hoist_defs(schema: &mut Value, prefix: &str, root: &mut Map<String, Value>) {
        fn rewrite(v: &mut Value, prefix: &str, own: &[String]) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get_mut("$ref")
                        && let Some(name) = r.strip_prefix("#/$defs/")
                        && own.iter().any(|o| o == name)
                    {
                        *r = format!("#/$defs/{prefix}.{name}");
                    }
                    m.values_mut().for_each(|x| rewrite(x, prefix, own));
                }
                Value::Array(a) => a.iter_mut().for_each(|x| rewrite(x, prefix, own)),
                _ => {}
            }
        }
        let Some(Value::Object(defs)) = schema.as_object_mut().and_then(|o| o.remove("$defs")) else {
            return;
        };
        let own: Vec<String> = defs.keys().cloned().collect();
        rewrite(schema, prefix, &own);
        for (name, mut def) in defs {
            rewrite(&mut def, prefix, &own);
            root.insert(format!("{prefix}.{name}"), def);
        }
    }
    fn variants<T: ?Sized + Registered>(root_defs: &mut Map<String, Value>) -> Result<Value, CoreError> {
        let mut out = Vec::new();
        for p in registry::plugins::<T>()? {
            let mut s = sweepable(&(p.schema)());
            hoist_defs(&mut s, &format!("{}.{}", T::KIND.name(), p.name), root_defs);
            if let Some(obj) = s.as_object_mut() {
                let props = obj.entry("properties").or_insert_with(|| Value::Object(Map::new()));
                if let Some(props) = props.as_object_mut() {
                    props.insert("kind".into(), serde_json::json!({"const": p.name, "description": p.summary}));
                }
                let req = obj.entry("required").or_insert_with(|| Value::Array(vec![]));
                if let Some(req) = req.as_array_mut() {
                    req.push(Value::from("kind"));
                }
                obj.insert("title".into(), Value::from(p.name));
            }
            out.push(s);
        }
        // A kind sweep: a list of plugin names, each one's own parameters in a sub-table
        // named after it, common parameters flat beside `kind`.
        let names: Vec<&str> = registry::plugins::<T>()?.into_iter().map(|p| p.name).collect();
        out.push(serde_json::json!({
            "title": "kind sweep",
            "type": "object",
            "description": "Sweep the plugin itself: `kind = [\"a\", \"b\"]`; parameters of one kind go in a sub-table named after it.",
            "properties": {"kind": {"type": "array", "items": {"enum": names}, "minItems": 1, "uniqueItems": true}},
            "required": ["kind"]
        }));
        Ok(serde_json::json!({"oneOf": out}))
    }
    let design = sweepable(&serde_json::to_value(schemars::schema_for!(DesignParams)).unwrap_or(Value::Null));
    let mut defs = match sweep_defs {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let signal = variants::<dyn Signal>(&mut defs)?;
    let covariance = variants::<dyn Covariance>(&mut defs)?;
    let estimator = variants::<dyn Estimator>(&mut defs)?;
    let schedule = variants::<dyn Schedule>(&mut defs)?;
    let setting = variants::<dyn Setting>(&mut defs)?;
    Ok(serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "collapse scenario",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "replicates", "iterations", "design", "estimator", "schedule"],
        "properties": {
            "name": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.-]*$", "description": "Scenario name; names the default output directory results/<name>."},
            "description": {"type": "string"},
            "seed": {"type": "integer", "minimum": 0, "default": 0, "description": "Master seed of every random stream."},
            "replicates": {"type": "integer", "minimum": 1, "description": "Independent replicates per cell."},
            "iterations": {"type": "integer", "minimum": 0, "description": "Refits after the first fit t = 0."},
            "common_random_numbers": {"type": "boolean", "default": true, "description": "Cells that differ only in estimator/schedule/setting parameters share designs, signals and noise draws per replicate, and one factorization."},
            "design": design,
            "signal": signal,
            "covariance": covariance,
            "estimator": estimator,
            "schedule": schedule,
            "setting": setting,
        },
        "$defs": defs,
    }))
}
