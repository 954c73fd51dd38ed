"""The exact oracle's private fast paths (used by trpo_step) against its public methods.

The fast paths compute the same arithmetic with fewer checks and shared intermediate arrays, so
the agreement asserted here is exact (bit for bit), not to a tolerance. (The public Fisher-vector
product validates its argument and calls the unchecked one: the exact core guards it, in
tests/test_updates.py.)
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

import pgexact as pe
import pgexact.updates.sources as sources
from pgexact.mdps import random_mdp
from pgexact.testing import policy_problems
from pgexact.updates import ExactSource, trpo_step


class PublicOnly:
    """A source whose oracles expose only the public methods of the exact oracle."""

    def __init__(self, inner):
        self.inner, self.policy = inner, inner.policy

    def at(self, theta, seed=None):
        o = self.inner.at(theta)

        class Oracle:
            policy, theta, gradient, batch, pi, J = o.policy, o.theta, o.gradient, o.batch, o.pi, o.J
            fisher_vector_product = staticmethod(o.fisher_vector_product)
            natural_gradient = staticmethod(o.natural_gradient)
            surrogate = staticmethod(o.surrogate)
            kl = staticmethod(o.kl)

        return Oracle()


@settings(max_examples=40, deadline=None)
@given(policy_problems(), st.integers(0, 2**31 - 1))
def test_fast_paths_equal_public_methods(problem, seed):
    mdp, pol, theta = problem
    rng = np.random.default_rng(seed)
    oracle = ExactSource(mdp, pol).at(theta)
    for scale in (1e-3, 0.3, 3.0):
        cand = theta + scale * rng.standard_normal(pol.n_params)
        kl, surrogate = oracle._kl_and_surrogate(cand)
        assert kl == oracle.kl(cand) and surrogate() == oracle.surrogate(cand)
    # the natural gradient on the oracle's evaluation is the exact core's
    assert np.array_equal(oracle.natural_gradient(), pe.natural_gradient(mdp, pol, theta))


@settings(max_examples=30, deadline=None)
@given(policy_problems(), st.sampled_from([1e-3, 0.05, 1.0]))
def test_trpo_step_is_the_same_through_public_methods(problem, delta):
    """With the structured Fisher-vector product in CG, the fast paths change no bit."""
    mdp, pol, theta = problem
    src = ExactSource(mdp, pol)
    saved = sources._DENSE_FISHER_MAX_PARAMS
    sources._DENSE_FISHER_MAX_PARAMS = 0  # CG on the structured product, as the public path
    try:
        fast = trpo_step(src, theta, delta)
    finally:
        sources._DENSE_FISHER_MAX_PARAMS = saved
    slow = trpo_step(PublicOnly(src), theta, delta)
    assert fast.accepted == slow.accepted and fast.message == slow.message
    assert np.array_equal(fast.theta, slow.theta) and np.array_equal(fast.direction, slow.direction)
    assert (fast.cg_iterations, fast.n_backtracks) == (slow.cg_iterations, slow.n_backtracks)
    assert fast.kl == slow.kl or (np.isnan(fast.kl) and np.isnan(slow.kl))


def test_replaced_methods_are_honoured():
    """An oracle whose public kl is replaced is asked through it, not through the fast path."""
    mdp, pol = pe.mdps.random_mdp(4, 3, gamma=0.9, seed=0), pe.TabularSoftmax(4, 3)
    calls = []

    class Counting(ExactSource):
        def at(self, theta, seed=None):
            o = super().at(theta)
            inner = o.kl
            o.kl = lambda t: calls.append(1) or inner(t)
            return o

    res = trpo_step(Counting(mdp, pol), np.zeros(12), 0.01)
    assert res.accepted and len(calls) == res.n_backtracks + 1


@settings(max_examples=40, deadline=None)
@given(policy_problems(), st.integers(0, 2**31 - 1))
def test_dense_cg_operator_is_the_fisher_vector_product(problem, seed):
    mdp, pol, theta = problem
    oracle = ExactSource(mdp, pol).at(theta)
    op = oracle._cg_operator()
    n = pol.n_params
    if isinstance(pol, pe.TabularSoftmax) and n <= sources._DENSE_FISHER_MAX_PARAMS:
        # column j is the structured product of e_j, bit for bit
        F = np.column_stack([op(e) for e in np.eye(n)])
        assert np.array_equal(F, np.column_stack([oracle.fisher_vector_product(e) for e in np.eye(n)]))
    v = np.random.default_rng(seed).standard_normal(n)
    ref = oracle.fisher_vector_product(v)
    # both are sums of n terms of size <= max|F_ij| |v_j|, each rounded: |difference| is at most
    # about 2 n eps max|F_ij| |v|_1 (factor 4 for the centring subtractions)
    F_max = max(np.max(np.abs(oracle.fisher_vector_product(e))) for e in np.eye(n))
    assert np.max(np.abs(op(v) - ref)) <= 4 * n * np.finfo(float).eps * F_max * np.sum(np.abs(v))


def test_trpo_step_with_the_dense_operator_agrees_to_rounding():
    """The benchmark instance (S = 10, A = 4): dense and structured CG give the same step."""
    mdp, pol = random_mdp(10, 4, gamma=0.9, seed=0), pe.TabularSoftmax(10, 4)
    theta = np.random.default_rng(1).standard_normal(40)
    src = ExactSource(mdp, pol)
    assert 40 <= sources._DENSE_FISHER_MAX_PARAMS  # the dense operator is used here
    dense = trpo_step(src, theta, 0.01)
    structured = trpo_step(PublicOnly(src), theta, 0.01)
    assert dense.accepted and structured.accepted
    assert (dense.cg_iterations, dense.n_backtracks) == (structured.cg_iterations, structured.n_backtracks)
    # CG reaches rtol 1e-10 on both: the directions agree to ~1e-10 relative at worst
    assert np.linalg.norm(dense.direction - structured.direction) <= 1e-9 * np.linalg.norm(structured.direction)
    assert dense.cg_residual <= 1e-9 and structured.cg_residual <= 1e-9
