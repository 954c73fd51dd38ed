r"""Theorems reaching the code paths of :mod:`pgexact.updates` that random discounted instances never take.

Finite-horizon exact sources (the surrogate and KL weights :math:`\gamma^t p_t`), backward induction, action
masks in planning and soft control, the sampled oracle's gradient and Fisher-vector products, and the hard case
of the cubic-regularized Newton step. Every reference is written here from the model's data with plain numpy
(:mod:`pgexact.theorems._reference`: dense LU solves, forward marginals, log-softmax written out, enumeration of
deterministic policies), or from the sampled episodes' padded arrays read directly, never through
:mod:`pgexact.updates`.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import TabularSoftmax
from ..updates import (
    ExactSource,
    SampledSource,
    cubic_newton_step,
    policy_iteration,
    soft_policy_iteration,
    soft_value_iteration,
    value_iteration,
)
from . import _reference as ref
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []


@dataclass(frozen=True)
class PathCase:
    """A model, a tabular softmax policy, parameters, and the knobs of one theorem (``extra``)."""

    mdp: Any
    policy: TabularSoftmax
    theta: np.ndarray
    extra: dict = field(default_factory=dict)


# ----------------------------------------------------------------------------- finite-horizon surrogate and KL
def _finite_instance(rng: np.random.Generator) -> PathCase:
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=float(rng.choice([0.5, 0.8])), horizon=int(rng.integers(2, 5)), seed=rng)
    pol = TabularSoftmax(S, A)
    theta = rng.standard_normal(pol.n_params)
    theta_new = theta + float(rng.choice([0.3, 1.0])) * rng.standard_normal(pol.n_params)
    return PathCase(mdp, pol, theta, {"theta_new": theta_new})


def _finite_library(c: PathCase) -> tuple[float, float]:
    src = ExactSource(c.mdp, c.policy)
    return src.surrogate(c.theta, c.extra["theta_new"]), src.kl(c.theta, c.extra["theta_new"])


def _finite_reference(c: PathCase, *, discounted_weights: bool = True, kl_average: str = "discounted") -> tuple:
    r""":math:`\sum_t\gamma^t\sum_s p_t(s)\sum_a\pi'(a|s)A_t(s,a)` with forward marginals and the backward recursion,
    and :math:`\sum_s\nu(s)KL(\pi(\cdot|s)\|\pi'(\cdot|s))`, :math:`\nu = \sum_t\gamma^t p_t/\sum_t\gamma^t`.
    The flags make the controls: weights :math:`p_t` (no :math:`\gamma^t`), ν the plain time average."""
    mdp, H = c.mdp, int(c.mdp.horizon)
    pi = ref.probs(c.policy, c.theta)
    pi_new = ref.probs(c.policy, c.extra["theta_new"])
    p = ref.marginals(mdp, pi, H)
    disc = mdp.gamma ** np.arange(H)
    w = (disc[:, None] * p) if discounted_weights else p
    surrogate = float(np.einsum("ts,sa,tsa->", w, pi_new, ref.values(mdp, pi).A))
    nu = (disc @ p) / disc.sum() if kl_average == "discounted" else p.mean(axis=0)
    kl = float(nu @ ref.kl_per_state(ref.log_probs(c.policy, c.theta), ref.log_probs(c.policy, c.extra["theta_new"])))
    return surrogate, kl


identity(
    id="updates.finite_horizon_surrogate_kl",
    statement=r"\bar A(\theta') = \sum_{t<H}\gamma^t\sum_s p_t(s)\sum_a\pi_{\theta'}(a|s)A_t(s,a),\quad "
    r"KL = \sum_s\nu(s)KL(\pi_\theta(\cdot|s)\|\pi_{\theta'}(\cdot|s)),\ \nu = \frac{\sum_t\gamma^tp_t}{\sum_t\gamma^t}",
    source="Schulman et al. 2015, 'Trust region policy optimization', eq. 12 and 14, with the finite-horizon "
    "performance difference lemma (Kakade & Langford 2002, Lemma 6.1, time-indexed advantages)",
    reference="state marginals by forward propagation, time-indexed advantages by the backward recursion, "
    "log-softmax written out (ExactSource on a finite-horizon MDP, old and new parameters)",
    instance=_finite_instance,
    computed=_finite_library,
    expected=_finite_reference,
    tolerance=1e-13,
    tolerance_reason="sums of at most 4 x 4 x 3 products of quantities of size <= H max|r|: rounding only; measured "
    "residuals <= 6.7e-16 over 400 instances (seeds 0, 1), a margin of ~150 (the floor of 1 keeps the KL's error "
    "absolute near 0)",
    mutants={
        "state weights p_t without gamma^t": lambda c: _finite_reference(c, discounted_weights=False),
        "KL state distribution the plain time average of p_t": lambda c: _finite_reference(c, kl_average="plain"),
    },
)


# ----------------------------------------------------------------------------- backward induction
def _induction_instance(rng: np.random.Generator) -> PathCase:
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=float(rng.choice([0.5, 0.9, 1.0])), horizon=int(rng.integers(2, 6)), seed=rng)
    return PathCase(mdp, TabularSoftmax(S, A), np.zeros(S * A))


def _induction_library(c: PathCase) -> tuple[np.ndarray, float]:
    vi = value_iteration(c.mdp)
    return np.asarray(vi.V), _forward_return(c.mdp, np.asarray(vi.policy))


def _forward_return(mdp: FiniteMDP, policies: np.ndarray) -> float:
    r""":math:`\sum_t\gamma^t p_t^\top r_{\pi_t}` of a time-indexed policy, marginals propagated forward."""
    P, r = np.asarray(mdp.P), np.asarray(mdp.r)
    p, J = np.asarray(mdp.mu0, dtype=float), 0.0
    for t in range(policies.shape[0]):
        J += mdp.gamma**t * float(p @ np.sum(policies[t] * r, axis=1))
        p = np.einsum("s,sa,sat->t", p, policies[t], P)
    return J


def _induction_reference(c: PathCase, *, skip_first: bool = False) -> tuple[np.ndarray, float]:
    r""":math:`V_H = 0`, :math:`V_t = \max_a r + \gamma PV_{t+1}` by einsum; J = :math:`\mu_0^\top V_0`.
    ``skip_first`` leaves :math:`V_0 = 0` (the loop stopping at t = 1, the control)."""
    mdp, H = c.mdp, int(c.mdp.horizon)
    P, r = np.asarray(mdp.P), np.asarray(mdp.r)
    V = np.zeros((H + 1, mdp.n_states))
    for t in range(H - 1, 0 if skip_first else -1, -1):
        V[t] = np.max(r + mdp.gamma * np.einsum("sat,t->sa", P, V[t + 1]), axis=1)
    return V[:H], float(np.asarray(mdp.mu0) @ V[0])


identity(
    id="planning.backward_induction",
    statement=r"V_H = 0,\ V_t(s) = \max_a r(s,a) + \gamma\sum_{s'}P(s'|s,a)V_{t+1}(s'),\ "
    r"J(\pi_{greedy}) = \mu_0^\top V_0",
    source="Puterman 1994, 'Markov Decision Processes', sec. 4.5 (backward induction); Bellman 1957",
    reference="the recursion written with einsum from the model's arrays; the return of the library's time-indexed "
    "greedy policy by forward propagation of the state marginals (a different route from the backward values)",
    instance=_induction_instance,
    computed=_induction_library,
    expected=_induction_reference,
    tolerance=1e-13,
    tolerance_reason="H <= 5 steps of sums of at most 4 terms of size <= H max|r|: rounding only; measured "
    "residuals <= 3.8e-16 over 400 instances (seeds 0, 1), a margin of ~260",
    mutants={"the recursion stops at t = 1 (V_0 left at 0)": lambda c: _induction_reference(c, skip_first=True)},
)


# ----------------------------------------------------------------------------- action masks
def _masked_instance(rng: np.random.Generator) -> PathCase:
    """Discounted, 2..4 states, 3..4 actions, rewards U[-1, 0.2] (mostly negative, so that an infeasible action
    scored 0 instead of -inf would win the max), every state with 1..A-2 infeasible actions (at least two feasible
    ones, so that the soft policy is not forced), alpha in {0.3, 3}."""
    S, A = int(rng.integers(2, 5)), int(rng.integers(3, 5))
    base = random_mdp(S, A, gamma=float(rng.uniform(0.5, 0.8)), seed=rng)
    mask = np.ones((S, A), dtype=bool)
    for s in range(S):
        off = rng.choice(A, size=int(rng.integers(1, A - 1)), replace=False)
        mask[s, off] = False
    r = rng.uniform(-1.0, 0.2, (S, A))
    mdp = FiniteMDP(np.asarray(base.P), r, np.asarray(base.mu0), base.gamma, action_mask=mask)
    return PathCase(mdp, TabularSoftmax(S, A), np.zeros(S * A), {"alpha": float(rng.choice([0.3, 3.0])), "mask": mask})


def _masked_library(c: PathCase) -> tuple:
    """V of value and policy iteration, the policies of soft policy and soft value iteration (once per instance)."""
    if "library" not in c.extra:
        a = c.extra["alpha"]
        spi = soft_policy_iteration(c.mdp, a)
        svi = soft_value_iteration(c.mdp, a)
        c.extra["library"] = (np.asarray(value_iteration(c.mdp).V), np.asarray(policy_iteration(c.mdp).V),
                              np.asarray(spi.policy), np.asarray(svi.policy))
    return c.extra["library"]


def _masked_softmax(Q: np.ndarray, alpha: float, mask: np.ndarray | None) -> np.ndarray:
    z = Q / alpha
    if mask is not None:
        z = np.where(mask, z, -np.inf)
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def _soft_q(c: PathCase, pi: np.ndarray, alpha: float) -> np.ndarray:
    r""":math:`Q^\pi_{soft} = r + \gamma P V`, :math:`V = (I - \gamma P_\pi)^{-1}(r_\pi - \alpha\sum_a\pi\log\pi)` by an LU solve."""
    mdp = c.mdp
    P, r = np.asarray(mdp.P), np.asarray(mdp.r)
    with np.errstate(divide="ignore", invalid="ignore"):
        ent = -np.sum(np.where(pi > 0, pi * np.log(np.where(pi > 0, pi, 1.0)), 0.0), axis=1)
    P_pi = np.einsum("sa,sat->st", pi, P)
    V = np.linalg.solve(np.eye(mdp.n_states) - mdp.gamma * P_pi, np.sum(pi * r, axis=1) + alpha * ent)
    return r + mdp.gamma * np.einsum("sat,t->sa", P, V)


def _masked_reference(c: PathCase, *, use_mask: bool = True, temperature: bool = True) -> tuple:
    r"""V* as the elementwise maximum of the values of every deterministic policy over the feasible actions
    (enumeration, dense LU solves); the soft-optimal policy's fixed point :math:`\pi = \mathrm{softmax}_{feasible}
    (Q^\pi_{soft}/\alpha)` with :math:`Q^\pi_{soft}` of the library's policy by an LU solve. The flags make the
    controls: every action feasible (mask ignored), the softmax of Q instead of Q/α."""
    mdp, mask, alpha = c.mdp, c.extra["mask"], c.extra["alpha"]
    S, A = mdp.n_states, mdp.n_actions
    choices = [np.flatnonzero(mask[s]) if use_mask else np.arange(A) for s in range(S)]
    pis = np.array([np.eye(A)[list(acts)] for acts in itertools.product(*choices)])
    V_star = np.max(ref.values(mdp, pis).V, axis=0)
    lib = _masked_library(c)
    t = alpha if temperature else 1.0
    m = mask if use_mask else None
    return (V_star, V_star, _masked_softmax(_soft_q(c, lib[2], alpha), t, m),
            _masked_softmax(_soft_q(c, lib[3], alpha), t, m))


identity(
    id="updates.masked_control",
    statement=r"V^* = \max_{\pi \text{ deterministic on feasible actions}} V^\pi;\ \pi^*_{soft}(a|s) \propto "
    r"1[a \text{ feasible}]\exp(Q^{\pi^*}_{soft}(s,a)/\alpha)",
    source="Puterman 1994, Theorem 6.2.10 (a deterministic optimal policy exists); Haarnoja et al. 2018, 'Soft "
    "actor-critic', Lemma 2 and Theorem 1 (soft policy iteration's fixed point), over the feasible actions",
    reference="enumeration of the deterministic policies over the feasible actions, each evaluated by a dense LU "
    "solve (value_iteration and policy_iteration); the soft Q of the library's soft policy (soft_policy_iteration, "
    "soft_value_iteration) by an LU solve with the entropy bonus written out, then the masked softmax",
    instance=_masked_instance,
    computed=_masked_library,
    expected=_masked_reference,
    tolerance=1e-12,
    tolerance_reason="value iteration stops at its rounding-level bound and soft policy/value iteration at "
    "1e-12 relative (policy change, Q bound), amplified by 1/(1-gamma) <= 5 and 1/alpha <= 3.3 in the fixed "
    "point: measured residuals <= 1.0e-14 over 400 instances (seeds 0, 1), a margin of ~100",
    mutants={
        "infeasible actions not excluded": lambda c: _masked_reference(c, use_mask=False),
        "softmax of Q instead of Q/alpha": lambda c: _masked_reference(c, temperature=False),
    },
)


# ----------------------------------------------------------------------------- the sampled oracle
def _sampled_instance(rng: np.random.Generator) -> PathCase:
    S, A = int(rng.integers(2, 4)), int(rng.integers(2, 4))
    mdp = random_mdp(S, A, gamma=float(rng.uniform(0.5, 0.8)), seed=rng)
    pol = TabularSoftmax(S, A)
    theta = rng.standard_normal(pol.n_params)
    horizon = None if rng.random() < 0.5 else int(rng.integers(2, 5))
    N = int(rng.integers(3, 9))
    oracle = SampledSource(mdp, pol, N, seed=0, horizon=horizon).at(theta, seed=int(rng.integers(2**31)))
    return PathCase(mdp, pol, theta, {"oracle": oracle, "v": rng.standard_normal(pol.n_params), "N": N,
                                      "geometric": horizon is None})


def _sampled_library(c: PathCase) -> tuple[np.ndarray, np.ndarray]:
    o = c.extra["oracle"]
    return np.asarray(o.gradient), np.asarray(o.fisher_vector_product(c.extra["v"]))


def _sampled_reference(c: PathCase, *, per_episode: str = "mean", fisher_normalized: bool = True) -> tuple:
    r"""From the episodes' padded arrays: :math:`\hat g = \frac1N\sum_n\sum_{t<L_n}d^t\psi(s_t,a_t)G_t` with
    :math:`G_t = \sum_{k\ge t}d^{k-t}r_k` (d = 1 under geometric stopping, γ with a fixed horizon) and
    :math:`\hat Fv = \frac1N\sum_n\sum_{t<L_n}w_t\psi(\psi^\top v)`, :math:`w_t = 1-\gamma` (geometric stopping:
    the expected number of steps is 1/(1-γ)) or :math:`\gamma^t/\sum_{t<T}\gamma^t`. The flags make the controls:
    the sum over episodes instead of the mean, the Fisher weights without their normalization."""
    e = c.extra
    tr = e["oracle"].trajectories
    N, T = e["N"], tr.n_steps
    s, a, r = np.asarray(tr.states)[:, :T], np.asarray(tr.actions)[:, :T], np.asarray(tr.rewards)[:, :T]
    real = np.asarray(tr.mask)
    d = 1.0 if e["geometric"] else c.mdp.gamma
    G = np.zeros((N, T))
    acc = np.zeros(N)
    for t in range(T - 1, -1, -1):
        acc = np.where(real[:, t], r[:, t] + d * acc, 0.0)
        G[:, t] = acc
    disc = d ** np.arange(T)
    psi = ref.score(c.policy, c.theta)[s, a]  # (N, T, n)
    g = np.einsum("nt,ntk->k", real * disc * G, psi) / (N if per_episode == "mean" else 1.0)
    if e["geometric"]:
        w = np.full(T, (1.0 - c.mdp.gamma) if fisher_normalized else 1.0)
    else:
        w = disc / (disc.sum() if fisher_normalized else 1.0)
    Fv = np.einsum("nt,ntk,nt->k", real * w, psi, psi @ e["v"]) / N
    return g, Fv


identity(
    id="updates.sampled_oracle_gradient_fisher",
    statement=r"\hat g = \frac1N\sum_n\sum_{t<L_n}d^t\nabla\log\pi(a_t|s_t)G_t,\quad \hat Fv = \frac1N\sum_n\sum_{t<L_n}"
    r"w_t\nabla\log\pi(a_t|s_t)\nabla\log\pi(a_t|s_t)^\top v",
    source="Williams 1992 (REINFORCE with reward-to-go); Kakade 2002 (the Fisher matrix of the state-action "
    "distribution); Schulman et al. 2015, Appendix C (sampled Fisher-vector products)",
    reference="the sampled oracle's own episodes read from their padded arrays: reward-to-go by a backward loop, "
    "the explicit score, weights 1/N per episode and the per-step Fisher weights written out",
    instance=_sampled_instance,
    computed=_sampled_library,
    expected=_sampled_reference,
    tolerance=1e-13,
    tolerance_reason="sums over at most 8 episodes of products of size <= 1/(1-gamma): rounding only; measured "
    "residuals <= 5.9e-16 over 400 instances (seeds 0, 1), a margin of ~170",
    mutants={
        "gradient summed over episodes instead of averaged": lambda c: _sampled_reference(c, per_episode="sum"),
        "Fisher weights without their normalization (1-gamma or 1/sum gamma^t)":
            lambda c: _sampled_reference(c, fisher_normalized=False),
    },
)


# ----------------------------------------------------------------------------- cubic Newton: the hard case
class _QuadraticOracle:
    """An oracle of a quadratic objective with given gradient g and Hessian H at θ (for the hard case)."""

    def __init__(self, g: np.ndarray, H: np.ndarray) -> None:
        self.gradient, self._H, self.J = g, H, None

    def hessian(self) -> np.ndarray:
        return self._H


class _QuadraticSource:
    """A gradient source whose oracle answers g and H (a one-state tabular softmax carries θ's length)."""

    def __init__(self, g: np.ndarray, H: np.ndarray) -> None:
        self.policy = TabularSoftmax(1, g.shape[0])
        self._oracle = _QuadraticOracle(g, H)

    def at(self, theta: Any, seed: Any = None) -> _QuadraticOracle:
        return self._oracle


def _hard_instance(rng: np.random.Generator) -> PathCase:
    r"""H with a simple top eigenvalue :math:`\mu_{\max}` in [0.5, 2] (others in [-3, μ_max - 0.3]), g orthogonal to its
    eigenvector u, and M such that :math:`\|(\mu_{\max}I - H)^+g\| = \kappa\,2\mu_{\max}/M`, κ in [0.2, 0.8]: the
    hard case, where the maximizer is :math:`(\mu_{\max}I - H)^+g + \tau u` with :math:`\|h\| = 2\mu_{\max}/M`."""
    n = int(rng.integers(3, 7))
    U = np.linalg.qr(rng.standard_normal((n, n)))[0]
    top = float(rng.uniform(0.5, 2.0))
    mu = np.append(rng.uniform(-3.0, top - 0.3, n - 1), top)
    H = (U * mu) @ U.T
    gi = np.append(rng.standard_normal(n - 1), 0.0)
    c_norm = float(np.linalg.norm(gi[:-1] / (top - mu[:-1])))
    M = float(rng.uniform(0.2, 0.8)) * 2.0 * top / c_norm
    pol = TabularSoftmax(1, n)
    return PathCase(None, pol, np.zeros(n), {"g": U @ gi, "H": 0.5 * (H + H.T), "M": M, "top": top})


def _hard_conditions(c: PathCase, h: np.ndarray) -> np.ndarray:
    e = c.extra
    g, H, M = e["g"], e["H"], e["M"]
    lam = 0.5 * M * float(np.linalg.norm(h))
    stationarity = (g + H @ h - lam * h) / float(np.max(np.abs(g)))
    second = max(0.0, float(np.linalg.eigvalsh(H)[-1]) - lam) / float(np.max(np.abs(np.linalg.eigvalsh(H))))
    return np.append(stationarity, second)


def _hard_library(c: PathCase) -> np.ndarray:
    e = c.extra
    h = cubic_newton_step(_QuadraticSource(e["g"], e["H"]), c.theta, e["M"]).direction
    return _hard_conditions(c, np.asarray(h))


def _hard_half_radius(c: PathCase) -> np.ndarray:
    """The hard-case step with :math:`\\|h\\| = \\mu_{\\max}/M` (the factor 2 of λ = (M/2)‖h‖ dropped)."""
    e = c.extra
    H, g, M, top = e["H"], e["g"], e["M"], e["top"]
    mu, U = np.linalg.eigh(H)
    base = np.linalg.lstsq(top * np.eye(H.shape[0]) - H, g, rcond=1e-10)[0]
    tau = np.sqrt(max((top / M) ** 2 - float(base @ base), 0.0))
    return _hard_conditions(c, base + tau * U[:, -1])


identity(
    id="updates.cubic_newton_hard_case",
    statement=r"g \perp u_{\max},\ \|(\mu_{\max}I - H)^+g\| < 2\mu_{\max}/M \Rightarrow h = (\mu_{\max}I - H)^+g + "
    r"\tau u_{\max}\text{ with }g + Hh - \tfrac M2\|h\|h = 0,\ \tfrac M2\|h\|I - H \succeq 0",
    source="Nesterov & Polyak 2006, 'Cubic regularization of Newton method and its global performance', Math. "
    "Program. 108, Theorem 10 and sec. 5 (the degenerate case of the cubic model), for maximization",
    reference="the two optimality conditions evaluated on the library's step for a quadratic objective whose g and "
    "H are built from a random orthonormal eigenbasis with g orthogonal to the top eigenvector; the top eigenvalue "
    "by numpy.linalg.eigvalsh",
    instance=_hard_instance,
    computed=_hard_library,
    expected=lambda c: np.zeros(c.policy.n_params + 1),
    tolerance=2e-12,
    tolerance_reason="h from an eigendecomposition of a matrix of size <= 6 with eigenvalues in [-3, 2] and |h| of "
    "order 1: rounding amplified by |H| |h| / |g|; measured residuals <= 1.4e-14 over 400 instances (seeds 0, 1), "
    "a margin of ~140",
    mutants={"hard-case radius mu_max/M instead of 2 mu_max/M": _hard_half_radius},
)
