r"""Streaming means: an estimator's per-episode terms reduced chunk by chunk, in bounded memory.

Each chunk is reduced to ``(n, mean, sum of squared deviations)`` where the estimator runs (this
process or a worker of an executor) and the reductions are merged in chunk order with the
pairwise update of Chan, Golub & LeVeque (1983), so the result is bit-identical whatever the
executor.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Iterable

import numpy as np

from .._chunks import ChunkError, check_executor, ordered_map
from .._validation import ReadOnlyOnCopy, check_positive_int

__all__ = ["StreamedMean", "chunk_moments", "merge_moments", "moments_of", "streaming_mean", "streaming_mean_on"]


@dataclass(frozen=True, eq=False)
class StreamedMean(ReadOnlyOnCopy):
    """Mean and standard error of per-episode terms accumulated chunk by chunk.

    Attributes
    ----------
    mean, std_error : numpy.ndarray
        Shape of one episode's term.
    n : int
        Number of episodes.
    """

    mean: np.ndarray
    std_error: np.ndarray
    n: int

    @property
    def n_episodes(self) -> int:
        """Number of episodes (same as :attr:`n`)."""
        return self.n


def streaming_mean(
    estimator: Callable[..., Any], chunks: Iterable[Any], *args: Any, executor: Any = None, **kwargs: Any
) -> StreamedMean:
    r"""Apply ``estimator(chunk, *args, **kwargs)`` to each batch of ``chunks`` and merge the results.

    Memory is bounded by one chunk. Merging uses the pairwise update of Chan, Golub & LeVeque
    (1983) for the mean and the sum of squared deviations, so the result equals (to rounding)
    the mean and standard error of the per-episode terms of the concatenated batches.

    With an ``executor`` (any ``concurrent.futures.Executor``) the estimator is applied to the
    chunks on its workers and the per-chunk moments are merged in chunk order: bit-identical to
    ``executor=None``. The chunks travel to the workers; to sample them there too, use
    :func:`pgexact.distributed.streaming_estimate`. A failing chunk raises
    :class:`pgexact.distributed.ChunkError` naming its index.

    Parameters
    ----------
    estimator : callable
        ``estimator(chunk, *args, **kwargs)`` returning an :class:`~pgexact.estimators.Estimate`.
    chunks : iterable of Trajectories
        E.g. :func:`pgexact.rollout_chunks`.
    executor : concurrent.futures.Executor, optional

    Returns
    -------
    StreamedMean

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
    return streaming_mean_on(executor, estimator, chunks, args, kwargs)


def streaming_mean_on(
    executor: Any,
    estimator: Callable[..., Any],
    chunks: Any,
    args: tuple,
    kwargs: dict,
    max_in_flight: int | None = None,
) -> StreamedMean:
    """:func:`streaming_mean` with the estimator applied on ``executor`` (None: this process).

    Each chunk is reduced to ``(n, mean, m2)`` where the estimator runs, and the reductions are
    merged in chunk order, so the result is bit-identical whatever the executor.
    """
    check_executor(executor)
    if not callable(estimator):
        raise TypeError(f"estimator must be callable, got {type(estimator).__name__}")
    args, kwargs = check_call_arguments("args", args, "kwargs", kwargs)
    if max_in_flight is not None:
        max_in_flight = check_positive_int("max_in_flight", max_in_flight)
    if isinstance(chunks, (str, bytes)) or not isinstance(chunks, Iterable):
        raise TypeError(f"chunks must be an iterable of Trajectories, got {type(chunks).__name__}")
    sizes: dict[int, int] = {}

    def checked() -> Iterable[Any]:
        from ..sampling.trajectories import Trajectories

        for i, chunk in enumerate(chunks):
            if not isinstance(chunk, Trajectories):
                raise TypeError(f"chunks[{i}] must be Trajectories, got {type(chunk).__name__}")
            sizes[i] = chunk.n_episodes
            yield chunk

    def error(i: int, exc: BaseException) -> Exception:
        return ChunkError(i, sizes.get(i, 0), None, None, exc)

    if executor is None:  # in this process the estimator's own exception is the clearest
        return merge_moments(moments_of(estimator, chunk, args, kwargs) for chunk in checked())
    calls = ((estimator, chunk, args, kwargs) for chunk in checked())
    return merge_moments(ordered_map(executor, moments_of, calls, error, max_in_flight))


def check_call_arguments(args_name: str, args: Any, kwargs_name: str, kwargs: Any) -> tuple[tuple, dict]:
    """``(tuple(args), dict(kwargs))`` for a callback's extra arguments; ``kwargs=None`` is ``{}``."""
    if not isinstance(args, (tuple, list)):
        raise TypeError(f"{args_name} must be a tuple of positional arguments, got {type(args).__name__}")
    if kwargs is None:
        kwargs = {}
    if not isinstance(kwargs, dict) or not all(isinstance(k, str) for k in kwargs):
        raise TypeError(f"{kwargs_name} must be a dict of keyword arguments, got {type(kwargs).__name__}")
    return tuple(args), dict(kwargs)


def moments_of(estimator: Callable[..., Any], chunk: Any, args: tuple, kwargs: dict) -> tuple:
    """One chunk's ``(n, mean, m2)`` of the estimator's per-episode terms (on a worker)."""
    result = estimator(chunk, *args, **kwargs)
    samples = getattr(result, "samples", None)
    if samples is None:
        raise TypeError(
            f"estimator must return an object with a samples array (an Estimate), got {type(result).__name__}"
        )
    return chunk_moments(samples)


def chunk_moments(samples: Any) -> tuple[int, np.ndarray, np.ndarray]:
    """``(n, mean, sum of squared deviations)`` of per-episode terms, shape (n, ...) -> (...)."""
    try:
        x = np.asarray(samples, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"the estimator's samples must be an array of real numbers: {exc}") from None
    if x.ndim == 0 or x.shape[0] == 0:
        raise ValueError("the estimator's samples must have at least one episode (shape (n, ...), n >= 1)")
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
    se = np.sqrt(m2 / (n - 1) / n) if n > 1 else np.full(np.shape(mean), np.inf)  # type: ignore[operator]
    return StreamedMean(mean=mean, std_error=se, n=n)
