//! `collapse plot`, `collapse report` and `collapse reproduce` with the real binary: the
//! files open (SVG parses as XML, PNG decodes), the drawn marks match the data, the
//! report is one self-contained file, and reproduce prints a verdict per claim.
#![allow(clippy::unwrap_used, clippy::expect_used)] // tests: a failed unwrap is a failed test

use std::path::Path;
use std::process::{Command, Output};

mod common;

use collapse_cli::output::read_parquet;
use collapse_cli::plot::draw::{EXACT_SIDE, POINT_RADIUS, THEORY_WIDTH};
use serde_json::Value;

const BIN: &str = env!("CARGO_BIN_EXE_collapse");

fn run(args: &[&str]) -> Output {
    Command::new(BIN).args(args).output().expect("cannot start collapse")
}

fn text(o: &Output) -> (String, String) {
    (String::from_utf8_lossy(&o.stdout).into_owned(), String::from_utf8_lossy(&o.stderr).into_owned())
}

/// Marks in an SVG: (simulated means, exact means, theory lines).
fn marks(svg: &str) -> (usize, usize, usize) {
    let doc = roxmltree::Document::parse(svg).expect("the SVG parses as XML");
    assert_eq!(doc.root_element().tag_name().name(), "svg");
    let (mut points, mut exact, mut theory) = (0, 0, 0);
    let r = POINT_RADIUS.to_string();
    let side = EXACT_SIDE.to_string();
    let width = THEORY_WIDTH.to_string();
    for n in doc.descendants().filter(|n| n.is_element()) {
        match n.tag_name().name() {
            "circle" if n.attribute("r") == Some(&r) => points += 1,
            "rect" if n.attribute("width") == Some(&side) && n.attribute("fill") == Some("none") => exact += 1,
            "polyline" if n.attribute("stroke-width") == Some(&width) => theory += 1,
            _ => {}
        }
    }
    (points, exact, theory)
}

/// The "name: P panels, S series, N points, E exact, L theory lines" lines of `plot`.
fn described(stdout: &str) -> Vec<(String, [usize; 5])> {
    stdout
        .lines()
        .filter(|l| l.contains(" panel") && l.contains(" points"))
        .map(|l| {
            let (name, rest) = l.split_once(": ").unwrap();
            let nums: Vec<usize> =
                rest.split(", ").map(|part| part.split_whitespace().next().unwrap().parse().unwrap()).collect();
            (name.to_string(), [nums[0], nums[1], nums[2], nums[3], nums[4]])
        })
        .collect()
}

fn registered_scenarios() -> Vec<String> {
    let o = run(&["list", "scenario", "--json"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let list: Vec<Value> = serde_json::from_slice(&o.stdout).unwrap();
    list.iter().map(|p| p["name"].as_str().unwrap().to_string()).collect()
}

fn png_size(bytes: &[u8]) -> (u32, u32) {
    let (w, h, pixels) = collapse_cli::plot::raster::decode_png(bytes).expect("the PNG decodes");
    assert_eq!(pixels.len(), (w * h * 4) as usize);
    // Not blank: some pixels are far from white.
    let dark = pixels.chunks(4).filter(|p| p[0] < 128 && p[1] < 128 && p[2] < 128).count();
    assert!(dark > 500, "the PNG is almost blank ({dark} dark pixels)");
    (w, h)
}

fn svg_size(svg: &str) -> (u32, u32) {
    let doc = roxmltree::Document::parse(svg).unwrap();
    let root = doc.root_element();
    (root.attribute("width").unwrap().parse().unwrap(), root.attribute("height").unwrap().parse().unwrap())
}

/// Every registered scenario (few replicates): `collapse plot` writes an SVG and a PNG per
/// figure; the SVG holds as many means, exact means and theory lines as `plot` reports,
/// the PNG is the SVG at twice the size, and a theory line is drawn whenever the
/// summary has theory values.
#[test]
fn plot_draws_every_registered_scenario() {
    let dir = tempfile::tempdir().unwrap();
    for name in registered_scenarios() {
        let out = dir.path().join(&name);
        let o = run(&["run", &name, "--set", "replicates=3", "--out", out.to_str().unwrap(), "--quiet"]);
        assert!(o.status.success(), "{name}: {}", text(&o).1);
        let figs = out.join("figures");
        let o = run(&["plot", out.to_str().unwrap(), "--out", figs.to_str().unwrap()]);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{name}: {stderr}");
        let figures = described(&stdout);
        assert!(!figures.is_empty(), "{name}: no figure described in\n{stdout}");
        let summary = read_parquet(&out.join("summary.parquet")).unwrap();
        let has_theory = summary.column("risk_theory").is_ok()
            && common::f64_col(&summary, "risk_theory").iter().any(|x| x.is_finite());
        let mut theory_lines = 0;
        for (fig, [panels, series, points, exact, theory]) in &figures {
            assert!(*panels >= 1 && *series >= *panels && *points >= *series, "{name}/{fig}: {stdout}");
            let svg = std::fs::read_to_string(figs.join(format!("{fig}.svg"))).unwrap();
            assert_eq!(marks(&svg), (*points, *exact, *theory), "{name}/{fig}: marks in the SVG");
            let png = std::fs::read(figs.join(format!("{fig}.png"))).unwrap();
            let (w, h) = svg_size(&svg);
            assert_eq!(png_size(&png), (2 * w, 2 * h), "{name}/{fig}");
            theory_lines += theory;
        }
        if has_theory {
            assert!(theory_lines > 0, "{name}: summary has risk_theory but no figure draws a theory line");
        }
    }
}

/// golden-ratio's own figures: 13 values of w in one series with the dense theory curve
/// (minimum at 1/φ), and the risk against the iteration for the values it names.
#[test]
fn golden_ratio_figures_show_every_cell_and_the_dense_theory() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gr");
    let o = run(&["run", "golden-ratio", "--set", "replicates=4", "--out", out.to_str().unwrap(), "--quiet"]);
    assert!(o.status.success(), "{}", text(&o).1);
    let o = run(&["plot", out.to_str().unwrap(), "--format", "svg"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let figures = described(&stdout);
    let (name, counts) = &figures[0];
    assert_eq!(name, "risk-vs-w");
    assert_eq!(*counts, [1, 1, 13, 13, 1], "{stdout}");
    assert!(stdout.lines().next().unwrap().ends_with("(dense)"), "{stdout}");
    // The dense theory line has many more vertices than the 13 simulated values, and its
    // lowest vertex sits at w ≈ 1/φ.
    let svg = std::fs::read_to_string(out.join("figures/risk-vs-w.svg")).unwrap();
    let doc = roxmltree::Document::parse(&svg).unwrap();
    let line = doc
        .descendants()
        .find(|n| {
            n.tag_name().name() == "polyline" && n.attribute("stroke-width") == Some(THEORY_WIDTH.to_string().as_str())
        })
        .unwrap();
    let pts: Vec<(f64, f64)> = line
        .attribute("points")
        .unwrap()
        .split_whitespace()
        .map(|p| {
            let (x, y) = p.split_once(',').unwrap();
            (x.parse().unwrap(), y.parse().unwrap())
        })
        .collect();
    assert!(pts.len() > 40, "{} vertices", pts.len());
    // SVG y grows downwards; the curve is flat near its minimum, so take the middle of
    // the vertices drawn at the lowest pixel row.
    let bottom = pts.iter().map(|p| p.1).fold(f64::NEG_INFINITY, f64::max);
    let at_bottom: Vec<f64> = pts.iter().filter(|p| p.1 >= bottom - 0.5).map(|p| p.0).collect();
    let lowest = at_bottom.iter().sum::<f64>() / at_bottom.len() as f64;
    let (first, last) = (pts.first().unwrap().0, pts.last().unwrap().0);
    // The line spans the scenario's w range.
    let ws = common::f64_col(&read_parquet(&out.join("summary.parquet")).unwrap(), "schedule.w");
    let (w_lo, w_hi) = ws.iter().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), &w| (a.min(w), b.max(w)));
    let w = w_lo + (lowest - first) / (last - first) * (w_hi - w_lo);
    assert!((w - 0.618).abs() < 0.03, "theory minimum drawn at w ≈ {w}");
    assert!(!out.join("figures/risk-vs-w.png").exists(), "--format svg wrote a PNG");
}

#[test]
fn plot_errors_exit_2_and_name_what_is_allowed() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("gr");
    let o = run(&[
        "run",
        "golden-ratio",
        "--set",
        "replicates=2",
        "--set",
        "iterations=3",
        "--out",
        out.to_str().unwrap(),
        "--quiet",
    ]);
    assert!(o.status.success(), "{}", text(&o).1);
    let d = out.to_str().unwrap();
    let missing = dir.path().join("nope");
    let cases: &[(&[&str], &[&str])] = &[
        (&["plot", missing.to_str().unwrap()], &["is not a directory"]),
        (&["plot", dir.path().to_str().unwrap()], &["no summary.parquet"]),
        (&["plot", d, "--x", "schedule.v"], &["x: `schedule.v`", "schedule.w", "design.p"]),
        (&["plot", d, "--x", "estimator"], &["not numeric", "schedule.w"]),
        (&["plot", d, "--x", "iteration", "--y", "riskk"], &["y: `riskk`", "metrics: risk"]),
        (&["plot", d, "--x", "iteration", "--facet", "design.q"], &["facet: `design.q`", "design.p"]),
        (&["plot", d, "--format", "pdf"], &["pdf", "svg", "png"]),
        (&["report", missing.to_str().unwrap()], &["is not a directory"]),
        (&["reproduce", "p9"], &["unknown paper `p9`", "p1", "p2", "p3"]),
    ];
    for (args, needles) in cases {
        let o = run(args);
        let (_, stderr) = text(&o);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {stderr}");
        for n in *needles {
            assert!(stderr.contains(n), "{args:?}: `{n}` not in {stderr}");
        }
    }
    // A bad figure in a scenario is refused when the scenario is loaded, naming the field.
    let scenario = std::fs::read_to_string(out.join("scenario.toml")).unwrap();
    let bad = format!("{scenario}\n[[report.figures]]\nx = \"schedule.w\"\ncolour = \"estimator.lambda\"\n");
    let file = dir.path().join("bad.toml");
    std::fs::write(&file, bad).unwrap();
    let o = run(&["validate", file.to_str().unwrap()]);
    let (_, stderr) = text(&o);
    assert_eq!(o.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("report.figures[") && stderr.contains("colour") && stderr.contains("estimator.lambda"),
        "{stderr}"
    );
}

/// `run --report` writes report.html: one file that refers to nothing outside itself and
/// holds every figure and the final summary table.
#[test]
fn report_is_one_self_contained_file_with_figures_and_summary() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("rm");
    let o =
        run(&["run", "ridge-mixing", "--set", "replicates=4", "--out", out.to_str().unwrap(), "--quiet", "--report"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    assert!(stdout.contains("report.html"), "{stdout}");
    let html = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_self_contained(&html);
    let svgs = std::fs::read_dir(out.join("figures"))
        .unwrap()
        .filter(|e| e.as_ref().unwrap().path().extension().is_some_and(|x| x == "svg"))
        .count();
    assert!(svgs >= 1);
    assert_eq!(html.matches("<svg").count(), svgs, "every figure is inline");
    // The summary table: one row per cell (4 λ × 10 w), with z_exact.
    let table = &html[html.find("<table class=\"summary\">").unwrap()..];
    let table = &table[..table.find("</table>").unwrap()];
    assert_eq!(table.matches("<tr>").count(), 1 + 40);
    assert!(table.contains("z_exact"));
    for section in ["Claims", "Paired argmin", "manifest.json", "Scenario", "estimator.lambda"] {
        assert!(html.contains(section), "report lacks {section}");
    }
}

/// No network, no other file: no `http`, no `src=`, and links only to anchors of the page.
fn assert_self_contained(html: &str) {
    assert!(!html.contains("http"), "report mentions http");
    assert!(!html.contains("src="), "report has a src= attribute");
    for (k, _) in html.match_indices("href=") {
        let rest = &html[k + "href=".len()..];
        assert!(rest.starts_with("\"#"), "link to another file: {}", &rest[..rest.len().min(60)]);
    }
    assert!(html.starts_with("<!DOCTYPE html>") && html.trim_end().ends_with("</html>"));
}

/// `reproduce p1` (few replicates): every scenario tagged p1 runs, each claim gets a
/// verdict line, and the index report holds every scenario's figures.
#[test]
fn reproduce_runs_the_papers_scenarios_and_prints_a_verdict_per_claim() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p1");
    let o = run(&["reproduce", "garg", "--set", "replicates=3", "--out", out.to_str().unwrap(), "--format", "svg"]);
    let (stdout, stderr) = text(&o);
    assert!(o.status.success(), "{stderr}");
    let mut expected_claims = 0;
    let mut scenarios = 0;
    for name in registered_scenarios() {
        let file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("scenarios/{name}.toml"));
        let table: toml::Table = std::fs::read_to_string(&file).unwrap().parse().unwrap();
        let report = table.get("report");
        let papers: Vec<String> = report
            .and_then(|r| r.get("papers"))
            .and_then(|p| p.as_array())
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default();
        if !papers.iter().any(|p| p == "p1") {
            assert!(!out.join(&name).exists(), "{name} is not tagged p1 but was run");
            continue;
        }
        scenarios += 1;
        assert!(out.join(&name).join("report.html").is_file(), "{name}: no report");
        assert!(stdout.contains(&format!("\n{name} (")), "{name} not in\n{stdout}");
        expected_claims += report.and_then(|r| r.get("claims")).and_then(|c| c.as_array()).map_or(0, Vec::len);
    }
    assert!(scenarios >= 6, "only {scenarios} scenarios tagged p1");
    let verdicts = stdout
        .lines()
        .filter(|l| l.starts_with("  ") && [": yes, ", ": NO, ", ": not checked, "].iter().any(|m| l.contains(m)))
        .count();
    assert_eq!(verdicts, expected_claims, "{stdout}");
    assert!(stdout.contains(&format!("of {expected_claims} claims hold")), "{stdout}");
    let index = std::fs::read_to_string(out.join("report.html")).unwrap();
    assert_self_contained(&index);
    let figures: usize = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().path().join("figures"))
        .filter(|p| p.is_dir())
        .map(|p| std::fs::read_dir(p).unwrap().count())
        .sum();
    assert_eq!(index.matches("<svg").count(), figures);
}

/// A scenario without figures gets the defaults: the final risk against each swept
/// parameter (other parameters as series) and the risk against the iteration, one series
/// per cell, or with many cells one panel per value of the other parameter and at most
/// six values of the one with the most.
#[test]
fn default_figures_cover_every_swept_parameter_and_the_iteration() {
    let dir = tempfile::tempdir().unwrap();
    let scenario = dir.path().join("s.toml");
    let base = "name = \"d\"\nseed = 1\nreplicates = 4\niterations = 5\n[design]\nn = 30\np = 60\n[estimator]\nkind = \"ridge\"\nlambda = [0.0, 0.5]\n[schedule]\nkind = \"constant\"\n";
    for (w, expected) in [
        (
            "w = [0.5, 0.9]",
            vec![
                ("risk-vs-estimator-lambda", [1, 2, 4, 4, 2]),
                ("risk-vs-schedule-w", [1, 2, 4, 4, 2]),
                ("risk-vs-iteration", [1, 4, 24, 24, 4]),
            ],
        ),
        (
            "w = { from = 0.1, to = 1.0, steps = 10 }",
            vec![
                ("risk-vs-estimator-lambda", [1, 10, 20, 20, 10]),
                ("risk-vs-schedule-w", [1, 2, 20, 20, 2]),
                ("risk-vs-iteration", [2, 12, 72, 72, 12]),
            ],
        ),
    ] {
        std::fs::write(&scenario, format!("{base}{w}\n")).unwrap();
        let out = dir.path().join("out");
        let _ = std::fs::remove_dir_all(&out);
        let o = run(&["run", scenario.to_str().unwrap(), "--out", out.to_str().unwrap(), "--quiet"]);
        assert!(o.status.success(), "{}", text(&o).1);
        let o = run(&["plot", out.to_str().unwrap(), "--format", "svg"]);
        let (stdout, stderr) = text(&o);
        assert!(o.status.success(), "{stderr}");
        let got: Vec<(String, [usize; 5])> = described(&stdout);
        let expected: Vec<(String, [usize; 5])> = expected.into_iter().map(|(n, c)| (n.to_string(), c)).collect();
        assert_eq!(got, expected, "{w}:\n{stdout}");
        for (name, [.., points, exact, theory]) in &got {
            let svg = std::fs::read_to_string(out.join(format!("figures/{name}.svg"))).unwrap();
            assert_eq!(marks(&svg), (*points, *exact, *theory), "{name}");
        }
    }
}
