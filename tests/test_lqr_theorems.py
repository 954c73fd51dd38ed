"""The LQR theorems of the registry hold on random instances (hypothesis seeds), and the checks
are sharp enough to catch plausible mistakes."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pgexact.theorems.lqr as lqr_theorems  # noqa: F401  (registers the theorems)
import pgexact.theorems.lqr.natural  # noqa: F401  (registered through THEOREM_MODULES; imported here to run alone)
import pgexact.theorems.lqr.newton  # noqa: F401
import pgexact.theorems.lqr.sampled  # noqa: F401
import pgexact.theorems.lqr.soft_step  # noqa: F401
import pgexact.theorems.lqr.values  # noqa: F401
from pgexact.lqr import cost_gradient, evaluate
from pgexact.theorems.lqr import FD_TOL, _J, central_difference, random_problem
from pgexact.theorems.registry import _REGISTRY, CONTROL_FACTOR, relative_error

LQR_IDS = [
    "lqr.gradient_formula",
    "lqr.noise_gradient",
    "lqr.riccati",
    "lqr.deterministic_pg",
    "lqr.stochastic_pg",
    "lqr.gauss_newton_convergence",
    "lqr.npg_contraction",
    "lqr.cost_duality",
    "lqr.gradient_domination",
    "lqr.smoothness",
    "lqr.soft_optimal_policy",
    "lqr.soft_value",
    "lqr.soft_policy_iteration",
    "lqr.ddpg_bias",
    "lqr.ddpg_gradient",
    "lqr.cost_gradient",
    "lqr.soft_evaluate",
    "lqr.fisher_score_outer",
    "lqr.fisher_fixed_noise",
    "lqr.natural_gradient_solves",
    "lqr.hessian_vector_product",
    "lqr.policy_hessian",
    "lqr.newton_direction",
    "lqr.soft_policy_improvement",
    "lqr.values_primal",
    "lqr.soft_values",
    "lqr.riccati_cost",
]
#: Statistical LQR theorems (Monte Carlo, ~0.1 s an instance): checked in tests/test_theorems_lqr_coverage.py and
#: by the registry-wide control test, not at 20 + 12 instances each here.
LQR_STATISTICAL_IDS = ["lqr.rollout_law", "lqr.score_function_estimators", "lqr.dpg_estimator"]


def test_registered():
    for tid in LQR_IDS:
        th = _REGISTRY[tid]
        assert th.tolerance > 0 and th.tolerance_reason and th.source and th.reference and th.controls
    assert sorted(t for t in _REGISTRY if t.startswith("lqr.")) == sorted(LQR_IDS + LQR_STATISTICAL_IDS)


@pytest.mark.parametrize("tid", LQR_IDS)
def test_controls_are_rejected_on_90_percent(tid):
    """Every negative control's residual is >= CONTROL_FACTOR x tolerance on >= 90% of 20 instances
    (deterministic seed), while the theorem itself holds on all of them."""
    th = _REGISTRY[tid]
    rng = np.random.default_rng(12345)
    insts = [th.instance(rng) for _ in range(20)]
    for inst in insts:
        assert th.outcome(inst).residual <= th.tolerance
    for c in th.controls:
        rejected = sum(c.residual(inst) >= CONTROL_FACTOR * th.tolerance for inst in insts)
        assert rejected >= 18, (tid, c.name, rejected)


@pytest.mark.parametrize("tid", ["lqr.npg_contraction", "lqr.gradient_domination", "lqr.smoothness"])
def test_inequalities_nearly_bind(tid):
    """The constants are checked where they matter: the tightest ratio lhs/rhs over 20 instances
    exceeds 0.99 (observed 0.9999 for the NPG rate, 1.0000 for gradient domination)."""
    th = _REGISTRY[tid]
    rng = np.random.default_rng(7)
    ratios = [th.outcome(th.instance(rng)).ratio for _ in range(20)]
    assert 0.99 < max(ratios) <= 1 + 1e-9


@pytest.mark.parametrize("tid", LQR_IDS)
@settings(max_examples=12, deadline=None)
@given(seed=st.integers(0, 2**32 - 1))
def test_theorem_holds(tid, seed):
    th = _REGISTRY[tid]
    res = th.check(np.random.default_rng(seed))
    assert res <= th.tolerance, f"{tid}: residual {res:.3g} > {th.tolerance:g}"


def test_gradient_check_is_sharp():
    """Plausible wrong gradients (process/policy noise left out of Sigma_K; discount left out of
    E_K) fail the central-difference check by orders of magnitude more than its tolerance."""
    p = random_problem(np.random.default_rng(2), n=3, m=2, noise=True, stochastic=True, gamma=0.8)
    lqr, K, Su = p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta)
    fd = central_difference(_J(p), p.theta)
    floor = 1e-3 * evaluate(lqr, K, Su).cost
    good = -cost_gradient(lqr, K, Su).reshape(-1)
    assert relative_error(good, fd, floor=floor) < FD_TOL
    quiet = type(lqr)(lqr.A, lqr.B, lqr.Q, lqr.R, Sigma0=lqr.Sigma0, gamma=lqr.gamma)  # W = 0
    wrong_noise = -cost_gradient(quiet, K).reshape(-1)  # and Su = 0
    assert relative_error(wrong_noise, fd, floor=floor) > 1e3 * FD_TOL
    ev = evaluate(lqr, K, Su)
    EK_undiscounted = (lqr.R + lqr.B.T @ ev.P @ lqr.B) @ K - lqr.B.T @ ev.P @ lqr.A
    wrong_gamma = -(2 * EK_undiscounted @ ev.Sigma).reshape(-1)
    assert relative_error(wrong_gamma, fd, floor=floor) > 1e3 * FD_TOL
