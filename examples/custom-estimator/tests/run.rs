//! End-to-end: the example's own binary lists `landweber` beside the built-in
//! plugins and runs the example scenario.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

const BIN: &str = env!("CARGO_BIN_EXE_custom-estimator");
const SCENARIO: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/scenario.toml");

fn run(args: &[&str]) -> Output {
    let out = Command::new(BIN).args(args).output().expect("cannot start the custom-estimator binary");
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

#[test]
fn lists_landweber_and_the_builtin_estimators() {
    let out = run(&["list", "estimator"]);
    let text = String::from_utf8_lossy(&out.stdout);
    let names: Vec<&str> = text.lines().filter_map(|l| l.split_whitespace().next()).collect();
    assert!(names.contains(&"landweber"), "{text}");
    assert!(names.contains(&"ridge"), "{text}");
    assert!(names.contains(&"min-norm"), "{text}");
}

#[test]
fn runs_the_example_scenario() {
    let dir = tempfile::tempdir().expect("temporary directory");
    let out_dir = dir.path().join("out");
    let out = run(&["run", SCENARIO, "--out", out_dir.to_str().expect("utf-8 path"), "--quiet"]);
    assert_eq!(out.status.code(), Some(0));
    for file in ["runs.parquet", "summary.parquet", "scenario.toml", "manifest.json"] {
        assert!(out_dir.join(file).is_file(), "{file} was not written");
    }
    let resolved = std::fs::read_to_string(out_dir.join("scenario.toml")).expect("scenario.toml");
    assert!(resolved.contains("landweber"), "{resolved}");
}

fn risks(dir: &Path, column: &str) -> Vec<f64> {
    let df = collapse_cli::output::read_parquet(&dir.join("runs.parquet")).expect("runs.parquet");
    df.column(column).expect(column).f64().expect("f64 column").into_no_null_iter().collect()
}

/// The setting's spectral path (which uses the plugin's gain) and its refit path
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
            &format!("setting.path={path}"),
            "--set",
            "setting.projected_noise=false",
        ]);
        results.push((risks(&out_dir, "risk"), risks(&out_dir, "risk_exact")));
    }
    let ((spectral, exact_a), (refit, exact_b)) = (&results[0], &results[1]);
    assert_eq!(spectral.len(), refit.len());
    assert!(!spectral.is_empty());
    for (i, (a, b)) in spectral.iter().zip(refit).enumerate() {
        assert!((a - b).abs() <= 1e-8 * a.abs().max(1e-12), "row {i}: spectral {a} vs refit {b}");
    }
    assert_eq!(exact_a, exact_b);
}
