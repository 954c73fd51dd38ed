"""Every registered theorem carries negative controls, and each control is rejected (residual at least
CONTROL_FACTOR times the tolerance) on at least 90% of the instances: the registry's measured power.

The fast test uses 10 instances per theorem (at most one miss); the slow one 50. Both iterate the
registry, so theorems added later are held to the same standard.
"""

from __future__ import annotations

import pytest

from pgexact.cli import MIN_CONTROL_POWER, run_verify
from pgexact.theorems.registry import all_theorems


def test_every_theorem_has_a_reference_and_a_negative_control():
    missing = [t.id for t in all_theorems() if not t.controls or not t.reference.strip()]
    assert not missing, f"theorems without an independent reference or a negative control: {missing}"


def _check_power(instances: int, seed: int) -> None:
    rows = run_verify(instances, seed, None, progress=False, controls=True)
    weak = []
    for r in rows:
        assert r["passed"], (r["id"], r["max_residual"], r.get("error"))
        for name, power in (r["control_power"] or {}).items():
            if power < MIN_CONTROL_POWER:
                weak.append((r["id"], name, power))
    assert not weak, f"controls rejected on fewer than {MIN_CONTROL_POWER:.0%} of instances: {weak}"


def test_every_control_is_rejected_on_90_percent_of_instances():
    _check_power(10, 0)


@pytest.mark.slow
def test_every_control_is_rejected_on_90_percent_of_instances_thorough():
    _check_power(50, 1)
