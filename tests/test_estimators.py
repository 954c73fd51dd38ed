"""Tests of the Monte Carlo estimators.

Three kinds of evidence, never an expected value computed by the code under test:

1. **Exact expectations** (deterministic): every estimator applied to *all* trajectories of a
   small finite-horizon problem, weighted by their probabilities, against the exact core
   (``policy_gradient``, ``fisher``, ``surrogate``, ...; and ``reinforce_by_enumeration``, an
   independent enumeration). Tolerance 1e-9 relative: rounding in sums over <= 2e4 trajectories
   is ~1e-15.
2. **Sampled means** against exact values: Bonferroni z-tests (``mean_test``) with the
   false-alarm probability stated per test; a calibration test checks the test's rejection rate
   over many seeds against its nominal level.
3. **Exact variances** by enumeration, so that variance claims are computed, not asserted.

False alarms: each sampled z-test below has false-alarm probability <= 1e-4 (stated at the
test; 13 of them) and the calibration test 2e-3, so a false alarm anywhere in this file has
probability < 4e-3 (Bonferroni). All seeds are fixed, so a run is reproducible.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.stats import binom, norm

from pgexact import (
    LinearSoftmax,
    TabularSoftmax,
    evaluate,
    fisher,
    policy_gradient,
    rollout,
    rollout_chunks,
    surrogate,
    trajectory_fisher,
)
from pgexact import estimators as E
from pgexact.exact import reinforce_by_enumeration, surrogate_gradient
from pgexact.mdps import bandit, random_mdp

ALPHA = 1e-4


def rel(a, b):
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.max(np.abs(a - b)) / max(np.max(np.abs(b)), 1.0))


def assert_mean(est, expected, alpha=ALPHA):
    res = E.mean_test(est.mean, est.std_error, expected, false_alarm=alpha)
    assert res.passed, str(res)
    return res


# ============================================================ 1. exact expectations by enumeration
@st.composite
def enum_problems(draw):
    seed = draw(st.integers(0, 2**32 - 1))
    rng = np.random.default_rng(seed)
    S, A, H = draw(st.integers(1, 3)), draw(st.integers(1, 3)), draw(st.integers(1, 4))
    gamma = draw(st.sampled_from([0.5, 0.9, 1.0]))
    mdp = random_mdp(S, A, gamma=gamma, horizon=H, seed=rng, concentration=0.5)
    if draw(st.booleans()):
        policy = LinearSoftmax(rng.standard_normal((S, A, draw(st.integers(1, 3)))))
    else:
        policy = TabularSoftmax(S, A)
    theta = draw(st.sampled_from([0.3, 1.0, 3.0])) * rng.standard_normal(policy.n_params)
    return mdp, policy, theta, rng


@settings(max_examples=25, deadline=None)
@given(enum_problems())
def test_exact_expectations_of_unbiased_estimators(problem):
    """E[estimator] over all trajectories equals the exact gradient/Fisher/surrogate (rel 1e-9)."""
    mdp, pol, th, rng = problem
    pi = pol.probs(th)
    tr, p = E.enumerate_trajectories(mdp, pi)
    assert abs(p.sum() - 1) < 1e-12
    ev = evaluate(mdp, pi)
    g = policy_gradient(mdp, pol, th)
    H, S = mdp.horizon, mdp.n_states
    mean = lambda est: E.exact_mean(est.samples, p)  # noqa: E731
    enum = reinforce_by_enumeration(mdp, pol, th)  # the exact core's own, independent enumeration
    assert rel(mean(E.reinforce(tr, pol, th)), enum.reinforce) < 1e-9
    assert rel(mean(E.reward_to_go(tr, pol, th)), enum.reward_to_go) < 1e-9
    lam = float(rng.uniform())
    for est in (
        E.reinforce(tr, pol, th),
        E.reward_to_go(tr, pol, th),
        E.constant_baseline(tr, pol, th, float(rng.normal(scale=5))),
        E.state_baseline(tr, pol, th, rng.normal(size=S)),
        E.state_baseline(tr, pol, th, rng.normal(size=(H, S))),
        E.advantage(tr, pol, th, ev.A),
        E.advantage(tr, pol, th, ev.Q),
        E.n_step(tr, pol, th, ev.V, int(rng.integers(1, 5))),
        E.gae_gradient(tr, pol, th, ev.V, lam),
    ):
        assert rel(mean(est), g) < 1e-9
    assert rel(mean(E.fisher_estimate(tr, pol, th)), fisher(mdp, pol, th)) < 1e-9
    assert rel(mean(E.trajectory_fisher_estimate(tr, pol, th)), trajectory_fisher(mdp, pol, th)) < 1e-9
    th_new = th + rng.normal(size=th.size)
    assert rel(mean(E.surrogate_estimate(tr, pol, th, th_new, ev.A)), surrogate(mdp, pi, pol.probs(th_new))) < 1e-9
    assert rel(
        mean(E.surrogate_gradient_estimate(tr, pol, th, th_new, ev.A)), surrogate_gradient(mdp, pol, th, th_new)
    ) < 1e-9
    # GAE with a wrong V: the recursion of gae_expected_gradient vs the enumeration
    V_bad = ev.V + rng.normal(size=ev.V.shape)
    assert rel(mean(E.gae_gradient(tr, pol, th, V_bad, lam)), E.gae_expected_gradient(mdp, pol, th, V_bad, lam)) < 1e-9


def test_gae_expected_gradient_discounted_identities():
    """Discounted recursion: exact V -> policy gradient for every lambda; lambda = 1 -> for every V."""
    mdp = random_mdp(4, 3, gamma=0.85, seed=3)
    pol = TabularSoftmax(4, 3)
    th = np.random.default_rng(0).normal(size=12)
    g = policy_gradient(mdp, pol, th)
    V = evaluate(mdp, pol.probs(th)).V
    for lam in (0.0, 0.3, 1.0):
        assert rel(E.gae_expected_gradient(mdp, pol, th, V, lam), g) < 1e-10
    assert rel(E.gae_expected_gradient(mdp, pol, th, V + np.arange(4.0), 1.0), g) < 1e-10
    assert rel(E.gae_expected_gradient(mdp, pol, th, V + np.arange(4.0), 0.5), g) > 1e-3  # biased


def test_truncated_enumeration_is_gradient_of_truncated_objective():
    mdp = random_mdp(3, 2, gamma=0.9, seed=5)
    pol = TabularSoftmax(3, 2)
    th = np.random.default_rng(1).normal(size=6)
    tr, p = E.enumerate_trajectories(mdp, pol.probs(th), horizon=4)
    assert tr.objective == "truncated" and tr.truncated.all()
    g_T = policy_gradient(mdp.with_horizon(4), pol, th)
    assert rel(E.exact_mean(E.reward_to_go(tr, pol, th).samples, p), g_T) < 1e-9


# ============================================================ 2. sampled means
FIN = random_mdp(3, 2, gamma=0.9, horizon=4, seed=21)
DISC = random_mdp(3, 2, gamma=0.7, seed=22)
POL = TabularSoftmax(3, 2)
TH = np.array([0.5, -0.3, 1.0, 0.2, -0.8, 0.4])
N_SAMPLED = 40_000


@pytest.fixture(scope="module")
def finite_sample():
    return rollout(FIN, POL.probs(TH), N_SAMPLED, seed=101)


@pytest.fixture(scope="module")
def geometric_sample():
    return rollout(DISC, POL.probs(TH), N_SAMPLED, geometric=True, seed=102)


def _unbiased_cases(mdp):
    ev = evaluate(mdp, POL.probs(TH))
    b = np.array([0.3, -1.0, 2.0])
    return {
        "reinforce": lambda tr: E.reinforce(tr, POL, TH),
        "reward_to_go": lambda tr: E.reward_to_go(tr, POL, TH),
        "constant_baseline": lambda tr: E.constant_baseline(tr, POL, TH, 1.5),
        "state_baseline": lambda tr: E.state_baseline(tr, POL, TH, b),
        "advantage": lambda tr: E.advantage(tr, POL, TH, ev.A),
        "n_step": lambda tr: E.n_step(tr, POL, TH, ev.V, 2),
        "gae": lambda tr: E.gae_gradient(tr, POL, TH, ev.V, 0.7),
    }


@pytest.mark.parametrize("name", list(_unbiased_cases(FIN)))
def test_sampled_gradient_estimators_are_unbiased(name, finite_sample, geometric_sample):
    """Finite horizon and geometric stopping: sample mean vs exact gradient; false alarm 1e-4 per case
    (Bonferroni over 6 coordinates and the 2 settings)."""
    for mdp, tr in ((FIN, finite_sample), (DISC, geometric_sample)):
        est = _unbiased_cases(mdp)[name](tr)
        assert_mean(est, policy_gradient(mdp, POL, TH), alpha=ALPHA / 2)


def test_sampled_fisher_and_surrogate_are_unbiased(finite_sample, geometric_sample):
    """Fisher (both kinds) and the IS surrogate and its gradient; false alarm 1e-4 in total."""
    a = ALPHA / 5
    assert_mean(E.fisher_estimate(finite_sample, POL, TH), fisher(FIN, POL, TH), a)
    assert_mean(E.fisher_estimate(geometric_sample, POL, TH), fisher(DISC, POL, TH), a)
    assert_mean(E.trajectory_fisher_estimate(finite_sample, POL, TH), trajectory_fisher(FIN, POL, TH), a)
    th_new = TH + np.array([0.3, 0.0, -0.4, 0.1, 0.2, -0.2])
    A_old = evaluate(DISC, POL.probs(TH)).A
    assert_mean(E.surrogate_estimate(geometric_sample, POL, TH, th_new, A_old), surrogate(DISC, POL.probs(TH), POL.probs(th_new)), a)
    assert_mean(
        E.surrogate_gradient_estimate(geometric_sample, POL, TH, th_new, A_old), surrogate_gradient(DISC, POL, TH, th_new), a
    )


def test_learned_baseline_on_independent_episodes_is_unbiased(finite_sample):
    """The notes' algorithm: critic fitted on other episodes (tabular and linear); false alarm 1e-4."""
    critic = rollout(FIN, POL.probs(TH), 2000, seed=103)
    est = E.learned_baseline(critic, finite_sample, POL, TH)
    assert_mean(est, policy_gradient(FIN, POL, TH), alpha=ALPHA / 2)
    phi = np.array([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    est = E.learned_baseline(critic, finite_sample, POL, TH, features=phi)
    assert_mean(est, policy_gradient(FIN, POL, TH), alpha=ALPHA / 2)


# ---------------------------------------------------------------- biased estimators
def test_gae_with_wrong_values_has_the_predicted_bias(geometric_sample):
    """Sample mean of GAE(0.5) with a wrong V matches the exact prediction (false alarm 1e-4) and
    the bias is resolved: the mean is > 8 standard errors away from the true gradient."""
    ev = evaluate(DISC, POL.probs(TH))
    V_bad = ev.V + np.array([1.0, -1.5, 0.5])
    est = E.gae_gradient(geometric_sample, POL, TH, V_bad, 0.5)
    predicted = E.gae_expected_gradient(DISC, POL, TH, V_bad, 0.5)
    assert_mean(est, predicted)
    z = (est.mean - policy_gradient(DISC, POL, TH)) / est.std_error
    assert np.max(np.abs(z)) > 8


def test_truncation_without_bootstrap_has_the_predicted_bias():
    """Truncated episodes estimate grad J_T exactly (false alarm 1e-4); bias grad J_T - grad J resolved."""
    tr = rollout(DISC, POL.probs(TH), 30_000, horizon=3, seed=104)
    est = E.reward_to_go(tr, POL, TH)
    assert_mean(est, policy_gradient(DISC.with_horizon(3), POL, TH))
    z = (est.mean - policy_gradient(DISC, POL, TH)) / est.std_error
    assert np.max(np.abs(z)) > 8


BANDIT = bandit([1.0, 0.0, 2.5])
BPOL = TabularSoftmax(1, 3)
BTH = np.array([0.2, 0.5, -0.4])


def _bandit_batches(n_batches, batch, seed):
    big = rollout(BANDIT, BPOL.probs(BTH), n_batches * batch, seed=seed, chunk_size=batch)
    return list(rollout_chunks(BANDIT, BPOL.probs(BTH), n_batches * batch, seed=seed, chunk_size=batch)), big


def test_reused_baseline_and_centred_advantages_shrink_by_exactly_1_minus_1_over_n():
    r"""Baseline = batch mean of the returns, fitted on the *same* N episodes (one-step problem):
    E[g_hat] = (1 - 1/N) grad J exactly (E[psi_n R_m] = 0 for m != n). Batch-centred advantages
    are the same estimator. z-tests over 3000 i.i.d. batches, false alarm 1e-4 for the two."""
    N = 4
    batches, _ = _bandit_batches(3000, N, seed=105)
    g = policy_gradient(BANDIT, BPOL, BTH)
    reused = np.array([E.learned_baseline(b, b, BPOL, BTH).mean for b in batches])
    centred = np.array([E.normalized_advantage(b, BPOL, BTH, b.rewards, scale=False).mean for b in batches])
    np.testing.assert_allclose(reused, centred, atol=1e-14)  # same estimator, two routes
    se = reused.std(axis=0, ddof=1) / np.sqrt(len(reused))
    res = E.mean_test(reused.mean(axis=0), se, (1 - 1 / N) * g, false_alarm=ALPHA / 2)
    assert res.passed, str(res)
    # ... and independent batches for the critic remove the bias
    indep = np.array([E.learned_baseline(batches[i - 1], b, BPOL, BTH).mean for i, b in enumerate(batches)])
    # consecutive batches share a critic/gradient pair, so the terms are 1-dependent: use every other one
    sub = indep[::2]
    res = E.mean_test(sub.mean(axis=0), sub.std(axis=0, ddof=1) / np.sqrt(len(sub)), g, false_alarm=ALPHA / 2)
    assert res.passed, str(res)


def test_normalized_advantages_sign_and_order():
    r"""Mean-and-std normalized returns: E[g_hat] is approximately grad J / sd(R) (to O(1/N)).
    Checked: every coordinate has the sign of grad J, and the norm is within a factor 1.5 of
    ||grad J|| / sd(R) (sd(R) exact: Var_pi of the arm means). Batches of 16, 1500 batches: the
    standard error of each averaged coordinate is < 4% of its value (the sign checks have margins
    of > 25 standard errors) and the measured norm ratio is ~0.96, far inside [1/1.5, 1.5]."""
    batches, _ = _bandit_batches(1500, 16, seed=106)
    g = policy_gradient(BANDIT, BPOL, BTH)
    pi = BPOL.probs(BTH)[0]
    means = np.array([1.0, 0.0, 2.5])
    sd = np.sqrt(pi @ means**2 - (pi @ means) ** 2)
    est = np.array([E.normalized_advantage(b, BPOL, BTH, b.rewards).mean for b in batches]).mean(axis=0)
    assert np.all(np.sign(est) == np.sign(g))
    ratio = np.linalg.norm(est) / (np.linalg.norm(g) / sd)
    assert 1 / 1.5 < ratio < 1.5, ratio


# ---------------------------------------------------------------- calibration of the test itself
def test_mean_test_rejection_rate_matches_nominal_level():
    r"""Run the unbiasedness test on 300 independent seeds at level 0.1.

    Scalar statistic (u . g_hat of reward-to-go): the number of rejections must lie in the
    central 1 - 1e-3 interval of Binomial(300, 0.1) (the calibration test's own false-alarm
    probability is 1e-3, plus the CLT error of 300-episode z-tests, observed < 0.01).
    Vector statistic (all 4 coordinates, Bonferroni): the rate must not exceed the level by more
    than binomial error (Bonferroni is conservative), upper 1 - 1e-3 quantile."""
    mdp = random_mdp(2, 2, gamma=0.9, horizon=3, seed=7)
    pol = TabularSoftmax(2, 2)
    th = np.array([0.3, -0.2, 0.1, 0.4])
    g = policy_gradient(mdp, pol, th)
    u = np.array([1.0, -1.0, 0.5, 2.0])
    M, level = 300, 0.1
    scalar_rej = vector_rej = 0
    for seed in range(M):
        tr = rollout(mdp, pol.probs(th), 300, seed=np.random.SeedSequence([2024, seed]))
        est = E.reward_to_go(tr, pol, th)
        proj = est.samples @ u
        s = E.mean_test(proj.mean(), proj.std(ddof=1) / np.sqrt(len(proj)), u @ g, false_alarm=level)
        scalar_rej += not s.passed
        vector_rej += not E.mean_test(est.mean, est.std_error, g, false_alarm=level).passed
    lo, hi = binom.interval(1 - 1e-3, M, level)
    assert lo <= scalar_rej <= hi, scalar_rej
    assert vector_rej <= binom.ppf(1 - 1e-3, M, level), vector_rej


# ============================================================ 3. exact variances
@pytest.fixture(scope="module")
def enumerated():
    mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=31)
    pol = TabularSoftmax(3, 2)
    th = np.array([0.4, -0.4, 1.2, 0.0, -0.6, 0.3])
    tr, p = E.enumerate_trajectories(mdp, pol.probs(th))
    return mdp, pol, th, tr, p


def _tvar(est, p):
    return float(np.trace(E.exact_covariance(est.samples, p)))


def test_optimal_constant_baseline_minimizes_exact_variance(enumerated):
    r"""tr Var(RTG - b Z) = tr Var(RTG) - 2 b E[RTG.Z] + b^2 E|Z|^2 with Z = sum_t gamma^t psi_t:
    the quadratic is checked at several b, and its minimizer b* = E[RTG.Z]/E|Z|^2 gives a
    variance no larger than b = 0 (minimizing a convex quadratic; cf. Greensmith, Bartlett & Baxter 2004)."""
    mdp, pol, th, tr, p = enumerated
    rtg = E.reward_to_go(tr, pol, th).samples
    Z = E.advantage(tr, pol, th, np.ones((mdp.n_states, mdp.n_actions))).samples  # sum_t gamma^t psi_t
    cross, zz = p @ np.sum(rtg * Z, axis=1), p @ np.sum(Z * Z, axis=1)
    v0 = _tvar(E.reward_to_go(tr, pol, th), p)
    for b in (-2.0, 0.7, 3.0):
        vb = _tvar(E.constant_baseline(tr, pol, th, b), p)
        assert abs(vb - (v0 - 2 * b * cross + b * b * zz)) < 1e-10 * max(1.0, v0)
    b_star = cross / zz
    assert _tvar(E.constant_baseline(tr, pol, th, b_star), p) <= v0 + 1e-12


def test_variance_claims_on_this_instance(enumerated):
    """Computed, not asserted: on this instance (exact enumeration) reward-to-go has lower variance
    than REINFORCE, the V baseline lower than none, and GAE's lambda trades bias for variance
    (V slightly wrong: bias decreases to 0 as lambda -> 1 while the variance increases).
    These orderings are typical, not theorems; the test pins them for this instance."""
    mdp, pol, th, tr, p = enumerated
    ev = evaluate(mdp, pol.probs(th))
    g = policy_gradient(mdp, pol, th)
    v_rf = _tvar(E.reinforce(tr, pol, th), p)
    v_rtg = _tvar(E.reward_to_go(tr, pol, th), p)
    v_base = _tvar(E.state_baseline(tr, pol, th, ev.V), p)
    assert v_rtg < v_rf and v_base < v_rtg
    V_bad = ev.V + 0.3 * np.random.default_rng(0).standard_normal(ev.V.shape)
    lams = [0.0, 0.5, 0.9, 1.0]
    bias = [np.linalg.norm(E.gae_expected_gradient(mdp, pol, th, V_bad, lam) - g) for lam in lams]
    var = [_tvar(E.gae_gradient(tr, pol, th, V_bad, lam), p) for lam in lams]
    assert all(b1 > b2 for b1, b2 in zip(bias, bias[1:])) and bias[-1] < 1e-12
    assert all(v1 < v2 for v1, v2 in zip(var, var[1:]))


def test_sampled_variance_matches_exact_variance(enumerated):
    r"""Sample variance of u . g_hat (REINFORCE) from 40 000 episodes vs the exact variance;
    the standard error of a sample variance is sqrt((mu_4 - sigma^4)/N) with the exact fourth
    central moment. z-test, false alarm 1e-4."""
    mdp, pol, th, tr, p = enumerated
    u = np.array([1.0, 0.0, -1.0, 2.0, 0.5, 0.0])
    x = E.reinforce(tr, pol, th).samples @ u
    mu = p @ x
    var, mu4 = p @ (x - mu) ** 2, p @ (x - mu) ** 4
    n = 40_000
    y = E.reinforce(rollout(mdp, pol.probs(th), n, seed=107), pol, th).samples @ u
    z = (y.var(ddof=1) - var) / np.sqrt((mu4 - var**2) / n)
    assert abs(z) < norm.isf(ALPHA / 2), z


# ============================================================ arrays: gae, n-step, TD
@settings(max_examples=30, deadline=None)
@given(st.integers(0, 2**32 - 1), st.floats(0, 1), st.floats(0, 1))
def test_gae_matches_its_definition_as_a_sum(seed, gamma, lam):
    r"""gae = sum_l (gamma lam)^l delta_{t+l}, the sum cut after a terminated step (rel 1e-12)."""
    rng = np.random.default_rng(seed)
    N, T = 3, 6
    r, v = rng.normal(size=(N, T)), rng.normal(size=(N, T + 1))
    done = rng.random((N, T)) < 0.3
    delta = E.td_errors(r, v, gamma, terminated=done)
    want = np.zeros((N, T))
    for n in range(N):
        for t in range(T):
            for k in range(t, T):
                want[n, t] += (gamma * lam) ** (k - t) * delta[n, k]
                if done[n, k]:
                    break
    assert rel(E.gae(r, v, gamma, lam, terminated=done), want) < 1e-12
    # n-step returns with n >= T: the Monte Carlo return, = gae(lam = 1) + V
    assert rel(E.n_step_returns(r, v, gamma, T, terminated=done), E.gae(r, v, gamma, 1.0, terminated=done) + v[:, :-1]) < 1e-12


def test_n_step_returns_by_hand():
    r = np.array([[1.0, 2.0, 3.0]])
    v = np.array([[10.0, 20.0, 30.0, 40.0]])
    g = 0.5
    np.testing.assert_allclose(E.n_step_returns(r, v, g, 2), [[1 + 0.5 * 2 + 0.25 * 30, 2 + 0.5 * 3 + 0.25 * 40, 3 + 0.5 * 40]])
    done = np.array([[False, True, False]])
    np.testing.assert_allclose(E.n_step_returns(r, v, g, 2, terminated=done), [[1 + 0.5 * 2, 2.0, 3 + 0.5 * 40]])


def test_streaming_mean_equals_one_shot():
    pi = POL.probs(TH)
    one = E.reward_to_go(rollout(FIN, pi, 5000, seed=9, chunk_size=700), POL, TH)
    st_ = E.streaming_mean(E.reward_to_go, rollout_chunks(FIN, pi, 5000, seed=9, chunk_size=700), POL, TH)
    assert st_.n == 5000
    np.testing.assert_allclose(st_.mean, one.mean, rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(st_.std_error, one.std_error, rtol=1e-10)


# ============================================================ bad input
def test_estimators_bad_input(finite_sample, geometric_sample):
    tr = finite_sample
    with pytest.raises(ValueError, match="policy is for"):
        E.reinforce(tr, TabularSoftmax(2, 2), np.zeros(4))
    with pytest.raises(ValueError, match="theta must have length"):
        E.reinforce(tr, POL, np.zeros(5))
    with pytest.raises(TypeError, match="trajs"):
        E.reinforce(tr.states, POL, TH)
    with pytest.raises(ValueError, match=r"V must have shape"):
        E.gae_gradient(tr, POL, TH, np.zeros(4), 0.5)
    with pytest.raises(ValueError, match=r"A must have shape"):
        E.advantage(tr, POL, TH, np.zeros((3, 3)))
    with pytest.raises(ValueError, match="lam"):
        E.gae_gradient(tr, POL, TH, np.zeros(3), 1.5)
    with pytest.raises(ValueError, match="b must be"):
        E.constant_baseline(tr, POL, TH, np.nan)
    with pytest.raises(ValueError, match="trajectory Fisher needs a fixed horizon"):
        E.trajectory_fisher_estimate(geometric_sample, POL, TH)
    with pytest.raises(ValueError, match="same sampling setup"):
        E.learned_baseline(geometric_sample, tr, POL, TH)
    r = np.zeros((2, 3))
    with pytest.raises(ValueError, match=r"values must have shape \(N, T\+1\)"):
        E.gae(r, np.zeros((2, 3)), 0.9, 0.5)
    with pytest.raises(TypeError, match="terminated must be a boolean"):
        E.gae(r, np.zeros((2, 4)), 0.9, 0.5, terminated=np.zeros((2, 3)))
    with pytest.raises(ValueError, match="terminated must have shape"):
        E.gae(r, np.zeros((2, 4)), 0.9, 0.5, terminated=np.zeros((3, 3), bool))
    with pytest.raises(ValueError, match="gamma is 1.5"):
        E.gae(r, np.zeros((2, 4)), 1.5, 0.5)
    with pytest.raises(ValueError, match="n must be a positive integer"):
        E.n_step_returns(r, np.zeros((2, 4)), 0.9, 0)
    with pytest.raises(ValueError, match="horizon is None"):
        E.enumerate_trajectories(DISC, POL.probs(TH))
    with pytest.raises(ValueError, match="advantages must have shape"):
        E.normalized_advantage(tr, POL, TH, np.zeros((2, 2)))
