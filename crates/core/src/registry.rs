//! The plugin registry.
//!
//! Every plugin kind (estimator, covariance, signal, schedule, setting, theory model)
//! uses one generic registration struct, [`Plugin`], submitted with
//! `inventory::submit!` next to its implementation:
//!
//! ```text
//! inventory::submit! {
//!     EstimatorPlugin::new::<RidgeParams>("ridge", "Ridge regression (λ ≥ 0; λ = 0 is min-norm)")
//! }
//! ```
//!
//! A plugin's parameters are a serde + schemars struct implementing [`Params`]:
//! unknown fields are rejected (`#[serde(deny_unknown_fields)]`), its doc comment
//! becomes the description printed by `collapse describe`, and [`Params::build`]
//! validates and returns the plugin object. Names are kebab-case and, being written
//! in scenario files, are a file format. Scenarios are registered separately as
//! [`ScenarioPlugin`]s holding TOML text.
//!
//! Inventory only sees crates that are linked: binaries and tests that need the
//! plugins must name the plugin crates (`use collapse_estimators as _;`).

use std::collections::BTreeMap;
use std::sync::OnceLock;

use schemars::JsonSchema;
use serde::Serialize;
use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::{CoreError, ParamError};
use crate::model::{Covariance, Estimator, Schedule, Setting, Signal};

/// What a plugin's `build` may look at besides its own parameters.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct BuildContext {
    /// Samples per iteration.
    pub n: usize,
    /// Features.
    pub p: usize,
    /// Label noise standard deviation.
    pub noise_sd: f64,
}

/// A plugin's parameter struct.
pub trait Params: DeserializeOwned + Serialize + JsonSchema + 'static {
    /// The plugin trait object this builds (`dyn Estimator`, ...).
    type Target: ?Sized;
    /// Validate and build. Errors name the field relative to the plugin's table.
    fn build(&self, ctx: &BuildContext) -> Result<Box<Self::Target>, ParamError>;
    /// Example parameters, shown by `collapse describe` and run by the tests.
    fn example() -> Self;
}

/// A plugin built from parameters, together with the full parameter set it was built
/// from (defaults filled in), which becomes the Parquet parameter columns.
#[derive(Debug)]
pub struct Built<T: ?Sized> {
    /// The validated plugin object.
    pub object: Box<T>,
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
    /// Parse, validate and build from a JSON object of parameters (without `kind`).
    pub build: fn(&Value, &BuildContext) -> Result<Built<T>, CoreError>,
    /// Example parameters as JSON.
    pub example: fn() -> Value,
}

impl<T: ?Sized + 'static> std::fmt::Debug for Plugin<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Plugin").field("name", &self.name).field("summary", &self.summary).finish()
    }
}

impl<T: ?Sized + 'static> Plugin<T> {
    /// The registration of the plugin whose parameters are `P`.
    pub const fn new<P: Params<Target = T>>(name: &'static str, summary: &'static str) -> Self {
        Plugin { name, summary, schema: schema_of::<P>, build: build_from_json::<P>, example: example_of::<P> }
    }
}

fn schema_of<P: JsonSchema>() -> Value {
    serde_json::to_value(schemars::schema_for!(P)).unwrap_or(Value::Null)
}

fn example_of<P: Params>() -> Value {
    serde_json::to_value(P::example()).unwrap_or(Value::Null)
}

fn build_from_json<P: Params>(value: &Value, ctx: &BuildContext) -> Result<Built<P::Target>, CoreError> {
    let params: P = deserialize_strict(value)?;
    let object = params.build(ctx)?;
    let params = match serde_json::to_value(&params) {
        Ok(Value::Object(map)) => map,
        Ok(Value::Null) | Ok(_) => Map::new(),
        Err(e) => return Err(CoreError::config("", format!("cannot record parameters: {e}"))),
    };
    Ok(Built { object, params })
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
                // serde_path_to_error already ends the path with an unknown field's name.
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

/// Registration of an estimator.
pub type EstimatorPlugin = Plugin<dyn Estimator>;
/// Registration of a covariance model.
pub type CovariancePlugin = Plugin<dyn Covariance>;
/// Registration of a signal model.
pub type SignalPlugin = Plugin<dyn Signal>;
/// Registration of a schedule.
pub type SchedulePlugin = Plugin<dyn Schedule>;
/// Registration of a setting.
pub type SettingPlugin = Plugin<dyn Setting>;

inventory::collect!(EstimatorPlugin);
inventory::collect!(CovariancePlugin);
inventory::collect!(SignalPlugin);
inventory::collect!(SchedulePlugin);
inventory::collect!(SettingPlugin);
inventory::collect!(ScenarioPlugin);

/// The plugin kinds, in the order sections appear in a scenario file.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// `[signal]`
    Signal,
    /// `[covariance]`
    Covariance,
    /// `[estimator]`
    Estimator,
    /// `[schedule]`
    Schedule,
    /// `[setting]`
    Setting,
    /// Registered scenarios.
    Scenario,
    /// Theory models.
    Theory,
}

impl Kind {
    /// Every kind.
    pub const ALL: [Kind; 7] =
        [Kind::Estimator, Kind::Covariance, Kind::Signal, Kind::Schedule, Kind::Setting, Kind::Scenario, Kind::Theory];

    /// The kind's name as written on the command line and in scenario sections.
    pub fn name(self) -> &'static str {
        match self {
            Kind::Estimator => "estimator",
            Kind::Covariance => "covariance",
            Kind::Signal => "signal",
            Kind::Schedule => "schedule",
            Kind::Setting => "setting",
            Kind::Scenario => "scenario",
            Kind::Theory => "theory",
        }
    }

    /// Parse a kind name (singular or plural).
    pub fn parse(s: &str) -> Result<Kind, CoreError> {
        let t = s.trim().trim_end_matches('s');
        Kind::ALL.into_iter().find(|k| k.name() == t).ok_or_else(|| {
            CoreError::config(
                "KIND",
                format!(
                    "unknown plugin kind `{s}`; allowed: {}",
                    Kind::ALL.iter().map(|k| k.name()).collect::<Vec<_>>().join(", ")
                ),
            )
        })
    }
}

/// A uniform view of any registered plugin, for listing and describing.
#[derive(Debug, Clone)]
pub struct PluginInfo {
    /// Kind of the plugin.
    pub kind: Kind,
    /// Name.
    pub name: &'static str,
    /// One-line summary.
    pub summary: &'static str,
    /// JSON Schema of the parameters (`Null` for scenarios).
    pub schema: Value,
    /// Example parameters (for scenarios: the TOML text as a string).
    pub example: Value,
}

type Map_<T> = BTreeMap<&'static str, &'static Plugin<T>>;

fn build_map<T: ?Sized + 'static>(
    kind: &'static str,
    items: impl Iterator<Item = &'static Plugin<T>>,
) -> Result<Map_<T>, CoreError> {
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
    /// The kind.
    const KIND: Kind;
    /// The lazily built, sorted, duplicate-checked map of this kind's plugins.
    fn registry() -> &'static Result<Map_<Self>, CoreError>;
}

macro_rules! registered {
    ($t:ty, $kind:expr) => {
        impl Registered for $t {
            const KIND: Kind = $kind;
            fn registry() -> &'static Result<Map_<Self>, CoreError> {
                static MAP: OnceLock<Result<Map_<$t>, CoreError>> = OnceLock::new();
                MAP.get_or_init(|| build_map($kind.name(), inventory::iter::<Plugin<$t>>.into_iter()))
            }
        }
    };
}
registered!(dyn Estimator, Kind::Estimator);
registered!(dyn Covariance, Kind::Covariance);
registered!(dyn Signal, Kind::Signal);
registered!(dyn Schedule, Kind::Schedule);
registered!(dyn Setting, Kind::Setting);

/// All plugins of kind `T`, sorted by name.
pub fn plugins<T: ?Sized + Registered>() -> Result<Vec<&'static Plugin<T>>, CoreError> {
    T::registry().as_ref().map(|m| m.values().copied().collect()).map_err(Clone::clone)
}

/// The plugin of kind `T` called `name`; the error lists the known names.
pub fn lookup<T: ?Sized + Registered>(name: &str) -> Result<&'static Plugin<T>, CoreError> {
    let map = T::registry().as_ref().map_err(Clone::clone)?;
    map.get(name).copied().ok_or_else(|| CoreError::UnknownPlugin {
        field: "kind".into(),
        kind: T::KIND.name(),
        name: name.to_string(),
        known: map.keys().map(|k| k.to_string()).collect(),
    })
}

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

fn infos<T: ?Sized + Registered>() -> Result<Vec<PluginInfo>, CoreError> {
    Ok(plugins::<T>()?
        .into_iter()
        .map(|p| PluginInfo {
            kind: T::KIND,
            name: p.name,
            summary: p.summary,
            schema: (p.schema)(),
            example: (p.example)(),
        })
        .collect())
}

/// Every plugin of `kind`, sorted by name.
pub fn catalog(kind: Kind) -> Result<Vec<PluginInfo>, CoreError> {
    match kind {
        Kind::Estimator => infos::<dyn Estimator>(),
        Kind::Covariance => infos::<dyn Covariance>(),
        Kind::Signal => infos::<dyn Signal>(),
        Kind::Schedule => infos::<dyn Schedule>(),
        Kind::Setting => infos::<dyn Setting>(),
        Kind::Scenario => Ok(scenarios()?
            .into_iter()
            .map(|s| PluginInfo {
                kind,
                name: s.name,
                summary: s.summary,
                schema: Value::Null,
                example: Value::String(s.toml.to_string()),
            })
            .collect()),
        Kind::Theory => Ok(crate::theory::models()
            .into_iter()
            .map(|t| PluginInfo { kind, name: t.name, summary: t.summary, schema: Value::Null, example: Value::Null })
            .collect()),
    }
}

/// Build plugin `name` of kind `T` from a parameter object.
pub fn build<T: ?Sized + Registered>(name: &str, params: &Value, ctx: &BuildContext) -> Result<Built<T>, CoreError> {
    let plugin = lookup::<T>(name)?;
    (plugin.build)(params, ctx)
}
