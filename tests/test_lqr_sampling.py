"""Batched LQR rollouts and Monte Carlo gradient estimators, checked for unbiasedness against the
exact closed forms.

Every statistical assertion is a two-sided z-test per coordinate with a Bonferroni correction:
the family-wise false-alarm probability of each test function is at most ALPHA = 1e-4 (under the
CLT approximation, N >= 20000 i.i.d. episodes with finite fourth moments). Each test also checks
its own power: the detection threshold (z* standard errors) must be a small fraction of the size
of the quantity, so that a wrong sign, a missing discount or a factor of 2 would be detected.
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import norm

from pgexact import LQR, LinearGaussian
from pgexact.lqr import (
    dpg,
    evaluate,
    policy_gradient,
    reinforce,
    reinforce_baseline,
    reinforce_to_go,
    rollout,
)

ALPHA = 1e-4


def _z_threshold(n_tests: int) -> float:
    return float(norm.isf(ALPHA / (2 * n_tests)))


def _problem(learn: bool = False, deterministic: bool = False):
    lqr = LQR(A=[[0.9, 0.4], [-0.2, 1.05]], B=[[0.2], [1.0]], Q=[[1.0, 0.2], [0.2, 0.5]], R=[[0.3]],
              Sigma0=[[1.0, 0.3], [0.3, 0.6]], gamma=0.9, noise_cov=0.05 * np.eye(2), horizon=6)
    K = np.array([[0.5, 1.5]])  # away from K*, so that the gradient is large relative to the noise
    if learn:
        pol = LinearGaussian(2, 1, learn_log_std=True)
        return lqr, pol, pol.params(K, log_std=[np.log(0.5)])
    pol = LinearGaussian(2, 1, noise_cov=None if deterministic else [[0.25]])
    return lqr, pol, pol.params(K)


def test_rollout_shapes_seed_and_dynamics():
    lqr, pol, th = _problem()
    ro = rollout(lqr, pol, th, n_episodes=7, seed=5)
    assert ro.states.shape == (7, 6, 2) and ro.actions.shape == (7, 6, 1) and ro.costs.shape == (7, 6)
    ro2 = rollout(lqr, pol, th, n_episodes=7, seed=np.random.SeedSequence(5))
    np.testing.assert_array_equal(ro.states, ro2.states)
    assert not np.array_equal(ro.states, rollout(lqr, pol, th, n_episodes=7, seed=6).states)
    # costs are x'Qx + u'Ru of the recorded pairs
    x, u = ro.states, ro.actions
    np.testing.assert_allclose(ro.costs, np.einsum("nti,ij,ntj->nt", x, lqr.Q, x) + 0.3 * u[..., 0] ** 2,
                               rtol=1e-14)
    with pytest.raises(ValueError, match="horizon is required"):
        rollout(lqr.with_horizon(None), pol, th, 3, seed=0)
    with pytest.raises(ValueError, match="n_episodes must be a positive integer"):
        rollout(lqr, pol, th, 0, seed=0)
    with pytest.raises(TypeError, match="seed must be"):
        rollout(lqr, pol, th, 3, seed=None)
    # deterministic policy, no noise at all: x_{t+1} = (A - BK) x_t exactly
    det = LQR(lqr.A, lqr.B, lqr.Q, lqr.R, Sigma0=lqr.Sigma0, gamma=0.9, horizon=3)
    _, dpol, dth = _problem(deterministic=True)
    r = rollout(det, dpol, dth, 4, seed=0)
    AK = det.A - det.B @ dpol.gain(dth)
    np.testing.assert_allclose(r.states[:, 1], r.states[:, 0] @ AK.T, rtol=1e-14, atol=1e-15)


def test_rollout_moments_match_exact():
    """Mean discounted cost vs exact cost, and E[x_t x_t'] vs the exact S_t (1 + 6*3 = 19 tests;
    the truncated infinite-horizon model equals the finite one)."""
    lqr, pol, th = _problem()
    ev = evaluate(lqr, pol.gain(th), pol.action_cov(th))
    ro = rollout(lqr.with_horizon(None), pol, th, n_episodes=40_000, seed=123, horizon=6)
    z = _z_threshold(19)
    G = -ro.discounted_returns()
    se = G.std(ddof=1) / np.sqrt(G.size)
    assert abs(G.mean() - ev.cost) < z * se and z * se < 0.05 * ev.cost
    for t in range(6):
        xx = np.einsum("ni,nj->nij", ro.states[:, t], ro.states[:, t])[:, [0, 0, 1], [0, 1, 1]]
        want = ev.S[t][[0, 0, 1], [0, 1, 1]]
        se = xx.std(axis=0, ddof=1) / np.sqrt(xx.shape[0])
        assert np.all(np.abs(xx.mean(axis=0) - want) < z * se)


@pytest.mark.parametrize("learn", [False, True])
def test_score_function_estimators_unbiased(learn):
    """REINFORCE, reward-to-go and the baseline estimator (exact V as baseline) are unbiased for
    the exact policy gradient (gain block, and the log-std block when learned)."""
    lqr, pol, th = _problem(learn=learn)
    exact = policy_gradient(lqr, pol, th)
    ev = evaluate(lqr, pol.gain(th), pol.action_cov(th))
    ro = rollout(lqr, pol, th, n_episodes=100_000, seed=2024 + learn)
    ests = {
        "reinforce": reinforce(ro, pol, th),
        "to_go": reinforce_to_go(ro, pol, th),
        "baseline": reinforce_baseline(ro, pol, th, lambda t, x: ev.V(x, t)),
    }
    z = _z_threshold(len(ests) * exact.size)
    scale = np.max(np.abs(exact))
    for name, est in ests.items():
        dev = np.abs(est.mean - exact) / est.std_error
        assert np.all(dev < z), (name, est.mean, exact, dev)
        # power: a factor-2, missing-discount or sign error (>= 20% of the largest entry) is detected
        if name != "reinforce":
            assert np.all(z * est.std_error < 0.2 * scale), (name, est.std_error, scale)
        else:  # plain REINFORCE is noisier: it still detects a sign error (a shift of 2 x scale)
            assert np.all(z * est.std_error < 1.0 * scale), (name, est.std_error, scale)
    # variance reduction (not a statistical claim about means, just the usual ordering, by far)
    assert np.all(ests["baseline"].std_error < ests["reinforce"].std_error)


@pytest.mark.parametrize("deterministic", [True, False])
def test_dpg_estimator_unbiased(deterministic):
    """DPG estimator with the exact critic grad_u Q_t, for the deterministic policy (Silver et al.
    2014) and for the Gaussian policy with fixed noise (grad_u Q affine in u)."""
    lqr, pol, th = _problem(deterministic=deterministic)
    exact = policy_gradient(lqr, pol, th)
    ev = evaluate(lqr, pol.gain(th), pol.action_cov(th))
    ro = rollout(lqr, pol, th, n_episodes=20_000, seed=77)
    est = dpg(ro, pol, th, lambda t, x, u: ev.grad_u_Q(x, u, t))
    z = _z_threshold(exact.size)
    assert np.all(np.abs(est.mean - exact) < z * est.std_error), (est.mean, exact)
    assert np.all(z * est.std_error < 0.05 * np.max(np.abs(exact)))


def test_estimator_bad_input():
    lqr, pol, th = _problem()
    ro = rollout(lqr, pol, th, 5, seed=0)
    with pytest.raises(ValueError, match=r"baseline\(t, x\) must return shape \(5,\)"):
        reinforce_baseline(ro, pol, th, lambda t, x: np.zeros(3))
    with pytest.raises(ValueError, match="learn_log_std=False"):
        dpg(ro, LinearGaussian(2, 1, learn_log_std=True), np.zeros(3), lambda t, x, u: u)
    _, dpol, dth = _problem(deterministic=True)
    with pytest.raises(ValueError, match="singular"):
        reinforce(ro, dpol, dth)
