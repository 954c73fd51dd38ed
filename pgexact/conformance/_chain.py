"""The chain computation of :func:`~pgexact.conformance.expected_update` (every convention).

Forward over the augmented chain of (time in episode, state) — plus the next-step autoreset rows
(episode length, final state) — for the row occupancies, backward over the rows left in the buffer
for the expected GAE advantages (see :mod:`pgexact.conformance.expected`).
"""

from __future__ import annotations

import numpy as np

from .._validation import check_memory
from ..models.finite_mdp import FiniteMDP
from .convention import Convention

__all__: list[str] = []

#: Largest n_steps * time_limit * nnz(P) the chain method runs (about 10 s of numpy).
_CHAIN_WORK_LIMIT = 3e9


def _nnz(mdp: FiniteMDP) -> int:
    return int(mdp.P.nnz) if mdp.P.ndim == 2 else int(np.count_nonzero(mdp.P))


def _episode_marginals(mdp: FiniteMDP, pi: np.ndarray, T: int) -> np.ndarray:
    """q[k, s] = Pr(episode alive at time k and s_k = s), k = 0..T-1 (q[0] = mu0)."""
    S = mdp.n_states
    check_memory(f"conformance expected_update with time_limit={T}, S={S}", 8.0 * T * S * 3,
                 "lower time_limit")
    Ppi = mdp._policy_transition(pi)
    alive = (~mdp.terminal).astype(np.float64)
    q = np.empty((T, S))
    q[0] = mdp.mu0
    for k in range(1, T):
        q[k] = (q[k - 1] @ Ppi) * alive
    return q


def _chain(mdp: FiniteMDP, pi: np.ndarray, V: np.ndarray, conv: Convention,
           groups: list, cache: dict | None = None) -> tuple[np.ndarray, np.ndarray]:
    """(W, c) of shape (G, S, A), (G, S): one per group of batches (None: the long-run average)."""
    S, A = mdp.n_states, mdp.n_actions
    T, n, g, lam = conv.time_limit, conv.n_steps, conv.gamma, conv.lam
    real = [b for grp in groups if grp is not None for b in grp]
    nb = max(real) + 1 if real else 1
    G = len(groups)
    work = float(n) * nb * T * max(_nnz(mdp), S)
    if work > _CHAIN_WORK_LIMIT:
        raise ValueError(
            f"the chain computation would need about {work:.3g} operations (n_steps={n} x batches x "
            f"time_limit={T} x nnz(P)), more than {_CHAIN_WORK_LIMIT:.0e}: use a same_step convention "
            "with truncation bootstrap/terminate/reset_obs (the renewal method) or fewer batches")
    nxt = conv.autoreset == "next_step"
    check_memory(f"conformance chain with n_steps={n}, time_limit={T}, S={S}",
                 8.0 * G * n * T * S * 2 * 2, "lower n_steps or time_limit")
    term = mdp.terminal.astype(np.float64)
    nonterm = 1.0 - term
    mu0 = mdp.mu0
    Ppi = mdp._policy_transition(pi)
    omega = g ** np.arange(T + 1) if conv.weighting == "discounted" else np.ones(T + 1)

    # ---- forward occupancies rho_j (rows j of the batches), regular (T, S) and reset rows (T, S)
    def step(reg: np.ndarray, dum: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        y = reg @ Ppi if not hasattr(Ppi, "tocsr") else (Ppi.T @ reg.T).T
        new_reg = np.zeros_like(reg)
        new_dum = np.zeros_like(dum)
        new_reg[1:] = y[:-1] * nonterm
        ended_term = y * term  # (T, S), entering terminal at k+1
        ended_trunc = y[T - 1] * nonterm
        if nxt:
            new_dum[:] = ended_term
            new_dum[T - 1] += ended_trunc
            new_reg[0] = mu0 * dum.sum()
        else:
            new_reg[0] = mu0 * (ended_term.sum() + ended_trunc.sum())
        return new_reg, new_dum

    key = (nxt, T, n, tuple(groups))
    if cache is not None and key in cache:
        rho_reg, rho_dum = cache[key]
    else:
        rho_reg, rho_dum = _occupancies(mdp, pi, conv, groups, step, nb, real)
        if cache is not None:
            cache[key] = (rho_reg, rho_dum)
    return _chain_backward(mdp, pi, V, conv, rho_reg, rho_dum, omega)


def _occupancies(mdp, pi, conv, groups, step, nb, real):
    """Row occupancies (G, n, T, S) of the regular and the reset rows, averaged over each group."""
    S, T, n, G = mdp.n_states, conv.time_limit, conv.n_steps, len(groups)
    nxt = conv.autoreset == "next_step"
    term = mdp.terminal.astype(np.float64)
    nonterm = 1.0 - term
    mu0 = mdp.mu0
    Ppi = mdp._policy_transition(pi)
    rho_reg = np.zeros((G, n, T, S))
    rho_dum = np.zeros((G, n, T, S))
    for i, grp in enumerate(groups):
        if grp is None:
            q = _episode_marginals(mdp, pi, T)
            y = q @ Ppi if not hasattr(Ppi, "tocsr") else (Ppi.T @ q.T).T
            dum = y * term
            dum[T - 1] += y[T - 1] * nonterm
            cycle = q.sum() + (1.0 if nxt else 0.0)
            rho_reg[i] = q / cycle
            if nxt:
                rho_dum[i] = dum / cycle
    if real:
        members: dict[int, list] = {}
        for i, grp in enumerate(groups):
            for b in grp or ():
                members.setdefault(b, []).append(i)
        reg = np.zeros((T, S))
        reg[0] = mu0
        dum = np.zeros((T, S))
        for b in range(nb):
            for j in range(n):
                for i in members.get(b, ()):
                    rho_reg[i, j] += reg
                    rho_dum[i, j] += dum
                reg, dum = step(reg, dum)
        for i, grp in enumerate(groups):
            if grp is not None:
                rho_reg[i] /= len(grp)
                rho_dum[i] /= len(grp)
    return rho_reg, rho_dum


def _chain_backward(mdp, pi, V, conv, rho_reg, rho_dum, omega):
    """Expected advantages G^(m) backwards over m, accumulated against the row occupancies."""
    S, A = mdp.n_states, mdp.n_actions
    T, n, g, lam, G = conv.time_limit, conv.n_steps, conv.gamma, conv.lam, rho_reg.shape[0]
    nxt = conv.autoreset == "next_step"
    nonterm = (~mdp.terminal).astype(np.float64)
    mu0 = mdp.mu0

    # ---- backward expected advantages G^(m), m = 1..n (row j = n - m)
    V_nt = V * nonterm
    PV = mdp._expected_next(V_nt)  # (S, A)
    Pnt = mdp._expected_next(nonterm)
    mu0V = float(mu0 @ V)
    base = mdp.r - V[:, None]
    # delta at regular (k, s, a): mid (m >= 2) and end (m = 1)
    d_mid = np.broadcast_to(base + g * PV, (T, S, A)).copy()
    d_end = np.broadcast_to(base + (g * PV if conv.bootstrap_end else 0.0), (T, S, A)).copy()
    tr = conv.truncation
    last_mid = {"bootstrap": g * PV, "terminate": 0.0 * PV,
                "reset_obs": g * PV if nxt else g * Pnt * mu0V,
                "cross": g * PV if nxt else g * Pnt * mu0V}[tr]
    last_end = last_mid if tr != "cross" else (last_mid if conv.bootstrap_end else 0.0 * PV)
    d_mid[T - 1] = base + last_mid
    d_end[T - 1] = base + last_end
    dum_mid = np.broadcast_to((g * mu0V - V)[:, None], (S, A))
    dum_end = np.broadcast_to(((g * mu0V if conv.bootstrap_end else 0.0) - V)[:, None], (S, A))

    W = np.zeros((G, S, A))
    ctot = np.zeros((G, S))
    om_reg = omega[:T][:, None]  # (T, 1)
    om_dum = omega[1:T + 1][:, None]  # L = 1..T
    G_reg = d_end
    G_dum = np.broadcast_to(dum_end, (T, S, A))
    for m in range(1, n + 1):
        j = n - m
        wr = rho_reg[:, j] * om_reg  # (G, T, S)
        W += np.einsum("gks,ksa->gsa", wr, G_reg)
        ctot += wr.sum(axis=1)
        if nxt:
            wd = rho_dum[:, j] * om_dum
            W += np.einsum("gks,ksa->gsa", wd, G_dum)
            ctot += wd.sum(axis=1)
        if m == n:
            break
        x_reg = (pi[None] * G_reg).sum(axis=2)  # (T, S)
        x_dum = (pi[None] * G_dum).sum(axis=2)
        cont = np.zeros((T, S, A))
        # k + 1 < T: continue into (k + 1, s') for non-terminal s'
        cont[: T - 1] = np.moveaxis(mdp._expected_next((x_reg[1:] * nonterm).T), 2, 0)
        if tr == "cross":
            if nxt:
                cont[T - 1] = mdp._expected_next(x_dum[T - 1] * nonterm)
            else:
                cont[T - 1] = Pnt * float(mu0 @ x_reg[0])
        G_new = d_mid + (g * lam) * cont
        G_dum = np.broadcast_to(dum_mid + (g * lam) * float(mu0 @ x_reg[0]), (T, S, A))
        G_reg = G_new
    W *= pi
    return W / n, ctot / n
