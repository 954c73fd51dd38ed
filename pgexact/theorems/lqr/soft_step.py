r"""Theorem on one soft policy improvement step of LQR, against its definition.

Haarnoja et al.'s soft policy improvement maps a policy :math:`\pi` to
:math:`\pi'(u|x) \propto \exp(Q^\pi(x, u)/\alpha)`. For LQR, the soft :math:`Q^\pi` of a linear-Gaussian
policy with gain K is, up to a constant (the entropy bonus and the noise terms do not depend on
(x, u) in a way that matters here: they are constants, or functions of x alone),

.. math::

    Q^\pi(x, u) = -(x^\top Qx + u^\top Ru + 2x^\top Nu) - \gamma (Ax + Bu)^\top P_K (Ax + Bu) + f(x),

with :math:`P_K = Q_K + \gamma A_K^\top P_KA_K`. The theorem checks the defining property directly:
:math:`\log\pi'(u|x) - Q^\pi(x, u)/\alpha` does not depend on u, at random states and actions,
with :math:`\log\pi'` a Gaussian log-density written out here (Cholesky, no pgexact code) and
:math:`P_K` from a dense Kronecker-vectorized solve of the model's matrices (pgexact solves it by
Bartels-Stewart). Nothing of the closed form :math:`K' = M^{-1}(\gamma B^\top P_KA + N^\top)`,
:math:`\Sigma' = \tfrac\alpha2M^{-1}` enters the reference.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ...lqr import LQR
from ...lqr import soft as soft_lqr
from ..registry import identity
from ._common import random_problem

__all__: list[str] = []  # the theorems are registered, not exported

N_STATES_CHECKED = 3
N_ACTIONS_CHECKED = 6


@dataclass(frozen=True, eq=False)
class SoftStepProblem:
    """An infinite-horizon LQR, a stabilizing gain K, a temperature alpha, and the (x, z) points at which
    the property is checked (actions u = mean + 2 L' z, L' L'^T the new covariance)."""

    lqr: LQR
    K: np.ndarray
    alpha: float
    x: np.ndarray  # (3, n)
    z: np.ndarray  # (3, 6, m)


def _instance(rng: np.random.Generator) -> SoftStepProblem:
    p = random_problem(rng, n=int(rng.integers(1, 4)), m=int(rng.integers(1, 3)), stochastic=False)
    n, m = p.lqr.n_states, p.lqr.n_actions
    return SoftStepProblem(p.lqr, p.policy.gain(p.theta), float(rng.uniform(0.05, 2.0)),
                           rng.standard_normal((N_STATES_CHECKED, n)),
                           rng.standard_normal((N_STATES_CHECKED, N_ACTIONS_CHECKED, m)))


def value_matrix(lqr: LQR, K: np.ndarray) -> np.ndarray:
    r""":math:`P_K` by a dense solve of :math:`(I - \gamma A_K^\top\otimes A_K^\top)\,\mathrm{vec}P = \mathrm{vec}Q_K`."""
    n = lqr.n_states
    AK = lqr.A - lqr.B @ K
    QK = lqr.Q + K.T @ lqr.R @ K - lqr.N @ K - K.T @ lqr.N.T
    At = AK.T
    M = np.eye(n * n) - lqr.gamma * (At[:, None, :, None] * At[None, :, None, :]).reshape(n * n, n * n)
    P = np.linalg.solve(M, QK.reshape(-1)).reshape(n, n)
    return 0.5 * (P + P.T)


def _soft_q(sp: SoftStepProblem, x: np.ndarray, u: np.ndarray, P: np.ndarray) -> np.ndarray:
    """Q(x, u) up to a function of x alone, for a batch u (L, m) at one state x (n,)."""
    lqr = sp.lqr
    nxt = x @ lqr.A.T + u @ lqr.B.T
    cost = x @ lqr.Q @ x + np.einsum("li,ij,lj->l", u, lqr.R, u) + 2.0 * (x @ lqr.N) @ u.T
    return -cost - lqr.gamma * np.einsum("li,ij,lj->l", nxt, P, nxt)


def _gaussian_logpdf(u: np.ndarray, mean: np.ndarray, cov: np.ndarray) -> np.ndarray:
    L = np.linalg.cholesky(cov)
    z = np.linalg.solve(L, (u - mean).T)
    return -0.5 * np.sum(z * z, axis=0) - np.sum(np.log(np.diag(L))) - 0.5 * cov.shape[0] * np.log(2 * np.pi)


def _defect(sp: SoftStepProblem, Kn: np.ndarray, Sn: np.ndarray) -> np.ndarray:
    r""":math:`\log\pi'(u|x) - Q(x, u)/\alpha`, centred over u at each x, over the spread of :math:`Q/\alpha` over u.

    The actions are drawn around the *true* soft-greedy mean and covariance (from the reference's own
    :math:`P_K`), so a mistaken (K', Σ') does not move the points at which it is judged."""
    P = value_matrix(sp.lqr, sp.K)
    B, g = sp.lqr.B, sp.lqr.gamma
    Mref = sp.lqr.R + g * B.T @ P @ B  # only places the points: the Hessian -2M of Q in u
    Lref = np.linalg.cholesky(0.5 * sp.alpha * np.linalg.inv(0.5 * (Mref + Mref.T)))
    out, spread = [], 0.0
    for x, z in zip(sp.x, sp.z):
        centre = -np.linalg.solve(Mref, (g * B.T @ P @ sp.lqr.A + sp.lqr.N.T) @ x)
        u = centre + 2.0 * z @ Lref.T
        q = _soft_q(sp, x, u, P) / sp.alpha
        d = _gaussian_logpdf(u, -Kn @ x, Sn) - q
        out.append(d - d.mean())
        spread = max(spread, float(np.max(np.abs(q - q.mean()))))
    return np.concatenate(out) / spread


def _improve_with(sp: SoftStepProblem, *, half: float = 0.5, lookahead: bool = True,
                  gamma_in_gain: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """(K', Sigma') by the closed form with one mistake (controls)."""
    lqr = sp.lqr
    P = value_matrix(lqr, sp.K)
    B, g = lqr.B, lqr.gamma
    M = lqr.R + (g * B.T @ P @ B if lookahead else 0.0)
    Kn = np.linalg.solve(M, (g if gamma_in_gain else 1.0) * B.T @ P @ lqr.A + lqr.N.T)
    return Kn, half * sp.alpha * np.linalg.inv(M)


identity(
    id="lqr.soft_policy_improvement",
    statement=r"\pi'(u|x) = N(u; -K'x, \Sigma') \propto \exp(Q^\pi(x, u)/\alpha):\ "
              r"\log\pi'(u|x) - Q^\pi(x, u)/\alpha \text{ constant in } u,\ "
              r"K' = M^{-1}(\gamma B^\top P_KA + N^\top),\ \Sigma' = \tfrac\alpha2M^{-1},\ M = R + \gamma B^\top P_KB",
    source="Haarnoja, Zhou, Abbeel & Levine 2018, 'Soft actor-critic', Lemma 2 (soft policy improvement), for the "
           "linear-Gaussian policies of LQR",
    reference="the soft Q of the current gain from the model's matrices (P_K by a dense Kronecker-vectorized solve) and "
              "a Gaussian log-density written out (Cholesky), at 3 random states x 6 actions: the log-ratio must be "
              "constant in u",
    instance=_instance,
    computed=lambda sp: _defect(sp, *soft_lqr.soft_policy_improvement(sp.lqr, sp.K, sp.alpha)),
    expected=lambda sp: np.zeros(N_STATES_CHECKED * N_ACTIONS_CHECKED),
    tolerance=1e-10,
    tolerance_reason="rounding only: Q/alpha reaches ~1e4 times its spread over u at alpha = 0.05, so the centred "
                     "difference carries ~1e-12 relative error at worst; measured up to 7.9e-13 over 200 instances "
                     "(seed 1), so 1e-10 leaves a margin of ~130",
    mutants={
        "covariance alpha M^-1 (factor 1/2 dropped)": lambda sp: _defect(sp, *_improve_with(sp, half=1.0)),
        "covariance alpha/2 R^-1 (lookahead gamma B^T P B dropped from M)": lambda sp: _defect(
            sp, *_improve_with(sp, lookahead=False)),
        "gamma dropped from gamma B^T P_K A in the gain": lambda sp: _defect(sp, *_improve_with(sp, gamma_in_gain=False)),
    },
    default_instances=4,
)
