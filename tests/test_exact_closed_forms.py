"""Closed forms of the exact core checked against defining identities and values computed by hand: the
stationary distribution, the finite-horizon natural gradient, the gradient of the expected KL, the surrogate and
its gradient, and rewards given per transition r(s, a, s')."""

import numpy as np
import pytest

import pgexact as pg
from pgexact import exact
from pgexact.mdps import random_mdp
from pgexact.models.finite_mdp import FiniteMDP


def _problems(horizon, linear, n=6):
    """Random (mdp, policy, theta): S in 2..5, A in 2..3, gamma 0.9 (finite) or 0.3..0.95 (discounted)."""
    rng = np.random.default_rng(17 + (horizon or 0) + 100 * linear)
    for _ in range(n):
        S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
        gamma = 0.9 if horizon else float(rng.uniform(0.3, 0.95))
        mdp = random_mdp(S, A, gamma=gamma, horizon=horizon, seed=rng)
        policy = pg.LinearSoftmax(rng.standard_normal((S, A, 3))) if linear else pg.TabularSoftmax(S, A)
        yield mdp, policy, rng.standard_normal(policy.n_params)


def _central(f, x, v, h=1e-5):
    """Central difference of a real function along v: error O(h^2 f''') + O(eps |f| / h) ~ 1e-10 here."""
    return (f(x + h * v) - f(x - h * v)) / (2 * h)


def test_stationary_distribution_is_a_left_eigenvector_and_not_uniform():
    for mdp, policy, theta in _problems(None, False):
        pi = policy.probs(theta)
        nu = pg.stationary_distribution(mdp, pi)
        P_pi = np.einsum("sa,sat->st", pi, mdp.P)
        np.testing.assert_allclose(nu @ P_pi, nu, rtol=0, atol=1e-13)
        assert nu.sum() == pytest.approx(1.0, abs=1e-14)
        # a random chain is not doubly stochastic: the right eigenvector (uniform) is not stationary
        assert np.max(np.abs(nu - 1.0 / mdp.n_states)) > 1e-6


@pytest.mark.parametrize("linear", [False, True])
def test_finite_horizon_natural_gradient_solves_the_fisher_system(linear):
    # F is the Fisher of the normalized discounted time average (pg.fisher), so F w = grad J exactly
    for mdp, policy, theta in _problems(3, linear):
        w = pg.natural_gradient(mdp, policy, theta)
        F = pg.fisher(mdp, policy, theta)
        g = pg.policy_gradient(mdp, policy, theta)
        assert np.max(np.abs(F @ w - g)) <= 1e-9 * max(1.0, float(np.max(np.abs(w))))


def test_kl_expected_gradient_is_the_derivative_of_kl_expected():
    for mdp, policy, theta in _problems(None, True):
        rng = np.random.default_rng(policy.n_params)
        theta_q, v = theta + rng.standard_normal(policy.n_params), rng.standard_normal(policy.n_params)
        d = pg.occupancy(mdp, policy.probs(theta))
        grad = exact.kl_expected_gradient(policy, theta, theta_q, d)
        fd = _central(lambda t: pg.kl_expected(policy.probs(theta), policy.probs(t), d), theta_q, v)
        assert grad @ v == pytest.approx(fd, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("horizon", [None, 4])
def test_surrogate_gradient_is_the_policy_gradient_at_the_old_policy_and_the_derivative_of_the_surrogate(horizon):
    for mdp, policy, theta in _problems(horizon, True):
        rng = np.random.default_rng(policy.n_params + 1)
        theta_new, v = theta + 0.5 * rng.standard_normal(policy.n_params), rng.standard_normal(policy.n_params)
        np.testing.assert_allclose(pg.surrogate_gradient(mdp, policy, theta, theta),
                                   pg.policy_gradient(mdp, policy, theta), rtol=1e-10, atol=1e-12)
        grad = pg.surrogate_gradient(mdp, policy, theta, theta_new)
        fd = _central(lambda t: pg.surrogate(mdp, policy.probs(theta), policy.probs(t)), theta_new, v)
        assert grad @ v == pytest.approx(fd, rel=1e-7, abs=1e-9)


def test_surrogate_first_order_matches_the_change_in_J():
    # J(theta + h v) - J(theta) = surrogate(pi_theta, pi_{theta + h v}) + O(h^2), for both horizons
    for horizon in (None, 4):
        for mdp, policy, theta in _problems(horizon, False, n=3):
            v = np.cos(np.arange(policy.n_params))
            h = 1e-6
            sur = pg.surrogate(mdp, policy.probs(theta), policy.probs(theta + h * v))
            dJ = pg.evaluate(mdp, policy.probs(theta + h * v)).J - pg.evaluate(mdp, policy.probs(theta)).J
            assert sur == pytest.approx(dJ, rel=1e-4, abs=1e-11)


def test_reward_per_transition_is_averaged_under_P():
    # one state, one action: P = [0.25, 0.75] to states 0 and 1; r(0, 0, .) = (4, 0): r(0, 0) = 1, not the mean 2
    P = np.array([[[0.25, 0.75]], [[0.0, 1.0]]])
    r3 = np.zeros((2, 1, 2))
    r3[0, 0, 0] = 4.0
    mdp = FiniteMDP(P, r3, [1.0, 0.0], gamma=0.5)
    assert mdp.r[0, 0] == pytest.approx(1.0, abs=1e-15)
    assert mdp.r[1, 0] == 0.0
    # V(1) = 0 and V(0) = 1 + 0.5 * 0.25 V(0): V(0) = 8/7
    assert pg.evaluate(mdp, np.ones((2, 1))).J == pytest.approx(8.0 / 7.0, rel=1e-14)
