"""The LQR API: cross cost N, noise as a factor, Riccati without Sigma0, argument order, sizes."""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

from pgexact import LQR, LinearGaussian
from pgexact.estimators import Estimate
from pgexact.lqr import (
    LQRTrajectories,
    cost_gradient,
    dpg,
    evaluate,
    natural_gradient,
    optimal_gain,
    policy_gradient,
    reinforce,
    reinforce_baseline,
    reinforce_to_go,
    riccati,
    rollout,
)
from pgexact.theorems.lqr import central_difference


def _cross_lqr(seed: int = 0, gamma: float = 0.9, horizon=None, n: int = 3, m: int = 2) -> LQR:
    """Random LQR with a cross cost N such that [[Q, N], [N', R]] is positive definite."""
    rng = np.random.default_rng(seed)
    M = rng.standard_normal((n + m, n + m))
    J = M @ M.T / (n + m) + 0.5 * np.eye(n + m)
    A = rng.standard_normal((n, n))
    A *= 1.1 / np.max(np.abs(np.linalg.eigvals(A)))
    return LQR(A, rng.standard_normal((n, m)), J[:n, :n], J[n:, n:], N=J[:n, n:], gamma=gamma,
               Sigma0=np.eye(n), noise_factor=0.3 * rng.standard_normal((n, 2)), horizon=horizon)


def test_cross_cost_riccati_against_scipy_s_argument():
    """P* from scipy.linalg.solve_discrete_are(sqrt(g) A, sqrt(g) B, Q, R, s=N) (an independent
    solver: the discounted problem is the undiscounted one with A, B scaled by sqrt(gamma));
    K* is a stationary point of C, and evaluating K* reproduces P* (policy evaluation and the
    DARE are different algorithms)."""
    lqr = _cross_lqr()
    s = np.sqrt(lqr.gamma)
    P_ref = scipy.linalg.solve_discrete_are(s * lqr.A, s * lqr.B, lqr.Q, lqr.R, s=lqr.N)
    oc = riccati(lqr)
    np.testing.assert_allclose(oc.P, P_ref, rtol=1e-10)
    K_ref = np.linalg.solve(lqr.R + lqr.gamma * lqr.B.T @ P_ref @ lqr.B,
                            lqr.gamma * lqr.B.T @ P_ref @ lqr.A + lqr.N.T)
    np.testing.assert_allclose(oc.K, K_ref, rtol=1e-10)
    ev = evaluate(lqr, oc.K)
    np.testing.assert_allclose(ev.P, P_ref, rtol=1e-9)
    assert ev.cost == pytest.approx(oc.cost, rel=1e-11)
    assert np.max(np.abs(cost_gradient(lqr, oc.K))) < 1e-9 * oc.cost
    # dropping N changes K* by far more than rounding: the check above sees N
    no_cross = LQR(lqr.A, lqr.B, lqr.Q + 0.0, lqr.R, gamma=lqr.gamma)
    assert np.max(np.abs(optimal_gain(no_cross) - oc.K)) > 1e-3


@pytest.mark.parametrize("horizon", [None, 4])
def test_cross_cost_gradient_and_values(horizon):
    """With N: the gradient against a 4th-order central difference of C, Q(x, u) against the
    one-step Bellman equation with the cost x'Qx + u'Ru + 2x'Nu, and sampled costs."""
    lqr = _cross_lqr(1, horizon=horizon)
    K = optimal_gain(lqr.with_horizon(None)) + 0.05
    Su = 0.2 * np.eye(2)
    ev = evaluate(lqr, K, Su)
    fd = central_difference(lambda k: evaluate(lqr, k.reshape(K.shape), Su).cost, K.reshape(-1))
    np.testing.assert_allclose(cost_gradient(lqr, K, Su).reshape(-1), fd, rtol=1e-6, atol=1e-9 * ev.cost)
    rng = np.random.default_rng(0)
    x, u = rng.standard_normal(3), rng.standard_normal(2)
    c = x @ lqr.Q @ x + u @ lqr.R @ u + 2 * x @ lqr.N @ u
    y = lqr.A @ x + lqr.B @ u
    if horizon is None:
        nxt = y @ ev.P @ y + np.sum(ev.P * lqr.noise_cov) + ev.offset
    else:
        nxt = y @ ev.P[1] @ y + np.sum(ev.P[1] * lqr.noise_cov) + ev.offset[1]
    assert float(ev.Q(x, u)) == pytest.approx(-(c + lqr.gamma * nxt), rel=1e-12)
    pol = LinearGaussian(3, 2, noise_cov=Su)
    ro = rollout(lqr, pol, pol.params(K), 5, seed=0, horizon=4)
    X, U = ro.states, ro.actions
    want = (np.einsum("nti,ij,ntj->nt", X, lqr.Q, X) + np.einsum("nti,ij,ntj->nt", U, lqr.R, U)
            + 2 * np.einsum("nti,ij,ntj->nt", X, lqr.N, U))
    np.testing.assert_allclose(ro.costs, want, rtol=1e-12)


def test_cross_cost_finite_horizon_riccati():
    """Finite horizon with N: the time-varying Riccati gains are a stationary point of
    C(K_0..K_{H-1}) (per-time gradients vanish), their cost equals the Riccati cost, and K_0 tends
    to the infinite-horizon K* as H grows."""
    lqr = _cross_lqr(4, horizon=6)
    oc = riccati(lqr)
    ev = evaluate(lqr, oc.K)
    assert ev.cost == pytest.approx(oc.cost, rel=1e-12)
    assert np.max(np.abs(cost_gradient(lqr, oc.K))) < 1e-11 * oc.cost
    np.testing.assert_allclose(riccati(lqr.with_horizon(400)).K[0], optimal_gain(lqr.with_horizon(None)),
                               rtol=1e-9)


def test_noise_factor_equals_noise_cov():
    """W = C C' (QuantEcon's convention): same model as noise_cov = C C'."""
    lqr = _cross_lqr(2)
    twin = LQR(lqr.A, lqr.B, lqr.Q, lqr.R, N=lqr.N, gamma=lqr.gamma, Sigma0=lqr.Sigma0,
               noise_cov=lqr.noise_factor @ lqr.noise_factor.T)
    K = optimal_gain(lqr)
    assert evaluate(lqr, K).cost == pytest.approx(evaluate(twin, K).cost, rel=1e-13)
    with pytest.raises(ValueError, match="not both"):
        LQR(lqr.A, lqr.B, lqr.Q, lqr.R, gamma=0.9, noise_cov=np.eye(3), noise_factor=np.eye(3))
    with pytest.raises(ValueError, match=r"noise_factor must have shape \(3, k\)"):
        LQR(lqr.A, lqr.B, lqr.Q, lqr.R, gamma=0.9, noise_factor=np.eye(2))


def test_quantecon_lq_convention():
    """QuantEcon's LQ (infinite horizon, discount beta): with u = -F x, the value is
    x'Px + d with d = beta/(1-beta) tr(C'PC). The stationary problem below (permanent-income
    style, n = 1, m = 1, A = 1.05, B = -1, Q = 0.1, R = 1, N = 0.2, C = 0.5, beta = 0.9) is
    solved here by scalar fixed-point iteration of the Riccati map, independently of scipy."""
    a, b, q, r, nn, c, beta = 1.05, -1.0, 0.1, 1.0, 0.2, 0.5, 0.9
    lqr = LQR([[a]], [[b]], [[q]], [[r]], N=[[nn]], gamma=beta, noise_factor=[[c]])
    p = 1.0
    for _ in range(10_000):
        p = q + beta * a * a * p - (beta * a * p * b + nn) ** 2 / (r + beta * b * b * p)
    f = (beta * b * p * a + nn) / (r + beta * b * b * p)
    oc = riccati(lqr)
    assert oc.P[0, 0] == pytest.approx(p, rel=1e-12)
    assert oc.K[0, 0] == pytest.approx(f, rel=1e-12)
    assert oc.offset == pytest.approx(beta / (1 - beta) * c * c * p, rel=1e-12)


def test_sigma0_needed_only_where_x0_is_averaged():
    lqr = LQR([[0.9]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9)
    assert riccati(lqr).cost is None and optimal_gain(lqr).shape == (1, 1)
    with pytest.raises(ValueError, match=r"Sigma0=None: construct it with LQR\(\.\.\., Sigma0=\.\.\.\)"):
        evaluate(lqr, [[0.1]])
    with pytest.raises(ValueError, match="Sigma0=None"):
        rollout(lqr, LinearGaussian(1, 1), [0.1], 3, seed=0, horizon=2)


def test_gamma_is_required_and_validated():
    with pytest.raises(TypeError, match="gamma"):
        LQR([[0.9]], [[1.0]], [[1.0]], [[1.0]])  # type: ignore[call-arg]
    with pytest.raises(ValueError, match="gamma"):
        LQR([[0.9]], [[1.0]], [[1.0]], [[1.0]], gamma=1.5)
    with pytest.raises(ValueError, match="joint cost"):
        LQR([[0.9]], [[1.0]], [[1.0]], [[1.0]], N=[[2.0]], gamma=0.9)


def _sampled():
    lqr = LQR([[0.9]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9, Sigma0=[[1.0]], horizon=3)
    pol = LinearGaussian(1, 1, noise_cov=[[0.25]])
    th = pol.params([[0.2]])
    return lqr, pol, th, rollout(lqr, pol, th, 10, seed=0)


@pytest.mark.parametrize("fn", [reinforce, reinforce_to_go])
def test_estimators_take_samples_policy_theta_and_return_estimate(fn):
    lqr, pol, th, ro = _sampled()
    est = fn(ro, pol, th)
    assert isinstance(est, Estimate) and isinstance(ro, LQRTrajectories)
    assert est.samples.shape == (10, 1) and est.std_error.shape == (1,)
    assert ro.n_steps == 3 and ro.n_states == 1 and ro.n_actions == 1
    assert pol.n_states == 1 and pol.n_actions == 1 and lqr.n_states == 1 and lqr.n_actions == 1


def test_wrong_argument_order_blames_the_misplaced_argument():
    lqr, pol, th, ro = _sampled()
    with pytest.raises(TypeError, match=r"reinforce takes \(samples, policy, theta, \.\.\.\) in this order: "
                                        r"samples is the LinearGaussian policy, theta is the LQRTrajectories"):
        reinforce(pol, th, ro)
    with pytest.raises(TypeError, match=r"policy is the LQRTrajectories, theta is the LinearGaussian"):
        reinforce_to_go(th, ro, pol)
    with pytest.raises(TypeError, match=r"samples must be pgexact.lqr.LQRTrajectories .*got list"):
        reinforce([1.0], pol, th)
    with pytest.raises(TypeError, match=r"policy must be a pgexact.LinearGaussian, got str"):
        dpg(ro, "pol", th, lambda t, x, u: u)
    with pytest.raises(ValueError, match="theta must have length n_params=1"):
        reinforce_baseline(ro, pol, [0.1, 0.2], lambda t, x: np.zeros(len(x)))
    with pytest.raises(TypeError, match=r"lqr must be a pgexact.LQR, got LinearGaussian \(the exact functions take"):
        policy_gradient(pol, lqr, th)
    with pytest.raises(TypeError, match="K must be a gain matrix"):
        evaluate(lqr, pol)


def test_natural_gradient_refuses_where_fisher_does():
    """A degenerate action covariance (rank 1 of 2): the Fisher matrix does not exist, and the
    natural gradient says the same instead of returning zeros in the degenerate direction."""
    lqr = _cross_lqr(3)
    pol = LinearGaussian(3, 2, noise_cov=np.diag([0.3, 0.0]))
    th = pol.params(optimal_gain(lqr) + 0.05)
    from pgexact.lqr import fisher

    with pytest.raises(ValueError, match="Fisher matrix of a deterministic \\(or degenerate\\) policy does not exist"):
        fisher(lqr, pol, th)
    with pytest.raises(ValueError, match="natural gradient of a deterministic \\(or degenerate\\) policy does not exist"):
        natural_gradient(lqr, pol, th)
