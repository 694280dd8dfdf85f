//! The JSON Schema of scenario files (`collapse schema`), generated from the registry.

use serde_json::{Map, Value};

use crate::error::CoreError;
use crate::registry::Section;
use crate::spec::Sizes;
use crate::spec::grid::{Shape, field_shape};

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
                    // Text and boolean parameters may be swept over a list of values.
                    Shape::Text | Shape::Other => {
                        serde_json::json!({"anyOf": [original, {"type": "array", "items": original, "minItems": 1}]})
                    }
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
    fn variants(section: Section, root_defs: &mut Map<String, Value>) -> Result<Value, CoreError> {
        let mut out = Vec::new();
        let catalog = section.catalog()?;
        for p in &catalog {
            let mut s = sweepable(&p.schema);
            hoist_defs(&mut s, &format!("{}.{}", section.name(), p.name), root_defs);
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
        let names: Vec<&str> = catalog.iter().map(|p| p.name).collect();
        out.push(serde_json::json!({
            "title": "kind sweep",
            "type": "object",
            "description": "Sweep the plugin itself: `kind = [\"a\", \"b\"]`; parameters of one kind go in a sub-table named after it.",
            "properties": {"kind": {"type": "array", "items": {"enum": names}, "minItems": 1, "uniqueItems": true}},
            "required": ["kind"]
        }));
        Ok(serde_json::json!({"oneOf": out}))
    }
    let design = sweepable(&serde_json::to_value(schemars::schema_for!(Sizes)).unwrap_or(Value::Null));
    let mut defs = match sweep_defs {
        Value::Object(m) => m,
        _ => Map::new(),
    };
    let mut properties = serde_json::json!({
        "name": {"type": "string", "pattern": "^[A-Za-z0-9_-][A-Za-z0-9_.-]*$", "description": "Scenario name; names the default output directory results/<name>."},
        "description": {"type": "string"},
        "seed": {"type": "integer", "minimum": 0, "default": 0, "description": "Master seed of every random stream."},
        "replicates": {"type": "integer", "minimum": 1, "description": "Independent replicates per cell."},
        "iterations": {"type": "integer", "minimum": 0, "description": "Refits after the first fit t = 0."},
        "common_random_numbers": {"type": "boolean", "default": true, "description": "Cells that differ only in estimator/schedule/protocol parameters share designs, signals and noise draws per replicate, and one factorization."},
        "design": design,
        "output": inline_schema::<crate::spec::OutputSpec>(),
    });
    for &section in Section::ALL {
        let v = variants(section, &mut defs)?;
        if let Some(obj) = properties.as_object_mut() {
            obj.insert(section.name().to_string(), v);
        }
    }
    Ok(serde_json::json!({
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "title": "collapse scenario",
        "type": "object",
        "additionalProperties": false,
        "required": ["name", "replicates", "iterations", "design", "estimator"],
        "properties": properties,
        "$defs": defs,
    }))
}

/// The schema of `T` with its sub-schemas inlined (no `$defs` to hoist).
fn inline_schema<T: schemars::JsonSchema>() -> Value {
    let generator =
        schemars::generate::SchemaSettings::draft2020_12().with(|s| s.inline_subschemas = true).into_generator();
    let mut v = serde_json::to_value(generator.into_root_schema_for::<T>()).unwrap_or(Value::Null);
    if let Some(obj) = v.as_object_mut() {
        obj.remove("$schema");
    }
    v
}
