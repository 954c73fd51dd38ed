r"""Exact second derivatives of J with respect to the policy matrix itself, for any parametrization.

J is a smooth (rational) function of the entries of :math:`\pi \in \mathbb{R}^{S\times A}`,
treated as free variables as in :func:`pgexact.exact.pi_gradient` (off the simplex by the same
formulas, :math:`P_\pi = \sum_a \pi(a|s) P(\cdot|s, a)`, :math:`r_\pi = \sum_a \pi(a|s) r(s, a)`).
Its Hessian applied to a direction :math:`u \in \mathbb{R}^{S\times A}` is the derivative of the
policy gradient theorem's weights :math:`G = \partial J/\partial\pi` along u.

Discounted. With :math:`M = I - \gamma P_\pi`, :math:`\rho = M^{-\top}\mu_0 = d_\pi/(1-\gamma)`,
:math:`G(s, a) = \rho(s) Q(s, a)`, and the first-order changes
:math:`\delta P_\pi = \sum_a u(s, a) P(\cdot|s, a)`, :math:`\delta r_\pi = \sum_a u(s, a) r(s, a)`:

.. math::

    \delta V &= M^{-1}(\delta r_\pi + \gamma\,\delta P_\pi V) = M^{-1}\Big(\sum_a u(\cdot, a)\, Q(\cdot, a)\Big),
    \qquad \delta Q = \gamma P\, \delta V,\\
    \delta\rho &= \gamma\, M^{-\top} \delta P_\pi^\top \rho
      \quad\text{i.e.}\quad (\delta P_\pi^\top\rho)(s') = \sum_{s,a} \rho(s)\, u(s, a)\, P(s'|s, a),\\
    \big(\nabla^2_\pi J\, [u]\big)(s, a) &= \delta\rho(s)\, Q(s, a) + \rho(s)\, \delta Q(s, a)
      = \frac{\delta d(s)\, Q(s, a) + d(s)\, \delta Q(s, a)}{1-\gamma}.

(:math:`\delta\rho` is the adjoint's derivative: differentiate :math:`M^\top\rho = \mu_0`.) Two
linear solves beyond the evaluation, one with M and one with :math:`M^\top`, sharing its LU
factorization (dense P) or by the Krylov solver of :mod:`pgexact.exact._krylov` (sparse P).
Entry by entry,

.. math::

    \frac{\partial^2 J}{\partial\pi(a|s)\,\partial\pi(a'|s')}
    = \gamma\left[\rho(s)\,(P M^{-1})(sa, s')\, Q(s', a') + \rho(s')\,(P M^{-1})(s'a', s)\, Q(s, a)\right],

a symmetric matrix of rank at most 2S: the policy Hessian of Furmston, Lever & Barber 2016
("Approximate Newton methods for policy search in Markov decision processes", JMLR 17(226))
written in :math:`\pi`-coordinates, where it is the derivative of the policy gradient theorem's
weights.

Finite horizon H (stationary policy). With :math:`G = \sum_{t<H}\gamma^t p_t(s) Q_t(s, a)`: the
backward recursion :math:`\delta V_{H-1} = \sum_a u\, r`,
:math:`\delta V_t = \sum_a u\, Q_t + \gamma P_\pi \delta V_{t+1}`,
:math:`\delta Q_t = \gamma P \delta V_{t+1}` (:math:`\delta Q_{H-1} = 0`), the forward recursion
:math:`\delta p_0 = 0`, :math:`\delta p_{t+1} = P_\pi^\top\delta p_t + \delta P_\pi^\top p_t`, and

.. math::

    \nabla^2_\pi J\,[u] = \sum_{t<H} \gamma^t \big(\delta p_t(s)\, Q_t(s, a) + p_t(s)\, \delta Q_t(s, a)\big).

A parametrization :math:`\theta\mapsto\pi_\theta` then gets its exact Hessian-vector product by
the chain rule :math:`\nabla^2_\theta J\, v = J_\theta^\top \nabla^2_\pi J\, (J_\theta v)
+ \sum_{s,a} G(s, a)\, \nabla^2_\theta\pi(a|s)\, v` with :math:`J_\theta = \partial\pi/\partial\theta`
(:func:`pgexact.hessian_vector_product` does this for the softmax parametrizations).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .._validation import as_float_array, check_memory
from ..models.finite_mdp import FiniteMDP
from ._checks import check_mdp, check_pi
from ._krylov import check_tol
from .evaluation import _evaluate
from .policy_free import _DiscountedSystem

__all__ = ["pi_hessian_vector_product", "pi_hessian"]


def _transpose_expected_batch(mdp: FiniteMDP, W: np.ndarray) -> np.ndarray:
    r""":math:`\sum_{s,a} W(s, a, k) P(s'|s, a)` for W of shape (S, A, k); returns (S, k)."""
    S, A, k = W.shape
    if mdp.is_sparse:
        return np.asarray(mdp.P.T @ W.reshape(S * A, k))
    return W.reshape(S * A, k).T.dot(mdp.P.reshape(S * A, S)).T


class _SecondOrder:
    r"""The evaluation of one policy matrix and the solver of its Bellman system, for repeated
    Hessian-vector products in :math:`\pi` (internal: arguments are validated by the callers).

    Attributes: ``J``, ``G`` (:math:`\partial J/\partial\pi`, (S, A)), ``Q`` ((S, A) or (H, S, A)),
    ``rho`` (discounted visitation, (S,)) or ``p`` (marginals, (H, S)).
    """

    def __init__(self, mdp: FiniteMDP, pi: np.ndarray, tol: float | None) -> None:
        tol = check_tol(tol)
        self.mdp, self.pi, self.tol = mdp, pi, tol
        g = mdp.gamma
        if mdp.horizon is None:
            self.system = _DiscountedSystem(mdp, pi, tol)
            V = self.system.solve(mdp._policy_reward(pi))
            self.rho = self.system.solve_t(mdp.mu0)
            self.Q = mdp.r + g * mdp._expected_next(V)
            self.J = float(mdp.mu0 @ V)
            self.G = self.rho[:, None] * self.Q
        else:
            ev = _evaluate(mdp, pi, tol)
            self.Q, self.p, self.J = ev.Q, ev.p, ev.J
            self.P_pi = mdp._policy_transition(pi)
            self.P_pi_T = self.P_pi.T.tocsr() if mdp.is_sparse else self.P_pi.T
            self.disc = g ** np.arange(mdp.horizon)
            self.G = np.einsum("t,ts,tsa->sa", self.disc, ev.p, ev.Q)

    def hvp(self, U: np.ndarray) -> np.ndarray:
        r""":math:`\nabla^2_\pi J\,[U_{\cdot\cdot k}]` for every k; U and the result have shape (S, A, k)."""
        out = self.value_term(U)
        out += self.visitation_term(U)
        return out

    def _solve(self, B: np.ndarray, transposed: bool) -> np.ndarray:
        solve = self.system.solve_t if transposed else self.system.solve
        if self.system.lu is not None:
            return solve(B)
        return np.stack([solve(np.ascontiguousarray(B[:, j])) for j in range(B.shape[1])], axis=1)

    def value_term(self, U: np.ndarray) -> np.ndarray:
        r"""The term of the values' derivative: :math:`\rho(s)\,\delta Q(s, a)` (finite horizon:
        :math:`\sum_t \gamma^t p_t(s)\,\delta Q_t(s, a)`), shape (S, A, k)."""
        mdp, g = self.mdp, self.mdp.gamma
        if mdp.horizon is None:
            dV = self._solve(np.einsum("sak,sa->sk", U, self.Q), transposed=False)
            dQ = g * mdp._expected_next(dV)  # (S, A, k)
            dQ *= self.rho[:, None, None]
            return dQ
        H = int(mdp.horizon)
        Q, p, disc = self.Q, self.p, self.disc
        out = np.zeros(U.shape)
        dV = np.einsum("sak,sa->sk", U, Q[H - 1])
        for t in range(H - 2, -1, -1):  # delta Q_t = gamma P delta V_{t+1}; delta V_t
            out += (disc[t] * g) * p[t][:, None, None] * mdp._expected_next(dV)
            dV = np.einsum("sak,sa->sk", U, Q[t]) + g * (self.P_pi @ dV)
        return out

    def visitation_term(self, U: np.ndarray) -> np.ndarray:
        r"""The term of the visitation's derivative: :math:`\delta\rho(s)\, Q(s, a)` (finite horizon:
        :math:`\sum_t \gamma^t \delta p_t(s)\, Q_t(s, a)`), shape (S, A, k)."""
        mdp, g = self.mdp, self.mdp.gamma
        if mdp.horizon is None:
            b = g * _transpose_expected_batch(mdp, self.rho[:, None, None] * U)
            drho = self._solve(b, transposed=True)
            return drho[:, None, :] * self.Q[:, :, None]
        H = int(mdp.horizon)
        Q, p, disc = self.Q, self.p, self.disc
        out = np.zeros(U.shape)
        dp = np.zeros((mdp.n_states, U.shape[2]))
        for t in range(1, H):  # delta p_t = P_pi^T delta p_{t-1} + delta P_pi^T p_{t-1}
            dp = self.P_pi_T @ dp + _transpose_expected_batch(mdp, p[t - 1][:, None, None] * U)
            out += disc[t] * dp[:, None, :] * Q[t][:, :, None]
        return out


def _check_u(mdp: FiniteMDP, u: Any) -> np.ndarray:
    return as_float_array("u", u, shape=(mdp.n_states, mdp.n_actions))


def pi_hessian_vector_product(mdp: FiniteMDP, pi: Any, u: Any, *, tol: float | None = None) -> np.ndarray:
    r"""Exact :math:`\frac{d}{d\varepsilon}\,\frac{\partial J}{\partial\pi}(\pi + \varepsilon u)\big|_{\varepsilon=0}`, shape (S, A).

    The Hessian of J in the entries of the policy matrix (free variables, as in
    :func:`pgexact.exact.pi_gradient`) applied to u. Discounted:

    .. math::

        \nabla^2_\pi J\,[u](s, a) = \delta\rho(s)\, Q(s, a) + \rho(s)\,\gamma (P\,\delta V)(s, a),
        \quad \delta V = M^{-1}\Big(\sum_a u\,Q\Big),\quad
        \delta\rho = \gamma M^{-\top}\Big(\sum_{s,a}\rho(s) u(s, a) P(\cdot|s, a)\Big),

    :math:`M = I - \gamma P_\pi`, :math:`\rho = d_\pi/(1-\gamma)`; finite horizon by a backward
    (values) and a forward (marginals) recursion (module docstring :mod:`pgexact.exact.second_order`;
    the policy Hessian of Furmston, Lever & Barber 2016, JMLR 17(226), in :math:`\pi`-coordinates).

    Parameters
    ----------
    mdp : FiniteMDP
    pi : array_like, shape (S, A), or tuple (policy, theta)
        The policy matrix at which the Hessian is taken.
    u : array_like, shape (S, A)
        The direction (any real matrix: tangents to the simplex need rows summing to 0).
    tol : float, optional
        Sparse ``P`` only: relative residual of the Krylov solves (see :func:`pgexact.evaluate`).

    Returns
    -------
    numpy.ndarray, shape (S, A)

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.exact import pi_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> pi = np.full((4, 3), 1 / 3)
    >>> u = np.linspace(-1, 1, 12).reshape(4, 3)
    >>> u -= u.mean(axis=1, keepdims=True)  # tangent to the simplex: pi +- h u stays a policy
    >>> h = 1e-4  # central difference of the exact gradient: error O(h^2)
    >>> fd = (pi_gradient(mdp, pi + h * u) - pi_gradient(mdp, pi - h * u)) / (2 * h)
    >>> bool(np.allclose(pi_hessian_vector_product(mdp, pi, u), fd, rtol=1e-6, atol=1e-6))
    True
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    u = _check_u(mdp, u)
    return _SecondOrder(mdp, pi, check_tol(tol)).hvp(u[:, :, None])[:, :, 0]


def pi_hessian(mdp: FiniteMDP, pi: Any, *, tol: float | None = None) -> np.ndarray:
    r"""Dense Hessian of J in the entries of the policy matrix, shape (S·A, S·A).

    Row and column ``s * A + a`` belong to :math:`\pi(a|s)`; column j is
    :func:`pi_hessian_vector_product` applied to the j-th unit matrix (all S·A directions in one
    batch of solves). Symmetric up to rounding (it is not symmetrized here). Memory
    :math:`3 (SA)^2` floats, refused beyond the limit of one call.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.8, seed=1)
    >>> H = pi_hessian(mdp, np.full((3, 2), 0.5))
    >>> bool(np.allclose(H, H.T, rtol=0, atol=1e-12))
    True
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    tol = check_tol(tol)
    S, A = mdp.n_states, mdp.n_actions
    n = S * A
    check_memory(f"pi_hessian with S*A={n}", 8 * 3 * n * n,
                 "use pi_hessian_vector_product (no dense matrix)")
    U = np.eye(n).reshape(S, A, n)
    return _SecondOrder(mdp, pi, tol).hvp(U).reshape(n, n)
