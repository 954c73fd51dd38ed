"""Exact core speed: J + grad J, and the natural gradient, against one numpy.linalg.solve.

Instance: dense random MDP, S = 2000, A = 8, gamma = 0.99, TabularSoftmax with random theta.
Reference (same run): ``numpy.linalg.solve(I - gamma P_pi, r_pi)`` for the same S x S system,
i.e. the cost of computing V alone. Targets: both ratios <= 1.3.
Subject and reference alternate (interleaved); each ratio is the median over ``--repeat`` rounds
of the per-round ratio, so load that varies during the run cancels out. BLAS threads: as the
environment sets them (``OPENBLAS_NUM_THREADS``), the same for subject and reference.
See ``bench_small.py`` for S = 10.

Usage: python benchmarks/bench_exact.py [--states 2000] [--actions 8] [--repeat 7]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import pgexact as pg
from pgexact.mdps import random_mdp

from _timing import interleaved_ratio  # benchmarks/_timing.py (the script's own folder)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--states", type=int, default=2000)
    ap.add_argument("--actions", type=int, default=8)
    ap.add_argument("--repeat", type=int, default=7)
    args = ap.parse_args()
    S, A = args.states, args.actions
    mdp = random_mdp(S, A, gamma=0.99, seed=0)
    policy = pg.TabularSoftmax(S, A)
    theta = np.random.default_rng(1).standard_normal(policy.n_params)
    pi = policy.probs(theta)
    M = np.eye(S) - mdp.gamma * mdp.policy_transition(pi)
    r_pi = mdp.policy_reward(pi)

    def reference() -> None:
        np.linalg.solve(M, r_pi)

    def natural() -> None:
        pg.natural_gradient(mdp, policy, theta)

    # warm up BLAS threads and caches
    reference()
    pg.exact.value_and_gradient(mdp, policy, theta)
    natural()
    r_vg, t_vg, t_ref = interleaved_ratio(
        lambda: pg.exact.value_and_gradient(mdp, policy, theta), reference, args.repeat, clock=time.perf_counter
    )
    r_nat, t_nat, _ = interleaved_ratio(natural, reference, args.repeat, clock=time.perf_counter)
    print(f"instance: dense random MDP S={S} A={A} gamma=0.99, TabularSoftmax; "
          f"median of {args.repeat} interleaved rounds")
    print(f"{'computation':44s} {'seconds':>9s} {'ratio':>7s}")
    print(f"{'numpy.linalg.solve (reference)':44s} {t_ref:9.4f} {1.0:7.2f}")
    print(f"{'J + grad J (exact.value_and_gradient)':44s} {t_vg:9.4f} {r_vg:7.2f}   target <= 1.3")
    print(f"{'natural gradient (exact.natural_gradient)':44s} {t_nat:9.4f} {r_nat:7.2f}   target <= 1.3")

if __name__ == "__main__":
    main()
