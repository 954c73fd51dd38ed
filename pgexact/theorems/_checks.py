"""Argument checks of the registry's constructors (:mod:`pgexact.theorems.registry`).

Each check raises ``TypeError`` (wrong kind of value) or ``ValueError`` (right kind, bad value)
with a message naming the argument as the caller spelled it, and returns the value normalized.
"""

from __future__ import annotations

import math
from typing import Any, Callable, Mapping

import numpy as np

__all__: list[str] = []


def text(name: str, value: Any, *, empty: bool = False) -> str:
    """A string (non-empty unless ``empty``)."""
    if not isinstance(value, str):
        raise TypeError(f"{name} must be a string, got {type(value).__name__} {_short(value)}")
    if not empty and not value.strip():
        raise ValueError(f"{name} must be a non-empty string, got {value!r}")
    return value


def function(name: str, value: Any) -> Callable[..., Any]:
    """A callable."""
    if not callable(value):
        raise TypeError(f"{name} must be callable, got {type(value).__name__} {_short(value)}")
    return value


def real(name: str, value: Any, *, low: float, high: float = math.inf, low_open: bool = True,
         high_open: bool = False) -> float:
    """A finite real number (not a bool) in the interval from ``low`` to ``high``."""
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a real number, got {type(value).__name__} {_short(value)}")
    x = float(value)
    too_low = x <= low if low_open else x < low
    too_high = x >= high if high_open else x > high
    if not math.isfinite(x) or too_low or too_high:
        interval = ("(" if low_open else "[") + f"{low:g}, {high:g}" + (")" if high_open else "]")
        raise ValueError(f"{name} must be a finite number in {interval}, got {value!r}")
    return x


def mutants(name: str, value: Any, *, pairs: bool = False) -> dict[str, Any]:
    """A non-empty mapping from mistake names to mistaken computations.

    With ``pairs`` each value is ``(lhs_mutant, rhs_mutant)``, each callable or None, not both None.
    """
    if not isinstance(value, Mapping):
        what = "(lhs_mutant, rhs_mutant) pairs" if pairs else "mistaken computations"
        raise TypeError(
            f"{name} must be a dict from mistake names to {what}, got {type(value).__name__} {_short(value)}"
        )
    if len(value) == 0:
        raise ValueError(f"{name} is empty: a theorem needs at least one mutant (negative control)")
    out = {}
    for key, fn in value.items():
        text(f"{name} key {key!r}", key)
        where = f"{name}[{key!r}]"
        if pairs:
            if not isinstance(fn, tuple) or len(fn) != 2:
                raise TypeError(f"{where} must be a pair (lhs_mutant, rhs_mutant), got {_short(fn)}")
            if fn[0] is None and fn[1] is None:
                raise ValueError(f"{where} is (None, None): a mutant must change at least one side")
            for side, f in zip(("lhs", "rhs"), fn):
                if f is not None:
                    function(f"{where} ({side} side)", f)
        else:
            function(where, fn)
        out[key] = fn
    return out


def counts_array(name: str, value: Any) -> np.ndarray:
    """A real-valued array (bool or integer or float dtype) with no NaN or infinity."""
    try:
        arr = np.asarray(value)
    except (TypeError, ValueError):
        raise TypeError(f"{name} must be a numeric array, got {_short(value)}") from None
    if arr.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {arr.dtype} ({_short(value)})")
    arr = arr.astype(np.float64, copy=False)
    bad = np.flatnonzero(~np.isfinite(arr))
    if bad.size:
        i = tuple(int(j) for j in np.unravel_index(int(bad[0]), arr.shape))
        raise ValueError(f"{name}{list(i)} = {float(arr[i])!r} is not finite")
    return arr


def _short(value: Any) -> str:
    r = repr(value).replace("\n", " ")
    return r if len(r) <= 60 else r[:57] + "..."
