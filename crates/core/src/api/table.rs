//! Data tables: a design read from a file (docs/weighted.md §5).
//!
//! The core reads no file format. A front end (the CLI) reads a CSV or Parquet file,
//! turns it into a [`DataTable`] of named numeric columns, and registers it under the
//! hash of the file's bytes ([`file_hash`], [`register_table`]); the plugin that uses
//! it (`[covariance] kind = "table"`) names that hash in its parameters and looks the
//! table up when it is built ([`registered_table`]). The registry is content-addressed,
//! so whatever registered a table, the same hash always means the same data, and the
//! hash in a scenario's parameters makes its streams and results a function of the
//! data's content, not of where the file lies.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, OnceLock};

use faer::{ColRef, Mat};

use crate::error::CoreError;

/// Named numeric columns of equal, non-zero length, all values finite.
#[derive(Debug, Clone, PartialEq)]
pub struct DataTable {
    /// Where it came from (the path as written), for messages.
    pub source: String,
    /// [`file_hash`] of the file's bytes.
    pub hash: String,
    names: Vec<String>,
    columns: Vec<Vec<f64>>,
    /// Columns that are in the file but not numeric, with why (a text value, a missing
    /// value): naming one is an error that says so.
    non_numeric: Vec<(String, String)>,
}

impl DataTable {
    /// A table; errors (naming `field`, the parameter that pointed at the file) for an
    /// empty table, columns of different lengths or non-finite values.
    pub fn new(
        field: &str,
        source: &str,
        hash: &str,
        names: Vec<String>,
        columns: Vec<Vec<f64>>,
    ) -> Result<Self, CoreError> {
        let rows = columns.first().map_or(0, Vec::len);
        if names.is_empty() || rows == 0 {
            return Err(CoreError::config(field, format!("`{source}` has no rows; a data table needs at least one")));
        }
        if names.len() != columns.len() || columns.iter().any(|c| c.len() != rows) {
            return Err(CoreError::config(field, format!("`{source}`: columns of different lengths")));
        }
        for (name, col) in names.iter().zip(&columns) {
            if let Some(i) = col.iter().position(|x| !x.is_finite()) {
                return Err(CoreError::config(
                    field,
                    format!("`{source}`: column `{name}` has the non-finite value {} at row {}", col[i], i + 1),
                ));
            }
        }
        Ok(DataTable { source: source.into(), hash: hash.into(), names, columns, non_numeric: Vec::new() })
    }

    /// Record the file's columns that could not be read as numbers, with the reason.
    #[must_use]
    pub fn with_non_numeric(mut self, columns: Vec<(String, String)>) -> Self {
        self.non_numeric = columns;
        self
    }

    /// The column called `name`, or a message saying why there is none (not in the file,
    /// listing the columns; or not numeric, saying where).
    pub fn numeric_column(&self, name: &str) -> Result<&[f64], String> {
        if let Some(c) = self.column(name) {
            return Ok(c);
        }
        if let Some((_, why)) = self.non_numeric.iter().find(|(n, _)| n == name) {
            return Err(format!("column `{name}` of `{}` is not numeric: {why}", self.source));
        }
        let all: Vec<&str> =
            self.names.iter().map(String::as_str).chain(self.non_numeric.iter().map(|(n, _)| n.as_str())).collect();
        Err(format!("`{}` has no column `{name}`; its columns are: {}", self.source, all.join(", ")))
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.columns.first().map_or(0, Vec::len)
    }

    /// Column names, in file order.
    pub fn names(&self) -> &[String] {
        &self.names
    }

    /// The column called `name`.
    pub fn column(&self, name: &str) -> Option<&[f64]> {
        self.names.iter().position(|n| n == name).map(|i| self.columns[i].as_slice())
    }
}

/// A finite population of rows (and labels) that a design draws from uniformly with
/// replacement: the empirical law of a data table.
#[derive(Debug, Clone)]
pub struct Population {
    /// Rows x_i (N × p), after any standardization.
    pub x: Mat<f64>,
    /// Labels y_i, if the table has a label column.
    pub y: Option<Vec<f64>>,
}

impl Population {
    /// The population mean of `loss(x_iᵀa, x_iᵀb)` over the rows: the expectation of a
    /// pointwise loss between two linear predictors under the empirical law, such as a
    /// GLM's excess loss of an estimate b against the population fit a
    /// (docs/weighted.md §5).
    pub fn mean_over_rows(&self, a: ColRef<'_, f64>, b: ColRef<'_, f64>, loss: impl Fn(f64, f64) -> f64) -> f64 {
        let u = crate::spectral::linalg::matvec(self.x.as_ref(), a, faer::Par::Seq);
        let v = crate::spectral::linalg::matvec(self.x.as_ref(), b, faer::Par::Seq);
        let total: f64 = u.iter().zip(v.iter()).map(|(&u, &v)| loss(u, v)).sum();
        total / self.x.nrows() as f64
    }
}

/// The hash of a file's bytes: XXH3-128 as 32 hex digits (a published, platform-
/// independent function).
pub fn file_hash(bytes: &[u8]) -> String {
    format!("{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

fn registry() -> &'static Mutex<HashMap<String, Arc<DataTable>>> {
    static TABLES: OnceLock<Mutex<HashMap<String, Arc<DataTable>>>> = OnceLock::new();
    TABLES.get_or_init(|| Mutex::new(HashMap::new()))
}

/// Register a table under its hash (a table already registered under that hash is kept:
/// equal hashes mean equal bytes) and return the registered copy.
pub fn register_table(table: DataTable) -> Arc<DataTable> {
    let mut map = registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner);
    map.entry(table.hash.clone()).or_insert_with(|| Arc::new(table)).clone()
}

/// The table registered under `hash`.
pub fn registered_table(hash: &str) -> Option<Arc<DataTable>> {
    registry().lock().unwrap_or_else(std::sync::PoisonError::into_inner).get(hash).cloned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hash_is_pinned_and_registry_is_content_addressed() {
        assert_eq!(file_hash(b"").len(), 32);
        assert_ne!(file_hash(b"a,b\n1,2\n"), file_hash(b"a,b\n1,3\n"));
        let t = DataTable::new("path", "t.csv", "h1", vec!["a".into()], vec![vec![1.0, 2.0]]).unwrap();
        register_table(t.clone());
        assert_eq!(registered_table("h1").unwrap().column("a"), Some(&[1.0, 2.0][..]));
        assert!(registered_table("nope").is_none());
    }

    #[test]
    fn bad_tables_are_rejected_with_the_field() {
        let e = DataTable::new("covariance.path", "e.csv", "h", vec!["a".into()], vec![vec![]]).unwrap_err();
        assert_eq!(e.field(), Some("covariance.path"));
        assert!(e.to_string().contains("no rows"), "{e}");
        let e = DataTable::new("p", "n.csv", "h", vec!["a".into()], vec![vec![1.0, f64::NAN]]).unwrap_err();
        assert!(e.to_string().contains("row 2"), "{e}");
    }
}
