"""LQR at its boundary: what the public API exposes, records that do not crash on what they are
given, errors that name the argument as the caller spelled it, and no floating-point exception
from benign underflow whatever the caller's ``np.errstate``."""

from __future__ import annotations

import importlib
import math
import warnings

import numpy as np
import pytest

from pgexact import LQR, LinearGaussian
from pgexact.errors import NumericalError, UnstableGainError
from pgexact.lqr import (
    LQRTrajectories,
    SoftOptimal,
    cost_gradient,
    evaluate,
    gaussian_entropy,
    natural_gradient,
    policy_gradient,
    rollout,
    soft_evaluate,
    soft_optimal,
    soft_policy_improvement,
    soft_policy_iteration,
)
from pgexact.lqr.soft import MAX_ITERATIONS


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _lqr(**kw):
    base = dict(A=[[1.0, 0.2], [0.0, 0.9]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]], gamma=0.9,
                Sigma0=np.eye(2), noise_cov=0.01 * np.eye(2))
    base.update(kw)
    return LQR(**base)


# ------------------------------------------------------------------------------ public API
MODULES = ["pgexact.lqr", "pgexact.lqr.exact", "pgexact.lqr.evaluation", "pgexact.lqr.gradients",
           "pgexact.lqr.policy", "pgexact.lqr.sampling", "pgexact.lqr.estimators", "pgexact.lqr.soft",
           "pgexact.lqr.riccati", "pgexact.lqr.offpolicy", "pgexact.lqr.model"]


@pytest.mark.parametrize("name", MODULES)
def test_internal_helpers_are_not_exported(name):
    """Helpers that take already-validated internals (an LQREvaluation, a validated gain) are
    private: a public name must validate what a user may pass it."""
    module = importlib.import_module(name)
    for helper in ("closed_loop_cost_matrix", "state_second_moment", "psd_sqrt"):
        assert helper not in module.__all__, (name, helper)
        assert not hasattr(module, helper), (name, helper)


# ------------------------------------------------------------------------------ records
def _batch(N=3, T=4, n=2, m=1):
    rng = np.random.default_rng(0)
    return dict(states=rng.standard_normal((N, T, n)), actions=rng.standard_normal((N, T, m)),
                costs=rng.random((N, T)), final_states=rng.standard_normal((N, n)), gamma=0.9)


def test_trajectories_validate_their_fields_and_name_them():
    ok = _batch()
    for field, bad, exc, pattern in [
        ("states", None, TypeError, "states must be an array of real numbers"),
        ("actions", "x", TypeError, "actions must be an array of real numbers"),
        ("costs", 1.0, ValueError, r"costs must have shape \(N, T\), got shape \(\)"),
        ("final_states", np.zeros((3, 5)), ValueError, r"final_states must have shape \(3, 2\) to match states"),
        ("actions", np.zeros((3, 5, 1)), ValueError, r"actions must have shape \(3, 4, m\)"),
        ("gamma", None, TypeError, "gamma must be a real number"),
        ("gamma", 1.5, ValueError, r"gamma is 1.5, expected 0 <= gamma <= 1"),
        ("gamma", True, TypeError, "gamma must be a real number"),
    ]:
        with pytest.raises(exc, match=pattern):
            LQRTrajectories(**{**ok, field: bad})
    costs = ok["costs"].copy()
    costs[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"costs\[2, 1\] is nan, expected a finite number"):
        LQRTrajectories(**{**ok, "costs": costs})
    with pytest.raises(ValueError, match="at least one episode"):
        LQRTrajectories(**_batch(N=0))


def test_trajectories_are_read_only_views_that_leave_the_callers_arrays_alone():
    ok = _batch()
    tr = LQRTrajectories(**ok)
    assert all(ok[k].flags.writeable for k in ("states", "actions", "costs", "final_states"))
    assert np.shares_memory(tr.states, ok["states"])  # float64 input is not copied
    with pytest.raises(ValueError, match="read-only"):
        tr.costs[0, 0] = 1.0
    # what rollout returns passes the same checks
    ro = rollout(_lqr(), LinearGaussian(2, 1, noise_cov=[[0.1]]), [0.2, 0.5], 5, seed=0, horizon=3)
    assert not ro.states.flags.writeable and ro.states.shape == (5, 3, 2)


def test_result_records_store_what_they_are_given():
    """Result records are built by the library from validated values; built by hand they keep
    their fields as given (arrays as read-only views) and never touch the caller's arrays."""
    K = np.array([[0.2, 0.5]])
    rec = SoftOptimal(K=K, action_cov=None, P=None, offset=None, J=None, alpha=0.1, lqr=None)
    assert rec.action_cov is None and rec.lqr is None
    assert K.flags.writeable and not rec.K.flags.writeable and np.shares_memory(rec.K, K)
    opt = soft_optimal(_lqr(), alpha=0.5)
    assert not opt.K.flags.writeable and not opt.P.flags.writeable


# ------------------------------------------------------------------------------ entropy
def test_gaussian_entropy_validates_cov():
    for bad, pattern in [([[]], r"cov must be a square matrix, got shape \(1, 0\)"),
                         (np.zeros((3, 2)), r"cov must be a square matrix, got shape \(3, 2\)"),
                         (np.zeros((0, 0)), "cov must be at least 1 x 1"),
                         ([[1.0, 2.0], [3.0, 4.0]], r"cov must be symmetric: cov\[0, 1\]"),
                         ([[1.0, 0.0], [0.0, 0.0]], "cov must be positive definite"),
                         ([[np.nan]], r"cov\[0, 0\] is nan")]:
        with pytest.raises(ValueError, match=pattern):
            gaussian_entropy(bad)


def test_gaussian_entropy_does_not_overflow_det():
    """det(1e300 I_2) = 1e600 overflows float64; the entropy 0.5 log det(2 pi e Sigma) does not."""
    expected = math.log(2 * math.pi * math.e) + math.log(1e300)  # 0.5 * 2 * (...) for m = 2
    assert gaussian_entropy(1e300 * np.eye(2)) == pytest.approx(expected, rel=1e-15)


def test_soft_evaluate_names_a_singular_action_cov():
    with pytest.raises(ValueError, match="action_cov must be positive definite"):
        soft_evaluate(_lqr(), [[0.2, 0.5]], [[0.0]], alpha=0.1)


# ------------------------------------------------------------------------------ names
def test_soft_policy_iteration_names_K0():
    lqr = _lqr()
    with pytest.raises(ValueError, match=r"K0 must have shape \(1, 2\)"):
        soft_policy_iteration(lqr, -1, alpha=0.1)
    with pytest.raises(TypeError, match="K0 must be an array of real numbers"):
        soft_policy_iteration(lqr, None, alpha=0.1)
    # A - B K = [[1, 0.2], [-5, -4.1]]: eigenvalues (-3.1 -+ sqrt(22.01)) / 2, radius 3.8957 * sqrt(0.9)
    with pytest.raises(UnstableGainError, match=r"K0 is not stabilizing for lqr: .* is 3\.6958"):
        soft_policy_iteration(lqr, [[5.0, 5.0]], alpha=0.1)
    with pytest.raises(ValueError, match=f"n_iterations is {10**9}, at most {MAX_ITERATIONS}"):
        soft_policy_iteration(lqr, [[0.2, 0.5]], alpha=0.1, n_iterations=10**9)


def test_an_unstable_gain_is_named_as_the_caller_passed_it():
    lqr = _lqr()
    pol = LinearGaussian(2, 1, noise_cov=[[0.04]])
    for fn in (policy_gradient, natural_gradient):
        with pytest.raises(UnstableGainError, match=r"the gain K of theta is not stabilizing for lqr") as exc:
            fn(lqr, pol, [5.0, 5.0])
        assert exc.value.spectral_radius == pytest.approx(3.69582, rel=1e-5)
    with pytest.raises(UnstableGainError, match=r"^K is not stabilizing for lqr"):
        evaluate(lqr, [[5.0, 5.0]])
    with pytest.raises(UnstableGainError, match=r"^K is not stabilizing for lqr"):
        soft_policy_improvement(lqr, [[5.0, 5.0]], alpha=0.1)


# ------------------------------------------------------------------------------ underflow
def test_benign_underflow_raises_nothing_under_a_strict_errstate():
    """A gain of 1e-300 makes K^T R K underflow to subnormals or zero: the results equal those of
    K = 0 to rounding, even when the caller turns every floating-point exception into an error."""
    lqr = _lqr()
    tiny = np.array([[1e-300, 0.0]])
    with np.errstate(all="raise"):
        c = evaluate(lqr, tiny).cost
        g = cost_gradient(lqr, tiny)
        pol = LinearGaussian(2, 1, learn_log_std=True)
        pg = policy_gradient(lqr, pol, [0.2, 0.5, -300.0])  # exp(-600) is a tiny variance
        e = gaussian_entropy([[5e-324]])  # the smallest subnormal
    assert c == pytest.approx(evaluate(lqr, np.zeros((1, 2))).cost, rel=1e-14)
    assert np.allclose(g, cost_gradient(lqr, np.zeros((1, 2))), rtol=1e-14)
    assert np.all(np.isfinite(pg))
    assert e == pytest.approx(0.5 * (math.log(2 * math.pi * math.e) + math.log(5e-324)), rel=1e-15)


# ------------------------------------------------------------------------------ overflow
def test_riccati_is_scale_free_and_names_lqr():
    """The DARE is homogeneous in (Q, R, N): scaling them by 1e300 scales P by 1e300 and leaves K
    unchanged (scipy's solver alone fails at that scale). An unstabilizable model names lqr."""
    from pgexact.lqr import riccati

    base = riccati(_lqr())
    big = riccati(_lqr(Q=1e300 * np.eye(2), R=[[1e300]]))
    assert np.allclose(big.K, base.K, rtol=1e-12)
    assert np.allclose(big.P / 1e300, base.P, rtol=1e-12)
    # Q = 1e300, R = 1: cheap control, P is Q's scale and finite
    with np.errstate(all="raise"):
        P = riccati(_lqr(Q=1e300 * np.eye(2))).P
    assert np.all(np.isfinite(P)) and P[0, 0] > 1e300
    # the first mode is unstable (1e150) and uncontrolled (B = e2): no stabilizing solution
    with pytest.raises(NumericalError, match="Riccati equation of lqr has no stabilizing solution"):
        riccati(_lqr(A=[[1e150, 0.0], [0.0, 1.0]]))
    # an uncontrolled mode of gain 10 multiplies P by 100 per step back from the horizon
    with pytest.raises(NumericalError, match="Riccati solution of lqr .* overflows float64"):
        riccati(_lqr(A=[[10.0, 0.0], [0.0, 0.9]], Q=1e300 * np.eye(2), horizon=50))


def test_gradient_overflow_is_a_named_numerical_error():
    """log std 353 gives a variance e^706 ~ 1e306: the cost is finite, its derivative in the
    log std (2 sigma^2 dC/dSigma_u) is not representable."""
    pol = LinearGaussian(2, 1, learn_log_std=True)
    with np.errstate(all="raise"), pytest.raises(NumericalError, match="policy gradient at this theta on lqr overflows"):
        policy_gradient(_lqr(), pol, [0.2, 0.5, 353.0])


def test_soft_overflow_names_alpha():
    lqr = _lqr()
    with np.errstate(all="raise"):
        # alpha H / (1 - gamma) = 1e308 * 1.42 / 0.1 is beyond float64
        with pytest.raises(NumericalError, match=r"soft objective .* overflows float64 at alpha=1e\+308"):
            soft_evaluate(lqr, [[1.0, 0.2]], [[1.0]], alpha=1e308)
        with pytest.raises(NumericalError, match=r"overflows float64 at alpha=1e\+308"):
            soft_optimal(lqr, alpha=1e308)
        # tiny temperatures are representable: Sigma* = alpha/2 M^-1 underflows gracefully
        opt = soft_optimal(lqr, alpha=5e-324)
    assert np.all(np.isfinite(opt.action_cov)) and np.isfinite(opt.J)


def test_estimator_overflow_is_a_named_numerical_error():
    """Episodes drawn with sigma = e^300 scored under sigma = e^-300: (u - mu) / sigma^2 overflows."""
    from pgexact.lqr import reinforce, reinforce_to_go

    lqr = _lqr(horizon=3)
    pol = LinearGaussian(2, 1, learn_log_std=True)
    ro = rollout(lqr, pol, [0.2, 0.5, 300.0], 4, seed=0)
    with np.errstate(all="raise"):
        for fn in (reinforce, reinforce_to_go):
            with pytest.raises(NumericalError, match=rf"{fn.__name__}: the term of episode 0 of samples overflows float64 under theta"):
                fn(ro, pol, [0.2, 0.5, -300.0])


def test_rollout_refuses_long_loops_before_allocating_and_stops_at_an_overflow():
    import time

    from pgexact.lqr.sampling import MAX_TIME_STEPS

    lqr = _lqr()
    pol = LinearGaussian(2, 1)
    start = time.process_time()
    with pytest.raises(ValueError, match="would need"):  # 3.3e8 chunks: refused without listing them
        rollout(lqr, pol, [0.2, 0.5], 10**9, seed=0, horizon=3, chunk_size=3)
    with pytest.raises(ValueError, match=rf"{MAX_TIME_STEPS + 1} time steps"):
        rollout(lqr, pol, [0.2, 0.5], 2, seed=0, horizon=MAX_TIME_STEPS + 1)
    # an unstable gain overflows near t = 260; the kernel stops within 64 steps of it instead of
    # running the whole horizon
    with pytest.raises(NumericalError, match=rf"overflowed float64 at step t=2\d\d of {MAX_TIME_STEPS}"):
        rollout(lqr, pol, [5.0, 5.0], 2, seed=0, horizon=MAX_TIME_STEPS)
    # generous bound on the CPU time of the three refusals (the full loop would take seconds);
    # not a timing assertion on the library's speed
    assert time.process_time() - start < 2.0


def test_model_entries_are_bounded_so_symmetrizing_cannot_overflow():
    with pytest.raises(ValueError, match=r"Q\[0, 0\] is 1e\+308, expected magnitude <= 8.98847e\+307"):
        _lqr(Q=np.full((2, 2), 1e308))
    with pytest.raises(ValueError, match=r"Sigma0\[1, 1\] is 1e\+308"):
        _lqr(Sigma0=np.diag([1.0, 1e308]))


def test_policy_refuses_sizes_it_cannot_allocate():
    with pytest.raises(ValueError, match=r"LinearGaussian\(n_states=1, n_actions=1000000\) would need 7.28 TB"):
        LinearGaussian(1, 10**6)


def test_methods_refuse_an_overflowed_value():
    """V, Q and the policy's mean at states near 1e300: the quadratic forms are not representable."""
    lqr = _lqr()
    ev = evaluate(lqr, [[0.2, 0.5]])
    pol = LinearGaussian(2, 1, noise_cov=[[0.04]])
    x, u = np.array([1e300, 0.0]), np.array([0.0])
    with np.errstate(all="raise"):
        for call, name in [(lambda: ev.V(x), r"LQREvaluation\.V\(x, t\)"),
                           (lambda: ev.Q(x, u), r"LQREvaluation\.Q\(x, u, t\)"),
                           (lambda: ev.A(x, u), r"LQREvaluation\.(A|Q)\(x, u, t\)"),
                           (lambda: soft_optimal(lqr, 0.1).Q(x, u), r"SoftOptimal\.Q\(x, u\)"),
                           (lambda: pol.mean([1e150, 1e150], [1e300, 0.0]), r"LinearGaussian\.mean\(theta, x\)")]:
            with pytest.raises(NumericalError, match=name + " overflows float64"):
                call()
        assert np.isfinite(ev.V([1e100, 0.0]))  # representable: no error
