r"""Optimality of the variance-minimizing baselines (exact variances, no sampling).

Instances: random finite-horizon MDPs with 2..3 states, 2 actions, horizon 3..5, γ in {0.9, 1},
tabular or linear softmax with parameters N(0, 1), and one parameter coordinate k. The optimal
baseline comes from :func:`pgexact.estimators.optimal_baselines` (closed form: the minimizer of
a quadratic whose coefficients are cross moments, by recursions). Every variance compared with it
is computed by summing over all :math:`(SA)^H \le 7776` trajectories (probabilities from μ0, π and
P; the reference softmax's score), never by :func:`pgexact.estimators.estimator_moments`; the
competitors are the minimizer of that enumerated variance found by a generic weighted least-squares
solve (``numpy.linalg.lstsq``; for the constant, the one-column normal equation), the value
:math:`V_t(s)` and the per-state formula of Greensmith et al. (2004, Theorem 13). Residuals:
positive part of lhs − rhs relative to max(rhs, 1e-6); both sides are sums of ≤ 7776 products,
exact to ~1e-15 of the second moment.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..estimators.baselines import OptimalBaselines, optimal_baselines
from ..exact import evaluate
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from . import _reference as ref
from .registry import inequality

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references below serve
#: those theorems and the tests.
__all__: list[str] = []

TOL = 1e-9
REASON = (
    "variances by sums over <= 7776 trajectories, exact to ~1e-15 of the second moment, at two minimizers of the "
    "same quadratic (measured residuals <= 5e-16 over 100 instances); 1e-9 relative to max(Var, 1e-6) leaves a "
    "margin for second moments up to ~1e5 times the variance, and a 5% error in b* exceeds 100x it on 40 of 40 "
    "instances"
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

    @property
    def cache_paths(self) -> "Paths":
        """The enumerated trajectories, built once per instance."""
        if "paths" not in self.__dict__:
            object.__setattr__(self, "paths", _paths(self))
        return self.__dict__["paths"]


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
    return BaselineProblem(mdp, policy, theta, k, opt, np.array(ev.V), float(ev.J))


@dataclass(frozen=True)
class Paths:
    """Every trajectory of the horizon: probability (N,), states (N, H), and per step the baseline-free term
    d^t psi_{t,k} G_t and the score weight d^t psi_{t,k} (N, H)."""

    prob: np.ndarray
    states: np.ndarray
    g0: np.ndarray
    score: np.ndarray


def _paths(pr: BaselineProblem) -> Paths:
    """All (S A)^H trajectories with their probabilities, from mu0, pi (reference softmax), P and r alone."""
    mdp, H = pr.mdp, int(pr.mdp.horizon)
    P, r, g = np.asarray(mdp.P), np.asarray(mdp.r), float(mdp.gamma)
    pi = ref.probs(pr.policy, pr.theta)
    psi = ref.score(pr.policy, pr.theta)[:, :, pr.k]
    S, A = r.shape
    grids = np.stack(np.meshgrid(*([np.arange(S), np.arange(A)] * H), indexing="ij"), axis=-1).reshape(-1, 2 * H)
    s, a = grids[:, 0::2], grids[:, 1::2]
    prob = np.asarray(mdp.mu0)[s[:, 0]] * np.prod(pi[s, a], axis=1)
    prob = prob * np.prod(P[s[:, :-1], a[:, :-1], s[:, 1:]], axis=1) if H > 1 else prob
    rew = r[s, a]
    disc = g ** np.arange(H)
    G = np.stack([(rew[:, t:] * disc[: H - t]).sum(axis=1) for t in range(H)], axis=1)  # G_t = sum_l g^(l-t) r_l
    w = disc * psi[s, a]
    return Paths(prob, s, w * G, w)


def _enumerated_variance(pr: BaselineProblem, b: np.ndarray) -> float:
    r"""Var of :math:`\hat g_k(b) = \sum_t d^t\psi_{t,k}(G_t - b_t(s_t))` by summing over every trajectory;
    ``b`` of shape (H, S) (a constant is broadcast)."""
    paths = pr.cache_paths
    bt = np.broadcast_to(np.asarray(b, dtype=float), (pr.mdp.horizon, pr.mdp.n_states))
    est = (paths.g0 - paths.score * bt[np.arange(pr.mdp.horizon), paths.states]).sum(axis=1)
    mean = paths.prob @ est
    return float(paths.prob @ (est - mean) ** 2)


def _least_squares_state(pr: BaselineProblem) -> np.ndarray:
    """The variance's minimizer over b_t(s) by weighted least squares over the trajectories (numpy.linalg.lstsq):
    Var(b) = E[(g0 - X b)^2] - (E g0)^2 with X[path, (t, s)] = d^t psi_{t,k} 1{s_t = s}; the minimum-norm
    solution (0 where p_t(s) = 0)."""
    paths = pr.cache_paths
    H, S = pr.mdp.horizon, pr.mdp.n_states
    X = np.zeros((paths.prob.size, H * S))
    X[np.arange(paths.prob.size)[:, None], np.arange(H) * S + paths.states] = paths.score
    sw = np.sqrt(paths.prob)
    return np.linalg.lstsq(X * sw[:, None], paths.g0.sum(axis=1) * sw, rcond=None)[0].reshape(H, S)


def _least_squares_constant(pr: BaselineProblem) -> float:
    paths = pr.cache_paths
    z = paths.score.sum(axis=1)
    return float(paths.prob @ (paths.g0.sum(axis=1) * z) / (paths.prob @ z**2))


def _var_state(pr: BaselineProblem, b: np.ndarray) -> float:
    return _enumerated_variance(pr, b)


def _var_const(pr: BaselineProblem, b: float) -> float:
    return _enumerated_variance(pr, float(b))


def _state_competitors(pr: BaselineProblem) -> float:
    """The variance at the least-squares optimum (and at V_t(s) and the per-state formula, never better)."""
    return min(_var_state(pr, c) for c in (_least_squares_state(pr), pr.V, pr.opt.per_state[pr.k]))


def _const_competitors(pr: BaselineProblem) -> float:
    return min(_var_const(pr, c) for c in (_least_squares_constant(pr), pr.J))


inequality(
    id="baselines.optimal_state_baseline",
    statement=r"b^*_{k,t}(s) = \frac{d^t E[1\{s_t=s\}\psi_{t,k}\hat g_k(0)]}{d^{2t}p_t(s)E_\pi[\psi_k^2]} "
    r"\;\Rightarrow\; \mathrm{Var}\,\hat g_k(b^*) \le \mathrm{Var}\,\hat g_k(b) \ \ \forall b_t(s)",
    source="Greensmith, Bartlett & Baxter 2004, JMLR 5, sec. 5-6 (optimal baselines); Peters & Schaal 2008, "
    "Neural Networks 21, sec. 3 (per-coordinate optimal baseline); trajectory-level optimum derived in "
    "pgexact.estimators.baselines",
    reference="variances by enumerating every trajectory; competitors: the minimizer of that variance by weighted "
    "least squares over the trajectories (numpy.linalg.lstsq), V_t(s) and the per-state formula",
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
    reference="variances by enumerating every trajectory; competitors: the minimizer E[g0 z]/E[z^2] of that variance "
    "computed from the trajectories, and the mean return J",
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
