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
    mdp, pol, theta = problem
    src = ExactSource(mdp, pol)
    fast, slow = trpo_step(src, theta, delta), trpo_step(PublicOnly(src), theta, delta)
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
