"""Shared code for the numpy peer programs: CLI, covariance models, summary.

Import this module BEFORE numpy: it reads --threads from sys.argv and sets the
BLAS thread variables, which only take effect if set before numpy is loaded.
"""
import os
import sys

for i, a in enumerate(sys.argv):
    k = a.split("=", 1)[1] if a.startswith("--threads=") else (
        sys.argv[i + 1] if a == "--threads" and i + 1 < len(sys.argv) else None)
    if k is not None:
        for var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ[var] = k

import argparse  # noqa: E402
import json  # noqa: E402

import numpy as np  # noqa: E402


def floats(s):
    return [float(v) for v in s.split(",") if v.strip()]


def parse_args():
    ap = argparse.ArgumentParser(description="fresh-label mixing simulation (numpy peer)")
    ap.add_argument("--n", type=int, default=200)
    ap.add_argument("--p", type=int, default=400)
    ap.add_argument("--iterations", type=int, default=40)
    ap.add_argument("--replicates", type=int, default=50)
    ap.add_argument("--w", type=floats, default=[0.618])
    ap.add_argument("--lambda", dest="lam", type=floats, default=[0.0])
    ap.add_argument("--cov", default="isotropic",
                    choices=["isotropic", "spiked", "equicorrelated", "power-law"])
    ap.add_argument("--spikes", type=floats, default=[5.0, 2.0])
    ap.add_argument("--rho", type=float, default=0.5)
    ap.add_argument("--alpha", type=float, default=1.0)
    ap.add_argument("--noise-sd", type=float, default=1.0)
    ap.add_argument("--r", type=float, default=1.0)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--protocol", default="fresh-labels", choices=["fresh-labels", "fresh-covariates"],
                    help="fresh-labels: one design per replicate; fresh-covariates: a new design every iteration")
    ap.add_argument("--threads", type=int, default=None)  # consumed at import time
    return ap.parse_args()


class Covariance:
    """Sigma is either diagonal (self.diag, a length-p vector) or equicorrelated (self.rho)."""

    def __init__(self, args):
        p = args.p
        self.p, self.kind, self.rho, self.diag = p, args.cov, None, None
        if args.cov == "equicorrelated":
            self.rho = args.rho
        elif args.cov == "isotropic":
            self.diag = np.ones(p)
        elif args.cov == "spiked":
            self.diag = np.ones(p)
            self.diag[:len(args.spikes)] += args.spikes
        else:  # power-law, rescaled so that trace = p
            d = np.arange(1, p + 1, dtype=float) ** -args.alpha
            self.diag = d * (p / d.sum())

    def sample_design(self, rng, n):
        """X = Z Sigma^{1/2}, Z with iid N(0,1) entries."""
        Z = rng.standard_normal((n, self.p))
        if self.rho is None:
            return Z * np.sqrt(self.diag)
        rho, p = self.rho, self.p
        c = (np.sqrt(1 - rho + p * rho) - np.sqrt(1 - rho)) / p
        return np.sqrt(1 - rho) * Z + c * Z.sum(axis=1, keepdims=True)

    def dense(self):
        if self.rho is None:
            return np.diag(self.diag)
        return (1 - self.rho) * np.eye(self.p) + self.rho * np.ones((self.p, self.p))

    def risk(self, e):
        """e^T Sigma e using the structure of Sigma."""
        if self.rho is None:
            return float(self.diag @ (e * e))
        return float((1 - self.rho) * (e @ e) + self.rho * e.sum() ** 2)


def draw_replicate(args, cov, rep):
    """Design, signal and all noise for one replicate (shared by every cell: common random numbers).

    noise[0] = eps_0; noise[2t-1] = eps_t (real), noise[2t] = tilde eps_t (synthetic), t = 1..T.
    """
    rng = np.random.default_rng(args.seed + rep)
    X = cov.sample_design(rng, args.n)
    g = rng.standard_normal(args.p)
    beta = args.r * g / np.linalg.norm(g)
    noise = args.noise_sd * rng.standard_normal((2 * args.iterations + 1, args.n))
    return X, beta, noise


def fresh_covariates_draws(args, cov, rep):
    """Fresh covariates: beta, then per iteration t the design X_t and the real and synthetic noise,
    drawn in that order from default_rng(seed + rep) and shared by every cell (common random numbers).

    Yields (t, X_t, eps_t, tilde eps_t); the first item is (beta, None, None, None).
    """
    rng = np.random.default_rng(args.seed + rep)
    g = rng.standard_normal(args.p)
    yield args.r * g / np.linalg.norm(g), None, None, None
    for t in range(args.iterations + 1):
        X = cov.sample_design(rng, args.n)
        eps = args.noise_sd * rng.standard_normal(args.n)
        eps_syn = args.noise_sd * rng.standard_normal(args.n)
        yield t, X, eps, eps_syn


def cells(args):
    return [(lam, w) for lam in args.lam for w in args.w]


def report(peer, args, wall, risks):
    """risks: dict (lam, w) -> list of final risks over replicates."""
    out = []
    for (lam, w) in cells(args):
        r = np.asarray(risks[(lam, w)])
        se = float(r.std(ddof=1) / np.sqrt(len(r))) if len(r) > 1 else None
        out.append({"lambda": lam, "w": w, "final_risk_mean": float(r.mean()),
                    "final_risk_se": se, "replicates": len(r)})
    print(json.dumps({"peer": peer, "wall_seconds": wall, "cells": out}))
