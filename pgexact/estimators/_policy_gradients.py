r"""Monte Carlo policy-gradient estimators on sampled :class:`Trajectories`: REINFORCE and its variance reductions.

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

from .._validation import check_positive_int
from ..policies.softmax import SoftmaxPolicy
from ..sampling.trajectories import Trajectories
from . import _steps as st
from ._base import Estimate, check_samples_policy, check_unit_interval

__all__ = [
    "reinforce",
    "reward_to_go",
    "constant_baseline",
    "state_baseline",
    "advantage",
    "n_step",
    "gae_gradient",
    "normalized_advantage",
]


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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    real = st.real(trajs)
    R = trajs._per_episode_sum(trajs.flat_rewards * real * st.discounts(trajs))
    return Estimate(st.score_sums(trajs, policy, theta, real * R[trajs.steps.episode]))


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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    w = st.real(trajs) * st.discounts(trajs) * st.rewards_to_go(trajs)
    return Estimate(st.score_sums(trajs, policy, theta, w))


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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    w = st.real(trajs) * st.discounts(trajs) * (st.rewards_to_go(trajs) - float(b))
    return Estimate(st.score_sums(trajs, policy, theta, w))


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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    base, _ = st.values(trajs, b, name="b")
    w = st.real(trajs) * st.discounts(trajs) * (st.rewards_to_go(trajs) - base)
    return Estimate(st.score_sums(trajs, policy, theta, w))


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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    w = st.real(trajs) * st.discounts(trajs) * st.table(trajs, A, "A")
    return Estimate(st.score_sums(trajs, policy, theta, w))


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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    n = check_positive_int("n", n)
    v, v_next = st.values(trajs, V)
    G = st.n_step_returns(trajs, v, v_next, n)
    w = st.real(trajs) * st.discounts(trajs) * (G - v)
    return Estimate(st.score_sums(trajs, policy, theta, w))


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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    lam = check_unit_interval("lam", lam)
    v, v_next = st.values(trajs, V)
    w = st.discounts(trajs) * st.gae(trajs, v, v_next, lam)
    return Estimate(st.score_sums(trajs, policy, theta, w))


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

    with m and s the mean and the population standard deviation (divisor M, the number of real
    steps, numpy's default ``ddof=0``; ``torch.std``, which Stable-Baselines3 and CleanRL use,
    divides by M − 1) of :math:`\hat A` over all real steps of the batch (``scale=False``: s = 1).
    Because m and s depend on every episode the terms are not independent and the estimator is
    biased; with ``scale=False`` and :math:`\hat A = G_0` on one-step episodes,
    :math:`E\hat g = (1 - 1/N)\nabla J` exactly.

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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    adv = st.as_step_weights(trajs, advantages, "advantages")
    real = trajs.steps.real
    vals = adv[real]
    if vals.size == 0:
        raise ValueError("trajs has no real steps to normalize over")
    centred = adv - vals.mean()
    if scale:
        sd = vals.std()
        if sd == 0.0:
            raise ValueError("advantages have zero standard deviation over the batch; use scale=False")
        centred = centred / sd
    w = np.where(real, st.discounts(trajs) * centred, 0.0)
    return Estimate(st.score_sums(trajs, policy, theta, w))
