"""The sampled estimators term by term, the finite-horizon moments at gamma < 1, the discounted GAE
expectation and the geometric optimal baseline, each against its independent reference.

The references are those of the theorems ``estimators.pathwise_terms``,
``estimators.finite_horizon_moments``, ``estimators.gae_expected_discounted`` and
``baselines.optimal_state_baseline_geometric`` (loops over each episode's steps, enumeration of every
trajectory, a forward series, the minimizer of a quadratic); here they run on fixed seeds, with the
per-estimator residual named in the failure message, so that a mistake points at its estimator.
"""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import estimators as est
from pgexact.theorems import estimators_discounted as disc
from pgexact.theorems import estimators_pathwise as pw
from pgexact.theorems import moments_finite as mf
from pgexact.theorems.registry import relative_error

SEEDS = range(4)


@pytest.mark.parametrize("seed", SEEDS)
def test_each_estimator_term_is_its_definition_on_every_objective(seed):
    for batch in pw.pathwise_problem(np.random.default_rng(seed)):
        got, want = pw._library_terms(batch), pw._reference_terms(batch)
        for name in want:
            err = relative_error(got[name], want[name], 1.0)
            assert err <= 1e-12, (batch.trajs.objective, name, err)


@pytest.mark.parametrize("seed", SEEDS)
def test_finite_horizon_moments_are_the_enumerated_ones(seed):
    problems = mf.moments_problem(np.random.default_rng(100 + seed))
    got, want = mf._computed(problems), mf._enumerated(problems)
    labels = [(objective, name, what) for objective in ("finite", "truncated") for name in mf.ESTIMATORS
              for what in ("mean", "covariance")]
    for label, g, w in zip(labels, got, want):
        assert relative_error(g, w, 1.0) <= 1e-12, (label, relative_error(g, w, 1.0))


@pytest.mark.parametrize("seed", SEEDS)
def test_discounted_gae_expectation_is_the_forward_series(seed):
    pr = disc._problem(np.random.default_rng(200 + seed))
    A_bar, grad = disc._series(pr)
    pi = pr.policy.probs(pr.theta)
    assert relative_error(est.gae_expected_advantage(pr.mdp, pi, pr.V, pr.lam), A_bar, 1.0) <= 1e-12
    assert relative_error(est.gae_expected_gradient(pr.mdp, pr.policy, pr.theta, pr.V, pr.lam), grad, 1.0) <= 1e-12


@pytest.mark.parametrize("seed", range(2))
def test_geometric_optimal_state_baseline_minimizes_the_second_moment(seed):
    pr = disc._problem(np.random.default_rng(300 + seed), min_states=2)
    state = est.optimal_baselines(pr.mdp, pr.policy, pr.theta).state
    assert relative_error(state, disc._quadratic_minimizer(pr), 1.0) <= 2e-9


@pytest.mark.parametrize("seed", SEEDS)
def test_gae_with_time_limits_sums_each_episode_on_its_own(seed):
    a = pw._time_limit_arrays(np.random.default_rng(400 + seed))
    got = est.gae(a.rewards, a.values, a.gamma, a.lam, terminated=a.terminated, truncated=a.truncated,
                  bootstrap=a.bootstrap)
    assert relative_error(got, pw._gae_by_episode(a), 1.0) <= 1e-12
