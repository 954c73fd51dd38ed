"""Conformance core: Convention, expected_update (two exact computations and a brute-force
simulation), the plain-numpy reference of every convention and its negative controls, audit.

Statistical checks use the batch-means tests of pgexact.conformance.stats, whose false-alarm
probability is calibrated in tests/test_conformance_stats.py; each states its own α below.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest

from pgexact import FiniteMDP, LinearSoftmax, TabularSoftmax, evaluate, policy_gradient
from pgexact.conformance import PRESETS, Convention, DriverRun, audit, expected_update
from pgexact.conformance.audit import candidate_conventions, default_logits, default_mdp
from pgexact.conformance.expected import _logit_updates
from pgexact.conformance.reference import collect, grouped_updates, reference_update, simulate
from pgexact.conformance.stats import mean_test, power_against
from pgexact.mdps import chain, gridworld, random_mdp
from pgexact.policies import softmax_rows

TRUNC = ("bootstrap", "terminate", "reset_obs", "cross")


def _instance(seed=1):
    # the gridworld's dynamics with rewards r[s, a] ~ N(0, 1) (0 at the goal): every row's reward matters
    grid = gridworld(3, 3, gamma=0.8, slip=0.2)
    rng = np.random.default_rng(seed)
    r = rng.normal(size=(9, 4))
    r[grid.terminal] = 0.0
    mdp = FiniteMDP(grid.P, r, grid.mu0, 0.8)
    logits = rng.normal(size=(9, 4))
    pi = softmax_rows(logits)
    V = evaluate(mdp, pi).V + 0.3 * rng.normal(size=9)  # an inexact critic: every term matters
    return mdp, logits, pi, V


# ----------------------------------------------------------------------------- Convention
@pytest.mark.parametrize("field, value, match", [
    ("weighting", "gamma", "weighting must be one of"),
    ("truncation", "drop", "truncation must be one of"),
    ("autoreset", "later", "autoreset must be one of"),
    ("lam", 1.5, r"lam must lie in \[0, 1\], got 1.5"),
    ("gamma", -0.1, "gamma must lie in"),
    ("normalize_advantages", True, "say at which level"),
    ("n_envs", 0, "n_envs must be a positive integer"),
    ("time_limit", 2.5, "time_limit must be a positive integer"),
    ("ent_coef", float("nan"), "ent_coef must be a finite real"),
    ("bootstrap_end", 1, "bootstrap_end must be True or False"),
])
def test_convention_rejects_bad_fields(field, value, match):
    with pytest.raises((ValueError, TypeError), match=match):
        Convention(**{field: value})


def test_convention_replace_names_unknown_field():
    with pytest.raises(TypeError, match="no field 'lambda'"):
        Convention().replace(**{"lambda": 0.9})


def test_presets_are_conventions_named_after_their_key():
    assert set(PRESETS) == {"sb3-ppo", "sb3-a2c", "cleanrl-ppo", "torchrl-ppo", "tianshou-ppo", "skrl-ppo", "rlax"}
    for name, c in PRESETS.items():
        assert isinstance(c, Convention) and c.name == name


def test_driver_run_validates():
    with pytest.raises(ValueError, match=r"updates\[1, 0, 1\] is nan"):
        DriverRun(np.array([np.zeros((2, 2)), [[0, np.nan], [0, 0]]]), "x", "1", {}, None)
    with pytest.raises(ValueError, match="shape"):
        DriverRun(np.zeros((2, 2)), "x", "1", {}, None)
    run = DriverRun(np.zeros((1, 2, 2)), "x", "1", {}, None)
    with pytest.raises(ValueError):
        run.updates[0, 0, 0] = 1.0  # read-only


# ----------------------------------------------------------------------------- expected_update
def test_bootstrap_with_exact_critic_gives_advantages_whatever_lambda():
    # independent side: evaluate's A (an LU solve), no chain, no recursion over m
    mdp = gridworld(3, 3, gamma=0.8, slip=0.2)
    pi = softmax_rows(default_logits(9, 4))
    A = evaluate(mdp, pi).A
    for lam, n, T in [(0.0, 32, 10), (0.7, 7, 10), (1.0, 13, 4)]:
        c = Convention(lam=lam, gamma=0.8, n_steps=n, time_limit=T)
        for batch in (None, 0, 3):
            e = expected_update(mdp, pi, c, batch=batch)
            np.testing.assert_allclose(e.weights, e.state_weights[:, None] * pi * A, atol=1e-14)
            assert abs(e.state_weights.sum() - 1.0) < 1e-12  # uniform rows: weights sum to 1


@pytest.mark.parametrize("wt, tr, be", list(itertools.product(("uniform", "discounted"),
                                                              ("bootstrap", "terminate", "reset_obs"),
                                                              (True, False))))
def test_renewal_equals_chain(wt, tr, be):
    # two computations: renewal sequence + recursion over m, versus the forward/backward chain
    # over (k, s); they share only P, r, mu0, V and pi. Rounding only: 1e-13.
    mdp, _, pi, V = _instance()
    for n, T in [(32, 10), (7, 10), (10, 10), (3, 5)]:
        c = Convention(weighting=wt, truncation=tr, lam=0.9, gamma=0.8, ent_coef=0.05, bootstrap_end=be,
                       n_steps=n, time_limit=T)
        groups = [None, (0,), (1,), (0, 1, 2), (5,)]
        a = _logit_updates(mdp, pi, V, c, groups, "renewal")
        b = _logit_updates(mdp, pi, V, c, groups, "chain")
        for x, y in zip(a, b):
            np.testing.assert_allclose(x, y, atol=1e-13)


def test_renewal_equals_chain_without_terminal_states_and_sparse():
    mdp = random_mdp(5, 3, gamma=0.9, seed=2)
    pi = softmax_rows(np.random.default_rng(0).normal(size=(5, 3)))
    V = np.random.default_rng(1).normal(size=5)
    c = Convention(truncation="terminate", lam=0.8, gamma=0.9, n_steps=9, time_limit=4)
    for batch in (None, 0, 2):
        a = expected_update(mdp, pi, c, values=V, batch=batch, method="renewal").update
        b = expected_update(mdp, pi, c, values=V, batch=batch, method="chain").update
        np.testing.assert_allclose(a, b, atol=1e-13)
    sp = gridworld(3, 3, gamma=0.8, slip=0.2, sparse=True)
    de = gridworld(3, 3, gamma=0.8, slip=0.2)
    pi9 = softmax_rows(default_logits(9, 4))
    for conv in (c.replace(gamma=0.8), c.replace(gamma=0.8, truncation="cross", autoreset="next_step")):
        np.testing.assert_allclose(expected_update(sp, pi9, conv, batch=1).update,
                                   expected_update(de, pi9, conv, batch=1).update, atol=1e-13)


def test_long_run_average_is_the_limit_of_batches():
    # the gridworld's episode lengths are aperiodic: batch b -> batch=None geometrically
    mdp, _, pi, V = _instance()
    for c in (Convention(gamma=0.8, lam=0.9, n_steps=8, time_limit=10, truncation="cross", autoreset="next_step"),
              Convention(gamma=0.8, lam=0.9, n_steps=8, time_limit=10)):
        lim = expected_update(mdp, pi, c, values=V).update
        far = expected_update(mdp, pi, c, values=V, batch=600).update
        near = expected_update(mdp, pi, c, values=V, batch=0).update
        assert np.abs(far - lim).max() < 1e-9 * np.abs(lim).max()
        assert np.abs(near - lim).max() > 1e-3 * np.abs(lim).max()  # the transient is real


def test_parametrized_policy_is_jacobian_transpose_of_weights():
    mdp, logits, pi, V = _instance()
    c = Convention(gamma=0.8, lam=0.9, n_steps=16, time_limit=10, ent_coef=0.1)
    tab = expected_update(mdp, (TabularSoftmax(9, 4), logits.ravel()), c, values=V)
    mat = expected_update(mdp, pi, c, values=V)
    np.testing.assert_allclose(tab.update.reshape(9, 4), mat.update, atol=1e-15)
    feats = np.random.default_rng(3).normal(size=(9, 4, 5))
    pol = LinearSoftmax(feats)
    theta = np.random.default_rng(4).normal(size=5)
    lin = expected_update(mdp, (pol, theta), c, values=V)
    pi_l = pol.probs(theta)
    w = expected_update(mdp, pi_l, c, values=V).weights
    # J^T (w - pi sum w): by the features directly
    centred = w - pi_l * w.sum(axis=1, keepdims=True)
    np.testing.assert_allclose(lin.update, np.einsum("sa,sak->k", centred, feats), atol=1e-14)


def test_expected_update_errors():
    mdp, logits, pi, V = _instance()
    c = Convention(gamma=0.8, n_steps=4, time_limit=3)
    with pytest.raises(ValueError, match=r"values must have shape \(S,\) = \(9,\), got \(8,\)"):
        expected_update(mdp, pi, c, values=np.zeros(8))
    with pytest.raises(ValueError, match=r"batch\[1\] is -1"):
        expected_update(mdp, pi, c, batch=[0, -1])
    with pytest.raises(ValueError, match="does not cover truncation='cross'"):
        expected_update(mdp, pi, c.replace(truncation="cross"), method="renewal")
    with pytest.raises(TypeError, match="convention must be"):
        expected_update(mdp, pi, "sb3-ppo")
    with pytest.raises(ValueError, match="pi_or_policy_theta"):
        expected_update(mdp, np.full((9, 4), 0.3), c)
    with pytest.raises(ValueError, match="more than"):
        expected_update(mdp, pi, c.replace(n_steps=10**6, time_limit=10**3, autoreset="next_step"), batch=0)


# ----------------------------------------------------------------------------- brute force
def _z_against(conv, mdp, logits, pi, V, *, n_envs, n_steps, n_batches, seed):
    run = collect(mdp, logits, V, time_limit=conv.time_limit, n_envs=n_envs, n_steps=n_steps,
                  n_batches=n_batches, seed=seed, convention=conv.replace(n_envs=n_envs, n_steps=n_steps))
    return run.updates


ALL = [Convention(weighting=wt, truncation=tr, autoreset=ar, bootstrap_end=be, lam=0.9, gamma=0.8,
                  ent_coef=0.2, time_limit=10)
       for wt, tr, ar, be in itertools.product(("uniform", "discounted"), TRUNC, ("same_step", "next_step"),
                                                (True, False))]
FAST = [c for c in ALL if c.bootstrap_end == (c.weighting == "uniform") and (c.weighting == "uniform") == (
    c.truncation in ("bootstrap", "cross"))]


@pytest.mark.parametrize("conv", FAST, ids=lambda c: c.label())
def test_reference_mean_agrees_with_expected_update(conv):
    # brute force: the simulator's mean over 80 batches of 256 envs x 16 steps against the exact
    # mean of those batches, in 40 blocks of 2 batches; mean_test at false alarm 1e-3
    # (Bonferroni over the 36 coordinates; calibrated in test_conformance_stats.py)
    mdp, logits, pi, V = _instance()
    B, K = 80, 40
    U = _z_against(conv, mdp, logits, pi, V, n_envs=256, n_steps=16, n_batches=B, seed=11)
    mu = expected_update(mdp, pi, conv.replace(n_steps=16), values=V, batch=range(B)).update
    groups = [tuple(range(B // K * k, B // K * (k + 1))) for k in range(K)]
    adv, ent, _ = _logit_updates(mdp, pi, V, conv.replace(n_steps=16), groups)
    r = mean_test(U, np.repeat(adv + ent, B // K, axis=0), n_blocks=K, false_alarm=1e-3)
    assert not r.reject, (r.z, r.threshold, r.worst)
    np.testing.assert_allclose(np.repeat(adv + ent, B // K, axis=0).mean(axis=0), mu, atol=1e-15)


@pytest.mark.slow
@pytest.mark.parametrize("conv", [c for c in ALL if c not in FAST], ids=lambda c: c.label())
def test_reference_mean_agrees_with_expected_update_slow(conv):
    test_reference_mean_agrees_with_expected_update(conv)


# ----------------------------------------------------------------------------- negative controls
CONTROLS = [Convention(truncation=tr, autoreset=ar, lam=0.95, gamma=0.8, time_limit=10, n_envs=16, n_steps=32)
            for tr, ar in [("bootstrap", "same_step"), ("terminate", "same_step"), ("cross", "same_step"),
                           ("reset_obs", "same_step"), ("terminate", "next_step"), ("cross", "next_step")]]


def _negative_controls(controls, min_powered):
    # 3x3 slippery gridworld, gamma 0.8, time limit 10, 64 envs x 32 steps, 200 batches, 20 blocks:
    # each reference passes its own exact test (false alarm 0.01, looking along the differences to
    # the other predictions too) and is rejected against every other convention's prediction.
    # The critic is the exact V shifted by cos(s): with the exact V the expected advantage of
    # a fresh episode's rows is nearly 0, so "cross" and "reset_obs" (which differ only by
    # gamma*lambda times it) are then nearly indistinguishable.
    mdp = default_mdp()
    logits = default_logits(9, 4)
    pi = softmax_rows(logits)
    V = evaluate(mdp, pi).V + np.cos(np.arange(9))
    groups = [tuple(range(10 * k, 10 * k + 10)) for k in range(20)]
    preds = {}
    for c in controls:
        adv, ent, _ = _logit_updates(mdp, pi, V, c, groups)
        preds[c.label()] = np.repeat(adv + ent, 10, axis=0)
    means = {k: v.mean(axis=0) for k, v in preds.items()}
    powered = 0
    for c in controls:
        U = collect(mdp, logits, V, time_limit=10, n_envs=64, n_steps=32, n_batches=200, seed=5,
                    convention=c.replace(n_envs=64)).updates
        own = mean_test(U, preds[c.label()], n_blocks=20, false_alarm=0.01)
        assert not own.reject, (c.label(), own.z)
        blocks = (U - preds[c.label()]).reshape(20, 10, -1).mean(axis=1)
        for label, mu in preds.items():
            if label == c.label():
                continue
            shift = means[label] - means[c.label()]
            # the test of one named alternative: the projection on the difference of predictions
            r = mean_test(U, mu, directions=shift[None], coordinates=False, n_blocks=20, false_alarm=0.01)
            # its predicted power (normal approximation, standard error measured under the null)
            u = shift.ravel() / np.linalg.norm(shift)
            ncp = np.linalg.norm(shift) / ((blocks @ u).std(ddof=1) / np.sqrt(20))
            if ncp - r.threshold > 3.1:  # power > 0.999
                assert r.reject, (c.label(), label, r.z)
                powered += 1
    assert powered >= min_powered, powered


def test_negative_controls_each_convention_rejects_the_others():
    # bootstrap, terminate, cross (same-step): 4 of the 6 ordered pairs powered (> 0.999) at this
    # seed, and those rejected; every pair fails its own-convention test only with probability 0.01
    _negative_controls(CONTROLS[:3], 4)


@pytest.mark.slow
def test_negative_controls_each_convention_rejects_the_others_slow():
    # 20 of the 30 ordered pairs powered at this seed; the others (e.g. cross same-step vs
    # next-step, 2.5 standard errors apart here) need more batches
    _negative_controls(CONTROLS, 18)


# ----------------------------------------------------------------------------- reference implementation
def test_grouped_updates_equal_per_group_reference():
    mdp, logits, pi, V = _instance()
    c = Convention(truncation="cross", autoreset="next_step", gamma=0.8, lam=0.9, ent_coef=0.1,
                   weighting="discounted", time_limit=4)
    b = next(simulate(mdp, pi, time_limit=4, n_envs=6, n_steps=9, n_batches=1, autoreset="next_step", seed=3))
    g = grouped_updates(b, logits, V, c, 3)
    from pgexact.conformance import TransitionBatch
    for i in range(3):
        sub = TransitionBatch(*(getattr(b, f)[:, 2 * i:2 * i + 2] for f in (
            "obs", "actions", "rewards", "next_obs", "final_obs", "terminated", "truncated", "episode_step")))
        np.testing.assert_allclose(g[i], reference_update(sub, logits, V, c), atol=1e-15)


def test_simulator_next_step_reset_rows():
    mdp = chain(3, gamma=0.9) if False else gridworld(1, 2, gamma=0.9, slip=0.0)
    pi = np.array([[0.0, 1.0, 0.0, 0.0], [0.25] * 4])  # always move right: the goal in one step
    b = next(simulate(mdp, pi, time_limit=5, n_envs=1, n_steps=4, n_batches=1, autoreset="next_step", seed=0))
    assert b.obs[:, 0].tolist() == [0, 1, 0, 1]
    assert b.terminated[:, 0].tolist() == [True, False, True, False]
    assert b.rewards[:, 0].tolist() == [1.0, 0.0, 1.0, 0.0]
    b = next(simulate(mdp, pi, time_limit=5, n_envs=1, n_steps=3, n_batches=1, autoreset="same_step", seed=0))
    assert b.obs[:, 0].tolist() == [0, 0, 0] and b.final_obs[:, 0].tolist() == [1, 1, 1]


def test_reference_normalization_scales():
    mdp, logits, pi, V = _instance()
    b = next(simulate(mdp, pi, time_limit=10, n_envs=8, n_steps=16, n_batches=1, seed=0))
    base = Convention(gamma=0.8, time_limit=10)
    for norm in ("batch", "minibatch"):
        u = reference_update(b, logits, V, base.replace(normalize_advantages=norm))
        assert np.isfinite(u).all() and np.abs(u).max() > 0
        assert np.allclose(u.sum(axis=1), 0)


# ----------------------------------------------------------------------------- audit
def test_audit_of_a_user_function_that_ignores_time_limits():
    mdp = default_mdp()
    lg = default_logits(9, 4)
    V = evaluate(mdp, softmax_rows(lg)).V
    wrong = Convention(truncation="terminate", gamma=0.8, lam=0.95, time_limit=10)

    def update(batch):
        return reference_update(batch, lg, V, wrong)

    r = audit(update, mdp, n_batches=100, n_blocks=10, seed=2)
    assert r.verdict("uniform/terminate/same_step/end=V").consistent
    assert not r.verdict("uniform/bootstrap/same_step/end=V").consistent
    d = json.loads(json.dumps(r.to_dict()))
    assert d["library"] == "update" and 0.9 < d["cosine"] < 1.0
    grad = policy_gradient(mdp, TabularSoftmax(9, 4), lg.ravel()).reshape(9, 4)
    np.testing.assert_allclose(r.gradient, grad)
    assert "consistent" in str(r) and "uniform/terminate/same_step/end=V" in str(r)


def test_audit_errors():
    with pytest.raises(ValueError, match="unknown driver 'nope'|nope"):
        audit("nope", n_batches=20, n_blocks=10)
    with pytest.raises(TypeError, match="driver_or_callable"):
        audit(3, n_batches=20, n_blocks=10)
    with pytest.raises(ValueError, match="n_batches=5 must be at least n_blocks=10"):
        audit("reference", n_batches=5, n_blocks=10)

    def bad(batch):
        return np.zeros((3, 3))

    with pytest.raises(ValueError, match=r"update_fn returned shape \(3, 3\)"):
        audit(bad, n_batches=20, n_blocks=10)


def test_candidate_conventions_cover_every_variant():
    cs = candidate_conventions(PRESETS["sb3-ppo"])
    assert len({c.label() for c in cs}) == 32
    assert all(c.lam == 0.95 and c.normalize_advantages == "minibatch" for c in cs)


# ----------------------------------------------------------------------------- CLI and pytest helper
def test_cli_audit_reference(capsys):
    from pgexact.cli import main

    assert main(["audit", "reference", "--batches", "20", "--json"]) == 0
    d = json.loads(capsys.readouterr().out)
    assert d["library"] == "pgexact.conformance.reference" and len(d["verdicts"]) == 32
    assert main(["audit", "nope", "--batches", "20"]) == 2
    assert "nope" in capsys.readouterr().err
    assert main(["audit", "reference", "--batches", "5"]) == 2


def test_assert_update_consistent_fails_with_z():
    from pgexact.testing import assert_update_consistent

    mdp = default_mdp()
    lg = default_logits(9, 4)
    V = evaluate(mdp, softmax_rows(lg)).V
    good = Convention(gamma=0.8, lam=0.95, time_limit=10, n_envs=16, n_steps=32)
    bad = good.replace(truncation="terminate")
    assert_update_consistent(lambda b: reference_update(b, lg, V, good), good)
    with pytest.raises(AssertionError, match=r"not consistent with uniform/bootstrap/same_step/end=V \(mean test\): z = "):
        assert_update_consistent(lambda b: reference_update(b, lg, V, bad), good)


def test_audit_reports_the_closest_convention_when_none_is_consistent():
    # per-minibatch normalization is parallel to no prediction exactly: the report still names
    # the closest candidate
    r = audit("reference", n_batches=40, n_blocks=10, seed=0, normalize_advantages="minibatch")
    best = r.closest()
    assert best.convention.truncation == "bootstrap" and best.convention.autoreset == "same_step"
    assert ("closest:" in str(r)) == (not r.consistent)
