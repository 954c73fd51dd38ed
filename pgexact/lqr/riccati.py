r"""Optimal LQR control from the Riccati equation (infinite horizon) or recursion (finite horizon).

Bellman's equation for the cost-to-go :math:`x^\top P x + d` with the per-step cost
:math:`x^\top Qx + u^\top Ru + 2x^\top Nu` gives the minimizer
:math:`u^* = -K^*x`, :math:`K^* = (R + \gamma B^\top P B)^{-1}(\gamma B^\top P A + N^\top)`, and the
discounted DARE

.. math::

    P = Q + \gamma A^\top P A - (\gamma A^\top P B + N)(R + \gamma B^\top P B)^{-1}(\gamma B^\top P A + N^\top),

which is ``scipy.linalg.solve_discrete_are(sqrt(γ) A, sqrt(γ) B, Q, R, s=N)``. The noise adds the
constant :math:`d = \frac{\gamma}{1-\gamma}\mathrm{tr}(PW)` and does not change :math:`K^*`
(certainty equivalence); neither does :math:`\Sigma_0`, which is needed only for the optimal cost.
Bertsekas, *Dynamic Programming and Optimal Control*, vol. I, sec. 4.1; QuantEcon ``LQ``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg

from ..errors import NumericalError
from .._validation import ReadOnlyOnCopy
from ._args import check_lqr, freeze_fields
from ._stein import spectral_radius_of
from .model import LQR

__all__ = ["OptimalControl", "riccati", "optimal_gain"]


@dataclass(frozen=True, eq=False)
class OptimalControl(ReadOnlyOnCopy):
    r"""Optimal LQR control from the Riccati equation (arrays read-only).

    Attributes
    ----------
    K : numpy.ndarray, shape (m, n), or (H, m, n) time-varying for a finite horizon
    P : numpy.ndarray, shape (n, n), or (H, n, n)
    offset : float or numpy.ndarray of shape (H,)
        Constant :math:`d` of the optimal cost-to-go :math:`x^\top P x + d` (``d[t]`` for a finite
        horizon): the cost of the process noise.
    cost : float or None
        Optimal cost :math:`\mathrm{tr}(P\Sigma_0) + d` (deterministic policy; policy noise only
        adds cost); ``None`` when the model has no ``Sigma0``.
    """

    K: np.ndarray
    P: np.ndarray
    offset: object
    cost: float | None

    def __post_init__(self) -> None:
        freeze_fields(self, ("K", "P", "offset"))


@np.errstate(under="ignore")
def riccati(lqr: LQR) -> OptimalControl:
    r"""Optimal gain(s) and cost-to-go from the Riccati equation.

    Infinite horizon: :math:`P^*` solves the discounted DARE (module docstring) and
    :math:`K^* = (R + \gamma B^\top P^* B)^{-1}(\gamma B^\top P^* A + N^\top)`; the optimal
    cost is :math:`\mathrm{tr}(P^*\Sigma_0) + \frac{\gamma}{1-\gamma}\mathrm{tr}(P^* W)`.
    Finite horizon H: :math:`P_H = 0`,
    :math:`K_t = (R + \gamma B^\top P_{t+1}B)^{-1}(\gamma B^\top P_{t+1}A + N^\top)`,
    :math:`P_t = Q_{K_t} + \gamma (A - BK_t)^\top P_{t+1}(A - BK_t)` (time-varying gains, shape
    (H, m, n); Bertsekas, DPOC vol. I, sec. 4.1). ``Sigma0`` is not needed.

    Raises :class:`~pgexact.errors.NumericalError` if the DARE has no stabilizing solution
    (e.g. :math:`(\sqrt\gamma A, \sqrt\gamma B)` not stabilizable).

    Examples
    --------
    >>> import numpy as np, scipy.linalg
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           gamma=0.9, N=[[0.1], [0.0]])
    >>> oc = riccati(lqr)
    >>> s = np.sqrt(0.9)
    >>> P = scipy.linalg.solve_discrete_are(s * lqr.A, s * lqr.B, lqr.Q, lqr.R, s=lqr.N)
    >>> bool(np.allclose(oc.P, P, rtol=1e-10)), oc.cost is None
    (True, True)
    """
    lqr = check_lqr(lqr)
    A, B, Q, R, W, N, g = lqr.A, lqr.B, lqr.Q, lqr.R, lqr.noise_cov, lqr.N, lqr.gamma
    if lqr.horizon is None:
        sg = np.sqrt(g)
        # scipy's solver overflows and casts NaN internally on extreme scales: its result is checked below
        with np.errstate(all="ignore"):
            try:
                # the DARE is homogeneous in (Q, R, N): solve it at unit scale (a power of two, so
                # the scaling is exact) and scale P back, which keeps scipy's iterations in range
                s = 2.0 ** np.round(np.log2(max(np.max(np.abs(Q)), np.max(np.abs(R)), np.max(np.abs(N)))))
                Ps = scipy.linalg.solve_discrete_are(sg * A, sg * B, Q / s, R / s,
                                                     s=N / s if lqr.has_cross else None)
                Ps = 0.5 * (Ps + Ps.T)
                K = np.linalg.solve(R / s + g * (B.T @ Ps @ B), g * (B.T @ Ps @ A) + N.T / s)
                P = s * Ps
            except (np.linalg.LinAlgError, ValueError) as exc:
                raise NumericalError(
                    f"the discounted Riccati equation of lqr has no stabilizing solution ({exc}); check "
                    "that (sqrt(gamma) A, sqrt(gamma) B) is stabilizable, or lower gamma"
                ) from None
            d = g / (1.0 - g) * float(np.sum(P * W)) if g < 1.0 else 0.0
            cost = None if lqr.Sigma0 is None else float(np.sum(P * lqr.Sigma0)) + d
            _check_finite_solution(P, K, d, cost)
            rho = spectral_radius_of(sg * (A - B @ K))
        if not rho < 1.0:
            raise NumericalError(
                f"the discounted Riccati equation of lqr has no stabilizing solution (the solver's gain "
                f"leaves spectral radius {rho:.6g} >= 1); check that (sqrt(gamma) A, sqrt(gamma) B) is "
                "stabilizable, or lower gamma"
            )
        return OptimalControl(K=K, P=P, offset=d, cost=cost)
    H, n, m = lqr.horizon, lqr.n_states, lqr.n_actions
    Ps = np.empty((H + 1, n, n))
    Ks = np.empty((H, m, n))
    c = np.zeros(H + 1)
    Ps[H] = 0.0
    with np.errstate(over="ignore", invalid="ignore"):
        for t in range(H - 1, -1, -1):
            Pn = Ps[t + 1]
            if not np.all(np.isfinite(Pn)):
                _check_finite_solution(Pn)
            Kt = np.linalg.solve(R + g * (B.T @ Pn @ B), g * (B.T @ Pn @ A) + N.T)
            AK = A - B @ Kt
            NK = N @ Kt
            Pt = Q + Kt.T @ R @ Kt - NK - NK.T + g * (AK.T @ Pn @ AK)
            Ps[t] = 0.5 * (Pt + Pt.T)
            Ks[t] = Kt
            c[t] = g * (float(np.sum(Pn * W)) + c[t + 1])
        cost = None if lqr.Sigma0 is None else float(np.sum(Ps[0] * lqr.Sigma0) + c[0])
    _check_finite_solution(Ps, Ks, c, cost)
    return OptimalControl(K=Ks, P=Ps[:-1].copy(), offset=c[:-1].copy(), cost=cost)


def _check_finite_solution(*values: Any) -> None:
    """Refuse a Riccati solution with an entry that overflowed (``None`` values are skipped)."""
    if not all(np.all(np.isfinite(v)) for v in values if v is not None):
        raise NumericalError(
            "the Riccati solution of lqr (its cost-to-go P, gain K or cost) overflows float64: "
            "rescale the model (Q, R, A, Sigma0, the noise)"
        )


@np.errstate(under="ignore")
def optimal_gain(lqr: LQR) -> np.ndarray:
    r"""The optimal gain :math:`K^* = (R + \gamma B^\top P^* B)^{-1}(\gamma B^\top P^* A + N^\top)`.

    Shape (m, n); (H, m, n) time-varying for a finite horizon. See :func:`riccati`; no
    ``Sigma0`` needed.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> from pgexact.lqr import cost_gradient
    >>> lqr = LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]], gamma=0.9)
    >>> Ks = optimal_gain(lqr)
    >>> bool(np.max(np.abs(cost_gradient(lqr.with_initial_cov(np.eye(2)), Ks))) < 1e-10)
    True
    """
    return riccati(lqr).K
