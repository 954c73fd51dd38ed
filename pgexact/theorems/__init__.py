"""Theorems as data: statement, source, random instances, residual, tolerance."""

from .registry import Theorem, all_theorems, get, register, relative_error

__all__ = ["Theorem", "all_theorems", "get", "register", "relative_error"]
