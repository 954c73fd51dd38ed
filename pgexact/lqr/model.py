r"""The linear-quadratic regulator (LQR) model: ``x' = A x + B u + w``, cost ``x^T Q x + u^T R u``.

Conventions (DESIGN.md): the state evolves as :math:`x_{t+1} = A x_t + B u_t + w_t` with
:math:`w_t \sim N(0, W)` i.i.d., :math:`x_0 \sim N(0, \Sigma_0)`, and the per-step cost
:math:`c_t = x_t^\top Q x_t + u_t^\top R u_t` is *minimized*. Where a reward is meant (the finite
MDP side maximizes :math:`J`), pgexact reports :math:`J = -C`: every "J", "V", "Q", "A" and
policy gradient "∇J" of :mod:`pgexact.lqr` is the negative of the corresponding cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import as_float_array, check_horizon

__all__ = ["LQR", "SYMMETRY_RTOL", "PSD_RTOL"]

#: Relative tolerance on symmetry: ``|M[i, j] - M[j, i]| <= SYMMETRY_RTOL * max(1, max|M|)``.
SYMMETRY_RTOL = 1e-10
#: Relative tolerance on semi-definiteness: smallest eigenvalue ``>= -PSD_RTOL * max(1, max|M|)``
#: (an exactly PSD matrix has computed eigenvalues down to about ``-n * eps * |M|``).
PSD_RTOL = 1e-10


def _square(name: str, value: Any, n: int | None = None) -> np.ndarray:
    arr = as_float_array(name, value, ndim=2)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n}, {n}) to match A, got {arr.shape}")
    return arr


def _symmetric(name: str, arr: np.ndarray) -> np.ndarray:
    scale = max(1.0, float(np.max(np.abs(arr)))) if arr.size else 1.0
    diff = np.abs(arr - arr.T)
    bad = diff > SYMMETRY_RTOL * scale
    if bad.any():
        i, j = (int(k) for k in np.argwhere(bad)[0])
        raise ValueError(
            f"{name} must be symmetric: {name}[{i}, {j}] = {arr[i, j]:.17g} but "
            f"{name}[{j}, {i}] = {arr[j, i]:.17g} (relative tolerance {SYMMETRY_RTOL:g})"
        )
    return 0.5 * (arr + arr.T)


def _semidefinite(name: str, arr: np.ndarray, strict: bool) -> None:
    scale = max(1.0, float(np.max(np.abs(arr)))) if arr.size else 1.0
    lam = np.linalg.eigvalsh(arr)
    lo = float(lam[0]) if lam.size else 0.0
    if strict:
        try:
            np.linalg.cholesky(arr)
            ok = lo > 0.0
        except np.linalg.LinAlgError:
            ok = False
        if not ok:
            raise ValueError(
                f"{name} must be positive definite, got smallest eigenvalue {lo:.6g}"
            )
    elif lo < -PSD_RTOL * scale:
        raise ValueError(
            f"{name} must be positive semi-definite, got smallest eigenvalue {lo:.6g} "
            f"(tolerance {-PSD_RTOL * scale:.3g})"
        )


def check_covariance(name: str, value: Any, n: int) -> np.ndarray:
    """A symmetric positive semi-definite (n, n) matrix (symmetrized copy)."""
    arr = _symmetric(name, _square(name, value, n))
    _semidefinite(name, arr, strict=False)
    return arr


@dataclass(frozen=True, eq=False)
class LQR:
    r"""A discrete-time linear-quadratic regulator with Gaussian initial state and process noise.

    .. math::

        x_{t+1} = A x_t + B u_t + w_t, \quad w_t \sim N(0, W), \quad x_0 \sim N(0, \Sigma_0),
        \qquad C = E\Big[\sum_{t} \gamma^t (x_t^\top Q x_t + u_t^\top R u_t)\Big]

    summed over :math:`t \ge 0` (``horizon=None``) or :math:`t < H` (``horizon=H``).

    **Cost versus reward.** The LQR *cost* :math:`C` is minimized. The finite-MDP side of
    pgexact maximizes a return :math:`J`; here :math:`J = -C` (reward :math:`r_t = -c_t`), and
    every quantity named ``J``, ``V``, ``Q``, ``A`` or "policy gradient" in :mod:`pgexact.lqr`
    follows that sign, while ``cost`` and :func:`~pgexact.lqr.cost_gradient` are the cost side.

    **Well-posedness.** With an infinite horizon the expected cost is finite only if
    :math:`\gamma < 1`, or :math:`\gamma = 1` with no noise at all (``noise_cov`` zero and a
    deterministic policy; the cost is then :math:`\mathrm{tr}(P_K \Sigma_0)`, Fazel et al. 2018).
    ``gamma = 1`` with process noise and ``horizon=None`` is rejected here (the average cost is
    not offered). A finite horizon accepts ``0 <= gamma <= 1``.

    Parameters
    ----------
    A : array_like, shape (n, n)
        State transition matrix.
    B : array_like, shape (n, m)
        Input matrix.
    Q : array_like, shape (n, n)
        State cost, symmetric positive semi-definite.
    R : array_like, shape (m, m)
        Input cost, symmetric positive definite.
    Sigma0 : array_like, shape (n, n)
        Covariance of the initial state (mean zero), symmetric positive semi-definite.
    gamma : float, default 1.0
        Discount factor.
    noise_cov : array_like of shape (n, n), or None
        Process-noise covariance :math:`W` (symmetric PSD); ``None`` means no process noise.
    horizon : int or None
        ``None`` for the infinite horizon, ``H >= 1`` for :math:`t = 0, \dots, H-1`.

    Notes
    -----
    Symmetry is checked to relative tolerance :data:`SYMMETRY_RTOL` and the matrices are then
    symmetrized; semi-definiteness to :data:`PSD_RTOL`. Arrays are copied and made read-only.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           Sigma0=np.eye(2), gamma=0.9)
    >>> lqr.n_state, lqr.n_action, lqr.has_noise
    (2, 1, False)
    """

    A: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    Sigma0: np.ndarray
    gamma: float = 1.0
    noise_cov: np.ndarray | None = None
    horizon: int | None = None
    has_noise: bool = field(init=False, repr=False)

    def __post_init__(self) -> None:
        A = _square("A", self.A)
        n = A.shape[0]
        if n == 0:
            raise ValueError("A must have at least one state, got shape (0, 0)")
        B = as_float_array("B", self.B, ndim=2)
        if B.shape[0] != n:
            raise ValueError(f"B must have shape (n, m) with n={n} rows to match A, got {B.shape}")
        m = B.shape[1]
        if m == 0:
            raise ValueError(f"B must have at least one column (input), got shape {B.shape}")
        Q = _symmetric("Q", _square("Q", self.Q, n))
        _semidefinite("Q", Q, strict=False)
        R = _square("R", self.R)
        if R.shape[0] != m:
            raise ValueError(f"R must have shape ({m}, {m}) to match B's {m} columns, got {R.shape}")
        R = _symmetric("R", R)
        _semidefinite("R", R, strict=True)
        Sigma0 = check_covariance("Sigma0", self.Sigma0, n)
        W = np.zeros((n, n)) if self.noise_cov is None else check_covariance("noise_cov", self.noise_cov, n)
        horizon = check_horizon(self.horizon)
        if isinstance(self.gamma, bool) or not isinstance(self.gamma, (int, float, np.integer, np.floating)):
            raise TypeError(f"gamma must be a real number, got {self.gamma!r}")
        gamma = float(self.gamma)
        if not (0.0 <= gamma <= 1.0):
            raise ValueError(f"gamma is {gamma}, expected 0 <= gamma <= 1")
        has_noise = bool(np.any(W != 0.0))
        if horizon is None and gamma == 1.0 and has_noise:
            raise ValueError(
                "gamma=1 with process noise (noise_cov != 0) and horizon=None: the infinite-horizon "
                "cost diverges; use gamma < 1, a finite horizon, or noise_cov=None"
            )
        for arr in (A, B, Q, R, Sigma0, W):
            arr.flags.writeable = False
        object.__setattr__(self, "A", A)
        object.__setattr__(self, "B", B)
        object.__setattr__(self, "Q", Q)
        object.__setattr__(self, "R", R)
        object.__setattr__(self, "Sigma0", Sigma0)
        object.__setattr__(self, "noise_cov", W)
        object.__setattr__(self, "gamma", gamma)
        object.__setattr__(self, "horizon", horizon)
        object.__setattr__(self, "has_noise", has_noise)

    @property
    def n_state(self) -> int:
        """State dimension n."""
        return int(self.A.shape[0])

    @property
    def n_action(self) -> int:
        """Input dimension m."""
        return int(self.B.shape[1])

    @property
    def discounted(self) -> bool:
        """True for the infinite-horizon objective (``horizon is None``)."""
        return self.horizon is None

    def with_horizon(self, horizon: int | None, gamma: float | None = None) -> "LQR":
        """The same system with another horizon (and optionally another discount).

        A rollout of length T of a discounted model estimates the gradient of
        ``lqr.with_horizon(T)`` (the truncated objective), which is the exact reference to use.
        """
        return LQR(
            self.A, self.B, self.Q, self.R, self.Sigma0,
            gamma=self.gamma if gamma is None else gamma,
            noise_cov=self.noise_cov if self.has_noise else None,
            horizon=horizon,
        )
