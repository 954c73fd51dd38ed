r"""Fisher information matrices and the natural policy gradient.

Two Fisher matrices are offered and never confused:

* the **state-averaged** Fisher :math:`F = E_{s\sim d_\pi, a\sim\pi}[\nabla\log\pi\,\nabla\log\pi^\top]`
  (Kakade 2002, sec. 3), the one the natural policy gradient uses; with it the tabular NPG
  direction is :math:`A/(1-\gamma)` (Agarwal et al. 2021, Lemma 5.1 / eq. 14);
* the **trajectory** Fisher :math:`\sum_{t<T} E_{s\sim p_t, a\sim\pi}[\nabla\log\pi\,\nabla\log\pi^\top]`,
  the Fisher information of the trajectory distribution :math:`p_\theta(\tau)` (cross terms vanish
  because the expected score is zero).

Softmax parametrizations are invariant to per-state logit shifts, so F is singular; the natural
gradient returned is the minimum-norm solution :math:`F^+ \nabla J`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_horizon, check_memory, check_theta, check_time_steps
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy, TabularSoftmax
from ._checks import check_policy_theta
from ._krylov import check_tol
from .evaluation import _evaluate, _marginals, _visitation, _visitation_mass
from .gradients import gradient_weights

__all__ = ["fisher", "trajectory_fisher", "fisher_vector_product", "natural_gradient"]


def fisher(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any) -> np.ndarray:
    r"""State-averaged Fisher matrix, shape (n_params, n_params).

    .. math::

        F(\theta) = E_{s \sim d_\pi} E_{a \sim \pi_\theta(\cdot|s)}
        \left[\nabla_\theta \log\pi_\theta(a|s) \nabla_\theta \log\pi_\theta(a|s)^\top\right]

    with :math:`d_\pi` the normalized discounted occupancy (Kakade 2002, sec. 3); for a finite
    horizon, the normalized discounted time average of the marginals (:func:`occupancy`).
    Dense: for large ``TabularSoftmax`` problems use :func:`fisher_vector_product` or
    :func:`natural_gradient`, which never form it.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> F = fisher(mdp, TabularSoftmax(3, 2), np.zeros(6))
    >>> bool(np.allclose(F @ np.ones(6), 0.0))  # per-state shifts are in the null space
    True
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    _check_fisher_memory("fisher", mdp, policy)
    pi = policy._probs(theta)
    d = _visitation(mdp, pi) / _visitation_mass(mdp)
    score = policy.score(theta)
    return np.einsum("s,sa,sak,sal->kl", d, pi, score, score)


def _check_fisher_memory(
    what: str, mdp: FiniteMDP, policy: SoftmaxPolicy,
    advice: str = "use fisher_vector_product (F v without forming F) or natural_gradient",
) -> None:
    """Refuse a dense Fisher whose matrix and score tensor would exceed the limit of one call."""
    k, SA = policy.n_params, mdp.n_states * mdp.n_actions
    check_memory(f"{what} with n_params={k} and S*A={SA}", 8 * (k * k + 2 * SA * k), advice)


def trajectory_fisher(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, horizon: int | None = None
) -> np.ndarray:
    r"""Trajectory Fisher matrix :math:`\sum_{t<T} E_{s\sim p_t, a\sim\pi}[\nabla\log\pi \nabla\log\pi^\top]`.

    The Fisher information of the distribution of length-T trajectories (no discounting).

    Parameters
    ----------
    horizon : int, optional
        T; defaults to ``mdp.horizon``. Required for a discounted (``horizon=None``) MDP.

    Returns
    -------
    numpy.ndarray, shape (n_params, n_params)
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    T = check_horizon(horizon) if horizon is not None else mdp.horizon
    if T is None:
        raise ValueError("horizon is None and mdp.horizon is None: the trajectory Fisher needs a horizon T")
    check_memory(f"trajectory_fisher with horizon={T} and S={mdp.n_states}", 8 * T * mdp.n_states,
                 "use a shorter horizon")
    check_time_steps(f"trajectory_fisher with horizon={T}", T, "use a shorter horizon")
    _check_fisher_memory("trajectory_fisher", mdp, policy)
    pi = policy._probs(theta)
    p = _marginals(mdp, pi, T).sum(axis=0)
    score = policy.score(theta)
    return np.einsum("s,sa,sak,sal->kl", p, pi, score, score)


def fisher_vector_product(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, v: Any) -> np.ndarray:
    r"""State-averaged Fisher-vector product :math:`F v` without forming F, shape (n_params,).

    .. math:: F v = \sum_s d(s) \sum_a \pi(a|s)\, \nabla\log\pi(a|s)\, (\nabla\log\pi(a|s)^\top v)
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    v = check_theta(v, policy.n_params, name="v")
    pi = policy._probs(theta)
    d = _visitation(mdp, pi) / _visitation_mass(mdp)
    return policy._score_contract(pi, d[:, None] * pi * policy._score_dot(pi, v))


def natural_gradient(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, *, tol: float | None = None
) -> np.ndarray:
    r"""Natural policy gradient :math:`F^+ \nabla J`, the minimum-norm solution of :math:`F w = \nabla J`.

    F is the state-averaged Fisher (:func:`fisher`). For ``TabularSoftmax`` the block structure
    is used (no dense matrix): F is block diagonal with blocks
    :math:`d(s)(\mathrm{diag}\,\pi_s - \pi_s\pi_s^\top)` and
    :math:`\nabla J_s = \frac{d(s)}{1-\gamma}\, \pi_s \odot A(s, \cdot)` with
    :math:`\pi_s^\top A(s, \cdot) = 0`, so

    .. math:: w_s = \frac{1}{1-\gamma}\left(A(s, \cdot) - \overline{A(s, \cdot)}\right)

    on the support of :math:`\pi(\cdot|s)` (mean over that support; zero off it and where
    d(s) = 0): Kakade 2002, Theorem 1; Agarwal et al. 2021, Lemma 5.1. For a finite horizon,
    :math:`u_s = \sum_t \gamma^t p_t(s) A_t(s,\cdot) / d(s)` with d the normalized time average.
    For ``LinearSoftmax`` the dense Fisher is solved by ``numpy.linalg.lstsq`` (SVD, singular
    values below ``n_params * eps * max`` treated as zero), which returns the minimum-norm solution.
    ``tol``: sparse ``P`` only, relative residual of the Krylov solves (see :func:`evaluate`).

    Returns
    -------
    numpy.ndarray, shape (n_params,)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> pol = TabularSoftmax(3, 2)
    >>> w = natural_gradient(mdp, pol, np.zeros(6)).reshape(3, 2)
    >>> A = evaluate(mdp, pol.probs(np.zeros(6))).A
    >>> bool(np.allclose(w, (A - A.mean(axis=1, keepdims=True)) / (1 - 0.9)))
    True
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    pi = policy._probs(theta)
    return _natural_gradient(mdp, policy, theta, pi, _evaluate(mdp, pi, check_tol(tol)))


def _natural_gradient(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray, pi: np.ndarray, ev: Any
) -> np.ndarray:
    """:func:`natural_gradient` on validated arguments, given ``pi`` at ``theta`` and its evaluation."""
    if isinstance(policy, TabularSoftmax):
        if mdp.horizon is None:
            d = ev.d
            u = ev.A / (1.0 - mdp.gamma)
        else:
            disc = mdp.gamma ** np.arange(mdp.horizon)
            rho_t = disc[:, None] * ev.p  # (H, S)
            rho = rho_t.sum(axis=0)
            d = rho / rho.sum()
            with np.errstate(invalid="ignore", divide="ignore"):
                u = np.einsum("ts,tsa->sa", rho_t, ev.A) / rho[:, None] * rho.sum()
        support = pi > 0
        counts = support.sum(axis=1, keepdims=True)
        mean = np.where(support, u, 0.0).sum(axis=1, keepdims=True) / counts
        w = np.where(support & (d[:, None] > 0), u - mean, 0.0)
        return w.reshape(-1)
    g = policy._score_contract(pi, gradient_weights(mdp, pi, ev))
    _check_fisher_memory("natural_gradient", mdp, policy,
                         "solve F x = g by pgexact.exact.minimum_norm_solve with fisher_vector_product")
    score = policy.score(theta)
    d = ev.d if mdp.horizon is None else _visitation(mdp, pi) / _visitation_mass(mdp)
    F = np.einsum("s,sa,sak,sal->kl", d, pi, score, score)
    return np.linalg.lstsq(F, g, rcond=None)[0]
