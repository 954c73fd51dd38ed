r"""Exact LQR quantities for a linear(-Gaussian) policy :math:`u = -Kx + e`, :math:`e \sim N(0, \Sigma_u)`.

Notation: :math:`A_K = A - BK`, :math:`W_K = W + B \Sigma_u B^\top` (the one-step noise of the
closed loop), :math:`Q_K = Q + K^\top R K`.

**Infinite horizon** (``horizon=None``; γ < 1, or γ = 1 without any noise). The cost-to-go is
:math:`V^{\rm cost}(x) = x^\top P_K x + c_K` with

.. math::

    P_K = Q_K + \gamma A_K^\top P_K A_K, \qquad
    c_K = \frac{\mathrm{tr}(R\Sigma_u) + \gamma\,\mathrm{tr}(P_K W_K)}{1 - \gamma},

and the cost :math:`C(K) = E_{x_0}[V^{\rm cost}(x_0)] = \mathrm{tr}(P_K\Sigma_0) + c_K`
(:math:`c_K = 0` when γ = 1, noise-free). The discounted state correlation
:math:`\Sigma_K = \sum_t \gamma^t E[x_t x_t^\top]` solves

.. math::

    \Sigma_K = \Sigma_0 + \tfrac{\gamma}{1-\gamma} W_K + \gamma A_K \Sigma_K A_K^\top,

and by duality :math:`C(K) = \mathrm{tr}(Q_K \Sigma_K) + \mathrm{tr}(R\Sigma_u)/(1-\gamma)`.
Both Stein equations are solved by the bilinear (Cayley) transform + Bartels-Stewart method of
``scipy.linalg.solve_discrete_lyapunov``, sharing one Schur factorization for n >= 10 (for n < 10
``solve_discrete_lyapunov``'s direct method is called twice); the solution's relative residual
is checked.

**Gradient** (Fazel, Ge, Kakade & Mesbahi 2018, Lemma 1, with discount and noise): with
:math:`E_K = (R + \gamma B^\top P_K B) K - \gamma B^\top P_K A`,

.. math::

    \nabla_K C(K) = 2 E_K \Sigma_K, \qquad
    \frac{\partial C}{\partial \Sigma_u} = \frac{R + \gamma B^\top P_K B}{1-\gamma}.

The noise terms enter only through :math:`\Sigma_K` (:math:`W_K` does not depend on K).
A gain is stabilizing iff the spectral radius :math:`\rho(\sqrt\gamma A_K) < 1`; otherwise
:class:`~pgexact.errors.UnstableGainError` is raised (never an infinite or negative cost).

**Finite horizon H** (stationary K, or time-varying gains ``K[t]``): backward recursion
:math:`P_H = 0`, :math:`P_t = Q_{K_t} + \gamma A_{K_t}^\top P_{t+1} A_{K_t}`,
:math:`c_t = \mathrm{tr}(R\Sigma_u) + \gamma(\mathrm{tr}(P_{t+1}W_{K_t}) + c_{t+1})`; forward
:math:`S_0 = \Sigma_0`, :math:`S_{t+1} = A_{K_t} S_t A_{K_t}^\top + W_{K_t}`;
:math:`\Sigma_K = \sum_{t<H}\gamma^t S_t`; :math:`\nabla_{K_t} C = 2\gamma^t E_{K_t,t} S_t` with
:math:`E_{K,t} = (R + \gamma B^\top P_{t+1} B)K - \gamma B^\top P_{t+1} A` (summed over t for a
stationary gain).

Reward side: :math:`J = -C`, :math:`V = -V^{\rm cost}` etc. (see :class:`LQREvaluation`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from .._validation import as_float_array
from ..errors import NumericalError, SingularSystemError, UnstableGainError
from .model import LQR, check_covariance
from .policy import LinearGaussian

__all__ = [
    "LQREvaluation",
    "OptimalControl",
    "evaluate",
    "spectral_radius",
    "cost_gradient",
    "cost_and_gradient",
    "noise_gradient",
    "policy_gradient",
    "fisher",
    "natural_gradient",
    "npg_direction",
    "gauss_newton_direction",
    "riccati",
    "optimal_gain",
    "STEIN_RESIDUAL_RTOL",
]

#: Largest accepted relative residual of the Lyapunov/Stein solutions (Bartels-Stewart is
#: backward stable to ~n eps; the Cayley transform adds a factor cond(a + I)). Beyond this the
#: solve is declared failed (:class:`~pgexact.errors.NumericalError`).
STEIN_RESIDUAL_RTOL = 1e-8

#: Below this state dimension scipy's direct (Kronecker) method is used, as scipy itself does.
_DIRECT_BELOW = 10


# ---------------------------------------------------------------------------- validation
def _check_lqr(lqr: Any) -> LQR:
    if not isinstance(lqr, LQR):
        raise TypeError(f"lqr must be a pgexact.LQR, got {type(lqr).__name__}")
    return lqr


def _check_gain(lqr: LQR, K: Any, allow_time_varying: bool = True) -> np.ndarray:
    K = as_float_array("K", K)
    m, n = lqr.n_action, lqr.n_state
    if K.shape == (m, n):
        return K
    if allow_time_varying and lqr.horizon is not None and K.shape == (lqr.horizon, m, n):
        return K
    want = f"({m}, {n})" + (
        f" or time-varying ({lqr.horizon}, {m}, {n})" if allow_time_varying and lqr.horizon else ""
    )
    raise ValueError(f"K must have shape {want} (n_action, n_state), got {K.shape}")


def _check_action_cov(lqr: LQR, noise_cov: Any) -> np.ndarray:
    m = lqr.n_action
    if noise_cov is None:
        return np.zeros((m, m))
    return check_covariance("noise_cov", noise_cov, m)


def _noise_allowed(lqr: LQR, Su: np.ndarray) -> None:
    if lqr.horizon is None and lqr.gamma == 1.0 and np.any(Su != 0.0):
        raise ValueError(
            "gamma=1 and horizon=None with policy noise (noise_cov != 0): the cost diverges; "
            "use gamma < 1 or a finite horizon"
        )


# ---------------------------------------------------------------------------- Stein solver
def _spectral_radius(a: np.ndarray) -> float:
    return float(np.max(np.abs(np.linalg.eigvals(a))))


def _quasi_triangular_eigvals(T: np.ndarray) -> np.ndarray:
    """Eigenvalues of a real quasi-upper-triangular (real Schur) matrix from its 1x1/2x2 blocks."""
    n = T.shape[0]
    lam = np.empty(n, dtype=complex)
    i = 0
    while i < n:
        if i + 1 < n and T[i + 1, i] != 0.0:
            a, b, c, d = T[i, i], T[i, i + 1], T[i + 1, i], T[i + 1, i + 1]
            tr, det = 0.5 * (a + d), a * d - b * c
            disc = np.sqrt(complex(tr * tr - det))
            lam[i], lam[i + 1] = tr + disc, tr - disc
            i += 2
        else:
            lam[i] = T[i, i]
            i += 1
    return lam


def _residual(x: np.ndarray, a: np.ndarray, q: np.ndarray, transpose: bool) -> float:
    axa = a.T @ x @ a if transpose else a @ x @ a.T
    scale = np.max(np.abs(q)) + np.max(np.abs(axa)) + np.max(np.abs(x))
    return float(np.max(np.abs(x - axa - q)) / max(scale, np.finfo(float).tiny))


def _stein_pair(a: np.ndarray, q_sigma: np.ndarray, q_p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    r"""Solve :math:`\Sigma = a\Sigma a^\top + q_\Sigma` and :math:`P = a^\top P a + q_P`.

    Returns ``(Sigma, P, rho)`` with ρ the spectral radius of ``a``; raises
    :class:`UnstableGainError` if ρ >= 1 (before anything is returned).
    """
    n = a.shape[0]
    if n < _DIRECT_BELOW:
        rho = _spectral_radius(a)
        if not rho < 1.0:
            raise UnstableGainError(rho)
        Sigma = scipy.linalg.solve_discrete_lyapunov(a, q_sigma)
        P = scipy.linalg.solve_discrete_lyapunov(a.T, q_p)
    else:
        # Cayley transform M = (a - I)(a + I)^{-1} (as scipy's bilinear method): the Sigma
        # equation becomes M X + X M^T = -c_S, the P equation M^T Y + Y M = -c_P, and one real
        # Schur form M = U T U^T serves both (LAPACK trsyl with trana / tranb).
        eye = np.eye(n)
        try:
            with warnings.catch_warnings():  # an exactly singular a + I is handled just below
                warnings.simplefilter("ignore", scipy.linalg.LinAlgWarning)
                lu = scipy.linalg.lu_factor(a + eye, check_finite=False)
            if not np.all(np.isfinite(lu[0])) or np.min(np.abs(np.diag(lu[0]))) == 0.0:
                raise np.linalg.LinAlgError
        except (np.linalg.LinAlgError, ValueError):
            raise UnstableGainError(_spectral_radius(a)) from None
        inv_apI = scipy.linalg.lu_solve(lu, eye, check_finite=False)  # (a + I)^{-1}
        M = (a - eye) @ inv_apI
        T, U = scipy.linalg.schur(M, output="real", check_finite=False)
        mu = _quasi_triangular_eigvals(T)
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.abs((1.0 + mu) / (1.0 - mu))
        rho = float(np.max(lam)) if np.all(np.isfinite(lam)) else float("inf")
        if not rho < 1.0:
            raise UnstableGainError(_spectral_radius(a))
        # c_S = 2 (a+I)^{-1} q_S (a+I)^{-T},  c_P = 2 (a+I)^{-T} q_P (a+I)^{-1}
        FS = U.T @ (inv_apI @ q_sigma @ inv_apI.T) @ U
        FP = U.T @ (inv_apI.T @ q_p @ inv_apI) @ U
        trsyl = scipy.linalg.get_lapack_funcs("trsyl", (T,))
        YS, sS, infoS = trsyl(T, T, -2.0 * FS, tranb="T")
        YP, sP, infoP = trsyl(T, T, -2.0 * FP, trana="T")
        if infoS < 0 or infoP < 0:  # pragma: no cover - illegal argument, a bug
            raise NumericalError(f"LAPACK trsyl failed (info {infoS}, {infoP})")
        Sigma = U @ (YS * sS) @ U.T
        P = U @ (YP * sP) @ U.T
    Sigma = 0.5 * (Sigma + Sigma.T)
    P = 0.5 * (P + P.T)
    for name, x, q, tr in (("Sigma_K", Sigma, q_sigma, False), ("P_K", P, q_p, True)):
        res = _residual(x, a, q, tr)
        if not res <= STEIN_RESIDUAL_RTOL:
            raise NumericalError(
                f"the Lyapunov equation for {name} was solved to relative residual {res:.3g} > "
                f"{STEIN_RESIDUAL_RTOL:g} (spectral radius {rho:.12g}: too close to 1 or "
                "ill-conditioned)"
            )
    return Sigma, P, rho


# ---------------------------------------------------------------------------- results
@dataclass(frozen=True, eq=False)
class LQREvaluation:
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
        for name in ("P", "offset", "Sigma", "S", "K", "action_cov"):
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False

    # helpers ---------------------------------------------------------------
    def _Pt(self, t: int) -> tuple[np.ndarray, float]:
        if self.lqr.horizon is None:
            if t != 0:
                raise ValueError("t must be 0 for an infinite horizon (values are stationary)")
            return self.P, float(self.offset)
        H = self.lqr.horizon
        if not (0 <= t < H):
            raise ValueError(f"t must satisfy 0 <= t < horizon={H}, got {t}")
        return self.P[t], float(self.offset[t])

    def _next(self, t: int) -> tuple[np.ndarray, float]:
        if self.lqr.horizon is None:
            return self.P, float(self.offset)
        if t + 1 >= self.lqr.horizon:
            n = self.lqr.n_state
            return np.zeros((n, n)), 0.0
        return self.P[t + 1], float(self.offset[t + 1])

    def _xu(self, x: Any, u: Any | None = None) -> tuple[np.ndarray, np.ndarray | None]:
        n, m = self.lqr.n_state, self.lqr.n_action
        x = as_float_array("x", x)
        if x.ndim < 1 or x.shape[-1] != n:
            raise ValueError(f"x must have shape (..., n_state={n}), got {x.shape}")
        if u is None:
            return x, None
        u = as_float_array("u", u)
        if u.shape != x.shape[:-1] + (m,):
            raise ValueError(f"u must have shape {x.shape[:-1] + (m,)}, got {u.shape}")
        return x, u

    # values (reward convention: negatives of costs) -------------------------
    def V(self, x: Any, t: int = 0) -> np.ndarray:
        r"""State value :math:`V(x) = -(x^\top P x + c)` (reward convention), x (..., n) -> (...)."""
        x, _ = self._xu(x)
        P, c = self._Pt(t)
        return -(np.einsum("...i,ij,...j->...", x, P, x) + c)

    def Q(self, x: Any, u: Any, t: int = 0) -> np.ndarray:
        r"""Action value (reward convention), x (..., n), u (..., m) -> (...).

        .. math::

            -Q(x, u) = x^\top Q x + u^\top R u + \gamma\,[(Ax+Bu)^\top P' (Ax+Bu) + \mathrm{tr}(P' W) + c']

        with :math:`(P', c')` the next step's cost-to-go (zero after the last step).
        """
        x, u = self._xu(x, u)
        lqr = self.lqr
        Pn, cn = self._next(t)
        y = x @ lqr.A.T + u @ lqr.B.T
        cost = (np.einsum("...i,ij,...j->...", x, lqr.Q, x) + np.einsum("...i,ij,...j->...", u, lqr.R, u)
                + lqr.gamma * (np.einsum("...i,ij,...j->...", y, Pn, y) + np.sum(Pn * lqr.noise_cov) + cn))
        return -cost

    def A(self, x: Any, u: Any, t: int = 0) -> np.ndarray:
        r"""Advantage :math:`A(x, u) = Q(x, u) - V(x)` (reward convention); :math:`E_{u\sim\pi}A = 0`."""
        return self.Q(x, u, t) - self.V(x, t)

    def grad_u_Q(self, x: Any, u: Any, t: int = 0) -> np.ndarray:
        r""":math:`\nabla_u Q(x, u) = -2[R u + \gamma B^\top P' (A x + B u)]` (reward convention), (..., m)."""
        x, u = self._xu(x, u)
        lqr = self.lqr
        Pn, _ = self._next(t)
        y = x @ lqr.A.T + u @ lqr.B.T
        return -2.0 * (u @ lqr.R + lqr.gamma * (y @ Pn @ lqr.B))


@dataclass(frozen=True, eq=False)
class OptimalControl:
    r"""Optimal LQR control from the Riccati equation (arrays read-only).

    Attributes
    ----------
    K : numpy.ndarray, shape (m, n), or (H, m, n) time-varying for a finite horizon
    P : numpy.ndarray, shape (n, n), or (H, n, n)
    cost : float
        Optimal cost (deterministic policy; policy noise only adds cost).
    """

    K: np.ndarray
    P: np.ndarray
    cost: float

    def __post_init__(self) -> None:
        self.K.flags.writeable = False
        self.P.flags.writeable = False


# ---------------------------------------------------------------------------- evaluation
def _finite(lqr: LQR, K: np.ndarray, Su: np.ndarray) -> tuple:
    H, g = int(lqr.horizon), lqr.gamma  # type: ignore[arg-type]
    n = lqr.n_state
    Ks = np.broadcast_to(K, (H,) + K.shape[-2:])
    A, B, Q, R, W = lqr.A, lqr.B, lqr.Q, lqr.R, lqr.noise_cov
    WK = W + B @ Su @ B.T
    trRS = float(np.sum(R * Su))
    P = np.empty((H + 1, n, n))
    c = np.empty(H + 1)
    P[H], c[H] = 0.0, 0.0
    for t in range(H - 1, -1, -1):
        Kt = Ks[t]
        AK = A - B @ Kt
        Pt = Q + Kt.T @ R @ Kt + g * (AK.T @ P[t + 1] @ AK)
        P[t] = 0.5 * (Pt + Pt.T)
        c[t] = trRS + g * (float(np.sum(P[t + 1] * WK)) + c[t + 1])
    S = np.empty((H, n, n))
    S[0] = lqr.Sigma0
    for t in range(H - 1):
        AK = A - B @ Ks[t]
        St = AK @ S[t] @ AK.T + WK
        S[t + 1] = 0.5 * (St + St.T)
    Sigma = np.einsum("t,tij->ij", g ** np.arange(H), S)
    return Ks, P, c, S, Sigma


def _evaluate(lqr: LQR, K: np.ndarray, Su: np.ndarray) -> LQREvaluation:
    _noise_allowed(lqr, Su)
    A, B, Q, R, W, g = lqr.A, lqr.B, lqr.Q, lqr.R, lqr.noise_cov, lqr.gamma
    if lqr.horizon is not None:
        _, P, c, S, Sigma = _finite(lqr, K, Su)
        cost = float(np.sum(P[0] * lqr.Sigma0) + c[0])
        return LQREvaluation(cost=cost, J=-cost, P=P[:-1], offset=c[:-1], Sigma=Sigma, S=S, K=K,
                             action_cov=Su, spectral_radius=None, lqr=lqr)
    AK = A - B @ K
    WK = W + B @ Su @ B.T
    q_sigma = np.array(lqr.Sigma0) if g == 1.0 else lqr.Sigma0 + (g / (1.0 - g)) * WK
    Sigma, P, rho = _stein_pair(np.sqrt(g) * AK, q_sigma, Q + K.T @ R @ K)
    c = 0.0 if g == 1.0 else (float(np.sum(R * Su)) + g * float(np.sum(P * WK))) / (1.0 - g)
    cost = float(np.sum(P * lqr.Sigma0)) + c
    return LQREvaluation(cost=cost, J=-cost, P=P, offset=c, Sigma=Sigma, S=None, K=K,
                         action_cov=Su, spectral_radius=rho, lqr=lqr)


def evaluate(lqr: LQR, K: Any, noise_cov: Any = None) -> LQREvaluation:
    r"""Exact cost, :math:`P_K`, :math:`\Sigma_K` and V, Q, A of the policy :math:`u = -Kx + e`.

    .. math::

        C(K) = \mathrm{tr}(P_K \Sigma_0) + \frac{\mathrm{tr}(R\Sigma_u) + \gamma\,\mathrm{tr}(P_K (W + B\Sigma_u B^\top))}{1-\gamma}
             = \mathrm{tr}((Q + K^\top R K)\Sigma_K) + \frac{\mathrm{tr}(R\Sigma_u)}{1-\gamma}

    (infinite horizon; see the module docstring for the equations of :math:`P_K`, :math:`\Sigma_K`
    and the finite-horizon recursion; Fazel et al. 2018, sec. 2, extended with discount and noise).

    Parameters
    ----------
    lqr : LQR
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

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           Sigma0=np.eye(2), gamma=0.9, noise_cov=0.1 * np.eye(2))
    >>> K = np.array([[0.5, 1.0]])
    >>> ev = evaluate(lqr, K, noise_cov=[[0.2]])
    >>> # duality: tr(P Sigma0) + c == tr((Q + K^T R K) Sigma_K) + tr(R Sigma_u) / (1 - gamma)
    >>> dual = np.trace((lqr.Q + K.T @ lqr.R @ K) @ ev.Sigma) + 0.2 / 0.1
    >>> bool(abs(ev.cost - dual) < 1e-12 * ev.cost)
    True
    """
    lqr = _check_lqr(lqr)
    K = _check_gain(lqr, K)
    Su = _check_action_cov(lqr, noise_cov)
    return _evaluate(lqr, K, Su)


def spectral_radius(lqr: LQR, K: Any) -> float:
    r""":math:`\rho(\sqrt\gamma (A - BK))`; K is stabilizing (infinite horizon) iff it is < 1."""
    lqr = _check_lqr(lqr)
    K = _check_gain(lqr, K, allow_time_varying=False)
    return _spectral_radius(np.sqrt(lqr.gamma) * (lqr.A - lqr.B @ K))


# ---------------------------------------------------------------------------- gradients
def _grad_from(ev: LQREvaluation) -> np.ndarray:
    lqr = ev.lqr
    A, B, R, g = lqr.A, lqr.B, lqr.R, lqr.gamma
    if lqr.horizon is None:
        P = ev.P
        EK = (R + g * (B.T @ P @ B)) @ ev.K - g * (B.T @ P @ A)
        return 2.0 * EK @ ev.Sigma
    H = lqr.horizon
    n = lqr.n_state
    Ks = np.broadcast_to(ev.K, (H,) + ev.K.shape[-2:])
    Pn = np.concatenate([ev.P[1:], np.zeros((1, n, n))])  # P_{t+1}
    BtPB = np.einsum("ia,tij,jb->tab", B, Pn, B)
    BtPA = np.einsum("ia,tij,jk->tak", B, Pn, A)
    EK = np.einsum("tab,tbk->tak", R + g * BtPB, Ks) - g * BtPA
    G = 2.0 * (g ** np.arange(H))[:, None, None] * np.einsum("tak,tkl->tal", EK, ev.S)
    return G if ev.K.ndim == 3 else G.sum(axis=0)


def cost_gradient(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Gradient of the cost, :math:`\nabla_K C(K) = 2 E_K \Sigma_K`, same shape as K.

    .. math::

        \nabla_K C(K) = 2\big[(R + \gamma B^\top P_K B)K - \gamma B^\top P_K A\big]\Sigma_K

    (Fazel et al. 2018, Lemma 1; the discount enters as :math:`A \to \sqrt\gamma A`,
    :math:`B \to \sqrt\gamma B`, and process/policy noise only through :math:`\Sigma_K`). For a
    finite horizon, :math:`\sum_t 2\gamma^t E_{K,t} S_t` (per-t terms for time-varying gains).
    This is the *cost* gradient: the reward-side policy gradient is its negative.

    Parameters
    ----------
    lqr : LQR
    K : array_like, shape (m, n) (or (H, m, n) for a finite horizon)
    noise_cov : array_like of shape (m, m), or None
        Policy noise covariance :math:`\Sigma_u`.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[0.9, 0.3], [0.0, 0.8]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           Sigma0=np.eye(2), gamma=0.95)
    >>> K = np.array([[0.1, 0.2]])
    >>> h = 1e-5; E = np.array([[1.0, 0.0]])
    >>> fd = (evaluate(lqr, K + h * E).cost - evaluate(lqr, K - h * E).cost) / (2 * h)
    >>> bool(abs(cost_gradient(lqr, K)[0, 0] - fd) < 1e-7 * abs(fd))
    True
    """
    return _grad_from(evaluate(lqr, K, noise_cov))


def cost_and_gradient(lqr: LQR, K: Any, noise_cov: Any = None) -> tuple[float, np.ndarray]:
    r"""``(C(K), ∇_K C(K))`` from a single evaluation (one shared Schur factorization).

    Same quantities as ``evaluate(lqr, K, noise_cov).cost`` and :func:`cost_gradient`, for the
    price of one evaluation: the inner loop of exact gradient descent.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], Sigma0=[[1.0]], gamma=0.9)
    >>> c, g = cost_and_gradient(lqr, [[0.2]])
    >>> bool(c == evaluate(lqr, [[0.2]]).cost and np.array_equal(g, cost_gradient(lqr, [[0.2]])))
    True
    """
    ev = evaluate(lqr, K, noise_cov)
    return ev.cost, _grad_from(ev)


def _noise_grad_from(ev: LQREvaluation) -> np.ndarray:
    lqr = ev.lqr
    B, R, g = lqr.B, lqr.R, lqr.gamma
    if lqr.horizon is None:
        if g == 1.0:
            # gamma = 1 admits no noise: the derivative of the (then infinite) cost does not exist
            raise ValueError("the noise gradient needs gamma < 1 or a finite horizon")
        G = (R + g * (B.T @ ev.P @ B)) / (1.0 - g)
    else:
        H = lqr.horizon
        n = lqr.n_state
        Pn = np.concatenate([ev.P[1:], np.zeros((1, n, n))])
        w = g ** np.arange(H)
        G = w.sum() * R + g * np.einsum("t,ia,tij,jb->ab", w, B, Pn, B)
    return 0.5 * (G + G.T)


def noise_gradient(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Gradient of the cost with respect to the policy noise covariance, shape (m, m).

    .. math::

        \frac{\partial C}{\partial \Sigma_u} = \frac{R + \gamma B^\top P_K B}{1 - \gamma}
        \quad\Big(\text{finite horizon: } \sum_{t<H}\gamma^t (R + \gamma B^\top P_{t+1} B)\Big),

    meaning :math:`dC = \mathrm{tr}(G\, d\Sigma_u)`. It does not depend on :math:`\Sigma_u`
    (:math:`P_K` does not), so C is affine in :math:`\Sigma_u`. For
    :math:`\Sigma_u = \mathrm{diag}(e^{2\ell})`: :math:`\partial C/\partial \ell_i = 2 e^{2\ell_i} G_{ii}`.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], Sigma0=[[1.0]], gamma=0.9)
    >>> G = noise_gradient(lqr, [[0.5]], [[0.1]])
    >>> c0, c1 = evaluate(lqr, [[0.5]], [[0.1]]).cost, evaluate(lqr, [[0.5]], [[0.3]]).cost
    >>> bool(abs((c1 - c0) / 0.2 - G[0, 0]) < 1e-10 * G[0, 0])  # C is affine in Sigma_u
    True
    """
    return _noise_grad_from(evaluate(lqr, K, noise_cov))


def _check_policy(lqr: LQR, policy: Any, theta: Any) -> tuple[LinearGaussian, np.ndarray]:
    if not isinstance(policy, LinearGaussian):
        raise TypeError(f"policy must be a pgexact.LinearGaussian, got {type(policy).__name__}")
    if policy.n_state != lqr.n_state or policy.n_action != lqr.n_action:
        raise ValueError(
            f"policy has (n_state, n_action) = ({policy.n_state}, {policy.n_action}), "
            f"the LQR has ({lqr.n_state}, {lqr.n_action})"
        )
    return policy, policy.check_theta(theta)


def _policy_eval(lqr: LQR, policy: Any, theta: Any) -> tuple[LinearGaussian, np.ndarray, LQREvaluation]:
    lqr = _check_lqr(lqr)
    policy, theta = _check_policy(lqr, policy, theta)
    return policy, theta, _evaluate(lqr, policy.gain(theta), policy.action_cov(theta))


def policy_gradient(lqr: LQR, policy: LinearGaussian, theta: Any) -> np.ndarray:
    r"""Exact policy gradient :math:`\nabla_\theta J`, :math:`J = -C` (reward convention), shape (n_params,).

    .. math::

        \nabla_{\mathrm{vec}K} J = -\mathrm{vec}(\nabla_K C), \qquad
        \frac{\partial J}{\partial \ell_i} = -2 e^{2\ell_i}\Big[\frac{\partial C}{\partial\Sigma_u}\Big]_{ii}

    (row-major vec; the log-std block only with ``learn_log_std``). See :func:`cost_gradient`
    and :func:`noise_gradient`.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> lqr = LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], Sigma0=[[1.0]], gamma=0.9)
    >>> pol = LinearGaussian(1, 1, learn_log_std=True)
    >>> theta = pol.params([[0.3]], log_std=[-1.0])
    >>> g = policy_gradient(lqr, pol, theta)
    >>> h = 1e-6
    >>> fd = (evaluate(lqr, [[0.3]], [[np.exp(2 * (-1 + h))]]).cost
    ...       - evaluate(lqr, [[0.3]], [[np.exp(2 * (-1 - h))]]).cost) / (2 * h)
    >>> bool(abs(g[1] + fd) < 1e-7 * abs(fd))
    True
    """
    policy, theta, ev = _policy_eval(lqr, policy, theta)
    gK = -_grad_from(ev).reshape(-1)
    if not policy.learn_log_std:
        return gK
    G = _noise_grad_from(ev)
    return np.concatenate([gK, -2.0 * np.diag(ev.action_cov) * np.diag(G)])


def _state_moment(ev: LQREvaluation) -> np.ndarray:
    lqr = ev.lqr
    if lqr.horizon is None:
        mass = 1.0 / (1.0 - lqr.gamma) if lqr.gamma < 1.0 else None
    else:
        mass = float(np.sum(lqr.gamma ** np.arange(lqr.horizon)))
    if mass is None:
        raise ValueError("the normalized state distribution needs gamma < 1 or a finite horizon")
    return ev.Sigma / mass


def fisher(lqr: LQR, policy: LinearGaussian, theta: Any) -> np.ndarray:
    r"""State-averaged Fisher matrix of the Gaussian policy, shape (n_params, n_params).

    .. math::

        F = E_{x\sim d, u\sim\pi}[\nabla\log\pi\,\nabla\log\pi^\top]
          = \begin{pmatrix} \Sigma_u^{-1} \otimes X & 0 \\ 0 & 2 I_m \end{pmatrix},
        \qquad X = E_{x\sim d}[x x^\top] = \frac{\Sigma_K}{\sum_t \gamma^t}

    with :math:`d` the normalized discounted state distribution (:math:`X = (1-\gamma)\Sigma_K`
    for an infinite horizon; the normalized discounted time average for a finite one, as
    :func:`pgexact.exact.fisher`); ⊗ is the Kronecker product in the row-major vec of K; the
    log-std block exists only with ``learn_log_std``, and the cross terms vanish because the odd
    moments of :math:`u - \mu` are zero (Kakade 2002, sec. 3; Gaussian moments).
    Undefined (``ValueError``) for a deterministic policy.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> lqr = LQR(A=[[0.9, 0.1], [0.0, 0.7]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           Sigma0=np.eye(2), gamma=0.9)
    >>> pol = LinearGaussian(2, 1, noise_cov=[[0.5]])
    >>> F = fisher(lqr, pol, [0.1, 0.2])
    >>> X = (1 - 0.9) * evaluate(lqr, [[0.1, 0.2]], [[0.5]]).Sigma
    >>> bool(np.allclose(F, X / 0.5, rtol=1e-14))
    True
    """
    policy, theta, ev = _policy_eval(lqr, policy, theta)
    Su = ev.action_cov
    try:
        Su_inv = scipy.linalg.cho_solve(scipy.linalg.cho_factor(Su), np.eye(lqr.n_action))
    except np.linalg.LinAlgError:
        raise ValueError("the Fisher matrix of a deterministic (or degenerate) policy does not exist "
                         "(singular action covariance)") from None
    X = _state_moment(ev)
    FK = np.kron(0.5 * (Su_inv + Su_inv.T), X)
    if not policy.learn_log_std:
        return FK
    m = lqr.n_action
    F = np.zeros((policy.n_params, policy.n_params))
    F[: policy.n_gain, : policy.n_gain] = FK
    F[policy.n_gain:, policy.n_gain:] = 2.0 * np.eye(m)
    return F


def natural_gradient(lqr: LQR, policy: LinearGaussian, theta: Any) -> np.ndarray:
    r"""Natural policy gradient :math:`F^{-1}\nabla_\theta J` (reward convention), shape (n_params,).

    Using the block structure of :func:`fisher`, never forming F:

    .. math::

        (F^{-1}\nabla J)_K = \mathrm{vec}\big(\Sigma_u\, \nabla_K J\, X^{-1}\big), \qquad
        (F^{-1}\nabla J)_\ell = \tfrac12 \nabla_\ell J .

    For an infinite horizon :math:`\nabla_K J = -2E_K\Sigma_K` and :math:`X = (1-\gamma)\Sigma_K`,
    so the K block is :math:`-\tfrac{2}{1-\gamma}\Sigma_u E_K` — Fazel et al.'s natural gradient
    :math:`\nabla C\,\Sigma_K^{-1} = 2E_K` (:func:`npg_direction`) up to the factor
    :math:`-\Sigma_u/(1-\gamma)`. Raises :class:`~pgexact.errors.SingularSystemError` if X is
    singular.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> lqr = LQR(A=[[0.9, 0.1], [0.0, 0.7]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           Sigma0=np.eye(2), gamma=0.9)
    >>> pol = LinearGaussian(2, 1, noise_cov=[[0.5]])
    >>> th = np.array([0.1, 0.2])
    >>> ng = natural_gradient(lqr, pol, th)
    >>> bool(np.allclose(fisher(lqr, pol, th) @ ng, policy_gradient(lqr, pol, th), rtol=1e-12))
    True
    """
    policy, theta, ev = _policy_eval(lqr, policy, theta)
    if policy.is_deterministic:
        raise ValueError("the natural gradient of a deterministic policy does not exist; "
                         "use npg_direction (Fazel et al.'s K-space natural gradient)")
    X = _state_moment(ev)
    GJ = -_grad_from(ev)
    try:
        cf = scipy.linalg.cho_factor(X, lower=True)
        Y = scipy.linalg.cho_solve(cf, GJ.T).T  # GJ X^{-1}
    except np.linalg.LinAlgError:
        raise SingularSystemError("the state second moment X is singular: the Fisher matrix is "
                                  "not invertible") from None
    out = (ev.action_cov @ Y).reshape(-1)
    if not policy.learn_log_std:
        return out
    gl = -2.0 * np.diag(ev.action_cov) * np.diag(_noise_grad_from(ev))
    return np.concatenate([out, 0.5 * gl])


def _check_infinite(lqr: LQR, what: str) -> None:
    if lqr.horizon is not None:
        raise ValueError(f"{what} is defined for an infinite horizon (horizon=None), got horizon={lqr.horizon}")


def npg_direction(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Fazel et al.'s natural-gradient direction :math:`\nabla C(K)\,\Sigma_K^{-1} = 2E_K`, shape (m, n).

    .. math::

        \nabla C(K)\,\Sigma_K^{-1} = 2\big[(R + \gamma B^\top P_K B)K - \gamma B^\top P_K A\big]

    (Fazel et al. 2018, sec. 4, natural policy gradient :math:`K \leftarrow K - \eta\nabla C\Sigma_K^{-1}`;
    computed as :math:`2E_K`, which needs no inverse of :math:`\Sigma_K`). Infinite horizon only.
    Global convergence (their Theorem 7, with :math:`\Sigma_0` replaced by the effective
    :math:`\Sigma_0 + \frac{\gamma}{1-\gamma}W_K \succ 0`) for
    :math:`\eta \le 1/(\|R\| + \gamma\|B\|^2 C(K_0)/\mu)`.
    """
    lqr = _check_lqr(lqr)
    _check_infinite(lqr, "npg_direction")
    ev = evaluate(lqr, K, noise_cov)
    B, g = lqr.B, lqr.gamma
    return 2.0 * ((lqr.R + g * (B.T @ ev.P @ B)) @ ev.K - g * (B.T @ ev.P @ lqr.A))


def gauss_newton_direction(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Gauss-Newton direction :math:`(R + \gamma B^\top P_K B)^{-1}\nabla C(K)\Sigma_K^{-1}`, shape (m, n).

    .. math::

        K \leftarrow K - \eta\,(R + \gamma B^\top P_K B)^{-1}\nabla C(K)\,\Sigma_K^{-1}

    (Fazel et al. 2018, sec. 4; with :math:`\eta = 1/2` this is policy iteration
    :math:`K \leftarrow \gamma(R + \gamma B^\top P_K B)^{-1}B^\top P_K A`, Hewer 1971, which converges
    quadratically). Infinite horizon only.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           Sigma0=np.eye(2), gamma=0.9)
    >>> K = np.array([[1.0, 1.5]])
    >>> for _ in range(8):
    ...     K = K - 0.5 * gauss_newton_direction(lqr, K)
    >>> bool(np.allclose(K, optimal_gain(lqr), rtol=1e-12, atol=0))
    True
    """
    lqr = _check_lqr(lqr)
    _check_infinite(lqr, "gauss_newton_direction")
    ev = evaluate(lqr, K, noise_cov)
    B, g = lqr.B, lqr.gamma
    RB = lqr.R + g * (B.T @ ev.P @ B)
    EK = RB @ ev.K - g * (B.T @ ev.P @ lqr.A)
    return 2.0 * np.linalg.solve(RB, EK)


# ---------------------------------------------------------------------------- optimal control
def riccati(lqr: LQR) -> OptimalControl:
    r"""Optimal gain(s) and cost-to-go from the Riccati equation.

    Infinite horizon: :math:`P^*` solves the discounted DARE
    :math:`P = Q + \gamma A^\top P A - \gamma^2 A^\top P B (R + \gamma B^\top P B)^{-1} B^\top P A`
    (``scipy.linalg.solve_discrete_are`` on :math:`(\sqrt\gamma A, \sqrt\gamma B)`), and
    :math:`K^* = \gamma (R + \gamma B^\top P^* B)^{-1} B^\top P^* A`; the optimal policy is
    deterministic and the optimal cost is :math:`\mathrm{tr}(P^*\Sigma_0) + \frac{\gamma}{1-\gamma}\mathrm{tr}(P^* W)`.
    Finite horizon H: the backward recursion :math:`P_H = 0`,
    :math:`K_t = \gamma(R + \gamma B^\top P_{t+1}B)^{-1}B^\top P_{t+1}A`,
    :math:`P_t = Q + K_t^\top R K_t + \gamma (A - BK_t)^\top P_{t+1}(A - BK_t)` (time-varying gains,
    shape (H, m, n); Bertsekas, *Dynamic Programming and Optimal Control*, vol. I, sec. 4.1).

    Raises :class:`~pgexact.errors.NumericalError` if the DARE has no stabilizing solution
    (e.g. :math:`(\sqrt\gamma A, \sqrt\gamma B)` not stabilizable).
    """
    lqr = _check_lqr(lqr)
    A, B, Q, R, W, g = lqr.A, lqr.B, lqr.Q, lqr.R, lqr.noise_cov, lqr.gamma
    if lqr.horizon is None:
        sg = np.sqrt(g)
        try:
            P = scipy.linalg.solve_discrete_are(sg * A, sg * B, Q, R)
        except (np.linalg.LinAlgError, ValueError) as exc:
            raise NumericalError(f"the discounted Riccati equation has no stabilizing solution: {exc}") from None
        P = 0.5 * (P + P.T)
        K = g * np.linalg.solve(R + g * (B.T @ P @ B), B.T @ P @ A)
        cost = float(np.sum(P * lqr.Sigma0))
        if g < 1.0:
            cost += g / (1.0 - g) * float(np.sum(P * W))
        return OptimalControl(K=K, P=P, cost=cost)
    H, n, m = lqr.horizon, lqr.n_state, lqr.n_action
    Ps = np.empty((H + 1, n, n))
    Ks = np.empty((H, m, n))
    c = np.zeros(H + 1)
    Ps[H] = 0.0
    for t in range(H - 1, -1, -1):
        Pn = Ps[t + 1]
        Kt = g * np.linalg.solve(R + g * (B.T @ Pn @ B), B.T @ Pn @ A)
        AK = A - B @ Kt
        Pt = Q + Kt.T @ R @ Kt + g * (AK.T @ Pn @ AK)
        Ps[t] = 0.5 * (Pt + Pt.T)
        Ks[t] = Kt
        c[t] = g * (float(np.sum(Pn * W)) + c[t + 1])
    cost = float(np.sum(Ps[0] * lqr.Sigma0) + c[0])
    return OptimalControl(K=Ks, P=Ps[:-1].copy(), cost=cost)


def optimal_gain(lqr: LQR) -> np.ndarray:
    r"""The optimal gain :math:`K^*` (shape (m, n); (H, m, n) time-varying for a finite horizon).

    See :func:`riccati`.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           Sigma0=np.eye(2), gamma=0.9)
    >>> Ks = optimal_gain(lqr)
    >>> bool(np.max(np.abs(cost_gradient(lqr, Ks))) < 1e-10)  # stationary point of C
    True
    """
    return riccati(lqr).K
