"""Exact J and grad J on a 3163 x 3163 slippery gridworld (S ~ 1e7, A = 4, gamma = 0.99).

Target: within 200 s and 16 GB peak RSS on a 2-core machine. Rewards r[s, a] ~ N(0, 1), mu0
proportional to uniform random weights and theta ~ N(0, 2^2) are drawn from ``--seed``; J and
grad J come from one :func:`pgexact.value_and_gradient` to the relative residual ``--tol``.
Reports the wall and CPU time (user + sys) of the call, the time to build the model, and the peak
RSS of the process. Needs about 8 GB of free memory: check ``free -g`` first.

Usage: ``python benchmarks/bench_10m.py [--side 3163] [--tol 1e-8] [--seed 0]``
"""

from __future__ import annotations

import argparse
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_sparse import build, cpu_seconds, peak_rss_mb  # noqa: E402

from pgexact import value_and_gradient  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=3163)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()

    t0 = time.perf_counter()
    mdp, policy, theta = build(args.side, 0.99, args.seed)
    t_build = time.perf_counter() - t0
    print(f"slippery gridworld {args.side}x{args.side}: S={mdp.n_states}, A=4, gamma=0.99, "
          f"nnz(P)={mdp.P.nnz}; built in {t_build:.1f} s, RSS so far {peak_rss_mb():.0f} MB",
          flush=True)
    c0, t0 = cpu_seconds(), time.perf_counter()
    J, grad = value_and_gradient(mdp, policy, theta, tol=args.tol)
    wall, cpu = time.perf_counter() - t0, cpu_seconds() - c0
    peak = peak_rss_mb()
    print(f"J = {J:.12g}, ||grad J||_2 = {np.linalg.norm(grad):.6g}")
    print(f"J + grad J: {wall:.1f} s wall, {cpu:.1f} s CPU (target <= 200 s: "
          f"{'met' if wall <= 200 else 'NOT met'}); peak RSS {peak / 1024:.2f} GB "
          f"(target <= 16 GB: {'met' if peak <= 16 * 1024 else 'NOT met'})")


if __name__ == "__main__":
    main()
