r"""Alias tables (Walker 1977; Vose 1991): O(1) categorical draws, built for many rows at once.

A table for a distribution :math:`p` over K outcomes stores, per column :math:`j`, a threshold
:math:`q_j \in [0, 1]` and an alias :math:`a_j`. A draw takes one uniform :math:`u \in [0, 1)`,
splits :math:`x = K u` into a column :math:`j = \lfloor x \rfloor` and a coin
:math:`f = x - j`, and returns ``outcome[j]`` if :math:`f < q_j`, else ``alias[j]``. So

.. math::
    \Pr(k) = \frac{1}{K}\Big(q_k + \sum_{j: a_j = k} (1 - q_j)\Big) = p_k ,

whatever K: the cost of a draw does not depend on the number of outcomes. The coin keeps
:math:`53 - \log_2 K` bits of the uniform, a relative error below :math:`K 2^{-53}` per draw.

Construction is a sweep form of Vose's algorithm (Vose 1991, "A linear algorithm for
generating random numbers with a given distribution", IEEE TSE 17(9), sec. III) expressed with
cumulative sums and one sort, so that all rows are built at once with no Python loop
(:func:`build_alias`).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_float_array, check_bool, check_distribution

__all__ = ["AliasTable"]  # build_alias / alias_probabilities: the encoding behind it, internal


def _ranks(values: np.ndarray, base: np.ndarray) -> np.ndarray:
    """Row-wise rank of each entry in a stable sort of its row, shape (R, K); ``base[r] = r * K``."""
    R, K = values.shape
    flat = np.argsort(values, axis=1, kind="stable")
    flat += base
    ranks = np.empty(R * K, dtype=np.intp)
    ranks[flat.reshape(-1)] = np.tile(np.arange(K), R)
    return ranks.reshape(R, K)


@functools.cache
def compiled_module() -> Any:
    """:mod:`pgexact.sampling._compiled` (it imports numba), or None when numba cannot be imported."""
    try:
        from . import _compiled
    except ImportError:
        return None
    return _compiled


def build_alias(probs: np.ndarray, compiled: bool = False) -> tuple[np.ndarray, np.ndarray]:
    r"""Alias tables for every row of ``probs``, all rows at once, without a Python loop.

    The construction is the sweep form of Vose's algorithm (Vose 1991, sec. III): the "small"
    columns (:math:`q = K p < 1`) are served in order by the "large" ones, each large serving
    until its excess is used up, at which point it becomes small and is served by the next
    large. With :math:`D_k = \sum_{k' \le k} (1 - q_{s_{k'}})` the cumulative deficits of the
    smalls and :math:`E_j = \sum_{j' \le j} (q_{l_{j'}} - 1)` the cumulative excesses of the
    larges, small :math:`s_k` gets alias :math:`l_j` with :math:`j = \#\{j' : E_{j'} < D_{k-1}\}`,
    and large :math:`l_j` (not the last) gets threshold :math:`1 - (D_a - E_j)` and alias
    :math:`l_{j+1}` with :math:`a = \#\{k : D_k \le E_j\}` (threshold 1 if :math:`a = m`, the
    number of smalls). Telescoping shows each large keeps exactly its mass. Both counts come
    from one stable row-wise sort of the sorted sequences D and E merged (D first on ties).

    Accuracy: the cumulative sums round; the encoded probabilities differ from ``probs`` by at
    most about :math:`K \varepsilon` (ε = 2^-52), the same order as the resolution of the
    coin, which splits a 53-bit uniform into K columns.

    Parameters
    ----------
    probs : numpy.ndarray, shape (R, K)
        Validated probability rows (non-negative, each summing to 1 within 1e-9). Rows are
        renormalized to sum to 1 before the construction.
    compiled : bool
        Build the rows one by one with :func:`pgexact.sampling._compiled.alias_rows` when numba is
        installed (the same tables bit for bit, about 2x faster on large tables).

    Returns
    -------
    threshold : numpy.ndarray, shape (R, K), float64 in [0, 1]
    alias : numpy.ndarray, shape (R, K), intp
        Column ``j`` of row ``i`` yields ``j`` with probability ``threshold[i, j]`` and
        ``alias[i, j]`` otherwise. An outcome of probability 0 is never returned: its threshold
        is 0 and only columns of positive probability are aliased to.

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
    module = compiled_module() if compiled else None
    if module is not None:
        q = probs * (K / probs.sum(axis=1, keepdims=True))  # as in _build_block
        threshold, alias = np.empty((R, K)), np.empty((R, K), dtype=np.intp)
        module.alias_rows(q, np.argmax(q, axis=1), threshold, alias)
        return threshold, alias
    if R * K <= _BLOCK:
        return _build_block(probs)
    # blocks of rows keep the ~30 temporaries small (cache-resident, no fresh pages): ~1.6x
    # faster; outputs are concatenated at the end (preallocating them measured slower)
    step = max(1, _BLOCK // K)
    parts = [_build_block(probs[start : start + step]) for start in range(0, R, step)]
    return np.concatenate([t for t, _ in parts]), np.concatenate([a for _, a in parts])


#: Entries per block of rows in :func:`build_alias`.
_BLOCK = 1 << 16


def _build_block(probs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """:func:`build_alias` on one block of rows."""
    R, K = probs.shape
    q = probs * (K / probs.sum(axis=1, keepdims=True))
    large = q >= 1.0
    large[np.arange(R), np.argmax(q, axis=1)] = True  # at least one large per row, even after rounding
    order = np.argsort(large, axis=1, kind="stable")  # smalls first, then larges
    base = (np.arange(R) * K)[:, None]
    flat_order = (order + base).reshape(-1)
    qs = q.reshape(-1)[flat_order].reshape(R, K)
    m = K - large.sum(axis=1)  # number of smalls per row
    pos = np.arange(K)[None, :]
    small_pos = pos < m[:, None]
    deficit = np.where(small_pos, 1.0 - qs, 0.0)
    D = np.cumsum(deficit, axis=1)  # at small positions: D_k
    E = np.cumsum(np.where(small_pos, 0.0, qs - 1.0), axis=1)  # at large positions: E_j
    # One stable merge of the sorted sequences D (first) and E (after) gives both counts with one
    # tie rule (D before an equal E): rank - pos = #{E_j < D_k} at small positions and
    # rank - (pos - m) = #{D_k <= E_j} at large positions. The count for small k uses D_{k-1}, the
    # very float compared for small k-1, so that ties (frequent: rows made of blocks with equal
    # sums) resolve consistently in both counts.
    ranks = _ranks(np.where(small_pos, D, E), base)
    e_before = ranks - pos
    n_E_before = np.concatenate([np.zeros((R, 1), dtype=np.intp), e_before[:, :-1]], axis=1)
    # smalls: threshold q, alias = the large at position m + #{E_j < D_{k-1}}
    j = np.minimum(n_E_before, (K - m - 1)[:, None])
    # larges: converted at the a-th small (a < m), then aliased to the next large
    a = ranks - (pos - m[:, None])
    conv = ~small_pos & (a < m[:, None]) & (pos < K - 1)
    D_a = D.reshape(-1)[(np.minimum(a, K - 1) + base).reshape(-1)].reshape(R, K)
    threshold_s = np.where(small_pos, qs, np.where(conv, 1.0 - (D_a - E), 1.0))
    alias_s = np.where(small_pos, m[:, None] + j, np.where(conv, pos + 1, pos))
    # back from sorted positions to columns
    threshold = np.empty(R * K)
    alias = np.empty(R * K, dtype=np.intp)
    threshold[flat_order] = threshold_s.reshape(-1)
    alias[flat_order] = order.reshape(-1)[(alias_s + base).reshape(-1)]
    np.clip(threshold, 0.0, 1.0, out=threshold)
    return threshold.reshape(R, K), alias.reshape(R, K)


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
    def from_probs(cls, probs: Any, codes: Any = None, compiled: bool = False) -> "AliasTable":
        """Tables for the rows of ``probs`` (R, K); column ``j`` stands for outcome ``codes[j]`` (default ``j``).

        ``probs``: rows of non-negative finite numbers summing to 1 within 1e-9; ``codes``:
        non-negative integers, shape (K,); ``compiled``: as in :func:`build_alias`.
        """
        P = as_float_array("probs", probs, ndim=2)
        if 0 in P.shape:
            raise ValueError(f"probs must have shape (R, K) with R, K >= 1, got {P.shape}")
        check_distribution("probs", P)
        if codes is not None:
            try:
                c = np.asarray(codes)
            except (ValueError, TypeError) as exc:  # ragged nesting: numpy's own message names no argument
                raise TypeError(f"codes must be an integer array of shape (K,)=({P.shape[1]},), got a ragged "
                                f"{type(codes).__name__} ({exc})") from None
            if c.dtype.kind not in "iu" or c.shape != (P.shape[1],):
                raise TypeError(f"codes must be an integer array of shape (K,)=({P.shape[1]},), got dtype {c.dtype}, shape {c.shape}")
            if (c < 0).any():
                i = int(np.argmax(c < 0))
                raise ValueError(f"codes[{i}] is {c[i]}, expected an outcome code >= 0")
            codes = c
        compiled = check_bool("compiled", compiled)
        return cls._from_checked_probs(P, codes, compiled)

    @classmethod
    def _from_checked_probs(cls, probs: np.ndarray, codes: np.ndarray | None = None, compiled: bool = False) -> "AliasTable":
        """:meth:`from_probs` of validated rows (the sampler's path)."""
        thr, al = build_alias(probs, compiled)
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

        if not scipy.sparse.issparse(matrix) or matrix.ndim != 2 or matrix.dtype.kind not in "iuf":
            raise TypeError(
                f"matrix must be a 2-D scipy.sparse matrix of probabilities, got {type(matrix).__name__}"
            )
        csr = scipy.sparse.csr_matrix(matrix, dtype=np.float64)
        csr.sum_duplicates()
        if csr.shape[0] == 0:
            raise ValueError(f"matrix must have at least one row, got shape {csr.shape}")
        if not np.isfinite(csr.data).all() or (csr.data < 0).any():
            k = int(np.argmax(~np.isfinite(csr.data) | (csr.data < 0)))
            row = int(np.searchsorted(csr.indptr, k, side="right") - 1)
            raise ValueError(f"matrix[{row}, {int(csr.indices[k])}] is {csr.data[k]}, expected a probability >= 0")
        sums = np.asarray(csr.sum(axis=1)).ravel()
        off = np.abs(sums - 1.0) > 1e-9
        if off.any():
            i = int(np.argmax(off))
            raise ValueError(f"matrix[{i}, :] sums to {sums[i]:.12g}, expected 1 (tolerance 1e-09)")
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

    def sample(self, rows: Any, u: Any) -> np.ndarray:
        """Outcome codes for rows ``rows`` (integers in [0, R)) given uniforms ``u`` in [0, 1), one per draw.

        ``rows`` and ``u`` have the same shape (``TypeError``/``ValueError`` naming the first bad entry).
        """
        r = np.asarray(rows)
        if r.dtype.kind not in "iu":
            raise TypeError(f"rows must be integer row indices, got dtype {r.dtype}")
        bad = (r < 0) | (r >= self.n_rows)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"rows{list(idx)} is {r[idx]}, expected a row in [0, {self.n_rows})")
        x = as_float_array("u", u)
        if x.shape != r.shape:
            raise ValueError(f"u must have the shape of rows {r.shape}, got {x.shape}")
        bad = (x < 0) | (x >= 1)
        if bad.any():
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            raise ValueError(f"u{list(idx)} is {x[idx]}, expected a uniform in [0, 1)")
        return self._sample(r.astype(np.intp, copy=False), x)

    def _sample(self, rows: np.ndarray, u: np.ndarray) -> np.ndarray:
        """:meth:`sample` of checked rows (intp) and uniforms (the sampler's path)."""
        K = self.n_columns
        x = u * K
        j = x.astype(np.intp)
        np.minimum(j, K - 1, out=j)  # u * K rounds to K only for u within 2^-53 of 1
        x -= j
        flat = rows * K
        flat += j
        prim = self.primary[j] if self.primary.shape[0] == K else self.primary[flat]
        return np.where(x < self.threshold[flat], prim, self.alias[flat])
