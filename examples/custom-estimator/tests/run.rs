//! End-to-end, through the example's own binary (the stock `collapse` CLI with
//! `landweber` linked in): it lists `landweber` beside the built-ins, runs the example
//! scenario, its spectral and refit paths agree draw for draw, an unstable step is a
//! numerical failure (exit code 1), and the built-in `pcr` behaves in this binary as in
//! `collapse` (equal to `min-norm` at k = rank, exact risk matching Monte Carlo below).
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_custom-estimator");
const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenario.toml");

/// Run the binary; the output, whatever the exit status.
fn try_run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("cannot start the custom-estimator binary")
}

/// Run the binary and require success.
fn run(args: &[&str]) -> Output {
    let out = try_run(args);
    assert!(
        out.status.success(),
        "`custom-estimator {}` exited with {:?}\nstdout:\n{}\nstderr:\n{}",
        args.join(" "),
        out.status.code(),
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// Write `text` as `<name>.toml` in `dir`, run it with `extra` arguments, return the
/// output directory.
fn run_text(dir: &Path, name: &str, text: &str, extra: &[&str]) -> PathBuf {
    let file = dir.join(format!("{name}.toml"));
    std::fs::write(&file, text).expect("write scenario");
    let out = dir.join(name);
    let mut args =
        vec!["run", file.to_str().expect("utf-8 path"), "--out", out.to_str().expect("utf-8 path"), "--quiet"];
    args.extend_from_slice(extra);
    run(&args);
    out
}

/// A Float64 column of a Parquet file (null → NaN, which fails any comparison).
fn f64_col(file: &Path, column: &str) -> Vec<f64> {
    let df = collapse_cli::output::read_parquet(file).expect("read Parquet");
    let values = df.column(column).expect(column).f64().expect("f64 column");
    (0..values.len()).map(|i| values.get(i).unwrap_or(f64::NAN)).collect()
}

/// An Int64 column of a Parquet file.
fn i64_col(file: &Path, column: &str) -> Vec<i64> {
    let df = collapse_cli::output::read_parquet(file).expect("read Parquet");
    let values = df.column(column).expect(column).i64().expect("i64 column");
    (0..values.len()).map(|i| values.get(i).expect("no nulls")).collect()
}

/// The estimator of each row of a `pcr`/`min-norm` sweep: parameter columns are the
/// union over kinds, so `estimator.k` is set for `pcr` and null for `min-norm`.
fn kinds(file: &Path) -> Vec<&'static str> {
    f64_col(file, "estimator.k").into_iter().map(|k| if k.is_nan() { "min-norm" } else { "pcr" }).collect()
}

#[test]
fn lists_landweber_and_the_builtin_estimators() {
    let out = run(&["list", "estimator"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    for name in ["landweber", "ridge", "min-norm", "ols", "pcr"] {
        assert!(names.contains(&name), "{name} missing from\n{text}");
    }
    let out = run(&["describe", "estimator", "landweber"]);
    let text = String::from_utf8_lossy(&out.stdout);
    assert!(text.contains("provided by crate `custom-estimator`"), "{text}");
    assert!(text.contains("in (0, 2)"), "{text}");
}

#[test]
fn runs_the_example_scenario() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out_dir = dir.path().join("out");
    run(&["run", SCENARIO, "--out", out_dir.to_str().expect("utf-8 path"), "--quiet"]);
    for file in ["runs.parquet", "summary.parquet", "scenario.toml", "manifest.json"] {
        assert!(out_dir.join(file).is_file(), "{file} was not written");
    }
    let runs = out_dir.join("runs.parquet");
    let steps = i64_col(&runs, "estimator.steps");
    let (risk, exact) = (f64_col(&runs, "risk"), f64_col(&runs, "risk_exact"));
    // 2 cells × 3 replicates × (5 + 1) iterations.
    assert_eq!(risk.len(), 36);
    assert!(steps.contains(&10) && steps.contains(&100), "{steps:?}");
    assert!(risk.iter().chain(&exact).all(|r| r.is_finite() && *r > 0.0), "{risk:?} {exact:?}");
    let manifest = std::fs::read_to_string(out_dir.join("manifest.json")).expect("manifest.json");
    assert!(manifest.contains("\"custom-estimator\""), "the manifest names the providing crate:\n{manifest}");
}

/// The protocol's spectral path (which uses the plugin's gains) and its refit path
/// (which calls `fit`, i.e. runs the gradient steps) draw the same noise when
/// `projected_noise = false`, so they must report the same risks.
#[test]
fn spectral_and_refit_paths_agree() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let mut results = Vec::new();
    for path in ["spectral", "refit"] {
        let out_dir = dir.path().join(path);
        run(&[
            "run",
            SCENARIO,
            "--out",
            out_dir.to_str().expect("utf-8 path"),
            "--quiet",
            "--threads",
            "1",
            "--set",
            &format!("protocol.path={path}"),
            "--set",
            "protocol.projected_noise=false",
        ]);
        let runs = out_dir.join("runs.parquet");
        results.push((f64_col(&runs, "risk"), f64_col(&runs, "risk_exact")));
    }
    let ((spectral, exact_a), (refit, exact_b)) = (&results[0], &results[1]);
    assert_eq!(spectral.len(), refit.len());
    assert!(!spectral.is_empty());
    for (i, (a, b)) in spectral.iter().zip(refit).enumerate() {
        assert!((a - b).abs() <= 1e-8 * a.abs().max(1e-12), "row {i}: spectral {a} vs refit {b}");
    }
    assert_eq!(exact_a, exact_b);
}

/// A step that is unstable for the sampled design (a strong spike makes d_max²/n about
/// 4× the reference curvature) is a numerical failure naming `estimator.step_size`,
/// exit code 1, on the spectral path (from the gains) and the refit path (from `fit`).
#[test]
fn unstable_step_is_a_numerical_failure() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for path in ["spectral", "refit"] {
        let out_dir = dir.path().join(path);
        let out = try_run(&[
            "run",
            SCENARIO,
            "--out",
            out_dir.to_str().expect("utf-8 path"),
            "--quiet",
            "--set",
            "covariance.kind=spiked",
            "--set",
            "covariance.spikes=[20.0]",
            "--set",
            &format!("protocol.path={path}"),
        ]);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{path}: {stderr}");
        assert!(stderr.contains("numerical failure in landweber"), "{path}: {stderr}");
        assert!(stderr.contains("estimator.step_size = 1 is unstable"), "{path}: {stderr}");
        assert!(stderr.contains("η·d_max²/n = "), "{path}: {stderr}");
        assert!(!stderr.to_lowercase().contains("nan"), "{path}: {stderr}");
    }
}

/// A sweep over the built-in `pcr` and `min-norm` at p > n.
fn pcr_vs_min_norm(k: usize, replicates: usize) -> String {
    format!(
        r#"
name = "pcr-vs-min-norm"
seed = 21
replicates = {replicates}
iterations = 4
[design]
n = 20
p = 40
[family]
kind = "linear-gaussian"
noise_sd = 0.5
[estimator]
kind = ["pcr", "min-norm"]
[estimator.pcr]
k = {k}
[schedule]
kind = "constant"
w = 0.618
"#
    )
}

/// With common random numbers both cells see the same designs, signals and noise, and
/// PCR at k = rank(X) = n is the min-norm interpolator: the risks agree draw for draw,
/// on the fast spectral path and on the refit path.
#[test]
fn pcr_at_full_rank_equals_min_norm_draw_for_draw() {
    let dir = tempfile::tempdir().expect("temporary directory");
    for path in ["auto", "refit"] {
        let out = run_text(dir.path(), path, &pcr_vs_min_norm(20, 6), &["--set", &format!("protocol.path={path}")]);
        let runs = out.join("runs.parquet");
        let (kind, rep, t) = (kinds(&runs), i64_col(&runs, "replicate"), i64_col(&runs, "iteration"));
        let risk = f64_col(&runs, "risk");
        let mut by_kind: BTreeMap<&str, BTreeMap<(i64, i64), f64>> = BTreeMap::new();
        for i in 0..risk.len() {
            by_kind.entry(kind[i]).or_default().insert((rep[i], t[i]), risk[i]);
        }
        let (pcr, min_norm) = (&by_kind["pcr"], &by_kind["min-norm"]);
        assert_eq!(pcr.len(), 6 * 5, "{path}");
        assert_eq!(pcr.keys().collect::<Vec<_>>(), min_norm.keys().collect::<Vec<_>>(), "{path}");
        for (key, a) in pcr {
            let b = min_norm[key];
            assert!(a.is_finite() && *a > 0.0, "{path} {key:?}: {a}");
            assert!(
                (a - b).abs() <= 1e-12 * b.abs(),
                "{path} (replicate, iteration) = {key:?}: pcr {a} vs min-norm {b}"
            );
        }
    }
}

/// Below the rank PCR is a different estimator; its exact conditional risk (from the
/// gains, on the fast path) must match the Monte Carlo mean within the standard error.
#[test]
fn pcr_exact_risk_matches_monte_carlo() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out = run_text(dir.path(), "pcr-k5", &pcr_vs_min_norm(5, 400), &[]);
    let summary = out.join("summary.parquet");
    let kind = kinds(&summary);
    let t = i64_col(&summary, "iteration");
    let (mean, se) = (f64_col(&summary, "risk_mean"), f64_col(&summary, "risk_se"));
    let (exact, z) = (f64_col(&summary, "risk_exact_mean"), f64_col(&summary, "risk_z_exact"));
    let last = *t.iter().max().expect("rows");
    let mut checked = 0;
    for i in 0..t.len() {
        if t[i] != last {
            continue;
        }
        assert!(se[i] > 0.0 && exact[i] > 0.0, "{}: se {} exact {}", kind[i], se[i], exact[i]);
        assert!((z[i] - (mean[i] - exact[i]) / se[i]).abs() < 1e-9, "{}: z = {}", kind[i], z[i]);
        assert!(z[i].abs() < 4.0, "{}: mean {} vs exact {} (se {}), z = {}", kind[i], mean[i], exact[i], se[i], z[i]);
        checked += 1;
    }
    assert_eq!(checked, 2, "one pcr and one min-norm cell");
    // The exact risk is a conditional expectation, not the realized risk: the test has teeth.
    let runs = out.join("runs.parquet");
    let (risk, risk_exact) = (f64_col(&runs, "risk"), f64_col(&runs, "risk_exact"));
    assert!(risk.iter().zip(&risk_exact).filter(|(a, b)| (*a - *b).abs() > 1e-6 * b.abs()).count() > risk.len() / 2);
    // And PCR with 5 of 20 components is not min-norm.
    let pcr_mean = (0..t.len()).find(|&i| t[i] == last && kind[i] == "pcr").map(|i| mean[i]).expect("pcr row");
    let mn_mean = (0..t.len()).find(|&i| t[i] == last && kind[i] == "min-norm").map(|i| mean[i]).expect("min-norm row");
    assert!((pcr_mean - mn_mean).abs() > 1e-3 * mn_mean, "pcr {pcr_mean} vs min-norm {mn_mean}");
}
