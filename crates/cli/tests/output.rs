//! Streamed results: the Parquet written unit by unit equals an in-memory reference
//! (identical decoded tables: the streaming writer chooses its own row groups, so bytes
//! may differ from a one-shot writer; the summary is computed by the same function in
//! the same order, so it is bit-identical), `runs = final | none` write what they say,
//! and a killed run leaves no file under a final name.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

mod common;

use collapse_cli::output::{read_parquet, to_dataframe};
use collapse_core::engine::{self, RunOptions};
use collapse_core::results::{self, Collector};
use polars::prelude::{DataFrame, DataType};

const BIN: &str = env!("CARGO_BIN_EXE_collapse");

/// Small scenarios that cover kind sweeps (parameter columns with nulls), several
/// metrics, non-default policies, every protocol and a text-parameter sweep.
const SCENARIOS: [&str; 4] = [
    r#"
name = "sweep"
seed = 5
replicates = 7
iterations = 4
[design]
n = 20
p = [30, 40]
[covariance]
kind = ["isotropic", "spiked"]
[covariance.spiked]
spikes = [3.0]
[estimator]
kind = "ridge"
lambda = [0.0, 0.3]
[schedule]
kind = "constant"
w = [0.5, 0.9]
"#,
    r#"
name = "logistic"
seed = 6
replicates = 5
iterations = 3
[design]
n = 60
p = 3
[family]
kind = "logistic"
[estimator]
kind = "irls"
[schedule]
kind = "dynamic"
"#,
    r#"
name = "fixed"
seed = 7
replicates = 4
iterations = 5
[design]
n = 30
p = 10
[estimator]
kind = "ols"
[schedule]
kind = "constant"
w = [0.0, 0.7]
[protocol]
kind = "fixed-labels"
[policy]
kind = ["replace", "accumulate"]
"#,
    r#"
name = "fresh"
seed = 8
replicates = 5
iterations = 4
[design]
n = 12
p = [8, 30]
[estimator]
kind = ["min-norm", "ridge"]
[estimator.ridge]
lambda = 0.2
[schedule]
kind = "constant"
w = [0.0, 0.6]
[protocol]
kind = ["fresh-covariates", "partial-labels"]
[protocol.partial-labels]
pi = 0.5
synthetic_rows = ["keep", "drop"]
[policy]
kind = ["replace", "accumulate", "accumulate-subsample"]
"#,
];

fn run_binary(dir: &Path, text: &str, name: &str, extra: &[&str]) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    let out = dir.join(name);
    let o = Command::new(BIN)
        .args(["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"])
        .args(extra)
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

/// Categorical text columns decoded as strings, so the frames compare by value.
fn decoded(mut df: DataFrame) -> DataFrame {
    let names: Vec<String> = df.get_column_names().iter().map(|s| s.to_string()).collect();
    for name in names {
        let c = df.column(&name).unwrap();
        if c.dtype().is_categorical() || c.dtype().is_enum() {
            let text = c.cast(&DataType::String).unwrap();
            df.with_column(text).unwrap();
        }
    }
    df
}

/// The in-memory reference: collect every unit, then build the tables in one go.
fn reference(text: &str) -> (DataFrame, DataFrame) {
    use collapse_covariance as _;
    use collapse_estimators as _;
    use collapse_families as _;
    use collapse_protocols as _;
    use collapse_schedules as _;
    let s = collapse_core::resolve(&collapse_core::parse(text, "test").unwrap()).unwrap();
    let mut sink = Collector::new(&s);
    engine::run(&s, &engine::units(&s), RunOptions { threads: 1, ..RunOptions::default() }, &mut sink, &|_| {})
        .unwrap();
    let paths = sink.into_paths();
    let runs = to_dataframe(&results::runs_table(&s, &paths)).unwrap();
    let summary = results::summary_table(&s, &results::summarize(&s, &paths), &results::predictions(&s));
    (runs, to_dataframe(&summary).unwrap())
}

#[test]
fn streamed_output_equals_the_in_memory_reference() {
    let dir = tempfile::tempdir().unwrap();
    for (k, text) in SCENARIOS.iter().enumerate() {
        let (runs, summary) = reference(text);
        for threads in ["1", "2"] {
            let out = run_binary(dir.path(), text, &format!("s{k}-t{threads}"), &["--threads", threads]);
            let streamed = decoded(read_parquet(&out.join("runs.parquet")).unwrap());
            assert!(streamed.equals_missing(&runs), "scenario {k}, {threads} threads: runs differ\n{streamed}\n{runs}");
            let streamed = read_parquet(&out.join("summary.parquet")).unwrap();
            assert!(streamed.equals_missing(&summary), "scenario {k}: summaries differ");
        }
        let a = std::fs::read(dir.path().join(format!("s{k}-t1/runs.parquet"))).unwrap();
        let b = std::fs::read(dir.path().join(format!("s{k}-t2/runs.parquet"))).unwrap();
        assert_eq!(a, b, "scenario {k}: runs.parquet differs between 1 and 2 threads");
    }
}

#[test]
fn runs_final_and_none_write_what_they_say() {
    let dir = tempfile::tempdir().unwrap();
    let text = SCENARIOS[0];
    let all = run_binary(dir.path(), text, "all", &[]);
    let fin = run_binary(dir.path(), text, "final", &["--runs", "final"]);
    let none = run_binary(dir.path(), text, "none", &["--set", "output.runs=\"none\""]);
    let all_runs = decoded(read_parquet(&all.join("runs.parquet")).unwrap());
    let fin_runs = decoded(read_parquet(&fin.join("runs.parquet")).unwrap());
    let iterations = common::i64_col(&all_runs, "iteration");
    let last = *iterations.iter().max().unwrap();
    let mask: polars::prelude::BooleanChunked = iterations.iter().map(|&t| Some(t == last)).collect();
    let expected = all_runs.filter(&mask).unwrap();
    assert!(fin_runs.equals_missing(&expected), "runs = final is not the final iteration of runs = all");
    assert!(!none.join("runs.parquet").exists(), "runs = none wrote runs.parquet");
    let s_all = std::fs::read(all.join("summary.parquet")).unwrap();
    for d in [&fin, &none] {
        assert_eq!(std::fs::read(d.join("summary.parquet")).unwrap(), s_all, "{}: summary differs", d.display());
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(none.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["output"]["runs"], "none");
    assert_eq!(manifest["rows"]["runs"], 0);
    let saved = std::fs::read_to_string(fin.join("scenario.toml")).unwrap();
    assert!(saved.contains("[output]") && saved.contains("runs = \"final\""), "{saved}");
    // Every compression reads back to the same table.
    for c in ["lz4", "snappy", "gzip", "uncompressed"] {
        let out = run_binary(dir.path(), text, &format!("c-{c}"), &["--compression", c]);
        let t = decoded(read_parquet(&out.join("runs.parquet")).unwrap());
        assert!(t.equals_missing(&all_runs), "compression {c}");
    }
}

/// SIGKILL in the middle of a run: only hidden temporary files remain, never a file under
/// a final name.
#[test]
fn a_killed_run_leaves_no_final_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("big.toml");
    let text = SCENARIOS[0].replace("replicates = 7", "replicates = 400000");
    std::fs::write(&file, text).unwrap();
    let out = dir.path().join("big");
    let mut child = Command::new(BIN)
        .args(["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--threads", "1"])
        .spawn()
        .unwrap();
    // Wait until the run is under way (its spill exists), then kill it.
    let started = std::time::Instant::now();
    while started.elapsed() < std::time::Duration::from_secs(60) {
        let spilled =
            std::fs::read_dir(&out).map(|d| d.flatten().any(|e| e.file_name().to_string_lossy().contains("spill")));
        if spilled.unwrap_or(false) {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    std::thread::sleep(std::time::Duration::from_millis(300));
    child.kill().unwrap();
    let status = child.wait().unwrap();
    assert!(!status.success(), "the run finished before it could be killed; make it bigger");
    let names: Vec<String> =
        std::fs::read_dir(&out).unwrap().flatten().map(|e| e.file_name().to_string_lossy().into_owned()).collect();
    assert!(!names.is_empty());
    for n in &names {
        assert!(n.starts_with('.'), "a killed run left `{n}` under a final name");
    }
}
