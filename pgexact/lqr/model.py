r"""The linear-quadratic regulator (LQR) model: ``x' = A x + B u + w``, cost ``xᵀQx + uᵀRu + 2xᵀNu``.

Conventions (DESIGN.md): the state evolves as :math:`x_{t+1} = A x_t + B u_t + w_t` with
:math:`w_t \sim N(0, W)` i.i.d., :math:`x_0 \sim N(0, \Sigma_0)`, and the per-step cost
:math:`c_t = x_t^\top Q x_t + u_t^\top R u_t + 2 x_t^\top N u_t` is *minimized*. Where a reward is
meant (the finite-MDP side maximizes :math:`J`), pgexact reports :math:`J = -C`: every "J", "V",
"Q", "A" and policy gradient "∇J" of :mod:`pgexact.lqr` is the negative of the corresponding cost.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

from .._validation import (
    ReadOnlyOnCopy,
    as_float_array,
    check_covariance,
    check_gamma,
    check_horizon,
    check_semidefinite,
    check_square,
    check_symmetric,
)

__all__ = ["LQR"]

#: Largest accepted magnitude of a symmetric matrix's entries: half the float64 maximum, so that
#: symmetrizing, ``(M + M^T) / 2``, cannot overflow.
_HALF_MAX = float(np.finfo(np.float64).max) / 2


def _half_range(name: str, arr: np.ndarray) -> np.ndarray:
    big = np.abs(arr) > _HALF_MAX
    if big.any():
        i, j = (int(k) for k in np.argwhere(big)[0])
        raise ValueError(f"{name}[{i}, {j}] is {arr[i, j]:.6g}, expected magnitude <= {_HALF_MAX:.6g} "
                         "(half the float64 maximum): rescale the model")
    return arr


@dataclass(frozen=True, eq=False)
class LQR(ReadOnlyOnCopy):
    r"""A discrete-time linear-quadratic regulator with Gaussian initial state and process noise.

    .. math::

        x_{t+1} = A x_t + B u_t + w_t, \quad w_t \sim N(0, W), \quad x_0 \sim N(0, \Sigma_0),
        \qquad C = E\Big[\sum_{t} \gamma^t (x_t^\top Q x_t + u_t^\top R u_t + 2 x_t^\top N u_t)\Big]

    summed over :math:`t \ge 0` (``horizon=None``) or :math:`t < H` (``horizon=H``): γ means
    what it means for :class:`pgexact.FiniteMDP`, the discount of :math:`J = E\sum_t\gamma^t r_t`.
    With an infinite horizon the sum is finite for :math:`\gamma < 1`, and also for
    :math:`\gamma = 1` when nothing is random after :math:`x_0` (no process noise, a deterministic
    policy: the undiscounted problem of Fazel et al. 2018, cost :math:`\mathrm{tr}(P_K\Sigma_0)`);
    ``gamma=1`` with process noise and ``horizon=None`` is rejected (the average cost is not offered).
    The cost matrices follow QuantEcon's ``LQ`` and
    ``scipy.linalg.solve_discrete_are`` (its ``s`` is ``N``); the noise is given either as a
    covariance ``noise_cov`` :math:`= W` or as a factor ``noise_factor`` :math:`C` with
    :math:`W = CC^\top` (QuantEcon's convention, ``w = C ε``, ``ε ~ N(0, I_k)``).

    **Cost versus reward.** The LQR *cost* :math:`C` is minimized. The finite-MDP side of
    pgexact maximizes a return :math:`J`; here :math:`J = -C` (reward :math:`r_t = -c_t`), and
    every quantity named ``J``, ``V``, ``Q``, ``A`` or "policy gradient" in :mod:`pgexact.lqr`
    follows that sign, while ``cost`` and :func:`~pgexact.lqr.cost_gradient` are the cost side.

    Parameters
    ----------
    A : array_like, shape (n, n)
        State transition matrix.
    B : array_like, shape (n, m)
        Input matrix.
    Q : array_like, shape (n, n)
        State cost, symmetric.
    R : array_like, shape (m, m)
        Input cost, symmetric positive definite.
    gamma : float
        Discount factor (required keyword), ``0 <= gamma <= 1`` (``gamma = 1`` with
        ``horizon=None`` only without process noise).
    Sigma0 : array_like of shape (n, n), or None
        Covariance of the initial state (mean zero), symmetric PSD. Needed by everything that
        averages over :math:`x_0` (cost, gradients, rollouts); not by :func:`~pgexact.lqr.riccati`
        or :func:`~pgexact.lqr.optimal_gain`.
    noise_cov : array_like of shape (n, n), or None
        Process-noise covariance :math:`W` (symmetric PSD).
    noise_factor : array_like of shape (n, k), or None
        Process-noise factor :math:`C`, :math:`W = CC^\top`. At most one of ``noise_cov`` and
        ``noise_factor``; neither means no process noise.
    N : array_like of shape (n, m), or None
        Cross cost :math:`2x^\top N u`; the joint cost matrix
        :math:`\begin{pmatrix} Q & N \\ N^\top & R\end{pmatrix}` must be PSD (so is Q without N).
    horizon : int or None
        ``None`` for the infinite horizon, ``H >= 1`` for :math:`t = 0, \dots, H-1`.

    Attributes
    ----------
    n_states, n_actions : int
        The state and input dimensions n and m.
    noise_cov : numpy.ndarray, shape (n, n)
        :math:`W` (zeros without noise), whichever form was given.
    noise_factor : numpy.ndarray, shape (n, k)
        A factor of :math:`W` (the given one, or the symmetric square root of ``noise_cov``).
    N : numpy.ndarray, shape (n, m)
        Zeros without a cross cost.

    Notes
    -----
    Symmetry is checked to relative tolerance :data:`pgexact._validation.SYMMETRY_RTOL` and the
    matrices are then symmetrized; semi-definiteness to :data:`pgexact._validation.PSD_RTOL`.
    Arrays are copied and made read-only.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           gamma=0.9, Sigma0=np.eye(2), noise_factor=[[0.0], [0.3]])
    >>> lqr.n_states, lqr.n_actions, float(lqr.noise_cov[1, 1])
    (2, 1, 0.09)
    """

    A: np.ndarray
    B: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    gamma: float = field(kw_only=True)
    Sigma0: np.ndarray | None = field(default=None, kw_only=True)
    noise_cov: np.ndarray | None = field(default=None, kw_only=True)
    noise_factor: np.ndarray | None = field(default=None, kw_only=True)
    N: np.ndarray | None = field(default=None, kw_only=True)
    horizon: int | None = field(default=None, kw_only=True)
    has_noise: bool = field(init=False, repr=False)
    has_cross: bool = field(init=False, repr=False)

    @np.errstate(under="ignore")
    def __post_init__(self) -> None:
        A = check_square("A", self.A)
        n = A.shape[0]
        if n == 0:
            raise ValueError("A must have at least one state, got shape (0, 0)")
        B = as_float_array("B", self.B, ndim=2)
        if B.shape[0] != n:
            raise ValueError(f"B must have shape (n, m) with n={n} rows to match A, got {B.shape}")
        m = B.shape[1]
        if m == 0:
            raise ValueError(f"B must have at least one column (input), got shape {B.shape}")
        Q = check_symmetric("Q", _half_range("Q", check_square("Q", self.Q, n, " to match A")))
        R = check_symmetric("R", _half_range("R", check_square("R", self.R, m, f" to match B's {m} columns")))
        check_semidefinite("R", R, strict=True)
        if self.N is None:
            Nx = np.zeros((n, m))
            check_semidefinite("Q", Q)
        else:
            Nx = as_float_array("N", self.N, shape=(n, m))
            joint = np.block([[Q, Nx], [Nx.T, R]])
            check_semidefinite("the joint cost [[Q, N], [N^T, R]]", joint)
        Sigma0 = None if self.Sigma0 is None else check_covariance(
            "Sigma0", _half_range("Sigma0", check_square("Sigma0", self.Sigma0, n, " to match A")), n)
        if self.noise_cov is not None and self.noise_factor is not None:
            raise ValueError("give the process noise as noise_cov (W) or as noise_factor (C, W = C C^T), not both")
        if self.noise_factor is not None:
            C = as_float_array("noise_factor", self.noise_factor)
            if C.ndim == 1:
                C = C[:, None]
            if C.ndim != 2 or C.shape[0] != n:
                raise ValueError(f"noise_factor must have shape ({n}, k) to match A, got {C.shape}")
            with np.errstate(over="ignore", invalid="ignore"):
                W = C @ C.T
            if not np.all(np.isfinite(W)):
                raise ValueError("noise_factor C gives a covariance C C^T that overflows float64: "
                                 "rescale the model")
            W = 0.5 * (W + W.T)
        elif self.noise_cov is not None:
            W = check_covariance(
                "noise_cov", _half_range("noise_cov", check_square("noise_cov", self.noise_cov, n, " to match A")), n)
            lam, V = np.linalg.eigh(W)
            C = (V * np.sqrt(np.clip(lam, 0.0, None))) @ V.T
        else:
            W, C = np.zeros((n, n)), np.zeros((n, 1))
        horizon = check_horizon(self.horizon)
        gamma = check_gamma(self.gamma, 1)  # 0 <= gamma <= 1; gamma = 1 with horizon=None below
        if horizon is None and gamma == 1.0 and np.any(W != 0.0):
            raise ValueError(
                "gamma=1 with process noise and horizon=None: the infinite-horizon cost diverges; "
                "use gamma < 1, a finite horizon, or no process noise"
            )
        for arr in (A, B, Q, R, W, C, Nx) + (() if Sigma0 is None else (Sigma0,)):
            arr.flags.writeable = False
        for name, value in (("A", A), ("B", B), ("Q", Q), ("R", R), ("Sigma0", Sigma0),
                            ("noise_cov", W), ("noise_factor", C), ("N", Nx), ("gamma", gamma),
                            ("horizon", horizon), ("has_noise", bool(np.any(W != 0.0))),
                            ("has_cross", bool(np.any(Nx != 0.0)))):
            object.__setattr__(self, name, value)

    @property
    def n_states(self) -> int:
        """State dimension n."""
        return int(self.A.shape[0])

    @property
    def n_actions(self) -> int:
        """Input dimension m."""
        return int(self.B.shape[1])

    @property
    def discounted(self) -> bool:
        """True for the infinite-horizon objective (``horizon is None``)."""
        return self.horizon is None

    def initial_cov(self, what: str) -> np.ndarray:
        """``Sigma0``, or a ``ValueError`` saying that ``what`` needs it."""
        if self.Sigma0 is None:
            raise ValueError(
                f"{what} averages over the initial state x0 ~ N(0, Sigma0), but this LQR has "
                "Sigma0=None: construct it with LQR(..., Sigma0=...)"
            )
        return self.Sigma0

    def with_horizon(self, horizon: int | None, gamma: float | None = None) -> "LQR":
        """The same system with another horizon (and optionally another discount).

        A rollout of length T of a discounted model estimates the gradient of
        ``lqr.with_horizon(T)`` (the truncated objective), which is the exact reference to use.
        """
        return LQR(
            self.A, self.B, self.Q, self.R,
            gamma=self.gamma if gamma is None else gamma,
            Sigma0=self.Sigma0,
            noise_cov=self.noise_cov if self.has_noise else None,
            N=self.N if self.has_cross else None,
            horizon=horizon,
        )

    def with_initial_cov(self, Sigma0: Any) -> "LQR":
        """The same system with another initial-state covariance."""
        return LQR(
            self.A, self.B, self.Q, self.R, gamma=self.gamma, Sigma0=Sigma0,
            noise_cov=self.noise_cov if self.has_noise else None,
            N=self.N if self.has_cross else None, horizon=self.horizon,
        )
