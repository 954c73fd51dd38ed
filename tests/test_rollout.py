"""Tests of the rollout kernel: alias tables, sampled distributions, seeding, streaming, padding, bad input.

Statistical tests use fixed seeds and state their false-alarm probability (under the null
hypothesis that the sampler is right, the probability that the test fails). Each z-test uses a
Bonferroni threshold ``norm.isf(alpha / (2 k))`` over its k coordinates; chi-square tests use
``chi2.isf(alpha, dof)``. With alpha = 1e-4 per test and < 20 statistical tests in this file,
a false alarm anywhere here has probability < 2e-3.
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.sparse
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import chi2, norm

import pgexact as pg
from pgexact import FiniteMDP, Trajectories, evaluate, rollout, rollout_chunks
from pgexact.exact import state_marginals
from pgexact.mdps import random_mdp, short_corridor
from pgexact.sampling import AliasTable, chunk_seed
from pgexact.sampling.alias import alias_probabilities, build_alias

ALPHA = 1e-4


def z_ok(mean, se, expected, alpha=ALPHA):
    """Bonferroni two-sided z-test over all coordinates (false alarm <= alpha)."""
    mean, se, expected = (np.asarray(x, dtype=float).reshape(-1) for x in (mean, se, expected))
    thr = norm.isf(alpha / (2 * mean.size))
    z = np.abs(mean - expected) / np.where(se > 0, se, np.inf)
    exact = (se == 0) & (np.abs(mean - expected) > 1e-12)
    return bool(np.all(z <= thr) and not exact.any()), float(np.max(z)), thr


# --------------------------------------------------------------------------- alias tables
@settings(max_examples=40, deadline=None)
@given(
    st.integers(1, 6),
    st.integers(1, 40),
    st.integers(0, 2**32 - 1),
    st.floats(0.05, 3.0),
)
def test_alias_table_reproduces_distribution(R, K, seed, conc):
    """The distribution encoded by the table equals p to rounding; zero-probability outcomes are unreachable."""
    rng = np.random.default_rng(seed)
    p = rng.dirichlet(np.full(K, conc), size=R)
    p[rng.random((R, K)) < 0.3] = 0.0  # exact zeros
    p[:, 0] += (p.sum(axis=1) == 0)  # keep rows non-empty
    p /= p.sum(axis=1, keepdims=True)
    thr, al = build_alias(p)
    assert np.all((thr >= 0) & (thr <= 1))
    # K rounding errors of size eps per row (the pairing subtracts once per column)
    np.testing.assert_allclose(alias_probabilities(thr, al), p, rtol=0, atol=8 * K * np.finfo(float).eps)
    zero = p == 0
    assert np.all(thr[zero] == 0), "a zero-probability column has a positive threshold"
    rows = np.repeat(np.arange(R), K).reshape(R, K)
    # aliases point at outcomes of positive probability, wherever the coin can fail
    can_fail = thr < 1
    assert np.all(p[rows[can_fail], al[can_fail]] > 0)


@settings(max_examples=40, deadline=None)
@given(st.integers(1, 5), st.integers(1, 8), st.integers(0, 2**32 - 1))
def test_alias_table_on_block_rows_with_exact_ties(A, S, seed):
    """Rows pi(a) P(.|a) (blocks with equal sums) create exact ties between cumulative deficits
    and excesses; the construction must resolve them consistently (a regression: an
    inconsistent tie once shifted 10% of the mass, caught by the geometric-stopping z-test)."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(12, A))
    pi = rng.dirichlet(np.ones(A), size=12)
    pi[:8] = 1.0 / A  # uniform blocks: every block sums to K / A exactly
    joint = (pi[:, :, None] * P).reshape(12, A * S)
    thr, al = build_alias(joint)
    np.testing.assert_allclose(alias_probabilities(thr, al), joint, rtol=0, atol=8 * A * S * np.finfo(float).eps)


def test_alias_table_many_rows_built_in_blocks():
    """More than 2^16 entries: rows are built in blocks; every row still exact to ~eps."""
    p = np.random.default_rng(4).dirichlet(np.full(5, 0.5), size=20_000)
    thr, al = build_alias(p)
    np.testing.assert_allclose(alias_probabilities(thr, al), p, rtol=0, atol=40 * np.finfo(float).eps)


def test_alias_sampling_frequencies_chi_square():
    """Empirical frequencies of 400 000 draws from one table: chi-square test, false alarm 1e-4."""
    p = np.array([0.5, 0.0, 0.2, 0.05, 0.25, 1e-3, 0.0, 0.099])
    p /= p.sum()
    table = AliasTable.from_probs(p[None, :])
    n = 400_000
    draws = table.sample(np.zeros(n, dtype=np.intp), np.random.default_rng(7).random(n))
    counts = np.bincount(draws, minlength=p.size)
    assert np.all(counts[p == 0] == 0)
    pos = p > 0
    stat = np.sum((counts[pos] - n * p[pos]) ** 2 / (n * p[pos]))
    assert stat < chi2.isf(ALPHA, pos.sum() - 1)


def test_alias_table_from_sparse_rows():
    rng = np.random.default_rng(3)
    dense = rng.dirichlet(np.ones(9), size=5)
    dense[dense < 0.08] = 0
    dense /= dense.sum(axis=1, keepdims=True)
    table = AliasTable.from_sparse_rows(scipy.sparse.csr_array(dense))
    # recover the encoded distribution over codes by summing column contributions
    R, K = table.n_rows, table.n_columns
    thr = table.threshold.reshape(R, K)
    got = np.zeros_like(dense)
    rows = np.repeat(np.arange(R), K)
    np.add.at(got, (rows, table.primary), thr.reshape(-1) / K)
    np.add.at(got, (rows, table.alias), (1 - thr).reshape(-1) / K)
    np.testing.assert_allclose(got, dense, atol=1e-15)


# --------------------------------------------------------------------------- distributions
def test_state_marginals_and_actions_match_exact():
    """p_t(s) and Pr(a_t = a | s_t = s) from 100 000 episodes vs the exact marginals (z-tests, 1e-4 each)."""
    mdp = random_mdp(5, 3, gamma=0.9, horizon=6, seed=11, concentration=0.5)
    pi = np.random.default_rng(2).dirichlet(np.ones(3), size=5)
    n = 100_000
    tr = rollout(mdp, pi, n, seed=5)
    p = state_marginals(mdp, pi, 7)  # s_0 .. s_6
    onehot = tr.states[:, :, None] == np.arange(5)
    freq = onehot.mean(axis=0)
    ok, z, thr = z_ok(freq, np.sqrt(freq * (1 - freq) / n), p)
    assert ok, (z, thr)
    # joint of (s_t, a_t) at t = 3: p_3(s) pi(a|s)
    joint = np.zeros((5, 3))
    np.add.at(joint, (tr.states[:, 3], tr.actions[:, 3]), 1.0 / n)
    ok, z, thr = z_ok(joint, np.sqrt(joint * (1 - joint) / n), p[3][:, None] * pi)
    assert ok, (z, thr)
    # rewards are r(s_t, a_t)
    np.testing.assert_array_equal(tr.rewards, mdp.r[tr.states[:, :-1], tr.actions])


def test_sparse_transition_matrix_matches_dense_distribution():
    """Sparse P (S*A, S) gives the same state marginals (z-test, false alarm 1e-4)."""
    base = random_mdp(6, 2, gamma=0.9, horizon=5, seed=4, concentration=0.3)
    P = np.where(base.P < 0.05, 0.0, base.P)
    P /= P.sum(axis=2, keepdims=True)
    sp = FiniteMDP(scipy.sparse.csr_array(P.reshape(12, 6)), base.r, base.mu0, 0.9, 5)
    dense = FiniteMDP(P, base.r, base.mu0, 0.9, 5)
    pi = np.full((6, 2), 0.5)
    n = 60_000
    tr = rollout(sp, pi, n, seed=9)
    freq = (tr.states[:, :, None] == np.arange(6)).mean(axis=0)
    ok, z, thr = z_ok(freq, np.sqrt(freq * (1 - freq) / n), state_marginals(dense, pi, 6))
    assert ok, (z, thr)
    # only transitions with P > 0 occur
    assert np.all(P[tr.states[:, :-1], tr.actions, tr.states[:, 1:]] > 0)


def test_geometric_stopping_lengths_and_unbiased_return():
    """Pr(L > t) = gamma^t: E[L] = 1/(1-gamma); the undiscounted return is unbiased for J (z-tests)."""
    gamma = 0.8
    mdp = random_mdp(4, 2, gamma=gamma, seed=1)
    pi = np.full((4, 2), 0.5)
    n = 100_000
    tr = rollout(mdp, pi, n, geometric=True, seed=3)
    assert tr.objective == "geometric" and tr.discount == 1.0
    L = tr.stops
    # Var(L) = gamma / (1 - gamma)^2 for the geometric law on {1, 2, ...}
    ok, z, thr = z_ok(L.mean(), np.sqrt(gamma / (1 - gamma) ** 2 / n), 1 / (1 - gamma))
    assert ok, (z, thr)
    R = (tr.rewards * tr.mask).sum(axis=1)
    ok, z, thr = z_ok(R.mean(), R.std(ddof=1) / np.sqrt(n), evaluate(mdp, pi).J)
    assert ok, (z, thr)
    # padding: zero reward after the stop, state held
    t = np.arange(tr.n_steps)
    assert np.all(tr.rewards[t[None, :] >= L[:, None]] == 0)
    assert np.all(tr.terminated.sum(axis=1) == 1) and not tr.truncated.any()


def test_truncated_mode_estimates_truncated_objective():
    """Discounted MDP with horizon=T: the mean return is J_T (exact, mdp.with_horizon(T)), not J."""
    mdp = random_mdp(4, 2, gamma=0.9, seed=8)
    pi = np.full((4, 2), 0.5)
    T, n = 5, 80_000
    tr = rollout(mdp, pi, n, horizon=T, seed=2)
    assert tr.objective == "truncated" and tr.truncated.all()
    R = tr.rewards @ (0.9 ** np.arange(T))
    se = R.std(ddof=1) / np.sqrt(n)
    J_T = evaluate(mdp.with_horizon(T), pi).J
    ok, z, thr = z_ok(R.mean(), se, J_T)
    assert ok, (z, thr)
    assert abs(J_T - evaluate(mdp, pi).J) > 20 * se  # the truncation bias is visible at this n


# --------------------------------------------------------------------------- seeding, streaming
@pytest.mark.parametrize("geometric", [False, True])
def test_streaming_is_bit_identical_to_one_shot(geometric):
    mdp = random_mdp(5, 3, gamma=0.85, seed=0) if geometric else random_mdp(5, 3, gamma=0.9, horizon=7, seed=0)
    pi = np.random.default_rng(1).dirichlet(np.ones(3), size=5)
    whole = rollout(mdp, pi, 1000, geometric=geometric, seed=42, chunk_size=128)
    parts = list(rollout_chunks(mdp, pi, 1000, geometric=geometric, seed=42, chunk_size=128))
    assert [p.n_episodes for p in parts] == [128] * 7 + [104]
    joined = Trajectories.concatenate(parts)
    for name in ("states", "actions", "rewards", "lengths", "stops", "absorbed", "truncated"):
        np.testing.assert_array_equal(getattr(joined, name), getattr(whole, name))
    # chunk i is a function of child seed i only: the third chunk alone
    again = list(rollout_chunks(mdp, pi, 3 * 128, geometric=geometric, seed=42, chunk_size=128))[2]
    np.testing.assert_array_equal(again.states, parts[2].states[:, : again.states.shape[1]])


def test_seed_forms_and_global_state():
    mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=0)
    pi = np.full((3, 2), 0.5)
    a = rollout(mdp, pi, 50, seed=7)
    b = rollout(mdp, pi, 50, seed=np.random.SeedSequence(7))
    np.testing.assert_array_equal(a.states, b.states)
    ss = np.random.SeedSequence(7)
    rollout(mdp, pi, 50, seed=ss)
    assert ss.n_children_spawned == 0  # the caller's SeedSequence is not consumed
    g1, g2 = np.random.default_rng(3), np.random.default_rng(3)
    np.testing.assert_array_equal(rollout(mdp, pi, 50, seed=g1).states, rollout(mdp, pi, 50, seed=g2).states)
    # two calls with one Generator give two different (reproducible) samples
    assert not np.array_equal(rollout(mdp, pi, 50, seed=g1).states, a.states)
    np.random.seed(123)
    before = np.random.get_state()[1].copy()
    rollout(mdp, pi, 50, seed=1)
    assert np.array_equal(np.random.get_state()[1], before)
    assert chunk_seed(np.random.SeedSequence(5), 3).spawn_key == (3,)
    np.testing.assert_array_equal(
        chunk_seed(np.random.SeedSequence(5), 2).generate_state(4),
        np.random.SeedSequence(5).spawn(3)[2].generate_state(4),
    )


# --------------------------------------------------------------------------- absorption, padding
def test_absorption_padding_and_masks():
    sc = short_corridor(horizon=30)
    pi = pg.LinearSoftmax(sc.features).probs(sc.theta_for(0.6))
    tr = rollout(sc.mdp, pi, 2000, seed=0)
    term = sc.mdp.terminal[tr.states]
    first = np.where(term.any(axis=1), term.argmax(axis=1), 30)
    np.testing.assert_array_equal(tr.lengths, np.minimum(first, 30))
    np.testing.assert_array_equal(tr.absorbed, term.any(axis=1))
    assert np.all(tr.rewards[~tr.mask] == 0) and np.all(tr.rewards[tr.mask] == -1)
    # finite horizon: no episode is 'truncated'; each ending is marked terminated once
    assert not tr.truncated.any()
    np.testing.assert_array_equal(tr.terminated.sum(axis=1), (tr.lengths > 0).astype(int))
    # the mean episode return matches the exact J (z-test, false alarm 1e-4)
    R = tr.rewards.sum(axis=1)
    ok, z, thr = z_ok(R.mean(), R.std(ddof=1) / np.sqrt(2000), evaluate(sc.mdp, pi).J)
    assert ok, (z, thr)


def test_truncated_flags_with_terminal_states():
    P = np.zeros((3, 1, 3))
    P[0, 0] = [0.0, 0.5, 0.5]
    P[1, 0, 1] = 1.0
    P[2, 0, 2] = 1.0  # 2 is terminal (absorbing, zero reward); 1 is absorbing but rewarding
    r = np.array([[1.0], [1.0], [0.0]])
    mdp = FiniteMDP(P, r, [1.0, 0.0, 0.0], 0.9)
    tr = rollout(mdp, np.ones((3, 1)), 400, horizon=4, seed=1)
    to_terminal = tr.states[:, 1] == 2
    assert np.all(tr.lengths[to_terminal] == 1) and np.all(tr.lengths[~to_terminal] == 4)
    np.testing.assert_array_equal(tr.truncated, ~to_terminal)
    np.testing.assert_array_equal(tr.terminated[:, 0], to_terminal)
    assert not tr.terminated[~to_terminal].any()


def test_arrays_are_batch_first_and_read_only():
    mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=0)
    tr = rollout(mdp, np.full((3, 2), 0.5), 10, seed=0)
    assert tr.states.shape == (10, 5) and tr.actions.shape == (10, 4) and tr.rewards.shape == (10, 4)
    assert tr.states.dtype == np.int32 and tr.rewards.dtype == np.float64
    with pytest.raises(ValueError):
        tr.rewards[0, 0] = 1.0
    assert isinstance(pg.rollout, type(rollout)) and pg.Trajectories is Trajectories


# --------------------------------------------------------------------------- bad input
def test_bad_input_names_the_argument():
    fin = random_mdp(3, 2, gamma=0.9, horizon=4, seed=0)
    disc = random_mdp(3, 2, gamma=0.9, seed=0)
    pi = np.full((3, 2), 0.5)
    with pytest.raises(ValueError, match=r"pi must have shape"):
        rollout(fin, np.full((2, 3), 0.5), 10, seed=0)
    bad = pi.copy()
    bad[1] = [0.7, 0.7]
    with pytest.raises(ValueError, match=r"pi\[1, :\] sums to 1.4"):
        rollout(fin, bad, 10, seed=0)
    bad = pi.copy()
    bad[2] = [1.5, -0.5]
    with pytest.raises(ValueError, match=r"pi\[2, 1\] is -0.5"):
        rollout(fin, bad, 10, seed=0)
    for n in (0, -3):
        with pytest.raises(ValueError, match="n_episodes"):
            rollout(fin, pi, n, seed=0)
    with pytest.raises(TypeError, match="n_episodes"):
        rollout(fin, pi, 2.5, seed=0)
    with pytest.raises(ValueError, match="horizon is None"):
        rollout(disc, pi, 10, seed=0)
    with pytest.raises(ValueError, match="horizon is 3"):
        rollout(fin, pi, 10, horizon=3, seed=0)
    with pytest.raises(ValueError, match="geometric=True"):
        rollout(fin, pi, 10, geometric=True, seed=0)
    with pytest.raises(ValueError, match="horizon is 5"):
        rollout(disc, pi, 10, horizon=5, geometric=True, seed=0)
    with pytest.raises(ValueError, match="chunk_size"):
        rollout(fin, pi, 10, seed=0, chunk_size=0)
    with pytest.raises(TypeError, match="seed"):
        rollout(fin, pi, 10, seed=None)
    with pytest.raises(TypeError, match="mdp"):
        rollout("mdp", pi, 10, seed=0)
    with pytest.raises(ValueError, match="n_episodes"):
        rollout_chunks(fin, pi, 0, seed=0)  # validated eagerly, before the first chunk


@pytest.mark.parametrize("geometric", [False, True])
def test_executor_gives_bit_identical_results(geometric):
    """Chunks computed by 1 or 3 worker threads (and streamed with a small prefetch window) equal
    the serial result bit for bit; the sampler pickles, so process pools work the same way."""
    import pickle
    from concurrent.futures import ThreadPoolExecutor

    from pgexact.sampling.rollout import TransitionSampler

    mdp = random_mdp(4, 3, gamma=0.8, seed=2) if geometric else random_mdp(4, 3, gamma=0.9, horizon=6, seed=2)
    pi = np.random.default_rng(0).dirichlet(np.ones(3), size=4)
    serial = rollout(mdp, pi, 700, geometric=geometric, seed=5, chunk_size=100)
    for workers in (1, 3):
        with ThreadPoolExecutor(workers) as ex:
            par = rollout(mdp, pi, 700, geometric=geometric, seed=5, chunk_size=100, executor=ex)
            streamed = Trajectories.concatenate(
                list(rollout_chunks(mdp, pi, 700, geometric=geometric, seed=5, chunk_size=100, executor=ex, prefetch=2))
            )
        for got in (par, streamed):
            for name in ("states", "actions", "rewards", "lengths", "stops"):
                np.testing.assert_array_equal(getattr(got, name), getattr(serial, name))
    sampler = TransitionSampler(mdp.P, mdp.r, mdp.mu0, pi, mdp.terminal)
    clone = pickle.loads(pickle.dumps(sampler))
    np.testing.assert_array_equal(clone.joint.alias, sampler.joint.alias)


@settings(max_examples=30, deadline=None)
@given(st.data())
def test_rollout_support_property(data):
    """Random MDPs (sparse rows, exact zeros) and policies with exact zeros: every sampled
    transition has pi(a|s) > 0 and P(s'|s, a) > 0, s_0 has mu0 > 0, rewards are r(s, a),
    and under geometric stopping every episode has at least one step."""
    from pgexact.testing import finite_mdps, policy_matrices

    mdp = data.draw(finite_mdps(max_states=5, max_actions=3))
    pi = data.draw(policy_matrices(mdp.n_states, mdp.n_actions))
    seed = data.draw(st.integers(0, 2**32 - 1))
    geometric = mdp.horizon is None and data.draw(st.booleans())
    horizon = None if (mdp.horizon is not None or geometric) else data.draw(st.integers(1, 6))
    tr = rollout(mdp, pi, 300, horizon=horizon, geometric=geometric, seed=seed)
    sim = tr.simulated_mask
    s, a, s2 = tr.states[:, :-1][sim], tr.actions[sim], tr.states[:, 1:][sim]
    assert np.all(pi[s, a] > 0)
    assert np.all(mdp.P[s, a, s2] > 0)
    assert np.all(mdp.mu0[tr.states[:, 0]] > 0)
    np.testing.assert_array_equal(tr.rewards[sim], mdp.r[s, a])
    assert np.all(tr.stops >= 1) and np.all(tr.lengths <= tr.stops)
