r"""Theorems of the exact core on the paths the discounted theorems do not reach: the finite-horizon natural
gradient and surrogate, the stationary distribution of a sparse chain with transient states, and rewards
given per transition :math:`r(s, a, s')`.

References are written from the model's data alone (:mod:`pgexact.theorems._reference`): the complex-step
gradient of J (backward recursion), forward marginals, the dense Fisher matrix of the explicit score solved by
``numpy.linalg.lstsq`` (SVD, minimum norm), repeated squaring of the dense chain, and a Bellman system on
state-action pairs built from the per-transition reward tensor.

Instances: for the natural gradient and the surrogate, random dense MDPs with 2..6 states and 2..4 actions
(rewards N(0, 1)), finite horizon 2..5 with γ in {0.9, 0.5} (at H = 1 or γ = 1 a dropped :math:`\gamma^t` is
invisible), tabular or linear softmax; for the chains and the per-transition rewards, as their instance
generators state.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import scipy.sparse

from .. import exact
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from . import _reference as ref
from .finite import COMPLEX_REASON, CS_REFERENCE, Problem, _direction, cs_gradient, random_problem
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []


def _finite(rng: np.random.Generator, **kw) -> Problem:
    """Finite horizon 2..5 with γ in {0.9, 0.5}: the time weights γ^t and their sum differ from 1 and H."""
    return random_problem(rng, discounted=False, min_horizon=2, finite_gammas=(0.9, 0.5), **kw)


def _time_weights(pr: Problem, *, discount: bool = True) -> np.ndarray:
    r""":math:`\sum_{t<H}\gamma^t p_t` by forward marginals (``discount=False``: :math:`\sum_t p_t`)."""
    pi = ref.probs(pr.policy, pr.theta)
    H = int(pr.mdp.horizon)
    w = pr.mdp.gamma ** np.arange(H) if discount else np.ones(H)
    return w @ ref.marginals(pr.mdp, pi, H)


# ----------------------------------------------------------------------------- natural gradient, finite horizon
def _lstsq_npg(pr: Problem, *, normalize: bool = True) -> np.ndarray:
    r"""Minimum-norm solution of :math:`F w = \nabla J` by SVD least squares, F the dense Fisher of the explicit
    score under :math:`d = \sum_t\gamma^t p_t / \sum_t\gamma^t` (``normalize=False``: the control, F under
    :math:`\sum_t\gamma^t p_t`)."""
    rho = _time_weights(pr)
    d = rho / rho.sum() if normalize else rho
    F = ref.fisher(pr.policy, pr.theta, d)
    return np.linalg.lstsq(F, cs_gradient(pr), rcond=1e-12)[0]


identity(
    id="npg.finite_horizon",
    statement=r"w = F^+\nabla J,\quad F = E_{s\sim d, a\sim\pi}[\nabla\log\pi\nabla\log\pi^\top],\ "
    r"d = \frac{\sum_{t<H}\gamma^t p_t}{\sum_{t<H}\gamma^t}\ \text{(finite horizon; tabular: "
    r"}w_s = \textstyle\sum_t\gamma^t p_t(s) A_t(s,\cdot)/d(s)\text{, centred)}",
    source="Kakade 2002, Theorem 1 (natural gradient and compatible advantages); Agarwal et al. 2021, Lemma 5.1; "
    "Bagnell & Schneider 2003 (the Fisher metric of an episodic task)",
    reference="numpy.linalg.lstsq (SVD, minimum norm) on the dense Fisher matrix of the explicit score weighted by "
    "the normalized discounted average of forward marginals; right side the complex-step gradient of J (backward "
    "recursion)",
    instance=_finite,
    computed=lambda pr: exact.natural_gradient(pr.mdp, pr.policy, pr.theta),
    expected=_lstsq_npg,
    tolerance=3e-8,
    tolerance_reason="SVD least squares on a Fisher matrix whose nonzero eigenvalues d(s) pi(a|s) reach ~1e-7 on "
    "these instances (parameter scale 3, states of small marginal at short horizons): error ~ cond * eps; measured "
    "residuals <= 2.9e-10 over 200 instances (seed 1), a margin of ~100",
    mutants={
        "Fisher of the unnormalized visitation sum_t gamma^t p_t": lambda pr: _lstsq_npg(pr, normalize=False),
    },
)


# ----------------------------------------------------------------------------- surrogate, finite horizon
def _surrogate_instance(rng: np.random.Generator) -> tuple[Problem, np.ndarray]:
    pr = _finite(rng)
    return pr, pr.theta + 0.5 * rng.standard_normal(pr.policy.n_params)


def _ref_surrogate(pr: Problem, pi_new: np.ndarray, *, discount: bool = True) -> np.ndarray:
    r""":math:`\sum_t\gamma^t\sum_s p_t(s)\sum_a\pi_{new}(a|s)A_t(s,a)` of the old policy, from forward marginals
    and the backward recursion; ``pi_new`` real (S, A) or a complex stack (k, S, A)."""
    pi_old = ref.probs(pr.policy, pr.theta)
    H = int(pr.mdp.horizon)
    w = (pr.mdp.gamma ** np.arange(H) if discount else np.ones(H))[:, None] * ref.marginals(pr.mdp, pi_old, H)
    return np.einsum("ts,...sa,tsa->...", w, pi_new, ref.values(pr.mdp, pi_old).A)


def _surrogate_computed(inst: tuple[Problem, np.ndarray]) -> tuple[np.ndarray, float, float]:
    pr, theta_new = inst
    at_old = exact.surrogate_gradient(pr.mdp, pr.policy, pr.theta, pr.theta)
    at_new = exact.surrogate_gradient(pr.mdp, pr.policy, pr.theta, theta_new) @ _direction(pr)
    value = exact.surrogate(pr.mdp, pr.policy.probs(pr.theta), pr.policy.probs(theta_new))
    return at_old, float(at_new), float(value)


def _surrogate_expected(inst: tuple[Problem, np.ndarray], *, discount: bool = True) -> tuple[np.ndarray, float, float]:
    """∇J by complex steps (at θ' = θ); the complex-step gradient in θ' of the written-out surrogate (θ' ≠ θ); its
    value. ``discount=False``: the control (the γ^t of the time weights dropped)."""
    pr, theta_new = inst
    grad_new = ref.complex_step_gradient(
        lambda X: _ref_surrogate(pr, ref.probs(pr.policy, X), discount=discount), theta_new)
    grad_old = cs_gradient(pr) if discount else ref.complex_step_gradient(
        lambda X: _ref_surrogate(pr, ref.probs(pr.policy, X), discount=False), pr.theta)
    value = _ref_surrogate(pr, ref.probs(pr.policy, theta_new), discount=discount)
    return grad_old, float(grad_new @ _direction(pr)), float(np.real(value))


identity(
    id="surrogate.finite_horizon",
    statement=r"\bar A(\theta') = \sum_{t<H}\gamma^t E_{s\sim p_t}E_{a\sim\pi_{\theta'}}[A_t^{\pi_\theta}(s,a)],\quad "
    r"\nabla_{\theta'}\bar A\big|_{\theta'=\theta} = \nabla J(\theta)",
    source="Schulman et al. 2015, eq. 14 and sec. 3 (finite-horizon form); Kakade & Langford 2002, sec. 4; course "
    "notes 'Advanced Policy Gradients', section 'The Distribution Mismatch Problem'",
    reference=CS_REFERENCE + " (at theta' = theta); complex-step gradient in theta' and value of the surrogate "
    "written out as sum_t gamma^t sum_s p_t(s) sum_a pi_theta'(a|s) A_t(s, a) with forward marginals and the "
    "backward recursion (at theta' != theta)",
    instance=_surrogate_instance,
    computed=_surrogate_computed,
    expected=_surrogate_expected,
    tolerance=1e-12,
    tolerance_reason=COMPLEX_REASON + "; measured residuals <= 1.9e-15 over 200 instances (seed 1), a margin of "
    "~500 (the finite-horizon sums involve no solve)",
    mutants={"gamma^t dropped from the surrogate's time weights": lambda inst: _surrogate_expected(inst, discount=False)},
)


# ----------------------------------------------------------------------------- sparse stationary distribution
@dataclass(frozen=True)
class ChainProblem:
    """A sparse MDP (P of shape (S·A, S)) whose chains have one closed class, its dense tensor, and a policy."""

    mdp: FiniteMDP
    P: np.ndarray
    pi: np.ndarray


def _chain_instance(rng: np.random.Generator) -> ChainProblem:
    """S in 3..8, each (s, a) moving to 1..3 random successors plus state 0 (so every state reaches 0: the class of
    0 is the only closed class); states that 0 does not reach are transient. π a random point of the simplex."""
    S, A = int(rng.integers(3, 9)), int(rng.integers(2, 4))
    P = np.zeros((S, A, S))
    for s in range(S):
        for a in range(A):
            succ = np.append(rng.choice(S, size=int(rng.integers(1, 4)), replace=False), 0)
            np.add.at(P[s, a], succ, rng.dirichlet(np.ones(succ.size)))
    sparse = scipy.sparse.csr_array(P.reshape(S * A, S))
    mdp = FiniteMDP(sparse, rng.standard_normal((S, A)), rng.dirichlet(np.ones(S)), gamma=0.9)
    return ChainProblem(mdp, P, rng.dirichlet(np.ones(A), size=S))


def _power_row(cp: ChainProblem) -> np.ndarray:
    """Row 0 of the dense chain P_pi^(2^60) by repeated squaring (rows renormalized against drift)."""
    return ref.stochastic_power(np.einsum("sa,sat->st", cp.pi, cp.P))[0]


identity(
    id="markov.stationary_sparse",
    statement=r"\nu P_\pi = \nu,\ \textstyle\sum_s\nu(s) = 1,\ \nu = 0 \text{ on transient states (sparse } P)",
    source="Norris, Markov Chains, 1997, Theorem 1.7.7 and sec. 1.5 (closed classes); Levin, Peres & Wilmer, "
    "Markov Chains and Mixing Times, sec. 1.5",
    reference="a row of the dense chain P_pi^(2^60) by repeated squaring (power iteration), not a graph search or "
    "a linear solve",
    instance=_chain_instance,
    computed=lambda cp: exact.stationary_distribution(cp.mdp, cp.pi),
    expected=_power_row,
    tolerance=1e-12,
    tolerance_reason="60 squarings of a stochastic matrix of size <= 8 and a sparse LU of size <= 7: rounding only; "
    "measured residuals <= 2.0e-15 over 200 instances (seeds 0 and 1), a margin of ~500 (the aperiodic closed class mixes "
    "within 2^60 steps: every state moves to 0 with probability >= 1/4 at each step)",
    mutants={
        "right eigenvector (P_pi nu = nu: uniform)": lambda cp: np.full(cp.pi.shape[0], 1.0 / cp.pi.shape[0]),
        "discounted occupancy (gamma = 0.9) called stationary": lambda cp: exact.occupancy(cp.mdp, cp.pi),
    },
)


# ----------------------------------------------------------------------------- per-transition rewards
@dataclass(frozen=True)
class TransitionRewardProblem:
    """An MDP built from a reward tensor r(s, a, s'), the tensor itself, and a policy matrix."""

    mdp: FiniteMDP
    r3: np.ndarray
    pi: np.ndarray


def _transition_reward_instance(rng: np.random.Generator) -> TransitionRewardProblem:
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    base = random_mdp(S, A, gamma=float(rng.uniform(0.3, 0.95)), seed=rng)
    r3 = rng.standard_normal((S, A, S))
    mdp = FiniteMDP(np.asarray(base.P), r3, base.mu0, gamma=base.gamma)
    return TransitionRewardProblem(mdp, r3, rng.dirichlet(np.ones(A), size=S))


def _pair_bellman_q(tp: TransitionRewardProblem, *, reward: np.ndarray | None = None) -> tuple[np.ndarray, float]:
    r"""Q and J from the Bellman system on state-action pairs,
    :math:`Q(s,a) = \sum_{s'}P(s'|s,a)\big[r(s,a,s') + \gamma\sum_{a'}\pi(a'|s')Q(s',a')\big]`, one dense solve of
    size S·A (never the state system of the library); ``reward``: the (S, A) expected reward to use instead
    (the control)."""
    P = np.asarray(tp.mdp.P)
    S, A = tp.pi.shape
    expected_reward = (P * tp.r3).sum(axis=2) if reward is None else reward
    pair_chain = np.einsum("sat,tb->satb", P, tp.pi).reshape(S * A, S * A)
    Q = np.linalg.solve(np.eye(S * A) - tp.mdp.gamma * pair_chain, expected_reward.reshape(-1)).reshape(S, A)
    return Q, float(tp.mdp.mu0 @ np.sum(tp.pi * Q, axis=1))


def _library_q(tp: TransitionRewardProblem) -> tuple[np.ndarray, float]:
    ev = exact.evaluate(tp.mdp, tp.pi)
    return ev.Q, ev.J


identity(
    id="bellman.transition_reward",
    statement=r"r(s,a) = \sum_{s'}P(s'|s,a)\,r(s,a,s'),\quad Q(s,a) = \sum_{s'}P(s'|s,a)\big[r(s,a,s') + "
    r"\gamma V(s')\big]",
    source="Puterman 1994, sec. 2.1.2 and 4.2 (rewards that depend on the next state: their expectation); "
    "Sutton & Barto 2018, eq. 3.6",
    reference="a dense solve of the Bellman system on state-action pairs, with the per-transition reward tensor "
    "averaged under P inside it (not the state system of pgexact.evaluate)",
    instance=_transition_reward_instance,
    computed=_library_q,
    expected=_pair_bellman_q,
    tolerance=1e-12,
    tolerance_reason="two dense solves of condition <= (1+gamma)/(1-gamma) <= 39 on values <= ~60: measured "
    "residuals <= 2.5e-15 over 200 instances (seeds 0 and 1), a margin of ~400",
    mutants={"r(s, a, s') averaged uniformly over s' instead of under P": lambda tp: _pair_bellman_q(
        tp, reward=tp.r3.mean(axis=2))},
)
