r"""The rollout kernel compiled with numba, when numba is installed (the ``fast`` extra).

Same uniforms, same arithmetic, same tables as the numpy kernel of :mod:`pgexact.sampling.kernel`,
so the episodes are bit-identical whichever kernel runs (``tests/test_compiled_kernel.py``). Per
transition: :math:`x = K u`, column :math:`j = \lfloor x \rfloor`, entry :math:`f = sK + j`,
code = primary if :math:`x < j + q_f` else alias (a branch-free select: the coin is random, so a
branch would be mispredicted half the time), then action, next state and reward from the code.

Each row is done in two passes over its running episodes (optionally a tile of them at a
time): the codes first (the random table reads, independent across episodes, so they overlap),
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


@jit
def rows_2d(u, counts, offsets, t0, t1, s, thr, alias, primary, dense, K, S, A, act_of, next_of, reward,
            states, actions, rewards, code, tile):  # noqa: ANN001 - numba kernel
    """Rows t0..t1-1 into time-major (T+1, n), (T, n), (T, n) buffers, ``tile`` episodes at a time."""
    for c0 in range(0, counts[t0], tile):
        for t in range(t0, t1):
            m = min(counts[t] - c0, tile)
            if m <= 0:
                break
            i0 = offsets[t] - offsets[t0] + c0
            st = s[c0:c0 + m]  # views indexed from 0: offsets inside the loops cost ~2x
            codes(u[i0:i0 + m], m, st, thr, alias, primary, dense, K, code)
            rw, ac, nxt = rewards[t, c0:c0 + m], actions[t, c0:c0 + m], states[t + 1, c0:c0 + m]
            for k in range(m):
                c = code[k]
                if dense:
                    a = np.intp(act_of[c])
                    nx = np.intp(next_of[c])
                else:
                    a = c // S
                    nx = c - a * S
                rw[k] = reward[st[k] * A + a]
                ac[k] = a
                nxt[k] = nx
                st[k] = nx


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
            st = s[c0:c0 + m]
            codes(u[i0:i0 + m], m, st, thr, alias, primary, dense, K, code)
            pos = position[c0:c0 + m]
            base = row_base[t]
            for k in range(m):
                c = code[k]
                if dense:
                    a = np.intp(act_of[c])
                    nx = np.intp(next_of[c])
                else:
                    a = c // S
                    nx = c - a * S
                d = base + pos[k]
                rewards[d] = reward[st[k] * A + a]
                actions[d] = a
                states[state_shift + d] = nx
                st[k] = nx
