//! The plugin registry.
//!
//! Every plugin kind uses one generic registration struct, [`Plugin`], submitted with
//! [`register!`](crate::register) next to its implementation:
//!
//! ```text
//! collapse_core::register!(EstimatorPlugin, RidgeParams, "ridge", "Ridge regression (λ ≥ 0)");
//! ```
//!
//! A plugin's parameters are a serde + schemars struct implementing [`Params`]:
//! unknown fields are rejected (`#[serde(deny_unknown_fields)]`), doc comments become
//! the descriptions printed by `collapse describe`, numeric ranges are declared once with
//! `#[schemars(range(min = …, max = …))]` (or `extend("exclusiveMinimum" = …)`) and are
//! checked here before [`Params::build`] runs, and `build` does what is left (cross-field
//! checks) and returns the plugin object. Names are kebab-case and, being written in
//! scenario files, are a file format. The macro records the crate that provides the
//! plugin, so a run's manifest can say which crates a saved scenario needs.
//!
//! The scenario sections that name plugins are listed once, in [`sections!`]: the
//! [`Section`] enum, lookups, schemas and builders all come from that list.
//!
//! Inventory only sees crates that are linked: binaries and tests that need the
//! plugins must name the plugin crates (`use collapse_estimators as _;`).

use std::collections::BTreeMap;
use std::sync::{Arc, OnceLock};

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::api::{BuildContext, Covariance, Estimator, Family, Policy, Protocol, Schedule, Signal};
use crate::error::{CoreError, ParamError};

/// A plugin's parameter struct.
pub trait Params: DeserializeOwned + Serialize + JsonSchema + 'static {
    /// The plugin trait object this builds (`dyn Estimator`, ...).
    type Target: ?Sized;
    /// Build the plugin. Ranges declared in the schema are already checked; errors name
    /// the field relative to the plugin's table.
    fn build(&self, ctx: &BuildContext) -> Result<Box<Self::Target>, ParamError>;
    /// Example parameters, shown by `collapse describe` and run by the tests.
    fn example() -> Self;
    /// Check the ranges declared in the schema, then build: what the registry does.
    fn checked_build(&self, ctx: &BuildContext) -> Result<Box<Self::Target>, CoreError> {
        let record = match serde_json::to_value(self) {
            Ok(Value::Object(map)) => map,
            _ => Map::new(),
        };
        check_ranges(&schema_of::<Self>(), &record)?;
        Ok(self.build(ctx)?)
    }
}

/// A plugin built from parameters, together with the full parameter set it was built
/// from (defaults filled in), which becomes the Parquet parameter columns.
#[derive(Debug)]
pub struct Built<T: ?Sized> {
    /// The validated plugin object.
    pub object: Arc<T>,
    /// Every parameter, defaults included, as written back by serde.
    pub params: Map<String, Value>,
}

/// The registration of one plugin of kind `T` (a trait object type).
pub struct Plugin<T: ?Sized + 'static> {
    /// Kebab-case name used in scenario files (`kind = "ridge"`).
    pub name: &'static str,
    /// One-line summary for `collapse list`.
    pub summary: &'static str,
    /// JSON Schema of the parameters (doc comments become descriptions).
    pub schema: fn() -> Value,
    /// Parse, check ranges, build from a JSON object of parameters (without `kind`).
    pub build: fn(&Value, &BuildContext) -> Result<Built<T>, CoreError>,
    /// Example parameters as JSON.
    pub example: fn() -> Value,
    /// The crate that registered the plugin, and its version.
    pub provided_by: (&'static str, &'static str),
}

impl<T: ?Sized + 'static> std::fmt::Debug for Plugin<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.name).field("summary", &self.summary).finish()
    }
}

impl<T: ?Sized + 'static> Plugin<T> {
    /// The registration of the plugin whose parameters are `P` (use [`register!`](crate::register),
    /// which also records the providing crate).
    pub const fn new<P: Params<Target = T>>(name: &'static str, summary: &'static str) -> Self
    where
        Box<T>: Into<Arc<T>>,
    {
        Plugin {
            name,
            summary,
            schema: schema_of::<P>,
            build: build_from_json::<P>,
            example: example_of::<P>,
            provided_by: ("unknown", ""),
        }
    }

    /// Record the crate (name, version) that registers this plugin.
    pub const fn provided_by(mut self, krate: &'static str, version: &'static str) -> Self {
        self.provided_by = (krate, version);
        self
    }
}

/// Register a plugin beside its implementation:
/// `collapse_core::register!(EstimatorPlugin, RidgeParams, "ridge", "one line");`
#[macro_export]
macro_rules! register {
    ($plugin:ident, $params:ty, $name:literal, $summary:literal) => {
        $crate::inventory::submit! {
            $crate::registry::$plugin::new::<$params>($name, $summary)
                .provided_by(env!("CARGO_PKG_NAME"), env!("CARGO_PKG_VERSION"))
        }
    };
}

fn schema_of<P: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(P)).unwrap_or(Value::Null)
}

fn example_of<P: Params>() -> Value {
    serde_json::to_value(P::example()).unwrap_or(Value::Null)
}

fn build_from_json<P: Params>(value: &Value, ctx: &BuildContext) -> Result<Built<P::Target>, CoreError>
where
    Box<P::Target>: Into<Arc<P::Target>>,
{
    let params: P = deserialize_strict(value)?;
    let record = match serde_json::to_value(&params) {
        Ok(Value::Object(map)) => map,
        Ok(_) => Map::new(),
        Err(e) => return Err(CoreError::config("", format!("cannot record parameters: {e}"))),
    };
    check_ranges(&schema_of::<P>(), &record)?;
    let object = params.build(ctx)?;
    Ok(Built { object: object.into(), params: record })
}

/// Deserialize a JSON value into `P`, reporting the failing field's path.
pub fn deserialize_strict<P: DeserializeOwned>(value: &Value) -> Result<P, CoreError> {
    serde_path_to_error::deserialize(value).map_err(|e| {
        let path = e.path().to_string();
        let mut field = if path == "." { String::new() } else { path };
        let message = e.into_inner().to_string();
        // serde reports a missing or unknown field at its parent; name the field itself.
        for prefix in ["missing field `", "unknown field `"] {
            if let Some(rest) = message.strip_prefix(prefix)
                && let Some(name) = rest.split('`').next()
            {
                if field.is_empty() {
                    field = name.to_string();
                } else if field != name && !field.ends_with(&format!(".{name}")) {
                    field = format!("{field}.{name}");
                }
                let message = if prefix.starts_with("missing") {
                    "missing; this parameter is required".to_string()
                } else {
                    message.clone()
                };
                return CoreError::config(field, message);
            }
        }
        CoreError::config(field, message)
    })
}

/// The numeric bounds a schema declares for a property (or its array items).
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct Bounds {
    /// Inclusive lower bound.
    pub min: Option<f64>,
    /// Inclusive upper bound.
    pub max: Option<f64>,
    /// Exclusive lower bound.
    pub exclusive_min: Option<f64>,
    /// Exclusive upper bound.
    pub exclusive_max: Option<f64>,
}

impl Bounds {
    /// The bounds stated in a (property) schema.
    pub fn of(schema: &Value) -> Bounds {
        let get = |k: &str| schema.get(k).and_then(Value::as_f64);
        Bounds {
            min: get("minimum"),
            max: get("maximum"),
            exclusive_min: get("exclusiveMinimum"),
            exclusive_max: get("exclusiveMaximum"),
        }
    }

    /// True when no bound is declared.
    pub fn is_empty(&self) -> bool {
        *self == Bounds::default()
    }

    /// `in [0, 1]`, `> 0`, `>= 1 and < 2`: what the bounds allow, for messages and docs.
    pub fn describe(&self) -> String {
        let fmt = |x: f64| format!("{x}");
        match (self.min, self.max, self.exclusive_min, self.exclusive_max) {
            (Some(a), Some(b), None, None) => format!("in [{}, {}]", fmt(a), fmt(b)),
            (None, None, Some(a), Some(b)) => format!("in ({}, {})", fmt(a), fmt(b)),
            (Some(a), None, None, Some(b)) => format!("in [{}, {})", fmt(a), fmt(b)),
            (None, Some(b), Some(a), None) => format!("in ({}, {}]", fmt(a), fmt(b)),
            _ => {
                let mut parts = Vec::new();
                if let Some(a) = self.min {
                    parts.push(format!(">= {}", fmt(a)));
                }
                if let Some(a) = self.exclusive_min {
                    parts.push(format!("> {}", fmt(a)));
                }
                if let Some(b) = self.max {
                    parts.push(format!("<= {}", fmt(b)));
                }
                if let Some(b) = self.exclusive_max {
                    parts.push(format!("< {}", fmt(b)));
                }
                parts.join(" and ")
            }
        }
    }

    /// Whether `x` satisfies the bounds.
    pub fn contains(&self, x: f64) -> bool {
        x.is_finite()
            && self.min.is_none_or(|a| x >= a)
            && self.max.is_none_or(|b| x <= b)
            && self.exclusive_min.is_none_or(|a| x > a)
            && self.exclusive_max.is_none_or(|b| x < b)
    }
}

/// Resolve a property schema that is a `$ref` (or an `anyOf` with a null, as schemars
/// writes `Option<T>`) to the schema that carries the bounds.
pub fn property_schema<'a>(root: &'a Value, prop: &'a Value) -> &'a Value {
    let deref = |v: &'a Value| -> &'a Value {
        match v.get("$ref").and_then(Value::as_str) {
            Some(r) => root.get("$defs").and_then(|d| d.get(r.rsplit('/').next().unwrap_or(""))).unwrap_or(v),
            None => v,
        }
    };
    let prop = deref(prop);
    if let Some(Value::Array(options)) = prop.get("anyOf")
        && let Some(non_null) = options.iter().find(|o| o.get("type").and_then(Value::as_str) != Some("null"))
    {
        return deref(non_null);
    }
    prop
}

/// Check every numeric parameter (and every number inside a list parameter) against the
/// bounds its schema declares.
pub fn check_ranges(schema: &Value, params: &Map<String, Value>) -> Result<(), CoreError> {
    let Some(props) = schema.get("properties").and_then(Value::as_object) else {
        return Ok(());
    };
    for (key, value) in params {
        let Some(prop) = props.get(key) else { continue };
        let prop = property_schema(schema, prop);
        check_value(schema, prop, key, value)?;
    }
    Ok(())
}

/// Whether a property schema admits null (an `Option`).
fn nullable(prop: &Value) -> bool {
    match prop.get("type") {
        Some(Value::String(t)) => t == "null",
        Some(Value::Array(types)) => types.iter().any(|t| t == "null"),
        _ => prop
            .get("anyOf")
            .and_then(Value::as_array)
            .is_some_and(|o| o.iter().any(|x| x.get("type") == Some(&Value::from("null")))),
    }
}

fn numeric(prop: &Value) -> bool {
    match prop.get("type") {
        Some(Value::String(t)) => t == "number" || t == "integer",
        Some(Value::Array(types)) => types.iter().any(|t| t == "number" || t == "integer"),
        _ => false,
    }
}

fn check_value(root: &Value, prop: &Value, field: &str, value: &Value) -> Result<(), CoreError> {
    match value {
        // serde writes a NaN or infinite f64 as null: a number that must be finite.
        Value::Null if numeric(prop) && !nullable(prop) => {
            return Err(CoreError::config(field, "must be a finite number, got NaN or an infinity"));
        }
        Value::Number(x) => {
            let bounds = Bounds::of(prop);
            let x = x.as_f64().unwrap_or(f64::NAN);
            if !bounds.is_empty() && !bounds.contains(x) {
                return Err(CoreError::config(field, format!("must be {}, got {x}", bounds.describe())));
            }
        }
        Value::Array(items) => {
            if let Some(item_schema) = prop.get("items") {
                let item_schema = property_schema(root, item_schema);
                for (i, it) in items.iter().enumerate() {
                    check_value(root, item_schema, &format!("{field}[{i}]"), it)?;
                }
            }
        }
        _ => {}
    }
    Ok(())
}

/// A registered scenario: a name and the TOML text of a scenario file.
#[derive(Debug)]
pub struct ScenarioPlugin {
    /// Kebab-case name (`collapse run golden-ratio`).
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// The scenario file's text.
    pub toml: &'static str,
}

inventory::collect!(ScenarioPlugin);

type PluginMap<T> = BTreeMap<&'static str, &'static Plugin<T>>;

fn build_map<T: ?Sized + 'static>(
    kind: &'static str,
    items: impl Iterator<Item = &'static Plugin<T>>,
) -> Result<PluginMap<T>, CoreError> {
    let mut map = BTreeMap::new();
    for p in items {
        if !is_kebab_case(p.name) {
            return Err(CoreError::config(
                format!("{kind} plugin `{}`", p.name),
                "plugin names are kebab-case: lowercase letters and digits separated by single `-`",
            ));
        }
        if map.insert(p.name, p).is_some() {
            return Err(CoreError::DuplicatePlugin { kind, name: p.name.to_string() });
        }
    }
    Ok(map)
}

/// `ridge`, `min-norm`, `ar1`: lowercase ASCII letters and digits in `-`-separated words.
pub fn is_kebab_case(name: &str) -> bool {
    !name.is_empty()
        && name.split('-').all(|w| !w.is_empty() && w.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit()))
}

/// Implemented for each plugin trait object type: where its registry lives.
pub trait Registered: 'static {
    /// The scenario section that selects plugins of this kind.
    const SECTION: Section;
    /// The lazily built, sorted, duplicate-checked map of this kind's plugins.
    fn registry() -> &'static Result<PluginMap<Self>, CoreError>;
}

/// All plugins of kind `T`, sorted by name.
pub fn plugins<T: ?Sized + Registered>() -> Result<Vec<&'static Plugin<T>>, CoreError> {
    T::registry().as_ref().map(|m| m.values().copied().collect()).map_err(Clone::clone)
}

/// The plugin of kind `T` called `name`; the error lists the known names.
pub fn lookup<T: ?Sized + Registered>(name: &str) -> Result<&'static Plugin<T>, CoreError> {
    let map = T::registry().as_ref().map_err(Clone::clone)?;
    map.get(name).copied().ok_or_else(|| CoreError::UnknownPlugin {
        field: "kind".into(),
        kind: T::SECTION.name(),
        name: name.to_string(),
        known: map.keys().map(|k| k.to_string()).collect(),
    })
}

/// A uniform view of any registered plugin, for listing and describing.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// What it is: a section name, or `scenario`.
    pub kind: &'static str,
    /// Name.
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// JSON Schema of the parameters (`Null` for scenarios).
    pub schema: Value,
    /// Example parameters (for scenarios: the TOML text as a string).
    pub example: Value,
    /// Providing crate and version.
    pub provided_by: (&'static str, &'static str),
}

fn infos<T: ?Sized + Registered>() -> Result<Vec<PluginInfo>, CoreError> {
    Ok(plugins::<T>()?
        .into_iter()
        .map(|p| PluginInfo {
            kind: T::SECTION.name(),
            name: p.name,
            summary: p.summary,
            schema: (p.schema)(),
            example: (p.example)(),
            provided_by: p.provided_by,
        })
        .collect())
}

fn build_in<T: ?Sized + Registered>(
    kind: &str,
    params: &Map<String, Value>,
    ctx: &BuildContext,
) -> Result<Built<T>, CoreError> {
    let plugin = lookup::<T>(kind)?;
    (plugin.build)(&Value::Object(params.clone()), ctx)
}

/// The single list of plugin sections: the enum, the registries and the dispatch.
macro_rules! sections {
    ($( $variant:ident : $trait:ty => $name:literal, default $default:expr, $doc:literal; )*) => {
        /// A scenario section that selects a plugin (`[estimator] kind = "ridge"`), in
        /// the order sections appear in files, grids and Parquet columns.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
        pub enum Section {
            $( #[doc = $doc] $variant, )*
        }

        /// A built plugin of any section.
        #[derive(Debug, Clone)]
        pub enum AnyPlugin {
            $( #[doc = $doc] $variant(Arc<$trait>), )*
        }

        $(
            inventory::collect!(Plugin<$trait>);
            impl Registered for $trait {
                const SECTION: Section = Section::$variant;
                fn registry() -> &'static Result<PluginMap<Self>, CoreError> {
                    static MAP: OnceLock<Result<PluginMap<$trait>, CoreError>> = OnceLock::new();
                    MAP.get_or_init(|| build_map($name, inventory::iter::<Plugin<$trait>>.into_iter()))
                }
            }
        )*

        impl Section {
            /// Every section, in order.
            pub const ALL: &'static [Section] = &[$( Section::$variant, )*];

            /// The section's name in scenario files (`estimator`).
            pub fn name(self) -> &'static str {
                match self { $( Section::$variant => $name, )* }
            }

            /// The plugin used when a scenario leaves the section out (None: required).
            pub fn default_kind(self) -> Option<&'static str> {
                match self { $( Section::$variant => $default, )* }
            }

            /// Parse a section name (singular or plural).
            pub fn parse(s: &str) -> Option<Section> {
                let t = s.trim();
                Section::ALL.iter().copied().find(|k| k.name() == t || format!("{}s", k.name()) == t)
            }

            /// Registered plugin names of this section, sorted.
            pub fn plugin_names(self) -> Result<Vec<&'static str>, CoreError> {
                match self { $( Section::$variant => Ok(plugins::<$trait>()?.into_iter().map(|p| p.name).collect()), )* }
            }

            /// The parameter schema of plugin `kind`.
            pub fn schema(self, kind: &str) -> Result<Value, CoreError> {
                match self { $( Section::$variant => Ok((lookup::<$trait>(kind)?.schema)()), )* }
            }

            /// The crate providing plugin `kind`.
            pub fn provided_by(self, kind: &str) -> Result<(&'static str, &'static str), CoreError> {
                match self { $( Section::$variant => Ok(lookup::<$trait>(kind)?.provided_by), )* }
            }

            /// Every plugin of this section.
            pub fn catalog(self) -> Result<Vec<PluginInfo>, CoreError> {
                match self { $( Section::$variant => infos::<$trait>(), )* }
            }

            /// Build plugin `kind` of this section from its parameters.
            pub fn build(self, kind: &str, params: &Map<String, Value>, ctx: &BuildContext) -> Result<(AnyPlugin, Map<String, Value>), CoreError> {
                match self {
                    $( Section::$variant => {
                        let built = build_in::<$trait>(kind, params, ctx)?;
                        Ok((AnyPlugin::$variant(built.object), built.params))
                    } )*
                }
            }
        }
    };
}

sections! {
    Family: dyn Family => "family", default Some("linear-gaussian"), "`[family]`: the data model (labels, metrics, noise).";
    Signal: dyn Signal => "signal", default Some("random"), "`[signal]`: how β is drawn.";
    Covariance: dyn Covariance => "covariance", default Some("isotropic"), "`[covariance]`: the covariates' law.";
    Estimator: dyn Estimator => "estimator", default None, "`[estimator]`: the fit.";
    Schedule: dyn Schedule => "schedule", default None, "`[schedule]`: the real-data weight per iteration.";
    Protocol: dyn Protocol => "protocol", default Some("fresh-labels"), "`[protocol]`: where each iteration's data come from.";
    Policy: dyn Policy => "policy", default Some("replace"), "`[policy]`: what is kept across iterations.";
}

/// Registration of a family.
pub type FamilyPlugin = Plugin<dyn Family>;
/// Registration of a signal model.
pub type SignalPlugin = Plugin<dyn Signal>;
/// Registration of a covariance model.
pub type CovariancePlugin = Plugin<dyn Covariance>;
/// Registration of an estimator.
pub type EstimatorPlugin = Plugin<dyn Estimator>;
/// Registration of a schedule.
pub type SchedulePlugin = Plugin<dyn Schedule>;
/// Registration of a protocol.
pub type ProtocolPlugin = Plugin<dyn Protocol>;
/// Registration of a policy.
pub type PolicyPlugin = Plugin<dyn Policy>;

/// All registered scenarios, sorted by name (duplicates are an error).
pub fn scenarios() -> Result<Vec<&'static ScenarioPlugin>, CoreError> {
    static MAP: OnceLock<Result<BTreeMap<&'static str, &'static ScenarioPlugin>, CoreError>> = OnceLock::new();
    MAP.get_or_init(|| {
        let mut map = BTreeMap::new();
        for s in inventory::iter::<ScenarioPlugin> {
            if !is_kebab_case(s.name) {
                return Err(CoreError::config(format!("scenario `{}`", s.name), "scenario names are kebab-case"));
            }
            if map.insert(s.name, s).is_some() {
                return Err(CoreError::DuplicatePlugin { kind: "scenario", name: s.name.to_string() });
            }
        }
        Ok(map)
    })
    .as_ref()
    .map(|m| m.values().copied().collect())
    .map_err(Clone::clone)
}

/// The registered scenario called `name`.
pub fn lookup_scenario(name: &str) -> Result<&'static ScenarioPlugin, CoreError> {
    let all = scenarios()?;
    all.iter().find(|s| s.name == name).copied().ok_or_else(|| CoreError::UnknownPlugin {
        field: "scenario".into(),
        kind: "scenario",
        name: name.to_string(),
        known: all.iter().map(|s| s.name.to_string()).collect(),
    })
}

/// Every registered scenario, as catalog entries.
pub fn scenario_catalog() -> Result<Vec<PluginInfo>, CoreError> {
    Ok(scenarios()?
        .into_iter()
        .map(|s| PluginInfo {
            kind: "scenario",
            name: s.name,
            summary: s.summary,
            schema: Value::Null,
            example: Value::String(s.toml.to_string()),
            provided_by: ("", ""),
        })
        .collect())
}
