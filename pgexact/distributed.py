r"""Distributed Monte Carlo: rollout chunks and estimators on any ``concurrent.futures.Executor``.

The rollout kernel (:mod:`pgexact.sampling.rollout`) splits ``n_episodes`` into chunks of
``chunk_size`` episodes; chunk ``i`` draws from child ``i`` of the seed's
:class:`~numpy.random.SeedSequence` (``SeedSequence.spawn``; :func:`pgexact.sampling.chunk_seed`).
A chunk is therefore a pure function of ``(mdp, pi, seed, i)``: it can be computed anywhere.
This module ships chunks to an executor — the current process (``executor=None``), a
``concurrent.futures.ProcessPoolExecutor``, or a Dask cluster via
``distributed.Client(...).get_executor()`` — and consumes the results **in chunk order**, so

* :func:`map_chunks` yields exactly what ``map(fn, rollout_chunks(...))`` yields, and
* :func:`streaming_estimate` returns bit for bit the :class:`~pgexact.estimators.StreamedMean`
  of :func:`pgexact.estimators.streaming_mean` over ``rollout_chunks(...)``,

for any number of workers. Only the per-chunk results travel back (for
:func:`streaming_estimate`: a count, a mean and a sum of squared deviations per chunk, merged
with the pairwise update of Chan, Golub & LeVeque 1983 in chunk order).

Failures are never dropped: if a chunk raises (or its worker dies), the pending chunks are
cancelled and :class:`ChunkError` is raised, naming the chunk index, its size and its seed
(``SeedSequence(entropy, spawn_key=...)``, enough to replay it alone with
:func:`replay_chunk`), chained to the original exception.

Functions sent to an executor must be picklable: module-level functions for a
``ProcessPoolExecutor`` (Dask also accepts lambdas and closures, through cloudpickle).
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any, Callable, Iterator

import numpy as np

from ._chunks import ChunkError, check_executor, chunk_seed, chunk_sizes, ordered_map
from ._random import Seed, as_seed_sequence
from ._validation import check_positive_int
from .estimators._streaming import check_call_arguments, merge_moments, moments_of
from .estimators.stats import StreamedMean, streaming_mean_on
from .sampling.rollout import (
    DEFAULT_CHUNK_SIZE,
    Trajectories,
    TransitionSampler,
    _run_chunk,
    _setup,
)

__all__ = ["ChunkError", "map_chunks", "streaming_estimate", "streaming_mean_on", "replay_chunk"]


def _chunk_task(
    fn: Callable[..., Any] | None,
    args: tuple,
    kwargs: dict,
    sampler: TransitionSampler,
    seed: np.random.SeedSequence,
    size: int,
    T: int | None,
    objective: str,
    gamma: float,
) -> Any:
    """One chunk, on a worker: sample it, then apply ``fn`` (None: return the trajectories)."""
    trajs = _run_chunk(sampler, seed, size, T, objective, gamma)
    return trajs if fn is None else fn(trajs, *args, **kwargs)


def _moments_task(
    estimator: Callable[..., Any],
    args: tuple,
    kwargs: dict,
    sampler: TransitionSampler,
    seed: np.random.SeedSequence,
    size: int,
    T: int | None,
    objective: str,
    gamma: float,
) -> tuple[int, np.ndarray, np.ndarray]:
    """One chunk's ``(n, mean, sum of squared deviations)`` of the estimator's per-episode terms.

    The same arithmetic as :func:`pgexact.estimators.streaming_mean` applies to a chunk.
    """
    return moments_of(estimator, _run_chunk(sampler, seed, size, T, objective, gamma), args, kwargs)


def _run_ordered(
    task: Callable[..., Any],
    fn: Callable[..., Any] | None,
    args: tuple,
    kwargs: dict,
    mdp: Any,
    pi: Any,
    n_episodes: Any,
    horizon: Any,
    geometric: bool,
    seed: Seed,
    chunk_size: Any,
    executor: Any,
    max_in_flight: Any,
) -> Iterator[Any]:
    """Validate eagerly; return an iterator of ``task(...)`` results in chunk order."""
    check_executor(executor)
    mdp, sampler, n, T, objective, chunk_size = _setup(mdp, pi, n_episodes, horizon, geometric, chunk_size)
    if max_in_flight is not None:
        max_in_flight = check_positive_int("max_in_flight", max_in_flight)
    ss = as_seed_sequence(seed)
    sizes = chunk_sizes(n, chunk_size)
    seeds = [chunk_seed(ss, i) for i in range(len(sizes))]
    gamma = mdp.gamma

    calls = ((fn, args, kwargs, sampler, sd, size, T, objective, gamma) for sd, size in zip(seeds, sizes))

    def error(i: int, exc: BaseException) -> ChunkError:
        return ChunkError(i, sizes[i], seeds[i], len(sizes), exc)

    return ordered_map(executor, task, calls, error, max_in_flight)


def map_chunks(
    fn: Callable[..., Any] | None,
    mdp: Any,
    pi: Any,
    n_episodes: int,
    *,
    horizon: int | None = None,
    geometric: bool = False,
    seed: Seed,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    executor: Executor | None = None,
    max_in_flight: int | None = None,
    fn_args: tuple = (),
    fn_kwargs: dict | None = None,
) -> Iterator[Any]:
    r"""Yield ``fn(chunk_i, *fn_args, **fn_kwargs)`` for the rollout chunks i = 0, 1, ..., in order.

    ``chunk_i`` is bit for bit the i-th batch of
    ``pgexact.rollout_chunks(mdp, pi, n_episodes, horizon=..., geometric=..., seed=seed,
    chunk_size=chunk_size)``; it is sampled *and* reduced by ``fn`` on the executor, and only
    ``fn``'s result comes back. ``fn=None`` returns the :class:`~pgexact.Trajectories` themselves
    (a distributed ``rollout_chunks``).

    Parameters
    ----------
    fn : callable or None
        ``fn(trajs, *fn_args, **fn_kwargs)``; picklable for process-based executors.
    mdp, pi, n_episodes, horizon, geometric, seed, chunk_size :
        As in :func:`pgexact.rollout`.
    executor : concurrent.futures.Executor, optional
        ``None``: this process, one chunk at a time. Otherwise chunks are submitted with
        ``executor.submit`` (at most ``max_in_flight`` at once; default twice the worker count,
        at least 4) and their results yielded in chunk order.
    max_in_flight : int, optional

    Raises
    ------
    ChunkError
        When a chunk fails; pending chunks are cancelled.

    Examples
    --------
    >>> import numpy as np
    >>> from concurrent.futures import ThreadPoolExecutor
    >>> from pgexact import rollout_chunks
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, horizon=5, seed=0)
    >>> pi = np.full((3, 2), 0.5)
    >>> with ThreadPoolExecutor(2) as ex:
    ...     parts = list(map_chunks(None, mdp, pi, 10, seed=1, chunk_size=4, executor=ex))
    >>> serial = list(rollout_chunks(mdp, pi, 10, seed=1, chunk_size=4))
    >>> all(np.array_equal(a.states, b.states) for a, b in zip(parts, serial))
    True
    """
    if fn is not None and not callable(fn):
        raise TypeError(f"fn must be callable or None, got {type(fn).__name__}")
    fn_args, fn_kwargs = check_call_arguments("fn_args", fn_args, "fn_kwargs", fn_kwargs)
    return _run_ordered(
        _chunk_task, fn, fn_args, fn_kwargs, mdp, pi, n_episodes, horizon,
        geometric, seed, chunk_size, executor, max_in_flight,
    )


def streaming_estimate(
    estimator: Callable[..., Any],
    mdp: Any,
    pi: Any,
    n_episodes: int,
    *,
    estimator_args: tuple = (),
    estimator_kwargs: dict | None = None,
    horizon: int | None = None,
    geometric: bool = False,
    seed: Seed,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    executor: Executor | None = None,
    max_in_flight: int | None = None,
) -> StreamedMean:
    r"""Mean and standard error of an estimator's per-episode terms over ``n_episodes`` sampled episodes.

    .. math:: \hat\mu = \frac1N \sum_{n<N} X_n, \qquad \widehat{se} = \sqrt{\frac{\sum_n (X_n - \hat\mu)^2}{N (N-1)}}

    with :math:`X_n` the rows of ``estimator(chunk, *estimator_args, **estimator_kwargs).samples``
    (e.g. :func:`pgexact.estimators.reinforce` with ``estimator_args=(policy, theta)``). Each chunk
    is sampled and reduced to ``(n, mean, sum of squared deviations)`` on the executor; the
    reductions are merged in chunk order (Chan, Golub & LeVeque 1983), so the result is
    bit-identical to ``streaming_mean(estimator, rollout_chunks(...), *estimator_args,
    **estimator_kwargs)`` whatever the executor and its number of workers. Memory on the caller
    is O(max_in_flight x result size).

    Parameters
    ----------
    estimator : callable
        ``estimator(trajs, *estimator_args, **estimator_kwargs)`` returning an object with a
        ``samples`` array of shape (N, ...) (an :class:`~pgexact.estimators.Estimate`).
    mdp, pi, n_episodes, horizon, geometric, seed, chunk_size :
        As in :func:`pgexact.rollout` (``pi`` the policy matrix that generates the episodes).
    executor, max_in_flight :
        As in :func:`map_chunks`.

    Returns
    -------
    pgexact.estimators.StreamedMean

    Raises
    ------
    ChunkError
        When a chunk fails (its seed is in the message); nothing partial is returned.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, rollout_chunks
    >>> from pgexact.estimators import reward_to_go, streaming_mean
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=0)
    >>> pol, theta = TabularSoftmax(3, 2), np.zeros(6)
    >>> pi = pol.probs(theta)
    >>> a = streaming_estimate(reward_to_go, mdp, pi, 1000, estimator_args=(pol, theta), seed=0, chunk_size=300)
    >>> b = streaming_mean(reward_to_go, rollout_chunks(mdp, pi, 1000, seed=0, chunk_size=300), pol, theta)
    >>> bool(np.array_equal(a.mean, b.mean) and np.array_equal(a.std_error, b.std_error))
    True
    """
    if not callable(estimator):
        raise TypeError(f"estimator must be callable, got {type(estimator).__name__}")
    estimator_args, estimator_kwargs = check_call_arguments(
        "estimator_args", estimator_args, "estimator_kwargs", estimator_kwargs
    )
    result = merge_moments(
        _run_ordered(
            _moments_task, estimator, estimator_args, estimator_kwargs, mdp, pi,
            n_episodes, horizon, geometric, seed, chunk_size, executor, max_in_flight,
        )
    )
    if result.n != int(n_episodes):  # every chunk is accounted for
        raise RuntimeError(f"internal error: {result.n} of {n_episodes} episodes were merged")
    return result


def replay_chunk(
    mdp: Any,
    pi: Any,
    seed: np.random.SeedSequence,
    size: int,
    *,
    horizon: int | None = None,
    geometric: bool = False,
) -> Trajectories:
    """Re-sample one chunk from its own seed (as named by :class:`ChunkError`), in this process.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import rollout_chunks
    >>> from pgexact.sampling import chunk_seed
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, horizon=5, seed=0)
    >>> pi = np.full((3, 2), 0.5)
    >>> third = list(rollout_chunks(mdp, pi, 10, seed=7, chunk_size=4))[2]
    >>> again = replay_chunk(mdp, pi, chunk_seed(np.random.SeedSequence(7), 2), 2)
    >>> bool(np.array_equal(third.states, again.states))
    True
    """
    if not isinstance(seed, np.random.SeedSequence):
        raise TypeError(f"seed must be the chunk's numpy.random.SeedSequence, got {type(seed).__name__}")
    mdp, sampler, n, T, objective, _ = _setup(mdp, pi, size, horizon, geometric, size)
    return _run_chunk(sampler, seed, n, T, objective, mdp.gamma)
