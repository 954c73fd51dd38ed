"""Benchmark: LQR rollout throughput against a naive numpy loop, and the cost of validating the batch.

Subject: ``pgexact.lqr.rollout`` (seed blocks, row-identical rounding, chunked; every episode
bit-identical whatever the chunking). Reference: the loop a user would write, one generator drawn
step by step, ``x @ (A - B K).T`` products (BLAS), the same arrays returned. Also timed: building
an :class:`~pgexact.lqr.LQRTrajectories` from the rollout's arrays (its shape and finiteness
checks), as a fraction of the rollout.

The runs are interleaved (reference, subject, reference, ...) and timed in CPU time
(``time.process_time``); the ratio of the medians is reported. BLAS runs on one thread.

Run: ``python benchmarks/bench_lqr_rollout.py [repeats]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
from threadpoolctl import threadpool_limits

from pgexact.lqr import LQR, LinearGaussian, LQRTrajectories, rollout


def main(N: int = 8192, T: int = 100, n: int = 4, m: int = 2, repeats: int = 15) -> None:
    rng = np.random.default_rng(0)
    A = 0.9 * np.eye(n) + 0.05 * rng.standard_normal((n, n))
    B = rng.standard_normal((n, m))
    lqr = LQR(A, B, np.eye(n), np.eye(m), gamma=0.99, Sigma0=np.eye(n), noise_cov=0.01 * np.eye(n))
    pol = LinearGaussian(n, m, noise_cov=0.1 * np.eye(m))
    K = 0.01 * rng.standard_normal((m, n))
    theta = pol.params(K)
    L0, Lu, C = np.eye(n), np.sqrt(0.1) * np.eye(m), 0.1 * np.eye(n)

    def naive() -> None:
        g = np.random.default_rng(1)
        x = g.standard_normal((N, n)) @ L0.T
        S, U, c = np.empty((N, T, n)), np.empty((N, T, m)), np.empty((N, T))
        for t in range(T):
            u = -x @ K.T + g.standard_normal((N, m)) @ Lu.T
            S[:, t], U[:, t] = x, u
            c[:, t] = np.einsum("ni,ni->n", x @ lqr.Q, x) + np.einsum("ni,ni->n", u @ lqr.R, u)
            x = x @ A.T + u @ B.T + g.standard_normal((N, n)) @ C.T

    def ours() -> LQRTrajectories:
        return rollout(lqr, pol, theta, N, seed=1, horizon=T)

    t_ref, t_ours, t_rec = [], [], []
    with threadpool_limits(1):
        for _ in range(repeats):
            t0 = time.process_time()
            naive()
            t_ref.append(time.process_time() - t0)
            t0 = time.process_time()
            ro = ours()
            t_ours.append(time.process_time() - t0)
            t0 = time.process_time()
            LQRTrajectories(states=ro.states, actions=ro.actions, costs=ro.costs,
                            final_states=ro.final_states, gamma=ro.gamma)
            t_rec.append(time.process_time() - t0)
    r = np.median(t_ref) / np.median(t_ours)
    print(f"N={N} T={T} n={n} m={m}: naive loop {np.median(t_ref) * 1e3:.1f} ms, pgexact.lqr.rollout "
          f"{np.median(t_ours) * 1e3:.1f} ms CPU (throughput {r:.2f}x the naive loop); building and "
          f"validating LQRTrajectories {np.median(t_rec) * 1e3:.2f} ms "
          f"({100 * np.median(t_rec) / np.median(t_ours):.1f}% of the rollout)")


if __name__ == "__main__":
    main(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 15)
