r"""Convergence theory of policy optimization on tabular MDPs, with every constant computed on the instance.

Each theorem runs the exact iteration it is about for a few steps on a small random MDP and
compares the exact sub-optimality with the published bound at every step; the registry's
``lhs / rhs`` is the largest ratio *(exact gap) / (bound)* over the steps, so the tightest ratio
seen says how close the bound comes to binding. Conventions: rewards in [0, 1], values
unnormalized :math:`V^\pi(\rho) = E_{s_0\sim\rho}\sum_t\gamma^t r_t`, normalized occupancy
:math:`d_\rho^\pi = (1-\gamma)\rho^\top(I - \gamma P_\pi)^{-1}`, and
:math:`\|d_\rho^{\pi^*}/\mu\|_\infty` the distribution-mismatch coefficient. The iterations are
written out from exact tabular evaluations (a dense solve per step, :mod:`pgexact.theorems._tabular`),
independently of :mod:`pgexact.updates`.

Instances: 2..4 states, 2..3 actions, P rows Dirichlet(1), rewards U[0, 1], initial and
evaluation distributions Dirichlet(1) (full support), γ as stated per theorem. Residuals: the
positive part of ratio − 1 (rounding ~1e-13 in the ratios of quantities of size ≤ 1/(1−γ)).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ._tabular import (
    Tabular,
    log_softmax,
    occupancy,
    optimal,
    random_tabular,
    soft_optimal,
    softmax,
    values,
)
from .registry import inequality

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references below serve
#: those theorems and the tests.
__all__: list[str] = []

TOL = 1e-9
REASON = "ratios of exact gaps (dense solves of size <= 4, condition <= 2/(1-gamma) <= 40) to closed-form bounds: rounding ~1e-13"


def _ratio(gaps: np.ndarray, bounds: np.ndarray) -> float:
    return float(np.max(gaps / bounds))


# ----------------------------------------------------------------------------- softmax PG (Mei et al. 2020)
@dataclass(frozen=True)
class PGRun:
    gaps: np.ndarray  # V*(rho) - V^{pi_t}(rho), t = 1..T
    t: np.ndarray
    c: np.ndarray  # running min over 1..t of min_s pi_t(a*(s)|s)
    mismatch: float  # ||d_mu^{pi*} / mu||_inf
    inv_mu: float
    S: int
    gamma: float


def softmax_pg_run(m: Tabular, theta0: np.ndarray, T: int) -> PGRun:
    r"""Exact softmax PG on :math:`V(\mu)` with :math:`\eta = (1-\gamma)^3/8` (Mei et al. 2020, Algorithm 1)."""
    S, A = m.r.shape
    V_star, pi_star = optimal(m)
    a_star = pi_star.argmax(axis=1)
    eta = (1.0 - m.gamma) ** 3 / 8.0
    theta = theta0.copy()
    gaps, cs = np.empty(T), np.empty(T)
    pi = softmax(theta)
    V, Q = values(m, pi)
    for t in range(T):
        d = occupancy(m, pi, m.mu)
        theta = theta + eta * d[:, None] * pi * (Q - V[:, None]) / (1.0 - m.gamma)
        pi = softmax(theta)
        V, Q = values(m, pi)  # the gap of step t, and the gradient of step t + 1
        gaps[t] = m.rho @ (V_star - V)
        cs[t] = float(np.min(pi[np.arange(S), a_star]))
    return PGRun(gaps, np.arange(1, T + 1), np.minimum.accumulate(cs),
                 float(np.max(occupancy(m, pi_star, m.mu) / m.mu)), float(np.max(1.0 / m.mu)), S, m.gamma)


def mei_pg_bound(run: PGRun, exponent: float = -6.0) -> np.ndarray:
    r""":math:`\frac{16 S}{c^2 (1-\gamma)^6 t}\|d_\mu^{\pi^*}/\mu\|_\infty^2\|1/\mu\|_\infty` (``exponent``: that of 1−γ)."""
    return 16.0 * run.S * run.mismatch**2 * run.inv_mu * (1.0 - run.gamma) ** exponent / (run.c**2 * run.t)


def _pg_instance(rng: np.random.Generator) -> PGRun:
    # mu away from the simplex's faces and a moderate init keep ||1/mu|| and 1/c^2 moderate
    m = random_tabular(rng, (0.93, 0.97), mu_concentration=5.0)
    return softmax_pg_run(m, 0.5 * rng.standard_normal(m.r.shape), 20)


inequality(
    id="convergence.softmax_pg_rate",
    statement=r"\eta = \frac{(1-\gamma)^3}{8} \Rightarrow V^*(\rho) - V^{\pi_{\theta_t}}(\rho) \le "
    r"\frac{16 S}{c^2(1-\gamma)^6 t}\Big\|\frac{d_\mu^{\pi^*}}{\mu}\Big\|_\infty^2\Big\|\frac1\mu\Big\|_\infty,"
    r"\ c = \min_{1\le t'\le t}\min_s\pi_{\theta_{t'}}(a^*(s)|s)",
    source="Mei, Xiao, Szepesvari & Schuurmans 2020, 'On the Global Convergence Rates of Softmax Policy Gradient "
    "Methods', ICML, Theorem 4 (tabular softmax, exact gradient of V(mu)); c along the path up to t suffices (its proof "
    "is an induction over the steps)",
    reference="exact softmax PG iterates (dense solves), exact V* by policy iteration; max over t = 1..20 of gap/bound",
    instance=_pg_instance,
    lhs=lambda run: _ratio(run.gaps, mei_pg_bound(run)),
    rhs=lambda run: 1.0,
    tolerance=TOL,
    tolerance_reason=REASON,
    mutants={"(1-gamma)^6 in the numerator": (lambda run: _ratio(run.gaps, mei_pg_bound(run, +6.0)), None)},
)


# ----------------------------------------------------------------------------- NPG (Agarwal et al. 2021)
@dataclass(frozen=True)
class NPGRun:
    gaps: np.ndarray
    t: np.ndarray
    eta: float
    n_actions: int
    gamma: float


def npg_run(m: Tabular, eta: float, T: int) -> NPGRun:
    r"""Tabular softmax NPG from θ = 0: :math:`\pi_{t+1} \propto \pi_t \exp(\eta A^{\pi_t}/(1-\gamma))`."""
    V_star, _ = optimal(m)
    theta = np.zeros_like(m.r)
    gaps = np.empty(T)
    V, Q = values(m, softmax(theta))
    for t in range(T):
        theta = theta + eta * (Q - V[:, None]) / (1.0 - m.gamma)
        V, Q = values(m, softmax(theta))  # the gap of step t, and the update of step t + 1
        gaps[t] = m.rho @ (V_star - V)
    return NPGRun(gaps, np.arange(1, T + 1), eta, m.r.shape[1], m.gamma)


def npg_bound(run: NPGRun, power: float = 1.0) -> np.ndarray:
    r""":math:`\log|A|/(\eta T) + 1/((1-\gamma)^2 T)` (``power``: that of T)."""
    return (np.log(run.n_actions) / run.eta + 1.0 / (1.0 - run.gamma) ** 2) / run.t**power


def _npg_instance(rng: np.random.Generator) -> NPGRun:
    # small steps and moderate gamma: log|A|/(eta T) dominates and the bound comes within ~3x of the gap
    m = random_tabular(rng, (0.3, 0.7))
    return npg_run(m, float(rng.choice([0.01, 0.02, 0.05])), 30)


inequality(
    id="convergence.npg_rate",
    statement=r"\theta_0 = 0,\ \pi_{t+1}\propto\pi_t e^{\eta A^{\pi_t}/(1-\gamma)} \Rightarrow "
    r"V^*(\rho) - V^{\pi_T}(\rho) \le \frac{\log|A|}{\eta T} + \frac{1}{(1-\gamma)^2 T}",
    source="Agarwal, Kakade, Lee & Mahajan 2021, 'On the Theory of Policy Gradient Methods', JMLR 22, Theorem 16 "
    "(tabular softmax NPG; Theorem 5.3 of the arXiv version)",
    reference="exact NPG iterates, exact V* by policy iteration; max over T = 1..30 of gap/bound",
    instance=_npg_instance,
    lhs=lambda run: _ratio(run.gaps, npg_bound(run)),
    rhs=lambda run: 1.0,
    tolerance=TOL,
    tolerance_reason=REASON,
    mutants={"a 1/T^2 rate": (lambda run: _ratio(run.gaps, npg_bound(run, 2.0)), None)},
)


# ----------------------------------------------------------------------------- gradient domination
@dataclass(frozen=True)
class DominationProblem:
    gap: float  # V*(rho) - V^pi(rho)
    mismatch: float  # ||d_rho^{pi*} / d_mu^pi||_inf
    mismatch_mu: float  # ||d_rho^{pi*} / mu||_inf
    best_ascent: float  # max_{pibar} (pibar - pi)^T grad_pi V^pi(mu) = sum_s d_mu^pi(s) max_a A(s,a) / (1-gamma)
    gamma: float


def _domination_instance(rng: np.random.Generator) -> DominationProblem:
    m = random_tabular(rng, (0.8, 0.97))
    pi = softmax(float(rng.choice([0.5, 1.0, 3.0])) * rng.standard_normal(m.r.shape))
    V_star, pi_star = optimal(m)
    V, Q = values(m, pi)
    d_mu = occupancy(m, pi, m.mu)
    d_star = occupancy(m, pi_star, m.rho)
    ascent = float(d_mu @ (Q - V[:, None]).max(axis=1)) / (1.0 - m.gamma)
    return DominationProblem(float(m.rho @ (V_star - V)), float(np.max(d_star / d_mu)),
                             float(np.max(d_star / m.mu)), ascent, m.gamma)


inequality(
    id="convergence.gradient_domination",
    statement=r"V^*(\rho) - V^\pi(\rho) \le \Big\|\frac{d_\rho^{\pi^*}}{d_\mu^\pi}\Big\|_\infty "
    r"\max_{\bar\pi}(\bar\pi - \pi)^\top\nabla_\pi V^\pi(\mu) \le \frac{1}{1-\gamma}\Big\|\frac{d_\rho^{\pi^*}}{\mu}\Big\|_\infty"
    r"\max_{\bar\pi}(\bar\pi - \pi)^\top\nabla_\pi V^\pi(\mu)",
    source="Agarwal, Kakade, Lee & Mahajan 2021, JMLR 22, Lemma 4 (gradient domination, direct parametrization; "
    "Lemma 4.1 of the arXiv version), with max over the simplex = sum_s d_mu^pi(s) max_a A(s, a) / (1-gamma)",
    reference="exact V* by policy iteration, exact occupancies and advantages of a random softmax policy",
    instance=_domination_instance,
    lhs=lambda p: p.gap,
    rhs=lambda p: p.mismatch * p.best_ascent,
    tolerance=TOL,
    tolerance_reason=REASON,
    floor=1e-6,
    mutants={
        "1/(1-gamma) of the gradient dropped": (None, lambda p: (1.0 - p.gamma) * p.mismatch * p.best_ascent),
    },
)


# ----------------------------------------------------------------------------- entropy-regularized NPG (Cen et al.)
@dataclass(frozen=True)
class SoftNPGRun:
    errors: np.ndarray  # ||Q*_tau - Q^{(t+1)}_tau||_inf, t = 0..T-1
    log_errors: np.ndarray  # ||log pi*_tau - log pi^{(t+1)}||_inf
    C1: float
    eta: float
    tau: float
    gamma: float


def soft_npg_run(m: Tabular, tau: float, eta: float, theta0: np.ndarray, T: int) -> SoftNPGRun:
    r""":math:`\pi^{(t+1)} \propto (\pi^{(t)})^{1-\eta\tau/(1-\gamma)}\exp(\eta Q^{(t)}_\tau/(1-\gamma))`, in log space."""
    Q_star, logpi_star = soft_optimal(m, tau)
    logpi = log_softmax(theta0)
    Q0 = values(m, np.exp(logpi), tau)[1]
    C1 = float(np.max(np.abs(Q_star - Q0))
               + 2.0 * tau * (1.0 - eta * tau / (1.0 - m.gamma)) * np.max(np.abs(logpi_star - logpi)))
    errors, log_errors = np.empty(T), np.empty(T)
    Q = Q0
    for t in range(T):
        logpi = log_softmax((1.0 - eta * tau / (1.0 - m.gamma)) * logpi + eta * Q / (1.0 - m.gamma))
        Q = values(m, np.exp(logpi), tau)[1]  # the error of step t, and the update of step t + 1
        errors[t] = np.max(np.abs(Q_star - Q))
        log_errors[t] = np.max(np.abs(logpi_star - logpi))
    return SoftNPGRun(errors, log_errors, C1, eta, tau, m.gamma)


def cen_ratio(run: SoftNPGRun, log_factor: float | None = None) -> float:
    r"""Largest of error / bound over t for both bounds of the theorem: :math:`C_1\gamma(1-\eta\tau)^t` on Q and
    :math:`2C_1\tau^{-1}(1-\eta\tau)^t` on log π (``log_factor`` replaces :math:`\tau^{-1}`)."""
    rate = (1.0 - run.eta * run.tau) ** np.arange(run.errors.size)
    f = 1.0 / run.tau if log_factor is None else log_factor
    return max(_ratio(run.errors, run.C1 * run.gamma * rate), _ratio(run.log_errors, 2.0 * run.C1 * f * rate))


def _soft_npg_instance(rng: np.random.Generator) -> SoftNPGRun:
    m = random_tabular(rng, (0.5, 0.9))
    tau = float(rng.choice([0.02, 0.05, 0.1]))
    eta = float(rng.uniform(0.5, 1.0)) * (1.0 - m.gamma) / tau
    return soft_npg_run(m, tau, eta, rng.standard_normal(m.r.shape), 8)


inequality(
    id="convergence.entropy_npg_linear",
    statement=r"0<\eta\le\frac{1-\gamma}{\tau} \Rightarrow \|Q^*_\tau - Q^{(t+1)}_\tau\|_\infty \le C_1\gamma(1-\eta\tau)^t,\ "
    r"\|\log\pi^*_\tau - \log\pi^{(t+1)}\|_\infty \le 2C_1\tau^{-1}(1-\eta\tau)^t,\ "
    r"C_1 = \|Q^*_\tau - Q^{(0)}_\tau\|_\infty + 2\tau\Big(1-\frac{\eta\tau}{1-\gamma}\Big)\|\log\pi^*_\tau - \log\pi^{(0)}\|_\infty",
    source="Cen, Cheng, Chen, Wei & Chi 2021, 'Fast Global Convergence of Natural Policy Gradient Methods with "
    "Entropy Regularization', Operations Research 70(4), Theorem 1",
    reference="exact entropy-regularized NPG iterates (soft evaluations by dense solves), Q*_tau by soft value "
    "iteration to 1e-14; max over t = 0..7 of error/bound",
    instance=_soft_npg_instance,
    lhs=cen_ratio,
    rhs=lambda run: 1.0,
    tolerance=TOL,
    tolerance_reason=REASON + "; Q*_tau to 1e-14",
    mutants={"tau instead of 1/tau in the log-policy bound": (lambda run: cen_ratio(run, log_factor=run.tau), None)},
)


# ----------------------------------------------------------------------------- PMD, increasing steps (Xiao 2022)
@dataclass(frozen=True)
class PMDRun:
    gaps: np.ndarray  # V*(rho) - V^{pi_k}(rho), k = 0..K
    theta: float  # vartheta_rho = ||d_rho^{pi*}/rho||_inf / (1-gamma)
    D0: float  # E_{s ~ d_rho^{pi*}} KL(pi*_s || pi_0,s)
    eta0: float


def pmd_run(m: Tabular, eta0: float, pi0: np.ndarray, K: int) -> PMDRun:
    r"""KL policy mirror descent :math:`\pi_{k+1}\propto\pi_k\exp(\eta_k Q^{\pi_k})` with :math:`\eta_k = \eta_0/\gamma^k`."""
    V_star, pi_star = optimal(m)
    d_star = occupancy(m, pi_star, m.rho)
    with np.errstate(divide="ignore", invalid="ignore"):
        kl = np.where(pi_star > 0, pi_star * (np.log(pi_star) - np.log(pi0)), 0.0).sum(axis=1)
    pi = pi0
    gaps = np.empty(K + 1)
    for k in range(K + 1):
        V, Q = values(m, pi)
        gaps[k] = m.rho @ (V_star - V)
        pi = softmax(np.log(pi) + eta0 / m.gamma**k * Q)
    return PMDRun(gaps, float(np.max(d_star / m.rho)) / (1.0 - m.gamma), float(d_star @ kl), eta0)


def xiao_bound(run: PMDRun, with_divergence: bool = True) -> np.ndarray:
    r""":math:`(1-1/\vartheta_\rho)^k\big(V^*(\rho) - V^{\pi_0}(\rho) + D_0^*/((\vartheta_\rho-1)\eta_0)\big)`, k = 0..K."""
    extra = run.D0 / ((run.theta - 1.0) * run.eta0) if with_divergence else 0.0
    return (1.0 - 1.0 / run.theta) ** np.arange(run.gaps.size) * (run.gaps[0] + extra)


def _pmd_instance(rng: np.random.Generator) -> PMDRun:
    m = random_tabular(rng, (0.5, 0.9))
    pi0 = softmax(rng.standard_normal(m.r.shape))
    return pmd_run(m, float(rng.choice([1e-3, 3e-3, 1e-2])), pi0, 6)


inequality(
    id="convergence.pmd_linear",
    statement=r"\eta_{k+1}\ge\eta_k/\gamma \Rightarrow V^*(\rho) - V^{\pi_k}(\rho) \le \Big(1-\frac{1}{\vartheta_\rho}\Big)^k"
    r"\Big(V^*(\rho) - V^{\pi_0}(\rho) + \frac{D_0^*}{(\vartheta_\rho - 1)\eta_0}\Big),\ "
    r"\vartheta_\rho = \frac{1}{1-\gamma}\Big\|\frac{d_\rho^{\pi^*}}{\rho}\Big\|_\infty,\ D_0^* = E_{s\sim d_\rho^{\pi^*}}KL(\pi^*_s\|\pi_{0,s})",
    source="Xiao 2022, 'On the Convergence Rates of Policy Gradient Methods', JMLR 23, Theorem 10 (policy mirror "
    "descent with KL, geometrically increasing step sizes); Lan 2021, 'Policy Mirror Descent for Reinforcement "
    "Learning', Theorem 1 (linear rate of PMD)",
    reference="exact PMD iterates with eta_k = eta_0 / gamma^k, exact V* by policy iteration; max over k = 0..6 of gap/bound",
    instance=_pmd_instance,
    lhs=lambda run: _ratio(run.gaps, xiao_bound(run)),
    rhs=lambda run: 1.0,
    tolerance=TOL,
    tolerance_reason=REASON,
    mutants={"initial-divergence term D_0*/((theta-1) eta_0) dropped": (
        lambda run: _ratio(run.gaps, xiao_bound(run, with_divergence=False)), None)},
)


# ----------------------------------------------------------------------------- CPI (Kakade & Langford 2002)
@dataclass(frozen=True)
class CPIProblem:
    improvement: float  # V^{pi_new}(mu) - V^pi(mu)
    alpha: float
    advantage: float  # policy advantage E_{s ~ d_mu^pi} E_{a ~ pi'} A^pi(s, a)
    eps: float  # max_s |E_{a ~ pi'} A^pi(s, a)|
    gamma: float


def cpi_lower_bound(p: CPIProblem, power: float = 1.0) -> float:
    r""":math:`\frac{\alpha}{(1-\gamma)^{power}}\big(\mathbb{A} - \frac{2\alpha\gamma\epsilon}{1-\gamma(1-\alpha)}\big)`."""
    return p.alpha / (1.0 - p.gamma) ** power * (p.advantage - 2.0 * p.alpha * p.gamma * p.eps / (1.0 - p.gamma * (1.0 - p.alpha)))


def _cpi_instance(rng: np.random.Generator) -> CPIProblem:
    m = random_tabular(rng, (0.5, 0.95))
    pi = softmax(rng.standard_normal(m.r.shape))
    V, Q = values(m, pi)
    A = Q - V[:, None]
    pi_greedy = np.eye(m.r.shape[1])[A.argmax(axis=1)]  # CPI's greedy policy
    adv_s = np.sum(pi_greedy * A, axis=1)
    advantage = float(occupancy(m, pi, m.mu) @ adv_s)
    eps = float(np.max(np.abs(adv_s)))
    alpha = float(rng.uniform(0.05, 1.0)) * min(1.0, (1.0 - m.gamma) * advantage / (4.0 * eps))
    pi_new = (1.0 - alpha) * pi + alpha * pi_greedy
    improvement = float(m.mu @ (values(m, pi_new)[0] - V))
    return CPIProblem(improvement, alpha, advantage, eps, m.gamma)


inequality(
    id="convergence.cpi_improvement",
    statement=r"\pi_{new} = (1-\alpha)\pi + \alpha\pi' \Rightarrow V^{\pi_{new}}(\mu) - V^\pi(\mu) \ge "
    r"\frac{\alpha}{1-\gamma}\Big(\mathbb{A}_\pi(\pi') - \frac{2\alpha\gamma\epsilon}{1-\gamma(1-\alpha)}\Big),\ "
    r"\mathbb{A}_\pi(\pi') = E_{s\sim d_\mu^\pi}E_{a\sim\pi'}A^\pi(s,a),\ \epsilon = \max_s|E_{a\sim\pi'}A^\pi(s,a)|",
    source="Kakade & Langford 2002, 'Approximately Optimal Approximate Reinforcement Learning', ICML, Theorem 4.1 "
    "(stated there for values normalized by 1-gamma; the bound is invariant to that scaling)",
    reference="exact values of the mixture policy by a dense solve; pi' greedy w.r.t. A^pi, alpha up to (1-gamma)A/(4 eps)",
    instance=_cpi_instance,
    lhs=cpi_lower_bound,
    rhs=lambda p: p.improvement,
    tolerance=TOL,
    tolerance_reason=REASON,
    floor=1e-6,
    mutants={"alpha/(1-gamma)^2 (normalized and unnormalized values mixed)": (lambda p: cpi_lower_bound(p, 2.0), None)},
)
