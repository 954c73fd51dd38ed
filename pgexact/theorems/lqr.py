r"""Theorems on LQR with linear(-Gaussian) policies.

Instances (:func:`random_problem`): n in 1..4 states, m in 1..3 inputs, A with standard normal
entries scaled to spectral radius U(0.5, 1.3) (often open-loop unstable), B standard normal,
Q = I + G Gᵀ/n, R = I + H Hᵀ/m, Sigma0 = I, process noise 0.1 I (or none), policy noise 0.3 I
(or none), gamma U(0.5, 0.95); the gain is K* + Δ with Δ shrunk until the closed loop has
:math:`\rho(\sqrt\gamma(A - BK)) \le 0.9` (or halfway between :math:`\rho(K^*)` and 1 in the
rare instances where K* itself has less margin), so all Lyapunov solves have condition number at most
:math:`\sim 1/(1-0.9^2) \approx 5` per unit of :math:`\|A_K\|`.

Derivative checks use the fourth-order central difference
:math:`[-f(2h) + 8f(h) - 8f(-h) + f(-2h)]/(12h)` with :math:`h = 10^{-4}`: truncation
:math:`h^4 |C^{(5)}|/30` and rounding :math:`\approx 1.5\,\epsilon\,C/h`; with the stability
margin 0.9 both are below :math:`10^{-9} C`, so residuals (relative, with an absolute floor of
:math:`10^{-3} C`) must be below ``1e-6`` — observed ~1e-10.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..lqr import LQR, LinearGaussian
from ..lqr import exact
from .registry import Theorem, register, relative_error

__all__ = ["LQRProblem", "random_problem", "central_difference", "dpg_expectation", "score_expectation"]

FD_STEP = 1e-4
FD_TOL = 1e-6
FD_REASON = (
    "4th-order central difference, h = 1e-4: truncation h^4 C^(5)/30 and rounding 1.5 eps C / h are "
    "< 1e-9 C at stability margin 0.9; residual relative to max(|grad|, 1e-3 C); observed ~1e-10"
)


@dataclass(frozen=True)
class LQRProblem:
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
    return LQR(A, B, np.eye(n) + G @ G.T / n, np.eye(m) + Hm @ Hm.T / m, Sigma0=np.eye(n), gamma=g,
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


def _J(prob: LQRProblem) -> Callable[[np.ndarray], float]:
    return lambda th: exact.evaluate(prob.lqr, prob.policy.gain(th), prob.policy.action_cov(th)).J


def _fd_floor(prob: LQRProblem) -> float:
    return 1e-3 * abs(exact.evaluate(prob.lqr, prob.policy.gain(prob.theta), prob.policy.action_cov(prob.theta)).cost)


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


def dpg_expectation(ev: exact.LQREvaluation, policy: LinearGaussian, theta: np.ndarray) -> np.ndarray:
    r""":math:`\sum_t\gamma^t E_{x_t}[\nabla_\theta\mu(x_t)^\top \nabla_u Q_t(x_t, \mu(x_t))]` by exact cubature.

    The integrand is a homogeneous quadratic in x, so its expectation under any zero-mean law with
    second moment :math:`LL^\top` is :math:`\sum_k f(L_{:,k})`; for the discounted mixture of the
    :math:`p_t` that second moment is :math:`\Sigma_K`.
    """
    out = np.zeros(policy.n_params)
    for t, w, L in _state_factors(ev):
        X = L.T  # rows are the points L[:, k]
        mu = policy.mean(theta, X)
        out += w * policy.mean_jacobian_t(theta, X, ev.grad_u_Q(X, mu, t)).sum(axis=0)
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
def _inst_any(rng: np.random.Generator) -> LQRProblem:
    horizon = None if rng.integers(2) else int(rng.integers(1, 6))
    return random_problem(rng, horizon=horizon)


def _res_gradient(p: LQRProblem) -> float:
    fd = central_difference(_J(p), p.theta)
    return relative_error(exact.policy_gradient(p.lqr, p.policy, p.theta), fd, floor=_fd_floor(p))


register(Theorem(
    id="lqr.gradient_formula",
    statement=r"\nabla_K C(K) = 2\big[(R + \gamma B^\top P_K B)K - \gamma B^\top P_K A\big]\Sigma_K"
              r"\ \text{(and the finite-horizon sum)} = \text{central differences of } C",
    source="Fazel, Ge, Kakade & Mesbahi 2018, Lemma 1 (with discount, process and policy noise)",
    instance=_inst_any,
    residual=_res_gradient,
    tolerance=FD_TOL,
    tolerance_reason=FD_REASON,
))


def _inst_logstd(rng: np.random.Generator) -> LQRProblem:
    return random_problem(rng, learn_log_std=True, horizon=None if rng.integers(2) else int(rng.integers(1, 6)))


register(Theorem(
    id="lqr.noise_gradient",
    statement=r"\partial C / \partial \Sigma_u = (R + \gamma B^\top P_K B)/(1-\gamma),\ "
              r"\partial J/\partial \ell_i = -2 e^{2\ell_i} [\partial C/\partial\Sigma_u]_{ii} = \text{central differences}",
    source="pgexact.lqr.exact (derivation: C = tr(P_K Sigma0) + [tr(R Sigma_u) + gamma tr(P_K W_K)]/(1-gamma))",
    instance=_inst_logstd,
    residual=_res_gradient,
    tolerance=FD_TOL,
    tolerance_reason=FD_REASON,
))


def _inst_optimal(rng: np.random.Generator) -> LQR:
    return random_lqr(rng)


def _res_optimal(lqr: LQR) -> float:
    oc = exact.riccati(lqr)
    ev = exact.evaluate(lqr, oc.K)
    G = exact.cost_gradient(lqr, oc.K)
    scale = 2.0 * np.max(np.abs((lqr.R + lqr.gamma * lqr.B.T @ ev.P @ lqr.B) @ oc.K)) * np.max(np.abs(ev.Sigma))
    return float(np.max(np.abs(G)) / max(scale, 1.0)) + abs(ev.cost - oc.cost) / ev.cost


register(Theorem(
    id="lqr.optimal_stationary",
    statement=r"\nabla C(K^*) = 0 \text{ and } C(K^*) = \mathrm{tr}(P^*\Sigma_0) + \tfrac{\gamma}{1-\gamma}\mathrm{tr}(P^* W)"
              r"\text{ for } K^* \text{ from the DARE}",
    source="Fazel et al. 2018, sec. 2 (K* is the unique stationary point); Bertsekas, DPOC vol. I, sec. 4.1",
    instance=_inst_optimal,
    residual=_res_optimal,
    tolerance=1e-9,
    tolerance_reason="DARE (scipy, Schur method) and Lyapunov solves are backward stable: the gradient "
                     "cancels to ~1e-14 of its terms' size at condition numbers <= ~1e3; observed ~1e-14",
))


PG_TOL = 1e-9
PG_REASON = (
    "both sides are closed forms (Gaussian expectations integrated exactly by cubature vs. "
    "Fazel's formula from two Lyapunov solves): rounding only, observed ~1e-14; the closed form "
    "itself is checked against central differences by lqr.gradient_formula and lqr.noise_gradient"
)


def _res_dpg(p: LQRProblem) -> float:
    ev = exact.evaluate(p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta))
    return relative_error(dpg_expectation(ev, p.policy, p.theta), exact.policy_gradient(p.lqr, p.policy, p.theta),
                          floor=_fd_floor(p))


register(Theorem(
    id="lqr.deterministic_pg",
    statement=r"\nabla_\theta J = \sum_t \gamma^t E_{x_t}\big[\nabla_\theta\mu_\theta(x_t)^\top "
              r"\nabla_u Q_t(x_t, u)|_{u=\mu_\theta(x_t)}\big]",
    source="Silver et al. 2014, Theorem 1 (also holds for the Gaussian policy with fixed noise, "
           "since grad_u Q is affine in u)",
    instance=lambda rng: random_problem(rng, horizon=None if rng.integers(2) else int(rng.integers(1, 6))),
    residual=_res_dpg,
    tolerance=PG_TOL,
    tolerance_reason=PG_REASON,
))


def _res_spg(p: LQRProblem) -> float:
    ev = exact.evaluate(p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta))
    return relative_error(score_expectation(ev, p.policy, p.theta), exact.policy_gradient(p.lqr, p.policy, p.theta),
                          floor=_fd_floor(p))


register(Theorem(
    id="lqr.stochastic_pg",
    statement=r"\nabla_\theta J = \frac{1}{1-\gamma} E_{x\sim d, u\sim\pi}\big[\Sigma_u^{-1}(u-\mu)"
              r"\nabla_\theta\mu\; Q(x, u)\big]\ (\text{finite horizon: } \sum_t\gamma^t E_{p_t})",
    source="Sutton et al. 2000 (policy gradient theorem); Gaussian score as in the course notes",
    instance=lambda rng: random_problem(rng, stochastic=True,
                                        horizon=None if rng.integers(2) else int(rng.integers(1, 6))),
    residual=_res_spg,
    tolerance=PG_TOL,
    tolerance_reason=PG_REASON,
))


def _inst_gn(rng: np.random.Generator) -> LQRProblem:
    return random_problem(rng, stochastic=False)


GN_ITERATIONS = 12


def _res_gn(p: LQRProblem) -> float:
    Kstar = exact.optimal_gain(p.lqr)
    K = p.policy.gain(p.theta)
    for _ in range(GN_ITERATIONS):
        K = K - 0.5 * exact.gauss_newton_direction(p.lqr, K)
    return float(np.max(np.abs(K - Kstar)) / max(np.max(np.abs(Kstar)), 1.0))


register(Theorem(
    id="lqr.gauss_newton_convergence",
    statement=r"K_{k+1} = K_k - \tfrac12 (R+\gamma B^\top P_{K_k}B)^{-1}\nabla C(K_k)\Sigma_{K_k}^{-1} "
              r"\to K^* \text{ (12 steps from a stabilizing } K_0)",
    source="Fazel et al. 2018, Theorem 7 (Gauss-Newton, eta = 1/2); Hewer 1971 (policy iteration, quadratic rate)",
    instance=_inst_gn,
    residual=_res_gn,
    tolerance=1e-9,
    tolerance_reason="quadratic convergence from ||K0 - K*|| = O(1) reaches machine precision in <= 8 "
                     "steps on these instances; the fixed point is K* to the DARE's accuracy (~1e-13)",
))


NPG_STEPS = 20


def _res_npg(p: LQRProblem) -> float:
    r"""Positive part of the worst violation of the per-step contraction, over 20 NPG steps.

    Derivation (constants re-derived from Fazel et al.'s Lemma 10, cost difference, and Lemma 11,
    gradient domination, for the sqrt(gamma)-scaled noise-free equivalent problem with
    :math:`\Sigma_0' = \Sigma_0 + rac{\gamma}{1-\gamma}W \succeq \mu I`): with
    :math:`K' = K - 2\eta E_K` and :math:`\eta\|R + \gamma B^	op P_K B\| \le 1/2`,
    :math:`C(K') - C(K) = -4\eta\,\mathrm{tr}(\Sigma_{K'}E_K^	op E_K) + 4\eta^2\mathrm{tr}(\Sigma_{K'}E_K^	op(R+\gamma B^	op P_KB)E_K)
    \le -2\eta\mu\,\mathrm{tr}(E_K^	op E_K) \le -rac{2\eta\mu\sigma_{\min}(R)}{\|\Sigma_{K^*}\|}(C(K) - C^*)`.
    The step :math:`\eta = 1/(2(\|R\| + \gamma\|B\|^2 C(K_0)/\mu))` satisfies the condition at every
    iterate because :math:`\|P_K\| \le C(K)/\mu` and the cost decreases monotonically.
    """
    lqr = p.lqr
    g = lqr.gamma
    oc = exact.riccati(lqr)
    K = p.policy.gain(p.theta)
    ev0 = exact.evaluate(lqr, K)
    Sig0 = np.array(lqr.Sigma0) + (g / (1.0 - g)) * lqr.noise_cov
    mu = float(np.linalg.eigvalsh(Sig0)[0])
    eta = 0.5 / (np.linalg.norm(lqr.R, 2) + g * np.linalg.norm(lqr.B, 2) ** 2 * ev0.cost / mu)
    sig_star = np.linalg.norm(exact.evaluate(lqr, oc.K).Sigma, 2)
    rate = 1.0 - 2.0 * eta * mu * float(np.linalg.eigvalsh(lqr.R)[0]) / sig_star
    gap = ev0.cost - oc.cost
    gap0 = gap
    worst = 0.0
    for _ in range(NPG_STEPS):
        K = K - eta * exact.npg_direction(lqr, K)
        new = exact.evaluate(lqr, K).cost - oc.cost
        worst = max(worst, (new - rate * gap) / max(gap0, 1e-300))
        gap = new
    return max(worst, 0.0)


register(Theorem(
    id="lqr.npg_contraction",
    statement=r"C(K') - C^* \le \Big(1 - \frac{2\eta\mu\sigma_{\min}(R)}{\|\Sigma_{K^*}\|}\Big)(C(K) - C^*),\ "
              r"K' = K - \eta\nabla C(K)\Sigma_K^{-1},\ \eta = \frac{1}{2(\|R\| + \gamma\|B\|^2 C(K_0)/\mu)},\ "
              r"\mu = \sigma_{\min}(\Sigma_0 + \tfrac{\gamma}{1-\gamma}W)",
    source="Fazel et al. 2018, sec. 4 (natural policy gradient; Lemmas 10-11, constants re-derived for "
           "the sqrt(gamma)-scaled problem: see _res_npg)",
    instance=_inst_gn,
    residual=_res_npg,
    tolerance=1e-10,
    tolerance_reason="an inequality: the residual is the positive part of the violation relative to the "
                     "initial gap; rounding in the cost differences is ~1e-13 of C",
))


def _res_duality(p: LQRProblem) -> float:
    lqr, K, Su = p.lqr, p.policy.gain(p.theta), p.policy.action_cov(p.theta)
    ev = exact.evaluate(lqr, K, Su)
    mass = 1.0 / (1.0 - lqr.gamma) if lqr.horizon is None else float(np.sum(lqr.gamma ** np.arange(lqr.horizon)))
    dual = float(np.sum((lqr.Q + K.T @ lqr.R @ K) * ev.Sigma) + np.sum(lqr.R * Su) * mass)
    return abs(ev.cost - dual) / abs(ev.cost)


register(Theorem(
    id="lqr.cost_duality",
    statement=r"C(K) = \mathrm{tr}(P_K\Sigma_0) + c_K = \mathrm{tr}((Q + K^\top RK)\Sigma_K) + \mathrm{tr}(R\Sigma_u)\sum_t\gamma^t",
    source="Fazel et al. 2018, sec. 2 (C(K) = tr(P_K Sigma0) = tr((Q + K^T R K) Sigma_K)), with noise",
    instance=_inst_any,
    residual=_res_duality,
    tolerance=1e-10,
    tolerance_reason="two independent Lyapunov solves (P_K and Sigma_K), each backward stable; condition "
                     "number <= ~1e2 at margin 0.9; observed ~1e-15",
))
