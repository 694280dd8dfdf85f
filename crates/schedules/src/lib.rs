//! Schedules: the real-data weight w_t of each iteration.
//!
//! Every schedule returns w_0, …, w_T with w_0 = 1 (t = 0 fits real labels only) and
//! every weight in [0, 1]. Plugins: `constant`, `golden-ratio`, `dynamic`, `list`,
//! `optimal` (the protocol theory's optimum), and for the `weighted` protocol
//! `p3-optimal` (w*(k)) and `pooling` (n/(n + m)).

use collapse_core::{BuildContext, CellView, CoreError, ParamError, Params, Schedule};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// 1/φ = (√5 − 1)/2, the optimal constant weight for min-norm interpolation.
pub const INVERSE_GOLDEN_RATIO: f64 = collapse_theory::GOLDEN_W;

fn with_first_real(iterations: usize, w: impl Fn(usize) -> f64) -> Vec<f64> {
    (0..=iterations).map(|t| if t == 0 { 1.0 } else { w(t) }).collect()
}

/// A constant real-data weight w for every iteration t ≥ 1.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `w` | (required) | 0 ≤ w ≤ 1 | weight of real labels (1: fresh real labels only; 0: pure self-training) |
///
/// Reference: Garg, Bhattacharya, Sur (2025), arXiv 2509.22341, fresh-data augmentation.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ConstantParams {
    /// Real-data weight w in [0, 1].
    #[schemars(range(min = 0.0, max = 1.0))]
    pub w: f64,
}

/// See [`ConstantParams`].
#[derive(Debug, Clone, Copy)]
pub struct Constant {
    w: f64,
}

impl Schedule for Constant {
    fn weights(&self, cell: &CellView<'_>) -> Result<Vec<f64>, CoreError> {
        Ok(with_first_real(cell.iterations, |_| self.w))
    }
}

impl Params for ConstantParams {
    type Target = dyn Schedule;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Schedule>, ParamError> {
        Ok(Box::new(Constant { w: self.w }))
    }
    fn example() -> Self {
        ConstantParams { w: 0.618 }
    }
}

/// The constant weight w = 1/φ = 0.6180…, which minimises the limit risk
/// B + c(w)V of min-norm interpolation, c(w) = (w² + (1−w)²)/(w(2−w)), for any
/// covariance, aspect ratio and SNR.
///
/// No parameters.
///
/// Reference: Garg, Bhattacharya, Sur (2025), Thm 3.1; He, Xu, Cheng (2025) with k = 1.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct GoldenRatioParams {}

impl Params for GoldenRatioParams {
    type Target = dyn Schedule;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Schedule>, ParamError> {
        Ok(Box::new(Constant { w: INVERSE_GOLDEN_RATIO }))
    }
    fn example() -> Self {
        GoldenRatioParams {}
    }
}

/// Dynamic mixing: w_0 = 1 and w_t = (1 + w_{t−1})/(2 + w_{t−1}), the greedy
/// one-step minimiser of the min-norm variance factor. Then w_t = F_{2t+1}/F_{2t+2}
/// (Fibonacci): 1, 2/3, 5/8, 13/21, … → 1/φ, and the min-norm risk is B + w_t V.
///
/// No parameters.
///
/// Reference: Garg, Bhattacharya, Sur (2025), dynamic mixing; docs/fresh-labels.md §4.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct DynamicParams {}

/// See [`DynamicParams`].
#[derive(Debug, Clone, Copy)]
pub struct Dynamic;

impl Schedule for Dynamic {
    fn weights(&self, cell: &CellView<'_>) -> Result<Vec<f64>, CoreError> {
        Ok(collapse_theory::dynamic_weights(cell.iterations))
    }
}

impl Params for DynamicParams {
    type Target = dyn Schedule;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Schedule>, ParamError> {
        Ok(Box::new(Dynamic))
    }
    fn example() -> Self {
        DynamicParams {}
    }
}

/// Explicit weights w_1, …, w_T, one per iteration after the first fit (w_0 = 1).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `w` | (required) | T values, each in [0, 1] | weight of iteration t = 1..T |
///
/// Errors: a value outside [0, 1]; a length different from `iterations`.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct ListParams {
    /// The weights w_1..w_T (one per iteration), each in [0, 1].
    #[schemars(inner(range(min = 0.0, max = 1.0)))]
    pub w: Vec<f64>,
}

/// See [`ListParams`].
#[derive(Debug, Clone)]
pub struct List {
    w: Vec<f64>,
}

impl Schedule for List {
    fn weights(&self, cell: &CellView<'_>) -> Result<Vec<f64>, CoreError> {
        if self.w.len() != cell.iterations {
            return Err(CoreError::config(
                "w",
                format!(
                    "has {} values but iterations = {}; give one weight per iteration t = 1..{}",
                    self.w.len(),
                    cell.iterations,
                    cell.iterations
                ),
            ));
        }
        Ok(with_first_real(cell.iterations, |t| self.w[t - 1]))
    }
}

impl Params for ListParams {
    type Target = dyn Schedule;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Schedule>, ParamError> {
        Ok(Box::new(List { w: self.w.clone() }))
    }
    fn example() -> Self {
        ListParams { w: vec![1.0, 0.8, 0.7, 0.65, 0.62] }
    }
}

collapse_core::register!(SchedulePlugin, ConstantParams, "constant", "Constant real-data weight w");
collapse_core::register!(
    SchedulePlugin,
    GoldenRatioParams,
    "golden-ratio",
    "Constant w = 1/φ ≈ 0.618 (optimal for min-norm)"
);
collapse_core::register!(SchedulePlugin, DynamicParams, "dynamic", "w_0 = 1, w_t = (1 + w_{t−1})/(2 + w_{t−1}) → 1/φ");
collapse_core::register!(SchedulePlugin, ListParams, "list", "Explicit weights w_1..w_T");

/// The theory-optimal constant weight: w = the argmin over constant weights of the
/// stationary main metric predicted by the theory of the cell's own protocol, for the
/// cell's estimator, covariance spectrum, signal distribution, sizes and family. For
/// fresh-label mixing that is w*(λ) of ridge (docs/asymptotics.md §5), 1/φ for
/// min-norm/OLS or the noise-ratio optimum (√(k² + 4k) − k)/2 (docs/fresh-labels.md §3);
/// for fixed real labels it is 1 (docs/fixed-labels.md §3).
///
/// No parameters. Errors: a cell whose protocol has no theory (the message says why).
///
/// Reference: Garg, Bhattacharya, Sur (2025), §3.2 (optimal mixing for ridge).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct OptimalParams {}

/// See [`OptimalParams`].
#[derive(Debug, Clone, Copy)]
pub struct Optimal;

impl Schedule for Optimal {
    fn weights(&self, cell: &CellView<'_>) -> Result<Vec<f64>, CoreError> {
        let theory = cell
            .protocol
            .theory(cell)
            .map_err(|reason| CoreError::config("kind", format!("`optimal` needs the protocol's theory: {reason}")))?;
        let (w, _) = theory
            .optimal_weight()
            .map_err(|reason| CoreError::config("kind", format!("`optimal` has no optimal weight here: {reason}")))?;
        Ok(with_first_real(cell.iterations, |_| w))
    }
}

impl Params for OptimalParams {
    type Target = dyn Schedule;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Schedule>, ParamError> {
        Ok(Box::new(Optimal))
    }
    fn example() -> Self {
        OptimalParams {}
    }
}

collapse_core::register!(
    SchedulePlugin,
    OptimalParams,
    "optimal",
    "Constant w minimising the stationary risk predicted by the protocol's theory (w*(λ); 1/φ for min-norm)"
);

/// P3's optimal weight for the cell's real-to-synthetic ratio k = n/m:
/// w*(k) = (√(k² + 4k) − k)/2, the root in (0, 1) of w² + kw − k = 0 (docs/weighted.md §2).
/// It minimises the stationary error factor (w² + k(1 − w)²)/(w(2 − w)): exactly for the
/// Gaussian mean with the covariance known, to first order for the other families
/// (docs/families.md). Unlike `optimal`, which minimises the cell's own theory (and so
/// follows a family's departures from P3's recursion), this is the one expression P3
/// proposes for every family; w*(1) = 1/φ.
///
/// No parameters. Errors: a protocol that does not draw n real and m synthetic samples
/// (only `weighted` does).
///
/// Reference: He, Xu & Cheng (2025), arXiv 2502.18049.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct P3OptimalParams {}

/// See [`P3OptimalParams`].
#[derive(Debug, Clone, Copy)]
pub struct P3Optimal;

fn sizes(cell: &CellView<'_>, schedule: &str) -> Result<collapse_core::SampleSizes, CoreError> {
    cell.protocol.sample_sizes(cell).ok_or_else(|| {
        CoreError::config(
            "kind",
            format!("`{schedule}` needs a protocol that draws n real and m synthetic samples per round (`weighted`)"),
        )
    })
}

impl Schedule for P3Optimal {
    fn weights(&self, cell: &CellView<'_>) -> Result<Vec<f64>, CoreError> {
        let k = sizes(cell, "p3-optimal")?.ratio();
        let w = collapse_theory::optimal_w_noise_ratio(k).map_err(|e| CoreError::config("kind", e.to_string()))?;
        Ok(with_first_real(cell.iterations, |_| w))
    }
}

impl Params for P3OptimalParams {
    type Target = dyn Schedule;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Schedule>, ParamError> {
        Ok(Box::new(P3Optimal))
    }
    fn example() -> Self {
        P3OptimalParams {}
    }
}

/// Pooling: weigh every sample alike, w = n/(n + m) = k/(1 + k), the weight of plain
/// training on the union of real and synthetic samples. Suboptimal unless m ≪ n: at
/// k = 0.1 its stationary error factor is 0.524 against 0.270 at w*(k)
/// (docs/weighted.md §4).
///
/// No parameters. Errors: a protocol that does not draw n real and m synthetic samples.
///
/// Reference: He, Xu & Cheng (2025), arXiv 2502.18049 (the naive mixing baseline).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PoolingParams {}

/// See [`PoolingParams`].
#[derive(Debug, Clone, Copy)]
pub struct Pooling;

impl Schedule for Pooling {
    fn weights(&self, cell: &CellView<'_>) -> Result<Vec<f64>, CoreError> {
        let s = sizes(cell, "pooling")?;
        let w = s.real as f64 / (s.real + s.synthetic) as f64;
        Ok(with_first_real(cell.iterations, |_| w))
    }
}

impl Params for PoolingParams {
    type Target = dyn Schedule;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Schedule>, ParamError> {
        Ok(Box::new(Pooling))
    }
    fn example() -> Self {
        PoolingParams {}
    }
}

collapse_core::register!(
    SchedulePlugin,
    P3OptimalParams,
    "p3-optimal",
    "Constant w*(k) = (√(k² + 4k) − k)/2 for k = n/m of the weighted protocol (1/φ at k = 1)"
);
collapse_core::register!(
    SchedulePlugin,
    PoolingParams,
    "pooling",
    "Constant w = n/(n + m): every sample weighted alike"
);

#[cfg(test)]
mod tests {
    use super::*;
    use collapse_core::spec::{ResolvedScenario, parse, resolve};
    use collapse_covariance as _;
    use collapse_estimators as _;
    use collapse_families as _;
    use collapse_protocols as _;

    /// A resolved one-cell scenario with `iterations`, whose cell view the schedules see.
    fn scenario(iterations: usize) -> ResolvedScenario {
        let text = format!(
            "name = \"t\"\nreplicates = 1\niterations = {iterations}\n[design]\nn = 4\np = 8\n[estimator]\nkind = \"min-norm\"\n[schedule]\nkind = \"constant\"\nw = 0.5\n"
        );
        resolve(&parse(&text, "test").unwrap()).unwrap()
    }
    fn ctx() -> BuildContext {
        BuildContext { n: 1, p: 1 }
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<Constant>();
        check::<Dynamic>();
        check::<List>();
    }

    #[test]
    fn weights_start_at_one_and_stay_in_unit_interval() {
        let all: Vec<Box<dyn Schedule>> = vec![
            ConstantParams::example().build(&ctx()).unwrap(),
            GoldenRatioParams::example().build(&ctx()).unwrap(),
            DynamicParams::example().build(&ctx()).unwrap(),
            ListParams::example().build(&ctx()).unwrap(),
        ];
        for s in all {
            let sc = scenario(5);
            let w = s.weights(&sc.cells[0].view()).unwrap();
            assert_eq!(w.len(), 6);
            assert!((w[0] - 1.0).abs() < f64::EPSILON);
            assert!(w.iter().all(|x| (0.0..=1.0).contains(x)), "{s:?}: {w:?}");
        }
    }

    /// The dynamic schedule's weights are ratios of Fibonacci numbers F_{2t+1}/F_{2t+2}.
    #[test]
    fn dynamic_is_fibonacci_and_tends_to_inverse_golden_ratio() {
        let w = Dynamic.weights(&scenario(30).cells[0].view()).unwrap();
        let fib: Vec<f64> = (0..70)
            .scan((0.0f64, 1.0f64), |s, _| {
                let out = s.0;
                *s = (s.1, s.0 + s.1);
                Some(out)
            })
            .collect();
        for (t, wt) in w.iter().enumerate().take(10) {
            assert!((wt - fib[2 * t + 1] / fib[2 * t + 2]).abs() < 1e-15, "t = {t}");
        }
        assert!((w[30] - INVERSE_GOLDEN_RATIO).abs() < 1e-15);
        assert!((INVERSE_GOLDEN_RATIO - (5f64.sqrt() - 1.0) / 2.0).abs() < 1e-16);
    }

    #[test]
    fn out_of_range_weights_are_rejected() {
        let e = ConstantParams { w: 1.2 }.checked_build(&ctx()).unwrap_err();
        assert_eq!(e.field(), Some("w"));
        assert!(e.to_string().contains("[0, 1]"), "{e}");
        let e = ConstantParams { w: -0.1 }.checked_build(&ctx()).unwrap_err();
        assert_eq!(e.field(), Some("w"));
        let e = ListParams { w: vec![0.5, 2.0] }.checked_build(&ctx()).unwrap_err();
        assert_eq!(e.field(), Some("w[1]"));
    }

    #[test]
    fn list_length_must_match_iterations() {
        let s = ListParams { w: vec![0.5; 3] }.build(&ctx()).unwrap();
        let err = s.weights(&scenario(4).cells[0].view()).unwrap_err().to_string();
        assert!(err.contains("iterations = 4"), "{err}");
        let w = s.weights(&scenario(3).cells[0].view()).unwrap();
        assert_eq!(w, vec![1.0, 0.5, 0.5, 0.5]);
    }

    /// p3-optimal and pooling read k from the weighted protocol; other protocols are refused.
    #[test]
    fn p3_optimal_and_pooling() {
        let text = "name = \"t\"\nreplicates = 1\niterations = 2\n[design]\nn = 100\np = 1\n[family]\nkind = \"gaussian\"\n[estimator]\nkind = \"mle\"\n[schedule]\nkind = \"constant\"\nw = 0.5\n[protocol]\nkind = \"weighted\"\nk = 0.1\n";
        let sc = resolve(&parse(text, "test").unwrap()).unwrap();
        let view = sc.cells[0].view();
        let w = P3Optimal.weights(&view).unwrap();
        assert!(
            (w[1] - collapse_theory::optimal_w_noise_ratio(0.1).unwrap()).abs() < 1e-15 && (w[0] - 1.0).abs() < 1e-15
        );
        assert!((w[1] - 0.270_156).abs() < 1e-6, "{}", w[1]);
        let p = Pooling.weights(&view).unwrap();
        assert!((p[2] - 100.0 / 1100.0).abs() < 1e-15);
        let e = Pooling.weights(&scenario(2).cells[0].view()).unwrap_err();
        assert!(e.to_string().contains("weighted"), "{e}");
        assert!(P3Optimal.weights(&scenario(2).cells[0].view()).is_err());
    }
}
