"""Helpers shared by the update rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._random import as_seed_sequence
from ..errors import NumericalError


def _theta(source: Any, theta: Any) -> np.ndarray:
    return source.policy.check_theta(theta)


def _split_seed(seed: Any, n: int) -> list[Any]:
    """``n`` independent child seeds of ``seed`` (``None`` stays ``None``)."""
    if seed is None:
        return [None] * n
    return list(as_seed_sequence(seed).spawn(n))


def _moved(theta: np.ndarray, lr: float, h: np.ndarray, *, name: str = "lr", advice: str = "") -> np.ndarray:
    """``theta + lr * h``, refused (naming the step-size argument ``name``) when it leaves the float64 range."""
    with np.errstate(over="ignore", invalid="ignore"):
        out = theta + lr * h
    if not np.all(np.isfinite(out)):
        raise NumericalError(
            f"theta + step * direction overflows float64 ({name} gives a step of {lr:.3g}, largest "
            f"|direction| entry {float(np.max(np.abs(h))):.3g}): use a smaller {name}{advice}"
        )
    return out
