"""Result type of an erratum's numerical witness."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Witness", "identity_witness", "bound_witness"]


@dataclass(frozen=True)
class Witness:
    r"""A concrete instance on which the printed and the corrected statements give different values.

    The three numbers come from code paths that share nothing but the instance's data: the
    printed and the corrected statements are each evaluated by a few lines of numpy written from
    the formula, and the truth (``reference``) by pgexact's closed forms or a generic solver,
    confirmed by a second, independent computation (``reference_check``: central or complex-step
    differences, trajectory or batch enumeration, an ODE solver, a linear program, ...).

    Attributes
    ----------
    quantity : str
        What is compared (one scalar).
    instance : str
        The concrete instance (sizes, seeds, parameters), reproducible from the text.
    printed : float
        The value of ``quantity`` according to the statement as printed (for a bound: the
        printed bound).
    corrected : float
        The value according to the corrected statement (for a bound: the corrected bound).
    reference : float
        The true value of ``quantity``.
    reference_check : float
        The true value again, by an independent computation.
    reference_method : str
        How ``reference`` and ``reference_check`` are computed.
    tolerance : float
        Tolerance of the comparisons (relative to ``max(1, |reference|)``), from the accuracy of
        the reference computations.
    kind : str
        ``"identity"``, ``"upper bound"`` (the truth must lie below the bound) or
        ``"lower bound"`` (above it).
    """

    quantity: str
    instance: str
    printed: float
    corrected: float
    reference: float
    reference_check: float
    reference_method: str
    tolerance: float
    kind: str = "identity"

    @property
    def scale(self) -> float:
        """``max(1, |reference|)``: the scale of the tolerance and of the margins."""
        return max(1.0, abs(self.reference))

    @property
    def reference_confirmed(self) -> bool:
        """The two computations of the truth agree within ``tolerance``."""
        return abs(self.reference - self.reference_check) <= self.tolerance * self.scale

    @property
    def corrected_holds(self) -> bool:
        """The corrected statement agrees with the truth (identity) or the truth satisfies it (bound)."""
        tol = self.tolerance * self.scale
        if self.kind == "identity":
            return abs(self.corrected - self.reference) <= tol
        if self.kind == "upper bound":
            return self.reference <= self.corrected + tol
        return self.reference >= self.corrected - tol

    @property
    def printed_miss(self) -> float:
        """By how much the printed statement misses the truth, relative to ``scale`` (> 0 means wrong)."""
        if self.kind == "identity":
            return abs(self.printed - self.reference) / self.scale
        if self.kind == "upper bound":
            return (self.reference - self.printed) / self.scale
        return (self.printed - self.reference) / self.scale

    @property
    def separates(self) -> bool:
        """The truth is confirmed, the corrected statement holds and the printed one misses.

        "Misses" means by at least 1% of ``scale`` and by at least 100 tolerances: far more
        than rounding or the error of the reference computations.
        """
        miss = self.printed_miss
        return (self.reference_confirmed and self.corrected_holds
                and miss >= 1e-2 and miss >= 100 * self.tolerance)


def _w(quantity: str, instance: str, printed: float, corrected: float, reference: float,
       reference_check: float, reference_method: str, tolerance: float, kind: str) -> Witness:
    return Witness(quantity, instance, float(printed), float(corrected), float(reference),
                   float(reference_check), reference_method, float(tolerance), kind)


def identity_witness(
    quantity: str, instance: str, printed: float, corrected: float, reference: float,
    reference_check: float, reference_method: str, tolerance: float,
) -> Witness:
    """A witness for an identity: the corrected value equals the truth, the printed one does not."""
    return _w(quantity, instance, printed, corrected, reference, reference_check, reference_method,
              tolerance, "identity")


def bound_witness(
    quantity: str, instance: str, printed: float, corrected: float, reference: float,
    reference_check: float, reference_method: str, kind: str, tolerance: float = 1e-12,
) -> Witness:
    """A witness for a bound: the truth violates the printed bound and satisfies the corrected one.

    ``kind="upper bound"``: the statement is ``truth <= bound``; ``"lower bound"``:
    ``truth >= bound``.
    """
    if kind not in ("upper bound", "lower bound"):
        raise ValueError(f"kind must be 'upper bound' or 'lower bound', got {kind!r}")
    return _w(quantity, instance, printed, corrected, reference, reference_check, reference_method,
              tolerance, kind)
