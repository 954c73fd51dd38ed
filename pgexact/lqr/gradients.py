r"""Exact LQR gradients: cost gradient, noise gradient, policy gradient, Fisher matrix and the natural,
Fazel-natural and Gauss-Newton directions.

**Gradient** (Fazel, Ge, Kakade & Mesbahi 2018, Lemma 1, with discount, noise and the cross cost
N): with :math:`E_K = (R + \gamma B^\top P_K B) K - \gamma B^\top P_K A - N^\top`,

.. math::

    \nabla_K C(K) = 2 E_K \Sigma_K, \qquad
    \frac{\partial C}{\partial \Sigma_u} = \frac{R + \gamma B^\top P_K B}{1-\gamma}.

The noise terms enter only through :math:`\Sigma_K` (:math:`W_K` does not depend on K). Finite
horizon: :math:`\nabla_{K_t} C = 2\gamma^t E_{K_t,t} S_t` with
:math:`E_{K,t} = (R + \gamma B^\top P_{t+1} B)K - \gamma B^\top P_{t+1} A - N^\top` (summed over t
for a stationary gain). Reward side: :math:`\nabla J = -\nabla C`.
"""

from __future__ import annotations

import functools
from typing import Any, Callable, TypeVar

import numpy as np
import scipy.linalg

from ..errors import NumericalError, SingularSystemError
from ._args import check_action_cov, check_gain, check_infinite, check_lqr, check_policy
from .evaluation import LQREvaluation, _evaluate, evaluate  # noqa: F401  (evaluate: doctests)
from .model import LQR
from .policy import LinearGaussian

__all__ = [
    "cost_gradient",
    "cost_and_gradient",
    "noise_gradient",
    "policy_gradient",
    "fisher",
    "natural_gradient",
    "npg_direction",
    "gauss_newton_direction",
]

F = TypeVar("F", bound=Callable[..., Any])


def _finite_output(what: str, gain: str) -> Callable[[F], F]:
    """Run a public function with floating-point exceptions off and refuse a non-finite result.

    Intermediate overflows either raise a named :class:`~pgexact.errors.NumericalError` where they
    occur (the evaluation checks its own results) or reach the output, which is checked here;
    underflow is benign. ``gain`` names the argument that sets the gain, as the caller passes it.
    """

    def decorate(fn: F) -> F:
        @functools.wraps(fn)
        def checked(*args: Any, **kwargs: Any) -> Any:
            with np.errstate(under="ignore", over="ignore", invalid="ignore"):
                out = fn(*args, **kwargs)
            if not all(np.all(np.isfinite(v)) for v in (out if isinstance(out, tuple) else (out,))):
                raise NumericalError(
                    f"the {what} at this {gain} on lqr overflows float64: use a gain of moderate "
                    "size, a smaller noise covariance or a rescaled model"
                )
            return out

        return checked  # type: ignore[return-value]

    return decorate


def _gain_error(ev: LQREvaluation) -> np.ndarray:
    r""":math:`E_K` (infinite horizon, (m, n)) or :math:`E_{K_t,t}` (finite, (H, m, n))."""
    lqr = ev.lqr
    A, B, R, g, Nt = lqr.A, lqr.B, lqr.R, lqr.gamma, lqr.N.T
    if lqr.horizon is None:
        P = ev.P
        BtP = B.T @ P
        return (R + g * (BtP @ B)) @ ev.K - g * (BtP @ A) - Nt
    H, n = lqr.horizon, lqr.n_states
    Ks = np.broadcast_to(ev.K, (H,) + ev.K.shape[-2:])
    Pn = np.concatenate([ev.P[1:], np.zeros((1, n, n))])  # P_{t+1}
    BtPB = np.einsum("ia,tij,jb->tab", B, Pn, B)
    BtPA = np.einsum("ia,tij,jk->tak", B, Pn, A)
    return np.einsum("tab,tbk->tak", R + g * BtPB, Ks) - g * BtPA - Nt


def _grad_from(ev: LQREvaluation) -> np.ndarray:
    EK = _gain_error(ev)
    lqr = ev.lqr
    if lqr.horizon is None:
        return 2.0 * EK @ ev.Sigma
    G = 2.0 * (lqr.gamma ** np.arange(lqr.horizon))[:, None, None] * np.einsum("tak,tkl->tal", EK, ev.S)
    return G if ev.K.ndim == 3 else G.sum(axis=0)


def _eval(lqr: Any, K: Any, noise_cov: Any) -> LQREvaluation:
    lqr = check_lqr(lqr)
    return _evaluate(lqr, check_gain(lqr, K), check_action_cov(lqr, noise_cov))


@_finite_output("cost gradient", "K")
def cost_gradient(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Gradient of the cost, :math:`\nabla_K C(K) = 2 E_K \Sigma_K`, same shape as K.

    .. math::

        \nabla_K C(K) = 2\big[(R + \gamma B^\top P_K B)K - \gamma B^\top P_K A - N^\top\big]\Sigma_K

    (Fazel et al. 2018, Lemma 1; the discount enters as :math:`A \to \sqrt\gamma A`,
    :math:`B \to \sqrt\gamma B`, process/policy noise only through :math:`\Sigma_K`). For a
    finite horizon, :math:`\sum_t 2\gamma^t E_{K,t} S_t` (per-t terms for time-varying gains).
    This is the *cost* gradient: the reward-side policy gradient is its negative.

    Parameters
    ----------
    lqr : LQR
    K : array_like, shape (m, n) (or (H, m, n) for a finite horizon)
    noise_cov : array_like of shape (m, m), or None
        Policy noise covariance :math:`\Sigma_u`.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[0.9, 0.3], [0.0, 0.8]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           gamma=0.95, Sigma0=np.eye(2), N=[[0.1], [0.2]])
    >>> K = np.array([[0.1, 0.2]])
    >>> h = 1e-5; E = np.array([[1.0, 0.0]])
    >>> fd = (evaluate(lqr, K + h * E).cost - evaluate(lqr, K - h * E).cost) / (2 * h)
    >>> bool(abs(cost_gradient(lqr, K)[0, 0] - fd) < 1e-7 * abs(fd))
    True
    """
    return _grad_from(_eval(lqr, K, noise_cov))


@_finite_output("cost or its gradient", "K")
def cost_and_gradient(lqr: LQR, K: Any, noise_cov: Any = None) -> tuple[float, np.ndarray]:
    r"""``(C(K), ∇_K C(K))`` from a single evaluation (one shared Schur factorization).

    Same quantities as ``evaluate(lqr, K, noise_cov).cost`` and :func:`cost_gradient`
    (:math:`\nabla_K C = 2E_K\Sigma_K`), for the price of one evaluation: the inner loop of exact
    gradient descent.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], gamma=0.9, Sigma0=[[1.0]])
    >>> c, g = cost_and_gradient(lqr, [[0.2]])
    >>> bool(c == evaluate(lqr, [[0.2]]).cost and np.array_equal(g, cost_gradient(lqr, [[0.2]])))
    True
    """
    ev = _eval(lqr, K, noise_cov)
    return ev.cost, _grad_from(ev)


def _noise_grad_from(ev: LQREvaluation) -> np.ndarray:
    lqr = ev.lqr
    B, R, g = lqr.B, lqr.R, lqr.gamma
    if lqr.horizon is None:
        if g == 1.0:
            # gamma = 1 admits no noise: the derivative of the (then infinite) cost does not exist
            raise ValueError("the noise gradient needs gamma < 1 or a finite horizon")
        G = (R + g * (B.T @ ev.P @ B)) / (1.0 - g)
    else:
        H, n = lqr.horizon, lqr.n_states
        Pn = np.concatenate([ev.P[1:], np.zeros((1, n, n))])
        w = g ** np.arange(H)
        G = w.sum() * R + g * np.einsum("t,ia,tij,jb->ab", w, B, Pn, B)
    return 0.5 * (G + G.T)


@_finite_output("noise gradient", "K")
def noise_gradient(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Gradient of the cost with respect to the policy noise covariance, shape (m, m).

    .. math::

        \frac{\partial C}{\partial \Sigma_u} = \frac{R + \gamma B^\top P_K B}{1 - \gamma}
        \quad\Big(\text{finite horizon: } \sum_{t<H}\gamma^t (R + \gamma B^\top P_{t+1} B)\Big),

    meaning :math:`dC = \mathrm{tr}(G\, d\Sigma_u)`. It does not depend on :math:`\Sigma_u`
    (:math:`P_K` does not), so C is affine in :math:`\Sigma_u`. For
    :math:`\Sigma_u = \mathrm{diag}(e^{2\ell})`: :math:`\partial C/\partial \ell_i = 2 e^{2\ell_i} G_{ii}`.
    Derivation: :math:`C = \mathrm{tr}(P_K\Sigma_0) + [\mathrm{tr}(R\Sigma_u) + \gamma\mathrm{tr}(P_K W_K)]/(1-\gamma)`.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], gamma=0.9, Sigma0=[[1.0]])
    >>> G = noise_gradient(lqr, [[0.5]], [[0.1]])
    >>> c0, c1 = evaluate(lqr, [[0.5]], [[0.1]]).cost, evaluate(lqr, [[0.5]], [[0.3]]).cost
    >>> bool(abs((c1 - c0) / 0.2 - G[0, 0]) < 1e-10 * G[0, 0])  # C is affine in Sigma_u
    True
    """
    return _noise_grad_from(_eval(lqr, K, noise_cov))


def _policy_eval(lqr: Any, policy: Any, theta: Any) -> tuple[LinearGaussian, np.ndarray, LQREvaluation]:
    lqr = check_lqr(lqr)
    policy, theta = check_policy(lqr, policy, theta)
    return policy, theta, _evaluate(lqr, policy.gain(theta), policy.action_cov(theta), gain="the gain K of theta")


@_finite_output("policy gradient", "theta")
def policy_gradient(lqr: LQR, policy: LinearGaussian, theta: Any) -> np.ndarray:
    r"""Exact policy gradient :math:`\nabla_\theta J`, :math:`J = -C` (reward convention), shape (n_params,).

    .. math::

        \nabla_{\mathrm{vec}K} J = -\mathrm{vec}(\nabla_K C), \qquad
        \frac{\partial J}{\partial \ell_i} = -2 e^{2\ell_i}\Big[\frac{\partial C}{\partial\Sigma_u}\Big]_{ii}

    (row-major vec; the log-std block only with ``learn_log_std``). See :func:`cost_gradient`
    and :func:`noise_gradient`.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> lqr = LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], gamma=0.9, Sigma0=[[1.0]])
    >>> pol = LinearGaussian(1, 1, learn_log_std=True)
    >>> theta = pol.params([[0.3]], log_std=[-1.0])
    >>> g = policy_gradient(lqr, pol, theta)
    >>> h = 1e-6
    >>> fd = (evaluate(lqr, [[0.3]], [[np.exp(2 * (-1 + h))]]).cost
    ...       - evaluate(lqr, [[0.3]], [[np.exp(2 * (-1 - h))]]).cost) / (2 * h)
    >>> bool(abs(g[1] + fd) < 1e-7 * abs(fd))
    True
    """
    policy, theta, ev = _policy_eval(lqr, policy, theta)
    gK = -_grad_from(ev).reshape(-1)
    if not policy.learn_log_std:
        return gK
    G = _noise_grad_from(ev)
    return np.concatenate([gK, -2.0 * np.diag(ev.action_cov) * np.diag(G)])


def _state_second_moment(ev: LQREvaluation) -> np.ndarray:
    r""":math:`X = E_{x\sim d}[xx^\top] = \Sigma_K / \sum_t\gamma^t` for the normalized discounted state distribution d."""
    lqr = ev.lqr
    if lqr.horizon is None:
        if lqr.gamma == 1.0:
            raise ValueError("the normalized state distribution needs gamma < 1 or a finite horizon")
        mass = 1.0 / (1.0 - lqr.gamma)
    else:
        mass = float(np.sum(lqr.gamma ** np.arange(lqr.horizon)))
    return ev.Sigma / mass


def _action_precision(Su: np.ndarray, what: str) -> np.ndarray:
    try:
        cf = scipy.linalg.cho_factor(Su, check_finite=False)
        if np.min(np.diag(cf[0]) ** 2) <= 1e-14 * max(np.max(np.diag(Su)), np.finfo(float).tiny):
            raise np.linalg.LinAlgError
    except np.linalg.LinAlgError:
        raise ValueError(
            f"the {what} of a deterministic (or degenerate) policy does not exist: the action "
            "covariance is singular (use npg_direction, Fazel et al.'s K-space natural gradient)"
        ) from None
    inv = scipy.linalg.cho_solve(cf, np.eye(Su.shape[0]), check_finite=False)
    return 0.5 * (inv + inv.T)


@_finite_output("Fisher matrix", "theta")
def fisher(lqr: LQR, policy: LinearGaussian, theta: Any) -> np.ndarray:
    r"""State-averaged Fisher matrix of the Gaussian policy, shape (n_params, n_params).

    .. math::

        F = E_{x\sim d, u\sim\pi}[\nabla\log\pi\,\nabla\log\pi^\top]
          = \begin{pmatrix} \Sigma_u^{-1} \otimes X & 0 \\ 0 & 2 I_m \end{pmatrix},
        \qquad X = E_{x\sim d}[x x^\top] = \frac{\Sigma_K}{\sum_t \gamma^t}

    with :math:`d` the normalized discounted state distribution (:math:`X = (1-\gamma)\Sigma_K`
    for an infinite horizon; the normalized discounted time average for a finite one, as
    :func:`pgexact.exact.fisher`); ⊗ is the Kronecker product in the row-major vec of K; the
    log-std block exists only with ``learn_log_std``, and the cross terms vanish because the odd
    moments of :math:`u - \mu` are zero (Kakade 2002, sec. 3; Gaussian moments).
    Undefined (``ValueError``) for a deterministic or degenerate policy.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> lqr = LQR(A=[[0.9, 0.1], [0.0, 0.7]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           gamma=0.9, Sigma0=np.eye(2))
    >>> pol = LinearGaussian(2, 1, noise_cov=[[0.5]])
    >>> F = fisher(lqr, pol, [0.1, 0.2])
    >>> X = (1 - 0.9) * evaluate(lqr, [[0.1, 0.2]], [[0.5]]).Sigma
    >>> bool(np.allclose(F, X / 0.5, rtol=1e-14))
    True
    """
    policy, theta, ev = _policy_eval(lqr, policy, theta)
    Su_inv = _action_precision(ev.action_cov, "Fisher matrix")
    FK = np.kron(Su_inv, _state_second_moment(ev))
    if not policy.learn_log_std:
        return FK
    F = np.zeros((policy.n_params, policy.n_params))
    F[: policy.n_gain, : policy.n_gain] = FK
    F[policy.n_gain:, policy.n_gain:] = 2.0 * np.eye(policy.n_actions)
    return F


@_finite_output("natural gradient", "theta")
def natural_gradient(lqr: LQR, policy: LinearGaussian, theta: Any) -> np.ndarray:
    r"""Natural policy gradient :math:`F^{-1}\nabla_\theta J` (reward convention), shape (n_params,).

    Using the block structure of :func:`fisher`, never forming F:

    .. math::

        (F^{-1}\nabla J)_K = \mathrm{vec}\big(\Sigma_u\, \nabla_K J\, X^{-1}\big), \qquad
        (F^{-1}\nabla J)_\ell = \tfrac12 \nabla_\ell J .

    For an infinite horizon :math:`\nabla_K J = -2E_K\Sigma_K` and :math:`X = (1-\gamma)\Sigma_K`,
    so the K block is :math:`-\tfrac{2}{1-\gamma}\Sigma_u E_K` — Fazel et al.'s natural gradient
    :math:`\nabla C\,\Sigma_K^{-1} = 2E_K` (:func:`npg_direction`) up to the factor
    :math:`-\Sigma_u/(1-\gamma)`. Raises ``ValueError`` where :func:`fisher` does (singular
    :math:`\Sigma_u`) and :class:`~pgexact.errors.SingularSystemError` if X is singular.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR, LinearGaussian
    >>> lqr = LQR(A=[[0.9, 0.1], [0.0, 0.7]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           gamma=0.9, Sigma0=np.eye(2))
    >>> pol = LinearGaussian(2, 1, noise_cov=[[0.5]])
    >>> th = np.array([0.1, 0.2])
    >>> ng = natural_gradient(lqr, pol, th)
    >>> bool(np.allclose(fisher(lqr, pol, th) @ ng, policy_gradient(lqr, pol, th), rtol=1e-12))
    True
    """
    policy, theta, ev = _policy_eval(lqr, policy, theta)
    _action_precision(ev.action_cov, "natural gradient")  # the Fisher must exist
    X = _state_second_moment(ev)
    GJ = -_grad_from(ev)
    try:
        cf = scipy.linalg.cho_factor(X, lower=True, check_finite=False)
        if np.min(np.diag(cf[0]) ** 2) <= 1e-14 * np.max(np.diag(X)):
            raise np.linalg.LinAlgError
        Y = scipy.linalg.cho_solve(cf, GJ.T, check_finite=False).T  # GJ X^{-1}
    except np.linalg.LinAlgError:
        raise SingularSystemError(
            "the state second moment X = Sigma_K / sum_t gamma^t of theta on lqr is singular: the "
            "Fisher matrix is not invertible (give lqr a full-rank Sigma0 or process noise)"
        ) from None
    out = (ev.action_cov @ Y).reshape(-1)
    if not policy.learn_log_std:
        return out
    gl = -2.0 * np.diag(ev.action_cov) * np.diag(_noise_grad_from(ev))
    return np.concatenate([out, 0.5 * gl])


@_finite_output("natural-gradient direction", "K")
def npg_direction(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Fazel et al.'s natural-gradient direction :math:`\nabla C(K)\,\Sigma_K^{-1} = 2E_K`, shape (m, n).

    .. math::

        \nabla C(K)\,\Sigma_K^{-1} = 2\big[(R + \gamma B^\top P_K B)K - \gamma B^\top P_K A - N^\top\big]

    (Fazel et al. 2018, sec. 4, natural policy gradient :math:`K \leftarrow K - \eta\nabla C\Sigma_K^{-1}`;
    computed as :math:`2E_K`, which needs no inverse of :math:`\Sigma_K`). Infinite horizon only.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> lqr = LQR(A=[[0.9]], B=[[1.0]], Q=[[1.0]], R=[[1.0]], gamma=0.9, Sigma0=[[1.0]])
    >>> ev = evaluate(lqr, [[0.3]])
    >>> bool(np.allclose(npg_direction(lqr, [[0.3]]) @ ev.Sigma, cost_gradient(lqr, [[0.3]])))
    True
    """
    lqr = check_lqr(lqr)
    check_infinite(lqr, "npg_direction")
    return 2.0 * _gain_error(_eval(lqr, K, noise_cov))


@_finite_output("Gauss-Newton direction", "K")
def gauss_newton_direction(lqr: LQR, K: Any, noise_cov: Any = None) -> np.ndarray:
    r"""Gauss-Newton direction :math:`(R + \gamma B^\top P_K B)^{-1}\nabla C(K)\Sigma_K^{-1}`, shape (m, n).

    .. math::

        K \leftarrow K - \eta\,(R + \gamma B^\top P_K B)^{-1}\nabla C(K)\,\Sigma_K^{-1}

    (Fazel et al. 2018, sec. 4; with :math:`\eta = 1/2` this is policy iteration
    :math:`K \leftarrow (R + \gamma B^\top P_K B)^{-1}(\gamma B^\top P_K A + N^\top)`, Hewer 1971,
    which converges quadratically). Infinite horizon only.

    Examples
    --------
    >>> import numpy as np
    >>> from pgexact import LQR
    >>> from pgexact.lqr import optimal_gain
    >>> lqr = LQR(A=[[1.0, 1.0], [0.0, 1.0]], B=[[0.0], [1.0]], Q=np.eye(2), R=[[1.0]],
    ...           gamma=0.9, Sigma0=np.eye(2))
    >>> K = np.array([[1.0, 1.5]])
    >>> for _ in range(8):
    ...     K = K - 0.5 * gauss_newton_direction(lqr, K)
    >>> bool(np.allclose(K, optimal_gain(lqr), rtol=1e-12, atol=0))
    True
    """
    lqr = check_lqr(lqr)
    check_infinite(lqr, "gauss_newton_direction")
    ev = _eval(lqr, K, noise_cov)
    B, g = lqr.B, lqr.gamma
    RB = lqr.R + g * (B.T @ ev.P @ B)
    return 2.0 * np.linalg.solve(RB, _gain_error(ev))
