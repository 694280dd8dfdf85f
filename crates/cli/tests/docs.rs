//! The math lives in the repository: every `docs/<file>.md §N` reference in the code, the
//! docs, the README and the output of `collapse describe` for every plugin points to a
//! heading that exists, and nothing cites the reference notes kept outside the repository.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::{Path, PathBuf};
use std::process::Command;

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..")
}

fn files(dir: &Path, ext: &str, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        let name = path.file_name().and_then(|n| n.to_str()).unwrap_or("");
        if path.is_dir() && !name.starts_with('.') && name != "target" {
            files(&path, ext, out);
        } else if path.extension().is_some_and(|e| e == ext) {
            out.push(path);
        }
    }
}

/// Every (file, section) cited in `text`: `docs/x.md §3`, `x.md §3.1`, and the list
/// forms `docs/x.md §3, §4` and `§2–§3` that continue the same file.
fn citations(text: &str) -> Vec<(String, String)> {
    let mut out = Vec::new();
    let s = text;
    let mut search = 0;
    while let Some(pos) = s[search..].find(".md §") {
        let at = search + pos;
        // The file stem: letters, digits and `-` before ".md".
        let stem_start = s[..at].rfind(|c: char| !(c.is_ascii_alphanumeric() || c == '-')).map(|i| i + 1).unwrap_or(0);
        let stem = s[stem_start..at].to_string();
        let mut rest = &s[at + ".md ".len()..];
        while let Some(tail) = rest.strip_prefix('§') {
            let number: String = tail.chars().take_while(|c| c.is_ascii_digit() || *c == '.').collect();
            let number = number.trim_end_matches('.').to_string();
            if number.is_empty() {
                break;
            }
            out.push((stem.clone(), number.clone()));
            rest = &tail[number.len()..];
            let next = rest.trim_start_matches([',', ';', ' ', '–', '-', '/']).trim_start_matches("and ");
            if next.starts_with('§') && rest.len() - next.len() <= 4 {
                rest = next;
            } else {
                break;
            }
        }
        search = at + ".md §".len();
    }
    out
}

fn headings(file: &Path) -> Vec<String> {
    std::fs::read_to_string(file)
        .unwrap_or_default()
        .lines()
        .filter(|l| l.starts_with('#'))
        .map(|l| l.trim_start_matches('#').trim().to_string())
        .collect()
}

fn check(source: &str, text: &str, problems: &mut Vec<String>) -> usize {
    let docs = root().join("docs");
    let mut n = 0;
    for (stem, section) in citations(text) {
        n += 1;
        let file = docs.join(format!("{stem}.md"));
        if !file.is_file() {
            problems.push(format!("{source}: cites docs/{stem}.md §{section}, but there is no docs/{stem}.md"));
            continue;
        }
        let found = headings(&file)
            .iter()
            .any(|h| h.strip_prefix(section.as_str()).is_some_and(|r| r.starts_with(". ") || r.starts_with(' ')));
        if !found {
            problems.push(format!("{source}: cites docs/{stem}.md §{section}, which has no such heading"));
        }
    }
    n
}

#[test]
fn every_section_reference_resolves() {
    let root = root();
    let mut paths = Vec::new();
    for dir in ["crates", "examples", "docs", "bench"] {
        files(&root.join(dir), "rs", &mut paths);
        files(&root.join(dir), "md", &mut paths);
        files(&root.join(dir), "toml", &mut paths);
    }
    paths.push(root.join("README.md"));
    let mut problems = Vec::new();
    let mut cited = 0;
    let outside = concat!("THEORY", ".md");
    for path in paths.iter().filter(|p| !p.ends_with("tests/docs.rs")) {
        let text = std::fs::read_to_string(path).unwrap();
        if text.contains(outside) {
            problems.push(format!("{}: cites {outside}, which is not in the repository", path.display()));
        }
        cited += check(&path.display().to_string(), &text, &mut problems);
    }
    // `collapse describe` for every plugin.
    let bin = env!("CARGO_BIN_EXE_collapse");
    let list = Command::new(bin).args(["list", "--json"]).output().unwrap();
    let plugins: Vec<serde_json::Value> = serde_json::from_slice(&list.stdout).unwrap();
    for p in &plugins {
        let (kind, name) = (p["kind"].as_str().unwrap(), p["name"].as_str().unwrap());
        let o = Command::new(bin).args(["describe", kind, name]).output().unwrap();
        assert!(o.status.success(), "describe {kind} {name}: {}", String::from_utf8_lossy(&o.stderr));
        cited += check(&format!("collapse describe {kind} {name}"), &String::from_utf8_lossy(&o.stdout), &mut problems);
    }
    assert!(problems.is_empty(), "{} broken references:\n  {}", problems.len(), problems.join("\n  "));
    assert!(cited > 100, "only {cited} citations found: is the scanner broken?");
}

#[test]
fn the_citation_scanner_reads_lists_and_relative_links() {
    let c = citations("see docs/fresh-labels.md §3, §4 and [numerics.md §1](numerics.md); docs/asymptotics.md §7.1.");
    assert_eq!(
        c,
        vec![
            ("fresh-labels".to_string(), "3".to_string()),
            ("fresh-labels".to_string(), "4".to_string()),
            ("numerics".to_string(), "1".to_string()),
            ("asymptotics".to_string(), "7.1".to_string()),
        ]
    );
}
