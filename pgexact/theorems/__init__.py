"""Theorems as data: statement, source, random instances, an independent reference, a tolerance
justified by theory, and negative controls (:mod:`pgexact.theorems.registry`)."""

from .registry import (
    CONTROL_FACTOR,
    Control,
    Outcome,
    Theorem,
    UnknownTheoremError,
    all_theorems,
    bernoulli_statistic,
    get,
    identity,
    inequality,
    register,
    relative_error,
    statistical,
)

__all__ = [
    "CONTROL_FACTOR",
    "Control",
    "Outcome",
    "Theorem",
    "UnknownTheoremError",
    "all_theorems",
    "bernoulli_statistic",
    "get",
    "identity",
    "inequality",
    "register",
    "relative_error",
    "statistical",
]
