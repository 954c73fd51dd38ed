"""Argument checks at the public boundary of sampling, estimators, distributed and updates: each
malformed argument is a ``TypeError`` / ``ValueError`` naming it, never an ``AttributeError``,
``IndexError`` or a leaked floating-point exception; result records store what they are given.

All deterministic.
"""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from pgexact import TabularSoftmax, rollout
from pgexact import estimators as E
from pgexact.distributed import ChunkError, map_chunks, streaming_estimate, streaming_mean_on
from pgexact.mdps import random_mdp
from pgexact.sampling import chunk_seed

MDP = random_mdp(3, 2, gamma=0.9, horizon=3, seed=0)
POL = TabularSoftmax(3, 2)
THETA = np.zeros(6)
PI = POL.probs(THETA)


# ------------------------------------------------------------------ chunks and callbacks
def test_chunk_seed_checks_its_arguments():
    with pytest.raises(TypeError, match="seed must be a numpy.random.SeedSequence"):
        chunk_seed(0, 1)
    with pytest.raises(TypeError, match="index must be a non-negative int"):
        chunk_seed(np.random.SeedSequence(0), None)
    with pytest.raises(ValueError, match="index must be a non-negative int, got -1"):
        chunk_seed(np.random.SeedSequence(0), -1)


@pytest.mark.parametrize("bad", [None, "x", 3])
def test_callback_arguments_must_be_a_tuple_and_a_dict(bad):
    with pytest.raises(TypeError, match="fn_args must be a tuple"):
        map_chunks(None, MDP, PI, 4, seed=0, fn_args=bad)
    with pytest.raises(TypeError, match="estimator_args must be a tuple"):
        streaming_estimate(E.reinforce, MDP, PI, 4, seed=0, estimator_args=bad)
    with pytest.raises(TypeError, match="args must be a tuple"):
        streaming_mean_on(None, E.reinforce, [], bad, {})
    if bad is not None:  # kwargs=None means no keyword arguments
        with pytest.raises(TypeError, match="fn_kwargs must be a dict"):
            map_chunks(None, MDP, PI, 4, seed=0, fn_kwargs=bad)


def test_streamed_chunks_must_be_trajectories():
    with pytest.raises(TypeError, match="chunks must be an iterable of Trajectories"):
        E.streaming_mean(E.reinforce, None, POL, THETA)
    with pytest.raises(TypeError, match=r"chunks\[1\] must be Trajectories, got list"):
        E.streaming_mean(E.reinforce, [rollout(MDP, PI, 3, seed=0), [1]], POL, THETA)
    with pytest.raises(TypeError, match="estimator must return an object with a samples array"):
        E.streaming_mean(lambda tr: 1.0, [rollout(MDP, PI, 3, seed=0)])


def test_a_callback_failing_on_its_arguments_keeps_its_error_class():
    """A chunk whose estimator rejects its arguments: a ChunkError that is also a TypeError."""
    with pytest.raises(ChunkError, match=r"chunk 0 of 1 \(4 episodes\) failed with TypeError") as info:
        streaming_estimate(E.reinforce, MDP, PI, 4, seed=0)  # estimator_args missing
    assert isinstance(info.value, TypeError)
    again = pickle.loads(pickle.dumps(info.value))
    assert type(again) is type(info.value) and again.index == 0 and again.size == 4
    plain = ChunkError(1, 2, None, 3, RuntimeError("worker lost"))
    assert type(plain) is ChunkError and not isinstance(plain, (TypeError, ValueError))


def test_chunk_error_stores_what_it_is_given():
    err = ChunkError(None, "x", 0, None, None)
    assert err.index is None and err.size == "x" and err.seed == 0


# ------------------------------------------------------------------ Trajectories and records
_FIELDS = ("flat_states flat_actions flat_rewards counts column_order lengths stops absorbed truncated "
           "gamma discount objective n_states n_actions").split()


@pytest.mark.parametrize("geometric", [False, True])
def test_trajectories_constructor_accepts_a_batch_it_stored(geometric):
    mdp = random_mdp(3, 2, gamma=0.9, seed=0) if geometric else MDP
    tr = rollout(mdp, PI, 40, seed=0, geometric=geometric)
    again = type(tr)(**{k: getattr(tr, k) for k in _FIELDS})
    assert np.array_equal(again.states, tr.states) and np.array_equal(again.rewards, tr.rewards)


@pytest.mark.parametrize(
    "field, bad, error, match",
    [
        ("flat_states", None, TypeError, "flat_states must be a 1-D integer array"),
        ("flat_states", "states+3", ValueError, r"flat_states\[\d+\] is 3, expected >= 0 and < 3"),
        ("flat_actions", "actions[:-1]", ValueError, "flat_actions must have length"),
        ("flat_rewards", "rewards nan", ValueError, r"flat_rewards\[0\] is nan"),
        ("counts", "counts+1", ValueError, "counts\\[t\\] must be the number of episodes"),
        ("column_order", "order twice", ValueError, "column_order must be a permutation"),
        ("lengths", "lengths+1", ValueError, r"lengths\[0\] is 4, expected <= stops\[0\] = 3"),
        ("absorbed", None, TypeError, "absorbed must be a boolean array"),
        ("objective", np.array([]), ValueError, "objective must be one of"),
        ("gamma", None, TypeError, "gamma must be a real number"),
        ("n_states", 0, TypeError, "n_states must be a positive int"),
    ],
)
def test_trajectories_constructor_names_the_broken_field(field, bad, error, match):
    tr = rollout(MDP, PI, 5, seed=0)
    kw = {k: getattr(tr, k) for k in _FIELDS}
    bad = {
        "states+3": kw["flat_states"] + 3, "actions[:-1]": kw["flat_actions"][:-1],
        "rewards nan": np.where(np.arange(kw["flat_rewards"].size) == 0, np.nan, kw["flat_rewards"]),
        "counts+1": kw["counts"] + 1, "order twice": np.zeros(5, dtype=np.intp),
        "lengths+1": kw["lengths"] + 1,
    }.get(bad, bad) if isinstance(bad, str) else bad
    with pytest.raises(error, match=match):
        type(tr)(**{**kw, field: bad})


def test_records_store_what_they_are_given_and_leave_the_callers_arrays_writeable():
    from pgexact.estimators import EstimatorMoments, OptimalBaselines
    from pgexact.updates import SurrogateBatch, TrainingHistory

    x = np.zeros(3)
    rec = EstimatorMoments("reinforce", x, None, None, None, "x", 3)
    assert rec.second_moment == "x" and x.flags.writeable and not rec.mean.flags.writeable
    assert OptimalBaselines(*[None] * 8).constant is None
    assert SurrogateBatch(None, x, None, None, None, None).states is None
    assert TrainingHistory(x, None, None, None, None, None, None, ()).thetas is None
    assert x.flags.writeable


# ------------------------------------------------------------------ statistics
def test_power_and_moments_near_the_float64_limit_and_checked_tolerances():
    assert E.mean_test_power([[1e308]], [-1.0], 1) < 1e-3  # no overflow symmetrizing the covariance
    assert E.mean_test_power([[2.0]], [1e308], 5) == 1.0  # a shift beyond float64 rejects surely
    with pytest.raises(TypeError, match="atol"):
        E.mean_test_power([[1.0]], [0.0], 5, atol=None)
    with pytest.raises(ValueError, match="atol must be >= 0"):
        E.mean_test_power([[1.0]], [0.0], 5, atol=-1.0)
    with pytest.raises(TypeError, match="estimate must be an array"):
        E.mean_test(None, [1.0], [0.0])


def test_exact_moment_routines_check_lam_and_horizon_and_refuse_huge_enumerations():
    with pytest.raises(TypeError, match="lam must be a finite real number"):
        E.gae_expected_advantage(MDP, PI, np.zeros(3), None)
    disc = random_mdp(3, 2, gamma=0.9, seed=0)
    for bad, error in ((1j, TypeError), (np.inf, TypeError), ("x", TypeError)):
        with pytest.raises(error, match="horizon"):
            E.optimal_baselines(disc, POL, THETA, horizon=bad)
    with pytest.raises(ValueError, match="would need about .* GiB .* horizon H=1000000000000"):
        E.optimal_baselines(disc, POL, THETA, horizon=10**12)
    with pytest.raises(ValueError, match=r"enumerate_trajectories\(\.\.\., horizon=1000000000000\) would need"):
        E.enumerate_trajectories(disc, PI, horizon=10**12, max_trajectories=10**12)


# ------------------------------------------------------------------ updates
def test_update_functions_check_policy_batch_theta_and_pi_old():
    from pgexact import LinearGaussian
    from pgexact import updates as U

    disc = random_mdp(3, 2, gamma=0.9, seed=0)
    oracle = U.ExactSource(disc, POL).at(THETA)
    with pytest.raises(TypeError, match="policy must be a pgexact.TabularSoftmax"):
        U.ExactOracle(disc, LinearGaussian(2, 1, noise_cov=[[0.04]]), THETA)
    with pytest.raises(TypeError, match="trajs must be Trajectories"):
        U.SampledOracle(disc, POL, THETA, None, "none", 1.0, disc)
    for fn in (U.surrogate_value, U.surrogate_and_gradient):
        with pytest.raises(TypeError, match="batch must be a SurrogateBatch"):
            fn(POL, None, THETA)
        with pytest.raises(TypeError, match="policy must be a SoftmaxPolicy"):
            fn(LinearGaussian(2, 1, noise_cov=[[0.04]]), oracle.batch, THETA)
    junk = U.SurrogateBatch(oracle.batch.states + 3, *[getattr(oracle.batch, f) for f in
                            ("actions", "advantages", "log_weights", "logp_old", "state_weights")])
    with pytest.raises(ValueError, match=r"batch.states\[0\] is 3"):
        U.surrogate_value(POL, junk, THETA)
    with pytest.raises(ValueError, match="pi_old"):
        U.kl_and_gradient(POL, oracle.batch, THETA, np.full((3, 2), 0.7))
    # the checked public functions agree with the oracle's own (unchecked) path
    assert U.surrogate_value(POL, oracle.batch, THETA + 0.1) == oracle.surrogate(THETA + 0.1)


def test_greedy_policy_checks_q_current_and_atol():
    from pgexact.updates import greedy_policy

    Q = np.array([[1.0, 2.0], [3.0, -np.inf]])
    assert np.array_equal(greedy_policy(Q), [[0.0, 1.0], [1.0, 0.0]])
    assert np.array_equal(greedy_policy(Q, current=np.array([0, 0]), atol=1.0), [[1.0, 0.0], [1.0, 0.0]])
    with pytest.raises(TypeError, match="current must be None or an integer array"):
        greedy_policy(Q, current="x")
    with pytest.raises(ValueError, match=r"current\[1\] is 2"):
        greedy_policy(Q, current=np.array([0, 2]))
    with pytest.raises(ValueError, match=r"Q\[0, 1\] is nan"):
        greedy_policy([[0.0, np.nan]])
    with pytest.raises(ValueError, match=r"Q\[0\] is -inf for every action"):
        greedy_policy([[-np.inf, -np.inf]])
    with pytest.raises(TypeError, match="atol"):
        greedy_policy(Q, atol=None)


def test_ppo_variants_report_absent_quantities_as_none_not_nan():
    from pgexact import updates as U

    src = U.ExactSource(random_mdp(3, 2, gamma=0.9, seed=0), POL)
    clipped = U.ppo_update(src, THETA, clip=0.2, lr=0.1)
    assert clipped.coefficient is None and clipped.next_coefficient is None
    assert U.ppo_kl_update(src, THETA, beta=1.0, kl_target=0.01, lr=0.1).clip_fraction is None


def test_value_iteration_stops_at_a_fixed_point_of_its_map_and_soft_alpha_is_named():
    from pgexact import updates as U

    disc = random_mdp(3, 2, gamma=0.9, seed=0)
    far = U.value_iteration(disc, n_iterations=10**12)  # the computed iterates reach a fixed point
    assert far.n_iterations == 10**12
    assert np.array_equal(far.V, U.value_iteration(disc, n_iterations=5000).V)
    with pytest.raises(ValueError, match="alpha=1e\\+308 makes the entropy-regularized reward"):
        U.soft_evaluate(disc, PI, 1e308)
