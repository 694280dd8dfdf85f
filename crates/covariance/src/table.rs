use std::sync::Arc;

use collapse_core::faer::{Col, ColRef, Mat, MatRef, Par};
use collapse_core::rand::RngExt as _;
use collapse_core::spectral::linalg::{lower_gram, matmul, symmetric_eigen, t_matvec};
use collapse_core::{BuildContext, Covariance, DataTable, ParamError, Params, Population, Rng, registered_table};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// A design drawn from a data table (docs/weighted.md §5): the table's rows are the
/// population, each draw of n rows picks rows uniformly with replacement, and Σ is the
/// rows' second-moment matrix (1/N)Σ x_i x_iᵀ, so that ‖b − β‖²_Σ is the exact population
/// risk of a linear predictor. With a `label` column the design carries real labels:
/// protocols that draw their own rows (`weighted`) then take real samples (x_i, y_i) from
/// the table and the truth is the family's fit on the whole table; families score
/// exactly over the rows ([`Covariance::population`]).
///
/// The file (CSV with a header row, or Parquet) is read by the command-line tool, path
/// relative to the scenario file; the tool fills in `hash` (XXH3-128 of the file's
/// bytes), which keys the loaded table and the run's random streams and goes into
/// `manifest.json`. A `hash` written in the scenario pins the data: a file with other
/// bytes is an error.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `path` | (required) | a CSV or Parquet file | the table, relative to the scenario file |
/// | `features` | (required) | ≥ 1 column names | feature columns, in order |
/// | `label` | none | a column name | the label column (needed by regression families) |
/// | `standardize` | true | bool | centre each feature and scale it to unit variance over the table |
/// | `intercept` | false | bool | add a constant feature 1 in front (p = features + 1) |
/// | `hash` | filled in | 32 hex digits | XXH3-128 of the file; pins the data when given |
///
/// Errors: a missing file, a missing column (the message lists the columns), a
/// non-numeric or missing value, an empty table, a constant feature with `standardize`,
/// p ≠ the number of features (+ 1 with `intercept`).
///
/// Reference: docs/weighted.md §5; the shipped table is the Wisconsin diagnostic breast
/// cancer data (Street, Wolberg & Mangasarian 1993; UCI, CC BY 4.0), crates/cli/data.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct TableParams {
    /// The data file (CSV with a header row, or `.parquet`), relative to the scenario file.
    pub path: String,
    /// Feature columns, in order (at least one).
    #[schemars(length(min = 1))]
    pub features: Vec<String>,
    /// The label column (real labels of regression families).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub label: Option<String>,
    /// Centre each feature and scale it to unit variance over the table.
    #[serde(default = "yes")]
    pub standardize: bool,
    /// Add a constant feature 1 in front.
    #[serde(default)]
    pub intercept: bool,
    /// XXH3-128 of the file's bytes (filled in by the command-line tool; pins the data
    /// when given).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub hash: Option<String>,
}

fn yes() -> bool {
    true
}

/// See [`TableParams`].
#[derive(Debug, Clone)]
pub struct Table {
    population: Population,
    /// Eigenvalues of Σ, descending.
    tau: Vec<f64>,
    /// Eigenvectors, columns in the order of `tau`.
    q: Mat<f64>,
    sigma: Mat<f64>,
}

impl Table {
    /// The design of `table` with these columns; errors name the field.
    pub fn new(
        table: &DataTable,
        features: &[String],
        label: Option<&str>,
        standardize: bool,
        intercept: bool,
    ) -> Result<Self, ParamError> {
        let column = |field: &str, name: &str| -> Result<Vec<f64>, ParamError> {
            table.numeric_column(name).map(<[f64]>::to_vec).map_err(|why| ParamError::new(field, why))
        };
        if features.is_empty() {
            return Err(ParamError::new("features", "give at least one feature column"));
        }
        let rows = table.rows();
        let mut cols = Vec::new();
        if intercept {
            cols.push(vec![1.0; rows]);
        }
        for name in features {
            let mut c = column("features", name)?;
            if standardize {
                let mean = c.iter().sum::<f64>() / rows as f64;
                let var = c.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / rows as f64;
                if var.is_nan() || var <= 0.0 {
                    return Err(ParamError::new(
                        "features",
                        format!(
                            "column `{name}` is constant; it cannot be standardized (set standardize = false or drop it)"
                        ),
                    ));
                }
                let sd = var.sqrt();
                c.iter_mut().for_each(|x| *x = (*x - mean) / sd);
            }
            cols.push(c);
        }
        let y = label.map(|l| column("label", l)).transpose()?;
        let p = cols.len();
        let x = Mat::from_fn(rows, p, |i, j| cols[j][i]);
        let mut sigma = lower_gram(x.transpose(), Par::Seq);
        for i in 0..p {
            for j in 0..=i {
                sigma[(i, j)] /= rows as f64;
                sigma[(j, i)] = sigma[(i, j)];
            }
        }
        let (values, vectors) = symmetric_eigen(sigma.as_ref(), Par::Seq).map_err(|e| {
            ParamError::new("features", format!("cannot diagonalise the features' second moments: {e}"))
        })?;
        // Ascending from the solver; descending here, as the trait requires.
        let order: Vec<usize> = (0..p).rev().collect();
        let tau = order.iter().map(|&j| values[j].max(0.0)).collect();
        let q = Mat::from_fn(p, p, |i, k| vectors[(i, order[k])]);
        Ok(Table { population: Population { x, y }, tau, q, sigma })
    }
}

impl Covariance for Table {
    fn dim(&self) -> usize {
        self.tau.len()
    }
    fn eigenvalues(&self) -> Vec<f64> {
        self.tau.clone()
    }
    fn to_eigenbasis(&self, v: ColRef<'_, f64>) -> Col<f64> {
        t_matvec(self.q.as_ref(), v, Par::Seq)
    }
    fn to_standard_basis(&self, c: ColRef<'_, f64>) -> Col<f64> {
        collapse_core::spectral::linalg::matvec(self.q.as_ref(), c, Par::Seq)
    }
    fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64> {
        matmul(self.sigma.as_ref(), m, Par::Seq)
    }
    fn sample(&self, n: usize, rng: &mut Rng) -> Mat<f64> {
        let rows = self.population.x.nrows();
        let idx: Vec<usize> = (0..n).map(|_| rng.random_range(0..rows)).collect();
        Mat::from_fn(n, self.dim(), |i, j| self.population.x[(idx[i], j)])
    }
    fn population(&self) -> Option<&Population> {
        Some(&self.population)
    }
}

impl Params for TableParams {
    type Target = dyn Covariance;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Covariance>, ParamError> {
        let hash = self.hash.as_deref().ok_or_else(|| {
            ParamError::new(
                "path",
                format!(
                    "the table `{}` was not loaded: data tables are read by the command-line tool (relative to the \
                     scenario file), which fills in `hash`",
                    self.path
                ),
            )
        })?;
        let table: Arc<DataTable> = registered_table(hash).ok_or_else(|| {
            ParamError::new("hash", format!("no table with hash {hash} is loaded (file `{}`)", self.path))
        })?;
        let design = Table::new(&table, &self.features, self.label.as_deref(), self.standardize, self.intercept)?;
        if design.dim() != ctx.p {
            return Err(ParamError::new(
                "features",
                format!(
                    "{} feature(s){} give p = {}, but design.p = {}; set design.p = {}",
                    self.features.len(),
                    if self.intercept { " plus the intercept" } else { "" },
                    design.dim(),
                    ctx.p,
                    design.dim()
                ),
            ));
        }
        Ok(Box::new(design))
    }
    fn example() -> Self {
        TableParams {
            path: "../../data/wdbc.csv".into(),
            features: vec!["mean_radius".into(), "mean_texture".into()],
            label: Some("malignant".into()),
            standardize: true,
            intercept: true,
            hash: None,
        }
    }
}

collapse_core::register!(
    CovariancePlugin,
    TableParams,
    "table",
    "Rows drawn from a data table (CSV/Parquet; the population), Σ its second moments; labels from a column"
);

#[cfg(test)]
mod tests {
    use super::*;
    use collapse_core::register_table;

    fn table() -> Arc<DataTable> {
        register_table(
            DataTable::new(
                "path",
                "t.csv",
                "test-table-hash",
                vec!["a".into(), "b".into(), "y".into(), "c".into()],
                vec![vec![1.0, 2.0, 3.0, 6.0], vec![0.5, 0.5, -1.0, 2.0], vec![0.0, 1.0, 1.0, 0.0], vec![7.0; 4]],
            )
            .unwrap(),
        )
    }

    fn params() -> TableParams {
        TableParams {
            path: "t.csv".into(),
            features: vec!["a".into(), "b".into()],
            label: Some("y".into()),
            standardize: true,
            intercept: true,
            hash: Some(table().hash.clone()),
        }
    }

    /// Σ of standardized features with an intercept: diag 1, zero intercept–feature
    /// terms, corr(a, b) off the diagonal; eigen-decomposition reproduces it.
    #[test]
    fn second_moments_by_hand() {
        let cov = params().checked_build(&BuildContext { n: 3, p: 3 }).unwrap();
        let s = cov.apply(Mat::<f64>::identity(3, 3).as_ref());
        assert!((s[(0, 0)] - 1.0).abs() < 1e-14 && (s[(1, 1)] - 1.0).abs() < 1e-14 && s[(0, 1)].abs() < 1e-14);
        // corr(a, b) for a = (1, 2, 3, 6), b = (0.5, 0.5, −1, 2).
        let (a, b) = ([1.0, 2.0, 3.0, 6.0f64], [0.5, 0.5, -1.0, 2.0f64]);
        let (ma, mb) = (3.0, 0.5);
        let cab: f64 = a.iter().zip(&b).map(|(x, y)| (x - ma) * (y - mb)).sum::<f64>() / 4.0;
        let (va, vb) = (
            a.iter().map(|x| (x - ma).powi(2)).sum::<f64>() / 4.0,
            b.iter().map(|y| (y - mb).powi(2)).sum::<f64>() / 4.0,
        );
        assert!((s[(1, 2)] - cab / (va * vb).sqrt()).abs() < 1e-14);
        let tau = cov.eigenvalues();
        assert!(tau.windows(2).all(|w| w[0] >= w[1]));
        let v = Col::from_fn(3, |i| [0.3, -1.0, 2.0][i]);
        let back = cov.to_standard_basis(cov.to_eigenbasis(v.as_ref()).as_ref());
        assert!((0..3).all(|i| (back[i] - v[i]).abs() < 1e-12));
        assert_eq!(cov.population().unwrap().y.as_deref(), Some(&[0.0, 1.0, 1.0, 0.0][..]));
    }

    #[test]
    fn bad_parameters_name_their_field() {
        let ctx = BuildContext { n: 3, p: 3 };
        let e = TableParams { features: vec!["a".into(), "zz".into()], ..params() }.checked_build(&ctx).unwrap_err();
        assert_eq!(e.field(), Some("features"));
        assert!(e.to_string().contains("no column `zz`") && e.to_string().contains("a, b, y, c"), "{e}");
        let e = TableParams { label: Some("nope".into()), ..params() }.checked_build(&ctx).unwrap_err();
        assert_eq!(e.field(), Some("label"));
        let e = TableParams { features: vec!["a".into(), "c".into()], ..params() }.checked_build(&ctx).unwrap_err();
        assert!(e.to_string().contains("constant"), "{e}");
        let e = params().checked_build(&BuildContext { n: 3, p: 2 }).unwrap_err();
        assert!(e.to_string().contains("set design.p = 3"), "{e}");
        let e = TableParams { hash: None, ..params() }.checked_build(&ctx).unwrap_err();
        assert_eq!(e.field(), Some("path"));
        let e = TableParams { hash: Some("0".repeat(32)), ..params() }.checked_build(&ctx).unwrap_err();
        assert_eq!(e.field(), Some("hash"));
        let e = TableParams { features: vec![], ..params() }.checked_build(&ctx).unwrap_err();
        assert_eq!(e.field(), Some("features"));
    }

    #[test]
    fn samples_are_rows_of_the_table() {
        let cov = params().checked_build(&BuildContext { n: 3, p: 3 }).unwrap();
        let mut rng = collapse_core::Streams::new(1, 1, 1).rng(collapse_core::Purpose::Covariates, 0);
        let x = cov.sample(50, &mut rng);
        let pop = &cov.population().unwrap().x;
        for i in 0..50 {
            assert!((0..4).any(|r| (0..3).all(|j| x[(i, j)].to_bits() == pop[(r, j)].to_bits())));
        }
    }
}
