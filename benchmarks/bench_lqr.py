"""Benchmark: exact LQR cost + gradient at n = 100 states, m = 50 inputs.

Reference: one ``scipy.linalg.solve_discrete_lyapunov`` of the same size (n = 100), measured in
the same run. Cost + gradient needs two Lyapunov (Stein) equations (P_K and Sigma_K) plus the
stability check; pgexact shares one Schur factorization between them. Target ratio <= 3.

Run: ``python benchmarks/bench_lqr.py`` (prints the median times and their ratio).
"""

from __future__ import annotations

import time

import numpy as np
import scipy.linalg

from pgexact.lqr import LQR, cost_and_gradient, optimal_gain


def _median_time(fn, repeats: int = 30) -> float:
    fn()  # warm-up
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return float(np.median(times))


def main(n: int = 100, m: int = 50, gamma: float = 0.95, seed: int = 0) -> float:
    rng = np.random.default_rng(seed)
    A = rng.standard_normal((n, n)) / np.sqrt(n)
    B = rng.standard_normal((n, m)) / np.sqrt(n)
    lqr = LQR(A, B, np.eye(n), np.eye(m), np.eye(n), gamma=gamma, noise_cov=0.01 * np.eye(n))
    K = optimal_gain(lqr) + 0.01 * rng.standard_normal((m, n))
    Su = 0.1 * np.eye(m)
    a = np.sqrt(gamma) * (A - B @ K)
    q = np.eye(n) + 0.5 * np.eye(n)

    t_ref = _median_time(lambda: scipy.linalg.solve_discrete_lyapunov(a, q))
    t_ours = _median_time(lambda: cost_and_gradient(lqr, K, Su))
    ratio = t_ours / t_ref
    print(f"n={n} m={m}: one solve_discrete_lyapunov {t_ref * 1e3:.3f} ms; "
          f"cost_and_gradient {t_ours * 1e3:.3f} ms; ratio {ratio:.2f} (target <= 3)")
    return ratio


if __name__ == "__main__":
    main()
