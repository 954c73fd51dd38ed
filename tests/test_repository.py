"""The repository stands alone and carries no development history."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = [p for d in ("pgexact", "tests", "benchmarks", "examples", "docs") for p in (ROOT / d).rglob("*.py")]
TEXTS = [ROOT / n for n in ("README.md", "DESIGN.md", "REFERENCES.md", "CHANGELOG.md")]


def test_no_issue_numbers_in_code_or_comments() -> None:
    pattern = re.compile(r"\bissue\s+#?\d+", re.I)
    hits = [f"{p.relative_to(ROOT)}:{i + 1}" for p in SOURCES
            for i, line in enumerate(p.read_text(encoding="utf-8").splitlines()) if pattern.search(line)]
    assert not hits, f"development history in code: {hits}"


def test_nothing_points_outside_the_repository() -> None:
    # the two tests that search for such paths name them
    pattern = re.compile(r"shared/seeds|\.\./shared|seeds/\d{3}_")
    hits = [str(p.relative_to(ROOT)) for p in SOURCES + TEXTS
            if p.name not in ("test_repository.py", "test_errata.py") and pattern.search(p.read_text(encoding="utf-8"))]
    assert not hits, f"paths outside the repository: {hits}"
