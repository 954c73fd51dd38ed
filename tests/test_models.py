"""FiniteMDP construction, validation and the builders."""

import numpy as np
import pytest
import scipy.sparse

from pgexact import FiniteMDP
from pgexact.mdps import bandit, chain, gridworld, random_mdp, short_corridor


def two_state():
    P = np.array([[[0.5, 0.5], [1.0, 0.0]], [[0.0, 1.0], [0.0, 1.0]]])
    return P, np.array([[1.0, 0.0], [0.0, 0.0]]), np.array([1.0, 0.0])


def test_valid_mdp_is_frozen_and_read_only():
    P, r, mu0 = two_state()
    mdp = FiniteMDP(P, r, mu0, 0.9)
    assert (mdp.n_states, mdp.n_actions, mdp.horizon) == (2, 2, None)
    with pytest.raises(Exception):
        mdp.gamma = 0.5  # frozen dataclass
    with pytest.raises(ValueError):
        mdp.P[0, 0, 0] = 0.3  # read-only array
    P[0, 0, 0] = 0.25  # the caller's array is copied, not aliased
    assert mdp.P[0, 0, 0] == 0.5
    assert mdp.terminal.tolist() == [False, True]


def test_next_state_reward_reduced_to_expectation():
    """r(s, a) = sum_s' P(s'|s, a) r(s, a, s'), on rows of P that are not uniform (where a plain mean over s'
    would give the same number)."""
    P = np.array([[[0.25, 0.75], [0.5, 0.5]], [[0.9, 0.1], [0.0, 1.0]]])
    r3 = np.zeros((2, 2, 2))
    r3[0, 0, 1] = 4.0
    r3[1, 0] = [1.0, -2.0]
    mdp = FiniteMDP(P, r3, np.array([0.5, 0.5]), 0.9)
    assert mdp.r[0, 0] == pytest.approx(3.0, abs=1e-15)  # 0.75 * 4
    assert mdp.r[1, 0] == pytest.approx(0.7, abs=1e-15)  # 0.9 * 1 - 0.1 * 2
    assert mdp.r[0, 1] == 0.0 and mdp.r[1, 1] == 0.0


@pytest.mark.parametrize(
    "kwargs, message",
    [
        (dict(P=np.ones((2, 2, 2))), r"P\[0, 0, :\] sums to 2, expected 1 \(tolerance 1e-09\)"),
        (dict(P=np.full((2, 2, 3), 1 / 3)), r"P must have shape \(S, A, S\)"),
        (dict(r=np.array([[1.0, np.nan], [0.0, 0.0]])), r"r\[0, 1\] is nan, expected a finite number"),
        (dict(r=np.array([[1.0, 0.0], [np.inf, 0.0]])), r"r\[1, 0\] is inf"),
        (dict(r=np.zeros(3)), r"r must have shape \(S, A\)=\(2, 2\)"),
        (dict(mu0=np.array([0.5, 0.4])), r"mu0 sums to 0.9, expected 1"),
        (dict(mu0=np.array([1.5, -0.5])), r"mu0\[1\] is -0.5, expected >= 0"),
        (dict(gamma=1.0), r"gamma is 1.0, expected 0 <= gamma < 1"),
        (dict(gamma=-0.1, horizon=3), r"gamma is -0.1, expected 0 <= gamma <= 1"),
        (dict(horizon=0), r"horizon must be a positive integer, got 0"),
    ],
)
def test_bad_input_messages(kwargs, message):
    P, r, mu0 = two_state()
    args = dict(P=P, r=r, mu0=mu0, gamma=0.9)
    args.update(kwargs)
    with pytest.raises(ValueError, match=message):
        FiniteMDP(**args)


@pytest.mark.parametrize("bad", [2.5, "3", True])
def test_horizon_type(bad):
    P, r, mu0 = two_state()
    with pytest.raises(TypeError, match="horizon must be a positive integer"):
        FiniteMDP(P, r, mu0, 0.9, horizon=bad)


def test_negative_transition_named():
    P, r, mu0 = two_state()
    P[1, 0] = [-0.25, 1.25]
    with pytest.raises(ValueError, match=r"P\[1, 0, 0\] is -0.25, expected >= 0"):
        FiniteMDP(P, r, mu0, 0.9)


def test_builders_are_valid_and_deterministic():
    a = random_mdp(5, 3, gamma=0.9, seed=7)
    b = random_mdp(5, 3, gamma=0.9, seed=7)
    assert np.array_equal(a.P, b.P) and np.array_equal(a.r, b.r)
    assert not np.array_equal(a.P, random_mdp(5, 3, gamma=0.9, seed=8).P)
    g = gridworld(3, 4, gamma=0.9, slip=0.2)
    assert g.n_states == 12 and g.n_actions == 4
    assert g.terminal.tolist() == [False] * 11 + [True]
    # chosen move has probability 1 - slip + slip/4 (from the interior cell (1, 1), up -> (0, 1))
    assert g.P[5, 0, 1] == pytest.approx(0.8 + 0.05, abs=1e-15)
    c = chain(4, gamma=0.9, slip=0.1)
    assert c.P[0, 1, 1] == pytest.approx(0.9)
    bd = bandit([1.0, 0.0])
    assert (bd.horizon, bd.gamma) == (1, 1.0)
    sc = short_corridor()
    assert sc.mdp.terminal.tolist() == [False, False, False, True]


def test_builder_bad_input():
    with pytest.raises(ValueError, match="slip must be a probability"):
        gridworld(2, 2, gamma=0.9, slip=1.5)
    with pytest.raises(ValueError, match="goal must be a cell inside"):
        gridworld(2, 2, gamma=0.9, goal=(2, 0))
    with pytest.raises(TypeError, match="seed must be"):
        random_mdp(3, 2, gamma=0.9, seed=None)
    with pytest.raises(ValueError, match="means must have at least one arm"):
        bandit([])


def test_short_corridor_features_and_published_optimum_region():
    """The corridor's features build the book's policy: J(p) = (2p - 4) / (p (1 - p)) (S&B Ex. 13.1)."""
    from pgexact import LinearSoftmax, evaluate

    sc = short_corridor()
    assert sc.features.shape == (4, 2, 2) and not sc.features.flags.writeable
    pol = LinearSoftmax(sc.features)
    for p in (0.3, 0.59, 0.8):
        J = evaluate(sc.mdp, pol.probs(sc.theta_for(p))).J
        assert abs(J - (2 * p - 4) / (p * (1 - p))) < 1e-9


def test_action_mask_validation_and_storage():
    base = random_mdp(3, 2, gamma=0.9, seed=0)
    mask = np.array([[True, False], [True, True], [False, True]])
    m = FiniteMDP(base.P, base.r, base.mu0, 0.9, action_mask=mask)
    assert np.array_equal(m.action_mask, mask) and not m.action_mask.flags.writeable
    assert np.all(m.r[~mask] == 0.0) and np.array_equal(m.r[mask], base.r[mask])
    with pytest.raises(TypeError, match="action_mask must be a boolean array"):
        FiniteMDP(base.P, base.r, base.mu0, 0.9, action_mask=mask.astype(int))
    with pytest.raises(ValueError, match=r"action_mask must have shape \(S, A\)=\(3, 2\), got \(2, 3\)"):
        FiniteMDP(base.P, base.r, base.mu0, 0.9, action_mask=mask.T)
    with pytest.raises(ValueError, match=r"action_mask\[2, :\] has no feasible action"):
        FiniteMDP(base.P, base.r, base.mu0, 0.9, action_mask=np.array([[True, True], [True, False], [False, False]]))
    with pytest.raises(ValueError, match=r"r\[0, 1\] is nan"):
        FiniteMDP(base.P, np.where(mask, base.r, np.nan), base.mu0, 0.9, action_mask=mask)  # only -inf is a marker
    # sparse P with a mask
    sp = FiniteMDP(scipy.sparse.csr_array(base.P.reshape(6, 3)), np.where(mask, base.r, -np.inf), base.mu0, 0.9,
                   action_mask=mask)
    assert sp.is_sparse and np.array_equal(sp.r, m.r) and np.array_equal(sp.action_mask, mask)
    # random_mdp passes the mask through and draws the same numbers
    rm = random_mdp(3, 2, gamma=0.9, seed=0, action_mask=mask)
    assert np.array_equal(rm.P, base.P) and np.array_equal(rm.action_mask, mask)


def test_terminal_states_ignore_infeasible_actions():
    """A state whose feasible actions are zero-reward self-loops is terminal, whatever its infeasible rows."""
    P = np.zeros((2, 2, 2))
    P[0, :, 1] = 1.0
    P[1, 0, 1] = 1.0  # feasible: self-loop
    P[1, 1, 0] = 1.0  # infeasible: leaves the state
    r = np.array([[1.0, 1.0], [0.0, 5.0]])
    mask = np.array([[True, True], [True, False]])
    assert FiniteMDP(P, r, [1.0, 0.0], 0.9, action_mask=mask).terminal.tolist() == [False, True]
    assert FiniteMDP(P, r, [1.0, 0.0], 0.9).terminal.tolist() == [False, False]


def test_from_gymnasium_is_not_a_model_method():
    """Models know no adapters: the gymnasium reader lives in pgexact.gym only."""
    assert not hasattr(FiniteMDP, "from_gymnasium")


def test_rewards_beyond_float64_closed_forms_are_refused():
    base = random_mdp(3, 2, gamma=0.9, seed=0)
    with pytest.raises(ValueError, match=r"r is too large for float64 closed forms: max \|r\| = .*rescale r"):
        FiniteMDP(base.P, base.r * 1e300, base.mu0, 0.9)
    with pytest.raises(ValueError, match=r"horizon factor K = 1e\+06 \(1/\(1 - gamma\)\)"):
        FiniteMDP(base.P, base.r * 1e290, base.mu0, 0.999999)
    with pytest.raises(ValueError, match=r"K = 1e\+10 \(H\)"):
        FiniteMDP(base.P, base.r * 1e290, base.mu0, 1.0, horizon=10**10)
    import warnings

    from pgexact import TabularSoftmax
    from pgexact.exact import value_and_gradient

    big = FiniteMDP(base.P, base.r * 1e290, base.mu0, 0.9)  # accepted: values and gradients finite
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        J, g = value_and_gradient(big, TabularSoftmax(3, 2), np.zeros(6))
    J1, g1 = value_and_gradient(base, TabularSoftmax(3, 2), np.zeros(6))
    assert abs(J / 1e290 - J1) <= 1e-14 * abs(J1) and np.allclose(g / 1e290, g1, rtol=1e-14, atol=0)


@pytest.mark.parametrize(
    ("build", "error", "match"),
    [
        (lambda: chain(3, gamma=0.9, slip=None), TypeError, r"^slip must be a probability in \[0, 1\], got None"),
        (lambda: chain(3, gamma=0.9, slip="x"), TypeError, r"^slip must be a probability"),
        (lambda: chain(3, gamma=0.9, slip=True), TypeError, r"^slip must be a probability"),
        (lambda: chain(3, gamma=0.9, small_reward=None), TypeError, r"^small_reward must be a finite real number"),
        (lambda: chain(3, gamma=0.9, large_reward=np.nan), ValueError, r"^large_reward must be a finite real number, got nan"),
        (lambda: chain(10**6, gamma=0.9), ValueError, r"^chain with n_states=1000000 would need 14.6 TB"),
        (lambda: gridworld(2, 2, gamma=0.9, sparse=np.array([])), TypeError, r"^sparse must be True or False"),
        (lambda: gridworld(2, 2, gamma=0.9, goal=None, start=None), TypeError, r"^start must be a pair of integers"),
        (lambda: gridworld(2, 2, gamma=0.9, goal=(0.5, 1)), TypeError, r"^goal must be a pair of integers"),
        (lambda: gridworld(2, 2, gamma=0.9, goal=(2, 0)), ValueError, r"^goal must be a cell inside the 2x2 grid"),
        (lambda: gridworld(2, 2, gamma=0.9, step_reward=1e308, goal_reward=1e308), ValueError,
         r"^step_reward \+ goal_reward must be a finite float64"),
        (lambda: gridworld(2, 2, gamma=0.9, goal_reward=None), TypeError, r"^goal_reward must be a finite real number"),
        (lambda: gridworld(1000, 1000, gamma=0.9), ValueError, r"^gridworld with height=1000, width=1000 would need .* TB .*: pass sparse=True"),
        (lambda: gridworld(10**6, 10**6, gamma=0.9, sparse=True), ValueError, r"^gridworld with height=1000000, width=1000000, sparse=True would need"),
        (lambda: random_mdp(3, 2, gamma=0.9, seed=0, concentration=None), TypeError, r"^concentration must be a positive finite number"),
        (lambda: random_mdp(3, 2, gamma=0.9, seed=0, concentration=np.array([])), TypeError, r"^concentration must be"),
        (lambda: random_mdp(3, 2, gamma=0.9, seed=0, concentration=1e308), ValueError, r"^concentration must be at most 1e300"),
        (lambda: random_mdp(10**12, 2, gamma=0.9, seed=0), ValueError, r"^random_mdp with n_states=1000000000000, n_actions=2 would need"),
    ],
)
def test_builders_refuse_malformed_arguments(build, error, match) -> None:
    with pytest.raises(error, match=match):
        build()


def test_linear_operators_check_their_arguments() -> None:
    for mdp in (random_mdp(3, 2, gamma=0.9, seed=0), gridworld(2, 2, gamma=0.9, sparse=True)):
        S, A = mdp.n_states, mdp.n_actions
        pi = np.full((S, A), 1.0 / A)
        for method in (mdp.policy_transition, mdp.policy_reward):
            with pytest.raises(TypeError, match=r"^pi must be a probability matrix"):
                method(None)
            with pytest.raises(ValueError, match=rf"^pi must have shape \({S}, {A}\)"):
                method(np.full((S + 1, A), 1.0 / A))
            with pytest.raises(ValueError, match=r"^pi\[0, 0\] is nan"):
                method(np.full((S, A), np.nan))
            with pytest.raises(ValueError, match=r"^pi\[0, :\] sums to 2"):
                method(2 * pi)
        np.testing.assert_allclose(mdp.policy_reward(pi), mdp.r.mean(axis=1), rtol=1e-15)
        for bad, error, match in [
            (None, TypeError, r"^values must be an array of real numbers"),
            ("x", TypeError, r"^values must be an array of real numbers"),
            ([[1, 2], [3]], TypeError, r"^values must be an array of real numbers"),
            ([], ValueError, r"^values must have shape \(S,\) or \(S, k\)"),
            (np.ones((S, 2, 2)), ValueError, r"^values must have shape"),
            (np.full(S, np.nan), ValueError, r"^values\[0\] is nan"),
        ]:
            with pytest.raises(error, match=match):
                mdp.expected_next(bad)
        assert mdp.expected_next(list(range(S))).shape == (S, A)


def test_short_corridor_theta_for_checks_p() -> None:
    with pytest.raises(TypeError, match=r"^p must be a probability in \(0, 1\), got array"):
        short_corridor().theta_for(np.full(2, 0.5))
    with pytest.raises(ValueError, match=r"^p must be in \(0, 1\), got 1.0"):
        short_corridor().theta_for(1.0)
