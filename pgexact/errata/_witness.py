"""Result type of an erratum's numerical witness."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["Witness"]


@dataclass(frozen=True)
class Witness:
    r"""A numerical instance on which the printed and the corrected statements disagree.

    Attributes
    ----------
    quantity : str
        What is compared (one scalar), e.g. ``"1/2 dθᵀ F dθ after the step"``.
    instance : str
        The concrete instance (builder call, seed, parameters), reproducible from the text.
    printed : float
        The value of ``quantity`` according to the statement as printed (for a bound: the
        printed bound).
    corrected : float
        The value according to the corrected statement (for a bound: the corrected bound).
    reference : float
        The true value, computed by the library independently of both statements.
    separates : bool
        ``True`` when the corrected statement agrees with ``reference`` (identity within
        ``tolerance``, or bound satisfied) and the printed one does not (differs by more than
        ``tolerance``, or bound violated).
    tolerance : float
        Relative tolerance used for identities (absolute for quantities that are 0 or 1).
    kind : str
        ``"identity"`` or ``"lower bound"`` / ``"upper bound"`` (the reference must lie above /
        below the bound).
    """

    quantity: str
    instance: str
    printed: float
    corrected: float
    reference: float
    separates: bool
    tolerance: float
    kind: str = "identity"


def _close(a: float, b: float, tol: float) -> bool:
    return abs(a - b) <= tol * max(1.0, abs(b))


def identity_witness(
    quantity: str, instance: str, printed: float, corrected: float, reference: float, tolerance: float
) -> Witness:
    """A witness for an identity: the corrected value matches the reference, the printed does not."""
    printed, corrected, reference = float(printed), float(corrected), float(reference)
    sep = _close(corrected, reference, tolerance) and not _close(printed, reference, 1e3 * tolerance)
    return Witness(quantity, instance, printed, corrected, reference, sep, tolerance, "identity")


def bound_witness(
    quantity: str, instance: str, printed: float, corrected: float, reference: float, kind: str,
    tolerance: float = 1e-12,
) -> Witness:
    """A witness for a bound: ``reference`` violates the printed bound and satisfies the corrected one.

    ``kind="upper bound"``: the statement is ``reference <= bound``; ``"lower bound"``:
    ``reference >= bound``. The violation of the printed bound must exceed ``tolerance``.
    """
    printed, corrected, reference = float(printed), float(corrected), float(reference)
    if kind == "upper bound":
        sep = reference <= corrected + tolerance and reference > printed + tolerance
    elif kind == "lower bound":
        sep = reference >= corrected - tolerance and reference < printed - tolerance
    else:
        raise ValueError(f"kind must be 'upper bound' or 'lower bound', got {kind!r}")
    return Witness(quantity, instance, printed, corrected, reference, sep, tolerance, kind)
