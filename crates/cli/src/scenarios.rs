//! Registered scenarios. Their files live in this package's `scenarios/` folder, so
//! `collapse run golden-ratio` and `collapse run crates/cli/scenarios/golden-ratio.toml`
//! are the same run, and `cargo package` includes them.

use collapse_core::ScenarioPlugin;

macro_rules! scenario {
    ($name:literal, $summary:literal) => {
        collapse_core::inventory::submit! {
            ScenarioPlugin { name: $name, summary: $summary, toml: include_str!(concat!("../scenarios/", $name, ".toml")) }
        }
    };
}

scenario!("golden-ratio", "Min-norm with fresh-label mixing: the long-run risk is lowest at w = 1/φ ≈ 0.618");
scenario!("ridge-mixing", "Ridge with fresh-label mixing over a λ × w grid: w*(λ) rises from 1/φ towards 1");
scenario!(
    "optimal-w-ridge",
    "Ridge: theory-optimal w*(λ) vs 1/φ for isotropic, power-law, spiked and equicorrelated Σ (random effects)"
);
scenario!("risk-vs-w", "Limit risk vs w for min-norm and ridge at γ = 0.5, 1.5, 2, simulation overlaid");
scenario!("dynamic-vs-constant", "Min-norm risk path of the dynamic schedule vs constant w = 1/φ");
scenario!(
    "fixed-labels-collapse",
    "Fixed real labels: at w = 0 the risk grows linearly in t (collapse); for min-norm no w < 1 beats w = 1"
);
scenario!(
    "fully-synthetic",
    "P3 at w = 0 across five families: errors grow with t (collapse), the Gaussian covariance shrinks to 0"
);
scenario!("golden-ratio-families", "P3 at k = 1, w swept, five families: the long-run error is lowest near w = 1/φ");
scenario!(
    "optimal-weight-vs-k",
    "P3's w*(k) for k = n/m from 0.01 to 10: simulated argmin vs theory; p3-optimal vs pooling"
);
scenario!("real-data", "Logistic family on the shipped WDBC table (CC BY 4.0): weighted real + synthetic rounds");
scenario!(
    "collapse-or-not",
    "Fixed labels, fresh labels, fresh covariates, partial labels at γ = 2: where w = 0 collapses, where synthetic data help"
);
scenario!(
    "fresh-covariates-optimal-w",
    "Fresh covariates: optimal w against SNR and γ (theory), simulation at a few points"
);
scenario!(
    "partial-labels",
    "Fresh covariates with a fraction π of real labels: risk against π and w, synthetic-only rows kept or dropped"
);
scenario!(
    "replace-vs-accumulate",
    "Replace, accumulate, accumulate-subsample at w = 0, n > p and n < p: linear growth vs the π²/6 bound"
);
scenario!(
    "chain-linear",
    "P2's chain, OLS generators and downstream: the test error grows linearly in the generations"
);
scenario!(
    "chain-overparametrized",
    "Min-norm generators with T0 < d: exponential collapse to the null risk, even without noise"
);
scenario!(
    "scaling-law-crossover",
    "Power-law Σ, tuned ridge: error vs T at the fast rate on clean data, the slow rate after 1 or 10 generations"
);
scenario!(
    "adaptive-regularization",
    "Chain with tuned downstream λ: λ grows with the generations and re-tuning beats the clean-data λ"
);
