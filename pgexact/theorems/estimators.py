r"""Exact (sampling-free) theorems about the Monte Carlo estimators.

Expectations are taken by enumerating every trajectory of a small finite-horizon problem
(:func:`pgexact.estimators.enumerate_trajectories`) and compared with the exact core
(:func:`pgexact.policy_gradient`, :func:`pgexact.evaluate`, :func:`pgexact.surrogate`), which
uses none of the estimator code. Pathwise identities (GAE(0), GAE(1)) are checked on random
arrays against sums written out term by term.

Instances: random dense MDPs with 2..3 states, 2..3 actions and horizon 1..4 (at most
:math:`(S A)^H \cdot S \le 3^8 \cdot 3` trajectories), γ in {0.9, 1}, tabular or linear softmax
with parameters N(0, 1). Residuals are relative errors with an absolute floor of 1; sums over
at most ~2e4 trajectories of O(10) terms accumulate ~1e-13 of rounding, so 1e-9 leaves a
margin of 1e4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import exact
from ..estimators import (
    advantage,
    constant_baseline,
    enumerate_trajectories,
    exact_mean,
    gae,
    gae_gradient,
    reinforce,
    reward_to_go,
    state_baseline,
    surrogate_estimate,
    surrogate_gradient_estimate,
)
from ..estimators._base import value_array
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from .registry import Theorem, register, relative_error

TOL = 1e-9
REASON = (
    "rounding in sums over at most ~2e4 enumerated trajectories of O(10) terms each "
    "(observed ~1e-15); 1e-9 leaves four orders of magnitude"
)


@dataclass(frozen=True)
class EnumProblem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray
    lam: float
    noise: np.ndarray  # (S,) or (H, S): a perturbation of V / a baseline


def enum_problem(rng: np.random.Generator) -> EnumProblem:
    """A small finite-horizon instance whose trajectories can all be enumerated."""
    S = int(rng.integers(2, 4))
    A = int(rng.integers(2, 4))
    H = int(rng.integers(1, 5))
    mdp = random_mdp(S, A, gamma=float(rng.choice([0.9, 1.0])), horizon=H, seed=rng, concentration=0.5)
    if rng.integers(2):
        policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, int(rng.integers(1, 4)))))
    else:
        policy = TabularSoftmax(S, A)
    theta = rng.standard_normal(policy.n_params)
    return EnumProblem(mdp, policy, theta, float(rng.uniform(0, 1)), rng.standard_normal((H, S)))


def _enum(pr: EnumProblem) -> tuple[Any, np.ndarray, np.ndarray]:
    pi = pr.policy.probs(pr.theta)
    trajs, prob = enumerate_trajectories(pr.mdp, pi)
    return trajs, prob, pi


def _gae_unbiased(pr: EnumProblem) -> float:
    # E[A_hat_t 1{s_t = s, a_t = a}] = p_t(s) pi(a|s) A_t(s, a) for the exact V, every lambda
    trajs, prob, pi = _enum(pr)
    ev = exact.evaluate(pr.mdp, pi)
    v = value_array(trajs, ev.V)
    adv = gae(trajs.rewards * trajs.mask, v, trajs.discount, pr.lam, terminated=trajs.terminated)
    adv = np.where(trajs.mask, adv, 0.0)
    H, S, A = pr.mdp.horizon, pr.mdp.n_states, pr.mdp.n_actions
    lhs = np.zeros((H, S, A))
    s, a = trajs.states[:, :H], trajs.actions
    for t in range(H):
        np.add.at(lhs[t], (s[:, t], a[:, t]), prob * adv[:, t])
    # steps spent in a terminal state are padding: their advantage is 0 there anyway
    rhs = ev.p[:, :, None] * pi[None] * ev.A
    return relative_error(lhs, rhs)


def _gae_gradient_unbiased(pr: EnumProblem) -> float:
    trajs, prob, pi = _enum(pr)
    ev = exact.evaluate(pr.mdp, pi)
    est = gae_gradient(trajs, pr.policy, pr.theta, ev.V, pr.lam)
    return relative_error(exact_mean(est.samples, prob), exact.policy_gradient(pr.mdp, pr.policy, pr.theta))


def _random_arrays(rng: np.random.Generator) -> dict[str, Any]:
    N, T = int(rng.integers(1, 6)), int(rng.integers(1, 8))
    return {
        "r": rng.standard_normal((N, T)),
        "v": rng.standard_normal((N, T + 1)),
        "gamma": float(rng.uniform(0, 1)),
        "done": rng.random((N, T)) < 0.25,
    }


def _gae1_mc(x: dict[str, Any]) -> float:
    r, v, g, done = x["r"], x["v"], x["gamma"], x["done"]
    N, T = r.shape
    mc = np.empty((N, T))
    for n in range(N):
        for t in range(T):
            total, k = 0.0, t
            while True:  # sum rewards until a terminated step or the end of the arrays
                total += g ** (k - t) * r[n, k]
                if done[n, k]:
                    break
                k += 1
                if k == T:
                    total += g ** (T - t) * v[n, T]  # truncation: bootstrap
                    break
            mc[n, t] = total - v[n, t]
    return relative_error(gae(r, v, g, 1.0, terminated=done), mc)


def _gae0_td(x: dict[str, Any]) -> float:
    r, v, g, done = x["r"], x["v"], x["gamma"], x["done"]
    td = r + g * v[:, 1:] * (1 - done) - v[:, :-1]
    return relative_error(gae(r, v, g, 0.0, terminated=done), td)


def _baseline_causality(pr: EnumProblem) -> float:
    trajs, prob, pi = _enum(pr)
    g = exact.policy_gradient(pr.mdp, pr.policy, pr.theta)
    ev = exact.evaluate(pr.mdp, pi)
    means = [
        exact_mean(reinforce(trajs, pr.policy, pr.theta).samples, prob),
        exact_mean(reward_to_go(trajs, pr.policy, pr.theta).samples, prob),
        exact_mean(constant_baseline(trajs, pr.policy, pr.theta, float(pr.noise[0, 0]) * 5).samples, prob),
        exact_mean(state_baseline(trajs, pr.policy, pr.theta, pr.noise).samples, prob),
        exact_mean(state_baseline(trajs, pr.policy, pr.theta, ev.V).samples, prob),
        exact_mean(advantage(trajs, pr.policy, pr.theta, ev.Q).samples, prob),
    ]
    return max(relative_error(m, g) for m in means)


def _is_problem(rng: np.random.Generator) -> tuple[EnumProblem, np.ndarray]:
    pr = enum_problem(rng)
    return pr, pr.theta + rng.standard_normal(pr.policy.n_params)


def _is_unbiased(inst: tuple[EnumProblem, np.ndarray]) -> float:
    pr, theta_new = inst
    trajs, prob, pi = _enum(pr)
    A_old = exact.evaluate(pr.mdp, pi).A
    s_hat = exact_mean(surrogate_estimate(trajs, pr.policy, pr.theta, theta_new, A_old).samples, prob)
    s_ex = exact.surrogate(pr.mdp, pi, pr.policy.probs(theta_new))
    g_hat = exact_mean(surrogate_gradient_estimate(trajs, pr.policy, pr.theta, theta_new, A_old).samples, prob)
    g_ex = exact.surrogate_gradient(pr.mdp, pr.policy, pr.theta, theta_new)
    return max(relative_error(s_hat, s_ex), relative_error(g_hat, g_ex))


register(
    Theorem(
        id="estimators.gae_unbiased_exact_v",
        statement=r"E[\hat A^{GAE(\gamma,\lambda)}_t \mid s_t, a_t] = A^\pi_t(s_t, a_t)\ \forall \lambda \in [0,1] \text{ when } V = V^\pi",
        source="Schulman et al. 2016 (GAE), sec. 3, Proposition 1 and eq. 16",
        instance=enum_problem,
        residual=_gae_unbiased,
        tolerance=TOL,
        tolerance_reason=REASON,
    )
)
register(
    Theorem(
        id="estimators.gae_gradient_unbiased_exact_v",
        statement=r"E\Big[\sum_t \gamma^t \nabla\log\pi(a_t|s_t) \hat A^{GAE(\gamma,\lambda)}_t\Big] = \nabla J \text{ when } V = V^\pi",
        source="Schulman et al. 2016 (GAE), sec. 3; Sutton et al. 2000, Theorem 1",
        instance=enum_problem,
        residual=_gae_gradient_unbiased,
        tolerance=TOL,
        tolerance_reason=REASON,
    )
)
register(
    Theorem(
        id="estimators.gae1_is_monte_carlo",
        statement=r"\hat A^{GAE(\gamma,1)}_t = \sum_{l} \gamma^l r_{t+l} + \gamma^{k} V_{t+k} 1[\text{truncated}] - V_t \text{ (pathwise)}",
        source="Schulman et al. 2016 (GAE), eq. 18",
        instance=_random_arrays,
        residual=_gae1_mc,
        tolerance=1e-12,
        tolerance_reason="the same O(T) sums in another order: rounding ~T eps relative to the largest term",
    )
)
register(
    Theorem(
        id="estimators.gae0_is_td_error",
        statement=r"\hat A^{GAE(\gamma,0)}_t = \delta_t = r_t + \gamma (1-d_t) V_{t+1} - V_t \text{ (pathwise)}",
        source="Schulman et al. 2016 (GAE), eq. 17",
        instance=_random_arrays,
        residual=_gae0_td,
        tolerance=1e-14,
        tolerance_reason="identical arithmetic up to one rounding per operation",
    )
)
register(
    Theorem(
        id="estimators.baseline_causality_unbiased",
        statement=r"E\big[\textstyle\sum_t \psi_t R\big] = E\big[\sum_t \psi_t \gamma^t (G_t - b(s_t))\big] = E\big[\sum_t \gamma^t \psi_t Q_t\big] = \nabla J \ \forall b",
        source="Williams 1992 (reinforcement baselines); lecture notes, 'PG with baseline' and 'Policy gradient with Q-function'",
        instance=enum_problem,
        residual=_baseline_causality,
        tolerance=TOL,
        tolerance_reason=REASON,
    )
)
register(
    Theorem(
        id="estimators.importance_sampling_unbiased",
        statement=r"E_{\pi_{old}}\Big[\sum_t \gamma^t \tfrac{\pi'(a_t|s_t)}{\pi(a_t|s_t)} A^{\pi}_t\Big] = \bar A(\pi'),\ \text{and the same for } \nabla_{\theta'}",
        source="Schulman et al. 2015 (TRPO), eq. 14; Kakade & Langford 2002, sec. 4",
        instance=_is_problem,
        residual=_is_unbiased,
        tolerance=TOL,
        tolerance_reason=REASON,
    )
)
