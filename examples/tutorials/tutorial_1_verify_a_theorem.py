"""
Verify a theorem of your own
============================

A theorem in pgexact is data: a statement, a source, a generator of random instances, two
*independent* computations that the theorem says are equal, a tolerance with its reason, and at
least one *negative control* — the same computation with a plausible mistake — that the check
must reject. This tutorial registers one and runs it the way ``pgexact verify`` does.

The claim: for a discounted MDP and a softmax policy, the directional derivative of J along any
direction v equals the policy gradient theorem's ∇J · v. The closed form is
:func:`pgexact.policy_gradient`; the independent reference differentiates the *value* J by
Richardson-extrapolated central differences (it shares only the model's data with the closed
form). The mutant drops the factor 1/(1 − γ) of the occupancy form — the most common slip.
"""

import numpy as np

import pgexact as pg
from pgexact.mdps import random_mdp
from pgexact.theorems.registry import CONTROL_FACTOR, identity

# %%
# Instances and the two computations
# ----------------------------------


def instance(rng):
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=float(rng.uniform(0.5, 0.95)), seed=rng)
    policy = pg.TabularSoftmax(S, A)
    theta = rng.standard_normal(policy.n_params)
    v = rng.standard_normal(policy.n_params)
    return mdp, policy, theta, v


def closed_form(inst):
    mdp, policy, theta, v = inst
    return pg.policy_gradient(mdp, policy, theta) @ v


def richardson_derivative(inst, h=1e-3):
    """Fourth-order central difference of J(θ + εv) at ε = 0: error O(h⁴) ≈ 1e-12 relative."""
    mdp, policy, theta, v = inst

    def J(eps):
        return pg.evaluate(mdp, policy.probs(theta + eps * v)).J

    d1 = (J(h) - J(-h)) / (2 * h)
    d2 = (J(h / 2) - J(-h / 2)) / h
    return (4 * d2 - d1) / 3


def dropped_normalization(inst):
    mdp = inst[0]
    return (1 - mdp.gamma) * closed_form(inst)


theorem = identity(
    id="tutorial.directional_derivative",
    statement=r"\nabla J(\theta)\cdot v = \frac{d}{d\epsilon} J(\theta + \epsilon v)\big|_{\epsilon=0}",
    source="Sutton et al. (2000), Theorem 1",
    reference="Richardson-extrapolated central differences of J",
    instance=instance,
    computed=closed_form,
    expected=richardson_derivative,
    tolerance=1e-7,
    tolerance_reason="truncation O(h^4) ~ 1e-12 plus rounding eps*|J|/h ~ 1e-10 of the difference quotient",
    mutants={"dropped 1/(1-gamma)": dropped_normalization},
)

# %%
# Run it on random instances, with its negative control
# -----------------------------------------------------
# A theorem passes when every residual is within its tolerance; the control is *rejected* on an
# instance when its residual is at least ``CONTROL_FACTOR`` times the tolerance. The fraction of
# instances on which it is rejected is the check's measured power.

rng = np.random.default_rng(0)
residuals, rejected = [], []
for _ in range(30):
    inst = theorem.instance(rng)
    residuals.append(theorem.outcome(inst).residual)
    rejected.append(theorem.controls[0].residual(inst) >= CONTROL_FACTOR * theorem.tolerance)

print(f"max residual {max(residuals):.2e} (tolerance {theorem.tolerance:g})")
print(f"control '{theorem.controls[0].name}' rejected on {np.mean(rejected):.0%} of instances")
assert max(residuals) <= theorem.tolerance and np.mean(rejected) >= 0.9

# %%
# The registered theorem now runs with the others: ``pgexact verify --only tutorial`` in the
# same process, or :func:`pgexact.theorems.get` by id.
from pgexact.theorems import get

print(get("tutorial.directional_derivative").reference)
