r"""Optimal references: value iteration and policy iteration (soft control: :mod:`pgexact.updates.soft`).

Hard control (Puterman 1994, ch. 6; Sutton & Barto 2018, sec. 4.3-4.4):
:math:`V^*(s) = \max_a [r(s, a) + \gamma \sum_{s'} P(s'|s, a) V^*(s')]`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..errors import NumericalError
from ..exact._checks import check_mdp, check_pi
from ..exact.evaluation import evaluate
from ..models.finite_mdp import FiniteMDP
from .._validation import (
    MAX_TIME_STEPS,
    as_float_array,
    check_positive_finite,
    check_positive_int,
    check_real,
    check_time_steps,
)

__all__ = [
    "ValueIterationResult",
    "value_iteration",
    "PolicyIterationResult",
    "policy_iteration",
    "greedy_policy",
]


def _require_discounted(mdp: FiniteMDP, what: str) -> None:
    if mdp.horizon is not None:
        raise ValueError(
            f"{what} needs a discounted MDP (horizon=None), got horizon={mdp.horizon}: with a finite "
            "horizon the optimal policy is time-dependent; use value_iteration (backward induction)"
        )


def _tol(tol: Any) -> float:
    return check_positive_finite("tol", tol)


def _feasible(mdp: FiniteMDP) -> np.ndarray | None:
    """The model's (S, A) mask of feasible actions, or None when every action is feasible."""
    mask = getattr(mdp, "action_mask", None)
    if mask is None:
        return None
    mask = np.asarray(mask, dtype=bool)
    return None if mask.all() else mask


def _masked(Q: np.ndarray, mask: np.ndarray | None) -> np.ndarray:
    """Q with infeasible actions at -inf (Q itself when every action is feasible)."""
    return Q if mask is None else np.where(mask, Q, -np.inf)


def greedy_policy(Q: Any, current: np.ndarray | None = None, atol: float = 0.0) -> np.ndarray:
    r"""Deterministic greedy policy matrix :math:`\pi(a|s) = 1[a = \arg\max_b Q(s, b)]`, shape (S, A).

    Ties go to the lowest action, except that the action ``current[s]`` is kept whenever
    :math:`Q(s, current) \ge \max_b Q(s, b) - atol` (so that policy iteration terminates).
    Infeasible actions can be excluded by setting their Q to :math:`-\infty`.
    """
    Q = as_float_array("Q", Q, ndim=2, allow_nonfinite=True)
    if Q.size == 0:
        raise ValueError(f"Q must have shape (S, A) with S, A >= 1, got {Q.shape}")
    bad = np.isnan(Q) | (Q == np.inf)
    if bad.any():
        i, j = np.argwhere(bad)[0]
        raise ValueError(f"Q[{i}, {j}] is {Q[i, j]}, expected a finite number (or -inf for an infeasible action)")
    dead = np.all(Q == -np.inf, axis=1)
    if dead.any():
        raise ValueError(f"Q[{int(np.argmax(dead))}] is -inf for every action: no action is feasible")
    if current is not None:
        if current is True or current is False or isinstance(current, str) or current is Ellipsis:
            raise TypeError(f"current must be None or an integer array of shape ({Q.shape[0]},), got {current!r}")
        cur = np.asarray(current)
        if cur.dtype.kind not in "iu" or cur.shape != (Q.shape[0],):
            raise TypeError(
                f"current must be None or an integer array of shape ({Q.shape[0]},), got dtype {cur.dtype}, shape {cur.shape}"
            )
        out = (cur < 0) | (cur >= Q.shape[1])
        if out.any():
            i = int(np.argmax(out))
            raise ValueError(f"current[{i}] is {cur[i]}, expected an action in [0, {Q.shape[1]})")
        current = cur
    atol = check_real("atol", atol)
    if atol < 0:
        raise ValueError(f"atol must be >= 0, got {atol}")
    return _one_hot(_greedy_actions(Q, current, atol), Q.shape[-1])


def _greedy_actions(Q: np.ndarray, current: np.ndarray | None = None, atol: float = 0.0) -> np.ndarray:
    best = np.argmax(Q, axis=-1)
    if current is not None:
        keep = Q[np.arange(Q.shape[0]), current] >= Q.max(axis=-1) - atol
        best = np.where(keep, current, best)
    return best


def _one_hot(actions: np.ndarray, n_actions: int) -> np.ndarray:
    pi = np.zeros(actions.shape + (n_actions,))
    np.put_along_axis(pi, actions[..., None], 1.0, axis=-1)
    return pi


# ----------------------------------------------------------------------------- value iteration
@dataclass(frozen=True, eq=False)
class ValueIterationResult:
    r"""Values of value iteration, and the greedy policy.

    Attributes
    ----------
    V : numpy.ndarray, shape (S,) or (H, S)
        The last iterate :math:`V_k` (backward induction: :math:`V_t`, t = 0..H-1).
    Q : numpy.ndarray, shape (S, A) or (H, S, A)
        :math:`r + \gamma P V_k` (for every action, feasible or not).
    policy : numpy.ndarray, shape (S, A) or (H, S, A)
        Deterministic greedy policy matrix (time-indexed for a finite horizon).
    actions : numpy.ndarray of int, shape (S,) or (H, S)
        The greedy action of every state: ``policy`` is its one-hot encoding.
    J : float
        :math:`\mu_0^\top V` (``V[0]`` for a finite horizon).
    n_iterations : int
    error_bound : float
        Rigorous bound on :math:`\|V - V^*\|_\infty`, rounding included (see
        :func:`value_iteration`).
    """

    V: np.ndarray
    Q: np.ndarray
    policy: np.ndarray
    actions: np.ndarray
    J: float
    n_iterations: int
    error_bound: float


def _rounding_per_step(mdp: FiniteMDP) -> tuple[float, float]:
    r"""``(c, R)`` with :math:`\eta = c\,(R + \gamma \|V\|_\infty)` bounding :math:`\|\tilde T V - T V\|_\infty`.

    :math:`\tilde T` is one computed Bellman step. Each entry of :math:`r + \gamma P V` is a dot
    product of at most n terms (n the largest number of stored entries of a row of P) and two
    more operations; with unit roundoff u the error is at most
    :math:`(n + 2) u / (1 - (n + 2) u)\,(|r| + \gamma \|V\|_\infty)` (Higham 2002, eq. 3.5); the
    max over actions is exact. Here :math:`c = (n + 3)\,2u`: a factor 2 of safety, which also
    covers :math:`(n + 2) u < 1/2`. :math:`R = \max |r|`.
    """
    if mdp.P.ndim == 2:  # sparse (S*A, S)
        n = int(np.max(np.diff(mdp.P.indptr))) if mdp.P.shape[0] else 0
    else:
        n = mdp.n_states
    return (n + 3) * np.finfo(float).eps, float(np.max(np.abs(mdp.r)))


def _contraction_modulus(mdp: FiniteMDP) -> float:
    r"""An upper bound on :math:`\gamma \max_{s,a} \sum_{s'} P(s'|s, a)`, the sup-norm modulus of T.

    The stored rows of P sum to 1 only to rounding (a row sum of :math:`1 + 10^{-16}` moves
    :math:`V^*` by :math:`10^{-16} \|r\|/(1-\gamma)^2`, which matters at
    :math:`\gamma = 0.9999`); the computed row sums are enlarged by their own rounding bound.
    """
    P = mdp.P
    if P.ndim == 2:  # sparse (S*A, S)
        sums = np.asarray(abs(P).sum(axis=1)).ravel()
        n = int(np.max(np.diff(P.indptr))) if P.shape[0] else 0
    else:
        sums = np.abs(P).sum(axis=2)
        n = mdp.n_states
    row = float(np.max(sums)) * (1.0 + (n + 1) * np.finfo(float).eps)
    return mdp.gamma * max(row, 1.0)


def value_iteration(
    mdp: FiniteMDP, *, tol: float | None = None, n_iterations: int | None = None
) -> ValueIterationResult:
    r"""Value iteration :math:`V_{k+1} = \max_a (r + \gamma P V_k)` (finite horizon: backward induction).

    Discounted, from :math:`V_0 = 0`. After every step the rigorous a-posteriori bound

    .. math::

        \|V_k - V^*\|_\infty \le \frac{\hat\gamma \|V_k - V_{k-1}\|_\infty + \eta}{1 - \hat\gamma}

    holds for the *computed* iterates, with :math:`\hat\gamma` :math:`\gamma` times an upper
    bound on the largest row sum of the stored P (which is 1 only to rounding) (Puterman 1994, Theorem 6.3.1, with a rounding term
    :math:`\eta` per computed Bellman step: :math:`\|\tilde V_k - V^*\| \le \eta + \gamma
    \|\tilde V_{k-1} - V^*\|` and :math:`\|\tilde V_{k-1} - V^*\| \le \|\tilde V_k - \tilde V_{k-1}\|
    + \|\tilde V_k - V^*\|`). It is reported as ``error_bound``.

    * ``n_iterations=k``: exactly k steps; returns :math:`V_k` with its bound (k = 0 returns
      :math:`V_0 = 0`, :math:`Q = r` and the a-priori bound
      :math:`\|V^*\|_\infty \le \max|r| / (1 - \hat\gamma)`).
    * ``tol`` given: stops at the first k with ``error_bound`` :math:`\le` ``tol``
      :math:`\cdot \|V_k\|_\infty` (a relative tolerance, whatever the scale of V). When
      rounding keeps the bound above that (the iterates reach a fixed point of the computed
      operator, or stop contracting for two discount horizons :math:`2/(1-\gamma)`, at least 50
      steps), :class:`NumericalError` says how far it got.
    * default: as accurate as rounding allows; stops once the iteration term is below the
      rounding term (:math:`\gamma \|V_k - V_{k-1}\|_\infty \le \eta`), or at the same
      stagnation test, and reports the bound reached.

    Finite horizon H: :math:`V_{H} = 0`, :math:`Q_t = r + \gamma P V_{t+1}`,
    :math:`V_t = \max_a Q_t`, exact in H steps but for rounding (``error_bound`` is
    :math:`H\eta`), with a time-indexed optimal policy. If the model has an ``action_mask``, the
    max runs over feasible actions only.

    Parameters
    ----------
    mdp : FiniteMDP
    tol : float, optional
        Relative tolerance on the error bound, > 0 (not used with ``n_iterations``).
    n_iterations : int, optional
        Number of steps k >= 0 to take (then no stopping test). Discounted MDPs only: with a
        finite horizon H backward induction always takes its H steps, and ``n_iterations``
        other than None or H is refused.

    Raises
    ------
    NumericalError
        If rounding keeps the bound above ``tol``: loosen ``tol`` or use
        :func:`policy_iteration` (exact linear solves).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 2, gamma=0.9, seed=0)
    >>> vi = value_iteration(mdp)
    >>> resid = vi.V - np.max(mdp.r + 0.9 * mdp.expected_next(vi.V), axis=1)  # Bellman optimality
    >>> bool(np.max(np.abs(resid)) < 1e-11), vi.actions.dtype.kind
    (True, 'i')
    >>> v3 = value_iteration(mdp, n_iterations=3)  # the third iterate V_3
    >>> v1 = value_iteration(mdp, n_iterations=1)
    >>> bool(np.array_equal(v1.V, mdp.r.max(axis=1))), v3.n_iterations
    (True, 3)
    """
    mdp = check_mdp(mdp)
    tol = None if tol is None else _tol(tol)
    if n_iterations is not None:
        if isinstance(n_iterations, (int, np.integer)) and not isinstance(n_iterations, (bool, np.bool_)) \
                and n_iterations == 0:
            n_iterations = 0
        else:
            n_iterations = check_positive_int("n_iterations", n_iterations)
    mask = _feasible(mdp)
    S, A = mdp.n_states, mdp.n_actions
    g = mdp.gamma
    if mdp.horizon is not None:
        H = mdp.horizon
        if n_iterations is not None and n_iterations != H:
            raise ValueError(
                f"n_iterations={n_iterations} on a horizon-{H} MDP: backward induction takes exactly "
                f"H={H} steps; pass n_iterations=None (or use mdp.with_horizon({n_iterations}))"
            )
        check_time_steps(f"value_iteration on a horizon-{H} MDP", H, "use a shorter horizon or the discounted problem")
        V = np.zeros((H, S))
        Q = np.zeros((H, S, A))
        nxt = np.zeros(S)
        for t in range(H - 1, -1, -1):
            Q[t] = mdp.r + g * mdp._expected_next(nxt) if t < H - 1 else mdp.r
            V[t] = _masked(Q[t], mask).max(axis=1)
            nxt = V[t]
        acts = np.stack([_greedy_actions(_masked(Q[t], mask)) for t in range(H)])
        c, R = _rounding_per_step(mdp)
        bound = H * c * (R + g * float(np.max(np.abs(V))))
        return ValueIterationResult(V, Q, _one_hot(acts, A), acts, float(mdp.mu0 @ V[0]), H, bound)
    safety = 1.0 + 16.0 * np.finfo(float).eps  # rounding of the bound's own arithmetic
    g_hat = _contraction_modulus(mdp)
    c, R = _rounding_per_step(mdp)
    patience = max(50, int(math.ceil(2.0 / (1.0 - g))))
    V = np.zeros(S)
    if n_iterations == 0:  # V_0 = 0; ||V_0 - V*|| = ||V*|| <= max|r| / (1 - gamma)
        bound = safety * R / (1.0 - g_hat) if g_hat < 1.0 else math.inf
        Q = np.array(mdp.r)
        acts = _greedy_actions(_masked(Q, mask))
        return ValueIterationResult(V, Q, _one_hot(acts, A), acts, 0.0, 0, bound)
    best_diff, best_k = math.inf, 0
    k = 0
    while True:
        k += 1
        if k > MAX_TIME_STEPS:  # a contraction this slow would run for minutes: refuse, with advice
            if n_iterations is not None:
                raise ValueError(
                    f"value_iteration: n_iterations={n_iterations} is more than the {MAX_TIME_STEPS} "
                    f"iterations value iteration runs; the iterates had not stopped changing (gamma={g})"
                )
            raise NumericalError(
                f"value iteration at gamma={g} had not converged after {MAX_TIME_STEPS} iterations "
                f"(error bound {bound:.3g}); use policy_iteration (exact linear solves) or a smaller gamma"
            )
        Q = mdp.r + g * mdp._expected_next(V)
        V_new = _masked(Q, mask).max(axis=1)
        diff = float(np.max(np.abs(V_new - V)))
        V = V_new
        V_norm = float(np.max(np.abs(V)))
        eta = c * (R + g * V_norm)
        bound = safety * (g_hat * diff + eta) / (1.0 - g_hat) if g_hat < 1.0 else math.inf
        if n_iterations is not None:
            if diff == 0.0:  # a fixed point of the computed map: every later iterate equals V_k
                k = n_iterations
                break
            if k >= n_iterations:
                break
            if diff < best_diff:
                best_diff, best_k = diff, k
            elif k - best_k > patience:
                raise ValueError(
                    f"value_iteration: n_iterations={n_iterations}, but from iteration {best_k} on "
                    f"the iterates cycle at rounding level ({best_diff:.3g}) instead of converging; "
                    "pass tol instead (or a smaller n_iterations)"
                )
            continue
        if tol is not None and bound <= tol * V_norm:
            break
        if tol is None and g_hat * diff <= eta:
            break
        if diff < best_diff:
            best_diff, best_k = diff, k
        if diff == 0.0 or k - best_k > patience:
            if tol is None:
                break
            raise NumericalError(
                f"value iteration: rounding keeps the error bound at {bound:.3g} = "
                f"{bound / max(V_norm, np.finfo(float).tiny):.3g} ||V|| after {k} iterations, "
                f"above tol={tol:g} (relative); loosen tol or use policy_iteration (exact "
                "linear solves)"
            )
    Q = mdp.r + g * mdp._expected_next(V)
    acts = _greedy_actions(_masked(Q, mask))
    return ValueIterationResult(V, Q, _one_hot(acts, A), acts, float(mdp.mu0 @ V), k, bound)


# ----------------------------------------------------------------------------- policy iteration
@dataclass(frozen=True, eq=False)
class PolicyIterationResult:
    r"""Result of :func:`policy_iteration`.

    Attributes
    ----------
    policy : numpy.ndarray, shape (S, A)
        The final deterministic policy (optimal).
    actions : numpy.ndarray of int, shape (S,)
        Its action in every state (``policy`` is the one-hot encoding).
    V, Q : numpy.ndarray
        Its exact values (optimal).
    J : float
    n_iterations : int
        Number of improvement steps that changed the policy.
    values : numpy.ndarray, shape (n_iterations + 1, S)
        :math:`V^{\pi_k}` of every iterate; non-decreasing in k, elementwise.
    J_history : numpy.ndarray, shape (n_iterations + 1,)
    """

    policy: np.ndarray
    actions: np.ndarray
    V: np.ndarray
    Q: np.ndarray
    J: float
    n_iterations: int
    values: np.ndarray
    J_history: np.ndarray


def policy_iteration(
    mdp: FiniteMDP, pi0: Any = None, *, max_iter: int = 10_000
) -> PolicyIterationResult:
    r"""Howard's policy iteration: exact evaluation, then greedy improvement, until stable.

    .. math:: \pi_{k+1}(s) \in \arg\max_a Q^{\pi_k}(s, a)

    :math:`V^{\pi_{k+1}} \ge V^{\pi_k}` elementwise (policy improvement theorem, Sutton & Barto
    2018, sec. 4.2) and it terminates at an optimal policy after finitely many steps (at most
    :math:`A^S`; Puterman 1994, Theorem 6.4.2). The current action is kept unless another beats it
    by more than :math:`10^{-12}\max(1, \|Q\|_\infty)` (rounding can otherwise make it cycle among
    tied actions). If the model has an ``action_mask``, improvement picks feasible actions only.

    Parameters
    ----------
    mdp : FiniteMDP
        Discounted (``horizon=None``).
    pi0 : array_like, shape (S, A), optional
        Initial policy (default uniform); may be stochastic.
    max_iter : int

    Examples
    --------
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(5, 3, gamma=0.9, seed=1)
    >>> pi_res = policy_iteration(mdp)
    >>> abs(pi_res.J - value_iteration(mdp).J) < 1e-10
    True
    """
    mdp = check_mdp(mdp)
    _require_discounted(mdp, "policy_iteration")
    max_iter = check_positive_int("max_iter", max_iter)
    S, A = mdp.n_states, mdp.n_actions
    mask = _feasible(mdp)
    if pi0 is None:  # uniform over the feasible actions
        pi = np.full((S, A), 1.0 / A) if mask is None else mask / mask.sum(axis=1, keepdims=True)
    else:
        pi = check_pi(mdp, pi0, name="pi0")
    ev = evaluate(mdp, pi)
    values, Js = [ev.V], [ev.J]
    current: np.ndarray | None = None
    for k in range(max_iter + 1):
        atol = 1e-12 * max(1.0, float(np.max(np.abs(ev.Q))))
        new_actions = _greedy_actions(_masked(ev.Q, mask), current, atol)
        if current is not None and np.array_equal(new_actions, current):
            return PolicyIterationResult(
                pi, current, ev.V, ev.Q, ev.J, len(values) - 1, np.array(values), np.array(Js)
            )
        current, pi = new_actions, _one_hot(new_actions, A)
        ev = evaluate(mdp, pi)
        values.append(ev.V)
        Js.append(ev.J)
    raise NumericalError(f"policy iteration did not stabilize in max_iter={max_iter} iterations")
