r"""Monte Carlo policy-gradient estimators for linear-Gaussian policies on LQR rollouts.

**Estimators.** Every estimator takes ``(samples, policy, theta, ...)`` and returns an
:class:`pgexact.estimators.Estimate` of per-episode samples :math:`g_i` of :math:`\nabla_\theta J`
(reward convention, :math:`r_t = -c_t`, :math:`J = -C`) whose mean is unbiased for the gradient
of the objective *truncated at the rollout length T*: for a discounted model the exact
reference is ``lqr.with_horizon(T)`` (the truncation bias is :math:`O(\gamma^T)`). Nothing here
computes a closed form; critics and baselines are passed in as callables.

Score :math:`s_t = \nabla_\theta\log\pi_\theta(u_t|x_t)`, discounted reward-to-go
:math:`G_t = \sum_{t'\ge t}\gamma^{t'-t} r_{t'}`:

* REINFORCE (Williams 1992): :math:`g = (\sum_t s_t)(\sum_t \gamma^t r_t)`;
* reward-to-go: :math:`g = \sum_t \gamma^t s_t G_t`;
* with a state-dependent baseline: :math:`g = \sum_t \gamma^t s_t (G_t - b_t(x_t))`;
* DPG (Silver et al. 2014, Theorem 1): :math:`g = \sum_t \gamma^t \nabla_\theta\mu(x_t)^\top \nabla_u Q_t(x_t, u)|_{u=\mu(x_t)}`.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from ..errors import NumericalError
from ..estimators._base import Estimate
from .policy import LinearGaussian
from .sampling import LQRTrajectories

__all__ = [
    "reinforce",
    "reinforce_to_go",
    "reinforce_baseline",
    "dpg",
]


def _check_args(fn: str, samples: Any, policy: Any, theta: Any) -> tuple[LQRTrajectories, LinearGaussian, np.ndarray]:
    """Validate ``(samples, policy, theta)``; a permutation of them is named as such."""
    args = {"samples": samples, "policy": policy, "theta": theta}
    if not isinstance(samples, LQRTrajectories) or not isinstance(policy, LinearGaussian):
        kinds = {k: ("samples" if isinstance(v, LQRTrajectories) else "policy" if isinstance(v, LinearGaussian)
                     else None) for k, v in args.items()}
        misplaced = [f"{k} is {_kind(kinds[k])}" for k in args if kinds[k] is not None and kinds[k] != k]
        if misplaced:
            raise TypeError(
                f"{fn} takes (samples, policy, theta, ...) in this order: "
                + ", ".join(misplaced)
                + " (samples: pgexact.lqr.LQRTrajectories from pgexact.lqr.rollout; policy: a "
                "LinearGaussian; theta: its parameter vector)"
            )
        if not isinstance(samples, LQRTrajectories):
            raise TypeError(f"samples must be pgexact.lqr.LQRTrajectories (from pgexact.lqr.rollout), "
                            f"got {type(samples).__name__}")
        raise TypeError(f"policy must be a pgexact.LinearGaussian, got {type(policy).__name__}")
    if (policy.n_states, policy.n_actions) != (samples.n_states, samples.n_actions):
        raise ValueError(f"policy has (n_states, n_actions) = ({policy.n_states}, {policy.n_actions}), the "
                         f"samples have ({samples.n_states}, {samples.n_actions})")
    return samples, policy, policy.check_theta(theta)


def _kind(kind: str | None) -> str:
    return {"samples": "the LQRTrajectories", "policy": "the LinearGaussian policy"}.get(kind or "", "")


def _to_go(ro: LQRTrajectories) -> np.ndarray:
    """:math:`\\gamma^t G_t = \\sum_{t' \\ge t} \\gamma^{t'} r_{t'}`, shape (N, T)."""
    disc = ro.rewards * ro.gamma ** np.arange(ro.n_steps)
    return np.cumsum(disc[:, ::-1], axis=1)[:, ::-1]


def _callback(name: str, value: Any, t: int, shape: tuple) -> np.ndarray:
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must return real numbers, got {type(value).__name__} at t={t}") from None
    if arr.shape != shape:
        raise ValueError(f"{name} must return shape {shape}, got {arr.shape} at t={t}")
    bad = ~np.isfinite(arr)
    if bad.any():
        i = tuple(int(k) for k in np.argwhere(bad)[0])
        raise ValueError(f"{name} returned {arr[i]} at t={t}, episode {i[0]}: expected finite values")
    return arr


def _estimate(fn: str, terms: np.ndarray) -> Estimate:
    """The :class:`Estimate` of per-episode ``terms``, refused with a named error if one overflowed."""
    bad = ~np.isfinite(terms)
    if bad.any():
        i = int(np.argwhere(bad)[0][0])
        raise NumericalError(
            f"{fn}: the term of episode {i} of samples overflows float64 under theta (a score "
            "(u - mu) / sigma^2 or a return too large for float64: a log standard deviation far below "
            "the one that drew the samples, or huge costs); use a theta closer to the sampling policy"
        )
    return Estimate(terms)


@np.errstate(under="ignore")
def reinforce(samples: LQRTrajectories, policy: LinearGaussian, theta: Any) -> Estimate:
    r"""REINFORCE with the Gaussian score: :math:`g = (\sum_t \nabla\log\pi(u_t|x_t))\sum_t\gamma^t r_t`.

    Unbiased for :math:`\nabla_\theta J` of the T-step objective (Williams 1992).

    Parameters
    ----------
    samples : LQRTrajectories
        States (N, T, n), actions (N, T, m), costs (N, T).
    policy : LinearGaussian
        The (stochastic) policy that generated the samples.
    theta : array_like, shape (n_params,)

    Returns
    -------
    Estimate
        ``samples`` of shape (N, n_params).
    """
    samples, policy, theta = _check_args("reinforce", samples, policy, theta)
    with np.errstate(over="ignore", invalid="ignore"):
        sc = policy._score(theta, samples.states, samples.actions)
        terms = sc.sum(axis=1) * samples.discounted_returns()[:, None]
    return _estimate("reinforce", terms)


@np.errstate(under="ignore")
def reinforce_to_go(samples: LQRTrajectories, policy: LinearGaussian, theta: Any) -> Estimate:
    r"""Reward-to-go REINFORCE: :math:`g = \sum_t \nabla\log\pi(u_t|x_t)\sum_{t'\ge t}\gamma^{t'} r_{t'}`.

    Unbiased because :math:`E[\nabla\log\pi(u_t|x_t) r_{t'}] = 0` for :math:`t' < t` (causality).
    Arguments and result as :func:`reinforce`.
    """
    samples, policy, theta = _check_args("reinforce_to_go", samples, policy, theta)
    with np.errstate(over="ignore", invalid="ignore"):
        sc = policy._score(theta, samples.states, samples.actions)
        terms = np.einsum("ntk,nt->nk", sc, _to_go(samples))
    return _estimate("reinforce_to_go", terms)


@np.errstate(under="ignore")
def reinforce_baseline(
    samples: LQRTrajectories,
    policy: LinearGaussian,
    theta: Any,
    baseline: Callable[[int, np.ndarray], np.ndarray],
) -> Estimate:
    r"""Reward-to-go with a state-dependent baseline: :math:`g = \sum_t \gamma^t \nabla\log\pi(u_t|x_t)(G_t - b_t(x_t))`.

    Parameters
    ----------
    samples, policy, theta
        As :func:`reinforce`.
    baseline : callable
        ``baseline(t, x)`` with ``x`` of shape (N, n) returns (N,) finite values in reward units
        (e.g. an exact ``LQREvaluation.V`` of the truncated problem). It must not depend on the
        actions at or after t, which keeps the estimator unbiased: :math:`E_u[\nabla\log\pi(u|x)] = 0`.
    """
    samples, policy, theta = _check_args("reinforce_baseline", samples, policy, theta)
    if not callable(baseline):
        raise TypeError(f"baseline must be a callable baseline(t, x), got {type(baseline).__name__}")
    with np.errstate(over="ignore", invalid="ignore"):
        sc = policy._score(theta, samples.states, samples.actions)
    T = samples.n_steps
    b = np.empty_like(samples.costs)
    for t in range(T):
        b[:, t] = _callback("baseline(t, x)", baseline(t, samples.states[:, t]), t, (samples.n_episodes,))
    with np.errstate(over="ignore", invalid="ignore"):
        adv = _to_go(samples) - samples.gamma ** np.arange(T) * b
        terms = np.einsum("ntk,nt->nk", sc, adv)
    return _estimate("reinforce_baseline", terms)


@np.errstate(under="ignore")
def dpg(
    samples: LQRTrajectories,
    policy: LinearGaussian,
    theta: Any,
    grad_q: Callable[[int, np.ndarray, np.ndarray], np.ndarray],
) -> Estimate:
    r"""Deterministic policy gradient estimator :math:`g = \sum_t\gamma^t \nabla_\theta\mu(x_t)^\top \nabla_u Q_t(x_t, \mu(x_t))`.

    Silver et al. 2014, Theorem 1 (discounted-visitation form: :math:`\sum_t \gamma^t E_{x_t}`).
    Also unbiased for a Gaussian policy with a fixed covariance: there
    :math:`\nabla_{\mathrm{vec}K} J = \sum_t \gamma^t E[\nabla\mu^\top \nabla_u Q_t(x_t, u_t)]` by
    reparametrization, and :math:`\nabla_u Q` is affine in u so :math:`u_t` may be replaced by its
    mean. Only the gain block is estimated, so ``learn_log_std`` policies are rejected.

    Parameters
    ----------
    samples, policy, theta
        As :func:`reinforce`.
    grad_q : callable
        ``grad_q(t, x, u)`` with x (N, n), u (N, m) returns :math:`\nabla_u Q_t` (N, m), reward
        units (e.g. an exact ``LQREvaluation.grad_u_Q``).
    """
    samples, policy, theta = _check_args("dpg", samples, policy, theta)
    if policy.learn_log_std:
        raise ValueError("dpg estimates the gain block only: use a policy with learn_log_std=False")
    if not callable(grad_q):
        raise TypeError(f"grad_q must be a callable grad_q(t, x, u), got {type(grad_q).__name__}")
    out = np.zeros((samples.n_episodes, policy.n_params))
    for t in range(samples.n_steps):
        x = samples.states[:, t]
        mu = policy.mean(theta, x)  # a NumericalError if -K x overflows
        gq = _callback("grad_q(t, x, u)", grad_q(t, x, mu), t, mu.shape)
        with np.errstate(over="ignore", invalid="ignore"):
            out += samples.gamma ** t * policy.mean_jacobian_t(theta, x, gq)
    return _estimate("dpg", out)
