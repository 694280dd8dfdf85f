//! Spectral distributions, the effective-regularisation fixed point and Marchenko–Pastur
//! closed forms (docs/asymptotics.md §4–docs/asymptotics.md §2).
//!
//! A [`Spectrum`] is a discrete probability measure `Σ_j p_j δ_{τ_j}` on `[0, ∞)`. It serves as
//! `H` (the limiting spectral distribution of Σ) and as `G` (the signal distribution of β
//! over the eigenbasis of Σ). Any `H` with a density can be discretised.
//!
//! The central object is the effective regularisation `κ(x)`, the positive root of
//! `x = κ(1 − γ∫τ/(τ+κ) dH)` (docs/asymptotics.md §4). All integrals over `H` below drop the atom at `τ = 0`,
//! which contributes nothing to them (docs/asymptotics.md §2 step 1).
//!
//! **Filter factors and complement forms.** Write `u = τ/(τ+κ)` and `v = κ/(τ+κ) = 1 − u`
//! (both in `[0, 1]`, so no power of `1/(τ+κ)` can under- or overflow) and `M = H((0, ∞))`.
//! The quantities that decide everything, the fixed-point bracket `1 − γ∫u dH` (= `x/κ` at
//! the root), `1 − D2 = 1 − γ∫u² dH` and `1 − D2×`, each have a *complement form*:
//! `(1 − γM) + γ∫v dH`, `(1 − γM) + γ∫v(1+u) dH`, `(1 − γM) + γ∫(v1 + u1v2) dH`. For `γM ≤ 1`
//! every term of the complement form is ≥ 0, so it stays accurate as `κ → 0` where the direct
//! form subtracts two numbers close to 1 (e.g. `γ = 1`, `x → 0`, where `1 − D2 → 0` carries
//! the whole answer); for `γM ≫ 1` the direct form has the smaller terms. The code uses the
//! better-conditioned form in each case (`one_minus`). What cancellation remains (for
//! `γM > 1` and small `x` the bracket `x/κ` is small) is inherent in the problem.

use crate::error::{TheoryError, non_negative, positive};

/// Relative tolerance under which [`Spectrum::from_eigenvalues`] merges eigenvalues.
const MERGE_RELATIVE_TOLERANCE: f64 = 1e-12;

/// A discrete spectral distribution `Σ_j p_j δ_{τ_j}` with `τ_j ≥ 0`, `p_j > 0`, `Σ p_j = 1`
/// (docs/README.md §2 "Spectral laws", docs/asymptotics.md §2).
///
/// Atoms are stored sorted by increasing `τ` with zero-weight atoms removed, so the atom at
/// `τ = 0` (if any) comes first.
#[derive(Debug, Clone, PartialEq)]
pub struct Spectrum {
    taus: Vec<f64>,
    weights: Vec<f64>,
    /// Index of the first atom with `τ > 0`.
    positive_start: usize,
    /// `H((0, ∞))`.
    positive_mass: f64,
    /// `∫ τ dH`.
    mean: f64,
}

impl Spectrum {
    /// The point mass `δ_τ` (isotropic `Σ = τI` when used as `H`).
    ///
    /// # Errors
    /// [`TheoryError::InvalidSpectrum`] if `τ` is negative or not finite.
    pub fn point_mass(tau: f64) -> Result<Self, TheoryError> {
        Self::from_atoms(&[tau], &[1.0])
    }

    /// `Σ_j p_j δ_{τ_j}` with `p_j = weights_j / Σ weights` (weights are normalised).
    ///
    /// Atoms with zero weight are dropped; exactly repeated `τ` values are merged.
    ///
    /// # Errors
    /// [`TheoryError::InvalidSpectrum`] if the slices differ in length or are empty, if a `τ`
    /// is negative or not finite, if a weight is negative or not finite, or if the weights sum
    /// to zero.
    pub fn from_atoms(taus: &[f64], weights: &[f64]) -> Result<Self, TheoryError> {
        if taus.len() != weights.len() {
            return Err(spectrum_error("taus and weights differ in length"));
        }
        if taus.is_empty() {
            return Err(spectrum_error("no atoms"));
        }
        if taus.iter().any(|t| !(t.is_finite() && *t >= 0.0)) {
            return Err(spectrum_error("atoms must be finite and >= 0"));
        }
        if weights.iter().any(|p| !(p.is_finite() && *p >= 0.0)) {
            return Err(spectrum_error("weights must be finite and >= 0"));
        }
        let mut atoms: Vec<(f64, f64)> =
            taus.iter().zip(weights).filter(|(_, p)| **p > 0.0).map(|(t, p)| (*t, *p)).collect();
        atoms.sort_by(|a, b| a.0.total_cmp(&b.0));
        let mut merged: Vec<(f64, f64)> = Vec::with_capacity(atoms.len());
        for (t, p) in atoms {
            match merged.last_mut() {
                // Bitwise-equal atoms only; tolerance merging is `from_eigenvalues`' business.
                Some(last) if last.0.to_bits() == t.to_bits() => last.1 += p,
                _ => merged.push((t, p)),
            }
        }
        Self::from_sorted_unnormalised(merged)
    }

    /// The empirical spectral distribution `(1/p) Σ_j δ_{λ_j}` of the given eigenvalues.
    ///
    /// Sorted eigenvalues that agree to within a relative `1e-12` of the first value of their
    /// group are merged into one atom (at the mean of the group) so that, e.g., an
    /// identity block of size 10⁴ costs one atom in every integral. Tiny negative values
    /// `λ ≥ −1e-12·max|λ|`, as produced by a numerical eigensolver on a singular PSD matrix, are
    /// clamped to `0`.
    ///
    /// # Errors
    /// [`TheoryError::InvalidSpectrum`] if the slice is empty, contains a non-finite value, or
    /// contains a clearly negative eigenvalue.
    pub fn from_eigenvalues(eigenvalues: &[f64]) -> Result<Self, TheoryError> {
        if eigenvalues.is_empty() {
            return Err(spectrum_error("no eigenvalues"));
        }
        if eigenvalues.iter().any(|l| !l.is_finite()) {
            return Err(spectrum_error("eigenvalues must be finite"));
        }
        let scale = eigenvalues.iter().fold(0.0_f64, |m, l| m.max(l.abs()));
        let floor = -MERGE_RELATIVE_TOLERANCE * scale;
        if eigenvalues.iter().any(|l| *l < floor) {
            return Err(spectrum_error("eigenvalues must be >= 0 (up to 1e-12 relative rounding)"));
        }
        let mut values: Vec<f64> = eigenvalues.iter().map(|l| l.max(0.0)).collect();
        values.sort_by(f64::total_cmp);
        let mut merged: Vec<(f64, f64)> = Vec::new();
        // (anchor, Σ value, count) of the group being built. Comparing against the group's
        // first value (not the previous one) keeps a slowly increasing sequence from being
        // chained into one atom.
        let mut group: Option<(f64, f64, f64)> = None;
        for v in values {
            group = match group {
                Some((anchor, sum, count)) if v - anchor <= MERGE_RELATIVE_TOLERANCE * anchor => {
                    Some((anchor, sum + v, count + 1.0))
                }
                Some((_, sum, count)) => {
                    merged.push((sum / count, count));
                    Some((v, v, 1.0))
                }
                None => Some((v, v, 1.0)),
            };
        }
        if let Some((_, sum, count)) = group {
            merged.push((sum / count, count));
        }
        Self::from_sorted_unnormalised(merged)
    }

    /// Builds the spectrum from atoms sorted by `τ`, with positive unnormalised weights.
    fn from_sorted_unnormalised(atoms: Vec<(f64, f64)>) -> Result<Self, TheoryError> {
        let total: f64 = atoms.iter().map(|a| a.1).sum();
        if !(total.is_finite() && total > 0.0) {
            return Err(spectrum_error("weights must have a positive finite sum"));
        }
        let taus: Vec<f64> = atoms.iter().map(|a| a.0).collect();
        let weights: Vec<f64> = atoms.iter().map(|a| a.1 / total).collect();
        let positive_start = taus.iter().take_while(|t| **t <= 0.0).count();
        let positive_mass = weights[positive_start..].iter().sum();
        let mean = taus.iter().zip(&weights).map(|(t, p)| t * p).sum();
        Ok(Self { taus, weights, positive_start, positive_mass, mean })
    }

    /// Atom locations `τ_j`, sorted increasingly.
    #[must_use]
    pub fn taus(&self) -> &[f64] {
        &self.taus
    }

    /// Atom probabilities `p_j` (normalised to sum to 1), aligned with [`Self::taus`].
    #[must_use]
    pub fn weights(&self) -> &[f64] {
        &self.weights
    }

    /// Number of atoms.
    #[must_use]
    pub fn len(&self) -> usize {
        self.taus.len()
    }

    /// Always `false`: a spectrum has at least one atom. Present for API symmetry with
    /// [`Self::len`].
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.taus.is_empty()
    }

    /// `∫ τ dH` (= `tr Σ / p` when `H` is the spectrum of Σ).
    #[must_use]
    pub fn mean(&self) -> f64 {
        self.mean
    }

    /// `H((0, ∞))`, the mass of the strictly positive atoms. The ridgeless problem is
    /// over-parametrised iff `γ · positive_mass > 1` (docs/asymptotics.md §2 step 1).
    #[must_use]
    pub fn positive_mass(&self) -> f64 {
        self.positive_mass
    }

    /// Largest atom.
    #[must_use]
    pub fn max_tau(&self) -> f64 {
        self.taus.last().copied().unwrap_or(0.0)
    }

    /// `∫ f dH = Σ_j p_j f(τ_j)`.
    pub fn integrate(&self, f: impl Fn(f64) -> f64) -> f64 {
        self.taus.iter().zip(&self.weights).map(|(t, p)| p * f(*t)).sum()
    }

    /// `(τ_j, p_j)` restricted to the atoms with `τ_j > 0`.
    pub(crate) fn positive_atoms(&self) -> (&[f64], &[f64]) {
        (&self.taus[self.positive_start..], &self.weights[self.positive_start..])
    }

    /// Whether two spectra have bitwise identical atoms (lets callers fuse `H` and `G`
    /// passes in the common random-effects case `G = H`).
    pub(crate) fn same_atoms(&self, other: &Self) -> bool {
        std::ptr::eq(self, other)
            || (self.taus.len() == other.taus.len()
                && self
                    .taus
                    .iter()
                    .zip(&other.taus)
                    .chain(self.weights.iter().zip(&other.weights))
                    .all(|(a, b)| a.to_bits() == b.to_bits()))
    }
}

fn spectrum_error(reason: &'static str) -> TheoryError {
    TheoryError::InvalidSpectrum { reason }
}

/// `Σ_j f(τ_j, p_j)` for `N` simultaneous sums, with four interleaved partial accumulators.
///
/// Independent accumulators break the floating-point dependency chain (the loop is otherwise
/// bound by add latency, not by the division) and, as a side effect, give a slightly more
/// accurate pairwise-like summation. This is the inner loop of the whole crate.
#[inline]
pub(crate) fn atom_sums<const N: usize>(taus: &[f64], ps: &[f64], f: impl Fn(f64, f64) -> [f64; N]) -> [f64; N] {
    // Quantity-major `[quantity][lane]` layout: the four lanes of one quantity are
    // contiguous, so the compiler can pack independent atom evaluations into SIMD registers
    // (measured ~2x faster than a lane-major layout for the one-division sums).
    let mut lanes = [[0.0; LANES]; N];
    let t_chunks = taus.chunks_exact(LANES);
    let p_chunks = ps.chunks_exact(LANES);
    let (t_rest, p_rest) = (t_chunks.remainder(), p_chunks.remainder());
    for (t4, p4) in t_chunks.zip(p_chunks) {
        for l in 0..LANES {
            let v = f(t4[l], p4[l]);
            for (acc, x) in lanes.iter_mut().zip(v) {
                acc[l] += x;
            }
        }
    }
    let mut out = [0.0; N];
    for (t, p) in t_rest.iter().zip(p_rest) {
        for (acc, v) in out.iter_mut().zip(f(*t, *p)) {
            *acc += v;
        }
    }
    for (acc, lane) in out.iter_mut().zip(lanes) {
        *acc += (lane[0] + lane[1]) + (lane[2] + lane[3]);
    }
    out
}

/// Number of interleaved accumulators in [`atom_sums`].
const LANES: usize = 4;

/// A solved fixed point: `κ(x)` together with `1 − D2` at (or within one converged Newton
/// step of) the root, which is `1/κ'(x)` (docs/asymptotics.md §2 step 4) and feeds warm starts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct KappaRoot {
    pub(crate) kappa: f64,
    pub(crate) slope: f64,
}

/// `f, f', f''` of `f(κ) = κ(1 − γ∫τ/(τ+κ) dH) − x` at one `κ`.
#[derive(Debug, Clone, Copy)]
struct Residual {
    f: f64,
    /// Sum of the magnitudes of the terms of `f`: `|f| ≲ ε·scale` is rounding noise.
    scale: f64,
    fp: f64,
    fpp: f64,
}

/// Solver for the effective regularisation of one `(H, γ)`; cheap to build, reusable across
/// `x` (the curve code keeps one alive and warm-starts it).
#[derive(Debug, Clone, Copy)]
pub(crate) struct KappaSolver<'a> {
    taus: &'a [f64],
    ps: &'a [f64],
    gamma: f64,
    /// `1 − γ·H((0, ∞))`, computed once, exactly as far as the weights allow.
    one_minus_gm: f64,
    /// `γ ∫ τ dH`.
    gamma_mean: f64,
    /// Evaluate the residual in the complement form (`γM < 2`, see [`Self::residual`]).
    complement_form: bool,
}

/// `|f| ≤ F_NOISE·ε·scale` counts as zero: the residual is a handful of products and one
/// sum over the atoms (accumulated in four lanes), whose rounding stays well within this.
const F_NOISE: f64 = 16.0;

/// Newton iterations are cheap and quadratic; the cap is only hit by pathological inputs that
/// the bisection fallback then finishes.
const MAX_KAPPA_ITERATIONS: usize = 500;

impl<'a> KappaSolver<'a> {
    pub(crate) fn new(h: &'a Spectrum, gamma: f64) -> Self {
        let (taus, ps) = h.positive_atoms();
        let one_minus_gm = 1.0 - gamma * h.positive_mass();
        Self { taus, ps, gamma, one_minus_gm, gamma_mean: gamma * h.mean(), complement_form: one_minus_gm > -1.0 }
    }

    pub(crate) fn gamma(&self) -> f64 {
        self.gamma
    }

    pub(crate) fn one_minus_gm(&self) -> f64 {
        self.one_minus_gm
    }

    pub(crate) fn positive_atoms(&self) -> (&'a [f64], &'a [f64]) {
        (self.taus, self.ps)
    }

    /// `f(κ) = κ·(1 − γ∫u dH) − x`, `f' = 1 − D2(κ) = 1 − γ∫u² dH` and
    /// `f'' = 2γ∫ u²/(τ+κ) dH` (used for the stopping rule), where `u = τ/(τ+κ)` and
    /// `v = κ/(τ+κ) = 1 − u` are the filter factors (integrals over `τ > 0`).
    ///
    /// The brackets are evaluated in the forms `(1 − γM) + γ∫v` and `(1 − γM) + γ∫v(1+u)`
    /// when `γM < 2`, and `1 − γ∫u`, `1 − γ∫u²` otherwise: at the root these are the forms
    /// with the smaller terms (see [`one_minus`]; the bracket is `x/κ`, and comparing the term
    /// sums `2(γM − 1) + x/κ` and `2 − x/κ` gives the threshold `γM ≈ 2`). The choice is fixed
    /// per problem so that the inner loop computes only the sums it needs. Working with the
    /// bounded `u, v ∈ [0, 1]` instead of powers of `1/(τ+κ)` also avoids spurious
    /// underflow/overflow for extreme `κ` (`1/(τ+κ)²` underflows to 0 for `κ ≳ 1e154`).
    fn residual(&self, x: f64, kappa: f64) -> Residual {
        let g = self.gamma;
        let (bracket, bracket_scale, fp, su2i) = if self.complement_form {
            let [sv, svu, su2i] = atom_sums(self.taus, self.ps, |t, p| {
                let i = 1.0 / (t + kappa);
                let (u, pv) = (t * i, p * (kappa * i));
                [pv, pv * (1.0 + u), p * u * u * i]
            });
            let b = self.one_minus_gm + g * sv;
            (b, self.one_minus_gm.abs() + g * sv, self.one_minus_gm + g * svu, su2i)
        } else {
            let [su, su2, su2i] = atom_sums(self.taus, self.ps, |t, p| {
                let i = 1.0 / (t + kappa);
                let pu = p * (t * i);
                let pu2 = pu * (t * i);
                [pu, pu2, pu2 * i]
            });
            (1.0 - g * su, 1.0 + g * su, 1.0 - g * su2, su2i)
        };
        Residual { f: kappa * bracket - x, scale: kappa * bracket_scale + x, fp, fpp: 2.0 * g * su2i }
    }

    /// `κ(x)` by safeguarded Newton (docs/asymptotics.md §2 step 1).
    ///
    /// `f` is convex with `f(0) = −x ≤ 0` and `f'(root) = 1 − D2 > 0`, so from any point right
    /// of the root Newton decreases monotonically to it, and from a point left of it one
    /// Newton step lands right of it. A bracket `[lo, hi]` is kept throughout; a Newton step
    /// that leaves it (only possible through rounding) is replaced by bisection.
    ///
    /// `hint` (any positive number; ideally an over-estimate) replaces the default start at
    /// the right end of the bracket.
    pub(crate) fn solve(&self, x: f64, hint: Option<f64>) -> KappaRoot {
        if self.taus.is_empty() {
            // H = δ_0: nothing is learned, κ = x.
            return KappaRoot { kappa: x, slope: 1.0 };
        }
        if x <= 0.0 && self.one_minus_gm >= 0.0 {
            // Ridgeless and under-parametrised: κ0 = 0, and 1 − D2(0) = 1 − γM.
            return KappaRoot { kappa: 0.0, slope: self.one_minus_gm };
        }
        // f(κ) ≥ κ − γ∫τ dH − x, and for γM < 1 also f(κ) ≥ (1−γM)κ − x: both give a point
        // where f > 0. The small relative inflation absorbs rounding in the bound itself.
        let mut hi = x + self.gamma_mean;
        if self.one_minus_gm > 0.0 {
            hi = hi.min(x / self.one_minus_gm);
        }
        hi *= 1.0 + 16.0 * f64::EPSILON;
        let mut lo = 0.0_f64;
        let mut kappa = match hint {
            Some(k) if k.is_finite() && k > 0.0 && k < hi => k,
            _ => hi,
        };
        let mut r = self.residual(x, kappa);
        for _ in 0..MAX_KAPPA_ITERATIONS {
            // At the rounding level of f: the root is found to the accuracy the problem's
            // conditioning allows. (For γM > 1 and small x, f is a difference of O(1) terms
            // whose rounding would otherwise keep Newton dithering around the root.)
            // The final Newton correction is still applied: it is free, and it is a full
            // quadratic step whenever the noise bound was pessimistic.
            if r.f.abs() <= F_NOISE * f64::EPSILON * r.scale {
                if r.fp > 0.0 {
                    let polished = kappa - r.f / r.fp;
                    if polished > lo && polished < hi {
                        kappa = polished;
                    }
                }
                break;
            }
            if r.f > 0.0 {
                hi = kappa;
            } else {
                lo = kappa;
            }
            let newton = if r.fp > 0.0 { kappa - r.f / r.fp } else { f64::NAN };
            let next = if newton > lo && newton < hi {
                let step = (kappa - newton).abs();
                // A step at the rounding level of f (which, for γM > 1 and small x, is a
                // difference of O(1) terms) means the root is found, whichever side of it
                // the rounding put us on.
                let converged = step <= 4.0 * f64::EPSILON * newton
                    // Monotone regime (right of the root): the error after this step is
                    // ≈ f''/(2f')·Δ². With f'' decreasing and f' increasing in κ this
                    // slightly under-estimates it, hence the factor 2 and the requirement
                    // that the step already be small. Saves the confirming evaluation.
                    || (r.f > 0.0
                        && step <= 1e-3 * newton
                        && r.fpp / r.fp * step * step <= f64::EPSILON * newton);
                if converged {
                    return KappaRoot { kappa: newton, slope: r.fp };
                }
                newton
            } else {
                0.5 * (lo + hi)
            };
            if hi - lo <= 4.0 * f64::EPSILON * hi {
                kappa = 0.5 * (lo + hi);
                break;
            }
            kappa = next;
            r = self.residual(x, kappa);
        }
        KappaRoot { kappa, slope: r.fp }
    }
}

/// `1 − γ·S` for an integral `S = ∫_{τ>0} s dH` whose complement `S' = ∫_{τ>0} (1 − s) dH`
/// (so `S + S' = M`) is also available, in whichever of the algebraically equal forms
/// `1 − γS` and `(1 − γM) + γS'` has the smaller sum of term magnitudes; that sum is
/// returned too, as the scale of the rounding error.
///
/// Both forms cancel only where the result is small compared with their terms. The second
/// has no cancellation at all for `γM ≤ 1` and is the accurate one near the interpolation
/// threshold (`γM ≈ 1`, `κ → 0`), where `1 − γS` subtracts two numbers close to 1; the first
/// is the accurate one for `γM ≫ 1`, where the second subtracts two numbers of size `γM`.
/// This is how `1 − D2`, `1 − D2×` and the fixed-point bracket are evaluated everywhere.
#[inline]
pub(crate) fn one_minus(gamma: f64, one_minus_gm: f64, s: f64, s_complement: f64) -> (f64, f64) {
    let direct = 1.0 + gamma * s;
    let complement = one_minus_gm.abs() + gamma * s_complement;
    if direct <= complement { (1.0 - gamma * s, direct) } else { (one_minus_gm + gamma * s_complement, complement) }
}

fn validate_gamma(gamma: f64) -> Result<f64, TheoryError> {
    positive("gamma", gamma)
}

/// Effective regularisation `κ(x)` (docs/asymptotics.md §4, docs/asymptotics.md §2): for `x > 0` the unique positive
/// root of `x = κ(1 − γ∫τ/(τ+κ) dH)`; for `x = 0` the ridgeless `κ0`, which is `0` when
/// `γ·H((0,∞)) ≤ 1` and otherwise solves `γ∫τ/(τ+κ0) dH = 1`.
///
/// Solved by safeguarded Newton from the right end of the bracket `[0, x + γ∫τ dH]`
/// (see the module docs for the cancellation-free residual). For `H = δ_1`,
/// `κ(x) = x(1 + γ m(−x))` with `m` the Marchenko–Pastur transform ([`mp_m`]).
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0` and `x ≥ 0` are finite.
pub fn kappa(h: &Spectrum, gamma: f64, x: f64) -> Result<f64, TheoryError> {
    let gamma = validate_gamma(gamma)?;
    let x = non_negative("x", x)?;
    Ok(KappaSolver::new(h, gamma).solve(x, None).kappa)
}

/// [`kappa`] started from `hint` (e.g. `κ` at a nearby `x`). A hint above the root gives
/// monotone Newton convergence; one below costs one extra step. Non-positive or non-finite
/// hints are ignored.
///
/// A good hint from a previous solve at `x₀`: `κ(x₀) + (x − x₀)·κ'(x₀)` with
/// `κ'(x₀) = 1/(1 − D2(κ(x₀)))`; `κ` is concave in `x`, so this tangent over-estimates.
///
/// # Errors
/// As [`kappa`].
pub fn kappa_with_hint(h: &Spectrum, gamma: f64, x: f64, hint: f64) -> Result<f64, TheoryError> {
    let gamma = validate_gamma(gamma)?;
    let x = non_negative("x", x)?;
    Ok(KappaSolver::new(h, gamma).solve(x, Some(hint)).kappa)
}

/// Stieltjes transform `m(−x) = ∫ dF(s)/(s + x)` of the limiting spectral law `F` of
/// `S = XᵀX/n`, for general `H` (docs/asymptotics.md §2 step 2).
///
/// docs/asymptotics.md §2 writes `m = (1/κ − (1−γ)/x)/γ`; substituting the fixed-point equation for `1/κ`
/// gives the equivalent `m(−x) = (κ/x) ∫ dH(τ)/(τ + κ)`, which has no subtraction at all and
/// is therefore accurate at `γ = 1` and as `x → 0`. An atom `p₀` of `H` at 0 contributes
/// `p₀/x`, as it should (it is an atom of `F` at 0).
///
/// At `x = 0`: `+∞` if `F` has mass at or accumulating at 0 (`γM ≥ 1` or an atom of `H` at 0),
/// else `∫dH/τ / (1 − γ)`.
///
/// # Errors
/// As [`kappa`].
pub fn stieltjes(h: &Spectrum, gamma: f64, x: f64) -> Result<f64, TheoryError> {
    let gamma = validate_gamma(gamma)?;
    let x = non_negative("x", x)?;
    let solver = KappaSolver::new(h, gamma);
    let (taus, ps) = h.positive_atoms();
    let zero_mass = 1.0 - h.positive_mass();
    if x <= 0.0 {
        if solver.one_minus_gm <= 0.0 || h.positive_start > 0 {
            return Ok(f64::INFINITY);
        }
        let [inv] = atom_sums(taus, ps, |t, p| [p / t]);
        return Ok(inv / solver.one_minus_gm);
    }
    let k = solver.solve(x, None).kappa;
    let [a] = atom_sums(taus, ps, |t, p| [p / (t + k)]);
    Ok(zero_mass.max(0.0) / x + (k / x) * a)
}

/// `df₁/n = γ ∫ τ/(τ+κ) dH` (docs/asymptotics.md §4, docs/chains.md §4).
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0` and `κ ≥ 0` are finite.
pub fn df1(h: &Spectrum, gamma: f64, kappa: f64) -> Result<f64, TheoryError> {
    let gamma = validate_gamma(gamma)?;
    let kappa = non_negative("kappa", kappa)?;
    let (taus, ps) = h.positive_atoms();
    let [s] = atom_sums(taus, ps, |t, p| [p * (t / (t + kappa))]);
    Ok(gamma * s)
}

/// `D2(κ) = df₂/n = γ ∫ τ²/(τ+κ)² dH` (docs/fresh-labels.md §3, docs/asymptotics.md §4).
///
/// # Errors
/// As [`df1`].
pub fn d2(h: &Spectrum, gamma: f64, kappa: f64) -> Result<f64, TheoryError> {
    d2_cross(h, gamma, kappa, kappa)
}

/// `D2×(κ1, κ2) = γ ∫ τ²/((τ+κ1)(τ+κ2)) dH` (docs/asymptotics.md §4), the mixed-resolvent analogue
/// of `D2` that governs the stationary variance of the mixing recursion. Evaluated as
/// `γ∫ u1·u2 dH` with the filter factors `u_i = τ/(τ+κ_i) ∈ [0, 1]` (no overflow).
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0`, `κ1 ≥ 0`, `κ2 ≥ 0` are finite.
pub fn d2_cross(h: &Spectrum, gamma: f64, kappa1: f64, kappa2: f64) -> Result<f64, TheoryError> {
    let gamma = validate_gamma(gamma)?;
    let k1 = non_negative("kappa1", kappa1)?;
    let k2 = non_negative("kappa2", kappa2)?;
    let (taus, ps) = h.positive_atoms();
    let [s] = atom_sums(taus, ps, |t, p| [p * (t / (t + k1)) * (t / (t + k2))]);
    Ok(gamma * s)
}

/// `1 − D2×(κ1, κ2)` without cancellation (docs/asymptotics.md §4). With the filter factors
/// `u_i = τ/(τ+κ_i)`, `v_i = κ_i/(τ+κ_i)` and `M = H((0,∞))` it equals both
/// `1 − γ∫u1u2 dH` and `(1 − γM) + γ∫(v1 + u1v2) dH` (from `1 − u1u2 = v1 + u1v2`); the
/// form with the smaller terms is used. The second has no cancellation for `γM ≤ 1`.
///
/// This is the denominator of every variance formula; it tends to `0` at the interpolation
/// threshold (`γM = 1`, `κ → 0`), where `1 − d2_cross(…)` would lose all digits.
///
/// # Errors
/// As [`d2_cross`].
pub fn one_minus_d2_cross(h: &Spectrum, gamma: f64, kappa1: f64, kappa2: f64) -> Result<f64, TheoryError> {
    let gamma = validate_gamma(gamma)?;
    let k1 = non_negative("kappa1", kappa1)?;
    let k2 = non_negative("kappa2", kappa2)?;
    let (taus, ps) = h.positive_atoms();
    let [s, sc] = atom_sums(taus, ps, |t, p| {
        let (i1, i2) = (1.0 / (t + k1), 1.0 / (t + k2));
        let (u1, v1, u2, v2) = (t * i1, k1 * i1, t * i2, k2 * i2);
        [p * u1 * u2, p * (v1 + u1 * v2)]
    });
    Ok(one_minus(gamma, 1.0 - gamma * h.positive_mass(), s, sc).0)
}

// ---------------------------------------------------------------------------------------
// Marchenko–Pastur (H = δ₁) closed forms, docs/asymptotics.md §2.
//
// With D(x) = (1−γ+x)² + 4γx = (1−γ)² + x(2(1+γ) + x) (the second form is a sum of
// non-negative terms, so √D never cancels), m(−x) is the positive root of
// γxm² + (1−γ+x)m − 1 = 0. Three derived quantities have their own quadratics, which is what
// makes every expression below free of cancellation:
//   φ(x) = x·m(−x) = ∫ x/(s+x) dF   solves γφ² + (1−γ+x)φ − x = 0,
//   ψ(x) = 1 − φ(x) = ∫ s/(s+x) dF  solves γψ² − (1+γ+x)ψ + 1 = 0, so ψ = 2/((1+γ+x) + √D).
// ---------------------------------------------------------------------------------------

/// `√D(x)`, `D = (1−γ)² + x(2(1+γ) + x)`, rescaled when a square could overflow.
pub(crate) fn mp_sqrt_disc(gamma: f64, x: f64) -> f64 {
    let a = 1.0 - gamma;
    let c = 2.0 * (1.0 + gamma);
    let big = a.abs().max(x).max(c);
    if big < 1e150 {
        (a * a + x * (c + x)).sqrt()
    } else {
        let (a, x, c) = (a / big, x / big, c / big);
        big * (a * a + x * (c + x)).sqrt()
    }
}

/// `ψ(x) = ∫ s/(s+x) dF(s)`.
pub(crate) fn mp_psi(gamma: f64, x: f64) -> f64 {
    2.0 / ((1.0 + gamma + x) + mp_sqrt_disc(gamma, x))
}

/// `φ(x) = x·m(−x) = ∫ x/(s+x) dF(s)`; the rationalised root when `1−γ+x ≥ 0`, the direct
/// one otherwise (then `−b > 0` and nothing cancels). `φ(0) = max(0, 1 − 1/γ)`, the atom.
pub(crate) fn mp_phi(gamma: f64, x: f64) -> f64 {
    let b = 1.0 - gamma + x;
    let sd = mp_sqrt_disc(gamma, x);
    if b >= 0.0 { if x > 0.0 { 2.0 * x / (b + sd) } else { 0.0 } } else { (sd - b) / (2.0 * gamma) }
}

/// Marchenko–Pastur Stieltjes transform `m(−x) = ∫ dF(s)/(s+x)` for `H = δ₁`, aspect ratio
/// `γ` (docs/asymptotics.md §2): the positive root of `γxm² + (1−γ+x)m − 1 = 0`,
/// `m = [−(1−γ+x) + √((1−γ+x)² + 4γx)]/(2γx)`.
///
/// Evaluated as `2/((1−γ+x) + √D)` when `1−γ+x ≥ 0` (the textbook form cancels for `γ < 1`,
/// small `x`) and in the textbook form otherwise (no cancellation there). At `x = 0`:
/// `1/(1−γ)` for `γ < 1`, `+∞` for `γ ≥ 1`.
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0` and `x ≥ 0` are finite.
pub fn mp_m(gamma: f64, x: f64) -> Result<f64, TheoryError> {
    let gamma = validate_gamma(gamma)?;
    let x = non_negative("x", x)?;
    Ok(mp_m_unchecked(gamma, x))
}

pub(crate) fn mp_m_unchecked(gamma: f64, x: f64) -> f64 {
    let b = 1.0 - gamma + x;
    let sd = mp_sqrt_disc(gamma, x);
    if b >= 0.0 { 2.0 / (b + sd) } else { (sd - b) / (2.0 * gamma * x) }
}

/// `m'(−x) = ∫ dF(s)/(s+x)²` for Marchenko–Pastur (docs/asymptotics.md §2):
/// `m'(−x) = m(1 + γm)/√((1−γ+x)² + 4γx)`, from implicit differentiation of the quadratic
/// (`2γxm + (1−γ+x) = √D`). At `x = 0`: `1/(1−γ)³` for `γ < 1`, `+∞` for `γ ≥ 1`.
///
/// # Errors
/// As [`mp_m`].
pub fn mp_m_prime(gamma: f64, x: f64) -> Result<f64, TheoryError> {
    let gamma = validate_gamma(gamma)?;
    let x = non_negative("x", x)?;
    let m = mp_m_unchecked(gamma, x);
    if m.is_infinite() {
        return Ok(f64::INFINITY);
    }
    Ok(m * (1.0 + gamma * m) / mp_sqrt_disc(gamma, x))
}

/// `x² m'(−x) = ∫ x²/(s+x)² dF`, the isotropic ridge bias per unit `r²` at penalty `x`
/// (docs/asymptotics.md §4, `B = r²λ²m'(−λ)`), as `φ(x + γφ)/√D`: bounded, no `∞·0` as `x → 0`.
pub(crate) fn mp_bias_factor(gamma: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return (1.0 - 1.0 / gamma).max(0.0);
    }
    let phi = mp_phi(gamma, x);
    phi * (x + gamma * phi) / mp_sqrt_disc(gamma, x)
}

/// `J(a, b) = ∫ s/((s+a)(s+b)) dF(s)` (docs/asymptotics.md §4: the isotropic mixed-resolvent
/// variance is `σ²γ c(w) J(λ/w, λ/(2−w))`, and `J = [(2−w)m1 − w m2]/(2(1−w))`).
///
/// Subtracting the `φ`-quadratics at `a` and `b` gives the exact divided-difference identity
/// `J = (φ(a) − φ(b))/(a − b) = ψ(b)/(γ(φ(a) + φ(b)) + 1 − γ + a)`, which is regular at
/// `a = b` (no `1 − w` in a denominator, so no special case at `w = 1`) and involves no
/// subtraction of large terms (for `γ > 1`, `γφ ≥ γ − 1` for each `φ`). At `a = b` it reduces
/// to `ψ/√D = m − x m'`. Returns `+∞` at the interpolation threshold (`γ = 1`, `a = b = 0`).
pub(crate) fn mp_mixed_resolvent(gamma: f64, a: f64, b: f64) -> f64 {
    let den = gamma * (mp_phi(gamma, a) + mp_phi(gamma, b)) + (1.0 - gamma) + a;
    if den > 0.0 { mp_psi(gamma, b) / den } else { f64::INFINITY }
}

/// `∫ s²/(s+x)² dF = 1 − 2x m + x² m'` (docs/chains.md §4 collapse factor), as
/// `(xψ)' = ψ(1 − x/√D) = ψ((1−γ)² + 2x(1+γ))/((√D + x)√D)`. At `x = 0` it is the mass of the
/// non-zero eigenvalues, `min(1, 1/γ)`.
pub(crate) fn mp_squared_filter(gamma: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return (1.0 / gamma).min(1.0);
    }
    let sd = mp_sqrt_disc(gamma, x);
    let num = (1.0 - gamma) * (1.0 - gamma) + 2.0 * x * (1.0 + gamma);
    mp_psi(gamma, x) * (num / (sd + x)) / sd
}

#[cfg(test)]
mod tests {
    use super::*;
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    fn two_level() -> Result<Spectrum, TheoryError> {
        Spectrum::from_atoms(&[1.0, 4.0], &[0.5, 0.5])
    }

    /// Fixed-point residual in the naive form, as an independent check of the solver.
    fn naive_residual(h: &Spectrum, gamma: f64, x: f64, k: f64) -> f64 {
        k * (1.0 - gamma * h.integrate(|t| t / (t + k))) - x
    }

    /// `m(−x)` by brute-force quadrature of the MP density (midpoint rule in the angle
    /// `s = 1 + γ + 2√γ cos θ`, which removes the square-root edges) plus the atom at 0.
    fn mp_m_by_quadrature(gamma: f64, x: f64) -> f64 {
        let n = 20_000;
        let (c, h) = (1.0 + gamma, 2.0 * gamma.sqrt());
        let mut acc = 0.0;
        for k in 0..n {
            let theta = (f64::from(k) + 0.5) * std::f64::consts::PI / f64::from(n);
            let s = c + h * theta.cos();
            let sin = theta.sin();
            acc += h * h * sin * sin / (2.0 * gamma * f64::from(n) * s) / (s + x);
        }
        acc + (1.0 - 1.0 / gamma).max(0.0) / x
    }

    #[test]
    fn spectrum_construction_and_validation() -> Result<(), TheoryError> {
        let h = Spectrum::from_atoms(&[4.0, 1.0, 0.0, 1.0], &[1.0, 1.0, 2.0, 0.0])?;
        assert_eq!(h.taus(), &[0.0, 1.0, 4.0]);
        assert_relative_eq!(h.weights()[0], 0.5);
        assert_relative_eq!(h.positive_mass(), 0.5);
        assert_relative_eq!(h.mean(), 1.25);
        assert_relative_eq!(h.max_tau(), 4.0);
        assert!(!h.is_empty());
        assert_eq!(h.len(), 3);
        // exact duplicates merge in from_atoms
        let d = Spectrum::from_atoms(&[2.0, 2.0], &[1.0, 3.0])?;
        assert_eq!(d.len(), 1);
        assert!(Spectrum::from_atoms(&[1.0], &[1.0, 2.0]).is_err());
        assert!(Spectrum::from_atoms(&[], &[]).is_err());
        assert!(Spectrum::from_atoms(&[-1.0], &[1.0]).is_err());
        assert!(Spectrum::from_atoms(&[1.0], &[0.0]).is_err());
        assert!(Spectrum::from_atoms(&[1.0], &[f64::NAN]).is_err());
        assert!(Spectrum::point_mass(f64::INFINITY).is_err());
        assert_relative_eq!(Spectrum::point_mass(3.0)?.mean(), 3.0);
        Ok(())
    }

    #[test]
    fn eigenvalue_merging() -> Result<(), TheoryError> {
        let ev = [1.0, 1.0 + 1e-14, 4.0, 1.0 - 1e-15, 0.5, -1e-14];
        let h = Spectrum::from_eigenvalues(&ev)?;
        assert_eq!(h.len(), 4, "{:?}", h.taus());
        assert_relative_eq!(h.weights()[2], 0.5);
        assert_relative_eq!(h.taus()[0], 0.0); // clamped rounding noise
        assert_relative_eq!(h.positive_mass(), 5.0 / 6.0, max_relative = 1e-15);
        // Anchored grouping: a slow ramp is not chained into one atom.
        let ramp: Vec<f64> = (0..100).map(|i| 1.0 + f64::from(i) * 0.9e-12).collect();
        assert!(Spectrum::from_eigenvalues(&ramp)?.len() >= 50);
        assert!(Spectrum::from_eigenvalues(&[1.0, -0.1]).is_err());
        assert!(Spectrum::from_eigenvalues(&[]).is_err());
        assert!(Spectrum::from_eigenvalues(&[f64::NAN]).is_err());
        let all_zero = Spectrum::from_eigenvalues(&[0.0, 0.0])?;
        assert_relative_eq!(all_zero.positive_mass(), 0.0);
        Ok(())
    }

    #[test]
    fn checkpoint_two_level() -> Result<(), TheoryError> {
        // docs/asymptotics.md §2 checkpoint: H = ½δ1 + ½δ4, γ = 2, x = 0.5 → κ = 2.94118880,
        // m = 1.16999929.
        let h = two_level()?;
        let k = kappa(&h, 2.0, 0.5)?;
        assert!((k - 2.941_188_80).abs() < 5e-9, "{k}");
        assert!(naive_residual(&h, 2.0, 0.5, k).abs() < 1e-15);
        let m = stieltjes(&h, 2.0, 0.5)?;
        assert!((m - 1.169_999_29).abs() < 5e-9, "{m}");
        // the docs' form m = (1/κ − (1−γ)/x)/γ agrees.
        assert_relative_eq!(m, (1.0 / k + 1.0 / 0.5) / 2.0, max_relative = 1e-14);
        // Ridgeless: 1/(1+κ0) + 4/(4+κ0) = 1 ⇔ κ0² = 4.
        assert_relative_eq!(kappa(&h, 2.0, 0.0)?, 2.0, max_relative = 1e-15);
        Ok(())
    }

    #[test]
    fn kappa_matches_marchenko_pastur() -> Result<(), TheoryError> {
        let h = Spectrum::point_mass(1.0)?;
        let gammas = [0.1, 0.5, 1.0 - 1e-6, 1.0, 1.0 + 1e-6, 1.5, 2.0, 10.0];
        let xs = [1e-12, 1e-9, 1e-6, 1e-3, 0.1, 1.0, 10.0, 1e4];
        for &g in &gammas {
            for &x in &xs {
                let k = kappa(&h, g, x)?;
                let via_m = x * (1.0 + g * mp_m(g, x)?);
                assert_relative_eq!(k, via_m, max_relative = 1e-12);
                // Stieltjes from κ vs closed form.
                assert_relative_eq!(stieltjes(&h, g, x)?, mp_m(g, x)?, max_relative = 1e-12);
                // Defining identity κ − γκ/(1+κ) = x, as a backward error relative to the
                // size of the terms (the subtraction itself is ill-conditioned for γ > 1).
                let terms = k + g * k / (1.0 + k) + x;
                let residual = k - g * k / (1.0 + k) - x;
                assert!(residual.abs() <= 8.0 * f64::EPSILON * terms, "γ = {g}, x = {x}");
            }
            // Ridgeless: κ0 = max(0, γ − 1) for H = δ1.
            assert_relative_eq!(kappa(&h, g, 0.0)?, (g - 1.0).max(0.0), max_relative = 1e-12);
        }
        Ok(())
    }

    #[test]
    fn kappa_is_continuous_at_zero() -> Result<(), TheoryError> {
        // κ(x) → κ0 as x → 0 on both sides of the interpolation threshold, including the
        // near-critical γ = 1 ± 1e-6 where κ0 is 0 or 1e-6 and κ(x) ≈ √x in between.
        let h = two_level()?;
        for &g in &[0.5, 1.0 - 1e-6, 1.0 + 1e-6, 2.0] {
            let k0 = kappa(&h, g, 0.0)?;
            let k = kappa(&h, g, 1e-14)?;
            assert!((k - k0).abs() < 1e-6, "γ = {g}: κ0 = {k0}, κ(1e-14) = {k}");
        }
        let iso = Spectrum::point_mass(1.0)?;
        // γ = 1: x = κ²/(1+κ) ⇒ κ = (x + √(x² + 4x))/2.
        let x = 1e-10;
        assert_relative_eq!(kappa(&iso, 1.0, x)?, 0.5 * (x + (x * x + 4.0 * x).sqrt()), max_relative = 1e-13);
        Ok(())
    }

    #[test]
    fn kappa_hint_gives_same_root() -> Result<(), TheoryError> {
        let h = Spectrum::from_atoms(&[0.0, 0.1, 1.0, 7.0], &[0.1, 0.3, 0.4, 0.2])?;
        for &g in &[0.3, 1.0, 1.0 / 0.9, 3.0] {
            for &x in &[0.0, 1e-8, 0.02, 0.5, 30.0] {
                let k = kappa(&h, g, x)?;
                for hint in [1e-300, 1e-3 * k, 0.5 * k, k, 2.0 * k, 1e3, -1.0, f64::NAN] {
                    let kh = kappa_with_hint(&h, g, x, hint)?;
                    assert_relative_eq!(kh, k, max_relative = 1e-12, epsilon = 1e-300);
                }
            }
        }
        Ok(())
    }

    #[test]
    fn zero_atoms_are_inert() -> Result<(), TheoryError> {
        // H = (1−M)δ0 + Mδ1: γ∫τ/(τ+κ)dH = γM/(1+κ), i.e. MP with γ' = γM.
        let m_pos = 0.4;
        let h = Spectrum::from_atoms(&[0.0, 1.0], &[1.0 - m_pos, m_pos])?;
        let iso = Spectrum::point_mass(1.0)?;
        for &x in &[0.0, 1e-6, 0.3, 5.0] {
            assert_relative_eq!(kappa(&h, 3.0, x)?, kappa(&iso, 3.0 * m_pos, x)?, max_relative = 1e-13);
        }
        // The zero atom is an atom of F at 0, contributing (1−M)/x to m(−x).
        let x = 0.7;
        let k = kappa(&h, 3.0, x)?;
        assert_relative_eq!(
            stieltjes(&h, 3.0, x)?,
            (1.0 - m_pos) / x + k / x * m_pos / (1.0 + k),
            max_relative = 1e-14
        );
        assert!(stieltjes(&h, 0.5, 0.0)?.is_infinite());
        // H = δ0: κ = x.
        let null = Spectrum::point_mass(0.0)?;
        assert_relative_eq!(kappa(&null, 2.0, 0.25)?, 0.25);
        Ok(())
    }

    #[test]
    fn stieltjes_at_zero() -> Result<(), TheoryError> {
        let iso = Spectrum::point_mass(1.0)?;
        assert_relative_eq!(stieltjes(&iso, 0.25, 0.0)?, 1.0 / 0.75, max_relative = 1e-15);
        assert!(stieltjes(&iso, 1.0, 0.0)?.is_infinite());
        assert!(stieltjes(&iso, 2.0, 0.0)?.is_infinite());
        let h = two_level()?;
        // ∫dH/τ/(1−γ) = (0.5 + 0.125)/(1 − 0.5)
        assert_relative_eq!(stieltjes(&h, 0.5, 0.0)?, 1.25, max_relative = 1e-15);
        // and continuity
        assert_relative_eq!(stieltjes(&h, 0.5, 1e-12)?, 1.25, max_relative = 1e-9);
        Ok(())
    }

    #[test]
    fn mp_closed_forms_against_quadrature() -> Result<(), TheoryError> {
        for &g in &[0.3, 0.8, 1.5, 3.0] {
            for &x in &[0.05, 0.5, 4.0] {
                let m = mp_m(g, x)?;
                assert_relative_eq!(m, mp_m_by_quadrature(g, x), max_relative = 1e-9);
                // m' by a central difference of m(−x) in x: m'(−x) = −d/dx m(−x).
                let h = 1e-5 * x;
                let fd = -(mp_m(g, x + h)? - mp_m(g, x - h)?) / (2.0 * h);
                assert_relative_eq!(mp_m_prime(g, x)?, fd, max_relative = 1e-7);
            }
        }
        Ok(())
    }

    #[test]
    fn mp_small_x_and_zero() -> Result<(), TheoryError> {
        // γ < 1: m(0) = 1/(1−γ), m'(0) = 1/(1−γ)³ (moments of the inverse Wishart).
        assert_relative_eq!(mp_m(0.5, 0.0)?, 2.0, max_relative = 1e-15);
        assert_relative_eq!(mp_m(0.5, 1e-300)?, 2.0, max_relative = 1e-15);
        assert_relative_eq!(mp_m_prime(0.5, 0.0)?, 8.0, max_relative = 1e-15);
        assert!(mp_m(1.0, 0.0)?.is_infinite());
        assert!(mp_m(2.0, 0.0)?.is_infinite());
        assert!(mp_m_prime(2.0, 0.0)?.is_infinite());
        // γ > 1, x → 0: the atom dominates, m ≈ (1 − 1/γ)/x.
        assert_relative_eq!(mp_m(2.0, 1e-12)? * 1e-12, 0.5, max_relative = 1e-11);
        // The rationalised branch keeps full accuracy where the textbook form cancels:
        // γ = 0.01, x = 1e-9; the reference uses the quadratic's other root (product −1/(γx)).
        let (g, x): (f64, f64) = (0.01, 1e-9);
        let b = 1.0 - g + x;
        let other_root = (-b - (b * b + 4.0 * g * x).sqrt()) / (2.0 * g * x);
        assert_relative_eq!(mp_m(g, x)?, -1.0 / (g * x * other_root), max_relative = 1e-15);
        assert!(mp_m(-1.0, 1.0).is_err());
        assert!(mp_m(1.0, -1.0).is_err());
        Ok(())
    }

    #[test]
    fn mp_derived_quantities() -> Result<(), TheoryError> {
        for &g in &[0.2, 1.0, 1.0 + 1e-6, 2.5] {
            for &x in &[1e-3, 0.3, 2.0] {
                let m = mp_m(g, x)?;
                let mp = mp_m_prime(g, x)?;
                // φ = x m, ψ = 1 − φ.
                assert_relative_eq!(mp_phi(g, x), x * m, max_relative = 1e-13);
                assert_relative_eq!(mp_psi(g, x), 1.0 - x * m, max_relative = 1e-12);
                // bias factor x² m', variance factor J(x,x) = m − x m', collapse 1 − 2xm + x²m'.
                assert_relative_eq!(mp_bias_factor(g, x), x * x * mp, max_relative = 1e-12);
                assert_relative_eq!(mp_mixed_resolvent(g, x, x), m - x * mp, max_relative = 1e-9);
                assert_relative_eq!(mp_squared_filter(g, x), 1.0 - 2.0 * x * m + x * x * mp, max_relative = 1e-8);
                // J is symmetric and equals the divided difference of φ.
                let y = 1.7 * x;
                let j = mp_mixed_resolvent(g, x, y);
                assert_relative_eq!(j, mp_mixed_resolvent(g, y, x), max_relative = 1e-13);
                assert_relative_eq!(j, (mp_phi(g, x) - mp_phi(g, y)) / (x - y), max_relative = 1e-9);
            }
        }
        // x → 0 limits.
        assert_relative_eq!(mp_bias_factor(3.0, 0.0), 2.0 / 3.0);
        assert_relative_eq!(mp_bias_factor(3.0, 1e-300), 2.0 / 3.0, max_relative = 1e-12);
        assert_relative_eq!(mp_bias_factor(0.5, 0.0), 0.0);
        assert_relative_eq!(mp_squared_filter(4.0, 0.0), 0.25);
        assert_relative_eq!(mp_squared_filter(4.0, 1e-300), 0.25, max_relative = 1e-12);
        assert!(mp_mixed_resolvent(1.0, 0.0, 0.0).is_infinite());
        Ok(())
    }

    #[test]
    fn d2_family_consistency() -> Result<(), TheoryError> {
        let h = Spectrum::from_atoms(&[0.0, 0.5, 2.0], &[0.2, 0.5, 0.3])?;
        let g = 1.3;
        for &(k1, k2) in &[(0.0, 0.0), (0.1, 0.1), (0.2, 3.0), (5.0, 0.01)] {
            let d = d2_cross(&h, g, k1, k2)?;
            assert_relative_eq!(one_minus_d2_cross(&h, g, k1, k2)?, 1.0 - d, max_relative = 1e-13);
            assert_relative_eq!(d2(&h, g, k1)?, d2_cross(&h, g, k1, k1)?);
            // τ = 0 contributes 0 (the integrand vanishes there; guard the 0/0 at κ = 0).
            let direct = g * h.integrate(|t| if t > 0.0 { t * t / ((t + k1) * (t + k2)) } else { 0.0 });
            assert_relative_eq!(d, direct, max_relative = 1e-14);
        }
        assert_relative_eq!(df1(&h, g, 0.5)?, g * h.integrate(|t| t / (t + 0.5)), max_relative = 1e-15);
        // dκ/dx = 1/(1 − D2(κ)) (docs/asymptotics.md §2 step 4).
        let x = 0.4;
        let k = kappa(&h, g, x)?;
        let dx = 1e-6;
        let fd = (kappa(&h, g, x + dx)? - kappa(&h, g, x - dx)?) / (2.0 * dx);
        assert_relative_eq!(fd, 1.0 / (1.0 - d2(&h, g, k)?), max_relative = 1e-7);
        assert!(d2(&h, 0.0, 1.0).is_err());
        assert!(d2(&h, 1.0, -1.0).is_err());
        Ok(())
    }

    #[test]
    fn atom_sums_handles_remainders() {
        let t: Vec<f64> = (1..=7).map(f64::from).collect();
        let p = vec![1.0; 7];
        let [s, s2] = atom_sums(&t, &p, |t, p| [p * t, p * t * t]);
        assert_relative_eq!(s, 28.0);
        assert_relative_eq!(s2, 140.0);
        let [e] = atom_sums(&[], &[], |t, p| [p * t]);
        assert_relative_eq!(e, 0.0);
    }

    proptest! {
        #[test]
        fn kappa_solves_fixed_point(
            taus in proptest::collection::vec(0.0_f64..10.0, 1..8),
            gamma in 0.05_f64..8.0,
            log_x in -10.0_f64..3.0,
        ) {
            let weights = vec![1.0; taus.len()];
            let h = Spectrum::from_atoms(&taus, &weights)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let x = 10f64.powf(log_x);
            let k = kappa(&h, gamma, x).map_err(|e| TestCaseError::fail(e.to_string()))?;
            prop_assert!(k > 0.0 && k.is_finite());
            // Backward error: the residual relative to the size of its terms.
            let scale = x + k * (1.0 + gamma * h.integrate(|t| t / (t + k)));
            prop_assert!(naive_residual(&h, gamma, x, k).abs() <= 1e-13 * scale);
            // κ ≥ x (the fixed point only adds regularisation) and κ ≤ x + γ∫τ dH.
            prop_assert!(k >= x * (1.0 - 1e-14));
            prop_assert!(k <= (x + gamma * h.mean()) * (1.0 + 1e-14));
        }
    }
}
