r"""Exact policy evaluation on a finite MDP: V, Q, A, J, occupancy and state marginals.

Discounted (``horizon=None``): :math:`V = (I - \gamma P_\pi)^{-1} r_\pi`, :math:`Q = r + \gamma P V`,
:math:`A = Q - V`, :math:`J = \mu_0^\top V`, and the normalized discounted occupancy
:math:`d_\pi = (1 - \gamma) \mu_0^\top (I - \gamma P_\pi)^{-1}` (Sutton & Barto 2018, sec. 3.5 and
13.2; Kakade & Langford 2002, sec. 2). One LU factorization serves both V and d.

Finite horizon H: the backward recursion :math:`V_{H-1} = r_\pi`,
:math:`Q_t = r + \gamma P V_{t+1}`, :math:`V_t = \sum_a \pi Q_t`, and the forward recursion
:math:`p_0 = \mu_0`, :math:`p_{t+1} = p_t P_\pi` for the state marginals.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.linalg
from scipy.linalg.lapack import dgetrf, dgetrs

from .._validation import ReadOnlyOnCopy, check_memory, check_positive_int, check_time_steps
from ..errors import NotUniqueError, SingularSystemError
from ..models.finite_mdp import FiniteMDP, _sparse_policy_transition
from ._checks import check_mdp, check_pi
from ._krylov import check_tol, sparse_discounted_solve
from ._sparse_stationary import sparse_stationary_distribution

__all__ = [
    "Evaluation",
    "evaluate",
    "occupancy",
    "state_marginals",
    "stationary_distribution",
    "discounted_visitation",
]


@dataclass(frozen=True, eq=False)
class Evaluation(ReadOnlyOnCopy):
    r"""Exact values of a fixed policy (all arrays read-only).

    Attributes
    ----------
    J : float
        Expected (discounted) return :math:`J = \mu_0^\top V` (``V[0]`` for finite horizons).
    V : numpy.ndarray, shape (S,) or (H, S)
        State values; time-indexed for a finite horizon (reward-to-go from t, discounted from t).
    Q : numpy.ndarray, shape (S, A) or (H, S, A)
        Action values.
    A : numpy.ndarray, shape (S, A) or (H, S, A)
        Advantages ``Q - V``.
    d : numpy.ndarray of shape (S,), or None
        Normalized discounted occupancy :math:`d_\pi = (1-\gamma)\sum_t \gamma^t p_t`
        (discounted case only).
    p : numpy.ndarray of shape (H, S), or None
        State marginals :math:`p[t, s] = \Pr(s_t = s)` (finite-horizon case only).
    residual : float or None
        Sparse, discounted MDPs only: the achieved relative residual of the Krylov solves,
        :math:`\max(\|r_\pi - (I-\gamma P_\pi)V\|_2/\|r_\pi\|_2,\;
        \|\mu_0 - (I-\gamma P_\pi)^\top\rho\|_2/\|\mu_0\|_2)`, recomputed after the solve
        (at most the requested ``tol``). ``None`` for direct solves (dense ``P``: LU, accurate
        to rounding) and for finite horizons (exact recursions).
    """

    J: float
    V: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    d: np.ndarray | None
    p: np.ndarray | None
    residual: float | None = None

    def __post_init__(self) -> None:
        for name in ("V", "Q", "A", "d", "p"):
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray):  # a plain record: anything else is stored as given
                arr.flags.writeable = False


def _discounted_solve(mdp: FiniteMDP, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return ``(V, rho)`` with V = (I - γ P_π)^{-1} r_π and ρ = μ0ᵀ (I - γ P_π)^{-1}.

    One LU factorization of ``I - γ P_π`` (LAPACK getrf) serves both; ρ uses the transposed
    triangular solves. A sparse ``P`` is routed to the Krylov solver of
    :mod:`pgexact.exact._krylov` (default tolerance). The matrix is strictly diagonally dominant for γ < 1, hence nonsingular.
    """
    if mdp.is_sparse:  # Krylov path, default tolerance
        return sparse_discounted_solve(mdp, pi, check_tol(None))[:2]
    S = mdp.n_states
    M = mdp._policy_transition(pi)
    M *= -mdp.gamma
    M.reshape(-1)[:: S + 1] += 1.0  # the diagonal (M is a fresh C-contiguous array)
    # Factor M^T: the C-ordered M is M^T in Fortran order, so LAPACK factors it in place with
    # no copy. Then M V = r_pi is the transposed solve and M^T rho = mu0 the plain one. The
    # LAPACK routines are called directly (getrf, getrs): for small S the checking layers of
    # scipy.linalg.lu_factor / lu_solve cost more than the arithmetic.
    lu, piv, info = dgetrf(M.T, overwrite_a=True)
    if info != 0:  # exactly singular pivot: impossible for gamma < 1 (strict diagonal dominance)
        raise SingularSystemError(
            f"I - gamma P_pi is singular to working precision (LAPACK getrf info={info}); "
            "lower gamma"
        )
    V, _ = dgetrs(lu, piv, mdp._policy_reward(pi), trans=1)
    rho, _ = dgetrs(lu, piv, mdp.mu0)
    return V, rho


def _finite_values(mdp: FiniteMDP, pi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    r"""Backward recursion: ``(V[t, s], Q[t, s, a])`` for t = 0..H-1.

    :math:`V_{H-1} = r_\pi`, :math:`V_t = r_\pi + \gamma P_\pi V_{t+1}` (one S x S product per
    step: the loop over time is the only Python loop), then every
    :math:`Q_t = r + \gamma P V_{t+1}` at once, one product of P with the (S, H-1) matrix of values.
    """
    H = int(mdp.horizon)  # type: ignore[arg-type]
    S, A = mdp.n_states, mdp.n_actions
    r_pi = mdp._policy_reward(pi)
    P_pi = mdp._policy_transition(pi)
    g = mdp.gamma
    V = np.empty((H, S))
    V[H - 1] = r_pi
    for t in range(H - 2, -1, -1):
        V[t] = r_pi + g * (P_pi @ V[t + 1])
    Q = np.empty((H, S, A))
    Q[H - 1] = mdp.r
    if H > 1:
        Q[:-1] = mdp.r + g * np.moveaxis(mdp._expected_next(np.ascontiguousarray(V[1:].T)), 2, 0)
    return V, Q


def _marginals(mdp: FiniteMDP, pi: np.ndarray, T: int) -> np.ndarray:
    if mdp.is_sparse:  # p_{t+1} = P_pi^T p_t with a CSR transpose
        step = _sparse_policy_transition(mdp.P, pi).T.tocsr()
        p = np.empty((T, mdp.n_states))
        p[0] = mdp.mu0
        for t in range(1, T):
            p[t] = step @ p[t - 1]
        return p
    P_pi = mdp._policy_transition(pi)
    p = np.empty((T, mdp.n_states))
    p[0] = mdp.mu0
    for t in range(1, T):
        p[t] = p[t - 1] @ P_pi
    return p


def evaluate(mdp: FiniteMDP, pi: Any, *, tol: float | None = None) -> Evaluation:
    r"""Exact V, Q, A, J and occupancy (or state marginals) of the policy ``pi``.

    .. math::

        V = (I - \gamma P_\pi)^{-1} r_\pi, \quad Q = r + \gamma P V, \quad A = Q - V, \quad
        J = \mu_0^\top V, \quad d_\pi = (1-\gamma)\, \mu_0^\top (I - \gamma P_\pi)^{-1}

    (discounted; Sutton & Barto 2018, eq. 3.14 in matrix form; Kakade & Langford 2002, sec. 2),
    or the time-indexed backward recursion for a finite horizon (see the module docstring).

    Parameters
    ----------
    mdp : FiniteMDP
    pi : array_like, shape (S, A), or tuple (policy, theta)
        Policy matrix, rows are distributions (tolerance 1e-9), or a parametrized policy with
        its parameters (see :func:`pgexact.policies.as_probabilities`). No probability on an
        action that ``mdp.action_mask`` marks infeasible.
    tol : float, optional
        Sparse ``P`` only: relative residual to which the two discounted systems are solved by
        BiCGSTAB (GMRES fallback); default 1e-10. The achieved value is
        :attr:`Evaluation.residual`; :math:`\|\delta V\|_2 \le \sqrt{S}\,
        \mathrm{tol}\,\|r_\pi\|_2/(1-\gamma)` (see :mod:`pgexact.exact._krylov`). Dense ``P`` is
        solved directly (LU) and ``tol`` is only validated.

    Returns
    -------
    Evaluation

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import evaluate
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(5, 3, gamma=0.9, seed=0)
    >>> ev = evaluate(mdp, np.full((5, 3), 1 / 3))
    >>> # Bellman equation V = r_pi + gamma P_pi V holds to machine precision
    >>> pi = np.full((5, 3), 1 / 3)
    >>> resid = ev.V - mdp.policy_reward(pi) - mdp.gamma * mdp.policy_transition(pi) @ ev.V
    >>> bool(np.max(np.abs(resid)) < 1e-12)
    True
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    return _evaluate(mdp, pi, check_tol(tol))


def _evaluate(mdp: FiniteMDP, pi: np.ndarray, tol: float | None = None) -> Evaluation:
    """:func:`evaluate` on a validated model and policy matrix (no checks)."""
    if mdp.horizon is None:
        residual = None
        if mdp.is_sparse:
            V, rho, residual = sparse_discounted_solve(mdp, pi, check_tol(tol))
        else:
            V, rho = _discounted_solve(mdp, pi)
        Q = mdp.r + mdp.gamma * mdp._expected_next(V)
        J = float(mdp.mu0 @ V)
        return Evaluation(
            J=J, V=V, Q=Q, A=Q - V[:, None], d=(1.0 - mdp.gamma) * rho, p=None, residual=residual
        )
    H, S, A = int(mdp.horizon), mdp.n_states, mdp.n_actions
    check_memory(
        f"the exact evaluation of a horizon-{H} MDP with S={S}, A={A}",
        8 * H * S * (2 * A + 2),  # V, p (H, S) and Q, A (H, S, A)
        "use the discounted problem (mdp.with_horizon(None), gamma < 1) or a shorter horizon",
    )
    check_time_steps(
        f"the exact evaluation of a horizon-{H} MDP", H,
        "use the discounted problem (mdp.with_horizon(None), gamma < 1), the average reward "
        "(pgexact.average) or a shorter horizon",
    )
    V, Q = _finite_values(mdp, pi)
    p = _marginals(mdp, pi, mdp.horizon)
    return Evaluation(J=float(mdp.mu0 @ V[0]), V=V, Q=Q, A=Q - V[:, :, None], d=None, p=p)


def state_marginals(mdp: FiniteMDP, pi: Any, T: int) -> np.ndarray:
    r"""State marginals :math:`p[t, s] = \Pr_\pi(s_t = s)` for t = 0..T-1, shape (T, S).

    :math:`p_0 = \mu_0`, :math:`p_{t+1} = p_t P_\pi`. Any T, in the discounted case too
    (discounting does not change the chain).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 2, gamma=0.9, seed=1)
    >>> p = state_marginals(mdp, np.full((4, 2), 0.5), T=6)
    >>> bool(np.allclose(p.sum(axis=1), 1.0, atol=1e-14))
    True
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    T = check_positive_int("T", T)
    check_memory(
        f"state_marginals with T={T} and S={mdp.n_states}", 8 * T * mdp.n_states,
        "ask for fewer steps T (the marginals of a discounted chain converge; see occupancy "
        "or stationary_distribution)",
    )
    check_time_steps(f"state_marginals with T={T}", T, "ask for fewer steps T (see occupancy or stationary_distribution)")
    return _marginals(mdp, pi, T)


def discounted_visitation(mdp: FiniteMDP, pi: Any, *, tol: float | None = None) -> np.ndarray:
    r"""Unnormalized discounted visitation :math:`\rho(s) = \sum_t \gamma^t \Pr(s_t = s)`, shape (S,).

    Discounted: :math:`\rho = \mu_0^\top (I - \gamma P_\pi)^{-1} = d_\pi / (1 - \gamma)`;
    finite horizon: :math:`\sum_{t<H} \gamma^t p_t`. ``tol``: as in :func:`evaluate`.
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    return _visitation(mdp, pi, check_tol(tol))


def _visitation(mdp: FiniteMDP, pi: np.ndarray, tol: float | None = None) -> np.ndarray:
    if mdp.horizon is None:
        if mdp.is_sparse:
            return sparse_discounted_solve(mdp, pi, check_tol(tol))[1]
        return _discounted_solve(mdp, pi)[1]
    check_memory(
        f"the discounted visitation of a horizon-{mdp.horizon} MDP with S={mdp.n_states}",
        8 * int(mdp.horizon) * mdp.n_states, "use a shorter horizon",
    )
    check_time_steps(f"the discounted visitation of a horizon-{mdp.horizon} MDP", int(mdp.horizon), "use a shorter horizon")
    p = _marginals(mdp, pi, mdp.horizon)
    return (mdp.gamma ** np.arange(mdp.horizon)) @ p


def occupancy(mdp: FiniteMDP, pi: Any, *, tol: float | None = None) -> np.ndarray:
    r"""Normalized discounted state occupancy, shape (S,), summing to 1.

    Discounted: :math:`d_\pi = (1-\gamma) \mu_0^\top (I - \gamma P_\pi)^{-1}`
    (Kakade & Langford 2002, sec. 2). Finite horizon: the normalized discounted time average
    :math:`d = \sum_{t<H} \gamma^t p_t / \sum_{t<H} \gamma^t` (with γ = 1, the average marginal);
    this is the state distribution of the state-averaged Fisher matrix for finite horizons.
    ``tol``: as in :func:`evaluate` (sparse ``P`` only).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 2, gamma=0.5, seed=2)
    >>> d = occupancy(mdp, np.full((4, 2), 0.5))
    >>> float(np.round(d.sum(), 12))
    1.0
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    rho = _visitation(mdp, pi, check_tol(tol))
    return rho / _visitation_mass(mdp)


def _visitation_mass(mdp: FiniteMDP) -> float:
    """Total mass of the discounted visitation: 1/(1-γ), or Σ_{t<H} γ^t."""
    if mdp.horizon is None:
        return 1.0 / (1.0 - mdp.gamma)
    return float(np.sum(mdp.gamma ** np.arange(mdp.horizon)))


def stationary_distribution(mdp: FiniteMDP, pi: Any) -> np.ndarray:
    r"""The stationary distribution :math:`\nu = \nu P_\pi` of the chain under ``pi``, shape (S,).

    Computed as the null space of :math:`(P_\pi^\top - I)` (SVD, ``scipy.linalg.null_space``);
    for a sparse ``P``, from the closed classes of the chain's graph and a sparse LU of the balance
    equations, never forming an S x S dense matrix (see
    :mod:`pgexact.exact._sparse_stationary`).

    Raises
    ------
    NotUniqueError
        If the chain has more than one closed class (the null space has dimension > 1), so
        that the stationary distribution is not unique.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 2, gamma=0.9, seed=3)
    >>> pi = np.full((4, 2), 0.5)
    >>> nu = stationary_distribution(mdp, pi)
    >>> bool(np.allclose(nu @ mdp.policy_transition(pi), nu, atol=1e-12))
    True
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    if mdp.is_sparse:  # graph of the chain + sparse LU (no S x S dense matrix)
        return sparse_stationary_distribution(mdp._policy_transition(pi))
    P_pi = mdp._policy_transition(pi)
    S = mdp.n_states
    # Singular values of P_pi^T - I below 1e3 * S * eps * max(sv) count as zero: P_pi is exactly
    # stochastic, so one singular value is zero up to rounding (a few S * eps * max(sv)); the
    # factor 1e3 is the safety margin. A second one that small means two closed classes, or a
    # chain so close to reducible that nu is not determined to working precision.
    _, sv, vt = scipy.linalg.svd(P_pi.T - np.eye(S))
    n_null = int(np.sum(sv <= 1e3 * S * np.finfo(float).eps * sv[0]))
    if n_null > 1:
        raise NotUniqueError(
            f"the chain under pi has {n_null} independent stationary distributions to working "
            "precision (more than one closed class); the stationary distribution is not unique"
        )
    nu = vt[-1] / vt[-1].sum()
    return np.clip(nu, 0.0, None) / np.clip(nu, 0.0, None).sum()
