//! `collapse list` and `collapse describe`: the registry as the user sees it.

use anyhow::Result;
use collapse_core::registry::{self, Bounds, PluginInfo, property_schema};
use collapse_core::{CoreError, Section};
use serde_json::{Value, json};

use crate::UserError;

/// The kinds `list` and `describe` accept: every section, then `scenario`.
fn kind_names() -> Vec<&'static str> {
    Section::ALL.iter().map(|s| s.name()).chain(["scenario"]).collect()
}

fn catalog(kind: &str) -> Result<Vec<PluginInfo>> {
    let t = kind.trim();
    if t == "scenario" || t == "scenarios" {
        return Ok(registry::scenario_catalog()?);
    }
    match Section::parse(t) {
        Some(section) => Ok(section.catalog()?),
        None => {
            Err(UserError::new(format!("KIND: unknown plugin kind `{kind}`; allowed: {}", kind_names().join(", ")))
                .into())
        }
    }
}

/// Print every registered plugin (of one kind, or all).
pub fn list(kind: Option<&str>, as_json: bool) -> Result<()> {
    let kinds: Vec<String> = match kind {
        Some(k) => vec![k.to_string()],
        None => kind_names().into_iter().map(str::to_string).collect(),
    };
    let mut all = Vec::new();
    for k in &kinds {
        all.extend(catalog(k)?);
    }
    if as_json {
        let v: Vec<Value> = all
            .iter()
            .map(|p| json!({"kind": p.kind, "name": p.name, "summary": p.summary, "crate": p.provided_by.0}))
            .collect();
        outln!("{}", serde_json::to_string_pretty(&v)?);
    } else {
        let width = all.iter().map(|p| p.name.len()).max().unwrap_or(0);
        let mut current = None;
        for p in &all {
            if current != Some(p.kind) {
                outln!("{}:", p.kind);
                current = Some(p.kind);
            }
            outln!("  {:width$}  {}", p.name, p.summary);
        }
    }
    Ok(())
}

/// How a parameter's allowed values read in `describe`.
fn allowed(root: &Value, prop: &Value) -> Vec<String> {
    let mut out = Vec::new();
    let bounds = Bounds::of(prop);
    if !bounds.is_empty() {
        out.push(bounds.describe());
    }
    if let Some(items) = prop.get("items") {
        let b = Bounds::of(property_schema(root, items));
        if !b.is_empty() {
            out.push(format!("each {}", b.describe()));
        }
    }
    if let Some(e) = prop.get("enum") {
        out.push(format!("one of {e}"));
    }
    if let Some(Value::Array(options)) = prop.get("oneOf") {
        let names: Vec<String> = options.iter().filter_map(|o| o.get("const").map(|c| c.to_string())).collect();
        if !names.is_empty() {
            out.push(format!("one of [{}]", names.join(", ")));
        }
    }
    out
}

/// Print one plugin: its documentation, parameters with defaults and ranges, an example.
pub fn describe(kind: &str, name: &str) -> Result<()> {
    let all = catalog(kind)?;
    let Some(p) = all.iter().find(|p| p.name == name) else {
        return Err(CoreError::UnknownPlugin {
            field: "NAME".into(),
            kind: all.first().map(|p| p.kind).unwrap_or("plugin"),
            name: name.into(),
            known: all.iter().map(|p| p.name.to_string()).collect(),
        }
        .into());
    };
    outln!("{} `{}`: {}", p.kind, p.name, p.summary);
    if !p.provided_by.0.is_empty() {
        outln!("provided by crate `{}` {}\n", p.provided_by.0, p.provided_by.1);
    }
    if p.kind == "scenario" {
        outln!("{}", p.example.as_str().unwrap_or_default());
        return Ok(());
    }
    if let Some(d) = p.schema.get("description").and_then(Value::as_str) {
        outln!("{d}\n");
    }
    let props = p.schema.get("properties").and_then(Value::as_object);
    let required: Vec<&str> = p
        .schema
        .get("required")
        .and_then(Value::as_array)
        .map(|a| a.iter().filter_map(Value::as_str).collect())
        .unwrap_or_default();
    outln!("parameters:");
    match props {
        Some(props) if !props.is_empty() => {
            for (k, v) in props {
                let prop = property_schema(&p.schema, v);
                let ty =
                    prop.get("type").map(|t| t.to_string().replace('"', "")).unwrap_or_else(|| "see schema".into());
                let default = if required.contains(&k.as_str()) {
                    "required".to_string()
                } else {
                    v.get("default").map(|d| format!("default {d}")).unwrap_or_else(|| "optional".into())
                };
                let range = allowed(&p.schema, prop);
                let desc =
                    v.get("description").or_else(|| prop.get("description")).and_then(Value::as_str).unwrap_or("");
                outln!(
                    "  {k}: {ty}, {default}{}\n      {desc}",
                    if range.is_empty() { String::new() } else { format!(", {}", range.join(", ")) }
                );
            }
        }
        _ => outln!("  (none)"),
    }
    let mut example = toml::Table::new();
    example.insert("kind".into(), toml::Value::String(p.name.into()));
    if let Some(obj) = p.example.as_object() {
        for (k, v) in obj {
            if let Ok(tv) = toml::Value::try_from(v) {
                example.insert(k.clone(), tv);
            }
        }
    }
    let mut wrapper = toml::Table::new();
    wrapper.insert(p.kind.into(), toml::Value::Table(example));
    outln!("\nexample:\n{}", toml::to_string(&wrapper)?);
    Ok(())
}
