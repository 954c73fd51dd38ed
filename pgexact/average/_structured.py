r"""Accurate solves for :func:`pgexact.average.evaluate`: LU with a condition check, and the
structured elimination of nearly multichain chains (GTH for d, a grounded subtraction-free
elimination for h) from the off-diagonal transitions only.
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.linalg

from ..models.finite_mdp import FiniteMDP

__all__ = ["MAX_STRUCTURED_STATES"]

#: Largest number of states of an ill-conditioned chain solved by the structured elimination
#: (O(S^3) work in S numpy steps: about 1.5 s at 1000 states).
MAX_STRUCTURED_STATES = 2000

#: Largest condition-number estimate accepted from the LU solves: their relative error is about
#: cond * eps, here at most 1e6 * 2.2e-16 = 2.2e-10; beyond it the structured elimination runs.
_MAX_LU_CONDITION = 1e6


def _lu_solution(
    P_pi: np.ndarray, r_pi: np.ndarray, recurrent: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray] | None:
    """``(d, rho, h)`` by two LU solves, or None if either system's condition number exceeds
    :data:`_MAX_LU_CONDITION` (LAPACK's 1-norm estimate), or is singular to working precision.
    ``d`` is exactly 0 off the recurrent class (the solve leaves rounding-level mass there)."""
    S = P_pi.shape[0]
    one = np.ones(S)
    try:
        with warnings.catch_warnings(), np.errstate(all="raise"):
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            M = (np.eye(S) - P_pi + 1.0).T
            d = _well_conditioned_solve(M, one)
            if d is None:
                return None
            transient = np.ones(S, dtype=bool)
            transient[recurrent] = False
            d[transient] = 0.0
            d = np.clip(d, 0.0, None)
            d /= d.sum()
            rho = float(d @ r_pi)
            h = _well_conditioned_solve(np.eye(S) - P_pi + np.outer(one, d), r_pi - rho)
    except (scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning, FloatingPointError):
        return None
    return None if h is None else (d, rho, h)


def _well_conditioned_solve(M: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The solution of ``M x = b`` by LU, or None if the estimated condition number is too large."""
    lu, piv = scipy.linalg.lu_factor(M, check_finite=False)
    norm = float(np.max(np.abs(M).sum(axis=0)))
    rcond, info = scipy.linalg.lapack.dgecon(lu, norm, norm="1")
    if info != 0 or not rcond * _MAX_LU_CONDITION >= 1.0:
        return None
    return scipy.linalg.lu_solve((lu, piv), b, check_finite=False)


def _structured_solution(
    mdp: FiniteMDP, P_pi: np.ndarray, r_pi: np.ndarray, recurrent: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    r"""``(d, rho, h, A)`` of an ill-conditioned unichain chain from the off-diagonal transitions only.

    A nearly multichain chain has diagonal entries :math:`P(s|s) = 1 - \epsilon` whose rounding
    (about :math:`10^{-16}`) is as large as the :math:`\epsilon` that decides the answer; the
    off-diagonal entries are exact. The diagonal is therefore never used (each row of the chain
    is taken to sum to 1 exactly):

    * d by the Grassmann-Taksar-Heyman elimination on the recurrent class (Grassmann, Taksar &
      Heyman 1985; no subtraction, every entry of d to a few ulps: O'Cinneide 1993);
    * h by Gaussian elimination on :math:`(I - P_\pi)` with one recurrent state grounded at 0,
      each pivot formed as the row's slack plus the magnitudes of its off-diagonal entries (the
      slack, the transition mass to the grounded state, is updated without cancellation:
      Ahac & Olesky 1986; Alfa, Xue & Ye 2002), then shifted to :math:`d^\top h = 0`;
    * :math:`A(s, a) = r(s, a) - \rho + \sum_{s' \ne s} P(s'|s, a)(h(s') - h(s))`, the
      advantage without the cancellation of :math:`Q - h` when h is large.
    """
    S = P_pi.shape[0]
    C = np.asarray(recurrent)
    d = np.zeros(S)
    d[C] = _gth(P_pi[np.ix_(C, C)])
    rho = float(d @ r_pi)
    g = int(C[np.argmax(d[C])])  # ground a recurrent state
    keep = np.delete(np.arange(S), g)
    x = _grounded_solve(P_pi[np.ix_(keep, keep)], P_pi[keep, g], r_pi[keep] - rho)
    h = np.zeros(S)
    h[keep] = x
    h -= d @ h
    nA = mdp.n_actions
    if mdp.is_sparse:
        P = mdp.P.tocoo()
        src = P.row // nA
        drift = np.bincount(P.row, weights=P.data * (h[P.col] - h[src]), minlength=S * nA).reshape(S, nA)
    else:
        drift = np.einsum("sat,sat->sa", mdp.P, h[None, None, :] - h[:, None, None])
    return d, rho, h, mdp.r - rho + drift


def _gth(P: np.ndarray) -> np.ndarray:
    """Stationary distribution of an irreducible stochastic matrix by GTH elimination (diagonal unused)."""
    W = np.array(P, dtype=np.float64)
    m = W.shape[0]
    for k in range(m - 1, 0, -1):
        s = W[k, :k].sum()  # > 0: the censored chain on {0..k} is irreducible
        W[:k, k] /= s
        W[:k, :k] += np.outer(W[:k, k], W[k, :k])
    x = np.zeros(m)
    x[0] = 1.0
    for j in range(1, m):
        x[j] = x[:j] @ W[:j, j]
    return x / x.sum()


def _grounded_solve(P: np.ndarray, to_ground: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve :math:`(I - P) x = b` where ``P`` omits a grounded state, using off-diagonal entries only.

    ``to_ground[i]`` is the transition probability from state i to the grounded state; the
    diagonal of :math:`I - P` is ``to_ground[i] + sum_{j != i} P[i, j]``.
    """
    n = P.shape[0]
    M = -np.array(P, dtype=np.float64)
    np.fill_diagonal(M, 0.0)
    slack = np.array(to_ground, dtype=np.float64)
    rhs = np.array(b, dtype=np.float64)
    pivots = np.empty(n)
    for k in range(n):
        pivots[k] = slack[k] - M[k, k + 1:].sum()  # slack + |off-diagonals| (columns left of k are eliminated)
        lk = M[k + 1:, k] / pivots[k]  # <= 0
        M[k + 1:, k + 1:] -= np.outer(lk, M[k, k + 1:])
        slack[k + 1:] -= lk * slack[k]  # >= 0, no cancellation
        rhs[k + 1:] -= lk * rhs[k]
    x = np.empty(n)
    for k in range(n - 1, -1, -1):
        x[k] = (rhs[k] - M[k, k + 1:] @ x[k + 1:]) / pivots[k]
    return x
