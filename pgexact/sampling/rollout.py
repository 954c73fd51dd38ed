r"""Rollouts of a finite MDP: many episodes advanced together by :mod:`pgexact.sampling.kernel`.

Design
------
* **Chunks and seeds.** Episodes are processed in chunks of ``chunk_size`` (fixed, independent of
  how many chunks are processed at once or by how many workers). Chunk ``i`` draws from
  ``Generator(PCG64(child_i))`` with ``child_i = SeedSequence(entropy, spawn_key=key + (i,))``,
  i.e. child ``i`` of the seed's :class:`~numpy.random.SeedSequence`, the one
  ``SeedSequence.spawn`` would give. The one-shot :func:`rollout` is, bit for bit, the
  concatenation of the chunks of :func:`rollout_chunks`.
* **Three objectives.** Finite-horizon MDP: H steps, estimates of :math:`J = E\sum_{t<H}\gamma^t r_t`.
  Discounted MDP with ``horizon=T``: the *truncated* objective :math:`J_T = E\sum_{t<T}\gamma^t r_t`
  (``objective == "truncated"``; biased for J by :math:`\sum_{t \ge T}\gamma^t E r_t`).
  Discounted MDP with ``geometric=True``: every episode stops after a random number of steps
  :math:`L \sim \mathrm{Geometric}(1-\gamma)`, :math:`\Pr(L > t) = \gamma^t`, independent of the
  trajectory, so undiscounted sums over the episode are unbiased for the discounted
  infinite-horizon quantities: :math:`E\sum_{t<L} f_t = \sum_t \Pr(L > t) E f_t = \sum_t \gamma^t E f_t`
  for any :math:`f_t` depending on the trajectory up to t (random-horizon rollouts as in Zhang,
  Koppel, Zhu & Başar 2020, "Global convergence of policy gradient methods to (almost) locally
  optimal policies", SIAM J. Control Optim.).
  Estimators read ``Trajectories.discount`` (γ, or 1 under geometric stopping) and need not know
  which case they are in.
"""

from __future__ import annotations

from concurrent.futures import Executor
from typing import Any, Iterator

import numpy as np

from .._chunks import ChunkError, check_executor, chunk_seed, chunk_sizes, ordered_map
from .._random import Seed, as_seed_sequence
from .._validation import check_memory, check_positive_int
from ..models.finite_mdp import FiniteMDP, check_mdp, check_pi
from . import kernel
from .kernel import TransitionSampler
from .trajectories import Trajectories

__all__ = [
    "Trajectories",
    "rollout",
    "rollout_chunks",
    "DEFAULT_CHUNK_SIZE",
]

#: Episodes per chunk unless told otherwise (a chunk's buffers: about 17 bytes x transitions).
DEFAULT_CHUNK_SIZE = 1 << 15

#: Bytes stored per simulated transition (state int32, action int32, reward float64, one more state per episode).
BYTES_PER_TRANSITION = 16


def _finish(
    sampler: Any,
    flat_states: np.ndarray,
    flat_actions: np.ndarray,
    flat_rewards: np.ndarray,
    counts: np.ndarray,
    order: np.ndarray,
    stops: np.ndarray,
    objective: str,
    gamma: float,
) -> Trajectories:
    """Trajectories from the kernel's flat buffers, with lengths, absorption and truncation flags."""
    n = stops.shape[0]
    fields = dict(
        flat_states=flat_states,
        flat_actions=flat_actions,
        flat_rewards=flat_rewards,
        counts=counts,
        column_order=order,
        stops=stops.astype(np.int64),
        gamma=gamma,
        discount=1.0 if objective == "geometric" else gamma,
        objective=objective,
        n_states=sampler.n_states,
        n_actions=sampler.n_actions,
    )
    terminal = np.asarray(sampler.terminal, dtype=bool)
    if terminal.any():
        draft = Trajectories._trusted(
            lengths=stops, absorbed=np.zeros(n, bool), truncated=np.zeros(n, bool), **fields  # type: ignore[arg-type]
        )
        sv = draft.steps
        first = stops.astype(np.int64).copy()
        hit = terminal[sv.state]
        np.minimum.at(first, sv.episode[hit], sv.time[hit])
        ends = sv.last & terminal[sv.next_state]
        absorbed = np.zeros(n, dtype=bool)
        absorbed[sv.episode[hit]] = True
        absorbed[sv.episode[ends]] = True
        lengths = first
    else:
        lengths = stops.astype(np.int64)
        absorbed = np.zeros(n, dtype=bool)
    truncated = ~absorbed if objective == "truncated" else np.zeros(n, dtype=bool)
    return Trajectories._trusted(lengths=lengths, absorbed=absorbed, truncated=truncated, **fields)  # type: ignore[arg-type]


def _finish_full(
    sampler: Any,
    states: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    stops: np.ndarray,
    objective: str,
    gamma: float,
) -> Trajectories:
    """:func:`_finish` for C-contiguous time-major buffers ``(T+1, n)``, ``(T, n)``, ``(T, n)``."""
    T, n = actions.shape
    return _finish(
        sampler, states.reshape(-1), actions.reshape(-1), rewards.reshape(-1),
        np.full(T, n, dtype=np.int64), np.arange(n), stops, objective, gamma,
    )


def _setup(
    mdp: Any, pi: Any, n_episodes: Any, horizon: Any, geometric: bool, chunk_size: Any
) -> tuple[FiniteMDP, TransitionSampler, int, int | None, str, int]:
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    n = check_positive_int("n_episodes", n_episodes)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if not isinstance(geometric, (bool, np.bool_)):
        raise TypeError(f"geometric must be True or False, got {geometric!r}")
    if mdp.horizon is not None:
        if geometric:
            raise ValueError(
                f"geometric=True needs a discounted mdp (horizon=None), but mdp.horizon={mdp.horizon}"
            )
        if horizon is not None and check_positive_int("horizon", horizon) != mdp.horizon:
            raise ValueError(
                f"horizon is {horizon}, but the mdp has horizon {mdp.horizon}: pass horizon=None "
                "or the mdp's horizon (use mdp.with_horizon to change it)"
            )
        T: int | None = mdp.horizon
        objective = "finite"
    elif geometric:
        if horizon is not None:
            raise ValueError(
                f"horizon is {horizon}, but geometric=True stops episodes at random: pass horizon=None"
            )
        T, objective = None, "geometric"
    else:
        if horizon is None:
            raise ValueError(
                "horizon is None, but the mdp is discounted (horizon=None): pass horizon=T to "
                "estimate the truncated objective E[sum_{t<T} gamma^t r_t], or geometric=True for "
                "unbiased estimates of the infinite-horizon quantities by random stopping"
            )
        T, objective = check_positive_int("horizon", horizon), "truncated"
    # the compiled table construction pays off where the compiled kernel will run (large chunks)
    per_chunk = min(n, chunk_size) * (T if T is not None else 1.0 / (1.0 - mdp.gamma))
    compiled = kernel.compiled_for(per_chunk) is not None
    sampler = TransitionSampler(mdp.P, mdp.r, mdp.mu0, pi, mdp.terminal, compiled=compiled)
    return mdp, sampler, n, T, objective, chunk_size


def _check_size(name: str, n: int, T: int | None, gamma: float, advice: str) -> None:
    """Refuse, with the memory it would need, a batch of n episodes too large to hold."""
    if T is not None:
        check_memory(f"{name}(..., horizon={T}) of {n} episodes", BYTES_PER_TRANSITION * n * (T + 1), advice=advice)
    else:  # geometric stopping: E[L] = 1 / (1 - gamma) steps per episode
        check_memory(
            f"{name}(..., geometric=True) of {n} episodes at gamma={gamma!r} "
            f"(expected {n / (1.0 - gamma):.3g} transitions)",
            BYTES_PER_TRANSITION * n / (1.0 - gamma),
            advice=advice + " or a smaller gamma",
        )


def _run_chunk(
    sampler: TransitionSampler,
    seed: np.random.SeedSequence,
    size: int,
    T: int | None,
    objective: str,
    gamma: float,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Trajectories | None:
    """One chunk from its own seed; with ``out`` (fixed horizons) fill those buffers and return None."""
    gen = np.random.Generator(np.random.PCG64(seed))
    if objective != "geometric":
        counts = np.full(T, size, dtype=np.int64)  # type: ignore[arg-type]
        if out is not None:
            sampler.run(gen, size, counts, out=out)
            return None
        flat = sampler.run(gen, size, counts)
        return _finish(sampler, *flat, counts, np.arange(size), np.full(size, T), objective, gamma)
    L = gen.geometric(1.0 - gamma, size=size)  # Pr(L > t) = gamma^t, L >= 1
    M = int(L.sum())
    check_memory(
        f"rollout(..., geometric=True) of {size} episodes at gamma={gamma!r} ({M} transitions)",
        BYTES_PER_TRANSITION * M,
        advice="use fewer episodes per chunk or a smaller gamma",
    )
    order = np.argsort(-L, kind="stable")
    L_sorted = L[order]
    counts = np.searchsorted(-L_sorted, -np.arange(int(L_sorted[0])), side="left").astype(np.int64)
    flat = sampler.run(gen, size, counts)
    return _finish(sampler, *flat, counts, order, L, objective, gamma)


def rollout_chunks(
    mdp: FiniteMDP,
    pi: Any,
    n_episodes: int,
    *,
    horizon: int | None = None,
    geometric: bool = False,
    seed: Seed,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    executor: Executor | None = None,
    prefetch: int = 4,
) -> Iterator[Trajectories]:
    r"""Streaming rollout: yield batches of at most ``chunk_size`` episodes, in bounded memory.

    Same arguments as :func:`rollout`. The concatenation of the yielded batches is bit-identical
    to ``rollout(..., seed=seed, chunk_size=chunk_size)``: chunk ``i`` always draws from child
    ``i`` of the seed's ``SeedSequence`` (see :func:`chunk_seed`). Arguments are validated
    when the generator is created, before the first chunk.

    With an ``executor`` (any :class:`concurrent.futures.Executor`), chunks are computed by its
    workers, at most ``prefetch`` at a time, and yielded in order: the result is bit-identical
    whatever the number of workers, since chunk i depends only on child seed i. A chunk that
    fails raises :class:`pgexact.distributed.ChunkError` naming its index and seed (chained to
    the original error); the chunks still pending are cancelled.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, horizon=5, seed=0)
    >>> pi = np.full((3, 2), 0.5)
    >>> parts = list(rollout_chunks(mdp, pi, 10, seed=1, chunk_size=4))
    >>> [p.n_episodes for p in parts]
    [4, 4, 2]
    >>> whole = rollout(mdp, pi, 10, seed=1, chunk_size=4)
    >>> bool(np.array_equal(Trajectories.concatenate(parts).states, whole.states))
    True
    """
    mdp, sampler, n, T, objective, chunk_size = _setup(
        mdp, pi, n_episodes, horizon, geometric, chunk_size
    )
    check_executor(executor)
    _check_size("rollout_chunks", min(n, chunk_size), T, mdp.gamma, "use a smaller chunk_size")
    ss = as_seed_sequence(seed)
    prefetch = check_positive_int("prefetch", prefetch)
    return _chunks_iter(sampler, ss, chunk_sizes(n, chunk_size), T, objective, mdp.gamma, executor, prefetch)


def _chunks_iter(
    sampler: TransitionSampler,
    ss: np.random.SeedSequence,
    sizes: list[int],
    T: int | None,
    objective: str,
    gamma: float,
    executor: Any,
    prefetch: int | None,
) -> Iterator[Trajectories]:
    """The chunks in order, on ``executor`` (None: here), failures as :class:`ChunkError`."""
    calls = ((sampler, chunk_seed(ss, i), size, T, objective, gamma) for i, size in enumerate(sizes))

    def error(i: int, exc: BaseException) -> ChunkError:
        return ChunkError(i, sizes[i], chunk_seed(ss, i), len(sizes), exc)

    return ordered_map(executor, _run_chunk, calls, error, prefetch)


def rollout(
    mdp: FiniteMDP,
    pi: Any,
    n_episodes: int,
    *,
    horizon: int | None = None,
    geometric: bool = False,
    seed: Seed,
    chunk_size: int = DEFAULT_CHUNK_SIZE,
    executor: Executor | None = None,
) -> Trajectories:
    r"""Sample ``n_episodes`` episodes of ``mdp`` under the policy matrix ``pi``, all in lock-step.

    .. math::
        s_0 \sim \mu_0, \quad (a_t, s_{t+1}) \sim \pi(a|s_t) P(s'|s_t, a), \quad
        r_t = r(s_t, a_t), \qquad t = 0, \dots, T-1 .

    Parameters
    ----------
    mdp : FiniteMDP
    pi : array_like, shape (S, A)
        Policy matrix; rows are distributions (tolerance 1e-9).
    n_episodes : int
        N >= 1.
    horizon : int, optional
        Finite-horizon mdp: ``None`` or ``mdp.horizon``. Discounted mdp: T, the number of steps
        of the *truncated* objective :math:`J_T = E\sum_{t<T}\gamma^t r_t` (required unless
        ``geometric=True``).
    geometric : bool
        Discounted mdp only: stop each episode after :math:`L \sim \mathrm{Geometric}(1-\gamma)`
        steps, for unbiased estimates of the infinite-horizon J and ∇J (module docstring).
    seed : int, numpy.random.SeedSequence or numpy.random.Generator
        Required. A Generator contributes a fresh child SeedSequence (its bit stream is untouched).
    chunk_size : int
        Episodes per chunk (part of the definition of the sample: the same seed and chunk size
        give bit-identical episodes, however they are streamed).
    executor : concurrent.futures.Executor, optional
        Compute the chunks on its workers; bit-identical to the serial result.

    Returns
    -------
    Trajectories
        Stored time-major and ragged (memory proportional to the simulated transitions, also
        under geometric stopping); ``steps`` gives per-step arrays, ``states``/``actions``/
        ``rewards``/``mask`` padded batch-first views (see :class:`Trajectories`).

    Raises
    ------
    ValueError
        Inconsistent horizon arguments, or a batch whose arrays would exceed
        ``pgexact._validation.MEMORY_LIMIT`` (the message gives the memory it would need).
    TypeError
        ``executor`` that is not a ``concurrent.futures.Executor``.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import evaluate
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 2, gamma=0.9, horizon=6, seed=0)
    >>> pi = np.full((4, 2), 0.5)
    >>> tr = rollout(mdp, pi, 20000, seed=0)
    >>> tr.states.shape, tr.actions.shape
    ((20000, 7), (20000, 6))
    >>> G = tr.rewards @ 0.9 ** np.arange(6)
    >>> bool(abs(G.mean() - evaluate(mdp, pi).J) < 5 * G.std() / np.sqrt(20000))
    True
    """
    mdp, sampler, n, T, objective, chunk_size = _setup(
        mdp, pi, n_episodes, horizon, geometric, chunk_size
    )
    check_executor(executor)
    _check_size("rollout", n, T, mdp.gamma, "sample fewer episodes or stream them with rollout_chunks")
    ss = as_seed_sequence(seed)
    sizes = chunk_sizes(n, chunk_size)
    if objective != "geometric" and executor is None:
        # fill one set of time-major buffers chunk by chunk (no concatenation copies)
        bufs = (
            np.empty((T + 1, n), dtype=np.int32),  # type: ignore[operator]
            np.empty((T, n), dtype=np.int32),
            np.empty((T, n), dtype=np.float64),
        )
        start = 0
        for i, size in enumerate(sizes):
            view = tuple(b[:, start : start + size] for b in bufs)
            try:
                _run_chunk(sampler, chunk_seed(ss, i), size, T, objective, mdp.gamma, out=view)  # type: ignore[arg-type]
            except Exception as exc:
                raise ChunkError(i, size, chunk_seed(ss, i), len(sizes), exc) from exc
            start += size
        return _finish_full(sampler, *bufs, np.full(n, T), objective, mdp.gamma)
    if executor is None and len(sizes) > 1:  # geometric: every chunk writes into one ragged batch
        return _geometric_merged(sampler, ss, sizes, mdp.gamma)
    parts = list(_chunks_iter(sampler, ss, sizes, T, objective, mdp.gamma, executor, None))
    return Trajectories.concatenate(parts)


def _geometric_merged(
    sampler: TransitionSampler, ss: np.random.SeedSequence, sizes: list[int], gamma: float
) -> Trajectories:
    """Chunks of geometric episodes sampled straight into the storage of their concatenation.

    Each chunk draws its stopping times and its episodes from its own child seed, exactly as
    :func:`_run_chunk` does; only where the results are written differs (no concatenation).
    """
    gens = [np.random.Generator(np.random.PCG64(chunk_seed(ss, i))) for i in range(len(sizes))]
    Ls = [g.geometric(1.0 - gamma, size=size) for g, size in zip(gens, sizes)]
    L = np.concatenate(Ls)
    N, M = int(L.shape[0]), int(L.sum())
    check_memory(
        f"rollout(..., geometric=True) of {N} episodes at gamma={gamma!r} ({M} transitions)",
        BYTES_PER_TRANSITION * M,
        advice="stream the episodes with rollout_chunks or use a smaller gamma",
    )
    order = np.argsort(-L, kind="stable")
    column_of = np.empty(N, dtype=np.intp)
    column_of[order] = np.arange(N)
    counts = np.searchsorted(-L[order], -np.arange(int(L.max())), side="left").astype(np.int64)
    offsets = np.zeros(counts.shape[0] + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    states = np.empty(N + M, dtype=np.int32)
    actions = np.empty(M, dtype=np.int32)
    rewards = np.empty(M, dtype=np.float64)
    counts_of, positions = [], []
    start = 0
    for Li in Ls:
        local = np.argsort(-Li, kind="stable")  # the chunk's own column order
        Ls_i = Li[local]
        counts_of.append(np.searchsorted(-Ls_i, -np.arange(int(Ls_i[0])), side="left").astype(np.int64))
        positions.append(column_of[start + local])  # where the chunk's columns sit in the batch
        start += Li.shape[0]
    kernels = kernel.compiled_for(M)
    if kernels is not None:  # rows of every chunk together
        sampler.run_merged(kernels, gens, counts_of, positions, (states, actions, rewards, offsets))
    else:  # chunk after chunk
        for i, (gen, counts_i, position) in enumerate(zip(gens, counts_of, positions)):
            try:
                sampler.run(gen, position.shape[0], counts_i, scatter=(states, actions, rewards, offsets, position))
            except Exception as exc:
                raise ChunkError(i, sizes[i], chunk_seed(ss, i), len(sizes), exc) from exc
    return _finish(sampler, states, actions, rewards, counts, order, L, "geometric", gamma)
