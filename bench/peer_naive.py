"""Naive peer: refit from scratch every iteration (what most published code does), on a fixed design
(--protocol fresh-labels) or on a new design every iteration (--protocol fresh-covariates).

lambda > 0: solve (X^T X + n*lambda*I) b = X^T z with np.linalg.solve;
lambda = 0: np.linalg.lstsq (min-norm interpolator, or OLS when n >= p).
Risk uses the dense Sigma matrix.
"""
import time

import peer_common as pc  # must precede numpy (sets BLAS threads)
import numpy as np


def fit(X, z, lam):
    n, p = X.shape
    if lam == 0:
        return np.linalg.lstsq(X, z, rcond=None)[0]
    return np.linalg.solve(X.T @ X + n * lam * np.eye(p), X.T @ z)


def fresh_covariates(args, cov):
    """A new design every iteration: every cell refits from scratch on (X_t, z_t)."""
    Sigma = cov.dense()
    risks = {c: [] for c in pc.cells(args)}
    for rep in range(args.replicates):
        draws = pc.fresh_covariates_draws(args, cov, rep)
        beta = next(draws)[0]
        b = {}
        for t, X, eps, eps_syn in draws:
            y = X @ beta + eps                                      # fresh real labels on X_t
            for (lam, w) in pc.cells(args):
                z = y if t == 0 else w * y + (1 - w) * (X @ b[(lam, w)] + eps_syn)
                b[(lam, w)] = fit(X, z, lam)
        for c in pc.cells(args):
            e = b[c] - beta
            risks[c].append(float(e @ Sigma @ e))
    return risks


def main():
    args = pc.parse_args()
    cov = pc.Covariance(args)
    t0 = time.perf_counter()
    if args.protocol == "fresh-covariates":
        risks = fresh_covariates(args, cov)
        pc.report("naive", args, time.perf_counter() - t0, risks)
        return
    Sigma = cov.dense()
    risks = {c: [] for c in pc.cells(args)}
    for rep in range(args.replicates):
        X, beta, noise = pc.draw_replicate(args, cov, rep)
        signal = X @ beta
        for (lam, w) in pc.cells(args):
            b = fit(X, signal + noise[0], lam)                     # t = 0: real labels only
            for t in range(1, args.iterations + 1):
                y = signal + noise[2 * t - 1]                      # fresh real labels
                y_syn = X @ b + noise[2 * t]                       # synthetic labels from previous fit
                b = fit(X, w * y + (1 - w) * y_syn, lam)
            e = b - beta
            risks[(lam, w)].append(float(e @ Sigma @ e))
    pc.report("naive", args, time.perf_counter() - t0, risks)


if __name__ == "__main__":
    main()
