r"""Gymnasium's classic-control tasks discretized into exact finite MDPs: Pendulum, MountainCar, CartPole.

Each continuous task keeps gymnasium's dynamics, constants and rewards (``Pendulum-v1``,
``MountainCar-v0``, ``CartPole-v1``; read from ``gymnasium/envs/classic_control/*.py``,
gymnasium 1.x) and is discretized on a rectangular grid of vertices
:math:`\{x_i\}` (a Markov chain approximation in the sense of Kushner & Dupuis 2001, ch. 5):

* the states of the finite MDP are the grid vertices (plus one absorbing terminal state for the
  tasks that terminate);
* from vertex :math:`x_i` under action a, gymnasium's step gives the next continuous state
  :math:`x' = f(x_i, a)` and the reward :math:`r(x_i, a)` exactly;
* if the step terminates the episode (MountainCar's goal, CartPole's failure), all the mass
  goes to the terminal state; otherwise :math:`x'` (clipped to the grid box; angles wrapped)
  is spread over the :math:`2^D` vertices of its grid cell with the **multilinear interpolation
  weights** :math:`P(x_j | x_i, a) = \prod_k \ell_{j_k}(x'_k)` (hat functions), which are
  nonnegative, sum to 1 and reproduce :math:`x'` as their mean (first moment exact);
* the initial distribution is the expectation of those weights under gymnasium's reset
  distribution (uniform boxes), integrated exactly (the weights are piecewise linear between
  grid points, so the trapezoid rule on the grid points is exact).

As the grid is refined the chain converges to the continuous process (the interpolation noise
has variance O(h²) per step); ``tests/test_classic_control.py`` and
``benchmarks/classic_control_convergence.py`` measure the gap between exact J on the grid and a
Monte Carlo estimate in gymnasium. ``P`` is a ``scipy.sparse`` matrix (at most 2^D entries
per row) unless ``sparse=False``.

The returned :class:`DiscretizedControl` carries ``observations``, the continuous state of every
vertex (shape (S, D)): the input of a neural policy, so that the same network can act in the
finite MDP and in gymnasium.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import scipy.sparse

from .._validation import as_float_array, check_bool, check_memory, check_positive_finite, check_positive_int, check_real
from ..models.finite_mdp import FiniteMDP

__all__ = ["DiscretizedControl", "pendulum", "mountain_car", "cartpole", "multilinear_weights", "richardson"]

@dataclass(frozen=True, eq=False)
class DiscretizedControl:
    r"""A classic-control task discretized on a grid (see the module docstring).

    Attributes
    ----------
    mdp : FiniteMDP
    observations : numpy.ndarray, shape (S, D)
        Continuous state of each grid vertex, in gymnasium's state coordinates (Pendulum:
        (θ, θ̇); MountainCar: (position, velocity); CartPole: (x, ẋ, θ, θ̇)). The absorbing
        terminal state, when there is one, is the last state and its row repeats the first
        vertex (its actions have no effect).
    axes : tuple of numpy.ndarray
        Grid coordinates along each of the D dimensions; vertex index is C-ordered over them.
    periodic : tuple of bool
        Dimensions that wrap around (Pendulum's angle).
    actions : numpy.ndarray, shape (A,)
        The action each index stands for: a torque (Pendulum) or gymnasium's discrete action.
    terminal : int or None
        Index of the absorbing terminal state.
    name : str
        The gymnasium id whose dynamics are used.
    """

    mdp: FiniteMDP
    observations: np.ndarray
    axes: tuple[np.ndarray, ...]
    periodic: tuple[bool, ...]
    actions: np.ndarray
    terminal: int | None
    name: str

    @property
    def grid_shape(self) -> tuple[int, ...]:
        """Number of vertices along each dimension."""
        return tuple(len(a) for a in self.axes)

    def interpolate(self, states: Any) -> tuple[np.ndarray, np.ndarray]:
        r"""Vertex indices and multilinear weights of continuous ``states`` (shape (N, D)): each (N, 2^D)."""
        return multilinear_weights(states, self.axes, self.periodic)


# --------------------------------------------------------------------------- interpolation
def _axis_weights(x: np.ndarray, axis: np.ndarray, periodic: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Lower vertex, upper vertex and the weight of the upper one, along one axis."""
    n = len(axis)
    if periodic:
        h = axis[1] - axis[0]
        u = (x - axis[0]) / h
        u = np.mod(u, n)
        lo = np.minimum(np.floor(u).astype(np.int64), n - 1)
        return lo, (lo + 1) % n, u - lo
    if n == 1:
        z = np.zeros(x.shape, dtype=np.int64)
        return z, z, np.zeros(x.shape)
    xc = np.clip(x, axis[0], axis[-1])
    lo = np.clip(np.searchsorted(axis, xc, side="right") - 1, 0, n - 2)
    w = (xc - axis[lo]) / (axis[lo + 1] - axis[lo])
    return lo, lo + 1, np.clip(w, 0.0, 1.0)


def multilinear_weights(
    states: np.ndarray, axes: tuple[np.ndarray, ...], periodic: tuple[bool, ...]
) -> tuple[np.ndarray, np.ndarray]:
    r"""Multilinear interpolation of points onto a rectangular grid.

    .. math:: w_j(x) = \prod_{k=1}^{D} \ell_{j_k}(x_k), \qquad \sum_j w_j(x) = 1, \qquad
        \sum_j w_j(x)\, x_j = x

    (points outside the box are clipped to it; periodic dimensions wrap, their axis being
    equally spaced over one period).

    Parameters
    ----------
    states : numpy.ndarray, shape (N, D)
    axes : tuple of D increasing arrays
    periodic : tuple of D bools

    Returns
    -------
    indices : numpy.ndarray, shape (N, 2^D), int64
        C-ordered flat vertex indices.
    weights : numpy.ndarray, shape (N, 2^D)

    Examples
    --------
    >>> import numpy as np
    >>> axes = (np.linspace(0, 1, 3), np.linspace(0, 2, 5))
    >>> idx, w = multilinear_weights(np.array([[0.25, 0.7]]), axes, (False, False))
    >>> verts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
    >>> bool(np.isclose(w.sum(), 1.0)), bool(np.allclose(w @ verts[idx[0]], [0.25, 0.7]))
    (True, True)
    """
    states, axes, periodic = _check_interpolation(states, axes, periodic)
    return _multilinear_weights(states, axes, periodic)


def _check_interpolation(
    states: Any, axes: Any, periodic: Any
) -> tuple[np.ndarray, tuple[np.ndarray, ...], tuple[bool, ...]]:
    states = as_float_array("states", states, ndim=2)
    D = states.shape[1]
    if isinstance(axes, (str, bytes, np.ndarray)) or not isinstance(axes, (tuple, list)) or len(axes) != D:
        raise TypeError(f"axes must be a tuple of D={D} arrays (one per column of states), got {type(axes).__name__}")
    if isinstance(periodic, (str, bytes)) or not isinstance(periodic, (tuple, list, np.ndarray)) or len(periodic) != D:
        raise TypeError(f"periodic must be a tuple of D={D} bools, got {periodic!r}")
    checked = []
    for k, ax in enumerate(axes):
        arr = as_float_array(f"axes[{k}]", ax, ndim=1)
        per = check_bool(f"periodic[{k}]", periodic[k])
        if arr.size < (2 if per else 1):
            raise ValueError(f"axes[{k}] must have at least {2 if per else 1} point(s), got {arr.size}")
        with np.errstate(over="ignore", invalid="ignore"):
            steps = np.diff(arr)
        bad = ~(steps > 0) | ~np.isfinite(steps)
        if bad.any():
            i = int(np.argmax(bad))
            raise ValueError(f"axes[{k}] must be strictly increasing with finite steps: axes[{k}][{i + 1}] = {arr[i + 1]} after {arr[i]}")
        checked.append(arr)
    return states, tuple(checked), tuple(bool(p) for p in periodic)


def _multilinear_weights(
    states: np.ndarray, axes: tuple[np.ndarray, ...], periodic: tuple[bool, ...]
) -> tuple[np.ndarray, np.ndarray]:
    """:func:`multilinear_weights` on validated input (no check)."""
    N, D = states.shape
    idx = np.zeros((N, 1), dtype=np.int64)
    wts = np.ones((N, 1))
    for k in range(D):
        lo, hi, w = _axis_weights(states[:, k], axes[k], periodic[k])
        n = len(axes[k])
        idx = np.concatenate([idx * n + lo[:, None], idx * n + hi[:, None]], axis=1)
        wts = np.concatenate([wts * (1.0 - w)[:, None], wts * w[:, None]], axis=1)
    return idx, wts


def _uniform_axis_mean(axis: np.ndarray, periodic: bool, lo: float, hi: float) -> np.ndarray:
    """E[one-axis weights] for x ~ U[lo, hi] (point mass if lo == hi), exactly (trapezoid on the kinks)."""
    n = len(axis)
    if lo == hi:
        i, j, w = _axis_weights(np.array([lo]), axis, periodic)
        out = np.zeros(n)
        out[i] += 1 - w
        out[j] += w
        return out
    inner = axis[(axis > lo) & (axis < hi)]
    nodes = np.unique(np.concatenate([[lo, hi], inner]))
    i, j, w = _axis_weights(nodes, axis, periodic)
    # trapezoid rule: node k carries half of each neighbouring interval; its weights sit on two
    # vertices, so the integral is accumulated in O(n) (no (nodes, n) table)
    dx = np.diff(nodes)
    c = np.zeros(len(nodes))
    c[:-1] += dx / 2
    c[1:] += dx / 2
    integral = np.bincount(i, weights=c * (1 - w), minlength=n) + np.bincount(j, weights=c * w, minlength=n)
    return integral / (hi - lo)


def _build(
    name: str,
    axes: tuple[np.ndarray, ...],
    periodic: tuple[bool, ...],
    actions: np.ndarray,
    step: Callable[[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]],
    reset_box: list[tuple[float, float]],
    gamma: float,
    horizon: int | None,
    sparse: bool,
    overflow_advice: str = "",
) -> DiscretizedControl:
    V, A = int(np.prod([len(ax) for ax in axes])), len(actions)
    verts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    x = np.repeat(verts, A, axis=0)
    a = np.tile(np.arange(A), V)
    with np.errstate(over="ignore", invalid="ignore"):
        nxt, reward, done = step(x, actions[a])
    if not (np.isfinite(nxt).all() and np.isfinite(reward).all()):
        raise ValueError(f"the {name} dynamics leave the float64 range on this grid: {overflow_advice}")
    can_end = bool(done.any())
    S = V + 1 if can_end else V
    idx, w = _multilinear_weights(nxt, axes, periodic)
    if can_end:
        idx[done] = V
        w[done] = 0.0
        w[done, 0] = 1.0
    rows = np.repeat(np.arange(V * A), idx.shape[1])
    cols, vals = idx.reshape(-1), w.reshape(-1)
    r = reward.reshape(V, A)
    if can_end:  # the terminal state: absorbing, zero reward
        rows = np.concatenate([rows, V * A + np.arange(A)])
        cols = np.concatenate([cols, np.full(A, V)])
        vals = np.concatenate([vals, np.ones(A)])
        r = np.vstack([r, np.zeros((1, A))])
    P = scipy.sparse.csr_array((vals, (rows, cols)), shape=(S * A, S))
    P.sum_duplicates()
    P.eliminate_zeros()
    mu = np.ones(1)
    for ax, per, (lo, hi) in zip(axes, periodic, reset_box):
        mu = np.multiply.outer(mu, _uniform_axis_mean(ax, per, lo, hi)).reshape(-1)
    mu0 = np.concatenate([mu, [0.0]]) if can_end else mu
    mu0 /= mu0.sum()  # sums to 1 up to rounding already; remove the rounding
    Pm: Any = P if sparse else P.toarray().reshape(S, A, S)
    obs = np.vstack([verts, verts[:1]]) if can_end else verts
    return DiscretizedControl(
        mdp=FiniteMDP(Pm, r, mu0, gamma, horizon),
        observations=obs,
        axes=tuple(np.asarray(ax) for ax in axes),
        periodic=periodic,
        actions=np.asarray(actions),
        terminal=V if can_end else None,
        name=name,
    )


def footprint(D: int, V: int, A: int, sparse: bool) -> int:
    r"""Peak bytes a builder allocates for V grid vertices in D dimensions and A actions.

    Per (vertex, action): the vertex and its next state (D floats each, and copies), the 2^D
    interpolation indices and weights, the COO triplets and their CSR copy, the validated
    model's copy: at most :math:`100 D + 64 \cdot 2^D` bytes (measured peaks with tracemalloc:
    317 to 414 bytes for D = 2, 1280 for D = 4; ``tests/test_reliability_round3.py`` checks
    that this bounds them). Everything else is O(V) or O(n) per axis; a dense ``P`` adds
    :math:`8 (V + 1)^2 A`.
    """
    return V * A * (100 * D + 64 * 2**D) + (0 if sparse else 8 * (V + 1) * A * (V + 1))


def _check_size(name: str, dims: dict[str, int], A: int, sparse: Any, actions: str = "actions") -> bool:
    """``sparse`` as a bool; refuse a grid whose arrays would exceed the memory limit of one call."""
    sparse = check_bool("sparse", sparse)
    D, V = len(dims), math.prod(dims.values())
    need = footprint(D, V, A, sparse)
    sizes = ", ".join(f"{k}={v}" for k, v in dims.items())
    check_memory(f"{name} with {sizes}, {A} {actions}" + ("" if sparse else ", sparse=False"), need,
                 "use a coarser grid" + ("" if sparse else " or sparse=True"))
    return sparse


def _check_grid(name: str, n: Any, minimum: int = 2) -> int:
    n = check_positive_int(name, n)
    if n < minimum:
        raise ValueError(f"{name} must be at least {minimum}, got {n}")
    return n


# --------------------------------------------------------------------------- Pendulum-v1
PENDULUM = dict(max_speed=8.0, max_torque=2.0, dt=0.05, g=10.0, m=1.0, l=1.0)


def pendulum_step(x: np.ndarray, u: np.ndarray, g: float = 10.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gymnasium's ``PendulumEnv.step``, vectorized: ``(next state (N, 2), reward (N,), terminated (N,))``."""
    c = PENDULUM
    th, thdot = x[:, 0], x[:, 1]
    u = np.clip(u, -c["max_torque"], c["max_torque"])
    th_n = ((th + np.pi) % (2 * np.pi)) - np.pi
    costs = th_n**2 + 0.1 * thdot**2 + 0.001 * u**2
    newthdot = thdot + (3 * g / (2 * c["l"]) * np.sin(th) + 3.0 / (c["m"] * c["l"] ** 2) * u) * c["dt"]
    newthdot = np.clip(newthdot, -c["max_speed"], c["max_speed"])
    newth = th + newthdot * c["dt"]
    return np.stack([newth, newthdot], axis=1), -costs, np.zeros(len(x), dtype=bool)


def pendulum(
    n_theta: int = 31,
    n_omega: int = 31,
    n_torques: int = 5,
    *,
    gamma: float,
    horizon: int | None = None,
    g: float = 10.0,
    sparse: bool = True,
) -> DiscretizedControl:
    r"""``Pendulum-v1`` on an ``n_theta`` × ``n_omega`` grid with ``n_torques`` torques.

    State (θ, θ̇): θ on ``n_theta`` equally spaced angles of :math:`[-\pi, \pi)` (periodic),
    θ̇ on ``n_omega`` equally spaced speeds of [−8, 8] (gymnasium clips θ̇ there). Torques
    ``linspace(-2, 2, n_torques)``. Dynamics (dt = 0.05, m = l = 1):
    :math:`\dot\theta' = \mathrm{clip}(\dot\theta + (\tfrac{3g}{2l}\sin\theta + \tfrac{3}{ml^2}u)\,dt, \pm 8)`,
    :math:`\theta' = \theta + \dot\theta' dt`; reward
    :math:`-(\mathrm{wrap}(\theta)^2 + 0.1\dot\theta^2 + 0.001u^2)`. Reset: θ ~ U[−π, π],
    θ̇ ~ U[−1, 1]. Never terminates (gymnasium truncates at 200 steps: ``horizon=200``, γ = 1
    reproduces its episodic return).

    Accuracy (H = 200, γ = 1, the policy pushing along θ̇ of ``tests/test_classic_control.py``;
    Monte Carlo J = −1550.55 ± 0.26, 20 000 episodes): exact J −1543.08 on the default 31 × 31
    grid (gap 0.48%), −1548.80 on 41² (0.11%), −1550.34 on 61² (0.01%); the error falls as
    about h² to h⁵, and :func:`pgexact.exact.discretization_error` from 31² extrapolates to −1550.43.

    Examples
    --------
    >>> env = pendulum(11, 9, 3, gamma=0.99)
    >>> env.mdp.n_states, env.mdp.n_actions, env.observations.shape
    (99, 3, (99, 2))
    """
    nt, nw = _check_grid("n_theta", n_theta, 3), _check_grid("n_omega", n_omega)
    nu = _check_grid("n_torques", n_torques)
    g = check_real("g", g)
    sparse = _check_size("Pendulum-v1", {"n_theta": nt, "n_omega": nw}, nu, sparse, "torques (n_torques)")
    axes = (-np.pi + 2 * np.pi * np.arange(nt) / nt, np.linspace(-8.0, 8.0, nw))
    torques = np.linspace(-2.0, 2.0, nu)
    return _build(
        "Pendulum-v1", axes, (True, False), torques, lambda x, u: pendulum_step(x, u, g),
        [(-np.pi, np.pi), (-1.0, 1.0)], gamma, horizon, sparse, "lower |g|",
    )


# --------------------------------------------------------------------------- MountainCar-v0
MOUNTAIN_CAR = dict(min_position=-1.2, max_position=0.6, max_speed=0.07, goal_position=0.5,
                    goal_velocity=0.0, force=0.001, gravity=0.0025)


def mountain_car_step(x: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gymnasium's ``MountainCarEnv.step``, vectorized: ``(next state (N, 2), reward (N,), terminated (N,))``."""
    c = MOUNTAIN_CAR
    position, velocity = x[:, 0], x[:, 1]
    velocity = velocity + (action - 1) * c["force"] + np.cos(3 * position) * (-c["gravity"])
    velocity = np.clip(velocity, -c["max_speed"], c["max_speed"])
    position = np.clip(position + velocity, c["min_position"], c["max_position"])
    velocity = np.where((position == c["min_position"]) & (velocity < 0), 0.0, velocity)
    done = (position >= c["goal_position"]) & (velocity >= c["goal_velocity"])
    return np.stack([position, velocity], axis=1), np.full(len(x), -1.0), done


def mountain_car(
    n_position: int = 321, n_velocity: int = 321, *, gamma: float, horizon: int | None = None,
    sparse: bool = True,
) -> DiscretizedControl:
    r"""``MountainCar-v0`` on an ``n_position`` × ``n_velocity`` grid (3 actions: push left, none, right).

    Position on [−1.2, 0.6], velocity on [−0.07, 0.07] (gymnasium's bounds). Dynamics:
    :math:`v' = \mathrm{clip}(v + 0.001(a-1) - 0.0025\cos 3p, \pm 0.07)`,
    :math:`p' = \mathrm{clip}(p + v', -1.2, 0.6)`, :math:`v' = 0` at the left wall when moving
    left; reward −1 per step; the episode terminates when :math:`p' \ge 0.5` and
    :math:`v' \ge 0` (then: absorbing terminal state). Reset: p ~ U[−0.6, −0.4], v = 0.
    Gymnasium truncates at 200 steps (``horizon=200``, γ = 1).

    Accuracy: the default 321 × 321 grid (103 042 states; 0.3 s to build, 5 s CPU and 1.4 GB
    peak to evaluate at H = 200) is chosen for a gap well below 1% to the continuous task.
    Measured (H = 200, γ = 1, the energy-pumping policy of ``tests/test_classic_control.py``,
    Monte Carlo of gymnasium's own ``env.step`` J = −136.23 ± 0.09, 80 000 episodes): exact J −123.08 on
    41² (gap 9.6%), −129.08 on 81², −132.36 on 121², −133.80 on 161², −135.13 on 241² (0.80%),
    −135.45 on 281², −135.63 on 321² (0.44%). The error shrinks slowly (order ≈ 0.35
    from 41² to 161²: interpolation diffusion across the goal boundary), so coarse grids
    extrapolate badly; see
    :func:`pgexact.exact.discretization_error` and ``benchmarks/classic_control_convergence.py``.
    """
    npos, nvel = _check_grid("n_position", n_position), _check_grid("n_velocity", n_velocity)
    sparse = _check_size("MountainCar-v0", {"n_position": npos, "n_velocity": nvel}, 3, sparse)
    axes = (np.linspace(-1.2, 0.6, npos), np.linspace(-0.07, 0.07, nvel))
    return _build(
        "MountainCar-v0", axes, (False, False), np.arange(3), mountain_car_step,
        [(-0.6, -0.4), (0.0, 0.0)], gamma, horizon, sparse,
    )


# --------------------------------------------------------------------------- CartPole-v1
CARTPOLE = dict(gravity=9.8, masscart=1.0, masspole=0.1, length=0.5, force_mag=10.0, tau=0.02,
                theta_threshold_radians=12 * 2 * np.pi / 360, x_threshold=2.4)


def cartpole_step(x: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Gymnasium's ``CartPoleEnv.step`` (Euler), vectorized: ``(next state (N, 4), reward (N,), terminated (N,))``."""
    c = CARTPOLE
    total_mass = c["masspole"] + c["masscart"]
    polemass_length = c["masspole"] * c["length"]
    pos, pos_dot, theta, theta_dot = x.T
    force = np.where(action == 1, c["force_mag"], -c["force_mag"])
    costheta, sintheta = np.cos(theta), np.sin(theta)
    temp = (force + polemass_length * np.square(theta_dot) * sintheta) / total_mass
    thetaacc = (c["gravity"] * sintheta - costheta * temp) / (
        c["length"] * (4.0 / 3.0 - c["masspole"] * np.square(costheta) / total_mass)
    )
    xacc = temp - polemass_length * thetaacc * costheta / total_mass
    nxt = np.stack([pos + c["tau"] * pos_dot, pos_dot + c["tau"] * xacc,
                    theta + c["tau"] * theta_dot, theta_dot + c["tau"] * thetaacc], axis=1)
    done = (np.abs(nxt[:, 0]) > c["x_threshold"]) | (np.abs(nxt[:, 2]) > c["theta_threshold_radians"])
    return nxt, np.ones(len(x)), done


def cartpole(
    n_x: int = 11, n_x_dot: int = 11, n_theta: int = 21, n_theta_dot: int = 21, *, gamma: float,
    horizon: int | None = None, x_dot_max: float = 0.75, theta_dot_max: float = 0.75,
    sparse: bool = True,
) -> DiscretizedControl:
    r"""``CartPole-v1`` on an ``n_x`` × ``n_x_dot`` × ``n_theta`` × ``n_theta_dot`` grid (2 actions).

    x on [−2.4, 2.4] and θ on [−12°, 12°] (the termination thresholds), ẋ on
    [−``x_dot_max``, ``x_dot_max``] and θ̇ on [−``theta_dot_max``, ``theta_dot_max``] (unbounded
    in gymnasium: next states beyond are clipped to the grid, a documented approximation).
    Euler dynamics with gymnasium's constants (g = 9.8, cart 1.0, pole 0.1, half-length 0.5,
    force ±10, τ = 0.02); reward 1 per step, including the step that terminates
    (:math:`|x'| > 2.4` or :math:`|\theta'| > 12°`; then: absorbing terminal state). Reset:
    each coordinate ~ U[−0.05, 0.05]. Gymnasium truncates at 500 steps.

    Accuracy: two errors of opposite sign. Multilinear interpolation spreads each step (which
    moves θ by at most τθ̇ ≈ 0.02, far less than a cell) over the cell's vertices: a diffusion of
    variance of about h times the step length per step that makes the pole fall sooner (J too low, shrinking with h).
    Clipping ẋ and θ̇ to the box removes the fastest excursions (J too high, growing as the box
    shrinks). Measured (H = 200, γ = 1, the policy of ``tests/test_classic_control.py``, whose
    velocities reach ±1.1 in 1% of steps; Monte Carlo J = 197.22 ± 0.13, 20 000 episodes):

    ======================  ==========  ==========  ===========
    grid                    box ±1.0    box ±0.75   box ±0.5
    ======================  ==========  ==========  ===========
    7 × 7 × 11 × 11         159.36      181.78      193.87
    9 × 9 × 15 × 15         181.09      193.91      198.26
    11 × 11 × 21 × 21       —           **197.39**  199.53
    13 × 13 × 25 × 25       —           198.69      199.83
    ======================  ==========  ==========  ===========

    (a box of ±1.5 gives 110.2 on 7 × 7 × 11 × 11 and 157.7 on 11 × 11 × 21 × 21; grids denser
    near the origin, x = max·sign(u)|u|², were worse than uniform ones at equal size, 174 to 190
    on 7 × 7 × 11 × 11.) The default, 11 × 11 × 21 × 21 with a ±0.75 box (53 362 states, about
    10 s to build and evaluate at H = 200), is within 0.1% for this policy, but partly by the
    cancellation of the two errors: at this box J keeps rising with refinement (198.69 on
    13 × 13 × 25 × 25; :func:`pgexact.exact.discretization_error` from 7 × 7 × 11 × 11 with ratio 1.5
    extrapolates to 201.6), above the continuous 197.2 by the clipping. A policy with faster
    motions needs a wider box and a finer grid.
    """
    dims = [_check_grid(nm, n) for nm, n in (("n_x", n_x), ("n_x_dot", n_x_dot), ("n_theta", n_theta), ("n_theta_dot", n_theta_dot))]
    x_dot_max = check_positive_finite("x_dot_max", x_dot_max)
    theta_dot_max = check_positive_finite("theta_dot_max", theta_dot_max)
    if max(x_dot_max, theta_dot_max) > 1e300:  # the grid's width 2 * max must be a float64
        raise ValueError(f"x_dot_max and theta_dot_max must be at most 1e300, got {x_dot_max:g} and {theta_dot_max:g}")
    sparse = _check_size("CartPole-v1", dict(zip(("n_x", "n_x_dot", "n_theta", "n_theta_dot"), dims)), 2, sparse)
    th = CARTPOLE["theta_threshold_radians"]
    axes = (np.linspace(-2.4, 2.4, dims[0]), np.linspace(-x_dot_max, x_dot_max, dims[1]),
            np.linspace(-th, th, dims[2]), np.linspace(-theta_dot_max, theta_dot_max, dims[3]))
    return _build(
        "CartPole-v1", axes, (False,) * 4, np.arange(2), cartpole_step,
        [(-0.05, 0.05)] * 4, gamma, horizon, sparse, "lower x_dot_max or theta_dot_max",
    )


# --------------------------------------------------------------------------- discretization error
#: The state-grid arguments of each builder (its leading positional ones): whether each is periodic.
_STATE_DIMS: dict[str, tuple[bool, ...]] = {
    "pendulum": (True, False), "mountain_car": (False, False), "cartpole": (False, False, False, False),
}


def richardson(J: Any, h: Any, order: float | None = None) -> tuple[float, float]:
    r"""Richardson extrapolation of :math:`J(h) = J_0 + c\,h^p + o(h^p)` to :math:`h = 0`.

    With two values and a known order p:

    .. math:: J_0 \approx J(h_1) + \frac{J(h_1) - J(h_0)}{(h_0/h_1)^p - 1};

    with three values and ``order=None``, p is the root of
    :math:`\frac{J(h_0) - J(h_1)}{J(h_1) - J(h_2)} = \frac{h_0^p - h_1^p}{h_1^p - h_2^p}`
    (for equal ratios :math:`r = h_0/h_1 = h_1/h_2` this is :math:`p = \log_r` of the ratio of
    differences) and the two finest values are extrapolated with it (Richardson 1911; Roache 1998,
    *Verification and Validation in Computational Science*, ch. 5, "grid convergence index").

    Parameters
    ----------
    J : sequence of 2 or 3 floats
        Values on grids of decreasing spacing.
    h : sequence of the same length, strictly decreasing positive spacings
    order : float or None
        The order p; required with two values, estimated (and must be None) with three.

    Returns
    -------
    J0 : float
        The extrapolated value.
    p : float
        The order used.

    Raises
    ------
    ValueError
        If the three values are not in the asymptotic range (the differences do not shrink
        monotonically with one sign), so that no order in (0, 20) fits them.

    Examples
    --------
    >>> J0, p = richardson([1 + 0.5**2, 1 + 0.25**2, 1 + 0.125**2], [0.5, 0.25, 0.125])  # J = 1 + h^2
    >>> round(J0, 12), round(p, 12)
    (1.0, 2.0)
    >>> richardson([3.0 + 0.5, 3.0 + 0.25], [0.5, 0.25], order=1.0)  # J = 3 + h, two grids
    (3.0, 1.0)
    """
    J = as_float_array("J", J, ndim=1)
    h = as_float_array("h", h, ndim=1)
    if J.size not in (2, 3) or h.size != J.size:
        raise ValueError(f"J and h must both have 2 or 3 entries, got {J.size} and {h.size}")
    bad = ~(h > 0) | np.r_[False, ~(np.diff(h) < 0)]
    if bad.any():
        raise ValueError(f"h must be positive and strictly decreasing: h[{int(np.argmax(bad))}] = {h[int(np.argmax(bad))]:g}")
    if J.size == 2:
        if order is None:
            raise ValueError("two values need order=p (three values let the order be estimated)")
        p = check_positive_finite("order", order)
    else:
        if order is not None:
            raise ValueError("order must be None with three values (it is estimated from them)")
        d0, d1 = J[0] - J[1], J[1] - J[2]
        if d1 == 0 or d0 * d1 <= 0:
            raise ValueError(
                f"J = {J.tolist()} is not in the asymptotic range (differences {d0:.6g} then {d1:.6g} do not "
                "shrink with one sign): no order fits; start from a finer grid"
            )
        import scipy.optimize

        target = d0 / d1
        f = lambda q: (h[0] ** q - h[1] ** q) / (h[1] ** q - h[2] ** q) - target  # noqa: E731
        lo, hi = 1e-6, 20.0
        if f(lo) * f(hi) > 0:
            raise ValueError(
                f"J = {J.tolist()} on h = {h.tolist()}: the ratio of differences {target:.6g} needs an order "
                "outside (0, 20); start from a finer grid"
            )
        p = float(scipy.optimize.brentq(f, lo, hi, xtol=1e-14, rtol=1e-14))
    return float(J[-1] + (J[-1] - J[-2]) / ((h[-2] / h[-1]) ** p - 1)), float(p)
