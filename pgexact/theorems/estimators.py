r"""Exact (sampling-free) theorems about the Monte Carlo estimators.

Expectations are taken by enumerating every trajectory of a small finite-horizon problem
(:func:`pgexact.estimators.enumerate_trajectories`) and compared with references written from
the model's data (:mod:`pgexact.theorems._reference`: complex-step gradients of J, backward
recursions, forward marginals), which use none of the estimator code and none of
:mod:`pgexact.exact`. Pathwise identities (GAE) are checked on random arrays against sums
written out term by term.

Instances: random dense MDPs with 2..3 states, 2..3 actions and horizon 2..4 (at most
:math:`(S A)^H \cdot S \le 3^8 \cdot 3` trajectories), γ in {0.9, 0.5}, tabular or linear softmax
with parameters N(0, 1). Residuals are relative errors with an absolute floor of 1; sums over
at most ~2e4 trajectories of O(10) terms accumulate ~1e-13 of rounding, so 1e-9 leaves a
margin of 1e4.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import estimators as est
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from ..sampling import Trajectories
from ..sampling.trajectories import from_steps
from . import _reference as ref
from .finite import CS_REFERENCE, cs_gradient
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references below serve
#: those theorems and the tests.
__all__: list[str] = []

TOL = 1e-9
REASON = (
    "rounding in sums over at most ~2e4 enumerated trajectories of O(10) terms each "
    "(observed ~1e-15); 1e-9 leaves four orders of magnitude"
)


@dataclass(frozen=True)
class EnumProblem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray
    lam: float
    noise: np.ndarray  # (H, S): a perturbation of V / a baseline


def enum_problem(
    rng: np.random.Generator, *, max_states: int = 3, max_actions: int = 3, min_horizon: int = 2, max_horizon: int = 4
) -> EnumProblem:
    """A small finite-horizon instance whose trajectories can all be enumerated."""
    S = int(rng.integers(2, max_states + 1))
    A = int(rng.integers(2, max_actions + 1))
    H = int(rng.integers(min_horizon, max_horizon + 1))
    mdp = random_mdp(S, A, gamma=float(rng.choice([0.9, 0.5])), horizon=H, seed=rng, concentration=0.5)
    if rng.integers(2):
        policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, int(rng.integers(1, 4)))))
    else:
        policy = TabularSoftmax(S, A)
    theta = rng.standard_normal(policy.n_params)
    return EnumProblem(mdp, policy, theta, float(rng.uniform(0, 1)), rng.standard_normal((H, S)))


def _enum(pr: EnumProblem) -> tuple[Any, np.ndarray, np.ndarray]:
    pi = pr.policy.probs(pr.theta)
    trajs, prob = est.enumerate_trajectories(pr.mdp, pi)
    return trajs, prob, pi


def _ref_values(pr: EnumProblem) -> ref.Values:
    return ref.values(pr.mdp, ref.probs(pr.policy, pr.theta))


def _shifted(V: np.ndarray) -> np.ndarray:
    """V_{t+1} in place of V_t (off by one in time)."""
    return np.vstack([V[1:], np.zeros((1, V.shape[1]))])


# ----------------------------------------------------------------------------- GAE, exact V
def _gae_table(pr: EnumProblem, V: np.ndarray) -> np.ndarray:
    # E[A_hat_t 1{s_t = s, a_t = a}] for the given V, every (t, s, a), by enumeration
    trajs, prob, pi = _enum(pr)
    v = est.value_array(trajs, V)
    adv = est.gae(trajs.rewards * trajs.mask, v, trajs.discount, pr.lam, terminated=trajs.terminated)
    adv = np.where(trajs.mask, adv, 0.0)
    H, S, A = pr.mdp.horizon, pr.mdp.n_states, pr.mdp.n_actions
    out = np.zeros((H, S, A))
    s, a = trajs.states[:, :H], trajs.actions
    for t in range(H):
        np.add.at(out[t], (s[:, t], a[:, t]), prob * adv[:, t])
    return out


def _gae_expected(pr: EnumProblem) -> np.ndarray:
    pi = ref.probs(pr.policy, pr.theta)
    p = ref.marginals(pr.mdp, pi, pr.mdp.horizon)
    return p[:, :, None] * pi[None] * _ref_values(pr).A


identity(
    id="estimators.gae_unbiased_exact_v",
    statement=r"E[\hat A^{GAE(\gamma,\lambda)}_t \mid s_t, a_t] = A^\pi_t(s_t, a_t)\ \forall \lambda \in [0,1] \text{ when } V = V^\pi",
    source="Schulman et al. 2016 (GAE), sec. 3, Proposition 1 and eq. 16",
    reference="p_t(s) pi(a|s) A_t(s, a) from forward marginals and the backward recursion written from the model's data",
    instance=enum_problem,
    computed=lambda pr: _gae_table(pr, _ref_values(pr).V),
    expected=_gae_expected,
    tolerance=1e-12,
    tolerance_reason=REASON
    + '; measured residuals <= 1.1e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~948 and rejects a relative mistake of 1e-10',
    mutants={"V off by one in time (V_{t+1} for V_t)": lambda pr: _gae_table(pr, _shifted(_ref_values(pr).V))},
)


def _gae_gradient(pr: EnumProblem, V: np.ndarray) -> np.ndarray:
    trajs, prob, pi = _enum(pr)
    return est.exact_mean(est.gae_gradient(trajs, pr.policy, pr.theta, V, pr.lam).samples, prob)


identity(
    id="estimators.gae_gradient_unbiased_exact_v",
    statement=r"E\Big[\sum_t \gamma^t \nabla\log\pi(a_t|s_t) \hat A^{GAE(\gamma,\lambda)}_t\Big] = \nabla J \text{ when } V = V^\pi",
    source="Schulman et al. 2016 (GAE), sec. 3; Sutton et al. 2000, Theorem 1",
    reference=CS_REFERENCE,
    instance=enum_problem,
    computed=lambda pr: _gae_gradient(pr, _ref_values(pr).V),
    expected=cs_gradient,
    tolerance=1e-12,
    tolerance_reason=REASON
    + '; measured residuals <= 2.9e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~346 and rejects a relative mistake of 1e-10',
    mutants={"V off by one in time (V_{t+1} for V_t)": lambda pr: _gae_gradient(pr, _shifted(_ref_values(pr).V))},
)


# ----------------------------------------------------------------------------- GAE, pathwise
def _random_arrays(rng: np.random.Generator) -> dict[str, Any]:
    N, T = int(rng.integers(1, 6)), int(rng.integers(1, 8))
    return {
        "r": rng.standard_normal((N, T)),
        "v": rng.standard_normal((N, T + 1)),
        "gamma": float(rng.uniform(0.05, 0.95)),
        "lam": float(rng.choice([0.0, rng.uniform(0, 1), 1.0])),
        "done": rng.random((N, T)) < 0.25,
    }


def _td_sum(x: dict[str, Any], lam: float) -> np.ndarray:
    r""":math:`\sum_l (\gamma\lambda)^l \delta_{t+l}` term by term, stopping after a terminated step."""
    r, v, g, done = x["r"], x["v"], x["gamma"], x["done"]
    N, T = r.shape
    out = np.zeros((N, T))
    for n in range(N):
        for t in range(T):
            total, weight = 0.0, 1.0
            for k in range(t, T):
                boot = 0.0 if done[n, k] else g * v[n, k + 1]
                total += weight * (r[n, k] + boot - v[n, k])
                if done[n, k]:
                    break
                weight *= g * lam
            out[n, t] = total
    return out


def _mc_return(x: dict[str, Any]) -> np.ndarray:
    """Discounted rewards until a terminated step or the end of the arrays (then bootstrap), minus V_t."""
    r, v, g, done = x["r"], x["v"], x["gamma"], x["done"]
    N, T = r.shape
    mc = np.empty((N, T))
    for n in range(N):
        for t in range(T):
            total, k = 0.0, t
            while True:
                total += g ** (k - t) * r[n, k]
                if done[n, k]:
                    break
                k += 1
                if k == T:
                    total += g ** (T - t) * v[n, T]  # truncation: bootstrap
                    break
            mc[n, t] = total - v[n, t]
    return mc


identity(
    id="estimators.gae1_is_monte_carlo",
    statement=r"\hat A^{GAE(\gamma,1)}_t = \sum_{l} \gamma^l r_{t+l} + \gamma^{k} V_{t+k} 1[\text{truncated}] - V_t \text{ (pathwise)}",
    source="Schulman et al. 2016 (GAE), eq. 18",
    reference="discounted return minus V_t summed term by term in Python loops",
    instance=_random_arrays,
    computed=lambda x: est.gae(x["r"], x["v"], x["gamma"], 1.0, terminated=x["done"]),
    expected=_mc_return,
    tolerance=1e-12,
    tolerance_reason="the same O(T) sums in another order: rounding ~T eps relative to the largest term",
    mutants={"dropped gamma (gamma = 1)": lambda x: est.gae(x["r"], x["v"], 1.0, 1.0, terminated=x["done"])},
)
identity(
    id="estimators.gae_sum_of_td_errors",
    statement=r"\hat A^{GAE(\gamma,\lambda)}_t = \sum_{l\ge 0} (\gamma\lambda)^l \delta_{t+l},\ \delta_t = r_t + \gamma (1-d_t) V_{t+1} - V_t \text{ (pathwise; } \lambda = 0: \hat A_t = \delta_t)",
    source="Schulman et al. 2016 (GAE), eqs. 16-17",
    reference="the sum of TD errors written term by term in Python loops (the library uses the backward recursion)",
    instance=_random_arrays,
    computed=lambda x: est.gae(x["r"], x["v"], x["gamma"], x["lam"], terminated=x["done"]),
    expected=lambda x: _td_sum(x, x["lam"]),
    tolerance=1e-12,
    tolerance_reason="the same O(T) sums in another order: rounding ~T eps relative to the largest term",
    mutants={"dropped gamma in the TD error (gamma = 1)": lambda x: est.gae(x["r"], x["v"], 1.0, x["lam"], terminated=x["done"])},
)


# ----------------------------------------------------------------------------- baselines
def _baseline_means(pr: EnumProblem) -> tuple[np.ndarray, ...]:
    trajs, prob, pi = _enum(pr)
    rv = _ref_values(pr)
    return (
        est.exact_mean(est.reinforce(trajs, pr.policy, pr.theta).samples, prob),
        est.exact_mean(est.reward_to_go(trajs, pr.policy, pr.theta).samples, prob),
        est.exact_mean(est.constant_baseline(trajs, pr.policy, pr.theta, float(pr.noise[0, 0]) * 5).samples, prob),
        est.exact_mean(est.state_baseline(trajs, pr.policy, pr.theta, pr.noise).samples, prob),
        est.exact_mean(est.state_baseline(trajs, pr.policy, pr.theta, rv.V).samples, prob),
        est.exact_mean(est.advantage(trajs, pr.policy, pr.theta, rv.Q).samples, prob),
    )


def _action_baseline(pr: EnumProblem) -> tuple[np.ndarray, ...]:
    """The mistake: a baseline that depends on the action (Q plus noise in (s, a))."""
    trajs, prob, pi = _enum(pr)
    rv = _ref_values(pr)
    bias = np.zeros_like(rv.Q)
    bias[..., 0] = 1.0  # b(s, a) = 1{a = 0}
    g = est.exact_mean(est.advantage(trajs, pr.policy, pr.theta, rv.Q + bias).samples, prob)
    return (g,) * 6


identity(
    id="estimators.baseline_causality_unbiased",
    statement=r"E\big[\textstyle\sum_t \psi_t R\big] = E\big[\sum_t \psi_t \gamma^t (G_t - b(s_t))\big] = E\big[\sum_t \gamma^t \psi_t Q_t\big] = \nabla J \ \forall b",
    source="Williams 1992 (reinforcement baselines); course notes 'Policy Gradient', sections 'Variance Reduction: Baseline Subtraction' and 'Variance Reduction: Causality Trick and Reward-to-Go Estimation'",
    reference=CS_REFERENCE,
    instance=enum_problem,
    computed=_baseline_means,
    expected=lambda pr: (cs_gradient(pr),) * 6,
    tolerance=1e-12,
    tolerance_reason=REASON
    + '; measured residuals <= 8.5e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~117 and rejects a relative mistake of 1e-10',
    mutants={"a baseline depending on the action (Q + 1{a = 0} as the advantage)": _action_baseline},
)


# ----------------------------------------------------------------------------- learned baseline
def _episode(trajs: Trajectories, i: int) -> Trajectories:
    """Episode i of a batch as a batch of one, rebuilt from its simulated steps."""
    sv = trajs.steps
    keep = sv.episode == i
    return from_steps(
        np.zeros(int(keep.sum()), dtype=np.intp),
        sv.time[keep],
        sv.state[keep],
        sv.action[keep],
        sv.reward[keep],
        sv.next_state[keep],
        lengths=trajs.lengths[i : i + 1],
        stops=trajs.stops[i : i + 1],
        absorbed=trajs.absorbed[i : i + 1],
        truncated=trajs.truncated[i : i + 1],
        gamma=trajs.gamma,
        discount=trajs.discount,
        objective=trajs.objective,
        n_states=trajs.n_states,
        n_actions=trajs.n_actions,
    )


def _learned_instance(rng: np.random.Generator) -> tuple[EnumProblem, Trajectories]:
    pr = enum_problem(rng, max_states=2, max_actions=2, min_horizon=1, max_horizon=2)
    from ..sampling import rollout

    critic = rollout(pr.mdp, pr.policy.probs(pr.theta), 3, seed=int(rng.integers(2**31)))
    return pr, critic


def _learned_mean(inst: tuple[EnumProblem, Trajectories], reuse: bool = False) -> np.ndarray:
    """Exact mean over a one-episode gradient batch of the learned-baseline estimate (critic fixed)."""
    pr, critic = inst
    trajs, prob, _ = _enum(pr)
    total = np.zeros(pr.policy.n_params)
    for i in range(trajs.n_episodes):
        one = _episode(trajs, i)
        fit_on = one if reuse else critic
        total += prob[i] * est.learned_baseline(fit_on, one, pr.policy, pr.theta).mean
    return total


identity(
    id="estimators.learned_baseline_independent",
    statement=r"E_{\tau\sim\pi}\Big[\sum_t \psi_t \gamma^t\big(G_t - \tilde b(s_t)\big)\Big] = \nabla J \text{ for a critic } \tilde b \text{ fitted on episodes independent of } \tau",
    source="course notes 'Policy Gradients', section 'Baselines and advantages' (fit the baseline on separate episodes to avoid correlations)",
    reference=CS_REFERENCE + "; the expectation enumerates every one-episode gradient batch with a critic fitted on 3 sampled episodes",
    instance=_learned_instance,
    computed=_learned_mean,
    expected=lambda inst: cs_gradient(inst[0]),
    tolerance=1e-13,
    tolerance_reason=REASON
    + '; measured residuals <= 5.1e-16 over 200 instances (seed 1), so 1e-13 leaves a margin of ~197 and rejects a relative mistake of 1e-11',
    mutants={"baseline fitted on the gradient episodes themselves": lambda inst: _learned_mean(inst, reuse=True)},
)


# ----------------------------------------------------------------------------- importance sampling
def _is_problem(rng: np.random.Generator) -> tuple[EnumProblem, np.ndarray]:
    pr = enum_problem(rng)
    return pr, pr.theta + rng.standard_normal(pr.policy.n_params)


def _is_estimates(inst: tuple[EnumProblem, np.ndarray], swap: bool = False) -> tuple[float, np.ndarray]:
    pr, theta_new = inst
    trajs, prob, pi = _enum(pr)
    A_old = _ref_values(pr).A
    a, b = (theta_new, pr.theta) if swap else (pr.theta, theta_new)
    s_hat = est.exact_mean(est.surrogate_estimate(trajs, pr.policy, a, b, A_old).samples, prob)
    g_hat = est.exact_mean(est.surrogate_gradient_estimate(trajs, pr.policy, pr.theta, theta_new, A_old).samples, prob)
    return float(s_hat), g_hat


def _is_expected(inst: tuple[EnumProblem, np.ndarray]) -> tuple[float, np.ndarray]:
    r""":math:`\bar A(\theta') = \sum_t \gamma^t \sum_s p_t(s)\sum_a \pi_{\theta'}(a|s) A_t(s,a)` and its complex-step gradient."""
    pr, theta_new = inst
    pi = ref.probs(pr.policy, pr.theta)
    H = pr.mdp.horizon
    w = (pr.mdp.gamma ** np.arange(H))[:, None] * ref.marginals(pr.mdp, pi, H)
    A_old = _ref_values(pr).A

    def sur(X: np.ndarray) -> np.ndarray:
        return np.einsum("ts,...sa,tsa->...", w, ref.probs(pr.policy, X), A_old)

    return float(sur(theta_new)), ref.complex_step_gradient(sur, theta_new)


identity(
    id="estimators.importance_sampling_unbiased",
    statement=r"E_{\pi_{old}}\Big[\sum_t \gamma^t \tfrac{\pi'(a_t|s_t)}{\pi(a_t|s_t)} A^{\pi}_t\Big] = \bar A(\pi'),\ \text{and the same for } \nabla_{\theta'}",
    source="Schulman et al. 2015 (TRPO), eq. 14; Kakade & Langford 2002, sec. 4; course notes 'Policy Gradient Fundamentals', section '7. The Importance Sampling Connection'",
    reference="the surrogate written out from forward marginals and backward-recursion advantages; its gradient by complex step",
    instance=_is_problem,
    computed=_is_estimates,
    expected=_is_expected,
    tolerance=1e-12,
    tolerance_reason=REASON
    + '; measured residuals <= 3.7e-15 over 200 instances (seed 1), so 1e-12 leaves a margin of ~271 and rejects a relative mistake of 1e-10',
    mutants={"ratio inverted (pi_old / pi_new)": lambda inst: _is_estimates(inst, swap=True)},
)


# ----------------------------------------------------------------------------- return recursions on sampled arrays
@dataclass(frozen=True)
class ReturnArrays:
    """Batch-first rewards (N, T), values (N, T + 1) with the bootstrap V_T last, terminated flags (N, T) (at most
    one per episode), a discount and an n."""

    rewards: np.ndarray
    values: np.ndarray
    terminated: np.ndarray
    gamma: float
    n: int


def _return_arrays(rng: np.random.Generator) -> ReturnArrays:
    N, T = int(rng.integers(2, 6)), int(rng.integers(2, 9))
    term = np.zeros((N, T), dtype=bool)
    for i in range(N):
        # episode 0 terminates, episode 1 is truncated by the arrays' end, the others either at random
        if i == 0 or (i > 1 and rng.integers(2)):
            term[i, int(rng.integers(T))] = True
    return ReturnArrays(rng.standard_normal((N, T)), rng.standard_normal((N, T + 1)), term,
                        float(rng.uniform(0.5, 0.99)), int(rng.choice([2, 3, 5, 10])))


def _scalar_returns(a: ReturnArrays, *, truncation_by_steps: bool = True, td_mask: bool = True,
                    rtg_from_t: bool = True) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    r"""Rewards-to-go, TD errors and n-step returns by scalar Python loops over each episode and step, from the
    definitions (Sutton & Barto 2018, eqs. 3.8, 6.5, 7.1): :math:`G^{(n)}_t` adds :math:`\gamma^k r_{t+k}` for
    k < n until a terminated step (then no bootstrap) or the end of the arrays, then bootstraps with the value
    where it stopped, discounted by the steps taken. The flags make the controls: ``truncation_by_steps=False``
    discounts a truncated bootstrap by :math:`\gamma^n`, ``td_mask=False`` bootstraps after termination,
    ``rtg_from_t=False`` discounts rewards-to-go from 0."""
    r, V, d, g, n = a.rewards, a.values, a.terminated, a.gamma, a.n
    N, T = r.shape
    rtg, td, nstep = np.zeros((N, T)), np.zeros((N, T)), np.zeros((N, T))
    for i in range(N):
        for t in range(T):
            rtg[i, t] = sum((g ** (u - t) if rtg_from_t else g**u) * r[i, u] for u in range(t, T))
            boot = 0.0 if (d[i, t] and td_mask) else g * V[i, t + 1]
            td[i, t] = r[i, t] + boot - V[i, t]
            G, disc, u, stopped = 0.0, 1.0, t, False
            while u < T and u - t < n:
                G += disc * r[i, u]
                disc *= g
                if d[i, u]:
                    stopped = True
                    break
                u += 1
            if not stopped:
                G += (disc if (truncation_by_steps or u - t == n) else g**n) * V[i, u]
            nstep[i, t] = G
    return rtg, td, nstep


def _library_returns(a: ReturnArrays) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return (est.rewards_to_go(a.rewards, a.gamma),
            est.td_errors(a.rewards, a.values, a.gamma, terminated=a.terminated),
            est.n_step_returns(a.rewards, a.values, a.gamma, a.n, terminated=a.terminated))


identity(
    id="estimators.return_recursions",
    statement=r"G_t = \sum_{t'\ge t}\gamma^{t'-t}r_{t'},\ \delta_t = r_t + \gamma(1-d_t)V_{t+1} - V_t,\ "
    r"G^{(n)}_t = \sum_{k<n}\gamma^k r_{t+k} + \gamma^n V_{t+n} \text{ cut at termination or truncation}",
    source="Sutton & Barto 2018, eqs. 3.8 (return), 6.5 (TD error) and 7.1 (n-step return); course notes 'Actor-"
    "Critic Algorithms', section 'Eligibility traces & n-step returns'",
    reference="scalar Python loops over each episode and step written from the definitions (no recursion over "
    "arrays), with random terminations and episodes truncated by the arrays' end",
    instance=_return_arrays,
    computed=_library_returns,
    expected=_scalar_returns,
    tolerance=1e-13,
    tolerance_reason="sums of at most 8 terms of size ~3 in a different order: measured residuals <= 9e-16 over 200 "
    "instances, a margin of ~100",
    mutants={
        "truncated n-step bootstrap discounted by gamma^n, not by the steps taken": lambda a: _scalar_returns(
            a, truncation_by_steps=False),
        "TD error bootstrapping after a terminated step": lambda a: _scalar_returns(a, td_mask=False),
    },
)


# ----------------------------------------------------------------------------- GAE with an inexact V, in expectation
@dataclass(frozen=True)
class GAEProblem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray
    V: np.ndarray  # (H, S), deliberately not the policy's values
    lam: float


def _gae_problem(rng: np.random.Generator) -> GAEProblem:
    S, A, H = int(rng.integers(2, 5)), int(rng.integers(2, 4)), int(rng.integers(2, 6))
    # gamma < 1 and lambda > 0: where gamma lambda and lambda differ (the control)
    mdp = random_mdp(S, A, gamma=float(rng.choice([0.5, 0.8, 0.9])), horizon=H, seed=rng)
    policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, 2))) if rng.integers(2) else TabularSoftmax(S, A)
    return GAEProblem(mdp, policy, rng.standard_normal(policy.n_params), 3.0 * rng.standard_normal((H, S)),
                      float(rng.choice([0.5, 0.9])))


def _gae_forward(pr: GAEProblem, *, trace: float | None = None) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\bar A_t(s, a) = \sum_{l\ge0}(\gamma\lambda)^l E[\delta_{t+l} | s_t = s, a_t = a]` by propagating the
    distribution of :math:`s_{t+l}` forward from :math:`P(\cdot|s, a)` (not the library's backward recursion),
    :math:`\delta_u = r_u + \gamma V_{u+1}(s_{u+1}) - V_u(s_u)`, :math:`V_H = 0`; and the expected gradient
    :math:`\sum_t\gamma^t\sum_s p_t(s)\sum_a\pi\nabla\log\pi\,\bar A_t` with reference marginals and score.
    ``trace`` replaces the factor γλ of the sum (a control)."""
    mdp, V = pr.mdp, pr.V
    H, S, A = V.shape[0], mdp.n_states, mdp.n_actions
    P, r, g = np.asarray(mdp.P), np.asarray(mdp.r), float(mdp.gamma)
    pi = ref.probs(pr.policy, pr.theta)
    P_pi = np.einsum("sa,sat->st", pi, P)
    V_next = np.vstack([V[1:], np.zeros((1, S))])
    delta = r[None] + g * np.einsum("sat,ut->usa", P, V_next) - V[:, :, None]  # (H, S, A)
    delta_pi = np.einsum("sa,usa->us", pi, delta)
    c = g * pr.lam if trace is None else trace
    A_bar = np.empty((H, S, A))
    for t in range(H):
        total = delta[t].copy()
        q = P.copy()  # (S, A, S'): distribution of s_{t+1} given (s_t, a_t)
        for l in range(1, H - t):
            total += c**l * q @ delta_pi[t + l]
            q = q @ P_pi
        A_bar[t] = total
    w = (g ** np.arange(H))[:, None] * ref.marginals(mdp, pi, H)
    grad = np.einsum("ts,sa,san,tsa->n", w, pi, ref.score(pr.policy, pr.theta), A_bar)
    return A_bar, grad


identity(
    id="estimators.gae_expected_inexact_v",
    statement=r"E[\hat A^{GAE(\gamma,\lambda)}_t | s_t, a_t] = \sum_{l\ge0}(\gamma\lambda)^l E[\delta^V_{t+l} | s_t, a_t],\ "
    r"E\hat g^{GAE} = \sum_t\gamma^t E_{s\sim p_t, a\sim\pi}[\nabla\log\pi\,\bar A_t] \text{ for any } V",
    source="Schulman, Moritz, Levine, Jordan & Abbeel 2016, 'High-Dimensional Continuous Control Using Generalized "
    "Advantage Estimation', sec. 3 (GAE as a sum of TD errors; biased unless lambda = 1 or V = V^pi)",
    reference="the sum over l of (gamma lambda)^l times TD errors averaged over the forward-propagated distribution of "
    "s_{t+l} (written from P, r and pi), never the library's backward recursion; marginals and score from the "
    "reference; V a random (H, S) array",
    instance=_gae_problem,
    computed=lambda pr: (est.gae_expected_advantage(pr.mdp, pr.policy.probs(pr.theta), pr.V, pr.lam),
                         est.gae_expected_gradient(pr.mdp, pr.policy, pr.theta, pr.V, pr.lam)),
    expected=_gae_forward,
    tolerance=1e-12,
    tolerance_reason="sums of at most H = 5 products of probabilities and values of size ~10: measured residuals "
    "<= 1e-14 over 200 instances, a margin of ~100",
    mutants={"trace lambda instead of gamma lambda": lambda pr: _gae_forward(pr, trace=pr.lam)},
)
