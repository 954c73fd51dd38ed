"""Likelihood-ratio Hessian estimators (``pgexact.estimators.hessian_reinforce``, ``hessian_reward_to_go``):
their exact means by trajectory enumeration against the closed-form Hessian, the exact bias of a
plausible mistake and of truncation, and a mean test on rollouts."""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import LinearSoftmax, TabularSoftmax, hessian, rollout
from pgexact.estimators import (
    Estimate,
    enumerate_trajectories,
    exact_mean,
    hessian_reinforce,
    hessian_reward_to_go,
    mean_test,
)
from pgexact.mdps import random_mdp

ESTIMATORS = [hessian_reinforce, hessian_reward_to_go]


def _policies(S, A, rng):
    return [TabularSoftmax(S, A), LinearSoftmax(rng.normal(size=(S, A, 3)))]


@pytest.mark.parametrize("estimator", ESTIMATORS)
@pytest.mark.parametrize("gamma", [0.9, 1.0])
def test_exact_mean_is_the_hessian(estimator, gamma) -> None:
    mdp = random_mdp(3, 2, gamma=gamma, horizon=4, seed=5)
    rng = np.random.default_rng(6)
    for pol in _policies(3, 2, rng):
        theta = rng.normal(size=pol.n_params)
        tr, p = enumerate_trajectories(mdp, pol.probs(theta))
        H = exact_mean(estimator(tr, pol, theta).samples, p)
        ref = hessian(mdp, pol, theta)
        # an exact expectation over every trajectory: rounding only
        assert np.abs(H - ref).max() <= 1e-12 * max(1.0, np.abs(ref).max())


def test_score_outer_product_alone_is_biased_by_the_curvature_term() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=5)
    pol = TabularSoftmax(3, 2)
    theta = np.random.default_rng(7).normal(size=6)
    tr, p = enumerate_trajectories(mdp, pol.probs(theta))
    full = hessian_reinforce(tr, pol, theta).samples
    ref = hessian(mdp, pol, theta)
    # the mistake: R (sum psi)(sum psi)^T only; its exact bias is -E[R sum_t F_{s_t}]
    psi = pol.score(theta)[np.where(tr.mask, tr.states[:, :-1], 0), tr.actions] * tr.mask[:, :, None]
    R = (tr.rewards * tr.discounts()[None, :] * tr.mask).sum(axis=1)
    outer = np.einsum("n,ni,nj->nij", R, psi.sum(axis=1), psi.sum(axis=1))
    bias = exact_mean(outer, p) - ref
    assert np.abs(bias).max() > 1e-3 * np.abs(ref).max()  # clearly biased
    assert np.allclose(exact_mean(full - outer, p), -bias, rtol=0, atol=1e-12)


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_truncated_rollouts_estimate_the_truncated_objective(estimator) -> None:
    mdp = random_mdp(3, 2, gamma=0.8, seed=8)
    pol = TabularSoftmax(3, 2)
    theta = np.random.default_rng(9).normal(size=6)
    tr, p = enumerate_trajectories(mdp, pol.probs(theta), horizon=4)
    H = exact_mean(estimator(tr, pol, theta).samples, p)
    truncated = hessian(mdp.with_horizon(4), pol, theta)
    assert np.allclose(H, truncated, rtol=0, atol=1e-12 * np.abs(truncated).max())
    bias = H - hessian(mdp, pol, theta)  # the exact bias for the discounted J
    assert np.abs(bias).max() > 1e-3 * np.abs(truncated).max()


@pytest.mark.parametrize("estimator", ESTIMATORS)
def test_mean_test_on_geometric_rollouts_of_the_discounted_objective(estimator) -> None:
    # false alarm <= 1e-3 per estimator (Bonferroni over the n^2 entries, asymptotic in N)
    mdp = random_mdp(3, 2, gamma=0.7, seed=10)
    pol = TabularSoftmax(3, 2)
    theta = 0.5 * np.random.default_rng(11).normal(size=6)
    tr = rollout(mdp, pol.probs(theta), 20_000, geometric=True, seed=12)
    est = estimator(tr, pol, theta)
    flat = Estimate(np.asarray(est.samples).reshape(est.n, -1))
    H = hessian(mdp, pol, theta)
    assert mean_test(flat, expected=H.reshape(-1), false_alarm=1e-3).passed
    # power: with every |z| below the threshold c = 4.19 (the pass above), a shift of 9 standard
    # errors in one entry gives |z| >= 9 - c > c there: rejected, whatever the seed
    k = int(np.argmax(np.abs(H)))
    shifted = H.reshape(-1).copy()
    shifted[k] += 9 * flat.std_error[k]
    assert not mean_test(flat, expected=shifted, false_alarm=1e-3).passed


def test_bad_input() -> None:
    mdp = random_mdp(3, 2, gamma=0.9, horizon=3, seed=0)
    tr = rollout(mdp, np.full((3, 2), 0.5), 5, seed=0)
    with pytest.raises(ValueError, match="theta"):
        hessian_reinforce(tr, TabularSoftmax(3, 2), np.zeros(5))
    with pytest.raises(TypeError):
        hessian_reward_to_go(tr, object(), np.zeros(6))
