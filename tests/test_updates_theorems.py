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
    """On the multi-step family the TV bound holds with ratio exactly 1/(1 + gamma kappa) >= 0.91, kappa =
    alpha/(1-gamma) (the family's closed form, see _multistep_binding_problem), so a (1-gamma)^-1 bound fails;
    on the one-step family the KL bound holds with 0.25..0.5 of the TV ratio (1-gamma)^2 (Pinsker's factor 2
    and the curvature of KL at alpha <= 0.4)."""
    rng = np.random.default_rng(0)
    tv, kl = _REGISTRY["updates.trpo_lower_bound_tv"], _REGISTRY["updates.trpo_lower_bound_kl"]
    for _ in range(10):
        pr = upd._multistep_binding_problem(rng)
        ratio_tv = upd._bound_gap(pr) / upd._tv_penalty(pr)
        gamma, kappa = pr.mdp.gamma, upd._tv_max(pr) / (1 - pr.mdp.gamma)
        # pi's leaving probability 1e-12 (the closed form takes 0) moves the ratio by ~1e-12 / alpha^2 <= 1e-7
        assert abs(ratio_tv - 1 / (1 + gamma * kappa)) < 1e-7
        assert ratio_tv > 0.9 and upd._bound_gap(pr) > upd._tv_penalty(pr, power=1.0)
        pr = upd._binding_problem(rng)
        ratio_tv = upd._bound_gap(pr) / upd._tv_penalty(pr)
        assert abs(ratio_tv - (1 - pr.mdp.gamma) ** 2) < 1e-9
        ratio_kl = upd._bound_gap(pr) / (upd._bound_constant(pr) * upd._kl_max(pr))
        assert 0.25 * ratio_tv <= ratio_kl <= 0.5 * ratio_tv
    for _ in range(5):
        inst = tv.instance(rng)
        assert tv.outcome(inst).ratio > 0.9 and kl.outcome(kl.instance(rng)).ratio > 0.25


def test_trpo_accepted_kl_comes_close_to_the_radius():
    rng = np.random.default_rng(1)
    th = _REGISTRY["updates.trpo_step_feasible"]
    ratios = [th.outcome(th.instance(rng)).ratio for _ in range(10)]
    assert max(ratios) > 0.9  # the full step is accepted with KL close to delta on some instances
