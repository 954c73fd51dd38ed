r"""Theorems on the entropy-regularized (soft) LQR and on DDPG's off-policy gradient."""

from __future__ import annotations

import functools
import itertools
from types import SimpleNamespace
from dataclasses import dataclass

import numpy as np

from ...lqr import LQR, LinearGaussian, exact, offpolicy
from ...lqr import soft as soft_lqr
from ..registry import identity
from ._common import (
    FD_REASON,
    FD_TOL,
    LQRProblem,
    _ev,
    central_difference,
    random_lqr,
    random_problem,
    reference_cost,
    riccati_by_iteration,
)
from .optimization import GN_ITERATIONS

__all__: list[str] = []  # the theorems are registered, not exported



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


@functools.cache
def _gh_grid(m: int) -> tuple[np.ndarray, np.ndarray]:
    """The 5^m nodes (rows) and weights of the tensor Gauss-Hermite rule: constants of m, built once
    rather than at each of the ~4 (mn + m^2) evaluations of a central difference."""
    Z = np.array(list(itertools.product(_GH_Z, repeat=m)))
    wts = np.prod(np.array(list(itertools.product(_GH_W, repeat=m))), axis=1)
    Z.flags.writeable = False
    wts.flags.writeable = False
    return Z, wts


def _soft_objective_reference(sp: SoftProblem, K: np.ndarray, S: np.ndarray) -> float:
    r""":math:`J_\alpha` by an independent route: the primal-side cost (:func:`reference_cost`) and
    the entropy as :math:`-E[\log\pi(u)]` by a 5-point tensor Gauss-Hermite rule over
    :math:`u = Lz`, :math:`LL^\top = \Sigma` (exact: :math:`\log\pi` is quadratic in u)."""
    return -reference_cost(sp.lqr, K, S) + sp.alpha * _gh_entropy(S) / (1.0 - sp.lqr.gamma)


def _gh_entropy(S: np.ndarray) -> float:
    r""":math:`-E[\log\pi(u)]` of :math:`N(0, S)` by the 5-point tensor Gauss-Hermite rule over :math:`u = Lz`
    (exact: the integrand is quadratic in u), never the closed form :math:`\tfrac12\log\det(2\pi eS)`."""
    m = S.shape[0]
    L = np.linalg.cholesky(S)
    Z, wts = _gh_grid(m)
    U = Z @ L.T
    quad = np.einsum("ki,ij,kj->k", U, np.linalg.inv(S), U)
    _, logdet = np.linalg.slogdet(2.0 * np.pi * S)
    return float(np.sum(wts * (0.5 * quad + 0.5 * logdet)))


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
    o = soft_lqr.soft_optimal(sp.lqr, sp.alpha)
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
    o = soft_lqr.soft_optimal(sp.lqr, sp.alpha)
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
    computed=lambda sp: soft_lqr.soft_optimal(sp.lqr, sp.alpha).J,
    expected=lambda sp: _soft_objective_reference(sp, *_soft_opt(sp)),
    tolerance=1e-11,
    tolerance_reason="two solves of condition <= ~1e2 and an exact quadrature; observed ~1e-14"
    + '; measured residuals <= 1.1e-14 over 200 instances (seed 1), so 1e-11 leaves a margin of ~901 and rejects a relative mistake of 1e-09',
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
    K, S = soft_lqr.soft_policy_iteration(sp.lqr, K0, sp.alpha, n_iterations=GN_ITERATIONS)[-1]
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
    tolerance=1e-11,
    tolerance_reason="quadratic convergence (Hewer) to machine precision within 8 steps; fixed points ~1e-13"
    + '; measured residuals <= 1.1e-14 over 200 instances (seed 1), so 1e-11 leaves a margin of ~919 and rejects a relative mistake of 1e-09',
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


def _one_step_deviation_value(q: DDPGProblem, theta_prime: np.ndarray) -> float:
    r""":math:`E_{x\sim N(0,\Sigma_D)}[Q^{\mu_\theta}(x, \mu_{\theta'}(x))]` on the primal side: the stage cost of the
    gain K' on :math:`\Sigma_D`, then the cost of K from :math:`\Sigma_1 = A_{K'}\Sigma_DA_{K'}^\top + W`
    (:func:`reference_cost` with that initial covariance), as a reward. Never :math:`P_K`."""
    lqr, K = q.lqr, q.policy.gain(q.theta)
    Kp = q.policy.gain(theta_prime)
    QK = lqr.Q + Kp.T @ lqr.R @ Kp - lqr.N @ Kp - Kp.T @ lqr.N.T
    AK = lqr.A - lqr.B @ Kp
    Sigma1 = AK @ q.state_cov @ AK.T + lqr.noise_cov
    fields = ("n_states", "n_actions", "A", "B", "Q", "R", "N", "noise_cov", "gamma", "horizon")
    continuation = SimpleNamespace(**{f: getattr(lqr, f) for f in fields}, Sigma0=Sigma1)
    return -(float(np.trace(QK @ q.state_cov)) + lqr.gamma * reference_cost(continuation, K))


def _ddpg_definition(q: DDPGProblem) -> np.ndarray:
    """d/dtheta' of E_{x~D}[Q^{mu_theta}(x, mu_theta'(x))] at theta' = theta by 4th-order central differences of the
    primal-side one-step-deviation value (the deterministic policy gradient of Silver et al. as a derivative)."""
    return central_difference(lambda th: _one_step_deviation_value(q, th), q.theta) / _ddpg_scale(q)


def _ddpg_on_policy(q: DDPGProblem) -> np.ndarray:
    """The mistake: the state distribution of the current policy (Sigma_K) in place of D."""
    Sigma_K = _ev(LQRProblem(q.lqr, q.policy, q.theta)).Sigma
    return offpolicy.ddpg_gradient(q.lqr, q.policy, q.theta, state_cov=Sigma_K) / _ddpg_scale(q)


identity(
    id="lqr.ddpg_gradient",
    statement=r"E_{x\sim D}\big[\nabla_\theta\mu(x)^\top\nabla_u Q^{\mu}(x, u)|_{u=\mu(x)}\big] = "
              r"\nabla_{\theta'}E_{x\sim D}\big[Q^{\mu_\theta}(x, \mu_{\theta'}(x))\big]_{\theta'=\theta} = -2E_K\Sigma_D",
    source="Silver et al. 2014, sec. 4.2, eq. 15 (off-policy deterministic policy gradient); pgexact.lqr.offpolicy",
    reference="4th-order central differences in theta' of E_{x~D}[Q^{mu_theta}(x, mu_theta'(x))] computed on the "
              "primal side (stage cost on Sigma_D, then the Kronecker-solved cost of K from the next state's "
              "covariance): no P_K, no grad_u Q of the library's evaluation",
    instance=_inst_ddpg,
    computed=lambda q: offpolicy.ddpg_gradient(q.lqr, q.policy, q.theta, state_cov=q.state_cov) / _ddpg_scale(q),
    expected=_ddpg_definition,
    tolerance=FD_TOL,
    tolerance_reason=FD_REASON,
    mutants={"on-policy Sigma_K instead of Sigma_D": _ddpg_on_policy},
)


def _inst_soft_eval(rng: np.random.Generator) -> tuple[SoftProblem, np.ndarray, np.ndarray]:
    """A soft LQR, its soft-optimal gain and a random covariance (the optimum's, rescaled by e^N(0, 1) per axis)."""
    sp = _inst_soft(rng)
    K, S = _soft_opt(sp)
    D = np.diag(np.exp(0.5 * rng.standard_normal(sp.lqr.n_actions)))
    return sp, K, D @ S @ D


def _soft_eval(inst: tuple, *, entropy_e: bool = True) -> tuple[float, float]:
    sp, K, S = inst
    ev = soft_lqr.soft_evaluate(sp.lqr, K, S, sp.alpha)
    H = soft_lqr.gaussian_entropy(S)
    if not entropy_e:  # the mistake: 1/2 log det(2 pi Sigma), the e dropped (m/2 nats per step)
        m = S.shape[0]
        return ev.J - sp.alpha * 0.5 * m / (1.0 - sp.lqr.gamma), H - 0.5 * m
    return ev.J, H


identity(
    id="lqr.soft_evaluate",
    statement=r"J_\alpha(K, \Sigma) = -C(K, \Sigma) + \frac{\alpha}{1-\gamma}\mathcal H(\Sigma),\ "
              r"\mathcal H(\Sigma) = \tfrac12\log\det(2\pi e\Sigma)",
    source="Haarnoja et al. 2018 (SAC), eq. 1 (maximum-entropy objective) for linear-Gaussian policies on LQR; "
           "Cover & Thomas, Elements of Information Theory, Theorem 8.4.1 (entropy of a Gaussian)",
    reference="the primal-side cost (Kronecker solve) and the entropy as -E[log pi] by Gauss-Hermite quadrature",
    instance=_inst_soft_eval,
    computed=_soft_eval,
    expected=lambda inst: (_soft_objective_reference(*inst), _gh_entropy(inst[2])),
    tolerance=1e-11,
    tolerance_reason="a solve of condition <= ~1e2 and an exact quadrature, relative to max(|J|, 1): rounding only "
    "(measured residuals <= 2e-14 over 50 instances, a margin of ~500)",
    mutants={"entropy without e (log det(2 pi Sigma)/2)": lambda inst: _soft_eval(inst, entropy_e=False)},
)
