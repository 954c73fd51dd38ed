"""Error types of pgexact.

Bad *input* raises the built-in ``ValueError`` or ``TypeError`` (the message names the argument,
the expectation and the first offending index). Numerical failure on valid input raises a
subclass of :class:`NumericalError`, so that callers can tell the two apart.
"""

from __future__ import annotations

import numbers

__all__ = ["NumericalError", "SingularSystemError", "UnstableGainError", "NotUniqueError"]


class NumericalError(ArithmeticError):
    """A computation on valid input could not be carried out to the required accuracy."""


class SingularSystemError(NumericalError):
    """A linear system the closed form needs is singular (or numerically so)."""


class NotUniqueError(NumericalError):
    """The requested quantity is not unique (e.g. a reducible chain's stationary distribution)."""


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
