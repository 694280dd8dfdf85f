//! Sweeps beyond one run: a sweep split in shards and merged, and a run killed midway and
//! resumed, give outputs identical to an uninterrupted run; parts of different scenarios
//! and foreign directories are refused.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

mod common;
use common::write_scenario;

const BIN: &str = env!("CARGO_BIN_EXE_collapse");

const SCENARIO: &str = r#"
name = "shards"
seed = 11
replicates = 40
iterations = 20
[design]
n = [20, 60]
p = 40
[covariance]
kind = ["isotropic", "spiked"]
[covariance.spiked]
spikes = [4.0]
[estimator]
kind = "ridge"
lambda = [0.0, 0.2]
[schedule]
kind = "constant"
w = [0.5, 0.8]
"#;

fn run(args: &[&str], env: &[(&str, &str)]) -> Output {
    Command::new(BIN).args(args).envs(env.iter().copied()).output().unwrap()
}

fn ok(o: Output) -> Output {
    assert!(o.status.success(), "{}{}", String::from_utf8_lossy(&o.stdout), String::from_utf8_lossy(&o.stderr));
    o
}

fn same_outputs(a: &Path, b: &Path) {
    for f in ["runs.parquet", "summary.parquet", "scenario.toml"] {
        assert_eq!(std::fs::read(a.join(f)).unwrap(), std::fs::read(b.join(f)).unwrap(), "{f} differs");
    }
}

#[test]
fn four_shards_merge_to_the_unsharded_run() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), SCENARIO);
    let f = file.to_str().unwrap();
    let whole = dir.path().join("whole");
    ok(run(&["run", f, "--out", whole.to_str().unwrap(), "-q"], &[]));
    let sharded = dir.path().join("sharded");
    let out = sharded.to_str().unwrap();
    // Shards 1, 2, 4 by flag (in any order, different thread counts), shard 3 as a Slurm array task.
    ok(run(&["run", f, "--out", out, "-q", "--shard", "4/4", "--threads", "1"], &[]));
    ok(run(&["run", f, "--out", out, "-q", "--shard", "1/4"], &[]));
    let early = run(&["merge", out], &[]);
    assert_eq!(early.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&early.stderr).contains("in no part"),
        "{}",
        String::from_utf8_lossy(&early.stderr)
    );
    ok(run(&["run", f, "--out", out, "-q", "--shard", "2/4", "--threads", "2"], &[]));
    ok(run(&["run", f, "--out", out, "-q"], &[("SLURM_ARRAY_TASK_ID", "2"), ("SLURM_ARRAY_TASK_COUNT", "4")]));
    assert!(sharded.join("parts/shard-3-of-4").is_dir(), "the Slurm variables did not select shard 3/4");
    ok(run(&["merge", out, "-q"], &[]));
    same_outputs(&whole, &sharded);
    // The parts' unit lists add up to every unit once (the balance of the split is
    // tested with `shard::assign` itself).
    let units = |k: usize| {
        let state: serde_json::Value = serde_json::from_str(
            &std::fs::read_to_string(sharded.join(format!("parts/shard-{k}-of-4/state.json"))).unwrap(),
        )
        .unwrap();
        state["units"].as_array().unwrap().len()
    };
    let counts: Vec<usize> = (1..=4).map(units).collect();
    assert_eq!(counts.iter().sum::<usize>(), 4 * 40, "{counts:?}");
}

#[test]
fn parts_of_different_scenarios_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let file = write_scenario(dir.path(), SCENARIO);
    let f = file.to_str().unwrap();
    let out = dir.path().join("mixed");
    let o = out.to_str().unwrap();
    ok(run(&["run", f, "--out", o, "-q", "--shard", "1/2"], &[]));
    ok(run(&["run", f, "--out", o, "-q", "--shard", "2/2", "--set", "seed=12"], &[]));
    let m = run(&["merge", o], &[]);
    let err = String::from_utf8_lossy(&m.stderr);
    assert_eq!(m.status.code(), Some(2), "{err}");
    assert!(
        err.contains("different scenarios") && err.contains("shard-1-of-2") && err.contains("shard-2-of-2"),
        "{err}"
    );
    assert!(!out.join("runs.parquet").exists());
}

#[test]
fn a_killed_run_resumes_to_identical_output() {
    let dir = tempfile::tempdir().unwrap();
    let text = SCENARIO.replace("replicates = 40", "replicates = 1500").replace("n = [20, 60]", "n = [20, 30]");
    let file = write_scenario(dir.path(), &text);
    let f = file.to_str().unwrap();
    let whole = dir.path().join("whole");
    ok(run(&["run", f, "--out", whole.to_str().unwrap(), "-q"], &[]));
    let out = dir.path().join("killed");
    let mut child = Command::new(BIN)
        .args(["run", f, "--out", out.to_str().unwrap(), "-q", "--threads", "1"])
        .env("COLLAPSE_CHECKPOINT_SECONDS", "0")
        .spawn()
        .unwrap();
    // Kill once some units are recorded but not all.
    let log = out.join(".collapse-work/done.log");
    let started = std::time::Instant::now();
    while std::fs::read_to_string(&log).map(|t| t.lines().count()).unwrap_or(0) < 20 {
        assert!(started.elapsed().as_secs() < 60, "no unit was recorded within a minute");
        std::thread::sleep(std::time::Duration::from_millis(5));
    }
    child.kill().unwrap();
    assert!(!child.wait().unwrap().success(), "the run finished before it was killed; make it bigger");
    let recorded = std::fs::read_to_string(&log).unwrap().lines().count();
    assert!(recorded < 4 * 1500, "all units were recorded before the kill");
    for name in ["runs.parquet", "summary.parquet", "scenario.toml", "manifest.json"] {
        assert!(!out.join(name).exists(), "a killed run left {name}");
    }
    // Without --resume the directory is not silently overwritten.
    let again = run(&["run", f, "--out", out.to_str().unwrap(), "-q"], &[]);
    assert_eq!(again.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&again.stderr).contains("--resume"));
    // Resuming with another scenario is refused.
    let foreign = run(&["run", f, "--resume", out.to_str().unwrap(), "-q", "--set", "seed=99"], &[]);
    assert_eq!(foreign.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&foreign.stderr).contains("another scenario"),
        "{}",
        String::from_utf8_lossy(&foreign.stderr)
    );
    ok(run(&["run", f, "--resume", out.to_str().unwrap(), "-q", "--threads", "2"], &[]));
    same_outputs(&whole, &out);
    assert!(!out.join(".collapse-work").exists(), "the working directory was not cleaned up");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["resumed"], true);
}

/// A run that reads a data table merges too: the parts' saved scenario keeps the path as
/// first written (relative to the registered scenario), and the pinned hash names the
/// shipped table.
#[test]
fn a_sharded_data_table_run_merges() {
    let dir = tempfile::tempdir().unwrap();
    let whole = dir.path().join("whole");
    let sharded = dir.path().join("sharded");
    let small = ["--set", "replicates=4", "--set", "iterations=10", "-q"];
    ok(run(&[&["run", "real-data", "--out", whole.to_str().unwrap()], &small[..]].concat(), &[]));
    for shard in ["1/2", "2/2"] {
        let args = [&["run", "real-data", "--out", sharded.to_str().unwrap(), "--shard", shard], &small[..]].concat();
        ok(run(&args, &[]));
    }
    ok(run(&["merge", sharded.to_str().unwrap(), "-q"], &[]));
    same_outputs(&whole, &sharded);
}
