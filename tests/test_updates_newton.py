"""Damped and cubic-regularized Newton steps on the exact Hessian (``pgexact.updates.newton``)."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pgexact import ExactSource, LinearSoftmax, TabularSoftmax, hessian, policy_gradient
from pgexact.errors import NumericalError
from pgexact.mdps import random_mdp
from pgexact.updates import SampledSource, cubic_newton_step, newton_step


def _source(seed=7):
    mdp = random_mdp(6, 3, gamma=0.9, seed=seed)
    return ExactSource(mdp, LinearSoftmax(np.random.default_rng(seed).normal(size=(6, 3, 2))))


class _Quadratic:
    """A source with prescribed gradient and Hessian (independent of any MDP)."""

    def __init__(self, g, H):
        self.policy = SimpleNamespace(check_theta=lambda t: np.asarray(t, dtype=float), n_params=len(g))
        self.g, self.H = np.asarray(g, float), np.asarray(H, float)

    def at(self, theta, seed=None):
        return SimpleNamespace(gradient=self.g, hessian=lambda: self.H, J=None)


def test_damped_newton_solves_the_damped_system_on_the_range() -> None:
    mdp = random_mdp(4, 3, gamma=0.9, seed=2)
    src = ExactSource(mdp, TabularSoftmax(4, 3))
    theta = np.random.default_rng(3).normal(size=12)
    H, g = hessian(mdp, src.policy, theta), policy_gradient(mdp, src.policy, theta)
    for lam in (0.0, 0.5, 10.0):
        step = newton_step(src, theta, damping=lam, lr=0.3)
        h = step.direction
        assert np.allclose(lam * h - H @ h, g, rtol=0, atol=1e-10 * np.abs(g).max())
        assert np.allclose(step.theta, theta + 0.3 * h, rtol=0, atol=1e-15)
        # h has no component along per-state logit shifts (where J is flat)
        assert np.abs(h.reshape(4, 3).sum(axis=1)).max() <= 1e-10 * np.abs(h).max()
    big = newton_step(src, theta, damping=1e6)
    assert big.concave_model and big.direction @ g > 0
    assert np.allclose(big.direction * 1e6, g, rtol=1e-4)  # lambda -> infinity: a gradient step


def test_newton_converges_quadratically_to_a_stationary_point() -> None:
    src = _source(7)
    theta = np.zeros(2)
    norms = []
    for _ in range(9):
        step = newton_step(src, theta)
        norms.append(np.linalg.norm(step.gradient))
        theta = step.theta
    floor = 1e-13  # |grad J| at rounding level (|J| ~ 1/(1-gamma) = 10)
    assert norms[-1] <= floor
    ratios = [b / a**2 for a, b in zip(norms, norms[1:]) if b > floor and a < 0.1]
    assert len(ratios) >= 2
    assert max(ratios) <= 5.0  # quadratic; a linear rate would make b / a^2 grow like 1/a
    # this stationary point is a local *minimum* of J: pure Newton is attracted by any
    # nondegenerate stationary point (the reason for damping and the cubic step)
    H = hessian(src.mdp, src.policy, theta)
    assert np.linalg.eigvalsh(0.5 * (H + H.T))[0] > 0


def test_cubic_step_maximizes_its_model_globally() -> None:
    src = _source(4)
    rng = np.random.default_rng(0)
    theta = np.zeros(2)
    for M in (0.5, 5.0, 50.0):
        step = cubic_newton_step(src, theta, M)
        h = step.direction
        g = step.gradient
        H = hessian(src.mdp, src.policy, theta)

        def model(x):
            return g @ x + 0.5 * x @ H @ x - M / 6 * np.linalg.norm(x) ** 3

        assert np.isclose(model(h), step.model_increase, rtol=1e-10)
        assert np.isclose(step.damping, 0.5 * M * np.linalg.norm(h), rtol=1e-9)
        # global maximality: no point of a random cloud around h or 0 does better
        for x in np.concatenate([h + rng.normal(size=(500, 2)) * s for s in (1e-3, 0.1, 1.0)]):
            assert model(x) <= model(h) + 1e-12 * abs(model(h))


def test_cubic_step_with_a_large_regularization_increases_J() -> None:
    src = _source(9)
    theta = np.zeros(2)
    J = [src.exact_J(theta)]
    for _ in range(10):
        theta = cubic_newton_step(src, theta, 200.0).theta
        J.append(src.exact_J(theta))
    assert np.all(np.diff(J) > 0)


def test_cubic_step_leaves_a_saddle_along_positive_curvature() -> None:
    # at a saddle (g = 0) the gradient step does not move; the cubic step moves by 2 mu_max / M
    src = _Quadratic([0.0, 0.0], [[1.0, 0.0], [0.0, -1.0]])
    step = cubic_newton_step(src, np.zeros(2), 4.0)
    assert np.allclose(np.abs(step.direction), [0.5, 0.0], rtol=1e-12, atol=1e-15)
    assert step.model_increase == pytest.approx(0.5 * 0.25 - 4.0 / 6 * 0.125)
    # easy case with the same curvature: lambda = M |h| / 2 > mu_max
    step = cubic_newton_step(_Quadratic([0.3, 0.2], [[1.0, 0.0], [0.0, -1.0]]), np.zeros(2), 4.0)
    assert step.damping > 1.0 and np.isclose(step.damping, 2.0 * np.linalg.norm(step.direction))


def test_newton_refuses_a_source_without_hessian_and_bad_arguments() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    pol = TabularSoftmax(3, 2)
    no_hessian = SimpleNamespace(policy=pol, at=lambda theta, seed=None: SimpleNamespace(gradient=np.zeros(6), J=None))
    with pytest.raises(TypeError, match="hessian"):
        newton_step(no_hessian, np.zeros(6))
    src = ExactSource(mdp, pol)
    with pytest.raises(ValueError, match="damping"):
        newton_step(src, np.zeros(6), damping=-1.0)
    with pytest.raises(ValueError, match="regularization"):
        cubic_newton_step(src, np.zeros(6), 0.0)
    with pytest.raises(NumericalError, match="lr"):
        newton_step(src, np.zeros(6), lr=1e308)  # the step leaves the float64 range


def test_exact_oracle_answers_the_library_hessian() -> None:
    src = _source(3)
    theta = np.array([0.3, -0.7])
    oracle = src.at(theta)
    H = hessian(src.mdp, src.policy, theta)
    assert np.array_equal(oracle.hessian(), H)
    v = np.array([1.0, 2.0])
    assert np.allclose(oracle.hessian_vector_product(v), H @ v, rtol=1e-13, atol=1e-15)
    with pytest.raises(ValueError, match="v"):
        oracle.hessian_vector_product(np.ones(3))


def test_sampled_source_steps_on_the_estimated_hessian_of_the_same_episodes() -> None:
    from pgexact.estimators import hessian_reward_to_go, reward_to_go

    mdp = random_mdp(3, 2, gamma=0.8, seed=1)
    pol = TabularSoftmax(3, 2)
    src = SampledSource(mdp, pol, n_episodes=2000, seed=0)
    theta = np.array([0.2, -0.1, 0.4, 0.0, -0.3, 0.1])
    step = newton_step(src, theta, damping=5.0, seed=7)
    trajs = src.sample(theta, seed=7)  # the oracle's episodes, drawn again from the same seed
    H = hessian_reward_to_go(trajs, pol, theta).mean
    g = reward_to_go(trajs, pol, theta).mean
    h = step.direction
    assert np.allclose(step.gradient, g, rtol=1e-12, atol=1e-14)
    assert np.allclose(5.0 * h - 0.5 * (H + H.T) @ h, g, rtol=0, atol=1e-10 * np.abs(g).max())
    cubic = cubic_newton_step(src, theta, 10.0, seed=7)
    assert np.isclose(cubic.damping, 5.0 * np.linalg.norm(cubic.direction), rtol=1e-9)
