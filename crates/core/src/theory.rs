//! Theory models: plugins that predict the risk of a cell from asymptotic theory.
//!
//! A theory model declares, by returning `Some`, which cells it covers (estimator,
//! covariance, signal, setting and schedule combinations) and predicts the risk at each
//! iteration. Models are tried in registration-name order; the first that covers a
//! cell wins, so a specialised model (e.g. isotropic closed forms) should sort before
//! a general one or decline cells the other covers better.

use std::fmt::Debug;

use crate::model::CellView;
use crate::spec::{Cell, ParamValue, ResolvedScenario};

/// What a theory model sees of a cell.
#[derive(Debug, Clone, Copy)]
pub struct TheoryCell<'a> {
    /// Sizes, noise and plugins.
    pub view: CellView<'a>,
    /// Weights w_0..w_T.
    pub weights: &'a [f64],
    /// Plugin names per section (`estimator` → `ridge`, ...).
    pub kinds: [&'a str; 5],
    /// The full cell (parameter columns, for models that need plugin parameters).
    pub cell: &'a Cell,
}

impl<'a> TheoryCell<'a> {
    /// The cell's view for a theory model.
    pub fn new(cell: &'a Cell) -> Self {
        let kind = |s: &str| match cell.column(s) {
            Some(ParamValue::Str(k)) => k.as_str(),
            _ => "",
        };
        TheoryCell {
            view: cell.view(),
            weights: &cell.weights,
            kinds: [kind("signal"), kind("covariance"), kind("estimator"), kind("schedule"), kind("setting")],
            cell,
        }
    }
    /// Signal plugin name.
    pub fn signal(&self) -> &str {
        self.kinds[0]
    }
    /// Covariance plugin name.
    pub fn covariance(&self) -> &str {
        self.kinds[1]
    }
    /// Estimator plugin name.
    pub fn estimator(&self) -> &str {
        self.kinds[2]
    }
    /// Schedule plugin name.
    pub fn schedule(&self) -> &str {
        self.kinds[3]
    }
    /// Setting plugin name.
    pub fn setting(&self) -> &str {
        self.kinds[4]
    }
    /// A numeric parameter column of the cell (`setting.synthetic_noise_sd`).
    pub fn number(&self, column: &str) -> Option<f64> {
        match self.cell.column(column)? {
            ParamValue::Float(x) => Some(*x),
            ParamValue::Int(i) => Some(*i as f64),
            _ => None,
        }
    }
}

/// A risk prediction from theory.
pub trait TheoryModel: Send + Sync + Debug {
    /// The predicted risk at iterations 0..=T (NaN where the model cannot say, e.g. a
    /// model that knows only the t → ∞ limit), or `None` if the cell is not covered.
    fn predict(&self, cell: &TheoryCell<'_>) -> Option<Vec<f64>>;
}

/// Registration of a theory model.
#[derive(Debug)]
pub struct TheoryPlugin {
    /// Kebab-case name.
    pub name: &'static str,
    /// What it covers, in one line.
    pub summary: &'static str,
    /// The model.
    pub model: &'static dyn TheoryModel,
}

inventory::collect!(TheoryPlugin);

/// Every registered theory model, sorted by name.
pub fn models() -> Vec<&'static TheoryPlugin> {
    let mut v: Vec<&'static TheoryPlugin> = inventory::iter::<TheoryPlugin>.into_iter().collect();
    v.sort_by_key(|p| p.name);
    v
}

/// The first covering model's prediction for a cell, and that model's name.
pub fn predict(cell: &Cell) -> Option<(&'static str, Vec<f64>)> {
    let tc = TheoryCell::new(cell);
    models().into_iter().find_map(|m| m.model.predict(&tc).map(|p| (m.name, p)))
}

/// Predictions for every cell of a scenario (`None` where no model covers the cell).
pub fn predict_all(scenario: &ResolvedScenario) -> Vec<Option<Vec<f64>>> {
    scenario.cells.iter().map(|c| predict(c).map(|(_, p)| p)).collect()
}
