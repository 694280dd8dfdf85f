//! Integration tests of the real `collapse` binary: small scenarios, Parquet read back.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::process::{Command, Output};

mod common;

use collapse_cli::output::read_parquet;
use common::{f64_col, i64_col, str_col, write_scenario};

const BASE: &str = r#"
name = "tiny"
seed = 3
replicates = 6
iterations = 4
[design]
n = 20
p = 40
[family]
noise_sd = 1.0
[estimator]
kind = "ridge"
lambda = [0.0, 0.5]
[schedule]
kind = "constant"
w = [0.5, 0.9]
"#;

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_collapse"))
}

fn run(args: &[&str]) -> Output {
    bin().args(args).output().unwrap()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn run_writes_four_files_with_the_documented_columns() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), BASE);
    let out = dir.path().join("out");
    let o = run(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    for f in ["runs.parquet", "summary.parquet", "scenario.toml", "manifest.json"] {
        assert!(out.join(f).is_file(), "{f} missing");
    }
    let runs = read_parquet(&out.join("runs.parquet")).unwrap();
    // 2 λ × 2 w cells × 6 replicates × (4 + 1) iterations
    assert_eq!(runs.height(), 4 * 6 * 5);
    for c in [
        "cell",
        "replicate",
        "iteration",
        "w",
        "risk",
        "risk_exact",
        "design.n",
        "design.p",
        "family",
        "family.noise_sd",
        "signal",
        "signal.radius",
        "covariance",
        "estimator",
        "estimator.lambda",
        "schedule",
        "schedule.w",
        "protocol",
        "policy",
    ] {
        assert!(runs.column(c).is_ok(), "runs.parquet lacks column {c}");
    }
    let t = i64_col(&runs, "iteration");
    let w = f64_col(&runs, "w");
    let sw = f64_col(&runs, "schedule.w");
    for i in 0..runs.height() {
        let expected = if t[i] == 0 { 1.0 } else { sw[i] };
        assert!((w[i] - expected).abs() < 1e-15, "row {i}: w = {} at t = {}", w[i], t[i]);
    }
    assert!(f64_col(&runs, "risk").iter().all(|r| r.is_finite() && *r >= 0.0));

    // summary.risk_mean is the mean of runs.risk per (cell, iteration).
    let summary = read_parquet(&out.join("summary.parquet")).unwrap();
    assert_eq!(summary.height(), 4 * 5);
    let (cells, iters, risks) = (i64_col(&runs, "cell"), t, f64_col(&runs, "risk"));
    let (s_cell, s_t, s_mean, s_se) = (
        i64_col(&summary, "cell"),
        i64_col(&summary, "iteration"),
        f64_col(&summary, "risk_mean"),
        f64_col(&summary, "risk_se"),
    );
    for k in 0..summary.height() {
        let xs: Vec<f64> =
            (0..runs.height()).filter(|&i| cells[i] == s_cell[k] && iters[i] == s_t[k]).map(|i| risks[i]).collect();
        assert_eq!(xs.len(), 6);
        let m = xs.iter().sum::<f64>() / 6.0;
        let sd = (xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / 5.0).sqrt();
        assert!((s_mean[k] - m).abs() < 1e-12 * m.max(1.0));
        assert!((s_se[k] - sd / 6f64.sqrt()).abs() < 1e-12 * m.max(1.0));
    }
    for c in ["replicates", "risk_exact_mean", "risk_theory", "risk_z_exact", "estimator.lambda", "schedule.w"] {
        assert!(summary.column(c).is_ok(), "summary.parquet lacks column {c}");
    }
    // The saved scenario writes out every default.
    let saved = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    for key in ["fast_design", "projected_noise", "noise_sd", "radius", "common_random_numbers"] {
        assert!(saved.contains(key), "scenario.toml lacks `{key}`:\n{saved}");
    }
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    assert_eq!(manifest["seed"], 3);
    assert_eq!(manifest["rows"]["runs"], 120);
    // The saved scenario reruns to the same results.
    let out2 = dir.path().join("out2");
    let o = run(&["run", out.join("scenario.toml").to_str().unwrap(), "--out", out2.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(std::fs::read(out.join("runs.parquet")).unwrap(), std::fs::read(out2.join("runs.parquet")).unwrap());
}

#[test]
fn output_is_bit_identical_for_one_and_two_threads() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), BASE);
    let mut outs = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("t{threads}"));
        let o =
            run(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet", "--threads", threads]);
        assert!(o.status.success(), "{}", stderr(&o));
        outs.push(out);
    }
    for f in ["runs.parquet", "summary.parquet", "scenario.toml"] {
        assert_eq!(std::fs::read(outs[0].join(f)).unwrap(), std::fs::read(outs[1].join(f)).unwrap(), "{f} differs");
    }
    // ... and independent cells (no common random numbers) are deterministic too.
    let mut indep = Vec::new();
    for threads in ["1", "2"] {
        let out = dir.path().join(format!("i{threads}"));
        let o = run(&[
            "run",
            scenario.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--quiet",
            "--threads",
            threads,
            "--set",
            "common_random_numbers=false",
        ]);
        assert!(o.status.success(), "{}", stderr(&o));
        indep.push(std::fs::read(out.join("runs.parquet")).unwrap());
    }
    assert_eq!(indep[0], indep[1]);
}

/// Each bad input: exit code 2, one message naming the field and what is allowed, and
/// no output directory.
#[test]
fn bad_input_exits_2_names_the_field_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), BASE);
    let s = scenario.to_str().unwrap();
    let cases: &[(&[&str], &[&str])] = &[
        (&["--set", "estimator.kind=lasso"], &["estimator.kind", "unknown estimator `lasso`", "ridge", "min-norm"]),
        (&["--set", "estimator.lamda=0.1"], &["estimator", "unknown field `lamda`", "lambda"]),
        (&["--set", "replicate=3"], &["unknown key `replicate`", "replicates"]),
        (&["--set", "estimator.lambda=\"abc\""], &["estimator.lambda", "invalid type", "f64"]),
        (&["--set", "schedule.w=1.5"], &["schedule.w", "[0, 1]", "1.5"]),
        (&["--set", "schedule.w=[0.5,-0.1]"], &["schedule.w", "[0, 1]", "-0.1"]),
        (&["--set", "estimator.lambda=-1"], &["estimator.lambda", ">= 0", "-1"]),
        (&["--set", "design.n=0"], &["design.n", ">= 1"]),
        (&["--set", "design.p=0"], &["design.p", ">= 1"]),
        (&["--set", "estimator.kind=ols", "--set", "estimator.lambda=[]"], &["estimator"]),
        (&["--set", "estimator=[]"], &["estimator", "table"]),
        (&["--set", "estimator.lambda"], &["--set", "KEY=VALUE"]),
        (&["--set", "schedule.w=[0.5,"], &["--set schedule.w", "cannot parse"]),
        (&["--set", "replicates=0"], &["replicates", ">= 1"]),
        (&["--set", "schedule.w={ from = 0, to = 1 }"], &["schedule.w", "steps"]),
        (&["--set", "schedule.w=nan"], &["schedule.w", "finite number", "NaN"]),
        (&["--set", "estimator.lambda=inf"], &["estimator.lambda", "finite number"]),
        (&["--set", "design.noise_sd=1"], &["design.noise_sd", "[family]"]),
        (&["--set", "setting.kind=fresh-labels"], &["unknown key `setting`", "protocol"]),
        (
            &["--set", "family.kind=negative-binomial"],
            &["family.kind", "unknown family `negative-binomial`", "linear-gaussian"],
        ),
        (&["--set", "protocol.path=spectral", "--set", "estimator.kind=irls"], &["protocol.path", "spectral"]),
        (&["--set", "protocol.kind=partial-labels"], &["protocol.pi", "required"]),
        (&["--set", "protocol.kind=partial-labels", "--set", "protocol.pi=1.5"], &["protocol.pi", "[0, 1]", "1.5"]),
        (
            &[
                "--set",
                "protocol.kind=partial-labels",
                "--set",
                "protocol.pi=0.0",
                "--set",
                "protocol.synthetic_rows=\"drop\"",
            ],
            &["protocol.pi", "drop", "at least one row"],
        ),
        (
            &[
                "--set",
                "protocol.kind=partial-labels",
                "--set",
                "protocol.pi=0.5",
                "--set",
                "protocol.synthetic_rows=\"half\"",
            ],
            &["protocol.synthetic_rows", "`keep` or `drop`"],
        ),
        (
            &[
                "--set",
                "protocol.kind=partial-labels",
                "--set",
                "protocol.pi=0.5",
                "--set",
                "protocol.synthetic_rows=[\"keep\", 3]",
            ],
            &["protocol.synthetic_rows", "strings"],
        ),
        (&["--set", "protocol.kind=fresh-covariates", "--set", "protocol.pi=0.5"], &["protocol", "unknown field `pi`"]),
        (&["--set", "policy.kind=accumulate-subsample", "--set", "policy.rows=0"], &["policy.rows", ">= 1"]),
        (
            &["--set", "policy.kind=accumulate-subsample", "--set", "protocol.path=spectral"],
            &["protocol.path", "subsamples"],
        ),
    ];
    for (k, (extra, needles)) in cases.iter().enumerate() {
        let out = dir.path().join(format!("out{k}"));
        let mut args = vec!["run", s, "--out", out.to_str().unwrap(), "--quiet"];
        args.extend_from_slice(extra);
        let o = run(&args);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {err}");
        for n in *needles {
            assert!(err.contains(n), "{extra:?}: message lacks `{n}`: {err}");
        }
        assert_eq!(err.trim().lines().count(), 1, "{extra:?}: not one line: {err}");
        assert!(!out.exists(), "{extra:?}: output directory was created");
    }
}

/// A sweep inside a kind's own table multiplies only that kind's cells, and its values
/// reach the right cells.
#[test]
fn per_kind_sweeps_apply_to_their_kind_only() {
    let dir = tempfile::tempdir().unwrap();
    let text = BASE.replace(
        "kind = \"ridge\"\nlambda = [0.0, 0.5]",
        "kind = [\"pcr\", \"min-norm\"]\n[estimator.pcr]\nk = [5, 20]",
    );
    let scenario = write_scenario(dir.path(), &text);
    let out = dir.path().join("out");
    let o = run(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let summary = read_parquet(&out.join("summary.parquet")).unwrap();
    let est = str_col(&summary, "estimator");
    let k = summary.column("estimator.k").unwrap().f64().unwrap().clone();
    let mut cells: Vec<(String, Option<i64>)> =
        (0..summary.height()).map(|i| (est[i].clone().unwrap(), k.get(i).map(|x| x as i64))).collect();
    cells.sort();
    cells.dedup();
    assert_eq!(
        cells,
        vec![("min-norm".into(), None), ("pcr".into(), Some(5)), ("pcr".into(), Some(20))],
        "3 estimator cells (× 2 w)"
    );
    // pcr at k = 20 = rank(X) (n = 20 < p) is min-norm: identical risks, draw for draw.
    let runs = read_parquet(&out.join("runs.parquet")).unwrap();
    let (risk, rep, t, w) = (
        f64_col(&runs, "risk"),
        i64_col(&runs, "replicate"),
        i64_col(&runs, "iteration"),
        f64_col(&runs, "schedule.w"),
    );
    let est = str_col(&runs, "estimator");
    let k = runs.column("estimator.k").unwrap().f64().unwrap().clone();
    let mut by = std::collections::BTreeMap::new();
    for i in 0..runs.height() {
        let label = format!("{}{:?}", est[i].as_deref().unwrap(), k.get(i).map(|x| x as i64));
        by.insert((label, rep[i], t[i], w[i].to_bits()), risk[i]);
    }
    let mut compared = 0;
    for ((label, r, t, w), v) in &by {
        if label == "pcrSome(20)" {
            let other = by[&("min-norm".to_string() + "None", *r, *t, *w)];
            assert!((v - other).abs() <= 1e-12 * v.max(1.0), "{v} vs {other}");
            compared += 1;
        }
    }
    assert_eq!(compared, 2 * 6 * 5);
    // An invalid value in the kind's table is named by its real path.
    let out = dir.path().join("bad");
    let o =
        run(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--set", "estimator.pcr.k=[5,50]"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains("estimator.pcr.k: must be at most min(design.n, design.p) = 20, got 50"),
        "{}",
        stderr(&o)
    );
    assert!(!out.exists());
}

#[test]
fn ols_with_more_features_than_samples_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    let text = BASE.replace("kind = \"ridge\"\nlambda = [0.0, 0.5]", "kind = \"ols\"");
    let scenario = write_scenario(dir.path(), &text);
    let out = dir.path().join("out");
    let o = run(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("estimator.kind") && err.contains("n >= design.p") && err.contains("min-norm"), "{err}");
    assert!(!out.exists());
}

#[test]
fn unwritable_out_is_rejected_before_running() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), BASE);
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for out in [file.join("sub"), file.clone()] {
        let o = run(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
        let err = stderr(&o);
        assert_eq!(o.status.code(), Some(2), "{err}");
        assert!(err.contains("--out"), "{err}");
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
}

#[test]
fn unknown_scenario_and_missing_file_are_user_errors() {
    let o = run(&["run", "no-such-scenario", "--quiet"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("golden-ratio"), "{}", stderr(&o));
    let o = run(&["validate", "missing.toml"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("does not exist"));
    let o = run(&["frobnicate"]);
    assert_eq!(o.status.code(), Some(2));
}

#[test]
fn invalid_toml_names_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = write_scenario(dir.path(), "name = \"x\"\nreplicates = [");
    let o = run(&["validate", scenario.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("scenario.toml") && stderr(&o).contains("invalid TOML"), "{}", stderr(&o));
}

#[test]
fn list_describe_schema_validate() {
    let o = run(&["list", "--json"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let names: Vec<String> = v
        .as_array()
        .unwrap()
        .iter()
        .map(|p| format!("{}/{}", p["kind"].as_str().unwrap(), p["name"].as_str().unwrap()))
        .collect();
    // The registry's contents are pinned: a plugin that silently fails to link (an
    // empty inventory) or an unintended new name fails here.
    let mut expected = vec![
        "estimator/min-norm",
        "estimator/ols",
        "estimator/ridge",
        "covariance/ar1",
        "covariance/diagonal",
        "covariance/equicorrelated",
        "covariance/isotropic",
        "covariance/power-law",
        "covariance/spiked",
        "signal/aligned",
        "signal/fixed",
        "signal/power-law",
        "signal/random",
        "schedule/constant",
        "schedule/dynamic",
        "schedule/golden-ratio",
        "schedule/list",
        "schedule/optimal",
        "protocol/fresh-labels",
        "protocol/fixed-labels",
        "protocol/fresh-covariates",
        "protocol/partial-labels",
        "policy/replace",
        "policy/accumulate",
        "policy/accumulate-subsample",
        "family/linear-gaussian",
        "family/logistic",
        "estimator/pcr",
        "estimator/irls",
        "estimator/mle",
        "covariance/table",
        "family/gaussian",
        "family/poisson",
        "family/ecdf",
        "family/kernel-regression",
        "protocol/weighted",
        "schedule/p3-optimal",
        "schedule/pooling",
        "scenario/fully-synthetic",
        "scenario/golden-ratio-families",
        "scenario/optimal-weight-vs-k",
        "scenario/real-data",
        "scenario/fixed-labels-collapse",
        "scenario/dynamic-vs-constant",
        "scenario/golden-ratio",
        "scenario/optimal-w-ridge",
        "scenario/ridge-mixing",
        "scenario/risk-vs-w",
        "scenario/collapse-or-not",
        "scenario/fresh-covariates-optimal-w",
        "scenario/partial-labels",
        "scenario/replace-vs-accumulate",
        "protocol/generational-chain",
        "estimator/tuned-ridge",
        "scenario/chain-linear",
        "scenario/chain-overparametrized",
        "scenario/scaling-law-crossover",
        "scenario/adaptive-regularization",
    ];
    let mut names = names;
    names.sort();
    expected.sort();
    assert_eq!(names, expected);
    let o = run(&["describe", "estimator", "ridge"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success());
    assert!(text.contains("lambda") && text.contains(">= 0") && text.contains("example"), "{text}");
    let o = run(&["describe", "estimator", "lasso"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("ridge"));
    let o = run(&["schema"]);
    assert!(o.status.success());
    let schema: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    // Every reference resolves inside the document (plugins' own $defs are hoisted).
    fn refs(v: &serde_json::Value, out: &mut Vec<String>) {
        match v {
            serde_json::Value::Object(m) => {
                if let Some(r) = m.get("$ref").and_then(|r| r.as_str()) {
                    out.push(r.to_string());
                }
                m.values().for_each(|x| refs(x, out));
            }
            serde_json::Value::Array(a) => a.iter().for_each(|x| refs(x, out)),
            _ => {}
        }
    }
    let mut all = Vec::new();
    refs(&schema, &mut all);
    assert!(!all.is_empty());
    for r in all {
        let name = r.strip_prefix("#/$defs/").unwrap_or_else(|| panic!("non-local $ref {r}"));
        assert!(schema["$defs"].get(name).is_some(), "dangling $ref {r}");
    }
    let variants = schema["properties"]["estimator"]["oneOf"].as_array().unwrap();
    assert!(variants.iter().any(|v| v["properties"]["kind"]["const"] == "ridge"));
    // Narrowing a kind sweep leaves the other kinds' sub-tables unused, not erroneous.
    let o = run(&["validate", "optimal-w-ridge", "--set", "covariance.kind=spiked"]);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(String::from_utf8_lossy(&o.stdout).contains("6 cells"), "{}", String::from_utf8_lossy(&o.stdout));
    let o = run(&["validate", "golden-ratio", "--set", "replicates=5"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(text.contains("13 cells") && text.contains("5 replicates"), "{text}");
}

/// The main result: the best printed w is within 0.05 of 1/φ, and the final risk at
/// w ≈ 0.618 agrees with B + c(w)V (isotropic: B = r²(1 − 1/γ), V = σ²/(γ − 1)) within
/// 4 standard errors plus the finite-n gap c(w)·σ²·(n/(p−n−1) − 1/(γ−1)).
#[test]
fn golden_ratio_scenario_finds_inverse_golden_ratio() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gr");
    let o = run(&["run", "golden-ratio", "--out", out.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&o.stdout).into_owned();
    assert!(o.status.success(), "{}", stderr(&o));
    let best_line = text.lines().find(|l| l.contains("best schedule.w")).unwrap();
    let best: f64 = best_line.split('=').nth(1).unwrap().split_whitespace().next().unwrap().parse().unwrap();
    assert!((best - 0.618).abs() <= 0.05, "{best_line}");
    let summary = read_parquet(&out.join("summary.parquet")).unwrap();
    let (t, w, mean, se) = (
        i64_col(&summary, "iteration"),
        f64_col(&summary, "w"),
        f64_col(&summary, "risk_mean"),
        f64_col(&summary, "risk_se"),
    );
    let last = *t.iter().max().unwrap();
    let k = (0..summary.height()).find(|&i| t[i] == last && (w[i] - 0.618).abs() < 1e-9).unwrap();
    let (n, p, gamma) = (200.0, 400.0, 2.0);
    let c = |w: f64| (w * w + (1.0 - w) * (1.0 - w)) / (w * (2.0 - w));
    let limit = (1.0 - 1.0 / gamma) + c(0.618) / (gamma - 1.0);
    let gap = c(0.618) * (n / (p - n - 1.0) - 1.0 / (gamma - 1.0));
    assert!((mean[k] - limit).abs() <= 4.0 * se[k] + gap, "risk {} ± {} vs {limit} (+{gap})", mean[k], se[k]);
    let theory = f64_col(&summary, "risk_theory");
    assert!((theory[k] - limit).abs() < 1e-6, "risk_theory {} vs {limit}", theory[k]);
    // Simulation and the exact conditional risk agree by z-score in every cell.
    let z = f64_col(&summary, "risk_z_exact");
    for i in (0..summary.height()).filter(|&i| t[i] == last) {
        assert!(z[i].abs() < 4.0, "w = {}: z_exact = {}", w[i], z[i]);
    }
}

/// `collapse theory optimal-w-ridge`: w*(λ) within [1/2, 1] and increasing over the
/// scenario's λ for every covariance; `--out` writes theory.parquet; `--curve lambda`
/// covers the grid and reports whether w* dips below 1/φ.
#[test]
fn theory_command_reports_optimal_weights() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("th");
    let o = run(&["theory", "optimal-w-ridge", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}", stderr(&o));
    let t = read_parquet(&out.join("theory.parquet")).unwrap();
    let label_col = t.column("label").unwrap().str().unwrap();
    let labels: Vec<String> = (0..t.height()).map(|i| label_col.get(i).unwrap().to_string()).collect();
    let (lambda, w_star) = (f64_col(&t, "lambda"), f64_col(&t, "w_star"));
    for cov in ["isotropic", "power-law", "spiked", "equicorrelated"] {
        let mut points: Vec<(f64, f64)> = (0..t.height())
            .filter(|&i| labels[i].contains(&format!("covariance=\"{cov}\"")) && labels[i].contains("\"optimal\""))
            .map(|i| (lambda[i], w_star[i]))
            .collect();
        points.sort_by(|a, b| a.0.total_cmp(&b.0));
        assert_eq!(points.len(), 3, "{cov}");
        assert!(points.iter().all(|(_, w)| (0.5..=1.0).contains(w)), "{cov}: {points:?}");
        assert!(points.windows(2).all(|p| p[1].1 > p[0].1 || (p[1].1 - 1.0).abs() < 1e-12), "{cov}: {points:?}");
    }
    let o = run(&["theory", "ridge-mixing", "--curve", "lambda", "--points", "50"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert!(o.status.success(), "{}", stderr(&o));
    assert!(text.contains("within [1/2, 1]: true") && text.contains("50 points"), "{text}");
    let o = run(&["theory", "golden-ratio", "--log-lambda-min", "2", "--log-lambda-max", "1", "--curve", "lambda"]);
    assert_eq!(o.status.code(), Some(2));
}
