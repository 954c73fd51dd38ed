"""Exact moments of the n-step estimator (estimator_moments(..., "n_step")): against enumeration of
every trajectory with the sampled estimator applied to each (no recursion), against the mixture of
finite horizons under geometric stopping (the finite-horizon recursion, another code path), and
against Monte Carlo of pgexact.rollout with stated false alarms."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from pgexact import LinearSoftmax, TabularSoftmax, evaluate, policy_gradient, rollout
from pgexact.estimators import (
    enumerate_trajectories, estimator_moments, exact_covariance, exact_mean, mean_test, n_step,
)
from pgexact.estimators.moments import MAX_MOMENT_STEPS
from pgexact.estimators.stats import mean_test_power
from pgexact.mdps import gridworld, random_mdp

# Enumeration sums at most ~7e3 trajectories of O(10) terms; the recursion's rounding is ~1e-15
# relative to E[g g^T] (observed worst 2e-15 on 120 random cases). 1e-12 relative to
# max(1, max|Cov|) is the required accuracy.
TOL = 1e-12


def _check(mom, est, prob, tol=TOL) -> None:  # noqa: ANN001
    cov = exact_covariance(est.samples, prob)
    scale = max(1.0, float(np.abs(cov).max()))
    assert np.abs(mom.mean - exact_mean(est.samples, prob)).max() <= tol * scale
    assert np.abs(mom.covariance - cov).max() <= tol * scale


@pytest.mark.parametrize("seed", range(10))
def test_matches_enumeration_finite_horizon(seed: int) -> None:
    # windows shorter than, equal to and longer than the horizon; stationary and time-indexed V;
    # tabular and linear softmax; gamma < 1 and gamma = 1
    rng = np.random.default_rng(seed)
    S, A, H = int(rng.integers(2, 4)), int(rng.integers(2, 4)), int(rng.integers(2, 5))
    mdp = random_mdp(S, A, gamma=float(rng.choice([0.8, 1.0])), horizon=H, seed=rng, concentration=0.5)
    pol = LinearSoftmax(rng.standard_normal((S, A, 3))) if seed % 2 else TabularSoftmax(S, A)
    theta = rng.standard_normal(pol.n_params)
    trajs, prob = enumerate_trajectories(mdp, pol.probs(theta))
    for V in (rng.standard_normal(S), rng.standard_normal((H, S))):
        for n in sorted({1, 2, H - 1, H, H + 3} - {0}):
            mom = estimator_moments(mdp, pol, theta, "n_step", V=V, n=n)
            assert mom.horizon == H and mom.estimator == "n_step"
            _check(mom, n_step(trajs, pol, theta, V, n), prob)


@pytest.mark.parametrize("seed", range(4))
def test_truncated_objective_bootstraps_the_last_state(seed: int) -> None:
    # a discounted mdp with horizon=T: n_step bootstraps V(s_T) at the cut (stationary V), nothing
    # with a time-indexed V
    rng = np.random.default_rng(100 + seed)
    S, A, T = 3, 2, 4
    mdp = random_mdp(S, A, gamma=0.85, seed=rng)
    pol = TabularSoftmax(S, A)
    theta = rng.standard_normal(pol.n_params)
    trajs, prob = enumerate_trajectories(mdp, pol.probs(theta), horizon=T)
    assert trajs.truncated.all()
    for V in (rng.standard_normal(S), rng.standard_normal((T, S))):
        for n in (1, 2, 3, 6):
            _check(estimator_moments(mdp, pol, theta, "n_step", V=V, n=n, horizon=T), n_step(trajs, pol, theta, V, n),
                   prob)


def test_terminal_states_end_the_window() -> None:
    # a gridworld's terminal goal: the window stops at absorption and bootstraps nothing there
    mdp = gridworld(2, 2, gamma=0.9, slip=0.2)
    assert mdp.terminal.any()
    pol = TabularSoftmax(mdp.n_states, mdp.n_actions)
    rng = np.random.default_rng(1)
    theta = rng.standard_normal(pol.n_params)
    trajs, prob = enumerate_trajectories(mdp, pol.probs(theta), horizon=4, max_trajectories=1 << 22)
    assert 0 < trajs.absorbed.mean() < 1
    for V in (rng.standard_normal(mdp.n_states), rng.standard_normal((4, mdp.n_states))):
        for n in (1, 2, 3, 6):
            mom = estimator_moments(mdp, pol, theta, "n_step", V=V, n=n, horizon=4)
            _check(mom, n_step(trajs, pol, theta, V, n), prob, tol=1e-13)


def test_directions_and_sparse_transitions() -> None:
    rng = np.random.default_rng(3)
    dense = gridworld(3, 3, gamma=0.95, horizon=12, slip=0.3, step_reward=-0.1)
    sparse = gridworld(3, 3, gamma=0.95, horizon=12, slip=0.3, step_reward=-0.1, sparse=True)
    pol = LinearSoftmax(rng.standard_normal((9, 4, 5)))
    theta = rng.standard_normal(5)
    V = rng.standard_normal(9)
    D = rng.standard_normal((2, 5))
    for mdp in (dense, sparse, dense.with_horizon(None), sparse.with_horizon(None)):
        full = estimator_moments(mdp, pol, theta, "n_step", V=V, n=3)
        part = estimator_moments(mdp, pol, theta, "n_step", V=V, n=3, directions=D)
        assert part.covariance is None
        assert np.allclose(part.mean, full.mean, rtol=0, atol=1e-13)
        assert np.allclose(part.direction_covariance, D @ full.covariance @ D.T, rtol=1e-12, atol=1e-12)
    a = estimator_moments(dense, pol, theta, "n_step", V=V, n=3)
    b = estimator_moments(sparse, pol, theta, "n_step", V=V, n=3)
    assert np.allclose(a.covariance, b.covariance, rtol=1e-13, atol=1e-13)


def test_unbiased_with_the_exact_values() -> None:
    # E[G^(n)_t | s_t, a_t] = Q_t(s_t, a_t) for every n when V is exact: the mean is the gradient
    mdp = gridworld(3, 3, gamma=0.95, horizon=15, slip=0.2, step_reward=-0.05)
    pol = TabularSoftmax(9, 4)
    theta = 0.5 * np.random.default_rng(0).standard_normal(36)
    for m in (mdp, mdp.with_horizon(None)):
        V = evaluate(m, pol.probs(theta)).V
        g = policy_gradient(m, pol, theta)
        for n in (1, 4, 20):
            mom = estimator_moments(m, pol, theta, "n_step", V=V, n=n)
            assert np.allclose(mom.mean, g, rtol=0, atol=1e-12), n
            assert np.all(np.linalg.eigvalsh(mom.covariance) >= -1e-9 * np.abs(mom.covariance).max())


def test_a_long_window_is_the_state_baseline() -> None:
    # n >= H: G^(n)_t is the reward-to-go, so n_step with V is the state baseline b = V (the other family)
    mdp = random_mdp(3, 2, gamma=0.9, horizon=6, seed=2)
    pol = TabularSoftmax(3, 2)
    theta = np.random.default_rng(2).standard_normal(6)
    V = np.random.default_rng(3).standard_normal((6, 3))
    a = estimator_moments(mdp, pol, theta, "n_step", V=V, n=6)
    b = estimator_moments(mdp, pol, theta, "state_baseline", b=V)
    assert np.allclose(a.covariance, b.covariance, rtol=1e-12, atol=1e-13)
    assert np.allclose(a.mean, b.mean, rtol=1e-12, atol=1e-13)


def _mixture(mdp, pol, theta, V, n, lmax):  # noqa: ANN001
    """sum_l Pr(L = l) (moments of the undiscounted l-step estimator), Pr(L = l) = (1-g) g^(l-1)."""
    g = mdp.gamma
    mean, second = 0.0, 0.0
    for L in range(1, lmax + 1):
        w = (1 - g) * g ** (L - 1)
        m = estimator_moments(mdp.with_horizon(L, gamma=1.0), pol, theta, "n_step", V=V, n=n)
        mean, second = mean + w * m.mean, second + w * m.second_moment
    return mean, second


@pytest.mark.parametrize("seed", range(3))
def test_geometric_is_the_mixture_of_finite_horizons(seed: int) -> None:
    rng = np.random.default_rng(seed)
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=0.4, seed=rng)
    pol = TabularSoftmax(S, A) if seed % 2 else LinearSoftmax(rng.standard_normal((S, A, 3)))
    theta = rng.standard_normal(pol.n_params)
    V = evaluate(mdp, pol.probs(theta)).V + rng.standard_normal(S)
    for n in (1, 2, 5):
        geo = estimator_moments(mdp, pol, theta, "n_step", V=V, n=n)
        assert geo.horizon is None
        mean, second = _mixture(mdp, pol, theta, V, n, 40)  # 0.4^40 ~ 1e-16 of probability left out
        assert np.allclose(geo.mean, mean, rtol=1e-12, atol=1e-13), n
        assert np.allclose(geo.second_moment, second, rtol=1e-11, atol=1e-12), n


def test_geometric_against_enumeration_of_every_trajectory() -> None:
    # gamma = 0.05: lengths up to 8 leave 0.05^8 = 4e-11 of probability; every trajectory of each
    # length is listed and the sampled n_step estimator applied to it (no recursion at all)
    mdp = random_mdp(2, 2, gamma=0.05, seed=4)
    pol, theta = TabularSoftmax(2, 2), np.array([0.3, -0.4, 1.0, 0.2])
    pi = pol.probs(theta)
    V = np.array([0.5, -1.0])
    for n in (1, 2, 3):
        mean, second = 0.0, 0.0
        for L in range(1, 9):
            tr, p = enumerate_trajectories(mdp.with_horizon(L, gamma=1.0), pi, max_trajectories=1 << 20)
            x = n_step(tr, pol, theta, V, n).samples
            w = 0.95 * 0.05 ** (L - 1)
            mu = exact_mean(x, p)
            mean, second = mean + w * mu, second + w * (exact_covariance(x, p) + np.outer(mu, mu))
        geo = estimator_moments(mdp, pol, theta, "n_step", V=V, n=n)
        # the omitted lengths carry 4e-11 of probability times moments of size <~ 10 L^2
        assert np.allclose(geo.mean, mean, rtol=0, atol=1e-8), n
        assert np.allclose(geo.second_moment, second, rtol=0, atol=1e-8), n


def _monte_carlo(n_episodes: int, seed: int, geometric: bool) -> None:
    """Means by mean_test (Bonferroni over the 6 coordinates x 2 windows, false alarm 1e-6 per
    window), variances along each coordinate by a z-test on the sample variance with its standard
    error from fourth moments (two-sided, Bonferroni over the coordinates, 1e-6 per window).
    Total false-alarm probability <= 4e-6, asymptotically in N; fixed seed."""
    mdp = random_mdp(3, 2, gamma=0.8, horizon=None if geometric else 12, seed=7)
    pol, theta = TabularSoftmax(3, 2), np.array([0.4, -0.3, 0.0, 0.8, -1.0, 0.2])
    pi = pol.probs(theta)
    ev = evaluate(mdp, pi)
    V = (ev.V if geometric else ev.V[0]) + np.array([0.5, -0.5, 0.2])  # an imperfect, stationary V
    tr = rollout(mdp, pi, n_episodes, geometric=geometric, seed=seed)
    alpha = 1e-6
    for n in (2, 4):
        sample = n_step(tr, pol, theta, V, n)
        mom = estimator_moments(mdp, pol, theta, "n_step", V=V, n=n)
        test = mean_test(sample, mom.mean, false_alarm=alpha)
        assert test.passed, (n, str(test))
        x = sample.samples - sample.samples.mean(axis=0)
        s2 = (x * x).mean(axis=0)
        se = np.sqrt(((x**4).mean(axis=0) - s2**2) / n_episodes)
        z = (s2 - np.diag(mom.covariance)) / se
        assert np.max(np.abs(z)) < norm.isf(alpha / (2 * x.shape[1])), (n, z)
    # power of the mean test against a mean off by 10% of |E g| along E g: computed, not assumed
    mom = estimator_moments(mdp, pol, theta, "n_step", V=V, n=2)
    power = mean_test_power(mom.covariance, 0.1 * mom.mean, n_episodes, false_alarm=alpha)
    assert power > (0.99 if n_episodes >= 10**5 else 0.2), power


@pytest.mark.slow
@pytest.mark.parametrize("geometric", [False, True])
def test_monte_carlo_at_scale(geometric: bool) -> None:
    _monte_carlo(200_000, seed=2025, geometric=geometric)


@pytest.mark.parametrize("geometric", [False, True])
def test_monte_carlo_small(geometric: bool) -> None:
    _monte_carlo(20_000, seed=12, geometric=geometric)


def test_monte_carlo_rejects_a_window_one_step_off() -> None:
    # negative control at the size of the fast test: the moments of n = 3 (a window one step too
    # long) are rejected for samples of n = 2; the power of this comparison is computed. With V = 0
    # (no critic) the two windows' means differ by the whole reward the shorter one leaves out
    mdp = random_mdp(3, 2, gamma=0.8, horizon=12, seed=7)
    pol, theta = TabularSoftmax(3, 2), np.array([0.4, -0.3, 0.0, 0.8, -1.0, 0.2])
    pi = pol.probs(theta)
    V = np.zeros(3)
    tr = rollout(mdp, pi, 20_000, seed=12)
    sample = n_step(tr, pol, theta, V, 2)
    right = estimator_moments(mdp, pol, theta, "n_step", V=V, n=2)
    wrong = estimator_moments(mdp, pol, theta, "n_step", V=V, n=3)
    assert mean_test_power(right.covariance, wrong.mean - right.mean, 20_000, false_alarm=1e-6) > 0.999
    assert mean_test(sample, right.mean, false_alarm=1e-6).passed
    assert not mean_test(sample, wrong.mean, false_alarm=1e-6).passed


def test_bad_input() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=0)
    pol, theta = TabularSoftmax(3, 2), np.zeros(6)
    with pytest.raises(ValueError, match=r"'n_step' needs V \(shape \(S,\) or \(T, S\)\) and n"):
        estimator_moments(mdp, pol, theta, "n_step", V=np.zeros(3))
    with pytest.raises(ValueError, match="n must be a positive integer, got 0"):
        estimator_moments(mdp, pol, theta, "n_step", V=np.zeros(3), n=0)
    with pytest.raises(TypeError, match="n must be a positive integer, got 2.5"):
        estimator_moments(mdp, pol, theta, "n_step", V=np.zeros(3), n=2.5)
    with pytest.raises(ValueError, match=r"V must have shape \(S,\)=\(3,\) or \(T, S\)=\(4, 3\), got \(5,\)"):
        estimator_moments(mdp, pol, theta, "n_step", V=np.zeros(5), n=2)
    with pytest.raises(ValueError, match=r"V\[1\] is nan"):
        estimator_moments(mdp, pol, theta, "n_step", V=np.array([0.0, np.nan, 1.0]), n=2)
    with pytest.raises(TypeError, match="'n_step' does not use lam"):
        estimator_moments(mdp, pol, theta, "n_step", V=np.zeros(3), n=2, lam=0.5)
    with pytest.raises(TypeError, match="'gae' does not use n"):
        estimator_moments(mdp, pol, theta, "gae", V=np.zeros(3), lam=0.5, n=2)
    geo = mdp.with_horizon(None)
    with pytest.raises(ValueError, match=r"V must have shape \(S,\)=\(3,\) under geometric stopping"):
        estimator_moments(geo, pol, theta, "n_step", V=np.zeros((4, 3)), n=2)
    # time: the recursions run over (time step, window step) pairs
    long = random_mdp(3, 2, gamma=0.9, horizon=1000, seed=0)
    with pytest.raises(ValueError, match=r"'n_step' with n=500 and horizon H=1000 .* beyond MAX_MOMENT_STEPS"):
        estimator_moments(long, pol, theta, "n_step", V=np.zeros(3), n=500)
    with pytest.raises(ValueError, match=r"'n_step' with n=1000 and geometric stopping .* 500500 pairs"):
        estimator_moments(geo, pol, theta, "n_step", V=np.zeros(3), n=1000)
    assert MAX_MOMENT_STEPS < 500500
    # memory: the window's blocks grow with n, and the message names n
    big = random_mdp(64, 4, gamma=0.9, horizon=2000, seed=0)
    with pytest.raises(ValueError, match=r"would need about 14.9 GiB .* horizon H=2000 and a window of n=2000 steps"):
        estimator_moments(big, TabularSoftmax(64, 4), np.zeros(256), "n_step", V=np.zeros(64), n=2000)


def test_windows_longer_than_the_horizon_cost_nothing_more() -> None:
    # the window never reaches past T, so n is capped at H (no refusal, the same moments)
    mdp = random_mdp(3, 2, gamma=0.9, horizon=5, seed=0)
    pol, theta = TabularSoftmax(3, 2), np.linspace(-1, 1, 6)
    V = np.ones(3)
    a = estimator_moments(mdp, pol, theta, "n_step", V=V, n=5)
    b = estimator_moments(mdp, pol, theta, "n_step", V=V, n=10**9)
    assert np.array_equal(a.covariance, b.covariance)
