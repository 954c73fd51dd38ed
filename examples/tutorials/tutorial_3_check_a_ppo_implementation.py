"""
Check a PPO implementation step by step
=======================================

A PPO update is a handful of lines — ratio, clip, minimum, gradient ascent — and each is a place
for a silent mistake (the clip bounds swapped, the advantage sign, the state weighting, a
missing ratio in the gradient). With the *exact batch* — every state-action pair, weighted by the
old policy's discounted occupancy, with exact advantages — PPO becomes a deterministic function
of θ, and every intermediate quantity has a closed form in pgexact to compare with:

1. the clipped objective at θ_old is 0 and its gradient is the exact ∇J;
2. inside the clip range the clipped objective *is* the surrogate L_π(π′) − J(π);
3. after the update, the new θ equals pgexact's own :func:`pgexact.updates.ppo_update` on an
   :class:`pgexact.ExactSource` to rounding, and the true improvement J(π′) − J(π) matches the
   surrogate up to the performance-difference gap.

The implementation below follows CleanRL's ``ppo.py`` (``pg_loss = max(−A·r, −A·clip(r))``,
minimized), written in numpy for a tabular softmax policy.
"""

import numpy as np

import pgexact as pg
from pgexact.mdps import random_mdp
from pgexact.updates import ppo_update

mdp = random_mdp(5, 3, gamma=0.9, seed=0)
policy = pg.TabularSoftmax(5, 3)
theta_old = 0.5 * np.random.default_rng(1).standard_normal(policy.n_params)
pi_old = policy.probs(theta_old)
ev = pg.evaluate(mdp, pi_old)

# the exact batch: all (s, a), weight d_old(s) π_old(a|s) / (1 − γ), exact advantage
S, A = pi_old.shape
weights = (ev.d[:, None] * pi_old / (1 - mdp.gamma)).reshape(-1)
adv = ev.A.reshape(-1)
states, actions = np.divmod(np.arange(S * A), A)


# %%
# A CleanRL-style PPO in numpy
# ----------------------------


def ppo_loss_and_grad(theta, clip):
    """CleanRL's pg_loss (to minimize) with the exact batch, and its gradient in θ."""
    pi = policy.probs(theta)
    ratio = pi[states, actions] / pi_old[states, actions]
    unclipped, clipped = -adv * ratio, -adv * np.clip(ratio, 1 - clip, 1 + clip)
    loss = np.sum(weights * np.maximum(unclipped, clipped))
    active = unclipped >= clipped  # where the unclipped term is the maximum, it carries gradient
    coef = np.where(active, -weights * adv * ratio, 0.0)  # d loss / d log π(a|s)
    grad = np.zeros((S, A))
    np.add.at(grad, (states, actions), coef)
    np.add.at(grad, states, -coef[:, None] * pi[states])  # tabular score 1[b = a] − π(b|s)
    return loss, grad.reshape(-1)


def my_ppo_update(theta, clip=0.2, lr=0.5, epochs=10):
    for _ in range(epochs):
        theta = theta - lr * ppo_loss_and_grad(theta, clip)[1]
    return theta


# %%
# Step 1 — at θ_old: objective 0, gradient ∇J
# -------------------------------------------
# The objective here is −pg_loss minus the constant Σ w A (which is 0 for the exact batch).

loss, grad = ppo_loss_and_grad(theta_old, 0.2)
exact_grad = pg.policy_gradient(mdp, policy, theta_old)
print(f"objective at θ_old: {-loss:.2e}  (exact: 0)")
print(f"max |∇ − ∇J| at θ_old: {np.max(np.abs(-grad - exact_grad)):.2e}")
assert abs(loss) < 1e-12 and np.allclose(-grad, exact_grad, rtol=1e-10, atol=1e-12)

# %%
# Step 2 — inside the clip range the objective is the surrogate
# -------------------------------------------------------------

theta_near = theta_old + 0.01 * np.random.default_rng(2).standard_normal(policy.n_params)
loss_near, _ = ppo_loss_and_grad(theta_near, clip=0.5)
surrogate = pg.surrogate(mdp, pi_old, policy.probs(theta_near))
print(f"clipped objective {-loss_near:.12f}  surrogate {surrogate:.12f}")
assert abs(-loss_near - surrogate) < 1e-12

# %%
# Step 3 — the whole update against pgexact's exact twin
# ------------------------------------------------------

mine = my_ppo_update(theta_old)
reference = ppo_update(pg.ExactSource(mdp, policy), theta_old, clip=0.2, lr=0.5, epochs=10)
print(f"max |θ_mine − θ_pgexact| = {np.max(np.abs(mine - reference.theta)):.2e}")
assert np.allclose(mine, reference.theta, rtol=1e-10, atol=1e-12)

gain = pg.evaluate(mdp, policy.probs(mine)).J - ev.J
print(f"true improvement J(π') − J(π) = {gain:.6f}, surrogate = {reference.surrogate_improvement:.6f}")

# %%
# A swapped clip — ``np.clip(r, 1 + ε, 1 − ε)`` — returns 1 − ε for every ratio (numpy applies the
# upper bound last), so the objective is wrong everywhere and Step 1 already fails: its value at
# θ_old is −ε Σ w A⁺ < 0 instead of 0.

ratio = np.ones(S * A)
swapped = np.sum(weights * np.minimum(adv * ratio, adv * np.clip(ratio, 1.2, 0.8)))
print(f"objective at θ_old with the clip bounds swapped: {swapped:.4f} = −0.2 Σ w A⁺ = "
      f"{-0.2 * np.sum(weights * np.maximum(adv, 0)):.4f}")
