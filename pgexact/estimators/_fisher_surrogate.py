r"""Monte Carlo estimates of the Fisher matrices and of the importance-sampled surrogate."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_theta
from ..policies.softmax import SoftmaxPolicy
from ..sampling.trajectories import Trajectories
from . import _steps as st
from ._base import Estimate, check_samples_policy

__all__ = [
    "fisher_estimate",
    "trajectory_fisher_estimate",
    "surrogate_estimate",
    "surrogate_gradient_estimate",
]


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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    S, A, k = trajs.n_states, trajs.n_actions, policy.n_params
    w = st.discounts(trajs)  # every simulated step (absorbed ones included)
    if trajs.objective == "geometric":
        w = w * (1.0 - trajs.gamma)
    else:
        w = w / trajs.discounts().sum()
    F = np.asarray(st.episode_matrix(trajs, w) @ _outer_table(policy, theta, S, A))
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
    trajs, theta = check_samples_policy(trajs, policy, theta)
    if trajs.objective == "geometric":
        raise ValueError(
            "trajs.objective is 'geometric': the trajectory Fisher needs a fixed horizon T "
            "(sample with horizon=T)"
        )
    S, A, k = trajs.n_states, trajs.n_actions, policy.n_params
    w = np.ones(trajs.n_transitions)
    F = np.asarray(st.episode_matrix(trajs, w) @ _outer_table(policy, theta, S, A))
    return Estimate(F.reshape(trajs.n_episodes, k, k))


def _ratios(trajs: Trajectories, policy: SoftmaxPolicy, theta_old: np.ndarray, theta_new: np.ndarray) -> np.ndarray:
    logp_new = policy.log_probs(theta_new)
    logp_old = policy.log_probs(theta_old)
    sv = trajs.steps
    with np.errstate(over="ignore"):
        return np.exp(logp_new[sv.state, sv.action] - logp_old[sv.state, sv.action])


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
    trajs, theta_old = check_samples_policy(trajs, policy, theta_old, name="theta_old")
    theta_new = check_theta(theta_new, policy.n_params, name="theta_new")
    w = st.real(trajs) * st.discounts(trajs) * st.table(trajs, A, "A")
    with np.errstate(over="ignore", invalid="ignore"):
        return Estimate(trajs._per_episode_sum(w * _ratios(trajs, policy, theta_old, theta_new)))


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
    trajs, theta_old = check_samples_policy(trajs, policy, theta_old, name="theta_old")
    theta_new = check_theta(theta_new, policy.n_params, name="theta_new")
    w = st.real(trajs) * st.discounts(trajs) * st.table(trajs, A, "A")
    with np.errstate(over="ignore", invalid="ignore"):
        w = w * _ratios(trajs, policy, theta_old, theta_new)
    return Estimate(st.score_sums(trajs, policy, theta_new, w))
