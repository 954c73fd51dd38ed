r"""Exact moments of the n-step policy-gradient estimator, by recursions over windows of n steps.

The n-step estimator (:func:`pgexact.estimators.n_step`) weights the score at step t by
:math:`w_t = d^t\big(f_t(s_t) + R^{(n)}_t\big)` with :math:`f_t = -V_t` and the n-step return

.. math::
    R^{(j)}_\tau = \sum_{k<j'} d^k r(x_{\tau+k}) + d^{j'} c_{\tau+j'}(s_{\tau+j'}),
    \qquad j' = \min(j, T - \tau),

where :math:`c_\tau = V_\tau` masked at terminal states (nothing is bootstrapped from a terminal
state) and :math:`c_T` is the value bootstrapped after the last step (:math:`V(s_T)` for the
truncated objective with a stationary V, else 0). The window of :math:`w_t` spans the steps
t..t+n, so :math:`w_t` fits neither the causal family of :mod:`pgexact.estimators.moments`
(a geometric tail :math:`\sum_l\beta^{l-t}y_l`) nor the total return. It is still a function of
the future of :math:`x_t` only, so (module docstring of :mod:`pgexact.estimators.moments`)

.. math::
    C^\top E[\hat g_e\hat g_e^\top] C = C^\top\mathrm{diag}(K_d)\,C + C^\top K_{up} + K_{up}^\top C, \quad
    K_d(x) = \sum_t p_t(x) E[w_t^2 \mid x_t = x], \quad
    K_{up}(x) = \sum_t p_t(x) E[w_t S_{t+1} \mid x_t = x],

with :math:`S_\tau = \sum_{u\ge\tau} w_u\psi(x_u)^\top`. The window is unrolled by its length:
:math:`R^{(j)}_\tau = r(x_\tau) + d R^{(j-1)}_{\tau+1}` (:math:`j \ge 1`),
:math:`R^{(0)}_\tau = c_\tau(s_\tau)`, and at the horizon :math:`R^{(j)}_T = c_T(s_T)` for every j
(which cuts every window at T). Conditioned on :math:`x_\tau = x`, with
:math:`\bar X(s) = \sum_a\pi(a|s)X(s, a)` and :math:`\mathcal P X = P X` (finite horizon) or
:math:`\gamma P X` (the killed chain of geometric stopping, where d = 1):

.. math::
    h^{(j)}_\tau &= E[R^{(j)}_\tau] = r + d\,\mathcal P\bar h^{(j-1)}_{\tau+1}, \\
    M^{(a,b)}_\tau &= E[R^{(a)}_\tau R^{(b)}_\tau]
        = r^2 + d\,r\,\mathcal P(\bar h^{(a-1)}_{\tau+1} + \bar h^{(b-1)}_{\tau+1})
          + d^2\,\mathcal P\bar M^{(a-1,b-1)}_{\tau+1}, \quad M^{(0,b)}_\tau = c_\tau h^{(b)}_\tau, \\
    U_\tau &= E[S_{\tau+1}] = \mathcal P\bar S_{\tau+1}, \qquad
    \bar S_\tau = \overline{\eta_\tau C + U_\tau}, \qquad \eta_\tau = d^\tau(f_\tau + h^{(n)}_\tau), \\
    Z^{(j)}_\tau &= E[R^{(j)}_\tau S_{\tau+1}] = r\,U_\tau + d\,\mathcal P\bar Y^{(j-1)}_{\tau+1},
        \quad Z^{(0)}_\tau = c_\tau U_\tau, \\
    Y^{(j)}_\tau &= E[R^{(j)}_\tau S_\tau] = d^\tau\big(f_\tau h^{(j)}_\tau + M^{(j,n)}_\tau\big) C + Z^{(j)}_\tau,

and :math:`E[w_t^2] = d^{2t}(f^2 + 2 f h^{(n)} + M^{(n,n)})`,
:math:`E[w_t S_{t+1}] = d^t(f U_t + Z^{(n)}_t)`. C is the score matrix (rows
:math:`\psi(x)`, or the scores along given directions). Finite horizon: one backward pass with
one product with P on :math:`S \times ((n+1)k + O(n^2))` columns per step,
:math:`O(H\,\mathrm{nnz}(P)\,(n k + n^2))`. Geometric stopping: the window quantities have
depth n and need no solve; only :math:`\bar S = (I - \gamma P_\pi)^{-1}\overline{\eta C}` does,
:math:`O(S^3 + n\,\mathrm{nnz}(P)\,k + n^2\,\mathrm{nnz}(P))`.

Sources: the n-step return, Sutton & Barto 2018, "Reinforcement learning: an introduction",
eq. 7.1, in the actor-critic of sec. 13.5; the moment equations of an additive functional of a
(killed) Markov chain, Sobel 1982, "The variance of discounted Markov decision processes",
J. Appl. Prob. 19, extended here to the window of n steps by unrolling it by its length.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

from .._validation import as_float_array, check_positive_int

__all__: list[str] = []


def nstep_tables(
    S: int, A: int, H: int | None, live: np.ndarray, V: Any, n: Any, bootstrap_last: bool
) -> tuple[np.ndarray, np.ndarray, int]:
    r"""``(f, c, n)`` of the n-step weight: ``f`` (H, S·A) or (S·A,), ``c`` (H+1, S) or (S,).

    ``H`` is None under geometric stopping (stationary V only). ``bootstrap_last``: the value
    after the last step is :math:`V(s_T)` (truncated objective, stationary V), else 0.
    """
    if V is None or n is None:
        need = "(S,)" if H is None else "(S,) or (T, S)"
        raise ValueError(f"estimator 'n_step' needs V (shape {need}) and n (a positive integer)")
    n = check_positive_int("n", n)
    v = as_float_array("V", V)
    if H is None:
        if v.shape != (S,):
            raise ValueError(f"V must have shape (S,)=({S},) under geometric stopping, got {v.shape}")
        return -np.repeat(v, A), v * live, n
    c = np.zeros((H + 1, S))
    if v.shape == (S,):
        c[:H] = v
        if bootstrap_last:
            c[H] = v
    elif v.shape == (H, S):  # time-indexed V: nothing is left after the last step
        c[:H] = v
    else:
        raise ValueError(f"V must have shape (S,)=({S},) or (T, S)=({H}, {S}), got {v.shape}")
    f = -np.repeat(c[:H], A, axis=1)
    return f, c * live[None, :], min(n, H)  # windows never reach past T: n > H is n = H


def _triangle(n: int) -> tuple[np.ndarray, np.ndarray, dict[tuple[int, int], int]]:
    """Pairs (a, b), 0 <= a <= b <= n, in a fixed order: arrays a, b and the index of each pair."""
    pairs = [(a, b) for b in range(n + 1) for a in range(b + 1)]
    index = {p: i for i, p in enumerate(pairs)}
    return np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]), index


def working_bytes(SA: int, S: int, k: int, n: int, H: int | None) -> int:
    """Bytes of the working arrays of :func:`finite_kernel` / :func:`geometric_kernel`."""
    tri = (n + 1) * (n + 2) // 2
    if H is None:
        return 8 * (SA * k * 8 + 5 * SA * (n + 1) + S * S * 3)
    return 8 * (SA * k * (3 * (n + 1) + 6) + S * (n + 1) * k * 2 + 3 * SA * tri + 2 * H * SA)


def finite_kernel(
    P: Callable[[np.ndarray], np.ndarray],
    pi: np.ndarray,
    C: np.ndarray,
    p: np.ndarray,
    f: np.ndarray,
    r: np.ndarray,
    c: np.ndarray,
    n: int,
    disc: float,
) -> tuple[np.ndarray, np.ndarray]:
    r"""``(C^T E[g_e g_e^T] C, E[g_e])`` of the n-step weight over H steps (module docstring).

    Shapes: ``P(X)`` maps (S, m) to (S·A, m); ``pi`` (S, A); ``C`` (S·A, k); ``p`` (H, S·A) pair
    marginals; ``f`` (H, S·A); ``r`` (S·A,); ``c`` (H+1, S); ``1 <= n <= H``.
    """
    S, A = pi.shape
    SA, H, k = S * A, p.shape[0], C.shape[1]
    pif = pi.reshape(-1)
    ta, tb, index = _triangle(n)
    prev = _triangle(n - 1)[2]
    inner = np.flatnonzero(ta >= 1)  # pairs (a, b) with a >= 1: from (a-1, b-1) at the next step
    inner_prev = np.array([prev[(ta[i] - 1, tb[i] - 1)] for i in inner], dtype=np.intp)
    first = np.flatnonzero(ta == 0)  # pairs (0, b)
    keep = np.flatnonzero(tb <= n - 1)  # what the previous step needs, in the order of `prev`
    top = np.array([index[(j, n)] for j in range(n + 1)], dtype=np.intp)  # M^{(j, n)}
    n_prev = len(prev)

    def avg(X: np.ndarray) -> np.ndarray:
        return np.einsum("sa,sa...->s...", pi, X.reshape((S, A) + X.shape[1:]))

    # state-level quantities at tau + 1 = H: S_H = 0, every window starting at H is c_H(s_H)
    cH = c[H]
    Sbar = np.zeros((S, k))
    Ybar = np.zeros((S, n, k))
    hbar = np.repeat(cH[:, None], n, axis=1)  # (S, n): h^{(0..n-1)}
    Mbar = np.repeat((cH * cH)[:, None], n_prev, axis=1)  # (S, n_prev)
    Kd = np.zeros(SA)
    Kup = np.zeros((SA, k))
    m = np.zeros(SA)
    Z = np.empty((SA, n + 1, k))
    h = np.empty((SA, n + 1))
    M = np.empty((SA, len(ta)))
    for tau in range(H - 1, -1, -1):
        out = P(np.concatenate([Sbar, Ybar.reshape(S, n * k), hbar, Mbar], axis=1))
        U = out[:, :k]
        PY = out[:, k:k + n * k].reshape(SA, n, k)
        Ph = out[:, k + n * k:k + n * k + n]
        PM = out[:, k + n * k + n:]
        ct = np.repeat(c[tau], A)
        h[:, 0] = ct
        h[:, 1:] = r[:, None] + disc * Ph
        M[:, first] = ct[:, None] * h[:, tb[first]]
        M[:, inner] = ((r * r)[:, None] + disc * r[:, None] * (Ph[:, ta[inner] - 1] + Ph[:, tb[inner] - 1])
                       + disc * disc * PM[:, inner_prev])
        Z[:, 0] = ct[:, None] * U
        Z[:, 1:] = r[:, None, None] * U[:, None, :] + disc * PY
        dt = disc**tau
        ft, pt, hn = f[tau], p[tau], h[:, n]
        eta = dt * (ft + hn)
        Kd += pt * dt * dt * (ft * ft + 2.0 * ft * hn + M[:, top[n]])
        Kup += (pt * dt)[:, None] * (ft[:, None] * U + Z[:, n])
        m += pt * eta
        coef = dt * (ft[:, None] * h[:, :n] + M[:, top[:n]])  # (SA, n)
        Ybar = avg(coef[:, :, None] * C[:, None, :] + Z[:, :n])
        Sbar = avg(eta[:, None] * C + U)
        hbar = avg(h[:, :n])
        Mbar = avg(M[:, keep])
    cross = C.T @ Kup
    return C.T @ (Kd[:, None] * C) + cross + cross.T, m


def geometric_kernel(
    K: Any, C: np.ndarray, nu: np.ndarray, f: np.ndarray, r: np.ndarray, c: np.ndarray, n: int
) -> tuple[np.ndarray, np.ndarray]:
    r"""``(C^T E[g_e g_e^T] C, E[g_e])`` of the n-step weight under geometric stopping.

    ``K`` is the killed chain of :mod:`pgexact.estimators.geometric_moments` (``K.step`` is
    :math:`\gamma P`, ``K.avg`` the π-average, ``K.solve`` the solve with
    :math:`I - \gamma P_\pi`); ``nu`` (S·A,) the pair occupancy; ``f``, ``r`` (S·A,); ``c`` (S,).
    """
    SA = r.shape[0]
    A = SA // c.shape[0]
    cx = np.repeat(c, A)
    # h^{(j)} = r + P hbar^{(j-1)}, j = 1..n; Ph[:, j] = P hbar^{(j)}, j = 0..n-1
    h = np.empty((SA, n + 1))
    Ph = np.empty((SA, n))
    h[:, 0] = cx
    for j in range(1, n + 1):
        Ph[:, j - 1] = K.step(K.avg(h[:, j - 1]))
        h[:, j] = r + Ph[:, j - 1]
    # M^{(a, a+delta)} along the diagonals, all delta at once: M_a[:, delta], delta = 0..n-a
    Mcur = cx[:, None] * h  # a = 0: M^{(0, delta)} = c h^{(delta)}, delta = 0..n
    Mjn = np.empty((SA, n + 1))  # M^{(j, n)}
    Mjn[:, 0] = Mcur[:, n]
    for a in range(1, n + 1):
        width = n - a + 1  # delta = 0..n-a
        PM = K.step(K.avg(Mcur[:, :width]))
        delta = np.arange(width)
        Mcur = (r * r)[:, None] + r[:, None] * (Ph[:, a - 1][:, None] + Ph[:, a - 1 + delta]) + PM
        Mjn[:, a] = Mcur[:, n - a]
    hn = h[:, n]
    eta = f + hn
    Sbar = K.solve(1.0, K.avg(eta[:, None] * C))
    U = K.step(Sbar)
    Z = cx[:, None] * U
    for j in range(1, n + 1):
        Y = (f * h[:, j - 1] + Mjn[:, j - 1])[:, None] * C + Z
        Z = r[:, None] * U + K.step(K.avg(Y))
    Kd = nu * (f * f + 2.0 * f * hn + Mjn[:, n])
    Kup = nu[:, None] * (f[:, None] * U + Z)
    cross = C.T @ Kup
    return C.T @ (Kd[:, None] * C) + cross + cross.T, nu * eta
