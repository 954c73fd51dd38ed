r"""The reverse linear recursion :math:`y_t = x_t + c\, y_{t+1}` along time, without a Python loop over time.

For c = 1 it is a reversed cumulative sum (``numpy.cumsum``: the same additions, in the same
order, as the loop). For c < 1 time is cut into blocks of B = 64 steps (B = T when T < 64: the
same weights, without a product over rows of zero padding); inside a block
:math:`y = U x` with :math:`U_{ij} = c^{j-i}` (:math:`j \ge i`), one matrix product, and the
blocks are joined by the same recursion on their first entries with factor :math:`c^B`, solved
the same way one level up (a blocked scan; Blelloch 1990, "Prefix sums and their
applications", sec. 1.4 on linear recurrences). Every weight is at most 1, so the rounding error
is that of a B-term sum, about :math:`B \varepsilon \max|y|`.
"""

from __future__ import annotations

import numpy as np

__all__ = ["reverse_scan"]

_B = 64


def reverse_scan(x: np.ndarray, c: float) -> np.ndarray:
    """``y[t] = x[t] + c * y[t + 1]`` along axis 0 (``y[T-1] = x[T-1]``), x of shape (T,) or (T, n)."""
    x = np.asarray(x, dtype=np.float64)
    if x.shape[0] == 0:
        return x.copy()
    if c == 0.0:
        return x.copy()
    if c == 1.0:
        return np.cumsum(x[::-1], axis=0)[::-1]
    one_d = x.ndim == 1
    X = x[:, None] if one_d else x
    T, n = X.shape
    B = min(T, _B)
    nb = -(-T // B)
    pad = np.zeros((nb * B, n))
    pad[:T] = X
    blocks = pad.reshape(nb, B, n)
    i = np.arange(B)
    expo = i[None, :] - i[:, None]  # U[i, j] = c^(j - i) for j >= i
    with np.errstate(under="ignore"):
        U = np.where(expo >= 0, np.power(c, np.maximum(expo, 0).astype(np.float64)), 0.0)
    local = np.matmul(U, blocks)  # the recursion inside each block, from its end
    if nb > 1:
        first = reverse_scan(local[:, 0, :], c**B)  # y at the start of every block
        with np.errstate(under="ignore"):
            tail_weight = np.power(c, (B - i).astype(np.float64))  # c^(B - i): from the next block's start
        local[:-1] += tail_weight[None, :, None] * first[1:, None, :]
    out = local.reshape(nb * B, n)[:T]
    return out[:, 0].copy() if one_d else np.ascontiguousarray(out)
