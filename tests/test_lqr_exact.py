"""Exact LQR quantities against independent computations and published values."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
import scipy.linalg

from pgexact import LQR, LinearGaussian
from pgexact.errors import NumericalError, UnstableGainError
from pgexact.lqr import (
    cost_and_gradient,
    cost_gradient,
    evaluate,
    fisher,
    gauss_newton_direction,
    natural_gradient,
    noise_gradient,
    npg_direction,
    optimal_gain,
    policy_gradient,
    riccati,
    spectral_radius,
)
from pgexact.theorems.lqr import (
    central_difference,
    dpg_expectation,
    random_lqr,
    random_problem,
    score_expectation,
)


# ----------------------------------------------------------------------------- published values
def test_altair_dlqr_example():
    """Altair Activate/Compose OML ``dlqr`` documentation example (2022.help.altair.com, topics/
    reference/oml_language/ControlSystem/dlqr.htm): A = [9, 0.2; 0, 8], B = [0; 1],
    Q = [2, 1; 1, 2], R = 1 prints K = [394.61003 16.76761],
    X = [1.04036e+07 2.34349e+05; 2.34349e+05 5.34387e+03], closed-loop poles 0.11073, 0.12166.
    gamma = 1, no noise: our K*, P* must agree to the printed digits (half a unit of the last)."""
    lqr = LQR(A=[[9, 0.2], [0, 8]], B=[[0], [1]], Q=[[2, 1], [1, 2]], R=[[1]], gamma=1.0, Sigma0=np.eye(2))
    oc = riccati(lqr)
    np.testing.assert_allclose(oc.K, [[394.61003, 16.76761]], rtol=0, atol=0.5e-5)
    np.testing.assert_allclose(oc.P, [[1.04036e7, 2.34349e5], [2.34349e5, 5.34387e3]], rtol=0.5e-5)
    poles = np.sort(np.abs(np.linalg.eigvals(lqr.A - lqr.B @ oc.K)))
    np.testing.assert_allclose(poles, [0.11073, 0.12166], rtol=0, atol=0.5e-5)
    # and the policy-evaluation side reproduces P* at K*: P_{K*} = P*
    np.testing.assert_allclose(evaluate(lqr, oc.K).P, oc.P, rtol=1e-9)


def test_altair_dare_example():
    """Altair Compose OML ``dare`` documentation example (2021.help.altair.com, topics/reference/
    oml_language/ControlSystem/dare.htm): A = [4 1.7; 0.9 38], B = [8; 21], Q = q'q with
    q = [10, -1], r = 3 prints X = [1704.70115 -5616.08147; -5616.08147 19597.56409],
    L = [0.00296; 0.02222], G = [-0.01271 2.00364]."""
    q = np.array([[10.0, -1.0]])
    lqr = LQR(A=[[4, 1.7], [0.9, 38]], B=[[8], [21]], Q=q.T @ q, R=[[3]], gamma=1.0)
    oc = riccati(lqr)
    np.testing.assert_allclose(oc.P, [[1704.70115, -5616.08147], [-5616.08147, 19597.56409]], rtol=0, atol=0.5e-5)
    np.testing.assert_allclose(oc.K, [[-0.01271, 2.00364]], rtol=0, atol=0.5e-5)
    poles = np.sort(np.abs(np.linalg.eigvals(lqr.A - lqr.B @ oc.K)))
    np.testing.assert_allclose(poles, [0.00296, 0.02222], rtol=0, atol=0.5e-5)


# ----------------------------------------------------------------------------- Lyapunov solves
@pytest.mark.parametrize("n, m", [(3, 2), (12, 4), (30, 5)])
def test_P_and_Sigma_against_scipy_and_truncated_sums(n, m):
    """P_K and Sigma_K (Schur-sharing path for n >= 10) against two independent references:
    scipy.linalg.solve_discrete_lyapunov and the truncated series sum_t gamma^t (...)
    (300 terms: truncation rho^600 < 1e-27 at rho <= 0.9)."""
    p = random_problem(np.random.default_rng(n + 1), n=n, m=m, noise=True, gamma=0.9)
    lqr, K = p.lqr, p.policy.gain(p.theta)
    Su = 0.2 * np.eye(m)
    ev = evaluate(lqr, K, Su)
    a = np.sqrt(0.9) * (lqr.A - lqr.B @ K)
    WK = lqr.noise_cov + lqr.B @ Su @ lqr.B.T
    qS = lqr.Sigma0 + 9.0 * WK
    qP = lqr.Q + K.T @ lqr.R @ K
    S_ref = scipy.linalg.solve_discrete_lyapunov(a, qS, method="direct" if n < 20 else "bilinear")
    P_ref = scipy.linalg.solve_discrete_lyapunov(a.T, qP, method="direct" if n < 20 else "bilinear")
    S_sum, P_sum = np.zeros((n, n)), np.zeros((n, n))
    X, Y = qS.copy(), qP.copy()
    for _ in range(300):
        S_sum += X
        P_sum += Y
        X, Y = a @ X @ a.T, a.T @ Y @ a
    for got, ref in ((ev.Sigma, S_ref), (ev.P, P_ref), (ev.Sigma, S_sum), (ev.P, P_sum)):
        # condition number of the Stein operator <= 1/(1 - rho^2) ~ 5: 1e-12 leaves 1e3 x margin
        np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12 * np.max(np.abs(ref)))
    assert ev.spectral_radius == pytest.approx(np.max(np.abs(np.linalg.eigvals(a))), rel=1e-12)


def test_infinite_horizon_is_limit_of_finite_recursion():
    """Infinite-horizon cost, P and Sigma (Lyapunov) = finite-horizon recursion with H = 400
    (gamma^400 rho^800 < 1e-30): two independent algorithms."""
    p = random_problem(np.random.default_rng(5), n=3, m=2, noise=True, gamma=0.9, stochastic=True)
    K, Su = p.policy.gain(p.theta), p.policy.action_cov(p.theta)
    inf = evaluate(p.lqr, K, Su)
    fin = evaluate(p.lqr.with_horizon(400), K, Su)
    assert fin.cost == pytest.approx(inf.cost, rel=1e-12)
    np.testing.assert_allclose(fin.P[0], inf.P, rtol=1e-12)
    np.testing.assert_allclose(fin.Sigma, inf.Sigma, rtol=1e-12)
    np.testing.assert_allclose(cost_gradient(p.lqr.with_horizon(400), K, Su), cost_gradient(p.lqr, K, Su),
                               rtol=1e-11, atol=1e-11 * inf.cost)
    np.testing.assert_allclose(noise_gradient(p.lqr.with_horizon(400), K, Su), noise_gradient(p.lqr, K, Su),
                               rtol=1e-11)


def test_finite_horizon_by_enumeration_of_one_step():
    """H = 1 and H = 2 by hand: C = tr((Q + K'RK) S0) + tr(R Su) (+ gamma E[c_1])."""
    lqr = LQR(A=[[1.1]], B=[[0.5]], Q=[[2.0]], R=[[3.0]], Sigma0=[[0.7]], gamma=0.8,
              noise_cov=[[0.2]], horizon=2)
    k, su = 0.4, 0.3
    c0 = (2 + 3 * k * k) * 0.7 + 3 * su
    s1 = (1.1 - 0.5 * k) ** 2 * 0.7 + 0.2 + 0.25 * su
    c1 = (2 + 3 * k * k) * s1 + 3 * su
    assert evaluate(lqr, [[k]], [[su]]).cost == pytest.approx(c0 + 0.8 * c1, rel=1e-15)
    assert evaluate(lqr.with_horizon(1), [[k]], [[su]]).cost == pytest.approx(c0, rel=1e-15)


# ----------------------------------------------------------------------------- unstable gains
@pytest.mark.parametrize("n", [2, 12])
def test_unstable_gain_raises_with_spectral_radius(n):
    rng = np.random.default_rng(0)
    A = rng.standard_normal((n, n))
    A *= 1.5 / np.max(np.abs(np.linalg.eigvals(A)))
    lqr = LQR(A, np.eye(n)[:, :1], np.eye(n), np.eye(1), Sigma0=np.eye(n), gamma=0.9)
    K = np.zeros((1, n))
    rho = np.sqrt(0.9) * 1.5
    with pytest.raises(UnstableGainError, match=r"spectral radius of sqrt\(gamma\) \(A - B K\) is 1\.4230") as exc:
        evaluate(lqr, K)
    assert exc.value.spectral_radius == pytest.approx(rho, rel=1e-12)
    for fn in (cost_gradient, npg_direction, gauss_newton_direction):
        with pytest.raises(UnstableGainError):
            fn(lqr, K)
    assert spectral_radius(lqr, K) == pytest.approx(rho, rel=1e-12)


def test_discount_changes_stability_and_gamma_one():
    """rho(A) = 1.2: K = 0 is stabilizing for gamma = 0.5 (sqrt(0.5) 1.2 < 1), not for gamma = 1."""
    A = np.diag([1.2, 0.5])
    kw = dict(B=np.ones((2, 1)), Q=np.eye(2), R=np.eye(1), Sigma0=np.eye(2))
    assert np.isfinite(evaluate(LQR(A, gamma=0.5, **kw), np.zeros((1, 2))).cost)
    with pytest.raises(UnstableGainError):
        evaluate(LQR(A, gamma=1.0, **kw), np.zeros((1, 2)))
    with pytest.raises(UnstableGainError):  # eigenvalue exactly on the unit circle
        evaluate(LQR(np.diag([1.0, 0.5]), gamma=1.0, **kw), np.zeros((1, 2)))
    # gamma = 1 without noise: C = tr(P Sigma0) = sum_t tr(Q A^t A^t') for the diagonal system
    lqr = LQR(np.diag([0.5, 0.2]), gamma=1.0, **kw)
    assert evaluate(lqr, np.zeros((1, 2))).cost == pytest.approx(1 / 0.75 + 1 / 0.96, rel=1e-14)
    with pytest.raises(ValueError, match="gamma=1 and horizon=None with policy noise"):
        evaluate(lqr, np.zeros((1, 2)), noise_cov=[[0.1]])


def test_bad_input_exact():
    lqr = LQR(np.eye(2) * 0.5, np.ones((2, 1)), np.eye(2), np.eye(1), Sigma0=np.eye(2), gamma=0.9)
    with pytest.raises(ValueError, match=r"K must have shape \(1, 2\)"):
        evaluate(lqr, np.zeros((2, 1)))
    with pytest.raises(ValueError, match=r"K\[0, 1\] is nan"):
        evaluate(lqr, [[0.0, np.nan]])
    with pytest.raises(ValueError, match=r"noise_cov must have shape \(1, 1\)"):
        evaluate(lqr, np.zeros((1, 2)), noise_cov=np.eye(2))
    with pytest.raises(ValueError, match="theta must have length n_params=2"):
        policy_gradient(lqr, LinearGaussian(2, 1), np.zeros(3))
    with pytest.raises(ValueError, match=r"policy has \(n_states, n_actions\) = \(3, 1\)"):
        policy_gradient(lqr, LinearGaussian(3, 1), np.zeros(3))
    with pytest.raises(TypeError, match="lqr must be a pgexact.LQR"):
        evaluate("lqr", np.zeros((1, 2)))
    with pytest.raises(ValueError, match="infinite horizon"):
        npg_direction(lqr.with_horizon(3), np.zeros((1, 2)))
    with pytest.raises(ValueError, match="deterministic"):
        fisher(lqr, LinearGaussian(2, 1), np.zeros(2))


# ----------------------------------------------------------------------------- V, Q, A
def _e_points(Su):
    """Symmetric points +-M[:, l] (M M' = Su): exact for the mean of a quadratic in e when the
    constant part is added separately (see _expect_quadratic)."""
    lam, V = np.linalg.eigh(Su)
    return (V * np.sqrt(np.clip(lam, 0, None))).T


def _expect_quadratic(f, mean, pts):
    """E[f(mean + e)] for f quadratic, e ~ N(0, M M'): f(mean) + sum_l (f(+) + f(-) - 2 f(mean)) / 2."""
    f0 = f(mean)
    return f0 + sum((f(mean + p) + f(mean - p) - 2 * f0) / 2 for p in pts)


@pytest.mark.parametrize("horizon", [None, 4])
def test_bellman_identities(horizon):
    """V(x) = E_{u~pi} Q(x, u), E_u A(x, u) = 0, and Q(x, u) = -c(x, u) + gamma E_w V'(Ax + Bu + w)
    with exact symmetric-point expectations (quadratic integrands)."""
    p = random_problem(np.random.default_rng(11), n=3, m=2, noise=True, gamma=0.85, stochastic=True,
                       horizon=horizon)
    lqr, pol, th = p.lqr, p.policy, p.theta
    ev = evaluate(lqr, pol.gain(th), pol.action_cov(th))
    rng = np.random.default_rng(0)
    e_pts, w_pts = _e_points(pol.action_cov(th)), _e_points(lqr.noise_cov)
    for t in range(horizon or 1):
        x = rng.standard_normal(3)
        mu = pol.mean(th, x)
        EQ = _expect_quadratic(lambda u: float(ev.Q(x, u, t)), mu, e_pts)
        assert EQ == pytest.approx(float(ev.V(x, t)), rel=1e-12)
        assert abs(_expect_quadratic(lambda u: float(ev.A(x, u, t)), mu, e_pts)) < 1e-12 * abs(EQ)
        u = rng.standard_normal(2)
        c = x @ lqr.Q @ x + u @ lqr.R @ u + 2 * x @ lqr.N @ u
        last = horizon is not None and t == horizon - 1
        nxt = 0.0 if last else _expect_quadratic(
            lambda y: float(ev.V(y, 0 if horizon is None else t + 1)), lqr.A @ x + lqr.B @ u, w_pts)
        assert float(ev.Q(x, u, t)) == pytest.approx(-c + lqr.gamma * nxt, rel=1e-12)
        # grad_u Q against a central difference (Q is quadratic in u: exact up to rounding)
        h = 1e-3
        fd = [(float(ev.Q(x, u + h * e, t)) - float(ev.Q(x, u - h * e, t))) / (2 * h) for e in np.eye(2)]
        np.testing.assert_allclose(ev.grad_u_Q(x, u, t), fd, rtol=1e-8, atol=1e-8 * abs(c))


# ----------------------------------------------------------------------------- gradients
@pytest.mark.parametrize("seed", range(4))
def test_cost_gradient_central_difference(seed):
    """grad_K C (closed form) vs a 4th-order central difference of C (see theorems.lqr FD_REASON)."""
    p = random_problem(np.random.default_rng(seed), stochastic=True, noise=True,
                       horizon=None if seed % 2 else 3)
    K, Su = p.policy.gain(p.theta), p.policy.action_cov(p.theta)
    cost, G = cost_and_gradient(p.lqr, K, Su)
    fd = central_difference(lambda k: evaluate(p.lqr, k.reshape(K.shape), Su).cost, K.reshape(-1))
    np.testing.assert_allclose(G.reshape(-1), fd, rtol=1e-6, atol=1e-9 * cost)
    Gs = noise_gradient(p.lqr, K, Su)
    # parametrize Su = (S + S')/2 so each entry may be perturbed alone: d C / d S_ij = G_ij for a
    # symmetric G with dC = tr(G dSu) (perturbations of 2e-4 keep Su = 0.3 I positive definite)
    fds = central_difference(
        lambda s: evaluate(p.lqr, K, 0.5 * (s.reshape(Su.shape) + s.reshape(Su.shape).T)).cost, Su.reshape(-1))
    np.testing.assert_allclose(Gs.reshape(-1), fds, rtol=1e-6, atol=1e-9 * cost)


def test_time_varying_gradient_and_finite_riccati():
    """Finite horizon: the time-varying Riccati gains are a stationary point of C(K_0..K_{H-1})
    (per-time gradients vanish), their cost equals the Riccati cost, perturbing them costs more,
    and the per-t gradient matches central differences."""
    lqr = random_lqr(np.random.default_rng(3), n=3, m=2, noise=True, gamma=0.95, horizon=5)
    oc = riccati(lqr)
    assert oc.K.shape == (5, 2, 3)
    ev = evaluate(lqr, oc.K)
    assert ev.cost == pytest.approx(oc.cost, rel=1e-13)
    np.testing.assert_allclose(ev.P, oc.P, rtol=1e-12, atol=1e-12 * np.max(oc.P))
    G = cost_gradient(lqr, oc.K)
    assert np.max(np.abs(G)) < 1e-12 * oc.cost
    rng = np.random.default_rng(0)
    Kp = oc.K + 0.1 * rng.standard_normal(oc.K.shape)
    assert evaluate(lqr, Kp).cost > oc.cost
    fd = central_difference(lambda k: evaluate(lqr, k.reshape(Kp.shape)).cost, Kp.reshape(-1))
    np.testing.assert_allclose(cost_gradient(lqr, Kp).reshape(-1), fd, rtol=1e-6, atol=1e-9 * oc.cost)
    # long horizon: K_0 tends to the infinite-horizon K*
    K_long = riccati(lqr.with_horizon(300)).K[0]
    np.testing.assert_allclose(K_long, optimal_gain(lqr.with_horizon(None)), rtol=1e-10, atol=1e-12)


def test_optimal_gain_beats_perturbations_and_noise_only_adds_cost():
    lqr = random_lqr(np.random.default_rng(8), n=3, m=2, noise=True, gamma=0.9)
    oc = riccati(lqr)
    rng = np.random.default_rng(1)
    for _ in range(20):
        K = oc.K + 0.05 * rng.standard_normal(oc.K.shape)
        assert evaluate(lqr, K).cost >= oc.cost
    Su = 0.1 * np.eye(2)
    G = noise_gradient(lqr, oc.K, Su)
    assert evaluate(lqr, oc.K, Su).cost == pytest.approx(oc.cost + np.sum(G * Su), rel=1e-13)  # affine


# ----------------------------------------------------------------------------- Fisher, NPG, GN
def _gh(d, k=3):
    """Tensor Gauss-Hermite rule for N(0, I_d): exact for polynomials of degree <= 2k - 1 per axis."""
    z, w = np.polynomial.hermite_e.hermegauss(k)
    w = w / w.sum()
    pts = np.array(list(itertools.product(z, repeat=d)))
    wts = np.prod(np.array(list(itertools.product(w, repeat=d))), axis=1)
    return pts, wts


@pytest.mark.parametrize("learn", [False, True])
@pytest.mark.parametrize("horizon", [None, 4])
def test_fisher_by_quadrature(learn, horizon):
    """F = E_{x~d, u~pi}[score score'] by Gauss-Hermite quadrature over x ~ N(0, X) and
    e ~ N(0, Su) (integrand of degree <= 4 in each: 3 nodes per axis are exact)."""
    p = random_problem(np.random.default_rng(4), n=2, m=2, noise=True, gamma=0.9,
                       stochastic=True, learn_log_std=learn, horizon=horizon)
    pol, th = p.policy, p.theta
    ev = evaluate(p.lqr, pol.gain(th), pol.action_cov(th))
    mass = 10.0 if horizon is None else sum(0.9**t for t in range(horizon))
    Lx = np.linalg.cholesky(ev.Sigma / mass)
    Le = np.linalg.cholesky(pol.action_cov(th))
    zx, wx = _gh(2)
    ze, we = _gh(2)
    X = zx @ Lx.T
    F = np.zeros((pol.n_params, pol.n_params))
    for x, a in zip(X, wx):
        U = pol.mean(th, x) + ze @ Le.T
        S = pol.score(th, np.broadcast_to(x, (len(U), 2)), U)
        F += a * np.einsum("q,qi,qj->ij", we, S, S)
    np.testing.assert_allclose(fisher(p.lqr, pol, th), F, rtol=1e-12, atol=1e-12 * np.max(np.abs(F)))
    ng = natural_gradient(p.lqr, pol, th)
    np.testing.assert_allclose(F @ ng, policy_gradient(p.lqr, pol, th), rtol=1e-10,
                               atol=1e-10 * np.max(np.abs(policy_gradient(p.lqr, pol, th))))


def test_natural_gradient_is_scaled_fazel_direction():
    """Infinite horizon, fixed Su: F^{-1} grad J (K block) = -Su (grad C Sigma_K^{-1}) / (1 - gamma)."""
    p = random_problem(np.random.default_rng(6), n=3, m=2, noise=True, gamma=0.8, stochastic=True)
    K, Su = p.policy.gain(p.theta), p.policy.action_cov(p.theta)
    ng = natural_gradient(p.lqr, p.policy, p.theta).reshape(K.shape)
    ev = evaluate(p.lqr, K, Su)
    fazel = cost_gradient(p.lqr, K, Su) @ np.linalg.inv(ev.Sigma)  # independent: explicit inverse
    np.testing.assert_allclose(npg_direction(p.lqr, K, Su), fazel, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(ng, -Su @ fazel / 0.2, rtol=1e-9, atol=1e-12)


def _instance():
    # open-loop unstable double integrator, discounted, with process noise
    return LQR(A=[[1.0, 0.5], [0.0, 1.05]], B=[[0.1], [1.0]], Q=np.eye(2), R=[[0.5]], Sigma0=np.eye(2),
               gamma=0.9, noise_cov=0.05 * np.eye(2))


def test_gradient_descent_converges_to_optimum():
    """Exact gradient descent K <- K - eta grad C converges to K* (Fazel et al. 2018, Theorem 7,
    gradient descent) with monotonically decreasing cost; eta is 1/(2 L) with L = max |eig| of the
    Hessian at K0 estimated by differences of the exact gradient."""
    lqr = _instance()
    Kstar = optimal_gain(lqr)
    K = np.array([[1.0, 1.6]])
    assert spectral_radius(lqr, K) < 1
    h = 1e-5
    H = np.array([(cost_gradient(lqr, K + h * e.reshape(1, 2)) - cost_gradient(lqr, K - h * e.reshape(1, 2))).ravel()
                  / (2 * h) for e in np.eye(2)])
    eta = 0.5 / np.max(np.abs(np.linalg.eigvalsh(0.5 * (H + H.T))))
    prev = np.inf
    for _ in range(3000):
        c, G = cost_and_gradient(lqr, K)
        assert c <= prev * (1 + 1e-15)
        prev = c
        K = K - eta * G
    np.testing.assert_allclose(K, Kstar, rtol=1e-7)


def test_npg_and_gauss_newton_converge():
    """Natural gradient (Fazel's K - eta grad C Sigma^-1) and Gauss-Newton with step 1/2 (policy
    iteration) reach K*; Gauss-Newton in a handful (<= 6) of iterations (quadratic rate)."""
    lqr = _instance()
    Kstar = optimal_gain(lqr)
    K0 = np.array([[1.0, 1.6]])
    K = K0.copy()
    for _ in range(400):
        K = K - 0.1 * npg_direction(lqr, K)
    np.testing.assert_allclose(K, Kstar, rtol=1e-10)
    K = K0.copy()
    errs = []
    for _ in range(6):
        K = K - 0.5 * gauss_newton_direction(lqr, K)
        errs.append(np.max(np.abs(K - Kstar)))
    assert errs[-1] < 1e-12 * np.max(np.abs(Kstar))
    assert errs[2] < errs[1] ** 1.5  # superlinear
    # natural gradient with the Gaussian-policy Fisher: a step K + eta (1-gamma)/sigma^2 F^-1 grad J
    # equals the Fazel NPG step (same direction up to the documented factor)
    pol = LinearGaussian(2, 1, noise_cov=[[0.04]])
    ng = natural_gradient(lqr, pol, pol.params(K0)).reshape(1, 2)
    np.testing.assert_allclose(ng * (1 - 0.9) / 0.04, -npg_direction(lqr, K0, [[0.04]]), rtol=1e-12)


def test_stein_residual_check_triggers():
    """A gain at the edge of stability (rho = 1 - 1e-12) is accepted only if the solves stay
    accurate; a NumericalError (never an inaccurate cost) otherwise."""
    lqr = LQR(A=[[1.0 - 1e-12]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], gamma=1.0, Sigma0=[[1.0]])
    try:
        c = evaluate(lqr, [[0.0]]).cost
    except NumericalError:
        return
    assert c == pytest.approx(1 / (1 - (1 - 1e-12) ** 2), rel=1e-3)


@pytest.mark.parametrize("seed", range(3))
def test_pg_theorems_agree_with_closed_form(seed):
    """Deterministic PG (E[grad mu' grad_u Q]) and stochastic PG (E[score Q]), integrated exactly
    by symmetric-point cubature from V/Q and the policy's score, equal the closed-form gradient
    (rounding only: 1e-10 relative)."""
    p = random_problem(np.random.default_rng(seed), stochastic=True, noise=True,
                       horizon=None if seed != 1 else 4)
    ev = evaluate(p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta))
    g = policy_gradient(p.lqr, p.policy, p.theta)
    tol = 1e-10 * max(np.max(np.abs(g)), 1e-3 * ev.cost)
    np.testing.assert_allclose(dpg_expectation(ev, p.policy, p.theta), g, rtol=0, atol=tol)
    np.testing.assert_allclose(score_expectation(ev, p.policy, p.theta), g, rtol=0, atol=tol)
