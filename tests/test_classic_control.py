"""Discretized classic control: gymnasium's dynamics, exact interpolation, convergence of exact J.

References: gymnasium's own ``env.step`` (the vectorized steps must reproduce it), the first
moment of the interpolation weights, and Monte Carlo returns of the continuous process
(vectorized gymnasium dynamics here; the real gymnasium environments in the slow test and in
``benchmarks/classic_control_convergence.py``).
"""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import evaluate
from pgexact.mdps import cartpole, mountain_car, pendulum
from pgexact.mdps.classic_control import (
    cartpole_step,
    mountain_car_step,
    multilinear_weights,
    pendulum_step,
)


def _softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    e = np.exp(z)
    return e / e.sum(axis=1, keepdims=True)


# Smooth stochastic policies of the continuous state, used on the grid and in the simulator.
def pendulum_policy(x, torques):  # push along the angular velocity
    return _softmax(1.5 * torques[None, :] * np.tanh(x[:, 1:2]))


def mountain_car_policy(x, actions):  # push along the velocity (energy pumping)
    return _softmax(3.0 * (actions[None, :] - 1) * np.tanh(x[:, 1:2] / 0.01))


def cartpole_policy(x, actions):  # push the cart under the falling pole
    return _softmax(3.0 * (2 * actions[None, :] - 1) * np.tanh(2 * x[:, 2:3] + 0.5 * x[:, 3:4] + 0.2 * x[:, 1:2]))


RESETS = {
    "pendulum": lambda rng, n: np.stack([rng.uniform(-np.pi, np.pi, n), rng.uniform(-1, 1, n)], 1),
    "mountain_car": lambda rng, n: np.stack([rng.uniform(-0.6, -0.4, n), np.zeros(n)], 1),
    "cartpole": lambda rng, n: rng.uniform(-0.05, 0.05, (n, 4)),
}
STEPS = {"pendulum": pendulum_step, "mountain_car": mountain_car_step, "cartpole": cartpole_step}
POLICIES = {"pendulum": pendulum_policy, "mountain_car": mountain_car_policy, "cartpole": cartpole_policy}


def monte_carlo_return(name: str, actions: np.ndarray, H: int, n: int, seed: int) -> tuple[float, float]:
    """Mean and standard error of the H-step return of the continuous process (vectorized)."""
    rng = np.random.default_rng(seed)
    x = RESETS[name](rng, n)
    G, alive = np.zeros(n), np.ones(n, dtype=bool)
    for _ in range(H):
        p = POLICIES[name](x, actions)
        a = np.minimum((rng.random((n, 1)) > np.cumsum(p, axis=1)).sum(axis=1), len(actions) - 1)
        x, r, done = STEPS[name](x, actions[a])
        G += alive * r
        alive &= ~done
    return float(G.mean()), float(G.std(ddof=1) / np.sqrt(n))


# ----------------------------------------------------------------- gymnasium's dynamics
@pytest.mark.parametrize("name", ["pendulum", "mountain_car", "cartpole"])
def test_vectorized_step_reproduces_gymnasium(name: str) -> None:
    gym = pytest.importorskip("gymnasium")
    env_id = {"pendulum": "Pendulum-v1", "mountain_car": "MountainCar-v0", "cartpole": "CartPole-v1"}[name]
    env = gym.make(env_id).unwrapped
    env.reset(seed=0)
    rng = np.random.default_rng(1)
    box = {"pendulum": [(-4, 4), (-9, 9)], "mountain_car": [(-1.2, 0.6), (-0.07, 0.07)],
           "cartpole": [(-2.4, 2.4), (-2, 2), (-0.2, 0.2), (-2, 2)]}[name]
    x = np.stack([rng.uniform(lo, hi, 200) for lo, hi in box], axis=1)
    if name == "mountain_car":
        x[:5, 0] = -1.2  # the left wall
        x[:5, 1] = -0.01
    acts = np.linspace(-2, 2, 5)[rng.integers(5, size=200)] if name == "pendulum" else rng.integers(2 if name == "cartpole" else 3, size=200)
    nxt, rew, done = STEPS[name](x, acts)
    for i in range(200):
        env.state = tuple(x[i]) if name == "mountain_car" else x[i].copy()
        if name == "cartpole":
            env.steps_beyond_terminated = None
        a = np.array([acts[i]]) if name == "pendulum" else int(acts[i])
        _, r, term, _, _ = env.step(a)
        assert np.allclose(np.asarray(env.state, dtype=float), nxt[i], rtol=1e-13, atol=1e-15)
        assert abs(r - rew[i]) <= 1e-12 * (1 + abs(r)) and term == done[i]


# ----------------------------------------------------------------- the discretization
def test_interpolation_weights_reproduce_the_point() -> None:
    rng = np.random.default_rng(2)
    axes = (np.linspace(-1, 1, 5), np.linspace(0, 3, 4), np.linspace(-2, 2, 7))
    verts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    pts = np.stack([rng.uniform(-1, 1, 100), rng.uniform(0, 3, 100), rng.uniform(-2, 2, 100)], 1)
    idx, w = multilinear_weights(pts, axes, (False,) * 3)
    assert idx.shape == (100, 8) and np.all(w >= 0)
    assert np.allclose(w.sum(1), 1, atol=1e-15)
    assert np.allclose(np.einsum("nk,nkd->nd", w, verts[idx]), pts, atol=1e-14)
    # a periodic axis wraps: pi + 0.1 is -pi + 0.1
    ax = (-np.pi + 2 * np.pi * np.arange(8) / 8,)
    i1, w1 = multilinear_weights(np.array([[np.pi + 0.1]]), ax, (True,))
    i2, w2 = multilinear_weights(np.array([[-np.pi + 0.1]]), ax, (True,))
    assert np.array_equal(i1, i2) and np.allclose(w1, w2, atol=1e-14)


@pytest.mark.parametrize("builder,name", [(pendulum, "pendulum"), (mountain_car, "mountain_car"), (cartpole, "cartpole")])
def test_transitions_are_exact_interpolations_and_terminals_absorb(builder, name) -> None:
    env = builder(*((7, 5) if name != "cartpole" else (3, 3, 5, 5)), gamma=0.95)
    mdp = env.mdp
    S, A = mdp.n_states, mdp.n_actions
    V = S - (env.terminal is not None)
    verts = env.observations[:V]
    x = np.repeat(verts, A, axis=0)
    nxt, rew, done = STEPS[name](x, env.actions[np.tile(np.arange(A), V)])
    P = mdp.P.toarray()  # (S*A, S)
    assert np.allclose(mdp.r[:V].reshape(-1), rew, atol=1e-14)
    if env.terminal is not None:
        assert bool(mdp.terminal[env.terminal]) and np.array_equal(P[:V * A, env.terminal] == 1.0, done)
    live = ~done
    mean = P[:V * A][live][:, :V] @ verts  # first moment of the interpolated next state
    target = nxt[live].copy()
    for k, (ax, per) in enumerate(zip(env.axes, env.periodic)):
        if per:  # compare angles on the circle
            mean[:, k] = np.angle(P[:V * A][live][:, :V] @ np.exp(1j * verts[:, k]))
            target[:, k] = np.angle(np.exp(1j * target[:, k]))
        else:
            target[:, k] = np.clip(target[:, k], ax[0], ax[-1])
    if name == "pendulum":  # the circular mean of two neighbours is not linear: compare on the chord
        assert np.allclose(np.abs(mean[:, 1] - target[:, 1]), 0, atol=1e-12)
        assert np.max(np.abs(np.angle(np.exp(1j * (mean[:, 0] - target[:, 0]))))) < (2 * np.pi / 7) ** 2
    else:
        assert np.allclose(mean, target, atol=1e-12)
    assert abs(mdp.mu0.sum() - 1) < 1e-15


def test_initial_distribution_is_the_exact_mean_of_the_reset_box() -> None:
    env = mountain_car(10, 5, gamma=0.9)
    mu = env.mdp.mu0[:-1]
    # E[interpolated position] = E[position] = -0.5 (the weights reproduce the point, linearity)
    assert abs(mu @ env.observations[:-1, 0] + 0.5) < 1e-14
    assert abs(mu @ env.observations[:-1, 1]) < 1e-15
    env = pendulum(12, 9, 3, gamma=0.9)
    assert np.allclose(env.mdp.mu0.reshape(12, 9).sum(1), 1 / 12, atol=1e-15)  # uniform angle
    assert abs(env.mdp.mu0 @ env.observations[:, 1]) < 1e-15


# ----------------------------------------------------------------- convergence of exact J
# Measured gaps J_grid - J_MC (H = 200, gamma = 1; benchmarks/classic_control_convergence.py):
# pendulum 21^2: +23.7, 41^2: +1.9, 81^2: +0.33, 161^2: +0.06 (J ~ -1551).
@pytest.mark.parametrize("name,grid,tol", [("pendulum", (41, 41), 4.0), ("mountain_car", (81, 81), 10.0)])
def test_exact_J_on_the_grid_is_close_to_monte_carlo(name, grid, tol) -> None:
    builder = {"pendulum": pendulum, "mountain_car": mountain_car}[name]
    H = 200
    env = builder(*grid, gamma=1.0, horizon=H)
    J = evaluate(env.mdp, POLICIES[name](env.observations, env.actions)).J
    m, se = monte_carlo_return(name, env.actions, H, 10_000, seed=3)
    # tol: discretization bias measured above with margin ~2x; 6 se: false alarm < 1e-8 (CLT)
    assert abs(J - m) < tol + 6 * se, (J, m, se)


def test_refinement_shrinks_the_gap_pendulum() -> None:
    H = 200
    gaps = []
    m, se = monte_carlo_return("pendulum", np.linspace(-2, 2, 5), H, 5_000, seed=4)
    for n in (15, 31, 61):
        env = pendulum(n, n, gamma=1.0, horizon=H)
        gaps.append(abs(evaluate(env.mdp, pendulum_policy(env.observations, env.actions)).J - m))
    assert gaps[0] > gaps[1] > gaps[2], gaps  # measured: 45, 7.3, 0.02 (se 0.5)


@pytest.mark.slow
def test_exact_J_converges_to_monte_carlo_in_gymnasium_pendulum() -> None:
    gym = pytest.importorskip("gymnasium")
    H, n_ep = 200, 2000
    env_grid = pendulum(161, 161, gamma=1.0, horizon=H)
    J = evaluate(env_grid.mdp, pendulum_policy(env_grid.observations, env_grid.actions)).J
    env = gym.make("Pendulum-v1")
    rng = np.random.default_rng(5)
    G = np.zeros(n_ep)
    for i in range(n_ep):
        env.reset(seed=int(rng.integers(2**31)))
        x = np.array(env.unwrapped.state, dtype=float)
        for _ in range(H):
            p = pendulum_policy(x[None, :], env_grid.actions)[0]
            u = env_grid.actions[min(int((rng.random() > np.cumsum(p)).sum()), 4)]
            _, r, term, trunc, _ = env.step(np.array([u]))
            G[i] += r
            x = np.array(env.unwrapped.state, dtype=float)
            if term or trunc:
                break
    se = G.std(ddof=1) / np.sqrt(n_ep)
    assert abs(J - G.mean()) < 0.2 + 5 * se  # measured discretization gap 0.06 at 161^2


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"states": None}, TypeError, r"^states must be an array of real numbers"),
        ({"states": np.array([])}, ValueError, r"^states must have 2 dimension"),
        ({"states": [[np.nan, 0.0]]}, ValueError, r"^states\[0, 0\] is nan"),
        ({"axes": None}, TypeError, r"^axes must be a tuple of D=2 arrays"),
        ({"axes": "x"}, TypeError, r"^axes must be a tuple of D=2 arrays"),
        ({"axes": ([0.0, 1.0],)}, TypeError, r"^axes must be a tuple of D=2 arrays"),
        ({"axes": ([0.0, 1.0], [[1, 2], [3]])}, TypeError, r"^axes\[1\] must be an array of real numbers"),
        ({"axes": ([0.0, 1.0], [1.0, 0.0])}, ValueError, r"^axes\[1\] must be strictly increasing .*axes\[1\]\[1\] = 0.0 after 1.0"),
        ({"axes": ([0.0, 1.0], [0.0, 0.0])}, ValueError, r"^axes\[1\] must be strictly increasing"),
        ({"axes": ([0.0, 1.0], [-1e308, 1e308])}, ValueError, r"^axes\[1\] must be strictly increasing with finite steps"),
        ({"periodic": None}, TypeError, r"^periodic must be a tuple of D=2 bools"),
        ({"periodic": "xy"}, TypeError, r"^periodic must be a tuple"),
        ({"periodic": ({"a": 1}, False)}, TypeError, r"^periodic\[0\] must be True or False"),
        ({"periodic": (True, False), "axes": ([0.0], [0.0, 1.0])}, ValueError, r"^axes\[0\] must have at least 2 point"),
    ],
)
def test_multilinear_weights_refuses_malformed_input(kwargs, error, match) -> None:
    args = {"states": [[0.25, 0.7]], "axes": ([0.0, 1.0], [0.0, 0.5, 1.0]), "periodic": (False, False), **kwargs}
    with pytest.raises(error, match=match):
        multilinear_weights(**args)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: cartpole(gamma=0.9, x_dot_max=np.nan), ValueError, r"^x_dot_max must be a positive finite number, got nan"),
        (lambda: cartpole(gamma=0.9, x_dot_max=0), ValueError, r"^x_dot_max must be a positive finite number, got 0"),
        (lambda: cartpole(gamma=0.9, theta_dot_max=None), TypeError, r"^theta_dot_max must be a positive finite number"),
        (lambda: cartpole(gamma=0.9, x_dot_max=1e308), ValueError, r"^x_dot_max and theta_dot_max must be at most 1e300"),
        (lambda: cartpole(3, 3, 3, 3, gamma=0.9, theta_dot_max=1e200), ValueError,
         r"^the CartPole-v1 dynamics leave the float64 range on this grid: lower x_dot_max or theta_dot_max"),
        (lambda: pendulum(4, 2, 2, gamma=0.9, g=1e308), ValueError, r"^the Pendulum-v1 dynamics leave the float64 range .*lower \|g\|"),
        (lambda: pendulum(n_torques=10**9, gamma=0.9), ValueError, r"^Pendulum-v1 .*1000000000 torques \(n_torques\) would need"),
        (lambda: pendulum(gamma=0.9, g=None), TypeError, r"^g must be a finite real number"),
        (lambda: mountain_car(gamma=0.9, sparse=np.array([])), TypeError, r"^sparse must be True or False"),
        (lambda: mountain_car(10**12, gamma=0.9), ValueError, r"^MountainCar-v0 with n_position=1000000000000, n_velocity=321, 3 actions would need .*: use a coarser grid"),
        (lambda: pendulum(301, 301, gamma=0.9, sparse=False), ValueError, r"^Pendulum-v1 with n_theta=301, n_omega=301, 5 torques \(n_torques\), sparse=False would need .*or sparse=True"),
    ],
)
def test_builders_refuse_malformed_arguments(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


# ----------------------------------------------------------------- discretization error
def test_interpolation_is_exact_on_affine_functions_and_not_beyond() -> None:
    """sum_j w_j(x) f(x_j) = f(x) for every affine f (and multilinear f); not for x_k^2, nor for nearest-vertex rounding."""
    from pgexact.mdps.classic_control import _STATE_DIMS  # noqa: F401 - the module under test is importable

    rng = np.random.default_rng(11)
    axes = (np.sort(rng.uniform(-1, 1, 6)), np.linspace(0, 3, 4), np.sort(rng.uniform(-2, 2, 7)))
    verts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 3)
    pts = np.stack([rng.uniform(ax[0], ax[-1], 200) for ax in axes], 1)
    idx, w = multilinear_weights(pts, axes, (False,) * 3)
    c, b = rng.normal(size=3), rng.normal()
    affine = lambda x: x @ c + b  # noqa: E731
    assert np.max(np.abs((w * affine(verts)[idx]).sum(1) - affine(pts))) < 1e-13
    bilinear = lambda x: x[:, 0] * x[:, 1] * x[:, 2]  # noqa: E731 - multilinear: exact too
    assert np.max(np.abs((w * bilinear(verts)[idx]).sum(1) - bilinear(pts))) < 1e-13
    # controls: a quadratic is not reproduced (error = sum_k w(1-w) h^2 > 0), nor is an affine f
    # by rounding to the nearest vertex (the error a first-moment check must catch)
    square = lambda x: x[:, 0] ** 2  # noqa: E731
    assert np.max(np.abs((w * square(verts)[idx]).sum(1) - square(pts))) > 1e-3
    nearest = idx[np.arange(len(pts)), np.argmax(w, axis=1)]
    assert np.max(np.abs(affine(verts[nearest]) - affine(pts))) > 1e-2


def test_richardson_recovers_the_limit_and_the_order() -> None:
    from pgexact.mdps import richardson  # noqa: F401 - re-exported name
    from pgexact.mdps.classic_control import richardson as rich

    for p in (0.5, 1.0, 2.0, 3.7):
        h = np.array([0.3, 0.17, 0.1])  # unequal ratios
        J0, p_hat = rich(5.0 - 2.0 * h**p, h)
        assert abs(J0 - 5.0) < 1e-11 and abs(p_hat - p) < 1e-9
        J0, _ = rich(5.0 - 2.0 * h[1:] ** p, h[1:], order=p)
        assert abs(J0 - 5.0) < 1e-12
    # control: the wrong order leaves an error of known size, (J1 - J0) / (r^q - 1) - (J1 - J0) / (r^p - 1)
    h = np.array([0.2, 0.1])
    J0, _ = rich(1.0 + h**2, h, order=1.0)
    assert abs(J0 - 1.0) > 0.01 and abs(J0 - (1.01 + (0.01 - 0.04) / 1.0)) < 1e-14
    with pytest.raises(ValueError, match="not in the asymptotic range"):
        rich([1.0, 2.0, 1.5], [0.3, 0.2, 0.1])
    with pytest.raises(ValueError, match="two values need order=p"):
        rich([1.0, 2.0], [0.3, 0.2])
    with pytest.raises(ValueError, match=r"h must be positive and strictly decreasing: h\[1\]"):
        rich([1.0, 2.0, 2.5], [0.3, 0.3, 0.1])


def test_discretization_error_of_a_pendulum_grid_matches_monte_carlo() -> None:
    from pgexact.exact import discretization_error

    est = discretization_error(pendulum, pendulum_policy, (31, 31), ratio=1.5, gamma=1.0, horizon=200)
    assert est.grids == ((31, 31), (46, 46), (70, 69)) and est.J == est.values[0]
    # relative spacing: 31/n on the periodic angle (n cells), 30/(n - 1) on the speed (n - 1 cells)
    assert np.allclose(est.spacing, [1.0, np.sqrt(31 / 46 * 30 / 45), np.sqrt(31 / 70 * 30 / 68)], rtol=1e-15)
    m, se = monte_carlo_return("pendulum", np.linspace(-2, 2, 5), 200, 20_000, seed=7)
    # measured: J = -1543.08, estimated error -7.36, Monte Carlo gap -7.47 +- 0.26 (se);
    # the bound 1.0 + 6 se allows the extrapolation's own error (|J(70x69) - J_0| ~ 0.2) with
    # margin; false alarm of the 6 se part < 2e-9 (CLT)
    assert abs(est.J_extrapolated - m) < 1.0 + 6 * se, (est, m, se)
    assert abs(est.error - (m - est.J)) < 0.15 * abs(m - est.J) + 6 * se


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda d: d(len, pendulum_policy, gamma=1.0), TypeError, r"^builder must be pendulum, mountain_car or cartpole"),
        (lambda d: d(pendulum, None, gamma=1.0), TypeError, r"^policy must be a callable"),
        (lambda d: d(pendulum, pendulum_policy, (5, 5, 5), gamma=1.0), TypeError, r"^grid must be a tuple of 2 grid sizes for pendulum"),
        (lambda d: d(pendulum, pendulum_policy, (5, 0), gamma=1.0), ValueError, r"^grid\[1\] must be a positive integer"),
        (lambda d: d(pendulum, pendulum_policy, (5, 5), ratio=1.0, gamma=1.0), ValueError, r"^ratio must be greater than 1, got 1"),
        (lambda d: d(pendulum, pendulum_policy, (5, 5), ratio=1.01, gamma=1.0), ValueError, r"^ratio=1.01 does not refine grid \(5, 5\)"),
    ],
)
def test_discretization_error_refuses_malformed_arguments(call, error, match) -> None:
    from pgexact.exact import discretization_error

    with pytest.raises(error, match=match):
        call(discretization_error)


@pytest.mark.slow
@pytest.mark.parametrize(("name", "rel"), [("pendulum", 0.01), ("mountain_car", 0.01), ("cartpole", 0.02)])
def test_default_grids_are_close_to_gymnasium(name, rel) -> None:
    """The builders' defaults against rollouts of the same policy (H = 200, gamma = 1).

    Pendulum and CartPole: 1,000 episodes of the real gymnasium environments. MountainCar: the real
    environment is too slow for a tight test (1,000 episodes: se 0.6% of |J|), so it uses 80,000
    episodes of the vectorized gymnasium step (equal to ``env.step`` to 1e-13,
    ``test_vectorized_step_reproduces_gymnasium``). Measured gaps (80,000 vectorized episodes):
    pendulum 0.50%, mountain_car 0.35%, cartpole 0.01% of |J|; the Monte Carlo se is 0.07%
    (pendulum, 1,000 episodes), 0.07% (mountain_car) and 0.3% (cartpole, 1,000), so a false alarm
    needs a deviation of at least 6.6 se: probability < 1e-10 each (CLT).
    """
    builder = {"pendulum": pendulum, "mountain_car": mountain_car, "cartpole": cartpole}[name]
    grid = builder(gamma=1.0, horizon=200)
    J = evaluate(grid.mdp, POLICIES[name](grid.observations, grid.actions)).J
    if name == "mountain_car":
        m, se = monte_carlo_return(name, grid.actions, 200, 80_000, seed=13)
        assert abs(J - m) < rel * abs(m), (J, m, se)
        return
    gym = pytest.importorskip("gymnasium")
    env_id = {"pendulum": "Pendulum-v1", "cartpole": "CartPole-v1"}[name]
    n_ep = 1_000
    env = gym.make(env_id)
    rng = np.random.default_rng(13)
    G = np.zeros(n_ep)
    for i in range(n_ep):
        env.reset(seed=int(rng.integers(2**31)))
        for _ in range(200):
            x = np.array(env.unwrapped.state, dtype=float)[None, :]
            p = POLICIES[name](x, grid.actions)[0]
            k = min(int((rng.random() > np.cumsum(p)).sum()), len(grid.actions) - 1)
            _, r, term, _, _ = env.step(np.array([grid.actions[k]]) if name == "pendulum" else int(grid.actions[k]))
            G[i] += r
            if term:
                break
    assert abs(J - G.mean()) < rel * abs(G.mean()), (J, G.mean(), G.std(ddof=1) / np.sqrt(n_ep))
