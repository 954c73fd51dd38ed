"""Every pgexact name written in the README and the documentation pages resolves.

The README's code blocks run (``test_readme.py``), but its prose is read, not run: a name in prose
(``pgexact.gym.make_env``, ``FiniteMDP.something``, ``Evaluation.residual``) that no longer exists
sends a reader to nothing. This test collects, from the prose and the code of every page the
documentation site shows (README.md, DESIGN.md and REFERENCES.md, which docs/ includes, the pages
under docs/ and the tutorials' headers), every

- dotted name starting with ``pgexact.`` (a module path followed by attributes), and
- ``Class.attribute`` where ``Class`` is a class exported by a public module's ``__all__``,

and checks that it resolves: the longest importable module prefix, then ``getattr`` along the
rest (a dataclass field counts as an attribute of its class). CHANGELOG.md is left out on purpose:
it names what was removed or renamed.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.util
import inspect
import re
from pathlib import Path
from typing import Any

import pytest

import pgexact
from pgexact._public import public_modules

ROOT = Path(__file__).resolve().parents[1]
PAGES = (
    [ROOT / "README.md", ROOT / "DESIGN.md", ROOT / "REFERENCES.md"]
    + sorted((ROOT / "docs").glob("*.md"))
    + sorted((ROOT / "docs").glob("*.rst"))
    + sorted((ROOT / "examples").rglob("*.rst"))
    + sorted((ROOT / "examples").rglob("*.py"))
)
#: ``pgexact.a.b`` not preceded by a word character, a dot, a slash or a hyphen (a path or a URL).
PGEXACT_NAME = re.compile(r"(?<![\w./-])pgexact(?:\.[A-Za-z_]\w*)+")
CLASS_NAME = re.compile(r"(?<![\w.])([A-Z]\w*)((?:\.[A-Za-z_]\w*)+)")


def public_classes() -> dict[str, type]:
    """``name -> class`` for every class in a public module's ``__all__`` (first one wins)."""
    out: dict[str, type] = {}
    for module in public_modules():
        for name in getattr(module, "__all__", ()):
            obj = getattr(module, name)
            if inspect.isclass(obj):
                out.setdefault(name, obj)
    return out


CLASSES = public_classes()


def names_in(text: str) -> list[str]:
    """The pgexact dotted names and ``PublicClass.attr`` names written in ``text``."""
    found = PGEXACT_NAME.findall(text)
    found += [m.group(0) for m in CLASS_NAME.finditer(text) if m.group(1) in CLASSES]
    return found


def _has(obj: Any, attribute: str) -> bool:
    if hasattr(obj, attribute):
        return True
    return inspect.isclass(obj) and dataclasses.is_dataclass(obj) and any(
        f.name == attribute for f in dataclasses.fields(obj))


def resolves(name: str) -> bool:
    """Whether ``name`` names a module or an attribute that exists."""
    parts = name.split(".")
    if parts[0] in CLASSES:
        obj: Any = CLASSES[parts[0]]
        rest = parts[1:]
    else:
        for i in range(len(parts), 0, -1):
            try:
                obj = importlib.import_module(".".join(parts[:i]))
            except ImportError:
                continue
            rest = parts[i:]
            break
        else:
            return False
    for attribute in rest:
        if not _has(obj, attribute):
            return False
        obj = getattr(obj, attribute, None)
    return True


def occurrences() -> dict[str, list[str]]:
    """``name -> ["README.md:252", ...]`` over every page."""
    out: dict[str, list[str]] = {}
    for page in PAGES:
        for number, line in enumerate(page.read_text(encoding="utf-8").splitlines(), 1):
            for name in names_in(line):
                out.setdefault(name, []).append(f"{page.relative_to(ROOT)}:{number}")
    return out


def test_pages_name_pgexact_things() -> None:
    # the scan reads what it should: the README alone names dozens of pgexact modules and functions
    found = occurrences()
    assert sum(1 for name in found if name.startswith("pgexact.")) >= 25
    assert "pgexact.gym.make_env" in found and "Evaluation.residual" in found


@pytest.mark.parametrize("name", ["pgexact.nope", "pgexact.mdps.no_such_builder",
                                  "FiniteMDP.from_gymnasium", "Evaluation.no_such_field",
                                  "pgexact.gym.from_gymnasium.nope"])
def test_resolver_rejects_missing_names(name: str) -> None:
    assert not resolves(name)


@pytest.mark.parametrize("name", ["pgexact.gym.from_gymnasium", "pgexact.errors.NumericalError",
                                  "FiniteMDP.n_states", "Evaluation.residual", "pgexact.lqr"])
def test_resolver_accepts_real_names(name: str) -> None:
    assert resolves(name)


def test_every_name_in_the_pages_resolves() -> None:
    if importlib.util.find_spec("gymnasium") is None:  # pgexact.gym needs the gym extra
        pytest.skip("gymnasium is not installed")
    missing = {name: where for name, where in occurrences().items() if not resolves(name)}
    assert not missing, "names in the documentation that do not exist: " + "; ".join(
        f"{name} ({', '.join(where)})" for name, where in sorted(missing.items()))


def test_finite_mdp_is_a_public_class() -> None:
    # the README's prose speaks of FiniteMDP.<attribute>; the scan must recognise it as a class
    assert CLASSES["FiniteMDP"] is pgexact.FiniteMDP
