r"""Theorems that reach the remaining public functions of :mod:`pgexact.updates`.

The greedy step, the sampled surrogate and KL of a batch and their gradients, PPO's minibatch ascent
(clipped, adaptive-KL penalty, dual descent on the multiplier), the training driver, and the damped and
cubic-regularized Newton steps. Every reference is written here from the model's data with plain numpy
(:mod:`pgexact.theorems._reference`: log-softmax written out, dense LU solves, complex-step derivatives,
loops in Python), never through :mod:`pgexact.updates`.

Instances are small (2..5 states, 2..4 actions, tabular softmax) so that the default ``pgexact verify``
run of this module stays within a fraction of a second of CPU.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Callable

import numpy as np

from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import TabularSoftmax
from ..updates import (
    ExactSource,
    SampledSource,
    cubic_newton_step,
    greedy_policy,
    kl_and_gradient,
    newton_step,
    pg_step,
    ppo_dual_update,
    ppo_kl_update,
    ppo_update,
    surrogate_and_gradient,
    surrogate_value,
    train,
)
from . import _reference as ref
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []

PPO_SOURCE = "Schulman et al. 2017, 'Proximal policy optimization algorithms', sec. 3-5 (eq. 7, eq. 8, Algorithm 1)"


@dataclass(frozen=True)
class Case:
    """A discounted MDP, a tabular softmax policy, parameters, and the knobs of one theorem (``extra``)."""

    mdp: FiniteMDP
    policy: TabularSoftmax
    theta: np.ndarray
    extra: dict = field(default_factory=dict)
    cache: dict = field(default_factory=dict, compare=False, repr=False)

    def once(self, key: str, fn: Callable[[], Any]) -> Any:
        """``fn()`` computed once per instance."""
        if key not in self.cache:
            self.cache[key] = fn()
        return self.cache[key]


def _case(rng: np.random.Generator, *, states=(2, 5), actions=(2, 4), gamma=(0.3, 0.9), sigma=(0.5, 1.0)) -> Case:
    S = int(rng.integers(states[0], states[1] + 1))
    A = int(rng.integers(actions[0], actions[1] + 1))
    mdp = random_mdp(S, A, gamma=float(rng.uniform(*gamma)), seed=rng)
    pol = TabularSoftmax(S, A)
    theta = np.clip(float(rng.choice(sigma)) * rng.standard_normal(pol.n_params), -4, 4)
    return Case(mdp, pol, theta)


# ----------------------------------------------------------------------------- references (exact batch)
def _old(c: Case) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """(pi_old, log pi_old, rho = d/(1-gamma), A) of the instance's theta: LU solves from the model's data."""
    def build():
        pi = ref.probs(c.policy, c.theta)
        d = ref.occupancy(c.mdp, pi)
        return pi, ref.log_probs(c.policy, c.theta), d / (1.0 - c.mdp.gamma), ref.values(c.mdp, pi).A
    return c.once("old", build)


def _surrogate(c: Case, X: np.ndarray, *, kl_swapped: bool = False, beta: float = 0.0) -> np.ndarray:
    r""":math:`\bar A(\theta') - \beta E_{d_{old}} KL(\pi_{old}\|\pi_{\theta'})` for a stack X (k, n), complex-safe."""
    pi, lp, rho, A = _old(c)
    lpn = ref.log_probs(c.policy, X)
    value = np.einsum("s,ksa,sa->k", rho, np.exp(lpn), A)  # sum_a pi_old A = 0, so this is sum rho pi_old (r - 1) A
    if beta:
        d = rho * (1.0 - c.mdp.gamma)
        kl = (np.einsum("s,ksa,ksa->k", d, np.exp(lpn), lpn - lp) if kl_swapped
              else np.einsum("s,sa,ksa->k", d, pi, lp - lpn))
        value = value - beta * kl
    return value


def _clipped_rows(c: Case, X: np.ndarray, rows: np.ndarray, scale: float, eps: float) -> np.ndarray:
    r""":math:`\text{scale}\sum_{i\in rows}\rho\pi_{old}[\min(rA, \mathrm{clip}(r)A) - A]` for a complex stack X,
    with the branch of each row decided by the real part of its ratio (the derivative of the active piece)."""
    pi, lp, rho, A = _old(c)
    S, nA = pi.shape
    s, a = np.divmod(rows, nA)
    w, adv = rho[s] * pi[s, a], A[s, a]
    ratio = np.exp(ref.log_probs(c.policy, X)[:, s, a] - lp[s, a])
    clipped = ((adv > 0) & (ratio.real > 1 + eps)) | ((adv < 0) & (ratio.real < 1 - eps))
    term = np.where(clipped, np.clip(ratio.real, 1 - eps, 1 + eps) * adv, ratio * adv)
    return scale * np.sum(w * (term - adv), axis=-1)


def _cs(f: Callable[[np.ndarray], np.ndarray], x: np.ndarray) -> np.ndarray:
    return ref.complex_step_gradient(f, x)


# ----------------------------------------------------------------------------- greedy policy
def _greedy_instance(rng: np.random.Generator) -> Case:
    r"""Q of a random policy by an LU solve on an MDP whose last action duplicates its best action in one state
    (an exact tie there), one infeasible action (the unmasked best one of another state), and a current
    policy with a tolerance that keeps a strictly worse current action in at least one state. Redrawn until
    the one-step greedy policy of r differs from that of Q (else the myopic control could not be told apart)."""
    while True:
        c = _case(rng, states=(3, 5), actions=(2, 3), gamma=(0.6, 0.95))
        S, A0 = c.mdp.n_states, c.mdp.n_actions
        pi = ref.probs(c.policy, c.theta)
        Q0 = ref.values(c.mdp, pi).Q
        s_tie, s_mask = (int(x) for x in rng.choice(S, 2, replace=False))
        j = int(np.argmax(Q0[s_tie]))
        # the duplicate of action j: same rewards and transitions, so the same Q everywhere (copied exactly)
        Q = np.concatenate([Q0, Q0[:, j:j + 1]], axis=1)
        r = np.concatenate([np.asarray(c.mdp.r), np.asarray(c.mdp.r)[:, j:j + 1]], axis=1)
        feasible = np.ones((S, A0 + 1), dtype=bool)
        feasible[s_mask, np.flatnonzero(Q[s_mask] == Q[s_mask].max())] = False
        Qm, rm = np.where(feasible, Q, -np.inf), np.where(feasible, r, -np.inf)
        if np.array_equal(_brute_greedy(Qm), _brute_greedy(rm)):
            continue
        current = np.array([rng.choice(np.flatnonzero(feasible[s])) for s in range(S)])
        gaps = Qm.max(axis=1) - Qm[np.arange(S), current]
        positive = gaps[gaps > 0]
        if positive.size == 0:
            continue
        atol = 1.25 * float(np.median(positive))  # strictly above the median gap: no tie for rounding to decide
        return Case(c.mdp, c.policy, c.theta, {"Q": Qm, "r": rm, "raw_Q": Q, "current": current, "atol": atol})


def _brute_greedy(Q: np.ndarray, current: np.ndarray | None = None, atol: float = 0.0, *,
                  lowest: bool = True) -> np.ndarray:
    """One-hot greedy policy by loops: the first (``lowest``) or last maximizing action; ``current`` kept within atol."""
    S, A = Q.shape
    out = np.zeros((S, A))
    for s in range(S):
        best_value, best = -np.inf, -1
        for a in (range(A) if lowest else range(A - 1, -1, -1)):
            if Q[s, a] > best_value:
                best_value, best = Q[s, a], a
        if current is not None and Q[s, current[s]] >= best_value - atol:
            best = int(current[s])
        out[s, best] = 1.0
    return out


def _greedy(c: Case) -> tuple[np.ndarray, np.ndarray]:
    e = c.extra
    return greedy_policy(e["Q"]), greedy_policy(e["Q"], current=e["current"], atol=e["atol"])


def _greedy_expected(c: Case, *, of: str = "Q", lowest: bool = True, keep: bool = True,
                     masked: bool = True) -> tuple[np.ndarray, np.ndarray]:
    e = c.extra
    M = e[of] if masked else e["raw_Q"]  # the mistake: the greedy step over Q with the mask not applied
    return (_brute_greedy(M, lowest=lowest),
            _brute_greedy(M, e["current"] if keep else None, e["atol"], lowest=lowest))


identity(
    id="updates.greedy_policy",
    statement=r"\pi(a|s) = 1\left[a = \min\arg\max_{b\ \mathrm{feasible}} Q(s,b)\right],\ \text{except } "
    r"\pi(\mathrm{cur}_s|s) = 1 \text{ when } Q(s,\mathrm{cur}_s) \ge \max_b Q(s,b) - \mathrm{atol}",
    source="Sutton & Barto 2018, sec. 4.2 (greedy policy improvement; keeping the current action on ties makes "
    "policy iteration terminate, sec. 4.3); Puterman 1994, sec. 6.4",
    reference="one-hot argmax by Python loops over each row of Q (Q^pi by a dense LU solve, an exact tie from a "
    "duplicated action, infeasible actions at -inf), first maximizer kept; the current action kept within atol",
    instance=_greedy_instance,
    computed=_greedy,
    expected=_greedy_expected,
    tolerance=1e-12,
    tolerance_reason="a comparison of one-hot matrices: agreement is exactly 0 and any disagreement a residual of 1; "
    "1e-12 stands for exact agreement",
    mutants={
        "argmax of r (one-step greedy) instead of Q": lambda c: _greedy_expected(c, of="r"),
        "ties to the highest action": lambda c: _greedy_expected(c, lowest=False),
        "infeasible actions not excluded": lambda c: _greedy_expected(c, masked=False),
        "current action ignored (plain argmax)": lambda c: _greedy_expected(c, keep=False),
    },
)


# ----------------------------------------------------------------------------- sampled surrogate and KL
def _batch_instance(rng: np.random.Generator) -> Case:
    """A sampled batch (reward-to-go advantages, horizon T) of the policy at theta, per step (aggregate=False) and
    the same episodes aggregated per (t, s, a) (aggregate=True: the surrogate is linear in the rows, so the same)."""
    c = _case(rng, states=(2, 4), actions=(2, 3))
    T, N = int(rng.integers(2, 5)), int(rng.integers(3, 9))
    theta_new = c.theta + float(rng.choice([0.3, 1.0])) * rng.standard_normal(c.policy.n_params)
    seed = int(rng.integers(2**31))
    per_step, aggregated = (SampledSource(c.mdp, c.policy, N, seed=0, horizon=T, critic="none", aggregate=agg)
                            .at(c.theta, seed=seed) for agg in (False, True))
    return Case(c.mdp, c.policy, c.theta, {"theta_new": theta_new, "batch": per_step.batch,
                                           "aggregated": aggregated.batch, "trajs": per_step.trajectories,
                                           "T": T, "N": N})


def _batch_functions(c: Case) -> tuple:
    e = c.extra
    pol, batch, t = c.policy, e["batch"], e["theta_new"]
    sv, sg = surrogate_and_gradient(pol, batch, t)
    kv, kg = kl_and_gradient(pol, batch, t, ref.probs(pol, c.theta))
    av, ag = surrogate_and_gradient(pol, e["aggregated"], t)
    return surrogate_value(pol, batch, t), sv, sg, kv, kg, av, ag


def _episode_rows(c: Case, per_row: bool = False) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    r"""From the episodes' padded arrays: states, actions, weights :math:`\gamma^t/N`, reward-to-go
    :math:`G_t = \sum_{k\ge t}\gamma^{k-t}r_k`, and the discounted state frequencies
    :math:`\hat\nu(s) = \sum_{n,t}\gamma^t 1[s_{n,t}=s] / (N\sum_{t<T}\gamma^t)`. ``per_row``: the mistake
    of weighting by 1/(number of rows) instead of 1/N."""
    e = c.extra
    tr, T, N, g = e["trajs"], e["T"], e["N"], c.mdp.gamma
    s, a, r = np.asarray(tr.states)[:, :T], np.asarray(tr.actions)[:, :T], np.asarray(tr.rewards)[:, :T]
    G = np.zeros((N, T))
    acc = np.zeros(N)
    for t in range(T - 1, -1, -1):
        acc = r[:, t] + g * acc
        G[:, t] = acc
    disc = g ** np.arange(T)
    w = np.broadcast_to(disc / (N * T if per_row else N), (N, T))
    nu = np.zeros(c.mdp.n_states)
    np.add.at(nu, s, np.broadcast_to(disc, (N, T)) / (N * disc.sum()))
    return s.ravel(), a.ravel(), w.ravel(), G.ravel(), nu


def _batch_reference(c: Case, *, per_row: bool = False, swapped: bool = False, no_ratio: bool = False) -> tuple:
    s, a, w, G, nu = _episode_rows(c, per_row)
    lp_old = ref.log_probs(c.policy, c.theta)
    pi_old = np.exp(lp_old)

    def surrogate(X: np.ndarray) -> np.ndarray:
        lpn = ref.log_probs(c.policy, X)[:, s, a]
        ratio = np.exp(lpn) if no_ratio else np.exp(lpn - lp_old[s, a])
        return np.sum(w * (ratio - 1.0) * G, axis=-1)

    def kl(X: np.ndarray) -> np.ndarray:
        lpn = ref.log_probs(c.policy, X)
        if swapped:
            return np.einsum("s,ksa,ksa->k", nu, np.exp(lpn), lpn - lp_old)
        return np.einsum("s,sa,ksa->k", nu, pi_old, lp_old - lpn)

    t = np.asarray(c.extra["theta_new"])[None, :]
    sv, kv = float(surrogate(t)[0]), float(kl(t)[0])
    sg = _cs(surrogate, t[0])
    return sv, sv, sg, kv, _cs(kl, t[0]), sv, sg


identity(
    id="updates.sampled_surrogate_and_kl",
    statement=r"\hat{\bar A}(\theta') = \frac1N\sum_{n}\sum_{t<T}\gamma^t\left(\frac{\pi_{\theta'}(a_t|s_t)}"
    r"{\pi_{old}(a_t|s_t)} - 1\right)G_t,\quad \widehat{KL}(\theta') = \sum_s\hat\nu(s)\,KL(\pi_{old}(\cdot|s)\|"
    r"\pi_{\theta'}(\cdot|s)),\ \text{and their gradients in }\theta'\ \text{(per-step rows, and rows aggregated "
    r"per }(t, s, a))",
    source="Schulman et al. 2015, 'Trust region policy optimization', eq. 14 (importance-sampled surrogate) and "
    "eq. 12 (old-first KL); course notes 'CS285: Lecture 9', section 'Policy Gradients as Policy Iteration'",
    reference="the same episodes' padded arrays (states, actions, rewards) read directly: reward-to-go by a "
    "backward loop, weights gamma^t/N, discounted state frequencies, log-softmax written out with numpy; "
    "gradients by complex steps (h = 1e-30) of those formulas (never the batch's weights, advantages or "
    "log-probabilities)",
    instance=_batch_instance,
    computed=_batch_functions,
    expected=_batch_reference,
    tolerance=1e-13,
    tolerance_reason="sums of at most 4 x 8 products and a complex step (no truncation): rounding only; measured "
    "residuals <= 7.8e-16 (seeds 0 and 1) over 200 instances each, a margin of ~130",
    mutants={
        "KL(pi_new || pi_old) (direction swapped)": lambda c: _batch_reference(c, swapped=True),
        "importance ratio missing (pi_new(a|s) in place of pi_new/pi_old)": lambda c: _batch_reference(c, no_ratio=True),
        "mean over rows (1/(N T)) instead of over episodes (1/N)": lambda c: _batch_reference(c, per_row=True),
    },
)


# ----------------------------------------------------------------------------- PPO: the minibatch ascent loop
def _ppo_instance(rng: np.random.Generator) -> Case:
    """n = S A rows split into k minibatches with k not dividing n (so that the weighting n/|mb| differs from k)."""
    while True:
        c = _case(rng, states=(2, 4), actions=(2, 3))
        n = c.policy.n_params
        ks = [k for k in (2, 3, 4, 5) if k < n and n % k]
        if ks:
            break
    extra = {"k": int(rng.choice(ks)), "epochs": int(rng.integers(1, 3)), "lr": float(rng.choice([0.1, 0.5, 1.0])),
             "clip": float(rng.choice([0.1, 0.2, 0.3])), "seed": int(rng.integers(2**31))}
    return Case(c.mdp, c.policy, c.theta, extra)


def _ppo(c: Case) -> tuple[np.ndarray, np.ndarray]:
    e = c.extra
    src = ExactSource(c.mdp, c.policy)
    one = ppo_update(src, c.theta, e["clip"], lr=e["lr"], epochs=1, n_minibatches=1)
    mb = ppo_update(src, c.theta, e["clip"], lr=e["lr"], epochs=e["epochs"], n_minibatches=e["k"], seed=e["seed"])
    return one.theta, mb.theta


def _ppo_reference(c: Case, weighting: str = "mean") -> tuple[np.ndarray, np.ndarray]:
    r"""One full-batch step :math:`\theta + \eta\nabla J` (complex steps of J), and the minibatch loop redone:
    rows (s, a) in lexicographic order, shuffled per epoch by the generator of the documented seed split
    (``SeedSequence(seed).spawn(2)[1]``), cut by ``numpy.array_split``; each minibatch step is the complex-step
    gradient of its clipped rows, scaled by n/|mb| (its mean over rows, at the full batch's normalization)."""
    e = c.extra
    pi, _, _, _ = _old(c)
    n = pi.size

    def J(X: np.ndarray) -> np.ndarray:
        return ref.values(c.mdp, ref.probs(c.policy, X)).J

    one = c.theta + e["lr"] * _cs(J, c.theta)
    rng = np.random.default_rng(np.random.SeedSequence(e["seed"]).spawn(2)[1])
    theta = c.theta.copy()
    for _ in range(e["epochs"]):
        for idx in np.array_split(rng.permutation(n), e["k"]):
            scale = {"mean": n / idx.size, "sum": 1.0, "count": float(e["k"])}[weighting]
            theta = theta + e["lr"] * _cs(lambda X, idx=idx, scale=scale: _clipped_rows(c, X, idx, scale, e["clip"]), theta)
    return one, theta


identity(
    id="updates.ppo_minibatch_ascent",
    statement=r"\theta \leftarrow \theta + \eta\,\frac{n}{|B|}\sum_{i\in B} w_i\nabla_\theta\left[\min(r_iA_i, "
    r"\mathrm{clip}(r_i,1\pm\epsilon)A_i) - A_i\right] \text{ for each minibatch } B \text{ of each epoch; one epoch "
    r"of one full batch is } \theta + \eta\nabla J(\theta)",
    source=PPO_SOURCE + " (minibatch SGD on the empirical mean over timesteps; L^CLIP has the gradient of J at "
    "theta_old)",
    reference="complex-step gradient of J by a dense LU solve (one full-batch step), and the minibatch loop redone "
    "with complex-step gradients of the clipped rows written out (rho, pi_old, A by LU solves), the rows shuffled "
    "by the documented seed split",
    instance=_ppo_instance,
    computed=_ppo,
    expected=_ppo_reference,
    tolerance=5e-13,
    tolerance_reason="up to 8 ascent steps, each gradient exact to rounding on both sides (complex step, no "
    "truncation) and amplified by at most (1 + eta L) per step; measured residuals <= 4.4e-15 (seed 0) and "
    "7.6e-16 (seed 1) over 200 instances each, a margin of ~110",
    mutants={
        "minibatch gradient summed over its rows (no n/|B| scale)": lambda c: _ppo_reference(c, "sum"),
        "minibatch weighted by the number of minibatches instead of n/|B|": lambda c: _ppo_reference(c, "count"),
    },
)


# ----------------------------------------------------------------------------- PPO: adaptive KL penalty
def _penalized_ascent(c: Case, beta: float, epochs: int, lr: float, *, kl_swapped: bool = False) -> np.ndarray:
    theta = c.theta.copy()
    for _ in range(epochs):
        theta = theta + lr * _cs(lambda X: _surrogate(c, X, beta=beta, kl_swapped=kl_swapped), theta)
    return theta


def _ref_kl(c: Case, theta_new: np.ndarray) -> float:
    pi, lp, rho, _ = _old(c)
    return float((rho * (1.0 - c.mdp.gamma)) @ ref.kl_per_state(lp, ref.log_probs(c.policy, theta_new)))


def _kl_instance(rng: np.random.Generator) -> Case:
    """d_targ a factor 2 or 1/2 from the KL the update moves (reference), so that beta always changes."""
    c = _case(rng, states=(2, 4), actions=(2, 3))
    e = {"beta": float(rng.choice([0.3, 1.0, 3.0])), "epochs": int(rng.integers(2, 4)),
         "lr": float(rng.choice([0.3, 1.0]))}
    c = Case(c.mdp, c.policy, c.theta, e)
    d = _ref_kl(c, c.once("ascent", lambda: _penalized_ascent(c, e["beta"], e["epochs"], e["lr"])))
    e["kl_target"] = d * float(rng.choice([0.5, 2.0]))
    return c


def _ppo_kl(c: Case) -> tuple[np.ndarray, float, float]:
    e = c.extra
    res = ppo_kl_update(ExactSource(c.mdp, c.policy), c.theta, e["beta"], e["kl_target"], lr=e["lr"], epochs=e["epochs"])
    return res.theta, res.kl, res.next_coefficient


def _adaptive_beta(beta: float, d: float, target: float, inverted: bool = False) -> float:
    """Schulman et al. 2017, sec. 4: beta / 2 if d < target / 1.5, 2 beta if d > 1.5 target."""
    if d < target / 1.5:
        return beta * 2.0 if inverted else beta / 2.0
    if d > 1.5 * target:
        return beta / 2.0 if inverted else beta * 2.0
    return beta


def _ppo_kl_reference(c: Case, *, inverted: bool = False, kl_swapped: bool = False) -> tuple[np.ndarray, float, float]:
    e = c.extra
    theta = (_penalized_ascent(c, e["beta"], e["epochs"], e["lr"], kl_swapped=True) if kl_swapped
             else c.once("ascent", lambda: _penalized_ascent(c, e["beta"], e["epochs"], e["lr"])))
    d = _ref_kl(c, theta)
    return theta, d, _adaptive_beta(e["beta"], d, e["kl_target"], inverted)


identity(
    id="updates.ppo_kl_adaptive",
    statement=r"\theta' = \text{ascent on } \bar A(\theta') - \beta E_{d_{old}}KL(\pi_{old}\|\pi_{\theta'});\ "
    r"d = E_{d_{old}}KL(\pi_{old}\|\pi_{\theta'}):\ \beta\leftarrow\beta/2 \text{ if } d < d_{targ}/1.5,\ "
    r"\beta\leftarrow 2\beta \text{ if } d > 1.5\,d_{targ}",
    source=PPO_SOURCE + " (sec. 4, adaptive KL penalty coefficient)",
    reference="full-batch ascent redone with complex-step gradients of the surrogate and the KL written out from "
    "log-probabilities (rho, A by LU solves); d written out; the coefficient rule of the paper in Python",
    instance=_kl_instance,
    computed=_ppo_kl,
    expected=_ppo_kl_reference,
    tolerance=3e-13,
    tolerance_reason="at most 3 ascent steps with gradients exact to rounding on both sides; measured residuals "
    "<= 2.9e-15 (seed 0) and 8.4e-16 (seed 1) over 200 instances each, a margin of ~100; d_targ is a factor 2 "
    "from d, so rounding never flips the rule",
    mutants={
        "beta adapted the wrong way (doubled when the KL is small)": lambda c: _ppo_kl_reference(c, inverted=True),
        "penalty KL(pi_new || pi_old) (direction swapped)": lambda c: _ppo_kl_reference(c, kl_swapped=True),
    },
)


# ----------------------------------------------------------------------------- PPO: dual descent on lambda
def _dual_instance(rng: np.random.Generator) -> Case:
    r"""Two dual steps from one start: δ₁ > d with λ₁ small (the projection on λ ≥ 0 is active) and δ₂ < d."""
    c = _case(rng, states=(2, 4), actions=(2, 3))
    e = {"epochs": int(rng.integers(1, 3)), "lr": float(rng.choice([0.3, 1.0])), "dual_lr": float(rng.choice([0.5, 2.0])),
         "lams": (float(rng.uniform(0.0, 0.5)), float(rng.uniform(0.0, 2.0)))}
    c = Case(c.mdp, c.policy, c.theta, e)
    d = [_ref_kl(c, c.once(f"ascent{i}", lambda lam=lam: _penalized_ascent(c, lam, e["epochs"], e["lr"])))
         for i, lam in enumerate(e["lams"])]
    u = float(rng.uniform(2.0, 5.0))
    delta1 = d[0] + e["lams"][0] / e["dual_lr"] * u  # lam1 + dual_lr (d - delta1) = lam1 (1 - u) < 0
    e["deltas"] = (delta1, d[1] / u)
    return c


def _dual(c: Case) -> tuple:
    e = c.extra
    out = []
    for lam, delta in zip(e["lams"], e["deltas"]):
        res = ppo_dual_update(ExactSource(c.mdp, c.policy), c.theta, delta, lam, lr=e["lr"], dual_lr=e["dual_lr"],
                              epochs=e["epochs"])
        out += [res.theta, res.next_coefficient]
    return tuple(out)


def _dual_reference(c: Case, *, project: bool = True, sign: float = 1.0) -> tuple:
    e = c.extra
    out = []
    for i, (lam, delta) in enumerate(zip(e["lams"], e["deltas"])):
        theta = c.once(f"ascent{i}", lambda lam=lam: _penalized_ascent(c, lam, e["epochs"], e["lr"]))
        nxt = lam + sign * e["dual_lr"] * (_ref_kl(c, theta) - delta)
        out += [theta, max(0.0, nxt) if project else nxt]
    return tuple(out)


identity(
    id="updates.ppo_dual_step",
    statement=r"\theta' = \text{ascent on } \bar A(\theta') - \lambda(E_{d_{old}}KL(\pi_{old}\|\pi_{\theta'}) - \delta),"
    r"\quad \lambda \leftarrow \max\left(0,\ \lambda + \alpha_\lambda (KL(\pi_{old}\|\pi_{\theta'}) - \delta)\right)",
    source="course notes 'CS285: Lecture 9', section 'Enforcing the Distribution Constraint' (dual gradient "
    "descent; the multiplier of an inequality constraint projected on lambda >= 0: Boyd & Vandenberghe 2004, sec. 5.5)",
    reference="the penalized full-batch ascent redone with complex-step gradients of the surrogate and KL written "
    "out (LU solves), the KL written out, the projected dual step in Python; one step with the projection active "
    "and one without",
    instance=_dual_instance,
    computed=_dual,
    expected=_dual_reference,
    tolerance=1e-13,
    tolerance_reason="at most 2 ascent steps with gradients exact to rounding on both sides; measured residuals "
    "<= 8.9e-16 (seed 0) and 6.1e-16 (seed 1) over 200 instances each, a margin of ~110",
    mutants={
        "multiplier not projected on lambda >= 0": lambda c: _dual_reference(c, project=False),
        "dual step of the wrong sign (lambda - alpha (KL - delta))": lambda c: _dual_reference(c, sign=-1.0),
    },
)


# ----------------------------------------------------------------------------- the training driver
def _train_instance(rng: np.random.Generator) -> Case:
    """Three iterations of the exact gradient step; d_targ of the adaptive penalty a factor 4 from the first KL."""
    c = _case(rng, states=(2, 4), actions=(2, 3))
    e = {"lr": float(rng.choice([0.1, 0.5, 1.0])), "beta": float(rng.choice([0.3, 1.0, 3.0])), "n": 3}
    c = Case(c.mdp, c.policy, c.theta, e)
    thetas = _ref_iterates(c)
    e["kl_target"] = _kl_between(c, thetas[0], thetas[1]) * float(rng.choice([0.25, 4.0]))
    return c


def _ref_iterates(c: Case) -> np.ndarray:
    r""":math:`\theta_{k+1} = \theta_k + \eta\nabla J(\theta_k)`, gradients by complex steps of J (LU solves)."""
    def build():
        def J(X: np.ndarray) -> np.ndarray:
            return ref.values(c.mdp, ref.probs(c.policy, X)).J
        out = [c.theta]
        for _ in range(c.extra["n"]):
            out.append(out[-1] + c.extra["lr"] * _cs(J, out[-1]))
        return np.array(out)
    return c.once("iterates", build)


def _J_of(c: Case, theta: np.ndarray) -> float:
    return float(ref.values(c.mdp, ref.probs(c.policy, theta)).J)


def _kl_between(c: Case, old: np.ndarray, new: np.ndarray, swapped: bool = False) -> float:
    d = ref.occupancy(c.mdp, ref.probs(c.policy, old))
    lo, ln = ref.log_probs(c.policy, old), ref.log_probs(c.policy, new)
    return float(d @ (ref.kl_per_state(ln, lo) if swapped else ref.kl_per_state(lo, ln)))


def _train(c: Case) -> tuple:
    e = c.extra
    src = ExactSource(c.mdp, c.policy)
    pg = train(pg_step, src, c.theta, e["n"], lr=e["lr"])
    kl = train(ppo_kl_update, src, c.theta, e["n"], lr=e["lr"], epochs=1, beta=e["beta"], kl_target=e["kl_target"])
    return pg.thetas, pg.J, pg.kl, kl.thetas, np.array([r.coefficient for r in kl.results])


def _train_reference(c: Case, *, carry: bool = True, J_before: bool = False, kl_swapped: bool = False) -> tuple:
    r"""The iterates of :func:`_ref_iterates` (PPO-KL with one full-batch epoch moves by :math:`\eta\nabla J` too:
    the KL's gradient vanishes at θ_old), J and KL written out, β by the paper's rule on those KLs."""
    e = c.extra
    th = _ref_iterates(c)
    J = np.array([_J_of(c, t) for t in th])
    if J_before:  # the record of iterate k+1 taken before the update
        J = np.concatenate([J[:1], J[:-1]])
    kl = np.array([_kl_between(c, th[k], th[k + 1], kl_swapped) for k in range(e["n"])])
    betas = [e["beta"]]
    for k in range(e["n"] - 1):
        nxt = _adaptive_beta(betas[-1], _kl_between(c, th[k], th[k + 1]), e["kl_target"])
        betas.append(nxt if carry else e["beta"])
    return th, J, kl, th, np.array(betas)


identity(
    id="updates.train_records",
    statement=r"\text{train}(u, \theta_0, K):\ \theta_{k+1} = u(\theta_k),\ J_k = J(\theta_k),\ "
    r"KL_k = E_{d_{\theta_k}}KL(\pi_{\theta_k}\|\pi_{\theta_{k+1}}),\ \text{stateful coefficients carried: } "
    r"\beta_{k+1} = \mathrm{rule}(\beta_k, KL_k)",
    source="the training loop of Schulman et al. 2017, Algorithm 1 (PPO, adaptive beta carried between iterations); "
    "Sutton et al. 2000 (gradient ascent iterates)",
    reference="the iterates theta + eta grad J by complex steps of J (dense LU solves) redone three times; J and the "
    "old-first KL written out at each iterate; beta by the paper's rule on those KLs",
    instance=_train_instance,
    computed=_train,
    expected=_train_reference,
    tolerance=5e-13,
    tolerance_reason="three ascent steps with gradients exact to rounding on both sides, values from solves of "
    "condition <= 19; measured residuals <= 5.3e-15 (seed 0) and 1.8e-15 (seed 1) over 200 instances each, a "
    "margin of ~95",
    mutants={
        "coefficient not carried to the next call": lambda c: _train_reference(c, carry=False),
        "J of the new iterate recorded before the update (off by one)": lambda c: _train_reference(c, J_before=True),
        "KL moved recorded as KL(new || old)": lambda c: _train_reference(c, kl_swapped=True),
    },
)


# ----------------------------------------------------------------------------- Newton steps
def _hessian_case(rng: np.random.Generator) -> Case:
    r"""g by complex steps of J and H by complex steps of the gradient written out (policy gradient theorem with
    LU solves and the explicit score), symmetrized; N an orthonormal basis of the per-state shifts of the logits
    (the tabular softmax's invariance: H N = 0 and g ⊥ N)."""
    from .finite import Problem
    from .second_order import _ref_hessian

    c = _case(rng, states=(2, 4), actions=(2, 3), gamma=(0.3, 0.8))

    def J(X: np.ndarray) -> np.ndarray:
        return ref.values(c.mdp, ref.probs(c.policy, X)).J

    g = _cs(J, c.theta)
    H = _ref_hessian(Problem(c.mdp, c.policy, c.theta))
    H = 0.5 * (H + H.T)
    S, A = c.mdp.n_states, c.mdp.n_actions
    N = np.kron(np.eye(S), np.ones((A, 1))) / np.sqrt(A)
    mu = np.linalg.eigvalsh(H - 1e3 * np.max(np.abs(H)) * N @ N.T)[S:]  # the spectrum off the shifts
    return Case(c.mdp, c.policy, c.theta, {"g": g, "H": H, "N": N, "mu": mu})


def _newton_instance(rng: np.random.Generator) -> Case:
    """Damping lambda in [0, mu_max + 2 s] (s = max |mu|), at least 0.05 s away from every eigenvalue off the
    shifts (a well-posed solve: the model concave or not); lr in {0.1, 0.5, 1}."""
    c = _hessian_case(rng)
    mu = c.extra["mu"]
    s = float(np.max(np.abs(mu)))
    while True:
        lam = 0.0 if rng.random() < 0.2 else float(rng.uniform(0.0, max(mu[-1], 0.0) + 2.0 * s))
        if np.min(np.abs(lam - mu)) >= 0.05 * s:
            break
    c.extra.update(lam=lam, lr=float(rng.choice([0.1, 0.5, 1.0])))
    return c


def _newton(c: Case) -> tuple[np.ndarray, np.ndarray, float]:
    e = c.extra
    res = newton_step(ExactSource(c.mdp, c.policy), c.theta, damping=e["lam"], lr=e["lr"])
    return res.direction, res.theta, res.model_increase


def _newton_reference(c: Case, *, descent: bool = False, hessian_sign: float = 1.0,
                      quadratic_half: float = 0.5) -> tuple[np.ndarray, np.ndarray, float]:
    r""":math:`h = (\lambda I - H + NN^\top)^{-1}g` by a dense solve: equal to :math:`(\lambda I - H)^+ g` since
    :math:`HN = 0` and :math:`N^\top g = 0` (the shifts get coefficient 0, as in the pseudo-inverse); the model's
    increase :math:`g^\top h + \tfrac12 h^\top Hh - \tfrac\lambda2\|h\|^2` (``quadratic_half`` 1: the control that
    drops the 1/2 of the Hessian term)."""
    e = c.extra
    n = e["g"].shape[0]
    h = np.linalg.solve(e["lam"] * np.eye(n) - hessian_sign * e["H"] + e["N"] @ e["N"].T, e["g"])
    increase = float(e["g"] @ h + quadratic_half * h @ e["H"] @ h - 0.5 * e["lam"] * h @ h)
    return h, c.theta + (-1.0 if descent else 1.0) * e["lr"] * h, increase


identity(
    id="updates.newton_step",
    statement=r"h = (\lambda I - \nabla^2 J)^{+}\nabla J,\quad \theta' = \theta + \eta h,\quad "
    r"\text{model increase } g^\top h + \tfrac12 h^\top\nabla^2 J\,h - \tfrac\lambda2\|h\|^2",
    source="Levenberg 1944; Marquardt 1963 (damped Newton, for maximization); Nocedal & Wright 2006, sec. 3.3-3.4",
    reference="g by complex steps of J and H by complex steps of the policy gradient written out (dense LU solves, "
    "explicit score); h by a dense solve with lambda I - H + N N^T, N the known per-state shift directions; the "
    "model increase from those g, H and h",
    instance=_newton_instance,
    computed=_newton,
    expected=_newton_reference,
    tolerance=7e-12,
    tolerance_reason="H and g exact to rounding (complex steps); the solve's condition is at most ~40 (lambda at "
    "least 0.05 max|mu| from every eigenvalue): measured residuals <= 6.7e-14 over 400 instances (seeds 0, 1), "
    "the model increase included, a margin of ~100",
    mutants={
        "descent (theta - eta h, the minimization formula)": lambda c: _newton_reference(c, descent=True),
        "Hessian sign flipped: (lambda I + H)^+ g": lambda c: _newton_reference(c, hessian_sign=-1.0),
        "model increase without the 1/2 of h^T H h": lambda c: _newton_reference(c, quadratic_half=1.0),
    },
)


def _cubic_instance(rng: np.random.Generator) -> Case:
    c = _hessian_case(rng)
    c.extra["M"] = float(rng.choice([0.3, 3.0, 30.0]))
    return c


def _cubic_conditions(c: Case, h: np.ndarray, M: float) -> np.ndarray:
    r"""Nesterov & Polyak's conditions for a global maximizer of :math:`g^\top h + \tfrac12 h^\top Hh - \tfrac M6\|h\|^3`:
    :math:`g + Hh - \tfrac M2\|h\|h = 0` (relative to :math:`\max|g|`) and :math:`\tfrac M2\|h\| I - H \succeq 0`
    (its violation relative to :math:`\max|\mu|`), with the reference g and H."""
    e = c.extra
    g, H = e["g"], e["H"]
    lam = 0.5 * M * float(np.linalg.norm(h))
    stationarity = (g + H @ h - lam * h) / float(np.max(np.abs(g)))
    mu_max = float(np.linalg.eigvalsh(H)[-1])
    second = max(0.0, mu_max - lam) / float(np.max(np.abs(e["mu"])))
    return np.append(stationarity, second)


def _cubic(c: Case, M_factor: float = 1.0, sign: float = 1.0) -> np.ndarray:
    """The library's cubic step, in the reference's optimality conditions; ``M_factor`` 2 is the step of a solver
    that uses lambda = M ||h|| (the mistake M for M/2), ``sign`` -1 a descent step."""
    M = c.extra["M"]
    h = cubic_newton_step(ExactSource(c.mdp, c.policy), c.theta, M * M_factor).direction
    return _cubic_conditions(c, sign * h, M)


identity(
    id="updates.cubic_newton_optimality",
    statement=r"h = \arg\max_h g^\top h + \tfrac12 h^\top H h - \tfrac M6\|h\|^3 \iff "
    r"g + Hh - \tfrac M2\|h\|h = 0,\ \tfrac M2\|h\|I - H \succeq 0",
    source="Nesterov & Polyak 2006, 'Cubic regularization of Newton method and its global performance', Math. "
    "Program. 108, Theorem 10 (characterization of the global minimizer of the cubic model), for maximization",
    reference="the two optimality conditions evaluated on the library's h with g by complex steps of J and H by "
    "complex steps of the policy gradient written out (dense LU solves, explicit score), the top eigenvalue of "
    "that H by numpy.linalg.eigvalsh",
    instance=_cubic_instance,
    computed=_cubic,
    expected=lambda c: np.zeros(c.policy.n_params + 1),
    tolerance=7e-12,
    tolerance_reason="the bisection stops at float64 resolution of lambda (~1e-16 relative) and H, g are exact to "
    "rounding; |H h| / |g| amplifies it: measured residuals <= 1.2e-14 (seed 0) and 6.7e-14 (seed 1) over 200 "
    "instances each, a margin of ~100",
    mutants={
        "M instead of M/2 in lambda = (M/2)||h|| (the step of regularization 2M)": lambda c: _cubic(c, M_factor=2.0),
        "direction negated (descent)": lambda c: _cubic(c, sign=-1.0),
    },
)
