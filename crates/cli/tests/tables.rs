//! Data-table designs through the real binary (docs/weighted.md §5): bad tables are
//! rejected with exit code 2, a message naming the field, and no output; a good one runs
//! and its hash reaches manifest.json and scenario.toml; the registered `real-data`
//! scenario reads the shipped table from the binary with the same bytes as its file.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_collapse"))
}

fn scenario(features: &str, path: &str) -> String {
    format!(
        "name = \"tbl\"\nseed = 1\nreplicates = 2\niterations = 2\n[design]\nn = 20\np = 2\n[family]\nkind = \"logistic\"\n\
         [covariance]\nkind = \"table\"\npath = \"{path}\"\nfeatures = [{features}]\nlabel = \"y\"\n\
         [estimator]\nkind = \"irls\"\nlambda = 0.1\n[schedule]\nkind = \"constant\"\nw = 0.6\n[protocol]\nkind = \"weighted\"\n"
    )
}

fn run_in(dir: &Path, text: &str) -> (Output, std::path::PathBuf) {
    let file = dir.join("s.toml");
    std::fs::write(&file, text).unwrap();
    let out = dir.join("out");
    let o = bin().args(["run", file.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]).output().unwrap();
    (o, out)
}

fn table(dir: &Path, name: &str, text: &str) {
    std::fs::create_dir_all(dir.join("data")).unwrap();
    std::fs::write(dir.join("data").join(name), text).unwrap();
}

const GOOD: &str = "a,b,y,note\n0.1,1.2,0,x\n-0.4,0.3,1,y\n1.5,-0.2,1,z\n0.7,0.9,0,w\n-1.1,-0.6,0,v\n0.2,2.0,1,u\n";

#[test]
fn bad_tables_exit_2_with_the_field_and_no_output() {
    let dir = tempfile::tempdir().unwrap();
    table(dir.path(), "good.csv", GOOD);
    table(dir.path(), "empty.csv", "a,b,y\n");
    table(dir.path(), "text.csv", "a,b,y\n0.1,1.0,0\n0.2,oops,1\n");
    let cases = [
        (scenario("\"a\", \"b\"", "data/missing.csv"), "covariance.path", "cannot read"),
        (scenario("\"a\", \"zz\"", "data/good.csv"), "covariance.features", "no column `zz`"),
        (scenario("\"a\", \"note\"", "data/good.csv"), "covariance.features", "not numeric"),
        (scenario("\"a\", \"b\"", "data/text.csv"), "covariance.features", "not numeric"),
        (scenario("\"a\", \"b\"", "data/empty.csv"), "covariance.path", "no rows"),
        (
            scenario("\"a\", \"b\"", "data/good.csv").replace("label = \"y\"", "label = \"nope\""),
            "covariance.label",
            "no column",
        ),
    ];
    for (text, field, what) in cases {
        let (o, out) = run_in(dir.path(), &text);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{field}: {err}");
        assert!(err.contains(field) && err.contains(what), "expected `{field}` and `{what}` in: {err}");
        assert!(!out.exists(), "{field}: output written despite the error");
    }
}

#[test]
fn a_good_table_runs_and_records_its_hash() {
    let dir = tempfile::tempdir().unwrap();
    table(dir.path(), "good.csv", GOOD);
    let (o, out) = run_in(dir.path(), &scenario("\"a\", \"b\"", "data/good.csv"));
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let manifest: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("manifest.json")).unwrap()).unwrap();
    let hash = collapse_core::file_hash(GOOD.as_bytes());
    assert_eq!(manifest["data"][0]["hash"], hash.as_str(), "{manifest}");
    assert_eq!(manifest["data"][0]["rows"], 6);
    let written = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    assert!(written.contains(&hash), "{written}");
    // A pinned hash that does not match the file is refused.
    let pinned = scenario("\"a\", \"b\"", "data/good.csv").replace("label = \"y\"", "label = \"y\"\nhash = \"00\"");
    std::fs::remove_dir_all(&out).unwrap();
    let (o, out) = run_in(dir.path(), &pinned);
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("covariance.hash"));
    assert!(!out.exists());
}

/// `collapse run real-data` (the shipped table inside the binary) and running its file
/// give the same numbers.
#[test]
fn registered_real_data_equals_its_file() {
    let dir = tempfile::tempdir().unwrap();
    let file = Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/real-data.toml");
    let mut outs = Vec::new();
    for (k, what) in ["real-data", file.to_str().unwrap()].into_iter().enumerate() {
        let out = dir.path().join(format!("o{k}"));
        let o = bin()
            .args([
                "run",
                what,
                "--out",
                out.to_str().unwrap(),
                "--quiet",
                "--set",
                "replicates=2",
                "--set",
                "iterations=3",
                "--runs",
                "none",
            ])
            .output()
            .unwrap();
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        outs.push(std::fs::read(out.join("summary.parquet")).unwrap());
    }
    assert_eq!(outs[0], outs[1]);
}
