//! Common random numbers: one factorization per (design group, replicate), identical
//! draws across the cells of a group, much smaller paired standard errors, and
//! independent cells when the option is off.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

mod common;

use collapse_cli::output::read_parquet;
use common::{f64_col, i64_col, str_col};

const SWEEP: &str = r#"
name = "crn"
seed = 8
replicates = 5
iterations = 3
[design]
n = 30
p = 60
[estimator]
kind = "ridge"
lambda = [0.0, 0.1, 1.0]
[schedule]
kind = "constant"
w = [0.4, 0.5, 0.618, 0.9]
"#;

fn run(dir: &Path, name: &str, text: &str, extra: &[&str]) -> std::path::PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).unwrap();
    let out = dir.join(name);
    let mut args = vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"];
    args.extend_from_slice(extra);
    let o = Command::new(env!("CARGO_BIN_EXE_collapse")).args(&args).output().unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    out
}

fn manifest(out: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap()
}

/// Risk at t = 0 per (λ, replicate, w): w only acts from t = 1 on, so with identical
/// designs, signals and noise the t = 0 risks of cells that share λ are identical.
fn t0_risks(out: &Path) -> Vec<(f64, i64, f64, f64)> {
    let runs = read_parquet(&out.join("runs.parquet")).unwrap();
    let (t, rep, lam, w, risk) = (
        i64_col(&runs, "iteration"),
        i64_col(&runs, "replicate"),
        f64_col(&runs, "estimator.lambda"),
        f64_col(&runs, "schedule.w"),
        f64_col(&runs, "risk"),
    );
    (0..runs.height()).filter(|&i| t[i] == 0).map(|i| (lam[i], rep[i], w[i], risk[i])).collect()
}

#[test]
fn one_factorization_per_design_group_and_replicate() {
    let dir = tempfile::tempdir().unwrap();
    let shared = run(dir.path(), "shared", SWEEP, &[]);
    assert_eq!(manifest(&shared)["design_groups"], 1);
    assert_eq!(manifest(&shared)["factorizations"], 5, "12 cells × 5 replicates should need 5 SVDs");
    let rows = t0_risks(&shared);
    for &(lam, rep, _, risk) in &rows {
        for &(lam2, rep2, _, risk2) in &rows {
            if lam.to_bits() == lam2.to_bits() && rep == rep2 {
                assert_eq!(
                    risk.to_bits(),
                    risk2.to_bits(),
                    "λ = {lam}, replicate {rep}: cells of a group differ at t = 0"
                );
            }
        }
    }

    let independent = run(
        dir.path(),
        "independent",
        &SWEEP.replace("replicates = 5", "replicates = 5\ncommon_random_numbers = false"),
        &[],
    );
    assert_eq!(manifest(&independent)["design_groups"], 12);
    assert_eq!(manifest(&independent)["factorizations"], 60);
    let rows = t0_risks(&independent);
    let distinct = rows
        .iter()
        .filter(|a| {
            rows.iter().any(|b| {
                a.0.to_bits() == b.0.to_bits()
                    && a.1 == b.1
                    && a.2.to_bits() != b.2.to_bits()
                    && a.3.to_bits() == b.3.to_bits()
            })
        })
        .count();
    assert_eq!(distinct, 0, "without common random numbers, cells must not share draws");
}

/// Paired standard error of risk(w = 0.618) − risk(w = 0.5), on the same budget.
fn paired_se(out: &Path) -> f64 {
    let runs = read_parquet(&out.join("runs.parquet")).unwrap();
    let (t, rep, w, risk) = (
        i64_col(&runs, "iteration"),
        i64_col(&runs, "replicate"),
        f64_col(&runs, "schedule.w"),
        f64_col(&runs, "risk"),
    );
    let last = *t.iter().max().unwrap();
    let reps = *rep.iter().max().unwrap() + 1;
    let mut d = vec![0.0; reps as usize];
    for i in 0..runs.height() {
        if t[i] == last {
            let sign = if (w[i] - 0.618).abs() < 1e-12 { 1.0 } else { -1.0 };
            d[rep[i] as usize] += sign * risk[i];
        }
    }
    let mut acc = collapse_core::results::Running::default();
    d.iter().for_each(|&x| acc.push(x));
    acc.se().unwrap()
}

#[test]
fn common_random_numbers_shrink_the_paired_standard_error() {
    let text = r#"
name = "pair"
seed = 4
replicates = 100
iterations = 20
[design]
n = 100
p = 200
[estimator]
kind = "min-norm"
[schedule]
kind = "constant"
w = [0.5, 0.618]
"#;
    let dir = tempfile::tempdir().unwrap();
    let with = paired_se(&run(dir.path(), "with", text, &[]));
    let without = paired_se(&run(dir.path(), "without", text, &["--set", "common_random_numbers=false"]));
    eprintln!("paired se of risk(0.618) − risk(0.5): {with} with CRN, {without} without ({:.1}×)", without / with);
    assert!(without > 3.0 * with, "paired se with CRN {with}, without {without}");
}

#[test]
fn compare_reports_paired_steps_and_a_bootstrap_argmin() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "cmp", SWEEP, &[]);
    let o = Command::new(env!("CARGO_BIN_EXE_collapse"))
        .args(["compare", out.to_str().unwrap(), "--param", "schedule.w", "--bootstrap", "200"])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    // three λ groups, three neighbouring steps each, one argmin line each
    assert_eq!(text.matches("argmin schedule.w").count(), 3, "{text}");
    assert_eq!(text.matches(" → ").count(), 3 * 3 + 3, "{text}");
    let o = Command::new(env!("CARGO_BIN_EXE_collapse"))
        .args(["compare", out.to_str().unwrap(), "--param", "schedule.x"])
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("schedule.w"));
}

/// The same comparison computed in process: paired differences equal the mean of
/// per-replicate differences.
#[test]
fn paired_steps_are_means_of_replicate_differences() {
    let dir = tempfile::tempdir().unwrap();
    let out = run(dir.path(), "steps", SWEEP, &[]);
    let runs = read_parquet(&out.join("runs.parquet")).unwrap();
    let c = collapse_cli::compare::compare(&runs, "schedule.w", None, None, 50).unwrap();
    assert_eq!(c.steps.len(), 9);
    let step = &c.steps[0];
    let (t, rep, lam, w, risk) = (
        i64_col(&runs, "iteration"),
        i64_col(&runs, "replicate"),
        f64_col(&runs, "estimator.lambda"),
        f64_col(&runs, "schedule.w"),
        f64_col(&runs, "risk"),
    );
    let lam0 = lam.iter().copied().fold(f64::INFINITY, f64::min);
    let mut d = [0.0f64; 5];
    for i in 0..runs.height() {
        if t[i] == 3 && lam[i].to_bits() == lam0.to_bits() {
            if (w[i] - step.to).abs() < 1e-12 {
                d[rep[i] as usize] += risk[i];
            } else if (w[i] - step.from).abs() < 1e-12 {
                d[rep[i] as usize] -= risk[i];
            }
        }
    }
    let mean = d.iter().sum::<f64>() / 5.0;
    assert!((step.mean - mean).abs() < 1e-12, "{} vs {mean}", step.mean);
}

/// Streams are keyed by each design group's content, not its position in the grid:
/// adding a value to a design axis (here a third n, inserted first, so every existing
/// group moves) leaves every existing cell's runs bit-identical.
#[test]
fn extending_a_design_axis_leaves_existing_cells_unchanged() {
    let dir = tempfile::tempdir().unwrap();
    let base = "name = \"ext\"\nseed = 4\nreplicates = 4\niterations = 3\n[design]\nn = N\np = 60\n[covariance]\nkind = [\"isotropic\", \"spiked\"]\n[covariance.spiked]\nspikes = [3.0]\n[estimator]\nkind = \"ridge\"\nlambda = 0.1\n[schedule]\nkind = \"constant\"\nw = [0.5, 0.8]\n";
    let small = run(dir.path(), "small", &base.replace("N", "[20, 40]"), &[]);
    let large = run(dir.path(), "large", &base.replace("N", "[10, 20, 40]"), &[]);
    let key = |out: &Path| -> std::collections::BTreeMap<(i64, String, i64, i64, u64), u64> {
        let runs = read_parquet(&out.join("runs.parquet")).unwrap();
        let (n, rep, t, w, risk) = (
            i64_col(&runs, "design.n"),
            i64_col(&runs, "replicate"),
            i64_col(&runs, "iteration"),
            f64_col(&runs, "schedule.w"),
            f64_col(&runs, "risk"),
        );
        let cov = str_col(&runs, "covariance");
        (0..runs.height())
            .map(|i| ((n[i], cov[i].clone().unwrap(), rep[i], t[i], w[i].to_bits()), risk[i].to_bits()))
            .collect()
    };
    let (a, b) = (key(&small), key(&large));
    assert_eq!(a.len(), 2 * 2 * 2 * 4 * 4);
    for (k, v) in &a {
        assert_eq!(b.get(k), Some(v), "cell {k:?} changed when n = 10 was added");
    }
    assert!(b.keys().any(|k| k.0 == 10));
}
