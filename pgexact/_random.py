"""Explicit randomness: every sampling function takes a ``seed``; numpy's global state is never used."""

from __future__ import annotations

from typing import Union

import numpy as np

Seed = Union[int, np.random.SeedSequence, np.random.Generator]

__all__ = ["Seed", "as_generator", "as_seed_sequence"]


def as_seed_sequence(seed: Seed) -> np.random.SeedSequence:
    """Turn a seed into a :class:`numpy.random.SeedSequence`.

    A ``Generator`` contributes a fresh ``SeedSequence`` drawn from its bit generator's own
    seed sequence (so consuming it is reproducible given the generator's state).
    """
    if isinstance(seed, np.random.SeedSequence):
        return seed
    if isinstance(seed, np.random.Generator):
        return seed.bit_generator.seed_seq.spawn(1)[0]  # type: ignore[union-attr]
    if isinstance(seed, (int, np.integer)) and not isinstance(seed, bool):
        if seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed}")
        return np.random.SeedSequence(int(seed))
    raise TypeError(
        "seed must be an int, numpy.random.SeedSequence or numpy.random.Generator, "
        f"got {type(seed).__name__} (there is no default: randomness is always explicit)"
    )


def as_generator(seed: Seed) -> np.random.Generator:
    """Turn a seed into a :class:`numpy.random.Generator` (a Generator is returned as is)."""
    if isinstance(seed, np.random.Generator):
        return seed
    return np.random.Generator(np.random.PCG64(as_seed_sequence(seed)))
