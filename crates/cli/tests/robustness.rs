//! Parser robustness: arbitrary TOML documents, arbitrary strings and arbitrary `--set`
//! values are either accepted or rejected with an error — never a panic — by parsing,
//! overriding, resolving and the CLI's own checks of a scenario. Documents are generated
//! from the scenario vocabulary (sections, plugin names, parameter names, sweep forms) so
//! that most of them get deep into resolution instead of failing on the first key.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use collapse_core::registry::Section;
use collapse_core::spec::{apply_override, parse, resolve};
use collapse_covariance as _;
use collapse_estimators as _;
use collapse_families as _;
use collapse_protocols as _;
use collapse_schedules as _;
use proptest::prelude::*;

/// Words that are not plugin parameters: the header, sections, output and report keys.
const OTHER_KEYS: &[&str] = &[
    "name",
    "seed",
    "replicates",
    "iterations",
    "common_random_numbers",
    "description",
    "design",
    "family",
    "signal",
    "covariance",
    "estimator",
    "schedule",
    "protocol",
    "policy",
    "output",
    "report",
    "setting",
    "n",
    "p",
    "kind",
    "runs",
    "compression",
    "claims",
    "claim",
    "check",
    "param",
    "expect",
    "where",
    "within",
    "against",
    "from",
    "to",
    "steps",
    "logspace",
];

/// Values of `kind`-like keys that are not plugin names.
const OTHER_KINDS: &[&str] = &["all", "final", "none", "argmin", "ones"];

/// Every registered plugin's name, and every parameter name in their schemas, with the
/// words above: a plugin added to any linked crate is fuzzed without editing this file.
fn vocabulary() -> &'static (Vec<String>, Vec<String>) {
    static WORDS: std::sync::OnceLock<(Vec<String>, Vec<String>)> = std::sync::OnceLock::new();
    WORDS.get_or_init(|| {
        let mut kinds: Vec<String> = OTHER_KINDS.iter().map(|k| k.to_string()).collect();
        let mut keys: Vec<String> = OTHER_KEYS.iter().map(|k| k.to_string()).collect();
        for section in Section::ALL {
            for name in section.plugin_names().unwrap() {
                kinds.push(name.to_string());
                let schema = section.schema(name).unwrap();
                if let Some(props) = schema.get("properties").and_then(|p| p.as_object()) {
                    keys.extend(props.keys().cloned());
                }
            }
        }
        for words in [&mut kinds, &mut keys] {
            words.sort();
            words.dedup();
        }
        (kinds, keys)
    })
}

fn kinds() -> Vec<String> {
    vocabulary().0.clone()
}

fn keys() -> Vec<String> {
    vocabulary().1.clone()
}

/// A TOML value from the vocabulary: numbers near the boundaries, names, lists, sweeps.
fn value() -> impl Strategy<Value = String> {
    let leaf = prop_oneof![
        prop::sample::select(vec![
            "0", "1", "2", "3", "5", "20", "40", "-1", "0.5", "0.618", "1.5", "-0.5", "1e-300", "1e300", "nan", "inf",
            "-inf", "2.5", "100000", "true", "false"
        ])
        .prop_map(str::to_string),
        prop::sample::select(kinds()).prop_map(|k| format!("\"{k}\"")),
        "[a-z\\-]{0,8}".prop_map(|s| format!("\"{s}\"")),
    ];
    leaf.prop_recursive(2, 8, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..4).prop_map(|v| format!("[{}]", v.join(", "))),
            (prop::sample::select(keys()), inner.clone(), prop::sample::select(keys()), inner)
                .prop_map(|(a, x, b, y)| format!("{{ {a} = {x}, {b} = {y} }}")),
        ]
    })
}

/// A scenario document: mostly valid headers and sections, with random keys and values.
fn document() -> impl Strategy<Value = String> {
    let header = (0..5usize, 0..4usize, 1..4usize).prop_map(|(r, i, n)| {
        format!(
            "name = \"fuzz\"\nseed = 3\nreplicates = {}\niterations = {i}\n[design]\nn = {}\np = {}\n",
            r.max(1),
            4 * n,
            3 * n
        )
    });
    let section = (
        prop::sample::select(Section::ALL.iter().map(|s| s.name()).chain(["output"]).collect::<Vec<_>>()),
        prop::sample::select(kinds()),
        prop::collection::vec((prop::sample::select(keys()), value()), 0..3),
    )
        .prop_map(|(s, k, kv)| {
            let mut t = format!("[{s}]\nkind = \"{k}\"\n");
            for (key, v) in kv {
                t.push_str(&format!("{key} = {v}\n"));
            }
            t
        });
    (header, prop::collection::vec(section, 0..5), prop::bool::ANY).prop_map(|(h, sections, estimator)| {
        let mut text = h;
        if estimator {
            text.push_str("[estimator]\nkind = \"ridge\"\nlambda = 0.1\n[schedule]\nkind = \"constant\"\nw = 0.5\n");
        }
        for s in sections {
            text.push_str(&s);
        }
        text
    })
}

/// Parse, override, resolve and check the report: any outcome but a panic is fine.
fn exercise(text: &str, sets: &[String]) {
    let Ok(mut table) = parse(text, "fuzz") else { return };
    for s in sets {
        if apply_override(&mut table, s).is_err() {
            return;
        }
    }
    if let Ok(s) = resolve(&table) {
        let _ = collapse_cli::claims::parse_report(s.report.as_ref());
        let _ = s.to_toml();
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 6000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn generated_documents_never_panic(text in document()) {
        exercise(&text, &[]);
    }

    #[test]
    fn generated_overrides_never_panic(
        key in prop::collection::vec(prop::sample::select(keys()), 1..4),
        v in value(),
    ) {
        let text = "name = \"fuzz\"\nreplicates = 2\niterations = 2\n[design]\nn = 8\np = 6\n[estimator]\nkind = \"ridge\"\nlambda = 0.1\n[schedule]\nkind = \"constant\"\nw = 0.5\n";
        exercise(text, &[format!("{}={v}", key.join("."))]);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 3000, failure_persistence: None, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_strings_never_panic(text in "\\PC{0,200}", set in "\\PC{0,40}") {
        exercise(&text, &[]);
        exercise("name = \"x\"\nreplicates = 1\niterations = 1\n[design]\nn = 4\np = 3\n[estimator]\nkind = \"ols\"\n", &[set]);
    }
}
