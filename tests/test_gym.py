"""Gymnasium interop: exact MDPs from toy-text tables, FiniteMDPs exported as Envs.

Independent references: gymnasium's own ``step`` (deterministic environments and policies give
the exact return, which must equal the exact value V_0(s0) computed from the converted tables),
gymnasium's environment checker, and Monte Carlo returns (z-tests with stated false-alarm rates).
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from scipy.stats import norm

gym = pytest.importorskip("gymnasium")
from gymnasium.utils.env_checker import check_env  # noqa: E402

from pgexact import FiniteMDP, evaluate  # noqa: E402
from pgexact.gym import from_gymnasium, make_env  # noqa: E402
from pgexact.mdps import gridworld, random_mdp  # noqa: E402
from pgexact.testing import finite_mdps  # noqa: E402

Z_ALPHA = norm.isf(1e-6 / 2)  # two-sided z-test, false-alarm probability 1e-6 per test


def deterministic_pi(S: int, A: int, choice: np.ndarray) -> np.ndarray:
    pi = np.zeros((S, A))
    pi[np.arange(S), choice] = 1.0
    return pi


def gym_return(env, s0: int, choice: np.ndarray, gamma: float, max_steps: int) -> float:
    """Discounted return of the deterministic policy `choice` from s0, by gymnasium's own step."""
    env.reset(seed=0)
    env.unwrapped.s = s0
    total, disc = 0.0, 1.0
    for _ in range(max_steps):
        _, rew, term, trunc, _ = env.step(int(choice[env.unwrapped.s]))
        total += disc * rew
        disc *= gamma
        if term or trunc:
            break
    return total


# --------------------------------------------------------------- toy-text -> FiniteMDP
@pytest.mark.parametrize(
    "name, kwargs, gamma, horizon",
    [
        ("FrozenLake-v1", {"map_name": "8x8", "is_slippery": False}, 1.0, "time_limit"),
        ("Taxi-v4", {}, 1.0, "time_limit"),
        ("CliffWalking-v1", {}, 0.9, None),
        ("FrozenLake-v1", {"is_slippery": False}, 0.8, 30),
    ],
)
def test_deterministic_envs_exact_return_matches_gym_step(name, kwargs, gamma, horizon):
    """Deterministic dynamics + deterministic policy: gymnasium's return is V_0(s0) exactly."""
    env = gym.make(name, **kwargs)
    mdp = from_gymnasium(env, gamma=gamma, horizon=horizon)
    S, A = mdp.n_states, mdp.n_actions
    rng = np.random.default_rng(3)
    for trial in range(3):
        choice = rng.integers(0, A, size=S)
        ev = evaluate(mdp, deterministic_pi(S, A, choice))
        V0 = ev.V[0] if mdp.horizon is not None else ev.V
        steps = mdp.horizon if mdp.horizon is not None else 400  # 0.9^400 < 1e-18
        starts = np.flatnonzero(mdp.mu0 > 0)[:: max(1, int(np.sum(mdp.mu0 > 0)) // 15)]
        for s0 in starts:
            got = gym_return(env, int(s0), choice, gamma, steps)
            # deterministic: equal up to summation rounding (|returns| <= 200 * 20)
            assert abs(got - V0[s0]) <= 1e-9 * max(1.0, abs(got)), (name, trial, s0, got, V0[s0])


def test_frozenlake_structure_and_terminal_choice():
    env = gym.make("FrozenLake-v1")  # 4x4, slippery, TimeLimit 100
    mdp = from_gymnasium(env, gamma=1.0, horizon="time_limit")
    assert (mdp.n_states, mdp.n_actions, mdp.gamma, mdp.horizon) == (16, 4, 1.0, 100)
    # holes H at 5, 7, 11, 12 and the goal G at 15 ("SFFF/FHFH/FFFH/HFFG")
    assert np.flatnonzero(mdp.terminal).tolist() == [5, 7, 11, 12, 15]
    for t in [5, 7, 11, 12, 15]:
        assert np.all(mdp.P[t, :, t] == 1.0) and np.all(mdp.r[t] == 0.0)
    # slippery: the intended move and the two perpendicular ones, 1/3 each. From 14 moving
    # right (2): right -> 15 (goal, reward 1), up -> 10, down -> stays at 14.
    assert np.allclose(mdp.P[14, 2, [10, 14, 15]], 1 / 3, atol=1e-15)
    assert mdp.r[14, 2] == pytest.approx(1 / 3, abs=1e-15)
    assert mdp.mu0.tolist() == [1.0] + [0.0] * 15
    sp = from_gymnasium(env, gamma=1.0, horizon="time_limit", sparse=True)
    assert sp.is_sparse and np.array_equal(sp.P.toarray().reshape(16, 4, 16), mdp.P)


def test_frozenlake_slippery_monte_carlo_matches_exact_J():
    """Slippery FrozenLake, a good deterministic policy: mean gym return vs exact J.

    z-test on the success indicator (returns are 0/1), false-alarm probability 1e-6.
    """
    env = gym.make("FrozenLake-v1")
    mdp = from_gymnasium(env, gamma=1.0, horizon="time_limit")  # gymnasium's truncated episodes
    # LEFT=0, DOWN=1, RIGHT=2, UP=3: the classic optimal policy of the 4x4 map
    choice = np.array([0, 3, 3, 3, 0, 0, 0, 0, 3, 1, 0, 0, 0, 2, 1, 0])
    J = evaluate(mdp, deterministic_pi(16, 4, choice)).J
    n = 1500
    returns = np.empty(n)
    env.reset(seed=123)
    for i in range(n):
        s, _ = env.reset()
        total, done = 0.0, False
        while not done:
            s, rew, term, trunc, _ = env.step(int(choice[s]))
            total += rew
            done = term or trunc
        returns[i] = total
    se = np.sqrt(J * (1 - J) / n)
    assert 0.3 < J < 0.95  # a non-degenerate Bernoulli, so the z-test has power
    assert abs(returns.mean() - J) <= Z_ALPHA * se


def test_taxi_structure():
    mdp = from_gymnasium(gym.make("Taxi-v4"), gamma=1.0, horizon="time_limit")
    assert (mdp.n_states, mdp.n_actions, mdp.horizon) == (500, 6, 200)
    # terminal: passenger delivered, taxi at the destination (one state per destination)
    assert int(mdp.terminal.sum()) == 4
    # every non-terminal step costs 1 except illegal pickup/dropoff (-10) and delivery (+20)
    vals = set(np.unique(mdp.r[~mdp.terminal]).tolist())
    assert vals <= {-1.0, -10.0, 20.0}


# --------------------------------------------------------------- bad input
class _FakeEnv:
    """Minimal object with a toy-text table (spaces from gymnasium)."""

    def __init__(self, table, S=2, A=1, mu0=(1.0, 0.0)):
        self.P = table
        self.observation_space = gym.spaces.Discrete(S)
        self.action_space = gym.spaces.Discrete(A)
        if mu0 is not None:
            self.initial_state_distrib = np.asarray(mu0)
        self.spec = None


def test_env_without_tables_is_rejected():
    with pytest.raises(TypeError, match=r"no exact transition table.*CartPoleEnv has none"):
        from_gymnasium(gym.make("CartPole-v1"), gamma=0.9)


def test_malformed_tables_are_rejected():
    ok = {0: {0: [(1.0, 1, 0.0, True)]}, 1: {0: [(1.0, 1, 0.0, True)]}}
    with pytest.raises(ValueError, match=r"P\[0\]\[0\]\[0\] has probability 1.5"):
        from_gymnasium(_FakeEnv({0: {0: [(1.5, 1, 0.0, False)]}, 1: ok[1]}), gamma=0.9, horizon=None)
    with pytest.raises(ValueError, match=r"P\[0\]\[0\]\[0\] has next state 7, expected 0..1"):
        from_gymnasium(_FakeEnv({0: {0: [(1.0, 7, 0.0, False)]}, 1: ok[1]}), gamma=0.9, horizon=None)
    with pytest.raises(ValueError, match=r"P\[0, 0, :\] sums to 0.5"):
        from_gymnasium(_FakeEnv({0: {0: [(0.5, 1, 0.0, True)]}, 1: ok[1]}), gamma=0.9, horizon=None)
    with pytest.raises(ValueError, match=r"no entry for state 1"):
        from_gymnasium(_FakeEnv({0: ok[0]}), gamma=0.9, horizon=None)
    with pytest.raises(ValueError, match=r"P\[0\]\[0\]\[0\] is 'x'"):
        from_gymnasium(_FakeEnv({0: {0: ["x"]}, 1: ok[1]}), gamma=0.9, horizon=None)
    with pytest.raises(ValueError, match=r"no initial_state_distrib: pass mu0"):
        from_gymnasium(_FakeEnv(ok, mu0=None), gamma=0.9, horizon=None)
    assert from_gymnasium(_FakeEnv(ok, mu0=None), gamma=0.9, horizon=None, mu0=[0.5, 0.5]).n_states == 2
    with pytest.raises(ValueError, match=r"no time limit.*pass gamma < 1"):
        from_gymnasium(_FakeEnv(ok), gamma=1.0, horizon="time_limit")
    with pytest.raises(ValueError, match=r"no time limit"):
        from_gymnasium(gym.make("CliffWalking-v1"), gamma=1.0, horizon="time_limit")  # no TimeLimit
    with pytest.raises(ValueError, match=r"gamma is 1.0.*horizon='time_limit'"):
        from_gymnasium(gym.make("FrozenLake-v1"), gamma=1.0)  # default: infinite horizon
    with pytest.raises(TypeError, match="gamma"):
        from_gymnasium(gym.make("FrozenLake-v1"))  # gamma is required
    # a next state that is not an integer is refused, not truncated
    for bad in (1.5, 1.0, "1", True):
        with pytest.raises(ValueError, match=r"P\[0\]\[0\]\[0\] has next state .*expected an integer"):
            from_gymnasium(_FakeEnv({0: {0: [(1.0, bad, 0.0, True)]}, 1: ok[1]}), gamma=0.9)
    assert from_gymnasium(_FakeEnv({0: {0: [(1.0, np.int64(1), 0.0, True)]}, 1: ok[1]}), gamma=0.9).n_states == 2


def test_frozenlake_default_is_the_discounted_problem():
    """from_gymnasium(env, gamma=...) drops the TimeLimit unless a horizon is asked for.

    Reference values from outside the project: the optimal J of slippery FrozenLake 4x4 at
    gamma = 0.99 is 0.5420 (infinite horizon) and 0.5223 with the 100-step limit kept.
    """
    from pgexact.updates import policy_iteration, value_iteration

    env = gym.make("FrozenLake-v1")
    mdp = from_gymnasium(env, gamma=0.99)
    assert mdp.horizon is None and mdp.gamma == 0.99
    opt = policy_iteration(mdp)
    assert abs(opt.J - 0.5420) < 5e-5
    limited = from_gymnasium(env, gamma=0.99, horizon="time_limit")
    assert limited.horizon == 100
    assert abs(value_iteration(limited).J - 0.5223) < 5e-5  # backward induction, 100 steps


def test_state_dependent_termination_is_rejected_when_reachable():
    # state 1 is entered terminally from 0 (action 1) and non-terminally from 0 (action 0)
    table = {
        0: {0: [(1.0, 1, 0.0, False)], 1: [(1.0, 1, 1.0, True)]},
        1: {0: [(1.0, 1, 0.0, True)], 1: [(1.0, 1, 0.0, True)]},
    }
    with pytest.raises(ValueError, match=r"P\[0\]\[0\] enters state 1 without terminating"):
        from_gymnasium(_FakeEnv(table, A=2), gamma=0.9, horizon=None)
    # the same entry from a state no episode reaches is harmless (as in Taxi)
    table3 = {
        0: {0: [(1.0, 0, 0.0, False)], 1: [(1.0, 1, 1.0, True)]},
        1: {0: [(1.0, 1, 0.0, True)], 1: [(1.0, 1, 0.0, True)]},
        2: {0: [(1.0, 1, 0.0, False)], 1: [(1.0, 2, 0.0, False)]},
    }
    mdp = from_gymnasium(_FakeEnv(table3, S=3, A=2, mu0=(1.0, 0.0, 0.0)), gamma=0.9, horizon=None)
    assert mdp.terminal.tolist() == [False, True, False]


def test_importing_pgexact_does_not_import_gymnasium():
    code = "import sys, pgexact, pgexact.gym; print('gymnasium' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


# --------------------------------------------------------------- FiniteMDP -> Env
@pytest.mark.parametrize(
    "mdp, kw",
    [
        (gridworld(3, 4, gamma=0.9, horizon=20), {}),
        (gridworld(3, 4, gamma=0.9, sparse=True), {"max_episode_steps": 50}),
        (random_mdp(5, 3, gamma=0.9, seed=0), {"max_episode_steps": 10, "render_mode": "ansi"}),
    ],
)
def test_exported_env_passes_gymnasium_checker(mdp, kw):
    env = make_env(mdp, **kw)
    check_env(env, skip_render_check=False)
    obs, info = env.reset(seed=5)
    assert env.observation_space.contains(obs)
    # same seed, same episode (randomness only through reset(seed=...))
    traj = []
    for _ in range(2):
        env.reset(seed=11)
        traj.append([env.step(1)[:4] for _ in range(6)])
    assert traj[0] == traj[1]


@settings(max_examples=25, deadline=None)
@given(finite_mdps(max_states=5, max_actions=3))
def test_round_trip_through_toy_text_table(mdp):
    back = from_gymnasium(make_env(mdp), gamma=mdp.gamma, horizon=mdp.horizon)
    assert np.allclose(back.P, mdp.P, rtol=0, atol=1e-15)
    assert np.allclose(back.r, mdp.r, rtol=0, atol=1e-15)
    assert np.array_equal(back.mu0, mdp.mu0) and np.array_equal(back.terminal, mdp.terminal)


def test_exported_env_monte_carlo_return_matches_exact_J():
    """Slippery gridworld, finite horizon, uniform policy: mean return of the exported env vs J.

    z-test with the sample standard deviation (n = 3000 episodes of <= 12 steps),
    false-alarm probability 1e-6 (normal approximation; returns are bounded in [0, 1]).
    """
    mdp = gridworld(3, 3, gamma=0.95, slip=0.3, horizon=12)
    env = make_env(mdp)
    rng = np.random.default_rng(0)
    env.reset(seed=0)
    n = 3000
    returns = np.empty(n)
    for i in range(n):
        env.reset()
        total, disc, done = 0.0, 1.0, False
        while not done:
            _, rew, term, trunc, _ = env.step(int(rng.integers(4)))
            total += disc * rew
            disc *= mdp.gamma
            done = term or trunc
        returns[i] = total
    J = evaluate(mdp, np.full((9, 4), 0.25)).J
    assert 0.1 < J < 0.9
    assert abs(returns.mean() - J) <= Z_ALPHA * returns.std(ddof=1) / np.sqrt(n)


def test_exported_env_transition_frequencies_sparse():
    """From one (s, a) of a sparse MDP the next-state frequencies match P (Pearson chi-square,
    false-alarm probability 1e-6)."""
    from scipy.stats import chi2

    mdp = FiniteMDP(
        scipy.sparse.csr_array(random_mdp(6, 2, gamma=0.9, seed=2).P.reshape(12, 6)),
        np.zeros((6, 2)), np.full(6, 1 / 6), 0.9,
    )
    env = make_env(mdp)
    env.reset(seed=1)
    n = 4000
    counts = np.zeros(6)
    for _ in range(n):
        env.s = 3
        counts[env.step(1)[0]] += 1
    p = mdp.P.toarray()[3 * 2 + 1]
    stat = np.sum((counts - n * p) ** 2 / (n * p))
    assert stat <= chi2.isf(1e-6, df=5)


def test_make_env_bad_input():
    with pytest.raises(TypeError, match="mdp must be a pgexact.FiniteMDP"):
        make_env("FrozenLake")
    with pytest.raises(ValueError, match="max_episode_steps"):
        make_env(random_mdp(2, 2, gamma=0.5, seed=0), max_episode_steps=0)
    with pytest.raises(ValueError, match="render_mode"):
        make_env(random_mdp(2, 2, gamma=0.5, seed=0), render_mode="human")
    env = make_env(random_mdp(2, 2, gamma=0.5, seed=0))
    env.reset(seed=0)
    with pytest.raises(ValueError, match="action must be an int in 0..1"):
        env.step(5)


def test_exported_env_honours_the_action_mask():
    from pgexact.mdps import random_mdp

    mask = np.array([[True, False], [True, True], [False, True]])
    env = make_env(random_mdp(3, 2, gamma=0.9, horizon=10, seed=0, action_mask=mask))
    for seed in range(100):  # a start state with an infeasible action (states 0 and 2)
        s, info = env.reset(seed=seed)
        if not mask[s].all():
            break
    assert info["action_mask"].tolist() == mask[s].astype(int).tolist()
    bad = int(np.flatnonzero(~mask[s])[0])
    with pytest.raises(ValueError, match=f"action {bad} is infeasible in state {s}"):
        env.step(bad)
    for _ in range(20):
        a = int(np.flatnonzero(info["action_mask"])[0])
        s, _, term, trunc, info = env.step(a)
        assert info["action_mask"].tolist() == mask[s].astype(int).tolist()
        if term or trunc:
            s, info = env.reset()


def test_environment_constructor_checks_its_arguments() -> None:
    from pgexact.gym import FiniteMDPEnv

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    for cls in (FiniteMDPEnv, make_env):
        with pytest.raises(TypeError, match=r"^mdp must be a pgexact.FiniteMDP, got NoneType"):
            cls(None)
        with pytest.raises(ValueError, match=r"^render_mode must be None or 'ansi', got array"):
            cls(mdp, render_mode=np.array([]))
        with pytest.raises(ValueError, match=r"^max_episode_steps must be a positive integer, got 0"):
            cls(mdp, max_episode_steps=0)


def test_env_methods_have_their_own_numpydoc_docstrings() -> None:
    """Not gymnasium's inherited ones (which do not parse as reST under numpydoc)."""
    FunctionDoc = pytest.importorskip("numpydoc.docscrape").FunctionDoc
    from pgexact.gym import FiniteMDPEnv

    for name in ("reset", "step", "render"):
        assert FiniteMDPEnv.__dict__[name].__doc__  # defined on the class itself
    returns = [r.name for r in FunctionDoc(FiniteMDPEnv.step)["Returns"]]
    assert returns == ["observation", "reward", "terminated", "truncated", "info"]


def test_reset_checks_its_seed() -> None:
    env = make_env(random_mdp(3, 2, gamma=0.9, seed=0))
    for bad in ("x", -1, 1.5, True):
        with pytest.raises(TypeError, match=r"^seed must be None or a non-negative integer"):
            env.reset(seed=bad)
    assert env.reset(seed=np.int64(3))[0] == env.reset(seed=3)[0]
