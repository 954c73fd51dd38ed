r"""Exact policy gradients of softmax policies on finite MDPs, in every textbook form.

The policy gradient theorem (Sutton et al. 2000, Theorem 1; Sutton & Barto 2018, sec. 13.2):

.. math::

    \nabla J(\theta) = \sum_s \rho_\pi(s) \sum_a \pi_\theta(a|s)\, \nabla_\theta \log\pi_\theta(a|s)\, Q^\pi(s, a)
    = \frac{1}{1-\gamma} E_{s \sim d_\pi, a \sim \pi}[\nabla \log \pi(a|s)\, Q^\pi(s, a)]

with :math:`\rho_\pi = \mu_0^\top (I - \gamma P_\pi)^{-1}` (discounted) and, for a finite horizon,
:math:`\nabla J = \sum_{t<H} \gamma^t E_{s \sim p_t, a \sim \pi}[\nabla \log\pi(a|s) Q_t(s, a)]`.
Replacing Q by A changes nothing because :math:`\sum_a \pi(a|s) \nabla\log\pi(a|s) = 0`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy
from .._validation import check_positive_int
from ._checks import check_policy_theta
from ._krylov import check_tol
from .evaluation import Evaluation, _evaluate

__all__ = [
    "policy_gradient",
    "value_and_gradient",
    "PolicyGradientForms",
    "policy_gradient_forms",
    "TrajectoryEnumeration",
    "reinforce_by_enumeration",
]


def gradient_weights(mdp: FiniteMDP, pi: np.ndarray, ev: Evaluation, use: str = "A") -> np.ndarray:
    r"""Weights :math:`w(s, a)` with :math:`\nabla J = \sum_{s,a} w(s, a) \nabla\log\pi(a|s)`, shape (S, A).

    Discounted: :math:`w = \rho(s) \pi(a|s) X(s, a)`; finite: :math:`\sum_t \gamma^t p_t(s) \pi(a|s) X_t(s, a)`,
    with X the advantage (``use="A"``) or the action value (``use="Q"``).
    """
    X = ev.A if use == "A" else ev.Q
    if mdp.horizon is None:
        rho = ev.d / (1.0 - mdp.gamma)  # type: ignore[operator]
        return rho[:, None] * (pi * X)
    disc = mdp.gamma ** np.arange(mdp.horizon)
    return pi * np.einsum("t,ts,tsa->sa", disc, ev.p, X)


def policy_gradient(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, *, tol: float | None = None
) -> np.ndarray:
    r"""Exact policy gradient :math:`\nabla_\theta J(\theta)`, shape (n_params,).

    .. math::

        \nabla J = \sum_{s,a} \rho_\pi(s)\, \pi_\theta(a|s)\, A^\pi(s, a)\, \nabla_\theta \log\pi_\theta(a|s)

    (Sutton et al. 2000, Theorem 1, advantage form; finite horizon: sum over t of
    :math:`\gamma^t p_t`). Discounted cost: one LU factorization of :math:`I - \gamma P_\pi`
    (solved for V and, transposed, for the occupancy) plus O(S^2 A) work.

    Parameters
    ----------
    mdp : FiniteMDP
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)
    tol : float, optional
        Sparse ``P`` only: relative residual of the Krylov solves (see :func:`evaluate`).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, policy_gradient, evaluate
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> pol = TabularSoftmax(4, 3)
    >>> theta = np.linspace(-1, 1, 12)
    >>> e = np.zeros(12); e[5] = 1e-6
    >>> fd = (evaluate(mdp, pol.probs(theta + e)).J - evaluate(mdp, pol.probs(theta - e)).J) / 2e-6
    >>> bool(abs(policy_gradient(mdp, pol, theta)[5] - fd) < 1e-8)
    True
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    pi = policy._probs(theta)
    ev = _evaluate(mdp, pi, check_tol(tol))
    return policy._score_contract(pi, gradient_weights(mdp, pi, ev))


def value_and_gradient(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, *, tol: float | None = None
) -> tuple[float, np.ndarray]:
    r"""``(J(theta), grad J(theta))`` from a single exact evaluation (one LU factorization).

    Same formulas as :func:`policy_gradient`; J is :math:`\mu_0^\top V` of the same solve.
    ``tol``: sparse ``P`` only, relative residual of the Krylov solves (see :func:`evaluate`).

    Returns
    -------
    J : float
    gradient : numpy.ndarray, shape (n_params,)
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    pi = policy._probs(theta)
    ev = _evaluate(mdp, pi, check_tol(tol))
    return ev.J, policy._score_contract(pi, gradient_weights(mdp, pi, ev))


@dataclass(frozen=True, eq=False)
class PolicyGradientForms:
    r"""The policy gradient computed in independent textbook forms (each shape (n_params,)).

    Attributes
    ----------
    bellman_derivative :
        The derivative of J obtained by differentiating the Bellman system itself (forward mode):
        :math:`(I - \gamma P_\pi)\, \partial_k V = \partial_k r_\pi + \gamma\, \partial_k P_\pi V`,
        :math:`\partial_k J = \mu_0^\top \partial_k V` (finite horizon: the backward recursion
        differentiated). It does not use the policy gradient theorem.
    q_form :
        :math:`\sum_s \rho(s) \sum_a \pi \nabla\log\pi\, Q` (Sutton et al. 2000, Theorem 1).
    advantage_form :
        The same with A in place of Q (baseline V subtracted).
    occupancy_form :
        :math:`\frac{1}{1-\gamma} E_{s\sim d_\pi, a\sim\pi}[\nabla\log\pi\, Q]` with the dense score
        (finite horizon: :math:`\sum_t \gamma^t E_{s\sim p_t, a\sim\pi}[\nabla\log\pi\, Q_t]`).
    reward_to_go_form :
        :math:`E[\sum_t \gamma^t \nabla\log\pi(a_t|s_t) Q(s_t, a_t)]` summed over time with the state
        marginals :math:`p_t` propagated forward (discounted: truncated where the tail is below
        1e-16 relative; see :attr:`truncation`).
    truncation : int
        Number of time steps summed in ``reward_to_go_form``.
    """

    bellman_derivative: np.ndarray
    q_form: np.ndarray
    advantage_form: np.ndarray
    occupancy_form: np.ndarray
    reward_to_go_form: np.ndarray
    truncation: int


#: Most time steps :func:`policy_gradient_forms` propagates for the reward-to-go form (discounted).
MAX_FORM_STEPS = 100_000


def _tail_steps(gamma: float, rel: float = 1e-16) -> int:
    """Smallest T with gamma^T <= rel * (1 - gamma): the dropped tail sum_{t>=T} gamma^t is <= rel."""
    if gamma == 0.0:
        return 1
    return int(np.ceil(np.log(rel * (1.0 - gamma)) / np.log(gamma)))


def policy_gradient_forms(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any) -> PolicyGradientForms:
    r"""Compute the policy gradient in five independent forms (see :class:`PolicyGradientForms`).

    Meant for verification on small problems: it builds the dense score (S, A, n_params) and,
    for discounted problems, propagates state marginals for
    :math:`T = \lceil \log(10^{-16}(1-\gamma)) / \log\gamma \rceil` steps.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LinearSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 2, gamma=0.8, seed=5)
    >>> pol = LinearSoftmax(np.random.default_rng(0).normal(size=(4, 2, 3)))
    >>> f = policy_gradient_forms(mdp, pol, np.array([0.3, -0.2, 0.1]))
    >>> bool(np.allclose(f.bellman_derivative, f.occupancy_form, rtol=1e-10, atol=1e-12))
    True
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    if mdp.horizon is None and _tail_steps(mdp.gamma) > MAX_FORM_STEPS:
        raise ValueError(
            f"policy_gradient_forms at gamma={mdp.gamma} would propagate the state marginals for "
            f"{_tail_steps(mdp.gamma)} steps (more than {MAX_FORM_STEPS}); the reward-to-go form "
            "is a check for gamma <= 0.999: use policy_gradient, or a smaller gamma"
        )
    pi = policy._probs(theta)
    ev = _evaluate(mdp, pi)
    score = policy.score(theta)  # (S, A, n)
    dpi = pi[:, :, None] * score  # d pi(a|s) / d theta_k
    S = mdp.n_states
    if mdp.horizon is None:
        g = mdp.gamma
        P_pi = mdp._policy_transition(pi)
        # forward-mode: d r_pi + gamma d P_pi V = sum_a dpi (r + gamma P V) = sum_a dpi Q
        rhs = np.einsum("sak,sa->sk", dpi, mdp.r + g * mdp._expected_next(ev.V))
        dV = np.linalg.solve(np.eye(S) - g * P_pi, rhs)
        bellman = mdp.mu0 @ dV
        occ = np.einsum("s,sa,sak,sa->k", ev.d, pi, score, ev.Q) / (1.0 - g)
        T = _tail_steps(g)
        p = mdp.mu0.copy()
        rtg = np.zeros(policy.n_params)
        per_state = np.einsum("sa,sak,sa->sk", pi, score, ev.Q)
        disc = 1.0
        for _ in range(T):
            rtg += disc * (p @ per_state)
            p = p @ P_pi
            disc *= g
    else:
        H, g = mdp.horizon, mdp.gamma
        p_t = ev.p
        dV_next = np.zeros((S, policy.n_params))
        for t in range(H - 1, -1, -1):
            cont = g * np.einsum("sa,sak->sk", pi, mdp._expected_next(dV_next)) if t < H - 1 else 0.0
            dV_next = np.einsum("sak,sa->sk", dpi, ev.Q[t]) + cont
        bellman = mdp.mu0 @ dV_next
        disc = g ** np.arange(H)
        occ = np.einsum("t,ts,sa,sak,tsa->k", disc, p_t, pi, score, ev.Q)
        rtg = sum(disc[t] * (p_t[t] @ np.einsum("sa,sak,sa->sk", pi, score, ev.Q[t])) for t in range(H))
        T = H
    return PolicyGradientForms(
        bellman_derivative=np.asarray(bellman),
        q_form=policy._score_contract(pi, gradient_weights(mdp, pi, ev, use="Q")),
        advantage_form=policy._score_contract(pi, gradient_weights(mdp, pi, ev, use="A")),
        occupancy_form=occ,
        reward_to_go_form=np.asarray(rtg),
        truncation=int(T),
    )


@dataclass(frozen=True, eq=False)
class TrajectoryEnumeration:
    r"""Exact trajectory-level expectations by enumerating every trajectory of a finite horizon.

    Attributes
    ----------
    J : float
        :math:`\sum_\tau p_\theta(\tau) R(\tau)`, :math:`R(\tau) = \sum_{t<H} \gamma^t r(s_t, a_t)`.
    reinforce : numpy.ndarray, shape (n_params,)
        REINFORCE with the total return: :math:`E[R(\tau) \sum_{t<H} \nabla\log\pi(a_t|s_t)]`
        (Williams 1992; the trajectory form of the policy gradient).
    reward_to_go : numpy.ndarray, shape (n_params,)
        :math:`E[\sum_t \nabla\log\pi(a_t|s_t) \sum_{t' \ge t} \gamma^{t'} r_{t'}]`.
    n_trajectories : int
        Number of trajectories with positive probability.
    """

    J: float
    reinforce: np.ndarray
    reward_to_go: np.ndarray
    n_trajectories: int


def reinforce_by_enumeration(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, *, max_trajectories: int = 1 << 20
) -> TrajectoryEnumeration:
    r"""Enumerate all trajectories of a finite-horizon MDP and take exact expectations.

    An independent check of J and of the policy gradient theorem: nothing here uses V, Q or a
    linear solve. Cost grows as :math:`(S A)^H`; branches of probability zero are dropped.

    Parameters
    ----------
    mdp : FiniteMDP
        Must have a finite ``horizon``.
    policy, theta :
        Softmax parametrization and its parameters, shape (n_params,).
    max_trajectories : int
        Raise ``ValueError`` rather than enumerate more partial trajectories than this.
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    max_trajectories = check_positive_int("max_trajectories", max_trajectories)
    if mdp.horizon is None:
        raise ValueError("mdp.horizon is None: trajectory enumeration needs a finite horizon")
    pi = policy._probs(theta)
    score = policy.score(theta)
    S, A, n = mdp.n_states, mdp.n_actions, policy.n_params
    H, g = mdp.horizon, mdp.gamma
    state = np.flatnonzero(mdp.mu0 > 0)
    prob = mdp.mu0[state]
    ret = np.zeros(len(state))
    score_sum = np.zeros((len(state), n))
    # rtg accumulates sum_t score_t * (sum_{t'>=t} gamma^t' r_t') = sum_t' gamma^t' r_t' * (sum_{t<=t'} score_t)
    rtg = np.zeros((len(state), n))
    for t in range(H):
        m = len(state)
        if m * A > max_trajectories:
            raise ValueError(
                f"trajectory enumeration needs more than max_trajectories={max_trajectories} "
                f"branches at t={t}; use a smaller problem or a larger limit"
            )
        st = np.repeat(state, A)
        at = np.tile(np.arange(A), m)
        keep = pi[st, at] > 0
        idx = np.repeat(np.arange(m), A)[keep]
        st, at = st[keep], at[keep]
        prob = prob[idx] * pi[st, at]
        reward = g**t * mdp.r[st, at]
        ret = ret[idx] + reward
        score_sum = score_sum[idx] + score[st, at]
        rtg = rtg[idx] + reward[:, None] * score_sum
        if t == H - 1:
            break
        m = len(st)
        if m * S > max_trajectories:
            raise ValueError(
                f"trajectory enumeration needs more than max_trajectories={max_trajectories} "
                f"branches at t={t}; use a smaller problem or a larger limit"
            )
        nxt = np.tile(np.arange(S), m)
        idx = np.repeat(np.arange(m), S)
        if mdp.is_sparse:  # P of shape (S*A, S)
            pt = np.asarray(mdp.P[st[idx] * A + at[idx], nxt]).reshape(-1)
        else:
            pt = mdp.P[st[idx], at[idx], nxt]
        keep = pt > 0
        idx, nxt = idx[keep], nxt[keep]
        prob = prob[idx] * pt[keep]
        ret, score_sum, rtg, state = ret[idx], score_sum[idx], rtg[idx], nxt
    return TrajectoryEnumeration(
        J=float(prob @ ret),
        reinforce=(prob * ret) @ score_sum,
        reward_to_go=prob @ rtg,
        n_trajectories=int(len(prob)),
    )
