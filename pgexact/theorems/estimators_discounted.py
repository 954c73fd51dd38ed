r"""Theorems of the discounted (infinite-horizon, geometric-stopping) expectations of the estimators.

* ``estimators.gae_expected_discounted``: :func:`pgexact.estimators.gae_expected_advantage` and
  :func:`pgexact.estimators.gae_expected_gradient` for a discounted MDP (one linear solve with
  :math:`I - \gamma\lambda P_\pi`, and the occupancy :math:`d_\pi/(1-\gamma)`), against the series
  :math:`\bar A = \sum_{l\ge0}(\gamma\lambda)^l E[\delta_{t+l} | s_t, a_t]` summed forward from
  ``P`` until :math:`(\gamma\lambda)^l` is below 1e-17, and the state weights
  :math:`\sum_t\gamma^t p_t` of :mod:`pgexact.theorems._reference`.
* ``baselines.optimal_state_baseline_geometric``: the optimal stationary baseline of the
  reward-to-go estimator under geometric stopping (:func:`pgexact.estimators.optimal_baselines`,
  closed form from killed-chain cross moments) against the minimizer of the quadratic
  :math:`b \mapsto E[\hat g_k(b)^2]`, whose coefficients are read off the estimator's second
  moments at :math:`b = \pm e_s` and :math:`b = 0` (:func:`pgexact.estimators.estimator_moments`,
  ``"state_baseline"``, checked against the finite-horizon recursions by
  ``estimators.geometric_stopping_moments``).

Both use models with an absorbing terminal state (V there counts as 0, steps there are padding).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .. import estimators as est
from ..mdps import random_mdp
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import LinearSoftmax, SoftmaxPolicy, TabularSoftmax
from . import _reference as ref
from .estimators_pathwise import with_terminal_state
from .registry import identity

#: Nothing here is API: the theorems are reached through :func:`pgexact.theorems.get`.
__all__: list[str] = []


@dataclass(frozen=True)
class DiscountedProblem:
    mdp: FiniteMDP  # discounted, the last state terminal
    policy: SoftmaxPolicy
    theta: np.ndarray
    V: np.ndarray  # (S,), deliberately not the policy's values
    lam: float


def _problem(rng: np.random.Generator, min_states: int = 1) -> DiscountedProblem:
    """1..3 live states (at least ``min_states``) and a terminal one, reached with probability 0 or 0.1 per step."""
    S, A = int(rng.integers(min_states, 4)), int(rng.integers(2, 4))
    base = random_mdp(S, A, gamma=float(rng.uniform(0.5, 0.9)), seed=rng)
    mdp = with_terminal_state(base, horizon=None, exit_probability=float(rng.choice([0.0, 0.1])))
    S += 1
    policy: SoftmaxPolicy = LinearSoftmax(rng.standard_normal((S, A, 2))) if rng.integers(2) else TabularSoftmax(S, A)
    return DiscountedProblem(mdp, policy, rng.standard_normal(policy.n_params), 3.0 * rng.standard_normal(S),
                             float(rng.uniform(0.2, 0.95)))


def _series(pr: DiscountedProblem, *, trace: float | None = None,
            weights: str = "occupancy / (1 - gamma)") -> tuple[np.ndarray, np.ndarray]:
    r""":math:`\bar A(s, a) = \bar\delta(s, a) + \sum_{l\ge1} c^l \big(P P_\pi^{l-1} \bar\delta_\pi\big)(s, a)`,
    :math:`c = \gamma\lambda`, summed while :math:`c^l \ge 10^{-17}`, V = 0 in the terminal state; and
    :math:`\sum_s \rho(s) \sum_a \pi\psi\bar A` with :math:`\rho = \sum_t \gamma^t p_t` (``weights`` makes the
    control: the normalized occupancy)."""
    mdp = pr.mdp
    P, r, g = np.asarray(mdp.P), np.asarray(mdp.r), float(mdp.gamma)
    live = ~np.asarray(mdp.terminal)
    V = pr.V * live
    pi = ref.probs(pr.policy, pr.theta)
    P_pi = np.einsum("sa,sat->st", pi, P)
    delta = r + g * np.einsum("sat,t->sa", P, V) - V[:, None]
    c = g * pr.lam if trace is None else trace
    A_bar = delta.copy()
    x = np.einsum("sa,sa->s", pi, delta)  # P_pi^{l-1} delta_pi
    weight = c
    while weight >= 1e-17:
        A_bar += weight * np.einsum("sat,t->sa", P, x)
        x = P_pi @ x
        weight *= c
    rho = ref.state_weights(mdp, pi)
    if weights != "occupancy / (1 - gamma)":
        rho = rho * (1.0 - g)
    grad = np.einsum("s,sa,san,sa->n", rho, pi, ref.score(pr.policy, pr.theta), A_bar)
    return A_bar, grad


identity(
    id="estimators.gae_expected_discounted",
    statement=r"E[\hat A^{GAE}_t | s_t = s, a_t = a] = \sum_{l\ge0}(\gamma\lambda)^l E[\delta^V_{t+l} | s, a],\ "
    r"E\hat g^{GAE} = \sum_s \frac{d_\pi(s)}{1-\gamma}\sum_a\pi\nabla\log\pi\,\bar A \text{ (discounted, any } V)",
    source="Schulman, Moritz, Levine, Jordan & Abbeel 2016, 'High-Dimensional Continuous Control Using Generalized "
    "Advantage Estimation', sec. 3 (GAE as a discounted sum of TD errors); Sutton et al. 2000, Theorem 1 (the "
    "discounted state weights)",
    reference="the series over l of (gamma lambda)^l P P_pi^(l-1) delta_pi summed forward until (gamma lambda)^l < "
    "1e-17 (no linear solve), state weights sum_t gamma^t p_t and the explicit score from theorems._reference",
    instance=_problem,
    computed=lambda pr: (est.gae_expected_advantage(pr.mdp, pr.policy.probs(pr.theta), pr.V, pr.lam),
                         est.gae_expected_gradient(pr.mdp, pr.policy, pr.theta, pr.V, pr.lam)),
    expected=_series,
    tolerance=1e-12,
    tolerance_reason="the series' tail is below 1e-17 / (1 - gamma lambda) <= 1e-16 relative to the terms; a solve "
    "of condition <= 1/(1 - gamma) = 10 against ~200 summed terms of size ~10 rounds to ~1e-14 (measured max "
    "residual 6.9e-15 over 200 instances, seed 7); 1e-12 leaves a margin of ~145",
    mutants={
        "trace lambda instead of gamma lambda": lambda pr: _series(pr, trace=pr.lam),
        "normalized occupancy d_pi without 1/(1-gamma)": lambda pr: _series(pr, weights="d_pi"),
    },
    default_instances=10,
)


# ----------------------------------------------------------------------------- optimal baseline, geometric stopping
def _quadratic_minimizer(pr: DiscountedProblem) -> np.ndarray:
    r""":math:`b^*_k(s) = c_k(s)/M_k(s)` with :math:`E[\hat g_k(b)^2] = E[\hat g_k(0)^2] - 2\sum_s b(s)c_k(s) +
    \sum_s b(s)^2 M_k(s)` (no cross terms between states: :math:`E[\psi_u | \text{past}] = 0`), so
    :math:`c_k(s) = (m(-e_s) - m(e_s))/4` and :math:`M_k(s) = (m(e_s) + m(-e_s) - 2m(0))/2` from the diagonal m of
    the second moment at three baselines; 0 where :math:`M_k(s) = 0` (s never visited, or a zero score)."""
    S = pr.mdp.n_states
    mdp, pol, th = pr.mdp, pr.policy, pr.theta

    def m(b: np.ndarray) -> np.ndarray:
        return np.diag(est.estimator_moments(mdp, pol, th, "state_baseline", b=b).second_moment)

    m0 = m(np.zeros(S))
    out = np.zeros((pol.n_params, S))
    for s in range(S):
        e = np.eye(S)[s]
        mp, mm = m(e), m(-e)
        c, M = (mm - mp) / 4.0, (mp + mm - 2.0 * m0) / 2.0
        pos = M > 1e-14 * np.maximum(1.0, np.abs(m0))
        out[:, s] = np.where(pos, c / np.where(pos, M, 1.0), 0.0)
    return out


identity(
    id="baselines.optimal_state_baseline_geometric",
    statement=r"b^*_k(s) = \arg\min_b E[\hat g_k(b)^2] = \frac{E[\hat g_k(0)\sum_t 1\{s_t=s\}\psi_{t,k}]}"
    r"{E[\sum_t 1\{s_t=s\}\psi_{t,k}^2]} \text{ under geometric stopping}",
    source="Greensmith, Bartlett & Baxter 2004, JMLR 5, sec. 5-6 (optimal baselines); Peters & Schaal 2008, "
    "Neural Networks 21, sec. 3 (per-coordinate optimal baseline); the killed-chain moment equations (Sobel 1982, "
    "J. Appl. Prob. 19, Theorem 2)",
    reference="the minimizer of the quadratic b -> E[g_k(b)^2], its coefficients from the estimator's second "
    "moments at b = 0 and b = +-e_s (estimator_moments 'state_baseline', geometric stopping)",
    instance=lambda rng: _problem(rng, min_states=2),  # one live state: the per-visit formula is optimal
    computed=lambda pr: est.optimal_baselines(pr.mdp, pr.policy, pr.theta).state,
    expected=_quadratic_minimizer,
    tolerance=2e-9,
    tolerance_reason="the coefficients are differences of second moments of size up to ~1e2 (rounding ~1e-14 each) "
    "divided by M, which can be ~1e-4 for a rarely visited state: up to ~1e-11 relative (measured max residual "
    "1.5e-11 over 200 instances, seed 7); 2e-9 leaves a margin of ~140",
    mutants={
        "per-visit formula E[psi^2 Q] / E[psi^2] claimed optimal": lambda pr: est.optimal_baselines(
            pr.mdp, pr.policy, pr.theta).per_state,
    },
    default_instances=2,
)
