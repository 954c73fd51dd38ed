"""Argument checks at the public boundary of sampling, estimators, distributed and updates: each
malformed argument is a ``TypeError`` / ``ValueError`` naming it, never an ``AttributeError``,
``IndexError`` or a leaked floating-point exception; result records store what they are given.

All deterministic.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pgexact import TabularSoftmax, rollout
from pgexact import estimators as E
from pgexact.distributed import ChunkError, map_chunks, streaming_estimate, streaming_mean_on
from pgexact.mdps import random_mdp
from pgexact.sampling import chunk_seed

MDP = random_mdp(3, 2, gamma=0.9, horizon=3, seed=0)
POL = TabularSoftmax(3, 2)
THETA = np.zeros(6)
PI = POL.probs(THETA)


# ------------------------------------------------------------------ chunks and callbacks
def test_chunk_seed_checks_its_arguments():
    with pytest.raises(TypeError, match="seed must be a numpy.random.SeedSequence"):
        chunk_seed(0, 1)
    with pytest.raises(TypeError, match="index must be a non-negative int"):
        chunk_seed(np.random.SeedSequence(0), None)
    with pytest.raises(ValueError, match="index must be a non-negative int, got -1"):
        chunk_seed(np.random.SeedSequence(0), -1)


@pytest.mark.parametrize("bad", [None, "x", 3])
def test_callback_arguments_must_be_a_tuple_and_a_dict(bad):
    with pytest.raises(TypeError, match="fn_args must be a tuple"):
        map_chunks(None, MDP, PI, 4, seed=0, fn_args=bad)
    with pytest.raises(TypeError, match="estimator_args must be a tuple"):
        streaming_estimate(E.reinforce, MDP, PI, 4, seed=0, estimator_args=bad)
    with pytest.raises(TypeError, match="args must be a tuple"):
        streaming_mean_on(None, E.reinforce, [], bad, {})
    if bad is not None:  # kwargs=None means no keyword arguments
        with pytest.raises(TypeError, match="fn_kwargs must be a dict"):
            map_chunks(None, MDP, PI, 4, seed=0, fn_kwargs=bad)


def test_streamed_chunks_must_be_trajectories():
    with pytest.raises(TypeError, match="chunks must be an iterable of Trajectories"):
        E.streaming_mean(E.reinforce, None, POL, THETA)
    with pytest.raises(TypeError, match=r"chunks\[1\] must be Trajectories, got list"):
        E.streaming_mean(E.reinforce, [rollout(MDP, PI, 3, seed=0), [1]], POL, THETA)
    with pytest.raises(TypeError, match="estimator must return an object with a samples array"):
        E.streaming_mean(lambda tr: 1.0, [rollout(MDP, PI, 3, seed=0)])


def test_a_callback_failing_on_its_arguments_keeps_its_error_class():
    """A chunk whose estimator rejects its arguments: a ChunkError that is also a TypeError."""
    with pytest.raises(ChunkError, match=r"chunk 0 of 1 \(4 episodes\) failed with TypeError") as info:
        streaming_estimate(E.reinforce, MDP, PI, 4, seed=0)  # estimator_args missing
    assert isinstance(info.value, TypeError)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is type(info.value) and again.index == 0 and again.size == 4
    plain = ChunkError(1, 2, None, 3, RuntimeError("worker lost"))
    assert type(plain) is ChunkError and not isinstance(plain, (TypeError, ValueError))


def test_chunk_error_stores_what_it_is_given():
    err = ChunkError(None, "x", 0, None, None)
    assert err.index is None and err.size == "x" and err.seed == 0
