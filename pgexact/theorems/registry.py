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

__all__ = ["Theorem", "register", "all_theorems", "get", "THEOREM_MODULES"]

#: Modules (relative to ``pgexact.theorems``) whose import registers theorems.
THEOREM_MODULES: tuple[str, ...] = ("finite", "lqr", "estimators", "updates")


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
        ``residual(instance) -> float``: ``>= 0``; small when the theorem holds (relative error
        for identities, positive part of the violation for inequalities).
    tolerance : float
        Largest acceptable residual.
    tolerance_reason : str
        Why this tolerance (conditioning, truncation, finite-difference order, ...).
    """

    id: str
    statement: str
    source: str
    instance: Callable[[np.random.Generator], Any]
    residual: Callable[[Any], float]
    tolerance: float
    tolerance_reason: str

    def check(self, rng: np.random.Generator) -> float:
        """Draw one instance from ``rng`` and return its residual."""
        return float(self.residual(self.instance(rng)))


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
