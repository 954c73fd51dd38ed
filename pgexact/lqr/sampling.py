r"""Batched LQR rollouts and Monte Carlo policy-gradient estimators for linear-Gaussian policies.

All episodes advance together by matrix products (a Python loop over time only). Every
estimator returns per-episode samples :math:`g_i` of :math:`\nabla_\theta J` (reward convention,
:math:`r_t = -c_t`, :math:`J = -C`) whose mean is unbiased for the gradient of the objective
*truncated at the rollout length T*: for a discounted model, the exact reference is
``lqr.with_horizon(T)`` (the truncation bias is :math:`O(\gamma^T)`). Nothing here computes a
closed form; critics and baselines are passed in as callables.

Estimators (trajectory :math:`\tau`, score :math:`s_t = \nabla_\theta\log\pi_\theta(u_t|x_t)`,
discounted reward-to-go :math:`G_t = \sum_{t'\ge t}\gamma^{t'-t} r_{t'}`):

* REINFORCE (Williams 1992): :math:`g = (\sum_t s_t)(\sum_t \gamma^t r_t)`;
* reward-to-go: :math:`g = \sum_t \gamma^t s_t G_t`;
* with a state-dependent baseline: :math:`g = \sum_t \gamma^t s_t (G_t - b_t(x_t))`;
* DPG (Silver et al. 2014, Theorem 1): :math:`g = \sum_t \gamma^t \nabla_\theta\mu(x_t)^\top \nabla_u Q_t(x_t, u)|_{u=\mu(x_t)}`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._random import Seed, as_generator
from .._validation import check_positive_int
from .model import LQR
from .policy import LinearGaussian, psd_sqrt

__all__ = [
    "LQRRollout",
    "GradientSamples",
    "rollout",
    "reinforce",
    "reinforce_to_go",
    "reinforce_baseline",
    "dpg",
]


@dataclass(frozen=True, eq=False)
class LQRRollout:
    r"""A batch of LQR episodes (arrays read-only, batch-first).

    Attributes
    ----------
    states : numpy.ndarray, shape (N, T, n)
        :math:`x_t`, t = 0..T-1.
    actions : numpy.ndarray, shape (N, T, m)
    costs : numpy.ndarray, shape (N, T)
        :math:`c_t = x_t^\top Q x_t + u_t^\top R u_t` (undiscounted).
    final_states : numpy.ndarray, shape (N, n)
        :math:`x_T`.
    gamma : float
    """

    states: np.ndarray
    actions: np.ndarray
    costs: np.ndarray
    final_states: np.ndarray
    gamma: float

    def __post_init__(self) -> None:
        for name in ("states", "actions", "costs", "final_states"):
            getattr(self, name).flags.writeable = False

    @property
    def rewards(self) -> np.ndarray:
        """:math:`r_t = -c_t`, shape (N, T)."""
        return -self.costs

    @property
    def n_episodes(self) -> int:
        return int(self.costs.shape[0])

    @property
    def length(self) -> int:
        return int(self.costs.shape[1])

    def discounted_returns(self) -> np.ndarray:
        r""":math:`\sum_t \gamma^t r_t` per episode, shape (N,)."""
        return self.rewards @ (self.gamma ** np.arange(self.length))


@dataclass(frozen=True, eq=False)
class GradientSamples:
    r"""Per-episode gradient samples, shape (N, n_params), with their mean and standard error."""

    samples: np.ndarray

    def __post_init__(self) -> None:
        self.samples.flags.writeable = False

    @property
    def mean(self) -> np.ndarray:
        """Sample mean, shape (n_params,): the gradient estimate."""
        return self.samples.mean(axis=0)

    @property
    def stderr(self) -> np.ndarray:
        """Standard error of the mean per coordinate, ``std(ddof=1) / sqrt(N)``."""
        N = self.samples.shape[0]
        return self.samples.std(axis=0, ddof=1) / np.sqrt(N)


def rollout(
    lqr: LQR,
    policy: LinearGaussian,
    theta: Any,
    n_episodes: int,
    seed: Seed,
    horizon: int | None = None,
) -> LQRRollout:
    r"""Simulate ``n_episodes`` episodes of :math:`x_{t+1} = Ax_t + Bu_t + w_t`, :math:`u_t\sim N(-Kx_t,\Sigma_u)`.

    Parameters
    ----------
    lqr : LQR
    policy : LinearGaussian
    theta : array_like, shape (n_params,)
    n_episodes : int
    seed : int, SeedSequence or Generator
        The only source of randomness. Draw order: :math:`x_0` (N, n), then per step the action
        noise (N, m) and the process noise (N, n).
    horizon : int, optional
        Episode length T; defaults to ``lqr.horizon`` and is required for an infinite horizon
        (the rollout then estimates the truncated objective ``lqr.with_horizon(T)``).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> lqr = LQR(A=[[0.5]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], Sigma0=[[1.0]], horizon=3)
    >>> ro = rollout(lqr, LinearGaussian(1, 1), [0.5], n_episodes=4, seed=0)
    >>> ro.states.shape, bool(np.allclose(ro.states[:, 1, 0], 0.0))  # x1 = (0.5 - 0.5) x0
    ((4, 3, 1), True)
    """
    if not isinstance(lqr, LQR):
        raise TypeError(f"lqr must be a pgexact.LQR, got {type(lqr).__name__}")
    if not isinstance(policy, LinearGaussian):
        raise TypeError(f"policy must be a pgexact.LinearGaussian, got {type(policy).__name__}")
    if (policy.n_state, policy.n_action) != (lqr.n_state, lqr.n_action):
        raise ValueError(f"policy has (n_state, n_action) = ({policy.n_state}, {policy.n_action}), "
                         f"the LQR has ({lqr.n_state}, {lqr.n_action})")
    theta = policy.check_theta(theta)
    N = check_positive_int("n_episodes", n_episodes)
    if horizon is None:
        if lqr.horizon is None:
            raise ValueError("horizon is required for an infinite-horizon LQR (episodes are truncated at T)")
        T = lqr.horizon
    else:
        T = check_positive_int("horizon", horizon)
    rng = as_generator(seed)
    n, m = lqr.n_state, lqr.n_action
    K = policy.gain(theta)
    Lu = psd_sqrt(policy.action_cov(theta))
    Lw = psd_sqrt(lqr.noise_cov)
    L0 = psd_sqrt(lqr.Sigma0)
    At, Bt, mKt = lqr.A.T, lqr.B.T, -K.T
    states = np.empty((N, T, n))
    actions = np.empty((N, T, m))
    costs = np.empty((N, T))
    x = rng.standard_normal((N, n)) @ L0
    for t in range(T):
        u = x @ mKt + rng.standard_normal((N, m)) @ Lu
        states[:, t] = x
        actions[:, t] = u
        costs[:, t] = np.einsum("ni,ni->n", x @ lqr.Q, x) + np.einsum("ni,ni->n", u @ lqr.R, u)
        x = x @ At + u @ Bt + rng.standard_normal((N, n)) @ Lw
    return LQRRollout(states=states, actions=actions, costs=costs, final_states=x, gamma=lqr.gamma)


def _scores(policy: LinearGaussian, theta: Any, ro: LQRRollout) -> np.ndarray:
    if not isinstance(ro, LQRRollout):
        raise TypeError(f"rollout must be an LQRRollout, got {type(ro).__name__}")
    return policy.score(theta, ro.states, ro.actions)  # (N, T, d)


def _to_go(ro: LQRRollout) -> np.ndarray:
    """:math:`\\gamma^t G_t = \\sum_{t' \\ge t} \\gamma^{t'} r_{t'}`, shape (N, T)."""
    disc = ro.rewards * ro.gamma ** np.arange(ro.length)
    return np.cumsum(disc[:, ::-1], axis=1)[:, ::-1]


def reinforce(policy: LinearGaussian, theta: Any, rollout: LQRRollout) -> GradientSamples:
    r"""REINFORCE with the Gaussian score: :math:`g = (\sum_t \nabla\log\pi(u_t|x_t))\sum_t\gamma^t r_t`.

    Unbiased for :math:`\nabla_\theta J` of the T-step objective (Williams 1992).
    """
    sc = _scores(policy, theta, rollout)
    return GradientSamples(sc.sum(axis=1) * rollout.discounted_returns()[:, None])


def reinforce_to_go(policy: LinearGaussian, theta: Any, rollout: LQRRollout) -> GradientSamples:
    r"""Reward-to-go REINFORCE: :math:`g = \sum_t \nabla\log\pi(u_t|x_t)\sum_{t'\ge t}\gamma^{t'} r_{t'}`.

    Unbiased because :math:`E[\nabla\log\pi(u_t|x_t) r_{t'}] = 0` for :math:`t' < t` (causality).
    """
    sc = _scores(policy, theta, rollout)
    return GradientSamples(np.einsum("ntk,nt->nk", sc, _to_go(rollout)))


def reinforce_baseline(
    policy: LinearGaussian,
    theta: Any,
    rollout: LQRRollout,
    baseline: Callable[[int, np.ndarray], np.ndarray],
) -> GradientSamples:
    r"""Reward-to-go with a state-dependent baseline: :math:`g = \sum_t \gamma^t \nabla\log\pi(u_t|x_t)(G_t - b_t(x_t))`.

    Parameters
    ----------
    baseline : callable
        ``baseline(t, x)`` with ``x`` of shape (N, n) returns (N,) values in reward units (e.g.
        an exact ``LQREvaluation.V`` of the truncated problem). It must not depend on the actions
        at or after t, which keeps the estimator unbiased: :math:`E_u[\nabla\log\pi(u|x)] = 0`.
    """
    sc = _scores(policy, theta, rollout)
    T = rollout.length
    disc = rollout.gamma ** np.arange(T)
    b = np.empty_like(rollout.costs)
    for t in range(T):
        bt = np.asarray(baseline(t, rollout.states[:, t]), dtype=np.float64)
        if bt.shape != (rollout.n_episodes,):
            raise ValueError(f"baseline(t, x) must return shape ({rollout.n_episodes},), got {bt.shape}")
        b[:, t] = bt
    adv = _to_go(rollout) - disc * b
    return GradientSamples(np.einsum("ntk,nt->nk", sc, adv))


def dpg(
    policy: LinearGaussian,
    theta: Any,
    rollout: LQRRollout,
    grad_q: Callable[[int, np.ndarray, np.ndarray], np.ndarray],
) -> GradientSamples:
    r"""Deterministic policy gradient estimator :math:`g = \sum_t\gamma^t \nabla_\theta\mu(x_t)^\top \nabla_u Q_t(x_t, \mu(x_t))`.

    Silver et al. 2014, Theorem 1 (discounted-visitation form: :math:`\sum_t \gamma^t E_{x_t}`).
    Also unbiased for a Gaussian policy with a fixed covariance: there
    :math:`\nabla_{\mathrm{vec}K} J = \sum_t \gamma^t E[\nabla\mu^\top \nabla_u Q_t(x_t, u_t)]` by
    reparametrization, and :math:`\nabla_u Q` is affine in u so :math:`u_t` may be replaced by its
    mean. Only the gain block is estimated, so ``learn_log_std`` policies are rejected.

    Parameters
    ----------
    grad_q : callable
        ``grad_q(t, x, u)`` with x (N, n), u (N, m) returns :math:`\nabla_u Q_t` (N, m), reward
        units (e.g. an exact ``LQREvaluation.grad_u_Q``).
    """
    if not isinstance(policy, LinearGaussian):
        raise TypeError(f"policy must be a pgexact.LinearGaussian, got {type(policy).__name__}")
    if policy.learn_log_std:
        raise ValueError("dpg estimates the gain block only: use a policy with learn_log_std=False")
    if not isinstance(rollout, LQRRollout):
        raise TypeError(f"rollout must be an LQRRollout, got {type(rollout).__name__}")
    theta = policy.check_theta(theta)
    out = np.zeros((rollout.n_episodes, policy.n_params))
    for t in range(rollout.length):
        x = rollout.states[:, t]
        mu = policy.mean(theta, x)
        gq = np.asarray(grad_q(t, x, mu), dtype=np.float64)
        if gq.shape != mu.shape:
            raise ValueError(f"grad_q(t, x, u) must return shape {mu.shape}, got {gq.shape}")
        out += rollout.gamma ** t * policy.mean_jacobian_t(theta, x, gq)
    return GradientSamples(out)
