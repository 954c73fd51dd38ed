r"""Alias tables (Walker 1977; Vose 1991): O(1) categorical draws, built for many rows at once.

A table for a distribution :math:`p` over K outcomes stores, per column :math:`j`, a threshold
:math:`q_j \in [0, 1]` and an alias :math:`a_j`. A draw takes one uniform :math:`u \in [0, 1)`,
splits :math:`x = K u` into a column :math:`j = \lfloor x \rfloor` and a coin
:math:`f = x - j`, and returns ``outcome[j]`` if :math:`f < q_j`, else ``alias[j]``. So

.. math::
    \Pr(k) = \frac{1}{K}\Big(q_k + \sum_{j: a_j = k} (1 - q_j)\Big) = p_k ,

whatever K: the cost of a draw does not depend on the number of outcomes. The coin keeps
:math:`53 - \log_2 K` bits of the uniform, a relative error below :math:`K 2^{-53}` per draw.

Construction is Vose's stack algorithm (Vose 1991, "A linear algorithm for generating random
numbers with a given distribution", IEEE TSE 17(9), sec. III), vectorized across rows: the
Python loop runs at most K times, each pass finalizing one column of every row.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["AliasTable", "build_alias", "alias_probabilities"]


def build_alias(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Vose alias tables for every row of ``probs``.

    Parameters
    ----------
    probs : numpy.ndarray, shape (R, K)
        Validated probability rows (non-negative, each summing to 1 within 1e-9). Rows are
        renormalized to sum to exactly 1 before the construction.

    Returns
    -------
    threshold : numpy.ndarray, shape (R, K), float64 in [0, 1]
    alias : numpy.ndarray, shape (R, K), intp
        Column ``j`` of row ``i`` yields ``j`` with probability ``threshold[i, j]`` and
        ``alias[i, j]`` otherwise. An outcome of probability 0 is never returned: its threshold
        is 0 and no column aliases to it.

    Examples
    --------
    >>> import numpy as np
    >>> p = np.array([[0.1, 0.0, 0.6, 0.3], [0.25, 0.25, 0.25, 0.25]])
    >>> thr, al = build_alias(p)
    >>> bool(np.allclose(alias_probabilities(thr, al), p, atol=1e-15))
    True
    """
    probs = np.asarray(probs, dtype=np.float64)
    R, K = probs.shape
    q = probs * (K / probs.sum(axis=1, keepdims=True))
    threshold = np.ones((R, K))
    alias = np.broadcast_to(np.arange(K), (R, K)).copy()
    is_small = q < 1.0
    # Stacks as arrays: small[i, :ns[i]] and large[i, :nl[i]] hold column indices.
    small = np.argsort(~is_small, axis=1, kind="stable")  # small columns first
    large = np.argsort(is_small, axis=1, kind="stable")  # large columns first
    ns = is_small.sum(axis=1)
    nl = K - ns
    for _ in range(K):
        rows = np.flatnonzero((ns > 0) & (nl > 0))
        if rows.size == 0:
            break
        lo = small[rows, ns[rows] - 1]
        hi = large[rows, nl[rows] - 1]
        threshold[rows, lo] = q[rows, lo]
        alias[rows, lo] = hi
        ns[rows] -= 1
        q[rows, hi] -= 1.0 - q[rows, lo]
        moved = q[rows, hi] < 1.0
        r2, h2 = rows[moved], hi[moved]
        nl[r2] -= 1
        small[r2, ns[r2]] = h2
        ns[r2] += 1
    # Columns left on either stack have q = 1 up to rounding: threshold 1 (already set).
    np.clip(threshold, 0.0, 1.0, out=threshold)
    return threshold, alias


def alias_probabilities(threshold: np.ndarray, alias: np.ndarray) -> np.ndarray:
    r"""The distribution an alias table samples from, :math:`\frac1K(q_k + \sum_{j:a_j=k}(1-q_j))`, shape (R, K)."""
    R, K = threshold.shape
    out = threshold.copy()
    rows = np.repeat(np.arange(R), K)
    np.add.at(out, (rows, alias.reshape(-1)), (1.0 - threshold).reshape(-1))
    return out / K


@dataclass(frozen=True, eq=False)
class AliasTable:
    r"""Alias tables for R categorical distributions over outcome codes, flattened for fast draws.

    Attributes
    ----------
    n_rows, n_columns : int
        R and K.
    threshold : numpy.ndarray, shape (R * K,)
        Coin thresholds, row-major.
    primary : numpy.ndarray, shape (K,) or (R * K,), intp
        Outcome code of each column when the coin succeeds. ``(K,)`` when every row uses the
        same codes ``outcomes`` (dense rows), else per row.
    alias : numpy.ndarray, shape (R * K,), intp
        Outcome code when the coin fails.

    Notes
    -----
    :meth:`from_probs` builds dense tables; :meth:`from_sparse_rows` builds them from a
    ``scipy.sparse`` matrix with padded zero-probability columns, so a draw stays O(1) whatever
    the number of possible outcomes.
    """

    n_rows: int
    n_columns: int
    threshold: np.ndarray
    primary: np.ndarray
    alias: np.ndarray

    @classmethod
    def from_probs(cls, probs: np.ndarray, codes: np.ndarray | None = None) -> "AliasTable":
        """Tables for the rows of ``probs`` (R, K); column ``j`` stands for outcome ``codes[j]`` (default ``j``)."""
        thr, al = build_alias(probs)
        R, K = thr.shape
        codes = np.arange(K, dtype=np.intp) if codes is None else np.asarray(codes, dtype=np.intp)
        return cls(R, K, thr.reshape(-1), codes, codes[al].reshape(-1))

    @classmethod
    def from_sparse_rows(cls, matrix) -> "AliasTable":  # noqa: ANN001 - scipy.sparse matrix
        """Tables for the rows of a ``scipy.sparse`` matrix of probabilities (R, n_outcomes).

        Each row is padded to the largest number of stored entries with zero-probability
        columns; codes are the column indices of the matrix.
        """
        import scipy.sparse

        csr = scipy.sparse.csr_matrix(matrix)
        csr.sum_duplicates()
        R = csr.shape[0]
        counts = np.diff(csr.indptr)
        K = max(int(counts.max()) if R else 1, 1)
        probs = np.zeros((R, K))
        codes = np.zeros((R, K), dtype=np.intp)
        pos = np.arange(csr.nnz) - np.repeat(csr.indptr[:-1], counts)
        rows = np.repeat(np.arange(R), counts)
        probs[rows, pos] = csr.data
        codes[rows, pos] = csr.indices
        # padded columns repeat the row's first code (probability 0: never returned)
        pad = np.arange(K)[None, :] >= counts[:, None]
        codes[pad] = np.broadcast_to(codes[:, :1], (R, K))[pad]
        thr, al = build_alias(probs)
        return cls(
            R,
            K,
            thr.reshape(-1),
            codes.reshape(-1),
            np.take_along_axis(codes, al, axis=1).reshape(-1),
        )

    def sample(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """Outcome codes for rows ``rows`` (intp) given uniforms ``u`` in [0, 1), one per draw."""
        K = self.n_columns
        x = u * K
        j = x.astype(np.intp)
        np.minimum(j, K - 1, out=j)  # u * K rounds to K only for u within 2^-53 of 1
        x -= j
        flat = rows * K
        flat += j
        prim = self.primary[j] if self.primary.shape[0] == K else self.primary[flat]
        return np.where(x < self.threshold[flat], prim, self.alias[flat])
