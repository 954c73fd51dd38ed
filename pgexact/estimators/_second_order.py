r"""Likelihood-ratio estimators of the policy Hessian :math:`\nabla^2 J`.

For a trajectory density :math:`p_\theta(\tau)` and a return R not depending on θ,
:math:`\nabla^2 E[R] = E\big[R\,(\nabla\log p\,\nabla\log p^\top + \nabla^2\log p)\big]`, and
:math:`\nabla\log p = \sum_t \psi_t`, :math:`\nabla^2\log p = \sum_t \nabla^2\log\pi(a_t|s_t)`
(the dynamics do not depend on θ). For a softmax with logits linear in θ,
:math:`\nabla^2\log\pi(a|s) = -F_s` with :math:`F_s = \sum_b \pi(b|s)\psi(s, b)\psi(s, b)^\top`,
whatever a. Two unbiased forms (finite horizon, or geometric stopping for the discounted J, as
:func:`pgexact.estimators.reinforce`):

.. math::

    \hat H_{\rm total} &= R\,\Big[\Big(\sum_{t<L}\psi_t\Big)\Big(\sum_{t<L}\psi_t\Big)^\top - \sum_{t<L} F_{s_t}\Big],
    \qquad R = \sum_{t<L} d^t r_t,\\
    \hat H_{\rm to\,go} &= \sum_{t<L} d^t r_t\,\Big[U_t U_t^\top - \sum_{u\le t} F_{s_u}\Big],
    \qquad U_t = \sum_{u\le t}\psi_u ,

the second by causality (the reward at t depends only on the actions up to t). The reward-to-go
form is the second derivative of the DiCE objective :math:`\sum_t d^t r_t\, \boxdot(\{a_u\}_{u\le t})`
(Foerster et al. 2018, "DiCE: the infinitely differentiable Monte Carlo estimator", ICML, sec. 4,
without a baseline); dropping the :math:`F` term (a "score outer product only" Hessian) is
biased by :math:`-E[R\sum_t F_{s_t}]`. Per-episode terms, shape (n_params, n_params): meant for
checks on small problems (memory N·n²).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_memory
from ..policies.softmax import SoftmaxPolicy
from ..sampling.trajectories import Trajectories
from ._base import Estimate, check_samples_policy

__all__ = ["hessian_reinforce", "hessian_reward_to_go"]


def _padded_terms(trajs: Trajectories, policy: SoftmaxPolicy, theta: np.ndarray):
    """``(psi (N, T, n), weights d^t r_t (N, T), F (S, n, n), states (N, T), mask (N, T))`` on real steps."""
    N, T, n, S = trajs.n_episodes, trajs.n_steps, policy.n_params, trajs.n_states
    check_memory(
        f"a Hessian estimator with N={N} episodes of T={T} steps and n_params={n}",
        8 * (N * T * n + 2 * N * n * n + S * n * n + S * trajs.n_actions * n),
        "use fewer episodes per call and average the estimates",
    )
    mask = trajs.mask
    states = np.where(mask, trajs.states[:, :T], 0)
    actions = np.where(mask, trajs.actions, 0)
    score = policy.score(theta)  # (S, A, n)
    pi = policy.probs(theta)
    F = np.einsum("sa,sai,saj->sij", pi, score, score)
    psi = score[states, actions] * mask[:, :, None]
    w = trajs.rewards * trajs.discounts()[None, :] * mask
    return psi, w, F, states, mask


def _to_go(w: np.ndarray) -> np.ndarray:
    r""":math:`\sum_{t' \ge t} w[n, t']` per episode, shape (N, T)."""
    return np.cumsum(w[:, ::-1], axis=1)[:, ::-1]


def _scatter_F(weights: np.ndarray, states: np.ndarray, F: np.ndarray) -> np.ndarray:
    r""":math:`\sum_t \text{weights}[n, t]\,F_{s_t}` per episode, shape (N, n, n)."""
    N, T = weights.shape
    S, n = F.shape[0], F.shape[1]
    per_state = np.zeros((N, S))
    np.add.at(per_state, (np.repeat(np.arange(N), T), states.reshape(-1)), weights.reshape(-1))
    return (per_state @ F.reshape(S, n * n)).reshape(N, n, n)


def hessian_reinforce(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any) -> Estimate:
    r"""Likelihood-ratio Hessian estimator with the total return (module docstring).

    .. math:: \hat H = \frac1N\sum_n R_n\Big[\Big(\sum_{t<L}\psi_t\Big)\Big(\sum_{t<L}\psi_t\Big)^\top - \sum_{t<L}F_{s_t}\Big]

    Unbiased for :math:`\nabla^2 J` (finite horizon, or geometric stopping for the discounted J).

    Returns
    -------
    Estimate
        ``samples`` shape (N, n_params, n_params).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, hessian
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # every trajectory, exactly
    >>> H = exact_mean(hessian_reinforce(tr, pol, theta).samples, p)
    >>> bool(np.allclose(H, hessian(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = check_samples_policy(trajs, policy, theta)
    psi, w, F, states, mask = _padded_terms(trajs, policy, theta)
    R = w.sum(axis=1)
    u = psi.sum(axis=1)
    out = np.einsum("ni,nj->nij", u, u)
    out -= _scatter_F(mask, states, F)  # the F of every visited state
    out *= R[:, None, None]
    return Estimate(out)


def hessian_reward_to_go(trajs: Trajectories, policy: SoftmaxPolicy, theta: Any) -> Estimate:
    r"""Likelihood-ratio Hessian estimator with causality (the DiCE Hessian without baseline).

    .. math:: \hat H = \frac1N\sum_n\sum_{t<L} d^t r_t\Big[U_t U_t^\top - \sum_{u\le t}F_{s_u}\Big],
        \qquad U_t = \sum_{u\le t}\psi_u

    (module docstring; Foerster et al. 2018, sec. 4). Unbiased for :math:`\nabla^2 J`. The F
    terms are summed as :math:`\sum_u F_{s_u}\sum_{t\ge u} d^t r_t`.

    Returns
    -------
    Estimate
        ``samples`` shape (N, n_params, n_params).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, hessian
    >>> from pgexact.estimators import enumerate_trajectories, exact_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=0)
    >>> pol, theta = TabularSoftmax(2, 2), np.array([0.5, -0.5, 0.2, 0.1])
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))
    >>> H = exact_mean(hessian_reward_to_go(tr, pol, theta).samples, p)
    >>> bool(np.allclose(H, hessian(mdp, pol, theta), atol=1e-12))
    True
    """
    trajs, theta = check_samples_policy(trajs, policy, theta)
    psi, w, F, states, mask = _padded_terms(trajs, policy, theta)
    U = np.cumsum(psi, axis=1)
    out = np.einsum("nt,nti,ntj->nij", w, U, U)
    out -= _scatter_F(_to_go(w) * mask, states, F)  # F_{s_u} weighted by sum_{t >= u} d^t r_t
    return Estimate(out)
