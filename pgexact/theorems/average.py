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
