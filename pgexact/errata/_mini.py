"""A few lines of numpy from the definitions, independent of pgexact's closed forms.

The errata evaluate the printed and the corrected statements with these, so that neither shares
a code path with the reference (pgexact's closed forms, enumeration, differences).
"""

from __future__ import annotations

import numpy as np

__all__ = ["random_arrays", "softmax_rows", "values", "finite_horizon_q", "marginals", "stationary",
           "tabular_grad_pi"]


def random_arrays(S: int, A: int, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``P[s, a, :]`` and ``mu0`` ~ Dirichlet(1), ``r[s, a]`` ~ N(0, 1), from ``default_rng(seed)``."""
    rng = np.random.default_rng(seed)
    P = rng.dirichlet(np.ones(S), size=(S, A))
    r = rng.standard_normal((S, A))
    mu0 = rng.dirichlet(np.ones(S))
    return P, r, mu0


def softmax_rows(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax of an (S, A) array."""
    z = np.exp(logits - logits.max(axis=1, keepdims=True))
    return z / z.sum(axis=1, keepdims=True)


def values(P: np.ndarray, r: np.ndarray, pi: np.ndarray, gamma: float) -> tuple[np.ndarray, np.ndarray]:
    """Discounted ``V = (I - γ P_π)^{-1} r_π`` and ``Q = r + γ P V``."""
    S = r.shape[0]
    P_pi = np.einsum("sa,sat->st", pi, P)
    V = np.linalg.solve(np.eye(S) - gamma * P_pi, (pi * r).sum(axis=1))
    return V, r + gamma * P @ V


def finite_horizon_q(P: np.ndarray, r: np.ndarray, pi: np.ndarray, gamma: float, H: int) -> np.ndarray:
    """``Q[t, s, a]``: reward-to-go from time t, discounted from t, by backward recursion."""
    Q = np.zeros((H,) + r.shape)
    V_next = np.zeros(r.shape[0])
    for t in range(H - 1, -1, -1):
        Q[t] = r + gamma * P @ V_next
        V_next = (pi * Q[t]).sum(axis=1)
    return Q


def marginals(P: np.ndarray, mu0: np.ndarray, pi: np.ndarray, T: int) -> np.ndarray:
    """``p[t, s] = Pr(s_t = s)`` for t < T by forward recursion."""
    P_pi = np.einsum("sa,sat->st", pi, P)
    p = np.empty((T, mu0.size))
    p[0] = mu0
    for t in range(1, T):
        p[t] = p[t - 1] @ P_pi
    return p


def stationary(P: np.ndarray, pi: np.ndarray) -> np.ndarray:
    """Stationary distribution of ``P_π`` (left eigenvector of eigenvalue 1, normalized)."""
    P_pi = np.einsum("sa,sat->st", pi, P)
    w, vecs = np.linalg.eig(P_pi.T)
    v = np.real(vecs[:, np.argmin(np.abs(w - 1.0))])
    return v / v.sum()


def tabular_grad_pi(pi: np.ndarray) -> np.ndarray:
    r"""``G[s, a, s', a'] = ∂π(a|s) / ∂θ_{s'a'}`` of the tabular softmax: ``δ_{ss'} π(a|s)(δ_{aa'} − π(a'|s))``."""
    S, A = pi.shape
    G = np.zeros((S, A, S, A))
    for s in range(S):
        G[s, :, s, :] = np.diag(pi[s]) - np.outer(pi[s], pi[s])
    return G
