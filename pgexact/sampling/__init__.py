"""Sampling: the batched rollout kernel, alias tables, ragged trajectories and streaming. Never computes a closed form."""

from .._chunks import chunk_seed, chunk_sizes
from .alias import AliasTable, alias_probabilities, build_alias
from .trajectories import StepView
from .rollout import (
    DEFAULT_CHUNK_SIZE,
    Trajectories,
    TransitionSampler,
    rollout,
    rollout_chunks,
)

__all__ = [
    "AliasTable",
    "DEFAULT_CHUNK_SIZE",
    "StepView",
    "Trajectories",
    "TransitionSampler",
    "alias_probabilities",
    "build_alias",
    "chunk_seed",
    "chunk_sizes",
    "rollout",
    "rollout_chunks",
]
