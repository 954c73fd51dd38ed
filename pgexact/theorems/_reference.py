r"""Independent reference computations for the theorem registry.

Everything here is written from the model's data (``P``, ``r``, ``mu0``, ``gamma``, ``horizon``)
and the definition of the softmax parametrizations (logits linear in θ, with the feature tensor
:math:`\partial z(s, a)/\partial\theta`), with plain numpy, and shares no code with
:mod:`pgexact.exact`, :mod:`pgexact.estimators`, :mod:`pgexact.sampling` or
:mod:`pgexact.updates`: the registry's residuals compare the library against these.

The value functions accept complex parameters, so that complex-step derivatives
(Squire & Trapp 1998, "Using complex variables to estimate derivatives of real functions",
SIAM Review 40(1)) can be taken through them: for an analytic f,
:math:`f'(x) v = \operatorname{Im} f(x + i h v) / h + O(h^2)` with no subtractive cancellation,
so h = 1e-30 gives the derivative to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np

from ..policies.softmax import LinearSoftmax, TabularSoftmax

__all__ = [
    "Values",
    "logit_features",
    "probs",
    "log_probs",
    "score",
    "chain",
    "values",
    "marginals",
    "occupancy",
    "state_weights",
    "complex_step_gradient",
    "richardson_gradient",
    "fisher",
    "kl_per_state",
    "transposed",
    "COMPLEX_STEP",
]

#: Complex step: truncation O(h^2) is far below rounding; no cancellation.
COMPLEX_STEP = 1e-30


def logit_features(policy: Any) -> np.ndarray:
    r""":math:`\partial z(s, a) / \partial\theta`, shape (S, A, n): the parametrization's definition."""
    if isinstance(policy, TabularSoftmax):
        S, A = policy.n_states, policy.n_actions
        return np.eye(S * A).reshape(S, A, S * A)
    if isinstance(policy, LinearSoftmax):
        return np.asarray(policy.features, dtype=float)
    raise TypeError(f"no reference for the parametrization {type(policy).__name__}")


def _logits(policy: Any, theta: np.ndarray) -> np.ndarray:
    """Logits (S, A), or (k, S, A) for a stack of parameter vectors (k, n); real or complex."""
    return np.einsum("san,...n->...sa", logit_features(policy), theta)


def log_probs(policy: Any, theta: np.ndarray) -> np.ndarray:
    r""":math:`\log\pi_\theta(a|s)` written out: :math:`z - \log\sum_b e^{z_b}` (shift by the real max)."""
    z = _logits(policy, np.asarray(theta))
    z = z - z.real.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def probs(policy: Any, theta: np.ndarray) -> np.ndarray:
    r""":math:`\pi_\theta(a|s)`, shape (S, A) (or (k, S, A)); complex-analytic in θ."""
    z = _logits(policy, np.asarray(theta))
    e = np.exp(z - z.real.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


def score(policy: Any, theta: np.ndarray) -> np.ndarray:
    r""":math:`\nabla\log\pi(a|s) = \phi(s, a) - \sum_b \pi(b|s)\phi(s, b)`, shape (S, A, n)."""
    phi = logit_features(policy)
    pi = probs(policy, theta)
    return phi - np.einsum("sb,sbn->sn", pi, phi)[:, None, :]


def chain(mdp: Any, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r""":math:`P_\pi[s, s'] = \sum_a \pi(a|s) P(s'|s, a)` and :math:`r_\pi(s)`; ``pi`` may be stacked (k, S, A)."""
    P = np.asarray(mdp.P)
    return np.einsum("...sa,sat->...st", pi, P), np.einsum("...sa,sa->...s", pi, np.asarray(mdp.r))


def stochastic_power(M: np.ndarray, squarings: int = 60) -> np.ndarray:
    r""":math:`M^{2^k}` of a row-stochastic matrix M by k repeated squarings, each row renormalized to sum 1
    (otherwise the rounding of the row sums grows like :math:`(1 + \epsilon)^{2^k}`): the limit of the chain's
    rows for an aperiodic chain, by power iteration rather than a linear solve or a graph search."""
    for _ in range(squarings):
        M = M @ M
        M /= M.sum(axis=1, keepdims=True)
    return M


@dataclass(frozen=True)
class Values:
    """Reference values: discounted ``V (S,)``, ``Q, A (S, A)``; finite horizon ``V (H, S)``, ``Q, A (H, S, A)``."""

    V: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    J: Any


def values(mdp: Any, pi: np.ndarray) -> Values:
    r"""V, Q, A and J of ``pi`` (real or complex, (S, A) or stacked (k, S, A)).

    Discounted: one dense LU solve :math:`(I - \gamma P_\pi) V = r_\pi` (``numpy.linalg.solve``),
    :math:`Q = r + \gamma P V`. Finite horizon: the backward recursion
    :math:`Q_t = r + \gamma P V_{t+1}`, :math:`V_t = \sum_a \pi Q_t`, :math:`V_H = 0`.
    """
    P, r, mu0, g = np.asarray(mdp.P), np.asarray(mdp.r), np.asarray(mdp.mu0), float(mdp.gamma)
    P_pi, r_pi = chain(mdp, pi)
    S = r.shape[0]
    if mdp.horizon is None:
        V = np.linalg.solve(np.eye(S) - g * P_pi, r_pi[..., None])[..., 0]
        Q = r + g * np.einsum("sat,...t->...sa", P, V)
        return Values(V, Q, Q - V[..., None], V @ mu0)
    H = int(mdp.horizon)
    Vs, Qs = [], []
    V_next = np.zeros(np.shape(r_pi), dtype=np.result_type(pi, float))
    for _ in range(H):
        Q = r + g * np.einsum("sat,...t->...sa", P, V_next)
        V_next = np.einsum("...sa,...sa->...s", pi, Q)
        Qs.append(Q)
        Vs.append(V_next)
    V = np.stack(Vs[::-1], axis=-2)
    Qt = np.stack(Qs[::-1], axis=-3)
    return Values(V, Qt, Qt - V[..., None], V[..., 0, :] @ mu0)


def marginals(mdp: Any, pi: np.ndarray, T: int) -> np.ndarray:
    r""":math:`p_t(s) = \Pr(s_t = s)` for t < T by forward propagation :math:`p_{t+1} = p_t P_\pi`, shape (T, S)."""
    P_pi, _ = chain(mdp, pi)
    out = np.empty((T, P_pi.shape[-1]), dtype=np.result_type(P_pi, float))
    p = np.asarray(mdp.mu0, dtype=float)
    for t in range(T):
        out[t] = p
        p = p @ P_pi
    return out


def occupancy(mdp: Any, pi: np.ndarray) -> np.ndarray:
    r""":math:`d_\pi = (1-\gamma)\mu_0^\top (I-\gamma P_\pi)^{-1}` by one LU solve of the transposed system."""
    P_pi, _ = chain(mdp, pi)
    S = P_pi.shape[0]
    return (1.0 - mdp.gamma) * np.linalg.solve((np.eye(S) - mdp.gamma * P_pi).T, np.asarray(mdp.mu0, dtype=float))


def state_weights(mdp: Any, pi: np.ndarray) -> np.ndarray:
    r"""Weights of the policy gradient theorem: :math:`\rho = d_\pi/(1-\gamma)` (S,), or :math:`\gamma^t p_t` (H, S)."""
    if mdp.horizon is None:
        return occupancy(mdp, pi) / (1.0 - mdp.gamma)
    H = int(mdp.horizon)
    return (mdp.gamma ** np.arange(H))[:, None] * marginals(mdp, pi, H)


def complex_step_gradient(f: Callable[[np.ndarray], Any], x: np.ndarray, h: float = COMPLEX_STEP) -> np.ndarray:
    r"""Gradient of a real-analytic f by complex steps along every coordinate, all at once.

    ``f`` takes a stack of complex parameter vectors (k, n) and returns k values.
    """
    x = np.asarray(x, dtype=float)
    n = x.shape[0]
    X = x[None, :] + 1j * h * np.eye(n)
    return np.asarray(f(X)).imag / h


def richardson_gradient(f: Callable[[np.ndarray], float], x: np.ndarray, h: float = 1e-3) -> np.ndarray:
    r"""Richardson-extrapolated central differences of a real f along every coordinate.

    :math:`D(h) = (f(x+he)-f(x-he))/2h`, :math:`(4D(h/2) - D(h))/3`: truncation
    :math:`O(h^4 f^{(5)})`, rounding :math:`O(\varepsilon |f| / h)`.
    """
    x = np.asarray(x, dtype=float)
    g = np.empty(x.shape[0])
    for k in range(x.shape[0]):
        e = np.zeros_like(x)
        e[k] = h
        d1 = (f(x + e) - f(x - e)) / (2 * h)
        d2 = (f(x + e / 2) - f(x - e / 2)) / h
        g[k] = (4 * d2 - d1) / 3
    return g


def fisher(policy: Any, theta: np.ndarray, weights: np.ndarray) -> np.ndarray:
    r"""Dense :math:`F = \sum_s w(s)\sum_a \pi(a|s)\psi\psi^\top` from the explicit score ψ, shape (n, n)."""
    psi = score(policy, theta)
    pi = probs(policy, theta)
    return np.einsum("s,sa,san,sam->nm", weights, pi, psi, psi)


def kl_per_state(logp: np.ndarray, logq: np.ndarray) -> np.ndarray:
    r""":math:`KL(p\|q)(s) = \sum_a p(a|s)(\log p(a|s) - \log q(a|s))` from log-probabilities, shape (S,)."""
    return np.sum(np.exp(logp) * (logp - logq), axis=-1)


def transposed(P: np.ndarray) -> np.ndarray:
    """``P[s', a, s]`` renormalized over the last axis: the transition tensor with s and s' swapped."""
    Pt = np.transpose(np.asarray(P), (2, 1, 0))
    return Pt / Pt.sum(axis=2, keepdims=True)
