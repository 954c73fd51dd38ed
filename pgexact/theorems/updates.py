r"""Theorems about policy optimization updates: NPG, TRPO, PPO, policy iteration, soft PI.

Each residual compares an update of :mod:`pgexact.updates` with a reference written from the
model's data (:mod:`pgexact.theorems._reference`): the multiplicative-weights form of the tabular
NPG step, the dense Fisher matrix built from the explicit score, KL divergences written out from
log-probabilities, value functions by dense LU solves, the clipped objective row by row in
scalar Python, Richardson differences of the clipped objective's value.

Instances: random dense discounted MDPs with 2..6 states, 2..4 actions, rewards N(0, 1),
γ in [0.2, 0.95] (narrower where a theorem says so), tabular softmax parameters N(0, σ²) with
σ in {0.5, 1, 3}, clipped to [-5, 5] so that every action keeps probability above
:math:`e^{-10}/A` (the closed forms then hold on the whole support). The TRPO lower bounds are
checked on a family of MDPs on which they nearly bind (see :func:`_binding_problem`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from .. import exact
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import TabularSoftmax
from ..updates import (
    ExactSource,
    clipped_objective,
    npg_step,
    pg_step,
    policy_iteration,
    soft_improve,
    soft_policy_iteration,
    soft_value_iteration,
    trpo_step,
    value_iteration,
)
from . import _reference as ref
from .finite import CS_REFERENCE, cs_gradient
from .registry import identity, inequality

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references below serve
#: those theorems and the tests.
__all__: list[str] = []

ROUNDING_TOL = 1e-9
ROUNDING_REASON = (
    "rounding in O(S^3) linear solves of condition number <= (1+gamma)/(1-gamma) <= 39 "
    "(observed residuals ~1e-14)"
)


@dataclass(frozen=True)
class UpdateProblem:
    """A discounted MDP, a tabular softmax policy, old and new parameters, and a scalar knob."""

    mdp: FiniteMDP
    policy: TabularSoftmax
    theta: np.ndarray
    theta_new: np.ndarray
    knob: float
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def once(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` computed once per instance (the update under test, shared by both sides)."""
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]


def _problem(
    rng: np.random.Generator,
    *,
    gamma_range: tuple[float, float] = (0.2, 0.95),
    knobs: tuple[float, ...] = (1e-4, 1e-2, 0.1, 0.5, 2.0),
    moves: tuple[float, ...] = (0.01, 0.1, 1.0, 5.0),
) -> UpdateProblem:
    S = int(rng.integers(2, 7))
    A = int(rng.integers(2, 5))
    mdp = random_mdp(S, A, gamma=float(rng.uniform(*gamma_range)), seed=rng)
    pol = TabularSoftmax(S, A)
    theta = np.clip(float(rng.choice([0.5, 1.0, 3.0])) * rng.standard_normal(pol.n_params), -5, 5)
    theta_new = theta + float(rng.choice(moves)) * rng.standard_normal(pol.n_params)
    knob = float(rng.choice(knobs))
    return UpdateProblem(mdp, pol, theta, theta_new, knob)


def _scale(mdp: FiniteMDP) -> float:
    return max(1.0, float(np.max(np.abs(mdp.r))) / (1.0 - mdp.gamma))


def _ref_fisher(pr: UpdateProblem) -> np.ndarray:
    pi = ref.probs(pr.policy, pr.theta)
    return ref.fisher(pr.policy, pr.theta, ref.occupancy(pr.mdp, pi))


def _ref_kl(pr: UpdateProblem, theta_new: np.ndarray) -> float:
    """E_{s~d_old} KL(pi_old || pi_new), written out from log-probabilities, d_old by an LU solve."""
    d = ref.occupancy(pr.mdp, ref.probs(pr.policy, pr.theta))
    return float(d @ ref.kl_per_state(ref.log_probs(pr.policy, pr.theta), ref.log_probs(pr.policy, theta_new)))


# ----------------------------------------------------------------------------- NPG
def _mw_policy(pr: UpdateProblem, normalization: bool = True) -> np.ndarray:
    r""":math:`\pi'(a|s) \propto \pi(a|s)\exp(\eta A(s,a)/(1-\gamma))` with A by an LU solve."""
    pi = ref.probs(pr.policy, pr.theta)
    A = ref.values(pr.mdp, pi).A
    logits = np.log(pi) + pr.knob * A / ((1.0 - pr.mdp.gamma) if normalization else 1.0)
    e = np.exp(logits - logits.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


identity(
    id="updates.npg_tabular_closed_form",
    statement=r"\theta' = \theta + \eta F^+\nabla J \;\Rightarrow\; \pi'(a|s) \propto \pi(a|s)\exp\left(\frac{\eta A^{\pi}(s,a)}{1-\gamma}\right)",
    source="Kakade 2002, Theorem 1; Agarwal et al. 2021, Lemma 5.1 (tabular softmax NPG); course notes 'Advanced Policy Gradients', section 'Natural Policy Gradient'",
    reference="the multiplicative-weights policy pi exp(eta A/(1-gamma)) normalized, with A by a dense LU solve; "
    "compared as probabilities (the parameters are defined up to a per-state shift)",
    instance=_problem,
    computed=lambda pr: ref.probs(pr.policy, pr.once("npg", lambda: npg_step(ExactSource(pr.mdp, pr.policy), pr.theta, lr=pr.knob)).theta),
    expected=_mw_policy,
    tolerance=1e-12,
    tolerance_reason=ROUNDING_REASON
    + '; measured residuals <= 3.1e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~325 and rejects a relative mistake of 1e-10',
    mutants={"eta A instead of eta A/(1-gamma)": lambda pr: _mw_policy(pr, normalization=False)},
)


def _npg_quadratic(pr: UpdateProblem) -> float:
    res = pr.once("npg", lambda: npg_step(ExactSource(pr.mdp, pr.policy), pr.theta, pr.knob))
    if res.stationary:
        return pr.knob
    h = res.theta - pr.theta
    return 0.5 * float(h @ _ref_fisher(pr) @ h)


identity(
    id="updates.npg_quadratic_kl",
    statement=r"\alpha = \sqrt{2\delta / \nabla J^\top F^+ \nabla J} \;\Rightarrow\; "
    r"\tfrac12 (\theta'-\theta)^\top F (\theta'-\theta) = \delta",
    source="Schulman et al. 2015, Appendix C; Achiam 2017 (NPG step size from the quadratic KL model)",
    reference="the quadratic form with the dense Fisher matrix built from the explicit score and the LU occupancy, "
    "against the radius delta",
    instance=_problem,
    computed=_npg_quadratic,
    expected=lambda pr: pr.knob,
    tolerance=1e-12,
    tolerance_reason="relative error of a quadratic form with a dense Fisher matrix: rounding only"
    + '; measured residuals <= 5.1e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~194 and rejects a relative mistake of 1e-10',
    mutants={
        "step size sqrt(delta / g^T F^+ g) (factor 2 missing)": lambda pr: _npg_quadratic(pr) / 2,
        "Fisher weighted by d/(1-gamma)": lambda pr: _npg_quadratic(pr) / (1.0 - pr.mdp.gamma),
    },
    floor=1e-300,
)


# ----------------------------------------------------------------------------- TRPO
def _trpo(pr: UpdateProblem):
    return pr.once("trpo", lambda: trpo_step(ExactSource(pr.mdp, pr.policy), pr.theta, pr.knob))


#: Reported CG residuals below this make the direction comparable with the minimum-norm solution F^+ g.
CG_CONVERGED = 1e-10


def _trpo_full_step(pr: UpdateProblem, factor: float = 2.0) -> tuple[np.ndarray, float, np.ndarray]:
    """(accepted parameters, reported CG residual, CG direction) of pgexact's trpo_step; ``factor`` 1 rebuilds the
    accepted parameters with beta0 = sqrt(delta / x^T F x) (the control)."""
    res = _trpo(pr)
    theta = res.theta
    if factor != 2.0 and res.accepted:
        theta = pr.theta + np.sqrt(factor / 2.0) * res.full_step_size * 0.5**res.n_backtracks * res.direction
    return theta, res.cg_residual, res.direction


def _ref_surrogate_improvement(pr: UpdateProblem, theta_new: np.ndarray) -> float:
    """sum_s rho_old(s) sum_a pi_new(a|s) A_old(s, a): the surrogate's improvement, from a dense LU solve."""
    pi = ref.probs(pr.policy, pr.theta)
    rho = ref.occupancy(pr.mdp, pi) / (1.0 - pr.mdp.gamma)
    return float(np.einsum("s,sa,sa->", rho, ref.probs(pr.policy, theta_new), ref.values(pr.mdp, pi).A))


def _trpo_reference(pr: UpdateProblem) -> tuple[np.ndarray, float, np.ndarray]:
    r"""The TRPO step rebuilt from references along the library's direction x (an input here, like the model):
    :math:`\beta_0 = \sqrt{2\delta/x^\top Fx}` with the dense Fisher, the first k with the written-out KL <= δ and
    surrogate > 0; the CG residual :math:`\|Fx - g\|/\|g\|` with g by complex steps; and, where the reported residual
    is below :data:`CG_CONVERGED`, x against the minimum-norm solution :math:`F^+g` (SVD least squares). A candidate
    whose KL lies within 1e-9 δ of δ is a tie that rounding decides: the library's k is used there."""
    res = _trpo(pr)
    x = res.direction
    F = _ref_fisher(pr)
    g = cs_gradient(pr)
    gnorm = float(np.linalg.norm(g))
    residual = float(np.linalg.norm(F @ x - g)) / gnorm if gnorm > 0 else 0.0
    x_expected = np.linalg.lstsq(F, g, rcond=1e-12)[0] if res.cg_residual <= CG_CONVERGED else x
    xFx = float(x @ F @ x)
    if not (gnorm > 0 and xFx > 0):
        return pr.theta, residual, x_expected
    full = np.sqrt(2.0 * pr.knob / xFx)
    for k in range(21):
        cand = pr.theta + full * 0.5**k * x
        kl = _ref_kl(pr, cand)
        if abs(kl - pr.knob) <= 1e-9 * pr.knob and res.accepted:
            return pr.theta + full * 0.5**res.n_backtracks * x, residual, x_expected
        if kl <= pr.knob and _ref_surrogate_improvement(pr, cand) > 0.0:
            return cand, residual, x_expected
    return pr.theta, residual, x_expected


def _trpo_instance(rng: np.random.Generator) -> UpdateProblem:
    return _problem(rng, gamma_range=(0.8, 0.95), knobs=(1e-3, 1e-2, 0.05))


identity(
    id="updates.trpo_full_step",
    statement=r"F x \approx \nabla J\ (\texttt{cg\_residual} = \|Fx - \nabla J\|/\|\nabla J\|,\ x = F^+\nabla J "
    r"\text{ when converged}),\ \beta_0 = \sqrt{2\delta / x^\top F x},\ \theta' = \theta + \beta_0 2^{-k} x,\ "
    r"k = \min\{k : E_{d_{old}}KL(\pi_\theta\|\pi_{\theta'}) \le \delta,\ \bar A(\theta') > 0\}",
    source="Schulman et al. 2015, Appendix C (conjugate-gradient direction, full step of the quadratic trust region, "
    "then backtracking on the exact constraint)",
    reference="the dense Fisher built from the explicit score and g by complex steps (the CG residual, and F^+ g by SVD "
    "least squares where CG converged); the full step and the backtracking redone along the library's direction on "
    "the KL and the surrogate written out from log-probabilities and LU solves, never the library's reported step "
    "size, number of halvings or parameters",
    instance=_trpo_instance,
    computed=_trpo_full_step,
    expected=_trpo_reference,
    tolerance=1e-7,
    tolerance_reason="the parameters agree to rounding (~1e-15); the CG residual is compared in absolute terms "
    "(floor 1) and the direction only where CG converged to 1e-10 relative residual, an error of 1e-10 times the "
    "Fisher's condition on its range: measured residuals <= 2.3e-10 (seed 0) and 9.9e-10 (seed 1) over 200 "
    "instances each, a margin of ~100",
    mutants={"full step sqrt(delta / x^T F x) (factor 2 missing)": lambda pr: _trpo_full_step(pr, factor=1.0)},
)


def _trpo_kl(pr: UpdateProblem) -> float:
    res = _trpo(pr)
    if not res.accepted:
        return 0.0 if np.array_equal(res.theta, pr.theta) else float("inf")
    return _ref_kl(pr, res.theta)


inequality(
    id="updates.trpo_step_feasible",
    statement=r"\text{accepted TRPO step} \Rightarrow E_{s\sim d_{old}} KL(\pi_{old}(\cdot|s)\|\pi_{new}(\cdot|s)) \le \delta"
    r"\text{; rejected} \Rightarrow \theta_{new} = \theta_{old}",
    source="Schulman et al. 2015, sec. 6 and eq. 12 (line search on the exact constraint)",
    reference="the KL written out from log-probabilities, weighted by the occupancy of a dense LU solve "
    "(the line search uses the library's KL)",
    instance=_trpo_instance,
    lhs=_trpo_kl,
    rhs=lambda pr: pr.knob,
    tolerance=ROUNDING_TOL,
    tolerance_reason="an inequality between a KL and the radius; rounding only",
    mutants={"KL weighted by d/(1-gamma) instead of d": (lambda pr: _trpo_kl(pr) / (1.0 - pr.mdp.gamma), None)},
    floor=1e-300,
)


def _binding_problem(rng: np.random.Generator) -> UpdateProblem:
    r"""An MDP on which the TRPO bound binds up to a factor :math:`(1-\gamma)^2`.

    From s₀ (reward 0) action 0 leads to y and action 1 to x; x and y have rewards ±ε on their
    two actions and lead to an absorbing state z. π is uniform; π' moves probability α towards
    action 1 in s₀ and in x and towards action 0 in y, so :math:`D_{TV}^{max} = α`,
    :math:`\max|A_\pi| = ε`, :math:`L_\pi(\pi') = J(\pi) = 0` and
    :math:`J(\pi') = -4γα^2ε`: the bound :math:`J(\pi') \ge L - 4εγα^2/(1-γ)^2` holds with ratio
    :math:`(1-γ)^2`. States are relabelled at random; γ in [0.01, 0.1]. With two uniform actions
    shifted by α, :math:`D_{KL} = -\tfrac12\log(1-4α^2) \approx 2α^2`: Pinsker nearly binds too.
    """
    S, A = 4, 2
    perm = rng.permutation(S)  # perm[k] = label of state k (0: s0, 1: x, 2: y, 3: z)
    s0, x, y, z = (int(perm[k]) for k in range(4))
    eps = float(rng.uniform(1.0, 10.0))
    alpha = float(rng.uniform(0.05, 0.4))
    P = np.zeros((S, A, S))
    P[s0, 0, y] = P[s0, 1, x] = 1.0
    P[x, :, z] = P[y, :, z] = P[z, :, z] = 1.0
    r = np.zeros((S, A))
    r[x] = r[y] = (eps, -eps)
    mdp = FiniteMDP(P, r, np.eye(S)[s0], gamma=float(rng.uniform(0.01, 0.1)))
    pol = TabularSoftmax(S, A)
    logit = np.log((0.5 + alpha) / (0.5 - alpha))
    theta_new = np.zeros((S, A))
    theta_new[s0, 1] = theta_new[x, 1] = theta_new[y, 0] = logit
    return UpdateProblem(mdp, pol, np.zeros(S * A), theta_new.reshape(-1), 0.0)


def _multistep_binding_problem(rng: np.random.Generator) -> UpdateProblem:
    r"""An MDP on which the TRPO TV bound binds up to :math:`1/(1 + \gamma\kappa)`, at any γ.

    Two states, three actions. From g (the start) actions 0 and 1 stay in g with rewards ∓ε and
    action 2 leaves for the absorbing state b with reward ε; in b actions 0, 1, 2 have rewards ε,
    −ε, 0. π plays actions 0 and 1 with probability ½ each (action 2 with probability 1e-12), so
    :math:`V^\pi = 0` and :math:`A^\pi = \pm\varepsilon` on them and ε on leaving. π' moves
    :math:`\alpha = \kappa(1-\gamma)` of the mass of action 0 to action 2 in g and of action 0 to action 1
    in b: :math:`D_{TV}^{max} = \alpha`, :math:`E_{\pi'}A = 2\alpha\varepsilon` in g and
    :math:`-2\alpha\varepsilon` in b, and π' leaves g at rate α, so the state distributions drift
    apart by :math:`1-(1-\alpha)^t` at time t (linearly, as in the bound's proof) and

    .. math:: L_\pi(\pi') - J(\pi') = 4\alpha\varepsilon\sum_t\gamma^t(1-(1-\alpha)^t)
        = \frac{4\varepsilon\gamma\alpha^2}{(1-\gamma)(1-\gamma+\gamma\alpha)}
        = \frac{4\varepsilon\gamma\alpha^2}{(1-\gamma)^2}\cdot\frac{1}{1+\gamma\kappa}.

    γ in [0.5, 0.95] and κ in [0.01, 0.1]: ratio ≥ 0.91, and a bound with :math:`(1-\gamma)^{-1}` in place
    of :math:`(1-\gamma)^{-2}` fails by a factor :math:`1/((1-\gamma)(1+\gamma\kappa)) \ge 1.8`. States are
    relabelled at random.
    """
    S, A = 2, 3
    g, b = (0, 1) if rng.integers(2) else (1, 0)
    gamma = float(rng.uniform(0.5, 0.95))
    eps = float(rng.uniform(1.0, 10.0))
    alpha = float(rng.uniform(0.01, 0.1)) * (1.0 - gamma)
    P = np.zeros((S, A, S))
    P[g, 0, g] = P[g, 1, g] = P[g, 2, b] = 1.0
    P[b, :, b] = 1.0
    r = np.zeros((S, A))
    r[g] = (-eps, eps, eps)
    r[b] = (eps, -eps, 0.0)
    mdp = FiniteMDP(P, r, np.eye(S)[g], gamma=gamma)
    old, new = np.zeros((S, A)), np.zeros((S, A))
    old[g] = old[b] = np.log([0.5, 0.5, 1e-12])
    new[g] = np.log([0.5 - alpha, 0.5, alpha])
    new[b] = np.log([0.5 - alpha, 0.5 + alpha, 1e-12])
    return UpdateProblem(mdp, TabularSoftmax(S, A), old.reshape(-1), new.reshape(-1), 0.0)


@dataclass(frozen=True)
class BoundProblems:
    """A random instance (the bound's generality) and a near-binding one (its constants), checked together."""

    random: UpdateProblem
    binding: UpdateProblem


def _bound_problems(binding: Callable[[np.random.Generator], UpdateProblem]):
    def instance(rng: np.random.Generator) -> BoundProblems:
        return BoundProblems(_problem(rng, gamma_range=(0.2, 0.95), moves=(0.1, 1.0)), binding(rng))

    return instance


def _bound_gap(pr: UpdateProblem) -> float:
    """L_pi(pi') - J(pi') from the library: J(pi) + surrogate - J(pi')."""
    pi_old, pi_new = pr.policy.probs(pr.theta), pr.policy.probs(pr.theta_new)
    return exact.evaluate(pr.mdp, pi_old).J + exact.surrogate(pr.mdp, pi_old, pi_new) - exact.evaluate(pr.mdp, pi_new).J


def _positive_gap(pr: UpdateProblem) -> float:
    """max(L - J(pi'), 0): equivalent in the bound (its right side is >= 0), and a ratio stays defined when
    the new policy beats its surrogate."""
    return max(_bound_gap(pr), 0.0)


def _bound_constant(pr: UpdateProblem, factor: float = 4.0, power: float = 2.0) -> float:
    A = ref.values(pr.mdp, ref.probs(pr.policy, pr.theta)).A
    return factor * float(np.max(np.abs(A))) * pr.mdp.gamma / (1.0 - pr.mdp.gamma) ** power


def _tv_max(pr: UpdateProblem) -> float:
    return float(np.max(0.5 * np.abs(ref.probs(pr.policy, pr.theta_new) - ref.probs(pr.policy, pr.theta)).sum(axis=1)))


def _kl_max(pr: UpdateProblem) -> float:
    return float(np.max(ref.kl_per_state(ref.log_probs(pr.policy, pr.theta), ref.log_probs(pr.policy, pr.theta_new))))


def _tv_penalty(pr: UpdateProblem, **constant: float) -> float:
    return _bound_constant(pr, **constant) * _tv_max(pr) ** 2


def _both(side: Callable[[UpdateProblem], float]) -> Callable[[BoundProblems], np.ndarray]:
    return lambda bp: np.array([side(bp.random), side(bp.binding)])


TRPO_STATEMENT = (
    r"J(\tilde\pi) \ge L_\pi(\tilde\pi) - \frac{4\epsilon\gamma}{(1-\gamma)^2}\,{%s}, \quad "
    r"L_\pi(\tilde\pi) = J(\pi) + \sum_s\rho_\pi(s)\sum_a\tilde\pi(a|s)A_\pi(s,a),\ \epsilon = \max_{s,a}|A_\pi(s,a)|"
)
BOUND_REFERENCE = (
    "the penalty from advantages by a dense LU solve and TV / KL written out from the probability matrices; "
    "L - J(pi') from pgexact.surrogate and pgexact.evaluate"
)
inequality(
    id="updates.trpo_lower_bound_tv",
    statement=TRPO_STATEMENT % r"\left(D_{TV}^{max}(\pi,\tilde\pi)\right)^2",
    source="Schulman et al. 2015, Theorem 1 (J is their unnormalized discounted return eta); course notes "
    "'CS285: Lecture 9', section 'Bounding the Distribution Change'",
    reference=BOUND_REFERENCE + "; on a random MDP and policy change, and on a two-state MDP where the state "
    "distributions drift apart linearly and the bound binds up to 1/(1 + gamma kappa) >= 0.91 at gamma in [0.5, 0.95] "
    "(see updates._multistep_binding_problem)",
    instance=_bound_problems(_multistep_binding_problem),
    lhs=_both(_positive_gap),
    rhs=_both(_tv_penalty),
    tolerance=ROUNDING_TOL,
    tolerance_reason="an inequality: positive part of the violation relative to max(1, |rhs|); both sides are values "
    "of size <= 10/(1-gamma)^2 from dense solves of condition <= 39, exact to ~1e-13 (measured margin on the "
    "binding family: lhs <= 0.99 rhs)",
    mutants={
        "constant 2 eps gamma/(1-gamma)^2 instead of 4 eps gamma/(1-gamma)^2": (None, _both(
            lambda pr: _tv_penalty(pr, factor=2.0))),
        "(1-gamma)^-1 instead of (1-gamma)^-2 (normalized and unnormalized returns mixed)": (None, _both(
            lambda pr: _tv_penalty(pr, power=1.0))),
    },
)
inequality(
    id="updates.trpo_lower_bound_kl",
    statement=TRPO_STATEMENT % r"D_{KL}^{max}(\pi\,\|\,\tilde\pi)",
    source="Schulman et al. 2015, eq. 9 (Theorem 1 with D_TV^2 <= D_KL)",
    reference=BOUND_REFERENCE + "; on a random MDP and policy change, and on a family where the TV form binds up to "
    "(1-gamma)^2 and Pinsker is nearly tight (two-action uniform policies shifted by alpha: KL ~ 2 TV^2; see "
    "updates._binding_problem)",
    instance=_bound_problems(_binding_problem),
    lhs=_both(_positive_gap),
    rhs=_both(lambda pr: _bound_constant(pr) * _kl_max(pr)),
    tolerance=ROUNDING_TOL,
    tolerance_reason="an inequality: positive part of the violation relative to max(1, |rhs|); rounding only "
    "(sides exact to ~1e-13)",
    mutants={"constant eps gamma/(1-gamma)^2 (factor 4 missing)": (None, _both(
        lambda pr: _bound_constant(pr, 1.0) * _kl_max(pr)))},
    loose_reason="loose by nature by at least 2: Pinsker's inequality gives D_KL >= 2 D_TV^2 (TV = half the L1 "
    "distance), so this bound is at least twice the TV form's, which is itself never below the gap; the ratio "
    "reaches (1-gamma)^2/2 on the near-binding family. The 'constant 2 instead of 4' mistake therefore cannot be "
    "rejected by any instance; 'constant 1 instead of 4' is",
)


# ----------------------------------------------------------------------------- PPO
def _ppo_instance(rng: np.random.Generator) -> UpdateProblem:
    pr = _problem(rng, moves=(0.3, 1.0), knobs=(0.05, 0.1, 0.2, 0.3))
    return pr


def _clip_rows(pr: UpdateProblem, theta_new: np.ndarray, rule: str = "correct") -> float:
    r""":math:`\sum_{s,a} \rho(s)\pi(a|s)[\min(rA, \mathrm{clip}(r, 1-\epsilon, 1+\epsilon)A) - A]`, one row at a time in scalars."""
    pi = ref.probs(pr.policy, pr.theta)
    pi_new = ref.probs(pr.policy, theta_new)
    rho = ref.occupancy(pr.mdp, pi) / (1.0 - pr.mdp.gamma)
    A = ref.values(pr.mdp, pi).A
    eps = pr.knob
    total = 0.0
    S, nA = pi.shape
    for s in range(S):
        for a in range(nA):
            ratio, adv = float(pi_new[s, a] / pi[s, a]), float(A[s, a])
            if rule == "swapped":
                clipped = min(max(ratio, 1.0 + eps), 1.0 - eps)  # numpy.clip(r, 1+eps, 1-eps)
            else:
                clipped = min(max(ratio, 1.0 - eps), 1.0 + eps)
            term = max(ratio * adv, clipped * adv) if rule == "max" else min(ratio * adv, clipped * adv)
            total += float(rho[s]) * float(pi[s, a]) * (term - adv)
    return total


def _clip_value(pr: UpdateProblem, theta_new: np.ndarray) -> float:
    batch = ExactSource(pr.mdp, pr.policy).at(pr.theta).batch
    return clipped_objective(pr.policy, batch, theta_new, pr.knob)[0]


identity(
    id="updates.ppo_clipped_objective_value",
    statement=r"L^{CLIP}(\theta') = \sum_{s,a}\rho_{old}(s)\pi_{old}(a|s)\left[\min\big(r A, \mathrm{clip}(r,1-\epsilon,1+\epsilon)A\big) - A\right],\ r = \frac{\pi_{\theta'}(a|s)}{\pi_{old}(a|s)}",
    source="Schulman et al. 2017, eq. 7 (the clipped surrogate objective)",
    reference="the definition evaluated row by row in scalar Python (min, max), with rho by a dense LU solve and A from it",
    instance=_ppo_instance,
    computed=lambda pr: _clip_value(pr, pr.theta_new),
    expected=lambda pr: _clip_rows(pr, pr.theta_new),
    tolerance=1e-12,
    tolerance_reason=ROUNDING_REASON
    + '; measured residuals <= 1.5e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~652 and rejects a relative mistake of 1e-10',
    mutants={
        "clip bounds swapped: clip(r, 1+eps, 1-eps)": lambda pr: _clip_rows(pr, pr.theta_new, "swapped"),
        "max instead of min (optimistic bound)": lambda pr: _clip_rows(pr, pr.theta_new, "max"),
    },
)


def _ppo_grad_instance(rng: np.random.Generator) -> UpdateProblem:
    """θ' far enough from θ that rows are clipped, and no ratio within 0.05 of a kink 1 ± ε
    (the Richardson differences then never straddle one)."""
    while True:
        pr = _ppo_instance(rng)
        ratio = ref.probs(pr.policy, pr.theta_new) / ref.probs(pr.policy, pr.theta)
        if np.min(np.abs(np.abs(ratio - 1.0) - pr.knob)) > 0.05:
            return pr


def _direction(pr: UpdateProblem) -> np.ndarray:
    v = np.random.default_rng(0).standard_normal(pr.policy.n_params)
    return v / np.linalg.norm(v)


def _clip_grads(pr: UpdateProblem) -> tuple[np.ndarray, float]:
    batch = ExactSource(pr.mdp, pr.policy).at(pr.theta).batch
    at_old = clipped_objective(pr.policy, batch, pr.theta, pr.knob)[1]
    at_new = clipped_objective(pr.policy, batch, pr.theta_new, pr.knob)[1] @ _direction(pr)
    return at_old, float(at_new)


def _clip_grads_expected(pr: UpdateProblem) -> tuple[np.ndarray, float]:
    v = _direction(pr)
    h = 1e-4

    def f(t: float) -> float:
        return _clip_rows(pr, pr.theta_new + t * v)

    d1 = (f(h) - f(-h)) / (2 * h)
    d2 = (f(h / 2) - f(-h / 2)) / h
    return cs_gradient(pr), (4 * d2 - d1) / 3


identity(
    id="updates.ppo_clip_gradient",
    statement=r"\nabla_{\theta'} L^{CLIP}(\theta')\big|_{\theta'=\theta_{old}} = \nabla J(\theta_{old}),\ \text{and } \nabla L^{CLIP} \text{ is the derivative of } L^{CLIP} \text{ away from the kinks}",
    source="Schulman et al. 2017, sec. 3 (L^CLIP equals L^CPI to first order around theta_old); Kakade & Langford 2002",
    reference=CS_REFERENCE + " (at theta_old); Richardson central differences (h = 1e-4) along a fixed direction of the "
    "clipped objective written out row by row in scalar Python with LU occupancies and advantages (never "
    "pgexact's clipped_objective; at theta' != theta_old, no ratio within 0.05 of a kink)",
    instance=_ppo_grad_instance,
    computed=_clip_grads,
    expected=_clip_grads_expected,
    tolerance=1e-8,
    tolerance_reason="Richardson differences with h = 1e-4: O(h^4) truncation plus O(eps |L| / h) ~ 1e-11 rounding on "
    "values up to ~100; the complex step has none (measured residuals <= 5.3e-11 over 200 instances, a margin of ~190)",
    mutants={
        "weights d instead of d/(1-gamma)": lambda pr: tuple(np.asarray(x) * (1.0 - pr.mdp.gamma) for x in _clip_grads(pr)),
    },
)


# ----------------------------------------------------------------------------- PI and soft PI
def _soft_q(mdp: FiniteMDP, pi: np.ndarray, alpha: float) -> np.ndarray:
    r"""Soft Q by one LU solve: :math:`V = (I-\gamma P_\pi)^{-1}(r_\pi - \alpha\sum_a\pi\log\pi)`, :math:`Q = r + \gamma P V`."""
    P_pi, r_pi = ref.chain(mdp, pi)
    ent = -np.sum(np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1.0)), 0.0), axis=1)
    V = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, r_pi + alpha * ent)
    return mdp.r + mdp.gamma * np.einsum("sat,t->sa", mdp.P, V)


def _softmax(x: np.ndarray) -> np.ndarray:
    e = np.exp(x - x.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _alpha(pr: UpdateProblem) -> float:
    return pr.knob if pr.knob >= 0.01 else 0.01


def _soft_q_new(pr: UpdateProblem, sign: float = 1.0) -> np.ndarray:
    pi = pr.policy.probs(pr.theta)
    a = _alpha(pr)
    improved = soft_improve(pr.mdp, pi, a) if sign > 0 else _softmax(-_soft_q(pr.mdp, pi, a) / a)
    return _soft_q(pr.mdp, improved, a)


inequality(
    id="updates.soft_policy_improvement",
    statement=r"\pi'(\cdot|s) \propto \exp(Q^\pi_{soft}(s,\cdot)/\alpha) \;\Rightarrow\; Q^{\pi'}_{soft} \ge Q^{\pi}_{soft}",
    source="Haarnoja et al. 2018 (SAC), Lemma 2",
    reference="soft Q of both policies by dense LU solves written from the model's data (pi' from pgexact.soft_improve)",
    instance=lambda rng: _problem(rng, knobs=(0.01, 0.1, 0.5)),
    lhs=lambda pr: _soft_q(pr.mdp, ref.probs(pr.policy, pr.theta), _alpha(pr)),
    rhs=_soft_q_new,
    tolerance=ROUNDING_TOL,
    tolerance_reason="an inequality between two soft evaluations: rounding only",
    mutants={"pi' proportional to exp(-Q/alpha) (sign)": (None, lambda pr: _soft_q_new(pr, -1.0))},
    loose_reason="an ordering of two signed soft values, with no constant to tighten (the ratio of signed sides is "
    "not defined); it binds where pi is already soft-optimal",
)


def _soft_pi_reference(pr: UpdateProblem) -> np.ndarray:
    """π*_α by soft policy iteration on dense solves (pgexact.theorems._tabular), not soft value iteration."""
    from ._tabular import Tabular, soft_policy_iteration

    m = pr.mdp
    tab = Tabular(np.asarray(m.P), np.asarray(m.r), np.asarray(m.mu0), np.asarray(m.mu0), m.gamma)
    return soft_policy_iteration(tab, _alpha(pr))[1]


def _soft_vi_policy(pr: UpdateProblem, alpha_scale: bool = True) -> np.ndarray:
    a = _alpha(pr)
    if alpha_scale:
        return pr.once("soft_vi", lambda: soft_value_iteration(pr.mdp, a)).policy
    # the mistake: pi* proportional to exp(Q*) instead of exp(Q*/alpha)
    Q = pr.once("soft_vi", lambda: soft_value_iteration(pr.mdp, a)).Q
    return _softmax(Q)


identity(
    id="updates.soft_optimal_fixed_point",
    statement=r"Q^* = r + \gamma P\,\alpha\log\textstyle\sum_a e^{Q^*/\alpha},\ \pi^*\propto e^{Q^*/\alpha} \;\Rightarrow\; "
    r"\pi^* = \arg\max_\pi \tilde J_\alpha(\pi) \text{ (the fixed point of soft policy iteration)}",
    source="Haarnoja et al. 2017, Theorem 1; Haarnoja et al. 2018, Theorem 1 and Lemma 2 (soft policy iteration)",
    reference="soft policy iteration written in the theorems (pi <- softmax(Q^pi_soft/alpha), each soft evaluation a "
    "dense solve, quadratic convergence to 1e-13), not soft value iteration",
    instance=lambda rng: _problem(rng, gamma_range=(0.2, 0.9), knobs=(0.01, 0.1, 0.5, 2.0)),
    computed=_soft_vi_policy,
    expected=_soft_pi_reference,
    tolerance=1e-10,
    tolerance_reason="soft value iteration stops at ||Q - Q*|| <= 1e-12 max(1, ||Q||) and softmax is 1/alpha-Lipschitz "
    "(alpha >= 0.01): ~1e-10 |Q| at worst, but its a-posteriori bound is pessimistic: measured <= 4.6e-14 (seed 0) "
    "and 6.9e-13 (seed 1) over 200 instances each, a margin of ~140",
    mutants={"softmax of Q* instead of Q*/alpha": lambda pr: _soft_vi_policy(pr, alpha_scale=False)},
)


def _pi(pr: UpdateProblem):
    return pr.once("pi", lambda: policy_iteration(pr.mdp, pr.policy.probs(pr.theta)))


def _pi_computed(pr: UpdateProblem) -> tuple[np.ndarray, float]:
    res = _pi(pr)
    drops = np.max(res.values[:-1] - res.values[1:], initial=0.0) if res.values.shape[0] > 1 else 0.0
    return res.V, max(0.0, float(drops)) / _scale(pr.mdp)


def _pi_expected(pr: UpdateProblem) -> tuple[np.ndarray, float]:
    return _optimal_values(pr.mdp), 0.0


def _argmin_step(pr: UpdateProblem) -> tuple[np.ndarray, float]:
    """The mistake: the improvement step takes the argmin of Q^{pi_K}."""
    Q = ref.values(pr.mdp, _pi(pr).policy).Q
    worst = np.eye(pr.mdp.n_actions)[np.argmin(Q, axis=1)]
    return ref.values(pr.mdp, worst).V, 0.0


identity(
    id="updates.policy_iteration_monotone",
    statement=r"V^{\pi_{k+1}} \ge V^{\pi_k} \text{ elementwise, and } V^{\pi_K} = \max_a\big(r + \gamma P V^{\pi_K}\big) = V^*",
    source="Sutton & Barto 2018, sec. 4.2-4.3 (policy improvement theorem); Puterman 1994, Theorem 6.4.2",
    reference="V* by policy iteration written in the theorems on dense LU solves (updates._optimal_values), started "
    "from the all-zeros policy; the monotone history from the library's own record",
    instance=lambda rng: _problem(rng, gamma_range=(0.5, 0.95)),
    computed=_pi_computed,
    expected=_pi_expected,
    tolerance=1e-13,
    tolerance_reason="two exact evaluations by LU solves of condition <= 39, relative to max(1, |V|): measured "
    "residuals <= 8.3e-16 over 200 instances, a margin of ~120",
    mutants={"improvement step with argmin instead of argmax": _argmin_step},
)


# ----------------------------------------------------------------------------- value iteration's error bound
@dataclass(frozen=True)
class VIProblem:
    """A random MDP and a one-state-per-class MDP of self-loops (where the a-posteriori bound is exact), k steps each."""

    random: FiniteMDP
    loops: FiniteMDP
    k: int


def _vi_instance(rng: np.random.Generator) -> VIProblem:
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    gamma = float(rng.uniform(0.5, 0.95))
    P = np.zeros((S, A, S))
    P[np.arange(S), :, np.arange(S)] = 1.0  # every action stays: V_k = (1 - gamma^k) max_a r / (1 - gamma)
    loops = FiniteMDP(P, rng.uniform(0.1, 1.0, (S, A)), rng.dirichlet(np.ones(S)), gamma=gamma)
    return VIProblem(random_mdp(S, A, gamma=gamma, seed=rng), loops, int(rng.integers(1, 21)))


def _optimal_values(mdp: FiniteMDP) -> np.ndarray:
    """V* by policy iteration on dense LU solves (finitely many improvements, exact up to rounding)."""
    S, A = mdp.n_states, mdp.n_actions
    act = np.zeros(S, dtype=int)
    for _ in range(200):
        V = ref.values(mdp, np.eye(A)[act]).V
        Q = mdp.r + mdp.gamma * np.einsum("sat,t->sa", mdp.P, V)
        new = np.where(Q[np.arange(S), act] >= Q.max(axis=1) - 1e-12 * max(1.0, float(np.max(np.abs(Q)))),
                       act, Q.argmax(axis=1))
        if np.array_equal(new, act):
            return V
        act = new
    raise RuntimeError("policy iteration did not terminate")  # pragma: no cover - finite MDP


def _vi_errors(vp: VIProblem) -> np.ndarray:
    return np.array([float(np.max(np.abs(value_iteration(m, n_iterations=vp.k).V - _optimal_values(m))))
                     for m in (vp.random, vp.loops)])


def _vi_bounds(vp: VIProblem, geometric_sum: bool = True) -> np.ndarray:
    out = []
    for m in (vp.random, vp.loops):
        bound = value_iteration(m, n_iterations=vp.k).error_bound
        out.append(bound if geometric_sum else bound * (1.0 - m.gamma))
    return np.array(out)


inequality(
    id="planning.value_iteration_error_bound",
    statement=r"\|V_k - V^*\|_\infty \le \frac{\hat\gamma\|V_k - V_{k-1}\|_\infty + \eta}{1-\hat\gamma}"
    r"\ \text{(the reported error\_bound after k steps from } V_0 = 0)",
    source="Puterman 1994, Theorem 6.3.1 (a-posteriori bound of value iteration), with the rounding term of "
    "pgexact.updates.value_iteration",
    reference="V* by policy iteration on dense LU solves written from the model's data; on a random MDP and on an MDP "
    "of self-loops, where V_k = (1 - gamma^k) max_a r / (1 - gamma) and the bound holds with equality up to rounding",
    instance=_vi_instance,
    lhs=_vi_errors,
    rhs=_vi_bounds,
    tolerance=1e-12,
    tolerance_reason="relative violation of a bound that holds with equality on the self-loop MDP: errors are values "
    "<= 20 from LU solves exact to ~1e-15 relative, and the bound's rounding term eta covers the iteration's",
    floor=1e-12,
    mutants={"gamma ||V_k - V_{k-1}|| (the geometric sum 1/(1-gamma) dropped)": (None, lambda vp: _vi_bounds(vp, False))},
)


identity(
    id="updates.soft_policy_iteration",
    statement=r"\pi_{k+1} \propto \exp(Q^{\pi_k}_{soft}/\alpha) \to \pi^*_\alpha",
    source="Haarnoja et al. 2018 (SAC), Lemma 2 and Theorem 1 (soft policy iteration)",
    reference="soft policy iteration written in the theorems (pgexact.theorems._tabular, dense solves, to 1e-13)",
    instance=lambda rng: _problem(rng, gamma_range=(0.2, 0.9), knobs=(0.01, 0.1, 0.5, 2.0)),
    computed=lambda pr: soft_policy_iteration(pr.mdp, _alpha(pr)).policy,
    expected=_soft_pi_reference,
    tolerance=1e-10,
    tolerance_reason="both iterations converge quadratically to ~1e-13 in the policy (measured residuals <= 1e-13 over "
    "50 instances, a margin of ~1000)",
    mutants={"softmax of Q* instead of Q*/alpha": lambda pr: _soft_vi_policy(pr, alpha_scale=False)},
)


def _pg_step(pr: UpdateProblem) -> tuple[np.ndarray, np.ndarray]:
    res = pg_step(ExactSource(pr.mdp, pr.policy), pr.theta, lr=pr.knob)
    return res.theta, res.gradient


identity(
    id="updates.pg_step",
    statement=r"\theta' = \theta + \eta\nabla J(\theta)",
    source="Williams 1992; Sutton et al. 2000 (policy gradient ascent with the exact gradient)",
    reference=CS_REFERENCE + "; theta + eta times it",
    instance=_problem,
    computed=_pg_step,
    expected=lambda pr: (pr.theta + pr.knob * cs_gradient(pr), cs_gradient(pr)),
    tolerance=1e-12,
    tolerance_reason="one complex-step gradient (no truncation) against the closed form, both from solves of "
    "condition <= 39, times eta <= 2 (measured residuals <= 8e-15 over 200 instances, a margin of ~120)",
    mutants={"descent instead of ascent (theta - eta grad J)": lambda pr: (
        pr.theta - pr.knob * cs_gradient(pr), cs_gradient(pr))},
)
