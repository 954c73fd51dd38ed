r"""The transition kernel: alias tables of one (MDP, policy) pair, advancing many episodes in lock-step.

* **O(1) draws.** For each state s one alias table (:mod:`pgexact.sampling.alias`) over the joint
  outcome :math:`(a, s')` with probability :math:`\pi(a|s) P(s'|s, a)`, built once per policy.
  One uniform per transition picks both the action and the next state, whatever S and A.
  The initial state uses one table over :math:`\mu_0`.
* **Episodes in lock-step.** The Python loop is over time; every operation inside acts on all
  the episodes still running (a prefix of the columns, which are sorted by decreasing length).
* **Long tails.** When few episodes remain (episodes x states small) the rest of each episode is
  computed without a loop over time: with the uniforms :math:`u_t` fixed, step t is a map
  :math:`f_t` of the state, tabulated for every state, and the path
  :math:`s_{t+1} = f_t \circ \dots \circ f_0 (s_0)` comes from a prefix composition of the maps
  (Hillis & Steele 1986, "Data parallel algorithms", CACM 29(12): the doubling scan), in
  :math:`O(S \log B)` operations per step. Both ways compute the same function of the same
  uniforms, so the episodes are bit-identical whichever way is used.
* **Draw order.** One uniform per episode for :math:`s_0` (in column order), then row by row one
  uniform per running episode (in column order).
* **Compiled.** With numba installed, chunks of at least :data:`COMPILED_MIN_TRANSITIONS`
  transitions run in :mod:`pgexact.sampling._compiled`: the same draws in the same order, the
  same tables and comparisons, so the same episodes bit for bit, with no array pass per
  operation (the numpy loop above makes about 18 per time step).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse

from .alias import AliasTable, build_alias, compiled_module

# The kernel takes arrays already validated by pgexact.rollout (its public entry point): it has
# no public name of its own.
__all__: list[str] = []

#: Run the compiled kernel (:mod:`pgexact.sampling._compiled`) when numba is installed, on chunks
#: of at least COMPILED_MIN_TRANSITIONS transitions (below that, importing numba and loading the
#: compiled code, about 1 s once per process, costs more than it saves); both kernels give
#: bit-identical episodes.
USE_COMPILED = True
COMPILED_MIN_TRANSITIONS = 1 << 20
#: Uniforms drawn at a time by the compiled kernel (rows are never split).
COMPILED_BLOCK = 1 << 16
#: Ragged (flat) output: the compiled kernel takes episodes through a block of rows this many at
#: a time (their states stay in L1); time-major buffers are written a whole row at a time
#: (tiling them measured slower: the writes hop between rows).
FLAT_TILE = 4096

#: Switch to the scan when (running episodes) x (states) is at most this many ...
TAIL_WORK = 256
#: ... and at least this many rows remain.
TAIL_MIN_ROWS = 64


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
    compiled : bool
        Build the dense joint tables with the compiled construction when numba is installed (the
        same tables, bit for bit; worth it when the rollout is large enough for the compiled kernel).
    """

    def __init__(
        self, P: Any, r: np.ndarray, mu0: np.ndarray, pi: np.ndarray, terminal: np.ndarray,
        compiled: bool = False,
    ) -> None:
        S, A = pi.shape
        self.n_states, self.n_actions = S, A
        if scipy.sparse.issparse(P):
            self.joint = _sparse_joint_table(P, pi)
        else:
            joint = (pi[:, :, None] * P).reshape(S, A * S)  # joint[s, a*S + s'] = pi(a|s) P(s'|s,a)
            self.joint = AliasTable._from_checked_probs(joint, compiled=compiled)
        K = self.joint.n_columns
        # j + threshold[s, j]: the coin test becomes x < j + q (saves one subtraction per draw)
        thr = self.joint.threshold.reshape(S, K)
        thr += np.arange(K, dtype=np.float64)
        self.joint_threshold_abs = thr.reshape(-1)
        self.dense_codes = not scipy.sparse.issparse(P)
        # dense codes a*S + s' < K: the smallest integer type keeps the alias table in cache
        self.code_dtype = np.dtype(np.intp)
        if self.dense_codes:
            self.code_dtype = np.dtype(np.int16 if K <= np.iinfo(np.int16).max else np.int32)
        self.alias_codes = self.joint.alias.astype(self.code_dtype, copy=False)
        self.initial = AliasTable._from_checked_probs(np.asarray(mu0, dtype=np.float64)[None, :])
        self.reward = np.ascontiguousarray(r, dtype=np.float64).reshape(-1)
        self.terminal = np.asarray(terminal, dtype=bool)
        # the compiled kernel decodes dense codes a*S + s' by table (sparse ones by division)
        codes = np.arange(K if self.dense_codes else 1, dtype=np.intp)
        self.action_of, self.next_of = codes // S, codes % S

    # ------------------------------------------------------------------ one draw, any shape
    def draw(self, s: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``(action, next state)`` from states ``s`` and uniforms ``u`` (broadcast), as the kernel draws them."""
        S, K = self.n_states, self.joint.n_columns
        x = u * K
        j = x.astype(np.intp)
        flat = s * K + j
        coin = x < self.joint_threshold_abs[flat]
        prim = j if self.dense_codes else self.joint.primary[flat]
        code = np.where(coin, prim, self.joint.alias[flat])
        return code // S, code % S

    # ------------------------------------------------------------------ the kernel
    def run(
        self,
        gen: np.random.Generator,
        n: int,
        counts: np.ndarray,
        out: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
        scatter: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray] | None = None,
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Advance ``n`` episodes; row t simulates the first ``counts[t]`` columns (non-increasing).

        Returns flat ``(states (n + M,), actions (M,), rewards (M,))``, row after row,
        M = ``counts.sum()``. ``out``: time-major buffers ``(states (T+1, n), actions (T, n),
        rewards (T, n))`` to fill instead (full rows only; views with contiguous rows).
        ``scatter = (states, actions, rewards, row_offsets, position)``: write into the flat
        buffers of a larger ragged batch instead, column k of row t at
        ``row_offsets[t] + position[k]`` (states of row t+1 after that batch's N initial states).
        """
        S, A = self.n_states, self.n_actions
        K = self.joint.n_columns
        T = int(counts.shape[0])
        offsets = np.zeros(T + 1, dtype=np.int64)
        np.cumsum(counts, out=offsets[1:])
        M = int(offsets[-1])
        flat_out = out is None
        if scatter is not None:
            states_g, actions_g, rewards_g, offsets_g, position = scatter
            N_g = int(states_g.shape[0] - actions_g.shape[0])
            dest = np.empty(n, dtype=np.intp)
            rtmp = np.empty(n)
        if scatter is not None:
            states, actions, rewards = states_g, actions_g, rewards_g
            s0 = np.empty(n, dtype=np.int32)
        elif flat_out:
            states = np.empty(n + M, dtype=np.int32)
            actions = np.empty(M, dtype=np.int32)
            rewards = np.empty(M, dtype=np.float64)
            s0 = states[:n]
        else:
            st2, ac2, rw2 = out
            s0 = st2[0]
        thr_abs, alias, reward = self.joint_threshold_abs, self.alias_codes, self.reward
        primary, dense = self.joint.primary, self.dense_codes
        s = self._initial_states(gen, n).astype(self.code_dtype)
        s0[:] = s
        if scatter is not None:
            states_g[position] = s0
        kernels = compiled_for(M)
        if kernels is not None:
            if scatter is not None:
                target = ("flat", states_g, actions_g, rewards_g, offsets_g, position, N_g)
            elif flat_out:
                target = ("flat", states, actions, rewards, offsets, np.arange(n, dtype=np.intp), n)
            else:
                target = ("2d", *out)  # type: ignore[misc]
            self._run_compiled(kernels, gen, s.astype(np.intp), counts, offsets, target)
            return None if scatter is not None else (out if out is not None else (states, actions, rewards))  # type: ignore[return-value]
        # work buffers, allocated once per chunk (no allocation inside the time loop)
        x = np.empty(n)
        thv = np.empty(n)
        coin = np.empty(n, dtype=bool)
        j, flat, sa = (np.empty(n, dtype=np.intp) for _ in range(3))
        code, a, d = (np.empty(n, dtype=self.code_dtype) for _ in range(3))
        pow2 = S & (S - 1) == 0  # decode code = a * S + s' by shift and mask
        shift = S.bit_length() - 1
        m = -1
        for t in range(T):
            m_t = int(counts[t])
            if m_t != m:  # (re)slice the work buffers only when the running prefix shrinks
                m = m_t
                if m * S <= TAIL_WORK and T - t >= TAIL_MIN_ROWS:
                    if scatter is not None:
                        place = (offsets_g, position, N_g)
                        self._tail(gen, s[:m], t, counts, offsets, (states, actions, rewards), True, n, place)
                    else:
                        bufs = (states, actions, rewards) if flat_out else out
                        self._tail(gen, s[:m], t, counts, offsets, bufs, flat_out, n)  # type: ignore[arg-type]
                    break
                if scatter is not None:
                    dest_, rtmp_ = dest[:m], rtmp[:m]
                x_, j_, flat_, code_, a_, d_, sa_ = (v[:m] for v in (x, j, flat, code, a, d, sa))
                s_, thv_, coin_ = s[:m], thv[:m], coin[:m]
            gen.random(out=x_)
            x_ *= K  # x < K exactly: for u <= 1 - 2^-53, u * K rounds below K
            j_[...] = x_  # column = floor(x) (x >= 0)
            np.multiply(s_, K, out=flat_, dtype=np.intp)
            flat_ += j_
            thr_abs.take(flat_, out=thv_, mode="clip")  # indices are in range: clip skips the check
            np.less(x_, thv_, out=coin_)  # coin: frac(x) < threshold  <=>  x < j + threshold
            alias.take(flat_, out=code_, mode="clip")
            if dense:
                np.subtract(j_, code_, out=d_, casting="unsafe")  # code = coin ? j : alias  (branch-free blend; j < K fits)
            else:
                primary.take(flat_, out=d_, mode="clip")  # sparse rows: column j stands for primary[s, j]
                d_ -= code_
            d_ *= coin_
            code_ += d_
            np.multiply(s_, A, out=sa_, dtype=np.intp)
            if pow2:
                np.right_shift(code_, shift, out=a_)
                sa_ += a_
                np.bitwise_and(code_, S - 1, out=s_)  # next state
            else:
                np.floor_divide(code_, S, out=a_)  # code = a * S + s'
                sa_ += a_
                np.multiply(a_, S, out=d_)
                np.subtract(code_, d_, out=s_)  # next state
            if scatter is not None:
                np.add(position[:m], offsets_g[t], out=dest_)
                actions_g[dest_] = a_
                reward.take(sa_, out=rtmp_, mode="clip")
                rewards_g[dest_] = rtmp_
                dest_ += N_g
                states_g[dest_] = s_
            elif flat_out:
                o = int(offsets[t])
                actions[o : o + m] = a_
                reward.take(sa_, out=rewards[o : o + m], mode="clip")
                states[n + o : n + o + m] = s_
            else:
                ac2[t, :m] = a_
                reward.take(sa_, out=rw2[t, :m], mode="clip")
                st2[t + 1, :m] = s_
        if out is not None:
            return out
        if scatter is not None:
            return None  # type: ignore[return-value]
        return states, actions, rewards

    def _initial_states(self, gen: np.random.Generator, n: int) -> np.ndarray:
        """The first draw of a chunk: one uniform per episode, in column order, through the table of mu0."""
        return self.initial._sample(np.zeros(n, dtype=np.intp), gen.random(n))

    def _compiled_tables(self) -> tuple:
        """The tables and sizes the compiled kernels take, in their argument order."""
        return (self.joint_threshold_abs, self.alias_codes, self.joint.primary, self.dense_codes,
                self.joint.n_columns, self.n_states, self.n_actions, self.action_of, self.next_of, self.reward)

    def _run_compiled(self, kernels: Any, gen: np.random.Generator, s: np.ndarray, counts: np.ndarray,
                      offsets: np.ndarray, target: tuple) -> None:
        """All rows by the compiled kernel, uniforms drawn in blocks of whole rows (the same stream, in the same order)."""
        rows_2d, rows_flat = kernels
        T = int(counts.shape[0])
        tables = self._compiled_tables()
        flat = target[0] == "flat"
        tile = min(FLAT_TILE, max(int(s.shape[0]), 1))
        code = np.empty(tile if flat else s.shape[0], dtype=np.intp)
        t = 0
        while t < T:
            end = int(np.searchsorted(offsets, offsets[t] + COMPILED_BLOCK, side="right")) - 1
            end = min(max(end, t + 1), T)
            u = gen.random(int(offsets[end] - offsets[t]))
            if flat:
                rows_flat(u, counts, offsets, t, end, s, *tables, *target[1:], code, tile)
            else:
                rows_2d(u, counts, offsets, t, end, s, *tables, *target[1:], code)
            t = end

    def run_merged(
        self,
        kernels: tuple[Any, Any],
        gens: list[np.random.Generator],
        counts: list[np.ndarray],
        positions: list[np.ndarray],
        batch: tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray],
    ) -> None:
        """Several chunks into one ragged batch by the compiled ``kernels``, a block of rows of every chunk at a time.

        ``gens[i]``, ``counts[i]``, ``positions[i]``: chunk i's generator, rows and columns in the
        batch, as :meth:`run` takes them with ``scatter``; ``batch = (states, actions, rewards,
        row_offsets)``. Each chunk draws its initial states and then its uniforms row after row
        from its own generator, as :meth:`run` does, so the episodes are the same; only the order
        in which rows of different chunks are written changes (rows of all the chunks together,
        so the batch's cache lines are filled once rather than once per chunk).
        """
        rows_flat = kernels[1]
        states_g, actions_g, rewards_g, offsets_g = batch
        N_g = int(states_g.shape[0] - actions_g.shape[0])
        tables = self._compiled_tables()
        chunks = []
        for gen, c, position in zip(gens, counts, positions):
            n = int(position.shape[0])
            s0 = self._initial_states(gen, n)
            states_g[position] = s0
            offsets = np.zeros(c.shape[0] + 1, dtype=np.int64)
            np.cumsum(c, out=offsets[1:])
            tile = min(FLAT_TILE, max(n, 1))
            chunks.append((gen, c, offsets, position, s0.astype(np.intp), np.empty(tile, dtype=np.intp), tile))
        T = int(offsets_g.shape[0] - 1)
        t = 0
        while t < T:  # rows t..end of every chunk, about COMPILED_BLOCK uniforms per chunk
            end = int(np.searchsorted(offsets_g, offsets_g[t] + COMPILED_BLOCK * len(chunks), side="right")) - 1
            end = min(max(end, t + 1), T)
            for gen, c, offsets, position, s_i, code, tile in chunks:
                stop = min(end, int(c.shape[0]))
                if stop <= t:
                    continue
                u = gen.random(int(offsets[stop] - offsets[t]))
                rows_flat(u, c, offsets, t, stop, s_i, *tables, states_g, actions_g, rewards_g, offsets_g, position,
                          N_g, code, tile)
            t = end

    def _tail(
        self,
        gen: np.random.Generator,
        s: np.ndarray,
        t0: int,
        counts: np.ndarray,
        offsets: np.ndarray,
        bufs: tuple[np.ndarray, np.ndarray, np.ndarray],
        flat_out: bool,
        n: int,
        place: tuple[np.ndarray, np.ndarray, int] | None = None,
    ) -> None:
        """Rows ``t0..T-1`` of the ``len(s)`` running columns, by prefix composition (module docstring)."""
        S, A = self.n_states, self.n_actions
        T = int(counts.shape[0])
        m0 = s.shape[0]
        base = int(offsets[t0])
        u_all = gen.random(int(offsets[T]) - base)  # the same uniforms, in the same order, as row by row
        col_len = np.searchsorted(-counts[t0:], -np.arange(m0), side="left")  # rows left per column
        block = 1 << int(np.clip(20 - int(np.ceil(np.log2(max(S, 1)))), 8, 16))
        every_state = np.arange(S, dtype=np.intp)[None, :]
        states, actions, rewards = bufs
        for k in range(m0):
            L = int(col_len[k])
            cur = int(s[k])
            for b0 in range(0, L, block):
                rows = np.arange(t0 + b0, t0 + min(b0 + block, L))
                u = u_all[offsets[rows] - base + k]
                path = self._path(cur, u, every_state)
                act, _ = self.draw(path[:-1], u)
                rew = self.reward[path[:-1] * A + act]
                if place is not None:  # a column of a larger ragged batch
                    offsets_g, position, N_g = place
                    idx = offsets_g[rows] + position[k]
                    actions[idx] = act
                    rewards[idx] = rew
                    states[N_g + idx] = path[1:]
                elif flat_out:
                    idx = offsets[rows] + k
                    actions[idx] = act
                    rewards[idx] = rew
                    states[n + idx] = path[1:]
                else:
                    actions[rows, k] = act
                    rewards[rows, k] = rew
                    states[rows + 1, k] = path[1:]
                cur = int(path[-1])

    def _path(self, cur: int, u: np.ndarray, every_state: np.ndarray) -> np.ndarray:
        r"""States ``s_0 = cur, s_1, ..., s_B`` driven by the uniforms ``u`` (B,), without a loop over time.

        Up-sweep: :math:`C_k[i] = C_{k-1}[2i+1] \circ C_{k-1}[2i]`, the map of :math:`2^k` steps;
        down-sweep: the state at the start of every block of :math:`2^{k-1}` steps from those of
        :math:`2^k` steps (Blelloch 1990, "Prefix sums and their applications", the
        work-efficient scan): O(S) operations per step.
        """
        S = self.n_states
        B = u.shape[0]
        P = 1 << max(0, (B - 1).bit_length())
        f = np.empty((P, S), dtype=np.intp)
        _, f[:B] = self.draw(every_state, u[:, None])  # f[t, s]: the next state from s at step t
        f[B:] = every_state  # identity maps pad to a power of two
        levels = [f]
        while levels[-1].shape[0] > 1:
            c = levels[-1]
            h = c.shape[0] // 2
            levels.append(c[1::2].reshape(-1).take(c[0::2] + (np.arange(h, dtype=np.intp) * S)[:, None]))
        starts = np.array([cur], dtype=np.intp)
        for c in reversed(levels[:-1]):
            h = starts.shape[0]
            nxt = np.empty(2 * h, dtype=np.intp)
            nxt[0::2] = starts
            nxt[1::2] = c.reshape(-1).take(np.arange(h, dtype=np.intp) * (2 * S) + starts)
            starts = nxt
        path = np.empty(B + 1, dtype=np.intp)
        path[:B] = starts[:B]
        path[B] = f[B - 1, starts[B - 1]]
        return path


def compiled_kernels() -> tuple[Any, Any] | None:
    """``(rows_2d, rows_flat)`` of :mod:`pgexact.sampling._compiled`, or None without numba."""
    module = compiled_module()
    return None if module is None else (module.rows_2d, module.rows_flat)


def compiled_for(transitions: float) -> tuple[Any, Any] | None:
    """The compiled kernels if they should run on a chunk of this many transitions, else None."""
    if not USE_COMPILED or transitions < COMPILED_MIN_TRANSITIONS:
        return None
    return compiled_kernels()


def _sparse_joint_table(P: Any, pi: np.ndarray, block: int = 1 << 15) -> AliasTable:
    r"""Joint (action, next-state) tables of a sparse P of shape (S*A, S): codes ``a*S + s'``.

    The joint row of state s is the concatenation of the CSR rows ``s*A .. s*A + A - 1`` (stored
    contiguously), scaled by :math:`\pi(a|s)`; rows are padded to the largest count and built in
    blocks of states, so the temporaries stay small (a 1000 x 1000 gridworld: 1e6 states).
    """
    S, A = pi.shape
    csr = P if isinstance(P, scipy.sparse.csr_array) else scipy.sparse.csr_array(P)
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    indptr, indices, data = csr.indptr, csr.indices, csr.data
    jptr = indptr[::A].astype(np.int64)  # joint row s: entries jptr[s]:jptr[s + 1]
    counts = np.diff(jptr)
    K = max(int(counts.max()) if S else 1, 1)
    threshold = np.empty(S * K)
    primary = np.empty(S * K, dtype=np.intp)
    alias = np.empty(S * K, dtype=np.intp)
    pi_flat = pi.reshape(-1)
    for s0 in range(0, S, block):
        s1 = min(S, s0 + block)
        e0, e1 = int(jptr[s0]), int(jptr[s1])
        c = counts[s0:s1]
        rows = np.repeat(np.arange(s1 - s0, dtype=np.intp), c)
        pos = np.arange(e1 - e0, dtype=np.intp) - np.repeat(jptr[s0:s1] - e0, c)
        k = np.repeat(np.arange(s0 * A, s1 * A, dtype=np.intp), np.diff(indptr[s0 * A : s1 * A + 1]))
        probs = np.zeros((s1 - s0, K))
        probs[rows, pos] = data[e0:e1] * pi_flat[k]
        codes = np.zeros((s1 - s0, K), dtype=np.intp)
        codes[rows, pos] = (k % A) * S + indices[e0:e1]
        # padded columns repeat the row's first code (probability 0: never returned)
        pad = np.arange(K)[None, :] >= c[:, None]
        codes[pad] = np.broadcast_to(codes[:, :1], codes.shape)[pad]
        thr, al = build_alias(probs)
        threshold[s0 * K : s1 * K] = thr.reshape(-1)
        primary[s0 * K : s1 * K] = codes.reshape(-1)
        alias[s0 * K : s1 * K] = np.take_along_axis(codes, al, axis=1).reshape(-1)
    return AliasTable(S, K, threshold, primary, alias)
