"""Every public numerical function is reached by a theorem of the registry, or listed with its reason.

``pgexact verify --coverage`` traces the calls each theorem makes (one instance each) to the public
functions of the numerical modules; a function no theorem reaches must be in
``pgexact.theorems._coverage.ALLOWED_UNCOVERED`` with a reason, and every function listed there must
really be uncovered (the list does not go stale).
"""

from __future__ import annotations

import pytest

from pgexact.cli import main
from pgexact.theorems import all_theorems
from pgexact.theorems._coverage import ALLOWED_UNCOVERED, measure, public_functions


@pytest.fixture(scope="module")
def coverage():
    return measure(all_theorems(), instances=1, seed=0)


def test_every_public_function_is_reached_or_has_a_stated_reason(coverage):
    missing = [n for n in coverage.uncovered if n not in ALLOWED_UNCOVERED]
    assert not missing, f"public functions no theorem reaches, without a reason in ALLOWED_UNCOVERED: {missing}"


def test_the_allow_list_is_not_stale(coverage):
    stale = [n for n in ALLOWED_UNCOVERED if coverage.reached.get(n)]
    assert not stale, f"listed as uncovered but reached by a theorem: {stale}"
    unknown = [n for n in ALLOWED_UNCOVERED if n not in coverage.reached]
    assert not unknown, f"listed as uncovered but not a public function (renamed or moved?): {unknown}"
    for name, reason in ALLOWED_UNCOVERED.items():
        assert len(reason) > 30, f"{name}: state why, not just that"


def test_the_tracer_sees_calls_made_through_internal_imports():
    # pgexact.exact.evaluate is called by the library's own modules through `from .evaluation import evaluate`
    cov = measure([t for t in all_theorems() if t.id == "bellman.evaluation"], instances=1)
    assert "bellman.evaluation" in cov.reached["pgexact.exact.evaluate"]
    assert not cov.reached["pgexact.lqr.riccati"]
    assert "pgexact.exact.evaluate" in public_functions()


def test_cli_coverage_table(capsys):
    main(["verify", "--coverage", "--only", "pdl.*"])
    out = capsys.readouterr().out
    assert "pgexact.exact.performance_difference" in out and "pdl.discounted" in out
    assert "public functions reached by a theorem" in out
