r"""Optimality of the variance-minimizing baselines (exact variances, no sampling).

Instances: random finite-horizon MDPs with 2..3 states, 2 actions, horizon 3..5, γ in {0.9, 1},
tabular or linear softmax with parameters N(0, 1), and one parameter coordinate k. The optimal
baseline comes from :func:`pgexact.estimators.optimal_baselines` (closed form: the minimizer of
a quadratic whose coefficients are cross moments); every variance compared with it comes from
:func:`pgexact.estimators.estimator_moments` run with that baseline (the full second-moment
recursion, where the baseline enters as a weight). The competitors are the optimum perturbed
in a random direction (relative size 1e-4; for the constant: ±1e-4 and the mean return J), the value :math:`V_t(s)` and the
per-state formula of Greensmith et al. (2004, Theorem 13). Residuals: positive part of
lhs − rhs relative to max(rhs, 1e-6); the recursion's rounding is ~1e-15 of the second moment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..estimators import estimator_moments
from ..estimators.baselines import OptimalBaselines, optimal_baselines
from ..exact import evaluate
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from .registry import inequality

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references below serve
#: those theorems and the tests.
__all__: list[str] = []

TOL = 1e-9
REASON = (
    "two exact computations of a variance (a closed-form minimum and the moment recursion with "
    "that baseline), agreeing to ~1e-15 of the second moment; 1e-9 relative to max(Var, 1e-6) "
    "leaves a margin for second moments up to ~1e5 times the variance"
)
FLOOR = 1e-6


@dataclass(frozen=True)
class BaselineProblem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray
    k: int
    opt: OptimalBaselines
    V: np.ndarray
    J: float
    noise: np.ndarray  # (1, H, S) perturbation direction


def _problem(rng: np.random.Generator) -> BaselineProblem:
    S, H = int(rng.integers(2, 4)), int(rng.integers(3, 6))
    mdp = random_mdp(S, 2, gamma=float(rng.choice([0.9, 1.0])), horizon=H, seed=rng)
    policy: SoftmaxPolicy
    if rng.integers(2):
        policy = LinearSoftmax(rng.standard_normal((S, 2, 2)))
    else:
        policy = TabularSoftmax(S, 2)
    theta = rng.standard_normal(policy.n_params)
    ev = evaluate(mdp, policy.probs(theta))
    opt = optimal_baselines(mdp, policy, theta)
    k = int(rng.integers(policy.n_params))
    return BaselineProblem(mdp, policy, theta, k, opt, np.array(ev.V), float(ev.J), rng.standard_normal((1, H, S)))


def _var_state(pr: BaselineProblem, b: np.ndarray) -> float:
    return float(estimator_moments(pr.mdp, pr.policy, pr.theta, "state_baseline", b=b).covariance[pr.k, pr.k])


def _var_const(pr: BaselineProblem, b: float) -> float:
    return float(estimator_moments(pr.mdp, pr.policy, pr.theta, "constant_baseline", b=float(b)).covariance[pr.k, pr.k])


def _state_competitors(pr: BaselineProblem) -> float:
    b = pr.opt.state[pr.k]
    scale = 1e-4 * max(1.0, float(np.abs(b).max()))
    family = [b + scale * xi for xi in pr.noise] + [pr.V, pr.opt.per_state[pr.k]]
    return min(_var_state(pr, c) for c in family)


def _const_competitors(pr: BaselineProblem) -> float:
    b = float(pr.opt.constant[pr.k])
    scale = 1e-2 * max(1.0, abs(b))
    return min(_var_const(pr, c) for c in (b - scale, b + scale, pr.J))


inequality(
    id="baselines.optimal_state_baseline",
    statement=r"b^*_{k,t}(s) = \frac{d^t E[1\{s_t=s\}\psi_{t,k}\hat g_k(0)]}{d^{2t}p_t(s)E_\pi[\psi_k^2]} "
    r"\;\Rightarrow\; \mathrm{Var}\,\hat g_k(b^*) \le \mathrm{Var}\,\hat g_k(b) \ \ \forall b_t(s)",
    source="Greensmith, Bartlett & Baxter 2004, JMLR 5, sec. 5-6 (optimal baselines); Peters & Schaal 2008, "
    "Neural Networks 21, sec. 3 (per-coordinate optimal baseline); trajectory-level optimum derived in "
    "pgexact.estimators.baselines",
    reference="the exact variance recursion (estimator_moments) run with each competing baseline",
    instance=_problem,
    lhs=lambda pr: _var_state(pr, pr.opt.state[pr.k]),
    rhs=_state_competitors,
    tolerance=TOL,
    tolerance_reason=REASON,
    floor=FLOOR,
    mutants={
        "V_t(s) claimed optimal": (lambda pr: _var_state(pr, pr.V), None),
        "per-state formula E[psi^2 Q]/E[psi^2] claimed optimal for the trajectory": (
            lambda pr: _var_state(pr, pr.opt.per_state[pr.k]), None),
    },
)

inequality(
    id="baselines.optimal_constant_baseline",
    statement=r"b^*_k = \frac{E[\hat g_k(0) z_k]}{E[z_k^2]},\ z = \sum_t d^t\psi_t "
    r"\;\Rightarrow\; \mathrm{Var}\,\hat g_k(b^*_k) \le \mathrm{Var}\,\hat g_k(b) \ \ \forall b \in \mathbb{R}",
    source="Greensmith, Bartlett & Baxter 2004, JMLR 5, Theorem 8 (optimal constant baseline); Peters & Schaal "
    "2008, eq. 11 (per coordinate)",
    reference="the exact variance recursion (estimator_moments) run with each competing constant",
    instance=_problem,
    lhs=lambda pr: _var_const(pr, pr.opt.constant[pr.k]),
    rhs=_const_competitors,
    tolerance=TOL,
    tolerance_reason=REASON,
    floor=FLOOR,
    mutants={
        "mean return J claimed optimal": (lambda pr: _var_const(pr, pr.J), None),
        "sign of the cross moment flipped": (lambda pr: _var_const(pr, -pr.opt.constant[pr.k]), None),
    },
)
