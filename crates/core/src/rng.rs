//! Reproducible random-number streams.
//!
//! Every random draw of a run comes from a stream keyed by
//! `(seed, design group, replicate, iteration, purpose)` (docs/numerics.md §8). The
//! design group enters as a hash of its resolved content ([`content_hash`]), not its
//! position in the sweep grid, so extending a sweep leaves existing cells' numbers
//! unchanged. Streams are derived by hashing the key (SplitMix64 finaliser), so no
//! stream depends on thread scheduling, on the order in which work is done, or on how
//! many numbers another stream used. This is what makes output bit-identical for any
//! thread count, and what lets cells of one design group share common random numbers.

use rand::SeedableRng;
use rand_distr::{Distribution, StandardNormal};
use rand_xoshiro::Xoshiro256PlusPlus;

/// The one generator used everywhere: portable, fast, 256 bits of state.
pub type Rng = Xoshiro256PlusPlus;

/// What a stream is used for. The discriminant is part of the stream key, so it is a
/// file format: never renumber existing variants.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Purpose {
    /// The design matrix X of a replicate.
    Design,
    /// The true signal β of a replicate.
    Signal,
    /// Noise of real labels (ε_t).
    RealNoise,
    /// Noise of synthetic labels (ε̃_t).
    SyntheticNoise,
    /// Fresh covariates drawn at an iteration (settings whose design changes).
    Covariates,
    /// Which rows receive real labels (partial-label settings).
    Selection,
    /// Free for plugins: a plugin-chosen sub-purpose.
    Plugin(u32),
}

impl Purpose {
    fn code(self) -> u64 {
        match self {
            Purpose::Design => 1,
            Purpose::Signal => 2,
            Purpose::RealNoise => 3,
            Purpose::SyntheticNoise => 4,
            Purpose::Covariates => 5,
            Purpose::Selection => 6,
            Purpose::Plugin(k) => 0x1_0000_0000 | u64::from(k),
        }
    }
}

/// SplitMix64 finaliser: a bijective 64-bit mixer with full avalanche.
fn mix64(mut z: u64) -> u64 {
    z = z.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A stable 64-bit hash of a canonical text (XXH3, a fixed published algorithm, so the
/// value is the same on every platform and release). Used for design-group keys.
pub fn content_hash(text: &str) -> u64 {
    xxhash_rust::xxh3::xxh3_64(text.as_bytes())
}

/// The stream factory of one (seed, design group, replicate).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Streams {
    seed: u64,
    group: u64,
    replicate: u64,
}

impl Streams {
    /// Streams of replicate `replicate` of the design group whose content hash is
    /// `group`, under master `seed`.
    pub fn new(seed: u64, group: u64, replicate: u64) -> Self {
        Streams { seed, group, replicate }
    }

    /// The generator for `purpose` at `iteration` (use 0 for per-replicate purposes).
    pub fn rng(&self, purpose: Purpose, iteration: u64) -> Rng {
        let mut h = mix64(self.seed);
        for part in [self.group, self.replicate, iteration, purpose.code()] {
            h = mix64(h ^ mix64(part));
        }
        let mut seed = [0u8; 32];
        for chunk in seed.chunks_exact_mut(8) {
            h = mix64(h);
            chunk.copy_from_slice(&h.to_le_bytes());
        }
        Rng::from_seed(seed)
    }
}

/// Fill `out` with independent N(0, sd²) draws.
pub fn fill_normal(rng: &mut Rng, sd: f64, out: &mut [f64]) {
    for x in out.iter_mut() {
        let z: f64 = StandardNormal.sample(rng);
        *x = sd * z;
    }
}

/// A vector of `len` independent N(0, sd²) draws.
pub fn normal_vec(rng: &mut Rng, sd: f64, len: usize) -> Vec<f64> {
    let mut v = vec![0.0; len];
    fill_normal(rng, sd, &mut v);
    v
}

#[cfg(test)]
mod tests {
    use super::*;
    use rand::Rng as _;

    /// The content hash is a published function of the text: pinned.
    #[test]
    fn content_hash_is_stable() {
        assert_eq!(content_hash(""), 0x2D06800538D394C2);
        assert_ne!(content_hash("n=100"), content_hash("n=101"));
    }

    #[test]
    fn streams_are_pure_functions_of_their_key() {
        let s = Streams::new(7, 3, 11);
        let a: Vec<u64> = (0..4).map(|_| 0).scan(s.rng(Purpose::RealNoise, 5), |r, _| Some(r.next_u64())).collect();
        let b: Vec<u64> = (0..4).map(|_| 0).scan(s.rng(Purpose::RealNoise, 5), |r, _| Some(r.next_u64())).collect();
        assert_eq!(a, b);
    }

    #[test]
    fn every_key_component_changes_the_stream() {
        let base = Streams::new(1, 2, 3).rng(Purpose::Design, 4).next_u64();
        let variants = [
            Streams::new(9, 2, 3).rng(Purpose::Design, 4).next_u64(),
            Streams::new(1, 9, 3).rng(Purpose::Design, 4).next_u64(),
            Streams::new(1, 2, 9).rng(Purpose::Design, 4).next_u64(),
            Streams::new(1, 2, 3).rng(Purpose::Design, 9).next_u64(),
            Streams::new(1, 2, 3).rng(Purpose::Signal, 4).next_u64(),
        ];
        for v in variants {
            assert_ne!(v, base);
        }
    }

    /// Value stability: these numbers are part of the reproducibility promise. If this
    /// test fails, every published result changes; bump the manifest format instead.
    #[test]
    fn golden_first_values() {
        let mut r = Streams::new(42, 0, 0).rng(Purpose::RealNoise, 0);
        let first = r.next_u64();
        let mut again = Streams::new(42, 0, 0).rng(Purpose::RealNoise, 0);
        assert_eq!(first, again.next_u64());
        let z = normal_vec(&mut Streams::new(42, 0, 0).rng(Purpose::Design, 0), 1.0, 3);
        assert!(z.iter().all(|x| x.is_finite()));
        insta_like_pin(first, &z);
    }

    fn insta_like_pin(first: u64, z: &[f64]) {
        // Pinned on 2026-11-23 with rand_xoshiro 0.8.1 / rand_distr 0.6.0.
        assert_eq!(first, GOLDEN_FIRST_U64, "stream derivation changed");
        let expected = GOLDEN_NORMALS;
        for (a, b) in z.iter().zip(expected) {
            assert!((a - b).abs() < 1e-15, "normal sampling changed: {z:?}");
        }
    }

    const GOLDEN_FIRST_U64: u64 = 18416677959179519754;
    const GOLDEN_NORMALS: [f64; 3] = [-0.00738209439303817, 0.2415666425765815, 0.836376090719398];

    proptest::proptest! {
        #[test]
        fn adjacent_replicates_differ(seed in proptest::prelude::any::<u64>(), rep in 0u64..1_000_000) {
            let a = Streams::new(seed, 0, rep).rng(Purpose::RealNoise, 1).next_u64();
            let b = Streams::new(seed, 0, rep + 1).rng(Purpose::RealNoise, 1).next_u64();
            proptest::prop_assert_ne!(a, b);
        }
    }
}
