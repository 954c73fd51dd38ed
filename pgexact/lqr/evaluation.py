r"""Exact evaluation of a linear(-Gaussian) policy :math:`u = -Kx + e`, :math:`e \sim N(0, \Sigma_u)`, on an LQR.

Notation: :math:`A_K = A - BK`, :math:`W_K = W + B \Sigma_u B^\top` (the one-step noise of the
closed loop), :math:`Q_K = Q + K^\top R K - NK - K^\top N^\top` (the per-step cost
:math:`x^\top Q x + u^\top R u + 2x^\top N u` at :math:`u = -Kx`; the terms linear in e vanish in
expectation and :math:`E[e^\top R e] = \mathrm{tr}(R\Sigma_u)`).

**Infinite horizon** (``horizon=None``). The cost-to-go is :math:`V^{\rm cost}(x) = x^\top P_K x + c_K` with

.. math::

    P_K = Q_K + \gamma A_K^\top P_K A_K, \qquad
    c_K = \frac{\mathrm{tr}(R\Sigma_u) + \gamma\,\mathrm{tr}(P_K W_K)}{1 - \gamma},

and the cost :math:`C(K) = E_{x_0}[V^{\rm cost}(x_0)] = \mathrm{tr}(P_K\Sigma_0) + c_K`
(:math:`c_K = 0` when γ = 1, noise-free). The discounted state correlation
:math:`\Sigma_K = \sum_t \gamma^t E[x_t x_t^\top]` solves

.. math::

    \Sigma_K = \Sigma_0 + \tfrac{\gamma}{1-\gamma} W_K + \gamma A_K \Sigma_K A_K^\top,

and by duality :math:`C(K) = \mathrm{tr}(Q_K \Sigma_K) + \mathrm{tr}(R\Sigma_u)/(1-\gamma)`
(Fazel, Ge, Kakade & Mesbahi 2018, sec. 2, extended with discount, noise and the cross term).
A gain is stabilizing iff :math:`\rho(\sqrt\gamma A_K) < 1`; otherwise
:class:`~pgexact.errors.UnstableGainError` is raised (never an infinite or negative cost).

**Finite horizon H** (stationary K, or time-varying gains ``K[t]``): backward recursion
:math:`P_H = 0`, :math:`P_t = Q_{K_t} + \gamma A_{K_t}^\top P_{t+1} A_{K_t}`,
:math:`c_t = \mathrm{tr}(R\Sigma_u) + \gamma(\mathrm{tr}(P_{t+1}W_{K_t}) + c_{t+1})`; forward
:math:`S_0 = \Sigma_0`, :math:`S_{t+1} = A_{K_t} S_t A_{K_t}^\top + W_{K_t}`;
:math:`\Sigma_K = \sum_{t<H}\gamma^t S_t`. A result that overflows float64 raises
:class:`~pgexact.errors.NumericalError`.

Reward side: :math:`J = -C`, :math:`V = -V^{\rm cost}` etc. (see :class:`LQREvaluation`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import ReadOnlyOnCopy, as_float_array
from ..errors import NumericalError, UnstableGainError
from ._args import check_action_cov, check_gain, check_lqr, check_noise_allowed, freeze_fields
from ._stein import spectral_radius_of, stein_pair
from .model import LQR
from .policy import _finite_result

__all__ = ["LQREvaluation", "evaluate", "spectral_radius"]


def _closed_loop_cost_matrix(lqr: LQR, K: np.ndarray) -> np.ndarray:
    r""":math:`Q_K = Q + K^\top R K - NK - K^\top N^\top`, the state cost of :math:`u = -Kx`, shape (n, n)."""
    NK = lqr.N @ K
    QK = lqr.Q + K.T @ lqr.R @ K - NK - NK.T
    return 0.5 * (QK + QK.T)


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class LQREvaluation(ReadOnlyOnCopy):
    r"""Exact values of the policy :math:`u = -Kx + e`, :math:`e\sim N(0,\Sigma_u)` (arrays read-only).

    Attributes
    ----------
    cost : float
        :math:`C(K) = E[\sum_t \gamma^t c_t]` (minimized).
    J : float
        ``-cost``: the return in the reward convention of the finite-MDP side.
    P : numpy.ndarray, shape (n, n) or (H, n, n)
        :math:`P_K` (cost-to-go quadratic form); ``P[t]`` from time t for a finite horizon.
    offset : float or numpy.ndarray of shape (H,)
        Constant term :math:`c_K` (``c[t]``) of the cost-to-go :math:`x^\top P x + c`.
    Sigma : numpy.ndarray, shape (n, n)
        Discounted state correlation :math:`\Sigma_K = \sum_t \gamma^t E[x_t x_t^\top]`
        (unnormalized; the state distribution :math:`d` of the Fisher matrix has second moment
        :math:`\Sigma_K / \sum_t\gamma^t`).
    S : numpy.ndarray of shape (H, n, n), or None
        State second moments :math:`E[x_t x_t^\top]` (finite horizon only).
    K : numpy.ndarray, shape (m, n) or (H, m, n)
    action_cov : numpy.ndarray, shape (m, m)
        :math:`\Sigma_u`.
    spectral_radius : float or None
        :math:`\rho(\sqrt\gamma(A - BK))` (infinite horizon only).
    lqr : LQR
    """

    cost: float
    J: float
    P: np.ndarray
    offset: Any
    Sigma: np.ndarray
    S: np.ndarray | None
    K: np.ndarray
    action_cov: np.ndarray
    spectral_radius: float | None
    lqr: LQR

    def __post_init__(self) -> None:
        freeze_fields(self, ("P", "offset", "Sigma", "S", "K", "action_cov"))

    # helpers ---------------------------------------------------------------
    def _time(self, t: Any) -> int:
        """``t`` as an int: 0 for an infinite horizon, 0 <= t < H for a finite one."""
        if isinstance(t, (bool, np.bool_)) or not isinstance(t, (int, np.integer)):
            raise TypeError(f"t must be an integer time step, got {t!r}")
        t = int(t)
        H = self.lqr.horizon
        if H is None and t != 0:
            raise ValueError(f"t must be 0 for an infinite horizon (values are stationary), got {t}")
        if H is not None and not 0 <= t < H:
            raise ValueError(f"t must satisfy 0 <= t < horizon={H}, got {t}")
        return t

    def _Pt(self, t: int) -> tuple[np.ndarray, float]:
        t = self._time(t)
        if self.lqr.horizon is None:
            if t != 0:
                raise ValueError("t must be 0 for an infinite horizon (values are stationary)")
            return self.P, float(self.offset)
        H = self.lqr.horizon
        if not (0 <= t < H):
            raise ValueError(f"t must satisfy 0 <= t < horizon={H}, got {t}")
        return self.P[t], float(self.offset[t])

    def _next(self, t: int) -> tuple[np.ndarray, float]:
        t = self._time(t)
        if self.lqr.horizon is None:
            return self.P, float(self.offset)
        if t + 1 >= self.lqr.horizon:
            n = self.lqr.n_states
            return np.zeros((n, n)), 0.0
        return self.P[t + 1], float(self.offset[t + 1])

    def _xu(self, x: Any, u: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        n, m = self.lqr.n_states, self.lqr.n_actions
        x = as_float_array("x", x)
        if x.ndim < 1 or x.shape[-1] != n:
            raise ValueError(f"x must have shape (..., n_states={n}), got {x.shape}")
        if u is None:
            return x, None
        u = as_float_array("u", u)
        if u.shape != x.shape[:-1] + (m,):
            raise ValueError(f"u must have shape {x.shape[:-1] + (m,)}, got {u.shape}")
        return x, u

    # values (reward convention: negatives of costs) -------------------------
    @_finite_result("LQREvaluation.V(x, t)")
    def V(self, x: Any, t: int = 0) -> np.ndarray:
        r"""State value :math:`V(x) = -(x^\top P x + c)` (reward convention), x (..., n) -> (...)."""
        x, _ = self._xu(x)
        P, c = self._Pt(t)
        return -(np.einsum("...i,ij,...j->...", x, P, x) + c)

    @_finite_result("LQREvaluation.Q(x, u, t)")
    def Q(self, x: Any, u: Any, t: int = 0) -> np.ndarray:
        r"""Action value (reward convention), x (..., n), u (..., m) -> (...).

        .. math::

            -Q(x, u) = x^\top Q x + u^\top R u + 2x^\top N u
                       + \gamma\,[(Ax+Bu)^\top P' (Ax+Bu) + \mathrm{tr}(P' W) + c']

        with :math:`(P', c')` the next step's cost-to-go (zero after the last step).
        """
        x, u = self._xu(x, u)
        lqr = self.lqr
        Pn, cn = self._next(t)
        y = x @ lqr.A.T + u @ lqr.B.T
        cost = (np.einsum("...i,ij,...j->...", x, lqr.Q, x) + np.einsum("...i,ij,...j->...", u, lqr.R, u)
                + 2.0 * np.einsum("...i,ij,...j->...", x, lqr.N, u)
                + lqr.gamma * (np.einsum("...i,ij,...j->...", y, Pn, y) + np.sum(Pn * lqr.noise_cov) + cn))
        return -cost

    @_finite_result("LQREvaluation.A(x, u, t)")
    def A(self, x: Any, u: Any, t: int = 0) -> np.ndarray:
        r"""Advantage :math:`A(x, u) = Q(x, u) - V(x)` (reward convention); :math:`E_{u\sim\pi}A = 0`."""
        return self.Q(x, u, t) - self.V(x, t)

    @_finite_result("LQREvaluation.grad_u_Q(x, u, t)")
    def grad_u_Q(self, x: Any, u: Any, t: int = 0) -> np.ndarray:
        r""":math:`\nabla_u Q(x, u) = -2[R u + N^\top x + \gamma B^\top P' (A x + B u)]` (reward convention), (..., m)."""
        x, u = self._xu(x, u)
        lqr = self.lqr
        Pn, _ = self._next(t)
        y = x @ lqr.A.T + u @ lqr.B.T
        return -2.0 * (u @ lqr.R + x @ lqr.N + lqr.gamma * (y @ Pn @ lqr.B))



# ---------------------------------------------------------------------------- evaluation
def _overflow(what: str, K: np.ndarray, gain: str) -> NumericalError:
    return NumericalError(
        f"the finite-horizon {what} of {gain} on lqr overflows float64 (largest |K| entry "
        f"{np.max(np.abs(K)):.3g}): the closed loop A - B K amplifies the state beyond 1e308 within "
        "the horizon; use a gain of moderate size or a shorter horizon"
    )


def _finite(lqr: LQR, K: np.ndarray, Su: np.ndarray, Sigma0: np.ndarray, gain: str) -> tuple:
    H, g = int(lqr.horizon), lqr.gamma  # type: ignore[arg-type]
    n = lqr.n_states
    Ks = np.broadcast_to(K, (H,) + K.shape[-2:])
    A, B, R, W = lqr.A, lqr.B, lqr.R, lqr.noise_cov
    P = np.empty((H + 1, n, n))
    c = np.empty(H + 1)
    P[H], c[H] = 0.0, 0.0
    S = np.empty((H, n, n))
    S[0] = Sigma0
    with np.errstate(over="ignore", invalid="ignore"):
        WK = W + B @ Su @ B.T
        trRS = float(np.sum(R * Su))
        for t in range(H - 1, -1, -1):
            Kt = Ks[t]
            AK = A - B @ Kt
            Pt = _closed_loop_cost_matrix(lqr, Kt) + g * (AK.T @ P[t + 1] @ AK)
            P[t] = 0.5 * (Pt + Pt.T)
            c[t] = trRS + g * (float(np.sum(P[t + 1] * WK)) + c[t + 1])
        for t in range(H - 1):
            AK = A - B @ Ks[t]
            St = AK @ S[t] @ AK.T + WK
            S[t + 1] = 0.5 * (St + St.T)
        Sigma = np.einsum("t,tij->ij", g ** np.arange(H), S)
    if not (np.all(np.isfinite(P)) and np.all(np.isfinite(c))):
        raise _overflow("cost-to-go P_t", K, gain)
    if not (np.all(np.isfinite(S)) and np.all(np.isfinite(Sigma))):
        raise _overflow("state covariance S_t", K, gain)
    return Ks, P, c, S, Sigma


def _evaluate(lqr: LQR, K: np.ndarray, Su: np.ndarray, gain: str = "K") -> LQREvaluation:
    """Evaluate validated arguments; ``gain`` names the gain in messages as the caller passed it."""
    check_noise_allowed(lqr, Su)
    Sigma0 = lqr.initial_cov("evaluate")
    A, B, R, W, g = lqr.A, lqr.B, lqr.R, lqr.noise_cov, lqr.gamma
    if lqr.horizon is not None:
        _, P, c, S, Sigma = _finite(lqr, K, Su, Sigma0, gain)
        with np.errstate(over="ignore", invalid="ignore"):
            cost = float(np.sum(P[0] * Sigma0) + c[0])
        if not np.isfinite(cost):
            raise _overflow("cost", K, gain)
        return LQREvaluation(cost=cost, J=-cost, P=P[:-1], offset=c[:-1], Sigma=Sigma, S=S, K=K,
                             action_cov=Su, spectral_radius=None, lqr=lqr)
    with np.errstate(over="ignore", invalid="ignore"):
        AK = A - B @ K
        WK = W + B @ Su @ B.T
        q_sigma = np.array(Sigma0) if g == 1.0 else Sigma0 + (g / (1.0 - g)) * WK
        q_p = _closed_loop_cost_matrix(lqr, K)
    if not (np.all(np.isfinite(AK)) and np.all(np.isfinite(q_p))):
        raise NumericalError(
            f"evaluating {gain} on lqr: A - B K or the state cost Q + K^T R K overflows float64 "
            f"(largest |K| entry {np.max(np.abs(K)):.3g}); use a gain of moderate size"
        )
    if not np.all(np.isfinite(q_sigma)):
        raise NumericalError(
            f"evaluating {gain} on lqr: the discounted noise Sigma0 + gamma/(1-gamma) (W + B Sigma_u B^T) "
            "overflows float64; use a smaller noise covariance or a smaller gamma"
        )
    try:
        with np.errstate(over="ignore", invalid="ignore"):
            Sigma, P, rho = stein_pair(np.sqrt(g) * AK, q_sigma, q_p)
    except UnstableGainError as exc:
        raise UnstableGainError(
            exc.spectral_radius,
            f"{gain} is not stabilizing for lqr: the spectral radius of sqrt(gamma) (A - B K) is "
            f"{exc.spectral_radius:.6g}, expected < 1",
        ) from None
    except NumericalError as exc:
        raise NumericalError(f"evaluating {gain} on lqr: {exc}") from None
    with np.errstate(over="ignore", invalid="ignore"):
        c = 0.0 if g == 1.0 else (float(np.sum(R * Su)) + g * float(np.sum(P * WK))) / (1.0 - g)
        cost = float(np.sum(P * Sigma0)) + c
    if not np.isfinite(cost):
        raise NumericalError(
            f"the cost of {gain} on lqr overflows float64 (spectral radius {rho:.6g}): rescale the "
            "model (Q, R, Sigma0, the noise) or the policy noise"
        )
    return LQREvaluation(cost=cost, J=-cost, P=P, offset=c, Sigma=Sigma, S=None, K=K,
                         action_cov=Su, spectral_radius=rho, lqr=lqr)


@np.errstate(under="ignore")
def evaluate(lqr: LQR, K: Any, noise_cov: Any = None) -> LQREvaluation:
    r"""Exact cost, :math:`P_K`, :math:`\Sigma_K` and V, Q, A of the policy :math:`u = -Kx + e`.

    .. math::

        C(K) = \mathrm{tr}(P_K \Sigma_0) + \frac{\mathrm{tr}(R\Sigma_u) + \gamma\,\mathrm{tr}(P_K (W + B\Sigma_u B^\top))}{1-\gamma}
             = \mathrm{tr}(Q_K\Sigma_K) + \frac{\mathrm{tr}(R\Sigma_u)}{1-\gamma}

    (infinite horizon; see the module docstring for the equations of :math:`P_K`, :math:`\Sigma_K`
    and the finite-horizon recursion; Fazel et al. 2018, sec. 2, extended with discount and noise).

    Parameters
    ----------
    lqr : LQR
        Must have ``Sigma0``.
    K : array_like, shape (m, n)
        Gain of :math:`u = -Kx`; for a finite horizon also time-varying, shape (H, m, n).
    noise_cov : array_like of shape (m, m), or None
        Policy (action) noise covariance :math:`\Sigma_u`; None for the deterministic policy.

    Returns
    -------
    LQREvaluation

    Raises
    ------
    UnstableGainError
        If :math:`\rho(\sqrt\gamma(A - BK)) \ge 1` (infinite horizon).
    NumericalError
        If a finite-horizon result overflows float64.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           gamma=0.9, Sigma0=np.eye(2), noise_cov=0.1 * np.eye(2))
    >>> K = np.array([[0.5, 1.0]])
    >>> ev = evaluate(lqr, K, noise_cov=[[0.2]])
    >>> # duality: tr(P Sigma0) + c == tr((Q + K^T R K) Sigma_K) + tr(R Sigma_u) / (1 - gamma)
    >>> dual = np.trace((lqr.Q + K.T @ lqr.R @ K) @ ev.Sigma) + 0.2 / 0.1
    >>> bool(abs(ev.cost - dual) < 1e-12 * ev.cost)
    True
    """
    lqr = check_lqr(lqr)
    K = check_gain(lqr, K)
    Su = check_action_cov(lqr, noise_cov)
    return _evaluate(lqr, K, Su)


@np.errstate(under="ignore")
def spectral_radius(lqr: LQR, K: Any) -> float:
    r""":math:`\rho(\sqrt\gamma (A - BK))`; K is stabilizing (infinite horizon) iff it is < 1.

    Examples
    --------
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[1.2]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], gamma=0.81)
    >>> round(spectral_radius(lqr, [[0.2]]), 12)  # 0.9 * |1.2 - 0.2|
    0.9
    """
    lqr = check_lqr(lqr)
    K = check_gain(lqr, K, allow_time_varying=False)
    return spectral_radius_of(np.sqrt(lqr.gamma) * (lqr.A - lqr.B @ K))
