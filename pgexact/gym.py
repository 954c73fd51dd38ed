r"""Gymnasium interop: exact MDPs from toy-text environments, and any FiniteMDP as a ``gymnasium.Env``.

* :func:`from_gymnasium` reads the exact
  transition tables ``env.unwrapped.P[s][a] = [(prob, next_state, reward, terminated), ...]``
  that gymnasium's toy-text environments expose (FrozenLake, CliffWalking, Taxi) and returns
  the :class:`~pgexact.FiniteMDP` whose J is the expected episode return.
* :func:`make_env` exports any :class:`~pgexact.FiniteMDP` as a ``gymnasium.Env`` (it passes
  ``gymnasium.utils.env_checker.check_env``), so agents from other libraries can be trained on
  it and their returns compared with the exact values of :mod:`pgexact.exact`.

gymnasium is an optional dependency (``pip install pgexact[gym]``): importing this module does
not import it; :func:`make_env` does. :func:`from_gymnasium` only reads attributes.

Terminal states (the choice made here)
--------------------------------------
In the toy-text tables an episode ends when a transition flagged ``terminated`` is taken; the
state it enters (a hole or the goal of FrozenLake, the goal of CliffWalking, a delivered
passenger in Taxi) is *terminal*. pgexact's convention is that an episode end is an absorbing,
zero-reward state (see :class:`~pgexact.FiniteMDP`), so :func:`from_gymnasium` marks every state
entered by a terminating transition as terminal, keeps the reward of the terminating transition
(paid on entering), and replaces the terminal states' own rows by ``P[t, a, t] = 1``,
``r[t, a] = 0``. State and action indices are unchanged. This is exact — J equals the expected
episode return — provided no state reachable from ``mu0`` enters a terminal state through a
*non*-terminating transition (the episode would continue there in gymnasium but stop here);
that is checked, and violated tables raise ``ValueError``. (Taxi's tables contain such
transitions only from states with the passenger already delivered, which no episode reaches.)

``gamma`` is required and, by default (``horizon=None``), the result is the discounted
infinite-horizon problem: an environment's ``TimeLimit`` is a training device, not part of the
task. ``horizon="time_limit"`` asks for the time limit instead (``env.spec.max_episode_steps``:
100 for FrozenLake 4x4, 200 for Taxi) and, with ``gamma=1``, J is then exactly the expected
return of gymnasium's truncated episodes.
"""

from __future__ import annotations

import functools
import numbers
from typing import Any

import numpy as np
import scipy.sparse

from ._validation import as_float_array
from .models.finite_mdp import FiniteMDP, check_mdp

__all__ = ["TIME_LIMIT", "from_gymnasium", "make_env", "FiniteMDPEnv"]

#: ``horizon`` value of :func:`from_gymnasium` that asks for the environment's ``max_episode_steps``.
TIME_LIMIT = "time_limit"

_NO_TABLES = (
    "env has no exact transition table: expected env.unwrapped.P, a dict with "
    "P[s][a] = [(prob, next_state, reward, terminated), ...] over Discrete observation and action "
    "spaces, as gymnasium's toy-text environments (FrozenLake, CliffWalking, Taxi) expose"
)


def _discrete_n(space: Any, name: str) -> int:
    n = getattr(space, "n", None)
    if n is None or type(space).__name__ != "Discrete":
        raise TypeError(f"{_NO_TABLES}; env.{name} is {space!r}, not a gymnasium Discrete space")
    start = int(getattr(space, "start", 0))
    if start != 0:
        raise ValueError(f"env.{name} is Discrete(n={n}, start={start}); only start=0 is supported")
    return int(n)


def from_gymnasium(
    env: Any,
    *,
    gamma: float,
    horizon: int | None | str = None,
    mu0: Any = None,
    sparse: bool = False,
) -> FiniteMDP:
    r"""The exact :class:`~pgexact.FiniteMDP` of a gymnasium toy-text environment.

    .. math::

        P(s'|s, a) = \sum_{(p, s', \cdot, \cdot) \in T[s][a]} p, \qquad
        r(s, a) = \sum_{(p, s', \rho, \cdot) \in T[s][a]} p\, \rho

    for the table ``T = env.unwrapped.P``, with terminal states made absorbing and zero-reward
    (see the module docstring for that choice and when it is exact).

    Parameters
    ----------
    env : gymnasium.Env
        An environment (wrapped or not) whose ``unwrapped`` has the table ``P``, Discrete
        ``observation_space`` (S) and ``action_space`` (A), and ``initial_state_distrib``
        (shape (S,)) unless ``mu0`` is given.
    gamma : float
        Discount factor (required): ``0 <= gamma < 1`` for the default infinite horizon;
        ``gamma=1`` with ``horizon="time_limit"`` is the undiscounted return gymnasium reports.
    horizon : None, int or ``"time_limit"``
        ``None`` (default): discounted, infinite horizon, whatever the environment's time limit.
        An int: that finite horizon. ``"time_limit"``: ``env.spec.max_episode_steps``; if the
        environment has no time limit (CliffWalking) this is ``None`` and ``gamma < 1`` is then
        required.
    mu0 : array_like, shape (S,), optional
        Initial distribution; default ``env.unwrapped.initial_state_distrib``.
    sparse : bool
        Return ``P`` as a ``scipy.sparse.csr_array`` of shape (S*A, S).

    Raises
    ------
    TypeError
        The environment exposes no transition table (e.g. CartPole), or its spaces are not Discrete.
    ValueError
        A malformed table (a probability outside [0, 1], a next state out of range, rows not
        summing to 1), or a reachable non-terminating entry into a terminal state.

    Examples
    --------
    >>> import gymnasium as gym
    >>> mdp = from_gymnasium(gym.make("FrozenLake-v1"), gamma=0.99)
    >>> mdp.n_states, mdp.n_actions, mdp.horizon, mdp.gamma
    (16, 4, None, 0.99)
    >>> from_gymnasium(gym.make("FrozenLake-v1"), gamma=1.0, horizon="time_limit").horizon
    100
    >>> sorted(int(s) for s in mdp.terminal.nonzero()[0])  # the four holes and the goal
    [5, 7, 11, 12, 15]
    """
    u = getattr(env, "unwrapped", env)
    table = getattr(u, "P", None)
    if not isinstance(table, dict):
        raise TypeError(f"{_NO_TABLES}; {type(u).__name__} has none")
    S = _discrete_n(getattr(u, "observation_space", None), "observation_space")
    A = _discrete_n(getattr(u, "action_space", None), "action_space")
    rows, cols, probs, rewards = [], [], [], []
    term_in, cont_in = [], []  # (row, next) of terminating / continuing entries with p > 0
    for s in range(S):
        per_state = table.get(s)
        if per_state is None:
            raise ValueError(f"env.unwrapped.P has no entry for state {s} (expected states 0..{S - 1})")
        for a in range(A):
            entries = per_state.get(a)
            if entries is None or len(entries) == 0:
                raise ValueError(f"env.unwrapped.P[{s}][{a}] is missing or empty")
            for k, entry in enumerate(entries):
                try:
                    p, nxt, rew, done = entry[:4]
                    p, rew, done = float(p), float(rew), bool(done)
                except (TypeError, ValueError):
                    raise ValueError(
                        f"env.unwrapped.P[{s}][{a}][{k}] is {entry!r}, expected "
                        "(prob, next_state, reward, terminated)"
                    ) from None
                if not isinstance(nxt, numbers.Integral) or isinstance(nxt, (bool, np.bool_)):
                    raise ValueError(
                        f"env.unwrapped.P[{s}][{a}][{k}] has next state {nxt!r}, expected an "
                        f"integer state index in 0..{S - 1}"
                    )
                nxt = int(nxt)
                if not (0.0 <= p <= 1.0):
                    raise ValueError(f"env.unwrapped.P[{s}][{a}][{k}] has probability {p}, expected in [0, 1]")
                if not (0 <= nxt < S):
                    raise ValueError(
                        f"env.unwrapped.P[{s}][{a}][{k}] has next state {nxt}, expected 0..{S - 1}"
                    )
                if not np.isfinite(rew):
                    raise ValueError(f"env.unwrapped.P[{s}][{a}][{k}] has reward {rew}, expected finite")
                rows.append(s * A + a)
                cols.append(nxt)
                probs.append(p)
                rewards.append(p * rew)
                if p > 0:
                    (term_in if done else cont_in).append((s * A + a, nxt))
    rows_a = np.asarray(rows, dtype=np.int64)
    cols_a = np.asarray(cols, dtype=np.int64)
    probs_a = np.asarray(probs)
    r = np.bincount(rows_a, weights=np.asarray(rewards), minlength=S * A).reshape(S, A)
    terminal = np.zeros(S, dtype=bool)
    if term_in:
        terminal[np.asarray(term_in)[:, 1]] = True
    # terminal rows: absorbing, zero reward
    keep = ~terminal[rows_a // A]
    t_states = np.flatnonzero(terminal)
    rows_a = np.concatenate([rows_a[keep], (t_states[:, None] * A + np.arange(A)).reshape(-1)])
    cols_a = np.concatenate([cols_a[keep], np.repeat(t_states, A)])
    probs_a = np.concatenate([probs_a[keep], np.ones(t_states.size * A)])
    r[terminal] = 0.0
    P = scipy.sparse.csr_array((probs_a, (rows_a, cols_a)), shape=(S * A, S))  # duplicates summed
    if mu0 is None:
        mu0 = getattr(u, "initial_state_distrib", None)
        if mu0 is None:
            raise ValueError(
                f"{type(u).__name__} has no initial_state_distrib: pass mu0 (shape ({S},)) explicitly"
            )
    mu0 = as_float_array("mu0", mu0, shape=(S,))
    _check_terminal_entries(P, S, A, mu0, terminal, cont_in)
    if horizon == TIME_LIMIT:
        spec = getattr(env, "spec", None)
        horizon = getattr(spec, "max_episode_steps", None) if spec is not None else None
        if horizon is None and gamma == 1.0:
            raise ValueError(
                f"{type(u).__name__} has no time limit (env.spec.max_episode_steps is None): pass "
                "gamma < 1 for a discounted objective, or an explicit horizon"
            )
    elif isinstance(horizon, str):
        raise ValueError(f"horizon must be None, an int or {TIME_LIMIT!r}, got {horizon!r}")
    elif horizon is None and isinstance(gamma, numbers.Real) and gamma == 1.0:
        raise ValueError(
            "gamma is 1.0, expected 0 <= gamma < 1 for the default infinite horizon (horizon=None); "
            f"pass horizon={TIME_LIMIT!r} for the environment's time limit, or an int"
        )
    if sparse:
        return FiniteMDP(P, r, mu0, gamma, horizon)
    return FiniteMDP(P.toarray().reshape(S, A, S), r, mu0, gamma, horizon)


def _check_terminal_entries(
    P: scipy.sparse.csr_array,
    S: int,
    A: int,
    mu0: np.ndarray,
    terminal: np.ndarray,
    cont_in: list[tuple[int, int]],
) -> None:
    """Raise if a state reachable from mu0 enters a terminal state without terminating."""
    bad = [(row, nxt) for row, nxt in cont_in if terminal[nxt] and not terminal[row // A]]
    if not bad:
        return
    # states reachable from supp(mu0) through non-terminal states (terminal rows are absorbing)
    succ = (P != 0).astype(np.int8)  # (S*A, S)
    reach = (mu0 > 0) & ~terminal
    frontier = reach.copy()
    while frontier.any():
        rows = (np.flatnonzero(frontier)[:, None] * A + np.arange(A)).reshape(-1)
        nxt = np.zeros(S, dtype=bool)
        nxt[succ[rows].nonzero()[1]] = True
        frontier = nxt & ~reach & ~terminal
        reach |= frontier
    for row, nxt in bad:
        if reach[row // A]:
            raise ValueError(
                f"env.unwrapped.P[{row // A}][{row % A}] enters state {nxt} without terminating, but "
                f"other transitions terminate there: termination is not a function of the state, so "
                "making terminal states absorbing would change the episode return"
            )


# ---------------------------------------------------------------------------- export
def make_env(
    mdp: FiniteMDP, *, max_episode_steps: int | None = None, render_mode: str | None = None
) -> "FiniteMDPEnv":
    r"""Export ``mdp`` as a ``gymnasium.Env`` with Discrete(S) observations and Discrete(A) actions.

    ``reset`` draws :math:`s_0 \sim \mu_0`; ``step(a)`` draws :math:`s' \sim P(\cdot|s, a)` and
    returns the reward ``r[s, a]`` — the *expected* reward, which is all a FiniteMDP stores, so
    expected returns (and J) are exact while per-step reward noise is not modelled.
    ``terminated`` is True on entering a terminal state (:attr:`FiniteMDP.terminal`: absorbing
    and zero-reward, so stopping there leaves J unchanged); ``truncated`` is True after
    ``mdp.horizon`` steps for a finite horizon, or after ``max_episode_steps`` if given.
    With an ``mdp.action_mask``, ``info["action_mask"]`` (int8, shape (A,), gymnasium's
    convention) marks the feasible actions of the current state and ``step`` refuses an
    infeasible one. The environment does not discount: agents should use ``mdp.gamma``. Randomness comes only
    from ``reset(seed=...)`` (gymnasium's ``np_random``). The environment also exposes the
    toy-text table ``env.unwrapped.P`` (built on first access), so
    ``from_gymnasium(make_env(mdp), gamma=mdp.gamma, horizon=mdp.horizon)`` returns ``mdp``
    (without its ``action_mask``: the environment accepts every action).

    Parameters
    ----------
    mdp : FiniteMDP
        Dense or sparse.
    max_episode_steps : int, optional
        Truncate episodes after this many steps (default: ``mdp.horizon``, or never).
    render_mode : {None, "ansi"}

    Examples
    --------
    >>> import numpy as np
    >>> from gymnasium.utils.env_checker import check_env
    >>> from pgexact.mdps import gridworld
    >>> env = make_env(gridworld(3, 3, gamma=0.9, horizon=20))
    >>> check_env(env)
    >>> obs, info = env.reset(seed=0)
    >>> obs
    0
    """
    cls = _env_class()
    return cls(mdp, max_episode_steps=max_episode_steps, render_mode=render_mode)


@functools.lru_cache(maxsize=None)
def _env_class() -> type:
    try:
        import gymnasium
        from gymnasium import spaces
    except ImportError as exc:  # pragma: no cover - exercised only without the extra
        raise ImportError(
            "pgexact.gym.make_env needs gymnasium: pip install 'pgexact[gym]'"
        ) from exc

    class FiniteMDPEnv(gymnasium.Env):
        """A :class:`~pgexact.FiniteMDP` as a gymnasium environment (see :func:`make_env`)."""

        metadata = {"render_modes": ["ansi"]}

        def __init__(
            self, mdp: FiniteMDP, max_episode_steps: int | None = None, render_mode: str | None = None
        ) -> None:
            from ._validation import check_positive_int

            mdp = check_mdp(mdp)
            if max_episode_steps is not None:
                max_episode_steps = check_positive_int("max_episode_steps", max_episode_steps)
            if render_mode is not None and not (
                isinstance(render_mode, str) and render_mode in self.metadata["render_modes"]
            ):
                raise ValueError(f"render_mode must be None or 'ansi', got {render_mode!r}")
            self.mdp = mdp
            self.render_mode = render_mode
            self.observation_space = spaces.Discrete(mdp.n_states)
            self.action_space = spaces.Discrete(mdp.n_actions)
            self.max_episode_steps = max_episode_steps if max_episode_steps is not None else mdp.horizon
            self._mu0_cdf = np.cumsum(mdp.mu0)
            self._P_table: dict | None = None
            self.s: int | None = None
            self.t = 0

        def _draw(self, cdf: np.ndarray) -> int:
            u = self.np_random.random() * cdf[-1]
            return int(min(np.searchsorted(cdf, u, side="right"), cdf.size - 1))

        def _next_state(self, s: int, a: int) -> int:
            P = self.mdp.P
            if self.mdp.is_sparse:
                row = s * self.mdp.n_actions + a
                lo, hi = P.indptr[row], P.indptr[row + 1]
                return int(P.indices[lo + self._draw(np.cumsum(P.data[lo:hi]))])
            return self._draw(np.cumsum(P[s, a]))

        def _info(self) -> dict:
            if self.mdp.action_mask is None:
                return {}
            return {"action_mask": self.mdp.action_mask[self.s].astype(np.int8)}

        def reset(self, *, seed: int | None = None, options: dict | None = None):
            r"""Start an episode: draw :math:`s_0 \sim \mu_0`.

            Parameters
            ----------
            seed : int, optional
                Seeds gymnasium's ``np_random`` (the only source of randomness).
            options : dict, optional
                Ignored.

            Returns
            -------
            observation : int
                The start state.
            info : dict
                ``{"action_mask": ...}`` (int8, shape (A,)) when the MDP has an action mask, else empty.
            """
            if seed is not None and (
                isinstance(seed, (bool, np.bool_)) or not isinstance(seed, (int, np.integer)) or seed < 0
            ):
                raise TypeError(f"seed must be None or a non-negative integer, got {seed!r}")
            super().reset(seed=None if seed is None else int(seed))
            self.s = self._draw(self._mu0_cdf)
            self.t = 0
            return self.s, self._info()

        def step(self, action: Any):
            r"""Take ``action`` in the current state: reward ``r[s, a]``, next state :math:`s' \sim P(\cdot|s, a)`.

            Parameters
            ----------
            action : int
                An action in ``0 .. A - 1``, feasible in the current state.

            Returns
            -------
            observation : int
                The next state.
            reward : float
                The expected reward ``r[s, a]`` (a FiniteMDP stores no reward noise).
            terminated : bool
                True on entering a terminal state (absorbing, zero reward).
            truncated : bool
                True after ``max_episode_steps`` steps (default ``mdp.horizon``) unless terminated.
            info : dict
                As returned by :meth:`reset`.
            """
            if self.s is None:
                raise RuntimeError("call reset() before step()")
            if not self.action_space.contains(action):
                raise ValueError(f"action must be an int in 0..{self.mdp.n_actions - 1}, got {action!r}")
            a = int(action)
            if self.mdp.action_mask is not None and not self.mdp.action_mask[self.s, a]:
                raise ValueError(
                    f"action {a} is infeasible in state {self.s} (mdp.action_mask[{self.s}, {a}] is "
                    "False); info['action_mask'] lists the feasible actions"
                )
            reward = float(self.mdp.r[self.s, a])
            self.s = self._next_state(self.s, a)
            self.t += 1
            terminated = bool(self.mdp.terminal[self.s])
            truncated = bool(self.max_episode_steps is not None and self.t >= self.max_episode_steps)
            return self.s, reward, terminated, truncated and not terminated, self._info()

        def render(self) -> str | None:
            """The current state and step as a line of text (``render_mode="ansi"``), else None."""
            if self.render_mode == "ansi":
                return f"state {self.s} (t={self.t})\n"
            return None

        @property
        def P(self) -> dict:
            """Toy-text table ``P[s][a] = [(prob, next_state, r[s, a], terminal[next]), ...]``."""
            if self._P_table is None:
                self._P_table = _toy_text_table(self.mdp)
            return self._P_table

        @property
        def initial_state_distrib(self) -> np.ndarray:
            return self.mdp.mu0

    FiniteMDPEnv.__module__ = __name__
    FiniteMDPEnv.__qualname__ = "FiniteMDPEnv"
    return FiniteMDPEnv


def _toy_text_table(mdp: FiniteMDP) -> dict:
    S, A = mdp.n_states, mdp.n_actions
    P = mdp.P if mdp.is_sparse else scipy.sparse.csr_array(mdp.P.reshape(S * A, S))
    table: dict = {}
    for s in range(S):
        table[s] = {}
        for a in range(A):
            row = s * A + a
            lo, hi = P.indptr[row], P.indptr[row + 1]
            rew = float(mdp.r[s, a])  # the expected reward on every entry: sum_k p_k rew = r[s, a]
            table[s][a] = [
                (float(p), int(n), rew, bool(mdp.terminal[n]))
                for p, n in zip(P.data[lo:hi], P.indices[lo:hi])
            ]
    return table


def __getattr__(name: str) -> Any:
    if name == "FiniteMDPEnv":  # defined on first use, so that importing pgexact.gym is cheap
        return _env_class()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
