"""The catalogue of plausible mistakes (``benchmarks/mistakes``) stays applicable to the code.

``benchmarks/plausible_mistakes.py`` measures how many written one-line mistakes `pgexact verify` and
the tests kill; it can only measure what still applies. Each entry replaces an exact text that must
occur once in its file, so a refactoring that moves or rewrites the line fails here, at once, rather
than leaving an entry that silently measures nothing.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def harness(monkeypatch):
    """``benchmarks/plausible_mistakes.py`` imported with ``benchmarks/`` on the path (as when it runs)."""
    monkeypatch.syspath_prepend(str(ROOT / "benchmarks"))
    for name in [n for n in sys.modules if n == "mistakes" or n.startswith("mistakes.")]:
        monkeypatch.delitem(sys.modules, name)
    return importlib.import_module("plausible_mistakes")


def test_every_mistake_applies_once_and_names_existing_tests(harness):
    found = harness.catalogue()  # raises SystemExit naming the entry whose text is missing or repeated
    assert len(found) >= 100
    for m in found:
        assert m.path.startswith("pgexact/"), m.id
        assert m.why.strip(), m.id
        assert m.tests, f"{m.id}: names no test file"
        for t in m.tests:
            assert (ROOT / t.split("::")[0]).is_file(), f"{m.id}: test file {t} does not exist"


def test_a_mistake_whose_text_is_gone_is_reported(harness, monkeypatch):
    import mistakes

    stale = mistakes.Mistake("stale-entry", "pgexact/exact/evaluation.py", "this text is not in the file", "x", "why")
    module = type(sys)("mistakes.stale_area")
    module.MISTAKES = [stale]
    monkeypatch.setitem(sys.modules, "mistakes.stale_area", module)
    monkeypatch.setattr(harness.pkgutil, "iter_modules",
                        lambda path: [type("Info", (), {"name": "stale_area"})()])
    with pytest.raises(SystemExit, match="stale-entry.*occurs 0 times"):
        harness.catalogue()
