use collapse_core::faer::{Col, ColRef};
use collapse_core::rand::RngExt as _;
use collapse_core::spectral::GaussHermite;
use collapse_core::{
    BuildContext, CoreError, Covariance, Family, Likelihood, MetricKind, MetricSpec, Origin, ParamError, Params,
    Regression, Rng,
};
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

/// Nodes per dimension of the Gauss–Hermite rule for the excess log-loss (a 40 × 40
/// tensor rule, built once per family object).
///
/// Why 40: the integrand varies on the unit scale of the logistic function (it is
/// analytic only in the strip |Im| < π, where softplus and σ have their singularities),
/// while u = xᵀβ and v = xᵀβ̂ have standard deviations ℓ ≈ ‖β‖_Σ ≈ ‖β̂‖_Σ, so the rule
/// needs more nodes as ℓ grows. Measured against a 200-node rule, over ‖β̂ − β‖_Σ/ℓ from
/// 0.01 to 0.3, the relative error of the 40-node rule is ≤ 1e-12 for ℓ ≤ 1, ≤ 6e-9 at
/// ℓ = 1.5, ≤ 5e-7 at ℓ = 2, ≤ 1.2e-4 at ℓ = 3 and ≤ 2.2e-3 at ℓ = 4 (test
/// `quadrature_has_converged` pins the first three). Scenarios here use ℓ ≈ 1, where the
/// error is 10 orders of magnitude below the Monte Carlo error; even at ℓ = 4 (most labels
/// nearly deterministic) it stays below the sampling error of a few hundred replicates.
/// The 1600 evaluations (one softplus each: softplus(u) and σ(u) are computed once per outer
/// node) cost about 10 µs per score, less than one IRLS fit on a few hundred rows;
/// 80 nodes (4× the cost) would be needed for 1e-10 at ℓ = 2.
pub const LOGISTIC_GH_ORDER: usize = 40;

/// Logistic regression: y ∈ {0, 1} with P(y = 1 | x) = σ(xᵀβ), σ(u) = 1/(1 + e^{−u}).
/// Real labels come from η = Xβ, synthetic labels from the previous fit, η = Xβ̂, by the
/// same law; each label compares one uniform draw U with the probability (y = 1 iff
/// U < σ(η)), so common random numbers couple the labels of cells with nearby fits.
/// Mixing real and synthetic labels with sample weights w and 1 − w on shared rows equals
/// fitting the soft label z = w·y + (1 − w)·ỹ ∈ [0, 1] (docs/logistic.md §1), so the
/// likelihood accepts any label in [0, 1].
///
/// Likelihood `bernoulli` (canonical GLM): b(η) = softplus(η) = log(1 + e^η), mean σ(η),
/// variance σ(η)(1 − σ(η)), loss(y, η) = softplus(η) − yη, evaluated without ever taking
/// the log of a probability (docs/logistic.md §2, §5).
///
/// Metrics, in column order:
/// * `param_error` = ‖β̂ − β‖²_Σ (as the linear family's risk; theory
///   c(w)·tr(Σ I(β)⁻¹)/n, docs/logistic.md §3–§4);
/// * `excess_logloss` = E_x[KL(Bern(σ(xᵀβ)) ‖ Bern(σ(xᵀβ̂)))] for x ~ N(0, Σ): the
///   population log-loss of β̂ minus that of β. (u, v) = (xᵀβ, xᵀβ̂) is bivariate normal
///   with covariance [[βᵀΣβ, βᵀΣβ̂], [βᵀΣβ̂, β̂ᵀΣβ̂]], so the metric is a 2-D Gaussian
///   integral of KL(u, v) = softplus(v) − softplus(u) − σ(u)(v − u), computed by a
///   tensor Gauss–Hermite rule of [`LOGISTIC_GH_ORDER`] nodes per dimension after a
///   Cholesky factor of that covariance (docs/logistic.md §2, docs/numerics.md §7). For a
///   data-table design (a finite population of rows) it is the exact mean of the same KL
///   over the rows (docs/weighted.md §5).
///
/// No parameters: the Bernoulli law has no noise level, and synthetic labels drawn by a
/// law other than Bernoulli(σ(xᵀβ̂)) would not be labels of the fitted model.
///
/// Errors: a non-finite metric (an estimate with non-finite or overflowing entries) is a
/// numerical error naming the metric.
///
/// Reference: He, Xu & Cheng (2025), *Recursive Learning Without Collapse: A
/// Weighting-Based Stabilization Framework*, arXiv 2502.18049 (GLMs under weighted
/// recursive training); the soft-label equivalence and the metrics are derived in
/// docs/logistic.md §1–§2.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct LogisticParams {}

/// log(1 + eˣ) without overflow or loss of precision: max(x, 0) + log1p(e^{−|x|}).
pub fn softplus(x: f64) -> f64 {
    x.max(0.0) + (-x.abs()).exp().ln_1p()
}

/// The logistic function σ(x) = 1/(1 + e^{−x}), evaluated so that e^{±x} never overflows.
pub fn sigmoid(x: f64) -> f64 {
    if x >= 0.0 {
        1.0 / (1.0 + (-x).exp())
    } else {
        let e = x.exp();
        e / (1.0 + e)
    }
}

/// KL(Bern(σ(u)) ‖ Bern(σ(v))) = softplus(v) − softplus(u) − σ(u)(v − u), the Bregman
/// divergence of softplus (docs/logistic.md §2). The law is symmetric under
/// (u, v) → (−u, −v); using the side with u ≤ 0 keeps softplus(u) and σ(u) small, so no
/// two large terms cancel. Clamped at 0, which the exact value never goes below.
pub fn bernoulli_kl(u: f64, v: f64) -> f64 {
    kl_given_u(&KlAtU::new(u), v)
}

/// The parts of [`bernoulli_kl`] that depend on u alone, on the side u ≤ 0.
struct KlAtU {
    /// −1 when u > 0 (the law is evaluated at (−u, −v)), else 1.
    sign: f64,
    u: f64,
    softplus_u: f64,
    sigmoid_u: f64,
}

impl KlAtU {
    fn new(u: f64) -> Self {
        let sign = if u > 0.0 { -1.0 } else { 1.0 };
        let u = sign * u;
        KlAtU { sign, u, softplus_u: softplus(u), sigmoid_u: sigmoid(u) }
    }
}

/// KL(u, v) from the precomputed parts at u: one softplus per call.
fn kl_given_u(at: &KlAtU, v: f64) -> f64 {
    let v = at.sign * v;
    (softplus(v) - at.softplus_u - at.sigmoid_u * (v - at.u)).max(0.0)
}

/// The Bernoulli likelihood of logistic regression (canonical link): loss
/// softplus(η) − yη for labels y ∈ [0, 1] (soft labels from mixing included).
#[derive(Debug, Clone, Copy, Default)]
pub struct Bernoulli;

impl Likelihood for Bernoulli {
    fn name(&self) -> &'static str {
        "bernoulli"
    }
    fn is_gaussian(&self) -> bool {
        false
    }
    fn mean(&self, eta: f64) -> f64 {
        sigmoid(eta)
    }
    fn variance(&self, eta: f64) -> f64 {
        // σ'(η) = σ(η)σ(−η) = e^{−|η|}/(1 + e^{−|η|})²: one exponential, and no 1 − σ(η)
        // that would round to 0 for large η.
        let e = (-eta.abs()).exp();
        e / ((1.0 + e) * (1.0 + e))
    }
    fn loss(&self, y: f64, eta: f64) -> f64 {
        softplus(eta) - y * eta
    }
    fn valid_label(&self, y: f64) -> bool {
        (0.0..=1.0).contains(&y)
    }
}

/// See [`LogisticParams`].
#[derive(Debug, Clone)]
pub struct Logistic {
    rule: GaussHermite,
}

impl Logistic {
    /// The family, with its quadrature rule built once.
    pub fn new() -> Result<Self, CoreError> {
        Ok(Logistic { rule: GaussHermite::new(LOGISTIC_GH_ORDER)? })
    }

    /// The excess log-loss E[KL(Bern(σ(u)) ‖ Bern(σ(v)))] for (u, v) ~ N(0, C),
    /// C = [[s11, s12], [s12, s22]] (docs/logistic.md §2).
    pub fn excess_logloss(&self, s11: f64, s12: f64, s22: f64) -> f64 {
        // softplus(u) and σ(u) once per outer node: a third of the transcendental calls.
        self.rule.expect2_with(s11, s12, s22, KlAtU::new, kl_given_u)
    }
}

impl Family for Logistic {
    fn metrics(&self) -> Vec<MetricSpec> {
        vec![
            MetricSpec::new("param_error", MetricKind::SigmaError, "parameter error ‖β̂ − β‖²_Σ"),
            MetricSpec::new(
                "excess_logloss",
                MetricKind::ExcessLoss,
                "population excess log-loss E_x KL(Bern(σ(xᵀβ)) ‖ Bern(σ(xᵀβ̂))), x ~ N(0, Σ)",
            ),
        ]
    }
    fn regression(&self) -> Option<&dyn Regression> {
        Some(self)
    }
}

impl Regression for Logistic {
    fn likelihood(&self) -> &dyn Likelihood {
        &Bernoulli
    }
    fn draw_labels(&self, eta: &[f64], _origin: Origin, rng: &mut Rng, out: &mut [f64]) {
        // Real and synthetic labels have the same law; only η differs.
        for (o, &e) in out.iter_mut().zip(eta) {
            let u: f64 = rng.random();
            *o = if u < sigmoid(e) { 1.0 } else { 0.0 };
        }
    }
    fn score(
        &self,
        estimate: ColRef<'_, f64>,
        truth: ColRef<'_, f64>,
        covariance: &dyn Covariance,
        out: &mut [f64],
    ) -> Result<(), CoreError> {
        if out.len() != 2 || estimate.nrows() != truth.nrows() {
            return Err(CoreError::numerical(
                "logistic score",
                format!(
                    "{} metric slots for 2 metrics, estimate of length {} for β of length {}",
                    out.len(),
                    estimate.nrows(),
                    truth.nrows()
                ),
            ));
        }
        let err = Col::from_fn(truth.nrows(), |i| estimate[i] - truth[i]);
        let param_error = covariance.quad_form(err.as_ref());
        if !param_error.is_finite() {
            return Err(CoreError::numerical("param_error", format!("non-finite ‖β̂ − β‖²_Σ = {param_error}")));
        }
        let s11 = covariance.quad_form(truth);
        let s12 = covariance.bilinear(truth, estimate);
        let s22 = covariance.quad_form(estimate);
        let excess = match covariance.population() {
            // A data-table design: the population is the table's rows, and at the
            // population fit β the excess loss is the mean KL over them (docs/weighted.md §5).
            Some(pop) => pop.mean_over_rows(truth, estimate, bernoulli_kl),
            None => self.excess_logloss(s11, s12, s22),
        };
        if !excess.is_finite() {
            return Err(CoreError::numerical(
                "excess_logloss",
                format!("non-finite value {excess} (βᵀΣβ = {s11}, βᵀΣβ̂ = {s12}, β̂ᵀΣβ̂ = {s22})"),
            ));
        }
        out[0] = param_error;
        out[1] = excess;
        Ok(())
    }
}

impl Params for LogisticParams {
    type Target = dyn Family;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Family>, ParamError> {
        let family =
            Logistic::new().map_err(|e| ParamError::new("kind", format!("cannot build the quadrature rule: {e}")))?;
        Ok(Box::new(family))
    }
    fn example() -> Self {
        LogisticParams {}
    }
}

collapse_core::register!(
    FamilyPlugin,
    LogisticParams,
    "logistic",
    "Logistic regression, y ~ Bernoulli(σ(xᵀβ)); metrics param_error = ‖β̂ − β‖²_Σ and excess_logloss"
);

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::{Diagonal, col};
    use collapse_core::rng::{Purpose, Streams};

    fn family() -> Logistic {
        Logistic::new().unwrap()
    }

    fn score(est: &[f64], truth: &[f64], cov: &dyn Covariance) -> [f64; 2] {
        let mut out = [0.0; 2];
        family().score(col(est).as_ref(), col(truth).as_ref(), cov, &mut out).unwrap();
        out
    }

    /// E f(V), V ~ N(0, s²), by the midpoint rule on [−12s, 12s] with 200 000 cells: an
    /// independent check of the quadrature (error ~ h² f'' and the e^{−72} tails).
    fn riemann(s: f64, f: impl Fn(f64) -> f64) -> f64 {
        let cells = 200_000;
        let (a, b) = (-12.0 * s, 12.0 * s);
        let h = (b - a) / cells as f64;
        let norm = 1.0 / (s * (2.0 * std::f64::consts::PI).sqrt());
        (0..cells)
            .map(|k| {
                let v = a + (k as f64 + 0.5) * h;
                f(v) * norm * (-0.5 * v * v / (s * s)).exp() * h
            })
            .sum()
    }

    #[test]
    fn plugins_are_send_and_sync() {
        fn check<T: Send + Sync>() {}
        check::<Logistic>();
        check::<Bernoulli>();
        check::<LogisticParams>();
    }

    #[test]
    fn metrics_are_declared_in_order() {
        let m = family().metrics();
        assert_eq!(m.len(), 2);
        assert_eq!((m[0].name.as_str(), m[0].kind), ("param_error", MetricKind::SigmaError));
        assert_eq!((m[1].name.as_str(), m[1].kind), ("excess_logloss", MetricKind::ExcessLoss));
        assert!(LogisticParams::example().checked_build(&BuildContext { n: 10, p: 3 }).is_ok());
    }

    /// Stable helpers against their textbook forms where those are accurate.
    #[test]
    fn softplus_sigmoid_and_likelihood() {
        for x in [-30.0, -3.0, -0.5, 0.0, 0.7, 4.0, 30.0] {
            // log1p(eˣ) is accurate for x ≤ 0, log(1 + eˣ) for x > 0.
            let naive_sp = if x <= 0.0 { f64::exp(x).ln_1p() } else { (1.0 + f64::exp(x)).ln() };
            let naive_sig = 1.0 / (1.0 + f64::exp(-x));
            assert!((softplus(x) - naive_sp).abs() <= 1e-15 * naive_sp.max(1e-300) + 1e-300, "softplus({x})");
            assert!((sigmoid(x) - naive_sig).abs() <= 1e-15 * naive_sig, "sigmoid({x})");
            // σ'(x) = σ(x)σ(−x), accurate on both sides.
            let naive_var = sigmoid(x) * sigmoid(-x);
            assert!((Bernoulli.variance(x) - naive_var).abs() <= 4e-15 * naive_var, "variance({x})");
        }
        // No overflow far out: softplus(800) = 800, σ(−800) = 0 with σ'(±800) = 0, finite.
        assert!((softplus(800.0) - 800.0).abs() < 1e-12);
        assert!(softplus(-800.0) >= 0.0 && softplus(-800.0) < 1e-300);
        assert!(Bernoulli.variance(800.0).is_finite() && Bernoulli.variance(-800.0).is_finite());
        // loss = b(η) − yη: at η = 0, log 2 for every y.
        for y in [0.0, 0.3, 1.0] {
            assert!((Bernoulli.loss(y, 0.0) - std::f64::consts::LN_2).abs() < 1e-15);
        }
        assert!((Bernoulli.loss(1.0, 2.0) - (1.0 + f64::exp(-2.0)).ln()).abs() < 1e-15);
        for (y, ok) in [(0.0, true), (0.618, true), (1.0, true), (-0.01, false), (1.01, false), (f64::NAN, false)] {
            assert_eq!(Bernoulli.valid_label(y), ok, "{y}");
        }
        assert!(!Bernoulli.is_gaussian());
        assert_eq!(Bernoulli.name(), "bernoulli");
    }

    /// KL against the definition with logs of probabilities, where that is accurate.
    #[test]
    fn kl_matches_its_definition() {
        for (u, v) in [(0.0, 1.0), (-1.2, 0.4), (2.0, -0.5), (3.0, 3.5), (0.3, 0.3)] {
            let (p, q) = (sigmoid(u), sigmoid(v));
            let direct = p * (p / q).ln() + (1.0 - p) * ((1.0 - p) / (1.0 - q)).ln();
            assert!((bernoulli_kl(u, v) - direct).abs() < 1e-14, "({u}, {v}): {} vs {direct}", bernoulli_kl(u, v));
        }
        // Far out the direct form loses everything; the Bregman form stays ≈ (v − u)²σ'(u)/2.
        let (u, v) = (40.0, 40.001);
        let kl = bernoulli_kl(u, v);
        let second_order = 0.5 * (v - u) * (v - u) * Bernoulli.variance(u);
        assert!((kl - second_order).abs() < 1e-2 * second_order, "{kl} vs {second_order}");
    }

    /// ‖β̂ − β‖²_Σ by hand: Σ = diag(2, 0.5), β̂ − β = (0.3, −2): 2·0.09 + 0.5·4 = 2.18.
    #[test]
    fn param_error_by_hand() {
        let cov = Diagonal(vec![2.0, 0.5]);
        let s = score(&[1.3, -1.0], &[1.0, 1.0], &cov);
        assert!((s[0] - 2.18).abs() < 1e-14, "{}", s[0]);
    }

    /// β̂ = β: no excess loss, exactly.
    #[test]
    fn perfect_estimate_has_zero_excess() {
        let cov = Diagonal(vec![2.0, 0.5, 1.0]);
        let beta = [0.7, -1.1, 0.2];
        let s = score(&beta, &beta, &cov);
        assert!(s[0].abs() < 1e-300);
        assert!(s[1].abs() < 1e-15, "{}", s[1]);
    }

    /// β = 0: u ≡ 0, KL(1/2 ‖ σ(v)) = softplus(v) − log 2 − v/2 = log cosh(v/2), and
    /// v ~ N(0, s²) with s² = β̂ᵀΣβ̂. Here Σ = diag(2, 0.5), β̂ = (0.5, 2): s² = 0.5 + 2 = 2.5.
    /// Reference: a fine midpoint rule in v of log cosh(v/2).
    #[test]
    fn excess_at_zero_signal_against_a_riemann_sum() {
        let cov = Diagonal(vec![2.0, 0.5]);
        let s = score(&[0.5, 2.0], &[0.0, 0.0], &cov);
        let reference = riemann(2.5f64.sqrt(), |v| (0.5 * v).cosh().ln());
        assert!((s[1] - reference).abs() < 1e-9 * reference, "{} vs {reference}", s[1]);
        assert!((s[0] - 2.5).abs() < 1e-14);
    }

    /// The 2-D rule against three 1-D integrals: with v | u ~ N(u·C12/C11, ·),
    /// E KL = E softplus(v) − E softplus(u) − E[σ(u)u]·(C12/C11 − 1), each a 1-D Gaussian
    /// integral (midpoint rule), for a general (β, β̂) and Σ.
    #[test]
    fn excess_against_one_dimensional_reduction() {
        let cov = Diagonal(vec![1.5, 0.7, 0.3]);
        let beta = col(&[0.6, -0.8, 1.0]);
        let hat = col(&[0.75, -0.5, 1.3]);
        let (s11, s12, s22) =
            (cov.quad_form(beta.as_ref()), cov.bilinear(beta.as_ref(), hat.as_ref()), cov.quad_form(hat.as_ref()));
        let reference = riemann(s22.sqrt(), softplus)
            - riemann(s11.sqrt(), softplus)
            - riemann(s11.sqrt(), |u| sigmoid(u) * u) * (s12 / s11 - 1.0);
        let mut out = [0.0; 2];
        family().score(hat.as_ref(), beta.as_ref(), &cov, &mut out).unwrap();
        assert!(reference > 1e-3, "{reference}");
        assert!((out[1] - reference).abs() < 1e-8 * reference, "{} vs {reference}", out[1]);
    }

    /// To second order in δ = β̂ − β, excess ≈ ½ δᵀ I(β) δ (docs/logistic.md §2). With Σ = I,
    /// β = (s, 0) and δ = (0, ε): I(β) restricted to e₂ is E σ'(sZ), so excess ≈ ½ε² E σ'(sZ).
    #[test]
    fn small_perturbation_is_half_the_fisher_quadratic_form() {
        let cov = Diagonal(vec![1.0, 1.0]);
        let s = 1.3;
        let eps = 1e-3;
        let out = score(&[s, eps], &[s, 0.0], &cov);
        let alpha = riemann(s, |u| Bernoulli.variance(u));
        let predicted = 0.5 * eps * eps * alpha;
        assert!((out[1] - predicted).abs() < 1e-3 * predicted, "{} vs {predicted}", out[1]);
    }

    /// Against a 200-node rule the 40-node rule is converged at the scales simulations use
    /// (the bounds quoted in [`LOGISTIC_GH_ORDER`]).
    #[test]
    fn quadrature_has_converged() {
        let fine = GaussHermite::new(200).unwrap();
        let f = family();
        for (scale, tol) in [(0.5, 1e-11), (1.0, 1e-11), (1.5, 1e-8), (2.0, 1e-6)] {
            for rel in [0.01, 0.1, 0.3] {
                // u = scale·ζ₁; v stretched by 1 + rel and turned away from u.
                let (s11, s22) = (scale * scale, scale * scale * (1.0 + rel) * (1.0 + rel));
                let s12 = scale * scale * (1.0 + rel) * (1.0 - 0.5 * rel * rel);
                let coarse = f.excess_logloss(s11, s12, s22);
                let reference = fine.expect2(s11, s12, s22, bernoulli_kl);
                assert!(
                    (coarse - reference).abs() <= tol * reference,
                    "scale {scale}, rel {rel}: {coarse} vs {reference} ({:e})",
                    (coarse - reference).abs() / reference
                );
            }
        }
    }

    /// Labels: the mean of many draws is σ(η) (binomial z-score), for real and synthetic.
    #[test]
    fn label_draws_have_the_right_mean() {
        let n = 200_000;
        for (k, eta0) in [-2.0, 0.0, 0.8, 3.0].into_iter().enumerate() {
            for origin in [Origin::Real, Origin::Synthetic] {
                let eta = vec![eta0; n];
                let mut out = vec![-1.0; n];
                let mut rng = Streams::new(3, k as u64, 0).rng(Purpose::RealNoise, 0);
                family().draw_labels(&eta, origin, &mut rng, &mut out);
                assert!(out.iter().all(|y| y.to_bits() == 0f64.to_bits() || y.to_bits() == 1f64.to_bits()));
                let p = sigmoid(eta0);
                let mean = out.iter().sum::<f64>() / n as f64;
                let z = (mean - p) / (p * (1.0 - p) / n as f64).sqrt();
                assert!(z.abs() < 4.0, "η = {eta0}: mean {mean}, p {p}, z {z}");
            }
        }
    }

    /// Labels depend on η only through σ(η) vs one uniform per row: the same stream gives
    /// the same labels, and a larger η never turns a 1 into a 0 (the coupling common random
    /// numbers rely on).
    #[test]
    fn label_draws_are_monotone_in_eta() {
        let n = 1000;
        let lo: Vec<f64> = (0..n).map(|i| -3.0 + 6.0 * i as f64 / n as f64).collect();
        let hi: Vec<f64> = lo.iter().map(|e| e + 0.5).collect();
        let (mut a, mut b) = (vec![0.0; n], vec![0.0; n]);
        let streams = Streams::new(9, 0, 0);
        family().draw_labels(&lo, Origin::Real, &mut streams.rng(Purpose::SyntheticNoise, 1), &mut a);
        family().draw_labels(&hi, Origin::Synthetic, &mut streams.rng(Purpose::SyntheticNoise, 1), &mut b);
        assert!(a.iter().zip(&b).all(|(x, y)| x <= y));
        assert!(a.iter().zip(&b).any(|(x, y)| x < y));
    }

    #[test]
    fn non_finite_estimates_are_errors() {
        let cov = Diagonal(vec![1.0, 1.0]);
        let mut out = [0.0; 2];
        let e = family().score(col(&[f64::NAN, 0.0]).as_ref(), col(&[1.0, 0.0]).as_ref(), &cov, &mut out).unwrap_err();
        assert!(matches!(e, CoreError::Numerical { what: "param_error", .. }), "{e}");
        let e = family().score(col(&[1e200, 0.0]).as_ref(), col(&[1.0, 0.0]).as_ref(), &cov, &mut out).unwrap_err();
        assert!(matches!(e, CoreError::Numerical { .. }), "{e}");
    }
}
