"""Exact estimator moments by recursion: CPU time at the sizes of the target (H = 200).

Instances (H = 200, gamma = 1, BLAS limited to one thread with threadpoolctl):

* TabularSoftmax on a dense random MDP with S = 64, A = 4 (S*A = 256 parameters);
* TabularSoftmax on a dense random MDP with S = 128, A = 2 (S*A = 256);
* LinearSoftmax with d = 32 features on a dense random MDP with S = 64, A = 4;
* the variance along 4 directions for TabularSoftmax on a sparse 40 x 40 gridworld
  (S = 1600, S*A = 6400 parameters: beyond the full covariance's reach).

For every estimator (reinforce, reward_to_go, constant_baseline, state_baseline, advantage,
gae, n_step with a window of ``--window`` steps, 5 by default) the full covariance is computed (directions for the last instance). Reference measured in
the same run, interleaved: ``pgexact.rollout`` of 2,000 episodes of the same horizon plus the
reward-to-go estimator on them (what a sampled variance estimate of ~3% relative error costs).
Times are CPU seconds (user + sys of this process), median of ``--repeat`` runs. Target: every
full covariance within 10 s.

Geometric stopping (``--part geometric``): the same three dense instances and the sparse grid
with gamma = 0.95 and no horizon (``estimator_moments`` on a discounted model: the moments under
``rollout(..., geometric=True)``, by linear solves); reference: ``pgexact.rollout(...,
geometric=True)`` of 2,000 episodes plus reward-to-go. Target: S*A = 256 within 2 s CPU.

The n-step rows cost about ``window`` times GAE's on a finite horizon (one block of k columns per
window step and time step) and little more than GAE's under geometric stopping (the window has
depth n, only the sum over the future needs a solve).

Usage: python benchmarks/bench_moments.py [--repeat 3] [--horizon 200] [--window 5] [--part all|finite|geometric]
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

import pgexact as pg
from pgexact.estimators import ESTIMATORS, estimator_moments, reward_to_go
from pgexact.mdps import gridworld, random_mdp


def cpu(fn) -> float:  # noqa: ANN001
    start = time.process_time()
    fn()
    return time.process_time() - start


def kwargs_for(name: str, ev, window: int = 5) -> dict:  # noqa: ANN001
    return {"reinforce": {}, "reward_to_go": {}, "constant_baseline": {"b": 1.0},
            "state_baseline": {"b": ev.V}, "advantage": {"A": ev.A}, "gae": {"V": ev.V, "lam": 0.95},
            "n_step": {"V": ev.V, "n": window}}[name]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--horizon", type=int, default=200)
    ap.add_argument("--window", type=int, default=5, help="n of the n_step rows")
    ap.add_argument("--part", choices=("all", "finite", "geometric"), default="all")
    args = ap.parse_args()
    if args.part in ("all", "finite"):
        finite(args)
    if args.part in ("all", "geometric"):
        geometric(args)


def finite(args: argparse.Namespace) -> None:
    run(args, gamma=1.0, horizon=args.horizon,
        title=f"horizon H={args.horizon}, gamma=1")


def geometric(args: argparse.Namespace) -> None:
    run(args, gamma=0.95, horizon=None, title="geometric stopping, gamma=0.95")


def run(args: argparse.Namespace, gamma: float, horizon: int | None, title: str) -> None:
    """Time every estimator's moments on the four instances (finite horizon, or geometric stopping when
    ``horizon`` is None) against a 2,000-episode rollout plus reward-to-go of the same setting."""
    rng = np.random.default_rng(0)
    cases = []
    for S, A in ((64, 4), (128, 2)):
        mdp = random_mdp(S, A, gamma=gamma, horizon=horizon, seed=S)
        cases.append((f"tabular S={S} A={A} (d={S * A})", mdp, pg.TabularSoftmax(S, A), None))
    mdp = random_mdp(64, 4, gamma=gamma, horizon=horizon, seed=7)
    cases.append(("linear S=64 A=4 d=32", mdp, pg.LinearSoftmax(rng.standard_normal((64, 4, 32))), None))
    grid = gridworld(40, 40, gamma=gamma, horizon=horizon, slip=0.2, step_reward=-0.01, sparse=True)
    pol = pg.TabularSoftmax(grid.n_states, 4)
    cases.append((f"tabular sparse grid S={grid.n_states} (d={pol.n_params}), 4 directions", grid, pol,
                  rng.standard_normal((4, pol.n_params))))
    print(f"{title}, one BLAS thread; CPU seconds, median of {args.repeat}")
    print(f"{'instance':58s} {'estimator':18s} {'moments':>8s} {'MC ref':>8s} {'ratio':>6s}")
    with threadpool_limits(1):
        for label, mdp, policy, D in cases:
            theta = 0.3 * rng.standard_normal(policy.n_params)
            pi = policy.probs(theta)
            ev = pg.evaluate(mdp, pi)

            def reference() -> None:
                trajs = pg.rollout(mdp, pi, 2000, geometric=horizon is None, seed=1)
                reward_to_go(trajs, policy, theta)

            for name in ESTIMATORS:
                kw = kwargs_for(name, ev, args.window)
                t_mom, t_ref = [], []
                for _ in range(args.repeat):  # interleaved
                    t_mom.append(cpu(lambda: estimator_moments(mdp, policy, theta, name, directions=D, **kw)))
                    t_ref.append(cpu(reference))
                tm, tr = statistics.median(t_mom), statistics.median(t_ref)
                print(f"{label:58s} {name:18s} {tm:8.3f} {tr:8.3f} {tm / tr:6.2f}")


if __name__ == "__main__":
    main()
