"""Distributed Monte Carlo: same call in-process, on a process pool, on a Dask cluster.

The reference is the serial streaming form (``rollout_chunks`` + ``streaming_mean``):
every executor, with any number of workers, must reproduce it *bit for bit* (chunk i always
draws from child i of the seed's SeedSequence; results are merged in chunk order).
"""

from __future__ import annotations

import multiprocessing

import os
from concurrent.futures import Future, ProcessPoolExecutor, ThreadPoolExecutor

import numpy as np
import pytest
from scipy.stats import norm

import pgexact
from pgexact import TabularSoftmax, evaluate, rollout_chunks
from pgexact.distributed import (
    ChunkError,
    map_chunks,
    replay_chunk,
    streaming_estimate,
    streaming_mean_on,
)
from pgexact.estimators import Estimate, reward_to_go, streaming_mean
from pgexact.mdps import gridworld, random_mdp
from pgexact.sampling import chunk_seed

MDP = random_mdp(5, 3, gamma=0.9, horizon=7, seed=11)
POLICY = TabularSoftmax(5, 3)
THETA = np.linspace(-1.0, 1.0, 15)
PI = POLICY.probs(THETA)

# forkserver: JAX or torch may already be imported (and threaded) in the test process, and a
# fork of a threaded process can deadlock
_FORKSERVER = multiprocessing.get_context("forkserver")


def discounted_return(trajs):
    """Per-episode discounted return (module level: picklable by reference)."""
    return Estimate(trajs.rewards @ trajs.discounts())


def fail_on_short_chunk(trajs):
    """Raises on the last, shorter chunk only."""
    if trajs.n_episodes < 4:
        raise FloatingPointError("boom in the short chunk")
    return discounted_return(trajs)


def die_on_short_chunk(trajs):
    """Kills the worker process on the last, shorter chunk (a crashing worker)."""
    if trajs.n_episodes < 4:
        os._exit(3)
    return discounted_return(trajs)


def assert_same(a, b):
    assert a.n == b.n
    assert np.array_equal(a.mean, b.mean) and np.array_equal(a.std_error, b.std_error)


@pytest.fixture(scope="module")
def process_pool():
    with ProcessPoolExecutor(max_workers=2, mp_context=_FORKSERVER) as pool:
        yield pool


@pytest.fixture(scope="module")
def dask_executor():
    distributed = pytest.importorskip("distributed")
    cluster = distributed.LocalCluster(
        n_workers=2, threads_per_worker=1, processes=True, dashboard_address=None
    )
    client = distributed.Client(cluster)
    try:
        yield client.get_executor()
    finally:
        client.close()
        cluster.close()


def serial_reference(estimator, n, chunk_size, seed, *args, **kw):
    return streaming_mean(estimator, rollout_chunks(MDP, PI, n, seed=seed, chunk_size=chunk_size, **kw), *args)


# ---------------------------------------------------------------- bit-identity
@pytest.mark.parametrize("n, chunk_size", [(1000, 64), (37, 5), (10, 100)])
def test_in_process_and_thread_pool_match_serial_streaming(n, chunk_size):
    ref = serial_reference(reward_to_go, n, chunk_size, 5, POLICY, THETA)
    kw = dict(estimator_args=(POLICY, THETA), seed=5, chunk_size=chunk_size)
    assert_same(streaming_estimate(reward_to_go, MDP, PI, n, **kw), ref)
    for workers, in_flight in [(1, None), (3, None), (4, 1)]:
        with ThreadPoolExecutor(workers) as ex:
            got = streaming_estimate(reward_to_go, MDP, PI, n, executor=ex, max_in_flight=in_flight, **kw)
        assert_same(got, ref)


def test_process_pool_bit_identical(process_pool):
    ref = serial_reference(reward_to_go, 3000, 128, 9, POLICY, THETA)
    got = streaming_estimate(
        reward_to_go, MDP, PI, 3000, estimator_args=(POLICY, THETA), seed=9, chunk_size=128,
        executor=process_pool,
    )
    assert_same(got, ref)
    with ProcessPoolExecutor(max_workers=1, mp_context=_FORKSERVER) as one:
        assert_same(
            streaming_estimate(
                reward_to_go, MDP, PI, 3000, estimator_args=(POLICY, THETA), seed=9, chunk_size=128,
                executor=one,
            ),
            ref,
        )


@pytest.mark.parametrize(
    "mdp, kw",
    [
        (MDP, {}),
        (MDP.with_horizon(None, gamma=0.8), {"horizon": 6}),
        (MDP.with_horizon(None, gamma=0.8), {"geometric": True}),
    ],
)
def test_map_chunks_is_rollout_chunks(mdp, kw, process_pool):
    serial = list(rollout_chunks(mdp, PI, 50, seed=3, chunk_size=16, **kw))
    dist = list(map_chunks(None, mdp, PI, 50, seed=3, chunk_size=16, executor=process_pool, **kw))
    assert len(dist) == len(serial) == 4
    for a, b in zip(dist, serial):
        for name in ("states", "actions", "rewards", "lengths", "stops"):
            assert np.array_equal(getattr(a, name), getattr(b, name)), name
    # fn applied on the workers, results in chunk order
    totals = list(map_chunks(_reward_total, mdp, PI, 50, seed=3, chunk_size=16, executor=process_pool,
                             fn_kwargs={"scale": 2.0}, **kw))
    assert totals == [2.0 * b.rewards.sum() for b in serial]
    lengths = list(map_chunks(_n_episodes, mdp, PI, 50, seed=3, chunk_size=16, executor=process_pool, **kw))
    assert lengths == [16, 16, 16, 2]


def _reward_total(trajs, scale):
    return scale * trajs.rewards.sum()


def _n_episodes(trajs):
    return trajs.n_episodes


def test_dask_local_cluster_bit_identical_and_unbiased(dask_executor):
    """Real Dask LocalCluster (2 worker processes): bit-identical to the serial run, and the
    mean return agrees with the exact J (z-test, false-alarm probability 1e-6)."""
    n = 20_000
    ref = serial_reference(reward_to_go, n, 2048, 21, POLICY, THETA)
    got = streaming_estimate(
        reward_to_go, MDP, PI, n, estimator_args=(POLICY, THETA), seed=21, chunk_size=2048,
        executor=dask_executor,
    )
    assert_same(got, ref)
    ret = streaming_estimate(discounted_return, MDP, PI, n, seed=22, chunk_size=2048, executor=dask_executor)
    J = evaluate(MDP, PI).J
    assert abs(ret.mean - J) <= norm.isf(1e-6 / 2) * ret.std_error


def test_dask_failure_names_the_chunk(dask_executor):
    with pytest.raises(ChunkError, match=r"chunk 2 of 3 \(2 episodes\) failed with FloatingPointError") as info:
        streaming_estimate(fail_on_short_chunk_by_value(), MDP, PI, 10, seed=4, chunk_size=4,
                           executor=dask_executor)
    assert info.value.index == 2
    assert tuple(info.value.seed.spawn_key) == (2,) and info.value.seed.entropy == 4


def fail_on_short_chunk_by_value():
    # a closure: Dask (cloudpickle) ships it by value, the test module need not be importable
    def est(trajs):
        if trajs.n_episodes < 4:
            raise FloatingPointError("boom in the short chunk")
        return Estimate(trajs.rewards.sum(axis=1))

    return est


# ---------------------------------------------------------------- failures are never dropped
@pytest.mark.parametrize("kind", ["serial", "threads", "processes"])
def test_failing_chunk_surfaces_with_its_seed(kind, process_pool):
    ex = {"serial": None, "threads": ThreadPoolExecutor(2), "processes": process_pool}[kind]
    try:
        with pytest.raises(ChunkError) as info:
            streaming_estimate(fail_on_short_chunk, MDP, PI, 10, seed=4, chunk_size=4, executor=ex)
    finally:
        if kind == "threads":
            ex.shutdown()
    err = info.value
    assert (err.index, err.size, err.n_chunks) == (2, 2, 3)
    assert isinstance(err.__cause__, FloatingPointError)
    assert "SeedSequence(entropy=4, spawn_key=(2,))" in str(err)
    # the seed named replays exactly the failing chunk
    third = list(rollout_chunks(MDP, PI, 10, seed=4, chunk_size=4))[2]
    again = replay_chunk(MDP, PI, err.seed, err.size)
    assert np.array_equal(third.states, again.states) and np.array_equal(third.actions, again.actions)
    assert err.seed.spawn_key == chunk_seed(np.random.SeedSequence(4), 2).spawn_key


def test_dying_worker_surfaces_as_chunk_error():
    # A dead worker breaks the whole pool: every chunk still pending fails with it, so the chunk
    # reported (the first failure in order) is the short one or any chunk not finished before it.
    with ProcessPoolExecutor(max_workers=2, mp_context=_FORKSERVER) as pool:
        with pytest.raises(ChunkError, match=r"chunk [0-2] of 3 .*BrokenProcessPool") as info:
            streaming_estimate(die_on_short_chunk, MDP, PI, 10, seed=4, chunk_size=4, executor=pool)
    assert info.value.index in (0, 1, 2)


# ---------------------------------------------------------------- bad input
def test_bad_arguments():
    with pytest.raises(TypeError, match="executor must be None or a concurrent.futures.Executor"):
        streaming_estimate(discounted_return, MDP, PI, 10, seed=0, executor="dask")
    with pytest.raises(TypeError, match="estimator must be callable"):
        streaming_estimate("reinforce", MDP, PI, 10, seed=0)
    with ThreadPoolExecutor(1) as ex, pytest.raises(ValueError, match="max_in_flight must be a positive integer"):
        streaming_estimate(discounted_return, MDP, PI, 10, seed=0, executor=ex, max_in_flight=0)
    with pytest.raises(TypeError, match="seed must be"):
        streaming_estimate(discounted_return, MDP, PI, 10, seed=None)
    with pytest.raises(ValueError, match="n_episodes"):
        list(map_chunks(None, MDP, PI, 0, seed=0))
    with pytest.raises(TypeError, match="fn must be callable"):
        map_chunks(3, MDP, PI, 5, seed=0)
    with pytest.raises(TypeError, match="SeedSequence"):
        replay_chunk(MDP, PI, 3, 5)


def test_sparse_mdp_distributed(process_pool):
    """Sparse P goes through the same path (alias tables over stored entries)."""
    g = gridworld(6, 6, gamma=0.9, horizon=12, sparse=True)
    pi = np.full((36, 4), 0.25)
    serial = list(rollout_chunks(g, pi, 300, seed=8, chunk_size=64))
    dist = list(map_chunks(None, g, pi, 300, seed=8, chunk_size=64, executor=process_pool))
    assert all(np.array_equal(a.states, b.states) for a, b in zip(dist, serial))


def test_streaming_mean_on_executor_is_streaming_mean(process_pool):
    """The estimator applied on the workers to given chunks: bit-identical to streaming_mean."""
    chunks = list(rollout_chunks(MDP, PI, 700, seed=13, chunk_size=64))
    ref = streaming_mean(reward_to_go, iter(chunks), POLICY, THETA)
    assert_same(streaming_mean_on(process_pool, reward_to_go, iter(chunks), (POLICY, THETA), {}), ref)
    with ThreadPoolExecutor(3) as ex:
        assert_same(streaming_mean_on(ex, reward_to_go, iter(chunks), (POLICY, THETA), {}, max_in_flight=2), ref)
    with pytest.raises(ChunkError, match=r"chunk 2 \(2 episodes\) failed with FloatingPointError.*passed as data") as info:
        streaming_mean_on(process_pool, fail_on_short_chunk, rollout_chunks(MDP, PI, 10, seed=4, chunk_size=4), (), {})
    assert info.value.index == 2 and info.value.seed is None
    with pytest.raises(ValueError, match="chunks is empty"):
        streaming_mean_on(process_pool, reward_to_go, [], (POLICY, THETA), {})


# ---------------------------------------------------------------- executor= on the issue-4 API
class FlakyExecutor(ThreadPoolExecutor):
    """An executor whose ``fail_at``-th submission fails (a lost worker, say)."""

    def __init__(self, fail_at: int):
        super().__init__(2)
        self.fail_at, self.count = fail_at, 0

    def submit(self, fn, *args, **kwargs):
        self.count += 1
        if self.count == self.fail_at + 1:
            fut = Future()
            fut.set_exception(ConnectionError("worker lost"))
            return fut
        return super().submit(fn, *args, **kwargs)


def test_streaming_mean_accepts_executor(process_pool):
    chunks = list(rollout_chunks(MDP, PI, 500, seed=17, chunk_size=64))
    ref = streaming_mean(reward_to_go, iter(chunks), POLICY, THETA)
    assert_same(streaming_mean(reward_to_go, iter(chunks), POLICY, THETA, executor=process_pool), ref)
    # chunks sampled on the workers as well (rollout_chunks' own executor path)
    assert_same(
        streaming_mean(
            reward_to_go, rollout_chunks(MDP, PI, 500, seed=17, chunk_size=64, executor=process_pool),
            POLICY, THETA, executor=process_pool,
        ),
        ref,
    )


@pytest.mark.parametrize("api", ["rollout_chunks", "rollout", "streaming_estimate"])
def test_executor_failing_mid_run_names_chunk_and_seed(api):
    with FlakyExecutor(fail_at=2) as ex:
        with pytest.raises(ChunkError, match=r"chunk 2 of 5 .*ConnectionError: worker lost.*"
                                             r"SeedSequence\(entropy=6, spawn_key=\(2,\)\)") as info:
            if api == "rollout_chunks":
                list(rollout_chunks(MDP, PI, 18, seed=6, chunk_size=4, executor=ex))
            elif api == "rollout":
                pgexact.rollout(MDP, PI, 18, seed=6, chunk_size=4, executor=ex)
            else:
                streaming_estimate(discounted_return, MDP, PI, 18, seed=6, chunk_size=4, executor=ex)
    assert isinstance(info.value.__cause__, ConnectionError)
    assert info.value.index == 2 and info.value.size == 4
