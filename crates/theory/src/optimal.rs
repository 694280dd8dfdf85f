//! The optimal mixing weight `w*(λ) = argmin_{w∈(0,1]} R_∞(λ, w)` for ridge
//! (docs/asymptotics.md §4 "Optimal w for ridge").
//!
//! `R_∞(λ, ·)` is the stationary fresh-label mixing risk of
//! [`crate::limits::ridge_mixing_limit`]. It is log-convex in `w` (P1's claim as reported by
//! its reviewers, docs/README.md §2, and checked on grids in the tests below), hence unimodal.
//! [`optimal_w`] nevertheless scans a coarse grid before refining, so it only needs
//! unimodality between neighbouring grid points; [`optimal_w_curve`] tracks the optimum
//! from one `λ` to the next and relies on unimodality. The minimum can sit on the boundary
//! `w = 1` (too much regularisation already: raising the effective penalty `λ/w` only hurts),
//! which is detected with a probe just inside the boundary.
//!
//! At `λ = 0` the risk is `B + c(w)V` and `w* = 1/φ` exactly (docs/fresh-labels.md §3). As `λ`
//! grows, `w*` first *decreases* below `1/φ` (a first-order effect derived in the tests) and
//! then rises to 1; docs/asymptotics.md §4's "w* non-decreasing in λ" holds only after that dip.

use crate::error::{TheoryError, non_negative};
use crate::limits::RidgeMixingEvaluator;
use crate::mixing::GOLDEN_W;
use crate::spectrum::Spectrum;

/// One point of a `w*(λ)` curve.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OptimalPoint {
    /// Ridge penalty `λ`.
    pub lambda: f64,
    /// Minimising weight `w*(λ) ∈ (0, 1]`.
    pub w: f64,
    /// Minimal stationary risk `R_∞(λ, w*)`.
    pub risk: f64,
}

/// Coarse scan used by [`optimal_w`]: descending, so consecutive evaluations move `λ/w`
/// monotonically and warm starts of `κ` stay close.
const COARSE_GRID: [f64; 10] = [1.0, 0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2, 0.1];

/// Smallest weight ever tried. `R_∞ ≥ c(w)V ~ V/(2w)` as `w → 0`, so the optimum is far
/// above this unless `σ = 0`, where the risk is the bias at penalty `λ/w`, increasing in
/// `λ/w`, and the optimum is `w = 1`.
const W_FLOOR: f64 = 1e-6;

/// Brent's relative tolerance on `w`. A minimum is only determined to about `√ε_mach` in
/// its argument (`R − R* ∝ (w − w*)²`), so asking for more is pointless.
const W_RELATIVE_TOLERANCE: f64 = 1e-8;
const W_ABSOLUTE_TOLERANCE: f64 = 1e-12;

/// Largest and smallest initial half-width of the local bracket search along a curve; in
/// between, twice the last move of `w*` is used (consecutive optima are close).
const LOCAL_STEP: f64 = 0.02;
const MIN_LOCAL_STEP: f64 = 1e-5;

/// Distance from `w = 1` of the probe that decides a boundary optimum; at the level of
/// Brent's tolerance.
const BOUNDARY_PROBE: f64 = 1e-8;

/// Optimal constant mixing weight for ridge and the corresponding minimal stationary risk,
/// `(w*, R_∞(λ, w*))` with `w* = argmin_{w∈(0,1]} R_∞(λ, w)` (docs/asymptotics.md §4).
///
/// Coarse grid `w ∈ {1, 0.9, …, 0.1}` (extended geometrically below 0.1 if the risk still
/// decreases), then Brent's method (golden section + parabolic steps) on the bracket around
/// the best grid point, and finally a comparison with the boundary value `R_∞(λ, 1)`.
/// `w*` is accurate to ≈1e-8 relative. `λ = 0` returns `(1/φ, B + V/φ)`.
///
/// # Errors
/// [`TheoryError::InvalidParameter`] unless `γ > 0`, `r², σ², λ ≥ 0` are finite.
pub fn optimal_w(
    h: &Spectrum,
    g: &Spectrum,
    gamma: f64,
    r2: f64,
    sigma2: f64,
    lambda: f64,
) -> Result<(f64, f64), TheoryError> {
    let mut ev = RidgeMixingEvaluator::new(h, g, gamma, r2, sigma2)?;
    non_negative("lambda", lambda)?;
    let p = Minimiser::new(&mut ev, lambda).global();
    Ok((p.w, p.risk))
}

/// `w*(λ)` for each `λ` in `lambdas`, in the given order (docs/asymptotics.md §4).
///
/// The first point (and any point after `λ = 0`) is found as in [`optimal_w`]. Every later
/// point starts from the previous `w*`: a downhill walk with doubling steps brackets the
/// minimum, then Brent refines it. This relies on unimodality of `R_∞(λ, ·)` (log-convexity,
/// see the module docs); the tests compare the result with independent grid-started
/// optimisations. One [`RidgeMixingEvaluator`] is shared by the whole curve, so every solve
/// of the effective regularisation `κ` is warm-started from the previous one. Sorted
/// `lambdas` (either direction) make both warm starts most effective.
///
/// # Errors
/// As [`optimal_w`], for any `λ` in the list.
pub fn optimal_w_curve(
    h: &Spectrum,
    g: &Spectrum,
    gamma: f64,
    r2: f64,
    sigma2: f64,
    lambdas: &[f64],
) -> Result<Vec<OptimalPoint>, TheoryError> {
    let mut ev = RidgeMixingEvaluator::new(h, g, gamma, r2, sigma2)?;
    for &lambda in lambdas {
        non_negative("lambda", lambda)?;
    }
    let mut out: Vec<OptimalPoint> = Vec::with_capacity(lambdas.len());
    // Previous optimum and the size of the last move of w*, which sets the initial bracket.
    let mut previous: Option<(f64, f64)> = None;
    for &lambda in lambdas {
        let mut m = Minimiser::new(&mut ev, lambda);
        let p = match previous {
            Some((w, step)) if lambda > 0.0 => m.local(w, step),
            _ => m.global(),
        };
        previous = (lambda > 0.0).then(|| {
            let moved = previous.map_or(LOCAL_STEP, |(w, _)| 2.0 * (p.w - w).abs());
            (p.w, moved)
        });
        out.push(p);
    }
    Ok(out)
}

/// One 1-D minimisation of `w ↦ R_∞(λ, w)`.
struct Minimiser<'e, 'a> {
    ev: &'e mut RidgeMixingEvaluator<'a>,
    lambda: f64,
}

impl<'e, 'a> Minimiser<'e, 'a> {
    fn new(ev: &'e mut RidgeMixingEvaluator<'a>, lambda: f64) -> Self {
        Self { ev, lambda }
    }

    fn risk(&mut self, w: f64) -> f64 {
        self.ev.limit_unchecked(self.lambda, w).total()
    }

    fn point(&self, w: f64, risk: f64) -> OptimalPoint {
        OptimalPoint { lambda: self.lambda, w, risk }
    }

    /// `λ = 0`: `R = B + c(w)V` is minimised at `1/φ` whatever `B` and `V` are.
    fn min_norm(&mut self) -> OptimalPoint {
        let r = self.risk(GOLDEN_W);
        self.point(GOLDEN_W, r)
    }

    /// Grid scan, then Brent on the bracket around the best grid point.
    fn global(&mut self) -> OptimalPoint {
        if self.lambda <= 0.0 {
            return self.min_norm();
        }
        let mut pts: Vec<(f64, f64)> = COARSE_GRID.iter().map(|&w| (w, self.risk(w))).collect();
        // If the smallest grid weight is still the best, keep halving (bounded by W_FLOOR).
        while let Some(&(w_last, r_last)) = pts.last() {
            let best_is_last = pts.iter().all(|&(_, r)| r >= r_last);
            if !best_is_last || w_last * 0.5 < W_FLOOR {
                break;
            }
            let w = w_last * 0.5;
            pts.push((w, self.risk(w)));
        }
        if let Some(&(_, r_one)) = pts.first()
            && pts.iter().all(|&(_, r)| r >= r_one)
            && let Some(p) = self.boundary_optimum(r_one)
        {
            return p;
        }
        let (i, &(w_best, r_best)) =
            pts.iter().enumerate().min_by(|a, b| a.1.1.total_cmp(&b.1.1)).unwrap_or((0, &(1.0, f64::INFINITY)));
        if i + 1 == pts.len() {
            // Only reachable at W_FLOOR: a degenerate problem; report the floor.
            return self.point(w_best, r_best);
        }
        let lo = pts[i + 1].0;
        let hi = if i == 0 { pts[1].0 } else { pts[i - 1].0 };
        let (lo, hi) = if i == 0 { (hi, 1.0) } else { (lo, hi) };
        let boundary = pts[0];
        self.refine(lo, hi, (w_best, r_best), boundary.1)
    }

    /// Returns `Some(w = 1)` if the risk increases when stepping `BOUNDARY_PROBE` into the
    /// interior from `w = 1`: for a unimodal risk the minimiser then lies within
    /// `BOUNDARY_PROBE` of the boundary, i.e. below the optimiser's resolution. This settles
    /// the whole "too much regularisation" regime of a curve with two evaluations.
    fn boundary_optimum(&mut self, r_one: f64) -> Option<OptimalPoint> {
        let r_in = self.risk(1.0 - BOUNDARY_PROBE);
        (r_in >= r_one).then(|| self.point(1.0, r_one))
    }

    /// Bracket the minimum by walking downhill from `start` with doubling steps (initial
    /// step `step`), then refine.
    fn local(&mut self, start: f64, step: f64) -> OptimalPoint {
        let step = step.clamp(MIN_LOCAL_STEP, LOCAL_STEP);
        let x = start.clamp(W_FLOOR, 1.0);
        let fx = self.risk(x);
        if x >= 1.0
            && let Some(p) = self.boundary_optimum(fx)
        {
            return p;
        }
        // Probe towards the boundary w = 1 first.
        let r = (x + step).min(1.0);
        let fr = if r > x { self.risk(r) } else { f64::INFINITY };
        if fr < fx {
            return self.walk((x, fx), (r, fr), step);
        }
        let l = (x - step).max(W_FLOOR);
        let fl = self.risk(l);
        if fl < fx {
            return self.walk((x, fx), (l, fl), -step);
        }
        // x is no worse than both neighbours: [l, max(r, x)] brackets the minimum.
        let hi = r.max(x);
        let boundary = if x >= 1.0 { fx } else { fr };
        self.refine(l, hi, (x, fx), boundary)
    }

    /// Downhill walk: `y` is better than the previous point `x`, which lies `step` behind it.
    /// Doubles the step until the risk rises again (or a boundary is reached).
    fn walk(&mut self, mut x: (f64, f64), mut y: (f64, f64), mut step: f64) -> OptimalPoint {
        loop {
            step *= 2.0;
            let z = (y.0 + step).clamp(W_FLOOR, 1.0);
            if (z - y.0).abs() <= 0.0 {
                // The clamp left us in place: still descending at a boundary.
                if z >= 1.0 {
                    if let Some(p) = self.boundary_optimum(y.1) {
                        return p;
                    }
                    return self.refine(x.0, 1.0, y, y.1);
                }
                return self.point(y.0, y.1);
            }
            let fz = self.risk(z);
            if fz >= y.1 {
                let (lo, hi) = (x.0.min(z), x.0.max(z));
                // The value at w = 1, if 1 is one of the bracket ends.
                let boundary = if z >= 1.0 {
                    fz
                } else if x.0 >= 1.0 {
                    x.1
                } else {
                    f64::INFINITY
                };
                return self.refine(lo, hi, y, boundary);
            }
            (x, y) = (y, (z, fz));
        }
    }

    /// Brent on `[lo, hi]` starting from `best` (a point inside), then keep the best of the
    /// Brent result, `best` and the boundary value `R(1)` (passed in when known).
    fn refine(&mut self, lo: f64, hi: f64, best: (f64, f64), boundary: f64) -> OptimalPoint {
        let start = if best.0 > lo && best.0 < hi {
            best
        } else {
            let w = lo + GOLDEN_SECTION * (hi - lo);
            (w, self.risk(w))
        };
        let (w, r) = brent_minimise(|w| self.risk(w), lo, hi, start);
        let mut out = (w, r);
        if best.1 < out.1 {
            out = best;
        }
        if hi >= 1.0 && boundary <= out.1 {
            out = (1.0, boundary);
        }
        self.point(out.0, out.1)
    }
}

/// `(3 − √5)/2`, the golden-section fraction.
const GOLDEN_SECTION: f64 = 0.381_966_011_250_105_1;

/// Brent's derivative-free minimiser (Brent 1973, "localmin"; the netlib `fmin`), started
/// from a known interior point `(x0, f(x0))` instead of the first golden-section point.
/// Parabolic interpolation through the three best points when it is safe, golden section
/// otherwise; stops when the bracket is within `2·tol` of the current best point.
fn brent_minimise(mut f: impl FnMut(f64) -> f64, a: f64, b: f64, start: (f64, f64)) -> (f64, f64) {
    let (mut a, mut b) = (a, b);
    let (mut x, mut fx) = start;
    let (mut w, mut fw, mut v, mut fv) = (x, fx, x, fx);
    let (mut d, mut e) = (0.0_f64, 0.0_f64);
    for _ in 0..200 {
        let m = 0.5 * (a + b);
        let tol = W_RELATIVE_TOLERANCE * x.abs() + W_ABSOLUTE_TOLERANCE;
        let t2 = 2.0 * tol;
        if (x - m).abs() <= t2 - 0.5 * (b - a) {
            break;
        }
        let mut golden = true;
        if e.abs() > tol {
            // Parabola through (v, fv), (w, fw), (x, fx).
            let r = (x - w) * (fx - fv);
            let mut q = (x - v) * (fx - fw);
            let mut p = (x - v) * q - (x - w) * r;
            q = 2.0 * (q - r);
            if q > 0.0 {
                p = -p;
            } else {
                q = -q;
            }
            let e_old = e;
            e = d;
            if p.abs() < (0.5 * q * e_old).abs() && p > q * (a - x) && p < q * (b - x) {
                d = p / q;
                let u = x + d;
                // Never evaluate too close to the bracket ends.
                if u - a < t2 || b - u < t2 {
                    d = if x < m { tol } else { -tol };
                }
                golden = false;
            }
        }
        if golden {
            e = if x < m { b - x } else { a - x };
            d = GOLDEN_SECTION * e;
        }
        let u = if d.abs() >= tol {
            x + d
        } else if d > 0.0 {
            x + tol
        } else {
            x - tol
        };
        let fu = f(u);
        if fu <= fx {
            if u < x {
                b = x;
            } else {
                a = x;
            }
            (v, fv, w, fw, x, fx) = (w, fw, x, fx, u, fu);
        } else {
            if u < x {
                a = u;
            } else {
                b = u;
            }
            if fu <= fw || w.to_bits() == x.to_bits() {
                (v, fv, w, fw) = (w, fw, u, fu);
            } else if fu <= fv || v.to_bits() == x.to_bits() || v.to_bits() == w.to_bits() {
                (v, fv) = (u, fu);
            }
        }
    }
    (x, fx)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::limits::{ridge_mixing_isotropic, ridge_mixing_limit};
    use approx::assert_relative_eq;
    use proptest::prelude::*;

    fn iso() -> Result<Spectrum, TheoryError> {
        Spectrum::point_mass(1.0)
    }

    /// The two-level spectrum of docs/asymptotics.md §2 / docs/asymptotics.md §4, with random effects (`G = H`).
    fn two_level() -> Result<Spectrum, TheoryError> {
        Spectrum::from_atoms(&[1.0, 4.0], &[0.5, 0.5])
    }

    fn log_grid(lo: f64, hi: f64, n: u32) -> Vec<f64> {
        (0..n).map(|i| lo * (hi / lo).powf(f64::from(i) / f64::from(n - 1))).collect()
    }

    #[test]
    fn brent_finds_interior_and_boundary_minima() {
        let (x, fx) = brent_minimise(|x| (x - 0.3) * (x - 0.3) + 1.0, 0.0, 1.0, (0.5, 1.04));
        assert!((x - 0.3).abs() < 1e-7 && (fx - 1.0).abs() < 1e-13);
        // Monotone decreasing: converges to within the tolerance of the right end.
        let (x, _) = brent_minimise(|x| -x, 0.0, 1.0, (0.5, -0.5));
        assert!(1.0 - x < 1e-7);
        // A non-smooth (|·|) minimum is still found (golden-section fallback).
        let (x, _) = brent_minimise(|x| (x - 0.7).abs(), 0.0, 1.0, (0.2, 0.5));
        assert!((x - 0.7).abs() < 1e-7);
    }

    #[test]
    fn table_a5() -> Result<(), TheoryError> {
        // docs/asymptotics.md §4 table (isotropic, σ = 1, SNR = r²/σ²); 4-digit w*, so compare to 1e-4
        // (half an ulp of the table plus the flatness of the optimum).
        let h = iso()?;
        let table: [(f64, f64, [f64; 3]); 4] = [
            (1.5, 1.0, [0.5936, 0.7512, 1.0]),
            (1.5, 0.2, [0.5814, 0.5937, 1.0]),
            (1.5, 5.0, [0.6465, 1.0, 1.0]),
            (2.0, 1.0, [0.6001, 0.7037, 1.0]),
        ];
        for (gamma, snr, ws) in table {
            for (lambda, w_tab) in [0.1, 1.0, 10.0].into_iter().zip(ws) {
                let (w, r) = optimal_w(&h, &h, gamma, snr, 1.0, lambda)?;
                assert!((w - w_tab).abs() < 1e-4, "γ = {gamma}, SNR = {snr}, λ = {lambda}: w* = {w} vs {w_tab}");
                // The returned risk is the risk at the returned w, and no grid point beats it.
                assert_relative_eq!(
                    r,
                    ridge_mixing_isotropic(gamma, snr, 1.0, lambda, w)?.total(),
                    max_relative = 1e-9
                );
                for i in 1..=1000 {
                    let wi = f64::from(i) * 1e-3;
                    assert!(ridge_mixing_isotropic(gamma, snr, 1.0, lambda, wi)?.total() >= r - 1e-13);
                }
            }
        }
        // R* for γ = 1.5, SNR = 1.
        for (lambda, r_star) in [(0.1, 0.95065), (1.0, 0.69923), (10.0, 0.86320)] {
            let (_, r) = optimal_w(&h, &h, 1.5, 1.0, 1.0, lambda)?;
            assert!((r - r_star).abs() < 5e-6, "λ = {lambda}: {r}");
        }
        Ok(())
    }

    #[test]
    fn boundary_optimum_is_exactly_one() -> Result<(), TheoryError> {
        let h = iso()?;
        let (w, r) = optimal_w(&h, &h, 1.5, 1.0, 1.0, 10.0)?;
        assert_relative_eq!(w, 1.0);
        assert_relative_eq!(r, ridge_mixing_limit(&h, &h, 1.5, 1.0, 1.0, 10.0, 1.0)?.total());
        Ok(())
    }

    #[test]
    fn lambda_zero_and_small_lambda_give_golden_weight() -> Result<(), TheoryError> {
        let h = iso()?;
        let t = two_level()?;
        let (w0, r0) = optimal_w(&t, &t, 2.0, 1.0, 1.0, 0.0)?;
        assert_relative_eq!(w0, GOLDEN_W);
        assert_relative_eq!(r0, 1.0 + 1.25 * GOLDEN_W, max_relative = 1e-14);
        // docs/asymptotics.md §4: w* → 1/φ as λ → 0 (λ = 1e−6 within 1e−3).
        for (spec, gamma) in [(&h, 0.5), (&h, 1.5), (&h, 2.0), (&t, 2.0), (&t, 0.5)] {
            for snr in [0.2, 1.0, 5.0] {
                let (w, _) = optimal_w(spec, spec, gamma, snr, 1.0, 1e-6)?;
                assert!((w - GOLDEN_W).abs() < 1e-3, "γ = {gamma}, SNR = {snr}: {w}");
            }
        }
        Ok(())
    }

    #[test]
    fn large_lambda_pure_noise_gives_one_half() -> Result<(), TheoryError> {
        // docs/asymptotics.md §4: r = 0, λ → ∞ ⇒ V ≈ σ²(w² + (1−w)²)γ∫τ²dH/λ², minimised at ½.
        let t = two_level()?;
        let (w, _) = optimal_w(&t, &t, 1.5, 0.0, 1.0, 1e4)?;
        assert!((w - 0.5).abs() < 1e-3, "{w}");
        // σ = 0: only the bias at penalty λ/w, increasing in λ/w ⇒ w* = 1.
        let (w, _) = optimal_w(&t, &t, 1.5, 1.0, 0.0, 0.3)?;
        assert_relative_eq!(w, 1.0);
        Ok(())
    }

    /// Problems used by the qualitative property checks: isotropic γ ∈ {0.5, 1.5, 2} and the
    /// two-level `H = G` at γ ∈ {0.5, 2} (docs/asymptotics.md §4 "Observed on every grid I tried").
    fn problems() -> Result<Vec<(Spectrum, f64)>, TheoryError> {
        Ok(vec![(iso()?, 0.5), (iso()?, 1.5), (iso()?, 2.0), (two_level()?, 0.5), (two_level()?, 2.0)])
    }

    #[test]
    fn w_star_in_half_one_and_u_shaped_in_lambda() -> Result<(), TheoryError> {
        // docs/asymptotics.md §4 claims w*(λ) ∈ [1/2, 1] (P1) and that w* is non-decreasing in λ. The
        // first holds on every grid. The second does not near λ = 0: w* first dips below
        // 1/φ (see `w_star_initial_slope_matches_first_order_theory`; the docs' reference table has
        // w*(0.1) = 0.5936 < 1/φ = w*(0) at γ = 1.5, SNR = 1). What holds on every grid tried
        // is the U shape: non-increasing up to a minimum, non-decreasing after it. With
        // r = 0 there is no rising branch, w* just falls from 1/φ towards 1/2.
        let lambdas = log_grid(1e-4, 1e2, 41);
        for (h, gamma) in problems()? {
            for snr in [0.0, 0.2, 1.0, 5.0] {
                let curve = optimal_w_curve(&h, &h, gamma, snr, 1.0, &lambdas)?;
                for p in &curve {
                    assert!(p.w >= 0.5 - 1e-9 && p.w <= 1.0, "{p:?}");
                }
                let bottom = curve.iter().enumerate().min_by(|a, b| a.1.w.total_cmp(&b.1.w)).map_or(0, |(i, _)| i);
                // Monotone pieces up to the optimiser's resolution (~1e-8).
                let falling = curve[..=bottom].windows(2).all(|p| p[1].w <= p[0].w + 1e-7);
                let rising = curve[bottom..].windows(2).all(|p| p[1].w >= p[0].w - 1e-7);
                assert!(falling && rising, "γ = {gamma}, SNR = {snr}: {curve:?}");
                assert!(curve[0].w < GOLDEN_W, "dip expected, γ = {gamma}, SNR = {snr}");
            }
        }
        Ok(())
    }

    #[test]
    fn w_star_initial_slope_matches_first_order_theory() -> Result<(), TheoryError> {
        // Derivation (isotropic Σ, λ → 0). The bias r²∫x²/(s+x)² dF at x = λ/w is
        // const + O(λ²) (the atom of F at 0 gives the constant, the rest is O(x²)), while
        // the variance σ²γc(w)J(λ/w, λ/(2−w)) with J(a,b) = ∫ s/((s+a)(s+b)) dF expands as
        // J ≈ J0 − (a+b)J1, J0 = ∫_{s>0} dF/s, J1 = ∫_{s>0} dF/s², a + b = 2λ/D(w),
        // D = w(2−w). Stationarity of c(w)J0 − 2λJ1 c(w)/D(w), linearised at w0 = 1/φ
        // (c'(w0) = 0), gives
        //     w*(λ) − 1/φ ≈ 2λ (J1/J0) (c/D)'(w0) / c''(w0),
        // with J1/J0 = 1/(1−γ)² for γ < 1 (inverse-Wishart moments 1/(1−γ), 1/(1−γ)³) and
        // γ/(γ−1)² for γ > 1 (the non-zero eigenvalues are γ·MP(1/γ) with mass 1/γ).
        // (c/D)'(w0) < 0 < c''(w0): w* starts *below* 1/φ, whatever the SNR.
        use crate::mixing::c;
        let w0 = GOLDEN_W;
        let h = 1e-4;
        let c2 = (c(w0 + h) - 2.0 * c(w0) + c(w0 - h)) / (h * h);
        let cd = |w: f64| c(w) / (w * (2.0 - w));
        let cd1 = (cd(w0 + h) - cd(w0 - h)) / (2.0 * h);
        assert!(cd1 < 0.0 && c2 > 0.0);
        let iso = iso()?;
        let lambda = 1e-4;
        for gamma in [0.5, 1.5, 2.0] {
            let ratio = if gamma < 1.0 {
                1.0 / ((1.0 - gamma) * (1.0 - gamma))
            } else {
                gamma / ((gamma - 1.0) * (gamma - 1.0))
            };
            let predicted = 2.0 * ratio * cd1 / c2;
            for snr in [0.2, 1.0, 5.0] {
                let (w, _) = optimal_w(&iso, &iso, gamma, snr, 1.0, lambda)?;
                let slope = (w - w0) / lambda;
                assert_relative_eq!(slope, predicted, max_relative = 0.02);
            }
        }
        Ok(())
    }

    #[test]
    fn w_star_rises_with_snr() -> Result<(), TheoryError> {
        let snrs = log_grid(0.05, 20.0, 15);
        for (h, gamma) in problems()? {
            for lambda in [0.01, 0.1, 1.0, 5.0] {
                let mut previous = 0.0;
                for &snr in &snrs {
                    let (w, _) = optimal_w(&h, &h, gamma, snr, 1.0, lambda)?;
                    assert!(w >= previous - 1e-6, "γ = {gamma}, λ = {lambda}, SNR = {snr}");
                    previous = w;
                }
            }
        }
        Ok(())
    }

    #[test]
    fn risk_is_log_convex_in_w() -> Result<(), TheoryError> {
        // Second differences of ln R on a uniform w-grid must be ≥ 0 up to rounding
        // (|ln R| ≤ ~10 here, so 1e-12 is ~100 ulps of slack).
        let step = 0.01;
        for (h, gamma) in problems()? {
            for snr in [0.2, 1.0, 5.0] {
                for lambda in [0.0, 1e-3, 0.1, 1.0, 10.0] {
                    let mut ev = RidgeMixingEvaluator::new(&h, &h, gamma, snr, 1.0)?;
                    let logs: Vec<f64> = (1..=100)
                        .map(|i| ev.limit(lambda, f64::from(i) * step).map(|r| r.total().ln()))
                        .collect::<Result<_, _>>()?;
                    for win in logs.windows(3) {
                        let second = win[0] - 2.0 * win[1] + win[2];
                        assert!(second >= -1e-12, "γ = {gamma}, SNR = {snr}, λ = {lambda}: {second}");
                    }
                }
            }
        }
        Ok(())
    }

    #[test]
    fn curve_matches_independent_optimisations() -> Result<(), TheoryError> {
        // The warm-started local search along the curve must agree with the grid-started
        // global search at every λ, for increasing, decreasing and shuffled λ orders.
        let h = Spectrum::from_atoms(&[0.1, 0.5, 1.0, 3.0, 8.0], &[0.1, 0.2, 0.4, 0.2, 0.1])?;
        let g = Spectrum::from_atoms(&[0.1, 1.0, 8.0], &[0.6, 0.3, 0.1])?;
        let up = log_grid(1e-3, 30.0, 25);
        let down: Vec<f64> = up.iter().rev().copied().collect();
        let shuffled: Vec<f64> = (0..25).map(|i| up[(i * 7) % 25]).collect();
        for lambdas in [&up, &down, &shuffled] {
            let curve = optimal_w_curve(&h, &g, 1.7, 2.0, 1.0, lambdas)?;
            for p in curve {
                let (w, r) = optimal_w(&h, &g, 1.7, 2.0, 1.0, p.lambda)?;
                assert!((p.w - w).abs() < 1e-6, "{p:?} vs {w}");
                assert_relative_eq!(p.risk, r, max_relative = 1e-12);
            }
        }
        let with_zero = optimal_w_curve(&h, &g, 1.7, 2.0, 1.0, &[0.5, 0.0, 0.5])?;
        assert_relative_eq!(with_zero[1].w, GOLDEN_W);
        assert_relative_eq!(with_zero[0].w, with_zero[2].w, max_relative = 1e-7);
        assert!(optimal_w_curve(&h, &g, 1.7, 2.0, 1.0, &[0.5, -1.0]).is_err());
        assert!(optimal_w_curve(&h, &g, 1.7, 2.0, 1.0, &[])?.is_empty());
        assert!(optimal_w(&h, &g, 1.7, 2.0, 1.0, f64::NAN).is_err());
        Ok(())
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(48))]
        #[test]
        fn optimum_beats_dense_grid(
            taus in proptest::collection::vec(0.05_f64..10.0, 1..6),
            gamma in 0.2_f64..4.0,
            snr in 0.05_f64..20.0,
            log_lambda in -4.0_f64..2.0,
        ) {
            let weights = vec![1.0; taus.len()];
            let h = Spectrum::from_atoms(&taus, &weights)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let lambda = 10f64.powf(log_lambda);
            let (w, r) = optimal_w(&h, &h, gamma, snr, 1.0, lambda)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            let mut ev = RidgeMixingEvaluator::new(&h, &h, gamma, snr, 1.0)
                .map_err(|e| TestCaseError::fail(e.to_string()))?;
            for i in 1..=400 {
                let wi = f64::from(i) / 400.0;
                let ri = ev.limit(lambda, wi).map_err(|e| TestCaseError::fail(e.to_string()))?;
                prop_assert!(ri.total() >= r * (1.0 - 1e-12), "w = {wi}: {} < {r} (w* = {w})", ri.total());
            }
            prop_assert!((0.5 - 1e-9..=1.0).contains(&w));
        }
    }
}
