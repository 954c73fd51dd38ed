"""The registry's references are independent of the code they check: a small error planted in the library's
value is rejected by the theorem on (nearly) every instance, where a reference built on the library's own
value would pass it."""

from __future__ import annotations

import numpy as np

from pgexact.cli import _theorem_seed
from pgexact.theorems import get
from pgexact.theorems import baselines as B
from pgexact.theorems.registry import CONTROL_FACTOR


def _caught(theorem_id: str, lhs, rhs, n: int = 40) -> int:
    thm = get(theorem_id)
    rng = np.random.default_rng(_theorem_seed(0, theorem_id))
    caught = 0
    for _ in range(n):
        pr = thm.instance(rng)
        left, right = lhs(pr), rhs(pr)
        caught += (left - right) / max(right, B.FLOOR) >= CONTROL_FACTOR * thm.tolerance
    return caught


def test_a_5_percent_error_in_the_optimal_baselines_is_caught():
    # the competitors minimize the enumerated variance independently (least squares over the trajectories)
    assert _caught("baselines.optimal_state_baseline", lambda pr: B._var_state(pr, 1.05 * pr.opt.state[pr.k]),
                   B._state_competitors) >= 39
    assert _caught("baselines.optimal_constant_baseline", lambda pr: B._var_const(pr, 1.05 * pr.opt.constant[pr.k]),
                   B._const_competitors) >= 39


def test_enumerated_variance_agrees_with_the_moment_recursion():
    # two independent routes to the same variance (the theorem uses only the first)
    from pgexact.estimators import estimator_moments

    thm = get("baselines.optimal_state_baseline")
    rng = np.random.default_rng(5)
    for _ in range(5):
        pr = thm.instance(rng)
        b = pr.opt.state[pr.k]
        rec = estimator_moments(pr.mdp, pr.policy, pr.theta, "state_baseline", b=b).covariance[pr.k, pr.k]
        assert abs(B._var_state(pr, b) - rec) <= 1e-12 * max(1.0, abs(rec))
