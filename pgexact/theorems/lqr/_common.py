"""Instances, independent references and helpers of the LQR theorems (see the package docstring)."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ...lqr import LQR, LinearGaussian, exact
from ..registry import identity, relative_error  # noqa: F401  (relative_error: for the tests)

__all__ = ["LQRProblem", "random_lqr", "random_problem", "central_difference", "dpg_expectation",
           "score_expectation", "reference_cost", "riccati_by_iteration", "FD_STEP", "FD_TOL", "FD_REASON"]

FD_STEP = 1e-4
FD_TOL = 1e-6
FD_REASON = (
    "4th-order central difference, h = 1e-4: truncation h^4 C^(5)/30 and rounding 1.5 eps C / h are "
    "< 1e-9 C at stability margin 0.9; residual relative to max(|grad|, 1e-3 C); observed ~1e-10"
)


@dataclass(frozen=True, eq=False)
class LQRProblem:
    """An (lqr, policy, theta) instance (hashable by identity, so derived values can be cached)."""

    lqr: LQR
    policy: LinearGaussian
    theta: np.ndarray


def _stable_gain(lqr: LQR, K0: np.ndarray, rng: np.random.Generator, margin: float = 0.9) -> np.ndarray:
    """K0 + a random perturbation with spectral radius <= margin (or <= (1 + rho(K0))/2 when K0
    itself has less margin), so that K is never K0 itself (the perturbation is only shrunk)."""
    margin = max(margin, 0.5 * (1.0 + exact.spectral_radius(lqr, K0)))
    delta = rng.standard_normal(K0.shape) * (0.2 + 0.2 * np.abs(K0))
    for _ in range(60):
        K = K0 + delta
        if exact.spectral_radius(lqr, K) <= margin:
            return K
        delta *= 0.5
    return K0


def random_lqr(
    rng: np.random.Generator, *, n: int | None = None, m: int | None = None, noise: bool | None = None,
    gamma: float | None = None, horizon: int | None = None,
) -> LQR:
    """A random LQR (see the module docstring); stabilizable with probability 1."""
    n = int(rng.integers(1, 5)) if n is None else n
    m = int(rng.integers(1, 4)) if m is None else m
    A = rng.standard_normal((n, n))
    A *= rng.uniform(0.5, 1.3) / max(np.max(np.abs(np.linalg.eigvals(A))), 1e-3)
    B = rng.standard_normal((n, m))
    G = rng.standard_normal((n, n))
    Hm = rng.standard_normal((m, m))
    noise = bool(rng.integers(2)) if noise is None else noise
    g = float(rng.uniform(0.5, 0.95)) if gamma is None else gamma
    Q, R = np.eye(n) + G @ G.T / n, np.eye(m) + Hm @ Hm.T / m
    # a cross cost on half the instances, small enough that [[Q, N], [N', R]] stays positive definite
    N = 0.3 * rng.standard_normal((n, m)) / np.sqrt(n * m) if rng.integers(2) else None
    return LQR(A, B, Q, R, N=N, Sigma0=np.eye(n), gamma=g,
               noise_cov=0.1 * np.eye(n) if noise else None, horizon=horizon)


def random_problem(
    rng: np.random.Generator, *, stochastic: bool | None = None, learn_log_std: bool = False, **kw: Any
) -> LQRProblem:
    """A random (lqr, policy, theta) with a stabilizing gain (margin 0.9)."""
    lqr = random_lqr(rng, **kw)
    inf = lqr if lqr.horizon is None else lqr.with_horizon(None, gamma=min(lqr.gamma, 0.95))
    # K* only centres the random gain (which is K* + Δ, never K* itself): the doubling algorithm
    # gives it to ~1e-14 in a fifth of the time of scipy's Schur-based DARE (the generator runs
    # once per instance of every LQR theorem); the theorems checking pgexact's Riccati solution
    # draw their own instances (random_lqr), so that solution is still compared, not assumed.
    Kstar = riccati_by_iteration(inf)[0]
    K = _stable_gain(inf, Kstar, rng)
    n, m = lqr.n_states, lqr.n_actions
    if learn_log_std:
        pol = LinearGaussian(n, m, learn_log_std=True)
        theta = pol.params(K, log_std=np.log(rng.uniform(0.3, 0.8, size=m)))
    else:
        stochastic = bool(rng.integers(2)) if stochastic is None else stochastic
        pol = LinearGaussian(n, m, noise_cov=0.3 * np.eye(m) if stochastic else None)
        theta = pol.params(K)
    return LQRProblem(lqr, pol, theta)


def central_difference(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = FD_STEP) -> np.ndarray:
    """Fourth-order central difference gradient of a scalar function of a flat vector."""
    out = np.empty(x.size)
    for k in range(x.size):
        e = np.zeros(x.size)
        e[k] = h
        out[k] = (-f(x + 2 * e) + 8 * f(x + e) - 8 * f(x - e) + f(x - 2 * e)) / (12 * h)
    return out


def reference_cost(lqr: LQR, K: np.ndarray, Su: np.ndarray | None = None) -> float:
    r"""The cost by a route independent of :mod:`pgexact.lqr`'s solvers: the *primal* (state
    covariance) side, :math:`C = \sum_t\gamma^t[\mathrm{tr}(Q_K S_t) + \mathrm{tr}(R\Sigma_u)]`.

    Infinite horizon: :math:`\Sigma_K` by Kronecker vectorization,
    :math:`\mathrm{vec}\,\Sigma_K = (I - \gamma A_K\otimes A_K)^{-1}\mathrm{vec}(\Sigma_0 + \tfrac{\gamma}{1-\gamma}W_K)`
    (a dense LU solve of size n²), then :math:`C = \mathrm{tr}(Q_K\Sigma_K) + \mathrm{tr}(R\Sigma_u)/(1-\gamma)`.
    Finite horizon: the forward recursion of the second moments :math:`S_{t+1} = A_KS_tA_K^\top + W_K`.
    Only the model's matrices are shared with :func:`pgexact.lqr.evaluate` (which solves for
    :math:`P_K`, the dual side, by Bartels-Stewart).
    """
    n, m = lqr.n_states, lqr.n_actions
    Su = np.zeros((m, m)) if Su is None else Su
    AK = lqr.A - lqr.B @ K
    QK = lqr.Q + K.T @ lqr.R @ K - lqr.N @ K - K.T @ lqr.N.T
    WK = lqr.noise_cov + lqr.B @ Su @ lqr.B.T
    g = lqr.gamma
    per_step = float(np.trace(lqr.R @ Su))
    if lqr.horizon is None:
        rhs = lqr.Sigma0 + g / (1.0 - g) * WK
        M = np.eye(n * n) - g * (AK[:, None, :, None] * AK[None, :, None, :]).reshape(n * n, n * n)  # kron
        Sig = np.linalg.solve(M, rhs.reshape(-1)).reshape(n, n)
        return float(np.trace(QK @ Sig)) + per_step / (1.0 - g)
    S = np.array(lqr.Sigma0)
    total = 0.0
    for t in range(lqr.horizon):
        total += g ** t * (float(np.trace(QK @ S)) + per_step)
        S = AK @ S @ AK.T + WK
    return total


@functools.lru_cache(maxsize=16)
def riccati_by_iteration(lqr: LQR, max_iter: int = 60) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`(K^*, P^*)` by the structure-preserving doubling algorithm (no Schur method).

    The cross cost is removed by :math:`u = v - R^{-1}N^\top x` (:math:`\hat A = A - BR^{-1}N^\top`,
    :math:`\hat Q = Q - NR^{-1}N^\top`) and the discount by :math:`\sqrt\gamma`; then
    :math:`A_0 = \sqrt\gamma\hat A`, :math:`G_0 = \gamma BR^{-1}B^\top`, :math:`H_0 = \hat Q` and
    :math:`W = I + G_kH_k`, :math:`A_{k+1} = A_kW^{-1}A_k`, :math:`G_{k+1} = G_k + A_kW^{-1}G_kA_k^\top`,
    :math:`H_{k+1} = H_k + A_k^\top H_kW^{-1}A_k \to P^*` quadratically (Chu, Fan, Lin & Wang 2004,
    "Structure-preserving algorithms for periodic discrete-time algebraic Riccati equations", Int. J.
    Control; Lin & Xu 2006, SIAM J. Matrix Anal. Appl.).
    """
    A, B, Q, R, N, g = lqr.A, lqr.B, lqr.Q, lqr.R, lqr.N, lqr.gamma
    RiNt = np.linalg.solve(R, N.T)
    Ak = np.sqrt(g) * (A - B @ RiNt)
    Gk = g * B @ np.linalg.solve(R, B.T)
    Hk = Q - N @ RiNt
    eye = np.eye(A.shape[0])
    for _ in range(max_iter):
        W = eye + Gk @ Hk
        WiA = np.linalg.solve(W, Ak)
        WiG = np.linalg.solve(W, Gk)
        Hn = Hk + Ak.T @ Hk @ WiA
        Gk = Gk + Ak @ WiG @ Ak.T
        Ak = Ak @ WiA
        Hn = 0.5 * (Hn + Hn.T)
        done = np.max(np.abs(Hn - Hk)) <= 1e-15 * np.max(np.abs(Hn))
        Hk = Hn
        if done:
            break
    P = Hk
    K = np.linalg.solve(R + g * B.T @ P @ B, g * B.T @ P @ A + N.T)
    return K, P


def _J(prob: LQRProblem) -> Callable[[np.ndarray], float]:
    """J(theta) = -reference_cost: the independent evaluation the derivative checks difference."""
    return lambda th: -reference_cost(prob.lqr, prob.policy.gain(th), prob.policy.action_cov(th))


def _fd_floor(prob: LQRProblem) -> float:
    return 1e-3 * abs(reference_cost(prob.lqr, prob.policy.gain(prob.theta), prob.policy.action_cov(prob.theta)))


def _state_factors(ev: exact.LQREvaluation) -> list[tuple[int, float, np.ndarray]]:
    """(t, weight, L) with L Lᵀ = E[x_t x_tᵀ]: weight γ^t per time step (finite horizon), or one
    factor of the unnormalized Σ_K (infinite horizon, where Q does not depend on t)."""
    def fac(M: np.ndarray) -> np.ndarray:
        lam, V = np.linalg.eigh(M)
        return V * np.sqrt(np.clip(lam, 0.0, None))
    if ev.S is None:
        return [(0, 1.0, fac(ev.Sigma))]
    g = ev.lqr.gamma
    return [(t, g ** t, fac(ev.S[t])) for t in range(ev.S.shape[0])]


def dpg_expectation(ev: exact.LQREvaluation, policy: LinearGaussian, theta: np.ndarray,
                    at_zero: bool = False, start_states: bool = False) -> np.ndarray:
    r""":math:`\sum_t\gamma^t E_{x_t}[\nabla_\theta\mu(x_t)^\top \nabla_u Q_t(x_t, \mu(x_t))]` by exact cubature.

    The integrand is a homogeneous quadratic in x, so its expectation under any zero-mean law with
    second moment :math:`LL^\top` is :math:`\sum_k f(L_{:,k})`; for the discounted mixture of the
    :math:`p_t` that second moment is :math:`\Sigma_K`. ``start_states`` (a control: DDPG's state-distribution
    mistake) draws every :math:`x_t` from the start distribution :math:`N(0, \Sigma_0)` (a replay buffer of initial
    states) instead of the visitation.
    """
    out = np.zeros(policy.n_params)
    factors = _state_factors(ev)
    if start_states:
        lam, V = np.linalg.eigh(ev.lqr.Sigma0)
        L0 = V * np.sqrt(np.clip(lam, 0.0, None))
        factors = [(t, w / (1.0 - ev.lqr.gamma) if ev.S is None else w, L0) for t, w, _ in factors]
    for t, w, L in factors:
        X = L.T  # rows are the points L[:, k]
        mu = policy.mean(theta, X)
        u = np.zeros_like(mu) if at_zero else mu  # at_zero: a mistaken evaluation point (control)
        out += w * policy.mean_jacobian_t(theta, X, ev.grad_u_Q(X, u, t)).sum(axis=0)
    return out


def score_expectation(ev: exact.LQREvaluation, policy: LinearGaussian, theta: np.ndarray) -> np.ndarray:
    r""":math:`\sum_t\gamma^t E_{x_t, u\sim\pi}[\nabla_\theta\log\pi(u|x)\,Q_t(x, u)]` (gain block) by exact cubature.

    With :math:`u = \mu(x) + e`, the integrand (score ∝ e xᵀ, Q quadratic in (x, e)) has no
    term of degree 0 in x or in e, degree ≤ 3 in x and ≤ 3 in e, and only its part of degree 2
    in both survives. Symmetric points :math:`x = \pm L_{:,k}`, :math:`e = \pm M_{:,l}` with
    weights 1/4 (:math:`LL^\top = E[xx^\top]`, :math:`MM^\top = \Sigma_u`) integrate it exactly.
    """
    Su = policy.action_cov(theta)
    lam, V = np.linalg.eigh(Su)
    M = V * np.sqrt(np.clip(lam, 0.0, None))
    out = np.zeros(policy.n_params)
    k = M.shape[1]
    E = np.concatenate([M.T, -M.T])  # the 2k action offsets e = +-M[:, l]
    for t, w, L in _state_factors(ev):
        # every point (x, e) of the rule at once, one batch per time step: rows x = +-L[:, j]
        # (each repeated for the 2k offsets) and u = mu(x) + e
        Xs = np.concatenate([L.T, -L.T])
        X = np.repeat(Xs, 2 * k, axis=0)
        U = np.repeat(policy.mean(theta, Xs), 2 * k, axis=0) + np.tile(E, (Xs.shape[0], 1))
        out += 0.25 * w * (policy.score(theta, X, U) * ev.Q(X, U, t)[:, None]).sum(axis=0)
    return out




# ---------------------------------------------------------------------------- theorems


_HORIZONS = (None, None, 2, 3, 5)  # H = 1 hides gamma and Sigma_K (P_1 = 0, S_0 = Sigma0)


def _inst_any(rng: np.random.Generator) -> LQRProblem:
    return random_problem(rng, horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))])


@functools.lru_cache(maxsize=16)
def _ev(p: LQRProblem) -> exact.LQREvaluation:
    return exact.evaluate(p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta))


@functools.lru_cache(maxsize=16)
def _fd(p: LQRProblem) -> np.ndarray:
    return central_difference(_J(p), p.theta)


@functools.lru_cache(maxsize=16)
def _scale(p: LQRProblem) -> float:
    """max(max|finite-difference gradient|, 1e-3 C): residuals are relative to it (identity's floor 1)."""
    return max(float(np.max(np.abs(_fd(p)))), _fd_floor(p))


def _fd_identity(*, id: str, statement: str, source: str, reference: str, instance: Callable,
                 computed: Callable, mutants: dict, block: Callable | None = None) -> None:
    """An identity ``computed == central differences of the reference cost`` (gradient entries
    selected by ``block``), residual relative to :func:`_scale`."""
    sel = block or (lambda p, g: g)
    identity(
        id=id, statement=statement, source=source, reference=reference, instance=instance,
        computed=lambda p: sel(p, computed(p)) / _scale(p),
        expected=lambda p: sel(p, _fd(p)) / _scale(p),
        tolerance=FD_TOL, tolerance_reason=FD_REASON,
        mutants={name: (lambda f: lambda p: sel(p, f(p)) / _scale(p))(f) for name, f in mutants.items()},
    )


