"""SVD peer: one thin SVD per design (per replicate with --protocol fresh-labels, per replicate and
iteration with --protocol fresh-covariates, shared by the cells), then each refit is
beta_hat = V diag(d / (d^2 + n*lambda)) U^T z  (singular values below d_max*max(n,p)*eps count as zero).
z_t (in R^n) and beta_hat (in R^p) are still formed every iteration; risk uses the structure of Sigma.
"""
import time

import peer_common as pc  # must precede numpy (sets BLAS threads)
import numpy as np


def filters(d, keep, n, lams):
    out = {}
    for lam in lams:
        f = np.zeros_like(d)
        f[keep] = d[keep] / (d[keep] ** 2 + n * lam)              # spectral filter of ridge(lam)
        out[lam] = f
    return out


def fresh_covariates(args, cov):
    """A new design every iteration: one thin SVD of X_t per replicate and iteration, shared by the cells."""
    n, p = args.n, args.p
    risks = {c: [] for c in pc.cells(args)}
    for rep in range(args.replicates):
        draws = pc.fresh_covariates_draws(args, cov, rep)
        beta = next(draws)[0]
        b = {}
        for t, X, eps, eps_syn in draws:
            U, d, Vt = np.linalg.svd(X, full_matrices=False)
            keep = d > d.max() * max(n, p) * np.finfo(float).eps
            f = filters(d, keep, n, args.lam)
            y = X @ beta + eps
            for (lam, w) in pc.cells(args):
                z = y if t == 0 else w * y + (1 - w) * (X @ b[(lam, w)] + eps_syn)
                b[(lam, w)] = Vt.T @ (f[lam] * (U.T @ z))
        for c in pc.cells(args):
            risks[c].append(cov.risk(b[c] - beta))
    return risks


def main():
    args = pc.parse_args()
    cov = pc.Covariance(args)
    n, p = args.n, args.p
    t0 = time.perf_counter()
    if args.protocol == "fresh-covariates":
        risks = fresh_covariates(args, cov)
        pc.report("svd", args, time.perf_counter() - t0, risks)
        return
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
