r"""Per-step quantities on the M simulated steps of a batch (:attr:`pgexact.Trajectories.steps`).

Every estimator is a per-episode sum of per-step weights times the score; these helpers compute
the weights' ingredients as flat arrays of length M, in the batch's storage order, with no
Python loop over time (reverse recursions use :meth:`pgexact.Trajectories.reverse_scan`), so
they cost O(M) whatever the layout: full ``(T, N)`` rows or ragged geometric episodes.

Notation: d = ``trajs.discount``, real steps :math:`t < L` (``trajs.lengths``),
:math:`G_t = \sum_{t \le t' < L} d^{t'-t} r_{t'}`.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import scipy.sparse

from .._validation import as_float_array
from ..policies.softmax import SoftmaxPolicy
from ..sampling.trajectories import Trajectories

__all__: list[str] = []


def real(trajs: Trajectories) -> np.ndarray:
    """Real steps (before absorption) as 0/1 floats, shape (M,)."""
    return trajs.steps.real.astype(np.float64)


def discounts(trajs: Trajectories) -> np.ndarray:
    r""":math:`d^t`, shape (M,)."""
    if trajs.discount == 1.0:
        return np.ones(trajs.n_transitions)
    return trajs.discounts()[trajs.steps.time]


def rewards_to_go(trajs: Trajectories) -> np.ndarray:
    r""":math:`G_t` on real steps, 0 after, shape (M,)."""
    return trajs._reverse_scan(trajs.flat_rewards * real(trajs), trajs.discount)


def column(trajs: Trajectories) -> np.ndarray:
    """Column of each step in the row storage, shape (M,)."""
    sv = trajs.steps
    return np.arange(trajs.n_transitions, dtype=np.intp) - trajs.row_offsets[sv.time]


def values(trajs: Trajectories, V: Any, name: str = "V") -> tuple[np.ndarray, np.ndarray]:
    r"""``(V(s_t), V(s_{t+1}))`` per step, for V of shape (S,) or time-indexed (T, S).

    For a time-indexed V the value after step T-1 is 0 (nothing is left of a finite-horizon
    episode).
    """
    S, T = trajs.n_states, trajs.n_steps
    v = as_float_array(name, V)
    sv = trajs.steps
    if v.shape == (S,):
        return v[sv.state], v[sv.next_state]
    if v.shape == (T, S):
        nxt = np.zeros(trajs.n_transitions)
        ok = sv.time + 1 < T
        nxt[ok] = v[sv.time[ok] + 1, sv.next_state[ok]]
        return v[sv.time, sv.state], nxt
    raise ValueError(f"{name} must have shape (S,)=({S},) or (T, S)=({T}, {S}), got {v.shape}")


def table(trajs: Trajectories, x: Any, name: str) -> np.ndarray:
    """``x[s_t, a_t]`` or ``x[t, s_t, a_t]`` per step, shape (M,)."""
    S, A, T = trajs.n_states, trajs.n_actions, trajs.n_steps
    arr = as_float_array(name, x)
    sv = trajs.steps
    if arr.shape == (S, A):
        return arr[sv.state, sv.action]
    if arr.shape == (T, S, A):
        return arr[sv.time, sv.state, sv.action]
    raise ValueError(f"{name} must have shape (S, A)=({S}, {A}) or (T, S, A)=({T}, {S}, {A}), got {arr.shape}")


def done(trajs: Trajectories) -> np.ndarray:
    """The last real step of an episode that ended (no bootstrap after it), shape (M,) bool."""
    sv = trajs.steps
    return (sv.time == trajs.lengths[sv.episode] - 1) & ~trajs.truncated[sv.episode]


def td_errors(trajs: Trajectories, v: np.ndarray, v_next: np.ndarray) -> np.ndarray:
    r""":math:`\delta_t = r_t + d (1 - \text{done}_t) V(s_{t+1}) - V(s_t)` on real steps, 0 after."""
    d = trajs.discount
    with np.errstate(over="ignore", invalid="ignore"):
        delta = trajs.flat_rewards + d * np.where(done(trajs), 0.0, v_next) - v
    return np.where(trajs.steps.real, delta, 0.0)


def gae(trajs: Trajectories, v: np.ndarray, v_next: np.ndarray, lam: float) -> np.ndarray:
    r"""GAE(λ) advantages :math:`\hat A_t = \delta_t + d\lambda \hat A_{t+1}` on real steps, 0 after."""
    return trajs._reverse_scan(td_errors(trajs, v, v_next), trajs.discount * lam)


def n_step_returns(trajs: Trajectories, v: np.ndarray, v_next: np.ndarray, n: int) -> np.ndarray:
    r""":math:`G^{(n)}_t = \sum_{k<n'} d^k r_{t+k} + d^{n'} \bar V_{t+n'}` with :math:`n' = \min(n, L - t)`.

    :math:`\bar V_{t+n'} = V(s_{t+n'})` inside the episode; at its end, :math:`V(s_L)` if the
    episode is truncated, else 0 (it ended). From the rewards-to-go:
    :math:`\sum_{k<n'} d^k r_{t+k} = G_t - d^{n'} G_{t+n'}`; O(M) whatever n.
    """
    sv = trajs.steps
    d = trajs.discount
    G = rewards_to_go(trajs)
    L = trajs.lengths[sv.episode]
    k = np.minimum(n, np.maximum(L - sv.time, 1))  # steps summed (>= 1 on real steps)
    col = column(trajs)
    t_end = sv.time + k  # time of the bootstrap state
    inside = t_end < L
    rows = trajs.row_offsets
    idx_in = np.where(inside, rows[np.minimum(t_end, trajs.n_steps - 1)] + col, 0)
    idx_prev = rows[t_end - 1] + col  # the step before the bootstrap state (a real step)
    dk = np.power(d, k.astype(np.float64))
    tail = np.where(inside, G[idx_in], 0.0)
    boot = np.where(inside | trajs.truncated[sv.episode], v_next[idx_prev], 0.0)
    out = G - dk * tail + dk * boot
    return np.where(sv.real, out, 0.0)


def score_sums(trajs: Trajectories, policy: SoftmaxPolicy, theta: np.ndarray, w: np.ndarray) -> np.ndarray:
    r""":math:`\sum_t w_t \nabla\log\pi(a_t|s_t)` per episode, shape (N, n_params)."""
    return np.asarray(episode_matrix(trajs, w) @ policy.score(theta).reshape(-1, policy.n_params))


def episode_matrix(trajs: Trajectories, w: np.ndarray) -> scipy.sparse.csr_array:
    """``C[n, s*A + a] = sum of w over episode n's steps at (s, a)``, shape (N, S*A)."""
    sv = trajs.steps
    sa = sv.state.astype(np.intp) * trajs.n_actions + sv.action
    with np.errstate(over="ignore", invalid="ignore"):
        return scipy.sparse.csr_array(
            (np.asarray(w, dtype=np.float64), (sv.episode, sa)),
            shape=(trajs.n_episodes, trajs.n_states * trajs.n_actions),
        )


def as_step_weights(trajs: Trajectories, weights: Any, name: str) -> np.ndarray:
    """Per-step weights from a padded ``(N, T)`` array or a flat ``(M,)`` one."""
    N, T, M = trajs.n_episodes, trajs.n_steps, trajs.n_transitions
    w = as_float_array(name, weights)
    if w.shape == (N, T):
        sv = trajs.steps
        return w[sv.episode, sv.time]
    if w.shape == (M,):
        return w
    raise ValueError(
        f"{name} must have shape (N, T)=({N}, {T}) (padded) or (M,)=({M},) (one per step of "
        f"trajs.steps), got {w.shape}"
    )
