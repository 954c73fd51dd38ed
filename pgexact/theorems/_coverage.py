"""Which public numerical functions the theorems reach (``pgexact verify --coverage``).

Every theorem of the registry runs on a few instances (its residual only, no negative control) while
recording wrappers note the calls made to the public functions of the numerical modules
(:data:`COVERED_PACKAGES`: every name in a public module's ``__all__`` that is a function defined in
pgexact). A function no theorem reaches is *uncovered*; it must be listed in :data:`ALLOWED_UNCOVERED`
with the reason, which a test enforces (and that every listed function is indeed uncovered, so the
list does not go stale).
"""

from __future__ import annotations

import inspect
import sys
from dataclasses import dataclass
from types import CodeType
from typing import Any, Callable, Iterable

import numpy as np

__all__: list[str] = []

#: Packages (and modules) whose public functions the theorems should reach; the adapters count when
#: their extra is installed (``pgexact._public.public_modules`` leaves them out otherwise), and
#: :func:`measure` then imports them (seconds of CPU: ``--coverage`` is not the default run).
COVERED_PACKAGES: tuple[str, ...] = (
    "pgexact.exact", "pgexact.estimators", "pgexact.updates", "pgexact.lqr", "pgexact.average",
    "pgexact.mdps", "pgexact.sampling", "pgexact.jax", "pgexact.torch",
)

#: Public functions no theorem reaches yet, each with the reason (what checks it instead, or why a
#: theorem cannot). Keys are the public names as printed by ``pgexact verify --coverage``.
ALLOWED_UNCOVERED: dict[str, str] = {
}


@dataclass(frozen=True)
class Coverage:
    """``reached[name]``: the ids of the theorems that called the public function ``name`` (possibly empty)."""

    reached: dict[str, tuple[str, ...]]

    @property
    def uncovered(self) -> list[str]:
        return [name for name, ids in self.reached.items() if not ids]


def _optional_names(module_name: str) -> list[str]:
    """``__all__`` of an optional adapter module read from its source (importing it would import torch or jax,
    seconds of CPU), or [] when its extra is not installed."""
    import ast
    import importlib.util

    from .._public import OPTIONAL

    if importlib.util.find_spec(OPTIONAL[module_name]) is None:
        return []
    spec = importlib.util.find_spec(module_name)
    tree = ast.parse(open(spec.origin, encoding="utf-8").read())
    for node in tree.body:
        if isinstance(node, (ast.Assign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            if any(isinstance(t, ast.Name) and t.id == "__all__" for t in targets):
                return [str(v) for v in ast.literal_eval(node.value)]
    return []


def public_functions(packages: Iterable[str] = COVERED_PACKAGES) -> dict[str, CodeType | None]:
    """Public name -> code object of every public function of the given packages (first public path wins,
    the shortest one: ``pgexact.exact.evaluate`` rather than ``pgexact.exact.evaluation.evaluate``).

    An optional adapter (``pgexact.jax``, ``pgexact.torch``) not imported yet is listed from its source with code
    None (unreached), when its extra is installed: importing it here would cost seconds (:func:`measure` imports
    the adapters first, unless told not to)."""
    import importlib
    import pkgutil

    import pgexact

    from .._public import OPTIONAL

    prefixes = tuple(packages)
    names = ["pgexact"] + [
        info.name for info in pkgutil.walk_packages(pgexact.__path__, "pgexact.")
        if not any(part.startswith("_") for part in info.name.split(".")[1:])
    ]
    names = sorted((n for n in names if any(n == p or n.startswith(p + ".") for p in prefixes)),
                   key=lambda n: (n.count("."), n))
    out: dict[str, CodeType | None] = {}
    seen: set[CodeType] = set()
    for module_name in names:
        if module_name in OPTIONAL and module_name not in sys.modules:
            out.update({f"{module_name}.{n}": None for n in _optional_names(module_name)})
            continue
        module = importlib.import_module(module_name)
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name, None)
            if not inspect.isfunction(obj):
                continue
            fn = inspect.unwrap(obj)
            if not getattr(fn, "__module__", "").startswith("pgexact") or fn.__code__ in seen:
                continue
            seen.add(fn.__code__)
            out[f"{module_name}.{name}"] = fn.__code__
    return out


def import_adapters() -> list[str]:
    """Import the optional adapters (``pgexact.torch``, ``pgexact.jax``) whose extra is installed, so that
    :func:`measure` can record the calls the adapter theorems make to them; returns their names."""
    import importlib
    import importlib.util

    from .._public import OPTIONAL

    out = []
    for module_name, extra in OPTIONAL.items():
        if importlib.util.find_spec(extra) is None:
            continue
        importlib.import_module(module_name)
        out.append(module_name)
    return out


def measure(theorems: list[Any], instances: int = 1, seed: int = 0,
            packages: Iterable[str] = COVERED_PACKAGES, adapters: bool = True) -> Coverage:
    """Run each theorem on ``instances`` instances (seeded as ``pgexact verify`` seeds them) while recording
    which public functions it calls. A theorem that raises simply stops contributing (``verify`` reports it).
    With ``adapters`` (the default), the adapters whose extra is installed are imported first
    (:func:`import_adapters`), so their functions are recorded too.

    Every global name, in every loaded pgexact module, bound to one of the public functions is rebound to
    a recording wrapper for the duration (so calls through ``from .evaluation import evaluate`` are seen,
    at the cost of one extra Python call per public call rather than a profile hook on every call), and
    restored afterwards.
    """
    from .registry import theorem_seed

    if adapters:
        import_adapters()
    functions = public_functions(packages)
    by_code = {code: name for name, code in functions.items() if code is not None}
    reached: dict[str, set[str]] = {name: set() for name in functions}
    current = [""]

    def recording(fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        seen = reached[name]

        def wrapper(*args: Any, **kwargs: Any) -> Any:
            seen.add(current[0])
            return fn(*args, **kwargs)

        wrapper.__wrapped__ = fn  # type: ignore[attr-defined]
        return wrapper

    patched: list[tuple[dict, str, Any]] = []
    wrappers: dict[int, Callable[..., Any]] = {}
    try:
        for module in [m for n, m in list(sys.modules.items()) if n.startswith("pgexact") and m is not None]:
            namespace = module.__dict__
            for attr, obj in list(namespace.items()):
                code = getattr(inspect.unwrap(obj), "__code__", None) if inspect.isfunction(obj) else None
                name = by_code.get(code) if code is not None else None
                if name is None:
                    continue
                if id(obj) not in wrappers:
                    wrappers[id(obj)] = recording(obj, name)
                patched.append((namespace, attr, obj))
                namespace[attr] = wrappers[id(obj)]
        for thm in theorems:
            current[0] = thm.id
            rng = np.random.default_rng(theorem_seed(seed, thm.id))
            try:
                for _ in range(instances):
                    thm.run(thm.instance(rng), False)
            except Exception:  # noqa: BLE001 - a failing theorem is verify's business, not coverage's
                pass
    finally:
        for namespace, attr, obj in patched:
            namespace[attr] = obj
    return Coverage({name: tuple(sorted(ids)) for name, ids in reached.items()})
