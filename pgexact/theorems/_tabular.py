r"""Small dense tabular MDPs for the convergence theorems: exact (soft) values, occupancies, optima, gradients.

Written directly from the definitions with dense solves (S <= 4), independently of :mod:`pgexact.exact`
and :mod:`pgexact.updates`, so that the convergence theorems check those bounds against computations
that share no code with the library's iterations. Conventions: :math:`V^\pi(\rho) = E\sum_t\gamma^t r_t`
(unnormalized), normalized occupancy :math:`d^\pi_\rho = (1-\gamma)\rho^\top(I-\gamma P_\pi)^{-1}`, and with
``tau > 0`` the entropy-regularized (soft) values of Mei et al. (2020, eq. (18)): reward
:math:`r - \tau\log\pi`, :math:`\tilde Q = r + \gamma P\tilde V`.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = [
    "Tabular", "random_tabular", "values", "occupancy", "optimal", "soft_optimal", "soft_policy_iteration",
    "soft_gradient", "softmax", "log_softmax",
]


@dataclass(frozen=True)
class Tabular:
    """A small discounted MDP: P (S, A, S), r (S, A) in [0, 1], start mu, evaluation rho, gamma."""

    P: np.ndarray
    r: np.ndarray
    mu: np.ndarray
    rho: np.ndarray
    gamma: float


def random_tabular(rng: np.random.Generator, gamma_range: tuple[float, float], mu_concentration: float = 1.0) -> Tabular:
    S, A = int(rng.integers(2, 5)), int(rng.integers(2, 4))
    return Tabular(
        P=rng.dirichlet(np.ones(S), size=(S, A)),
        r=rng.uniform(0.0, 1.0, (S, A)),
        mu=rng.dirichlet(np.full(S, mu_concentration)),
        rho=rng.dirichlet(np.ones(S)),
        gamma=float(rng.uniform(*gamma_range)),
    )


def values(m: Tabular, pi: np.ndarray, tau: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    r"""``(V, Q)`` of ``pi``; with ``tau > 0`` the entropy-regularized ones (reward :math:`r - \tau\log\pi`)."""
    P_pi = np.einsum("sa,sat->st", pi, m.P)
    r_pi = np.sum(pi * m.r, axis=1)
    if tau > 0:
        r_pi = r_pi - tau * np.sum(pi * np.log(pi), axis=1)
    V = np.linalg.solve(np.eye(len(r_pi)) - m.gamma * P_pi, r_pi)
    return V, m.r + m.gamma * m.P @ V


def occupancy(m: Tabular, pi: np.ndarray, start: np.ndarray) -> np.ndarray:
    r""":math:`d^\pi_{start} = (1-\gamma)\,start^\top(I - \gamma P_\pi)^{-1}`, shape (S,)."""
    P_pi = np.einsum("sa,sat->st", pi, m.P)
    return (1.0 - m.gamma) * np.linalg.solve((np.eye(len(start)) - m.gamma * P_pi).T, start)


def optimal(m: Tabular) -> tuple[np.ndarray, np.ndarray]:
    """``(V*, pi*)`` by policy iteration (exact: finitely many improvements)."""
    S, A = m.r.shape
    act = np.zeros(S, dtype=int)
    for _ in range(100):
        pi = np.eye(A)[act]
        V, Q = values(m, pi)
        new = np.where(Q[np.arange(S), act] >= Q.max(axis=1) - 1e-12, act, Q.argmax(axis=1))
        if np.array_equal(new, act):
            return V, pi
        act = new
    raise RuntimeError("policy iteration did not terminate")  # pragma: no cover - finite MDP


def soft_optimal(m: Tabular, tau: float) -> tuple[np.ndarray, np.ndarray]:
    r"""``(Q*_tau, log pi*_tau)`` by soft value iteration to :math:`\|\Delta Q\|_\infty \le 10^{-14}`."""
    Q = np.zeros_like(m.r)
    for _ in range(100_000):
        z = Q / tau
        zmax = z.max(axis=1, keepdims=True)
        V = tau * (zmax[:, 0] + np.log(np.exp(z - zmax).sum(axis=1)))
        Q_new = m.r + m.gamma * m.P @ V
        if np.max(np.abs(Q_new - Q)) <= 1e-14:
            Q = Q_new
            break
        Q = Q_new
    return Q, log_softmax(Q / tau)


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return e / e.sum(axis=1, keepdims=True)


def log_softmax(z: np.ndarray) -> np.ndarray:
    zmax = z.max(axis=1, keepdims=True)
    return z - zmax - np.log(np.exp(z - zmax).sum(axis=1, keepdims=True))


def soft_policy_iteration(m: Tabular, tau: float) -> tuple[np.ndarray, np.ndarray]:
    r"""``(V*_tau, pi*_tau)`` by soft policy iteration (:math:`\pi \leftarrow \mathrm{softmax}(\tilde Q^\pi/\tau)`,
    each evaluation a dense solve) until :math:`\|\Delta\tilde Q\|_\infty \le 10^{-13}\max(1, \|\tilde Q\|_\infty)`
    (quadratic convergence: a handful of steps)."""
    S, A = m.r.shape
    pi = np.full((S, A), 1.0 / A)
    Q = np.full((S, A), np.inf)
    for _ in range(200):
        V, Q_new = values(m, pi, tau)
        if np.max(np.abs(Q_new - Q)) <= 1e-13 * max(1.0, float(np.max(np.abs(Q_new)))):
            return V, pi
        Q = Q_new
        pi = softmax(Q / tau)
    raise RuntimeError("soft policy iteration did not converge")  # pragma: no cover - contraction


def soft_gradient(m: Tabular, theta: np.ndarray, tau: float,
                  soft_values: tuple[np.ndarray, np.ndarray] | None = None) -> np.ndarray:
    r""":math:`\partial\tilde V^{\pi_\theta}(\mu)/\partial\theta_{s,a} = \frac{1}{1-\gamma}d_\mu^{\pi_\theta}(s)\,
    \pi_\theta(a|s)\big(\tilde Q(s,a) - \tau\log\pi_\theta(a|s) - \tilde V(s)\big)`, shape (S, A)
    (Mei et al. 2020, Lemma 10 of arXiv:2005.06392; tabular softmax). ``soft_values``: ``values(m,
    softmax(theta), tau)`` when the caller has it already (an iteration that also records the path)."""
    pi = softmax(theta)
    V, Q = values(m, pi, tau) if soft_values is None else soft_values
    d = occupancy(m, pi, m.mu)
    return d[:, None] * pi * (Q - tau * np.log(pi) - V[:, None]) / (1.0 - m.gamma)
