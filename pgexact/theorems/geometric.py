r"""Theorems of the exact estimator moments under geometric stopping (:mod:`pgexact.estimators.geometric_moments`).

``rollout(..., geometric=True)`` draws a stopping time :math:`L` with
:math:`\Pr(L = \ell) = (1-\gamma)\gamma^{\ell-1}`, independent of the trajectory, and the
estimators apply no discount. Conditioning on L, the moments are the mixture over ℓ of the
moments of the undiscounted ℓ-step estimator: the reference computes each of those by the
finite-horizon recursions of :mod:`pgexact.estimators.moments` (a different code path from the
linear solves under test) on ``mdp.with_horizon(ℓ, gamma=1)``, for ℓ ≤ 32.

Instances: random dense MDPs with 2..4 states and 2..3 actions, γ uniform in [0.1, 0.3] (the
omitted mass :math:`\gamma^{32} \le 2 \cdot 10^{-17}`), tabular or linear softmax with parameters
N(0, 1), one estimator drawn among reinforce, reward-to-go, constant and state baselines,
advantage (a perturbed A) and GAE (a perturbed V, λ uniform in [0, 1]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..estimators import estimator_moments
from ..exact.evaluation import evaluate
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

L_MAX = 32
NAMES = ("reinforce", "reward_to_go", "constant_baseline", "state_baseline", "advantage", "gae")


@dataclass(frozen=True)
class GeometricProblem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray
    estimator: str
    kwargs: dict[str, Any]


def _problem(rng: np.random.Generator) -> GeometricProblem:
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=float(rng.uniform(0.1, 0.3)), seed=rng)
    policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, 3))) if rng.integers(2) else TabularSoftmax(S, A)
    theta = rng.standard_normal(policy.n_params)
    ev = evaluate(mdp, policy.probs(theta))
    name = NAMES[int(rng.integers(len(NAMES)))]
    kwargs = {
        "reinforce": {}, "reward_to_go": {}, "constant_baseline": {"b": float(rng.standard_normal())},
        "state_baseline": {"b": rng.standard_normal(S)}, "advantage": {"A": ev.A + 0.3 * rng.standard_normal((S, A))},
        "gae": {"V": ev.V + rng.standard_normal(S), "lam": float(rng.uniform())},
    }[name]
    return GeometricProblem(mdp, policy, theta, name, kwargs)


def _moments(gp: GeometricProblem) -> tuple[np.ndarray, np.ndarray]:
    m = estimator_moments(gp.mdp, gp.policy, gp.theta, gp.estimator, **gp.kwargs)
    return m.mean, m.second_moment


def _mixture(gp: GeometricProblem, step_discount: float) -> tuple[np.ndarray, np.ndarray]:
    g = gp.mdp.gamma
    mean, second = 0.0, 0.0
    for ell in range(1, L_MAX + 1):
        w = (1.0 - g) * g ** (ell - 1)
        m = estimator_moments(gp.mdp.with_horizon(ell, gamma=step_discount), gp.policy, gp.theta, gp.estimator,
                              **gp.kwargs)
        mean, second = mean + w * m.mean, second + w * m.second_moment
    return mean, second


def _truncated(gp: GeometricProblem) -> tuple[np.ndarray, np.ndarray]:
    T = max(1, round(1.0 / (1.0 - gp.mdp.gamma)))
    m = estimator_moments(gp.mdp, gp.policy, gp.theta, gp.estimator, horizon=T, **gp.kwargs)
    return m.mean, m.second_moment


identity(
    id="estimators.geometric_stopping_moments",
    statement=r"E[\hat g],\ E[\hat g\hat g^\top] \text{ under } \Pr(L=\ell) = (1-\gamma)\gamma^{\ell-1} "
    r"= \sum_{\ell\ge1} (1-\gamma)\gamma^{\ell-1}\,E[\,\cdot \mid L = \ell\,]",
    source="the killed-chain moment equations (Sobel 1982, J. Appl. Prob. 19, Theorem 2, extended to the "
    "score-weighted sums); the course notes, 'Policy gradient' notes, geometric horizons for unbiased discounted "
    "Monte Carlo",
    reference="the finite-horizon recursions at gamma = 1 for every stopping time l <= 32, mixed with Pr(L = l)",
    instance=_problem,
    computed=_moments,
    expected=lambda gp: _mixture(gp, 1.0),
    tolerance=1e-10,
    tolerance_reason="the omitted mass gamma^32 <= 2e-17 and the rounding of 32 recursions and of three LU "
    "solves of condition <= 1/(1-gamma) <= 1.5 (observed <= 1e-13)",
    mutants={
        "the discount applied again on top of the stop (weights gamma^t under geometric stopping)": lambda gp: _mixture(
            gp, gp.mdp.gamma),
        "the truncated objective at T = 1/(1-gamma) instead of geometric stopping": _truncated,
    },
)
