"""Conformance extras: the surrogate of a torch network, and the exact batch covariance by enumeration.

1. ``update_surrogate`` + ``backward`` for a 2-layer torch MLP (64 hidden units) on a 10 x 10
   gridworld (S = 100, gamma 0.9, time limit 50, 16 envs x 128 steps), against its reference,
   ``expected_update`` on the same numpy probabilities (the exact weights), interleaved, medians:
   the ratio is the adapter's overhead (autograd through the network).
2. ``batch_covariance`` on a 2 x 2 gridworld (slip 0.2, time limit 3) for n_steps = 3..6 at
   batch 0 (6 is refused at the default max_paths): number of enumerated paths and CPU time, against ``expected_update`` (chain) of the same
   batch measured in the same run.

BLAS threads limited to 1 with threadpoolctl (the machine is shared).

Usage: ``python benchmarks/bench_conformance_extra.py [--rounds 5]``
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
from threadpoolctl import threadpool_limits

from pgexact.conformance import Convention, batch_covariance, expected_update, update_surrogate
from pgexact.mdps import gridworld
from pgexact.policies import softmax_rows


def _cpu(fn) -> float:
    t = time.process_time()
    fn()
    return time.process_time() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    args = ap.parse_args()
    import torch

    torch.set_num_threads(1)
    mdp = gridworld(10, 10, gamma=0.9, slip=0.2)
    S, A = mdp.n_states, mdp.n_actions
    conv = Convention(gamma=0.9, lam=0.95, time_limit=50, n_envs=16, n_steps=128)
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(S, 64), torch.nn.Tanh(), torch.nn.Linear(64, A)).double()
    obs = torch.eye(S, dtype=torch.float64)

    def surrogate() -> None:
        net.zero_grad()
        update_surrogate(mdp, torch.softmax(net(obs), dim=1), conv).backward()

    pi = torch.softmax(net(obs), dim=1).detach().numpy()
    ts, tr = [], []
    with threadpool_limits(1):
        for _ in range(args.rounds):  # interleaved
            ts.append(_cpu(surrogate))
            tr.append(_cpu(lambda: expected_update(mdp, pi, conv)))
    s, r = statistics.median(ts), statistics.median(tr)
    print(f"update_surrogate + backward (MLP 100-64-4, S = {S}, 16 x 128, T = 50): {s:.4f} s CPU; "
          f"expected_update on the same probabilities {r:.4f} s; ratio {s / r:.2f}")

    tiny = gridworld(2, 2, gamma=0.9, slip=0.2)
    z = 0.7 * np.sin(1.7 * np.arange(16.0)).reshape(4, 4)
    for n in (3, 4, 5, 6):
        c = Convention(gamma=0.9, lam=0.8, time_limit=3, n_envs=8, n_steps=n)
        try:
            batch_covariance(tiny, z, c)
        except ValueError as exc:
            print(f"batch_covariance 2x2 gridworld, n_steps = {n}: refused: {exc}")
            continue
        tc, te = [], []
        paths = 0
        with threadpool_limits(1):
            for _ in range(max(1, args.rounds // 2)):
                tc.append(_cpu(lambda: batch_covariance(tiny, z, c)))
                te.append(_cpu(lambda: expected_update(tiny, softmax_rows(z), c, batch=0, method="chain")))
            paths = batch_covariance(tiny, z, c).probabilities.size
        a, b = statistics.median(tc), statistics.median(te)
        print(f"batch_covariance 2x2 gridworld, n_steps = {n}: {paths} paths, {a:.3f} s CPU; "
              f"expected_update (chain) {b:.4f} s; ratio {a / max(b, 1e-9):.0f}")


if __name__ == "__main__":
    main()
