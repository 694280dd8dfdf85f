//! Eigenvalues of a symmetric tridiagonal matrix by the implicit QL algorithm
//! (docs/numerics.md §5), used by the Laguerre sampler of isotropic designs.

use crate::error::CoreError;

/// Eigenvalues of the symmetric tridiagonal matrix with diagonal `diag` and
/// off-diagonal `off` (off[i] couples i and i + 1; the last entry is ignored), in place
/// in `diag` (unsorted), by the implicit QL algorithm with Wilkinson shifts (as in
/// EISPACK tql1). O(m²) in total.
pub fn tridiagonal_eigenvalues(diag: &mut [f64], off: &mut [f64]) -> Result<(), CoreError> {
    let m = diag.len();
    if m == 0 {
        return Ok(());
    }
    off[m - 1] = 0.0;
    for l in 0..m {
        let mut iterations = 0;
        loop {
            let mut k = l;
            while k + 1 < m {
                let dd = diag[k].abs() + diag[k + 1].abs();
                if off[k].abs() <= f64::EPSILON * dd {
                    break;
                }
                k += 1;
            }
            if k == l {
                break;
            }
            iterations += 1;
            if iterations > 60 {
                return Err(CoreError::numerical("tridiagonal eigenvalues", "QL did not converge in 60 sweeps"));
            }
            let mut g = (diag[l + 1] - diag[l]) / (2.0 * off[l]);
            let mut r = g.hypot(1.0);
            g = diag[k] - diag[l] + off[l] / (g + r.copysign(g));
            let (mut s, mut c, mut p) = (1.0f64, 1.0f64, 0.0f64);
            let mut underflow = false;
            let mut i = k;
            while i > l {
                i -= 1;
                let f = s * off[i];
                let b = c * off[i];
                r = f.hypot(g);
                off[i + 1] = r;
                if r == 0.0 {
                    diag[i + 1] -= p;
                    off[k] = 0.0;
                    underflow = true;
                    break;
                }
                s = f / r;
                c = g / r;
                g = diag[i + 1] - p;
                r = (diag[i] - g) * s + 2.0 * c * b;
                p = s * r;
                diag[i + 1] = g + p;
                g = c * r - b;
            }
            if underflow {
                continue;
            }
            diag[l] -= p;
            off[l] = g;
            off[k] = 0.0;
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::{Purpose, Streams, normal_vec};
    use crate::spectral::linalg::symmetric_eigen;
    use faer::{Mat, Par};

    /// The QL eigenvalues of a random tridiagonal matrix equal faer's dense solver's.
    #[test]
    fn tridiagonal_eigenvalues_match_dense_solver() {
        let m = 40;
        let mut rng = Streams::new(1, 2, 3).rng(Purpose::Plugin(0), 0);
        let dg = normal_vec(&mut rng, 1.0, m);
        let of = normal_vec(&mut rng, 1.0, m);
        let dense = Mat::from_fn(m, m, |i, j| {
            if i == j {
                dg[i]
            } else if i + 1 == j {
                of[i]
            } else if j + 1 == i {
                of[j]
            } else {
                0.0
            }
        });
        let mut expected: Vec<f64> = symmetric_eigen(dense.as_ref(), Par::Seq).unwrap().0;
        let (mut d, mut o) = (dg.clone(), of.clone());
        tridiagonal_eigenvalues(&mut d, &mut o).unwrap();
        d.sort_by(f64::total_cmp);
        expected.sort_by(f64::total_cmp);
        for (a, b) in d.iter().zip(&expected) {
            assert!((a - b).abs() < 1e-12 * expected.iter().map(|x| x.abs()).fold(0.0, f64::max), "{a} vs {b}");
        }
    }
}
