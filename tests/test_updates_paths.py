"""Code paths of the update rules that random discounted instances miss: CG's stopping rule, finite horizons,
action masks, the sampled oracle, minibatch and penalty gradients, the Newton model, the NPG rate bound."""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import ExactSource, FiniteMDP, TabularSoftmax
from pgexact.mdps import random_mdp
from pgexact.theorems import convergence as C
from pgexact.theorems import updates_cg
from pgexact.theorems.registry import CONTROL_FACTOR, get
from pgexact.updates import kl_and_gradient, soft_evaluate, soft_policy_iteration, trpo_step

THEOREMS = [
    "updates.trpo_cg_stopping_rule",
    "updates.finite_horizon_surrogate_kl",
    "planning.backward_induction",
    "updates.masked_control",
    "updates.sampled_oracle_gradient_fisher",
    "updates.cubic_newton_hard_case",
    "updates.newton_step",
    "updates.ppo_minibatch_ascent",
    "updates.ppo_kl_adaptive",
    "updates.ppo_dual_step",
    "updates.sampled_surrogate_and_kl",
]


@pytest.mark.parametrize("theorem_id", THEOREMS)
def test_theorem_holds_and_its_controls_are_rejected(theorem_id: str) -> None:
    thm = get(theorem_id)
    rng = np.random.default_rng(11)
    insts = [thm.instance(rng) for _ in range(20)]
    results = [thm.run(i, True) for i in insts]
    assert max(out.residual for out, _ in results) <= thm.tolerance
    for j, control in enumerate(thm.controls):
        power = np.mean([ctrl[j] >= CONTROL_FACTOR * thm.tolerance for _, ctrl in results])
        assert power >= 0.8, control.name


def _dense_fisher_and_gradient(mdp: FiniteMDP, pol: TabularSoftmax, theta: np.ndarray):
    return updates_cg._operator_and_gradient(updates_cg.CGProblem(mdp, pol, theta, 1, 0.0))


@pytest.mark.parametrize("rtol", [1e-1, 1e-2, 1e-3])
def test_cg_direction_meets_its_stated_tolerance_and_no_more_iterations_than_needed(rtol: float) -> None:
    rng = np.random.default_rng(3)
    for _ in range(10):
        mdp = random_mdp(4, 3, gamma=0.9, seed=rng)
        pol = TabularSoftmax(4, 3)
        theta = rng.standard_normal(12)
        res = trpo_step(ExactSource(mdp, pol), theta, 1e-3, cg_rtol=rtol)
        F, g = _dense_fisher_and_gradient(mdp, pol, theta)
        assert np.linalg.norm(F @ res.direction - g) <= rtol * np.linalg.norm(g) * (1 + 1e-9)
        if res.cg_iterations > 1:  # one iteration fewer would not have met the tolerance
            fewer = trpo_step(ExactSource(mdp, pol), theta, 1e-3, cg_rtol=rtol, cg_iters=res.cg_iterations - 1)
            assert np.linalg.norm(F @ fewer.direction - g) > rtol * np.linalg.norm(g)


@pytest.mark.parametrize("budget", [1, 2, 3])
def test_cg_uses_its_whole_iteration_budget(budget: int) -> None:
    rng = np.random.default_rng(4)
    mdp = random_mdp(5, 3, gamma=0.9, seed=rng)
    res = trpo_step(ExactSource(mdp, TabularSoftmax(5, 3)), rng.standard_normal(15), 1e-3, cg_rtol=1e-12,
                    cg_iters=budget)
    assert res.cg_iterations == budget


def test_kl_gradient_agrees_with_central_differences_of_its_value() -> None:
    rng = np.random.default_rng(5)
    mdp = random_mdp(3, 3, gamma=0.8, seed=rng)
    pol = TabularSoftmax(3, 3)
    theta = rng.standard_normal(9)
    oracle = ExactSource(mdp, pol).at(theta)
    new = theta + 0.5 * rng.standard_normal(9)
    _, grad = kl_and_gradient(pol, oracle.batch, new, oracle.pi)
    h = 1e-6
    fd = np.array([(kl_and_gradient(pol, oracle.batch, new + h * e, oracle.pi)[0]
                    - kl_and_gradient(pol, oracle.batch, new - h * e, oracle.pi)[0]) / (2 * h) for e in np.eye(9)])
    assert np.allclose(grad, fd, rtol=0, atol=1e-8)  # central differences: O(h^2) + rounding/h ~ 1e-10


def test_masked_soft_policy_iteration_is_the_masked_softmax_of_its_soft_q() -> None:
    rng = np.random.default_rng(6)
    base = random_mdp(3, 4, gamma=0.7, seed=rng)
    mask = np.array([[True, True, False, True], [False, True, True, False], [True, False, True, True]])
    mdp = FiniteMDP(np.asarray(base.P), np.asarray(base.r), np.asarray(base.mu0), 0.7, action_mask=mask)
    alpha = 0.4
    pi = soft_policy_iteration(mdp, alpha).policy
    assert np.all(pi[~mask] == 0.0)
    Q = soft_evaluate(mdp, pi, alpha).Q
    z = np.where(mask, Q / alpha, -np.inf)
    expected = np.exp(z - z.max(axis=1, keepdims=True))
    expected /= expected.sum(axis=1, keepdims=True)
    assert np.allclose(pi, expected, rtol=0, atol=1e-10)


def test_npg_bound_is_agarwal_et_al_theorem_16() -> None:
    run = C.NPGRun(np.zeros(3), np.arange(1, 4), eta=0.5, n_actions=3, gamma=0.75)
    # log|A| / (eta T) + 1 / ((1 - gamma)^2 T)
    assert np.allclose(C.npg_bound(run), (np.log(3) / 0.5 + 16.0) / np.arange(1, 4), rtol=1e-15, atol=0)
