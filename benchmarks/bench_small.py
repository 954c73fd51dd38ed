"""Small problems: the exact core against a minimal numpy implementation of the same numbers.

Instance: dense random MDP, S = 10, A = 4, gamma = 0.9, TabularSoftmax with a random theta.

References written here, in the same run (no validation, no generality):

* J + grad J: max-subtracted softmax, one einsum for P_pi, one ``numpy.linalg.solve`` for V,
  one for the unnormalized occupancy rho (transposed system), and the tabular gradient
  ``rho(s) pi(a|s) A(s, a)``;
* natural gradient: the same softmax and two solves, then ``(A - mean_a A) / (1 - gamma)`` where
  ``d > 0`` (the minimum-norm tabular NPG direction).

Subjects: ``pgexact.exact.value_and_gradient`` and ``pgexact.natural_gradient`` (targets: within
1.5x of their reference), and ``pgexact.updates.trpo_step`` / ``ppo_update`` with the exact
source, reported as multiples of one ``value_and_gradient`` (targets 15x and 30x).

Timing: CPU time (user + sys, ``time.process_time``). Subject and reference alternate in
rounds (interleaved), each round times a batch of calls, and the ratio is the median over rounds
of the per-round ratio; BLAS is limited to one thread with threadpoolctl (the arithmetic is far
too small for threads to help). The numbers are checked to agree before timing.

Usage: python benchmarks/bench_small.py [--states 10] [--actions 4] [--rounds 31]
"""

from __future__ import annotations

import argparse

import numpy as np
from threadpoolctl import threadpool_limits

import pgexact as pg
from pgexact.mdps import random_mdp
from pgexact.updates import ExactSource, ppo_update, trpo_step

from _timing import interleaved_ratio  # benchmarks/_timing.py (the script's own folder)


def reference_value_and_gradient(P, r, mu0, gamma, theta):
    S, A = r.shape
    z = theta.reshape(S, A)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    pi = e / e.sum(axis=1, keepdims=True)
    M = np.eye(S) - gamma * np.einsum("sa,sat->st", pi, P)
    V = np.linalg.solve(M, (pi * r).sum(axis=1))
    rho = np.linalg.solve(M.T, mu0)
    Adv = r + gamma * (P @ V) - V[:, None]
    return mu0 @ V, (rho[:, None] * pi * Adv).reshape(-1)


def reference_natural_gradient(P, r, mu0, gamma, theta):
    S, A = r.shape
    z = theta.reshape(S, A)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    pi = e / e.sum(axis=1, keepdims=True)
    M = np.eye(S) - gamma * np.einsum("sa,sat->st", pi, P)
    V = np.linalg.solve(M, (pi * r).sum(axis=1))
    rho = np.linalg.solve(M.T, mu0)
    u = (r + gamma * (P @ V) - V[:, None]) / (1.0 - gamma)
    return np.where(rho[:, None] > 0, u - u.mean(axis=1, keepdims=True), 0.0).reshape(-1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--states", type=int, default=10)
    ap.add_argument("--actions", type=int, default=4)
    ap.add_argument("--rounds", type=int, default=31)
    args = ap.parse_args()
    S, A = args.states, args.actions
    mdp = random_mdp(S, A, gamma=0.9, seed=0)
    policy = pg.TabularSoftmax(S, A)
    theta = np.random.default_rng(1).standard_normal(policy.n_params)
    P, r, mu0, gamma = np.array(mdp.P), np.array(mdp.r), np.array(mdp.mu0), mdp.gamma
    source = ExactSource(mdp, policy)

    def vg():
        pg.exact.value_and_gradient(mdp, policy, theta)

    def vg_ref():
        reference_value_and_gradient(P, r, mu0, gamma, theta)

    def ng():
        pg.natural_gradient(mdp, policy, theta)

    def ng_ref():
        reference_natural_gradient(P, r, mu0, gamma, theta)

    def trpo():
        trpo_step(source, theta, 0.01)

    def ppo():
        ppo_update(source, theta, 0.2, lr=0.5)

    with threadpool_limits(limits=1):
        J, g = pg.exact.value_and_gradient(mdp, policy, theta)
        J_ref, g_ref = reference_value_and_gradient(P, r, mu0, gamma, theta)
        assert abs(J - J_ref) <= 1e-12 * abs(J_ref) and np.allclose(g, g_ref, rtol=1e-10, atol=1e-12)
        assert np.allclose(pg.natural_gradient(mdp, policy, theta),
                           reference_natural_gradient(P, r, mu0, gamma, theta), rtol=1e-10, atol=1e-12)
        for fn in (vg, vg_ref, ng, ng_ref, trpo, ppo):  # warm up
            fn()
        n_fast = 200
        rows = []
        ratio, t_s, t_r = interleaved_ratio(vg, vg_ref, args.rounds, n_fast)
        rows.append(("J + grad J (exact.value_and_gradient)", t_s, t_r, ratio, "numpy reference", "<= 1.5"))
        ratio, t_s, t_r = interleaved_ratio(ng, ng_ref, args.rounds, n_fast)
        rows.append(("natural gradient (natural_gradient)", t_s, t_r, ratio, "numpy reference", "<= 1.5"))
        ratio, t_s, t_r = interleaved_ratio(trpo, vg, max(5, args.rounds // 3), 5, n_fast)
        rows.append(("trpo_step (ExactSource, delta=0.01)", t_s, t_r, ratio, "value_and_gradient", "<= 15"))
        ratio, t_s, t_r = interleaved_ratio(ppo, vg, max(5, args.rounds // 3), 5, n_fast)
        rows.append(("ppo_update (ExactSource, 10 epochs)", t_s, t_r, ratio, "value_and_gradient", "<= 30"))
    print(f"instance: dense random MDP S={S} A={A} gamma=0.9, TabularSoftmax; BLAS 1 thread;")
    print(f"median over interleaved rounds of the per-round ratio ({args.rounds} rounds)")
    print(f"{'subject':40s} {'cpu us':>9s} {'ref us':>9s} {'ratio':>7s}  {'against':20s} target")
    for name, t_s, t_r, ratio, against, target in rows:
        print(f"{name:40s} {t_s * 1e6:9.1f} {t_r * 1e6:9.1f} {ratio:7.2f}  {against:20s} {target}")


if __name__ == "__main__":
    main()
