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
    "check_distribution",
    "check_gamma",
    "check_horizon",
    "check_positive_int",
    "check_positive_finite",
    "check_theta",
    "format_index",
    "SYMMETRY_RTOL",
    "PSD_RTOL",
    "check_square",
    "check_symmetric",
    "check_semidefinite",
    "check_covariance",
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


#: Relative tolerance on symmetry: ``|M[i, j] - M[j, i]| <= SYMMETRY_RTOL * max(1, max|M|)``.
SYMMETRY_RTOL = 1e-10
#: Relative tolerance on semi-definiteness: smallest eigenvalue ``>= -PSD_RTOL * max(1, max|M|)``
#: (an exactly PSD matrix has computed eigenvalues down to about ``-n * eps * |M|``).
PSD_RTOL = 1e-10


def check_square(name: str, value: Any, n: int | None = None, what: str = "") -> np.ndarray:
    """A float64 square matrix (of size ``n`` if given; ``what`` says what n must match)."""
    arr = as_float_array(name, value, ndim=2)
    if arr.shape[0] != arr.shape[1]:
        raise ValueError(f"{name} must be a square matrix, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n}, {n}){what}, got {arr.shape}")
    return arr


def check_symmetric(name: str, arr: np.ndarray) -> np.ndarray:
    """Check symmetry to :data:`SYMMETRY_RTOL` (first offending index) and return the symmetrized copy."""
    scale = max(1.0, float(np.max(np.abs(arr)))) if arr.size else 1.0
    bad = np.abs(arr - arr.T) > SYMMETRY_RTOL * scale
    if bad.any():
        i, j = _first(bad)
        raise ValueError(
            f"{name} must be symmetric: {name}[{i}, {j}] = {arr[i, j]:.17g} but "
            f"{name}[{j}, {i}] = {arr[j, i]:.17g} (relative tolerance {SYMMETRY_RTOL:g})"
        )
    return 0.5 * (arr + arr.T)


def check_semidefinite(name: str, arr: np.ndarray, strict: bool = False) -> None:
    """Positive semi-definite to :data:`PSD_RTOL` (``strict``: positive definite, by Cholesky)."""
    scale = max(1.0, float(np.max(np.abs(arr)))) if arr.size else 1.0
    lam = np.linalg.eigvalsh(arr)
    lo = float(lam[0]) if lam.size else 0.0
    if strict:
        try:
            np.linalg.cholesky(arr)
            ok = lo > 0.0
        except np.linalg.LinAlgError:
            ok = False
        if not ok:
            raise ValueError(f"{name} must be positive definite, got smallest eigenvalue {lo:.6g}")
    elif lo < -PSD_RTOL * scale:
        raise ValueError(
            f"{name} must be positive semi-definite, got smallest eigenvalue {lo:.6g} "
            f"(tolerance {-PSD_RTOL * scale:.3g})"
        )


def check_covariance(name: str, value: Any, n: int, what: str = "") -> np.ndarray:
    """A symmetric positive semi-definite (n, n) matrix (symmetrized float64 copy)."""
    arr = check_symmetric(name, check_square(name, value, n, what))
    check_semidefinite(name, arr)
    return arr
