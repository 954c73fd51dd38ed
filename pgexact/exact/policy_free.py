r"""Exact derivatives with respect to the policy matrix itself, for any parametrization.

Every quantity of :func:`pgexact.evaluate` is a smooth function of the policy matrix
:math:`\pi \in \mathbb{R}^{S \times A}` (extended off the simplex by the same formulas:
:math:`P_\pi = \sum_a \pi(a|s) P(\cdot|s, a)`, :math:`r_\pi = \sum_a \pi(a|s) r(s, a)`). Their
derivatives in :math:`\pi` are closed forms; a parametrized policy :math:`\theta \mapsto \pi_\theta`
(a neural network, a softmax, anything) then gets its exact gradient by one vector-Jacobian
product, :math:`\nabla_\theta J = (\partial\pi/\partial\theta)^\top\, \partial J/\partial\pi` — which is
what the JAX and PyTorch adapters (:mod:`pgexact.jax`, :mod:`pgexact.torch`) do.

Discounted (policy gradient theorem in :math:`\pi`-coordinates; Sutton et al. 2000, Theorem 1;
Agarwal et al. 2021, Lemma 3.2 for the direct parametrization):

.. math::

    \frac{\partial J}{\partial \pi(a|s)} = \rho_\pi(s)\, Q^\pi(s, a) = \frac{d_\pi(s)\, Q^\pi(s, a)}{1-\gamma},
    \qquad \rho_\pi = \mu_0^\top (I - \gamma P_\pi)^{-1}.

Finite horizon H: :math:`\partial J/\partial\pi(a|s) = \sum_{t<H} \gamma^t p_t(s)\, Q_t(s, a)`.

More generally, for cotangents :math:`\bar V, \bar Q` of the values (reverse mode): the adjoint
:math:`\lambda` of V solves :math:`(I - \gamma P_\pi)^\top \lambda = \bar V + \gamma P^\top \bar Q`
and :math:`\partial \langle \bar V, V\rangle + \langle \bar Q, Q \rangle / \partial\pi(a|s) = \lambda(s) Q(s, a)`
(J is the case :math:`\bar V = \mu_0`); for the finite horizon the adjoint runs forward in time
(:func:`value_vjp`). The occupancy's cotangent :math:`\bar d` gives
:math:`\gamma\, d_\pi(s)\, (P x)(s, a)` with :math:`x = (I - \gamma P_\pi)^{-1} \bar d`
(:func:`occupancy_vjp`).

Fisher-vector products for any parametrization (:func:`fisher_vector_product_jvp`): with
:math:`J_\theta = \partial \pi / \partial \theta` (shape (S·A, n)) and
:math:`\nabla\log\pi = J_\theta^\top e_{sa} / \pi(a|s)`,

.. math::

    F v = \sum_s d(s) \sum_a \pi(a|s)\, \nabla\log\pi\, \nabla\log\pi^\top v
        = J_\theta^\top\, \mathrm{diag}\!\left(\frac{d(s)}{\pi(a|s)}\right) J_\theta\, v ,

one Jacobian-vector product and one vector-Jacobian product of :math:`\theta \mapsto \pi_\theta`
(Kakade 2002, sec. 3; Schulman et al. 2015, Appendix C). Entries with :math:`\pi(a|s) = 0`
contribute 0 when :math:`(J_\theta v)(s, a) = 0` (true for every smooth parametrization with
nonnegative outputs, e.g. a softmax that underflowed); otherwise the Fisher metric is unbounded in
that direction and a :class:`~pgexact.errors.NumericalError` is raised.
"""

from __future__ import annotations

from typing import Any, Callable

import numpy as np
import scipy.linalg
import scipy.sparse
import scipy.sparse.linalg

from .._validation import as_float_array, as_probabilities, check_callable, check_positive_int, check_tolerance
from ..errors import NumericalError
from ..models.finite_mdp import FiniteMDP, _sparse_policy_transition
from ._checks import check_mdp, check_pi
from ._krylov import check_tol, krylov_solve
from .evaluation import Evaluation, _visitation_mass, evaluate

__all__ = [
    "pi_gradient",
    "value_and_pi_gradient",
    "value_vjp",
    "advantage_vjp",
    "occupancy_vjp",
    "fisher_pi_metric",
    "fisher_vector_product_jvp",
    "minimum_norm_solve",
]


def _weights_from_evaluation(mdp: FiniteMDP, ev: Evaluation) -> np.ndarray:
    if mdp.horizon is None:
        return (ev.d / (1.0 - mdp.gamma))[:, None] * ev.Q  # type: ignore[operator]
    disc = mdp.gamma ** np.arange(mdp.horizon)
    return np.einsum("t,ts,tsa->sa", disc, ev.p, ev.Q)


def value_and_pi_gradient(
    mdp: FiniteMDP, pi: Any, *, tol: float | None = None
) -> tuple[float, np.ndarray, Evaluation]:
    r"""``(J, dJ/dpi, evaluation)`` from one exact evaluation.

    .. math::

        \frac{\partial J}{\partial\pi(a|s)} = \frac{d_\pi(s) Q^\pi(s, a)}{1-\gamma}
        \quad\text{or}\quad \sum_{t<H} \gamma^t p_t(s) Q_t(s, a)

    (module docstring). ``tol``: sparse ``P`` only (see :func:`pgexact.evaluate`).

    Returns
    -------
    J : float
    grad : numpy.ndarray, shape (S, A)
    evaluation : Evaluation
        The :func:`pgexact.evaluate` result it was computed from.
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    ev = evaluate(mdp, pi, tol=tol)
    return ev.J, _weights_from_evaluation(mdp, ev), ev


def pi_gradient(mdp: FiniteMDP, pi: Any, *, tol: float | None = None) -> np.ndarray:
    r"""Exact :math:`\partial J / \partial \pi(a|s)`, shape (S, A) (see :func:`value_and_pi_gradient`).

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, policy_gradient
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(4, 3, gamma=0.9, seed=0)
    >>> pol, theta = TabularSoftmax(4, 3), np.linspace(-1, 1, 12)
    >>> pi = pol.probs(theta)
    >>> G = pi_gradient(mdp, pi)
    >>> # chain rule through the softmax: dJ/dz(s, a) = pi (G - sum_b pi G)
    >>> dz = pi * (G - (pi * G).sum(axis=1, keepdims=True))
    >>> bool(np.allclose(dz.reshape(-1), policy_gradient(mdp, pol, theta), rtol=1e-12, atol=1e-13))
    True
    """
    return value_and_pi_gradient(mdp, pi, tol=tol)[1]


# --------------------------------------------------------------------------- linear algebra
def _transpose_expected(mdp: FiniteMDP, w: np.ndarray) -> np.ndarray:
    r""":math:`(P^\top w)(s') = \sum_{s,a} w(s, a) P(s'|s, a)` for w of shape (S, A); returns (S,)."""
    if mdp.is_sparse:
        return mdp.P.T @ w.reshape(-1)
    return np.einsum("sa,sat->t", w, mdp.P)


class _DiscountedSystem:
    r"""Solves with :math:`M = I - \gamma P_\pi` and :math:`M^\top` (LU for dense P, Krylov for sparse)."""

    def __init__(self, mdp: FiniteMDP, pi: np.ndarray, tol: float) -> None:
        self.tol = tol
        self.gamma = mdp.gamma
        S = mdp.n_states
        if mdp.is_sparse:
            P_pi = _sparse_policy_transition(mdp.P, pi)
            self.M = scipy.sparse.eye_array(S, format="csr") - mdp.gamma * P_pi
            self.lu = None
        else:
            M = mdp._policy_transition(pi)
            M *= -mdp.gamma
            M[np.diag_indices(S)] += 1.0
            self.lu = scipy.linalg.lu_factor(M, check_finite=False)

    def solve(self, b: np.ndarray) -> np.ndarray:
        """:math:`M^{-1} b`."""
        if self.lu is not None:
            return scipy.linalg.lu_solve(self.lu, b, check_finite=False)
        return krylov_solve(self.M, b, self.tol, "(I - gamma P_pi) x = b", gamma=self.gamma)[0]

    def solve_t(self, b: np.ndarray) -> np.ndarray:
        r""":math:`M^{-\top} b`."""
        if self.lu is not None:
            return scipy.linalg.lu_solve(self.lu, b, trans=1, check_finite=False)
        return krylov_solve(self.M.T.tocsr(), b, self.tol, "(I - gamma P_pi)^T x = b", gamma=self.gamma)[0]


def _cotangent(name: str, value: Any, shape: tuple[int, ...]) -> np.ndarray | None:
    if value is None:
        return None
    return as_float_array(name, value, shape=shape)


def value_vjp(
    mdp: FiniteMDP, pi: Any, V_bar: Any = None, Q_bar: Any = None, *, tol: float | None = None
) -> np.ndarray:
    r"""Vector-Jacobian product of the values in :math:`\pi`: :math:`\partial(\langle\bar V, V\rangle + \langle\bar Q, Q\rangle)/\partial\pi`.

    Discounted (V of shape (S,), Q of shape (S, A)):

    .. math::

        (I - \gamma P_\pi)^\top \lambda = \bar V + \gamma P^\top \bar Q, \qquad
        \frac{\partial}{\partial\pi(a|s)} = \lambda(s)\, Q(s, a).

    Finite horizon (V of shape (H, S), Q of shape (H, S, A)): the adjoint runs forward in time,
    :math:`\lambda_0 = \bar V_0`, :math:`m_t = \bar Q_t + \lambda_t \pi`,
    :math:`\lambda_{t+1} = \bar V_{t+1} + \gamma P^\top m_t`, and the derivative is
    :math:`\sum_t \lambda_t(s) Q_t(s, a)`. (With :math:`\bar V = \mu_0` at t = 0 this is
    :func:`pi_gradient`.) Reverse-mode differentiation of the Bellman equation; Sutton et al.
    2000, Theorem 1, is its special case.

    Parameters
    ----------
    mdp : FiniteMDP
    pi : array_like, shape (S, A)
    V_bar, Q_bar : array_like, optional
        Cotangents, shaped like :attr:`Evaluation.V` and :attr:`Evaluation.Q`; missing means 0.
    tol : float, optional
        Sparse ``P`` only: relative residual of the Krylov solves.

    Returns
    -------
    numpy.ndarray, shape (S, A)
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    tol = check_tol(tol)
    S, A = mdp.n_states, mdp.n_actions
    ev = evaluate(mdp, pi, tol=tol)
    if mdp.horizon is None:
        Vb = _cotangent("V_bar", V_bar, (S,))
        Qb = _cotangent("Q_bar", Q_bar, (S, A))
        rhs = np.zeros(S) if Vb is None else Vb.copy()
        if Qb is not None:
            rhs += mdp.gamma * _transpose_expected(mdp, Qb)
        lam = _DiscountedSystem(mdp, pi, tol).solve_t(rhs)
        return lam[:, None] * ev.Q
    H = mdp.horizon
    Vb = _cotangent("V_bar", V_bar, (H, S))
    Qb = _cotangent("Q_bar", Q_bar, (H, S, A))
    out = np.zeros((S, A))
    lam = np.zeros(S) if Vb is None else Vb[0].copy()
    for t in range(H):
        out += lam[:, None] * ev.Q[t]
        if t == H - 1:
            break
        m = lam[:, None] * pi
        if Qb is not None:
            m = m + Qb[t]
        lam = mdp.gamma * _transpose_expected(mdp, m)
        if Vb is not None:
            lam += Vb[t + 1]
    return out


def advantage_vjp(mdp: FiniteMDP, pi: Any, A_bar: Any, *, tol: float | None = None) -> np.ndarray:
    r"""Vector-Jacobian product of the advantages :math:`A = Q - V` in :math:`\pi`, shape (S, A).

    :func:`value_vjp` with :math:`\bar Q = \bar A` and :math:`\bar V(s) = -\sum_a \bar A(s, a)`
    (per time step for a finite horizon). ``A_bar`` is shaped like :attr:`Evaluation.A`.
    """
    mdp = check_mdp(mdp)
    shape = (mdp.n_states, mdp.n_actions) if mdp.horizon is None else (mdp.horizon, mdp.n_states, mdp.n_actions)
    Ab = as_float_array("A_bar", A_bar, shape=shape)
    return value_vjp(mdp, pi, V_bar=-Ab.sum(axis=-1), Q_bar=Ab, tol=tol)


def occupancy_vjp(mdp: FiniteMDP, pi: Any, d_bar: Any, *, tol: float | None = None) -> np.ndarray:
    r"""Vector-Jacobian product of the normalized occupancy :func:`pgexact.occupancy` in :math:`\pi`.

    Discounted: :math:`d_\pi = (1-\gamma)\mu_0^\top (I-\gamma P_\pi)^{-1}`, and

    .. math::

        \frac{\partial \langle \bar d, d_\pi \rangle}{\partial \pi(a|s)} = \gamma\, d_\pi(s)\, (P x)(s, a),
        \qquad (I - \gamma P_\pi)\, x = \bar d .

    Finite horizon: :math:`d = \sum_t \gamma^t p_t / \sum_t \gamma^t` with :math:`p_{t+1} = p_t P_\pi`;
    the adjoint :math:`x_{H-1} = c_{H-1}`, :math:`x_t = c_t + P_\pi x_{t+1}` with
    :math:`c_t = \gamma^t \bar d / \sum_u \gamma^u` gives :math:`\sum_{t<H-1} p_t(s) (P x_{t+1})(s, a)`.

    Returns
    -------
    numpy.ndarray, shape (S, A)
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    tol = check_tol(tol)
    S = mdp.n_states
    db = as_float_array("d_bar", d_bar, shape=(S,))
    ev = evaluate(mdp, pi, tol=tol)
    if mdp.horizon is None:
        x = _DiscountedSystem(mdp, pi, tol).solve(db)
        return mdp.gamma * ev.d[:, None] * mdp._expected_next(x)  # type: ignore[index]
    H = mdp.horizon
    Z = _visitation_mass(mdp)
    out = np.zeros_like(pi)
    x = (mdp.gamma ** (H - 1)) * db / Z
    for t in range(H - 2, -1, -1):
        Px = mdp._expected_next(x)  # (S, A)
        out += ev.p[t][:, None] * Px  # type: ignore[index]
        x = (mdp.gamma**t) * db / Z + np.einsum("sa,sa->s", pi, Px)
    return out


# --------------------------------------------------------------------------- Fisher
def fisher_pi_metric(pi: Any, d: Any, u: Any, *, name: str = "u") -> np.ndarray:
    r"""The Fisher metric in :math:`\pi`-coordinates applied to a tangent u: :math:`d(s)\, u(s, a) / \pi(a|s)`.

    With :math:`u = J_\theta v` (a Jacobian-vector product of :math:`\theta \mapsto \pi_\theta`),
    a vector-Jacobian product of the result is :math:`F v` (module docstring). Entries with
    :math:`\pi(a|s) = 0` or :math:`d(s) = 0` give 0 when :math:`u(s, a) = 0`.

    Parameters
    ----------
    pi : array_like, shape (S, A)
    d : array_like, shape (S,)
        State weights (the normalized occupancy for the state-averaged Fisher).
    u : array_like, shape (S, A)
    name : str
        How error messages call ``u`` (e.g. ``"jvp(v)"`` when u comes from a callback).

    Raises
    ------
    ValueError
        Malformed input, or a result beyond the float64 range.
    NumericalError
        If :math:`\pi(a|s) = 0 < d(s)` and :math:`u(s, a) \ne 0`: the Fisher information is
        unbounded in direction v (the parametrization leaves the simplex's face at a zero
        probability with nonzero speed).
    """
    if not isinstance(name, str):
        raise TypeError(f"name must be a str (what error messages call u), got {type(name).__name__}")
    pi = as_probabilities(pi, "pi")
    d = as_float_array("d", d, ndim=1)
    if d.shape != (pi.shape[0],):
        raise ValueError(f"d must have shape ({pi.shape[0]},) (one weight per state of pi), got {d.shape}")
    if (d < 0).any():
        s = int(np.argmax(d < 0))
        raise ValueError(f"d[{s}] is {d[s]:.6g}, expected a state weight >= 0")
    u = as_float_array(name, u)
    if u.shape != pi.shape:
        raise ValueError(f"{name} has shape {u.shape}, expected the policy's shape {pi.shape}")
    zero = pi == 0.0
    bad = zero & (u != 0.0) & (d[:, None] > 0.0)
    if bad.any():
        s, a = np.argwhere(bad)[0]
        raise NumericalError(
            f"{name}[{s}, {a}] = {u[s, a]:.3g} while pi[{s}, {a}] = 0 and d[{s}] > 0: the Fisher "
            "information is unbounded in this direction (a smooth parametrization with "
            "nonnegative outputs, such as a softmax, has zero derivative where pi = 0)"
        )
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        out = np.where(zero, 0.0, d[:, None] * u / np.where(zero, 1.0, pi))
    big = ~np.isfinite(out)
    if big.any():
        s, a = (int(i) for i in np.argwhere(big)[0])
        raise ValueError(
            f"d[{s}] * {name}[{s}, {a}] / pi[{s}, {a}] is beyond the float64 range: rescale {name} or d"
        )
    return out


def fisher_vector_product_jvp(
    mdp: FiniteMDP,
    pi: Any,
    jvp: Callable[[Any], Any],
    vjp: Callable[[np.ndarray], Any],
    v: Any,
    *,
    state_weights: Any = None,
    tol: float | None = None,
) -> Any:
    r"""State-averaged Fisher-vector product of any parametrization, from a JVP and a VJP of :math:`\theta\mapsto\pi_\theta`.

    .. math::

        F v = \sum_s d(s) \sum_a \pi(a|s)\,\nabla\log\pi(a|s)\,\nabla\log\pi(a|s)^\top v
            = J_\theta^\top\, \mathrm{diag}\!\left(\frac{d(s)}{\pi(a|s)}\right) J_\theta\, v

    (Kakade 2002, sec. 3). Matches :func:`pgexact.fisher_vector_product` for the softmax
    parametrizations.

    Parameters
    ----------
    mdp : FiniteMDP
    pi : array_like, shape (S, A)
        :math:`\pi_\theta` at the point of interest.
    jvp : callable
        ``jvp(v) -> J_theta v``, array of shape (S, A).
    vjp : callable
        ``vjp(w) -> J_theta^T w`` for w of shape (S, A); its result is returned as is.
    v : any
        The tangent vector, passed to ``jvp`` unchanged.
    state_weights : array_like, shape (S,), optional
        d; default the normalized occupancy :func:`pgexact.occupancy` (the Fisher of NPG and
        TRPO). Pass :math:`\sum_t p_t` for the trajectory Fisher.
    tol : float, optional
        Sparse ``P`` only: relative residual of the occupancy solve.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import TabularSoftmax, fisher_vector_product
    >>> from pgexact.mdps import random_mdp
    >>> mdp = random_mdp(3, 2, gamma=0.9, seed=0)
    >>> pol, theta, v = TabularSoftmax(3, 2), np.arange(6) / 5, np.ones(6) - np.arange(6) / 3
    >>> pi = pol.probs(theta)
    >>> def jvp(v):  # d pi = pi * (dz - sum_b pi dz)
    ...     dz = v.reshape(3, 2)
    ...     return pi * (dz - (pi * dz).sum(axis=1, keepdims=True))
    >>> def vjp(w):  # the same linear map is self-adjoint for the tabular logits
    ...     return (pi * (w - (pi * w).sum(axis=1, keepdims=True))).reshape(-1)
    >>> Fv = fisher_vector_product_jvp(mdp, pi, jvp, vjp, v)
    >>> bool(np.allclose(Fv, fisher_vector_product(mdp, pol, theta, v), rtol=1e-12, atol=1e-14))
    True
    """
    mdp = check_mdp(mdp)
    pi = check_pi(mdp, pi)
    check_callable("jvp", jvp)
    check_callable("vjp", vjp)
    if state_weights is None:
        from .evaluation import occupancy

        d = occupancy(mdp, pi, tol=tol)
    else:
        d = as_float_array("state_weights", state_weights, shape=(mdp.n_states,))
        if (d < 0).any():
            s = int(np.argmax(d < 0))
            raise ValueError(f"state_weights[{s}] is {d[s]:.6g}, expected >= 0")
    return vjp(fisher_pi_metric(pi, d, jvp(v), name="jvp(v)"))


def minimum_norm_solve(
    matvec: Callable[[np.ndarray], np.ndarray], b: Any, *, rtol: float = 1e-12, maxiter: int | None = None
) -> np.ndarray:
    r"""Minimum-norm solution of :math:`F x = b` for a symmetric positive semidefinite F given by ``matvec``.

    Conjugate gradient started at :math:`x_0 = 0` (Hestenes & Stiefel 1952): its iterates lie in
    the Krylov space of b, inside the range of F, so for consistent b (b in the range, true of
    :math:`\nabla J` for the Fisher matrix) the limit is :math:`F^+ b`, the natural gradient as
    :func:`pgexact.natural_gradient` defines it. Stops when
    :math:`\|b - F x\| \le \mathrm{rtol}\,\|b\|`.

    Parameters
    ----------
    matvec : callable
        ``matvec(x) -> F x`` for x of shape (n,).
    b : array_like, shape (n,)
    rtol : float
    maxiter : int, optional
        Default ``10 n``.

    Raises
    ------
    NumericalError
        If the residual does not reach ``rtol`` (b not in the range of F, or F ill-conditioned).
    """
    check_callable("matvec", matvec)
    b = as_float_array("b", b, ndim=1)
    rtol = check_tolerance("rtol", rtol)
    n = b.size
    maxiter = 10 * n if maxiter is None else check_positive_int("maxiter", maxiter)
    bnorm = float(np.linalg.norm(b))
    x = np.zeros(n)
    if bnorm == 0.0:
        return x
    r = b.copy()
    p = r.copy()
    rr = float(r @ r)
    for _ in range(maxiter):
        Fp = np.asarray(matvec(p), dtype=np.float64).reshape(n)
        pFp = float(p @ Fp)
        if pFp <= 0.0:
            break
        alpha = rr / pFp
        x += alpha * p
        r -= alpha * Fp
        rr_new = float(r @ r)
        if np.sqrt(rr_new) <= rtol * bnorm:
            return x
        p = r + (rr_new / rr) * p
        rr = rr_new
    res = float(np.linalg.norm(b - np.asarray(matvec(x)).reshape(n))) / bnorm
    if res <= rtol:
        return x
    raise NumericalError(
        f"conjugate gradient reached relative residual {res:.3g} > rtol={rtol:g} after {maxiter} "
        "iterations: b is not in the range of F or F is ill-conditioned; loosen rtol or raise maxiter"
    )
