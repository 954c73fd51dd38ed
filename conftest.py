"""Doctest collection: skip the optional adapters whose framework is not installed."""

import importlib.util

collect_ignore = [
    path
    for path, module in (("pgexact/torch.py", "torch"), ("pgexact/jax.py", "jax"))
    if importlib.util.find_spec(module) is None
]
