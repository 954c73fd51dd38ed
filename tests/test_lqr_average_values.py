"""Values and optimal costs of LQR and the average-reward objective, against independent computations.

The theorems of :mod:`pgexact.theorems.lqr.values` and :mod:`pgexact.theorems.average_values` hold on
fixed-seed instances and reject their controls; and direct checks of quantities no other test pins: the
LQR Q-function's noise term, the finite-horizon Riccati offset, the nearly multichain solution in exact
arithmetic, relative value iteration on a periodic optimal chain.
"""

from __future__ import annotations


import numpy as np
import pytest

import pgexact.theorems.average_values  # noqa: F401  (registers the theorems)
import pgexact.theorems.lqr.values  # noqa: F401
from pgexact import LQR, average
from pgexact.lqr import evaluate, riccati
from pgexact.theorems.lqr import reference_cost
from pgexact.theorems.registry import _REGISTRY, CONTROL_FACTOR

IDS = [
    "lqr.values_primal",
    "lqr.soft_values",
    "lqr.riccati_cost",
    "average.differential_q_is_discounted_limit",
    "average.multichain_gain_and_bias",
    "average.nearly_multichain_exact",
    "average.rvi_optimal_gain",
]


@pytest.mark.parametrize("tid", IDS)
def test_theorem_holds_and_controls_are_rejected(tid):
    """On 12 instances (seed 2024) the residual is within the tolerance and every control is rejected on
    at least 11 of them."""
    th = _REGISTRY[tid]
    rng = np.random.default_rng(2024)
    insts = [th.instance(rng) for _ in range(12)]
    for inst in insts:
        assert th.outcome(inst).residual <= th.tolerance, tid
    for c in th.controls:
        rejected = sum(c.residual(inst) >= CONTROL_FACTOR * th.tolerance for inst in insts)
        assert rejected >= 11, (tid, c.name, rejected)


def _scalar_lqr(**kw):
    return LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[2.0]], Sigma0=[[1.0]], noise_cov=[[0.3]], gamma=0.8, **kw)


def test_lqr_q_by_hand():
    """Scalar LQR, K = 0.4, no policy noise: P = (1 + 2 * 0.16)/(1 - 0.8 * 0.5^2) = 1.65, c = 0.8 * 1.65 * 0.3 / 0.2 = 1.98;
    Q(x, u) = -(x^2 + 2u^2 + 0.8 [P (0.9x + u)^2 + P W + c]) worked out by hand."""
    ev = evaluate(_scalar_lqr(), [[0.4]])
    assert np.isclose(ev.P[0, 0], 1.65, rtol=1e-14) and np.isclose(ev.offset, 1.98, rtol=1e-14)
    x, u = 1.5, -0.5
    expected = -(x * x + 2 * u * u + 0.8 * (1.65 * (0.9 * x + u) ** 2 + 1.65 * 0.3 + 1.98))
    assert np.isclose(ev.Q([x], [u]), expected, rtol=1e-14)
    assert np.isclose(ev.grad_u_Q([x], [u])[0], -(4 * u + 0.8 * 2 * 1.65 * (0.9 * x + u)), rtol=1e-14)
    assert np.isclose(ev.V([x]), -(1.65 * x * x + 1.98), rtol=1e-14)


def test_finite_horizon_optimal_cost_is_the_cost_of_its_gains():
    """The finite-horizon Riccati cost equals the primal-side cost of its own time-varying gains (forward
    second-moment recursion) and the infinite-horizon one that of K*."""
    lqr = LQR(A=[[1.0, 0.3], [0.0, 0.9]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[0.5]], Sigma0=np.eye(2),
              noise_cov=0.2 * np.eye(2), gamma=0.9, horizon=4)
    oc = riccati(lqr)
    S, total = np.array(lqr.Sigma0), 0.0
    for t, K in enumerate(oc.K):
        AK = lqr.A - lqr.B @ K
        total += 0.9**t * float(np.trace((lqr.Q + K.T @ lqr.R @ K) @ S))
        S = AK @ S @ AK.T + lqr.noise_cov
    assert np.isclose(oc.cost, total, rtol=1e-13)
    inf = lqr.with_horizon(None)
    oc = riccati(inf)
    assert np.isclose(oc.cost, reference_cost(inf, oc.K), rtol=1e-12)


def test_nearly_multichain_two_states_by_hand():
    """Two states joined by eps and 2 eps: d = (2/3, 1/3), rho = (2 r0 + r1)/3, h = (r0 - r1)/(9 eps) (1, -2)."""
    eps = 1e-11
    P = np.array([[[1 - eps, eps]], [[2 * eps, 1 - 2 * eps]]])
    r = np.array([[1.0], [4.0]])
    ev = average.evaluate((P, r), np.ones((2, 1)))
    assert np.allclose(ev.d, [2 / 3, 1 / 3], rtol=1e-14, atol=0)
    assert np.isclose(ev.rho, 2.0, rtol=1e-14)
    assert np.allclose(ev.h, -3.0 / (9 * eps) * np.array([1.0, -2.0]), rtol=1e-9)


def test_rvi_on_a_periodic_optimal_chain_with_a_self_loop():
    """A 3-cycle earning 2 per step against a self-loop earning 1 at state 0: RVI (aperiodicity transform
    needed, though a self-loop exists) finds the gain 2 everywhere."""
    P = np.zeros((3, 2, 3))
    for s in range(3):
        P[s, 0, (s + 1) % 3] = 1.0
        P[s, 1, s if s == 0 else (s + 1) % 3] = 1.0
    r = np.array([[2.0, 1.0], [2.0, 0.0], [2.0, 0.0]])
    opt = average.optimal((P, r), "rvi", max_iter=5000)
    assert np.allclose(opt.gain, 2.0, atol=1e-12)


def test_multichain_bias_by_hand():
    """Two absorbing states and a transient one: g = (1, 2, 3), h(transient) = r - g = -2 with P* h = 0."""
    P = np.array([[[1.0, 0.0, 0.0]], [[0.5, 0.0, 0.5]], [[0.0, 0.0, 1.0]]])
    ev = average.multichain_evaluate((P, [[1.0], [0.0], [3.0]]), np.ones((3, 1)))
    assert np.allclose(ev.gain, [1.0, 2.0, 3.0], atol=1e-14)
    assert np.allclose(ev.h, [0.0, -2.0, 0.0], atol=1e-14)
