r"""Theorems of the average-reward objective (:mod:`pgexact.average`).

Instances: random dense MDPs with 2..5 states and 2..3 actions (Dirichlet(1) rows, rewards
N(0, 1), so the chain under every policy is irreducible and aperiodic), and with probability
1/3 a state made transient (no transition enters it) and a deterministic 2-cycle on two states
(a periodic chain); tabular or linear softmax policies with parameters N(0, 1). The references
share only P, r, μ0 and π with :mod:`pgexact.average`: the discounted values by a direct solve
of :math:`(I - \gamma P_\pi) V = r_\pi` at :math:`\gamma = 1 - \epsilon` and
:math:`1 - \epsilon/2` (Richardson-extrapolated), and the stationary distribution as the
eigenvector of :math:`P_\pi^\top` for the eigenvalue closest to 1.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import average
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get` and
#: :func:`pgexact.theorems.all_theorems`; the instance generators and references below serve
#: those theorems and the tests.
__all__: list[str] = []

EPS = 1e-4  # 1 - gamma of the coarser discounted solve


@dataclass(frozen=True)
class AverageProblem:
    mdp: FiniteMDP
    policy: SoftmaxPolicy
    theta: np.ndarray


def _problem(rng: np.random.Generator) -> AverageProblem:
    S, A = int(rng.integers(2, 6)), int(rng.integers(2, 4))
    base = random_mdp(S, A, gamma=0.9, seed=rng)
    P = np.array(base.P)
    if S >= 3 and rng.random() < 1 / 3:  # state 0 transient, states 1 and 2 a 2-cycle under action 0
        P[:, :, 1] += P[:, :, 0]
        P[:, :, 0] = 0.0
        P[1, 0] = np.eye(S)[2]
        P[2, 0] = np.eye(S)[1]
    mdp = FiniteMDP(P, base.r, base.mu0, 0.9)
    policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, 3))) if rng.integers(2) else TabularSoftmax(S, A)
    return AverageProblem(mdp, policy, rng.standard_normal(policy.n_params))


def _chain(pr: AverageProblem, theta: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    pi = pr.policy.probs(pr.theta if theta is None else theta)
    P_pi = np.einsum("sa,sat->st", pi, pr.mdp.P)
    return pi, P_pi, np.einsum("sa,sa->s", pi, pr.mdp.r)


def _discounted_values(pr: AverageProblem, gamma: float) -> np.ndarray:
    _, P_pi, r_pi = _chain(pr)
    return np.linalg.solve(np.eye(len(r_pi)) - gamma * P_pi, r_pi)


def _richardson(f) -> np.ndarray:  # noqa: ANN001 - f(eps) = a + b eps + O(eps^2)
    return 2.0 * f(EPS / 2) - f(EPS)


def _gain_limit(pr: AverageProblem) -> float:
    return float(_richardson(lambda e: e * (pr.mdp.mu0 @ _discounted_values(pr, 1.0 - e))))


def _bias_limit(pr: AverageProblem) -> np.ndarray:
    rho = _eigen_gain(pr, pr.theta)  # exact to rounding: an extrapolated gain's error would be amplified by 1/eps
    return _richardson(lambda e: _discounted_values(pr, 1.0 - e) - rho / e)


def _eigen_gain(pr: AverageProblem, theta: np.ndarray) -> float:
    _, P_pi, r_pi = _chain(pr, theta)
    w, vl = np.linalg.eig(P_pi.T)
    v = np.real(vl[:, np.argmin(np.abs(w - 1.0))])
    return float(v @ r_pi / v.sum())


def _directions(pr: AverageProblem) -> np.ndarray:
    return np.random.default_rng(int(abs(pr.theta[0]) * 1e6)).standard_normal((2, pr.policy.n_params))


def _gain_fd_gradient(pr: AverageProblem) -> np.ndarray:
    # directional derivatives along two fixed random directions v: Richardson-extrapolated central
    # differences, error O(h^4) ~ 1e-12, rounding ~ eps/h ~ 1e-13
    h = 1e-3
    out = np.empty(2)
    for i, v in enumerate(_directions(pr)):
        d1 = (_eigen_gain(pr, pr.theta + h * v) - _eigen_gain(pr, pr.theta - h * v)) / (2 * h)
        d2 = (_eigen_gain(pr, pr.theta + 2 * h * v) - _eigen_gain(pr, pr.theta - 2 * h * v)) / (4 * h)
        out[i] = (4 * d1 - d2) / 3
    return out


def _gradient_with_weights(pr: AverageProblem, weights: str, values: str) -> np.ndarray:
    pi = pr.policy.probs(pr.theta)
    ev = average.evaluate(pr.mdp, pi)
    w = pr.mdp.mu0 if weights == "mu0" else ev.d
    q = ev.Q if values == "Q" else np.broadcast_to(ev.h[:, None], ev.Q.shape)
    return _directions(pr) @ pr.policy.score_contract(pr.theta, w[:, None] * pi * q)


identity(
    id="average.gain_is_discounted_limit",
    statement=r"\rho_\pi = d_\pi^\top r_\pi = \lim_{\gamma\to1}(1-\gamma)J_\gamma(\pi)",
    source="Puterman 1994, Corollary 8.2.5 (Laurent expansion V_gamma = rho/(1-gamma) + h + O(1-gamma)), unichain",
    reference="(1-gamma) mu0^T (I - gamma P_pi)^{-1} r_pi at gamma = 1-1e-4 and 1-5e-5, Richardson-extrapolated",
    instance=_problem,
    computed=lambda pr: average.evaluate(pr.mdp, pr.policy.probs(pr.theta)).rho,
    expected=_gain_limit,
    tolerance=1e-6,
    tolerance_reason="Richardson extrapolation leaves O(eps^2) = 1e-8 times the second Laurent coefficient "
    "(observed <= 3e-8 in all: at most ~3 on these chains); the solves have condition ~1/eps = 1e4 (rounding ~1e-12)",
    mutants={
        "gain as the expected first reward mu0^T r_pi": lambda pr: float(pr.mdp.mu0 @ _chain(pr)[2]),
        "gain as the uniform state average of r_pi": lambda pr: float(np.mean(_chain(pr)[2])),
    },
)

identity(
    id="average.bias_is_discounted_limit",
    statement=r"h = \lim_{\gamma\to1}\Big(V_\gamma - \frac{\rho}{1-\gamma}1\Big),\quad h + \rho 1 = r_\pi + P_\pi h,\ d_\pi^\top h = 0",
    source="Puterman 1994, Theorem 8.2.3 and Corollary 8.2.5 (the bias is the constant term of the Laurent expansion)",
    reference="V_gamma - rho/(1-gamma) by direct solves at gamma = 1-1e-4 and 1-5e-5, Richardson-extrapolated, "
    "with rho from the eigenvector of P_pi^T",
    instance=_problem,
    computed=lambda pr: average.evaluate(pr.mdp, pr.policy.probs(pr.theta)).h,
    expected=_bias_limit,
    tolerance=1e-6,
    tolerance_reason="Richardson remainder O(eps^2) = 1e-8 times the next Laurent coefficient (at most ~10 here); "
    "rounding of the eigenvector gain (~1e-15) amplified by 1/eps = 1e4, and solves of condition 1e4",
    mutants={
        "bias normalized by mu0^T h = 0 instead of d^T h = 0": lambda pr: (
            lambda ev: ev.h - pr.mdp.mu0 @ ev.h)(average.evaluate(pr.mdp, pr.policy.probs(pr.theta))),
        "bias without subtracting the gain (solving (I - P + 1 d^T) h = r_pi)": lambda pr: (
            lambda pi, P_pi, r_pi: np.linalg.solve(
                np.eye(len(r_pi)) - P_pi + np.outer(np.ones(len(r_pi)),
                                                    average.evaluate(pr.mdp, pi).d), r_pi))(*_chain(pr)),
    },
)

identity(
    id="average.policy_gradient",
    statement=r"\nabla_\theta\rho = \sum_s d_\pi(s)\sum_a\nabla_\theta\pi(a|s)\,Q(s,a),\quad Q = r - \rho + P h",
    source="Sutton, McAllester, Singh & Mansour 2000, Theorem 1 (average-reward formulation)",
    reference="Richardson-extrapolated central differences of rho = d^T r_pi (d: the eigenvector of P_pi^T) along "
    "two random directions v, compared with v . grad rho",
    instance=_problem,
    computed=lambda pr: _directions(pr) @ average.policy_gradient(pr.mdp, pr.policy, pr.theta),
    expected=_gain_fd_gradient,
    tolerance=1e-7,
    tolerance_reason="finite-difference truncation O(h^4) ~ 1e-12 times fifth derivatives of rho (O(100) on "
    "these instances) plus eigenvector rounding / h ~ 1e-12; 1e-7 leaves a wide margin",
    mutants={
        "start distribution mu0 instead of the stationary d": lambda pr: _gradient_with_weights(pr, "mu0", "Q"),
        "bias h instead of the differential Q": lambda pr: _gradient_with_weights(pr, "d", "h"),
    },
)


# ----------------------------------------------------------------------------- control
@dataclass(frozen=True)
class ControlProblem:
    P: np.ndarray
    r: np.ndarray
    mask: np.ndarray


def _control_problem(rng: np.random.Generator) -> ControlProblem:
    """Small models with 2..4 states and 2..3 actions, one of three kinds with equal probability:
    Dirichlet(1) rows (unichain, aperiodic), deterministic transitions (periodic cycles, several
    closed classes), rows supported on 1-2 random states with a random action mask (transient
    states, multichain, periodic); rewards N(0, 1)."""
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    kind = int(rng.integers(3))
    mask = np.ones((S, A), dtype=bool)
    if kind == 0:
        P = rng.dirichlet(np.ones(S), size=(S, A))
    elif kind == 1:
        P = np.eye(S)[rng.integers(S, size=(S, A))]
    else:
        P = np.zeros((S, A, S))
        for s in range(S):
            for a in range(A):
                support = rng.choice(S, size=int(rng.integers(1, 3)), replace=False)
                P[s, a, support] = rng.dirichlet(np.ones(len(support)))
        mask = rng.random((S, A)) < 0.8
        mask[np.arange(S), rng.integers(A, size=S)] = True
    return ControlProblem(P, rng.standard_normal((S, A)), mask)


def _gain_by_discounting(P_pi: np.ndarray, r_pi: np.ndarray) -> np.ndarray:
    S = len(r_pi)
    return _richardson(lambda e: e * np.linalg.solve(np.eye(S) - (1.0 - e) * P_pi, r_pi))


def _deterministic_gain(cp: ControlProblem, actions: np.ndarray) -> np.ndarray:
    s = np.arange(cp.r.shape[0])
    return _gain_by_discounting(cp.P[s, actions], cp.r[s, actions])


def _brute_force_gain(cp: ControlProblem) -> np.ndarray:
    S, A = cp.r.shape
    choices = [np.flatnonzero(cp.mask[s]) for s in range(S)]
    grids = np.meshgrid(*choices, indexing="ij")
    policies = np.stack([g.reshape(-1) for g in grids], axis=1)
    return np.max([_deterministic_gain(cp, acts) for acts in policies], axis=0)


def _masked(cp: ControlProblem, X: np.ndarray) -> np.ndarray:
    return np.where(cp.mask, X, -np.inf)


def _normalized_discounted_optimum(cp: ControlProblem, gamma: float) -> np.ndarray:
    """(1 - gamma) V*_gamma by discounted policy iteration (direct solves)."""
    S = cp.r.shape[0]
    s = np.arange(S)
    actions = np.argmax(_masked(cp, cp.r), axis=1)
    for _ in range(100):
        V = np.linalg.solve(np.eye(S) - gamma * cp.P[s, actions], cp.r[s, actions])
        Q = _masked(cp, cp.r + gamma * cp.P @ V)
        new = np.where(Q.max(axis=1) > Q[s, actions] + 1e-12, np.argmax(Q, axis=1), actions)
        if np.array_equal(new, actions):
            break
        actions = new
    return (1.0 - gamma) * V


def _finite_horizon_average(cp: ControlProblem, n: int) -> np.ndarray:
    """(T^n 0) / n: the optimal n-step total reward per step."""
    v = np.zeros(cp.r.shape[0])
    for _ in range(n):
        v = _masked(cp, cp.r + cp.P @ v).max(axis=1)
    return v / n


identity(
    id="average.optimal_gain_is_the_best_deterministic_gain",
    statement=r"g^*(s) = \max_{d \in D^{MD}} g^{d}(s) \text{ for every } s, \text{attained by one } d^* "
    r"\text{ solving } \max_a P g = g,\ \max_{a \in B_s}[r - g + P h] = h",
    source="Puterman 1994, Theorem 9.1.8 (a deterministic stationary optimal policy exists) and sec. 9.2 "
    "(multichain policy iteration)",
    reference="brute force over every deterministic policy, each gain as lim (1-gamma) V_gamma by direct solves "
    "at gamma = 1-1e-4 and 1-5e-5, Richardson-extrapolated, then the state-wise maximum",
    instance=_control_problem,
    computed=lambda cp: average.optimal((cp.P, cp.r, cp.mask)).gain,
    expected=_brute_force_gain,
    tolerance=1e-6,
    tolerance_reason="Richardson extrapolation leaves O(eps^2) = 1e-8 times the second Laurent coefficient "
    "(at most ~10 on these 2..4-state models); the policy iteration side is exact to rounding",
    mutants={
        "the optimal 20-step average reward (T^20 0)/20 instead of the limit": lambda cp: _finite_horizon_average(cp, 20),
        "the normalized discounted optimum (1-gamma) V*_gamma at gamma = 0.99 instead of the limit": lambda cp: (
            _normalized_discounted_optimum(cp, 0.99)),
    },
)


def _tabular_problem(rng: np.random.Generator) -> AverageProblem:
    pr = _problem(rng)
    S, A = pr.mdp.n_states, pr.mdp.n_actions
    return AverageProblem(pr.mdp, TabularSoftmax(S, A), rng.standard_normal(S * A))


def _differential_advantage_limit(pr: AverageProblem) -> np.ndarray:
    pi, P_pi, r_pi = _chain(pr)
    P, r = pr.mdp.P, pr.mdp.r

    def adv(e: float) -> np.ndarray:
        V = np.linalg.solve(np.eye(len(r_pi)) - (1.0 - e) * P_pi, r_pi)
        return r + (1.0 - e) * P @ V - V[:, None]

    A_lim = _richardson(adv)
    w, vl = np.linalg.eig(P_pi.T)  # the stationary distribution as the eigenvector for eigenvalue 1
    d = np.real(vl[:, np.argmin(np.abs(w - 1.0))])
    d /= d.sum()
    recurrent = (d > 1e-9)[:, None]  # F^+ is 0 on states of stationary mass 0 (transient states)
    return np.where(recurrent, A_lim - A_lim.mean(axis=1, keepdims=True), 0.0).reshape(-1)


identity(
    id="average.natural_gradient_is_the_advantage",
    statement=r"F^+\nabla_\theta\rho = A(s, a) - \tfrac1{|A|}\sum_b A(s, b) \text{ (tabular softmax)}, \quad "
    r"F = \sum_s d_\pi(s)\sum_a\pi\,\nabla\log\pi\nabla\log\pi^\top",
    source="Kakade 2002, 'A natural policy gradient', Theorem 1 (average-reward setting)",
    reference="the discounted advantages r + gamma P V_gamma - V_gamma by direct solves at gamma = 1-1e-4 and "
    "1-5e-5, Richardson-extrapolated to the differential advantage, centred per state",
    instance=_tabular_problem,
    computed=lambda pr: average.natural_gradient(pr.mdp, pr.policy, pr.theta),
    expected=_differential_advantage_limit,
    tolerance=1e-6,
    tolerance_reason="Richardson remainder O(eps^2) = 1e-8 times the next Laurent coefficient of A_gamma "
    "(at most ~10 here); solves of condition ~1/eps = 1e4 (rounding ~1e-12)",
    mutants={
        "the discounted NPG direction A/(1-gamma) with the model's gamma = 0.9": lambda pr: (
            average.natural_gradient(pr.mdp, pr.policy, pr.theta) / (1.0 - pr.mdp.gamma)),
        "the advantage not centred (not the minimum-norm solution)": lambda pr: np.asarray(
            average.evaluate(pr.mdp, pr.policy.probs(pr.theta)).A).reshape(-1),
    },
)
