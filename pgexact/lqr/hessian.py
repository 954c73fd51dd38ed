r"""Exact second derivatives of the LQR cost: the Hessian in the gain K, the log-std block of a
linear-Gaussian policy, and Newton's direction.

**Infinite horizon** (Bu, Mesbahi, Fazel & Mesbahi 2019, "LQR through the lens of first order
methods: discrete-time case", arXiv:1907.08921, who study the Hessian of the LQR cost through
Lyapunov equations; here with discount, noise and the cross cost N, derived in full below). With :math:`A_K = A - BK`, :math:`E_K = (R + \gamma B^\top P_K B)K - \gamma B^\top P_K A - N^\top`
and :math:`\nabla_K C = 2E_K\Sigma_K` (:func:`pgexact.lqr.cost_gradient`), the derivative of the
gradient along a direction X (m, n) is

.. math::

    \nabla^2 C(K)[X] = 2\big[(R + \gamma B^\top P_K B)X - \gamma B^\top P'_K[X] A_K\big]\Sigma_K
                       + 2 E_K\, \Sigma'_K[X],

where the derivatives of :math:`P_K` and :math:`\Sigma_K` solve two Stein equations with the
closed loop :math:`a = \sqrt\gamma A_K`:

.. math::

    P' = \gamma A_K^\top P' A_K + X^\top E_K + E_K^\top X, \qquad
    \Sigma' = \gamma A_K \Sigma' A_K^\top - \gamma (B X \Sigma_K A_K^\top + A_K\Sigma_K X^\top B^\top).

(Differentiate :math:`P_K = Q_K + \gamma A_K^\top P_K A_K` and
:math:`\Sigma_K = \Sigma_0 + \tfrac{\gamma}{1-\gamma}W_K + \gamma A_K\Sigma_K A_K^\top`.)
At :math:`K^*` :math:`E_K = 0` and the Hessian is
:math:`2 (R + \gamma B^\top P_{K^*} B) \otimes \Sigma_{K^*}` minus the P' term.

**Finite horizon** (stationary K, or time-varying gains :math:`K_t` with directions :math:`X_t`
and one gradient block per t): the same by recursions, :math:`P'_H = 0`,
:math:`P'_t = \gamma A_K^\top P'_{t+1} A_K + X^\top E_t + E_t^\top X`, :math:`S'_0 = 0`,
:math:`S'_{t+1} = A_K S'_t A_K^\top - (B X S_t A_K^\top + A_K S_t X^\top B^\top)`, and
:math:`\nabla^2 C[X] = \sum_t 2\gamma^t[(R + \gamma B^\top P_{t+1}B)X - \gamma B^\top P'_{t+1}A_K]S_t + 2\gamma^t E_t S'_t`.

**Log-std block** (:math:`\Sigma_u = \mathrm{diag}(e^{2\ell})`): C is affine in :math:`\Sigma_u`
with slope :math:`G = \partial C/\partial\Sigma_u = (R + \gamma B^\top P_K B)/(1-\gamma)`
(:func:`pgexact.lqr.noise_gradient`), so :math:`\partial^2 C/\partial\ell_i\partial\ell_j = 4\delta_{ij} e^{2\ell_i} G_{ii}`
and :math:`\partial^2 C/\partial\ell_i\,\partial K[X] = 2 e^{2\ell_i}\,\frac{\gamma}{1-\gamma}(B^\top P'_K[X] B)_{ii}`
(finite horizon: :math:`\sum_t\gamma^{t+1}(B^\top P'_{t+1}B)_{ii}` in place of the fraction).

Matrices in K are flattened row-major (``K.reshape(-1)``), the order of
:class:`~pgexact.lqr.LinearGaussian`'s θ.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.linalg

from .._validation import as_float_array, check_memory
from ..errors import NumericalError
from ._args import check_action_cov, check_gain, check_lqr, check_policy
from ._stein import stein_pair
from .evaluation import LQREvaluation, _evaluate
from .gradients import _finite_output, _gain_error, _grad_from
from .model import LQR
from .policy import LinearGaussian

__all__ = ["cost_hessian", "cost_hessian_vector_product", "policy_hessian", "newton_direction"]

#: For a whole Hessian, Stein equations up to this many unknowns (n^2) are solved for all directions
#: by one LU of the Kronecker form I - a (x) a; larger ones (and single products) one direction at
#: a time by :func:`pgexact.lqr._stein.stein_pair`.
_KRONECKER_MAX = 1024


class _Derivatives:
    """Directional derivatives of the gradient, and of P, for a validated evaluation."""

    def __init__(self, ev: LQREvaluation, many: bool = True) -> None:
        self.ev = ev
        lqr = ev.lqr
        self.lqr = lqr
        self.AK = lqr.A - lqr.B @ ev.K
        self.E = _gain_error(ev)
        n = lqr.n_states
        self.lu = None
        if many and lqr.horizon is None and n * n <= _KRONECKER_MAX:
            a = np.sqrt(lqr.gamma) * self.AK
            self.lu = scipy.linalg.lu_factor(np.eye(n * n) - np.kron(a, a), check_finite=False)

    def _stein(self, q_sigma: np.ndarray, q_p: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        n = self.lqr.n_states
        if self.lu is not None:
            dS = scipy.linalg.lu_solve(self.lu, q_sigma.reshape(-1), check_finite=False).reshape(n, n)
            dP = scipy.linalg.lu_solve(self.lu, q_p.reshape(-1), trans=1, check_finite=False).reshape(n, n)
            return 0.5 * (dS + dS.T), 0.5 * (dP + dP.T)
        dS, dP, _ = stein_pair(np.sqrt(self.lqr.gamma) * self.AK, q_sigma, q_p)
        return dS, dP

    def along(self, X: np.ndarray, state_term: bool = True) -> tuple[np.ndarray, np.ndarray]:
        r"""``(Hessian[X], B^T P' B summed with its weights)``: the gradient's derivative (m, n) and the
        derivative of :math:`\partial C/\partial\Sigma_u` along X (m, m). ``state_term=False``
        leaves out :math:`2E_K\Sigma'_K[X]` (the theorem registry's negative control)."""
        e = 1.0 if state_term else 0.0
        lqr, ev, AK, E = self.lqr, self.ev, self.AK, self.E
        A, B, R, g = lqr.A, lqr.B, lqr.R, lqr.gamma
        if lqr.horizon is None:
            Sigma, P = ev.Sigma, ev.P
            BXSA = B @ X @ Sigma @ AK.T
            dS, dP = self._stein(-g * (BXSA + BXSA.T), X.T @ E + E.T @ X)
            dE = (R + g * (B.T @ P @ B)) @ X - g * (B.T @ dP @ AK)
            dG = B.T @ dP @ B * (g / (1.0 - g)) if g < 1.0 else np.zeros((lqr.n_actions,) * 2)
            return 2.0 * (dE @ Sigma + e * (E @ dS)), dG
        H, n = int(lqr.horizon), lqr.n_states
        P, S = ev.P, ev.S  # P[t] = P_t (t < H), S[t]
        varying = ev.K.ndim == 3  # time-varying gains K_t: X is (H, m, n) too, one output per t
        AKs = AK if varying else np.broadcast_to(AK, (H, n, n))
        Xs = X if varying else np.broadcast_to(X, (H,) + X.shape)
        # backward: dP_{t} from dP_{t+1}; dE_t uses P_{t+1}, dP_{t+1}
        dPs = np.zeros((H + 1, n, n))
        for t in range(H - 1, -1, -1):
            dPs[t] = g * (AKs[t].T @ dPs[t + 1] @ AKs[t]) + Xs[t].T @ E[t] + E[t].T @ Xs[t]
        out = np.zeros(X.shape)
        dG = np.zeros((lqr.n_actions,) * 2)
        dS = np.zeros((n, n))
        for t in range(H):
            Pn = P[t + 1] if t + 1 < H else np.zeros((n, n))
            dE = (R + g * (B.T @ Pn @ B)) @ Xs[t] - g * (B.T @ dPs[t + 1] @ AKs[t])
            term = (2.0 * g**t) * (dE @ S[t] + e * (E[t] @ dS))
            if varying:
                out[t] = term
            else:
                out += term
            dG += g ** (t + 1) * (B.T @ dPs[t + 1] @ B)
            BXSA = B @ Xs[t] @ S[t] @ AKs[t].T
            dS = AKs[t] @ dS @ AKs[t].T - (BXSA + BXSA.T)
        return out, dG


def _gain_eval(lqr: Any, K: Any, noise_cov: Any, gain: str = "K") -> LQREvaluation:
    lqr = check_lqr(lqr)
    K = check_gain(lqr, K)
    return _evaluate(lqr, K, check_action_cov(lqr, noise_cov), gain=gain)


def _check_size(lqr: LQR, what: str, k: int | None = None) -> None:
    """Refuse a dense Hessian over k gain entries (default m*n) beyond the memory of one call."""
    k = lqr.n_actions * lqr.n_states if k is None else k
    n2 = lqr.n_states**2
    kron = 2 * n2 * n2 if n2 <= _KRONECKER_MAX else 0
    check_memory(f"{what} over {k} gain entries", 8 * (2 * k * k + kron),
                 "use cost_hessian_vector_product (no dense matrix)")


@_finite_output("cost Hessian-vector product", "K")
def cost_hessian_vector_product(lqr: LQR, K: Any, X: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Exact :math:`\nabla^2 C(K)[X]`, the derivative of :func:`pgexact.lqr.cost_gradient` along X, shape (m, n).

    .. math::

        \nabla^2 C(K)[X] = 2\big[(R + \gamma B^\top P_K B)X - \gamma B^\top P'_K[X] A_K\big]\Sigma_K + 2E_K\Sigma'_K[X]

    with :math:`P', \Sigma'` from two Stein equations (module docstring :mod:`pgexact.lqr.hessian`;
    Bu, Mesbahi, Fazel & Mesbahi 2019). Finite horizons by recursions; a time-varying K of shape
    (H, m, n) takes X of the same shape and returns the (H, m, n) derivative of
    :func:`pgexact.lqr.cost_gradient`'s per-t blocks.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> from pgexact.lqr import cost_gradient
    >>> lqr = LQR(A=[[0.9, 0.3], [0.0, 0.8]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           gamma=0.95, Sigma0=np.eye(2))
    >>> K, X, h = np.array([[0.1, 0.2]]), np.array([[1.0, -0.5]]), 1e-5
    >>> fd = (cost_gradient(lqr, K + h * X) - cost_gradient(lqr, K - h * X)) / (2 * h)
    >>> bool(np.allclose(cost_hessian_vector_product(lqr, K, X), fd, rtol=1e-7))
    True
    """
    ev = _gain_eval(lqr, K, noise_cov)
    X = as_float_array("X", X, shape=ev.K.shape)
    return _Derivatives(ev, many=False).along(X)[0]


def _hessian_blocks(ev: LQREvaluation, state_term: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(dense K-block (k, k), dG per direction (k, m, m)), k = K.size (row-major vec of K)."""
    m = ev.lqr.n_actions
    k = ev.K.size
    der = _Derivatives(ev)
    Hk = np.empty((k, k))
    dGs = np.empty((k, m, m))
    for j, X in enumerate(np.eye(k).reshape((k,) + ev.K.shape)):
        col, dGs[j] = der.along(X, state_term)
        Hk[:, j] = col.reshape(-1)
    return Hk, dGs


@_finite_output("cost Hessian", "K")
def cost_hessian(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Exact Hessian of the LQR cost in the gain, :math:`\nabla^2_{\mathrm{vec}K} C(K)`, shape (m·n, m·n).

    Column j is :func:`cost_hessian_vector_product` along the j-th unit gain (row-major vec of
    K); the Stein equations of all m·n directions share one factorization when
    :math:`n^2 \le 1024`. Time-varying gains (H, m, n) of a finite horizon give an
    (H·m·n, H·m·n) Hessian. Not symmetrized: symmetric to rounding.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> from pgexact.lqr import optimal_gain
    >>> lqr = LQR(A=[[1.0, 0.2], [0.0, 0.9]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[0.5]],
    ...           gamma=0.9, Sigma0=np.eye(2))
    >>> H = cost_hessian(lqr, optimal_gain(lqr))
    >>> bool(np.allclose(H, H.T, atol=1e-10) and np.all(np.linalg.eigvalsh(H) > 0))  # a strict minimum
    True
    """
    ev = _gain_eval(lqr, K, noise_cov)
    _check_size(ev.lqr, "cost_hessian", ev.K.size)
    return _hessian_blocks(ev)[0]


@_finite_output("policy Hessian", "theta")
def policy_hessian(lqr: LQR, policy: LinearGaussian, theta: Any) -> np.ndarray:
    r"""Exact Hessian of the return :math:`J = -C` in the parameters of a linear-Gaussian policy, (n_params, n_params).

    .. math::

        \nabla^2_\theta J = -\begin{pmatrix} \nabla^2_{K} C & \partial_\ell\nabla_K C \\
        \cdot & \mathrm{diag}(4 e^{2\ell_i} G_{ii}) \end{pmatrix},\qquad
        \frac{\partial^2 C}{\partial\ell_i\,\partial K[X]} = 2e^{2\ell_i}\Big(\frac{\gamma}{1-\gamma}B^\top P'_K[X]B\Big)_{ii}

    (module docstring; the log-std block only with ``learn_log_std``; θ's K-block is row-major
    vec(K) of :math:`u = -Kx`, so the sign of the K-block follows :math:`J = -C` only).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> from pgexact.lqr import policy_gradient
    >>> lqr = LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], gamma=0.9, Sigma0=[[1.0]])
    >>> pol = LinearGaussian(1, 1, learn_log_std=True)
    >>> theta, e, h = pol.params([[0.3]], log_std=[-1.0]), np.array([0.0, 1.0]), 1e-5
    >>> fd = (policy_gradient(lqr, pol, theta + h * e) - policy_gradient(lqr, pol, theta - h * e)) / (2 * h)
    >>> bool(np.allclose(policy_hessian(lqr, pol, theta) @ e, fd, rtol=1e-7))
    True
    """
    lqr = check_lqr(lqr)
    policy, theta = check_policy(lqr, policy, theta)
    _check_size(lqr, "policy_hessian")
    ev = _evaluate(lqr, policy.gain(theta), policy.action_cov(theta), gain="the gain K of theta")
    Hk, dGs = _hessian_blocks(ev)
    if not policy.learn_log_std:
        return -Hk
    from .gradients import _noise_grad_from

    m, k = lqr.n_actions, Hk.shape[0]
    var = np.diag(ev.action_cov)  # e^{2 l}
    G = _noise_grad_from(ev)
    cross = 2.0 * var[None, :] * np.diagonal(dGs, axis1=1, axis2=2)  # (mn, m)
    H = np.empty((k + m, k + m))
    H[:k, :k] = Hk
    H[:k, k:] = cross
    H[k:, :k] = cross.T
    H[k:, k:] = np.diag(4.0 * var * np.diag(G))
    return -H


@_finite_output("Newton direction", "K")
def newton_direction(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Newton's direction on the cost, :math:`D = -\mathrm{mat}\big((\nabla^2 C)^{-1}\mathrm{vec}\,\nabla_K C\big)`, shape (m, n).

    ``K + D`` is one step of Newton's method on :math:`C(K)`, which converges quadratically near
    :math:`K^*` (where the Hessian is positive definite; Bu et al. 2019, sec. 3; Nocedal &
    Wright 2006, Theorem 3.5). Raises :class:`~pgexact.errors.NumericalError` if the Hessian is
    singular to working precision.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> from pgexact.lqr import optimal_gain
    >>> lqr = LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], gamma=0.9, Sigma0=[[1.0]])
    >>> K = optimal_gain(lqr) + 0.05
    >>> for _ in range(4):
    ...     K = K + newton_direction(lqr, K)
    >>> bool(np.allclose(K, optimal_gain(lqr), rtol=0, atol=1e-14))
    True
    """
    ev = _gain_eval(lqr, K, noise_cov)
    _check_size(ev.lqr, "newton_direction", ev.K.size)
    Hk = _hessian_blocks(ev)[0]
    g = _grad_from(ev).reshape(-1)
    Hs = 0.5 * (Hk + Hk.T)
    try:
        lu = scipy.linalg.lu_factor(Hs, check_finite=False)
        if np.min(np.abs(np.diag(lu[0]))) <= 1e-14 * np.max(np.abs(Hs)):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        raise NumericalError(
            "the cost Hessian at K is singular to working precision: Newton's direction does not "
            "exist; take a gradient step (pgexact.lqr.cost_gradient) or use the Gauss-Newton direction"
        ) from None
    return -scipy.linalg.lu_solve(lu, g, check_finite=False).reshape(ev.K.shape)
