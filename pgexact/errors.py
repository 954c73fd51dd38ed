"""Error types of pgexact.

Bad *input* raises the built-in ``ValueError`` or ``TypeError`` (the message names the argument,
the expectation and the first offending index). Numerical failure on valid input raises a
subclass of :class:`NumericalError`, so that callers can tell the two apart.
"""

from __future__ import annotations

from typing import Any, Sequence

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
        self.classes = list(classes)
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
        self.spectral_radius = float(spectral_radius)
        super().__init__(
            message
            or f"gain K is not stabilizing: spectral radius of sqrt(gamma) (A - B K) is "
            f"{self.spectral_radius:.6g}, expected < 1"
        )
