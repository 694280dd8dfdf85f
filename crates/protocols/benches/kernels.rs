//! Hot kernels of the fresh-label simulation, with ids that carry their sizes:
//! row-space setup (thin SVD, Gram eigendecomposition, Laguerre sampling), one
//! iteration of the spectral chain, and one step of the exact-risk recursion.
//!
//! `cargo bench -p collapse-settings --bench kernels`

use std::hint::black_box;
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use collapse_core::{
    BuildContext, CellView, Covariance, Params, ReplicateData, RowSpace, RowSpaceMode, Signal, Streams,
};
use collapse_covariance::{IsotropicParams, PowerLawCovParams, RandomSignalParams};
use collapse_estimators::RidgeParams;
use collapse_settings::{ExactRisk, FreshLabelsParams};
use criterion::{Criterion, criterion_group, criterion_main};

fn setup(n: usize, p: usize, cov: &str) -> (Arc<dyn Covariance>, Arc<dyn Signal>) {
    let ctx = BuildContext { n, p, noise_sd: 1.0 };
    let cov: Arc<dyn Covariance> = match cov {
        "isotropic" => Arc::from(IsotropicParams {}.build(&ctx).expect("valid")),
        _ => Arc::from(PowerLawCovParams { alpha: 1.0 }.build(&ctx).expect("valid")),
    };
    (cov, Arc::from(RandomSignalParams { radius: 1.0 }.build(&ctx).expect("valid")))
}

fn data(n: usize, p: usize, cov: &str, mode: RowSpaceMode, rep: u64) -> ReplicateData {
    let (cov, signal) = setup(n, p, cov);
    ReplicateData::new(n, p, Streams::new(1, 0, rep), cov, signal, Arc::new(AtomicUsize::new(0))).with_mode(mode)
}

fn row_space_setup(c: &mut Criterion) {
    faer::set_global_parallelism(faer::Par::Seq);
    let mut g = c.benchmark_group("row_space");
    g.sample_size(10);
    for (n, p) in [(200, 400), (500, 1000)] {
        // Thin SVD (p < 1.5n forces it: use a slightly wider-than-square shape).
        let (cov, _) = setup(n, n + n / 4, "power-law");
        let x = cov.sample(n, &mut Streams::new(1, 0, 0).rng(collapse_core::Purpose::Design, 0));
        let beta = faer::Col::<f64>::from_fn(n + n / 4, |i| (i as f64).sin());
        g.bench_function(format!("thin_svd/power-law/n{n}_p{}", n + n / 4), |b| {
            b.iter(|| RowSpace::factorize(black_box(&x), &beta, cov.clone()).expect("ok"))
        });
        let (cov, _) = setup(n, p, "isotropic");
        let x = cov.sample(n, &mut Streams::new(1, 0, 0).rng(collapse_core::Purpose::Design, 0));
        let beta = faer::Col::<f64>::from_fn(p, |i| (i as f64).sin());
        g.bench_function(format!("gram/isotropic/n{n}_p{p}"), |b| {
            b.iter(|| RowSpace::factorize(black_box(&x), &beta, cov.clone()).expect("ok"))
        });
        g.bench_function(format!("laguerre/isotropic/n{n}_p{p}"), |b| {
            let mut rep = 0;
            b.iter(|| {
                rep += 1;
                let d = data(n, p, "isotropic", RowSpaceMode::SampleIsotropic, rep);
                black_box(d.row_space().expect("ok").rank())
            })
        });
    }
    g.finish();
}

fn iteration(c: &mut Criterion) {
    let mut g = c.benchmark_group("iteration");
    for (n, p, cov) in [(200, 400, "isotropic"), (1000, 2000, "isotropic"), (200, 400, "power-law")] {
        let d = data(n, p, cov, RowSpaceMode::SampleIsotropic, 0);
        let (covariance, signal) = setup(n, p, cov);
        let ctx = BuildContext { n, p, noise_sd: 1.0 };
        let est = RidgeParams { lambda: 0.1 }.build(&ctx).expect("valid");
        let setting = FreshLabelsParams::example().build(&ctx).expect("valid");
        let view = CellView {
            n,
            p,
            noise_sd: 1.0,
            iterations: 1,
            estimator: est.as_ref(),
            covariance: covariance.as_ref(),
            signal: signal.as_ref(),
        };
        let r = n.min(p);
        let mut chain = setting.start(view, &d, Streams::new(2, 0, 0)).expect("chain");
        chain.step(0, 1.0).expect("step");
        let mut t = 0;
        g.bench_function(format!("spectral_step/{cov}/r{r}_p{p}"), |b| {
            b.iter(|| {
                t += 1;
                black_box(chain.step(t, 0.618).expect("step"))
            })
        });
        let rs = d.row_space().expect("row space");
        let ridge = RidgeParams { lambda: 0.1 }.build(&ctx).expect("valid");
        let mut exact = ExactRisk::new(rs, ridge.spectral().expect("spectral"), 1.0, 1.0);
        exact.step(0, 1.0);
        let mut t = 0;
        g.bench_function(format!("exact_step/{cov}/r{r}_p{p}"), |b| {
            b.iter(|| {
                t += 1;
                black_box(exact.step(t, 0.618))
            })
        });
    }
    g.finish();
}

criterion_group!(benches, row_space_setup, iteration);
criterion_main!(benches);
