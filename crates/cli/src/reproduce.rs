//! `collapse reproduce PAPER`: run every registered scenario that declares the paper in
//! its `[report] papers`, write each run's results, figures and report, one index
//! `report.html`, and print a verdict line per claim.
//!
//! The list of scenarios is read from the registry when the command runs, so a scenario
//! registered later joins its paper's reproduction by naming the paper.
//!
//! `--quick` runs each scenario with `replicates = max(QUICK_MIN_REPLICATES,
//! replicates / QUICK_DIVISOR)`, never more than the full number (the same as `--set
//! replicates=…`): same grids, seeds and iterations, error bars about twice as wide.
//! Verdicts that depend on a paired interval can then be less sharp; the full run is
//! the reference.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::Result;

use crate::UserError;

/// A seed paper.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Paper {
    /// `p1`, `p2`, `p3`.
    pub id: &'static str,
    /// Its title.
    pub title: &'static str,
    /// Authors and year.
    pub authors: &'static str,
    /// arXiv identifier.
    pub arxiv: &'static str,
    /// Other names accepted on the command line (lowercase; spaces and `_` read as `-`).
    pub aliases: &'static [&'static str],
}

/// The seed papers (docs/README.md §5).
pub const PAPERS: [Paper; 3] = [
    Paper {
        id: "p1",
        title: "Preventing Model Collapse Under Overparametrization: Optimal Mixing Ratios for Interpolation Learning and Ridge Regression",
        authors: "Garg, Bhattacharya & Sur (2025)",
        arxiv: "2509.22341",
        aliases: &[
            "garg",
            "garg-bhattacharya-sur",
            "gbs",
            "preventing-model-collapse",
            "golden-ratio-mixing",
            "mixing",
        ],
    },
    Paper {
        id: "p2",
        title: "Model Collapse Demystified: The Case of Regression",
        authors: "Dohmatob, Feng & Kempe (2024)",
        arxiv: "2402.07712",
        aliases: &["dohmatob", "dohmatob-feng-kempe", "dfk", "model-collapse-demystified", "demystified", "chains"],
    },
    Paper {
        id: "p3",
        title: "Recursive Learning Without Collapse: A Weighting-Based Stabilization Framework",
        authors: "He, Xu & Cheng (2025)",
        arxiv: "2502.18049",
        aliases: &[
            "he",
            "he-xu-cheng",
            "hxc",
            "recursive-learning",
            "recursive-learning-without-collapse",
            "weighting",
        ],
    },
];

/// The paper called `name` (its id or an alias, any case; spaces and `_` read as `-`).
pub fn paper(name: &str) -> Option<&'static Paper> {
    let norm: String = name.trim().to_lowercase().chars().map(|c| if c == ' ' || c == '_' { '-' } else { c }).collect();
    PAPERS.iter().find(|p| p.id == norm || p.aliases.contains(&norm.as_str()) || p.arxiv == norm)
}

/// "papers: p1 (garg, …), p2 (…), p3 (…)" for error messages.
pub fn known_papers() -> String {
    let list: Vec<String> = PAPERS.iter().map(|p| format!("{} ({})", p.id, p.aliases.join(", "))).collect();
    format!("papers: {}", list.join("; "))
}

/// Replicates per scenario under `--quick`: a quarter, at least this many.
pub const QUICK_MIN_REPLICATES: usize = 50;
/// Replicates per scenario under `--quick`: the full number divided by this.
pub const QUICK_DIVISOR: usize = 4;

/// The replicates a `--quick` run uses for a scenario with `full` replicates.
pub fn quick_replicates(full: usize) -> usize {
    (full / QUICK_DIVISOR).max(QUICK_MIN_REPLICATES).min(full)
}

/// The registered scenarios that name `paper`, by name.
pub fn scenarios_of(paper: &Paper) -> Result<Vec<&'static collapse_core::ScenarioPlugin>> {
    let mut out = Vec::new();
    for s in collapse_core::registry::scenarios()? {
        let table = collapse_core::spec::parse(s.toml, s.name)?;
        let report = crate::claims::parse_report(table.get("report"))?;
        if report.papers.iter().any(|p| p == paper.id) {
            out.push(s);
        }
    }
    Ok(out)
}

/// Options of `collapse reproduce`.
#[derive(Debug, Clone)]
pub struct ReproduceOptions {
    /// Fewer replicates.
    pub quick: bool,
    /// Output directory (default: results/reproduce-<paper>).
    pub out: Option<PathBuf>,
    /// Worker threads (0: all cores).
    pub threads: usize,
    /// Figure formats.
    pub formats: Vec<crate::plot::Format>,
    /// Overrides applied to every scenario, after `quick`'s.
    pub sets: Vec<String>,
}

/// `collapse reproduce`.
pub fn command(name: &str, opts: &ReproduceOptions) -> Result<()> {
    let paper = paper(name).ok_or_else(|| UserError::new(format!("unknown paper `{name}`; {}", known_papers())))?;
    let scenarios = scenarios_of(paper)?;
    if scenarios.is_empty() {
        return Err(
            UserError::new(format!("no registered scenario names paper {} in its [report] papers", paper.id)).into()
        );
    }
    let root = opts.out.clone().unwrap_or_else(|| default_dir(paper, opts.quick));
    crate::output::check_writable(&root)?;
    let started = Instant::now();
    outln!("{} {}: {}", paper.id, paper.authors, paper.title);
    let mut sections = Vec::new();
    for s in scenarios {
        let mut sets = Vec::new();
        if opts.quick {
            let full = crate::load_scenario(s.name, &[])?.replicates;
            sets.push(format!("replicates={}", quick_replicates(full)));
        }
        sets.extend(opts.sets.iter().cloned());
        let dir = root.join(s.name);
        let t0 = Instant::now();
        let request =
            crate::run::RunRequest { out: Some(dir.clone()), threads: opts.threads, quiet: true, ..Default::default() };
        let outcome = crate::run::execute(s.name, &sets, &request)?;
        let report = crate::html::scenario_report(&dir, &opts.formats, Some(outcome.verdicts.clone()))?;
        outln!(
            "\n{} ({} cells × {} replicates, {:.1} s): {}",
            s.name,
            outcome.cells,
            outcome.replicates,
            t0.elapsed().as_secs_f64(),
            s.summary
        );
        for v in &outcome.verdicts {
            outln!("  {v}");
        }
        if outcome.verdicts.is_empty() {
            outln!("  (no claims)");
        }
        sections.push(report);
    }
    let index = crate::html::index(paper, opts.quick, &sections)?;
    let mut staging = crate::output::Staging::new(&root)?;
    staging.text("report.html", &index)?;
    staging.commit()?;
    let (held, total) = sections
        .iter()
        .flat_map(|s| &s.verdicts)
        .fold((0, 0), |(h, t), v| (h + usize::from(v.holds == Some(true)), t + 1));
    outln!(
        "\n{held} of {total} claims hold; wrote {} (report.html, one folder per scenario) in {:.1} s",
        root.display(),
        started.elapsed().as_secs_f64()
    );
    Ok(())
}

/// Where a paper's reproduction is written by default.
pub fn default_dir(paper: &Paper, quick: bool) -> PathBuf {
    Path::new("results").join(format!("reproduce-{}{}", paper.id, if quick { "-quick" } else { "" }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn papers_are_found_by_id_alias_and_arxiv_number() {
        for (name, id) in
            [("p1", "p1"), ("P1", "p1"), ("Garg", "p1"), ("preventing model collapse", "p1"), ("2402.07712", "p2")]
        {
            assert_eq!(paper(name).map(|p| p.id), Some(id), "{name}");
        }
        for (name, id) in
            [("model_collapse_demystified", "p2"), ("dohmatob", "p2"), ("he-xu-cheng", "p3"), ("p3", "p3")]
        {
            assert_eq!(paper(name).map(|p| p.id), Some(id), "{name}");
        }
        assert!(paper("p4").is_none() && paper("").is_none());
        assert!(known_papers().contains("p1 (garg"));
    }

    #[test]
    fn quick_uses_a_quarter_of_the_replicates_but_at_least_fifty() {
        assert_eq!(quick_replicates(200), 50);
        assert_eq!(quick_replicates(1000), 250);
        assert_eq!(quick_replicates(60), 50);
        assert_eq!(quick_replicates(40), 40);
    }
}
