r"""Variance-minimizing baselines, in closed form from the exact moments of the estimators.

Two families of the reward-to-go estimator :math:`\hat g(b) = \sum_t \psi_t\, d^t (G_t - b_t)`
(:func:`pgexact.estimators.constant_baseline`, :func:`pgexact.estimators.state_baseline`),
coordinate by coordinate (each parameter :math:`\theta_k` may use its own baseline):

* **constant** :math:`b_t = b`: with :math:`z = \sum_t d^t\psi_t` (mean zero),
  :math:`\hat g_k(b) = \hat g_k(0) - b z_k` and
  :math:`\mathrm{Var}\,\hat g_k(b) = \mathrm{Var}\,\hat g_k(0) - 2b\,E[\hat g_k(0) z_k] + b^2 E[z_k^2]`,
  minimized by :math:`b^*_k = E[\hat g_k(0) z_k] / E[z_k^2]` (Greensmith, Bartlett & Baxter 2004,
  JMLR 5, Theorem 8 for the constant baseline; Peters & Schaal 2008, Neural Networks 21, eq. 11
  per coordinate).
* **state- and time-dependent** :math:`b_t = b_t(s_t)`: the variance is a quadratic in the
  :math:`H S` numbers :math:`b_t(s)`,
  :math:`\mathrm{Var}\,\hat g_k(b) = \mathrm{Var}\,\hat g_k(0) - 2\sum_{t,s} c_{t,s} b_t(s) + \sum_{t,s} M_{t,s} b_t(s)^2`,
  whose Hessian is diagonal because a later score is conditionally centred given the past:
  :math:`M_{t,s} = d^{2t} p_t(s) E_{a\sim\pi}[\psi_k(s, a)^2]`. With
  :math:`c_{t,s} = d^t E[1\{s_t = s\}\psi_{t,k}\,\hat g_k(0)]`, the minimizer is
  :math:`b^*_t(s) = c_{t,s}/M_{t,s}` and the minimum
  :math:`\mathrm{Var}\,\hat g_k(0) - \sum_{t,s} c_{t,s}^2/M_{t,s}`. The cross moment splits into
  the steps before t (a forward recursion of :math:`E[\sum_{u<t}\psi_u 1\{s_t = s\}]`), step t
  (:math:`E_a[\psi_k^2 Q_t]`) and the steps after t (the column recursion of
  :mod:`pgexact.estimators.moments`). This is the trajectory-level optimum; the per-state
  formula :math:`E_a[\psi_k^2 Q_t(s, a)]/E_a[\psi_k^2]` of Greensmith et al. (2004, Theorem 13)
  and Peters & Schaal (2008) is its first term only (it ignores the correlation of step t with
  the other steps), and :math:`V_t(s)` (the usual choice) is optimal for neither.

Every variance here is exact (no sampling); :func:`pgexact.estimators.estimator_moments` with the
returned baselines reproduces the reported minima.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import ReadOnlyOnCopy, freeze_arrays
from .._validation import number_of_steps
from ..exact._checks import check_policy_theta
from ..exact.evaluation import evaluate
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy
from . import geometric_moments as gm
from .moments import _state_average, _Transitions, estimator_moments

__all__ = ["OptimalBaselines", "optimal_baselines"]


@dataclass(frozen=True, eq=False)
class OptimalBaselines(ReadOnlyOnCopy):
    r"""Variance-minimizing baselines per parameter coordinate and the variances they achieve.

    Attributes
    ----------
    constant : numpy.ndarray, shape (n_params,)
        :math:`b^*_k`, the best constant baseline for coordinate k.
    constant_trace : float
        The one constant :math:`b` minimizing :math:`\mathrm{tr\,Cov}\,\hat g(b)`:
        :math:`E\langle\hat g(0), z\rangle / E\|z\|^2`.
    state : numpy.ndarray, shape (n_params, H, S), or (n_params, S) under geometric stopping
        :math:`b^*_{k,t}(s)`, the best time-indexed state baseline for coordinate k (0 where
        :math:`M_{t,s} = 0`: the baseline does not matter there); under geometric stopping the
        best stationary one :math:`b^*_k(s)` (the stop is memoryless: t is not observed).
    per_state : numpy.ndarray, shape (n_params, H, S) or (n_params, S)
        The per-state formula :math:`E_a[\psi_k^2 Q_t]/E_a[\psi_k^2]` (Greensmith et al. 2004,
        Theorem 13), for comparison.
    variance_none, variance_constant, variance_state, variance_value : numpy.ndarray, shape (n_params,)
        Per-coordinate variances of one episode's estimate with no baseline (reward-to-go), the
        best constant, the best state baseline, and :math:`b_t(s) = V_t(s)`.
    """

    constant: np.ndarray
    constant_trace: float
    state: np.ndarray
    per_state: np.ndarray
    variance_none: np.ndarray
    variance_constant: np.ndarray
    variance_state: np.ndarray
    variance_value: np.ndarray

    def __post_init__(self) -> None:
        freeze_arrays(self, ("constant", "state", "per_state", "variance_none", "variance_constant",
                          "variance_state", "variance_value"))


def _state_cross_moments(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray, H: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""``(c, M, Q)``: :math:`c_{k,t,s}`, :math:`M_{k,t,s}` (shape (d, H, S)) and :math:`Q_t` (H, S, A)."""
    S, A, n = mdp.n_states, mdp.n_actions, policy.n_params
    g = mdp.gamma
    pi = policy.probs(theta)
    pif = pi.reshape(-1)
    live = np.repeat(~np.asarray(mdp.terminal), A)
    C = policy.score(theta).reshape(S * A, n) * live[:, None]  # padding steps carry no score
    P = _Transitions(mdp)
    r = mdp.r.reshape(-1)
    # backward: Q_t(x) = E[G_t | x_t = x] and the column block PU_t = E[sum_{u>t} d^u G_u psi_u^T | x_t]
    Q = np.empty((H, S * A))
    PU = np.empty((H, S * A, n))
    Ubar = np.zeros((S, n))
    q_bar = np.zeros(S)
    for t in range(H - 1, -1, -1):
        out = P(np.concatenate([Ubar, q_bar[:, None]], axis=1))
        PU[t] = out[:, :n]
        Q[t] = r + g * out[:, n]
        U = (g**t * Q[t])[:, None] * C + PU[t]
        Ubar = _state_average(pif, U, S, A)
        q_bar = _state_average(pif, Q[t], S, A)
    # forward: p_t(s) and F_t(s) = E[sum_{u<t} psi_u 1{s_t = s}]
    p = np.empty((H, S))
    F = np.zeros((S, n))
    c = np.empty((n, H, S))
    M = np.empty((n, H, S))
    p[0] = mdp.mu0
    Cs = C.reshape(S, A, n)
    Qs = Q.reshape(H, S, A)
    PUs = PU.reshape(H, S, A, n)
    for t in range(H):
        dt = g**t
        psi2 = np.einsum("sa,sak->sk", pi, Cs * Cs)  # E_a[psi_k^2 | s]
        psiQ = np.einsum("sa,sak->sk", pi, Cs * Qs[t][:, :, None])  # E_a[psi_k Q_t | s]
        psi2Q = np.einsum("sa,sak->sk", pi, Cs * Cs * Qs[t][:, :, None])
        after = np.einsum("sa,sak->sk", pi, Cs * PUs[t])  # E_a[psi_k (sum_{u>t} ...)_k | s]
        c[:, t, :] = (dt * (p[t][:, None] * (dt * psi2Q + after) + dt * F * psiQ)).T
        M[:, t, :] = (dt * dt * p[t][:, None] * psi2).T
        if t + 1 < H:
            w = (pi * p[t][:, None]).reshape(-1)
            F = P.back(pif[:, None] * np.repeat(F, A, axis=0) + w[:, None] * C)
            p[t + 1] = P.back(w)
    return c, M, Qs


def optimal_baselines(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, *, horizon: int | None = None) -> OptimalBaselines:
    r"""The variance-minimizing constant and state-dependent baselines, per parameter coordinate.

    .. math::
        b^*_k = \frac{E[\hat g_k(0)\, z_k]}{E[z_k^2]}, \qquad
        b^*_{k,t}(s) = \frac{d^t E[1\{s_t = s\}\,\psi_{t,k}\,\hat g_k(0)]}{d^{2t} p_t(s)\, E_{a\sim\pi}[\psi_k(s,a)^2]}

    for the reward-to-go estimator :math:`\hat g(b) = \sum_t\psi_t d^t(G_t - b_t)` (module
    docstring; Greensmith, Bartlett & Baxter 2004; Peters & Schaal 2008).

    Parameters
    ----------
    mdp : FiniteMDP
        Finite horizon; discounted with ``horizon=T`` (truncated objective); or discounted
        without ``horizon``: geometric stopping (``rollout(..., geometric=True)``), with
        stationary baselines :math:`b(s)`, whose Hessian is still diagonal
        (:math:`M_s = \nu(s) E_a[\psi_k^2]`, ν the state occupancy).
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)
    horizon : int, optional
        Discounted mdp only: T.

    Returns
    -------
    OptimalBaselines

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, evaluate
    >>> from pgexact.estimators import estimator_moments
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, horizon=5, seed=0)
    >>> pol, theta = TabularSoftmax(3, 2), np.linspace(-1, 1, 6)
    >>> opt = optimal_baselines(mdp, pol, theta)
    >>> bool(np.all(opt.variance_state <= opt.variance_value + 1e-12))  # better than V_t(s)
    True
    >>> k = 0  # the reported minimum is what the estimator with that baseline achieves
    >>> mom = estimator_moments(mdp, pol, theta, "state_baseline", b=opt.state[k])
    >>> bool(np.isclose(mom.covariance[k, k], opt.variance_state[k], rtol=1e-10))
    True
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    geometric = mdp.horizon is None and horizon is None
    H = 0 if geometric else number_of_steps(mdp.horizon, horizon, "pass horizon=T (the truncated objective)")
    mdp_h = mdp if (geometric or mdp.horizon is not None) else mdp.with_horizon(H)
    with np.errstate(over="raise", invalid="raise"):
        m0 = estimator_moments(mdp_h, policy, theta, "reward_to_go")
        # Var(b) = V0 - 2 b cxy + b^2 vz is a quadratic in b: three exact evaluations determine it
        mp = estimator_moments(mdp_h, policy, theta, "constant_baseline", b=1.0)
        mm = estimator_moments(mdp_h, policy, theta, "constant_baseline", b=-1.0)
        cov0 = m0.covariance
        vz = 0.5 * (mp.second_moment + mm.second_moment) - m0.second_moment  # E[z z^T] (z has mean 0)
        cxy = 0.25 * (mm.second_moment - mp.second_moment)  # sym. E[g(0) z^T]
        dz, dc, v0 = np.diag(vz), np.diag(cxy), np.diag(cov0)
        safe = dz > 0
        constant = np.where(safe, dc / np.where(safe, dz, 1.0), 0.0)
        var_const = v0 - np.where(safe, dc * dc / np.where(safe, dz, 1.0), 0.0)
        tr_z = float(np.trace(vz))
        constant_trace = float(np.trace(cxy)) / tr_z if tr_z > 0 else 0.0
        if geometric:  # stationary baselines b(s): shapes (n, S)
            c, M, Q = gm.state_cross_moments(mdp, policy, theta)
        else:
            c, M, Q = _state_cross_moments(mdp_h, policy, theta, H)
        pos = M > 0
        state = np.where(pos, c / np.where(pos, M, 1.0), 0.0)
        var_state = v0 - np.sum(np.where(pos, c * c / np.where(pos, M, 1.0), 0.0), axis=tuple(range(1, c.ndim)))
        pi = policy.probs(theta)
        psi = policy.score(theta)
        psi2 = np.einsum("sa,sak->ks", pi, psi * psi)  # (d, S)
        ok = psi2 > 0
        if geometric:
            psi2Q = np.einsum("sa,sak,sa->ks", pi, psi * psi, Q)
            per_state = np.where(ok, psi2Q / np.where(ok, psi2, 1.0), 0.0)
        else:
            psi2Q = np.einsum("sa,sak,tsa->kts", pi, psi * psi, Q)
            per_state = np.where(ok[:, None, :], psi2Q / np.where(ok, psi2, 1.0)[:, None, :], 0.0)
        V = evaluate(mdp_h, pi).V
        var_value = np.diag(estimator_moments(mdp_h, policy, theta, "state_baseline", b=V).covariance).copy()
    return OptimalBaselines(
        constant=constant,
        constant_trace=constant_trace,
        state=state,
        per_state=per_state,
        variance_none=v0.copy(),
        variance_constant=var_const,
        variance_state=var_state,
        variance_value=var_value,
    )
