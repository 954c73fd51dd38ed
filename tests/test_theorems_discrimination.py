"""Every inequality of the registry discriminates: its bound, tightened by a factor 2, fails on at least one
of the instances `pgexact verify` runs by default, unless the theorem states (``loose_reason``) why no
instance can bring it that close.

The discrimination of an inequality is the largest factor by which its bound can be tightened with no
instance failing, ``1 / max(lhs / rhs)`` (1.0 = binding); `pgexact verify` reports it (table column and
``discrimination`` in ``--json``).
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from pgexact.cli import DEFAULT_INSTANCES, run_verify
from pgexact.theorems.registry import _inequality_outcome, all_theorems, discrimination, inequality

INEQUALITIES = [t for t in all_theorems() if t.kind == "inequality"]


def test_discrimination_is_the_inverse_of_the_tightest_ratio():
    assert discrimination(1.0) == 1.0
    assert discrimination(0.25) == 4.0
    assert discrimination(0.0) == math.inf
    assert discrimination(None) is None


def test_discrimination_refuses_what_is_not_a_ratio():
    with pytest.raises(TypeError, match="tightest_ratio must be a real number or None"):
        discrimination("x")
    with pytest.raises(ValueError, match="tightest_ratio must be >= 0"):
        discrimination(-0.5)
    with pytest.raises(ValueError, match="tightest_ratio must be >= 0"):
        discrimination(float("nan"))
    assert discrimination(math.inf) == 0.0


def test_a_bound_tightened_by_its_discrimination_still_holds_and_no_further():
    lhs, rhs = np.array([0.2, 0.5, 0.1]), np.array([1.0, 1.0, 1.0])
    f = discrimination(_inequality_outcome(lhs, rhs, 1e-12).ratio)
    assert f == pytest.approx(2.0)
    assert _inequality_outcome(lhs, rhs / (0.999 * f), 1e-12).residual == 0.0
    assert _inequality_outcome(lhs, rhs / (1.001 * f), 1e-12).residual > 0.0


def test_loose_reason_must_be_a_string():
    with pytest.raises(TypeError, match="loose_reason must be a string"):
        inequality(id="x.loose", statement="s", source="s", reference="r", instance=lambda rng: 0,
                   lhs=lambda i: 0.0, rhs=lambda i: 1.0, tolerance=1e-9, tolerance_reason="r",
                   mutants={"m": (None, lambda i: -1.0)}, loose_reason=None)


@pytest.fixture(scope="module")
def rows():
    ids = [t.id for t in INEQUALITIES]
    return {r["id"]: r for r in run_verify(DEFAULT_INSTANCES, 0, None, progress=False, ids=ids)}


@pytest.mark.parametrize("theorem", INEQUALITIES, ids=lambda t: t.id)
def test_every_inequality_rejects_its_bound_tightened_2x_or_says_why(theorem, rows):
    row = rows[theorem.id]
    assert row["passed"], (theorem.id, row["max_residual"], row.get("error"))
    if theorem.loose_reason:
        assert len(theorem.loose_reason) > 40, f"{theorem.id}: the reason must say why, not just that, it is loose"
        return
    assert row["discrimination"] is not None, f"{theorem.id}: signed sides (no ratio) need a loose_reason"
    assert row["discrimination"] < 2.0, (
        f"{theorem.id}: the bound tightened by 2 still holds on all {row['instances']} default instances "
        f"(discrimination {row['discrimination']:.3g}); find instances where it nearly binds, or state why none exist"
    )
