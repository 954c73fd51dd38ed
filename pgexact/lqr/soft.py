r"""Entropy-regularized (soft) LQR with linear-Gaussian policies, in closed form.

The soft objective (reward convention, SAC's; Haarnoja et al. 2018, eq. 1) of the policy
:math:`\pi(u|x) = N(u; -Kx, \Sigma)` with temperature :math:`\alpha > 0` is

.. math::

    J_\alpha(K, \Sigma) = E\Big[\sum_{t\ge0}\gamma^t\big(r(x_t, u_t) + \alpha\,\mathcal H(\pi(\cdot|x_t))\big)\Big]
    = -C(K, \Sigma) + \frac{\alpha\,\mathcal H(\Sigma)}{1-\gamma},
    \qquad \mathcal H(\Sigma) = \tfrac12\log\det(2\pi e\,\Sigma),

with :math:`r = -(x^\top Qx + u^\top Ru + 2x^\top Nu)` and :math:`C` the LQR cost of
:func:`pgexact.lqr.evaluate`. The soft values are :math:`V^\pi(x) = -(x^\top P_K x + c_K) + \alpha\mathcal H/(1-\gamma)`
and :math:`Q^\pi(x, u) = r(x, u) + \gamma E[V^\pi(Ax + Bu + w)]`.

**Soft-optimal policy.** :math:`Q^\pi` is a concave quadratic in u with Hessian
:math:`-2M_K`, :math:`M_K = R + \gamma B^\top P_K B`, so the soft-greedy policy
:math:`\pi'(u|x) \propto \exp(Q^\pi(x, u)/\alpha)` (soft policy improvement; Haarnoja et al. 2018,
Lemma 2) is Gaussian:

.. math::

    K' = M_K^{-1}(\gamma B^\top P_K A + N^\top), \qquad \Sigma' = \tfrac{\alpha}{2} M_K^{-1}.

The gain update is Hewer's policy iteration and does not depend on Σ, so soft policy iteration
converges (quadratically) to the gain :math:`K^*` of the ordinary Riccati equation and to
:math:`\Sigma^* = \frac\alpha2(R + \gamma B^\top P^*B)^{-1}`; the optimal soft value is
:math:`V^*(x) = -(x^\top P^* x + d^*)` with
:math:`(1-\gamma)d^* = \gamma\,\mathrm{tr}(P^*W) - \frac\alpha2\log\det(\pi\alpha M^{-1})`,
:math:`M = R + \gamma B^\top P^* B`, from
:math:`V^*(x) = \alpha\log\int\exp(Q^*(x, u)/\alpha)\,du` (the soft Bellman optimality equation).
Infinite horizon, :math:`\gamma < 1`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import (
    as_float_array,
    check_covariance,
    check_positive_finite,
    check_positive_int,
    check_semidefinite,
    check_square,
    check_symmetric,
)
from ..errors import NumericalError
from .._validation import ReadOnlyOnCopy
from ._args import check_gain, check_infinite, check_lqr, freeze_fields
from .evaluation import LQREvaluation, _evaluate
from .model import LQR
from .policy import _finite_result
from .riccati import riccati

__all__ = [
    "gaussian_entropy",
    "SoftEvaluation",
    "SoftOptimal",
    "soft_evaluate",
    "soft_optimal",
    "soft_policy_improvement",
    "soft_policy_iteration",
    "MAX_ITERATIONS",
]


@np.errstate(under="ignore")
def gaussian_entropy(cov: Any) -> float:
    r"""Differential entropy :math:`\mathcal H = \frac12\log\det(2\pi e\Sigma)` of :math:`N(\mu, \Sigma)`.

    Parameters
    ----------
    cov : array_like, shape (m, m)
        Σ, symmetric positive definite (m >= 1).

    Examples
    --------
    >>> import math
    >>> bool(abs(gaussian_entropy([[1.0]]) - 0.5 * math.log(2 * math.pi * math.e)) < 1e-15)
    True
    """
    S = check_symmetric("cov", check_square("cov", cov))
    if S.shape[0] == 0:
        raise ValueError("cov must be at least 1 x 1, got shape (0, 0)")
    check_semidefinite("cov", S, strict=True)
    return _entropy(S)


def _entropy(S: np.ndarray) -> float:
    """The entropy of a validated positive definite Σ, from its Cholesky factor (no overflow of det Σ)."""
    L = np.linalg.cholesky(S)
    logdet = 2.0 * float(np.sum(np.log(np.diag(L))))
    return 0.5 * (S.shape[0] * np.log(2.0 * np.pi * np.e) + logdet)


def _check(lqr: Any, alpha: Any) -> tuple[LQR, float]:
    lqr = check_lqr(lqr)
    check_infinite(lqr, "the soft (entropy-regularized) LQR")
    if lqr.gamma >= 1.0:
        raise ValueError("the soft LQR needs gamma < 1 (the discounted entropy bonus sums to infinity otherwise)")
    return lqr, check_positive_finite("alpha", alpha)


@dataclass(frozen=True, eq=False)
class SoftEvaluation:
    r"""Soft values of :math:`\pi = N(-Kx, \Sigma)` at temperature α (reward convention).

    Attributes
    ----------
    J : float
        :math:`J_\alpha = -C(K, \Sigma) + \alpha\mathcal H(\Sigma)/(1-\gamma)`.
    entropy : float
        :math:`\mathcal H(\Sigma)`.
    alpha : float
    base : LQREvaluation
        The unregularized evaluation (cost, :math:`P_K`, :math:`\Sigma_K`).
    """

    J: float
    entropy: float
    alpha: float
    base: LQREvaluation

    @_finite_result("SoftEvaluation.V(x)")
    def V(self, x: Any) -> np.ndarray:
        r"""Soft state value :math:`V^\pi(x) = -(x^\top P_Kx + c_K) + \alpha\mathcal H/(1-\gamma)`, x (..., n) -> (...)."""
        return self.base.V(x) + self.alpha * self.entropy / (1.0 - self.base.lqr.gamma)

    @_finite_result("SoftEvaluation.Q(x, u)")
    def Q(self, x: Any, u: Any) -> np.ndarray:
        r"""Soft action value :math:`Q^\pi(x, u) = r(x, u) + \gamma E_w[V^\pi(Ax + Bu + w)]`, x (..., n), u (..., m) -> (...)."""
        g = self.base.lqr.gamma
        return self.base.Q(x, u) + g * self.alpha * self.entropy / (1.0 - g)


@np.errstate(under="ignore")
def soft_evaluate(lqr: LQR, K: Any, action_cov: Any, alpha: float) -> SoftEvaluation:
    r"""Soft policy evaluation of :math:`\pi(u|x) = N(u; -Kx, \Sigma)` (module docstring).

    .. math::

        J_\alpha(K, \Sigma) = -C(K, \Sigma) + \frac{\alpha}{2(1-\gamma)}\log\det(2\pi e\Sigma)

    Parameters
    ----------
    lqr : LQR
        Infinite horizon, γ < 1, with ``Sigma0``.
    K : array_like, shape (m, n)
    action_cov : array_like, shape (m, m)
        Σ, positive definite.
    alpha : float
        Temperature α > 0.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> from pgexact.lqr import evaluate
    >>> lqr = LQR([[0.9]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9, Sigma0=[[1.0]])
    >>> se = soft_evaluate(lqr, [[0.5]], [[0.2]], alpha=0.1)
    >>> bool(np.isclose(se.J, -evaluate(lqr, [[0.5]], [[0.2]]).cost + 0.1 * gaussian_entropy([[0.2]]) / 0.1))
    True
    """
    lqr, alpha = _check(lqr, alpha)
    K = check_gain(lqr, K, allow_time_varying=False)
    S = check_covariance("action_cov", action_cov, lqr.n_actions, " (n_actions, n_actions)")
    check_semidefinite("action_cov", S, strict=True)  # the entropy needs a density
    H = _entropy(S)
    ev = _evaluate(lqr, K, S)
    with np.errstate(over="ignore", invalid="ignore"):
        J = ev.J + alpha * H / (1.0 - lqr.gamma)
    _check_soft("soft objective J = -C + alpha H / (1 - gamma)", J, alpha)
    return SoftEvaluation(J=J, entropy=H, alpha=alpha, base=ev)


def _improve(lqr: LQR, P: np.ndarray, alpha: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    B, g = lqr.B, lqr.gamma
    with np.errstate(over="ignore", invalid="ignore"):
        M = lqr.R + g * (B.T @ P @ B)
        M = 0.5 * (M + M.T)
        K = np.linalg.solve(M, g * (B.T @ P @ lqr.A) + lqr.N.T)
        Minv = np.linalg.inv(M)
        S = 0.5 * alpha * 0.5 * (Minv + Minv.T)
    _check_soft("soft-greedy gain K' = M^-1 (gamma B^T P A + N^T)", K, alpha)
    _check_soft("soft-greedy covariance alpha/2 M^-1", S, alpha)
    return K, S, M


def _check_soft(what: str, value: Any, alpha: float) -> None:
    """Refuse a soft quantity that overflowed float64, naming alpha (it scales every entropy term)."""
    if not np.all(np.isfinite(value)):
        raise NumericalError(
            f"the {what} overflows float64 at alpha={alpha:g} on lqr: use a smaller temperature "
            "alpha or a rescaled model"
        )


@np.errstate(under="ignore")
def soft_policy_improvement(lqr: LQR, K: Any, alpha: float) -> tuple[np.ndarray, np.ndarray]:
    r"""The soft-greedy policy :math:`\pi'(u|x) \propto \exp(Q^\pi(x, u)/\alpha)` of a policy with gain K.

    .. math::

        K' = (R + \gamma B^\top P_K B)^{-1}(\gamma B^\top P_K A + N^\top), \qquad
        \Sigma' = \tfrac\alpha2 (R + \gamma B^\top P_K B)^{-1}

    (Haarnoja et al. 2018, Lemma 2; :math:`P_K` does not depend on the current policy's Σ).
    Returns ``(K', Σ')`` of shapes (m, n) and (m, m).
    """
    lqr, alpha = _check(lqr, alpha)
    return _soft_improve(lqr, check_gain(lqr, K, allow_time_varying=False), alpha, "K")


def _soft_improve(lqr: LQR, K: np.ndarray, alpha: float, gain: str) -> tuple[np.ndarray, np.ndarray]:
    P = _evaluate(lqr.with_initial_cov(np.eye(lqr.n_states)) if lqr.Sigma0 is None else lqr,
                  K, np.zeros((lqr.n_actions, lqr.n_actions)), gain=gain).P
    Kn, Sn, _ = _improve(lqr, P, alpha)
    return Kn, Sn


#: Largest accepted ``n_iterations`` of :func:`soft_policy_iteration` (it converges
#: quadratically: a few tens of iterations reach machine precision).
MAX_ITERATIONS = 1000


@np.errstate(under="ignore")
def soft_policy_iteration(lqr: LQR, K0: Any, alpha: float, n_iterations: int = 20) -> list[tuple[np.ndarray, np.ndarray]]:
    r"""Soft policy iteration from a stabilizing gain ``K0``: the iterates :math:`(K_k, \Sigma_k)`, k = 1..n.

    Each step is :func:`soft_policy_improvement` (soft policy evaluation is exact). The iterates
    converge to :func:`soft_optimal`'s :math:`(K^*, \Sigma^*)` (Haarnoja et al. 2018, Theorem 1;
    quadratically here, as Hewer's policy iteration).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR([[1.1]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9)
    >>> K, S = soft_policy_iteration(lqr, [[1.0]], alpha=0.5, n_iterations=10)[-1]
    >>> opt = soft_optimal(lqr, alpha=0.5)
    >>> bool(np.allclose(K, opt.K, rtol=1e-12) and np.allclose(S, opt.action_cov, rtol=1e-12))
    True
    """
    lqr, alpha = _check(lqr, alpha)
    n = check_positive_int("n_iterations", n_iterations)
    if n > MAX_ITERATIONS:
        raise ValueError(
            f"n_iterations is {n}, at most {MAX_ITERATIONS} accepted (each solves two Lyapunov "
            "equations; the iteration converges quadratically, a few tens suffice)"
        )
    K = check_gain(lqr, K0, allow_time_varying=False, name="K0")
    out = []
    for k in range(n):
        K, S = _soft_improve(lqr, K, alpha, "K0" if k == 0 else f"the iterate K_{k} from K0")
        out.append((K, S))
    return out


@dataclass(frozen=True, eq=False)
class SoftOptimal(ReadOnlyOnCopy):
    r"""The soft-optimal Gaussian policy and its value (arrays read-only).

    Attributes
    ----------
    K : numpy.ndarray, shape (m, n)
        Mean gain (that of the ordinary Riccati equation).
    action_cov : numpy.ndarray, shape (m, m)
        :math:`\Sigma^* = \frac\alpha2(R + \gamma B^\top P^*B)^{-1}`.
    P : numpy.ndarray, shape (n, n)
    offset : float
        :math:`d^*` of :math:`V^*(x) = -(x^\top P^*x + d^*)`.
    J : float or None
        :math:`-(\mathrm{tr}(P^*\Sigma_0) + d^*)`; None without ``Sigma0``.
    alpha : float
    lqr : LQR
    """

    K: np.ndarray
    action_cov: np.ndarray
    P: np.ndarray
    offset: float
    J: float | None
    alpha: float
    lqr: LQR

    def __post_init__(self) -> None:
        freeze_fields(self, ("K", "action_cov", "P"))

    @_finite_result("SoftOptimal.Q(x, u)")
    def Q(self, x: Any, u: Any) -> np.ndarray:
        r"""Soft-optimal action value, x (..., n), u (..., m) -> (...).

        .. math::

            Q^*(x, u) = -(x^\top Qx + u^\top Ru + 2x^\top Nu)
                        - \gamma\big[(Ax + Bu)^\top P^*(Ax + Bu) + \mathrm{tr}(P^*W) + d^*\big],

        so that :math:`\pi^*(u|x) \propto \exp(Q^*(x, u)/\alpha)` and
        :math:`V^*(x) = \alpha\log\int\exp(Q^*(x, u)/\alpha)\,du`.
        """
        lqr = self.lqr
        x = as_float_array("x", x)
        u = as_float_array("u", u)
        if x.shape[-1:] != (lqr.n_states,) or u.shape != x.shape[:-1] + (lqr.n_actions,):
            raise ValueError(f"x must have shape (..., {lqr.n_states}) and u (..., {lqr.n_actions}) with the "
                             f"same batch shape, got {x.shape} and {u.shape}")
        y = x @ lqr.A.T + u @ lqr.B.T
        cost = (np.einsum("...i,ij,...j->...", x, lqr.Q, x) + np.einsum("...i,ij,...j->...", u, lqr.R, u)
                + 2.0 * np.einsum("...i,ij,...j->...", x, lqr.N, u))
        nxt = np.einsum("...i,ij,...j->...", y, self.P, y) + float(np.sum(self.P * lqr.noise_cov)) + self.offset
        return -(cost + lqr.gamma * nxt)

    @_finite_result("SoftOptimal.V(x)")
    def V(self, x: Any) -> np.ndarray:
        r""":math:`V^*(x) = -(x^\top P^* x + d^*)`, x (..., n) -> (...)."""
        x = as_float_array("x", x)
        if x.shape[-1:] != (self.lqr.n_states,):
            raise ValueError(f"x must have shape (..., n_states={self.lqr.n_states}), got {x.shape}")
        return -(np.einsum("...i,ij,...j->...", x, self.P, x) + self.offset)


@np.errstate(under="ignore")
def soft_optimal(lqr: LQR, alpha: float) -> SoftOptimal:
    r"""The soft-optimal policy :math:`N(-K^*x, \Sigma^*)` and value of the entropy-regularized LQR.

    .. math::

        K^* = M^{-1}(\gamma B^\top P^*A + N^\top),\quad \Sigma^* = \tfrac\alpha2 M^{-1},\quad
        d^* = \frac{\gamma\,\mathrm{tr}(P^*W) - \frac\alpha2\log\det(\pi\alpha M^{-1})}{1-\gamma},
        \quad M = R + \gamma B^\top P^*B

    with :math:`P^*` the stabilizing solution of the discounted DARE (:func:`pgexact.lqr.riccati`);
    derivation in the module docstring.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR([[1.1]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9, Sigma0=[[1.0]])
    >>> opt = soft_optimal(lqr, alpha=0.5)
    >>> bool(np.isclose(opt.J, soft_evaluate(lqr, opt.K, opt.action_cov, 0.5).J, rtol=1e-12))
    True
    """
    lqr, alpha = _check(lqr, alpha)
    P = riccati(lqr).P
    K, S, M = _improve(lqr, P, alpha)
    g, m = lqr.gamma, lqr.n_actions
    _, logdet_M = np.linalg.slogdet(M)
    with np.errstate(over="ignore", invalid="ignore"):
        # log det(pi alpha M^-1) / 2, with log(pi alpha) = log(pi) + log(alpha) (no overflow of pi alpha)
        log_partition = 0.5 * (m * (np.log(np.pi) + np.log(alpha)) - logdet_M)
        d = (g * float(np.sum(P * lqr.noise_cov)) - alpha * log_partition) / (1.0 - g)
        J = None if lqr.Sigma0 is None else -(float(np.sum(P * lqr.Sigma0)) + d)
    _check_soft("soft value offset d* (and J)", d if J is None else (d, J), alpha)
    return SoftOptimal(K=K, action_cov=S, P=np.array(P), offset=d, J=J, alpha=alpha, lqr=lqr)
