"""Benchmark: exact LQR cost + gradient at n = 100 states, m = 50 inputs.

Reference: one ``scipy.linalg.solve_discrete_lyapunov`` of the same size (n = 100, scipy's
bilinear method), measured in the same run. Cost + gradient needs two Lyapunov (Stein)
equations (P_K and Sigma_K) plus the stability check; pgexact shares one Schur factorization
between them. Target: median ratio <= 2.

The two are interleaved (reference, subject, reference, subject, ...) so that a change of machine
load hits both; the ratio of the medians is reported. BLAS runs on one thread (threadpoolctl):
on the 2-core machine more threads only add noise.

Run: ``python benchmarks/bench_lqr.py [repeats]``.
"""

from __future__ import annotations

import sys
import time

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from pgexact.lqr import LQR, cost_and_gradient, optimal_gain


def main(n: int = 100, m: int = 50, gamma: float = 0.95, seed: int = 0, repeats: int = 60) -> float:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    B = rng.standard_normal((n, m)) / np.sqrt(n)
    lqr = LQR(A, B, np.eye(n), np.eye(m), gamma=gamma, Sigma0=np.eye(n), noise_cov=0.01 * np.eye(n))
    K = optimal_gain(lqr) + 0.01 * rng.standard_normal((m, n))
    Su = 0.1 * np.eye(m)
    a = np.sqrt(gamma) * (A - B @ K)
    q = 1.5 * np.eye(n)

    def ref() -> None:
        scipy.linalg.solve_discrete_lyapunov(a, q)

    def ours() -> None:
        cost_and_gradient(lqr, K, Su)

    with threadpool_limits(limits=1):
        ref(), ours()  # warm-up
        t_ref, t_ours = [], []
        for _ in range(repeats):
            for fn, out in ((ref, t_ref), (ours, t_ours)):
                t0 = time.perf_counter()
                fn()
                out.append(time.perf_counter() - t0)
    ratios = np.array(t_ours) / np.array(t_ref)
    r_med = float(np.median(t_ours) / np.median(t_ref))
    print(f"n={n} m={m}: one solve_discrete_lyapunov {np.median(t_ref) * 1e3:.3f} ms; "
          f"cost_and_gradient {np.median(t_ours) * 1e3:.3f} ms; ratio of medians {r_med:.2f} "
          f"(pairwise ratios: median {np.median(ratios):.2f}, quartiles {np.quantile(ratios, 0.25):.2f}"
          f"-{np.quantile(ratios, 0.75):.2f}; target <= 2)")
    return r_med


if __name__ == "__main__":
    main(repeats=int(sys.argv[1]) if len(sys.argv) > 1 else 60)
