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
from typing import Callable

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


def mei_pg_bound(run: PGRun, exponent: float = -6.0, constant: float = 16.0, t_power: float = 1.0) -> np.ndarray:
    r""":math:`\frac{16 S}{c^2 (1-\gamma)^6 t}\|d_\mu^{\pi^*}/\mu\|_\infty^2\|1/\mu\|_\infty` (``exponent``: that of 1−γ;
    ``constant`` and ``t_power``: the 16 and the power of t, changed by the controls)."""
    return (constant * run.S * run.mismatch**2 * run.inv_mu * (1.0 - run.gamma) ** exponent
            / (run.c**2 * run.t**t_power))


def mei_bandit(rng: np.random.Generator, T: int = 100) -> PGRun:
    r"""A one-state instance (A in {2, 3}, γ in [0, 0.05]) on which Mei et al.'s Theorem 4 comes closest to binding.

    One action has reward 1 and the others U[0, 0.2]; θ₁ favours the best action by U[1.5, 2.5], so c ≥ 0.6
    and the run reaches its asymptotic regime within T = 100 steps. There the gap behaves as 1/(2ηt) = 4/t
    at γ = 0 (with x the logit margin of the best action, :math:`\dot x \approx 2\eta e^{-x}` for a reward gap
    1), against the bound's 16/(c²t): the ratio approaches c²/4 ≤ 1/4 (measured 0.13..0.21)."""
    A = int(rng.integers(2, 4))
    best = int(rng.integers(A))
    r = rng.uniform(0.0, 0.2, (1, A))
    r[0, best] = 1.0
    m = Tabular(np.ones((1, A, 1)), r, np.ones(1), np.ones(1), float(rng.uniform(0.0, 0.05)))
    theta1 = np.zeros((1, A))
    theta1[0, best] = float(rng.uniform(1.5, 2.5))
    return softmax_pg_run(m, theta1, T)


@dataclass(frozen=True)
class PGPair:
    """A random MDP (the theorem's generality) and a one-state instance (its constant), checked together."""

    random: PGRun
    bandit: PGRun


def _pg_instance(rng: np.random.Generator) -> PGPair:
    # mu away from the simplex's faces and a moderate init keep ||1/mu|| and 1/c^2 moderate
    m = random_tabular(rng, (0.93, 0.97), mu_concentration=5.0)
    return PGPair(softmax_pg_run(m, 0.5 * rng.standard_normal(m.r.shape), 20), mei_bandit(rng))


def _pg_ratios(**bound) -> Callable[[PGPair], np.ndarray]:
    return lambda pair: np.array([_ratio(run.gaps, mei_pg_bound(run, **bound)) for run in (pair.random, pair.bandit)])


inequality(
    id="convergence.softmax_pg_rate",
    statement=r"\eta = \frac{(1-\gamma)^3}{8} \Rightarrow V^*(\rho) - V^{\pi_{\theta_t}}(\rho) \le "
    r"\frac{16 S}{c^2(1-\gamma)^6 t}\Big\|\frac{d_\mu^{\pi^*}}{\mu}\Big\|_\infty^2\Big\|\frac1\mu\Big\|_\infty,"
    r"\ c = \min_{1\le t'\le t}\min_s\pi_{\theta_{t'}}(a^*(s)|s)",
    source="Mei, Xiao, Szepesvari & Schuurmans 2020, 'On the Global Convergence Rates of Softmax Policy Gradient "
    "Methods', ICML, Theorem 4 (tabular softmax, exact gradient of V(mu)); c along the path up to t suffices (its proof "
    "is an induction over the steps)",
    reference="exact softmax PG iterates (dense solves), exact V* by policy iteration; max over t of gap/bound on a "
    "random MDP (t = 1..20, gamma in [0.93, 0.97]) and on a one-state instance at gamma <= 0.05 (t = 1..100, "
    "convergence.mei_bandit)",
    instance=_pg_instance,
    lhs=_pg_ratios(),
    rhs=lambda pair: 1.0,
    tolerance=TOL,
    tolerance_reason=REASON,
    mutants={
        "constant 1 instead of 16": (_pg_ratios(constant=1.0), None),
        "a 1/t^2 rate": (_pg_ratios(t_power=2.0), None),
    },
    loose_reason="loose by a factor of about 4 at best: on one-state instances at gamma = 0 the gap tends to 1/(2 eta t) = 4/t "
    "while the bound is 16/(c^2 t), a ratio c^2/4 <= 1/4 (0.13..0.21 measured at t <= 100); S, ||1/mu||, the "
    "mismatch and (1-gamma)^-6 only loosen it elsewhere (ratio ~1e-9 on the random MDPs at gamma ~ 0.95), so a "
    "mistaken exponent of 1-gamma or of c cannot be rejected; the constant (16 vs 1) and the 1/t rate are",
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


def npg_bandit(rng: np.random.Generator, T: int = 30) -> NPGRun:
    r"""A one-state instance at γ = 0 (A in {2, 3, 4}, one reward 1 and the others 0, η in [0.05, 0.1]) where the
    first term of Agarwal et al.'s bound comes closest to binding: from uniform, the gap after T steps is
    :math:`(A-1)/(A-1+e^{x})` with :math:`x = \eta T`, and :math:`\max_x x(A-1)/((A-1+e^x)\log A)` is 0.40 (A = 2)
    to 0.43 (A = 4), below 1/2 for every A."""
    A = int(rng.integers(2, 5))
    r = np.zeros((1, A))
    r[0, int(rng.integers(A))] = 1.0
    return npg_run(Tabular(np.ones((1, A, 1)), r, np.ones(1), np.ones(1), 0.0), float(rng.uniform(0.05, 0.1)), T)


@dataclass(frozen=True)
class NPGPair:
    """A random MDP (the theorem's generality) and a one-state instance (its first term), checked together."""

    random: NPGRun
    bandit: NPGRun


def _npg_instance(rng: np.random.Generator) -> NPGPair:
    # small steps and moderate gamma: log|A|/(eta T) dominates and the bound comes within ~3x of the gap
    m = random_tabular(rng, (0.3, 0.7))
    return NPGPair(npg_run(m, float(rng.choice([0.01, 0.02, 0.05])), 30), npg_bandit(rng))


def _npg_ratios(power: float = 1.0) -> Callable[[NPGPair], np.ndarray]:
    return lambda pair: np.array([_ratio(run.gaps, npg_bound(run, power)) for run in (pair.random, pair.bandit)])


inequality(
    id="convergence.npg_rate",
    statement=r"\theta_0 = 0,\ \pi_{t+1}\propto\pi_t e^{\eta A^{\pi_t}/(1-\gamma)} \Rightarrow "
    r"V^*(\rho) - V^{\pi_T}(\rho) \le \frac{\log|A|}{\eta T} + \frac{1}{(1-\gamma)^2 T}",
    source="Agarwal, Kakade, Lee & Mahajan 2021, 'On the Theory of Policy Gradient Methods', JMLR 22, Theorem 16 "
    "(tabular softmax NPG; Theorem 5.3 of the arXiv version)",
    reference="exact NPG iterates, exact V* by policy iteration; max over T = 1..30 of gap/bound, on a random MDP "
    "(gamma in [0.3, 0.7]) and on a one-state instance at gamma = 0 (convergence.npg_bandit)",
    instance=_npg_instance,
    lhs=_npg_ratios(),
    rhs=lambda pair: 1.0,
    tolerance=TOL,
    tolerance_reason=REASON,
    mutants={"a 1/T^2 rate": (_npg_ratios(2.0), None)},
    loose_reason="no instance found within a factor 2: on one-state instances the first term binds at best by "
    "x(A-1)/((A-1+e^x) log A) < 1/2 (x = eta T; 0.36..0.41 measured), the last iterate of the proof's averaged "
    "regret; the second term 1/((1-gamma)^2 T) exceeds the largest possible gap 1/(1-gamma) until T > 1/(1-gamma). "
    "Hence half the first term, or no second term, cannot be rejected; a 1/T^2 rate is",
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
    error0: float = float("nan")  # ||Q*_tau - Q^{(0)}_tau||_inf
    log_error0: float = float("nan")  # ||log pi*_tau - log pi^{(0)}||_inf


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
    return SoftNPGRun(errors, log_errors, C1, eta, tau, m.gamma, float(np.max(np.abs(Q_star - Q0))),
                      float(np.max(np.abs(logpi_star - log_softmax(theta0)))))


def cen_ratio(run: SoftNPGRun, log_factor: float | None = None) -> float:
    r"""Largest of error / bound over t for both bounds of the theorem: :math:`C_1\gamma(1-\eta\tau)^t` on Q and
    :math:`2C_1\tau^{-1}(1-\eta\tau)^t` on log π (``log_factor`` replaces :math:`\tau^{-1}`)."""
    rate = (1.0 - run.eta * run.tau) ** np.arange(run.errors.size)
    f = 1.0 / run.tau if log_factor is None else log_factor
    return max(_ratio(run.errors, run.C1 * run.gamma * rate), _ratio(run.log_errors, 2.0 * run.C1 * f * rate))


#: Restarts whose bound is below this are skipped: the errors there are within ~1e5 ulps of Q*_tau's accuracy.
CEN_FLOOR = 1e-9


def cen_restart_ratios(run: SoftNPGRun, *, log_factor: float | None = None, log_term: bool = True) -> np.ndarray:
    r"""Theorem 1 of Cen et al. applied from every iterate: error / bound for every start t₀ and every later t.

    The iteration is time-homogeneous, so the theorem holds with :math:`\pi^{(t_0)}` as the initial policy:

    .. math:: \|Q^*_\tau - Q^{(t_0+k+1)}_\tau\|_\infty \le C_1(t_0)\gamma(1-\eta\tau)^k,\quad
        \|\log\pi^*_\tau - \log\pi^{(t_0+k+1)}\|_\infty \le 2C_1(t_0)\tau^{-1}(1-\eta\tau)^k,

    :math:`C_1(t_0)` of the theorem computed at :math:`t_0`. This tests the rate at every t against the constant
    at every earlier t, not only from t = 0 (where the constant is loosest). Pairs whose bound is below
    :data:`CEN_FLOOR` are skipped. ``log_factor`` replaces :math:`\tau^{-1}` and ``log_term=False`` drops the
    log-policy term of :math:`C_1` (controls)."""
    e = np.concatenate([[run.error0], run.errors])
    le = np.concatenate([[run.log_error0], run.log_errors])
    beta = run.eta * run.tau / (1.0 - run.gamma)
    C1 = e + (2.0 * run.tau * (1.0 - beta) * le if log_term else 0.0)
    f = 1.0 / run.tau if log_factor is None else log_factor
    rate = 1.0 - run.eta * run.tau
    out = []
    for t0 in range(e.size - 1):
        k = np.arange(e.size - 1 - t0)
        for err, bound in ((e[t0 + 1:], C1[t0] * run.gamma * rate**k), (le[t0 + 1:], 2.0 * C1[t0] * f * rate**k)):
            keep = bound >= CEN_FLOOR
            out.append(err[keep] / bound[keep])
    return np.concatenate(out)


def _soft_npg_instance(rng: np.random.Generator) -> SoftNPGRun:
    m = random_tabular(rng, (0.5, 0.9))
    tau = float(rng.choice([0.02, 0.05, 0.1]))
    eta = float(rng.uniform(0.1, 1.0)) * (1.0 - m.gamma) / tau
    return soft_npg_run(m, tau, eta, rng.standard_normal(m.r.shape), 12)


inequality(
    id="convergence.entropy_npg_linear",
    statement=r"0<\eta\le\frac{1-\gamma}{\tau} \Rightarrow \|Q^*_\tau - Q^{(t+1)}_\tau\|_\infty \le C_1\gamma(1-\eta\tau)^t,\ "
    r"\|\log\pi^*_\tau - \log\pi^{(t+1)}\|_\infty \le 2C_1\tau^{-1}(1-\eta\tau)^t,\ "
    r"C_1 = \|Q^*_\tau - Q^{(0)}_\tau\|_\infty + 2\tau\Big(1-\frac{\eta\tau}{1-\gamma}\Big)\|\log\pi^*_\tau - \log\pi^{(0)}\|_\infty"
    r"\ \text{(checked from every iterate as the start)}",
    source="Cen, Cheng, Chen, Wei & Chi 2021, 'Fast Global Convergence of Natural Policy Gradient Methods with "
    "Entropy Regularization', Operations Research 70(4), Theorem 1",
    reference="exact entropy-regularized NPG iterates (soft evaluations by dense solves), Q*_tau by soft value "
    "iteration to 1e-14; error/bound for every start t0 = 0..11 and every later t (convergence.cen_restart_ratios)",
    instance=_soft_npg_instance,
    lhs=cen_restart_ratios,
    rhs=lambda run: 1.0,
    tolerance=TOL,
    tolerance_reason=REASON + "; Q*_tau to 1e-14 and bounds >= 1e-9, so ratios are exact to ~1e-5 relative of the "
    "margin (largest ratio 0.25..0.36)",
    mutants={
        "tau instead of 1/tau in the log-policy bound": (lambda run: cen_restart_ratios(run, log_factor=run.tau), None),
        "C_1 without its log-policy term": (lambda run: cen_restart_ratios(run, log_term=False), None),
    },
    loose_reason="loose by a factor 4 by nature near the optimum: there the soft Q error is second order in the "
    "policy error, so log pi's error contracts by exactly 1 - eta tau/(1-gamma) per step, while the bound restarted "
    "from that iterate is 2 C_1/tau >= 4 (1 - eta tau/(1-gamma)) times it, a ratio tending to 1/4 (measured up to "
    "~0.35 in the transient); the rate 1 - eta tau is the sup-norm argument's, slower than the exact one, so a rate "
    "mistake that is faster but still slower than 1 - eta tau/(1-gamma) cannot be rejected",
)


# ----------------------------------------------------------------------------- PMD, increasing steps (Xiao 2022)
@dataclass(frozen=True)
class PMDRun:
    gaps: np.ndarray  # V*(rho) - V^{pi_k}(rho), k = 0..K
    theta: float  # vartheta_rho = ||d_rho^{pi*}/rho||_inf / (1-gamma)
    D0: float  # E_{s ~ d_rho^{pi*}} KL(pi*_s || pi_0,s)
    eta0: float
    gamma: float = 0.0
    divergences: np.ndarray | None = None  # D_k = E_{s ~ d_rho^{pi*}} KL(pi*_s || pi_k,s), k = 0..K


def pmd_run(m: Tabular, eta0: float, pi0: np.ndarray, K: int) -> PMDRun:
    r"""KL policy mirror descent :math:`\pi_{k+1}\propto\pi_k\exp(\eta_k Q^{\pi_k})` with :math:`\eta_k = \eta_0/\gamma^k`."""
    V_star, pi_star = optimal(m)
    d_star = occupancy(m, pi_star, m.rho)
    pi = pi0
    gaps, divs = np.empty(K + 1), np.empty(K + 1)
    for k in range(K + 1):
        V, Q = values(m, pi)
        gaps[k] = m.rho @ (V_star - V)
        with np.errstate(divide="ignore", invalid="ignore"):
            divs[k] = d_star @ np.where(pi_star > 0, pi_star * (np.log(pi_star) - np.log(pi)), 0.0).sum(axis=1)
        pi = softmax(np.log(pi) + eta0 / m.gamma**k * Q)
    return PMDRun(gaps, float(np.max(d_star / m.rho)) / (1.0 - m.gamma), float(divs[0]), eta0, m.gamma, divs)


def _divergence_scale(run: PMDRun, normalized_q: bool = True) -> float:
    r""":math:`1/((\vartheta_\rho-1)(1-\gamma))`; ``normalized_q=False`` drops the :math:`1-\gamma` (the control)."""
    return 1.0 / ((run.theta - 1.0) * ((1.0 - run.gamma) if normalized_q else 1.0))


def xiao_bound(run: PMDRun, with_divergence: bool = True, normalized_q: bool = True) -> np.ndarray:
    r""":math:`(1-1/\vartheta_\rho)^k\big(V^*(\rho) - V^{\pi_0}(\rho) + D_0^*/((\vartheta_\rho-1)(1-\gamma)\eta_0)\big)`, k = 0..K.

    With unnormalized values and the update :math:`\pi_{k+1}\propto\pi_k e^{\eta_k Q^{\pi_k}}`; see
    :func:`pmd_potential_ratios` for the derivation and why the :math:`1-\gamma` is needed."""
    extra = run.D0 * _divergence_scale(run, normalized_q) / run.eta0 if with_divergence else 0.0
    return (1.0 - 1.0 / run.theta) ** np.arange(run.gaps.size) * (run.gaps[0] + extra)


def pmd_potential_ratios(run: PMDRun, normalized_q: bool = True, rate: float | None = None) -> np.ndarray:
    r""":math:`\Phi_{k+1}/((1-1/\vartheta_\rho)\Phi_k)`, k = 0..K-1, with
    :math:`\Phi_k = V^*(\rho) - V^{\pi_k}(\rho) + D_k^*/((\vartheta_\rho-1)(1-\gamma)\eta_k)`.

    The per-step contraction behind Xiao's Theorem 10, derived for these conventions (unnormalized V and Q,
    :math:`\Delta_k = V^*(\rho) - V^{\pi_k}(\rho)`): the three-point lemma of the KL step with :math:`p = \pi^*`,
    averaged over :math:`d^* = d_\rho^{\pi^*}`, and the performance difference lemma
    :math:`E_{d^*}\langle Q_k, \pi^* - \pi_k\rangle = (1-\gamma)\Delta_k` give
    :math:`\vartheta\Delta_{k+1} - (\vartheta - 1)\Delta_k \le (D_k^* - D_{k+1}^*)/((1-\gamma)\eta_k)`
    (using :math:`\langle Q_k, \pi_{k+1} - \pi_k\rangle \ge 0` per state and
    :math:`\|d^*/d_\rho^{\pi_{k+1}}\|_\infty \le \vartheta`); with :math:`\eta_{k+1} \ge \eta_k/\gamma \ge
    \eta_k/(1 - 1/\vartheta)` this is :math:`\Phi_{k+1} \le (1-1/\vartheta)\Phi_k`, and unrolled, the bound of
    :func:`xiao_bound`. The :math:`1-\gamma` comes from the performance difference lemma of unnormalized values;
    without it the bound fails (a one-state MDP with rewards (1, 0), γ = 0.8, π₀ uniform, η₀ = 0.1: at k = 6 the
    gap is 1.23 and the bound without it 1.11). ``rate`` replaces :math:`1 - 1/\vartheta` (a control)."""
    eta = run.eta0 / run.gamma ** np.arange(run.gaps.size)
    phi = run.gaps + run.divergences * _divergence_scale(run, normalized_q) / eta
    factor = (1.0 - 1.0 / run.theta) if rate is None else rate
    # steps from a potential below 1e-6 of the first are left out (reported 0): there PMD has converged to
    # rounding level and the ratio of two rounding errors says nothing about the rate
    live = phi[:-1] > 1e-6 * phi[0]
    return np.where(live, phi[1:] / (np.where(live, phi[:-1], 1.0) * factor), 0.0)


def _pmd_bandit(rng: np.random.Generator) -> PMDRun:
    r"""A one-state MDP (a discounted two-armed bandit: :math:`d^* = \rho`, so :math:`\vartheta = 1/(1-\gamma)` and
    the rate is γ) with small steps (:math:`\eta_0\Delta` in [0.02, 0.06]) from a policy with 5..50% on the worse arm:
    the divergence term carries the bound, the gap contracts slower than γ at first, and the potential contracts
    at nearly exactly γ per step."""
    gamma, p0 = float(rng.uniform(0.85, 0.95)), float(rng.uniform(0.05, 0.5))
    delta = float(rng.uniform(0.5, 1.0))
    base = float(rng.uniform(0.0, 1.0 - delta))
    m = Tabular(np.ones((1, 2, 1)), np.array([[base + delta, base]]), np.ones(1), np.ones(1), gamma)
    return pmd_run(m, float(rng.uniform(0.02, 0.06)) / delta, np.array([[1.0 - p0, p0]]), 8)


def _pmd_instance(rng: np.random.Generator) -> tuple[PMDRun, PMDRun]:
    m = random_tabular(rng, (0.5, 0.9))
    pi0 = softmax(rng.standard_normal(m.r.shape))
    return pmd_run(m, float(rng.choice([1e-3, 3e-3, 1e-2])), pi0, 8), _pmd_bandit(rng)


def _pmd_sides(runs: tuple[PMDRun, PMDRun], **mistake) -> np.ndarray:
    """For each run: the largest gap / bound over k = 1..K (k = 0 holds by construction) and the largest
    per-step potential contraction over the guaranteed one."""
    out = []
    for run in runs:
        bound = xiao_bound(run, with_divergence=mistake.get("with_divergence", True),
                           normalized_q=mistake.get("normalized_q", True))
        out += [float(np.max(run.gaps[1:] / bound[1:])),
                float(np.max(pmd_potential_ratios(run, mistake.get("normalized_q", True), mistake.get("rate"))))]
        if not mistake.get("with_divergence", True):
            out[-1] = float(np.max(run.gaps[1:] / (run.gaps[:-1] * (1.0 - 1.0 / run.theta))))
    return np.array(out)


inequality(
    id="convergence.pmd_linear",
    statement=r"\eta_{k+1}\ge\eta_k/\gamma \Rightarrow \Phi_{k+1} \le \Big(1-\frac{1}{\vartheta_\rho}\Big)\Phi_k,\ "
    r"\Phi_k = V^*(\rho) - V^{\pi_k}(\rho) + \frac{D_k^*}{(\vartheta_\rho - 1)(1-\gamma)\eta_k},\ \text{hence } "
    r"V^*(\rho) - V^{\pi_k}(\rho) \le \Big(1-\frac{1}{\vartheta_\rho}\Big)^k"
    r"\Big(V^*(\rho) - V^{\pi_0}(\rho) + \frac{D_0^*}{(\vartheta_\rho - 1)(1-\gamma)\eta_0}\Big),\ "
    r"\vartheta_\rho = \frac{1}{1-\gamma}\Big\|\frac{d_\rho^{\pi^*}}{\rho}\Big\|_\infty,\ D_k^* = E_{s\sim d_\rho^{\pi^*}}KL(\pi^*_s\|\pi_{k,s})",
    source="Xiao 2022, 'On the Convergence Rates of Policy Gradient Methods', JMLR 23, Theorem 10 and its proof "
    "(policy mirror descent with KL, geometrically increasing step sizes), with the 1/(1-gamma) of the performance "
    "difference lemma for unnormalized Q written out (derivation in pmd_potential_ratios); Lan 2021, 'Policy Mirror "
    "Descent for Reinforcement Learning', Theorem 1 (linear rate of PMD)",
    reference="exact PMD iterates with eta_k = eta_0 / gamma^k (dense solves), exact V* by policy iteration, KL to pi* "
    "written out; on a random MDP and on a discounted two-armed bandit where the potential contracts at nearly "
    "exactly the guaranteed rate (see convergence._pmd_bandit); gap/bound over k = 1..8 and the per-step "
    "contraction of Phi over the guaranteed one",
    instance=_pmd_instance,
    lhs=_pmd_sides,
    rhs=lambda runs: 1.0,
    tolerance=TOL,
    tolerance_reason=REASON + "; the potential's contraction reaches 0.9988 of the guaranteed one (a margin far above "
    "rounding)",
    mutants={
        "initial-divergence term D_0*/((theta-1)(1-gamma) eta_0) dropped": (
            lambda runs: _pmd_sides(runs, with_divergence=False), None),
        "divergence term without 1/(1-gamma) (the PDL of normalized values mixed with unnormalized Q)": (
            lambda runs: _pmd_sides(runs, normalized_q=False), None),
    },
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


def cpi_problem(m: Tabular, pi: np.ndarray, pi_prime: np.ndarray, alpha: float) -> CPIProblem:
    """The exact quantities of one CPI step from ``pi`` towards ``pi_prime`` with weight ``alpha``."""
    V, Q = values(m, pi)
    adv_s = np.sum(pi_prime * (Q - V[:, None]), axis=1)
    advantage = float(occupancy(m, pi, m.mu) @ adv_s)
    improvement = float(m.mu @ (values(m, (1.0 - alpha) * pi + alpha * pi_prime)[0] - V))
    return CPIProblem(improvement, alpha, advantage, float(np.max(np.abs(adv_s))), m.gamma)


def _cpi_random(rng: np.random.Generator) -> CPIProblem:
    m = random_tabular(rng, (0.5, 0.95))
    pi = softmax(rng.standard_normal(m.r.shape))
    V, Q = values(m, pi)
    A = Q - V[:, None]
    pi_greedy = np.eye(m.r.shape[1])[A.argmax(axis=1)]  # CPI's greedy policy
    adv_s = np.sum(pi_greedy * A, axis=1)
    advantage = float(occupancy(m, pi, m.mu) @ adv_s)
    eps = float(np.max(np.abs(adv_s)))
    alpha = float(rng.uniform(0.05, 1.0)) * min(1.0, (1.0 - m.gamma) * advantage / (4.0 * eps))
    return cpi_problem(m, pi, pi_greedy, alpha)


def cpi_binding(rng: np.random.Generator) -> CPIProblem:
    r"""A CPI step on which Kakade & Langford's bound holds with equality, penalty included.

    Two states, three actions. From g (the start) actions 0 and 1 stay in g with rewards ∓ε and action 2
    leaves for the absorbing state b with reward ε; in b actions 0, 1, 2 have rewards ε, −ε, 0. π plays
    actions 0 and 1 with probability ½ in both states (so :math:`V^\pi = 0`, :math:`d^\pi_\mu = \delta_g`);
    π' leaves g and plays action 1 in b, so :math:`E_{a\sim\pi'}A^\pi = \varepsilon` in g and −ε in b,
    :math:`\mathbb{A} = \epsilon = \varepsilon`, and the mixture leaves g at rate α:

    .. math:: V^{\pi_{new}}(\mu) - V^\pi(\mu) = \alpha\varepsilon\sum_t\gamma^t\big(2(1-\alpha)^t - 1\big)
        = \frac{\alpha}{1-\gamma}\Big(\varepsilon - \frac{2\alpha\gamma\varepsilon}{1-\gamma(1-\alpha)}\Big),

    exactly the bound. α = κ(1−γ) with κ in [0.05, 0.5] keeps the bound positive; γ in [0.5, 0.95].
    """
    g, b = (0, 1) if rng.integers(2) else (1, 0)
    eps = float(rng.uniform(0.1, 1.0))
    P = np.zeros((2, 3, 2))
    P[g, 0, g] = P[g, 1, g] = P[g, 2, b] = 1.0
    P[b, :, b] = 1.0
    r = np.zeros((2, 3))
    r[g] = (-eps, eps, eps)
    r[b] = (eps, -eps, 0.0)
    start = np.eye(2)[g]
    m = Tabular(P, r, start, start, float(rng.uniform(0.5, 0.95)))
    pi = np.array([[0.5, 0.5, 0.0], [0.5, 0.5, 0.0]])
    pi_prime = np.zeros((2, 3))
    pi_prime[g, 2] = pi_prime[b, 1] = 1.0
    return cpi_problem(m, pi, pi_prime, float(rng.uniform(0.05, 0.5)) * (1.0 - m.gamma))


@dataclass(frozen=True)
class CPIPair:
    """A random CPI step (π' greedy) and one on which the bound holds with equality, checked together."""

    random: CPIProblem
    binding: CPIProblem


def _cpi_instance(rng: np.random.Generator) -> CPIPair:
    return CPIPair(_cpi_random(rng), cpi_binding(rng))


def _cpi_sides(side):
    return lambda pair: np.array([side(pair.random), side(pair.binding)])


def _cpi_half_penalty(p: CPIProblem) -> float:
    return p.alpha / (1.0 - p.gamma) * (p.advantage - p.alpha * p.gamma * p.eps / (1.0 - p.gamma * (1.0 - p.alpha)))


inequality(
    id="convergence.cpi_improvement",
    statement=r"\pi_{new} = (1-\alpha)\pi + \alpha\pi' \Rightarrow V^{\pi_{new}}(\mu) - V^\pi(\mu) \ge "
    r"\frac{\alpha}{1-\gamma}\Big(\mathbb{A}_\pi(\pi') - \frac{2\alpha\gamma\epsilon}{1-\gamma(1-\alpha)}\Big),\ "
    r"\mathbb{A}_\pi(\pi') = E_{s\sim d_\mu^\pi}E_{a\sim\pi'}A^\pi(s,a),\ \epsilon = \max_s|E_{a\sim\pi'}A^\pi(s,a)|",
    source="Kakade & Langford 2002, 'Approximately Optimal Approximate Reinforcement Learning', ICML, Theorem 4.1 "
    "(stated there for values normalized by 1-gamma; the bound is invariant to that scaling)",
    reference="exact values of the mixture policy by a dense solve; on a random MDP with pi' greedy w.r.t. A^pi and "
    "alpha up to (1-gamma)A/(4 eps), and on a two-state MDP where the bound holds with equality, its second-order "
    "penalty included (convergence.cpi_binding)",
    instance=_cpi_instance,
    lhs=_cpi_sides(cpi_lower_bound),
    rhs=_cpi_sides(lambda p: p.improvement),
    tolerance=TOL,
    tolerance_reason="relative violation of an inequality that holds with equality on the binding instance: both "
    "sides are values of size <= 1/(1-gamma) <= 20 from dense solves of size <= 4, exact to ~1e-14 (measured "
    "residuals <= 1e-15)",
    floor=1e-6,
    mutants={
        "alpha/(1-gamma)^2 (normalized and unnormalized values mixed)": (_cpi_sides(lambda p: cpi_lower_bound(p, 2.0)), None),
        "penalty alpha gamma eps/(1-gamma(1-alpha)) (its factor 2 dropped)": (_cpi_sides(_cpi_half_penalty), None),
    },
)
