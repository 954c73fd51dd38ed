"""The theorems of pgexact.theorems.statistics and the transition-frequency theorems of the sampler: they pass,
their independent quantiles agree with scipy.stats, and each fails when the code it guards is broken on purpose
(the breakage made here by monkeypatching, so the test keeps checking that the theorem can fail).

Statistical theorems: a correct sampler fails an instance with probability at most 1e-6 (Chernoff and a union
bound over the cells; see pgexact.theorems.registry.statistical), so the passing checks below (a few instances,
fixed seeds) have a false-alarm probability below 1e-5; the broken samplers give statistics of 100 to inf times
the critical value on every instance measured (200 instances).
"""

from __future__ import annotations

import numpy as np
import pytest

from pgexact.theorems import get
from pgexact.theorems.registry import CONTROL_FACTOR, theorem_seed
from pgexact.theorems.statistics import norm_isf, t_isf

STATS_IDS = [
    "stats.mean_test_statistic",
    "stats.mean_test_power",
    "stats.mean_test_power_genz",
    "stats.episodes_needed",
    "stats.streaming_mean",
    "estimators.fisher_unbiased",
    "estimators.fisher_geometric",
    "estimators.normalized_advantage",
    "sampler.transition_frequencies",
]


def _residuals(theorem_id: str, n: int = 3, seed: int = 0) -> list[float]:
    thm = get(theorem_id)
    rng = np.random.default_rng(theorem_seed(seed, theorem_id))
    return [thm.run(thm.instance(rng))[0].residual for _ in range(n)]


@pytest.mark.parametrize("theorem_id", STATS_IDS)
def test_theorem_passes_and_its_controls_are_rejected(theorem_id):
    thm = get(theorem_id)
    rng = np.random.default_rng(theorem_seed(7, theorem_id))
    for _ in range(3):
        out, controls = thm.run(thm.instance(rng), True)
        assert out.residual <= thm.tolerance, (theorem_id, out.residual)
        for c, res in zip(thm.controls, controls):
            assert res >= CONTROL_FACTOR * thm.tolerance, (theorem_id, c.name, res)


def test_owens_t_bivariate_cdf_agrees_with_scipy_stats():
    from scipy.stats import multivariate_normal

    from pgexact.theorems.statistics import _bvn_cdf

    for h, k, rho in [(0.3, -1.2, 0.5), (-2.0, -0.5, -0.7), (1.5, 2.1, 0.9), (-0.4, 0.8, -0.2)]:
        assert abs(_bvn_cdf(h, k, rho) - multivariate_normal.cdf([h, k], cov=[[1, rho], [rho, 1]])) < 1e-12


def test_independent_quantiles_agree_with_scipy_stats():
    # an outside reference for the root-finding quantiles the theorems use
    from scipy.stats import norm, t

    for q in (0.025, 1e-3, 1e-6, 1e-9):
        assert abs(norm_isf(q) - norm.isf(q)) <= 1e-13 * norm.isf(q)
        for nu in (1, 5, 159, 1000):
            assert abs(t_isf(q, nu) - t.isf(q, nu)) <= 1e-11 * t.isf(q, nu), (q, nu)


# ----------------------------------------------------------------------------- deliberate breakages
def test_wrong_skewness_sign_in_hall_statistic_is_caught(monkeypatch):
    import math

    from pgexact.estimators import stats

    def broken(samples, expected):  # Hall's transform with the skewness estimate's sign flipped
        n = samples.shape[0]
        mean = samples.mean(axis=0)
        dev = samples - mean
        sd = np.sqrt((dev * dev).sum(axis=0) / (n - 1))
        gam = -(dev**3).mean(axis=0) / sd**3
        S = (mean - expected) / sd
        return math.sqrt(n) * (S + gam * S * S / 3.0 + gam * gam * S**3 / 27.0 + gam / (6.0 * n))

    monkeypatch.setattr(stats, "_hall_statistic", broken)
    assert min(_residuals("stats.mean_test_statistic")) > 100 * get("stats.mean_test_statistic").tolerance


def test_one_sided_power_threshold_is_caught(monkeypatch):
    from pgexact.estimators import stats

    real = stats._threshold
    monkeypatch.setattr(stats, "_threshold", lambda a, k, n=None: real(2 * a, k, n))
    assert min(_residuals("stats.mean_test_power")) > 100 * get("stats.mean_test_power").tolerance
    assert min(_residuals("stats.mean_test_power_genz", n=2)) > 100 * get("stats.mean_test_power_genz").tolerance
    assert min(_residuals("stats.episodes_needed")) > 100 * get("stats.episodes_needed").tolerance


def test_merge_without_between_chunk_term_is_caught(monkeypatch):
    from pgexact.estimators import _streaming

    def broken(parts):
        parts = list(parts)
        n = sum(p[0] for p in parts)
        mean = sum(p[0] * p[1] for p in parts) / n
        m2 = sum(p[2] for p in parts)
        return _streaming.StreamedMean(mean=mean, std_error=np.sqrt(m2 / (n - 1) / n), n=n)

    monkeypatch.setattr(_streaming, "merge_moments", broken)
    assert min(_residuals("stats.streaming_mean")) > 100 * get("stats.streaming_mean").tolerance


def test_fisher_without_discount_weighting_is_caught(monkeypatch):
    from pgexact.estimators import _fisher_surrogate

    monkeypatch.setattr(_fisher_surrogate.st, "discounts", lambda trajs: np.ones(trajs.n_transitions))
    res = _residuals("estimators.fisher_unbiased", n=5)
    assert sum(r > 100 * get("estimators.fisher_unbiased").tolerance for r in res) >= 4


def test_fisher_with_the_fixed_horizon_rule_under_geometric_stopping_is_caught(monkeypatch):
    import pgexact.estimators as est
    from pgexact.estimators import _fisher_surrogate as fs

    def broken(trajs, policy, theta):  # the fixed-horizon normalization applied to geometric episodes too
        w = fs.st.discounts(trajs) / trajs.discounts().sum()
        F = np.asarray(fs.st.episode_matrix(trajs, w) @ fs._outer_table(policy, theta, trajs.n_states, trajs.n_actions))
        return est.Estimate(F.reshape(trajs.n_episodes, policy.n_params, policy.n_params))

    monkeypatch.setattr(est, "fisher_estimate", broken)
    assert min(_residuals("estimators.fisher_geometric")) > 100 * get("estimators.fisher_geometric").tolerance


def test_sample_std_in_normalized_advantage_is_caught(monkeypatch):
    from pgexact.estimators import _policy_gradients

    class SampleStd(np.ndarray):  # the batch's advantages, whose std is the sample one (ddof=1)
        def std(self, *args, **kwargs):
            return np.asarray(self).std(ddof=1)

    real = _policy_gradients.st.as_step_weights
    monkeypatch.setattr(_policy_gradients.st, "as_step_weights", lambda *a: real(*a).view(SampleStd))
    assert min(_residuals("estimators.normalized_advantage")) > 100 * get("estimators.normalized_advantage").tolerance


def test_alias_off_by_one_is_caught_by_the_transition_frequencies(monkeypatch):
    from pgexact.sampling import alias, kernel

    real = alias.build_alias

    def broken(probs, compiled=False):  # each column's probability taken from its left neighbour
        return real(np.ascontiguousarray(np.roll(probs, 1, axis=1)), compiled)

    monkeypatch.setattr(alias, "build_alias", broken)
    monkeypatch.setattr(kernel, "build_alias", broken)
    assert min(_residuals("sampler.transition_frequencies")) > 100


def test_compiled_theorem_runs_the_compiled_kernel_and_catches_a_broken_decode(monkeypatch):
    pytest.importorskip("numba")
    from pgexact.sampling import kernel

    calls = []
    real = kernel.compiled_kernels

    def counting():
        out = real()
        calls.append(out is not None)
        return out

    merged = []
    real_merged = kernel.TransitionSampler.run_merged

    def counting_merged(self, *args, **kwargs):
        merged.append(True)
        return real_merged(self, *args, **kwargs)

    monkeypatch.setattr(kernel, "compiled_kernels", counting)
    monkeypatch.setattr(kernel.TransitionSampler, "run_merged", counting_merged)
    assert _residuals("sampler.compiled_transition_frequencies", n=1)[0] <= 1.0
    assert len(calls) >= 3 and all(calls)  # the compiled kernel ran (dense, sparse and geometric batches)
    assert merged  # the geometric chunks went through the compiled merged path
    assert (kernel.USE_COMPILED, kernel.COMPILED_MIN_TRANSITIONS) == (True, 1 << 20)  # restored

    real_tables = kernel.TransitionSampler._compiled_tables

    def broken_tables(self):
        t = list(real_tables(self))
        t[8] = (t[8] + 1) % self.n_states  # next_of: the compiled decode of dense codes, off by one
        return tuple(t)

    monkeypatch.setattr(kernel.TransitionSampler, "_compiled_tables", broken_tables)
    assert _residuals("sampler.compiled_transition_frequencies", n=1)[0] > 100
