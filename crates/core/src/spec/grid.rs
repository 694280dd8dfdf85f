//! From a scenario's sections to the sweep grid (docs in [`crate::spec`]).
//!
//! Each section is read into a [`SectionInput`]: the plugin kind(s), the fixed
//! parameters common to all kinds, the fixed parameters of each kind's own sub-table,
//! and the sweep axes found among them. [`enumerate`] then walks the grid: the kind axes
//! choose each section's plugin, and an axis from a kind's sub-table applies only to
//! cells of that kind.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use crate::error::CoreError;
use crate::registry::Section;
use crate::spec::{Axis, Sizes};

/// Largest number of cells a scenario may have.
pub const MAX_CELLS: usize = 1_000_000;
/// Largest number of values a range may expand to.
pub const MAX_STEPS: usize = 100_000;

/// One plugin section as written in the scenario.
#[derive(Debug, Clone)]
pub struct SectionInput {
    /// The section.
    pub section: Section,
    /// Selected kinds (more than one: a kind sweep).
    pub kinds: Vec<String>,
    /// Fixed parameters beside `kind`.
    pub common: Map<String, Value>,
    /// Fixed parameters of each kind's own sub-table (`[covariance.spiked]`).
    pub per_kind: BTreeMap<String, Map<String, Value>>,
}

/// The scenario's grid before enumeration.
#[derive(Debug, Clone)]
pub struct Template {
    /// Fixed `[design]` values.
    pub design: Map<String, Value>,
    /// Plugin sections present (a section that is absent and has no default is absent here).
    pub sections: Vec<SectionInput>,
    /// Every sweep axis, in grid order.
    pub axes: Vec<Axis>,
}

/// One point of the grid, before its plugins are built.
#[derive(Debug, Clone)]
pub struct CellSpec {
    /// The value on each axis (null where the axis does not apply).
    pub coordinates: Vec<Value>,
    /// `[design]` values.
    pub design: Map<String, Value>,
    /// Per section present: the kind and its parameters.
    pub sections: Vec<CellSection>,
}

/// One section of a grid point.
#[derive(Debug, Clone)]
pub struct CellSection {
    /// The section.
    pub section: Section,
    /// The selected kind.
    pub kind: String,
    /// Its parameters: common, then the kind's own, then axis values.
    pub params: Map<String, Value>,
    /// The keys that came from the kind's own sub-table (for error paths).
    pub own: Vec<String>,
}

/// How a parameter's schema says it is typed (decides what a list means).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Shape {
    Number,
    Integer,
    Array,
    /// A string or a choice among strings (an enum such as `synthetic_rows`).
    Text,
    Other,
}

pub(crate) fn field_shape(schema: &Value, key: &str) -> Shape {
    let Some(prop) = schema.get("properties").and_then(|p| p.get(key)) else {
        return Shape::Other;
    };
    let prop = crate::registry::property_schema(schema, prop);
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
    } else if types.contains(&"string") || string_choices(prop) {
        Shape::Text
    } else {
        Shape::Other
    }
}

/// An enum of strings, as schemars writes it: `enum: [..]` or `oneOf` of string consts.
fn string_choices(prop: &Value) -> bool {
    let consts = |v: &Value| v.get("const").is_some_and(Value::is_string);
    prop.get("enum").and_then(Value::as_array).is_some_and(|e| !e.is_empty() && e.iter().all(Value::is_string))
        || prop.get("oneOf").and_then(Value::as_array).is_some_and(|o| !o.is_empty() && o.iter().all(consts))
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
    let steps = usize::try_from(steps)
        .ok()
        .filter(|&s| s <= MAX_STEPS)
        .ok_or_else(|| CoreError::config(field, format!("`steps` = {steps} is more than {MAX_STEPS}")))?;
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
        let values: Vec<f64> = lin(a, b).into_iter().map(|e| 10f64.powf(e)).collect();
        if values.iter().any(|v| !v.is_finite()) {
            return Err(CoreError::config(field, "`logspace` exponents overflow f64 (keep them within ±300)"));
        }
        Ok(values)
    } else {
        if keys.iter().any(|k| !["from", "to", "steps"].contains(k)) {
            return Err(CoreError::config(field, format!("unexpected keys {keys:?}; {FORMS}")));
        }
        Ok(lin(num("from", obj.get("from"))?, num("to", obj.get("to"))?))
    }
}

fn to_integer(field: &str, x: f64) -> Result<Value, CoreError> {
    let r = x.round();
    if (x - r).abs() > 1e-9 * x.abs().max(1.0) || !(0.0..=9.0e15).contains(&r) {
        return Err(CoreError::config(field, format!("sweep value {x} is not a non-negative integer")));
    }
    Ok(Value::from(r as u64))
}

/// Split a table into fixed parameters and sweep axes (`field_prefix` names fields in
/// errors and columns: `estimator` or `estimator.pcr`).
fn split_params(
    section: &str,
    kind: Option<&str>,
    table: &Map<String, Value>,
    schema: &Value,
    fixed: &mut Map<String, Value>,
    axes: &mut Vec<Axis>,
) -> Result<(), CoreError> {
    let mut keys: Vec<&String> = table.keys().filter(|k| k.as_str() != "kind").collect();
    keys.sort();
    for key in keys {
        let value = &table[key];
        let field = match kind {
            Some(k) => format!("{section}.{k}.{key}"),
            None => format!("{section}.{key}"),
        };
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
            (Shape::Text, Value::Array(items)) => {
                if items.is_empty() {
                    return Err(CoreError::config(&field, "an empty list sweeps nothing; give at least one value"));
                }
                if let Some(bad) = items.iter().find(|v| !v.is_string()) {
                    return Err(CoreError::config(
                        &field,
                        format!("sweep lists of a text parameter must hold strings, found {bad}"),
                    ));
                }
                Some(items.clone())
            }
            // A boolean parameter (a flag) swept over a list of values.
            (Shape::Other, Value::Array(items)) if !items.is_empty() && items.iter().all(Value::is_boolean) => {
                Some(items.clone())
            }
            _ => None,
        };
        match sweep {
            Some(values) => axes.push(Axis {
                section: section.to_string(),
                key: key.clone(),
                kind: kind.map(str::to_string),
                values,
            }),
            None => {
                fixed.insert(key.clone(), value.clone());
            }
        }
    }
    Ok(())
}

/// Read `[design]` (sizes) and every plugin section into a [`Template`].
pub fn template(root: &Map<String, Value>) -> Result<Template, CoreError> {
    let mut axes = Vec::new();
    let design_table = match root.get("design") {
        Some(Value::Object(t)) => t.clone(),
        Some(v) => return Err(CoreError::config("design", format!("must be a table ([design]), got {v}"))),
        None => return Err(CoreError::config("design", "missing section [design] (n and p)")),
    };
    if design_table.contains_key("noise_sd") {
        return Err(CoreError::config(
            "design.noise_sd",
            "has moved to the family: write `noise_sd` under [family] (kind = \"linear-gaussian\")",
        ));
    }
    let design_schema = serde_json::to_value(schemars::schema_for!(Sizes)).unwrap_or(Value::Null);
    let mut design = Map::new();
    split_params("design", None, &design_table, &design_schema, &mut design, &mut axes)?;

    let mut sections = Vec::new();
    for &section in Section::ALL {
        let name = section.name();
        let mut table = match root.get(name) {
            Some(Value::Object(t)) => t.clone(),
            Some(v) => return Err(CoreError::config(name, format!("must be a table ([{name}]), got {v}"))),
            None => match section.default_kind() {
                Some(k) => Map::from_iter([("kind".to_string(), Value::from(k))]),
                None if section == Section::Schedule => continue,
                None => return Err(CoreError::config(name, format!("missing section [{name}]"))),
            },
        };
        let field = format!("{name}.kind");
        let kinds: Vec<String> = match table.get("kind") {
            Some(Value::String(k)) => vec![k.clone()],
            Some(Value::Array(items)) if !items.is_empty() => {
                let mut names: Vec<String> = Vec::new();
                for it in items {
                    match it.as_str() {
                        Some(k) if !names.iter().any(|n| n == k) => names.push(k.to_string()),
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
                return Err(CoreError::config(&field, format!("must be a plugin name or a list of names, got {v}")));
            }
            None => match section.default_kind() {
                Some(k) => vec![k.to_string()],
                None => return Err(CoreError::config(&field, "missing; name a plugin")),
            },
        };
        // Sub-tables named after a plugin of this section hold that plugin's own
        // parameters; those of kinds not selected are ignored, so narrowing a kind sweep
        // with --set needs no other edit.
        let registered = section.plugin_names()?;
        let sub_keys: Vec<String> = table
            .iter()
            .filter(|(k, v)| v.is_object() && registered.contains(&k.as_str()))
            .map(|(k, _)| k.clone())
            .collect();
        let mut specific_tables = BTreeMap::new();
        for key in sub_keys {
            if let Some(Value::Object(m)) = table.remove(&key) {
                specific_tables.insert(key, m);
            }
        }
        for kind in &kinds {
            if let Some(v) = table.get(kind) {
                return Err(CoreError::config(
                    format!("{name}.{kind}"),
                    format!("must be a table of `{kind}` parameters, got {v}"),
                ));
            }
        }
        let mut merged = Map::new();
        let mut schemas = BTreeMap::new();
        for kind in &kinds {
            let schema = section.schema(kind).map_err(|e| e.in_section(name))?;
            if let Some(props) = schema.get("properties").and_then(Value::as_object) {
                for (k, v) in props {
                    merged.entry(k.clone()).or_insert_with(|| crate::registry::property_schema(&schema, v).clone());
                }
            }
            schemas.insert(kind.clone(), schema);
        }
        if kinds.len() > 1 {
            axes.push(Axis {
                section: name.to_string(),
                key: "kind".to_string(),
                kind: None,
                values: kinds.iter().map(|k| Value::from(k.as_str())).collect(),
            });
        }
        let union = Value::Object(Map::from_iter([("properties".to_string(), Value::Object(merged))]));
        let mut common = Map::new();
        split_params(name, None, &table, &union, &mut common, &mut axes)?;
        let mut per_kind = BTreeMap::new();
        for kind in &kinds {
            if let Some(t) = specific_tables.get(kind) {
                let mut fixed = Map::new();
                split_params(name, Some(kind), t, &schemas[kind], &mut fixed, &mut axes)?;
                per_kind.insert(kind.clone(), fixed);
            }
        }
        sections.push(SectionInput { section, kinds, common, per_kind });
    }
    Ok(Template { design, sections, axes })
}

/// Walk the grid in row-major order over the axes (last axis fastest); an axis from a
/// kind's sub-table only multiplies the cells of that kind.
pub fn enumerate(template: &Template) -> Result<Vec<CellSpec>, CoreError> {
    let mut out = Vec::new();
    let kinds: BTreeMap<String, String> = template
        .sections
        .iter()
        .map(|s| (s.section.name().to_string(), s.kinds.first().cloned().unwrap_or_default()))
        .collect();
    let mut coords = Vec::with_capacity(template.axes.len());
    walk(template, 0, kinds, &mut coords, &mut out)?;
    Ok(out)
}

fn walk(
    template: &Template,
    depth: usize,
    kinds: BTreeMap<String, String>,
    coords: &mut Vec<Value>,
    out: &mut Vec<CellSpec>,
) -> Result<(), CoreError> {
    if depth == template.axes.len() {
        if out.len() >= MAX_CELLS {
            return Err(CoreError::config("scenario", format!("the sweep grid has more than {MAX_CELLS} cells")));
        }
        out.push(assemble(template, &kinds, coords));
        return Ok(());
    }
    let axis = &template.axes[depth];
    let applies = axis.kind.as_ref().is_none_or(|k| kinds.get(&axis.section) == Some(k));
    if !applies {
        coords.push(Value::Null);
        walk(template, depth + 1, kinds, coords, out)?;
        coords.pop();
        return Ok(());
    }
    for v in &axis.values {
        let mut next = kinds.clone();
        if axis.key == "kind"
            && let Some(k) = v.as_str()
        {
            next.insert(axis.section.clone(), k.to_string());
        }
        coords.push(v.clone());
        walk(template, depth + 1, next, coords, out)?;
        coords.pop();
    }
    Ok(())
}

fn assemble(template: &Template, kinds: &BTreeMap<String, String>, coords: &[Value]) -> CellSpec {
    let mut design = template.design.clone();
    let mut sections: Vec<CellSection> = template
        .sections
        .iter()
        .map(|s| {
            let kind = kinds[s.section.name()].clone();
            let mut params = s.common.clone();
            let mut own = Vec::new();
            if let Some(extra) = s.per_kind.get(&kind) {
                for (k, v) in extra {
                    params.insert(k.clone(), v.clone());
                    own.push(k.clone());
                }
            }
            CellSection { section: s.section, kind, params, own }
        })
        .collect();
    for (axis, v) in template.axes.iter().zip(coords) {
        if v.is_null() || axis.key == "kind" {
            continue;
        }
        if axis.section == "design" {
            design.insert(axis.key.clone(), v.clone());
        } else if let Some(cs) = sections.iter_mut().find(|cs| cs.section.name() == axis.section) {
            cs.params.insert(axis.key.clone(), v.clone());
            if axis.kind.is_some() {
                cs.own.push(axis.key.clone());
            }
        }
    }
    CellSpec { coordinates: coords.to_vec(), design, sections }
}
