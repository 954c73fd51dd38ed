r"""The rollout kernel compiled with numba, when numba is installed (the ``fast`` extra).

Same uniforms, same arithmetic, same tables as the numpy kernel of :mod:`pgexact.sampling.kernel`,
so the episodes are bit-identical whichever kernel runs (``tests/test_compiled_kernel.py``). Per
transition: :math:`x = K u`, column :math:`j = \lfloor x \rfloor`, entry :math:`f = sK + j`,
code = primary if :math:`x < j + q_f` else alias (a branch-free select: the coin is random, so a
branch would be mispredicted half the time), then action, next state and reward from the code.

Each row is done in two passes over its running episodes (for the ragged layout, a tile of them
at a time): the codes first (the random table reads, independent across episodes, so they overlap),
then the decoding and the writes. Done in one pass, the stores into the state vector sit between
the table reads and the loop runs about 3x slower (measured on a 2-core AMD EPYC).

This module imports numba: :mod:`pgexact.sampling.kernel` imports it on first use (not when
pgexact is imported), and runs the numpy kernel when numba is not installed.
"""

from __future__ import annotations

import numba
import numpy as np

__all__: list[str] = []

jit = numba.njit(nogil=True, cache=True, boundscheck=False)


@jit
def codes(u, m, s, thr, alias, primary, dense, K, code):  # noqa: ANN001 - numba kernel
    """Codes a*S + s' of the episodes in states ``s[:m]``, from uniforms ``u[:m]``, into ``code[:m]``."""
    if dense:  # column j stands for code j
        for k in range(m):
            x = u[k] * K
            j = np.intp(x)
            f = s[k] * K + j
            al = np.intp(alias[f])
            code[k] = al + np.intp(x < thr[f]) * (j - al)
    else:  # column j of state s stands for primary[s * K + j]
        for k in range(m):
            x = u[k] * K
            f = s[k] * K + np.intp(x)
            al = np.intp(alias[f])
            code[k] = al + np.intp(x < thr[f]) * (np.intp(primary[f]) - al)


@numba.njit(nogil=True, cache=True, inline="always")
def decode(c, dense, act_of, next_of, S):  # noqa: ANN001 - numba kernel
    """``(a, s')`` of the code ``c = a*S + s'``: by table (dense) or by division (sparse)."""
    if dense:
        return np.intp(act_of[c]), np.intp(next_of[c])
    a = c // S
    return a, c - a * S


@jit
def rows_2d(u, counts, offsets, t0, t1, s, thr, alias, primary, dense, K, S, A, act_of, next_of, reward,
            states, actions, rewards, code):  # noqa: ANN001 - numba kernel
    """Rows t0..t1-1 into time-major (T+1, n), (T, n), (T, n) buffers, a whole row at a time."""
    for t in range(t0, t1):
        m = counts[t]
        i0 = offsets[t] - offsets[t0]
        codes(u[i0:i0 + m], m, s, thr, alias, primary, dense, K, code)
        rw, ac, nxt = rewards[t], actions[t], states[t + 1]
        for k in range(m):
            a, nx = decode(code[k], dense, act_of, next_of, S)
            rw[k] = reward[s[k] * A + a]
            ac[k] = a
            nxt[k] = nx
            s[k] = nx


@jit
def rows_flat(u, counts, offsets, t0, t1, s, thr, alias, primary, dense, K, S, A, act_of, next_of, reward,
              states, actions, rewards, row_base, position, state_shift, code, tile):  # noqa: ANN001
    """Rows t0..t1-1 into flat ragged buffers: episode k of row t at ``row_base[t] + position[k]``."""
    for c0 in range(0, counts[t0], tile):
        for t in range(t0, t1):
            m = min(counts[t] - c0, tile)
            if m <= 0:
                break
            i0 = offsets[t] - offsets[t0] + c0
            st = s[c0:c0 + m]  # views indexed from 0: offsets inside the loops cost ~2x
            codes(u[i0:i0 + m], m, st, thr, alias, primary, dense, K, code)
            pos = position[c0:c0 + m]
            base = row_base[t]
            for k in range(m):
                a, nx = decode(code[k], dense, act_of, next_of, S)
                d = base + pos[k]
                rewards[d] = reward[st[k] * A + a]
                actions[d] = a
                states[state_shift + d] = nx
                st[k] = nx


@jit
def alias_rows(q, amax, threshold, alias):  # noqa: ANN001 - numba kernel
    """:func:`pgexact.sampling.alias.build_alias` row by row, with the same floating-point operations.

    ``q`` (R, K): the rows scaled to sum to K, ``amax`` (R,): the first maximum of each row. The
    vectorized construction sorts and ranks; here the same counts come from two-pointer merges,
    valid because the cumulative deficits D and excesses E are non-decreasing (sums of
    non-negative terms), with the same tie rule (a D before an equal E). The tables are bit for
    bit those of the numpy construction (``tests/test_compiled_kernel.py``).
    """
    R, K = q.shape
    order = np.empty(K, dtype=np.intp)
    qs = np.empty(K)
    D = np.empty(K)
    E = np.empty(K)
    for r in range(R):
        m = 0
        for i in range(K):  # smalls first, in column order
            if not (q[r, i] >= 1.0 or i == amax[r]):
                order[m] = i
                m += 1
        p = m
        for i in range(K):  # then larges, in column order
            if q[r, i] >= 1.0 or i == amax[r]:
                order[p] = i
                p += 1
        d = 0.0
        for p in range(K):
            qs[p] = q[r, order[p]]
            if p < m:
                d = d + (1.0 - qs[p])
            D[p] = d
        e = 0.0
        for p in range(K):
            if p >= m:
                e = e + (qs[p] - 1.0)
            E[p] = e
        # smalls: alias = the large at position m + #{E_j < D_{k-1}} (capped at the last large)
        j = m
        for k in range(m):
            if k == 0:
                before = 0
            else:
                while j < K and E[j] < D[k - 1]:
                    j += 1
                before = j - m
            threshold[r, order[k]] = qs[k]
            alias[r, order[k]] = order[m + min(before, K - m - 1)]
        # larges: a = #{D_i <= E_p}; converted (a < m, not the last) -> 1 - (D_a - E_p), alias the next large
        a = 0
        for p in range(m, K):
            while a < m and D[a] <= E[p]:
                a += 1
            if a < m and p < K - 1:
                threshold[r, order[p]] = 1.0 - (D[a] - E[p])
                alias[r, order[p]] = order[p + 1]
            else:
                threshold[r, order[p]] = 1.0
                alias[r, order[p]] = order[p]
        for i in range(K):
            t = threshold[r, i]
            threshold[r, i] = 0.0 if t < 0.0 else (1.0 if t > 1.0 else t)
