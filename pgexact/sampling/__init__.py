"""Sampling: the batched rollout kernel, alias tables, ragged trajectories and streaming. Never computes a closed form."""

from .._chunks import chunk_seed
from .alias import AliasTable
from .trajectories import StepView
from .rollout import (
    DEFAULT_CHUNK_SIZE,
    Trajectories,
    rollout,
    rollout_chunks,
)

__all__ = [
    "AliasTable",
    "DEFAULT_CHUNK_SIZE",
    "StepView",
    "Trajectories",
    "chunk_seed",
    "rollout",
    "rollout_chunks",
]
