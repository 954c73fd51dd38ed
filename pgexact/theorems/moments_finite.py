r"""Theorems of the exact finite-horizon estimator moments (:func:`pgexact.estimators.estimator_moments`).

The moment recursions with a fixed horizon run backward over time with the weights
:math:`d^t = \gamma^t`; the geometric-stopping theorems use them at γ = 1 only. Here they are
compared at γ < 1 with the probability-weighted mean and covariance of the sampled estimators
over every trajectory (the sampled estimators are checked step by step by
``estimators.pathwise_terms``), for both objectives with a horizon: a finite-horizon MDP
(nothing is bootstrapped after step H-1), and the truncated objective of a discounted MDP
(``horizon=T``: the return goes on after T, a stationary V bootstraps :math:`V(s_T)`), on a model
with an absorbing terminal state (steps there are padding). Every instance computes the seven
estimators, half of them along random directions
(:math:`E\hat g` in full and :math:`D\,\mathrm{Cov}(\hat g)D^\top`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import estimators as est
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from .estimators_pathwise import with_terminal_state
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

ESTIMATORS = ("reinforce", "reward_to_go", "constant_baseline", "state_baseline", "advantage", "gae", "n_step")


@dataclass(frozen=True)
class MomentsProblem:
    mdp: FiniteMDP  # finite horizon H, or discounted (the truncated objective at T)
    T: int
    policy: SoftmaxPolicy
    theta: np.ndarray
    kwargs: dict[str, dict[str, Any]]  # the extra arguments of each estimator
    directions: np.ndarray | None


def _problem(rng: np.random.Generator, truncated: bool) -> MomentsProblem:
    S, A, T = int(rng.integers(1, 3)), 2, int(rng.integers(2, 4))
    gamma = float(rng.uniform(0.5, 0.9))
    base = random_mdp(S, A, gamma=gamma, seed=rng)
    mdp = with_terminal_state(base, horizon=None if truncated else T, exit_probability=0.2)
    S += 1
    policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, 2))) if rng.integers(2) else TabularSoftmax(S, A)
    theta = rng.standard_normal(policy.n_params)
    timed = not truncated and rng.integers(2)
    shape = (T, S) if timed else (S,)
    kwargs = {
        "reinforce": {}, "reward_to_go": {}, "constant_baseline": {"b": float(rng.standard_normal())},
        "state_baseline": {"b": rng.standard_normal(shape)}, "advantage": {"A": rng.standard_normal((S, A))},
        "gae": {"V": rng.standard_normal(shape), "lam": float(rng.uniform(0.2, 0.9))},
        "n_step": {"V": rng.standard_normal(shape), "n": int(rng.integers(1, T + 1))},
    }
    directions = rng.standard_normal((2, policy.n_params)) if rng.integers(2) else None
    return MomentsProblem(mdp, T, policy, theta, kwargs, directions)


def moments_problem(rng: np.random.Generator) -> tuple[MomentsProblem, MomentsProblem]:
    """A finite-horizon problem and a truncated discounted one."""
    return _problem(rng, False), _problem(rng, True)


def _library(pr: MomentsProblem, name: str, *, lam_factor: float = 1.0,
             drop_bootstrap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    kwargs = dict(pr.kwargs[name])
    if "lam" in kwargs:
        kwargs["lam"] *= lam_factor
    mdp, horizon = pr.mdp, None if pr.mdp.horizon is not None else pr.T
    if drop_bootstrap and horizon is not None:
        mdp, horizon = mdp.with_horizon(pr.T), None
    m = est.estimator_moments(mdp, pr.policy, pr.theta, name, directions=pr.directions, horizon=horizon, **kwargs)
    return np.asarray(m.mean), np.asarray(m.direction_covariance)


def _computed(prs: tuple[MomentsProblem, ...], **mistake: Any) -> tuple[np.ndarray, ...]:
    out: tuple[np.ndarray, ...] = ()
    for pr in prs:
        for name in ESTIMATORS:
            out += _library(pr, name, **mistake)
    return out


def _sampled(pr: MomentsProblem, trajs: Any, name: str) -> np.ndarray:
    fn = getattr(est, name)
    kw = pr.kwargs[name]
    args = {"reinforce": (), "reward_to_go": (), "constant_baseline": (kw.get("b"),), "state_baseline": (kw.get("b"),),
            "advantage": (kw.get("A"),), "gae": (kw.get("V"), kw.get("lam")), "n_step": (kw.get("V"), kw.get("n"))}[name]
    fn = est.gae_gradient if name == "gae" else fn
    return np.asarray(fn(trajs, pr.policy, pr.theta, *args).samples)


def _enumerated(prs: tuple[MomentsProblem, ...]) -> tuple[np.ndarray, ...]:
    r"""Mean and (direction) covariance of each sampled estimator over every trajectory, weighted by its probability
    (:math:`\sum_\tau p(\tau)\hat g(\tau)`, :math:`\sum_\tau p(\tau)(D\hat g - D\bar g)(D\hat g - D\bar g)^\top`)."""
    out: tuple[np.ndarray, ...] = ()
    for pr in prs:
        trajs, prob = est.enumerate_trajectories(pr.mdp, pr.policy.probs(pr.theta), horizon=None if pr.mdp.horizon else pr.T)
        for name in ESTIMATORS:
            x = _sampled(pr, trajs, name)
            mean = np.einsum("n,nk->k", prob, x)
            y = x if pr.directions is None else x @ pr.directions.T
            c = y - np.einsum("n,nk->k", prob, y)
            out += (mean, np.einsum("n,ni,nj->ij", prob, c, c))
    return out


def _scaled_by_gamma(prs: tuple[MomentsProblem, ...]) -> tuple[np.ndarray, ...]:
    """Every term weighted by gamma^{t+1} instead of gamma^t: the mean times gamma, the covariance times gamma^2."""
    out: tuple[np.ndarray, ...] = ()
    for pr in prs:
        g = pr.mdp.gamma
        for name in ESTIMATORS:
            mean, cov = _library(pr, name)
            out += (g * mean, g * g * cov)
    return out


identity(
    id="estimators.finite_horizon_moments",
    statement=r"E[\hat g] = \sum_\tau p(\tau)\hat g(\tau),\ D\,\mathrm{Cov}[\hat g]\,D^\top = \sum_\tau p(\tau)"
    r"(D\hat g(\tau) - DE\hat g)(D\hat g(\tau) - DE\hat g)^\top \text{ for REINFORCE, reward-to-go, constant and "
    r"state baselines, advantage, GAE and n-step, } \gamma < 1\text{, finite and truncated objectives}",
    source="moment equations of an additive functional of a Markov chain (Sobel 1982, 'The variance of discounted "
    "Markov decision processes', J. Appl. Prob. 19), extended to score-weighted sums; Williams 1992; Schulman et al. "
    "2016 (GAE), eq. 16; Sutton & Barto 2018, eq. 7.1",
    reference="every trajectory enumerated with its probability, the sampled estimators (checked step by step by "
    "estimators.pathwise_terms) applied to each, probability-weighted mean and covariance written with numpy.einsum",
    instance=moments_problem,
    computed=_computed,
    expected=_enumerated,
    tolerance=1e-12,
    tolerance_reason="sums over at most (S A)^T S = 1536 trajectories of O(10) terms and recursions of 3 steps "
    "(measured max residual 2.6e-15 over 200 instances, seed 7); 1e-12 leaves a margin of ~400",
    mutants={
        "every term weighted by gamma^{t+1} (a discount off by one)": _scaled_by_gamma,
        "GAE trace gamma^2 lambda (gamma applied twice)": lambda prs: _computed(prs, lam_factor=prs[0].mdp.gamma),
        "truncated objective without the bootstrap V(s_T) (the finite objective's moments)": lambda prs: _computed(
            prs, drop_bootstrap=True),
    },
    default_instances=3,
)
