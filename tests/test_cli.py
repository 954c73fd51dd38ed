"""The theorem registry and `pgexact verify`."""

import json

import numpy as np
import pytest

from pgexact.cli import main
from pgexact.theorems import Theorem, all_theorems, get, register


def test_every_registered_theorem_passes(capsys):
    assert main(["verify", "--instances", "3", "--seed", "1"]) == 0
    out = capsys.readouterr().out
    assert "theorem" in out and "max residual" in out and "0 failed" in out


def test_registry_entries_are_complete():
    theorems = all_theorems()
    assert len({t.id for t in theorems}) == len(theorems)
    for t in theorems:
        assert t.statement and t.source and t.tolerance_reason
        assert 0 < t.tolerance < 1


def test_verify_json_and_only(capsys):
    assert main(["verify", "--instances", "2", "--only", "pdl.*", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert {r["id"] for r in rows} == {"pdl.discounted", "pdl.finite_horizon"}
    assert all(r["passed"] and r["instances"] == 2 for r in rows)


def test_verify_unknown_theorem_lists_valid_ids():
    with pytest.raises(SystemExit, match="valid ids: .*pg.q_form"):
        main(["verify", "--only", "no.such.theorem"])
    with pytest.raises(KeyError, match="valid ids"):
        get("no.such.theorem")


def test_verify_reports_failure_with_exit_status_1(capsys):
    """A theorem whose residual exceeds its tolerance (or is NaN) makes verify exit 1."""
    bad = Theorem(
        id="zz_test.always_false",
        statement="1 = 2",
        source="test",
        instance=lambda rng: rng.random(),
        residual=lambda x: float("nan"),
        tolerance=1e-9,
        tolerance_reason="test",
    )
    from pgexact.theorems import registry

    register(bad)
    try:
        assert main(["verify", "--instances", "2", "--only", "zz_test.*"]) == 1
        assert "FAIL" in capsys.readouterr().out
    finally:
        del registry._REGISTRY[bad.id]


def test_verify_is_reproducible(capsys):
    main(["verify", "--instances", "2", "--only", "pg.central_difference", "--json"])
    first = json.loads(capsys.readouterr().out)[0]["max_residual"]
    main(["verify", "--instances", "2", "--only", "pg.central_difference", "--json"])
    assert json.loads(capsys.readouterr().out)[0]["max_residual"] == first
