//! Every registered plugin has a runnable example scenario in `crates/cli/scenarios/examples/`.
//!
//! The file for plugin `name` of kind `kind` is `scenarios/examples/<kind>-<name>.toml`
//! and must select that plugin explicitly (`[<kind>] kind = "<name>"`). Adding a plugin
//! without an example fails `every_plugin_has_an_example`; every example is run with
//! the real binary by `every_example_runs`.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_collapse");

/// Plugin kinds that are selected in a scenario section; registered scenarios are not.
const KINDS: [&str; 7] = ["family", "signal", "covariance", "estimator", "schedule", "protocol", "policy"];

fn examples_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("scenarios/examples")
}

/// (kind, name) of every registered plugin of the section kinds, from `collapse list --json`.
fn registered_plugins() -> Vec<(String, String)> {
    let out = Command::new(BIN).args(["list", "--json"]).output().expect("cannot start collapse");
    assert!(out.status.success(), "collapse list --json failed: {}", String::from_utf8_lossy(&out.stderr));
    let list: Vec<Value> = serde_json::from_slice(&out.stdout).expect("collapse list --json prints a JSON array");
    let plugins: Vec<(String, String)> = list
        .iter()
        .map(|p| {
            let field = |k: &str| p[k].as_str().unwrap_or_else(|| panic!("entry without `{k}`: {p}")).to_string();
            (field("kind"), field("name"))
        })
        .filter(|(kind, _)| KINDS.contains(&kind.as_str()))
        .collect();
    for kind in KINDS {
        assert!(plugins.iter().any(|(k, _)| k == kind), "no {kind} plugin registered? {plugins:?}");
    }
    plugins
}

fn example_files() -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(examples_dir())
        .expect("scenarios/examples/ exists")
        .map(|e| e.expect("readable directory entry").path())
        .filter(|p| p.extension().is_some_and(|e| e == "toml"))
        .collect();
    files.sort();
    files
}

#[test]
fn every_plugin_has_an_example() {
    let dir = examples_dir();
    let mut problems = Vec::new();
    for (kind, name) in registered_plugins() {
        let file = dir.join(format!("{kind}-{name}.toml"));
        let Ok(text) = std::fs::read_to_string(&file) else {
            problems.push(format!("{kind} `{name}`: missing scenarios/examples/{kind}-{name}.toml"));
            continue;
        };
        let table: toml::Table = match text.parse() {
            Ok(t) => t,
            Err(e) => {
                problems.push(format!("{}: invalid TOML: {e}", file.display()));
                continue;
            }
        };
        let selected = table.get(&kind).and_then(|s| s.get("kind")).and_then(toml::Value::as_str);
        if selected != Some(name.as_str()) {
            problems.push(format!("{}: must select the plugin with `[{kind}] kind = \"{name}\"`", file.display()));
        }
    }
    assert!(problems.is_empty(), "example scenarios are missing or wrong:\n  {}", problems.join("\n  "));
}

#[test]
fn every_example_is_named_after_a_registered_plugin() {
    let plugins = registered_plugins();
    let stale: Vec<String> = example_files()
        .iter()
        .filter_map(|f| {
            let stem = f.file_stem()?.to_str()?.to_string();
            let known = plugins.iter().any(|(kind, name)| stem == format!("{kind}-{name}"));
            (!known).then_some(stem)
        })
        .collect();
    assert!(stale.is_empty(), "example files for no registered plugin (expected <kind>-<name>.toml): {stale:?}");
}

#[test]
fn every_example_runs() {
    let files = example_files();
    assert!(!files.is_empty(), "no example scenarios found in {}", examples_dir().display());
    let tmp = tempfile::tempdir().expect("temporary directory");
    let mut failures = Vec::new();
    for file in &files {
        let stem = file.file_stem().and_then(|s| s.to_str()).expect("utf-8 file name");
        let out_dir = tmp.path().join(stem);
        let out = Command::new(BIN)
            .arg("run")
            .arg(file)
            .arg("--out")
            .arg(&out_dir)
            .args(["--quiet", "--threads", "1"])
            .output()
            .expect("cannot start collapse");
        if !out.status.success() {
            failures.push(format!(
                "{stem}: exit code {:?}: {}",
                out.status.code(),
                String::from_utf8_lossy(&out.stderr).trim()
            ));
            continue;
        }
        for artifact in ["runs.parquet", "summary.parquet", "scenario.toml", "manifest.json"] {
            if !out_dir.join(artifact).is_file() {
                failures.push(format!("{stem}: {artifact} was not written"));
            }
        }
    }
    assert!(failures.is_empty(), "{} of {} examples failed:\n  {}", failures.len(), files.len(), failures.join("\n  "));
}
