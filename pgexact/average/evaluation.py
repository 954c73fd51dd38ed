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
this objective has no discount. Every function takes either a :class:`~pgexact.FiniteMDP`
(whose γ, horizon and μ0 are not used, except μ0 where a result says so) or the pair
``(P, r)`` (or ``(P, r, action_mask)``) of arrays with no γ at all.

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

from .._validation import ReadOnlyOnCopy, as_float_array, format_bytes
from ..errors import MultichainError, SingularSystemError
from ..exact._checks import check_policy_theta
from ..models.finite_mdp import FiniteMDP, check_pi
from ..policies.softmax import SoftmaxPolicy, TabularSoftmax
from . import _structured
from ._structured import MAX_STRUCTURED_STATES

__all__ = [
    "AverageEvaluation",
    "MultichainError",
    "MultichainEvaluation",
    "closed_classes",
    "evaluate",
    "multichain_evaluate",
    "natural_gradient",
    "pi_gradient",
    "policy_gradient",
    "as_average_model",
    "MAX_DENSE_STATES",
    "MAX_STRUCTURED_STATES",
]

#: Largest number of states solved with dense LU (the chain is densified).
MAX_DENSE_STATES = 8000


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


def as_average_model(mdp: Any, name: str = "mdp") -> FiniteMDP:
    r"""The model of an average-reward call: a :class:`~pgexact.FiniteMDP`, or a pair ``(P, r)``.

    The average reward needs no discount: ``(P, r)`` or ``(P, r, action_mask)`` (arrays as
    :class:`~pgexact.FiniteMDP` takes them, ``P[s, a, s']`` dense or ``(S·A, S)`` sparse) is
    validated as a model with the uniform start distribution and no γ used anywhere.

    Parameters
    ----------
    mdp : FiniteMDP or tuple
    name : str
        The argument's name in error messages.

    Returns
    -------
    FiniteMDP

    Examples
    --------
    >>> import numpy as np
    >>> m = as_average_model((np.array([[[0.0, 1.0]], [[1.0, 0.0]]]), [[1.0], [3.0]]))
    >>> m.n_states, m.mu0.tolist()
    (2, [0.5, 0.5])
    """
    if isinstance(mdp, FiniteMDP):
        return mdp
    if isinstance(mdp, tuple) and len(mdp) in (2, 3):
        P, r = mdp[0], mdp[1]
        mask = mdp[2] if len(mdp) == 3 else None
        shape = np.shape(r) if not scipy.sparse.issparse(r) else r.shape
        S = int(shape[0]) if len(shape) >= 1 and shape[0] > 0 else 1
        # gamma = 0 is a placeholder the average-reward functions never read
        return FiniteMDP(P, r, np.full(S, 1.0 / S), 0.0, action_mask=mask)
    raise TypeError(
        f"{name} must be a pgexact.FiniteMDP or a pair (P, r) (or (P, r, action_mask)) of arrays: "
        f"the average reward needs no gamma; got {type(mdp).__name__}"
    )


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
    ``pgexact.average._structured``), so ρ and every entry of d are accurate to a few ulps, h to
    a few ulps of :math:`\|h\|_\infty \sim 1/ε`, and Q, A to about
    :math:`10^{-16}\|h\|_\infty` absolute (at most :data:`MAX_STRUCTURED_STATES` states).

    Parameters
    ----------
    mdp : FiniteMDP or (P, r)
        Dense or sparse P (densified: at most :data:`MAX_DENSE_STATES` states); γ is not
        needed (:func:`as_average_model`).
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
    >>> float(evaluate((P, [[1.0], [3.0]]), np.ones((2, 1))).rho)  # no gamma at all
    2.0
    """
    mdp = as_average_model(mdp)
    pi = check_pi(mdp, pi)
    return _evaluate(mdp, pi)


def _evaluate(mdp: FiniteMDP, pi: np.ndarray) -> AverageEvaluation:
    """:func:`evaluate` on a validated model and policy matrix."""
    P_pi = _dense_chain(mdp, pi)
    classes = closed_classes(P_pi)
    if len(classes) > 1:
        raise MultichainError(classes)
    r_pi = mdp._policy_reward(pi)
    solved = _structured._lu_solution(P_pi, r_pi, classes[0])
    if solved is not None:
        d, rho, h = solved
        Q = mdp.r - rho + mdp._expected_next(h)
        return AverageEvaluation(rho=rho, h=h, Q=Q, A=Q - h[:, None], d=d)
    S = mdp.n_states
    if S > MAX_STRUCTURED_STATES:
        raise SingularSystemError(
            f"the unichain systems for d and h are ill-conditioned (condition number over "
            f"{_structured._MAX_LU_CONDITION:g}: the chain is nearly multichain, its classes joined by tiny "
            f"probabilities), and the accurate structured elimination is limited to "
            f"MAX_STRUCTURED_STATES={MAX_STRUCTURED_STATES} states (mdp has {S}); mix the policy or "
            "the transitions more, or use the discounted objective"
        )
    try:
        with np.errstate(over="raise", divide="raise", invalid="raise", under="ignore"):
            d, rho, h, A = _structured._structured_solution(mdp, P_pi, r_pi, classes[0])
            Q = A + h[:, None]
    except FloatingPointError as exc:
        raise SingularSystemError(
            "the bias h of this nearly multichain chain (classes joined by tiny probabilities) "
            "overflows float64: it grows like 1 / (the probability of leaving a class); mix the "
            "policy or the transitions more, or use the discounted objective"
        ) from exc
    return AverageEvaluation(rho=rho, h=h, Q=Q, A=A, d=d)


def policy_gradient(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any) -> np.ndarray:
    r"""The gradient of the gain, :math:`\nabla_\theta\rho = \sum_s d(s)\sum_a \nabla\pi(a|s) Q(s, a)`, shape (n_params,).

    Computed as :math:`\sum_{s,a} d(s)\pi(a|s)\nabla\log\pi(a|s) Q(s, a)` (Sutton et al. 2000,
    Theorem 1, average-reward case); the model's γ and horizon are ignored.

    Parameters
    ----------
    mdp : FiniteMDP or (P, r)
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)

    Returns
    -------
    numpy.ndarray, shape (n_params,)

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
    mdp, policy, theta = check_policy_theta(as_average_model(mdp), policy, theta)
    pi = policy.probs(theta)
    ev = _evaluate(mdp, pi)
    return policy.score_contract(theta, ev.d[:, None] * pi * ev.Q)


def pi_gradient(mdp: Any, pi: Any) -> np.ndarray:
    r"""Exact :math:`\partial\rho/\partial\pi(a|s) = d_\pi(s)\, Q(s, a)`, shape (S, A), for any parametrization.

    .. math:: d\rho = \sum_s d_\pi(s) \sum_a d\pi(a|s)\, Q(s, a) \quad\text{for } \textstyle\sum_a d\pi(a|s) = 0

    (Sutton et al. 2000, Theorem 1, average-reward case, in π-coordinates.) Only the component
    tangent to the simplex is defined (ρ is a function of distributions); this representative,
    with the differential Q, is the one whose contraction with
    :math:`\partial\pi/\partial\theta` of any parametrization (rows of which sum to 0) gives
    :math:`\nabla_\theta\rho`: a vector-Jacobian product through a neural policy (as
    :mod:`pgexact.jax` and :mod:`pgexact.torch` do for J) gives the gradient of the gain.

    Parameters
    ----------
    mdp : FiniteMDP or (P, r)
    pi : array_like, shape (S, A)
        A unichain policy.

    Returns
    -------
    numpy.ndarray, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> pol, theta = TabularSoftmax(4, 3), np.linspace(-1, 1, 12)
    >>> pi = pol.probs(theta)
    >>> G = pi_gradient(mdp, pi)
    >>> dz = pi * (G - (pi * G).sum(axis=1, keepdims=True))  # chain rule through the softmax
    >>> bool(np.allclose(dz.reshape(-1), policy_gradient(mdp, pol, theta), rtol=1e-12, atol=1e-14))
    True
    """
    mdp = as_average_model(mdp)
    pi = check_pi(mdp, pi)
    ev = _evaluate(mdp, pi)
    return ev.d[:, None] * ev.Q


def natural_gradient(mdp: Any, policy: SoftmaxPolicy, theta: Any) -> np.ndarray:
    r"""Minimum-norm natural gradient of the gain, :math:`F^+\nabla_\theta\rho`, shape (n_params,).

    .. math::
        F = \sum_s d_\pi(s) \sum_a \pi(a|s)\, \nabla\log\pi(a|s) \nabla\log\pi(a|s)^\top, \qquad
        w = F^+ \nabla_\theta\rho

    with :math:`d_\pi` the stationary distribution (Kakade 2002, "A natural policy gradient",
    sec. 3, the average-reward setting of that paper). For a tabular softmax the direction is
    the differential advantage, centred per state (the minimum-norm representative of the
    per-state shift invariance): :math:`w(s, a) = A(s, a) - \frac1{|A_s|}\sum_b A(s, b)` on
    states with :math:`d(s) > 0` and 0 elsewhere (Kakade 2002, Theorem 1). Otherwise F is formed
    and solved by least squares (minimum norm).

    Parameters
    ----------
    mdp : FiniteMDP or (P, r)
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)

    Returns
    -------
    numpy.ndarray, shape (n_params,)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> pol, theta = TabularSoftmax(3, 2), np.array([0.3, -0.2, 1.0, 0.0, -0.5, 0.4])
    >>> w = natural_gradient(mdp, pol, theta)
    >>> pi, psi = pol.probs(theta), pol.score(theta)
    >>> d = evaluate(mdp, pi).d
    >>> F = np.einsum("s,sa,sak,sal->kl", d, pi, psi, psi)
    >>> bool(np.allclose(F @ w, policy_gradient(mdp, pol, theta), atol=1e-14))
    True
    """
    mdp, policy, theta = check_policy_theta(as_average_model(mdp), policy, theta)
    pi = policy.probs(theta)
    ev = _evaluate(mdp, pi)
    if isinstance(policy, TabularSoftmax):
        support = pi > 0
        mean = np.where(support, ev.A, 0.0).sum(axis=1, keepdims=True) / support.sum(axis=1, keepdims=True)
        return np.where(support & (ev.d[:, None] > 0), ev.A - mean, 0.0).reshape(-1)
    g = policy.score_contract(theta, ev.d[:, None] * pi * ev.Q)
    score = policy.score(theta)
    F = np.einsum("s,sa,sak,sal->kl", ev.d, pi, score, score)
    return np.linalg.lstsq(F, g, rcond=None)[0]


@dataclass(frozen=True, eq=False)
class MultichainEvaluation:
    r"""Gain and bias of any stationary policy, unichain or not (arrays read-only).

    Attributes
    ----------
    gain : numpy.ndarray, shape (S,)
        :math:`g = P^* r_\pi`, the average reward from each start state.
    h : numpy.ndarray, shape (S,)
        The bias :math:`h = (I - P_\pi + P^*)^{-1}(I - P^*) r_\pi`, normalized by :math:`P^* h = 0`.
    limit : numpy.ndarray, shape (S, S)
        The Cesàro limit :math:`P^* = \lim_N \frac1N\sum_{t<N} P_\pi^t`.
    classes : list of numpy.ndarray
        The closed (recurrent) classes of :math:`P_\pi`.
    class_gains : numpy.ndarray, shape (n_classes,)
        The gain of each class (:math:`d_C^\top r_\pi` with :math:`d_C` its stationary distribution).
    """

    gain: np.ndarray
    h: np.ndarray
    limit: np.ndarray
    classes: list
    class_gains: np.ndarray

    def __post_init__(self) -> None:
        for name in ("gain", "h", "limit", "class_gains"):
            arr = getattr(self, name)
            if isinstance(arr, np.ndarray):
                arr.flags.writeable = False


def multichain_evaluate(mdp: Any, pi: Any) -> MultichainEvaluation:
    r"""Gain of every state and bias of a stationary policy, whatever its class structure.

    .. math::
        P^*[s, :] = \sum_C a_C(s)\, d_C^\top, \qquad g = P^* r_\pi, \qquad
        (I - P_\pi + P^*)\, h = r_\pi - g

    with :math:`d_C` the stationary distribution of closed class C and :math:`a_C(s)` the
    probability of being absorbed in C from s (:math:`(I - P_{TT}) a_C = P_{TC} 1` on the
    transient states T). :math:`I - P_\pi + P^*` is nonsingular and the solution satisfies
    :math:`P^* h = 0`, :math:`g = P_\pi g`, :math:`g + h = r_\pi + P_\pi h` (Puterman 1994,
    Theorem A.7 and sec. 8.2.1; Theorem 9.1.2 for the two-equation system).

    Parameters
    ----------
    mdp : FiniteMDP or (P, r)
        At most :data:`MAX_DENSE_STATES` states.
    pi : array_like, shape (S, A)

    Returns
    -------
    MultichainEvaluation

    Examples
    --------
    >>> import numpy as np
    >>> P = np.array([[[1.0, 0.0, 0.0]], [[0.5, 0.0, 0.5]], [[0.0, 0.0, 1.0]]])  # two absorbing states
    >>> ev = multichain_evaluate((P, [[1.0], [0.0], [3.0]]), np.ones((3, 1)))
    >>> ev.gain.tolist(), ev.class_gains.tolist()
    ([1.0, 2.0, 3.0], [1.0, 3.0])
    """
    mdp = as_average_model(mdp)
    pi = check_pi(mdp, pi)
    return _multichain_evaluate(_dense_chain(mdp, pi), mdp._policy_reward(pi))


def _multichain_evaluate(P_pi: np.ndarray, r_pi: np.ndarray) -> MultichainEvaluation:
    """:func:`multichain_evaluate` of a dense chain and its reward."""
    S = P_pi.shape[0]
    classes = closed_classes(P_pi)
    recurrent = np.zeros(S, dtype=bool)
    limit = np.zeros((S, S))
    dists = []
    try:
        with warnings.catch_warnings(), np.errstate(all="raise"):
            warnings.simplefilter("error", scipy.linalg.LinAlgWarning)
            for C in classes:
                n = len(C)
                dC = scipy.linalg.solve((np.eye(n) - P_pi[np.ix_(C, C)] + 1.0).T, np.ones(n))
                dC = np.clip(dC, 0.0, None)
                dC /= dC.sum()
                dists.append(dC)
                limit[np.ix_(C, C)] = dC[None, :]
                recurrent[C] = True
            T = np.flatnonzero(~recurrent)
            if T.size:
                into = np.stack([P_pi[np.ix_(T, C)].sum(axis=1) for C in classes], axis=1)
                absorb = scipy.linalg.solve(np.eye(T.size) - P_pi[np.ix_(T, T)], into)
                for k, C in enumerate(classes):
                    limit[np.ix_(T, C)] = np.outer(absorb[:, k], dists[k])
            gain = limit @ r_pi
            h = scipy.linalg.solve(np.eye(S) - P_pi + limit, r_pi - gain)
    except (scipy.linalg.LinAlgError, scipy.linalg.LinAlgWarning, FloatingPointError) as exc:
        raise SingularSystemError(
            "the class systems of the limiting matrix P* are singular to working precision: classes are "
            "joined by tiny probabilities; mix the policy or the transitions more, or use the discounted objective"
        ) from exc
    class_gains = np.array([float(dC @ r_pi[C]) for dC, C in zip(dists, classes)])
    return MultichainEvaluation(gain=gain, h=h, limit=limit, classes=classes, class_gains=class_gains)
