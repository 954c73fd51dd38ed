r"""Tests of recorded updates against an exact prediction, for dependent batches from one stream.

The updates :math:`Y_1, \dots, Y_B` of consecutive batches of one continuous stream are
dependent (an episode runs on across batches). Both tests use **batch means**: the B batches are
cut into K consecutive blocks of :math:`\lfloor B/K \rfloor` batches (the first
:math:`B \bmod K` batches are dropped), and the block means
:math:`\bar Y_1, \dots, \bar Y_K` are treated as independent and normal — true in the limit of
long blocks when the stream mixes (Glynn & Whitt 1991, "Estimating the asymptotic variance with
batch means"; Law & Kelton, "Simulation modeling and analysis", sec. 9.5.3). For each coordinate
i of the (S, A) update,

.. math::

    t_i = \frac{\bar D_i}{s_i / \sqrt K}, \qquad D_k = \bar Y_k - \bar\mu_k,

with :math:`s_i` the standard deviation of :math:`D_{k,i}` over the blocks and
:math:`\bar\mu_k` the exact prediction averaged over block k's batches. The statistic is
:math:`\max_i |t_i|` over the d coordinates that vary, compared with the Student quantile
:math:`t_{K-1}(1 - \alpha/(2d))` (Bonferroni): the false-alarm probability is at most α
(asymptotically in the block length). A coordinate with no variation across blocks and a
nonzero mean difference counts as :math:`|t| = \infty`.

**Non-normal block means.** The Bonferroni level :math:`\alpha/(2d)` lies far in the tail, where
skewed, heavy-tailed block means (the coordinates of rarely visited states or rare rewards) make
:math:`|t_i|` exceed Student's quantile more often than stated: on the audits' gridworld with
16 envs × 16 steps and 60 batches, one coordinate's two-sided tail rate at
:math:`\alpha/(2d)` was 4× nominal and the test's false alarm 5.7% at a nominal 5% (2,000
streams). The variance estimate :math:`s_i^2` is what goes wrong: with excess kurtosis
:math:`\kappa` of the block means, :math:`\operatorname{Var}(s_i^2)/\sigma_i^4 = 2/(K-1) +
\kappa/K` instead of :math:`2/(K-1)`. Each :math:`t_i` is therefore referred to Student's t with
the moment-matched degrees of freedom (Satterthwaite 1946, "An approximate distribution of
estimates of variance components")

.. math::

    \nu_i = \frac{2}{2/(K-1) + \hat\kappa_i / K}, \qquad
    \hat\kappa_i = \frac{\max(0, G_{2,i})}{\lfloor B/K \rfloor},

with :math:`G_{2,i}` the sample excess kurtosis of the per-batch differences (the kurtosis of a
mean of m nearly independent batches is a batch's over m; estimated from the B batches rather
than the K blocks), and reported on the :math:`t_{K-1}` scale:
:math:`z_i = F^{-1}_{t_{K-1}}(F_{t_{\nu_i}}(|t_i|))`. Normal data keep
:math:`\nu_i \approx K - 1`; :math:`\nu_i` never exceeds K − 1.

* :func:`mean_test` — :math:`H_0: \mathbb{E}[Y_b] = \mu_b` (the exact test).
* :func:`parallel_test` — :math:`H_0: \mathbb{E}[Y_b] = c\,\mu_b` for some c > 0 (scale-free:
  the update of normalized advantages). The blocks are projected on the orthogonal complement
  of :math:`\bar\mu` after removing :math:`\hat c\,\bar\mu_k`, :math:`\hat c =
  \langle\bar Y, \bar\mu\rangle/\|\bar\mu\|^2`; H₀ is also rejected when :math:`\hat c` is
  negative beyond the threshold.

The calibration of both (the rejection rate under H₀, by simulation with the reference buffer
simulator) is a test of the suite (``tests/test_conformance_stats.py``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.stats

from .._validation import as_float_array, check_bool, check_positive_int

__all__ = ["Verdict", "mean_test", "parallel_test", "power_against"]

#: Default number of blocks of the batch-means tests.
N_BLOCKS = 20
#: Default false-alarm probability of each test.
FALSE_ALARM = 0.01
#: Power the minimum detectable shift is stated at.
POWER_LEVEL = 0.8


@dataclass(frozen=True)
class Verdict:
    r"""The verdict of :func:`mean_test` or :func:`parallel_test`.

    Attributes
    ----------
    test : str
        ``"mean"`` or ``"parallel"``.
    z : float
        The statistic :math:`\max_i |t_i|` on the :math:`t_{K-1}` scale after the kurtosis
        adjustment of the degrees of freedom (module docstring; ``inf`` if a constant coordinate
        differs).
    threshold : float
        :math:`t_{K-1}(1 - \alpha/(2d))`.
    reject : bool
    false_alarm : float
        α, the bound on the false-alarm probability.
    n_blocks, n_coordinates : int
        K and d.
    worst : tuple of int
        The (s, a) coordinate of the largest :math:`|t_i|`.
    scale : float
        :math:`\hat c` (parallel test) or 1 (mean test).
    std_error : numpy.ndarray, shape (S, A)
        :math:`s_i/\sqrt K`, the standard error of the mean update per coordinate.
    min_detectable : float
        The smallest shift of one coordinate, in units of the largest absolute entry of the prediction, that
        the test detects with probability ``POWER_LEVEL`` (normal approximation,
        :math:`(t_{\text{crit}} + z_{0.8})\, \min_i \text{se}_i / \|\mu\|_\infty`).
    """

    test: str
    z: float
    threshold: float
    reject: bool
    false_alarm: float
    n_blocks: int
    n_coordinates: int
    worst: tuple
    scale: float
    std_error: np.ndarray
    min_detectable: float
    directions: np.ndarray | None = None
    direction_std_error: np.ndarray | None = None

    def to_dict(self) -> dict:
        """JSON-ready fields (the standard errors omitted).

        Examples
        --------
        >>> import numpy as np
        >>> r = mean_test(np.random.default_rng(0).normal(size=(40, 2, 2)), np.zeros((2, 2)))
        >>> sorted(r.to_dict())[:3]
        ['false_alarm', 'min_detectable', 'n_blocks']
        """
        return {"test": self.test, "z": float(self.z), "threshold": float(self.threshold),
                "reject": bool(self.reject), "false_alarm": self.false_alarm, "n_blocks": self.n_blocks,
                "n_coordinates": self.n_coordinates, "worst": list(self.worst), "scale": float(self.scale),
                "min_detectable": float(self.min_detectable)}


#: Largest magnitude of an update entry the tests accept (their squares must not overflow).
MAX_MAGNITUDE = 1e100


def _bounded(name: str, value: Any) -> np.ndarray:
    arr = as_float_array(name, value)
    if arr.size and np.abs(arr).max() > MAX_MAGNITUDE:
        idx = np.unravel_index(int(np.argmax(np.abs(arr))), arr.shape)
        raise ValueError(f"{name}{list(int(i) for i in idx)} is {arr[idx]:.3g}, beyond the {MAX_MAGNITUDE:.0e} "
                         "the tests accept (rescale the updates)")
    return arr


def _blocks(updates: Any, predicted: Any, n_blocks: Any) -> tuple[np.ndarray, ...]:
    """Block means of the updates and predictions, and the batches they use (the first B mod K dropped)."""
    Y = _bounded("updates", updates)
    if Y.ndim < 2:
        raise ValueError(f"updates must have shape (n_batches, ...), got {Y.shape}")
    B = Y.shape[0]
    K = check_positive_int("n_blocks", n_blocks)
    if K < 2:
        raise ValueError("n_blocks must be at least 2 (the block variance needs two blocks)")
    if B < K:
        raise ValueError(f"updates has {B} batches, fewer than n_blocks={K}: record more batches or lower n_blocks")
    mu = _bounded("predicted", predicted)
    if mu.shape == Y.shape[1:]:
        mu = np.broadcast_to(mu, Y.shape)
    elif mu.shape != Y.shape:
        raise ValueError(f"predicted must have shape {Y.shape[1:]} or {Y.shape}, got {mu.shape}")
    size = B // K
    start = B - K * size
    Yb = Y[start:].reshape((K, size) + Y.shape[1:]).mean(axis=1)
    mub = mu[start:].reshape((K, size) + Y.shape[1:]).mean(axis=1)
    return Yb, mub, Y[start:], mu[start:]


def _excess_kurtosis(X: np.ndarray) -> np.ndarray:
    """Unbiased sample excess kurtosis (Fisher's G2) of each column of X (n, m), clipped at 0.

    Columns that do not vary, and samples of fewer than 4, get 0.
    """
    n = X.shape[0]
    if n < 4:
        return np.zeros(X.shape[1])
    C = X - X.mean(axis=0)
    peak = np.abs(C).max(axis=0)
    C = C / np.where(peak > 0, peak, 1.0)  # scale-free; fourth powers of entries up to 1e100 would overflow
    m2 = (C * C).mean(axis=0)
    m4 = (C ** 4).mean(axis=0)
    out = np.zeros(X.shape[1])
    ok = (peak > 1e-12 * max(float(np.abs(X).max(initial=0.0)), 1e-300)) & (m2 > 0)
    g2 = m4[ok] / m2[ok] ** 2 - 3.0
    out[ok] = ((n + 1) * g2 + 6.0) * (n - 1) / ((n - 2) * (n - 3))
    return np.maximum(out, 0.0)


def _columns(D: np.ndarray, directions: np.ndarray | None, coordinates: bool) -> np.ndarray:
    n = D.shape[0]
    Df = D.reshape(n, -1)
    cols = [Df if coordinates else Df[:, :0]]
    if directions is not None and len(directions):
        cols.append(Df @ directions.reshape(len(directions), -1).T)
    return np.concatenate(cols, axis=1)


def _max_t(D: np.ndarray, alpha: float, scale_ref: float, directions: np.ndarray | None = None,
           coordinates: bool = True, batches: np.ndarray | None = None):
    """max |t| over the coordinates of the block differences D (K, ...) and their projections on
    ``directions`` (m, ...), each t referred to Student's t with the kurtosis-adjusted degrees of
    freedom of its standard error (from the per-batch differences ``batches`` (B, ...)) and
    reported on the scale of :math:`t_{K-1}`; returns (z, crit, d, worst, se, se_directions)."""
    K = D.shape[0]
    Df = D.reshape(K, -1)
    X = _columns(D, directions, coordinates)
    mean = X.mean(axis=0)
    se_all = X.std(axis=0, ddof=1) / np.sqrt(K)
    tiny = 1e-12 * max(scale_ref, np.abs(Df).max(), 1e-300)
    varies = se_all > tiny
    differs = ~varies & (np.abs(mean) > tiny)
    d = max(int(varies.sum()), 1)
    t = np.zeros_like(mean)
    t[varies] = np.abs(mean[varies]) / se_all[varies]
    if batches is not None:
        # excess kurtosis of a block mean = that of a batch / batches per block (batches nearly
        # independent); Var(s^2)/sigma^4 = 2/(K-1) + kappa/K matched by a chi2_nu/nu
        size = batches.shape[0] // K
        kappa = _excess_kurtosis(_columns(batches, directions, coordinates)) / size
        nu = 2.0 / (2.0 / (K - 1) + kappa / K)
        adjust = varies & (nu < K - 1)
        if adjust.any():
            sf = scipy.stats.t.sf(t[adjust], nu[adjust])
            t[adjust] = np.where(sf > 0, scipy.stats.t.isf(np.maximum(sf, 1e-300), K - 1), t[adjust])
    t[differs] = np.inf
    crit = float(scipy.stats.t.ppf(1.0 - alpha / (2 * d), K - 1))
    i = int(np.argmax(t))
    nc = Df.shape[1] if coordinates else 0
    worst = tuple(int(x) for x in np.unravel_index(i, D.shape[1:])) if i < nc else ("direction", i - nc)
    se = se_all[:nc].reshape(D.shape[1:]) if coordinates else np.zeros(D.shape[1:])
    return float(t.max()), crit, d, worst, se, se_all[nc:]


def _unit_directions(directions: Any, shape: tuple) -> np.ndarray | None:
    if directions is None:
        return None
    U = _bounded("directions", directions)
    if U.ndim < 1 or U.shape[1:] != shape:
        raise ValueError(f"directions must have shape (m,) + {shape}, got {U.shape}")
    flat = U.reshape(len(U), -1)
    norms = np.linalg.norm(flat, axis=1)
    keep = norms > 0
    return (flat[keep] / norms[keep, None]).reshape((int(keep.sum()),) + shape)


def _check_alpha(false_alarm: Any) -> float:
    a = float(false_alarm) if isinstance(false_alarm, (int, float, np.floating)) and not isinstance(
        false_alarm, bool) else None
    if a is None or not 0.0 < a < 1.0:
        raise ValueError(f"false_alarm must be a probability in (0, 1), got {false_alarm!r}")
    return a


def _min_detectable(se: np.ndarray, crit: float, mu_norm: float) -> float:
    pos = se[se > 0]
    if pos.size == 0 or mu_norm == 0:
        return float("nan")
    return float((crit + scipy.stats.norm.ppf(POWER_LEVEL)) * pos.min() / mu_norm)


def mean_test(updates: Any, predicted: Any, *, directions: Any = None, coordinates: bool = True,
              n_blocks: int = N_BLOCKS, false_alarm: float = FALSE_ALARM) -> Verdict:
    r"""The exact test :math:`H_0: \mathbb{E}[Y_b] = \mu_b` by batch means (module docstring).

    Parameters
    ----------
    updates : array_like, shape (n_batches, ...)
        Consecutive batches' updates from one continuous stream.
    predicted : array_like, shape (...) or (n_batches, ...)
        The exact expected update (one for all batches, or one per batch).
    directions : array_like, shape (m, ...), optional
        Linear projections tested as well (Bonferroni over coordinates and projections): the
        differences to specific alternatives (other conventions' predictions), against which a
        projection has far more power than the coordinates.
    coordinates : bool
        Test the coordinates (default). False: only the projections on ``directions`` (the
        test of one named alternative: no Bonferroni factor for the coordinates).
    n_blocks : int
    false_alarm : float
        α: the false-alarm probability is at most α (Bonferroni over coordinates, batch means
        asymptotically normal and independent).

    Examples
    --------
    >>> import numpy as np
    >>> Y = np.random.default_rng(0).normal(size=(200, 3, 2))
    >>> mean_test(Y, np.zeros((3, 2))).reject, mean_test(Y + 1.0, np.zeros((3, 2))).reject
    (False, True)
    """
    alpha = _check_alpha(false_alarm)
    coordinates = check_bool("coordinates", coordinates)
    Yb, mub, Y, mu = _blocks(updates, predicted, n_blocks)
    scale = float(np.abs(mub).max())
    U = _unit_directions(directions, Yb.shape[1:])
    if not coordinates and (U is None or not len(U)):
        raise ValueError("coordinates=False needs at least one nonzero direction")
    z, crit, d, worst, se, se_dir = _max_t(Yb - mub, alpha, scale, U, bool(coordinates), batches=Y - mu)
    return Verdict("mean", z, crit, bool(z > crit), alpha, Yb.shape[0], d, worst, 1.0, se,
                   _min_detectable(se, crit, scale), U, se_dir)


def parallel_test(updates: Any, predicted: Any, *, offset: Any = None, n_blocks: int = N_BLOCKS,
                  false_alarm: float = FALSE_ALARM) -> Verdict:
    r"""The scale-free test :math:`H_0: \mathbb{E}[Y_b] = c\,\mu_b + o_b` with c > 0 (module docstring).

    ``offset`` (:math:`o_b`, default 0, shape of ``predicted``) is a part of the update that
    normalization does not scale: the entropy bonus's gradient when advantages are normalized.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(0)
    >>> mu = np.array([[1.0, -1.0], [0.5, -0.5]])
    >>> Y = 3.0 * mu + 0.1 * rng.normal(size=(200, 2, 2))
    >>> r = parallel_test(Y, mu)
    >>> r.reject, round(r.scale, 1)
    (False, 3.0)
    >>> parallel_test(Y, np.array([[1.0, -1.0], [-0.5, 0.5]])).reject
    True
    """
    alpha = _check_alpha(false_alarm)
    if offset is not None:
        Y = _bounded("updates", updates)
        o = _bounded("offset", offset)
        try:
            updates = Y - np.broadcast_to(o, Y.shape) if o.shape != Y.shape else Y - o
        except ValueError:
            raise ValueError(f"offset must have shape {Y.shape[1:]} or {Y.shape}, got {o.shape}") from None
    Yb, mub, Y, mu = _blocks(updates, predicted, n_blocks)
    K = Yb.shape[0]
    mbar = mub.mean(axis=0).reshape(-1)
    nrm2 = float(mbar @ mbar)
    if not nrm2 > 0:
        raise ValueError("predicted is zero: a direction cannot be tested")
    Yf, muf = Yb.reshape(K, -1), mub.reshape(K, -1)
    c_blocks = Yf @ mbar / nrm2
    c_hat = float(c_blocks.mean())

    def residual(Yx: np.ndarray, mux: np.ndarray) -> np.ndarray:
        Rx = Yx - c_hat * mux
        return Rx - np.outer(Rx @ mbar / nrm2, mbar)

    R = residual(Yf, muf)
    Rbat = residual(Y.reshape(len(Y), -1), mu.reshape(len(mu), -1))
    scale = float(np.abs(Yf).max())
    z, crit, d, worst, se, _ = _max_t(R.reshape(Yb.shape), alpha, scale, batches=Rbat)
    # a negative scale (antiparallel) also rejects
    se_c = float(c_blocks.std(ddof=1) / np.sqrt(K))
    t_c = c_hat / se_c if se_c > 0 else (np.inf if c_hat > 0 else -np.inf)
    reject = bool(z > crit or t_c < -crit)
    if t_c < -crit and not z > crit:
        z = float(-t_c)
    return Verdict("parallel", z, crit, reject, alpha, K, d, worst, c_hat, se,
                      _min_detectable(se, crit, abs(c_hat) * float(np.abs(mbar).max())))


def power_against(result: Verdict, shift: Any) -> float:
    r"""Approximate power of a test against the alternative mean ``prediction + shift``.

    .. math::

        \text{power} \approx \max_i \Phi\bigl(|\langle\Delta, u_i\rangle|/\text{se}_i - t_{\text{crit}}\bigr)

    over the coordinates and the tested directions :math:`u_i` (normal approximation of the
    largest single-statistic rejection probability, a lower bound on the max-statistic's
    power; the standard errors are those measured under the null).

    Examples
    --------
    >>> import numpy as np
    >>> r = mean_test(np.random.default_rng(0).normal(size=(200, 2)), np.zeros(2))
    >>> power_against(r, np.array([2.0, 0.0])) > 0.99
    True
    """
    if not isinstance(result, Verdict):
        raise TypeError(f"result must be a Verdict (from mean_test or parallel_test), got {type(result).__name__}")
    shift = _bounded("shift", shift)
    if shift.shape != result.std_error.shape:
        raise ValueError(f"shift must have shape {result.std_error.shape}, got {shift.shape}")
    se = result.std_error
    # the statistics the test uses: those that vary beyond rounding (as in the test itself)
    tiny = 1e-9 * max(float(se.max()), 0.0)
    ncp = [np.abs(shift[se > tiny]) / se[se > tiny]]
    if result.directions is not None and len(result.directions):
        proj = np.abs(result.directions.reshape(len(result.directions), -1) @ shift.reshape(-1))
        sd = result.direction_std_error
        ok = sd > 1e-9 * max(float(sd.max()), float(se.max()))
        ncp.append(proj[ok] / sd[ok])
    ncp = np.concatenate(ncp)
    if ncp.size == 0:
        return float(np.any(shift != 0))
    return float(scipy.stats.norm.cdf(ncp - result.threshold).max())
