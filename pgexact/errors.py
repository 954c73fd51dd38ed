"""Error types of pgexact.

Bad *input* raises the built-in ``ValueError`` or ``TypeError`` (the message names the argument,
the expectation and the first offending index). Numerical failure on valid input raises a
subclass of :class:`NumericalError`, so that callers can tell the two apart.
"""

from __future__ import annotations

import numbers
from typing import Any, Sequence

import numpy as np

__all__ = ["NumericalError", "SingularSystemError", "UnstableGainError", "NotUniqueError", "MultichainError"]


class NumericalError(ArithmeticError):
    """A computation on valid input could not be carried out to the required accuracy."""


class SingularSystemError(NumericalError):
    """A linear system the closed form needs is singular (or numerically so)."""


class NotUniqueError(NumericalError):
    """The requested quantity is not unique (e.g. a reducible chain's stationary distribution)."""


class MultichainError(ValueError, NotUniqueError):
    """The chain under the policy has more than one closed class: the gain is not a single number.

    A ``ValueError`` (the policy is outside the unichain domain the average-reward formulas need)
    and a :class:`NotUniqueError` (the condition under which the stationary distribution is not
    unique).

    Attributes
    ----------
    classes : list of numpy.ndarray
        The closed classes (state indices), at least two.
    """

    def __init__(self, classes: Sequence[Any]) -> None:
        classes = _check_classes(classes)
        self.classes = classes
        shown = "; ".join(
            "{" + ", ".join(str(int(s)) for s in c[:8]) + (", ..." if len(c) > 8 else "") + "}" for c in classes[:4]
        )
        more = f" and {len(classes) - 4} more" if len(classes) > 4 else ""
        super().__init__(
            f"the chain under pi is multichain: {len(classes)} closed classes of states ({shown}{more}); "
            "the average reward depends on the start state and pgexact.average needs a unichain policy "
            "(one closed class). Use a policy that reaches one class from everywhere, or the discounted objective"
        )


class UnstableGainError(NumericalError):
    """An LQR gain is not stabilizing: the spectral radius of sqrt(gamma) (A - B K) is >= 1.

    Attributes
    ----------
    spectral_radius : float
        The spectral radius of ``sqrt(gamma) * (A - B @ K)`` that was found.
    """

    def __init__(self, spectral_radius: float, message: str | None = None) -> None:
        if isinstance(spectral_radius, bool) or not isinstance(spectral_radius, numbers.Real):
            raise TypeError(f"spectral_radius must be a real number, got {spectral_radius!r}")
        if message is not None and not isinstance(message, str):
            raise TypeError(f"message must be a str or None, got {type(message).__name__}")
        self.spectral_radius = float(spectral_radius)
        super().__init__(
            message
            or f"gain K is not stabilizing: spectral radius of sqrt(gamma) (A - B K) is "
            f"{self.spectral_radius:.6g}, expected < 1"
        )


def _check_classes(classes: Any) -> list[Any]:
    """``classes`` as a list of 1-D arrays of state indices (non-negative integers)."""
    if isinstance(classes, (str, bytes, np.ndarray)) or not isinstance(classes, (list, tuple)):
        raise TypeError(f"classes must be a list of arrays of state indices, got {type(classes).__name__}")
    out = []
    for i, c in enumerate(classes):
        arr = np.asarray(c) if isinstance(c, (list, tuple, np.ndarray)) else None
        if arr is None or arr.ndim != 1 or arr.dtype.kind not in "iu":
            raise TypeError(f"classes[{i}] must be a 1-D array of state indices (integers), got {c!r}")
        if arr.size and arr.min() < 0:
            raise ValueError(f"classes[{i}] holds the negative state index {int(arr.min())}")
        out.append(arr)
    return out
