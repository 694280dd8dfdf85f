//! Streaming a run's results: a [`Sink`] that keeps memory bounded whatever the number
//! of rows.
//!
//! The engine hands units over in unit order (design group, replicate). For each unit
//! the writer (1) feeds the summary statistics, which see each cell's replicates in
//! ascending order, as the in-memory reference does, and (2) spills the unit's values to
//! a scratch file at the position their rows will have in the output. The runs table is
//! ordered by cell, then replicate, then iteration, which with common random numbers is
//! not the order in which units finish (one unit holds a replicate of every cell of its
//! group), so the rows cannot be written as they come; the spill holds 8 bytes per value,
//! and the process holds only the window of units in flight and one Parquet row group.
//! After the simulation the spill is read back in output order and written as row groups.
//! Parameter columns are produced per row group from each cell's values: text columns
//! (plugin names, enums) are categorical columns (Parquet dictionary pages) whose per-row
//! data is an integer code, never one string per row.

use std::fs::File;
use std::io::{BufReader, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use collapse_core::results::{ParamKind, Summary, metric_positions, param_kinds};
use collapse_core::spec::{Compression, ParamValue, ResolvedScenario, RunsOutput};
use collapse_core::{CoreError, Sink, UnitOutput};
use polars::io::parquet::write::BatchedWriter;
use polars::prelude::{
    CategoricalPhysical, Categories, Column, DataFrame, DataType, IntoSeries, NamedFrom, NewChunkedArray,
    ParquetWriter, PlSmallStr, Series, UInt32Chunked,
};

use crate::output::parquet_compression;

/// Rows per Parquet row group (polars' default).
const ROW_GROUP_ROWS: usize = 512 * 512;

/// A sink that streams a run to Parquet (module docs).
#[derive(Debug)]
pub struct RunWriter<'s> {
    scenario: &'s ResolvedScenario,
    summary: Summary,
    runs: RunsOutput,
    /// Per cell: f64 offset of its first value in the spill (runs = all) or in `finals`.
    offsets: Vec<u64>,
    spill: Option<(File, PathBuf)>,
    finals: Vec<f64>,
}

fn output_error(e: impl std::fmt::Display) -> CoreError {
    CoreError::Output(e.to_string())
}

impl<'s> RunWriter<'s> {
    /// A writer for `scenario`; with `runs = all`, values are spilled to `scratch`.
    pub fn new(scenario: &'s ResolvedScenario, scratch: Option<PathBuf>) -> Result<Self> {
        let runs = scenario.output.runs;
        let mut offsets = Vec::with_capacity(scenario.cells.len());
        let mut total = 0u64;
        for cell in &scenario.cells {
            offsets.push(total);
            let per_replicate = match runs {
                RunsOutput::All => cell.plan.slots() * (cell.iterations + 1),
                RunsOutput::Final => cell.plan.slots(),
                RunsOutput::None => 0,
            };
            total += (per_replicate * scenario.replicates) as u64;
        }
        let spill = match (runs, scratch) {
            (RunsOutput::All, Some(path)) => {
                let file = File::options()
                    .read(true)
                    .write(true)
                    .create(true)
                    .truncate(true)
                    .open(&path)
                    .with_context(|| format!("cannot create {}", path.display()))?;
                Some((file, path))
            }
            _ => None,
        };
        let finals = if runs == RunsOutput::Final { vec![0.0; total as usize] } else { Vec::new() };
        Ok(RunWriter { scenario, summary: Summary::new(scenario), runs, offsets, spill, finals })
    }

    /// Total rows the runs table will have.
    pub fn rows(&self) -> usize {
        let s = self.scenario;
        match self.runs {
            RunsOutput::All => s.run_rows(),
            RunsOutput::Final => s.cells.len() * s.replicates,
            RunsOutput::None => 0,
        }
    }

    /// Write the runs table to `path` (unless `runs = none`), calling `progress` with the
    /// rows written; returns the summary statistics.
    pub fn finish(self, path: Option<&Path>, compression: Compression, progress: &dyn Fn(usize)) -> Result<Summary> {
        let RunWriter { scenario, summary, runs, offsets, spill, finals } = self;
        let Some(path) = path.filter(|_| runs != RunsOutput::None) else { return Ok(summary) };
        let file = File::create(path).with_context(|| format!("cannot create {}", path.display()))?;
        // Row groups are assembled here and encoded on a second thread, two in flight.
        let (sender, receiver) = std::sync::mpsc::sync_channel::<DataFrame>(1);
        std::thread::scope(|scope| -> Result<()> {
            let encoder = scope.spawn(move || encode(file, compression, receiver));
            let assembled = assemble(scenario, runs, &offsets, spill, &finals, sender, progress);
            let encoded = encoder.join().map_err(|_| anyhow::anyhow!("the Parquet encoder thread panicked"))?;
            assembled.and(encoded)
        })?;
        Ok(summary)
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

/// Read the spilled (or final) values back in output order and send them as row groups.
fn assemble(
    scenario: &ResolvedScenario,
    runs: RunsOutput,
    offsets: &[u64],
    spill: Option<(File, PathBuf)>,
    finals: &[f64],
    sender: std::sync::mpsc::SyncSender<DataFrame>,
    progress: &dyn Fn(usize),
) -> Result<()> {
    let mut out = RowGroups::new(scenario, sender)?;
    match runs {
        RunsOutput::All => {
            let (file, spill_path) = spill.context("no spill file")?;
            let mut reader = BufReader::with_capacity(1 << 20, file);
            let mut bytes = Vec::new();
            for (c, cell) in scenario.cells.iter().enumerate() {
                let block = cell.plan.slots() * (cell.iterations + 1);
                for r in 0..scenario.replicates {
                    bytes.resize(block * 8, 0);
                    reader.read_exact(&mut bytes).with_context(|| format!("cannot read {}", spill_path.display()))?;
                    let values: Vec<f64> =
                        bytes.chunks_exact(8).map(|b| f64::from_le_bytes(b.try_into().unwrap_or([0; 8]))).collect();
                    out.push(c, r, 0, &values, progress)?;
                }
            }
        }
        RunsOutput::Final => {
            for (c, cell) in scenario.cells.iter().enumerate() {
                let slots = cell.plan.slots();
                for r in 0..scenario.replicates {
                    let at = offsets[c] as usize + r * slots;
                    out.push(c, r, cell.iterations, &finals[at..at + slots], progress)?;
                }
            }
        }
        RunsOutput::None => {}
    }
    out.flush(progress)?;
    Ok(())
}

impl Sink for RunWriter<'_> {
    fn accept(&mut self, unit: UnitOutput) -> Result<(), CoreError> {
        for p in &unit.paths {
            self.summary.add(p.cell, &p.values);
            let cell = &self.scenario.cells[p.cell];
            let slots = cell.plan.slots();
            match self.runs {
                RunsOutput::All => {
                    let (file, _) = self.spill.as_ref().ok_or_else(|| output_error("no spill file"))?;
                    let at = (self.offsets[p.cell] + (unit.replicate * p.values.len()) as u64) * 8;
                    let bytes: Vec<u8> = p.values.iter().flat_map(|x| x.to_le_bytes()).collect();
                    file.write_all_at(&bytes, at).map_err(output_error)?;
                }
                RunsOutput::Final => {
                    let at = self.offsets[p.cell] as usize + unit.replicate * slots;
                    let last = &p.values[p.values.len() - slots..];
                    self.finals[at..at + slots].copy_from_slice(last);
                }
                RunsOutput::None => {}
            }
        }
        Ok(())
    }
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
