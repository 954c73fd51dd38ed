r"""Witnesses of the errata about algorithms: dual ascent on the KL constraint, TRPO's line search
and SAC's soft Bellman backup.

The printed and the corrected schemes are run with a few lines of numpy; the truth comes from an
independent solver or pgexact's closed forms, confirmed by a second computation.
"""

from __future__ import annotations

import numpy as np
import scipy.optimize
import scipy.special

from ..exact import evaluate, fisher, natural_gradient, policy_gradient, state_marginals
from ..models.finite_mdp import FiniteMDP
from ..updates import soft_value_iteration
from . import _mini
from ._finite import _LINEAR, _linear_instance, trust_region_coefficients
from ._witness import Witness, identity_witness

__all__: list[str] = []


def _dual_scheme(pi: np.ndarray, A: np.ndarray, eps: float, alpha: float, steps: int,
                 project: bool) -> np.ndarray:
    r"""Primal maximizer of :math:`E_{\pi'}[A] - \lambda(KL(\pi'\|\pi) - \epsilon)` after ``steps`` dual steps from λ = 0.

    For λ > 0 the maximizer is :math:`\pi' \propto \pi e^{A/\lambda}`; for λ = 0 the greedy action;
    for λ < 0 the objective is convex in π', so the maximizer is a vertex: the action maximizing
    :math:`A(a) + |\lambda| \log(1/\pi(a))`.
    """
    lam = 0.0
    for _ in range(steps + 1):
        if lam > 0:
            w = pi * np.exp(A / lam)
            primal = w / w.sum()
        else:
            primal = np.eye(A.size)[np.argmax(A + (-lam) * np.log(1.0 / pi))]
        kl = float(scipy.special.rel_entr(primal, pi).sum())
        lam = lam + alpha * (kl - eps)
        if project:
            lam = max(0.0, lam)
    return primal


def w_dual_projection() -> Witness:
    pi, A, eps, alpha, steps = np.array([0.5, 0.4, 0.1]), np.array([1.0, 0.0, -1.0]), 1.0, 1.0, 5
    printed = _dual_scheme(pi, A, eps, alpha, steps, project=False) @ A
    corrected = _dual_scheme(pi, A, eps, alpha, steps, project=True) @ A
    # the constrained optimum max{E_π'[A] : KL(π'‖π) ≤ ε}: the greedy vertex is feasible
    # (KL = log 2 < ε) and no policy does better than max_a A(a)
    vertex_kl = np.log(1.0 / pi)
    ref = A[vertex_kl <= eps].max()
    n = 400  # grid of the simplex with step 1/400 (it contains the vertices)
    i, j = np.meshgrid(np.arange(n + 1), np.arange(n + 1), indexing="ij")
    keep = i + j <= n
    grid = np.stack([i[keep], j[keep], n - i[keep] - j[keep]], axis=1) / n
    feasible = scipy.special.rel_entr(grid, pi).sum(axis=1) <= eps
    check = (grid[feasible] @ A).max()
    return identity_witness(
        f"E_(a~π')[A(a)] of the primal maximizer after {steps} dual steps (the constrained optimum if the "
        "scheme is right)",
        "one state, π = (0.5, 0.4, 0.1), A = (1, 0, −1), KL(π'‖π) ≤ ε = 1 as printed, λ_0 = 0, α = 1; "
        "without projection λ_5 = −1.53 and the maximizer is the worst action, with KL = 2.30 > ε",
        printed, corrected, ref, check,
        "maximum of A over the feasible vertices; grid search over the simplex (step 1/400, scipy rel_entr)",
        1e-12,
    )


def w_trpo_line_search() -> Witness:
    P, r, mu0, _, pol, theta = _linear_instance()
    mdp = FiniteMDP(P, 0.01 * r, mu0, gamma=0.9)
    g, F, w = policy_gradient(mdp, pol, theta), fisher(mdp, pol, theta), natural_gradient(mdp, pol, theta)
    eps = 0.01
    # printed: the first candidate α = 1 is accepted at once, since ½ ∇JᵀF⁻¹∇J < ε here
    if not 0.5 * g @ np.linalg.solve(F, g) <= eps:
        raise AssertionError("instance must have ½∇JᵀF⁻¹∇J <= ε")  # pragma: no cover
    ref, check = trust_region_coefficients(g, F, w, eps)
    return identity_witness(
        "largest step α of θ' = θ + α F⁻¹∇J the line search can accept (its first candidate); TRPO's "
        "full step solves max ∇Jᵀdθ s.t. ½ dθᵀF dθ ≤ ε",
        _LINEAR.replace("arrays of default_rng(7)", "arrays of default_rng(7) with rewards scaled by 0.01")
        + f", ε = {eps}",
        1.0, np.sqrt(2 * eps / (g @ np.linalg.solve(F, g))), ref, check,
        "SLSQP on the constrained problem; scalar search over the boundary of the ellipsoid",
        1e-7,  # SLSQP (ftol 1e-15) stops at ~3e-9 relative accuracy of the step on this instance
    )


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
