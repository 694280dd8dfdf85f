"""SVD peer: one thin SVD per design, then each refit is
beta_hat = V diag(d / (d^2 + n*lambda)) U^T z  (singular values below d_max*max(n,p)*eps count as zero).
z_t (in R^n) and beta_hat (in R^p) are still formed every iteration; risk uses the structure of Sigma.
"""
import time

import peer_common as pc  # must precede numpy (sets BLAS threads)
import numpy as np


def main():
    args = pc.parse_args()
    cov = pc.Covariance(args)
    n, p = args.n, args.p
    t0 = time.perf_counter()
    risks = {c: [] for c in pc.cells(args)}
    for rep in range(args.replicates):
        X, beta, noise = pc.draw_replicate(args, cov, rep)
        U, d, Vt = np.linalg.svd(X, full_matrices=False)
        keep = d > d.max() * max(n, p) * np.finfo(float).eps
        signal = X @ beta
        for (lam, w) in pc.cells(args):
            f = np.zeros_like(d)
            f[keep] = d[keep] / (d[keep] ** 2 + n * lam)           # spectral filter of ridge(lam)
            fit = lambda z: Vt.T @ (f * (U.T @ z))                 # noqa: E731
            b = fit(signal + noise[0])                             # t = 0: real labels only
            for t in range(1, args.iterations + 1):
                y = signal + noise[2 * t - 1]                      # fresh real labels
                y_syn = X @ b + noise[2 * t]                       # synthetic labels from previous fit
                b = fit(w * y + (1 - w) * y_syn)
            risks[(lam, w)].append(cov.risk(b - beta))
    pc.report("svd", args, time.perf_counter() - t0, risks)


if __name__ == "__main__":
    main()
