"""Bad and extreme input to the sampler, the estimators and their statistics: a clear error or a
correct result, never a hang; and GAE against the loops of Stable-Baselines3 and CleanRL.

All deterministic.
"""

from __future__ import annotations

import time

import numpy as np
import pytest

from pgexact import TabularSoftmax, evaluate, rollout
from pgexact import estimators as E
from pgexact.errors import NumericalError
from pgexact.mdps import random_mdp

MDP = random_mdp(4, 3, gamma=0.9, horizon=5, seed=0)
PI = np.full((4, 3), 1 / 3)


# ------------------------------------------------------------------ rollout
def test_executor_of_the_wrong_type_is_refused_whatever_the_chunking():
    for n, chunk in ((10, 100), (10, 3)):
        with pytest.raises(TypeError, match="executor must be None or a concurrent.futures.Executor"):
            rollout(MDP, PI, n, seed=0, chunk_size=chunk, executor="x")
    with pytest.raises(TypeError, match="executor"):
        from pgexact import rollout_chunks

        rollout_chunks(MDP, PI, 10, seed=0, executor="x")


def test_huge_horizon_is_refused_with_its_memory():
    disc = random_mdp(4, 3, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match=r"rollout\(\.\.\., horizon=1000000000000\) of 3 episodes would need"):
        rollout(disc, PI, 3, horizon=10**12, seed=0)


def test_memory_check_helper_names_the_amount():
    from pgexact._validation import MAX_CALL_BYTES, check_memory, format_bytes

    assert format_bytes(1536) == "1.5 KB"
    with pytest.raises(ValueError, match=r"f\(x\) would need 16 GB .* more than the 8 GB one call may allocate: use less"):
        check_memory("f(x)", 2 * MAX_CALL_BYTES, "use less")
    check_memory("f(x)", MAX_CALL_BYTES)


# ------------------------------------------------------------------ estimators
def test_n_step_with_a_huge_n_takes_the_time_of_the_horizon():
    pol, th = TabularSoftmax(4, 3), np.zeros(12)
    tr = rollout(MDP, PI, 200, seed=1)
    V = evaluate(MDP, PI).V
    t0 = time.process_time()
    big = E.n_step(tr, pol, th, V, 10**9).samples
    assert time.process_time() - t0 < 5.0  # a loop to n would take hours; not a timing claim on speed
    np.testing.assert_allclose(big, E.n_step(tr, pol, th, V, 5).samples, rtol=1e-12, atol=1e-12)
    arr = E.n_step_returns(tr.rewards, np.zeros((200, 6)), 0.9, 10**9)
    np.testing.assert_allclose(arr, E.rewards_to_go(tr.rewards, 0.9), rtol=1e-12)


@pytest.mark.parametrize(
    "rewards, discount, exc, match",
    [
        ([[1.0, 2.0]], float("nan"), ValueError, "discount is nan"),
        ([[1.0, np.nan]], 0.9, ValueError, r"rewards\[0, 1\] is nan"),
        ([1.0, 2.0], 0.9, ValueError, "rewards must have 2 dimension"),
        ([[1.0]], 1.5, ValueError, "discount is 1.5"),
        ([[1.0]], "0.9", TypeError, "discount must be a real number"),
    ],
)
def test_rewards_to_go_refuses_bad_input(rewards, discount, exc, match):
    with pytest.raises(exc, match=match):
        E.rewards_to_go(rewards, discount)


@pytest.mark.parametrize(
    "samples, prob, match",
    [
        ([[1.0], [2.0]], [0.5, 0.6], "prob sums to 1.1"),
        ([[1.0], [2.0]], [1.5, -0.5], r"prob\[1\] is -0.5"),
        ([[np.nan], [2.0]], [0.5, 0.5], r"samples\[0, 0\] is nan"),
        ([[1.0], [2.0], [3.0]], [0.5, 0.5], "one row per trajectory"),
        ([[1.0], [2.0]], [[0.5, 0.5]], "prob must have 1 dimension"),
    ],
)
def test_exact_moments_refuse_bad_input(samples, prob, match):
    for fn in (E.exact_mean, E.exact_covariance):
        with pytest.raises(ValueError, match=match):
            fn(samples, prob)


def test_gae_overflow_is_a_numerical_error():
    with pytest.raises(NumericalError, match="gae overflows"):
        E.gae([[1e308, 1e308]], [[0.0, 1e308, 1e308]], 1.0, 1.0)
    with pytest.raises(NumericalError, match="td_errors overflows"):
        E.td_errors([[1e308]], [[-1e308, 1e308]], 1.0)


def test_learned_baseline_names_the_callers_arguments():
    pol, th = TabularSoftmax(4, 3), np.zeros(12)
    a = rollout(MDP, PI, 20, seed=0)
    b = rollout(MDP.with_horizon(7), PI, 20, seed=1)
    with pytest.raises(ValueError, match="trajs_baseline has 5 steps but trajs_gradient has 7"):
        E.learned_baseline(a, b, pol, th)
    other = random_mdp(3, 3, gamma=0.9, horizon=5, seed=0)
    c = rollout(other, np.full((3, 3), 1 / 3), 20, seed=0)
    with pytest.raises(ValueError, match=r"trajs_baseline\.n_states is 3 but trajs_gradient\.n_states is 4"):
        E.learned_baseline(c, a, pol, th)


# ------------------------------------------------------------------ GAE against SB3 and CleanRL
def _sb3_advantages(rewards, values, episode_starts, last_values, dones, gamma, lam):
    """Stable-Baselines3 RolloutBuffer.compute_returns_and_advantage, as written there (time-major)."""
    buffer_size = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    last_gae_lam = 0
    for step in reversed(range(buffer_size)):
        if step == buffer_size - 1:
            next_non_terminal = 1.0 - dones.astype(np.float32)
            next_values = last_values
        else:
            next_non_terminal = 1.0 - episode_starts[step + 1]
            next_values = values[step + 1]
        delta = rewards[step] + gamma * next_values * next_non_terminal - values[step]
        last_gae_lam = delta + gamma * lam * next_non_terminal * last_gae_lam
        advantages[step] = last_gae_lam
    return advantages


def _cleanrl_advantages(rewards, values, dones, next_value, next_done, gamma, lam):
    """CleanRL ppo.py's GAE loop, as written there (time-major; dones[t]: obs[t] starts an episode)."""
    num_steps = rewards.shape[0]
    advantages = np.zeros_like(rewards)
    lastgaelam = 0
    for t in reversed(range(num_steps)):
        if t == num_steps - 1:
            nextnonterminal = 1.0 - next_done
            nextvalues = next_value
        else:
            nextnonterminal = 1.0 - dones[t + 1]
            nextvalues = values[t + 1]
        delta = rewards[t] + gamma * nextvalues * nextnonterminal - values[t]
        advantages[t] = lastgaelam = delta + gamma * lam * nextnonterminal * lastgaelam
    return advantages


def test_gae_matches_stable_baselines3_with_time_limit_truncations():
    rng = np.random.default_rng(0)
    T, n_envs, gamma, lam = 40, 5, 0.97, 0.9
    rewards = rng.standard_normal((T, n_envs))
    values = rng.standard_normal((T, n_envs))
    last_values = rng.standard_normal(n_envs)
    ended = rng.random((T, n_envs)) < 0.1  # an episode ended after step t
    by_time_limit = ended & (rng.random((T, n_envs)) < 0.5)
    terminal_value = rng.standard_normal((T, n_envs))  # V(final observation) where truncated
    # SB3's collection: episode_starts[t] = done at t - 1; the reward trick at truncations
    episode_starts = np.zeros((T, n_envs))
    episode_starts[1:] = ended[:-1]
    sb3_rewards = rewards + gamma * np.where(by_time_limit, terminal_value, 0.0)
    expected = _sb3_advantages(sb3_rewards, values, episode_starts, last_values, ended[-1], gamma, lam)
    got = E.gae(
        rewards.T,
        np.concatenate([values.T, last_values[:, None]], axis=1),
        gamma,
        lam,
        terminated=(ended & ~by_time_limit).T,
        truncated=by_time_limit.T,
        bootstrap=np.where(by_time_limit, terminal_value, np.nan).T,  # read only where truncated
    )
    np.testing.assert_allclose(got, expected.T, rtol=1e-12, atol=1e-12)


def test_gae_matches_cleanrl():
    rng = np.random.default_rng(1)
    T, n_envs, gamma, lam = 64, 4, 0.99, 0.95
    rewards = rng.standard_normal((T, n_envs))
    values = rng.standard_normal((T, n_envs))
    dones = (rng.random((T, n_envs)) < 0.08).astype(float)  # dones[t]: obs[t] is a fresh episode
    next_value, next_done = rng.standard_normal(n_envs), (rng.random(n_envs) < 0.3).astype(float)
    expected = _cleanrl_advantages(rewards, values, dones, next_value, next_done, gamma, lam)
    terminated = np.zeros((T, n_envs), dtype=bool)
    terminated[:-1] = dones[1:] > 0
    terminated[-1] = next_done > 0
    got = E.gae(rewards.T, np.concatenate([values.T, next_value[:, None]], axis=1), gamma, lam, terminated=terminated.T)
    np.testing.assert_allclose(got, expected.T, rtol=1e-12, atol=1e-12)


def test_gae_truncation_arguments_are_checked():
    r, v = np.zeros((1, 3)), np.zeros((1, 4))
    cut = np.array([[False, True, False]])
    with pytest.raises(ValueError, match="pass bootstrap"):
        E.gae(r, v, 0.9, 0.5, truncated=cut)
    with pytest.raises(ValueError, match="both True"):
        E.gae(r, v, 0.9, 0.5, terminated=cut, truncated=cut, bootstrap=np.zeros((1, 3)))
    with pytest.raises(TypeError, match="truncated must be a boolean array"):
        E.gae(r, v, 0.9, 0.5, truncated=np.ones((1, 3)), bootstrap=np.zeros((1, 3)))
    with pytest.raises(ValueError, match="bootstrap must have shape"):
        E.gae(r, v, 0.9, 0.5, truncated=cut, bootstrap=np.zeros((1, 2)))
