//! `collapse merge DIR`: put the parts of a sharded run back together.
//!
//! Every part (`DIR/parts/shard-I-of-N/`) records the content hash of the resolved
//! scenario it ran and the units it holds. The merge checks that all parts ran the same
//! scenario and that every unit is held by exactly one part, then writes the outputs from
//! the parts' spills with the same function as an unsharded run: `runs.parquet`,
//! `summary.parquet` and `scenario.toml` are byte-identical to an unsharded run's (the
//! same values read in the same order by the same writer); `manifest.json` differs only in
//! how the run was executed (threads, timings, the list of parts).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{Context, Result};
use collapse_core::engine;
use collapse_core::spec;
use serde_json::{Value, json};

use crate::UserError;
use crate::run::write_outputs;
use crate::workdir::WorkDir;
use crate::writer::Sources;

/// Merge the parts in `dir` into its outputs.
pub fn merge(dir: &Path, quiet: bool) -> Result<()> {
    let parts_dir = dir.join("parts");
    let mut entries: Vec<_> = std::fs::read_dir(&parts_dir)
        .map_err(|e| {
            UserError::new(format!("`{}` has no parts to merge ({}: {e})", dir.display(), parts_dir.display()))
        })?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.is_dir())
        .collect();
    entries.sort();
    if entries.is_empty() {
        return Err(UserError::new(format!("`{}` has no parts to merge", parts_dir.display())).into());
    }
    let parts: Vec<(String, WorkDir)> = entries
        .iter()
        .map(|p| Ok((p.file_name().map(|f| f.to_string_lossy().into_owned()).unwrap_or_default(), WorkDir::open(p)?)))
        .collect::<Result<_>>()?;
    // One scenario.
    let mut by_hash: BTreeMap<u64, Vec<&str>> = BTreeMap::new();
    for (name, wd) in &parts {
        by_hash.entry(wd.state.scenario_hash).or_default().push(name);
    }
    if by_hash.len() > 1 {
        let groups: Vec<String> = by_hash.values().map(|names| format!("[{}]", names.join(", "))).collect();
        return Err(UserError::new(format!(
            "the parts in `{}` come from different scenarios (or overrides): {}; merge parts of one run only",
            parts_dir.display(),
            groups.join(" vs ")
        ))
        .into());
    }
    let text = &parts[0].1.state.scenario;
    let mut table = spec::parse(text, "the parts' scenario")?;
    crate::tables::load_tables(&mut table, &crate::tables::Base::Dir(parts_dir.to_path_buf()))?;
    let s = spec::resolve(&table)?;
    let units = engine::units(&s).len();
    // Every unit exactly once, and every part complete.
    let mut owner: Vec<Option<usize>> = vec![None; units];
    let mut duplicates = Vec::new();
    for (k, (name, wd)) in parts.iter().enumerate() {
        let missing: Vec<usize> = wd.state.units.iter().copied().filter(|u| !wd.done.contains(u)).collect();
        if !missing.is_empty() {
            return Err(UserError::new(format!(
                "part {name} is incomplete ({} units not recorded); rerun its shard with --resume",
                missing.len()
            ))
            .into());
        }
        for &u in &wd.state.units {
            match owner.get_mut(u) {
                Some(slot @ None) => *slot = Some(k),
                Some(Some(other)) => duplicates.push(format!("unit {u} in {} and {name}", parts[*other].0)),
                None => {
                    return Err(
                        UserError::new(format!("part {name} names unit {u}, beyond the scenario's {units}")).into()
                    );
                }
            }
        }
    }
    if !duplicates.is_empty() {
        return Err(UserError::new(format!("units held by two parts: {}", duplicates.join("; "))).into());
    }
    let missing: Vec<usize> = owner.iter().enumerate().filter(|(_, o)| o.is_none()).map(|(u, _)| u).collect();
    if !missing.is_empty() {
        let shards: Vec<String> =
            parts.iter().filter_map(|(_, wd)| wd.state.shard.map(|s| format!("{}/{}", s.index, s.count))).collect();
        return Err(UserError::new(format!(
            "{} of {units} units are in no part (first: {:?}); present shards: {}; run the missing shards, then merge again",
            missing.len(),
            &missing[..missing.len().min(8)],
            shards.join(", ")
        ))
        .into());
    }
    let files = parts.iter().map(|(_, wd)| wd.spill()).collect::<Result<Vec<_>>>()?;
    let sources = Sources { files, owner: owner.into_iter().map(|o| o.unwrap_or(0)).collect() };
    let names: Vec<&str> = parts.iter().map(|(n, _)| n.as_str()).collect();
    let extra = match json!({"merged_parts": names}) {
        Value::Object(m) => m,
        _ => serde_json::Map::new(),
    };
    let (table, verdicts) = write_outputs(&s, text, &sources, dir, quiet, extra).context("merging")?;
    crate::run::print_results(&table, &verdicts);
    outln!("merged {} parts into {}", parts.len(), dir.display());
    Ok(())
}
