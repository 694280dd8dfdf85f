//! The generational chain (docs/chains.md): Monte Carlo against the exact conditional
//! errors (fixed designs, spectral path; OLS generators given the downstream design) and
//! against the finite-T expectations (fresh designs), for OLS and ridge chains with
//! isotropic and power-law Σ; the over-parametrised decay with and without noise; the
//! downstream fit against a direct ridge fit; tuned penalties; parameter errors.
#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::sync::Arc;
use std::sync::atomic::AtomicUsize;

use collapse_core::faer::{Col, Par};
use collapse_core::spec::ResolvedScenario;
use collapse_core::{FitInput, ReplicateData, Streams};
use collapse_theory::{chain_ols_error, chain_overparam_error, chain_overparam_fixed_error};
use common::{chains, column, data, scenario, text, z_score};

/// Slot indices: test_error, test_error_exact, generator_error, generator_error_exact.
const TEST: usize = 0;
const TEST_EXACT: usize = 1;
const GEN: usize = 2;
const GEN_EXACT: usize = 3;

fn chain_text(n: usize, p: usize, k: usize, covariance: &str, estimator: &str, protocol: &str, sigma: f64) -> String {
    text(
        n,
        p,
        k,
        &format!(
            "[family]\nkind = \"linear-gaussian\"\nnoise_sd = {sigma}\n[signal]\nkind = \"random\"\nradius = 1.0\n\
             [covariance]\n{covariance}\n[estimator]\n{estimator}\n[protocol]\nkind = \"generational-chain\"\n{protocol}\n"
        ),
    )
}

const ISO: &str = "kind = \"isotropic\"";
const POWER: &str = "kind = \"power-law\"\nalpha = 1.5";

/// Paired z of simulation against its exact twin, over chains on one downstream design.
fn paired_z(values: &[Vec<Vec<f64>>], t: usize, sim: usize, exact: usize) -> f64 {
    let d: Vec<f64> = column(values, t, sim).iter().zip(column(values, t, exact)).map(|(a, b)| a - b).collect();
    z_score(&d, 0.0)
}

/// The slot of column `name` (a metric or `<metric>_exact`) in cell 0's rows.
fn slot(s: &ResolvedScenario, name: &str) -> usize {
    let mut j = 0;
    for m in &s.cells[0].plan.metrics {
        if m.metric.name == name {
            return j;
        }
        j += 1;
        if m.exact {
            if format!("{}_exact", m.metric.name) == name {
                return j;
            }
            j += 1;
        }
    }
    panic!("no column {name}")
}

/// One trajectory per replicate, each on its own downstream design: values[rep][t][slot].
fn replicates(s: &ResolvedScenario, cell: usize, reps: u64, seed: u64) -> Vec<Vec<Vec<f64>>> {
    let c = &s.cells[cell];
    (0..reps)
        .map(|r| {
            let streams = Streams::new(seed, 11, r);
            let d = ReplicateData::new(
                c.n,
                c.p,
                streams,
                c.plugins.covariance.clone(),
                c.plugins.signal.clone(),
                Par::Seq,
                Arc::new(AtomicUsize::new(0)),
            );
            let mut traj = c.plugins.protocol.start(c.view(), &c.plan, &d, streams).unwrap();
            (0..=c.iterations)
                .map(|t| {
                    let mut out = vec![0.0; c.plan.slots()];
                    traj.step(t, 1.0, &mut out).unwrap();
                    out
                })
                .collect()
        })
        .collect()
}

/// Fixed generator design (spectral path): simulation = exact conditional error given both
/// designs, for OLS and ridge generators, ridge downstream, isotropic and power-law Σ.
#[test]
fn spectral_path_matches_its_exact_twin() {
    for (cov, generator) in [
        (ISO, "generator = \"ols\""),
        (POWER, "generator = \"ols\""),
        (ISO, "generator = \"ridge\"\ngenerator_lambda = 0.2"),
        (POWER, "generator = \"min-norm\""),
    ] {
        let t0 = if generator.contains("min-norm") { 30 } else { 80 };
        let protocol = format!(
            "{generator}\ngenerator_samples = {t0}\ngenerator_design = \"fixed\"\npath = \"spectral\"\ngenerator_noise_sd = 0.7"
        );
        let s = scenario(&chain_text(60, 40, 4, cov, "kind = \"ridge\"\nlambda = 0.1", &protocol, 0.5));
        let d = data(&s, 0, Streams::new(3, 1, 0), None);
        let v = chains(&s, 0, &d, 1500, 21);
        for t in [0, 1, 4] {
            let z = paired_z(&v, t, TEST, TEST_EXACT);
            assert!(z.abs() < 4.0, "{cov} {generator} t = {t}: test z = {z}");
            if t > 0 {
                let z = paired_z(&v, t, GEN, GEN_EXACT);
                assert!(z.abs() < 4.0, "{cov} {generator} t = {t}: generator z = {z}");
            }
        }
    }
}

/// OLS generators, fresh designs (Bartlett and refit paths): simulation = exact expectation
/// given the downstream design, and the generator error = kσ₀²d/(T₀ − d − 1).
#[test]
fn ols_generators_match_the_expectation_given_the_downstream_design() {
    for cov in [ISO, POWER] {
        for path in ["wishart", "refit"] {
            let protocol = format!("generator_samples = 70\ngenerator_noise_sd = 1.0\npath = \"{path}\"");
            let s = scenario(&chain_text(50, 30, 3, cov, "kind = \"ridge\"\nlambda = 0.3", &protocol, 0.5));
            let d = data(&s, 0, Streams::new(4, 1, 0), None);
            let v = chains(&s, 0, &d, 1500, 22);
            for t in [1, 3] {
                let z = paired_z(&v, t, TEST, TEST_EXACT);
                assert!(z.abs() < 4.0, "{cov} {path} t = {t}: test z = {z}");
                let exact = t as f64 * 30.0 / (70.0 - 31.0);
                assert!((column(&v, t, GEN_EXACT)[0] - exact).abs() < 1e-12);
                let z = z_score(&column(&v, t, GEN), exact);
                assert!(z.abs() < 4.0, "{cov} {path} t = {t}: generator z = {z}");
            }
        }
    }
}

/// OLS downstream and OLS generators, fresh designs everywhere: the finite-T expectation
/// σ²d/(T − d − 1) + kσ₀²d/(T₀ − d − 1) (docs/chains.md §2), averaged over designs.
#[test]
fn ols_chain_grows_linearly_as_predicted() {
    for cov in [ISO, POWER] {
        let protocol = "generator_samples = 60\ngenerator_noise_sd = 1.0";
        let s = scenario(&chain_text(50, 20, 5, cov, "kind = \"ols\"", protocol, 1.0));
        let v = replicates(&s, 0, 1500, 23);
        for t in [0, 2, 5] {
            let expected = chain_ols_error(20, 50, 60, 1.0, 1.0, t as u32).unwrap();
            let z = z_score(&column(&v, t, TEST), expected);
            assert!(z.abs() < 4.0, "{cov} t = {t}: z = {z} (expected {expected})");
        }
    }
}

/// Ridge downstream, OLS generators, fresh designs: the exact twin averages to the
/// simulation over downstream designs too, and the deterministic equivalent is close.
#[test]
fn ridge_chain_over_downstream_designs() {
    let protocol = "generator_samples = 150\ngenerator_noise_sd = 1.0";
    let s = scenario(&chain_text(100, 60, 3, POWER, "kind = \"ridge\"\nlambda = 0.2", protocol, 0.5));
    let v = replicates(&s, 0, 600, 24);
    let theory = collapse_core::results::predictions(&s);
    for t in [0, 3] {
        let d: Vec<f64> = column(&v, t, TEST).iter().zip(column(&v, t, TEST_EXACT)).map(|(a, b)| a - b).collect();
        let z = z_score(&d, 0.0);
        assert!(z.abs() < 4.0, "t = {t}: z = {z}");
        let predicted = collapse_core::results::predicted(&s.cells[0], &theory[0], t, "test_error").unwrap();
        let mean = column(&v, t, TEST).iter().sum::<f64>() / 600.0;
        assert!((mean - predicted).abs() < 0.05 * predicted, "t = {t}: {mean} vs {predicted}");
    }
}

/// Over-parametrised min-norm generators (T₀ < d), Σ = I: exponential approach to the null
/// risk with fresh designs, also for σ₀ = 0; one projection with a fixed design.
#[test]
fn over_parametrised_generators_decay_to_the_null_risk() {
    for sigma0 in [0.0, 0.5] {
        for (design, path) in [("fresh", "refit"), ("fixed", "spectral")] {
            let protocol = format!(
                "generator = \"min-norm\"\ngenerator_samples = 40\ngenerator_noise_sd = {sigma0}\ngenerator_design = \"{design}\"\npath = \"{path}\""
            );
            let s = scenario(&chain_text(50, 80, 6, ISO, "kind = \"ridge\"\nlambda = 0.1", &protocol, 0.5));
            let v = replicates(&s, 0, 800, 25 + (sigma0 * 10.0) as u64);
            for t in [1, 2, 6] {
                let k = t as u32;
                let expected = if design == "fresh" {
                    chain_overparam_error(80, 40, 1.0, sigma0 * sigma0, k).unwrap()
                } else {
                    chain_overparam_fixed_error(80, 40, 1.0, sigma0 * sigma0, k).unwrap()
                };
                let xs = column(&v, t, slot(&s, "generator_error"));
                let z = z_score(&xs, expected);
                assert!(z.abs() < 4.0, "σ0 = {sigma0} {design} t = {t}: z = {z} (expected {expected})");
            }
            if design == "fresh" && sigma0 == 0.0 {
                let mean6 = column(&v, 6, slot(&s, "generator_error")).iter().sum::<f64>() / 800.0;
                assert!(mean6 > 0.95 && mean6 < 1.0, "noiseless collapse to r² = 1: {mean6}");
            }
        }
    }
}

/// σ = 0 at k = 0: the downstream error is that of a direct ridge fit of X on Xw0.
#[test]
fn downstream_fit_is_ridge_on_the_replicate_design() {
    let s = scenario(&chain_text(30, 50, 1, POWER, "kind = \"ridge\"\nlambda = 0.07", "generator_samples = 60", 0.0));
    let d = data(&s, 0, Streams::new(5, 1, 0), None);
    let v = chains(&s, 0, &d, 1, 26);
    let x = d.design();
    let beta = d.beta().unwrap();
    let y = collapse_core::spectral::linalg::matvec(x, beta.as_ref(), Par::Seq);
    let lik = collapse_core::SquaredError;
    let input = FitInput { x, y: y.as_ref(), weights: None, likelihood: &lik, start: None, par: Par::Seq };
    let fit = collapse_estimators::Ridge::new(0.07);
    let b = collapse_core::Estimator::fit(&fit, &input).unwrap();
    let e: Col<f64> = &b - beta;
    let direct = s.cells[0].plugins.covariance.quad_form(e.as_ref());
    assert!((v[0][0][TEST] - direct).abs() < 1e-9 * direct.max(1e-12), "{} vs {direct}", v[0][0][TEST]);
}

/// Tuned penalties: 0 for noiseless clean data, increasing with the generations, reported
/// in the `lambda` column; `adaptive = false` keeps λ*_0.
#[test]
fn tuned_penalty_grows_and_is_reported() {
    let protocol = "generator_samples = 150\ngenerator_noise_sd = 1.0";
    for (adaptive, grows) in [("true", true), ("false", false)] {
        let s = scenario(&chain_text(
            100,
            60,
            4,
            POWER,
            &format!("kind = \"tuned-ridge\"\nadaptive = {adaptive}"),
            protocol,
            0.1,
        ));
        let c = &s.cells[0];
        assert_eq!(c.plan.metrics.last().unwrap().metric.name, "lambda");
        let d = data(&s, 0, Streams::new(6, 1, 0), None);
        let v = chains(&s, 0, &d, 1, 27);
        let lambdas: Vec<f64> = (0..=4).map(|t| v[0][t][slot(&s, "lambda")]).collect();
        assert!(lambdas[0] > 0.0);
        if grows {
            assert!(lambdas.windows(2).all(|w| w[1] > w[0]), "{lambdas:?}");
        } else {
            assert!(lambdas.iter().all(|l| l.to_bits() == lambdas[0].to_bits()), "{lambdas:?}");
        }
    }
}

fn resolve_error(text: &str) -> String {
    let table = collapse_core::spec::parse(text, "t").unwrap();
    collapse_core::spec::resolve(&table).unwrap_err().to_string()
}

/// Every invalid parameter or combination names its field.
#[test]
fn invalid_parameters_name_their_field() {
    let est = "kind = \"ridge\"\nlambda = 0.1";
    let cases: Vec<(String, &str)> = vec![
        (chain_text(50, 30, 2, ISO, est, "generator_samples = 20", 1.0), "protocol.generator"),
        (chain_text(50, 30, 2, ISO, est, "generator_samples = 0", 1.0), "protocol.generator_samples"),
        (
            chain_text(50, 30, 2, ISO, est, "generator_samples = 60\ngenerator_noise_sd = -1.0", 1.0),
            "protocol.generator_noise_sd",
        ),
        (
            chain_text(50, 30, 2, ISO, est, "generator_samples = 60\ngenerator_lambda = 0.1", 1.0),
            "protocol.generator_lambda",
        ),
        (
            chain_text(
                50,
                30,
                2,
                ISO,
                est,
                "generator_samples = 60\ngenerator = \"ridge\"\ngenerator_lambda = -0.1",
                1.0,
            ),
            "protocol.generator_lambda",
        ),
        (
            chain_text(
                50,
                30,
                2,
                ISO,
                est,
                "generator_samples = 60\ngenerator = \"min-norm\"\npath = \"wishart\"",
                1.0,
            ),
            "protocol.path",
        ),
        (chain_text(50, 30, 2, ISO, est, "generator_samples = 60\npath = \"spectral\"", 1.0), "protocol.path"),
        (chain_text(50, 30, 2, ISO, est, "generator_samples = 60\ngenerator = \"lasso\"", 1.0), "protocol.generator"),
        (chain_text(50, 30, 2, ISO, est, "generator_samples = 60\nexact = 3", 1.0), "protocol.exact"),
        (chain_text(50, 30, 2, ISO, "kind = \"irls\"", "generator_samples = 60", 1.0), "estimator.kind"),
        (
            chain_text(50, 30, 2, ISO, est, "generator_samples = 60", 1.0)
                .replace("noise_sd = 1\n", "noise_sd = 1\nsynthetic_noise_sd = 2.0\n"),
            "family.synthetic_noise_sd",
        ),
        (
            chain_text(50, 30, 2, ISO, est, "generator_samples = 60", 1.0) + "[policy]\nkind = \"accumulate\"\n",
            "policy.kind",
        ),
        (
            chain_text(50, 30, 2, ISO, est, "generator_samples = 60", 1.0)
                + "[schedule]\nkind = \"constant\"\nw = 0.5\n",
            "schedule",
        ),
    ];
    for (text, field) in cases {
        let e = resolve_error(&text);
        assert!(e.contains(field), "expected `{field}` in: {e}\n{text}");
    }
    // tuned-ridge's own parameter.
    let t = chain_text(50, 30, 2, ISO, "kind = \"tuned-ridge\"\nadaptive = 3", "generator_samples = 60", 1.0);
    assert!(resolve_error(&t).contains("estimator.adaptive"), "{}", resolve_error(&t));
    // tuned-ridge under a protocol that does not tune.
    let t = text(
        20,
        40,
        2,
        "[estimator]\nkind = \"tuned-ridge\"\n[schedule]\nkind = \"constant\"\nw = 0.5\n[protocol]\nkind = \"fresh-labels\"\n",
    );
    assert!(resolve_error(&t).contains("estimator.kind"));
    // tuned-ridge without a chain theory (min-norm generators).
    let t =
        chain_text(50, 30, 2, ISO, "kind = \"tuned-ridge\"", "generator_samples = 20\ngenerator = \"min-norm\"", 1.0);
    assert!(resolve_error(&t).contains("tuned-ridge"));
}
