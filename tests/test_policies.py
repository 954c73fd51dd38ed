"""Softmax parametrizations: probabilities, scores (vs complex step), stability for large theta."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from scipy.special import logsumexp

from pgexact import LinearSoftmax, TabularSoftmax


def complex_step_score(policy, theta, h=1e-30):
    """d log pi / d theta_k by the complex step: Im(log_softmax(z(theta + i h e_k))) / h.

    Exact to rounding (no subtractive cancellation), independent of policy.score.
    """
    n = policy.n_params
    out = np.empty((policy.n_states, policy.n_actions, n))
    for k in range(n):
        t = theta.astype(complex)
        t[k] += 1j * h
        z = policy._logits(t)
        out[:, :, k] = (z - logsumexp(z, axis=1, keepdims=True)).imag / h
    return out


policies = st.one_of(
    st.builds(TabularSoftmax, st.integers(1, 4), st.integers(1, 4)),
    st.builds(
        lambda S, A, d, seed: LinearSoftmax(np.random.default_rng(seed).standard_normal((S, A, d))),
        st.integers(1, 4), st.integers(1, 4), st.integers(1, 3), st.integers(0, 1000),
    ),
)


@settings(max_examples=60, deadline=None)
@given(policies, st.integers(0, 2**31), st.sampled_from([0.1, 1.0, 10.0]))
def test_score_matches_complex_step(policy, seed, scale):
    theta = scale * np.random.default_rng(seed).standard_normal(policy.n_params)
    np.testing.assert_allclose(policy.score(theta), complex_step_score(policy, theta), rtol=1e-12, atol=1e-13)
    # score_contract and score_dot are contractions of the same tensor
    w = np.random.default_rng(seed + 1).standard_normal((policy.n_states, policy.n_actions))
    v = np.random.default_rng(seed + 2).standard_normal(policy.n_params)
    S = policy.score(theta)
    np.testing.assert_allclose(policy.score_contract(theta, w), np.einsum("sa,sak->k", w, S), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(policy.score_dot(theta, v), S @ v, rtol=1e-12, atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(policies, st.integers(0, 2**31), st.sampled_from([1e2, 1e3, 1e4]))
def test_large_theta_is_finite(policy, seed, scale):
    theta = scale * np.random.default_rng(seed).standard_normal(policy.n_params)
    pi = policy.probs(theta)
    assert np.all(np.isfinite(pi)) and np.all(np.isfinite(policy.score(theta)))
    assert np.all(np.isfinite(policy.log_probs(theta)))  # log-probs stay finite (no log 0)
    np.testing.assert_allclose(pi.sum(axis=1), 1.0, atol=1e-15 * policy.n_actions)


def test_tabular_score_closed_form():
    pol = TabularSoftmax(2, 3)
    theta = np.array([0.0, 1.0, 2.0, -1.0, 0.0, 1.0])
    pi = pol.probs(theta)
    s = pol.score(theta)
    # d log pi(a|s) / d theta_{s', b} = 1[s = s'] (1[a = b] - pi(b|s))  (Agarwal et al. 2021, sec. 4)
    for st_ in range(2):
        for a in range(3):
            expected = np.zeros(6)
            expected[3 * st_: 3 * st_ + 3] = -pi[st_]
            expected[3 * st_ + a] += 1.0
            np.testing.assert_allclose(s[st_, a], expected, atol=1e-15)


def test_theta_validation_messages():
    pol = TabularSoftmax(2, 2)
    with pytest.raises(ValueError, match="theta must have length n_params=4, got 3"):
        pol.probs(np.zeros(3))
    with pytest.raises(ValueError, match=r"theta must be a flat \(1-D\) vector"):
        pol.probs(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"theta\[1\] is nan"):
        pol.probs([0.0, np.nan, 0.0, 0.0])
    with pytest.raises(TypeError, match="theta must be an array of real numbers"):
        pol.probs(np.zeros(4, dtype=complex))
    with pytest.raises(ValueError, match=r"features must have 3 dimension\(s\)"):
        LinearSoftmax(np.zeros((2, 2)))
    with pytest.raises(ValueError, match=r"features\[0, 0, 0\] is inf"):
        LinearSoftmax(np.full((1, 1, 1), np.inf))
    with pytest.raises(TypeError, match="n_states must be a positive integer"):
        TabularSoftmax(2.0, 2)
