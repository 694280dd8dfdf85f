//! The only module that knows polars: result tables to DataFrames and Parquet, and
//! back. Files are written under a temporary name in the output directory and renamed,
//! so a crash never leaves a half-written file under the final name.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use collapse_core::{ColumnData, Table};
use polars::prelude::{
    Column, DataFrame, NamedFrom, ParquetCompression, ParquetReader, ParquetWriter, PlSmallStr, SerReader, Series,
};

use crate::UserError;

/// Convert a result table into a DataFrame.
pub fn to_dataframe(table: &Table) -> Result<DataFrame> {
    let columns: Vec<Column> = table
        .columns
        .iter()
        .map(|(name, data)| {
            let name = PlSmallStr::from(name.as_str());
            let s = match data {
                ColumnData::Int(v) => Series::new(name, v),
                ColumnData::Float(v) => Series::new(name, v),
                ColumnData::Bool(v) => Series::new(name, v),
                ColumnData::Str(v) => Series::new(name, v),
            };
            s.into()
        })
        .collect();
    Ok(DataFrame::new(table.rows(), columns)?)
}

/// Read a Parquet file into a DataFrame.
pub fn read_parquet(path: &Path) -> Result<DataFrame> {
    let file = File::open(path).with_context(|| format!("cannot open {}", path.display()))?;
    ParquetReader::new(file).finish().with_context(|| format!("cannot read {} as Parquet", path.display()))
}

/// Check, before any work is done, that `dir` can be created and written: it must be
/// a directory or not exist, and its nearest existing ancestor must accept a file.
pub fn check_writable(dir: &Path) -> Result<()> {
    if dir.exists() && !dir.is_dir() {
        return Err(UserError::new(format!("--out: `{}` exists and is not a directory", dir.display())).into());
    }
    let mut probe_dir = dir.to_path_buf();
    while !probe_dir.exists() {
        match probe_dir.parent() {
            Some(p) if !p.as_os_str().is_empty() => probe_dir = p.to_path_buf(),
            _ => {
                probe_dir = PathBuf::from(".");
                break;
            }
        }
    }
    if !probe_dir.is_dir() {
        return Err(UserError::new(format!(
            "--out: cannot create `{}`: `{}` is not a directory",
            dir.display(),
            probe_dir.display()
        ))
        .into());
    }
    let probe = probe_dir.join(format!(".collapse-write-probe-{}", std::process::id()));
    match File::create(&probe) {
        Ok(_) => {
            let _ = std::fs::remove_file(&probe);
            Ok(())
        }
        Err(e) => Err(UserError::new(format!("--out: cannot write to `{}`: {e}", probe_dir.display())).into()),
    }
}

/// One file to write: name inside the output directory and its producer.
#[derive(Debug)]
pub enum Artifact<'a> {
    /// A DataFrame written as Parquet.
    Parquet(&'a str, DataFrame),
    /// A text file.
    Text(&'a str, String),
}

/// Write every artifact into `dir` (created if needed) via temporary names, then
/// rename them all. On failure, temporary files are removed and a directory this call
/// created is removed again.
pub fn write_all(dir: &Path, artifacts: Vec<Artifact<'_>>) -> Result<()> {
    let created = !dir.exists();
    std::fs::create_dir_all(dir)
        .map_err(|e| UserError::new(format!("--out: cannot create `{}`: {e}", dir.display())))?;
    let mut temps: Vec<(PathBuf, PathBuf)> = Vec::new();
    let result = (|| -> Result<()> {
        for artifact in artifacts {
            let (name, tmp) = match &artifact {
                Artifact::Parquet(n, _) | Artifact::Text(n, _) => {
                    (*n, dir.join(format!(".{n}.tmp-{}", std::process::id())))
                }
            };
            temps.push((tmp.clone(), dir.join(name)));
            match artifact {
                Artifact::Parquet(_, mut df) => {
                    let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
                    ParquetWriter::new(file)
                        .with_compression(ParquetCompression::Zstd(None))
                        .finish(&mut df)
                        .with_context(|| format!("cannot write {}", tmp.display()))?;
                }
                Artifact::Text(_, text) => {
                    std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))?;
                }
            }
        }
        for (tmp, fin) in &temps {
            std::fs::rename(tmp, fin)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), fin.display()))?;
        }
        Ok(())
    })();
    if result.is_err() {
        for (tmp, _) in &temps {
            let _ = std::fs::remove_file(tmp);
        }
        if created {
            let _ = std::fs::remove_dir_all(dir);
        }
    }
    result
}
