"""Optimal baselines: closed forms against enumeration (weighted least squares) and the recursion."""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import LinearSoftmax, TabularSoftmax
from pgexact.estimators import enumerate_trajectories, estimator_moments, exact_mean, optimal_baselines, reward_to_go
from pgexact.mdps import gridworld, random_mdp
from pgexact.theorems.registry import CONTROL_FACTOR, get


def _problem(seed: int):
    rng = np.random.default_rng(seed)
    S, H = int(rng.integers(2, 4)), int(rng.integers(1, 5))
    mdp = random_mdp(S, 2, gamma=float(rng.choice([0.9, 1.0])), horizon=H, seed=rng)
    pol = LinearSoftmax(rng.standard_normal((S, 2, 3))) if seed % 2 else TabularSoftmax(S, 2)
    return mdp, pol, rng.standard_normal(pol.n_params)


@pytest.mark.parametrize("seed", range(8))
def test_optima_match_weighted_least_squares_over_enumerated_trajectories(seed: int) -> None:
    # Var(g_k(0) - b.Z) = E[(g_k(0) - b.Z)^2] - (E g_k)^2 since E Z = 0: the optimum is the
    # probability-weighted least-squares fit of g_k(0) on the features Z, per trajectory.
    mdp, pol, theta = _problem(seed)
    H, S = mdp.horizon, mdp.n_states
    opt = optimal_baselines(mdp, pol, theta)
    trajs, prob = enumerate_trajectories(mdp, pol.probs(theta))
    g0 = reward_to_go(trajs, pol, theta).samples  # (M, d)
    score = pol.score(theta)[trajs.states[:, :H], trajs.actions]  # (M, H, d)
    disc = mdp.gamma ** np.arange(H)
    w = np.sqrt(prob)
    for k in range(pol.n_params):
        Z = np.zeros((len(prob), H, S))
        for t in range(H):
            Z[np.arange(len(prob)), t, trajs.states[:, t]] = disc[t] * score[:, t, k]
        Z = Z.reshape(len(prob), H * S)
        keep = np.abs(Z).sum(axis=0) > 0
        coef = np.linalg.lstsq(w[:, None] * Z[:, keep], w * g0[:, k], rcond=None)[0]
        resid = g0[:, k] - Z[:, keep] @ coef
        var_min = prob @ resid**2 - exact_mean(g0[:, k], prob) ** 2
        assert np.isclose(opt.variance_state[k], var_min, rtol=1e-10, atol=1e-12)
        assert np.allclose(opt.state[k].reshape(-1)[keep], coef, rtol=1e-7, atol=1e-9)
        z = Z.sum(axis=1)
        b = (prob @ (g0[:, k] * z)) / (prob @ z**2) if prob @ z**2 > 0 else 0.0
        assert np.isclose(opt.constant[k], b, rtol=1e-10, atol=1e-12)


def test_reported_minima_are_achieved_and_ordered() -> None:
    mdp = gridworld(3, 3, gamma=0.95, horizon=40, slip=0.2, step_reward=-0.1)
    pol = TabularSoftmax(9, 4)
    theta = 0.5 * np.random.default_rng(0).standard_normal(36)
    opt = optimal_baselines(mdp, pol, theta)
    for k in (0, 5, 17):
        cov_s = estimator_moments(mdp, pol, theta, "state_baseline", b=opt.state[k]).covariance
        cov_c = estimator_moments(mdp, pol, theta, "constant_baseline", b=float(opt.constant[k])).covariance
        assert np.isclose(cov_s[k, k], opt.variance_state[k], rtol=1e-10, atol=1e-14)
        assert np.isclose(cov_c[k, k], opt.variance_constant[k], rtol=1e-10, atol=1e-14)
    slack = 1e-12 * np.maximum(1.0, opt.variance_none)
    assert np.all(opt.variance_state <= opt.variance_constant + slack)
    assert np.all(opt.variance_constant <= opt.variance_none + slack)
    assert np.all(opt.variance_state <= opt.variance_value + slack)
    assert np.sum(opt.variance_value - opt.variance_state) > 0  # V is not optimal here


def test_trace_optimal_constant() -> None:
    mdp, pol, theta = _problem(3)
    opt = optimal_baselines(mdp, pol, theta)
    tr = lambda b: estimator_moments(mdp, pol, theta, "constant_baseline", b=b).trace  # noqa: E731
    b = opt.constant_trace
    assert tr(b) <= min(tr(b + 1e-3), tr(b - 1e-3))


def test_bad_input() -> None:
    mdp, pol, theta = _problem(0)
    geo = optimal_baselines(mdp.with_horizon(None, gamma=0.9), pol, theta)  # geometric stopping: b(s)
    assert geo.state.shape == (pol.n_params, mdp.n_states)
    with pytest.raises(ValueError, match="theta"):
        optimal_baselines(mdp, pol, np.zeros(pol.n_params + 1))


@pytest.mark.parametrize("theorem_id", ["baselines.optimal_state_baseline", "baselines.optimal_constant_baseline"])
def test_theorem_holds_and_controls_have_power(theorem_id: str) -> None:
    thm = get(theorem_id)
    rng = np.random.default_rng(11)
    insts = [thm.instance(rng) for _ in range(20)]
    assert max(thm.outcome(i).residual for i in insts) <= thm.tolerance
    for c in thm.controls:
        assert np.mean([c.residual(i) >= CONTROL_FACTOR * thm.tolerance for i in insts]) >= 0.9, c.name
