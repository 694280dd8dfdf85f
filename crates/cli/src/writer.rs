//! Writing a run's results with memory bounded whatever the number of rows.
//!
//! During the simulation every finished unit is spilled to its working directory's
//! `spill.bin` at the position its rows have in the output ([`crate::workdir`]). The runs
//! table is ordered by cell, then replicate, then iteration, which with common random
//! numbers is not the order in which units finish (one unit holds a replicate of every
//! cell of its group), so rows cannot be written as they come; the spill holds 8 bytes per
//! value, and the process holds only the window of units in flight and one Parquet row
//! group. [`finalize`] reads the spill back in output order, computes the summary, and
//! writes the row groups on an encoder thread.
//! Parameter columns are produced per row group from each cell's values: text columns
//! (plugin names, enums) are categorical columns (Parquet dictionary pages) whose per-row
//! data is an integer code, never one string per row.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::Path;

use anyhow::{Context, Result};
use collapse_core::results::{ParamKind, Summary, metric_positions, param_kinds};
use collapse_core::spec::{Compression, ParamValue, ResolvedScenario, RunsOutput};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{
    CategoricalPhysical, Categories, Column, DataFrame, DataType, IntoSeries, NamedFrom, NewChunkedArray,
    ParquetWriter, PlSmallStr, Series, UInt32Chunked,
};

use crate::output::parquet_compression;
use crate::workdir::{Layout, unit_id};

/// Rows per Parquet row group (polars' default).
const ROW_GROUP_ROWS: usize = 512 * 512;

/// Where the spilled values of each unit are: the spill files and, per unit id, which
/// of them holds it (all the same file for an unsharded run; a merge reads several parts).
#[derive(Debug)]
pub struct Sources {
    /// Spill files, all in the scenario's [`Layout`].
    pub files: Vec<File>,
    /// Per unit id: index into `files`.
    pub owner: Vec<usize>,
}

/// Read the spilled values in output order (cell, replicate, iteration): compute the
/// summary statistics (each cell's replicates in ascending order, as the in-memory
/// reference does) and, unless `runs = none`, write the runs table to `runs_path`.
pub fn finalize(
    scenario: &ResolvedScenario,
    sources: &Sources,
    runs_path: Option<&Path>,
    compression: Compression,
    progress: &dyn Fn(usize),
) -> Result<Summary> {
    let layout = Layout::new(scenario);
    let runs = scenario.output.runs;
    let mut summary = Summary::new(scenario);
    let path = runs_path.filter(|_| runs != RunsOutput::None);
    let file = path.map(|p| File::create(p).with_context(|| format!("cannot create {}", p.display()))).transpose()?;
    // Row groups are assembled here and encoded on a second thread, two in flight.
    let (sender, receiver) = std::sync::mpsc::sync_channel::<DataFrame>(1);
    std::thread::scope(|scope| -> Result<()> {
        let encoder = file.map(|f| scope.spawn(move || encode(f, compression, receiver)));
        let mut groups = if encoder.is_some() { Some(RowGroups::new(scenario, sender)?) } else { None };
        let read = (|| -> Result<()> {
            let mut bytes = Vec::new();
            let mut values = Vec::new();
            for (c, cell) in scenario.cells.iter().enumerate() {
                let block = layout.block[c];
                let slots = cell.plan.slots();
                for r in 0..scenario.replicates {
                    let unit = unit_id(scenario.replicates, cell.group, r);
                    let file = &sources.files[sources.owner[unit]];
                    bytes.resize(block * 8, 0);
                    file.read_exact_at(&mut bytes, layout.byte_offset(c, r)).context("cannot read spilled results")?;
                    values.clear();
                    values.extend(bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))));
                    summary.add(c, &values);
                    if let Some(g) = groups.as_mut() {
                        match runs {
                            RunsOutput::All => g.push(c, r, 0, &values, progress)?,
                            RunsOutput::Final => {
                                g.push(c, r, cell.iterations, &values[values.len() - slots..], progress)?
                            }
                            RunsOutput::None => {}
                        }
                    }
                }
            }
            if let Some(g) = groups.as_mut() {
                g.flush(progress)?;
            }
            Ok(())
        })();
        // Closing the channel ends the encoder.
        drop(groups);
        let encoded = match encoder {
            Some(e) => e.join().map_err(|_| anyhow::anyhow!("the Parquet encoder thread panicked"))?,
            None => Ok(()),
        };
        read.and(encoded)
    })?;
    Ok(summary)
}

/// Rows of the runs table for `scenario`.
pub fn run_rows(scenario: &ResolvedScenario) -> usize {
    match scenario.output.runs {
        RunsOutput::All => scenario.run_rows(),
        RunsOutput::Final => scenario.cells.len() * scenario.replicates,
        RunsOutput::None => 0,
    }
}

/// Encode the row groups received on `receiver` into `file`.
fn encode(file: File, compression: Compression, receiver: std::sync::mpsc::Receiver<DataFrame>) -> Result<()> {
    let mut writer: Option<BatchedWriter<File>> = None;
    let mut file = Some(file);
    for df in receiver {
        if writer.is_none() {
            let f = file.take().context("runs.parquet is already open")?;
            writer =
                Some(ParquetWriter::new(f).with_compression(parquet_compression(compression)).batched(df.schema())?);
        }
        if let Some(w) = writer.as_mut() {
            w.write_batch(&df)?;
        }
    }
    if let Some(w) = writer.as_mut() {
        w.finish()?;
    }
    Ok(())
}

/// A parameter column's buffer for one row group.
enum ParamBuffer {
    Int(Vec<i64>),
    Float(Vec<Option<f64>>),
    Bool(Vec<bool>),
    /// The cell of each row (its code is looked up per cell).
    Str(Vec<usize>),
}

/// Row groups being assembled and written.
struct RowGroups<'s> {
    scenario: &'s ResolvedScenario,
    metrics: Vec<(String, bool)>,
    positions: Vec<Vec<(Option<usize>, Option<usize>)>>,
    params: Vec<(String, ParamKind)>,
    /// Per parameter column: each cell's value.
    values: Vec<Vec<ParamValue>>,
    /// Per text column: its categorical dtype and each cell's code (None: null).
    enums: Vec<Option<(DataType, Vec<Option<u32>>)>>,
    sender: std::sync::mpsc::SyncSender<DataFrame>,
    cell: Vec<i64>,
    replicate: Vec<i64>,
    iteration: Vec<i64>,
    w: Vec<Option<f64>>,
    metric_values: Vec<[Vec<Option<f64>>; 2]>,
    param_buffers: Vec<ParamBuffer>,
}

impl<'s> RowGroups<'s> {
    fn new(scenario: &'s ResolvedScenario, sender: std::sync::mpsc::SyncSender<DataFrame>) -> Result<Self> {
        let metrics = scenario.metric_names();
        let positions = scenario.cells.iter().map(|c| metric_positions(&metrics, c)).collect();
        let params = param_kinds(scenario);
        let values: Vec<Vec<ParamValue>> = params
            .iter()
            .map(|(name, _)| {
                scenario.cells.iter().map(|c| c.column(name).cloned().unwrap_or(ParamValue::Null)).collect()
            })
            .collect();
        let enums = params
            .iter()
            .zip(&values)
            .map(|((name, kind), vs)| (*kind == ParamKind::Str).then(|| enum_codes(name, vs)).transpose())
            .collect::<Result<Vec<_>>>()?;
        let metric_values = metrics.iter().map(|_| Default::default()).collect();
        let mut groups = RowGroups {
            scenario,
            metrics,
            positions,
            params,
            values,
            enums,
            sender,
            cell: Vec::new(),
            replicate: Vec::new(),
            iteration: Vec::new(),
            w: Vec::new(),
            metric_values,
            param_buffers: Vec::new(),
        };
        groups.param_buffers = groups.empty_params();
        Ok(groups)
    }

    fn empty_params(&self) -> Vec<ParamBuffer> {
        self.params
            .iter()
            .map(|(_, kind)| match kind {
                ParamKind::Int => ParamBuffer::Int(Vec::new()),
                ParamKind::Float => ParamBuffer::Float(Vec::new()),
                ParamKind::Bool => ParamBuffer::Bool(Vec::new()),
                ParamKind::Str => ParamBuffer::Str(Vec::new()),
            })
            .collect()
    }

    /// Append the rows of (cell c, replicate r) whose values are `values` (row-major,
    /// iterations from `first_t`).
    fn push(&mut self, c: usize, r: usize, first_t: usize, values: &[f64], progress: &dyn Fn(usize)) -> Result<()> {
        let cell = &self.scenario.cells[c];
        let slots = cell.plan.slots();
        let rows = values.len() / slots.max(1);
        for (k, row) in values.chunks_exact(slots).enumerate() {
            let t = first_t + k;
            self.cell.push(c as i64);
            self.replicate.push(r as i64);
            self.iteration.push(t as i64);
            self.w.push(cell.plan.uses_schedule.then_some(cell.weights[t]));
            for ([v, e], (pv, pe)) in self.metric_values.iter_mut().zip(&self.positions[c]) {
                v.push(pv.map(|j| row[j]));
                e.push(pe.map(|j| row[j]));
            }
        }
        for (buffer, values) in self.param_buffers.iter_mut().zip(&self.values) {
            let v = &values[c];
            match buffer {
                ParamBuffer::Int(b) => {
                    b.extend(std::iter::repeat_n(if let ParamValue::Int(i) = v { *i } else { 0 }, rows))
                }
                ParamBuffer::Float(b) => b.extend(std::iter::repeat_n(v.as_f64(), rows)),
                ParamBuffer::Bool(b) => b.extend(std::iter::repeat_n(matches!(v, ParamValue::Bool(true)), rows)),
                ParamBuffer::Str(b) => b.extend(std::iter::repeat_n(c, rows)),
            }
        }
        if self.cell.len() >= ROW_GROUP_ROWS {
            self.flush(progress)?;
        }
        Ok(())
    }

    /// Write the buffered rows as one row group.
    fn flush(&mut self, progress: &dyn Fn(usize)) -> Result<()> {
        let height = self.cell.len();
        if height == 0 {
            return Ok(());
        }
        let col = |name: &str, s: Series| -> Column {
            let mut s = s;
            s.rename(PlSmallStr::from(name));
            s.into()
        };
        let mut columns: Vec<Column> = vec![
            col("cell", Series::new("".into(), std::mem::take(&mut self.cell))),
            col("replicate", Series::new("".into(), std::mem::take(&mut self.replicate))),
            col("iteration", Series::new("".into(), std::mem::take(&mut self.iteration))),
            col("w", float_series(std::mem::take(&mut self.w))),
        ];
        for ((name, has_exact), [v, e]) in self.metrics.iter().zip(self.metric_values.iter_mut()) {
            columns.push(col(name, float_series(std::mem::take(v))));
            let exact = std::mem::take(e);
            if *has_exact {
                columns.push(col(&format!("{name}_exact"), float_series(exact)));
            }
        }
        let empty = self.empty_params();
        let buffers = std::mem::replace(&mut self.param_buffers, empty);
        for (((name, _), buffer), en) in self.params.iter().zip(buffers).zip(&self.enums) {
            let s = match (buffer, en) {
                (ParamBuffer::Int(b), _) => Series::new("".into(), b),
                (ParamBuffer::Float(b), _) => float_series(b),
                (ParamBuffer::Bool(b), _) => Series::new("".into(), b),
                (ParamBuffer::Str(cells), Some((dtype, codes))) => enum_series(dtype, cells.iter().map(|&c| codes[c]))?,
                (ParamBuffer::Str(_), None) => anyhow::bail!("text column `{name}` without categories"),
            };
            columns.push(col(name, s));
        }
        let df = DataFrame::new(height, columns)?;
        // A closed channel means the encoder failed; its error is reported by the caller.
        if self.sender.send(df).is_err() {
            anyhow::bail!("the Parquet encoder stopped");
        }
        progress(height);
        Ok(())
    }
}

/// A float column, without a validity mask when nothing is null (the common case).
fn float_series(values: Vec<Option<f64>>) -> Series {
    if values.iter().all(Option::is_some) {
        Series::new("".into(), values.into_iter().map(|v| v.unwrap_or(f64::NAN)).collect::<Vec<f64>>())
    } else {
        Series::new("".into(), values)
    }
}

/// The categorical dtype of a text column (categories in order of first appearance over
/// cells, 32-bit codes) and each cell's code.
fn enum_codes(name: &str, values: &[ParamValue]) -> Result<(DataType, Vec<Option<u32>>)> {
    let categories =
        Categories::new(PlSmallStr::from(name), PlSmallStr::from("collapse-runs"), CategoricalPhysical::U32);
    let mapping = categories.mapping();
    let codes = values
        .iter()
        .map(|v| if matches!(v, ParamValue::Null) { Ok(None) } else { mapping.insert_cat(&v.render()).map(Some) })
        .collect::<Result<Vec<_>, _>>()?;
    Ok((DataType::Categorical(categories, mapping), codes))
}

/// A categorical series from 32-bit codes.
fn enum_series(dtype: &DataType, codes: impl Iterator<Item = Option<u32>>) -> Result<Series> {
    let codes = UInt32Chunked::from_iter_options("".into(), codes).into_series();
    Ok(Series::from_cats_and_dtype(&codes, dtype, true)?)
}
