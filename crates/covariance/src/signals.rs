use collapse_core::faer::Col;
use collapse_core::rng::{Rng, normal_vec};
use collapse_core::{BuildContext, CoreError, Covariance, ParamError, Params, Signal};
use rand::Rng as _;
use schemars::JsonSchema;
use serde::{Deserialize, Serialize};

fn one() -> f64 {
    1.0
}

fn unit_sphere(rng: &mut Rng, k: usize) -> Vec<f64> {
    if k == 0 {
        return Vec::new();
    }
    loop {
        let z = normal_vec(rng, 1.0, k);
        let norm = z.iter().map(|x| x * x).sum::<f64>().sqrt();
        // A zero vector has probability 0 for k ≥ 1; redraw rather than divide by 0.
        if norm > 0.0 {
            return z.into_iter().map(|x| x / norm).collect();
        }
    }
}

/// Random effects: β uniform on the sphere of radius r, redrawn for every replicate
/// (β = r·z/‖z‖, z ~ N(0, I_p)). Every eigen-direction of Σ carries an equal expected
/// share of ‖β‖², so the signal distribution G equals the spectral distribution H.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `radius` | 1.0 | r ≥ 0 | ‖β‖ |
///
/// Reference: Dobriban & Wager (2018), Ann. Statist. 46(1) (random-effects model).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct RandomSignalParams {
    /// Signal norm r = ‖β‖ ≥ 0.
    #[serde(default = "one")]
    #[schemars(range(min = 0.0))]
    pub radius: f64,
}

/// β uniform on the sphere of radius r.
#[derive(Debug, Clone)]
pub struct RandomSignal {
    radius: f64,
}

impl Signal for RandomSignal {
    fn draw(&self, covariance: &dyn Covariance, rng: &mut Rng) -> Result<Col<f64>, CoreError> {
        let u = unit_sphere(rng, covariance.dim());
        Ok(Col::from_fn(u.len(), |i| self.radius * u[i]))
    }
    fn radius_squared(&self, _: &dyn Covariance) -> f64 {
        self.radius * self.radius
    }
    fn eigen_shares(&self, covariance: &dyn Covariance) -> Option<Vec<f64>> {
        let p = covariance.dim();
        Some(vec![1.0 / p as f64; p])
    }
}

impl Params for RandomSignalParams {
    type Target = dyn Signal;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Signal>, ParamError> {
        Ok(Box::new(RandomSignal { radius: self.radius }))
    }
    fn example() -> Self {
        RandomSignalParams { radius: 1.0 }
    }
}

/// A signal aligned with the leading eigen-directions of Σ (the spikes of a spiked
/// model): β = r(√s · Q_K c + √(1−s) · Q_⊥ u), where Q_K holds the K leading
/// eigenvectors, Q_⊥ the others, and c, u are uniform on their unit spheres (redrawn
/// per replicate). A share s of ‖β‖² lies on the leading directions.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `radius` | 1.0 | r ≥ 0 | ‖β‖ |
/// | `share` | (required) | 0 ≤ s ≤ 1 | share of ‖β‖² on the leading directions |
/// | `directions` | 1 | 1 ≤ K ≤ p | number of leading eigen-directions (the number of spikes) |
///
/// Reference: the spiked model with aligned signal of Garg, Bhattacharya, Sur (2025).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct AlignedSignalParams {
    /// Signal norm r = ‖β‖ ≥ 0.
    #[serde(default = "one")]
    #[schemars(range(min = 0.0))]
    pub radius: f64,
    /// Share of ‖β‖² on the leading eigen-directions, in [0, 1].
    #[schemars(range(min = 0.0, max = 1.0))]
    pub share: f64,
    /// Number K ≥ 1 of leading eigen-directions.
    #[serde(default = "one_usize")]
    #[schemars(range(min = 1))]
    pub directions: usize,
}

fn one_usize() -> usize {
    1
}

/// See [`AlignedSignalParams`].
#[derive(Debug, Clone)]
pub struct AlignedSignal {
    radius: f64,
    share: f64,
    directions: usize,
}

impl Signal for AlignedSignal {
    fn draw(&self, covariance: &dyn Covariance, rng: &mut Rng) -> Result<Col<f64>, CoreError> {
        let p = covariance.dim();
        let k = self.directions;
        let top = unit_sphere(rng, k);
        let rest = unit_sphere(rng, p - k);
        let (a, b) = (self.share.sqrt(), (1.0 - self.share).sqrt());
        let coords = Col::from_fn(p, |i| self.radius * if i < k { a * top[i] } else { b * rest[i - k] });
        Ok(covariance.to_standard_basis(coords.as_ref()))
    }
    fn radius_squared(&self, _: &dyn Covariance) -> f64 {
        self.radius * self.radius
    }
    fn eigen_shares(&self, covariance: &dyn Covariance) -> Option<Vec<f64>> {
        let p = covariance.dim();
        let k = self.directions;
        Some((0..p).map(|i| if i < k { self.share / k as f64 } else { (1.0 - self.share) / (p - k) as f64 }).collect())
    }
}

impl Params for AlignedSignalParams {
    type Target = dyn Signal;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Signal>, ParamError> {
        if self.directions == 0 || self.directions > ctx.p {
            return Err(ParamError::new(
                "directions",
                format!("must be in [1, p] = [1, {}], got {}", ctx.p, self.directions),
            ));
        }
        if self.directions == ctx.p && self.share < 1.0 {
            return Err(ParamError::new("share", "must be 1 when directions = p (there is no complement)"));
        }
        Ok(Box::new(AlignedSignal { radius: self.radius, share: self.share, directions: self.directions }))
    }
    fn example() -> Self {
        AlignedSignalParams { radius: 1.0, share: 0.5, directions: 1 }
    }
}

/// Power-law source condition: in Σ's eigenbasis (eigenvalues descending), the k-th
/// coordinate of β has β_k² ∝ k^(−δ), scaled so that ‖β‖ = r, with independent random
/// signs per replicate (or all positive).
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `radius` | 1.0 | r ≥ 0 | ‖β‖ |
/// | `delta` | 1.0 | δ ≥ 0 | decay exponent of β_k² |
/// | `random_signs` | true | bool | redraw the signs of the coordinates per replicate |
///
/// Reference: Dohmatob, Feng, Kempe (2024), arXiv 2402.07712; Caponnetto & De Vito (2007).
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct PowerLawSignalParams {
    /// Signal norm r = ‖β‖ ≥ 0.
    #[serde(default = "one")]
    #[schemars(range(min = 0.0))]
    pub radius: f64,
    /// Decay exponent δ ≥ 0 of β_k² ∝ k^(−δ).
    #[serde(default = "one")]
    #[schemars(range(min = 0.0, max = 50.0))]
    pub delta: f64,
    /// Redraw random signs per replicate (default true).
    #[serde(default = "yes")]
    pub random_signs: bool,
}

fn yes() -> bool {
    true
}

/// See [`PowerLawSignalParams`].
#[derive(Debug, Clone)]
pub struct PowerLawSignal {
    radius: f64,
    delta: f64,
    random_signs: bool,
}

impl PowerLawSignal {
    fn shares(&self, p: usize) -> Vec<f64> {
        let raw: Vec<f64> = (1..=p).map(|k| (k as f64).powf(-self.delta)).collect();
        let total: f64 = raw.iter().sum();
        raw.into_iter().map(|x| x / total).collect()
    }
}

impl Signal for PowerLawSignal {
    fn draw(&self, covariance: &dyn Covariance, rng: &mut Rng) -> Result<Col<f64>, CoreError> {
        let shares = self.shares(covariance.dim());
        let coords = Col::from_fn(shares.len(), |k| {
            let sign = if self.random_signs && rng.next_u64() & 1 == 1 { -1.0 } else { 1.0 };
            sign * self.radius * shares[k].sqrt()
        });
        Ok(covariance.to_standard_basis(coords.as_ref()))
    }
    fn radius_squared(&self, _: &dyn Covariance) -> f64 {
        self.radius * self.radius
    }
    fn eigen_shares(&self, covariance: &dyn Covariance) -> Option<Vec<f64>> {
        Some(self.shares(covariance.dim()))
    }
    /// |β_k| in Σ's eigenbasis is fixed (only signs are random): βᵀΣβ is fixed.
    fn fixed_sigma_norm(&self, _: &dyn Covariance) -> bool {
        true
    }
}

impl Params for PowerLawSignalParams {
    type Target = dyn Signal;
    fn build(&self, _: &BuildContext) -> Result<Box<dyn Signal>, ParamError> {
        Ok(Box::new(PowerLawSignal { radius: self.radius, delta: self.delta, random_signs: self.random_signs }))
    }
    fn example() -> Self {
        PowerLawSignalParams { radius: 1.0, delta: 1.5, random_signs: true }
    }
}

/// A constant signal direction for `fixed`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, JsonSchema)]
#[serde(rename_all = "kebab-case")]
pub enum FixedDirection {
    /// β ∝ e_1.
    First,
    /// β ∝ (1, …, 1).
    Ones,
    /// β ∝ the leading eigenvector of Σ.
    TopEigenvector,
}

/// A fixed signal, the same in every replicate: an explicit `vector`, or a constant
/// `direction` (`first`, `ones`, `top-eigenvector`) scaled to `radius`.
///
/// | parameter | default | range | meaning |
/// |---|---|---|---|
/// | `vector` | none | p finite values | β itself |
/// | `direction` | none | `first`, `ones`, `top-eigenvector` | direction of β |
/// | `radius` | 1.0 with `direction`; ‖vector‖ otherwise | r ≥ 0 | rescale β to this norm |
///
/// Exactly one of `vector` and `direction` must be given.
#[derive(Debug, Clone, Serialize, Deserialize, JsonSchema)]
#[serde(deny_unknown_fields)]
pub struct FixedSignalParams {
    /// β as p numbers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vector: Option<Vec<f64>>,
    /// A constant direction instead of `vector`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub direction: Option<FixedDirection>,
    /// Rescale β to this norm (≥ 0).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    #[schemars(range(min = 0.0))]
    pub radius: Option<f64>,
}

/// See [`FixedSignalParams`].
#[derive(Debug, Clone)]
pub struct FixedSignal {
    vector: Option<Vec<f64>>,
    direction: Option<FixedDirection>,
    radius: Option<f64>,
}

impl FixedSignal {
    fn beta(&self, covariance: &dyn Covariance) -> Col<f64> {
        let p = covariance.dim();
        let raw = match (&self.vector, self.direction) {
            (Some(v), _) => Col::from_fn(p, |i| v[i]),
            (None, Some(FixedDirection::First)) => Col::from_fn(p, |i| if i == 0 { 1.0 } else { 0.0 }),
            (None, Some(FixedDirection::Ones)) => Col::from_fn(p, |_| 1.0),
            (None, Some(FixedDirection::TopEigenvector)) | (None, None) => {
                let e1 = Col::from_fn(p, |i| if i == 0 { 1.0 } else { 0.0 });
                covariance.to_standard_basis(e1.as_ref())
            }
        };
        let target = self.radius.unwrap_or(if self.vector.is_some() { raw.norm_l2() } else { 1.0 });
        let norm = raw.norm_l2();
        if norm > 0.0 { &raw * (target / norm) } else { raw }
    }
}

impl Signal for FixedSignal {
    fn draw(&self, covariance: &dyn Covariance, _: &mut Rng) -> Result<Col<f64>, CoreError> {
        Ok(self.beta(covariance))
    }
    fn radius_squared(&self, covariance: &dyn Covariance) -> f64 {
        self.beta(covariance).squared_norm_l2()
    }
    fn fixed_sigma_norm(&self, _: &dyn Covariance) -> bool {
        true
    }
    fn eigen_shares(&self, covariance: &dyn Covariance) -> Option<Vec<f64>> {
        let b = self.beta(covariance);
        let total = b.squared_norm_l2();
        if total <= 0.0 {
            return None;
        }
        Some(covariance.to_eigenbasis(b.as_ref()).iter().map(|c| c * c / total).collect())
    }
}

impl Params for FixedSignalParams {
    type Target = dyn Signal;
    fn build(&self, ctx: &BuildContext) -> Result<Box<dyn Signal>, ParamError> {
        match (&self.vector, &self.direction) {
            (Some(_), Some(_)) => {
                return Err(ParamError::new("vector", "give either `vector` or `direction`, not both"));
            }
            (None, None) => {
                return Err(ParamError::new(
                    "vector",
                    "give `vector = [...]` (p numbers) or `direction = \"first\" | \"ones\" | \"top-eigenvector\"`",
                ));
            }
            (Some(v), None) => {
                if v.len() != ctx.p {
                    return Err(ParamError::new("vector", format!("has {} values but design.p = {}", v.len(), ctx.p)));
                }
                if let Some(k) = v.iter().position(|x| !x.is_finite()) {
                    return Err(ParamError::new(format!("vector[{k}]"), "must be finite"));
                }
            }
            (None, Some(_)) => {}
        }
        Ok(Box::new(FixedSignal { vector: self.vector.clone(), direction: self.direction, radius: self.radius }))
    }
    fn example() -> Self {
        FixedSignalParams { vector: None, direction: Some(FixedDirection::Ones), radius: Some(1.0) }
    }
}

collapse_core::register!(
    SignalPlugin,
    RandomSignalParams,
    "random",
    "β uniform on the sphere of radius r, per replicate (random effects)"
);
collapse_core::register!(
    SignalPlugin,
    AlignedSignalParams,
    "aligned",
    "A share of ‖β‖² on the leading eigen-directions (spikes), the rest random"
);
collapse_core::register!(
    SignalPlugin,
    PowerLawSignalParams,
    "power-law",
    "β_k² ∝ k^(−δ) in Σ's eigenbasis (source condition)"
);
collapse_core::register!(SignalPlugin, FixedSignalParams, "fixed", "A fixed β: explicit vector or constant direction");

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{DiagonalParams, IsotropicParams, SpikedParams};
    use collapse_core::rng::{Purpose, Streams};

    fn ctx(p: usize) -> BuildContext {
        BuildContext { n: 5, p }
    }

    fn rng(k: u64) -> Rng {
        Streams::new(11, 0, k).rng(Purpose::Signal, 0)
    }

    #[test]
    fn send_sync() {
        fn check<T: Send + Sync>() {}
        check::<RandomSignal>();
        check::<AlignedSignal>();
        check::<PowerLawSignal>();
        check::<FixedSignal>();
    }

    #[test]
    fn norms_and_shares_are_as_documented() {
        let cov = SpikedParams { spikes: vec![4.0, 1.0] }.build(&ctx(12)).unwrap();
        let signals: Vec<Box<dyn Signal>> = vec![
            RandomSignalParams { radius: 2.0 }.build(&ctx(12)).unwrap(),
            AlignedSignalParams { radius: 2.0, share: 0.7, directions: 2 }.build(&ctx(12)).unwrap(),
            PowerLawSignalParams { radius: 2.0, delta: 1.0, random_signs: true }.build(&ctx(12)).unwrap(),
            FixedSignalParams { vector: None, direction: Some(FixedDirection::Ones), radius: Some(2.0) }
                .build(&ctx(12))
                .unwrap(),
        ];
        for s in &signals {
            let b = s.draw(cov.as_ref(), &mut rng(1)).unwrap();
            assert!((b.norm_l2() - 2.0).abs() < 1e-12, "{s:?}");
            assert!((s.radius_squared(cov.as_ref()) - 4.0).abs() < 1e-12);
            let shares = s.eigen_shares(cov.as_ref()).unwrap();
            assert!((shares.iter().sum::<f64>() - 1.0).abs() < 1e-12, "{s:?}");
        }
        // Aligned: exactly the share on the top-2 eigen-directions, every draw.
        let b = signals[1].draw(cov.as_ref(), &mut rng(2)).unwrap();
        let c = cov.to_eigenbasis(b.as_ref());
        let top = c[0] * c[0] + c[1] * c[1];
        assert!((top / 4.0 - 0.7).abs() < 1e-12);
        // Power law: coordinates in the eigenbasis follow k^(−δ).
        let b = signals[2].draw(cov.as_ref(), &mut rng(3)).unwrap();
        let c = cov.to_eigenbasis(b.as_ref());
        assert!((c[1] * c[1] / (c[0] * c[0]) - 0.5).abs() < 1e-12);
    }

    #[test]
    fn random_signal_is_uniform_on_average() {
        let cov = IsotropicParams {}.build(&ctx(4)).unwrap();
        let s = RandomSignalParams { radius: 1.0 }.build(&ctx(4)).unwrap();
        let reps = 4000;
        let mut second = [0.0; 4];
        for k in 0..reps {
            let b = s.draw(cov.as_ref(), &mut rng(k)).unwrap();
            for i in 0..4 {
                second[i] += b[i] * b[i] / reps as f64;
            }
        }
        // E β_i² = 1/4 each; sd of the mean of β_i² is about 0.19/√4000 ≈ 0.003.
        for m in second {
            assert!((m - 0.25).abs() < 0.015, "{second:?}");
        }
    }

    #[test]
    fn fixed_vector_is_used_as_given() {
        let cov = DiagonalParams { eigenvalues: vec![1.0, 2.0, 3.0] }.build(&ctx(3)).unwrap();
        let s = FixedSignalParams { vector: Some(vec![1.0, -2.0, 0.5]), direction: None, radius: None }
            .build(&ctx(3))
            .unwrap();
        let b = s.draw(cov.as_ref(), &mut rng(0)).unwrap();
        assert_eq!((b[0], b[1], b[2]), (1.0, -2.0, 0.5));
    }

    #[test]
    fn invalid_parameters_name_their_field() {
        let e = |r: Result<Box<dyn Signal>, collapse_core::CoreError>| {
            r.unwrap_err().field().unwrap_or_default().to_string()
        };
        assert_eq!(e(RandomSignalParams { radius: -1.0 }.checked_build(&ctx(3))), "radius");
        assert_eq!(e(AlignedSignalParams { radius: 1.0, share: 1.5, directions: 1 }.checked_build(&ctx(3))), "share");
        assert_eq!(
            e(AlignedSignalParams { radius: 1.0, share: 0.5, directions: 4 }.checked_build(&ctx(3))),
            "directions"
        );
        assert_eq!(
            e(PowerLawSignalParams { radius: 1.0, delta: -1.0, random_signs: true }.checked_build(&ctx(3))),
            "delta"
        );
        assert_eq!(
            e(FixedSignalParams { vector: Some(vec![1.0]), direction: None, radius: None }.checked_build(&ctx(3))),
            "vector"
        );
        assert_eq!(
            e(FixedSignalParams { vector: None, direction: None, radius: None }.checked_build(&ctx(3))),
            "vector"
        );
    }
}
