r"""Advantage targets on arrays: n-step returns and generalized advantage estimation (GAE).

Both take batch-first arrays, ``rewards`` (N, T) and ``values`` (N, T+1) whose last column is
the bootstrap value :math:`V(s_T)`, and an optional boolean ``terminated`` (N, T) marking the
steps after which an episode *ended*: nothing is bootstrapped across them. An episode that is
merely *truncated* by the end of the arrays is bootstrapped from ``values[:, T]``. Entries after
a terminated step (padding) are computed but meaningless; mask them.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_float_array, check_positive_int

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


def td_errors(rewards: Any, values: Any, gamma: float, *, terminated: Any = None) -> np.ndarray:
    r"""One-step TD errors :math:`\delta_t = r_t + \gamma (1 - d_t) V_{t+1} - V_t`, shape (N, T).

    Here :math:`d_t` is ``terminated[:, t]`` (Sutton & Barto 2018, eq. 6.5).
    """
    r, v, g, done = _check_arrays(rewards, values, gamma, terminated)
    return r + g * np.where(done, 0.0, v[:, 1:]) - v[:, :-1]


def gae(
    rewards: Any, values: Any, gamma: float, lam: float, *, terminated: Any = None
) -> np.ndarray:
    r"""Generalized advantage estimates, shape (N, T).

    .. math::
        \hat A_t = \sum_{l \ge 0} (\gamma\lambda)^l \delta_{t+l}, \qquad
        \delta_t = r_t + \gamma (1 - d_t) V(s_{t+1}) - V(s_t),

    computed backwards as :math:`\hat A_t = \delta_t + \gamma\lambda (1 - d_t) \hat A_{t+1}`,
    :math:`\hat A_T = 0` (Schulman et al. 2016, "High-dimensional continuous control using
    generalized advantage estimation", eq. 16). A terminated step (:math:`d_t = 1`) stops both the
    bootstrap and the sum; at the truncation column T the bootstrap value ``values[:, T]`` is
    used. ``lam = 0`` gives :math:`\delta_t`; ``lam = 1`` gives the Monte Carlo advantage
    :math:`\sum_l \gamma^l r_{t+l} + \gamma^{k} V_{t+k} - V_t` (k: steps to the end of the arrays,
    no bootstrap after a termination). With the exact V, :math:`E[\hat A_t | s_t, a_t] = A(s_t, a_t)`
    for every λ (:mod:`pgexact.theorems.estimators`).

    Parameters
    ----------
    rewards : array_like, shape (N, T)
    values : array_like, shape (N, T+1)
        ``values[:, t] = V(s_t)``; the last column is the bootstrap value at truncation.
    gamma : float
        Discount in [0, 1] (use ``Trajectories.discount``: 1 under geometric stopping).
    lam : float
        λ in [0, 1].
    terminated : array_like of bool, shape (N, T), optional
        Steps after which the episode ended (no bootstrap); default: none.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([[1.0, 2.0, 3.0]]); v = np.array([[0.5, 0.1, 0.2, 4.0]])
    >>> bool(np.allclose(gae(r, v, 0.9, 0.0), r + 0.9 * v[:, 1:] - v[:, :-1]))  # TD errors
    True
    >>> mc = 1 + 0.9 * 2 + 0.81 * 3 + 0.729 * 4.0 - 0.5  # lambda = 1: Monte Carlo advantage
    >>> bool(np.isclose(gae(r, v, 0.9, 1.0)[0, 0], mc))
    True
    """
    r, v, g, done = _check_arrays(rewards, values, gamma, terminated)
    if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating, np.integer)):
        raise TypeError(f"lam must be a real number, got {lam!r}")
    lam = float(lam)
    if not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam is {lam}, expected 0 <= lam <= 1")
    keep = ~done
    delta = r + g * np.where(keep, v[:, 1:], 0.0) - v[:, :-1]
    out = np.empty_like(delta)
    acc = np.zeros(r.shape[0])
    gl = g * lam
    for t in range(r.shape[1] - 1, -1, -1):
        acc = delta[:, t] + gl * np.where(keep[:, t], acc, 0.0)
        out[:, t] = acc
    return out


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
    for _ in range(n):
        G[:, :-1] = r + g * np.where(keep, G[:, 1:], 0.0)
    return G[:, :-1]
