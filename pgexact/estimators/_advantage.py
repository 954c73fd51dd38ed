r"""Advantage targets on arrays: n-step returns and generalized advantage estimation (GAE).

All take batch-first arrays, ``rewards`` (N, T) and ``values`` (N, T+1) whose last column is
the bootstrap value :math:`V(s_T)`, and an optional boolean ``terminated`` (N, T) marking the
steps after which an episode *ended*: nothing is bootstrapped across them. An episode that is
merely cut by the end of the arrays is bootstrapped from ``values[:, T]``; :func:`gae` also
takes ``truncated`` steps inside a row (a time limit) with their own bootstrap values. Entries
after a terminated step (padding) are computed but meaningless; mask them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_float_array, check_positive_int
from ..errors import NumericalError

__all__ = ["gae", "n_step_returns", "td_errors"]


def _check_arrays(
    rewards: Any, values: Any, gamma: Any, terminated: Any
) -> tuple[np.ndarray, np.ndarray, float, np.ndarray]:
    r = as_float_array("rewards", rewards, ndim=2)
    N, T = r.shape
    v = as_float_array("values", values, ndim=2)
    if v.shape != (N, T + 1):
        raise ValueError(
            f"values must have shape (N, T+1)=({N}, {T + 1}) (last column: bootstrap value), got {v.shape}"
        )
    if isinstance(gamma, bool) or not isinstance(gamma, (int, float, np.floating, np.integer)):
        raise TypeError(f"gamma must be a real number, got {gamma!r}")
    g = float(gamma)
    if not 0.0 <= g <= 1.0:
        raise ValueError(f"gamma is {g}, expected 0 <= gamma <= 1")
    if terminated is None:
        done = np.zeros((N, T), dtype=bool)
    else:
        done = np.asarray(terminated)
        if done.dtype != bool:
            raise TypeError(f"terminated must be a boolean array, got dtype {done.dtype}")
        if done.shape != (N, T):
            raise ValueError(f"terminated must have shape (N, T)=({N}, {T}), got {done.shape}")
    return r, v, g, done


def _finite(name: str, out: np.ndarray) -> np.ndarray:
    if not np.all(np.isfinite(out)):
        idx = tuple(int(i) for i in np.argwhere(~np.isfinite(out))[0])
        raise NumericalError(
            f"{name} overflows float64 at {list(idx)} (rewards or values too large): rescale them"
        )
    return out


def td_errors(rewards: Any, values: Any, gamma: float, *, terminated: Any = None) -> np.ndarray:
    r"""One-step TD errors :math:`\delta_t = r_t + \gamma (1 - d_t) V_{t+1} - V_t`, shape (N, T).

    Here :math:`d_t` is ``terminated[:, t]`` (Sutton & Barto 2018, eq. 6.5).
    """
    r, v, g, done = _check_arrays(rewards, values, gamma, terminated)
    with np.errstate(over="ignore", invalid="ignore"):
        out = r + g * np.where(done, 0.0, v[:, 1:]) - v[:, :-1]
    return _finite("td_errors", out)


def _check_flags(name: str, flags: Any, shape: tuple[int, int]) -> np.ndarray:
    if flags is None:
        return np.zeros(shape, dtype=bool)
    arr = np.asarray(flags)
    if arr.dtype != bool:
        raise TypeError(f"{name} must be a boolean array, got dtype {arr.dtype}")
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape (N, T)=({shape[0]}, {shape[1]}), got {arr.shape}")
    return arr


def gae(
    rewards: Any,
    values: Any,
    gamma: float,
    lam: float,
    *,
    terminated: Any = None,
    truncated: Any = None,
    bootstrap: Any = None,
) -> np.ndarray:
    r"""Generalized advantage estimates, shape (N, T).

    .. math::
        \delta_t = r_t + \gamma \big[(1 - d_t)(1 - c_t) V(s_{t+1}) + c_t B_t\big] - V(s_t),
        \qquad
        \hat A_t = \delta_t + \gamma\lambda (1 - d_t)(1 - c_t) \hat A_{t+1},

    :math:`\hat A_T = 0`, with :math:`d_t` = ``terminated[:, t]``, :math:`c_t` =
    ``truncated[:, t]`` and :math:`B_t` = ``bootstrap[:, t]`` (Schulman et al. 2016,
    "High-dimensional continuous control using generalized advantage estimation", eq. 16):
    :math:`\hat A_t = \sum_{l \ge 0} (\gamma\lambda)^l \delta_{t+l}` summed up to the end of the
    episode. A *terminated* step ends the episode with nothing after it; a *truncated* step
    (a time limit cutting the row, after which the row continues with a new episode) ends the
    sum but bootstraps from the value of the state the cut episode reached, ``bootstrap[:, t]``
    (``values[:, t + 1]`` belongs to the next episode). At the end of the arrays the episode is
    bootstrapped from ``values[:, T]``. ``lam = 0`` gives :math:`\delta_t`; ``lam = 1`` the Monte
    Carlo advantage. With the exact V, :math:`E[\hat A_t | s_t, a_t] = A(s_t, a_t)` for every λ.

    Parameters
    ----------
    rewards : array_like, shape (N, T)
        Batch-first: N parallel rows (environments), T steps each.
    values : array_like, shape (N, T+1)
        ``values[:, t] = V(s_t)``; the last column is the value after the last step.
    gamma : float
        Discount in [0, 1] (use ``Trajectories.discount``: 1 under geometric stopping).
    lam : float
        λ in [0, 1].
    terminated : array_like of bool, shape (N, T), optional
        Steps after which the episode ended (no bootstrap); default: none.
    truncated : array_like of bool, shape (N, T), optional
        Steps after which the episode was cut by a time limit (bootstrap from ``bootstrap``).
    bootstrap : array_like, shape (N, T), optional
        :math:`V` of the state reached at a truncated step (the final observation); required
        with ``truncated``, read only where ``truncated`` is True.

    Returns
    -------
    numpy.ndarray, shape (N, T)

    Raises
    ------
    NumericalError
        If the advantages overflow float64.

    Notes
    -----
    Stable-Baselines3's ``RolloutBuffer`` (time-major ``(buffer_size, n_envs)``) maps as
    ``rewards = buffer.rewards.T`` *without* its truncation trick (SB3 adds
    :math:`\gamma V(s_{final})` to the reward of a time-limit step), ``values =
    [buffer.values.T, last_values]``, ``terminated[:, t]`` = the episode ended at step t by
    termination (``episode_starts[t + 1]``, or ``dones`` for the last step),
    ``truncated[:, t]`` = it ended by ``TimeLimit.truncated`` and ``bootstrap[:, t]`` = SB3's
    ``terminal_value``; ``buffer.advantages.T`` is then ``gae(...)`` and ``buffer.returns`` is
    ``advantages + values``. CleanRL's ``ppo.py`` loop (``dones[t]`` flags the first step of a new
    episode, truncations counted as terminations) maps as ``terminated[:, t] = dones[t + 1]``
    (``next_done`` for the last step), ``values = [values.T, next_value]``, no ``truncated``.
    Both are checked in the test suite against literal re-statements of the two loops.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([[1.0, 2.0, 3.0]]); v = np.array([[0.5, 0.1, 0.2, 4.0]])
    >>> bool(np.allclose(gae(r, v, 0.9, 0.0), r + 0.9 * v[:, 1:] - v[:, :-1]))  # TD errors
    True
    >>> mc = 1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 4.0 - 0.5  # lambda = 1: Monte Carlo advantage
    >>> bool(np.isclose(gae(r, v, 0.9, 1.0)[0, 0], mc))
    True
    >>> cut = np.array([[True, False, False]])  # a time limit after step 0; V(final) = 7
    >>> float(gae(r, v, 0.9, 1.0, truncated=cut, bootstrap=np.full((1, 3), 7.0))[0, 0])  # 1 + 0.9 * 7 - 0.5
    6.8
    """
    r, v, g, done = _check_arrays(rewards, values, gamma, terminated)
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating, np.integer)):
        raise TypeError(f"lam must be a real number, got {lam!r}")
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam is {lam}, expected 0 <= lam <= 1")
    cut = _check_flags("truncated", truncated, r.shape)
    if bootstrap is None:
        if cut.any():
            raise ValueError("truncated has True entries: pass bootstrap, the values of the states reached there")
        boot = np.zeros(r.shape)
    else:
        boot = as_float_array("bootstrap", np.where(cut, bootstrap, 0.0) if np.shape(bootstrap) == r.shape else bootstrap)
        if boot.shape != r.shape:
            raise ValueError(f"bootstrap must have shape (N, T)={r.shape}, got {boot.shape}")
    if (done & cut).any():
        idx = tuple(int(i) for i in np.argwhere(done & cut)[0])
        raise ValueError(f"terminated{list(idx)} and truncated{list(idx)} are both True: a step ends one way")
    keep = ~(done | cut)
    with np.errstate(over="ignore", invalid="ignore"):
        delta = r + g * (np.where(keep, v[:, 1:], 0.0) + np.where(cut, boot, 0.0)) - v[:, :-1]
        out = np.empty_like(delta)
        acc = np.zeros(r.shape[0])
        gl = g * lam
        for t in range(r.shape[1] - 1, -1, -1):
            acc = delta[:, t] + gl * np.where(keep[:, t], acc, 0.0)
            out[:, t] = acc
    return _finite("gae", out)


def n_step_returns(
    rewards: Any, values: Any, gamma: float, n: int, *, terminated: Any = None
) -> np.ndarray:
    r"""n-step returns, shape (N, T).

    .. math::
        G^{(n)}_t = \sum_{k=0}^{n-1} \gamma^k r_{t+k} + \gamma^n V(s_{t+n})

    (Sutton & Barto 2018, eq. 7.1), cut at the end of the episode: after a terminated step
    nothing more is added (no bootstrap); where the arrays end first (truncation) the bootstrap
    is ``values[:, T]`` discounted by the steps actually taken. Computed by the recursion
    :math:`G^{(m)}_t = r_t + \gamma (1 - d_t) G^{(m-1)}_{t+1}`, :math:`G^{(0)}_t = V_t`,
    :math:`G^{(m)}_T = V_T`.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([[1.0, 2.0]]); v = np.array([[0.0, 5.0, 7.0]])
    >>> n_step_returns(r, v, 0.5, 1).tolist()  # r_t + gamma V_{t+1}
    [[3.5, 5.5]]
    >>> n_step_returns(r, v, 0.5, 5, terminated=np.array([[False, True]])).tolist()
    [[2.0, 2.0]]
    """
    r, v, g, done = _check_arrays(rewards, values, gamma, terminated)
    n = check_positive_int("n", n)
    keep = ~done
    G = v.copy()  # G^{(0)}, with column T fixed at V_T
    # after T iterations every entry has reached the end of the arrays: more change nothing
    with np.errstate(over="ignore", invalid="ignore"):
        for _ in range(min(n, r.shape[1])):
            G[:, :-1] = r + g * np.where(keep, G[:, 1:], 0.0)
    return _finite("n_step_returns", G[:, :-1])
