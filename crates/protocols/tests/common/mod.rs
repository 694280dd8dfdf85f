//! Fixtures for the protocol tests: resolve a scenario, fix one design (one replicate's
//! data), and run many trajectories on it that differ only in their label noise.
#![allow(dead_code, clippy::unwrap_used, clippy::expect_used)] // each test binary uses a subset

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use collapse_core::faer::Par;
use collapse_core::spec::{ResolvedScenario, parse, resolve};
use collapse_core::{DesignUse, ReplicateData, RowSpaceMode, Streams};
use collapse_covariance as _;
use collapse_estimators as _;
use collapse_families as _;
use collapse_protocols as _;
use collapse_schedules as _;

/// A resolved scenario from TOML text.
pub fn scenario(text: &str) -> ResolvedScenario {
    resolve(&parse(text, "test").unwrap()).unwrap_or_else(|e| panic!("{e}\n{text}"))
}

/// The data of one replicate of `cell`'s design group, drawn from `streams`, with the
/// row-space mode the cell's plan asks for (or `mode`).
pub fn data(s: &ResolvedScenario, cell: usize, streams: Streams, mode: Option<RowSpaceMode>) -> ReplicateData {
    let c = &s.cells[cell];
    let planned = match c.plan.design {
        DesignUse::Fixed(m) => m,
        DesignUse::Own => RowSpaceMode::Factorize,
    };
    ReplicateData::new(
        c.n,
        c.p,
        streams,
        c.plugins.covariance.clone(),
        c.plugins.signal.clone(),
        Par::Seq,
        Arc::new(AtomicUsize::new(0)),
    )
    .with_mode(mode.unwrap_or(planned))
}

/// `chains` trajectories of `cell` on `data`, each with its own label-noise streams:
/// values[chain][t][slot].
pub fn chains(s: &ResolvedScenario, cell: usize, data: &ReplicateData, chains: u64, seed: u64) -> Vec<Vec<Vec<f64>>> {
    let c = &s.cells[cell];
    let slots = c.plan.slots();
    (0..chains)
        .map(|k| {
            let mut traj = c.plugins.protocol.start(c.view(), &c.plan, data, Streams::new(seed, 7, k + 1)).unwrap();
            c.weights
                .iter()
                .enumerate()
                .map(|(t, &w)| {
                    let mut out = vec![0.0; slots];
                    traj.step(t, w, &mut out).unwrap();
                    out
                })
                .collect()
        })
        .collect()
}

/// Slot `j` at iteration `t` across chains.
pub fn column(values: &[Vec<Vec<f64>>], t: usize, j: usize) -> Vec<f64> {
    values.iter().map(|c| c[t][j]).collect()
}

/// (mean − expected)/se.
pub fn z_score(xs: &[f64], expected: f64) -> f64 {
    let n = xs.len() as f64;
    let mean = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - mean) * (x - mean)).sum::<f64>() / (n - 1.0);
    (mean - expected) / (var / n).sqrt()
}

/// A scenario text with the given sections after a standard header.
pub fn text(n: usize, p: usize, iterations: usize, sections: &str) -> String {
    format!(
        "name = \"t\"\nseed = 1\nreplicates = 1\niterations = {iterations}\n[design]\nn = {n}\np = {p}\n{sections}\n"
    )
}
