"""The issue-5 entries of the theorem registry hold on random instances, and are not vacuous."""

from __future__ import annotations

import numpy as np
import pytest

import pgexact.theorems.updates as upd
from pgexact import exact
from pgexact.theorems.registry import _REGISTRY

IDS = [
    "updates.npg_tabular_closed_form",
    "updates.npg_quadratic_kl",
    "updates.trpo_lower_bound_tv",
    "updates.trpo_lower_bound_kl",
    "updates.trpo_step_feasible",
    "updates.ppo_clip_below_surrogate",
    "updates.ppo_clip_gradient_at_old",
    "updates.soft_policy_improvement",
    "updates.soft_optimal_fixed_point",
    "updates.policy_iteration_monotone",
]


def test_all_update_theorems_are_registered():
    assert set(IDS) <= set(_REGISTRY)
    for tid in IDS:
        th = _REGISTRY[tid]
        assert th.statement and th.source and th.tolerance > 0 and th.tolerance_reason


@pytest.mark.parametrize("tid", IDS)
def test_update_theorem_holds_on_random_instances(tid):
    th = _REGISTRY[tid]
    rng = np.random.default_rng(20261121)
    residuals = [th.check(rng) for _ in range(25)]
    assert max(residuals) <= th.tolerance, (tid, max(residuals))


def test_trpo_bound_check_has_teeth():
    """With the constant 4 eps gamma/(1-gamma)^2 divided by 100 the bound is false on some of
    these instances, so the residual function can detect a wrong constant."""
    rng = np.random.default_rng(0)
    violated = 0
    for _ in range(100):
        pr = upd._problem(rng)
        J_new, L, C, p, q = upd._bound_terms(pr)
        violated += (L - C / 100 * exact.tv_max(p, q) ** 2 - J_new) > 1e-9 * upd._scale(pr.mdp)
    assert violated > 0
