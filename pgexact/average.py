r"""The average-reward objective on unichain finite MDPs: gain, bias, differential values, gradient.

For a stationary policy π with transition matrix :math:`P_\pi` and reward :math:`r_\pi`:

.. math::
    \rho_\pi = \lim_{T\to\infty} \frac1T E\sum_{t<T} r(s_t, a_t) = d_\pi^\top r_\pi, \qquad
    h + \rho 1 = r_\pi + P_\pi h,\quad d_\pi^\top h = 0,

    Q(s, a) = r(s, a) - \rho + \sum_{s'} P(s'|s, a) h(s'), \qquad A = Q - h,

with :math:`d_\pi` the stationary distribution (:math:`d_\pi^\top P_\pi = d_\pi^\top`), which is the
occupancy measure of this objective, and the gradient (Sutton, McAllester, Singh & Mansour 2000,
Theorem 1, average-reward formulation)

.. math:: \nabla_\theta\rho = \sum_s d_\pi(s) \sum_a \nabla_\theta\pi(a|s)\, Q(s, a).

Sources: Puterman (1994), "Markov Decision Processes", sec. 8.2 (gain, bias, the Laurent
expansion :math:`V_\gamma = \rho/(1-\gamma) + h + O(1-\gamma)`) and sec. 8.3 (unichain models);
the course notes, "Policy gradient" notes, the remark that the objective is an expectation over
the stationary distribution — exact in this setting. **The model's γ and horizon are ignored**:
this objective has no discount (the γ of a :class:`~pgexact.FiniteMDP` is required by its
constructor and is only used by the discounted functions).

The formulas need a *unichain* policy: a single closed (recurrent) class of :math:`P_\pi`,
plus any transient states. Otherwise the gain depends on the start state and
:class:`MultichainError` is raised, naming the closed classes found (strongly connected
components of the support of :math:`P_\pi` that no transition leaves).
"""

from __future__ import annotations

from dataclasses import dataclass
import warnings
from typing import Any

import numpy as np
import scipy.linalg
import scipy.sparse
from scipy.sparse.csgraph import connected_components

from ._validation import ReadOnlyOnCopy, as_float_array, format_bytes
from .errors import MultichainError, SingularSystemError
from .exact._checks import check_policy_theta
from .models.finite_mdp import FiniteMDP, check_mdp, check_pi
from .policies.softmax import SoftmaxPolicy

__all__ = [
    "AverageEvaluation", "MultichainError", "closed_classes", "evaluate", "policy_gradient", "MAX_DENSE_STATES",
    "MAX_STRUCTURED_STATES",
]

#: Largest number of states solved with dense LU (the chain is densified).
MAX_DENSE_STATES = 8000

#: Largest number of states of an ill-conditioned chain solved by the structured elimination
#: (O(S^3) work in S numpy steps: about 2 s at 1000 states).
MAX_STRUCTURED_STATES = 2000

#: Largest condition-number estimate accepted from the LU solves: their relative error is about
#: cond * eps, here at most 1e6 * 2.2e-16 = 2.2e-10; beyond it the structured elimination runs.
_MAX_LU_CONDITION = 1e6


@dataclass(frozen=True, eq=False)
class AverageEvaluation(ReadOnlyOnCopy):
    r"""Exact average-reward quantities of a unichain policy (arrays read-only).

    Attributes
    ----------
    rho : float
        The gain :math:`\rho = d^\top r_\pi`.
    h : numpy.ndarray, shape (S,)
        The bias (differential value), normalized by :math:`d^\top h = 0`.
    Q : numpy.ndarray, shape (S, A)
        Differential action values :math:`r - \rho + P h`.
    A : numpy.ndarray, shape (S, A)
        Advantages :math:`Q - h`.
    d : numpy.ndarray, shape (S,)
        The stationary distribution (the occupancy measure of the objective).
    """

    rho: float
    h: np.ndarray
    Q: np.ndarray
    A: np.ndarray
    d: np.ndarray

    def __post_init__(self) -> None:
        for name in ("h", "Q", "A", "d"):
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray):  # a plain record: anything else is stored as given
                arr.flags.writeable = False


def _dense_chain(mdp: FiniteMDP, pi: np.ndarray) -> np.ndarray:
    S = mdp.n_states
    if S > MAX_DENSE_STATES:
        raise ValueError(
            f"mdp has S={S} states, more than MAX_DENSE_STATES={MAX_DENSE_STATES}: pgexact.average "
            f"solves dense S x S systems, which would need {format_bytes(8 * S * S)} per matrix"
        )
    P_pi = mdp._policy_transition(pi)
    return P_pi.toarray() if scipy.sparse.issparse(P_pi) else np.asarray(P_pi)


def _check_chain(P_pi: Any) -> Any:
    """A square matrix (dense float64 copy, or a sparse matrix) with finite entries >= 0."""
    if scipy.sparse.issparse(P_pi):
        if P_pi.ndim != 2 or P_pi.shape[0] != P_pi.shape[1] or P_pi.dtype.kind not in "iuf":
            raise ValueError(f"P_pi must be a square real matrix, got shape {P_pi.shape} and dtype {P_pi.dtype}")
        data = P_pi.tocoo()
        bad = ~np.isfinite(data.data) | (data.data < 0)
        if bad.any():
            k = int(np.argmax(bad))
            raise ValueError(
                f"P_pi[{int(data.row[k])}, {int(data.col[k])}] is {data.data[k]}, expected a finite number >= 0"
            )
        return P_pi
    arr = as_float_array("P_pi", P_pi, ndim=2)
    if arr.shape[0] != arr.shape[1] or arr.shape[0] == 0:
        raise ValueError(f"P_pi must be a non-empty square matrix, got shape {arr.shape}")
    neg = arr < 0
    if neg.any():
        i, j = (int(k) for k in np.argwhere(neg)[0])
        raise ValueError(f"P_pi[{i}, {j}] is {arr[i, j]}, expected >= 0")
    return arr


def closed_classes(P_pi: Any) -> list[np.ndarray]:
    r"""The closed classes of a stochastic matrix: strongly connected components no transition leaves.

    Parameters
    ----------
    P_pi : array_like or sparse matrix, shape (S, S)

    Returns
    -------
    list of numpy.ndarray
        Sorted state indices of each closed (recurrent) class; the chain is unichain iff there
        is exactly one. The number of classes is the multiplicity of the eigenvalue 1.

    Examples
    --------
    >>> import numpy as np
    >>> closed_classes(np.array([[1.0, 0.0, 0.0], [0.5, 0.0, 0.5], [0.0, 0.0, 1.0]]))
    [array([0]), array([2])]
    """
    G = scipy.sparse.csr_array(_check_chain(P_pi))
    G.data = (G.data > 0).astype(np.int8)
    G.eliminate_zeros()
    n, label = connected_components(G, directed=True, connection="strong")
    coo = G.tocoo()
    leaves = np.zeros(n, dtype=bool)
    cross = label[coo.row] != label[coo.col]
    leaves[label[coo.row[cross]]] = True
    return [np.flatnonzero(label == c) for c in range(n) if not leaves[c]]


def evaluate(mdp: FiniteMDP, pi: Any) -> AverageEvaluation:
    r"""Gain, bias, differential Q and advantages, and the stationary distribution of a unichain policy.

    .. math::
        d^\top (I - P_\pi + 1 1^\top) = 1^\top, \quad \rho = d^\top r_\pi, \quad
        (I - P_\pi + 1 d^\top) h = r_\pi - \rho 1

    (the second matrix is nonsingular exactly for unichain :math:`P_\pi`, and its solution has
    :math:`d^\top h = 0`; Puterman 1994, sec. 8.2 and Theorem A.7). The model's γ and horizon are
    ignored (module docstring).

    Both systems are solved by LU when LAPACK's condition estimate is at most 1e6 (relative
    error about 2e-10 or less). A nearly multichain chain (classes joined by probabilities ε)
    has condition about 1/ε, and its diagonal entries :math:`1 - ε` are rounded by as much as
    ε itself; it is then solved from the off-diagonal entries alone (each row taken to sum to
    1): d by GTH elimination and h by a grounded elimination that never subtracts (see
    ``_structured_solution``), so ρ and every entry of d are accurate to a few ulps, h to a
    few ulps of :math:`\|h\|_\infty \sim 1/ε`, and Q, A to about
    :math:`10^{-16}\|h\|_\infty` absolute (at most :data:`MAX_STRUCTURED_STATES` states).

    Parameters
    ----------
    mdp : FiniteMDP
        Dense or sparse P (densified: at most :data:`MAX_DENSE_STATES` states).
    pi : array_like, shape (S, A)
        Policy matrix.

    Returns
    -------
    AverageEvaluation

    Raises
    ------
    MultichainError
        If :math:`P_\pi` has more than one closed class.
    SingularSystemError
        If the chain is ill-conditioned and has more than :data:`MAX_STRUCTURED_STATES` states,
        or its bias overflows float64.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import FiniteMDP
    >>> P = np.array([[[0.0, 1.0]], [[1.0, 0.0]]])  # a 2-cycle, one action
    >>> mdp = FiniteMDP(P, r=[[1.0], [3.0]], mu0=[1.0, 0.0], gamma=0.9)  # gamma is ignored
    >>> ev = evaluate(mdp, np.ones((2, 1)))
    >>> float(ev.rho), ev.d.round(12).tolist(), ev.h.round(12).tolist()
    (2.0, [0.5, 0.5], [-0.5, 0.5])
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    P_pi = _dense_chain(mdp, pi)
    classes = closed_classes(P_pi)
    if len(classes) > 1:
        raise MultichainError(classes)
    r_pi = mdp._policy_reward(pi)
    solved = _lu_solution(P_pi, r_pi)
    if solved is not None:
        d, rho, h = solved
        Q = mdp.r - rho + mdp._expected_next(h)
        return AverageEvaluation(rho=rho, h=h, Q=Q, A=Q - h[:, None], d=d)
    S = mdp.n_states
    if S > MAX_STRUCTURED_STATES:
        raise SingularSystemError(
            f"the unichain systems for d and h are ill-conditioned (condition number over "
            f"{_MAX_LU_CONDITION:g}: the chain is nearly multichain, its classes joined by tiny "
            f"probabilities), and the accurate structured elimination is limited to "
            f"MAX_STRUCTURED_STATES={MAX_STRUCTURED_STATES} states (mdp has {S}); mix the policy or "
            "the transitions more, or use the discounted objective"
        )
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            d, rho, h, A = _structured_solution(mdp, P_pi, r_pi, classes[0])
            Q = A + h[:, None]
    except FloatingPointError as exc:
        raise SingularSystemError(
            "the bias h of this nearly multichain chain (classes joined by tiny probabilities) "
            "overflows float64: it grows like 1 / (the probability of leaving a class); mix the "
            "policy or the transitions more, or use the discounted objective"
        ) from exc
    return AverageEvaluation(rho=rho, h=h, Q=Q, A=A, d=d)


def _lu_solution(P_pi: np.ndarray, r_pi: np.ndarray) -> tuple[np.ndarray, float, np.ndarray] | None:
    """``(d, rho, h)`` by two LU solves, or None if either system's condition number exceeds
    :data:`_MAX_LU_CONDITION` (LAPACK's 1-norm estimate), or is singular to working precision."""
    S = P_pi.shape[0]
    one = np.ones(S)
    try:
        with warnings.catch_warnings(), np.errstate(all="raise"):
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            M = (np.eye(S) - P_pi + 1.0).T
            d = _well_conditioned_solve(M, one)
            if d is None:
                return None
            d = np.clip(d, 0.0, None)
            d /= d.sum()
            rho = float(d @ r_pi)
            h = _well_conditioned_solve(np.eye(S) - P_pi + np.outer(one, d), r_pi - rho)
    except (scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning, FloatingPointError):
        return None
    return None if h is None else (d, rho, h)


def _well_conditioned_solve(M: np.ndarray, b: np.ndarray) -> np.ndarray | None:
    """The solution of ``M x = b`` by LU, or None if the estimated condition number is too large."""
    lu, piv = scipy.linalg.lu_factor(M, check_finite=False)
    norm = float(np.max(np.abs(M).sum(axis=0)))
    rcond, info = scipy.linalg.lapack.dgecon(lu, norm, norm="1")
    if info != 0 or not rcond * _MAX_LU_CONDITION >= 1.0:
        return None
    return scipy.linalg.lu_solve((lu, piv), b, check_finite=False)


def _structured_solution(
    mdp: FiniteMDP, P_pi: np.ndarray, r_pi: np.ndarray, recurrent: np.ndarray
) -> tuple[np.ndarray, float, np.ndarray, np.ndarray]:
    r"""``(d, rho, h, A)`` of an ill-conditioned unichain chain from the off-diagonal transitions only.

    A nearly multichain chain has diagonal entries :math:`P(s|s) = 1 - \epsilon` whose rounding
    (about :math:`10^{-16}`) is as large as the :math:`\epsilon` that decides the answer; the
    off-diagonal entries are exact. The diagonal is therefore never used (each row of the chain
    is taken to sum to 1 exactly):

    * d by the Grassmann-Taksar-Heyman elimination on the recurrent class (Grassmann, Taksar &
      Heyman 1985; no subtraction, every entry of d to a few ulps: O'Cinneide 1993);
    * h by Gaussian elimination on :math:`(I - P_\pi)` with one recurrent state grounded at 0,
      each pivot formed as the row's slack plus the magnitudes of its off-diagonal entries (the
      slack, the transition mass to the grounded state, is updated without cancellation:
      Ahac & Olesky 1986; Alfa, Xue & Ye 2002), then shifted to :math:`d^\top h = 0`;
    * :math:`A(s, a) = r(s, a) - \rho + \sum_{s' \ne s} P(s'|s, a)(h(s') - h(s))`, the
      advantage without the cancellation of :math:`Q - h` when h is large.
    """
    S = P_pi.shape[0]
    C = np.asarray(recurrent)
    d = np.zeros(S)
    d[C] = _gth(P_pi[np.ix_(C, C)])
    rho = float(d @ r_pi)
    g = int(C[np.argmax(d[C])])  # ground a recurrent state
    keep = np.delete(np.arange(S), g)
    x = _grounded_solve(P_pi[np.ix_(keep, keep)], P_pi[keep, g], r_pi[keep] - rho)
    h = np.zeros(S)
    h[keep] = x
    h -= d @ h
    nA = mdp.n_actions
    if mdp.is_sparse:
        P = mdp.P.tocoo()
        src = P.row // nA
        drift = np.bincount(P.row, weights=P.data * (h[P.col] - h[src]), minlength=S * nA).reshape(S, nA)
    else:
        drift = np.einsum("sat,sat->sa", mdp.P, h[None, None, :] - h[:, None, None])
    return d, rho, h, mdp.r - rho + drift


def _gth(P: np.ndarray) -> np.ndarray:
    """Stationary distribution of an irreducible stochastic matrix by GTH elimination (diagonal unused)."""
    W = np.array(P, dtype=np.float64)
    m = W.shape[0]
    for k in range(m - 1, 0, -1):
        s = W[k, :k].sum()  # > 0: the censored chain on {0..k} is irreducible
        W[:k, k] /= s
        W[:k, :k] += np.outer(W[:k, k], W[k, :k])
    x = np.zeros(m)
    x[0] = 1.0
    for j in range(1, m):
        x[j] = x[:j] @ W[:j, j]
    return x / x.sum()


def _grounded_solve(P: np.ndarray, to_ground: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Solve :math:`(I - P) x = b` where ``P`` omits a grounded state, using off-diagonal entries only.

    ``to_ground[i]`` is the transition probability from state i to the grounded state; the
    diagonal of :math:`I - P` is ``to_ground[i] + sum_{j != i} P[i, j]``.
    """
    n = P.shape[0]
    M = -np.array(P, dtype=np.float64)
    np.fill_diagonal(M, 0.0)
    slack = np.array(to_ground, dtype=np.float64)
    rhs = np.array(b, dtype=np.float64)
    pivots = np.empty(n)
    for k in range(n):
        pivots[k] = slack[k] - M[k, k + 1:].sum()  # slack + |off-diagonals| (columns left of k are eliminated)
        lk = M[k + 1:, k] / pivots[k]  # <= 0
        M[k + 1:, k + 1:] -= np.outer(lk, M[k, k + 1:])
        slack[k + 1:] -= lk * slack[k]  # >= 0, no cancellation
        rhs[k + 1:] -= lk * rhs[k]
    x = np.empty(n)
    for k in range(n - 1, -1, -1):
        x[k] = (rhs[k] - M[k, k + 1:] @ x[k + 1:]) / pivots[k]
    return x


def policy_gradient(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any) -> np.ndarray:
    r"""The gradient of the gain, :math:`\nabla_\theta\rho = \sum_s d(s)\sum_a \nabla\pi(a|s) Q(s, a)`, shape (n_params,).

    Computed as :math:`\sum_{s,a} d(s)\pi(a|s)\nabla\log\pi(a|s) Q(s, a)` (Sutton et al. 2000,
    Theorem 1, average-reward case); the model's γ and horizon are ignored.

    Parameters
    ----------
    mdp : FiniteMDP
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 2, gamma=0.9, seed=0)
    >>> pol, theta = TabularSoftmax(4, 2), np.linspace(-1, 1, 8)
    >>> g = policy_gradient(mdp, pol, theta)
    >>> e = 1e-6 * np.eye(8)[3]
    >>> fd = (evaluate(mdp, pol.probs(theta + e)).rho - evaluate(mdp, pol.probs(theta - e)).rho) / 2e-6
    >>> bool(np.isclose(g[3], fd, rtol=1e-6, atol=1e-9))
    True
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    pi = policy.probs(theta)
    ev = evaluate(mdp, pi)
    return policy.score_contract(theta, ev.d[:, None] * pi * ev.Q)
