r"""Statistical theorems on LQR rollouts and the Monte Carlo gradient estimators of :mod:`pgexact.lqr`.

**The sampler** (``lqr.rollout_law``): the initial states, the policy's action noise
:math:`e_t = u_t + Kx_t`, the process noise :math:`w_t = x_{t+1} - Ax_t - Bu_t` and the state marginals
:math:`x_t` of :func:`pgexact.lqr.rollout` are Gaussian with covariances :math:`\Sigma_0`, :math:`\Sigma_u`,
W and :math:`S_t` (:math:`S_{t+1} = A_KS_tA_K^\top + W + B\Sigma_uB^\top`, written out here from the
model's matrices). Each is whitened by the Cholesky factor of its exact covariance and compared, cell
by cell, with exact probabilities: each whitened coordinate below -1, 0, 1 (probabilities
:math:`\Phi(-1), \tfrac12, \Phi(1)`) and the squared norm below the 10/50/90/99% quantiles of
:math:`\chi^2_d`. The residual is :func:`~pgexact.theorems.registry.bernoulli_statistic` (Chernoff and a
union bound over the cells: false alarm at most 1e-6 per instance whatever the sample size).

**The estimators** (``lqr.score_function_estimators``, ``lqr.dpg_estimator``): the sample means of
:func:`pgexact.lqr.reinforce`, :func:`~pgexact.lqr.reinforce_to_go`, :func:`~pgexact.lqr.reinforce_baseline`
and :func:`~pgexact.lqr.dpg` against :math:`\nabla_\theta J` of the sampled (finite-horizon) problem by
4th-order central differences of the primal-side cost (:func:`pgexact.theorems.lqr.reference_cost`:
the forward second-moment recursion, none of :mod:`pgexact.lqr`'s solvers). The critic and baseline
given to the estimators (:math:`V_t`, :math:`\nabla_uQ_t`) come from a backward recursion written out
here. With :math:`z_j = (\bar g_j - \nabla_jJ)/\widehat{\mathrm{se}}_j` over the D coordinates of all
estimators checked, the residual is

.. math:: \max_j \tfrac12 z_j^2 \big/ \log(2D/\alpha),

the Gaussian analogue of the Chernoff statistic (:math:`\Pr(|Z|\ge z) \le 2e^{-z^2/2}`), at most 1
with probability at least :math:`1-\alpha` when the means are right, **under the normal approximation**
of a mean of N >= 10^4 i.i.d. episodes (the estimators have finite moments of every order: polynomials
of Gaussians); at the threshold (z ~ 5.8) the Chernoff bound overstates the normal tail about 7-fold,
room for the approximation's error, and ``tests/test_theorems_lqr_coverage.py`` measures the false-alarm
rate at a moderate level over many seeds. A control is rejected when its statistic is at least 100,
i.e. :math:`|z| \ge 10\sqrt{2\log(2D/\alpha)} \approx 58`: the mistakes are chosen, and N sized, so that
they move a mean by that many standard errors on essentially every instance.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.special  # not scipy.stats: importing it costs ~0.5 s of CPU, the default verify run's budget

from ...lqr import LQR, LinearGaussian
from ...lqr import estimators as lqr_est
from ...lqr import sampling as lqr_sampling
from ..registry import FALSE_ALARM, Control, Outcome, Theorem, _guard, register, statistical
from ._common import LQRProblem, _fd, riccati_by_iteration

__all__: list[str] = []  # the theorems are registered, not exported


# ----------------------------------------------------------------------------- shared pieces
def _whitened(values: np.ndarray, cov: np.ndarray) -> np.ndarray:
    """L^{-1} v for rows v, L L^T = cov (Cholesky)."""
    L = np.linalg.cholesky(cov)
    return np.linalg.solve(L, values.T).T


def _second_moments(lqr: LQR, K: np.ndarray, Su: np.ndarray, H: int) -> np.ndarray:
    r""":math:`S_t = E[x_tx_t^\top]`, t = 0..H-1, by the forward recursion of the model's matrices."""
    AK = lqr.A - lqr.B @ K
    WK = lqr.noise_cov + lqr.B @ Su @ lqr.B.T
    S = [np.array(lqr.Sigma0)]
    for _ in range(H - 1):
        S.append(AK @ S[-1] @ AK.T + WK)
    return np.array(S)


def backward_values(lqr: LQR, K: np.ndarray, Su: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""(P_t, c_t), t = 0..H (:math:`P_H = 0`, :math:`c_H = 0`): :math:`V_t(x) = -(x^\top P_tx + c_t)` of the
    finite-horizon problem, by :math:`P_t = Q_K + \gamma A_K^\top P_{t+1}A_K`,
    :math:`c_t = \mathrm{tr}(R\Sigma_u) + \gamma[\mathrm{tr}(P_{t+1}W_K) + c_{t+1}]`."""
    H, n, g = lqr.horizon, lqr.n_states, lqr.gamma
    AK = lqr.A - lqr.B @ K
    QK = lqr.Q + K.T @ lqr.R @ K - lqr.N @ K - K.T @ lqr.N.T
    WK = lqr.noise_cov + lqr.B @ Su @ lqr.B.T
    P, c = np.zeros((H + 1, n, n)), np.zeros(H + 1)
    for t in range(H - 1, -1, -1):
        P[t] = QK + g * AK.T @ P[t + 1] @ AK
        c[t] = float(np.trace(lqr.R @ Su)) + g * (float(np.sum(P[t + 1] * WK)) + c[t + 1])
    return P, c


def _quad(x: np.ndarray, M: np.ndarray, y: np.ndarray | None = None) -> np.ndarray:
    return np.einsum("...i,ij,...j->...", x, M, x if y is None else y)


def mean_statistic(samples: list[np.ndarray], expected: np.ndarray, false_alarm: float = FALSE_ALARM) -> float:
    r""":math:`\max_j \tfrac12 z_j^2/\log(2D/\alpha)` over the coordinates of every sample array (N, d)
    (module docstring); ``inf`` if a coordinate has zero sample variance but a wrong mean."""
    D = sum(s.shape[1] for s in samples)
    worst = 0.0
    with np.errstate(divide="ignore", invalid="ignore"):
        for s in samples:
            n = s.shape[0]
            dev = s.mean(axis=0) - expected
            var = s.var(axis=0, ddof=1) / n
            z2 = np.where(var > 0, dev * dev / np.where(var > 0, var, 1.0), np.where(dev != 0, np.inf, 0.0))
            worst = max(worst, float(np.max(z2)))
    return 0.5 * worst / math.log(2.0 * D / false_alarm)


def _mean_theorem(*, id: str, statement: str, source: str, reference: str, instance: Callable,
                  observed: Callable[[Any], list[np.ndarray]], expected: Callable[[Any], np.ndarray],
                  mutants: dict[str, Callable[[Any], list[np.ndarray]]], power_note: str,
                  default_instances: int) -> Theorem:
    """Register a statistical theorem on sample means (residual :func:`mean_statistic`, tolerance 1)."""
    names, fns = tuple(mutants), tuple(mutants.values())

    def evaluate(inst: Any, with_controls: bool) -> tuple[Outcome, tuple[float, ...]]:
        g = expected(inst)
        out = Outcome(mean_statistic(observed(inst), g))
        if not with_controls:
            return out, ()
        return out, tuple(_guard(lambda fn=fn: mean_statistic(fn(inst), g)) for fn in fns)

    def control(fn: Callable) -> Callable[[Any], float]:
        return lambda inst: mean_statistic(fn(inst), expected(inst))

    reason = (
        f"statistical: max over the D coordinates of z^2/2 / log(2D/alpha), alpha = {FALSE_ALARM:g}: the Gaussian "
        "Chernoff bound and a union bound make the false-alarm probability per instance at most alpha under the "
        "normal approximation of the sample means (module docstring); " + power_note
    )
    return register(Theorem(
        id=id, statement=statement, source=source, instance=instance,
        residual=lambda inst: mean_statistic(observed(inst), expected(inst)),
        tolerance=1.0, tolerance_reason=reason, reference=reference,
        controls=tuple(Control(n, control(fn)) for n, fn in zip(names, fns)),
        kind="statistical", evaluate=evaluate, default_instances=default_instances,
    ))


def _random_model(rng: np.random.Generator, n: int, m: int, horizon: int, noise: float) -> LQR:
    A = rng.standard_normal((n, n))
    A *= rng.uniform(0.5, 1.2) / max(float(np.max(np.abs(np.linalg.eigvals(A)))), 1e-3)
    B = rng.standard_normal((n, m))
    G, Hm, S0 = rng.standard_normal((n, n)), rng.standard_normal((m, m)), rng.standard_normal((n, n))
    N = 0.3 * rng.standard_normal((n, m)) / np.sqrt(n * m) if rng.integers(2) else None
    return LQR(A, B, np.eye(n) + G @ G.T / n, np.eye(m) + Hm @ Hm.T / m, N=N,
               Sigma0=np.eye(n) + S0 @ S0.T / n, gamma=float(rng.uniform(0.5, 0.8)),
               noise_cov=noise * np.eye(n) if noise else None, horizon=horizon)


# ----------------------------------------------------------------------------- the sampler's law
N_ROLLOUT = 20_000
_Q_NORMAL = np.array([-1.0, 0.0, 1.0])
_P_CHI2 = np.array([0.1, 0.5, 0.9, 0.99])


@dataclass(frozen=True, eq=False)
class RolloutProblem:
    lqr: LQR
    policy: LinearGaussian
    theta: np.ndarray
    seed: int


def _spd(rng: np.random.Generator, d: int, low: float, high: float) -> np.ndarray:
    """A random covariance with eigenvalues uniform in [low, high] (a random orthogonal basis)."""
    V = np.linalg.qr(rng.standard_normal((d, d)))[0]
    return (V * rng.uniform(low, high, size=d)) @ V.T


H_LAW = 4  # steps simulated by lqr.rollout_law


def _rollout_instance(rng: np.random.Generator) -> RolloutProblem:
    """n, m in 1..2, Sigma0 with eigenvalues in [3, 5], process noise W with eigenvalues in [0.05, 0.3], a gain
    K* + Delta (the closed loop need not be stable over 4 steps); a correlated fixed action covariance (eigenvalues
    in [0.2, 0.6]) or a learned log-std (sigma^2 in [0.2, 0.6]); a model of horizon 4, or an infinite-horizon one
    rolled out with ``horizon=4``. The eigenvalue ranges keep every covariance at least 1.7-fold (Sigma0, Sigma_u)
    or 3-fold (W) away from its square (the controls' mistake)."""
    n, m = int(rng.integers(1, 3)), int(rng.integers(1, 3))
    lqr = _random_model(rng, n, m, H_LAW, 0.0)
    lqr = LQR(lqr.A, lqr.B, lqr.Q, lqr.R, N=lqr.N, Sigma0=_spd(rng, n, 3.0, 5.0), gamma=lqr.gamma,
              horizon=H_LAW if rng.integers(2) else None, noise_cov=_spd(rng, n, 0.05, 0.3))
    Ks = riccati_by_iteration(lqr.with_horizon(None))[0]
    K = Ks + 0.3 * rng.standard_normal(Ks.shape)
    if rng.integers(2):
        pol = LinearGaussian(n, m, learn_log_std=True)
        theta = pol.params(K, log_std=0.5 * np.log(rng.uniform(0.2, 0.6, size=m)))
    else:
        pol = LinearGaussian(n, m, noise_cov=_spd(rng, m, 0.2, 0.6))
        theta = pol.params(K)
    return RolloutProblem(lqr, pol, theta, int(rng.integers(2**31)))


def _cells(z: np.ndarray) -> np.ndarray:
    """Counts of the events of the module docstring for whitened rows z (N, d): (d * 3 + 4,)."""
    below = (z[:, :, None] <= _Q_NORMAL).sum(axis=0).reshape(-1)
    r2 = np.sum(z * z, axis=1)
    return np.concatenate([below, (r2[:, None] <= scipy.special.chdtri(z.shape[1], 1.0 - _P_CHI2)).sum(axis=0)])


def _probabilities(d: int) -> np.ndarray:
    return np.concatenate([np.tile(scipy.special.ndtr(_Q_NORMAL), d), _P_CHI2])


def _law_counts(pr: RolloutProblem, lqr: LQR | None = None, theta: np.ndarray | None = None,
                policy: LinearGaussian | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Rollout (of the problem, or of a mistaken one: the controls) whitened by the *problem's* exact laws."""
    ro = lqr_sampling.rollout(lqr or pr.lqr, policy or pr.policy, pr.theta if theta is None else theta,
                              N_ROLLOUT, seed=pr.seed, horizon=H_LAW)
    L, K, Su = pr.lqr, pr.policy.gain(pr.theta), pr.policy.action_cov(pr.theta)
    S = _second_moments(L, K, Su, H_LAW)
    x, u = ro.states, ro.actions
    nxt = np.concatenate([x[:, 1:], ro.final_states[:, None]], axis=1)
    counts = [_cells(_whitened(x[:, 0], L.Sigma0))]
    for t in range(H_LAW):
        if t > 0:
            counts.append(_cells(_whitened(x[:, t], S[t])))
        counts.append(_cells(_whitened(u[:, t] + x[:, t] @ K.T, Su)))
        counts.append(_cells(_whitened(nxt[:, t] - x[:, t] @ L.A.T - u[:, t] @ L.B.T, L.noise_cov)))
    return np.concatenate(counts), np.full(sum(c.size for c in counts), N_ROLLOUT)


def _law_expected(pr: RolloutProblem) -> np.ndarray:
    n, m, H = pr.lqr.n_states, pr.lqr.n_actions, H_LAW
    parts = [_probabilities(n)]  # x_0, then per t: x_t (t > 0), the action noise, the process noise
    for t in range(H):
        parts += ([_probabilities(n)] if t > 0 else []) + [_probabilities(m), _probabilities(n)]
    return np.concatenate(parts)


def _law_mistaken(pr: RolloutProblem, what: str) -> tuple[np.ndarray, np.ndarray]:
    """The sampler with one mistake in its inputs (controls), judged against the problem's exact laws."""
    L = pr.lqr
    if what == "mean action":
        mean_only = LinearGaussian(L.n_states, L.n_actions)
        return _law_counts(pr, policy=mean_only, theta=mean_only.params(pr.policy.gain(pr.theta)))
    W, S0 = L.noise_cov, L.Sigma0
    if what == "noise factor":  # x' = Ax + Bu + W xi: covariance W W^T
        W = W @ W.T
    else:  # x_0 = Sigma0 z: covariance Sigma0 Sigma0^T
        S0 = S0 @ S0.T
    return _law_counts(pr, lqr=LQR(L.A, L.B, L.Q, L.R, N=L.N, Sigma0=S0, gamma=L.gamma, horizon=L.horizon,
                                   noise_cov=W))


statistical(
    id="lqr.rollout_law",
    statement=r"x_0\sim N(0,\Sigma_0),\ u_t + Kx_t\sim N(0,\Sigma_u),\ x_{t+1}-Ax_t-Bu_t\sim N(0,W),\ "
              r"x_t\sim N(0,S_t),\ S_{t+1} = A_KS_tA_K^\top + W + B\Sigma_uB^\top",
    source="the LQR model x' = Ax + Bu + w with the linear-Gaussian policy (pgexact.lqr.sampling); Gaussian "
           "linear recursions (e.g. Anderson & Moore 1979, Optimal Filtering, sec. 2.3)",
    reference="exact normal and chi-square probabilities of whitened coordinates, the whitening by Cholesky factors "
              "of Sigma0, Sigma_u, W and of S_t from the forward recursion of the model's matrices",
    instance=_rollout_instance,
    observed=_law_counts,
    expected=_law_expected,
    mutants={
        "the policy's mean action taken (action noise not sampled)": lambda pr: _law_mistaken(pr, "mean action"),
        "process noise factor C = W (a covariance used as its square root)": lambda pr: _law_mistaken(
            pr, "noise factor"),
        "initial states Sigma0 z (a covariance used as its square root)": lambda pr: _law_mistaken(pr, "initial"),
    },
    power_note=f"{N_ROLLOUT} episodes of 4 steps; the controls' statistics were at least 185 (rejection at 100) on "
    "each of 60 instances (seed 2)",
    default_instances=1,
)


# ----------------------------------------------------------------------------- score-function estimators
N_SCORE = 50_000


@dataclass(frozen=True, eq=False)
class EstimatorProblem:
    """A finite-horizon LQR, a linear-Gaussian policy and theta (as LQRProblem), and the rollout's seed."""

    lqr: LQR
    policy: LinearGaussian
    theta: np.ndarray
    seed: int

    @property
    def problem(self) -> LQRProblem:
        return _as_problem(self)


@functools.lru_cache(maxsize=16)
def _as_problem(ep: EstimatorProblem) -> LQRProblem:
    return LQRProblem(ep.lqr, ep.policy, ep.theta)


def _score_instance(rng: np.random.Generator) -> EstimatorProblem:
    """n in 1..2, m = 1, H in {3, 4}, gamma in [0.5, 0.8], W = 0.05 I, a learned log-std (sigma in [0.3, 0.8]) and a
    gain K* + N(0, 0.25)."""
    n, H = int(rng.integers(1, 3)), int(rng.integers(3, 5))
    lqr = _random_model(rng, n, 1, H, 0.05)
    Ks = riccati_by_iteration(lqr.with_horizon(None))[0]
    pol = LinearGaussian(n, 1, learn_log_std=True)
    theta = pol.params(Ks + 0.5 * rng.standard_normal(Ks.shape), log_std=np.log(rng.uniform(0.3, 0.8, size=1)))
    return EstimatorProblem(lqr, pol, theta, int(rng.integers(2**31)))


@functools.lru_cache(maxsize=4)
def _rollout(ep: EstimatorProblem, n_episodes: int) -> "lqr_sampling.LQRTrajectories":
    return lqr_sampling.rollout(ep.lqr, ep.policy, ep.theta, n_episodes, seed=ep.seed)


@functools.lru_cache(maxsize=4)
def _values(ep: EstimatorProblem) -> tuple[np.ndarray, np.ndarray]:
    return backward_values(ep.lqr, ep.policy.gain(ep.theta), ep.policy.action_cov(ep.theta))


def _baseline(ep: EstimatorProblem) -> Callable[[int, np.ndarray], np.ndarray]:
    P, c = _values(ep)
    return lambda t, x: -(_quad(x, P[t]) + c[t])


@functools.lru_cache(maxsize=4)
def _score_observed(ep: EstimatorProblem) -> tuple[np.ndarray, ...]:
    ro = _rollout(ep, N_SCORE)
    return (lqr_est.reinforce(ro, ep.policy, ep.theta).samples,
            lqr_est.reinforce_to_go(ro, ep.policy, ep.theta).samples,
            lqr_est.reinforce_baseline(ro, ep.policy, ep.theta, _baseline(ep)).samples)


def _score_terms(ep: EstimatorProblem, minus_one: bool = True) -> np.ndarray:
    """Scores (N, T, p) written out (the controls): -Sigma^-1 (u - mu) x^T and (u - mu)^2 / sigma^2 - 1."""
    ro = _rollout(ep, N_SCORE)
    K, Su = ep.policy.gain(ep.theta), ep.policy.action_cov(ep.theta)
    e = ro.actions + ro.states @ K.T
    var = np.diag(Su)
    gK = -((e / var)[..., :, None] * ro.states[..., None, :]).reshape(e.shape[:2] + (-1,))
    return np.concatenate([gK, e * e / var - (1.0 if minus_one else 0.0)], axis=-1)


def _to_go(ep: EstimatorProblem) -> np.ndarray:
    """gamma^t G_t (N, T)."""
    ro = _rollout(ep, N_SCORE)
    disc = ro.rewards * ep.lqr.gamma ** np.arange(ro.n_steps)
    return np.cumsum(disc[:, ::-1], axis=1)[:, ::-1]


def _action_values(ep: EstimatorProblem) -> np.ndarray:
    r""":math:`Q_t(x_t, u_t) = r(x_t, u_t) + \gamma E[V_{t+1}(x_{t+1})]` at the sampled pairs (N, T)."""
    ro = _rollout(ep, N_SCORE)
    L, (P, c) = ep.lqr, _values(ep)
    K, Su = ep.policy.gain(ep.theta), ep.policy.action_cov(ep.theta)
    x, u = ro.states, ro.actions
    nxt = x @ L.A.T + u @ L.B.T
    out = np.empty(ro.costs.shape)
    for t in range(ro.n_steps):
        cost = _quad(x[:, t], L.Q) + _quad(u[:, t], L.R) + 2.0 * _quad(x[:, t], L.N, u[:, t])
        out[:, t] = -cost - L.gamma * (_quad(nxt[:, t], P[t + 1]) + float(np.sum(P[t + 1] * L.noise_cov)) + c[t + 1])
    return out


def _score_mutant(ep: EstimatorProblem, which: str) -> list[np.ndarray]:
    rf, tg, bl = _score_observed(ep)
    ro = _rollout(ep, N_SCORE)
    if which == "reinforce -1":
        return [_score_terms(ep, minus_one=False).sum(axis=1) * ro.discounted_returns()[:, None], tg, bl]
    if which == "to-go -1":
        return [rf, np.einsum("ntk,nt->nk", _score_terms(ep, minus_one=False), _to_go(ep)), bl]
    disc = ep.lqr.gamma ** np.arange(ro.n_steps)
    return [rf, tg, np.einsum("ntk,nt->nk", _score_terms(ep), _to_go(ep) - disc * _action_values(ep))]


_mean_theorem(
    id="lqr.score_function_estimators",
    statement=r"E\big[(\textstyle\sum_t s_t)\sum_t\gamma^tr_t\big] = E\big[\sum_t s_t\sum_{t'\ge t}\gamma^{t'}r_{t'}\big] = "
              r"E\big[\sum_t\gamma^ts_t(G_t - b_t(x_t))\big] = \nabla_\theta J,\ s_t = \nabla_\theta\log\pi_\theta(u_t|x_t)",
    source="Williams 1992 (REINFORCE); Sutton & Barto 2018, sec. 13.3-13.4 (reward-to-go, state-dependent baseline); "
           "course notes 'Policy Gradients', section 'Baselines and advantages'; course notes 'Policy Gradient', section "
           "'Policy Gradient in Continuous Action Space' (the Gaussian score; here with a learned log-std)",
    reference="4th-order central differences of the primal-side cost of the sampled finite-horizon problem (forward "
              "second-moment recursion); the baseline V_t from a backward recursion written out here",
    instance=_score_instance,
    observed=lambda ep: list(_score_observed(ep)),
    expected=lambda ep: _fd(ep.problem),
    mutants={
        "REINFORCE with the log-std score's -1 dropped (the -log sigma term of log pi forgotten)":
            lambda ep: _score_mutant(ep, "reinforce -1"),
        "reward-to-go with the log-std score's -1 dropped": lambda ep: _score_mutant(ep, "to-go -1"),
        "a baseline that depends on the action, b_t = Q_t(x_t, u_t)": lambda ep: _score_mutant(ep, "action baseline"),
    },
    power_note=f"{N_SCORE} episodes of 3-4 steps; the controls' statistics were at least 117 (rejection at 100) on "
    "each of 60 instances (seed 2)",
    default_instances=1,
)


# ----------------------------------------------------------------------------- deterministic policy gradient
N_DPG = 30_000


def _dpg_instance(rng: np.random.Generator) -> EstimatorProblem:
    """n in 1..2, m = 1, H = 4, gamma in [0.3, 0.6], a small Sigma0 (eigenvalues in [0.05, 0.2]) and a large process
    noise (eigenvalues in [0.5, 1]), so that the visitation differs from the start distribution and late steps
    matter (the controls' mistakes are then visible), and a deterministic gain K* + N(0, 0.25)."""
    n = int(rng.integers(1, 3))
    base = _random_model(rng, n, 1, 4, 0.0)
    lqr = LQR(base.A, base.B, base.Q, base.R, N=base.N, Sigma0=_spd(rng, n, 0.05, 0.2),
              gamma=float(rng.uniform(0.3, 0.6)), noise_cov=_spd(rng, n, 0.5, 1.0), horizon=4)
    Ks = riccati_by_iteration(lqr.with_horizon(None))[0]
    pol = LinearGaussian(n, 1)
    return EstimatorProblem(lqr, pol, pol.params(Ks + 0.5 * rng.standard_normal(Ks.shape)), int(rng.integers(2**31)))


def _grad_q(ep: EstimatorProblem) -> Callable[[int, np.ndarray, np.ndarray], np.ndarray]:
    r""":math:`\nabla_uQ_t(x, u) = -2[Ru + N^\top x + \gamma B^\top P_{t+1}(Ax + Bu)]` for batches (rows)."""
    L, (P, _) = ep.lqr, _values(ep)
    return lambda t, x, u: -2.0 * (u @ L.R + x @ L.N + L.gamma * (x @ L.A.T + u @ L.B.T) @ P[t + 1] @ L.B)


@functools.lru_cache(maxsize=4)
def _dpg_observed(ep: EstimatorProblem) -> np.ndarray:
    return lqr_est.dpg(_rollout(ep, N_DPG), ep.policy, ep.theta, _grad_q(ep)).samples


def _dpg_mutant(ep: EstimatorProblem, *, start_states: bool = False, undiscounted: bool = False) -> list[np.ndarray]:
    r""":math:`\sum_t w_t\nabla_\theta\mu(x_t)^\top\nabla_uQ_t(x_t, \mu(x_t))` written out with one mistake."""
    ro = _rollout(ep, N_DPG)
    K, gq, g = ep.policy.gain(ep.theta), _grad_q(ep), ep.lqr.gamma
    out = np.zeros((ro.n_episodes, ep.policy.n_params))
    for t in range(ro.n_steps):
        x = ro.states[:, 0 if start_states else t]
        d = gq(t, x, -x @ K.T)
        out += (1.0 if undiscounted else g**t) * -(d[:, :, None] * x[:, None, :]).reshape(x.shape[0], -1)
    return [out]


_mean_theorem(
    id="lqr.dpg_estimator",
    statement=r"E\big[\textstyle\sum_t\gamma^t\nabla_\theta\mu_\theta(x_t)^\top\nabla_uQ_t(x_t, u)|_{u=\mu_\theta(x_t)}\big] "
              r"= \nabla_\theta J",
    source="Silver, Lever, Heess, Degris, Wierstra & Riedmiller 2014, 'Deterministic policy gradient algorithms', "
           "Theorem 1 (discounted-visitation form, finite horizon)",
    reference="4th-order central differences of the primal-side cost of the sampled finite-horizon problem (forward "
              "second-moment recursion); the critic grad_u Q_t from a backward recursion written out here",
    instance=_dpg_instance,
    observed=lambda ep: [_dpg_observed(ep)],
    expected=lambda ep: _fd(ep.problem),
    mutants={
        "states from the start distribution (DDPG's replay of initial states) instead of the visitation":
            lambda ep: _dpg_mutant(ep, start_states=True),
        "gamma^t dropped (the undiscounted state distribution)": lambda ep: _dpg_mutant(ep, undiscounted=True),
    },
    power_note=f"{N_DPG} episodes of 4 steps; the controls were rejected on 99% and 98% of 100 instances (seed 2): "
    "the start-distribution and undiscounted mistakes are invisible on an instance whose late steps contribute "
    "little",
    default_instances=1,
)
