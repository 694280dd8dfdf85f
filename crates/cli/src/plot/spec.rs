//! What a figure shows: the schema of a scenario's `[[report.figures]]`, checked when the
//! scenario is loaded.
//!
//! ```toml
//! [[report.figures]]
//! name = "risk-vs-w"             # file stem: <name>.svg, <name>.png
//! title = "Long-run risk against the real-data weight"
//! x = "schedule.w"               # a parameter column, or "iteration"
//! y = "risk"                     # a metric (default: the first)
//! colour = "estimator.lambda"    # one series per value (a column or a list of columns)
//! facet = "design.p"             # one panel per value (a column or a list of columns)
//! log_x = true
//! where = { "estimator.lambda" = [0.0, 1.0] }   # cells shown: a value or a list of values
//! ```
//!
//! | field | default | meaning |
//! |---|---|---|
//! | `name` | `figure-<k>` | file stem, kebab-case |
//! | `title` | derived from x and y | figure title |
//! | `x` | required | a numeric parameter column (`schedule.w`, `estimator.lambda`, `design.p`, …) or `iteration` |
//! | `y` | the first metric | the metric plotted: its mean ± 2 SE, its exact mean, its theory |
//! | `colour` | every other varying parameter | the parameter(s) whose values are the series; parameters that vary but are named nowhere join the series too, so no two points of a series share an x |
//! | `facet` | none | the parameter(s) whose values get one panel each |
//! | `iteration` | each cell's last | for a parameter on x: the iteration shown |
//! | `where` | all cells | parameter values selecting cells; a list means "any of" |
//! | `log_x`, `log_y` | false | logarithmic axes (points with x ≤ 0 or y ≤ 0 are left out and counted in a note) |
//! | `theory` | true | draw the theory line (from `<y>_theory`; for a parameter on x, a dense curve recomputed from the scenario's theory where it has one) |
//! | `exact` | true | draw the exact conditional mean (`<y>_exact_mean`) |
//! | `x_label`, `y_label` | from the column names | axis labels |
//! | `caption` | none | a sentence printed under the figure in the HTML report |

use std::collections::BTreeMap;

use collapse_core::CoreError;
use serde::Deserialize;
use serde_json::Value;

/// One column name or several.
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(untagged)]
pub enum Columns {
    /// A single column.
    One(String),
    /// Several columns: their combinations.
    Many(Vec<String>),
}

impl Columns {
    /// The column names.
    pub fn names(&self) -> Vec<String> {
        match self {
            Columns::One(s) => vec![s.clone()],
            Columns::Many(v) => v.clone(),
        }
    }
}

fn yes() -> bool {
    true
}

/// One figure of a scenario's `[[report.figures]]` (see the module documentation).
#[derive(Debug, Clone, PartialEq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FigureSpec {
    /// File stem (kebab-case).
    #[serde(default)]
    pub name: Option<String>,
    /// Title.
    #[serde(default)]
    pub title: Option<String>,
    /// The x column: a numeric parameter or `iteration`.
    pub x: String,
    /// The metric.
    #[serde(default)]
    pub y: Option<String>,
    /// Series parameters.
    #[serde(default, alias = "color")]
    pub colour: Option<Columns>,
    /// Panel parameters.
    #[serde(default)]
    pub facet: Option<Columns>,
    /// Iteration shown when x is a parameter.
    #[serde(default)]
    pub iteration: Option<i64>,
    /// Cells shown.
    #[serde(default, rename = "where")]
    pub selection: BTreeMap<String, Value>,
    /// Logarithmic x axis.
    #[serde(default)]
    pub log_x: bool,
    /// Logarithmic y axis.
    #[serde(default)]
    pub log_y: bool,
    /// Draw the theory line.
    #[serde(default = "yes")]
    pub theory: bool,
    /// Draw the exact conditional mean.
    #[serde(default = "yes")]
    pub exact: bool,
    /// x axis label.
    #[serde(default)]
    pub x_label: Option<String>,
    /// y axis label.
    #[serde(default)]
    pub y_label: Option<String>,
    /// Caption under the figure in the HTML report.
    #[serde(default)]
    pub caption: Option<String>,
}

impl FigureSpec {
    /// A figure of `y` against `x` with everything else at its default.
    pub fn new(x: &str) -> Self {
        FigureSpec {
            name: None,
            title: None,
            x: x.to_string(),
            y: None,
            colour: None,
            facet: None,
            iteration: None,
            selection: BTreeMap::new(),
            log_x: false,
            log_y: false,
            theory: true,
            exact: true,
            x_label: None,
            y_label: None,
            caption: None,
        }
    }

    /// The series columns named by `colour`.
    pub fn colour_columns(&self) -> Vec<String> {
        self.colour.as_ref().map(Columns::names).unwrap_or_default()
    }

    /// The panel columns named by `facet`.
    pub fn facet_columns(&self) -> Vec<String> {
        self.facet.as_ref().map(Columns::names).unwrap_or_default()
    }
}

/// The names a figure may refer to, with the field of `report.figures[k]` it is checked
/// for; each error lists what is allowed.
#[derive(Debug, Clone, Default)]
pub struct KnownColumns {
    /// Parameter columns (`schedule.w`, `estimator`, …).
    pub params: Vec<String>,
    /// Parameter columns that hold numbers.
    pub numeric: Vec<String>,
    /// Metric names (`risk`, …).
    pub metrics: Vec<String>,
}

/// Check the figures of a `[report]` against the columns the scenario produces; errors
/// name `report.figures[k].<field>`.
pub fn check(figures: &[FigureSpec], known: &KnownColumns) -> Result<(), CoreError> {
    let mut names: Vec<String> = Vec::new();
    for (k, f) in figures.iter().enumerate() {
        let field = |name: &str| format!("report.figures[{k}].{name}");
        if let Some(name) = &f.name {
            let kebab = !name.is_empty()
                && name.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
                && !name.starts_with('-');
            if !kebab {
                return Err(CoreError::config(
                    field("name"),
                    format!("`{name}` must be kebab-case (lowercase letters, digits and `-`): it names the files"),
                ));
            }
            if names.contains(name) {
                return Err(CoreError::config(field("name"), format!("`{name}` is used by two figures")));
            }
            names.push(name.clone());
        }
        if f.x != "iteration" && !known.numeric.contains(&f.x) {
            let why = if known.params.contains(&f.x) { "is not numeric" } else { "is not a parameter column" };
            return Err(CoreError::config(
                field("x"),
                format!("`{}` {why}; allowed: iteration, {}", f.x, known.numeric.join(", ")),
            ));
        }
        if let Some(y) = &f.y
            && !known.metrics.contains(y)
        {
            return Err(CoreError::config(
                field("y"),
                format!("`{y}` is not a metric; metrics: {}", known.metrics.join(", ")),
            ));
        }
        for (what, columns) in [("colour", f.colour_columns()), ("facet", f.facet_columns())] {
            for c in &columns {
                if !known.params.contains(c) {
                    return Err(CoreError::config(
                        field(what),
                        format!("`{c}` is not a parameter column; columns: {}", known.params.join(", ")),
                    ));
                }
                if *c == f.x {
                    return Err(CoreError::config(field(what), format!("`{c}` is already the x axis")));
                }
            }
        }
        let facets = f.facet_columns();
        if let Some(c) = f.colour_columns().iter().find(|c| facets.contains(c)) {
            return Err(CoreError::config(field("colour"), format!("`{c}` is also a facet")));
        }
        for c in f.selection.keys() {
            if !known.params.contains(c) {
                return Err(CoreError::config(
                    field(&format!("where.{c}")),
                    format!("not a parameter column; columns: {}", known.params.join(", ")),
                ));
            }
        }
        if f.iteration.is_some() && f.x == "iteration" {
            return Err(CoreError::config(
                field("iteration"),
                "not allowed when x is `iteration` (every iteration is shown)",
            ));
        }
        if let Some(t) = f.iteration
            && t < 0
        {
            return Err(CoreError::config(field("iteration"), format!("must be ≥ 0, got {t}")));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn known() -> KnownColumns {
        KnownColumns {
            params: vec!["schedule.w".into(), "estimator".into(), "estimator.lambda".into()],
            numeric: vec!["schedule.w".into(), "estimator.lambda".into()],
            metrics: vec!["risk".into()],
        }
    }

    fn figures(toml_text: &str) -> Vec<FigureSpec> {
        let t: toml::Value = toml::from_str(toml_text).unwrap();
        let v = serde_json::to_value(t).unwrap();
        let figures = v.get("figures").cloned().unwrap_or_default();
        serde_json::from_value(figures).unwrap()
    }

    #[test]
    fn every_field_error_names_the_figure_and_the_field() {
        let cases = [
            ("[[figures]]\nx = \"schedule.v\"\n", "report.figures[0].x", "schedule.w"),
            ("[[figures]]\nx = \"estimator\"\n", "report.figures[0].x", "not numeric"),
            ("[[figures]]\nx = \"iteration\"\ny = \"rsk\"\n", "report.figures[0].y", "metrics: risk"),
            ("[[figures]]\nx = \"iteration\"\ncolour = \"design.p\"\n", "report.figures[0].colour", "estimator.lambda"),
            ("[[figures]]\nx = \"iteration\"\nfacet = [\"estimator\", \"x\"]\n", "report.figures[0].facet", "`x`"),
            ("[[figures]]\nx = \"schedule.w\"\nfacet = \"schedule.w\"\n", "report.figures[0].facet", "x axis"),
            ("[[figures]]\nx = \"iteration\"\niteration = 3\n", "report.figures[0].iteration", "not allowed"),
            ("[[figures]]\nx = \"iteration\"\nname = \"Risk Plot\"\n", "report.figures[0].name", "kebab-case"),
            ("[[figures]]\nx = \"iteration\"\nwhere = { \"q\" = 1 }\n", "report.figures[0].where.q", "columns"),
            (
                "[[figures]]\nx = \"iteration\"\nname = \"a\"\n[[figures]]\nx = \"schedule.w\"\nname = \"a\"\n",
                "report.figures[1].name",
                "two figures",
            ),
            (
                "[[figures]]\nx = \"schedule.w\"\ncolour = \"estimator\"\nfacet = \"estimator\"\n",
                "report.figures[0].colour",
                "also a facet",
            ),
        ];
        for (text, field, needle) in cases {
            let e = check(&figures(text), &known()).unwrap_err().to_string();
            assert!(e.starts_with(field) && e.contains(needle), "{text}: {e}");
        }
        let ok = "[[figures]]\nx = \"schedule.w\"\ncolor = \"estimator\"\nlog_y = true\nwhere = { \"estimator.lambda\" = [0.0, 1.0] }\n";
        check(&figures(ok), &known()).unwrap();
    }
}
