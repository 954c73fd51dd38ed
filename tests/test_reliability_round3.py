"""Regression tests: silent wrong answers, hangs and bad input found by an attack on the public API.

Each test fails on the code before its fix (each was checked by reverting the fix once).
"""

import numpy as np
import pytest
from scipy.special import logsumexp

import pgexact as pg
from pgexact import mdps
from pgexact.updates import soft_policy_iteration, soft_value_iteration


# --------------------------------------------------------------------------- soft control, masks
def _masked_mdp():
    """4 states, 3 actions; state s cannot take action s % 3, so two feasible actions everywhere."""
    base = mdps.random_mdp(4, 3, gamma=0.8, seed=3)
    mask = np.ones((4, 3), dtype=bool)
    mask[np.arange(4), np.arange(4) % 3] = False
    r = np.array(base.r)
    r[~mask] = 5.0  # an attractive infeasible action: ignoring the mask shows in the answer
    return pg.FiniteMDP(base.P, r, base.mu0, 0.8, action_mask=mask), mask


def _reduced_soft_optimum(mdp, mask, alpha):
    """Soft-optimal Q on the MDP with the infeasible actions deleted (plain fixed-point iteration).

    Independent of pgexact's soft iteration: the reduced MDP has no mask, and the iteration
    is written out here with scipy's logsumexp.
    """
    S = mdp.n_states
    feas = [np.flatnonzero(mask[s]) for s in range(S)]
    P = np.array([mdp.P[s, feas[s]] for s in range(S)])  # (S, 2, S)
    r = np.array([mdp.r[s, feas[s]] for s in range(S)])
    Q = np.zeros_like(r)
    for _ in range(400):  # 0.8^400 < 1e-38
        V = alpha * logsumexp(Q / alpha, axis=1)
        Q = r + mdp.gamma * P @ V
    pi = np.zeros((S, mdp.n_actions))
    for s in range(S):
        pi[s, feas[s]] = np.exp((Q[s] - V[s]) / alpha)
    return V, pi


@pytest.mark.parametrize("alpha", [0.05, 0.5, 3.0])
def test_soft_iterations_respect_the_action_mask(alpha):
    mdp, mask = _masked_mdp()
    V_ref, pi_ref = _reduced_soft_optimum(mdp, mask, alpha)
    vi = soft_value_iteration(mdp, alpha)
    assert np.all(vi.policy[~mask] == 0.0)
    assert np.allclose(vi.V, V_ref, rtol=1e-10, atol=0)  # tol 1e-12 relative, plus rounding
    assert np.allclose(vi.policy, pi_ref, rtol=0, atol=1e-10)
    pg.evaluate(mdp, vi.policy)  # a feasible policy: accepted
    spi = soft_policy_iteration(mdp, alpha)  # default start: uniform over the feasible actions
    assert np.all(spi.policy[~mask] == 0.0)
    assert np.allclose(spi.evaluation.V, V_ref, rtol=1e-10, atol=0)
    assert np.allclose(spi.policy, pi_ref, rtol=0, atol=1e-10)


# --------------------------------------------------------------------------- copies stay read-only
def _records():
    import scipy.sparse

    from pgexact import average, estimators, lqr

    mdp = mdps.random_mdp(3, 2, gamma=0.9, seed=0)
    pi = np.full((3, 2), 0.5)
    sparse = pg.FiniteMDP(scipy.sparse.csr_array(np.reshape(mdp.P, (6, 3))), mdp.r, mdp.mu0, gamma=0.9)
    tr = pg.rollout(mdp, pi, 20, horizon=4, seed=0)
    model = lqr.LQR([[1.0]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9, noise_cov=[[0.1]], Sigma0=[[1.0]])
    return {
        "FiniteMDP": mdp,
        "FiniteMDP (sparse P)": sparse,
        "Evaluation": pg.evaluate(mdp, pi),
        "AverageEvaluation": average.evaluate(mdp, pi),
        "Trajectories": tr,
        "Estimate": estimators.reinforce(tr, pg.TabularSoftmax(3, 2), np.zeros(6)),
        "LQR": model,
        "LQREvaluation": lqr.evaluate(model, [[0.5]]),
    }


def _read_only_arrays(obj):
    out = {}
    for name, value in vars(obj).items():
        if isinstance(value, np.ndarray):
            out[name] = value
        elif hasattr(value, "tocsr") and hasattr(value, "data"):
            out[name + ".data"] = value.data
    return {k: v for k, v in out.items() if not v.flags.writeable}


@pytest.mark.parametrize("how", ["deepcopy", "copy", "pickle"])
def test_copies_of_read_only_records_stay_read_only(how):
    import copy
    import pickle

    clone = {"deepcopy": copy.deepcopy, "copy": copy.copy, "pickle": lambda o: pickle.loads(pickle.dumps(o))}[how]
    for label, obj in _records().items():
        frozen = _read_only_arrays(obj)
        assert frozen, label  # the record has read-only arrays to begin with
        twin = clone(obj)
        for name in frozen:
            value = getattr(twin, name.split(".")[0])
            arr = value.data if name.endswith(".data") else value
            assert not arr.flags.writeable, f"{label}.{name} became writeable after {how}"
    twin = clone(_records()["FiniteMDP"])
    with pytest.raises(ValueError, match="read-only"):
        twin.P[0, 0, :] = 5.0


# --------------------------------------------------------------------------- hangs and memory
def test_estimator_moments_refuses_a_long_horizon_up_front_with_the_time():
    import time

    from pgexact.estimators import estimator_moments

    mdp = mdps.random_mdp(3, 2, gamma=0.9, seed=0)
    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"horizon H=10000000 .* about 3\.5e\+03 s"):
        estimator_moments(mdp, pg.TabularSoftmax(3, 2), np.zeros(6), "reward_to_go", horizon=10**7)
    assert time.perf_counter() - start < 5.0  # refused before any recursion (it ran for > 900 s)


def test_estimator_moments_refuses_an_argument_its_estimator_does_not_use():
    from pgexact.estimators import estimator_moments

    mdp = mdps.random_mdp(3, 2, gamma=0.9, horizon=3, seed=0)
    args = (mdp, pg.TabularSoftmax(3, 2), np.zeros(6))
    with pytest.raises(TypeError, match="'reinforce' does not use b"):
        estimator_moments(*args, "reinforce", b=1.0)
    with pytest.raises(TypeError, match="'gae' does not use b"):
        estimator_moments(*args, "gae", V=np.zeros(3), lam=0.5, b=1.0)
    estimator_moments(*args, "gae", V=np.zeros(3), lam=0.5)  # the arguments it uses: accepted


@pytest.mark.parametrize(
    "builder, args",
    [("pendulum", (3000, 2, 2)), ("pendulum", (60, 50, 3)), ("mountain_car", (120, 90)), ("cartpole", (6, 5, 7, 6))],
)
def test_classic_control_footprint_bounds_the_real_peak(builder, args):
    """The up-front estimate bounds the peak traced allocation: no allocation grows faster than it
    (the reset distribution once took an (n, n) table per axis: 72 MB at n_theta=3000, n_omega=2)."""
    import math
    import tracemalloc

    from pgexact.mdps import classic_control as cc

    n_actions = {"pendulum": args[-1] if len(args) == 3 else 5, "mountain_car": 3, "cartpole": 2}[builder]
    dims = args[:2] if builder == "pendulum" else args
    tracemalloc.start()
    try:
        getattr(cc, builder)(*args, gamma=0.9)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= cc.footprint(len(dims), math.prod(dims), n_actions, True)


def test_classic_control_refuses_a_grid_beyond_the_memory_limit_fast_naming_it():
    import time

    start = time.perf_counter()
    with pytest.raises(ValueError, match=r"n_theta=10000000, n_omega=2, .* would need 42\.5 GB"):
        mdps.pendulum(n_theta=10**7, n_omega=2, gamma=0.9)
    assert time.perf_counter() - start < 1.0


def test_value_iteration_zero_iterations_returns_v0():
    from pgexact.updates import policy_iteration, value_iteration

    mdp, mask = _masked_mdp()
    v0 = value_iteration(mdp, n_iterations=0)
    assert v0.n_iterations == 0 and np.array_equal(v0.V, np.zeros(4)) and v0.J == 0.0
    assert np.all(v0.policy[~mask] == 0.0)  # greedy over feasible actions
    assert np.max(np.abs(policy_iteration(mdp).V)) <= v0.error_bound


# --------------------------------------------------------------------------- average reward, nearly multichain
def _exact_average(P, r, pi):
    """Gain, stationary distribution and bias in exact rational arithmetic (fractions.Fraction).

    The chain is taken from the off-diagonal entries of P, each row summing to 1 exactly (the
    stored diagonal 1 - eps is itself rounded, by as much as the eps that decides the answer).
    Independent of pgexact: Gauss-Jordan elimination on Fractions.
    """
    from fractions import Fraction as F

    S, A, _ = P.shape
    Ppi = [[sum(F(float(pi[s, a])) * F(float(P[s, a, t])) for a in range(A)) if t != s else F(0) for t in range(S)]
           for s in range(S)]
    for s in range(S):
        Ppi[s][s] = 1 - sum(Ppi[s])
    rpi = [sum(F(float(pi[s, a])) * F(float(r[s, a])) for a in range(A)) for s in range(S)]

    def solve(M, b):
        n = len(b)
        M = [row[:] + [b[i]] for i, row in enumerate(M)]
        for c in range(n):
            p = next(i for i in range(c, n) if M[i][c] != 0)
            M[c], M[p] = M[p], M[c]
            for i in range(n):
                if i != c and M[i][c] != 0:
                    f = M[i][c] / M[c][c]
                    M[i] = [x - f * y for x, y in zip(M[i], M[c])]
        return [M[i][n] / M[i][i] for i in range(n)]

    # d^T (I - P) = 0 with sum d = 1: replace the last equation by the normalization
    rows = [[(1 if i == j else 0) - Ppi[j][i] for j in range(S)] for i in range(S - 1)] + [[F(1)] * S]
    d = solve(rows, [F(0)] * (S - 1) + [F(1)])
    rho = sum(x * y for x, y in zip(d, rpi))
    # (I - P) h = r - rho with d^T h = 0: replace the last equation by the normalization
    rows = [[(1 if i == j else 0) - Ppi[i][j] for j in range(S)] for i in range(S - 1)] + [d]
    h = solve(rows, [rpi[i] - rho for i in range(S - 1)] + [F(0)])
    return float(rho), np.array([float(x) for x in d]), np.array([float(x) for x in h])


def _two_blocks(eps, seed=0):
    """Two 3-state blocks, well mixed inside, joined by transitions of probability eps and 3 eps."""
    rng = np.random.default_rng(seed)
    P = np.zeros((6, 2, 6))
    for blk in (slice(0, 3), slice(3, 6)):
        P[blk, :, blk] = rng.dirichlet(np.ones(3), size=(3, 2))
    P[0, 0, 3] = eps
    P[0, 0, :3] *= 1 - eps  # rows still sum to 1 within rounding: the diagonal entry is rounded
    P[4, 1, 1] = 3 * eps
    P[4, 1, 3:] *= 1 - 3 * eps
    r = rng.normal(size=(6, 2))
    pi = rng.dirichlet(np.ones(2), size=6)
    return pg.FiniteMDP(P, r, np.full(6, 1 / 6), gamma=0.9), pi


@pytest.mark.parametrize("eps", [1e-8, 1e-12, 1e-14, 1e-16])
def test_average_evaluate_is_accurate_on_nearly_multichain_chains(eps):
    from pgexact import average

    mdp, pi = _two_blocks(eps)
    rho, d, h = _exact_average(np.asarray(mdp.P), np.asarray(mdp.r), pi)
    ev = average.evaluate(mdp, pi)
    # GTH gives every entry of d to a few ulps (O'Cinneide 1993): 1e-13 relative leaves room
    # for S = 6 states; the LU answer was off by 0.6% at eps = 1e-14
    assert abs(ev.rho - rho) <= 1e-13 * max(1.0, abs(rho))
    assert np.allclose(ev.d, d, rtol=1e-13, atol=0)
    # h is of order 1/eps; its entries are accurate relative to its norm
    scale = np.max(np.abs(h))
    assert np.max(np.abs(ev.h - h)) <= 1e-12 * scale
    # Q and A: Q - h within one block is O(1) while h ~ 1/eps, so A carries an absolute error
    # of order eps_machine * ||h|| (the docstring says so), here checked at 1e-12 ||h|| + 1e-12
    Q = np.asarray(mdp.r) - rho + np.einsum("sat,t->sa", np.asarray(mdp.P), h)
    assert np.max(np.abs(ev.Q - Q)) <= 1e-12 * scale + 1e-12


def test_average_evaluate_refuses_a_bias_beyond_float64():
    from pgexact import average
    from pgexact.errors import SingularSystemError

    mdp, pi = _two_blocks(1e-310)  # h ~ 1e310 overflows
    with pytest.raises(SingularSystemError, match="overflows float64"):
        average.evaluate(mdp, pi)


@pytest.mark.parametrize("seed", range(4))
def test_average_structured_elimination_on_ordinary_chains(seed, monkeypatch):
    """The structured path (forced) against exact rational arithmetic on random chains with
    transient states allowed: every state has its own probabilities, so every step of the
    elimination matters."""
    from pgexact import average

    from pgexact.average import _structured

    monkeypatch.setattr(_structured, "_MAX_LU_CONDITION", 0.5)  # no LU answer is accepted
    mdp = mdps.random_mdp(7, 2, gamma=0.9, seed=seed)
    pi = np.random.default_rng(seed).dirichlet(np.ones(2), size=7)
    rho, d, h = _exact_average(np.asarray(mdp.P), np.asarray(mdp.r), pi)
    ev = average.evaluate(mdp, pi)
    assert abs(ev.rho - rho) <= 1e-13 * max(1.0, abs(rho))
    assert np.allclose(ev.d, d, rtol=1e-12, atol=1e-15)
    assert np.max(np.abs(ev.h - h)) <= 1e-12 * max(1.0, np.max(np.abs(h)))


# --------------------------------------------------------------------------- mean_test at finite N
LEVELS = (1e-3, 1e-2)


def _coordinate_rejections(draw, N, n_coordinates, seed):
    """Per-coordinate rejections of mean_test on Estimates of N episodes with independent columns.

    Each call tests k = 50 independent coordinates at Bonferroni level false_alarm = k * level,
    so each coordinate is a two-sided test at ``level`` (threshold t(N - 1).isf(level / 2),
    read from the result); the count over n_coordinates coordinates is
    Binomial(n_coordinates, rate) exactly (columns and calls are independent).
    """
    from pgexact.estimators import Estimate, mean_test

    k = 50
    rng = np.random.default_rng(seed)
    counts = dict.fromkeys(LEVELS, 0)
    for _ in range(n_coordinates // k):
        est = Estimate(draw(rng, (N, k)))
        for level in LEVELS:
            res = mean_test(est, np.zeros(k), false_alarm=k * level)
            counts[level] += int(np.count_nonzero(np.abs(res.z) > res.threshold))
    return counts


def _centred_exponential(rng, size):
    return rng.exponential(size=size) - 1.0  # skewness 2, like a policy-gradient term's


def _normal(rng, size):
    return rng.normal(size=size)


def _check_rates(counts, n):
    """Each count must not exceed the upper 1 - 1e-4 quantile of Binomial(n, level): false alarm
    of this check at most 1e-4 per level when the true rate is at most ``level``."""
    from scipy.stats import binom

    for level, count in counts.items():
        assert count <= binom.ppf(1 - 1e-4, n, level), (level, count, n * level)


def test_mean_test_false_alarm_holds_on_skewed_terms_at_n163():
    """100,000 coordinate tests of centred exponential terms at N = 163, levels 1e-3 and 1e-2
    (thresholds 139 and 1119 rejections; observed 114 and 1025). The uncorrected z test gave
    335 and 1561 here."""
    n = 100_000
    _check_rates(_coordinate_rejections(_centred_exponential, 163, n, seed=163), n)


def test_mean_test_false_alarm_holds_on_normal_terms_at_n163():
    n = 100_000
    _check_rates(_coordinate_rejections(_normal, 163, n, seed=1630), n)


@pytest.mark.slow
def test_mean_test_false_alarm_holds_on_skewed_terms_at_n1000():
    """400,000 coordinate tests at N = 1000 (thresholds 476 and 4236 rejections; observed 378 and
    3982; the uncorrected z test: rate 1.34e-3 at level 1e-3 in 1e5 simulated tests, so about 536)."""
    n = 400_000
    _check_rates(_coordinate_rejections(_centred_exponential, 1000, n, seed=1000), n)


def test_mean_test_refuses_fewer_episodes_than_it_can_vouch_for():
    from pgexact.estimators import MIN_EPISODES, Estimate, mean_test

    est = Estimate(_centred_exponential(np.random.default_rng(0), (40, 2)))
    with pytest.raises(ValueError, match=f"40 episodes, fewer than MIN_EPISODES={MIN_EPISODES}"):
        mean_test(est, [0.0, 0.0])
    # the array form states only an asymptotic level and still runs
    assert mean_test(est.mean, est.std_error, [0.0, 0.0]).threshold > 0


# --------------------------------------------------------------------------- bad input
def _trajectories():
    mdp = mdps.random_mdp(3, 2, gamma=0.9, seed=0)
    return pg.rollout(mdp, np.full((3, 2), 0.5), 6, geometric=True, seed=0)


def test_trajectories_methods_validate_their_arguments():
    tr = _trajectories()
    M = tr.n_transitions
    with pytest.raises(ValueError, match=rf"values must have shape \(M,\) or \(M, k\) with M = n_transitions = {M}"):
        tr.per_episode_sum(np.ones(M + 1))
    with pytest.raises(ValueError, match=r"values\[1\] is nan"):
        tr.per_episode_sum(np.where(np.arange(M) == 1, np.nan, 1.0))
    assert np.array_equal(tr.per_episode_sum([1.0] * M), tr.per_episode_sum(np.ones(M)))  # a list is fine
    with pytest.raises(ValueError, match=r"x must have shape \(M,\)"):
        tr.reverse_scan(np.ones((M, 2)), 0.5)
    with pytest.raises(ValueError, match=r"x\[0\] is inf"):
        tr.reverse_scan(np.where(np.arange(M) == 0, np.inf, 1.0), 0.5)
    with pytest.raises(ValueError, match="factor is 1.5"):
        tr.reverse_scan(np.ones(M), 1.5)
    with pytest.raises(TypeError, match="factor must be a real number"):
        tr.reverse_scan(np.ones(M), "0.5")
    with pytest.raises(TypeError, match=r"parts must be a list of Trajectories, got one Trajectories \(wrap it"):
        pg.Trajectories.concatenate(tr)
    with pytest.raises(TypeError, match="parts must be a list of Trajectories, got int"):
        pg.Trajectories.concatenate(3)


def test_estimate_covariance_needs_two_episodes():
    import warnings

    from pgexact.estimators import Estimate

    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no RuntimeWarning from numpy's cov either
        with pytest.raises(ValueError, match="at least 2 episodes, this estimate has 1"):
            Estimate(np.ones((1, 3))).covariance
    assert Estimate(np.arange(6.0).reshape(3, 2)).covariance.shape == (2, 2)


def test_power_and_episodes_needed_refuse_a_covariance_that_is_not_psd():
    from pgexact.estimators import episodes_needed, mean_test_power

    with pytest.raises(ValueError, match="covariance is not positive semi-definite: its smallest eigenvalue is -1"):
        mean_test_power([[1.0, 2.0], [2.0, 1.0]], [0.1, 0.0], 100)
    with pytest.raises(ValueError, match="covariance is not positive semi-definite"):
        episodes_needed([[1.0, 2.0], [2.0, 1.0]], [0.1, 0.0])
    singular = np.array([[1.0, -1.0], [-1.0, 1.0]])  # PSD, singular (softmax scores): accepted
    assert 0.0 <= mean_test_power(singular, [0.1, -0.1], 100) <= 1.0


def test_exact_source_names_old_and_new_theta_and_checks_v():
    src = pg.ExactSource(mdps.random_mdp(3, 2, gamma=0.9, seed=0), pg.TabularSoftmax(3, 2))
    good = np.zeros(6)
    for method in (src.kl, src.surrogate, src.exact_kl):
        with pytest.raises(ValueError, match="theta_old must have length n_params=6"):
            method(np.zeros(5), good)
        with pytest.raises(ValueError, match="theta_new must have length n_params=6"):
            method(good, np.zeros(5))
    oracle = src.at(good)
    with pytest.raises(TypeError, match="v must be an array of real numbers"):
        oracle.fisher_vector_product(np.ones(6, dtype=complex))
    with pytest.raises(ValueError, match=r"v\[2\] is nan"):
        oracle.fisher_vector_product(np.where(np.arange(6) == 2, np.nan, 1.0))


def test_surrogate_batch_subset_checks_index_and_scale():
    import warnings

    batch = pg.ExactSource(mdps.random_mdp(3, 2, gamma=0.9, seed=0), pg.TabularSoftmax(3, 2)).at(np.zeros(6)).batch
    with pytest.raises(TypeError, match="index must be integer row indices or a boolean mask, got dtype float64"):
        batch.subset(np.array([0.0, 1.0]))
    with pytest.raises(ValueError, match=r"index\[1\] is 6, expected a row in \[-6, 6\)"):
        batch.subset(np.array([0, 6]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        with pytest.raises(ValueError, match="scale must be a positive finite number, got 0.0"):
            batch.subset(np.array([0, 1]), scale=0.0)
    assert batch.subset(np.arange(6) < 3, scale=2.0).n_rows == 3


def test_lqr_evaluation_checks_t():
    from pgexact import lqr

    model = lqr.LQR([[0.5]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9, noise_cov=[[0.1]], Sigma0=[[1.0]])
    ev = lqr.evaluate(model, [[0.3]])
    with pytest.raises(TypeError, match="t must be an integer time step, got 'x'"):
        ev.Q([1.0], [0.0], t="x")  # was ignored
    with pytest.raises(ValueError, match="t must be 0 for an infinite horizon"):
        ev.grad_u_Q([1.0], [0.0], t=1)
    finite = lqr.evaluate(lqr.LQR([[0.5]], [[1.0]], [[1.0]], [[1.0]], gamma=1.0, Sigma0=[[1.0]], horizon=3), [[0.3]])
    with pytest.raises(TypeError, match="t must be an integer time step, got 2.0"):
        finite.V([1.0], t=2.0)  # was an IndexError
    with pytest.raises(ValueError, match=r"t must satisfy 0 <= t < horizon=3, got 3"):
        finite.Q([1.0], [0.0], t=3)
    assert np.isfinite(finite.V([1.0], t=2))


def test_lqr_soft_optimal_v_checks_x_and_gaussian_noise_cov_does_not_overflow():
    import warnings

    from pgexact import lqr

    model = lqr.LQR([[0.5]], [[1.0]], [[1.0]], [[1.0]], gamma=0.9, noise_cov=[[0.1]], Sigma0=[[1.0]])
    with pytest.raises(ValueError, match=r"x must have shape \(\.\.\., n_states=1\), got \(\)"):
        lqr.soft_optimal(model, 0.5).V(0.0)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        lqr.LinearGaussian(1, 1, noise_cov=[[1e308]])  # symmetrized without overflow
        with pytest.raises(ValueError, match="noise_cov must be symmetric"):
            lqr.LinearGaussian(2, 2, noise_cov=[[1.0, 1e308], [-1e308, 1.0]])


def test_alias_table_methods_validate_their_arguments():
    import scipy.sparse

    from pgexact.sampling import AliasTable

    with pytest.raises(ValueError, match=r"probs\[0, :\] sums to 0.5"):
        AliasTable.from_probs([[0.25, 0.25]])
    with pytest.raises(ValueError, match=r"probs must have shape \(R, K\) with R, K >= 1"):
        AliasTable.from_probs(np.zeros((0, 2)))
    with pytest.raises(TypeError, match="codes must be an integer array"):
        AliasTable.from_probs([[0.5, 0.5]], codes=[0.5, 1.5])
    with pytest.raises(TypeError, match="matrix must be a 2-D scipy.sparse matrix"):
        AliasTable.from_sparse_rows([[0.5, 0.5]])
    with pytest.raises(ValueError, match=r"matrix\[0, :\] sums to 2"):
        AliasTable.from_sparse_rows(scipy.sparse.csr_array([[1.0, 1.0]]))
    table = AliasTable.from_probs([[0.5, 0.5], [0.1, 0.9]])
    with pytest.raises(ValueError, match=r"rows\[1\] is 2, expected a row in \[0, 2\)"):
        table.sample(np.array([0, 2]), np.array([0.1, 0.2]))
    with pytest.raises(ValueError, match=r"u\[0\] is 1.0, expected a uniform in \[0, 1\)"):
        table.sample(np.array([0]), np.array([1.0]))
    with pytest.raises(TypeError, match="rows must be integer row indices"):
        table.sample(np.array([0.0]), np.array([0.5]))
    with pytest.raises(ValueError, match="u must have the shape of rows"):
        table.sample(np.array([0, 1]), np.array([0.5]))
    assert table.sample(np.array([1, 1]), np.array([0.0, 0.99])).tolist() == [0, 1]


def test_theorem_outcome_names_a_bad_instance():
    from pgexact.theorems import registry

    thm = registry.all_theorems()[0]
    with pytest.raises(TypeError, match="instance must be an instance of theorem"):
        thm.outcome(None)
    with pytest.raises(TypeError, match="instance must be an instance of theorem"):
        thm.outcome(object())


def test_figures_render_refuses_a_file_as_out_dir(tmp_path):
    from pgexact import figures

    path = tmp_path / "a_file"
    path.write_text("x")
    with pytest.raises(ValueError, match="out_dir=.*a_file' is a file, not a directory"):
        figures.render(["test_power"], out_dir=path, progress=False)
    assert path.read_text() == "x"


def test_bandit_errors_name_means():
    with pytest.raises(ValueError, match=r"means\[1\] is 1e\+301"):
        mdps.bandit([1.0, 1e301])
    with pytest.raises(ValueError, match=r"means\[0\] is nan"):
        mdps.bandit([np.nan, 1.0])


@pytest.mark.parametrize("kwargs", [{"epochs": 10**12}, {"epochs": 10**4, "n_minibatches": 10**3}])
def test_ppo_refuses_an_ascent_too_long_to_finish(kwargs: dict) -> None:
    """A PPO ascent of 10**12 epochs used to run for ever: it is refused up front with its length."""
    from pgexact.mdps import random_mdp
    from pgexact.updates import ExactSource, ppo_update

    mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    src = ExactSource(mdp, pg.TabularSoftmax(3, 2))
    with pytest.raises(ValueError, match=r"epochs=.* time steps"):
        ppo_update(src, np.zeros(6), clip=0.2, lr=0.1, seed=0, **kwargs)
