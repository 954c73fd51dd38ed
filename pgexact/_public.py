"""The public modules of pgexact, walked from the package: what the API reference documents and
the fuzz test calls. A module is public when no part of its dotted path below ``pgexact`` starts
with an underscore (each should define ``__all__``; the fuzz test checks it)."""

from __future__ import annotations

import importlib
import pkgutil
from types import ModuleType

__all__: list[str] = []

#: Public modules whose import needs an optional extra that may be absent.
OPTIONAL = {"pgexact.jax": "jax", "pgexact.torch": "torch"}


def public_modules() -> list[ModuleType]:
    """The public modules, the package first; those of an optional integration whose extra is not
    installed are left out."""
    import pgexact

    names = ["pgexact"] + [
        info.name for info in pkgutil.walk_packages(pgexact.__path__, "pgexact.")
        if not any(part.startswith("_") for part in info.name.split(".")[1:])
    ]
    out = []
    for name in names:
        if name in OPTIONAL:
            try:
                importlib.import_module(OPTIONAL[name])
            except ImportError:
                continue
        out.append(importlib.import_module(name))
    return out
