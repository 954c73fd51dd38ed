r"""Solver of the pair of discrete Lyapunov (Stein) equations of LQR policy evaluation.

.. math::

    \Sigma = a\Sigma a^\top + q_\Sigma, \qquad P = a^\top P a + q_P, \qquad a = \sqrt\gamma (A - BK).

For n >= 10 both are solved by the bilinear (Cayley) transform and Bartels-Stewart, sharing one
real Schur factorization (LAPACK ``trsyl`` with ``trana``/``tranb``); for n < 10 by
``scipy.linalg.solve_discrete_lyapunov``'s direct (Kronecker) method, as scipy itself chooses
(written out, so that one LU factorization serves both equations).
The relative residual of each solution is checked (:data:`STEIN_RESIDUAL_RTOL`).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from ..errors import NumericalError, UnstableGainError

__all__ = ["STEIN_RESIDUAL_RTOL", "stein_pair", "spectral_radius_of"]

#: Largest accepted relative residual of the Lyapunov/Stein solutions (Bartels-Stewart is
#: backward stable to ~n eps; the Cayley transform adds a factor cond(a + I)). Beyond this the
#: solve is declared failed (:class:`~pgexact.errors.NumericalError`).
STEIN_RESIDUAL_RTOL = 1e-8

#: Below this state dimension scipy's direct (Kronecker) method is used, as scipy itself does.
_DIRECT_BELOW = 10


def spectral_radius_of(a: np.ndarray) -> float:
    """Largest modulus of the eigenvalues of a square matrix (``inf`` if it is not finite)."""
    if not np.all(np.isfinite(a)):
        return float("inf")
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


def stein_pair(a: np.ndarray, q_sigma: np.ndarray, q_p: np.ndarray) -> tuple[np.ndarray, np.ndarray, float]:
    r"""Solve :math:`\Sigma = a\Sigma a^\top + q_\Sigma` and :math:`P = a^\top P a + q_P`.

    Returns ``(Sigma, P, rho)`` with ρ the spectral radius of ``a``; raises
    :class:`UnstableGainError` if ρ >= 1 (before anything is returned).
    """
    n = a.shape[0]
    if n < _DIRECT_BELOW:
        rho = spectral_radius_of(a)
        if not rho < 1.0:
            raise UnstableGainError(rho)
        # scipy's direct method, vec(X) = (I - a (x) a)^{-1} vec(q) (row-major vec), with one LU
        # factorization for both: the P equation's matrix I - a^T (x) a^T is its transpose.
        lu = scipy.linalg.lu_factor(np.eye(n * n) - np.kron(a, a), check_finite=False)
        Sigma = scipy.linalg.lu_solve(lu, q_sigma.reshape(-1), check_finite=False).reshape(n, n)
        P = scipy.linalg.lu_solve(lu, q_p.reshape(-1), trans=1, check_finite=False).reshape(n, n)
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
            raise UnstableGainError(spectral_radius_of(a)) from None
        inv_apI = scipy.linalg.lu_solve(lu, eye, check_finite=False)  # (a + I)^{-1}
        M = (a - eye) @ inv_apI
        T, U = scipy.linalg.schur(M, output="real", check_finite=False)
        mu = _quasi_triangular_eigvals(T)
        with np.errstate(divide="ignore", invalid="ignore"):
            lam = np.abs((1.0 + mu) / (1.0 - mu))
        rho = float(np.max(lam)) if np.all(np.isfinite(lam)) else float("inf")
        if not rho < 1.0:
            raise UnstableGainError(spectral_radius_of(a))
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

