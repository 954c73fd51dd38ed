"""Entropy-regularized softmax PG (Mei et al. 2020): the linear rate of Theorem 6 and the Łojasiewicz inequality of
Lemma 15 on exact runs, their controls, what a broken computation does to them, and the constants by hand."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pgexact.theorems import convergence_entropy as E
from pgexact.theorems._tabular import Tabular, softmax, values
from pgexact.theorems.registry import CONTROL_FACTOR, get

RATE = "convergence.entropy_pg_linear_rate"


@pytest.fixture(scope="module")
def runs() -> list[E.SoftPGRun]:
    """The random-MDP runs of the registered instances (each instance also carries a one-state run)."""
    thm = get(RATE)
    rng = np.random.default_rng(11)
    return [thm.instance(rng).random for _ in range(30)]


def _alone(run: E.SoftPGRun) -> E.SoftPGPair:
    """An instance of the theorem made of ``run`` alone (both of its runs)."""
    return E.SoftPGPair(run, run)


def _rejected(thm, run: E.SoftPGRun) -> bool:
    return thm.outcome(_alone(run)).residual >= CONTROL_FACTOR * thm.tolerance


def test_linear_rate_holds_on_its_instances(runs: list[E.SoftPGRun]) -> None:
    thm = get(RATE)
    outs = [thm.outcome(_alone(run)) for run in runs]
    assert max(o.residual for o in outs) == 0.0
    # a loose bound: the guaranteed rate is at most ~1% of the observed one (8.8e-3 the largest over 600 instances)
    assert 0 < max(o.ratio for o in outs) < 0.02
    for run in runs:  # the runs ascend: every observed rate is positive and the gaps shrink
        assert np.all(run.ascent > 0) and np.all(np.diff(run.gaps_mu) < 0)


def test_one_state_instances_come_within_a_factor_5() -> None:
    # the guaranteed per-step contraction is 0.18..0.23 of the observed one on one-state instances at gamma = 0
    rng = np.random.default_rng(3)
    ratios = [get(RATE).outcome(E.SoftPGPair(run, run)).ratio for run in (E.soft_pg_bandit(rng) for _ in range(10))]
    assert 0.15 < max(ratios) < 0.3


def test_control_is_rejected(runs: list[E.SoftPGRun]) -> None:
    thm = get(RATE)
    (control,) = thm.controls
    assert np.mean([control.residual(_alone(run)) >= CONTROL_FACTOR * thm.tolerance for run in runs]) >= 0.9


def _instance(seed: int) -> tuple[Tabular, float, np.ndarray]:
    rng = np.random.default_rng(seed)
    m = E.random_tabular(rng, (0.7, 0.9), mu_concentration=5.0)
    return m, float(rng.choice([0.5, 2.0, 5.0])), 0.5 * rng.standard_normal(m.r.shape)


def test_a_diverging_step_is_detected_and_a_slightly_too_large_one_is_not() -> None:
    # The bound is loose (guaranteed rate <= ~1% of the observed one): doubling the step (or dropping gamma from the
    # gradient) keeps the run ascending fast enough to pass; a step 1e4 times too large breaks the monotone ascent
    # the proof relies on, and the theorem fails on most instances.
    thm = get(RATE)
    assert not any(_rejected(thm, E.soft_pg_run(*_instance(s), 20, step_factor=2.0)) for s in range(10))
    assert np.mean([_rejected(thm, E.soft_pg_run(*_instance(s), 20, step_factor=1e4)) for s in range(20)]) >= 0.6


def test_an_iteration_far_slower_than_the_guarantee_is_detected(runs: list[E.SoftPGRun]) -> None:
    # the check can fail: a run whose every ascent is 1e5 times smaller violates the per-step contraction
    thm = get(RATE)
    slow = [replace(run, ascent=1e-5 * run.ascent) for run in runs]
    assert np.mean([_rejected(thm, run) for run in slow]) >= 0.9


def test_step_and_rate_constant_by_hand() -> None:
    # gamma = 0.5, tau = 1, A = 2: eta = 0.5^3 / (8 + 4 + 8 log 2) = 0.125 / 17.545177444479562
    assert E.mei_step(1.0, 0.5, 2) == pytest.approx(0.007124464850558132, rel=1e-14)
    # S = 2, min mu = 0.3, min pi = 0.2, ||d*/mu|| = 1.5:
    # C = 0.5^4 / ((8 + 4 + 8 log 2) * 2) * 0.3 * 0.2^2 / 1.5 = 0.0625 / 35.090354888959124 * 0.008
    run = E.SoftPGRun(gaps_mu=np.array([1.0, 0.9]), gaps_rho=np.array([1.0, 0.9]), ascent=np.array([0.1]),
                      min_prob=np.array([0.2]), mismatch=1.5, inv_mu=1 / 0.3, min_mu=0.3, n_states=2, n_actions=2,
                      tau=1.0, gamma=0.5)
    assert E.mei_rate(run) == pytest.approx([1.4248929701116266e-05], rel=1e-14)
    lhs, rhs = E.mei_linear_rate_sides(run)
    # per step: C_1 vs 0.1 / 1.0; final (t = 2): 1 * C_1 vs log((1/0.3) * 1.0 / 0.9)
    assert lhs == pytest.approx([1.4248929701116266e-05] * 2, rel=1e-14)
    assert rhs == pytest.approx([0.1, np.log(1 / 0.27)], rel=1e-14)


def test_the_iteration_is_gradient_ascent_with_the_step_of_the_theorem() -> None:
    # the first ascent of soft_pg_run equals that of theta_1 + eta * (central-difference gradient of V~(mu))
    m, tau, theta = _instance(3)
    run = E.soft_pg_run(m, tau, theta, 1)
    h, fd = 1e-6, np.zeros_like(theta)

    def soft_value(th: np.ndarray) -> float:
        return float(m.mu @ values(m, softmax(th), tau)[0])

    for i in np.ndindex(theta.shape):
        e = np.zeros_like(theta)
        e[i] = h
        fd[i] = (soft_value(theta + e) - soft_value(theta - e)) / (2 * h)
    eta = (1 - m.gamma) ** 3 / (8 + tau * (4 + 8 * np.log(m.r.shape[1])))
    assert run.ascent[0] == pytest.approx(soft_value(theta + eta * fd) - soft_value(theta), rel=1e-6)


def test_lemma_15_theorems_keep_their_ids_and_live_here() -> None:
    for theorem_id in ("convergence.entropy_pg_lojasiewicz", "convergence.entropy_pg_lojasiewicz_sharp", RATE):
        thm = get(theorem_id)
        assert thm.instance.__module__ == E.__name__
