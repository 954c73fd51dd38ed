"""The compiled rollout kernel (numba) against the numpy kernel: the same episodes, bit for bit.

The compiled kernel draws the same uniforms in the same order and applies the same alias tables
with the same floating-point comparison, so every layout (time-major buffers, a flat ragged
batch, chunks written into a merged batch), dense and sparse models, finite horizons and
geometric stopping must give identical arrays. COMPILED_MIN_TRANSITIONS is set to 0 so that
small batches take the compiled path too.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse

import pgexact.sampling.alias as alias
import pgexact.sampling.kernel as kernel
from pgexact import FiniteMDP, rollout, rollout_chunks
from pgexact.mdps import random_mdp

pytest.importorskip("numba")

FIELDS = ("states", "actions", "rewards", "lengths", "stops")


def _rows(rng, K, kind, R=80):
    """Probability rows that stress the construction: random, uniform (ties everywhere), sparse
    with exact zeros, one-hot, blocks of equal entries (equal partial sums), and spiky."""
    if kind == "random":
        return rng.dirichlet(np.ones(K), size=R)
    if kind == "uniform":
        return np.full((R, K), 1.0 / K)
    if kind == "zeros":
        p = rng.dirichlet(np.ones(K), size=R)
        p[rng.random((R, K)) < 0.5] = 0.0
        p[:, 0] += 1e-3
        return p / p.sum(axis=1, keepdims=True)
    if kind == "one-hot":
        return np.eye(K)[rng.integers(0, K, R)]
    if kind == "blocks":
        p = np.repeat(rng.dirichlet(np.ones(max(K // 4, 1)), size=R), 4, axis=1)[:, :K]
        return p / p.sum(axis=1, keepdims=True)
    return rng.dirichlet(np.full(K, 0.05), size=R)


@pytest.mark.parametrize("K", [1, 2, 3, 5, 8, 64, 1024])
@pytest.mark.parametrize("kind", ["random", "uniform", "zeros", "one-hot", "blocks", "spiky"])
def test_compiled_alias_construction_gives_the_same_tables(K, kind):
    """Row by row with two-pointer merges or vectorized with sorts: the same thresholds and
    aliases, bit for bit, ties included."""
    probs = _rows(np.random.default_rng(K), K, kind)
    thr, al = alias.build_alias(probs)
    thr_c, al_c = alias.build_alias(probs, compiled=True)
    np.testing.assert_array_equal(thr, thr_c)
    np.testing.assert_array_equal(al, al_c)
    np.testing.assert_allclose(alias.alias_probabilities(thr_c, al_c), probs, atol=K * 2e-16)


def _both(monkeypatch, mdp, pi, n, **kw):
    monkeypatch.setattr(kernel, "COMPILED_MIN_TRANSITIONS", 0)
    out = []
    for compiled in (False, True):
        monkeypatch.setattr(kernel, "USE_COMPILED", compiled)
        out.append(rollout(mdp, pi, n, **kw))
    return out


def _assert_same(a, b):
    for name in FIELDS:
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name), err_msg=name)


def _model(S, A, *, sparse=False, horizon=None, absorbing=False, seed=0):
    base = random_mdp(S, A, gamma=0.95, horizon=horizon, seed=seed)
    P, r = base.P.copy(), base.r.copy()
    if absorbing:  # the last state absorbs: episodes end before their stop
        P[-1] = 0.0
        P[-1, :, -1] = 1.0
        r[-1] = 0.0
    if sparse:
        P = scipy.sparse.csr_array(P.reshape(S * A, S))
    return FiniteMDP(P, r, base.mu0, base.gamma, horizon)


@pytest.mark.parametrize("S, A", [(16, 4), (7, 3), (1, 2)])
@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize(
    "mode",
    [dict(horizon=30), dict(geometric=True), dict(geometric=True, chunk_size=300), dict(horizon=30, chunk_size=300)],
    ids=["time-major", "ragged", "merged chunks", "time-major chunks"],
)
def test_compiled_kernel_gives_the_numpy_kernels_episodes(monkeypatch, S, A, sparse, mode):
    mdp = _model(S, A, sparse=sparse, absorbing=S > 1, seed=S)
    pi = np.random.default_rng(S).dirichlet(np.ones(A), size=S)
    pi[0, 0] = 0.0  # an exact zero: never drawn by either kernel
    pi[0] /= pi[0].sum()
    numpy_run, compiled_run = _both(monkeypatch, mdp, pi, 1000, seed=7, **mode)
    _assert_same(numpy_run, compiled_run)


def test_finite_horizon_and_long_geometric_tails(monkeypatch):
    """A finite-horizon model, and gamma close to 1: the numpy kernel finishes the few long
    episodes by its prefix scan, the compiled one row by row; the results agree."""
    fin = _model(5, 3, horizon=40, seed=2)
    pi = np.random.default_rng(2).dirichlet(np.ones(3), size=5)
    _assert_same(*_both(monkeypatch, fin, pi, 500, seed=3))
    long = FiniteMDP(fin.P, fin.r, fin.mu0, 0.999)
    monkeypatch.setattr(kernel, "TAIL_MIN_ROWS", 1)
    _assert_same(*_both(monkeypatch, long, pi, 64, geometric=True, seed=4))


def test_rows_are_drawn_in_blocks_without_changing_the_stream(monkeypatch):
    """The compiled kernel draws its uniforms a block of rows at a time; the block size must not
    change the episodes (one stream, consumed in row order)."""
    mdp = _model(6, 2, seed=5)
    pi = np.full((6, 2), 0.5)
    monkeypatch.setattr(kernel, "COMPILED_MIN_TRANSITIONS", 0)
    runs = []
    for block in (1, 37, 1 << 16):
        monkeypatch.setattr(kernel, "COMPILED_BLOCK", block)
        runs.append(rollout(mdp, pi, 200, geometric=True, seed=8))
    for other in runs[1:]:
        _assert_same(runs[0], other)


def test_streamed_chunks_match_the_one_shot_rollout(monkeypatch):
    mdp = _model(9, 3, absorbing=True, seed=9)
    pi = np.random.default_rng(9).dirichlet(np.ones(3), size=9)
    monkeypatch.setattr(kernel, "COMPILED_MIN_TRANSITIONS", 0)
    whole = rollout(mdp, pi, 900, geometric=True, seed=1, chunk_size=250)
    parts = list(rollout_chunks(mdp, pi, 900, geometric=True, seed=1, chunk_size=250))
    from pgexact import Trajectories

    _assert_same(whole, Trajectories.concatenate(parts))


def test_without_numba_the_numpy_kernel_runs(monkeypatch):
    """compiled_kernels() returns None when the compiled module cannot be imported (numba
    missing); rollout then runs the numpy kernel and gives the same episodes."""
    import sys

    import pgexact.sampling as sampling

    mdp = _model(4, 2, seed=3)
    pi = np.full((4, 2), 0.5)
    monkeypatch.setattr(kernel, "COMPILED_MIN_TRANSITIONS", 0)
    with_numba = rollout(mdp, pi, 300, geometric=True, seed=2)
    alias.compiled_module.cache_clear()
    monkeypatch.delattr(sampling, "_compiled", raising=False)
    monkeypatch.setitem(sys.modules, "pgexact.sampling._compiled", None)  # import raises ImportError
    try:
        assert kernel.compiled_kernels() is None
        without = rollout(mdp, pi, 300, geometric=True, seed=2)
    finally:
        monkeypatch.undo()
        alias.compiled_module.cache_clear()
    _assert_same(with_numba, without)
    assert kernel.compiled_kernels() is not None


def test_chunks_on_either_side_of_the_threshold_give_the_same_batch(monkeypatch):
    """With the threshold between the chunk sizes, some chunks run compiled and some in numpy;
    the batch equals the all-numpy one (chunking never changes the episodes)."""
    mdp = _model(8, 3, absorbing=True, seed=6)
    pi = np.random.default_rng(6).dirichlet(np.ones(3), size=8)
    monkeypatch.setattr(kernel, "USE_COMPILED", False)
    reference = rollout(mdp, pi, 2300, horizon=20, seed=4, chunk_size=1000)  # chunks 1000, 1000, 300
    monkeypatch.setattr(kernel, "USE_COMPILED", True)
    monkeypatch.setattr(kernel, "COMPILED_MIN_TRANSITIONS", 10_000)  # 20 000 compiled, 6 000 numpy
    _assert_same(reference, rollout(mdp, pi, 2300, horizon=20, seed=4, chunk_size=1000))
