//! `collapse slurm`: a job array that runs a scenario in shards, and a dependent merge.
//!
//! Writes, under `OUT/slurm/`: the resolved scenario (so every task runs exactly the
//! same scenario, overrides included), `array.sh` (one task per shard; a task whose
//! shard has an unfinished working directory resumes it, so a failed task can simply be
//! resubmitted) and `merge.sh`. With `--submit` both are submitted through `sbatch`, the
//! merge with `--dependency=afterok:<array>` and `--kill-on-invalid-dep=yes`, so that a
//! failed task cancels the merge instead of leaving it pending forever.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::UserError;

/// The options of `collapse slurm`.
#[derive(Debug, Clone)]
pub struct SlurmOptions {
    /// Number of array tasks (shards).
    pub tasks: usize,
    /// `--partition`.
    pub partition: Option<String>,
    /// `--time` (Slurm format, e.g. 01:00:00).
    pub time: Option<String>,
    /// `--cpus-per-task` (and collapse `--threads`).
    pub cpus_per_task: usize,
    /// `--mem` (Slurm format, e.g. 4G).
    pub mem: Option<String>,
    /// Submit through sbatch.
    pub submit: bool,
}

/// Reject values that would break the `#SBATCH` line they go into.
fn slurm_value(flag: &str, v: &Option<String>) -> Result<()> {
    if let Some(v) = v
        && (v.is_empty() || v.chars().any(|c| c.is_whitespace() || c == '"' || c == '\'' || c == '\\'))
    {
        return Err(UserError::new(format!("{flag}: `{v}` is not a valid value (no spaces or quotes)")).into());
    }
    Ok(())
}

fn quote(p: &Path) -> String {
    format!("'{}'", p.display().to_string().replace('\'', "'\\''"))
}

/// Write the scripts (and submit them); returns the printed report.
pub fn prepare(scenario_text: &str, name: &str, out: &Path, opts: &SlurmOptions) -> Result<String> {
    if opts.tasks == 0 {
        return Err(UserError::new("--tasks: must be at least 1").into());
    }
    slurm_value("--partition", &opts.partition)?;
    slurm_value("--time", &opts.time)?;
    slurm_value("--mem", &opts.mem)?;
    let out = std::path::absolute(out).context("--out")?;
    let dir = out.join("slurm");
    std::fs::create_dir_all(dir.join("logs"))
        .map_err(|e| UserError::new(format!("--out: cannot create `{}`: {e}", dir.display())))?;
    let scenario = dir.join("scenario.toml");
    std::fs::write(&scenario, scenario_text).context("cannot write the scenario")?;
    let exe: PathBuf = std::env::current_exe().context("cannot locate the collapse binary")?;
    let mut header = format!("#!/bin/bash\n#SBATCH --job-name=collapse-{name}\n");
    if let Some(p) = &opts.partition {
        header.push_str(&format!("#SBATCH --partition={p}\n"));
    }
    if let Some(t) = &opts.time {
        header.push_str(&format!("#SBATCH --time={t}\n"));
    }
    if let Some(m) = &opts.mem {
        header.push_str(&format!("#SBATCH --mem={m}\n"));
    }
    let n = opts.tasks;
    let array = format!(
        "{header}#SBATCH --array=0-{last}\n#SBATCH --cpus-per-task={cpus}\n#SBATCH --output={logs}/task-%a.out\n#SBATCH --error={logs}/task-%a.err\n\
set -euo pipefail\n\
# Shard I = index + 1 of {n} (indices 0..{last}, also when one task is resubmitted with\n\
# --array=<index>); a shard with an unfinished working directory (a failed or killed\n\
# earlier attempt) is resumed.\n\
I=$(( SLURM_ARRAY_TASK_ID + 1 ))\n\
if [ -d {out}/.collapse-work-shard-$I-of-{n} ]; then\n\
  exec {exe} run {scenario} --shard $I/{n} --resume {out} --quiet --threads {cpus}\n\
else\n\
  exec {exe} run {scenario} --shard $I/{n} --out {out} --quiet --threads {cpus}\n\
fi\n",
        last = n - 1,
        cpus = opts.cpus_per_task,
        logs = dir.join("logs").display(),
        out = quote(&out),
        exe = quote(&exe),
        scenario = quote(&scenario),
    );
    let merge = format!(
        "{}#SBATCH --job-name=collapse-{name}-merge\n#SBATCH --output={logs}/merge.out\n#SBATCH --error={logs}/merge.err\nset -euo pipefail\nexec {exe} merge {out} --quiet\n",
        header.replace(&format!("#SBATCH --job-name=collapse-{name}\n"), ""),
        logs = dir.join("logs").display(),
        exe = quote(&exe),
        out = quote(&out),
    );
    let array_path = dir.join("array.sh");
    let merge_path = dir.join("merge.sh");
    std::fs::write(&array_path, array).context("cannot write array.sh")?;
    std::fs::write(&merge_path, merge).context("cannot write merge.sh")?;
    let mut report = format!("wrote {} ({n} tasks) and {}\n", array_path.display(), merge_path.display());
    if !opts.submit {
        report.push_str(&format!(
            "submit with:\n  jid=$(sbatch --parsable {a})\n  sbatch --dependency=afterok:${{jid%%;*}} --kill-on-invalid-dep=yes {m}\n",
            a = array_path.display(),
            m = merge_path.display()
        ));
        return Ok(report);
    }
    let sbatch = |args: &[&str]| -> Result<String> {
        let o = Command::new("sbatch").args(args).output().map_err(|e| {
            UserError::new(format!("--submit: cannot run sbatch ({e}); is this a Slurm login node? Without --submit the scripts are only written"))
        })?;
        if !o.status.success() {
            anyhow::bail!("sbatch {}: {}", args.join(" "), String::from_utf8_lossy(&o.stderr).trim());
        }
        // `--parsable` prints `jobid[;cluster]`.
        Ok(String::from_utf8_lossy(&o.stdout).trim().split(';').next().unwrap_or("").to_string())
    };
    let array_id = sbatch(&["--parsable", &array_path.display().to_string()])?;
    let merge_id = sbatch(&[
        "--parsable",
        &format!("--dependency=afterok:{array_id}"),
        "--kill-on-invalid-dep=yes",
        &merge_path.display().to_string(),
    ])?;
    report.push_str(&format!(
        "submitted array job {array_id} ({n} tasks) and merge job {merge_id}\n\
results: {out}/runs.parquet, summary.parquet (after the merge job)\n\
if a task fails, the merge is cancelled: resubmit that task alone with\n  sbatch --array=<index> {a}\n\
then merge with `collapse merge {out}` (or sbatch {m})\n",
        out = out.display(),
        a = array_path.display(),
        m = merge_path.display()
    ));
    Ok(report)
}
