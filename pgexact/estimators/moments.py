r"""Exact mean and covariance of the policy-gradient estimators by recursions over time and state.

Every estimator of :mod:`pgexact.estimators` is a per-episode sum
:math:`\hat g = \sum_{t<H} \psi(x_t)\, w_t` with :math:`x_t = (s_t, a_t)`,
:math:`\psi(x) = \nabla_\theta\log\pi_\theta(a|s)` and a scalar weight :math:`w_t`. Collect the
scores in the matrix :math:`\Psi` (rows :math:`\psi(x)`, zero rows at terminal states, where the
samplers mask the steps) and the indicator sum :math:`\hat g_e = \sum_t e_{x_t} w_t \in
\mathbb{R}^{SA}`, so that :math:`\hat g = \Psi^\top \hat g_e` and

.. math::
    E[\hat g \hat g^\top] = \Psi^\top K \Psi, \qquad
    K[x, x'] = E\Big[\sum_{t, u} 1\{x_t = x\}\, 1\{x_u = x'\}\, w_t w_u\Big].

:math:`K` splits into the diagonal :math:`t = u` and the pairs :math:`t < u` (and their
transposes). For a pair :math:`t < u` the Markov property separates what happens before
:math:`t`, between :math:`t` and :math:`u` and after :math:`u`, so
:math:`\sum_{u>t} K_{t,u}\Psi` is a backward recursion on :math:`SA \times k` matrices (the
columns :math:`\Psi D^\top` for k directions D), one product with :math:`P` per step:
:math:`O(H \cdot \mathrm{nnz}(P) \cdot k)` time and :math:`O(SA\,k)` memory, no trajectory
listed. Two weight families cover the estimators:

* causal weights :math:`w_t = d^t\big(f_t(x_t) + \sum_{l \ge t}\beta^{l-t} y_l\big)` with
  :math:`y_l = a_l(x_l) + c_{l+1}(s_{l+1})` — reward-to-go (:math:`y = r`, :math:`\beta = d`),
  constant and state baselines (:math:`f = -b`), exact advantages (:math:`f = A`, :math:`y = 0`)
  and GAE(λ) (:math:`y = \delta_l = r_l + d\,v_{l+1}(s_{l+1}) - v_l(s_l)`, :math:`\beta = d\lambda`);
  the recursions carry :math:`\eta_t(x) = E[\sum_{l\ge t}\beta^{l-t}y_l \mid x_t = x]`, its
  second moment, and the two column blocks
  :math:`U_t = E[\sum_{u\ge t} d^u e_{x_u}^\top(f_u + H_u) \mid x_t]\Psi` and
  :math:`V_t = E[H_t \sum_{u\ge t} \ldots \mid x_t]\Psi`;
* the total return :math:`w_t = R = \sum_l d^l r_l` (REINFORCE), split as the past
  :math:`\sum_{l<t}` (forward moments of order 0..2 per pair) and the future :math:`\sum_{l\ge t}`
  (backward moments and column blocks of order 0..2).

The per-episode covariance is :math:`\Psi^\top K\Psi - \mu\mu^\top`; the mean of N i.i.d. episodes
has covariance ``covariance / N``. The recursion generalizes the moment equations of an additive
functional of a Markov chain (e.g. Sobel 1982, "The variance of discounted Markov decision
processes", J. Appl. Prob. 19) to the vector-valued estimators of Williams (1992) and
Greensmith, Bartlett & Baxter (2004, sec. 3-5).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from .._validation import ReadOnlyOnCopy, freeze_arrays
from .._validation import as_float_array, number_of_steps
from ..errors import NumericalError
from ..exact._checks import check_policy_theta
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy
from . import geometric_moments as gm
from . import nstep_moments as nm

__all__ = ["EstimatorMoments", "estimator_moments", "ESTIMATORS", "MAX_MOMENT_BYTES", "MAX_MOMENT_STEPS"]

#: The estimators whose moments :func:`estimator_moments` computes (names as in pgexact.estimators).
ESTIMATORS = ("reinforce", "reward_to_go", "constant_baseline", "state_baseline", "advantage", "gae", "n_step")

#: Working memory above which :func:`estimator_moments` refuses (bytes): pass ``directions``.
MAX_MOMENT_BYTES = 2 << 30

#: Longest horizon the moment recursions run: they take two Python passes over time, about
#: 0.35 ms per step on a 3-state problem (more for larger ones), so this is about a minute.
MAX_MOMENT_STEPS = 200_000

#: Seconds per time step of the recursions on a small problem (measured; a lower bound).
_SECONDS_PER_STEP = 3.5e-4

#: The extra arguments each estimator uses (any other one given is refused, never ignored).
_USES = {
    "reinforce": (),
    "reward_to_go": (),
    "constant_baseline": ("b",),
    "state_baseline": ("b",),
    "advantage": ("A",),
    "gae": ("V", "lam"),
    "n_step": ("V", "n"),
}


@dataclass(frozen=True, eq=False)
class EstimatorMoments(ReadOnlyOnCopy):
    r"""Exact first and second moments of one episode's estimate :math:`\hat g`.

    Attributes
    ----------
    estimator : str
        The estimator's name (one of :data:`ESTIMATORS`).
    mean : numpy.ndarray, shape (n_params,)
        :math:`E\hat g`.
    covariance : numpy.ndarray of shape (n_params, n_params), or None
        :math:`\mathrm{Cov}(\hat g)` of one episode (None when ``directions`` were given).
    directions : numpy.ndarray of shape (k, n_params), or None
        The directions :math:`D` asked for.
    direction_covariance : numpy.ndarray, shape (k, k)
        :math:`D\,\mathrm{Cov}(\hat g)\,D^\top` (with ``directions=None``: the full covariance).
    second_moment : numpy.ndarray, shape (k, k)
        :math:`D\,E[\hat g\hat g^\top] D^\top` (the uncentred moment).
    horizon : int or None
        The number of steps H; None under geometric stopping.
    """

    estimator: str
    mean: np.ndarray
    covariance: np.ndarray | None
    directions: np.ndarray | None
    direction_covariance: np.ndarray
    second_moment: np.ndarray
    horizon: int | None

    def __post_init__(self) -> None:
        freeze_arrays(self, ("mean", "covariance", "directions", "direction_covariance", "second_moment"))

    @property
    def variance(self) -> np.ndarray:
        r"""Variances :math:`v^\top\mathrm{Cov}(\hat g)v` along each direction (the diagonal), shape (k,)."""
        return np.diagonal(self.direction_covariance).copy()

    @property
    def trace(self) -> float:
        r""":math:`\mathrm{tr}\,\mathrm{Cov}(\hat g) = E\|\hat g - E\hat g\|^2` (full covariance, or the
        sum of the variances along the given directions, which is the trace when they are an
        orthonormal basis)."""
        return float(np.trace(self.direction_covariance))


# ----------------------------------------------------------------------------- operators
class _Transitions:
    """:math:`P` as an (S·A, S) operator: ``P @ X`` for X of shape (S,) or (S, k), and ``P.T @ y``."""

    def __init__(self, mdp: FiniteMDP) -> None:
        S, A = mdp.n_states, mdp.n_actions
        self.P2 = mdp.P if mdp.is_sparse else np.ascontiguousarray(mdp.P).reshape(S * A, S)
        self.P2T = self.P2.T.tocsr() if mdp.is_sparse else np.ascontiguousarray(self.P2.T)

    def __call__(self, X: np.ndarray) -> np.ndarray:
        return np.asarray(self.P2 @ X)

    def back(self, y: np.ndarray) -> np.ndarray:
        """:math:`\\sum_x P(s'|x) y(x)`, shape (S,) or (S, k)."""
        return np.asarray(self.P2T @ y)


def _state_average(pi_flat: np.ndarray, X: np.ndarray, S: int, A: int) -> np.ndarray:
    r""":math:`\bar X(s) = \sum_a \pi(a|s) X[(s, a)]` for X of shape (S·A,) or (S·A, k)."""
    if X.ndim == 1:
        return (pi_flat * X).reshape(S, A).sum(axis=1)
    return (pi_flat[:, None] * X).reshape(S, A, X.shape[1]).sum(axis=1)


def _pair_marginals(P: _Transitions, mu0: np.ndarray, pi: np.ndarray, H: int) -> np.ndarray:
    r""":math:`p_t(s)\pi(a|s) = \Pr(s_t = s, a_t = a)`, shape (H, S·A)."""
    S, A = pi.shape
    p = np.empty((H, S * A))
    p[0] = (mu0[:, None] * pi).reshape(-1)
    for t in range(1, H):
        p[t] = (P.back(p[t - 1])[:, None] * pi).reshape(-1)
    return p


# ----------------------------------------------------------------------------- recursions
def _causal_kernel(
    P: _Transitions,
    pi: np.ndarray,
    C: np.ndarray,
    p: np.ndarray,
    f: np.ndarray,
    a: np.ndarray,
    c: np.ndarray,
    beta: float,
    disc: float,
) -> tuple[np.ndarray, np.ndarray]:
    r"""``(C^T E[g_e g_e^T] C, C^T E[g_e])`` for causal weights (module docstring).

    Shapes: ``pi`` (S, A); ``C`` (SA, k); ``p`` (H, SA) pair marginals; ``f``, ``a`` (H, SA);
    ``c`` (H+1, S) (only rows 1..H are used: :math:`c_{t+1}(s_{t+1})`).
    """
    S, A = pi.shape
    H, k = p.shape[0], C.shape[1]
    pif = pi.reshape(-1)
    Ubar = np.zeros((S, k))
    Vbar = np.zeros((S, k))
    eta_bar = np.zeros(S)
    eta2_bar = np.zeros(S)
    Kup = np.zeros((S * A, k))
    Kd = np.zeros(S * A)
    m = np.zeros(S * A)
    for t in range(H - 1, -1, -1):
        ct = c[t + 1]
        stack = np.concatenate(
            [Ubar, ct[:, None] * Ubar, Vbar,
             (ct + beta * eta_bar)[:, None],
             (ct * ct + 2.0 * beta * ct * eta_bar + beta * beta * eta2_bar)[:, None]],
            axis=1,
        )
        out = P(stack)
        PU, PcU, PV = out[:, :k], out[:, k:2 * k], out[:, 2 * k:3 * k]
        q1, q2 = out[:, 3 * k], out[:, 3 * k + 1]
        at, ft, dt = a[t], f[t], disc**t
        eta = at + q1
        eta2 = at * at + 2.0 * at * q1 + q2
        Z = at[:, None] * PU + PcU + beta * PV
        Kup += (dt * p[t])[:, None] * (ft[:, None] * PU + Z)
        Kd += dt * dt * p[t] * (ft * ft + 2.0 * ft * eta + eta2)
        m += dt * p[t] * (ft + eta)
        U = (dt * (ft + eta))[:, None] * C + PU
        V = (dt * (ft * eta + eta2))[:, None] * C + Z
        Ubar, Vbar = _state_average(pif, U, S, A), _state_average(pif, V, S, A)
        eta_bar, eta2_bar = _state_average(pif, eta, S, A), _state_average(pif, eta2, S, A)
    cross = C.T @ Kup
    return C.T @ (Kd[:, None] * C) + cross + cross.T, C.T @ m


def _total_return_kernel(
    P: _Transitions, pi: np.ndarray, C: np.ndarray, p: np.ndarray, r: np.ndarray, disc: float
) -> tuple[np.ndarray, np.ndarray]:
    r"""``(C^T E[g_e g_e^T] C, C^T E[g_e])`` for :math:`w_t = R = \sum_l d^l r_l` (REINFORCE).

    Forward: :math:`\alpha^k_t(x) = E[(\sum_{l<t} d^l r_l)^k 1\{x_t = x\}]`, k = 0, 1, 2.
    Backward: :math:`\omega^k_t(x) = E[D_t^k \mid x_t = x]` and
    :math:`Q^k_t = E[D_t^k \sum_{u \ge t} e_{x_u}^\top \mid x_t]C` with :math:`D_t = \sum_{l\ge t} d^l r_l`.
    """
    S, A = pi.shape
    H, k = p.shape[0], C.shape[1]
    pif = pi.reshape(-1)
    rf = r.reshape(-1)
    alpha = np.zeros((H, 3, S * A))
    alpha[0, 0] = p[0]
    for t in range(H - 1):
        rho = disc**t * rf
        a0, a1, a2 = alpha[t]
        b = np.stack([a0, a1 + rho * a0, a2 + 2.0 * rho * a1 + rho * rho * a0], axis=1)  # (SA, 3)
        alpha[t + 1] = (P.back(b)[:, None, :] * pi[:, :, None]).reshape(S * A, 3).T
    Q0 = np.zeros((S, k))
    Q1 = np.zeros((S, k))
    Q2 = np.zeros((S, k))
    w1_bar = np.zeros(S)
    w2_bar = np.zeros(S)
    Kup = np.zeros((S * A, k))
    Kd = np.zeros(S * A)
    m = np.zeros(S * A)
    for t in range(H - 1, -1, -1):
        out = P(np.concatenate([Q0, Q1, Q2, w1_bar[:, None], w2_bar[:, None]], axis=1))
        PQ0, PQ1, PQ2 = out[:, :k], out[:, k:2 * k], out[:, 2 * k:3 * k]
        pw1, pw2 = out[:, 3 * k], out[:, 3 * k + 1]
        rho = disc**t * rf
        N0 = PQ0
        N1 = rho[:, None] * PQ0 + PQ1
        N2 = (rho * rho)[:, None] * PQ0 + 2.0 * rho[:, None] * PQ1 + PQ2
        w1 = rho + pw1
        w2 = rho * rho + 2.0 * rho * pw1 + pw2
        a0, a1, a2 = alpha[t]
        Kup += a2[:, None] * N0 + 2.0 * a1[:, None] * N1 + a0[:, None] * N2
        Kd += a2 + 2.0 * a1 * w1 + a0 * w2
        m += a1 + a0 * w1
        Q0 = _state_average(pif, C + N0, S, A)
        Q1 = _state_average(pif, w1[:, None] * C + N1, S, A)
        Q2 = _state_average(pif, w2[:, None] * C + N2, S, A)
        w1_bar, w2_bar = _state_average(pif, w1, S, A), _state_average(pif, w2, S, A)
    cross = C.T @ Kup
    return C.T @ (Kd[:, None] * C) + cross + cross.T, C.T @ m


# ----------------------------------------------------------------------------- argument handling
def _per_time(name: str, value: Any, H: int, tail: tuple[int, ...]) -> np.ndarray:
    """A stationary table of shape ``tail`` or a time-indexed one (H,) + tail, as (H,) + tail."""
    x = as_float_array(name, value)
    if x.shape == tail:
        return np.broadcast_to(x, (H,) + tail).copy()
    if x.shape == (H,) + tail:
        return x.copy()
    raise ValueError(f"{name} must have shape {tail} or (T,) + {tail} = {(H,) + tail}, got {x.shape}")


def _weights(
    mdp: FiniteMDP, estimator: str, H: int, *, b: Any, A: Any, V: Any, lam: Any
) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
    """``(f, a, c, beta)`` of the causal weight family for ``estimator`` (module docstring)."""
    S, nA, g = mdp.n_states, mdp.n_actions, mdp.gamma
    live = ~np.asarray(mdp.terminal)
    r = np.broadcast_to(mdp.r.reshape(-1), (H, S * nA))
    zero_c = np.zeros((H + 1, S))
    zero = np.zeros((H, S * nA))
    if estimator == "reward_to_go":
        return zero, r, zero_c, g
    if estimator == "constant_baseline":
        if b is None or isinstance(b, bool) or not isinstance(b, (int, float, np.floating, np.integer)) or not np.isfinite(b):
            raise ValueError(f"estimator 'constant_baseline' needs b, a finite real number; got b={b!r}")
        return np.full((H, S * nA), -float(b)), r, zero_c, g
    if estimator == "state_baseline":
        if b is None:
            raise ValueError("estimator 'state_baseline' needs b, an array of shape (S,) or (T, S)")
        bt = _per_time("b", b, H, (S,))
        return -np.repeat(bt, nA, axis=1), r, zero_c, g
    if estimator == "advantage":
        if A is None:
            raise ValueError("estimator 'advantage' needs A, an array of shape (S, A) or (T, S, A)")
        return _per_time("A", A, H, (S, nA)).reshape(H, S * nA), zero, zero_c, 0.0
    if estimator == "gae":
        if V is None or lam is None:
            raise ValueError("estimator 'gae' needs V (shape (S,) or (T, S)) and lam (0 <= lam <= 1)")
        if isinstance(lam, bool) or not isinstance(lam, (int, float, np.floating, np.integer)):
            raise TypeError(f"lam must be a real number, got {lam!r}")
        lam = float(lam)
        if not 0.0 <= lam <= 1.0:
            raise ValueError(f"lam is {lam}, expected 0 <= lam <= 1")
        v = as_float_array("V", V)
        vt = np.zeros((H + 1, S))
        if v.shape == (S,):
            vt[:H] = v
            if mdp.horizon is None:  # truncated objective: the return goes on, V(s_T) is bootstrapped
                vt[H] = v
        elif v.shape == (H, S):  # time-indexed V: nothing is left after the last step
            vt[:H] = v
        else:
            raise ValueError(f"V must have shape (S,)=({S},) or (T, S)=({H}, {S}), got {v.shape}")
        vt *= live[None, :]  # nothing is bootstrapped from a terminal state
        a = r - np.repeat(vt[:H], nA, axis=1)
        return zero, a, g * vt, g * lam
    raise AssertionError(estimator)


def estimator_moments(
    mdp: FiniteMDP,
    policy: SoftmaxPolicy,
    theta: Any,
    estimator: str,
    *,
    b: Any = None,
    A: Any = None,
    V: Any = None,
    lam: Any = None,
    n: Any = None,
    horizon: int | None = None,
    directions: Any = None,
) -> EstimatorMoments:
    r"""Exact mean and covariance of one episode's policy-gradient estimate, without enumeration.

    .. math::
        \hat g = \sum_{t<H} \nabla_\theta\log\pi_\theta(a_t|s_t)\, w_t, \qquad
        \mathrm{Cov}(\hat g) = \Psi^\top K \Psi - E\hat g\,E\hat g^\top

    with :math:`K[x, x'] = E\sum_{t,u} 1\{x_t = x, x_u = x'\} w_t w_u` computed by backward
    recursions over time and state (module docstring). Weights, as in :mod:`pgexact.estimators`
    with :math:`d = \gamma`:

    ========================= ==============================================================
    ``"reinforce"``           :math:`w_t = \sum_{l<H} d^l r_l` (Williams 1992)
    ``"reward_to_go"``        :math:`w_t = d^t G_t`, :math:`G_t = \sum_{l \ge t} d^{l-t} r_l`
    ``"constant_baseline"``   :math:`w_t = d^t (G_t - b)`, ``b`` a float
    ``"state_baseline"``      :math:`w_t = d^t (G_t - b_t(s_t))`, ``b`` of shape (S,) or (T, S)
    ``"advantage"``           :math:`w_t = d^t A_t(s_t, a_t)`, ``A`` of shape (S, A) or (T, S, A)
    ``"gae"``                 :math:`w_t = d^t \hat A^{GAE(d, \lambda)}_t`, ``V`` (S,) or (T, S), ``lam``
    ``"n_step"``              :math:`w_t = d^t (G^{(n)}_t - V(s_t))`, ``V`` (S,) or (T, S), ``n``
    ========================= ==============================================================

    ``"normalized_advantage"`` is refused: its batch mean and standard deviation make the N
    episodes' terms dependent, so it has no per-episode moments (its bias and variance depend on
    N). ``n_step``'s weight :math:`G^{(n)}_t = \sum_{k<n'} d^k r_{t+k} + d^{n'} V(s_{t+n'})`,
    :math:`n' = \min(n, L - t)`, is a window of n steps, outside both families: its moments
    come from a recursion over the window's length (:mod:`pgexact.estimators.nstep_moments`,
    cost about n times that of GAE's).

    Steps in terminal states are padding (score 0); GAE and n-step bootstrap nothing from a
    terminal state nor after the last step of a finite horizon or a geometric stop, and
    :math:`V(s_T)` at the end of a truncated discounted episode (stationary V) — exactly as
    :func:`pgexact.estimators.gae_gradient` and :func:`pgexact.estimators.n_step` on
    :func:`pgexact.rollout` samples.

    Parameters
    ----------
    mdp : FiniteMDP
        Finite horizon H = ``mdp.horizon``; or discounted with ``horizon=T`` (the truncated
        objective, as ``rollout(..., horizon=T)``); or discounted without ``horizon``: the
        moments under geometric stopping, as ``rollout(..., geometric=True)`` samples (weights
        with :math:`d = 1`, the episode stopped after each step with probability
        :math:`1-\gamma`; stationary ``b``, ``A``, ``V`` only; computed by linear solves,
        :mod:`pgexact.estimators.geometric_moments`). Dense or sparse P.
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)
    estimator : str
        One of :data:`ESTIMATORS`.
    b, A, V, lam, n
        The estimator's extra argument(s), as in the sampled estimator of the same name.
    horizon : int, optional
        Discounted mdp only: the number of steps T.
    directions : array_like of shape (k, n_params) or (n_params,), optional
        Only :math:`D\,\mathrm{Cov}\,D^\top` (the variance along each row of D and their
        covariances) is computed: cost and memory scale with k instead of n_params.

    Returns
    -------
    EstimatorMoments
        ``mean`` (n_params,), ``covariance`` (n_params, n_params) or None,
        ``direction_covariance`` (k, k), ``variance``, ``trace``.

    Notes
    -----
    Cost :math:`O(H\,\mathrm{nnz}(P)\,k)` with :math:`k` = n_params (or the number of
    directions), plus :math:`O(S A k^2)` for the final products; memory :math:`O(S A k)`.
    A request whose working arrays would exceed :data:`MAX_MOMENT_BYTES` is refused with the
    amount it needs, and one with a horizon over :data:`MAX_MOMENT_STEPS` with the time it would
    take. An extra argument the estimator does not use (``b`` with ``"reinforce"``) is refused. The covariance is formed as a difference of second moment and squared
    mean: its absolute rounding error is about :math:`10^{-16}\,\|E\hat g\hat g^\top\|`.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, policy_gradient
    >>> from pgexact.estimators import enumerate_trajectories, exact_covariance, reward_to_go
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, horizon=4, seed=0)
    >>> pol, theta = TabularSoftmax(3, 2), np.linspace(-1, 1, 6)
    >>> mom = estimator_moments(mdp, pol, theta, "reward_to_go")
    >>> bool(np.allclose(mom.mean, policy_gradient(mdp, pol, theta), atol=1e-12))  # unbiased
    True
    >>> tr, p = enumerate_trajectories(mdp, pol.probs(theta))  # the same, by listing trajectories
    >>> bool(np.allclose(mom.covariance, exact_covariance(reward_to_go(tr, pol, theta).samples, p), atol=1e-12))
    True
    >>> from pgexact import evaluate
    >>> from pgexact.estimators import n_step
    >>> V = evaluate(mdp, pol.probs(theta)).V + 0.5  # any critic; the window bootstraps V(s_{t+2})
    >>> ns = estimator_moments(mdp, pol, theta, "n_step", V=V, n=2)
    >>> bool(np.allclose(ns.covariance, exact_covariance(n_step(tr, pol, theta, V, 2).samples, p), atol=1e-12))
    True
    >>> disc = mdp.with_horizon(None)  # geometric stopping: E over L ~ Geometric(1 - gamma)
    >>> geo = estimator_moments(disc, pol, theta, "reward_to_go")
    >>> geo.horizon is None, bool(np.allclose(geo.mean, policy_gradient(disc, pol, theta), atol=1e-12))
    (True, True)
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    if not isinstance(estimator, str):
        raise TypeError(f"estimator must be one of {', '.join(map(repr, ESTIMATORS))}, got {estimator!r}")
    if estimator == "normalized_advantage":
        raise ValueError(
            "estimator 'normalized_advantage' has no per-episode moments: its advantages are centred and scaled by "
            "the mean and standard deviation of the whole batch, so the N episodes' terms are dependent and the "
            "mean of N episodes is not an average of i.i.d. terms (its bias and variance depend on N and are "
            "ratios of random sums, with no finite recursion); estimate it by Monte Carlo over batches"
        )
    if estimator not in ESTIMATORS:
        raise ValueError(f"estimator is {estimator!r}, expected one of {', '.join(map(repr, ESTIMATORS))}")
    extra = {"b": b, "A": A, "V": V, "lam": lam, "n": n}
    unused = [name for name, value in extra.items() if value is not None and name not in _USES[estimator]]
    if unused:
        uses = ", ".join(_USES[estimator]) or "none of b, A, V, lam, n"
        raise TypeError(
            f"estimator {estimator!r} does not use {', '.join(unused)} (it uses {uses}); "
            "pass only the arguments of the estimator you name"
        )
    geometric = mdp.horizon is None and horizon is None
    H = 0 if geometric else number_of_steps(mdp.horizon, horizon, "pass horizon=T (the truncated objective)")
    S, nA, n_params = mdp.n_states, mdp.n_actions, policy.n_params
    if directions is None:
        D = None
        k = n_params
    else:
        D = as_float_array("directions", directions)
        if D.ndim == 1:
            D = D[None, :]
        if D.ndim != 2 or D.shape[1] != n_params or D.shape[0] == 0:
            raise ValueError(f"directions must have shape (k, n_params) with n_params={n_params}, got {D.shape}")
        k = D.shape[0]
    need = 12 * S * nA * k * 8 + (3 * H * S * nA * 8 if estimator == "reinforce" else 4 * H * S * nA * 8)
    window = 1
    if estimator == "n_step":
        live = ~np.asarray(mdp.terminal)
        f, c, window = nm.nstep_tables(S, nA, None if geometric else H, live, V, n, mdp.horizon is None)
        need = max(need, nm.working_bytes(S * nA, S, k, window, None if geometric else H))
    if geometric and S <= gm.MAX_DENSE_STATES:
        need += 3 * 8 * S * S  # the LU factors of I - kappa gamma P_pi
    if need > MAX_MOMENT_BYTES:
        steps = "geometric stopping" if geometric else f"horizon H={H}"
        if estimator == "n_step":
            steps += f" and a window of n={window} steps"
        raise ValueError(
            f"estimator_moments would need about {need / 2**30:.1f} GiB for S*A={S * nA}, k={k} columns "
            f"and {steps} (limit {MAX_MOMENT_BYTES / 2**30:.0f} GiB): pass directions=(k, n_params) with a "
            "few directions, or a smaller problem"
        )
    # n-step: a finite horizon runs H steps over the window's n lengths; geometric stopping runs the
    # n (n + 1) / 2 pairs of window lengths of the second moments of the n-step return
    pairs = H * window if not geometric else window * (window + 1) // 2
    if estimator == "n_step" and pairs > MAX_MOMENT_STEPS:
        what = "pairs of window lengths" if geometric else "(time step, window length) pairs"
        raise ValueError(
            f"estimator_moments of 'n_step' with n={window} and {'geometric stopping' if geometric else f'horizon H={H}'} "
            f"would run its recursions over {pairs} {what}, about {pairs * _SECONDS_PER_STEP:.3g} s or more, beyond "
            f"MAX_MOMENT_STEPS={MAX_MOMENT_STEPS}: use a smaller n (or horizon)"
        )
    if H > MAX_MOMENT_STEPS:
        raise ValueError(
            f"estimator_moments with horizon H={H} would run its recursions over {H} time steps, "
            f"about {H * _SECONDS_PER_STEP:.3g} s or more, beyond MAX_MOMENT_STEPS={MAX_MOMENT_STEPS}: use a "
            "shorter horizon (a discounted episode of T = 40/(1 - gamma) steps leaves out gamma^T < 1e-17 of J)"
        )
    pi = policy.probs(theta)
    live = ~np.asarray(mdp.terminal)
    if estimator == "n_step":
        return _n_step(mdp, policy, theta, pi, D, H, geometric, f, c, window, live)
    if geometric:
        return _geometric(mdp, policy, theta, pi, estimator, D, b=b, A=A, V=V, lam=lam)
    if D is None:
        jac = policy._logit_jacobian()  # the score from pi, as SoftmaxPolicy.score computes it
        C = (jac - np.einsum("sb,sbk->sk", pi, jac)[:, None, :]).reshape(S * nA, n_params)
    else:
        C = np.stack([policy.score_dot(theta, v).reshape(-1) for v in D], axis=1)
    C = C * np.repeat(live, nA)[:, None]  # steps in terminal states are padding
    P = _Transitions(mdp)
    p = _pair_marginals(P, mdp.mu0, pi, H)
    f, a, c, beta = (None, None, None, 0.0) if estimator == "reinforce" else _weights(
        mdp, estimator, H, b=b, A=A, V=V, lam=lam)
    try:
        with np.errstate(over="raise", invalid="raise"):
            if estimator == "reinforce":
                second, mean_c = _total_return_kernel(P, pi, C, p, mdp.r, mdp.gamma)
            else:
                second, mean_c = _causal_kernel(P, pi, C, p, f, a, c, beta, mdp.gamma)
    except FloatingPointError as exc:
        raise NumericalError(
            f"the second moments of {estimator!r} overflow float64 (H={H}, max|r|={float(np.max(np.abs(mdp.r))):.3g}): "
            "rescale the rewards (and b, A, V) or shorten the horizon"
        ) from exc
    second = 0.5 * (second + second.T)
    cov = second - np.outer(mean_c, mean_c)
    if D is None:
        return EstimatorMoments(estimator, mean_c, cov, None, cov, second, H)
    mean = _mean_full(mdp, policy, theta, pi, p, estimator, H, b=b, A=A, V=V, lam=lam, live=live)
    return EstimatorMoments(estimator, mean, None, D, cov, second, H)


def _mean_full(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray, pi: np.ndarray, p: np.ndarray,
    estimator: str, H: int, *, b: Any, A: Any, V: Any, lam: Any, live: np.ndarray,
) -> np.ndarray:
    r"""The mean :math:`\Psi^\top E[\hat g_e]` with the score contracted, without the dense score."""
    S, nA = mdp.n_states, mdp.n_actions
    P = _Transitions(mdp)
    if estimator == "reinforce":
        m = _total_return_mean(P, pi, p, mdp.r, mdp.gamma)
    else:
        f, a, c, beta = _weights(mdp, estimator, H, b=b, A=A, V=V, lam=lam)
        m = _causal_mean(P, pi, p, f, a, c, beta, mdp.gamma)
    w = (m * np.repeat(live, nA)).reshape(S, nA)
    return policy.score_contract(theta, w)


def _causal_mean(P: _Transitions, pi: np.ndarray, p: np.ndarray, f: np.ndarray, a: np.ndarray,
                 c: np.ndarray, beta: float, disc: float) -> np.ndarray:
    """:math:`E[\\hat g_e]` of the causal family, shape (SA,)."""
    S, A = pi.shape
    pif = pi.reshape(-1)
    eta_bar = np.zeros(S)
    m = np.zeros(S * A)
    for t in range(p.shape[0] - 1, -1, -1):
        eta = a[t] + P(c[t + 1] + beta * eta_bar)
        m += disc**t * p[t] * (f[t] + eta)
        eta_bar = _state_average(pif, eta, S, A)
    return m


def _total_return_mean(P: _Transitions, pi: np.ndarray, p: np.ndarray, r: np.ndarray, disc: float) -> np.ndarray:
    """:math:`E[\\hat g_e] = \\sum_t E[1\\{x_t\\} R]` for REINFORCE, shape (SA,)."""
    S, A = pi.shape
    pif, rf = pi.reshape(-1), r.reshape(-1)
    H = p.shape[0]
    # E[1{x_t} R] = E[1{x_t} sum_{l<t} rho_l] + p_t(x) E[D_t | x]
    alpha1 = np.zeros(S * A)
    m = np.zeros(S * A)
    w_bar = np.zeros(S)
    omega = np.zeros((H, S * A))
    for t in range(H - 1, -1, -1):
        omega[t] = disc**t * rf + P(w_bar)
        w_bar = _state_average(pif, omega[t], S, A)
    for t in range(H):
        m += alpha1 + p[t] * omega[t]
        rho = disc**t * rf
        alpha1 = (P.back(alpha1 + rho * p[t])[:, None] * pi).reshape(-1)
    return m



def _n_step(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray, pi: np.ndarray, D: np.ndarray | None, H: int,
    geometric: bool, f: np.ndarray, c: np.ndarray, n: int, live: np.ndarray,
) -> EstimatorMoments:
    """:func:`estimator_moments` of ``"n_step"`` (:mod:`pgexact.estimators.nstep_moments`)."""
    S, nA = mdp.n_states, mdp.n_actions
    livex = np.repeat(live, nA)
    if D is None:
        jac = policy._logit_jacobian()  # the score from pi, as SoftmaxPolicy.score computes it
        C = (jac - np.einsum("sb,sbk->sk", pi, jac)[:, None, :]).reshape(S * nA, policy.n_params)
    else:
        C = np.stack([policy.score_dot(theta, v).reshape(-1) for v in D], axis=1)
    C = C * livex[:, None]  # steps in terminal states are padding
    r = mdp.r.reshape(-1).astype(np.float64)
    try:
        with np.errstate(over="raise", invalid="raise"):
            if geometric:
                K = gm._Killed(mdp, pi)
                second, m = nm.geometric_kernel(K, C, K.occupancy(mdp.mu0), f, r, c, n)
            else:
                P = _Transitions(mdp)
                p = _pair_marginals(P, mdp.mu0, pi, H)
                second, m = nm.finite_kernel(P, pi, C, p, f, r, c, n, mdp.gamma)
    except FloatingPointError as exc:
        where = f"gamma={mdp.gamma}" if geometric else f"H={H}"
        raise NumericalError(
            f"the second moments of 'n_step' overflow float64 ({where}, n={n}, "
            f"max|r|={float(np.max(np.abs(mdp.r))):.3g}): rescale the rewards and V"
        ) from exc
    second = 0.5 * (second + second.T)
    m = m * livex
    mean_c = C.T @ m
    cov = second - np.outer(mean_c, mean_c)
    horizon = None if geometric else H
    if D is None:
        return EstimatorMoments("n_step", mean_c, cov, None, cov, second, horizon)
    mean = policy.score_contract(theta, m.reshape(S, nA))
    return EstimatorMoments("n_step", mean, None, D, cov, second, horizon)


def _geometric(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray, pi: np.ndarray, estimator: str,
    D: np.ndarray | None, *, b: Any, A: Any, V: Any, lam: Any,
) -> EstimatorMoments:
    """:func:`estimator_moments` under geometric stopping (:mod:`pgexact.estimators.geometric_moments`)."""
    mean, cov, second = gm.geometric_moments(mdp, policy, theta, pi, estimator, D, b=b, A=A, V=V, lam=lam)
    return EstimatorMoments(estimator, mean, cov if D is None else None, D, cov, second, None)
