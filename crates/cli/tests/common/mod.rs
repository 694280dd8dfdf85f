//! Helpers shared by the CLI integration tests: scenario files, reading Parquet columns back.
#![allow(dead_code, clippy::unwrap_used)] // each test binary uses a subset; a failed unwrap is a failed test

use std::path::{Path, PathBuf};

use polars::prelude::DataFrame;

/// Write `text` as `dir/scenario.toml` and return its path.
pub fn write_scenario(dir: &Path, text: &str) -> PathBuf {
    let path = dir.join("scenario.toml");
    std::fs::write(&path, text).unwrap();
    path
}

/// A Float64 column as values (null → NaN, which fails any comparison that needs a value).
pub fn f64_col(df: &DataFrame, name: &str) -> Vec<f64> {
    df.column(name).unwrap().f64().unwrap().to_vec().into_iter().map(|x| x.unwrap_or(f64::NAN)).collect()
}

/// An Int64 column as values (panics on null: integer columns never have any).
pub fn i64_col(df: &DataFrame, name: &str) -> Vec<i64> {
    df.column(name).unwrap().i64().unwrap().to_vec().into_iter().map(|x| x.unwrap()).collect()
}

/// A text column (plain or categorical) as strings.
pub fn str_col(df: &DataFrame, name: &str) -> Vec<Option<String>> {
    let c = df.column(name).unwrap().cast(&polars::prelude::DataType::String).unwrap();
    let s = c.str().unwrap();
    (0..s.len()).map(|i| s.get(i).map(str::to_string)).collect()
}
