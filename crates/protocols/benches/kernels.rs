//! Hot kernels of the fixed-design simulation, with ids that carry their sizes:
//! row-space setup (thin SVD, Gram eigendecomposition, Laguerre sampling), one
//! iteration of the spectral trajectory, and one step of the exact moments.
//!
//! `cargo bench -p collapse-protocols --bench kernels`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use collapse_core::faer::{Col, MatRef, Par};
use collapse_core::rng::Purpose;
use collapse_core::spec::{ResolvedScenario, parse, resolve};
use collapse_core::spectral::{Directions, Moments, RowSpace, Source, Step, samplers};
use collapse_core::{ReplicateData, RowSpaceMode, Streams, sigma_form};
use collapse_covariance as _;
use collapse_estimators as _;
use collapse_families as _;
use collapse_protocols as _;
use collapse_schedules as _;
use criterion::{Criterion, criterion_group, criterion_main};

fn scenario(n: usize, p: usize, cov: &str) -> ResolvedScenario {
    let cov = if cov == "isotropic" { "kind = \"isotropic\"" } else { "kind = \"power-law\"\nalpha = 1.0" };
    let text = format!(
        "name = \"bench\"\nreplicates = 1\niterations = 1\n[design]\nn = {n}\np = {p}\n[covariance]\n{cov}\n[estimator]\nkind = \"ridge\"\nlambda = 0.1\n[schedule]\nkind = \"constant\"\nw = 0.618\n"
    );
    resolve(&parse(&text, "bench").expect("toml")).expect("valid")
}

fn data(s: &ResolvedScenario, mode: RowSpaceMode, rep: u64) -> ReplicateData {
    let c = &s.cells[0];
    ReplicateData::new(
        c.n,
        c.p,
        Streams::new(1, 0, rep),
        c.plugins.covariance.clone(),
        c.plugins.signal.clone(),
        Par::Seq,
        Arc::new(AtomicUsize::new(0)),
    )
    .with_mode(mode)
}

fn row_space_setup(c: &mut Criterion) {
    let mut g = c.benchmark_group("row_space");
    g.sample_size(10);
    for (n, p) in [(200, 400), (500, 1000)] {
        // Thin SVD (p < 1.5n forces it: use a slightly wider-than-square shape).
        let s = scenario(n, n + n / 4, "power-law");
        let cov = s.cells[0].plugins.covariance.clone();
        let x = cov.sample(n, &mut Streams::new(1, 0, 0).rng(Purpose::Design, 0));
        let beta = Col::<f64>::from_fn(n + n / 4, |i| (i as f64).sin());
        let apply = |m: MatRef<'_, f64>| cov.apply(m);
        g.bench_function(format!("thin_svd/power-law/n{n}_p{}", n + n / 4), |b| {
            b.iter(|| {
                RowSpace::factorize(black_box(x.as_ref()), &beta, sigma_form(cov.as_ref(), &apply), Par::Seq)
                    .expect("ok")
            })
        });
        let s = scenario(n, p, "isotropic");
        let cov = s.cells[0].plugins.covariance.clone();
        let x = cov.sample(n, &mut Streams::new(1, 0, 0).rng(Purpose::Design, 0));
        let beta = Col::<f64>::from_fn(p, |i| (i as f64).sin());
        let apply = |m: MatRef<'_, f64>| cov.apply(m);
        g.bench_function(format!("gram/isotropic/n{n}_p{p}"), |b| {
            b.iter(|| {
                RowSpace::factorize(black_box(x.as_ref()), &beta, sigma_form(cov.as_ref(), &apply), Par::Seq)
                    .expect("ok")
            })
        });
        let mut rep = 0;
        g.bench_function(format!("laguerre/isotropic/n{n}_p{p}"), |b| {
            b.iter(|| {
                rep += 1;
                let mut rng = Streams::new(1, 0, rep).rng(Purpose::Design, 0);
                black_box(samplers::sample_isotropic(n, p, &beta, &mut rng, Par::Seq).expect("ok").rank())
            })
        });
    }
    g.finish();
}

fn iteration(c: &mut Criterion) {
    let mut g = c.benchmark_group("iteration");
    for (n, p, cov) in [(200, 400, "isotropic"), (1000, 2000, "isotropic"), (200, 400, "power-law")] {
        let s = scenario(n, p, cov);
        let cell = &s.cells[0];
        let d = data(&s, RowSpaceMode::Sample, 0);
        let r = n.min(p);
        let mut traj = cell.plugins.protocol.start(cell.view(), &cell.plan, &d, Streams::new(2, 0, 0)).expect("start");
        let mut out = vec![0.0; cell.plan.slots()];
        traj.step(0, 1.0, &mut out).expect("step");
        let mut t = 0;
        g.bench_function(format!("spectral_step/{cov}/r{r}_p{p}"), |b| {
            b.iter(|| {
                t += 1;
                traj.step(t, 0.618, &mut out).expect("step");
                black_box(out[0])
            })
        });
        let rs = d.row_space().expect("row space");
        let filter = cell.plugins.estimator.spectral().expect("spectral");
        let dirs = Directions::new(rs, filter.gains(&rs.d, n).expect("gains")).expect("dirs");
        let mut moments = Moments::new(dirs.len(), &[]);
        g.bench_function(format!("exact_step/{cov}/r{r}_p{p}"), |b| {
            b.iter(|| {
                let noise =
                    [(Source::new(Purpose::RealNoise, 1), 0.618), (Source::new(Purpose::SyntheticNoise, 1), 0.382)];
                moments.step(&dirs, &rs.theta, &Step { keep: 0.0, feedback: 0.382, signal: 0.618, noise: &noise });
                black_box(moments.risk(rs, Par::Seq))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, row_space_setup, iteration);
criterion_main!(benches);
