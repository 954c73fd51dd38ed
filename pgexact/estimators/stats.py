r"""Statistical checks of estimators against exact values, with stated false-alarm probabilities.

:func:`mean_test` is a z-test per coordinate with a Bonferroni correction: under the null
hypothesis (the estimator's mean is ``expected``) and the central limit theorem, the
probability that *any* of the k coordinates is flagged is at most ``false_alarm``
(asymptotically in N). :func:`streaming_mean` accumulates means and standard errors chunk by
chunk in bounded memory.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

__all__ = ["MeanTest", "mean_test", "StreamedMean", "streaming_mean"]


@dataclass(frozen=True, eq=False)
class MeanTest:
    """Outcome of :func:`mean_test`.

    Attributes
    ----------
    z : numpy.ndarray, shape (k,)
        Standardized differences (mean - expected) / standard error.
    threshold : float
        Two-sided Bonferroni threshold ``norm.isf(false_alarm / (2 k))``.
    passed : bool
        ``max |z| <= threshold`` (coordinates with zero sample variance must match to rounding).
    false_alarm : float
    """

    z: np.ndarray
    threshold: float
    passed: bool
    false_alarm: float

    def __str__(self) -> str:
        return (
            f"mean test {'passed' if self.passed else 'FAILED'}: max |z| = {np.max(np.abs(self.z)):.3f}, "
            f"threshold {self.threshold:.3f} (k={self.z.size}, false alarm {self.false_alarm:g})"
        )


def mean_test(
    mean: Any, std_error: Any, expected: Any, *, false_alarm: float = 1e-3, atol: float = 1e-12
) -> MeanTest:
    r"""Is ``expected`` consistent with an estimated ``mean`` and its ``std_error``?

    .. math:: z_i = (\hat\mu_i - \mu_i) / \widehat{se}_i, \quad \text{reject if } \max_i |z_i| > \Phi^{-1}(1 - \alpha/(2k))

    Coordinates with ``std_error == 0`` (a constant term) pass only if
    :math:`|\hat\mu_i - \mu_i| \le` ``atol`` :math:`(1 + |\mu_i|)`.
    """
    m = np.atleast_1d(np.asarray(mean, dtype=np.float64)).reshape(-1)
    se = np.atleast_1d(np.asarray(std_error, dtype=np.float64)).reshape(-1)
    mu = np.broadcast_to(np.asarray(expected, dtype=np.float64), np.shape(mean)).reshape(-1)
    if not 0 < false_alarm < 1:
        raise ValueError(f"false_alarm must be in (0, 1), got {false_alarm}")
    from scipy.stats import norm  # imported here: scipy.stats costs ~0.25 s at `import pgexact`

    thr = float(norm.isf(false_alarm / (2 * m.size)))
    diff = m - mu
    const = se == 0
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(const, 0.0, diff / np.where(const, 1.0, se))
    ok_const = np.all(np.abs(diff[const]) <= atol * (1 + np.abs(mu[const])))
    z = np.where(const & (np.abs(diff) > atol * (1 + np.abs(mu))), np.inf, z)
    return MeanTest(z=z, threshold=thr, passed=bool(ok_const and np.max(np.abs(z)) <= thr), false_alarm=false_alarm)


@dataclass(frozen=True, eq=False)
class StreamedMean:
    """Mean and standard error of per-episode terms accumulated chunk by chunk."""

    mean: np.ndarray
    std_error: np.ndarray
    n: int


def streaming_mean(
    estimator: Callable[..., Any], chunks: Iterable[Any], *args: Any, executor: Any = None, **kwargs: Any
) -> StreamedMean:
    r"""Apply ``estimator(chunk, *args, **kwargs)`` to each batch of ``chunks`` and merge the results.

    Memory is bounded by one chunk. Merging uses the pairwise update of Chan, Golub & LeVeque
    (1983) for the mean and the sum of squared deviations, so the result equals (to rounding)
    the mean and standard error of the per-episode terms of the concatenated batches.

    With an ``executor`` (any ``concurrent.futures.Executor``; scale-out, issue 7) the estimator
    is applied to the chunks on its workers and the per-chunk moments are merged in chunk order:
    bit-identical to ``executor=None``. The chunks travel to the workers; to sample them there
    too, use :func:`pgexact.distributed.streaming_estimate`. A failing chunk raises
    :class:`pgexact.distributed.ChunkError` naming its index.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import rollout_chunks, TabularSoftmax
    >>> from pgexact.estimators import reward_to_go
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=0)
    >>> pol = TabularSoftmax(3, 2); theta = np.zeros(6)
    >>> res = streaming_mean(reward_to_go, rollout_chunks(mdp, pol.probs(theta), 1000, seed=0, chunk_size=300), pol, theta)
    >>> res.n
    1000
    """
    if executor is not None:  # scale-out (issue 7)
        from ..distributed import streaming_mean_on  # deferred: pgexact.distributed imports this module

        return streaming_mean_on(executor, estimator, chunks, args, kwargs)
    return merge_moments(chunk_moments(estimator(chunk, *args, **kwargs).samples) for chunk in chunks)


def chunk_moments(samples: Any) -> tuple[int, np.ndarray, np.ndarray]:
    """``(n, mean, sum of squared deviations)`` of per-episode terms, shape (n, ...) -> (...)."""
    x = np.asarray(samples, dtype=np.float64)
    mb = x.mean(axis=0)
    return x.shape[0], mb, ((x - mb) ** 2).sum(axis=0)


def merge_moments(parts: Iterable[tuple[int, np.ndarray, np.ndarray]]) -> StreamedMean:
    """Merge ``(n, mean, m2)`` triples in order (Chan, Golub & LeVeque 1983).

    The arithmetic is fixed by the order of ``parts``, so the same chunks merged in the same
    order give bit-identical results wherever their moments were computed.
    """
    n = 0
    mean: np.ndarray | None = None
    m2: np.ndarray | None = None
    for nb, mb, m2b in parts:
        if mean is None:
            n, mean, m2 = nb, mb, m2b
            continue
        tot = n + nb
        delta = mb - mean
        mean = mean + delta * (nb / tot)
        m2 = m2 + m2b + delta**2 * (n * nb / tot)  # type: ignore[operator]
        n = tot
    if mean is None:
        raise ValueError("chunks is empty")
    se = np.sqrt(m2 / (n - 1) / n) if n > 1 else np.full(mean.shape, np.inf)  # type: ignore[operator]
    return StreamedMean(mean=mean, std_error=se, n=n)
