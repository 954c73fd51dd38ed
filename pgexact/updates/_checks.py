"""Argument checks of the update rules (validated once, at the public boundary)."""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

from .._validation import check_positive_finite

__all__ = ["check_clip", "check_delta", "check_lr", "check_nonnegative_finite", "check_ratio", "check_source"]


def check_delta(delta: Any, name: str = "delta") -> float:
    """A KL radius: a finite number > 0 (``ValueError`` for 0, negative, NaN or inf)."""
    return check_positive_finite(name, delta)


def check_lr(lr: Any, name: str = "lr") -> float:
    """A learning rate: a finite number > 0."""
    return check_positive_finite(name, lr)


def check_clip(clip: Any, name: str = "clip") -> float:
    """The PPO clip range ε: a number in the open interval (0, 1)."""
    if not isinstance(clip, numbers.Real) or isinstance(clip, bool):
        raise TypeError(f"{name} must be a number in (0, 1), got {clip!r}")
    c = float(clip)
    if not (0.0 < c < 1.0):
        raise ValueError(f"{name} is {c}, expected a number in the open interval (0, 1)")
    return c


def check_nonnegative_finite(name: str, value: Any) -> float:
    """A finite number >= 0."""
    if not isinstance(value, numbers.Real) or isinstance(value, bool):
        raise TypeError(f"{name} must be a non-negative finite number, got {value!r}")
    v = float(value)
    if not np.isfinite(v) or v < 0:
        raise ValueError(f"{name} must be a non-negative finite number, got {v}")
    return v


def check_ratio(name: str, value: Any) -> float:
    """A backtracking ratio in the open interval (0, 1)."""
    return check_clip(value, name=name)


def check_source(source: Any) -> Any:
    """A gradient source: anything with ``policy`` and ``at(theta, seed=None)``."""
    if not (hasattr(source, "at") and hasattr(source, "policy")):
        raise TypeError(
            "source must be a gradient source (pgexact.ExactSource or pgexact.updates.SampledSource), "
            f"got {type(source).__name__}"
        )
    return source

