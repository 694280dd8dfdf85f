//! Resolution: header → grid → cells (plugins built, plan, weights, columns) → design
//! groups → the resolved TOML written back. Each step is one function.

use serde_json::{Map, Value};
use std::collections::HashMap;

use crate::api::{BuildContext, Covariance, DesignUse};
use crate::error::CoreError;
use crate::registry::{self, AnyPlugin, Section};
use crate::rng::content_hash;
use crate::spec::grid::{self, CellSpec, Template};
use crate::spec::value::{ParamValue, json_to_toml, toml_to_json};
use crate::spec::{Cell, Group, OutputSpec, Plugins, ResolvedScenario, Sizes, top_level_keys};

/// Largest number of iterations.
pub const MAX_ITERATIONS: usize = 10_000_000;

/// The non-plugin top-level keys.
#[derive(Debug, Clone)]
struct Header {
    name: String,
    description: String,
    seed: u64,
    replicates: usize,
    iterations: usize,
    common_random_numbers: bool,
    output: OutputSpec,
}

/// Validate and expand a parsed scenario into cells.
pub fn resolve(table: &toml::Table) -> Result<ResolvedScenario, CoreError> {
    let root = toml_to_json(table, "")?;
    let header = read_header(&root)?;
    let template = grid::template(&root)?;
    let specs = grid::enumerate(&template)?;
    let mut builder = Builder::new(&header);
    for (index, spec) in specs.iter().enumerate() {
        builder.add(index, spec)?;
    }
    let Builder { cells, groups, .. } = builder;
    let resolved = write_back(table, &header, &template, &cells)?;
    Ok(ResolvedScenario {
        name: header.name,
        description: header.description,
        seed: header.seed,
        replicates: header.replicates,
        iterations: header.iterations,
        common_random_numbers: header.common_random_numbers,
        axes: template.axes,
        cells,
        groups,
        output: header.output,
        report: table.get("report").cloned(),
        resolved,
    })
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

fn read_header(root: &Map<String, Value>) -> Result<Header, CoreError> {
    let allowed = top_level_keys();
    for key in root.keys() {
        if key == "setting" {
            return Err(CoreError::config("setting", "[setting] is now called [protocol]; rename the section"));
        }
        if !allowed.contains(&key.as_str()) {
            return Err(CoreError::config(key, format!("unknown key; allowed: {}", allowed.join(", "))));
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
    let seed = get_u64(root, "seed", Some(0), 0)?;
    let replicates = to_usize("replicates", get_u64(root, "replicates", None, 1)?)?;
    let iterations = to_usize("iterations", get_u64(root, "iterations", None, 0)?)?;
    if iterations > MAX_ITERATIONS {
        return Err(CoreError::config("iterations", format!("{iterations} is more than {MAX_ITERATIONS}")));
    }
    let common_random_numbers = match root.get("common_random_numbers") {
        None => true,
        Some(Value::Bool(b)) => *b,
        Some(v) => return Err(CoreError::config("common_random_numbers", format!("must be true or false, got {v}"))),
    };
    if let Some(v) = root.get("report").filter(|v| !v.is_object()) {
        return Err(CoreError::config("report", format!("must be a table ([report]), got {v}")));
    }
    let output: OutputSpec = match root.get("output") {
        None => OutputSpec::default(),
        Some(v @ Value::Object(_)) => registry::deserialize_strict(v).map_err(|e| e.in_section("output"))?,
        Some(v) => return Err(CoreError::config("output", format!("must be a table ([output]), got {v}"))),
    };
    Ok(Header { name, description, seed, replicates, iterations, common_random_numbers, output })
}

/// Name a plugin's build error by the table the parameter came from: `estimator.lambda`,
/// or `estimator.pcr.k` for a parameter of a kind's own sub-table.
fn locate(e: CoreError, section: Section, kind: &str, own: &[String]) -> CoreError {
    let first = match &e {
        CoreError::Config { field, .. } => field.split(['.', '[']).next().unwrap_or("").to_string(),
        _ => String::new(),
    };
    if own.contains(&first) {
        e.in_section(&format!("{}.{kind}", section.name()))
    } else {
        e.in_section(section.name())
    }
}

/// Builds cells one by one, sharing identical covariances, signals and families.
struct Builder<'h> {
    header: &'h Header,
    cache: HashMap<String, (AnyPlugin, Map<String, Value>)>,
    group_index: HashMap<String, usize>,
    cells: Vec<Cell>,
    groups: Vec<Group>,
}

impl<'h> Builder<'h> {
    fn new(header: &'h Header) -> Self {
        Builder { header, cache: HashMap::new(), group_index: HashMap::new(), cells: Vec::new(), groups: Vec::new() }
    }

    fn sizes(spec: &CellSpec) -> Result<Sizes, CoreError> {
        let value = Value::Object(spec.design.clone());
        let sizes: Sizes = registry::deserialize_strict(&value).map_err(|e| e.in_section("design"))?;
        let schema = serde_json::to_value(schemars::schema_for!(Sizes)).unwrap_or(Value::Null);
        registry::check_ranges(&schema, &spec.design).map_err(|e| e.in_section("design"))?;
        Ok(sizes)
    }

    /// Build one section's plugin; data-model plugins (family, covariance, signal) are
    /// shared between cells with identical parameters.
    fn plugin(
        &mut self,
        section: Section,
        kind: &str,
        params: &Map<String, Value>,
        own: &[String],
        ctx: &BuildContext,
    ) -> Result<(AnyPlugin, Map<String, Value>), CoreError> {
        let shared = matches!(section, Section::Family | Section::Covariance | Section::Signal);
        let key = format!("{}|{kind}|{}|{}|{}", section.name(), Value::Object(params.clone()), ctx.n, ctx.p);
        if shared && let Some(hit) = self.cache.get(&key) {
            return Ok(hit.clone());
        }
        let built = section.build(kind, params, ctx).map_err(|e| locate(e, section, kind, own))?;
        if shared {
            self.cache.insert(key, built.clone());
        }
        Ok(built)
    }

    fn add(&mut self, index: usize, spec: &CellSpec) -> Result<(), CoreError> {
        let sizes = Self::sizes(spec)?;
        let ctx = BuildContext { n: sizes.n, p: sizes.p };
        let mut columns: Vec<(String, ParamValue)> = vec![
            ("design.n".into(), ParamValue::Int(sizes.n as i64)),
            ("design.p".into(), ParamValue::Int(sizes.p as i64)),
        ];
        let mut records = Vec::new();
        let (mut family, mut signal, mut covariance, mut estimator, mut schedule, mut protocol, mut policy) =
            (None, None, None, None, None, None, None);
        for cs in &spec.sections {
            let (plugin, record) = self.plugin(cs.section, &cs.kind, &cs.params, &cs.own, &ctx)?;
            columns.push((cs.section.name().to_string(), ParamValue::Str(cs.kind.clone())));
            for (k, v) in &record {
                columns.push((format!("{}.{k}", cs.section.name()), ParamValue::from_json(v)));
            }
            records.push((cs.section, cs.kind.clone(), record));
            match plugin {
                AnyPlugin::Family(p) => family = Some(p),
                AnyPlugin::Signal(p) => signal = Some(p),
                AnyPlugin::Covariance(p) => covariance = Some(p),
                AnyPlugin::Estimator(p) => estimator = Some(p),
                AnyPlugin::Schedule(p) => schedule = Some(p),
                AnyPlugin::Protocol(p) => protocol = Some(p),
                AnyPlugin::Policy(p) => policy = Some(p),
            }
        }
        let missing = |s: Section| CoreError::config(s.name(), format!("missing section [{}]", s.name()));
        let plugins = Plugins {
            family: family.ok_or_else(|| missing(Section::Family))?,
            signal: signal.ok_or_else(|| missing(Section::Signal))?,
            covariance: covariance.ok_or_else(|| missing(Section::Covariance))?,
            estimator: estimator.ok_or_else(|| missing(Section::Estimator))?,
            schedule,
            protocol: protocol.ok_or_else(|| missing(Section::Protocol))?,
            policy: policy.ok_or_else(|| missing(Section::Policy))?,
        };
        check_dimension(plugins.covariance.as_ref(), sizes.p)?;
        let iterations = self.header.iterations;
        let mut cell = Cell {
            index,
            group: 0,
            n: sizes.n,
            p: sizes.p,
            iterations,
            plan: crate::api::Plan {
                design: DesignUse::Own,
                metrics: Vec::new(),
                uses_schedule: false,
                risk_evaluations_per_iteration: 0,
            },
            plugins,
            weights: Vec::new(),
            columns,
            records,
            coordinates: spec.coordinates.clone(),
        };
        let view = cell.view();
        let protocol_kind = cell.kind(Section::Protocol).unwrap_or_default().to_string();
        let plan = cell.plugins.protocol.plan(&view)?;
        if plan.metrics.is_empty() {
            return Err(CoreError::config("protocol", "declares no metric; a protocol must report at least one"));
        }
        let weights = match (&cell.plugins.schedule, plan.uses_schedule) {
            (Some(schedule), true) => {
                check_weights(schedule.weights(&view).map_err(|e| e.in_section("schedule"))?, iterations)?
            }
            (None, false) => vec![1.0; iterations + 1],
            (None, true) => {
                return Err(CoreError::config(
                    "schedule",
                    format!(
                        "missing section [schedule]; protocol `{protocol_kind}` mixes real and synthetic data with the weights it gives"
                    ),
                ));
            }
            (Some(_), false) => {
                return Err(CoreError::config(
                    "schedule",
                    format!("protocol `{protocol_kind}` does not use a schedule; remove the [schedule] section"),
                ));
            }
        };
        cell.plan = plan;
        cell.weights = weights;
        cell.group = self.group_of(&cell, &protocol_kind);
        self.groups[cell.group].cells.push(index);
        self.cells.push(cell);
        Ok(())
    }

    /// The cell's design group, keyed by content: everything that changes the design,
    /// the signal or the noise draws (docs/numerics.md §8).
    fn group_of(&mut self, cell: &Cell, protocol_kind: &str) -> usize {
        let record = |s: Section| {
            cell.records
                .iter()
                .find(|(x, ..)| *x == s)
                .map(|(_, k, m)| serde_json::json!([k, m]))
                .unwrap_or(Value::Null)
        };
        let mut key = serde_json::json!({
            "n": cell.n,
            "p": cell.p,
            "family": record(Section::Family),
            "covariance": record(Section::Covariance),
            "signal": record(Section::Signal),
            "protocol": protocol_kind,
            "design": format!("{:?}", cell.plan.design),
        });
        if !self.header.common_random_numbers
            && let Some(obj) = key.as_object_mut()
        {
            obj.insert("cell".into(), Value::from(cell.index));
        }
        let text = key.to_string();
        let groups = &mut self.groups;
        *self.group_index.entry(text.clone()).or_insert_with(|| {
            groups.push(Group { key: content_hash(&text), cells: Vec::new() });
            groups.len() - 1
        })
    }
}

fn check_dimension(covariance: &dyn Covariance, p: usize) -> Result<(), CoreError> {
    if covariance.dim() != p {
        return Err(CoreError::config("covariance", format!("has dimension {} but design.p = {p}", covariance.dim())));
    }
    Ok(())
}

fn check_weights(weights: Vec<f64>, iterations: usize) -> Result<Vec<f64>, CoreError> {
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
    Ok(weights)
}

/// The input after overrides, with the seed, common random numbers and the defaults of
/// single-kind sections written out, so that rerunning it reproduces the run.
fn write_back(
    table: &toml::Table,
    header: &Header,
    template: &Template,
    cells: &[Cell],
) -> Result<toml::Table, CoreError> {
    let mut resolved = table.clone();
    resolved.insert(
        "seed".into(),
        toml::Value::Integer(i64::try_from(header.seed).map_err(|_| {
            CoreError::config("seed", "must be at most 9223372036854775807 to be written back as TOML")
        })?),
    );
    resolved.insert("common_random_numbers".into(), toml::Value::Boolean(header.common_random_numbers));
    let output = serde_json::to_value(header.output).map_err(|e| CoreError::config("output", e.to_string()))?;
    resolved.insert("output".into(), json_to_toml(&output, "output")?);
    let Some(first) = cells.first() else { return Ok(resolved) };
    for input in &template.sections {
        let [kind] = input.kinds.as_slice() else { continue };
        let name = input.section.name();
        let entry = resolved.entry(name.to_string()).or_insert_with(|| toml::Value::Table(toml::Table::new()));
        let Some(t) = entry.as_table_mut() else { continue };
        t.entry("kind".to_string()).or_insert_with(|| toml::Value::String(kind.clone()));
        let Some((_, _, record)) = first.records.iter().find(|(s, ..)| *s == input.section) else { continue };
        let in_subtable = |k: &str| t.get(kind).and_then(toml::Value::as_table).is_some_and(|sub| sub.contains_key(k));
        let to_add: Vec<(String, Value)> = record
            .iter()
            .filter(|(k, v)| !v.is_null() && !t.contains_key(*k) && !in_subtable(k))
            .map(|(k, v)| (k.clone(), v.clone()))
            .collect();
        for (k, v) in to_add {
            let tv = json_to_toml(&v, &format!("{name}.{k}"))?;
            t.insert(k, tv);
        }
    }
    Ok(resolved)
}
