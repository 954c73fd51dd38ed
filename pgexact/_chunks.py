"""Chunked Monte Carlo: chunk sizes, the child seed of each chunk, ordered execution, failed chunks.

Episodes are drawn in chunks; chunk ``i`` uses child ``i`` of the run's ``SeedSequence``, so a
result is bit-identical whatever the chunk size's split across workers. :func:`ordered_map` runs
chunk tasks in this process or on any ``concurrent.futures.Executor`` and yields their results in
chunk order; a failure raises :class:`ChunkError` naming the chunk and its seed. This is the one
mechanism behind :func:`pgexact.rollout`, :func:`pgexact.rollout_chunks`, the LQR rollout,
:func:`pgexact.estimators.streaming_mean` and :mod:`pgexact.distributed`.
"""

from __future__ import annotations

import collections
from concurrent.futures import Executor, Future
from typing import Any, Callable, Iterable, Iterator

import numpy as np

from .errors import NumericalError

__all__ = ["ChunkError", "check_executor", "chunk_seed", "chunk_sizes", "ordered_map"]


def check_executor(executor: Any, name: str = "executor") -> None:
    """``TypeError`` unless ``executor`` is None or has a callable ``submit`` (an Executor)."""
    if executor is not None and not (
        isinstance(executor, Executor) or callable(getattr(executor, "submit", None))
    ):
        raise TypeError(
            f"{name} must be None or a concurrent.futures.Executor (e.g. ProcessPoolExecutor, or "
            f"distributed.Client(...).get_executor()), got {type(executor).__name__}"
        )


def n_workers(executor: Any) -> int:
    """Best-effort worker count (ProcessPoolExecutor / ThreadPoolExecutor / Dask), default 2."""
    n = getattr(executor, "_max_workers", None)
    if isinstance(n, int) and n > 0:
        return n
    client = getattr(executor, "_client", None)
    try:
        return max(1, sum(client.nthreads().values()))  # type: ignore[union-attr]
    except Exception:
        return 2


def ordered_map(
    executor: Any,
    task: Callable[..., Any],
    calls: Iterable[tuple],
    error: Callable[[int, BaseException], Exception],
    max_in_flight: int | None = None,
) -> Iterator[Any]:
    """``task(*call)`` for each tuple of ``calls``, yielded in order.

    ``executor=None``: in this process, one call at a time. Otherwise the calls are submitted to
    the executor, at most ``max_in_flight`` ahead (default twice its worker count, at least 4;
    ``calls`` is consumed lazily, so a streamed input stays bounded in memory). The first
    failure, in order, cancels the pending calls and raises ``error(index, exception)`` from it.
    """
    if executor is None:
        for i, call in enumerate(calls):
            try:
                result = task(*call)
            except Exception as exc:
                raise error(i, exc) from exc
            yield result
        return
    limit = max_in_flight or max(4, 2 * n_workers(executor))
    pending: collections.deque[tuple[int, Future]] = collections.deque()
    it = enumerate(calls)
    exhausted = False
    try:
        while True:
            while not exhausted and len(pending) < limit:
                try:
                    i, call = next(it)
                except StopIteration:
                    exhausted = True
                    break
                pending.append((i, executor.submit(task, *call)))
            if not pending:
                return
            i, fut = pending.popleft()
            try:
                result = fut.result()
            except Exception as exc:
                raise error(i, exc) from exc
            yield result
    finally:
        for _, fut in pending:  # nothing keeps running after a failure or an abandoned stream
            fut.cancel()


def chunk_seed(seed: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """Child ``index`` of ``seed`` (what ``seed.spawn`` yields), without mutating ``seed``.

    Parameters
    ----------
    seed : numpy.random.SeedSequence
        The run's seed sequence.
    index : int
        Chunk index, ``>= 0``.

    Examples
    --------
    >>> import numpy as np
    >>> chunk_seed(np.random.SeedSequence(5), 3).spawn_key
    (3,)
    """
    if not isinstance(seed, np.random.SeedSequence):
        raise TypeError(f"seed must be a numpy.random.SeedSequence, got {type(seed).__name__}")
    if isinstance(index, (bool, np.bool_)) or not isinstance(index, (int, np.integer)):
        raise TypeError(f"index must be a non-negative int, got {type(index).__name__}")
    if index < 0:
        raise ValueError(f"index must be a non-negative int, got {index}")
    return np.random.SeedSequence(
        seed.entropy, spawn_key=tuple(seed.spawn_key) + (int(index),), pool_size=seed.pool_size
    )


def chunk_sizes(n_episodes: int, chunk_size: int) -> list[int]:
    """Sizes of the chunks: ``chunk_size`` each, the last one smaller (both already validated)."""
    full, rest = divmod(n_episodes, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


class ChunkError(RuntimeError):
    """A chunk of a distributed Monte Carlo run failed.

    When the cause is a ``TypeError``, a ``ValueError`` or a :class:`pgexact.errors.NumericalError`
    (bad arguments to the estimator or callback, or a numerical failure), the error raised is also
    an instance of that class, so ``except TypeError`` catches a callback's bad-argument failure
    whether it ran in a chunk or not.

    Attributes
    ----------
    index : int
        The chunk's index (0-based) in the run.
    size : int
        Its number of episodes.
    seed : numpy.random.SeedSequence or None
        The chunk's own seed (child ``index`` of the run's seed); ``None`` when the chunks were
        given as data (``streaming_mean(..., executor=...)``), whose seeds are not known here.
    n_chunks : int or None
        Number of chunks of the run (``None`` if the chunks came from an iterator).

    The attributes store what they are given (the constructor does not convert them).
    """

    def __new__(cls, index: Any = None, size: Any = None, seed: Any = None, n_chunks: Any = None,
                cause: Any = None, *args: Any) -> "ChunkError":
        if cls is ChunkError:
            for kind, sub in _CAUSE_CLASSES:
                if isinstance(cause, kind):
                    cls = sub
                    break
        return super().__new__(cls)

    def __init__(
        self,
        index: int,
        size: int,
        seed: np.random.SeedSequence | None,
        n_chunks: int | None,
        cause: BaseException,
    ):
        self.index, self.size, self.seed, self.n_chunks = index, size, seed, n_chunks
        of = "" if n_chunks is None else f" of {n_chunks}"
        if isinstance(seed, np.random.SeedSequence):
            where = (
                f"its seed is SeedSequence(entropy={seed.entropy}, spawn_key={tuple(seed.spawn_key)}) "
                "(replay it alone with pgexact.distributed.replay_chunk)"
            )
        elif seed is None:
            where = "the chunk was passed as data (its seed is the one it was sampled with)"
        else:
            where = f"its seed is {seed!r}"
        super().__init__(
            f"chunk {index}{of} ({size} episodes) failed with {type(cause).__name__}: {cause}; "
            f"{where}; no partial result is returned"
        )

    def __reduce__(self) -> Any:  # picklable, for executors that re-raise across processes
        return (
            _rebuild_chunk_error,
            (type(self), self.index, self.size, self.seed, self.n_chunks, str(self)),
        )


class _ChunkTypeError(ChunkError, TypeError):
    """A chunk failed with a ``TypeError``."""


class _ChunkValueError(ChunkError, ValueError):
    """A chunk failed with a ``ValueError``."""


class _ChunkNumericalError(ChunkError, NumericalError):
    """A chunk failed with a :class:`pgexact.errors.NumericalError`."""


_CAUSE_CLASSES = (
    (TypeError, _ChunkTypeError),
    (ValueError, _ChunkValueError),
    (NumericalError, _ChunkNumericalError),
)


def _rebuild_chunk_error(
    cls: type, index: Any, size: Any, seed: Any, n_chunks: Any, message: str
) -> ChunkError:
    err = Exception.__new__(cls)
    err.index, err.size, err.seed, err.n_chunks = index, size, seed, n_chunks
    RuntimeError.__init__(err, message)
    return err
