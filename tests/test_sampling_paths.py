"""Per-step views, reverse sums across blocks, and the average-reward adapters' cotangents.

The reverse sums :math:`y_t = x_t + c\\,y_{t+1}` are computed in blocks of 64 steps joined by a recursion
with factor :math:`c^{64}`: episodes longer than one block are compared with a sequential loop. The
per-step flags are compared with what the sampled states say (the first terminal state, the last
simulated step). The average reward's backward rule must scale with its cotangent.
"""

from __future__ import annotations

import numpy as np
import pytest

from pgexact import FiniteMDP, rollout
from pgexact.mdps import random_mdp
from pgexact.sampling._scan import reverse_scan


def _loop(x, c):
    y, acc = np.empty(len(x)), 0.0
    for t in range(len(x) - 1, -1, -1):
        acc = x[t] + c * acc
        y[t] = acc
    return y


def _with_terminal(mdp, gamma, horizon=None):
    P, r = np.array(mdp.P), np.array(mdp.r)
    P[-1] = 0.0
    P[-1, :, -1] = 1.0
    r[-1] = 0.0
    return FiniteMDP(P, r, mdp.mu0, gamma=gamma, horizon=horizon)


@pytest.mark.parametrize("T", [63, 64, 65, 130, 200])
def test_reverse_scan_matches_the_loop_across_blocks(T):
    rng = np.random.default_rng(T)
    x = rng.standard_normal((T, 3))
    c = 0.97
    y = reverse_scan(x, c)
    for k in range(3):
        np.testing.assert_allclose(y[:, k], _loop(x[:, k], c), rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize("geometric", [False, True])
def test_trajectories_reverse_scan_matches_the_loop_per_episode(geometric):
    mdp = random_mdp(3, 2, gamma=0.97, seed=1)
    tr = (rollout(mdp, np.full((3, 2), 0.5), 60, geometric=True, seed=2) if geometric
          else rollout(mdp, np.full((3, 2), 0.5), 20, horizon=150, seed=2))
    assert tr.n_steps > 128  # several blocks of 64 steps
    rng = np.random.default_rng(0)
    x = rng.standard_normal(tr.n_transitions)
    y = tr.reverse_scan(x, 0.95)
    sv = tr.steps
    for n in range(tr.n_episodes):
        mine = np.flatnonzero(sv.episode == n)
        mine = mine[np.argsort(sv.time[mine])]
        np.testing.assert_allclose(y[mine], _loop(x[mine], 0.95), rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize("geometric", [False, True])
def test_real_and_last_steps_agree_with_the_sampled_states(geometric):
    base = random_mdp(4, 2, gamma=0.8, seed=3, concentration=0.5)
    mdp = _with_terminal(base, 0.8, None if geometric else 12)
    tr = rollout(mdp, np.full((4, 2), 0.5), 400, geometric=geometric, seed=4)
    sv = tr.steps
    states = tr.states
    terminal = np.asarray(mdp.terminal)
    assert (tr.lengths < tr.stops).any()  # some episodes are absorbed before their stop
    seen_terminal = np.maximum.accumulate(terminal[states], axis=1)  # a terminal state among s_0..s_t
    np.testing.assert_array_equal(sv.real, ~seen_terminal[sv.episode, sv.time])
    last_time = np.full(tr.n_episodes, -1)
    np.maximum.at(last_time, sv.episode, sv.time)
    np.testing.assert_array_equal(sv.last, sv.time == last_time[sv.episode])
    np.testing.assert_array_equal(tr.final_states, states[np.arange(tr.n_episodes), tr.stops])


def test_torch_average_reward_backward_scales_with_its_cotangent():
    torch = pytest.importorskip("torch")
    import pgexact.torch as pt

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    W = torch.zeros(3, 2, dtype=torch.float64, requires_grad=True)
    (g1,) = torch.autograd.grad(pt.average_reward(mdp, torch.softmax(W, dim=1)), W)
    (g3,) = torch.autograd.grad(-3.0 * pt.average_reward(mdp, torch.softmax(W, dim=1)), W)
    assert float(g1.abs().max()) > 1e-3
    np.testing.assert_allclose(g3.numpy(), -3.0 * g1.numpy(), rtol=1e-13, atol=1e-15)


def test_jax_average_reward_vjp_scales_with_its_cotangent():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.numpy as jnp

    import pgexact.jax as pj

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    g1 = jax.grad(lambda W: pj.average_reward(mdp, jax.nn.softmax(W, axis=-1)))(jnp.zeros((3, 2)))
    g3 = jax.grad(lambda W: -3.0 * pj.average_reward(mdp, jax.nn.softmax(W, axis=-1)))(jnp.zeros((3, 2)))
    assert float(jnp.abs(g1).max()) > 1e-3
    np.testing.assert_allclose(np.asarray(g3), -3.0 * np.asarray(g1), rtol=1e-13, atol=1e-15)
