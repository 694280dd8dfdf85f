//! Registered scenarios. Their files live in the repository's `scenarios/` folder, so
//! `collapse run golden-ratio` and `collapse run scenarios/golden-ratio.toml` are the
//! same run.

use collapse_core::ScenarioPlugin;

collapse_core::inventory::submit! {
    ScenarioPlugin {
        name: "golden-ratio",
        summary: "Min-norm with fresh-label mixing: the long-run risk is lowest at w = 1/φ ≈ 0.618",
        toml: include_str!("../../../scenarios/golden-ratio.toml"),
    }
}

collapse_core::inventory::submit! {
    ScenarioPlugin {
        name: "ridge-mixing",
        summary: "Ridge with fresh-label mixing over a λ × w grid: w*(λ) rises from 1/φ towards 1",
        toml: include_str!("../../../scenarios/ridge-mixing.toml"),
    }
}

collapse_core::inventory::submit! {
    ScenarioPlugin {
        name: "optimal-w-ridge",
        summary: "Ridge: theory-optimal w*(λ) vs 1/φ for isotropic, power-law, spiked and equicorrelated Σ (random effects)",
        toml: include_str!("../../../scenarios/optimal-w-ridge.toml"),
    }
}

collapse_core::inventory::submit! {
    ScenarioPlugin {
        name: "risk-vs-w",
        summary: "Limit risk vs w for min-norm and ridge at γ = 0.5, 1.5, 2, simulation overlaid",
        toml: include_str!("../../../scenarios/risk-vs-w.toml"),
    }
}

collapse_core::inventory::submit! {
    ScenarioPlugin {
        name: "dynamic-vs-constant",
        summary: "Min-norm risk path of the dynamic schedule vs constant w = 1/φ",
        toml: include_str!("../../../scenarios/dynamic-vs-constant.toml"),
    }
}
