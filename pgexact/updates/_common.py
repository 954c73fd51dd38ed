"""Helpers shared by the update rules."""

from __future__ import annotations

from typing import Any

import numpy as np

from .._random import as_seed_sequence


def _theta(source: Any, theta: Any) -> np.ndarray:
    return source.policy.check_theta(theta)


def _split_seed(seed: Any, n: int) -> list[Any]:
    """``n`` independent child seeds of ``seed`` (``None`` stays ``None``)."""
    if seed is None:
        return [None] * n
    return list(as_seed_sequence(seed).spawn(n))
