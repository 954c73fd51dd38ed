"""The update entries of the theorem registry hold on random instances, bind where they should, and are
not vacuous (their negative controls are rejected)."""

from __future__ import annotations

import numpy as np
import pytest

import pgexact.theorems.updates as upd
from pgexact.theorems.registry import CONTROL_FACTOR, _REGISTRY, all_theorems

IDS = [
    "updates.npg_tabular_closed_form",
    "updates.npg_quadratic_kl",
    "updates.trpo_full_step",
    "updates.trpo_lower_bound_tv",
    "updates.trpo_lower_bound_kl",
    "updates.trpo_step_feasible",
    "updates.ppo_clipped_objective_value",
    "updates.ppo_clip_gradient",
    "updates.soft_policy_improvement",
    "updates.soft_optimal_fixed_point",
    "updates.policy_iteration_monotone",
]


def test_all_update_theorems_are_registered():
    all_theorems()
    assert set(IDS) <= set(_REGISTRY)
    for tid in IDS:
        th = _REGISTRY[tid]
        assert th.statement and th.source and th.tolerance > 0 and th.tolerance_reason and th.reference
        assert th.controls


@pytest.mark.parametrize("tid", IDS)
def test_update_theorem_holds_and_its_controls_fail(tid):
    th = _REGISTRY[tid]
    rng = np.random.default_rng(20261121)
    outcomes = [th.run(th.instance(rng), True) for _ in range(8)]
    assert max(o.residual for o, _ in outcomes) <= th.tolerance, tid
    for k, control in enumerate(th.controls):
        rejected = sum(c[k] >= CONTROL_FACTOR * th.tolerance for _, c in outcomes)
        assert rejected >= 7, (tid, control.name, rejected)


def test_trpo_bounds_nearly_bind():
    """On the binding family the TV bound holds with ratio exactly (1-gamma)^2 >= 0.81 (the family's
    closed form, see _binding_problem) and the KL bound with 0.25..0.5 of it (Pinsker's factor 2 and the
    curvature of KL at alpha <= 0.4): a constant 2x smaller would fail."""
    rng = np.random.default_rng(0)
    tv, kl = _REGISTRY["updates.trpo_lower_bound_tv"], _REGISTRY["updates.trpo_lower_bound_kl"]
    for _ in range(10):
        pr = upd._binding_problem(rng)
        ratio_tv = tv.outcome(pr).ratio
        assert abs(ratio_tv - (1 - pr.mdp.gamma) ** 2) < 1e-9
        assert 0.25 <= kl.outcome(pr).ratio <= 0.5


def test_trpo_accepted_kl_comes_close_to_the_radius():
    rng = np.random.default_rng(1)
    th = _REGISTRY["updates.trpo_step_feasible"]
    ratios = [th.outcome(th.instance(rng)).ratio for _ in range(10)]
    assert max(ratios) > 0.9  # the full step is accepted with KL close to delta on some instances
