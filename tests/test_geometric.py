"""Geometric stopping in the ragged layout: storage, the long-tail scan, estimators, no hang.

Deterministic tests: the per-step estimators are checked against literal per-episode loops
written here over the padded views (a separate code path: no reverse scan, no step view), and
the scan of the transition maps against the lock-step kernel (bit for bit).
"""

from __future__ import annotations

import numpy as np
import pytest

import scipy.sparse

import pgexact.sampling.kernel as kernel
from pgexact import FiniteMDP, TabularSoftmax, Trajectories, evaluate, rollout
from pgexact import estimators as E
from pgexact.mdps import random_mdp
from pgexact.updates import SampledSource


def _flat(tr):
    return tr.flat_states, tr.flat_actions, tr.flat_rewards


@pytest.mark.parametrize("sparse", [False, True])
@pytest.mark.parametrize("geometric", [False, True])
def test_tail_scan_is_bit_identical_to_lock_step(monkeypatch, sparse, geometric):
    S, A = 5, 3
    mdp = random_mdp(S, A, gamma=0.97, seed=4) if geometric else random_mdp(S, A, gamma=0.97, horizon=300, seed=4)
    if sparse:
        mdp = FiniteMDP(scipy.sparse.csr_array(mdp.P.reshape(S * A, S)), mdp.r, mdp.mu0, mdp.gamma, mdp.horizon)
    pi = np.random.default_rng(0).dirichlet(np.ones(A), size=S)
    kw = dict(geometric=True) if geometric else {}
    monkeypatch.setattr(kernel, "TAIL_WORK", 0)  # lock-step only
    ref = rollout(mdp, pi, 40, seed=9, **kw)
    monkeypatch.setattr(kernel, "TAIL_WORK", 10**9)  # scan as early as allowed
    monkeypatch.setattr(kernel, "TAIL_MIN_ROWS", 1)
    scan = rollout(mdp, pi, 40, seed=9, **kw)
    for a, b in zip(_flat(ref), _flat(scan)):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(ref.lengths, scan.lengths)


def test_ragged_storage_is_proportional_to_the_transitions():
    mdp = random_mdp(6, 3, gamma=0.99, seed=1)
    tr = rollout(mdp, np.full((6, 3), 1 / 3), 5000, geometric=True, seed=0)
    M = int(tr.stops.sum())
    assert tr.n_transitions == M
    assert tr.flat_actions.shape == (M,) and tr.flat_rewards.shape == (M,)
    assert tr.flat_states.shape == (5000 + M,)
    assert tr.n_steps == int(tr.stops.max()) and tr.n_steps * 5000 > 4 * M  # padding would be > 4x
    # the padded views are consistent with the per-step view
    sv = tr.steps
    np.testing.assert_array_equal(tr.actions[sv.episode, sv.time], sv.action)
    np.testing.assert_array_equal(tr.states[sv.episode, sv.time], sv.state)
    np.testing.assert_array_equal(tr.states[sv.episode, sv.time + 1], sv.next_state)
    np.testing.assert_array_equal(tr.final_states, tr.states[np.arange(5000), tr.stops])


def _reference_rtg(r, d):
    G = np.zeros_like(r)
    acc = 0.0
    for t in range(len(r) - 1, -1, -1):
        acc = r[t] + d * acc
        G[t] = acc
    return G


@pytest.fixture(scope="module")
def batch():
    base = random_mdp(4, 3, gamma=0.9, seed=2)
    P, r = base.P.copy(), base.r.copy()
    P[3] = 0.0
    P[3, :, 3] = 1.0  # state 3 absorbs with zero reward: episodes end before their stop
    r[3] = 0.0
    mdp = FiniteMDP(P, r, base.mu0, 0.9)
    pol = TabularSoftmax(4, 3)
    th = np.random.default_rng(1).standard_normal(12)
    tr = rollout(mdp, pol.probs(th), 300, geometric=True, seed=5)
    return mdp, pol, th, tr


def test_estimators_match_per_episode_loops(batch):
    mdp, pol, th, tr = batch
    assert np.any(tr.lengths < tr.stops) and np.any(tr.lengths == tr.stops)  # both kinds of ending
    score = pol.score(th)
    V = evaluate(mdp, pol.probs(th)).V
    lam, n = 0.7, 3
    ref = {k: np.zeros((tr.n_episodes, 12)) for k in ("reinforce", "rtg", "gae", "nstep")}
    for e in range(tr.n_episodes):
        L = int(tr.lengths[e])
        s, a, r = tr.states[e, : L + 1], tr.actions[e, :L], tr.rewards[e, :L]
        psi = score[s[:L], a]
        ref["reinforce"][e] = psi.sum(axis=0) * r.sum()
        G = _reference_rtg(r, 1.0)
        ref["rtg"][e] = psi.T @ G
        vv = V[s]
        vv[L] = 0.0  # the stop ends the episode: no bootstrap
        delta = r + vv[1:] - vv[:-1]
        ref["gae"][e] = psi.T @ _reference_rtg(delta, lam)
        Gn = np.array([r[t : t + n].sum() + (vv[t + n] if t + n < L else 0.0) for t in range(L)])
        ref["nstep"][e] = psi.T @ (Gn - vv[:L])
    got = {
        "reinforce": E.reinforce(tr, pol, th),
        "rtg": E.reward_to_go(tr, pol, th),
        "gae": E.gae_gradient(tr, pol, th, V, lam),
        "nstep": E.n_step(tr, pol, th, V, n),
    }
    for k in ref:
        np.testing.assert_allclose(got[k].samples, ref[k], rtol=1e-10, atol=1e-10, err_msg=k)
    # n beyond every episode: the Monte Carlo return, in time independent of n
    big = E.n_step(tr, pol, th, V, 10**9).samples
    np.testing.assert_allclose(big, ref["rtg"] - np.array(
        [score[tr.states[e, : tr.lengths[e]], tr.actions[e, : tr.lengths[e]]].T @ V[tr.states[e, : tr.lengths[e]]]
         for e in range(tr.n_episodes)]), rtol=1e-10, atol=1e-10)


def test_concatenate_keeps_the_episodes_and_refuses_mixed_setups(batch):
    mdp, pol, th, tr = batch
    parts = [rollout(mdp, pol.probs(th), k, geometric=True, seed=s) for k, s in ((50, 1), (70, 2))]
    both = Trajectories.concatenate(parts)
    np.testing.assert_array_equal(both.lengths, np.concatenate([p.lengths for p in parts]))
    np.testing.assert_array_equal(both.actions[50:, : parts[1].n_steps], parts[1].actions)
    est = E.reward_to_go(both, pol, th).samples
    np.testing.assert_allclose(est, np.concatenate([E.reward_to_go(p, pol, th).samples for p in parts]), rtol=1e-12)
    fixed = rollout(mdp, pol.probs(th), 10, horizon=5, seed=0)
    with pytest.raises(ValueError, match=r"parts\[1\]\.objective is 'truncated'"):
        Trajectories.concatenate([parts[0], fixed])
    other = rollout(random_mdp(4, 3, gamma=0.8, seed=2), pol.probs(th), 10, geometric=True, seed=0)
    with pytest.raises(ValueError, match=r"parts\[1\]\.gamma"):
        Trajectories.concatenate([parts[0], other])
    small = rollout(random_mdp(3, 3, gamma=0.9, seed=2), np.full((3, 3), 1 / 3), 10, geometric=True, seed=0)
    with pytest.raises(ValueError, match=r"parts\[1\]\.n_states"):
        Trajectories.concatenate([parts[0], small])
    with pytest.raises(ValueError, match=r"parts\[1\] has 7 steps"):
        Trajectories.concatenate([fixed, rollout(mdp, pol.probs(th), 10, horizon=7, seed=0)])


def test_extreme_discount_does_not_hang():
    """gamma = 0.999999: about 1e6 steps per episode, a few seconds (not a per-step loop)."""
    mdp = random_mdp(4, 3, gamma=0.999999, seed=0)
    pi = np.full((4, 3), 1 / 3)
    tr = rollout(mdp, pi, 5, geometric=True, seed=0)
    assert tr.n_transitions == int(tr.lengths.sum()) > 10**5
    src = SampledSource(mdp, TabularSoftmax(4, 3), 1, seed=0)
    g = src.gradient(np.zeros(12), seed=1)
    assert g.shape == (12,) and np.all(np.isfinite(g))


def test_huge_requests_are_refused_with_their_memory():
    mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match=r"would need .* TB"):
        rollout(mdp, np.full((4, 3), 1 / 3), 10, horizon=10**12, seed=0)
    with pytest.raises(ValueError, match=r"would need"):
        rollout(random_mdp(4, 3, gamma=1 - 1e-15, seed=0), np.full((4, 3), 1 / 3), 10, geometric=True, seed=0)


def test_sparse_joint_tables_encode_pi_times_p_in_blocks():
    """The tables built block by block encode pi(a|s) P(s'|s, a) exactly (to rounding)."""
    from pgexact.sampling.alias import alias_probabilities

    rng = np.random.default_rng(3)
    S, A = 37, 3
    P = rng.dirichlet(np.full(S, 0.3), size=(S, A))
    P[P < 0.02] = 0.0
    P /= P.sum(axis=2, keepdims=True)
    pi = rng.dirichlet(np.ones(A), size=S)
    table = kernel._sparse_joint_table(scipy.sparse.csr_array(P.reshape(S * A, S)), pi, block=5)
    K = table.n_columns
    enc = alias_probabilities(table.threshold.reshape(S, K), _local_alias(table, S, K))
    joint = np.zeros((S, A * S))
    np.add.at(joint, (np.repeat(np.arange(S), K), table.primary), enc.reshape(-1))
    np.testing.assert_allclose(joint, (pi[:, :, None] * P).reshape(S, A * S), atol=1e-14)


def _local_alias(table, S, K):
    """Alias columns (0..K-1) from the alias codes: the column of each row holding that code."""
    prim = table.primary.reshape(S, K)
    al = table.alias.reshape(S, K)
    out = np.empty((S, K), dtype=np.intp)
    for s in range(S):
        first = {}
        for j, c in enumerate(prim[s]):
            first.setdefault(int(c), j)
        out[s] = [first[int(c)] for c in al[s]]
    return out


@pytest.mark.parametrize("tail", [False, True])
def test_several_chunks_written_in_place_equal_their_concatenation(monkeypatch, batch, tail):
    """rollout with several geometric chunks writes each chunk into the merged batch; it must be
    bit for bit the concatenation of rollout_chunks (lock-step, or scan for the tails)."""
    from pgexact import rollout_chunks

    mdp, pol, th, _ = batch  # with an absorbing state
    monkeypatch.setattr(kernel, "TAIL_WORK", 10**9 if tail else 0)
    monkeypatch.setattr(kernel, "TAIL_MIN_ROWS", 1)
    whole = rollout(mdp, pol.probs(th), 700, geometric=True, seed=11, chunk_size=128)
    parts = Trajectories.concatenate(list(rollout_chunks(mdp, pol.probs(th), 700, geometric=True, seed=11, chunk_size=128)))
    for name in ("flat_states", "flat_actions", "flat_rewards", "counts", "column_order", "lengths", "absorbed"):
        np.testing.assert_array_equal(getattr(whole, name), getattr(parts, name), err_msg=name)
