r"""Statistical checks of estimators against exact values, with stated false-alarm probability and power.

:func:`mean_test` is a Studentized test per coordinate with a Bonferroni correction: under
the null hypothesis (the estimator's mean is ``expected``) the probability that *any* of the k
coordinates is flagged is at most ``false_alarm`` (on an :class:`Estimate`, with Hall's
skewness correction and Student's t quantile, from :data:`MIN_EPISODES` episodes on; see
:func:`mean_test` for exactly what holds at finite N). Given the exact covariance of one episode's term (from
:func:`pgexact.estimators.exact_covariance` or the moment recursions), :func:`mean_test_power`
gives the probability that the test detects a stated bias, and :func:`episodes_needed` the
number of episodes it needs to detect it with a given probability.
:func:`streaming_mean` (from :mod:`pgexact.estimators._streaming`) accumulates means and
standard errors chunk by chunk in bounded memory.
"""

from __future__ import annotations

import functools

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import as_float_array, check_positive_int, check_real
from ._streaming import (
    StreamedMean,
    chunk_moments,
    merge_moments,
    moments_of,
    streaming_mean,
    streaming_mean_on,
)

__all__ = [
    "MIN_EPISODES",
    "MeanTest",
    "StreamedMean",
    "streaming_mean_on",
    "episodes_needed",
    "mean_test",
    "mean_test_power",
    "streaming_mean",
]


#: Fewest episodes of an :class:`Estimate` for which :func:`mean_test` states its false-alarm
#: probability: below it the skewness-corrected statistic still rejects centred exponential
#: terms (skewness 2) up to 1.5 times too often at level 1e-3 (1.52e-3 at N = 40, 1.09e-3 at
#: N = 130; 2e5 simulated tests each), and no finite-N guarantee is known to hold.
MIN_EPISODES = 160


@dataclass(frozen=True, eq=False)
class MeanTest:
    """Outcome of :func:`mean_test`.

    Attributes
    ----------
    z : numpy.ndarray, shape (k,)
        The statistic of each coordinate: the standardized difference (mean - expected) /
        standard error, skewness-corrected on an :class:`Estimate` (see :func:`mean_test`).
    threshold : float
        Two-sided Bonferroni threshold: ``t(N - 1).isf(false_alarm / (2 k))`` when the number
        of episodes N is known, ``norm.isf(false_alarm / (2 k))`` for the array form.
    passed : bool
        ``max |z| <= threshold`` (coordinates with zero sample variance must match to rounding).
    false_alarm : float
    power : float or None
        Probability that the test rejects when the estimator's mean is ``expected + bias``
        (:func:`mean_test_power`), if ``covariance`` and ``bias`` were given.
    """

    z: np.ndarray
    threshold: float
    passed: bool
    false_alarm: float
    power: float | None = None

    def __str__(self) -> str:
        power = "" if self.power is None else f", power {self.power:.3g} against the stated bias"
        return (
            f"mean test {'passed' if self.passed else 'FAILED'}: max |z| = {np.max(np.abs(self.z)):.3f}, "
            f"threshold {self.threshold:.3f} (k={self.z.size}, false alarm {self.false_alarm:g}{power})"
        )


def _check_false_alarm(false_alarm: Any) -> float:
    if isinstance(false_alarm, bool) or not isinstance(false_alarm, (int, float, np.floating, np.integer)):
        raise TypeError(f"false_alarm must be a real number in (0, 1), got {false_alarm!r}")
    a = float(false_alarm)
    if not 0.0 < a < 1.0:
        raise ValueError(f"false_alarm must be in (0, 1), got {false_alarm}")
    return a


def _threshold(false_alarm: float, k: int, n: int | None = None) -> float:
    """Bonferroni two-sided threshold: Student's t with n - 1 degrees of freedom, or normal."""
    # scipy.special's inverse CDFs, not scipy.stats' distributions: the same functions (scipy.stats'
    # norm.isf and t.isf call them), without importing scipy.stats (~0.45 s of CPU on first use).
    from scipy.special import ndtri, stdtrit

    tail = false_alarm / (2 * k)
    if n is None or n < 2:
        return float(-ndtri(tail))
    return float(-stdtrit(n - 1, tail))


def _hall_statistic(samples: np.ndarray, expected: np.ndarray) -> np.ndarray:
    r"""Hall's (1992) skewness-corrected Studentized mean of each column of ``samples`` (N, k).

    .. math::
        T = \sqrt N\left(S + \frac{\hat\gamma}{3}S^2 + \frac{\hat\gamma^2}{27}S^3
        + \frac{\hat\gamma}{6N}\right), \qquad S = \frac{\bar x - \mu}{\hat\sigma}, \quad
        \hat\gamma = \frac{\frac1N\sum_i (x_i - \bar x)^3}{\hat\sigma^3}

    (a monotone cubic in S: :math:`dT/dS = \sqrt N (1 + \hat\gamma S/3)^2`). It removes the
    :math:`N^{-1/2}` skewness term of the Edgeworth expansion of the t statistic, so its
    distribution is :math:`t_{N-1}`-like up to :math:`O(1/N)` (Hall 1992, "On the removal of
    skewness by transformation", JRSS B 54, sec. 2; Zhou & Dinh 2005, eq. 2.3). Columns with
    :math:`\hat\sigma = 0` are returned as NaN (the caller treats them).
    """
    n = samples.shape[0]
    mean = samples.mean(axis=0)
    dev = samples - mean
    sd = np.sqrt((dev * dev).sum(axis=0) / (n - 1))
    live = sd > 0
    safe = np.where(live, sd, 1.0)
    gam = (dev**3).mean(axis=0) / safe**3
    S = (mean - expected) / safe
    T = math.sqrt(n) * (S + gam * S * S / 3.0 + gam * gam * S**3 / 27.0 + gam / (6.0 * n))
    return np.where(live, T, np.nan)


def _unpack(estimate: Any, args: tuple, expected: Any, std_error: Any) -> tuple[Any, Any, Any, int | None, str]:
    """``(mean, std_error, expected, n, name of the mean)`` from either call form of :func:`mean_test`."""
    n_ep = getattr(estimate, "n_episodes", None)
    if hasattr(estimate, "mean") and hasattr(estimate, "std_error") and n_ep is not None:
        if std_error is not None:
            raise TypeError("std_error is taken from the estimate: pass mean_test(estimate, expected)")
        if len(args) > 1:
            raise TypeError(f"mean_test(estimate, expected) takes 2 positional arguments, got {1 + len(args)}")
        if args:
            if expected is not None:
                raise TypeError("expected given twice (positionally and by keyword)")
            expected = args[0]
        if expected is None:
            raise TypeError("mean_test(estimate, expected): expected is missing")
        n = int(n_ep)
        if n < 2:
            raise ValueError(
                f"estimate has {n} episode{'s' if n != 1 else ''}: a standard error needs at least 2"
            )
        if n < MIN_EPISODES:
            raise ValueError(
                f"estimate has {n} episodes, fewer than MIN_EPISODES={MIN_EPISODES}: below that the test "
                "rejects a correct expected value of skewed terms more often than false_alarm (1.5 times "
                "at N = 40 on exponential terms); sample more episodes, or pass mean, std_error and "
                "expected as arrays for the asymptotic (normal) test"
            )
        return estimate.mean, estimate.std_error, expected, n, "estimate.mean"
    if len(args) > 2:
        raise TypeError(f"mean_test(mean, std_error, expected) takes 3 positional arguments, got {1 + len(args)}")
    if args:
        if std_error is not None:
            raise TypeError("std_error given twice (positionally and by keyword)")
        std_error = args[0]
    if len(args) == 2:
        if expected is not None:
            raise TypeError("expected given twice (positionally and by keyword)")
        expected = args[1]
    if std_error is None or expected is None:
        raise TypeError(
            "mean_test takes an Estimate (or StreamedMean) and the expected value, "
            "or mean, std_error and expected"
        )
    return estimate, std_error, expected, None, "estimate"


def mean_test(
    estimate: Any,
    *args: Any,
    expected: Any = None,
    std_error: Any = None,
    false_alarm: float = 1e-3,
    atol: float = 1e-12,
    covariance: Any = None,
    bias: Any = None,
) -> MeanTest:
    r"""Is ``expected`` consistent with an estimated mean and its standard error?

    .. math::
        z_i = (\hat\mu_i - \mu_i) / \widehat{se}_i, \quad
        \text{reject if } \max_i |z_i| > c = t_{N-1}^{-1}(1 - \alpha/(2k))

    Bonferroni over the k coordinates. What holds depends on what is passed:

    * an :class:`~pgexact.estimators.Estimate` (the per-episode terms): each :math:`z_i` is
      Hall's skewness-corrected statistic (``_hall_statistic``: the t statistic with its
      :math:`N^{-1/2}` skewness term removed) against Student's t quantile with N − 1 degrees
      of freedom. Exact for normal terms up to the correction's :math:`O(1/N)`; for skewed
      terms the level error is :math:`O(1/N)` instead of the t test's :math:`O(N^{-1/2})`.
      Verified by simulation (``tests/test_reliability_round3.py``): on centred exponential
      terms (skewness 2) the per-coordinate rejection rate is at most its share
      :math:`\alpha/k` within binomial error, at N = 163 and N = 1000 and levels 1e-3 to 0.05.
      Fewer than :data:`MIN_EPISODES` episodes are refused: there the rate still exceeds α
      (by 50% at N = 40, α = 1e-3). Nothing is guaranteed for every distribution (no test of a
      mean can be, at finite N: Bahadur & Savage 1956); heavier skewness needs more episodes.
    * a :class:`StreamedMean` (mean and standard error only): the t statistic against the t
      quantile, exact for normal terms and asymptotic otherwise (no skewness correction: 1.3α
      at N = 1000 on exponential terms); also refused below :data:`MIN_EPISODES`.
    * arrays ``mean_test(mean, std_error, expected)``: N is unknown, so the normal quantile;
      asymptotic in N only.

    Coordinates with zero standard error (a constant term) pass only if
    :math:`|\hat\mu_i - \mu_i| \le` ``atol`` :math:`(1 + |\mu_i|)`.

    Parameters
    ----------
    estimate : Estimate, StreamedMean or array_like of shape (k,) or ()
        The estimate, or the estimated mean (then ``std_error`` follows).
    std_error : array_like, same shape as the mean
        Second positional argument in the array form: finite, non-negative standard errors of
        the mean (at least 2 episodes: with one, the standard error is undefined).
    expected : array_like, broadcastable to the mean's shape
        The exact value under the null hypothesis (finite).
    false_alarm : float
        α in (0, 1), the bound on the probability of rejecting a correct ``expected``.
    atol : float
        Tolerance for coordinates with zero standard error.
    covariance : array_like, shape (k, k), optional
        Exact covariance of *one episode's* term (e.g. ``exact_covariance(est.samples, p)`` on
        enumerated trajectories). With ``bias``, the result carries the test's power.
    bias : array_like, shape (k,), optional
        The stated alternative: the estimator's true mean is ``expected + bias``.

    Returns
    -------
    MeanTest
        ``z``, ``threshold``, ``passed``, ``false_alarm`` and ``power`` (None unless
        ``covariance`` and ``bias`` are given; needs the number of episodes, so an
        ``Estimate``/``StreamedMean`` as ``estimate``).

    Raises
    ------
    ValueError
        Fewer than :data:`MIN_EPISODES` episodes in an Estimate or StreamedMean (fewer than 2
        in the array form's standard error), a non-finite or negative standard error, a
        non-finite mean or expected value, mismatched shapes.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.estimators import Estimate
    >>> est = Estimate(np.random.default_rng(0).normal(1.0, 2.0, size=(400, 2)))
    >>> mean_test(est, [1.0, 1.0], false_alarm=1e-4).passed
    True
    >>> mean_test(est, [1.0, 3.0], false_alarm=1e-4).passed
    False
    """
    m_raw, se_raw, mu_raw, n, mname = _unpack(estimate, args, expected, std_error)
    alpha = _check_false_alarm(false_alarm)
    m = np.atleast_1d(as_float_array(mname, m_raw))
    shape = m.shape
    m = m.reshape(-1)
    if m.size == 0:
        raise ValueError(f"{mname} is empty: nothing to test")
    se_name = "estimate.std_error" if n is not None else "std_error"
    se = np.atleast_1d(as_float_array(se_name, se_raw, allow_nonfinite=True))
    if se.shape != shape:
        raise ValueError(f"{se_name} must have the shape of the mean {shape}, got {se.shape}")
    se = se.reshape(-1)
    bad = ~np.isfinite(se) | (se < 0)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(
            f"{se_name}[{i}] is {se[i]}, expected a finite standard error >= 0 "
            "(at least 2 episodes are needed to estimate it)"
        )
    mu_arr = as_float_array("expected", mu_raw)
    try:
        mu = np.broadcast_to(mu_arr.reshape(mu_arr.shape if mu_arr.ndim else ()), shape).reshape(-1)
    except ValueError:
        raise ValueError(f"expected must broadcast to the mean's shape {shape}, got {mu_arr.shape}") from None
    if isinstance(atol, bool) or not isinstance(atol, (int, float, np.floating, np.integer)) or not atol >= 0:
        raise ValueError(f"atol must be a real number >= 0, got {atol!r}")
    thr = _threshold(alpha, m.size, n)
    diff = m - mu
    const = se == 0
    samples = getattr(estimate, "samples", None) if n is not None else None
    if isinstance(samples, np.ndarray) and samples.shape[:1] == (n,) and samples[:1].size == m.size:
        z = _hall_statistic(samples.reshape(n, -1).astype(np.float64, copy=False), mu)
        z = np.where(np.isnan(z), 0.0, z)  # zero-variance coordinates: handled below
    else:
        z = diff / np.where(const, 1.0, se)
    off = const & (np.abs(diff) > atol * (1 + np.abs(mu)))
    z = np.where(const, np.where(off, np.copysign(np.inf, diff), 0.0), z)
    passed = bool(not off.any() and np.max(np.abs(z)) <= thr)
    power = None
    if covariance is not None or bias is not None:
        if covariance is None or bias is None:
            raise TypeError("the power needs both covariance and bias")
        if n is None:
            raise TypeError(
                "the power needs the number of episodes: pass an Estimate or StreamedMean as estimate, "
                "or call mean_test_power(covariance, bias, n_episodes)"
            )
        power = mean_test_power(covariance, bias, n, false_alarm=alpha, atol=atol)
    return MeanTest(z=z, threshold=thr, passed=passed, false_alarm=alpha, power=power)


def _check_cov_bias(covariance: Any, bias: Any) -> tuple[np.ndarray, np.ndarray]:
    d = np.atleast_1d(as_float_array("bias", bias)).reshape(-1)
    k = d.size
    if k == 0:
        raise ValueError("bias is empty")
    C = np.atleast_2d(as_float_array("covariance", covariance))
    if C.shape != (k, k):
        raise ValueError(f"covariance must have shape (k, k)=({k}, {k}) to match bias, got {C.shape}")
    if not np.allclose(C, C.T, rtol=1e-10, atol=1e-12 * max(1.0, float(np.max(np.abs(C))))):
        i, j = np.unravel_index(int(np.argmax(np.abs(C - C.T))), C.shape)
        raise ValueError(f"covariance must be symmetric: covariance[{i}, {j}] != covariance[{j}, {i}]")
    diag = np.diag(C)
    if (diag < 0).any():
        i = int(np.argmax(diag < 0))
        raise ValueError(f"covariance[{i}, {i}] is {diag[i]}, expected a variance >= 0")
    sym = C / 2 + C.T / 2  # halves first: no overflow near the float64 limit
    scale = float(np.max(diag)) if diag.size else 0.0
    if k > 1 and scale > 0:
        # rounding moves eigenvalues by about k eps ||C||; far beyond that is not a covariance
        low = float(np.linalg.eigvalsh(sym / scale)[0])
        if low < -1e-10:
            raise ValueError(
                f"covariance is not positive semi-definite: its smallest eigenvalue is {low * scale:.6g} "
                f"(relative to max variance {scale:.6g}), expected >= 0"
            )
    return sym, d


def mean_test_power(
    covariance: Any, bias: Any, n_episodes: int, *, false_alarm: float = 1e-3, atol: float = 1e-12
) -> float:
    r"""Probability that :func:`mean_test` rejects when the estimator's mean is off by ``bias``.

    With :math:`\Sigma` the covariance of one episode's term, N episodes and the standard errors
    at their limits :math:`\sigma_i/\sqrt N`, the statistic is asymptotically
    :math:`z \sim \mathcal N(\delta_i \sqrt N / \sigma_i, R)`, R the correlation matrix of Σ, so

    .. math::
        \text{power} = 1 - \Pr\big(\max_i |z_i| \le c\big), \qquad c = t_{N-1}^{-1}(1 - \alpha/(2k)),

    c the threshold :func:`mean_test` uses on an Estimate of N episodes (the normal quantile
    for N = 1),
    a rectangle probability of a correlated normal vector (exact for k = 1; for k > 1 computed by
    Genz's quasi-Monte Carlo integration with a fixed seed, absolute error about 1e-5, or, when
    the correlation matrix is singular, as softmax scores make it, by scrambled Sobol points
    on its range, absolute error about 1e-3).
    Coordinates of zero variance reject exactly when their bias exceeds ``atol``.
    Same asymptotics as the test itself: the Studentized statistic is treated as normal.

    Parameters
    ----------
    covariance : array_like, shape (k, k)
        Exact covariance of one episode's term.
    bias : array_like, shape (k,)
        True mean minus the value under test.
    n_episodes : int
        N.
    false_alarm : float
        α of the test.

    Returns
    -------
    float
        The power in [0, 1] (at zero bias :math:`2\Phi(-c) \le \alpha`, the normal model's
        rejection rate under the null).

    Examples
    --------
    >>> p = mean_test_power([[4.0]], [0.2], 400, false_alarm=0.05)  # bias = 2 standard errors
    >>> from scipy.stats import norm, t
    >>> c = t.isf(0.025, 399)  # the threshold of mean_test on 400 episodes
    >>> bool(abs(p - (norm.cdf(2 - c) + norm.cdf(-2 - c))) < 1e-12)
    True
    """
    C, d = _check_cov_bias(covariance, bias)
    n = check_positive_int("n_episodes", n_episodes)
    alpha = _check_false_alarm(false_alarm)
    atol = check_real("atol", atol)
    if atol < 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    k = d.size
    thr = _threshold(alpha, k, n)
    var = np.diag(C)
    const = var == 0
    if np.any(const & (np.abs(d) > atol)):
        return 1.0
    live = ~const
    if not live.any():
        return 0.0
    sd = np.sqrt(var[live])
    with np.errstate(over="ignore"):  # a shift beyond float64 is +-inf: power 1, exactly
        shift = d[live] * math.sqrt(n) / sd
    from scipy.stats import multivariate_normal, norm

    if shift.size == 1:
        s = float(shift[0])
        return float(norm.sf(thr - s) + norm.cdf(-thr - s))
    R = C[np.ix_(live, live)] / np.outer(sd, sd)
    w, V = np.linalg.eigh(R)
    if w.min() > 1e-8 * w.max():
        args = dict(
            mean=np.zeros(shift.size),
            cov=R,
            lower_limit=np.full(shift.size, -thr) - shift,
            abseps=1e-6,
            releps=1e-6,
        )
        # the quasi-Monte Carlo integration is seeded, so the power is a deterministic number
        inside = float(multivariate_normal.cdf(np.full(shift.size, thr) - shift, **args, rng=np.random.default_rng(0)))
    else:  # singular correlation (e.g. softmax scores summing to 0): integrate on its range
        inside = _box_probability_qmc(shift, V[:, w > 1e-8 * w.max()] * np.sqrt(w[w > 1e-8 * w.max()]), thr)
    return float(min(1.0, max(0.0, 1.0 - inside)))


def _box_probability_qmc(shift: np.ndarray, L: np.ndarray, thr: float, log2_points: int = 17) -> float:
    r""":math:`\Pr(\max_i |m_i + (L w)_i| \le c)`, :math:`w \sim N(0, I_r)`, by scrambled Sobol points (seed 0).

    Absolute error about 1e-3 (quasi-Monte Carlo on an indicator, 2^17 points).
    """
    normals = _sobol_normals(L.shape[1], log2_points)
    hits = 0
    for block in np.array_split(normals, 16):
        z = shift[None, :] + block @ L.T
        hits += int(np.count_nonzero(np.all(np.abs(z) <= thr, axis=1)))
    return hits / normals.shape[0]


@functools.lru_cache(maxsize=4)
def _sobol_normals(r: int, log2_points: int) -> np.ndarray:
    """Standard normal quasi-random points: scrambled Sobol (seed 0) through the normal quantile.

    The same points for every call of a given dimension, so they are computed once (read-only).
    """
    from scipy.special import ndtri
    from scipy.stats import qmc

    try:  # the seed keyword is `rng` from scipy 1.15, `seed` before
        sobol = qmc.Sobol(r, scramble=True, rng=np.random.default_rng(0))
    except TypeError:
        sobol = qmc.Sobol(r, scramble=True, seed=np.random.default_rng(0))
    normals = ndtri(sobol.random_base2(log2_points))
    normals.flags.writeable = False
    return normals


def episodes_needed(
    covariance: Any,
    bias: Any,
    *,
    power: float = 0.8,
    false_alarm: float = 1e-3,
    max_episodes: int = 10**12,
) -> int:
    r"""The smallest N for which :func:`mean_test` detects ``bias`` with probability at least ``power``.

    Uses :func:`mean_test_power`, which increases with N (the rejection region's complement is
    a centred symmetric box, whose probability under a normal law decreases as the mean moves
    away along a ray: Anderson 1955, and the t threshold decreases with N), so N is found by
    doubling and bisection. For one coordinate this is about
    :math:`\big((c + \Phi^{-1}(\text{power}))\,\sigma/\delta\big)^2`. The answer may be
    below :data:`MIN_EPISODES`, which :func:`mean_test` then refuses on an Estimate.

    Parameters
    ----------
    covariance : array_like, shape (k, k)
        Exact covariance of one episode's term.
    bias : array_like, shape (k,)
        The bias to detect (true mean minus the value under test), not all zero.
    power : float
        Required detection probability, in (false_alarm, 1).
    false_alarm : float
        α of the test.
    max_episodes : int
        ``ValueError`` if more would be needed.

    Returns
    -------
    int

    Examples
    --------
    >>> episodes_needed([[4.0]], [0.2], power=0.8, false_alarm=0.05)  # ((t_{N-1}(0.975) + 0.84) * 2 / 0.2)^2
    787
    """
    C, d = _check_cov_bias(covariance, bias)
    alpha = _check_false_alarm(false_alarm)
    if isinstance(power, bool) or not isinstance(power, (int, float, np.floating, np.integer)):
        raise TypeError(f"power must be a real number, got {power!r}")
    if not alpha < float(power) < 1.0:
        raise ValueError(f"power must be in (false_alarm, 1) = ({alpha}, 1), got {power}")
    max_episodes = check_positive_int("max_episodes", max_episodes)
    if not np.any(d != 0):
        raise ValueError("bias is zero: no number of episodes detects it")

    def ok(n: int) -> bool:
        return mean_test_power(C, d, n, false_alarm=alpha) >= power

    hi = 1
    while not ok(hi):
        if hi >= max_episodes:
            raise ValueError(
                f"more than max_episodes={max_episodes} episodes would be needed to detect this bias"
            )
        hi = min(2 * hi, max_episodes)
    lo = hi // 2  # ok(lo) is False (or lo = 0)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        if ok(mid):
            hi = mid
        else:
            lo = mid
    return hi
