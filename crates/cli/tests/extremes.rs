//! Numerical extremes: γ = 1 exactly, λ = 1e-300 and 1e300, w = 1e-12, 10⁵ iterations, a
//! spike of 1e8. Every simulated and exact value is finite; where the theory's quantity
//! is not (the interpolation peak), the output says so in a note and the manifest, and the
//! theory column is null — never a NaN.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::process::Command;

mod common;

use collapse_cli::output::read_parquet;
use common::f64_col;

const BASE: &str = r#"name = "extreme"
seed = 9
replicates = 20
iterations = 10
[design]
n = 40
p = 60
[estimator]
kind = "min-norm"
[schedule]
kind = "constant"
w = 0.6
"#;

fn run(sets: &[&str]) -> (String, std::path::PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("s.toml");
    std::fs::write(&file, BASE).unwrap();
    let out = dir.path().join("out");
    let mut args = vec!["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "-q"];
    for s in sets {
        args.extend(["--set", s]);
    }
    let o = Command::new(env!("CARGO_BIN_EXE_collapse")).args(&args).output().unwrap();
    let stdout = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{sets:?}: {}", String::from_utf8_lossy(&o.stderr));
    (stdout, out, dir)
}

/// Every simulated and exact value (runs and summary) is finite; theory values, where
/// present, are finite.
fn all_finite(out: &std::path::Path, what: &str) {
    let runs = read_parquet(&out.join("runs.parquet")).unwrap();
    for c in ["risk", "risk_exact"] {
        assert!(f64_col(&runs, c).iter().all(|x| x.is_finite()), "{what}: {c} has a non-finite value");
    }
    let summary = read_parquet(&out.join("summary.parquet")).unwrap();
    for c in ["risk_mean", "risk_exact_mean"] {
        assert!(f64_col(&summary, c).iter().all(|x| x.is_finite()), "{what}: {c} has a non-finite value");
    }
    let theory = summary.column("risk_theory").unwrap().f64().unwrap().to_vec();
    assert!(theory.into_iter().flatten().all(f64::is_finite), "{what}: a theory value is not finite");
}

#[test]
fn the_interpolation_peak_is_reported_not_silent() {
    let (stdout, out, _d) = run(&["design.n=60"]);
    all_finite(&out, "γ = 1");
    assert!(stdout.contains("note: no theory") && stdout.contains("interpolation peak"), "{stdout}");
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let missing = manifest["theory_missing"].as_object().unwrap();
    assert!(missing.keys().any(|k| k.contains("interpolation peak")), "{missing:?}");
    let summary = read_parquet(&out.join("summary.parquet")).unwrap();
    assert_eq!(summary.column("risk_theory").unwrap().null_count(), summary.height());
}

#[test]
fn extreme_penalties_weights_horizons_and_spikes_stay_finite() {
    let cases: &[(&str, &[&str])] = &[
        ("λ = 1e-300 and 1e300", &["estimator.kind=ridge", "estimator.lambda=[1e-300, 1e300]"]),
        ("w = 1e-12", &["schedule.w=1e-12"]),
        ("10⁵ iterations", &["iterations=100000", "replicates=2", "design.n=10", "design.p=20"]),
        ("spike 1e8", &["covariance.kind=spiked", "covariance.spikes=[1e8]"]),
        (
            "spike 1e8, ridge",
            &["covariance.kind=spiked", "covariance.spikes=[1e8]", "estimator.kind=ridge", "estimator.lambda=0.5"],
        ),
    ];
    for (what, sets) in cases {
        let (_, out, _d) = run(sets);
        all_finite(&out, what);
    }
    // At λ = 1e300 the estimate is 0: the risk is ‖β‖² = 1 exactly, as the theory says.
    let (_, out, _d) = run(&["estimator.kind=ridge", "estimator.lambda=1e300"]);
    let summary = read_parquet(&out.join("summary.parquet")).unwrap();
    assert!(f64_col(&summary, "risk_mean").iter().all(|r| (r - 1.0).abs() < 1e-9));
    assert!(f64_col(&summary, "risk_theory").iter().all(|r| (r - 1.0).abs() < 1e-9));
}
