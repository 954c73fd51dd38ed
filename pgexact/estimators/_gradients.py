r"""Monte Carlo policy-gradient, Fisher and surrogate estimators on sampled :class:`Trajectories`.

Notation: :math:`\psi_t = \nabla_\theta \log\pi_\theta(a_t|s_t)`, :math:`d` = ``trajs.discount``
(γ, or 1 under geometric stopping), real steps :math:`t < L` (``trajs.lengths``),
:math:`G_t = \sum_{t \le t' < L} d^{t'-t} r_{t'}` the reward-to-go discounted from t.
Each estimator returns an :class:`Estimate` whose ``samples`` are the per-episode terms.

What the mean estimates (``trajs.objective``): ``"finite"`` — the finite-horizon quantity;
``"geometric"`` — the discounted infinite-horizon quantity (unbiased: :math:`\Pr(L > t) = \gamma^t`);
``"truncated"`` — the quantity of the truncated objective :math:`J_T`, i.e. of
``mdp.with_horizon(T)``, which is biased for the infinite-horizon one.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_float_array, check_theta
from ..policies.softmax import SoftmaxPolicy
from ..sampling.rollout import Trajectories
from ._advantage import gae, n_step_returns
from ._base import (
    Estimate,
    _episode_matrix,
    _score_sums,
    check_policy_for,
    check_trajectories,
    per_step,
    rewards_to_go,
    value_array,
)

__all__ = [
    "reinforce",
    "reward_to_go",
    "constant_baseline",
    "state_baseline",
    "advantage",
    "n_step",
    "gae_gradient",
    "normalized_advantage",
    "fit_value_baseline",
    "learned_baseline",
    "fisher_estimate",
    "trajectory_fisher_estimate",
    "surrogate_estimate",
    "surrogate_gradient_estimate",
]


def _setup(trajs: Any, policy: Any, theta: Any, name: str = "theta") -> tuple[Trajectories, np.ndarray]:
    trajs = check_trajectories(trajs)
    return trajs, check_policy_for(trajs, policy, theta, name=name)


def _masked_rewards(trajs: Trajectories) -> np.ndarray:
    return np.where(trajs.mask, trajs.rewards, 0.0)


def _discounted_rtg(trajs: Trajectories) -> np.ndarray:
    """:math:`d^t G_t` on real steps, 0 on padding, shape (N, T)."""
    G = rewards_to_go(_masked_rewards(trajs), trajs.discount)
    return np.where(trajs.mask, trajs.discounts()[None, :] * G, 0.0)


def reinforce(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any) -> Estimate:
    r"""REINFORCE with the total return.

    .. math::
        \hat g = \frac1N \sum_n \Big(\sum_{t<L} \psi_t\Big) \Big(\sum_{t<L} d^t r_t\Big)

    (Williams 1992, REINFORCE, summed over the episode; lecture notes, definition "REINFORCE
    policy gradient"). Unbiased for ∇J (finite horizon, geometric stopping); the score after an
    absorption is dropped, which changes nothing in expectation since rewards there are 0.

    Parameters
    ----------
    trajs : Trajectories
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)

    Returns
    -------
    Estimate
        ``samples`` shape (N, n_params).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> g = exact_mean(reinforce(tr, pol, theta).samples, p)  # exact expectation
    >>> bool(np.allclose(g, policy_gradient(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = _setup(trajs, policy, theta)
    R = (_masked_rewards(trajs) * trajs.discounts()[None, :]).sum(axis=1)
    w = trajs.mask * R[:, None]
    return Estimate(_score_sums(trajs, policy, theta, w))


def reward_to_go(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any) -> Estimate:
    r"""REINFORCE with rewards-to-go (causality: an action does not change past rewards).

    .. math:: \hat g = \frac1N \sum_n \sum_{t<L} \psi_t \, d^t G_t

    (Williams 1992; Sutton & Barto 2018, sec. 13.3, REINFORCE with the :math:`\gamma^t` of its pseudocode;
    lecture notes, definition "Policy gradient with Q-function"). Unbiased for ∇J.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> g = exact_mean(reward_to_go(tr, pol, theta).samples, p)
    >>> bool(np.allclose(g, policy_gradient(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = _setup(trajs, policy, theta)
    return Estimate(_score_sums(trajs, policy, theta, _discounted_rtg(trajs)))


def constant_baseline(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any, b: float) -> Estimate:
    r"""Reward-to-go with a constant baseline b.

    .. math:: \hat g = \frac1N \sum_n \sum_{t<L} \psi_t \, d^t (G_t - b)

    Unbiased for every b because :math:`E[\psi_t | s_t] = 0` (Williams 1992, the "reinforcement
    baseline"; Greensmith, Bartlett & Baxter 2004, JMLR 5).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> g = exact_mean(constant_baseline(tr, pol, theta, 10.0).samples, p)
    >>> bool(np.allclose(g, policy_gradient(mdp, pol, theta), atol=1e-12))
    True
    """
    if isinstance(b, bool) or not isinstance(b, (int, float, np.floating, np.integer)) or not np.isfinite(b):
        raise ValueError(f"b must be a finite real number, got {b!r}")
    trajs, theta = _setup(trajs, policy, theta)
    w = _discounted_rtg(trajs) - trajs.mask * trajs.discounts()[None, :] * float(b)
    return Estimate(_score_sums(trajs, policy, theta, w))


def state_baseline(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any, b: Any) -> Estimate:
    r"""Reward-to-go with a state-dependent baseline b(s) (or :math:`b_t(s)`).

    .. math:: \hat g = \frac1N \sum_n \sum_{t<L} \psi_t \, d^t (G_t - b(s_t))

    Unbiased for every fixed b, chosen independently of the episodes used (lecture notes,
    definition "PG with baseline"; Sutton & Barto 2018, eq. 13.11).

    Parameters
    ----------
    b : array_like, shape (S,) or (T, S)
        Stationary or time-indexed baseline.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> g = exact_mean(state_baseline(tr, pol, theta, np.array([3.0, -2.0])).samples, p)
    >>> bool(np.allclose(g, policy_gradient(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = _setup(trajs, policy, theta)
    base = value_array(trajs, b, name="b")[:, :-1]
    w = _discounted_rtg(trajs) - trajs.mask * trajs.discounts()[None, :] * base
    return Estimate(_score_sums(trajs, policy, theta, w))


def advantage(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any, A: Any) -> Estimate:
    r"""Policy gradient with a given advantage (or action-value) table.

    .. math:: \hat g = \frac1N \sum_n \sum_{t<L} d^t \psi_t \, A(s_t, a_t)

    Unbiased for ∇J when A is the exact advantage or action value (Sutton et al. 2000, Theorem 1;
    lecture notes, theorem "PG (advantage function)").

    Parameters
    ----------
    A : array_like, shape (S, A) or (T, S, A)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> A = evaluate(mdp, pol.probs(theta)).A  # time-indexed, shape (3, 2, 2)
    >>> g = exact_mean(advantage(tr, pol, theta, A).samples, p)
    >>> bool(np.allclose(g, policy_gradient(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = _setup(trajs, policy, theta)
    w = trajs.mask * trajs.discounts()[None, :] * per_step(trajs, A, "A")
    return Estimate(_score_sums(trajs, policy, theta, w))


def n_step(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any, V: Any, n: int) -> Estimate:
    r"""Policy gradient with n-step advantage estimates.

    .. math::
        \hat g = \frac1N \sum_n \sum_{t<L} d^t \psi_t \big(G^{(n)}_t - V(s_t)\big), \quad
        G^{(n)}_t = \sum_{k<n} d^k r_{t+k} + d^n V(s_{t+n})

    (Sutton & Barto 2018, eq. 7.1 and sec. 13.5), cut at termination (see
    :func:`n_step_returns`). With the exact V, unbiased for ∇J (finite horizon: V time-indexed,
    shape (H, S); geometric stopping: stationary V, the stop acting as termination). On
    truncated trajectories the bootstrap uses the given V at :math:`s_T`.

    Parameters
    ----------
    V : array_like, shape (S,) or (T, S)
    n : int

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> V = evaluate(mdp, pol.probs(theta)).V  # time-indexed, shape (3, 2)
    >>> g = exact_mean(n_step(tr, pol, theta, V, 2).samples, p)
    >>> bool(np.allclose(g, policy_gradient(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = _setup(trajs, policy, theta)
    v = value_array(trajs, V)
    G = n_step_returns(_masked_rewards(trajs), v, trajs.discount, n, terminated=trajs.terminated)
    w = np.where(trajs.mask, trajs.discounts()[None, :] * (G - v[:, :-1]), 0.0)
    return Estimate(_score_sums(trajs, policy, theta, w))


def gae_gradient(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any, V: Any, lam: float) -> Estimate:
    r"""Policy gradient with generalized advantage estimates.

    .. math:: \hat g = \frac1N \sum_n \sum_{t<L} d^t \psi_t \hat A^{GAE(\gamma, \lambda)}_t

    (Schulman et al. 2016, eq. 16 and sec. 3), :math:`\hat A` from :func:`gae` with
    ``gamma = trajs.discount`` and ``terminated = trajs.terminated``. Unbiased for every λ when V is
    exact; otherwise biased unless λ = 1 (the bias is predicted exactly by
    :func:`pgexact.estimators.gae_expected_gradient`).

    Parameters
    ----------
    V : array_like, shape (S,) or (T, S)
    lam : float

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> V = evaluate(mdp, pol.probs(theta)).V
    >>> g = exact_mean(gae_gradient(tr, pol, theta, V, 0.7).samples, p)
    >>> bool(np.allclose(g, policy_gradient(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = _setup(trajs, policy, theta)
    v = value_array(trajs, V)
    adv = gae(_masked_rewards(trajs), v, trajs.discount, lam, terminated=trajs.terminated)
    w = np.where(trajs.mask, trajs.discounts()[None, :] * adv, 0.0)
    return Estimate(_score_sums(trajs, policy, theta, w))


def normalized_advantage(
    trajs: Trajectories,
    policy: SoftmaxPolicy,
    theta: Any,
    advantages: Any,
    *,
    scale: bool = True,
) -> Estimate:
    r"""Policy gradient with batch-normalized advantages (as in common PPO implementations) — biased.

    .. math::
        \hat g = \frac1N \sum_n \sum_{t<L} d^t \psi_t \frac{\hat A_{n,t} - m}{s}

    with m and s the mean and standard deviation of :math:`\hat A` over all real steps of the
    batch (``scale=False``: s = 1). Because m and s depend on every episode the terms are not
    independent and the estimator is biased; with ``scale=False`` and
    :math:`\hat A = G_0` on one-step episodes, :math:`E\hat g = (1 - 1/N)\nabla J` exactly.

    Parameters
    ----------
    advantages : array_like, shape (N, T)
        Per-step advantage estimates (e.g. from :func:`gae`).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> from pgexact import rollout
    >>> batch = rollout(mdp, pol.probs(theta), 64, seed=0)
    >>> est = normalized_advantage(batch, pol, theta, batch.rewards)
    >>> est.samples.shape
    (64, 4)
    """
    trajs, theta = _setup(trajs, policy, theta)
    adv = as_float_array("advantages", advantages, shape=(trajs.n_episodes, trajs.n_steps))
    m = trajs.mask
    vals = adv[m]
    if vals.size == 0:
        raise ValueError("trajs has no real steps to normalize over")
    centred = adv - vals.mean()
    if scale:
        sd = vals.std()
        if sd == 0.0:
            raise ValueError("advantages have zero standard deviation over the batch; use scale=False")
        centred = centred / sd
    w = np.where(m, trajs.discounts()[None, :] * centred, 0.0)
    return Estimate(_score_sums(trajs, policy, theta, w))


def fit_value_baseline(trajs: Trajectories, *, features: Any = None) -> np.ndarray:
    r"""A value baseline fitted by least squares to the rewards-to-go of ``trajs``.

    .. math:: \tilde b = \arg\min_b \sum_n \sum_{t<L} (G_{n,t} - b(s_{n,t}))^2

    Tabular (``features=None``): :math:`b_t(s)` is the mean of :math:`G_t` over visits of s at
    time t (finite or truncated horizon; shape (T, S)), or :math:`b(s)` over all visits of s
    under geometric stopping (memoryless, shape (S,)); unvisited entries are 0. With
    ``features`` (S, k): :math:`b(s) = \phi(s)^\top w`, minimum-norm least squares (shape (S,)).
    This is the "baseline estimation" step of the lecture notes' algorithm "Policy gradient
    with a learned baseline".

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> b = fit_value_baseline(tr)  # per-(t, s) means of the rewards-to-go, shape (3, 2)
    >>> b.shape
    (3, 2)
    """
    trajs = check_trajectories(trajs)
    S, T = trajs.n_states, trajs.n_steps
    m = trajs.mask
    G = rewards_to_go(_masked_rewards(trajs), trajs.discount)
    s = trajs.states[:, :T]
    if features is not None:
        phi = as_float_array("features", features, ndim=2)
        if phi.shape[0] != S:
            raise ValueError(f"features must have shape (S, k) with S={S}, got {phi.shape}")
        w = np.linalg.lstsq(phi[s[m]], G[m], rcond=None)[0]
        return phi @ w
    if trajs.objective == "geometric":
        tot = np.bincount(s[m], weights=G[m], minlength=S)
        cnt = np.bincount(s[m], minlength=S)
        return np.divide(tot, cnt, out=np.zeros(S), where=cnt > 0)
    tt = np.broadcast_to(np.arange(T), s.shape)
    idx = (tt * S + s)[m]
    tot = np.bincount(idx, weights=G[m], minlength=T * S).reshape(T, S)
    cnt = np.bincount(idx, minlength=T * S).reshape(T, S)
    return np.divide(tot, cnt, out=np.zeros((T, S)), where=cnt > 0)


def learned_baseline(
    trajs_baseline: Trajectories,
    trajs_gradient: Trajectories,
    policy: SoftmaxPolicy,
    theta: Any,
    *,
    features: Any = None,
) -> Estimate:
    r"""The lecture notes' "policy gradient with a learned baseline" estimate.

    A critic :math:`\tilde b \approx V` is fitted by regression (:func:`fit_value_baseline`) on
    ``trajs_baseline``; the gradient is then estimated on *independent* episodes
    ``trajs_gradient``:

    .. math:: \tilde\nabla J = \frac1M \sum_{m} \sum_{t<L} \psi_t \, d^t (G_t - \tilde b(s_t))

    (lecture notes, algorithm "Policy gradient with a learned baseline"). Unbiased whatever the
    fit, given the independence. Passing the same episodes twice gives the biased "reused
    samples" estimator (the baseline is correlated with the scores it multiplies).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> from pgexact import rollout
    >>> critic = rollout(mdp, pol.probs(theta), 500, seed=1)
    >>> g = exact_mean(learned_baseline(critic, tr, pol, theta).samples, p)  # unbiased, any fit
    >>> bool(np.allclose(g, policy_gradient(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs_baseline = check_trajectories(trajs_baseline, "trajs_baseline")
    trajs_gradient = check_trajectories(trajs_gradient, "trajs_gradient")
    if trajs_baseline.objective != trajs_gradient.objective or (
        trajs_baseline.objective != "geometric" and trajs_baseline.n_steps != trajs_gradient.n_steps
    ):
        raise ValueError(
            "trajs_baseline and trajs_gradient must come from the same sampling setup "
            f"(objective {trajs_baseline.objective!r} vs {trajs_gradient.objective!r}, "
            f"steps {trajs_baseline.n_steps} vs {trajs_gradient.n_steps})"
        )
    b = fit_value_baseline(trajs_baseline, features=features)
    return state_baseline(trajs_gradient, policy, theta, b)


def _outer_table(policy: SoftmaxPolicy, theta: np.ndarray, S: int, A: int) -> np.ndarray:
    sc = policy.score(theta)
    return np.einsum("sak,sal->sakl", sc, sc).reshape(S * A, -1)


def fisher_estimate(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any) -> Estimate:
    r"""Estimate of the state-averaged Fisher matrix :math:`E_{s\sim d, a\sim\pi}[\psi\psi^\top]`.

    Per episode, over every *simulated* step (absorbed steps included: the exact core's
    occupancy keeps the mass of terminal states):

    .. math::
        \hat F = \frac{\sum_{t} d^t \psi_t\psi_t^\top}{\sum_{t<T} d^t} \;\text{(fixed horizon T)},
        \qquad \hat F = (1-\gamma)\sum_{t<L} \psi_t\psi_t^\top \;\text{(geometric stopping)}

    Unbiased for :func:`pgexact.fisher` (Kakade 2002, sec. 3; finite horizon: the normalized
    discounted time average of the marginals, as in :func:`pgexact.occupancy`).

    Returns
    -------
    Estimate
        ``samples`` shape (N, n_params, n_params).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> from pgexact import fisher
    >>> F = exact_mean(fisher_estimate(tr, pol, theta).samples, p)
    >>> bool(np.allclose(F, fisher(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = _setup(trajs, policy, theta)
    S, A, k = trajs.n_states, trajs.n_actions, policy.n_params
    w = trajs.simulated_mask * trajs.discounts()[None, :]
    if trajs.objective == "geometric":
        w = w * (1.0 - trajs.gamma)
    else:
        w = w / trajs.discounts().sum()
    F = np.asarray(_episode_matrix(trajs, w) @ _outer_table(policy, theta, S, A))
    return Estimate(F.reshape(trajs.n_episodes, k, k))


def trajectory_fisher_estimate(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any) -> Estimate:
    r"""Estimate of the trajectory Fisher matrix :math:`\sum_{t<T} E_{s\sim p_t, a\sim\pi}[\psi\psi^\top]`.

    .. math:: \hat F_\tau = \frac1N \sum_n \sum_{t<T} \psi_t \psi_t^\top

    over all T simulated steps (fixed horizons only). Unbiased for
    :func:`pgexact.trajectory_fisher` with ``horizon=T``; it also equals the covariance of the
    trajectory score :math:`\sum_t \psi_t` (cross terms vanish in expectation).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> from pgexact import trajectory_fisher
    >>> F = exact_mean(trajectory_fisher_estimate(tr, pol, theta).samples, p)
    >>> bool(np.allclose(F, trajectory_fisher(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = _setup(trajs, policy, theta)
    if trajs.objective == "geometric":
        raise ValueError(
            "trajs.objective is 'geometric': the trajectory Fisher needs a fixed horizon T "
            "(sample with horizon=T)"
        )
    S, A, k = trajs.n_states, trajs.n_actions, policy.n_params
    w = trajs.simulated_mask.astype(np.float64)
    F = np.asarray(_episode_matrix(trajs, w) @ _outer_table(policy, theta, S, A))
    return Estimate(F.reshape(trajs.n_episodes, k, k))


def _ratios(trajs: Trajectories, policy: SoftmaxPolicy, theta_old: np.ndarray, theta_new: np.ndarray) -> np.ndarray:
    logp_new = policy.log_probs(theta_new)
    logp_old = policy.log_probs(theta_old)
    s, a = trajs.states[:, :-1], trajs.actions
    return np.exp(logp_new[s, a] - logp_old[s, a])


def surrogate_estimate(
    trajs: Trajectories, policy: SoftmaxPolicy, theta_old: Any, theta_new: Any, A: Any
) -> Estimate:
    r"""Importance-sampled surrogate :math:`\bar A(\pi_{new})` from episodes of :math:`\pi_{old}`.

    .. math::
        \hat{\bar A} = \frac1N \sum_n \sum_{t<L} d^t
        \frac{\pi_{new}(a_t|s_t)}{\pi_{old}(a_t|s_t)} A_{old}(s_t, a_t)

    (Schulman et al. 2015, eq. 14; Kakade & Langford 2002, sec. 4). Unbiased for
    :func:`pgexact.surrogate` ``(mdp, pi_old, pi_new)`` when ``A`` is the exact advantage of
    :math:`\pi_{old}` and ``trajs`` were sampled from :math:`\pi_{old}`.

    Parameters
    ----------
    theta_old, theta_new : array_like, shape (n_params,)
    A : array_like, shape (S, A) or (T, S, A)

    Returns
    -------
    Estimate
        ``samples`` shape (N,).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> from pgexact import surrogate
    >>> A, theta_new = evaluate(mdp, pol.probs(theta)).A, theta + 0.3
    >>> est = exact_mean(surrogate_estimate(tr, pol, theta, theta_new, A).samples, p)
    >>> bool(np.isclose(est, surrogate(mdp, pol.probs(theta), pol.probs(theta_new)), atol=1e-12))
    True
    """
    trajs, theta_old = _setup(trajs, policy, theta_old, name="theta_old")
    theta_new = check_theta(theta_new, policy.n_params, name="theta_new")
    w = trajs.mask * trajs.discounts()[None, :] * per_step(trajs, A, "A")
    return Estimate((w * _ratios(trajs, policy, theta_old, theta_new)).sum(axis=1))


def surrogate_gradient_estimate(
    trajs: Trajectories, policy: SoftmaxPolicy, theta_old: Any, theta_new: Any, A: Any
) -> Estimate:
    r"""Gradient in :math:`\theta_{new}` of the importance-sampled surrogate.

    .. math::
        \hat\nabla = \frac1N \sum_n \sum_{t<L} d^t \frac{\pi_{new}(a_t|s_t)}{\pi_{old}(a_t|s_t)}
        \nabla_{\theta_{new}}\log\pi_{new}(a_t|s_t)\, A_{old}(s_t, a_t)

    Unbiased for :func:`pgexact.exact.surrogate_gradient`; at :math:`\theta_{new} = \theta_{old}`
    it is the advantage estimator of ∇J (Schulman et al. 2015, eq. 14 and after).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> from pgexact.exact import surrogate_gradient
    >>> A, theta_new = evaluate(mdp, pol.probs(theta)).A, theta + np.array([0.3, 0, 0, -0.2])
    >>> est = exact_mean(surrogate_gradient_estimate(tr, pol, theta, theta_new, A).samples, p)
    >>> bool(np.allclose(est, surrogate_gradient(mdp, pol, theta, theta_new), atol=1e-12))
    True
    """
    trajs, theta_old = _setup(trajs, policy, theta_old, name="theta_old")
    theta_new = check_theta(theta_new, policy.n_params, name="theta_new")
    w = trajs.mask * trajs.discounts()[None, :] * per_step(trajs, A, "A")
    w = w * _ratios(trajs, policy, theta_old, theta_new)
    return Estimate(_score_sums(trajs, policy, theta_new, w))
