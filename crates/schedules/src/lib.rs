//! Schedules: the real-data weight w_t of each iteration.
//!
//! Every schedule returns w_0, …, w_T with w_0 = 1 (t = 0 fits real labels only) and
//! every weight in [0, 1]. Plugins: `constant`, `golden-ratio`, `dynamic`, `list`.

use collapse_core::{BuildContext, CellView, CoreError, ParamError, Params, Schedule, SchedulePlugin, check_range};
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
        check_range("w", self.w, 0.0, 1.0)?;
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
/// Reference: Garg, Bhattacharya, Sur (2025), dynamic mixing; THEORY.md §A.4.
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
        for (k, &w) in self.w.iter().enumerate() {
            check_range(&format!("w[{k}]"), w, 0.0, 1.0)?;
        }
        Ok(Box::new(List { w: self.w.clone() }))
    }
    fn example() -> Self {
        ListParams { w: vec![1.0, 0.8, 0.7, 0.65, 0.62] }
    }
}

collapse_core::inventory::submit! { SchedulePlugin::new::<ConstantParams>("constant", "Constant real-data weight w") }
collapse_core::inventory::submit! { SchedulePlugin::new::<GoldenRatioParams>("golden-ratio", "Constant w = 1/φ ≈ 0.618 (optimal for min-norm)") }
collapse_core::inventory::submit! { SchedulePlugin::new::<DynamicParams>("dynamic", "w_0 = 1, w_t = (1 + w_{t−1})/(2 + w_{t−1}) → 1/φ") }
collapse_core::inventory::submit! { SchedulePlugin::new::<ListParams>("list", "Explicit weights w_1..w_T") }

#[cfg(test)]
mod tests {
    use super::*;
    use collapse_core::faer::{Col, ColRef, Mat, MatRef};
    use collapse_core::rng::Rng;
    use collapse_core::{Covariance, Estimator, Signal};

    #[derive(Debug)]
    struct Dummy;
    impl Estimator for Dummy {
        fn fit(
            &self,
            _: MatRef<'_, f64>,
            _: ColRef<'_, f64>,
            _: Option<ColRef<'_, f64>>,
        ) -> Result<Col<f64>, CoreError> {
            Ok(Col::zeros(1))
        }
    }
    impl Covariance for Dummy {
        fn dim(&self) -> usize {
            1
        }
        fn eigenvalues(&self) -> Vec<f64> {
            vec![1.0]
        }
        fn to_eigenbasis(&self, v: ColRef<'_, f64>) -> Col<f64> {
            v.to_owned()
        }
        fn to_standard_basis(&self, c: ColRef<'_, f64>) -> Col<f64> {
            c.to_owned()
        }
        fn apply(&self, m: MatRef<'_, f64>) -> Mat<f64> {
            m.to_owned()
        }
        fn sample(&self, n: usize, _: &mut Rng) -> Mat<f64> {
            Mat::zeros(n, 1)
        }
    }
    impl Signal for Dummy {
        fn draw(&self, _: &dyn Covariance, _: &mut Rng) -> Result<Col<f64>, CoreError> {
            Ok(Col::zeros(1))
        }
        fn radius_squared(&self, _: &dyn Covariance) -> f64 {
            0.0
        }
    }

    fn view(iterations: usize) -> CellView<'static> {
        CellView { n: 1, p: 1, noise_sd: 1.0, iterations, estimator: &Dummy, covariance: &Dummy, signal: &Dummy }
    }
    fn ctx() -> BuildContext {
        BuildContext { n: 1, p: 1, noise_sd: 1.0 }
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
            let w = s.weights(&view(5)).unwrap();
            assert_eq!(w.len(), 6);
            assert!((w[0] - 1.0).abs() < f64::EPSILON);
            assert!(w.iter().all(|x| (0.0..=1.0).contains(x)), "{s:?}: {w:?}");
        }
    }

    /// The dynamic schedule's weights are ratios of Fibonacci numbers F_{2t+1}/F_{2t+2}.
    #[test]
    fn dynamic_is_fibonacci_and_tends_to_inverse_golden_ratio() {
        let w = Dynamic.weights(&view(30)).unwrap();
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
        let e = ConstantParams { w: 1.2 }.build(&ctx()).unwrap_err();
        assert_eq!(e.field, "w");
        assert!(e.message.contains("[0, 1]"));
        let e = ConstantParams { w: -0.1 }.build(&ctx()).unwrap_err();
        assert_eq!(e.field, "w");
        let e = ListParams { w: vec![0.5, 2.0] }.build(&ctx()).unwrap_err();
        assert_eq!(e.field, "w[1]");
    }

    #[test]
    fn list_length_must_match_iterations() {
        let s = ListParams { w: vec![0.5; 3] }.build(&ctx()).unwrap();
        let err = s.weights(&view(4)).unwrap_err().to_string();
        assert!(err.contains("iterations = 4"), "{err}");
        let w = s.weights(&view(3)).unwrap();
        assert_eq!(w, vec![1.0, 0.5, 0.5, 0.5]);
    }
}

/// The theory-optimal constant weight: w = w*(λ) = argmin_w R_∞(λ, w), the stationary
/// risk of ridge under fresh-label mixing for the cell's estimator, covariance spectrum
/// H, signal distribution G, aspect ratio γ = p/n, signal strength r² and noise σ²
/// (THEORY.md §A.5), found by a bracketing 1-D minimiser; w = 1/φ for min-norm / OLS.
/// It assumes synthetic labels carry the same noise level as real ones.
///
/// No parameters. Errors: an estimator that is not ridge-like (no penalty to optimise
/// for), or a signal that cannot say how ‖β‖² spreads over Σ's eigenbasis.
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
        let inputs = collapse_theory::models::Inputs::from_view(cell).ok_or_else(|| {
            CoreError::config(
                "kind",
                "`optimal` needs a ridge-like estimator (ridge, min-norm, ols) and a signal with a known spread over Σ's eigenbasis",
            )
        })?;
        let w = if inputs.lambda > 0.0 {
            collapse_theory::optimal_w(&inputs.h, &inputs.g, inputs.gamma, inputs.r2, inputs.sigma2, inputs.lambda)
                .map_err(|e| CoreError::numerical("optimal weight", e.to_string()))?
                .0
        } else {
            INVERSE_GOLDEN_RATIO
        };
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

collapse_core::inventory::submit! { SchedulePlugin::new::<OptimalParams>("optimal", "Constant w = w*(λ) from the asymptotic theory (1/φ for min-norm)") }
