//! Splitting a run's units between shards, balanced in work.
//!
//! A unit (design group, replicate) costs about its factorization plus, per cell of the
//! group, one step per iteration; replicates of a group cost the same. Units are given,
//! largest first, to the shard with the least work so far (ties: the lower unit id, the
//! lower shard): a deterministic greedy (LPT) assignment, within 4/3 of the best possible
//! maximum load, that every shard computes identically without talking to the others.

use anyhow::Result;
use collapse_core::spec::ResolvedScenario;
use collapse_core::{DesignUse, RowSpaceMode};

use crate::UserError;
use crate::workdir::ShardSpec;

/// Parse `I/N` (1 ≤ I ≤ N).
pub fn parse(text: &str) -> Result<ShardSpec> {
    let bad = || UserError::new(format!("--shard: expected I/N with 1 <= I <= N (e.g. 2/8), got `{text}`"));
    let (i, n) = text.split_once('/').ok_or_else(bad)?;
    let (index, count): (usize, usize) = (i.trim().parse().map_err(|_| bad())?, n.trim().parse().map_err(|_| bad())?);
    if index == 0 || index > count {
        return Err(bad().into());
    }
    Ok(ShardSpec { index, count })
}

/// The shard of a Slurm array task, from `SLURM_ARRAY_TASK_ID` and
/// `SLURM_ARRAY_TASK_COUNT` (or `_MIN`/`_MAX`), if the process is one.
pub fn from_slurm(env: impl Fn(&str) -> Option<String>) -> Result<Option<ShardSpec>> {
    let Some(id) = env("SLURM_ARRAY_TASK_ID") else { return Ok(None) };
    let num = |k: &str| -> Result<Option<usize>> {
        env(k)
            .map(|v| v.trim().parse::<usize>().map_err(|_| UserError::new(format!("{k}: not a number: `{v}`")).into()))
            .transpose()
    };
    let id: usize =
        id.trim().parse().map_err(|_| UserError::new(format!("SLURM_ARRAY_TASK_ID: not a number: `{id}`")))?;
    let min = num("SLURM_ARRAY_TASK_MIN")?.unwrap_or(0);
    let count = match (num("SLURM_ARRAY_TASK_COUNT")?, num("SLURM_ARRAY_TASK_MAX")?) {
        (Some(c), _) => c,
        (None, Some(max)) => max + 1 - min,
        (None, None) => {
            return Err(UserError::new("SLURM_ARRAY_TASK_ID is set but neither SLURM_ARRAY_TASK_COUNT nor _MAX").into());
        }
    };
    let index = id.checked_sub(min).map(|k| k + 1).filter(|&k| k >= 1 && k <= count);
    let index = index.ok_or_else(|| {
        UserError::new(format!("SLURM_ARRAY_TASK_ID = {id} is outside the array (min {min}, count {count})"))
    })?;
    Ok(Some(ShardSpec { index, count }))
}

/// A relative cost of one unit of design group `g`.
fn unit_cost(s: &ResolvedScenario, g: usize) -> f64 {
    let cells = &s.groups[g].cells;
    let first = &s.cells[cells[0]];
    let (n, p) = (first.n as f64, first.p as f64);
    let m = n.min(p);
    let factorization = match first.plan.design {
        DesignUse::Fixed(RowSpaceMode::Factorize) => n * p * m,
        DesignUse::Fixed(RowSpaceMode::Sample) => m * m,
        DesignUse::Own => 0.0,
    };
    let steps: f64 = cells
        .iter()
        .map(|&c| {
            let cell = &s.cells[c];
            let per_iteration = match cell.plan.design {
                DesignUse::Own => n * p * m,
                DesignUse::Fixed(_) => m * cell.plan.slots() as f64,
            };
            (cell.iterations + 1) as f64 * per_iteration
        })
        .sum();
    factorization + steps
}

/// The unit ids of each of `count` shards (index 0 = shard 1).
pub fn assign(s: &ResolvedScenario, count: usize) -> Vec<Vec<usize>> {
    let mut units: Vec<(f64, usize)> = (0..s.groups.len())
        .flat_map(|g| {
            let cost = unit_cost(s, g);
            (0..s.replicates).map(move |r| (cost, crate::workdir::unit_id(s.replicates, g, r)))
        })
        .collect();
    units.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let mut load = vec![0.0f64; count];
    let mut out = vec![Vec::new(); count];
    for (cost, id) in units {
        let k = (0..count).min_by(|&a, &b| load[a].total_cmp(&load[b]).then(a.cmp(&b))).unwrap_or(0);
        load[k] += cost;
        out[k].push(id);
    }
    for o in &mut out {
        o.sort_unstable();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every unit lands in exactly one shard, and the busiest shard keeps LPT's guarantee:
    /// at most 4/3 of the best possible load, which is at least max(total / shards,
    /// largest unit), on groups of very different cost (n = 20 and 200).
    #[test]
    fn assignment_covers_every_unit_once_within_the_lpt_bound() {
        let text = "name = \"lpt\"\nseed = 1\nreplicates = 9\niterations = 5\n[design]\nn = [20, 200]\np = 40\n\
                    [covariance]\nkind = [\"isotropic\", \"spiked\"]\n[covariance.spiked]\nspikes = [4.0]\n[estimator]\nkind = \"ridge\"\nlambda = 0.1\n[schedule]\nkind = \"constant\"\nw = 0.5\n";
        let s = collapse_core::spec::resolve(&collapse_core::spec::parse(text, "test").unwrap()).unwrap();
        let units = s.groups.len() * s.replicates;
        let cost = |id: usize| unit_cost(&s, id / s.replicates);
        let largest = (0..units).map(cost).fold(0.0, f64::max);
        let total: f64 = (0..units).map(cost).sum();
        for count in [1, 2, 4, 7] {
            let shards = assign(&s, count);
            let mut all = shards.concat();
            all.sort_unstable();
            assert_eq!(all, (0..units).collect::<Vec<_>>(), "{count} shards");
            let busiest = shards.iter().map(|ids| ids.iter().map(|&id| cost(id)).sum::<f64>()).fold(0.0, f64::max);
            let best = (total / count as f64).max(largest);
            assert!(busiest <= 4.0 / 3.0 * best * (1.0 + 1e-12), "{count} shards: {busiest} vs best ≥ {best}");
        }
    }

    #[test]
    fn shard_specs_parse_and_slurm_variables_select_one() {
        assert_eq!(parse("2/8").unwrap(), ShardSpec { index: 2, count: 8 });
        for bad in ["0/3", "4/3", "a/3", "3", "1/0", ""] {
            assert!(parse(bad).is_err(), "{bad}");
        }
        let env = |pairs: &'static [(&'static str, &'static str)]| {
            move |k: &str| pairs.iter().find(|(n, _)| *n == k).map(|(_, v)| v.to_string())
        };
        assert_eq!(from_slurm(env(&[])).unwrap(), None);
        let s = from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "0"), ("SLURM_ARRAY_TASK_COUNT", "4")])).unwrap();
        assert_eq!(s, Some(ShardSpec { index: 1, count: 4 }));
        let s = from_slurm(env(&[
            ("SLURM_ARRAY_TASK_ID", "7"),
            ("SLURM_ARRAY_TASK_MIN", "5"),
            ("SLURM_ARRAY_TASK_MAX", "8"),
        ]))
        .unwrap();
        assert_eq!(s, Some(ShardSpec { index: 3, count: 4 }));
        assert!(from_slurm(env(&[("SLURM_ARRAY_TASK_ID", "9"), ("SLURM_ARRAY_TASK_COUNT", "4")])).is_err());
    }
}
