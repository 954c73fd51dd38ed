"""Geometric stopping against fixed-horizon sampling: throughput per real transition and memory.

    python benchmarks/bench_geometric.py [--episodes 20000] [--repeats 7]

On one random dense MDP (S = 16, A = 4) the script times, interleaved round after round,

* ``rollout(mdp, pi, N, horizon=H)`` with H = 100 (fixed horizon: N x H transitions), and
* ``rollout(mdp, pi, N, geometric=True)`` at gamma = 0.99 and 0.999 (N / (1 - gamma)
  transitions on average, episodes of random length),

and reports the median transitions per CPU second (user + sys, which other processes do not
inflate) of each and the ratio geometric / fixed (target
>= 0.5). Memory: bytes held by the returned batch per transition, and the peak traced by
``tracemalloc`` (numpy reports its buffers to it) for geometric sampling at gamma = 0.99.
BLAS threads are limited to 1 with threadpoolctl (the kernel is not BLAS-bound; this keeps
other processes' load from changing the comparison). Nothing is asserted.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import tracemalloc

import numpy as np
from threadpoolctl import threadpool_limits

from pgexact import rollout
from pgexact.mdps import random_mdp


def batch_bytes(tr) -> int:
    return tr.flat_states.nbytes + tr.flat_actions.nbytes + tr.flat_rewards.nbytes


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--episodes", type=int, default=20_000)
    ap.add_argument("--horizon", type=int, default=100)
    ap.add_argument("--repeats", type=int, default=7)
    args = ap.parse_args()
    S, A, N = 16, 4, args.episodes
    pi = np.random.default_rng(0).dirichlet(np.ones(A), size=S)
    cases = {
        f"fixed horizon H={args.horizon}": (random_mdp(S, A, gamma=0.99, seed=0), dict(horizon=args.horizon)),
        "geometric gamma=0.99": (random_mdp(S, A, gamma=0.99, seed=0), dict(geometric=True)),
        "geometric gamma=0.999": (random_mdp(S, A, gamma=0.999, seed=0), dict(geometric=True)),
    }
    print(f"# bench_geometric: {platform.processor() or platform.machine()}, {os.cpu_count()} cpus, "
          f"numpy {np.__version__}, N = {N} episodes, S = {S}, A = {A}")
    rates: dict[str, list[float]] = {k: [] for k in cases}
    with threadpool_limits(1):
        for name, (mdp, kw) in cases.items():
            # warm-up at full size: the first touch of memory the process never used costs up to
            # 10x more on a virtual machine (the host backs the pages), and would be charged to
            # whichever case grows the process first
            rollout(mdp, pi, N, seed=0, **kw)
        for rep in range(args.repeats):
            for name, (mdp, kw) in cases.items():
                t0 = time.process_time()
                tr = rollout(mdp, pi, N, seed=rep, **kw)
                dt = time.process_time() - t0
                rates[name].append(int(tr.lengths.sum()) / dt)
        mdp, kw = cases["geometric gamma=0.99"]
        tracemalloc.start()
        tr = rollout(mdp, pi, N, seed=123, **kw)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
    med = {k: float(np.median(v)) for k, v in rates.items()}
    fixed = med[f"fixed horizon H={args.horizon}"]
    print()
    print("| sampler | real transitions / s (median) | / fixed horizon | target |")
    print("|---|---:|---:|---:|")
    for k, v in med.items():
        target = "" if k.startswith("fixed") else ">= 0.5"
        print(f"| {k} | {v:,.0f} | {v / fixed:.2f} | {target} |")
    M = int(tr.lengths.sum())
    print()
    print(f"geometric gamma=0.99: {M:,} transitions, longest episode {tr.n_steps} steps; batch "
          f"{batch_bytes(tr) / M:.1f} bytes per transition ({batch_bytes(tr) / 2**20:.1f} MB); peak traced "
          f"{peak / 2**20:.1f} MB; a padded (N, longest) layout would hold {N * tr.n_steps:,} entries "
          f"({N * (tr.n_steps * 16 + 4) / 2**20:.0f} MB)")


if __name__ == "__main__":
    main()
