//! The only module that knows polars, with [`crate::writer`]: result tables to
//! DataFrames and Parquet, and back. Every file of a run is written under a hidden
//! temporary name in the output directory and renamed when the whole run has succeeded
//! ([`Staging`]), so a failure or a kill never leaves a file under a final name.

use std::fs::File;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use collapse_core::spec::Compression;
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

/// polars' name for a compression choice (zstd and gzip at their default levels).
pub fn parquet_compression(c: Compression) -> ParquetCompression {
    match c {
        // Level 1: the runs table of a large sweep is written at about twice the speed of
        // the default level 3, for files a few per cent larger (bench W7).
        Compression::Zstd => ParquetCompression::Zstd(polars_parquet::write::ZstdLevel::try_new(1).ok()),
        Compression::Lz4 => ParquetCompression::Lz4Raw,
        Compression::Snappy => ParquetCompression::Snappy,
        Compression::Gzip => ParquetCompression::Gzip(None),
        Compression::Uncompressed => ParquetCompression::Uncompressed,
    }
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

/// Files being written into an output directory under temporary names. [`Staging::commit`]
/// renames them all; dropping an uncommitted staging removes them (and the directory, if
/// the staging created it).
#[derive(Debug)]
pub struct Staging {
    dir: PathBuf,
    created: bool,
    files: Vec<(PathBuf, PathBuf)>,
    scratch: Vec<PathBuf>,
    committed: bool,
}

impl Staging {
    /// Create `dir` if needed and start staging into it.
    pub fn new(dir: &Path) -> Result<Self> {
        let created = !dir.exists();
        std::fs::create_dir_all(dir)
            .map_err(|e| UserError::new(format!("--out: cannot create `{}`: {e}", dir.display())))?;
        Ok(Staging { dir: dir.to_path_buf(), created, files: Vec::new(), scratch: Vec::new(), committed: false })
    }

    /// A temporary path for the file that will be called `name`.
    pub fn path(&mut self, name: &str) -> PathBuf {
        let tmp = self.dir.join(format!(".{name}.tmp-{}", std::process::id()));
        self.files.push((tmp.clone(), self.dir.join(name)));
        tmp
    }

    /// A scratch file removed in any case (spilled results).
    pub fn scratch(&mut self, name: &str) -> PathBuf {
        let tmp = self.dir.join(format!(".{name}.scratch-{}", std::process::id()));
        self.scratch.push(tmp.clone());
        tmp
    }

    /// Write a text file.
    pub fn text(&mut self, name: &str, text: &str) -> Result<()> {
        let tmp = self.path(name);
        std::fs::write(&tmp, text).with_context(|| format!("cannot write {}", tmp.display()))
    }

    /// Write a DataFrame as Parquet.
    pub fn parquet(&mut self, name: &str, mut df: DataFrame, compression: Compression) -> Result<()> {
        let tmp = self.path(name);
        let file = File::create(&tmp).with_context(|| format!("cannot create {}", tmp.display()))?;
        ParquetWriter::new(file)
            .with_compression(parquet_compression(compression))
            .finish(&mut df)
            .with_context(|| format!("cannot write {}", tmp.display()))?;
        Ok(())
    }

    /// Rename every staged file to its final name.
    pub fn commit(mut self) -> Result<()> {
        for (tmp, fin) in &self.files {
            std::fs::rename(tmp, fin)
                .with_context(|| format!("cannot rename {} to {}", tmp.display(), fin.display()))?;
        }
        self.committed = true;
        Ok(())
    }
}

impl Drop for Staging {
    fn drop(&mut self) {
        for s in &self.scratch {
            let _ = std::fs::remove_file(s);
        }
        if self.committed {
            return;
        }
        for (tmp, _) in &self.files {
            let _ = std::fs::remove_file(tmp);
        }
        if self.created {
            let _ = std::fs::remove_dir_all(&self.dir);
        }
    }
}
