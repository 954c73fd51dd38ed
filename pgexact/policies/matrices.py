r"""Policies given directly as probability matrices: the resolver and deterministic policies.

Every function of a policy's action probabilities takes ``pi`` either as a matrix
``pi[s, a]`` of shape (S, A) whose rows are distributions, or as a pair ``(policy, theta)``;
:func:`as_probabilities` turns both into the matrix and says which forms are accepted when
given anything else.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_probabilities, check_memory, check_positive_int

__all__ = ["as_probabilities", "deterministic"]


def deterministic(actions: Any, n_actions: int) -> np.ndarray:
    r"""The probability matrix of a deterministic policy: :math:`\pi(a|s) = 1[a = \text{actions}[s]]`.

    Parameters
    ----------
    actions : array_like of int, shape (S,)
        The action taken in each state, in ``0 .. n_actions - 1`` (what planning libraries such
        as QuantEcon's ``DiscreteDP`` or pymdptoolbox return as a policy). Floats are accepted
        when they are whole numbers.
    n_actions : int
        A.

    Returns
    -------
    numpy.ndarray, shape (S, A)
        One-hot rows, float64.

    Examples
    --------
    >>> deterministic([2, 0], 3).tolist()
    [[0.0, 0.0, 1.0], [1.0, 0.0, 0.0]]
    """
    A = check_positive_int("n_actions", n_actions)
    if isinstance(actions, (str, bytes)) or actions is None:
        raise TypeError(f"actions must be a vector of integers, got {type(actions).__name__}")
    try:
        raw = np.asarray(actions)
    except Exception as exc:  # ragged nested sequences and the like
        raise TypeError(f"actions must be a vector of integers: {exc}") from None
    if raw.dtype.kind not in "iuf":
        what = "booleans" if raw.dtype.kind == "b" else f"dtype {raw.dtype}"
        raise TypeError(f"actions must be a vector of integers, got {what}")
    if raw.ndim != 1 or raw.size == 0:
        raise ValueError(f"actions must be a non-empty 1-D vector (one action per state), got shape {raw.shape}")
    if raw.dtype.kind == "f":
        bad = ~np.isfinite(raw) | (raw != np.round(raw))
        if bad.any():
            s = int(np.argmax(bad))
            raise ValueError(f"actions[{s}] is {raw[s]}, expected an integer")
    bad = (raw < 0) | (raw >= A)
    if bad.any():
        s = int(np.argmax(bad))
        raise ValueError(f"actions[{s}] is {raw[s]}, expected an action in 0..{A - 1} (n_actions={A})")
    S = raw.shape[0]
    check_memory(f"deterministic with {S} states and n_actions={A}", 8 * S * A)
    out = np.zeros((S, A))
    out[np.arange(S), raw.astype(np.int64)] = 1.0
    return out
