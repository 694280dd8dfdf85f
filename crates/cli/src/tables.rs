//! Data tables of `[covariance] kind = "table"` (docs/weighted.md §5): the core reads no
//! file, so before a scenario is resolved the CLI reads each table it names (path
//! relative to the scenario file; CSV with a header row, or Parquet), turns its numeric
//! columns into a [`DataTable`], registers it under the hash of the file's bytes, and
//! writes that hash into the scenario's `hash` parameter, which the plugin looks the
//! table up by. A registered scenario (compiled into the binary) reads the tables
//! shipped with it from the binary too, so `collapse run real-data` works from any
//! directory and gives the same bytes as running its file.

use std::io::Cursor;
use std::path::{Path, PathBuf};

use anyhow::Result;
use collapse_core::{DataTable, file_hash, register_table};
use polars::prelude::{AnyValue, CsvReadOptions, DataFrame, DataType, ParquetReader, SerReader};

use crate::UserError;

/// Data files shipped with the registered scenarios, by their path relative to
/// `crates/cli/scenarios/` as the scenarios write it.
const SHIPPED: &[(&str, &[u8])] = &[("../data/wdbc.csv", include_bytes!("../data/wdbc.csv"))];

/// Where a scenario's relative data paths start.
#[derive(Debug, Clone)]
pub enum Base {
    /// The directory of the scenario file.
    Dir(PathBuf),
    /// A registered scenario: its shipped data files.
    Registered,
}

/// Read the bytes of `path` (as written in the scenario).
fn read(path: &str, base: &Base, field: &str) -> Result<(Vec<u8>, String)> {
    match base {
        Base::Registered => {
            SHIPPED.iter().find(|(p, _)| *p == path).map(|(_, bytes)| (bytes.to_vec(), path.to_string())).ok_or_else(
                || {
                    UserError::new(format!(
                        "{field}: `{path}` is not a data file shipped with the registered scenarios (shipped: {})",
                        SHIPPED.iter().map(|(p, _)| *p).collect::<Vec<_>>().join(", ")
                    ))
                    .into()
                },
            )
        }
        Base::Dir(dir) => {
            let file = if Path::new(path).is_absolute() { PathBuf::from(path) } else { dir.join(path) };
            let bytes = std::fs::read(&file).map_err(|e| {
                UserError::new(format!(
                    "{field}: cannot read the data file `{}` ({e}); the path is relative to the scenario file",
                    file.display()
                ))
            })?;
            Ok((bytes, file.display().to_string()))
        }
    }
}

/// Names and values of a file's numeric columns, and its other columns with why.
type Columns = (Vec<String>, Vec<Vec<f64>>, Vec<(String, String)>);

/// The file's columns as f64, and the columns that are not numeric with why.
fn numeric_columns(df: &DataFrame) -> Columns {
    let (mut names, mut columns, mut bad) = (Vec::new(), Vec::new(), Vec::new());
    for c in df.columns() {
        let name = c.name().to_string();
        if !(c.dtype().is_primitive_numeric() || c.dtype() == &DataType::Boolean) {
            let first = (0..c.len()).find_map(|i| match c.get(i) {
                Ok(AnyValue::Null) => Some(format!("row {} is empty", i + 1)),
                Ok(v) => {
                    let text = v.to_string();
                    let text = text.trim_matches('"');
                    text.parse::<f64>().is_err().then(|| format!("row {} has {v}", i + 1))
                }
                Err(_) => None,
            });
            bad.push((name, first.unwrap_or_else(|| format!("its type is {}", c.dtype()))));
            continue;
        }
        if c.null_count() > 0 {
            let row = (0..c.len()).find(|&i| matches!(c.get(i), Ok(AnyValue::Null))).unwrap_or(0);
            bad.push((name, format!("row {} is empty", row + 1)));
            continue;
        }
        match c.cast(&DataType::Float64).ok().and_then(|f| f.f64().ok().map(|f| f.to_vec())) {
            Some(v) => {
                names.push(name);
                columns.push(v.into_iter().map(|x| x.unwrap_or(f64::NAN)).collect());
            }
            None => bad.push((name, format!("its type is {}", c.dtype()))),
        }
    }
    (names, columns, bad)
}

/// Parse a CSV (header row) or Parquet file's bytes.
fn parse(bytes: Vec<u8>, path: &str, field: &str) -> Result<DataFrame> {
    let parquet = path.to_ascii_lowercase().ends_with(".parquet");
    let df = if parquet {
        ParquetReader::new(Cursor::new(bytes)).finish()
    } else {
        CsvReadOptions::default().with_has_header(true).into_reader_with_file_handle(Cursor::new(bytes)).finish()
    };
    df.map_err(|e| {
        UserError::new(format!(
            "{field}: `{path}` is not a readable {} file: {e}",
            if parquet { "Parquet" } else { "CSV (with a header row)" }
        ))
        .into()
    })
}

/// Load one table and return its hash.
fn load(path: &str, base: &Base, field: &str) -> Result<String> {
    let (bytes, shown) = read(path, base, field)?;
    let hash = file_hash(&bytes);
    if collapse_core::registered_table(&hash).is_some() {
        return Ok(hash);
    }
    let df = parse(bytes, &shown, field)?;
    let (names, columns, bad) = numeric_columns(&df);
    if df.height() == 0 {
        return Err(UserError::new(format!("{field}: `{shown}` has no rows; a data table needs at least one")).into());
    }
    // With only non-numeric columns `names` is empty and the error below explains why.
    let table = DataTable::new(field, path, &hash, names, columns).map(|t| t.with_non_numeric(bad.clone()));
    match table {
        Ok(t) => {
            register_table(t);
            Ok(hash)
        }
        Err(_) if !bad.is_empty() => Err(UserError::new(format!(
            "{field}: `{shown}` has no numeric column ({})",
            bad.iter().map(|(n, why)| format!("`{n}`: {why}")).collect::<Vec<_>>().join("; ")
        ))
        .into()),
        Err(e) => Err(e.into()),
    }
}

/// Make the table with hash `pinned` available without reading a path: true when it is
/// registered already or is one of the shipped files.
fn load_pinned(pinned: &str, field: &str) -> Result<bool> {
    if collapse_core::registered_table(pinned).is_some() {
        return Ok(true);
    }
    match SHIPPED.iter().find(|(_, bytes)| file_hash(bytes) == pinned) {
        Some((path, _)) => load(path, &Base::Registered, field).map(|_| true),
        None => Ok(false),
    }
}

/// Load every table a scenario's `[covariance]` names and write the hashes in.
pub fn load_tables(scenario: &mut toml::Table, base: &Base) -> Result<()> {
    let Some(toml::Value::Table(section)) = scenario.get_mut("covariance") else { return Ok(()) };
    let uses_table = match section.get("kind") {
        Some(toml::Value::String(k)) => k == "table",
        Some(toml::Value::Array(kinds)) => kinds.iter().any(|k| k.as_str() == Some("table")),
        _ => false,
    };
    if !uses_table {
        return Ok(());
    }
    // The table's parameters sit beside `kind`, or in `[covariance.table]` in a kind sweep.
    let (params, prefix) = match section.get("table") {
        Some(toml::Value::Table(_)) => (
            section
                .get_mut("table")
                .and_then(toml::Value::as_table_mut)
                .ok_or_else(|| UserError::new("covariance.table"))?,
            "covariance.table",
        ),
        _ => (section, "covariance"),
    };
    let path = match params.get("path") {
        Some(toml::Value::String(p)) if !p.is_empty() => p.clone(),
        Some(other) => {
            return Err(UserError::new(format!("{prefix}.path: must be a file name (a string), got {other}")).into());
        }
        None => return Ok(()), // the resolver reports the missing parameter
    };
    let field = format!("{prefix}.path");
    let hash = match (load(&path, base, &field), params.get("hash")) {
        // A saved scenario (an output directory's scenario.toml, a shard's state, a Slurm
        // task's copy) keeps the path as first written, relative to the original scenario
        // file; the pinned hash still names the data when it is shipped or already loaded.
        (Err(e), Some(toml::Value::String(pinned))) => match load_pinned(pinned, &field)? {
            true => pinned.clone(),
            false => return Err(e),
        },
        (loaded, _) => loaded?,
    };
    match params.get("hash") {
        Some(toml::Value::String(pinned)) if *pinned != hash => {
            return Err(UserError::new(format!(
                "{prefix}.hash: the scenario pins {pinned}, but `{path}` has hash {hash} (the file changed)"
            ))
            .into());
        }
        _ => {
            params.insert("hash".into(), toml::Value::String(hash));
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_table_is_numeric_and_complete() {
        let hash = load("../data/wdbc.csv", &Base::Registered, "covariance.path").unwrap();
        let t = collapse_core::registered_table(&hash).unwrap();
        assert_eq!(t.rows(), 569);
        assert_eq!(t.names().len(), 31);
        let y = t.column("malignant").unwrap();
        assert_eq!(y.iter().filter(|&&v| v > 0.5).count(), 212);
    }

    /// A saved scenario whose relative path no longer resolves loads the shipped table
    /// its hash pins; an unknown pinned hash keeps the error about the path.
    #[test]
    fn a_pinned_shipped_table_loads_without_its_path() {
        let wdbc = file_hash(SHIPPED[0].1);
        let elsewhere = Base::Dir(tempfile::tempdir().unwrap().path().to_path_buf());
        let scenario = |hash: &str| -> toml::Table {
            toml::from_str(&format!("[covariance]\nkind = \"table\"\npath = \"../data/wdbc.csv\"\nhash = \"{hash}\"\n"))
                .unwrap()
        };
        let mut saved = scenario(&wdbc);
        load_tables(&mut saved, &elsewhere).unwrap();
        assert_eq!(saved["covariance"]["hash"].as_str(), Some(wdbc.as_str()));
        assert!(collapse_core::registered_table(&wdbc).is_some());
        let e = load_tables(&mut scenario(&"0".repeat(32)), &elsewhere).unwrap_err();
        assert!(e.to_string().contains("cannot read the data file"), "{e}");
    }

    #[test]
    fn text_columns_are_reported_when_used() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("t.csv"), "a,b,c\n1,x,3\n2,y,\n").unwrap();
        let hash = load("t.csv", &Base::Dir(dir.path().to_path_buf()), "covariance.path").unwrap();
        let t = collapse_core::registered_table(&hash).unwrap();
        assert_eq!(t.numeric_column("a").unwrap(), &[1.0, 2.0]);
        let e = t.numeric_column("b").unwrap_err();
        assert!(e.contains("not numeric") && e.contains("row 1"), "{e}");
        let e = t.numeric_column("c").unwrap_err();
        assert!(e.contains("row 2 is empty"), "{e}");
        let e = t.numeric_column("d").unwrap_err();
        assert!(e.contains("a, b, c") || e.contains("a, c, b") || e.contains("its columns"), "{e}");
    }
}
