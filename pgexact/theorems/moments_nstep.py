r"""Theorems of the exact moments of the n-step estimator (:mod:`pgexact.estimators.nstep_moments`).

The n-step estimator :math:`\hat g = \sum_t \gamma^t\nabla\log\pi(a_t|s_t)(G^{(n)}_t - V(s_t))`,
:math:`G^{(n)}_t = \sum_{k<n'}\gamma^k r_{t+k} + \gamma^{n'}V(s_{t+n'})`, :math:`n' = \min(n, H - t)`
(nothing bootstrapped after the last step of a finite horizon), has a weight spanning a window of
n steps; its mean and covariance come from a recursion over the window's length. The reference
lists every trajectory (:func:`pgexact.estimators.enumerate_trajectories`), applies the sampled
estimator :func:`pgexact.estimators.n_step` to each and takes the probability-weighted mean and
covariance (:func:`pgexact.estimators.exact_mean`, :func:`pgexact.estimators.exact_covariance`):
no recursion, no closed form.

Instances: random dense MDPs with 2..3 states, 2 actions, horizon 3..4, γ uniform in [0.5, 0.9];
tabular or linear softmax with parameters N(0, 1); a window n = 2 (shorter than the horizon, so
the window's end matters); V with entries N(0, 1), stationary (S,) or time-indexed (H, S), drawn
at random (not the policy's values: the moments are those of any critic). At most
:math:`(S A)^H S = 3888` trajectories.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import estimators as est
from ..estimators import nstep_moments as nm
from ..estimators.moments import _pair_marginals, _Transitions
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

WINDOW = 2


@dataclass(frozen=True)
class NStepProblem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray
    V: np.ndarray  # (S,) or (H, S)
    n: int


def _problem(rng: np.random.Generator) -> NStepProblem:
    S, H = int(rng.integers(2, 4)), int(rng.integers(3, 5))
    mdp = random_mdp(S, 2, gamma=float(rng.uniform(0.5, 0.9)), horizon=H, seed=rng)
    policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, 2, 3))) if rng.integers(2) else TabularSoftmax(S, 2)
    theta = rng.standard_normal(policy.n_params)
    V = rng.standard_normal((H, S) if rng.integers(2) else (S,))
    return NStepProblem(mdp, policy, theta, V, WINDOW)


def _moments(pr: NStepProblem, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    m = est.estimator_moments(pr.mdp, pr.policy, pr.theta, "n_step", V=pr.V, n=pr.n if n is None else n)
    return m.mean, m.covariance


def _enumerated(pr: NStepProblem) -> tuple[np.ndarray, np.ndarray]:
    trajs, prob = est.enumerate_trajectories(pr.mdp, pr.policy.probs(pr.theta))
    samples = est.n_step(trajs, pr.policy, pr.theta, pr.V, pr.n).samples
    return est.exact_mean(samples, prob), est.exact_covariance(samples, prob)


def _undiscounted_bootstrap(pr: NStepProblem) -> tuple[np.ndarray, np.ndarray]:
    r"""The recursion with :math:`V(s_{t+n})` bootstrapped without its :math:`\gamma^n`.

    In these instances every nonzero bootstrap closes a full window (nothing is bootstrapped after
    the last step), so dividing the bootstrap table by :math:`\gamma^n` drops exactly that factor.
    """
    mdp, S, A = pr.mdp, pr.mdp.n_states, pr.mdp.n_actions
    H, g = mdp.horizon, mdp.gamma
    pi = pr.policy.probs(pr.theta)
    f, c, n = nm.nstep_tables(S, A, H, ~np.asarray(mdp.terminal), pr.V, pr.n, False)
    C = pr.policy.score(pr.theta).reshape(S * A, pr.policy.n_params)
    P = _Transitions(mdp)
    second, m = nm.finite_kernel(P, pi, C, _pair_marginals(P, mdp.mu0, pi, H), f, mdp.r.reshape(-1), c / g**n, n, g)
    mean = C.T @ m
    return mean, second - np.outer(mean, mean)


identity(
    id="estimators.n_step_moments",
    statement=r"E[\hat g],\ \mathrm{Cov}[\hat g] \text{ of } \hat g = \sum_{t<H}\gamma^t\nabla\log\pi(a_t|s_t)"
    r"\Big(\sum_{k<n'}\gamma^k r_{t+k} + \gamma^{n'} V(s_{t+n'}) - V(s_t)\Big),\ n' = \min(n, H-t)"
    r" = \sum_\tau p(\tau)\,\hat g(\tau),\ \sum_\tau p(\tau)(\hat g(\tau) - E\hat g)(\hat g(\tau) - E\hat g)^\top",
    source="Sutton & Barto 2018, 'Reinforcement learning: an introduction', eq. 7.1 and sec. 13.5 (the n-step "
    "return in the actor-critic); moment equations of an additive functional of a Markov chain (Sobel 1982, "
    "J. Appl. Prob. 19), unrolled over the window's length",
    reference="every trajectory enumerated with its probability, the sampled n_step estimator applied to each, "
    "probability-weighted mean and covariance (exact_mean, exact_covariance)",
    instance=_problem,
    computed=_moments,
    expected=_enumerated,
    tolerance=1e-12,
    tolerance_reason="rounding of sums over at most 3888 trajectories of O(10) terms and of a recursion of "
    "4 steps; measured residuals <= 2.3e-15 over 200 instances (seed 1), a margin of ~440",
    mutants={
        "bootstrap at t+n-1 (a window one step short)": lambda pr: _moments(pr, pr.n - 1),
        "bootstrap at t+n+1 (a window one step long)": lambda pr: _moments(pr, pr.n + 1),
        "dropped gamma^n on the bootstrap V(s_{t+n})": _undiscounted_bootstrap,
    },
    default_instances=4,
)


# ----------------------------------------------------------------------------- geometric stopping
#: Longest stopping time of the mixture; gamma <= 0.2 leaves out gamma^24 <= 1.7e-17 of probability.
L_MAX = 24


@dataclass(frozen=True)
class GeometricNStepProblem:
    mdp: FiniteMDP  # discounted, horizon None: the moments under rollout(..., geometric=True)
    policy: SoftmaxPolicy
    theta: np.ndarray
    V: np.ndarray  # (S,)
    n: int


def _geometric_problem(rng: np.random.Generator) -> GeometricNStepProblem:
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=float(rng.uniform(0.1, 0.2)), seed=rng)
    policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, 3))) if rng.integers(2) else TabularSoftmax(S, A)
    return GeometricNStepProblem(mdp, policy, rng.standard_normal(policy.n_params), rng.standard_normal(S),
                                 int(rng.integers(1, 4)))


def _geometric_moments(gp: GeometricNStepProblem, n: int | None = None) -> tuple[np.ndarray, np.ndarray]:
    m = est.estimator_moments(gp.mdp, gp.policy, gp.theta, "n_step", V=gp.V, n=gp.n if n is None else n)
    return m.mean, m.second_moment


def _mixture(gp: GeometricNStepProblem, step_discount: float) -> tuple[np.ndarray, np.ndarray]:
    g = gp.mdp.gamma
    mean, second = 0.0, 0.0
    for ell in range(1, L_MAX + 1):
        w = (1.0 - g) * g ** (ell - 1)
        m = est.estimator_moments(gp.mdp.with_horizon(ell, gamma=step_discount), gp.policy, gp.theta, "n_step",
                                  V=gp.V, n=gp.n)
        mean, second = mean + w * m.mean, second + w * m.second_moment
    return mean, second


identity(
    id="estimators.n_step_moments_geometric",
    statement=r"E[\hat g],\ E[\hat g\hat g^\top] \text{ of the n-step estimator under } \Pr(L=\ell) = "
    r"(1-\gamma)\gamma^{\ell-1} = \sum_{\ell\ge1}(1-\gamma)\gamma^{\ell-1}\,E[\,\cdot \mid L = \ell\,]",
    source="Sutton & Barto 2018, eq. 7.1 (the n-step return, the stop acting as termination); the killed-chain "
    "moment equations (Sobel 1982, J. Appl. Prob. 19, Theorem 2); the course notes, 'Policy gradient' notes, "
    "geometric horizons for unbiased discounted Monte Carlo",
    reference="the finite-horizon n-step recursion at gamma = 1 (a backward pass over time, itself checked against "
    "enumeration by estimators.n_step_moments) for every stopping time l <= 24, mixed with Pr(L = l)",
    instance=_geometric_problem,
    computed=_geometric_moments,
    expected=lambda gp: _mixture(gp, 1.0),
    tolerance=1e-12,
    tolerance_reason="the omitted mass gamma^24 <= 1.7e-17, the rounding of 24 recursions and of one LU solve of "
    "condition <= 1/(1-gamma) <= 1.25; measured residuals <= 1.5e-15 over 200 instances (seed 1), a margin of ~700",
    mutants={
        "bootstrap at t+n+1 (a window one step long)": lambda gp: _geometric_moments(gp, gp.n + 1),
        "the discount applied again on top of the stop (weights gamma^t under geometric stopping)": lambda gp: _mixture(
            gp, gp.mdp.gamma),
    },
    default_instances=2,
)
