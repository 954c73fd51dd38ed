r"""Theorems of the model builders (:mod:`pgexact.mdps`), the discretization error estimate and multichain average reward.

Each builder is checked against an independent construction of the model from its definition
(written out here, sharing nothing with the builder beyond the definition's constants) or
against a published closed form:

* ``models.bandit_value`` — :func:`pgexact.mdps.bandit`: :math:`J(\pi) = \sum_a \pi(a)\,m_a`.
* ``models.short_corridor_value`` — :func:`pgexact.mdps.short_corridor`: Sutton & Barto's
  closed form :math:`J(p) = (2p-4)/(p(1-p))`, its maximizer :math:`p^* = 2-\sqrt2 \approx 0.59`
  and value :math:`J^* = -(6+4\sqrt2) \approx -11.66` (Example 13.1: "p ≈ 0.59, value ≈ −11.6").
* ``models.chain_values`` — :func:`pgexact.mdps.chain`: V and Q of random policies against a
  dense solve on the chain built cell by cell from its docstring's definition.
* ``models.gridworld_model`` — :func:`pgexact.mdps.gridworld` (dense and ``sparse=True``):
  P, r, μ0 against the gridworld built cell by cell from its definition.
* ``models.pendulum_transitions``, ``models.mountain_car_transitions``,
  ``models.cartpole_transitions`` — the classic-control builders: P, r and μ0 against
  gymnasium's equations written out here (not imported) and hat-function interpolation weights
  :math:`\max(0, 1 - |x - x_j|/h)` (circular distance on Pendulum's angle), μ0 by 2-point
  Gauss–Legendre quadrature of the hat functions over the reset box (exact: they are piecewise
  linear).
* ``models.discretization_error_known_limit`` — :func:`pgexact.exact.discretization_error` on
  a problem whose continuous J and grid error are known in closed form (Pendulum, horizon 1:
  trapezoid rules of θ² and θ̇², error exactly quadratic in h).
* ``models.multichain_gain_bias`` — :func:`pgexact.average.multichain_evaluate` against
  Puterman's multichain evaluation equations (ch. 9) solved by least squares.
* ``models.average_pi_gradient`` — :func:`pgexact.average.pi_gradient` against complex-step
  directional derivatives of the gain.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .. import average, exact
from ..mdps import bandit, cartpole, chain, gridworld, mountain_car, pendulum, short_corridor
from ..mdps import classic_control as cc
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax
from .average import AverageProblem
from .average import _problem as _average_problem
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []


def _random_pi(rng: np.random.Generator, S: int, A: int) -> np.ndarray:
    return rng.dirichlet(np.ones(A), size=S)


# --------------------------------------------------------------------------- bandit
@dataclass(frozen=True)
class BanditProblem:
    means: np.ndarray
    pi: np.ndarray


def _bandit_problem(rng: np.random.Generator) -> BanditProblem:
    A = int(rng.integers(2, 7))
    return BanditProblem(rng.standard_normal(A), _random_pi(rng, 1, A))


def _bandit_J(means: np.ndarray, pi: np.ndarray, horizon: int = 1) -> float:
    mdp = bandit(means) if horizon == 1 else FiniteMDP(np.ones((1, len(means), 1)), means[None, :], np.ones(1), 1.0, horizon)
    return float(exact.evaluate(mdp, pi).J)


identity(
    id="models.bandit_value",
    statement=r"J(\pi) = \textstyle\sum_a \pi(a)\, m_a \text{ for bandit}(m)",
    source="Sutton & Barto (2018), sec. 2.1 (the value of an action is its mean reward; a policy's value their "
    "pi-weighted sum)",
    reference="the dot product pi . means (no MDP)",
    instance=_bandit_problem,
    computed=lambda bp: _bandit_J(bp.means, bp.pi),
    expected=lambda bp: float(bp.pi[0] @ bp.means),
    tolerance=1e-13,
    tolerance_reason="a sum of at most 6 products of size <= 5: rounding <= 6 * 5 * 1.1e-16 = 3.3e-15 relative to "
    "the floor 1 (observed 0 over 100 instances: the same products summed in the same order)",
    mutants={
        "the arms' means in reverse order": lambda bp: _bandit_J(bp.means[::-1].copy(), bp.pi),
        "the one-step bandit given two steps (horizon 2)": lambda bp: _bandit_J(bp.means, bp.pi, horizon=2),
    },
)


# --------------------------------------------------------------------------- short corridor
P_STAR = 2.0 - math.sqrt(2.0)  # argmax of (2p - 4) / (p (1 - p)) on (0, 1)
J_STAR = -(6.0 + 4.0 * math.sqrt(2.0))
CORRIDOR_HORIZON = 600  # survival after 600 steps < 1e-15 for p in [0.25, 0.85] (decay rate >= 0.065)


@dataclass(frozen=True)
class CorridorProblem:
    p: float


def _corridor_values(p: float, mistake: str = "") -> tuple[float, float, float]:
    """(J(p), J(p*), dJ/dtheta_0 at p*) on the builder's corridor, possibly with a mistake in its model."""
    corridor = short_corridor(horizon=CORRIDOR_HORIZON)
    mdp = corridor.mdp
    if mistake:
        P, r = np.array(mdp.P), np.array(mdp.r)
        if mistake == "unswitched":
            P[1] = P[1, ::-1]
        else:  # the step into the terminal state unpaid
            r[2, 1] = 0.0
        mdp = FiniteMDP(P, r, mdp.mu0, 1.0, CORRIDOR_HORIZON)
    policy = LinearSoftmax(corridor.features)
    J = float(exact.evaluate(mdp, policy.probs(corridor.theta_for(p))).J)
    theta = corridor.theta_for(P_STAR)
    J_opt = float(exact.evaluate(mdp, policy.probs(theta)).J)
    grad = exact.policy_gradient(mdp, policy, theta)
    return J, J_opt, float(grad[0])


identity(
    id="models.short_corridor_value",
    statement=r"J(p) = \frac{2p-4}{p(1-p)},\quad \arg\max_p J = 2-\sqrt2 \approx 0.586,\quad "
    r"J(2-\sqrt2) = -(6+4\sqrt2) \approx -11.66",
    source="Sutton & Barto (2018), Example 13.1 (short corridor with switched actions; optimum p ~ 0.59, value ~ -11.6)",
    reference="the closed form (2p-4)/(p(1-p)) from the three Bellman equations solved by hand, the maximizer "
    "2 - sqrt 2 (root of p^2 - 4p + 2) and its value -(6 + 4 sqrt 2); the gradient there is 0",
    instance=lambda rng: CorridorProblem(float(rng.uniform(0.25, 0.85))),
    computed=lambda cp: _corridor_values(cp.p),
    expected=lambda cp: ((2 * cp.p - 4) / (cp.p * (1 - cp.p)), J_STAR, 0.0),
    tolerance=1e-11,
    tolerance_reason="600 steps of a 4-state recursion of values <= 30: rounding <= 600 * 30 * 2.2e-16 = 4e-12 "
    "relative to |J| >= 11.6 is < 1e-12; the horizon's truncation < 1e-15 (observed <= 3.6e-15 over 100 instances)",
    mutants={
        "state 1's actions not switched (the ordinary corridor)": lambda cp: _corridor_values(cp.p, "unswitched"),
        "the step into the terminal state unpaid": lambda cp: _corridor_values(cp.p, "unpaid"),
    },
    default_instances=4,
)


# --------------------------------------------------------------------------- chain
@dataclass(frozen=True)
class ChainProblem:
    n: int
    gamma: float
    slip: float
    small: float
    large: float
    pi: np.ndarray


def _chain_problem(rng: np.random.Generator) -> ChainProblem:
    n = int(rng.integers(2, 7))
    return ChainProblem(n, float(rng.uniform(0.5, 0.95)), float(rng.uniform(0.05, 0.45)),
                        float(rng.uniform(0.1, 1.0)), float(rng.uniform(0.5, 2.0)), _random_pi(rng, n, 2))


def _chain_reference(cp: ChainProblem) -> tuple[np.ndarray, np.ndarray]:
    """V and Q from the chain built from its definition, cell by cell, and a dense solve."""
    n = cp.n
    P = np.zeros((n, 2, n))
    r = np.zeros((n, 2))
    for s in range(n):
        for a, (intended, other) in enumerate(((s - 1, s + 1), (s + 1, s - 1))):  # 0 = left, 1 = right
            for target, prob in ((intended, 1 - cp.slip), (other, cp.slip)):
                P[s, a, min(max(target, 0), n - 1)] += prob
            # staying put by moving left at 0 pays small; by moving right at n - 1 pays large
            if a == 0 and s == 0:
                r[s, a] = cp.small * ((1 - cp.slip) + (cp.slip if n == 1 else 0.0))
            if a == 1 and s == n - 1:
                r[s, a] += cp.large * (1 - cp.slip)
    P_pi = np.einsum("sa,sat->st", cp.pi, P)
    V = np.linalg.solve(np.eye(n) - cp.gamma * P_pi, (cp.pi * r).sum(axis=1))
    return V, r + cp.gamma * P @ V


def _chain_values(cp: ChainProblem, slip: float | None = None, swap: bool = False) -> tuple[np.ndarray, np.ndarray]:
    mdp = chain(cp.n, gamma=cp.gamma, slip=cp.slip if slip is None else slip, small_reward=cp.small,
                large_reward=cp.large)
    pi = cp.pi[:, ::-1] if swap else cp.pi
    ev = exact.evaluate(mdp, pi)
    return np.asarray(ev.V), np.asarray(ev.Q)[:, ::-1] if swap else np.asarray(ev.Q)


identity(
    id="models.chain_values",
    statement=r"V_\pi = (I - \gamma P_\pi)^{-1} r_\pi,\ Q = r + \gamma P V \text{ on chain}(n, \text{slip})",
    source="Puterman (1994), Theorem 6.1.1 (V is the unique solution of V = r + gamma P V) on the chain of "
    "pgexact.mdps.chain's docstring (a slippery chain in the family of Strens (2000)'s chain problem)",
    reference="the chain built state by state from its definition (intended move w.p. 1 - slip, the opposite w.p. "
    "slip, clipped at the ends; small reward for staying at 0 by moving left, large for staying at n-1 by moving "
    "right) and a dense numpy solve",
    instance=_chain_problem,
    computed=_chain_values,
    expected=_chain_reference,
    tolerance=1e-12,
    tolerance_reason="two solves of condition <= (1+gamma)/(1-gamma) <= 39 with values <= 40: rounding "
    "<= 39 * 40 * 2.2e-16 * n = 2e-12 absolute is a bound; observed <= 6e-16 relative over 100 instances",
    mutants={
        "the slip ignored (deterministic moves)": lambda cp: _chain_values(cp, slip=0.0),
        "the actions' directions swapped (0 = right)": lambda cp: _chain_values(cp, swap=True),
    },
)


# --------------------------------------------------------------------------- gridworld
@dataclass(frozen=True)
class GridProblem:
    height: int
    width: int
    slip: float
    goal: tuple[int, int]
    start: tuple[int, int]
    step_reward: float
    goal_reward: float


def _grid_problem(rng: np.random.Generator) -> GridProblem:
    h, w = int(rng.integers(2, 5)), int(rng.integers(2, 5))
    cell = lambda: (int(rng.integers(h)), int(rng.integers(w)))  # noqa: E731
    return GridProblem(h, w, float(rng.uniform(0.05, 0.5)), cell(), cell(), float(rng.standard_normal()),
                       float(rng.uniform(0.5, 2.0)))


def _grid_reference(gp: GridProblem) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """P, r, mu0 of the gridworld built cell by cell from its docstring."""
    H, W = gp.height, gp.width
    S = H * W
    moves = {0: (-1, 0), 1: (0, 1), 2: (1, 0), 3: (0, -1)}  # up, right, down, left
    goal = gp.goal[0] * W + gp.goal[1]
    P = np.zeros((S, 4, S))
    r = np.zeros((S, 4))
    for row in range(H):
        for col in range(W):
            s = row * W + col
            for a in range(4):
                if s == goal:  # terminal: absorbing, zero reward
                    P[s, a, s] = 1.0
                    continue
                for m, (dr, dc) in moves.items():
                    prob = (1 - gp.slip if m == a else 0.0) + gp.slip / 4
                    nr, nc = row + dr, col + dc
                    if not (0 <= nr < H and 0 <= nc < W):  # off the grid: stay
                        nr, nc = row, col
                    P[s, a, nr * W + nc] += prob
                r[s, a] = gp.step_reward + gp.goal_reward * P[s, a, goal]
    mu0 = np.zeros(S)
    mu0[gp.start[0] * W + gp.start[1]] = 1.0
    return P, r, mu0


def _grid_model(gp: GridProblem, **change: float) -> tuple[np.ndarray, ...]:
    kw = dict(gamma=0.9, slip=gp.slip, goal=gp.goal, start=gp.start, step_reward=gp.step_reward,
              goal_reward=gp.goal_reward)
    kw.update(change)
    dense = gridworld(gp.height, gp.width, **kw)
    sparse = gridworld(gp.height, gp.width, sparse=True, **kw)
    S = dense.n_states
    return (np.asarray(dense.P), np.asarray(dense.r), np.asarray(dense.mu0),
            sparse.P.toarray().reshape(S, 4, S), np.asarray(sparse.r), np.asarray(sparse.mu0))


def _grid_up_down_swapped(gp: GridProblem) -> tuple[np.ndarray, ...]:
    P, r, mu0, Ps, rs, mu0s = _grid_model(gp)
    order = [2, 1, 0, 3]  # rows counted from the bottom: up and down exchanged
    return P[:, order], r[:, order], mu0, Ps[:, order], rs[:, order], mu0s


identity(
    id="models.gridworld_model",
    statement=r"P(s'|s,a) = (1-\text{slip})[s' = m_a(s)] + \tfrac{\text{slip}}4\textstyle\sum_m [s' = m(s)],\ "
    r"r(s,a) = r_{\text{step}} + r_{\text{goal}} P(g|s,a),\ g \text{ absorbing}",
    source="Sutton & Barto (2018), Example 3.5 (gridworld; off-grid moves leave the state unchanged) with a "
    "uniformly random slip; pgexact.mdps.gridworld's definition",
    reference="the gridworld built cell by cell and move by move from its definition (Python loops); compared with "
    "the dense builder and with sparse=True",
    instance=_grid_problem,
    computed=lambda gp: _grid_model(gp),
    expected=lambda gp: (lambda P, r, mu0: (P, r, mu0, P, r, mu0))(*_grid_reference(gp)),
    tolerance=1e-14,
    tolerance_reason="sums of at most 4 probabilities (1 - slip) + slip/4: rounding <= 4 * 1.1e-16 "
    "(observed 0 over 100 instances); rewards one product and sum",
    mutants={
        "up and down exchanged (rows counted from the bottom)": _grid_up_down_swapped,
        "the slip left out": lambda gp: _grid_model(gp, slip=0.0),
    },
)


# --------------------------------------------------------------------------- classic control
def _hat_weights(x: np.ndarray, axis: np.ndarray, periodic: bool) -> np.ndarray:
    """(N, n) hat-function weights max(0, 1 - |x - x_j| / h) of a uniform axis (circular distance if periodic)."""
    if periodic:
        h = 2 * np.pi / len(axis)
        d = np.abs(np.mod(x[:, None] - axis[None, :] + np.pi, 2 * np.pi) - np.pi)
    else:
        h = (axis[-1] - axis[0]) / (len(axis) - 1)
        d = np.abs(np.clip(x, axis[0], axis[-1])[:, None] - axis[None, :])
    return np.maximum(0.0, 1.0 - d / h)


def _reset_weights(axis: np.ndarray, periodic: bool, lo: float, hi: float) -> np.ndarray:
    """E[hat weights] for x ~ U[lo, hi] by 2-point Gauss-Legendre on each piece (exact: piecewise linear)."""
    if lo == hi:
        return _hat_weights(np.array([lo]), axis, periodic)[0]
    if periodic:
        h = 2 * np.pi / len(axis)
        kinks = axis[0] + h * np.arange(-len(axis), 2 * len(axis) + 1)
    else:
        kinks = axis
    knots = np.unique(np.concatenate([[lo, hi], kinks[(kinks > lo) & (kinks < hi)]]))
    a, b = knots[:-1], knots[1:]
    nodes = np.concatenate([(a + b) / 2 - (b - a) / (2 * math.sqrt(3)), (a + b) / 2 + (b - a) / (2 * math.sqrt(3))])
    weights = np.concatenate([(b - a) / 2, (b - a) / 2])
    return weights @ _hat_weights(nodes, axis, periodic) / (hi - lo)


def _grid_reference_model(axes, periodic, actions, step, reset_box):  # noqa: ANN001, ANN202
    """P (S, A, S), r (S, A), mu0 (S,) of the grid chain, from the step written out here and hat weights."""
    verts = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    V, A = len(verts), len(actions)
    terminal = False
    rows, rewards, dones = [], [], []
    for a in range(A):
        nxt, rew, done = step(verts, actions[a])
        w = np.ones((V, 1))
        for k, (ax, per) in enumerate(zip(axes, periodic)):
            w = (w[:, :, None] * _hat_weights(nxt[:, k], ax, per)[:, None, :]).reshape(V, -1)
        rows.append(w)
        rewards.append(rew)
        dones.append(done)
        terminal |= bool(done.any())
    S = V + 1 if terminal else V
    P = np.zeros((S, A, S))
    r = np.zeros((S, A))
    for a in range(A):
        P[:V, a, :V] = np.where(dones[a][:, None], 0.0, rows[a])
        if terminal:
            P[:V, a, V] = dones[a]
            P[V, a, V] = 1.0
        r[:V, a] = rewards[a]
    mu = np.ones(1)
    for ax, per, (lo, hi) in zip(axes, periodic, reset_box):
        mu = np.multiply.outer(mu, _reset_weights(ax, per, lo, hi)).reshape(-1)
    return P, r, np.concatenate([mu, [0.0]]) if terminal else mu


def _model_arrays(env: cc.DiscretizedControl) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    S, A = env.mdp.n_states, env.mdp.n_actions
    P = env.mdp.P
    P = P.toarray().reshape(S, A, S) if hasattr(P, "toarray") else np.asarray(P)
    return P, np.asarray(env.mdp.r), np.asarray(env.mdp.mu0)


def _rebuilt(env: cc.DiscretizedControl, step, reset_box, periodic=None):  # noqa: ANN001, ANN202
    """The builder's own assembly (grid, interpolation, reset) with a different (mistaken) step or periodicity."""
    return _model_arrays(cc._build(env.name, env.axes, env.periodic if periodic is None else periodic,
                                   env.actions, step, reset_box, 1.0, 5, True))


# Pendulum-v1 (gymnasium/envs/classic_control/pendulum.py), written out
def _pendulum_equations(x: np.ndarray, u: float, g: float = 10.0, euler: bool = False):  # noqa: ANN202
    th, thdot = x[:, 0], x[:, 1]
    u = min(max(u, -2.0), 2.0)
    m, l, dt = 1.0, 1.0, 0.05  # noqa: E741
    wrapped = np.mod(th + np.pi, 2 * np.pi) - np.pi
    cost = wrapped**2 + 0.1 * thdot**2 + 0.001 * u**2
    new_thdot = np.clip(thdot + (3 * g / (2 * l) * np.sin(th) + 3.0 / (m * l**2) * u) * dt, -8.0, 8.0)
    new_th = th + (thdot if euler else new_thdot) * dt
    return np.stack([new_th, new_thdot], axis=1), -cost, np.zeros(len(x), dtype=bool)


PENDULUM_RESET = [(-np.pi, np.pi), (-1.0, 1.0)]


@dataclass(frozen=True)
class ControlProblem:
    grid: tuple[int, ...]
    n_actions: int
    box: tuple[float, float] = (0.0, 0.0)  # CartPole's velocity box (x_dot_max, theta_dot_max)
    g: float = 10.0  # Pendulum's gravity


def _pendulum_env(cp: ControlProblem) -> cc.DiscretizedControl:
    return pendulum(*cp.grid, n_torques=cp.n_actions, gamma=1.0, horizon=5, g=cp.g)


def _pendulum_reference(cp: ControlProblem):  # noqa: ANN202
    axes = (-np.pi + 2 * np.pi * np.arange(cp.grid[0]) / cp.grid[0], np.linspace(-8.0, 8.0, cp.grid[1]))
    return _grid_reference_model(axes, (True, False), np.linspace(-2.0, 2.0, cp.n_actions),
                                 lambda x, u: _pendulum_equations(x, u, cp.g), PENDULUM_RESET)


def _vectorized(equations, **kw):  # noqa: ANN001, ANN202
    """A step of (states, actions) from equations of (states, one action)."""
    def step(x: np.ndarray, acts: np.ndarray):  # noqa: ANN202
        out = [equations(x[i:i + 1], float(acts[i]), **kw) for i in range(len(x))]
        return (np.concatenate([o[0] for o in out]), np.concatenate([o[1] for o in out]),
                np.concatenate([o[2] for o in out]))
    return step


_CONTROL_TOLERANCE_REASON = (
    "hat weights are 1 - |x - x_j|/h with |x - x_j| <= h: the two routes (cell search and weight of the upper "
    "vertex vs distance to each vertex) differ by rounding of a few ulps of the coordinates over h, amplified by "
    "the product over <= 4 axes: <= 1e-13 (observed <= 2.4e-15 over 100 instances of each builder); rewards the "
    "same formulas"
)

identity(
    id="models.pendulum_transitions",
    statement=r"P(x_j|x_i,u) = \prod_k \max\big(0, 1 - |f(x_i,u)_k - x_{j,k}|/h_k\big),\ "
    r"f:\ \dot\theta' = \mathrm{clip}(\dot\theta + (\tfrac{3g}{2l}\sin\theta + \tfrac{3u}{ml^2})dt, \pm8),\ "
    r"\theta' = \theta + \dot\theta' dt",
    source="gymnasium 1.x, Pendulum-v1 (envs/classic_control/pendulum.py, step and reset); Kushner & Dupuis (2001), "
    "ch. 5 (Markov chain approximation by interpolation)",
    reference="gymnasium's equations written out here (not imported, not the library's pendulum_step), hat-function "
    "weights with circular distance on the angle, and mu0 by Gauss-Legendre quadrature of the hats over the reset box",
    instance=lambda rng: ControlProblem((int(rng.integers(3, 7)), int(rng.integers(2, 6))), int(rng.integers(2, 5)),
                                        g=float(rng.uniform(8.0, 12.0))),
    computed=lambda cp: _model_arrays(_pendulum_env(cp)),
    expected=_pendulum_reference,
    tolerance=1e-12,
    tolerance_reason=_CONTROL_TOLERANCE_REASON,
    mutants={
        "explicit Euler (theta' from the old theta-dot)": lambda cp: _rebuilt(
            _pendulum_env(cp), _vectorized(_pendulum_equations, g=cp.g, euler=True), PENDULUM_RESET),
        "the angle not wrapped (a non-periodic axis)": lambda cp: _rebuilt(
            _pendulum_env(cp), lambda x, u: cc.pendulum_step(x, u, cp.g), PENDULUM_RESET, periodic=(False, False)),
    },
)


# MountainCar-v0 (gymnasium/envs/classic_control/mountain_car.py), written out
def _mountain_car_equations(x: np.ndarray, action: float, wall: bool = True, old_velocity: bool = False):  # noqa: ANN202
    position, velocity = x[:, 0], x[:, 1]
    v = np.clip(velocity + (action - 1) * 0.001 + np.cos(3 * position) * (-0.0025), -0.07, 0.07)
    p = np.clip(position + (velocity if old_velocity else v), -1.2, 0.6)
    if wall:
        v = np.where((p == -1.2) & (v < 0), 0.0, v)
    done = (p >= 0.5) & (v >= 0.0)
    return np.stack([p, v], axis=1), np.full(len(x), -1.0), done


MOUNTAIN_CAR_RESET = [(-0.6, -0.4), (0.0, 0.0)]


def _mountain_car_env(cp: ControlProblem) -> cc.DiscretizedControl:
    return mountain_car(*cp.grid, gamma=1.0, horizon=5)


identity(
    id="models.mountain_car_transitions",
    statement=r"P(x_j|x_i,a) = \prod_k \max\big(0, 1 - |f(x_i,a)_k - x_{j,k}|/h_k\big) \text{ or the terminal},\ "
    r"f:\ v' = \mathrm{clip}(v + 0.001(a-1) - 0.0025\cos 3p, \pm0.07),\ p' = \mathrm{clip}(p + v', [-1.2, 0.6])",
    source="gymnasium 1.x, MountainCar-v0 (envs/classic_control/mountain_car.py, step and reset); Kushner & Dupuis "
    "(2001), ch. 5",
    reference="gymnasium's equations written out here (inelastic left wall, goal p' >= 0.5 and v' >= 0), hat-function "
    "weights, and mu0 by Gauss-Legendre quadrature of the hats over p ~ U[-0.6, -0.4], v = 0",
    instance=lambda rng: ControlProblem((int(rng.integers(3, 8)), int(rng.integers(3, 8))), 3),
    computed=lambda cp: _model_arrays(_mountain_car_env(cp)),
    expected=lambda cp: _grid_reference_model(
        (np.linspace(-1.2, 0.6, cp.grid[0]), np.linspace(-0.07, 0.07, cp.grid[1])), (False, False),
        np.arange(3.0), _mountain_car_equations, MOUNTAIN_CAR_RESET),
    tolerance=1e-12,
    tolerance_reason=_CONTROL_TOLERANCE_REASON,
    mutants={
        "no inelastic wall (velocity kept at the left wall)": lambda cp: _rebuilt(
            _mountain_car_env(cp), _vectorized(_mountain_car_equations, wall=False), MOUNTAIN_CAR_RESET),
        "the position moved by the old velocity": lambda cp: _rebuilt(
            _mountain_car_env(cp), _vectorized(_mountain_car_equations, old_velocity=True), MOUNTAIN_CAR_RESET),
    },
)


# CartPole-v1 (gymnasium/envs/classic_control/cartpole.py, kinematics_integrator="euler"), written out
def _cartpole_equations(x: np.ndarray, action: float, semi_implicit: bool = False, flipped: bool = False):  # noqa: ANN202
    gravity, masscart, masspole, length, force_mag, tau = 9.8, 1.0, 0.1, 0.5, 10.0, 0.02
    total_mass, polemass_length = masspole + masscart, masspole * length
    pos, pos_dot, theta, theta_dot = x.T
    force = force_mag if (action == 1) != flipped else -force_mag
    temp = (force + polemass_length * theta_dot**2 * np.sin(theta)) / total_mass
    thetaacc = (gravity * np.sin(theta) - np.cos(theta) * temp) / (
        length * (4.0 / 3.0 - masspole * np.cos(theta) ** 2 / total_mass))
    xacc = temp - polemass_length * thetaacc * np.cos(theta) / total_mass
    if semi_implicit:
        pos_dot_n, theta_dot_n = pos_dot + tau * xacc, theta_dot + tau * thetaacc
        nxt = np.stack([pos + tau * pos_dot_n, pos_dot_n, theta + tau * theta_dot_n, theta_dot_n], axis=1)
    else:
        nxt = np.stack([pos + tau * pos_dot, pos_dot + tau * xacc, theta + tau * theta_dot,
                        theta_dot + tau * thetaacc], axis=1)
    done = (nxt[:, 0] < -2.4) | (nxt[:, 0] > 2.4) | (nxt[:, 2] < -12 * 2 * math.pi / 360) | (
        nxt[:, 2] > 12 * 2 * math.pi / 360)
    return nxt, np.ones(len(x)), done


CARTPOLE_RESET = [(-0.05, 0.05)] * 4


def _cartpole_env(cp: ControlProblem) -> cc.DiscretizedControl:
    return cartpole(*cp.grid, gamma=1.0, horizon=5, x_dot_max=cp.box[0], theta_dot_max=cp.box[1])


def _cartpole_reference(cp: ControlProblem):  # noqa: ANN202
    th = 12 * 2 * math.pi / 360
    axes = (np.linspace(-2.4, 2.4, cp.grid[0]), np.linspace(-cp.box[0], cp.box[0], cp.grid[1]),
            np.linspace(-th, th, cp.grid[2]), np.linspace(-cp.box[1], cp.box[1], cp.grid[3]))
    return _grid_reference_model(axes, (False,) * 4, np.arange(2.0), _cartpole_equations, CARTPOLE_RESET)


identity(
    id="models.cartpole_transitions",
    statement=r"P(x_j|x_i,a) = \prod_k \max\big(0, 1 - |\mathrm{clip}(f(x_i,a))_k - x_{j,k}|/h_k\big) "
    r"\text{ or the terminal (|x'| > 2.4 or |\theta'| > 12°)},\ f = \text{Euler step of the cart-pole}",
    source="gymnasium 1.x, CartPole-v1 (envs/classic_control/cartpole.py, kinematics_integrator='euler'); Barto, "
    "Sutton & Anderson (1983); Kushner & Dupuis (2001), ch. 5",
    reference="gymnasium's equations written out here (not the library's cartpole_step), next velocities clipped to "
    "the grid box as documented, hat-function weights, mu0 by Gauss-Legendre quadrature over U[-0.05, 0.05]^4",
    instance=lambda rng: ControlProblem(tuple(int(n) for n in rng.integers(2, 4, size=4)), 2,
                                        (float(rng.uniform(0.3, 1.5)), float(rng.uniform(0.3, 1.5)))),
    computed=lambda cp: _model_arrays(_cartpole_env(cp)),
    expected=_cartpole_reference,
    tolerance=1e-12,
    tolerance_reason=_CONTROL_TOLERANCE_REASON,
    mutants={
        "semi-implicit Euler (gymnasium's other integrator) in place of Euler": lambda cp: _rebuilt(
            _cartpole_env(cp), _vectorized(_cartpole_equations, semi_implicit=True), CARTPOLE_RESET),
        "the force's sign flipped (action 1 pushes left)": lambda cp: _rebuilt(
            _cartpole_env(cp), _vectorized(_cartpole_equations, flipped=True), CARTPOLE_RESET),
    },
)


# --------------------------------------------------------------------------- discretization error
@dataclass(frozen=True)
class KnownLimitProblem:
    n_theta: int
    q: np.ndarray  # action probabilities, the same in every state
    known_order: bool

    @property
    def torques(self) -> np.ndarray:
        return np.linspace(-2.0, 2.0, len(self.q))


N_OMEGA = 17  # +-1 (the reset box of theta-dot) are vertices of linspace(-8, 8, 16 k + 1)


def _known_limit_problem(rng: np.random.Generator) -> KnownLimitProblem:
    return KnownLimitProblem(int(rng.integers(3, 7)), rng.dirichlet(np.ones(int(rng.integers(2, 5)))),
                             bool(rng.integers(2)))


def _estimate(kp: KnownLimitProblem, order: float | None = None) -> exact.DiscretizationError:
    policy = lambda obs, acts: np.broadcast_to(kp.q, (len(obs), len(acts)))  # noqa: E731
    if order is None and kp.known_order:
        order = 2.0
    return exact.discretization_error(pendulum, policy, (kp.n_theta, N_OMEGA), ratio=2.0, order=order,
                                      n_torques=len(kp.q), gamma=1.0, horizon=1)


def _known_limit(kp: KnownLimitProblem) -> tuple[float, float, float]:
    """(J on the grid, J_continuous - J, order 2) in closed form."""
    h_theta, h_omega = 2 * np.pi / kp.n_theta, 16.0 / (N_OMEGA - 1)
    J0 = -(np.pi**2 / 3 + 0.1 / 3 + 0.001 * kp.q @ kp.torques**2)
    err = h_theta**2 / 6 + 0.1 * h_omega**2 / 6
    return J0 - err, err, 2.0


identity(
    id="models.discretization_error_known_limit",
    statement=r"J_h = J_0 - \tfrac{h_\theta^2}{6} - \tfrac{0.1\,h_{\dot\theta}^2}{6},\ "
    r"J_0 = -\big(\tfrac{\pi^2}3 + \tfrac{0.1}3 + 0.001\,E[u^2]\big) "
    r"\Rightarrow \text{discretization\_error} = (J_h,\ J_0 - J_h,\ p = 2)",
    source="Richardson (1911), sec. 1; the composite trapezoid rule's error -(b-a) h^2 f''/12, exact for quadratics "
    "(Davis & Rabinowitz 1984, Methods of Numerical Integration, sec. 2.1); Pendulum-v1's reward and reset",
    reference="Pendulum at horizon 1 with a state-independent policy: J_h = mu0 . r is the trapezoid rule of "
    "-(theta^2 + 0.1 theta-dot^2) over the reset box (the hats' mean), so the continuous J, the grid's J and its "
    "error h^2/6 per quadratic term are known in closed form (theta-dot grids 17, 33, 65 put +-1 on vertices)",
    instance=_known_limit_problem,
    computed=lambda kp: (lambda e: (e.J, e.error, e.order))(_estimate(kp)),
    expected=_known_limit,
    tolerance=1e-10,
    tolerance_reason="differences of J between grids are >= 0.05 (h_theta <= 2.1); rounding 1e-15 in J gives "
    "<= 1e-13 in the order (1/log 2 over differences of size 0.05) and in the extrapolation (observed <= 9e-14 "
    "over 100 instances)",
    mutants={
        "order 1 assumed (first-order Richardson) where the error is O(h^2)": lambda kp: (
            lambda e: (e.J, e.error, 2.0))(_estimate(kp, order=1.0)),
        "the error's sign flipped (J - J_0)": lambda kp: (lambda e: (e.J, -e.error, e.order))(_estimate(kp)),
    },
    default_instances=3,
)


# --------------------------------------------------------------------------- multichain average reward
@dataclass(frozen=True)
class MultichainProblem:
    P: np.ndarray
    r: np.ndarray
    pi: np.ndarray


def _multichain_problem(rng: np.random.Generator) -> MultichainProblem:
    """Two closed classes (the second possibly a deterministic 2-cycle) and 1..3 transient states."""
    c1, c2, nt = int(rng.integers(1, 3)), int(rng.integers(1, 3)), int(rng.integers(1, 4))
    S, A = c1 + c2 + nt, int(rng.integers(2, 4))
    P = np.zeros((S, A, S))
    first, second = np.arange(c1), np.arange(c1, c1 + c2)
    for C in (first, second):
        P[np.ix_(C, np.arange(A), C)] = rng.dirichlet(np.ones(len(C)), size=(len(C), A))
    if c2 == 2 and rng.random() < 0.5:  # periodic class
        P[second[0], :, :] = np.eye(S)[second[1]]
        P[second[1], :, :] = np.eye(S)[second[0]]
    P[c1 + c2:] = rng.dirichlet(np.ones(S), size=(nt, A))
    return MultichainProblem(P, rng.standard_normal((S, A)), _random_pi(rng, S, A))


def _puterman_reference(mp: MultichainProblem) -> tuple[np.ndarray, np.ndarray]:
    r"""g, h from (I - P)g = 0, g + (I - P)h = r, h + (I - P)w = 0 (Puterman Theorem 9.1.2 / 8.2.6) by lstsq."""
    P_pi = np.einsum("sa,sat->st", mp.pi, mp.P)
    r_pi = (mp.pi * mp.r).sum(axis=1)
    S = len(r_pi)
    I, Z, M = np.eye(S), np.zeros((S, S)), np.eye(S) - P_pi
    system = np.block([[M, Z, Z], [I, M, Z], [Z, I, M]])
    rhs = np.concatenate([np.zeros(S), r_pi, np.zeros(S)])
    x = np.linalg.lstsq(system, rhs, rcond=None)[0]
    return x[:S], x[S:2 * S]


def _multichain(mp: MultichainProblem) -> tuple[np.ndarray, np.ndarray]:
    ev = average.multichain_evaluate((mp.P, mp.r), mp.pi)
    return np.asarray(ev.gain), np.asarray(ev.h)


def _unichain_gain(mp: MultichainProblem) -> tuple[np.ndarray, np.ndarray]:
    P_pi = np.einsum("sa,sat->st", mp.pi, mp.P)
    w, vl = np.linalg.eig(P_pi.T)
    d = np.real(vl[:, np.argmin(np.abs(w - 1.0))])
    gain, h = _multichain(mp)
    return np.full_like(gain, d @ (mp.pi * mp.r).sum(axis=1) / d.sum()), h


def _discounted_gain(mp: MultichainProblem) -> tuple[np.ndarray, np.ndarray]:
    P_pi = np.einsum("sa,sat->st", mp.pi, mp.P)
    gamma = 0.99
    _, h = _multichain(mp)
    return (1 - gamma) * np.linalg.solve(np.eye(len(P_pi)) - gamma * P_pi, (mp.pi * mp.r).sum(axis=1)), h


identity(
    id="models.multichain_gain_bias",
    statement=r"(I - P_\pi) g = 0,\quad g + (I - P_\pi) h = r_\pi,\quad h + (I - P_\pi) w = 0",
    source="Puterman (1994), Markov Decision Processes, Theorem 8.2.6 and sec. 9.1 (the multichain evaluation "
    "equations; the third fixes the bias by P* h = 0)",
    reference="the three stacked equations solved by numpy least squares (min-norm; g and h are unique, w is not), "
    "without closed classes, absorption probabilities or the Cesaro limit",
    instance=_multichain_problem,
    computed=_multichain,
    expected=_puterman_reference,
    tolerance=1e-10,
    tolerance_reason="the stacked system's smallest nonzero singular value is >= 5e-3 on these chains (measured over "
    "200 instances): SVD rounding <= 3S * 2.2e-16 / 5e-3 ~ 1e-12 relative to |r| <= 5 is a bound (observed <= 1.6e-14 "
    "over 100 instances)",
    mutants={
        "one stationary distribution for every state (the unichain formula)": _unichain_gain,
        "(1 - gamma) V_gamma at gamma = 0.99 for the gain (not constant on a recurrent class)": _discounted_gain,
        "the bias normalized by h = 0 at the last state (relative values) instead of P* h = 0": lambda mp: (
            lambda g, h: (g, h - h[-1]))(*_multichain(mp)),
    },
)


# --------------------------------------------------------------------------- average-reward gradient in pi
def _tangents(pr: AverageProblem) -> np.ndarray:
    """Two directions in pi-space with rows summing to 0 (tangent to the product of simplices)."""
    S, A = pr.mdp.r.shape
    D = np.random.default_rng(int(abs(pr.theta[0]) * 1e6)).standard_normal((2, S, A))
    return D - D.mean(axis=2, keepdims=True)


def _gain_by_solve(mdp: FiniteMDP, pi: np.ndarray) -> np.ndarray:
    r"""rho of a stack of (possibly complex) policies (k, S, A): d^T (I - P_pi) = 0 with its last equation
    replaced by d^T 1 = 1, a square solve per policy."""
    P_pi = np.einsum("ksa,sat->kst", pi, np.asarray(mdp.P))
    r_pi = np.einsum("ksa,sa->ks", pi, np.asarray(mdp.r))
    S = P_pi.shape[1]
    M = np.transpose(np.eye(S)[None] - P_pi, (0, 2, 1)).copy()
    M[:, -1, :] = 1.0
    d = np.linalg.solve(M, np.broadcast_to(np.eye(S)[-1], (len(pi), S))[..., None])[..., 0]
    return np.einsum("ks,ks->k", d, r_pi)


COMPLEX_STEP = 1e-20


def _gain_directional(pr: AverageProblem) -> np.ndarray:
    pi = pr.policy.probs(pr.theta)
    return _gain_by_solve(pr.mdp, pi[None] + 1j * COMPLEX_STEP * _tangents(pr)).imag / COMPLEX_STEP


def _pi_gradient_directional(pr: AverageProblem) -> np.ndarray:
    return np.einsum("ksa,sa->k", _tangents(pr), average.pi_gradient(pr.mdp, pr.policy.probs(pr.theta)))


def _discounted_weights(pr: AverageProblem) -> np.ndarray:
    pi = pr.policy.probs(pr.theta)
    ev = average.evaluate(pr.mdp, pi)
    P_pi = np.einsum("sa,sat->st", pi, pr.mdp.P)
    d_gamma = 0.1 * np.linalg.solve((np.eye(len(P_pi)) - 0.9 * P_pi).T, pr.mdp.mu0)
    return np.einsum("ksa,sa->k", _tangents(pr), d_gamma[:, None] * ev.Q)


def _logit_form(pr: AverageProblem) -> np.ndarray:
    pi = pr.policy.probs(pr.theta)
    ev = average.evaluate(pr.mdp, pi)
    return np.einsum("ksa,sa->k", _tangents(pr), ev.d[:, None] * pi * ev.Q)


identity(
    id="models.average_pi_gradient",
    statement=r"\frac{d}{dt}\rho(\pi + tD)\Big|_{t=0} = \sum_{s,a} d_\pi(s)\, Q(s,a)\, D(s,a) "
    r"\text{ for } \textstyle\sum_a D(s,a) = 0",
    source="Sutton, McAllester, Singh & Mansour (2000), Theorem 1 (average-reward formulation), in pi-coordinates",
    reference="complex-step derivatives (h = 1e-20) of rho(pi + i h D) along two random tangent directions D, rho "
    "from d^T (I - P_pi) = 0 with one equation replaced by d^T 1 = 1 (a square solve, not the library's)",
    instance=_average_problem,
    computed=_pi_gradient_directional,
    expected=_gain_directional,
    tolerance=1e-11,
    tolerance_reason="complex step has no cancellation (error O(h^2) = 1e-40); both sides are solves of condition "
    "<= 9 on these chains (measured over 200 instances) with |Q| <= 30: rounding <= 9 * 30 * 2.2e-16 * S = 3e-13 "
    "is a bound (observed <= 1.7e-15 over 100 instances)",
    mutants={
        "the discounted occupancy (gamma = 0.9) in place of the stationary distribution": _discounted_weights,
        "d pi Q (the softmax-logit gradient) in place of d Q": _logit_form,
    },
)
