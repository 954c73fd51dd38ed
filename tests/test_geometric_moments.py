"""Exact moments under geometric stopping (estimator_moments on a discounted model, horizon=None):
against the mixture over the stopping time of finite-horizon moments (the finite recursions,
another code path), against enumeration of every trajectory of every length (no recursion), and
against Monte Carlo of rollout(..., geometric=True) with stated false alarms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from pgexact import LinearSoftmax, TabularSoftmax, evaluate, policy_gradient, rollout
from pgexact import estimators as E
from pgexact.estimators import (
    enumerate_trajectories, estimator_moments, exact_covariance, exact_mean, mean_test, optimal_baselines,
)
from pgexact.estimators.stats import episodes_needed, mean_test_power
from pgexact.mdps import gridworld, random_mdp


def _args(mdp, pi, rng):
    S, A = pi.shape
    ev = evaluate(mdp, pi)
    return {
        "reinforce": {},
        "reward_to_go": {},
        "constant_baseline": {"b": float(rng.standard_normal())},
        "state_baseline": {"b": rng.standard_normal(S)},
        "advantage": {"A": ev.A + 0.3 * rng.standard_normal((S, A))},  # any table, exact or not
        "gae": {"V": ev.V + rng.standard_normal(S), "lam": float(rng.uniform())},
    }


def _mixture(mdp, pol, theta, estimator, kw, lmax):
    """sum_l Pr(L = l) * (moments of the undiscounted l-step estimator), Pr(L = l) = (1-g) g^(l-1)."""
    g = mdp.gamma
    mean, second = 0.0, 0.0
    for L in range(1, lmax + 1):
        w = (1 - g) * g ** (L - 1)
        m = estimator_moments(mdp.with_horizon(L, gamma=1.0), pol, theta, estimator, **kw)
        mean = mean + w * m.mean
        second = second + w * m.second_moment
    return mean, second


@pytest.mark.parametrize("seed", range(3))
def test_geometric_moments_are_the_mixture_of_finite_horizons(seed: int) -> None:
    rng = np.random.default_rng(seed)
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=0.4, seed=rng)
    pol = TabularSoftmax(S, A) if seed % 2 else LinearSoftmax(rng.standard_normal((S, A, 3)))
    theta = rng.standard_normal(pol.n_params)
    for est, kw in _args(mdp, pol.probs(theta), rng).items():
        geo = estimator_moments(mdp, pol, theta, est, **kw)
        assert geo.horizon is None
        # truncating the mixture at 40 steps leaves 0.4^40 ~ 1e-16 of probability
        mean, second = _mixture(mdp, pol, theta, est, kw, 40)
        assert np.allclose(geo.mean, mean, rtol=1e-12, atol=1e-13), est
        assert np.allclose(geo.second_moment, second, rtol=1e-11, atol=1e-12), est
        assert np.allclose(geo.covariance, second - np.outer(mean, mean), rtol=1e-11, atol=1e-12), est
        if est in ("reinforce", "reward_to_go", "constant_baseline", "state_baseline"):  # unbiased
            assert np.allclose(geo.mean, policy_gradient(mdp, pol, theta), atol=1e-13)


def test_terminal_states_and_sparse_transitions() -> None:
    mdp = gridworld(3, 3, gamma=0.4, sparse=True)  # a terminal (absorbing, zero-reward) corner
    S, A = mdp.n_states, mdp.n_actions
    pol, theta = TabularSoftmax(S, A), np.random.default_rng(0).standard_normal(S * A)
    dense = type(mdp)(mdp.P.toarray().reshape(S, A, S), mdp.r, mdp.mu0, mdp.gamma)
    for est, kw in _args(mdp, pol.probs(theta), np.random.default_rng(1)).items():
        geo = estimator_moments(mdp, pol, theta, est, **kw)
        mean, second = _mixture(mdp, pol, theta, est, kw, 40)  # 0.4^40 ~ 1e-16
        assert np.allclose(geo.mean, mean, rtol=1e-12, atol=1e-12), est
        assert np.allclose(geo.second_moment, second, rtol=1e-11, atol=1e-11), est
        dense_geo = estimator_moments(dense, pol, theta, est, **kw)  # the dense-P path
        assert np.allclose(dense_geo.second_moment, geo.second_moment, rtol=1e-12, atol=1e-12), est


def test_against_enumeration_of_every_trajectory() -> None:
    # gamma = 0.05: lengths up to 8 leave 0.05^8 = 4e-11 of probability; every trajectory of each
    # length is listed and the sampled estimator is applied to it (no recursion at all)
    mdp = random_mdp(2, 2, gamma=0.05, seed=4)
    pol, theta = TabularSoftmax(2, 2), np.array([0.3, -0.4, 1.0, 0.2])
    pi = pol.probs(theta)
    V = np.array([0.5, -1.0])
    cases = {
        "reinforce": (lambda tr: E.reinforce(tr, pol, theta), {}),
        "reward_to_go": (lambda tr: E.reward_to_go(tr, pol, theta), {}),
        "state_baseline": (lambda tr: E.state_baseline(tr, pol, theta, V), {"b": V}),
        "gae": (lambda tr: E.gae_gradient(tr, pol, theta, V, 0.4), {"V": V, "lam": 0.4}),
    }
    for est, (sampled, kw) in cases.items():
        mean, second = 0.0, 0.0
        for L in range(1, 9):
            tr, p = enumerate_trajectories(mdp.with_horizon(L, gamma=1.0), pi, max_trajectories=1 << 20)
            x = sampled(tr).samples
            w = 0.95 * 0.05 ** (L - 1)
            mean = mean + w * exact_mean(x, p)
            second = second + w * (exact_covariance(x, p) + np.outer(exact_mean(x, p), exact_mean(x, p)))
        geo = estimator_moments(mdp, pol, theta, est, **kw)
        # the omitted lengths carry 4e-11 of probability times moments of size <~ 10 L^2
        assert np.allclose(geo.mean, mean, atol=1e-8), est
        assert np.allclose(geo.second_moment, second, atol=1e-8), est


def test_directions_give_the_same_moments() -> None:
    rng = np.random.default_rng(3)
    mdp = random_mdp(4, 3, gamma=0.7, seed=rng)
    pol = LinearSoftmax(rng.standard_normal((4, 3, 5)))
    theta = rng.standard_normal(5)
    D = rng.standard_normal((2, 5))
    for est, kw in _args(mdp, pol.probs(theta), rng).items():
        full = estimator_moments(mdp, pol, theta, est, **kw)
        part = estimator_moments(mdp, pol, theta, est, directions=D, **kw)
        assert part.covariance is None
        assert np.allclose(part.mean, full.mean, atol=1e-13)
        assert np.allclose(part.direction_covariance, D @ full.covariance @ D.T, rtol=1e-11, atol=1e-12)


def test_geometric_input_errors() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    pol, theta = TabularSoftmax(3, 2), np.zeros(6)
    with pytest.raises(ValueError, match=r"b must have shape \(S,\)=\(3,\) under geometric stopping .* memoryless"):
        estimator_moments(mdp, pol, theta, "state_baseline", b=np.zeros((4, 3)))
    with pytest.raises(ValueError, match=r"V must have shape \(S,\)=\(3,\) under geometric stopping"):
        estimator_moments(mdp, pol, theta, "gae", V=np.zeros((4, 3)), lam=0.5)
    with pytest.raises(ValueError, match=r"A must have shape \(S, A\)=\(3, 2\) under geometric stopping"):
        estimator_moments(mdp, pol, theta, "advantage", A=np.zeros((4, 3, 2)))
    with pytest.raises(ValueError, match="normalized_advantage' has no per-episode moments"):
        estimator_moments(mdp, pol, theta, "normalized_advantage")


def test_optimal_stationary_baselines() -> None:
    rng = np.random.default_rng(5)
    mdp = random_mdp(4, 2, gamma=0.8, seed=rng)
    pol = LinearSoftmax(rng.standard_normal((4, 2, 3)))
    theta = rng.standard_normal(3)
    opt = optimal_baselines(mdp, pol, theta)
    assert opt.state.shape == (3, 4) and opt.per_state.shape == (3, 4)
    V = evaluate(mdp, pol.probs(theta)).V
    for k in range(3):
        at_opt = estimator_moments(mdp, pol, theta, "state_baseline", b=opt.state[k]).covariance[k, k]
        assert at_opt == pytest.approx(opt.variance_state[k], rel=1e-10)
        # the quadratic's minimum: every perturbation (and V, and the per-state formula) does worse
        for b in [opt.state[k] + 0.05 * rng.standard_normal(4) for _ in range(5)] + [V, opt.per_state[k]]:
            assert estimator_moments(mdp, pol, theta, "state_baseline", b=b).covariance[k, k] >= at_opt - 1e-12
        const = estimator_moments(mdp, pol, theta, "constant_baseline", b=float(opt.constant[k])).covariance[k, k]
        assert const == pytest.approx(opt.variance_constant[k], rel=1e-10)
    assert np.allclose(opt.variance_value, np.diag(estimator_moments(mdp, pol, theta, "state_baseline", b=V).covariance))


def _monte_carlo_check(n_episodes: int, seed: int) -> None:
    """Means by mean_test (Bonferroni over the coordinates, false alarm 1e-6 per estimator,
    asymptotic in N) and variances along each coordinate by a z-test on the sample variance with
    its standard error estimated from fourth moments (two-sided, Bonferroni, 1e-6 per estimator)."""
    mdp = random_mdp(3, 2, gamma=0.8, seed=7)
    pol, theta = TabularSoftmax(3, 2), np.array([0.4, -0.3, 0.0, 0.8, -1.0, 0.2])
    pi = pol.probs(theta)
    ev = evaluate(mdp, pi)
    V = ev.V + np.array([0.5, -0.5, 0.2])
    tr = rollout(mdp, pi, n_episodes, geometric=True, seed=seed)
    cases = {
        "reinforce": (E.reinforce(tr, pol, theta), {}),
        "reward_to_go": (E.reward_to_go(tr, pol, theta), {}),
        "state_baseline": (E.state_baseline(tr, pol, theta, V), {"b": V}),
        "advantage": (E.advantage(tr, pol, theta, ev.A), {"A": ev.A}),
        "gae": (E.gae_gradient(tr, pol, theta, V, 0.7), {"V": V, "lam": 0.7}),
    }
    alpha = 1e-6
    for est, (sample, kw) in cases.items():
        mom = estimator_moments(mdp, pol, theta, est, **kw)
        test = mean_test(sample, mom.mean, false_alarm=alpha)
        assert test.passed, (est, str(test))
        x = sample.samples - sample.samples.mean(axis=0)
        s2 = (x * x).mean(axis=0)
        se = np.sqrt(((x**4).mean(axis=0) - s2**2) / n_episodes)
        z = (s2 - np.diag(mom.covariance)) / se
        assert np.max(np.abs(z)) < norm.isf(alpha / (2 * x.shape[1])), (est, z)
    # power of the mean test against a mean off by 10% of |grad J| along the gradient: computed
    mom = estimator_moments(mdp, pol, theta, "gae", V=V, lam=0.7)
    power = mean_test_power(mom.covariance, 0.1 * mom.mean, n_episodes, false_alarm=alpha)
    assert power > (0.99 if n_episodes >= 10**5 else 0.3)


@pytest.mark.slow
def test_against_monte_carlo_of_geometric_rollouts() -> None:
    _monte_carlo_check(200_000, seed=2024)


def test_against_monte_carlo_small() -> None:
    _monte_carlo_check(20_000, seed=11)


def test_episodes_needed_from_geometric_moments() -> None:
    mdp = random_mdp(3, 2, gamma=0.8, seed=7)
    pol, theta = TabularSoftmax(3, 2), np.zeros(6)
    cov = estimator_moments(mdp, pol, theta, "reinforce").covariance
    cov_gae = estimator_moments(mdp, pol, theta, "gae", V=evaluate(mdp, pol.probs(theta)).V, lam=0.9).covariance
    bias = np.full(6, 0.05)
    n_re, n_gae = episodes_needed(cov, bias), episodes_needed(cov_gae, bias)
    assert n_gae < n_re  # the lower-variance estimator needs fewer episodes
    assert mean_test_power(cov, bias, n_re) >= 0.8 > mean_test_power(cov, bias, n_re - 1)
