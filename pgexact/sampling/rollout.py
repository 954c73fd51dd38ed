r"""The batched rollout kernel: many episodes of a finite MDP advanced together, one time step per pass.

Design
------
* **O(1) draws.** For each state s one alias table (:mod:`pgexact.sampling.alias`) over the joint
  outcome :math:`(a, s')` with probability :math:`\pi(a|s) P(s'|s, a)`, built once per policy.
  One uniform per transition picks both the action and the next state, whatever S and A.
  The initial state uses one table over :math:`\mu_0`.
* **Episodes in lock-step.** The only Python loop is over time; every operation inside acts on
  all the episodes of a chunk.
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

from collections import deque
from concurrent.futures import Executor, Future
from dataclasses import dataclass
from typing import Any, Iterator

import numpy as np
import scipy.sparse

from .._random import Seed, as_seed_sequence
from .._validation import check_positive_int
from .._chunks import ChunkError, chunk_seed, chunk_sizes
from ..models.finite_mdp import check_mdp, check_pi
from ..models.finite_mdp import FiniteMDP
from .alias import AliasTable

__all__ = [
    "Trajectories",
    "rollout",
    "rollout_chunks",
    "chunk_seed",
    "chunk_sizes",
    "DEFAULT_CHUNK_SIZE",
    "TransitionSampler",
]

#: Episodes per chunk unless told otherwise (a chunk's buffers: about 16 bytes x episodes x steps).
DEFAULT_CHUNK_SIZE = 1 << 15

OBJECTIVES = ("finite", "truncated", "geometric")


@dataclass(frozen=True, eq=False)
class Trajectories:
    r"""A batch of sampled episodes, batch-first (all arrays read-only).

    Attributes
    ----------
    states : numpy.ndarray, shape (N, T + 1), int32
        ``states[n, t]`` is :math:`s_t` of episode n; column T is the state after the last step
        (what a bootstrap value is evaluated at).
    actions : numpy.ndarray, shape (N, T), int32
    rewards : numpy.ndarray, shape (N, T), float64
        :math:`r(s_t, a_t)` (the expected reward of the pair; undiscounted).
    lengths : numpy.ndarray, shape (N,), int64
        Number of real steps: the first t with :math:`s_t` terminal (absorbing, zero reward),
        or the end of the episode (T, or the geometric stopping time). Steps ``t >= lengths[n]``
        are padding: zero reward, arbitrary action; use :attr:`mask`.
    stops : numpy.ndarray, shape (N,), int64
        Number of simulated steps: T, or the geometric stopping time L. Steps after an
        absorption but before the stop are simulated in the terminal state (the exact core's
        chain keeps acting there); :attr:`simulated_mask` selects them.
    absorbed : numpy.ndarray, shape (N,), bool
        The episode reached a terminal state within its simulated steps.
    truncated : numpy.ndarray, shape (N,), bool
        The episode was cut by the horizon of a *truncated* discounted objective: its return
        continues after T, and a value bootstrap :math:`V(s_T)` is legitimate. Always False for
        finite-horizon MDPs (the episode ends at H) and under geometric stopping (the stop *is*
        the discount).
    gamma : float
        The MDP's discount.
    discount : float
        The per-step discount an estimator must apply: ``gamma``, or 1 under geometric stopping.
    objective : str
        ``"finite"``, ``"truncated"`` (estimates :math:`J_T`, not J) or ``"geometric"``.
    n_states, n_actions : int
    """

    states: np.ndarray
    actions: np.ndarray
    rewards: np.ndarray
    lengths: np.ndarray
    stops: np.ndarray
    absorbed: np.ndarray
    truncated: np.ndarray
    gamma: float
    discount: float
    objective: str
    n_states: int
    n_actions: int

    def __post_init__(self) -> None:
        for name in ("states", "actions", "rewards", "lengths", "stops", "absorbed", "truncated"):
            getattr(self, name).flags.writeable = False

    @property
    def n_episodes(self) -> int:
        """N."""
        return int(self.actions.shape[0])

    @property
    def n_steps(self) -> int:
        """T, the number of time columns (the longest episode under geometric stopping)."""
        return int(self.actions.shape[1])

    @property
    def mask(self) -> np.ndarray:
        """``mask[n, t] = t < lengths[n]``: real steps, shape (N, T)."""
        return np.arange(self.n_steps)[None, :] < self.lengths[:, None]

    @property
    def simulated_mask(self) -> np.ndarray:
        """``t < stops[n]``: simulated steps, including those spent absorbed, shape (N, T)."""
        return np.arange(self.n_steps)[None, :] < self.stops[:, None]

    @property
    def terminated(self) -> np.ndarray:
        """``terminated[n, t]``: step t is the last of an episode that ended (no bootstrap), shape (N, T).

        True at ``t = lengths[n] - 1`` unless the episode is :attr:`truncated`; this is the
        ``terminated`` argument of :func:`pgexact.estimators.gae`.
        """
        last = np.arange(self.n_steps)[None, :] == (self.lengths[:, None] - 1)
        return last & ~self.truncated[:, None]

    def discounts(self) -> np.ndarray:
        r""":math:`\text{discount}^t` for t = 0..T-1, shape (T,)."""
        return self.discount ** np.arange(self.n_steps, dtype=np.float64)

    @staticmethod
    def concatenate(parts: "list[Trajectories]") -> "Trajectories":
        """Stack batches along episodes (padding shorter ones under geometric stopping)."""
        if not parts:
            raise ValueError("parts must contain at least one Trajectories")
        first = parts[0]
        T = max(p.n_steps for p in parts)

        def pad(arr: np.ndarray, width: int, fill: Any) -> np.ndarray:
            if arr.shape[1] == width:
                return arr
            extra = width - arr.shape[1]
            tail = arr[:, -1:] if fill is None else np.full((arr.shape[0], 1), fill, arr.dtype)
            return np.concatenate([arr, np.repeat(tail, extra, axis=1)], axis=1)

        return Trajectories(
            states=np.concatenate([pad(p.states, T + 1, None) for p in parts]),
            actions=np.concatenate([pad(p.actions, T, 0) for p in parts]),
            rewards=np.concatenate([pad(p.rewards, T, 0.0) for p in parts]),
            lengths=np.concatenate([p.lengths for p in parts]),
            stops=np.concatenate([p.stops for p in parts]),
            absorbed=np.concatenate([p.absorbed for p in parts]),
            truncated=np.concatenate([p.truncated for p in parts]),
            gamma=first.gamma,
            discount=first.discount,
            objective=first.objective,
            n_states=first.n_states,
            n_actions=first.n_actions,
        )


class TransitionSampler:
    r"""Alias tables of one (MDP, policy) pair and the kernel that advances episodes in lock-step.

    Picklable (plain arrays), so chunks can be shipped to workers.

    Parameters
    ----------
    P : numpy.ndarray, shape (S, A, S), or scipy.sparse matrix, shape (S*A, S)
        Dense: one table of A*S columns per state. Sparse (row ``s*A + a`` holds
        ``P(.|s, a)``): one table per state over its stored (a, s') pairs, padded to the
        largest row, so memory is O(S * max row nnz) and a draw is still O(1).
    r : numpy.ndarray, shape (S, A)
    mu0 : numpy.ndarray, shape (S,)
    pi : numpy.ndarray, shape (S, A)
    terminal : numpy.ndarray, shape (S,), bool
    """

    def __init__(
        self, P: Any, r: np.ndarray, mu0: np.ndarray, pi: np.ndarray, terminal: np.ndarray
    ) -> None:
        S, A = pi.shape
        self.n_states, self.n_actions = S, A
        if scipy.sparse.issparse(P):
            # P of shape (S*A, S), row s*A + a: joint row s holds code a*S + s' for stored entries
            csr = scipy.sparse.csr_array(P)
            k = np.repeat(np.arange(S * A), np.diff(csr.indptr))
            joint_sp = scipy.sparse.csr_array(
                (csr.data * pi.reshape(-1)[k], (k // A, (k % A) * S + csr.indices)),
                shape=(S, A * S),
            )
            self.joint = AliasTable.from_sparse_rows(joint_sp)
        else:
            joint = (pi[:, :, None] * P).reshape(S, A * S)  # joint[s, a*S + s'] = pi(a|s) P(s'|s,a)
            self.joint = AliasTable.from_probs(joint)
        K = self.joint.n_columns
        # j + threshold[s, j]: the coin test becomes x < j + q (saves one subtraction per draw)
        self.joint_threshold_abs = (
            self.joint.threshold.reshape(S, K) + np.arange(K, dtype=np.float64)
        ).reshape(-1)
        self.dense_codes = not scipy.sparse.issparse(P)
        self.initial = AliasTable.from_probs(np.asarray(mu0, dtype=np.float64)[None, :])
        self.reward = np.ascontiguousarray(r, dtype=np.float64).reshape(-1)
        self.terminal = np.asarray(terminal, dtype=bool)

    def run(
        self,
        gen: np.random.Generator,
        n: int,
        T: int,
        stop_after: np.ndarray | None = None,
        out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance ``n`` episodes; time-major buffers ``(states (T+1, n), actions (T, n), rewards (T, n))``.

        ``stop_after`` (sorted descending, optional): episode k is simulated for
        ``stop_after[k]`` steps; afterwards its state is held, its action and reward are 0.
        ``out``: buffers to fill (views with rows contiguous), else new ones are allocated.
        Draw order: one uniform per episode for :math:`s_0`, then per step one per active episode.
        """
        S, A = self.n_states, self.n_actions
        K = self.joint.n_columns
        if out is None:
            states = np.empty((T + 1, n), dtype=np.int32)
            actions = np.zeros((T, n), dtype=np.int32)
            rewards = np.zeros((T, n), dtype=np.float64)
        else:
            states, actions, rewards = out
        thr_abs, alias, reward = self.joint_threshold_abs, self.joint.alias, self.reward
        primary, dense = self.joint.primary, self.dense_codes
        # work buffers, allocated once per chunk (no allocation inside the time loop)
        x = np.empty(n)
        thv = np.empty(n)
        coin = np.empty(n, dtype=bool)
        j, flat, code, a, d, sa = (np.empty(n, dtype=np.intp) for _ in range(6))
        s = self.initial.sample(np.zeros(n, dtype=np.intp), gen.random(n))
        states[0] = s
        counts = None
        if stop_after is not None:
            # counts[t] = number of episodes with L > t (stop_after sorted descending)
            counts = np.searchsorted(-stop_after, -np.arange(T), side="left")
        pow2 = S & (S - 1) == 0  # decode code = a * S + s' by shift and mask
        shift = S.bit_length() - 1
        m = -1
        for t in range(T):
            m_t = n if counts is None else int(counts[t])
            if m_t != m:  # (re)slice the work buffers only when the active prefix shrinks
                m = m_t
                x_, j_, flat_, code_, a_, d_, sa_ = (v[:m] for v in (x, j, flat, code, a, d, sa))
                s_, thv_, coin_ = s[:m], thv[:m], coin[:m]
            gen.random(out=x_)
            x_ *= K  # x < K exactly: for u <= 1 - 2^-53, u * K rounds below K
            j_[...] = x_  # column = floor(x) (x >= 0)
            np.multiply(s_, K, out=flat_)
            flat_ += j_
            thr_abs.take(flat_, out=thv_)
            np.less(x_, thv_, out=coin_)  # coin: frac(x) < threshold  <=>  x < j + threshold
            alias.take(flat_, out=code_)
            if dense:
                np.subtract(j_, code_, out=d_)  # code = coin ? j : alias  (branch-free blend)
            else:
                primary.take(flat_, out=d_)  # sparse rows: column j stands for primary[s, j]
                d_ -= code_
            d_ *= coin_
            code_ += d_
            np.multiply(s_, A, out=sa_)
            if pow2:
                np.right_shift(code_, shift, out=a_)
                sa_ += a_
                np.bitwise_and(code_, S - 1, out=s_)  # next state
            else:
                np.floor_divide(code_, S, out=a_)  # code = a * S + s'
                sa_ += a_
                np.multiply(a_, S, out=d_)
                np.subtract(code_, d_, out=s_)  # next state
            actions[t, :m] = a_
            reward.take(sa_, out=rewards[t, :m])
            states[t + 1] = s
        return states, actions, rewards


def _finish(
    sampler: TransitionSampler,
    states: np.ndarray,
    actions: np.ndarray,
    rewards: np.ndarray,
    stops: np.ndarray,
    objective: str,
    gamma: float,
) -> Trajectories:
    """Batch-first views of time-major buffers plus lengths, absorption and truncation flags."""
    T = actions.shape[0]
    n = actions.shape[1]
    if sampler.terminal.any():
        term = sampler.terminal[states]  # (T+1, n)
        t_idx = np.arange(T + 1)[:, None]
        term &= t_idx <= stops[None, :]
        hit = term.any(axis=0)
        first = np.where(hit, term.argmax(axis=0), stops)
        lengths = np.minimum(first, stops).astype(np.int64)
        absorbed = hit
    else:
        lengths = stops.astype(np.int64)
        absorbed = np.zeros(n, dtype=bool)
    truncated = ~absorbed if objective == "truncated" else np.zeros(n, dtype=bool)
    return Trajectories(
        states=states.T,
        actions=actions.T,
        rewards=rewards.T,
        lengths=lengths,
        stops=stops.astype(np.int64),
        absorbed=absorbed,
        truncated=truncated,
        gamma=gamma,
        discount=1.0 if objective == "geometric" else gamma,
        objective=objective,
        n_states=sampler.n_states,
        n_actions=sampler.n_actions,
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
    sampler = TransitionSampler(mdp.P, mdp.r, mdp.mu0, pi, mdp.terminal)
    return mdp, sampler, n, T, objective, chunk_size


def _run_chunk(
    sampler: TransitionSampler,
    seed: np.random.SeedSequence,
    size: int,
    T: int | None,
    objective: str,
    gamma: float,
    out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> Trajectories:
    gen = np.random.Generator(np.random.PCG64(seed))
    if objective != "geometric":
        states, actions, rewards = sampler.run(gen, size, T, out=out)  # type: ignore[arg-type]
        return _finish(sampler, states, actions, rewards, np.full(size, T), objective, gamma)
    L = gen.geometric(1.0 - gamma, size=size)  # Pr(L > t) = gamma^t, L >= 1
    order = np.argsort(-L, kind="stable")
    L_sorted = L[order]
    states, actions, rewards = sampler.run(gen, size, int(L_sorted[0]), stop_after=L_sorted)
    rank = np.empty_like(order)
    rank[order] = np.arange(size)
    return _finish(
        sampler, states[:, rank], actions[:, rank], rewards[:, rank], L, objective, gamma
    )


def _chunk_error(index: int, size: int, seed: np.random.SeedSequence, n_chunks: int, exc: BaseException) -> Exception:
    """:class:`pgexact.distributed.ChunkError` naming a failed chunk and its seed."""
    return ChunkError(index, size, seed, n_chunks, exc)


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
    ss = as_seed_sequence(seed)
    prefetch = check_positive_int("prefetch", prefetch)
    sizes = chunk_sizes(n, chunk_size)

    def job(i: int) -> tuple:
        return (sampler, chunk_seed(ss, i), sizes[i], T, objective, mdp.gamma)

    def serial() -> Iterator[Trajectories]:
        for i in range(len(sizes)):
            yield _run_chunk(*job(i))

    def parallel() -> Iterator[Trajectories]:
        # at most `prefetch` chunks in flight: memory stays bounded, order is preserved
        pending: deque[Future] = deque()
        nxt = 0
        try:
            while nxt < len(sizes) or pending:
                while nxt < len(sizes) and len(pending) < prefetch:
                    pending.append(executor.submit(_run_chunk, *job(nxt)))  # type: ignore[union-attr]
                    nxt += 1
                i = nxt - len(pending)
                try:
                    chunk = pending.popleft().result()
                except Exception as exc:  # scale-out (issue 7): name the failing chunk and its seed
                    raise _chunk_error(i, sizes[i], chunk_seed(ss, i), len(sizes), exc) from exc
                yield chunk
        finally:
            for fut in pending:  # nothing keeps running after a failure or an abandoned stream
                fut.cancel()

    return serial() if executor is None else parallel()


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
        Batch-first (F-ordered) arrays; see :class:`Trajectories` for padding and masks.

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
    ss = as_seed_sequence(seed)
    sizes = chunk_sizes(n, chunk_size)
    if executor is not None and len(sizes) > 1:
        futures = [
            executor.submit(_run_chunk, sampler, chunk_seed(ss, i), size, T, objective, mdp.gamma)
            for i, size in enumerate(sizes)
        ]
        parts = []
        for i, f in enumerate(futures):
            try:
                parts.append(f.result())
            except Exception as exc:  # scale-out (issue 7): name the failing chunk and its seed
                for g in futures[i + 1 :]:
                    g.cancel()
                raise _chunk_error(i, sizes[i], chunk_seed(ss, i), len(sizes), exc) from exc
        return Trajectories.concatenate(parts)
    if len(sizes) == 1:
        return _run_chunk(sampler, chunk_seed(ss, 0), n, T, objective, mdp.gamma)
    if objective != "geometric":
        # fill one set of time-major buffers chunk by chunk (no concatenation copies)
        bufs = (
            np.empty((T + 1, n), dtype=np.int32),  # type: ignore[operator]
            np.empty((T, n), dtype=np.int32),
            np.empty((T, n), dtype=np.float64),
        )
        start = 0
        for i, size in enumerate(sizes):
            view = tuple(b[:, start : start + size] for b in bufs)
            _run_chunk(sampler, chunk_seed(ss, i), size, T, objective, mdp.gamma, out=view)
            start += size
        return _finish(sampler, *bufs, np.full(n, T), objective, mdp.gamma)
    parts = [
        _run_chunk(sampler, chunk_seed(ss, i), size, T, objective, mdp.gamma)
        for i, size in enumerate(sizes)
    ]
    return Trajectories.concatenate(parts)
