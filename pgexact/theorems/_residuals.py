r"""Residuals of the registry's theorems (re-exported by :mod:`pgexact.theorems.registry`).

* :func:`relative_error` — the residual of an identity: relative error with an absolute floor;
* :func:`bernoulli_statistic` — the residual of a statistical theorem: a Chernoff statistic of
  Monte Carlo frequencies against exact probabilities, at most 1 with probability at least
  ``1 - false_alarm`` when the probabilities are right.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from . import _checks as check
from ._checks import _short

__all__ = ["FALSE_ALARM", "bernoulli_statistic", "relative_error"]

#: False-alarm probability of a statistical theorem on one instance. ``pgexact verify`` runs at
#: most a few hundred instances per theorem, so a correct sampler fails a run with probability
#: below ``instances * FALSE_ALARM`` (5e-5 for the default run of every statistical theorem).
FALSE_ALARM = 1e-6


def _bernoulli_kl(phat: np.ndarray, p: np.ndarray) -> np.ndarray:
    """KL(Bernoulli(phat) || Bernoulli(p)) elementwise, with 0 log 0 = 0 and inf where p puts no mass."""
    from scipy.special import rel_entr

    return rel_entr(phat, p) + rel_entr(1.0 - phat, 1.0 - p)


def bernoulli_statistic(counts: Any, trials: Any, p: Any, false_alarm: float = FALSE_ALARM) -> float:
    r"""Chernoff statistic of observed frequencies against exact probabilities, over many cells.

    For each cell, ``counts`` successes out of ``trials`` independent trials of probability ``p``.
    With :math:`\hat p = k/n`, Chernoff's bound gives
    :math:`\Pr\big(n\,KL(\hat p \| p) \ge x,\ \hat p \gtrless p\big) \le e^{-x}` on each side, so
    by a union bound over the m cells

    .. math:: \Pr\Big(\max_{\text{cells}} n\,KL(\hat p\|p) \ge \log(2m/\alpha)\Big) \le \alpha .

    The statistic is :math:`\max n\,KL(\hat p\|p) / \log(2m/\alpha)` (the square of the
    likelihood-ratio z-score over its critical value): at most 1 with probability at least
    :math:`1-\alpha` when the probabilities are right, whatever n and p (no normal approximation).

    Parameters
    ----------
    counts, trials, p : array_like, broadcastable shapes (any)
        Finite; ``0 <= counts <= trials`` and ``0 <= p <= 1`` cell by cell.
    false_alarm : float
        α, in (0, 1).

    Returns
    -------
    float
        ``inf`` when an event of probability 0 was observed.

    Examples
    --------
    >>> bernoulli_statistic([5000], [10000], [0.5])  # exactly as expected
    0.0
    >>> bernoulli_statistic([8000], [10000], [0.5]) > 100  # a 0.8-coin: over 100x the critical value
    True
    """
    false_alarm = check.real("false_alarm", false_alarm, low=0.0, high=1.0, high_open=True)
    k = check.counts_array("counts", counts)
    n = check.counts_array("trials", trials)
    q = check.counts_array("p", p)
    try:
        k, n, q = np.broadcast_arrays(k, n, q)
    except ValueError:
        raise ValueError(
            f"counts, trials and p must have broadcastable shapes, got {np.shape(k)}, {np.shape(n)} and {np.shape(q)}"
        ) from None
    for name, arr, ok in (
        ("counts", k, k >= 0), ("trials", n, n >= k), ("p", q, (q >= 0) & (q <= 1)),
    ):
        bad = np.flatnonzero(~ok)
        if bad.size:
            i = tuple(int(j) for j in np.unravel_index(int(bad[0]), arr.shape))
            need = {"counts": "at least 0", "trials": f"at least counts{list(i)} = {k[i]:g}", "p": "in [0, 1]"}[name]
            raise ValueError(f"{name}{list(i)} = {arr[i]:g}, expected {need}")
    k, n, q = k.reshape(-1), n.reshape(-1), q.reshape(-1)
    keep = n > 0
    if not np.any(keep):
        return 0.0
    k, n, q = k[keep], n[keep], q[keep]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        llr = n * _bernoulli_kl(k / n, q)
    critical = math.log(2.0 * k.size / false_alarm)
    return float(np.max(llr)) / critical


def relative_error(a: Any, b: Any, floor: float = 1.0) -> float:
    """``max|a - b| / max(max|b|, floor)``: relative error with an absolute floor for values near 0.

    ``a`` and ``b`` may be tuples (or lists) of arrays of different shapes, compared pair by pair;
    the result is the largest of the pairwise errors. Shapes that do not broadcast, or a NaN, give
    ``inf``; a non-numeric ``a`` or ``b`` raises ``TypeError``, a negative or non-finite ``floor``
    ``ValueError``.
    """
    if isinstance(b, (tuple, list)):
        if not isinstance(a, (tuple, list)) or len(a) != len(b):
            return float("inf")
        return max((relative_error(x, y, floor) for x, y in zip(a, b)), default=0.0)
    a = _numeric("a", a)
    b = _numeric("b", b)
    if not (isinstance(floor, (int, float, np.integer, np.floating)) and not isinstance(floor, (bool, np.bool_))):
        raise TypeError(f"floor must be a real number, got {type(floor).__name__} {_short(floor)}")
    if not 0 <= floor < math.inf:
        raise ValueError(f"floor must be finite and non-negative, got {floor!r}")
    try:
        with np.errstate(invalid="ignore", over="ignore"):  # inf - inf is NaN: a residual of inf below
            diff = np.abs(a - b)
    except ValueError:  # shapes that do not broadcast
        return float("inf")
    if diff.size == 0:
        return 0.0
    with np.errstate(invalid="ignore", over="ignore", divide="ignore"):
        top = float(np.max(diff))
        scale = max(float(np.max(np.abs(b))) if b.size else 0.0, float(floor))
        if scale == 0.0:  # floor 0 and b == 0: exact agreement or an infinite relative error
            return 0.0 if top == 0.0 else float("inf")
        err = top / scale
    return err if not np.isnan(err) else float("inf")


def _numeric(name: str, value: Any) -> np.ndarray:
    """``value`` as a float64 array; ``TypeError`` naming ``name`` if it is not numeric."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array or a tuple of them, got {_short(value)}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a real numeric array or a tuple of them, got dtype {arr.dtype} ({_short(value)})")
    return arr.astype(np.float64, copy=False)
