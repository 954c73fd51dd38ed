r"""Sampled episodes: :class:`Trajectories`, stored time-major and ragged, with per-step views.

Layout
------
Step t of the batch is a *row*; row t holds the episodes still running at t. Episodes sit in
columns ordered by decreasing number of simulated steps (``column_order[k]`` is the episode in
column k), so row t is the first :math:`m_t` columns and the rows together hold exactly the
:math:`M = \sum_n L_n` simulated steps, flattened row after row. States have one more row per
episode (the state after its last step): ``N + M`` of them. With a fixed horizon every row is
full (:math:`m_t = N`, columns in episode order) and the flat arrays are the time-major
``(T, N)`` buffers the kernel filled; under geometric stopping memory is proportional to the
real transitions, however long the longest episode.

Estimators read the per-step view :attr:`Trajectories.steps` (arrays of length M: episode, time,
state, action, reward, next state) and reduce per episode; the padded batch-first views
(:attr:`~Trajectories.states`, :attr:`~Trajectories.actions`, :attr:`~Trajectories.rewards`,
:attr:`~Trajectories.mask`, ...) remain for direct inspection and cost
``N x n_steps`` memory for geometric batches.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import ReadOnlyOnCopy, as_float_array
from ._scan import reverse_scan

__all__ = ["Trajectories", "StepView"]

OBJECTIVES = ("finite", "truncated", "geometric")


@dataclass(frozen=True, eq=False)
class StepView(ReadOnlyOnCopy):
    """The M simulated steps of a batch, one entry per step, in storage order (row after row).

    Attributes
    ----------
    episode : numpy.ndarray, shape (M,), intp
        Episode index n of each step.
    time : numpy.ndarray, shape (M,), intp
        Time t within its episode.
    state, action : numpy.ndarray, shape (M,)
        :math:`s_t`, :math:`a_t`.
    reward : numpy.ndarray, shape (M,), float64
        :math:`r(s_t, a_t)`.
    next_state : numpy.ndarray, shape (M,)
        :math:`s_{t+1}`.
    real : numpy.ndarray, shape (M,), bool
        ``t < lengths[n]`` (the step happened before absorption).
    last : numpy.ndarray, shape (M,), bool
        The episode's last simulated step (``t = stops[n] - 1``).
    """

    episode: np.ndarray
    time: np.ndarray
    state: np.ndarray
    action: np.ndarray
    reward: np.ndarray
    next_state: np.ndarray
    real: np.ndarray
    last: np.ndarray


class Trajectories(ReadOnlyOnCopy):
    r"""A batch of sampled episodes (read-only), stored time-major and ragged (module docstring).

    Built by :func:`pgexact.rollout`, :func:`pgexact.rollout_chunks` and
    :func:`pgexact.estimators.enumerate_trajectories`; combined with :meth:`concatenate`.

    Attributes
    ----------
    lengths : numpy.ndarray, shape (N,), int64
        Number of real steps: the first t with :math:`s_t` terminal (absorbing, zero reward),
        or the end of the episode (T, or the geometric stopping time).
    stops : numpy.ndarray, shape (N,), int64
        Number of simulated steps: T, or the geometric stopping time L. Steps after an
        absorption but before the stop are simulated in the terminal state (the exact core's
        chain keeps acting there).
    absorbed : numpy.ndarray, shape (N,), bool
        The episode reached a terminal state within its simulated steps.
    truncated : numpy.ndarray, shape (N,), bool
        The episode was cut by the horizon of a *truncated* discounted objective: its return
        continues after T, and a value bootstrap :math:`V(s_T)` is legitimate. Always False for
        finite-horizon MDPs and under geometric stopping (the stop *is* the discount).
    gamma : float
        The MDP's discount.
    discount : float
        The per-step discount an estimator must apply: ``gamma``, or 1 under geometric stopping.
    objective : str
        ``"finite"``, ``"truncated"`` (estimates :math:`J_T`, not J) or ``"geometric"``.
    n_states, n_actions : int
    counts : numpy.ndarray, shape (T,), int64
        :math:`m_t`, the number of episodes simulated at step t (non-increasing).
    column_order : numpy.ndarray, shape (N,), intp
        Episode of each column.
    flat_states : numpy.ndarray, shape (N + M,), int32
    flat_actions : numpy.ndarray, shape (M,), int32
    flat_rewards : numpy.ndarray, shape (M,), float64
        The storage, row after row.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import rollout
    >>> from pgexact.mdps import random_mdp
    >>> tr = rollout(random_mdp(3, 2, gamma=0.9, seed=0), np.full((3, 2), 0.5), 1000, geometric=True, seed=0)
    >>> bool(tr.n_transitions == tr.stops.sum() == tr.steps.reward.shape[0])  # no padding stored
    True
    >>> G = tr.per_episode_sum(tr.steps.reward)  # undiscounted return per episode
    >>> bool(np.allclose(G, (tr.rewards * tr.mask).sum(axis=1)))  # the padded view agrees
    True
    """

    def __init__(
        self,
        *,
        flat_states: np.ndarray,
        flat_actions: np.ndarray,
        flat_rewards: np.ndarray,
        counts: np.ndarray,
        column_order: np.ndarray,
        lengths: np.ndarray,
        stops: np.ndarray,
        absorbed: np.ndarray,
        truncated: np.ndarray,
        gamma: float,
        discount: float,
        objective: str,
        n_states: int,
        n_actions: int,
    ) -> None:
        _check_storage(
            flat_states, flat_actions, flat_rewards, counts, column_order, lengths, stops, absorbed,
            truncated, gamma, discount, objective, n_states, n_actions,
        )
        self._set(
            flat_states=np.asarray(flat_states), flat_actions=np.asarray(flat_actions),
            flat_rewards=np.array(flat_rewards, dtype=np.float64), counts=counts,
            column_order=column_order, lengths=lengths, stops=stops, absorbed=absorbed,
            truncated=truncated, gamma=gamma, discount=discount, objective=objective,
            n_states=n_states, n_actions=n_actions,
        )

    @classmethod
    def _trusted(cls, **fields: Any) -> "Trajectories":
        """Built from buffers the sampler itself filled (consistent by construction): no checks."""
        out = cls.__new__(cls)
        out._set(**fields)
        return out

    def _set(
        self, *, flat_states: np.ndarray, flat_actions: np.ndarray, flat_rewards: np.ndarray,
        counts: np.ndarray, column_order: np.ndarray, lengths: np.ndarray, stops: np.ndarray,
        absorbed: np.ndarray, truncated: np.ndarray, gamma: float, discount: float, objective: str,
        n_states: int, n_actions: int,
    ) -> None:
        self.flat_states, self.flat_actions, self.flat_rewards = flat_states, flat_actions, flat_rewards
        self.counts = np.asarray(counts, dtype=np.int64)
        self.column_order = np.asarray(column_order, dtype=np.intp)
        self.lengths, self.stops = np.asarray(lengths, dtype=np.int64), np.asarray(stops, dtype=np.int64)
        self.absorbed, self.truncated = np.asarray(absorbed, dtype=bool), np.asarray(truncated, dtype=bool)
        self.gamma, self.discount, self.objective = float(gamma), float(discount), objective
        self.n_states, self.n_actions = int(n_states), int(n_actions)
        for arr in (
            self.flat_states, self.flat_actions, self.flat_rewards, self.counts, self.column_order,
            self.lengths, self.stops, self.absorbed, self.truncated,
        ):
            arr.flags.writeable = False

    def __repr__(self) -> str:
        return (
            f"Trajectories(n_episodes={self.n_episodes}, n_steps={self.n_steps}, "
            f"n_transitions={self.n_transitions}, objective={self.objective!r}, gamma={self.gamma!r}, "
            f"n_states={self.n_states}, n_actions={self.n_actions})"
        )

    def __setattr__(self, name: str, value: Any) -> None:
        if name in self.__dict__:
            raise AttributeError(f"Trajectories are read-only: cannot set {name}")
        object.__setattr__(self, name, value)

    # ------------------------------------------------------------------ sizes
    @property
    def n_episodes(self) -> int:
        """N."""
        return int(self.lengths.shape[0])

    @property
    def n_steps(self) -> int:
        """T, the number of rows (the longest episode under geometric stopping)."""
        return int(self.counts.shape[0])

    @property
    def n_transitions(self) -> int:
        """M, the number of simulated steps stored."""
        return int(self.flat_actions.shape[0])

    @property
    def is_full(self) -> bool:
        """Every row holds every episode (fixed horizons): the flat arrays are ``(T, N)`` buffers."""
        return self.n_transitions == self.n_steps * self.n_episodes

    @functools.cached_property
    def row_offsets(self) -> np.ndarray:
        """Start of row t in the flat step arrays, shape (T + 1,)."""
        out = np.zeros(self.n_steps + 1, dtype=np.int64)
        np.cumsum(self.counts, out=out[1:])
        return out

    # ------------------------------------------------------------------ per-step view
    @functools.cached_property
    def steps(self) -> StepView:
        """Per-step arrays over the M simulated steps (:class:`StepView`), computed once."""
        N, T, M = self.n_episodes, self.n_steps, self.n_transitions
        if self.is_full:
            time = np.repeat(np.arange(T, dtype=np.intp), N)
            column = np.tile(np.arange(N, dtype=np.intp), T)
            state = self.flat_states[:M]
        else:
            time = np.repeat(np.arange(T, dtype=np.intp), self.counts)
            column = np.arange(M, dtype=np.intp) - np.repeat(self.row_offsets[:-1], self.counts)
            prev = np.concatenate([[N], self.counts[:-1]])  # size of the state row t
            state_index = np.arange(M, dtype=np.intp) + N - np.repeat(prev, self.counts)
            state = self.flat_states[state_index]
        episode = self.column_order[column] if not _is_identity(self.column_order) else column
        return StepView(
            episode=episode,
            time=time,
            state=state,
            action=self.flat_actions,
            reward=self.flat_rewards,
            next_state=self.flat_states[N:],
            real=time < self.lengths[episode],
            last=time == self.stops[episode] - 1,
        )

    @property
    def final_states(self) -> np.ndarray:
        """The state after each episode's last simulated step, shape (N,)."""
        N = self.n_episodes
        out = np.empty(N, dtype=self.flat_states.dtype)
        ends = self.steps.last
        out[self.steps.episode[ends]] = self.steps.next_state[ends]
        return out

    def _step_values(self, name: str, values: Any, ndim: tuple[int, ...]) -> np.ndarray:
        """``values`` as a float64 array of finite numbers with one row per simulated step."""
        arr = as_float_array(name, values)
        M = self.n_transitions
        if arr.ndim not in ndim or arr.shape[0] != M:
            want = " or ".join({1: "(M,)", 2: "(M, k)"}[d] for d in ndim)
            raise ValueError(
                f"{name} must have shape {want} with M = n_transitions = {M} (one entry per simulated "
                f"step, as tr.steps), got {arr.shape}"
            )
        return arr

    def per_episode_sum(self, values: Any) -> np.ndarray:
        """``out[n] = sum of values over episode n's steps``, values shape (M,) or (M, k).

        ``values`` must hold finite numbers, one row per simulated step (``ValueError`` naming it
        otherwise).
        """
        return self._per_episode_sum(self._step_values("values", values, (1, 2)))

    def _per_episode_sum(self, values: np.ndarray) -> np.ndarray:
        """:meth:`per_episode_sum` of a checked float64 array (the estimators' kernel)."""
        N = self.n_episodes
        if self.is_full and values.ndim == 1:
            v = values.reshape(self.n_steps, N).sum(axis=0)
            out = np.empty(N)
            out[self.column_order] = v
            return out
        if values.ndim == 1:
            return np.bincount(self.steps.episode, weights=values, minlength=N)
        out = np.zeros((N,) + values.shape[1:])
        np.add.at(out, self.steps.episode, values)
        return out

    def reverse_scan(self, x: Any, factor: float) -> np.ndarray:
        r""":math:`y_t = x_t + c\, y_{t+1}` within each episode (0 after its last step), shape (M,).

        Computed by :func:`pgexact.sampling._scan.reverse_scan` along time on blocks of columns
        of similar length (padding at most doubles a block), so there is no Python loop over time.
        ``x`` holds finite numbers, shape (M,) (one per simulated step); ``factor`` is the
        discount c, a real number in [0, 1].
        """
        x = self._step_values("x", x, (1,))
        if isinstance(factor, (bool, np.bool_)) or not isinstance(factor, (int, float, np.integer, np.floating)):
            raise TypeError(f"factor must be a real number in [0, 1], got {factor!r}")
        if not 0.0 <= float(factor) <= 1.0:
            raise ValueError(f"factor is {factor}, expected a discount in [0, 1]")
        return self._reverse_scan(x, float(factor))

    def _reverse_scan(self, x: np.ndarray, factor: float) -> np.ndarray:
        """:meth:`reverse_scan` of a checked float64 array (the estimators' kernel)."""
        T, N = self.n_steps, self.n_episodes
        if T == 0:
            return x.copy()
        if self.is_full:
            X = x.reshape(T, N)
            return reverse_scan(X, factor).reshape(-1)
        out = np.empty_like(x)
        col_len = self.stops[self.column_order]  # non-increasing
        start = 0
        while start < N:
            L0 = int(col_len[start])
            # columns whose length is at least half the block's first one
            stop = int(np.searchsorted(-col_len, -(L0 // 2 + (L0 % 2)), side="right"))
            stop = max(stop, start + 1)
            if L0 == 0:
                break
            cols = np.arange(start, stop)
            t = np.arange(L0)[:, None]
            valid = t < col_len[cols][None, :]
            idx = self.row_offsets[:L0, None] + cols[None, :]
            idx = np.where(valid, idx, 0)
            X = np.where(valid, x[idx], 0.0)
            Y = reverse_scan(X, factor)
            out[idx[valid]] = Y[valid]
            start = stop
        return out

    # ------------------------------------------------------------------ padded batch-first views
    def _padded(self, flat: np.ndarray, extra_row: bool, fill: Any) -> np.ndarray:
        N, T = self.n_episodes, self.n_steps
        rows = T + 1 if extra_row else T
        if self.is_full:
            out = flat.reshape(rows, N).T
            if not _is_identity(self.column_order):
                out = out[np.argsort(self.column_order)]
            return out
        sv = self.steps
        out = np.full((N, rows), fill, dtype=flat.dtype)
        if extra_row:
            out[sv.episode, sv.time] = sv.state
            out[sv.episode[sv.last], sv.time[sv.last] + 1] = sv.next_state[sv.last]
            # states after the stop hold the final state
            fin = np.zeros(N, dtype=flat.dtype)
            fin[sv.episode[sv.last]] = sv.next_state[sv.last]
            hold = np.arange(rows)[None, :] > self.stops[:, None]
            out = np.where(hold, fin[:, None], out)
        else:
            out[sv.episode, sv.time] = flat
        return out

    @functools.cached_property
    def states(self) -> np.ndarray:
        """``states[n, t] = s_t`` padded batch-first, shape (N, T+1) (after the stop: the final state)."""
        out = self._padded(self.flat_states, True, 0)
        out.flags.writeable = False
        return out

    @functools.cached_property
    def actions(self) -> np.ndarray:
        """``actions[n, t] = a_t`` padded with 0, shape (N, T)."""
        out = self._padded(self.flat_actions, False, 0)
        out.flags.writeable = False
        return out

    @functools.cached_property
    def rewards(self) -> np.ndarray:
        """``rewards[n, t] = r(s_t, a_t)`` padded with 0, shape (N, T)."""
        out = self._padded(self.flat_rewards, False, 0.0)
        out.flags.writeable = False
        return out

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

    # ------------------------------------------------------------------ combination
    @staticmethod
    def concatenate(parts: "list[Trajectories]") -> "Trajectories":
        """Stack batches along episodes (episodes of ``parts[0]`` first, then ``parts[1]``, ...).

        The batches must come from the same sampling setup: same objective, γ, discount, state
        and action counts, and (fixed horizons) the same number of steps.
        """
        if isinstance(parts, Trajectories):
            raise TypeError("parts must be a list of Trajectories, got one Trajectories (wrap it: [tr])")
        if isinstance(parts, (str, bytes, np.ndarray)):
            raise TypeError(f"parts must be a list of Trajectories, got {type(parts).__name__}")
        try:
            parts = list(parts)
        except TypeError:
            raise TypeError(f"parts must be a list of Trajectories, got {type(parts).__name__}") from None
        if not parts:
            raise ValueError("parts must contain at least one Trajectories")
        first = parts[0]
        for i, p in enumerate(parts):
            if not isinstance(p, Trajectories):
                raise TypeError(f"parts[{i}] must be Trajectories, got {type(p).__name__}")
            for attr in ("objective", "gamma", "discount", "n_states", "n_actions"):
                if getattr(p, attr) != getattr(first, attr):
                    raise ValueError(
                        f"parts[{i}].{attr} is {getattr(p, attr)!r} but parts[0].{attr} is "
                        f"{getattr(first, attr)!r}: batches from different sampling setups cannot be mixed"
                    )
            if first.objective != "geometric" and p.n_steps != first.n_steps:
                raise ValueError(
                    f"parts[{i}] has {p.n_steps} steps but parts[0] has {first.n_steps}: "
                    "fixed-horizon batches must share their horizon"
                )
        if len(parts) == 1:
            return first
        lengths = np.concatenate([p.lengths for p in parts])
        stops = np.concatenate([p.stops for p in parts])
        common = dict(
            lengths=lengths,
            stops=stops,
            absorbed=np.concatenate([p.absorbed for p in parts]),
            truncated=np.concatenate([p.truncated for p in parts]),
            gamma=first.gamma,
            discount=first.discount,
            objective=first.objective,
            n_states=first.n_states,
            n_actions=first.n_actions,
        )
        if first.objective != "geometric":
            T = first.n_steps

            def rows(p: Trajectories, flat: np.ndarray, r: int) -> np.ndarray:
                X = flat.reshape(r, p.n_episodes)
                return X if _is_identity(p.column_order) else X[:, np.argsort(p.column_order)]

            N = int(lengths.shape[0])
            return Trajectories._trusted(
                flat_states=np.concatenate([rows(p, p.flat_states, T + 1) for p in parts], axis=1).reshape(-1),
                flat_actions=np.concatenate([rows(p, p.flat_actions, T) for p in parts], axis=1).reshape(-1),
                flat_rewards=np.concatenate([rows(p, p.flat_rewards, T) for p in parts], axis=1).reshape(-1),
                counts=np.full(T, N, dtype=np.int64),
                column_order=np.arange(N),
                **common,
            )
        # ragged: re-sort all episodes by decreasing length and rebuild the rows
        shift = np.cumsum([0] + [p.n_episodes for p in parts])
        ep = np.concatenate([p.steps.episode + shift[i] for i, p in enumerate(parts)])
        tt = np.concatenate([p.steps.time for p in parts])
        st = np.concatenate([p.steps.state for p in parts])
        ac = np.concatenate([p.flat_actions for p in parts])
        rw = np.concatenate([p.flat_rewards for p in parts])
        nx = np.concatenate([p.steps.next_state for p in parts])
        return from_steps(ep, tt, st, ac, rw, nx, **common)


def from_steps(
    episode: np.ndarray,
    time: np.ndarray,
    state: np.ndarray,
    action: np.ndarray,
    reward: np.ndarray,
    next_state: np.ndarray,
    **fields: Any,
) -> Trajectories:
    """Build the ragged storage from per-step arrays in any order (``fields``: lengths, stops, ...)."""
    stops = np.asarray(fields["stops"], dtype=np.int64)
    N = stops.shape[0]
    order = np.argsort(-stops, kind="stable")
    col_of = np.empty(N, dtype=np.intp)
    col_of[order] = np.arange(N)
    T = int(stops.max()) if N else 0
    counts = np.searchsorted(-stops[order], -np.arange(T), side="left").astype(np.int64)
    # counts[t] = #{n : stops[n] > t}
    offsets = np.zeros(T + 1, dtype=np.int64)
    np.cumsum(counts, out=offsets[1:])
    pos = offsets[time] + col_of[episode]
    M = int(offsets[-1])
    fa = np.empty(M, dtype=np.int32)
    fr = np.empty(M, dtype=np.float64)
    fs = np.empty(N + M, dtype=np.int32)
    fa[pos] = action
    fr[pos] = reward
    first = time == 0
    fs[col_of[episode[first]]] = state[first]
    fs[N + pos] = next_state
    return Trajectories._trusted(
        flat_states=fs, flat_actions=fa, flat_rewards=fr, counts=counts, column_order=order, **fields
    )


def _int_vector(name: str, value: Any, length: int | None, upper: int | None = None) -> np.ndarray:
    if value is None or isinstance(value, (str, bytes)):
        raise TypeError(f"{name} must be a 1-D integer array, got {type(value).__name__}")
    arr = np.asarray(value)
    if arr.dtype.kind not in "iu" or arr.ndim != 1:
        raise TypeError(f"{name} must be a 1-D integer array, got dtype {arr.dtype} and shape {arr.shape}")
    if length is not None and arr.shape[0] != length:
        raise ValueError(f"{name} must have length {length}, got {arr.shape[0]}")
    bad = (arr < 0) if upper is None else ((arr < 0) | (arr >= upper))
    if bad.any():
        i = int(np.argmax(bad))
        bound = "" if upper is None else f" and < {upper}"
        raise ValueError(f"{name}[{i}] is {arr[i]}, expected >= 0{bound}")
    return arr


def _bool_vector(name: str, value: Any, length: int) -> np.ndarray:
    arr = np.asarray(value) if value is not None and not isinstance(value, (str, bytes)) else None
    if arr is None or arr.dtype != bool or arr.shape != (length,):
        raise TypeError(f"{name} must be a boolean array of shape ({length},), got {value!r:.60}")
    return arr


def _check_storage(
    flat_states: Any, flat_actions: Any, flat_rewards: Any, counts: Any, column_order: Any,
    lengths: Any, stops: Any, absorbed: Any, truncated: Any, gamma: Any, discount: Any,
    objective: Any, n_states: Any, n_actions: Any,
) -> None:
    """The storage layout of :class:`Trajectories`: each argument named when it breaks it."""
    if not isinstance(objective, str) or objective not in OBJECTIVES:
        raise ValueError(f"objective must be one of {OBJECTIVES}, got {objective!r:.60}")
    for name, v in (("n_states", n_states), ("n_actions", n_actions)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, np.integer)) or v < 1:
            raise TypeError(f"{name} must be a positive int, got {v!r:.60}")
    for name, v in (("gamma", gamma), ("discount", discount)):
        if isinstance(v, (bool, np.bool_)) or not isinstance(v, (int, float, np.integer, np.floating)):
            raise TypeError(f"{name} must be a real number in [0, 1], got {type(v).__name__}")
        if not 0.0 <= float(v) <= 1.0:
            raise ValueError(f"{name} must be in [0, 1], got {v}")
    st = _int_vector("stops", stops, None)
    N = st.shape[0]
    ln = _int_vector("lengths", lengths, N)
    over = ln > st
    if over.any():
        i = int(np.argmax(over))
        raise ValueError(f"lengths[{i}] is {ln[i]}, expected <= stops[{i}] = {st[i]}")
    _bool_vector("absorbed", absorbed, N)
    _bool_vector("truncated", truncated, N)
    order = _int_vector("column_order", column_order, N, upper=max(N, 1))
    if N and np.bincount(order, minlength=N).max() != 1:
        raise ValueError("column_order must be a permutation of range(N), N = len(stops)")
    T = int(st.max()) if N else 0
    want = np.searchsorted(-np.sort(st)[::-1], -np.arange(T), side="left")  # #{n : stops[n] > t}
    ct = _int_vector("counts", counts, T)
    if not np.array_equal(ct, want) or (N and np.any(np.diff(st[order]) > 0)):
        raise ValueError(
            "counts[t] must be the number of episodes with stops > t, and column_order must sort "
            "the episodes by non-increasing stops"
        )
    M = int(want.sum())
    _int_vector("flat_states", flat_states, N + M, upper=int(n_states))
    _int_vector("flat_actions", flat_actions, M, upper=int(n_actions))
    if flat_rewards is None or isinstance(flat_rewards, (str, bytes)):
        raise TypeError(f"flat_rewards must be a 1-D float array, got {type(flat_rewards).__name__}")
    rw = np.asarray(flat_rewards)
    if rw.dtype.kind not in "iuf" or rw.shape != (M,):
        raise TypeError(f"flat_rewards must be a 1-D real array of length {M}, got dtype {rw.dtype}, shape {rw.shape}")
    bad = ~np.isfinite(rw)
    if bad.any():
        i = int(np.argmax(bad))
        raise ValueError(f"flat_rewards[{i}] is {rw[i]}, expected a finite number")


def _is_identity(order: np.ndarray) -> bool:
    return bool(order.shape[0] == 0 or (order[0] == 0 and np.all(np.diff(order) == 1)))
