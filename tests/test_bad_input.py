"""Malformed input at every public constructor and function: only ValueError/TypeError, never a silent NaN."""

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import pgexact as pg
from pgexact import exact, mdps

GOOD_MDP = mdps.random_mdp(3, 2, gamma=0.9, seed=0)
GOOD_FINITE = mdps.random_mdp(3, 2, gamma=1.0, horizon=3, seed=0)
TAB = pg.TabularSoftmax(3, 2)
LIN = pg.LinearSoftmax(np.random.default_rng(0).standard_normal((3, 2, 2)))
PI = np.full((3, 2), 0.5)
THETA = np.zeros(6)

junk = st.one_of(
    st.none(),
    st.text(max_size=3),
    st.booleans(),
    st.integers(-3, 3),
    st.floats(allow_nan=True, allow_infinity=True),
    st.lists(st.floats(allow_nan=True, allow_infinity=True), max_size=4),
    st.lists(st.lists(st.integers(-1, 2), max_size=3), max_size=3),  # ragged
    hnp.arrays(
        np.float64,
        hnp.array_shapes(min_dims=0, max_dims=4, max_side=4),
        elements=st.floats(-2, 2) | st.sampled_from([np.nan, np.inf, -1.0, 0.0]),
    ),
    hnp.arrays(np.complex128, st.sampled_from([(6,), (3, 2)])),
    hnp.arrays(np.bool_, st.sampled_from([(3, 2), (3,), (2, 2)])),
    st.just(TAB),  # a bare policy object
    st.just((TAB, THETA)),  # a (policy, theta) pair: valid wherever pi is expected
    st.just((TAB, np.full(6, 1e300))),
    st.just(np.array([TAB, THETA], dtype=object)),
)

# Each entry: a function of one malformed argument; the other arguments are valid.
CALLS = {
    "FiniteMDP.P": lambda x: pg.FiniteMDP(x, GOOD_MDP.r, GOOD_MDP.mu0, 0.9),
    "FiniteMDP.r": lambda x: pg.FiniteMDP(GOOD_MDP.P, x, GOOD_MDP.mu0, 0.9),
    "FiniteMDP.mu0": lambda x: pg.FiniteMDP(GOOD_MDP.P, GOOD_MDP.r, x, 0.9),
    "FiniteMDP.gamma": lambda x: pg.FiniteMDP(GOOD_MDP.P, GOOD_MDP.r, GOOD_MDP.mu0, x),
    "FiniteMDP.horizon": lambda x: pg.FiniteMDP(GOOD_MDP.P, GOOD_MDP.r, GOOD_MDP.mu0, 0.9, x),
    "TabularSoftmax": lambda x: pg.TabularSoftmax(x, 2),
    "LinearSoftmax": lambda x: pg.LinearSoftmax(x),
    "probs.theta": lambda x: TAB.probs(x),
    "score.theta": lambda x: LIN.score(x),
    "evaluate.mdp": lambda x: pg.evaluate(x, PI),
    "evaluate.pi": lambda x: pg.evaluate(GOOD_MDP, x),
    "evaluate_finite.pi": lambda x: pg.evaluate(GOOD_FINITE, x),
    "state_marginals.T": lambda x: pg.state_marginals(GOOD_MDP, PI, x),
    "occupancy.pi": lambda x: pg.occupancy(GOOD_MDP, x),
    "stationary_distribution.pi": lambda x: pg.stationary_distribution(GOOD_MDP, x),
    "policy_gradient.theta": lambda x: pg.policy_gradient(GOOD_MDP, TAB, x),
    "policy_gradient.policy": lambda x: pg.policy_gradient(GOOD_MDP, x, THETA),
    "policy_gradient_forms.theta": lambda x: exact.policy_gradient_forms(GOOD_FINITE, TAB, x),
    "fisher.theta": lambda x: pg.fisher(GOOD_MDP, LIN, x),
    "trajectory_fisher.horizon": lambda x: pg.trajectory_fisher(GOOD_MDP, TAB, THETA, x),
    "fisher_vector_product.v": lambda x: pg.fisher_vector_product(GOOD_MDP, TAB, THETA, x),
    "natural_gradient.theta": lambda x: pg.natural_gradient(GOOD_MDP, TAB, x),
    "kl_per_state.q": lambda x: pg.kl_per_state(PI, x),
    "kl_expected.weights": lambda x: pg.kl_expected(PI, PI, x),
    "kl_max.p": lambda x: pg.kl_max(x, PI),
    "kl_expected_gradient.theta_q": lambda x: exact.kl_expected_gradient(TAB, THETA, x, np.full(3, 1 / 3)),
    "surrogate.pi_new": lambda x: pg.surrogate(GOOD_MDP, PI, x),
    "surrogate_gradient.theta_new": lambda x: pg.surrogate_gradient(GOOD_MDP, TAB, THETA, x),
    "performance_difference.pi_old": lambda x: pg.performance_difference(GOOD_MDP, x, PI),
    "random_mdp.n_states": lambda x: mdps.random_mdp(x, 2, gamma=0.9, seed=0),
    "random_mdp.seed": lambda x: mdps.random_mdp(2, 2, gamma=0.9, seed=x),
    "gridworld.slip": lambda x: mdps.gridworld(2, 2, gamma=0.9, slip=x),
    "bandit.means": lambda x: mdps.bandit(x),
    "FiniteMDP.action_mask": lambda x: pg.FiniteMDP(GOOD_MDP.P, GOOD_MDP.r, GOOD_MDP.mu0, 0.9, action_mask=x),
    "TabularSoftmax.action_mask": lambda x: pg.TabularSoftmax(3, 2, action_mask=x),
    "LinearSoftmax.action_mask": lambda x: pg.LinearSoftmax(LIN.features, action_mask=x),
    "deterministic.actions": lambda x: pg.policies.deterministic(x, 2),
    "deterministic.n_actions": lambda x: pg.policies.deterministic([0, 1, 0], x),
    "as_probabilities.pi": lambda x: pg.policies.as_probabilities(x),
    "kl_max.q": lambda x: pg.kl_max(PI, x),
    "tv_max.p": lambda x: exact.tv_max(x, PI),
    "linear_probs.theta": lambda x: LIN.probs(x),
    "value_and_gradient.theta": lambda x: exact.value_and_gradient(GOOD_MDP, LIN, x),
}


def _finite(result):
    """Every float in a result (arrays, dataclass fields, tuples) is free of NaN."""
    if isinstance(result, np.ndarray):
        return not np.isnan(result).any() if result.dtype.kind == "f" else True
    if isinstance(result, float):
        return not np.isnan(result)
    if isinstance(result, tuple):
        return all(_finite(r) for r in result)
    if hasattr(result, "__dataclass_fields__"):
        return all(_finite(getattr(result, f)) for f in result.__dataclass_fields__)
    return True


@settings(max_examples=300, deadline=None)
@given(st.sampled_from(sorted(CALLS)), junk)
def test_malformed_input_raises_value_or_type_error(name, value):
    try:
        result = CALLS[name](value)
    except (ValueError, TypeError) as exc:
        assert str(exc), f"{name}: empty error message"
        return
    assert _finite(result), f"{name}({value!r}) returned NaN instead of raising"


def test_messages_name_argument_and_first_offending_index():
    bad = PI.copy()
    bad[2] = [0.7, 0.2]
    try:
        pg.evaluate(GOOD_MDP, bad)
    except ValueError as exc:
        assert "pi[2, :] sums to 0.9, expected 1 (tolerance 1e-09)" in str(exc)
    else:
        raise AssertionError("no error")
    try:
        pg.policy_gradient(GOOD_MDP, pg.TabularSoftmax(4, 2), np.zeros(8))
    except ValueError as exc:
        assert "policy is for (n_states, n_actions)=(4, 2), but mdp has (3, 2)" in str(exc)
    else:
        raise AssertionError("no error")
