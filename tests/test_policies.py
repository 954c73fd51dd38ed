"""Softmax parametrizations: probabilities, scores (vs complex step), stability for large theta."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
import scipy.special
from scipy.special import logsumexp

from pgexact import LinearSoftmax, TabularSoftmax
from pgexact.policies import as_probabilities, deterministic, log_softmax_rows, softmax_rows


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


# ----------------------------------------------------------------------------- extreme logits
def mp_softmax_row(z, dps=60):
    """Probabilities and log-probabilities of one row in 60-digit arithmetic (mpmath)."""
    import mpmath

    with mpmath.workdps(dps):
        zs = [mpmath.mpf(float(v)) for v in z]
        m = max(zs)
        total = mpmath.fsum(mpmath.exp(v - m) for v in zs)
        logp = [v - m - mpmath.log(total) for v in zs]
        return [float(mpmath.exp(v)) for v in logp], [float(v) for v in logp]


@pytest.mark.parametrize("scale", [1.0, 1e6, 1e12, 1e15, 1e16, 1e300])
def test_tied_large_logits_probabilities_exact(scale):
    """Tied top logits: rows sum to 1 within a few ulps, probabilities and log-probs exact.

    Reference: mpmath at 60 digits, rounded once to float64, so the tolerance is a few ulps.
    """
    pol = TabularSoftmax(3, 3)
    theta = np.array([scale, scale, 0.0, -scale, 0.5 * scale, 0.5 * scale, scale, -scale, scale])
    pi, logp = pol.probs(theta), pol.log_probs(theta)
    assert np.all(np.abs(pi.sum(axis=1) - 1.0) <= 4 * np.finfo(float).eps)
    for s in range(3):
        p_ref, l_ref = mp_softmax_row(theta[3 * s: 3 * s + 3])
        np.testing.assert_allclose(pi[s], p_ref, rtol=4 * np.finfo(float).eps, atol=0)
        np.testing.assert_allclose(logp[s], l_ref, rtol=4 * np.finfo(float).eps, atol=0)


def test_tied_top_logits_sum_to_one():
    assert TabularSoftmax(1, 3).probs([1e16, 1e16, 0]).sum() == 1.0


@settings(max_examples=100, deadline=None)
@given(
    hnp.arrays(np.float64, st.tuples(st.integers(1, 6), st.integers(1, 6)),
               elements=st.floats(-1e300, 1e300, allow_nan=False, allow_infinity=False)),
    st.integers(0, 2**31),
)
def test_numpy_softmax_matches_scipy(z, seed):
    """The numpy kernel equals scipy.special.softmax (the reference) to a few ulps, with -inf too."""
    mask = np.random.default_rng(seed).random(z.shape) < 0.3
    mask[np.arange(z.shape[0]), np.random.default_rng(seed).integers(0, z.shape[1], z.shape[0])] = False
    z = np.where(mask, -np.inf, z)
    got = softmax_rows(z)
    with np.errstate(invalid="ignore", over="ignore"):
        ref = scipy.special.softmax(z, axis=1)
    np.testing.assert_allclose(got, ref, rtol=8 * np.finfo(float).eps, atol=1e-300)
    assert np.all(np.abs(got.sum(axis=1) - 1.0) <= z.shape[1] * np.finfo(float).eps)
    with np.errstate(divide="ignore"):
        np.testing.assert_allclose(log_softmax_rows(z), scipy.special.log_softmax(z, axis=1), rtol=1e-15, atol=1e-300)


def test_linear_softmax_overflow_names_theta():
    pol = LinearSoftmax(np.full((2, 2, 2), 1e300))
    for method in (pol.probs, pol.log_probs, pol.score):
        with pytest.raises(ValueError, match=r"theta gives a logit z\[0, 0\] = inf .*rescale theta"):
            method(np.array([1e10, 1e10]))
    # 1e310 - 1e310 inside the dot product is not finite: refused, never returned. Whether it comes
    # out nan or +-inf depends on the BLAS kernel (an FMA kernel may round differently), so the
    # message is matched for any non-finite value.
    with pytest.raises(ValueError, match=r"theta gives a logit z\[0, 0\] = (nan|-?inf) "):
        LinearSoftmax(np.array([[[1e300, -1e300]]])).probs(np.array([1e10, 1e10]))


# ----------------------------------------------------------------------------- action masks
MASK = np.array([[True, False, True], [False, True, False]])


@pytest.mark.parametrize(
    "policy",
    [TabularSoftmax(2, 3, action_mask=MASK),
     LinearSoftmax(np.random.default_rng(4).standard_normal((2, 3, 2)), action_mask=MASK)],
)
def test_masked_policy_probabilities_and_scores(policy):
    theta = np.random.default_rng(5).standard_normal(policy.n_params)
    pi = policy.probs(theta)
    assert np.all(pi[~MASK] == 0.0) and np.allclose(pi.sum(axis=1), 1.0, atol=1e-15)
    # feasible entries: the softmax over the feasible logits alone (independent computation)
    z = policy._logits(theta)
    for s in range(2):
        zs = z[s, MASK[s]]
        np.testing.assert_allclose(pi[s, MASK[s]], np.exp(zs - logsumexp(zs)), rtol=1e-14)
    assert np.all(policy.log_probs(theta)[~MASK] == -np.inf)
    # score: complex step of the feasible log-softmax on feasible entries, 0 elsewhere
    S = policy.score(theta)
    cs = np.zeros_like(S)
    for k in range(policy.n_params):
        t = theta.astype(complex)
        t[k] += 1e-30j
        zc = policy._logits(t)
        for s in range(2):
            zs = zc[s, MASK[s]]
            cs[s, MASK[s], k] = (zs - np.log(np.sum(np.exp(zs)))).imag / 1e-30
    np.testing.assert_allclose(S, cs, rtol=1e-12, atol=1e-13)
    w = np.random.default_rng(6).standard_normal((2, 3))
    v = np.random.default_rng(7).standard_normal(policy.n_params)
    np.testing.assert_allclose(policy.score_contract(theta, w), np.einsum("sa,sak->k", w, S), atol=1e-13)
    np.testing.assert_allclose(policy.score_dot(theta, v), S @ v, atol=1e-13)


def test_mask_validation():
    with pytest.raises(ValueError, match=r"action_mask\[1, :\] has no feasible action"):
        TabularSoftmax(2, 2, action_mask=[[True, False], [False, False]])
    with pytest.raises(TypeError, match="action_mask must be a boolean array"):
        TabularSoftmax(2, 2, action_mask=[[1, 0], [0, 1]])
    with pytest.raises(ValueError, match=r"action_mask must have shape \(S, A\)=\(2, 2\)"):
        TabularSoftmax(2, 2, action_mask=[True, False])


# ----------------------------------------------------------------------------- pi as input
def test_deterministic_policy():
    np.testing.assert_array_equal(deterministic(np.array([1, 0, 2]), 3), np.eye(3)[[1, 0, 2]])
    np.testing.assert_array_equal(deterministic([1.0, 0.0], 2), [[0.0, 1.0], [1.0, 0.0]])
    with pytest.raises(ValueError, match=r"actions\[1\] is 3, expected an action in 0..2"):
        deterministic([0, 3], 3)
    with pytest.raises(ValueError, match=r"actions\[0\] is -1"):
        deterministic([-1], 3)
    with pytest.raises(ValueError, match=r"actions\[1\] is 0.5, expected an integer"):
        deterministic([0.0, 0.5], 3)
    with pytest.raises(TypeError, match="actions must be a vector of integers, got booleans"):
        deterministic([True, False], 2)
    with pytest.raises(ValueError, match="1-D vector"):
        deterministic([[0, 1]], 2)
    with pytest.raises(TypeError, match="n_actions must be a positive integer"):
        deterministic([0], 2.0)


def test_as_probabilities_forms_and_errors():
    pol = TabularSoftmax(2, 2)
    theta = np.array([0.0, 1.0, 2.0, -1.0])
    np.testing.assert_array_equal(as_probabilities((pol, theta)), pol.probs(theta))
    np.testing.assert_array_equal(as_probabilities([[0.5, 0.5], [1.0, 0.0]]), [[0.5, 0.5], [1.0, 0.0]])
    with pytest.raises(TypeError, match=r"pi is a TabularSoftmax without parameters: pass pi=\(policy, theta\)"):
        as_probabilities(pol)
    with pytest.raises(TypeError, match=r"pi_new must be a probability matrix .* or a pair \(policy, theta\)"):
        as_probabilities([pol, theta], name="pi_new")
    with pytest.raises(ValueError, match=r"theta in pi=\(policy, theta\) must have length n_params=4"):
        as_probabilities((pol, np.zeros(3)))
    with pytest.raises(ValueError, match=r"policy in pi=\(policy, theta\) is for \(n_states, n_actions\)=\(2, 2\)"):
        as_probabilities((pol, theta), n_states=3, n_actions=2)
    with pytest.raises(ValueError, match=r"pi\[0, 1\] is 0.5, but action 1 is infeasible in state 0"):
        as_probabilities([[0.5, 0.5], [1.0, 0.0]], action_mask=np.array([[True, False], [True, True]]))
    with pytest.raises(ValueError, match=r"pi\[1, :\] sums to 0.9"):
        as_probabilities([[0.5, 0.5], [0.9, 0.0]])


def test_logit_differences_beyond_float64_range_warn_nothing():
    """theta = (1.7e308, -1.7e308): the difference overflows; the probability is still exact (1, 0)."""
    import warnings

    pol = TabularSoftmax(2, 2)
    theta = np.array([1.7e308, -1.7e308, -1.7e308, 1.7e308])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_array_equal(pol.probs(theta), [[1.0, 0.0], [0.0, 1.0]])
        logp = pol.log_probs(theta)
        pol.score(theta)
    assert logp[0, 0] == 0.0 and logp[0, 1] == -np.inf  # -3.4e308 rounds to -inf in float64


@pytest.mark.parametrize(
    ("z", "error", "match"),
    [
        (None, TypeError, r"^z must be an array of real numbers, got NoneType"),
        (np.ones(6), ValueError, r"^z must have 2 dimension\(s\), got shape \(6,\)"),
        (np.empty((0, 2)), ValueError, r"^z must have at least one row"),
        ([[0.0, np.nan]], ValueError, r"^z\[0, 1\] is nan, expected a finite logit or -inf"),
        ([[0.0, np.inf]], ValueError, r"^z\[0, 1\] is inf"),
        ([[0.0, 1.0], [-np.inf, -np.inf]], ValueError, r"^z\[1, :\] is all -inf"),
    ],
)
def test_row_softmax_kernels_refuse_malformed_logits(z, error, match) -> None:
    for fn in (softmax_rows, log_softmax_rows):
        with pytest.raises(error, match=match):
            fn(z)


def test_row_softmax_kernels_accept_minus_inf_and_extreme_logits() -> None:
    z = np.array([[1e300, -1e300, -np.inf], [1e16, 1e16, 0.0]])
    np.testing.assert_array_equal(softmax_rows(z), [[1.0, 0.0, 0.0], [0.5, 0.5, 0.0]])
    np.testing.assert_array_equal(log_softmax_rows(z)[:, 0], [0.0, -np.log(2.0)])
    assert log_softmax_rows(z)[0, 2] == -np.inf


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"name": None}, TypeError, r"^name must be a str"),
        ({"atol": -1}, ValueError, r"^atol must be a finite number >= 0, got -1"),
        ({"atol": np.nan}, ValueError, r"^atol must be a finite number >= 0, got nan"),
        ({"atol": "x"}, TypeError, r"^atol must be a finite number >= 0"),
        ({"n_states": np.array([])}, TypeError, r"^n_states must be a positive integer"),
        ({"n_actions": 0}, ValueError, r"^n_actions must be a positive integer, got 0"),
        ({"action_mask": "x"}, TypeError, r"^action_mask must be a boolean numpy array"),
        ({"action_mask": np.ones((2, 2), dtype=bool)}, ValueError, r"^action_mask must have the shape \(1, 2\) of pi"),
    ],
)
def test_as_probabilities_refuses_malformed_options(kwargs, error, match) -> None:
    from pgexact.models import validate_policy_matrix

    with pytest.raises(error, match=match):
        as_probabilities([[0.5, 0.5]], **kwargs)
    kwargs = {"n_states": 1, "n_actions": 2, **kwargs}
    with pytest.raises(error, match=match):
        validate_policy_matrix([[0.5, 0.5]], **kwargs)


def test_deterministic_refuses_a_matrix_beyond_the_memory_limit() -> None:
    with pytest.raises(ValueError, match=r"^deterministic with 3 states and n_actions=1000000000000 would need 21.8 TB"):
        deterministic([0, 1, 1], 10**12)
