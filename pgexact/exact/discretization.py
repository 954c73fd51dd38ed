r"""How far a discretized classic-control task's exact J is from the continuous task's.

The grids are built by :mod:`pgexact.mdps.classic_control`; this module evaluates a policy of the
continuous state exactly on a grid and its refinements and extrapolates (Richardson).
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from .._validation import check_positive_finite, check_positive_int
from ..mdps import classic_control as cc
from ..mdps.classic_control import _STATE_DIMS
from .evaluation import evaluate

__all__ = ["DiscretizationError", "discretization_error"]


@dataclass(frozen=True)
class DiscretizationError:
    r"""How far the exact J of a grid is from the continuous task's (:func:`discretization_error`).

    Attributes
    ----------
    J : float
        Exact J on the grid asked about.
    error : float
        Estimated :math:`J_{\text{continuous}} - J` (Richardson): add it to ``J``.
    J_extrapolated : float
        The extrapolated continuous J.
    order : float
        The order p of :math:`J(h) - J_0 \approx c h^p` (estimated, or as given).
    grids : tuple of tuple of int
        The state grids evaluated, coarsest first (the first is the one asked about).
    values : tuple of float
        Exact J on each of ``grids``.
    spacing : tuple of float
        Relative spacing of each grid (1 for the first).
    """

    J: float
    error: float
    J_extrapolated: float
    order: float
    grids: tuple[tuple[int, ...], ...]
    values: tuple[float, ...]
    spacing: tuple[float, ...]


def discretization_error(
    builder: Callable[..., cc.DiscretizedControl],
    policy: Callable[[np.ndarray, np.ndarray], np.ndarray],
    grid: Any = None,
    *,
    ratio: float = 2.0,
    order: float | None = None,
    **build: Any,
) -> DiscretizationError:
    r"""Estimate how far a grid's exact J is from the continuous task's, by Richardson extrapolation.

    The policy, a function of the continuous state, is evaluated exactly on the grid and on
    refinements whose spacing is divided by ``ratio`` (and ``ratio**2``) along every state axis
    (:math:`n \mapsto (n-1)r + 1` vertices, :math:`n \mapsto n r` on Pendulum's periodic angle,
    rounded), and :func:`pgexact.mdps.richardson` extrapolates :math:`J(h) = J_0 + c h^p` to h = 0. Three grids
    estimate the order p; with ``order=p`` two grids suffice (CartPole's 4-D grids grow as
    :math:`r^4`). The estimate covers the interpolation error of the chain on the given box; it
    does not see the clipping of CartPole's unbounded velocities to ``x_dot_max`` /
    ``theta_dot_max`` (enlarge the box to measure that).

    Parameters
    ----------
    builder : pendulum, mountain_car or cartpole
    policy : callable
        ``policy(observations (S, D), actions (A,)) -> (S, A)`` action probabilities.
    grid : tuple of int, optional
        The state-grid sizes (the builder's leading positional arguments; Pendulum's n_torques
        is passed in ``build``); the builder's defaults if omitted.
    ratio : float
        Refinement ratio of the spacing, > 1.
    order : float, optional
        The order p, if known (two grids instead of three).
    **build
        Other arguments of the builder (``gamma`` is required; ``horizon``, boxes, ...).

    Returns
    -------
    DiscretizationError

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import pendulum
    >>> push = lambda x, u: np.exp(1.5 * u * np.tanh(x[:, 1:2])) / np.exp(1.5 * u * np.tanh(x[:, 1:2])).sum(1, keepdims=True)
    >>> est = discretization_error(pendulum, push, (21, 21), ratio=1.5, gamma=1.0, horizon=200, n_torques=5)
    >>> est.grids
    ((21, 21), (32, 31), (47, 46))
    >>> round(est.J, 1), round(est.error, 1)  # Monte Carlo of the continuous task: -1550.55 +- 0.26
    (-1527.0, -27.3)
    """
    name = getattr(builder, "__name__", None)
    if name not in _STATE_DIMS or getattr(builder, "__module__", None) != cc.__name__:
        raise TypeError(f"builder must be pendulum, mountain_car or cartpole from pgexact.mdps, got {builder!r}")
    if not callable(policy):
        raise TypeError(f"policy must be a callable (observations, actions) -> probabilities, got {type(policy).__name__}")
    periodic = _STATE_DIMS[name]
    D = len(periodic)
    if grid is None:
        params = list(inspect.signature(builder).parameters.values())[:D]
        grid = tuple(prm.default for prm in params)
    if isinstance(grid, (str, bytes)) or not isinstance(grid, (tuple, list)) or len(grid) != D:
        raise TypeError(f"grid must be a tuple of {D} grid sizes for {name}, got {grid!r}")
    grid = tuple(check_positive_int(f"grid[{k}]", n) for k, n in enumerate(grid))
    ratio = check_positive_finite("ratio", ratio)
    if not ratio > 1:
        raise ValueError(f"ratio must be greater than 1, got {ratio:g}")
    if order is not None:
        order = check_positive_finite("order", order)
    levels = 2 if order is not None else 3
    grids, spacing = [], []
    for k in range(levels):
        g = tuple(max(n, round(n * ratio**k)) if per else max(n, round((n - 1) * ratio**k) + 1)
                  for n, per in zip(grid, periodic))
        # the relative spacing actually used: geometric mean over the axes
        rel = [(n / m) if per else (n - 1) / (m - 1) for n, m, per in zip(grid, g, periodic)]
        grids.append(g)
        spacing.append(float(np.prod(rel) ** (1 / D)))
    if len(set(grids)) < levels:
        raise ValueError(f"ratio={ratio:g} does not refine grid {grid}: use a larger ratio")
    values = []
    for g in grids:
        env = builder(*g, **build)
        pi = np.asarray(policy(env.observations, env.actions), dtype=float)
        values.append(float(evaluate(env.mdp, pi).J))
    J0, p = cc.richardson(values, spacing, order)
    return DiscretizationError(J=values[0], error=J0 - values[0], J_extrapolated=J0, order=p,
                               grids=tuple(grids), values=tuple(values), spacing=tuple(spacing))
