"""The theorems of the model builders, the discretization error and multichain average reward (theorems/models.py).

Each theorem passes on its instances and rejects its controls; breaking the code it guards (a planted
error of 1e-9, a swapped move, a different integrator, a dropped class, the wrong weights) makes it fail on
every instance; its independent references agree with a third route where one exists; and it reaches the
public functions it was written for.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from pgexact import evaluate
from pgexact.mdps import _builders
from pgexact.mdps import classic_control as cc
from pgexact.theorems import get
from pgexact.theorems import models as M
from pgexact.theorems._coverage import measure
from pgexact.theorems.registry import CONTROL_FACTOR, all_theorems, theorem_seed

IDS = [t.id for t in all_theorems() if t.id.startswith("models.")]


def _residuals(theorem_id: str, n: int, seed: int = 0, with_controls: bool = False):
    thm = get(theorem_id)
    rng = np.random.default_rng(theorem_seed(seed, theorem_id))
    return thm, [thm.run(thm.instance(rng), with_controls) for _ in range(n)]


def test_the_module_registers_ten_theorems():
    assert len(IDS) == 10, IDS


@pytest.mark.parametrize("theorem_id", IDS)
def test_passes_and_rejects_every_control(theorem_id):
    thm, runs = _residuals(theorem_id, 12, seed=3, with_controls=True)
    assert max(out.residual for out, _ in runs) <= thm.tolerance
    controls = np.array([c for _, c in runs])
    assert controls.shape == (12, len(thm.controls)) and len(thm.controls) >= 2
    # every control rejected on every instance (not only the 90% the registry demands)
    assert np.all(controls >= CONTROL_FACTOR * thm.tolerance), (theorem_id, controls.min(axis=0))


def _fails_everywhere(theorem_id: str, n: int = 6) -> None:
    thm = get(theorem_id)
    rng = np.random.default_rng(theorem_seed(0, theorem_id))
    for _ in range(n):
        try:
            res = thm.run(thm.instance(rng), False)[0].residual
        except Exception:  # noqa: BLE001 - a breakage that raises is caught too
            continue
        assert res > thm.tolerance, (theorem_id, res)


# ----------------------------------------------------------------- deliberate breakages
def _perturbed_model(monkeypatch, rel: float) -> None:
    """Every FiniteMDP the builders return has its rewards off by a relative ``rel``."""
    real = _builders.FiniteMDP

    def perturbed(P, r, *args, **kwargs):
        return real(P, np.asarray(r) * (1 + rel), *args, **kwargs)

    monkeypatch.setattr(_builders, "FiniteMDP", perturbed)


@pytest.mark.parametrize("theorem_id", ["models.bandit_value", "models.chain_values", "models.short_corridor_value",
                                        "models.gridworld_model"])
def test_a_planted_relative_error_of_1e_9_in_the_builders_rewards_fails(monkeypatch, theorem_id):
    _perturbed_model(monkeypatch, 1e-9)
    _fails_everywhere(theorem_id, 4)


def test_gridworld_with_up_and_down_exchanged_fails(monkeypatch):
    monkeypatch.setattr(_builders, "GRID_MOVES", _builders.GRID_MOVES[[2, 1, 0, 3]])
    _fails_everywhere("models.gridworld_model")


def test_pendulum_with_explicit_euler_fails(monkeypatch):
    real = cc.pendulum_step

    def euler(x, u, g=10.0):
        nxt, r, done = real(x, u, g)
        nxt[:, 0] = x[:, 0] + 0.05 * x[:, 1]  # the old angular velocity
        return nxt, r, done

    monkeypatch.setattr(cc, "pendulum_step", euler)
    _fails_everywhere("models.pendulum_transitions")


def test_mountain_car_without_the_wall_fails(monkeypatch):
    def no_wall(x, action):
        c = cc.MOUNTAIN_CAR
        v = np.clip(x[:, 1] + (action - 1) * c["force"] - np.cos(3 * x[:, 0]) * c["gravity"], -0.07, 0.07)
        p = np.clip(x[:, 0] + v, -1.2, 0.6)
        return np.stack([p, v], axis=1), np.full(len(x), -1.0), (p >= 0.5) & (v >= 0)

    monkeypatch.setattr(cc, "mountain_car_step", no_wall)
    _fails_everywhere("models.mountain_car_transitions")


def test_cartpole_with_another_gravity_fails(monkeypatch):
    monkeypatch.setitem(cc.CARTPOLE, "gravity", 9.81)
    _fails_everywhere("models.cartpole_transitions")


def test_discretization_error_with_first_order_richardson_fails(monkeypatch):
    real = cc.richardson
    monkeypatch.setattr(cc, "richardson", lambda J, h, order=None: real(J[-2:], h[-2:], 1.0))
    _fails_everywhere("models.discretization_error_known_limit")


def test_multichain_with_a_class_missed_fails(monkeypatch):
    from pgexact.average import evaluation

    real = evaluation.closed_classes
    monkeypatch.setattr(evaluation, "closed_classes", lambda P: real(P)[:1])
    _fails_everywhere("models.multichain_gain_bias")


def test_average_pi_gradient_with_uniform_state_weights_fails(monkeypatch):
    from pgexact.average import evaluation

    real = evaluation._evaluate

    def uniform_d(mdp, pi):
        ev = real(mdp, pi)
        return dataclasses.replace(ev, d=np.full(len(ev.d), 1.0 / len(ev.d)))

    monkeypatch.setattr(evaluation, "_evaluate", uniform_d)
    _fails_everywhere("models.average_pi_gradient")


# ----------------------------------------------------------------- the references against third routes
def test_short_corridor_optimum_is_the_published_one():
    # brute force over p with the library's J (the theorem uses the closed form and its stationary point)
    corridor = M.short_corridor(horizon=M.CORRIDOR_HORIZON)
    from pgexact import LinearSoftmax

    pol = LinearSoftmax(corridor.features)
    grid = np.linspace(0.30, 0.85, 56)  # step 0.01 (J is unimodal on (0, 1)), then 0.001 around the best
    J = np.array([evaluate(corridor.mdp, pol.probs(corridor.theta_for(float(p)))).J for p in grid])
    grid = np.linspace(grid[np.argmax(J)] - 0.01, grid[np.argmax(J)] + 0.01, 21)
    J = np.array([evaluate(corridor.mdp, pol.probs(corridor.theta_for(float(p)))).J for p in grid])
    p_best = grid[np.argmax(J)]
    assert abs(p_best - M.P_STAR) <= 0.0005 + 1e-12
    assert round(p_best, 2) == 0.59  # Sutton & Barto, Example 13.1: "about 0.59"
    assert abs(J.max() - (-11.6)) < 0.1  # "a value of about -11.6"
    assert J.max() <= M.J_STAR + 1e-12


def test_puterman_reference_agrees_with_the_discounted_limit():
    # third route for the multichain gain: (1 - gamma) V_gamma -> g as gamma -> 1 (Laurent), Richardson in 1 - gamma
    rng = np.random.default_rng(11)
    for _ in range(10):
        mp = M._multichain_problem(rng)
        P_pi = np.einsum("sa,sat->st", mp.pi, mp.P)
        r_pi = (mp.pi * mp.r).sum(axis=1)

        def scaled(e):
            return e * np.linalg.solve(np.eye(len(r_pi)) - (1 - e) * P_pi, r_pi)

        g_limit = 2 * scaled(5e-5) - scaled(1e-4)
        g, _ = M._puterman_reference(mp)
        # Richardson leaves O(e^2) times the second Laurent coefficient; periodic classes add
        # an oscillating O(e) term that the extrapolation also cancels to O(e^2)
        assert np.max(np.abs(g - g_limit)) < 1e-6


def test_hat_weights_are_an_interpolation():
    rng = np.random.default_rng(2)
    for periodic in (False, True):
        n = 5
        axis = (-np.pi + 2 * np.pi * np.arange(n) / n) if periodic else np.linspace(-1.0, 2.0, n)
        x = rng.uniform(-np.pi, np.pi, 200) if periodic else rng.uniform(-1.0, 2.0, 200)
        w = M._hat_weights(x, axis, periodic)
        assert np.allclose(w.sum(axis=1), 1.0, atol=1e-14)
        assert np.all((w > 0).sum(axis=1) <= 2)
        if periodic:  # each vertex at its copy nearest to x (within one period): the weights' mean is x
            nearest = x[:, None] + np.mod(axis[None, :] - x[:, None] + np.pi, 2 * np.pi) - np.pi
            assert np.allclose((w * nearest).sum(axis=1), x, atol=1e-13)
        else:
            assert np.allclose(w @ axis, x, atol=1e-14)


def test_reset_weights_match_monte_carlo():
    # E[hat weights] under U[lo, hi] against 400k uniform draws (sd of each mean <= 0.5/sqrt(4e5) = 8e-4; 6 sd)
    rng = np.random.default_rng(4)
    axis = np.linspace(-1.2, 0.6, 7)
    exact = M._reset_weights(axis, False, -0.6, -0.4)
    mc = M._hat_weights(rng.uniform(-0.6, -0.4, 400_000), axis, False).mean(axis=0)
    assert np.max(np.abs(exact - mc)) < 5e-3
    assert abs(exact.sum() - 1) < 1e-14


# ----------------------------------------------------------------- coverage
def test_the_theorems_reach_the_functions_they_were_written_for():
    cov = measure([get(i) for i in IDS], instances=1)
    for name, theorem_id in [
        ("pgexact.mdps.bandit", "models.bandit_value"), ("pgexact.mdps.short_corridor", "models.short_corridor_value"),
        ("pgexact.mdps.chain", "models.chain_values"), ("pgexact.mdps.gridworld", "models.gridworld_model"),
        ("pgexact.mdps.pendulum", "models.pendulum_transitions"),
        ("pgexact.mdps.mountain_car", "models.mountain_car_transitions"),
        ("pgexact.mdps.cartpole", "models.cartpole_transitions"),
        ("pgexact.exact.discretization_error", "models.discretization_error_known_limit"),
        ("pgexact.average.multichain_evaluate", "models.multichain_gain_bias"),
        ("pgexact.average.pi_gradient", "models.average_pi_gradient"),
    ]:
        assert theorem_id in cov.reached[name], (name, cov.reached[name])
