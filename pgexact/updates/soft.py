r"""Entropy-regularized (soft) control: soft evaluation, improvement, policy and value iteration.

Soft control with temperature α > 0 (Haarnoja et al. 2017, eq. 2-4; Haarnoja et al. 2018, sec. 4.1):
the soft value of a policy adds α times its entropy at every visited state,

.. math::

    V^\pi_{soft}(s) = \sum_a \pi(a|s)\left[Q^\pi_{soft}(s, a) - \alpha \log\pi(a|s)\right], \qquad
    Q^\pi_{soft}(s, a) = r(s, a) + \gamma \sum_{s'} P(s'|s, a) V^\pi_{soft}(s'),

soft policy improvement is :math:`\pi'(\cdot|s) \propto \exp(Q^\pi_{soft}(s, \cdot)/\alpha)`
(Haarnoja et al. 2018, Lemma 2: :math:`Q^{\pi'}_{soft} \ge Q^\pi_{soft}`), and the soft-optimal
policy :math:`\pi^* \propto \exp(Q^*_{soft}/\alpha)` solves
:math:`Q^* = r + \gamma P\, (\alpha \log\sum_a \exp(Q^*(\cdot, a)/\alpha))`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy.special import entr, softmax

from ..errors import NumericalError
from ..exact._checks import check_mdp, check_pi
from ..exact.evaluation import evaluate
from ..models.finite_mdp import FiniteMDP
from .._validation import check_positive_finite, check_positive_int
from .planning import _feasible, _require_discounted, _tol

__all__ = [
    "SoftEvaluation",
    "soft_evaluate",
    "soft_improve",
    "SoftPolicyIterationResult",
    "soft_policy_iteration",
    "SoftOptimum",
    "soft_value_iteration",
]


@dataclass(frozen=True, eq=False)
class SoftEvaluation:
    r"""Soft (entropy-regularized) values of a policy.

    Attributes
    ----------
    J : float
        :math:`\mu_0^\top V_{soft}`.
    V : numpy.ndarray, shape (S,)
    Q : numpy.ndarray, shape (S, A)
    entropy : numpy.ndarray, shape (S,)
        :math:`H(\pi(\cdot|s)) = -\sum_a \pi \log\pi` (nats).
    """

    J: float
    V: np.ndarray
    Q: np.ndarray
    entropy: np.ndarray


def _alpha(alpha: Any) -> float:
    return check_positive_finite("alpha", alpha)


def _shifted(Q: np.ndarray, alpha: float, mask: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`(Q(s, a) - \max_b Q(s, b))/\alpha` over the feasible actions (:math:`-\infty` elsewhere), shape
    (S, A), and the row maximum, shape (S,).

    Shifting before dividing keeps every entry :math:`\le 0`: at a temperature so small that :math:`Q/\alpha`
    leaves float64, the soft value and policy become the hard maximum and the greedy policy, their limits,
    instead of :math:`\infty - \infty`."""
    z = Q if mask is None else np.where(mask, Q, -np.inf)
    top = z.max(axis=1)
    with np.errstate(over="ignore"):  # an entry below -1.8e308 is -inf: weight exp(-inf) = 0, its limit
        return (z - top[:, None]) / alpha, top


def _soft_policy(Q: np.ndarray, alpha: float, mask: np.ndarray | None) -> np.ndarray:
    r""":math:`\pi(a|s) \propto \exp(Q(s, a)/\alpha)` over the feasible actions (probability 0 elsewhere)."""
    return softmax(_shifted(Q, alpha, mask)[0], axis=1)


def _soft_value(Q: np.ndarray, alpha: float, mask: np.ndarray | None) -> np.ndarray:
    r""":math:`\alpha \log\sum_{a \text{ feasible}} \exp(Q(s, a)/\alpha)
    = \max_a Q(s, a) + \alpha \log\sum_a \exp((Q(s, a) - \max_b Q(s, b))/\alpha)`, shape (S,)."""
    z, top = _shifted(Q, alpha, mask)
    return top + alpha * np.log(np.exp(z).sum(axis=1))


def soft_evaluate(mdp: FiniteMDP, pi: Any, alpha: float) -> SoftEvaluation:
    r"""Soft policy evaluation (Haarnoja et al. 2018, Lemma 1), by one linear solve.

    .. math::

        V_{soft} = (I - \gamma P_\pi)^{-1}(r_\pi + \alpha H_\pi), \qquad
        Q_{soft} = r + \gamma P V_{soft}

    Parameters
    ----------
    mdp : FiniteMDP
        Discounted.
    pi : array_like, shape (S, A)
    alpha : float
        Temperature α > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.8, seed=0)
    >>> pi = np.array([[0.3, 0.7], [0.5, 0.5], [0.9, 0.1]])
    >>> ev = soft_evaluate(mdp, pi, alpha=0.5)
    >>> v = np.sum(pi * (ev.Q - 0.5 * np.log(pi)), axis=1)  # soft Bellman equation
    >>> bool(np.allclose(v, ev.V, rtol=0, atol=1e-12))
    True
    """
    mdp = check_mdp(mdp)
    _require_discounted(mdp, "soft_evaluate")
    pi = check_pi(mdp, pi)
    alpha = _alpha(alpha)
    H = entr(pi).sum(axis=1)
    # the entropy bonus as a reward: r'(s, a) = r(s, a) - alpha log pi(a|s) where pi > 0
    # (entries with pi = 0 are never weighted, so any finite value serves there)
    with np.errstate(divide="ignore", over="ignore"):
        bonus = np.where(pi > 0, -alpha * np.log(np.where(pi > 0, pi, 1.0)), 0.0)
        reward = mdp.r + bonus
    try:
        shifted = FiniteMDP(mdp.P, reward, mdp.mu0, mdp.gamma, None)
    except ValueError as exc:  # the regularized reward left the range of float64 closed forms
        raise ValueError(
            f"alpha={alpha:g} makes the entropy-regularized reward r - alpha log pi too large: {exc}"
        ) from None
    V = np.array(evaluate(shifted, pi).V)
    Q = mdp.r + mdp.gamma * mdp._expected_next(V)
    return SoftEvaluation(J=float(mdp.mu0 @ V), V=V, Q=Q, entropy=H)


def soft_improve(mdp: FiniteMDP, pi: Any, alpha: float) -> np.ndarray:
    r"""Soft policy improvement :math:`\pi'(a|s) = \exp(Q^\pi_{soft}(s,a)/\alpha) / \sum_b \exp(Q^\pi_{soft}(s,b)/\alpha)`.

    (Haarnoja et al. 2018, eq. 4 and Lemma 2: :math:`Q^{\pi'}_{soft} \ge Q^{\pi}_{soft}`.)
    The sums run over the feasible actions of ``mdp.action_mask`` (infeasible ones get
    probability 0). Returns the policy matrix, shape (S, A).
    """
    alpha = _alpha(alpha)
    Q = soft_evaluate(mdp, pi, alpha).Q
    return _soft_policy(Q, alpha, _feasible(mdp))


@dataclass(frozen=True, eq=False)
class SoftPolicyIterationResult:
    r"""Result of :func:`soft_policy_iteration`.

    Attributes
    ----------
    policy : numpy.ndarray, shape (S, A)
    evaluation : SoftEvaluation
        Soft values of ``policy``.
    n_iterations : int
    J_history : numpy.ndarray
        Soft J of every iterate (non-decreasing).
    change : float
        :math:`\max_{s,a} |\pi_{k+1} - \pi_k|` at the last iteration.
    """

    policy: np.ndarray
    evaluation: SoftEvaluation
    n_iterations: int
    J_history: np.ndarray
    change: float


def soft_policy_iteration(
    mdp: FiniteMDP, alpha: float, pi0: Any = None, *, tol: float = 1e-12, max_iter: int = 10_000
) -> SoftPolicyIterationResult:
    r"""Soft policy iteration: alternate :func:`soft_evaluate` and :func:`soft_improve`.

    Converges to the soft-optimal policy :math:`\pi^* \propto \exp(Q^*_{soft}/\alpha)`
    (Haarnoja et al. 2018, Theorem 1); stops when :math:`\max|\pi_{k+1} - \pi_k| \le` ``tol``.
    The default start ``pi0`` is uniform over the feasible actions of ``mdp.action_mask``, and
    every iterate puts probability 0 on the infeasible ones.

    Raises
    ------
    NumericalError
        If not converged within ``max_iter`` iterations.
    """
    mdp = check_mdp(mdp)
    _require_discounted(mdp, "soft_policy_iteration")
    alpha = _alpha(alpha)
    tol = _tol(tol)
    max_iter = check_positive_int("max_iter", max_iter)
    S, A = mdp.n_states, mdp.n_actions
    mask = _feasible(mdp)
    if pi0 is not None:
        pi = check_pi(mdp, pi0, name="pi0")
    else:  # uniform over the feasible actions
        pi = np.full((S, A), 1.0 / A) if mask is None else mask / mask.sum(axis=1, keepdims=True)
    ev = soft_evaluate(mdp, pi, alpha)
    Js = [ev.J]
    for k in range(1, max_iter + 1):
        new = _soft_policy(ev.Q, alpha, mask)
        change = float(np.max(np.abs(new - pi)))
        pi = new
        ev = soft_evaluate(mdp, pi, alpha)
        Js.append(ev.J)
        if change <= tol:
            return SoftPolicyIterationResult(pi, ev, k, np.array(Js), change)
    raise NumericalError(f"soft policy iteration did not reach tol={tol:g} in max_iter={max_iter} iterations")


@dataclass(frozen=True, eq=False)
class SoftOptimum:
    r"""The soft-optimal values and policy.

    Attributes
    ----------
    Q : numpy.ndarray, shape (S, A)
        :math:`Q^*_{soft}`.
    V : numpy.ndarray, shape (S,)
        :math:`V^* = \alpha \log\sum_a \exp(Q^*/\alpha)`.
    policy : numpy.ndarray, shape (S, A)
        :math:`\pi^* \propto \exp(Q^*/\alpha)`.
    J : float
    n_iterations : int
    error_bound : float
        Bound on :math:`\|Q - Q^*\|_\infty`: :math:`\gamma/(1-\gamma)\|Q_{k+1} - Q_k\|_\infty`.
    """

    Q: np.ndarray
    V: np.ndarray
    policy: np.ndarray
    J: float
    n_iterations: int
    error_bound: float


def soft_value_iteration(
    mdp: FiniteMDP, alpha: float, *, tol: float = 1e-12, max_iter: int = 1_000_000
) -> SoftOptimum:
    r"""Soft value iteration :math:`Q_{k+1} = r + \gamma P\, \alpha \log\sum_a \exp(Q_k/\alpha)`.

    The soft Bellman operator is a γ-contraction in the sup norm (Haarnoja et al. 2017,
    Appendix A.2), so iteration stops at the a-posteriori bound
    :math:`\|Q_{k+1} - Q^*\|_\infty \le \frac{\gamma}{1-\gamma}\|Q_{k+1} - Q_k\|_\infty \le`
    ``tol`` :math:`\|Q_{k+1}\|_\infty`: a relative tolerance, whatever the scale of the rewards
    and of α (as in :func:`pgexact.updates.value_iteration`; the bound counts the iteration
    error, not the rounding of the computed steps). With an ``action_mask`` the log-sum-exp and
    the policy run over the feasible actions only (infeasible ones get probability 0). When rounding keeps the bound above that
    (the iterates stop contracting for two discount horizons :math:`2/(1-\gamma)`, at least 50
    steps), :class:`NumericalError` says how far it got.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> opt = soft_value_iteration(mdp, alpha=0.3)
    >>> bool(np.allclose(soft_improve(mdp, opt.policy, 0.3), opt.policy, rtol=0, atol=1e-9))  # fixed point
    True
    """
    mdp = check_mdp(mdp)
    _require_discounted(mdp, "soft_value_iteration")
    alpha = _alpha(alpha)
    tol = _tol(tol)
    max_iter = check_positive_int("max_iter", max_iter)
    g = mdp.gamma
    mask = _feasible(mdp)
    patience = max(50, int(math.ceil(2.0 / (1.0 - g))))
    best_diff, best_k = math.inf, 0
    Q = np.array(mdp.r)
    for k in range(1, max_iter + 1):
        with np.errstate(over="ignore", invalid="ignore"):  # an overflow is reported just below
            V = _soft_value(Q, alpha, mask)
        if not np.all(np.isfinite(V)):
            raise ValueError(
                f"alpha={alpha!r} is too large: the soft value alpha * log(sum(exp(Q / alpha))) overflows "
                "float64; use a smaller temperature alpha"
            )
        Q_new = mdp.r + g * mdp._expected_next(V)
        diff = float(np.max(np.abs(Q_new - Q)))
        Q = Q_new
        bound = g / (1.0 - g) * diff
        Q_norm = float(np.max(np.abs(Q)))
        if bound <= tol * Q_norm:
            V = _soft_value(Q, alpha, mask)
            return SoftOptimum(Q, V, _soft_policy(Q, alpha, mask), float(mdp.mu0 @ V), k, bound)
        if diff < best_diff:
            best_diff, best_k = diff, k
        if k - best_k > patience:
            raise NumericalError(
                f"soft value iteration: rounding keeps the error bound at {bound:.3g} = "
                f"{bound / max(Q_norm, np.finfo(float).tiny):.3g} ||Q|| after {k} iterations, above "
                f"tol={tol:g} (relative); loosen tol or use soft_policy_iteration"
            )
    raise NumericalError(f"soft value iteration did not reach tol={tol:g} in max_iter={max_iter} iterations")
