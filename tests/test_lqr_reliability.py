"""LQR on extreme and malformed input: clear errors (never NaN, never a leaked warning), bounded
resources, and sampling that is bit-identical whatever the chunking or the number of workers."""

from __future__ import annotations

import multiprocessing

import warnings
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from pgexact import LQR, LinearGaussian
from pgexact._chunks import ChunkError
from pgexact.errors import NumericalError
from pgexact.lqr import (
    evaluate,
    natural_gradient,
    policy_gradient,
    reinforce_baseline,
    rollout,
)
from pgexact.lqr.sampling import SEED_BLOCK


@pytest.fixture(autouse=True)
def _warnings_are_errors():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        yield


def _lqr(horizon=None, **kw):
    base = dict(A=[[1.0, 0.5], [0.0, 1.1]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]], gamma=0.9,
                Sigma0=np.eye(2), noise_cov=0.1 * np.eye(2), horizon=horizon)
    base.update(kw)
    return LQR(**base)


def test_finite_horizon_evaluate_with_huge_gain_raises():
    lqr = _lqr(horizon=200)
    with pytest.raises(NumericalError, match=r"finite-horizon .* overflows float64 \(largest \|K\| entry 1e\+150\)"):
        evaluate(lqr, [[1e150, 1e150]])
    # a large but representable gain still evaluates to a finite cost
    assert np.isfinite(evaluate(_lqr(horizon=3), [[1e3, 1e3]]).cost)


def test_diverging_rollout_raises_naming_the_spectral_radius():
    lqr = _lqr(horizon=5000, noise_cov=None)
    pol = LinearGaussian(2, 1)
    with pytest.raises(NumericalError, match=r"overflowed float64 at step t=\d+ of 5000: the closed loop "
                                             r"A - B K has spectral radius 1\.1"):
        rollout(lqr, pol, [0.0, 0.0], 3, seed=0)


def test_nan_baseline_is_named():
    lqr = _lqr(horizon=3)
    pol = LinearGaussian(2, 1, noise_cov=[[0.2]])
    th = pol.params([[0.1, 0.5]])
    ro = rollout(lqr, pol, th, 4, seed=0)

    def bad(t, x):
        out = np.zeros(len(x))
        out[2] = np.nan if t == 1 else 0.0
        return out

    with pytest.raises(ValueError, match=r"baseline\(t, x\) returned nan at t=1, episode 2: expected finite values"):
        reinforce_baseline(ro, pol, th, bad)


def test_log_std_out_of_range_is_a_clear_error():
    lqr = _lqr()
    pol = LinearGaussian(2, 1, learn_log_std=True)
    th = pol.params([[0.1, 0.9]], log_std=[400.0])
    with pytest.raises(NumericalError, match=r"exp\(2 log_std\) of theta\[2\] \(log_std\[0\] = 400\)"):
        policy_gradient(lqr, pol, th)
    th = pol.params([[0.1, 0.9]], log_std=[-400.0])
    with pytest.raises(NumericalError, match="log_std"):
        natural_gradient(lqr, pol, th)
    # in range, the gradient is finite
    assert np.all(np.isfinite(policy_gradient(lqr, pol, pol.params([[0.1, 0.9]], log_std=[3.0]))))


def test_huge_horizon_is_refused_with_its_cost():
    lqr = _lqr()
    with pytest.raises(ValueError, match=r"would need .* GiB .* 10000000 time steps .* about 300 s"):
        rollout(lqr, LinearGaussian(2, 1), [0.1, 0.9], 1, seed=0, horizon=10**7)
    with pytest.raises(ValueError, match=r"would need 4\.47 GiB"):
        rollout(lqr, LinearGaussian(2, 1), [0.1, 0.9], 10**6, seed=0, horizon=150)


@pytest.mark.parametrize("n_episodes", [1, SEED_BLOCK - 1, 3 * SEED_BLOCK + 5])
def test_bit_identical_for_any_chunk_size_and_worker_count(n_episodes):
    """The same seed gives the same episodes, to the bit, whatever the chunk size (including
    sizes that cut seed blocks) and whatever the number of workers of an executor."""
    lqr = _lqr(N=[[0.1], [0.0]])
    pol = LinearGaussian(2, 1, noise_cov=[[0.3]])
    th = pol.params([[0.2, 0.9]])
    ref = rollout(lqr, pol, th, n_episodes, seed=11, horizon=7)
    for chunk in (1, 5, SEED_BLOCK, SEED_BLOCK + 3, 10**5):
        got = rollout(lqr, pol, th, n_episodes, seed=11, horizon=7, chunk_size=chunk)
        for name in ("states", "actions", "costs", "final_states"):
            assert np.array_equal(getattr(got, name), getattr(ref, name)), (chunk, name)
    for workers in (1, 2, 3):
        with ThreadPoolExecutor(workers) as ex:
            got = rollout(lqr, pol, th, n_episodes, seed=11, horizon=7, chunk_size=17, executor=ex)
        assert np.array_equal(got.states, ref.states) and np.array_equal(got.costs, ref.costs), workers
    # the first episodes do not depend on how many are drawn
    more = rollout(lqr, pol, th, n_episodes + 2 * SEED_BLOCK, seed=11, horizon=7)
    assert np.array_equal(more.states[:n_episodes], ref.states)
    assert not np.array_equal(rollout(lqr, pol, th, n_episodes, seed=12, horizon=7).states, ref.states)


def test_seed_blocks_are_distinct_and_processes_agree():
    """Each seed block draws from its own child seed (no two blocks share noise), and a process pool
    (chunks pickled to other interpreters) gives the serial result bit for bit."""
    from concurrent.futures import ProcessPoolExecutor

    lqr = _lqr()
    pol = LinearGaussian(2, 1, noise_cov=[[0.3]])
    th = pol.params([[0.2, 0.9]])
    ro = rollout(lqr, pol, th, 3 * SEED_BLOCK, seed=3, horizon=4)
    first = ro.states[:: SEED_BLOCK, 0]  # x0 of the first episode of each block
    assert len({tuple(r) for r in first}) == 3
    # forkserver: JAX or torch may already be imported (and threaded) in this test process
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("forkserver")) as ex:
        par = rollout(lqr, pol, th, 3 * SEED_BLOCK, seed=3, horizon=4, chunk_size=50, executor=ex)
    assert np.array_equal(par.states, ro.states) and np.array_equal(par.costs, ro.costs)


def test_bit_identical_with_blas_sized_state():
    """n = 14 (above the elementwise-product threshold: BLAS products on whole seed blocks)."""
    rng = np.random.default_rng(0)
    n = 14
    A = rng.standard_normal((n, n))
    A *= 0.9 / np.max(np.abs(np.linalg.eigvals(A)))
    lqr = LQR(A, rng.standard_normal((n, 2)), np.eye(n), np.eye(2), gamma=0.9, Sigma0=np.eye(n),
              noise_cov=0.1 * np.eye(n))
    pol = LinearGaussian(n, 2, noise_cov=0.2 * np.eye(2))
    th = pol.params(0.01 * rng.standard_normal((2, n)))
    ref = rollout(lqr, pol, th, 2 * SEED_BLOCK + 3, seed=1, horizon=5)
    for chunk in (1, 7, SEED_BLOCK + 1):
        got = rollout(lqr, pol, th, 2 * SEED_BLOCK + 3, seed=1, horizon=5, chunk_size=chunk)
        assert np.array_equal(got.states, ref.states) and np.array_equal(got.costs, ref.costs), chunk


class _Failing(ThreadPoolExecutor):
    def submit(self, fn, *args, **kwargs):
        if args[2] > 0:  # every chunk but the first fails
            def boom():
                raise RuntimeError("worker lost")
            return super().submit(boom)
        return super().submit(fn, *args, **kwargs)


def test_executor_failure_names_the_chunk():
    lqr = _lqr()
    pol = LinearGaussian(2, 1)
    with _Failing(2) as ex, pytest.raises(ChunkError, match=r"chunk 1 of 3 \(10 episodes\) failed with RuntimeError"):
        rollout(lqr, pol, [0.1, 0.9], 30, seed=0, horizon=3, chunk_size=10, executor=ex)
    with pytest.raises(TypeError, match="executor must be a concurrent.futures.Executor"):
        rollout(lqr, pol, [0.1, 0.9], 3, seed=0, horizon=3, executor="x")
