"""Convergence theorems: the helpers against the exact core, the bounds on random instances, control power."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from pgexact import FiniteMDP, TabularSoftmax, evaluate, occupancy, policy_gradient
from pgexact.theorems import convergence as C
from pgexact.theorems import convergence_entropy as E
from pgexact.theorems.registry import CONTROL_FACTOR, all_theorems, get
from pgexact.updates import value_iteration

IDS = ["convergence.softmax_pg_rate", "convergence.npg_rate", "convergence.gradient_domination",
       "convergence.entropy_npg_linear", "convergence.pmd_linear", "convergence.cpi_improvement",
       "convergence.entropy_pg_lojasiewicz", "convergence.entropy_pg_lojasiewicz_sharp",
       "convergence.entropy_pg_linear_rate"]


def _model(m: C.Tabular, start: np.ndarray) -> FiniteMDP:
    return FiniteMDP(m.P, m.r, start, m.gamma)


def test_helpers_agree_with_the_exact_core() -> None:
    rng = np.random.default_rng(0)
    for _ in range(5):
        m = C.random_tabular(rng, (0.5, 0.95))
        theta = rng.standard_normal(m.r.shape)
        pi = C.softmax(theta)
        mdp = _model(m, m.mu)
        ev = evaluate(mdp, pi)
        V, Q = C.values(m, pi)
        assert np.allclose(V, ev.V, atol=1e-12) and np.allclose(Q, ev.Q, atol=1e-12)
        assert np.allclose(C.occupancy(m, pi, m.mu), occupancy(mdp, pi), atol=1e-12)
        # the softmax PG step of softmax_pg_run is eta * grad V(mu)
        d = C.occupancy(m, pi, m.mu)
        grad = (d[:, None] * pi * (Q - V[:, None]) / (1 - m.gamma)).reshape(-1)
        pol = TabularSoftmax(*m.r.shape)
        assert np.allclose(grad, policy_gradient(mdp, pol, theta.reshape(-1)), atol=1e-12)
        V_star, _ = C.optimal(m)
        assert np.allclose(V_star, value_iteration(mdp).V, atol=1e-9)


def test_soft_optimum_is_a_fixed_point_of_the_soft_npg_update() -> None:
    rng = np.random.default_rng(1)
    m = C.random_tabular(rng, (0.5, 0.9))
    tau = 0.1
    Q_star, logpi_star = C.soft_optimal(m, tau)
    run = C.soft_npg_run(m, tau, 0.5 * (1 - m.gamma) / tau, logpi_star, 3)
    assert np.max(run.errors) < 1e-11 and np.max(run.log_errors) < 1e-11
    V, Q = C.values(m, np.exp(logpi_star), tau)
    assert np.allclose(Q, Q_star, atol=1e-11)


@pytest.mark.parametrize("theorem_id", IDS)
def test_bound_holds_and_controls_have_power(theorem_id: str) -> None:
    thm = get(theorem_id)
    rng = np.random.default_rng(2024)
    insts = [thm.instance(rng) for _ in range(40)]
    outs = [thm.outcome(i) for i in insts]
    assert max(o.residual for o in outs) <= thm.tolerance
    assert 0 < max(o.ratio for o in outs) <= 1.0 + thm.tolerance  # the tightest ratio is reported
    for c in thm.controls:
        assert np.mean([c.residual(i) >= CONTROL_FACTOR * thm.tolerance for i in insts]) >= 0.9, c.name


def test_registered() -> None:
    ids = {t.id for t in all_theorems()}
    assert set(IDS) <= ids


def test_npg_bound_nearly_binds_somewhere() -> None:
    # instances are chosen so that the bound is informative: some ratio above 0.2
    thm = get("convergence.npg_rate")
    rng = np.random.default_rng(3)
    assert max(thm.outcome(thm.instance(rng)).ratio for _ in range(30)) > 0.2


def test_soft_gradient_is_the_derivative_of_the_regularized_value() -> None:
    # central differences of V~(mu) = mu . (I - gamma P_pi)^{-1} (r_pi - tau H(pi)): error O(h^2) ~ 1e-10 times
    # third derivatives (O(1/(1-gamma)^3) <= 1e3 here) plus rounding ~1e-16 * 10 / h
    rng = np.random.default_rng(4)
    for _ in range(3):
        m = C.random_tabular(rng, (0.5, 0.9))
        tau, theta = 0.4, rng.standard_normal(m.r.shape)
        h = 1e-5
        fd = np.zeros_like(theta)
        for i in np.ndindex(theta.shape):
            e = np.zeros_like(theta)
            e[i] = h
            fd[i] = (m.mu @ C.values(m, C.softmax(theta + e), tau)[0] - m.mu @ C.values(m, C.softmax(theta - e), tau)[0]) / (2 * h)
        assert np.allclose(E.soft_gradient(m, theta, tau), fd, atol=1e-8)


def test_soft_policy_iteration_agrees_with_soft_value_iteration() -> None:
    rng = np.random.default_rng(5)
    for tau in (0.1, 1.0, 3.0):
        m = C.random_tabular(rng, (0.5, 0.95))
        V, pi = E.soft_policy_iteration(m, tau)
        Q_vi, logpi_vi = C.soft_optimal(m, tau)
        assert np.allclose(pi, np.exp(logpi_vi), atol=1e-11)
        assert np.allclose(V, tau * np.log(np.exp(Q_vi / tau).sum(axis=1)), atol=1e-10)


def test_lojasiewicz_nearly_binds_and_fails_for_a_gradient_without_its_1_over_1_minus_gamma() -> None:
    thm = get("convergence.entropy_pg_lojasiewicz_sharp")
    rng = np.random.default_rng(6)
    insts = [thm.instance(rng) for _ in range(30)]
    assert max(thm.outcome(p).ratio for p in insts) > 0.9
    mei = get("convergence.entropy_pg_lojasiewicz")  # at most 1/sqrt(2) of the sharp constant's ratio
    assert max(mei.outcome(mei.instance(rng)).ratio for _ in range(30)) > 0.5
    # the check can fail: a gradient too small by (1 - gamma) violates the bound on every instance
    broken = [replace(p, grad_norms=(1 - p.gamma) * p.grad_norms) for p in insts]
    assert all(thm.outcome(p).residual > CONTROL_FACTOR * thm.tolerance for p in broken)


def test_mei_constant_is_implied_by_the_sharp_one() -> None:
    # sharp C >= sqrt(2S) * Mei's C at every parameter (d_mu >= (1 - gamma) mu), on both theorems' instances
    rng = np.random.default_rng(7)
    for _ in range(20):
        p = E.lojasiewicz_problem(rng, (1, 2, 3), (0.0, 0.95))
        assert np.all(E.lojasiewicz_lhs(p) >= np.sqrt(2 * p.n_states) * E.mei_lojasiewicz_lhs(p) * (1 - 1e-12))
