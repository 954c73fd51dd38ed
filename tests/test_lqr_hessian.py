"""Exact LQR cost Hessians (``pgexact.lqr.hessian``) against Richardson differences of the exact
gradient (``cost_gradient`` / ``policy_gradient``: a different code path, the Stein solves of the
evaluation, not the derivative equations), and Newton's quadratic convergence."""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import LQR, LinearGaussian
from pgexact.errors import UnstableGainError
from pgexact.lqr import (
    cost_gradient,
    cost_hessian,
    cost_hessian_vector_product,
    newton_direction,
    optimal_gain,
    policy_gradient,
    policy_hessian,
)


def _system(n, m, seed, horizon=None, gamma=0.9):
    rng = np.random.default_rng(seed)
    A = rng.normal(size=(n, n)) * 0.8 / np.sqrt(n)
    B = rng.normal(size=(n, m))
    L = rng.normal(size=(n, n))
    return LQR(A=A, B=B, Q=np.eye(n) + 0.1 * L @ L.T, R=np.eye(m), gamma=gamma, Sigma0=np.eye(n),
               noise_cov=0.1 * np.eye(n), N=0.1 * rng.normal(size=(n, m)), horizon=horizon)


def _richardson(f, x, directions, h):
    cols = []
    for e in directions:
        d1 = (f(x + h * e) - f(x - h * e)) / (2 * h)
        d2 = (f(x + 2 * h * e) - f(x - 2 * h * e)) / (4 * h)
        cols.append(((4 * d1 - d2) / 3).reshape(-1))  # error O(h^4) + O(eps |g| / h)
    return np.stack(cols, axis=1)


CASES = [(3, 2, None), (2, 1, None), (3, 2, 6), (11, 2, None)]  # n = 11: products by Bartels-Stewart


@pytest.mark.parametrize("case", CASES)
def test_cost_hessian_matches_differences_of_the_gradient(case) -> None:
    n, m, horizon = case
    lqr = _system(n, m, seed=n + m, horizon=horizon)
    rng = np.random.default_rng(1)
    K0 = np.zeros((m, n)) if horizon else optimal_gain(lqr)
    K = K0 + 0.1 * rng.normal(size=(m, n))
    Su = 0.2 * np.eye(m)
    H = cost_hessian(lqr, K, Su)
    ref = _richardson(lambda k: cost_gradient(lqr, k, Su), K, np.eye(m * n).reshape(-1, m, n), 1e-3)
    # Richardson error ~ h^4 |C^(5)| ~ 1e-12 relative; the Stein residuals are <= 1e-8 relative
    # (STEIN_RESIDUAL_RTOL) but Bartels-Stewart/LU reach ~1e-14 on these well-conditioned loops
    assert np.abs(H - ref).max() <= 1e-8 * np.abs(H).max()
    assert np.abs(H - H.T).max() <= 1e-12 * np.abs(H).max()
    X = rng.normal(size=(m, n))
    assert np.allclose(cost_hessian_vector_product(lqr, K, X, Su), (H @ X.reshape(-1)).reshape(m, n),
                       rtol=0, atol=1e-12 * np.abs(H).max() * np.abs(X).sum())


@pytest.mark.parametrize("horizon", [None, 5])
def test_policy_hessian_with_the_log_std_block(horizon) -> None:
    lqr = _system(3, 2, seed=7, horizon=horizon)
    pol = LinearGaussian(3, 2, learn_log_std=True)
    K = (np.zeros((2, 3)) if horizon else optimal_gain(lqr)) + 0.05
    theta = pol.params(K, log_std=[-0.4, -1.2])
    H = policy_hessian(lqr, pol, theta)
    ref = _richardson(lambda t: policy_gradient(lqr, pol, t), theta, np.eye(pol.n_params), 1e-3)
    assert np.abs(H - ref).max() <= 1e-8 * np.abs(H).max()
    assert np.abs(H - H.T).max() <= 1e-12 * np.abs(H).max()
    fixed = LinearGaussian(3, 2, noise_cov=np.diag(np.exp(2 * np.array([-0.4, -1.2]))))
    assert np.allclose(policy_hessian(lqr, fixed, K.reshape(-1)), H[:6, :6], rtol=1e-12, atol=1e-14)


def test_newton_converges_quadratically_to_the_riccati_gain() -> None:
    lqr = LQR(A=[[1.0, 0.3, 0.0], [0.0, 0.9, 0.2], [0.1, 0.0, 0.8]], B=[[0.0], [1.0], [0.5]],
              Q=np.eye(3), R=[[1.0]], gamma=0.95, Sigma0=np.eye(3))
    K_star = optimal_gain(lqr)
    K = K_star + np.array([[0.08, -0.05, 0.06]])
    errors = [np.abs(K - K_star).max()]
    for _ in range(8):
        K = K + newton_direction(lqr, K)
        errors.append(np.abs(K - K_star).max())
    floor = 1e-12 * np.abs(K_star).max()  # K* from the Riccati solver is accurate to about this
    assert errors[-1] <= floor
    ratios = [e1 / e0**2 for e0, e1 in zip(errors, errors[1:]) if e1 > floor]
    assert len(ratios) >= 3  # at least three steps before the rounding floor
    # quadratic: e_{k+1} <= c e_k^2 with c bounded (linear convergence would make it blow up)
    assert max(ratios) <= 10.0
    # a gradient step converges only linearly: its ratio e_{k+1}/e_k^2 grows without bound
    K = K_star + np.array([[0.08, -0.05, 0.06]])
    e = [np.abs(K - K_star).max()]
    for _ in range(20):
        K = K - 0.05 * cost_gradient(lqr, K)
        e.append(np.abs(K - K_star).max())
    assert e[-1] / e[-2] ** 2 > 100.0


def test_bad_input() -> None:
    lqr = _system(2, 1, seed=0)
    with pytest.raises(ValueError, match="X"):
        cost_hessian_vector_product(lqr, np.zeros((1, 2)), np.zeros((2, 1)))
    with pytest.raises(UnstableGainError):
        cost_hessian(lqr, np.array([[-50.0, 0.0]]))
    fin = _system(2, 1, seed=0, horizon=4)
    with pytest.raises(ValueError, match="K must have shape"):
        cost_hessian(fin, np.zeros((3, 1, 2)))  # time-varying gains need one per step
    with pytest.raises(ValueError, match="would need"):
        big = LQR(A=0.5 * np.eye(300), B=np.eye(300), Q=np.eye(300), R=np.eye(300), gamma=0.9,
                  Sigma0=np.eye(300))
        cost_hessian(big, np.zeros((300, 300)))


def test_undiscounted_noise_free_cost_hessian() -> None:
    # gamma = 1, horizon None: the cost tr(P_K Sigma0) of Fazel et al. 2018 (no noise allowed)
    rng = np.random.default_rng(0)
    lqr = LQR(A=rng.normal(size=(3, 3)) * 0.3, B=rng.normal(size=(3, 2)), Q=np.eye(3), R=np.eye(2),
              gamma=1.0, Sigma0=np.eye(3))
    K = 0.1 * rng.normal(size=(2, 3))
    H = cost_hessian(lqr, K)
    ref = _richardson(lambda k: cost_gradient(lqr, k), K, np.eye(6).reshape(-1, 2, 3), 1e-3)
    assert np.abs(H - ref).max() <= 1e-8 * np.abs(H).max()


def test_time_varying_gains_of_a_finite_horizon() -> None:
    lqr = _system(3, 2, seed=4, horizon=4)
    rng = np.random.default_rng(5)
    K = 0.2 * rng.normal(size=(4, 2, 3))
    Su = 0.1 * np.eye(2)
    H = cost_hessian(lqr, K, Su)
    assert H.shape == (24, 24)
    ref = _richardson(lambda k: cost_gradient(lqr, k, Su), K, np.eye(24).reshape(-1, 4, 2, 3), 1e-3)
    assert np.abs(H - ref).max() <= 1e-8 * np.abs(H).max()
    assert np.abs(H - H.T).max() <= 1e-12 * np.abs(H).max()
    X = rng.normal(size=(4, 2, 3))
    assert np.allclose(cost_hessian_vector_product(lqr, K, X, Su).reshape(-1), H @ X.reshape(-1),
                       rtol=0, atol=1e-12 * np.abs(H).max() * np.abs(X).sum())
    # a stationary K is the time-varying one with equal blocks, summed over t
    Ks = K[0]
    Hs = cost_hessian(lqr, Ks, Su)
    Hv = cost_hessian(lqr, np.broadcast_to(Ks, (4, 2, 3)), Su).reshape(4, 6, 4, 6)
    assert np.allclose(Hv.sum(axis=(0, 2)), Hs, rtol=1e-12, atol=1e-12 * np.abs(Hs).max())
