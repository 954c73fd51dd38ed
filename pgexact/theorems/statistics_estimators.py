r"""Theorems about the estimators of the statistics layer: streaming means, the Fisher estimators, the
normalized-advantage estimator and the weighted score.

* :func:`pgexact.estimators.streaming_mean` and :func:`pgexact.estimators.stats.streaming_mean_on`
  (over the chunks of :func:`pgexact.rollout_chunks`) are compared with a two-pass mean and variance
  of the per-episode terms of the one-shot :func:`pgexact.rollout` batch, summed with ``math.fsum``.
* :func:`pgexact.estimators.fisher_estimate` and :func:`pgexact.estimators.trajectory_fisher_estimate`
  are averaged exactly over every trajectory (:func:`pgexact.estimators.enumerate_trajectories`) and
  compared with the Fisher matrices written from forward marginals and the explicit score; on geometric
  batches :func:`pgexact.estimators.fisher_estimate` is compared with (1 - γ) times the sum of outer
  products written out step by step.
* :func:`pgexact.estimators.normalized_advantage` and :func:`pgexact.estimators.weighted_score` are
  compared with the per-episode sums written out episode by episode from the padded arrays.

Instances are small: the default ``pgexact verify`` run of this module costs about 0.1 s of CPU.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import estimators as est
from .. import sampling
from ..estimators import stats as est_stats
from ..policies.softmax import SoftmaxPolicy
from . import _reference as ref
from .estimators import EnumProblem, enum_problem
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []


# ----------------------------------------------------------------------------- streaming means
@dataclass(frozen=True)
class StreamProblem:
    base: EnumProblem
    n: int
    chunk: int
    seed: int


def _stream_instance(rng: np.random.Generator) -> StreamProblem:
    base = enum_problem(rng, max_horizon=3)
    chunk = int(rng.integers(7, 40))
    n = chunk * int(rng.integers(2, 6)) + int(rng.integers(1, chunk))  # a shorter last chunk
    return StreamProblem(base, n, chunk, int(rng.integers(2**31)))


def _stream_chunks(pr: StreamProblem) -> Any:
    pi = pr.base.policy.probs(pr.base.theta)
    return sampling.rollout_chunks(pr.base.mdp, pi, pr.n, seed=pr.seed, chunk_size=pr.chunk)


def _stream_computed(pr: StreamProblem) -> tuple:
    b = pr.base
    serial = est.streaming_mean(est.reward_to_go, _stream_chunks(pr), b.policy, b.theta)
    with ThreadPoolExecutor(max_workers=1) as pool:
        on = est_stats.streaming_mean_on(pool, est.reward_to_go, _stream_chunks(pr), (b.policy, b.theta), {})
    return serial.mean, serial.std_error, serial.n, on.mean, on.std_error, on.n


def _two_pass(x: np.ndarray, ddof: int = 1) -> tuple[np.ndarray, np.ndarray]:
    n = x.shape[0]
    flat = x.reshape(n, -1)
    mean = np.array([math.fsum(flat[:, i]) / n for i in range(flat.shape[1])])
    m2 = np.array([math.fsum((flat[:, i] - mean[i]) ** 2) for i in range(flat.shape[1])])
    return mean, np.sqrt(m2 / (n - ddof) / n)


def _stream_reference(pr: StreamProblem, ddof: int = 1) -> tuple:
    b = pr.base
    whole = sampling.rollout(b.mdp, b.policy.probs(b.theta), pr.n, seed=pr.seed, chunk_size=pr.chunk)
    mean, se = _two_pass(np.asarray(est.reward_to_go(whole, b.policy, b.theta).samples), ddof)
    return mean, se, pr.n, mean, se, pr.n


def _stream_mistaken(pr: StreamProblem, mistake: str) -> tuple:
    """Per-chunk (n, mean, m2) merged with one mistake."""
    b = pr.base
    parts = []
    for chunk in _stream_chunks(pr):
        x = np.asarray(est.reward_to_go(chunk, b.policy, b.theta).samples)
        m = x.mean(axis=0)
        parts.append((x.shape[0], m, ((x - m) ** 2).sum(axis=0)))
    n = sum(p[0] for p in parts)
    if mistake == "equal weights":
        mean = sum(p[1] for p in parts) / len(parts)
    else:
        mean = sum(p[0] * p[1] for p in parts) / n
    m2 = sum(p[2] for p in parts)
    if mistake != "no between-chunk term":
        m2 = m2 + sum(p[0] * (p[1] - mean) ** 2 for p in parts)
    se = np.sqrt(m2 / (n - 1) / n)
    return mean, se, n, mean, se, n


identity(
    id="stats.streaming_mean",
    statement=r"\bar x = \frac1N\sum_n x_n,\quad \widehat{se} = \sqrt{\frac{\sum_n (x_n - \bar x)^2}{(N-1)N}}"
    r"\ \text{ from per-chunk } (n_b, \bar x_b, M_{2,b}) \text{ merged: } M_2 = M_{2,a} + M_{2,b} + \delta^2 \tfrac{n_a n_b}{n_a + n_b}",
    source="Chan, Golub & LeVeque 1983, 'Algorithms for computing the sample variance', The American "
    "Statistician 37(3), eq. 2.1; pgexact.rollout_chunks yields the chunks of pgexact.rollout",
    reference="a two-pass mean and sum of squared deviations, each sum correctly rounded (math.fsum), of the "
    "per-episode reward-to-go terms of the one-shot pgexact.rollout batch (not chunked, not merged)",
    instance=_stream_instance,
    computed=_stream_computed,
    expected=_stream_reference,
    tolerance=1e-13,
    tolerance_reason="the pairwise merge over <= 6 chunks of <= 200 terms of order 1 rounds to a few eps relative "
    "(measured max 2.2e-16 over 200 instances); 1e-13 leaves a margin of ~500",
    mutants={
        "population variance (N instead of N - 1)": lambda pr: _stream_reference(pr, ddof=0),
        "chunk means averaged with equal weights": lambda pr: _stream_mistaken(pr, "equal weights"),
        "merge without the between-chunk term": lambda pr: _stream_mistaken(pr, "no between-chunk term"),
    },
    default_instances=3,
)


# ----------------------------------------------------------------------------- Fisher estimators
def _fisher_computed(pr: EnumProblem) -> tuple:
    pi = pr.policy.probs(pr.theta)
    trajs, prob = est.enumerate_trajectories(pr.mdp, pi)
    F = est.exact_mean(est.fisher_estimate(trajs, pr.policy, pr.theta).samples, prob)
    Ft = est.exact_mean(est.trajectory_fisher_estimate(trajs, pr.policy, pr.theta).samples, prob)
    return F, Ft


def _fisher_reference(pr: EnumProblem, *, discount: bool = True, per_step: bool = False) -> tuple:
    pi = ref.probs(pr.policy, pr.theta)
    H = pr.mdp.horizon
    p = ref.marginals(pr.mdp, pi, H)
    g = pr.mdp.gamma ** np.arange(H) if discount else np.ones(H)
    F = ref.fisher(pr.policy, pr.theta, g @ p / g.sum())
    Ft = ref.fisher(pr.policy, pr.theta, p.sum(axis=0))
    return F, Ft / H if per_step else Ft


def _fisher_mean_score(pr: EnumProblem) -> tuple:
    r"""The outer product of each episode's discount-averaged score :math:`\bar\psi\bar\psi^\top`."""
    pi = pr.policy.probs(pr.theta)
    trajs, prob = est.enumerate_trajectories(pr.mdp, pi)
    H = pr.mdp.horizon
    g = pr.mdp.gamma ** np.arange(H)
    w = np.broadcast_to(g / g.sum(), (trajs.n_episodes, H))
    s = np.asarray(est.weighted_score(trajs, pr.policy, pr.theta, w).samples)
    return np.einsum("n,ni,nj->ij", prob, s, s), _fisher_reference(pr)[1]


identity(
    id="estimators.fisher_unbiased",
    statement=r"E\Big[\frac{\sum_{t<H}\gamma^t\psi_t\psi_t^\top}{\sum_{t<H}\gamma^t}\Big] = \sum_s \bar d(s)\sum_a\pi(a|s)\psi\psi^\top,"
    r"\ \bar d = \frac{\sum_t\gamma^t p_t}{\sum_t\gamma^t};\quad E\Big[\sum_{t<H}\psi_t\psi_t^\top\Big] = \sum_t\sum_s p_t(s)\sum_a\pi(a|s)\psi\psi^\top",
    source="Kakade 2002, 'A natural policy gradient', sec. 3 (the state-averaged Fisher); Bagnell & Schneider "
    "2003 (the trajectory Fisher); course notes 'Policy Gradient', section 'Natural policy gradient'",
    reference="exact expectation over every enumerated trajectory, against F written from forward marginals "
    "p_t (the model's P, mu0 and pi) and the explicit score phi - E_pi phi (theorems._reference), not pgexact.fisher",
    instance=lambda rng: enum_problem(rng, max_horizon=3),
    computed=_fisher_computed,
    expected=_fisher_reference,
    tolerance=2e-13,
    tolerance_reason="sums over at most (S A)^H S = 2187 enumerated trajectories of O(1) terms (measured max "
    "residual 2.0e-15 over 200 instances); 2e-13 leaves a margin of 100",
    mutants={
        "missing discount weighting (plain time average)": lambda pr: (_fisher_reference(pr, discount=False)[0], _fisher_reference(pr)[1]),
        "outer product of the episode's mean score": _fisher_mean_score,
        "trajectory Fisher averaged over steps (divided by H)": lambda pr: _fisher_reference(pr, per_step=True),
    },
)


# ----------------------------------------------------------------------------- normalized advantage, weighted score
@dataclass(frozen=True)
class BatchProblem:
    base: EnumProblem
    trajs: Any
    advantages: np.ndarray  # (N, T)
    weights: np.ndarray  # (N, T)


def _batch_instance(rng: np.random.Generator) -> BatchProblem:
    base = enum_problem(rng)
    n = int(rng.integers(10, 40))
    trajs = sampling.rollout(base.mdp, base.policy.probs(base.theta), n, seed=int(rng.integers(2**31)))
    T = trajs.n_steps
    return BatchProblem(base, trajs, rng.normal(rng.normal(), rng.uniform(0.5, 2.0), (n, T)), rng.standard_normal((n, T)))


def _batch_computed(pr: BatchProblem) -> tuple:
    b = pr.base
    return (
        est.normalized_advantage(pr.trajs, b.policy, b.theta, pr.advantages).samples,
        est.normalized_advantage(pr.trajs, b.policy, b.theta, pr.advantages, scale=False).samples,
        est.weighted_score(pr.trajs, b.policy, b.theta, pr.weights).samples,
    )


def _score_sums(pr: BatchProblem, w: np.ndarray) -> np.ndarray:
    """Episode by episode, :math:`\\sum_t w_{n,t}\\psi(s_{n,t}, a_{n,t})` from the padded arrays."""
    psi = ref.score(pr.base.policy, pr.base.theta)
    s, a = np.asarray(pr.trajs.states), np.asarray(pr.trajs.actions)
    out = np.zeros((s.shape[0], psi.shape[-1]))
    for n in range(s.shape[0]):
        for t in range(a.shape[1]):
            out[n] += w[n, t] * psi[s[n, t], a[n, t]]
    return out


def _batch_reference(pr: BatchProblem, *, ddof: int = 0, discount: bool = True) -> tuple:
    adv = pr.advantages
    vals = adv.reshape(-1)  # every step is real: fixed horizon, no terminal state
    m = math.fsum(vals) / vals.size
    sd = math.sqrt(math.fsum((vals - m) ** 2) / (vals.size - ddof))
    d = pr.trajs.discount ** np.arange(adv.shape[1]) if discount else np.ones(adv.shape[1])
    return (
        _score_sums(pr, d * (adv - m) / sd),
        _score_sums(pr, d * (adv - m)),
        _score_sums(pr, pr.weights),
    )


identity(
    id="estimators.normalized_advantage",
    statement=r"\hat g_n = \sum_{t<H}\gamma^t\psi_t\,\frac{\hat A_{n,t} - m}{s},\ m = \frac1M\sum_{n,t}\hat A_{n,t},"
    r"\ s^2 = \frac1M\sum_{n,t}(\hat A_{n,t} - m)^2;\quad \text{weighted score: } \sum_t w_{n,t}\psi_t",
    source="Schulman et al. 2017 (PPO) and common implementations (advantage normalization over the batch, "
    "population standard deviation as numpy's default); Williams 1992 (the score-function primitive)",
    reference="the per-episode sums written out episode by episode and step by step from the padded states, "
    "actions, advantages and weights, the explicit score phi - E_pi phi, and the batch mean and population "
    "standard deviation with math.fsum",
    instance=_batch_instance,
    computed=_batch_computed,
    expected=_batch_reference,
    tolerance=2e-13,
    tolerance_reason="sums of <= 4 terms per episode and one batch normalization over <= 160 steps (measured max "
    "residual 1.5e-15 over 200 instances); 2e-13 leaves a margin of ~130",
    mutants={
        "sample standard deviation (M - 1) instead of the population one": lambda pr: _batch_reference(pr, ddof=1),
        "discount gamma^t dropped": lambda pr: _batch_reference(pr, discount=False),
    },
    default_instances=5,
)


# ----------------------------------------------------------------------------- Fisher under geometric stopping
@dataclass(frozen=True)
class GeometricBatch:
    policy: SoftmaxPolicy
    theta: np.ndarray
    gamma: float
    trajs: Any


def _geometric_batch(rng: np.random.Generator) -> GeometricBatch:
    """A discounted problem (gamma in [0.5, 0.9]) and 10..40 geometric episodes in chunks of 7..20."""
    from ..mdps import random_mdp
    from ..policies.softmax import LinearSoftmax, TabularSoftmax

    S, A = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    gamma = float(rng.uniform(0.5, 0.9))
    mdp = random_mdp(S, A, gamma=gamma, seed=rng, concentration=0.5)
    policy: SoftmaxPolicy = (LinearSoftmax(rng.standard_normal((S, A, int(rng.integers(1, 4)))))
                             if rng.integers(2) else TabularSoftmax(S, A))
    theta = rng.standard_normal(policy.n_params)
    n = int(rng.integers(10, 41))
    trajs = sampling.rollout(mdp, policy.probs(theta), n, geometric=True, seed=int(rng.integers(2**31)),
                             chunk_size=int(rng.integers(7, 21)))
    return GeometricBatch(policy, theta, gamma, trajs)


def _geometric_fisher_reference(pr: GeometricBatch, weight: str = "1 - gamma") -> np.ndarray:
    psi = ref.score(pr.policy, pr.theta)
    s, a, mask = np.asarray(pr.trajs.states), np.asarray(pr.trajs.actions), np.asarray(pr.trajs.mask)
    k = psi.shape[-1]
    out = np.zeros((s.shape[0], k, k))
    for n in range(s.shape[0]):
        L = int(mask[n].sum())
        for t in range(L):
            w = {"1 - gamma": 1.0 - pr.gamma, "1 / L": 1.0 / L,
                 "gamma^t (1 - gamma)": pr.gamma**t * (1.0 - pr.gamma)}[weight]
            out[n] += w * np.outer(psi[s[n, t], a[n, t]], psi[s[n, t], a[n, t]])
    return out


identity(
    id="estimators.fisher_geometric",
    statement=r"\hat F_n = (1-\gamma)\sum_{t<L_n}\psi_t\psi_t^\top,\ L_n \sim \mathrm{Geometric}(1-\gamma)"
    r"\ \Rightarrow\ E\hat F_n = (1-\gamma)\sum_t\gamma^t E[\psi_t\psi_t^\top] = E_{s\sim d_\pi, a\sim\pi}[\psi\psi^\top]",
    source="Kakade 2002, 'A natural policy gradient', sec. 3; the unbiasedness is this pathwise form composed with "
    "sampler.geometric_stopping (Pr(s_t = s, a_t = a, L > t) = gamma^t p_t(s) pi(a|s)); Sutton & Barto 2018, sec. 10.4",
    reference="the per-episode sums written out step by step over the padded states and actions of each episode's "
    "L_n simulated steps (the mask), with the explicit score phi - E_pi phi (theorems._reference)",
    instance=_geometric_batch,
    computed=lambda pr: est.fisher_estimate(pr.trajs, pr.policy, pr.theta).samples,
    expected=_geometric_fisher_reference,
    tolerance=1e-13,
    tolerance_reason="sums of at most ~60 outer products of O(1) entries per episode: rounding ~1e-15 (measured max "
    "residual 7.4e-16 over 200 instances); 1e-13 leaves a margin of ~130",
    mutants={
        "normalized by the episode's length L (the fixed-horizon rule)": lambda pr: _geometric_fisher_reference(pr, "1 / L"),
        "discounted on top of the stopping (gamma^t (1 - gamma))": lambda pr: _geometric_fisher_reference(pr, "gamma^t (1 - gamma)"),
    },
    default_instances=5,
)
