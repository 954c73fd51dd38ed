"""Soft (entropy-regularized) LQR and DDPG's off-policy gradient against independent computations."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.optimize

from pgexact import LQR, LinearGaussian
from pgexact.lqr import (
    ddpg_bias,
    ddpg_gradient,
    evaluate,
    gaussian_entropy,
    optimal_gain,
    policy_gradient,
    soft_evaluate,
    soft_optimal,
    soft_policy_iteration,
)
from pgexact.theorems.lqr import central_difference, random_lqr, reference_cost


def _gauss_hermite(cov, k=5):
    """Nodes and weights of a tensor Gauss-Hermite rule for N(0, cov) (exact to degree 2k - 1 per axis)."""
    z, w = np.polynomial.hermite_e.hermegauss(k)
    w = w / w.sum()
    d = cov.shape[0]
    L = np.linalg.cholesky(cov)
    pts = np.array(list(itertools.product(z, repeat=d))) @ L.T
    wts = np.prod(np.array(list(itertools.product(w, repeat=d))), axis=1)
    return pts, wts


def _soft_objective(lqr, alpha, K, L):
    """J_alpha by an independent route: primal-side cost (Kronecker solve) and the entropy of
    N(0, L L') from the Cholesky diagonal, H = m/2 log(2 pi e) + sum log |L_ii|."""
    S = L @ L.T
    m = S.shape[0]
    H = 0.5 * m * np.log(2 * np.pi * np.e) + np.sum(np.log(np.abs(np.diag(L))))
    return -reference_cost(lqr, K, S) + alpha * H / (1 - lqr.gamma)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_soft_optimum_against_direct_optimization(seed):
    """(K*, Sigma*) and J* in closed form against BFGS on the soft objective over (K, chol Sigma)
    evaluated independently; BFGS stops at gradient norm 1e-9, so parameters agree to ~1e-5."""
    lqr = random_lqr(np.random.default_rng(seed), n=2, m=2, noise=True, gamma=0.8)
    alpha = 0.7
    opt = soft_optimal(lqr, alpha)
    n, m = 2, 2
    tril = np.tril_indices(m)

    def unpack(v):
        K = v[: m * n].reshape(m, n)
        L = np.zeros((m, m))
        L[tril] = v[m * n:]
        return K, L

    def f(v):
        K, L = unpack(v)
        if np.max(np.abs(np.linalg.eigvals(np.sqrt(lqr.gamma) * (lqr.A - lqr.B @ K)))) >= 1:
            return np.inf  # the Kronecker solve has a (meaningless) solution beyond the stability region
        return -_soft_objective(lqr, alpha, K, L)

    v0 = np.concatenate([(opt.K + 0.1).reshape(-1), np.eye(m)[tril]])
    with np.errstate(invalid="ignore"):  # BFGS's difference steps may leave the stability region (f = inf)
        res = scipy.optimize.minimize(f, v0, method="BFGS", options={"gtol": 1e-9, "maxiter": 5000})
    K, L = unpack(res.x)
    np.testing.assert_allclose(K, opt.K, atol=1e-5)
    np.testing.assert_allclose(L @ L.T, opt.action_cov, atol=1e-5)
    assert -res.fun == pytest.approx(opt.J, rel=1e-9)  # the value is second-order accurate


def test_soft_bellman_equations_by_quadrature():
    """For a non-optimal Gaussian policy: V(x) = E_u[Q(x, u) - alpha log pi(u|x)] (Gauss-Hermite over
    u, the policy's own log density) and Q(x, u) = r(x, u) + gamma E_w V(Ax + Bu + w) (Gauss-Hermite
    over w); and for the soft-optimal policy V*(x) = alpha log int exp(Q*(x, u)/alpha) du."""
    lqr = random_lqr(np.random.default_rng(5), n=2, m=2, noise=True, gamma=0.85)
    alpha = 0.4
    K = optimal_gain(lqr) + 0.1
    Su = np.array([[0.3, 0.05], [0.05, 0.2]])
    se = soft_evaluate(lqr, K, Su, alpha)
    pol = LinearGaussian(2, 2, noise_cov=Su)
    th = pol.params(K)
    upts, uw = _gauss_hermite(Su)
    wpts, ww = _gauss_hermite(np.array(lqr.noise_cov))
    rng = np.random.default_rng(0)
    for _ in range(3):
        x = rng.standard_normal(2)
        U = -K @ x + upts
        X = np.broadcast_to(x, U.shape)
        EV = np.sum(uw * (se.Q(X, U) - alpha * pol.log_prob(th, X, U)))
        assert EV == pytest.approx(float(se.V(x)), rel=1e-12)
        u = rng.standard_normal(2)
        r = -(x @ lqr.Q @ x + u @ lqr.R @ u + 2 * x @ lqr.N @ u)
        nxt = np.sum(ww * se.V(lqr.A @ x + lqr.B @ u + wpts))
        assert float(se.Q(x, u)) == pytest.approx(r + lqr.gamma * nxt, rel=1e-12)
    opt = soft_optimal(lqr, alpha)
    star = soft_evaluate(lqr, opt.K, opt.action_cov, alpha)
    x = rng.standard_normal(2)
    # log-partition by Gauss-Hermite: int exp(Q/alpha) du = E_{u ~ N(-K*x, S*)}[exp(Q/alpha) / pdf(u)],
    # and exp(Q/alpha)/pdf is constant in u at the optimum, so 5 nodes are exact
    pts, wts = _gauss_hermite(np.array(opt.action_cov))
    U = -opt.K @ x + pts
    X = np.broadcast_to(x, U.shape)
    pol_star = LinearGaussian(2, 2, noise_cov=opt.action_cov)
    logZ = np.log(np.sum(wts * np.exp(star.Q(X, U) / alpha - pol_star.log_prob(pol_star.params(opt.K), X, U))))
    assert alpha * logZ == pytest.approx(float(opt.V(x)), rel=1e-11)
    np.testing.assert_allclose(opt.Q(X, U), star.Q(X, U), rtol=1e-11)  # closed-form Q* = soft Q of pi*
    assert float(star.V(x)) == pytest.approx(float(opt.V(x)), rel=1e-11)


def test_soft_policy_iteration_improves_monotonically_and_converges():
    lqr = random_lqr(np.random.default_rng(9), n=3, m=2, noise=True, gamma=0.9)
    alpha = 0.3
    K0 = optimal_gain(lqr) + 0.2
    S0 = np.eye(2)
    prev = soft_evaluate(lqr, K0, S0, alpha).J
    its = soft_policy_iteration(lqr, K0, alpha, n_iterations=8)
    for K, S in its:
        J = soft_evaluate(lqr, K, S, alpha).J
        assert J >= prev - 1e-12 * abs(prev)  # soft policy improvement (Haarnoja et al. 2018, Lemma 2)
        prev = J
    opt = soft_optimal(lqr, alpha)
    np.testing.assert_allclose(its[-1][0], opt.K, rtol=1e-11, atol=1e-13)
    np.testing.assert_allclose(its[-1][1], opt.action_cov, rtol=1e-11)
    assert gaussian_entropy(opt.action_cov) == pytest.approx(soft_evaluate(lqr, opt.K, opt.action_cov, alpha).entropy)
    with pytest.raises(ValueError, match="alpha must be a positive finite number"):
        soft_optimal(lqr, 0.0)
    with pytest.raises(ValueError, match="infinite horizon"):
        soft_optimal(lqr.with_horizon(3), 0.1)


def test_ddpg_with_start_distribution_misses_the_gradient():
    """D = N(0, Sigma0): the DDPG formula, its definition integrated exactly, the true gradient by
    central differences of J (primal-side cost), and the closed-form bias. On this 2-state
    double integrator the DDPG 'gradient' points elsewhere: the bias is of the order of the gradient."""
    lqr = LQR([[1.0, 0.5], [0.0, 1.0]], [[0.0], [1.0]], np.eye(2), [[1.0]], gamma=0.9,
              Sigma0=[[1.0, 0.3], [0.3, 0.5]])
    pol = LinearGaussian(2, 1)
    th = np.array([0.4, 1.2])
    K = pol.gain(th)
    g = ddpg_gradient(lqr, pol, th, state_cov=lqr.Sigma0)
    fd = central_difference(lambda t: -reference_cost(lqr, t.reshape(1, 2)), th)
    np.testing.assert_allclose(g + ddpg_bias(lqr, pol, th, state_cov=lqr.Sigma0), fd, rtol=1e-7)
    np.testing.assert_allclose(fd, policy_gradient(lqr, pol, th), rtol=1e-7)
    # definition: E_{x~D}[grad mu(x)^T grad_u Q(x, mu(x))] with symmetric points +-L[:, k] (quadratic integrand)
    ev = evaluate(lqr, K)
    Lf = np.linalg.cholesky(lqr.Sigma0)
    X = np.concatenate([Lf.T, -Lf.T])
    dq = ev.grad_u_Q(X, X @ -K.T)
    definition = -(dq[:, :, None] * X[:, None, :]).sum(axis=0).reshape(-1) / 2
    np.testing.assert_allclose(g, definition, rtol=1e-12)
    # the DDPG direction is far from the true gradient (here DDPG [-0.497, -0.951], central
    # differences of J [2.140, -2.005]): the first coordinate has the wrong sign
    assert g[0] * fd[0] < 0
    assert np.linalg.norm(g - fd) > 0.5 * np.linalg.norm(fd)
    cos = g @ fd / np.linalg.norm(g) / np.linalg.norm(fd)
    assert cos < 0.99
    # with D the unnormalized discounted visitation, DDPG is the on-policy DPG and exact
    np.testing.assert_allclose(ddpg_gradient(lqr, pol, th, state_cov=ev.Sigma), fd, rtol=1e-7)
    with pytest.raises(ValueError, match="deterministic policy"):
        ddpg_gradient(lqr, LinearGaussian(2, 1, noise_cov=[[0.1]]), th, state_cov=lqr.Sigma0)
