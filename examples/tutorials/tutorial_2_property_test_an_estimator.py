"""
Property-test your own estimator
================================

You wrote a policy-gradient estimator. Is it unbiased — on *every* small problem, not only on the
one you tried? pgexact gives the exact gradient to compare against and hypothesis strategies
(:mod:`pgexact.testing`) that draw random MDPs, policies and parameters; the statistical test
:func:`pgexact.estimators.mean_test` states its false-alarm probability.

Below: a reward-to-go estimator written from scratch with numpy (as in a course exercise), a
version with a classic bug (the discount of the reward-to-go counted from t = 0 instead of from
the current step), and a property test that accepts the first and rejects the second.
"""

import numpy as np
from hypothesis import given, settings

import pgexact as pg
from pgexact.estimators import mean_test
from pgexact.testing import tabular_problems


def my_reward_to_go(trajs, policy, theta, discount_from_zero=False):
    """Per-episode Σ_t γ^t ∇log π(a_t|s_t) Σ_{t' ≥ t} γ^{t'−t} r_{t'}, written from scratch."""
    pi = policy.probs(theta)
    S, A = pi.shape
    states, actions = trajs.states[:, :-1], trajs.actions
    rewards = np.where(trajs.mask, trajs.rewards, 0.0)
    N, T = rewards.shape
    g = trajs.gamma
    powers = g ** np.arange(T)
    to_go = np.cumsum((rewards * powers)[:, ::-1], axis=1)[:, ::-1]  # Σ_{t'≥t} γ^{t'} r_{t'}
    weights = to_go  # γ^t · Σ_{t'≥t} γ^{t'−t} r_{t'} = Σ_{t'≥t} γ^{t'} r_{t'}
    if discount_from_zero:
        weights = to_go * powers  # the bug: γ^t applied twice
    # tabular score: ∇_{θ[s, b]} log π(a|s) = 1[b = a] − π(b|s)
    grads = np.zeros((N, S, A))
    rows = np.repeat(np.arange(N), T)
    s, a, w = states.reshape(-1), actions.reshape(-1), (weights * trajs.mask).reshape(-1)
    np.add.at(grads, (rows, s, a), w)
    np.add.at(grads, (rows, s), -w[:, None] * pi[s])
    return grads.reshape(N, -1)


def is_unbiased(estimator, mdp, policy, theta, n_episodes=4000, seed=0):
    trajs = pg.rollout(mdp, policy.probs(theta), n_episodes, seed=seed)
    samples = estimator(trajs, policy, theta)
    mean = samples.mean(axis=0)
    std_error = samples.std(axis=0, ddof=1) / np.sqrt(n_episodes)
    # Bonferroni over the coordinates: false-alarm probability 1e-4 per problem
    return mean_test(mean, std_error, pg.policy_gradient(mdp, policy, theta), false_alarm=1e-4).passed


# %%
# The property: unbiased on every finite-horizon problem hypothesis draws
# -----------------------------------------------------------------------
# Twenty problems with a false-alarm probability of 1e-4 each: the correct estimator fails this
# property with probability at most 2e-3.


@settings(max_examples=20, deadline=None, derandomize=True)
@given(tabular_problems(discounted=False, min_states=2, min_actions=2, max_horizon=5))
def test_my_estimator_is_unbiased(problem):
    mdp, policy, theta = problem
    theta = np.clip(theta, -3, 3)  # keep the variance moderate for 4000 episodes
    assert is_unbiased(my_reward_to_go, mdp, policy, theta)


test_my_estimator_is_unbiased()
print("my_reward_to_go: unbiased on 20 random problems")

# %%
# The buggy version is caught
# ---------------------------
# On a problem with γ < 1 and a horizon of 5, applying γ^t twice shrinks the late terms: the
# test rejects it (its z statistic is far beyond the Bonferroni threshold).

mdp = pg.mdps.random_mdp(4, 3, gamma=0.8, horizon=5, seed=3)
policy = pg.TabularSoftmax(4, 3)
theta = np.random.default_rng(4).standard_normal(policy.n_params)


def buggy(trajs, policy, theta):
    return my_reward_to_go(trajs, policy, theta, discount_from_zero=True)


print("correct estimator passes:", is_unbiased(my_reward_to_go, mdp, policy, theta))
print("buggy estimator passes:  ", is_unbiased(buggy, mdp, policy, theta, n_episodes=20000))
