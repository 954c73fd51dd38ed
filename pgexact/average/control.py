r"""Average-reward control: the optimal gain, a bias and an optimal deterministic policy.

The multichain optimality equations (Puterman 1994, sec. 9.1, eqs. 9.1.1-9.1.2) are

.. math::
    \max_a \sum_{s'} P(s'|s, a)\, g(s') = g(s), \qquad
    \max_{a \in B_s} \Big[r(s, a) - g(s) + \sum_{s'} P(s'|s, a)\, h(s')\Big] = h(s),

with :math:`B_s` the maximizers of the first equation. The optimal gain :math:`g^*` is unique;
on unichain (and communicating) models it is constant, :math:`g^* = \rho^* 1`, and the first
equation is void. Three solvers:

* ``"policy_iteration"`` — multichain policy iteration (Puterman 1994, sec. 9.2), started from
  the greedy policy of 20 sweeps of undiscounted value iteration: evaluate the
  gain and bias of the current policy (:func:`pgexact.average.multichain_evaluate`), improve on
  the first equation, and only where it is tight, on the second; an action is changed only when
  another is better by more than the tolerance, so the loop ends in finitely many steps.
* ``"rvi"`` — relative value iteration (Puterman 1994, sec. 8.5.5) on the aperiodicity
  transform :math:`\tilde P = \tau I + (1-\tau) P`, :math:`\tilde r = (1-\tau) r` with
  :math:`\tau = 1/2` whenever some feasible pair has no self-loop
  (:math:`P(s|s, a) = 0`; a periodic optimal chain would make the iteration oscillate;
  Puterman 1994, sec. 8.5.4: same optimal policies and bias, gain scaled by :math:`1-\tau`),
  stopped when the span of :math:`T v - v` falls below the tolerance
  (:math:`\min(Tv - v) \le (1-\tau)\rho^* \le \max(Tv - v)`, Theorem 8.5.5). Needs a constant
  optimal gain: models that are not weakly communicating (where it may differ between states;
  Puterman 1994, sec. 8.3.1 and Theorem 8.3.2) are refused, naming states some policy keeps
  apart.
* ``"lp"`` — the multichain linear program (Puterman 1994, sec. 9.3):
  :math:`\min \sum_s \alpha_s g(s)` subject to :math:`g(s) \ge P(\cdot|s, a) g` and
  :math:`g(s) + h(s) \ge r(s, a) + P(\cdot|s, a) h`, :math:`\alpha` uniform, solved by HiGHS
  (:func:`scipy.optimize.linprog`); the policy is read off the dual (Theorem 9.3.8): the action
  with positive :math:`x(s, a)` where :math:`\sum_a x(s, a) > 0`, else the one with positive
  :math:`y(s, a)`.

Whatever the solver, the policy it finds is then evaluated exactly and checked against both
optimality equations with its own gain and bias; should an action still improve them by more
than the tolerance (RVI's greedy policy or the LP's dual policy can be gain-optimal yet not
satisfy the second equation on transient states, and the LP's vertex is only accurate to the
solver's feasibility tolerance), policy iteration continues from it, and
:attr:`AverageOptimum.improvements` says how many improvements that took. The returned gain and
bias are those of the returned policy, exact to rounding.
"""

from __future__ import annotations

from dataclasses import dataclass
import warnings
from typing import Any

import numpy as np
import scipy.optimize
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from .._validation import check_positive_int, check_tolerance, format_bytes
from ..errors import NumericalError, SingularSystemError
from ..models.finite_mdp import FiniteMDP
from . import evaluation
from .evaluation import MultichainEvaluation, _multichain_evaluate, as_average_model

__all__ = ["AverageOptimum", "METHODS", "optimal"]

#: The solvers of :func:`optimal`.
METHODS = ("policy_iteration", "rvi", "lp")


@dataclass(frozen=True, eq=False)
class AverageOptimum:
    r"""An optimal deterministic policy of the average reward, its gain and bias (arrays read-only).

    Attributes
    ----------
    rho : float
        :math:`\mu_0^\top g^*`, the optimal average reward from the start distribution (the
        constant optimal gain on unichain and communicating models; with a model given as
        ``(P, r)``, μ0 is uniform).
    gain : numpy.ndarray, shape (S,)
        The optimal gain :math:`g^*(s)` of every state.
    h : numpy.ndarray, shape (S,)
        The bias of the returned policy (:math:`P^* h = 0`); it solves the optimality equations.
    actions : numpy.ndarray of int, shape (S,)
        An optimal deterministic policy, :math:`a^*(s)`.
    classes : list of numpy.ndarray
        The recurrent classes of the returned policy's chain.
    class_gains : numpy.ndarray, shape (n_classes,)
        The gain of each recurrent class.
    method : str
        The solver (one of :data:`METHODS`).
    iterations : int
        Iterations of the solver (policy improvements, value-iteration sweeps, simplex steps).
    improvements : int
        Policy-iteration improvements applied after the solver before both optimality
        equations held (0 for ``"policy_iteration"``).
    n_actions : int
        A, the number of columns of :attr:`pi`.
    """

    rho: float
    gain: np.ndarray
    h: np.ndarray
    actions: np.ndarray
    classes: list
    class_gains: np.ndarray
    method: str
    iterations: int
    improvements: int
    n_actions: int

    def __post_init__(self) -> None:
        for name in ("gain", "h", "actions", "class_gains"):
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False

    @property
    def pi(self) -> np.ndarray:
        """The optimal policy as a one-hot matrix, shape (S, A)."""
        S = self.actions.shape[0]
        out = np.zeros((S, self.n_actions))
        out[np.arange(S), self.actions] = 1.0
        return out


class _Tables:
    """Dense ``P`` (S, A, S), ``r`` (S, A) and the feasible mask of a model."""

    def __init__(self, mdp: FiniteMDP) -> None:
        S, A = mdp.n_states, mdp.n_actions
        limit = evaluation.MAX_DENSE_STATES
        if S > limit:
            raise ValueError(
                f"mdp has S={S} states, more than MAX_DENSE_STATES={limit}: pgexact.average.optimal "
                f"works on dense S x A x S tables ({format_bytes(8 * S * A * S)})"
            )
        self.P = mdp.P.toarray().reshape(S, A, S) if mdp.is_sparse else np.asarray(mdp.P)
        self.r = np.asarray(mdp.r, dtype=np.float64)
        self.mask = np.ones((S, A), dtype=bool) if mdp.action_mask is None else np.asarray(mdp.action_mask, bool)
        self.S, self.A = S, A
        self.r_scale = 1.0 + float(np.max(np.abs(self.r[self.mask])))

    def chain(self, actions: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        s = np.arange(self.S)
        return self.P[s, actions], self.r[s, actions]

    def masked(self, X: np.ndarray) -> np.ndarray:
        return np.where(self.mask, X, -np.inf)


def _keep_or_switch(values: np.ndarray, actions: np.ndarray, atol: np.ndarray | float) -> tuple[np.ndarray, bool]:
    """Actions that beat ``actions[s]`` by more than ``atol`` replace it (lowest index among the best)."""
    s = np.arange(values.shape[0])
    best = np.argmax(values, axis=1)
    better = values[s, best] > values[s, actions] + atol
    return np.where(better, best, actions), bool(better.any())


def _improve(tab: _Tables, actions: np.ndarray, ev: MultichainEvaluation, tol: float) -> tuple[np.ndarray, bool]:
    """One multichain policy-improvement step (Puterman 1994, sec. 9.2.1, step 3)."""
    atol_g = tol * tab.r_scale
    G = tab.masked(tab.P @ ev.gain)
    new, changed = _keep_or_switch(G, actions, atol_g)
    if changed:
        return new, True
    tight = G >= G.max(axis=1, keepdims=True) - atol_g
    atol_h = tol * (tab.r_scale + float(np.max(np.abs(ev.h))))
    W = np.where(tight, tab.r + tab.P @ ev.h, -np.inf)
    return _keep_or_switch(W, actions, atol_h)


def _lookahead_policy(tab: _Tables, sweeps: int = 20) -> np.ndarray:
    """Greedy policy of :math:`T^n 0` (the best n-step total reward), the start of policy iteration:
    any start is valid (Puterman 1994, sec. 9.2.1); a lookahead start avoids policies whose chains
    barely reach a closed class (their bias is not computable in float64)."""
    v = np.zeros(tab.S)
    for _ in range(sweeps):
        W = tab.masked(tab.r + tab.P @ v)
        v = W.max(axis=1)
        v -= v.max()  # a constant shift: the greedy policy is unchanged, the values stay bounded
    return np.argmax(tab.masked(tab.r + tab.P @ v), axis=1)


def _policy_iteration(
    tab: _Tables, actions: np.ndarray, tol: float, max_iter: int
) -> tuple[np.ndarray, MultichainEvaluation, int]:
    """Policy iteration from ``actions``: ``(actions, evaluation, number of improvements)``."""
    for k in range(max_iter + 1):
        try:
            ev = _multichain_evaluate(*tab.chain(actions))
        except SingularSystemError as exc:
            raise SingularSystemError(
                f"average-reward policy iteration met a policy (after {k} improvements) whose gain and bias are "
                "singular to working precision: its chain takes astronomically long to reach a closed class "
                "(hitting times beyond ~1e15 steps make the bias unrepresentable); use method='rvi' or method='lp'"
            ) from exc
        actions, changed = _improve(tab, actions, ev, tol)
        if not changed:
            return actions, ev, k
    raise NumericalError(
        f"average-reward policy iteration made {max_iter} improvements without reaching a policy that no action "
        f"improves by more than tol={tol}: raise max_iter, or loosen tol (rounding may make two actions trade places)"
    )


def _trapping_states(tab: _Tables) -> np.ndarray:
    """States that keep the model from being weakly communicating (empty when it is).

    Weakly communicating (Puterman 1994, sec. 8.3.1): one set of states closed under every
    action and communicating under some policy — here the single closed strongly connected
    component of the graph of all feasible transitions — and every other state transient under
    every policy, i.e. no subset of them has, in each of its states, an action staying inside.
    Returns the states of a second closed component, or the largest such trapping subset.
    """
    S = tab.S
    support = (tab.P > 0) & tab.mask[:, :, None]
    G = scipy.sparse.csr_array(support.any(axis=1).astype(np.int8))
    n, label = connected_components(G, directed=True, connection="strong")
    coo = G.tocoo()
    leaves = np.zeros(n, dtype=bool)
    leaves[label[coo.row[label[coo.row] != label[coo.col]]]] = True
    closed = [c for c in range(n) if not leaves[c]]
    if len(closed) > 1:
        return np.flatnonzero(label == closed[1])
    inside = label != closed[0]
    while True:  # remove states with no feasible action whose support stays inside
        stays = tab.mask & ~(support & ~inside[None, None, :]).any(axis=2)
        keep = inside & stays.any(axis=1)
        if np.array_equal(keep, inside):
            return np.flatnonzero(inside)
        inside = keep


def _rvi(tab: _Tables, tol: float, max_iter: int) -> tuple[np.ndarray, int]:
    """Relative value iteration with the aperiodicity transform: ``(greedy actions, sweeps)``."""
    S = tab.S
    trapped = _trapping_states(tab)
    if trapped.size:
        shown = ", ".join(str(int(s)) for s in trapped[:8]) + (", ..." if trapped.size > 8 else "")
        raise ValueError(
            "method='rvi' needs a weakly communicating model (then the optimal gain is constant; Puterman 1994, "
            f"Theorem 8.3.2), but some policy keeps the states {{{shown}}} apart from the rest: the optimal gain may "
            "differ between states (a multichain model); use method='policy_iteration' or method='lp'"
        )
    loops = tab.P[np.arange(S), :, np.arange(S)]  # P(s|s, a), shape (S, A)
    tau = 0.0 if np.all(loops[tab.mask] > 0) else 0.5
    Pt = (1.0 - tau) * tab.P
    Pt[np.arange(S), :, np.arange(S)] += tau
    rt = (1.0 - tau) * tab.r
    atol = tol * tab.r_scale
    v = np.zeros(S)
    for n in range(1, max_iter + 1):
        Tv = tab.masked(rt + Pt @ v).max(axis=1)
        delta = Tv - v
        if float(delta.max() - delta.min()) <= atol:
            return np.argmax(tab.masked(tab.r + tab.P @ v), axis=1), n
        v = Tv - Tv[0]
    raise NumericalError(
        f"relative value iteration did not reach span(T v - v) <= {atol:.3g} in max_iter={max_iter} sweeps "
        "(slow mixing): raise max_iter, loosen tol, or use method='policy_iteration'"
    )


def _lp(tab: _Tables) -> tuple[np.ndarray, int]:
    """The multichain linear program and its dual policy: ``(actions, simplex iterations)``."""
    S, A = tab.S, tab.A
    s_idx, a_idx = np.nonzero(tab.mask)
    n = s_idx.size
    Pm = tab.P[s_idx, a_idx]  # (n, S)
    E = np.zeros((n, S))
    E[np.arange(n), s_idx] = 1.0
    Z = np.zeros((n, S))
    A_ub = np.block([[Pm - E, Z], [-E, Pm - E]])
    b_ub = np.concatenate([np.zeros(n), -tab.r[s_idx, a_idx]])
    c = np.concatenate([np.full(S, 1.0 / S), np.zeros(S)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the outcome is read from res.status
        res = scipy.optimize.linprog(c, A_ub=A_ub, b_ub=b_ub, bounds=(None, None), method="highs-ds")
    if res.status != 0:
        raise NumericalError(
            f"the average-reward linear program was not solved (HiGHS status {res.status}: {res.message}); "
            "use method='policy_iteration'"
        )
    dual = -np.asarray(res.ineqlin.marginals)
    y = np.zeros((S, A))
    x = np.zeros((S, A))
    y[s_idx, a_idx] = dual[:n]
    x[s_idx, a_idx] = dual[n:]
    y, x = tab.masked(y), tab.masked(x)
    in_x = np.where(tab.mask, x, 0.0).sum(axis=1) > 1e-12
    actions = np.where(in_x, np.argmax(x, axis=1), np.argmax(y, axis=1))
    return actions, int(res.nit)


def optimal(
    mdp: Any, method: str = "policy_iteration", *, tol: float = 1e-10, max_iter: int | None = None
) -> AverageOptimum:
    r"""Optimal average reward: gain of every state, bias and an optimal deterministic policy.

    Solves the multichain optimality equations (module docstring; Puterman 1994, ch. 9; on
    unichain models they reduce to :math:`\max_a [r(s, a) - \rho + P(\cdot|s, a) h] = h(s)`,
    sec. 8.4):

    .. math::
        \max_a P(\cdot|s, a)\, g = g(s), \qquad
        \max_{a \in B_s}\big[r(s, a) - g(s) + P(\cdot|s, a)\, h\big] = h(s).

    Parameters
    ----------
    mdp : FiniteMDP or (P, r)
        γ, horizon are not used (:func:`pgexact.average.as_average_model`); infeasible actions
        (``action_mask``) are never chosen. At most :data:`~pgexact.average.MAX_DENSE_STATES`
        states.
    method : {"policy_iteration", "rvi", "lp"}
        The solver (module docstring). ``"rvi"`` refuses models whose optimal gain is not
        constant.
    tol : float
        An action replaces the current one only if it is better by more than
        ``tol * (1 + max|r|)`` (first equation) or ``tol * (1 + max|r| + max|h|)`` (second);
        RVI stops at a span of ``tol * (1 + max|r|)``.
    max_iter : int, optional
        Largest number of RVI sweeps (default 100 000) and of policy improvements (default
        1000 + 10 S A; policy iteration usually needs a handful).

    Returns
    -------
    AverageOptimum

    Raises
    ------
    NumericalError
        If the solver does not converge within ``max_iter`` (or the LP fails).

    Examples
    --------
    >>> import numpy as np
    >>> P = np.zeros((2, 2, 2))
    >>> P[0, 0, 1] = P[1, 0, 0] = 1.0  # action 0: a deterministic 2-cycle (periodic)
    >>> P[0, 1, 0] = P[1, 1, 1] = 1.0  # action 1: stay
    >>> r = np.array([[1.0, 0.0], [2.0, 1.2]])  # cycling earns 1.5 per step, staying at most 1.2
    >>> [optimal((P, r), m).rho for m in ("policy_iteration", "rvi", "lp")]
    [1.5, 1.5, 1.5]
    >>> opt = optimal((P, r))
    >>> opt.actions.tolist(), opt.gain.tolist()
    ([0, 0], [1.5, 1.5])
    """
    mdp = as_average_model(mdp)
    if not isinstance(method, str) or method not in METHODS:
        raise ValueError(f"method is {method!r}, expected one of {', '.join(map(repr, METHODS))}")
    tol = check_tolerance("tol", tol)
    tab = _Tables(mdp)
    if max_iter is None:
        sweeps, improvements_cap = 100_000, 1000 + 10 * tab.S * tab.A
    else:
        sweeps = improvements_cap = check_positive_int("max_iter", max_iter)
    if method == "policy_iteration":
        start = _lookahead_policy(tab)
        actions, ev, iterations = _policy_iteration(tab, start, tol, improvements_cap)
        improvements = 0
    else:
        start, iterations = _rvi(tab, tol, sweeps) if method == "rvi" else _lp(tab)
        actions, ev, improvements = _policy_iteration(tab, start, tol, improvements_cap)
    out = AverageOptimum(
        rho=float(mdp.mu0 @ ev.gain), gain=np.array(ev.gain), h=np.array(ev.h), actions=actions,
        classes=ev.classes, class_gains=np.array(ev.class_gains), method=method,
        iterations=int(iterations), improvements=int(improvements), n_actions=tab.A,
    )
    return out
