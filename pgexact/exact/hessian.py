r"""Exact Hessians of J for the softmax parametrizations, and Hessian-vector products.

Chain rule through :math:`\theta\mapsto\pi_\theta` (the policy Hessian: Furmston, Lever & Barber
2016, "Approximate Newton methods for policy search in Markov decision processes", JMLR 17(226);
Shen et al. 2019, "Hessian aided policy gradient", ICML, PMLR 97):

.. math::

    \nabla^2_\theta J = J_\theta^\top\, \nabla^2_\pi J\, J_\theta
      + \sum_{s,a} G(s, a)\, \nabla^2_\theta \pi_\theta(a|s),
    \qquad J_\theta = \frac{\partial\pi}{\partial\theta},\quad G = \frac{\partial J}{\partial\pi},

with :math:`\nabla^2_\pi J` from :mod:`pgexact.exact.second_order`. For a softmax with logits
linear in θ (score :math:`\psi(s, a) = \nabla\log\pi(a|s)`):
:math:`\nabla\pi(a|s) = \pi(a|s)\psi(s, a)` and
:math:`\nabla^2\pi(a|s) = \pi(a|s)\,[\psi\psi^\top(s, a) - F_s]` with
:math:`F_s = \sum_b \pi(b|s)\psi(s, b)\psi(s, b)^\top`, so the second term is

.. math::

    \sum_{s,a} \pi(a|s)\,\big(G(s, a) - \bar G(s)\big)\,\psi(s, a)\psi(s, a)^\top,
    \qquad \bar G(s) = \sum_b \pi(b|s) G(s, b).

Discounted, the first term has rank at most 2S:
:math:`\nabla^2_\pi J = \gamma (K + K^\top)`, :math:`K(sa, s'a') = \rho(s)\,(P M^{-1})(sa, s')\,Q(s', a')`
(:math:`M = I - \gamma P_\pi`, :math:`\rho = d_\pi/(1-\gamma)`), hence

.. math::

    J_\theta^\top \nabla^2_\pi J\, J_\theta = \gamma\,(L R + R^\top L^\top),\qquad
    L = Y M^{-1},\quad Y(k, x) = \sum_{s,a} \rho(s)\,\pi(a|s)\psi_k(s, a)\, P(x|s, a),\quad
    R(s, l) = \sum_a \pi(a|s)\, A(s, a)\, \psi_l(s, a),

one solve with :math:`M^\top` for n right-hand sides (the factorization of the evaluation).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import check_memory, check_theta
from ..models.finite_mdp import FiniteMDP
from ..policies.softmax import SoftmaxPolicy, TabularSoftmax
from ._checks import check_policy_theta
from ._krylov import check_tol
from .second_order import _SecondOrder

__all__ = ["hessian", "hessian_vector_product", "value_gradient_hessian"]


def _jac_t_logits(policy: SoftmaxPolicy, W: np.ndarray) -> np.ndarray:
    r""":math:`\sum_{s,a} W(s, a, m) \nabla_\theta z(s, a)` for W of shape (S, A, m); returns (n, m)."""
    S, A, m = W.shape
    if isinstance(policy, TabularSoftmax):
        return W.reshape(S * A, m)
    return np.tensordot(policy.features, W, axes=([0, 1], [0, 1]))  # type: ignore[attr-defined]


def _curvature_weights(pi: np.ndarray, G: np.ndarray) -> np.ndarray:
    r""":math:`\pi(a|s)(G(s, a) - \bar G(s))`, the weights of :math:`\sum G\,\nabla^2\pi` (module docstring)."""
    with np.errstate(invalid="ignore"):
        w = pi * (G - np.sum(pi * G, axis=1, keepdims=True))
    return np.where(pi > 0, w, 0.0)


def _hvp(policy: SoftmaxPolicy, so: _SecondOrder, v: np.ndarray) -> np.ndarray:
    pi, G = so.pi, so.G
    u = pi * policy._score_dot(pi, v)  # J_theta v, shape (S, A)
    Hu = so.hvp(u[:, :, None])[:, :, 0]
    first = policy._score_contract(pi, pi * Hu)  # J_theta^T (H_pi u)
    Gbar = np.sum(pi * G, axis=1, keepdims=True)
    bracket = u * (G - Gbar) - pi * np.sum(u * G, axis=1, keepdims=True)
    if policy.action_mask is not None:
        bracket = np.where(policy.action_mask, bracket, 0.0)
    return first + policy._logit_jacobian_t(bracket)


def hessian_vector_product(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, v: Any, *, tol: float | None = None
) -> np.ndarray:
    r"""Exact :math:`\nabla^2_\theta J(\theta)\, v`, shape (n_params,), without forming the Hessian.

    .. math::

        \nabla^2_\theta J\, v = J_\theta^\top\, \nabla^2_\pi J\,[J_\theta v]
        + \sum_{s,a} G(s, a)\, \nabla^2_\theta\pi(a|s)\, v

    (module docstring :mod:`pgexact.exact.hessian`; Furmston, Lever & Barber 2016;
    Shen et al. 2019). Cost: one evaluation and two more solves sharing its
    factorization (dense discounted P), or four Krylov solves (sparse P), or two passes over the
    horizon (finite H), plus O(S·A·n) for the parametrization: any size.

    Parameters
    ----------
    mdp : FiniteMDP
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)
    v : array_like, shape (n_params,)
    tol : float, optional
        Sparse ``P`` only: relative residual of the Krylov solves (see :func:`pgexact.evaluate`).

    Returns
    -------
    numpy.ndarray, shape (n_params,)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, policy_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> pol, theta, v = TabularSoftmax(4, 3), np.linspace(-1, 1, 12), np.cos(np.arange(12))
    >>> h = 1e-4  # central difference of the exact gradient: error O(h^2)
    >>> fd = (policy_gradient(mdp, pol, theta + h * v) - policy_gradient(mdp, pol, theta - h * v)) / (2 * h)
    >>> bool(np.allclose(hessian_vector_product(mdp, pol, theta, v), fd, rtol=1e-6, atol=1e-7))
    True
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    v = check_theta(v, policy.n_params, name="v")
    pi = policy._probs(theta)
    return _hvp(policy, _SecondOrder(mdp, pi, check_tol(tol)), v)


def _check_hessian_memory(mdp: FiniteMDP, policy: SoftmaxPolicy) -> None:
    n, S, A = policy.n_params, mdp.n_states, mdp.n_actions
    per = 4 * n * n + 4 * S * A * n + 2 * S * A * S  # H and its terms; score, J_theta; Y's weights
    check_memory(
        f"the dense Hessian with n_params={n}, S={S}, A={A}", 8 * per,
        "use hessian_vector_product (no dense matrix)",
    )


def _dense_hessian(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: np.ndarray, so: _SecondOrder) -> np.ndarray:
    pi, G = so.pi, so.G
    S, A, n = mdp.n_states, mdp.n_actions, policy.n_params
    tabular = isinstance(policy, TabularSoftmax)
    w2 = _curvature_weights(pi, G)
    if tabular:  # sum_a w psi psi^T is block diagonal: diag(w_s) - w_s pi_s^T - pi_s w_s^T
        Hm = np.zeros((S, A, S, A))
        blocks = -(w2[:, :, None] * pi[:, None, :])
        blocks += np.swapaxes(blocks, 1, 2)
        blocks[:, np.arange(A), np.arange(A)] += w2
        states = np.arange(S)
        Hm[states, :, states, :] = blocks
        H2 = Hm.reshape(n, n)
    else:
        score = policy.score(theta)
        H2 = np.tensordot(score * w2[:, :, None], score, axes=([0, 1], [0, 1]))
    if mdp.horizon is None:
        g = mdp.gamma
        V = np.sum(pi * so.Q, axis=1)
        adv = pi * (so.Q - V[:, None])  # pi(a|s) A(s, a)
        if mdp.is_sparse:
            P = mdp.P.toarray().reshape(S, A, S) if S * A * S <= 10**7 else None
        else:
            P = mdp.P
        if P is None:  # Y^T column by column: sum_{s,a} c(s, a) P(.|s, a) for c = rho pi psi_k
            score_k = policy.score(theta)
            c = so.rho[:, None, None] * pi[:, :, None] * score_k
            Yt = np.asarray(mdp.P.T @ c.reshape(S * A, n))  # (S, n)
        else:
            P_pi = np.einsum("sa,sax->sx", pi, P)
            C = so.rho[:, None, None] * pi[:, :, None] * (P - P_pi[:, None, :])  # centred: (S, A, S)
            Yt = _jac_t_logits(policy, C).T  # (S, n)
        Lt = so._solve(np.ascontiguousarray(Yt), transposed=True)  # M^{-T} Y^T, (S, n)
        if tabular:
            # R(s, (s', b)) = [s = s'] pi(b|s) A(s, b): L R is L's column s scaled by pi A
            LR = Lt.T[:, np.repeat(np.arange(S), A)] * adv.reshape(-1)[None, :]
        else:
            R = np.einsum("sa,sak->sk", adv, policy.features)  # type: ignore[attr-defined]
            LR = Lt.T @ R
        H1 = g * (LR + LR.T)
    else:  # the batched pi-Hessian product on J_theta's columns
        Jt = pi[:, :, None] * policy.score(theta)  # (S, A, n)
        HJ = so.hvp(Jt)
        X = pi[:, :, None] * HJ
        X -= pi[:, :, None] * X.sum(axis=1, keepdims=True)
        if policy.action_mask is not None:
            X[~policy.action_mask] = 0.0
        H1 = _jac_t_logits(policy, X)  # (n, n): J_theta^T H_pi J_theta
    return H1 + H2


def hessian(mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, *, tol: float | None = None) -> np.ndarray:
    r"""Exact dense Hessian :math:`\nabla^2_\theta J(\theta)`, shape (n_params, n_params).

    .. math::

        \nabla^2_\theta J = J_\theta^\top \nabla^2_\pi J\, J_\theta
        + \sum_{s,a}\pi(a|s)\,(G(s, a) - \bar G(s))\,\psi(s, a)\psi(s, a)^\top

    (module docstring :mod:`pgexact.exact.hessian`; Furmston, Lever & Barber 2016).
    Discounted: the first term as :math:`\gamma(LR + R^\top L^\top)` (rank :math:`\le 2S`), one
    solve with n right-hand sides; finite horizon: the recursions of
    :func:`pgexact.exact.pi_hessian_vector_product` on the n columns of :math:`J_\theta`. Meant
    for up to a few thousand parameters; refused (with the memory it would need) beyond the limit
    of one call. Symmetric up to rounding (not symmetrized here).

    Parameters
    ----------
    mdp : FiniteMDP
    policy : TabularSoftmax or LinearSoftmax
    theta : array_like, shape (n_params,)
    tol : float, optional
        Sparse ``P`` only: relative residual of the Krylov solves.

    Returns
    -------
    numpy.ndarray, shape (n_params, n_params)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> H = hessian(mdp, TabularSoftmax(3, 2), np.array([0.1, -0.3, 0.5, 0.2, 0.0, 0.4]))
    >>> bool(np.allclose(H, H.T, atol=1e-12))
    True
    >>> bool(np.allclose(H @ np.ones(6), 0.0, atol=1e-12))  # per-state logit shifts: flat
    True
    """
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    _check_hessian_memory(mdp, policy)
    pi = policy._probs(theta)
    return _dense_hessian(mdp, policy, theta, _SecondOrder(mdp, pi, check_tol(tol)))


def value_gradient_hessian(
    mdp: FiniteMDP, policy: SoftmaxPolicy, theta: Any, *, tol: float | None = None
) -> tuple[float, np.ndarray, np.ndarray]:
    r"""``(J, grad J, Hessian)`` from one evaluation (see :func:`hessian`)."""
    mdp, policy, theta = check_policy_theta(mdp, policy, theta)
    _check_hessian_memory(mdp, policy)
    pi = policy._probs(theta)
    so = _SecondOrder(mdp, pi, check_tol(tol))
    grad = policy._score_contract(pi, pi * so.G)
    return so.J, grad, _dense_hessian(mdp, policy, theta, so)
