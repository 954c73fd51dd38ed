"""The theorems that cover the LQR Fisher, natural gradient, second derivatives, soft improvement step,
rollouts and gradient estimators: they reach their functions, their controls are what they claim, their
statistical residual is calibrated, and a plausible one-line mistake planted in the library (by
monkeypatching) makes them fail.

Statistical tests here state their false-alarm probability: every check of a calibrated statistic is a
binomial tail bound at 1e-6 (fixed seeds, so a pass is reproducible, and not a lucky seed: the bound holds
for any seed with probability 1 - 1e-6 under the normal approximation it tests).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.stats

import pgexact.lqr.estimators as lqr_estimators
import pgexact.lqr.gradients as lqr_gradients
import pgexact.lqr.hessian as lqr_hessian
import pgexact.lqr.sampling as lqr_sampling
import pgexact.lqr.soft as lqr_soft
from pgexact.cli import _theorem_seed
from pgexact.lqr.policy import LinearGaussian
from pgexact.theorems import get
from pgexact.theorems._coverage import measure
from pgexact.theorems.lqr import newton as N
from pgexact.theorems.lqr import sampled as S

MINE = {
    "lqr.fisher_score_outer": ["pgexact.lqr.fisher"],
    "lqr.fisher_fixed_noise": ["pgexact.lqr.fisher"],
    "lqr.natural_gradient_solves": ["pgexact.lqr.natural_gradient"],
    "lqr.hessian_vector_product": ["pgexact.lqr.cost_hessian_vector_product"],
    "lqr.policy_hessian": ["pgexact.lqr.policy_hessian"],
    "lqr.newton_direction": ["pgexact.lqr.newton_direction"],
    "lqr.soft_policy_improvement": ["pgexact.lqr.soft_policy_improvement"],
    "lqr.rollout_law": ["pgexact.lqr.rollout"],
    "lqr.score_function_estimators": ["pgexact.lqr.rollout", "pgexact.lqr.reinforce", "pgexact.lqr.reinforce_to_go",
                                      "pgexact.lqr.reinforce_baseline"],
    "lqr.dpg_estimator": ["pgexact.lqr.rollout", "pgexact.lqr.dpg"],
}


def _outcomes(theorem_id: str, n: int, seed: int = 0, controls: bool = False):
    thm = get(theorem_id)
    rng = np.random.default_rng(_theorem_seed(seed, theorem_id))
    return thm, [thm.run(thm.instance(rng), controls) for _ in range(n)]


def test_each_theorem_reaches_the_functions_it_covers():
    cov = measure([get(i) for i in MINE], instances=1, seed=0)
    for theorem_id, names in MINE.items():
        for name in names:
            assert theorem_id in cov.reached[name], (theorem_id, name, cov.reached[name])


def test_the_hvp_controls_are_one_slip_from_the_library():
    # hvp_variant without a slip is the library's Hessian-vector product (to rounding), so each control
    # differs from the truth by its one named slip only
    thm = get("lqr.hessian_vector_product")
    rng = np.random.default_rng(3)
    for _ in range(12):
        inst = thm.instance(rng)
        p, X = inst
        lib = lqr_hessian.cost_hessian_vector_product(p.lqr, p.policy.gain(p.theta), X,
                                                      noise_cov=p.policy.action_cov(p.theta))
        np.testing.assert_allclose(N.hvp_variant(p, X), lib, rtol=1e-12, atol=1e-12 * np.max(np.abs(lib)))


# ----------------------------------------------------------------------------- calibration of the mean statistic
def test_mean_statistic_false_alarm_on_gaussian_polynomials():
    """Under H0 (right mean), samples shaped like the estimators' terms (products of Gaussians and a quadratic
    return, skewed and heavy-tailed) exceed the statistic's level-alpha threshold at a rate <= alpha (up to the
    normal approximation). alpha = 0.05 per replication, 300 replications of 10^4 episodes and 3 coordinates;
    under the claim the count is Binomial(300, <= 0.05), whose 1 - 1e-6 quantile is 37."""
    rng = np.random.default_rng(2024)
    alpha, reps, n = 0.05, 300, 10_000
    bound = int(scipy.stats.binom.ppf(1 - 1e-6, reps, alpha))
    rejected = 0
    for _ in range(reps):
        e, x, w = rng.standard_normal((3, n))
        ret = -(1.0 + (0.8 * x + 0.3 * e) ** 2 + 0.5 * w**2)  # a (negative) quadratic return
        terms = np.stack([e * x * ret, (e * e - 1.0) * ret, e * ret], axis=1)
        mean = np.array([-0.48, -2 * 0.09, 0.0])  # E[e x ret] = -2*0.8*0.3 = -0.48; E[(e^2-1) ret] = -2*0.09
        rejected += S.mean_statistic([terms], mean, false_alarm=alpha) > 1.0
    assert rejected <= bound, (rejected, bound)
    # and the statistic has power: a shift of 10 standard errors in one coordinate is caught at alpha = 1e-6
    se = terms.std(axis=0, ddof=1) / np.sqrt(n)
    assert S.mean_statistic([terms], mean + np.array([10 * se[0], 0, 0]), false_alarm=1e-6) > 1.0


def test_mean_statistic_edge_cases():
    const = np.ones((50, 2))
    assert S.mean_statistic([const], np.ones(2)) == 0.0
    assert S.mean_statistic([const], np.array([1.0, 2.0])) == np.inf  # zero variance, wrong mean


@pytest.mark.slow
def test_estimator_theorems_false_alarm_at_a_moderate_level():
    """The real estimators of lqr.dpg_estimator (60 instances) and lqr.score_function_estimators (30) at
    alpha = 0.05 per instance: the rejection counts are Binomial(60 or 30, <= 0.05) under the normal
    approximation; their 1 - 1e-6 quantiles are 14 and 10 (measured: 0 and 0, the Chernoff bound is conservative)."""
    cases = [("lqr.dpg_estimator", 60, lambda ep: [S._dpg_observed(ep)]),
             ("lqr.score_function_estimators", 30, lambda ep: list(S._score_observed(ep)))]
    for theorem_id, reps, observed in cases:
        thm = get(theorem_id)
        rng = np.random.default_rng(11)
        bound = int(scipy.stats.binom.ppf(1 - 1e-6, reps, 0.05))
        rejected = 0
        for _ in range(reps):
            ep = thm.instance(rng)
            rejected += S.mean_statistic(observed(ep), S._fd(ep.problem), false_alarm=0.05) > 1.0
        assert rejected <= bound, (theorem_id, rejected, bound)


# ----------------------------------------------------------------------------- deliberate breakages
def _fails(theorem_id: str, n: int = 3) -> bool:
    """True when the theorem fails (residual above its tolerance) on every one of n instances."""
    thm, outs = _outcomes(theorem_id, n)
    return all(not out.residual <= thm.tolerance for out, _ in outs)


def test_the_theorems_pass_unbroken():
    # the first instance that _fails draws passes without the planted mistake
    for theorem_id in MINE:
        thm, outs = _outcomes(theorem_id, 1)
        assert all(out.residual <= thm.tolerance for out, _ in outs), theorem_id


def test_unnormalized_state_moment_breaks_fisher_and_natural_gradient(monkeypatch):
    monkeypatch.setattr(lqr_gradients, "_state_second_moment", lambda ev: ev.Sigma)  # dropped 1/sum gamma^t
    assert _fails("lqr.fisher_score_outer") and _fails("lqr.fisher_fixed_noise")
    assert _fails("lqr.natural_gradient_solves")


def test_log_std_block_not_halved_breaks_the_natural_gradient(monkeypatch):
    real = lqr_gradients.natural_gradient

    def mistaken(lqr, policy, theta):
        out = real(lqr, policy, theta)
        out[policy.n_gain:] *= 2.0  # returns grad_l J instead of grad_l J / 2
        return out

    monkeypatch.setattr(lqr_gradients, "natural_gradient", mistaken)
    import pgexact.lqr.exact as lqr_exact
    monkeypatch.setattr(lqr_exact, "natural_gradient", mistaken)
    assert _fails("lqr.natural_gradient_solves")


def test_dropped_state_term_breaks_the_second_order_theorems(monkeypatch):
    real = lqr_hessian._Derivatives.along
    monkeypatch.setattr(lqr_hessian._Derivatives, "along", lambda self, X, state_term=True: real(self, X, False))
    assert _fails("lqr.hessian_vector_product")
    assert _fails("lqr.policy_hessian")
    assert _fails("lqr.newton_direction")


def test_log_std_hessian_diagonal_halved_breaks_policy_hessian(monkeypatch):
    real = lqr_hessian.policy_hessian

    def mistaken(lqr, policy, theta):
        H = real(lqr, policy, theta)
        H[policy.n_gain:, policy.n_gain:] *= 0.5  # 2 e^{2l} G on the diagonal instead of 4 e^{2l} G
        return H

    monkeypatch.setattr(lqr_hessian, "policy_hessian", mistaken)
    assert _fails("lqr.policy_hessian")


def test_soft_covariance_without_one_half_breaks_the_soft_step(monkeypatch):
    real = lqr_soft._improve

    def mistaken(lqr, P, alpha):
        K, S_, M = real(lqr, P, alpha)
        return K, 2.0 * S_, M  # alpha M^-1

    monkeypatch.setattr(lqr_soft, "_improve", mistaken)
    assert _fails("lqr.soft_policy_improvement")


def test_covariance_as_its_own_factor_breaks_the_rollout_law(monkeypatch):
    monkeypatch.setattr(lqr_sampling, "_psd_sqrt", lambda M: np.array(M))  # Sigma instead of Sigma^(1/2)
    assert _fails("lqr.rollout_law", n=2)


def test_undiscounted_reward_to_go_breaks_the_score_function_theorem(monkeypatch):
    # G_t summed without gamma^t: the classic missing-discount mistake of reward-to-go (and of the baseline form)
    monkeypatch.setattr(lqr_estimators, "_to_go", lambda ro: np.cumsum(ro.rewards[:, ::-1], axis=1)[:, ::-1])
    assert _fails("lqr.score_function_estimators", n=2)


def test_log_std_score_without_minus_one_breaks_the_score_function_theorem(monkeypatch):
    real = LinearGaussian._score

    def mistaken(self, theta, x, u):
        out = real(self, theta, x, u)
        if self.learn_log_std:
            out = out.copy()
            out[..., self.n_gain:] += 1.0  # (u - mu)^2 / sigma^2 without the -1
        return out

    monkeypatch.setattr(LinearGaussian, "_score", mistaken)
    assert _fails("lqr.score_function_estimators", n=2)


def test_undiscounted_dpg_breaks_the_dpg_theorem(monkeypatch):
    real = lqr_estimators.dpg

    def mistaken(samples, policy, theta, grad_q):
        # gamma^t dropped: the estimator of the undiscounted state distribution
        undiscounted = lqr_sampling.LQRTrajectories(samples.states, samples.actions, samples.costs,
                                                    samples.final_states, 1.0)
        return real(undiscounted, policy, theta, grad_q)

    monkeypatch.setattr(lqr_estimators, "dpg", mistaken)
    assert _fails("lqr.dpg_estimator", n=2)
