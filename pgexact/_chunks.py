"""Chunked Monte Carlo: chunk sizes, the child seed of each chunk, and the error naming a failed chunk.

Episodes are drawn in chunks; chunk ``i`` uses child ``i`` of the run's ``SeedSequence``, so a
result is bit-identical whatever the chunk size's split across workers. Shared by
:func:`pgexact.rollout`, the LQR rollout and :mod:`pgexact.distributed`.
"""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["ChunkError", "chunk_seed", "chunk_sizes"]


def chunk_seed(seed: np.random.SeedSequence, index: int) -> np.random.SeedSequence:
    """Child ``index`` of ``seed`` (what ``seed.spawn`` yields), without mutating ``seed``."""
    return np.random.SeedSequence(
        seed.entropy, spawn_key=tuple(seed.spawn_key) + (int(index),), pool_size=seed.pool_size
    )


def chunk_sizes(n_episodes: int, chunk_size: int) -> list[int]:
    """Sizes of the chunks: ``chunk_size`` each, the last one smaller."""
    full, rest = divmod(n_episodes, chunk_size)
    return [chunk_size] * full + ([rest] if rest else [])


class ChunkError(RuntimeError):
    """A chunk of a distributed Monte Carlo run failed.

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
    """

    def __init__(
        self,
        index: int,
        size: int,
        seed: np.random.SeedSequence | None,
        n_chunks: int | None,
        cause: BaseException,
    ):
        self.index, self.size, self.seed = int(index), int(size), seed
        self.n_chunks = None if n_chunks is None else int(n_chunks)
        of = "" if n_chunks is None else f" of {n_chunks}"
        where = (
            f"its seed is SeedSequence(entropy={seed.entropy}, spawn_key={tuple(seed.spawn_key)}) "
            "(replay it alone with pgexact.distributed.replay_chunk)"
            if seed is not None
            else "the chunk was passed as data (its seed is the one it was sampled with)"
        )
        super().__init__(
            f"chunk {index}{of} ({size} episodes) failed with {type(cause).__name__}: {cause}; "
            f"{where}; no partial result is returned"
        )

    def __reduce__(self) -> Any:  # picklable, for executors that re-raise across processes
        return (_rebuild_chunk_error, (self.index, self.size, self.seed, self.n_chunks, str(self)))


def _rebuild_chunk_error(index: int, size: int, seed: Any, n_chunks: int, message: str) -> ChunkError:
    err = ChunkError.__new__(ChunkError)
    err.index, err.size, err.seed, err.n_chunks = index, size, seed, n_chunks
    RuntimeError.__init__(err, message)
    return err
