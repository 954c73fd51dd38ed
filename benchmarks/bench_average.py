"""Average-reward evaluation: the condition check of the LU path, and the structured path.

Instance: dense random MDP (``random_mdp``), A = 4, uniform policy, for S in 50, 200, 800.

Reference written here, in the same run: the two dense solves ``scipy.linalg.solve`` for d
and h with nothing else (no condition estimate, no unichain check), and Q from them.
Subject: ``pgexact.average.evaluate`` (closed classes, LU with LAPACK's condition estimate,
then Q and A). The ratio is the median over interleaved rounds (CPU time, BLAS limited to one
thread with threadpoolctl).

Then the structured elimination (GTH for d, grounded elimination for h) that runs on nearly
multichain chains, timed alone: two blocks of S/2 states joined by probability 1e-14
(O(S^3) work in S numpy steps).

Usage: python benchmarks/bench_average.py [--rounds 11]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import scipy.linalg
from threadpoolctl import threadpool_limits

from _timing import interleaved_ratio
import pgexact as pg
from pgexact import average
from pgexact.mdps import random_mdp


def reference(mdp, pi):
    S = mdp.n_states
    P_pi = np.einsum("sa,sat->st", pi, mdp.P)
    r_pi = (pi * mdp.r).sum(axis=1)
    d = scipy.linalg.solve((np.eye(S) - P_pi + 1.0).T, np.ones(S))
    rho = d @ r_pi
    h = scipy.linalg.solve(np.eye(S) - P_pi + np.outer(np.ones(S), d), r_pi - rho)
    return rho, mdp.r - rho + mdp.P @ h


def blocks(S, eps=1e-14, seed=0):
    rng = np.random.default_rng(seed)
    half = S // 2
    P = np.zeros((S, 1, S))
    P[:half, 0, :half] = rng.dirichlet(np.ones(half), size=half)
    P[half:, 0, half:] = rng.dirichlet(np.ones(S - half), size=S - half)
    P[0, 0, :] *= 1 - eps
    P[0, 0, half] = eps
    P[half, 0, :] *= 1 - eps
    P[half, 0, 0] = eps
    return pg.FiniteMDP(P, rng.normal(size=(S, 1)), np.full(S, 1 / S), gamma=0.9), np.ones((S, 1))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=11)
    args = ap.parse_args()
    with threadpool_limits(1):
        for S in (50, 200, 800):
            mdp = random_mdp(S, 4, gamma=0.9, seed=S)
            pi = np.full((S, 4), 0.25)
            ev = average.evaluate(mdp, pi)
            rho, Q = reference(mdp, pi)
            assert abs(ev.rho - rho) < 1e-12 and np.allclose(ev.Q, Q, atol=1e-10)
            n = max(1, 2000 // S)
            ratio, ts, tr = interleaved_ratio(lambda: average.evaluate(mdp, pi), lambda: reference(mdp, pi),
                                              args.rounds, n)
            print(f"S={S:5d}: evaluate {ts * 1e3:8.3f} ms, bare solves {tr * 1e3:8.3f} ms, ratio {ratio:.2f}")
        for S in (100, 400, 1000):
            mdp, pi = blocks(S)
            start = time.process_time()
            ev = average.evaluate(mdp, pi)
            print(f"nearly multichain S={S:5d} (structured path): {time.process_time() - start:.3f} s CPU, "
                  f"rho = {ev.rho:.15g}")


if __name__ == "__main__":
    main()
