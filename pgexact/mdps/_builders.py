r"""Builders of finite MDPs: random instances, chains, gridworlds, bandits, the short corridor.

Every builder returns a validated :class:`pgexact.FiniteMDP`; terminal states are absorbing and
zero-reward (see :class:`~pgexact.FiniteMDP`). Random builders take an explicit ``seed``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse

from .._random import Seed, as_generator
from .._validation import (
    ReadOnlyOnCopy,
    as_float_array,
    check_bool,
    check_memory,
    check_positive_finite,
    check_positive_int,
    check_real,
)
from ..models.finite_mdp import _SCALE_LIMIT, FiniteMDP

__all__ = ["random_mdp", "chain", "gridworld", "bandit", "short_corridor", "ShortCorridor"]


def random_mdp(
    n_states: int,
    n_actions: int,
    *,
    gamma: float,
    horizon: int | None = None,
    seed: Seed,
    concentration: float = 1.0,
    action_mask: Any = None,
) -> FiniteMDP:
    r"""A dense random MDP: rows of P and mu0 from Dirichlet(concentration), rewards N(0, 1).

    Parameters
    ----------
    n_states, n_actions : int
    gamma : float
    horizon : int or None
    seed : int, SeedSequence or Generator
    concentration : float
        Dirichlet concentration of every transition row (1: uniform on the simplex).
    action_mask : array_like of bool, shape (S, A), optional
        Feasible actions (see :class:`pgexact.FiniteMDP`); the random draws do not depend on it.

    Examples
    --------
    >>> mdp = random_mdp(5, 2, gamma=0.9, seed=0)
    >>> mdp.P.shape, mdp.r.shape
    ((5, 2, 5), (5, 2))
    """
    S = check_positive_int("n_states", n_states)
    A = check_positive_int("n_actions", n_actions)
    concentration = check_positive_finite("concentration", concentration)
    if concentration > 1e300:  # the sampler's gamma draws would overflow; rows are uniform long before
        raise ValueError(f"concentration must be at most 1e300, got {concentration:g}")
    check_memory(f"random_mdp with n_states={S}, n_actions={A}", 8 * S * A * S, "lower n_states")
    rng = as_generator(seed)
    P = rng.dirichlet(np.full(S, float(concentration)), size=(S, A))
    r = rng.standard_normal((S, A))
    mu0 = rng.dirichlet(np.ones(S))
    return FiniteMDP(P, r, mu0, gamma, horizon, action_mask=action_mask)


def chain(
    n_states: int,
    *,
    gamma: float,
    horizon: int | None = None,
    slip: float = 0.0,
    small_reward: float = 0.1,
    large_reward: float = 1.0,
) -> FiniteMDP:
    r"""A chain of ``n_states`` states with actions 0 = left and 1 = right, starting at state 0.

    With probability ``1 - slip`` the chosen move happens, otherwise the opposite one. Moving
    left at state 0 (staying) pays ``small_reward``; moving right at the last state (staying)
    pays ``large_reward``; everything else pays 0. The myopic policy collects the small reward,
    the optimal one walks to the far end: a classic exploration trap for softmax PG.
    """
    S = check_positive_int("n_states", n_states)
    slip = _check_probability("slip", slip)
    small_reward = check_real("small_reward", small_reward)
    large_reward = check_real("large_reward", large_reward)
    check_memory(f"chain with n_states={S}", 8 * S * 2 * S, "lower n_states")
    P = np.zeros((S, 2, S))
    for s in range(S):
        left, right = max(s - 1, 0), min(s + 1, S - 1)
        P[s, 0, left] += 1 - slip
        P[s, 0, right] += slip
        P[s, 1, right] += 1 - slip
        P[s, 1, left] += slip
    r = np.zeros((S, 2))
    r[0, 0] = small_reward * P[0, 0, 0]
    r[S - 1, 1] = large_reward * P[S - 1, 1, S - 1]
    mu0 = np.zeros(S)
    mu0[0] = 1.0
    return FiniteMDP(P, r, mu0, gamma, horizon)


#: Gridworld moves: 0 = up, 1 = right, 2 = down, 3 = left as (d_row, d_col).
GRID_MOVES = np.array([[-1, 0], [0, 1], [1, 0], [0, -1]])


def gridworld(
    height: int,
    width: int,
    *,
    gamma: float,
    slip: float = 0.1,
    horizon: int | None = None,
    goal: tuple[int, int] | None = None,
    start: tuple[int, int] = (0, 0),
    step_reward: float = 0.0,
    goal_reward: float = 1.0,
    sparse: bool = False,
) -> FiniteMDP:
    r"""A ``height`` x ``width`` gridworld; state ``s = row * width + col``.

    Actions 0..3 move up, right, down, left. With probability ``1 - slip`` the chosen move is
    made, otherwise a uniformly random one of the four (so the chosen one has probability
    ``1 - slip + slip/4``). Moves off the grid leave the agent in place. Entering ``goal``
    (default: the bottom-right corner) pays ``goal_reward`` and ends the episode: the goal is a
    terminal (absorbing, zero-reward) state. Every other step pays ``step_reward``.

    With ``sparse=True`` the transitions are built directly as a ``scipy.sparse.csr_array`` of
    shape (S*4, S) (at most 4 entries per row, O(S) memory; the dense (S, 4, S) array is never
    formed), for grids far beyond dense reach (1000 x 1000: S = 1e6). Same MDP as the dense one.

    Examples
    --------
    >>> import numpy as np
    >>> g, gs = gridworld(3, 4, gamma=0.9), gridworld(3, 4, gamma=0.9, sparse=True)
    >>> bool(np.array_equal(gs.P.toarray().reshape(12, 4, 12), g.P)), bool(np.array_equal(gs.r, g.r))
    (True, True)
    """
    if check_bool("sparse", sparse):
        return _sparse_gridworld(
            height, width, gamma=gamma, slip=slip, horizon=horizon, goal=goal, start=start,
            step_reward=step_reward, goal_reward=goal_reward,
        )
    Hh, W, slip, goal, start, step_reward, goal_reward = _check_grid_arguments(
        height, width, slip, goal, start, step_reward, goal_reward
    )
    S = Hh * W
    check_memory(f"gridworld with height={Hh}, width={W}", 8 * S * 4 * S, "pass sparse=True")
    g = goal[0] * W + goal[1]
    rows, cols = np.divmod(np.arange(S), W)
    P = np.zeros((S, 4, S))
    for m, (dr, dc) in enumerate(GRID_MOVES):
        nr = np.clip(rows + dr, 0, Hh - 1)
        nc = np.clip(cols + dc, 0, W - 1)
        dest = nr * W + nc
        for a in range(4):
            prob = (1 - slip) * (a == m) + slip / 4
            P[np.arange(S), a, dest] += prob
    P[g] = 0.0
    P[g, :, g] = 1.0
    r = step_reward + goal_reward * P[:, :, g]
    r[g] = 0.0
    mu0 = np.zeros(S)
    mu0[start[0] * W + start[1]] = 1.0
    return FiniteMDP(P, r, mu0, gamma, horizon)


def _sparse_gridworld(
    height: int,
    width: int,
    *,
    gamma: float,
    slip: float,
    horizon: int | None,
    goal: tuple[int, int] | None,
    start: tuple[int, int],
    step_reward: float,
    goal_reward: float,
) -> FiniteMDP:
    """:func:`gridworld` with ``P`` built directly in CSR form, shape (S*4, S)."""
    Hh, W, slip, goal, start, step_reward, goal_reward = _check_grid_arguments(
        height, width, slip, goal, start, step_reward, goal_reward
    )
    S, A = Hh * W, 4
    # indices, data (4 per row) and the temporaries of the same size: about 48 bytes per entry
    check_memory(f"gridworld with height={Hh}, width={W}, sparse=True", 48 * S * A * 4, "lower height or width")
    itype = np.int32 if S * A * 4 < np.iinfo(np.int32).max else np.int64
    g = goal[0] * W + goal[1]
    rows, cols = np.divmod(np.arange(S, dtype=itype), itype(W))
    dest = np.empty((S, 4), dtype=itype)  # dest[s, m]: cell reached by move m
    for m, (dr, dc) in enumerate(GRID_MOVES):
        dest[:, m] = np.clip(rows + dr, 0, Hh - 1) * W + np.clip(cols + dc, 0, W - 1)
    del rows, cols
    # row s*4 + a has the 4 entries (dest[s, m], (1 - slip) [a == m] + slip/4), m = 0..3
    prob = (1 - slip) * np.eye(4) + slip / 4  # prob[a, m]
    indices = np.array(np.broadcast_to(dest[:, None, :], (S, A, 4))).reshape(-1)
    data = np.array(np.broadcast_to(prob[None, :, :], (S, A, 4))).reshape(-1)
    # reward: goal_reward * P(goal | s, a) before the goal is made absorbing
    to_goal = (dest == g).astype(np.float64) @ prob.T  # (S, A): sum_m prob[a, m] [dest[s, m] == g]
    r = step_reward + goal_reward * to_goal
    r[g] = 0.0
    del dest, to_goal
    # the goal's rows: all mass on g (entries (g, 1), (g, 0), ... are summed by FiniteMDP)
    blk = slice(g * A * 4, (g + 1) * A * 4)
    indices[blk] = g
    data[blk] = np.tile([1.0, 0.0, 0.0, 0.0], A)
    indptr = np.arange(0, S * A * 4 + 1, 4, dtype=itype)
    P = scipy.sparse.csr_array((data, indices, indptr), shape=(S * A, S))
    mu0 = np.zeros(S)
    mu0[start[0] * W + start[1]] = 1.0
    return FiniteMDP(P, r, mu0, gamma, horizon)


def bandit(means: Any) -> FiniteMDP:
    r"""A multi-armed bandit as a one-state, one-step MDP (``horizon=1``, ``gamma=1``).

    ``J(pi) = sum_a pi(a) means[a]``.

    Examples
    --------
    >>> mdp = bandit([1.0, 0.0, 0.5])
    >>> mdp.n_states, mdp.n_actions, mdp.horizon
    (1, 3, 1)
    """
    m = as_float_array("means", means, ndim=1)
    if m.size == 0:
        raise ValueError("means must have at least one arm")
    A = m.size
    big = np.abs(m) > _SCALE_LIMIT  # the model's own check would name its reward r
    if big.any():
        i = int(np.argmax(big))
        raise ValueError(
            f"means[{i}] is {m[i]:.6g}, beyond {_SCALE_LIMIT:g} in magnitude: too large for float64 closed "
            "forms (values and gradients); rescale means"
        )
    return FiniteMDP(np.ones((1, A, 1)), m[None, :], np.ones(1), 1.0, 1)


@dataclass(frozen=True, eq=False)
class ShortCorridor(ReadOnlyOnCopy):
    r"""Sutton & Barto (2018), Example 13.1: short corridor with switched actions.

    States 0, 1, 2 and the terminal state 3; actions 0 = left, 1 = right; reward −1 per step;
    in state 1 the actions' effects are switched. The book's policy uses the two features
    :math:`x(s, \text{right}) = (1, 0)`, :math:`x(s, \text{left}) = (0, 1)` in every state, so
    it cannot tell states apart and picks right with one probability p in all of them:
    ``pgexact.LinearSoftmax(corridor.features)`` with ``p = sigmoid(theta[0] - theta[1])``.

    Attributes
    ----------
    mdp : FiniteMDP
        Undiscounted (γ = 1) with a finite horizon standing in for the episodic task.
    features : numpy.ndarray, shape (4, 2, 2)
        The feature array :math:`x(s, a)` of the book's parametrization (read-only).
    """

    mdp: FiniteMDP
    features: np.ndarray

    @staticmethod
    def theta_for(p: float) -> np.ndarray:
        """Parameters of ``LinearSoftmax(features)`` with Pr(right) = p, shape (2,): ``[logit(p), 0]``."""
        if isinstance(p, (bool, np.bool_)) or not isinstance(p, (int, float, np.integer, np.floating)):
            raise TypeError(f"p must be a probability in (0, 1), got {p!r}")
        if not (0.0 < p < 1.0):
            raise ValueError(f"p must be in (0, 1), got {p}")
        return np.array([np.log(p) - np.log1p(-p), 0.0])


def short_corridor(*, horizon: int = 10_000) -> ShortCorridor:
    r"""Sutton & Barto's short corridor with switched actions (Example 13.1).

    The episodic, undiscounted task is represented with γ = 1 and a finite ``horizon``; for
    p in [0.05, 0.95] the probability that an episode is still running after 10 000 steps is
    below 1e-60 (it decays like exp(-0.0144 t) at p = 0.05), so J equals the episodic value
    to rounding error there. Sutton & Barto report
    the optimum p ≈ 0.59 with value ≈ −11.6.

    Returns
    -------
    ShortCorridor
        The MDP and the feature array of the book's two-feature policy.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LinearSoftmax, evaluate
    >>> corridor = short_corridor()
    >>> pi = LinearSoftmax(corridor.features).probs(corridor.theta_for(0.5))
    >>> round(evaluate(corridor.mdp, pi).J, 9)  # (2p - 4) / (p (1 - p)) at p = 1/2
    -12.0
    """
    H = check_positive_int("horizon", horizon)
    P = np.zeros((4, 2, 4))
    LEFT, RIGHT = 0, 1
    P[0, LEFT, 0] = 1.0
    P[0, RIGHT, 1] = 1.0
    P[1, LEFT, 2] = 1.0  # switched
    P[1, RIGHT, 0] = 1.0  # switched
    P[2, LEFT, 1] = 1.0
    P[2, RIGHT, 3] = 1.0
    P[3, :, 3] = 1.0
    r = np.full((4, 2), -1.0)
    r[3] = 0.0
    mu0 = np.array([1.0, 0.0, 0.0, 0.0])
    mdp = FiniteMDP(P, r, mu0, 1.0, H)
    features = np.zeros((4, 2, 2))
    features[:, RIGHT, 0] = 1.0
    features[:, LEFT, 1] = 1.0
    features.flags.writeable = False
    return ShortCorridor(mdp=mdp, features=features)


def _check_probability(name: str, value: Any) -> float:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, (int, float, np.integer, np.floating)):
        raise TypeError(f"{name} must be a probability in [0, 1], got {value!r}")
    v = float(value)
    if not (0.0 <= v <= 1.0):
        raise ValueError(f"{name} must be a probability in [0, 1], got {value}")
    return v


def _check_cell(name: str, cell: Any, height: int, width: int) -> tuple[int, int]:
    ok = isinstance(cell, (tuple, list, np.ndarray)) and len(cell) == 2 and all(
        isinstance(c, (int, np.integer)) and not isinstance(c, (bool, np.bool_)) for c in cell
    )
    if not ok:
        raise TypeError(f"{name} must be a pair of integers (row, col), got {cell!r}")
    row, col = int(cell[0]), int(cell[1])
    if not (0 <= row < height and 0 <= col < width):
        raise ValueError(f"{name} must be a cell inside the {height}x{width} grid, got {(row, col)}")
    return row, col


def _check_grid_arguments(
    height: Any, width: Any, slip: Any, goal: Any, start: Any, step_reward: Any, goal_reward: Any
) -> tuple[int, int, float, tuple[int, int], tuple[int, int], float, float]:
    Hh = check_positive_int("height", height)
    W = check_positive_int("width", width)
    slip = _check_probability("slip", slip)
    goal = _check_cell("goal", (Hh - 1, W - 1) if goal is None else goal, Hh, W)
    start = _check_cell("start", start, Hh, W)
    step_reward, goal_reward = check_real("step_reward", step_reward), check_real("goal_reward", goal_reward)
    if not np.isfinite(abs(step_reward) + abs(goal_reward)):  # Python floats: inf, no warning
        raise ValueError(
            f"step_reward + goal_reward must be a finite float64, got {step_reward:g} + {goal_reward:g}"
        )
    return Hh, W, slip, goal, start, step_reward, goal_reward
