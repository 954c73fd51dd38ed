r"""Witnesses of the errata about algorithms: SAC's soft Bellman backup, its temperature and its
optimal policy.

The printed and the corrected schemes are run with a few lines of numpy; the truth comes from an
independent solver or pgexact's closed forms, confirmed by a second computation.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.special

from ..exact import evaluate, state_marginals
from ..models.finite_mdp import FiniteMDP
from ..updates import soft_value_iteration
from . import _mini
from ._witness import Witness, identity_witness

__all__: list[str] = []


def w_sac_backup_gamma() -> Witness:
    gamma, n_backups = 0.9, 300
    P, r, mu0 = _mini.random_arrays(3, 2, 17)
    pi = _mini.softmax_rows(np.random.default_rng(18).standard_normal((3, 2)))
    log_pi = np.log(pi)

    def backups(discount: float) -> float:
        Q = np.zeros_like(r)
        for _ in range(n_backups):
            V = (pi * (Q - log_pi)).sum(axis=1)
            Q = r + discount * P @ V
        return float(Q[0, 0])

    # soft V^π is the ordinary value of the reward r − log π; soft Q^π = r + γ P V
    soft = FiniteMDP(P, r - log_pi, mu0, gamma=gamma)
    ref = r[0, 0] + gamma * P[0, 0] @ evaluate(soft, pi).V
    T = 400  # γ^400 · max|r − log π| / (1 − γ) < 1e-17
    V_sum = np.array([(gamma ** np.arange(T)) @ (state_marginals(FiniteMDP(P, r - log_pi, e, gamma=gamma), pi, T)
                                                 @ (pi * (r - log_pi)).sum(axis=1)) for e in np.eye(3)])
    check = r[0, 0] + gamma * P[0, 0] @ V_sum
    return identity_witness(
        f"Q(s = 0, a = 0) after {n_backups} backups from Q = 0 (the soft Q^π if the backup converges to it)",
        "S = 3, A = 2, arrays of default_rng(17), γ = 0.9, π = softmax of N(0, 1) logits (default_rng(18)), "
        "temperature 1",
        backups(1.0), backups(gamma), ref, check,
        "pgexact.exact.evaluate with reward r − log π; truncated sums over the state marginals", 1e-10,
    )


def _soft_return(P: np.ndarray, r: np.ndarray, mu0: np.ndarray, pi: np.ndarray, gamma: float) -> tuple[float, np.ndarray]:
    """Soft return μ0ᵀV and soft Q of π (temperature 1), by one linear solve."""
    V, _ = _mini.values(P, r - np.log(pi), pi, gamma)
    return float(mu0 @ V), r + gamma * P @ V


def _chain(n: int = 8) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Chain: action 0 earns 0.5 and returns to state 0, action 1 earns 0 and moves right; the last
    state is absorbing with reward 2; start in state 0."""
    P, r = np.zeros((n, 2, n)), np.zeros((n, 2))
    for s in range(n - 1):
        P[s, 0, 0], r[s, 0], P[s, 1, s + 1] = 1.0, 0.5, 1.0
    P[n - 1, :, n - 1], r[n - 1, :] = 1.0, 2.0
    return P, r, np.eye(n)[0]


def w_soft_value_temperature() -> Witness:
    gamma, alpha = 0.9, 0.2
    P, r, mu0 = _mini.random_arrays(4, 2, 61)
    pi = _mini.softmax_rows(np.random.default_rng(62).standard_normal((4, 2)))
    log_pi = np.log(pi)

    def soft_start_value(temperature: float) -> float:
        # the note's recursion V = E_π[Q − temperature · log π], Q = r + γ P V, solved as one linear system
        V, _ = _mini.values(P, r - temperature * log_pi, pi, gamma)
        return float(mu0 @ V)

    # the objective E[Σ_t γ^t (r + α H(π(·|s_t)))] is the ordinary return of the reward r + α H(s)
    H = -(pi * log_pi).sum(axis=1)
    bonus = r + alpha * H[:, None]
    ref = evaluate(FiniteMDP(P, bonus, mu0, gamma=gamma), pi).J
    T = 400  # γ^400 · max|r + αH| / (1 − γ) < 1e-17
    p = state_marginals(FiniteMDP(P, r, mu0, gamma=gamma), pi, T)
    check = float((gamma ** np.arange(T)) @ (p @ ((pi * r).sum(axis=1) + alpha * H)))
    return identity_witness(
        "soft value of the start distribution, Σ_s μ0(s) V(s), of the objective with temperature α",
        f"S = 4, A = 2, arrays of default_rng(61), γ = {gamma}, α = {alpha}, π = softmax of N(0, 1) logits "
        "(default_rng(62))",
        soft_start_value(1.0), soft_start_value(alpha), ref, check,
        "pgexact.exact.evaluate with reward r + αH(π(·|s)); truncated sum Σ_t γ^t E[r_t + αH(s_t)] over the "
        "state marginals", 1e-12,
    )


def w_sac_optimal_policy() -> Witness:
    gamma, n = 0.95, 8
    P, r, mu0 = _chain(n)
    pi0 = np.full((n, 2), 0.5)
    _, Q0 = _soft_return(P, r, mu0, pi0, gamma)
    printed, _ = _soft_return(P, r, mu0, _mini.softmax_rows(Q0), gamma)  # "π* ∝ exp(Q^π)" with π = π0
    pi = pi0
    for _ in range(500):  # soft policy iteration to its fixed point π ∝ exp(Q^π)
        _, Q = _soft_return(P, r, mu0, pi, gamma)
        pi, previous = _mini.softmax_rows(Q), pi
        if np.max(np.abs(pi - previous)) < 1e-15:
            break
    corrected, _ = _soft_return(P, r, mu0, pi, gamma)
    mdp = FiniteMDP(P, r, mu0, gamma=gamma)
    ref = soft_value_iteration(mdp, alpha=1.0, tol=1e-14).J

    # the soft Bellman optimality equation V = log Σ_a exp(r + γPV), solved as a root-finding problem
    root = scipy.optimize.root(lambda V: V - scipy.special.logsumexp(r + gamma * P @ V, axis=1),
                               np.zeros(n), method="hybr", options={"xtol": 1e-14})
    return identity_witness(
        "soft return E[Σ_t γ^t (r_t + H(π(·|s_t)))] of the policy exp(Q^π(s, ·))/Z^π(s) called optimal, "
        "for π uniform",
        "chain of 8 states: action 0 earns 0.5 and returns to state 0, action 1 earns 0 and moves right; "
        "the last state is absorbing with reward 2; s_0 = 0, γ = 0.95, temperature 1",
        printed, corrected, ref, mu0 @ root.x,
        "pgexact soft value iteration (tol 1e-14); the soft Bellman optimality equation solved by a "
        "root finder (MINPACK hybrd)",
        1e-10,
    )
