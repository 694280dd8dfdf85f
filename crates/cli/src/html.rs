//! `report.html`: one self-contained page per run (and one index per reproduced paper)
//! with the scenario, its claims' verdicts, the figures as inline SVG, the final summary
//! table with z-scores, the paired argmin of each swept parameter and the manifest.
//!
//! Self-contained means no reference to anything outside the file: the figures are
//! inline `<svg>` elements (without the XML namespace URL, which HTML does not need),
//! the style is one `<style>` element, there is no script, no image source and no link
//! except to anchors of the page itself. It renders the same offline, in any browser.

use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;

use crate::claims::{self, Verdict};
use crate::plot::data::{Level, SummaryData, format_number};
use crate::plot::{self, Format, Rendered};
use crate::reproduce::Paper;

/// What one scenario contributes to a paper's index page.
#[derive(Debug, Clone)]
pub struct ScenarioSection {
    /// Scenario name.
    pub name: String,
    /// Its description.
    pub description: String,
    /// Its claims' verdicts.
    pub verdicts: Vec<Verdict>,
    /// Its figures.
    pub figures: Vec<Rendered>,
    /// Replicates and cells, for the heading.
    pub size: String,
}

/// `|z|` above which a z-score is flagged.
pub const Z_FLAG: f64 = 4.0;

const STYLE: &str = "
body { font-family: 'DejaVu Sans', 'Helvetica Neue', Arial, sans-serif; margin: 0 auto; max-width: 1060px;
       padding: 16px 24px 48px; color: #1a1a1a; background: #fff; line-height: 1.45; }
h1 { font-size: 26px; margin: 8px 0 4px; } h2 { font-size: 20px; margin: 28px 0 8px; border-bottom: 1px solid #ddd; }
h3 { font-size: 17px; margin: 18px 0 6px; }
p.lead { color: #444; margin: 0 0 12px; }
figure { margin: 12px 0 24px; } figcaption { color: #444; font-size: 14px; margin-top: 4px; }
svg.figure { display: block; width: 100%; height: auto; border: 1px solid #eee; }
table { border-collapse: collapse; font-size: 13px; margin: 6px 0 12px; }
th, td { padding: 3px 8px; border-bottom: 1px solid #e4e4e4; text-align: right; vertical-align: top; }
th { background: #f4f4f4; } td.text, th.text { text-align: left; }
td.flag { background: #fde2e1; color: #a40000; font-weight: bold; }
td.yes { color: #0a6b1f; font-weight: bold; } td.no { color: #a40000; font-weight: bold; } td.na { color: #777; }
pre { background: #f7f7f7; border: 1px solid #e4e4e4; padding: 10px; overflow-x: auto; font-size: 12px; }
nav a { margin-right: 14px; }
";

/// Escape text for HTML.
pub fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A figure's SVG made fit for inlining: no XML declaration, no namespace URL, a class.
pub fn inline_svg(svg: &str) -> String {
    let body = match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    };
    body.replacen(" xmlns=\"http://www.w3.org/2000/svg\"", "", 1).replacen("<svg", "<svg class=\"figure\"", 1)
}

fn page(title: &str, body: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n<title>{}</title>\n<style>{STYLE}</style>\n</head>\n<body>\n{body}</body>\n</html>\n",
        escape(title)
    )
}

fn verdict_table(verdicts: &[Verdict]) -> String {
    if verdicts.is_empty() {
        return "<p>This scenario states no claims.</p>\n".into();
    }
    let mut s = String::from(
        "<table class=\"claims\">\n<tr><th class=\"text\">claim</th><th>verdict</th><th class=\"text\">numbers</th></tr>\n",
    );
    for v in verdicts {
        let (class, mark) = match v.holds {
            Some(true) => ("yes", "yes"),
            Some(false) => ("no", "NO"),
            None => ("na", "not checked"),
        };
        let _ = writeln!(
            s,
            "<tr><td class=\"text\">{}</td><td class=\"{class}\">{mark}</td><td class=\"text\">{}</td></tr>",
            escape(&v.claim),
            escape(&v.detail)
        );
    }
    s.push_str("</table>\n");
    s
}

fn figures_html(figures: &[Rendered]) -> String {
    let mut s = String::new();
    for r in figures {
        let f = &r.figure;
        let _ = write!(s, "<figure id=\"fig-{}\">\n{}\n<figcaption>", escape(&f.name), inline_svg(&r.svg));
        let mut parts = Vec::new();
        if let Some(c) = &f.caption {
            parts.push(escape(c));
        }
        parts.push(escape(&plot::describe(f)));
        parts.extend(f.notes.iter().map(|n| escape(n)));
        s.push_str(&parts.join(" — "));
        s.push_str("</figcaption>\n</figure>\n");
    }
    s
}

/// The final-iteration table: varying parameters, then per metric mean ± SE, exact mean,
/// theory and z_exact, with |z| > [`Z_FLAG`] flagged.
fn summary_table(data: &SummaryData) -> String {
    let rows = data.final_rows();
    let params = data.varying(&rows);
    let mut s = String::from("<table class=\"summary\">\n<tr><th>cell</th><th>t</th>");
    for p in &params {
        let _ = write!(s, "<th class=\"text\">{}</th>", escape(p));
    }
    for m in &data.metrics {
        let _ = write!(s, "<th>{m} ± se</th>");
        if data.number(&format!("{m}_exact_mean")).is_some() {
            let _ = write!(s, "<th>{m}_exact</th>");
        }
        let _ = write!(s, "<th>{m}_theory</th>");
        if data.number(&format!("{m}_z_exact")).is_some() {
            s.push_str("<th>z_exact</th>");
        }
    }
    s.push_str("</tr>\n");
    let num = |name: &str, i: usize| data.number(name).map(|v| v[i]).filter(|x| x.is_finite());
    let fmt = |x: Option<f64>| x.map(|v| format!("{v:.5}")).unwrap_or_else(|| "–".into());
    for &i in &rows {
        let _ = write!(s, "<tr><td>{}</td><td>{}</td>", data.cell[i], data.iteration[i]);
        for p in &params {
            let v = data.param(p).map(|c| c.values[i].clone()).unwrap_or(Level::Null);
            let _ = write!(s, "<td class=\"text\">{}</td>", escape(&v.render()));
        }
        for m in &data.metrics {
            let mean = num(&format!("{m}_mean"), i);
            let se = num(&format!("{m}_se"), i);
            let _ = write!(s, "<td>{} ± {}</td>", fmt(mean), fmt(se));
            if data.number(&format!("{m}_exact_mean")).is_some() {
                let _ = write!(s, "<td>{}</td>", fmt(num(&format!("{m}_exact_mean"), i)));
            }
            let _ = write!(s, "<td>{}</td>", fmt(num(&format!("{m}_theory"), i)));
            if data.number(&format!("{m}_z_exact")).is_some() {
                match num(&format!("{m}_z_exact"), i) {
                    Some(z) if z.abs() > Z_FLAG => {
                        let _ = write!(s, "<td class=\"flag\" title=\"|z| &gt; {Z_FLAG}\">{z:+.2} ⚑</td>");
                    }
                    Some(z) => {
                        let _ = write!(s, "<td>{z:+.2}</td>");
                    }
                    None => s.push_str("<td>–</td>"),
                }
            }
        }
        s.push_str("</tr>\n");
    }
    s.push_str("</table>\n");
    s
}

/// The paired argmin (collapse compare) of each swept numeric parameter.
fn argmin_tables(dir: &Path, data: &SummaryData) -> Result<String> {
    let rows = data.final_rows();
    let swept: Vec<String> =
        data.varying(&rows).into_iter().filter(|p| data.param(p).is_some_and(|c| c.numeric)).collect();
    if swept.is_empty() {
        return Ok("<p>No numeric parameter is swept.</p>\n".into());
    }
    if !dir.join("runs.parquet").is_file() {
        return Ok(
            "<p>No runs.parquet (output.runs = none): the paired comparison needs the per-replicate rows.</p>\n".into(),
        );
    }
    let runs = crate::compare::load(dir)?;
    let mut s = String::new();
    for p in &swept {
        let c = crate::compare::compare(&runs, p, None, None, 2000)?;
        let _ = writeln!(
            s,
            "<h3>{} (metric {}, last iteration)</h3>\n<table><tr><th class=\"text\">other parameters</th><th>argmin</th><th>bootstrap 95% range</th><th class=\"text\">wins</th></tr>",
            escape(p),
            escape(&c.metric)
        );
        for a in &c.argmin {
            let wins: Vec<String> = a
                .wins
                .iter()
                .filter(|(_, share)| *share > 0.0)
                .map(|(v, share)| format!("{}: {:.0}%", format_number(*v), 100.0 * share))
                .collect();
            let _ = writeln!(
                s,
                "<tr><td class=\"text\">{}</td><td>{}</td><td>[{}, {}]</td><td class=\"text\">{}</td></tr>",
                escape(if a.group.is_empty() { "–" } else { &a.group }),
                format_number(a.best),
                format_number(a.low),
                format_number(a.high),
                escape(&wins.join(", "))
            );
        }
        s.push_str("</table>\n");
    }
    Ok(s)
}

fn manifest_html(dir: &Path) -> String {
    let Ok(text) = std::fs::read_to_string(dir.join("manifest.json")) else {
        return "<p>No manifest.json.</p>\n".into();
    };
    let mut s = String::from("<table class=\"manifest\">\n");
    if let Ok(serde_json::Value::Object(m)) = serde_json::from_str::<serde_json::Value>(&text) {
        for (k, v) in &m {
            if matches!(v, serde_json::Value::Object(_) | serde_json::Value::Array(_)) {
                continue;
            }
            let shown = match v {
                serde_json::Value::String(x) => x.clone(),
                serde_json::Value::Number(x) => x.as_f64().map(format_number).unwrap_or_else(|| x.to_string()),
                other => other.to_string(),
            };
            let _ =
                writeln!(s, "<tr><th class=\"text\">{}</th><td class=\"text\">{}</td></tr>", escape(k), escape(&shown));
        }
    }
    let _ =
        write!(s, "</table>\n<details><summary>manifest.json</summary>\n<pre>{}</pre>\n</details>\n", escape(&text));
    s
}

/// Draw the run's figures into `dir/figures` (in `formats`), write `dir/report.html`, and
/// return the section a paper's index shows. `verdicts`: the claims' verdicts when the
/// caller has just evaluated them (a run), else None to evaluate them here.
pub fn scenario_report(dir: &Path, formats: &[Format], verdicts: Option<Vec<Verdict>>) -> Result<ScenarioSection> {
    let data = SummaryData::load(dir)?;
    let specs = plot::specs(dir, &data)?;
    let figures = plot::render(dir, &data, &specs)?;
    if !formats.is_empty() {
        plot::write(&figures, &dir.join("figures"), formats)?;
    }
    let scenario_text = std::fs::read_to_string(dir.join("scenario.toml")).unwrap_or_default();
    let table = collapse_core::spec::parse(&scenario_text, "scenario.toml").unwrap_or_default();
    let report = claims::parse_report(table.get("report"))?;
    let verdicts = match verdicts {
        Some(v) => v,
        None => claims::evaluate(dir, &report, &data.metrics)?,
    };
    let name = table.get("name").and_then(|v| v.as_str()).unwrap_or("run").to_string();
    let description = table.get("description").and_then(|v| v.as_str()).unwrap_or_default().to_string();
    let cells = data.last_iteration().len();
    let replicates = data.number("replicates").and_then(|r| r.first().copied()).unwrap_or(f64::NAN);
    let size = format!("{cells} cells × {} replicates", format_number(replicates));
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}</h1>\n<p class=\"lead\">{} ({})</p>\n<nav><a href=\"#claims\">claims</a><a href=\"#figures\">figures</a><a href=\"#summary\">summary</a><a href=\"#argmin\">paired argmin</a><a href=\"#run\">run</a><a href=\"#scenario\">scenario</a></nav>\n",
        escape(&name),
        escape(&description),
        escape(&size)
    );
    let _ = write!(body, "<h2 id=\"claims\">Claims</h2>\n{}", verdict_table(&verdicts));
    let _ = write!(body, "<h2 id=\"figures\">Figures</h2>\n{}", figures_html(&figures));
    let _ = write!(
        body,
        "<h2 id=\"summary\">Final iteration</h2>\n<p>Mean ± standard error over replicates; z_exact = (mean − exact)/se, flagged when |z| &gt; {Z_FLAG}.</p>\n{}",
        summary_table(&data)
    );
    let _ = write!(body, "<h2 id=\"argmin\">Paired argmin</h2>\n{}", argmin_tables(dir, &data)?);
    let _ = write!(body, "<h2 id=\"run\">Run</h2>\n{}", manifest_html(dir));
    let _ = write!(body, "<h2 id=\"scenario\">Scenario</h2>\n<pre>{}</pre>\n", escape(&scenario_text));
    let html = page(&format!("{name}: collapse report"), &body);
    let mut staging = crate::output::Staging::new(dir)?;
    staging.text("report.html", &html)?;
    staging.commit()?;
    Ok(ScenarioSection { name, description, verdicts, figures, size })
}

/// The index page of a paper's reproduction: every scenario's verdicts and figures.
pub fn index(paper: &Paper, quick: bool, sections: &[ScenarioSection]) -> Result<String> {
    let mut body = String::new();
    let _ = write!(
        body,
        "<h1>{}: {}</h1>\n<p class=\"lead\">{}, arXiv {}. Reproduced by <code>collapse reproduce {}{}</code>: {} scenario{}; each scenario's folder holds its results, figures and its own report.html.</p>\n<nav>",
        paper.id,
        escape(paper.title),
        escape(paper.authors),
        paper.arxiv,
        paper.id,
        if quick { " --quick" } else { "" },
        sections.len(),
        if sections.len() == 1 { "" } else { "s" }
    );
    for s in sections {
        let _ = write!(body, "<a href=\"#{0}\">{0}</a>", escape(&s.name));
    }
    body.push_str("</nav>\n");
    for s in sections {
        let _ = write!(
            body,
            "<h2 id=\"{0}\">{0}</h2>\n<p class=\"lead\">{1} ({2})</p>\n{3}{4}",
            escape(&s.name),
            escape(&s.description),
            escape(&s.size),
            verdict_table(&s.verdicts),
            figures_html(&s.figures)
        );
    }
    Ok(page(&format!("{}: collapse reproduce", paper.id), &body))
}
