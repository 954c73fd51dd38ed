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

#: Largest amount of memory (bytes) one call may allocate for its arrays; a call that would need
#: more is refused with the amount it would need (see :func:`check_memory`). Sampled and exact
#: arrays alike: a rollout, a table of state marginals, a trajectory Fisher.
MAX_CALL_BYTES = 8 * 1024**3  # a third of the 24 GB machines this runs on

__all__ = [
    "MAX_CALL_BYTES",
    "PROBABILITY_ATOL",
    "check_memory",
    "check_time_steps",
    "MAX_TIME_STEPS",
    "as_float_array",
    "as_probabilities",
    "check_action_mask",
    "check_feasible",
    "check_distribution",
    "check_memory",
    "check_gamma",
    "check_horizon",
    "check_positive_int",
    "check_positive_finite",
    "check_tolerance",
    "check_callable",
    "check_real",
    "check_bool",
    "check_theta",
    "format_bytes",
    "number_of_steps",
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
    big = arr > 1.0 + atol  # refused before summing: a sum of huge entries would overflow
    if big.any():
        idx = _first(big)
        raise ValueError(f"{name}{format_index(idx)} is {arr[idx]:.6g}, expected a probability <= 1")
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


def number_of_steps(model_horizon: int | None, horizon: Any, need: str) -> int:
    """The number of steps T of an exact computation on a model.

    A finite-horizon model fixes T: ``horizon`` must be None or equal to it. A discounted model
    (``model_horizon`` None) needs ``horizon``, a positive integer; ``need`` ends the message when
    it is missing. ``horizon`` is checked before it is compared, so a malformed value gets its own
    message rather than a failed comparison.
    """
    if horizon is not None:
        horizon = check_positive_int("horizon", horizon)
    if model_horizon is not None:
        if horizon is not None and horizon != model_horizon:
            raise ValueError(f"horizon is {horizon}, but the mdp has horizon {model_horizon}")
        return int(model_horizon)
    if horizon is None:
        raise ValueError(f"horizon is None, but the mdp is discounted: {need}")
    return horizon


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


def check_tolerance(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it is a finite number >= 0 (a tolerance)."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a finite number >= 0, got {value!r}")
    v = float(value)
    if not (np.isfinite(v) and v >= 0):
        raise ValueError(f"{name} must be a finite number >= 0, got {v}")
    return v


def check_real(name: str, value: Any) -> float:
    """Return ``value`` as a float after checking it is a finite real number (not a bool)."""
    if not _is_real(value):
        raise TypeError(f"{name} must be a finite real number, got {value!r}")
    v = float(value)
    if not np.isfinite(v):
        raise ValueError(f"{name} must be a finite real number, got {v}")
    return v


def check_bool(name: str, value: Any) -> bool:
    """Return ``value`` after checking it is a bool (``numpy.bool_`` included)."""
    if not isinstance(value, (bool, np.bool_)):
        raise TypeError(f"{name} must be True or False, got {value!r}")
    return bool(value)


def check_callable(name: str, value: Any) -> Any:
    """Return ``value`` after checking it is callable (``TypeError`` naming ``name`` otherwise)."""
    if not callable(value):
        raise TypeError(f"{name} must be a callable, got {type(value).__name__}")
    return value


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
    if type(theta) is np.ndarray and theta.dtype == np.float64 and theta.shape == (n_params,):
        # fast path for the common case (a float64 vector of the right length)
        if np.isfinite(theta).all():
            return theta.copy()
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
    with np.errstate(over="ignore"):  # a difference beyond float64 is inf: not symmetric
        bad = np.abs(arr - arr.T) > SYMMETRY_RTOL * scale
    if bad.any():
        i, j = _first(bad)
        raise ValueError(
            f"{name} must be symmetric: {name}[{i}, {j}] = {arr[i, j]:.17g} but "
            f"{name}[{j}, {i}] = {arr[j, i]:.17g} (relative tolerance {SYMMETRY_RTOL:g})"
        )
    if np.array_equal(arr, arr.T):
        return arr.copy()
    with np.errstate(over="ignore", under="ignore"):
        sym = 0.5 * (arr + arr.T)
        if not np.isfinite(sym).all():  # a sum beyond float64: halves first
            sym = arr / 2 + arr.T / 2
    return sym


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


def check_feasible(name: str, pi: np.ndarray, action_mask: np.ndarray | None) -> None:
    """Raise ``ValueError`` naming the first ``(s, a)`` where ``pi`` puts mass on an infeasible action."""
    if action_mask is None:
        return
    bad = (pi > 0) & ~action_mask
    if bad.any():
        s, a = _first(bad)
        raise ValueError(
            f"{name}[{s}, {a}] is {pi[s, a]:.6g}, but action {a} is infeasible in state {s} "
            f"(action_mask[{s}, {a}] is False): expected probability 0"
        )


def _is_policy_object(value: Any) -> bool:
    return callable(getattr(value, "probs", None)) and hasattr(value, "n_params")


def as_probabilities(
    pi: Any,
    name: str = "pi",
    *,
    n_states: int | None = None,
    n_actions: int | None = None,
    action_mask: np.ndarray | None = None,
    atol: float = PROBABILITY_ATOL,
) -> np.ndarray:
    r"""Resolve a policy given as a probability matrix or as a pair ``(policy, theta)``.

    The one mechanism by which every function of a policy's action probabilities reads its
    ``pi`` argument (public as :func:`pgexact.policies.as_probabilities`).

    Parameters
    ----------
    pi : array_like, shape (S, A), or tuple (policy, theta)
        A matrix whose rows are distributions :math:`\pi(\cdot|s)` (tolerance ``atol``), or a
        parametrized policy (any object with ``probs(theta)`` and ``n_params``, e.g.
        :class:`pgexact.TabularSoftmax`) with its parameters, shape (n_params,).
    name : str
        The argument's name, used in error messages.
    n_states, n_actions : int, optional
        Required shape (S, A).
    action_mask : numpy.ndarray of bool, shape (S, A), optional
        Feasible actions; mass on an infeasible action raises ``ValueError`` naming (s, a).

    Returns
    -------
    numpy.ndarray, shape (S, A)
        A new float64 array.

    Raises
    ------
    TypeError
        ``pi`` is neither form (e.g. a bare policy object: pass ``(policy, theta)``).
    ValueError
        Wrong shape, a negative entry, a row not summing to 1, mass on an infeasible action.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax
    >>> from pgexact.policies import as_probabilities
    >>> pol = TabularSoftmax(1, 2)
    >>> as_probabilities((pol, np.zeros(2))).tolist()
    [[0.5, 0.5]]
    >>> as_probabilities(pol)
    Traceback (most recent call last):
    ...
    TypeError: pi is a TabularSoftmax without parameters: pass pi=(policy, theta), or a probability matrix of shape (S, A)
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (the argument's name for error messages), got {type(name).__name__}")
    for label, size in (("n_states", n_states), ("n_actions", n_actions)):
        if size is not None:
            check_positive_int(label, size)
    check_tolerance("atol", atol)
    shape = (n_states, n_actions)
    if _is_policy_object(pi):
        raise TypeError(
            f"{name} is a {type(pi).__name__} without parameters: pass {name}=(policy, theta), "
            "or a probability matrix of shape (S, A)"
        )
    if isinstance(pi, tuple) and len(pi) == 2 and _is_policy_object(pi[0]):
        policy, theta = pi
        got = (getattr(policy, "n_states", None), getattr(policy, "n_actions", None))
        if any(w is not None and g != w for g, w in zip(got, shape)):
            raise ValueError(
                f"the policy in {name}=(policy, theta) is for (n_states, n_actions)={got}, "
                f"expected {shape}"
            )
        arr = np.asarray(policy.probs(check_theta(theta, policy.n_params, name=f"theta in {name}=(policy, theta)")))
    else:
        raw = pi if isinstance(pi, np.ndarray) else None
        if raw is None and not isinstance(pi, (str, bytes)) and pi is not None:
            try:
                raw = np.asarray(pi)
            except Exception:  # ragged nested sequences and the like
                raw = None
        if raw is None or raw.dtype == object:
            raise TypeError(
                f"{name} must be a probability matrix of shape (S, A) (an array of real numbers) "
                f"or a pair (policy, theta), got {type(pi).__name__}"
                + ("" if raw is None else f" of dtype {raw.dtype}")
            )
        arr = as_float_array(name, raw, shape=shape)
        check_distribution(name, arr, atol=atol)
    if action_mask is not None:
        if not (isinstance(action_mask, np.ndarray) and action_mask.dtype == bool):
            raise TypeError(f"action_mask must be a boolean numpy array of shape (S, A), got {type(action_mask).__name__}")
        if action_mask.shape != arr.shape:
            raise ValueError(f"action_mask must have the shape {arr.shape} of {name}, got {action_mask.shape}")
    check_feasible(name, arr, action_mask)
    return arr


def check_action_mask(action_mask: Any, n_states: int, n_actions: int, name: str = "action_mask") -> np.ndarray | None:
    """``None``, or a read-only boolean (S, A) copy with at least one feasible action per state."""
    if action_mask is None:
        return None
    try:
        mask = np.asarray(action_mask)
    except Exception as exc:  # ragged nested sequences and the like
        raise TypeError(f"{name} must be a boolean array of shape (S, A): {exc}") from None
    if mask.dtype != bool:
        raise TypeError(f"{name} must be a boolean array of shape (S, A), got dtype {mask.dtype}")
    if mask.shape != (n_states, n_actions):
        raise ValueError(f"{name} must have shape (S, A)=({n_states}, {n_actions}), got {mask.shape}")
    empty = ~mask.any(axis=1)
    if empty.any():
        s = int(np.argmax(empty))
        raise ValueError(f"{name}[{s}, :] has no feasible action, expected at least one True per state")
    mask = np.array(mask, dtype=bool, copy=True)
    mask.flags.writeable = False
    return mask


def format_bytes(n_bytes: float) -> str:
    """``1.5 GB``-style size (powers of 1024)."""
    value = float(n_bytes)
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if value < 1024 or unit == "PB":
            return f"{value:.0f} {unit}" if unit == "bytes" else f"{value:.3g} {unit}"
        value /= 1024
    return f"{value:.3g} EB"  # pragma: no cover


#: Longest time recursion the exact core runs in Python (one numpy step per time step, about
#: 5-10 µs each): a longer horizon is refused with the time it would take, never left to hang.
MAX_TIME_STEPS = 200_000


def check_time_steps(what: str, steps: int, advice: str = "") -> None:
    """Refuse a Python loop over more than :data:`MAX_TIME_STEPS` time steps, saying how long it would take."""
    if steps > MAX_TIME_STEPS:
        raise ValueError(
            f"{what} would loop over {steps} time steps (about {steps * 1e-5:.3g} s or more), more than "
            f"the {MAX_TIME_STEPS} the exact recursions run" + (f": {advice}" if advice else "")
        )


def check_memory(what: str, n_bytes: float, advice: str = "") -> None:
    """Refuse a call whose arrays would need more than :data:`MAX_CALL_BYTES`.

    ``what`` describes the call and its arguments (e.g. ``"state_marginals with T=10**12"``),
    ``n_bytes`` is computed with Python integers or floats (no overflow), ``advice`` says what to
    do. The message says how much memory the call would need.
    """
    if not n_bytes <= MAX_CALL_BYTES:
        raise ValueError(
            f"{what} would need {format_bytes(n_bytes)} for its arrays, more than the "
            f"{format_bytes(MAX_CALL_BYTES)} one call may allocate" + (f": {advice}" if advice else "")
        )


def freeze_arrays(record: object, names: tuple[str, ...]) -> None:
    """Replace each ndarray field of a frozen record by a read-only view of it.

    The caller's array itself stays writeable; a field of any other type is stored as given
    (a record does not validate: it holds what the function that built it computed).
    """
    for name in names:
        arr = getattr(record, name)
        if isinstance(arr, np.ndarray):
            view = arr.view()
            view.flags.writeable = False
            object.__setattr__(record, name, view)


def _sparse_parts(value: Any) -> tuple[np.ndarray, ...] | None:
    """The index and data arrays of a scipy.sparse compressed matrix (None for anything else)."""
    parts = tuple(getattr(value, name, None) for name in ("data", "indices", "indptr"))
    if all(isinstance(p, np.ndarray) for p in parts) and hasattr(value, "tocsr"):
        return parts
    return None


def _is_read_only(value: Any) -> bool:
    if isinstance(value, np.ndarray):
        return not value.flags.writeable
    parts = _sparse_parts(value)
    return parts is not None and not any(p.flags.writeable for p in parts)


def _make_read_only(value: Any) -> None:
    parts = (value,) if isinstance(value, np.ndarray) else (_sparse_parts(value) or ())
    for part in parts:
        part.flags.writeable = False


class ReadOnlyOnCopy:
    """Base of records whose arrays are read-only: copies keep them read-only.

    ``copy.copy``, ``copy.deepcopy`` and a pickle round-trip rebuild an object from its state,
    and a copied or unpickled numpy array is writeable; the state therefore lists the
    attributes whose arrays (or scipy.sparse matrices) were read-only, and restoring it makes
    the new arrays read-only again.
    """

    __slots__ = ()

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        state["__read_only__"] = tuple(name for name, value in self.__dict__.items() if _is_read_only(value))
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        state = dict(state)
        names = state.pop("__read_only__", ())
        self.__dict__.update(state)
        for name in names:
            _make_read_only(self.__dict__[name])
