r"""Stationary distribution of a sparse Markov chain, without forming a dense matrix.

The stationary distributions of a finite chain :math:`P_\pi` are the mixtures of the unique
stationary distributions of its closed communicating classes (Norris, *Markov Chains*, 1997,
Theorem 1.7.7 and Section 1.5); it is unique iff there is exactly one closed class, and then it
vanishes on the transient states. Here the closed classes are found on the graph of the stored
positive entries (strongly connected components, ``scipy.sparse.csgraph``; a class is closed
when no positive entry leaves it), and on the closed class :math:`C` the balance equations
:math:`\nu_C (I - P_{CC}) = 0` are solved with :math:`\nu_k = 1` for one state :math:`k \in C`,
by a sparse LU factorization (SuperLU, ``scipy.sparse.linalg.spsolve``) of
:math:`(I - P_{C\setminus k, C\setminus k})^\top`, then normalized: that matrix is nonsingular
because every state of the irreducible class :math:`C` reaches :math:`k`, so the chain killed on
reaching :math:`k` is transient and :math:`P_{C\setminus k, C\setminus k}` has spectral radius
below 1.

Memory: the CSR chain, its restriction to :math:`C`, and the LU factors (fill-in depends on the
graph; for a 2-D grid it grows like :math:`S \log S`).
"""

from __future__ import annotations

import warnings

import numpy as np
import scipy.sparse
import scipy.sparse.csgraph
import scipy.sparse.linalg

from ..errors import NotUniqueError, SingularSystemError

__all__ = ["sparse_stationary_distribution"]


def _closed_classes(P: scipy.sparse.csr_array) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, closed)``: strongly connected component of each state, and the closed ones."""
    n_comp, labels = scipy.sparse.csgraph.connected_components(P, directed=True, connection="strong")
    rows = np.repeat(np.arange(P.shape[0]), np.diff(P.indptr))
    leaving = labels[rows] != labels[P.indices]
    open_ = np.zeros(n_comp, dtype=bool)
    open_[labels[rows[leaving]]] = True
    return labels, np.flatnonzero(~open_)


def sparse_stationary_distribution(P_pi: scipy.sparse.csr_array) -> np.ndarray:
    r"""The stationary distribution :math:`\nu = \nu P_\pi` of a sparse stochastic matrix, shape (S,).

    Parameters
    ----------
    P_pi : scipy.sparse.csr_array, shape (S, S)
        A row-stochastic matrix (the chain under a policy), duplicates summed.

    Raises
    ------
    NotUniqueError
        If the chain has more than one closed class (counted on the positive stored entries).
    SingularSystemError
        If the LU factorization of the balance equations fails.
    """
    P = scipy.sparse.csr_array(P_pi, copy=True)
    P.data[P.data <= 0.0] = 0.0
    P.eliminate_zeros()
    labels, closed = _closed_classes(P)
    if closed.size > 1:
        raise NotUniqueError(
            f"the chain under pi has {closed.size} closed classes, hence {closed.size} "
            "independent stationary distributions: the stationary distribution is not unique"
        )
    C = np.flatnonzero(labels == closed[0])
    nu = np.zeros(P.shape[0])
    if C.size == 1:
        nu[C] = 1.0
        return nu
    Q = P[C][:, C]
    # nu_k = 1 for the first state k of C; the other balance equations,
    # nu_j = sum_i nu_i Q_ij (j != k), read (I - Q_{-k,-k})^T x = Q_{k,-k}
    A = (scipy.sparse.eye_array(C.size - 1, format="csr") - Q[1:, 1:]).T.tocsc()
    rhs = Q[[0], 1:].toarray().ravel()
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        try:
            x = scipy.sparse.linalg.spsolve(A.tocsc(), rhs)
        except RuntimeError as exc:  # SuperLU: "Factor is exactly singular"
            raise SingularSystemError(
                f"the balance equations of the closed class ({C.size} states) are singular to "
                f"working precision ({exc}); use the dense path or check the chain"
            ) from exc
    if not np.all(np.isfinite(x)):
        raise SingularSystemError(
            f"the balance equations of the closed class ({C.size} states) are singular to "
            "working precision; use the dense path or check the chain"
        )
    x = np.concatenate(([1.0], np.clip(x, 0.0, None)))  # negative entries are rounding
    nu[C] = x / x.sum()
    return nu
