"""Exact J and grad J on a sparse 1000 x 1000 slippery gridworld (S = 1e6, A = 4, gamma = 0.99).

Target (issue 7): exact J and grad J of a random TabularSoftmax policy to a relative residual of
1e-8 in <= 20 s and <= 3 GB peak memory on a 2-core machine. The time is printed against one
BiCGSTAB solve of the same system (I - gamma P_pi) V = r_pi, measured in the same run.

J and grad J come from one :func:`pgexact.evaluate` (two Krylov solves: V and the occupancy),
then the policy gradient theorem's weights contracted with the tabular score, exactly as
:func:`pgexact.policy_gradient` does. The achieved residuals are recomputed here from an
independently assembled I - gamma P_pi.

Usage: ``python benchmarks/bench_sparse.py [--side 1000] [--tol 1e-8]``

Note: the Krylov loop is dominated by memory-bound vector operations; on a machine whose cores
are busy, a multi-threaded BLAS can make these much slower (set OPENBLAS_NUM_THREADS=1 then).
"""

from __future__ import annotations

import argparse
import resource
import time

import numpy as np
import scipy.sparse
import scipy.sparse.linalg

from pgexact import FiniteMDP, TabularSoftmax, evaluate
from pgexact.exact.gradients import gradient_weights
from pgexact.mdps import gridworld


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--side", type=int, default=1000)
    ap.add_argument("--tol", type=float, default=1e-8)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    side, tol, gamma = args.side, args.tol, 0.99

    t0 = time.perf_counter()
    # goal 20 cells right and down of the centre; every non-goal step costs 0.01; episodes start
    # uniformly anywhere on the grid (so the occupancy covers the whole grid)
    c = side // 2
    goal = (min(c + 20, side - 1), min(c + 20, side - 1))
    grid = gridworld(side, side, gamma=gamma, slip=0.1, sparse=True, goal=goal, step_reward=-0.01)
    mdp = FiniteMDP(grid.P, grid.r, np.full(side * side, 1.0 / (side * side)), gamma)
    del grid
    t_build = time.perf_counter() - t0
    S, A = mdp.n_states, mdp.n_actions
    policy = TabularSoftmax(S, A)
    theta = np.random.default_rng(args.seed).standard_normal(policy.n_params)
    print(f"sparse gridworld {side}x{side}: S={S}, A={A}, gamma={gamma}, nnz(P)={mdp.P.nnz}, "
          f"built and validated in {t_build:.2f} s")

    # --- exact J and grad J (the library)
    t0 = time.perf_counter()
    pi = policy.probs(theta)
    ev = evaluate(mdp, pi, tol=tol)
    grad = policy.score_contract(theta, gradient_weights(mdp, pi, ev))
    t_exact = time.perf_counter() - t0

    # --- reference: one BiCGSTAB solve of the same system, assembled independently
    rows = np.repeat(np.arange(S), A)
    P_pi = scipy.sparse.csr_array(
        scipy.sparse.diags_array(pi.reshape(-1)) @ mdp.P, copy=False
    )  # rows s*A + a scaled by pi(a|s)
    P_pi = scipy.sparse.csr_array((np.ones(S * A), (rows, np.arange(S * A))), shape=(S, S * A)) @ P_pi
    M = (scipy.sparse.eye_array(S, format="csr") - gamma * P_pi).tocsr()
    r_pi = np.einsum("sa,sa->s", pi, mdp.r)
    t0 = time.perf_counter()
    V_ref, info = scipy.sparse.linalg.bicgstab(M, r_pi, rtol=tol, atol=0.0, maxiter=100_000)
    t_ref = time.perf_counter() - t0
    rho = ev.d / (1 - gamma)
    res_V = np.linalg.norm(r_pi - M @ ev.V) / np.linalg.norm(r_pi)
    res_rho = np.linalg.norm(mdp.mu0 - M.T @ rho) / np.linalg.norm(mdp.mu0)
    peak = peak_rss_mb()

    print(f"exact J and grad J (evaluate + policy gradient theorem): {t_exact:.2f} s")
    print(f"one BiCGSTAB solve of (I - gamma P_pi) V = r_pi (reference, info={info}): {t_ref:.2f} s")
    print(f"ratio exact / one solve: {t_exact / t_ref:.2f}x")
    print(f"J = {ev.J:.12g}; |J - mu0 . V_ref| = {abs(ev.J - mdp.mu0 @ V_ref):.3g}; "
          f"||grad J||_2 = {np.linalg.norm(grad):.6g}")
    print(f"achieved relative residuals: reported {ev.residual:.3g}; recomputed V {res_V:.3g}, "
          f"occupancy {res_rho:.3g} (target {tol:g})")
    print(f"peak RSS: {peak:.0f} MB (target <= 3072 MB); exact time target <= 20 s: "
          f"{'met' if t_exact <= 20 and peak <= 3072 else 'NOT met'}")


if __name__ == "__main__":
    main()
