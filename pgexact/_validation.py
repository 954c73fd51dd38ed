"""Boundary validation shared by every public constructor and function.

Each check raises ``TypeError`` (wrong kind of object) or ``ValueError`` (right kind, wrong
value) with a message that names the argument, states what was expected and gives the first
offending index, e.g. ``P[3, 1, :] sums to 0.97, expected 1 (tolerance 1e-09)``.
Validation happens once, at the boundary; internal code trusts validated arrays.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

#: Absolute tolerance on the sum of a probability vector (rows of P, pi, and mu0).
PROBABILITY_ATOL = 1e-9

__all__ = [
    "PROBABILITY_ATOL",
    "as_float_array",
    "MEMORY_LIMIT",
    "check_distribution",
    "check_memory",
    "check_gamma",
    "check_horizon",
    "check_positive_int",
    "check_positive_finite",
    "check_theta",
    "format_bytes",
    "format_index",
]


def format_index(index: tuple[int, ...] | np.ndarray, trailing: int = 0) -> str:
    """Format an index tuple as ``[3, 1]`` (``[3, 1, :]`` with one trailing slice)."""
    parts = [str(int(i)) for i in index] + [":"] * trailing
    return "[" + ", ".join(parts) + "]"


def _first(mask: np.ndarray) -> tuple[int, ...]:
    return tuple(int(i) for i in np.argwhere(mask)[0])


def as_float_array(
    name: str,
    value: Any,
    *,
    ndim: int | None = None,
    shape: tuple[int | None, ...] | None = None,
    allow_nonfinite: bool = False,
) -> np.ndarray:
    """Convert ``value`` to a float64 array and check its shape and finiteness.

    Parameters
    ----------
    name : str
        Argument name used in error messages.
    value : array_like
        Real numbers. Complex, string, object or boolean input raises ``TypeError``.
    ndim : int, optional
        Required number of dimensions.
    shape : tuple of (int or None), optional
        Required shape; ``None`` entries are free.
    allow_nonfinite : bool
        If False (default) NaN or inf raises ``ValueError`` naming the first offending index.

    Returns
    -------
    numpy.ndarray
        A new, C-contiguous float64 array (the caller's array is never aliased).
    """
    if isinstance(value, (str, bytes)) or value is None:
        raise TypeError(f"{name} must be an array of real numbers, got {type(value).__name__}")
    try:
        raw = np.asarray(value)
    except Exception as exc:  # ragged nested sequences and the like
        raise TypeError(f"{name} must be an array of real numbers: {exc}") from None
    if raw.dtype == object or raw.dtype.kind not in "iuf":
        if raw.dtype.kind == "b":
            raise TypeError(f"{name} must be an array of real numbers, got booleans")
        raise TypeError(f"{name} must be an array of real numbers, got dtype {raw.dtype}")
    arr = np.array(raw, dtype=np.float64, order="C", copy=True)
    if ndim is not None and arr.ndim != ndim:
        raise ValueError(f"{name} must have {ndim} dimension(s), got shape {arr.shape}")
    if shape is not None:
        if arr.ndim != len(shape) or any(
            want is not None and got != want for got, want in zip(arr.shape, shape)
        ):
            want_s = "(" + ", ".join("any" if w is None else str(w) for w in shape) + ")"
            raise ValueError(f"{name} must have shape {want_s}, got {arr.shape}")
    if not allow_nonfinite:
        bad = ~np.isfinite(arr)
        if bad.any():
            idx = _first(bad)
            raise ValueError(
                f"{name}{format_index(idx)} is {arr[idx]}, expected a finite number"
            )
    return arr


def check_distribution(name: str, arr: np.ndarray, atol: float = PROBABILITY_ATOL) -> None:
    """Check that ``arr`` holds probability vectors along its last axis.

    Entries must be ``>= 0`` (exactly) and each vector must sum to 1 within ``atol``.
    """
    neg = arr < 0
    if neg.any():
        idx = _first(neg)
        raise ValueError(f"{name}{format_index(idx)} is {arr[idx]:.6g}, expected >= 0")
    sums = arr.sum(axis=-1)
    bad = np.abs(sums - 1.0) > atol
    if np.any(bad):
        idx = _first(np.atleast_1d(bad)) if arr.ndim > 1 else ()
        total = float(np.asarray(sums)[idx]) if arr.ndim > 1 else float(sums)
        where = f"{name}{format_index(idx, trailing=1)}" if arr.ndim > 1 else name
        raise ValueError(f"{where} sums to {total:.12g}, expected 1 (tolerance {atol:g})")


def _is_integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def _is_real(value: Any) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool)


def check_positive_int(name: str, value: Any) -> int:
    """Return ``value`` as an ``int`` after checking it is an integer >= 1."""
    if not _is_integer(value):
        raise TypeError(f"{name} must be a positive integer, got {value!r}")
    if value < 1:
        raise ValueError(f"{name} must be a positive integer, got {value}")
    return int(value)


def check_positive_finite(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it is a finite number > 0."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a positive finite number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v <= 0:
        raise ValueError(f"{name} must be a positive finite number, got {v}")
    return v


def check_horizon(horizon: Any, name: str = "horizon") -> int | None:
    """``None`` (infinite horizon) or a positive integer."""
    if horizon is None:
        return None
    return check_positive_int(name, horizon)


def check_gamma(gamma: Any, horizon: int | None) -> float:
    """Discount factor: ``0 <= gamma < 1`` if ``horizon is None``, else ``0 <= gamma <= 1``."""
    if not _is_real(gamma):
        raise TypeError(f"gamma must be a real number, got {gamma!r}")
    g = float(gamma)
    if horizon is None:
        if not (0.0 <= g < 1.0):
            raise ValueError(
                f"gamma is {g}, expected 0 <= gamma < 1 for an infinite horizon (horizon=None)"
            )
    elif not (0.0 <= g <= 1.0):
        raise ValueError(f"gamma is {g}, expected 0 <= gamma <= 1 for a finite horizon")
    return g


def check_theta(theta: Any, n_params: int, name: str = "theta") -> np.ndarray:
    """A flat float64 parameter vector of length ``n_params`` with finite entries."""
    arr = as_float_array(name, theta)
    if arr.ndim != 1:
        raise ValueError(f"{name} must be a flat (1-D) vector of length {n_params}, got shape {arr.shape}")
    if arr.shape[0] != n_params:
        raise ValueError(f"{name} must have length n_params={n_params}, got {arr.shape[0]}")
    return arr


#: Largest allocation a call may make before it is refused (bytes); see :func:`check_memory`.
MEMORY_LIMIT = 16 * 2**30


def format_bytes(n_bytes: float) -> str:
    """``1.5 GB``-style size (powers of 1024)."""
    value = float(n_bytes)
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if value < 1024 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} EB"  # pragma: no cover


def check_memory(what: str, n_bytes: float, limit: float | None = None, advice: str = "") -> None:
    """Refuse a call whose arrays would need more than ``limit`` bytes (default :data:`MEMORY_LIMIT`).

    The message says how much memory the call would need, e.g.
    ``ValueError("rollout(..., horizon=1000000000000) would need 3.6e+04 TB for its arrays ...")``.
    """
    lim = MEMORY_LIMIT if limit is None else float(limit)
    if not n_bytes <= lim:
        raise ValueError(
            f"{what} would need {format_bytes(n_bytes)} for its arrays, more than the "
            f"{format_bytes(lim)} allowed (pgexact._validation.MEMORY_LIMIT)" + (f"; {advice}" if advice else "")
        )
