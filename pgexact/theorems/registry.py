r"""The theorem registry: each theorem is data, read alike by ``pgexact verify``, the tests and the figures.

A :class:`Theorem` holds an id, its statement (LaTeX), its source, a generator of random
instances, a residual function and a tolerance justified by theory. ``check(rng)`` draws one
instance and returns its residual; a theorem *passes* on an instance when the residual is
``<= tolerance``. Modules that define theorems call :func:`register` at import time; the
catalogue of modules is :data:`THEOREM_MODULES`.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

__all__ = [
    "Theorem",
    "Control",
    "Outcome",
    "register",
    "identity",
    "inequality",
    "all_theorems",
    "get",
    "relative_error",
    "THEOREM_MODULES",
    "CONTROL_FACTOR",
]

#: Modules (relative to ``pgexact.theorems``) whose import registers theorems.
THEOREM_MODULES: tuple[str, ...] = ("finite", "lqr", "estimators", "updates", "baselines", "average", "convergence")

#: A negative control is *rejected* on an instance when its residual is at least this many times
#: the theorem's tolerance.
CONTROL_FACTOR = 100.0


@dataclass(frozen=True)
class Control:
    """A negative control: the theorem's computation with one plausible mistake.

    Attributes
    ----------
    name : str
        The mistake, e.g. ``"dropped gamma"`` or ``"KL(q || p) instead of KL(p || q)"``.
    residual : callable
        ``residual(instance) -> float``: the theorem's residual with the mistake made. The control
        is rejected on an instance when this is ``>= CONTROL_FACTOR * tolerance``.
    """

    name: str
    residual: Callable[[Any], float]


@dataclass(frozen=True)
class Outcome:
    """The residual of one instance and, for inequalities, ``lhs / rhs`` (1 = binding)."""

    residual: float
    ratio: float | None = None


@dataclass(frozen=True)
class Theorem:
    """A checkable identity or inequality.

    Attributes
    ----------
    id : str
        Short unique name, e.g. ``"pg.q_form"``.
    statement : str
        The statement in LaTeX.
    source : str
        Paper and equation/lemma, textbook section, or course-note section.
    instance : callable
        ``instance(rng: numpy.random.Generator) -> Any``: a random instance.
    residual : callable
        ``residual(instance) -> float`` or ``-> Outcome``: ``>= 0``; small when the theorem holds
        (relative error for identities, positive part of the violation for inequalities).
    tolerance : float
        Largest acceptable residual.
    tolerance_reason : str
        Why this tolerance (conditioning, truncation, finite-difference order, ...).
    reference : str
        The independent computation the residual compares against (e.g. "complex-step derivative
        of J"), sharing no code path with the computation checked beyond the model's data.
    controls : tuple of Control
        Negative controls; each must be rejected on most instances (its measured power).
    """

    id: str
    statement: str
    source: str
    instance: Callable[[np.random.Generator], Any]
    residual: Callable[[Any], Any]
    tolerance: float
    tolerance_reason: str
    reference: str = ""
    controls: tuple[Control, ...] = ()

    def outcome(self, instance: Any) -> Outcome:
        """The residual (and ratio, for inequalities) on a given instance."""
        value = self.residual(instance)
        if isinstance(value, Outcome):
            return value
        return Outcome(float(value))

    def check(self, rng: np.random.Generator) -> float:
        """Draw one instance from ``rng`` and return its residual."""
        return self.outcome(self.instance(rng)).residual


def identity(
    *,
    id: str,
    statement: str,
    source: str,
    reference: str,
    instance: Callable[[np.random.Generator], Any],
    computed: Callable[[Any], Any],
    expected: Callable[[Any], Any],
    tolerance: float,
    tolerance_reason: str,
    mutants: dict[str, Callable[[Any], Any]],
    floor: float = 1.0,
) -> Theorem:
    """Register the identity ``computed(instance) == expected(instance)``.

    The residual is :func:`relative_error` ``(computed, expected, floor)``. ``expected`` is the
    independent reference described by ``reference``. Each mutant is a plausible mistaken version
    of ``computed``; its residual against the same ``expected`` is the negative control.
    """
    if not mutants:
        raise ValueError(f"theorem {id!r} needs at least one mutant (negative control)")

    def residual(inst: Any) -> float:
        return relative_error(computed(inst), expected(inst), floor)

    def control(mutant: Callable[[Any], Any]) -> Callable[[Any], float]:
        return lambda inst: relative_error(mutant(inst), expected(inst), floor)

    return register(
        Theorem(
            id=id,
            statement=statement,
            source=source,
            instance=instance,
            residual=residual,
            tolerance=tolerance,
            tolerance_reason=tolerance_reason,
            reference=reference,
            controls=tuple(Control(name, control(fn)) for name, fn in mutants.items()),
        )
    )


def _inequality_outcome(lhs: float, rhs: float, floor: float) -> Outcome:
    lhs, rhs = float(lhs), float(rhs)
    ratio = lhs / rhs if rhs != 0 else (float("inf") if lhs > 0 else 0.0)
    return Outcome(max(lhs - rhs, 0.0) / max(abs(rhs), floor), ratio)


def inequality(
    *,
    id: str,
    statement: str,
    source: str,
    reference: str,
    instance: Callable[[np.random.Generator], Any],
    lhs: Callable[[Any], float],
    rhs: Callable[[Any], float],
    tolerance: float,
    tolerance_reason: str,
    mutants: dict[str, tuple[Callable[[Any], float] | None, Callable[[Any], float] | None]],
    floor: float = 1.0,
) -> Theorem:
    """Register the inequality ``lhs(instance) <= rhs(instance)``.

    The residual is the positive part of ``lhs - rhs`` relative to ``max(|rhs|, floor)``; the
    ratio ``lhs / rhs`` is reported (the tightest seen tells how close the bound comes to binding).
    Each mutant is a pair ``(lhs_mutant, rhs_mutant)``; ``None`` keeps that side as it is.
    """
    if not mutants:
        raise ValueError(f"theorem {id!r} needs at least one mutant (negative control)")

    def residual(inst: Any) -> Outcome:
        return _inequality_outcome(lhs(inst), rhs(inst), floor)

    def control(pair: tuple) -> Callable[[Any], float]:
        left = pair[0] or lhs
        right = pair[1] or rhs
        return lambda inst: _inequality_outcome(left(inst), right(inst), floor).residual

    return register(
        Theorem(
            id=id,
            statement=statement,
            source=source,
            instance=instance,
            residual=residual,
            tolerance=tolerance,
            tolerance_reason=tolerance_reason,
            reference=reference,
            controls=tuple(Control(name, control(pair)) for name, pair in mutants.items()),
        )
    )


_REGISTRY: dict[str, Theorem] = {}


def register(theorem: Theorem) -> Theorem:
    """Add ``theorem`` to the registry (ids are unique)."""
    if theorem.id in _REGISTRY:
        raise ValueError(f"theorem id {theorem.id!r} is registered twice")
    _REGISTRY[theorem.id] = theorem
    return theorem


def _load() -> None:
    for name in THEOREM_MODULES:
        importlib.import_module(f"pgexact.theorems.{name}")


def all_theorems() -> list[Theorem]:
    """Every registered theorem, in registration order."""
    _load()
    return list(_REGISTRY.values())


def get(theorem_id: str) -> Theorem:
    """The theorem with this id; ``KeyError`` listing the valid ids otherwise."""
    _load()
    try:
        return _REGISTRY[theorem_id]
    except KeyError:
        raise KeyError(
            f"unknown theorem {theorem_id!r}; valid ids: {', '.join(sorted(_REGISTRY))}"
        ) from None


def relative_error(a: Any, b: Any, floor: float = 1.0) -> float:
    """``max|a - b| / max(max|b|, floor)``: relative error with an absolute floor for values near 0."""
    a = np.asarray(a, dtype=float)
    b = np.asarray(b, dtype=float)
    return float(np.max(np.abs(a - b)) / max(float(np.max(np.abs(b))) if b.size else 0.0, floor))
