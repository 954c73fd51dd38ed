"""Write the API reference: one page per public module, one entry per name in its ``__all__``.

Every object is documented once, in its *home* module (the public module that defines it, or the
deepest public module that exports it); other modules that re-export it link there. The list of
modules is walked from the package, so a new public module or name appears without editing this.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

from pgexact._public import public_modules


def _home(obj: Any, exporters: list[str]) -> str:
    defining = getattr(obj, "__module__", None)
    if defining in exporters:
        return defining
    if defining:
        parents = [m for m in exporters if defining.startswith(m + ".")]
        if parents:
            return max(parents, key=len)
    return max(exporters, key=lambda m: m.count("."))


def _directive(obj: Any) -> str | None:
    if inspect.isclass(obj):
        return "autoclass"
    if callable(obj):
        return "autofunction"
    if inspect.ismodule(obj):
        return None
    return "autodata"


def write_api_pages(out: Path) -> None:
    modules = [m for m in public_modules() if hasattr(m, "__all__")]
    exporters: dict[int, list[str]] = {}
    objects: dict[int, Any] = {}
    for module in modules:
        for name in module.__all__:
            obj = getattr(module, name)
            if inspect.ismodule(obj):
                continue
            key = id(obj) if (callable(obj) or inspect.isclass(obj)) else id((module.__name__, name))
            exporters.setdefault(key, []).append(module.__name__)
            objects[key] = obj
    out.mkdir(parents=True, exist_ok=True)
    index = ["API reference", "=============", "",
             "One page per public module; each name of a module's ``__all__`` is documented in the",
             "module that defines it and linked from the modules that re-export it.", "",
             ".. toctree::", "   :maxdepth: 1", ""]
    for module in modules:
        name = module.__name__
        index.append(f"   {name}")
        lines = [name, "=" * len(name), "", f".. automodule:: {name}", "   :no-members:", ""]
        reexported = []
        for attr in module.__all__:
            obj = getattr(module, attr)
            if inspect.ismodule(obj):
                reexported.append(f"- :mod:`{obj.__name__}` (module)")
                continue
            key = id(obj) if (callable(obj) or inspect.isclass(obj)) else id((name, attr))
            home = _home(obj, exporters[key])
            if home != name:
                reexported.append(f"- ``{attr}``: see :py:obj:`{home}.{attr}`")
                continue
            directive = _directive(obj)
            lines.append(f".. {directive}:: {name}.{attr}")
            lines += ["   :members:", ""] if directive == "autoclass" else [""]
        if reexported:
            lines += ["Also available here", "-------------------", ""] + reexported + [""]
        (out / f"{name}.rst").write_text("\n".join(lines) + "\n")
    (out / "index.rst").write_text("\n".join(index) + "\n")
