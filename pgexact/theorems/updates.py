r"""Theorems about policy optimization updates (issue 5): NPG, TRPO, PPO, policy iteration, soft PI.

Instances: random dense discounted MDPs with 2..6 states, 2..4 actions, rewards N(0, 1),
γ in [0, 0.95], tabular softmax parameters N(0, σ²) with σ in {0.5, 1, 3}, clipped to [-5, 5] so
that every action keeps probability above :math:`e^{-10}/A` (the closed forms then hold on the
whole support). Residuals of identities are relative errors with an absolute floor of 1;
residuals of inequalities are the positive part of the violation divided by the scale
:math:`\max(1, \max|r|/(1-\gamma))` of the values involved.
"""

from __future__ import annotations

from dataclasses import dataclass
import numpy as np

from .. import exact
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import TabularSoftmax
from ..updates import (
    ExactSource,
    clipped_objective,
    npg_step,
    policy_iteration,
    soft_evaluate,
    soft_improve,
    soft_value_iteration,
    trpo_step,
    value_iteration,
)
from .registry import Theorem, register, relative_error

ROUNDING_TOL = 1e-9
ROUNDING_REASON = (
    "rounding in O(S^3) linear solves of condition number <= (1+gamma)/(1-gamma) <= 39 "
    "(observed residuals ~1e-14)"
)


@dataclass(frozen=True)
class UpdateProblem:
    """A discounted MDP, a tabular softmax policy, old and new parameters, and a scalar knob."""

    mdp: FiniteMDP
    policy: TabularSoftmax
    theta: np.ndarray
    theta_new: np.ndarray
    knob: float


def _problem(rng: np.random.Generator) -> UpdateProblem:
    S = int(rng.integers(2, 7))
    A = int(rng.integers(2, 5))
    mdp = random_mdp(S, A, gamma=float(rng.uniform(0.0, 0.95)), seed=rng)
    pol = TabularSoftmax(S, A)
    theta = np.clip(float(rng.choice([0.5, 1.0, 3.0])) * rng.standard_normal(pol.n_params), -5, 5)
    theta_new = theta + float(rng.choice([0.01, 0.1, 1.0, 5.0])) * rng.standard_normal(pol.n_params)
    knob = float(rng.choice([1e-4, 1e-2, 0.1, 0.5, 2.0]))
    return UpdateProblem(mdp, pol, theta, theta_new, knob)


def _scale(mdp: FiniteMDP) -> float:
    return max(1.0, float(np.max(np.abs(mdp.r))) / (1.0 - mdp.gamma))


# ----------------------------------------------------------------------------- NPG
def _npg_closed_form(pr: UpdateProblem) -> float:
    eta = pr.knob
    res = npg_step(ExactSource(pr.mdp, pr.policy), pr.theta, lr=eta)
    ev = exact.evaluate(pr.mdp, pr.policy.probs(pr.theta))
    S, A = pr.mdp.n_states, pr.mdp.n_actions
    diff = (res.theta - pr.theta).reshape(S, A) - eta * ev.A / (1.0 - pr.mdp.gamma)
    spread = (diff.max(axis=1) - diff.min(axis=1))[ev.d > 0]
    return float(np.max(spread, initial=0.0)) / max(1.0, eta * float(np.max(np.abs(ev.A))) / (1.0 - pr.mdp.gamma))


register(
    Theorem(
        id="updates.npg_tabular_closed_form",
        statement=r"\theta' = \theta + \eta F^+\nabla J = \theta + \eta\frac{A^{\pi_\theta}}{1-\gamma} + c(s)"
        r"\;\Rightarrow\; \pi'(a|s) \propto \pi(a|s)\exp\left(\frac{\eta A(s,a)}{1-\gamma}\right)",
        source="Kakade 2002, Theorem 1; Agarwal et al. 2021, Lemma 5.1 (tabular softmax NPG)",
        instance=_problem,
        residual=_npg_closed_form,
        tolerance=ROUNDING_TOL,
        tolerance_reason=ROUNDING_REASON + "; per-state spread of theta' - theta - eta A/(1-gamma)",
    )
)


def _npg_quadratic_kl(pr: UpdateProblem) -> float:
    delta = pr.knob
    res = npg_step(ExactSource(pr.mdp, pr.policy), pr.theta, delta)
    if res.stationary:
        return 0.0
    h = res.theta - pr.theta
    F = exact.fisher(pr.mdp, pr.policy, pr.theta)
    return abs(0.5 * float(h @ F @ h) - delta) / delta


register(
    Theorem(
        id="updates.npg_quadratic_kl",
        statement=r"\alpha = \sqrt{2\delta / \nabla J^\top F^+ \nabla J} \;\Rightarrow\; "
        r"\tfrac12 (\alpha F^+\nabla J)^\top F (\alpha F^+\nabla J) = \delta",
        source="Schulman et al. 2015, Appendix C; Achiam 2017 (NPG step size from the quadratic KL model)",
        instance=_problem,
        residual=_npg_quadratic_kl,
        tolerance=ROUNDING_TOL,
        tolerance_reason="relative error of a quadratic form with the dense Fisher matrix: rounding only",
    )
)


# ----------------------------------------------------------------------------- TRPO
def _bound_terms(pr: UpdateProblem) -> tuple[float, float, float, np.ndarray, np.ndarray]:
    pi_old, pi_new = pr.policy.probs(pr.theta), pr.policy.probs(pr.theta_new)
    ev_old, ev_new = exact.evaluate(pr.mdp, pi_old), exact.evaluate(pr.mdp, pi_new)
    L = ev_old.J + exact.surrogate(pr.mdp, pi_old, pi_new)
    C = 4.0 * float(np.max(np.abs(ev_old.A))) * pr.mdp.gamma / (1.0 - pr.mdp.gamma) ** 2
    return ev_new.J, L, C, pi_old, pi_new


def _trpo_bound_tv(pr: UpdateProblem) -> float:
    J_new, L, C, p, q = _bound_terms(pr)
    return max(0.0, L - C * exact.tv_max(p, q) ** 2 - J_new) / _scale(pr.mdp)


def _trpo_bound_kl(pr: UpdateProblem) -> float:
    J_new, L, C, p, q = _bound_terms(pr)
    return max(0.0, L - C * exact.kl_max(p, q) - J_new) / _scale(pr.mdp)


TRPO_STATEMENT = (
    r"J(\tilde\pi) \ge L_\pi(\tilde\pi) - \frac{4\epsilon\gamma}{(1-\gamma)^2}\,{%s}, \quad "
    r"L_\pi(\tilde\pi) = J(\pi) + \sum_s\rho_\pi(s)\sum_a\tilde\pi(a|s)A_\pi(s,a),\ \epsilon = \max_{s,a}|A_\pi(s,a)|"
)
register(
    Theorem(
        id="updates.trpo_lower_bound_tv",
        statement=TRPO_STATEMENT % r"\left(D_{TV}^{max}(\pi,\tilde\pi)\right)^2",
        source="Schulman et al. 2015, Theorem 1 (J is their unnormalized discounted return eta)",
        instance=_problem,
        residual=_trpo_bound_tv,
        tolerance=ROUNDING_TOL,
        tolerance_reason="an inequality: positive part of the violation, relative to max|r|/(1-gamma); rounding only",
    )
)
register(
    Theorem(
        id="updates.trpo_lower_bound_kl",
        statement=TRPO_STATEMENT % r"D_{KL}^{max}(\pi\,\|\,\tilde\pi)",
        source="Schulman et al. 2015, eq. 9 (Theorem 1 with Pinsker: D_TV^2 <= D_KL)",
        instance=_problem,
        residual=_trpo_bound_kl,
        tolerance=ROUNDING_TOL,
        tolerance_reason="an inequality: positive part of the violation, relative to max|r|/(1-gamma); rounding only",
    )
)


def _trpo_constraint(pr: UpdateProblem) -> float:
    delta = pr.knob
    res = trpo_step(ExactSource(pr.mdp, pr.policy), pr.theta, delta)
    if not res.accepted:
        return 0.0 if np.array_equal(res.theta, pr.theta) else float("inf")
    pi_old = pr.policy.probs(pr.theta)
    kl = exact.kl_expected(pi_old, pr.policy.probs(res.theta), exact.occupancy(pr.mdp, pi_old))
    return max(0.0, kl - delta) / delta


register(
    Theorem(
        id="updates.trpo_step_feasible",
        statement=r"\text{accepted TRPO step} \Rightarrow E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s)\|\pi_{new}(\cdot|s)) \le \delta"
        r"\text{; rejected} \Rightarrow \theta_{new} = \theta_{old}",
        source="Schulman et al. 2015, sec. 6 (line search on the exact constraint); pgexact.updates.trpo_step",
        instance=_problem,
        residual=_trpo_constraint,
        tolerance=ROUNDING_TOL,
        tolerance_reason="the line search compares the same KL computed along another route: rounding only",
    )
)


# ----------------------------------------------------------------------------- PPO
def _ppo_clip_le(pr: UpdateProblem) -> float:
    clip = min(0.9, max(0.05, pr.knob))
    batch = ExactSource(pr.mdp, pr.policy).at(pr.theta).batch
    value = clipped_objective(pr.policy, batch, pr.theta_new, clip)[0]
    sur = exact.surrogate(pr.mdp, pr.policy.probs(pr.theta), pr.policy.probs(pr.theta_new))
    return max(0.0, value - sur) / _scale(pr.mdp)


register(
    Theorem(
        id="updates.ppo_clip_below_surrogate",
        statement=r"L^{CLIP}(\theta') = \frac{1}{1-\gamma}E_{d_{old},\pi_{old}}\left[\min(rA, \mathrm{clip}(r,1-\epsilon,1+\epsilon)A)\right]"
        r"\le \frac{1}{1-\gamma}E_{d_{old},\pi_{old}}[rA] = \bar A(\theta')",
        source="Schulman et al. 2017, eq. 7 and the remark after it (a pessimistic lower bound)",
        instance=_problem,
        residual=_ppo_clip_le,
        tolerance=ROUNDING_TOL,
        tolerance_reason="an inequality between two sums computed along different routes: rounding only",
    )
)


def _ppo_clip_grad(pr: UpdateProblem) -> float:
    clip = min(0.9, max(0.05, pr.knob))
    batch = ExactSource(pr.mdp, pr.policy).at(pr.theta).batch
    grad = clipped_objective(pr.policy, batch, pr.theta, clip)[1]
    return relative_error(grad, exact.policy_gradient(pr.mdp, pr.policy, pr.theta))


register(
    Theorem(
        id="updates.ppo_clip_gradient_at_old",
        statement=r"\nabla_{\theta'} L^{CLIP}(\theta')\big|_{\theta'=\theta_{old}} = \nabla J(\theta_{old})",
        source="Schulman et al. 2017, sec. 3 (L^CLIP equals L^CPI to first order around theta_old); Kakade & Langford 2002",
        instance=_problem,
        residual=_ppo_clip_grad,
        tolerance=ROUNDING_TOL,
        tolerance_reason=ROUNDING_REASON,
    )
)


# ----------------------------------------------------------------------------- PI and soft PI
def _soft_improvement(pr: UpdateProblem) -> float:
    alpha = pr.knob if pr.knob >= 0.01 else 0.01
    pi = pr.policy.probs(pr.theta)
    q_old = soft_evaluate(pr.mdp, pi, alpha).Q
    q_new = soft_evaluate(pr.mdp, soft_improve(pr.mdp, pi, alpha), alpha).Q
    return max(0.0, float(np.max(q_old - q_new))) / max(1.0, float(np.max(np.abs(q_old))))


register(
    Theorem(
        id="updates.soft_policy_improvement",
        statement=r"\pi'(\cdot|s) \propto \exp(Q^\pi_{soft}(s,\cdot)/\alpha) \;\Rightarrow\; Q^{\pi'}_{soft} \ge Q^{\pi}_{soft}",
        source="Haarnoja et al. 2018 (SAC), Lemma 2",
        instance=_problem,
        residual=_soft_improvement,
        tolerance=ROUNDING_TOL,
        tolerance_reason="an inequality between two exact soft evaluations: rounding only",
    )
)


def _soft_fixed_point(pr: UpdateProblem) -> float:
    alpha = pr.knob if pr.knob >= 0.01 else 0.01
    opt = soft_value_iteration(pr.mdp, alpha)
    return float(np.max(np.abs(soft_improve(pr.mdp, opt.policy, alpha) - opt.policy)))


register(
    Theorem(
        id="updates.soft_optimal_fixed_point",
        statement=r"Q^* = r + \gamma P\,\alpha\log\textstyle\sum_a e^{Q^*/\alpha},\ \pi^*\propto e^{Q^*/\alpha} \;\Rightarrow\; "
        r"\pi^* \propto \exp(Q^{\pi^*}_{soft}/\alpha)",
        source="Haarnoja et al. 2017, Theorem 1; Haarnoja et al. 2018, Theorem 1",
        instance=_problem,
        residual=_soft_fixed_point,
        tolerance=1e-8,
        tolerance_reason="soft value iteration stops at ||Q - Q*|| <= 1e-12 max(1, ||Q||); softmax is "
        "1/alpha-Lipschitz (alpha >= 0.01) on values of size up to ~100",
    )
)


def _policy_iteration(pr: UpdateProblem) -> float:
    res = policy_iteration(pr.mdp, pr.policy.probs(pr.theta))
    scale = _scale(pr.mdp)
    drops = np.max(res.values[:-1] - res.values[1:], initial=0.0) if res.values.shape[0] > 1 else 0.0
    vi = value_iteration(pr.mdp)
    return max(max(0.0, float(drops)) / scale, relative_error(res.V, vi.V))


register(
    Theorem(
        id="updates.policy_iteration_monotone",
        statement=r"V^{\pi_{k+1}} \ge V^{\pi_k} \text{ elementwise, and } \pi_K \text{ optimal: } V^{\pi_K} = V^*",
        source="Sutton & Barto 2018, sec. 4.2-4.3 (policy improvement theorem); Puterman 1994, Theorem 6.4.2",
        instance=_problem,
        residual=_policy_iteration,
        tolerance=ROUNDING_TOL,
        tolerance_reason="exact evaluations; value iteration stops at ||V - V*|| <= 1e-12 max(1, ||V||)",
    )
)
