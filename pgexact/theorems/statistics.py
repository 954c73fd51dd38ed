r"""Theorems about the statistics layer: the mean test, its power, the episodes it needs, streaming
means, and the Fisher, normalized-advantage and weighted-score estimators.

* :func:`pgexact.estimators.mean_test` is compared with Hall's (1992) skewness-corrected statistic
  written out with correctly rounded sums (``math.fsum``) and with Student's t and the normal
  quantiles found by root finding on their tail functions written from the regularized incomplete
  beta function and ``erfc`` (no ``scipy.stats``).
* :func:`pgexact.estimators.mean_test_power` is compared, for one coordinate, with the tail of a
  noncentral chi-square law with one degree of freedom (``scipy.stats.ncx2``: the square of a
  shifted normal), and for two coordinates with a one-dimensional quadrature of the bivariate
  normal rectangle probability (conditioning on the first coordinate).
* :func:`pgexact.estimators.episodes_needed` is compared with a linear scan, from the normal
  approximation outwards, of the power written with ``math.erfc`` and the quantile above.
* :func:`pgexact.estimators.streaming_mean` and :func:`pgexact.estimators.stats.streaming_mean_on`
  (over the chunks of :func:`pgexact.rollout_chunks`) are compared with a two-pass mean and variance
  of the per-episode terms of the one-shot :func:`pgexact.rollout` batch, summed with ``math.fsum``.
* :func:`pgexact.estimators.fisher_estimate` and :func:`pgexact.estimators.trajectory_fisher_estimate`
  are averaged exactly over every trajectory (:func:`pgexact.estimators.enumerate_trajectories`) and
  compared with the Fisher matrices written from forward marginals and the explicit score.
* :func:`pgexact.estimators.normalized_advantage` and :func:`pgexact.estimators.weighted_score` are
  compared with the per-episode sums written out episode by episode from the padded arrays, and
  :func:`pgexact.estimators.fisher_estimate` on geometric batches with (1 - γ) times the sum of outer products.

Instances are small: the default ``pgexact verify`` run of this module costs about 0.15 s of CPU, plus the
first import of ``scipy.stats`` (about 0.45 s), which :func:`pgexact.estimators.mean_test` makes on its first call.
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

SOURCE_TEST = (
    "Hall 1992, 'On the removal of skewness by transformation', JRSS B 54(1), sec. 2 (the transform); "
    "Student 1908 and Bonferroni's inequality (the two-sided threshold t_{N-1}^{-1}(1 - alpha/(2k))); "
    "course notes 'Policy Gradient', section 'Checking estimators'"
)


# ----------------------------------------------------------------------------- independent quantiles
def _brent_isf(sf: Any, q: float) -> float:
    """The x > 0 with ``sf(x) = q`` (``sf`` decreasing from 1/2 at 0), by bracketing and Brent's method."""
    from scipy.optimize import brentq

    hi = 1.0
    while sf(hi) > q:
        hi *= 2.0
    return float(brentq(lambda x: sf(x) - q, 0.0, hi, xtol=1e-300, rtol=8.9e-16, maxiter=500))


def t_isf(q: float, nu: int) -> float:
    r"""Upper quantile of Student's t with ν degrees of freedom: :math:`\Pr(T > x) = \tfrac12 I_{\nu/(\nu+x^2)}(\nu/2, 1/2)`."""
    from scipy.special import betainc

    return _brent_isf(lambda x: 0.5 * float(betainc(nu / 2.0, 0.5, nu / (nu + x * x))), q)


def norm_isf(q: float) -> float:
    r"""Upper quantile of the standard normal: :math:`\Pr(Z > x) = \tfrac12\,\mathrm{erfc}(x/\sqrt2)`."""
    return _brent_isf(lambda x: 0.5 * math.erfc(x / math.sqrt(2.0)), q)


# ----------------------------------------------------------------------------- mean_test
@dataclass(frozen=True)
class TestProblem:
    samples: np.ndarray  # (N, k) skewed per-episode terms
    expected: np.ndarray  # (k,) the value under test
    alpha: float


def _test_instance(rng: np.random.Generator) -> TestProblem:
    """N in [160, 400] centred exponential terms (skewness 2) with random scales, tested against a value
    1 to 3 standard errors away from the true mean, so that every statistic is of order 1."""
    n = int(rng.integers(est.MIN_EPISODES, 401))
    k = int(rng.integers(1, 4))
    scale = rng.uniform(0.5, 3.0, k) * rng.choice([-1.0, 1.0], k)
    mean = rng.normal(0.0, 2.0, k)
    x = mean + scale * (rng.exponential(1.0, (n, k)) - 1.0)
    offset = rng.uniform(1.0, 3.0, k) * rng.choice([-1.0, 1.0], k) * np.abs(scale) / math.sqrt(n)
    return TestProblem(x, mean + offset, float(rng.choice([1e-3, 1e-2, 0.05])))


def _test_computed(pr: TestProblem) -> tuple:
    e = est.Estimate(pr.samples)
    res = est.mean_test(e, pr.expected, false_alarm=pr.alpha)
    arr = est.mean_test(e.mean, e.std_error, pr.expected, false_alarm=pr.alpha)  # the array (normal) form
    return res.z, res.threshold, arr.z, arr.threshold


def _hall(x: np.ndarray, mu: float, *, ddof: int = 1, sign: float = 1.0, corrected: bool = True) -> float:
    r"""Hall's statistic of one column, sums correctly rounded (``math.fsum``); options make the mistakes."""
    n = x.shape[0]
    m = math.fsum(x) / n
    dev = x - m
    sd = math.sqrt(math.fsum(dev * dev) / (n - ddof))
    g = sign * math.fsum(dev**3) / n / sd**3
    S = (m - mu) / sd
    if not corrected:
        return math.sqrt(n) * S
    return math.sqrt(n) * (S + g * S * S / 3.0 + g * g * S**3 / 27.0 + g / (6.0 * n))


def _test_reference(pr: TestProblem, *, ddof: int = 1, sign: float = 1.0, corrected: bool = True,
                    sides: int = 2, normal: bool = False) -> tuple:
    x, mu = pr.samples, pr.expected
    n, k = x.shape
    z = np.array([_hall(x[:, i], mu[i], ddof=ddof, sign=sign, corrected=corrected) for i in range(k)])
    q = pr.alpha / (sides * k)
    thr = norm_isf(q) if normal else t_isf(q, n - 1)
    # the array form: (mean - expected) / (sd / sqrt(N)) against the normal quantile
    means = np.array([math.fsum(x[:, i]) / n for i in range(k)])
    sds = np.array([math.sqrt(math.fsum((x[:, i] - means[i]) ** 2) / (n - ddof)) for i in range(k)])
    z_arr = (means - mu) / (sds / math.sqrt(n))
    return z, thr, z_arr, norm_isf(q)


identity(
    id="stats.mean_test_statistic",
    statement=r"z_i = \sqrt N\Big(S_i + \tfrac{\hat\gamma_i}{3}S_i^2 + \tfrac{\hat\gamma_i^2}{27}S_i^3 + \tfrac{\hat\gamma_i}{6N}\Big),"
    r"\ S_i = \frac{\bar x_i - \mu_i}{\hat\sigma_i},\ \hat\sigma_i^2 = \tfrac{1}{N-1}\sum_n (x_{ni}-\bar x_i)^2,"
    r"\quad c = t_{N-1}^{-1}\big(1 - \tfrac{\alpha}{2k}\big)",
    source=SOURCE_TEST,
    reference="Hall's transform written out with math.fsum sums; the t and normal quantiles by Brent's root "
    "finding on 1/2 I_{nu/(nu+x^2)}(nu/2, 1/2) (scipy.special.betainc) and 1/2 erfc(x/sqrt 2) (math.erfc), "
    "not scipy.stats; also the array form's plain z against the normal quantile",
    instance=_test_instance,
    computed=_test_computed,
    expected=_test_reference,
    tolerance=1e-11,
    tolerance_reason="statistics of order 1 from sums of <= 400 terms (rounding ~1e-14) and quantiles found to "
    "~1e-15 relative by root finding (betainc is accurate to ~1e-15): measured max residual 2.1e-14 over 200 "
    "instances; 1e-11 leaves a margin of ~500",
    mutants={
        "n instead of n - 1 in the standard deviation": lambda pr: _test_reference(pr, ddof=0),
        "skewness correction with the wrong sign": lambda pr: _test_reference(pr, sign=-1.0),
        "plain t statistic (no skewness correction)": lambda pr: _test_reference(pr, corrected=False),
        "one-sided threshold (alpha / k instead of alpha / (2k))": lambda pr: _test_reference(pr, sides=1),
        "normal quantile instead of Student's t with N - 1 degrees of freedom": lambda pr: _test_reference(pr, normal=True),
    },
    default_instances=5,
)


# ----------------------------------------------------------------------------- mean_test_power
@dataclass(frozen=True)
class PowerProblem:
    covariance: np.ndarray  # (k, k)
    bias: np.ndarray  # (k,)
    n: int
    alpha: float


def _power_instance(rng: np.random.Generator) -> PowerProblem:
    """k in {1, 2}; the first coordinate's shift within 1.5 of the threshold, so the power is mid-range."""
    k = int(rng.integers(1, 3))
    n = int(rng.integers(est.MIN_EPISODES, 401))
    alpha = float(rng.choice([1e-3, 1e-2, 0.05]))
    sd = rng.uniform(0.5, 3.0, k)
    rho = float(rng.uniform(-0.8, 0.8))
    R = np.array([[1.0, rho], [rho, 1.0]])[:k, :k]
    C = R * np.outer(sd, sd)
    c = norm_isf(alpha / (2 * k))
    shift = np.empty(k)
    shift[0] = (c + rng.uniform(-1.5, 1.5)) * rng.choice([-1.0, 1.0])
    if k == 2:
        shift[1] = rng.uniform(-c, c)
    return PowerProblem(C, shift * sd / math.sqrt(n), n, alpha)


def _box_reference(shift: np.ndarray, rho: float, c: float) -> float:
    r""":math:`\Pr(|Z_1 + m_1| \le c, |Z_2 + m_2| \le c)`, corr(Z) = ρ: :math:`\int \phi(x)\,\Pr(|Z_2 + m_2| \le c \mid Z_1 = x)\,dx`."""
    from scipy.integrate import quad
    from scipy.special import ndtr

    s = math.sqrt(1.0 - rho * rho)

    def f(x: float) -> float:
        mid = shift[1] + rho * x
        return math.exp(-0.5 * x * x) / math.sqrt(2 * math.pi) * float(ndtr((c - mid) / s) - ndtr((-c - mid) / s))

    val, _ = quad(f, -c - shift[0], c - shift[0], epsabs=1e-13, epsrel=1e-13, limit=200)
    return val


def _power_reference(pr: PowerProblem, *, sides: int = 2, normal: bool = False) -> float:
    from scipy.stats import ncx2

    k = pr.bias.size
    q = pr.alpha / (sides * k)
    c = norm_isf(q) if normal else t_isf(q, pr.n - 1)
    sd = np.sqrt(np.diag(pr.covariance))
    shift = pr.bias * math.sqrt(pr.n) / sd
    if k == 1:  # |Z + m| > c  <=>  (Z + m)^2 > c^2, a noncentral chi-square with 1 dof and noncentrality m^2
        return float(ncx2.sf(c * c, 1, float(shift[0] ** 2)))
    rho = pr.covariance[0, 1] / (sd[0] * sd[1])
    return 1.0 - _box_reference(shift, rho, c)


identity(
    id="stats.mean_test_power",
    statement=r"\text{power} = 1 - \Pr\big(\max_i |Z_i + \delta_i\sqrt N/\sigma_i| \le c\big),\ Z \sim \mathcal N(0, R),"
    r"\ c = t_{N-1}^{-1}(1 - \alpha/(2k));\quad k = 1:\ \Pr\big(\chi'^2_1(N\delta^2/\sigma^2) > c^2\big)",
    source="Anderson 1955 and Genz 1992 (rectangle probabilities of a correlated normal vector); the test is "
    "that of pgexact.estimators.mean_test (Bonferroni over k coordinates, Student's t threshold)",
    reference="k = 1: the noncentral chi-square tail scipy.stats.ncx2.sf(c^2, 1, m^2); k = 2: 1 minus a "
    "one-dimensional adaptive quadrature of phi(x) Pr(|Z_2 + m_2| <= c | Z_1 = x); the threshold c by root "
    "finding on the incomplete beta function",
    instance=_power_instance,
    computed=lambda pr: est.mean_test_power(pr.covariance, pr.bias, pr.n, false_alarm=pr.alpha),
    expected=_power_reference,
    tolerance=1e-12,
    tolerance_reason="k = 1: two closed forms of the same normal tails; k = 2: scipy's bivariate normal rectangle "
    "probability against an adaptive quadrature to 1e-13: measured max residual 4e-15 over 200 instances; 1e-12 "
    "leaves a margin of 250 (the quasi-Monte Carlo paths for k >= 3 and singular correlations, accurate to 1e-5 "
    "and 1e-3, are not instances of this theorem)",
    mutants={
        "one-sided threshold (alpha / k instead of alpha / (2k))": lambda pr: _power_reference(pr, sides=1),
        "normal quantile instead of Student's t with N - 1 degrees of freedom": lambda pr: _power_reference(pr, normal=True),
    },
)


# ----------------------------------------------------------------------------- episodes_needed
@dataclass(frozen=True)
class SizeProblem:
    variance: float
    bias: float
    power: float
    alpha: float


def _size_instance(rng: np.random.Generator) -> SizeProblem:
    """One coordinate; sizes from a few hundred to a few thousand episodes."""
    alpha = float(rng.choice([1e-3, 1e-2, 0.05]))
    power = float(rng.uniform(0.5, 0.95))
    var = float(rng.uniform(0.5, 4.0))
    n_target = float(rng.uniform(300.0, 3000.0))
    bias = (norm_isf(alpha / 2) + norm_isf(1 - power)) * math.sqrt(var / n_target) * float(rng.choice([-1.0, 1.0]))
    return SizeProblem(var, bias, power, alpha)


def _erfc_power(n: int, pr: SizeProblem, sides: int = 2) -> float:
    c = t_isf(pr.alpha / sides, n - 1)
    m = abs(pr.bias) * math.sqrt(n / pr.variance)
    return 0.5 * math.erfc((c - m) / math.sqrt(2.0)) + 0.5 * math.erfc((c + m) / math.sqrt(2.0))


def _size_reference(pr: SizeProblem, sides: int = 2) -> int:
    """The smallest N with power >= target: a linear scan from the normal approximation outwards."""
    z = norm_isf(pr.alpha / sides) + norm_isf(1.0 - pr.power)
    n = max(2, int(z * z * pr.variance / pr.bias**2))
    while n > 2 and _erfc_power(n, pr, sides) >= pr.power:
        n -= 1
    while _erfc_power(n, pr, sides) < pr.power:
        n += 1
    return n


def _size_normal_formula(pr: SizeProblem) -> int:
    z = norm_isf(pr.alpha / 2) + norm_isf(1.0 - pr.power)
    return math.ceil(z * z * pr.variance / pr.bias**2)


identity(
    id="stats.episodes_needed",
    statement=r"N^\star = \min\{N : \text{power}(N) \ge \beta\},\quad \text{power}(N) = \Phi(m_N - c_N) + \Phi(-m_N - c_N),"
    r"\ m_N = |\delta|\sqrt{N}/\sigma,\ c_N = t_{N-1}^{-1}(1-\alpha/2)",
    source="the power of the two-sided t test treated as normal (pgexact.estimators.mean_test_power), one "
    "coordinate; monotone in N, so the smallest N is unique",
    reference="a linear scan over N, from the normal approximation ((z_{alpha/2} + z_beta) sigma / delta)^2 "
    "outwards, of the power written with math.erfc and the t quantile by root finding on the incomplete beta "
    "function (not pgexact's doubling and bisection, not scipy.stats)",
    instance=_size_instance,
    computed=lambda pr: est.episodes_needed([[pr.variance]], [pr.bias], power=pr.power, false_alarm=pr.alpha),
    expected=_size_reference,
    tolerance=1e-9,
    tolerance_reason="integers: any disagreement is at least one episode in <= 3e4, a relative error >= 3e-5; the "
    "two power computations agree to ~1e-15, so they differ only if the target lies within ~1e-15 of power(N) "
    "(probability ~1e-12 per instance); 1e-9 is far below one episode",
    mutants={
        "largest N whose power is below the target (off by one)": lambda pr: _size_reference(pr) - 1,
        "one-sided threshold (alpha instead of alpha / 2)": lambda pr: _size_reference(pr, sides=1),
        "normal-approximation formula ((z_{alpha/2} + z_beta) sigma / delta)^2 rounded up": _size_normal_formula,
    },
    default_instances=4,
)


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
    tolerance=1e-12,
    tolerance_reason="the pairwise merge over <= 6 chunks of <= 200 terms of order 1 rounds to ~1e-15 relative "
    "(measured max 1.8e-15 over 200 instances); 1e-12 leaves a margin of ~500",
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
    tolerance=1e-12,
    tolerance_reason="sums over at most (S A)^H S = 2187 enumerated trajectories of O(1) terms (measured max "
    "residual 1.1e-15 over 200 instances); 1e-12 leaves a margin of ~1000",
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
    tolerance=1e-12,
    tolerance_reason="sums of <= 4 terms per episode and one batch normalization over <= 160 steps (measured max "
    "residual 1.8e-15 over 200 instances); 1e-12 leaves a margin of ~500",
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
    tolerance=1e-12,
    tolerance_reason="sums of at most ~60 outer products of O(1) entries per episode: rounding ~1e-15 (measured max "
    "residual 7.4e-16 over 200 instances); 1e-12 leaves a margin of ~1000",
    mutants={
        "normalized by the episode's length L (the fixed-horizon rule)": lambda pr: _geometric_fisher_reference(pr, "1 / L"),
        "discounted on top of the stopping (gamma^t (1 - gamma))": lambda pr: _geometric_fisher_reference(pr, "gamma^t (1 - gamma)"),
    },
    default_instances=5,
)
