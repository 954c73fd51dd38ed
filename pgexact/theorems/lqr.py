r"""Theorems on LQR with linear(-Gaussian) policies.

Instances (:func:`random_problem`): n in 1..4 states, m in 1..3 inputs, A with standard normal
entries scaled to spectral radius U(0.5, 1.3) (often open-loop unstable), B standard normal,
Q = I + G Gᵀ/n, R = I + H Hᵀ/m, a cross cost N with entries N(0, 0.09/(nm)) on half of them,
Sigma0 = I, process noise 0.1 I (or none), policy noise 0.3 I (or none), gamma U(0.5, 0.95); the gain is K* + Δ with Δ shrunk until the closed loop has
:math:`\rho(\sqrt\gamma(A - BK)) \le 0.9` (or halfway between :math:`\rho(K^*)` and 1 in the
rare instances where K* itself has less margin), so all Lyapunov solves have condition number at most
:math:`\sim 1/(1-0.9^2) \approx 5` per unit of :math:`\|A_K\|`.

Derivative checks use the fourth-order central difference
:math:`[-f(2h) + 8f(h) - 8f(-h) + f(-2h)]/(12h)` with :math:`h = 10^{-4}`: truncation
:math:`h^4 |C^{(5)}|/30` and rounding :math:`\approx 1.5\,\epsilon\,C/h`; with the stability
margin 0.9 both are below :math:`10^{-9} C`, so residuals (relative, with an absolute floor of
:math:`10^{-3} C`) must be below ``1e-6`` — observed ~1e-10.

Every theorem compares the closed form of :mod:`pgexact.lqr` with a computation that shares only
the model's matrices: :func:`reference_cost` (the primal, state-covariance side by a Kronecker
solve or a forward recursion, where :mod:`pgexact.lqr` solves the dual :math:`P_K` side by
Bartels-Stewart), :func:`riccati_by_iteration` (the doubling algorithm instead of the Schur-based
DARE), central differences of those, Gauss-Hermite quadrature and exact symmetric-point cubature.
Each carries negative controls (a dropped γ, Σ0 for Σ_K, a missing factor 2, ...) that a test
requires to be rejected on at least 90% of instances. The inequalities of Fazel et al. (NPG rate,
gradient domination, smoothness) run on instances where they nearly bind (:func:`_inst_binding`:
weak dynamics, isotropic R and Σ0), so that their constants are tested, not just their sign.
"""

from __future__ import annotations

import functools
import itertools
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.linalg

from ..lqr import LQR, LinearGaussian, exact, offpolicy, soft
from ..lqr.gradients import _gain_error  # the closed form's E_K, for the controls

from .registry import identity, inequality, relative_error  # noqa: F401  (relative_error: re-exported for tests)

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references below serve
#: those theorems and the tests.
__all__: list[str] = []

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
    Kstar = exact.optimal_gain(inf)
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
        M = np.eye(n * n) - g * np.kron(AK, AK)
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
                    at_zero: bool = False) -> np.ndarray:
    r""":math:`\sum_t\gamma^t E_{x_t}[\nabla_\theta\mu(x_t)^\top \nabla_u Q_t(x_t, \mu(x_t))]` by exact cubature.

    The integrand is a homogeneous quadratic in x, so its expectation under any zero-mean law with
    second moment :math:`LL^\top` is :math:`\sum_k f(L_{:,k})`; for the discounted mixture of the
    :math:`p_t` that second moment is :math:`\Sigma_K`.
    """
    out = np.zeros(policy.n_params)
    for t, w, L in _state_factors(ev):
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
    for t, w, L in _state_factors(ev):
        for sx in (1.0, -1.0):
            X = sx * L.T
            mu = policy.mean(theta, X)
            for se in (1.0, -1.0):
                for ell in range(M.shape[1]):
                    U = mu + se * M[:, ell]
                    sc = policy.score(theta, X, U)
                    out += 0.25 * w * (sc * ev.Q(X, U, t)[:, None]).sum(axis=0)
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


def _gradient_with(p: LQRProblem, *, undiscounted: bool = False, sigma0: bool = False,
                   factor: float = 2.0) -> np.ndarray:
    """-vec(grad C) with one mistake (controls): E_K without gamma, Sigma0 for Sigma_K, or no factor 2."""
    ev = _ev(p)
    lqr = p.lqr
    EK = _gain_error(ev)
    if undiscounted:
        B = lqr.B
        P = ev.P if lqr.horizon is None else np.concatenate([ev.P[1:], np.zeros((1,) + ev.P.shape[1:])])
        EK = (lqr.R + B.T @ P @ B) @ ev.K - B.T @ P @ lqr.A - lqr.N.T
    if lqr.horizon is None:
        G = factor * EK @ (lqr.Sigma0 if sigma0 else ev.Sigma)
    else:
        w = lqr.gamma ** np.arange(lqr.horizon)
        S = np.broadcast_to(lqr.Sigma0, ev.S.shape) if sigma0 else ev.S
        G = factor * np.einsum("t,tak,tkl->al", w, EK, S)
    return -G.reshape(-1)


_fd_identity(
    id="lqr.gradient_formula",
    statement=r"\nabla_K C(K) = 2\big[(R + \gamma B^\top P_K B)K - \gamma B^\top P_K A - N^\top\big]\Sigma_K"
              r"\ \text{(finite horizon: } \textstyle\sum_t 2\gamma^t E_{K,t}S_t)",
    source="Fazel, Ge, Kakade & Mesbahi 2018, Lemma 1 (with discount, cross cost, process and policy noise)",
    reference="4th-order central differences of the cost computed on the primal side (Kronecker-vectorized "
              "Lyapunov solve for Sigma_K, or the forward second-moment recursion)",
    instance=lambda rng: random_problem(rng, learn_log_std=False,
                                        horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))]),
    computed=lambda p: exact.policy_gradient(p.lqr, p.policy, p.theta),
    mutants={
        "dropped gamma in E_K": lambda p: _gradient_with(p, undiscounted=True),
        "Sigma0 instead of Sigma_K": lambda p: _gradient_with(p, sigma0=True),
        "missing factor 2": lambda p: _gradient_with(p, factor=1.0),
    },
)


def _inst_logstd(rng: np.random.Generator) -> LQRProblem:
    return random_problem(rng, learn_log_std=True, horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))])


def _noise_pg_with(p: LQRProblem, factor: float = 2.0, undiscounted: bool = False) -> np.ndarray:
    ev = _ev(p)
    lqr = p.lqr
    B = lqr.B
    if lqr.horizon is None:
        G = lqr.R + lqr.gamma * B.T @ ev.P @ B
        G = G if undiscounted else G / (1.0 - lqr.gamma)
    else:
        w = lqr.gamma ** np.arange(lqr.horizon)
        Pn = np.concatenate([ev.P[1:], np.zeros((1,) + ev.P.shape[1:])])
        G = (lqr.horizon if undiscounted else w.sum()) * lqr.R + lqr.gamma * np.einsum(
            "t,ia,tij,jb->ab", np.ones_like(w) if undiscounted else w, B, Pn, B)
    g = np.array(exact.policy_gradient(p.lqr, p.policy, p.theta))
    g[p.policy.n_gain:] = -factor * np.diag(ev.action_cov) * np.diag(G)
    return g


_fd_identity(
    id="lqr.noise_gradient",
    statement=r"\partial C / \partial \Sigma_u = (R + \gamma B^\top P_K B)/(1-\gamma),\ "
              r"\partial J/\partial \ell_i = -2 e^{2\ell_i} [\partial C/\partial\Sigma_u]_{ii}",
    source="pgexact.lqr.gradients (derivation: C = tr(P_K Sigma0) + [tr(R Sigma_u) + gamma tr(P_K W_K)]/(1-gamma), "
           "affine in Sigma_u; P_K does not depend on Sigma_u)",
    reference="4th-order central differences in the log standard deviations of the primal-side cost",
    instance=_inst_logstd,
    computed=lambda p: exact.policy_gradient(p.lqr, p.policy, p.theta),
    block=lambda p, g: g[p.policy.n_gain:],
    mutants={
        "missing factor 2 of d(sigma^2)/d(log sigma)": lambda p: _noise_pg_with(p, factor=1.0),
        "dropped discounting of the noise cost": lambda p: _noise_pg_with(p, undiscounted=True),
    },
)


def _inst_riccati(rng: np.random.Generator) -> LQR:
    return random_lqr(rng)


def _k_star_scaled(lqr: LQR, K: np.ndarray) -> np.ndarray:
    return K / max(float(np.max(np.abs(riccati_by_iteration(lqr)[0]))), 1.0)


def _riccati_undiscounted(lqr: LQR) -> np.ndarray:
    try:
        P = scipy.linalg.solve_discrete_are(lqr.A, lqr.B, lqr.Q, lqr.R, s=lqr.N)
    except (np.linalg.LinAlgError, ValueError):
        return np.full((lqr.n_actions, lqr.n_states), 1e6)  # no solution: certainly not K*
    return np.linalg.solve(lqr.R + lqr.B.T @ P @ lqr.B, lqr.B.T @ P @ lqr.A + lqr.N.T)


def _riccati_gamma_once(lqr: LQR) -> np.ndarray:
    P = exact.riccati(lqr).P
    g = lqr.gamma
    return np.linalg.solve(lqr.R + g * lqr.B.T @ P @ lqr.B, lqr.B.T @ P @ lqr.A + lqr.N.T)


identity(
    id="lqr.riccati",
    statement=r"K^* = (R + \gamma B^\top P^* B)^{-1}(\gamma B^\top P^* A + N^\top),\ P^* \text{ the stabilizing "
              r"solution of the discounted DARE}",
    source="Bertsekas, DPOC vol. I, sec. 4.1; scipy.linalg.solve_discrete_are with A, B scaled by sqrt(gamma), s = N",
    reference="the structure-preserving doubling algorithm (no Schur method, no policy evaluation)",
    instance=_inst_riccati,
    computed=lambda lqr: _k_star_scaled(lqr, exact.optimal_gain(lqr)),
    expected=lambda lqr: _k_star_scaled(lqr, riccati_by_iteration(lqr)[0]),
    tolerance=1e-9,
    tolerance_reason="the DARE's Schur solve is backward stable and doubling converges quadratically to "
                     "a relative change of 1e-15 (observed ~1e-14 on K*, scaled by max(|K*|, 1))",
    mutants={
        "undiscounted DARE": lambda lqr: _k_star_scaled(lqr, _riccati_undiscounted(lqr)),
        "gamma dropped from B^T P A": lambda lqr: _k_star_scaled(lqr, _riccati_gamma_once(lqr)),
    },
)


def _inst_cost(rng: np.random.Generator) -> LQRProblem:
    return random_problem(rng, stochastic=True, noise=True, horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))])


def _cost_with(p: LQRProblem, *, offset_factor: float = 1.0, transposed: bool = False,
               noise_undiscounted: bool = False) -> float:
    """The dual-side cost tr(P Sigma0) + c with one mistake (controls)."""
    lqr, K, Su = p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta)
    ev = _ev(p)
    if noise_undiscounted:  # c = tr(R Su) + tr(P' W_K) + gamma c' (gamma missing before tr(P' W_K))
        WK = lqr.noise_cov + lqr.B @ Su @ lqr.B.T
        g, rs = lqr.gamma, float(np.trace(lqr.R @ Su))
        if lqr.horizon is None:
            return float(np.sum(ev.P * lqr.Sigma0)) + (rs + float(np.sum(ev.P * WK))) / (1 - g)
        c = 0.0
        for t in range(lqr.horizon - 1, -1, -1):
            Pn = ev.P[t + 1] if t + 1 < lqr.horizon else np.zeros_like(ev.P[0])
            c = rs + float(np.sum(Pn * WK)) + g * c
        return float(np.sum(ev.P[0] * lqr.Sigma0)) + c
    if not transposed:
        P0 = ev.P if lqr.horizon is None else ev.P[0]
        c0 = float(ev.offset if lqr.horizon is None else ev.offset[0])
        return float(np.sum(P0 * lqr.Sigma0)) + offset_factor * c0
    AK = lqr.A - lqr.B @ K
    QK = lqr.Q + K.T @ lqr.R @ K - lqr.N @ K - K.T @ lqr.N.T
    WK = lqr.noise_cov + lqr.B @ Su @ lqr.B.T
    g, rs = lqr.gamma, float(np.trace(lqr.R @ Su))
    if lqr.horizon is None:  # P = Q_K + gamma A_K P A_K^T (the Sigma equation's transpose)
        P = scipy.linalg.solve_discrete_lyapunov(np.sqrt(g) * AK, QK)
        return float(np.sum(P * lqr.Sigma0)) + (rs + g * float(np.sum(P * WK))) / (1 - g)
    P, c = np.zeros_like(QK), 0.0
    for _ in range(lqr.horizon):
        c = rs + g * (float(np.sum(P * WK)) + c)
        P = QK + g * AK @ P @ AK.T
    return float(np.sum(P * lqr.Sigma0)) + c


identity(
    id="lqr.cost_duality",
    statement=r"C(K) = \mathrm{tr}(P_K\Sigma_0) + c_K = \textstyle\sum_t\gamma^t\big[\mathrm{tr}(Q_KS_t) + "
              r"\mathrm{tr}(R\Sigma_u)\big],\ Q_K = Q + K^\top RK - NK - K^\top N^\top",
    source="Fazel et al. 2018, sec. 2 (C(K) = tr(P_K Sigma0) = tr(Q_K Sigma_K)), with discount, noise and N",
    reference="primal side: Sigma_K by Kronecker vectorization (infinite horizon) or the forward "
              "second-moment recursion (finite), against pgexact's P_K by Bartels-Stewart",
    instance=_inst_cost,
    computed=lambda p: _ev(p).cost,
    expected=lambda p: reference_cost(p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta)),
    tolerance=1e-10,
    tolerance_reason="two backward-stable solves of condition number <= ~1e2 at stability margin 0.9; "
                     "observed ~1e-15",
    mutants={
        "noise offset dropped": lambda p: _cost_with(p, offset_factor=0.0),
        "gamma missing before tr(P' W_K)": lambda p: _cost_with(p, noise_undiscounted=True),
    },
    floor=0.0,
)


def _inst_pg(rng: np.random.Generator) -> LQRProblem:
    return random_problem(rng, horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))])


def _undiscounted_visitation(p: LQRProblem, g: np.ndarray) -> np.ndarray:
    """The normalized state distribution used where the discounted visitation belongs (a factor 1 - gamma)."""
    return (1.0 - p.lqr.gamma) * g


_fd_identity(
    id="lqr.deterministic_pg",
    statement=r"\nabla_\theta J = \sum_t \gamma^t E_{x_t}\big[\nabla_\theta\mu_\theta(x_t)^\top "
              r"\nabla_u Q_t(x_t, u)|_{u=\mu_\theta(x_t)}\big]",
    source="Silver et al. 2014, Theorem 1 (also for the Gaussian policy with fixed noise: grad_u Q is affine in u)",
    reference="4th-order central differences of the primal-side cost; the left side is integrated exactly by "
              "symmetric-point cubature over x_t with second moment S_t (integrand quadratic in x)",
    instance=_inst_pg,
    computed=lambda p: dpg_expectation(_ev(p), p.policy, p.theta),
    mutants={
        "normalized d instead of the discounted visitation": lambda p: _undiscounted_visitation(
            p, dpg_expectation(_ev(p), p.policy, p.theta)),
        "grad_u Q at u = 0 instead of mu(x)": lambda p: dpg_expectation(_ev(p), p.policy, p.theta, at_zero=True),
    },
)


def _score_without_precision(p: LQRProblem) -> np.ndarray:
    g = score_expectation(_ev(p), p.policy, p.theta)
    m, n = p.policy.n_actions, p.policy.n_states
    return (p.policy.action_cov(p.theta) @ g.reshape(m, n)).reshape(-1)


_fd_identity(
    id="lqr.stochastic_pg",
    statement=r"\nabla_\theta J = \sum_t\gamma^t E_{x_t, u\sim\pi}\big[\nabla_\theta\log\pi(u|x)\,Q_t(x, u)\big],"
              r"\ \nabla_K\log\pi = -\Sigma_u^{-1}(u-\mu)x^\top",
    source="Sutton et al. 2000 (policy gradient theorem); Gaussian score as in the course notes",
    reference="4th-order central differences of the primal-side cost; the left side is integrated exactly by "
              "symmetric-point cubature over (x, u - mu) (degree <= 3 in each)",
    instance=lambda rng: random_problem(rng, stochastic=True,
                                        horizon=_HORIZONS[int(rng.integers(len(_HORIZONS)))]),
    computed=lambda p: score_expectation(_ev(p), p.policy, p.theta),
    mutants={
        "score without Sigma_u^{-1}": _score_without_precision,
        "normalized d instead of the discounted visitation": lambda p: _undiscounted_visitation(
            p, score_expectation(_ev(p), p.policy, p.theta)),
    },
)


GN_ITERATIONS = 12


def _inst_gn(rng: np.random.Generator) -> LQRProblem:
    return random_problem(rng, stochastic=False)


def _gn_iterate(p: LQRProblem, undiscounted: bool = False) -> np.ndarray:
    lqr = p.lqr
    K = p.policy.gain(p.theta)
    try:
        for _ in range(GN_ITERATIONS):
            if not undiscounted:
                K = K - 0.5 * exact.gauss_newton_direction(lqr, K)
                continue
            P = exact.evaluate(lqr, K).P
            RB = lqr.R + lqr.B.T @ P @ lqr.B
            K = np.linalg.solve(RB, lqr.B.T @ P @ lqr.A + lqr.N.T)
    except (ArithmeticError, np.linalg.LinAlgError):
        return np.full_like(K, 1e6)  # left the stabilizing set: certainly not K*
    return K


identity(
    id="lqr.gauss_newton_convergence",
    statement=r"K_{k+1} = K_k - \tfrac12 (R+\gamma B^\top P_{K_k}B)^{-1}\nabla C(K_k)\Sigma_{K_k}^{-1} "
              r"\to K^* \text{ (12 steps from a stabilizing } K_0)",
    source="Fazel et al. 2018, sec. 4 (Gauss-Newton, eta = 1/2); Hewer 1971 (policy iteration, quadratic rate)",
    reference="K* by the structure-preserving doubling algorithm (no policy evaluation, no Schur method)",
    instance=_inst_gn,
    computed=lambda p: _k_star_scaled(p.lqr, _gn_iterate(p)),
    expected=lambda p: _k_star_scaled(p.lqr, riccati_by_iteration(p.lqr)[0]),
    tolerance=1e-9,
    tolerance_reason="quadratic convergence from ||K0 - K*|| = O(1) reaches machine precision in <= 8 "
                     "steps on these instances; both fixed points to ~1e-13",
    mutants={"dropped gamma in the policy-improvement step": lambda p: _k_star_scaled(p.lqr, _gn_iterate(p, True))},
)


def _inst_binding(rng: np.random.Generator) -> LQRProblem:
    r"""Instances on which Fazel et al.'s constants nearly bind: weak dynamics (A, B of size ε ≤ 0.3,
    so Σ_K ≈ Σ0 and R + γB'PB ≈ R), isotropic R = rI and Σ0 = sI (s in [1.5, 4]), no noise, a
    deterministic gain K* + Δ."""
    n, m = int(rng.integers(1, 4)), int(rng.integers(1, 3))
    eps = float(rng.uniform(0.01, 0.3))
    A = eps * rng.standard_normal((n, n)) / np.sqrt(n)
    B = eps * rng.standard_normal((n, m)) / np.sqrt(n)
    G = rng.standard_normal((n, n))
    lqr = LQR(A, B, np.eye(n) + G @ G.T / n, float(rng.uniform(0.5, 2.0)) * np.eye(m),
              Sigma0=float(rng.uniform(1.5, 4.0)) * np.eye(n), gamma=float(rng.uniform(0.5, 0.95)))
    Kstar = exact.optimal_gain(lqr)
    delta = rng.standard_normal((m, n))
    while exact.spectral_radius(lqr, Kstar + delta) > 0.9:  # shrink until the closed loop has margin 0.9
        delta *= 0.5
    K = Kstar + delta
    pol = LinearGaussian(n, m)
    return LQRProblem(lqr, pol, pol.params(K))


NPG_STEPS = 3


@functools.lru_cache(maxsize=16)
def _npg_constants(p: LQRProblem) -> tuple[float, float, float]:
    """(eta, guaranteed decrease fraction 2 eta mu sigma_min(R) / ||Sigma_K*||, C*)."""
    lqr = p.lqr
    mu = float(np.linalg.eigvalsh(lqr.Sigma0 + lqr.gamma / (1 - lqr.gamma) * lqr.noise_cov)[0])
    c0 = reference_cost(lqr, p.policy.gain(p.theta))
    eta = 0.5 / (np.linalg.norm(lqr.R, 2) + lqr.gamma * np.linalg.norm(lqr.B, 2) ** 2 * c0 / mu)
    Kstar = riccati_by_iteration(lqr)[0]
    sig_star = np.linalg.norm(exact.evaluate(lqr, Kstar).Sigma, 2)
    return eta, 2.0 * eta * mu * float(np.linalg.eigvalsh(lqr.R)[0]) / sig_star, reference_cost(lqr, Kstar)


def _npg_observed(p: LQRProblem) -> float:
    """Smallest per-step decrease fraction (gap_k - gap_{k+1}) / gap_k over NPG_STEPS steps (while gap > 1e-6 C*)."""
    eta, _, cstar = _npg_constants(p)
    K = p.policy.gain(p.theta)
    gap = reference_cost(p.lqr, K) - cstar
    worst = np.inf
    for _ in range(NPG_STEPS):
        if gap <= 1e-6 * cstar:  # converged to rounding level: no decrease fraction left to measure
            break
        K = K - eta * exact.npg_direction(p.lqr, K)
        new = reference_cost(p.lqr, K) - cstar
        worst = min(worst, (gap - new) / gap)
        gap = new
    return float(worst)


inequality(
    id="lqr.npg_contraction",
    statement=r"\frac{C(K') - C^*}{C(K) - C^*} \le 1 - \frac{2\eta\mu\sigma_{\min}(R)}{\|\Sigma_{K^*}\|},\ "
              r"K' = K - \eta\nabla C(K)\Sigma_K^{-1},\ \eta = \frac{1}{2(\|R\| + \gamma\|B\|^2 C(K_0)/\mu)},\ "
              r"\mu = \sigma_{\min}(\Sigma_0 + \tfrac{\gamma}{1-\gamma}W)"
              r"\ \text{(as: guaranteed decrease fraction} \le \text{observed)}",
    source="Fazel et al. 2018, Theorem 7 / Lemma 15 (natural policy gradient), with the sqrt(gamma)-scaled "
           "dynamics and Sigma0 + gamma/(1-gamma) W as the effective initial covariance",
    reference="the observed decrease of the primal-side cost over 3 NPG steps (C* from the doubling algorithm)",
    instance=_inst_binding,
    lhs=lambda p: _npg_constants(p)[1],
    rhs=_npg_observed,
    tolerance=1e-8,
    tolerance_reason="decrease fractions of gaps >= 1e-4 C computed from costs accurate to ~1e-14 C",
    mutants={"rate without the factor 2": (lambda p: 2.0 * _npg_constants(p)[1], None),
             "||Sigma_K*|| dropped": (lambda p: _npg_constants(p)[1] * np.linalg.norm(
                 exact.evaluate(p.lqr, riccati_by_iteration(p.lqr)[0]).Sigma, 2), None)},
    floor=1e-12,
)


@functools.lru_cache(maxsize=16)
def _gd_sides(p: LQRProblem) -> tuple[float, float, float]:
    """(C(K) - C*, ||Sigma_K*|| tr(E_K' E_K) / sigma_min(R), ||Sigma_K*||)."""
    lqr, K = p.lqr, p.policy.gain(p.theta)
    Kstar = riccati_by_iteration(lqr)[0]
    gap = reference_cost(lqr, K) - reference_cost(lqr, Kstar)
    EK = 0.5 * exact.npg_direction(lqr, K)
    sig = float(np.linalg.norm(exact.evaluate(lqr, Kstar).Sigma, 2))
    return gap, sig * float(np.sum(EK * EK)) / float(np.linalg.eigvalsh(lqr.R)[0]), sig


inequality(
    id="lqr.gradient_domination",
    statement=r"C(K) - C(K^*) \le \frac{\|\Sigma_{K^*}\|}{\sigma_{\min}(R)}\,\mathrm{tr}(E_K^\top E_K)"
              r"\le \frac{\|\Sigma_{K^*}\|}{4\mu^2\sigma_{\min}(R)}\|\nabla C(K)\|_F^2,\ "
              r"E_K = (R+\gamma B^\top P_KB)K - \gamma B^\top P_KA - N^\top",
    source="Fazel et al. 2018, Lemma 11 (gradient domination), discounted via sqrt(gamma) A, sqrt(gamma) B",
    reference="C(K) - C* from the primal-side cost, C* at K* from the doubling algorithm",
    instance=_inst_binding,
    lhs=lambda p: _gd_sides(p)[0],
    rhs=lambda p: _gd_sides(p)[1],
    tolerance=1e-9,
    tolerance_reason="cost gap of O(1) computed to ~1e-14 relative",
    mutants={"||Sigma_K*|| dropped": (None, lambda p: _gd_sides(p)[1] / _gd_sides(p)[2])},
    floor=1e-12,
)


@functools.lru_cache(maxsize=16)
def _smooth_sides(p: LQRProblem) -> tuple[float, float]:
    r"""Along the NPG step :math:`\Delta = 2\eta E_K`: :math:`C(K - \Delta) - C(K) + 2\,\mathrm{tr}(\Sigma_{K'}\Delta^\top E_K)`
    against the curvature bound :math:`\|\Sigma_{K'}\|\,\|R + \gamma B^\top P_KB\|\,\|\Delta\|_F^2`."""
    lqr, K = p.lqr, p.policy.gain(p.theta)
    eta = _npg_constants(p)[0]
    ev = exact.evaluate(lqr, K)
    EK = 0.5 * exact.npg_direction(lqr, K)
    D = 2.0 * eta * EK
    Kn = K - D
    Sn = exact.evaluate(lqr, Kn).Sigma
    lhs = reference_cost(lqr, Kn) - reference_cost(lqr, K) + 2.0 * float(np.sum(Sn * (D.T @ EK)))
    curv = np.linalg.norm(lqr.R + lqr.gamma * lqr.B.T @ ev.P @ lqr.B, 2)
    return lhs, float(np.linalg.norm(Sn, 2) * curv * np.sum(D * D))


inequality(
    id="lqr.smoothness",
    statement=r"C(K') - C(K) + 2\,\mathrm{tr}(\Sigma_{K'}\Delta^\top E_K) \le \|\Sigma_{K'}\|\,"
              r"\|R + \gamma B^\top P_K B\|\,\|\Delta\|_F^2,\ K' = K - \Delta",
    source="Fazel et al. 2018, Lemma 10 (cost difference: the left side equals tr(Sigma_K' Delta^T (R + gamma "
           "B^T P_K B) Delta)) and the smoothness step of Lemma 15",
    reference="cost differences of the primal-side cost (Kronecker solve), not the cost-difference formula",
    instance=_inst_binding,
    lhs=lambda p: _smooth_sides(p)[0],
    rhs=lambda p: _smooth_sides(p)[1],
    tolerance=1e-8,
    tolerance_reason="differences of costs accurate to ~1e-14 C, relative to a curvature term >= 1e-6 C",
    mutants={"curvature without Sigma_K'": (None, lambda p: _smooth_sides(p)[1] / np.linalg.norm(
        exact.evaluate(p.lqr, p.policy.gain(p.theta) - 2 * _npg_constants(p)[0] * 0.5
                       * exact.npg_direction(p.lqr, p.policy.gain(p.theta))).Sigma, 2))},
    floor=1e-12,
)


# ---------------------------------------------------------------------------- soft LQR and DDPG

SOFT_ALPHA_RANGE = (0.05, 2.0)


@dataclass(frozen=True, eq=False)
class SoftProblem:
    """An LQR (infinite horizon, gamma < 1) with a temperature alpha."""

    lqr: LQR
    alpha: float


def _inst_soft(rng: np.random.Generator) -> SoftProblem:
    return SoftProblem(random_lqr(rng), float(rng.uniform(*SOFT_ALPHA_RANGE)))


_GH_Z, _GH_W = np.polynomial.hermite_e.hermegauss(5)
_GH_W = _GH_W / _GH_W.sum()


def _soft_objective_reference(sp: SoftProblem, K: np.ndarray, S: np.ndarray) -> float:
    r""":math:`J_\alpha` by an independent route: the primal-side cost (:func:`reference_cost`) and
    the entropy as :math:`-E[\log\pi(u)]` by a 5-point tensor Gauss-Hermite rule over
    :math:`u = Lz`, :math:`LL^\top = \Sigma` (exact: :math:`\log\pi` is quadratic in u)."""
    m = S.shape[0]
    L = np.linalg.cholesky(S)
    Z = np.array(list(itertools.product(_GH_Z, repeat=m)))
    wts = np.prod(np.array(list(itertools.product(_GH_W, repeat=m))), axis=1)
    U = Z @ L.T
    quad = np.einsum("ki,ij,kj->k", U, np.linalg.inv(S), U)
    _, logdet = np.linalg.slogdet(2.0 * np.pi * S)
    H = float(np.sum(wts * (0.5 * quad + 0.5 * logdet)))
    return -reference_cost(sp.lqr, K, S) + sp.alpha * H / (1.0 - sp.lqr.gamma)


def _soft_stationarity(sp: SoftProblem, K: np.ndarray, S: np.ndarray) -> np.ndarray:
    """Central-difference gradient of the independent soft objective at (K, S), in vec K and in a
    scale-free perturbation S(E) = L (I + (E + E')/2) L' of the covariance (L L' = S), relative to
    max(|J_alpha|, 1). Zero exactly at a stationary point (the map E -> S(E) is a local chart)."""
    m, n = K.shape
    L = np.linalg.cholesky(S)
    x0 = np.concatenate([K.reshape(-1), np.zeros(m * m)])

    def f(v: np.ndarray) -> float:
        E = v[m * n:].reshape(m, m)
        return _soft_objective_reference(sp, v[: m * n].reshape(m, n), L @ (np.eye(m) + 0.5 * (E + E.T)) @ L.T)

    return central_difference(f, x0) / max(abs(f(x0)), 1.0)


@functools.lru_cache(maxsize=16)
def _soft_opt(sp: SoftProblem) -> tuple[np.ndarray, np.ndarray]:
    o = soft.soft_optimal(sp.lqr, sp.alpha)
    return np.array(o.K), np.array(o.action_cov)


identity(
    id="lqr.soft_optimal_policy",
    statement=r"\arg\max_{K,\Sigma} J_\alpha = \Big(M^{-1}(\gamma B^\top P^*A + N^\top),\ \tfrac\alpha2 M^{-1}\Big),\ "
              r"M = R + \gamma B^\top P^*B,\ J_\alpha = E\sum_t\gamma^t[r_t + \alpha\mathcal H(\pi(\cdot|x_t))]",
    source="Haarnoja et al. 2018 (SAC), Lemma 2 and Theorem 1 (pi* ∝ exp(Q*/alpha)), for linear-Gaussian "
           "policies on LQR; pgexact.lqr.soft",
    reference="central differences, at the closed-form optimum, of J_alpha computed independently (primal-side "
              "cost by a Kronecker solve; entropy as -E[log pi] by Gauss-Hermite quadrature)",
    instance=_inst_soft,
    computed=lambda sp: _soft_stationarity(sp, *_soft_opt(sp)),
    expected=lambda sp: np.zeros(sp.lqr.n_actions * (sp.lqr.n_states + sp.lqr.n_actions)),
    tolerance=1e-6,
    tolerance_reason="4th-order central difference, h = 1e-4 in K and in the scale-free covariance chart: "
                     "truncation and rounding below 1e-8 |J_alpha| (observed ~1e-10); relative to max(|J_alpha|, 1)",
    mutants={
        "covariance without the factor 1/2": lambda sp: _soft_stationarity(sp, _soft_opt(sp)[0], 2 * _soft_opt(sp)[1]),
        "covariance (alpha/2) R^-1 (gamma B'PB dropped)": lambda sp: _soft_stationarity(
            sp, _soft_opt(sp)[0], 0.5 * sp.alpha * np.linalg.inv(sp.lqr.R)),
    },
)


def _soft_value_mutant(sp: SoftProblem, *, no_e: bool = False, undivided: bool = False) -> float:
    o = soft.soft_optimal(sp.lqr, sp.alpha)
    g = sp.lqr.gamma
    d = o.offset
    if undivided:  # d* not divided by 1 - gamma
        d = d * (1.0 - g)
    J = -(float(np.sum(o.P * sp.lqr.Sigma0)) + d)
    if no_e:  # entropy 1/2 log det(2 pi Sigma): the e dropped, m/2 per step
        J -= sp.alpha * 0.5 * sp.lqr.n_actions / (1.0 - g)
    return J


identity(
    id="lqr.soft_value",
    statement=r"\max J_\alpha = -\big(\mathrm{tr}(P^*\Sigma_0) + d^*\big),\ (1-\gamma)d^* = \gamma\,\mathrm{tr}(P^*W) "
              r"- \tfrac\alpha2\log\det(\pi\alpha M^{-1})",
    source="soft Bellman optimality V*(x) = alpha log ∫ exp(Q*(x,u)/alpha) du (Haarnoja et al. 2018) for LQR; "
           "pgexact.lqr.soft",
    reference="J_alpha of the closed-form optimal policy evaluated independently (primal-side cost, entropy by "
              "Gauss-Hermite quadrature of -log pi)",
    instance=_inst_soft,
    computed=lambda sp: soft.soft_optimal(sp.lqr, sp.alpha).J,
    expected=lambda sp: _soft_objective_reference(sp, *_soft_opt(sp)),
    tolerance=1e-10,
    tolerance_reason="two solves of condition <= ~1e2 and an exact quadrature; observed ~1e-14",
    mutants={
        "entropy without e (log det(2 pi Sigma)/2)": lambda sp: _soft_value_mutant(sp, no_e=True),
        "d* not divided by 1 - gamma": lambda sp: _soft_value_mutant(sp, undivided=True),
    },
)


def _inst_soft_pi(rng: np.random.Generator) -> tuple[SoftProblem, np.ndarray]:
    p = random_problem(rng, stochastic=False)
    return SoftProblem(p.lqr, float(rng.uniform(*SOFT_ALPHA_RANGE))), p.policy.gain(p.theta)


def _soft_pi(inst: tuple, half: float = 0.5) -> np.ndarray:
    sp, K0 = inst
    K, S = soft.soft_policy_iteration(sp.lqr, K0, sp.alpha, n_iterations=GN_ITERATIONS)[-1]
    return np.concatenate([K.reshape(-1), (S * (half / 0.5)).reshape(-1)]) / max(float(np.max(np.abs(K))), 1.0)


def _soft_pi_reference(inst: tuple) -> np.ndarray:
    sp, _ = inst
    K, P = riccati_by_iteration(sp.lqr)
    M = sp.lqr.R + sp.lqr.gamma * sp.lqr.B.T @ P @ sp.lqr.B
    S = 0.5 * sp.alpha * np.linalg.inv(M)
    return np.concatenate([K.reshape(-1), S.reshape(-1)]) / max(float(np.max(np.abs(K))), 1.0)


identity(
    id="lqr.soft_policy_iteration",
    statement=r"(K_{k+1}, \Sigma_{k+1}) = \big(M_k^{-1}(\gamma B^\top P_{K_k}A + N^\top), \tfrac\alpha2 M_k^{-1}\big)"
              r" \to (K^*, \Sigma^*)\ (12 \text{ steps})",
    source="Haarnoja et al. 2018, Lemma 2 (soft policy improvement) and Theorem 1 (soft policy iteration)",
    reference="(K*, Sigma*) from the doubling algorithm's P* (no policy evaluation, no Schur method)",
    instance=_inst_soft_pi,
    computed=_soft_pi,
    expected=_soft_pi_reference,
    tolerance=1e-9,
    tolerance_reason="quadratic convergence (Hewer) to machine precision within 8 steps; fixed points ~1e-13",
    mutants={"improvement covariance alpha M^-1 (factor 1/2 dropped)": lambda inst: _soft_pi(inst, half=1.0)},
)


@dataclass(frozen=True, eq=False)
class DDPGProblem:
    lqr: LQR
    policy: LinearGaussian
    theta: np.ndarray
    state_cov: np.ndarray


def _inst_ddpg(rng: np.random.Generator) -> DDPGProblem:
    p = random_problem(rng, stochastic=False)
    n = p.lqr.n_states
    G = rng.standard_normal((n, n))
    SD = G @ G.T / n + 0.5 * np.eye(n) if rng.integers(2) else np.array(p.lqr.Sigma0)
    return DDPGProblem(p.lqr, p.policy, p.theta, SD)


@functools.lru_cache(maxsize=16)
def _ddpg_scale(q: DDPGProblem) -> float:
    return max(float(np.max(np.abs(exact.policy_gradient(q.lqr, q.policy, q.theta)))),
               1e-3 * reference_cost(q.lqr, q.policy.gain(q.theta)))


def _true_gradient(q: DDPGProblem) -> np.ndarray:
    return central_difference(lambda th: -reference_cost(q.lqr, q.policy.gain(th)), q.theta) / _ddpg_scale(q)


identity(
    id="lqr.ddpg_bias",
    statement=r"\nabla_K J = g_D + b_D,\ g_D = E_{x\sim D}[\nabla\mu^\top\nabla_uQ(x,\mu(x))] = -2E_K\Sigma_D,\ "
              r"b_D = -2E_K(\Sigma_K - \Sigma_D)",
    source="Silver et al. 2014, sec. 4.2 (off-policy DPG); Lillicrap et al. 2016 (DDPG); the bias in closed "
           "form via Fazel et al. 2018, Lemma 1 (pgexact.lqr.offpolicy)",
    reference="central differences of the primal-side J (start distribution N(0, Sigma0)); D = N(0, Sigma0) on half "
              "of the instances, a random N(0, Sigma_D) on the others",
    instance=_inst_ddpg,
    computed=lambda q: (offpolicy.ddpg_gradient(q.lqr, q.policy, q.theta, state_cov=q.state_cov)
                        + offpolicy.ddpg_bias(q.lqr, q.policy, q.theta, state_cov=q.state_cov)) / _ddpg_scale(q),
    expected=_true_gradient,
    tolerance=FD_TOL,
    tolerance_reason=FD_REASON,
    mutants={"DDPG's gradient taken as the true gradient (bias omitted)": lambda q: offpolicy.ddpg_gradient(
        q.lqr, q.policy, q.theta, state_cov=q.state_cov) / _ddpg_scale(q)},
)


def _ddpg_definition(q: DDPGProblem, on_policy: bool = False) -> np.ndarray:
    """E_{x~D}[grad mu^T grad_u Q(x, mu(x))] by symmetric points +-L[:, k], L L' = Sigma_D (exact: the
    integrand is a quadratic form in x); ``on_policy`` integrates over Sigma_K instead (control)."""
    ev = _ev(LQRProblem(q.lqr, q.policy, q.theta))
    S = ev.Sigma if on_policy else q.state_cov
    lam, V = np.linalg.eigh(S)
    X = (V * np.sqrt(np.clip(lam, 0.0, None))).T
    mu = q.policy.mean(q.theta, X)
    return q.policy.mean_jacobian_t(q.theta, X, ev.grad_u_Q(X, mu)).sum(axis=0) / _ddpg_scale(q)


identity(
    id="lqr.ddpg_gradient",
    statement=r"E_{x\sim D}\big[\nabla_\theta\mu(x)^\top\nabla_u Q^{\mu}(x, u)|_{u=\mu(x)}\big] = -2E_K\Sigma_D",
    source="Silver et al. 2014, sec. 4.2, eq. 15 (off-policy deterministic policy gradient); pgexact.lqr.offpolicy",
    reference="the expectation integrated exactly by symmetric points of Sigma_D from the action-value gradient "
              "grad_u Q of the policy evaluation",
    instance=_inst_ddpg,
    computed=lambda q: offpolicy.ddpg_gradient(q.lqr, q.policy, q.theta, state_cov=q.state_cov) / _ddpg_scale(q),
    expected=_ddpg_definition,
    tolerance=1e-10,
    tolerance_reason="two exact evaluations of the same Gaussian expectation; rounding only (observed ~1e-15)",
    mutants={"on-policy Sigma_K instead of Sigma_D": lambda q: _ddpg_definition(q, on_policy=True)},
)
