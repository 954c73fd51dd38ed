"""LQR model and LinearGaussian policy: validation at the boundary, score, sampling."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import pgexact
from pgexact import LQR, LinearGaussian
from pgexact.theorems.lqr import central_difference


def _ok(**over):
    kw = dict(A=np.eye(2), B=np.ones((2, 1)), Q=np.eye(2), R=np.eye(1), Sigma0=np.eye(2), gamma=0.9)
    kw.update(over)
    return kw


def test_top_level_exports():
    assert pgexact.LQR is LQR and pgexact.LinearGaussian is LinearGaussian
    for name in ("evaluate", "cost_gradient", "optimal_gain", "rollout", "reinforce", "dpg"):
        assert hasattr(pgexact.lqr, name)


@pytest.mark.parametrize(
    "over, match",
    [
        (dict(A=np.ones((2, 3))), r"A must be a square matrix"),
        (dict(B=np.ones((3, 1))), r"B must have shape \(n, m\) with n=2"),
        (dict(Q=np.eye(3)), r"Q must have shape \(2, 2\)"),
        (dict(Q=np.array([[1.0, 2.0], [0.0, 1.0]])), r"Q must be symmetric: Q\[0, 1\]"),
        (dict(Q=-np.eye(2)), r"Q must be positive semi-definite"),
        (dict(R=np.zeros((1, 1))), r"R must be positive definite"),
        (dict(R=np.eye(2)), r"R must have shape \(1, 1\)"),
        (dict(R=np.array([[1.0, 0.5], [0.0, 1.0]]), B=np.ones((2, 2))), r"R must be symmetric"),
        (dict(Sigma0=-np.eye(2)), r"Sigma0 must be positive semi-definite"),
        (dict(A=np.array([[np.nan, 0.0], [0.0, 1.0]])), r"A\[0, 0\] is nan"),
        (dict(Q=np.array([[1.0, 0.0], [0.0, np.inf]])), r"Q\[1, 1\] is inf"),
        (dict(noise_cov=np.array([[1.0, 1.0], [0.0, 1.0]])), r"noise_cov must be symmetric"),
        (dict(gamma=1.5), r"gamma is 1.5"),
        (dict(gamma=1.0, noise_cov=np.eye(2)), r"gamma=1 with process noise"),
        (dict(horizon=0), r"horizon must be a positive integer"),
    ],
)
def test_bad_model_input(over, match):
    with pytest.raises(ValueError, match=match):
        LQR(**_ok(**over))


def test_model_accepts_and_freezes():
    lqr = LQR(**_ok(gamma=1.0))  # gamma = 1 without process noise is allowed (Fazel et al.)
    assert lqr.n_states == 2 and lqr.n_actions == 1 and not lqr.has_noise
    with pytest.raises(ValueError):
        lqr.A[0, 0] = 5.0
    assert LQR(**_ok(gamma=1.0, noise_cov=np.eye(2), horizon=3)).horizon == 3


def test_policy_bad_input():
    pol = LinearGaussian(2, 1, noise_cov=[[0.5]])
    with pytest.raises(ValueError, match="theta must have length n_params=2"):
        pol.gain(np.zeros(3))
    with pytest.raises(ValueError, match=r"theta\[1\] is nan"):
        pol.gain([0.0, np.nan])
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., n_states=2\)"):
        pol.mean([0.0, 0.0], np.zeros((4, 3)))
    with pytest.raises(ValueError, match="noise_cov must be positive semi-definite"):
        LinearGaussian(2, 1, noise_cov=[[-1.0]])
    with pytest.raises(ValueError, match="singular"):
        LinearGaussian(2, 1).score([0.0, 0.0], np.ones((1, 2)), np.ones((1, 1)))
    with pytest.raises(ValueError, match="noise_cov must be None"):
        LinearGaussian(2, 1, noise_cov=[[1.0]], learn_log_std=True)


@settings(max_examples=25, deadline=None)
@given(seed=st.integers(0, 2**32 - 1), learn=st.booleans())
def test_score_is_gradient_of_log_prob(seed, learn):
    """Score against a 4th-order central difference of log_prob (independent of the score code)."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    if learn:
        pol = LinearGaussian(n, m, learn_log_std=True)
        theta = pol.params(rng.standard_normal((m, n)), rng.uniform(-1, 0.5, m))
    else:
        G = rng.standard_normal((m, m))
        pol = LinearGaussian(n, m, noise_cov=G @ G.T + 0.2 * np.eye(m))
        theta = pol.params(rng.standard_normal((m, n)))
    x = rng.standard_normal(n)
    u = rng.standard_normal(m)
    fd = central_difference(lambda th: float(pol.log_prob(th, x, u)), theta)
    # truncation h^4 f^(5) / 30 with h = 1e-4 and f a degree-2 polynomial (K) or exp(-2l) (log std):
    # error ~ 1e-16 |f|; rounding ~ eps |log_prob| / h ~ 1e-11
    np.testing.assert_allclose(pol.score(theta, x, u), fd, rtol=1e-7, atol=1e-7)


def test_log_prob_matches_scipy():
    from scipy.stats import multivariate_normal

    cov = np.array([[0.5, 0.1], [0.1, 0.3]])
    pol = LinearGaussian(3, 2, noise_cov=cov)
    K = np.arange(6.0).reshape(2, 3) / 10
    x = np.array([0.3, -1.0, 2.0])
    u = np.array([0.1, 0.4])
    want = multivariate_normal(mean=-K @ x, cov=cov).logpdf(u)
    assert abs(pol.log_prob(pol.params(K), x, u) - want) < 1e-13


def test_sample_moments_and_seed():
    """Sample mean/covariance of u | x against N(-Kx, Sigma_u); false-alarm probability < 1e-6
    per coordinate (|z| < 5.3 for the mean; covariance entries within 6 standard errors)."""
    cov = np.array([[0.5, 0.1], [0.1, 0.3]])
    pol = LinearGaussian(1, 2, noise_cov=cov)
    theta = pol.params([[1.0], [-2.0]])
    x = np.ones((200_000, 1))
    u = pol.sample(theta, x, seed=3)
    np.testing.assert_array_equal(u, pol.sample(theta, x, seed=3))
    N = u.shape[0]
    z = (u.mean(axis=0) - np.array([-1.0, 2.0])) / np.sqrt(np.diag(cov) / N)
    assert np.all(np.abs(z) < 5.3)
    emp = np.cov(u.T)
    se = np.sqrt((cov**2 + np.outer(np.diag(cov), np.diag(cov))) / N)  # Var of a Gaussian sample covariance
    assert np.all(np.abs(emp - cov) < 6 * se)
    det = LinearGaussian(1, 2)
    np.testing.assert_array_equal(det.sample(theta, x[:5], seed=0), np.tile([-1.0, 2.0], (5, 1)))
