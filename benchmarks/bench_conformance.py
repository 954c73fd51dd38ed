"""Conformance: the exact expected update at scale, and a default audit of the reference driver.

1. The exact expected update of one batch (batch 0 and the long-run average) on a 100 x 100
   slippery gridworld's dynamics (S = 10^4, A = 4, sparse P, gamma = 0.99) with rewards
   r[s, a] ~ N(0, 1) (0 at the goal), time limit 1,000, 16 envs x
   2,048 steps, uniform rows, bootstrapped truncations (the renewal computation). Target: within
   10 s CPU. Printed with the CPU time of one ``pgexact.evaluate`` of the same MDP and policy
   (Krylov solve), measured interleaved in the same run (medians), and their ratio.
2. A default audit (``pgexact.conformance.audit("reference")``: 3x3 gridworld, 16 envs x 32 steps,
   200 batches, 32 candidate conventions) with its CPU time, and the predicted power of its exact
   test against the nearest candidate with another truncation treatment and against truncation
   treated as termination.

BLAS threads limited to 1 with threadpoolctl (the machine is shared).

Usage: ``python benchmarks/bench_conformance.py [--side 100] [--time-limit 1000] [--rounds 3]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from pgexact import FiniteMDP, evaluate
from pgexact.conformance import Convention, audit, expected_update
from pgexact.mdps import gridworld
from pgexact.policies import softmax_rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--side", type=int, default=100)
    ap.add_argument("--time-limit", type=int, default=1000)
    ap.add_argument("--n-steps", type=int, default=2048)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--skip-audit", action="store_true")
    args = ap.parse_args()
    grid = gridworld(args.side, args.side, gamma=0.99, slip=0.2, sparse=True)
    S, A = grid.n_states, grid.n_actions
    rng = np.random.default_rng(0)
    r = rng.normal(size=(S, A))
    r[grid.terminal] = 0.0
    mdp = FiniteMDP(grid.P, r, grid.mu0, 0.99)
    pi = softmax_rows(rng.normal(size=(S, A)))
    V = np.asarray(evaluate(mdp, pi).V)
    conv = Convention(gamma=0.99, lam=0.95, time_limit=args.time_limit, n_envs=16, n_steps=args.n_steps)
    ts0, tsn, tev = [], [], []
    for _ in range(args.rounds):
        t = time.process_time()
        e0 = expected_update(mdp, pi, conv, values=V, batch=0)
        ts0.append(time.process_time() - t)
        t = time.process_time()
        en = expected_update(mdp, pi, conv, values=V)
        tsn.append(time.process_time() - t)
        t = time.process_time()
        evaluate(mdp, pi)
        tev.append(time.process_time() - t)
    m0, mn, me = statistics.median(ts0), statistics.median(tsn), statistics.median(tev)
    print(f"expected_update, S={S}, time limit {args.time_limit}, 16 envs x {args.n_steps} steps "
          f"(method {e0.method}), CPU medians over {args.rounds} interleaved rounds:")
    print(f"  batch 0:            {m0:7.3f} s  ({m0 / me:6.1f} x one evaluate)")
    print(f"  long-run average:   {mn:7.3f} s  ({mn / me:6.1f} x one evaluate)")
    print(f"  pgexact.evaluate:   {me:7.3f} s")
    print(f"  target 10 s: {'met' if max(m0, mn) <= 10 else 'NOT met'}; |update|_max = "
          f"{np.abs(e0.update).max():.3g}, state weights sum {e0.state_weights.sum():.6f}")
    if args.skip_audit:
        return
    t = time.process_time()
    r = audit("reference", seed=0)
    ta = time.process_time() - t
    v = r.verdict("uniform/bootstrap/same_step/end=V")
    term = r.verdict("uniform/terminate/same_step/end=V")
    print(f"default audit of the reference driver (200 batches of 16 envs x 32 steps, "
          f"{len(r.verdicts)} candidates): {ta:.1f} s CPU")
    print(f"  correct convention: mean z {v.mean.z:.2f} (threshold {v.mean.threshold:.2f}), consistent {v.consistent}")
    print(f"  'terminate' candidate: mean z {term.mean.z:.2f}, rejected {not term.consistent}")
    print(f"  power of the exact test vs the nearest candidate with another truncation: {v.power:.3f}; "
          f"vs terminate: {v.power_by['uniform/terminate/same_step/end=V']:.3f}; "
          f"minimum detectable single-coordinate shift (power 0.8): {v.mean.min_detectable:.3f} x |update|_max")
    print(f"  consistent: {', '.join(c.label() for c in r.consistent)}")


if __name__ == "__main__":
    with threadpool_limits(1):
        main()
