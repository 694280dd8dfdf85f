//! The bad-input panel: every case runs the real binary and must exit with code 2, print
//! one line naming the field or file and what is allowed, write no output directory and no
//! partial file, and never panic.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::Command;

const BIN: &str = env!("CARGO_BIN_EXE_collapse");

const BASE: &str = r#"name = "panel"
seed = 1
replicates = 3
iterations = 2
[design]
n = 20
p = 30
[estimator]
kind = "ridge"
lambda = 0.1
[schedule]
kind = "constant"
w = 0.6
"#;

/// A case: how to build the scenario (None: BASE), extra arguments, and what the message
/// must contain.
struct Case {
    name: &'static str,
    scenario: Scenario,
    args: &'static [&'static str],
    needles: &'static [&'static str],
}

enum Scenario {
    Base,
    /// BASE with `from` replaced by `to`.
    Edit(&'static str, &'static str),
    /// BASE with these lines appended.
    Append(&'static str),
    /// These bytes as the scenario file.
    Bytes(&'static [u8]),
    /// A directory instead of a file.
    Directory,
}

fn cases() -> Vec<Case> {
    use Scenario::*;
    let c = |name, scenario, args, needles| Case { name, scenario, args, needles };
    vec![
        // Files.
        c("non-UTF-8 file", Bytes(b"name = \"x\"\n\xff\xfe\n"), &[], &["not UTF-8"]),
        c("empty file", Bytes(b""), &[], &["name", "missing"]),
        c("directory as scenario", Directory, &[], &["is a directory"]),
        c("invalid TOML", Bytes(b"name = \n"), &[], &["invalid TOML"]),
        // NaN and infinities in every kind of numeric field.
        c("NaN real parameter", Edit("lambda = 0.1", "lambda = nan"), &[], &["estimator.lambda", "finite"]),
        c("inf weight", Edit("w = 0.6", "w = inf"), &[], &["schedule.w", "finite"]),
        c("-inf signal radius", Append("[signal]\nkind = \"random\"\nradius = -inf\n"), &[], &["signal.radius", "finite"]),
        c("NaN size", Edit("n = 20", "n = nan"), &[], &["design.n", "finite"]),
        c("inf count", Edit("replicates = 3", "replicates = inf"), &[], &["replicates", "finite"]),
        c("NaN seed", Edit("seed = 1", "seed = nan"), &[], &["seed", "finite"]),
        c("NaN in a list parameter", Append("[covariance]\nkind = \"spiked\"\nspikes = [1.0, nan]\n"), &[], &["covariance.spikes[1]", "finite"]),
        c("NaN in a sweep list", Edit("w = 0.6", "w = [0.5, nan]"), &[], &["schedule.w[1]", "finite"]),
        c("inf in a range", Edit("w = 0.6", "w = { from = 0.1, to = inf, steps = 3 }"), &[], &["schedule.w.to", "finite"]),
        c("inf in a logspace", Edit("lambda = 0.1", "lambda = { logspace = [-1, inf], steps = 3 }"), &[], &["estimator.lambda.logspace[1]", "finite"]),
        c("NaN noise", Append("[family]\nnoise_sd = nan\n"), &[], &["family.noise_sd", "finite"]),
        // Negative and fractional counts.
        c("negative replicates", Edit("replicates = 3", "replicates = -1"), &[], &["replicates", ">= 1"]),
        c("negative iterations", Edit("iterations = 2", "iterations = -5"), &[], &["iterations", ">= 0"]),
        c("negative size", Edit("n = 20", "n = -20"), &[], &["design.n"]),
        c("negative seed", Edit("seed = 1", "seed = -1"), &[], &["seed", ">= 0"]),
        c("fractional replicates", Edit("replicates = 3", "replicates = 2.5"), &[], &["replicates", "integer"]),
        c("fractional size", Edit("p = 30", "p = 30.5"), &[], &["design.p"]),
        c("fractional sweep of an integer", Edit("p = 30", "p = [30, 40.5]"), &[], &["design.p", "not a non-negative integer"]),
        c("fractional integer parameter", Edit("kind = \"ridge\"\nlambda = 0.1", "kind = \"pcr\"\nk = 2.5"), &[], &["estimator.k"]),
        // Sweeps.
        c("grid beyond the cell limit", Edit("lambda = 0.1", "lambda = { from = 0, to = 1, steps = 2000 }\n[schedule.constant]\n"), &["--set", "schedule.w={ from = 0, to = 1, steps = 1000 }"], &["scenario", "cells"]),
        c("empty sweep list", Edit("w = 0.6", "w = []"), &[], &["schedule.w", "empty list"]),
        c("zero steps", Edit("w = 0.6", "w = { from = 0, to = 1, steps = 0 }"), &[], &["schedule.w", "steps"]),
        c("kind listed twice", Edit("kind = \"ridge\"", "kind = [\"ridge\", \"ridge\"]"), &[], &["estimator.kind", "twice"]),
        // Oversize design.
        c("oversize design", Base, &["--set", "design.n=1000000000", "--set", "design.p=80", "--set", "protocol.fast_design=false"], &["design.n × design.p", "GiB"]),
        // Inconsistent vector lengths.
        c("eigenvalues of the wrong length", Append("[covariance]\nkind = \"diagonal\"\neigenvalues = [1.0, 2.0]\n"), &[], &["covariance.eigenvalues", "design.p = 30"]),
        c("fixed signal of the wrong length", Append("[signal]\nkind = \"fixed\"\nvector = [1.0, 2.0, 3.0]\n"), &[], &["signal.vector", "design.p = 30"]),
        c("list schedule of the wrong length", Edit("kind = \"constant\"\nw = 0.6", "kind = \"list\"\nw = [0.5, 0.5, 0.5]"), &[], &["schedule", "iterations = 2"]),
        // Unknown keys at each level.
        c("unknown top-level key", Edit("seed = 1", "seed = 1\nfoo = 1"), &[], &["foo", "unknown key"]),
        c("unknown design key", Edit("p = 30", "p = 30\nq = 3"), &[], &["design.q", "unknown field"]),
        c("unknown plugin parameter", Edit("lambda = 0.1", "lambda = 0.1\nlamda = 2"), &[], &["estimator.lamda", "unknown field"]),
        c("unknown per-kind parameter", Edit("kind = \"ridge\"\nlambda = 0.1", "kind = [\"ridge\", \"pcr\"]\n[estimator.ridge]\nlambda = 0.1\n[estimator.pcr]\nkk = 3"), &[], &["estimator.pcr.kk", "unknown field"]),
        c("unknown output key", Append("[output]\nrows = \"all\"\n"), &[], &["output.rows", "unknown field"]),
        c("unknown output value", Append("[output]\nruns = \"some\"\n"), &[], &["output.runs", "all"]),
        c("unknown report key", Append("[report]\nclaim = \"x\"\n"), &[], &["report.claim", "unknown field"]),
        c("unknown claim check", Append("[[report.claims]]\nclaim = \"x\"\ncheck = \"maximal\"\n"), &[], &["report.claims[0].check"]),
        c("claim without its field", Append("[[report.claims]]\nclaim = \"x\"\ncheck = \"argmin\"\nexpect = 0.6\n"), &[], &["report.claims[0].param", "missing"]),
        c("unknown plugin", Edit("kind = \"ridge\"", "kind = \"lasso\""), &[], &["estimator.kind", "unknown estimator `lasso`", "ridge"]),
        c("renamed section", Append("[setting]\nkind = \"fresh-labels\"\n"), &[], &["setting", "[protocol]"]),
        c("moved key", Edit("p = 30", "p = 30\nnoise_sd = 1.0"), &[], &["design.noise_sd", "[family]"]),
        // Wrong types.
        c("text for a number", Edit("lambda = 0.1", "lambda = \"small\""), &[], &["estimator.lambda", "invalid type"]),
        c("number for a name", Edit("name = \"panel\"", "name = 5"), &[], &["name", "string"]),
        c("text for a boolean", Edit("seed = 1", "seed = 1\ncommon_random_numbers = \"yes\""), &[], &["common_random_numbers", "true or false"]),
        c(
            "number for a section",
            Bytes(b"name = \"x\"\nreplicates = 1\niterations = 1\nschedule = 3\n[design]\nn = 5\np = 5\n[estimator]\nkind = \"ols\"\n"),
            &[],
            &["schedule", "table"],
        ),
        // Flags.
        c("malformed --set", Base, &["--set", "estimator.lambda"], &["--set", "KEY=VALUE"]),
        c("--set with a bad value", Base, &["--set", "schedule.w=[0.5,"], &["--set schedule.w", "cannot parse"]),
        c("--set of an unknown key", Base, &["--set", "replicate=3"], &["unknown key `replicate`"]),
        c("--set too deep", Base, &["--set", "a.b.c.d=1"], &["--set", "not a valid key"]),
        c("--threads 0", Base, &["--threads", "0"], &["--threads"]),
        c("--shard out of range", Base, &["--shard", "5/4"], &["--shard", "1 <= I <= N"]),
        c("--max-memory not a size", Base, &["--max-memory", "lots"], &["--max-memory", "size"]),
        c("--runs not an option", Base, &["--runs", "some"], &["--runs"]),
    ]
}

fn scenario_file(dir: &Path, case: &Case) -> String {
    let path = dir.join(format!("{}.toml", case.name.replace(' ', "-")));
    match &case.scenario {
        Scenario::Base => std::fs::write(&path, BASE).unwrap(),
        Scenario::Edit(from, to) => {
            assert!(BASE.contains(from), "{}: BASE lacks `{from}`", case.name);
            std::fs::write(&path, BASE.replacen(from, to, 1)).unwrap();
        }
        Scenario::Append(extra) => std::fs::write(&path, format!("{BASE}{extra}")).unwrap(),
        Scenario::Bytes(b) => std::fs::write(&path, b).unwrap(),
        Scenario::Directory => std::fs::create_dir_all(&path).unwrap(),
    }
    path.to_str().unwrap().to_string()
}

#[test]
fn every_bad_input_exits_2_with_one_line_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    let cases = cases();
    assert!(cases.len() >= 40, "the panel has only {} cases", cases.len());
    let mut failures = Vec::new();
    for (k, case) in cases.iter().enumerate() {
        let file = scenario_file(dir.path(), case);
        let out = dir.path().join(format!("out-{k}"));
        let o = Command::new(BIN)
            .args(["run", &file, "--out", out.to_str().unwrap(), "--quiet"])
            .args(case.args)
            .output()
            .unwrap();
        let err = String::from_utf8_lossy(&o.stderr).into_owned();
        let mut problems = Vec::new();
        if o.status.code() != Some(2) {
            problems.push(format!("exit code {:?}", o.status.code()));
        }
        if err.contains("panicked") {
            problems.push("panicked".into());
        }
        // clap (argument errors) adds a hint line after its one-line error.
        let lines = err
            .trim()
            .lines()
            .filter(|l| {
                !l.trim().is_empty()
                    && !l.starts_with("For more information")
                    && !l.trim().starts_with("[possible values")
            })
            .count();
        if lines != 1 {
            problems.push(format!("{lines} lines"));
        }
        for n in case.needles {
            if !err.contains(n) {
                problems.push(format!("no `{n}`"));
            }
        }
        if out.exists() {
            problems.push("output directory created".into());
        }
        if !problems.is_empty() {
            failures.push(format!("{}: {}: {}", case.name, problems.join(", "), err.trim()));
        }
    }
    assert!(failures.is_empty(), "{} of {} cases failed:\n  {}", failures.len(), cases.len(), failures.join("\n  "));
}

/// Output-directory and multi-run cases: an existing file, an unwritable place, a merge
/// without parts, a resume of a directory without a run.
#[test]
fn directory_cases_exit_2_and_leave_what_was_there() {
    let dir = tempfile::tempdir().unwrap();
    let base = dir.path().join("base.toml");
    std::fs::write(&base, BASE).unwrap();
    let b = base.to_str().unwrap();
    let run = |args: &[&str]| Command::new(BIN).args(args).output().unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "x").unwrap();
    for out in [file.clone(), file.join("sub")] {
        let o = run(&["run", b, "--out", out.to_str().unwrap(), "-q"]);
        assert_eq!(o.status.code(), Some(2));
        assert!(String::from_utf8_lossy(&o.stderr).contains("--out"));
    }
    assert_eq!(std::fs::read_to_string(&file).unwrap(), "x");
    // (Parts of different scenarios: tests/shards.rs.) Merge of a directory without
    // parts, resume of a directory without a run.
    let o = run(&["merge", dir.path().join("none").to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let o = run(&["run", b, "--resume", empty.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("no unfinished run"));
}
